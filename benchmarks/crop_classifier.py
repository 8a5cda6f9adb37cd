"""The detector's step 2 on real photos: does its crop classifier tell an object from
background, and does the start of its weights matter?

    python benchmarks/crop_classifier.py [--voc ../shared/datasets/kangaroo] [--seeds 0 1 2]
        [--starts random repvgg_tiny.cifar10] [--epochs 8]

The test photos are not touched. The VOC folder is split as a detector run splits it
(`load_detection_data`: its ImageSets, or 80/20 by a permutation seeded with 0), then 20 %
of the *training* photos are held out by a permutation seeded with `--split-seed` (1): the
validation photos. For every start and seed the crop classifier is trained on the other
training photos exactly as `zoo.training.tasks.detection.fit_classifier` trains it
(jittered ground-truth crops, random background crops, `--epochs` epochs), then scores the
validation crops: 2 jittered crops per object and 2 random background boxes per photo
(`classifier_crops`, seed 99: the same crops for every model). Reported per start (mean ±
std over seeds): the ROC AUC of p(object) between object and background crops, the median
p(object) of both, and the share of object crops with p > 0.99.

Starts: `random` (the classifier's default widths and depths, random weights) or the name
of backbone weights (`repvgg_tiny.cifar10`), loaded into a classifier with
`REAL_DATA_CLASSIFIER`'s widths and depths, the start the detection task uses on real
images.

Writes `results/crop_classifier.json`, `.md` and `.png` (the ROC curves).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from zoo import quiet  # noqa: E402

quiet.silence_tensorflow()
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from benchmarks.common import RESULTS, environment, mean_std, write_json, write_text  # noqa: E402
from zoo.models.detector.pipeline import classifier_crops  # noqa: E402
from zoo.training.tasks.detection import (CLASSIFIER_EPOCHS, REAL_DATA_BACKBONE,  # noqa: E402
                                          REAL_DATA_CLASSIFIER, fit_classifier,
                                          load_detection_data, split_indices)

DEFAULT_VOC = REPO.parent / "shared" / "datasets" / "kangaroo"
VALIDATION_FRACTION = 0.2
VALIDATION_CROPS = {"crop_size": 32, "context": 1.25, "jitter": 0.1, "copies": 2,
                    "background": 2.0, "seed": 99}
CONFIDENT = 0.99


def validation_split(voc, split_seed=1, image_size=(128, 128)):
    """(fit photos, validation photos, description): the detector run's training photos of
    the VOC folder `voc`, split again by a permutation seeded with `split_seed`."""
    train, _, info = load_detection_data(f"voc:{voc}", image_size=image_size)
    fit_idx, val_idx = split_indices(len(train), VALIDATION_FRACTION, split_seed)
    return train.subset(fit_idx), train.subset(val_idx), (
        f"{info['split']}; its training photos split again "
        f"{1 - VALIDATION_FRACTION:.0%}/{VALIDATION_FRACTION:.0%} by a permutation seeded with "
        f"{split_seed}: {len(fit_idx)} to train the classifier, {len(val_idx)} to score it")


def start_kwargs(start: str) -> dict:
    """`fit_classifier` keywords of a start: none for random weights, else the detection
    task's real-image classifier started from the backbone weights named `start`."""
    return {} if start == "random" else {**REAL_DATA_CLASSIFIER, "backbone_weights": start}


def object_probability(model, class_scale, crops) -> np.ndarray:
    """p(object) of every crop: one minus the background probability (the last class)."""
    logits = model.predict(crops, batch_size=256, verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(class_scale * logits))
    return 1.0 - probabilities[:, -1]


