"""losses.proxy (ProxyNCA, Proxy-Anchor, Normalized Softmax, Sub-center ArcFace, SoftTriple,
the margin loss) and its heads against NumPy references written here (explicit loops over
samples, proxies, centers and pairs, the papers' formulas), on random batches and the edge
cases: all-positive and all-negative batches, one sample per class; float16 inputs at large
scales; bad arguments; gradients reaching the proxies, centers and β; save/load."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from test_loss_metric import np_distance_weights
from loss_contract import (check_config_round_trip, check_dtype, check_fits_integer_labels,
                           check_sample_weight, check_serialization)

import losses.proxy  # noqa: F401  (registers the losses, heads and recipes)
from losses.heads import MarginBetaHead, SubCenterCosineHead, build_head, make_model
from losses.metric import JointLoss
from losses.proxy import (MarginLoss, NormalizedSoftmaxLoss, ProxyAnchorLoss, ProxyNCALoss,
                          SoftTripleLoss, SubCenterArcFaceLoss, margin_loss,
                          normalized_softmax_loss, proxy_anchor_loss, proxy_nca_loss,
                          soft_triple_loss, subcenter_arcface_loss)
from losses.registry import get_recipe

TOL = dict(rtol=1e-5, atol=1e-5)


def np_(x):
    return keras.ops.convert_to_numpy(x)


# --------------------------------------------------------------------------- NumPy references


def log_sum_exp(values):
    values = np.asarray(values, np.float64)
    top = values.max()
    return top + np.log(np.sum(np.exp(values - top)))


def proxy_nca_reference(y, cos, scale=1.0, positive_in_denominator=True):
    out = np.zeros(len(y))
    for i in range(len(y)):
        logits = [-scale * (2.0 - 2.0 * cos[i, j]) for j in range(cos.shape[1])]
        denominator = [logits[j] for j in range(cos.shape[1])
                       if positive_in_denominator or j != y[i]]
        out[i] = log_sum_exp(denominator) - logits[y[i]]
    return out


def proxy_anchor_reference(y, cos, alpha=32.0, delta=0.1):
    """Eq. 4 of Kim et al.: one value for the batch."""
    n, num_classes = cos.shape
    positive_proxies = sorted(set(int(v) for v in y))
    positive = 0.0
    for p in positive_proxies:
        positive += np.log1p(sum(np.exp(-alpha * (cos[x, p] - delta))
                                 for x in range(n) if y[x] == p))
    negative = 0.0
    for p in range(num_classes):
        negative += np.log1p(sum(np.exp(alpha * (cos[x, p] + delta))
                                 for x in range(n) if y[x] != p))
    return positive / len(positive_proxies) + negative / num_classes


def normalized_softmax_reference(y, cos, temperature=0.05):
    out = np.zeros(len(y))
    for i in range(len(y)):
        logits = cos[i] / temperature
        out[i] = log_sum_exp(logits) - logits[y[i]]
    return out


def arcface_target_reference(c, m, easy_margin=False):
    theta = math.acos(min(max(c, -1.0), 1.0))
    if easy_margin:
        return math.cos(theta + m) if c > 0 else c
    if theta + m <= math.pi:
        return math.cos(theta + m)
    return c - m * math.sin(m)  # insightface's monotone fallback


def subcenter_arcface_reference(y, center_cos, margin=0.5, scale=30.0, easy_margin=False):
    n, num_classes, _ = center_cos.shape
    out = np.zeros(n)
    for i in range(n):
        logits = []
        for j in range(num_classes):
            nearest = max(center_cos[i, j])
            if j == y[i]:
                nearest = arcface_target_reference(nearest, margin, easy_margin)
            logits.append(scale * nearest)
        out[i] = log_sum_exp(logits) - logits[y[i]]
    return out


def soft_triple_regularizer_reference(centers):
    """Eq. 13 normalised as the authors' code; `centers` (C, K, D) unit vectors."""
    num_classes, k, _ = centers.shape
    if k == 1:
        return 0.0
    total = 0.0
    for c in range(num_classes):
        for t in range(k):
            for s in range(t + 1, k):
                total += math.sqrt(2.0 + 1e-5 - 2.0 * float(centers[c, t] @ centers[c, s]))
    return total / (num_classes * k * (k - 1))


