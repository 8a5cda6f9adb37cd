"""losses.pair_based (Multi-Similarity, SupCon, NT-Xent, Circle, N-pairs, lifted structure,
angular) against NumPy references written here (loops over anchors and pairs, the papers'
formulas), on random batches and the edge cases metric-learning users hit: all-positive and
all-negative batches, one sample per class, float16 inputs."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from losses.heads import build_head, make_model
from losses.metric import JointLoss
from losses.pair_based import (AngularLoss, CircleLoss, LiftedStructureLoss,
                               MultiSimilarityLoss, NPairsLoss, NTXentLoss, SupConLoss,
                               angular_loss, circle_loss, lifted_structure_loss,
                               multi_similarity_loss, n_pairs_loss, nt_xent_loss,
                               supervised_contrastive_loss)
from losses.registry import get_recipe


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


# --------------------------------------------------------------------------- Circle, N-pairs,
# lifted structure, angular: references written from the papers' formulas, pair by pair


def circle_reference(y, e, m=0.25, gamma=256.0):
    """Sun et al. 2020, Eq. 6: log(1 + Σ_n Σ_p exp(γ α_n (s_n - Δ_n) - γ α_p (s_p - Δ_p)))
    per anchor, summed in log space (γ = 256 overflows a plain exp); the batch value is the
    mean over the anchors with a positive and a negative."""
    s, n = cosine(e), len(y)
    values, anchors = np.zeros(n), 0
    for i in range(n):
        positives = [k for k in range(n) if k != i and y[k] == y[i]]
        negatives = [k for k in range(n) if y[k] != y[i]]
        if not positives or not negatives:
            continue
        anchors += 1
        exponents = [0.0]  # the 1 of log(1 + ...)
        for q in negatives:
            for p in positives:
                alpha_n, alpha_p = max(s[i, q] + m, 0.0), max(1 + m - s[i, p], 0.0)
                exponents.append(gamma * alpha_n * (s[i, q] - m)
                                 - gamma * alpha_p * (s[i, p] - (1 - m)))
        values[i] = np.logaddexp.reduce(exponents)
    return values * n / max(anchors, 1)


def n_pairs_reference(y, e, embedding_l2=0.0):
    """Sohn 2016: per class the first two samples form (anchor, positive); cross-entropy of
    the anchor over the positives of every pair, mean over pairs, + λ/(4N) Σ ‖f‖²."""
    e = np.asarray(e, np.float64)
    pairs = []
    for label in dict.fromkeys(y.tolist()):  # the classes, in order of first appearance
        members = [k for k in range(len(y)) if y[k] == label]
        if len(members) >= 2:
            pairs.append((members[0], members[1]))
    values = np.zeros(len(y))
    for a, p in pairs:
        logits = np.array([e[a] @ e[q] for _, q in pairs])
        values[a] += -(e[a] @ e[p]) + np.log(np.sum(np.exp(logits - logits.max()))) \
            + logits.max()
        for member in (a, p):
            values[member] += embedding_l2 / 4 * (e[member] @ e[member])
    return values * len(y) / max(len(pairs), 1), pairs


def lifted_paper_loss(y, e, margin=1.0):
    """Oh Song et al. 2016, Eq. 4, literally: 1/(2|P|) Σ_{(i,j)∈P} [J_ij]_+² over the
    unordered positive pairs."""
    e = np.asarray(e, np.float64)
    n = len(y)
    d = np.linalg.norm(e[:, None] - e[None], axis=-1)
    total, pairs = 0.0, 0
    for i in range(n):
        for j in range(i + 1, n):
            if y[i] != y[j]:
                continue
            pairs += 1
            terms = [np.exp(margin - d[i, k]) for k in range(n) if y[k] != y[i]] + \
                    [np.exp(margin - d[j, k]) for k in range(n) if y[k] != y[j]]
            if terms:  # without negatives J = -inf and the pair gives 0
                total += max(np.log(sum(terms)) + d[i, j], 0.0) ** 2
    return total / (2 * pairs) if pairs else 0.0


def lifted_reference(y, e, margin=1.0):
    """The per-sample convention: sample i holds B/(4|P|) Σ_{j∈P_i} [J_ij]_+²."""
    e = np.asarray(e, np.float64)
    n = len(y)
    d = np.linalg.norm(e[:, None] - e[None], axis=-1)
    values = np.zeros(n)
    unordered = sum(1 for i in range(n) for j in range(i + 1, n) if y[i] == y[j])
    for i in range(n):
        for j in range(n):
            if j == i or y[j] != y[i]:
                continue
            terms = [np.exp(margin - d[i, k]) for k in range(n) if y[k] != y[i]] + \
                    [np.exp(margin - d[j, k]) for k in range(n) if y[k] != y[j]]
            if terms:
                values[i] += max(np.log(sum(terms)) + d[i, j], 0.0) ** 2
    return values * n / (4 * max(unordered, 1))


def angular_reference(y, e, alpha=40.0):
    """Wang et al. 2017, Eq. 8 on unit embeddings, over every ordered positive pair (a, p)."""
    e = np.asarray(e, np.float64)
    x = e / np.linalg.norm(e, axis=1, keepdims=True)
    t = math.tan(math.radians(alpha)) ** 2
    n = len(y)
    values, pairs = np.zeros(n), 0
    for a in range(n):
        for p in range(n):
            if p == a or y[p] != y[a]:
                continue
            pairs += 1
            exponents = [4 * t * (x[a] + x[p]) @ x[q] - 2 * (1 + t) * x[a] @ x[p]
                         for q in range(n) if y[q] != y[a]]
            values[a] += np.log1p(np.sum(np.exp(exponents)))
    return values * n / max(pairs, 1)


NEW_BATCHES = {**BATCHES,
               "shuffled_pk": (np.array([2, 0, 1, 0, 2, 1, 1, 0, 2, 0]), 4),
               "one_per_class": (np.arange(5), 5)}


def _values(per_sample):
    return keras.ops.convert_to_numpy(per_sample)


@pytest.mark.parametrize("batch", NEW_BATCHES, ids=list(NEW_BATCHES))
def test_circle_n_pairs_lifted_angular_equal_the_references(batch):
    y, seed = NEW_BATCHES[batch]
    e = np.random.default_rng(seed).normal(size=(len(y), 5)).astype(np.float32)
    for m, gamma in ((0.25, 256.0), (0.4, 80.0), (0.1, 8.0)):
        np.testing.assert_allclose(_values(circle_loss(y, e, m, gamma)),
                                   circle_reference(y, e, m, gamma), rtol=1e-5, atol=1e-5)
    for embedding_l2 in (0.0, 0.002, 0.5):
        np.testing.assert_allclose(_values(n_pairs_loss(y, e, embedding_l2)),
                                   n_pairs_reference(y, e, embedding_l2)[0], rtol=1e-5,
                                   atol=1e-5)
    for margin in (1.0, 0.0, 3.0):
        found = _values(lifted_structure_loss(y, e, margin))
        np.testing.assert_allclose(found, lifted_reference(y, e, margin), rtol=1e-5, atol=1e-5)
        # the per-sample convention: the batch mean is the paper's loss
        assert found.mean() == pytest.approx(lifted_paper_loss(y, e, margin), rel=1e-5,
                                             abs=1e-5)
    for alpha in (40.0, 30.0, 55.0):
        np.testing.assert_allclose(_values(angular_loss(y, e, alpha)),
                                   angular_reference(y, e, alpha), rtol=1e-5, atol=1e-5)


def test_n_pairs_takes_the_first_two_samples_of_each_class():
    y = np.array([3, 1, 3, 1, 3, 7, 1])
    e = np.random.default_rng(6).normal(size=(7, 4)).astype(np.float32)
    reference, pairs = n_pairs_reference(y, e)
    assert pairs == [(0, 2), (1, 3)]                  # class 7 alone: no pair
    found = _values(n_pairs_loss(y, e))
    assert np.all(found[[2, 3, 4, 5, 6]] == 0.0)     # only anchors carry the cross-entropy
    np.testing.assert_allclose(found, reference, rtol=1e-5, atol=1e-5)
    # one-hot labels give the same pairs
    np.testing.assert_allclose(_values(n_pairs_loss(np.eye(8)[y], e)), reference, rtol=1e-5,
                               atol=1e-5)


def test_new_losses_edge_batches_have_the_values_the_formulas_give():
    e = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    negatives_only, positives_only = np.arange(6), np.zeros(6, int)
    for loss in (CircleLoss(), NPairsLoss(), LiftedStructureLoss(), AngularLoss()):
        # no positive pair anywhere: nothing to average, 0
        assert float(loss(negatives_only, e)) == 0.0, type(loss).__name__
    # one class: no negatives. Circle has no valid anchor, lifted J = -inf, angular log(1)
    for loss in (CircleLoss(), LiftedStructureLoss(), AngularLoss()):
        assert float(loss(positives_only, e)) == pytest.approx(0.0, abs=1e-6)
    # one class: N-pairs has one pair, a softmax over one candidate, plus the L2 penalty
    assert float(NPairsLoss()(positives_only, e)) == pytest.approx(0.0, abs=1e-6)
    expected = 0.1 / 4 * (e[0] @ e[0] + e[1] @ e[1])
    assert float(NPairsLoss(embedding_l2=0.1)(positives_only, e)) == pytest.approx(expected,
                                                                                  rel=1e-5)


def test_new_losses_sample_weight_weights_the_anchors():
    y = np.arange(8) % 4
    e = np.random.default_rng(3).normal(size=(8, 3)).astype(np.float32)
    weights = np.linspace(0.0, 2.0, 8).astype(np.float32)
    for loss, reference in ((CircleLoss(), circle_reference(y, e)),
                            (NPairsLoss(embedding_l2=0.1), n_pairs_reference(y, e, 0.1)[0]),
                            (LiftedStructureLoss(), lifted_reference(y, e)),
                            (AngularLoss(), angular_reference(y, e))):
        found = float(loss(y, e, sample_weight=weights))
        assert found == pytest.approx(np.mean(weights * reference), rel=1e-5, abs=1e-6)


def test_new_losses_at_large_scales_stay_finite_in_float16():
    y = np.arange(16) % 4
    e = np.random.default_rng(1).normal(size=(16, 8))
    e[y == 0] *= 50.0  # long embeddings: the dot products of N-pairs reach ~10^4
    e16 = e.astype(np.float16)
    e_rounded = e16.astype(np.float64)  # what the loss sees
    for loss, reference in (
            (CircleLoss(gamma=512.0), circle_reference(y, e_rounded, 0.25, 512.0)),
            (NPairsLoss(embedding_l2=0.002), n_pairs_reference(y, e_rounded, 0.002)[0]),
            (LiftedStructureLoss(margin=2.0), lifted_reference(y, e_rounded, 2.0)),
            (AngularLoss(alpha=55.0), angular_reference(y, e_rounded, 55.0))):
        found = float(loss(y, e16))
        assert np.isfinite(found), type(loss).__name__
        assert found == pytest.approx(reference.mean(), rel=1e-3), type(loss).__name__
    # and in a float16 model: finite loss and gradients
    x = np.random.default_rng(2).normal(size=(16, 5)).astype(np.float32)
    keras.config.set_dtype_policy("mixed_float16")
    for loss in (CircleLoss(), NPairsLoss(), LiftedStructureLoss(), AngularLoss()):
        large = keras.initializers.RandomNormal(stddev=20.0, seed=0)
        model = keras.Sequential([keras.Input((5,)),
                                  keras.layers.Dense(8, kernel_initializer=large)])
        model.compile(optimizer=keras.optimizers.SGD(1e-3), loss=loss)
        assert np.isfinite(model.train_on_batch(x, y)), type(loss).__name__
        assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in model.weights)


def test_new_losses_refuse_bad_arguments():
    for cls, bad, name in ((CircleLoss, dict(margin=-0.1), "margin"),
                           (CircleLoss, dict(margin=1.0), "margin"),
                           (CircleLoss, dict(gamma=0.0), "gamma"),
                           (CircleLoss, dict(gamma=float("inf")), "gamma"),
                           (NPairsLoss, dict(embedding_l2=-1e-3), "embedding_l2"),
                           (NPairsLoss, dict(embedding_l2="0.1"), "embedding_l2"),
                           (LiftedStructureLoss, dict(margin=-1.0), "margin"),
                           (LiftedStructureLoss, dict(margin=float("nan")), "margin"),
                           (AngularLoss, dict(alpha=0.0), "alpha"),
                           (AngularLoss, dict(alpha=90.0), "alpha"),
                           (AngularLoss, dict(alpha=True), "alpha")):
        with pytest.raises(ValueError, match=name):
            cls(**bad)
    for loss in (CircleLoss(), NPairsLoss(), LiftedStructureLoss(), AngularLoss()):
        with pytest.raises(ValueError, match="embedding"):
            loss(np.arange(4), np.zeros((4, 2, 2), np.float32))
        with pytest.raises(ValueError, match="samples"):
            loss(np.arange(4), np.zeros((5, 2), np.float32))


@pytest.mark.parametrize("labels", [np.zeros(4, int), np.arange(4), np.zeros(1, int)],
                         ids=["all_positive", "all_negative", "one_sample"])
def test_new_losses_train_on_edge_batches_with_finite_weights(labels):
    x = np.random.default_rng(0).normal(size=(len(labels), 5)).astype(np.float32)
    for loss in (CircleLoss(), NPairsLoss(embedding_l2=0.1), LiftedStructureLoss(),
                 AngularLoss()):
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
        model.train_on_batch(x, labels)
        assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in model.weights), \
            type(loss).__name__


@pytest.mark.parametrize("name, kind", [("circle", CircleLoss), ("n_pairs", NPairsLoss),
                                        ("lifted_structure", LiftedStructureLoss),
                                        ("angular", AngularLoss)])
def test_new_recipes_build_and_train_a_step(name, kind):
    recipe = get_recipe(name)
    assert recipe.head == "embedding" and recipe.balanced_batches and recipe.summary
    loss = recipe.build_loss(4)
    assert isinstance(loss, JointLoss) and isinstance(loss.metric, kind)
    inputs = keras.Input((8,))
    model = make_model(inputs, build_head("embedding", 4)(keras.layers.Dense(3)(inputs)))
    model.compile(optimizer="adam", loss=loss)
    x = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    assert np.isfinite(model.train_on_batch(x, np.arange(16) % 4))
