"""Shared ground for every LossLab loss: the base class, argument checks, inputs, errors.

- `Loss`: the base of every LossLab loss, a `keras.losses.Loss` whose config also holds
  `dtype` (Keras' own losses accept `dtype=` but leave it out of `get_config`).
- Argument checks, one line in a constructor and the same wording everywhere (the message
  names the argument and the value): `check_positive`, `check_non_negative`,
  `check_at_least`, `check_in_range`, `check_positive_int`, `check_choice`, `check_bool`.
  Each returns the value normalised (float, int, bool) or raises a `ValueError`.

Every loss calls the input helpers first, so bad input gets the same `ValueError` wording
everywhere:

- `as_float32(y_pred)`: compute in float32 even under mixed precision (float16/bfloat16).
- `sparse_labels(y_true, num_classes)`: integer labels (B,) or (B, 1), or one-hot (B, C),
  -> int32 (B,). Shapes are checked statically; label values are checked whenever they are
  concrete (eager calls, NumPy input). Inside a compiled TensorFlow graph the values are not
  known in Python, so the check becomes a graph assertion that stops training with the same
  message (an InvalidArgumentError wrapping it), instead of a silently wrong loss.
- `class_inputs(y_true, y_pred)`: labels for per-class outputs (B, C) — the class count
  read from `y_pred`, the labels checked against it and against the batch — as int32
  labels, float32 `y_pred` and float32 one-hot rows. Rows whose label is out of range are
  NaN in the returned `y_pred` and one-hot rows (`poison_invalid`): under XLA, where assertions are dropped,
  a bad label gives a NaN loss, never a plausible number.
- `softmax_cross_entropy(one_hot, logits)`: -log softmax(logits)_y per sample.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from keras import ops

import keras

# --------------------------------------------------------------------------- the base class


class Loss(keras.losses.Loss):
    """`keras.losses.Loss` whose `get_config` also holds `dtype`, the base of LossLab's losses.

    Every LossLab loss takes `reduction`, `name` and `dtype` like Keras' own losses
    (`keras.losses.Loss(name=None, reduction="sum_over_batch_size", dtype=None)`): `dtype`
    is the dtype Keras casts the inputs and the reduced loss to (default: `floatx()`, i.e.
    float32; the losses compute in float32 whatever it is). Keras' losses leave `dtype` out
    of their config; here it is saved, so a loss comes back from `get_config` /
    `model.save` with every constructor argument.

    An empty batch (zero samples, known when the loss is called) gives what Keras's own
    losses give for one, the empty per-sample loss under the same reduction, instead of an
    error from a max, an arg-min or a scatter over zero rows.
    """

    def __call__(self, y_true, y_pred, sample_weight=None):
        if _static_batch(y_pred) == 0 or _static_batch(y_true) == 0:
            nothing = np.zeros((0, 1), "float32")
            return keras.losses.MeanSquaredError(reduction=self.reduction,
                                                 dtype=self.dtype)(nothing, nothing)
        return super().__call__(y_true, y_pred, sample_weight)

    def get_config(self):
        return {**super().get_config(), "dtype": self.dtype}


def _static_batch(x):
    """The batch size known now (of the first entry of a dict), else None."""
    if isinstance(x, dict):
        x = next(iter(x.values()), None)
    shape = static_shape(x) if x is not None else ()
    return shape[0] if shape else None


# --------------------------------------------------------------------------- argument checks


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _finite_number(name, value, requirement):
    if not _is_real(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be {requirement}, got {value!r}")
    return float(value)


def check_positive(name, value):
    """`value` as a float; ValueError unless it is a finite number > 0."""
    number = _finite_number(name, value, "a finite number > 0")
    if not number > 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def check_non_negative(name, value):
    """`value` as a float; ValueError unless it is a finite number >= 0."""
    return check_at_least(name, value, 0)


def check_at_least(name, value, minimum, note=""):
    """`value` as a float; ValueError unless it is a finite number >= `minimum`.

    `note` is appended to the requirement in the message, e.g. " (the paper uses 2 to 6)".
    """
    requirement = f"a finite number >= {minimum:g}{note}"
    number = _finite_number(name, value, requirement)
    if not number >= minimum:
        raise ValueError(f"{name} must be {requirement}, got {value!r}")
    return number


def check_in_range(name, value, low, high, closed="left", interval=None):
    """`value` as a float; ValueError unless it lies in the interval from `low` to `high`.

    Args:
        name: The argument's name, for the message.
        value: The value to check (a real number, not a bool).
        low, high: The ends of the interval.
        closed: Which ends belong to it: "left" ([low, high)), "right" ((low, high]),
            "both" ([low, high]) or "neither" ((low, high)). Defaults to "left".
        interval: How the message writes the interval, e.g. "[0, π/2] radians".
            Defaults to the brackets and the two ends.
    """
    if closed not in ("left", "right", "both", "neither"):
        raise ValueError(f"closed must be 'left', 'right', 'both' or 'neither', got {closed!r}")
    left, right = closed in ("left", "both"), closed in ("right", "both")
    if interval is None:
        interval = f"{'[' if left else '('}{low:g}, {high:g}{']' if right else ')'}"
    ok = _is_real(value) and math.isfinite(value) and (
        (value >= low if left else value > low) and (value <= high if right else value < high))
    if not ok:
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return float(value)


def check_positive_int(name, value):
    """`value` as an int; ValueError unless it is an integer >= 1 (not a float, not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_choice(name, value, choices):
    """`value` itself; ValueError unless it is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                         f"got {value!r}")
    return value


def check_bool(name, value):
    """`value` as a bool; ValueError unless it is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


# --------------------------------------------------------------------------- inputs


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


def class_count(y_pred, what="y_pred"):
    """The number of classes C of per-class outputs (B, C), known statically, or ValueError."""
    shape = check_rank(y_pred, 2, what, "(batch, num_classes)")
    if shape[-1] is None:
        raise ValueError(f"{what} must have a known number of classes (last dimension), "
                         f"got shape {shape}")
    return int(shape[-1])


def class_inputs(y_true, y_pred, what="y_pred"):
    """Labels for per-class outputs, checked against their class count and batch.

    Args:
        y_true: Integer labels (B,) or (B, 1), or one-hot (B, C).
        y_pred: Per-class outputs (B, C): logits, cos θ, distances to class centers, ...
        what: How messages name `y_pred`. Defaults to "y_pred".

    Returns:
        (int32 labels (B,), float32 y_pred (B, C), float32 one-hot labels (B, C), C).
    """
    num_classes = class_count(y_pred, what)
    labels = sparse_labels(y_true, num_classes)
    check_batch(labels, y_pred)
    valid = ops.logical_and(ops.greater_equal(labels, 0), ops.less(labels, num_classes))
    # both poisoned: XLA turns one_hot * x into a select, which would drop a NaN of x alone
    return labels, poison_invalid(as_float32(y_pred), valid), \
        poison_invalid(ops.one_hot(labels, num_classes, dtype="float32"), valid), num_classes


def poison_invalid(values, valid):
    """`values` (B, ...) float with the rows of samples whose `valid` (B,) is False set to NaN.

    Out-of-range labels raise a `ValueError` when their values are known (eager, NumPy) and
    stop a TensorFlow graph through an assertion; XLA (`jit_compile=True`, `jax.jit`) drops
    assertions, and a gather or one-hot of an out-of-range label would quietly give a
    plausible finite loss. A NaN row makes every loss computed from it, and its gradient,
    NaN instead, which `keras.callbacks.TerminateOnNaN` (and any look at the loss) catches.
    """
    valid = ops.reshape(valid, (-1,) + (1,) * (len(values.shape) - 1))
    return values + ops.where(valid, 0.0, float("nan"))


def softmax_cross_entropy(one_hot, logits):
    """-log softmax(logits)_y per sample, from float32 logits and one-hot labels (B, C)."""
    return -ops.sum(one_hot * ops.log_softmax(logits, axis=-1), axis=-1)
