"""Boxes in NumPy: formats, areas, IoU and non-maximum suppression.

The one box module of the zoo, used by the data loaders, the detector's pipeline and the
evaluation. Boxes are float (..., 4) arrays in pixels; "xyxy" is (x1, y1, x2, y2) with
x2 > x1, y2 > y1 for a non-empty box (pixel edges: pixel (r, c) covers [c, c + 1) x [r, r + 1)).
The `keras.ops` twins used inside compiled losses live in `losses.boxes`.
"""

from __future__ import annotations

import numpy as np

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def to_xyxy(boxes, box_format="xyxy") -> np.ndarray:
    """(..., 4) boxes from `box_format` ("xyxy", "xywh" = corner + size, "cxcywh") to xyxy."""
    if box_format not in BOX_FORMATS:
        raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {box_format!r}")
    boxes = np.asarray(boxes, np.float64)
    a, b, c, d = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    if box_format == "xywh":
        return np.stack([a, b, a + c, b + d], axis=-1)
    if box_format == "cxcywh":
        return np.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], axis=-1)
    return boxes


def box_area(boxes) -> np.ndarray:
    """Areas (...,) of xyxy boxes (..., 4); sizes clamped at 0."""
    boxes = np.asarray(boxes, np.float64)
    return np.maximum(boxes[..., 2] - boxes[..., 0], 0) * np.maximum(
        boxes[..., 3] - boxes[..., 1], 0)


def pairwise_intersection(boxes_a, boxes_b) -> np.ndarray:
    """Intersection areas (k, m) of xyxy boxes (k, 4) and (m, 4)."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(1, -1, 4)
    inter_w = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0)
    inter_h = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0)
    return inter_w * inter_h


def pairwise_iou(boxes_a, boxes_b) -> np.ndarray:
    """IoU (k, m) of xyxy boxes (k, 4) and (m, 4); 0 where the union is empty (0 / 0 = 0).

    The NumPy twin of `losses.boxes.box_iou(kind="iou")`, cheap for the few boxes of one image.
    """
    a = np.asarray(boxes_a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(1, -1, 4)
    inter = pairwise_intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def iou_one_to_many(box, boxes) -> np.ndarray:
    """IoU (n,) of one xyxy box (4,) with boxes (n, 4)."""
    return pairwise_iou(np.reshape(box, (1, 4)), np.reshape(boxes, (-1, 4)))[0]


def nms(boxes, scores, iou_threshold=0.5, max_output=None, classes=None) -> np.ndarray:
    """Greedy non-maximum suppression; returns the kept indices, best score first.

    Boxes are visited in descending score (equal scores: lower index first); a box is kept
    unless its IoU with an already kept box is strictly greater than `iou_threshold` (so
    IoU == threshold survives). With `classes`, only boxes of the same class suppress each
    other (per-class NMS); without, every box can suppress every other (class-agnostic).

    Args:
        boxes: (n, 4) xyxy.
        scores: (n,).
        iou_threshold: suppression threshold in [0, 1]. Defaults to 0.5.
        max_output: keep at most this many. Defaults to None (no limit).
        classes: (n,) labels for per-class NMS. Defaults to None (class-agnostic).

    Returns:
        int64 (k,) indices into `boxes`.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"nms needs one score per box, got {len(boxes)} boxes and "
                         f"{len(scores)} scores")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold!r}")
    if classes is not None:
        classes = np.asarray(classes).reshape(-1)
        if len(classes) != len(boxes):
            raise ValueError(f"nms needs one class per box, got {len(classes)} for "
                             f"{len(boxes)} boxes")
    limit = len(boxes) if max_output is None else int(max_output)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size and len(keep) < limit:
        best, rest = order[0], order[1:]
        keep.append(best)
        overlap = iou_one_to_many(boxes[best], boxes[rest])
        if classes is not None:
            overlap = np.where(classes[rest] == classes[best], overlap, 0.0)
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, np.int64)


def expand_boxes(boxes, factor=1.0) -> np.ndarray:
    """Scale xyxy boxes (..., 4) about their centres by `factor` (1 = unchanged)."""
    boxes = np.asarray(boxes, np.float32)
    centre = 0.5 * (boxes[..., :2] + boxes[..., 2:])
    half = 0.5 * factor * (boxes[..., 2:] - boxes[..., :2])
    return np.concatenate([centre - half, centre + half], axis=-1).astype(np.float32)
