"""The two-step detector (zoo/models/detector/): box losses, one step against two, the fused backbone,
and a real Pascal VOC set.

    python benchmarks/detector.py [--parts losses steps fused voc] [--losses eiou ciou ...]
        [--seeds 0 1 2] [--epochs 6] [--train-images 2000] [--test-images 500]
        [--short-epochs 2] [--voc ../shared/datasets/kangaroo] [--voc-epochs 80]

Parts (each writes its own section of `results/detector.json`, keeping the others; the
Markdown tables and the figure are redrawn from the whole file):

- `losses`: every box loss in the same detector, data (synthetic scenes: `--train-images`
  with seed 0, `--test-images` with seed 1), optimizer, schedule and budget, for every seed:
  the pipeline's AP@.5, mAP (COCO, 0.5:0.95) and best F1 on the test scenes (mean ± std
  over seeds), the step-1 class-agnostic AP@.5, and the step-1 AP@.5 on the test scenes
  after every epoch (`zoo.training.tasks.detection.step1_evaluator`), whose value after
  `--short-epochs` epochs is the convergence-speed column (the curve is scored on the
  first `--curve-images` test scenes, 200 by default, to keep it cheap). The box loss acts
  on step 1 only; the step-2 crop classifier does not depend on it (it trains on
  ground-truth crops), so one classifier is trained per seed and shared by every loss (a
  paired comparison, and 1 classifier instead of one per loss). Re-running `losses` with
  the same settings replaces only the losses given, so the losses can be split over
  several invocations.
- `steps`: the one-step detector (class-aware scores, no classifier) against the two-step
  one, same box loss (`--steps-loss`), seeds and budget; two-step numbers are taken from
  the `losses` section when it holds that loss at the same settings.
- `fused`: the pipeline of the first loss and seed of `losses` (saved in `--work-dir`; if
  absent, a pipeline trained here for `--epochs` epochs) against its re-parameterized copy
  (`TwoStepDetector.fused()`): images/s of the step-1 network and of the whole pipeline on
  one fixed batch of test images, both with and without XLA (the same setting for both
  copies), `--fused-reps` interleaved repetitions in alternating order, medians, ratio
  unfused/fused; the largest absolute difference of the step-1 logits and boxes and of the
  classifier's probabilities, and AP@.5 / mAP of both copies on the test scenes.
- `voc`: the same detector trained on a Pascal VOC folder (`--voc`, default
  `../shared/datasets/kangaroo` next to the repository; skipped with a message when absent)
  through `zoo.training.tasks.detection.load_detection_data`: images letterboxed to 128x128, split
  80/20 by a permutation seeded with 0 (or the folder's ImageSets), trained with
  `BoxAugmenter()` (its zoom range `--voc-zoom`) for `--voc-epochs` epochs, `--voc-losses`
  x `--seeds`. Per seed: a (loss, seed) already stored at the same settings is not run
  again, and seeds run in separate invocations gather in one section.

- `neon`: the NEON tree tiles (`--dataset neon_trees`: three aerial tiles for training, the
  1249 x 1035 px `2019_YELL_2_541000_4977000_image_crop` with 279 trees for testing) at
  native resolution: step 1 trained on `RandomTiles` of `--neon-size` px for
  `--neon-epochs` epochs (default 200), the crop classifier on the training tiles, both
  scored tile by tile (`detect_tiled`) and, for comparison, on the test tile letterboxed whole into the
  input (what a detector without tiling sees); `--seeds`. COCOeval counts up to 1,000
  detections per image there (its default 100 would cap recall at 100 of 279 trees).

Writes `results/detector.json`, `detector.md` and `detector.png` (AP@.5 by loss with error
bars; step-1 AP@.5 against the epoch).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import (RESULTS, difference, environment, format_mean_std,  # noqa: E402
                               mean_std, write_json, write_text)
from zoo.datasets.detection import DEFAULT_ZOOM, BoxAugmenter  # noqa: E402
from zoo.models.detector import BOX_LOSSES, SCORE_LOSSES, TwoStepDetector  # noqa: E402
from zoo.training.config import ConfigError  # noqa: E402
from zoo.training.tasks.detection import (COLOUR_KEYS, REAL_DATA_CLASSIFIER,  # noqa: E402
                                          checked_colour, checked_ema, checked_strides,
                                          checked_zoom, evaluate_pipeline, fit_classifier,
                                          fit_detector, load_detection_data,
                                          mine_hard_negatives, step1_evaluator)

PARTS = ("losses", "steps", "fused", "voc", "neon")
VOC_EPOCHS = 80
IMAGE_SIDE = 128  # other input sizes go to sections ..._Npx
NEON_EPOCHS = 200
# --tiny (smoke tests only): small models, so that XLA compiles in seconds
TINY_DETECTOR = {"widths": (8, 16, 16), "depths": (1, 1, 1), "neck_width": 8, "head_width": 8,
                 "head_depth": 1}
TINY_CLASSIFIER = {"widths": (8, 8), "depths": (1, 1), "embedding_dim": 8}
DEFAULT_VOC = REPO.parent / "shared" / "datasets" / "kangaroo"
NAME = "detector"
METRICS = ("map_50", "map", "f1", "precision", "recall")


# --------------------------------------------------------------------------- training


class Classifiers:
    """Step-2 classifiers, one per (data, seed), trained once and shared by every box loss."""

    def __init__(self, args):
        self.args, self.trained = args, {}

    def kwargs(self, key) -> dict:
        """The builder's arguments: tiny for smoke runs; on the voc part with
        `--classifier-backbone`, that backbone with `REAL_DATA_CLASSIFIER`'s shape."""
        if self.args.tiny:
            return dict(TINY_CLASSIFIER)
        if key == "voc" and self.args.classifier_backbone:
            return {**REAL_DATA_CLASSIFIER, "backbone_weights": self.args.classifier_backbone}
        return {}

    def get(self, key, train_set, seed):
        if (key, seed) not in self.trained:
            print(f"    step 2: crop classifier, seed {seed}", flush=True)
            started = time.perf_counter()
            model, scale, history = fit_classifier(
                train_set, epochs=self.args.classifier_epochs, seed=seed, verbose=0,
                **self.kwargs(key))
            self.trained[(key, seed)] = (model, scale, {
                "seconds": time.perf_counter() - started,
                "accuracy": float(history.history["accuracy"][-1])})
        return self.trained[(key, seed)]


