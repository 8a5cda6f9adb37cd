"""Tests for losses/head_model.py: one integer label array through a dict-output head, metrics
and predict on the scores, save/load with safe_mode, the inference sub-model, jit_compile, and
`HeadOutputLoss`, the base of the losses that read head outputs."""

import keras
import numpy as np
import pytest
from keras import ops

from losses import margin as mg
from losses.head_model import HeadModel, HeadOutputLoss, head_keys, head_outputs
from losses.heads import LargeMarginHead, SphereHead, build_head, make_model

C = 4
FEATURES = 8


def blobs(n=64, seed=0):
    """Four well-separated Gaussian classes in 8-D, integer labels."""
    rng = np.random.default_rng(seed)
    centers = 3.0 * rng.normal(size=(C, FEATURES))
    y = np.arange(n) % C
    x = centers[y] + 0.5 * rng.normal(size=(n, FEATURES))
    return x.astype("float32"), y.astype("int64")


def backbone(seed=0, regularizer=None):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((FEATURES,), name="features")
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    embedding = keras.layers.Dense(3, name="embedding", kernel_regularizer=regularizer)(hidden)
    return keras.Model(inputs, embedding, name="backbone")


def sphere_model(seed=0, **kwargs):
    return HeadModel.from_backbone(backbone(seed, **kwargs), SphereHead(C, name="sphere"))


def np_accuracy(scores, y):
    return float(np.mean(np.argmax(scores, axis=-1) == y))


