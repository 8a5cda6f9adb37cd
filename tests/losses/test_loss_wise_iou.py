"""losses.boxes.WiseIoULoss against a NumPy reference written here from the paper's formulas
(Tong et al. 2023, Eq. 2-3 and the v3 gain), values and gradients; the gradient reference
holds the enclosing box's diagonal and β fixed, as the paper's * (no gradient) says."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from losses.boxes import WiseIoULoss


def wiou_reference(pred, true, version=3, alpha=1.9, delta=3.0, frozen=None):
    """Per-box Wise-IoU, float64; `frozen` = (diagonal², β) to hold fixed (for gradients)."""
    px1, py1, px2, py2 = pred.T
    tx1, ty1, tx2, ty2 = true.T
    inter = (np.clip(np.minimum(px2, tx2) - np.maximum(px1, tx1), 0, None)
             * np.clip(np.minimum(py2, ty2) - np.maximum(py1, ty1), 0, None))
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter
    iou_loss = 1 - inter / union
    wg = np.maximum(px2, tx2) - np.minimum(px1, tx1)
    hg = np.maximum(py2, ty2) - np.minimum(py1, ty1)
    rho2 = ((px1 + px2) / 2 - (tx1 + tx2) / 2) ** 2 + ((py1 + py2) / 2 - (ty1 + ty2) / 2) ** 2
    diagonal2, beta = frozen if frozen is not None else (wg ** 2 + hg ** 2,
                                                          iou_loss / iou_loss.mean())
    v1 = np.exp(rho2 / diagonal2) * iou_loss
    if version == 1:
        return v1, (diagonal2, beta)
    return beta / (delta * alpha ** (beta - delta)) * v1, (diagonal2, beta)


def boxes(n=6, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.uniform(0, 10, (n, 2))
    true = np.concatenate([true, true + rng.uniform(2, 6, (n, 2))], axis=1)
    pred = true + rng.normal(0, 1.0, (n, 4))
    pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 0.5)
    return pred, true


def gradient(function, x):
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(function)(x))
    import tensorflow as tf

    variable = tf.Variable(x)
    with tf.GradientTape() as tape:
        value = function(variable)
    return tape.gradient(value, variable).numpy()


@pytest.mark.parametrize("version", [1, 3])
def test_values_and_gradients_match_the_reference(version):
    pred, true = boxes()
    loss = WiseIoULoss(version=version, alpha=1.7, delta=2.5, reduction=None)
    got = keras.ops.convert_to_numpy(loss(true.astype("float32"), pred.astype("float32")))
    expected, frozen = wiou_reference(pred, true, version, 1.7, 2.5)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # d(sum of losses)/d pred by central differences, diagonal and β held fixed
    numeric = np.zeros_like(pred)
    for index in np.ndindex(pred.shape):
        step = np.zeros_like(pred)
        step[index] = 1e-6
        numeric[index] = (wiou_reference(pred + step, true, version, 1.7, 2.5, frozen)[0].sum()
                          - wiou_reference(pred - step, true, version, 1.7, 2.5,
                                           frozen)[0].sum()) / 2e-6
    analytic = gradient(lambda p: keras.ops.sum(loss(true.astype("float32"), p)),
                        pred.astype("float32"))
    np.testing.assert_allclose(analytic, numeric, rtol=2e-3, atol=2e-4)


def test_v3_gain_is_one_where_the_outlier_degree_is_delta_and_small_at_both_ends():
    # three boxes whose IoU losses are 0.05, 0.3 and 0.85 give β = L / 0.4: 0.125, 0.75,
    # 2.125; with δ = 0.75 the middle box's gain β / (δ α^(β-δ)) is exactly 1
    true = np.asarray([[0, 0, 10, 10]] * 3, np.float32)
    pred = np.asarray([[0, 0, 10, 9.5], [0, 0, 10, 7], [0, 0, 10, 1.5]], np.float32)
    v1 = keras.ops.convert_to_numpy(WiseIoULoss(version=1, reduction=None)(true, pred))
    v3 = keras.ops.convert_to_numpy(WiseIoULoss(version=3, alpha=1.9, delta=0.75,
                                                reduction=None)(true, pred))
    gain = v3 / v1
    assert gain[1] == pytest.approx(1.0, rel=1e-4)
    beta = np.asarray([0.125, 0.75, 2.125])
    np.testing.assert_allclose(gain, beta / (0.75 * 1.9 ** (beta - 0.75)), rtol=1e-4)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="version must be 1 or 3"):
        WiseIoULoss(version=2)
    with pytest.raises(ValueError, match="alpha"):
        WiseIoULoss(alpha=0.0)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 4\)"):
        WiseIoULoss()(np.zeros((2, 3)), np.zeros((2, 3)))
