"""Tests for losses/base.py: the argument checks every loss constructor uses (values accepted
and normalised, values refused with a message naming the argument and the value), the base
class `Loss` (dtype in the config), and the per-class input helpers."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from losses import base


# --------------------------------------------------------------------------- argument checks

NOT_NUMBERS = [True, np.bool_(False), "1.0", None, [1.0], float("nan"), float("inf"),
               -float("inf")]


@pytest.mark.parametrize("value, expected", [(2, 2.0), (0.5, 0.5), (np.float32(0.25), 0.25),
                                             (np.int64(3), 3.0), (1e-30, 1e-30)])
def test_check_positive_accepts_and_returns_a_float(value, expected):
    got = base.check_positive("scale", value)
    assert type(got) is float and got == expected


@pytest.mark.parametrize("value", [0, 0.0, -1e-9, -3] + NOT_NUMBERS)
def test_check_positive_refuses_naming_argument_and_value(value):
    with pytest.raises(ValueError) as error:
        base.check_positive("scale", value)
    assert str(error.value) == f"scale must be a finite number > 0, got {value!r}"


@pytest.mark.parametrize("value", [0, 0.0, 1, 2.5, np.float64(7.0)])
def test_check_non_negative_accepts_zero(value):
    got = base.check_non_negative("margin", value)
    assert type(got) is float and got == float(value)


@pytest.mark.parametrize("value", [-1e-12, -1] + NOT_NUMBERS)
def test_check_non_negative_refuses(value):
    with pytest.raises(ValueError) as error:
        base.check_non_negative("margin", value)
    assert str(error.value) == f"margin must be a finite number >= 0, got {value!r}"


def test_check_at_least_with_a_note():
    assert base.check_at_least("theta", 1, 1) == 1.0
    with pytest.raises(ValueError) as error:
        base.check_at_least("theta", 0.5, 1, " (the paper uses 2 to 6)")
    assert str(error.value) == "theta must be a finite number >= 1 (the paper uses 2 to 6), " \
                               "got 0.5"


@pytest.mark.parametrize("closed, inside, outside, text", [
    ("left", [0, 0.5, 0.999], [1, -0.1, 1.5], "[0, 1)"),
    ("right", [1, 0.5, 1e-9], [0, -0.1, 1.5], "(0, 1]"),
    ("both", [0, 1, 0.5], [-1e-9, 1.000001], "[0, 1]"),
    ("neither", [0.5, 1e-9], [0, 1], "(0, 1)"),
])
def test_check_in_range_ends(closed, inside, outside, text):
    for value in inside:
        assert base.check_in_range("momentum", value, 0, 1, closed=closed) == float(value)
    for value in outside + NOT_NUMBERS:
        with pytest.raises(ValueError) as error:
            base.check_in_range("momentum", value, 0, 1, closed=closed)
        assert str(error.value) == f"momentum must be in {text}, got {value!r}"


def test_check_in_range_with_a_written_interval():
    half_pi = math.pi / 2
    assert base.check_in_range("margin", half_pi, 0, half_pi, closed="both") == half_pi
    with pytest.raises(ValueError, match=r"^margin must be in \[0, π/2\] radians, got 2$"):
        base.check_in_range("margin", 2, 0, half_pi, closed="both",
                            interval="[0, π/2] radians")
    with pytest.raises(ValueError, match="closed must be"):
        base.check_in_range("x", 0.5, 0, 1, closed="open")


@pytest.mark.parametrize("value", [1, 7, np.int32(4)])
def test_check_positive_int_accepts_integers(value):
    got = base.check_positive_int("margin", value)
    assert type(got) is int and got == int(value)


@pytest.mark.parametrize("value", [0, -2, 2.0, 2.5, True, "4", None, np.float32(3)])
def test_check_positive_int_refuses_floats_bools_and_the_rest(value):
    with pytest.raises(ValueError) as error:
        base.check_positive_int("margin", value)
    assert str(error.value) == f"margin must be a positive integer, got {value!r}"


def test_check_choice_lists_the_choices():
    assert base.check_choice("mining", "hard", ("all", "hard")) == "hard"
    with pytest.raises(ValueError) as error:
        base.check_choice("mining", "semi_hard", ("all", "hard"))
    assert str(error.value) == "mining must be one of 'all', 'hard', got 'semi_hard'"


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_check_bool_accepts_booleans(value):
    got = base.check_bool("normalize", value)
    assert type(got) is bool and got == bool(value)


@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0])
def test_check_bool_refuses_the_rest(value):
    with pytest.raises(ValueError) as error:
        base.check_bool("normalize", value)
    assert str(error.value) == f"normalize must be True or False, got {value!r}"


# --------------------------------------------------------------------------- the base class


class _Half(base.Loss):
    def call(self, y_true, y_pred):
        return 0.5 * ops.sum(ops.cast(y_pred, "float32"), axis=-1)


def test_base_loss_config_holds_dtype_and_round_trips():
    assert _Half().get_config() == {"name": "__half", "reduction": "sum_over_batch_size",
                                    "dtype": "float32"}
    loss = _Half(name="half", reduction="sum", dtype="float16")
    config = loss.get_config()
    assert config == {"name": "half", "reduction": "sum", "dtype": "float16"}
    clone = _Half.from_config(config)
    assert clone.dtype == "float16" and clone.get_config() == config
    # Keras' own losses take dtype= too, but leave it out of their config
    assert "dtype" not in keras.losses.MeanSquaredError(dtype="float16").get_config()
    value = loss(np.zeros(2), np.array([[1.0, 2.0], [3.0, 4.0]], "float32"))
    assert ops.convert_to_numpy(value).dtype == np.float16 and float(value) == 5.0


# --------------------------------------------------------------------------- per-class inputs


def test_class_inputs_checks_and_converts():
    scores = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]], "float16")
    labels, y_pred, one_hot, num_classes = base.class_inputs(np.array([[2], [0]]), scores)
    assert num_classes == 3 and ops.convert_to_numpy(y_pred).dtype == np.float32
    np.testing.assert_array_equal(ops.convert_to_numpy(labels), [2, 0])
    np.testing.assert_array_equal(ops.convert_to_numpy(one_hot), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"cos θ must have shape \(batch, num_classes\)"):
        base.class_inputs(np.array([0]), np.zeros(3), "cos θ")
    with pytest.raises(ValueError, match="y_true has 3 samples but y_pred has 2"):
        base.class_inputs(np.array([0, 1, 2]), scores)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        base.class_inputs(np.array([0, 3]), scores)


def test_class_count_needs_a_known_last_dimension():
    assert base.class_count(keras.KerasTensor((None, 5))) == 5
    with pytest.raises(ValueError, match=r"y_pred must have a known number of classes \(last "
                                         r"dimension\), got shape \(None, None\)"):
        base.class_count(keras.KerasTensor((None, None)))


def test_softmax_cross_entropy_matches_numpy():
    logits = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 0.0]], "float32")
    one_hot = np.eye(3, dtype="float32")[[1, 0]]
    z = logits.astype("float64")
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    np.testing.assert_allclose(ops.convert_to_numpy(base.softmax_cross_entropy(one_hot, logits)),
                               -log_p[[0, 1], [1, 0]], rtol=1e-6)
