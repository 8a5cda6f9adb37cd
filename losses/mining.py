"""In-batch pair and triplet mining from labels: the floor between distances and losses.

Every miner works on one batch: integer class labels (B,) and, where it ranks candidates, a
distance matrix (B, B) from `losses.distances` (larger = farther). It returns boolean masks or
int32 indices of static shape — (B, B), (B, B, B), (B,) — never a list of variable length, so
it runs under `jit_compile` / `jax.jit`. Mining only *selects*; it carries no gradient. A loss
gathers the selected distances from its own (differentiable) distance matrix with
`gather_columns`, so the gradient flows through exactly the chosen pairs.

| miner                 | selects                                         | used by            |
|-----------------------|-------------------------------------------------|--------------------|
| `positive_mask`       | pairs (i, j), i ≠ j, same class                 | contrastive        |
| `negative_mask`       | pairs (i, j) of different classes               | contrastive        |
| `triplet_mask`        | all valid triplets (a, p, n)                    | batch-all triplet  |
| `batch_hard`          | per anchor: farthest positive, nearest negative | batch-hard triplet |
| `semi_hard_negatives` | per positive pair: FaceNet's semi-hard negative | semi-hard triplet  |
| `contrastive_pairs`   | all pairs, or per anchor its two hardest pairs  | contrastive        |
| `multi_similarity_pairs` | MS mining: pairs harder than the anchor's easiest of the other kind ± ε | Multi-Similarity |
| `pair_margin_pairs`   | positives farther than a margin, negatives nearer than one | any pair loss |
| `triplet_margin_mask` | triplets by d_an − d_ap against a margin (PML's) | margin_* triplet |
| `distance_weighted_weights` | per anchor, negatives weighted ∝ q(d)⁻¹ (Wu et al.) | any |
| `distance_weighted_negatives` | negatives sampled with those weights (seeded) | any |

Anchors (or pairs) with nothing to select — a class alone in the batch, or a batch of one
class — are reported as not valid; losses leave them out of their averages. P×K batches
(`zoo.datasets.samplers.PKBatches`) make every anchor valid.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from losses.base import sparse_labels, static_shape

MINING_ALL = "all"
MINING_HARD = "hard"


def class_ids(y_true, what="y_true"):
    """Class labels of a batch as int32 (B,): integer (B,) / (B, 1), or one-hot (B, C > 1).

    Metric losses compare labels only for equality, so any integers are accepted (no class
    count is needed); non-integer values raise a `ValueError` when they are concrete.
    """
    return sparse_labels(y_true, None, what)


def _not_diagonal(labels):
    index = ops.arange(ops.shape(labels)[0])
    return ops.not_equal(ops.expand_dims(index, 1), ops.expand_dims(index, 0))


def same_class_mask(labels):
    """(B, B) bool: labels_i == labels_j (the diagonal included)."""
    labels = ops.cast(labels, "int32")
    return ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))


def positive_mask(labels):
    """(B, B) bool: i ≠ j and labels_i == labels_j — the positive pairs."""
    return ops.logical_and(same_class_mask(labels), _not_diagonal(labels))


def negative_mask(labels):
    """(B, B) bool: labels_i ≠ labels_j — the negative pairs."""
    return ops.logical_not(same_class_mask(labels))


def reference_masks(labels, reference_labels, reference_valid):
    """Positive and negative pairs of a batch against a reference set that starts with it.

    The reference set is the batch itself (its first B entries) followed by R - B other
    entries, e.g. a cross-batch memory (`losses.memory`), of which only the `reference_valid`
    ones count. Pair (i, k) is positive when y_i = y_k and k is not i itself (k ≠ i among the
    first B), negative when y_i ≠ y_k; both need k valid.

    Args:
        labels: int (B,) the batch's labels.
        reference_labels: int (R,) the reference labels, `labels` first.
        reference_valid: bool (R,) which references count (True for the first B).

    Returns:
        (positives, negatives): bool (B, R) each. With R = B and every reference valid they
        are `positive_mask(labels)` and `negative_mask(labels)`.
    """
    labels, reference_labels = ops.cast(labels, "int32"), ops.cast(reference_labels, "int32")
    same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(reference_labels, 0))
    rows = ops.expand_dims(ops.arange(ops.shape(labels)[0]), 1)
    columns = ops.expand_dims(ops.arange(ops.shape(reference_labels)[0]), 0)
    valid = ops.expand_dims(ops.cast(reference_valid, "bool"), 0)
    positives = ops.logical_and(ops.logical_and(same, ops.not_equal(rows, columns)), valid)
    return positives, ops.logical_and(ops.logical_not(same), valid)


def _pairs(labels, masks):
    """`masks` (positives, negatives) when given, else the batch's own pairs from `labels`."""
    if masks is not None:
        return masks
    return positive_mask(labels), negative_mask(labels)


