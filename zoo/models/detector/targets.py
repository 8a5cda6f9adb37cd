"""Step 1 of the detector: the cell grid, box encoding, target assignment and the loss.

Everything here is `keras.ops` with static shapes (the grid is fixed by the input size), so
it runs inside `compute_loss` under any backend and under `jit_compile`.

The grid. At stride s an input of H x W pixels gives a feature map of h = H/s rows and
w = W/s columns; cell p = i*w + j (row-major) has its centre at
    (x_p, y_p) = ((j + 0.5)·s, (i + 0.5)·s)
in the pixel-edge coordinates of the boxes (the centre of the s x s block of pixels it covers).

Box encoding (FCOS): a cell predicts 4 raw numbers r = (r_l, r_t, r_r, r_b); its box is
    d_k = s·exp(min(r_k, MAX_LOG))                     distances, always > 0
    box = (x_p - d_l, y_p - d_t, x_p + d_r, y_p + d_b) xyxy pixels
and `encode_boxes` is the inverse, r_k = log(d_k / s), for a cell strictly inside the box.

Levels (feature pyramid). A detector may predict from several strides s_0 < s_1 < ... at
once; the cells of all levels are concatenated (level 0 first, each row-major) and every cell
carries its own stride. A ground-truth box is assigned to exactly one level by its longer
side m = max(w, h) (the scale ranges of FCOS, here on the box rather than per cell):
    level(g) = number of l < L-1 with m > LEVEL_SCALE·s_l
so with strides (8, 16, 32) boxes up to 64 px go to stride 8, up to 128 px to stride 16, the
rest to stride 32. One level is the special case where every box goes to it.

Target assignment (centre sampling), for every image, cell p and valid ground-truth box g
(class >= 0, positive width and height), with s the stride of p's level:
    candidate(p, g) = level(p) = level(g)  and
                      (centre_cell(p, g)  or  (inside(p, g) and near(p, g)))
    inside(p, g)    = x1 < x_p < x2 and y1 < y_p < y2                     (strict)
    near(p, g)      = |x_p - cx_g| <= radius·s and |y_p - cy_g| <= radius·s
    centre_cell     = p is the cell of g's level whose s x s block holds g's centre:
                      j = clip(floor(cx_g / s), 0, w-1), i = clip(floor(cy_g / s), 0, h-1)
A cell with at least one candidate is positive and takes the candidate of smallest area
(w·h); equal areas go to the lowest ground-truth index. Every valid box therefore has at
least its centre cell (on its level) as a candidate (it may still lose that cell to a smaller box), and a
box at least s pixels wide and high has its centre cell inside it. Padding rows (class -1)
and empty boxes are never assigned.

The loss (two-step: one objectness logit per cell; one-step: one logit per class):
    N      = max(1, number of positive cells in the batch)
    L_obj  = Σ_cells Σ_c S(t_pc, z_pc) / N            on the positive cell's objectness
             (one-step: on its class) t = 1, or with score_loss="quality_focal" the IoU of
             its decoded box with its assigned box (no gradient through t); 0 elsewhere
    L_box  = Σ_positive box_loss(b̂_p / s_p, b_p / s_p) / N
    L      = objectness_weight·L_obj + box_weight·L_box
S is the sigmoid focal loss FL (score_loss="focal") or the quality focal loss QFL
(score_loss="quality_focal"). With QFL the score learns how well the cell's box fits, so
ranking detections by score (NMS, AP) ranks them by box quality too; with FL every positive
cell, well placed or not, is pushed to 1.
Boxes are divided by their cell's stride before `box_loss`: the IoU family does not care,
Smooth L1 then works in cells rather than pixels.

Reference: Tian et al., "FCOS: Fully Convolutional One-Stage Object Detection", ICCV 2019;
Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017; Li et al.,
"Generalized Focal Loss: Learning Qualified and Distributed Bounding Boxes for Dense Object
Detection", NeurIPS 2020 (QFL).
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

from losses import boxes as box_losses
from losses.base import as_float32

BOX_LOSSES = ("eiou", "ciou", "giou", "diou", "iou", "siou", "smoothl1", "focal-eiou", "wiou")
SCORE_LOSSES = ("focal", "quality_focal")
MAX_LOG = 8.0  # largest raw distance: s·e^8 ≈ 2981·s pixels; keeps exp finite
RADIUS = 1.5
LEVEL_SCALE = 8.0  # a box goes to the first level whose LEVEL_SCALE·stride >= its longer side
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0


def check_box_loss(name):
    if name not in BOX_LOSSES:
        raise ValueError(f"box_loss must be one of {', '.join(map(repr, BOX_LOSSES))}, "
                         f"got {name!r}")
    return name


def box_loss_values(name, y_true, y_pred, positive=None):
    """Per-box loss (...) of the named box loss from `losses.boxes`, xyxy boxes (..., 4).

    `positive` (...) marks the cells whose boxes count (1) among the rest (0). Only
    Wise-IoU ("wiou", v3) reads it: its outlier degree divides each box's 1 − IoU by the
    mean 1 − IoU of the counted boxes, which must not include unassigned cells."""
    check_box_loss(name)
    if name == "wiou":
        return box_losses.wise_iou_loss(y_true, y_pred, counted=positive)
    if name == "smoothl1":
        return box_losses.smooth_l1_loss(y_true, y_pred, beta=1.0)
    if name == "focal-eiou":
        return box_losses.focal_eiou_loss(y_true, y_pred)
    functions = {"iou": box_losses.iou_loss, "giou": box_losses.giou_loss,
                 "diou": box_losses.diou_loss, "ciou": box_losses.ciou_loss,
                 "eiou": box_losses.eiou_loss, "siou": box_losses.siou_loss}
    return functions[name](y_true, y_pred)


def check_score_loss(name):
    if name not in SCORE_LOSSES:
        raise ValueError(f"score_loss must be one of {', '.join(map(repr, SCORE_LOSSES))}, "
                         f"got {name!r}")
    return name


# --------------------------------------------------------------------------- the grid


def check_grid(grid_size, stride):
    try:
        h, w = (int(v) for v in grid_size)
    except (TypeError, ValueError):
        raise ValueError(f"grid_size must be (rows, columns), got {grid_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"grid_size must be positive, got {grid_size!r}")
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    return (h, w), int(stride)


def is_multi_level(stride) -> bool:
    """Whether `stride` names several levels (a list or tuple) rather than one integer."""
    return isinstance(stride, (list, tuple))


def check_levels(grid_size, stride) -> list:
    """[((h, w), s), ...] from one level ((h, w), s) or several ([(h, w), ...], [s, ...]).

    Several levels must have strictly increasing strides, one grid per stride.
    """
    if not is_multi_level(stride):
        return [check_grid(grid_size, stride)]
    grids = list(grid_size) if isinstance(grid_size, (list, tuple)) else None
    if not stride or grids is None or len(grids) != len(stride):
        raise ValueError(f"several levels need one grid (rows, columns) per stride, got "
                         f"grid_size={grid_size!r}, stride={stride!r}")
    levels = [check_grid(g, s) for g, s in zip(grids, stride)]
    strides = [s for _, s in levels]
    if any(b <= a for a, b in zip(strides, strides[1:])):
        raise ValueError(f"the strides of several levels must increase, got {stride!r}")
    return levels


def grid_centres(grid_size, stride) -> np.ndarray:
    """float32 (P, 2): the (x, y) centre of every cell, row-major (p = i·w + j); for several
    levels, level 0's cells first."""
    parts = []
    for (h, w), s in check_levels(grid_size, stride):
        rows, columns = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        parts.append(np.stack([(columns.reshape(-1) + 0.5) * s, (rows.reshape(-1) + 0.5) * s],
                              axis=-1))
    return np.concatenate(parts).astype(np.float32)


