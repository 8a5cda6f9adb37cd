"""Tests for losses/distances.py and losses/mining.py: brute-force NumPy loops over all pairs and
triplets, a hand-made batch whose triplets are worked out by hand, the semi-hard fallback,
coincident points (exact zeros, finite gradients), and mining under jit (static shapes)."""

import itertools

import keras
import numpy as np
import pytest
from gradients import value_and_grad
from keras import ops

from losses import distances as dist
from losses import mining as mn

RNG = np.random.default_rng(3)
LABELS = np.array([0, 1, 0, 2, 1, 0, 2, 1, 3], dtype="int64")  # class 3 is alone
N = len(LABELS)
EMB = RNG.normal(size=(N, 4)).astype("float32")


def to_numpy(x):
    return ops.convert_to_numpy(x)


def jitted(fn):
    """`fn` compiled with the active backend's jit (XLA on both)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    import jax

    return jax.jit(fn)


# --------------------------------------------------------------------------- NumPy references


def np_sq(a, b):
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return np.array([[np.sum((x - y) ** 2) for y in b] for x in a])


def np_unique_distances(n, seed=0):
    """A symmetric distance matrix with distinct off-diagonal entries and a zero diagonal."""
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.permutation(n * n).reshape(n, n).astype("float64") / 10 + 0.1, 1)
    return (upper + upper.T).astype("float32")


def np_batch_hard(d, labels):
    """Per anchor: (index of farthest positive, index of nearest negative) or None."""
    out = []
    for a in range(len(labels)):
        pos = [p for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        neg = [n for n in range(len(labels)) if labels[n] != labels[a]]
        if not pos or not neg:
            out.append(None)
            continue
        out.append((max(pos, key=lambda p: d[a, p]), min(neg, key=lambda n: d[a, n])))
    return out


def np_semi_hard(d, labels):
    """{(a, p): (negative index, semi-hard found)} by the TF-Addons rule, by loops."""
    out = {}
    for a, p in itertools.permutations(range(len(labels)), 2):
        if labels[a] != labels[p]:
            continue
        neg = [n for n in range(len(labels)) if labels[n] != labels[a]]
        if not neg:
            continue
        beyond = [n for n in neg if d[a, n] > d[a, p]]
        if beyond:
            out[(a, p)] = (min(beyond, key=lambda n: d[a, n]), True)
        else:
            out[(a, p)] = (max(neg, key=lambda n: d[a, n]), False)
    return out


# --------------------------------------------------------------------------- distances


def test_pairwise_squared_distances_match_loops_and_are_exact_on_the_diagonal():
    got = to_numpy(dist.pairwise_squared_distances(EMB))
    np.testing.assert_allclose(got, np_sq(EMB, EMB), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.diag(got), 0.0)
    other = RNG.normal(size=(3, 4)).astype("float32")
    got = to_numpy(dist.pairwise_squared_distances(EMB, other))
    assert got.shape == (N, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, np_sq(EMB, other), rtol=1e-5, atol=1e-5)


def test_coincident_far_points_give_zero_not_negative():
    # ‖a‖² + ‖b‖² - 2ab cancels catastrophically here; the clamp keeps d² >= 0
    far = np.full((3, 4), 1e3, "float32")
    far[2] += 1.0
    got = to_numpy(dist.pairwise_squared_distances(far))
    assert np.all(got >= 0.0)
    np.testing.assert_array_equal(np.diag(got), 0.0)
    np.testing.assert_allclose(got[0, 2], 4.0, rtol=0.05)
    np.testing.assert_array_equal(to_numpy(dist.pairwise_distances(far))[[0, 1], [1, 0]], 0.0)


def test_euclidean_distances_and_safe_sqrt_gradient_at_zero():
    got = to_numpy(dist.pairwise_distances(EMB))
    np.testing.assert_allclose(got, np.sqrt(np_sq(EMB, EMB)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(dist.pairwise_distances(EMB, squared=True)),
                               np_sq(EMB, EMB), rtol=1e-5, atol=1e-5)
    # identical rows and the zero vector: value 0 and finite gradients
    same = np.zeros((3, 2), "float32")
    same[2] = [1.0, 2.0]
    value, grad = value_and_grad(lambda e: ops.sum(dist.pairwise_distances(e)), same)
    np.testing.assert_allclose(value, 4 * np.sqrt(5.0), rtol=1e-5)
    assert np.all(np.isfinite(grad))
    # d/de2 Σ_ij ‖e_i - e_j‖ = 2·Σ_{j} (e2 - e_j)/‖e2 - e_j‖ over the two rows at the origin
    np.testing.assert_allclose(grad[2], 4 * np.array([1.0, 2.0]) / np.sqrt(5.0), rtol=1e-5)
    value, grad = value_and_grad(lambda x: ops.sum(dist.safe_sqrt(x)),
                                 np.array([0.0, 4.0], "float32"))
    np.testing.assert_allclose(value, 2.0)
    np.testing.assert_allclose(grad, [0.0, 0.25])


def test_cosine_similarity_and_normalize():
    got = to_numpy(dist.pairwise_cosine_similarity(EMB))
    unit = EMB / np.linalg.norm(EMB, axis=1, keepdims=True)
    np.testing.assert_allclose(got, unit @ unit.T, rtol=1e-5, atol=1e-6)
    zero = np.zeros((2, 3), "float32")
    zero[1] = [0.0, 3.0, 4.0]
    np.testing.assert_allclose(to_numpy(dist.l2_normalize(zero)), [[0, 0, 0], [0, 0.6, 0.8]],
                               atol=1e-7)
    np.testing.assert_allclose(to_numpy(dist.pairwise_cosine_similarity(zero)),
                               [[0, 0], [0, 1]], atol=1e-6)


def test_mahalanobis_distances_match_the_explicit_metric():
    factor = RNG.normal(size=(4, 4)).astype("float32")
    centers = RNG.normal(size=(3, 4)).astype("float32")
    eps = 0.01
    m = factor.astype("float64") @ factor.T + eps * np.eye(4)
    expected = np.array([[(x - c) @ m @ (x - c) for c in centers.astype("float64")]
                         for x in EMB.astype("float64")])
    got = to_numpy(dist.mahalanobis_squared_distances(EMB, centers, factor, eps))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to_numpy(dist.metric_matrix(factor, eps)), m, rtol=1e-5,
                               atol=1e-5)
    # L = 0 leaves εI: still positive-definite
    got = to_numpy(dist.mahalanobis_squared_distances(EMB, centers, np.zeros((4, 4)), eps))
    np.testing.assert_allclose(got, eps * np_sq(EMB, centers), rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- masks


def test_masks_match_loops():
    pos, neg, tri = (to_numpy(f(LABELS)) for f in
                     (mn.positive_mask, mn.negative_mask, mn.triplet_mask))
    for i, j in itertools.product(range(N), repeat=2):
        assert pos[i, j] == (i != j and LABELS[i] == LABELS[j])
        assert neg[i, j] == (LABELS[i] != LABELS[j])
    expected = np.zeros((N, N, N), bool)
    for a, p, n in itertools.product(range(N), repeat=3):
        expected[a, p, n] = a != p and LABELS[a] == LABELS[p] and LABELS[a] != LABELS[n]
    np.testing.assert_array_equal(tri, expected)
    assert tri.sum() == sum(1 for a, p, n in itertools.product(range(N), repeat=3)
                            if a != p and LABELS[a] == LABELS[p] != LABELS[n])


def test_class_ids_accepts_int_column_and_one_hot_and_rejects_bad_input():
    for form in (LABELS, LABELS[:, None], np.eye(4)[LABELS], LABELS.astype("float32")):
        np.testing.assert_array_equal(to_numpy(mn.class_ids(form)), LABELS)
    with pytest.raises(ValueError, match="non-integer"):
        mn.class_ids(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(batch,\)"):
        mn.class_ids(np.zeros((2, 3, 1)))


# --------------------------------------------------------------------------- batch-hard, semi-hard


@pytest.mark.parametrize("seed", [0, 1])
def test_batch_hard_matches_brute_force(seed):
    d = np_unique_distances(N, seed)
    positive, negative, valid = (to_numpy(v) for v in mn.batch_hard(d, LABELS))
    for a, expected in enumerate(np_batch_hard(d, LABELS)):
        assert valid[a] == (expected is not None)
        if expected is not None:
            assert (positive[a], negative[a]) == expected


@pytest.mark.parametrize("seed", [0, 1])
def test_semi_hard_matches_brute_force(seed):
    d = np_unique_distances(N, seed)
    negative, valid, outside = (to_numpy(v) for v in mn.semi_hard_negatives(d, LABELS))
    expected = np_semi_hard(d, LABELS)
    assert {tuple(ij) for ij in np.argwhere(valid)} == set(expected)
    for (a, p), (n, found) in expected.items():
        assert negative[a, p] == n and outside[a, p] == found, (a, p)


# A hand-made batch on a line: positions and labels; the triplets below are worked out by hand.
LINE = np.array([0.0, 1.0, 3.0, 1.5, 5.0, 10.0], "float32")[:, None]
LINE_LABELS = np.array([0, 0, 0, 1, 1, 2])


def test_mining_picks_the_right_triplets_on_a_hand_made_batch():
    d = to_numpy(dist.pairwise_distances(LINE))
    positive, negative, valid = (to_numpy(v) for v in mn.batch_hard(d, LINE_LABELS))
    # anchor 0 at 0: positives at 1, 3 -> farthest is #2; negatives 1.5, 5, 10 -> nearest #3
    # anchor 3 at 1.5 (class 1): only positive #4; nearest negative #1 (at 1.0, d = 0.5)
    # anchor 4 at 5 (class 1): only positive #3; nearest negative #2 (at 3.0, d = 2)
    # anchor 5 is alone in class 2 -> not valid
    np.testing.assert_array_equal(valid, [1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(positive[:5], [2, 2, 0, 4, 3])
    np.testing.assert_array_equal(negative[:5], [3, 3, 3, 1, 2])

    negative, valid, outside = (to_numpy(v) for v in mn.semi_hard_negatives(d, LINE_LABELS))
    # (0, 1): d_ap = 1; negatives beyond 1 are #3 (1.5), #4, #5 -> #3
    # (0, 2): d_ap = 3; beyond 3: #4 (5), #5 (10) -> #4
    # (2, 1): d_ap = 2; #4 is at exactly 2 (not beyond), so #5 (7)
    # (4, 3): d_ap = 3.5; negatives of #4 at 5, 4, 2, 5 -> beyond 3.5 the nearest is #1 (4)
    expected = {(0, 1): 3, (0, 2): 4, (1, 0): 4, (1, 2): 4, (2, 0): 5, (2, 1): 5,
                (3, 4): 5, (4, 3): 1}
    assert {tuple(ij) for ij in np.argwhere(valid)} == set(expected)
    for (a, p), n in expected.items():
        assert negative[a, p] == n, (a, p)
    assert outside[valid].all()


def test_semi_hard_fallback_takes_the_farthest_negative_when_all_are_harder():
    # anchor 0 at 0, its positive at 10; both negatives (1, 2) are nearer than the positive
    points = np.array([[0.0], [10.0], [1.0], [2.0]], "float32")
    labels = np.array([0, 0, 1, 1])
    d = dist.pairwise_distances(points)
    negative, valid, outside = (to_numpy(v) for v in mn.semi_hard_negatives(d, labels))
    assert valid[0, 1] and not outside[0, 1] and negative[0, 1] == 3  # farthest of {1, 2}
    # (1, 0): anchor at 10, positive at 0 (d 10): negatives at 9 and 8 -> fallback #2 (d 9)
    assert not outside[1, 0] and negative[1, 0] == 2
    # (2, 3): anchor at 1, positive at 2 (d 1): negatives at 1 (#0) and 9 -> nearest beyond #1
    assert outside[2, 3] and negative[2, 3] == 1


def test_contrastive_pairs_all_and_hard():
    d = np_unique_distances(N, 2)
    pos, neg = (to_numpy(v) for v in mn.contrastive_pairs(d, LABELS, "all"))
    np.testing.assert_array_equal(pos, to_numpy(mn.positive_mask(LABELS)))
    np.testing.assert_array_equal(neg, to_numpy(mn.negative_mask(LABELS)))
    pos, neg = (to_numpy(v) for v in mn.contrastive_pairs(d, LABELS, "hard"))
    for a, expected in enumerate(np_batch_hard(d, LABELS)):
        if expected is None:
            assert not pos[a].any() and not neg[a].any()
        else:
            assert np.flatnonzero(pos[a]).tolist() == [expected[0]]
            assert np.flatnonzero(neg[a]).tolist() == [expected[1]]
    with pytest.raises(ValueError, match="'all' or 'hard'"):
        mn.contrastive_pairs(d, LABELS, "semi")


def test_single_class_batch_has_no_valid_anchor():
    labels = np.zeros(4, "int64")
    d = np_unique_distances(4)
    assert not to_numpy(mn.batch_hard(d, labels)[2]).any()
    assert not to_numpy(mn.semi_hard_negatives(d, labels)[1]).any()
    assert not to_numpy(mn.triplet_mask(labels)).any()


def test_mining_runs_under_jit_with_static_shapes():
    def mine(embedding, labels):
        d = dist.pairwise_distances(embedding)
        positive, negative, valid = mn.batch_hard(d, labels)
        semi, semi_valid, _ = mn.semi_hard_negatives(d, labels)
        return positive, negative, valid, semi, semi_valid, mn.triplet_mask(labels)

    eager = [to_numpy(v) for v in mine(EMB, LABELS)]
    compiled = [to_numpy(v) for v in jitted(mine)(EMB, LABELS.astype("int32"))]
    shapes = [(N,), (N,), (N,), (N, N), (N, N), (N, N, N)]
    for e, c, shape in zip(eager, compiled, shapes):
        assert c.shape == shape
        np.testing.assert_array_equal(c, e)


# --------------------------------------------------------------------------- triplet margin miner


def np_triplet_margin(d, labels, margin, type_of_triplets):
    """[a, p, n] selected by PML's TripletMarginMiner rule, by a triple loop."""
    n = len(labels)
    out = np.zeros((n, n, n), bool)
    for a, p, k in itertools.product(range(n), repeat=3):
        if a == p or labels[a] != labels[p] or labels[a] == labels[k]:
            continue
        t = float(d[a, k]) - float(d[a, p])
        out[a, p, k] = {"all": t <= margin, "hard": t <= margin and t <= 0,
                        "semihard": 0 < t <= margin, "easy": t > margin}[type_of_triplets]
    return out


