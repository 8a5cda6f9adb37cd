"""Pair-based metric losses on cosine similarities: Multi-Similarity, SupCon and NT-Xent.

All three compare every pair (i, k) of the batch through the cosine similarity
S_ik = ê_i · ê_k of the L2-normalised embeddings, with positives P_i = {k ≠ i : y_k = y_i}
and negatives N_i = {k : y_k ≠ y_i}, formed from the labels inside the batch
(`losses.mining`): they need several samples per class in a batch (P×K batches,
`zoo.datasets.samplers.PKBatches`). All are computed in float32 with log-sum-exp, so the
large scales (β = 50, 1/τ = 10) stay finite under float16 / bfloat16 mixed precision.

The per-sample values follow `losses.metric`'s convention: sample i carries the terms it
anchors, so Keras's mean over the batch is the paper's mean over anchors and `sample_weight`
weights anchors. `JointLoss(metric)` adds softmax cross-entropy on the head's scores.
"""

from __future__ import annotations

import keras
from keras import ops

from losses import mining as _mining
from losses.base import check_in_range, check_non_negative, check_positive
from losses.distances import l2_normalize
from losses.metric import JointLoss, _EmbeddingLoss, _labels_and_embedding, _nan_unless_finite
from losses.registry import LossRecipe, register_recipe


# Stands for -inf in masked log-sum-exps: a row with every entry masked then has a finite
# log-sum-exp whose gradient is 0, where -inf would give exp(-inf - (-inf)) = NaN.
_MASKED = -1e9


def _masked_log1p_sum_exp(values, mask):
    """log(1 + Σ_{k: mask_ik} exp(values_ik)) per row, by log-sum-exp with a 0 entry."""
    masked = ops.where(mask, values, _MASKED)
    zero = ops.zeros_like(values[:, :1])
    return ops.logsumexp(ops.concatenate([zero, masked], axis=1), axis=1)


def _cosine_similarities(y_true, y_pred, loss_name):
    labels, embedding = _labels_and_embedding(y_true, y_pred, loss_name)
    unit = l2_normalize(embedding)
    return labels, embedding, ops.matmul(unit, ops.transpose(unit))


def multi_similarity_loss(y_true, y_pred, alpha=2.0, beta=50.0, base=0.5, epsilon=None):
    """Multi-Similarity loss per anchor.

    Formula:
        loss_i = (1/α) log(1 + Σ_{k∈P_i} e^{-α (S_ik - λ)})
               + (1/β) log(1 + Σ_{k∈N_i} e^{ β (S_ik - λ)})          λ = `base`

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Embeddings (B, D), or a head dict with "embedding".
        alpha: α > 0, the positive pairs' scale. Defaults to 2.0.
        beta: β > 0, the negative pairs' scale. Defaults to 50.0.
        base: λ, the similarity margin. Defaults to 0.5.
        epsilon: None (every pair), or ε >= 0 for the paper's mining
            (`losses.mining.multi_similarity_pairs`): P_i and N_i keep only the pairs
            harder than the anchor's easiest of the other kind ± ε. Defaults to None.

    Returns:
        float32 tensor (B,). An anchor without positives (negatives) has no such term.

    Reference: Wang, Han, Huang, Dong, Scott, "Multi-Similarity Loss with General Pair
    Weighting for Deep Metric Learning", CVPR 2019, Eq. 12; its pair mining (Eq. 7-8) with
    `epsilon`, without it as pytorch-metric-learning's `MultiSimilarityLoss`.
    """
    labels, embedding, s = _cosine_similarities(y_true, y_pred, "MultiSimilarityLoss")
    if epsilon is None:
        positives, negatives = _mining.positive_mask(labels), _mining.negative_mask(labels)
    else:  # selection only: no gradient through the choice of pairs
        positives, negatives = _mining.multi_similarity_pairs(ops.stop_gradient(s), labels,
                                                              epsilon)
    positive = _masked_log1p_sum_exp(-alpha * (s - base), positives)
    negative = _masked_log1p_sum_exp(beta * (s - base), negatives)
    return _nan_unless_finite(positive / alpha + negative / beta, embedding)


