"""The main job behind `make demo`: what a loss does to a network, on Fashion-MNIST.

    python -m zoo.demo [--out runs/demo] [--epochs 5] [--embed-epochs 3] [--train-limit N]

1. LeNet-5 with softmax cross-entropy on the full training set: the baseline, with its
   learning curves and confusion matrix.
2. The same LeNet trunk ending in a 2-D embedding, trained once with softmax cross-entropy
   and once with ArcFace (cosine head, additive angular margin), both watched by the
   training probes: weight-update curves and the embedding of validation images over the
   epochs. Softmax spreads the classes as rays of any length; ArcFace packs them into
   angular sectors with gaps between them.
Everything lands in the run folders (see `zoo.train`); the summary is printed at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo import quiet, train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the LeNet-5 baseline")
    parser.add_argument("--embed-epochs", type=int, default=3,
                        help="epochs of each 2-D embedding run")
    parser.add_argument("--train-limit", type=int, default=None, help="for a quick look")
    args = parser.parse_args(argv)
    out = Path(args.out)
    common = dict(dataset="fashion_mnist", batch_size=64, learning_rate=2e-3, seed=0,
                  train_limit=args.train_limit)
    runs = [
        train.TrainConfig(model="lenet5", loss="softmax", epochs=args.epochs,
                          out=str(out / "lenet5-softmax"), **common),
        *[train.TrainConfig(model="lenet_embed", loss=loss, embedding_dim=2,
                            epochs=args.embed_epochs, trace_weights=0, monitor_margins=True,
                            out=str(out / f"lenet_embed2d-{loss}"), **common)
          for loss in ("softmax", "arcface")],
    ]
    summary = []
    for number, config in enumerate(runs, 1):
        print(f"\n[{number}/{len(runs)}] {config.model} + {config.loss} on {config.dataset}, "
              f"{config.epochs} epochs -> {config.out}", flush=True)
        metrics = train.run(config)
        summary.append((config, metrics))

    print("\nLossLab demo: test accuracy")
    for config, metrics in summary:
        print(f"  {config.model:12s} {config.loss:8s} {metrics['test_accuracy']:.4f}   "
              f"{Path(config.out).resolve()}")
    print("\nLook at: curves.png and confusion_matrix.png in each folder; for the 2-D runs, "
          "embedding_snapshots.png (classes over the epochs), margins.png and "
          "weight_updates.png.")
    return 0


if __name__ == "__main__":
    quiet.filter_stderr()
    sys.exit(main())
