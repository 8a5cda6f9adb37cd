"""Margin softmax losses: CosFace, ArcFace (additive), L-Softmax, SphereFace (multiplicative).

All four are softmax cross-entropy on logits in which the target class gets a margin, and
all take `y_true` as integer labels (B,) / (B, 1) or one-hot (B, C). What `y_pred` is depends
on the head (losses/heads.py):

| loss                   | head           | reads from y_pred                          |
|------------------------|----------------|--------------------------------------------|
| CosFaceLoss            | "cosine"       | cos θ (B, C), or the "cos" entry of a dict |
| ArcFaceLoss            | "cosine"       | cos θ (B, C), or the "cos" entry of a dict |
| LargeMarginSoftmaxLoss | "large_margin" | "cos", "norm" = ‖W_j‖‖x‖ (+ "step")        |
| SphereFaceLoss         | "sphere"       | "cos", "x_norm" = ‖x‖ (+ "step")           |

The one line a user writes (the head keeps the class weights; the loss is stateless):

    model = losses.heads.make_model(inputs, losses.build_head("cosine", 10)(embedding))
    model.compile(optimizer="adam", loss=ArcFaceLoss(), metrics=["accuracy"])
    model.fit(x, integer_labels)

`make_model` gives a plain `keras.Model` for the cosine head and a `HeadModel` for the dict
heads of L-Softmax and SphereFace (losses/head_model.py explains the mechanism).

λ annealing (L-Softmax, SphereFace). Both papers train with the target logit
`(λ·‖x‖‖W_y‖cos θ_y + ‖x‖‖W_y‖ψ(θ_y)) / (1 + λ)`, with λ decaying over training steps as
`λ = max(λ_min, base·(1 + γ·step)^-power)`; at large λ it is plain softmax, which lets the
multiplicative margin train at all. A `Loss` has no state that `fit` updates, so the step
counter is a saved non-trainable variable of the head ("step" output, advanced once per
training batch) and the schedule's constants are arguments of the loss. `lambda_gamma=0`
gives a fixed λ = max(lambda_min, lambda_base), and then no "step" is read.
"""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops

from losses.base import (as_float32, check_bool, check_in_range, check_non_negative,
                         check_positive, check_positive_int, check_rank, class_inputs,
                         softmax_cross_entropy)
from losses.head_model import HeadOutputLoss
from losses.registry import LossRecipe, register_recipe

# --------------------------------------------------------------------------- shared pieces

def _prepare(y_true, cos):
    """-> (float32 cos (B, C), float32 one-hot labels (B, C))."""
    _, cos, one_hot, _ = class_inputs(y_true, cos, "cos θ (y_pred)")
    return cos, one_hot


class _CosineLoss(HeadOutputLoss):
    """Reads cos θ: the output of a "cosine" head, or the "cos" entry of a head's dict."""

    head_keys = ("cos",)
    tensor_key = "cos"
    head_hint = "a 'cosine' head"


# --------------------------------------------------------------------------- CosFace


def cosface_loss(y_true, y_pred, margin=0.35, scale=30.0):
    """Additive cosine margin softmax loss (CosFace / AM-Softmax) per sample.

    Formula:
        logit_j = s·(cos θ_j - m·[j = y])
        loss = -log softmax(logit)_y

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: cos θ (B, C) from the "cosine" head.
        margin: Additive cosine margin m >= 0. Defaults to `0.35`.
        scale: Scale s > 0. Defaults to `30.0`.

    Returns:
        float32 tensor (B,).
    """
    cos, one_hot = _prepare(y_true, y_pred)
    return softmax_cross_entropy(one_hot, scale * (cos - margin * one_hot))


@keras.saving.register_keras_serializable(package="losslab")
class CosFaceLoss(_CosineLoss):
    """Additive cosine margin softmax (CosFace / AM-Softmax).

    Formula:
        loss = -log(e^{s(cos θ_y - m)} / (e^{s(cos θ_y - m)} + Σ_{j≠y} e^{s cos θ_j}))

    Expects `y_pred` = cos θ (B, C) from the "cosine" head (`losses.heads.CosineHead`), or a
    head-output dict with a "cos" entry; `y_true` = integer or one-hot labels.
    `margin=0` is softmax cross-entropy on s·cos θ (NormFace).

        model.compile(loss=CosFaceLoss(), metrics=["accuracy"]); model.fit(x, y)

    Args:
        margin: Additive cosine margin m >= 0. Defaults to `0.35`.
        scale: Scale s > 0 of the normalised logits. Defaults to `30.0`.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Loss name. Defaults to `"cosface_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition",
        CVPR 2018; Wang et al., "Additive Margin Softmax for Face Verification", 2018.
    """

    def __init__(self, margin=0.35, scale=30.0, reduction="sum_over_batch_size",
                 name="cosface_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_non_negative("margin", margin)
        self.scale = check_positive("scale", scale)

    def call(self, y_true, y_pred):
        (cos,) = self.head_values(y_pred)
        return cosface_loss(y_true, cos, self.margin, self.scale)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "scale": self.scale}