def supervised_contrastive_loss(y_true, y_pred, temperature=0.1):
    """Supervised contrastive (SupCon, L^sup_out) loss per anchor.

    Formula:
        loss_i = -(1/|P_i|) Σ_{p∈P_i} log( e^{S_ip/τ} / Σ_{k≠i} e^{S_ik/τ} )
        per_sample_i = (B / A) · loss_i,   A = the anchors with |P_i| > 0 (others give 0)

    so the batch mean is the mean over anchors that have a positive. A batch where no
    sample has a positive gives 0.

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Embeddings (B, D), or a head dict with "embedding".
        temperature: τ > 0. Defaults to 0.1.

    Returns:
        float32 tensor (B,).

    Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020, Eq. 2 (one
    view per sample, as pytorch-metric-learning's `SupConLoss`).
    """
    labels, embedding, s = _cosine_similarities(y_true, y_pred, "SupConLoss")
    logits = s / temperature
    positives = _mining.positive_mask(labels)
    others = ops.logical_not(ops.eye(ops.shape(logits)[0], dtype="bool"))
    log_denominator = ops.logsumexp(ops.where(others, logits, _MASKED), axis=1)
    log_probability = logits - log_denominator[:, None]
    count = ops.sum(ops.cast(positives, "float32"), axis=1)
    per_anchor = -ops.sum(ops.where(positives, log_probability, 0.0), axis=1) / ops.maximum(
        count, 1.0)
    anchors = ops.sum(ops.cast(count > 0, "float32"))
    batch = ops.cast(ops.shape(logits)[0], "float32")
    return _nan_unless_finite(per_anchor * batch / ops.maximum(anchors, 1.0), embedding)


def nt_xent_loss(y_true, y_pred, temperature=0.07):
    """NT-Xent (normalized temperature-scaled cross-entropy) over the positive pairs, per anchor.

    Formula:
        ℓ(a, p) = -log( e^{S_ap/τ} / (e^{S_ap/τ} + Σ_{n∈N_a} e^{S_an/τ}) )
                = softplus( log Σ_{n∈N_a} e^{S_an/τ} - S_ap/τ )
        per_sample_i = (B / N_pairs) Σ_{p∈P_i} ℓ(i, p)     (the batch mean is the pair mean)

    Unlike SupCon, the other positives of the anchor are not in the denominator. A batch
    without positive pairs gives 0; an anchor without negatives gives ℓ = 0.

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Embeddings (B, D), or a head dict with "embedding".
        temperature: τ > 0. Defaults to 0.07.

    Returns:
        float32 tensor (B,).

    Reference: Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive
    Learning of Visual Representations" (SimCLR), ICML 2020, Eq. 1, with the positives
    given by the labels (as pytorch-metric-learning's `NTXentLoss`).
    """
    labels, embedding, s = _cosine_similarities(y_true, y_pred, "NTXentLoss")
    logits = s / temperature
    positives = _mining.positive_mask(labels)
    negatives_lse = ops.logsumexp(ops.where(_mining.negative_mask(labels), logits, _MASKED),
                                  axis=1)
    terms = ops.softplus(negatives_lse[:, None] - logits)
    pair_sums = ops.sum(ops.where(positives, terms, 0.0), axis=1)
    pairs = ops.sum(ops.cast(positives, "float32"))
    batch = ops.cast(ops.shape(logits)[0], "float32")
    return _nan_unless_finite(pair_sums * batch / ops.maximum(pairs, 1.0), embedding)


@keras.saving.register_keras_serializable(package="losslab")
class MultiSimilarityLoss(_EmbeddingLoss):
    """Multi-Similarity loss (Wang et al., CVPR 2019) on the cosine similarities of a batch.

    Formula:
        loss = mean over anchors i of (1/α) log(1 + Σ_{k∈P_i} e^{-α (S_ik - λ)})
                                    + (1/β) log(1 + Σ_{k∈N_i} e^{β (S_ik - λ)})

    Positive pairs are pulled above λ, negative ones pushed below it, each pair weighted by
    how far it is on the wrong side relative to the others (the soft-max of the log-sum-exp).
    Expects embeddings (B, D) or the "embedding" head's dict; integer or one-hot labels.

        model.compile(loss=JointLoss(MultiSimilarityLoss(), metric_weight=1.0))

    Args:
        alpha: α > 0. Defaults to 2.0 (the paper's).
        beta: β > 0. Defaults to 50.0 (the paper's).
        base: λ in [-1, 1], the similarity that separates positives from negatives.
            Defaults to 0.5 (the paper's).
        epsilon: None (every pair of the batch, as pytorch-metric-learning's loss alone),
            or the paper's mining margin ε (0.1 in the paper): only pairs harder than the
            anchor's easiest of the other kind ± ε. Defaults to None.
        reduction, name, dtype: as Keras's losses.

    Reference: Wang et al., "Multi-Similarity Loss with General Pair Weighting for Deep
    Metric Learning", CVPR 2019.
    """

    def __init__(self, alpha=2.0, beta=50.0, base=0.5, epsilon=None,
                 reduction="sum_over_batch_size", name="multi_similarity_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = check_positive("alpha", alpha)
        self.beta = check_positive("beta", beta)
        self.epsilon = None if epsilon is None else check_non_negative("epsilon", epsilon)
        self.base = check_in_range("base", base, -1.0, 1.0, closed="both")

    def call(self, y_true, y_pred):
        (embedding,) = self.head_values(y_pred)
        return multi_similarity_loss(y_true, embedding, self.alpha, self.beta, self.base,
                                     self.epsilon)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta,
                "base": self.base, "epsilon": self.epsilon}