def one_run(train_set, test_set, box_loss, seed, epochs, args, classifiers, data_key,
            augment=True, one_step=False, backbone_weights=None, stride=None,
            score_loss="focal", init_from=None, ema_momentum=None, flip_tta=False):
    """Train step 1 (+ the shared classifier), evaluate; (row of numbers, pipeline). With
    `flip_tta` the pipeline scores with flip test-time augmentation, and the row also holds
    the same weights' scores without it ("..._without_tta")."""
    evaluator = step1_evaluator(test_set.subset(range(min(len(test_set), args.curve_images)))
                                if args.curve_images else test_set)
    timer = EpochSeconds()
    started = time.perf_counter()
    model, _ = fit_detector(train_set, box_loss, epochs, args.batch_size, args.learning_rate,
                            seed, one_step, augment=augment, callbacks=[timer, evaluator],
                            verbose=0, backbone_weights=backbone_weights,
                            score_loss=score_loss, init_from=init_from,
                            ema_momentum=ema_momentum, **_stride_kwargs(stride),
                            **(TINY_DETECTOR if args.tiny else {}))
    step1_seconds = time.perf_counter() - started
    classifier, scale, classifier_info = (None, 1.0, None) if one_step else \
        classifiers.get(data_key, train_set, seed)
    pipeline = TwoStepDetector(model, classifier, class_names=train_set.class_names,
                               class_scale=scale, flip_tta=flip_tta)
    evaluation = evaluate_pipeline(pipeline, test_set)
    result = evaluation["result"]
    without = {}
    if flip_tta:
        plain = evaluate_pipeline(TwoStepDetector(model, classifier, class_scale=scale,
                                                  class_names=train_set.class_names), test_set)
        without = {"map_50_without_tta": float(plain["result"]["map_50"]),
                   "map_without_tta": float(plain["result"]["map"]),
                   "step1_map_50_without_tta": plain["step1_map_50"]}
    row = {"seed": seed, **{k: float(result[k]) for k in METRICS},
           "step1_map_50": evaluation["step1_map_50"], "step1_map": evaluation["step1_map"],
           "curve_map_50": [values["map_50"] for _, values in evaluator.history],
           "curve_map": [values["map"] for _, values in evaluator.history],
           "step1_seconds": step1_seconds, "epoch_seconds": timer.seconds,
           "classifier_seconds": classifier_info["seconds"] if classifier_info else 0.0,
           "classifier_accuracy": classifier_info["accuracy"] if classifier_info else None,
           "test_seconds_per_image": evaluation["seconds"] / len(test_set),
           **({} if one_step else gain_keys(evaluation["precision_gain"])), **without}
    print(f"    {box_loss}{' one-step' if one_step else ''} seed {seed}: AP@.5 "
          f"{row['map_50']:.4f}  mAP {row['map']:.4f}  F1 {row['f1']:.4f}  step-1 AP@.5 "
          f"{row['step1_map_50']:.4f}  ({step1_seconds:.0f} s)", flush=True)
    return row, pipeline


GAIN_KEYS = ("precision_gain", "precision_gain_min", "precision_gain_share")
WITHOUT_TTA_KEYS = ("map_50_without_tta", "map_without_tta", "step1_map_50_without_tta")


def gain_keys(gain, prefix="") -> dict:
    """A row's `GAIN_KEYS` (with `prefix`) for `evaluate_pipeline`'s "precision_gain"
    (two-step minus step-1 precision at equal recall): its mean and minimum over recall
    levels, and the share of levels where step 2 is not worse."""
    def number(value):  # None: the curves share no recall level
        return float("nan") if value is None else value

    values = (gain["mean"], gain["min"], gain["share_not_worse"])
    return {f"{prefix}{key}": number(value) for key, value in zip(GAIN_KEYS, values)}


class EpochSeconds(keras.callbacks.Callback):
    """Wall seconds of each epoch's training; listed first among the callbacks, so the
    evaluation that later callbacks run at the epoch's end is not counted."""

    def __init__(self):
        super().__init__()
        self.seconds, self._start = [], None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def summarise(rows, short_epochs):
    """mean ± std over seeds of every metric, the short-budget AP and the mean curves."""
    summary = {key: mean_std([r[key] for r in rows])
               for key in (*METRICS, "step1_map_50", "step1_map", *GAIN_KEYS,
                           *WITHOUT_TTA_KEYS)
               if all(key in r for r in rows)}
    curves = np.asarray([r["curve_map_50"] for r in rows], np.float64)
    k = min(short_epochs, curves.shape[1])
    summary["short_epochs"] = k
    summary["short_step1_map_50"] = mean_std(curves[:, k - 1])
    summary["curve_map_50_mean"] = curves.mean(axis=0).tolist()
    summary["curve_map_50_std"] = (curves.std(axis=0, ddof=1) if len(rows) > 1
                                   else np.zeros(curves.shape[1])).tolist()
    steady = [s for r in rows for s in r["epoch_seconds"][1:]] or \
        [s for r in rows for s in r["epoch_seconds"]]
    summary["median_epoch_seconds"] = float(np.median(steady))
    summary["step1_seconds"] = mean_std([r["step1_seconds"] for r in rows])
    summary["runs"] = rows
    return summary


def synthetic_data(args):
    train_set, test_set, info = load_detection_data("synth_scenes", args.train_images,
                                                    args.test_images, args.image_size)
    return train_set, test_set, info


def settings(args, **extra):
    return {"train_images": args.train_images, "test_images": args.test_images,
            "epochs": args.epochs, "batch_size": args.batch_size,
            "learning_rate": args.learning_rate, "classifier_epochs": args.classifier_epochs,
            "curve_images": args.curve_images, "seeds": list(args.seeds),
            "image_size": args.image_size, "tiny": args.tiny, **extra}


def merge_table(stored, fresh, key="table"):
    """Keep the stored rows of a section made with the same settings, replace the rest."""
    if stored and stored.get("settings") == fresh["settings"]:
        table = {**stored[key], **fresh[key]}
        return {**fresh, key: table}
    if stored:
        print("    (the stored section was made with other settings: it is replaced)",
              flush=True)
    return fresh


# --------------------------------------------------------------------------- parts


def part_losses(args, data, classifiers, stored):
    train_set, test_set, info = data
    table = {}
    for loss in args.losses:
        rows = []
        for seed in args.seeds:
            print(f"--- losses: {loss} seed {seed}", flush=True)
            row, pipeline = one_run(train_set, test_set, loss, seed, args.epochs, args,
                                    classifiers, "synth")
            rows.append(row)
            if loss == args.losses[0] and seed == args.seeds[0]:
                folder = pipeline.save(args.work_dir / "pipeline")
                (folder / "benchmark.json").write_text(json.dumps(
                    {"box_loss": loss, "seed": seed, "settings": settings(args)}))
        table[loss] = summarise(rows, args.short_epochs)
    fresh = {"environment": environment(), "split": info["split"], "settings": settings(args),
             "table": table}
    return merge_table(stored, fresh)


