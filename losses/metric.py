"""Metric-learning losses: center, contrastive, triplet, triplet-constrained, and `JointLoss`.

They stand on `losses.distances` (pairwise distances) and `losses.mining` (in-batch pairs and
triplets from the labels), and take `y_true` as integer class labels (B,) / (B, 1) or one-hot.
What `y_pred` is depends on the head (losses/heads.py):

| loss                    | head                | reads from y_pred                              |
|-------------------------|---------------------|------------------------------------------------|
| CenterLoss              | "center"            | "distances" to the class centers (B, C)        |
| ContrastiveLoss         | "embedding"         | "embedding" (B, D), or a plain tensor (B, D)   |
| TripletLoss             | "embedding"         | "embedding" (B, D), or a plain tensor (B, D)   |
| TripletConstrainedLoss  | "softmax"           | the class scores (B, C), a plain tensor        |
| JointLoss               | as its metric loss  | "scores" for the cross-entropy + the metric's  |

A metric loss is rarely trained alone: the center loss is meaningless without a classifier,
and the papers pair contrastive (DeepID2) and triplet losses (Bag of Tricks) with softmax
cross-entropy. LossLab has one way to do that, `JointLoss(metric, metric_weight=λ)`:
`cross_entropy_weight·CE(scores) + λ·metric`, a single serializable `Loss` for
`model.compile(loss=...)`. The one line a user writes:

    model = zoo.create_model("lenet_embed", num_classes=10, head="embedding")
    model.compile(optimizer="adam", loss=JointLoss(TripletLoss(), metric_weight=0.1),
                  metrics=["accuracy"])
    model.fit(zoo.datasets.samplers.PKBatches(x, y, 8, 16))   # or fit(x, y): integer labels

(`TripletConstrainedLoss` is the exception that proves the rule: its paper defines the whole
objective R + α·L1 - β·L2 with the classification loss R inside, so it includes its own
cross-entropy and is used alone, on a plain softmax head.)

In-batch losses and Keras reductions. A Keras loss returns one value per sample; Keras then
averages them ("sum_over_batch_size") and applies `sample_weight` per sample. A pair or
triplet loss is an average over the valid pairs/triplets of the batch, whose number is not
the batch size. So each sample i gets the share of the terms where it is the *anchor*,
rescaled so that the plain mean over the batch is the paper's average:

    per_sample_i = (B / N_valid) · Σ_{terms with anchor i} loss_term

`sample_weight` then weights anchors (a zero weight removes the terms anchored at that
sample, not its appearances as a positive or negative of others). Samples without a valid
pair/triplet (a class alone in the batch) get 0; P×K batches avoid them
(`zoo.datasets.samplers.PKBatches`, recipes with `balanced_batches=True`).
"""

from __future__ import annotations

import keras
from keras import ops

from losses import mining as _mining
from losses.base import (Loss, as_float32, check_batch, check_bool, check_choice,
                         check_non_negative, check_positive, check_rank, class_inputs,
                         softmax_cross_entropy)
from losses.distances import (l2_normalize, pairwise_distances, pairwise_squared_distances,
                              safe_sqrt)
from losses.head_model import SCORES, HeadOutputLoss, head_keys, head_outputs
from losses.registry import LossRecipe, register_recipe

DISTANCE_WEIGHTED = "distance_weighted"
# "margin_<type>": `losses.mining.triplet_margin_mask` with that type_of_triplets
TRIPLET_MARGIN_MINING = tuple(f"margin_{t}" for t in _mining.TRIPLET_MARGIN_TYPES)
TRIPLET_MINING = ("batch_all", "batch_hard", "semi_hard") + TRIPLET_MARGIN_MINING + \
    (DISTANCE_WEIGHTED,)
TRIPLET_DISTANCES = ("euclidean", "squared")
CONTRASTIVE_MINING = (_mining.MINING_ALL, _mining.MINING_HARD, DISTANCE_WEIGHTED)
CONSTRAINED_FORMS = ("faithful", "hinge")
CONSTRAINED_FEATURES = ("sigmoid", "softmax", "logits")
CONSTRAINED_MINING = ("batch_hard", "batch_all")

_EMBEDDING_HEAD = "an 'embedding' head (losses.heads.EmbeddingHead) or a 'center' head"
_CENTER_HEAD = "a 'center' head (losses.heads.CenterHead)"

# --------------------------------------------------------------------------- shared pieces


class _EmbeddingLoss(HeadOutputLoss):
    """Reads the embedding: an embedding model's output, or the "embedding" of a head's dict."""

    head_keys = ("embedding",)
    tensor_key = "embedding"
    head_hint = _EMBEDDING_HEAD


def _embedding(y_pred, loss_name):
    """float32 embeddings (B, D): a plain tensor, or the "embedding" entry of a head dict."""
    if isinstance(y_pred, dict):
        (y_pred,) = head_outputs(y_pred, ("embedding",), loss_name, _EMBEDDING_HEAD)
    check_rank(y_pred, 2, "the embedding (y_pred)", "(batch, dim)")
    return as_float32(y_pred)


def _labels_and_embedding(y_true, y_pred, loss_name):
    embedding = _embedding(y_pred, loss_name)
    labels = _mining.class_ids(y_true)
    check_batch(labels, embedding, "the embedding")
    return labels, embedding


def _batch_size(x):
    return ops.cast(ops.shape(x)[0], "float32")


def _share(anchor_sums, count, batch_size):
    """Per-sample values (B,) whose plain mean is Σ anchor_sums / count (0 when count = 0)."""
    return anchor_sums * (batch_size / ops.maximum(ops.cast(count, "float32"), 1.0))


