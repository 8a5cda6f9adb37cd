"""Back-propagation through LeNet, derived by hand and written in plain NumPy.

A reference that does not trust the framework: every layer LeNet uses has a forward pass
that returns `(output, cache)` and a backward pass that turns δ = ∂L/∂output into the
gradients of its input and parameters, each written from the derivation quoted in its
docstring. `gradients(model, x, y)` runs these passes on a Keras model's own weights and
`sgd_step` turns the gradients into the weights one plain SGD step gives.

    from zoo.reference import backprop
    grads, loss = backprop.gradients(model, x, labels, loss="cross_entropy")
    new_weights = backprop.sgd_step(model, x, labels, learning_rate=0.1)   # {path: array}

Conventions (those of Keras 3 on TensorFlow): images are NHWC, a Conv2D kernel is
(kh, kw, in, out), a Dense kernel is (in, out), Flatten keeps NHWC order. "same" padding
at stride 1 pads (k - 1) // 2 before and the rest after (2 and 2 for a 5x5 kernel).
Pooling windows are p x p with stride p and "valid" padding (trailing rows/columns that do
not fill a window are dropped, and get zero gradient). ReLU'(0) = 0, as TensorFlow's
ReluGrad. Max pooling sends a window's gradient to its *first* maximum in row-major order:
that is what TensorFlow's CPU kernel does (checked in tests/test_reference_backprop.py);
GPU kernels (cuDNN) may break ties differently. Ties only matter when a window holds equal
maxima, e.g. a window of ReLU zeros, whose gradient the ReLU stops anyway.

Reference: Rumelhart, Hinton, Williams, "Learning representations by back-propagating
errors", Nature 1986; LeCun et al., "Gradient-based learning applied to document
recognition", Proc. IEEE 1998 (appendix on back-propagation through convolutions and
subsampling).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "conv2d_forward",
    "conv2d_backward",
    "avg_pool_forward",
    "avg_pool_backward",
    "max_pool_forward",
    "max_pool_backward",
    "flatten_forward",
    "flatten_backward",
    "dense_forward",
    "dense_backward",
    "activation_forward",
    "activation_backward",
    "softmax",
    "softmax_cross_entropy",
    "softmax_mse",
    "LOSSES",
    "forward",
    "gradients",
    "sgd_step",
]

ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")


def _check_rank(name, array, rank):
    if array.ndim != rank:
        raise ValueError(f"{name} must have rank {rank}, got shape {array.shape}")


def _pair(value, name):
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or any(int(v) != v or v < 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _same_padding(k):
    """Keras/TensorFlow "same" padding at stride 1: (before, after) for kernel size `k`."""
    before = (k - 1) // 2
    return before, k - 1 - before


# --- convolution ---------------------------------------------------------------------------


def conv2d_forward(x, w, b=None, padding="valid"):
    """2-D convolution (cross-correlation, as in Keras), stride 1, NHWC.

    Formula:
        x̃ = x zero-padded by (p_top, p_bottom, p_left, p_right)   (all 0 for "valid")
        y[n, i, j, f] = b[f] + Σ_{a<kh, b<kw, c} x̃[n, i + a, j + b, c] · w[a, b, c, f]

    Args:
        x: input, shape (N, H, W, C).
        w: kernel, shape (kh, kw, C, F).
        b: bias, shape (F,), or None for no bias. Defaults to None.
        padding: "valid" (no padding) or "same" (output H x W, padded as Keras does).
            Defaults to "valid".

    Returns:
        `(y, cache)`: y of shape (N, H', W', F) and what `conv2d_backward` needs.
    """
    x, w = np.asarray(x), np.asarray(w)
    _check_rank("x", x, 4)
    _check_rank("w", w, 4)
    if x.shape[3] != w.shape[2]:
        raise ValueError(f"x has {x.shape[3]} channels but the kernel expects {w.shape[2]}")
    if b is not None and np.shape(b) != (w.shape[3],):
        raise ValueError(f"bias must have shape ({w.shape[3]},), got {np.shape(b)}")
    kh, kw = w.shape[:2]
    if padding == "same":
        pads = _same_padding(kh) + _same_padding(kw)
    elif padding == "valid":
        pads = (0, 0, 0, 0)
    else:
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    xp = np.pad(x, ((0, 0), pads[:2], pads[2:], (0, 0)))
    if xp.shape[1] < kh or xp.shape[2] < kw:
        raise ValueError(f"input {x.shape[1:3]} is smaller than the kernel {(kh, kw)}")
    windows = sliding_window_view(xp, (kh, kw), axis=(1, 2))  # (N, H', W', C, kh, kw)
    y = np.einsum("nijcab,abcf->nijf", windows, w, optimize=True)
    if b is not None:
        y = y + np.asarray(b)
    return y, (xp, w, pads, b is not None)


def conv2d_backward(dy, cache):
    """Gradients of a stride-1 convolution, from δ = ∂L/∂y.

    Formula (δ[n, i, j, f] = ∂L/∂y[n, i, j, f], taken as 0 outside 0 ≤ i < H', 0 ≤ j < W'):
        ∂L/∂w[a, b, c, f] = Σ_{n, i, j} x̃[n, i + a, j + b, c] · δ[n, i, j, f]
        ∂L/∂b[f]          = Σ_{n, i, j} δ[n, i, j, f]
        ∂L/∂x̃[n, p, q, c] = Σ_{a, b, f} δ[n, p - a, q - b, f] · w[a, b, c, f]
                          = Σ_{a, b, f} δ̂[n, p + a, q + b, f] · w[kh-1-a, kw-1-b, c, f]
        ∂L/∂x[n, h, v, c] = ∂L/∂x̃[n, h + p_top, v + p_left, c]

    δ̂ is δ zero-padded by kh - 1 rows and kw - 1 columns on each side: the input's δ is the
    "full" correlation of the output's δ with the kernel rotated by 180°, cropped back to
    the unpadded input.

    Args:
        dy: δ, shape (N, H', W', F).
        cache: the cache `conv2d_forward` returned.

    Returns:
        `(dx, dw, db)`; `db` is None when the forward pass had no bias.
    """
    xp, w, (pt, pb, pl, pr), has_bias = cache
    dy = np.asarray(dy)
    kh, kw = w.shape[:2]
    out_shape = (xp.shape[0], xp.shape[1] - kh + 1, xp.shape[2] - kw + 1, w.shape[3])
    if dy.shape != out_shape:
        raise ValueError(f"dy must have shape {out_shape}, got {dy.shape}")
    windows = sliding_window_view(xp, (kh, kw), axis=(1, 2))
    dw = np.einsum("nijcab,nijf->abcf", windows, dy, optimize=True)
    db = dy.sum(axis=(0, 1, 2)) if has_bias else None
    dy_full = np.pad(dy, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
    dy_windows = sliding_window_view(dy_full, (kh, kw), axis=(1, 2))  # (N, Hp, Wp, F, kh, kw)
    dxp = np.einsum("npqfab,abcf->npqc", dy_windows, w[::-1, ::-1], optimize=True)
    dx = dxp[:, pt : xp.shape[1] - pb, pl : xp.shape[2] - pr, :]
    return dx, dw, db


# --- pooling -------------------------------------------------------------------------------


def _blocks(x, pool_size):
    """x cropped to whole windows, as (N, H', ph, W', pw, C); window (i, j) = [:, i, :, j, :, :]."""
    x = np.asarray(x)
    _check_rank("x", x, 4)
    ph, pw = _pair(pool_size, "pool_size")
    n, h, w, c = x.shape
    ho, wo = h // ph, w // pw
    if ho == 0 or wo == 0:
        raise ValueError(f"input {(h, w)} is smaller than the pool window {(ph, pw)}")
    return x[:, : ho * ph, : wo * pw, :].reshape(n, ho, ph, wo, pw, c)


def _unblock(blocks, x_shape):
    """Inverse of `_blocks` for gradients: zeros where the forward pass cropped."""
    n, ho, ph, wo, pw, c = blocks.shape
    dx = np.zeros(x_shape, dtype=blocks.dtype)
    dx[:, : ho * ph, : wo * pw, :] = blocks.reshape(n, ho * ph, wo * pw, c)
    return dx


def avg_pool_forward(x, pool_size=2):
    """Average pooling, p x p windows, stride p, "valid" padding, NHWC.

    Formula:
        y[n, i, j, c] = 1/(ph·pw) · Σ_{a<ph, b<pw} x[n, ph·i + a, pw·j + b, c]

    Args:
        x: input, shape (N, H, W, C).
        pool_size: window (and stride) size, an int or (ph, pw). Defaults to 2.

    Returns:
        `(y, cache)` with y of shape (N, ⌊H/ph⌋, ⌊W/pw⌋, C).
    """
    blocks = _blocks(x, pool_size)
    return blocks.mean(axis=(2, 4)), (np.shape(x), blocks.shape)


def avg_pool_backward(dy, cache):
    """Gradient of average pooling, from δ = ∂L/∂y.

    Formula (every input cell lies in at most one window, as the stride equals the window):
        ∂L/∂x[n, ph·i + a, pw·j + b, c] = δ[n, i, j, c] / (ph·pw)   for a < ph, b < pw
        ∂L/∂x[n, h, v, c] = 0   for h ≥ ph·H' or v ≥ pw·W' (cropped by "valid")

    Args:
        dy: δ, shape (N, H', W', C).
        cache: the cache `avg_pool_forward` returned.

    Returns:
        dx, shape of the forward input.
    """
    x_shape, (n, ho, ph, wo, pw, c) = cache
    dy = np.asarray(dy)
    if dy.shape != (n, ho, wo, c):
        raise ValueError(f"dy must have shape {(n, ho, wo, c)}, got {dy.shape}")
    spread = np.broadcast_to(dy[:, :, None, :, None, :] / (ph * pw), (n, ho, ph, wo, pw, c))
    return _unblock(spread, x_shape)


def max_pool_forward(x, pool_size=2):
    """Max pooling, p x p windows, stride p, "valid" padding, NHWC.

    Formula:
        y[n, i, j, c] = max_{a<ph, b<pw} x[n, ph·i + a, pw·j + b, c]
        (a*, b*)[n, i, j, c] = the first (a, b) in row-major order that attains the max

    Args:
        x: input, shape (N, H, W, C).
        pool_size: window (and stride) size, an int or (ph, pw). Defaults to 2.

    Returns:
        `(y, cache)`; the cache holds the argmax (a*, b*) as a flat index a·pw + b.
    """
    blocks = _blocks(x, pool_size)
    n, ho, ph, wo, pw, c = blocks.shape
    windows = blocks.transpose(0, 1, 3, 5, 2, 4).reshape(n, ho, wo, c, ph * pw)
    argmax = windows.argmax(axis=-1)  # np.argmax returns the first maximum
    y = np.take_along_axis(windows, argmax[..., None], axis=-1)[..., 0]
    return y, (np.shape(x), blocks.shape, argmax)


def max_pool_backward(dy, cache):
    """Gradient of max pooling, from δ = ∂L/∂y.

    Formula:
        ∂L/∂x[n, ph·i + a, pw·j + b, c] = δ[n, i, j, c] · [(a, b) = (a*, b*)[n, i, j, c]]
        ∂L/∂x[n, h, v, c] = 0   for cells cropped by "valid"

    The max is piecewise the identity on the winning cell, so δ goes to that cell alone;
    on a tie the first maximum in row-major order takes it all (TensorFlow's CPU choice).

    Args:
        dy: δ, shape (N, H', W', C).
        cache: the cache `max_pool_forward` returned.

    Returns:
        dx, shape of the forward input.
    """
    x_shape, (n, ho, ph, wo, pw, c), argmax = cache
    dy = np.asarray(dy)
    if dy.shape != (n, ho, wo, c):
        raise ValueError(f"dy must have shape {(n, ho, wo, c)}, got {dy.shape}")
    winner = argmax[..., None] == np.arange(ph * pw)  # (N, H', W', C, ph·pw)
    routed = (dy[..., None] * winner).reshape(n, ho, wo, c, ph, pw)
    return _unblock(routed.transpose(0, 1, 4, 2, 5, 3), x_shape)


# --- flatten, dense, activations ------------------------------------------------------------


def flatten_forward(x):
    """Flatten all but the batch axis in C order (NHWC -> N x (H·W·C), as Keras Flatten).

    Formula:
        y[n, (h·W + v)·C + c] = x[n, h, v, c]
    """
    x = np.asarray(x)
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dy, cache):
    """Gradient of flatten: the same numbers, put back in the input's shape.

    Formula:
        ∂L/∂x[n, h, v, c] = δ[n, (h·W + v)·C + c]
    """
    return np.asarray(dy).reshape(cache)


def dense_forward(x, w, b=None):
    """Fully connected layer.

    Formula:
        y[n, j] = b[j] + Σ_i x[n, i] · w[i, j]

    Args:
        x: input, shape (N, I).
        w: kernel, shape (I, J).
        b: bias, shape (J,), or None for no bias. Defaults to None.

    Returns:
        `(y, cache)` with y of shape (N, J).
    """
    x, w = np.asarray(x), np.asarray(w)
    _check_rank("x", x, 2)
    _check_rank("w", w, 2)
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"x has {x.shape[1]} features but the kernel expects {w.shape[0]}")
    if b is not None and np.shape(b) != (w.shape[1],):
        raise ValueError(f"bias must have shape ({w.shape[1]},), got {np.shape(b)}")
    y = x @ w
    if b is not None:
        y = y + np.asarray(b)
    return y, (x, w, b is not None)


def dense_backward(dy, cache):
    """Gradients of a fully connected layer, from δ = ∂L/∂y.

    Formula:
        ∂L/∂x[n, i] = Σ_j δ[n, j] · w[i, j]        (δ wᵀ)
        ∂L/∂w[i, j] = Σ_n x[n, i] · δ[n, j]        (xᵀ δ)
        ∂L/∂b[j]    = Σ_n δ[n, j]

    Returns:
        `(dx, dw, db)`; `db` is None when the forward pass had no bias.
    """
    x, w, has_bias = cache
    dy = np.asarray(dy)
    if dy.shape != (x.shape[0], w.shape[1]):
        raise ValueError(f"dy must have shape {(x.shape[0], w.shape[1])}, got {dy.shape}")
    return dy @ w.T, x.T @ dy, (dy.sum(axis=0) if has_bias else None)


def activation_forward(z, name):
    """Element-wise activation a = φ(z).

    Formula:
        relu: max(z, 0);  sigmoid: 1 / (1 + e^{-z}) = (1 + tanh(z/2)) / 2;  tanh;  linear: z

    Args:
        z: pre-activation, any shape.
        name: one of "relu", "sigmoid", "tanh", "linear".

    Returns:
        `(a, cache)`.
    """
    z = np.asarray(z)
    if name == "relu":
        a = np.maximum(z, 0)
    elif name == "sigmoid":
        a = 0.5 * (1 + np.tanh(0.5 * z))  # no overflow for large |z|
    elif name == "tanh":
        a = np.tanh(z)
    elif name == "linear":
        a = z
    else:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
    return a, (name, z, a)


def activation_backward(da, cache):
    """Gradient of an element-wise activation, from δ = ∂L/∂a.

    Formula:
        ∂L/∂z = δ ⊙ φ'(z), with
        relu: [z > 0] (0 at z = 0, as TensorFlow);  sigmoid: a (1 - a);  tanh: 1 - a²;
        linear: 1
    """
    name, z, a = cache
    da = np.asarray(da)
    if name == "relu":
        return da * (z > 0)
    if name == "sigmoid":
        return da * a * (1 - a)
    if name == "tanh":
        return da * (1 - a * a)
    return da


# --- output losses -------------------------------------------------------------------------


def softmax(z):
    """Row-wise softmax p[n, k] = e^{z[n, k]} / Σ_j e^{z[n, j]}, shifted by the row max."""
    z = np.asarray(z)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(logits, targets):
    """Softmax cross-entropy, mean over the batch, and its gradient with respect to logits.

    Formula:
        p = softmax(z)
        L = (1/N) Σ_n Σ_k -t[n, k] · log p[n, k]
          = (1/N) Σ_n (Σ_k t[n, k]) · logsumexp(z[n]) - Σ_k t[n, k] z[n, k]
        ∂L/∂z[n, k] = (p[n, k] · Σ_j t[n, j] - t[n, k]) / N     (= (p - t)/N for one-hot t)

    Matches `keras.losses.CategoricalCrossentropy(from_logits=True)` (and the sparse form
    on integer labels) with the default "sum_over_batch_size" reduction.

    Args:
        logits: z, shape (N, K).
        targets: t, one-hot or soft labels, shape (N, K).

    Returns:
        `(loss, dlogits)`: a Python float and an array shaped like `logits`.
    """
    z, t = np.asarray(logits), np.asarray(targets)
    shifted = z - z.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    n = z.shape[0]
    loss = -(t * log_p).sum() / n
    dz = (np.exp(log_p) * t.sum(axis=-1, keepdims=True) - t) / n
    return float(loss), dz.astype(z.dtype, copy=False)


def softmax_mse(logits, targets):
    """Mean squared error between softmax probabilities and targets, and its logit gradient.

    Formula:
        p = softmax(z)
        L = 1/(N·K) Σ_{n,k} (p[n, k] - t[n, k])²
        g[n, k] = ∂L/∂p[n, k] = 2 (p[n, k] - t[n, k]) / (N·K)
        ∂L/∂z[n, k] = Σ_j g[n, j] · ∂p[n, j]/∂z[n, k] = p[n, k] · (g[n, k] - Σ_j g[n, j] p[n, j])
        (softmax Jacobian ∂p_j/∂z_k = p_j (δ_jk - p_k))

    Matches `keras.losses.MeanSquaredError()(t, softmax(z))`.

    Args:
        logits: z, shape (N, K).
        targets: t, one-hot or soft labels, shape (N, K).

    Returns:
        `(loss, dlogits)`: a Python float and an array shaped like `logits`.
    """
    z, t = np.asarray(logits), np.asarray(targets)
    p = softmax(z)
    diff = p - t
    g = 2 * diff / diff.size
    dz = p * (g - (g * p).sum(axis=-1, keepdims=True))
    return float(np.mean(diff * diff)), dz.astype(z.dtype, copy=False)


LOSSES = {"cross_entropy": softmax_cross_entropy, "mse": softmax_mse}


def _loss_fn(loss):
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable, got {loss!r}")
    return LOSSES[loss]


def _targets(y, num_classes, batch, dtype):
    """Integer labels (N,) or (N, 1), or one-hot/soft targets (N, K) -> float (N, K)."""
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer) and y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 1:
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"labels of shape (N,) must be integers, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(
                f"labels must lie in [0, {num_classes}), got [{y.min()}, {y.max()}]"
            )
        y = np.eye(num_classes, dtype=dtype)[y]
    if y.shape != (batch, num_classes):
        raise ValueError(
            f"y must be integer labels ({batch},) or targets ({batch}, {num_classes}), "
            f"got shape {y.shape}"
        )
    return y.astype(dtype, copy=False)


# --- a Keras model, walked layer by layer ----------------------------------------------------


def _activation_name(layer):
    import keras

    known = {
        keras.activations.relu: "relu",
        keras.activations.sigmoid: "sigmoid",
        keras.activations.tanh: "tanh",
        keras.activations.linear: "linear",
    }
    for fn, name in known.items():
        if layer.activation is fn:
            return name
    raise ValueError(
        f"layer {layer.name!r}: activation must be one of {ACTIVATIONS}, got {layer.activation!r}"
    )


def _check_plain(layer):
    """Refuse options this reference does not model (they would change the maths)."""
    for attr in ("kernel_regularizer", "bias_regularizer", "activity_regularizer"):
        if getattr(layer, attr, None) is not None:
            raise ValueError(f"layer {layer.name!r}: {attr} is not supported, got one")
    if getattr(layer, "lora_enabled", False):
        raise ValueError(f"layer {layer.name!r}: LoRA is not supported")
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ValueError(
            f"layer {layer.name!r}: data_format must be 'channels_last', got {layer.data_format!r}"
        )


def _plan(model):
    """The model's layers as a list of (kind, layer), checking they form one plain chain."""
    import keras

    kinds = {
        keras.layers.InputLayer: "input",
        keras.layers.Conv2D: "conv",
        keras.layers.AveragePooling2D: "avg_pool",
        keras.layers.MaxPooling2D: "max_pool",
        keras.layers.Flatten: "flatten",
        keras.layers.Dense: "dense",
    }
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"model must have one input and one output, got {len(model.inputs)} and "
            f"{len(model.outputs)}"
        )
    plan, previous = [], model.inputs[0]
    for layer in model.layers:
        kind = kinds.get(type(layer))
        if kind is None:
            raise ValueError(
                f"layer {layer.name!r} of type {type(layer).__name__} is not supported; "
                f"supported: {', '.join(cls.__name__ for cls in kinds)}"
            )
        if kind == "input":
            continue
        try:
            chained = layer.input is previous
        except (AttributeError, ValueError):  # a layer used at several places
            chained = False
        if not chained:
            raise ValueError(f"layer {layer.name!r} does not follow the previous one: "
                             "the model must be a single chain of layers")
        _check_plain(layer)
        if kind == "conv":
            if tuple(layer.strides) != (1, 1) or tuple(layer.dilation_rate) != (1, 1):
                raise ValueError(
                    f"layer {layer.name!r}: only stride 1 and dilation 1 are supported, got "
                    f"strides={layer.strides}, dilation_rate={layer.dilation_rate}"
                )
            if layer.groups != 1:
                raise ValueError(f"layer {layer.name!r}: groups must be 1, got {layer.groups}")
        if kind.endswith("pool"):
            if tuple(layer.strides) != tuple(layer.pool_size) or layer.padding != "valid":
                raise ValueError(
                    f"layer {layer.name!r}: pooling must use strides = pool_size and 'valid' "
                    f"padding, got pool_size={layer.pool_size}, strides={layer.strides}, "
                    f"padding={layer.padding!r}"
                )
        plan.append((kind, layer))
        previous = layer.output
    if previous is not model.outputs[0]:
        raise ValueError("the last layer's output is not the model's output")
    return plan