def part_steps(args, data, classifiers, stored_losses):
    train_set, test_set, info = data
    loss = args.steps_loss
    same = (stored_losses or {}).get("settings") == settings(args) and \
        loss in (stored_losses or {}).get("table", {})
    table = {}
    if same:
        print(f"--- steps: two-step {loss} from the losses section", flush=True)
        table["two-step"] = stored_losses["table"][loss]
    else:
        rows = []
        for seed in args.seeds:
            print(f"--- steps: two-step {loss} seed {seed}", flush=True)
            rows.append(one_run(train_set, test_set, loss, seed, args.epochs, args,
                                classifiers, "synth")[0])
        table["two-step"] = summarise(rows, args.short_epochs)
    rows = []
    for seed in args.seeds:
        print(f"--- steps: one-step {loss} seed {seed}", flush=True)
        rows.append(one_run(train_set, test_set, loss, seed, args.epochs, args, classifiers,
                            "synth", one_step=True)[0])
    table["one-step"] = summarise(rows, args.short_epochs)
    return {"environment": environment(), "split": info["split"],
            "settings": settings(args, box_loss=loss), "table": table}


def _set_jit(model, jit):
    model.jit_compile = jit
    model.predict_function = None  # rebuilt with the new setting


def _median_rate(seconds, batch):
    return batch / float(np.median(seconds))


def part_fused(args, data, classifiers):
    train_set, test_set, _ = data
    folder = args.work_dir / "pipeline"
    saved = json.loads((folder / "benchmark.json").read_text()) \
        if (folder / "benchmark.json").exists() else None
    if saved is not None and saved["settings"] == settings(args):
        source = (f"the pipeline of the losses part ({saved['box_loss']}, seed "
                  f"{saved['seed']})")
        pipeline = TwoStepDetector.load(folder)
    else:
        source = f"trained here (eiou, seed {args.seeds[0]}, {args.epochs} epochs)"
        print(f"--- fused: no pipeline of the losses part at these settings in {folder}; "
              "training one", flush=True)
        _, pipeline = one_run(train_set, test_set, "eiou", args.seeds[0], args.epochs, args,
                              classifiers, "synth")
    fused = pipeline.fused()
    batch = test_set.images[:args.fused_batch]
    print(f"--- fused: differences and AP ({source})", flush=True)
    a, b = pipeline.step1(batch), fused.step1(batch)
    selected = pipeline.select(a)
    counts = [len(s[0]) for s in selected]
    differences = {"step1_logits": float(np.abs(a["scores"] - b["scores"]).max()),
                   "step1_boxes_pixels": float(np.abs(a["boxes"] - b["boxes"]).max())}
    if pipeline.classifier is not None and sum(counts):
        from zoo.boxes import expand_boxes
        from zoo.models.detector.pipeline import crop_boxes

        crops = crop_boxes(batch, expand_boxes(np.concatenate([s[0] for s in selected]),
                                               pipeline.context),
                           np.repeat(np.arange(len(selected)), counts), pipeline.crop_size)
        differences["classifier_probabilities"] = float(np.abs(
            pipeline.class_probabilities(crops) - fused.class_probabilities(crops)).max())
    unfused_eval, fused_eval = evaluate_pipeline(pipeline, test_set), \
        evaluate_pipeline(fused, test_set)
    accuracy = {name: {"map_50": float(e["result"]["map_50"]), "map": float(e["result"]["map"])}
                for name, e in (("unfused", unfused_eval), ("fused", fused_eval))}

    speed = {}
    variants = {"unfused": pipeline, "fused": fused}
    for jit in (False, True):
        for p in variants.values():
            _set_jit(p.detector, jit)
            if p.classifier is not None:
                _set_jit(p.classifier, jit)
        tasks = {"step1": lambda p: p.detector.predict_on_batch(batch),
                 "pipeline": lambda p: p.detect(batch)}
        seconds = {(task, name): [] for task in tasks for name in variants}
        for task, call in tasks.items():
            for p in variants.values():
                for _ in range(2):  # tracing and warm-up
                    call(p)
        print(f"--- fused: timing, XLA {'on' if jit else 'off'}", flush=True)
        for rep in range(args.fused_reps):
            names = list(variants) if rep % 2 == 0 else list(variants)[::-1]
            for task, call in tasks.items():
                for name in names:
                    started = time.perf_counter()
                    call(variants[name])
                    seconds[(task, name)].append(time.perf_counter() - started)
        key = "xla" if jit else "no_xla"
        speed[key] = {}
        for task in tasks:
            unfused_rate = _median_rate(seconds[(task, "unfused")], len(batch))
            fused_rate = _median_rate(seconds[(task, "fused")], len(batch))
            speed[key][task] = {"unfused_images_per_second": unfused_rate,
                                "fused_images_per_second": fused_rate,
                                "ratio": fused_rate / unfused_rate,
                                "unfused_seconds": seconds[(task, "unfused")],
                                "fused_seconds": seconds[(task, "fused")]}
            print(f"    {task:8s} XLA {'on ' if jit else 'off'}: {unfused_rate:7.1f} -> "
                  f"{fused_rate:7.1f} images/s (x{fused_rate / unfused_rate:.2f})", flush=True)
    params = {name: {"detector": p.detector.count_params(),
                     "classifier": p.classifier.count_params() if p.classifier else 0}
              for name, p in variants.items()}
    return {"environment": environment(), "source": source, "batch": len(batch),
            "reps": args.fused_reps, "max_abs_difference": differences, "accuracy": accuracy,
            "speed": speed, "parameters": params}


def neon_settings(args):
    return {"tile_size": args.neon_size, "epochs": args.neon_epochs,
            "backbone_weights": args.neon_backbone, "strides": args.neon_strides,
            "score_loss": args.score_loss, "batch_size": args.neon_batch,
            "box_loss": args.neon_loss,
            "learning_rate": args.learning_rate,
            "classifier_epochs": args.classifier_epochs, "tiny": args.tiny}


