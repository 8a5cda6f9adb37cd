"""Tests for losses/margin.py and the cosine/sphere/large-margin heads: NumPy references written
here, Keras cross-entropy as the m = 0 / m = 1 limit, hand cases, ψ's shape, finite values and
gradients at the edges, sample weights, recipes and bad input. (The loss contract — save/load,
policies, dtype — is test_loss_contract_all.py's.)"""

import math

import keras
import numpy as np
import pytest
from keras import ops
from loss_contract import check_sample_weight

from losses import margin as mg
from losses.heads import CosineHead, LargeMarginHead, SphereHead, build_head
from losses.registry import get_recipe

C = 4
RNG = np.random.default_rng(7)
LABELS = np.array([0, 3, 1, 2, 2, 0], dtype="int64")
N = len(LABELS)
COS = RNG.uniform(-0.95, 0.95, size=(N, C)).astype("float32")
NORM = RNG.uniform(0.5, 3.0, size=(N, C)).astype("float32")
X_NORM = RNG.uniform(0.5, 3.0, size=(N,)).astype("float32")


# --------------------------------------------------------------------------- NumPy references


def np_log_softmax(z):
    z = np.asarray(z, dtype="float64")
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def np_ce(labels, logits):
    return -np_log_softmax(logits)[np.arange(len(labels)), labels]


def np_cosface(labels, cos, m, s):
    logits = np.array(cos, dtype="float64")
    logits[np.arange(len(labels)), labels] -= m
    return np_ce(labels, s * logits)


def np_arcface_target(cos_y, m, easy_margin=False):
    """cos(θ + m) from θ itself; insightface's fallback where θ + m > π."""
    theta = np.arccos(np.clip(np.asarray(cos_y, "float64"), -1, 1))
    out = np.cos(theta + m)
    if easy_margin:
        return np.where(cos_y > 0, out, cos_y)
    return np.where(theta + m < np.pi, out, cos_y - m * np.sin(m))


def np_arcface(labels, cos, m, s, easy_margin=False):
    logits = np.array(cos, dtype="float64")
    rows = np.arange(len(labels))
    logits[rows, labels] = np_arcface_target(logits[rows, labels], m, easy_margin)
    return np_ce(labels, s * logits)


def np_psi(theta, m):
    """(-1)^k cos(mθ) - 2k with k the interval [kπ/m, (k+1)π/m] that holds θ."""
    theta = np.asarray(theta, "float64")
    k = np.minimum(np.floor(theta * m / np.pi), m - 1)
    return (-1.0) ** k * np.cos(m * theta) - 2 * k


def np_large_margin(labels, cos, norm, m, lam):
    cos = np.asarray(cos, "float64")
    norm = np.broadcast_to(np.asarray(norm, "float64"), cos.shape)
    rows = np.arange(len(labels))
    logits = norm * cos
    cos_y, norm_y = cos[rows, labels], norm[rows, labels]
    psi = np_psi(np.arccos(cos_y), m)
    logits[rows, labels] = (lam * norm_y * cos_y + norm_y * psi) / (1 + lam)
    return np_ce(labels, logits)


def np_lambda(step, base, gamma, power, lambda_min):
    return np.maximum(lambda_min, base * (1.0 + gamma * np.asarray(step, "float64")) ** -power)


def np_unit(v, axis):
    v = np.asarray(v, "float64")
    return v / np.sqrt(np.maximum((v ** 2).sum(axis=axis, keepdims=True), 1e-12))


def label_forms(labels, num_classes=C):
    return {"int": labels, "column": labels[:, None], "one_hot": np.eye(num_classes)[labels]}


def per_sample(loss, y_true, y_pred):
    loss.reduction = None
    return ops.convert_to_numpy(loss(y_true, y_pred))


def gradient(fn, x):
    """d sum(fn(x)) / dx on the active backend."""
    x = np.asarray(x, "float32")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(fn(x))
        return tape.gradient(y, x).numpy()
    import jax

    return np.asarray(jax.grad(lambda v: fn(v).sum())(x))


def sphere_dict(cos=COS, x_norm=X_NORM, step=0.0):
    return {"scores": cos, "cos": cos, "x_norm": x_norm,
            "step": np.full(len(cos), step, "float32")}


def large_margin_dict(cos=COS, norm=NORM, step=0.0):
    return {"scores": norm * cos, "cos": cos, "norm": norm,
            "step": np.full(len(cos), step, "float32")}


