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


@keras.saving.register_keras_serializable(package="losslab")
class CosineHead(layers.Layer):
    """Cosine similarity to a learned direction per class: cos θ_j, shape (B, C).

    Formula:
        cos θ_j = (x / ‖x‖) · (W_j / ‖W_j‖)        with W of shape (D, C)

    Norms are floored at 1e-6, so x = 0 gives cos θ = 0 with finite gradients. The output is
    float32; its argmax is the predicted class. Used by `CosFaceLoss` and `ArcFaceLoss`.

    Args:
        num_classes: number of classes C.
        kernel_initializer: initializer of W. Defaults to `"glorot_uniform"`.
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

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


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
