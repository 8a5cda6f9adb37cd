"""Tests for losses/metric.py and the "embedding" / "center" heads: brute-force NumPy references
written here (loops over all pairs and triplets), hand-computed cases, limits (one class, zero
and identical embeddings), finite-difference gradients, Keras cross-entropy as the λ = 0 limit,
configs and sample weights of every mining, HeadModel fits with integer labels, recipes, bad
input. (The loss contract — save/load, policies, dtype — is test_loss_contract_all.py's.)"""

import itertools
import math

import keras
import loss_contract
import numpy as np
import pytest
from gradients import value_and_grad
from keras import ops
from loss_contract import check_sample_weight

from losses import metric as mt
from losses.heads import CenterHead, EmbeddingHead, build_head, list_heads, make_model
from losses.registry import get_recipe

RNG = np.random.default_rng(11)
LABELS = np.array([0, 1, 0, 2, 1, 0, 2, 1, 3], dtype="int64")  # class 3 is alone
N, C, D = len(LABELS), 4, 3
EMB = RNG.normal(size=(N, D)).astype("float32")
SCORES = RNG.normal(scale=2.0, size=(N, C)).astype("float32")


def per_sample(loss, y_true, y_pred):
    loss.reduction = None
    return ops.convert_to_numpy(loss(y_true, y_pred))


# --------------------------------------------------------------------------- NumPy references


def np_distances(e, squared=False, normalize=False):
    e = np.asarray(e, "float64")
    if normalize:
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-6)
    d2 = np.array([[np.sum((x - y) ** 2) for y in e] for x in e])
    return d2 if squared else np.sqrt(d2)


def np_share(anchor_sums, count):
    """Per-sample values whose mean is Σ / count (the module's convention)."""
    return np.asarray(anchor_sums) * len(anchor_sums) / max(count, 1)


def positives_of(labels, a):
    return [p for p in range(len(labels)) if p != a and labels[p] == labels[a]]


def negatives_of(labels, a):
    return [n for n in range(len(labels)) if labels[n] != labels[a]]


def np_distance_weights(labels, e, cutoff=0.5, nonzero_loss_cutoff=1.4):
    """w[a, n] of distance-weighted mining (Wu et al. 2017) by loops: q(d)⁻¹ on the sphere
    S^{dim-1} of the normalised embeddings, normalised over each anchor's allowed negatives."""
    d, dim = np_distances(e, normalize=True), np.shape(e)[1]
    w = np.zeros((len(labels), len(labels)))
    for a in range(len(labels)):
        for n in negatives_of(labels, a):
            if d[a, n] < nonzero_loss_cutoff:
                x = max(d[a, n], cutoff)
                w[a, n] = x ** (2.0 - dim) * (1.0 - x * x / 4) ** (-(dim - 3) / 2)
        if w[a].sum() > 0:
            w[a] /= w[a].sum()
    return w


def np_contrastive(labels, e, margin=1.0, mining="all", normalize=False, cutoff=0.5,
                   nonzero_loss_cutoff=1.4):
    d = np_distances(e, normalize=normalize)
    sums, count = np.zeros(len(labels)), 0
    if mining == "distance_weighted":
        w = np_distance_weights(labels, e, cutoff, nonzero_loss_cutoff)
        for a in range(len(labels)):
            pos = positives_of(labels, a)
            if not pos or w[a].sum() == 0:
                continue
            for p in pos:  # one positive pair and one expected negative pair per positive
                sums[a] += d[a, p] ** 2 + sum(w[a, n] * max(0.0, margin - d[a, n]) ** 2
                                              for n in negatives_of(labels, a))
                count += 2
        return np_share(sums, count)
    for a in range(len(labels)):
        pos, neg = positives_of(labels, a), negatives_of(labels, a)
        if mining == "hard":
            if not pos or not neg:
                continue
            pos, neg = [max(pos, key=lambda p: d[a, p])], [min(neg, key=lambda n: d[a, n])]
        for p in pos:
            sums[a] += d[a, p] ** 2
            count += 1
        for n in neg:
            sums[a] += max(0.0, margin - d[a, n]) ** 2
            count += 1
    return np_share(sums, count)