FIXED = {"lambda_gamma": 0.0}  # fixed λ = max(lambda_min, lambda_base)


# --------------------------------------------------------------------------- heads


def test_cosine_head_matches_numpy_and_normalises_weights():
    x = RNG.normal(size=(5, 3)).astype("float32")
    head = CosineHead(C)
    cos = ops.convert_to_numpy(head(x))
    w = ops.convert_to_numpy(head.kernel)
    np.testing.assert_allclose(cos, np_unit(x, 1) @ np_unit(w, 0), rtol=1e-5, atol=1e-6)
    assert cos.dtype == np.float32 and cos.shape == (5, C)
    weights = ops.convert_to_numpy(head.class_weights())
    assert weights.shape == (3, C)
    np.testing.assert_allclose(np.linalg.norm(weights, axis=0), 1.0, rtol=1e-6)


def test_large_margin_and_sphere_heads_output_what_their_losses_read():
    x = RNG.normal(size=(5, 3)).astype("float32")
    lm = LargeMarginHead(C)
    out = {k: ops.convert_to_numpy(v) for k, v in lm(x).items()}
    w = ops.convert_to_numpy(lm.kernel).astype("float64")
    np.testing.assert_allclose(out["scores"], x @ w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["cos"], np_unit(x, 1) @ np_unit(w, 0), rtol=1e-5, atol=1e-6)
    norms = np.linalg.norm(x, axis=1)[:, None] * np.linalg.norm(w, axis=0)[None, :]
    np.testing.assert_allclose(out["norm"], norms, rtol=1e-5)
    np.testing.assert_allclose(out["norm"] * out["cos"], out["scores"], rtol=1e-4, atol=1e-5)

    sphere = SphereHead(C)
    out = {k: ops.convert_to_numpy(v) for k, v in sphere(x).items()}
    w = ops.convert_to_numpy(sphere.kernel)
    np.testing.assert_allclose(out["cos"], np_unit(x, 1) @ np_unit(w, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["scores"], out["cos"])
    np.testing.assert_allclose(out["x_norm"], np.linalg.norm(x, axis=1), rtol=1e-6)
    assert out["step"].shape == (5,)


def test_step_counter_advances_only_in_training():
    head = SphereHead(C)
    x = np.ones((3, 2), "float32")
    head(x, training=False)
    assert float(ops.convert_to_numpy(head.step)) == 0.0
    steps = [ops.convert_to_numpy(head(x, training=True)["step"]) for _ in range(3)]
    np.testing.assert_array_equal([s[0] for s in steps], [1.0, 2.0, 3.0])  # counts this step
    np.testing.assert_array_equal(ops.convert_to_numpy(head(x)["step"]), [3.0, 3.0, 3.0])
    assert float(ops.convert_to_numpy(head.step)) == 3.0


@pytest.mark.parametrize("name", ["cosine", "sphere", "large_margin"])
def test_heads_config_round_trip_and_registry(name):
    head = build_head(name, C, kernel_initializer="he_normal")
    clone = type(head).from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    assert clone.num_classes == C


# --------------------------------------------------------------------------- CosFace


@pytest.mark.parametrize("form", ["int", "column", "one_hot"])
@pytest.mark.parametrize("m,s", [(0.35, 30.0), (0.1, 4.0)])
def test_cosface_matches_numpy(form, m, s):
    got = per_sample(mg.CosFaceLoss(margin=m, scale=s), label_forms(LABELS)[form], COS)
    np.testing.assert_allclose(got, np_cosface(LABELS, COS, m, s), rtol=1e-5, atol=1e-5)


def test_cosface_margin0_is_cross_entropy_on_scaled_cosine():
    got = mg.CosFaceLoss(margin=0.0, scale=16.0)(LABELS, COS)
    keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(LABELS, 16.0 * COS)
    np.testing.assert_allclose(float(got), float(keras_ce), rtol=1e-5)


def test_cosface_hand_case():
    # logits = 2·([0.5, 0.2] - [0.1, 0]) = [0.8, 0.4]; -log(e^0.8 / (e^0.8 + e^0.4))
    got = mg.cosface_loss(np.array([0]), np.array([[0.5, 0.2]], "float32"), margin=0.1, scale=2.0)
    np.testing.assert_allclose(ops.convert_to_numpy(got), [math.log(1 + math.exp(-0.4))],
                               rtol=1e-6)


def test_cosface_reads_cos_from_a_head_dict():
    direct = per_sample(mg.CosFaceLoss(), LABELS, COS)
    from_dict = per_sample(mg.CosFaceLoss(), LABELS, large_margin_dict())
    np.testing.assert_allclose(from_dict, direct, rtol=1e-6)


# --------------------------------------------------------------------------- ArcFace


@pytest.mark.parametrize("form", ["int", "one_hot"])
@pytest.mark.parametrize("easy_margin", [False, True])
def test_arcface_matches_numpy(form, easy_margin):
    # Include target cosines below cos(π - m), where the fallback applies.
    cos = COS.copy()
    cos[np.arange(N), LABELS] = [-0.99, -0.9, -0.5, 0.0, 0.6, 0.9]
    got = per_sample(mg.ArcFaceLoss(margin=0.5, scale=8.0, easy_margin=easy_margin),
                     label_forms(LABELS)[form], cos)
    np.testing.assert_allclose(got, np_arcface(LABELS, cos, 0.5, 8.0, easy_margin),
                               rtol=1e-4, atol=1e-4)


def test_arcface_margin0_is_cross_entropy_on_scaled_cosine():
    got = mg.ArcFaceLoss(margin=0.0, scale=16.0)(LABELS, COS)
    keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(LABELS, 16.0 * COS)
    np.testing.assert_allclose(float(got), float(keras_ce), rtol=1e-5)


def test_arcface_hand_case():
    # cos θ_y = 0 -> θ_y = π/2; m = π/6 -> cos(2π/3) = -0.5; logits = 3·[-0.5, 0.5]
    got = mg.arcface_loss(np.array([0]), np.array([[0.0, 0.5]], "float32"), margin=math.pi / 6,
                          scale=3.0)
    np.testing.assert_allclose(ops.convert_to_numpy(got), [math.log(1 + math.exp(3.0))],
                               rtol=1e-5)


@pytest.mark.parametrize("m", [0.2, 0.5, 1.0, math.pi / 2])
def test_arcface_target_is_decreasing_in_theta(m):
    theta = np.linspace(0.0, np.pi, 2001)
    target = ops.convert_to_numpy(mg.arcface_target(np.cos(theta).astype("float32"), m))
    assert np.all(np.diff(target) < 1e-6)  # non-increasing (up to float32 rounding)
    # At θ = π - m, cos(θ + m) = -1 gives way to cos θ - m·sin m = -(cos m + m·sin m) <= -1:
    # the fallback steps down (never up), so the target stays monotone.
    left = ops.convert_to_numpy(mg.arcface_target(np.float32([math.cos(math.pi - m) + 1e-4]), m))
    right = ops.convert_to_numpy(mg.arcface_target(np.float32([math.cos(math.pi - m) - 1e-4]), m))
    np.testing.assert_allclose(left, [-1.0], atol=0.02)
    np.testing.assert_allclose(right, [-(math.cos(m) + m * math.sin(m))], atol=1e-3)


# ------------------------------------------------------------------------ ψ, L-Softmax, SphereFace


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_psi_matches_numpy_is_continuous_and_decreasing(m):
    theta = np.linspace(0.0, np.pi, 3001)
    psi = ops.convert_to_numpy(mg.large_margin_psi(np.cos(theta).astype("float32"), m))
    np.testing.assert_allclose(psi, np_psi(theta, m), atol=1e-5)
    assert np.all(np.diff(psi) <= 0.0)
    # |dψ/dθ| <= m, so no step may exceed m·Δθ: no jump at the interval ends kπ/m
    assert np.max(np.abs(np.diff(psi))) <= 1.01 * m * (theta[1] - theta[0])
    np.testing.assert_allclose([psi[0], psi[-1]], [1.0, 1.0 - 2.0 * m], atol=1e-5)
    edges = np.cos(np.arange(1, m) * np.pi / m)
    for side in (-1e-6, 1e-6):  # both sides of every kπ/m agree
        near = ops.convert_to_numpy(mg.large_margin_psi((edges + side).astype("float32"), m))
        np.testing.assert_allclose(near, np_psi(np.arange(1, m) * np.pi / m, m), atol=1e-3)


def test_psi_with_m1_is_cosine():
    np.testing.assert_allclose(ops.convert_to_numpy(mg.large_margin_psi(COS, 1)), COS)


@pytest.mark.parametrize("form", ["int", "column", "one_hot"])
@pytest.mark.parametrize("m,lam", [(2, 0.0), (3, 0.0), (4, 0.0), (4, 2.5)])
def test_large_margin_softmax_matches_numpy(form, m, lam):
    loss = mg.LargeMarginSoftmaxLoss(margin=m, lambda_base=lam, **FIXED)
    got = per_sample(loss, label_forms(LABELS)[form], large_margin_dict())
    np.testing.assert_allclose(got, np_large_margin(LABELS, COS, NORM, m, lam), rtol=1e-4,
                               atol=1e-4)


def test_large_margin_softmax_m1_is_cross_entropy_on_plain_logits():
    got = mg.LargeMarginSoftmaxLoss(margin=1)(LABELS, large_margin_dict(step=123.0))
    keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(LABELS, NORM * COS)
    np.testing.assert_allclose(float(got), float(keras_ce), rtol=1e-5)
    np.testing.assert_allclose(float(got), np_ce(LABELS, NORM * COS).mean(), rtol=1e-5)


def test_large_margin_hand_case():
    # m = 2, cos θ_y = 0 (θ = π/2, k = 1): ψ = -cos(π) - 2 = -1; ‖W_y‖‖x‖ = 2 -> f_y = -2;
    # other logit 2·0.5 = 1. loss = log(1 + e^{1 - (-2)}).
    got = mg.large_margin_softmax_loss(np.array([0]), np.array([[0.0, 0.5]], "float32"),
                                       np.array([[2.0, 2.0]], "float32"), margin=2)
    np.testing.assert_allclose(ops.convert_to_numpy(got), [math.log(1 + math.exp(3.0))],
                               rtol=1e-5)


@pytest.mark.parametrize("m,lam", [(1, 0.0), (4, 0.0), (4, 5.0)])
def test_sphereface_matches_numpy(m, lam):
    loss = mg.SphereFaceLoss(margin=m, lambda_base=lam, lambda_min=0.0, **FIXED)
    got = per_sample(loss, LABELS, sphere_dict())
    np.testing.assert_allclose(got, np_large_margin(LABELS, COS, X_NORM[:, None], m, lam),
                               rtol=1e-4, atol=1e-4)


def test_lambda_schedule_matches_numpy_and_drives_the_loss():
    steps = np.array([0, 1, 10, 100, 1000, 10**5], "float32")
    got = ops.convert_to_numpy(mg.annealed_lambda(steps, 1000.0, 0.12, 1.0, 5.0))
    np.testing.assert_allclose(got, np_lambda(steps, 1000.0, 0.12, 1.0, 5.0), rtol=1e-5)
    # the annealed SphereFace loss at step t equals the fixed-λ loss with λ = schedule(t)
    for step in (0.0, 50.0, 5000.0):
        lam = float(np_lambda(step, 1000.0, 0.12, 1.0, 5.0))
        annealed = per_sample(mg.SphereFaceLoss(), LABELS, sphere_dict(step=step))
        np.testing.assert_allclose(annealed,
                                   np_large_margin(LABELS, COS, X_NORM[:, None], 4, lam),
                                   rtol=1e-4, atol=1e-4)
    # L-Softmax defaults: the authors' MNIST schedule
    lam = float(np_lambda(20000.0, 1000.0, 2.5e-5, 35.0, 0.0))
    got = per_sample(mg.LargeMarginSoftmaxLoss(), LABELS, large_margin_dict(step=20000.0))
    np.testing.assert_allclose(got, np_large_margin(LABELS, COS, NORM, 4, lam), rtol=1e-4,
                               atol=1e-4)


def test_fixed_lambda_needs_no_step():
    loss = mg.SphereFaceLoss(lambda_base=0.0, lambda_min=0.0, lambda_gamma=0.0)
    assert loss.head_keys == ("cos", "x_norm")
    value = loss(LABELS, {"cos": COS, "x_norm": X_NORM})
    assert np.isfinite(float(value))


# ------------------------------------------------------------------------- edges: finite everywhere


EDGE_COS = np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.5], [0.0, 1.0, -1.0],
                     [math.cos(math.pi / 4), 0.2, -0.3]], "float32")
