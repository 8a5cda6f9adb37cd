"""Tests for losses/intra_inter.py: the intra_inter head (cos θ, centers, learned/running
Mahalanobis metric) and IntraInterLoss against NumPy references written here, hand cases,
the ArcFace / CosFace / softmax limits, the hinge, gradients, positive-definiteness after
training, finite values at the edges, sample weights, HeadModel training and bad input. (The
loss contract — save/load, policies, dtype — is test_loss_contract_all.py's.)"""

import math

import keras
import numpy as np
import pytest
from gradients import value_and_grad
from keras import ops
from loss_contract import check_fits_integer_labels, check_sample_weight

from losses import margin as mg
from losses.head_model import HeadModel
from losses.heads import build_head, make_model
from losses.intra_inter import IntraInterHead, IntraInterLoss, intra_inter_loss
from losses.registry import get_recipe

C = 4
D = 3
RNG = np.random.default_rng(11)
LABELS = np.array([0, 3, 1, 2, 2, 0], dtype="int64")
N = len(LABELS)
COS = RNG.uniform(-0.95, 0.95, size=(N, C)).astype("float32")
DIST = RNG.uniform(0.0, 2.5, size=(N, C)).astype("float32")  # some below δ = 1, some above


# --------------------------------------------------------------------------- NumPy references


def np_unit(v, axis):
    v = np.asarray(v, "float64")
    return v / np.sqrt(np.maximum((v ** 2).sum(axis=axis, keepdims=True), 1e-12))


def np_ce(labels, logits):
    z = np.asarray(logits, "float64")
    z = z - z.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def np_margin_logits(labels, cos, m, s, margin_type):
    """s·cos θ with the target replaced by cos(θ_y + m) (fallback past π) or cos θ_y - m."""
    logits = np.array(cos, dtype="float64")
    rows = np.arange(len(labels))
    cos_y = logits[rows, labels]
    if margin_type == "arc":
        theta = np.arccos(np.clip(cos_y, -1, 1))
        logits[rows, labels] = np.where(theta + m < np.pi, np.cos(theta + m),
                                        cos_y - m * np.sin(m))
    else:
        logits[rows, labels] = cos_y - m
    return s * logits


def np_intra_inter(labels, cos, dist, m=0.5, s=30.0, margin_type="arc", lambda_intra=5.0,
                   lambda_inter=5.0, delta=1.0, exclusion="mean"):
    dist = np.asarray(dist, "float64")
    n, c = dist.shape
    out = np_ce(labels, np_margin_logits(labels, cos, m, s, margin_type))
    for i, y in enumerate(labels):
        others = [dist[i, j] for j in range(c) if j != y]
        if exclusion == "mean":
            inter = sum(max(0.0, delta - d) for d in others) / (c - 1)
        else:
            inter = max(0.0, delta - min(others))
        out[i] += lambda_intra * 0.5 * dist[i, y] + lambda_inter * inter
    return out


def np_learned_metric(factor, eps):
    a = factor @ factor.T + eps * np.eye(len(factor))
    return len(a) * a / np.trace(a)


def np_running_metric(cov, eps, alpha):
    dim = len(cov)
    reg = (1 - alpha) * cov + (alpha * np.trace(cov) / dim + eps) * np.eye(dim)
    inv = np.linalg.inv(reg)
    return dim * inv / np.trace(inv)


def np_distances(e, centers, metric):
    out = np.zeros((len(e), len(centers)))
    for i, x in enumerate(np.asarray(e, "float64")):
        for j, c in enumerate(np.asarray(centers, "float64")):
            out[i, j] = (x - c) @ metric @ (x - c)
    return out


def head_dict(cos=COS, dist=DIST):
    return {"scores": cos, "cos": cos, "distances": dist}


def per_sample(loss, y_true, y_pred):
    loss.reduction = None
    return ops.convert_to_numpy(loss(y_true, y_pred))


def numpy_outputs(head, x, **kwargs):
    return {k: ops.convert_to_numpy(v) for k, v in head(x, **kwargs).items()}


def random_spd(dim, rng):
    a = rng.normal(size=(dim, dim))
    return (a @ a.T + 0.1 * np.eye(dim)).astype("float32")