def np_triplet(labels, e, margin=0.3, mining="batch_hard", distance="euclidean",
               normalize=False, soft_margin=False, mining_margin=None, cutoff=0.5,
               nonzero_loss_cutoff=1.4):
    d = np_distances(e, squared=distance == "squared", normalize=normalize)
    m = margin if mining_margin is None else mining_margin
    margin_rule = {"margin_all": lambda t: t <= m, "margin_hard": lambda t: t <= min(m, 0),
                   "margin_semihard": lambda t: 0 < t <= m, "margin_easy": lambda t: t > m}
    w = np_distance_weights(labels, e, cutoff, nonzero_loss_cutoff)

    def hinge(x):
        return math.log1p(math.exp(x)) if soft_margin else max(0.0, x + margin)

    sums, count = np.zeros(len(labels)), 0
    for a in range(len(labels)):
        pos, neg = positives_of(labels, a), negatives_of(labels, a)
        if not pos or not neg:
            continue
        if mining == "batch_all":
            for p, n in itertools.product(pos, neg):
                loss = hinge(d[a, p] - d[a, n])
                sums[a] += loss
                count += loss > 0
        elif mining in margin_rule:  # every triplet whose d_an - d_ap meets the rule
            for p, n in itertools.product(pos, neg):
                if margin_rule[mining](d[a, n] - d[a, p]):
                    sums[a] += hinge(d[a, p] - d[a, n])
                    count += 1
        elif mining == "distance_weighted":
            if w[a].sum() == 0:
                continue
            for p in pos:
                sums[a] += sum(w[a, n] * hinge(d[a, p] - d[a, n]) for n in neg)
                count += 1
        elif mining == "batch_hard":
            p, n = max(pos, key=lambda p: d[a, p]), min(neg, key=lambda n: d[a, n])
            sums[a] += hinge(d[a, p] - d[a, n])
            count += 1
        else:  # semi_hard, TF-Addons rule
            for p in pos:
                beyond = [n for n in neg if d[a, n] > d[a, p]]
                n = min(beyond, key=lambda n: d[a, n]) if beyond else max(neg,
                                                                          key=lambda n: d[a, n])
                sums[a] += hinge(d[a, p] - d[a, n])
                count += 1
    return np_share(sums, count)


def np_ce(labels, logits):
    z = np.asarray(logits, "float64")
    z = z - z.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def np_constrained(labels, scores, alpha=0.1, beta=0.1, form="faithful", margin=1.0,
                   features="sigmoid", mining="batch_hard"):
    s = np.asarray(scores, "float64")
    if features == "sigmoid":
        p = 1 / (1 + np.exp(-s))
    elif features == "softmax":
        p = np.exp(s - s.max(1, keepdims=True))
        p = p / p.sum(1, keepdims=True)
    else:
        p = s
    d = np_distances(p, squared=True)

    def term(i, j, n):
        value = alpha * 0.5 * d[i, j] - beta * 0.5 * min(d[i, n], d[j, n])
        return value if form == "faithful" else max(0.0, margin + value)

    sums, count = np.zeros(len(labels)), 0
    for a in range(len(labels)):
        pos, neg = positives_of(labels, a), negatives_of(labels, a)
        if not pos or not neg:
            continue
        if mining == "batch_hard":
            j = max(pos, key=lambda j: d[a, j])
            n = min(neg, key=lambda n: min(d[a, n], d[j, n]))
            sums[a] += term(a, j, n)
            count += 1
        else:
            for j, n in itertools.product(pos, neg):
                sums[a] += term(a, j, n)
                count += 1
    return np_ce(labels, s) + np_share(sums, count)


# --------------------------------------------------------------------------- heads


def test_embedding_head_outputs_logits_and_the_embedding():
    head = EmbeddingHead(C)
    out = {k: ops.convert_to_numpy(v) for k, v in head(EMB).items()}
    w, b = (ops.convert_to_numpy(v) for v in (head.kernel, head.bias))
    np.testing.assert_allclose(out["scores"], EMB @ w + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["embedding"], EMB)
    assert out["scores"].dtype == np.float32


@pytest.mark.parametrize("metric", ["euclidean", "mahalanobis"])
def test_center_head_distances_match_numpy(metric):
    head = CenterHead(C, metric=metric, epsilon=0.01)
    head(EMB)  # build
    if metric == "mahalanobis":
        head.metric_factor.assign(RNG.normal(size=(D, D)).astype("float32"))
    out = {k: ops.convert_to_numpy(v) for k, v in head(EMB).items()}
    centers = ops.convert_to_numpy(head.centers()).astype("float64")
    if metric == "euclidean":
        m = np.eye(D)
    else:
        factor = ops.convert_to_numpy(head.metric_factor).astype("float64")
        m = factor @ factor.T + 0.01 * np.eye(D)
    expected = np.array([[(x - c) @ m @ (x - c) for c in centers] for x in EMB.astype("float64")])
    np.testing.assert_allclose(out["distances"], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(head.metric_matrix()), m, rtol=1e-5,
                               atol=1e-6)
    assert np.all(np.linalg.eigvalsh(ops.convert_to_numpy(head.metric_matrix())) > 0)
    assert sorted(out) == ["distances", "embedding", "scores"]
    np.testing.assert_allclose(ops.convert_to_numpy(head.distances(EMB)), out["distances"])


