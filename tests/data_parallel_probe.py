"""One training step on one device and on two, for the data-parallel tests.

    python tests/data_parallel_probe.py        # prints one JSON object

Run in a fresh process (tests/losses/test_data_parallel.py starts it): the two devices must
exist before the backend starts, two logical CPUs for TensorFlow (`MirroredStrategy`), two
host devices for JAX (`keras.distribution.DataParallel`, XLA_FLAGS set by the caller).

For each case, one model takes one SGD step (learning rate 1, so the weight change is minus
the gradient) on the same global batch of 8 from the same weights: on one device, on two
replicas, and on one device for each half of the batch. Printed per case: the largest
difference between the two-device step and the one-device step on the whole batch
(`vs_global`), and between the two-device step and the mean of the two half-batch steps
(`vs_halves`), for the weight change and for the reported loss.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import losses  # noqa: E402

BATCH = 8
BACKEND = keras.backend.backend()


def devices_and_scope():
    """(number of devices, a factory of the distributed context)."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        return strategy.num_replicas_in_sync, strategy.scope
    import contextlib

    import jax

    distribution = keras.distribution.DataParallel(devices=jax.devices())

    @contextlib.contextmanager
    def scope():
        keras.distribution.set_distribution(distribution)
        try:
            yield
        finally:
            keras.distribution.set_distribution(None)

    return len(jax.devices()), scope


def classification():
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(5)(keras.layers.Dense(8, activation="tanh")(inputs))
    return keras.Model(inputs, outputs), losses.FocalLoss(gamma=2.0)


def margin():
    inputs = keras.Input((6,))
    embedding = keras.layers.Dense(4, name="embedding")(inputs)
    model = losses.heads.make_model(inputs, losses.build_head("cosine", 5)(embedding))
    return model, losses.ArcFaceLoss(margin=0.3, scale=8.0)


def metric():
    inputs = keras.Input((6,))
    return (keras.Model(inputs, keras.layers.Dense(4, name="embedding")(inputs)),
            losses.TripletLoss(margin=0.5, mining="batch_hard"))


def ctc():
    inputs = keras.Input((7, 6))
    return keras.Model(inputs, keras.layers.Dense(5)(inputs)), losses.CTCLoss()


def boxes():
    inputs = keras.Input((6,))
    raw = keras.layers.Dense(4)(inputs)
    centre = keras.layers.Lambda(lambda r: keras.ops.concatenate(
        [r[:, :2], keras.ops.exp(r[:, 2:])], axis=-1))(raw)  # positive width and height
    return keras.Model(inputs, centre), losses.CIoULoss(box_format="cxcywh")


def data(case, rng):
    if case == "ctc":
        x = rng.normal(size=(BATCH, 7, 6)).astype("float32")
        y = np.full((BATCH, 3), -1, "int32")
        for row in range(BATCH):
            length = 1 + row % 3
            y[row, :length] = rng.integers(1, 5, length)
        return x, y
    x = rng.normal(size=(BATCH, 6)).astype("float32")
    if case == "boxes":
        centre = rng.uniform(0.3, 0.7, (BATCH, 2))
        size = rng.uniform(0.2, 0.6, (BATCH, 2))
        return x, np.concatenate([centre, size], -1).astype("float32")
    if case == "metric":  # P×K: in each half of the batch, two classes of two samples
        return x, np.array([0, 0, 1, 1, 2, 2, 3, 3], "int32")
    return x, rng.integers(0, 5, BATCH).astype("int32")


CASES = {"classification": classification, "margin": margin, "metric": metric, "ctc": ctc,
         "boxes": boxes}


def one_step(build, weights, x, y, scope=None):
    """(reported loss, weight changes) of one SGD step with learning rate 1."""
    import contextlib

    with (scope() if scope else contextlib.nullcontext()):
        model, loss = build()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(1.0), loss=loss)
        history = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        after = model.get_weights()
    return history.history["loss"][0], [a - b for a, b in zip(after, weights)]


def largest(a, b):
    return float(max(np.max(np.abs(u - v)) for u, v in zip(a, b)))


def main():
    count, scope = devices_and_scope()
    report = {"backend": BACKEND, "devices": count, "cases": {}}
    rng = np.random.default_rng(0)
    for case, build in CASES.items():
        keras.utils.set_random_seed(0)
        weights = build()[0].get_weights()
        x, y = data(case, rng)
        loss_1, step_1 = one_step(build, weights, x, y)
        loss_2, step_2 = one_step(build, weights, x, y, scope)
        halves = [one_step(build, weights, x[k * 4:(k + 1) * 4],
                           y[k * 4:(k + 1) * 4]) for k in range(2)]
        mean_step = [(a + b) / 2 for a, b in zip(halves[0][1], halves[1][1])]
        mean_loss = (halves[0][0] + halves[1][0]) / 2
        report["cases"][case] = {
            "step_vs_global": largest(step_2, step_1),
            "step_vs_halves": largest(step_2, mean_step),
            "loss_vs_global": abs(loss_2 - loss_1),
            "loss_vs_halves": abs(loss_2 - mean_loss),
            "step_size": float(max(np.max(np.abs(s)) for s in step_1)),
            "halves_vs_global": largest(mean_step, step_1)}
    print("REPORT " + json.dumps(report), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
