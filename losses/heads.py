"""Heads: the last layer of a model, holding whatever a loss needs that must be learned.

A Keras `Loss` is not a layer — variables created inside it are neither trained nor saved
(keras-team/keras#12503) — so class weights, centers and metrics live here, in the model,
and the losses stay stateless. Every head's class scores support `argmax` = predicted class,
so `accuracy` works on them directly.

| head           | output                                             | used by          |
|----------------|----------------------------------------------------|------------------|
| "softmax"      | logit w_j·x + b_j  (B, C)                          | CE, focal, ...   |
| "cosine"       | cos θ_j = x̂·Ŵ_j  (B, C)                            | CosFace, ArcFace |
| "sphere"       | {"scores": cos θ, "cos", "x_norm": ‖x‖, "step"}    | SphereFace       |
| "large_margin" | {"scores": W_j·x, "cos", "norm": ‖W_j‖‖x‖, "step"} | L-Softmax        |
| "embedding"    | {"scores": W_j·x + b_j, "embedding": x}            | triplet, contrastive |
| "center"       | {"scores", "embedding", "distances": d(x, c_j)}    | center loss      |
| "subcenter_cosine" | {"scores": max_k cos θ_jk, "cos", "center_cos": cos θ_jk, | Sub-center |
|                |  "center_regularizer"}  (K centers per class)       | ArcFace, SoftTriple |
| "margin_beta"  | {"scores": W_j·x + b_j, "embedding": x, "beta": β_j} | margin loss      |

A head returns either one tensor of class scores (B, C), or a dict that holds "scores"
(B, C) plus whatever its losses need (keys documented by each head; every value has the
batch as first axis). `make_model(inputs, outputs)` turns the latter into a
`losses.head_model.HeadModel`, which routes the dict to losses that read it and "scores"
to everything else (metrics, `predict`, plain Keras losses); see losses/head_model.py.

Spelling: "center" everywhere (head "center", `CenterHead`, `center_update`, `centers()`).
The old British spellings ("centre", `CentreHead`, `centre_update`, ...) still work with a
`DeprecationWarning` (see losses/_compat.py), and models saved with them still load.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from losses._compat import RenamedAttributes, module_aliases, renamed_argument, warn_renamed
from losses.base import (check_bool, check_choice, check_in_range, check_non_negative,
                         check_positive_int)
from losses.head_model import HeadModel

_HEADS = {}
_HEAD_ALIASES = {"centre": "center"}  # deprecated name -> name; never listed


def register_head(name):
    def decorate(factory):
        _HEADS[name] = factory
        return factory

    return decorate


def list_heads(include_deprecated=False):
    """The head names, sorted; with `include_deprecated`, also the old names still accepted."""
    return sorted([*_HEADS, *(_HEAD_ALIASES if include_deprecated else ())])


def build_head(name: str, num_classes: int, /, **kwargs):
    """Instantiate head `name` for `num_classes` classes.

    `kwargs` go to the head's constructor, `name=` included: the layer's name (each head has
    a default, e.g. "cosine").
    """
    if name in _HEAD_ALIASES:
        warn_renamed(name, _HEAD_ALIASES[name], "head name")
        name = _HEAD_ALIASES[name]
    if name not in _HEADS:
        raise ValueError(f"unknown head {name!r}; known heads: {', '.join(list_heads())}")
    return _HEADS[name](num_classes, **kwargs)


@register_head("softmax")
def softmax_head(num_classes, **kwargs):
    """A dense layer giving float32 logits (softmax is applied by the loss)."""
    return layers.Dense(num_classes, **{"name": "logits", "dtype": "float32", **kwargs})


# --------------------------------------------------------------------------- cosine heads

_EPS = 1e-12  # floor on squared norms, as in tf.math.l2_normalize


def _norm(x, axis):
    """‖x‖ along `axis` (kept), floored at sqrt(eps): finite value and gradient at x = 0."""
    return ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), _EPS))


def _float32_head(kwargs):
    # Heads compute in float32 even under a mixed policy (the usual "last layer in float32").
    kwargs.setdefault("dtype", "float32")
    return kwargs


class _ClassWeightsHead(layers.Layer):
    """A float32 head over (batch, dim) embeddings with a class-weight kernel W of shape (D, C).

    Holds what the heads share: the `num_classes` check, the kernel and their config.
    """

    def __init__(self, num_classes, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**_float32_head(kwargs))
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} expects embeddings of shape (batch, dim) "
                             f"with a known dim, got shape {tuple(input_shape)}")
        self.kernel = self.add_weight(shape=(int(input_shape[-1]), self.num_classes),
                                      initializer=self.kernel_initializer, name="kernel")

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="losslab")
class CosineHead(_ClassWeightsHead):
    """Cosine similarity to a learned direction per class: cos θ_j, shape (B, C).

    Formula:
        cos θ_j = (x / ‖x‖) · (W_j / ‖W_j‖)        with W of shape (D, C)

    Norms are floored at 1e-6, so x = 0 gives cos θ = 0 with finite gradients. The output is
    float32; its argmax is the predicted class. Used by `CosFaceLoss` and `ArcFaceLoss`.

    Args:
        num_classes: number of classes C.
        kernel_initializer: initializer of W. Defaults to `"glorot_uniform"`.
    """

    def class_weights(self):
        """The normalised class directions W_j / ‖W_j‖, float32 (D, C)."""
        kernel = ops.cast(self.kernel, "float32")
        return kernel / _norm(kernel, axis=0)

    def _cosine(self, x):
        x = ops.cast(x, "float32")
        x_norm = _norm(x, axis=-1)
        return ops.matmul(x / x_norm, self.class_weights()), x_norm

    def call(self, inputs):
        return self._cosine(inputs)[0]


class _StepCounter:
    """Mixin for a head: a saved, non-trainable training-step counter, output as "step" (B,).

    Every call with `training=True` (one per `fit` batch) first advances the counter, then
    outputs it (1 on the first batch, as in the authors' Caffe layers); other calls output
    it unchanged. A loss anneals a hyper-parameter with it (L-Softmax/SphereFace λ). It lives
    in the model, is saved with it, and resumes where it stopped after `load_model`.
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.step = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                    dtype="float32", autocast=False, name="step")

    def _count(self, batch_like, training):
        if training:
            self.step.assign_add(1.0)
        return ops.zeros_like(batch_like[:, 0]) + ops.convert_to_tensor(self.step)