def triplet_mask(labels):
    """(B, B, B) bool: [a, p, n] is a valid triplet — a ≠ p, y_a = y_p, y_a ≠ y_n."""
    return ops.logical_and(ops.expand_dims(positive_mask(labels), 2),
                           ops.expand_dims(negative_mask(labels), 1))


def gather_columns(matrix, index):
    """matrix[i, index[i, ...]] for every row i: index (B,) -> (B,), index (B, K) -> (B, K)."""
    if len(static_shape(index)) == 1:
        return ops.take_along_axis(matrix, ops.expand_dims(index, 1), axis=1)[:, 0]
    return ops.take_along_axis(matrix, index, axis=1)


def masked_argmax(values, mask, axis=-1):
    """int32 index of the largest `values` where `mask` holds (arbitrary where none does)."""
    values = ops.stop_gradient(ops.cast(values, "float32"))
    return ops.cast(ops.argmax(ops.where(mask, values, -np.inf), axis=axis), "int32")


def masked_argmin(values, mask, axis=-1):
    """int32 index of the smallest `values` where `mask` holds (arbitrary where none does)."""
    values = ops.stop_gradient(ops.cast(values, "float32"))
    return ops.cast(ops.argmin(ops.where(mask, values, np.inf), axis=axis), "int32")


def batch_hard(distances, labels, masks=None):
    """Batch-hard mining (Hermans et al. 2017): per anchor its hardest positive and negative.

    Formula:
        p*(a) = argmax_{p: y_p = y_a, p ≠ a} d(a, p)
        n*(a) = argmin_{n: y_n ≠ y_a} d(a, n)

    Args:
        distances: (B, B) distances, larger = farther; (B, R) with `masks`.
        labels: int (B,) class labels (unused with `masks`).
        masks: None, or (positives, negatives) bool (B, R) against a reference set
            (`reference_masks`). Defaults to None.

    Returns:
        (positive_index, negative_index, valid): int32 (B,), int32 (B,), bool (B,). An
        anchor is valid when it has at least one positive and one negative; the indices
        of an invalid anchor are arbitrary.
    """
    positives, negatives = _pairs(labels, masks)
    valid = ops.logical_and(ops.any(positives, axis=1), ops.any(negatives, axis=1))
    return (masked_argmax(distances, positives), masked_argmin(distances, negatives), valid)


