"""Bounding-box regression losses: IoU, GIoU, DIoU, CIoU, EIoU, Focal-EIoU, SIoU, Wise-IoU,
Smooth L1.

`y_true` and `y_pred` are boxes of shape (..., 4), in one of three layouts:

| box_format | the 4 numbers              |
|------------|----------------------------|
| "xyxy"     | x_min, y_min, x_max, y_max |
| "xywh"     | x_min, y_min, width, height|
| "cxcywh"   | x_center, y_center, w, h   |

Coordinates may be normalized or in pixels: the IoU family is scale-invariant (up to `eps`),
Smooth L1 is not (its `beta` is in the units of the coordinates). Every loss returns one
value per box, shape (...), which Keras reduces over all leading dimensions; a
`sample_weight` of shape (batch,) is broadcast over the remaining leading dimensions.

    model.compile(loss=losses.boxes.CIoULoss(box_format="cxcywh"))
    model.fit(images, boxes)            # boxes: (batch, 4) or (batch, num_boxes, 4)

Degenerate boxes stay finite, with finite gradients: widths and heights are clamped to >= 0
(a box with x_max < x_min counts as zero-width), and every denominator gets `eps`. Boxes of
zero area therefore have IoU 0. `box_iou` gives the pairwise (N, M) matrix of any of the
overlap measures (e.g. for matching anchors), `elementwise_box_iou` the aligned one.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

import keras
from losses.base import (Loss, as_float32, check_at_least, check_choice, check_non_negative,
                         check_positive, static_shape)

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")
IOU_KINDS = ("iou", "giou", "diou", "ciou", "eiou", "siou")
EPSILON = 1e-7


# --------------------------------------------------------------------------- shared pieces


def _check_format(box_format):
    return check_choice("box_format", box_format, BOX_FORMATS)


def _check_boxes(boxes, what, min_rank=1):
    shape = static_shape(boxes)
    if len(shape) < min_rank or shape[-1] not in (4, None):
        expected = "(..., 4)" if min_rank == 1 else "(..., num_boxes, 4)"
        raise ValueError(f"{what} must hold boxes of shape {expected}, got shape {shape}")
    return shape


def _check_pair(y_true, y_pred):
    """Both (..., 4) with the same shape where it is known."""
    true_shape = _check_boxes(y_true, "y_true")
    pred_shape = _check_boxes(y_pred, "y_pred")
    same = len(true_shape) == len(pred_shape) and all(
        a is None or b is None or a == b for a, b in zip(true_shape, pred_shape))
    if not same:
        raise ValueError(f"y_true and y_pred must have the same shape (..., 4), got "
                         f"{true_shape} and {pred_shape}")


def to_xyxy(boxes, box_format="xyxy"):
    """Convert float32 boxes (..., 4) from `box_format` to corners (x_min, y_min, x_max, y_max).

    Same result as `keras.utils.bounding_boxes.convert_format(boxes, source, "xyxy")` with
    "center_xywh" for "cxcywh", written with `keras.ops` only so it traces under any backend.
    """
    _check_format(box_format)
    boxes = as_float32(boxes)
    a, b, c, d = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    if box_format == "xyxy":
        return boxes
    if box_format == "xywh":
        corners = (a, b, a + c, b + d)
    else:
        corners = (a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d)
    return ops.stack(corners, axis=-1)


def _geometry(boxes_a, boxes_b, eps):
    """Everything the overlap measures need, for broadcastable xyxy boxes."""
    ax1, ay1, ax2, ay2 = (boxes_a[..., i] for i in range(4))
    bx1, by1, bx2, by2 = (boxes_b[..., i] for i in range(4))
    g = {}
    g["wa"], g["ha"] = ops.maximum(ax2 - ax1, 0.0), ops.maximum(ay2 - ay1, 0.0)
    g["wb"], g["hb"] = ops.maximum(bx2 - bx1, 0.0), ops.maximum(by2 - by1, 0.0)
    inter_w = ops.maximum(ops.minimum(ax2, bx2) - ops.maximum(ax1, bx1), 0.0)
    inter_h = ops.maximum(ops.minimum(ay2, by2) - ops.maximum(ay1, by1), 0.0)
    # With clamped sizes the intersection can't exceed either area, so union >= 0.
    inter = inter_w * inter_h
    g["union"] = g["wa"] * g["ha"] + g["wb"] * g["hb"] - inter
    g["iou"] = inter / (g["union"] + eps)
    # Smallest enclosing box C.
    g["cw"] = ops.maximum(ops.maximum(ax2, bx2) - ops.minimum(ax1, bx1), 0.0)
    g["ch"] = ops.maximum(ops.maximum(ay2, by2) - ops.minimum(ay1, by1), 0.0)
    # Offsets between the centers.
    g["dx"] = 0.5 * ((bx1 + bx2) - (ax1 + ax2))
    g["dy"] = 0.5 * ((by1 + by2) - (ay1 + ay2))
    return g


def _pair_geometry(y_true, y_pred, box_format, eps):
    """`_geometry` of the aligned pairs (y_pred[i], y_true[i]), after the checks and the cast.

    y_true and y_pred must both be boxes (..., 4) of one shape; both are cast to float32 and
    converted from `box_format` to corners. What every box loss does before its own term.
    """
    _check_format(box_format)
    _check_pair(y_true, y_pred)
    eps = check_positive("eps", eps)
    y_pred = to_xyxy(as_float32(y_pred), box_format)
    y_true = to_xyxy(as_float32(y_true), box_format)
    return _geometry(y_pred, y_true, eps)


# Penalty terms: each measure is the IoU minus its terms, subtracted in this order.


def _enclosing_gap(g, eps):
    """|C \\ (A ∪ B)| / |C|: the part of the smallest enclosing box C that neither box covers."""
    enclosing = g["cw"] * g["ch"]
    return (enclosing - g["union"]) / (enclosing + eps)


def _center_distance(g, eps):
    """ρ²(b, b_gt) / c²: squared center distance over the enclosing box's squared diagonal."""
    return (g["dx"] ** 2 + g["dy"] ** 2) / (g["cw"] ** 2 + g["ch"] ** 2 + eps)


