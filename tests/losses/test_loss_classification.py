"""Tests for losses/classification.py: NumPy references written here, Keras built-ins where the
conventions coincide, hand-computed cases, limits, gradients, configs, bad input. (The loss
contract — save/load, policies, sample_weight, dtype — is test_loss_contract_all.py's.)"""

import inspect

import keras
import numpy as np
import pytest
from keras import ops
from gradients import value_and_grad
from loss_contract import check_sample_weight

import losses
from losses import classification as cls

C = 4
RNG = np.random.default_rng(1234)
LABELS = np.array([0, 3, 1, 2, 2, 0], dtype="int64")
LOGITS = RNG.normal(scale=2.0, size=(len(LABELS), C)).astype("float32")


# --------------------------------------------------------------------------- NumPy references


def np_log_softmax(z):
    z = np.asarray(z, dtype="float64")
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def np_softmax(z):
    return np.exp(np_log_softmax(z))


def np_focal(labels, logits, alpha=None, gamma=2.0):
    log_p = np_log_softmax(logits)[np.arange(len(labels)), labels]
    p = np.exp(log_p)
    if alpha is None:
        a = np.ones(len(labels))
    elif np.ndim(alpha) == 0:
        a = np.full(len(labels), float(alpha))
    else:
        a = np.asarray(alpha, dtype="float64")[labels]
    return -a * (1.0 - p) ** gamma * log_p


def np_weighted_ce(labels, logits, weights=None):
    w = np.ones(np.shape(logits)[-1]) if weights is None else np.asarray(weights, "float64")
    return -w[labels] * np_log_softmax(logits)[np.arange(len(labels)), labels]


def np_weston_watkins(labels, scores, margin=1.0):
    scores = np.asarray(scores, "float64")
    out = []
    for y, s in zip(labels, scores):
        out.append(sum(max(0.0, margin - s[y] + s[j]) for j in range(len(s)) if j != y))
    return np.array(out)


def np_crammer_singer(labels, scores, margin=1.0):
    scores = np.asarray(scores, "float64")
    out = []
    for y, s in zip(labels, scores):
        others = max(s[j] for j in range(len(s)) if j != y)
        out.append(max(0.0, margin + others - s[y]))
    return np.array(out)


def np_probability_mse(labels, logits):
    one_hot = np.eye(np.shape(logits)[-1])[labels]
    return ((np_softmax(logits) - one_hot) ** 2).mean(axis=-1)


def label_forms(labels, num_classes=C):
    return {"int": labels, "column": labels[:, None], "one_hot": np.eye(num_classes)[labels]}


def per_sample(loss, y_true, y_pred):
    loss.reduction = None
    return ops.convert_to_numpy(loss(y_true, y_pred))


def numeric_grad(np_fn, x, h=1e-5):
    x = np.asarray(x, "float64")
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (np_fn(up) - np_fn(down)) / (2 * h)
    return grad


# --------------------------------------------------------------------------- focal


@pytest.mark.parametrize("form", ["int", "column", "one_hot"])
@pytest.mark.parametrize("alpha", [None, 0.25, [0.1, 0.2, 0.3, 0.4]])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.0])
def test_focal_matches_numpy(form, alpha, gamma):
    y_true = label_forms(LABELS)[form]
    got = per_sample(cls.FocalLoss(alpha=alpha, gamma=gamma), y_true, LOGITS)
    np.testing.assert_allclose(got, np_focal(LABELS, LOGITS, alpha, gamma), rtol=1e-5, atol=1e-6)
    fn = ops.convert_to_numpy(cls.focal_loss(y_true, LOGITS, alpha=alpha, gamma=gamma))
    np.testing.assert_allclose(fn, got, rtol=1e-6)


def test_focal_gamma0_is_cross_entropy():
    got = float(cls.FocalLoss(gamma=0.0)(LABELS, LOGITS))
    keras_ce = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(LABELS, LOGITS))
    np.testing.assert_allclose(got, keras_ce, rtol=1e-5)