def semi_hard_negatives(distances, labels):
    """Semi-hard negative per positive pair (FaceNet), with TF-Addons' fallback.

    Formula (for each positive pair (a, p)):
        n*(a, p) = argmin_{n: y_n ≠ y_a, d(a, n) > d(a, p)} d(a, n)     if such n exists
                 = argmax_{n: y_n ≠ y_a} d(a, n)                       otherwise (fallback)

    FaceNet calls semi-hard the negatives with d(a, p) < d(a, n) < d(a, p) + margin. The
    nearest negative beyond the positive is the hardest of them when any exists; when the
    nearest one lies beyond d(a, p) + margin there is no semi-hard negative and the hinge
    max(0, d(a,p) - d(a,n) + margin) is 0 whichever is chosen, so no margin is needed here.
    When every negative is nearer than the positive (all are *hard*), the farthest negative
    — the least hard — is taken: the rule of `tfa.losses.triplet_semihard_loss`
    (negatives_outside / negatives_inside), which avoids the collapse that picking the
    hardest negatives early in training causes (Schroff et al. 2015, §3.2).

    Args:
        distances: (B, B) distances, larger = farther.
        labels: int (B,) class labels.

    Returns:
        (negative_index, valid, outside): int32 (B, B), bool (B, B), bool (B, B) — for each
        pair [a, p]: the chosen negative; whether (a, p) is a positive pair whose anchor has
        a negative; whether a negative beyond d(a, p) existed (False = fallback used).
    """
    d = ops.stop_gradient(ops.cast(distances, "float32"))
    positives, negatives = positive_mask(labels), negative_mask(labels)
    d_an = ops.expand_dims(d, 1)                              # [a, ., n]
    d_ap = ops.expand_dims(d, 2)                              # [a, p, .]
    negatives_3d = ops.expand_dims(negatives, 1)              # [a, ., n]
    beyond = ops.logical_and(negatives_3d, ops.greater(d_an, d_ap))
    outside = ops.any(beyond, axis=2)
    nearest_beyond = masked_argmin(d_an, beyond)                       # where() broadcasts
    farthest = ops.expand_dims(masked_argmax(d, negatives), 1)          # (B, 1)
    negative_index = ops.where(outside, nearest_beyond, farthest)
    valid = ops.logical_and(positives, ops.any(negatives, axis=1, keepdims=True))
    return negative_index, valid, outside


def contrastive_pairs(distances, labels, mining=MINING_ALL, masks=None):
    """Pairs for the contrastive loss: (positive_pairs, negative_pairs), bool (B, B) each.

    - "all": every ordered pair i ≠ j (each unordered pair appears twice, which leaves
      averages unchanged);
    - "hard": per anchor i with at least one positive and one negative, its batch-hard pair
      of each kind (`batch_hard`): the farthest positive and the nearest negative.

    Args:
        distances: (B, B) distances (only read for "hard"); (B, R) with `masks`.
        labels: int (B,) class labels (unused with `masks`).
        mining: "all" or "hard". Defaults to `"all"`.
        masks: None, or (positives, negatives) bool (B, R) against a reference set
            (`reference_masks`). Defaults to None.
    """
    if mining == MINING_ALL:
        return _pairs(labels, masks)
    if mining == MINING_HARD:
        positive_index, negative_index, valid = batch_hard(distances, labels, masks)
        columns = ops.expand_dims(ops.arange(ops.shape(distances)[1], dtype="int32"), 0)
        valid = ops.expand_dims(valid, 1)
        return (ops.logical_and(ops.equal(ops.expand_dims(positive_index, 1), columns), valid),
                ops.logical_and(ops.equal(ops.expand_dims(negative_index, 1), columns), valid))
    raise ValueError(f"mining must be 'all' or 'hard', got {mining!r}")


def multi_similarity_pairs(similarities, labels, epsilon=0.1, masks=None):
    """Multi-Similarity mining (Wang et al. 2019, Eq. 7-8) on similarities (larger = closer).

    A negative pair (a, n) is kept if S_an + ε > min_{p∈P_a} S_ap (it is nearly as similar
    as the anchor's least similar positive); a positive pair (a, p) is kept if
    S_ap − ε < max_{n∈N_a} S_an. An anchor without positives keeps no negative, one without
    negatives no positive.

    Args:
        similarities: (B, B) similarities, e.g. cosine; (B, R) with `masks`.
        labels: int (B,) class labels (unused with `masks`).
        epsilon: the margin ε >= 0. Defaults to 0.1 (the paper's).
        masks: None, or (positives, negatives) bool (B, R) against a reference set
            (`reference_masks`). Defaults to None.

    Returns:
        (positive_pairs, negative_pairs), bool (B, B) each ((B, R) with `masks`).
    """
    positives, negatives = _pairs(labels, masks)
    hardest_positive = ops.min(ops.where(positives, similarities, np.inf), axis=1, keepdims=True)
    hardest_negative = ops.max(ops.where(negatives, similarities, -np.inf), axis=1,
                               keepdims=True)
    return (ops.logical_and(positives, ops.less(similarities - epsilon, hardest_negative)),
            ops.logical_and(negatives, ops.greater(similarities + epsilon, hardest_positive)))