def built_head(metric, x, rng, **kwargs):
    """A head built on `x`, with random W, centers and a random (non-identity) metric."""
    head = IntraInterHead(C, metric=metric, **kwargs)
    head(x)
    head.center_vectors.assign(rng.normal(size=(C, x.shape[1])).astype("float32"))
    if metric == "learned":
        head.metric_factor.assign(rng.normal(size=(x.shape[1], x.shape[1])).astype("float32"))
    else:
        head.covariance.assign(random_spd(x.shape[1], rng))
    return head


# --------------------------------------------------------------------------- the head


@pytest.mark.parametrize("metric", ["learned", "running"])
@pytest.mark.parametrize("normalize", [True, False])
def test_head_matches_numpy(metric, normalize):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, D)).astype("float32")
    head = built_head(metric, x, rng, normalize_embedding=normalize, epsilon=0.01,
                      shrinkage=0.2)
    out = numpy_outputs(head, x)
    w = ops.convert_to_numpy(head.kernel).astype("float64")
    centers = ops.convert_to_numpy(head.center_vectors).astype("float64")
    if metric == "learned":
        metric_np = np_learned_metric(ops.convert_to_numpy(head.metric_factor), 0.01)
    else:
        metric_np = np_running_metric(ops.convert_to_numpy(head.covariance), 0.01, 0.2)
    e = np_unit(x, 1) if normalize else x

    np.testing.assert_allclose(out["cos"], np_unit(x, 1) @ np_unit(w, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["scores"], out["cos"])
    np.testing.assert_allclose(ops.convert_to_numpy(head.metric_matrix()), metric_np,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["distances"], np_distances(e, centers, metric_np),
                               rtol=1e-4, atol=1e-5)
    assert out["distances"].shape == (5, C) and out["distances"].dtype == np.float32
    np.testing.assert_allclose(np.trace(ops.convert_to_numpy(head.metric_matrix())), D,
                               rtol=1e-5)
    np.testing.assert_array_equal(ops.convert_to_numpy(head.centers()), centers)
    weights = ops.convert_to_numpy(head.class_weights())  # what MarginMonitor reads
    assert weights.shape == (D, C)
    np.testing.assert_allclose(np.linalg.norm(weights, axis=0), 1.0, rtol=1e-6)


@pytest.mark.parametrize("metric", ["learned", "running"])
@pytest.mark.parametrize("normalize", [True, False])
def test_identity_metric_gives_squared_euclidean_distances(metric, normalize):
    # Fresh heads start at L = I / Σ = I, i.e. M = I (both metrics start Euclidean).
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, D)).astype("float32")
    head = IntraInterHead(C, metric=metric, normalize_embedding=normalize)
    head(x)
    centers = rng.normal(size=(C, D)).astype("float32")
    head.center_vectors.assign(centers)
    np.testing.assert_allclose(ops.convert_to_numpy(head.metric_matrix()), np.eye(D),
                               atol=1e-6)
    e = np_unit(x, 1) if normalize else x.astype("float64")
    euclidean = ((e[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(numpy_outputs(head, x)["distances"], euclidean, rtol=1e-5,
                               atol=1e-5)


def test_centers_start_at_the_class_directions():
    head = IntraInterHead(C)
    head.build((None, D))
    w = ops.convert_to_numpy(head.kernel)
    np.testing.assert_allclose(ops.convert_to_numpy(head.centers()), np_unit(w, 0).T,
                               rtol=1e-6, atol=1e-7)
    # With M = I, the distance to a unit-norm center is 2 - 2·cos θ at the start.
    x = np.random.default_rng(8).normal(size=(5, D)).astype("float32")
    out = numpy_outputs(head, x)
    np.testing.assert_allclose(out["distances"], 2.0 - 2.0 * out["cos"], atol=1e-5)
    other = IntraInterHead(C, center_initializer="zeros")
    other.build((None, D))
    np.testing.assert_array_equal(ops.convert_to_numpy(other.centers()), 0.0)


def test_mahalanobis_hand_case():
    # x - c_0 = (1, 2), L = [[1, 0], [1, 1]], ε = 1: L Lᵀ + I = [[2, 1], [1, 3]], trace 5, so
    # M = (2/5)·[[2, 1], [1, 3]]: d_0 = (2/5)·(2·1 + 2·1·2 + 3·4) = 7.2; x at c_1: d_1 = 0
    head = IntraInterHead(2, epsilon=1.0, normalize_embedding=False)
    head.build((None, 2))
    head.metric_factor.assign(np.float32([[1.0, 0.0], [1.0, 1.0]]))
    head.center_vectors.assign(np.float32([[0.0, 0.0], [1.0, 2.0]]))
    got = numpy_outputs(head, np.float32([[1.0, 2.0]]))["distances"]
    np.testing.assert_allclose(got, [[7.2, 0.0]], rtol=1e-6, atol=1e-6)


def test_running_covariance_update_follows_the_predicted_class():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, D)).astype("float32")
    head = IntraInterHead(C, metric="running", momentum=0.9, shrinkage=0.3, epsilon=0.01)
    head(x)
    head.center_vectors.assign(rng.normal(size=(C, D)).astype("float32"))
    centers = ops.convert_to_numpy(head.center_vectors).astype("float64")
    w = ops.convert_to_numpy(head.kernel)
    e = np_unit(x, 1)
    predicted = np.argmax(e @ np_unit(w, 0), axis=1)
    residual = e - centers[predicted]
    expected = 0.9 * np.eye(D) + 0.1 * residual.T @ residual / len(x)

    out = numpy_outputs(head, x, training=True)
    np.testing.assert_allclose(ops.convert_to_numpy(head.covariance), expected, rtol=1e-5,
                               atol=1e-6)
    # this training call already measures with the updated estimate
    metric_np = np_running_metric(expected, 0.01, 0.3)
    np.testing.assert_allclose(out["distances"], np_distances(e, centers, metric_np),
                               rtol=1e-4, atol=1e-5)
    # inference calls read it and leave it alone
    numpy_outputs(head, x)
    numpy_outputs(head, x, training=False)
    np.testing.assert_allclose(ops.convert_to_numpy(head.covariance), expected, rtol=1e-5,
                               atol=1e-6)
    assert not head.covariance.trainable


def test_shrinkage_bounds_the_running_metric_for_a_singular_covariance():
    # A rank-1 Σ (all residuals along one axis) still gives a finite, well-conditioned M.
    head = IntraInterHead(C, metric="running", shrinkage=0.1, epsilon=1e-6)
    head.build((None, D))
    head.covariance.assign(np.diag([1.0, 0.0, 0.0]).astype("float32"))
    eig = np.linalg.eigvalsh(ops.convert_to_numpy(head.metric_matrix()).astype("float64"))
    assert np.all(eig > 0) and eig.max() / eig.min() <= 1 + 0.9 * D / 0.1 + 1e-3


@pytest.mark.parametrize("metric", ["learned", "running"])
def test_metric_stays_positive_definite_after_training(metric):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(48, 6)).astype("float32")
    y = np.arange(48) % C
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    embedding = keras.layers.Dense(D, name="embedding")(inputs)
    model = make_model(inputs, build_head("intra_inter", C, metric=metric)(embedding))
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=IntraInterLoss(lambda_intra=2.0, lambda_inter=2.0))
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    head = model.get_layer("intra_inter")
    state = head.metric_factor if metric == "learned" else head.covariance
    assert not np.allclose(ops.convert_to_numpy(state), np.eye(D), atol=1e-3)  # it moved
    m = ops.convert_to_numpy(head.metric_matrix()).astype("float64")
    np.testing.assert_allclose(m, m.T, atol=1e-5)
    assert np.linalg.eigvalsh(m).min() > 0
    np.testing.assert_allclose(np.trace(m), D, rtol=1e-5)


