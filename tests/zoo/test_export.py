"""`python -m zoo.export RUN_OR_WEIGHTS --format keras|savedmodel|litert`: what it refuses.
Each format is read back and compared with the trained model where a run is trained anyway:
a classifier in tests/zoo/test_evaluate.py, a detector in tests/zoo/models/test_detector.py."""

from __future__ import annotations

import pytest

from zoo import export as zexport
from zoo.training.config import ConfigError


def test_a_crnn_exports_to_keras(tmp_path):
    path = zexport.export_run("crnn_small.synth_plates", "keras", tmp_path / "crnn")
    assert path.suffix == ".keras" and path.stat().st_size > 0


@pytest.mark.tensorflow
def test_a_crnn_runs_in_litert_with_built_in_ops_and_reads_as_keras_does(tmp_path):
    import tensorflow as tf

    """The fixed-width, unrolled copy converts without Flex ops (the converter is limited to
    LiteRT's built-ins, so any TensorFlow op would fail it), its logits equal the Keras
    model's on the same lines, and the NumPy decoding of OUT.json reads the same text as
    the Keras greedy decoder."""
    import json

    import numpy as np

    from zoo import create_model
    from zoo.charset import Charset
    from zoo.datasets.text import pad_lines, render_text_line
    from zoo.models.crnn import greedy_decode_texts, recognize

    model = create_model("crnn_small", weights="synth_plates")
    height, width = model.input_shape[1], 160
    path = zexport.export_run("crnn_small.synth_plates", "litert", tmp_path / "crnn",
                              line_width=width)
    spec = json.loads(path.with_suffix(".json").read_text())
    assert spec["input"]["height"] == height and spec["input"]["width"] == width
    rng = np.random.default_rng(0)
    texts = ["AB123", "KX-4071", "M88ZZ"]
    lines = pad_lines([render_text_line(t, rng, height=height, width=width, augment=False)
                       for t in texts], width)
    serve = tf.lite.Interpreter(model_path=str(path)).get_signature_runner("serve")
    logits = serve(image=lines)["output_0"]
    expected = np.asarray(model(lines))
    assert logits.shape == expected.shape
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    read = greedy_decode_texts(logits, Charset(spec["charset"]))
    assert read == recognize(model, lines)
    assert read == texts  # and the shipped plate reader reads these clean lines


def test_the_numpy_greedy_decoder_by_hand():
    import numpy as np

    from zoo.charset import Charset
    from zoo.models.crnn import greedy_decode_texts

    charset = Charset("ab")  # ids: 0 blank, 1 a, 2 b
    frames = [[1, 1, 0, 1, 2, 2, 0], [0, 0, 0, 0, 0, 0, 0]]  # "a a b" with a blank between a's
    logits = np.eye(3)[frames]
    assert greedy_decode_texts(logits, charset) == ["aab", ""]


@pytest.mark.tensorflow
def test_a_line_width_without_frames_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="width must be at least 8"):
        zexport.export_run("crnn_small.synth_plates", "litert", tmp_path / "x", line_width=4)


def test_unknown_format_and_missing_run(tmp_path):
    with pytest.raises(ConfigError, match="unknown format"):
        zexport.export_run(tmp_path, "onnx")
    with pytest.raises(ConfigError, match="not a finished run"):
        zexport.export_run(tmp_path, "keras")