@keras.saving.register_keras_serializable(package="losslab")
class SphereHead(_StepCounter, CosineHead):
    """Cosine head that also outputs ‖x‖ and a step counter, for `SphereFaceLoss`.

    Formula:
        cos θ_j = (x / ‖x‖) · (W_j / ‖W_j‖)

    Output: a dict {"scores": cos θ (B, C), "cos": cos θ (B, C), "x_norm": ‖x‖ (B,),
    "step": training steps so far (B,)}. A model ending in it is a `HeadModel` (build it
    with `make_model`).

    Args:
        num_classes: number of classes C.
        kernel_initializer: initializer of W. Defaults to `"glorot_uniform"`.
    """

    def call(self, inputs, training=None):
        cos, x_norm = self._cosine(inputs)
        return {"scores": cos, "cos": cos, "x_norm": x_norm[:, 0],
                "step": self._count(cos, training)}


@keras.saving.register_keras_serializable(package="losslab")
class LargeMarginHead(_StepCounter, CosineHead):
    """Dense layer without bias that also outputs cos θ and the norms, for L-Softmax.

    Formula:
        logit_j = W_j · x = ‖W_j‖ ‖x‖ cos θ_j        with W of shape (D, C)

    Output: a dict {"scores": W_j · x (B, C), "cos": cos θ_j (B, C), "norm": ‖W_j‖ ‖x‖ (B, C),
    "step": training steps so far (B,)}. A model ending in it is a `HeadModel` (build it
    with `make_model`). `class_weights()` gives the normalised W, as for the cosine head.

    Args:
        num_classes: number of classes C.
        kernel_initializer: initializer of W. Defaults to `"glorot_uniform"`.
    """

    def call(self, inputs, training=None):
        x = ops.cast(inputs, "float32")
        kernel = ops.cast(self.kernel, "float32")
        x_norm, w_norm = _norm(x, axis=-1), _norm(kernel, axis=0)
        cos = ops.matmul(x / x_norm, kernel / w_norm)
        return {"scores": ops.matmul(x, kernel), "cos": cos, "norm": x_norm * w_norm,
                "step": self._count(cos, training)}


@register_head("cosine")
def cosine_head(num_classes, **kwargs):
    """cos θ_j (B, C) for CosFace / ArcFace."""
    return CosineHead(num_classes, **{"name": "cosine", **kwargs})