EDGE_LABELS = {"mixed": LABELS, "one_class": np.zeros(N, "int64"),
               "one_per_class": np.arange(N), "pk": np.repeat([0, 1, 2], 3)}


@pytest.mark.parametrize("type_of_triplets", mn.TRIPLET_MARGIN_TYPES)
@pytest.mark.parametrize("labels", list(EDGE_LABELS), ids=list(EDGE_LABELS))
def test_triplet_margin_mask_matches_brute_force(type_of_triplets, labels):
    labels = EDGE_LABELS[labels]
    for seed, margin in [(0, 0.2), (1, 1.5), (2, 0.0)]:
        d = np_unique_distances(N, seed)
        got = to_numpy(mn.triplet_margin_mask(d, labels, margin, type_of_triplets))
        np.testing.assert_array_equal(got, np_triplet_margin(d, labels, margin,
                                                             type_of_triplets))
    if len(set(labels)) in (1, N):  # no positive or no negative: nothing to select
        assert not got.any()


def test_triplet_margin_mask_boundaries_and_partition():
    # exact distances on a line, so that t = d_an - d_ap hits 0 and the margin exactly
    x = LINE[:, 0].astype("float64")
    d = np.abs(x[:, None] - x[None, :]).astype("float32")
    masks = {t: to_numpy(mn.triplet_margin_mask(d, LINE_LABELS, 0.5, t))
             for t in mn.TRIPLET_MARGIN_TYPES}
    for t, mask in masks.items():
        np.testing.assert_array_equal(mask, np_triplet_margin(d, LINE_LABELS, 0.5, t))
    assert masks["hard"][2, 1, 4]        # t = d(3, 5) - d(3, 1) = 2 - 2 = 0: hard
    assert masks["semihard"][0, 1, 3]    # t = 1.5 - 1 = 0.5 = margin: semihard, not easy
    assert not masks["easy"][0, 1, 3]
    # hard and semihard split "all"; "all" and "easy" split the valid triplets
    np.testing.assert_array_equal(masks["hard"] | masks["semihard"], masks["all"])
    assert not (masks["hard"] & masks["semihard"]).any()
    np.testing.assert_array_equal(masks["all"] ^ masks["easy"],
                                  to_numpy(mn.triplet_mask(LINE_LABELS)))
    with pytest.raises(ValueError, match="type_of_triplets"):
        mn.triplet_margin_mask(d, LINE_LABELS, 0.5, "semi_hard")