def cell_strides(grid_size, stride) -> np.ndarray:
    """float32 (P,): the stride of every cell's level, in the order of `grid_centres`."""
    return np.concatenate([np.full(h * w, s, np.float32)
                           for (h, w), s in check_levels(grid_size, stride)])


def _stride_column(stride):
    """A stride as a number, or per-cell strides (P,) as a (P, 1) array, for broadcasting
    against (..., P, 4)."""
    stride = np.asarray(stride, np.float32)
    if stride.ndim == 0:
        return float(stride)
    if stride.ndim != 1:
        raise ValueError(f"stride must be a number or per-cell strides (P,), got shape "
                         f"{stride.shape}")
    return ops.convert_to_tensor(stride[:, None])


def decode_boxes(raw, centres, stride):
    """Raw distances (..., P, 4) -> xyxy boxes (..., P, 4): box = centre ∓ s·exp(raw).

    Args:
        raw: float (..., P, 4), (r_l, r_t, r_r, r_b).
        centres: (P, 2) cell centres from `grid_centres`.
        stride: the stride s in pixels, or per-cell strides (P,) from `cell_strides`.
    """
    raw = as_float32(raw)
    distances = ops.exp(ops.minimum(raw, MAX_LOG)) * _stride_column(stride)
    centres = ops.convert_to_tensor(np.asarray(centres, np.float32))
    xy = ops.concatenate([centres, centres], axis=-1)  # (P, 4): x, y, x, y
    sign = ops.convert_to_tensor(np.asarray([-1.0, -1.0, 1.0, 1.0], np.float32))
    return xy + sign * distances


