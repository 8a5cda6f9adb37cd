"""What every LossLab loss must do, as reusable checks (GUIDE.md §2, the brief's quality bar).

Each check takes a *factory* `make_loss()` (a fresh loss each call) and a *head factory*
`make_head()` (the last layer the loss expects, e.g. a cosine head), and trains a tiny model
on random data, so one line in a loss's test file covers:

- `check_serialization`: `get_config` round trip, `model.save` ->
  `keras.saving.load_model(path, safe_mode=True)` without custom_objects, same predictions,
  same loss value, and training continues;
- `check_policies`: finite loss and gradients under float16 and bfloat16 mixed precision
  and with `jit_compile=True`;
- `check_sample_weight`: a weighted call equals the weighted mean of the per-sample losses
  (Keras' "sum_over_batch_size"), and a zero weight removes a sample.
"""

from __future__ import annotations

import inspect

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


def check_config_complete(loss):
    """`get_config` holds every constructor argument (a clone cannot show a missing one)."""
    parameters = inspect.signature(type(loss).__init__).parameters
    arguments = {name for name, p in parameters.items()
                 if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    missing = arguments - set(loss.get_config())
    assert not missing, f"{type(loss).__name__}.get_config() lacks {sorted(missing)}"


def check_serialization(make_loss, make_head, num_classes, tmp_path):
    loss = make_loss()
    check_config_complete(loss)
    clone = loss.__class__.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()

    x, y = random_data(num_classes)
    model = tiny_model(make_head)
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored.loss) is type(loss)
    assert restored.loss.get_config() == loss.get_config()
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(restored.evaluate(x, y, verbose=0),
                               model.evaluate(x, y, verbose=0), rtol=1e-5)
    history = restored.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def _finite_fit(make_loss, make_head, num_classes, jit_compile=False):
    x, y = random_data(num_classes)
    model = tiny_model(make_head)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=make_loss(), jit_compile=jit_compile)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    losses_seen = np.asarray(history.history["loss"])
    assert np.all(np.isfinite(losses_seen)), losses_seen
    weights = np.concatenate([np.ravel(keras.ops.convert_to_numpy(w)) for w in model.weights])
    assert np.all(np.isfinite(weights.astype("float32")))


def check_policies(make_loss, make_head, num_classes):
    for policy in ("mixed_float16", "mixed_bfloat16"):
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            _finite_fit(make_loss, make_head, num_classes)
        finally:
            keras.config.set_dtype_policy(previous)
    _finite_fit(make_loss, make_head, num_classes, jit_compile=True)


def check_sample_weight(make_loss, y_true, y_pred, seed=0):
    """`y_pred` may be a tensor or a head's dict: the batch size is taken from `y_true`."""
    n = len(y_true)
    per_sample_loss = make_loss()
    per_sample_loss.reduction = None
    per_sample = keras.ops.convert_to_numpy(per_sample_loss(y_true, y_pred))
    assert per_sample.shape == (n,), per_sample.shape
    weights = np.random.default_rng(seed).uniform(0.0, 2.0, size=n).astype("float32")
    weights[0] = 0.0
    weighted = float(make_loss()(y_true, y_pred, sample_weight=weights))
    np.testing.assert_allclose(weighted, np.sum(per_sample * weights) / n, rtol=1e-5)
    unweighted = float(make_loss()(y_true, y_pred))
    np.testing.assert_allclose(unweighted, per_sample.mean(), rtol=1e-5)


def separable_blobs(num_classes, n=96, num_features=NUM_FEATURES, seed=0):
    """Gaussian blobs around random class centres; y = arange(n) % C, so every unshuffled
    batch of a multiple of C samples is a balanced P×K batch."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.normal(size=(num_classes, num_features))
    y = np.arange(n) % num_classes
    return (centres[y] + 0.5 * rng.normal(size=(n, num_features))).astype("float32"), \
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