def part_neon(args, classifiers, stored=None, save=None):
    """Per seed, resumable: a seed stored with the same settings is not run again; `save`
    is called with the partial section after every seed."""
    train_set, test_set, info = load_detection_data("neon_trees", tiles=True)
    print(f"--- neon: {info['split']}", flush=True)
    wanted = neon_settings(args)
    done = {}
    if stored and all(stored_settings(stored).get(k) == v for k, v in wanted.items()):
        done = {row["seed"]: row for row in stored.get("runs", [])}
    rows = []
    section = None
    for seed in args.seeds:
        if seed in done:
            print(f"--- neon: seed {seed} stored, not run again", flush=True)
            rows.append(done[seed])
            continue
        print(f"--- neon: seed {seed}", flush=True)
        model, pipeline, step1_seconds, epoch_seconds, classifier_info = tiled_two_step(
            train_set, seed, args, classifiers, args.neon_loss, args.neon_epochs,
            args.neon_batch, args.neon_size, args.neon_backbone, args.neon_strides,
            args.score_loss)
        evaluation = evaluate_pipeline(pipeline, test_set)
        result = evaluation["result"]
        # step 2 again, with step 1's false positives on the training tiles as background
        negatives = mine_hard_negatives(model, train_set, tiled=True)
        hard, hard_scale, _ = fit_classifier(train_set, epochs=args.classifier_epochs,
                                             seed=seed, verbose=0, negatives=negatives,
                                             **(TINY_CLASSIFIER if args.tiny else {}))
        hard_evaluation = evaluate_pipeline(
            TwoStepDetector(model, hard, class_names=train_set.class_names,
                            class_scale=hard_scale), test_set)
        row = {"seed": seed, **{k: float(result[k]) for k in METRICS},
               **{k: evaluation[k] for k in ("step1_map_50", "step1_map", "untiled_map_50",
                                             "untiled_step1_map_50")},
               **{f"hard_{k}": float(hard_evaluation["result"][k]) for k in METRICS},
               **gain_keys(evaluation["precision_gain"]),
               **gain_keys(hard_evaluation["precision_gain"], "hard_"),
               "hard_negatives": int(sum(len(n) for n in negatives)),
               "step1_seconds": step1_seconds, "epoch_seconds": epoch_seconds,
               "classifier_accuracy": classifier_info["accuracy"],
               "test_seconds": evaluation["seconds"]}
        rows.append(row)
        print(f"    seed {seed}: AP@.5 {row['map_50']:.4f} (step 1 alone "
              f"{row['step1_map_50']:.4f}, hard negatives {row['hard_map_50']:.4f}); untiled "
              f"{row['untiled_map_50']:.4f} ({row['untiled_step1_map_50']:.4f})  "
              f"({step1_seconds:.0f} s)", flush=True)
        section = neon_section(args, info, rows, evaluation["max_detections"])
        if save is not None:
            save(section)
    if section is None:  # every seed was stored
        section = neon_section(args, info, rows, stored["settings"]["max_detections"])
    return section


def tiled_two_step(train_set, seed, args, classifiers, box_loss, epochs, batch_size, tile_size,
                   backbone_weights=None, strides=None, score_loss="focal"):
    """Step 1 trained on random native-resolution windows of `tile_size` (`RandomTiles`),
    then the shared crop classifier of the "neon" data: (step-1 model, pipeline, step-1
    seconds, seconds per epoch, classifier info). `args` gives `learning_rate` and `tiny`."""
    timer = EpochSeconds()
    started = time.perf_counter()
    model, _ = fit_detector(train_set, box_loss, epochs, batch_size, args.learning_rate, seed,
                            callbacks=[timer], verbose=0, tile_size=tile_size,
                            backbone_weights=backbone_weights, score_loss=score_loss,
                            **_stride_kwargs(strides), **(TINY_DETECTOR if args.tiny else {}))
    step1_seconds = time.perf_counter() - started
    classifier, scale, classifier_info = classifiers.get("neon", train_set, seed)
    pipeline = TwoStepDetector(model, classifier, class_names=train_set.class_names,
                               class_scale=scale)
    return model, pipeline, step1_seconds, timer.seconds, classifier_info


def neon_section(args, info, rows, max_detections):
    keys = (*METRICS, "step1_map_50", "step1_map", "untiled_map_50", "untiled_step1_map_50",
            *(f"hard_{k}" for k in METRICS))
    return {"environment": environment(), "split": info["split"],
            "augmentation": f"RandomTiles(tile_size={args.neon_size}, dihedral=True)",
            "settings": {**neon_settings(args), "seeds": [r["seed"] for r in rows],
                         "max_detections": max_detections},
            "summary": {key: mean_std([r[key] for r in rows]) for key in
                        (*keys, *GAIN_KEYS, *(f"hard_{k}" for k in GAIN_KEYS))
                        if all(key in r for r in rows)},
            "runs": rows}


def _stride_kwargs(strides):
    """The detector's `stride` argument from a list of strides (None: the default)."""
    if not strides:
        return {}
    return {"stride": strides[0] if len(strides) == 1 else tuple(strides)}


def section_key(data, backbone, strides, score_loss="focal", epochs=None, zoom=None,
                classifier_backbone=None, image_size=None, init_from=None, colour=None,
                ema=None, flip_tta=False):
    """"voc", "voc_pretrained", "voc_pretrained_pyramid", "voc_pretrained_pyramid_quality"
    (quality focal score), "voc_..._160ep" (`epochs` other than the part's default; None:
    the default), "voc_..._zoom0.5-2" (a training zoom range other than the default; None:
    the default), "voc_..._step2pretrained" (the crop classifier from pretrained weights),
    "voc_..._256px" (an input size other than the default; None: the default),
    "voc_..._init-NAME" (step 1 started from the step 1 `init_from` names), "voc_..._colour"
    (colour jitter), "voc_..._ema" (step 1's weights averaged), "voc_..._flip" (scored with
    flip test-time augmentation), ... (the same for "neon")."""
    return (data + ("_pretrained" if backbone else "") + ("_pyramid" if strides else "")
            + ("_quality" if score_loss == "quality_focal" else "")
            + (f"_{epochs}ep" if epochs is not None else "")
            + (f"_zoom{zoom[0]:g}-{zoom[1]:g}" if zoom is not None else "")
            + ("_step2pretrained" if classifier_backbone else "")
            + (f"_init-{Path(str(init_from)).name}" if init_from else "")
            + ("_colour" if colour else "") + ("_ema" if ema else "")
            + ("_flip" if flip_tta else "")
            + (f"_{image_size}px" if image_size is not None else ""))