# --------------------------------------------------------------------------- distance-weighted


def np_distance_weighted(d, labels, dim, cutoff=0.5, nonzero_loss_cutoff=1.4):
    """Normalised q(d)⁻¹ over each anchor's allowed negatives (Wu et al. 2017), by loops."""
    n = len(labels)
    w = np.zeros((n, n))
    for a, k in itertools.product(range(n), repeat=2):
        if labels[a] != labels[k] and d[a, k] < nonzero_loss_cutoff:
            x = max(float(d[a, k]), cutoff)
            # q(x) ∝ x^(dim-2) (1 - x²/4)^((dim-3)/2): the distance density on S^(dim-1)
            w[a, k] = 1.0 / (x ** (dim - 2) * (1 - x * x / 4) ** ((dim - 3) / 2))
    sums = w.sum(axis=1, keepdims=True)
    return np.divide(w, sums, out=np.zeros_like(w), where=sums > 0)


def unit_distances(n, dim, seed):
    e = np.random.default_rng(seed).normal(size=(n, dim))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return np.sqrt(np.maximum(np_sq(e, e), 0)).astype("float32")


@pytest.mark.parametrize("dim", [2, 3, 8, 128])
@pytest.mark.parametrize("labels", list(EDGE_LABELS), ids=list(EDGE_LABELS))
def test_distance_weighted_weights_match_the_formula(dim, labels):
    labels = EDGE_LABELS[labels]
    d = unit_distances(N, dim, dim)
    for cutoff, nonzero in [(0.5, 1.4), (0.2, 2.5)]:  # 2.5 > 2: every negative allowed
        got = to_numpy(mn.distance_weighted_weights(d, labels, dim, cutoff, nonzero))
        expected = np_distance_weighted(d, labels, dim, cutoff, nonzero)
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-6)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got.sum(1), (expected.sum(1) > 0).astype(float), atol=1e-5)


