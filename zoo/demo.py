"""The main job behind `make demo`: what a loss does to a network, on Fashion-MNIST.

    python -m zoo.demo [--out runs/demo] [--epochs 5] [--embed-epochs 3] [--train-limit N]

1. LeNet-5 with softmax cross-entropy on the full training set: the baseline, with its
   learning curves and confusion matrix.
2. The same LeNet trunk ending in a 3-D embedding, trained once with softmax cross-entropy
   and once with CosFace (a cosine head: logits s·(cos θ_j − m·[j = y]), m 0.35, s 30), both
   watched by the training probes (weight-update curves, embedding snapshots, margins).
   Three dimensions, not two: on a circle ten classes are at best 36° apart, closer than
   CosFace's margin lets a class be to its neighbour (cos 0 − 0.35 < cos 36°), so several
   classes would have to share a ray; on the sphere they can keep about 66° apart.
3. `sphere.png`: the test images' embeddings scaled to unit length, for both losses, and for
   each the median angle between an embedding and its class's mean direction (how tight a
   class is) and the mean angle from a class direction to its nearest neighbour's (how
   far apart classes are; `angular_spread`). A cosine head scores only directions, so this
   is where its margin shows: tighter caps with wider gaps, at about softmax's accuracy.

Everything lands in the run folders (see `zoo.train`); the summary is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from zoo import quiet, train

EMBED_LOSSES = ("softmax", "cosface")
SPHERE_IMAGES = 2000


def class_directions(embeddings, labels) -> tuple:
    """(unit embeddings (n, D), unit mean direction of each class (D, C)) for classes 0..C-1."""
    e = np.asarray(embeddings, np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    y = np.asarray(labels).reshape(-1)
    means = np.stack([e[y == c].mean(axis=0) for c in range(int(y.max()) + 1)], axis=1)
    return e, means / np.maximum(np.linalg.norm(means, axis=0, keepdims=True), 1e-12)


def angular_spread(embeddings, labels) -> dict:
    """Degrees, from unit embeddings ê_i and unit class mean directions d_c:

    - `median_angle_to_class`: median over i of ∠(ê_i, d_{y_i}), how tight a class is (the
      median, so that a few misread images do not decide it);
    - `nearest_class_mean`: mean over c of min_{k ≠ c} ∠(d_c, d_k), how far a class is
      from its closest neighbour; `nearest_class_min`: the closest pair.

    Works for any head, softmax included: only the directions are compared.
    """
    e, directions = class_directions(embeddings, labels)
    y = np.asarray(labels).reshape(-1)
    own = np.degrees(np.arccos(np.clip(np.sum(e * directions.T[y], axis=1), -1.0, 1.0)))
    between = np.degrees(np.arccos(np.clip(directions.T @ directions, -1.0, 1.0)))
    np.fill_diagonal(between, np.inf)
    nearest = between.min(axis=1)
    return {"median_angle_to_class": float(np.median(own)),
            "nearest_class_mean": float(nearest.mean()),
            "nearest_class_min": float(nearest.min())}


def sphere_view(runs, out: Path) -> dict:
    """Embed the first test images with each run's model, plot them on the sphere, and
    return each run's `angular_spread`."""
    import keras

    from zoo import datasets
    from zoo.evaluation.plots import plot_sphere_embeddings
    from zoo.models import embedding_model

    test = datasets.load("fashion_mnist", "test", limit=SPHERE_IMAGES)
    panels, spreads = {}, {}
    for config, metrics in runs:
        model = keras.saving.load_model(Path(config.out) / "model.keras")
        embeddings = embedding_model(model).predict(test.x, batch_size=500, verbose=0)
        spreads[config.loss] = angular_spread(embeddings, test.y)
        panels[f"{config.loss}: {metrics['test_accuracy']:.2%} accuracy, "
               f"median {spreads[config.loss]['median_angle_to_class']:.1f}° from its "
               f"class"] = (embeddings, test.y)
    plot_sphere_embeddings(panels, out / "sphere.png", class_names=test.class_names,
                           title="Fashion-MNIST test images on the unit sphere (3-D embedding)")
    return spreads


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the LeNet-5 baseline")
    parser.add_argument("--embed-epochs", type=int, default=3,
                        help="epochs of each 3-D embedding run")
    parser.add_argument("--train-limit", type=int, default=None, help="for a quick look")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="test images scored (default: all 10,000), for a quick look")
    args = parser.parse_args(argv)
    out = Path(args.out)
    common = dict(dataset="fashion_mnist", batch_size=64, learning_rate=2e-3, seed=0,
                  train_limit=args.train_limit, test_limit=args.test_limit)
    runs = [
        train.TrainConfig(model="lenet5", loss="softmax", epochs=args.epochs,
                          out=str(out / "lenet5-softmax"), **common),
        *[train.TrainConfig(model="lenet_embed", loss=loss, embedding_dim=3,
                            epochs=args.embed_epochs, trace_weights=0, monitor_margins=True,
                            out=str(out / f"lenet_embed3d-{loss}"), **common)
          for loss in EMBED_LOSSES],
    ]
    summary = []
    for number, config in enumerate(runs, 1):
        print(f"\n[{number}/{len(runs)}] {config.model} + {config.loss} on {config.dataset}, "
              f"{config.epochs} epochs -> {config.out}", flush=True)
        metrics = train.run(config)
        summary.append((config, metrics))
    spreads = sphere_view(summary[1:], out)
    (out / "summary.json").write_text(json.dumps(
        {"test_accuracy": {Path(c.out).name: m["test_accuracy"] for c, m in summary},
         "angular_spread": spreads}, indent=1) + "\n")

    print("\nLossLab demo: Fashion-MNIST test accuracy")
    for config, metrics in summary:
        spread = spreads.get(config.loss) if config.model == "lenet_embed" else None
        angles = (f"   an image {spread['median_angle_to_class']:4.1f}° from its class "
                  f"direction (median), a class {spread['nearest_class_mean']:4.1f}° from "
                  f"its nearest (mean)" if spread else "")
        print(f"  {Path(config.out).name:24s} {metrics['test_accuracy']:.4f}{angles}")
    print(f"\nLook at {(out / 'sphere.png').resolve()}: both 3-D models classify about "
          "equally well, but CosFace, which scores only the direction of an embedding and "
          "demands a margin m in cos θ for the true class, packs each class into a tighter "
          "cap on the sphere, farther from its neighbours, than softmax does. Then, in each folder: "
          "curves.png, confusion_matrix.png; for the 3-D runs embedding_snapshots.png (the "
          "classes over the epochs), margins.png and weight_updates.png.")
    return 0


if __name__ == "__main__":
    quiet.filter_stderr()
    sys.exit(main())