@register_head("sphere")
def sphere_head(num_classes, **kwargs):
    """{"scores", "cos", "x_norm", "step"} for SphereFace (A-Softmax)."""
    return SphereHead(num_classes, **{"name": "sphere", **kwargs})


@register_head("large_margin")
def large_margin_head(num_classes, **kwargs):
    """{"scores", "cos", "norm", "step"} for L-Softmax."""
    return LargeMarginHead(num_classes, **{"name": "large_margin", **kwargs})


def make_model(inputs, outputs, name=None):
    """The model ending in a head: a `HeadModel` if the head returned a dict, else `keras.Model`.

        embedding = ...                                   # the backbone, functional
        outputs = build_head("sphere", 10)(embedding)
        model = make_model(inputs, outputs, name="net")   # -> HeadModel
    """
    if isinstance(outputs, dict):
        return HeadModel(inputs, outputs, name=name)
    return keras.Model(inputs, outputs, name=name)


# --------------------------------------------------------------------------- metric-learning heads
# (used by losses/metric.py: contrastive, triplet and center losses next to cross-entropy)

from losses import distances as _distances  # noqa: E402  (a sibling module; nothing upward)

CENTER_METRICS = ("euclidean", "mahalanobis")
CENTER_UPDATES = ("gradient", "moving_average")


