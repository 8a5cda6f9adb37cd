"""What a run or a notebook executes on: Keras, its backend, the devices, a GPU or not.

    from zoo.runtime import describe_runtime
    print(describe_runtime())   # Keras 3.15.1, backend tensorflow, devices CPU, GPU: no
"""

from __future__ import annotations

import keras


def device_types() -> list:
    """The kinds of device the backend sees ("CPU", "GPU", "TPU"), sorted."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return sorted({device.device_type for device in tf.config.list_physical_devices()})
    if backend == "jax":
        import jax

        return sorted({device.platform.upper() for device in jax.devices()})
    if backend == "torch":
        import torch

        return ["CPU", "GPU"] if torch.cuda.is_available() else ["CPU"]
    return ["CPU"]


def describe_runtime() -> str:
    """One line: Keras's version, the backend, its device kinds and whether a GPU is there."""
    devices = device_types()
    return (f"Keras {keras.__version__}, backend {keras.backend.backend()}, devices "
            f"{', '.join(devices)}, GPU: {'yes' if 'GPU' in devices else 'no'}")