EDGE_LABELS = np.array([0, 0, 1, 0])
EDGE_LOSSES = {
    "cosface": lambda c: mg.cosface_loss(EDGE_LABELS, c, 0.35, 30.0),
    "arcface": lambda c: mg.arcface_loss(EDGE_LABELS, c, 0.5, 64.0),
    "arcface_easy": lambda c: mg.arcface_loss(EDGE_LABELS, c, 0.5, 64.0, easy_margin=True),
    "lsoftmax": lambda c: mg.large_margin_softmax_loss(EDGE_LABELS, c, ops.ones_like(c) * 3, 4),
    "sphereface": lambda c: mg.sphereface_loss(EDGE_LABELS, c, ops.ones_like(c[:, 0]) * 3, 4),
}


@pytest.mark.parametrize("name", sorted(EDGE_LOSSES))
def test_finite_values_and_gradients_at_cos_plus_minus_one(name):
    fn = EDGE_LOSSES[name]
    assert np.all(np.isfinite(ops.convert_to_numpy(fn(EDGE_COS))))
    assert np.all(np.isfinite(gradient(fn, EDGE_COS)))


@pytest.mark.parametrize("scale", [1e3, 1e5])
def test_huge_scales_stay_finite(scale):
    for fn in (lambda c: mg.cosface_loss(EDGE_LABELS, c, 0.35, scale),
               lambda c: mg.arcface_loss(EDGE_LABELS, c, 0.5, scale),
               lambda c: mg.large_margin_softmax_loss(EDGE_LABELS, c, ops.ones_like(c) * scale,
                                                      4)):
        assert np.all(np.isfinite(ops.convert_to_numpy(fn(EDGE_COS))))
        assert np.all(np.isfinite(gradient(fn, EDGE_COS)))