def _aspect_ratio(g, eps):
    """α·v with v = (4/π²)(atan(w_a/h_a) - atan(w_b/h_b))² and α = v/(1 - IoU + v) frozen."""
    v = (4.0 / math.pi**2) * (ops.arctan(g["wa"] / (g["ha"] + eps))
                              - ops.arctan(g["wb"] / (g["hb"] + eps))) ** 2
    alpha = ops.stop_gradient(v / ((1.0 - g["iou"]) + v + eps))
    return alpha * v


def _width_height(g, eps):
    """ρ²(w, w_gt)/C_w² + ρ²(h, h_gt)/C_h² (EIoU's width and height terms)."""
    return ((g["wa"] - g["wb"]) ** 2 / (g["cw"] ** 2 + eps)
            + (g["ha"] - g["hb"]) ** 2 / (g["ch"] ** 2 + eps))


def _siou_cost(g, eps, theta=4.0):
    """(Δ + Ω) / 2: SIoU's angle-aware distance cost Δ plus its shape cost Ω."""
    dx2, dy2 = g["dx"] ** 2, g["dy"] ** 2
    # Angle cost Λ = 1 - 2 sin²(arcsin(x) - π/4) with x = sin α = |dy|/σ. That is
    # cos(2α - π/2) = sin 2α = 2|dx||dy|/σ² (the same whichever of α, β = π/2 - α the
    # reference implementations pick), with no arcsin whose gradient blows up at x = 1.
    angle = 2.0 * ops.abs(g["dx"]) * ops.abs(g["dy"]) / (dx2 + dy2 + eps)
    gamma = 2.0 - angle
    rho_x = dx2 / (g["cw"] ** 2 + eps)
    rho_y = dy2 / (g["ch"] ** 2 + eps)
    distance = 2.0 - ops.exp(-gamma * rho_x) - ops.exp(-gamma * rho_y)
    omega_w = ops.abs(g["wa"] - g["wb"]) / (ops.maximum(g["wa"], g["wb"]) + eps)
    omega_h = ops.abs(g["ha"] - g["hb"]) / (ops.maximum(g["ha"], g["hb"]) + eps)
    shape = (ops.power(1.0 - ops.exp(-omega_w), theta)
             + ops.power(1.0 - ops.exp(-omega_h), theta))
    return 0.5 * (distance + shape)


