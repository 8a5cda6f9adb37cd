"""What every LossLab loss must do, as reusable checks.

A loss is part of the model: Keras saves it with the model (`model.save` writes its class
name and `get_config()`), restores it with `keras.saving.load_model(path, safe_mode=True)`,
applies `sample_weight` to its per-sample values, and runs it inside compiled and XLA
graphs and under mixed precision. Each of those can silently go wrong for a custom loss — a
constructor argument missing from the config comes back at its default, an unregistered
class does not load in safe mode, a loss that reduces by itself ignores `sample_weight`, a
float16 overflow gives NaN — so every loss exported by `losses` is held to these checks by
test_loss_contract_all.py:

- `check_config_complete`, `check_config_round_trip`: `get_config` holds every constructor
  argument (`dtype` included), `from_config` and `keras.losses.serialize`/`deserialize`
  give the same config back;
- `check_dtype`: `dtype=` round-trips through the config and does what Keras' `dtype`
  does: the loss comes out in that dtype, computed from inputs cast to it;
- `check_save_load` (`save_and_load` + `check_restored`): `model.save` ->
  `keras.saving.load_model(path, safe_mode=True)` without `custom_objects`: same loss class
  and config, same predictions, same loss value, and training continues;
- `check_sample_weight`: a weighted call equals the weighted mean of the per-sample losses
  (Keras' "sum_over_batch_size"), and a zero weight removes a sample;
- `finite_fit` (`fit_steps` + `check_finite`): finite losses and weights after a few steps,
  run under the mixed_float16 and mixed_bfloat16 policies and with `jit_compile=True`
  (`POLICY_RUNS`).

The save/load and fit checks take a model and one loss, or a multi-output model and a list
of losses (one per output): one fit then checks many losses, and `check_restored` /
`check_finite` look at one output at a time. The single-loss
forms `check_serialization` / `check_policies` (a loss, its head, class labels) are kept for
the per-family tests.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

import keras

NUM_FEATURES = 8


def tiny_model(make_head, num_features=NUM_FEATURES, seed=0):
    """Dense embedding -> the head; a HeadModel when the head returns a dict."""
    from losses.heads import make_model

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((num_features,))
    embedding = keras.layers.Dense(4, name="embedding")(inputs)
    return make_model(inputs, make_head()(embedding))


def random_data(num_classes, n=32, num_features=NUM_FEATURES, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, num_features)).astype("float32")
    y = (np.arange(n) % num_classes).astype("int64")
    return x, y


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


# --------------------------------------------------------------------------- config and dtype


def check_config_complete(loss):
    """`get_config` holds every constructor argument (a clone cannot show a missing one)."""
    parameters = inspect.signature(type(loss).__init__).parameters
    arguments = {name for name, p in parameters.items()
                 if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    missing = arguments - set(loss.get_config())
    assert not missing, f"{type(loss).__name__}.get_config() lacks {sorted(missing)}"


def check_config_round_trip(loss):
    """Complete config; `from_config` and Keras (de)serialization give it back unchanged."""
    check_config_complete(loss)
    config = loss.get_config()
    clone = type(loss).from_config(config)
    assert type(clone) is type(loss) and clone.get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss) and restored.get_config() == config


def _round_to(value, dtype):
    """Float arrays (or a dict of them) rounded to `dtype` and back to float32."""
    if isinstance(value, dict):
        return {k: _round_to(v, dtype) for k, v in value.items()}
    value = np.asarray(_numpy(value))
    if not np.issubdtype(value.dtype, np.floating):
        return value
    return value.astype(dtype).astype("float32")


def check_dtype(loss, y_true, y_pred, dtype="float16"):
    """`dtype=` round-trips through the config and behaves as in Keras' losses.

    Keras casts y_true, y_pred and the result to the loss's dtype; the loss computes in
    float32 in between. So the per-sample values of the `dtype` clone must equal the float32
    loss of the inputs rounded to `dtype`, up to the final rounding (rtol 1e-3 for float16,
    whose unit roundoff is 2^-11).
    """
    config = {**loss.get_config(), "dtype": dtype}
    clone = type(loss).from_config(config)
    assert clone.dtype == dtype, clone.dtype
    assert clone.get_config() == config
    restored = keras.losses.deserialize(keras.losses.serialize(clone))
    assert restored.dtype == dtype and restored.get_config()["dtype"] == dtype

    clone.reduction = None
    reference = type(loss).from_config({**loss.get_config(), "reduction": None})
    got = _numpy(clone(y_true, y_pred))
    assert got.dtype == np.dtype(dtype), got.dtype
    expected = _numpy(reference(_round_to(y_true, dtype), _round_to(y_pred, dtype)))
    assert np.all(np.isfinite(expected)), expected
    np.testing.assert_allclose(got.astype("float32"), expected, rtol=1e-3, atol=1e-6)


# --------------------------------------------------------------------------- save and load


@dataclass
class SaveLoadRun:
    """What `save_and_load` did: per model output, the loss, its targets and outputs."""

    losses: list
    restored_losses: list
    y: list
    outputs: list
    restored_outputs: list
    history: dict  # of the restored model's fit
    output_names: list


def _loss_inputs(model, x):
    """What the model hands its loss for `x`: its outputs, plus the content of a cross-batch
    memory (`losses.memory`) when it holds one."""
    outputs = model(x)
    memory = model.memory_head() if hasattr(model, "memory_head") else None
    return outputs if memory is None else {**outputs, **memory.memory_inputs()}


def save_and_load(model, loss, x, y, tmp_path, run_eagerly=False):
    """Fit one epoch, save, load with `safe_mode=True` (no custom_objects), fit again.

    `loss` and `y` are one loss and its targets, or lists with one entry per model output.
    `run_eagerly` skips graph tracing (the compiled graphs are what `finite_fit` checks).
    The comparisons are `check_restored`'s.
    """
    losses_ = _as_list(loss)
    model.compile(optimizer="adam", loss=loss, run_eagerly=run_eagerly)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    outputs, restored_outputs = _as_list(_loss_inputs(model, x)), _as_list(
        _loss_inputs(restored, x))
    restored.run_eagerly = run_eagerly
    history = restored.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    names = list(model.output_names) if len(losses_) > 1 else [None]
    return SaveLoadRun(losses_, _as_list(restored.loss), _as_list(y), outputs,
                       restored_outputs, history, names)


def check_restored(run, index=0):
    """Output `index` of a `save_and_load` run: the restored loss has the class and config of
    the original, the restored model gives the same output and the same loss value on it,
    and the restored model trains with finite losses."""
    assert len(run.restored_losses) == len(run.losses)
    original, got = run.losses[index], run.restored_losses[index]
    what = type(original).__name__
    assert type(got) is type(original), (type(got), type(original))
    assert got.get_config() == original.get_config(), what
    out, restored_out = run.outputs[index], run.restored_outputs[index]
    for a, b in zip(keras.tree.flatten(out), keras.tree.flatten(restored_out)):
        np.testing.assert_allclose(_numpy(b), _numpy(a), rtol=1e-5, atol=1e-6, err_msg=what)
    y = run.y[index]
    np.testing.assert_allclose(float(got(y, restored_out)), float(original(y, out)),
                               rtol=1e-5, err_msg=what)
    _check_history(run.history, run.output_names[index])


def check_save_load(model, loss, x, y, tmp_path, run_eagerly=False):
    """`save_and_load`, then `check_restored` for every output. Returns the run."""
    run = save_and_load(model, loss, x, y, tmp_path, run_eagerly)
    for index in range(len(run.losses)):
        check_restored(run, index)
    return run


def check_serialization(make_loss, make_head, num_classes, tmp_path):
    """One loss on a tiny model ending in its head, trained on class labels: config round
    trip, then save/load in compiled mode, with `predict` and `evaluate` compared too."""
    check_config_round_trip(make_loss())
    x, y = random_data(num_classes)
    model = tiny_model(make_head)
    check_save_load(model, make_loss(), x, y, tmp_path)
    restored = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(restored.evaluate(x, y, verbose=0),
                               model.evaluate(x, y, verbose=0), rtol=1e-5)


# --------------------------------------------------------------------------- policies


def _check_history(history, output_name=None):
    """Finite values in the history: every key, or those of one output of a multi-output fit."""
    keys = list(history) if output_name is None else [f"{output_name}_loss"]
    for key in keys:
        assert key in history, (key, sorted(history))
        assert np.all(np.isfinite(history[key])), (key, history[key])


def fit_steps(model, loss, x, y, jit_compile=False):
    """Two epochs of SGD (build `model` under the policy to check); returns the history."""
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss, jit_compile=jit_compile)
    return model.fit(x, y, epochs=2, batch_size=16, verbose=0).history


def check_finite(model, history, output_name=None):
    """After `fit_steps`: finite losses in the history and finite weights — all of them, or
    those of one output (its history entry and the layers named `output_name` or
    `output_name` + "_...")."""
    _check_history(history, output_name)
    for weight in model.weights:
        if output_name is not None and not (weight.path.startswith(f"{output_name}/")
                                            or weight.path.startswith(f"{output_name}_")):
            continue
        assert np.all(np.isfinite(_numpy(weight).astype("float32"))), weight.path


def finite_fit(model, loss, x, y, jit_compile=False):
    """`fit_steps`, then every loss in the history and every weight must be finite."""
    history = fit_steps(model, loss, x, y, jit_compile)
    check_finite(model, history)
    return history


def check_policies(make_loss, make_head, num_classes):
    """Finite fits under mixed_float16, mixed_bfloat16 and float32 with jit_compile=True."""
    x, y = random_data(num_classes)
    for policy, jit_compile in POLICY_RUNS:
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            finite_fit(tiny_model(make_head), make_loss(), x, y, jit_compile=jit_compile)
        finally:
            keras.config.set_dtype_policy(previous)


# The policy runs of the contract: (dtype policy, jit_compile). Both mixed-precision policies
# in a compiled graph, and XLA (on TensorFlow; JAX always compiles with XLA) in float32.
POLICY_RUNS = (("mixed_float16", False), ("mixed_bfloat16", False), ("float32", True))


# --------------------------------------------------------------------------- sample_weight


def check_sample_weight(make_loss, y_true, y_pred, seed=0):
    """`y_pred` may be a tensor or a head's dict: the batch size is taken from `y_true`."""
    n = len(y_true)
    per_sample_loss = make_loss()
    per_sample_loss.reduction = None
    per_sample = _numpy(per_sample_loss(y_true, y_pred))
    assert per_sample.shape == (n,), per_sample.shape
    weights = np.random.default_rng(seed).uniform(0.0, 2.0, size=n).astype("float32")
    weights[0] = 0.0
    weighted = float(make_loss()(y_true, y_pred, sample_weight=weights))
    np.testing.assert_allclose(weighted, np.sum(per_sample * weights) / n, rtol=1e-5)
    unweighted = float(make_loss()(y_true, y_pred))
    np.testing.assert_allclose(unweighted, per_sample.mean(), rtol=1e-5)