def sections(results, data) -> list:
    """The keys of `results` that hold `data`'s sections ("voc", "voc_..."), in the order
    section_key's parts are listed (start, pyramid, score loss), then by epochs."""
    order = [section_key(data, b, p, q) for q in SCORE_LOSSES for b in (None, "x")
             for p in (None, (8,))]

    def rank(key):
        with_size = re.fullmatch(r"(.*)_(\d+)px", key)
        rest, size = with_size.groups() if with_size else (key, "0")
        with_init = re.fullmatch(r"(.*)_init-(.*)", rest)
        rest, init = with_init.groups() if with_init else (rest, "")
        step2 = rest.endswith("_step2pretrained")
        rest = rest.removesuffix("_step2pretrained")
        with_zoom = re.fullmatch(r"(.*)_zoom([\d.]+)-([\d.]+)", rest)
        key_zoom = float(with_zoom.group(2)) if with_zoom else 0.0
        rest = with_zoom.group(1) if with_zoom else rest
        with_epochs = re.fullmatch(r"(.*)_(\d+)ep", rest)
        base, epochs = with_epochs.groups() if with_epochs else (rest, "0")
        return (order.index(base) if base in order else len(order), int(epochs), key_zoom,
                step2, init, int(size), key)

    return sorted((k for k in results if k == data or k.startswith(data + "_")), key=rank)


def stored_settings(section) -> dict:
    """A stored section's settings; sections from before --score-loss trained with "focal"."""
    return {"score_loss": "focal", **section.get("settings", {})}


def _start(settings):
    """How a real-data section's detector starts and what it predicts from, in words."""
    backbone = settings.get("backbone_weights")
    strides = settings.get("strides")
    return ((f"backbone from {backbone}" if backbone else "from random weights")
            + (f", feature pyramid (strides {', '.join(map(str, strides))})" if strides
               else "")
            + (", quality focal score" if settings.get("score_loss") == "quality_focal"
               else "")
            + (", zoom {:g}-{:g}".format(*settings["zoom"]) if settings.get("zoom") else "")
            + (f", crop classifier from {settings['classifier_backbone']}"
               if settings.get("classifier_backbone") else "")
            + (f", step 1 from {settings['init_from']}" if settings.get("init_from") else "")
            + (", colour jitter {:g}/{:g}/{:g}".format(*settings["colour_jitter"])
               if settings.get("colour_jitter") else "")
            + (f", weight average (EMA {settings['ema_momentum']:g})"
               if settings.get("ema_momentum") else "")
            + (", flip TTA" if settings.get("flip_tta") else ""))


def _described(settings) -> str:
    """`_start` and the training budget: what tells a real-data section from its siblings."""
    return f"{_start(settings)}, {_epochs(settings['epochs'])}"


def _epochs(n) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def part_voc(args, classifiers, stored, save=None):
    """Per seed, resumable and mergeable: a (loss, seed) stored in a section made with the
    same settings (the seeds apart) is not run again and stays in the section beside the
    seeds run now; `save` is called with the section after every seed."""
    root = Path(args.voc)
    if not root.is_dir():
        message = f"VOC folder {root} not found: part skipped"
        print(f"--- voc: {message}", flush=True)
        return {"skipped": message}
    train_set, test_set, info = load_detection_data(f"voc:{root}",
                                                    image_size=args.image_size)
    if args.voc_zoom is not None or args.voc_colour is not None:
        info["augment"] = BoxAugmenter(
            zoom=args.voc_zoom or DEFAULT_ZOOM,
            **dict(zip(COLOUR_KEYS, args.voc_colour or (0.0, 0.0, 0.0))))
    print(f"--- voc: {info['split']}", flush=True)
    wanted = {**settings(args), "epochs": args.voc_epochs,
              "backbone_weights": args.voc_backbone,
              "strides": args.voc_strides, "score_loss": args.score_loss,
              **({"zoom": list(args.voc_zoom)} if args.voc_zoom else {}),
              **({"classifier_backbone": args.classifier_backbone}
                 if args.classifier_backbone else {}),
              **({"init_from": args.voc_init_from} if args.voc_init_from else {}),
              **({"colour_jitter": list(args.voc_colour)} if args.voc_colour else {}),
              **({"ema_momentum": args.voc_ema} if args.voc_ema else {}),
              **({"flip_tta": True} if args.voc_flip_tta else {}),
              "train_images": len(train_set), "test_images": len(test_set)}
    table = {}
    if stored and "table" in stored:
        if _without_seeds(stored_settings(stored)) == _without_seeds(wanted):
            table = dict(stored["table"])
        else:
            print("    (the stored section was made with other settings: it is replaced)",
                  flush=True)

    def section():
        seeds = sorted({r["seed"] for row in table.values() for r in row["runs"]})
        return {"environment": environment(), "folder": str(root), "split": info["split"],
                "augmentation": repr(info["augment"]),
                "class_names": list(train_set.class_names), "test_names": info["test_names"],
                "settings": {**wanted, "seeds": seeds}, "table": table}

    for loss in args.voc_losses:
        rows = {r["seed"]: r for r in table.get(loss, {}).get("runs", [])}
        for seed in args.seeds:
            if seed in rows:
                print(f"--- voc: {loss} seed {seed} stored, not run again", flush=True)
                continue
            print(f"--- voc: {loss} seed {seed}", flush=True)
            rows[seed] = one_run(train_set, test_set, loss, seed, args.voc_epochs, args,
                                 classifiers, "voc", augment=info["augment"],
                                 backbone_weights=args.voc_backbone,
                                 stride=args.voc_strides, score_loss=args.score_loss,
                                 init_from=args.voc_init_from,
                                 ema_momentum=args.voc_ema,
                                 flip_tta=args.voc_flip_tta)[0]
            table[loss] = summarise([rows[k] for k in sorted(rows)], args.short_epochs)
            if save is not None:
                save(section())
    return section()


def _without_seeds(settings_) -> dict:
    return {k: v for k, v in settings_.items() if k != "seeds"}


# --------------------------------------------------------------------------- report


def loss_table(table, epochs_label="epochs"):
    first = next(iter(table.values()))
    k = first["short_epochs"]
    lines = [f"| box loss | AP@.5 | mAP | F1 | step-1 AP@.5 | step-1 AP@.5 after {k} "
             f"{epochs_label} | s / epoch |", "|---|---|---|---|---|---|---|"]
    order = sorted(table, key=lambda name: -table[name]["map_50"]["mean"])
    for name in order:
        row = table[name]
        lines.append(f"| {name} | {format_mean_std(row['map_50'])} | {format_mean_std(row['map'])} | {format_mean_std(row['f1'])} "
                     f"| {format_mean_std(row['step1_map_50'])} | {format_mean_std(row['short_step1_map_50'])} | "
                     f"{row['median_epoch_seconds']:.0f} |")
    return lines