# kind -> the penalty terms of that measure, as a tuple. The one definition of each measure:
# `box_iou`, `elementwise_box_iou`, the functional losses and the loss classes all read it.
PENALTIES = {
    "iou": lambda g, eps, theta=4.0: (),
    "giou": lambda g, eps, theta=4.0: (_enclosing_gap(g, eps),),
    "diou": lambda g, eps, theta=4.0: (_center_distance(g, eps),),
    "ciou": lambda g, eps, theta=4.0: (_center_distance(g, eps), _aspect_ratio(g, eps)),
    "eiou": lambda g, eps, theta=4.0: (_center_distance(g, eps), _width_height(g, eps)),
    "siou": lambda g, eps, theta=4.0: (_siou_cost(g, eps, theta),),
}


def _minus(iou, terms):
    """iou - terms[0] - terms[1] - ..., in that order."""
    for term in terms:
        iou = iou - term
    return iou


def _overlap(boxes_a, boxes_b, kind, eps, theta=4.0):
    g = _geometry(boxes_a, boxes_b, eps)
    return _minus(g["iou"], PENALTIES[kind](g, eps, theta))


def _focal_eiou(g, eps, gamma):
    """stop_gradient(IoU)^γ · (1 - IoU + ρ²/c² + Δw²/C_w² + Δh²/C_h²)."""
    center, width_height = PENALTIES["eiou"](g, eps)
    eiou = 1.0 - g["iou"] + center + width_height
    return ops.power(ops.stop_gradient(g["iou"]), gamma) * eiou


# --------------------------------------------------------------------------- IoU measures


def elementwise_box_iou(boxes_a, boxes_b, kind="iou", box_format="xyxy", eps=EPSILON):
    """Overlap of aligned box pairs: boxes_a[i] with boxes_b[i].

    Formula (A, B boxes; C their smallest enclosing box, c its diagonal; ρ the distance
    between the centers; w, h widths and heights):
        iou  = |A ∩ B| / |A ∪ B|
        giou = iou - |C \\ (A ∪ B)| / |C|
        diou = iou - ρ² / c²
        ciou = diou - α v,  v = (4/π²)(atan(w_B/h_B) - atan(w_A/h_A))²,
               α = v / ((1 - iou) + v) under stop_gradient
        eiou = diou - (w_A - w_B)²/C_w² - (h_A - h_B)²/C_h²
        siou = iou - (Δ + Ω)/2   (see `SIoULoss`)

    Every measure is 1 for identical boxes of positive area; the loss is `1 - measure`.

    Args:
        boxes_a: Boxes (..., 4).
        boxes_b: Boxes (..., 4), broadcastable against `boxes_a`.
        kind: One of "iou", "giou", "diou", "ciou", "eiou", "siou". Defaults to `"iou"`.
        box_format: "xyxy", "xywh" or "cxcywh". Defaults to `"xyxy"`.
        eps: Added to every denominator; keep it well below the smallest box area in
            your units. Defaults to `1e-7`.

    Returns:
        float32 tensor (...).
    """
    check_choice("kind", kind, IOU_KINDS)
    _check_boxes(boxes_a, "boxes_a")
    _check_boxes(boxes_b, "boxes_b")
    eps = check_positive("eps", eps)
    return _overlap(to_xyxy(boxes_a, box_format), to_xyxy(boxes_b, box_format), kind, eps)


def box_iou(boxes_a, boxes_b, kind="iou", box_format="xyxy", eps=EPSILON):
    """Pairwise overlap matrix between two sets of boxes (IoU, GIoU, DIoU, CIoU, EIoU, SIoU).

    Formula:
        out[..., i, j] = elementwise_box_iou(boxes_a[..., i, :], boxes_b[..., j, :], kind)

    Same convention as `keras.utils.bounding_boxes.compute_iou` (which gives kind="iou"):
    (N, 4) and (M, 4) -> (N, M); leading batch dimensions broadcast, e.g. (B, N, 4) and
    (B, M, 4) -> (B, N, M), or (N, 4) and (B, M, 4) -> (B, N, M).

    Args:
        boxes_a: Boxes (..., N, 4).
        boxes_b: Boxes (..., M, 4).
        kind: One of "iou", "giou", "diou", "ciou", "eiou", "siou". Defaults to `"iou"`.
        box_format: "xyxy", "xywh" or "cxcywh". Defaults to `"xyxy"`.
        eps: Added to every denominator. Defaults to `1e-7`.

    Returns:
        float32 tensor (..., N, M).

    Reference:
        Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019 (GIoU);
        Zheng et al., "Distance-IoU Loss", AAAI 2020 (DIoU, CIoU);
        Zhang et al., "Focal and Efficient IOU Loss", arXiv:2101.08158, 2021 (EIoU);
        Gevorgyan, "SIoU Loss", arXiv:2205.12740, 2022 (SIoU).
    """
    check_choice("kind", kind, IOU_KINDS)
    _check_boxes(boxes_a, "boxes_a", min_rank=2)
    _check_boxes(boxes_b, "boxes_b", min_rank=2)
    eps = check_positive("eps", eps)
    boxes_a = ops.expand_dims(to_xyxy(boxes_a, box_format), -2)  # (..., N, 1, 4)
    boxes_b = ops.expand_dims(to_xyxy(boxes_b, box_format), -3)  # (..., 1, M, 4)
    return _overlap(boxes_a, boxes_b, kind, eps)


