"""losses.pair_based (Multi-Similarity, SupCon, NT-Xent) against NumPy references written here (loops over anchors and pairs,
the papers' formulas), on random batches and the edge cases metric-learning users hit:
all-positive and all-negative batches, one sample per class, float16 inputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from losses.pair_based import (MultiSimilarityLoss, NTXentLoss, SupConLoss,
                               multi_similarity_loss, nt_xent_loss, supervised_contrastive_loss)


def cosine(e):
    e = np.asarray(e, np.float64)
    u = e / np.linalg.norm(e, axis=1, keepdims=True)
    return u @ u.T


def ms_reference(y, e, alpha=2.0, beta=50.0, base=0.5, epsilon=None):
    s, n = cosine(e), len(y)
    out = np.zeros(n)
    for i in range(n):
        p_all = [k for k in range(n) if k != i and y[k] == y[i]]
        n_all = [k for k in range(n) if y[k] != y[i]]
        if epsilon is not None:  # the paper's mining, Eq. 7-8
            p_kept = [k for k in p_all if n_all and s[i, k] - epsilon < max(s[i, n_all])]
            n_kept = [k for k in n_all if p_all and s[i, k] + epsilon > min(s[i, p_all])]
            p_all, n_all = p_kept, n_kept
        pos = [np.exp(-alpha * (s[i, k] - base)) for k in p_all]
        neg = [np.exp(beta * (s[i, k] - base)) for k in n_all]
        out[i] = np.log1p(sum(pos)) / alpha + np.log1p(sum(neg)) / beta
    return out


def supcon_reference(y, e, temperature=0.1):
    s, n = cosine(e), len(y)
    per_anchor, anchors = np.zeros(n), 0
    for i in range(n):
        positives = [p for p in range(n) if p != i and y[p] == y[i]]
        if not positives:
            continue
        anchors += 1
        denominator = sum(np.exp(s[i, k] / temperature) for k in range(n) if k != i)
        per_anchor[i] = -np.mean([np.log(np.exp(s[i, p] / temperature) / denominator)
                                  for p in positives])
    return per_anchor * n / max(anchors, 1)


def nt_xent_reference(y, e, temperature=0.07):
    s, n = cosine(e) / temperature, len(y)
    sums, pairs = np.zeros(n), 0
    for a in range(n):
        negatives = [np.exp(s[a, k]) for k in range(n) if y[k] != y[a]]
        for p in range(n):
            if p != a and y[p] == y[a]:
                pairs += 1
                sums[a] += -np.log(np.exp(s[a, p]) / (np.exp(s[a, p]) + sum(negatives)))
    return sums * n / max(pairs, 1)


BATCHES = {
    "random": (np.arange(12) % 3, 0),
    "all_positive": (np.zeros(6, int), 1),
    "all_negative": (np.arange(6), 2),
    "one_per_class_and_pairs": (np.array([0, 1, 1, 2, 3, 3, 4]), 3),
}


@pytest.mark.parametrize("batch", BATCHES, ids=list(BATCHES))
def test_per_sample_values_equal_the_references(batch):
    y, seed = BATCHES[batch]
    e = np.random.default_rng(seed).normal(size=(len(y), 5)).astype(np.float32)
    found = keras.ops.convert_to_numpy(multi_similarity_loss(y, e, 2.0, 50.0, 0.5))
    np.testing.assert_allclose(found, ms_reference(y, e), rtol=1e-5, atol=1e-5)
    found = keras.ops.convert_to_numpy(multi_similarity_loss(y, e, 3.0, 20.0, 0.2))
    np.testing.assert_allclose(found, ms_reference(y, e, 3.0, 20.0, 0.2), rtol=1e-5,
                               atol=1e-5)
    for epsilon in (0.0, 0.1, 0.5):
        found = keras.ops.convert_to_numpy(multi_similarity_loss(y, e, 2.0, 50.0, 0.5, epsilon))
        np.testing.assert_allclose(found, ms_reference(y, e, epsilon=epsilon), rtol=1e-5,
                                   atol=1e-5)
    for temperature in (0.1, 0.5):
        found = keras.ops.convert_to_numpy(supervised_contrastive_loss(y, e, temperature))
        np.testing.assert_allclose(found, supcon_reference(y, e, temperature), rtol=1e-5,
                                   atol=1e-5)
        found = keras.ops.convert_to_numpy(nt_xent_loss(y, e, temperature))
        np.testing.assert_allclose(found, nt_xent_reference(y, e, temperature), rtol=1e-5,
                                   atol=1e-5)


def test_edge_cases_have_the_values_the_formulas_give():
    e = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    # no positive anywhere: SupCon has no anchor and gives 0; MS keeps only its negatives
    assert float(SupConLoss()(np.arange(6), e)) == 0.0
    assert float(NTXentLoss()(np.arange(6), e)) == 0.0
    # one class: NT-Xent has no negatives, so every pair term is -log(1) = 0
    assert float(NTXentLoss()(np.zeros(6, int), e)) == pytest.approx(0.0, abs=1e-6)
    # one class: MS has no negative term; SupCon's denominator holds positives only
    assert float(MultiSimilarityLoss()(np.zeros(6, int), e)) == pytest.approx(
        ms_reference(np.zeros(6, int), e).mean(), rel=1e-5)


def test_large_scales_stay_finite_and_close_in_float16():
    y = np.arange(16) % 4
    e = np.random.default_rng(1).normal(size=(16, 8))
    e[y == 0] *= 50.0  # long embeddings: only directions count
    for loss, reference in ((MultiSimilarityLoss(beta=80.0), ms_reference(y, e, beta=80.0)),
                            (SupConLoss(temperature=0.05), supcon_reference(y, e, 0.05)),
                            (NTXentLoss(temperature=0.05), nt_xent_reference(y, e, 0.05))):
        found = float(loss(y, e.astype(np.float16)))
        assert np.isfinite(found)
        assert found == pytest.approx(reference.mean(), rel=2e-2)


def test_bad_arguments_are_refused():
    for bad in (dict(alpha=0.0), dict(beta=-1.0), dict(base=1.5)):
        with pytest.raises(ValueError, match="alpha|beta|base"):
            MultiSimilarityLoss(**bad)
    with pytest.raises(ValueError, match="temperature"):
        SupConLoss(temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature=-1.0)
    with pytest.raises(ValueError, match="embedding"):
        SupConLoss()(np.arange(4), np.zeros((4, 2, 2), np.float32))


@pytest.mark.parametrize("labels", [np.zeros(4, int), np.arange(4), np.zeros(1, int)],
                         ids=["all_positive", "all_negative", "one_sample"])
def test_a_training_step_on_edge_batches_keeps_the_weights_finite(labels):
    x = np.random.default_rng(0).normal(size=(len(labels), 5)).astype(np.float32)
    for loss in (MultiSimilarityLoss(), SupConLoss(), NTXentLoss()):
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
        model.train_on_batch(x, labels)
        assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in model.weights), \
            type(loss).__name__


def test_miners_on_a_hand_made_batch():
    from losses.mining import multi_similarity_pairs, pair_margin_pairs

    labels = np.array([0, 0, 0, 1])
    s = np.array([[1.0, 0.9, 0.3, 0.5],   # anchor 0: easiest... hardest positive 0.3,
                  [0.9, 1.0, 0.8, 0.2],   #   hardest negative 0.5
                  [0.3, 0.8, 1.0, 0.85],
                  [0.5, 0.2, 0.85, 1.0]], np.float32)
    positives, negatives = (keras.ops.convert_to_numpy(m)
                            for m in multi_similarity_pairs(s, labels, epsilon=0.1))
    # anchor 0: positive kept if S - 0.1 < 0.5 -> only (0, 2); negative (0, 3): 0.5 + 0.1 > 0.3
    assert positives[0].tolist() == [False, False, True, False]
    assert negatives[0].tolist() == [False, False, False, True]
    # anchor 1: hardest negative 0.2: no positive has S - 0.1 < 0.2; (1, 3): 0.3 > 0.8? no
    assert not positives[1].any() and not negatives[1].any()
    # anchor 3 has no positive: it keeps no negative
    assert not negatives[3].any() and not positives[3].any()
    d = 1.0 - s
    positives, negatives = (keras.ops.convert_to_numpy(m)
                            for m in pair_margin_pairs(d, labels, 0.15, 0.4))
    assert positives[0].tolist() == [False, False, True, False]   # d 0.1 < 0.15 < 0.7
    assert negatives[2].tolist() == [False, False, False, True]   # d 0.15 < 0.4
    assert not negatives[1].any()                                  # d 0.8