def soft_triple_reference(y, center_cos, regularizer=0.0, lam=20.0, gamma=0.1, delta=0.01,
                          tau=0.2):
    n, num_classes, k = center_cos.shape
    out = np.zeros(n)
    for i in range(n):
        relaxed = []
        for c in range(num_classes):
            weights = np.exp(center_cos[i, c] / gamma)
            weights /= weights.sum()
            relaxed.append(sum(weights[t] * center_cos[i, c, t] for t in range(k)))
        logits = [lam * (relaxed[c] - (delta if c == y[i] else 0.0))
                  for c in range(num_classes)]
        out[i] = log_sum_exp(logits) - logits[y[i]] + tau * regularizer
    return out


def margin_reference(y, e, beta, alpha=0.2, nu=0.0, distance_weighted=False):
    """`beta` (C,): β per class. Per-anchor values whose mean is Σ w ℓ_ij / Σ_non-zero w.

    Distance-weighted: anchor i with a positive and a negative of non-zero weight q_in keeps
    its |P_i| positives (w = 1) and weights negative n by |P_i|·q_in (the expected count of
    n when one negative is drawn per positive pair); other anchors get no pairs."""
    u = np.asarray(e, np.float64)
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    n = len(y)
    q = np_distance_weights(y, e) if distance_weighted else None
    sums, active = np.zeros(n), 0.0
    for i in range(n):
        b = beta[y[i]]
        n_positives = sum(1 for j in range(n) if j != i and y[j] == y[i])
        for j in range(n):
            if j == i:
                continue
            if not distance_weighted:
                w = 1.0
            elif q[i].sum() == 0:
                w = 0.0
            else:
                w = 1.0 if y[i] == y[j] else n_positives * q[i, j]
            d = np.linalg.norm(u[i] - u[j])
            hinge = max(0.0, alpha + d - b) if y[i] == y[j] else max(0.0, alpha - d + b)
            active += w * (hinge > 0)
            sums[i] += w * (hinge + nu * b)
    return sums * n / max(active, 1)


# --------------------------------------------------------------------------- batches

# name -> (labels, number of classes, seed)
BATCHES = {
    "random": (np.array([0, 2, 1, 0, 1, 2, 2, 0, 1, 1, 0, 2]), 4, 0),  # class 3 absent
    "all_positive": (np.zeros(6, int), 3, 1),
    "all_negative": (np.arange(6), 6, 2),                                # one per class
    "one_per_class_and_pairs": (np.array([0, 1, 1, 2, 3, 3, 4]), 5, 3),
}


def random_cos(rng, *shape):
    """Cosines over the whole of [-1, 1] (ArcFace's fallback region included)."""
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


@pytest.mark.parametrize("batch", BATCHES, ids=list(BATCHES))
def test_cosine_head_losses_equal_the_references(batch):
    y, num_classes, seed = BATCHES[batch]
    cos = random_cos(np.random.default_rng(seed), len(y), num_classes)
    for scale in (1.0, 9.0):
        for positive in (True, False):
            np.testing.assert_allclose(np_(proxy_nca_loss(y, cos, scale, positive)),
                                       proxy_nca_reference(y, cos, scale, positive), **TOL)
    for alpha, delta in ((32.0, 0.1), (16.0, 0.3), (5.0, 0.0)):
        found = np_(proxy_anchor_loss(y, cos, alpha, delta))
        expected = proxy_anchor_reference(y, cos, alpha, delta)
        np.testing.assert_allclose(found, np.full(len(y), expected), **TOL)
        # the loss's batch mean is the paper's value
        np.testing.assert_allclose(float(ProxyAnchorLoss(alpha, delta)(y, cos)), expected,
                                   **TOL)
    for temperature in (0.05, 0.5):
        np.testing.assert_allclose(np_(normalized_softmax_loss(y, cos, temperature)),
                                   normalized_softmax_reference(y, cos, temperature), **TOL)
    # the classes give what their functional forms give (one-hot labels too)
    one_hot = np.eye(num_classes)[y]
    np.testing.assert_allclose(float(ProxyNCALoss(scale=4.0)(one_hot, cos)),
                               proxy_nca_reference(y, cos, 4.0).mean(), **TOL)
    np.testing.assert_allclose(float(NormalizedSoftmaxLoss(0.1)(y, {"cos": cos})),
                               normalized_softmax_reference(y, cos, 0.1).mean(), **TOL)