# --------------------------------------------------------------------------- functional losses


def _iou_family_loss(y_true, y_pred, kind, box_format, eps, theta=4.0):
    g = _pair_geometry(y_true, y_pred, box_format, eps)
    return 1.0 - _minus(g["iou"], PENALTIES[kind](g, float(eps), theta))


def iou_loss(y_true, y_pred, box_format="xyxy", eps=EPSILON):
    """IoU loss per box: `1 - |A ∩ B| / |A ∪ B|`, float32 (...). See `IoULoss`."""
    return _iou_family_loss(y_true, y_pred, "iou", box_format, eps)


def giou_loss(y_true, y_pred, box_format="xyxy", eps=EPSILON):
    """GIoU loss per box: `1 - IoU + |C \\ (A ∪ B)| / |C|`, float32 (...). See `GIoULoss`."""
    return _iou_family_loss(y_true, y_pred, "giou", box_format, eps)


def diou_loss(y_true, y_pred, box_format="xyxy", eps=EPSILON):
    """DIoU loss per box: `1 - IoU + ρ²/c²`, float32 (...). See `DIoULoss`."""
    return _iou_family_loss(y_true, y_pred, "diou", box_format, eps)


def ciou_loss(y_true, y_pred, box_format="xyxy", eps=EPSILON):
    """CIoU loss per box: `1 - IoU + ρ²/c² + α v`, float32 (...). See `CIoULoss`."""
    return _iou_family_loss(y_true, y_pred, "ciou", box_format, eps)


def eiou_loss(y_true, y_pred, box_format="xyxy", eps=EPSILON):
    """EIoU loss per box: `1 - IoU + ρ²/c² + Δw²/C_w² + Δh²/C_h²`, float32 (...)."""
    return _iou_family_loss(y_true, y_pred, "eiou", box_format, eps)


def focal_eiou_loss(y_true, y_pred, gamma=0.5, box_format="xyxy", eps=EPSILON):
    """Focal-EIoU loss per box: `stop_gradient(IoU)^γ · L_EIoU`, float32 (...)."""
    gamma = check_non_negative("gamma", gamma)
    return _focal_eiou(_pair_geometry(y_true, y_pred, box_format, eps), float(eps), gamma)


def siou_loss(y_true, y_pred, theta=4.0, box_format="xyxy", eps=EPSILON):
    """SIoU loss per box: `1 - IoU + (Δ + Ω)/2`, float32 (...). See `SIoULoss`."""
    theta = _check_theta(theta)
    return _iou_family_loss(y_true, y_pred, "siou", box_format, eps, theta)


def smooth_l1_loss(y_true, y_pred, beta=1.0, box_format="xyxy"):
    """Smooth L1 per box, summed over the 4 coordinates, float32 (...). See `SmoothL1Loss`."""
    beta = check_non_negative("beta", beta)
    _check_pair(y_true, y_pred)
    y_pred, y_true = as_float32(y_pred), as_float32(y_true)
    if box_format is not None:
        y_pred, y_true = to_xyxy(y_pred, box_format), to_xyxy(y_true, box_format)
    diff = ops.abs(y_pred - y_true)
    if beta == 0.0:
        per_coordinate = diff
    else:
        per_coordinate = ops.where(diff < beta, 0.5 * diff**2 / beta, diff - 0.5 * beta)
    return ops.sum(per_coordinate, axis=-1)


def _check_theta(theta):
    return check_at_least("theta", theta, 1, " (the paper uses 2 to 6)")


# --------------------------------------------------------------------------- loss classes


