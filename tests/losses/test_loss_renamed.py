"""The "center" spelling and the deprecated "centre" names it replaced.

The public API says "center" (head, recipe, `CenterHead`, `center_update`, `centers()`); the
old names still work with a `DeprecationWarning` and are listed nowhere. Models saved before
the rename still load: data/old_center_head.keras and data/old_intra_inter_head.keras were
saved by LossLab at commit f3300f2 (before the rename; Keras 3.15.1, TensorFlow) with

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(6, 8)).astype("float32"); y = np.arange(6) % 4
    # 1: Dense(3, name="embedding") -> build_head("centre", 4, metric="mahalanobis",
    #    centre_update="moving_average", alpha=0.3), JointLoss(CenterLoss(), 0.1), Adam
    # 2: Dense(3, name="embedding") -> build_head("intra_inter", 4,
    #    centre_initializer="zeros"), IntraInterLoss(), Adam
    # each: make_model(...), fit(x, y, epochs=1, batch_size=3), save(...)

and data/old_heads_outputs.npz holds x and the outputs the saved models gave then.
"""

import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

import losses
from losses import heads
from losses.head_model import HeadModel
from losses.heads import CenterHead, build_head, list_heads
from losses.intra_inter import IntraInterHead
from losses.metric import CenterLoss, JointLoss
from losses.registry import get_recipe, list_recipes

DATA = Path(__file__).resolve().parent / "data"


