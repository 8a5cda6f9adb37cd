"""Object-detection evaluation: COCO mAP through pycocotools, precision / recall / F1 at the
best confidence threshold, PR curves, a Keras callback and two plots.

    from zoo.evaluation.detection import evaluate_detections, DetectionEvaluator
    result = evaluate_detections(predictions, test_set, test_set.class_names)
    result["map"], result["map_50"], result["f1"], result["score_threshold"]

    evaluator = DetectionEvaluator(val_set, predict_fn, every_n_epochs=1)
    model.fit(train_batches, epochs=20, callbacks=[evaluator, keras.callbacks.CSVLogger(...)])

Inputs (the representation of `zoo.datasets.detection`, boxes "xyxy" in pixels):

- ground truth: a `DetectionSet`, or a dict of padded arrays `{"boxes": (N, M, 4),
  "classes": (N, M)}` with class -1 for padding and an optional `"difficult": (N, M)`;
- predictions: one `(boxes (k, 4), scores (k,), classes (k,))` per image (k may be 0; rows
  with class -1 are padding and skipped), or a dict of padded arrays `{"boxes": (N, K, 4),
  "scores": (N, K), "classes": (N, K)}`. `box_format` converts predicted boxes given as
  "xywh" or "cxcywh".

COCO metrics (`coco_metrics`): ground truth and predictions are converted to COCO
dictionaries in memory (`to_coco`) and scored by `pycocotools.cocoeval.COCOeval` ("bbox"),
whose printing is captured into `result["coco_summary"]`. `map` = AP averaged over IoU
0.50:0.05:0.95 and over the classes that have ground truth, with COCO's 101-point
interpolated precision; `map_50`, `map_75` at one IoU; `map_small/medium/large` by box area
(< 32², 32²-96², > 96² pixels² of the evaluated images); `mar_1/10/100` the recall with at
most 1/10/100 detections per image and class. COCO keeps the 100 best-scored detections
per image and class. A value COCO leaves undefined (-1: no ground truth in that range) is
NaN here. Difficult (VOC) / crowd boxes are passed as `iscrowd=1`: detections on them count
neither as true nor false positives, and missing them costs nothing.

Precision, recall and F1 (`match_detections`, `precision_recall_curve`): at one IoU
(0.5), predictions are matched greedily per image and class in descending score (COCO's
order, ties kept in input order): each takes the unmatched ground-truth box of its class with
the highest IoU, if that IoU >= the threshold (a true positive); else it is a false positive,
unless it overlaps a difficult box by the threshold (then it is ignored). Pooling the
matches of all images and classes and sweeping a confidence threshold t (keep scores >= t)
gives the PR curve; `precision`, `recall`, `f1` and `score_threshold` are read at the t that
maximises F1 (the highest such t on ties). Unlike COCO, predictions of a class that has no
ground truth anywhere count as false positives here. With no predictions at all,
precision = recall = F1 = 0 and `score_threshold` is NaN.
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np

import keras

from zoo.boxes import pairwise_iou, to_xyxy

COCO_STAT_KEYS = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large",
                  "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large")
F1_KEYS = ("precision", "recall", "f1", "score_threshold")
LOG_KEYS = ("map", "map_50", "map_75") + F1_KEYS


# ------------------------------------------------------------------ inputs

def _ground_truth(ground_truth):
    """-> boxes float64 (N, M, 4), classes int64 (N, M), difficult bool (N, M)."""
    if isinstance(ground_truth, dict):
        get = ground_truth.get
    elif hasattr(ground_truth, "boxes") and hasattr(ground_truth, "classes"):
        def get(name, default=None):
            return getattr(ground_truth, name, default)
    else:
        raise ValueError(f"ground_truth must be a DetectionSet or a dict with 'boxes' (N, M, 4) "
                         f"and 'classes' (N, M); got {type(ground_truth).__name__}")
    boxes = np.asarray(get("boxes"), np.float64)
    classes = np.asarray(get("classes"))
    difficult = get("difficult")
    difficult = np.zeros(classes.shape, bool) if difficult is None else np.asarray(difficult, bool)
    if boxes.ndim != 3 or boxes.shape[2] != 4 or classes.shape != boxes.shape[:2] \
            or difficult.shape != classes.shape:
        raise ValueError(f"ground truth must be boxes (N, M, 4), classes and difficult (N, M); "
                         f"got {boxes.shape}, {classes.shape} and {difficult.shape}")
    if not np.all(np.isfinite(boxes)):
        raise ValueError("ground-truth boxes must be finite")
    return boxes, classes.astype(np.int64), difficult


def _predictions(predictions, num_images, num_classes, box_format):
    """-> list of (boxes float64 (k, 4) xyxy, scores (k,), classes int64 (k,)), padding removed."""
    if isinstance(predictions, dict):
        missing = [k for k in ("boxes", "scores", "classes") if k not in predictions]
        if missing:
            raise ValueError(f"predictions as a dict need 'boxes', 'scores', 'classes'; missing "
                             f"{missing}")
        predictions = list(zip(*(np.asarray(predictions[k]) for k in ("boxes", "scores",
                                                                        "classes"))))
    predictions = list(predictions)
    if len(predictions) != num_images:
        raise ValueError(f"expected predictions for {num_images} images (one (boxes, scores, "
                         f"classes) per image), got {len(predictions)}")
    out = []
    for i, item in enumerate(predictions):
        if len(item) != 3:
            raise ValueError(f"prediction {i} must be (boxes, scores, classes), got {len(item)} "
                             f"items")
        boxes = np.asarray(item[0], np.float64)
        scores = np.asarray(item[1], np.float64).reshape(-1)
        classes = np.asarray(item[2], np.float64).reshape(-1)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or not len(boxes) == len(scores) == len(classes):
            raise ValueError(f"prediction {i}: expected boxes (k, 4), scores (k,), classes (k,); "
                             f"got {boxes.shape}, {scores.shape}, {classes.shape}")
        if not (np.all(np.isfinite(boxes)) and np.all(np.isfinite(scores))):
            raise ValueError(f"prediction {i}: boxes and scores must be finite")
        if np.any(classes != np.round(classes)) or np.any(classes < -1) \
                or np.any(classes >= num_classes):
            raise ValueError(f"prediction {i}: classes must be integers in [0, {num_classes}) "
                             f"(-1 = padding), got {np.unique(classes)[:10]}")
        keep = classes >= 0
        out.append((to_xyxy(boxes[keep], box_format), scores[keep],
                    classes[keep].astype(np.int64)))
    return out


def _check_classes(classes, class_names):
    class_names = tuple(str(c) for c in class_names)
    if not class_names:
        raise ValueError("class_names must not be empty")
    if classes.size and classes.max() >= len(class_names):
        raise ValueError(f"ground-truth class ids go up to {classes.max()} but there are "
                         f"{len(class_names)} class names")
    if np.any(classes < -1):
        raise ValueError(f"ground-truth classes must be >= 0 (-1 = padding), got "
                         f"{np.unique(classes)[:10]}")
    return class_names


# ------------------------------------------------------------------ COCO

def to_coco(ground_truth, predictions, class_names, box_format="xyxy"):
    """Ground truth and predictions -> (COCO ground-truth dict, list of COCO detections).

    Image ids are 1..N (the order of the images), category ids 1..K (class id + 1),
    annotation ids from 1 (COCOeval treats id 0 as "unmatched"). Boxes become [x, y, w, h];
    difficult boxes get `iscrowd=1`.
    """
    boxes, classes, difficult = _ground_truth(ground_truth)
    class_names = _check_classes(classes, class_names)
    preds = _predictions(predictions, len(boxes), len(class_names), box_format)
    images = [{"id": i + 1} for i in range(len(boxes))]
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(class_names)]
    annotations = []
    for i in range(len(boxes)):
        for box, cls, hard in zip(boxes[i], classes[i], difficult[i]):
            if cls < 0:
                continue
            w, h = max(box[2] - box[0], 0.0), max(box[3] - box[1], 0.0)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": int(cls) + 1, "bbox": [box[0], box[1], w, h],
                                "area": w * h, "iscrowd": int(hard)})
    detections = []
    for i, (pboxes, scores, pclasses) in enumerate(preds):
        for box, score, cls in zip(pboxes, scores, pclasses):
            w, h = max(box[2] - box[0], 0.0), max(box[3] - box[1], 0.0)
            detections.append({"id": len(detections) + 1, "image_id": i + 1,
                               "category_id": int(cls) + 1, "bbox": [box[0], box[1], w, h],
                               "score": float(score), "area": w * h, "iscrowd": 0})
    return {"images": images, "categories": categories, "annotations": annotations}, detections


def coco_metrics(predictions, ground_truth, class_names, box_format="xyxy",
                 max_detections=100) -> dict:
    """COCO box AP / AR through `pycocotools.cocoeval.COCOeval`.

    `max_detections` is COCOeval's largest `maxDets` (the best-scored detections per image
    that AP and the last AR count): 100 as in COCO; dense scenes with more objects than that
    per image (aerial tiles) need more, or recall is capped. "mar_100" is then the AR at
    `max_detections`.

    Returns:
        dict with the floats `COCO_STAT_KEYS` (NaN where COCO reports -1), "per_class"
        {name: {"ap", "ap_50", "ap_75"}} (NaN for a class without ground truth) and
        "coco_summary" (COCOeval's printed table).

    Reference: Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014;
    pycocotools (github.com/cocodataset/cocoapi).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_dict, detections = to_coco(ground_truth, predictions, class_names, box_format)
    class_names = [c["name"] for c in gt_dict["categories"]]
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        # built directly rather than with loadRes, which fails on an empty list
        coco_dt = COCO()
        coco_dt.dataset = {"images": gt_dict["images"], "categories": gt_dict["categories"],
                           "annotations": detections}
        coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        if int(max_detections) < 10:
            raise ValueError(f"max_detections must be >= 10, got {max_detections}")
        evaluator.params.maxDets = [1, 10, int(max_detections)]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    result = {key: (float(v) if v > -1 else math.nan)
              for key, v in zip(COCO_STAT_KEYS, evaluator.stats)}
    # precision[T, R, K, A, M]: IoU thresholds, 101 recalls, classes, area "all" = 0,
    # max detections `max_detections` = -1; -1 marks a class without ground truth
    precision = evaluator.eval["precision"][:, :, :, 0, -1]
    thresholds = evaluator.params.iouThrs

    def mean_defined(values):
        values = values[values > -1]
        return float(values.mean()) if values.size else math.nan

    per_class = {}
    for k, name in enumerate(class_names):
        per_class[name] = {
            "ap": mean_defined(precision[:, :, k]),
            "ap_50": mean_defined(precision[np.isclose(thresholds, 0.5), :, k]),
            "ap_75": mean_defined(precision[np.isclose(thresholds, 0.75), :, k]),
        }
    # COCOeval's own mAP (stats[0]) always reads maxDets=100 and is -1 when that is not in
    # the list: take it from the precision array, like the per-class values
    result["map"] = mean_defined(precision)
    result["per_class"] = per_class
    result["coco_summary"] = captured.getvalue()
    return result


# ------------------------------------------------------------------ precision / recall / F1

def match_detections(predictions, ground_truth, num_classes, iou_threshold=0.5,
                     box_format="xyxy") -> dict:
    """Greedy class-aware matching of predictions to ground truth (see the module docstring).

    Returns:
        dict of arrays over the non-ignored predictions — "image" (int), "class" (int),
        "score", "true_positive" (bool) — and "num_ground_truth" (K,), the non-difficult
        ground-truth boxes per class.
    """
    boxes, classes, difficult = _ground_truth(ground_truth)
    preds = _predictions(predictions, len(boxes), num_classes, box_format)
    if not 0.0 < float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    rows = []  # (image, class, score, true positive)
    num_gt = np.zeros(num_classes, np.int64)
    for i, (pboxes, scores, pclasses) in enumerate(preds):
        valid = classes[i] >= 0
        gboxes, gclasses, ghard = boxes[i][valid], classes[i][valid], difficult[i][valid]
        num_gt += np.bincount(gclasses[~ghard], minlength=num_classes)[:num_classes]
        for cls in np.unique(pclasses):
            mine = np.nonzero(pclasses == cls)[0]
            mine = mine[np.argsort(-scores[mine], kind="mergesort")]
            regular = np.nonzero((gclasses == cls) & ~ghard)[0]
            hard = np.nonzero((gclasses == cls) & ghard)[0]
            iou_regular = pairwise_iou(pboxes[mine], gboxes[regular])
            iou_hard = pairwise_iou(pboxes[mine], gboxes[hard])
            taken = np.zeros(len(regular), bool)
            for row, p in enumerate(mine):
                candidates = np.where(taken, -1.0, iou_regular[row]) if len(regular) else []
                if len(regular) and candidates.max() >= iou_threshold:
                    taken[int(np.argmax(candidates))] = True
                    rows.append((i, cls, scores[p], True))
                elif len(hard) and iou_hard[row].max() >= iou_threshold:
                    continue  # on a difficult box: ignored
                else:
                    rows.append((i, cls, scores[p], False))
    table = np.asarray(rows, dtype=object).reshape(-1, 4)
    return {"image": table[:, 0].astype(np.int64), "class": table[:, 1].astype(np.int64),
            "score": table[:, 2].astype(np.float64), "true_positive": table[:, 3].astype(bool),
            "num_ground_truth": num_gt}


def precision_recall_curve(scores, true_positive, num_ground_truth) -> dict:
    """Precision, recall and F1 when keeping the predictions with score >= t, for every
    distinct score t (descending).

    Formula:
        precision(t) = TP(t) / (TP(t) + FP(t)),   recall(t) = TP(t) / num_ground_truth
        F1(t) = 2 · precision · recall / (precision + recall)   (0 when both are 0)

    Returns:
        dict of float arrays "scores", "precision", "recall", "f1" (recall and F1 are NaN
        when num_ground_truth is 0).
    """
    scores = np.asarray(scores, np.float64).reshape(-1)
    true_positive = np.asarray(true_positive, bool).reshape(-1)
    order = np.argsort(-scores, kind="mergesort")
    scores, true_positive = scores[order], true_positive[order]
    tp = np.cumsum(true_positive).astype(np.float64)
    fp = np.cumsum(~true_positive).astype(np.float64)
    last_of_tie = np.r_[scores[1:] != scores[:-1], True] if scores.size else np.zeros(0, bool)
    scores, tp, fp = scores[last_of_tie], tp[last_of_tie], fp[last_of_tie]
    precision = tp / np.maximum(tp + fp, 1.0)
    if num_ground_truth > 0:
        recall = tp / float(num_ground_truth)
        total = precision + recall
        f1 = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1.0), 0.0)
    else:
        recall = f1 = np.full(len(scores), np.nan)
    return {"scores": scores, "precision": precision, "recall": recall, "f1": f1}