class _BoxLoss(Loss):
    """Shared plumbing: per-box losses (...), sample_weight broadcast over leading dims."""

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            # Keras multiplies the per-box losses (...) by sample_weight after aligning only
            # a trailing 1; a (batch,) weight for (batch, num_boxes) losses needs new axes.
            sample_weight = ops.convert_to_tensor(sample_weight)
            pred_rank = len(y_pred.shape) if hasattr(y_pred, "shape") else np.ndim(y_pred)
            for _ in range(pred_rank - 1 - len(sample_weight.shape)):
                sample_weight = ops.expand_dims(sample_weight, -1)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)


class _IoUFamilyLoss(_BoxLoss):
    """Base of the IoU-family losses: loss = 1 - (IoU - penalty terms), one value per box.

    It does what they share: checks that y_true and y_pred are boxes (..., 4) of one shape,
    casts them to float32, converts both from `box_format` to corners, pairs y_pred[i] with
    y_true[i] (their IoU, enclosing box, center offset, ...: `_pair_geometry`), and leaves
    the reduction over the leading dimensions to Keras (`sample_weight` broadcast by
    `_BoxLoss`). A subclass only gives its penalty: `kind`, its row of `PENALTIES` (the
    table `box_iou` reads too; the default name is f"{kind}_loss"), or its own
    `penalty(g)`; `per_box(g)` turns the IoU and the penalty terms into the loss.
    """

    kind = "iou"

    def __init__(self, box_format="xyxy", eps=EPSILON, reduction="sum_over_batch_size",
                 name=None, dtype=None):
        super().__init__(name=name or f"{self.kind}_loss", reduction=reduction, dtype=dtype)
        self.box_format = _check_format(box_format)
        self.eps = check_positive("eps", eps)

    def penalty(self, g):
        """The terms subtracted from the IoU, in order (a tuple of tensors (...))."""
        return PENALTIES[self.kind](g, self.eps)

    def per_box(self, g):
        """The loss per box from the pair geometry `g`: 1 - (IoU - penalty terms)."""
        return 1.0 - _minus(g["iou"], self.penalty(g))

    def call(self, y_true, y_pred):
        return self.per_box(_pair_geometry(y_true, y_pred, self.box_format, self.eps))

    def get_config(self):
        return {**super().get_config(), "box_format": self.box_format, "eps": self.eps}


@keras.saving.register_keras_serializable(package="losslab")
class IoULoss(_IoUFamilyLoss):
    """IoU loss: one minus the intersection over union of predicted and true boxes.

    Formula:
        IoU = |A ∩ B| / (|A ∪ B| + eps)
        loss = 1 - IoU

    Scale-invariant, but flat (zero gradient) whenever the boxes do not overlap; prefer
    GIoU/DIoU/CIoU when predictions can start far from the targets.

    Args:
        box_format: Layout of the 4 numbers: "xyxy", "xywh" or "cxcywh".
            Defaults to `"xyxy"`.
        eps: Added to every denominator; keep it well below the smallest box area in your
            units. Defaults to `1e-7`.
        reduction: Keras loss reduction over all leading dimensions.
            Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"iou_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Yu et al., "UnitBox: An Advanced Object Detection Network", ACM MM 2016.
    """

    kind = "iou"


@keras.saving.register_keras_serializable(package="losslab")
class GIoULoss(_IoUFamilyLoss):
    """Generalized IoU loss: IoU penalised by the empty part of the enclosing box.

    Formula:
        C = smallest box enclosing A and B
        GIoU = IoU - |C \\ (A ∪ B)| / |C|          (in [-1, 1])
        loss = 1 - GIoU                            (in [0, 2])

    Args:
        box_format: Layout of the 4 numbers: "xyxy", "xywh" or "cxcywh".
            Defaults to `"xyxy"`.
        eps: Added to every denominator. Defaults to `1e-7`.
        reduction: Keras loss reduction over all leading dimensions.
            Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"giou_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Rezatofighi et al., "Generalized Intersection over Union: A Metric and a Loss for
        Bounding Box Regression", CVPR 2019.
    """

    kind = "giou"


@keras.saving.register_keras_serializable(package="losslab")
class DIoULoss(_IoUFamilyLoss):
    """Distance IoU loss: IoU penalised by the normalised distance between the centers.

    Formula:
        ρ = distance between the centers of A and B
        c = diagonal of the smallest box enclosing A and B
        DIoU = IoU - ρ² / c²
        loss = 1 - DIoU

    Args:
        box_format: Layout of the 4 numbers: "xyxy", "xywh" or "cxcywh".
            Defaults to `"xyxy"`.
        eps: Added to every denominator. Defaults to `1e-7`.
        reduction: Keras loss reduction over all leading dimensions.
            Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"diou_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding Box
        Regression", AAAI 2020.
    """

    kind = "diou"