# --------------------------------------------------------------------------- the loss


@pytest.mark.parametrize("margin_type,m", [("arc", 0.5), ("cos", 0.35)])
@pytest.mark.parametrize("exclusion", ["mean", "nearest"])
@pytest.mark.parametrize("form", ["int", "column", "one_hot"])
def test_loss_matches_numpy(margin_type, m, exclusion, form):
    cos = COS.copy()
    cos[np.arange(N), LABELS] = [-0.99, -0.9, -0.5, 0.0, 0.6, 0.9]  # includes the fallback
    y_true = {"int": LABELS, "column": LABELS[:, None], "one_hot": np.eye(C)[LABELS]}[form]
    kwargs = dict(margin_type=margin_type, lambda_intra=0.7, lambda_inter=1.3, delta=1.2,
                  exclusion=exclusion)
    got = per_sample(IntraInterLoss(margin=m, scale=8.0, **kwargs), y_true, head_dict(cos))
    expected = np_intra_inter(LABELS, cos, DIST, m, 8.0, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    functional = intra_inter_loss(y_true, cos, DIST, m, 8.0, **kwargs)
    np.testing.assert_allclose(ops.convert_to_numpy(functional), expected, rtol=1e-4,
                               atol=1e-4)


def test_default_loss_matches_numpy_defaults():
    got = per_sample(IntraInterLoss(), LABELS, head_dict())
    np.testing.assert_allclose(got, np_intra_inter(LABELS, COS, DIST), rtol=1e-4, atol=1e-4)


def test_hand_case():
    # CosFace, m = 0.1, s = 2, y = 0: logits 2·[0.5, 0, 0.8] -> CE = log(1 + e^-1 + e^0.6)
    # d = [0.4, 0.3, 2.0], δ = 1: intra = ½·0.4; mean hinge = (0.7 + 0)/2; nearest = 0.7
    cos = np.float32([[0.6, 0.0, 0.8]])
    dist = np.float32([[0.4, 0.3, 2.0]])
    ce = math.log(1 + math.exp(-1.0) + math.exp(0.6))
    common = dict(margin=0.1, scale=2.0, margin_type="cos", lambda_intra=2.0, lambda_inter=4.0,
                  delta=1.0)
    mean = intra_inter_loss(np.array([0]), cos, dist, exclusion="mean", **common)
    nearest = intra_inter_loss(np.array([0]), cos, dist, exclusion="nearest", **common)
    np.testing.assert_allclose(ops.convert_to_numpy(mean), [ce + 0.4 + 1.4], rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(nearest), [ce + 0.4 + 2.8], rtol=1e-6)


@pytest.mark.parametrize("exclusion", ["mean", "nearest"])
def test_zero_lambdas_are_arcface_and_cosface(exclusion):
    zero = dict(lambda_intra=0.0, lambda_inter=0.0, exclusion=exclusion)
    arc = per_sample(IntraInterLoss(margin=0.4, scale=12.0, **zero), LABELS, head_dict())
    np.testing.assert_allclose(arc, per_sample(mg.ArcFaceLoss(0.4, 12.0), LABELS, COS),
                               rtol=1e-5, atol=1e-6)
    cos = per_sample(IntraInterLoss(margin=0.2, scale=12.0, margin_type="cos", **zero), LABELS,
                     head_dict())
    np.testing.assert_allclose(cos, per_sample(mg.CosFaceLoss(0.2, 12.0), LABELS, COS),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("margin_type", ["arc", "cos"])
def test_no_margin_no_lambdas_is_softmax_on_scaled_cosine(margin_type):
    loss = IntraInterLoss(margin=0.0, scale=16.0, margin_type=margin_type, lambda_intra=0.0,
                          lambda_inter=0.0)
    keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(LABELS, 16.0 * COS)
    np.testing.assert_allclose(float(loss(LABELS, head_dict())), float(keras_ce), rtol=1e-5)


@pytest.mark.parametrize("exclusion", ["mean", "nearest"])
def test_hinge_is_zero_when_every_other_center_is_beyond_delta(exclusion):
    dist = np.full((N, C), 1.5, "float32")
    dist[np.arange(N), LABELS] = RNG.uniform(0.0, 0.5, size=N)  # own center: anything
    with_inter = IntraInterLoss(lambda_intra=0.3, lambda_inter=10.0, delta=1.4,
                                exclusion=exclusion)
    without = IntraInterLoss(lambda_intra=0.3, lambda_inter=0.0, exclusion=exclusion)
    np.testing.assert_allclose(per_sample(with_inter, LABELS, head_dict(dist=dist)),
                               per_sample(without, LABELS, head_dict(dist=dist)), rtol=1e-6)
    # one other center moved inside δ turns it on, by λ_inter·(δ - d)/(C - 1) or λ_inter·(δ - d)
    dist[0, 1] = 1.0
    diff = (per_sample(with_inter, LABELS, head_dict(dist=dist))
            - per_sample(without, LABELS, head_dict(dist=dist)))
    expected = 10.0 * 0.4 / (C - 1) if exclusion == "mean" else 10.0 * 0.4
    np.testing.assert_allclose(diff, [expected] + [0.0] * (N - 1), rtol=1e-5, atol=1e-6)


def test_gradient_on_distances_is_the_pull_and_the_hinge():
    # d loss/d d_iy = λ_intra/(2B); d loss/d d_ij = -λ_inter·[d_ij < δ]/((C-1)·B) for j ≠ y
    loss = IntraInterLoss(lambda_intra=0.6, lambda_inter=0.9, delta=1.0)
    _, grad = value_and_grad(lambda d: loss(LABELS, {"cos": COS, "distances": d}), DIST)
    one_hot = np.eye(C)[LABELS]
    expected = (one_hot * 0.6 / 2 - (1 - one_hot) * (DIST < 1.0) * 0.9 / (C - 1)) / N
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------- edges: finite everywhere

EDGE_COS = np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.5], [0.0, 1.0, -1.0],
                     [math.cos(math.pi / 4), 0.2, -0.3]], "float32")