def _as_float(mask):
    return ops.cast(mask, "float32")


def _check_cutoffs(cutoff, nonzero_loss_cutoff):
    cutoff = check_positive("cutoff", cutoff)
    nonzero_loss_cutoff = check_positive("nonzero_loss_cutoff", nonzero_loss_cutoff)
    if not nonzero_loss_cutoff > cutoff:
        raise ValueError(f"nonzero_loss_cutoff must be larger than cutoff (distances are "
                         f"clipped at cutoff, so no negative would be left), got "
                         f"cutoff={cutoff!r}, nonzero_loss_cutoff={nonzero_loss_cutoff!r}")
    return cutoff, nonzero_loss_cutoff


def _distance_weights(embedding, labels, cutoff, nonzero_loss_cutoff):
    """`losses.mining.distance_weighted_weights` (B, B) on the directions of the embeddings:
    the Euclidean distances of the L2-normalised embeddings (no gradient), whatever distance
    the loss itself uses (the density q is that of the unit sphere)."""
    dim = embedding.shape[-1]
    if dim is None:
        raise ValueError("distance-weighted mining needs the embedding dimension to be known "
                         "statically (the density of distances on the unit sphere depends on "
                         "it)")
    unit = l2_normalize(ops.stop_gradient(embedding))
    return _mining.distance_weighted_weights(pairwise_distances(unit), labels, int(dim),
                                             cutoff, nonzero_loss_cutoff)


# --------------------------------------------------------------------------- center loss


def center_loss(y_true, distances):
    """Center loss per sample: half the squared distance to the center of the sample's class.

    Formula:
        loss_i = ½ d(x_i, c_{y_i})          (d = ‖x_i - c_{y_i}‖² for a Euclidean center head)

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        distances: Squared distances to every class center (B, C) — the "distances" of the
            "center" head.

    Returns:
        float32 tensor (B,).
    """
    _, distances, one_hot, _ = class_inputs(y_true, distances,
                                            "the distances to the class centers")
    return 0.5 * ops.sum(one_hot * distances, axis=-1)