@keras.saving.register_keras_serializable(package="losslab")
class CIoULoss(_IoUFamilyLoss):
    """Complete IoU loss: DIoU plus an aspect-ratio consistency term.

    Formula:
        v = (4 / π²) · (atan(w_gt / h_gt) - atan(w / h))²
        α = v / ((1 - IoU) + v)          (under stop_gradient, as in the paper's code)
        CIoU = IoU - ρ² / c² - α v
        loss = 1 - CIoU

    The constant is 4/π², not (4/π²)² (keras-cv squares it). Heights get `eps` inside the
    atan, so a zero-height box gives atan(w/eps) ≈ π/2 instead of NaN. Same value as
    `1 - keras.utils.bounding_boxes.compute_ciou` for valid boxes, which however lets the
    gradient flow through α and does not clamp inverted boxes.

    Args:
        box_format: Layout of the 4 numbers: "xyxy", "xywh" or "cxcywh".
            Defaults to `"xyxy"`.
        eps: Added to every denominator. Defaults to `1e-7`.
        reduction: Keras loss reduction over all leading dimensions.
            Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"ciou_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding Box
        Regression", AAAI 2020.
    """

    kind = "ciou"


@keras.saving.register_keras_serializable(package="losslab")
class EIoULoss(_IoUFamilyLoss):
    """Efficient IoU loss: DIoU plus separate width and height penalties.

    Formula:
        C_w, C_h = width and height of the smallest box enclosing A and B
        loss = 1 - IoU + ρ²(b, b_gt) / c² + (w - w_gt)² / C_w² + (h - h_gt)² / C_h²

    Args:
        box_format: Layout of the 4 numbers: "xyxy", "xywh" or "cxcywh".
            Defaults to `"xyxy"`.
        eps: Added to every denominator. Defaults to `1e-7`.
        reduction: Keras loss reduction over all leading dimensions.
            Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"eiou_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Zhang et al., "Focal and Efficient IOU Loss for Accurate Bounding Box Regression",
        Neurocomputing 2022 (arXiv:2101.08158).
    """

    kind = "eiou"


@keras.saving.register_keras_serializable(package="losslab")
class FocalEIoULoss(_IoUFamilyLoss):
    """Focal-EIoU loss: EIoU weighted by IoU^γ, so well-overlapping boxes count more.

    Formula:
        loss = stop_gradient(IoU)^γ · L_EIoU        (L_EIoU as in `EIoULoss`)

    The paper writes L = IoU^γ · L_EIoU without saying whether the weight is
    differentiated. Here it is a constant weight (stop_gradient), as in the implementations
    that circulate with YOLOv5/YOLOv8 (`bbox_iou(..., EIoU=True, Focal=True)` returns
    `(eiou, iou**gamma)` and the loss is `(1 - eiou) * weight.detach()`): the gradient is
    IoU^γ · ∇L_EIoU, which keeps the EIoU descent direction and only rescales it. Note that
    a box with no overlap (IoU = 0) gets zero loss and zero gradient: use EIoU or GIoU
    first when predictions start far from their targets.

    Args:
        gamma: Focusing exponent >= 0; 0 gives EIoU. Defaults to `0.5` (the paper's choice).
        box_format: Layout of the 4 numbers: "xyxy", "xywh" or "cxcywh".
            Defaults to `"xyxy"`.
        eps: Added to every denominator. Defaults to `1e-7`.
        reduction: Keras loss reduction over all leading dimensions.
            Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"focal_eiou_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Zhang et al., "Focal and Efficient IOU Loss for Accurate Bounding Box Regression",
        Neurocomputing 2022 (arXiv:2101.08158).
    """

    kind = "eiou"

    def __init__(self, gamma=0.5, box_format="xyxy", eps=EPSILON,
                 reduction="sum_over_batch_size", name="focal_eiou_loss", dtype=None):
        super().__init__(box_format=box_format, eps=eps, reduction=reduction, name=name,
                         dtype=dtype)
        self.gamma = check_non_negative("gamma", gamma)

    def per_box(self, g):
        return _focal_eiou(g, self.eps, self.gamma)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="losslab")