def encode_boxes(boxes, centres, stride, eps=1e-6):
    """xyxy boxes (..., P, 4) -> raw distances (..., P, 4), the inverse of `decode_boxes`.

    r = log(d / s) with d = (x_p - x1, y_p - y1, x2 - x_p, y2 - y_p); a distance <= 0 (the
    cell centre is not strictly inside the box) is clamped to `eps`·s first.
    """
    boxes = as_float32(boxes)
    centres = ops.convert_to_tensor(np.asarray(centres, np.float32))
    xy = ops.concatenate([centres, centres], axis=-1)
    sign = ops.convert_to_tensor(np.asarray([-1.0, -1.0, 1.0, 1.0], np.float32))
    distances = sign * (boxes - xy)
    return ops.log(ops.maximum(distances / _stride_column(stride), eps))


# --------------------------------------------------------------------------- assignment


def _check_ground_truth(gt_boxes, gt_classes):
    box_shape, class_shape = tuple(gt_boxes.shape), tuple(gt_classes.shape)
    if len(box_shape) != 3 or box_shape[-1] != 4:
        raise ValueError(f"ground-truth boxes must have shape (batch, max_objects, 4), got "
                         f"{box_shape}")
    if len(class_shape) != 2 or any(a is not None and b is not None and a != b
                                    for a, b in zip(class_shape, box_shape[:2])):
        raise ValueError(f"ground-truth classes must have shape (batch, max_objects) = "
                         f"{box_shape[:2]}, got {class_shape}")


def box_levels(sides, strides, level_scale=LEVEL_SCALE):
    """The level of each box from its longer side (module docstring): the number of levels
    l < L-1 with side > level_scale·s_l. `sides` is any array; returns int32 of its shape."""
    level = ops.zeros(ops.shape(sides), "int32")
    for s in list(strides)[:-1]:
        level = level + ops.cast(sides > float(level_scale) * s, "int32")
    return level