@pytest.mark.parametrize("head_name,make_loss", [
    ("cosine", lambda: mg.ArcFaceLoss()),
    ("cosine", lambda: mg.CosFaceLoss()),
    ("sphere", lambda: mg.SphereFaceLoss()),
    ("large_margin", lambda: mg.LargeMarginSoftmaxLoss(lambda_gamma=0.0, lambda_base=0.0)),
])
def test_zero_embeddings_give_finite_loss_and_gradients(head_name, make_loss):
    head = build_head(head_name, 3)
    head.build((None, 2))
    loss = make_loss()

    def fn(x):
        return loss(EDGE_LABELS, head(x))

    zeros = np.zeros((4, 2), "float32")
    assert np.isfinite(float(ops.convert_to_numpy(fn(zeros))))
    assert np.all(np.isfinite(gradient(fn, zeros)))


# --------------------------------------------------------------------------- sample weights


def test_sample_weight_with_annealed_lambda_and_head_dicts():
    # λ read from the head's step counter (10 steps in), cos θ from a dict or a tensor
    check_sample_weight(lambda: mg.CosFaceLoss(margin=0.2, scale=16.0), LABELS,
                        large_margin_dict())
    check_sample_weight(lambda: mg.ArcFaceLoss(margin=0.3, scale=16.0), LABELS, COS)
    check_sample_weight(lambda: mg.LargeMarginSoftmaxLoss(margin=3, lambda_base=100.0), LABELS,
                        large_margin_dict(step=10.0))
    check_sample_weight(lambda: mg.SphereFaceLoss(margin=2, lambda_min=1.0), LABELS,
                        sphere_dict(step=10.0))