def test_center_head_moving_average_follows_wen_et_al_with_predicted_classes():
    head = CenterHead(C, center_update="moving_average", alpha=0.5)
    out = head(EMB, training=False)  # builds; no update outside training
    before = ops.convert_to_numpy(head.centers()).astype("float64")
    np.testing.assert_array_equal(before, ops.convert_to_numpy(head.centers()))
    assert not head.class_centers.trainable
    predicted = np.argmax(ops.convert_to_numpy(out["scores"]), axis=1)
    out = head(EMB, training=True)
    after = ops.convert_to_numpy(head.centers())
    expected = before.copy()
    for j in range(C):  # c_j -= α Σ_i δ_ij (c_j - x_i) / (1 + Σ_i δ_ij)
        members = EMB[predicted == j].astype("float64")
        expected[j] -= 0.5 * (len(members) * before[j] - members.sum(0)) / (1 + len(members))
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)
    # the step's distances use the centers from before the update
    np.testing.assert_allclose(ops.convert_to_numpy(out["distances"]),
                               [[np.sum((x - c) ** 2) for c in before] for x in EMB],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["embedding", "center"])
def test_heads_config_round_trip_and_registry(name):
    kwargs = {"metric": "mahalanobis", "center_update": "moving_average", "alpha": 0.3,
              "epsilon": 0.1} if name == "center" else {}
    head = build_head(name, C, kernel_initializer="he_normal", **kwargs)
    clone = type(head).from_config(head.get_config())
    assert clone.get_config() == head.get_config() and name in list_heads()


def test_center_head_rejects_bad_options():
    for kwargs, match in [({"metric": "cosine"}, "metric"), ({"center_update": "ema"}, "center"),
                          ({"alpha": 0.0}, "alpha"), ({"epsilon": -1.0}, "epsilon")]:
        with pytest.raises(ValueError, match=match):
            CenterHead(C, **kwargs)


# --------------------------------------------------------------------------- center loss


def test_center_loss_matches_numpy_and_reads_the_center_head():
    distances = RNG.uniform(0, 5, size=(N, C)).astype("float32")
    got = per_sample(mt.CenterLoss(), LABELS, {"distances": distances})
    np.testing.assert_allclose(got, 0.5 * distances[np.arange(N), LABELS], rtol=1e-6)
    head = CenterHead(C)
    out = head(EMB)
    centers = ops.convert_to_numpy(head.centers())
    expected = 0.5 * np.mean(np.sum((EMB - centers[LABELS]) ** 2, axis=1))
    np.testing.assert_allclose(float(mt.CenterLoss()(np.eye(C)[LABELS], out)), expected,
                               rtol=1e-5)


# --------------------------------------------------------------------------- contrastive loss


@pytest.mark.parametrize("mining,normalize", [("all", False), ("hard", False), ("all", True),
                                             ("distance_weighted", False),
                                             ("distance_weighted", True)])
def test_contrastive_matches_brute_force(mining, normalize):
    loss = mt.ContrastiveLoss(margin=1.5, mining=mining, normalize=normalize)
    expected = np_contrastive(LABELS, EMB, 1.5, mining, normalize)
    np.testing.assert_allclose(per_sample(loss, LABELS, EMB), expected, rtol=1e-5, atol=1e-6)
    got = mt.ContrastiveLoss(margin=1.5, mining=mining, normalize=normalize)(
        LABELS[:, None], {"embedding": EMB, "scores": SCORES})
    np.testing.assert_allclose(float(got), expected.mean(), rtol=1e-5)


@pytest.mark.parametrize("dim,labels", [
    (6, LABELS), (16, LABELS), (6, np.zeros(N, "int64")), (6, np.arange(N)),
    (6, np.repeat([0, 1, 2], 3))])