# --------------------------------------------------------------------------- ArcFace


def arcface_target(cos, margin=0.5, easy_margin=False):
    """The ArcFace target cosine: cos(θ + m), kept monotone in θ when θ + m > π.

    Formula:
        sin θ = sqrt(clip(1 - cos² θ, 1e-7, 1))
        φ = cos θ·cos m - sin θ·sin m                        (= cos(θ + m))
        φ = φ if cos θ > cos(π - m) else cos θ - m·sin m     (easy_margin=False)
        φ = φ if cos θ > 0 else cos θ                        (easy_margin=True)

    The fallback is insightface's (recognition/arcface_torch/losses.py: `th = cos(π - m)`,
    `sinmm = sin(π - m)·m`, and sin(π - m) = sin m). Past θ = π - m, cos(θ + m) would rise
    again; the fallback keeps decreasing instead, stepping down at θ = π - m from -1 to
    -(cos m + m·sin m) <= -1, so the target stays monotone in θ. The clipped sin θ keeps
    the gradient finite at cos θ = ±1.
    """
    cos = ops.clip(as_float32(cos), -1.0, 1.0)
    sin = ops.sqrt(ops.clip(1.0 - ops.square(cos), 1e-7, 1.0))
    phi = cos * math.cos(margin) - sin * math.sin(margin)
    if easy_margin:
        return ops.where(cos > 0.0, phi, cos)
    threshold, fallback = math.cos(math.pi - margin), math.sin(math.pi - margin) * margin
    return ops.where(cos > threshold, phi, cos - fallback)


def arcface_loss(y_true, y_pred, margin=0.5, scale=30.0, easy_margin=False):
    """Additive angular margin softmax loss (ArcFace) per sample.

    Formula:
        logit_j = s·cos θ_j for j ≠ y,   logit_y = s·φ(θ_y) ≈ s·cos(θ_y + m)
        loss = -log softmax(logit)_y                        (φ: see `arcface_target`)

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: cos θ (B, C) from the "cosine" head.
        margin: Additive angular margin m in [0, π/2] (radians). Defaults to `0.5`.
        scale: Scale s > 0. Defaults to `30.0`.
        easy_margin: Apply the margin only where cos θ_y > 0. Defaults to `False`.

    Returns:
        float32 tensor (B,).
    """
    cos, one_hot = _prepare(y_true, y_pred)
    cos_y = ops.sum(one_hot * cos, axis=-1, keepdims=True)
    target = arcface_target(cos_y, margin, easy_margin)
    return softmax_cross_entropy(one_hot, scale * (cos + one_hot * (target - cos_y)))


@keras.saving.register_keras_serializable(package="losslab")
class ArcFaceLoss(_CosineLoss):
    """Additive angular margin softmax (ArcFace).

    Formula:
        loss = -log(e^{s·cos(θ_y + m)} / (e^{s·cos(θ_y + m)} + Σ_{j≠y} e^{s·cos θ_j}))

    with cos(θ_y + m) replaced by cos θ_y - m·sin m where θ_y + m > π (so the target logit
    keeps decreasing in θ_y; insightface's fallback). Expects `y_pred` = cos θ (B, C) from
    the "cosine" head, or a head-output dict with a "cos" entry; `y_true` = integer or
    one-hot labels. `margin=0` is softmax cross-entropy on s·cos θ.

        model.compile(loss=ArcFaceLoss(), metrics=["accuracy"]); model.fit(x, y)

    The scale defaults to 30, not the paper's 64: s only has to exceed about
    ((C-1)/C)·log((C-1)·P/(1-P)) for the softmax to reach probability P (Wang et al.,
    NormFace, 2017) — about 6 for C = 10, P = 0.99, but 13+ for the paper's 85k identities.
    With 10 classes s = 64 saturates the softmax early, so well-separated samples stop
    giving gradient while the embedding is still poor (30 is also what arcface-pytorch uses
    with LeNet on MNIST).

    Args:
        margin: Additive angular margin m in [0, π/2] (radians). Defaults to `0.5`.
        scale: Scale s > 0 of the normalised logits. Defaults to `30.0`.
        easy_margin: Apply the margin only where cos θ_y > 0 (and no fallback).
            Defaults to `False`.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Loss name. Defaults to `"arcface_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
        CVPR 2019; fallback from deepinsight/insightface recognition/arcface_torch/losses.py.
    """

    def __init__(self, margin=0.5, scale=30.0, easy_margin=False,
                 reduction="sum_over_batch_size", name="arcface_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_in_range("margin", margin, 0, math.pi / 2, closed="both",
                                     interval="[0, π/2] radians")
        self.scale = check_positive("scale", scale)
        self.easy_margin = check_bool("easy_margin", easy_margin)

    def call(self, y_true, y_pred):
        (cos,) = self.head_values(y_pred)
        return arcface_loss(y_true, cos, self.margin, self.scale, self.easy_margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "scale": self.scale,
                "easy_margin": self.easy_margin}