@pytest.mark.parametrize("name", ["cosface", "arcface", "lsoftmax", "sphereface"])
def test_recipes(name):
    recipe = get_recipe(name)
    loss = recipe.build_loss(10)
    head = build_head(recipe.head, 10, **recipe.head_kwargs)
    outputs = head(np.ones((2, 3), "float32"))
    assert np.isfinite(float(loss(np.array([1, 9]), outputs)))


# --------------------------------------------------------------------------- bad input


def test_labels_out_of_range():
    for loss, y_pred in ((mg.CosFaceLoss(), COS), (mg.ArcFaceLoss(), COS),
                         (mg.SphereFaceLoss(), sphere_dict()),
                         (mg.LargeMarginSoftmaxLoss(), large_margin_dict())):
        with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
            loss(np.array([0, 1, 2, 4, 0, 1]), y_pred)
        with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
            loss(np.array([0, -1, 2, 3, 0, 1]), y_pred)


def test_one_hot_class_count_mismatch():
    with pytest.raises(ValueError, match="one-hot with 5 classes but the model outputs 4"):
        mg.ArcFaceLoss()(np.eye(5)[[0, 1, 2, 3, 4, 0]], COS)
    with pytest.raises(ValueError, match="one-hot with 5 classes but the model outputs 4"):
        mg.SphereFaceLoss()(np.eye(5)[[0, 1, 2, 3, 4, 0]], sphere_dict())