def no_warning(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- names


def test_only_the_new_names_are_listed():
    assert "center" in list_heads() and "centre" not in list_heads()
    assert "center" in list_recipes() and "centre" not in list_recipes()
    assert list_heads(include_deprecated=True) == sorted(list_heads() + ["centre"])
    assert list_recipes(include_deprecated=True) == sorted(list_recipes() + ["centre"])
    assert "CenterHead" in losses.__all__
    assert not [name for name in losses.__all__ if "centre" in name.lower()]
    assert not [name for name in dir(losses) + dir(heads) if "centre" in name.lower()
                and not name.startswith("_")]


def test_new_names_work_without_warnings():
    head = no_warning(build_head, "center", 3, center_update="moving_average")
    assert type(head) is CenterHead and head.name == "center"
    assert head.center_update == "moving_average"
    recipe = no_warning(get_recipe, "center")
    assert recipe.name == "center" and recipe.head == "center"
    assert recipe.head_kwargs == {"center_update": "moving_average", "alpha": 0.5}
    assert isinstance(recipe.build_loss(3).metric, CenterLoss)


def test_old_head_and_recipe_names_warn_and_give_the_new_ones():
    with pytest.warns(DeprecationWarning, match="head name 'centre' is deprecated; use 'center'"):
        head = build_head("centre", 3)
    assert type(head) is CenterHead and head.name == "center"
    with pytest.warns(DeprecationWarning, match="loss recipe 'centre' is deprecated; use "
                                                "'center'"):
        recipe = get_recipe("centre")
    assert recipe is get_recipe("center")


def test_old_module_names_warn_and_are_the_new_objects():
    with pytest.warns(DeprecationWarning, match=r"losses\.CentreHead' is deprecated"):
        from losses import CentreHead
    assert CentreHead is CenterHead
    with pytest.warns(DeprecationWarning, match=r"losses\.heads\.CentreHead' is deprecated"):
        assert heads.CentreHead is CenterHead
    with pytest.warns(DeprecationWarning):
        assert heads.CENTRE_METRICS == heads.CENTER_METRICS == ("euclidean", "mahalanobis")
    with pytest.warns(DeprecationWarning):
        assert heads.CENTRE_UPDATES == heads.CENTER_UPDATES
    with pytest.warns(DeprecationWarning):
        assert heads.centre_head is heads.center_head
    with pytest.raises(AttributeError, match="has no attribute 'CentreLoss'"):
        losses.CentreLoss  # noqa: B018  (only the renamed names have aliases)


def test_old_argument_spellings_warn_and_configs_use_the_new_ones():
    with pytest.warns(DeprecationWarning, match="'centre_update' is deprecated; use "
                                                "'center_update'"):
        head = CenterHead(3, centre_update="moving_average", centre_initializer="zeros")
    config = head.get_config()
    assert config["center_update"] == "moving_average"
    assert config["center_initializer"]["class_name"] == "Zeros"
    assert not [key for key in config if "centre" in key]
    with pytest.raises(TypeError, match="both 'center_update' and its deprecated spelling"):
        CenterHead(3, center_update="moving_average", centre_update="gradient")
    with pytest.warns(DeprecationWarning, match="'centre_initializer' is deprecated"):
        intra = IntraInterHead(3, centre_initializer="zeros")
    assert intra.get_config()["center_initializer"]["class_name"] == "Zeros"


def test_old_attribute_names_warn_and_read_the_new_ones():
    head = CenterHead(3, center_update="moving_average")
    head.build((None, 2))
    with pytest.warns(DeprecationWarning, match="'centres' is deprecated; use 'centers'"):
        np.testing.assert_array_equal(ops.convert_to_numpy(head.centres()),
                                      ops.convert_to_numpy(head.centers()))
    with pytest.warns(DeprecationWarning):
        assert head.class_centres is head.class_centers
    with pytest.warns(DeprecationWarning):
        assert head.centre_update == "moving_average"
    before = ops.convert_to_numpy(head.centers()).astype("float64")
    with pytest.warns(DeprecationWarning):
        head.update_centres(np.ones((2, 2), "float32"), np.array([0, 0]))
    # Wen et al.'s step for class 0 (two samples at (1, 1)), α = 0.5: the others stay
    expected = before.copy()
    expected[0] -= 0.5 * (2 * before[0] - 2.0) / 3.0
    np.testing.assert_allclose(ops.convert_to_numpy(head.centers()), expected, rtol=1e-6,
                               atol=1e-7)
    intra = IntraInterHead(3)
    intra.build((None, 2))
    with pytest.warns(DeprecationWarning):
        assert intra.centre_vectors is intra.center_vectors
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        head.nonexistent  # noqa: B018
    assert not [name for name in dir(head) + dir(intra) if "centre" in name]


# --------------------------------------------------------------------------- saved models


def _load_quietly(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.saving.load_model(path, safe_mode=True)
    return model, [str(w.message) for w in caught if w.category is DeprecationWarning]


def test_a_model_saved_with_centre_head_loads_with_its_weights(tmp_path):
    reference = np.load(DATA / "old_heads_outputs.npz")
    model, deprecations = _load_quietly(DATA / "old_center_head.keras")
    assert type(model) is HeadModel
    head = model.get_layer("centre")  # the layer keeps its saved name
    assert isinstance(head, CenterHead) and type(head).__name__ == "CentreHead"
    assert any("'CentreHead' is deprecated" in message for message in deprecations)
    assert (head.metric, head.center_update, head.alpha) == ("mahalanobis", "moving_average",
                                                            0.3)
    outputs = model(reference["x"])  # (saved by TensorFlow: other backends round differently)
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["scores"]),
                               reference["center_scores"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["distances"]),
                               reference["center_distances"], rtol=1e-6, atol=1e-6)
    assert isinstance(model.loss, JointLoss) and isinstance(model.loss.metric, CenterLoss)
    # it trains on, and saves and loads again (as the same class: its weights stay readable)
    model.fit(reference["x"], reference["y"], epochs=1, batch_size=3, verbose=0)
    model.save(tmp_path / "again.keras")
    again, _ = _load_quietly(tmp_path / "again.keras")
    np.testing.assert_allclose(ops.convert_to_numpy(again(reference["x"])["distances"]),
                               ops.convert_to_numpy(model(reference["x"])["distances"]),
                               rtol=1e-6)


def test_a_model_saved_with_centre_initializer_loads_with_its_weights():
    reference = np.load(DATA / "old_heads_outputs.npz")
    model, deprecations = _load_quietly(DATA / "old_intra_inter_head.keras")
    assert any("'centre_initializer' is deprecated" in message for message in deprecations)
    head = model.get_layer("intra_inter")
    assert type(head) is IntraInterHead
    outputs = model(reference["x"])
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["cos"]), reference["intra_cos"],
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["distances"]),
                               reference["intra_distances"], rtol=1e-6, atol=1e-6)


def test_a_new_center_head_model_saves_under_the_new_name(tmp_path):
    inputs = keras.Input((4,))
    embedding = keras.layers.Dense(3, name="embedding")(inputs)
    model = heads.make_model(inputs, build_head("center", 3)(embedding))
    model.save(tmp_path / "new.keras")
    config = model.get_config()
    layer = [entry for entry in config["layers"] if entry["name"] == "center"][0]
    assert layer["registered_name"] == "losslab>CenterHead"
    restored, deprecations = _load_quietly(tmp_path / "new.keras")
    assert not deprecations and type(restored.get_layer("center")) is CenterHead