# --------------------------------------------------------------------------- L-Softmax, SphereFace


def large_margin_psi(cos, margin):
    """ψ(θ) of L-Softmax / A-Softmax, from cos θ, for an integer margin m.

    Formula:
        ψ(θ) = (-1)^k·cos(mθ) - 2k    for θ in [kπ/m, (k+1)π/m], k = 0 .. m-1

    cos(mθ) is the Chebyshev polynomial T_m(cos θ) (T_0 = 1, T_1 = c, T_{n+1} = 2c·T_n - T_{n-1}),
    so value and gradient are finite at cos θ = ±1; k counts the thresholds cos(iπ/m) that
    cos θ has passed and carries no gradient. ψ is continuous and decreasing on [0, π], from
    1 to 1 - 2m; m = 1 gives ψ = cos θ.

    Args:
        cos: cos θ, any shape; clipped to [-1, 1].
        margin: The integer margin m >= 1.
    """
    m = check_positive_int("margin", margin)
    cos = ops.clip(as_float32(cos), -1.0, 1.0)
    previous, chebyshev = ops.ones_like(cos), cos
    for _ in range(m - 1):
        previous, chebyshev = chebyshev, 2.0 * cos * chebyshev - previous
    k = ops.zeros_like(cos)
    for i in range(1, m):
        k = k + ops.cast(cos <= math.cos(i * math.pi / m), "float32")
    k = ops.stop_gradient(k)
    sign = 1.0 - 2.0 * ops.mod(k, 2.0)
    return sign * chebyshev - 2.0 * k


def annealed_lambda(step, base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0):
    """λ = max(λ_min, base·(1 + γ·step)^-power), the L-Softmax/SphereFace annealing schedule."""
    step = as_float32(step)
    return ops.maximum(lambda_min, base * ops.power(1.0 + gamma * step, -power))


def _large_margin_logits(cos, norm, one_hot, margin, lam):
    """Logits norm_j·cos θ_j with the target replaced by (λ·n_y cos θ_y + n_y ψ(θ_y))/(1 + λ)."""
    cos = ops.clip(cos, -1.0, 1.0)
    cos_y = ops.sum(one_hot * cos, axis=-1, keepdims=True)
    norm_y = ops.sum(one_hot * norm, axis=-1, keepdims=True)
    target = norm_y * (lam * cos_y + large_margin_psi(cos_y, margin)) / (1.0 + lam)
    return norm * cos + one_hot * (target - norm_y * cos_y)


def _lambda_column(lam):
    """λ as a Python float, or a per-sample (B,) tensor as a float32 (B, 1) column."""
    if isinstance(lam, numbers.Real):
        return check_non_negative("lam", lam)
    return ops.reshape(as_float32(lam), (-1, 1))


def large_margin_softmax_loss(y_true, cos, norm, margin=4, lam=0.0):
    """Large-margin softmax loss (L-Softmax) per sample.

    Formula:
        f_j = ‖W_j‖‖x‖·cos θ_j                                  (j ≠ y)
        f_y = (λ·‖W_y‖‖x‖·cos θ_y + ‖W_y‖‖x‖·ψ(θ_y)) / (1 + λ)    (ψ: `large_margin_psi`)
        loss = -log softmax(f)_y

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        cos: cos θ_j (B, C) ("cos" of the "large_margin" head).
        norm: ‖W_j‖‖x‖ (B, C) ("norm" of the "large_margin" head).
        margin: Integer margin m >= 1; m = 1 is softmax cross-entropy. Defaults to `4`.
        lam: λ >= 0, a number or a (B,) tensor. Defaults to `0.0`.

    Returns:
        float32 tensor (B,).
    """
    m = check_positive_int("margin", margin)
    cos, one_hot = _prepare(y_true, cos)
    check_rank(norm, 2, "norm ‖W_j‖‖x‖", "(batch, num_classes) like cos θ")
    norm = as_float32(norm)
    logits = _large_margin_logits(cos, norm, one_hot, m, _lambda_column(lam))
    return softmax_cross_entropy(one_hot, logits)