def test_focal_hand_case():
    # Two equal logits: p_y = 1/2, so loss = alpha * (1/2)^gamma * log 2.
    y_pred = np.zeros((1, 2), "float32")
    np.testing.assert_allclose(float(cls.FocalLoss()([1], y_pred)), 0.25 * np.log(2), rtol=1e-6)
    np.testing.assert_allclose(float(cls.FocalLoss(alpha=[3.0, 5.0], gamma=1.0)([0], y_pred)),
                               3.0 * 0.5 * np.log(2), rtol=1e-6)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_focal_confident_correct_sample_keeps_relative_precision(gamma):
    # 1 - p_y = e^-8 / (1 + e^-8) ~ 3.4e-4: the modulating factor must not be floored.
    y_pred = np.array([[8.0, 0.0], [0.0, 9.0]], "float32")
    labels = np.array([0, 1])
    got = per_sample(cls.FocalLoss(gamma=gamma), labels, y_pred)
    np.testing.assert_allclose(got, np_focal(labels, y_pred, None, gamma), rtol=2e-3, atol=0)


@pytest.mark.parametrize("alpha", [0.25, [0.1, 0.2, 0.3, 0.4]])
@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_focal_matches_keras_on_logits(alpha, gamma):
    # Keras' alpha default is 0.25 and from_logits default False: both given explicitly here.
    ours = float(cls.FocalLoss(alpha=alpha, gamma=gamma)(LABELS, LOGITS))
    theirs = float(keras.losses.CategoricalFocalCrossentropy(alpha=alpha, gamma=gamma,
                                                             from_logits=True)(
        np.eye(C)[LABELS], LOGITS))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_focal_matches_keras_on_probabilities():
    probabilities = np_softmax(LOGITS).astype("float32")
    ours = float(cls.FocalLoss(alpha=0.25, from_logits=False)(LABELS, probabilities))
    theirs = float(keras.losses.CategoricalFocalCrossentropy()(np.eye(C)[LABELS], probabilities))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    from_logits = float(cls.FocalLoss(alpha=0.25)(LABELS, LOGITS))
    np.testing.assert_allclose(ours, from_logits, rtol=1e-5)


def test_focal_probabilities_are_clipped():
    probabilities = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    got = per_sample(cls.FocalLoss(gamma=0.0, from_logits=False), [1, 1], probabilities)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got[0], -np.log(keras.config.epsilon()), rtol=1e-3)
    assert abs(got[1]) < 1e-6


# --------------------------------------------------------------------------- weighted CE


WEIGHTS = [0.5, 2.0, 1.0, 3.0]


@pytest.mark.parametrize("form", ["int", "column", "one_hot"])
@pytest.mark.parametrize("weights", [None, WEIGHTS])
def test_weighted_ce_matches_numpy(form, weights):
    y_true = label_forms(LABELS)[form]
    got = per_sample(cls.WeightedCrossEntropy(weights=weights), y_true, LOGITS)
    np.testing.assert_allclose(got, np_weighted_ce(LABELS, LOGITS, weights), rtol=1e-5)


def test_weighted_ce_reduction_is_over_batch_size_like_keras_class_weight():
    w = np.asarray(WEIGHTS, "float32")
    ours = float(cls.WeightedCrossEntropy(weights=WEIGHTS)(LABELS, LOGITS))
    keras_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(ours, float(keras_ce(LABELS, LOGITS, sample_weight=w[LABELS])),
                               rtol=1e-5)
    np.testing.assert_allclose(ours, np_weighted_ce(LABELS, LOGITS, WEIGHTS).sum() / len(LABELS),
                               rtol=1e-5)


def test_weighted_ce_hand_case_and_probabilities():
    y_pred = np.log(np.array([[0.25, 0.75]], "float32"))
    np.testing.assert_allclose(float(cls.WeightedCrossEntropy([2.0, 4.0])([0], y_pred)),
                               2.0 * np.log(4.0), rtol=1e-5)
    probabilities = np.array([[0.25, 0.75]], "float32")
    np.testing.assert_allclose(
        float(cls.WeightedCrossEntropy([2.0, 4.0], from_logits=False)([1], probabilities)),
        -4.0 * np.log(0.75), rtol=1e-5)