def one_cell(fit_set, crops, is_object, start, seed, epochs) -> dict:
    model, class_scale, _ = fit_classifier(fit_set, epochs=epochs, seed=seed, verbose=0,
                                           **start_kwargs(start))
    p = object_probability(model, class_scale, crops)
    fpr, tpr, _ = roc_curve(is_object, p)
    return {"seed": seed, "roc_auc": float(roc_auc_score(is_object, p)),
            "median_p_object": float(np.median(p[is_object])),
            "median_p_background": float(np.median(p[~is_object])),
            "share_object_above": float(np.mean(p[is_object] > CONFIDENT)),
            "roc": {"fpr": fpr.round(4).tolist(), "tpr": tpr.round(4).tolist()}}


def summary(cells) -> dict:
    keys = ("roc_auc", "median_p_object", "median_p_background", "share_object_above")
    return {key: mean_std([c[key] for c in cells]) for key in keys}


def markdown(results) -> str:
    lines = ["# The crop classifier (step 2) on real photos", "",
             f"Data: {results['data']}. Validation crops: {results['crops']['objects']} object "
             f"crops, {results['crops']['background']} background crops. Classifier trained "
             f"{results['epochs']} epochs; mean ± std over seeds {results['seeds']}.", "",
             f"| start | ROC AUC | median p(object), objects | median p(object), background "
             f"| objects with p > {CONFIDENT} |", "|---|---|---|---|---|"]
    for start, row in results["starts"].items():
        s = row["summary"]
        cells = [f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}" for k in
                 ("roc_auc", "median_p_object", "median_p_background", "share_object_above")]
        lines.append(f"| {start} | " + " | ".join(cells) + " |")
    lines += ["", "Per seed (ROC AUC): " + "; ".join(
        f"{start} " + ", ".join(f"{c['roc_auc']:.3f}" for c in row["cells"])
        for start, row in results["starts"].items()), ""]
    return "\n".join(lines)


def plot(results, path):
    fig, ax = plt.subplots(figsize=(5, 5))
    for colour, (start, row) in zip(plt.cm.tab10.colors, results["starts"].items()):
        for i, cell in enumerate(row["cells"]):
            label = f"{start} (AUC {row['summary']['roc_auc']['mean']:.2f})" if i == 0 else None
            ax.plot(cell["roc"]["fpr"], cell["roc"]["tpr"], color=colour, alpha=0.8, label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate (background crops)",
           ylabel="true positive rate (object crops)",
           title="Step-2 classifier on validation crops")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voc", type=Path, default=DEFAULT_VOC, help="a Pascal VOC folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--starts", nargs="+", default=["random", REAL_DATA_BACKBONE])
    parser.add_argument("--epochs", type=int, default=CLASSIFIER_EPOCHS)
    parser.add_argument("--split-seed", type=int, default=1)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.voc.is_dir():
        parser.error(f"--voc {args.voc} is not a folder")

    fit_set, validation, described = validation_split(args.voc, args.split_seed)
    crops, labels = classifier_crops(validation.images, validation.boxes, validation.classes,
                                     len(validation.class_names), **VALIDATION_CROPS)
    is_object = labels < len(validation.class_names)
    if is_object.all() or not is_object.any():
        raise SystemExit("the validation photos gave crops of one kind only; no ROC AUC")
    starts = {}
    for start in args.starts:
        cells = []
        for seed in args.seeds:
            cells.append(one_cell(fit_set, crops, is_object, start, seed, args.epochs))
            print(f"[crop_classifier] {start} seed {seed}: ROC AUC {cells[-1]['roc_auc']:.3f}",
                  flush=True)
        starts[start] = {"kwargs": {k: list(v) if isinstance(v, tuple) else v
                                    for k, v in start_kwargs(start).items()},
                         "summary": summary(cells), "cells": cells}
    results = {"data": described, "voc": args.voc.name, "seeds": args.seeds,
               "epochs": args.epochs, "validation_crops": VALIDATION_CROPS,
               "crops": {"objects": int(is_object.sum()),
                         "background": int((~is_object).sum())},
               "starts": starts, "environment": environment()}
    write_json("crop_classifier", results, args.results_dir)
    write_text("crop_classifier.md", markdown(results), args.results_dir)
    plot(results, args.results_dir / "crop_classifier.png")
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
