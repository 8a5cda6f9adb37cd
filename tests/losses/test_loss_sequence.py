"""losses.sequence: CTCLoss, ctc_loss, count_infeasible, CTCInfeasibleCount and the decoders.

References: zoo.reference.ctc (NumPy α/β, itself checked against brute force in
test_reference_ctc.py), keras.losses.CTC where both apply, and NumPy written here for
greedy decoding and alignment feasibility. The loss contract (save/load, the policies,
dtype, sample_weight) is test_loss_contract_all.py's, with sequence targets. Runs on every
backend; only `test_bad_labels_stop_compiled_training` is TensorFlow's (its graph assertion).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from gradients import value_and_grad
from loss_contract import check_sample_weight

import keras
from losses import sequence
from losses.sequence import (BLANK_INDEX, PAD_VALUE, CTCInfeasibleCount, CTCLoss,
                             count_infeasible, ctc_beam_decode, ctc_greedy_decode, ctc_loss)
from zoo.reference import ctc as R

STEPS, FEATURES, CLASSES, MAX_LABEL = 8, 4, 5, 4


def padded_labels(rng, batch, max_label=MAX_LABEL, num_classes=CLASSES, pad=PAD_VALUE,
                  min_length=0):
    lengths = rng.integers(min_length, max_label + 1, size=batch)
    labels = np.full((batch, max_label), pad, "int64")
    for i, n in enumerate(lengths):
        labels[i, :n] = rng.integers(1, num_classes, size=n)
    return labels


def np_min_frames(row, pad=PAD_VALUE):
    ids = [int(k) for k in row if k != pad]
    return len(ids) + sum(a == b for a, b in itertools.pairwise(ids))


def reference_losses(logits, labels, frames=None, pad=PAD_VALUE):
    frames = np.full(len(logits), logits.shape[1]) if frames is None else np.asarray(frames)
    return np.array([R.ctc_loss(logits[i, :frames[i]], [k for k in labels[i] if k != pad])
                     for i in range(len(logits))])


def numpy(x):
    return keras.ops.convert_to_numpy(x)


# ---------------------------------------------------------------- values against the reference

@pytest.mark.parametrize("seed", [0, 1])
def test_matches_reference_on_random_batches(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(7, STEPS, CLASSES)).astype("float32")
    labels = padded_labels(rng, 7)
    labels[0] = PAD_VALUE  # an empty label
    expected = reference_losses(logits, labels)
    per_sample = CTCLoss(reduction=None)(labels, logits)
    np.testing.assert_allclose(numpy(per_sample), expected, rtol=1e-5)
    np.testing.assert_allclose(float(CTCLoss()(labels, logits)), expected.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(CTCLoss(reduction="sum")(labels, logits)), expected.sum(),
                               rtol=1e-5)


def test_per_sample_logit_length_matches_reference():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(6, STEPS, CLASSES)).astype("float32")
    labels = padded_labels(rng, 6, max_label=3)
    frames = np.array([8, 7, 6, 6, 7, 8])
    np.testing.assert_allclose(numpy(ctc_loss(labels, logits, logit_length=frames)),
                               reference_losses(logits, labels, frames), rtol=1e-5)
    np.testing.assert_allclose(numpy(ctc_loss(labels, logits, logit_length=5)),
                               reference_losses(logits, labels, np.full(6, 5)), rtol=1e-5)


def test_other_negative_padding_value():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, STEPS, CLASSES)).astype("float32")
    labels = padded_labels(rng, 4, pad=-7)
    np.testing.assert_allclose(numpy(CTCLoss(pad_value=-7, reduction=None)(labels, logits)),
                               reference_losses(logits, labels, pad=-7), rtol=1e-5)


def test_matches_keras_ctc_with_zero_padding():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(6, STEPS, CLASSES)).astype("float32")
    labels = padded_labels(rng, 6, pad=0, min_length=1)
    ours = CTCLoss(pad_value=0, reduction=None)(labels, logits)
    builtin = keras.losses.CTC(reduction=None)(labels, logits)
    np.testing.assert_allclose(numpy(ours), numpy(builtin), rtol=1e-5)
    np.testing.assert_allclose(numpy(ours), reference_losses(logits, labels, pad=0), rtol=1e-5)


def test_gradient_matches_reference():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(5, STEPS, CLASSES)).astype("float32")
    labels = padded_labels(rng, 5)
    _, grad = value_and_grad(lambda z: CTCLoss()(labels, z), logits)
    for i in range(5):
        expected = R.ctc_gradient(logits[i], [k for k in labels[i] if k != PAD_VALUE]) / 5
        np.testing.assert_allclose(grad[i], expected, atol=1e-6)


def test_near_certain_alignment_has_near_zero_loss():
    logits = np.full((1, 5, 3), -20.0, "float32")
    logits[0, np.arange(5), [1, 0, 1, 2, 2]] = 20.0  # path 1 ∅ 1 2 2 -> label (1, 1, 2)
    assert float(CTCLoss()(np.array([[1, 1, 2, -1]]), logits)) < 1e-5
    assert float(CTCLoss()(np.array([[1, 2, -1, -1]]), logits)) > 10.0


# ---------------------------------------------------------------- infeasible alignments

def infeasible_batch():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(4, 3, CLASSES)).astype("float32")  # T = 3
    labels = np.array([[1, 2, -1, -1],    # needs 2: fine
                       [3, 3, -1, -1],    # needs 3 (1 ∅ 1): fine
                       [2, 2, 2, -1],     # needs 5: infeasible
                       [1, 2, 3, 4]],     # needs 4: infeasible
                      "int64")
    return logits, labels


def test_zero_infinity_gives_zero_loss_and_zero_gradient():
    logits, labels = infeasible_batch()
    feasible = np.array([np_min_frames(r) <= 3 for r in labels])
    np.testing.assert_array_equal(feasible, [True, True, False, False])
    _, grad = value_and_grad(
        lambda z: keras.ops.sum(CTCLoss(zero_infinity=True, reduction=None)(labels, z)), logits)
    values = numpy(CTCLoss(zero_infinity=True, reduction=None)(labels, logits))
    assert np.all(np.isfinite(values)) and np.all(values[~feasible] == 0.0)
    np.testing.assert_allclose(values[feasible], reference_losses(logits, labels)[feasible],
                               rtol=1e-5)
    assert np.all(grad[~feasible] == 0.0)
    for i in np.nonzero(feasible)[0]:
        np.testing.assert_allclose(grad[i], R.ctc_gradient(logits[i], labels[i][labels[i] > 0]),
                                   atol=1e-6)
    assert int(count_infeasible(labels, 3)) == 2


def test_without_zero_infinity_loss_is_inf_gradient_stays_finite():
    """Documented behaviour: +inf (= -ln 0, like the reference), gradient 0 for that sample."""
    logits, labels = infeasible_batch()
    np.testing.assert_array_equal(reference_losses(logits, labels)[2:], [np.inf, np.inf])
    value, grad = value_and_grad(lambda z: CTCLoss()(labels, z), logits)
    assert float(value) == np.inf
    assert np.all(np.isfinite(grad)) and np.all(grad[2:] == 0.0)
    per_sample = numpy(CTCLoss(reduction=None)(labels, logits))
    np.testing.assert_array_equal(np.isinf(per_sample), [False, False, True, True])


def test_count_infeasible_matches_numpy():
    rng = np.random.default_rng(7)
    labels = padded_labels(rng, 40, max_label=6, num_classes=3)  # few classes: many repeats
    frames = rng.integers(0, 9, size=40)
    expected = sum(np_min_frames(r) > f for r, f in zip(labels, frames))
    assert 0 < expected < 40
    assert int(count_infeasible(labels, frames)) == expected
    assert int(count_infeasible(labels, 6)) == sum(np_min_frames(r) > 6 for r in labels)
    logits = rng.normal(size=(40, 8, 3)).astype("float32")
    losses = numpy(ctc_loss(labels, logits, logit_length=frames))
    assert np.sum(np.isinf(losses)) == expected


def test_infeasible_metric_reports_in_fit_logs():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(16, 3, FEATURES)).astype("float32")
    y = padded_labels(rng, 16, max_label=4, min_length=1)
    expected = sum(np_min_frames(r) > 3 for r in y)
    assert expected > 0
    model = keras.Sequential([keras.Input((3, FEATURES)),
                              keras.layers.Dense(CLASSES, dtype="float32")])
    model.compile(optimizer="sgd", loss=CTCLoss(zero_infinity=True),
                  metrics=[CTCInfeasibleCount()])
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert history.history["ctc_infeasible"] == [expected, expected]  # reset every epoch
    assert np.all(np.isfinite(history.history["loss"]))
    metric = CTCInfeasibleCount.from_config(CTCInfeasibleCount(pad_value=-2).get_config())
    assert metric.pad_value == -2


# ---------------------------------------------------------------- decoders share the blank

def np_greedy(logits, frames, pad=PAD_VALUE):
    rows = []
    for i in range(len(logits)):
        best = np.argmax(logits[i, :frames[i]], axis=-1)
        ids = [int(k) for j, k in enumerate(best)
               if k != BLANK_INDEX and (j == 0 or k != best[j - 1])]
        rows.append(ids + [pad] * (logits.shape[1] - len(ids)))
    return np.array(rows)


def test_greedy_decode_matches_numpy():
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(6, STEPS, CLASSES)).astype("float32")
    frames = np.array([8, 8, 5, 3, 1, 0])
    ids, lengths = ctc_greedy_decode(logits, frames)
    expected = np_greedy(logits, frames)
    np.testing.assert_array_equal(numpy(ids), expected)
    np.testing.assert_array_equal(numpy(lengths), np.sum(expected != PAD_VALUE, axis=1))
    ids0, _ = ctc_greedy_decode(logits, pad_value=0)
    np.testing.assert_array_equal(numpy(ids0), np_greedy(logits, np.full(6, STEPS), pad=0))


def test_decoders_use_blank_zero():
    logits = np.full((1, 5, 3), -5.0, "float32")
    logits[0, np.arange(5), [2, 2, 0, 2, 1]] = 5.0
    ids, lengths = ctc_greedy_decode(logits)
    np.testing.assert_array_equal(numpy(ids)[0], [2, 2, 1, -1, -1])
    assert numpy(lengths)[0] == 3
    beam_ids, _, _ = ctc_beam_decode(logits, beam_width=10)
    np.testing.assert_array_equal(numpy(beam_ids)[0, 0], [2, 2, 1, -1, -1])
    # the loss agrees: the decoded label is (near) certain
    assert float(CTCLoss()(np.array([[2, 2, 1]]), logits)) < 0.01


def test_beam_decode_finds_most_probable_labelling():
    rng = np.random.default_rng(10)
    logits = rng.normal(scale=1.5, size=(3, 4, 3)).astype("float32")
    ids, lengths, log_probs = ctc_beam_decode(logits, beam_width=50, top_paths=2)
    assert numpy(ids).shape == (3, 2, 4) and numpy(log_probs).shape == (3, 2)
    for i in range(3):
        totals = R.ctc_brute_force_labellings(logits[i])
        ranked = sorted(totals, key=totals.get, reverse=True)
        for rank in range(2):
            n = int(numpy(lengths)[i, rank])
            got = tuple(int(k) for k in numpy(ids)[i, rank, :n])
            assert got == ranked[rank]
            assert np.all(numpy(ids)[i, rank, n:] == PAD_VALUE)
            np.testing.assert_allclose(numpy(log_probs)[i, rank], np.log(totals[got]), rtol=1e-4)


# ---------------------------------------------------------------- precision, weights
# (save/load, the policies, dtype and sample_weight: test_loss_contract_all.py)

def sequence_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((STEPS, FEATURES))
    embedding = keras.layers.Dense(8, name="embedding")(inputs)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits",
                                                  dtype="float32")(embedding))


def sequence_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, STEPS, FEATURES)).astype("float32")
    return x, padded_labels(rng, n)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_logits_give_the_float32_loss_of_the_same_values(dtype):
    rng = np.random.default_rng(11)
    logits = keras.ops.cast(rng.normal(size=(3, STEPS, CLASSES)).astype("float32"), dtype)
    labels = padded_labels(rng, 3)
    rounded = numpy(keras.ops.cast(logits, "float32"))
    np.testing.assert_allclose(numpy(CTCLoss(reduction=None)(labels, logits)),
                               reference_losses(rounded, labels), rtol=1e-5)


def test_sample_weight_with_infeasible_labels():
    rng = np.random.default_rng(12)
    logits = rng.normal(size=(6, 2, CLASSES)).astype("float32")  # 2 frames: some infeasible
    labels = padded_labels(rng, 6)
    assert any(np_min_frames(r) > 2 for r in labels)
    check_sample_weight(lambda: CTCLoss(zero_infinity=True), labels, logits)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("labels, logits_shape, match", [
    (np.array([1, 2]), (2, STEPS, CLASSES), r"y_true must have shape \(batch, max_label"),
    (np.ones((2, 3, 1)), (2, STEPS, CLASSES), r"y_true must have shape"),
    (np.array([[1, 2]]), (1, CLASSES), r"y_pred must have shape \(batch, frames"),
    (np.array([[1, 5, -1]]), (1, STEPS, CLASSES), r"\[1, 4\].*got ids in \[1, 5\]"),
    (np.array([[1, 0, -1]]), (1, STEPS, CLASSES), "blank id 0"),
    (np.array([[1, -2, -1]]), (1, STEPS, CLASSES), r"got ids in \[-2, 1\]"),
    (np.array([[1, -1, 2]]), (1, STEPS, CLASSES), "must come after the label"),
    (np.array([[1.5, -1]]), (1, STEPS, CLASSES), "non-integer"),
    (np.array([[1, -1]]), (2, STEPS, CLASSES), "1 samples but y_pred has 2"),
    (np.array([[-1, -1]]), (1, STEPS, 1), "at least 2 classes"),
])
def test_bad_input_raises(labels, logits_shape, match):
    logits = np.zeros(logits_shape, "float32")
    with pytest.raises(ValueError, match=match):
        CTCLoss()(labels, logits)


def test_bad_options_raise():
    for pad in (1, 2.0, True, "x"):
        with pytest.raises(ValueError, match="pad_value"):
            CTCLoss(pad_value=pad)
    logits = np.zeros((2, STEPS, CLASSES), "float32")
    with pytest.raises(ValueError, match=r"logit_length must be in \[0, 8\]"):
        ctc_loss(np.array([[1, -1], [2, 3]]), logits, logit_length=np.array([9, 3]))
    with pytest.raises(ValueError, match="top_paths"):
        ctc_beam_decode(logits, beam_width=2, top_paths=3)
    with pytest.raises(ValueError, match="y_pred must have shape"):
        ctc_greedy_decode(logits[0])


@pytest.mark.tensorflow
@pytest.mark.parametrize("row", [[CLASSES, -1, -1, -1], [1, -1, 2, -1], [0, 1, -1, -1]])
def test_bad_labels_stop_compiled_training(row):
    """TensorFlow only: inside its compiled graph the label values are checked by a graph
    assertion (losses.base / losses.sequence); JAX traces have no such assertion."""
    import tensorflow as tf

    x, y = sequence_data(n=8)
    y[3] = row  # only visible at run time inside the compiled graph
    model = sequence_model()
    model.compile(optimizer="sgd", loss=CTCLoss())
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"label ids must be in \[1, 4\] followed only by padding -1"):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)


def test_public_constants():
    assert sequence.BLANK_INDEX == R.BLANK_INDEX == 0
    assert sequence.PAD_VALUE == -1