def test_inverse_frequency_weights():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 0, 1, 3])
    counts = np.bincount(labels, minlength=4).astype("float64")
    raw = cls.inverse_frequency_weights(labels, 4, normalize=False)
    np.testing.assert_allclose(raw, 1.0 / counts, rtol=1e-6)
    w = cls.inverse_frequency_weights(labels, 4)
    np.testing.assert_allclose(w, (1.0 / counts) * 4 / (1.0 / counts).sum(), rtol=1e-6)
    np.testing.assert_allclose(w.sum(), 4.0, rtol=1e-6)
    # scikit-learn's "balanced" = N / (C * n_c) is the unnormalized form times N / C.
    np.testing.assert_allclose(raw * len(labels) / 4, len(labels) / (4 * counts), rtol=1e-6)
    np.testing.assert_allclose(cls.inverse_frequency_weights(np.eye(4)[labels], 4), w, rtol=1e-6)


def test_effective_number_weights():
    labels = np.array([0] * 50 + [1] * 5 + [2] * 1)
    beta = 0.9
    counts = np.array([50.0, 5.0, 1.0])
    expected = (1 - beta) / (1 - beta ** counts)
    expected = expected * 3 / expected.sum()
    w = cls.effective_number_weights(labels, 3, beta=beta)
    np.testing.assert_allclose(w, expected, rtol=1e-5)
    np.testing.assert_allclose(w.sum(), 3.0, rtol=1e-6)
    np.testing.assert_allclose(cls.effective_number_weights(labels, 3, beta=0.0), np.ones(3))
    # beta -> 1 approaches inverse frequency.
    np.testing.assert_allclose(cls.effective_number_weights(labels, 3, beta=1 - 1e-9),
                               cls.inverse_frequency_weights(labels, 3), rtol=1e-4)


@pytest.mark.parametrize("helper", [cls.inverse_frequency_weights, cls.effective_number_weights])
def test_class_weight_helpers_handle_empty_classes(helper):
    labels = np.array([0, 0, 0, 1])  # classes 2 and 3 have no samples
    w = helper(labels, 4)
    assert w.shape == (4,) and np.all(np.isfinite(w)) and np.all(w > 0)
    # An absent class counts as one sample: same weight as class 1 (one sample).
    np.testing.assert_allclose(w[2:], w[1], rtol=1e-6)
    assert w[0] < w[1]
    np.testing.assert_allclose(helper(np.array([], "int64"), 3), np.ones(3), rtol=1e-6)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
        helper(np.array([0, 4]), 4)


# --------------------------------------------------------------------------- hinge


@pytest.mark.parametrize("form", ["int", "column", "one_hot"])
@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_hinge_matches_numpy(form, margin):
    y_true = label_forms(LABELS)[form]
    ww = per_sample(cls.MulticlassHinge("weston_watkins", margin), y_true, LOGITS)
    cs = per_sample(cls.MulticlassHinge("crammer_singer", margin), y_true, LOGITS)
    np.testing.assert_allclose(ww, np_weston_watkins(LABELS, LOGITS, margin), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cs, np_crammer_singer(LABELS, LOGITS, margin), rtol=1e-5, atol=1e-6)


