"""Heads: the last layer of a model, holding whatever a loss needs that must be learned.

A Keras `Loss` is not a layer — variables created inside it are neither trained nor saved
(keras-team/keras#12503) — so class weights, centres and metrics live here, in the model,
and the losses stay stateless. Every head's class scores support `argmax` = predicted class,
so `accuracy` works on them directly.

| head           | output                                             | used by          |
|----------------|----------------------------------------------------|------------------|
| "softmax"      | logit w_j·x + b_j  (B, C)                          | CE, focal, ...   |
| "cosine"       | cos θ_j = x̂·Ŵ_j  (B, C)                            | CosFace, ArcFace |
| "sphere"       | {"scores": cos θ, "cos", "x_norm": ‖x‖, "step"}    | SphereFace       |
| "large_margin" | {"scores": W_j·x, "cos", "norm": ‖W_j‖‖x‖, "step"} | L-Softmax        |
| "embedding"    | {"scores": W_j·x + b_j, "embedding": x}            | triplet, contrastive |
| "centre"       | {"scores", "embedding", "distances": d(x, c_j)}    | centre loss      |

A head returns either one tensor of class scores (B, C), or a dict that holds "scores"
(B, C) plus whatever its losses need (keys documented by each head; every value has the
batch as first axis). `make_model(inputs, outputs)` turns the latter into a
`losses.head_model.HeadModel`, which routes the dict to losses that read it and "scores"
to everything else (metrics, `predict`, plain Keras losses); see losses/head_model.py.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from losses.head_model import HeadModel

_HEADS = {}


def register_head(name):
    def decorate(factory):
        _HEADS[name] = factory
        return factory

    return decorate


def list_heads():
    return sorted(_HEADS)


def build_head(name: str, num_classes: int, **kwargs):
    """Instantiate head `name` for `num_classes` classes."""
    if name not in _HEADS:
        raise ValueError(f"unknown head {name!r}; known heads: {', '.join(list_heads())}")
    return _HEADS[name](num_classes, **kwargs)


@register_head("softmax")
def softmax_head(num_classes, **kwargs):
    """A dense layer giving float32 logits (softmax is applied by the loss)."""
    return layers.Dense(num_classes, name="logits", dtype="float32", **kwargs)


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
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = int(num_classes)
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
# (used by losses/metric.py: contrastive, triplet and centre losses next to cross-entropy)

from losses import distances as _distances  # noqa: E402  (a sibling module; nothing upward)

CENTRE_METRICS = ("euclidean", "mahalanobis")
CENTRE_UPDATES = ("gradient", "moving_average")


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
class CentreHead(EmbeddingHead):
    """Dense logits, the embedding, and squared distances to learned class centres.

    Formula:
        scores = x·W + b
        d_j = ‖x - c_j‖²                              metric="euclidean"
        d_j = (x - c_j)ᵀ M (x - c_j),  M = L Lᵀ + εI  metric="mahalanobis"

    Output: a dict {"scores": logits (B, C), "embedding": x (B, D), "distances": d (B, C)},
    float32. `CenterLoss` reads "distances"; cross-entropy and `accuracy` see the logits.
    The centres C×D are a weight of this layer; L (D, D) starts as the identity, so M starts
    as (1 + ε)I and stays positive-definite (ε > 0). The distance computation is
    `losses.distances.mahalanobis_squared_distances` (or `pairwise_squared_distances`),
    also reachable as `head.distances(x)`.

    How the centres move (`centre_update`):
    - "gradient" (default): the centres are trainable and move with the optimizer, by the
      gradient of the loss (d/dc_y of ½‖x - c_y‖² = c_y - x). Exact with respect to the
      labels; the speed follows the optimizer's learning rate and λ, not the paper's α.
    - "moving_average": the centres are non-trainable and move in `call(training=True)` by
      the rule of Wen et al. (their Eq. 4), c_j ← c_j - α·Σ_i δ_ij (c_j - x_i) / (1 + Σ_i δ_ij).
      A layer never sees the labels (`fit` passes only x to the model), so δ_ij here uses the
      class the head itself predicts, argmax of its logits (trained by cross-entropy on the
      true labels), not y_i: identical to the paper for correctly classified samples, but a
      misclassified sample pulls the centre of the class it was mistaken for, and the first
      steps (before the classifier is any good) move the centres to the means of predicted
      groups. Use it with a cross-entropy term (`JointLoss`) and expect the paper's rule once
      training accuracy is high. The update uses the centres before the step and x without
      gradient; the distances of the step are computed before the update.

    With metric="mahalanobis" alone, `CenterLoss` can shrink L toward 0 (M → εI): the
    learned metric needs a term that keeps classes apart (e.g. an inter-class hinge).

    Args:
        num_classes: number of classes C.
        metric: "euclidean" or "mahalanobis". Defaults to `"euclidean"`.
        centre_update: "gradient" or "moving_average". Defaults to `"gradient"`.
        alpha: rate α in (0, 1] of the "moving_average" update. Defaults to `0.5` (the paper).
        epsilon: ε >= 0 added to M = L Lᵀ + εI. Defaults to `1e-3`.
        kernel_initializer: initializer of W. Defaults to `"glorot_uniform"`.
        centre_initializer: initializer of the centres. Defaults to `"glorot_uniform"`
            (distinct centres, so inter-centre terms have a gradient from the start).

    Reference:
        Wen, Zhang, Li, Qiao, "A Discriminative Feature Learning Approach for Deep Face
        Recognition", ECCV 2016.
    """

    def __init__(self, num_classes, metric="euclidean", centre_update="gradient", alpha=0.5,
                 epsilon=1e-3, kernel_initializer="glorot_uniform",
                 centre_initializer="glorot_uniform", **kwargs):
        super().__init__(num_classes, kernel_initializer=kernel_initializer, **kwargs)
        if metric not in CENTRE_METRICS:
            raise ValueError(f"metric must be one of {CENTRE_METRICS}, got {metric!r}")
        if centre_update not in CENTRE_UPDATES:
            raise ValueError(f"centre_update must be one of {CENTRE_UPDATES}, "
                             f"got {centre_update!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
            raise ValueError(f"alpha must be a number in (0, 1], got {alpha!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or \
                not epsilon >= 0:
            raise ValueError(f"epsilon must be a number >= 0, got {epsilon!r}")
        self.metric, self.centre_update = metric, centre_update
        self.alpha, self.epsilon = float(alpha), float(epsilon)
        self.centre_initializer = keras.initializers.get(centre_initializer)

    def build(self, input_shape):
        super().build(input_shape)
        dim = int(input_shape[-1])
        self.class_centres = self.add_weight(
            shape=(self.num_classes, dim), initializer=self.centre_initializer,
            trainable=self.centre_update == "gradient", name="centres")
        if self.metric == "mahalanobis":
            self.metric_factor = self.add_weight(shape=(dim, dim), initializer="identity",
                                                 name="metric_factor")

    def centres(self):
        """The class centres, float32 (C, D)."""
        return ops.cast(self.class_centres, "float32")

    def metric_matrix(self):
        """M = L Lᵀ + εI for "mahalanobis", the identity for "euclidean"; float32 (D, D)."""
        if self.metric == "euclidean":
            return ops.eye(int(self.class_centres.shape[1]), dtype="float32")
        return _distances.metric_matrix(self.metric_factor, self.epsilon)

    def distances(self, embedding):
        """Squared distances (B, C) from embeddings (B, D) to every centre, in this metric."""
        embedding = ops.cast(embedding, "float32")
        if self.metric == "euclidean":
            return _distances.pairwise_squared_distances(embedding, self.centres())
        return _distances.mahalanobis_squared_distances(
            embedding, self.centres(), self.metric_factor, self.epsilon)

    def update_centres(self, embedding, labels):
        """One moving-average step of Wen et al.'s Eq. 4 for the classes in `labels` (B,)."""
        embedding = ops.stop_gradient(ops.cast(embedding, "float32"))
        member = ops.one_hot(ops.cast(labels, "int32"), self.num_classes, dtype="float32")
        counts = ops.expand_dims(ops.sum(member, axis=0), 1)                 # (C, 1)
        sums = ops.matmul(ops.transpose(member), embedding)                   # (C, D)
        centres = self.centres()
        delta = (counts * centres - sums) / (1.0 + counts)
        self.class_centres.assign(centres - self.alpha * delta)

    def call(self, inputs, training=None):
        x = ops.cast(inputs, "float32")
        logits = self._logits(x)
        outputs = {"scores": logits, "embedding": x, "distances": self.distances(x)}
        if training and self.centre_update == "moving_average":
            self.update_centres(x, ops.argmax(ops.stop_gradient(logits), axis=-1))
        return outputs

    def get_config(self):
        return {**super().get_config(), "metric": self.metric,
                "centre_update": self.centre_update, "alpha": self.alpha,
                "epsilon": self.epsilon,
                "centre_initializer": keras.initializers.serialize(self.centre_initializer)}


@register_head("embedding")
def embedding_head(num_classes, **kwargs):
    """{"scores": logits, "embedding"} for contrastive / triplet losses next to CE."""
    return EmbeddingHead(num_classes, **{"name": "embedding_head", **kwargs})


@register_head("centre")
def centre_head(num_classes, **kwargs):
    """{"scores": logits, "embedding", "distances" to class centres} for centre loss."""
    return CentreHead(num_classes, **{"name": "centre", **kwargs})