def assign_targets(gt_boxes, gt_classes, grid_size, stride, radius=RADIUS,
                   level_scale=LEVEL_SCALE):
    """Centre-sampling assignment of padded ground truth to the cells (module docstring).

    Args:
        gt_boxes: float (B, M, 4) xyxy pixels.
        gt_classes: int (B, M), -1 = padding.
        grid_size: (h, w) of the feature map, or one (h, w) per level.
        stride: s, pixels per cell, or the increasing strides of the levels.
        radius: half-side of the centre region, in cells. Defaults to 1.5.
        level_scale: with several levels, a box goes to the first level l whose
            level_scale·s_l is at least its longer side (the last level takes the rest).
            Defaults to 8.

    Returns:
        dict of tensors: "positive" bool (B, P); "boxes" float32 (B, P, 4) (the assigned
        box, zeros for negative cells); "classes" int32 (B, P) (-1 for negative cells);
        "index" int32 (B, P) (the assigned ground-truth row, -1 for negative cells).
    """
    levels = check_levels(grid_size, stride)
    if not radius >= 0 or not math.isfinite(radius):
        raise ValueError(f"radius must be a finite number >= 0, got {radius!r}")
    if not level_scale > 0 or not math.isfinite(level_scale):
        raise ValueError(f"level_scale must be a finite number > 0, got {level_scale!r}")
    gt_boxes = as_float32(ops.convert_to_tensor(gt_boxes))
    gt_classes = ops.cast(ops.convert_to_tensor(gt_classes), "int32")
    _check_ground_truth(gt_boxes, gt_classes)
    grids = [g for g, _ in levels]
    strides = [s for _, s in levels]
    centres = grid_centres(grids, strides)
    cx = ops.convert_to_tensor(centres[None, :, 0, None])  # (1, P, 1)
    cy = ops.convert_to_tensor(centres[None, :, 1, None])
    per_cell = cell_strides(grids, strides)[None, :, None]  # (1, P, 1) numpy
    cell_level = np.concatenate([np.full(h * w, k, np.int32)
                                 for k, ((h, w), _) in enumerate(levels)])[None, :, None]
    x1, y1, x2, y2 = (gt_boxes[:, None, :, k] for k in range(4))  # (B, 1, M)
    width, height = x2 - x1, y2 - y1
    gcx, gcy = 0.5 * (x1 + x2), 0.5 * (y1 + y2)
    valid = (gt_classes[:, None, :] >= 0) & (width > 0) & (height > 0)
    level = box_levels(ops.maximum(width, height), strides, level_scale)  # (B, 1, M)
    same_level = ops.convert_to_tensor(cell_level) == level
    inside = (cx > x1) & (cx < x2) & (cy > y1) & (cy < y2)
    reach = ops.convert_to_tensor(float(radius) * per_cell)
    near = (ops.abs(cx - gcx) <= reach) & (ops.abs(cy - gcy) <= reach)
    centre_index = ops.zeros(ops.shape(gcx), "float32")  # g's centre cell on g's level
    offset = 0
    for k, ((h, w), s) in enumerate(levels):
        column = ops.clip(ops.floor(gcx / s), 0, w - 1)
        row = ops.clip(ops.floor(gcy / s), 0, h - 1)
        centre_index = ops.where(level == k, offset + row * w + column, centre_index)
        offset += h * w
    cell = ops.convert_to_tensor(np.arange(offset, dtype=np.float32)[None, :, None])
    centre_cell = cell == centre_index
    candidate = valid & same_level & (centre_cell | (inside & near))  # (B, P, M)

    area = ops.where(candidate, width * height, np.float32(np.inf))
    smallest = candidate & (area == ops.min(area, axis=-1, keepdims=True))
    # equal areas: the lowest ground-truth index (the first True along M)
    chosen = smallest & (ops.cumsum(ops.cast(smallest, "int32"), axis=-1) == 1)
    positive = ops.any(candidate, axis=-1)
    index = ops.cast(ops.argmax(ops.cast(chosen, "int32"), axis=-1), "int32")  # (B, P)
    boxes = ops.take_along_axis(gt_boxes, ops.expand_dims(index, -1), axis=1)
    classes = ops.take_along_axis(gt_classes, index, axis=1)
    return {"positive": positive,
            "boxes": ops.where(positive[..., None], boxes, 0.0),
            "classes": ops.where(positive, classes, -1),
            "index": ops.where(positive, index, -1)}


# --------------------------------------------------------------------------- the loss


def sigmoid_focal_loss(y_true, logits, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA):
    """Element-wise binary focal loss on logits (no reduction).

    Formula:
        p = sigmoid(z),  p_t = p·t + (1 - p)(1 - t),  α_t = α·t + (1 - α)(1 - t)
        loss = -α_t (1 - p_t)^γ log(p_t)

    Same as `keras.losses.binary_focal_crossentropy(..., apply_class_balancing=True,
    from_logits=True)` before its mean over the last axis. `alpha=None` drops α_t.

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
    """
    logits = as_float32(logits)
    y_true = ops.cast(y_true, "float32")
    cross_entropy = ops.binary_crossentropy(y_true, logits, from_logits=True)  # -log p_t
    p = ops.sigmoid(logits)
    p_t = p * y_true + (1.0 - p) * (1.0 - y_true)
    loss = ops.power(ops.maximum(1.0 - p_t, 0.0), float(gamma)) * cross_entropy
    if alpha is not None:
        loss = loss * (alpha * y_true + (1.0 - alpha) * (1.0 - y_true))
    return loss