def np_ce(labels, logits):
    z = np.asarray(logits, "float64")
    z = z - z.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A SphereFace HeadModel fitted with integer labels, and its saved copy."""
    x, y = blobs()
    model = sphere_model()
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=mg.SphereFaceLoss(margin=2),
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    path = tmp_path_factory.mktemp("head_model") / "model.keras"
    model.save(path)
    return model, history, path, x, y


def test_fit_with_integer_labels_learns(trained):
    model, history, _, x, y = trained
    losses_seen = history.history["loss"]
    assert np.all(np.isfinite(losses_seen)) and losses_seen[-1] < losses_seen[0]
    # the step counter of the head advanced once per training batch: 8 epochs x 4 batches
    assert float(ops.convert_to_numpy(model.get_layer("sphere").step)) == 32.0
    assert np_accuracy(model.predict(x, verbose=0), y) > 0.9


def test_accuracy_metric_equals_numpy_accuracy_of_predict(trained):
    model, _, _, x, y = trained
    scores = model.predict(x, verbose=0)
    assert isinstance(scores, np.ndarray) and scores.shape == (len(x), C)
    result = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert result["accuracy"] == pytest.approx(np_accuracy(scores, y), abs=1e-6)
    np.testing.assert_allclose(model.predict_on_batch(x[:5]), scores[:5], rtol=1e-5, atol=1e-6)
    outputs = model(x[:5])  # calling the model gives the whole head-output dict
    assert sorted(outputs) == ["cos", "scores", "step", "x_norm"]


def test_save_load_safe_mode_round_trip_and_continue_training(trained):
    model, _, path, x, y = trained
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is HeadModel and type(restored.loss) is mg.SphereFaceLoss
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(restored.evaluate(x, y, verbose=0),
                               model.evaluate(x, y, verbose=0), rtol=1e-6)
    assert float(ops.convert_to_numpy(restored.get_layer("sphere").step)) == 32.0
    history = restored.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert float(ops.convert_to_numpy(restored.get_layer("sphere").step)) == 36.0
    embedding = keras.Model(restored.inputs, restored.get_layer("embedding").output)
    assert embedding.predict(x[:3], verbose=0).shape == (3, 3)


def test_inference_model_gives_the_same_scores_and_reloads(trained, tmp_path):
    model, _, _, x, _ = trained
    inference = model.inference_model()
    assert not isinstance(inference, HeadModel) and len(inference.outputs) == 1
    np.testing.assert_allclose(inference.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    inference.save(tmp_path / "inference.keras")
    reloaded = keras.saving.load_model(tmp_path / "inference.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.tensorflow
def test_export_serves_scores_from_the_input_alone(trained, tmp_path):
    # Keras exports a SavedModel through TensorFlow, so this test needs it (the JAX run of
    # `make test` deselects it: its venv has no TensorFlow).
    import tensorflow as tf

    model, _, _, x, _ = trained
    model.export(str(tmp_path / "exported"), verbose=False)
    exported = tf.saved_model.load(str(tmp_path / "exported"))  # keep a reference (TF gc)
    served = exported.serve(x)
    np.testing.assert_allclose(np.asarray(served), model.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)


def test_jit_compile_fit_matches_the_graph_fit():
    x, y = blobs()
    runs = []
    for jit in (False, True):
        model = HeadModel.from_backbone(backbone(seed=1), LargeMarginHead(C, name="lm"))
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=mg.LargeMarginSoftmaxLoss(),
                      metrics=["accuracy"], jit_compile=jit)
        runs.append(model.fit(x, y, epochs=2, batch_size=16, verbose=0).history)
    assert np.all(np.isfinite(runs[1]["loss"]))
    np.testing.assert_allclose(runs[1]["loss"], runs[0]["loss"], rtol=1e-4)
    np.testing.assert_allclose(runs[1]["accuracy"], runs[0]["accuracy"])


def test_plain_keras_loss_and_one_hot_labels_get_the_scores():
    x, y = blobs(n=32)
    model = HeadModel.from_backbone(backbone(seed=2), LargeMarginHead(C, name="lm"))
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    one_hot = np.eye(C)[y]
    model.fit(x, one_hot, epochs=1, batch_size=16, verbose=0)
    result = model.evaluate(x, one_hot, batch_size=32, verbose=0, return_dict=True)
    scores = model.predict(x, verbose=0)
    assert result["loss"] == pytest.approx(np_ce(y, scores).mean(), rel=1e-5)
    assert result["accuracy"] == pytest.approx(np_accuracy(scores, y), abs=1e-6)


def test_model_regularisation_losses_are_added_to_a_head_output_loss():
    x, y = blobs(n=16)
    model = sphere_model(seed=3, regularizer=keras.regularizers.L2(0.1))
    loss = mg.SphereFaceLoss(margin=3, lambda_gamma=0.0, lambda_base=1.0)
    model.compile(optimizer="sgd", loss=loss)
    expected = float(loss(y, model(x))) + 0.1 * float(
        np.sum(ops.convert_to_numpy(model.get_layer("embedding").kernel) ** 2))
    assert model.evaluate(x, y, batch_size=16, verbose=0) == pytest.approx(expected, rel=1e-5)


def test_make_model_picks_the_model_class():
    inputs = keras.Input((FEATURES,))
    embedding = keras.layers.Dense(3, name="embedding")(inputs)
    plain = make_model(inputs, build_head("cosine", C)(embedding))
    assert type(plain) is not HeadModel and plain.output.shape == (None, C)
    with_dict = make_model(inputs, build_head("large_margin", C)(embedding), name="net")
    assert type(with_dict) is HeadModel and with_dict.name == "net"


def test_head_model_needs_a_dict_with_scores():
    inputs = keras.Input((FEATURES,))
    embedding = keras.layers.Dense(3)(inputs)
    with pytest.raises(ValueError, match="dict with a 'scores' entry; got Keras"):
        HeadModel(inputs, build_head("cosine", C)(embedding))
    with pytest.raises(ValueError, match=r"dict with a 'scores' entry; got \['cos'\]"):
        HeadModel(inputs, {"cos": build_head("cosine", C)(embedding)})


def test_a_loss_missing_its_keys_fails_at_fit_with_the_head_it_needs():
    x, y = blobs(n=16)
    model = sphere_model(seed=4)
    model.compile(optimizer="sgd", loss=mg.LargeMarginSoftmaxLoss())
    with pytest.raises(ValueError, match=r"needs 'cos', 'norm', 'step' from a 'large_margin' "
                                         r"head; got keys \['cos', 'scores', 'step', 'x_norm'\]"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)


def test_head_outputs_helper():
    values = {"scores": 1, "cos": 2}
    assert head_outputs(values, ("cos", "scores"), "MyLoss", "a 'cosine' head") == [2, 1]
    with pytest.raises(ValueError, match=r"MyLoss needs 'dist' from a 'center' head; got keys "
                                         r"\['cos', 'scores'\]"):
        head_outputs(values, ("dist",), "MyLoss", "a 'center' head")


class NormTimesCosLoss(HeadOutputLoss):
    """A head-output loss written here: mean over classes of norm·cos, per sample."""

    head_keys = ("cos", "norm")
    head_hint = "a 'large_margin' head"

    def call(self, y_true, y_pred):
        cos, norm = self.head_values(y_pred)
        return ops.mean(ops.cast(cos, "float32") * ops.cast(norm, "float32"), axis=-1)


class FirstColumnLoss(HeadOutputLoss):
    head_keys = ("cos",)
    tensor_key = "cos"
    head_hint = "a 'cosine' head"

    def call(self, y_true, y_pred):
        (cos,) = self.head_values(y_pred)
        return ops.cast(cos[:, 0], "float32")


def test_head_output_loss_reads_its_keys_in_order_and_names_what_is_missing():
    rng = np.random.default_rng(5)
    cos = rng.uniform(-1, 1, (3, C)).astype("float32")
    norm = rng.uniform(0, 2, (3, C)).astype("float32")
    loss = NormTimesCosLoss(reduction=None)
    assert head_keys(loss) == ("cos", "norm")
    got = ops.convert_to_numpy(loss(np.zeros(3), {"norm": norm, "cos": cos, "scores": cos}))
    np.testing.assert_allclose(got, (cos.astype("float64") * norm).mean(-1), rtol=1e-5,
                               atol=1e-7)
    with pytest.raises(ValueError, match=r"NormTimesCosLoss needs 'cos', 'norm' from a "
                                         r"'large_margin' head; got keys \['cos', 'scores'\]"):
        loss(np.zeros(3), {"cos": cos, "scores": cos})
    with pytest.raises(ValueError, match=r"NormTimesCosLoss needs 'cos', 'norm' .* single tensor "
                                         r"of shape \(3, 4\)"):
        loss(np.zeros(3), cos)  # no tensor_key: a plain tensor is refused
    # with a tensor_key, a plain tensor stands for that output
    first = FirstColumnLoss(reduction=None)
    np.testing.assert_allclose(ops.convert_to_numpy(first(np.zeros(3), cos)), cos[:, 0],
                               rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(first(np.zeros(3), {"cos": cos})),
                               cos[:, 0], rtol=1e-6)


def test_a_head_model_hands_a_head_output_loss_the_whole_dict():
    x, y = blobs(n=16)
    model = HeadModel.from_backbone(backbone(seed=5), LargeMarginHead(C, name="lm"))
    model.compile(optimizer="sgd", loss=NormTimesCosLoss())
    outputs = model(x)
    expected = np.mean(ops.convert_to_numpy(outputs["cos"]) * ops.convert_to_numpy(
        outputs["norm"]))
    assert model.evaluate(x, y, batch_size=16, verbose=0) == pytest.approx(expected, rel=1e-5)

