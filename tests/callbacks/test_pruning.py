"""callbacks.pruning: the sparsity schedules against their formula, the masks against a
brute-force sort written here, and the callback in real `fit` runs (exact zeros that stay
zero, save/load, structured filters, fine-tuning with fixed masks)."""

import keras
import numpy as np
import pytest

from callbacks.pruning import (ConstantSparsity, MagnitudePruning, PolynomialSparsity,
                               compute_masks, kernel_sparsity, prunable_layers)


def small_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8, 8, 1)),
                             keras.layers.Conv2D(6, 3, name="conv"),
                             keras.layers.Flatten(),
                             keras.layers.Dense(16, activation="relu", name="hidden"),
                             keras.layers.Dense(3, name="logits")])


def toy_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 1)).astype(np.float32)
    return x, (x[:, :3, :3, 0].sum(axis=(1, 2)) > 0).astype(np.int32) + (x[:, 0, 0, 0] > 1)


def test_polynomial_schedule_is_the_zhu_gupta_formula():
    schedule = PolynomialSparsity(0.9, begin_step=10, end_step=110, initial_sparsity=0.1,
                                  power=3, frequency=25)
    for t in (10, 35, 60, 99, 110):
        expected = 0.9 + (0.1 - 0.9) * (1 - (t - 10) / 100) ** 3
        assert schedule(t) == pytest.approx(expected)
    assert schedule(500) == pytest.approx(0.9) and schedule(3) == pytest.approx(0.1)
    assert [t for t in range(200) if schedule.should_update(t)] == [10, 35, 60, 85, 110]
    constant = ConstantSparsity(0.5, begin_step=4)
    assert constant(3) == 0 and constant(4) == 0.5
    assert [t for t in range(50) if constant.should_update(t)] == [4]


def brute_force_global(kernels, sparsity):
    """Prune the floor(s·N) smallest |w| of all kernels together (ties: first position)."""
    values = np.concatenate([np.abs(k).reshape(-1) for k in kernels])
    pruned = np.zeros(values.size, bool)
    pruned[np.argsort(values, kind="stable")[:int(np.floor(sparsity * values.size + 1e-9))]] = 1
    out, start = [], 0
    for k in kernels:
        out.append(~pruned[start:start + k.size].reshape(k.shape))
        start += k.size
    return out


def test_global_and_per_layer_masks_against_brute_force():
    rng = np.random.default_rng(0)
    kernels = [rng.normal(0, 1, (3, 3, 2, 4)), rng.normal(0, 0.1, (10, 5))]  # 72 + 50
    ones = [np.ones(k.shape, bool) for k in kernels]
    masks = compute_masks(kernels, ones, 0.6, "global")
    for found, expected in zip(masks, brute_force_global(kernels, 0.6)):
        np.testing.assert_array_equal(found, expected)
    # the small-weight layer loses (almost) everything first
    assert (~masks[1]).mean() > 0.95 and sum((~m).sum() for m in masks) == int(0.6 * 122)
    per_layer = compute_masks(kernels, ones, 0.6, "layer")
    for found, kernel in zip(per_layer, kernels):
        np.testing.assert_array_equal(found, brute_force_global([kernel], 0.6)[0])
    # an earlier mask is kept: a large weight pruned before stays pruned
    first = [m.copy() for m in ones]
    first[0].reshape(-1)[np.argmax(np.abs(kernels[0]))] = False
    again = compute_masks(kernels, first, 0.3, "layer")
    assert not again[0].reshape(-1)[np.argmax(np.abs(kernels[0]))]
    assert (~again[0]).sum() == int(0.3 * 72)


def test_filter_masks_drop_whole_filters_by_normalised_norm():
    rng = np.random.default_rng(1)
    conv = rng.normal(0, 1, (3, 3, 2, 5))
    conv[..., 3] *= 0.01                      # the weakest filter of the conv
    dense = rng.normal(0, 0.5, (20, 4))
    masks = compute_masks([conv, dense], [np.ones(conv.shape, bool), np.ones(dense.shape,
                                                                              bool)],
                          0.35, "global", "filter")  # floor(0.35 · 9 filters) = 3
    kept = [m.reshape(-1, m.shape[-1]) for m in masks]
    for m in kept:  # every filter is all kept or all pruned
        assert (m.all(axis=0) | ~m.any(axis=0)).all()
    scores = np.concatenate([np.sqrt((conv.reshape(-1, 5) ** 2).mean(0)),
                             np.sqrt((dense ** 2).mean(0))])
    expected = np.ones(9, bool)
    expected[np.argsort(scores)[:3]] = False
    np.testing.assert_array_equal(np.concatenate([m.all(axis=0) for m in kept]), expected)
    assert not kept[0][:, 3].any()


