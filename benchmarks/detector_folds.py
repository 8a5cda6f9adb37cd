"""Choosing a detector recipe by k-fold cross-validation on the kangaroo training photos.

    python benchmarks/detector_folds.py [--configs base colour colour_ema] [--folds 4]
        [--seeds 0] [--epochs 160] [--voc PATH]

The VOC folder is split as the detector benchmark splits it (`load_detection_data`: 80/20,
permutation seeded with 0); its test photos are never used here. The training photos are
permuted (seed 0) and dealt into `--folds` folds; for each fold every config trains step 1
on the other folds and is scored on the held-out one (step-1 AP@.5 and mAP, COCOeval). A
validation split of 26 photos is too small to choose by (the same recipe and seed moved by
0.07 AP@.5 between two runs); k folds use every training photo for scoring once.

The recipe is the kangaroo benchmark's best section: 160 epochs, 128 px, batch 32, Adam 2e-3
cosine-decayed, EIoU, feature pyramid (strides 8, 16, 32), quality focal score, step 1 from
`detector.synth_scenes`, zoom 0.5-2. The configs differ only in

    base         BoxAugmenter(zoom=(0.5, 2)): flip, zoom, crop
    colour       + colour jitter 0.5/0.3/0.3 (saturation, contrast, brightness)
    colour_ema   + an average of step 1's weights (EMA momentum 0.99), which becomes them
    mosaic       + YOLOv4's mosaic with probability 0.5
    flip_tta     base, scored with horizontal-flip test-time augmentation (`flip_tta`); the
                 cell also scores the same weights without it

Every (config, fold, seed) is a JSON cell under `--work` (default `runs/detector_folds`), so
an interrupted run resumes. Writes `results/detector_folds.{json,md,png}`: per config its
per-fold values and mean, and per fold its difference from `base` (mean ± standard error
over folds, and on how many folds it is ahead).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, environment, mean_std, write_results  # noqa: E402
from benchmarks.detector import DEFAULT_VOC, TINY_DETECTOR  # noqa: E402
from zoo.datasets.detection import BoxAugmenter  # noqa: E402
from zoo.evaluation.detection import evaluate_detections  # noqa: E402
from zoo.training.tasks.detection import (COLOUR_KEYS, REAL_DATA_ZOOM,  # noqa: E402
                                          build_detector, load_detection_data,
                                          step1_detections)

NAME = "detector_folds"
REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "base": {"colour": (0.0, 0.0, 0.0), "ema": None},
    "colour": {"colour": (0.5, 0.3, 0.3), "ema": None},
    "colour_ema": {"colour": (0.5, 0.3, 0.3), "ema": 0.99},
    "mosaic": {"colour": (0.0, 0.0, 0.0), "ema": None, "mosaic": 0.5},
    "flip_tta": {"colour": (0.0, 0.0, 0.0), "ema": None, "flip_tta": True},
}
RECIPE = {"box_loss": "eiou", "batch_size": 32, "learning_rate": 2e-3, "stride": (8, 16, 32),
          "score_loss": "quality_focal", "backbone_weights": "repvgg_tiny.cifar10",
          "init_from": "detector.synth_scenes", "zoom": REAL_DATA_ZOOM}


def fold_indices(count, folds, seed=0) -> list:
    """`folds` disjoint index arrays covering range(count): a seeded permutation, dealt."""
    order = np.random.default_rng(seed).permutation(count)
    return [np.sort(order[k::folds]) for k in range(folds)]


def one_cell(train_set, held_out, config, seed, args) -> dict:
    settings = CONFIGS[config]
    augment = BoxAugmenter(zoom=RECIPE["zoom"], **dict(zip(COLOUR_KEYS, settings["colour"])))
    model_kwargs = ({**TINY_DETECTOR} if args.tiny else
                    {"stride": RECIPE["stride"], "backbone_weights": RECIPE["backbone_weights"],
                     "init_from": RECIPE["init_from"]})
    model, batches = build_detector(train_set, RECIPE["box_loss"], args.epochs,
                                    RECIPE["batch_size"], RECIPE["learning_rate"], seed,
                                    augment=augment, score_loss=RECIPE["score_loss"],
                                    ema_momentum=settings["ema"],
                                    mosaic=settings.get("mosaic", 0.0), **model_kwargs)
    started = time.perf_counter()
    model.fit(batches, epochs=args.epochs, verbose=0)
    seconds = time.perf_counter() - started
    def scores(flip_tta):
        result = evaluate_detections(step1_detections(model, held_out.images,
                                                      flip_tta=flip_tta),
                                     held_out, held_out.class_names)
        return float(result["map_50"]), float(result["map"])

    cell = {"seconds": seconds, "train_images": len(train_set),
            "held_out_images": len(held_out)}
    cell["map_50"], cell["map"] = scores(settings.get("flip_tta", False))
    if settings.get("flip_tta"):  # the same weights without it: the augmentation's own effect
        cell["map_50_without_tta"], cell["map_without_tta"] = scores(False)
    return cell


def summarise(cells, configs, folds, seeds) -> dict:
    """Per config: AP@.5 and mAP per fold (mean over seeds), their mean ± std over folds, and
    the per-fold difference from base."""
    table = {}
    for config in configs:
        per_fold = {metric: [float(np.mean([cells[(config, k, s)][metric] for s in seeds]))
                             for k in range(folds)] for metric in ("map_50", "map")}
        table[config] = {metric: mean_std(values) for metric, values in per_fold.items()}
        if "map_50_without_tta" in cells[(config, 0, seeds[0])]:
            without = [float(np.mean([cells[(config, k, s)]["map_50_without_tta"]
                                      for s in seeds])) for k in range(folds)]
            table[config]["map_50_tta_gain"] = paired_gain(per_fold["map_50"], without)
    if "base" in table:
        base = table["base"]["map_50"]["values"]
        for config, row in table.items():
            if config != "base":
                row["map_50_minus_base"] = paired_gain(row["map_50"]["values"], base)
    return table


def paired_gain(values, reference) -> dict:
    """Per-fold differences values − reference: mean ± std, standard error, folds ahead."""
    gain = np.asarray(values) - np.asarray(reference)
    return {**mean_std(gain), "standard_error": float(gain.std(ddof=1) / np.sqrt(len(gain)))
            if len(gain) > 1 else 0.0, "folds_ahead": int((gain > 0).sum())}


def markdown(results) -> str:
    s = results["settings"]
    lines = [
        "# Detector recipe by cross-validation on the kangaroo training photos", "",
        f"Produced by `benchmarks/detector_folds.py`. {s['train_images']} training photos of "
        f"{s['voc']} (the detector benchmark's split; its {s['test_images']} test photos "
        f"unused) in {s['folds']} folds, seeds {s['seeds']}; step 1 trained on the other "
        f"folds for {s['epochs']} epochs and scored on the held-out fold. Recipe: "
        f"{s['recipe']}. Values per fold are means over seeds; ± is the standard deviation "
        "over folds, the difference's ± its standard error.", "",
        "| config | step-1 AP@.5 per fold | mean | mAP mean | AP@.5 − base's | folds ahead |",
        "|---|---|---|---|---|---|"]
    for config, row in results["table"].items():
        ap = row["map_50"]
        gain = row.get("map_50_minus_base")
        lines.append(
            f"| {config} | {', '.join(f'{v:.3f}' for v in ap['values'])} | "
            f"{ap['mean']:.3f} ± {ap['std']:.3f} | {row['map']['mean']:.3f} | "
            + (f"{gain['mean']:+.3f} ± {gain['standard_error']:.3f} | "
               f"{gain['folds_ahead']} of {len(gain['values'])} |" if gain else "– | – |"))
    for config, row in results["table"].items():
        if "map_50_tta_gain" in row:
            gain = row["map_50_tta_gain"]
            lines += ["", f"{config}, the same weights scored with and without flip test-time "
                      f"augmentation: AP@.5 {gain['mean']:+.3f} ± {gain['standard_error']:.3f} "
                      f"with it, ahead on {gain['folds_ahead']} of {len(gain['values'])} folds."]
    lines += ["", "Configs: " + "; ".join(
        f"{name}: colour jitter {'/'.join(f'{c:g}' for c in CONFIGS[name]['colour'])}, "
        f"EMA {CONFIGS[name]['ema'] or 'off'}, mosaic {CONFIGS[name].get('mosaic') or 'off'}, "
        f"flip TTA {'on' if CONFIGS[name].get('flip_tta') else 'off'}"
        for name in results["table"]) + ".", ""]
    return "\n".join(lines)


def plot(results, path):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for config, row in results["table"].items():
        values = row["map_50"]["values"]
        ax.plot(range(len(values)), values, marker="o", label=f"{config} "
                f"({row['map_50']['mean']:.3f})")
    ax.set_xticks(range(results["settings"]["folds"]))
    ax.set_xlabel("held-out fold")
    ax.set_ylabel("step-1 AP@.5")
    ax.set_title("Kangaroo training photos, k-fold")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voc", default=str(DEFAULT_VOC), help="a Pascal VOC folder")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=160)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--tiny", action="store_true",
                        help="a small detector from random weights: for smoke tests only")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / NAME)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.folds < 2 or args.epochs < 1:
        parser.error("--folds must be >= 2 and --epochs >= 1")
    train_set, test_set, info = load_detection_data(f"voc:{args.voc}",
                                                    image_size=args.image_size)
    folds = fold_indices(len(train_set), args.folds)
    args.work.mkdir(parents=True, exist_ok=True)
    cells = {}
    jobs = [(k, c, s) for k in range(args.folds) for c in args.configs for s in args.seeds]
    for number, (k, config, seed) in enumerate(jobs, 1):
        path = args.work / f"{config}-fold{k}-seed{seed}{'-tiny' if args.tiny else ''}.json"
        if path.exists():
            cells[(config, k, seed)] = json.loads(path.read_text())
            continue
        rest = np.sort(np.concatenate([f for j, f in enumerate(folds) if j != k]))
        print(f"[{number}/{len(jobs)}] {config}, fold {k}, seed {seed}", flush=True)
        cell = one_cell(train_set.subset(rest), train_set.subset(folds[k]), config, seed, args)
        print(f"    AP@.5 {cell['map_50']:.3f}  mAP {cell['map']:.3f}  "
              f"({cell['seconds']:.0f} s)", flush=True)
        path.write_text(json.dumps(cell))
        cells[(config, k, seed)] = cell
    recipe = ("tiny detector from random weights" if args.tiny else
              ", ".join(f"{k} {v}" for k, v in RECIPE.items()))
    results = {"environment": environment(), "split": info["split"],
               "settings": {"voc": Path(args.voc).name, "folds": args.folds,
                            "seeds": args.seeds, "epochs": args.epochs,
                            "image_size": args.image_size, "tiny": args.tiny,
                            "train_images": len(train_set), "test_images": len(test_set),
                            "recipe": recipe},
               "folds": [[train_set.names[i] for i in f] for f in folds],
               "cells": {f"{c}-fold{k}-seed{s}": cell for (c, k, s), cell in cells.items()},
               "table": summarise(cells, args.configs, args.folds, args.seeds)}
    write_results(NAME, results, markdown, plot, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