@keras.saving.register_keras_serializable(package="losslab")
class CenterLoss(HeadOutputLoss):
    """Center loss (Wen et al. 2016): pulls each embedding toward its class center.

    Formula:
        loss = (1/B) Σ_i ½ ‖x_i - c_{y_i}‖²       (or ½ (x_i - c_y)ᵀ M (x_i - c_y))

    The centers are weights of the "center" head (`losses.heads.CenterHead`), learned by the
    gradient or moved by the paper's moving average (see the head's `center_update`); the
    loss reads the head's "distances" (B, C) and is stateless. Wen et al. average over the
    mini-batch as here (their Caffe layer divides by the batch size), so their λ carries
    over. Alone it collapses every embedding to one point; train it next to cross-entropy:

        model = zoo.create_model("lenet_embed", num_classes=10, head="center",
                                 head_kwargs={"center_update": "moving_average"})
        model.compile(loss=JointLoss(CenterLoss(), metric_weight=0.003), metrics=["accuracy"])

    Args:
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Loss name. Defaults to `"center_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Wen, Zhang, Li, Qiao, "A Discriminative Feature Learning Approach for Deep Face
        Recognition", ECCV 2016.
    """

    head_keys = ("distances",)
    head_hint = _CENTER_HEAD

    def __init__(self, reduction="sum_over_batch_size", name="center_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        (distances,) = self.head_values(y_pred)
        return center_loss(y_true, distances)


# --------------------------------------------------------------------------- contrastive loss


def contrastive_loss(y_true, y_pred, margin=1.0, mining="all", normalize=False, cutoff=0.5,
                     nonzero_loss_cutoff=1.4):
    """Contrastive loss over the pairs of a batch, per sample (the anchor's share).

    Formula:
        loss_ij = d_ij²                    for a same-class pair (i, j), i ≠ j
        loss_ij = max(0, margin - d_ij)²   for a pair of different classes
        loss_i = (B / N_pairs) Σ_{pairs (i, j) selected} loss_ij      (mean over i = pair mean)

    With mining="distance_weighted" (Wu et al. 2017) the pairs are weighted: each anchor i
    that has a positive and an allowed negative keeps its |P_i| positive pairs, and its
    negative pairs get the weights |P_i|·w_in (`losses.mining.distance_weighted_weights`,
    on the normalised embeddings), i.e. the expectation of drawing one negative per positive
    pair as the paper does; N_pairs = 2·Σ_i |P_i|.

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Embeddings (B, D), or a head dict with "embedding".
        margin: Margin m > 0 for the negative pairs. Defaults to `1.0`.
        mining: "all" pairs, "hard": per anchor its farthest positive and nearest
            negative (`losses.mining.contrastive_pairs`), or "distance_weighted".
            Defaults to `"all"`.
        normalize: L2-normalise the embeddings first. Defaults to `False`.
        cutoff, nonzero_loss_cutoff: of the "distance_weighted" mining. Default to `0.5`
            and `1.4`.

    Returns:
        float32 tensor (B,).
    """
    check_choice("mining", mining, CONTRASTIVE_MINING)
    labels, embedding = _labels_and_embedding(y_true, y_pred, "ContrastiveLoss")
    if normalize:
        embedding = l2_normalize(embedding)
    squared = pairwise_squared_distances(embedding)
    distance = pairwise_distances(embedding)
    if mining == DISTANCE_WEIGHTED:
        weights = _distance_weights(embedding, labels, cutoff, nonzero_loss_cutoff)
        has_negative = ops.any(weights > 0, axis=1, keepdims=True)
        positives = _as_float(ops.logical_and(_mining.positive_mask(labels), has_negative))
        negatives = ops.sum(positives, axis=1, keepdims=True) * weights
        terms = positives * squared + negatives * ops.square(ops.relu(margin - distance))
        count = 2.0 * ops.sum(positives)
        return _nan_unless_finite(_share(ops.sum(terms, axis=1), count,
                                         _batch_size(embedding)), embedding)
    return _contrastive_pairs_loss(squared, distance, labels, None, margin, mining)


def _contrastive_pairs_loss(squared, distance, labels, masks, margin, mining):
    positives, negatives = _mining.contrastive_pairs(distance, labels, mining, masks)
    positives, negatives = _as_float(positives), _as_float(negatives)
    terms = positives * squared + negatives * ops.square(ops.relu(margin - distance))
    count = ops.sum(positives) + ops.sum(negatives)
    return _share(ops.sum(terms, axis=1), count, _batch_size(squared))


def contrastive_reference_loss(embedding, reference, masks, margin=1.0, mining="all",
                               normalize=False):
    """Contrastive loss of a batch's anchors against a reference set (e.g. a cross-batch
    memory), per anchor; `contrastive_loss`'s formula over the pairs (i, k), k in the
    reference set.

    Args:
        embedding: float32 (B, D), the anchors.
        reference: float32 (R, D), the reference set (the batch first, see
            `losses.mining.reference_masks`).
        masks: (positives, negatives) bool (B, R).
        margin, mining ("all" or "hard"), normalize: as `contrastive_loss`.

    Returns:
        float32 tensor (B,) whose mean is the mean over the selected pairs.
    """
    check_choice("mining", mining, (_mining.MINING_ALL, _mining.MINING_HARD))
    if normalize:
        embedding, reference = l2_normalize(embedding), l2_normalize(reference)
    squared = pairwise_squared_distances(embedding, reference)
    per_sample = _contrastive_pairs_loss(squared, safe_sqrt(squared), None, masks, margin,
                                         mining)
    return _nan_unless_finite(per_sample, embedding)


@keras.saving.register_keras_serializable(package="losslab")
class ContrastiveLoss(_EmbeddingLoss):
    """Contrastive loss (Hadsell, Chopra, LeCun 2006) on pairs formed inside the batch.

    Formula:
        loss = mean over pairs of  y·d² + (1 - y)·max(0, m - d)²

    with y = 1 for a same-class pair, d the Euclidean distance of the two embeddings. Every
    ordered pair i ≠ j of the batch is used ("all"), or per anchor only its hardest positive
    and negative ("hard"), or every positive pair with the negatives weighted by the inverse
    density of their distance ("distance_weighted", Wu et al. 2017: the expectation of the
    paper's sampling of one negative per positive pair, see `contrastive_loss`; the weights
    are computed on the L2-normalised embeddings whatever `normalize`, and the paper's
    setting is `normalize=True`). The ½ convention: Hadsell et al. write ½·d² and
    ½·max(0, m - d)²; this loss follows TF-Addons (`tfa.losses.contrastive_loss`) and
    pytorch-metric-learning without the ½, i.e. twice the paper's value (halve λ or the
    learning rate to match). The positive term uses d² directly (smooth at d = 0); the
    negative term uses a safe square root, so coincident embeddings give finite values and
    gradients — but a negative pair at exactly the same point gets no gradient to separate
    it.

    Expects `y_pred` = embeddings (B, D) or the dict of the "embedding" head; `y_true` =
    integer or one-hot labels. With cross-entropy (DeepID2's identification + verification):

        model.compile(loss=JointLoss(ContrastiveLoss(), metric_weight=0.05))

    Args:
        margin: Margin m > 0 of the negative pairs. Defaults to `1.0`.
        mining: "all", "hard" (see `losses.mining.contrastive_pairs`) or
            "distance_weighted" (`losses.mining.distance_weighted_weights`). Defaults to
            `"all"`.
        normalize: L2-normalise the embeddings first. Defaults to `False` (the paper).
        cutoff: "distance_weighted" only: distances are clipped below at it. Defaults to
            `0.5` (Wu et al.'s).
        nonzero_loss_cutoff: "distance_weighted" only: negatives at this distance (of the
            normalised embeddings) or farther get weight 0. Defaults to `1.4` (PML's).
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Loss name. Defaults to `"contrastive_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an Invariant
        Mapping", CVPR 2006.
    """

    def __init__(self, margin=1.0, mining="all", normalize=False, cutoff=0.5,
                 nonzero_loss_cutoff=1.4, reduction="sum_over_batch_size",
                 name="contrastive_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_positive("margin", margin)
        self.mining = check_choice("mining", mining, CONTRASTIVE_MINING)
        self.normalize = check_bool("normalize", normalize)
        self.cutoff, self.nonzero_loss_cutoff = _check_cutoffs(cutoff, nonzero_loss_cutoff)

    def call(self, y_true, y_pred):
        (embedding,) = self.head_values(y_pred)
        return contrastive_loss(y_true, embedding, self.margin, self.mining, self.normalize,
                                self.cutoff, self.nonzero_loss_cutoff)

    def check_reference_form(self):
        """ValueError unless this configuration has a reference-set form (mining "all" or
        "hard": the distance-weighted expectation is defined within a batch)."""
        if self.mining not in (_mining.MINING_ALL, _mining.MINING_HARD):
            raise ValueError(f"CrossBatchMemoryLoss needs ContrastiveLoss(mining='all' or "
                             f"'hard'), got mining={self.mining!r}")

    def reference_loss(self, embedding, reference, masks):
        """Per-anchor values against a reference set (`contrastive_reference_loss`); what
        `losses.memory.CrossBatchMemoryLoss` calls."""
        self.check_reference_form()
        return contrastive_reference_loss(embedding, reference, masks, self.margin,
                                          self.mining, self.normalize)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "mining": self.mining,
                "normalize": self.normalize, "cutoff": self.cutoff,
                "nonzero_loss_cutoff": self.nonzero_loss_cutoff}


# --------------------------------------------------------------------------- triplet loss


def triplet_loss(y_true, y_pred, margin=0.3, mining="batch_hard", distance="euclidean",
                 normalize=False, soft_margin=False, mining_margin=None, cutoff=0.5,
                 nonzero_loss_cutoff=1.4):
    """Triplet loss over in-batch triplets, per sample (the anchor's share).

    Formula:
        ℓ(a, p, n) = max(0, d(a, p) - d(a, n) + margin)      or  log(1 + e^{d(a,p) - d(a,n)})
        batch_all:  mean of ℓ over the valid triplets with ℓ > 0            (Hermans' BA≠0)
        batch_hard: mean over anchors of ℓ(a, farthest p, nearest n)        (Hermans' BH)
        semi_hard:  mean over positive pairs of ℓ(a, p, semi-hard n)        (FaceNet)
        margin_<type>: mean of ℓ over the triplets of `losses.mining.triplet_margin_mask`
                    (type "all", "hard", "semihard" or "easy", margin `mining_margin`)
        distance_weighted: mean over positive pairs (a, p) of Σ_n w_an ℓ(a, p, n), w from
                    `losses.mining.distance_weighted_weights` on the normalised embeddings
                    (the expectation of drawing n as Wu et al. 2017); pairs whose anchor has
                    no allowed negative are left out
        loss_i = (B / N) Σ_{terms anchored at i} ℓ

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Embeddings (B, D), or a head dict with "embedding".
        margin: Margin >= 0 (unused with `soft_margin`). Defaults to `0.3`.
        mining: one of `TRIPLET_MINING`. Defaults to `"batch_hard"`.
        distance: "euclidean" or "squared" (squared Euclidean). Defaults to `"euclidean"`.
        normalize: L2-normalise the embeddings first. Defaults to `False`.
        soft_margin: Use the soft margin log(1 + e^x). Defaults to `False`.
        mining_margin: The margin of the "margin_*" minings, on the loss's distance; None
            uses `margin`. Defaults to `None`.
        cutoff, nonzero_loss_cutoff: of the "distance_weighted" mining. Default to `0.5`
            and `1.4`.

    Returns:
        float32 tensor (B,).
    """
    check_choice("mining", mining, TRIPLET_MINING)
    check_choice("distance", distance, TRIPLET_DISTANCES)
    labels, embedding = _labels_and_embedding(y_true, y_pred, "TripletLoss")
    if normalize:
        embedding = l2_normalize(embedding)
    d = pairwise_distances(embedding, squared=distance == "squared")
    batch_size = _batch_size(embedding)

    def hinge(difference):  # difference = d(a, p) - d(a, n)
        return ops.softplus(difference) if soft_margin else ops.relu(difference + margin)

    if mining == "batch_all":
        valid = _as_float(_mining.triplet_mask(labels))
        losses = valid * hinge(ops.expand_dims(d, 2) - ops.expand_dims(d, 1))   # [a, p, n]
        count = ops.sum(_as_float(losses > 1e-16))
        return _nan_unless_finite(_share(ops.sum(losses, axis=(1, 2)), count, batch_size),
                                  embedding)
    if mining in TRIPLET_MARGIN_MINING:
        selected = _as_float(_mining.triplet_margin_mask(
            d, labels, margin if mining_margin is None else mining_margin,
            mining[len("margin_"):]))
        losses = selected * hinge(ops.expand_dims(d, 2) - ops.expand_dims(d, 1))  # [a, p, n]
        return _nan_unless_finite(_share(ops.sum(losses, axis=(1, 2)), ops.sum(selected),
                                         batch_size), embedding)
    if mining == DISTANCE_WEIGHTED:
        weights = _distance_weights(embedding, labels, cutoff, nonzero_loss_cutoff)  # [a, n]
        valid = _as_float(ops.logical_and(_mining.positive_mask(labels),
                                          ops.any(weights > 0, axis=1, keepdims=True)))
        expected = ops.sum(ops.expand_dims(weights, 1)
                           * hinge(ops.expand_dims(d, 2) - ops.expand_dims(d, 1)), axis=2)
        losses = valid * expected                                                     # [a, p]
        return _nan_unless_finite(_share(ops.sum(losses, axis=1), ops.sum(valid), batch_size),
                                  embedding)
    if mining == "batch_hard":
        return _nan_unless_finite(_batch_hard_loss(d, labels, None, hinge), embedding)
    negative, valid, _ = _mining.semi_hard_negatives(d, labels)
    valid = _as_float(valid)
    losses = valid * hinge(d - _mining.gather_columns(d, negative))                  # [a, p]
    return _nan_unless_finite(_share(ops.sum(losses, axis=1), ops.sum(valid), batch_size),
                              embedding)


def _batch_hard_loss(d, labels, masks, hinge):
    positive, negative, valid = _mining.batch_hard(d, labels, masks)
    valid = _as_float(valid)
    losses = valid * hinge(_mining.gather_columns(d, positive)
                           - _mining.gather_columns(d, negative))
    return _share(losses, ops.sum(valid), _batch_size(d))


def triplet_reference_loss(embedding, reference, masks, margin=0.3, distance="euclidean",
                           normalize=False, soft_margin=False):
    """Batch-hard triplet loss of a batch's anchors against a reference set (e.g. a
    cross-batch memory): per anchor a, ℓ(a, p*, n*) with p* its farthest positive and n* its
    nearest negative among the references (`triplet_loss`, mining="batch_hard").

    Args:
        embedding: float32 (B, D), the anchors.
        reference: float32 (R, D), the reference set (the batch first, see
            `losses.mining.reference_masks`).
        masks: (positives, negatives) bool (B, R).
        margin, distance, normalize, soft_margin: as `triplet_loss`.

    Returns:
        float32 tensor (B,) whose mean is the mean over the anchors with a positive and a
        negative.
    """
    check_choice("distance", distance, TRIPLET_DISTANCES)
    if normalize:
        embedding, reference = l2_normalize(embedding), l2_normalize(reference)
    d = pairwise_distances(embedding, reference, squared=distance == "squared")

    def hinge(difference):
        return ops.softplus(difference) if soft_margin else ops.relu(difference + margin)

    return _nan_unless_finite(_batch_hard_loss(d, None, masks, hinge), embedding)


def _nan_unless_finite(per_sample, embedding):
    """`per_sample` made NaN when any embedding value is NaN or inf: mining (arg-min/max,
    a hinge's max(0, ·)) would otherwise pass over the bad distances and return a finite
    loss whose gradient is NaN."""
    finite = ops.all(ops.isfinite(embedding))
    return per_sample + ops.where(finite, 0.0, float("nan"))


@keras.saving.register_keras_serializable(package="losslab")
class TripletLoss(_EmbeddingLoss):
    """Triplet loss with in-batch mining (FaceNet; Hermans, Beyer, Leibe 2017).

    Formula:
        loss = mean over mined triplets of max(0, d(a, p) - d(a, n) + margin)
        (soft margin: log(1 + exp(d(a, p) - d(a, n))))

    Mining (`losses.mining`), from the labels of the batch:
    - "batch_hard" (Hermans et al.): per anchor, its farthest positive and nearest
      negative; the mean over the anchors that have both.
    - "batch_all": every valid triplet; the mean over those with a positive loss, as
      Hermans et al.'s "BA≠0" (averaging over all triplets would dilute the few active
      ones with the many already satisfied, and the loss would fade as training goes).
    - "semi_hard" (FaceNet): per positive pair, the nearest negative farther than the
      positive (the hardest semi-hard one), else the farthest negative (TF-Addons'
      fallback, see `losses.mining.semi_hard_negatives`); the mean over positive pairs.
    - "margin_all", "margin_hard", "margin_semihard", "margin_easy" (pytorch-metric-learning's
      `TripletMarginMiner`, `losses.mining.triplet_margin_mask`): every valid triplet with
      t = d(a, n) - d(a, p) <= m ("all"), t <= 0 ("hard"), 0 < t <= m ("semihard") or
      t > m ("easy"), m = `mining_margin` (None: the loss's `margin`); the mean over the
      selected triplets. With m = margin, "all" keeps the triplets with ℓ >= 0 of which
      "batch_all" keeps those with ℓ > 0: they differ only in triplets at ℓ = 0 exactly
      (PML's TripletMarginLoss averages over ℓ > 0 by default). "margin_easy" with
      m >= margin selects only zero-loss triplets of the hinge (useful with `soft_margin`).
    - "distance_weighted" (Wu et al. 2017): every positive pair, with the expectation over
      its negative drawn with probability ∝ q(d)⁻¹ (`losses.mining.distance_weighted_weights`,
      computed on the L2-normalised embeddings whatever `normalize`; `cutoff`,
      `nonzero_loss_cutoff`); the mean over the positive pairs whose anchor has an allowed
      negative. Deterministic: no sampling noise (for sampled negatives, see
      `losses.mining.distance_weighted_negatives`).

    Expects `y_pred` = embeddings (B, D) or the dict of the "embedding" head; `y_true` =
    integer or one-hot labels. Needs several samples per class in each batch (P×K batches,
    `zoo.datasets.samplers.PKBatches`). With cross-entropy (as in Luo et al.'s "Bag of
    Tricks", ID loss + batch-hard triplet with margin 0.3, weights 1:1):

        model.compile(loss=JointLoss(TripletLoss(), metric_weight=1.0))

    (With a 2-D embedding, λ = 1 collapsed LeNet on MNIST early in training — one class
    predicted for every image — so the "triplet" recipe uses λ = 0.1.)

    The defaults are those of Hermans et al. / Luo et al.: batch-hard mining, plain
    (non-squared) Euclidean distances on unnormalised embeddings. FaceNet used squared
    distances on L2-normalised embeddings with margin 0.2:
    `TripletLoss(margin=0.2, mining="semi_hard", distance="squared", normalize=True)`.

    Args:
        margin: Margin >= 0 (ignored when `soft_margin=True`). Defaults to `0.3`.
        mining: One of `TRIPLET_MINING`: "batch_all", "batch_hard", "semi_hard",
            "margin_all", "margin_hard", "margin_semihard", "margin_easy" or
            "distance_weighted". Defaults to `"batch_hard"`.
        distance: "euclidean" or "squared". Defaults to `"euclidean"`.
        normalize: L2-normalise the embeddings first. Defaults to `False`.
        soft_margin: Use log(1 + e^x) instead of the hinge. Defaults to `False`.
        mining_margin: Margin >= 0 of the "margin_*" minings (on `distance`); None uses `margin`.
            Defaults to `None`.
        cutoff: "distance_weighted" only: distances are clipped below at it. Defaults to
            `0.5`.
        nonzero_loss_cutoff: "distance_weighted" only: negatives at this distance (of the
            normalised embeddings) or farther get weight 0. Defaults to `1.4`.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Loss name. Defaults to `"triplet_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face Recognition
        and Clustering", CVPR 2015; Hermans, Beyer, Leibe, "In Defense of the Triplet Loss
        for Person Re-Identification", 2017; Luo et al., "Bag of Tricks and A Strong
        Baseline for Deep Person Re-identification", CVPRW 2019.
    """

    def __init__(self, margin=0.3, mining="batch_hard", distance="euclidean", normalize=False,
                 soft_margin=False, mining_margin=None, cutoff=0.5, nonzero_loss_cutoff=1.4,
                 reduction="sum_over_batch_size", name="triplet_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = check_non_negative("margin", margin)
        self.mining = check_choice("mining", mining, TRIPLET_MINING)
        self.distance = check_choice("distance", distance, TRIPLET_DISTANCES)
        self.normalize = check_bool("normalize", normalize)
        self.soft_margin = check_bool("soft_margin", soft_margin)
        self.mining_margin = (None if mining_margin is None
                              else check_non_negative("mining_margin", mining_margin))
        self.cutoff, self.nonzero_loss_cutoff = _check_cutoffs(cutoff, nonzero_loss_cutoff)

    def call(self, y_true, y_pred):
        (embedding,) = self.head_values(y_pred)
        return triplet_loss(y_true, embedding, self.margin, self.mining, self.distance,
                            self.normalize, self.soft_margin, self.mining_margin, self.cutoff,
                            self.nonzero_loss_cutoff)

    def check_reference_form(self):
        """ValueError unless this configuration has a reference-set form: batch-hard mining
        only (the other minings' (B, R, R) triplets do not fit a memory of thousands)."""
        if self.mining != "batch_hard":
            raise ValueError(f"CrossBatchMemoryLoss needs TripletLoss(mining='batch_hard') "
                             f"(the other minings' (B, R, R) triplets do not fit a memory), "
                             f"got mining={self.mining!r}")

    def reference_loss(self, embedding, reference, masks):
        """Per-anchor values against a reference set (`triplet_reference_loss`); what
        `losses.memory.CrossBatchMemoryLoss` calls."""
        self.check_reference_form()
        return triplet_reference_loss(embedding, reference, masks, self.margin, self.distance,
                                      self.normalize, self.soft_margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "mining": self.mining,
                "distance": self.distance, "normalize": self.normalize,
                "soft_margin": self.soft_margin, "mining_margin": self.mining_margin,
                "cutoff": self.cutoff, "nonzero_loss_cutoff": self.nonzero_loss_cutoff}


# --------------------------------------------------------------------------- triplet-constrained


def _output_features(scores, features):
    if features == "sigmoid":
        return ops.sigmoid(scores)
    if features == "softmax":
        return ops.softmax(scores, axis=-1)
    return scores


def triplet_constrained_loss(y_true, y_pred, alpha=0.1, beta=0.1, form="faithful", margin=0.05,
                             features="sigmoid", mining="batch_hard"):
    """Triplet-constrained CNN objective (Xu et al. 2019) per sample.

    Formula (p = σ(scores) by default; pairs and negatives mined in the batch):
        R_i  = -log softmax(scores_i)_{y_i}
        L1   = ½‖p_a - p_p‖²                                  (a, p of the same class)
        L2   = ½·min(‖p_a - p_n‖², ‖p_p - p_n‖²)              (n of another class)
        faithful: t = α·L1 - β·L2          hinge: t = max(0, margin + α·L1 - β·L2)
        loss_i = R_i + (B / N) Σ_{triplets anchored at i} t

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Class scores (logits) (B, C).
        alpha: α >= 0, weight of the same-class term L1. Defaults to `0.1`.
        beta: β >= 0, weight of the other-class term L2. Defaults to `0.1`.
        form: "faithful" or "hinge". Defaults to `"faithful"`.
        margin: Margin >= 0 of the "hinge" form. Defaults to `0.05`.
        features: p = "sigmoid", "softmax" or "logits" of the scores ("logits" only with
            form="hinge"). Defaults to `"sigmoid"`.
        mining: "batch_hard" or "batch_all". Defaults to `"batch_hard"`.

    Returns:
        float32 tensor (B,).
    """
    check_choice("form", form, CONSTRAINED_FORMS)
    check_choice("features", features, CONSTRAINED_FEATURES)
    check_choice("mining", mining, CONSTRAINED_MINING)
    if form == "faithful" and features == "logits":
        raise ValueError("form='faithful' needs bounded features ('sigmoid' or 'softmax'): "
                         "with features='logits' the term -β·L2 is unbounded below; "
                         "use form='hinge' for unbounded features")
    labels, scores, one_hot, _ = class_inputs(y_true, y_pred, "the class scores (y_pred)")
    cross_entropy = softmax_cross_entropy(one_hot, scores)
    p = _output_features(scores, features)
    d = pairwise_squared_distances(p)
    negatives = _mining.negative_mask(labels)

    def constraint(l1, l2):
        value = alpha * l1 - beta * l2
        return value if form == "faithful" else ops.relu(margin + value)

    if mining == "batch_hard":
        positive, _, valid = _mining.batch_hard(d, labels)
        l1 = 0.5 * _mining.gather_columns(d, positive)
        # [a, n] = min(‖p_a - p_n‖², ‖p_p(a) - p_n‖²): the negative nearest to either end.
        nearest = ops.minimum(d, ops.take(d, positive, axis=0))
        negative = _mining.masked_argmin(nearest, negatives)
        l2 = 0.5 * _mining.gather_columns(nearest, negative)
        valid = _as_float(valid)
        terms, count = valid * constraint(l1, l2), ops.sum(valid)
    else:
        valid = _as_float(_mining.triplet_mask(labels))
        l1 = 0.5 * ops.expand_dims(d, 2)                                       # [a, p, .]
        l2 = 0.5 * ops.minimum(ops.expand_dims(d, 1), ops.expand_dims(d, 0))    # [a, p, n]
        terms, count = ops.sum(valid * constraint(l1, l2), axis=(1, 2)), ops.sum(valid)
    return cross_entropy + _share(terms, count, _batch_size(scores))


@keras.saving.register_keras_serializable(package="losslab")
class TripletConstrainedLoss(Loss):
    """Triplet-constrained CNN loss (Xu et al. 2019): softmax CE plus a triplet constraint.

    Formula:
        L = R + α·L1 - β·L2                                               form="faithful"
        L = R + max(0, margin + α·L1 - β·L2)                              form="hinge"
        R = softmax cross-entropy on the scores,  p = σ(scores) ∈ [0, 1]^C
        L1 = ½‖p - p′‖²  (p, p′ same class),   L2 = ½·min(‖p - n‖², ‖p′ - n‖²)  (n other class)

    p are the network's output features: in the paper the bounded sigmoid outputs of its
    last layer, hence σ(scores) by default ("softmax" also bounded; "logits" only for
    "hinge"). It reads the scores only — a plain tensor from the "softmax" head (e.g.
    `zoo.create_model("lenet_tcnn")`), no `HeadModel` needed — and, being the paper's whole
    objective, includes its own cross-entropy R: use it alone, not inside `JointLoss`.

    Pairs and negatives are formed inside the batch (P×K batches), per anchor a:
    - "batch_hard" (default): p′ = the farthest same-class sample from a (largest L1), and
      n = the other-class sample nearest to a or p′ (smallest L2): one triplet per anchor,
      averaged over the anchors that have both;
    - "batch_all": every valid triplet (a, p′, n), averaged over them all.

    Boundedness: with form="faithful", -β·L2 rewards pushing classes apart without limit
    for unbounded features; on sigmoid features ‖p - n‖² <= C (softmax: <= 2), so
    L >= -β·C/2 (softmax: -β), and logits are refused. With form="hinge", the constraint
    term is >= 0 for any features, so L >= 0, and it stops acting once
    β·L2 >= α·L1 + margin.

    α = β = 0.1 is our default, not a value from the paper: the constraint stays a
    regulariser next to R (α·L1 <= 0.05·C, β·L2 <= 0.05·C on sigmoid features). With
    α = β = 1 and "batch_hard" on MNIST (`lenet_tcnn`), accuracy stayed near plain CE but
    the constraint collapsed: every sigmoid output saturated to the same corner and both
    L1 and L2 went to 0. "batch_all", which averages over every triplet, kept the classes
    apart there: use it for large α, β. The hinge margin 0.05 with α = β = 0.1
    asks that ‖p - n‖² >= ‖p - p′‖² + 1 (one-hot-like outputs of two classes are 2 apart);
    a margin larger than β·max L2 = 0.05·C would keep the hinge always active, i.e. the
    faithful gradient plus a constant.

    Args:
        alpha: α >= 0, weight of the same-class term. Defaults to `0.1`.
        beta: β >= 0, weight of the other-class term. Defaults to `0.1`.
        form: "faithful" or "hinge". Defaults to `"faithful"`.
        margin: Margin >= 0 of the "hinge" form (unused by "faithful"). Defaults to `0.05`.
        features: "sigmoid", "softmax" or "logits". Defaults to `"sigmoid"`.
        mining: "batch_hard" or "batch_all". Defaults to `"batch_hard"`.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Loss name. Defaults to `"triplet_constrained_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Xu et al., "triplet-constrained convolutional neural network", 2019 (the model:
        `zoo.models.lenet.lenet_tcnn`).
    """

    def __init__(self, alpha=0.1, beta=0.1, form="faithful", margin=0.05, features="sigmoid",
                 mining="batch_hard", reduction="sum_over_batch_size",
                 name="triplet_constrained_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = check_non_negative("alpha", alpha)
        self.beta = check_non_negative("beta", beta)
        self.form = check_choice("form", form, CONSTRAINED_FORMS)
        self.margin = check_non_negative("margin", margin)
        self.features = check_choice("features", features, CONSTRAINED_FEATURES)
        self.mining = check_choice("mining", mining, CONSTRAINED_MINING)
        if self.form == "faithful" and self.features == "logits":
            raise ValueError("form='faithful' needs bounded features ('sigmoid' or "
                             "'softmax'); use form='hinge' with features='logits'")

    def call(self, y_true, y_pred):
        if isinstance(y_pred, dict):
            (y_pred,) = head_outputs(y_pred, (SCORES,), "TripletConstrainedLoss",
                                     "a head with class scores")
        return triplet_constrained_loss(y_true, y_pred, self.alpha, self.beta, self.form,
                                        self.margin, self.features, self.mining)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta,
                "form": self.form, "margin": self.margin, "features": self.features,
                "mining": self.mining}


# --------------------------------------------------------------------------- JointLoss


@keras.saving.register_keras_serializable(package="losslab")
class JointLoss(Loss):
    """Softmax cross-entropy on the scores plus a weighted metric loss: CE + λ·metric.

    Formula:
        loss_i = cross_entropy_weight·CE(scores_i, y_i) + metric_weight·metric_i

    The one way LossLab trains a metric loss next to a classifier (center loss, contrastive
    loss as in DeepID2, triplet loss as in Bag of Tricks). `metric` is any Keras loss; its
    per-sample values are used (its own reduction is ignored: this loss reduces the sum).
    When the metric reads head outputs (its `head_keys`), this loss reads "scores" plus
    those, so a `HeadModel` hands it the head's dict; otherwise it gets the scores tensor
    and passes the same tensor to the metric. It serializes with the nested loss
    (`keras.saving.serialize_keras_object`), so `model.save` / `load_model(safe_mode=True)`
    restore it. One line:

        model.compile(loss=JointLoss(CenterLoss(), metric_weight=0.003), metrics=["accuracy"])

    Args:
        metric: The metric loss (a `keras.losses.Loss`, or its serialized dict).
        metric_weight: λ >= 0. Defaults to `1.0`.
        cross_entropy_weight: Weight >= 0 of the cross-entropy. Defaults to `1.0`.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Loss name. Defaults to `"joint_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Sun, Wang, Tang, "Deep Learning Face Representation by Joint
        Identification-Verification", NeurIPS 2014 (CE + λ·contrastive); Wen et al.,
        ECCV 2016 (CE + λ·center).
    """

    def __init__(self, metric, metric_weight=1.0, cross_entropy_weight=1.0,
                 reduction="sum_over_batch_size", name="joint_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(metric, dict):
            metric = keras.saving.deserialize_keras_object(metric)
        if not isinstance(metric, keras.losses.Loss):
            raise ValueError(f"metric must be a keras.losses.Loss instance, got "
                             f"{type(metric).__name__}: {metric!r}")
        if isinstance(metric, JointLoss):
            raise ValueError("metric must not itself be a JointLoss (add the terms in one)")
        self.metric = metric
        self.metric_weight = check_non_negative("metric_weight", metric_weight)
        self.cross_entropy_weight = check_non_negative("cross_entropy_weight",
                                                       cross_entropy_weight)

    @property
    def head_keys(self):
        keys = head_keys(self.metric)
        return (SCORES,) + tuple(k for k in keys if k != SCORES) if keys else ()

    def call(self, y_true, y_pred):
        if isinstance(y_pred, dict):
            (scores,) = head_outputs(y_pred, (SCORES,), "JointLoss",
                                     "a head with class scores, i.e. a HeadModel")
            metric_input = y_pred if head_keys(self.metric) else scores
        else:
            scores = metric_input = y_pred
        _, scores, one_hot, _ = class_inputs(y_true, scores, "the class scores (y_pred)")
        total = self.cross_entropy_weight * softmax_cross_entropy(one_hot, scores)
        metric = ops.cast(self.metric.call(y_true, metric_input), "float32")
        return total + self.metric_weight * metric

    def get_config(self):
        return {**super().get_config(),
                "metric": keras.saving.serialize_keras_object(self.metric),
                "metric_weight": self.metric_weight,
                "cross_entropy_weight": self.cross_entropy_weight}


# --------------------------------------------------------------------------- recipes
# λ defaults. Checked on MNIST with `lenet_embed` (2-D embedding, the `zoo.train` default),
# 8,000 training images, 3 epochs, batch 64, Adam 2e-3, one seed — a smoke-level comparison
# (softmax alone: 90.0 % test accuracy), not a benchmark:
# - center: the paper's λ = 0.003 and α = 0.5 with the moving-average centers: 90.0 %.
#   Larger λ hurt in this short run (moving average λ = 0.01: 81.8 %, 0.1: 70.8 %; gradient
#   centers λ = 0.01: 75.6 %, 0.1: 65.9 % — under Adam the centers move only ~lr per step).
# - contrastive: DeepID2's λ = 0.05 (identification + verification), margin 1: 85.5 %.
# - triplet: batch-hard, margin 0.3 (Bag of Tricks), λ = 0.1: 81.7 %. Bag of Tricks' λ = 1
#   collapsed the 2-D embedding (9.6 %; also with normalised embeddings, 19.9 %); semi-hard
#   mining at λ = 1 gave 82.6 %. With a wider embedding (`--embedding-dim 64`) λ = 1 is the
#   usual choice.
# - triplet_constrained (`lenet_tcnn`, its sigmoid LeNet): α = β = 0.1: 73.2 % against 74.4 %
#   for plain softmax after 3 epochs (α = β = 1: 74.3 %).

register_recipe(LossRecipe(
    name="center", head="center", head_kwargs={"center_update": "moving_average", "alpha": 0.5},
    build_loss=lambda num_classes: JointLoss(CenterLoss(), metric_weight=0.003),
    summary="softmax CE + 0.003·center loss, moving-average centers α=0.5 (Wen et al. 2016)"))
register_recipe(LossRecipe(
    name="contrastive", head="embedding", balanced_batches=True,
    build_loss=lambda num_classes: JointLoss(ContrastiveLoss(margin=1.0), metric_weight=0.05),
    summary="softmax CE + 0.05·contrastive (m=1, all in-batch pairs; DeepID2's λ)"))
register_recipe(LossRecipe(
    name="triplet", head="embedding", balanced_batches=True,
    build_loss=lambda num_classes: JointLoss(
        TripletLoss(margin=0.3, mining="batch_hard"), metric_weight=0.1),
    summary="softmax CE + 0.1·batch-hard triplet (m=0.3, Euclidean, P×K batches)"))
register_recipe(LossRecipe(
    name="triplet_constrained", head="softmax", balanced_batches=True,
    build_loss=lambda num_classes: TripletConstrainedLoss(),
    summary="triplet-constrained CNN: CE + 0.1·L1 - 0.1·L2 on sigmoid outputs, batch-hard"))