@keras.saving.register_keras_serializable(package="losslab")
class EmbeddingHead(_ClassWeightsHead):
    """Dense logits plus the embedding itself, for metric losses trained next to cross-entropy.

    Formula:
        scores = x·W + b        with W of shape (D, C)

    Output: a dict {"scores": logits (B, C), "embedding": x (B, D)}, both float32. A model
    ending in it is a `HeadModel` (build it with `make_model`): cross-entropy and `accuracy`
    see the logits, `TripletLoss` / `ContrastiveLoss` read the embedding.

    Args:
        num_classes: number of classes C.
        kernel_initializer: initializer of W. Defaults to `"glorot_uniform"`.
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.bias = self.add_weight(shape=(self.num_classes,), initializer="zeros", name="bias")

    def _logits(self, x):
        return ops.matmul(x, ops.cast(self.kernel, "float32")) + ops.cast(self.bias, "float32")

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        return {"scores": self._logits(x), "embedding": x}


@keras.saving.register_keras_serializable(package="losslab")
class CenterHead(RenamedAttributes, EmbeddingHead):
    """Dense logits, the embedding, and squared distances to learned class centers.

    Formula:
        scores = x·W + b
        d_j = ‖x - c_j‖²                              metric="euclidean"
        d_j = (x - c_j)ᵀ M (x - c_j),  M = L Lᵀ + εI  metric="mahalanobis"

    Output: a dict {"scores": logits (B, C), "embedding": x (B, D), "distances": d (B, C)},
    float32. `CenterLoss` reads "distances"; cross-entropy and `accuracy` see the logits.
    The centers C×D are a weight of this layer; L (D, D) starts as the identity, so M starts
    as (1 + ε)I and stays positive-definite (ε > 0). The distance computation is
    `losses.distances.mahalanobis_squared_distances` (or `pairwise_squared_distances`),
    also reachable as `head.distances(x)`.

    How the centers move (`center_update`):
    - "gradient" (default): the centers are trainable and move with the optimizer, by the
      gradient of the loss (d/dc_y of ½‖x - c_y‖² = c_y - x). Exact with respect to the
      labels; the speed follows the optimizer's learning rate and λ, not the paper's α.
    - "moving_average": the centers are non-trainable and move in `call(training=True)` by
      the rule of Wen et al. (their Eq. 4), c_j ← c_j - α·Σ_i δ_ij (c_j - x_i) / (1 + Σ_i δ_ij).
      A layer never sees the labels (`fit` passes only x to the model), so δ_ij here uses the
      class the head itself predicts, argmax of its logits (trained by cross-entropy on the
      true labels), not y_i: identical to the paper for correctly classified samples, but a
      misclassified sample pulls the center of the class it was mistaken for, and the first
      steps (before the classifier is any good) move the centers to the means of predicted
      groups. Use it with a cross-entropy term (`JointLoss`) and expect the paper's rule once
      training accuracy is high. The update uses the centers before the step and x without
      gradient; the distances of the step are computed before the update.

    With metric="mahalanobis" alone, `CenterLoss` can shrink L toward 0 (M → εI): the
    learned metric needs a term that keeps classes apart (e.g. an inter-class hinge).

    The old spellings `CentreHead`, `centre_update=`, `centre_initializer=`, `centres()`,
    `class_centres` and `update_centres` still work, with a `DeprecationWarning`; models
    saved with the class name "CentreHead" load as this class.

    Args:
        num_classes: number of classes C.
        metric: "euclidean" or "mahalanobis". Defaults to `"euclidean"`.
        center_update: "gradient" or "moving_average". Defaults to `"gradient"`.
        alpha: rate α in (0, 1] of the "moving_average" update. Defaults to `0.5` (the paper).
        epsilon: ε >= 0 added to M = L Lᵀ + εI. Defaults to `1e-3`.
        kernel_initializer: initializer of W. Defaults to `"glorot_uniform"`.
        center_initializer: initializer of the centers. Defaults to `"glorot_uniform"`
            (distinct centers, so inter-center terms have a gradient from the start).

    Reference:
        Wen, Zhang, Li, Qiao, "A Discriminative Feature Learning Approach for Deep Face
        Recognition", ECCV 2016.
    """

    _renamed_attributes = {"centres": "centers", "class_centres": "class_centers",
                           "update_centres": "update_centers", "centre_update": "center_update",
                           "centre_initializer": "center_initializer"}

    def __init__(self, num_classes, metric="euclidean", center_update="gradient", alpha=0.5,
                 epsilon=1e-3, kernel_initializer="glorot_uniform",
                 center_initializer="glorot_uniform", **kwargs):
        center_update = renamed_argument(kwargs, "centre_update", "center_update",
                                         center_update, "gradient", "CenterHead")
        center_initializer = renamed_argument(kwargs, "centre_initializer",
                                              "center_initializer", center_initializer,
                                              "glorot_uniform", "CenterHead")
        super().__init__(num_classes, kernel_initializer=kernel_initializer, **kwargs)
        self.metric = check_choice("metric", metric, CENTER_METRICS)
        self.center_update = check_choice("center_update", center_update, CENTER_UPDATES)
        self.alpha = check_in_range("alpha", alpha, 0, 1, closed="right")
        self.epsilon = check_non_negative("epsilon", epsilon)
        self.center_initializer = keras.initializers.get(center_initializer)

    def build(self, input_shape):
        super().build(input_shape)
        dim = int(input_shape[-1])
        self.class_centers = self.add_weight(
            shape=(self.num_classes, dim), initializer=self.center_initializer,
            trainable=self.center_update == "gradient", name="centers")
        if self.metric == "mahalanobis":
            self.metric_factor = self.add_weight(shape=(dim, dim), initializer="identity",
                                                 name="metric_factor")

    def centers(self):
        """The class centers, float32 (C, D)."""
        return ops.cast(self.class_centers, "float32")

    def metric_matrix(self):
        """M = L Lᵀ + εI for "mahalanobis", the identity for "euclidean"; float32 (D, D)."""
        if self.metric == "euclidean":
            return ops.eye(int(self.class_centers.shape[1]), dtype="float32")
        return _distances.metric_matrix(self.metric_factor, self.epsilon)

    def distances(self, embedding):
        """Squared distances (B, C) from embeddings (B, D) to every center, in this metric."""
        embedding = ops.cast(embedding, "float32")
        if self.metric == "euclidean":
            return _distances.pairwise_squared_distances(embedding, self.centers())
        return _distances.mahalanobis_squared_distances(
            embedding, self.centers(), self.metric_factor, self.epsilon)

    def update_centers(self, embedding, labels):
        """One moving-average step of Wen et al.'s Eq. 4 for the classes in `labels` (B,)."""
        embedding = ops.stop_gradient(ops.cast(embedding, "float32"))
        member = ops.one_hot(ops.cast(labels, "int32"), self.num_classes, dtype="float32")
        counts = ops.expand_dims(ops.sum(member, axis=0), 1)                 # (C, 1)
        sums = ops.matmul(ops.transpose(member), embedding)                   # (C, D)
        centers = self.centers()
        delta = (counts * centers - sums) / (1.0 + counts)
        self.class_centers.assign(centers - self.alpha * delta)

    def call(self, inputs, training=None):
        x = ops.cast(inputs, "float32")
        logits = self._logits(x)
        outputs = {"scores": logits, "embedding": x, "distances": self.distances(x)}
        if training and self.center_update == "moving_average":
            self.update_centers(x, ops.argmax(ops.stop_gradient(logits), axis=-1))
        return outputs

    def get_config(self):
        return {**super().get_config(), "metric": self.metric,
                "center_update": self.center_update, "alpha": self.alpha,
                "epsilon": self.epsilon,
                "center_initializer": keras.initializers.serialize(self.center_initializer)}


