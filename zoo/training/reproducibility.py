"""Seeds, scoped op determinism, and the versions a run records."""

from __future__ import annotations

import contextlib
import platform

import keras
import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend."""
    keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def deterministic_ops(enabled: bool = True):
    """Make TensorFlow ops deterministic inside the block, and restore the previous state.

    Scoped on purpose: while op determinism is on, Keras silently turns `jit_compile` off for
    every model (not all ops have deterministic XLA kernels), so leaving it on after a run
    would change how a notebook's later models compile.
    """
    if not enabled or keras.backend.backend() != "tensorflow":
        yield
        return
    from tensorflow.python.framework import config as tf_config  # the only switch back off

    was_enabled = tf_config.is_op_determinism_enabled()
    tf_config.enable_op_determinism()
    try:
        yield
    finally:
        if not was_enabled:
            tf_config.disable_op_determinism()


def versions() -> dict:
    """Python, Keras, backend, NumPy (and TensorFlow) versions and the machine."""
    found = {"python": platform.python_version(), "keras": keras.__version__,
             "backend": keras.backend.backend(), "numpy": np.__version__,
             "machine": f"{platform.machine()} {platform.system()}"}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        found["tensorflow"] = tf.__version__
    return found