def best_f1(curve) -> dict:
    """The point of a `precision_recall_curve` with the largest F1 (the highest threshold on
    ties): {"precision", "recall", "f1", "score_threshold"}."""
    f1 = np.asarray(curve["f1"])
    if f1.size == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "score_threshold": math.nan}
    if np.all(np.isnan(f1)):
        return {"precision": float(curve["precision"][-1]), "recall": math.nan,
                "f1": math.nan, "score_threshold": math.nan}
    k = int(np.nanargmax(f1))
    return {"precision": float(curve["precision"][k]), "recall": float(curve["recall"][k]),
            "f1": float(f1[k]), "score_threshold": float(curve["scores"][k])}


def precision_at_recall(curve, recalls) -> np.ndarray:
    """Interpolated precision of a `precision_recall_curve` at each recall level r: the
    largest precision among its points with recall >= r (the VOC / COCO interpolation);
    NaN where the curve never reaches r."""
    recall = np.asarray(curve["recall"], np.float64)
    precision = np.asarray(curve["precision"], np.float64)
    out = np.full(len(np.atleast_1d(recalls)), np.nan)
    for i, r in enumerate(np.atleast_1d(recalls)):
        reached = recall >= r - 1e-12
        if reached.any():
            out[i] = precision[reached].max()
    return out


