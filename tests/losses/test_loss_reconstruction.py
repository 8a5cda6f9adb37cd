"""losses.reconstruction against references written here: SSIM and MS-SSIM in NumPy/SciPy
(Gaussian window 11, σ 1.5, K1 0.01, K2 0.03, valid positions, per channel), checked in turn
against `tf.image.ssim` / `tf.image.ssim_multiscale` where TensorFlow is installed;
Charbonnier and the MS-SSIM + L1 mix by hand."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from scipy.signal import correlate2d

from losses import reconstruction as rc



def gradient(function, x):
    """d function / d x on the running backend."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(function)(x))
    import tensorflow as tf

    variable = tf.Variable(x)
    with tf.GradientTape() as tape:
        value = function(variable)
    return tape.gradient(value, variable).numpy()


def numpy_ssim_parts(x, y, max_val=1.0, size=11, sigma=1.5, k1=0.01, k2=0.03):
    """(SSIM, mean cs) of one image pair (H, W, C), float64."""
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    maps, cs_maps = [], []
    for c in range(x.shape[-1]):
        a, b = x[..., c].astype(np.float64), y[..., c].astype(np.float64)

        def blur(z):
            return correlate2d(z, window, mode="valid")

        mu_a, mu_b = blur(a), blur(b)
        var_a, var_b = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2
        cov = blur(a * b) - mu_a * mu_b
        cs = (2 * cov + c2) / (var_a + var_b + c2)
        maps.append((2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1) * cs)
        cs_maps.append(cs)
    return np.mean(maps), np.mean(cs_maps)


