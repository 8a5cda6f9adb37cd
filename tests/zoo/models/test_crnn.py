"""zoo.models.crnn (CRNN models, decoding, save/load, export), zoo.charset and zoo.evaluation.text.

References written here: parameter counts from the layer formulas, a memoised recursive
edit distance (a different formulation from the iterative DP under test), and a NumPy
best-path CTC decoder.
"""

from __future__ import annotations

import numpy as np
import pytest

import keras
import zoo.models.crnn  # noqa: F401  (registers crnn, crnn_small)
from losses.sequence import CTCLoss, ctc_greedy_decode, min_frames
from zoo.evaluation import text as M
from zoo.charset import LOWERCASE_ALPHANUMERIC, Charset
from zoo.models.crnn import (CTCDecoder, CTCLogits, build_inference_model, charset_of, crnn_frames,
                      decode_logits, decode_logits_scored, export_recognizer, recognize)
from zoo.datasets import text as T
from zoo.registry import create_model, list_models
from text_references import reference_edit_distance

DIGITS = Charset("0123456789")
TEXTS = ("4073", "5896")
WIDTH = 64                 # T = 15 frames


def numpy(x):
    return keras.ops.convert_to_numpy(x)


# ---------------------------------------------------------------- independent references

def reference_greedy(logits, blank=0):
    rows = []
    for frames in np.asarray(logits):
        path = frames.argmax(-1)
        rows.append([int(k) for j, k in enumerate(path)
                     if k != blank and (j == 0 or k != path[j - 1])])
    return rows


def conv_params(k, c_in, c_out):
    return (k * k * c_in + 1) * c_out


def lstm_params(c_in, units):  # Keras LSTM: 4 gates, one bias vector
    return 4 * (units * (c_in + units) + units)


def expected_crnn_params(filters, units, num_classes):
    widths = (1,) + tuple(filters)
    convs = sum(conv_params(3 if i < 6 else 2, widths[i], widths[i + 1]) for i in range(7))
    batch_norms = 4 * (filters[4] + filters[5])          # γ, β, moving mean, moving variance
    rnn = (2 * lstm_params(filters[6], units) + (2 * units + 1) * units
           + 2 * lstm_params(units, units) + (2 * units + 1) * num_classes)
    return convs + batch_norms + rnn


# ---------------------------------------------------------------- models

def test_registry_has_both_models():
    assert {"crnn", "crnn_small"} <= set(list_models("crnn*"))


def test_crnn_matches_the_paper():
    model = create_model("crnn")  # 36 lowercase alphanumerics + blank, as in the paper
    expected = expected_crnn_params((64, 128, 256, 256, 512, 512, 512), 256, 37)
    assert expected == 8_328_741  # "about 8.3 M" (Shi, Bai, Yao 2015, §3.3)
    assert model.count_params() == expected
    assert model.input_shape == (None, 32, None, 1)
    assert model.output_shape == (None, None, 37)
    assert model.get_layer("conv7").output.shape[1] == 1    # one feature row per column
    assert model.get_layer("map_to_sequence").output.shape[-1] == 512
    assert charset_of(model) == Charset(LOWERCASE_ALPHANUMERIC)


def test_crnn_small_parameters_frames_and_variable_width():
    model = create_model("crnn_small", charset=DIGITS)
    assert model.count_params() == expected_crnn_params((16, 32, 64, 64, 128, 128, 128), 64,
                                                        11)
    assert expected_crnn_params((16, 32, 64, 64, 128, 128, 128), 64, 37) == 526_245
    for width in (40, 64, 100, 128, 131):
        logits = model(np.zeros((2, 32, width, 1), "float32"))
        assert tuple(logits.shape) == (2, crnn_frames(width), 11)
        assert logits.dtype == "float32"
    assert crnn_frames(100) == 24 and crnn_frames(128) == 31


def test_fixed_width_and_taller_inputs():
    fixed = create_model("crnn_small", charset=DIGITS, input_shape=(32, 96, 1))
    assert fixed.output_shape == (None, crnn_frames(96), 11)
    tall = create_model("crnn_small", charset=DIGITS, input_shape=(64, None, 3))
    assert tall.get_layer("conv7").output.shape[1] == 1   # one feature row at any height
    assert tuple(tall(np.zeros((1, 64, 48, 3), "float32")).shape) == (1, crnn_frames(48), 11)