def pair_margin_pairs(distances, labels, positive_margin=0.2, negative_margin=0.8):
    """Pairs that still violate a margin: positives with d > `positive_margin`, negatives
    with d < `negative_margin` (pytorch-metric-learning's PairMarginMiner).

    Returns:
        (positive_pairs, negative_pairs), bool (B, B) each.
    """
    return (ops.logical_and(positive_mask(labels), ops.greater(distances, positive_margin)),
            ops.logical_and(negative_mask(labels), ops.less(distances, negative_margin)))


TRIPLET_MARGIN_TYPES = ("all", "hard", "semihard", "easy")


def triplet_margin_mask(distances, labels, margin=0.2, type_of_triplets="all"):
    """Triplet margin mining (pytorch-metric-learning's `TripletMarginMiner`), (B, B, B) bool.

    Formula (for every valid triplet: a ≠ p, y_a = y_p ≠ y_n; t = d(a, n) − d(a, p)):
        "all":      t <= margin            (the triplets that violate the margin)
        "hard":     t <= 0                 (negative no farther than the positive; ⊂ "all"
                                            when margin >= 0)
        "semihard": 0 < t <= margin        (negative farther, but within the margin)
        "easy":     t > margin             (the complement of "all" among valid triplets)

    These are PML's conditions for a distance (larger = farther), "hard" and "semihard" being
    "all" further restricted (so with a negative margin "hard" is t <= margin and "semihard"
    selects nothing). Unlike `semi_hard_negatives`, there is no single negative per pair and
    no fallback: every triplet that meets the condition is selected.

    Args:
        distances: (B, B) distances, larger = farther.
        labels: int (B,) class labels.
        margin: The mining margin. Defaults to `0.2` (PML's).
        type_of_triplets: "all", "hard", "semihard" or "easy". Defaults to `"all"`.

    Returns:
        bool (B, B, B): [a, p, n] selected.
    """
    if type_of_triplets not in TRIPLET_MARGIN_TYPES:
        raise ValueError(f"type_of_triplets must be one of "
                         f"{', '.join(map(repr, TRIPLET_MARGIN_TYPES))}, got {type_of_triplets!r}")
    d = ops.stop_gradient(ops.cast(distances, "float32"))
    t = ops.expand_dims(d, 1) - ops.expand_dims(d, 2)           # [a, p, n] = d_an − d_ap
    if type_of_triplets == "easy":
        condition = ops.greater(t, margin)
    else:
        condition = ops.less_equal(t, margin)
        if type_of_triplets == "hard":
            condition = ops.logical_and(condition, ops.less_equal(t, 0.0))
        elif type_of_triplets == "semihard":
            condition = ops.logical_and(condition, ops.greater(t, 0.0))
    return ops.logical_and(triplet_mask(labels), condition)


def distance_weighted_log_weights(distances, labels, dim, cutoff=0.5, nonzero_loss_cutoff=1.4):
    """Log of the unnormalised distance-weighted sampling weights, and which are allowed.

    Formula (Wu et al. 2017, Eq. 3-4, and §4; PML's `DistanceWeightedMiner`):
        d̃ = max(d, cutoff)
        log q(d̃)⁻¹ = (2 − n)·log d̃ − ((n − 3)/2)·log(1 − d̃²/4)   (n = `dim`)
        allowed[a, j] = y_j ≠ y_a  and  d(a, j) < nonzero_loss_cutoff  and the log is finite

    q is the density of the distance between two points drawn uniformly on the unit sphere
    S^{n−1}; the weights q⁻¹ make the sampled negatives spread over all distances instead of
    concentrating near √2. Returns (log_weights (B, B) float32, shifted so that each anchor's
    largest allowed one is 0 — 0 for rows with none —, allowed (B, B) bool).
    """
    d = ops.maximum(ops.stop_gradient(ops.cast(distances, "float32")), cutoff)
    n = float(dim)
    log_w = (2.0 - n) * ops.log(d)
    if n != 3.0:
        log_w = log_w - ((n - 3.0) / 2.0) * ops.log(1.0 - 0.25 * ops.square(d))
    allowed = ops.logical_and(negative_mask(labels),
                              ops.logical_and(ops.less(distances, nonzero_loss_cutoff),
                                              ops.isfinite(log_w)))
    row_max = ops.max(ops.where(allowed, log_w, -np.inf), axis=1, keepdims=True)
    row_max = ops.where(ops.isfinite(row_max), row_max, 0.0)
    return ops.where(allowed, log_w - row_max, -np.inf), allowed


