"""A short `zoo.train` run on one device and under `--distribute` on two.

    python tests/distributed_run_probe.py OUT_FOLDER     # prints one JSON object

Run in a fresh process (tests/zoo/training/test_distribute.py starts it): the two devices
must exist before the backend starts — two logical CPUs for TensorFlow (`mirrored`), two
host devices for JAX (`data-parallel`; XLA_FLAGS set by the caller). Both runs train LeNet-5
(no BatchNormalization, a per-sample loss) from the same seed on the same 256 Fashion-MNIST
images in the same order, so they must end with the same weights up to the order of float
sums. Printed: each run's recorded distribution, and the largest weight difference.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu,
                                               [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from zoo import train  # noqa: E402


def main(out: Path):
    report = {}
    weights = {}
    engine = {"tensorflow": "mirrored", "jax": "data-parallel"}[keras.backend.backend()]
    for name, distribute in (("one", None), ("two", engine)):
        folder = out / name
        metrics = train.run(train.TrainConfig(
            model="lenet5", dataset="fashion_mnist", epochs=2, train_limit=256, test_limit=64,
            batch_size=32, validation_split=0.0, verbose=0, distribute=distribute,
            out=str(folder)))
        report[name] = {"distribution": metrics["distribution"],
                        "test_loss": metrics["test_loss"]}
        weights[name] = keras.saving.load_model(folder / "model.keras").get_weights()
    report["largest_weight_difference"] = float(max(
        np.max(np.abs(a - b)) for a, b in zip(weights["one"], weights["two"])))
    report["largest_weight"] = float(max(np.max(np.abs(w)) for w in weights["one"]))
    print("REPORT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