@pytest.mark.parametrize("batch", BATCHES, ids=list(BATCHES))
def test_subcenter_losses_equal_the_references(batch):
    y, num_classes, seed = BATCHES[batch]
    rng = np.random.default_rng(seed)
    for k in (1, 3):
        center_cos = random_cos(rng, len(y), num_classes, k)
        for margin, scale, easy in ((0.5, 30.0, False), (0.3, 64.0, True), (0.0, 10.0, False)):
            np.testing.assert_allclose(
                np_(subcenter_arcface_loss(y, center_cos, margin, scale, easy)),
                subcenter_arcface_reference(y, center_cos, margin, scale, easy), **TOL)
        regularizer = float(rng.uniform(0.1, 1.0))
        column = np.full(len(y), regularizer, np.float32)
        for lam, gamma, delta, tau in ((20.0, 0.1, 0.01, 0.2), (10.0, 1.0, 0.1, 0.0),
                                       (50.0, 0.05, 0.0, 1.0)):
            np.testing.assert_allclose(
                np_(soft_triple_loss(y, center_cos, column, lam, gamma, delta, tau)),
                soft_triple_reference(y, center_cos, regularizer, lam, gamma, delta, tau),
                **TOL)
        np.testing.assert_allclose(np_(soft_triple_loss(y, center_cos, None, tau=0.5)),
                                   soft_triple_reference(y, center_cos, 0.0), **TOL)
        outputs = {"center_cos": center_cos, "center_regularizer": column[:, None]}
        np.testing.assert_allclose(
            float(SoftTripleLoss()(y, outputs)),
            soft_triple_reference(y, center_cos, regularizer).mean(), **TOL)
        np.testing.assert_allclose(
            float(SubCenterArcFaceLoss()(y, outputs)),
            subcenter_arcface_reference(y, center_cos).mean(), **TOL)


@pytest.mark.parametrize("batch", BATCHES, ids=list(BATCHES))
def test_margin_loss_equals_the_reference(batch):
    y, num_classes, seed = BATCHES[batch]
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(len(y), 5)).astype(np.float32)
    beta = rng.uniform(0.6, 1.4, size=num_classes).astype(np.float32)
    rows = np.tile(beta, (len(y), 1))
    for alpha, nu in ((0.2, 0.0), (0.5, 0.1), (0.0, 0.0)):
        np.testing.assert_allclose(np_(margin_loss(y, e, rows, alpha, nu)),
                                   margin_reference(y, e, beta, alpha, nu), **TOL)
    np.testing.assert_allclose(float(MarginLoss(0.3, 0.05)(y, {"embedding": e, "beta": rows})),
                               margin_reference(y, e, beta, 0.3, 0.05).mean(), **TOL)
    for alpha, nu in ((0.2, 0.0), (0.4, 0.1)):
        np.testing.assert_allclose(
            np_(margin_loss(y, e, rows, alpha, nu, mining="distance_weighted")),
            margin_reference(y, e, beta, alpha, nu, distance_weighted=True), **TOL)


def test_edge_values():
    # one sample: no pair for the margin loss (0); Proxy-Anchor still has its proxies
    e = np.ones((1, 3), np.float32)
    assert float(MarginLoss()(np.zeros(1, int), {"embedding": e,
                                                 "beta": np.ones((1, 2), np.float32)})) == 0.0
    cos = np.array([[0.2, -0.4]], np.float32)
    assert float(ProxyAnchorLoss()([1], cos)) == pytest.approx(
        proxy_anchor_reference([1], cos), rel=1e-6)
    # ProxyNCA is cross-entropy on 2s·cos θ; Normalized Softmax is CosFace with m = 0
    from losses.margin import cosface_loss

    cos = random_cos(np.random.default_rng(5), 8, 3)
    y = np.arange(8) % 3
    np.testing.assert_allclose(np_(proxy_nca_loss(y, cos, 3.0)),
                               np_(normalized_softmax_loss(y, cos, 1.0 / 6.0)), **TOL)
    np.testing.assert_allclose(np_(normalized_softmax_loss(y, cos, 0.05)),
                               np_(cosface_loss(y, cos, 0.0, 20.0)), **TOL)


# --------------------------------------------------------------------------- the heads