def test_distance_weighted_weights_edge_cases():
    # two antipodal clusters: every negative at d = 2 >= nonzero_loss_cutoff -> zero rows;
    # a negative nearer than the cutoff is clipped to it (same weight as one at the cutoff)
    d = np.array([[0, 0.1, 2.0, 2.0], [0.1, 0, 2.0, 2.0], [2.0, 2.0, 0, 0.1],
                  [2.0, 2.0, 0.1, 0]], "float32")
    labels = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(to_numpy(mn.distance_weighted_weights(d, labels, 4)), 0.0)
    d = np.array([[0, 0.1, 0.3], [0.1, 0, 0.5], [0.3, 0.5, 0]], "float32")
    w = to_numpy(mn.distance_weighted_weights(d, np.array([0, 1, 2]), 5, cutoff=0.5))
    np.testing.assert_allclose(w[0, 1:], [0.5, 0.5], rtol=1e-6)
    # in high dimension near negatives get far more weight than ones near √2
    d = np.array([[0, 0.6, 1.3], [0.6, 0, 1.0], [1.3, 1.0, 0]], "float32")
    w = to_numpy(mn.distance_weighted_weights(d, np.array([0, 1, 2]), 64))
    assert w[0, 1] > 0.99 and np.isclose(w[0].sum(), 1.0)