def sphereface_loss(y_true, cos, x_norm, margin=4, lam=0.0):
    """Angular softmax loss (A-Softmax, SphereFace) per sample.

    Formula:
        f_j = ‖x‖·cos θ_j                            (j ≠ y; ‖W_j‖ = 1)
        f_y = ‖x‖·(λ·cos θ_y + ψ(θ_y)) / (1 + λ)      (ψ: `large_margin_psi`)
        loss = -log softmax(f)_y

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        cos: cos θ_j (B, C) ("cos" of the "sphere" head).
        x_norm: ‖x‖ (B,) or (B, 1) ("x_norm" of the "sphere" head).
        margin: Integer margin m >= 1. Defaults to `4`.
        lam: λ >= 0, a number or a (B,) tensor. Defaults to `0.0`.

    Returns:
        float32 tensor (B,).
    """
    m = check_positive_int("margin", margin)
    cos, one_hot = _prepare(y_true, cos)
    check_rank(x_norm, (1, 2), "x_norm ‖x‖", "(batch,) or (batch, 1)")
    x_norm = ops.reshape(as_float32(x_norm), (-1, 1))
    logits = _large_margin_logits(cos, x_norm, one_hot, m, _lambda_column(lam))
    return softmax_cross_entropy(one_hot, logits)


class _AnnealedMarginLoss(HeadOutputLoss):
    """Shared constructor, λ schedule and config of L-Softmax and SphereFace."""

    norm_key = None  # "norm" or "x_norm"

    def __init__(self, margin, lambda_base, lambda_gamma, lambda_power, lambda_min, reduction,
                 name, dtype):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_positive_int("margin", margin)
        self.lambda_base = check_non_negative("lambda_base", lambda_base)
        self.lambda_gamma = check_non_negative("lambda_gamma", lambda_gamma)
        self.lambda_power = check_non_negative("lambda_power", lambda_power)
        self.lambda_min = check_non_negative("lambda_min", lambda_min)

    @property
    def head_keys(self):
        return ("cos", self.norm_key) + (("step",) if self.lambda_gamma > 0 else ())

    def _inputs(self, y_pred):
        """-> (cos, norm, λ) from the head-output dict."""
        values = self.head_values(y_pred)
        if self.lambda_gamma > 0:
            lam = annealed_lambda(values[2], self.lambda_base, self.lambda_gamma,
                                  self.lambda_power, self.lambda_min)
        else:
            lam = max(self.lambda_min, self.lambda_base)
        return values[0], values[1], lam

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "lambda_base": self.lambda_base,
                "lambda_gamma": self.lambda_gamma, "lambda_power": self.lambda_power,
                "lambda_min": self.lambda_min}


@keras.saving.register_keras_serializable(package="losslab")
class LargeMarginSoftmaxLoss(_AnnealedMarginLoss):
    """Large-margin softmax (L-Softmax): a multiplicative angular margin on plain logits.

    Formula:
        f_j = ‖W_j‖‖x‖ cos θ_j  (j ≠ y),   f_y = (λ‖W_y‖‖x‖ cos θ_y + ‖W_y‖‖x‖ ψ(θ_y)) / (1 + λ)
        ψ(θ) = (-1)^k cos(mθ) - 2k  for θ in [kπ/m, (k+1)π/m]
        λ = max(λ_min, base·(1 + γ·step)^-power)
        loss = -log softmax(f)_y

    Reads "cos", "norm" (and "step" when γ > 0) from the "large_margin" head
    (`losses.heads.LargeMarginHead`), whose "scores" are the plain logits W_j·x used at test
    time; `y_true` = integer or one-hot labels. `margin=1` is softmax cross-entropy.

        model = losses.heads.make_model(inputs, losses.build_head("large_margin", 10)(emb))
        model.compile(loss=LargeMarginSoftmaxLoss(), metrics=["accuracy"]); model.fit(x, y)

    The λ defaults are the schedule of the authors' MNIST model (base 1000, γ 2.5e-5,
    power 35, λ_min 0: nearly plain softmax for the first thousands of steps). The step
    counter lives in the head (see the module docstring); `lambda_gamma=0` fixes
    λ = max(lambda_min, lambda_base), e.g. `lambda_base=0` for the bare margin.

    Args:
        margin: Integer margin m >= 1. Defaults to `4`.
        lambda_base: Schedule base. Defaults to `1000.0`.
        lambda_gamma: Schedule γ >= 0; 0 = fixed λ. Defaults to `2.5e-5`.
        lambda_power: Schedule power. Defaults to `35.0`.
        lambda_min: Floor of λ. Defaults to `0.0`.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Loss name. Defaults to `"large_margin_softmax_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Liu, Wen, Yu, Yang, "Large-Margin Softmax Loss for Convolutional Neural Networks",
        ICML 2016 (schedule: github.com/wy1iu/LargeMargin_Softmax_Loss).
    """

    norm_key = "norm"
    head_hint = "a 'large_margin' head"

    def __init__(self, margin=4, lambda_base=1000.0, lambda_gamma=2.5e-5, lambda_power=35.0,
                 lambda_min=0.0, reduction="sum_over_batch_size",
                 name="large_margin_softmax_loss", dtype=None):
        super().__init__(margin, lambda_base, lambda_gamma, lambda_power, lambda_min,
                         reduction, name, dtype)

    def call(self, y_true, y_pred):
        cos, norm, lam = self._inputs(y_pred)
        return large_margin_softmax_loss(y_true, cos, norm, self.margin, lam)


