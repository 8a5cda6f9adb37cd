"""Sequence losses: CTC for text lines (CRNN), with the blank convention shared by the decoders.

Conventions, one for the whole project:

- `BLANK_INDEX = 0`: class 0 of the logits is the CTC blank, in the loss AND in the decoders
  (the keras-io captcha example trains with blank = last and decodes with blank = 0, and
  reads garbage). It is what `keras.ops.ctc_loss` / `keras.ops.ctc_decode` assume by default
  (`mask_index=0`, keras-team/keras#19633) and what `keras.losses.CTC` uses. Real label ids
  are therefore 1..C-1; a charset maps character i to id i + 1.
- `PAD_VALUE = -1`: labels are padded at the end with -1, which can never be a label id.
  The decoders pad their output with the same value, so a decoded batch and a label batch
  compare directly. (`keras.losses.CTC` pads with 0 = blank; pass `pad_value=0` to read
  such labels. Padding with a real id is refused: it would become part of the label.)
- Frames: `CTCLoss` aligns every label with all T frames of `y_pred` (see the class).
  Per-sample frame counts (`logit_length`) are taken by the functional `ctc_loss`, by
  `count_infeasible` and by the decoders.

A label l needs at least L + (number of adjacent repeats) frames ("aa" needs a blank in
between). With fewer frames no alignment exists, p(l|x) = 0 and the loss is -ln 0 = +inf;
`zero_infinity=True` turns such samples into 0 with gradient 0, and `count_infeasible` /
`CTCInfeasibleCount` report how many there were.
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras
from losses.base import (Loss, as_float32, check_batch, check_rank, concrete_numpy, poison_invalid,
                         static_shape)

BLANK_INDEX = 0
PAD_VALUE = -1

_LABELS_SHAPE = "(batch, max_label_length) of label ids padded at the end with pad_value"
_LOGITS_SHAPE = "(batch, frames, num_classes) of per-frame logits"


def _check_pad_value(pad_value):
    if (isinstance(pad_value, bool) or not isinstance(pad_value, (int, np.integer))
            or not (pad_value < 0 or pad_value == BLANK_INDEX)):
        raise ValueError(f"pad_value must be a negative integer or the blank index "
                         f"{BLANK_INDEX} (label ids are 1..C-1, so any other value would be "
                         f"read as a label); got {pad_value!r}")
    return int(pad_value)


def _num_classes(y_pred):
    num_classes = check_rank(y_pred, 3, "y_pred", _LOGITS_SHAPE)[-1]
    if num_classes is None or num_classes < 2:
        raise ValueError(f"y_pred must have at least 2 classes (the blank {BLANK_INDEX} and one "
                         f"label); got {num_classes}")
    return num_classes


def _assert_labels_graph(labels, valid, message):
    """Inside a compiled TF graph label values are unknown in Python: assert at run time."""
    if keras.backend.backend() != "tensorflow":
        return labels
    import tensorflow as tf

    if tf.executing_eagerly():
        return labels
    with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(valid), [message])]):
        return tf.identity(labels)


def sequence_labels(y_true, num_classes, pad_value=PAD_VALUE, what="y_true"):
    """Padded label ids (B, S), any numeric dtype -> int32 (B, S), validated.

    Each row is real ids in [1, num_classes - 1] followed by `pad_value` entries only.
    """
    pad_value = _check_pad_value(pad_value)
    check_rank(y_true, 2, what, _LABELS_SHAPE)
    values = concrete_numpy(y_true)
    if values is not None and values.size:
        if np.any(values != np.round(values)):
            raise ValueError(f"{what} holds non-integer label ids, e.g. {values.ravel()[0]}")
        values = values.astype(np.int64)
        is_pad = values == pad_value
        bad_rows = np.nonzero(np.any(is_pad[:, :-1] & ~is_pad[:, 1:], axis=1))[0]
        if bad_rows.size:
            row = bad_rows[0]
            raise ValueError(f"{what} padding ({pad_value}) must come after the label, at the "
                             f"end of each row; row {row} is {values[row].tolist()}")
        real = values[~is_pad]
        if np.any(real == BLANK_INDEX):
            raise ValueError(f"{what} contains the blank id {BLANK_INDEX}, which CTC reserves "
                             f"for 'no character'; label ids must be in [1, {num_classes - 1}]"
                             f" (pad with {pad_value})")
        if real.size and (real.min() < 0 or real.max() >= num_classes):
            raise ValueError(f"{what} label ids must be in [1, {num_classes - 1}] for "
                             f"{num_classes} classes (blank = {BLANK_INDEX}), or the padding "
                             f"{pad_value}; got ids in [{real.min()}, {real.max()}]")
    labels = ops.cast(y_true, "int32")
    valid = ops.all(valid_rows(labels, num_classes, pad_value))
    return _assert_labels_graph(
        labels, valid, f"{what} label ids must be in [1, {num_classes - 1}] followed only by "
                       f"padding {pad_value}")


def valid_rows(labels, num_classes, pad_value=PAD_VALUE):
    """(B,) bool: True where a label row is ids in [1, num_classes - 1] followed only by
    `pad_value` (int32 labels of `sequence_labels`)."""
    is_pad = ops.equal(labels, pad_value)
    in_range = ops.logical_and(ops.greater(labels, BLANK_INDEX), ops.less(labels, num_classes))
    trailing = ops.logical_or(ops.logical_not(is_pad[:, :-1]), is_pad[:, 1:])
    return ops.logical_and(ops.all(ops.logical_or(is_pad, in_range), axis=1),
                           ops.all(trailing, axis=1))


def label_length(y_true, pad_value=PAD_VALUE):
    """Number of real label ids per row, (B,) int32."""
    labels = ops.cast(y_true, "int32")
    return ops.sum(ops.cast(ops.not_equal(labels, pad_value), "int32"), axis=1)


def min_frames(y_true, pad_value=PAD_VALUE):
    """Fewest frames an alignment needs, (B,) int32: L + number of adjacent repeats."""
    labels = ops.cast(y_true, "int32")
    is_label = ops.not_equal(labels, pad_value)
    # padding is trailing and never equal to an id, so a repeat needs both entries real
    repeat = ops.logical_and(is_label[:, 1:], ops.equal(labels[:, 1:], labels[:, :-1]))
    return label_length(labels, pad_value) + ops.sum(ops.cast(repeat, "int32"), axis=1)


def _logit_lengths(logit_length, logits, batch_like):
    """`logit_length` None / int / (B,) -> (B,) int32, checked against T when concrete."""
    num_steps = static_shape(logits)[1]
    if num_steps is None:
        num_steps = ops.shape(logits)[1]
    if logit_length is None:
        return ops.ones_like(batch_like, dtype="int32") * num_steps
    if isinstance(logit_length, (int, np.integer)):
        lengths = ops.ones_like(batch_like, dtype="int32") * int(logit_length)
    else:
        check_rank(logit_length, 1, "logit_length", "(batch,) of frame counts")
        lengths = ops.cast(logit_length, "int32")
    values = concrete_numpy(logit_length)
    if (values is not None and isinstance(num_steps, int) and values.size
            and (values.min() < 0 or values.max() > num_steps)):
        raise ValueError(f"logit_length must be in [0, {num_steps}] (the frames of y_pred); "
                         f"got values in [{values.min()}, {values.max()}]")
    return lengths


def infeasible_mask(y_true, logit_length, pad_value=PAD_VALUE):
    """True where a label cannot be aligned with its frames: L + repeats > logit_length."""
    frames = ops.cast(logit_length, "int32")
    return ops.greater(min_frames(y_true, pad_value), frames)


def count_infeasible(y_true, logit_length, pad_value=PAD_VALUE):
    """How many samples of the batch have no alignment (int32 scalar).

    Args:
        y_true: padded label ids, (B, S).
        logit_length: frames per sample, an int (all samples) or a (B,) array.
        pad_value: the padding value of `y_true`. Defaults to `PAD_VALUE` (-1).
    """
    lengths = ops.ones_like(label_length(y_true, pad_value)) * ops.cast(logit_length, "int32")
    return ops.sum(ops.cast(infeasible_mask(y_true, lengths, pad_value), "int32"))


def ctc_loss(y_true, y_pred, logit_length=None, pad_value=PAD_VALUE, zero_infinity=False):
    """Per-sample CTC loss -ln p(l|x), shape (B,).

    Formula:
        p(l|x) = Σ_{π : 𝓑(π) = l} Π_{t=1..T_i} softmax(y_pred[i, t])_{π_t}
        loss_i = -ln p(l_i|x_i)
    where 𝓑 merges repeats then removes blanks (id `BLANK_INDEX` = 0) and T_i is
    `logit_length[i]` (all frames when None).

    Args:
        y_true: label ids (B, S), ids in [1, C-1], each row padded at the end with
            `pad_value`.
        y_pred: logits (B, T, C); class `BLANK_INDEX` (0) is the blank. Any float dtype,
            computed in float32.
        logit_length: valid frames per sample, (B,) ints in [0, T] or one int. Defaults to
            None (all T frames).
        pad_value: padding value of `y_true`, negative or 0 (= blank). Defaults to -1.
        zero_infinity: if True, a sample whose label needs more frames than it has
            (L + repeats > T_i) gets loss 0; otherwise +inf. Its gradient is 0 either way.
            Defaults to False.

    Reference: Graves et al., "Connectionist Temporal Classification", ICML 2006.
    """
    pad_value = _check_pad_value(pad_value)
    num_classes = _num_classes(y_pred)
    check_batch(y_true, y_pred)
    labels = sequence_labels(y_true, num_classes, pad_value)
    # under XLA the graph assertion is dropped: a bad row's loss (and gradient) is NaN instead
    valid = valid_rows(labels, num_classes, pad_value)
    logits = poison_invalid(as_float32(y_pred), valid)
    lengths = _logit_lengths(logit_length, logits, labels[:, 0])
    is_label = ops.not_equal(labels, pad_value)
    infeasible = infeasible_mask(labels, lengths, pad_value)
    # Infeasible samples are scored with an empty label (always feasible) and then replaced:
    # the backends' own value for them is a large finite stand-in (~710 on TensorFlow, ~1e5
    # on JAX) whose gradient is garbage, and 0 * NaN-gradient would still be NaN.
    targets = ops.where(is_label, labels, BLANK_INDEX)
    target_length = ops.where(infeasible, 0, label_length(labels, pad_value))
    raw = ops.ctc_loss(targets, logits, target_length, lengths, mask_index=BLANK_INDEX)
    fill = 0.0 if zero_infinity else float("inf")
    return poison_invalid(
        ops.where(infeasible, ops.cast(fill, "float32"), ops.cast(raw, "float32")), valid)


@keras.saving.register_keras_serializable(package="losslab")
class CTCLoss(Loss):
    """Connectionist temporal classification loss for padded label sequences.

    Formula:
        p(l|x) = Σ_{π ∈ {0..C-1}^T : 𝓑(π) = l} Π_t softmax(y_pred[t])_{π_t}
        loss = -ln p(l|x)        (0 instead of +inf for infeasible labels if zero_infinity)
    𝓑 merges repeated ids and then removes the blank `BLANK_INDEX` = 0.

    `y_true`: label ids (B, S) in [1, C-1], padded at the end with `pad_value` (-1), e.g.
    `[[3, 1, 4, -1], [5, 9, 2, 6]]`. `y_pred`: per-frame logits (B, T, C), blank = class 0.
    Compared with `keras.losses.CTC` it reads padded labels with a padding that can't be
    confused with a real id, validates ids, and handles infeasible labels.

    Every sample is aligned with all T frames. A `Loss` only sees `(y_true, y_pred)`, so a
    per-sample frame count would have to be smuggled into the labels; for a CRNN it is not
    needed: images are padded to a common width and the frames over the padding learn to
    emit blank (as in the CRNN paper and the keras-io OCR examples). Where per-sample frame
    counts matter, call the functional `ctc_loss(..., logit_length=...)` in a custom
    `compute_loss`. A label that needs more than T frames (L + adjacent repeats > T) has no
    alignment: its loss is +inf (the exact -ln 0, the same on every backend, with zero
    gradient) or, with `zero_infinity=True`, 0. Count them with `count_infeasible` or the
    `CTCInfeasibleCount` metric. Note that +inf times a zero sample weight is NaN.

        model.compile(loss=CTCLoss(zero_infinity=True), metrics=[CTCInfeasibleCount()])
        ids, lengths = ctc_greedy_decode(model.predict(x))

    Args:
        pad_value: padding value of `y_true`; negative, or 0 (= blank, as `keras.losses.CTC`
            pads). Defaults to -1.
        zero_infinity: replace the loss of infeasible samples by 0. Defaults to False.
        reduction: type of reduction over the batch. Defaults to "sum_over_batch_size".
        name: name of the loss. Defaults to "ctc_loss".
        dtype: dtype Keras casts the inputs and the loss to (the loss computes in float32;
            the labels must stay exact in it). Defaults to None (`keras.config.floatx()`).

    Reference: Graves, Fernández, Gomez, Schmidhuber, "Connectionist Temporal
    Classification: Labelling Unsegmented Sequence Data with Recurrent Neural Networks",
    ICML 2006.
    """

    def __init__(self, pad_value=PAD_VALUE, zero_infinity=False,
                 reduction="sum_over_batch_size", name="ctc_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.pad_value = _check_pad_value(pad_value)
        self.zero_infinity = bool(zero_infinity)

    def call(self, y_true, y_pred):
        return ctc_loss(y_true, y_pred, pad_value=self.pad_value,
                        zero_infinity=self.zero_infinity)

    def get_config(self):
        return {**super().get_config(), "pad_value": self.pad_value,
                "zero_infinity": self.zero_infinity}


@keras.saving.register_keras_serializable(package="losslab")
class CTCInfeasibleCount(keras.metrics.Metric):
    """Number of samples, since the last reset (each epoch), whose label has no alignment.

    Formula:
        count = Σ_i [L_i + repeats_i > T]

    A sample is counted whatever its sample weight. Non-zero means some labels are longer
    than the model's T frames allow: shorten them, widen the images, or reduce the
    downsampling of the backbone.

    Args:
        pad_value: padding value of `y_true`. Defaults to -1.
        name: name of the metric (the key in `logs`). Defaults to "ctc_infeasible".
        dtype: dtype of the result. Defaults to None (float32).

    Reference: Graves et al., "Connectionist Temporal Classification", ICML 2006.
    """

    def __init__(self, pad_value=PAD_VALUE, name="ctc_infeasible", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.pad_value = _check_pad_value(pad_value)
        self.count = self.add_variable(shape=(), initializer="zeros", name="count",
                                       dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        check_rank(y_true, 2, "y_true", _LABELS_SHAPE)
        check_rank(y_pred, 3, "y_pred", _LOGITS_SHAPE)
        num_steps = static_shape(y_pred)[1]
        if num_steps is None:
            num_steps = ops.shape(y_pred)[1]
        found = count_infeasible(y_true, num_steps, self.pad_value)
        self.count.assign_add(ops.cast(found, "float32"))

    def result(self):
        return ops.cast(self.count, self.dtype)

    def reset_state(self):
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "pad_value": self.pad_value}


def _decode_inputs(logits, logit_length):
    _num_classes(logits)
    logits = as_float32(logits)
    return logits, _logit_lengths(logit_length, logits, logits[:, 0, 0])


def _with_padding(ids, pad_value):
    """keras.ops.ctc_decode pads with -1; count ids and switch to `pad_value`."""
    ids = ops.cast(ids, "int32")
    lengths = ops.sum(ops.cast(ops.not_equal(ids, -1), "int32"), axis=-1)
    if pad_value != -1:
        ids = ops.where(ops.equal(ids, -1), pad_value, ids)
    return ids, lengths


def ctc_greedy_decode(logits, logit_length=None, merge_repeated=True, pad_value=PAD_VALUE):
    """Best-path decoding: argmax per frame, merge repeats, drop blanks (`BLANK_INDEX`).

    Formula:
        ids = 𝓑(argmax_k y_pred[t, k] for t < T_i)

    Args:
        logits: (B, T, C) per-frame logits (or probabilities: the argmax is the same).
        logit_length: valid frames per sample, (B,) or one int. Defaults to None (all T).
        merge_repeated: merge adjacent repeated ids before removing blanks (standard CTC).
            Defaults to True.
        pad_value: value after the decoded ids in each row. Defaults to -1 (as labels).

    Returns:
        `(ids, lengths)`: ids (B, T) int32 padded with `pad_value`, lengths (B,) int32.

    Reference: Graves et al., "Connectionist Temporal Classification", ICML 2006, §3.2.
    """
    pad_value = _check_pad_value(pad_value)
    logits, lengths = _decode_inputs(logits, logit_length)
    decoded, _ = ops.ctc_decode(logits, lengths, strategy="greedy",
                                merge_repeated=merge_repeated, mask_index=BLANK_INDEX)
    return _with_padding(decoded[0], pad_value)


def ctc_beam_decode(logits, logit_length=None, beam_width=100, top_paths=1,
                    pad_value=PAD_VALUE):
    """Prefix beam search over labellings, blank = `BLANK_INDEX`.

    Formula:
        ids ≈ argmax_l p(l|x), p(l|x) = Σ_{π : 𝓑(π) = l} Π_t softmax(y_pred[t])_{π_t}

    Args:
        logits: (B, T, C) per-frame logits (not probabilities: a softmax is applied).
        logit_length: valid frames per sample, (B,) or one int. Defaults to None (all T).
        beam_width: number of prefixes kept per step. Defaults to 100.
        top_paths: number of labellings returned per sample, best first. Defaults to 1.
        pad_value: value after the decoded ids in each row. Defaults to -1 (as labels).

    Returns:
        `(ids, lengths, log_probs)`: ids (B, top_paths, T) int32 padded with `pad_value`,
        lengths (B, top_paths) int32, log_probs (B, top_paths) float32, the beam's
        estimate of ln p(l|x) for each returned labelling.

    Reference: Graves et al., "Connectionist Temporal Classification", ICML 2006, §3.2.
    """
    pad_value = _check_pad_value(pad_value)
    if int(top_paths) < 1 or int(beam_width) < int(top_paths):
        raise ValueError(f"need 1 <= top_paths <= beam_width; got top_paths={top_paths}, "
                         f"beam_width={beam_width}")
    logits, lengths = _decode_inputs(logits, logit_length)
    decoded, log_probs = ops.ctc_decode(logits, lengths, strategy="beam_search",
                                        beam_width=int(beam_width), top_paths=int(top_paths),
                                        mask_index=BLANK_INDEX)
    ids, lengths = _with_padding(ops.transpose(decoded, (1, 0, 2)), pad_value)
    return ids, lengths, ops.cast(log_probs, "float32")