def test_crammer_singer_matches_keras_categorical_hinge_for_nonnegative_scores():
    scores = RNG.uniform(0.0, 3.0, size=(len(LABELS), C)).astype("float32")
    ours = float(cls.MulticlassHinge("crammer_singer")(LABELS, scores))
    theirs = float(keras.losses.CategoricalHinge()(np.eye(C)[LABELS], scores))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_hinge_hand_case_and_keras_difference_for_negative_scores():
    scores = np.array([[-3.0, -1.0, -2.0]], "float32")
    # Crammer-Singer: max(0, 1 + (-1) - (-3)) = 3; Weston-Watkins: (1+3-1) + (1+3-2) = 5.
    np.testing.assert_allclose(float(cls.MulticlassHinge("crammer_singer")([0], scores)), 3.0)
    np.testing.assert_allclose(float(cls.MulticlassHinge("weston_watkins")([0], scores)), 5.0)
    # Keras lets the true class enter its max as 0: max(0, 0 - (-3) + 1) = 4.
    keras_value = float(keras.losses.CategoricalHinge()(np.array([[1.0, 0.0, 0.0]]), scores))
    np.testing.assert_allclose(keras_value, 4.0)
    # Margin satisfied -> zero loss.
    ok = np.array([[5.0, 1.0, 0.0]], "float32")
    assert float(cls.MulticlassHinge("crammer_singer")([0], ok)) == 0.0
    assert float(cls.MulticlassHinge("weston_watkins")([0], ok)) == 0.0


# --------------------------------------------------------------------------- probability MSE


@pytest.mark.parametrize("form", ["int", "column", "one_hot"])
def test_probability_mse_matches_numpy_and_keras(form):
    y_true = label_forms(LABELS)[form]
    got = per_sample(cls.ProbabilityMSE(), y_true, LOGITS)
    np.testing.assert_allclose(got, np_probability_mse(LABELS, LOGITS), rtol=1e-5)
    keras_mse = keras.losses.mean_squared_error(np.eye(C)[LABELS],
                                                np_softmax(LOGITS).astype("float32"))
    np.testing.assert_allclose(got, ops.convert_to_numpy(keras_mse), rtol=1e-5)
    probabilities = np_softmax(LOGITS).astype("float32")
    np.testing.assert_allclose(per_sample(cls.ProbabilityMSE(from_logits=False), y_true,
                                          probabilities), got, rtol=1e-5)


def test_probability_mse_hand_case():
    # p = [1/2, 1/2], one-hot [1, 0] -> ((1/2)^2 + (1/2)^2) / 2 = 1/4.
    np.testing.assert_allclose(float(cls.ProbabilityMSE()([0], np.zeros((1, 2), "float32"))),
                               0.25, rtol=1e-6)


# --------------------------------------------------------------------------- gradients, limits

NP_REFERENCES = {
    "focal": (lambda: cls.FocalLoss(alpha=[0.1, 0.2, 0.3, 0.4], gamma=1.5),
              lambda z: np_focal(LABELS, z, [0.1, 0.2, 0.3, 0.4], 1.5).mean()),
    "weighted_ce": (lambda: cls.WeightedCrossEntropy(WEIGHTS),
                    lambda z: np_weighted_ce(LABELS, z, WEIGHTS).mean()),
    "weston_watkins": (lambda: cls.MulticlassHinge("weston_watkins"),
                       lambda z: np_weston_watkins(LABELS, z).mean()),
    "crammer_singer": (lambda: cls.MulticlassHinge("crammer_singer"),
                       lambda z: np_crammer_singer(LABELS, z).mean()),
    "prob_mse": (cls.ProbabilityMSE, lambda z: np_probability_mse(LABELS, z).mean()),
}


@pytest.mark.parametrize("name", sorted(NP_REFERENCES))
def test_gradient_matches_numeric_gradient_of_numpy_reference(name):
    make_loss, np_fn = NP_REFERENCES[name]
    loss = make_loss()
    value, grad = value_and_grad(lambda z: loss(LABELS, z), LOGITS)
    np.testing.assert_allclose(value, np_fn(LOGITS), rtol=1e-5)
    np.testing.assert_allclose(grad, numeric_grad(np_fn, LOGITS), rtol=1e-3, atol=1e-5)


HUGE = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, -1e4], [1e4, 1e4, -1e4]], "float32")
HUGE_LABELS = np.array([1, 1, 2])


