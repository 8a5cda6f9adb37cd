"""The main job behind `make demo`: LeNet-5 on Fashion-MNIST with softmax cross-entropy.

    python -m zoo.demo [--out runs/demo] [--epochs 5]

Trains on the full training set (a few minutes on 2 CPU cores), evaluates on the test set
and writes the run folder described in `zoo.train` (curves, confusion matrix, model).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo import train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    out = Path(args.out)
    config = train.TrainConfig(model="lenet5", dataset="fashion_mnist", loss="softmax",
                               epochs=args.epochs, batch_size=64, learning_rate=2e-3, seed=0,
                               out=str(out / "lenet5-softmax"))
    print(f"LossLab demo: {config.model} on {config.dataset} with {config.loss} cross-entropy, "
          f"{config.epochs} epochs")
    metrics = train.run(config)
    run_dir = Path(config.out).resolve()
    print(f"\nTest accuracy: {metrics['test_accuracy']:.4f} "
          f"({metrics['train_samples_per_second']:.0f} training samples/s)")
    print(f"Results in {run_dir}:")
    for name in ("curves.png", "confusion_matrix.png", "metrics.json", "history.csv", "model.keras"):
        print(f"  {run_dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