def quality_focal_loss(quality, logits, beta=FOCAL_GAMMA):
    """Element-wise quality focal loss on logits (no reduction).

    Formula (y in [0, 1] the target quality, e.g. an IoU; 0 on negatives):
        σ = sigmoid(z)
        loss = |y - σ|^β · ( -y log σ - (1 - y) log(1 - σ) )
    With y in {0, 1} it is the sigmoid focal loss with γ = β and no α.

    Reference: Li et al., "Generalized Focal Loss", NeurIPS 2020, eq. (5).
    """
    logits = as_float32(logits)
    quality = ops.cast(quality, "float32")
    cross_entropy = ops.binary_crossentropy(quality, logits, from_logits=True)
    return ops.power(ops.abs(quality - ops.sigmoid(logits)), float(beta)) * cross_entropy


def detection_loss(targets, scores, boxes, stride, box_loss="eiou", objectness_weight=1.0,
                   box_weight=1.0, focal_alpha=FOCAL_ALPHA, focal_gamma=FOCAL_GAMMA,
                   score_loss="focal"):
    """The step-1 loss from assigned targets (module docstring).

    Args:
        targets: the dict of `assign_targets`.
        scores: logits (B, P, C): C = 1 (objectness) or the number of classes (one-step).
        boxes: decoded xyxy boxes (B, P, 4).
        stride: s, or per-cell strides (P,) (`cell_strides`); boxes are divided by it
            before `box_loss`.
        box_loss: one of `BOX_LOSSES`. Defaults to "eiou".
        objectness_weight: weight of the focal term. Defaults to 1.
        box_weight: weight of the box term. Defaults to 1.
        focal_alpha: α of the focal term (None: no α; unused by "quality_focal").
            Defaults to 0.25.
        focal_gamma: γ of the focal term (β of "quality_focal"). Defaults to 2.
        score_loss: "focal" (target 1 on positive cells) or "quality_focal" (target the
            IoU of the cell's box with its assigned box). Defaults to "focal".

    Returns:
        (total, objectness term, box term, number of positive cells), float32 scalars.
    """
    check_score_loss(score_loss)
    scores, boxes = as_float32(scores), as_float32(boxes)
    positive = ops.cast(targets["positive"], "float32")  # (B, P)
    num_positive = ops.sum(positive)
    normaliser = ops.maximum(num_positive, 1.0)
    # negative cells get a harmless unit box target, then are masked out
    unit = ops.convert_to_tensor(np.asarray([0.0, 0.0, 1.0, 1.0], np.float32))
    stride = _stride_column(stride)
    target_boxes = ops.where(targets["positive"][..., None], targets["boxes"] / stride, unit)
    if score_loss == "quality_focal":
        iou = box_losses.elementwise_box_iou(target_boxes, boxes / stride)
        cell_target = ops.stop_gradient(ops.clip(iou, 0.0, 1.0)) * positive
    else:
        cell_target = positive
    num_scores = scores.shape[-1]
    if num_scores == 1:
        score_target = cell_target[..., None]
    else:
        score_target = ops.one_hot(ops.maximum(targets["classes"], 0), num_scores) \
            * cell_target[..., None]
    if score_loss == "quality_focal":
        per_score = quality_focal_loss(score_target, scores, focal_gamma)
    else:
        per_score = sigmoid_focal_loss(score_target, scores, focal_alpha, focal_gamma)
    objectness = ops.sum(per_score) / normaliser
    per_cell = box_loss_values(box_loss, target_boxes, boxes / stride, positive)
    box_term = ops.sum(per_cell * positive) / normaliser
    total = objectness_weight * objectness + box_weight * box_term
    return total, objectness, box_term, num_positive