class SIoULoss(_IoUFamilyLoss):
    """SCYLLA-IoU loss: IoU plus angle-aware distance and shape costs.

    Formula:
        (dx, dy) = offset between the centers, σ² = dx² + dy²
        Λ = 1 - 2 sin²(arcsin(|dy| / σ) - π/4)  = 2 |dx| |dy| / σ²     (angle cost)
        γ = 2 - Λ,  ρ_x = (dx / C_w)²,  ρ_y = (dy / C_h)²
        Δ = Σ_{t=x,y} (1 - e^{-γ ρ_t})                                  (distance cost)
        ω_w = |w - w_gt| / max(w, w_gt),  ω_h = |h - h_gt| / max(h, h_gt)
        Ω = Σ_{t=w,h} (1 - e^{-ω_t})^θ                                   (shape cost)
        loss = 1 - IoU + (Δ + Ω) / 2

    C_w, C_h are the width and height of the smallest enclosing box. This matches the
    reference implementation of YOLOv6 (meituan/YOLOv6, `yolov6/utils/figure_iou.py`,
    `IOUloss(iou_type="siou")`) and mmyolo's `bbox_overlaps(iou_mode="siou")`; those pick
    sin α or sin β = cos α at the threshold √2/2 and take cos(2 arcsin(x) - π/2), which
    equals sin 2α either way, computed here without arcsin (whose gradient is infinite at
    x = 1, i.e. for boxes aligned on one axis). Concentric boxes (σ = 0) give Λ = 0.

    Args:
        theta: Shape-cost exponent θ >= 1 (the paper uses 2 to 6). Defaults to `4.0`.
        box_format: Layout of the 4 numbers: "xyxy", "xywh" or "cxcywh".
            Defaults to `"xyxy"`.
        eps: Added to every denominator. Defaults to `1e-7`.
        reduction: Keras loss reduction over all leading dimensions.
            Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"siou_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Gevorgyan, "SIoU Loss: More Powerful Learning for Bounding Box Regression",
        arXiv:2205.12740, 2022.
    """

    kind = "siou"

    def __init__(self, theta=4.0, box_format="xyxy", eps=EPSILON,
                 reduction="sum_over_batch_size", name="siou_loss", dtype=None):
        super().__init__(box_format=box_format, eps=eps, reduction=reduction, name=name,
                         dtype=dtype)
        self.theta = _check_theta(theta)

    def penalty(self, g):
        return PENALTIES["siou"](g, self.eps, self.theta)

    def get_config(self):
        return {**super().get_config(), "theta": self.theta}


def _wise_iou(g, eps, version, alpha, delta, counted=None):
    """Wise-IoU per box (see `WiseIoULoss`); v3's mean(L_IoU) is over the boxes that
    `counted` (0/1, same shape) marks when given, else over every box of the call."""
    iou_loss = 1.0 - g["iou"]
    diagonal = ops.stop_gradient(g["cw"] ** 2 + g["ch"] ** 2)
    v1 = ops.exp((g["dx"] ** 2 + g["dy"] ** 2) / (diagonal + eps)) * iou_loss
    if version == 1:
        return v1
    if counted is None:
        mean = ops.mean(iou_loss)
    else:
        counted = ops.cast(counted, iou_loss.dtype)
        mean = ops.sum(iou_loss * counted) / ops.maximum(ops.sum(counted), 1.0)
    outlier = ops.stop_gradient(iou_loss) / (ops.stop_gradient(mean) + eps)
    return outlier / (delta * ops.power(alpha, outlier - delta)) * v1


def wise_iou_loss(y_true, y_pred, version=3, alpha=1.9, delta=3.0, counted=None,
                  box_format="xyxy", eps=EPSILON):
    """Wise-IoU loss per box, float32 (...). See `WiseIoULoss`. `counted` (...): 1 for the
    boxes whose 1 − IoU enter v3's mean (e.g. a detector's positive cells among the rest),
    0 for the others; None counts every box given."""
    return _wise_iou(_pair_geometry(y_true, y_pred, box_format, eps), float(eps),
                     int(version), float(alpha), float(delta), counted)