def test_the_heads_output_what_numpy_computes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    head = SubCenterCosineHead(3, centers=4)
    out = {k: np_(v) for k, v in head(x).items()}
    kernel = np_(head.kernel).astype(np.float64)
    assert kernel.shape == (4, 12)
    centers = np.zeros((3, 4, 4))  # (C, K, D)
    for j in range(3):
        for k in range(4):
            w = kernel[:, j * 4 + k]
            centers[j, k] = w / np.linalg.norm(w)
    expected = np.zeros((5, 3, 4))
    for i in range(5):
        unit = x[i] / np.linalg.norm(x[i])
        for j in range(3):
            for k in range(4):
                expected[i, j, k] = unit @ centers[j, k]
    np.testing.assert_allclose(out["center_cos"], expected, **TOL)
    np.testing.assert_allclose(out["scores"], expected.max(-1), **TOL)
    np.testing.assert_allclose(out["cos"], expected.max(-1), **TOL)
    np.testing.assert_allclose(out["center_regularizer"],
                               np.full(5, soft_triple_regularizer_reference(centers)), **TOL)
    np.testing.assert_allclose(np_(head.center_weights()), np.transpose(centers, (2, 0, 1)),
                               **TOL)
    assert not hasattr(head, "class_weights")  # the margin probes read one direction a class
    one = SubCenterCosineHead(3, centers=1)
    assert np.all(np_(one(x)["center_regularizer"]) == 0.0)

    head = MarginBetaHead(3)
    out = {k: np_(v) for k, v in head(x).items()}
    np.testing.assert_allclose(out["beta"], np.full((5, 3), 1.2), **TOL)
    np.testing.assert_allclose(out["embedding"], x)
    np.testing.assert_allclose(out["scores"], x @ np_(head.kernel) + np_(head.bias), **TOL)
    shared = MarginBetaHead(3, class_specific=False, beta_init=0.7)
    np.testing.assert_allclose(np_(shared(x)["beta"]), np.full((5, 3), 0.7), **TOL)
    assert tuple(shared.beta.shape) == (1,) and tuple(head.beta.shape) == (3,)


def test_heads_are_registered_and_recipes_name_them():
    assert isinstance(build_head("subcenter_cosine", 3, centers=2), SubCenterCosineHead)
    assert isinstance(build_head("margin_beta", 3), MarginBetaHead)
    for name in ("subcenter_cosine", "margin_beta"):
        assert build_head(name, 3).name == name
    for cls in (SubCenterCosineHead, MarginBetaHead, ProxyNCALoss, ProxyAnchorLoss,
                NormalizedSoftmaxLoss, SubCenterArcFaceLoss, SoftTripleLoss, MarginLoss):
        assert keras.saving.get_registered_name(cls) == f"losslab>{cls.__name__}"
    for name, head in (("proxy_nca", "cosine"), ("proxy_anchor", "cosine"),
                       ("normalized_softmax", "cosine"), ("subcenter_arcface",
                                                          "subcenter_cosine"),
                       ("soft_triple", "subcenter_cosine"), ("margin", "margin_beta")):
        recipe = get_recipe(name)
        assert recipe.head == head
        assert isinstance(recipe.build_loss(4), keras.losses.Loss)
    assert get_recipe("soft_triple").head_kwargs == {"centers": 10}
    assert get_recipe("margin").balanced_batches


# --------------------------------------------------------------------------- mixed precision