def precision_gain(curve, reference, step=0.01) -> dict:
    """How far `curve`'s precision lies above `reference`'s at equal recall.

    At the recall levels step, 2·step, ... up to the largest recall both curves reach,
    Δ(r) = P(r) − P_ref(r), both interpolated (`precision_at_recall`). Used to ask whether a
    second stage that re-scores detections (the two-step pipeline against its step 1)
    removes false positives without losing objects.

    Returns:
        {"max_common_recall", "recall_levels" (how many), "mean", "min", "max" (of Δ),
        "share_not_worse" (of the levels with Δ >= 0)}; None and 0 levels when the curves
        share no recall level. "min" = "max" = 0: the second stage kept the first's
        precision at every level (a re-scoring that changed nothing).
    """
    top = min(np.nanmax(curve["recall"], initial=0.0), np.nanmax(reference["recall"], initial=0.0))
    levels = np.arange(1, int(np.floor(top / step + 1e-9)) + 1) * step
    if levels.size == 0:
        return {"max_common_recall": float(top), "recall_levels": 0, "mean": None,
                "min": None, "max": None, "share_not_worse": None}
    delta = precision_at_recall(curve, levels) - precision_at_recall(reference, levels)
    return {"max_common_recall": float(top), "recall_levels": int(levels.size),
            "mean": float(delta.mean()), "min": float(delta.min()),
            "max": float(delta.max()), "share_not_worse": float(np.mean(delta >= -1e-12))}