def _gain_target(where, summary) -> str:
    gain, share = summary["precision_gain"], summary["precision_gain_share"]
    met = gain["mean"] >= 0
    return (f"- two-step precision at equal recall ≥ step 1 alone, {where}: "
            f"{'met' if met else 'NOT met'} (precision gain {gain['mean']:+.3f} ± "
            f"{gain['std']:.3f}, mean over recall levels then seeds; not worse at "
            f"{100 * share['mean']:.0f} % of the levels; worst level "
            f"{summary['precision_gain_min']['mean']:+.3f})")


def _voc_label(section, loss) -> str:
    """What tells one kangaroo run from another in a target line: recipe, input size, loss."""
    settings = section["settings"]
    return f"{_described(settings)}, {settings['image_size']} px, {loss}"


def targets(results):
    lines = []
    table = results.get("losses", {}).get("table", {})
    if "eiou" in table:
        ap = table["eiou"]["map_50"]["mean"]
        lines.append(f"- synthetic AP@.5 ≥ 0.90 with EIoU: {'met' if ap >= 0.9 else 'NOT met'} "
                     f"({ap:.3f}, mean of {table['eiou']['map_50']['n']} seeds)")
    pairs = [(a, b) for a, b in (("eiou", "ciou"), ("ciou", "iou")) if a in table and b in table]
    for a, b in pairs:
        d, se = difference(table[a]["map_50"], table[b]["map_50"])
        verdict = ("holds" if d >= 0 else "holds within noise (difference > -2 standard "
                   "errors)" if d > -2 * se else "does NOT hold")
        lines.append(f"- {a.upper()} ≥ {b.upper()}: AP@.5 difference {d:+.4f} ± {se:.4f} "
                     f"(standard error over seeds): {verdict}")
    for key in sections(results, "voc"):
        table = results.get(key, {}).get("table", {})
        for loss, row in table.items():
            ap = max(row["map_50"]["mean"], row["step1_map_50"]["mean"])
            lines.append(f"- kangaroo AP@.5 ≥ 0.60 ({_voc_label(results[key], loss)}): "
                         f"{'met' if ap >= 0.6 else 'NOT met'} ({ap:.3f}, the better of "
                         f"two-step and step 1 alone, mean of {row['map_50']['n']} seeds)")
    for key in sections(results, "voc"):
        for loss, row in results.get(key, {}).get("table", {}).items():
            if "precision_gain" in row:
                lines.append(_gain_target(f"kangaroo ({_voc_label(results[key], loss)})", row))
    for key in sections(results, "neon"):
        neon = results.get(key, {}).get("summary")
        if neon and "precision_gain" in neon:
            lines.append(_gain_target(f"NEON ({_described(results[key]['settings'])})", neon))
    for key in sections(results, "neon"):
        neon = results.get(key, {}).get("summary")
        if not neon:
            continue
        described = _described(results[key]["settings"])
        ap = max(neon["map_50"]["mean"], neon["step1_map_50"]["mean"])
        lines.append(f"- NEON test tile AP@.5 ≥ 0.50 with tiling ({described}): "
                     f"{'met' if ap >= 0.5 else 'NOT met'} ({ap:.3f}, the better of two-step "
                     f"and step 1 alone, mean of {neon['map_50']['n']} seeds; whole image "
                     f"{neon['untiled_step1_map_50']['mean']:.3f})")
    fused = results.get("fused", {}).get("speed")
    if fused:
        ratio = fused["no_xla"]["step1"]["ratio"]
        lines.append(f"- fused step-1 network ≥ 1.3x images/s on CPU (no XLA): "
                     f"{'met' if ratio >= 1.3 else 'NOT met'} (x{ratio:.2f})")
    return lines


def without_tta_lines(table) -> list:
    """For a section scored with flip TTA: the same weights' numbers without it."""
    lines = []
    for loss, row in table.items():
        if "map_50_without_tta" in row:
            lines.append(
                f"{loss}, the same weights without flip TTA: AP@.5 "
                f"{format_mean_std(row['map_50_without_tta'])}, mAP "
                f"{format_mean_std(row['map_without_tta'])}, step-1 AP@.5 "
                f"{format_mean_std(row['step1_map_50_without_tta'])}.")
    return lines + [""] if lines else []