def test_large_scales_stay_finite_and_close_in_float16():
    rng = np.random.default_rng(1)
    y = np.arange(16) % 4
    cos = random_cos(rng, 16, 4)
    center_cos = random_cos(rng, 16, 4, 3)
    column = np.full((16,), 0.4, np.float32)
    e = rng.normal(size=(16, 8)) * 300.0  # long embeddings: only directions count
    beta = np.full(4, 1.2)
    cos16, center16 = cos.astype(np.float16), center_cos.astype(np.float16)
    cases = [
        (ProxyNCALoss(scale=200.0), cos16, lambda c: proxy_nca_reference(y, c, 200.0).mean()),
        (ProxyAnchorLoss(alpha=128.0), cos16, lambda c: proxy_anchor_reference(y, c, 128.0)),
        (NormalizedSoftmaxLoss(0.005), cos16,
         lambda c: normalized_softmax_reference(y, c, 0.005).mean()),
        (SubCenterArcFaceLoss(scale=128.0), {"center_cos": center16},
         lambda c: subcenter_arcface_reference(y, c["center_cos"], scale=128.0).mean()),
        (SoftTripleLoss(lam=200.0, gamma=0.01),
         {"center_cos": center16, "center_regularizer": column.astype(np.float16)},
         lambda c: soft_triple_reference(y, c["center_cos"], 0.4, 200.0, 0.01).mean()),
        (MarginLoss(nu=0.1), {"embedding": e.astype(np.float16),
                              "beta": np.tile(beta, (16, 1)).astype(np.float16)},
         lambda c: margin_reference(y, c["embedding"], beta, 0.2, 0.1).mean()),
    ]
    for loss, y_pred, reference in cases:
        found = float(loss(y, y_pred))
        assert np.isfinite(found), type(loss).__name__
        as64 = ({k: np.asarray(v, np.float64) for k, v in y_pred.items()}
                if isinstance(y_pred, dict) else np.asarray(y_pred, np.float64))
        assert found == pytest.approx(reference(as64), rel=1e-3), type(loss).__name__
        # and in a float16 loss (Keras casts the result)
        half = type(loss).from_config({**loss.get_config(), "dtype": "float16"})
        assert np.isfinite(np.float32(np_(half(y, y_pred)))), type(loss).__name__


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_are_refused():
    bad = [(ProxyNCALoss, dict(scale=0.0)), (ProxyNCALoss, dict(positive_in_denominator=1)),
           (ProxyAnchorLoss, dict(alpha=-1.0)), (ProxyAnchorLoss, dict(delta=-0.1)),
           (NormalizedSoftmaxLoss, dict(temperature=0.0)),
           (SubCenterArcFaceLoss, dict(margin=2.0)), (SubCenterArcFaceLoss, dict(scale=0.0)),
           (SubCenterArcFaceLoss, dict(easy_margin="no")),
           (SoftTripleLoss, dict(lam=0.0)), (SoftTripleLoss, dict(gamma=-1.0)),
           (SoftTripleLoss, dict(delta=-0.01)), (SoftTripleLoss, dict(tau=float("nan"))),
           (MarginLoss, dict(alpha=-0.2)), (MarginLoss, dict(nu=-1.0)),
           (MarginLoss, dict(mining="hard")),
           (MarginLoss, dict(mining="distance_weighted", cutoff=1.5)),
           (SubCenterCosineHead, dict(num_classes=3, centers=0)),
           (SubCenterCosineHead, dict(num_classes=3, centers=2.0)),
           (SubCenterCosineHead, dict(num_classes=0)),
           (MarginBetaHead, dict(num_classes=3, class_specific="yes")),
           (MarginBetaHead, dict(num_classes=3, beta_init=-1.0))]
    for cls, arguments in bad:
        with pytest.raises(ValueError, match="|".join(arguments)):
            cls(**arguments)


def test_bad_inputs_are_refused():
    y = np.array([0, 1, 2])
    cos = random_cos(np.random.default_rng(0), 3, 3)
    with pytest.raises(ValueError, match="labels must be in"):
        ProxyAnchorLoss()(np.array([0, 1, 3]), cos)
    with pytest.raises(ValueError, match="one-hot with 4 classes"):
        ProxyNCALoss()(np.eye(4)[:3], cos)
    with pytest.raises(ValueError, match="at least 2 classes"):
        ProxyNCALoss(positive_in_denominator=False)(np.zeros(3, int), cos[:, :1])
    with pytest.raises(ValueError, match="center_cos"):
        SubCenterArcFaceLoss()(y, {"center_cos": cos})  # (B, C), not (B, C, K)
    with pytest.raises(ValueError, match="subcenter_cosine"):
        SoftTripleLoss()(y, cos)  # a plain tensor: which head is needed
    with pytest.raises(ValueError, match="center_regularizer"):
        SoftTripleLoss()(y, {"center_cos": cos[:, :, None]})
    with pytest.raises(ValueError, match="margin_beta"):
        MarginLoss()(y, cos)
    with pytest.raises(ValueError, match="embedding"):
        MarginLoss()(y, {"embedding": np.zeros((3, 2, 2), np.float32),
                         "beta": np.ones((3, 3), np.float32)})
    with pytest.raises(ValueError, match="y_true has 2 samples"):
        MarginLoss()(y[:2], {"embedding": np.ones((3, 2), np.float32),
                             "beta": np.ones((3, 3), np.float32)})
    with pytest.raises(ValueError, match="SubCenterCosineHead expects"):
        SubCenterCosineHead(3)(np.zeros((2, 3, 4), np.float32))