def reference_paper_cnn_rnn(filters, units, num_classes):
    """The paper's Table 1 at 32 px, layer by layer (pool6 a fixed 2x1): the 32-px model
    must be exactly this network."""
    layers = keras.layers
    inputs = keras.Input((32, None, 1))
    x = inputs
    for i, (n, pool) in enumerate(zip(filters, [(2, 2), (2, 2), None, (2, 1), None, (2, 1),
                                                None])):
        x = layers.Conv2D(n, 2 if i == 6 else 3, padding="valid" if i == 6 else "same")(x)
        if i in (4, 5):
            x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPooling2D(pool, strides=pool)(x)
    x = layers.Reshape((-1, filters[6]))(layers.Permute((2, 1, 3))(x))
    x = layers.Dense(units)(layers.Bidirectional(layers.LSTM(units, return_sequences=True))(x))
    x = layers.Bidirectional(layers.LSTM(units, return_sequences=True))(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x))


def test_32_px_model_is_unchanged_by_the_height_parameter():
    keras.utils.set_random_seed(0)
    model = create_model("crnn_small", charset=DIGITS)
    reference = reference_paper_cnn_rnn((16, 32, 64, 64, 128, 128, 128), 64, 11)
    assert model.count_params() == reference.count_params()
    reference.set_weights(model.get_weights())
    images = np.random.default_rng(0).uniform(size=(2, 32, 72, 1)).astype("float32")
    np.testing.assert_allclose(numpy(model(images)), numpy(reference(images)), atol=1e-5)


@pytest.mark.parametrize("height", [32, 48, 64, 80])
def test_every_supported_height_collapses_to_one_row(height):
    keras.utils.set_random_seed(1)
    model = create_model("crnn_small", charset=DIGITS, input_shape=(height, None, 1))
    assert model.input_shape == (None, height, None, 1)
    # the same weights at every height: a 32-px model's weights load as they are
    assert model.count_params() == expected_crnn_params(
        (16, 32, 64, 64, 128, 128, 128), 64, 11)
    assert model.get_layer("conv7").output.shape[1] == 1
    assert model.get_layer("map_to_sequence").output.shape[-1] == 128
    images = np.random.default_rng(height).uniform(size=(1, height, 64, 1)).astype("float32")
    logits = numpy(model(images))
    assert logits.shape == (1, crnn_frames(64), 11)
    # every row of the image reaches the features: the top and the bottom rows included
    for row in (0, height - 1):
        changed = images.copy()
        changed[:, row] = 1.0 - changed[:, row]
        assert np.abs(numpy(model(changed)) - logits).max() > 1e-6, row


def test_a_taller_model_saves_and_loads(tmp_path):
    model = create_model("crnn_small", charset=DIGITS, input_shape=(48, None, 1))
    model.save(tmp_path / "tall.keras")
    loaded = keras.saving.load_model(tmp_path / "tall.keras", safe_mode=True)
    images = np.random.default_rng(0).uniform(size=(1, 48, 40, 1)).astype("float32")
    np.testing.assert_allclose(numpy(loaded(images)), numpy(model(images)), atol=1e-6)
    assert loaded.input_shape == (None, 48, None, 1) and charset_of(loaded) == DIGITS


def test_default_synthetic_width_gives_feasible_alignments():
    frames = crnn_frames(T.WIDTH)
    assert frames >= 2 * T.MAX_LENGTH + 1
    labels = T.SyntheticText(num_samples=64, batch_size=64)[0][1]
    assert int(np.max(numpy(min_frames(labels)))) <= frames


def test_logits_are_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    model = create_model("crnn_small", charset=DIGITS)
    assert model(np.zeros((1, 32, 32, 1), "float32")).dtype == "float32"


