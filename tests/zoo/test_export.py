"""`python -m zoo.export RUN_OR_WEIGHTS --format keras|savedmodel|litert`: what it refuses.
Each format is read back and compared with the trained model where a run is trained anyway:
a classifier in tests/zoo/test_evaluate.py, a detector in tests/zoo/models/test_detector.py."""

from __future__ import annotations

import pytest

from zoo import export as zexport
from zoo.training.config import ConfigError

tf = pytest.importorskip("tensorflow")

def test_a_crnn_exports_to_keras_and_refuses_litert_with_a_reason(tmp_path):
    with pytest.raises(ConfigError, match="Flex ops"):
        zexport.export_run("crnn_small.synth_plates", "litert", tmp_path / "x")
    path = zexport.export_run("crnn_small.synth_plates", "keras", tmp_path / "crnn")
    assert path.suffix == ".keras" and path.stat().st_size > 0


def test_unknown_format_and_missing_run(tmp_path):
    with pytest.raises(ConfigError, match="unknown format"):
        zexport.export_run(tmp_path, "onnx")
    with pytest.raises(ConfigError, match="not a finished run"):
        zexport.export_run(tmp_path, "keras")
