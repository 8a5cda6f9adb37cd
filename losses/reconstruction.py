"""Image reconstruction losses: SSIM, MS-SSIM, Charbonnier, PSNR, and the MS-SSIM + L1 mix.

The functional forms `ssim`, `ms_ssim` and `psnr` (per image) also serve as metrics.

`y_true` and `y_pred` are images (B, H, W, C), channels last, values in [0, `max_val`]
(1 by default: the output of a sigmoid). Every loss returns one value per image, shape (B,),
which Keras reduces over the batch; a `sample_weight` of shape (B,) weights images.

SSIM follows Wang et al. (2004) as `tf.image.ssim` and scikit-image (`gaussian_weights=True,
use_sample_covariance=False`) compute it: local means, variances and the covariance under an
11 x 11 Gaussian window (σ = 1.5), each channel apart, "valid" positions only (no padding),

    l = (2 μx μy + C1) / (μx² + μy² + C1)
    cs = (2 σxy + C2) / (σx² + σy² + C2)          C1 = (K1·L)², C2 = (K2·L)², L = max_val
    SSIM = mean over positions and channels of l · cs

MS-SSIM (Wang et al. 2003) takes cs at the first M − 1 scales and SSIM at the last, each
scale a 2 x 2 average pooling of the previous one (an odd side padded by its last row or
column first), combined as Π_j max(cs_j, 0)^{β_j} ·
max(SSIM_M, 0)^{β_M}, with the paper's weights β = (0.0448, 0.2856, 0.3001, 0.2363,
0.1333) (M = 5) by default; the clamp at 0 is `tf.image.ssim_multiscale`'s, which keeps a
negative base from a fractional power (NaN). An image needs a side of at least
(filter_size − 1)·2^{M−1} + 1 pixels (161 for the defaults): a smaller one is refused with
the size it needs (pass fewer `power_factors` for small images, e.g. 3 scales for 41 px).

References:
    Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 2004.
    Wang, Simoncelli, Bovik, "Multiscale structural similarity for image quality
    assessment", Asilomar 2003.
    Charbonnier, Blanc-Féraud, Aubert, Barlaud, "Two deterministic half-quadratic
    regularization algorithms for computed imaging", ICIP 1994.
    Zhao, Gallo, Frosio, Kautz, "Loss Functions for Image Restoration with Neural Networks",
    IEEE TCI 2017.
    Chen, Lu, Zhang, Chu, Chen, "HINet: Half Instance Normalization Network for Image
    Restoration", CVPR Workshops 2021.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from losses.base import (Loss, as_float32, check_in_range, check_positive, check_positive_int,
                         static_shape)

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


# --------------------------------------------------------------------------- shared pieces


def _check_images(y_true, y_pred, min_side=1):
    """Both (B, H, W, C) with equal known dimensions, H and W >= `min_side`."""
    true_shape, pred_shape = static_shape(y_true), static_shape(y_pred)
    for what, shape in (("y_true", true_shape), ("y_pred", pred_shape)):
        if len(shape) != 4:
            raise ValueError(f"{what} must be images of shape (batch, height, width, "
                             f"channels), got shape {shape}")
    if any(a is not None and b is not None and a != b
           for a, b in zip(true_shape[1:], pred_shape[1:])):
        raise ValueError(f"y_true and y_pred must have the same image shape, got "
                         f"{true_shape} and {pred_shape}")
    height, width = pred_shape[1], pred_shape[2]
    if height is None or width is None or pred_shape[3] is None:
        raise ValueError(f"image height, width and channels must be known, got shape "
                         f"{pred_shape}")
    if min(height, width) < min_side:
        raise ValueError(f"images of {height} x {width} px are too small: this loss needs a "
                         f"side of at least {min_side} px")
    return height, width, pred_shape[3]


def _gaussian_kernel(filter_size, sigma, channels):
    """A normalised 2-D Gaussian as a depthwise kernel (k, k, channels, 1)."""
    x = np.arange(filter_size, dtype=np.float64) - (filter_size - 1) / 2.0
    g = np.exp(-(x ** 2) / (2.0 * sigma ** 2))
    g /= g.sum()
    kernel = np.outer(g, g)[:, :, None, None]
    return np.tile(kernel, (1, 1, channels, 1)).astype("float32")


def _ssim_parts(x, y, max_val, kernel, k1, k2):
    """Per image (B,): the mean of l·cs (SSIM) and the mean of cs."""
    def blur(z):
        return ops.depthwise_conv(z, kernel, strides=1, padding="valid")

    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    mu_x, mu_y = blur(x), blur(y)
    sigma_x = blur(x * x) - mu_x * mu_x
    sigma_y = blur(y * y) - mu_y * mu_y
    sigma_xy = blur(x * y) - mu_x * mu_y
    luminance = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    contrast_structure = (2.0 * sigma_xy + c2) / (sigma_x + sigma_y + c2)
    return (ops.mean(luminance * contrast_structure, axis=(1, 2, 3)),
            ops.mean(contrast_structure, axis=(1, 2, 3)))


@keras.saving.register_keras_serializable(package="losslab")
def psnr(y_true, y_pred, max_val=1.0):
    """Peak signal-to-noise ratio per image (B,), in dB: 10·log10(max_val² / MSE), the MSE
    floored at 1e-10 (a perfect copy gives 100 dB for max_val 1, not infinity). Usable as
    a metric: `keras.metrics.MeanMetricWrapper(psnr, name="psnr")`."""
    _check_images(y_true, y_pred)
    error = ops.mean(ops.square(as_float32(y_true) - as_float32(y_pred)), axis=(1, 2, 3))
    return 10.0 * ops.log(float(max_val) ** 2 / ops.maximum(error, 1e-10)) / math.log(10.0)


@keras.saving.register_keras_serializable(package="losslab")
def ssim(y_true, y_pred, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03):
    """SSIM per image (B,) of images (B, H, W, C) (see the module docstring)."""
    _, _, channels = _check_images(y_true, y_pred, filter_size)
    kernel = _gaussian_kernel(filter_size, filter_sigma, channels)
    return _ssim_parts(as_float32(y_true), as_float32(y_pred), max_val, kernel, k1, k2)[0]


def ms_ssim(y_true, y_pred, max_val=1.0, power_factors=MS_SSIM_WEIGHTS, filter_size=11,
            filter_sigma=1.5, k1=0.01, k2=0.03):
    """MS-SSIM per image (B,) (see the module docstring); M = len(power_factors) scales."""
    scales = len(power_factors)
    _, _, channels = _check_images(y_true, y_pred, (filter_size - 1) * 2 ** (scales - 1) + 1)
    kernel = _gaussian_kernel(filter_size, filter_sigma, channels)
    x, y = as_float32(y_true), as_float32(y_pred)
    value = None
    for j, power in enumerate(power_factors):
        full, contrast_structure = _ssim_parts(x, y, max_val, kernel, k1, k2)
        base = full if j == scales - 1 else contrast_structure
        # max(base, 0)^p, written so that the gradient stays finite where base <= 0 (the
        # derivative of x^p, p < 1, is infinite at 0; the unused branch must not see 0)
        positive = base > 0
        term = ops.where(positive, ops.power(ops.where(positive, base, 1.0), power), 0.0)
        value = term if value is None else value * term
        if j < scales - 1:
            x, y = _half(x), _half(y)
    return value


def _half(images):
    """2 x 2 average pooling; an odd side is first padded by repeating its last row or
    column (as `tf.image.ssim_multiscale` does), so a side n becomes ceil(n / 2)."""
    height, width = static_shape(images)[1:3]
    padding = [[0, 0], [0, height % 2], [0, width % 2], [0, 0]]
    if height % 2 or width % 2:
        images = ops.pad(images, padding, mode="symmetric")
    return ops.average_pool(images, 2, strides=2, padding="valid")


def _check_window(filter_size, filter_sigma, k1, k2, max_val):
    filter_size = check_positive_int("filter_size", filter_size)
    if filter_size % 2 == 0:
        raise ValueError(f"filter_size must be odd, got {filter_size}")
    return (filter_size, check_positive("filter_sigma", filter_sigma),
            check_in_range("k1", k1, 0.0, 1.0, closed="neither"),
            check_in_range("k2", k2, 0.0, 1.0, closed="neither"),
            check_positive("max_val", max_val))


# --------------------------------------------------------------------------- the losses


@keras.saving.register_keras_serializable(package="losslab")
class SSIMLoss(Loss):
    """1 − SSIM per image (see the module docstring for SSIM).

    Args:
        max_val: The dynamic range L of the pixels (1 for [0, 1], 255 for bytes).
            Defaults to `1.0`.
        filter_size: Side of the Gaussian window, odd. Defaults to `11`.
        filter_sigma: σ of the window. Defaults to `1.5`.
        k1, k2: The stabilising constants. Defaults to `0.01` and `0.03`.
        reduction: Keras loss reduction over the batch. Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"ssim_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference: Wang et al., "Image quality assessment: from error visibility to structural
    similarity", IEEE TIP 2004.
    """

    def __init__(self, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03,
                 reduction="sum_over_batch_size", name="ssim_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        (self.filter_size, self.filter_sigma, self.k1, self.k2,
         self.max_val) = _check_window(filter_size, filter_sigma, k1, k2, max_val)

    def call(self, y_true, y_pred):
        return 1.0 - ssim(y_true, y_pred, self.max_val, self.filter_size, self.filter_sigma,
                          self.k1, self.k2)

    def get_config(self):
        return {**super().get_config(), "max_val": self.max_val,
                "filter_size": self.filter_size, "filter_sigma": self.filter_sigma,
                "k1": self.k1, "k2": self.k2}


def _check_power_factors(power_factors):
    try:
        factors = tuple(float(p) for p in power_factors)
    except (TypeError, ValueError):
        raise ValueError(f"power_factors must be a sequence of numbers, got "
                         f"{power_factors!r}") from None
    if not factors or any(not math.isfinite(p) or p <= 0 for p in factors):
        raise ValueError(f"power_factors must be one or more positive numbers, got "
                         f"{power_factors!r}")
    return factors


@keras.saving.register_keras_serializable(package="losslab")
class MSSSIMLoss(Loss):
    """1 − MS-SSIM per image (see the module docstring for MS-SSIM).

    Args:
        max_val: The dynamic range L of the pixels. Defaults to `1.0`.
        power_factors: The weight β_j of each scale; their count is the number of scales.
            Defaults to the paper's five (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), which
            need images of at least 161 px; use fewer for smaller images.
        filter_size, filter_sigma, k1, k2: As `SSIMLoss`.
        reduction: Keras loss reduction over the batch. Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"ms_ssim_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to. Defaults to `None`.

    Reference: Wang et al., "Multiscale structural similarity for image quality
    assessment", Asilomar 2003.
    """

    def __init__(self, max_val=1.0, power_factors=MS_SSIM_WEIGHTS, filter_size=11,
                 filter_sigma=1.5, k1=0.01, k2=0.03, reduction="sum_over_batch_size",
                 name="ms_ssim_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        (self.filter_size, self.filter_sigma, self.k1, self.k2,
         self.max_val) = _check_window(filter_size, filter_sigma, k1, k2, max_val)
        self.power_factors = _check_power_factors(power_factors)

    def call(self, y_true, y_pred):
        return 1.0 - ms_ssim(y_true, y_pred, self.max_val, self.power_factors,
                             self.filter_size, self.filter_sigma, self.k1, self.k2)

    def get_config(self):
        return {**super().get_config(), "max_val": self.max_val,
                "power_factors": list(self.power_factors), "filter_size": self.filter_size,
                "filter_sigma": self.filter_sigma, "k1": self.k1, "k2": self.k2}


@keras.saving.register_keras_serializable(package="losslab")
class CharbonnierLoss(Loss):
    """The Charbonnier penalty, a differentiable L1, averaged over each image's pixels.

    Formula:
        loss = mean over (H, W, C) of sqrt((y_pred − y_true)² + ε²)

    ε sets where it turns from quadratic (|x| << ε) to linear (|x| >> ε); its value at x = 0
    is ε, not 0 (as in the papers that use it, e.g. LapSRN).

    Args:
        epsilon: ε > 0. Defaults to `1e-3`.
        reduction: Keras loss reduction over the batch. Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"charbonnier_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to. Defaults to `None`.

    Reference: Charbonnier et al., "Two deterministic half-quadratic regularization
    algorithms for computed imaging", ICIP 1994.
    """

    def __init__(self, epsilon=1e-3, reduction="sum_over_batch_size", name="charbonnier_loss",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.epsilon = check_positive("epsilon", epsilon)

    def call(self, y_true, y_pred):
        _check_images(y_true, y_pred)
        difference = as_float32(y_pred) - as_float32(y_true)
        return ops.mean(ops.sqrt(difference * difference + self.epsilon ** 2), axis=(1, 2, 3))

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="losslab")
class PSNRLoss(Loss):
    """The negative PSNR of each image: minimising it maximises the mean per-image PSNR.

    Formula (per image; MSE over its H, W, C):
        loss = 10 · log10((MSE + ε) / max_val²)  = −PSNR(y_true, y_pred) for ε → 0

    Denoising benchmarks report the mean of per-image PSNRs, a mean of logarithms; MSE over
    the batch is not its optimum. The gradient of image i is (10 / ln 10) · ∇MSE_i / MSE_i:
    every image's error counts relative to its own size, so an image that is nearly clean
    already (a plain garment on a black background) is still worth improving, where MSE lets
    the noisiest images dominate. ε keeps a perfect copy finite.

    Args:
        max_val: the images' value range L (1 for [0, 1]). Defaults to `1.0`.
        epsilon: ε > 0 added to each image's MSE. Defaults to `1e-8` (BasicSR's).
        reduction: Keras loss reduction over the batch. Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"psnr_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to. Defaults to `None`.

    Reference: Chen, Lu, Zhang, Chu, Chen, "HINet: Half Instance Normalization Network for
    Image Restoration", CVPR Workshops 2021 (its PSNR loss; BasicSR's `PSNRLoss`).
    """

    def __init__(self, max_val=1.0, epsilon=1e-8, reduction="sum_over_batch_size",
                 name="psnr_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.max_val = check_positive("max_val", max_val)
        self.epsilon = check_positive("epsilon", epsilon)

    def call(self, y_true, y_pred):
        _check_images(y_true, y_pred)
        difference = as_float32(y_pred) - as_float32(y_true)
        error = ops.mean(difference * difference, axis=(1, 2, 3)) + self.epsilon
        return 10.0 * ops.log(error / self.max_val ** 2) / math.log(10.0)

    def get_config(self):
        return {**super().get_config(), "max_val": self.max_val, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="losslab")
class MixLoss(Loss):
    """Zhao et al.'s mix of MS-SSIM and L1 for image restoration, per image.

    Formula:
        loss = α · (1 − MS-SSIM(y_true, y_pred)) + (1 − α) · mean |y_pred − y_true|

    The paper weights the L1 term by the Gaussian of the last MS-SSIM scale; this uses the
    plain mean (the paper reports the two within noise of each other), so the L1 term is
    Keras's MeanAbsoluteError per image.

    Args:
        alpha: α in [0, 1]. Defaults to `0.84` (the paper's).
        max_val, power_factors, filter_size, filter_sigma, k1, k2: As `MSSSIMLoss`.
        reduction: Keras loss reduction over the batch. Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"mix_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to. Defaults to `None`.

    Reference: Zhao et al., "Loss Functions for Image Restoration with Neural Networks",
    IEEE TCI 2017.
    """

    def __init__(self, alpha=0.84, max_val=1.0, power_factors=MS_SSIM_WEIGHTS, filter_size=11,
                 filter_sigma=1.5, k1=0.01, k2=0.03, reduction="sum_over_batch_size",
                 name="mix_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = check_in_range("alpha", alpha, 0.0, 1.0, closed="both")
        (self.filter_size, self.filter_sigma, self.k1, self.k2,
         self.max_val) = _check_window(filter_size, filter_sigma, k1, k2, max_val)
        self.power_factors = _check_power_factors(power_factors)

    def call(self, y_true, y_pred):
        structural = 1.0 - ms_ssim(y_true, y_pred, self.max_val, self.power_factors,
                                   self.filter_size, self.filter_sigma, self.k1, self.k2)
        absolute = ops.mean(ops.abs(as_float32(y_pred) - as_float32(y_true)), axis=(1, 2, 3))
        return self.alpha * structural + (1.0 - self.alpha) * absolute

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "max_val": self.max_val,
                "power_factors": list(self.power_factors), "filter_size": self.filter_size,
                "filter_sigma": self.filter_sigma, "k1": self.k1, "k2": self.k2}