def test_builder_argument_errors():
    with pytest.raises(ValueError, match="does not match the charset"):
        create_model("crnn_small", num_classes=5, charset=DIGITS)
    with pytest.raises(ValueError, match="height of at least 32"):
        create_model("crnn_small", input_shape=(16, None, 1))
    for height in (40, 56, 33):   # the poolings' floor rounding would drop the bottom rows
        with pytest.raises(ValueError, match="multiple of 16"):
            create_model("crnn_small", input_shape=(height, None, 1))
    with pytest.raises(ValueError, match=r"\(height, width, channels\)"):
        create_model("crnn_small", input_shape=(32, 100))
    bare = create_model("crnn_small", num_classes=7)
    assert bare.output_shape == (None, None, 7)
    with pytest.raises(ValueError, match="carries no charset"):
        charset_of(bare)
    with pytest.raises(ValueError, match="does not match the charset"):
        CTCLogits(5, charset="abc")
    with pytest.raises(ValueError, match="strategy must be one of"):
        CTCDecoder("best")


# ---------------------------------------------------------------- charset

def test_charset_round_trip_and_padding():
    charset = Charset("0123456789abc")
    assert charset.num_classes == 14 and len(charset) == 13
    assert charset.encode("0a9") == [1, 11, 10]  # ids start at 1: 0 is the blank
    for text in ("", "c", "abc0123", "cab"):
        assert charset.decode(charset.encode(text)) == text
    batch = charset.encode_batch(["ab", "", "c01"])
    np.testing.assert_array_equal(batch, [[11, 12, -1], [-1, -1, -1], [13, 1, 2]])
    assert batch.dtype == np.int32
    assert charset.decode_batch(batch) == ["ab", "", "c01"]
    assert charset.decode([11, 0, 12, -1, -1]) == "ab"     # blank and padding skipped
    assert charset.encode_batch(["a"], max_length=4).shape == (1, 4)
    restored = Charset.from_config(charset.get_config())
    assert restored == charset and restored.characters == charset.characters
    assert keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(charset)) == charset
    assert Charset.from_texts(["ba", "ca"]).characters == "abc"


def test_charset_errors():
    charset = Charset("abc")
    with pytest.raises(ValueError, match=r"character 'x' \(position 1 of 'axb'\)"):
        charset.encode("axb")
    with pytest.raises(ValueError, match="unique"):
        Charset("abca")
    with pytest.raises(ValueError, match="at least one character"):
        Charset("")
    with pytest.raises(ValueError, match="id 4 is outside the charset"):
        charset.decode([1, 4])
    with pytest.raises(ValueError, match="max_length is 2"):
        charset.encode_batch(["abc"], max_length=2)


# ---------------------------------------------------------------- metrics

def test_edit_distance_hand_cases_and_reference():
    cases = {("kitten", "sitting"): 3, ("flaw", "lawn"): 2, ("", "abc"): 3, ("abc", ""): 3,
             ("abc", "abc"): 0, ("ab", "ba"): 2, ("a", "b"): 1}
    for (a, b), distance in cases.items():
        assert M.edit_distance(a, b) == distance == reference_edit_distance(a, b)
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.integers(0, 3, size=rng.integers(0, 7)).tolist()
        b = rng.integers(0, 3, size=rng.integers(0, 7)).tolist()
        assert M.edit_distance(a, b) == reference_edit_distance(a, b)


def test_cer_and_sequence_accuracy_by_hand():
    references, hypotheses = ["abc", "de", "f"], ["abd", "d", "f"]
    # edits: 1 (c->d) + 1 (drop e) + 0 = 2 over 3 + 2 + 1 = 6 reference characters
    assert M.character_error_rate(references, hypotheses) == pytest.approx(2 / 6)
    assert M.sequence_accuracy(references, hypotheses) == pytest.approx(1 / 3)
    ids_ref = np.array([[1, 2, 3], [4, 5, -1], [6, -1, -1]])
    ids_hyp = np.array([[1, 2, 4, -1], [4, -1, -1, -1], [6, -1, -1, -1]])
    assert M.character_error_rate(ids_ref, ids_hyp) == pytest.approx(2 / 6)
    assert M.sequence_accuracy(ids_ref, ids_hyp) == pytest.approx(1 / 3)
    assert M.character_error_rate(["", ""], ["", "ab"]) == 2.0  # no reference characters
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        M.character_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="not one string"):
        M.sequence_accuracy("abc", "abc")


