"""RepVGG: a multi-branch network for training that becomes a plain VGG stack for inference.

Ding, Zhang, Ma, Han, Ding, Sun, "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021.

- `RepVGGBlock`: while training, ReLU(BN(conv3x3(x)) + BN(conv1x1(x)) + BN(x)), the identity
  branch only when the block keeps the shape (in channels == out channels, stride 1).
- `reparameterize(model)`: the deploy model, every block folded into one 3x3 convolution with
  bias followed by ReLU. It gives the same outputs in inference mode and is made of plain Keras
  layers (Conv2D, ReLU, ZeroPadding2D), so it loads without LossLab.
- `repvgg_backbone(input_shape, widths, depths)`: the feature extractor (e.g. for a detector);
  the first block of every stage has stride 2.
- Registered models: `repvgg_tiny` (four narrow stages for 28-64 px images) and `repvgg_a0`
  (the paper's RepVGG-A0: widths 48-48-96-192-1280, depths 1-2-4-14-1).

Padding follows the paper (PyTorch `padding=1`): the 3x3 branch pads one pixel on every side,
so the centre of its window at output (i, j) is input (s*i, s*j), exactly the pixel that the
1x1 branch reads. Keras "same" padding with stride 2 pads only bottom/right when the input size
is even, which would move the 3x3 centre to (2i+1, 2j+1); stride-2 blocks therefore pad
explicitly and convolve "valid".
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from zoo.models.lenet import EMBEDDING_LAYER
from zoo.registry import register_model


def _fold_batchnorm(bn: layers.BatchNormalization):
    """(scale, shift) with BN(z) = scale * z + shift in inference mode, in float64."""
    gamma = _numpy(bn.gamma) if bn.scale else 1.0
    beta = _numpy(bn.beta) if bn.center else 0.0
    sigma = np.sqrt(_numpy(bn.moving_variance) + bn.epsilon)
    scale = gamma / sigma
    return scale, beta - _numpy(bn.moving_mean) * scale


def _numpy(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


@keras.saving.register_keras_serializable(package="losslab")
class RepVGGBlock(layers.Layer):
    """RepVGG block: 3x3 conv+BN, 1x1 conv+BN and identity BN summed, then ReLU.

    Formula:
        training form:  y = ReLU(BN_3(W_3 * x) + BN_1(W_1 * x) + BN_id(x))
        deploy form:    y = ReLU(W' * x + b')
        with, for every BN (σ = sqrt(moving_var + ε)):  BN(z) = γ/σ · z + (β - γ·μ/σ), so
        W' = γ_3/σ_3 · W_3 + pad(γ_1/σ_1 · W_1) + γ_id/σ_id · I,   b' = Σ (β - γ·μ/σ)
        where pad() puts the 1x1 kernel at the centre of a 3x3 kernel and I[1, 1, i, i] = 1.

    The identity branch exists only when the input has `filters` channels and `strides` is 1.
    Both 3x3 windows pad one pixel on every side (as in the paper), so the 1x1 branch reads the
    centre of the 3x3 window at stride 2 too (see the module docstring).

    Args:
        filters: number of output channels.
        strides: 1 or 2. Defaults to 1.
        deploy: False builds the three-branch training form; True builds the single 3x3
            convolution with bias that `reparameterize` folds it into. Defaults to False.
        kernel_initializer: initializer of the convolution kernels. Defaults to "he_normal".
        bn_momentum: momentum of the BatchNormalization layers. Defaults to 0.99.
        bn_epsilon: epsilon of the BatchNormalization layers (used again when folding them).
            Defaults to 1e-3 (Keras's default; PyTorch's is 1e-5).

    Reference: Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021.
    """

    def __init__(self, filters, strides=1, deploy=False, kernel_initializer="he_normal",
                 bn_momentum=0.99, bn_epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        if strides not in (1, 2):
            raise ValueError(f"strides must be 1 or 2, got {strides!r}")
        self.filters = int(filters)
        self.strides = int(strides)
        self.deploy = bool(deploy)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.has_identity = False

    def _conv(self, kernel_size, use_bias, name):
        # stride 1: "same" pads 1 on every side; stride 2: call() pads explicitly (see above)
        padding = "same" if self.strides == 1 else "valid"
        return layers.Conv2D(self.filters, kernel_size, strides=self.strides, padding=padding,
                             use_bias=use_bias, kernel_initializer=self.kernel_initializer,
                             name=name, dtype=self.dtype_policy)

    def _bn(self, name):
        return layers.BatchNormalization(momentum=self.bn_momentum, epsilon=self.bn_epsilon,
                                         name=name, dtype=self.dtype_policy)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError("RepVGGBlock expects (batch, height, width, channels) inputs with a "
                             f"known channel count, got shape {tuple(input_shape)}")
        in_channels = int(input_shape[-1])
        padded_shape = tuple(input_shape)
        if self.strides != 1:
            padded_shape = (input_shape[0],) + tuple(
                None if size is None else size + 2 for size in input_shape[1:3]
            ) + (in_channels,)
        out_shape = self.compute_output_shape(input_shape)
        if self.deploy:
            self.fused = self._conv(3, True, "fused")
            self.fused.build(padded_shape)
        else:
            self.conv3x3 = self._conv(3, False, "conv3x3")
            self.conv3x3.build(padded_shape)
            self.bn3x3 = self._bn("bn3x3")
            self.bn3x3.build(out_shape)
            # the 1x1 branch reads the unpadded input: at stride 2, (2i, 2j) = the 3x3 centre
            self.conv1x1 = self._conv(1, False, "conv1x1")
            self.conv1x1.build(tuple(input_shape))
            self.bn1x1 = self._bn("bn1x1")
            self.bn1x1.build(out_shape)
            self.has_identity = in_channels == self.filters and self.strides == 1
            if self.has_identity:
                self.bn_identity = self._bn("bn_identity")
                self.bn_identity.build(tuple(input_shape))

    def _pad(self, x):
        if self.strides == 1:
            return x
        return keras.ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])

    def call(self, inputs, training=None):
        if self.deploy:
            return keras.ops.relu(self.fused(self._pad(inputs)))
        y = self.bn3x3(self.conv3x3(self._pad(inputs)), training=training)
        y = y + self.bn1x1(self.conv1x1(inputs), training=training)
        if self.has_identity:
            y = y + self.bn_identity(inputs, training=training)
        return keras.ops.relu(y)

    def compute_output_shape(self, input_shape):
        def out(size):
            return None if size is None else (size - 1) // self.strides + 1
        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), self.filters)

    def fused_kernel_and_bias(self):
        """The (3, 3, in, out) kernel and (out,) bias of the equivalent single convolution.

        Uses the BN moving statistics, so the result matches the block in inference mode.
        """
        if not self.built:
            raise ValueError(f"{self.name} is not built yet; call it on an input first")
        if self.deploy:
            return (keras.ops.convert_to_numpy(self.fused.kernel).astype("float32"),
                    keras.ops.convert_to_numpy(self.fused.bias).astype("float32"))
        scale3, shift3 = _fold_batchnorm(self.bn3x3)
        kernel = _numpy(self.conv3x3.kernel) * scale3
        bias = shift3
        scale1, shift1 = _fold_batchnorm(self.bn1x1)
        kernel[1, 1] += _numpy(self.conv1x1.kernel)[0, 0] * scale1
        bias = bias + shift1
        if self.has_identity:
            scale_id, shift_id = _fold_batchnorm(self.bn_identity)
            channels = np.arange(self.filters)
            kernel[1, 1, channels, channels] += scale_id
            bias = bias + shift_id
        return kernel.astype("float32"), np.asarray(bias, dtype="float32")

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "strides": self.strides,
            "deploy": self.deploy,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
        }


def _check_stages(widths, depths):
    widths, depths = tuple(widths), tuple(depths)
    if not widths or len(widths) != len(depths):
        raise ValueError("widths and depths must be non-empty and of the same length (one entry "
                         f"per stage), got widths={widths} and depths={depths}")
    for label, values in (("widths", widths), ("depths", depths)):
        if not all(isinstance(v, (int, np.integer)) and v >= 1 for v in values):
            raise ValueError(f"{label} must be positive integers, got {values}")
    return widths, depths


def _stages(x, widths, depths, deploy=False):
    """Apply the stages to `x`; returns the output of every stage (strides 2, 4, 8, ...)."""
    outputs = []
    for stage, (width, depth) in enumerate(zip(widths, depths)):
        for block in range(depth):
            x = RepVGGBlock(width, strides=2 if block == 0 else 1, deploy=deploy,
                            name=f"stage{stage}_block{block}")(x)
        outputs.append(x)
    return outputs


def repvgg_backbone(input_shape=(None, None, 3), widths=(16, 32, 64, 128), depths=(1, 2, 2, 2),
                    return_stages=False, deploy=False, name="repvgg_backbone"):
    """The RepVGG feature extractor: stages of blocks, each stage opening with stride 2.

    Args:
        input_shape: (H, W, C); H and W may be None. Defaults to (None, None, 3).
        widths: channels of each stage. Defaults to (16, 32, 64, 128).
        depths: number of blocks of each stage. Defaults to (1, 2, 2, 2).
        return_stages: False outputs the last feature map (stride 2**len(widths)); True outputs
            the list of every stage's feature map (strides 2, 4, 8, ...), e.g. for a feature
            pyramid. Defaults to False.
        deploy: build the blocks in their fused form. Defaults to False.
        name: model name. Defaults to "repvgg_backbone".

    Reference: Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021.
    """
    widths, depths = _check_stages(widths, depths)
    inputs = keras.Input(input_shape, name="image")
    features = _stages(inputs, widths, depths, deploy=deploy)
    return keras.Model(inputs, features if return_stages else features[-1], name=name)


def _repvgg_classifier(name, num_classes, input_shape, widths, depths, include_top,
                       embedding_dim, head, head_kwargs):
    widths, depths = _check_stages(widths, depths)
    inputs = keras.Input(input_shape, name="image")
    x = _stages(inputs, widths, depths)[-1]
    if not include_top:
        return keras.Model(inputs, x, name=f"{name}_features")
    if embedding_dim is None:
        embedding = layers.GlobalAveragePooling2D(name=EMBEDDING_LAYER)(x)
    else:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        embedding = layers.Dense(embedding_dim, name=EMBEDDING_LAYER)(x)
    from losses import heads  # losses/ stands below zoo/: zoo may import it, not the reverse

    outputs = heads.build_head(head, num_classes, **(head_kwargs or {}))(embedding)
    return keras.Model(inputs, outputs, name=name)


@register_model
def repvgg_tiny(num_classes=10, input_shape=(32, 32, 3), widths=(16, 32, 64, 128),
                depths=(1, 2, 2, 2), include_top=True, embedding_dim=None, head="softmax",
                head_kwargs=None):
    """A small RepVGG for 28-64 px images: four stages, total stride 16.

    Train it as it is, then call `reparameterize(model)` for inference.

    Args:
        num_classes: number of classes. Defaults to 10.
        input_shape: (H, W, C); H and W may be None. Defaults to (32, 32, 3).
        widths: channels of each stage. Defaults to (16, 32, 64, 128).
        depths: blocks per stage. Defaults to (1, 2, 2, 2).
        include_top: False returns the feature map model (no pooling, no head).
            Defaults to True.
        embedding_dim: None makes the global average pool the "embedding" layer; an integer
            adds a dense embedding of that size after it. Defaults to None.
        head: a head name from `losses.heads.list_heads()`. Defaults to "softmax" (logits).
        head_kwargs: extra keyword arguments for the head.
    """
    return _repvgg_classifier("repvgg_tiny", num_classes, input_shape, widths, depths,
                              include_top, embedding_dim, head, head_kwargs)


@register_model
def repvgg_a0(num_classes=1000, input_shape=(224, 224, 3), include_top=True, embedding_dim=None,
              head="softmax", head_kwargs=None):
    """RepVGG-A0 of the paper: widths 48-48-96-192-1280, depths 1-2-4-14-1 (a = 0.75, b = 2.5).

    Args:
        num_classes: number of classes. Defaults to 1000.
        input_shape: (H, W, C). Defaults to (224, 224, 3).
        include_top: False returns the feature map model. Defaults to True.
        embedding_dim: None makes the global average pool the "embedding" layer; an integer
            adds a dense embedding of that size. Defaults to None.
        head: a head name from `losses.heads.list_heads()`. Defaults to "softmax".
        head_kwargs: extra keyword arguments for the head.

    Reference: Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021,
    which reports 8.30M parameters for the fused model with a 1000-class head.
    """
    return _repvgg_classifier("repvgg_a0", num_classes, input_shape, (48, 48, 96, 192, 1280),
                              (1, 2, 4, 14, 1), include_top, embedding_dim, head, head_kwargs)


def reparameterize(model: keras.Model) -> keras.Model:
    """The deploy copy of `model`: every training-form `RepVGGBlock` becomes one 3x3 conv.

    Each block is replaced by `Conv2D(3x3, bias)` (preceded by `ZeroPadding2D(1)` at stride 2)
    and `ReLU`, named after the block (`<block>` and `<block>_relu`), with the kernel and bias of
    `RepVGGBlock.fused_kernel_and_bias`; every other layer is cloned with its weights. The copy
    matches `model` in inference mode (BN uses its moving statistics) and shares no variables
    with it. A model without training-form blocks is copied unchanged.

    Args:
        model: a functional `keras.Model`; nested functional models are handled too.
    """
    if not isinstance(model, keras.Model) or isinstance(model, keras.Sequential) or not hasattr(
            model, "_run_through_graph"):
        raise ValueError("reparameterize expects a functional keras.Model (built with "
                         f"keras.Input), got {type(model).__name__}")
    clones = []  # (original, clone) pairs whose weights are copied once the clone is built

    def clone_function(layer):
        if isinstance(layer, RepVGGBlock) and not layer.deploy:
            return layer  # replaced in call_function, never called
        clone = layer.__class__.from_config(layer.get_config())
        clones.append((layer, clone))
        return clone

    def call_function(layer, *args, **kwargs):
        if not (isinstance(layer, RepVGGBlock) and not layer.deploy):
            return layer(*args, **kwargs)
        x = args[0]
        if layer.strides != 1:
            x = layers.ZeroPadding2D(1, name=f"{layer.name}_pad", dtype=layer.dtype_policy)(x)
        conv = layers.Conv2D(layer.filters, 3, strides=layer.strides,
                             padding="same" if layer.strides == 1 else "valid",
                             name=layer.name, dtype=layer.dtype_policy)
        x = conv(x)
        conv.set_weights(list(layer.fused_kernel_and_bias()))
        return layers.ReLU(name=f"{layer.name}_relu", dtype=layer.dtype_policy)(x)

    deploy = keras.models.clone_model(model, clone_function=clone_function,
                                      call_function=call_function, recursive=True)
    left = [layer.name for layer in deploy._flatten_layers(include_self=False)
            if isinstance(layer, RepVGGBlock) and not layer.deploy]
    if left:  # e.g. inside a nested Sequential model, where clone_model has no call_function
        raise ValueError(f"could not fold the RepVGG blocks {left} of {model.name}; keep them in "
                         "functional (sub-)models")
    for original, clone in clones:
        clone.set_weights(original.get_weights())
    return deploy