def test_a_nan_embedding_gives_a_nan_loss():
    y = np.arange(6) % 3
    cos = random_cos(np.random.default_rng(0), 6, 3)
    cos[0, 0] = np.nan
    assert np.isnan(float(ProxyAnchorLoss()(y, cos)))
    e = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    e[0, 0] = np.nan
    assert np.isnan(float(MarginLoss()(y, {"embedding": e, "beta": np.ones((6, 3), "f4")})))


# --------------------------------------------------------------------------- Keras's contract


CONTRACT = [
    (lambda: ProxyNCALoss(scale=5.0, positive_in_denominator=False), "cosine", {}),
    (lambda: ProxyAnchorLoss(alpha=16.0, delta=0.2), "cosine", {}),
    (lambda: NormalizedSoftmaxLoss(temperature=0.1), "cosine", {}),
    (lambda: SubCenterArcFaceLoss(margin=0.3, scale=16.0, easy_margin=True),
     "subcenter_cosine", {"centers": 2}),
    (lambda: SoftTripleLoss(lam=10.0, gamma=0.2, delta=0.05, tau=0.3), "subcenter_cosine",
     {"centers": 3}),
    (lambda: MarginLoss(alpha=0.3, nu=0.01), "margin_beta", {"class_specific": False}),
]
CONTRACT_IDS = ["proxy_nca", "proxy_anchor", "normalized_softmax", "subcenter_arcface",
                "soft_triple", "margin"]


def head_inputs(head, kwargs, n=8, num_classes=4, seed=1):
    rng = np.random.default_rng(seed)
    out = build_head(head, num_classes, **kwargs)(rng.normal(size=(n, 4)).astype(np.float32))
    if isinstance(out, dict):
        return np.arange(n) % num_classes, {k: np_(v) for k, v in out.items()}
    return np.arange(n) % num_classes, np_(out)


@pytest.mark.parametrize("make_loss, head, kwargs", CONTRACT, ids=CONTRACT_IDS)
def test_config_sample_weight_and_dtype(make_loss, head, kwargs):
    loss = make_loss()
    check_config_round_trip(loss)
    y, y_pred = head_inputs(head, kwargs)
    check_sample_weight(make_loss, y, y_pred)
    check_dtype(loss, y, y_pred)


def test_proxy_anchor_sample_weight_scales_the_batch_value():
    y, cos = head_inputs("cosine", {})
    value = proxy_anchor_reference(y, cos.astype(np.float64))
    weights = np.linspace(0.0, 2.0, len(y)).astype(np.float32)
    assert float(ProxyAnchorLoss()(y, cos, sample_weight=weights)) == pytest.approx(
        value * weights.mean(), rel=1e-5)


# --------------------------------------------------------------------------- training


def _model(head, kwargs, num_classes=4, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    embedding = keras.layers.Dense(5, name="embedding")(inputs)
    return make_model(inputs, build_head(head, num_classes, **kwargs)(embedding))


TRAINING = [
    (ProxyNCALoss, "cosine", {}, ["kernel"]),
    (ProxyAnchorLoss, "cosine", {}, ["kernel"]),
    (NormalizedSoftmaxLoss, "cosine", {}, ["kernel"]),
    (SubCenterArcFaceLoss, "subcenter_cosine", {"centers": 3}, ["kernel"]),
    (SoftTripleLoss, "subcenter_cosine", {"centers": 10}, ["kernel"]),
    (lambda: JointLoss(MarginLoss(), metric_weight=1.0), "margin_beta", {},
     ["kernel", "bias", "beta"]),
    (MarginLoss, "margin_beta", {"class_specific": False}, ["beta"]),
]


@pytest.mark.filterwarnings("ignore:Gradients do not exist")  # MarginLoss alone: no CE on W
@pytest.mark.parametrize("make_loss, head, kwargs, moved", TRAINING,
                         ids=["proxy_nca", "proxy_anchor", "normalized_softmax",
                              "subcenter_arcface", "soft_triple", "joint_margin", "margin"])
@pytest.mark.parametrize("labels", [np.arange(8) % 4, np.zeros(8, int), np.arange(4)],
                         ids=["balanced", "all_positive", "one_per_class"])
def test_a_training_step_moves_the_head_and_stays_finite(make_loss, head, kwargs, moved,
                                                         labels):
    model = _model(head, kwargs)
    layer = model.layers[-1]
    before = {w.path: np_(w).copy() for w in layer.weights}
    x = np.random.default_rng(0).normal(size=(len(labels), 6)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=make_loss())
    loss = model.train_on_batch(x, labels)
    assert np.isfinite(loss)
    for weight in model.weights:
        assert np.all(np.isfinite(np_(weight))), weight.path
    changed = {w.path.split("/")[-1] for w in layer.weights
               if not np.allclose(np_(w), before[w.path])}
    assert set(moved) <= changed, (changed, moved)


def test_the_soft_triple_regularizer_moves_the_centers_apart():
    """τ·R alone (λ tiny, so the softmax term is flat): minimising it pulls the centers of a
    class together (the paper's way to merge redundant centers), so R falls."""
    model = _model("subcenter_cosine", {"centers": 4})
    head = model.layers[-1]
    before = float(np_(head.center_regularizer()))
    model.compile(optimizer=keras.optimizers.SGD(0.5),
                  loss=SoftTripleLoss(lam=1e-6, tau=1.0))
    x = np.random.default_rng(0).normal(size=(8, 6)).astype(np.float32)
    for _ in range(3):
        model.train_on_batch(x, np.arange(8) % 4)
    assert float(np_(head.center_regularizer())) < before


@pytest.mark.filterwarnings("ignore:Gradients do not exist")  # MarginLoss alone: no CE on W
def test_a_class_specific_beta_moves_only_for_the_classes_in_the_batch():
    model = _model("margin_beta", {})
    head = model.layers[-1]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=MarginLoss(nu=0.5))
    x = np.random.default_rng(0).normal(size=(6, 6)).astype(np.float32)
    model.train_on_batch(x, np.array([0, 0, 1, 1, 2, 2]))
    beta = np_(head.beta)
    assert np.all(beta[:3] != np.float32(1.2)) and beta[3] == np.float32(1.2)