def random_batch(seed, batch=7, steps=9, classes=4, max_label=5):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, steps, classes)).astype("float32")
    labels = np.full((batch, max_label), -1, "int32")
    for i in range(batch):
        n = rng.integers(0, max_label + 1)
        labels[i, :n] = rng.integers(1, classes, size=n)
    decoded = reference_greedy(logits)
    labels[0, :] = -1                                   # an empty reference
    labels[1, :len(decoded[1][:max_label])] = decoded[1][:max_label]  # likely exact matches
    labels[1, len(decoded[1][:max_label]):] = -1
    return logits, labels, decoded


@pytest.mark.parametrize("seed", [0, 1])
def test_ops_decoding_and_edit_distance_match_references(seed):
    logits, labels, decoded = random_batch(seed)
    ids = numpy(M.greedy_decode_ids(logits))
    assert [[int(k) for k in row if k != -1] for row in ids] == decoded
    np.testing.assert_array_equal(ids, numpy(ctc_greedy_decode(logits)[0]))
    distances = numpy(M.batch_edit_distance(labels, ids))
    expected = [reference_edit_distance([k for k in row if k != -1], hyp)
                for row, hyp in zip(labels, decoded)]
    np.testing.assert_array_equal(distances, expected)


@pytest.mark.tensorflow
@pytest.mark.parametrize("jit", [False, True])
def test_keras_metrics_equal_the_plain_functions(jit):
    import tensorflow as tf

    logits, labels, decoded = random_batch(2)
    references = [[int(k) for k in row if k != -1] for row in labels]
    cer, accuracy = M.CharacterErrorRate(), M.SequenceAccuracy()

    @tf.function(jit_compile=jit)  # metrics run inside the compiled train step
    def update(y_true, y_pred):
        cer.update_state(y_true, y_pred)
        accuracy.update_state(y_true, y_pred)

    update(tf.constant(labels[:4]), tf.constant(logits[:4]))   # two batches accumulate
    update(tf.constant(labels[4:]), tf.constant(logits[4:]))
    expected_cer = (sum(reference_edit_distance(r, h) for r, h in zip(references, decoded))
                    / sum(len(r) for r in references))
    assert float(cer.result()) == pytest.approx(expected_cer, rel=1e-6)
    assert float(cer.result()) == pytest.approx(M.character_error_rate(references, decoded))
    assert float(accuracy.result()) == pytest.approx(M.sequence_accuracy(references, decoded))
    assert float(accuracy.result()) > 0       # the batch holds exact matches
    cer.reset_state()
    accuracy.reset_state()
    assert float(cer.result()) == 0.0 and float(accuracy.result()) == 0.0


def test_keras_metrics_sample_weight_and_config():
    logits, labels, decoded = random_batch(3)
    references = [[int(k) for k in row if k != -1] for row in labels]
    weights = np.linspace(0.0, 2.0, len(labels)).astype("float32")
    cer = M.CharacterErrorRate()
    cer.update_state(labels, logits, sample_weight=weights)
    edits = [reference_edit_distance(r, h) for r, h in zip(references, decoded)]
    expected = (np.dot(weights, edits) / np.dot(weights, [len(r) for r in references]))
    assert float(cer.result()) == pytest.approx(expected, rel=1e-6)
    accuracy = M.SequenceAccuracy()
    accuracy.update_state(labels, logits, sample_weight=weights)
    exact = [e == 0 for e in edits]
    assert float(accuracy.result()) == pytest.approx(np.dot(weights, exact) / weights.sum())
    for metric in (M.CharacterErrorRate(pad_value=-2, name="c"), M.SequenceAccuracy()):
        clone = type(metric).from_config(metric.get_config())
        assert clone.get_config() == metric.get_config()
    with pytest.raises(ValueError, match="y_pred must have shape"):
        M.CharacterErrorRate().update_state(labels, logits[:, 0])
    with pytest.raises(ValueError, match="pad_value must be"):
        M.SequenceAccuracy(pad_value=3)


# ---------------------------------------------------------------- training, inference, saving

