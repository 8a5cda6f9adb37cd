"""Proxy-based metric losses: ProxyNCA, Proxy-Anchor, Normalized Softmax, Sub-center ArcFace,
SoftTriple, and the margin loss of "Sampling Matters".

A proxy is a learned vector that stands for a class; a loss compares each embedding with
the proxies instead of (or besides) the other embeddings of the batch. Proxies are learned,
so they live in the model as a head (losses/heads.py; a Keras `Loss` is stateless): the
"cosine" head's normalised class weights are one proxy per class (its output cos θ_j is the
cosine between the normalised embedding and proxy j), the "subcenter_cosine" head holds K
normalised centers per class, and the "margin_beta" head holds the margin loss's learned
boundary β.

| loss                  | head               | reads                                      |
|-----------------------|--------------------|--------------------------------------------|
| ProxyNCALoss          | "cosine"           | cos θ (B, C), or the "cos" entry of a dict |
| ProxyAnchorLoss       | "cosine"           | cos θ (B, C), or the "cos" entry of a dict |
| NormalizedSoftmaxLoss | "cosine"           | cos θ (B, C), or the "cos" entry of a dict |
| SubCenterArcFaceLoss  | "subcenter_cosine" | "center_cos" cos θ_jk (B, C, K)            |
| SoftTripleLoss        | "subcenter_cosine" | "center_cos" (+ "center_regularizer")      |
| MarginLoss            | "margin_beta"      | "embedding" (B, D), "beta" (B, C)          |

Formulas (x̂ the normalised embedding, p̂_j the normalised proxy, cos_j = x̂·p̂_j):

- ProxyNCA (Movshovitz-Attias et al., "No Fuss Distance Metric Learning using Proxies",
  ICCV 2017), as pytorch-metric-learning's `ProxyNCALoss`:
      d_j = ‖x̂ - p̂_j‖² = 2 - 2 cos_j
      loss = -log( e^{-s·d_y} / Σ_{j} e^{-s·d_j} )             (positive_in_denominator)
      loss = -log( e^{-s·d_y} / Σ_{j≠y} e^{-s·d_j} )           (the paper's NCA, Eq. 9)
  The default keeps the positive proxy in the denominator (PML's form, a bounded softmax
  cross-entropy: it equals cross-entropy on 2s·cos, since the constant -2s cancels).
- Proxy-Anchor (Kim, Kim, Cho, Kwak, "Proxy Anchor Loss for Deep Metric Learning",
  CVPR 2020, Eq. 4), a loss of the whole batch:
      L = (1/|P⁺|) Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} e^{-α(s(x,p) - δ)})
        + (1/|P|)  Σ_{p∈P}  log(1 + Σ_{x∈X_p⁻} e^{ α(s(x,p) + δ)})
  P all proxies, P⁺ those with a positive in the batch, X_p⁺ / X_p⁻ the batch's samples of
  / not of p's class, s = cos; α = 32, δ = 0.1.
- Normalized Softmax (Zhai & Wu, "Classification is a Strong Baseline for Deep Metric
  Learning", BMVC 2019): loss = -log softmax(cos / T)_y, T = 0.05. It is CosFace with
  margin 0 and scale 1/T, and is computed by `losses.margin.cosface_loss`.
- Sub-center ArcFace (Deng et al., "Sub-center ArcFace: Boosting Face Recognition by
  Large-Scale Noisy Web Faces", ECCV 2020): ArcFace (`losses.margin.arcface_loss`) on
  cos θ_j = max_k cos θ_jk, the nearest of the K centers of each class.
- SoftTriple (Qian et al., "SoftTriple Loss: Deep Metric Learning Without Triplet
  Sampling", ICCV 2019, Eq. 10-13):
      S'_{i,c} = Σ_k softmax_k(x̂ᵀŵ_c^k / γ) · x̂ᵀŵ_c^k
      loss_i = -log( e^{λ(S'_{i,y} - δ)} / (e^{λ(S'_{i,y} - δ)} + Σ_{j≠y} e^{λ S'_{i,j}}) )
               + τ·R,   R = Σ_c Σ_{t<s} sqrt(2 + 1e-5 - 2 ŵ_c^tᵀŵ_c^s) / (C·K·(K-1))
  λ = 20, γ = 0.1, δ = 0.01, τ = 0.2, K = 10 (pytorch-metric-learning's and the authors'
  defaults). R depends on the centers only; the head computes it ("center_regularizer",
  the same value on every row) and the loss adds τ·R to every sample, so the batch mean is
  the paper's mean + τR and the gradient reaches the centers through it.
- Margin loss (Wu, Manmatha, Smola, Krähenbühl, "Sampling Matters in Deep Embedding
  Learning", ICCV 2017, Eq. 4-5), over ordered pairs (i, j), i ≠ j, of the batch:
      D_ij = ‖x̂_i - x̂_j‖,  y_ij = +1 same class, -1 otherwise
      ℓ_ij = (α + y_ij (D_ij - β_{c(i)}))₊ + ν β_{c(i)}
  α = 0.2, β learned per class (the "margin_beta" head, initial 1.2), ν = 0 (as the authors'
  code; the paper's regulariser ν·β is kept as an argument).

Batch-level losses and Keras's per-sample reduction. Keras's losses give one value per
sample, then average them ("sum_over_batch_size") with `sample_weight`:

- ProxyNCA, Normalized Softmax, Sub-center ArcFace and SoftTriple are per-sample losses:
  `sample_weight` weights samples as for any classification loss.
- Proxy-Anchor is a function of the whole batch (the log of a sum over the samples of each
  proxy does not split into samples). Every sample carries the whole batch value L, so the
  plain batch mean is exactly L (and its gradient is L's); `sample_weight` then scales L by
  the mean weight, and a zero weight does NOT remove a sample from the proxies' sums.
- The margin loss follows `losses.metric`'s anchor convention: sample i carries the pairs
  it anchors, rescaled so that the batch mean is Σ_pairs ℓ_ij / N, where N is the number of
  pairs with a non-zero hinge (at least 1), as the authors' code (and PML's
  `AvgNonZeroReducer`) average. It uses every positive and every negative pair of the
  batch, not the paper's distance-weighted sampling (a miner that draws random negatives;
  a batch of all pairs is its expectation up to the weights): use P×K batches. An anchor
  with no pair (a batch of one sample) gives 0.

Everything is computed in float32 with log-sum-exp (or log-softmax), so the large scales
(α = 32, λ/γ, s) stay finite under float16 / bfloat16 mixed precision. Labels are checked
with `losses.base.class_inputs` against the number of classes of the head (out-of-range
labels raise eagerly and give NaN under XLA). A non-finite input makes the batch losses
(Proxy-Anchor, margin loss) NaN instead of being masked around.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from losses import mining as _mining
from losses.base import (as_float32, check_bool, check_choice, check_in_range,
                         check_non_negative, check_positive, check_rank, class_inputs,
                         softmax_cross_entropy)
from losses.distances import l2_normalize, pairwise_distances
from losses.head_model import HeadOutputLoss
from losses.margin import _CosineLoss, arcface_loss, cosface_loss
from losses.metric import (DISTANCE_WEIGHTED, JointLoss, _check_cutoffs, _distance_weights,
                           _nan_unless_finite)
from losses.pair_based import _MASKED
from losses.registry import LossRecipe, register_recipe

MARGIN_MINING = ("all", DISTANCE_WEIGHTED)

_SUBCENTER_HEAD = "a 'subcenter_cosine' head (losses.heads.SubCenterCosineHead)"
_BETA_HEAD = "a 'margin_beta' head (losses.heads.MarginBetaHead)"


def _log1p_sum_exp(values, mask, axis):
    """log(1 + Σ_{mask} exp(values)) along `axis`, by log-sum-exp with a 0 entry."""
    masked = ops.where(mask, values, _MASKED)
    zero = ops.zeros_like(ops.sum(masked, axis=axis, keepdims=True))
    return ops.logsumexp(ops.concatenate([zero, masked], axis=axis), axis=axis)


def _center_cos(center_cos):
    """float32 cos θ_jk (B, C, K) with known C and K, or a ValueError."""
    shape = check_rank(center_cos, 3, "center_cos (cos θ_jk)", "(batch, num_classes, centers)")
    if shape[1] is None or shape[2] is None:
        raise ValueError(f"center_cos must have a known number of classes and centers, got "
                         f"shape {shape}")
    return as_float32(center_cos)


# --------------------------------------------------------------------------- ProxyNCA


def proxy_nca_loss(y_true, y_pred, scale=1.0, positive_in_denominator=True):
    """ProxyNCA loss per sample, from cos θ_j between the embedding and the proxies.

    Formula:
        logit_j = -s·‖x̂ - p̂_j‖² = -s·(2 - 2 cos θ_j)
        loss = -log softmax(logit)_y                              (positive_in_denominator)
        loss = -logit_y + log Σ_{j≠y} e^{logit_j}                 (otherwise; the paper's NCA)

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: cos θ (B, C) from the "cosine" head.
        scale: s > 0, the softmax scale (1 / temperature). Defaults to `1.0`.
        positive_in_denominator: keep the positive proxy in the denominator (PML) or not
            (the paper; needs C >= 2, and the loss can be negative). Defaults to `True`.

    Returns:
        float32 tensor (B,).
    """
    _, cos, one_hot, num_classes = class_inputs(y_true, y_pred, "cos θ (y_pred)")
    logits = -scale * (2.0 - 2.0 * cos)
    if positive_in_denominator:
        return softmax_cross_entropy(one_hot, logits)
    if num_classes < 2:
        raise ValueError("ProxyNCA without the positive in the denominator needs at least 2 "
                         f"classes, got {num_classes}")
    negatives = ops.logsumexp(ops.where(one_hot > 0.5, _MASKED, logits), axis=-1)
    return negatives - ops.sum(one_hot * logits, axis=-1)


@keras.saving.register_keras_serializable(package="losslab")
class ProxyNCALoss(_CosineLoss):
    """ProxyNCA (Movshovitz-Attias et al., ICCV 2017): NCA against one proxy per class.

    Formula:
        loss = -log( e^{-s‖x̂ - p̂_y‖²} / Σ_j e^{-s‖x̂ - p̂_j‖²} ),   ‖x̂ - p̂_j‖² = 2 - 2 cos θ_j

    The proxies are the "cosine" head's class weights (`losses.heads.CosineHead`), so
    `y_pred` = cos θ (B, C) (or a head dict with "cos"); `y_true` = integer or one-hot
    labels. The default is pytorch-metric-learning's form, with the positive proxy in the
    denominator (cross-entropy on 2s·cos θ); `positive_in_denominator=False` gives the
    paper's NCA, whose denominator holds the other proxies only.

        model.compile(loss=ProxyNCALoss(scale=9.0), metrics=["accuracy"]); model.fit(x, y)

    Args:
        scale: s > 0. Defaults to `1.0` (PML's `softmax_scale`; logits then span only
            [-4, 0], and ProxyNCA++ (Teh et al., ECCV 2020) finds a temperature of 1/9,
            s = 9, much better).
        positive_in_denominator: see above. Defaults to `True`.
        reduction, name, dtype: as Keras's losses.

    Reference: Movshovitz-Attias, Toshev, Leung, Ioffe, Singh, "No Fuss Distance Metric
    Learning using Proxies", ICCV 2017; pytorch-metric-learning `ProxyNCALoss`.
    """

    def __init__(self, scale=1.0, positive_in_denominator=True, reduction="sum_over_batch_size",
                 name="proxy_nca_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.scale = check_positive("scale", scale)
        self.positive_in_denominator = check_bool("positive_in_denominator",
                                                  positive_in_denominator)

    def call(self, y_true, y_pred):
        (cos,) = self.head_values(y_pred)
        return proxy_nca_loss(y_true, cos, self.scale, self.positive_in_denominator)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale,
                "positive_in_denominator": self.positive_in_denominator}


# --------------------------------------------------------------------------- Proxy-Anchor


def proxy_anchor_loss(y_true, y_pred, alpha=32.0, delta=0.1):
    """Proxy-Anchor loss of the batch, given to every sample.

    Formula (Kim et al., CVPR 2020, Eq. 4; s(x, p) = cos θ_p):
        L = (1/|P⁺|) Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} e^{-α(s(x,p) - δ)})
          + (1/|P|)  Σ_{p∈P}  log(1 + Σ_{x∈X_p⁻} e^{ α(s(x,p) + δ)})
        per_sample_i = L    (so Keras's batch mean is L)

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: cos θ (B, C) from the "cosine" head.
        alpha: α > 0, the scale. Defaults to `32.0`.
        delta: δ >= 0, the margin. Defaults to `0.1`.

    Returns:
        float32 tensor (B,), every entry L.
    """
    _, cos, one_hot, num_classes = class_inputs(y_true, y_pred, "cos θ (y_pred)")
    positive = one_hot > 0.5
    negative = one_hot < 0.5
    positive_terms = _log1p_sum_exp(-alpha * (cos - delta), positive, axis=0)         # (C,)
    negative_terms = _log1p_sum_exp(alpha * (cos + delta), negative, axis=0)          # (C,)
    with_positive = ops.cast(ops.any(positive, axis=0), "float32")
    loss = (ops.sum(with_positive * positive_terms) / ops.maximum(ops.sum(with_positive), 1.0)
            + ops.sum(negative_terms) / float(num_classes))
    per_sample = ops.zeros_like(cos[:, 0]) + loss
    return _nan_unless_finite(per_sample, cos + one_hot)


@keras.saving.register_keras_serializable(package="losslab")
class ProxyAnchorLoss(_CosineLoss):
    """Proxy-Anchor loss (Kim et al., CVPR 2020): each proxy is an anchor for the batch.

    Formula:
        L = (1/|P⁺|) Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} e^{-α(s(x,p) - δ)})
          + (1/|P|)  Σ_{p∈P}  log(1 + Σ_{x∈X_p⁻} e^{ α(s(x,p) + δ)})

    s(x, p) = cos θ_p from the "cosine" head (its class weights are the proxies); P⁺ are
    the proxies of the classes present in the batch. `y_true` = integer or one-hot labels.

    L belongs to the whole batch: every sample's value is L, so the batch mean is the
    paper's L, and `sample_weight` scales L by the mean weight (a zero weight does not take
    the sample out of the proxies' sums). See the module docstring.

    Args:
        alpha: α > 0. Defaults to `32.0` (the paper's).
        delta: δ >= 0. Defaults to `0.1` (the paper's).
        reduction, name, dtype: as Keras's losses.

    Reference: Kim, Kim, Cho, Kwak, "Proxy Anchor Loss for Deep Metric Learning", CVPR 2020.
    """

    def __init__(self, alpha=32.0, delta=0.1, reduction="sum_over_batch_size",
                 name="proxy_anchor_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = check_positive("alpha", alpha)
        self.delta = check_non_negative("delta", delta)

    def call(self, y_true, y_pred):
        (cos,) = self.head_values(y_pred)
        return proxy_anchor_loss(y_true, cos, self.alpha, self.delta)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "delta": self.delta}


# --------------------------------------------------------------------------- Normalized Softmax


def normalized_softmax_loss(y_true, y_pred, temperature=0.05):
    """Normalized softmax loss per sample: -log softmax(cos θ / T)_y (CosFace with m = 0).

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: cos θ (B, C) from the "cosine" head.
        temperature: T > 0. Defaults to `0.05`.

    Returns:
        float32 tensor (B,).
    """
    return cosface_loss(y_true, y_pred, margin=0.0, scale=1.0 / temperature)


@keras.saving.register_keras_serializable(package="losslab")
class NormalizedSoftmaxLoss(_CosineLoss):
    """Normalized softmax (Zhai & Wu, BMVC 2019): cross-entropy on cos θ / T.

    Formula:
        loss = -log( e^{cos θ_y / T} / Σ_j e^{cos θ_j / T} )

    CosFace (`losses.margin.CosFaceLoss`) with margin 0 and scale 1/T (NormFace), and
    computed by it; the class weights of the "cosine" head are the proxies. `y_true` =
    integer or one-hot labels.

    Args:
        temperature: T > 0. Defaults to `0.05` (the paper's).
        reduction, name, dtype: as Keras's losses.

    Reference: Zhai, Wu, "Classification is a Strong Baseline for Deep Metric Learning",
    BMVC 2019.
    """

    def __init__(self, temperature=0.05, reduction="sum_over_batch_size",
                 name="normalized_softmax_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = check_positive("temperature", temperature)

    def call(self, y_true, y_pred):
        (cos,) = self.head_values(y_pred)
        return normalized_softmax_loss(y_true, cos, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


# --------------------------------------------------------------------------- Sub-center ArcFace


def subcenter_arcface_loss(y_true, center_cos, margin=0.5, scale=30.0, easy_margin=False):
    """Sub-center ArcFace loss per sample: ArcFace on the nearest center of each class.

    Formula:
        cos θ_j = max_k cos θ_jk
        loss = -log( e^{s·φ(θ_y)} / (e^{s·φ(θ_y)} + Σ_{j≠y} e^{s·cos θ_j}) )
        (φ ≈ cos(θ + m): `losses.margin.arcface_target`)

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        center_cos: cos θ_jk (B, C, K) ("center_cos" of the "subcenter_cosine" head).
        margin: Additive angular margin m in [0, π/2]. Defaults to `0.5`.
        scale: s > 0. Defaults to `30.0`.
        easy_margin: as `ArcFaceLoss`. Defaults to `False`.

    Returns:
        float32 tensor (B,).
    """
    return arcface_loss(y_true, ops.max(_center_cos(center_cos), axis=-1), margin, scale,
                        easy_margin)


@keras.saving.register_keras_serializable(package="losslab")
class SubCenterArcFaceLoss(HeadOutputLoss):
    """Sub-center ArcFace (Deng et al., ECCV 2020): ArcFace on max_k cos θ_jk.

    Formula:
        cos θ_j = max_k cos θ_jk
        loss = -log( e^{s·cos(θ_y + m)} / (e^{s·cos(θ_y + m)} + Σ_{j≠y} e^{s·cos θ_j}) )

    Each class has K centers (the "subcenter_cosine" head, `losses.heads.SubCenterCosineHead`);
    a sample is pulled toward the nearest center of its class only, so noisy or atypical
    samples gather around a center of their own instead of dragging the dominant one. The
    margin maths (and the fallback past θ + m > π) are `losses.margin.arcface_target`'s.
    The paper's later step — dropping the non-dominant centers and the samples far from the
    dominant one, offline — is not part of the loss. `y_true` = integer or one-hot labels.

    Args:
        margin: Additive angular margin m in [0, π/2] (radians). Defaults to `0.5`.
        scale: s > 0. Defaults to `30.0` (as `ArcFaceLoss`, whose docstring says why not 64).
        easy_margin: Apply the margin only where cos θ_y > 0. Defaults to `False`.
        reduction, name, dtype: as Keras's losses.

    Reference: Deng, Guo, Liu, Zafeiriou, "Sub-center ArcFace: Boosting Face Recognition by
    Large-Scale Noisy Web Faces", ECCV 2020 (K = 3).
    """

    head_keys = ("center_cos",)
    head_hint = _SUBCENTER_HEAD

    def __init__(self, margin=0.5, scale=30.0, easy_margin=False,
                 reduction="sum_over_batch_size", name="subcenter_arcface_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_in_range("margin", margin, 0, math.pi / 2, closed="both",
                                     interval="[0, π/2] radians")
        self.scale = check_positive("scale", scale)
        self.easy_margin = check_bool("easy_margin", easy_margin)

    def call(self, y_true, y_pred):
        (center_cos,) = self.head_values(y_pred)
        return subcenter_arcface_loss(y_true, center_cos, self.margin, self.scale,
                                      self.easy_margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "scale": self.scale,
                "easy_margin": self.easy_margin}


# --------------------------------------------------------------------------- SoftTriple


def soft_triple_loss(y_true, center_cos, center_regularizer=None, lam=20.0, gamma=0.1,
                     delta=0.01, tau=0.2):
    """SoftTriple loss per sample.

    Formula (Qian et al., ICCV 2019, Eq. 10-13):
        S'_{i,c} = Σ_k softmax_k(cos θ_ck / γ) · cos θ_ck
        loss_i = -log softmax(λ(S'_i - δ·[c = y]))_y + τ·R

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        center_cos: cos θ_ck (B, C, K) ("center_cos" of the "subcenter_cosine" head).
        center_regularizer: R (B,) or (B, 1) ("center_regularizer" of the head), or None
            (no regulariser; needs tau = 0 to mean the paper's loss). Defaults to `None`.
        lam: λ > 0, the scale. Defaults to `20.0`.
        gamma: γ > 0, the temperature of the centers' softmax. Defaults to `0.1`.
        delta: δ >= 0, the margin. Defaults to `0.01`.
        tau: τ >= 0, the regulariser's weight. Defaults to `0.2`.

    Returns:
        float32 tensor (B,).
    """
    center_cos = _center_cos(center_cos)
    if center_cos.shape[-1] == 1:  # one center: S' = cos θ (and no softmax over one value)
        relaxed = center_cos[..., 0]
    else:
        weights = ops.softmax(center_cos / gamma, axis=-1)
        relaxed = ops.sum(weights * center_cos, axis=-1)                             # (B, C)
    _, relaxed, one_hot, _ = class_inputs(y_true, relaxed, "the relaxed similarities S'")
    loss = softmax_cross_entropy(one_hot, lam * (relaxed - delta * one_hot))
    if center_regularizer is None or tau == 0:
        return loss
    check_rank(center_regularizer, (1, 2), "center_regularizer", "(batch,) or (batch, 1)")
    return loss + tau * ops.reshape(as_float32(center_regularizer), (-1,))


@keras.saving.register_keras_serializable(package="losslab")
class SoftTripleLoss(HeadOutputLoss):
    """SoftTriple (Qian et al., ICCV 2019): softmax over classes with K centers each.

    Formula:
        S'_{i,c} = Σ_k softmax_k(x̂ᵀŵ_c^k / γ) x̂ᵀŵ_c^k
        loss = -log( e^{λ(S'_{i,y} - δ)} / (e^{λ(S'_{i,y} - δ)} + Σ_{j≠y} e^{λ S'_{i,j}}) )
               + τ·R(w)

    Reads "center_cos" (B, C, K) and, when τ > 0, "center_regularizer" from the
    "subcenter_cosine" head (`losses.heads.SubCenterCosineHead`; build it with
    `centers=10`): embeddings and centers are normalised there, as in the paper. R is
    Eq. 13 as the authors' code computes it, Σ_c Σ_{t<s} sqrt(2 + 1e-5 - 2 ŵ_c^tᵀŵ_c^s) /
    (C·K·(K-1)), half the mean distance between two unit centers of a class (1e-5 keeps the
    gradient finite where two centers meet); the head computes it and the loss adds τ·R to
    every sample, so the batch mean is the paper's loss. `y_true` = integer or one-hot labels.

    Args:
        lam: λ > 0. Defaults to `20.0`.
        gamma: γ > 0. Defaults to `0.1`.
        delta: δ >= 0. Defaults to `0.01`.
        tau: τ >= 0, the weight of R. Defaults to `0.2`.
        reduction, name, dtype: as Keras's losses.

    Reference: Qian, Shang, Sun, Hu, Li, Jin, "SoftTriple Loss: Deep Metric Learning Without
    Triplet Sampling", ICCV 2019 (defaults: the authors' code and pytorch-metric-learning).
    """

    head_hint = _SUBCENTER_HEAD

    def __init__(self, lam=20.0, gamma=0.1, delta=0.01, tau=0.2,
                 reduction="sum_over_batch_size", name="soft_triple_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.lam = check_positive("lam", lam)
        self.gamma = check_positive("gamma", gamma)
        self.delta = check_non_negative("delta", delta)
        self.tau = check_non_negative("tau", tau)

    @property
    def head_keys(self):
        return ("center_cos", "center_regularizer") if self.tau > 0 else ("center_cos",)

    def call(self, y_true, y_pred):
        values = self.head_values(y_pred)
        regularizer = values[1] if len(values) > 1 else None
        return soft_triple_loss(y_true, values[0], regularizer, self.lam, self.gamma,
                                self.delta, self.tau)

    def get_config(self):
        return {**super().get_config(), "lam": self.lam, "gamma": self.gamma,
                "delta": self.delta, "tau": self.tau}


# --------------------------------------------------------------------------- margin loss


def margin_loss(y_true, embedding, beta, alpha=0.2, nu=0.0, mining="all", cutoff=0.5,
                nonzero_loss_cutoff=1.4):
    """Margin loss ("Sampling Matters") per anchor, over the pairs of the batch.

    Formula:
        D_ij = ‖x̂_i - x̂_j‖,   β_i = β of class y_i
        ℓ_ij = (α + D_ij - β_i)₊ + ν β_i        (i ≠ j, y_i = y_j)
        ℓ_ij = (α - D_ij + β_i)₊ + ν β_i        (y_i ≠ y_j)
        per_sample_i = (B / N) Σ_j w_ij ℓ_ij,   N = max(1, Σ w_ij over pairs with a
                                                         non-zero hinge)

    mining="all": w_ij = 1 for every pair. mining="distance_weighted" (the paper's
    sampling): an anchor with a positive and an allowed negative keeps its |P_i| positive
    pairs (w = 1) and weights its negatives by |P_i|·q_in
    (`losses.mining.distance_weighted_weights` on the normalised embeddings), the
    expectation of drawing one negative per positive pair; other anchors get no pairs.

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        embedding: Embeddings (B, D) ("embedding" of the "margin_beta" head).
        beta: β of every class (B, C) ("beta" of the "margin_beta" head).
        alpha: α >= 0, the margin around the boundary β. Defaults to `0.2`.
        nu: ν >= 0, the weight of the β regulariser. Defaults to `0.0`.
        mining: "all" or "distance_weighted". Defaults to `"all"`.
        cutoff, nonzero_loss_cutoff: of the distance-weighted sampling. Default to `0.5`
            (the paper's) and `1.4`.

    Returns:
        float32 tensor (B,). An anchor without pairs gives 0.
    """
    check_choice("mining", mining, MARGIN_MINING)
    check_rank(embedding, 2, "the embedding", "(batch, dim)")
    labels, beta, one_hot, _ = class_inputs(y_true, beta, "beta")
    embedding = as_float32(embedding)
    beta_i = ops.sum(one_hot * beta, axis=-1, keepdims=True)                         # (B, 1)
    d = pairwise_distances(l2_normalize(embedding))
    positives = ops.cast(_mining.positive_mask(labels), "float32")
    negatives = ops.cast(_mining.negative_mask(labels), "float32")
    if mining == DISTANCE_WEIGHTED:
        weights = _distance_weights(embedding, labels, cutoff, nonzero_loss_cutoff)
        positives = positives * ops.cast(ops.any(weights > 0, axis=1, keepdims=True),
                                         "float32")
        negatives = ops.sum(positives, axis=1, keepdims=True) * weights
    positive_hinge = ops.relu(alpha + d - beta_i)
    negative_hinge = ops.relu(alpha - d + beta_i)
    hinge = positives * positive_hinge + negatives * negative_hinge
    active = ops.sum(positives * ops.cast(positive_hinge > 0, "float32")
                     + negatives * ops.cast(negative_hinge > 0, "float32"))
    pairs = ops.sum(positives + negatives, axis=1)
    anchor_sums = ops.sum(hinge, axis=1) + nu * beta_i[:, 0] * pairs
    batch = ops.cast(ops.shape(embedding)[0], "float32")
    per_sample = anchor_sums * (batch / ops.maximum(active, 1.0))
    return _nan_unless_finite(per_sample, embedding)


@keras.saving.register_keras_serializable(package="losslab")
class MarginLoss(HeadOutputLoss):
    """Margin loss (Wu et al., ICCV 2017): pairs on either side of a learned boundary β.

    Formula:
        ℓ_ij = (α + y_ij (D_ij - β_{c(i)}))₊ + ν β_{c(i)},   D_ij = ‖x̂_i - x̂_j‖
        loss = Σ over all ordered pairs i ≠ j of the batch of ℓ_ij / N,
        N = the pairs with a non-zero hinge

    Positive pairs are pulled within β - α, negative pairs pushed beyond β + α, on
    normalised embeddings. β is learned: it is a weight of the "margin_beta" head
    (`losses.heads.MarginBetaHead`, one β per class or one for all, initial 1.2), which
    outputs it next to the embedding; the loss takes β of each anchor's class. Every
    positive and negative pair of the batch is used (`mining="all"`), or, as in the paper,
    the negatives are weighted by distance-weighted sampling (`mining="distance_weighted"`,
    see `margin_loss`). Use P×K batches. Per-sample values: the anchor convention of the
    module docstring.

        model = make_model(inputs, build_head("margin_beta", C)(embedding))
        model.compile(loss=JointLoss(MarginLoss()), metrics=["accuracy"])

    Args:
        alpha: α >= 0. Defaults to `0.2` (the paper's).
        nu: ν >= 0, weight of the ν·β regulariser (Eq. 5). Defaults to `0.0` (the authors'
            code's default).
        mining: "all" pairs, or "distance_weighted" negatives (Wu et al.'s sampling, as an
            expectation). Defaults to `"all"`.
        cutoff: "distance_weighted" only: distances are clipped below at it. Defaults to
            `0.5` (the paper's).
        nonzero_loss_cutoff: "distance_weighted" only: negatives at this distance or
            farther get weight 0. Defaults to `1.4` (PML's).
        reduction, name, dtype: as Keras's losses.

    Reference: Wu, Manmatha, Smola, Krähenbühl, "Sampling Matters in Deep Embedding
    Learning", ICCV 2017.
    """

    head_keys = ("embedding", "beta")
    head_hint = _BETA_HEAD

    def __init__(self, alpha=0.2, nu=0.0, mining="all", cutoff=0.5, nonzero_loss_cutoff=1.4,
                 reduction="sum_over_batch_size", name="margin_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = check_non_negative("alpha", alpha)
        self.nu = check_non_negative("nu", nu)
        self.mining = check_choice("mining", mining, MARGIN_MINING)
        self.cutoff, self.nonzero_loss_cutoff = _check_cutoffs(cutoff, nonzero_loss_cutoff)

    def call(self, y_true, y_pred):
        embedding, beta = self.head_values(y_pred)
        return margin_loss(y_true, embedding, beta, self.alpha, self.nu, self.mining,
                           self.cutoff, self.nonzero_loss_cutoff)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "nu": self.nu,
                "mining": self.mining, "cutoff": self.cutoff,
                "nonzero_loss_cutoff": self.nonzero_loss_cutoff}


# --------------------------------------------------------------------------- recipes

register_recipe(LossRecipe(
    name="proxy_nca", head="cosine", build_loss=lambda num_classes: ProxyNCALoss(),
    summary="ProxyNCA: softmax over -s‖x̂ - p̂_j‖², s=1 (PML's form), on a cosine head"))
register_recipe(LossRecipe(
    name="proxy_anchor", head="cosine", build_loss=lambda num_classes: ProxyAnchorLoss(),
    summary="Proxy-Anchor: proxies as anchors of the batch, α=32, δ=0.1, on a cosine head"))
register_recipe(LossRecipe(
    name="normalized_softmax", head="cosine",
    build_loss=lambda num_classes: NormalizedSoftmaxLoss(),
    summary="Normalized Softmax: CE on cos θ / T, T=0.05 (Zhai & Wu 2019), on a cosine head"))
register_recipe(LossRecipe(
    name="subcenter_arcface", head="subcenter_cosine", head_kwargs={"centers": 3},
    build_loss=lambda num_classes: SubCenterArcFaceLoss(),
    summary="Sub-center ArcFace: ArcFace on max of K=3 centers, m=0.5, s=30"))
register_recipe(LossRecipe(
    name="soft_triple", head="subcenter_cosine", head_kwargs={"centers": 10},
    build_loss=lambda num_classes: SoftTripleLoss(),
    summary="SoftTriple: K=10 centers, λ=20, γ=0.1, δ=0.01, τ=0.2 (Qian et al. 2019)"))
register_recipe(LossRecipe(
    name="margin", head="margin_beta", balanced_batches=True,
    build_loss=lambda num_classes: JointLoss(MarginLoss(), metric_weight=1.0),
    summary="softmax CE + margin loss (α=0.2, learned β per class from 1.2; Wu et al. "
            "2017), P×K batches"))