# ------------------------------------------------------------------ the one call

def evaluate_detections(predictions, ground_truth, class_names, iou_threshold=0.5,
                        box_format="xyxy", max_detections=100) -> dict:
    """COCO mAP plus precision / recall / F1 at the best threshold, and PR curves.

    Args:
        predictions: per image `(boxes (k, 4), scores (k,), classes (k,))`, or a dict of
            padded arrays (see the module docstring).
        ground_truth: a `DetectionSet` or a dict of padded "boxes", "classes" (and
            "difficult").
        class_names: the K class names (class id = position).
        iou_threshold: IoU of the precision / recall / F1 matching. Defaults to 0.5.
        box_format: layout of the predicted boxes, "xyxy", "xywh" or "cxcywh". Defaults to
            `"xyxy"`.
        max_detections: detections per image that COCO AP counts (see `coco_metrics`).
            Defaults to 100.

    Returns:
        dict with the floats of `COCO_STAT_KEYS` and `F1_KEYS`, "iou_threshold",
        "num_images", "num_ground_truth", "num_predictions"; "per_class" {name: {"ap",
        "ap_50", "ap_75", "precision", "recall", "f1", "score_threshold",
        "num_ground_truth", "num_predictions"}}; "pr_curves" {"all" and each name:
        `precision_recall_curve` arrays}; "coco_summary" (COCOeval's table).
    """
    boxes, classes, difficult = _ground_truth(ground_truth)
    class_names = _check_classes(classes, class_names)
    if not np.any((classes >= 0) & ~difficult):
        raise ValueError("the ground truth holds no (non-difficult) boxes: nothing to evaluate")
    preds = _predictions(predictions, len(boxes), len(class_names), box_format)
    result = coco_metrics(preds, ground_truth, class_names, max_detections=max_detections)
    matches = match_detections(preds, ground_truth, len(class_names), iou_threshold)
    num_gt = matches["num_ground_truth"]
    curves = {"all": precision_recall_curve(matches["score"], matches["true_positive"],
                                            int(num_gt.sum()))}
    result.update(best_f1(curves["all"]))
    num_pred = np.bincount(np.concatenate([p[2] for p in preds]).astype(np.int64),
                           minlength=len(class_names))
    for k, name in enumerate(class_names):
        mine = matches["class"] == k
        curves[name] = precision_recall_curve(matches["score"][mine],
                                              matches["true_positive"][mine], int(num_gt[k]))
        result["per_class"][name].update(best_f1(curves[name]))
        result["per_class"][name]["num_ground_truth"] = int(num_gt[k])
        result["per_class"][name]["num_predictions"] = int(num_pred[k])
    result["pr_curves"] = curves
    result["iou_threshold"] = float(iou_threshold)
    result["num_images"] = len(boxes)
    result["num_ground_truth"] = int(num_gt.sum())
    result["num_predictions"] = int(num_pred.sum())
    return result