@keras.saving.register_keras_serializable(package="losslab")
class SphereFaceLoss(_AnnealedMarginLoss):
    """Angular softmax (A-Softmax, SphereFace): L-Softmax with normalised class weights.

    Formula:
        f_j = ‖x‖ cos θ_j  (j ≠ y),   f_y = ‖x‖ (λ cos θ_y + ψ(θ_y)) / (1 + λ)
        ψ(θ) = (-1)^k cos(mθ) - 2k  for θ in [kπ/m, (k+1)π/m]
        λ = max(λ_min, base·(1 + γ·step)^-power)
        loss = -log softmax(f)_y

    Reads "cos", "x_norm" (and "step" when γ > 0) from the "sphere" head
    (`losses.heads.SphereHead`), whose "scores" are cos θ; `y_true` = integer or one-hot
    labels.

        model = losses.heads.make_model(inputs, losses.build_head("sphere", 10)(emb))
        model.compile(loss=SphereFaceLoss(), metrics=["accuracy"]); model.fit(x, y)

    The λ defaults are those of the authors' released training prototxt (base 1000, γ 0.12,
    power 1, λ_min 5: λ reaches 5 after about 1,700 steps). The step counter lives in the
    head (see the module docstring); `lambda_gamma=0` fixes λ = max(lambda_min, lambda_base).

    Args:
        margin: Integer margin m >= 1. Defaults to `4`.
        lambda_base: Schedule base. Defaults to `1000.0`.
        lambda_gamma: Schedule γ >= 0; 0 = fixed λ. Defaults to `0.12`.
        lambda_power: Schedule power. Defaults to `1.0`.
        lambda_min: Floor of λ. Defaults to `5.0`.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Loss name. Defaults to `"sphereface_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition", CVPR 2017
        (schedule: github.com/wy1iu/sphereface).
    """

    norm_key = "x_norm"
    head_hint = "a 'sphere' head"

    def __init__(self, margin=4, lambda_base=1000.0, lambda_gamma=0.12, lambda_power=1.0,
                 lambda_min=5.0, reduction="sum_over_batch_size", name="sphereface_loss",
                 dtype=None):
        super().__init__(margin, lambda_base, lambda_gamma, lambda_power, lambda_min,
                         reduction, name, dtype)

    def call(self, y_true, y_pred):
        cos, x_norm, lam = self._inputs(y_pred)
        return sphereface_loss(y_true, cos, x_norm, self.margin, lam)


# --------------------------------------------------------------------------- recipes

register_recipe(LossRecipe(
    name="cosface", head="cosine", build_loss=lambda num_classes: CosFaceLoss(),
    summary="CosFace / AM-Softmax: s(cos θ_y - m), m=0.35, s=30, on a cosine head"))
register_recipe(LossRecipe(
    name="arcface", head="cosine", build_loss=lambda num_classes: ArcFaceLoss(),
    summary="ArcFace: s·cos(θ_y + m), m=0.5, s=30, on a cosine head"))
register_recipe(LossRecipe(
    name="lsoftmax", head="large_margin", build_loss=lambda num_classes: LargeMarginSoftmaxLoss(),
    summary="L-Softmax: ‖W‖‖x‖ψ(θ_y), m=4, λ annealed from 1000 (MNIST schedule)"))
register_recipe(LossRecipe(
    name="sphereface", head="sphere", build_loss=lambda num_classes: SphereFaceLoss(),
    summary="SphereFace / A-Softmax: ‖x‖ψ(θ_y), m=4, normalised W, λ annealed 1000 -> 5"))