def distance_weighted_weights(distances, labels, dim, cutoff=0.5, nonzero_loss_cutoff=1.4):
    """Distance-weighted negative weights (Wu et al. 2017; PML's `DistanceWeightedMiner`).

    The deterministic form of distance-weighted sampling: per anchor a, the probability
    w[a, n] with which the paper (and PML) draws negative n,

        w[a, n] = q(d̃_an)⁻¹ / Σ_{n′ allowed} q(d̃_an′)⁻¹      for allowed n, else 0

    (`distance_weighted_log_weights` gives q⁻¹ and the allowed negatives: other class,
    d < `nonzero_loss_cutoff`, d clipped below at `cutoff`). An anchor whose every negative
    is at d >= `nonzero_loss_cutoff` (or that has none) gets a zero row. Used as pair weights,
    Σ_n w[a, n]·ℓ(a, n) is the expectation over the sampled negative of the loss ℓ — what
    `ContrastiveLoss(mining="distance_weighted")` and `TripletLoss(mining="distance_weighted")`
    average, without the sampling noise. The distances must be Euclidean between
    L2-normalised embeddings of dimension `dim` (the density is that of the unit sphere).

    Args:
        distances: (B, B) Euclidean distances of unit vectors.
        labels: int (B,) class labels.
        dim: The embedding dimension n (a Python int).
        cutoff: Distances are clipped below at this value (the paper's 0.5), which bounds the
            weights of very near negatives. Defaults to `0.5`.
        nonzero_loss_cutoff: Negatives at this distance or farther get weight 0 (1.4 in PML
            and the authors' code: they give no loss for the margin loss). Defaults to `1.4`.

    Returns:
        float32 (B, B): rows summing to 1 over the allowed negatives (or all zero).
    """
    log_w, allowed = distance_weighted_log_weights(distances, labels, dim, cutoff,
                                                   nonzero_loss_cutoff)
    w = ops.where(allowed, ops.exp(ops.where(allowed, log_w, 0.0)), 0.0)
    return w / ops.maximum(ops.sum(w, axis=1, keepdims=True), 1e-30)


def distance_weighted_negatives(distances, labels, dim, cutoff=0.5, nonzero_loss_cutoff=1.4,
                                num_samples=1, seed=None):
    """Negatives drawn per anchor with the probabilities of `distance_weighted_weights`.

    The paper's sampling, with `keras.random.categorical`: for each anchor, `num_samples`
    independent draws (with replacement) among its allowed negatives. A Python int `seed`
    gives the same draws on every call; pass a `keras.random.SeedGenerator` for new draws
    at every call (e.g. a generator kept by a layer or loss, so it works under jit).

    Returns:
        (negative_index, valid): int32 (B, num_samples), bool (B,) — an anchor is valid when it
        has at least one allowed negative; the indices of an invalid anchor are arbitrary.
    """
    log_w, allowed = distance_weighted_log_weights(distances, labels, dim, cutoff,
                                                   nonzero_loss_cutoff)
    valid = ops.any(allowed, axis=1)
    logits = ops.where(ops.expand_dims(valid, 1), log_w, 0.0)
    index = keras.random.categorical(logits, num_samples, dtype="int32", seed=seed)
    return index, valid