@pytest.mark.parametrize("name", sorted(NP_REFERENCES))
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_huge_logits_give_finite_values_and_gradients(name, dtype):
    make_loss = NP_REFERENCES[name][0]
    if name in ("focal", "weighted_ce"):  # 4-class alpha/weights in the table: use 3 here
        make_loss = {"focal": lambda: cls.FocalLoss(alpha=[0.1, 0.2, 0.3]),
                     "weighted_ce": lambda: cls.WeightedCrossEntropy([0.5, 2.0, 1.0])}[name]
    _check_huge(make_loss, dtype)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_focal_small_gamma_huge_logits_finite(gamma, dtype):
    # 1 - p_y is exactly 0 for the correctly classified sample: d/dx x^gamma must stay finite.
    _check_huge(lambda: cls.FocalLoss(gamma=gamma), dtype)


def _check_huge(make_loss, dtype):
    loss = make_loss()
    loss.reduction = None
    per = ops.convert_to_numpy(loss(HUGE_LABELS, ops.cast(HUGE, dtype)))
    assert per.dtype == np.float32 and np.all(np.isfinite(per)), per
    loss = make_loss()
    value, grad = value_and_grad(lambda z: loss(HUGE_LABELS, ops.cast(z, dtype)), HUGE)
    assert np.isfinite(value) and np.all(np.isfinite(grad)), (value, grad)