EDGE_LABELS = np.array([0, 0, 1, 0])


@pytest.mark.parametrize("margin_type", ["arc", "cos"])
def test_finite_values_and_gradients_at_cos_plus_minus_one(margin_type):
    loss = IntraInterLoss(scale=64.0, margin_type=margin_type)
    dist = np.float32([[0.0, 0.0, 3.0], [1.0, 0.0, 0.5], [2.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    value, grad = value_and_grad(lambda c: loss(EDGE_LABELS, {"cos": c, "distances": dist}),
                                 EDGE_COS)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("metric", ["learned", "running"])
@pytest.mark.parametrize("normalize", [True, False])
def test_zero_embeddings_and_embeddings_at_a_center_are_finite(metric, normalize):
    rng = np.random.default_rng(5)
    head = IntraInterHead(3, metric=metric, normalize_embedding=normalize)
    head.build((None, 2))
    centers = np_unit(rng.normal(size=(3, 2)), 1).astype("float32")
    head.center_vectors.assign(centers)
    loss = IntraInterLoss()

    def fn(x):
        return loss(EDGE_LABELS, head(x))

    zeros = np.zeros((4, 2), "float32")
    at_centers = centers[EDGE_LABELS]  # every embedding exactly at its own class center
    for x in (zeros, at_centers):
        value, grad = value_and_grad(fn, x)
        assert np.isfinite(value) and np.all(np.isfinite(grad))
    d = ops.convert_to_numpy(head(at_centers)["distances"])
    np.testing.assert_allclose(d[np.arange(4), EDGE_LABELS], 0.0, atol=1e-6)


# --------------------------------------------------------------------------- configs, weights
# (save/load and the policies: test_loss_contract_all.py)


def test_sample_weight():
    check_sample_weight(lambda: IntraInterLoss(margin=0.3, scale=16.0, lambda_intra=1.0,
                                               delta=0.8), LABELS, head_dict())
    check_sample_weight(lambda: IntraInterLoss(margin=0.2, margin_type="cos",
                                               exclusion="nearest"), LABELS, head_dict())


@pytest.mark.parametrize("center_initializer", ["class_weights", "zeros"])
def test_head_config_round_trip(center_initializer):
    head = build_head("intra_inter", C, metric="running", normalize_embedding=False,
                      epsilon=1e-2, shrinkage=0.3, momentum=0.5,
                      center_initializer=center_initializer)
    clone = IntraInterHead.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    assert (clone.metric, clone.momentum, clone.normalize_embedding) == ("running", 0.5, False)


# --------------------------------------------------------------------------- training


def test_head_model_fits_integer_labels_with_accuracy():
    check_fits_integer_labels(lambda: IntraInterLoss(margin=0.2, scale=16.0),
                              lambda: build_head("intra_inter", C), C, learning_rate=0.02,
                              epochs=8)


def test_recipe_and_lenet_embed_build_the_head():
    import zoo

    recipe = get_recipe("intra_inter")
    assert recipe.head == "intra_inter"
    loss = recipe.build_loss(10)
    assert isinstance(loss, IntraInterLoss)
    model = zoo.create_model("lenet_embed", num_classes=10, head=recipe.head, embedding_dim=8)
    assert isinstance(model, HeadModel)
    assert set(model.output) == {"scores", "cos", "distances"}
    assert tuple(model.output["distances"].shape) == (None, 10)
    assert isinstance(model.get_layer("intra_inter"), IntraInterHead)
    outputs = build_head(recipe.head, 10, **recipe.head_kwargs)(np.ones((2, 8), "float32"))
    assert np.isfinite(float(loss(np.array([1, 9]), outputs)))


# --------------------------------------------------------------------------- bad input


def test_labels_out_of_range():
    for labels in ([0, 1, 2, 4, 0, 1], [0, -1, 2, 3, 0, 1]):
        with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
            IntraInterLoss()(np.array(labels), head_dict())


def test_class_count_mismatch():
    with pytest.raises(ValueError, match="one-hot with 5 classes but the model outputs 4"):
        IntraInterLoss()(np.eye(5)[[0, 1, 2, 3, 4, 0]], head_dict())
    with pytest.raises(ValueError, match=r"distances must have shape \(batch, 4\) like cos θ, "
                                         r"got shape \(6, 3\)"):
        IntraInterLoss()(LABELS, head_dict(dist=DIST[:, :3]))


def test_wrong_ranks_and_batches():
    with pytest.raises(ValueError, match=r"cos θ must have shape \(batch, num_classes\)"):
        IntraInterLoss()(LABELS, head_dict(cos=COS[:, 0]))
    with pytest.raises(ValueError, match=r"distances must have shape \(batch, 4\)"):
        IntraInterLoss()(LABELS, head_dict(dist=DIST[:, :, None]))
    with pytest.raises(ValueError, match="y_true must be integer labels"):
        IntraInterLoss()(np.zeros((N, 2, 2)), head_dict())
    with pytest.raises(ValueError, match="y_true has 5 samples but y_pred has 6"):
        IntraInterLoss()(LABELS[:5], head_dict())
    with pytest.raises(ValueError, match="cos θ has 6 samples but distances has 5"):
        IntraInterLoss()(LABELS, head_dict(dist=DIST[:5]))
    with pytest.raises(ValueError, match=r"expects embeddings of shape \(batch, dim\)"):
        IntraInterHead(3)(np.ones((2, 3, 4), "float32"))


def test_missing_head_outputs_name_the_head_and_the_keys():
    with pytest.raises(ValueError, match=r"IntraInterLoss needs 'cos', 'distances' from an "
                                         r"'intra_inter' head; got keys \['cos', 'scores'\]"):
        IntraInterLoss()(LABELS, {"scores": COS, "cos": COS})
    with pytest.raises(ValueError, match="IntraInterLoss needs .* single tensor"):
        IntraInterLoss()(LABELS, COS)


@pytest.mark.parametrize("kwargs,message", [
    (dict(margin_type="angular"), "margin_type must be one of 'arc', 'cos'"),
    (dict(exclusion="all"), "exclusion must be one of 'mean', 'nearest'"),
    (dict(margin=2.0), r"margin must be in \[0, π/2\] radians"),
    (dict(margin=-0.1), "margin must be a finite number >= 0"),
    (dict(margin=-0.1, margin_type="cos"), r"margin must be a finite number >= 0, got -0\.1"),
    (dict(scale=0.0), "scale must be a finite number > 0"),
    (dict(lambda_intra=-1.0), "lambda_intra must be a finite number >= 0"),
    (dict(lambda_inter=float("inf")), "lambda_inter must be a finite number >= 0"),
    (dict(delta=-0.5), "delta must be a finite number >= 0"),
])
def test_bad_loss_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IntraInterLoss(**kwargs)


def test_cosface_margin_may_exceed_pi_over_two():
    assert IntraInterLoss(margin=2.0, margin_type="cos").margin == 2.0


@pytest.mark.parametrize("kwargs,message", [
    (dict(metric="mahalanobis"), "metric must be one of 'learned', 'running'"),
    (dict(normalize_embedding="yes"), "normalize_embedding must be True or False"),
    (dict(epsilon=0.0), "epsilon must be a finite number > 0"),
    (dict(shrinkage=1.0), r"shrinkage must be in \[0, 1\), got 1\.0"),
    (dict(momentum=1.5), r"momentum must be in \[0, 1\), got 1\.5"),
    (dict(momentum=-0.1), r"momentum must be in \[0, 1\), got -0\.1"),
])
def test_bad_head_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IntraInterHead(C, **kwargs)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        IntraInterHead(0)
