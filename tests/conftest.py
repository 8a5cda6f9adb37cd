import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/losses/loss_contract.py

import keras  # noqa: E402
import pytest  # noqa: E402

# Tests about TensorFlow itself (SavedModel, LiteRT, tf.function) carry the `tensorflow`
# marker, and the JAX job deselects them. A module that is about nothing else is not even
# collected there (collecting it would import TensorFlow):
TENSORFLOW_MODULES = ["zoo/models/test_detector_export.py"]
collect_ignore = TENSORFLOW_MODULES if keras.backend.backend() != "tensorflow" else []


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts from the float32 policy, whatever an earlier test set."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(autouse=True)
def _no_leaked_op_determinism():
    """TF op determinism makes Keras silently drop jit_compile for every later model, which
    would turn the jit checks of later tests into plain graph runs. Nothing may leave it on."""
    yield
    if keras.backend.backend() == "tensorflow":
        from tensorflow.python.framework import config as tf_config

        assert not tf_config.is_op_determinism_enabled(), "a test left op determinism on"
