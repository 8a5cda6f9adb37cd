"""The LeNet family.

- `lenet5`: LeCun, Bottou, Bengio, Haffner, "Gradient-based learning applied to document
  recognition", Proc. IEEE 1998. C1 6@5x5 ("same" on 28x28, as the paper pads 28 to 32)
  -> S2 2x2 average pool -> C3 16@5x5 -> S4 2x2 average pool -> F5 120 -> F6 84 -> classes.
  61,706 parameters for 10 classes.
- `lenet_tcnn`: the LeNet used by the triplet-constrained CNN (Xu et al. 2019), itself the
  classic DeepLearnToolbox net: 6@5x5 -> 2x2 mean pool -> 12@5x5 -> 2x2 mean pool -> fully
  connected to the classes, sigmoid units.
- `lenet_embed`: the LeNet-5 trunk ending in an embedding of configurable size (2 for
  plots) followed by a pluggable head from `losses.heads` (default: dense softmax logits).

Every model outputs logits (or what its head outputs), never probabilities, so losses are
computed from logits in float32. The embedding is the layer named "embedding":
`embedding_model(model)` returns the sub-model that outputs it.
"""

from __future__ import annotations

import keras
from keras import layers

from zoo.registry import register_model

EMBEDDING_LAYER = "embedding"


def _pool(kind: str, name: str):
    pools = {"avg": layers.AveragePooling2D, "max": layers.MaxPooling2D}
    if kind not in pools:
        raise ValueError(f"pooling must be 'avg' or 'max', got {kind!r}")
    return pools[kind](2, name=name)


def _lenet5_trunk(inputs, activation, pooling, widths=(6, 16), dense=(120, 84)):
    x = layers.Conv2D(widths[0], 5, padding="same", activation=activation, name="c1")(inputs)
    x = _pool(pooling, "s2")(x)
    x = layers.Conv2D(widths[1], 5, padding="valid", activation=activation, name="c3")(x)
    x = _pool(pooling, "s4")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense[0], activation=activation, name="f5")(x)
    return layers.Dense(dense[1], activation=activation, name="f6")(x)


@register_model
def lenet5(num_classes=10, input_shape=(28, 28, 1), activation="relu", pooling="avg"):
    """LeNet-5 (LeCun et al. 1998) with a dense logits output.

    Args:
        num_classes: number of classes. Defaults to 10.
        input_shape: (H, W, C). Defaults to (28, 28, 1).
        activation: hidden activation; the paper's scaled tanh is closest to "tanh".
            Defaults to "relu".
        pooling: "avg" (the paper's subsampling) or "max". Defaults to "avg".
    """
    inputs = keras.Input(input_shape, name="image")
    features = _lenet5_trunk(inputs, activation, pooling)
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(features)
    return keras.Model(inputs, logits, name="lenet5")


@register_model
def lenet_tcnn(num_classes=10, input_shape=(28, 28, 1), activation="sigmoid", pooling="avg"):
    """LeNet of the triplet-constrained CNN (Xu et al. 2019): 6c5-2s-12c5-2s-fc.

    The flattened 12x4x4 feature map is the "embedding" layer; the output is the logits of
    the fully connected layer (the paper's bounded output features are their sigmoid).

    Args:
        num_classes: number of classes. Defaults to 10.
        input_shape: (H, W, C). Defaults to (28, 28, 1).
        activation: hidden activation. Defaults to "sigmoid" (as in the paper).
        pooling: "avg" (mean pooling, as in the paper) or "max". Defaults to "avg".
    """
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(6, 5, activation=activation, name="c1")(inputs)
    x = _pool(pooling, "s2")(x)
    x = layers.Conv2D(12, 5, activation=activation, name="c3")(x)
    x = _pool(pooling, "s4")(x)
    embedding = layers.Flatten(name=EMBEDDING_LAYER)(x)
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(embedding)
    return keras.Model(inputs, logits, name="lenet_tcnn")


@register_model
def lenet_embed(num_classes=10, input_shape=(28, 28, 1), embedding_dim=2, head="softmax",
                activation="relu", pooling="max", widths=(32, 64), head_kwargs=None):
    """LeNet trunk -> embedding (`embedding_dim`) -> head from `losses.heads`.

    The trunk is LeNet-5's (two 5x5 convolutions, two pools, 120 -> 84 dense), with conv
    widths configurable because a 2-D embedding needs a wider trunk to separate 10 classes
    (the centre-loss and SphereFace papers widen LeNet for the same reason).

    Args:
        num_classes: number of classes. Defaults to 10.
        input_shape: (H, W, C). Defaults to (28, 28, 1).
        embedding_dim: size of the embedding layer. Defaults to 2 (plottable).
        head: a head name from `losses.heads.list_heads()`. Defaults to "softmax".
        activation: hidden activation. Defaults to "relu".
        pooling: "avg" or "max". Defaults to "max".
        widths: the two convolution widths. Defaults to (32, 64).
        head_kwargs: extra keyword arguments for the head.
    """
    from losses import heads  # losses/ stands below zoo/: zoo may import it, not the reverse

    inputs = keras.Input(input_shape, name="image")
    features = _lenet5_trunk(inputs, activation, pooling, widths=tuple(widths))
    embedding = layers.Dense(embedding_dim, name=EMBEDDING_LAYER)(features)
    outputs = heads.build_head(head, num_classes, **(head_kwargs or {}))(embedding)
    return heads.make_model(inputs, outputs, name="lenet_embed")  # HeadModel for dict heads


def embedding_model(model: keras.Model, layer_name: str = EMBEDDING_LAYER) -> keras.Model:
    """The sub-model from `model`'s input to its embedding layer (shares weights)."""
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        names = [layer.name for layer in model.layers]
        raise ValueError(f"{model.name} has no layer {layer_name!r}; layers: {names}") from None
    return keras.Model(model.inputs, layer.output, name=f"{model.name}_{layer_name}")