def test_wrong_ranks():
    with pytest.raises(ValueError, match=r"cos θ \(y_pred\) must have shape"):
        mg.CosFaceLoss()(LABELS, COS[:, 0])
    with pytest.raises(ValueError, match=r"cos θ \(y_pred\) must have shape"):
        mg.ArcFaceLoss()(LABELS, COS[:, :, None])
    with pytest.raises(ValueError, match="y_true must be integer labels"):
        mg.CosFaceLoss()(np.zeros((N, 2, 2)), COS)
    with pytest.raises(ValueError, match="norm"):
        mg.LargeMarginSoftmaxLoss()(LABELS, {"cos": COS, "norm": NORM[:, 0], "step": X_NORM})
    with pytest.raises(ValueError, match="x_norm"):
        mg.SphereFaceLoss()(LABELS, sphere_dict(x_norm=np.ones((N, 2, 2), "float32")))
    with pytest.raises(ValueError, match="y_true has 5 samples but y_pred has 6"):
        mg.CosFaceLoss()(LABELS[:5], COS)


def test_missing_head_outputs_name_the_head_and_the_keys():
    with pytest.raises(ValueError, match=r"ArcFaceLoss needs 'cos' from a 'cosine' head; "
                                         r"got keys \['scores'\]"):
        mg.ArcFaceLoss()(LABELS, {"scores": COS})
    with pytest.raises(ValueError, match=r"SphereFaceLoss needs 'cos', 'x_norm', 'step' from a "
                                         r"'sphere' head; got keys \['cos', 'norm', 'scores', "
                                         r"'step'\]"):
        mg.SphereFaceLoss()(LABELS, large_margin_dict())
    with pytest.raises(ValueError, match="LargeMarginSoftmaxLoss needs .* single tensor"):
        mg.LargeMarginSoftmaxLoss()(LABELS, COS)


@pytest.mark.parametrize("m", [0, -2, 2.5, 2.0, True, "4", None])
def test_margin_must_be_a_positive_integer(m):
    for make in (mg.LargeMarginSoftmaxLoss, mg.SphereFaceLoss):
        with pytest.raises(ValueError, match="margin must be a positive integer"):
            make(margin=m)
    with pytest.raises(ValueError, match="margin must be a positive integer"):
        mg.large_margin_psi(COS, m)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"scale must be a finite number > 0, got 0\.0"):
        mg.CosFaceLoss(scale=0.0)
    with pytest.raises(ValueError, match=r"margin must be a finite number >= 0, got -0\.1"):
        mg.CosFaceLoss(margin=-0.1)
    with pytest.raises(ValueError, match=r"margin must be in \[0, π/2\] radians, got 2\.0"):
        mg.ArcFaceLoss(margin=2.0)
    with pytest.raises(ValueError, match=r"margin must be in \[0, π/2\] radians, got -0\.1"):
        mg.ArcFaceLoss(margin=-0.1)
    assert mg.ArcFaceLoss(margin=math.pi / 2).margin == math.pi / 2  # the closed end
    with pytest.raises(ValueError, match="easy_margin must be True or False, got 'yes'"):
        mg.ArcFaceLoss(easy_margin="yes")
    with pytest.raises(ValueError, match=r"lambda_min must be a finite number >= 0, got -1\.0"):
        mg.SphereFaceLoss(lambda_min=-1.0)
    with pytest.raises(ValueError, match="lambda_gamma must be a finite number >= 0, got inf"):
        mg.LargeMarginSoftmaxLoss(lambda_gamma=float("inf"))
    with pytest.raises(ValueError, match="scale must be a finite number > 0, got True"):
        mg.ArcFaceLoss(scale=True)
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        CosineHead(0)
    with pytest.raises(ValueError, match=r"num_classes must be a positive integer, got 2\.5"):
        CosineHead(2.5)
    with pytest.raises(ValueError, match=r"expects embeddings of shape \(batch, dim\)"):
        CosineHead(3)(np.ones((2, 3, 4), "float32"))
