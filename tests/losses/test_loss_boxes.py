"""Box-regression losses (losses/boxes.py) against float64 NumPy references written here.

The references follow the papers' formulas directly (SIoU through arcsin and the √2/2
threshold, as in YOLOv6), with the module's documented conventions: widths and heights
clamped to >= 0. Hand-made cases (identical, disjoint, nested, zero-width, zero-height)
have values worked out on paper.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import keras
from losses import boxes

IOU_LOSSES = {
    "iou": boxes.IoULoss,
    "giou": boxes.GIoULoss,
    "diou": boxes.DIoULoss,
    "ciou": boxes.CIoULoss,
    "eiou": boxes.EIoULoss,
    "siou": boxes.SIoULoss,
}
ALL_LOSSES = [*IOU_LOSSES.values(), boxes.FocalEIoULoss, boxes.SmoothL1Loss]


def np_(x):
    return keras.ops.convert_to_numpy(x)


# --------------------------------------------------------------------------- NumPy references


def ref_measure(a, b, kind, theta=4.0, alpha=None):
    """One pair of xyxy boxes, float64, straight from the papers. `alpha` freezes CIoU's α."""
    ax1, ay1, ax2, ay2 = map(float, a)
    bx1, by1, bx2, by2 = map(float, b)
    wa, ha = max(ax2 - ax1, 0.0), max(ay2 - ay1, 0.0)
    wb, hb = max(bx2 - bx1, 0.0), max(by2 - by1, 0.0)
    inter = max(min(ax2, bx2) - max(ax1, bx1), 0.0) * max(min(ay2, by2) - max(ay1, by1), 0.0)
    union = wa * ha + wb * hb - inter
    iou = inter / union
    if kind == "iou":
        return iou
    cw = max(ax2, bx2) - min(ax1, bx1)
    ch = max(ay2, by2) - min(ay1, by1)
    if kind == "giou":
        return iou - (cw * ch - union) / (cw * ch)
    dx = (bx1 + bx2) / 2 - (ax1 + ax2) / 2
    dy = (by1 + by2) / 2 - (ay1 + ay2) / 2
    diou = iou - (dx**2 + dy**2) / (cw**2 + ch**2)
    if kind == "diou":
        return diou
    if kind == "ciou":
        v = 4 / math.pi**2 * (math.atan(wb / hb) - math.atan(wa / ha)) ** 2
        if alpha is None:
            alpha = v / ((1 - iou) + v) if v else 0.0  # identical boxes: 0/0, times v = 0
        return diou - alpha * v
    if kind == "eiou":
        return diou - (wa - wb) ** 2 / cw**2 - (ha - hb) ** 2 / ch**2
    assert kind == "siou"
    sigma = math.hypot(dx, dy)
    if sigma == 0:  # concentric: the angle is undefined, and multiplies ρ = 0 anyway
        angle = 0.0
    else:
        x = abs(dy) / sigma
        if x > math.sqrt(2) / 2:
            x = abs(dx) / sigma
        angle = 1 - 2 * math.sin(math.asin(x) - math.pi / 4) ** 2
    gamma = 2 - angle
    distance = sum(1 - math.exp(-gamma * rho) for rho in ((dx / cw) ** 2, (dy / ch) ** 2))
    shape = sum((1 - math.exp(-abs(p - q) / max(p, q))) ** theta for p, q in ((wa, wb), (ha, hb)))
    return iou - (distance + shape) / 2


def ref_loss(y_true, y_pred, kind, gamma=0.5, theta=4.0):
    """Per-box loss over arrays (..., 4) of xyxy boxes."""
    t, p = np.reshape(y_true, (-1, 4)), np.reshape(y_pred, (-1, 4))
    out = []
    for bt, bp in zip(t, p):
        if kind == "focal_eiou":
            out.append(ref_measure(bp, bt, "iou") ** gamma * (1 - ref_measure(bp, bt, "eiou")))
        else:
            out.append(1 - ref_measure(bp, bt, kind, theta=theta))
    return np.reshape(out, np.shape(y_true)[:-1])


