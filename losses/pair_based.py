"""Pair-based metric losses over the whole batch: Multi-Similarity, SupCon, NT-Xent, Circle,
N-pairs, Lifted Structure and Angular.

All compare pairs (i, k) of the batch, with positives P_i = {k ≠ i : y_k = y_i} and
negatives N_i = {k : y_k ≠ y_i} formed from the labels inside the batch (`losses.mining`):
they need several samples per class in a batch (P×K batches,
`zoo.datasets.samplers.PKBatches`). What they compare:

| loss                | compares pairs by                  | sample i carries             |
|---------------------|------------------------------------|------------------------------|
| MultiSimilarityLoss | cosine S_ik = ê_i · ê_k            | its anchor's terms           |
| SupConLoss          | cosine                             | its anchor's term, rescaled  |
| NTXentLoss          | cosine                             | its pairs (i, p), rescaled   |
| CircleLoss          | cosine                             | its anchor's term, rescaled  |
| NPairsLoss          | dot product e_i · e_k (raw)        | its pair (+ L2 share), resc. |
| LiftedStructureLoss | Euclidean distance ‖e_i - e_k‖     | its pairs (i, j), rescaled   |
| AngularLoss         | cosine (normalised embeddings)     | its pairs (i, p), rescaled   |

All are computed in float32 with (masked) log-sum-exp, so the large scales (β = 50, 1/τ = 10,
γ = 256) stay finite under float16 / bfloat16 mixed precision.

The per-sample values follow `losses.metric`'s convention: sample i carries the terms it
anchors, rescaled where needed (by B / the number of anchors or pairs that count) so that
Keras's mean over the batch is the paper's mean over anchors or pairs, and `sample_weight`
weights anchors. `JointLoss(metric)` adds softmax cross-entropy on the head's scores.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from losses import mining as _mining
from losses.base import check_in_range, check_non_negative, check_positive
from losses.distances import l2_normalize, pairwise_distances
from losses.metric import JointLoss, _EmbeddingLoss, _labels_and_embedding, _nan_unless_finite
from losses.registry import LossRecipe, register_recipe


# Stands for -inf in masked log-sum-exps: a row with every entry masked then has a finite
# log-sum-exp whose gradient is 0, where -inf would give exp(-inf - (-inf)) = NaN.
_MASKED = -1e9


def _masked_log1p_sum_exp(values, mask):
    """log(1 + Σ_{k: mask_..k} exp(values_..k)) over the last axis, by log-sum-exp with a 0
    entry. `mask` broadcasts against `values` (B, K) or (B, B, K)."""
    masked = ops.where(mask, values, _MASKED)
    zero = ops.zeros_like(masked[..., :1])
    return ops.logsumexp(ops.concatenate([zero, masked], axis=-1), axis=-1)


def _masked_logsumexp(values, mask):
    """log Σ_{k: mask_ik} exp(values_ik) per row; about -1e9 (gradient 0) for an empty row."""
    return ops.logsumexp(ops.where(mask, values, _MASKED), axis=1)


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
    masks = (_mining.positive_mask(labels), _mining.negative_mask(labels))
    return _nan_unless_finite(_multi_similarity_terms(s, masks, alpha, beta, base, epsilon),
                              embedding)


def _multi_similarity_terms(s, masks, alpha, beta, base, epsilon):
    positives, negatives = masks
    if epsilon is not None:  # selection only: no gradient through the choice of pairs
        positives, negatives = _mining.multi_similarity_pairs(ops.stop_gradient(s), None,
                                                              epsilon, masks)
    positive = _masked_log1p_sum_exp(-alpha * (s - base), positives)
    negative = _masked_log1p_sum_exp(beta * (s - base), negatives)
    return positive / alpha + negative / beta


def multi_similarity_reference_loss(embedding, reference, masks, alpha=2.0, beta=50.0,
                                    base=0.5, epsilon=None):
    """Multi-Similarity loss of a batch's anchors against a reference set (e.g. a
    cross-batch memory): `multi_similarity_loss`'s formula with P_i and N_i taken among the
    references, S_ik the cosine of anchor i and reference k.

    Args:
        embedding: float32 (B, D), the anchors.
        reference: float32 (R, D), the reference set (the batch first, see
            `losses.mining.reference_masks`).
        masks: (positives, negatives) bool (B, R).
        alpha, beta, base, epsilon: as `multi_similarity_loss`.

    Returns:
        float32 tensor (B,).
    """
    s = ops.matmul(l2_normalize(embedding), ops.transpose(l2_normalize(reference)))
    return _nan_unless_finite(_multi_similarity_terms(s, masks, alpha, beta, base, epsilon),
                              embedding)


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


def circle_loss(y_true, y_pred, margin=0.25, gamma=256.0):
    """Circle loss per anchor, on the cosine similarities of the batch.

    Formula (O_p = 1 + m, O_n = -m, Δ_p = 1 - m, Δ_n = m):
        α_ip = [O_p - S_ip]_+,   α_in = [S_in - O_n]_+         (weights: held without gradient)
        L_i = log(1 + Σ_{n∈N_i} Σ_{p∈P_i} exp(γ α_in (S_in - Δ_n) - γ α_ip (S_ip - Δ_p)))
            = softplus( LSE_{n∈N_i} γ α_in (S_in - Δ_n) + LSE_{p∈P_i} -γ α_ip (S_ip - Δ_p) )
        per_sample_i = (B / A) · L_i,   A = the anchors with a positive and a negative

    so the batch mean is the mean over the anchors that have both (the others give 0). A
    batch without such an anchor gives 0.

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Embeddings (B, D), or a head dict with "embedding".
        margin: m, the relaxation. Defaults to 0.25.
        gamma: γ > 0, the scale. Defaults to 256.0.

    Returns:
        float32 tensor (B,).

    Reference: Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity
    Optimization", CVPR 2020, Eq. 6 with the self-paced weights of Eq. 5 and the margins of
    Eq. 7 (as pytorch-metric-learning's `CircleLoss`, which also detaches α).
    """
    labels, embedding, s = _cosine_similarities(y_true, y_pred, "CircleLoss")
    positives, negatives = _mining.positive_mask(labels), _mining.negative_mask(labels)
    weights = ops.stop_gradient(s)
    alpha_p = ops.relu(1.0 + margin - weights)
    alpha_n = ops.relu(weights + margin)
    logit_p = -gamma * alpha_p * (s - (1.0 - margin))
    logit_n = gamma * alpha_n * (s - margin)
    per_anchor = ops.softplus(_masked_logsumexp(logit_p, positives)
                              + _masked_logsumexp(logit_n, negatives))
    valid = ops.logical_and(ops.any(positives, axis=1), ops.any(negatives, axis=1))
    anchors = ops.sum(ops.cast(valid, "float32"))
    batch = ops.cast(ops.shape(s)[0], "float32")
    per_sample = ops.where(valid, per_anchor, 0.0) * batch / ops.maximum(anchors, 1.0)
    return _nan_unless_finite(per_sample, embedding)


def n_pairs_pairs(labels):
    """The N pairs of a batch: per class, its first two samples (in batch order).

    Returns:
        (pairs, anchors, positives): bool (B, B) with [i, j] True when i is the first sample
        of its class and j the second; bool (B,) the anchors (first samples of the classes
        with two or more samples); bool (B,) their positives (second samples). A class alone
        in the batch forms no pair; third and later samples of a class are not used.
    """
    same = _mining.same_class_mask(labels)
    index = ops.arange(ops.shape(labels)[0])
    earlier = ops.less(ops.expand_dims(index, 0), ops.expand_dims(index, 1))    # [i, j]: j < i
    rank = ops.sum(ops.cast(ops.logical_and(same, earlier), "int32"), axis=1)
    first, second = ops.equal(rank, 0), ops.equal(rank, 1)
    pairs = ops.logical_and(same, ops.logical_and(ops.expand_dims(first, 1),
                                                  ops.expand_dims(second, 0)))
    return pairs, ops.any(pairs, axis=1), second


def n_pairs_loss(y_true, y_pred, embedding_l2=0.0):
    """Multi-class N-pair loss per sample: the pair anchored at it (and its L2 share).

    Pairs (`n_pairs_pairs`): for each class with two or more samples in the batch, its first
    sample is the anchor a and its second the positive a⁺; N = the number of such pairs.
    With the dot products f_a · f_b⁺ (the embeddings are not normalised):

    Formula:
        ℓ_a = -log( e^{f_a·f_a⁺} / Σ_{b} e^{f_a·f_b⁺} )      b over the N pairs (the other
              pairs' positives are the negatives)
        R   = (λ / 4N) Σ_a (‖f_a‖² + ‖f_a⁺‖²)                 λ = `embedding_l2`
        per_sample_i = (B / N) · (ℓ_i [i an anchor] + (λ/4) ‖f_i‖² [i in a pair])

    so the batch mean is (1/N) Σ_a ℓ_a + R. A sample that is neither an anchor nor a positive
    gives 0; a batch without a pair gives 0.

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Embeddings (B, D), or a head dict with "embedding".
        embedding_l2: λ >= 0, the weight of the embeddings' L2 penalty. Defaults to 0.

    Returns:
        float32 tensor (B,).

    Reference: Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective",
    NeurIPS 2016, Eq. 6 (the pairs as pytorch-metric-learning's `NPairsLoss`; R as
    TensorFlow's `npairs_loss`, λ/4 times the mean squared norm of anchors plus positives).
    """
    labels, embedding = _labels_and_embedding(y_true, y_pred, "NPairsLoss")
    pairs, anchors, positives = n_pairs_pairs(labels)
    logits = ops.matmul(embedding, ops.transpose(embedding))
    log_denominator = _masked_logsumexp(logits, ops.expand_dims(positives, 0))
    cross_entropy = log_denominator - ops.sum(ops.where(pairs, logits, 0.0), axis=1)
    per_sample = ops.where(anchors, cross_entropy, 0.0)
    if embedding_l2:
        members = ops.logical_or(anchors, positives)
        squared_norms = ops.sum(ops.square(embedding), axis=1)
        per_sample = per_sample + ops.where(members, 0.25 * embedding_l2 * squared_norms, 0.0)
    count = ops.sum(ops.cast(positives, "float32"))
    batch = ops.cast(ops.shape(logits)[0], "float32")
    return _nan_unless_finite(per_sample * batch / ops.maximum(count, 1.0), embedding)


def lifted_structure_loss(y_true, y_pred, margin=1.0):
    """Lifted structured loss (the smooth form) per sample: the positive pairs it anchors.

    Formula (D Euclidean distances, P the unordered positive pairs of the batch):
        J_ij = log( Σ_{k∈N_i} e^{m - D_ik} + Σ_{l∈N_j} e^{m - D_jl} ) + D_ij
        loss = 1/(2|P|) Σ_{(i,j)∈P} [J_ij]_+²
        per_sample_i = (B / 4|P|) Σ_{j∈P_i} [J_ij]_+²

    J is symmetric, so each unordered pair is counted once from each end and the batch mean
    is the paper's loss. A batch without positive pairs gives 0; pairs without negatives
    (J = -inf) give 0.

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Embeddings (B, D), or a head dict with "embedding".
        margin: m >= 0. Defaults to 1.0.

    Returns:
        float32 tensor (B,).

    Reference: Oh Song, Xiang, Jegelka, Savarese, "Deep Metric Learning via Lifted
    Structured Feature Embedding", CVPR 2016, Eq. 4.
    """
    labels, embedding = _labels_and_embedding(y_true, y_pred, "LiftedStructureLoss")
    d = pairwise_distances(embedding)
    positives, negatives = _mining.positive_mask(labels), _mining.negative_mask(labels)
    negative_lse = _masked_logsumexp(margin - d, negatives)           # log Σ_{k∈N_i} e^{m-D_ik}
    j = ops.logaddexp(ops.expand_dims(negative_lse, 1), ops.expand_dims(negative_lse, 0)) + d
    terms = ops.where(positives, ops.square(ops.relu(j)), 0.0)
    ordered_pairs = ops.sum(ops.cast(positives, "float32"))            # 2|P|
    batch = ops.cast(ops.shape(d)[0], "float32")
    return _nan_unless_finite(ops.sum(terms, axis=1) * batch / ops.maximum(2.0 * ordered_pairs,
                                                                              1.0), embedding)


def angular_loss(y_true, y_pred, alpha=40.0):
    """Angular loss (the N-pair form) over the positive pairs, per anchor.

    Formula (x the L2-normalised embeddings, t = tan² α):
        ℓ(a, p) = log(1 + Σ_{n∈N_a} exp(4t (x_a + x_p)ᵀ x_n - 2(1 + t) x_aᵀ x_p))
        per_sample_i = (B / N_pairs) Σ_{p∈P_i} ℓ(i, p)     (the batch mean is the pair mean)

    over every ordered positive pair (a, p), the negatives those of a. A pair whose anchor
    has no negatives gives ℓ = 0; a batch without positive pairs gives 0.

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Embeddings (B, D), or a head dict with "embedding".
        alpha: α in degrees, in (0, 90). Defaults to 40.0.

    Returns:
        float32 tensor (B,).

    Reference: Wang, Zhou, Wen, Liu, Lin, "Deep Metric Learning with Angular Loss",
    ICCV 2017, Eq. 8 (the pairs and normalisation as pytorch-metric-learning's
    `AngularLoss`).
    """
    labels, embedding, s = _cosine_similarities(y_true, y_pred, "AngularLoss")
    tan_squared = math.tan(math.radians(alpha)) ** 2
    positives, negatives = _mining.positive_mask(labels), _mining.negative_mask(labels)
    values = (4.0 * tan_squared * (ops.expand_dims(s, 1) + ops.expand_dims(s, 0))   # [a, p, n]
              - 2.0 * (1.0 + tan_squared) * ops.expand_dims(s, 2))
    terms = _masked_log1p_sum_exp(values, ops.expand_dims(negatives, 1))              # [a, p]
    pair_sums = ops.sum(ops.where(positives, terms, 0.0), axis=1)
    pairs = ops.sum(ops.cast(positives, "float32"))
    batch = ops.cast(ops.shape(s)[0], "float32")
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

    def check_reference_form(self):
        """Every configuration has a reference-set form."""

    def reference_loss(self, embedding, reference, masks):
        """Per-anchor values against a reference set (`multi_similarity_reference_loss`);
        what `losses.memory.CrossBatchMemoryLoss` calls."""
        return multi_similarity_reference_loss(embedding, reference, masks, self.alpha,
                                               self.beta, self.base, self.epsilon)

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


@keras.saving.register_keras_serializable(package="losslab")
class CircleLoss(_EmbeddingLoss):
    """Circle loss (Sun et al., CVPR 2020) on the cosine similarities of a batch.

    Formula (O_p = 1 + m, O_n = -m, Δ_p = 1 - m, Δ_n = m):
        loss = mean over anchors i with a positive and a negative of
               log(1 + Σ_{n∈N_i} Σ_{p∈P_i} exp(γ α_in (S_in - Δ_n) - γ α_ip (S_ip - Δ_p)))
        α_ip = [O_p - S_ip]_+,  α_in = [S_in - O_n]_+   (weights, held without gradient)

    Each similarity is weighted by how far it is from its optimum, so the decision boundary
    is the circle (S_n - 0)² + (S_p - 1)² = 2m². Expects embeddings (B, D) or the
    "embedding" head's dict (normalised here); integer or one-hot labels.

        model.compile(loss=JointLoss(CircleLoss(), metric_weight=1.0))

    Why not `keras.losses.Circle`: it computes the same per-anchor formula but (1) masks the
    anchors whose loss is 0 with a Keras mask, so its "sum_over_batch_size" is a mean over
    the anchors with a non-zero loss, and `sample_weight` meets that mask, where LossLab's
    losses return a plain per-sample value whose batch mean is the mean over the anchors
    that have a positive and a negative (`losses.metric`'s convention); (2) keeps the
    gradient through α_p and α_n, which the paper treats as weights (pytorch-metric-learning
    detaches them); (3) computes in the input's dtype on embeddings it expects normalised
    already, where γ = 256 needs float32 under mixed precision; (4) takes integer labels
    only (no one-hot, no head dict), and does not turn a NaN embedding into a NaN loss. So
    it is written here on the shared pieces (`_cosine_similarities`, masked log-sum-exp).

    Args:
        margin: m in [0, 1), the relaxation. Defaults to 0.25.
        gamma: γ > 0, the scale. Defaults to 256.0. (0.25 / 256 are the paper's settings
            for face recognition and re-identification; it uses m = 0.4, γ = 80 for
            fine-grained retrieval, pytorch-metric-learning's and Keras's defaults.)
        reduction, name, dtype: as Keras's losses.

    Reference: Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity
    Optimization", CVPR 2020.
    """

    def __init__(self, margin=0.25, gamma=256.0, reduction="sum_over_batch_size",
                 name="circle_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_in_range("margin", margin, 0.0, 1.0, closed="left")
        self.gamma = check_positive("gamma", gamma)

    def call(self, y_true, y_pred):
        (embedding,) = self.head_values(y_pred)
        return circle_loss(y_true, embedding, self.margin, self.gamma)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="losslab")
class NPairsLoss(_EmbeddingLoss):
    """Multi-class N-pair loss (Sohn, NeurIPS 2016) on the dot products of a batch.

    Formula (N pairs (a, a⁺) of different classes, f the embeddings, not normalised):
        loss = (1/N) Σ_a -log( e^{f_a·f_a⁺} / Σ_b e^{f_a·f_b⁺} )
               + (λ / 4N) Σ_a (‖f_a‖² + ‖f_a⁺‖²)

    The pairs come from the labels of the batch: per class, its first sample (in batch
    order) is the anchor and its second the positive (as pytorch-metric-learning); the
    positives of the other pairs are the anchor's negatives. Classes with one sample in the
    batch form no pair and are not used as negatives; further samples of a class are
    unused. Per sample: the anchor carries its pair's cross-entropy (B/N times), so the batch
    mean is the mean over pairs and `sample_weight` weights pairs through their anchors.
    Since the dot products are unbounded, the paper keeps the embeddings small with the L2
    penalty (`embedding_l2`). Expects embeddings (B, D) or the "embedding" head's dict;
    integer or one-hot labels.

    Args:
        embedding_l2: λ >= 0, the weight of the L2 penalty on the paired embeddings
            (TensorFlow's `npairs_loss` normalisation, which uses 0.002). Defaults to 0.0
            (pytorch-metric-learning).
        reduction, name, dtype: as Keras's losses.

    Reference: Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss
    Objective", NeurIPS 2016.
    """

    def __init__(self, embedding_l2=0.0, reduction="sum_over_batch_size", name="n_pairs_loss",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.embedding_l2 = check_non_negative("embedding_l2", embedding_l2)

    def call(self, y_true, y_pred):
        (embedding,) = self.head_values(y_pred)
        return n_pairs_loss(y_true, embedding, self.embedding_l2)

    def get_config(self):
        return {**super().get_config(), "embedding_l2": self.embedding_l2}


@keras.saving.register_keras_serializable(package="losslab")
class LiftedStructureLoss(_EmbeddingLoss):
    """Lifted structured loss (Oh Song et al., CVPR 2016), the smooth form, on Euclidean
    distances.

    Formula (P the positive pairs of the batch, N_i the negatives of i):
        J_ij = log( Σ_{k∈N_i} e^{m - D_ik} + Σ_{l∈N_j} e^{m - D_jl} ) + D_ij
        loss = 1/(2|P|) Σ_{(i,j)∈P} [J_ij]_+²

    Every positive pair is pushed away from the hardest negatives of both its ends (a soft
    maximum over them). Per sample i: the pairs (i, j) it belongs to, B/(4|P|) Σ_j [J_ij]_+²,
    so the batch mean is the paper's loss and `sample_weight` weights each pair's two
    halves through its two ends. Expects embeddings (B, D) or the "embedding" head's dict
    (not normalised); integer or one-hot labels.

    Args:
        margin: m >= 0. Defaults to 1.0 (the paper's).
        reduction, name, dtype: as Keras's losses.

    Reference: Oh Song, Xiang, Jegelka, Savarese, "Deep Metric Learning via Lifted
    Structured Feature Embedding", CVPR 2016.
    """

    def __init__(self, margin=1.0, reduction="sum_over_batch_size",
                 name="lifted_structure_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_non_negative("margin", margin)

    def call(self, y_true, y_pred):
        (embedding,) = self.head_values(y_pred)
        return lifted_structure_loss(y_true, embedding, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="losslab")
class AngularLoss(_EmbeddingLoss):
    """Angular loss (Wang et al., ICCV 2017), the N-pair form, on L2-normalised embeddings.

    Formula (t = tan² α):
        loss = mean over positive pairs (a, p) of
               log(1 + Σ_{n∈N_a} exp(4t (x_a + x_p)ᵀ x_n - 2(1 + t) x_aᵀ x_p))

    Bounds the angle at the negative of the triangle (a, p, n) by α, which is scale and
    rotation invariant. Every ordered positive pair of the batch is used, with the
    negatives of its anchor (as pytorch-metric-learning; the paper's N-pair batches hold one
    pair per class). Expects embeddings (B, D) or the "embedding" head's dict (normalised
    here); integer or one-hot labels.

    Args:
        alpha: α in degrees, in (0, 90). Defaults to 40.0 (the paper uses 36° to 55°).
        reduction, name, dtype: as Keras's losses.

    Reference: Wang, Zhou, Wen, Liu, Lin, "Deep Metric Learning with Angular Loss",
    ICCV 2017.
    """

    def __init__(self, alpha=40.0, reduction="sum_over_batch_size", name="angular_loss",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = check_in_range("alpha", alpha, 0.0, 90.0, closed="neither",
                                    interval="(0, 90) degrees")

    def call(self, y_true, y_pred):
        (embedding,) = self.head_values(y_pred)
        return angular_loss(y_true, embedding, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


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
register_recipe(LossRecipe(
    name="circle", head="embedding", balanced_batches=True,
    build_loss=lambda num_classes: _joint(CircleLoss()),
    summary="softmax CE + Circle loss (m=0.25, γ=256; Sun et al. 2020), P×K batches"))
register_recipe(LossRecipe(
    name="n_pairs", head="embedding", balanced_batches=True,
    build_loss=lambda num_classes: _joint(NPairsLoss(embedding_l2=0.002)),
    summary="softmax CE + multi-class N-pair loss (λ_L2=0.002; Sohn 2016), P×K batches"))
register_recipe(LossRecipe(
    name="lifted_structure", head="embedding", balanced_batches=True,
    build_loss=lambda num_classes: _joint(LiftedStructureLoss()),
    summary="softmax CE + smooth lifted structured loss (m=1; Oh Song et al. 2016), P×K "
            "batches"))
register_recipe(LossRecipe(
    name="angular", head="embedding", balanced_batches=True,
    build_loss=lambda num_classes: _joint(AngularLoss()),
    summary="softmax CE + angular loss, N-pair form (α=40°; Wang et al. 2017), P×K batches"))