def markdown(results):
    lines = ["# Detector benchmark", "",
             "Produced by `benchmarks/detector.py`; every part records its own settings and "
             "machine in `detector.json`. Mean ± standard deviation over seeds.", ""]
    if results.get("losses"):
        section = results["losses"]
        s = section["settings"]
        lines += ["## Box losses on synthetic scenes", "",
                  f"{section['split']}; {s['epochs']} epochs of step 1 (batch {s['batch_size']},"
                  f" Adam {s['learning_rate']:g} cosine-decayed), crop classifier "
                  f"{s['classifier_epochs']} epochs (one per seed, shared by the losses), seeds "
                  f"{s['seeds']}. AP@.5, mAP and F1 are the two-step pipeline's; step-1 AP@.5 "
                  "is class-agnostic (the part the box loss trains). The convergence column is "
                  "step-1 AP@.5 after the first epochs of the same cosine schedule (not a "
                  "separately decayed short run)"
                  + (f", on the first {s['curve_images']} test scenes"
                     if 0 < s["curve_images"] < s["test_images"] else "") + ".", "",
                  *loss_table(section["table"]), ""]
    if results.get("steps"):
        section = results["steps"]
        lines += ["## One step against two", "",
                  f"Box loss {section['settings']['box_loss']}, same data, seeds and budget. "
                  "One-step: class-aware score logits, no crop classifier.", "",
                  "| detector | AP@.5 | mAP | F1 | step-1 s | test ms / image |",
                  "|---|---|---|---|---|---|"]
        for name, row in section["table"].items():
            per_image = np.mean([r["test_seconds_per_image"] for r in row["runs"]]) * 1000
            lines.append(f"| {name} | {format_mean_std(row['map_50'])} | {format_mean_std(row['map'])} | "
                         f"{format_mean_std(row['f1'])} | {row['step1_seconds']['mean']:.0f} | "
                         f"{per_image:.1f} |")
        lines.append("")
    if results.get("fused"):
        section = results["fused"]
        diff = section["max_abs_difference"]
        lines += ["## Fused (re-parameterized) against unfused", "",
                  f"Pipeline: {section['source']}. One batch of {section['batch']} test "
                  f"images, {section['reps']} interleaved repetitions, medians; ratio = fused "
                  "images/s over unfused images/s, measured in the same run. Both copies use "
                  "the same XLA setting.", "",
                  "| what | XLA | unfused images/s | fused images/s | ratio |",
                  "|---|---|---|---|---|"]
        for key, label in (("no_xla", "off"), ("xla", "on")):
            for task, row in section["speed"][key].items():
                lines.append(f"| {task} | {label} | {row['unfused_images_per_second']:.1f} | "
                             f"{row['fused_images_per_second']:.1f} | {row['ratio']:.2f} |")
        acc = section["accuracy"]
        lines += ["", "Largest absolute difference: " + ", ".join(
            f"{k.replace('_', ' ')} {v:.2e}" for k, v in diff.items()) + ". Test AP@.5 "
            f"unfused {acc['unfused']['map_50']:.4f}, fused {acc['fused']['map_50']:.4f}; mAP "
            f"{acc['unfused']['map']:.4f} / {acc['fused']['map']:.4f}.", ""]
    for key in sections(results, "voc"):
        if not results.get(key):
            continue
        section = results[key]
        start = _start(section.get("settings", {}))
        lines += ["## Pascal VOC: " + Path(section.get("folder", "")).name
                  + ("" if start == "from random weights" else f", {start}")
                  + (f", {_epochs(section['settings']['epochs'])}" if "settings" in section
                     else "")
                  + (f", {section['settings']['image_size']} px" if section.get(
                      "settings", {}).get("image_size", IMAGE_SIDE) != IMAGE_SIDE else ""),
                  ""]
        if "skipped" in section:
            lines += [section["skipped"], ""]
        else:
            s = section["settings"]
            lines += [f"{section['folder']}, classes {section['class_names']}: "
                      f"{section['split']}. Letterboxed to {s['image_size']} px, "
                      f"{s['epochs']} epochs with "
                      f"{section['augmentation']}, seeds {s['seeds']}. The test images are "
                      "listed in detector.json.", "",
                      *loss_table(section["table"]), "", *without_tta_lines(section["table"])]
    for key in sections(results, "neon"):
        if not results.get(key):
            continue
        section = results[key]
        s, summary = section["settings"], section["summary"]
        lines += [f"## NEON tree crowns: tiled, {_described(s)}", "",
                  f"{section['split']}. Step 1: {s['epochs']} epochs of {section['augmentation']}"
                  f" (batch {s['batch_size']}, {s['box_loss']}), crop classifier "
                  f"{s['classifier_epochs']} epochs, seeds {s['seeds']}. Tiled: the "
                  f"{s['tile_size']}-px detector run over the test tile in overlapping tiles; "
                  "whole: the test tile letterboxed into the same input. COCOeval counts up to "
                  f"{s['max_detections']} detections per image.", "",
                  "| detector | AP@.5 tiled | AP@.5 whole image | mAP tiled | F1 tiled |",
                  "|---|---|---|---|---|",
                  f"| two-step | {format_mean_std(summary['map_50'])} | {format_mean_std(summary['untiled_map_50'])} | "
                  f"{format_mean_std(summary['map'])} | {format_mean_std(summary['f1'])} |",
                  f"| step 1 alone | {format_mean_std(summary['step1_map_50'])} | "
                  f"{format_mean_std(summary['untiled_step1_map_50'])} | {format_mean_std(summary['step1_map'])} | – |",
                  f"| two-step, step 2 with hard negatives | {format_mean_std(summary['hard_map_50'])} | – | "
                  f"{format_mean_std(summary['hard_map'])} | {format_mean_std(summary['hard_f1'])} |",
                  "", "Hard negatives: step 1's false positives on the training tiles (IoU < "
                  "0.3 with every tree, at most one per tree of the tile, best scored first), "
                  "cropped as background for a second crop classifier trained like the first.",
                  ""]
    found = targets(results)
    if found:
        lines += ["## Targets", "", *found, ""]
    return "\n".join(lines)