def ref_smooth_l1(y_true, y_pred, beta):
    x = np.abs(np.asarray(y_pred, "float64") - np.asarray(y_true, "float64"))
    if beta == 0:
        return x.sum(-1)
    return np.where(x < beta, 0.5 * x**2 / beta, x - 0.5 * beta).sum(-1)


def xyxy_to(xyxy, box_format):
    x1, y1, x2, y2 = np.moveaxis(np.asarray(xyxy, "float64"), -1, 0)
    if box_format == "xyxy":
        out = (x1, y1, x2, y2)
    elif box_format == "xywh":
        out = (x1, y1, x2 - x1, y2 - y1)
    else:
        out = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
    return np.stack(out, -1).astype("float32")


def random_boxes(shape, seed, low=0.05, high=0.5):
    """Valid xyxy boxes in roughly [0, 1.5], sizes in [low, high]; float32."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, 1.0, size=(*shape, 2))
    wh = rng.uniform(low, high, size=(*shape, 2))
    return np.concatenate([xy, xy + wh], -1).astype("float32")


def overlapping_pairs(n, seed):
    """(y_true, y_pred) pairs that mostly overlap: the prediction is a jittered target."""
    rng = np.random.default_rng(seed)
    y_true = random_boxes((n,), seed)
    y_pred = (y_true + rng.normal(0.0, 0.08, size=y_true.shape)).astype("float32")
    y_pred[..., 2:] = np.maximum(y_pred[..., 2:], y_pred[..., :2] + 0.02)
    return y_true, y_pred


def make_loss(kind, **kwargs):
    if kind == "focal_eiou":
        return boxes.FocalEIoULoss(**kwargs)
    return IOU_LOSSES[kind](**kwargs)


def per_box(loss, y_true, y_pred):
    loss.reduction = None
    return np_(loss(y_true, y_pred))


KINDS = [*IOU_LOSSES, "focal_eiou"]


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("box_format", boxes.BOX_FORMATS)
def test_loss_matches_reference_on_random_boxes(kind, box_format):
    # Leading dims (batch, boxes); the first two boxes of each row rarely overlap.
    y_true, y_pred = random_boxes((3, 4), seed=1), random_boxes((3, 4), seed=2)
    t, p = overlapping_pairs(6, seed=3)
    y_true[:, 2:], y_pred[:, 2:] = t.reshape(3, 2, 4), p.reshape(3, 2, 4)
    expected = ref_loss(y_true, y_pred, kind)
    got = per_box(make_loss(kind, box_format=box_format),
                  xyxy_to(y_true, box_format), xyxy_to(y_pred, box_format))
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)
    reduced = float(make_loss(kind, box_format=box_format)(
        xyxy_to(y_true, box_format), xyxy_to(y_pred, box_format)))
    np.testing.assert_allclose(reduced, expected.mean(), rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_iou_losses_are_scale_invariant(kind):
    y_true, y_pred = overlapping_pairs(8, seed=4)
    normalized = per_box(make_loss(kind), y_true, y_pred)
    pixels = per_box(make_loss(kind), y_true * 640.0, y_pred * 640.0)
    np.testing.assert_allclose(pixels, normalized, rtol=1e-4, atol=1e-5)


# Hand-worked values, boxes in xyxy: (y_true, y_pred) -> expected loss per kind.
IDENTICAL = ([1.0, 2.0, 4.0, 3.0], [1.0, 2.0, 4.0, 3.0])
DISJOINT = ([0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 3.0, 1.0])  # side by side, gap 1
NESTED = ([0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 3.0, 3.0])  # concentric, half the size
ZERO_WIDTH = ([0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 1.0, 2.0])  # a vertical segment, same center
ZERO_HEIGHT = ([0.0, 0.0, 2.0, 2.0], [0.0, 1.0, 2.0, 1.0])
INVERTED = ([0.0, 0.0, 2.0, 2.0], [3.0, 3.0, 1.0, 1.0])  # x_max < x_min: counts as zero-size
E = math.exp
HAND = {
    # IoU = 0, C = 3x1, U = 2, ρ² = 4, c² = 10, same shapes; SIoU: Λ = 0, ρ_x = 4/9.
    "disjoint": (DISJOINT, {"iou": 1.0, "giou": 4 / 3, "diou": 1.4, "ciou": 1.4, "eiou": 1.4,
                            "siou": 1 + (1 - E(-8 / 9)) / 2, "focal_eiou": 0.0}),
    # IoU = 1/4 = GIoU = DIoU = CIoU; EIoU adds 2 * (2/4)²; SIoU: Ω = 2 (1 - e^-1/2)^4.
    "nested": (NESTED, {"iou": 0.75, "giou": 0.75, "diou": 0.75, "ciou": 0.75, "eiou": 1.25,
                        "siou": 0.75 + (1 - E(-0.5)) ** 4, "focal_eiou": 0.5 * 1.25}),
    # IoU = 0, C = A ∪ B; CIoU: v = (4/π²)(π/4)² = 1/4, α = 1/5; EIoU: + 2²/2²;
    # SIoU: ω_w = 1, ω_h = 0.
    "zero_width": (ZERO_WIDTH, {"iou": 1.0, "giou": 1.0, "diou": 1.0, "ciou": 1.05, "eiou": 2.0,
                                "siou": 1 + (1 - E(-1)) ** 4 / 2, "focal_eiou": 0.0}),
    # h = 0: atan(w/h) must be π/2, not NaN.
    "zero_height": (ZERO_HEIGHT, {"iou": 1.0, "giou": 1.0, "diou": 1.0, "ciou": 1.05,
                                  "eiou": 2.0, "siou": 1 + (1 - E(-1)) ** 4 / 2,
                                  "focal_eiou": 0.0}),
    # Unclamped, its "area" (-2)·(-2) = 4 would give GIoU = 1, i.e. a zero loss. Clamped:
    # w = h = 0 at center (2, 2); C = 2x2, ρ² = 2, c² = 8; CIoU: v = 1/4, α = 1/5;
    # SIoU: Λ = 1 (45°), ρ_x = ρ_y = 1/4, ω_w = ω_h = 1.
    "inverted": (INVERTED, {"iou": 1.0, "giou": 1.0, "diou": 1.25, "ciou": 1.3, "eiou": 3.25,
                            "siou": 1 + (1 - E(-0.25)) + (1 - E(-1)) ** 4, "focal_eiou": 0.0}),
    "identical": (IDENTICAL, {k: 0.0 for k in KINDS}),
}


@pytest.mark.parametrize("case", sorted(HAND))
@pytest.mark.parametrize("kind", KINDS)
def test_hand_computed_cases(case, kind):
    (y_true, y_pred), expected = HAND[case]
    got = per_box(make_loss(kind), np.array([y_true], "float32"), np.array([y_pred], "float32"))
    np.testing.assert_allclose(got, [expected[kind]], rtol=1e-5, atol=1e-5)
    if case in ("disjoint", "nested"):  # in the others the reference divides by 0
        np.testing.assert_allclose(ref_loss([y_true], [y_pred], kind), [expected[kind]],
                                   rtol=1e-12, atol=1e-12)


def test_focal_eiou_gamma_zero_is_eiou_and_weights_by_iou():
    y_true, y_pred = overlapping_pairs(8, seed=5)
    eiou = per_box(boxes.EIoULoss(), y_true, y_pred)
    np.testing.assert_allclose(per_box(boxes.FocalEIoULoss(gamma=0.0), y_true, y_pred), eiou,
                               rtol=1e-6)
    iou = 1.0 - per_box(boxes.IoULoss(), y_true, y_pred)
    np.testing.assert_allclose(per_box(boxes.FocalEIoULoss(gamma=2.0), y_true, y_pred),
                               iou**2 * eiou, rtol=1e-5)


def test_siou_theta_changes_only_the_shape_cost():
    y_true, y_pred = overlapping_pairs(6, seed=6)
    got = per_box(boxes.SIoULoss(theta=2.0), y_true, y_pred)
    np.testing.assert_allclose(got, ref_loss(y_true, y_pred, "siou", theta=2.0), rtol=2e-5)


def test_ciou_constant_is_four_over_pi_squared():
    # Same center, IoU = 1/2: 2x2 target, 1x2 prediction. v = (4/π²)(π/4 - atan(1/2))².
    v = 4 / math.pi**2 * (math.pi / 4 - math.atan(0.5)) ** 2
    expected = 0.5 + v * v / (0.5 + v)
    got = per_box(boxes.CIoULoss(), np.array([[0, 0, 2, 2.0]], "float32"),
                  np.array([[0.5, 0, 1.5, 2.0]], "float32"))
    np.testing.assert_allclose(got, [expected], rtol=1e-6)
    squared = 16 / math.pi**4 * (math.pi / 4 - math.atan(0.5)) ** 2  # keras-cv's constant
    assert abs(got[0] - (0.5 + squared**2 / (0.5 + squared))) > 1e-4


# --------------------------------------------------------------------------- pairwise


@pytest.mark.parametrize("kind", boxes.IOU_KINDS)
def test_box_iou_pairwise_matches_double_loop(kind):
    a, b = random_boxes((5,), seed=7), random_boxes((3,), seed=8)
    a[1] = b[2]  # one identical pair
    expected = np.array([[ref_measure(p, q, kind) for q in b] for p in a])
    for box_format in boxes.BOX_FORMATS:
        got = np_(boxes.box_iou(xyxy_to(a, box_format), xyxy_to(b, box_format), kind=kind,
                                box_format=box_format))
        assert got.shape == (5, 3)
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)


def test_box_iou_batched_shapes_and_elementwise_diagonal():
    a, b = random_boxes((2, 5), seed=9), random_boxes((2, 3), seed=10)
    got = np_(boxes.box_iou(a, b, kind="giou"))
    assert got.shape == (2, 5, 3)
    for i in range(2):
        np.testing.assert_allclose(got[i], np_(boxes.box_iou(a[i], b[i], kind="giou")),
                                   rtol=1e-6)
    assert np_(boxes.box_iou(a[0], b, kind="iou")).shape == (2, 5, 3)
    c = random_boxes((5,), seed=11)
    np.testing.assert_allclose(np.diag(np_(boxes.box_iou(a[0], c, kind="siou"))),
                               np_(boxes.elementwise_box_iou(a[0], c, kind="siou")), rtol=1e-6)


def test_matches_keras_bounding_box_utilities():
    a, b = random_boxes((6,), seed=12), random_boxes((4,), seed=13)
    a[:4] = overlapping_pairs(4, seed=14)[1]
    b[:] = overlapping_pairs(4, seed=14)[0]
    bb = keras.utils.bounding_boxes
    np.testing.assert_allclose(np_(boxes.box_iou(a, b)), np_(bb.compute_iou(a, b, "xyxy")),
                               rtol=1e-5, atol=1e-6)
    # compute_ciou: aligned pairs, same value (it lets gradients through α; see CIoULoss).
    np.testing.assert_allclose(np_(boxes.elementwise_box_iou(a[:4], b, kind="ciou")),
                               np_(bb.compute_ciou(a[:4], b, "xyxy")), rtol=1e-5, atol=1e-5)
    for ours, theirs in (("xywh", "xywh"), ("cxcywh", "center_xywh")):
        converted = xyxy_to(a, ours)
        np.testing.assert_allclose(np_(boxes.to_xyxy(converted, ours)),
                                   np_(bb.convert_format(converted, theirs, "xyxy")), rtol=1e-6)


@pytest.mark.parametrize("kind", boxes.IOU_KINDS)
@pytest.mark.parametrize("box_format", boxes.BOX_FORMATS)
def test_loss_class_function_and_measure_agree(kind, box_format):
    """The class, the functional form and 1 - elementwise_box_iou are one definition."""
    y_true, y_pred = overlapping_pairs(6, seed=21)
    y_true[0], y_pred[0] = DISJOINT  # and one pair that does not overlap
    t, p = xyxy_to(y_true, box_format), xyxy_to(y_pred, box_format)
    by_class = per_box(make_loss(kind, box_format=box_format), t, p)
    by_function = np_(getattr(boxes, f"{kind}_loss")(t, p, box_format=box_format))
    by_measure = 1.0 - np_(boxes.elementwise_box_iou(p, t, kind=kind, box_format=box_format))
    np.testing.assert_array_equal(by_function, by_class)
    np.testing.assert_allclose(by_measure, by_class, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(by_class, ref_loss(y_true, y_pred, kind), rtol=2e-5, atol=2e-5)


def test_every_iou_loss_class_shares_the_base_and_names_a_known_kind():
    for kind, loss_cls in IOU_LOSSES.items():
        assert issubclass(loss_cls, boxes._IoUFamilyLoss) and loss_cls.kind == kind
    assert boxes.FocalEIoULoss.kind == "eiou"  # its weight multiplies the EIoU loss
    assert set(boxes.PENALTIES) == set(boxes.IOU_KINDS)


# --------------------------------------------------------------------------- gradients


DEGENERATE = np.array([
    IDENTICAL[1], DISJOINT[1], NESTED[1], ZERO_WIDTH[1], ZERO_HEIGHT[1],
    [1.0, 1.0, 1.0, 1.0],  # a point
    [3.0, 3.0, 1.0, 1.0],  # inverted (x_max < x_min)
    [0.0, 0.0, 2.0, 2.0],  # same as its target below
    [5.0, 5.0, 5.0, 5.0],  # a point on a point
    [1.0, 0.0, 1.0, 2.0],  # zero width on a zero-width target
], "float32")
DEGENERATE_TRUE = np.array([
    IDENTICAL[0], DISJOINT[0], NESTED[0], ZERO_WIDTH[0], ZERO_HEIGHT[0],
    [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 5.0, 5.0],
    [1.0, 0.0, 1.0, 2.0],
], "float32")


def grad(loss, y_true, y_pred):
    """(loss value, d loss / d y_pred) as NumPy, on the TensorFlow (default) or JAX backend."""
    if keras.backend.backend() == "jax":
        import jax

        def total(p):  # like tape.gradient, differentiate the sum of a per-box loss
            value = loss(y_true, p)
            return keras.ops.sum(value), value

        (_, value), gradient = jax.value_and_grad(total, has_aux=True)(y_pred)
        return np.asarray(value), np.asarray(gradient)
    import tensorflow as tf

    y_pred = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        value = loss(tf.constant(y_true), y_pred)
    return value.numpy(), tape.gradient(value, y_pred).numpy()


@pytest.mark.parametrize("loss_cls", ALL_LOSSES)
def test_degenerate_boxes_give_finite_values_and_gradients(loss_cls):
    for box_format in boxes.BOX_FORMATS:
        loss = loss_cls(box_format=box_format)
        loss.reduction = None
        values, gradients = grad(loss, xyxy_to(DEGENERATE_TRUE, box_format),
                                 xyxy_to(DEGENERATE, box_format))
        assert np.all(np.isfinite(values)), (box_format, values)
        assert np.all(np.isfinite(gradients)), (box_format, gradients)


@pytest.mark.parametrize("kind", ["giou", "diou", "ciou", "eiou", "siou"])
def test_disjoint_boxes_still_get_a_gradient(kind):
    _, gradient = grad(make_loss(kind), np.array([DISJOINT[0]], "float32"),
                       np.array([DISJOINT[1]], "float32"))
    # Moving the predicted box (or its left edge) towards the target lowers the loss.
    assert gradient[0, 0] > 0 and gradient[0, 0] + gradient[0, 2] > 0


def numeric_gradient(f, box, h=1e-6):
    out = np.zeros(4)
    for i in range(4):
        up, down = np.array(box, "float64"), np.array(box, "float64")
        up[i] += h
        down[i] -= h
        out[i] = (f(up) - f(down)) / (2 * h)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_finite_differences_of_the_reference(kind):
    """Also pins the stop_gradient choices: CIoU's α and Focal-EIoU's IoU^γ are constants."""
    y_true, y_pred = overlapping_pairs(4, seed=15)
    _, got = grad(make_loss(kind, reduction="sum"), y_true, y_pred)
    for t, p, g in zip(y_true, y_pred, got):
        if kind == "ciou":
            v = 4 / math.pi**2 * (math.atan((t[2] - t[0]) / (t[3] - t[1]))
                                  - math.atan((p[2] - p[0]) / (p[3] - p[1]))) ** 2
            alpha = v / ((1 - ref_measure(p, t, "iou")) + v)

            def f(q, alpha=alpha, t=t):
                return 1 - ref_measure(q, t, "ciou", alpha=alpha)
        elif kind == "focal_eiou":
            weight = ref_measure(p, t, "iou") ** 0.5

            def f(q, weight=weight, t=t):
                return weight * (1 - ref_measure(q, t, "eiou"))
        else:
            def f(q, t=t):
                return 1 - ref_measure(q, t, kind)
        np.testing.assert_allclose(g, numeric_gradient(f, p), rtol=2e-3, atol=2e-4)


# --------------------------------------------------------------------------- Smooth L1


@pytest.mark.parametrize("beta", [1.0, 0.5, 2.0, 0.0])
def test_smooth_l1_matches_reference_and_huber(beta):
    rng = np.random.default_rng(16)
    y_true = rng.uniform(-2, 2, size=(5, 3, 4)).astype("float32")
    y_pred = (y_true + rng.normal(0, 1.5, size=y_true.shape)).astype("float32")
    loss = boxes.SmoothL1Loss(beta=beta, box_format=None)
    got = per_box(loss, y_true, y_pred)
    np.testing.assert_allclose(got, ref_smooth_l1(y_true, y_pred, beta), rtol=1e-5, atol=1e-6)
    if beta > 0:  # smooth_l1_β = Huber_β / β per coordinate; Keras' Huber means over the 4
        huber = keras.losses.Huber(delta=beta, reduction=None)
        np.testing.assert_allclose(got, 4 * np_(huber(y_true, y_pred)) / beta, rtol=1e-5)
    else:
        np.testing.assert_allclose(got, np.abs(y_pred - y_true).sum(-1), rtol=1e-6)


def test_smooth_l1_hand_values_and_formats():
    # β = 0.5: |x| = 0.25 -> 0.5 * 0.0625 / 0.5 = 0.0625; |x| = 1 -> 1 - 0.25 = 0.75.
    y_true = np.zeros((1, 4), "float32")
    y_pred = np.array([[0.25, -1.0, 0.0, 0.0]], "float32")
    np.testing.assert_allclose(per_box(boxes.SmoothL1Loss(beta=0.5), y_true, y_pred), [0.8125])
    # Other layouts are compared as corners.
    t, p = overlapping_pairs(5, seed=17)
    corners = per_box(boxes.SmoothL1Loss(beta=0.1), t, p)
    for box_format in ("xywh", "cxcywh"):
        got = per_box(boxes.SmoothL1Loss(beta=0.1, box_format=box_format),
                      xyxy_to(t, box_format), xyxy_to(p, box_format))
        np.testing.assert_allclose(got, corners, rtol=1e-4, atol=1e-6)


def test_smooth_l1_beta_zero_gradient_is_finite():
    y = np.zeros((2, 4), "float32")
    _, gradient = grad(boxes.SmoothL1Loss(beta=0.0), y, y)
    assert np.all(np.isfinite(gradient))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("loss_cls", ALL_LOSSES)
def test_bad_input_raises_value_error(loss_cls):
    with pytest.raises(ValueError, match="box_format"):
        loss_cls(box_format="yxyx")
    good = np.zeros((2, 4), "float32")
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        loss_cls()(good, np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        loss_cls()(np.zeros((2, 5), "float32"), good)
    with pytest.raises(ValueError, match="same shape"):
        loss_cls()(good, np.zeros((3, 4), "float32"))


def test_bad_arguments_raise_value_error():
    a = random_boxes((3,), seed=18)
    with pytest.raises(ValueError, match="kind"):
        boxes.box_iou(a, a, kind="wiou")
    with pytest.raises(ValueError, match="box_format"):
        boxes.box_iou(a, a, box_format="center_xywh")
    with pytest.raises(ValueError, match="num_boxes"):
        boxes.box_iou(a[0], a)
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        boxes.elementwise_box_iou(a[:, :2], a)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0, got 0\.0"):
        boxes.GIoULoss(eps=0.0)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0, got -1e-07"):
        boxes.giou_loss(a, a, eps=-1e-7)
    with pytest.raises(ValueError, match=r"gamma must be a finite number >= 0, got -1\.0"):
        boxes.FocalEIoULoss(gamma=-1.0)
    with pytest.raises(ValueError, match=r"gamma must be a finite number >= 0, got -1"):
        boxes.focal_eiou_loss(a, a, gamma=-1)
    with pytest.raises(ValueError, match=r"theta must be a finite number >= 1 \(the paper uses "
                                         r"2 to 6\), got 0\.5"):
        boxes.SIoULoss(theta=0.5)
    with pytest.raises(ValueError, match=r"beta must be a finite number >= 0, got -0\.1"):
        boxes.SmoothL1Loss(beta=-0.1)
    with pytest.raises(ValueError, match=r"box_format must be one of 'xyxy', 'xywh', 'cxcywh', "
                                         r"got 'yxyx'"):
        boxes.SmoothL1Loss(box_format="yxyx")


# --------------------------------------------------------------------------- training, weights
# (save/load, the policies, dtype and sample_weight for every box loss:
# test_loss_contract_all.py)


def box_head(name=None):
    """Dense(4) whose initial outputs are valid boxes near (0.2, 0.2, 0.8, 0.8)."""
    return keras.layers.Dense(
        4, dtype="float32", name=name,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
        bias_initializer=keras.initializers.Constant([0.2, 0.2, 0.8, 0.8]))


def test_default_loss_trains_a_box_regressor():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, box_head()(keras.layers.Dense(4)(inputs)))
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    y = random_boxes((32,), seed=0, low=0.3, high=0.6)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=boxes.GIoULoss())
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0], history


def test_sample_weight_broadcasts_over_boxes():
    y_true, y_pred = overlapping_pairs(6, seed=20)
    y_true, y_pred = y_true.reshape(2, 3, 4), y_pred.reshape(2, 3, 4)
    weights = np.array([0.0, 2.0], "float32")
    for loss_cls in ALL_LOSSES:
        per = per_box(loss_cls(), y_true, y_pred)
        got = float(loss_cls()(y_true, y_pred, sample_weight=weights))
        np.testing.assert_allclose(got, (per * weights[:, None]).sum() / per.size, rtol=1e-5)
        per_box_weights = np.arange(6, dtype="float32").reshape(2, 3)
        got = float(loss_cls()(y_true, y_pred, sample_weight=per_box_weights))
        np.testing.assert_allclose(got, (per * per_box_weights).sum() / per.size, rtol=1e-5)
