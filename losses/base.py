"""Shared input handling for every LossLab loss: dtypes, label forms, and clear errors.

Every loss calls these first, so bad input gets the same `ValueError` wording everywhere:

- `as_float32(y_pred)`: compute in float32 even under mixed precision (float16/bfloat16).
- `sparse_labels(y_true, num_classes)`: integer labels (B,) or (B, 1), or one-hot (B, C),
  -> int32 (B,). Shapes are checked statically; label values are checked whenever they are
  concrete (eager calls, NumPy input). Inside a compiled TensorFlow graph the values are not
  known in Python, so the check becomes a graph assertion that stops training with the same
  message (an InvalidArgumentError wrapping it), instead of a silently wrong loss.
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras


def as_float32(x):
    return ops.cast(x, "float32")


def static_shape(x):
    """The shape known now (None for unknown dims); lists and scalars via NumPy."""
    if not hasattr(x, "shape"):
        return tuple(np.shape(x))
    return tuple(x.shape)


def check_rank(x, rank, what: str, expected: str):
    """Raise ValueError unless `x` has `rank` dimensions (or one of several ranks)."""
    ranks = (rank,) if isinstance(rank, int) else tuple(rank)
    shape = static_shape(x)
    if len(shape) not in ranks:
        raise ValueError(f"{what} must have shape {expected}, got shape {shape}")
    return shape


def concrete_numpy(x):
    """`x` as a NumPy array if its values are known now, else None (symbolic/traced)."""
    if isinstance(x, (np.ndarray, np.generic, int, float, list, tuple)):
        return np.asarray(x)
    try:
        return np.asarray(ops.convert_to_numpy(x))
    except Exception:  # symbolic TF tensor, JAX tracer, ...
        return None


def _assert_in_range_graph(labels, num_classes, message):
    if keras.backend.backend() != "tensorflow":
        return labels
    import tensorflow as tf

    if tf.executing_eagerly():
        return labels
    ok = tf.logical_and(tf.reduce_all(labels >= 0), tf.reduce_all(labels < num_classes))
    with tf.control_dependencies([tf.debugging.Assert(ok, [message, tf.reduce_min(labels),
                                                          tf.reduce_max(labels)])]):
        return tf.identity(labels)


def sparse_labels(y_true, num_classes: int | None, what: str = "y_true"):
    """Integer labels (B,), (B, 1) or one-hot (B, C) -> int32 (B,), validated.

    With `num_classes=None` (metric losses, which compare labels only for equality) any
    integer labels and any one-hot width are accepted; otherwise they must fit the classes.
    Non-integer values raise a `ValueError` whenever the labels are concrete.
    """
    shape = static_shape(y_true)
    one_hot = len(shape) == 2 and shape[-1] is not None and shape[-1] > 1
    classes = "num_classes" if num_classes is None else num_classes
    if one_hot:
        if num_classes is not None and shape[-1] != num_classes:
            raise ValueError(f"{what} is one-hot with {shape[-1]} classes but the model "
                             f"outputs {num_classes} classes")
        return ops.cast(ops.argmax(y_true, axis=-1), "int32")
    if len(shape) == 2 and shape[-1] == 1:
        y_true = ops.reshape(y_true, (-1,))
    elif len(shape) != 1:
        raise ValueError(f"{what} must be integer labels of shape (batch,) or (batch, 1), or "
                         f"one-hot of shape (batch, {classes}); got shape {shape}")
    values = concrete_numpy(y_true)
    if values is not None and values.size:
        if np.any(values != np.round(values)):
            raise ValueError(f"{what} holds non-integer class labels, e.g. {values.ravel()[0]}")
        low, high = int(values.min()), int(values.max())
        if num_classes is not None and (low < 0 or high >= num_classes):
            raise ValueError(f"{what} labels must be in [0, {num_classes - 1}] for "
                             f"{num_classes} classes; got labels in [{low}, {high}]")
    labels = ops.cast(y_true, "int32")
    if num_classes is None:
        return labels
    return _assert_in_range_graph(
        labels, num_classes, f"{what} labels must be in [0, {num_classes - 1}]")


def check_batch(y_true, y_pred, what="y_pred"):
    """Raise ValueError when the batch sizes of labels and predictions differ (if known)."""
    a, b = static_shape(y_true)[0], static_shape(y_pred)[0]
    if a is not None and b is not None and a != b:
        raise ValueError(f"y_true has {a} samples but {what} has {b}")