@pytest.fixture(scope="module")
def trained():
    """crnn_small trained on two fixed images until it reads them (blank = 0 in the loss
    and in the decoders: a mismatch would never decode the labels)."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    images = np.stack([T.render_text_line(t, augment=False, width=WIDTH) for t in TEXTS])
    images = images[..., None].astype("float32") / 255.0
    steps, batch = 160, 8
    x = np.tile(images, (steps * batch // 2, 1, 1, 1))
    y = np.tile(DIGITS.encode_batch(TEXTS), (steps * batch // 2, 1))
    model = create_model("crnn_small", charset=DIGITS)
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, steps)),
                  loss=CTCLoss(),
                  metrics=[M.CharacterErrorRate(), M.SequenceAccuracy()])
    history = model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    return model, images, history.history


def test_training_on_fixed_strings_decodes_them(trained):
    model, images, history = trained
    assert set(history) == {"loss", "cer", "sequence_accuracy"}
    assert np.isfinite(history["loss"][-1])
    assert recognize(model, images) == list(TEXTS)
    assert recognize(model, images, strategy="beam", beam_width=8) == list(TEXTS)
    logits = model.predict(images, verbose=0)
    assert M.character_error_rate(list(TEXTS), DIGITS.decode_batch(M.greedy_decode_ids(
        logits))) == 0.0


def test_inference_model_and_keras_round_trip(trained, tmp_path):
    model, images, _ = trained
    path = tmp_path / "crnn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert charset_of(loaded) == DIGITS
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               model.predict(images, verbose=0), atol=1e-5)
    reader = build_inference_model(loaded)
    ids = reader.predict(images, verbose=0)
    assert ids.dtype == np.int32 and ids.shape == (2, crnn_frames(WIDTH))
    assert DIGITS.decode_batch(ids) == list(TEXTS)
    reader.save(tmp_path / "reader.keras")
    reader_loaded = keras.saving.load_model(tmp_path / "reader.keras", safe_mode=True)
    assert recognize(reader_loaded, images) == list(TEXTS)
    assert reader_loaded.get_layer("ctc_decoder").get_config()["strategy"] == "greedy"


@pytest.mark.tensorflow
def test_savedmodel_export_returns_strings(trained, tmp_path):
    import tensorflow as tf

    model, images, _ = trained
    export_recognizer(model, tmp_path / "reader")
    reloaded = tf.saved_model.load(str(tmp_path / "reader"))  # keep it referenced
    served = reloaded.serve(tf.constant(images))
    assert [t.decode() for t in served["text"].numpy()] == list(TEXTS)
    np.testing.assert_array_equal(served["ids"].numpy(),
                                  build_inference_model(model).predict(images, verbose=0))
    wider = np.pad(images[:1], ((0, 0), (0, 0), (0, 16), (0, 0)), mode="edge")  # any width
    assert reloaded.serve(tf.constant(wider))["ids"].shape == (1, crnn_frames(WIDTH + 16))


def _brute_force_labellings(logits):
    """{labelling: p(l|x)} of one sequence by summing every path (blank = 0)."""
    import itertools

    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    totals = {}
    for path in itertools.product(range(logits.shape[1]), repeat=logits.shape[0]):
        collapsed = tuple(k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k))
        totals[collapsed] = totals.get(collapsed, 0.0) + np.prod(probs[np.arange(len(path)), path])
    return totals, probs


@pytest.mark.parametrize("seed", [0, 1])
def test_scored_decoding_gives_the_reads_and_their_log_probabilities(seed):
    logits = np.random.default_rng(seed).normal(0, 1.5, (3, 4, 3)).astype("float32")
    for strategy in ("greedy", "beam"):
        ids, log_probs = (keras.ops.convert_to_numpy(t)
                          for t in decode_logits_scored(logits, strategy, beam_width=50))
        np.testing.assert_array_equal(
            ids, keras.ops.convert_to_numpy(decode_logits(logits, strategy, beam_width=50)))
        for i in range(len(logits)):
            totals, probs = _brute_force_labellings(logits[i].astype("float64"))
            read = tuple(int(k) for k in ids[i] if k >= 0)
            if strategy == "greedy":  # the best path's probability
                expected = np.log(probs.max(-1)).sum()
            else:  # a beam wider than every prefix is exact: the likeliest labelling
                assert totals[read] == pytest.approx(max(totals.values()), rel=1e-5)
                expected = np.log(totals[read])
            assert log_probs[i] == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="strategy"):
        decode_logits_scored(logits, "sampling")