class _TemperatureLoss(_EmbeddingLoss):
    """Shared constructor, call and config of the losses with one temperature τ."""

    per_sample = None  # staticmethod (y_true, embedding, temperature) -> (B,)

    def __init__(self, temperature, reduction, name, dtype):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = check_positive("temperature", temperature)

    def call(self, y_true, y_pred):
        (embedding,) = self.head_values(y_pred)
        return self.per_sample(y_true, embedding, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="losslab")
class SupConLoss(_TemperatureLoss):
    """Supervised contrastive loss (Khosla et al., NeurIPS 2020), one view per sample.

    Formula:
        loss = mean over anchors i with positives of
               -(1/|P_i|) Σ_{p∈P_i} log( e^{S_ip/τ} / Σ_{k≠i} e^{S_ik/τ} )

    Every other sample of the batch is in the denominator (positives too: the paper's
    L^sup_out). Expects embeddings (B, D) or the "embedding" head's dict; integer or one-hot
    labels.

    Args:
        temperature: τ > 0. Defaults to 0.1 (pytorch-metric-learning's default; the
            paper's best on ImageNet is 0.1).
        reduction, name, dtype: as Keras's losses.

    Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020.
    """

    per_sample = staticmethod(supervised_contrastive_loss)

    def __init__(self, temperature=0.1, reduction="sum_over_batch_size", name="supcon_loss",
                 dtype=None):
        super().__init__(temperature, reduction, name, dtype)


@keras.saving.register_keras_serializable(package="losslab")
class NTXentLoss(_TemperatureLoss):
    """NT-Xent (SimCLR's InfoNCE) with the positive pairs given by the labels of the batch.

    Formula:
        loss = mean over positive pairs (a, p) of
               -log( e^{S_ap/τ} / (e^{S_ap/τ} + Σ_{n∈N_a} e^{S_an/τ}) )

    Expects embeddings (B, D) or the "embedding" head's dict; integer or one-hot labels.
    For self-supervised training, give the two views of an image the same label.

    Args:
        temperature: τ > 0. Defaults to 0.07 (pytorch-metric-learning's default).
        reduction, name, dtype: as Keras's losses.

    Reference: Chen et al., "A Simple Framework for Contrastive Learning of Visual
    Representations", ICML 2020.
    """

    per_sample = staticmethod(nt_xent_loss)

    def __init__(self, temperature=0.07, reduction="sum_over_batch_size", name="nt_xent_loss",
                 dtype=None):
        super().__init__(temperature, reduction, name, dtype)


def _joint(metric):
    return JointLoss(metric, metric_weight=1.0)


register_recipe(LossRecipe(
    name="multi_similarity", head="embedding", balanced_batches=True,
    build_loss=lambda num_classes: _joint(MultiSimilarityLoss()),
    summary="softmax CE + Multi-Similarity (α=2, β=50, λ=0.5; Wang et al. 2019), P×K batches"))
register_recipe(LossRecipe(
    name="supcon", head="embedding", balanced_batches=True,
    build_loss=lambda num_classes: _joint(SupConLoss()),
    summary="softmax CE + supervised contrastive (τ=0.1; Khosla et al. 2020), P×K batches"))
register_recipe(LossRecipe(
    name="nt_xent", head="embedding", balanced_batches=True,
    build_loss=lambda num_classes: _joint(NTXentLoss()),
    summary="softmax CE + NT-Xent over labelled positive pairs (τ=0.07; SimCLR), P×K batches"))
