"""Heads: the last layer of a model, holding whatever a loss needs that must be learned.

A Keras `Loss` is not a layer — variables created inside it are neither trained nor saved
(keras-team/keras#12503) — so class weights, centres and metrics live here, in the model,
and the losses stay stateless. Every head's output supports `argmax` = predicted class, so
`accuracy` works on it directly.

| head      | output per class                 | used by        |
|-----------|----------------------------------|----------------|
| "softmax" | logit  w_j·x + b_j               | CE, focal, ... |
"""

from __future__ import annotations

from keras import layers

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
