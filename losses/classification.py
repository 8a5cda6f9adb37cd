"""Plain classification losses on logits: focal, class-weighted CE, multi-class hinge, MSE.

Every loss here takes `y_true` as integer labels (B,) / (B, 1) or one-hot (B, C), and
`y_pred` as the (B, C) output of the "softmax" head (float32 logits). The number of classes
C is read from `y_pred`'s last dimension; a per-class list (focal `alpha`, CE `weights`) of
another length is a `ValueError`. Everything is computed in float32 with `keras.ops`, so the
losses run under mixed precision and on any Keras backend.

    model.compile(loss=losses.classification.FocalLoss(gamma=2.0))
    model.fit(x, integer_labels)

Class weights for imbalanced data: `inverse_frequency_weights(y_train, C)` or
`effective_number_weights(y_train, C, beta=0.999)` -> `WeightedCrossEntropy(weights=...)`
or `FocalLoss(alpha=...)`.
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras
from losses.base import (Loss, check_choice, check_in_range, check_non_negative,
                         check_positive_int, class_inputs, sparse_labels, static_shape)
from losses.registry import LossRecipe, register_recipe

HINGE_VARIANTS = ("weston_watkins", "crammer_singer")


# --------------------------------------------------------------------------- shared pieces


def _per_class_list(values, what: str):
    """Constructor-time normalisation of a per-class argument: None, float or list of floats."""
    if values is None:
        return None
    if isinstance(values, (int, float, np.integer, np.floating)):
        return check_non_negative(what, values)
    array = np.asarray(values, dtype="float64")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{what} must be None, a number, or a list with one value per class; "
                         f"got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{what} must hold finite values >= 0, got {array.tolist()}")
    return [float(v) for v in array]


def _per_class_tensor(values, num_classes: int, what: str):
    """None -> None; a number -> float32 scalar; a list of C values -> float32 (C,)."""
    values = _per_class_list(values, what)
    if values is None:
        return None
    if isinstance(values, list):
        if len(values) != num_classes:
            raise ValueError(f"{what} has {len(values)} entries but y_pred has "
                             f"{num_classes} classes")
    return ops.convert_to_tensor(values, dtype="float32")


def _log_probabilities(y_pred, from_logits: bool):
    """float32 (B, C) log-probabilities; probabilities are clipped to [eps, 1 - eps] first."""
    if from_logits:
        return ops.log_softmax(y_pred, axis=-1)
    eps = keras.config.epsilon()
    return ops.log(ops.clip(y_pred, eps, 1.0 - eps))


# --------------------------------------------------------------------------- focal loss


def focal_loss(y_true, y_pred, alpha=None, gamma=2.0, from_logits=True):
    """Multi-class focal loss per sample, on logits by default.

    Formula:
        p = softmax(y_pred)
        loss = -alpha_y * (1 - p_y)^gamma * log(p_y)

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Logits (B, C), or probabilities when `from_logits=False`.
        alpha: None (= 1 for every class), a number, or a list of C per-class weights.
            Defaults to `None`.
        gamma: Focusing parameter >= 0; 0 gives (alpha-weighted) cross-entropy.
            Defaults to `2.0`.
        from_logits: Whether `y_pred` holds logits. Defaults to `True`.

    Returns:
        float32 tensor (B,).
    """
    check_non_negative("gamma", gamma)
    _, y_pred, one_hot, num_classes = class_inputs(y_true, y_pred)
    log_p = ops.sum(one_hot * _log_probabilities(y_pred, from_logits), axis=-1)
    # 1 - p_y = -expm1(log p_y) keeps precision when p_y is close to 1. The tiny floor keeps
    # d/dx x^gamma = gamma * x^(gamma - 1) finite at x = 0 for gamma < 1 (at most 1e30).
    one_minus_p = ops.maximum(-ops.expm1(log_p), 1e-30)
    loss = -ops.power(one_minus_p, float(gamma)) * log_p
    alpha = _per_class_tensor(alpha, num_classes, "alpha")
    if alpha is not None:
        loss = loss * (ops.sum(one_hot * alpha, axis=-1) if len(alpha.shape) else alpha)
    return loss


@keras.saving.register_keras_serializable(package="losslab")
class FocalLoss(Loss):
    """Multi-class focal loss with sparse or one-hot labels and per-class alpha.

    Down-weights well-classified samples so training concentrates on hard ones.

    Formula:
        p = softmax(y_pred)
        loss = -alpha_y * (1 - p_y)^gamma * log(p_y)

    With `gamma=0` and `alpha=None` this is softmax cross-entropy. Compared with
    `keras.losses.CategoricalFocalCrossentropy`: Keras takes one-hot labels only, assumes
    probabilities (`from_logits=False`) and uses `alpha=0.25` by default; here labels may be
    sparse, logits are the default (computed via log-softmax, so huge logits stay finite) and
    `alpha=None` means no class weighting. With the same `alpha`, `gamma` and moderate
    inputs the two agree (Keras also renormalises probability rows and clips them to
    [eps, 1 - eps]; here probabilities are only clipped).

    Args:
        alpha: None (= 1 for every class), a number, or a list of C per-class weights, e.g.
            from `effective_number_weights`. Defaults to `None`.
        gamma: Focusing parameter >= 0. Defaults to `2.0`.
        from_logits: Whether `y_pred` holds logits (else probabilities). Defaults to `True`.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"focal_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
    """

    def __init__(self, alpha=None, gamma=2.0, from_logits=True,
                 reduction="sum_over_batch_size", name="focal_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = _per_class_list(alpha, "alpha")
        self.gamma = check_non_negative("gamma", gamma)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return focal_loss(y_true, y_pred, alpha=self.alpha, gamma=self.gamma,
                          from_logits=self.from_logits)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma,
                "from_logits": self.from_logits}


# --------------------------------------------------------------------------- weighted CE


def weighted_cross_entropy(y_true, y_pred, weights=None, from_logits=True):
    """Class-weighted softmax cross-entropy per sample, on logits by default.

    Formula:
        loss = -w_y * log(softmax(y_pred)_y)

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Logits (B, C), or probabilities when `from_logits=False`.
        weights: None (= 1 for every class) or a list of C per-class weights.
            Defaults to `None`.
        from_logits: Whether `y_pred` holds logits. Defaults to `True`.

    Returns:
        float32 tensor (B,).
    """
    _, y_pred, one_hot, num_classes = class_inputs(y_true, y_pred)
    log_p = ops.sum(one_hot * _log_probabilities(y_pred, from_logits), axis=-1)
    weights = _per_class_tensor(weights, num_classes, "weights")
    if weights is None:
        return -log_p
    return -ops.sum(one_hot * weights, axis=-1) * log_p


@keras.saving.register_keras_serializable(package="losslab")
class WeightedCrossEntropy(Loss):
    """Softmax cross-entropy with one weight per class.

    Formula:
        loss_i = -w_{y_i} * log(softmax(y_pred_i)_{y_i})
        reduced = Σ_i loss_i / B        (Keras "sum_over_batch_size")

    The reduction divides by the batch size, like Keras' `class_weight` in `fit` and unlike
    PyTorch's `CrossEntropyLoss(weight=w)`, which divides by Σ_i w_{y_i}. Weights can come
    from `inverse_frequency_weights` or `effective_number_weights`.

    Args:
        weights: None (= 1 for every class, plain cross-entropy) or a list of C per-class
            weights >= 0. Defaults to `None`.
        from_logits: Whether `y_pred` holds logits (else probabilities). Defaults to `True`.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"weighted_cross_entropy"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019.
    """

    def __init__(self, weights=None, from_logits=True, reduction="sum_over_batch_size",
                 name="weighted_cross_entropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        weights = _per_class_list(weights, "weights")
        if isinstance(weights, float):
            raise ValueError(f"weights must be None or a list with one value per class, got "
                             f"the single number {weights}")
        self.weights = weights
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return weighted_cross_entropy(y_true, y_pred, weights=self.weights,
                                      from_logits=self.from_logits)

    def get_config(self):
        return {**super().get_config(), "weights": self.weights,
                "from_logits": self.from_logits}


def _class_counts(labels, num_classes):
    num_classes = check_positive_int("num_classes", num_classes)
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(num_classes, dtype="float64")
    sparse = np.asarray(ops.convert_to_numpy(sparse_labels(labels, num_classes, "labels")))
    return np.bincount(sparse, minlength=num_classes).astype("float64")


def _normalize_to_num_classes(weights):
    return weights * (len(weights) / weights.sum())


def inverse_frequency_weights(labels, num_classes, normalize=True):
    """Per-class weights proportional to 1 / (number of samples of the class).

    Formula:
        w_c = 1 / max(n_c, 1),   then (normalize) w_c *= C / Σ_k w_k

    A class with no samples is counted as having one, so it gets the largest weight instead
    of inf/NaN (and still counts if it shows up later, e.g. in validation data).
    `normalize=False` multiplied by N / C gives scikit-learn's `class_weight="balanced"`.

    Args:
        labels: Training labels: integers (N,) or (N, 1), or one-hot (N, C).
        num_classes: Number of classes C.
        normalize: Rescale so the weights sum to C (mean weight 1). Defaults to `True`.

    Returns:
        NumPy float32 array (C,), usable as `WeightedCrossEntropy(weights=...)`.
    """
    counts = _class_counts(labels, num_classes)
    weights = 1.0 / np.maximum(counts, 1.0)
    if normalize:
        weights = _normalize_to_num_classes(weights)
    return weights.astype("float32")


def effective_number_weights(labels, num_classes, beta=0.999):
    """Class-balanced weights from the effective number of samples (Cui et al. 2019).

    Formula:
        E_c = (1 - beta^{n_c}) / (1 - beta)
        w_c = (1 / E_c) * C / Σ_k (1 / E_k)          (weights sum to C)

    beta = 0 gives uniform weights; beta -> 1 approaches inverse frequency. A class with no
    samples is counted as having one (E_c = 1, the largest weight), never inf/NaN.

    Args:
        labels: Training labels: integers (N,) or (N, 1), or one-hot (N, C).
        num_classes: Number of classes C.
        beta: Hyper-parameter in [0, 1). Defaults to `0.999`.

    Returns:
        NumPy float32 array (C,), usable as `WeightedCrossEntropy(weights=...)` or
        `FocalLoss(alpha=...)`.

    Reference:
        Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019.
    """
    beta = check_in_range("beta", beta, 0, 1)
    counts = np.maximum(_class_counts(labels, num_classes), 1.0)
    effective = (1.0 - np.power(beta, counts)) / (1.0 - beta)
    return _normalize_to_num_classes(1.0 / effective).astype("float32")


# --------------------------------------------------------------------------- hinge


def multiclass_hinge(y_true, y_pred, variant="crammer_singer", margin=1.0):
    """Multi-class hinge loss per sample, on raw scores (logits).

    Formula:
        weston_watkins: loss = Σ_{j≠y} max(0, margin - s_y + s_j)
        crammer_singer: loss = max(0, margin + max_{j≠y} s_j - s_y)

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Scores s (B, C), C >= 2.
        variant: `"weston_watkins"` or `"crammer_singer"`. Defaults to `"crammer_singer"`.
        margin: Required gap between the true score and the others. Defaults to `1.0`.

    Returns:
        float32 tensor (B,).
    """
    check_choice("variant", variant, HINGE_VARIANTS)
    _, scores, one_hot, num_classes = class_inputs(y_true, y_pred)
    if num_classes < 2:
        raise ValueError(f"multiclass_hinge needs y_pred with at least 2 classes, "
                         f"got shape {static_shape(y_pred)}")
    true_score = ops.sum(one_hot * scores, axis=-1)
    if variant == "weston_watkins":
        gaps = ops.relu(margin - true_score[:, None] + scores)
        return ops.sum((1.0 - one_hot) * gaps, axis=-1)
    lowest = np.finfo("float32").min
    best_other = ops.max(ops.where(one_hot > 0, lowest, scores), axis=-1)
    return ops.relu(margin + best_other - true_score)


@keras.saving.register_keras_serializable(package="losslab")
class MulticlassHinge(Loss):
    """Multi-class hinge loss (Weston-Watkins or Crammer-Singer) on raw scores.

    Formula:
        weston_watkins: loss = Σ_{j≠y} max(0, margin - s_y + s_j)
        crammer_singer: loss = max(0, margin + max_{j≠y} s_j - s_y)

    `keras.losses.CategoricalHinge` computes max(0, neg - pos + 1) with
    neg = max_j((1 - y_true_j) * s_j): the true class enters that max as 0, so it equals
    Crammer-Singer with margin 1 only when max_{j≠y} s_j >= 0. Here the true class is
    excluded from the max, so negative scores are handled as the formula says.

    Args:
        variant: `"weston_watkins"` or `"crammer_singer"`. Defaults to `"crammer_singer"`.
        margin: Required gap >= 0 between the true score and the others. Defaults to `1.0`.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"multiclass_hinge"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Weston & Watkins, "Support Vector Machines for Multi-Class Pattern Recognition",
        ESANN 1999; Crammer & Singer, "On the Algorithmic Implementation of Multiclass
        Kernel-based Vector Machines", JMLR 2001.
    """

    def __init__(self, variant="crammer_singer", margin=1.0, reduction="sum_over_batch_size",
                 name="multiclass_hinge", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.variant = check_choice("variant", variant, HINGE_VARIANTS)
        self.margin = check_non_negative("margin", margin)

    def call(self, y_true, y_pred):
        return multiclass_hinge(y_true, y_pred, variant=self.variant, margin=self.margin)

    def get_config(self):
        return {**super().get_config(), "variant": self.variant, "margin": self.margin}


# --------------------------------------------------------------------------- probability MSE


def probability_mse(y_true, y_pred, from_logits=True):
    """Mean squared error between softmax probabilities and one-hot labels, per sample.

    Formula:
        loss = (1 / C) * Σ_j (softmax(y_pred)_j - onehot(y)_j)^2

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Logits (B, C), or probabilities when `from_logits=False`.
        from_logits: Whether `y_pred` holds logits. Defaults to `True`.

    Returns:
        float32 tensor (B,).
    """
    _, y_pred, one_hot, _ = class_inputs(y_true, y_pred)
    probabilities = ops.softmax(y_pred, axis=-1) if from_logits else y_pred
    return ops.mean(ops.square(probabilities - one_hot), axis=-1)


@keras.saving.register_keras_serializable(package="losslab")
class ProbabilityMSE(Loss):
    """Mean squared error on softmax probabilities (the classic MSE-vs-CE comparison).

    Formula:
        loss = (1 / C) * Σ_j (softmax(y_pred)_j - onehot(y)_j)^2

    Its gradient carries a factor p_y(1 - p_y)-like term, so a confidently wrong softmax
    learns slowly — the "learning slowdown" that cross-entropy removes.

    Args:
        from_logits: Whether `y_pred` holds logits (else probabilities). Defaults to `True`.
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Name of the loss. Defaults to `"probability_mse"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None` (`keras.config.floatx()`).

    Reference:
        Golik, Doetsch & Ney, "Cross-Entropy vs. Squared Error Training: a Theoretical and
        Experimental Comparison", Interspeech 2013; Nielsen, "Neural Networks and Deep
        Learning", ch. 3.
    """

    def __init__(self, from_logits=True, reduction="sum_over_batch_size",
                 name="probability_mse", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        return probability_mse(y_true, y_pred, from_logits=self.from_logits)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


# --------------------------------------------------------------------------- recipes

register_recipe(LossRecipe(
    name="focal",
    head="softmax",
    build_loss=lambda num_classes: FocalLoss(),
    summary="focal loss on logits (gamma=2, no alpha weighting)",
))
register_recipe(LossRecipe(
    name="weighted_ce",
    head="softmax",
    build_loss=lambda num_classes: WeightedCrossEntropy(weights=[1.0] * num_classes),
    summary="class-weighted cross-entropy; uniform weights here (= softmax CE), pass "
            "inverse_frequency_weights/effective_number_weights from Python",
))
register_recipe(LossRecipe(
    name="hinge",
    head="softmax",
    build_loss=lambda num_classes: MulticlassHinge(variant="crammer_singer"),
    summary="Crammer-Singer multi-class hinge on logits, margin 1",
))
register_recipe(LossRecipe(
    name="prob_mse",
    head="softmax",
    build_loss=lambda num_classes: ProbabilityMSE(),
    summary="mean squared error between softmax probabilities and one-hot labels",
))