class _SavedCentreHead(CenterHead):
    """What models saved before the rename load as: a `CenterHead` still named "CentreHead".

    Such a model names the class "losslab>CentreHead", spells its arguments `centre_update` /
    `centre_initializer` (accepted by `CenterHead`), and stores the layer's weights under the
    snake-cased class name ("centre_head"), so the class that loads them must keep that
    name. Loaded models keep it when saved again; new code builds `CenterHead`.
    """

    def __init__(self, *args, **kwargs):
        warn_renamed("CentreHead", "CenterHead", "saved layer class")
        super().__init__(*args, **kwargs)


_SavedCentreHead.__name__ = _SavedCentreHead.__qualname__ = "CentreHead"
keras.saving.register_keras_serializable(package="losslab")(_SavedCentreHead)


@register_head("embedding")
def embedding_head(num_classes, **kwargs):
    """{"scores": logits, "embedding"} for contrastive / triplet losses next to CE."""
    return EmbeddingHead(num_classes, **{"name": "embedding_head", **kwargs})


@register_head("center")
def center_head(num_classes, **kwargs):
    """{"scores": logits, "embedding", "distances" to class centers} for center loss."""
    return CenterHead(num_classes, **{"name": "center", **kwargs})


# --------------------------------------------------------------------------- proxy heads
# (used by losses/proxy.py: several learned centers per class, and the margin loss's β)


@keras.saving.register_keras_serializable(package="losslab")
class SubCenterCosineHead(_ClassWeightsHead):
    """Cosine similarity to K learned, normalised centers per class (proxies).

    Formula:
        cos θ_jk = (x / ‖x‖) · (W_jk / ‖W_jk‖)       with W of shape (D, C·K), column j·K + k
        scores_j = max_k cos θ_jk
        R = Σ_j Σ_{t<s} sqrt(2 + 1e-5 - 2 Ŵ_jtᵀŴ_js) / (C·K·(K - 1))   (0 for K = 1)

    Output: a dict {"scores": max_k cos θ_jk (B, C), "cos": the same (B, C), "center_cos":
    cos θ_jk (B, C, K), "center_regularizer": R (B,)}, float32. A model ending in it is a
    `HeadModel` (build it with `make_model`): `predict` and `accuracy` see the scores (the
    nearest center of each class), `SubCenterArcFaceLoss` and `SoftTripleLoss` read
    "center_cos", and the single-center losses of the cosine head (ArcFace, CosFace) read
    "cos". R is SoftTriple's regulariser (Qian et al., Eq. 13, normalised as their code:
    half the mean distance sqrt(‖Ŵ_jt - Ŵ_js‖² + 1e-5) between two centers of a class); it
    depends on the weights only and is repeated on every row, so `SoftTripleLoss` adds
    τ·R to every sample (minimising it pulls the centers of a class together, so that
    redundant ones merge). The centers are exposed as `center_weights()` (D, C, K), not as
    `class_weights()`: the margin probes read that as one direction per class.

    Args:
        num_classes: number of classes C.
        centers: centers K per class. Defaults to `3` (Sub-center ArcFace; SoftTriple: 10).
        kernel_initializer: initializer of W. Defaults to `"glorot_uniform"`.

    References:
        Deng, Guo, Liu, Zafeiriou, "Sub-center ArcFace", ECCV 2020; Qian et al.,
        "SoftTriple Loss: Deep Metric Learning Without Triplet Sampling", ICCV 2019.
    """

    def __init__(self, num_classes, centers=3, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(num_classes, kernel_initializer=kernel_initializer, **kwargs)
        self.centers = check_positive_int("centers", centers)

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} expects embeddings of shape (batch, dim) "
                             f"with a known dim, got shape {tuple(input_shape)}")
        self.kernel = self.add_weight(shape=(int(input_shape[-1]),
                                             self.num_classes * self.centers),
                                      initializer=self.kernel_initializer, name="kernel")

    def center_weights(self):
        """The normalised centers W_jk / ‖W_jk‖, float32 (D, C, K)."""
        kernel = ops.cast(self.kernel, "float32")
        kernel = kernel / _norm(kernel, axis=0)
        return ops.reshape(kernel, (-1, self.num_classes, self.centers))

    def center_regularizer(self):
        """SoftTriple's R (half the mean distance between two centers of a class), float32 ()."""
        k = self.centers
        if k == 1:
            return ops.zeros((), "float32")
        w = self.center_weights()
        gram = ops.einsum("dck,dcl->ckl", w, w)                                   # (C, K, K)
        upper = ops.cast(ops.triu(ops.ones((k, k), "float32"), 1), "float32")
        distances = ops.sqrt(ops.maximum(2.0 + 1e-5 - 2.0 * gram, 1e-5))
        return ops.sum(distances * upper) / float(self.num_classes * k * (k - 1))

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        kernel = ops.cast(self.kernel, "float32")
        cos = ops.matmul(x / _norm(x, axis=-1), kernel / _norm(kernel, axis=0))
        cos = ops.reshape(cos, (-1, self.num_classes, self.centers))
        scores = ops.max(cos, axis=-1)
        regularizer = ops.zeros_like(scores[:, 0]) + self.center_regularizer()
        return {"scores": scores, "cos": scores, "center_cos": cos,
                "center_regularizer": regularizer}

    def get_config(self):
        return {**super().get_config(), "centers": self.centers}