def numpy_ms_ssim(x, y, weights, **kwargs):
    value = 1.0
    for j, w in enumerate(weights):
        full, cs = numpy_ssim_parts(x, y, **kwargs)
        value *= max(full if j == len(weights) - 1 else cs, 0.0) ** w
        # odd sides: repeat the last row / column, then average 2 x 2 blocks
        x = np.pad(x, ((0, x.shape[0] % 2), (0, x.shape[1] % 2), (0, 0)), mode="edge")
        y = np.pad(y, ((0, y.shape[0] % 2), (0, y.shape[1] % 2), (0, 0)), mode="edge")
        h, wd = x.shape[:2]
        x = x.reshape(h // 2, 2, wd // 2, 2, -1).mean(axis=(1, 3))
        y = y.reshape(h // 2, 2, wd // 2, 2, -1).mean(axis=(1, 3))
    return value


def pair(shape=(3, 48, 40, 3), noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    clean = np.clip(rng.uniform(size=shape).cumsum(axis=1) / shape[1], 0, 1)
    noisy = np.clip(clean + rng.normal(0, noise, shape), 0, 1)
    return clean.astype("float32"), noisy.astype("float32")


def test_ssim_loss_matches_the_numpy_reference_per_image():
    clean, noisy = pair()
    losses = keras.ops.convert_to_numpy(rc.SSIMLoss(reduction=None)(clean, noisy))
    expected = [1 - numpy_ssim_parts(a, b)[0] for a, b in zip(clean, noisy)]
    np.testing.assert_allclose(losses, expected, atol=2e-5)
    assert float(rc.SSIMLoss()(clean, clean)) == pytest.approx(0.0, abs=1e-6)


def test_ssim_with_another_range_window_and_constants():
    clean, noisy = pair((2, 30, 30, 1), seed=1)
    loss = rc.SSIMLoss(max_val=255.0, filter_size=7, filter_sigma=1.0, k1=0.02, k2=0.05,
                       reduction=None)
    got = keras.ops.convert_to_numpy(loss(clean * 255, noisy * 255))
    expected = [1 - numpy_ssim_parts(a * 255, b * 255, 255.0, 7, 1.0, 0.02, 0.05)[0]
                for a, b in zip(clean, noisy)]
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_ms_ssim_matches_the_numpy_reference():
    clean, noisy = pair((2, 44, 50, 3), seed=2)
    weights = [0.2, 0.3, 0.5]  # 3 scales: sides >= 10 * 4 + 1 = 41
    got = keras.ops.convert_to_numpy(rc.MSSSIMLoss(power_factors=weights, reduction=None)(
        clean, noisy))
    expected = [1 - numpy_ms_ssim(a, b, weights) for a, b in zip(clean, noisy)]
    np.testing.assert_allclose(got, expected, atol=2e-5)


@pytest.mark.tensorflow
def test_the_numpy_reference_agrees_with_tf_image():
    """TensorFlow only (deselected in the JAX job, whose venv has no TensorFlow)."""
    import tensorflow as tf

    clean, noisy = pair((2, 170, 165, 3), seed=3)
    np.testing.assert_allclose(
        tf.image.ssim(clean, noisy, 1.0).numpy(),
        [numpy_ssim_parts(a, b)[0] for a, b in zip(clean, noisy)], atol=5e-5)
    np.testing.assert_allclose(  # tf.image works in float32: agreement to ~3e-5
        tf.image.ssim_multiscale(clean, noisy, 1.0).numpy(),
        [numpy_ms_ssim(a, b, rc.MS_SSIM_WEIGHTS) for a, b in zip(clean, noisy)], atol=5e-5)
    # and the default five-scale loss on 170 px images
    got = keras.ops.convert_to_numpy(rc.MSSSIMLoss(reduction=None)(clean, noisy))
    np.testing.assert_allclose(got, 1 - tf.image.ssim_multiscale(clean, noisy, 1.0).numpy(),
                               atol=5e-5)


def test_ms_ssim_gradient_is_finite_where_a_scale_is_negative():
    rng = np.random.default_rng(4)
    clean = rng.uniform(size=(1, 41, 41, 1)).astype("float32")
    anti = (1.0 - clean).astype("float32")  # negatively correlated: cs < 0 at some scale
    loss = rc.MSSSIMLoss(power_factors=[0.5, 0.5, 0.5], reduction=None)
    assert float(keras.ops.convert_to_numpy(loss(clean, anti))[0]) == pytest.approx(1.0)
    assert np.all(np.isfinite(gradient(lambda p: keras.ops.sum(loss(clean, p)), anti)))


def test_charbonnier_and_mix_by_hand():
    clean, noisy = pair((2, 41, 41, 1), seed=5)
    eps = 0.01
    got = keras.ops.convert_to_numpy(rc.CharbonnierLoss(epsilon=eps, reduction=None)(
        clean, noisy))
    expected = np.sqrt((noisy.astype(np.float64) - clean) ** 2 + eps ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    weights = [0.4, 0.6, 1.0]
    mix = keras.ops.convert_to_numpy(rc.MixLoss(alpha=0.7, power_factors=weights,
                                                reduction=None)(clean, noisy))
    expected = [0.7 * (1 - numpy_ms_ssim(a, b, weights)) + 0.3 * np.abs(b - a).mean()
                for a, b in zip(clean, noisy)]
    np.testing.assert_allclose(mix, expected, atol=2e-5)


def test_psnr_loss_is_minus_the_psnr_of_each_image_by_hand():
    clean, noisy = pair((3, 20, 20, 2), seed=6)
    noisy[2] = clean[2]  # a perfect copy: finite, 10·log10(ε)
    mse = ((noisy.astype(np.float64) - clean) ** 2).mean(axis=(1, 2, 3))
    got = keras.ops.convert_to_numpy(rc.PSNRLoss(max_val=2.0, epsilon=1e-6, reduction=None)(
        clean, noisy))
    np.testing.assert_allclose(got, 10 * np.log10((mse + 1e-6) / 4.0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[2], -60.0 - 10 * np.log10(4.0), atol=1e-3)
    # with ε small it is minus the psnr metric, and its mean is minus the mean PSNR
    loss = rc.PSNRLoss(epsilon=1e-12)
    metric = keras.ops.convert_to_numpy(rc.psnr(clean[:2], noisy[:2]))
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(loss(clean[:2], noisy[:2]))),
                               -metric.mean(), rtol=1e-5)
    # the gradient of image i is (10 / ln 10) · 2(p − y) / (n · MSE_i): relative to its error
    pixels = clean[0].size
    grad = gradient(lambda p: keras.ops.sum(rc.PSNRLoss(reduction=None)(clean[:2], p)),
                    noisy[:2])
    expected = (10 / np.log(10)) * 2 * (noisy[:2].astype(np.float64) - clean[:2]) / (
        pixels * (mse[:2, None, None, None] + 1e-8))
    np.testing.assert_allclose(grad, expected, rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="max_val"):
        rc.PSNRLoss(max_val=0.0)
    with pytest.raises(ValueError, match="same image shape"):
        rc.PSNRLoss()(clean, noisy[:, :, :10])


def test_bad_inputs_and_arguments_are_refused():
    clean, noisy = pair((2, 30, 30, 3))
    with pytest.raises(ValueError, match="needs a side of at least 161 px"):
        rc.MSSSIMLoss()(clean, noisy)
    with pytest.raises(ValueError, match="same image shape"):
        rc.SSIMLoss()(clean, noisy[:, :, :20])
    with pytest.raises(ValueError, match=r"shape \(batch, height, width, channels\)"):
        rc.CharbonnierLoss()(clean[..., 0], noisy[..., 0])
    with pytest.raises(ValueError, match="filter_size must be odd"):
        rc.SSIMLoss(filter_size=10)
    with pytest.raises(ValueError, match="power_factors must be one or more positive"):
        rc.MSSSIMLoss(power_factors=[0.5, -1.0])
    with pytest.raises(ValueError, match="alpha must be in"):
        rc.MixLoss(alpha=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        rc.CharbonnierLoss(epsilon=0.0)
