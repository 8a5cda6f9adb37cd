"""Text recognition metrics: character error rate and sequence accuracy.

Two forms of each, computing the same numbers:

- plain functions on strings or id rows, for evaluation scripts:
  `edit_distance("kitten", "sitting") == 3`, `character_error_rate(refs, hyps)`,
  `sequence_accuracy(refs, hyps)`;
- stateful `keras.metrics.Metric`s for `fit`, which greedy-decode the CTC logits `y_pred`
  (B, T, C) and compare them with the padded label ids `y_true` (B, L):

      model.compile(loss=CTCLoss(), metrics=[CharacterErrorRate(), SequenceAccuracy()])

Keras runs metrics inside the compiled train/test step (a TF graph, possibly XLA; a jitted
JAX function), so the metric path is written in `keras.ops` only, with fixed shapes:

- greedy decoding (`greedy_decode_ids`) is argmax, a "keep" mask (not blank, not equal to
  the previous frame) and a stable compaction by `argsort` — no sparse tensors, unlike
  `keras.ops.ctc_decode` on TensorFlow, which XLA cannot compile;
- the edit distance (`batch_edit_distance`) is the Wagner–Fischer dynamic programme over
  the padded rows, vectorised over the batch: one `ops.fori_loop` step per hypothesis
  position; inside a step the insertion chain D[i, j] = min(E[j], D[i, j-1] + 1) is solved
  in closed form as D[i, j] = j + min_{k≤j} (E[k] - k), a masked min over an (L+1)×(L+1)
  triangle (keras.ops has no cumulative min). Cost O(T·L²) per sample, trivial for text
  lines (T ≈ 30, L ≈ 10).

CER is corpus-level, as in ASR/OCR toolkits: Σ edit distances / Σ reference lengths (not a
mean of per-sample ratios). With no reference characters at all it is the number of edits
(0 when every hypothesis is empty too).
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras
from losses.base import check_rank
from losses.sequence import BLANK_INDEX, PAD_VALUE, _check_pad_value

_LABELS_SHAPE = "(batch, max_label_length) of label ids padded at the end with pad_value"
_LOGITS_SHAPE = "(batch, frames, num_classes) of per-frame CTC logits"


# ------------------------------------------------------------------ plain functions

def edit_distance(reference, hypothesis) -> int:
    """Levenshtein distance: fewest insertions, deletions and substitutions.

    Formula:
        D[i, 0] = i, D[0, j] = j
        D[i, j] = min(D[i-1, j] + 1, D[i, j-1] + 1, D[i-1, j-1] + [h_i ≠ r_j])
        distance = D[len(h), len(r)]

    Args:
        reference: a string or a sequence of ids (padding already removed).
        hypothesis: a string or a sequence of ids.

    Reference: Wagner, Fischer, "The String-to-String Correction Problem", JACM 1974.
    """
    reference, hypothesis = list(reference), list(hypothesis)
    previous = list(range(len(reference) + 1))
    for i, h in enumerate(hypothesis, start=1):
        current = [i]
        for j, r in enumerate(reference, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (h != r)))
        previous = current
    return previous[-1]


def _sequences(items, pad_value, what):
    """Strings stay strings; id rows (lists or a 2-D array) lose their `pad_value` entries."""
    if isinstance(items, str):
        raise ValueError(f"{what} must be a sequence of strings or id rows, not one string "
                         f"({items!r}); wrap it in a list")
    if hasattr(items, "shape") and not isinstance(items, np.ndarray):
        items = ops.convert_to_numpy(items)
    if isinstance(items, np.ndarray):
        if items.ndim != 2:
            raise ValueError(f"{what} as an array must have shape (batch, length); got shape "
                             f"{items.shape}")
        items = list(items)
    result = []
    for item in items:
        if isinstance(item, str):
            result.append(item)
        else:
            result.append([int(k) for k in np.asarray(item).reshape(-1) if k != pad_value])
    return result


def _pairs(references, hypotheses, pad_value):
    references = _sequences(references, pad_value, "references")
    hypotheses = _sequences(hypotheses, pad_value, "hypotheses")
    if len(references) != len(hypotheses):
        raise ValueError(f"got {len(references)} references but {len(hypotheses)} hypotheses")
    return references, hypotheses


def character_error_rate(references, hypotheses, pad_value=PAD_VALUE) -> float:
    """Corpus character error rate: total edit distance / total reference length.

    Formula:
        CER = Σ_i edit_distance(r_i, h_i) / Σ_i |r_i|      (Σ_i edits if Σ_i |r_i| = 0)

    Args:
        references: ground-truth strings, or id rows (a list or a (B, L) array) padded
            with `pad_value`.
        hypotheses: recognised strings or id rows, as many as `references`.
        pad_value: padding of id rows, removed before comparing. Defaults to -1.

    Reference: Wagner, Fischer, "The String-to-String Correction Problem", JACM 1974.
    """
    references, hypotheses = _pairs(references, hypotheses, pad_value)
    edits = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    length = sum(len(r) for r in references)
    return float(edits) / length if length else float(edits)


def sequence_accuracy(references, hypotheses, pad_value=PAD_VALUE) -> float:
    """Fraction of samples recognised exactly (word accuracy).

    Formula:
        accuracy = (1/B) Σ_i [h_i = r_i]          (0 for an empty batch)

    Args:
        references: ground-truth strings or padded id rows.
        hypotheses: recognised strings or padded id rows, as many as `references`.
        pad_value: padding of id rows, removed before comparing. Defaults to -1.

    Reference: Shi, Bai, Yao, "An End-to-End Trainable Neural Network for Image-based
    Sequence Recognition", TPAMI 2017 (recognition accuracy, §3.3).
    """
    references, hypotheses = _pairs(references, hypotheses, pad_value)
    if not references:
        return 0.0
    return float(np.mean([list(r) == list(h) for r, h in zip(references, hypotheses)]))


# ------------------------------------------------------------------ keras.ops versions

def greedy_decode_ids(logits, pad_value=PAD_VALUE):
    """Best-path CTC decoding with fixed shapes, in keras.ops (XLA/JAX friendly).

    Formula:
        π_t = argmax_k logits[t, k];  keep_t = π_t ≠ blank and π_t ≠ π_{t-1}
        ids = (π_t for kept t, in order), padded with `pad_value` to length T

    Same result as `losses.sequence.ctc_greedy_decode` (tested), which uses
    `keras.ops.ctc_decode` and so sparse tensors on TensorFlow.

    Args:
        logits: (B, T, C) per-frame logits, blank = `BLANK_INDEX` (0).
        pad_value: value after the decoded ids. Defaults to -1.

    Returns:
        int32 (B, T) ids padded at the end with `pad_value`.

    Reference: Graves et al., "Connectionist Temporal Classification", ICML 2006, §3.2.
    """
    check_rank(logits, 3, "logits", _LOGITS_SHAPE)
    best = ops.cast(ops.argmax(logits, axis=-1), "int32")
    previous = ops.concatenate([ops.full_like(best[:, :1], -1), best[:, :-1]], axis=1)
    keep = ops.logical_and(ops.not_equal(best, BLANK_INDEX), ops.not_equal(best, previous))
    steps = ops.shape(best)[1]
    frame = ops.arange(steps, dtype="int32")
    # kept frames sort first, in time order; the keys are distinct, so stability is moot
    order = ops.argsort(ops.where(keep, frame[None, :], frame[None, :] + steps), axis=1)
    compact = ops.take_along_axis(best, order, axis=1)
    count = ops.sum(ops.cast(keep, "int32"), axis=1)
    return ops.where(frame[None, :] < count[:, None], compact, pad_value)


def batch_edit_distance(reference_ids, hypothesis_ids, pad_value=PAD_VALUE):
    """Per-sample edit distance between two padded id batches, in keras.ops.

    Formula (row i of the Wagner–Fischer table, j = 0..L):
        E[0] = i,  E[j] = min(D[i-1, j] + 1, D[i-1, j-1] + [h_i ≠ r_j])
        D[i, j] = j + min_{k ≤ j} (E[k] - k)          (the chain of insertions, closed form)
    computed for i = 1..|h| (rows past a sample's hypothesis length are left unchanged) and
    read at D[|h|, |r|].

    Args:
        reference_ids: (B, L) ids padded at the end with `pad_value`.
        hypothesis_ids: (B, M) ids padded at the end with `pad_value`.
        pad_value: the padding of both. Defaults to -1.

    Returns:
        float32 (B,) edit distances.

    Reference: Wagner, Fischer, "The String-to-String Correction Problem", JACM 1974.
    """
    check_rank(reference_ids, 2, "reference_ids", _LABELS_SHAPE)
    check_rank(hypothesis_ids, 2, "hypothesis_ids", _LABELS_SHAPE)
    reference = ops.cast(reference_ids, "int32")
    hypothesis = ops.cast(hypothesis_ids, "int32")
    reference_length = ops.sum(ops.cast(ops.not_equal(reference, pad_value), "int32"), axis=1)
    hypothesis_length = ops.sum(ops.cast(ops.not_equal(hypothesis, pad_value), "int32"),
                                axis=1)
    columns = ops.arange(ops.shape(reference)[1] + 1, dtype="float32")       # j = 0..L
    lower = ops.greater_equal(columns[:, None], columns[None, :])            # [j, k]: k ≤ j
    first_row = ops.zeros_like(ops.cast(reference[:, :1], "float32")) + columns[None, :]

    def next_row(i, row):
        symbol = ops.take(hypothesis, i, axis=1)                             # h_{i+1}, (B,)
        cost = ops.cast(ops.not_equal(reference, symbol[:, None]), "float32")
        diagonal = ops.minimum(row[:, 1:] + 1.0, row[:, :-1] + cost)
        start = ops.zeros_like(row[:, :1]) + ops.cast(i + 1, "float32")
        best = ops.concatenate([start, diagonal], axis=1) - columns[None, :]  # E[k] - k
        chained = ops.min(ops.where(lower[None], best[:, None, :], np.inf), axis=2)
        active = ops.less(i, hypothesis_length)[:, None]
        return ops.where(active, chained + columns[None, :], row)

    last_row = ops.fori_loop(0, ops.shape(hypothesis)[1], next_row, first_row)
    return ops.take_along_axis(last_row, reference_length[:, None], axis=1)[:, 0]


def _weights(sample_weight, like):
    if sample_weight is None:
        return ops.ones_like(like)
    return ops.reshape(ops.cast(sample_weight, "float32"), (-1,)) * ops.ones_like(like)


def _decoded_distances(y_true, y_pred, pad_value):
    check_rank(y_true, 2, "y_true", _LABELS_SHAPE)
    check_rank(y_pred, 3, "y_pred", _LOGITS_SHAPE)
    labels = ops.cast(y_true, "int32")
    decoded = greedy_decode_ids(ops.cast(y_pred, "float32"), pad_value)
    return labels, batch_edit_distance(labels, decoded, pad_value)


@keras.saving.register_keras_serializable(package="losslab")
class CharacterErrorRate(keras.metrics.Metric):
    """Corpus character error rate of greedy-decoded CTC logits, since the last reset.

    Formula:
        CER = Σ_i w_i · edit_distance(r_i, greedy(y_pred_i)) / Σ_i w_i · |r_i|
    (the weighted edit count when Σ_i w_i · |r_i| = 0).

    `y_true`: label ids (B, L) padded with `pad_value`; `y_pred`: logits (B, T, C) with the
    blank at class 0. The same number as `character_error_rate` on the decoded ids.

    Args:
        pad_value: padding of `y_true` (and of the decoded ids). Defaults to -1.
        name: name of the metric (the key in `logs`). Defaults to "cer".
        dtype: dtype of the result. Defaults to None (float32).

    Reference: Wagner, Fischer, "The String-to-String Correction Problem", JACM 1974.
    """

    def __init__(self, pad_value=PAD_VALUE, name="cer", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.pad_value = _check_pad_value(pad_value)
        self.edits = self.add_variable(shape=(), initializer="zeros", name="edits",
                                       dtype="float32")
        self.reference_length = self.add_variable(shape=(), initializer="zeros",
                                                  name="reference_length", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels, distances = _decoded_distances(y_true, y_pred, self.pad_value)
        lengths = ops.sum(ops.cast(ops.not_equal(labels, self.pad_value), "float32"), axis=1)
        weights = _weights(sample_weight, distances)
        self.edits.assign_add(ops.sum(weights * distances))
        self.reference_length.assign_add(ops.sum(weights * lengths))

    def result(self):
        edits = ops.convert_to_tensor(self.edits)
        length = ops.convert_to_tensor(self.reference_length)
        rate = ops.where(ops.greater(length, 0.0), edits / ops.maximum(length, 1e-12), edits)
        return ops.cast(rate, self.dtype)

    def reset_state(self):
        self.edits.assign(0.0)
        self.reference_length.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "pad_value": self.pad_value}


@keras.saving.register_keras_serializable(package="losslab")
class SequenceAccuracy(keras.metrics.Metric):
    """Fraction of samples whose greedy-decoded CTC logits equal the label exactly.

    Formula:
        accuracy = Σ_i w_i · [greedy(y_pred_i) = r_i] / Σ_i w_i       (0 before any sample)

    `y_true`: label ids (B, L) padded with `pad_value`; `y_pred`: logits (B, T, C) with the
    blank at class 0. The same number as `sequence_accuracy` on the decoded ids.

    Args:
        pad_value: padding of `y_true` (and of the decoded ids). Defaults to -1.
        name: name of the metric (the key in `logs`). Defaults to "sequence_accuracy".
        dtype: dtype of the result. Defaults to None (float32).

    Reference: Shi, Bai, Yao, "An End-to-End Trainable Neural Network for Image-based
    Sequence Recognition", TPAMI 2017 (recognition accuracy, §3.3).
    """

    def __init__(self, pad_value=PAD_VALUE, name="sequence_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.pad_value = _check_pad_value(pad_value)
        self.matches = self.add_variable(shape=(), initializer="zeros", name="matches",
                                         dtype="float32")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count",
                                       dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        _, distances = _decoded_distances(y_true, y_pred, self.pad_value)
        weights = _weights(sample_weight, distances)
        exact = ops.cast(ops.equal(distances, 0.0), "float32")
        self.matches.assign_add(ops.sum(weights * exact))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.cast(ops.divide_no_nan(self.matches, self.count), self.dtype)

    def reset_state(self):
        self.matches.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "pad_value": self.pad_value}