def test_pruning_during_fit_reaches_the_target_and_keeps_zeros(tmp_path):
    model = small_model()
    assert [layer.name for layer in prunable_layers(model)] == ["conv", "hidden"]
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = toy_data()
    pruning = MagnitudePruning(PolynomialSparsity(0.8, begin_step=0, end_step=12,
                                                  frequency=4))
    history = model.fit(x, y, batch_size=8, epochs=3, callbacks=[pruning], verbose=0)
    assert [step for step, _, _ in pruning.history] == [0, 4, 8, 12]
    targets = [target for _, target, _ in pruning.history]
    assert targets == sorted(targets) and targets[-1] == pytest.approx(0.8)
    measured = kernel_sparsity(model)
    weights = 3 * 3 * 6 + (6 * 6 * 6) * 16  # conv kernel + hidden kernel
    assert measured["total"] == pytest.approx(int(0.8 * weights) / weights, abs=1e-9)
    assert history.history["sparsity"][-1] == pytest.approx(measured["total"])
    assert kernel_sparsity(model, ["logits"])["logits"] == 0.0  # the logits are left alone
    zeros = {layer.name: keras.ops.convert_to_numpy(layer.kernel) == 0
             for layer in prunable_layers(model)}
    for name, mask in pruning.masks.items():
        np.testing.assert_array_equal(zeros[name], ~mask)
    # more training with the same callback: Adam moves every weight, the mask restores zeros
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[pruning], verbose=0)
    for layer in prunable_layers(model):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel) == 0,
                                      zeros[layer.name])
    model.save(tmp_path / "pruned.keras")
    loaded = keras.saving.load_model(tmp_path / "pruned.keras")
    assert kernel_sparsity(loaded)["total"] == measured["total"]


def test_fine_tuning_holds_the_zeros_of_a_pruned_model():
    model = small_model(1)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = toy_data(32, 1)
    model.fit(x, y, epochs=1, callbacks=[MagnitudePruning(0.5, scope="layer")], verbose=0)
    before = kernel_sparsity(model)
    assert before["conv"] == pytest.approx(27 / 54) and before["hidden"] == pytest.approx(0.5)
    holder = MagnitudePruning.from_zeros(model)
    model.fit(x, y, epochs=2, callbacks=[holder], verbose=0)
    assert kernel_sparsity(model) == before
    # without the holder the zeros are gone after one step
    model.fit(x[:8], y[:8], epochs=1, verbose=0)
    assert kernel_sparsity(model)["total"] < 0.01


def test_structured_pruning_zeroes_filters_and_their_bias():
    model = small_model(2)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = toy_data(32, 2)
    pruning = MagnitudePruning(0.5, structure="filter", scope="layer", layers=["conv"])
    model.fit(x, y, epochs=1, callbacks=[pruning], verbose=0)
    conv = model.get_layer("conv")
    kernel, bias = (keras.ops.convert_to_numpy(v) for v in (conv.kernel, conv.bias))
    dead = ~kernel.reshape(-1, 6).any(axis=0)
    assert dead.sum() == 3 and (bias[dead] == 0).all()
    outputs = keras.Model(model.inputs, conv.output)(x[:4])
    assert (keras.ops.convert_to_numpy(outputs)[..., dead] == 0).all()
    assert kernel_sparsity(model, ["hidden"])["hidden"] == 0.0


def test_bad_arguments_are_value_errors():
    for bad in (1.0, -0.1, "0.5", True):
        with pytest.raises(ValueError):
            MagnitudePruning(bad)
    with pytest.raises(ValueError, match="end_step"):
        PolynomialSparsity(0.5)
    with pytest.raises(ValueError, match="end_step"):
        PolynomialSparsity(0.5, begin_step=10, end_step=10)
    with pytest.raises(ValueError, match="scope"):
        MagnitudePruning(0.5, scope="model")
    with pytest.raises(ValueError, match="structure"):
        MagnitudePruning(0.5, structure="channel")
    model = small_model()
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="not in the model"):
        model.fit(np.zeros((2, 8, 8, 1)), np.zeros((2, 3)), verbose=0,
                  callbacks=[MagnitudePruning(0.5, layers=["nope"])])


def test_prune_once_is_compute_masks_applied_in_place():
    model = small_model(3)
    kernels = [keras.ops.convert_to_numpy(layer.kernel) for layer in prunable_layers(model)]
    from callbacks.pruning import prune_once

    masks = prune_once(model, 0.7, scope="layer")
    for layer, kernel, expected in zip(prunable_layers(model), kernels,
                                       compute_masks(kernels, [np.ones(k.shape, bool)
                                                               for k in kernels], 0.7, "layer")):
        np.testing.assert_array_equal(masks[layer.name], expected)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel),
                                      kernel * expected)
    with pytest.raises(ValueError, match="sparsity"):
        prune_once(model, 1.5)


def test_masks_are_applied_only_once_something_is_pruned(monkeypatch):
    """Before the schedule's first cut the masks are all ones: no per-batch write-back."""
    import callbacks.pruning as pruning_module

    writes = []
    original = pruning_module.apply_masks
    monkeypatch.setattr(pruning_module, "apply_masks",
                        lambda *args: writes.append(1) or original(*args))
    model = small_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = toy_data()
    pruning = MagnitudePruning(ConstantSparsity(0.5, begin_step=6))
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[pruning], verbose=0)  # 8 steps
    assert [step for step, _, _ in pruning.history] == [6]
    # the cut at step 6 (applied once as it is made), then after steps 6 and 7
    assert len(writes) == 3
    assert kernel_sparsity(model)["total"] > 0.49