# --------------------------------------------------------------------------- training


def separable_blobs(num_classes, n=96, num_features=NUM_FEATURES, seed=0):
    """Gaussian blobs around random class centers; y = arange(n) % C, so every unshuffled
    batch of a multiple of C samples is a balanced P×K batch."""
    rng = np.random.default_rng(seed)
    centers = 3.0 * rng.normal(size=(num_classes, num_features))
    y = np.arange(n) % num_classes
    return (centers[y] + 0.5 * rng.normal(size=(n, num_features))).astype("float32"), \
        y.astype("int64")


def check_fits_integer_labels(make_loss, make_head, num_classes, learning_rate=0.05, epochs=6,
                              batch_size=16):
    """A model ending in the head trains on plain integer labels with `fit(x, y)`: the loss
    falls, `accuracy` reaches 0.9, and `evaluate`'s accuracy is the argmax of `predict`."""
    from losses.head_model import HeadModel

    x, y = separable_blobs(num_classes)
    model = tiny_model(make_head)
    if isinstance(model.output, dict):
        assert isinstance(model, HeadModel)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=make_loss(),
                  metrics=["accuracy"])
    history = model.fit(x, y, batch_size=batch_size, shuffle=False, epochs=epochs,
                        verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
    assert history["accuracy"][-1] >= 0.9
    scores = model.predict(x, verbose=0)
    assert scores.shape == (len(x), num_classes)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0)[1],
                               np.mean(np.argmax(scores, -1) == y), atol=1e-6)