def test_distance_weighted_negatives_are_seeded_draws_from_the_weights():
    d = unit_distances(N, 4, 7)
    weights = to_numpy(mn.distance_weighted_weights(d, LABELS, 4, 0.5, 1.8))
    index, valid = (to_numpy(v) for v in mn.distance_weighted_negatives(
        d, LABELS, 4, 0.5, 1.8, num_samples=4000, seed=3))
    assert index.shape == (N, 4000) and index.dtype == np.int32
    np.testing.assert_array_equal(valid, weights.sum(1) > 0)
    for a in np.flatnonzero(valid):
        assert np.all(weights[a, index[a]] > 0)  # only allowed negatives are drawn
        frequency = np.bincount(index[a], minlength=N) / 4000
        np.testing.assert_allclose(frequency, weights[a], atol=0.04)
    again, _ = mn.distance_weighted_negatives(d, LABELS, 4, 0.5, 1.8, num_samples=4000, seed=3)
    np.testing.assert_array_equal(to_numpy(again), index)  # an int seed: the same draws
    generator = keras.random.SeedGenerator(1)
    first, _ = mn.distance_weighted_negatives(d, LABELS, 4, 0.5, 1.8, 50, seed=generator)
    second, _ = mn.distance_weighted_negatives(d, LABELS, 4, 0.5, 1.8, 50, seed=generator)
    assert not np.array_equal(to_numpy(first), to_numpy(second))  # a generator: new draws


def test_new_miners_run_under_jit_with_static_shapes():
    def mine(embedding, labels):
        d = dist.pairwise_distances(dist.l2_normalize(embedding))
        return (mn.triplet_margin_mask(d, labels, 0.3, "semihard"),
                mn.distance_weighted_weights(d, labels, 4),
                *mn.distance_weighted_negatives(d, labels, 4, num_samples=2, seed=0))

    eager = [to_numpy(v) for v in mine(EMB, LABELS)]
    compiled = [to_numpy(v) for v in jitted(mine)(EMB, LABELS.astype("int32"))]
    for e, c, shape in zip(eager[:2] + eager[3:], compiled[:2] + compiled[3:],
                           [(N, N, N), (N, N), (N,)]):
        assert c.shape == shape
        np.testing.assert_allclose(c, e, rtol=1e-5, atol=1e-6)
    index, valid, weights = compiled[2], compiled[3], compiled[1]
    assert index.shape == (N, 2) and valid.any()
    for a in np.flatnonzero(valid):  # the compiled draws are allowed negatives too
        assert np.all(weights[a, index[a]] > 0)