def _value(variable, dtype):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=dtype)


def _compute_dtype(model, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    dtypes = [np.dtype(v.dtype) for v in model.trainable_variables]
    return np.result_type(*dtypes) if dtypes else np.dtype("float32")


def _run_forward(model, x, dtype):
    """Logits and the per-layer caches [(kind, layer, caches...)] for `backward`."""
    plan = _plan(model)
    x = np.asarray(x, dtype=dtype)
    expected = tuple(model.inputs[0].shape[1:])
    if x.ndim != len(expected) + 1 or any(
        e is not None and e != s for e, s in zip(expected, x.shape[1:])
    ):
        raise ValueError(f"x must have shape (N, {', '.join(map(str, expected))}), got {x.shape}")
    tape = []
    for kind, layer in plan:
        if kind in ("conv", "dense"):
            w = _value(layer.kernel, dtype)
            b = _value(layer.bias, dtype) if layer.use_bias else None
            if kind == "conv":
                z, cache = conv2d_forward(x, w, b, padding=layer.padding)
            else:
                z, cache = dense_forward(x, w, b)
            x, act_cache = activation_forward(z, _activation_name(layer))
            tape.append((kind, layer, cache, act_cache))
        elif kind == "avg_pool":
            x, cache = avg_pool_forward(x, layer.pool_size)
            tape.append((kind, layer, cache))
        elif kind == "max_pool":
            x, cache = max_pool_forward(x, layer.pool_size)
            tape.append((kind, layer, cache))
        else:  # flatten
            x, cache = flatten_forward(x)
            tape.append((kind, layer, cache))
    return x, tape


def forward(model, x, dtype=None):
    """The model's output for `x`, computed with this module's NumPy forward passes.

    Args:
        model: a Keras model made of the layers `gradients` supports.
        x: a batch, shape (N, *input_shape).
        dtype: NumPy dtype to compute in. Defaults to None (the widest dtype among the
            model's trainable variables, e.g. float32).
    """
    logits, _ = _run_forward(model, x, _compute_dtype(model, dtype))
    return logits


def gradients(model, x, y, loss="cross_entropy", dtype=None):
    """Per-variable gradients of `loss(softmax(model(x)), y)`, by hand-written backprop.

    Walks `model.layers` (InputLayer, Conv2D with stride 1 and "valid"/"same" padding,
    AveragePooling2D, MaxPooling2D, Flatten, Dense; activations relu, sigmoid, tanh,
    linear), runs the NumPy forward passes on the model's own weights, then the backward
    passes in reverse order:

        δ_L = ∂L/∂logits                        (from the loss)
        δ_z = δ_a ⊙ φ'(z)                       (through each layer's activation)
        δ_in, ∂L/∂W, ∂L/∂b = layer_backward(δ_z)  (conv, pool, flatten, dense)

    Args:
        model: a single-chain Keras model whose last layer outputs logits.
        x: a batch, shape (N, *input_shape).
        y: integer labels (N,) or one-hot/soft targets (N, num_classes).
        loss: "cross_entropy" (softmax cross-entropy, mean over the batch), "mse" (mean
            squared error between softmax and targets, mean over batch and classes), or a
            callable `(logits, targets) -> (loss, dlogits)`. Defaults to "cross_entropy".
        dtype: NumPy dtype to compute in. Defaults to None (the widest dtype among the
            model's trainable variables).

    Returns:
        `(grads, loss_value)`: `{variable.path: gradient array}` for every trainable
        variable, and the loss as a Python float.

    Raises:
        ValueError: an unsupported layer, activation or option; a model that is not a
            single chain; `x` or `y` of the wrong shape; labels out of range; unknown loss.
    """
    dtype = _compute_dtype(model, dtype)
    loss_fn = _loss_fn(loss)
    logits, tape = _run_forward(model, x, dtype)
    targets = _targets(y, logits.shape[-1], logits.shape[0], dtype)
    loss_value, delta = loss_fn(logits, targets)
    grads = {}
    for kind, layer, *caches in reversed(tape):
        if kind in ("conv", "dense"):
            cache, act_cache = caches
            delta = activation_backward(delta, act_cache)
            backward = conv2d_backward if kind == "conv" else dense_backward
            delta, dw, db = backward(delta, cache)
            grads[layer.kernel.path] = dw
            if db is not None:
                grads[layer.bias.path] = db
        elif kind == "avg_pool":
            delta = avg_pool_backward(delta, caches[0])
        elif kind == "max_pool":
            delta = max_pool_backward(delta, caches[0])
        else:
            delta = flatten_backward(delta, caches[0])
    trainable = {v.path for v in model.trainable_variables}
    return {path: g for path, g in grads.items() if path in trainable}, loss_value


def sgd_step(model, x, y, learning_rate=0.01, loss="cross_entropy", dtype=None):
    """The weights after one plain SGD step on the batch (the model is left unchanged).

    Formula:
        w ← w - η · ∂L/∂w       (keras.optimizers.SGD with momentum 0, no weight decay)

    Args:
        model, x, y, loss, dtype: as in `gradients`.
        learning_rate: η. Defaults to 0.01.

    Returns:
        `{variable.path: updated array}` for every trainable variable.
    """
    dtype = _compute_dtype(model, dtype)
    grads, _ = gradients(model, x, y, loss=loss, dtype=dtype)
    return {
        v.path: _value(v, dtype) - np.asarray(learning_rate, dtype) * grads[v.path]
        for v in model.trainable_variables
    }