def test_huge_logit_values_are_exact():
    # Sample 0: label 1 scores -1e4 vs 1e4 -> log p_y = -2e4, p_y = 0; sample 2: two classes
    # tie at 1e4 against the label's -1e4 -> log p_y = -2e4 - log 2.
    expected_ce = [2e4, 0.0, 2e4 + np.log(2.0)]
    np.testing.assert_allclose(per_sample(cls.FocalLoss(), HUGE_LABELS, HUGE), expected_ce,
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(per_sample(cls.WeightedCrossEntropy(), HUGE_LABELS, HUGE),
                               expected_ce, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(per_sample(cls.MulticlassHinge(), HUGE_LABELS, HUGE),
                               [20001.0, 0.0, 20001.0], rtol=1e-6)
    np.testing.assert_allclose(per_sample(cls.ProbabilityMSE(), HUGE_LABELS, HUGE),
                               [2 / 3, 0.0, 1.5 / 3], rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- configs, labels


def test_sample_weight_with_one_hot_labels():
    labels = np.array([0, 1, 2, 1, 0])
    logits = RNG.normal(size=(5, 3)).astype("float32")
    for make_loss in (cls.FocalLoss, cls.WeightedCrossEntropy, cls.MulticlassHinge,
                      cls.ProbabilityMSE):
        check_sample_weight(make_loss, np.eye(3)[labels], logits)


NON_DEFAULT = [
    cls.FocalLoss(alpha=[0.2, 0.3, 0.5], gamma=0.5, from_logits=False, reduction="sum",
                  name="f", dtype="float16"),
    cls.WeightedCrossEntropy(weights=[0.5, 1.0, 2.0], from_logits=False, reduction="sum",
                             name="w", dtype="float16"),
    cls.MulticlassHinge(variant="weston_watkins", margin=0.5, reduction="sum", name="h",
                        dtype="float16"),
    cls.ProbabilityMSE(from_logits=False, reduction="sum", name="p", dtype="float16"),
]


@pytest.mark.parametrize("loss", NON_DEFAULT, ids=lambda loss: type(loss).__name__)
def test_get_config_holds_every_constructor_argument(loss):
    config = loss.get_config()
    assert set(config) == set(inspect.signature(type(loss).__init__).parameters) - {"self"}
    assert config["reduction"] == "sum" and config["dtype"] == "float16"
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(clone) is type(loss) and clone.get_config() == config
    probabilities = np_softmax(LOGITS[:, :3]).astype("float32")
    labels = np.array([0, 2, 1, 2, 1, 0])
    np.testing.assert_allclose(float(clone(labels, probabilities)),
                               float(loss(labels, probabilities)), rtol=1e-6)
    # the float32 default and its config entry
    assert type(loss)().get_config()["dtype"] == "float32"


@pytest.mark.parametrize("name, kind", [("focal", cls.FocalLoss),
                                        ("weighted_ce", cls.WeightedCrossEntropy),
                                        ("hinge", cls.MulticlassHinge),
                                        ("prob_mse", cls.ProbabilityMSE)])
def test_recipes(name, kind):
    recipe = losses.get_recipe(name)
    assert recipe.head == "softmax" and recipe.summary
    loss = recipe.build_loss(5)
    assert isinstance(loss, kind)
    labels = np.array([0, 4, 2])
    assert np.isfinite(float(loss(labels, RNG.normal(size=(3, 5)).astype("float32"))))
    if name == "hinge":
        assert loss.variant == "crammer_singer"


# --------------------------------------------------------------------------- bad input


ALL_LOSSES = [cls.FocalLoss, cls.WeightedCrossEntropy, cls.MulticlassHinge, cls.ProbabilityMSE]


@pytest.mark.parametrize("make_loss", ALL_LOSSES)
def test_bad_labels_and_shapes_raise(make_loss):
    loss = make_loss()
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\].*got labels in \[0, 4\]"):
        loss(np.array([0, 4]), LOGITS[:2])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
        loss(np.array([-1, 1]), LOGITS[:2])
    with pytest.raises(ValueError, match="one-hot with 3 classes but the model outputs 4"):
        loss(np.eye(3)[[0, 1]], LOGITS[:2])
    with pytest.raises(ValueError, match=r"y_pred must have shape \(batch, num_classes\)"):
        loss(np.array([0, 1]), LOGITS[:2, :, None])
    with pytest.raises(ValueError, match=r"y_pred must have shape \(batch, num_classes\)"):
        loss(np.array([0, 1]), LOGITS[0])
    with pytest.raises(ValueError, match="y_true must be integer labels"):
        loss(np.zeros((2, 2, 4)), LOGITS[:2])
    with pytest.raises(ValueError, match="y_true has 3 samples but y_pred has 2"):
        loss(np.array([0, 1, 2]), LOGITS[:2])


def test_per_class_length_mismatch_names_both_numbers():
    with pytest.raises(ValueError, match="alpha has 3 entries but y_pred has 4 classes"):
        cls.FocalLoss(alpha=[1.0, 1.0, 1.0])(LABELS, LOGITS)
    with pytest.raises(ValueError, match="weights has 5 entries but y_pred has 4 classes"):
        cls.WeightedCrossEntropy(weights=[1.0] * 5)(LABELS, LOGITS)
    with pytest.raises(ValueError, match="alpha has 2 entries but y_pred has 4 classes"):
        cls.focal_loss(LABELS, LOGITS, alpha=[1.0, 2.0])


def test_bad_options_raise():
    with pytest.raises(ValueError, match="variant must be one of 'weston_watkins', "
                                         "'crammer_singer', got 'ovr'"):
        cls.MulticlassHinge(variant="ovr")
    with pytest.raises(ValueError, match="got 'svm'"):
        cls.multiclass_hinge(LABELS, LOGITS, variant="svm")
    with pytest.raises(ValueError, match=r"gamma must be a finite number >= 0, got -1\.0"):
        cls.FocalLoss(gamma=-1.0)
    with pytest.raises(ValueError, match="gamma must be a finite number >= 0, got nan"):
        cls.focal_loss(LABELS, LOGITS, gamma=float("nan"))
    with pytest.raises(ValueError, match=r"margin must be a finite number >= 0, got -0\.5"):
        cls.MulticlassHinge(margin=-0.5)
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0, got -1"):
        cls.FocalLoss(alpha=-1)
    with pytest.raises(ValueError, match="alpha must hold finite values >= 0"):
        cls.FocalLoss(alpha=[1.0, -1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="weights must be None or a list"):
        cls.WeightedCrossEntropy(weights=2.0)
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\), got 1\.0"):
        cls.effective_number_weights([0, 1], 2, beta=1.0)
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        cls.inverse_frequency_weights([0, 1], 0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        cls.MulticlassHinge()(np.array([0, 0]), np.zeros((2, 1), "float32"))