def test_distance_weighted_losses_match_brute_force_in_higher_dimensions(dim, labels):
    # n = 3 (D) makes the (1 - d²/4) factor vanish: check it at n = 6 and 16, and on edge
    # batches: one class (no negative), one sample per class (no positive), P×K
    e = np.random.default_rng(dim).normal(size=(N, dim)).astype("float32")
    for loss, expected in [
            (mt.ContrastiveLoss(margin=1.2, mining="distance_weighted", normalize=True,
                                cutoff=0.6, nonzero_loss_cutoff=1.5),
             np_contrastive(labels, e, 1.2, "distance_weighted", True, 0.6, 1.5)),
            (mt.TripletLoss(margin=0.4, mining="distance_weighted", normalize=True),
             np_triplet(labels, e, 0.4, "distance_weighted", normalize=True))]:
        np.testing.assert_allclose(per_sample(loss, labels, e), expected, rtol=1e-4,
                                   atol=1e-6)


def test_distance_weighted_contrastive_is_the_expectation_of_sampled_negatives():
    # the deterministic loss = the mean of the sampled contrastive loss over the negatives
    # drawn (one per positive pair) with the miner's probabilities: enumerate the draws
    labels = np.array([0, 0, 1, 2])
    e = np.random.default_rng(5).normal(size=(4, 5)).astype("float32")
    w = np_distance_weights(labels, e)
    d = np_distances(e, normalize=True)
    margin, expected = 1.3, 0.0
    for n0, n1 in itertools.product([1, 2, 3], [0, 2, 3]):  # anchor 0's and anchor 1's draw
        if labels[n0] == 0 or labels[n1] == 0:
            continue
        pairs = [d[0, 1] ** 2, d[1, 0] ** 2, max(0, margin - d[0, n0]) ** 2,
                 max(0, margin - d[1, n1]) ** 2]
        expected += w[0, n0] * w[1, n1] * np.mean(pairs)
    got = mt.ContrastiveLoss(margin=margin, mining="distance_weighted", normalize=True)(
        labels, e)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_contrastive_hand_case():
    # points 0, 1, 3 with labels a, a, b; m = 2.5: pair (0,1) d² = 1; (0,2) d = 3 -> 0;
    # (1,2) d = 2 -> 0.5² = 0.25. Ordered pairs: 6, sum 2·1.25 -> mean 2.5 / 6.
    got = mt.ContrastiveLoss(margin=2.5)(np.array([0, 0, 1]),
                                         np.array([[0.0], [1.0], [3.0]], "float32"))
    np.testing.assert_allclose(float(got), 2.5 / 6, rtol=1e-6)


def test_contrastive_limits_one_class_and_coincident_points():
    same = np.zeros(N, "int64")
    np.testing.assert_allclose(per_sample(mt.ContrastiveLoss(), same, EMB),
                               np_contrastive(same, EMB), rtol=1e-5)
    # zero embeddings: positives cost 0, negatives m², finite (zero) gradients
    value, grad = value_and_grad(lambda e: mt.ContrastiveLoss(margin=2.0)(LABELS, e),
                                 np.zeros((N, D), "float32"))
    negatives = sum(len(negatives_of(LABELS, a)) for a in range(N))
    np.testing.assert_allclose(value, 4.0 * negatives / (N * (N - 1)), rtol=1e-6)
    assert np.all(np.isfinite(grad))
    for loss in (mt.ContrastiveLoss(normalize=True), mt.ContrastiveLoss(mining="hard")):
        value, grad = value_and_grad(lambda e: loss(LABELS, e), np.ones((N, D), "float32"))
        assert np.isfinite(value) and np.all(np.isfinite(grad))