def plot(results, path):
    losses = results.get("losses", {}).get("table")
    voc = results.get("voc", {}).get("table")
    if not losses:
        return None
    panels = 3 if voc else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2))
    order = sorted(losses, key=lambda name: -losses[name]["map_50"]["mean"])
    x = np.arange(len(order))
    ax = axes[0]
    for offset, key, label in ((-0.2, "map_50", "pipeline AP@.5"),
                               (0.2, "step1_map_50", "step-1 AP@.5 (class-agnostic)")):
        ax.bar(x + offset, [losses[n][key]["mean"] for n in order], 0.4,
               yerr=[losses[n][key]["std"] for n in order], capsize=3, label=label)
    ax.axhline(0.9, color="grey", ls="--", lw=1)
    low = min(losses[n][k]["mean"] for n in order for k in ("map_50", "step1_map_50"))
    s = results["losses"]["settings"]
    ax.set(xticks=x, ylabel="AP@.5 on the test scenes", ylim=(max(0.0, low - 0.1), 1.0),
           title=f"by box loss ({s['epochs']} epochs, mean ± std of {len(s['seeds'])} "
                 f"seed{'s' if len(s['seeds']) > 1 else ''})")
    ax.set_xticklabels(order, rotation=30)
    ax.legend(fontsize=8, loc="lower left")
    for ax, table, title in ((axes[1], losses, "synthetic scenes"),
                             *(((axes[2], voc, "VOC: " + Path(results["voc"]["folder"]).name),)
                               if voc else ())):
        for name in sorted(table, key=lambda n: -table[n]["map_50"]["mean"]):
            mean = np.asarray(table[name]["curve_map_50_mean"])
            std = np.asarray(table[name]["curve_map_50_std"])
            epochs = np.arange(1, len(mean) + 1)
            ax.plot(epochs, mean, marker="o", ms=3, label=name)
            ax.fill_between(epochs, mean - std, mean + std, alpha=0.15)
        ax.set(xlabel="epoch", ylabel="step-1 AP@.5 (class-agnostic)",
               title=f"convergence, {title}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--losses", nargs="+", default=list(BOX_LOSSES), choices=BOX_LOSSES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=6, help="step-1 epochs (synthetic)")
    parser.add_argument("--train-images", type=int, default=2000)
    parser.add_argument("--test-images", type=int, default=500)
    parser.add_argument("--short-epochs", type=int, default=2,
                        help="the short budget: step-1 AP@.5 after this many epochs")
    parser.add_argument("--curve-images", type=int, default=200,
                        help="score the per-epoch curve on the first N test images (0: all)")
    parser.add_argument("--classifier-epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--steps-loss", default="eiou", choices=BOX_LOSSES)
    parser.add_argument("--fused-reps", type=int, default=20)
    parser.add_argument("--fused-batch", type=int, default=32)
    parser.add_argument("--voc", default=str(DEFAULT_VOC), help="a Pascal VOC folder")
    parser.add_argument("--voc-epochs", type=int, default=VOC_EPOCHS,
                        help=f"other than {VOC_EPOCHS}: results go to sections voc_..._Nep")
    parser.add_argument("--voc-losses", nargs="+", default=["eiou"], choices=BOX_LOSSES)
    parser.add_argument("--neon-epochs", type=int, default=NEON_EPOCHS,
                        help=f"other than {NEON_EPOCHS}: results go to sections neon_..._Nep")
    parser.add_argument("--neon-size", type=int, default=256, help="tile side of the neon part")
    parser.add_argument("--neon-batch", type=int, default=16)
    parser.add_argument("--neon-loss", default="eiou", choices=BOX_LOSSES)
    parser.add_argument("--voc-backbone", default=None,
                        help="shipped backbone weights for the voc part; its results go to "
                             "section voc_pretrained")
    parser.add_argument("--neon-backbone", default=None,
                        help="shipped backbone weights for the neon part, e.g. "
                             "repvgg_tiny.cifar10; its results go to section neon_pretrained")
    parser.add_argument("--voc-strides", default=None,
                        help="step 1 as a feature pyramid on the voc part, e.g. 8,16,32 "
                             "(section voc_..._pyramid)")
    parser.add_argument("--neon-strides", default=None,
                        help="the same for the neon part")
    parser.add_argument("--voc-zoom", default=None,
                        help="MIN,MAX: the voc part's training zoom range (BoxAugmenter's "
                             "zoom; default 0.75,1.33), section voc_..._zoomMIN-MAX")
    parser.add_argument("--classifier-backbone", default=None,
                        help="start the real sets' crop classifier from these shipped RepVGG "
                             "weights (repvgg_tiny.cifar10) with their widths and depths; "
                             "sections ..._step2pretrained (voc part only)")
    parser.add_argument("--voc-init-from", default=None,
                        help="start the voc part's step 1 from this step 1: shipped weights "
                             "(detector.synth_scenes), a run folder or a .keras file, as "
                             "zoo.train's --init-from; sections ..._init-NAME")
    parser.add_argument("--voc-colour", default=None,
                        help="S,C,B: saturation, contrast and brightness jitter of the voc "
                             "part's training photos (BoxAugmenter's, zoo.train "
                             "--colour-jitter), sections ..._colour")
    parser.add_argument("--voc-flip-tta", action="store_true",
                        help="score the voc part with flip test-time augmentation (zoo.train "
                             "--flip-tta), and the same weights without it; sections ..._flip")
    parser.add_argument("--voc-ema", type=float, default=None,
                        help="momentum of an average of the voc part's step-1 weights that "
                             "becomes its final weights (zoo.train --ema; off by default), "
                             "sections ..._ema")
    parser.add_argument("--score-loss", default="focal", choices=SCORE_LOSSES,
                        help="step 1's score loss on the voc and neon parts; quality_focal "
                             "results go to sections ..._quality")
    parser.add_argument("--image-size", type=int, default=IMAGE_SIDE,
                        help="side of the (square) images, synthetic and VOC")
    parser.add_argument("--tiny", action="store_true",
                        help="small detector and classifier: for smoke tests only")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "benchmark_detector",
                        help="where the losses part leaves a pipeline for the fused part")
    args = parser.parse_args(argv)
    args.losses = list(dict.fromkeys(args.losses))
    for name in ("epochs", "train_images", "test_images", "short_epochs", "voc_epochs",
                 "neon_epochs", "neon_batch",
                 "fused_reps", "fused_batch", "classifier_epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.image_size % 16:
        parser.error(f"--image-size must be a multiple of 16, got {args.image_size}")
    for name in ("voc_strides", "neon_strides"):
        try:
            strides = checked_strides(getattr(args, name))
        except ConfigError as error:
            parser.error(f"--{name.replace('_', '-')}: {error}")
        setattr(args, name, list(strides) if isinstance(strides, tuple) else
                None if strides is None else [strides])
    try:
        args.voc_zoom = checked_zoom(args.voc_zoom)
    except ConfigError as error:
        parser.error(f"--voc-zoom: {error}")
    try:
        args.voc_colour = checked_colour(args.voc_colour)
        args.voc_ema = checked_ema(args.voc_ema) or None
    except ConfigError as error:
        parser.error(str(error))
    if args.voc_strides and args.image_size % max(args.voc_strides):
        parser.error(f"--image-size must be a multiple of {max(args.voc_strides)} for "
                     f"--voc-strides")

    path = args.results_dir / f"{NAME}.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    classifiers = Classifiers(args)
    data = synthetic_data(args) if set(args.parts) & {"losses", "steps", "fused"} else None
    args.work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for part in PARTS:  # in this order: fused uses the pipeline that losses saves
        if part not in args.parts:
            continue
        part_started = time.perf_counter()
        if part == "losses":
            results["losses"] = part_losses(args, data, classifiers, results.get("losses"))
        elif part == "steps":
            results["steps"] = part_steps(args, data, classifiers, results.get("losses"))
        elif part == "fused":
            results["fused"] = part_fused(args, data, classifiers)
        elif part == "voc":
            part = section_key("voc", args.voc_backbone, args.voc_strides, args.score_loss,
                               None if args.voc_epochs == VOC_EPOCHS else args.voc_epochs,
                               args.voc_zoom, args.classifier_backbone,
                               None if args.image_size == IMAGE_SIDE else args.image_size,
                               args.voc_init_from, args.voc_colour, args.voc_ema,
                               args.voc_flip_tta)
            results[part] = part_voc(args, classifiers, results.get(part),
                                     _saver(results, part, args.results_dir))
        else:
            part = section_key("neon", args.neon_backbone, args.neon_strides, args.score_loss,
                               None if args.neon_epochs == NEON_EPOCHS else args.neon_epochs)
            results[part] = part_neon(args, classifiers, results.get(part),
                                      _saver(results, part, args.results_dir))
        results[part]["seconds"] = time.perf_counter() - part_started
        write_json(NAME, results, args.results_dir)  # after every part: a crash keeps the rest
        print(f"=== part {part}: {results[part]['seconds']:.0f} s", flush=True)
    results["environment"] = environment()
    write_json(NAME, results, args.results_dir)
    text = markdown(results)
    write_text(f"{NAME}.md", text, args.results_dir)
    plot(results, args.results_dir / f"{NAME}.png")
    print(text)
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    return 0


def _saver(results, part, results_dir):
    """Stores `results[part]` and writes the results file: a killed run keeps its seeds."""
    def save(section):
        results[part] = section
        write_json(NAME, results, results_dir)
    return save


if __name__ == "__main__":
    sys.exit(main())
