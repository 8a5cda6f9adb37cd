"""zoo.reference.ctc: NumPy α/β recursions, loss and gradient, checked against hand-computed
cases, the brute-force sum over alignments, keras.ops.ctc_loss and automatic differentiation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import keras
from zoo.reference import ctc as R


def softmax(u):
    e = np.exp(u - u.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def random_logits(num_steps, num_classes, seed):
    return np.random.default_rng(seed).normal(scale=1.5, size=(num_steps, num_classes))


def all_labels(num_classes, max_length):
    for length in range(max_length + 1):
        yield from itertools.product(range(1, num_classes), repeat=length)


# ---------------------------------------------------------------- hand-computed tiny cases

def test_hand_computed_probabilities():
    u = random_logits(3, 3, seed=1)
    y = softmax(u)
    b = 0
    # T = 1, l = (1): the single path "1"
    np.testing.assert_allclose(np.exp(-R.ctc_loss(u[:1], [1])), y[0, 1], rtol=1e-12)
    # T = 2, l = (1): paths "11", "∅1", "1∅"
    p = y[0, 1] * y[1, 1] + y[0, b] * y[1, 1] + y[0, 1] * y[1, b]
    np.testing.assert_allclose(np.exp(-R.ctc_loss(u[:2], [1])), p, rtol=1e-12)
    # T = 3, l = (1, 1): only "1∅1" (a repeat needs a blank between)
    np.testing.assert_allclose(np.exp(-R.ctc_loss(u, [1, 1])), y[0, 1] * y[1, b] * y[2, 1],
                               rtol=1e-12)
    # T = 3, l = (1, 2): "12∅" "1∅2" "∅12" "112" "122"
    p = (y[0, 1] * y[1, 2] * y[2, b] + y[0, 1] * y[1, b] * y[2, 2] + y[0, b] * y[1, 1] * y[2, 2]
         + y[0, 1] * y[1, 1] * y[2, 2] + y[0, 1] * y[1, 2] * y[2, 2])
    np.testing.assert_allclose(np.exp(-R.ctc_loss(u, [1, 2])), p, rtol=1e-12)
    # empty label: all blanks
    np.testing.assert_allclose(np.exp(-R.ctc_loss(u, [])), np.prod(y[:, b]), rtol=1e-12)


def test_infeasible_and_limits():
    u = random_logits(3, 3, seed=2)
    assert R.ctc_loss(u[:2], [1, 1]) == np.inf  # needs 3 frames
    assert R.ctc_loss(u, [1, 2, 1, 2]) == np.inf
    assert R.ctc_loss(u[:0], []) == 0.0 and R.ctc_loss(u[:0], [1]) == np.inf
    assert R.min_frames([1, 1, 2, 2, 2, 1]) == 6 + 3 and R.min_frames([]) == 0
    with pytest.raises(ValueError, match="infeasible"):
        R.ctc_gradient(u[:2], [1, 1])
    # a near-certain path gives a loss near 0
    sure = np.full((4, 3), -30.0)
    sure[[0, 1, 2, 3], [1, 0, 1, 2]] = 30.0
    assert R.ctc_loss(sure, [1, 1, 2]) < 1e-12


def test_collapse_and_extension():
    assert R.collapse([1, 1, 0, 2, 2]) == (1, 2)
    assert R.collapse([0, 1, 2, 0]) == (1, 2)
    assert R.collapse([1, 0, 1, 2]) == (1, 1, 2)
    assert R.collapse([0, 0]) == ()
    np.testing.assert_array_equal(R.extend_with_blanks([3, 4]), [0, 3, 0, 4, 0])


def test_rejects_bad_labels():
    u = random_logits(3, 3, seed=3)
    with pytest.raises(ValueError, match="blank"):
        R.ctc_loss(u, [1, 0])
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        R.ctc_loss(u, [3])
    with pytest.raises(ValueError, match="shape"):
        R.ctc_loss(u[0], [1])


# ---------------------------------------------------------------- brute force over alignments

@pytest.mark.parametrize("num_steps", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("num_classes", [2, 3])
def test_forward_matches_brute_force(num_steps, num_classes):
    u = random_logits(num_steps, num_classes, seed=10 * num_steps + num_classes)
    for label in all_labels(num_classes, min(num_steps + 1, 3)):
        brute = R.ctc_brute_force_likelihood(u, label)
        forward = np.exp(R.ctc_log_likelihood(u, label))
        np.testing.assert_allclose(forward, brute, rtol=1e-10, atol=1e-300, err_msg=str(label))
        assert (brute == 0.0) == (R.min_frames(label) > num_steps)


def test_brute_force_labellings_sum_to_one():
    u = random_logits(4, 3, seed=4)
    totals = R.ctc_brute_force_labellings(u)
    np.testing.assert_allclose(sum(totals.values()), 1.0, rtol=1e-12)
    for label, p in totals.items():
        np.testing.assert_allclose(np.exp(-R.ctc_loss(u, list(label))), p, rtol=1e-10)


def test_alpha_beta_give_p_at_every_step():
    u = random_logits(7, 4, seed=5)
    label = [2, 2, 3, 1]
    log_p = R.ctc_log_likelihood(u, label)
    per_step = np.log(np.exp(R.ctc_log_alpha(u, label) + R.ctc_log_beta(u, label)).sum(axis=1))
    np.testing.assert_allclose(per_step, np.full(7, log_p), rtol=1e-10)


# ---------------------------------------------------------------- keras.ops.ctc_loss and autodiff

def _random_batch(seed, batch=6, num_steps=12, num_classes=6, max_label=5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(batch, num_steps, num_classes)).astype("float32")
    lengths = rng.integers(0, max_label + 1, size=batch)
    labels = np.zeros((batch, max_label), "int32")  # 0-padded for keras.ops (lengths given)
    for i, n in enumerate(lengths):
        labels[i, :n] = rng.integers(1, num_classes, size=n)
    return logits, labels, lengths.astype("int32")


def test_loss_matches_keras_ctc_loss():
    logits, labels, lengths = _random_batch(seed=6)
    frames = np.full(len(logits), logits.shape[1], "int32")
    keras_loss = keras.ops.convert_to_numpy(
        keras.ops.ctc_loss(labels, logits, lengths, frames, mask_index=0))
    ours = [R.ctc_loss(logits[i], labels[i, :lengths[i]]) for i in range(len(logits))]
    np.testing.assert_allclose(ours, keras_loss, rtol=1e-5)


def test_loss_matches_keras_on_long_sequences():
    logits, labels, lengths = _random_batch(seed=7, batch=2, num_steps=200, max_label=40)
    frames = np.full(2, 200, "int32")
    keras_loss = keras.ops.convert_to_numpy(keras.ops.ctc_loss(labels, logits, lengths, frames))
    ours = [R.ctc_loss(logits[i], labels[i, :lengths[i]]) for i in range(2)]
    assert np.all(np.isfinite(ours)) and min(ours) > 50  # no underflow in log space
    np.testing.assert_allclose(ours, keras_loss, rtol=1e-5)


def test_gradient_matches_autodiff():
    logits, labels, lengths = _random_batch(seed=8)
    frames = np.full(len(logits), logits.shape[1], "int32")

    def total(u):
        return keras.ops.sum(keras.ops.ctc_loss(labels, u, lengths, frames))

    if keras.backend.backend() == "jax":
        import jax

        autodiff = np.asarray(jax.grad(total)(logits))
    else:
        import tensorflow as tf

        variable = tf.Variable(logits)
        with tf.GradientTape() as tape:
            value = total(variable)
        autodiff = tape.gradient(value, variable).numpy()
    for i in range(len(logits)):
        ours = R.ctc_gradient(logits[i], labels[i, :lengths[i]])
        np.testing.assert_allclose(ours, autodiff[i], atol=2e-5)


def test_gradient_matches_finite_differences():
    u = random_logits(4, 3, seed=9)
    label = [1, 2]
    step = 1e-6
    numeric = np.zeros_like(u)
    for t, k in np.ndindex(*u.shape):
        plus, minus = u.copy(), u.copy()
        plus[t, k] += step
        minus[t, k] -= step
        numeric[t, k] = (R.ctc_loss(plus, label) - R.ctc_loss(minus, label)) / (2 * step)
    analytic = R.ctc_gradient(u, label)
    np.testing.assert_allclose(analytic, numeric, atol=1e-7)
    np.testing.assert_allclose(analytic.sum(axis=1), 0.0, atol=1e-12)  # Σ_k y_k = Σ_s γ = 1


def test_batch_helper_uses_lengths_and_padding():
    logits, labels, lengths = _random_batch(seed=11, batch=3)
    padded = np.where(np.arange(labels.shape[1]) < lengths[:, None], labels, -1)
    frames = np.array([12, 7, 3])
    expected = [R.ctc_loss(logits[i, :frames[i]], labels[i, :lengths[i]]) for i in range(3)]
    np.testing.assert_allclose(R.ctc_batch_loss(logits, padded, frames), expected)