@keras.saving.register_keras_serializable(package="losslab")
class WiseIoULoss(_IoUFamilyLoss):
    """Wise-IoU: an IoU loss scaled by the centre distance (v1), and focused by how much of
    an outlier each box is (v3).

    Formula (W_g, H_g: the smallest enclosing box; * = no gradient):
        L_IoU = 1 - IoU
        v1:  L = exp(ρ²(b, b_gt) / (W_g² + H_g²)*) · L_IoU
        v3:  β = L_IoU* / mean(L_IoU)*,  L = β / (δ · α^(β - δ)) · L_v1

    v3's gain β / (δ α^(β−δ)) is non-monotonic in the outlier degree β: it is 1 at β = δ,
    small for very good boxes (β → 0) and for very bad ones (large β, often wrong labels),
    so the gradient goes to ordinary boxes.

    The paper's mean(L_IoU) is a running mean over training batches (momentum m), state a
    stateless Keras `Loss` cannot keep portably (under JAX a variable updated inside the
    loss would not survive the compiled step). Here it is the mean over the boxes of the
    current call (momentum 1): the same focusing within a batch, without the smoothing
    across batches. Pass only real boxes (no padding), as the detector does, since padding
    would enter the mean.

    Args:
        version: 1 or 3. Defaults to `3`.
        alpha: α of v3. Defaults to `1.9` (the authors' code).
        delta: δ of v3, where the gain is 1. Defaults to `3.0`.
        box_format: Layout of the 4 numbers: "xyxy", "xywh" or "cxcywh".
            Defaults to `"xyxy"`.
        eps: Added to every denominator. Defaults to `1e-7`.
        reduction: Keras loss reduction over all leading dimensions.
            Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"wise_iou_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Tong, Chen, Xu, Yu, "Wise-IoU: Bounding Box Regression Loss with Dynamic Focusing
        Mechanism", arXiv:2301.10051 (2023); github.com/Instinct323/wiou.
    """

    def __init__(self, version=3, alpha=1.9, delta=3.0, box_format="xyxy", eps=EPSILON,
                 reduction="sum_over_batch_size", name="wise_iou_loss", dtype=None):
        super().__init__(box_format=box_format, eps=eps, reduction=reduction, name=name,
                         dtype=dtype)
        if isinstance(version, bool) or version not in (1, 3):
            raise ValueError(f"version must be 1 or 3, got {version!r}")
        self.version = int(version)
        self.alpha = check_positive("alpha", alpha)
        self.delta = check_positive("delta", delta)

    def per_box(self, g):
        return _wise_iou(g, self.eps, self.version, self.alpha, self.delta)

    def get_config(self):
        return {**super().get_config(), "version": self.version, "alpha": self.alpha,
                "delta": self.delta}


@keras.saving.register_keras_serializable(package="losslab")
class SmoothL1Loss(_BoxLoss):
    """Smooth L1 loss on box coordinates, summed over the 4 coordinates of each box.

    Formula:
        x = y_pred - y_true              (per coordinate, after conversion to xyxy)
        s(x) = 0.5 x² / β     if |x| < β
               |x| - 0.5 β    otherwise
        loss = Σ_{4 coordinates} s(x)

    Fast R-CNN's L_loc (which sums over the 4 coordinates, β = 1) and
    `torch.nn.SmoothL1Loss(beta=β, reduction="sum")` divided by the number of boxes;
    `torch.nn.SmoothL1Loss(beta=β)` (mean over all numbers) is this loss / 4. It equals
    `4 · keras.losses.Huber(delta=β) / β` for β > 0. β = 0 is L1 (no division by zero);
    β is in the units of the coordinates, so it is the one scale-dependent loss here.
    Boxes in "xywh" or "cxcywh" are converted to corners first, so the loss measures the
    same corner offsets whatever the layout; pass `box_format=None` to compare the 4
    numbers as they come (e.g. Fast R-CNN's encoded deltas (t_x, t_y, t_w, t_h)).

    Args:
        beta: Transition point β >= 0 between the quadratic and linear parts.
            Defaults to `1.0`.
        box_format: "xyxy", "xywh", "cxcywh", or None for no conversion.
            Defaults to `"xyxy"`.
        reduction: Keras loss reduction over all leading dimensions.
            Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"smooth_l1_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Girshick, "Fast R-CNN", ICCV 2015.
    """

    def __init__(self, beta=1.0, box_format="xyxy", reduction="sum_over_batch_size",
                 name="smooth_l1_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.beta = check_non_negative("beta", beta)
        self.box_format = None if box_format is None else _check_format(box_format)

    def call(self, y_true, y_pred):
        return smooth_l1_loss(y_true, y_pred, beta=self.beta, box_format=self.box_format)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "box_format": self.box_format}