def np_numeric_gradient(fn, x, eps=1e-4):
    x = np.asarray(x, "float64")
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        grad[index] = (fn(x + step) - fn(x - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("loss,reference", [
    (mt.ContrastiveLoss(margin=1.5), lambda e: np_contrastive(LABELS, e, 1.5).mean()),
    (mt.TripletLoss(), lambda e: np_triplet(LABELS, e).mean()),
    (mt.TripletLoss(mining="semi_hard", margin=1.0),
     lambda e: np_triplet(LABELS, e, 1.0, "semi_hard").mean()),
    (mt.TripletLoss(mining="margin_semihard", margin=1.0, mining_margin=2.0),
     lambda e: np_triplet(LABELS, e, 1.0, "margin_semihard", mining_margin=2.0).mean()),
])
def test_gradients_match_finite_differences_of_the_numpy_reference(loss, reference):
    _, grad = value_and_grad(lambda e: loss(LABELS, e), EMB)
    np.testing.assert_allclose(grad, np_numeric_gradient(reference, EMB), rtol=2e-3, atol=2e-4)


# --------------------------------------------------------------------------- triplet loss


@pytest.mark.parametrize("mining", mt.TRIPLET_MINING)
@pytest.mark.parametrize("distance,normalize,soft", [("euclidean", False, False),
                                                     ("squared", True, False),
                                                     ("euclidean", False, True)])
def test_triplet_matches_brute_force(mining, distance, normalize, soft):
    loss = mt.TripletLoss(margin=0.5, mining=mining, distance=distance, normalize=normalize,
                          soft_margin=soft)
    expected = np_triplet(LABELS, EMB, 0.5, mining, distance, normalize, soft)
    np.testing.assert_allclose(per_sample(loss, LABELS, {"embedding": EMB}), expected,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mining", mt.TRIPLET_MARGIN_MINING)
@pytest.mark.parametrize("mining_margin", [0.0, 0.8])
def test_triplet_margin_mining_with_its_own_margin_matches_brute_force(mining, mining_margin):
    loss = mt.TripletLoss(margin=0.5, mining=mining, mining_margin=mining_margin,
                          soft_margin=mining == "margin_easy")
    expected = np_triplet(LABELS, EMB, 0.5, mining, soft_margin=mining == "margin_easy",
                          mining_margin=mining_margin)
    np.testing.assert_allclose(per_sample(loss, LABELS, EMB), expected, rtol=1e-4, atol=1e-5)


def test_triplet_margin_mining_on_a_line():
    # t = d_an - d_ap per anchor (class 0 at 0, 1, 3; class 1 at 1.5, 5; class 2 at 10):
    # anchor 0 at 0: p=1 (d 1): 0.5, 4, 9; p=2 (d 3): -1.5, 2, 7
    # anchor 1 at 1: p=0 (d 1): -0.5, 3, 8; p=2 (d 2): -1.5, 2, 7
    # anchor 2 at 3: p=0 (d 3): -1.5, -1, 4; p=1 (d 2): -0.5, 0, 5
    # anchor 3 at 1.5: p=4 (d 3.5): -2, -3, -2, 5;  anchor 4 at 5: p=3 (3.5): 1.5, 0.5, -1.5, 1.5
    # Mining margin 0.5, loss margin 1: ℓ = 1 - t; t = 0 is "hard", t = 0.5 "semihard".
    points = np.array([0.0, 1.0, 3.0, 1.5, 5.0, 10.0], "float32")[:, None]
    labels = np.array([0, 0, 0, 1, 1, 2])
    t = {"margin_hard": [-1.5, -0.5, -1.5, -1.5, -1, -0.5, 0, -2, -3, -2, -1.5],
         "margin_semihard": [0.5, 0.5]}
    t["margin_all"] = t["margin_hard"] + t["margin_semihard"]
    for mining, ts in t.items():
        got = mt.TripletLoss(margin=1.0, mining=mining, mining_margin=0.5)(labels, points)
        np.testing.assert_allclose(float(got), np.mean([1.0 - v for v in ts]), rtol=1e-5)
    easy = per_sample(mt.TripletLoss(margin=1.0, mining="margin_easy", mining_margin=0.5,
                                     soft_margin=True), labels, points)
    ts = [4, 9, 2, 7, 3, 8, 2, 7, 4, 5, 5, 1.5, 1.5]  # t > 0.5
    np.testing.assert_allclose(easy.mean(), np.mean(np.log1p(np.exp(-np.array(ts)))),
                               rtol=1e-5)


def test_triplet_hand_case_on_a_line():
    # mining worked out in test_mining.py: anchors 0..4 -> (d_ap, d_an) = (3, 1.5), (2, 0.5),
    # (3, 1.5), (3.5, 0.5), (3.5, 2); anchor 5 is alone. Margin 0.3.
    points = np.array([0.0, 1.0, 3.0, 1.5, 5.0, 10.0], "float32")[:, None]
    labels = np.array([0, 0, 0, 1, 1, 2])
    losses = np.array([1.8, 1.8, 1.8, 3.3, 1.8, 0.0])
    got = per_sample(mt.TripletLoss(margin=0.3), labels, points)
    np.testing.assert_allclose(got, losses * 6 / 5, rtol=1e-5)
    np.testing.assert_allclose(got.mean(), 10.5 / 5, rtol=1e-5)


def test_batch_all_averages_over_positive_triplets_only():
    # two classes far apart: every triplet satisfied but one anchor whose negative is close
    points = np.array([[0.0], [0.1], [10.0], [10.1], [0.3]], "float32")
    labels = np.array([0, 0, 1, 1, 1])
    got = float(mt.TripletLoss(margin=1.0, mining="batch_all")(labels, points))
    losses = [max(0.0, abs(points[a, 0] - points[p, 0]) - abs(points[a, 0] - points[n, 0]) + 1)
              for a, p, n in itertools.permutations(range(5), 3)
              if labels[a] == labels[p] != labels[n]]
    positive = [v for v in losses if v > 0]
    assert 0 < len(positive) < len(losses)
    np.testing.assert_allclose(got, np.sum(positive) / len(positive), rtol=1e-5)


@pytest.mark.parametrize("mining", mt.TRIPLET_MINING)
def test_triplet_limits_zero_and_identical_embeddings(mining):
    loss = mt.TripletLoss(margin=0.3, mining=mining)
    # every triplet has d(a,p) = d(a,n) = 0, t = d_an - d_ap = 0: none is semi-hard or easy
    expected = 0.0 if mining in ("margin_semihard", "margin_easy") else 0.3
    for e in (np.zeros((N, D), "float32"), np.tile([[1.0, -2.0, 0.5]], (N, 1)).astype("float32")):
        value, grad = value_and_grad(lambda x: loss(LABELS, x), e)
        # -> loss = margin for each triplet (class 3 has none)
        np.testing.assert_allclose(value, expected, atol=1e-3)  # mean over the valid triplets
        assert np.all(np.isfinite(grad))
    value, grad = value_and_grad(lambda x: mt.TripletLoss(normalize=True, mining=mining)(
        np.zeros(N, "int64"), x), np.zeros((N, D), "float32"))
    assert value == 0.0 and np.all(np.isfinite(grad))  # one class: no triplet at all


# --------------------------------------------------------------------------- triplet-constrained


@pytest.mark.parametrize("form,features,mining", [
    ("faithful", "sigmoid", "batch_hard"), ("faithful", "softmax", "batch_all"),
    ("hinge", "logits", "batch_hard"), ("hinge", "sigmoid", "batch_all")])
def test_triplet_constrained_matches_brute_force(form, features, mining):
    loss = mt.TripletConstrainedLoss(alpha=0.7, beta=0.4, form=form, margin=0.5,
                                     features=features, mining=mining)
    expected = np_constrained(LABELS, SCORES, 0.7, 0.4, form, 0.5, features, mining)
    np.testing.assert_allclose(per_sample(loss, LABELS, SCORES), expected, rtol=1e-4, atol=1e-5)


def test_triplet_constrained_is_cross_entropy_without_constraint_and_bounded():
    keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(LABELS, SCORES)
    got = mt.TripletConstrainedLoss(alpha=0.0, beta=0.0)(LABELS, SCORES)
    np.testing.assert_allclose(float(got), float(keras_ce), rtol=1e-5)
    # faithful on sigmoid features: L >= -β·C/2 however far apart the scores are
    huge = (100.0 * np.sign(RNG.normal(size=(N, C)))).astype("float32")
    per = per_sample(mt.TripletConstrainedLoss(beta=1.0), LABELS, huge)
    assert np.all(np.isfinite(per)) and per.mean() >= -1.0 * C / 2
    assert per_sample(mt.TripletConstrainedLoss(form="hinge", features="logits"), LABELS,
                      huge).min() >= 0.0
    # zero scores: p = ½ everywhere, L1 = L2 = 0 -> log C; finite gradients
    value, grad = value_and_grad(lambda s: mt.TripletConstrainedLoss()(LABELS, s),
                                 np.zeros((N, C), "float32"))
    np.testing.assert_allclose(value, math.log(C), rtol=1e-6)
    assert np.all(np.isfinite(grad))


# --------------------------------------------------------------------------- JointLoss


def test_joint_loss_adds_weighted_cross_entropy_and_metric():
    out = {"scores": SCORES, "embedding": EMB}
    joint = mt.JointLoss(mt.TripletLoss(), metric_weight=0.3, cross_entropy_weight=2.0)
    expected = 2.0 * np_ce(LABELS, SCORES) + 0.3 * np_triplet(LABELS, EMB)
    np.testing.assert_allclose(per_sample(joint, LABELS, out), expected, rtol=1e-5, atol=1e-6)
    assert joint.head_keys == ("scores", "embedding")
    keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(LABELS, SCORES)
    got = mt.JointLoss(mt.TripletLoss(), metric_weight=0.0)(LABELS, out)
    np.testing.assert_allclose(float(got), float(keras_ce), rtol=1e-5)
    # a metric without head keys gets the scores tensor, from a dict or a plain tensor
    plain = mt.JointLoss(keras.losses.CategoricalHinge(), metric_weight=0.5)
    assert plain.head_keys == ()
    hinge = keras.losses.CategoricalHinge(reduction=None)(np.eye(C)[LABELS], SCORES)
    np.testing.assert_allclose(per_sample(plain, np.eye(C)[LABELS], SCORES),
                               np_ce(LABELS, SCORES) + 0.5 * ops.convert_to_numpy(hinge),
                               rtol=1e-5)


def test_joint_loss_serializes_the_nested_loss():
    joint = mt.JointLoss(mt.TripletLoss(margin=0.7, mining="semi_hard"), metric_weight=0.2)
    config = joint.get_config()
    assert config["metric"]["class_name"] == "TripletLoss"
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(joint))
    assert isinstance(clone.metric, mt.TripletLoss) and clone.metric.mining == "semi_hard"
    assert clone.get_config() == config


# ---------------------------------------------------------------- configs, sample weights
# (save/load and the policies for every class: test_loss_contract_all.py)


@pytest.mark.parametrize("loss", [
    mt.CenterLoss(), mt.ContrastiveLoss(margin=2.0, mining="hard", normalize=True),
    mt.TripletLoss(margin=0.1, mining="batch_all", distance="squared", normalize=True,
                   soft_margin=True),
    mt.TripletConstrainedLoss(alpha=0.2, beta=0.3, form="hinge", margin=0.4, features="logits",
                              mining="batch_all"),
    mt.TripletLoss(margin=0.1, mining="margin_semihard", mining_margin=0.3, cutoff=0.4,
                   nonzero_loss_cutoff=1.2),
    mt.ContrastiveLoss(margin=0.8, mining="distance_weighted", normalize=True, cutoff=0.3,
                       nonzero_loss_cutoff=1.1),
    mt.JointLoss(mt.TripletLoss(mining="distance_weighted", normalize=True), metric_weight=0.3),
    mt.JointLoss(mt.CenterLoss(), metric_weight=0.2, cross_entropy_weight=0.5)])
def test_non_default_configs_round_trip(loss):
    loss_contract.check_config_complete(loss)
    clone = type(loss).from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss) and restored.get_config() == loss.get_config()


def test_sample_weight_for_every_mining():
    labels = np.array([0, 1, 0, 1, 2, 2, 3, 3])
    emb = RNG.normal(size=(8, D)).astype("float32")
    scores = RNG.normal(size=(8, C)).astype("float32")
    out = {"scores": scores, "embedding": emb, "distances": RNG.uniform(size=(8, C))}
    for mining in mt.TRIPLET_MINING:
        check_sample_weight(lambda: mt.TripletLoss(mining=mining), labels, emb)
    for make_loss, y_pred in [
            (mt.CenterLoss, out), (mt.ContrastiveLoss, emb),
            (lambda: mt.ContrastiveLoss(mining="hard"), out),
            (lambda: mt.ContrastiveLoss(mining="distance_weighted", normalize=True), out),
            (mt.TripletConstrainedLoss, scores),
            (lambda: mt.TripletConstrainedLoss(form="hinge", mining="batch_all"), scores),
            (lambda: mt.JointLoss(mt.ContrastiveLoss(), metric_weight=0.5), out)]:
        check_sample_weight(make_loss, labels, y_pred)


# --------------------------------------------------------------------------- HeadModel fits


@pytest.mark.parametrize("head,make_loss", [
    ("center", lambda: mt.JointLoss(mt.CenterLoss(), metric_weight=0.1)),
    ("embedding", lambda: mt.JointLoss(mt.TripletLoss(), metric_weight=1.0))])
def test_head_model_fits_with_integer_labels(head, make_loss):
    # batches of 16 from y = arange % C are 4×4 P×K batches (what PKBatches gives;
    # zoo.datasets is not imported here, the JAX test venv lacks its tqdm dependency)
    loss_contract.check_fits_integer_labels(make_loss, lambda: build_head(head, C), C,
                                            epochs=4)


# --------------------------------------------------------------------------- recipes


@pytest.mark.parametrize("name,head,balanced,kind", [
    ("center", "center", False, mt.CenterLoss), ("contrastive", "embedding", True,
                                                 mt.ContrastiveLoss),
    ("triplet", "embedding", True, mt.TripletLoss),
    ("triplet_constrained", "softmax", True, mt.TripletConstrainedLoss)])
def test_recipes(name, head, balanced, kind):
    recipe = get_recipe(name)
    assert recipe.head == head and recipe.balanced_batches == balanced and head in list_heads()
    loss = recipe.build_loss(C)
    assert isinstance(loss.metric if isinstance(loss, mt.JointLoss) else loss, kind)
    model = make_model(*_tiny(build_head(head, C, **recipe.head_kwargs)))
    model.compile(optimizer="adam", loss=loss)
    x, y = loss_contract.separable_blobs(C, n=16)
    assert np.isfinite(model.train_on_batch(x, y))


def _tiny(head):
    inputs = keras.Input((8,))
    return inputs, head(keras.layers.Dense(D, name="embedding")(inputs))


# --------------------------------------------------------------------------- bad input


def test_errors_name_what_was_expected():
    with pytest.raises(ValueError, match="9 samples but the embedding has 5"):
        mt.TripletLoss()(LABELS, EMB[:5])
    with pytest.raises(ValueError, match=r"\(batch, dim\)"):
        mt.ContrastiveLoss()(LABELS, EMB[None])
    with pytest.raises(ValueError, match=r"\(batch,\) or \(batch, 1\)"):
        mt.TripletLoss()(LABELS[:, None, None], EMB)
    with pytest.raises(ValueError, match="one-hot with 3 classes"):
        mt.TripletConstrainedLoss()(np.eye(3)[[0, 1, 2, 0]], SCORES[:4])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
        mt.CenterLoss()(LABELS + 1, {"distances": SCORES})
    with pytest.raises(ValueError, match="'center' head"):
        mt.CenterLoss()(LABELS, {"scores": SCORES, "embedding": EMB})
    with pytest.raises(ValueError, match="'center' head"):
        mt.CenterLoss()(LABELS, SCORES)
    with pytest.raises(ValueError, match="'embedding' head"):
        mt.TripletLoss()(LABELS, {"scores": SCORES})
    with pytest.raises(ValueError, match="'center' head"):
        mt.JointLoss(mt.CenterLoss())(LABELS, SCORES)
    with pytest.raises(ValueError, match="mining"):
        mt.triplet_loss(LABELS, EMB, mining="hardest")


@pytest.mark.parametrize("make,match", [
    (lambda: mt.TripletLoss(mining="hardest"), "mining"),
    (lambda: mt.TripletLoss(distance="cosine"), "distance"),
    (lambda: mt.TripletLoss(margin=-0.1), "margin"),
    (lambda: mt.TripletLoss(normalize="yes"), "normalize"),
    (lambda: mt.ContrastiveLoss(mining="semi_hard"), "mining"),
    (lambda: mt.ContrastiveLoss(margin=0.0), "margin"),
    (lambda: mt.TripletLoss(mining="margin_medium"), "mining"),
    (lambda: mt.TripletLoss(mining_margin=-0.1), "mining_margin"),
    (lambda: mt.TripletLoss(cutoff=0.0), "cutoff"),
    (lambda: mt.ContrastiveLoss(cutoff=1.4), "nonzero_loss_cutoff must be larger"),
    (lambda: mt.ContrastiveLoss(nonzero_loss_cutoff=float("inf")), "nonzero_loss_cutoff"),
    (lambda: mt.TripletConstrainedLoss(form="soft"), "form"),
    (lambda: mt.TripletConstrainedLoss(features="tanh"), "features"),
    (lambda: mt.TripletConstrainedLoss(features="logits"), "bounded"),
    (lambda: mt.TripletConstrainedLoss(mining="semi_hard"), "mining"),
    (lambda: mt.TripletConstrainedLoss(alpha=float("nan")), "alpha"),
    (lambda: mt.JointLoss("triplet"), "keras.losses.Loss"),
    (lambda: mt.JointLoss(mt.JointLoss(mt.CenterLoss())), "JointLoss"),
    (lambda: mt.JointLoss(mt.CenterLoss(), metric_weight=-1.0), "metric_weight"),
])
def test_bad_options_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()