@pytest.mark.filterwarnings("ignore:Gradients do not exist")
@pytest.mark.parametrize("make_loss, head, kwargs", [
    (lambda: ProxyNCALoss(scale=9.0), "cosine", {}),
    (ProxyAnchorLoss, "cosine", {}),
    (NormalizedSoftmaxLoss, "cosine", {}),
    (SubCenterArcFaceLoss, "subcenter_cosine", {"centers": 3}),
    (SoftTripleLoss, "subcenter_cosine", {"centers": 10}),
    (lambda: JointLoss(MarginLoss()), "margin_beta", {}),
], ids=["proxy_nca", "proxy_anchor", "normalized_softmax", "subcenter_arcface", "soft_triple",
        "joint_margin"])
def test_fit_on_integer_labels_reaches_high_accuracy(make_loss, head, kwargs):
    """`fit(x, y)` with the head: the loss falls, `accuracy` (on the scores) reaches 0.9,
    and `predict` gives the scores."""
    check_fits_integer_labels(make_loss, lambda: build_head(head, 4, **kwargs), 4)


# --------------------------------------------------------------------------- save and load


SAVED = [
    (lambda: SubCenterArcFaceLoss(margin=0.3), "subcenter_cosine", {"centers": 3}),
    (lambda: SoftTripleLoss(tau=0.5), "subcenter_cosine", {"centers": 5}),
    (lambda: JointLoss(MarginLoss(nu=0.01), metric_weight=0.5), "margin_beta",
     {"class_specific": True, "beta_init": 1.0}),
    (lambda: ProxyAnchorLoss(alpha=16.0), "cosine", {}),
]


@pytest.mark.filterwarnings("ignore:Gradients do not exist")
@pytest.mark.parametrize("make_loss, head, kwargs", SAVED,
                         ids=["subcenter_arcface", "soft_triple", "margin", "proxy_anchor"])
def test_save_and_load_in_safe_mode_give_the_same_model(make_loss, head, kwargs, tmp_path):
    check_serialization(make_loss, lambda: build_head(head, 4, **kwargs), 4, tmp_path)
    model = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    layer = model.layers[-1]
    assert layer.get_config()["name"] == head
    for key, value in kwargs.items():
        assert layer.get_config()[key] == value
    x = np.random.default_rng(3).normal(size=(5, 8)).astype(np.float32)
    again = tmp_path / "again.keras"
    model.save(again)
    restored = keras.saving.load_model(again, safe_mode=True)
    for a, b in zip(keras.tree.flatten(model(x)), keras.tree.flatten(restored(x))):
        np.testing.assert_array_equal(np_(a), np_(b))
    assert model.predict(x, verbose=0).shape == (5, 4)