# ------------------------------------------------------------------ the callback

class DetectionEvaluator(keras.callbacks.Callback):
    """Evaluate a detector on a fixed set every few epochs and write the numbers into `logs`.

    Writes Python floats under `prefix + key` for every key of `LOG_KEYS` (map, map_50,
    map_75, precision, recall, f1, score_threshold) at the end of every epoch, from epoch 0
    on, so History and CSVLogger always see the same columns; epochs that are skipped
    (`every_n_epochs` > 1) get NaN. Evaluated: epoch 0, every `every_n_epochs`-th epoch
    after it, and the last epoch of `fit`. `history` keeps (epoch, floats) per evaluation,
    `result` the last full `evaluate_detections` dict (PR curves included).

        def predict_fn(images):               # a batch -> per-image (boxes, scores, classes)
            return decode(model.predict_on_batch(images))
        evaluator = DetectionEvaluator(val_set, predict_fn)

    Args:
        data: a `DetectionSet`, or `(images, ground_truth)` with ground truth as in
            `evaluate_detections` (then `class_names` is required).
        predict_fn: maps a batch of images (B, H, W, C) to B `(boxes, scores, classes)`
            (xyxy pixels).
        every_n_epochs: evaluate every n-th epoch. Defaults to 1.
        class_names: the class names. Defaults to None (`data.class_names`).
        batch_size: images per `predict_fn` call. Defaults to 32.
        prefix: prefix of the log keys. Defaults to `"val_"`.
        iou_threshold: IoU of the precision / recall / F1 matching. Defaults to 0.5.
    """

    def __init__(self, data, predict_fn, every_n_epochs=1, class_names=None, batch_size=32,
                 prefix="val_", iou_threshold=0.5):
        super().__init__()
        if isinstance(data, (tuple, list)) and len(data) == 2:
            self.images, self.ground_truth = np.asarray(data[0]), data[1]
        elif hasattr(data, "images") and hasattr(data, "boxes"):
            self.images, self.ground_truth = data.images, data
            class_names = class_names if class_names is not None else data.class_names
        else:
            raise ValueError(f"data must be a DetectionSet or (images, ground_truth), got "
                             f"{type(data).__name__}")
        if class_names is None:
            raise ValueError("class_names is required when data is (images, ground_truth)")
        if not callable(predict_fn):
            raise ValueError(f"predict_fn must be callable, got {type(predict_fn).__name__}")
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) \
                or every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be an int >= 1, got {every_n_epochs!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        boxes, classes, _ = _ground_truth(self.ground_truth)
        if len(boxes) != len(self.images):
            raise ValueError(f"{len(self.images)} images but ground truth for {len(boxes)}")
        self.class_names = _check_classes(classes, class_names)
        self.predict_fn, self.every_n_epochs = predict_fn, every_n_epochs
        self.batch_size, self.prefix = int(batch_size), str(prefix)
        self.iou_threshold = float(iou_threshold)
        self.history, self.result = [], None

    @property
    def keys(self):
        return tuple(self.prefix + key for key in LOG_KEYS)

    def predict(self):
        """`predict_fn` over the images, batch by batch -> per-image predictions."""
        predictions = []
        for start in range(0, len(self.images), self.batch_size):
            batch = self.images[start:start + self.batch_size]
            out = list(self.predict_fn(batch))
            if len(out) != len(batch):
                raise ValueError(f"predict_fn returned {len(out)} predictions for a batch of "
                                 f"{len(batch)} images")
            predictions += [tuple(np.asarray(keras.ops.convert_to_numpy(a)) for a in item)
                            for item in out]
        return predictions

    def evaluate(self) -> dict:
        return evaluate_detections(self.predict(), self.ground_truth, self.class_names,
                                   self.iou_threshold)

    def _due(self, epoch):
        last = (self.params or {}).get("epochs")
        return epoch % self.every_n_epochs == 0 or (last is not None and epoch == last - 1)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if self._due(epoch):
            self.result = self.evaluate()
            values = {key: float(self.result[key]) for key in LOG_KEYS}
            self.history.append((int(epoch), values))
        else:
            values = {key: math.nan for key in LOG_KEYS}
        for key, value in values.items():
            logs[self.prefix + key] = value


# ------------------------------------------------------------------ plots

def _pyplot():
    import matplotlib.pyplot as plt  # the backend is the user's (see zoo.evaluation.plots)

    return plt


def plot_pr_curves(result, path, title="") -> Path:
    """PR curves (one per class and all classes pooled, best-F1 points marked) and F1
    against the score threshold, from an `evaluate_detections` result; saved as PNG."""
    plt = _pyplot()
    curves = result["pr_curves"]
    fig, (ax_pr, ax_f1) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, curve in curves.items():
        if len(curve["scores"]) == 0 or np.all(np.isnan(curve["recall"])):
            continue
        pooled = name == "all"
        recall = np.r_[0.0, curve["recall"]]
        precision = np.r_[curve["precision"][0], curve["precision"]]
        ax_pr.plot(recall, precision, drawstyle="steps-post", lw=2.5 if pooled else 1.2,
                   color="black" if pooled else None, label=name)
        best = best_f1(curve)
        ax_pr.plot(best["recall"], best["precision"], "o", color="black" if pooled else None,
                   ms=6 if pooled else 4)
        if pooled:
            ax_f1.plot(curve["scores"], curve["f1"], color="black")
            ax_f1.axvline(best["score_threshold"], ls="--", color="grey",
                          label=f"best F1 {best['f1']:.3f} at t = {best['score_threshold']:.3f}")
    ax_pr.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
              title=f"PR at IoU {result.get('iou_threshold', 0.5):g} "
                    f"(mAP {result['map']:.3f}, AP50 {result['map_50']:.3f})")
    ax_f1.set(xlabel="score threshold", ylabel="F1 (all classes)", ylim=(0, 1.02),
              title="F1 against the confidence threshold")
    for ax in (ax_pr, ax_f1):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_detection_gallery(images, ground_truth, predictions, class_names, path,
                           score_threshold=0.5, max_images=16, columns=4, title="",
                           panel_inches=2.6, labels=True) -> Path:
    """A grid of images with true boxes (green, solid) and predictions with score >=
    `score_threshold` (red, dashed, labelled "class score" when `labels`); saved as PNG.

    `images` is an array (N, H, W, C) or a list of images of different sizes (large tiles
    at native resolution: pass fewer `columns`, a larger `panel_inches`, no `labels`)."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    images = [np.asarray(image) for image in images]
    boxes, classes, _ = _ground_truth(ground_truth)
    class_names = _check_classes(classes, class_names)
    preds = _predictions(predictions, len(boxes), len(class_names), "xyxy")
    count = min(int(max_images), len(images))
    if count < 1:
        raise ValueError("plot_detection_gallery needs at least one image")
    columns = max(1, min(int(columns), count))
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(panel_inches * columns,
                                                     panel_inches * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in zip(range(count), axes.ravel()):
        image = images[i]
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else np.clip(image, 0, 1),
                  cmap="gray" if image.shape[-1] == 1 else None)
        for box, cls in zip(boxes[i], classes[i]):
            if cls >= 0:
                ax.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1],
                                       fill=False, ec="lime", lw=1.5))
        pboxes, scores, pclasses = preds[i]
        for box, score, cls in zip(pboxes, scores, pclasses):
            if score < score_threshold:
                continue
            ax.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1],
                                   fill=False, ec="red", lw=1.2, ls="--"))
            if not labels:
                continue
            ax.text(box[0], box[1], f"{class_names[cls]} {score:.2f}", color="white",
                    fontsize=6, va="bottom", bbox={"fc": "red", "alpha": 0.6, "pad": 0.5,
                                                   "lw": 0})
    fig.suptitle(title or f"true (green) and predicted (red, score >= {score_threshold:g}) "
                          f"boxes")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