@keras.saving.register_keras_serializable(package="losslab")
class MarginBetaHead(EmbeddingHead):
    """Dense logits, the embedding, and the margin loss's learned boundary β per class.

    Formula:
        scores = x·W + b        with W of shape (D, C)
        beta_ij = β_j           (class_specific=True: β^(0) + β^(class)_j as one weight)
                = β             (class_specific=False: one β shared by every class)

    Output: a dict {"scores": logits (B, C), "embedding": x (B, D), "beta": β (B, C)},
    float32; every row of "beta" holds β of all classes (the head never sees the labels),
    and `MarginLoss` picks β of each anchor's class. β is a trainable weight of this layer
    (shape (C,), or (1,) when shared), so `fit` learns it and `model.save` keeps it. The
    logits are for cross-entropy next to the margin loss (`JointLoss`) and for `accuracy`;
    trained by `MarginLoss` alone they get no gradient.

    Args:
        num_classes: number of classes C.
        class_specific: one β per class (the paper's β^(class)) or one shared β.
            Defaults to `True`.
        beta_init: initial β. Defaults to `1.2` (the paper's β^(0)).
        kernel_initializer: initializer of W. Defaults to `"glorot_uniform"`.

    Reference:
        Wu, Manmatha, Smola, Krähenbühl, "Sampling Matters in Deep Embedding Learning",
        ICCV 2017.
    """

    def __init__(self, num_classes, class_specific=True, beta_init=1.2,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(num_classes, kernel_initializer=kernel_initializer, **kwargs)
        self.class_specific = check_bool("class_specific", class_specific)
        self.beta_init = check_non_negative("beta_init", beta_init)

    def build(self, input_shape):
        super().build(input_shape)
        self.beta = self.add_weight(shape=(self.num_classes if self.class_specific else 1,),
                                    initializer=keras.initializers.Constant(self.beta_init),
                                    name="beta")

    def betas(self):
        """β of every class, float32 (C,)."""
        beta = ops.cast(self.beta, "float32")
        return beta if self.class_specific else ops.repeat(beta, self.num_classes)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        beta = ops.zeros_like(x[:, :1]) + ops.reshape(self.betas(), (1, -1))
        return {"scores": self._logits(x), "embedding": x, "beta": beta}

    def get_config(self):
        return {**super().get_config(), "class_specific": self.class_specific,
                "beta_init": self.beta_init}


@register_head("subcenter_cosine")
def subcenter_cosine_head(num_classes, **kwargs):
    """{"scores": max_k cos θ_jk, "cos", "center_cos", "center_regularizer"}: Sub-center
    ArcFace, SoftTriple."""
    return SubCenterCosineHead(num_classes, **{"name": "subcenter_cosine", **kwargs})


@register_head("margin_beta")
def margin_beta_head(num_classes, **kwargs):
    """{"scores": logits, "embedding", "beta": β per class} for the margin loss."""
    return MarginBetaHead(num_classes, **{"name": "margin_beta", **kwargs})


# Deprecated names of this module (`losses.heads.CentreHead` etc.), answered with a warning.
__getattr__ = module_aliases(__name__, {"CentreHead": "CenterHead",
                                        "CENTRE_METRICS": "CENTER_METRICS",
                                        "CENTRE_UPDATES": "CENTER_UPDATES",
                                        "centre_head": "center_head"}, globals())
