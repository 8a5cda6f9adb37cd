"""WeightTrace and MarginMonitor inside real training set-ups, and the overhead benchmark.

- compiled with `jit_compile=True` (XLA): the probes read the trained weights correctly;
- with LossLab's losses: FocalLoss on LeNet logits, ArcFaceLoss on the cosine head (whose
  class weights MarginMonitor finds on its own);
- the probes' keys reach History and a CSVLogger placed after them;
- `benchmarks/callback_overhead.py` runs end to end with tiny settings.

Expected values are recomputed here in NumPy from weights copied by a separate callback,
never taken from the code under test.
"""

import csv
import json
import math

import keras
import numpy as np
import pytest
from keras import ops

import zoo
from callbacks import MarginMonitor, WeightTrace
from losses import FocalLoss
from losses.margin import ArcFaceLoss

RNG = np.random.default_rng(2024)
SEPARATION = ["intra", "inter_mean", "inter_min", "intra_inter_ratio", "fisher",
              "mahalanobis_mean", "mahalanobis_min"]


class WeightCopies(keras.callbacks.Callback):
    """Copies of the trainable weights at train begin, after every step and at every epoch end."""

    def on_train_begin(self, logs=None):
        self.steps = [self._grab()]
        self.epoch_ends = []

    def _grab(self):
        return [np.array(ops.convert_to_numpy(v.value), dtype=np.float64)
                for v in self.model.trainable_variables]

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(self._grab())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_ends.append(self._grab())


def csv_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def fit_with_probes(model, x, y, probes, tmp_path, epochs=2, batch_size=16):
    copies = WeightCopies()
    log = tmp_path / "log.csv"
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0,
                        callbacks=[copies, *probes, keras.callbacks.CSVLogger(str(log))])
    return history.history, csv_rows(log), copies


def assert_keys_logged(keys, history, rows, epochs):
    assert len(rows) == epochs
    for key in keys:
        assert len(history[key]) == epochs, key
        assert all(math.isfinite(v) for v in history[key]), key
        np.testing.assert_allclose([float(r[key]) for r in rows], history[key], rtol=1e-6)


def epoch_displacements(copies):
    """sqrt(Σ_v ‖W_v,e − W_v,e−1‖²) per epoch, from the copies."""
    points = [copies.steps[0]] + copies.epoch_ends
    return [math.sqrt(sum(np.sum((b - a) ** 2) for a, b in zip(p, q)))
            for p, q in zip(points, points[1:])]


def intra_reference(embeddings, labels):
    """Mean distance of a sample to its class centroid."""
    total = 0.0
    for c in np.unique(labels):
        members = embeddings[labels == c]
        total += np.linalg.norm(members - members.mean(axis=0), axis=1).sum()
    return total / len(labels)


def images(n, classes=4):
    x = RNG.random((n, 28, 28, 1)).astype("float32")
    y = np.arange(n) % classes
    x[np.arange(n), 2 + 5 * y, 3:20, 0] += 2.0  # a class-dependent bright row: learnable
    return x, y.astype("int64")


# ------------------------------------------------------------------ jit_compile=True
def test_probes_under_jit_compile_read_the_trained_weights(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    embedding = keras.layers.Dense(3, name="embedding")(inputs)
    outputs = keras.layers.Dense(3, name="logits")(keras.layers.Activation("tanh")(embedding))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    assert model.jit_compile
    x = RNG.normal(size=(48, 5)).astype("float32")
    y = np.argmax(x[:, :3], axis=1).astype("int64")
    probe = (x[:30], y[:30])
    trace = WeightTrace(every_n_batches=1, track=0, log_per_variable=True)
    monitor = MarginMonitor(probe=probe, probe_source="train")
    history, rows, copies = fit_with_probes(model, x, y, [trace, monitor], tmp_path)

    keys = trace.log_keys() + monitor.log_keys()
    assert "weights/embedding/kernel/update" in keys and "margin/fisher" in keys
    assert_keys_logged(keys, history, rows, epochs=2)

    # every optimizer step, one record: ‖W_s − W_{s−1}‖ per variable from the copies
    data = trace.as_dict()
    steps = len(copies.steps) - 1
    assert data["step"].tolist() == list(range(steps + 1))
    expected = [[np.linalg.norm(b - a) for a, b in zip(p, q)]
                for p, q in zip(copies.steps, copies.steps[1:])]
    np.testing.assert_allclose(data["update"][1:], expected, rtol=1e-5, atol=1e-7)
    assert np.all(np.asarray(expected) > 0)  # the steps did move the weights
    np.testing.assert_allclose(history["weights/update"], epoch_displacements(copies),
                               rtol=1e-5)

    # the last epoch's intra-class spread, from the final weights of the linear embedding
    kernel, bias = (np.asarray(ops.convert_to_numpy(w), np.float64)
                    for w in model.get_layer("embedding").weights)
    embeddings = probe[0].astype(np.float64) @ kernel + bias
    assert math.isclose(history["margin/intra"][-1], intra_reference(embeddings, probe[1]),
                        rel_tol=1e-5)


# ------------------------------------------------------------------ LossLab losses
def test_probes_with_focal_loss_on_lenet_embed(tmp_path):
    keras.utils.set_random_seed(1)
    model = zoo.create_model("lenet_embed", num_classes=4, embedding_dim=3, widths=(4, 8))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=FocalLoss(gamma=2.0),
                  metrics=["accuracy"], jit_compile=True)
    x, y = images(64)
    trace = WeightTrace()
    monitor = MarginMonitor(probe=(x[:40], y[:40]), probe_source="validation")
    history, rows, copies = fit_with_probes(model, x, y, [trace, monitor], tmp_path)

    assert monitor.log_keys() == [f"margin/{k}" for k in SEPARATION]  # softmax: no angles
    assert_keys_logged(trace.log_keys() + monitor.log_keys(), history, rows, epochs=2)
    assert "accuracy" in rows[0] and "loss" in rows[0]
    np.testing.assert_allclose(history["weights/update"], epoch_displacements(copies),
                               rtol=1e-5)
    norm = math.sqrt(sum(np.sum(w ** 2) for w in copies.epoch_ends[-1]))
    assert math.isclose(history["weights/norm"][-1], norm, rel_tol=1e-5)
    embeddings = np.asarray(zoo.embedding_model(model).predict(x[:40], verbose=0), np.float64)
    assert math.isclose(history["margin/intra"][-1], intra_reference(embeddings, y[:40]),
                        rel_tol=1e-4)


def test_probes_with_arcface_on_the_cosine_head(tmp_path):
    keras.utils.set_random_seed(2)
    model = zoo.create_model("lenet_embed", num_classes=4, embedding_dim=3, widths=(4, 8),
                             head="cosine")
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=ArcFaceLoss(margin=0.3),
                  metrics=["accuracy"], jit_compile=True)
    x, y = images(64)
    probe = (x[:40], y[:40])
    trace = WeightTrace(every_n_batches=2, layers=["cosine", "embedding"])
    monitor = MarginMonitor(probe=probe, probe_source="train")
    history, rows, copies = fit_with_probes(model, x, y, [trace, monitor], tmp_path)

    angular = ["angle_to_class_mean", "class_angle_min", "angular_margin_mean",
               "angular_margin_p5"]
    assert monitor.log_keys() == [f"margin/{k}" for k in SEPARATION + angular]
    assert_keys_logged(trace.log_keys() + monitor.log_keys(), history, rows, epochs=2)
    assert trace.variable_names == ["embedding/kernel", "embedding/bias", "cosine/kernel"]

    # angles between the probe embedding and the head's class directions, in NumPy
    e = np.asarray(zoo.embedding_model(model).predict(probe[0], verbose=0), np.float64)
    w = np.asarray(ops.convert_to_numpy(model.get_layer("cosine").kernel), np.float64)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    w /= np.linalg.norm(w, axis=0, keepdims=True)
    theta = np.arccos(np.clip(e @ w, -1, 1))
    own = theta[np.arange(len(e)), probe[1]]
    margins = [min(theta[i, j] for j in range(4) if j != probe[1][i]) - own[i]
               for i in range(len(e))]
    assert math.isclose(history["margin/angle_to_class_mean"][-1], own.mean(), rel_tol=1e-4)
    assert math.isclose(history["margin/angular_margin_mean"][-1], np.mean(margins),
                        rel_tol=1e-4, abs_tol=1e-5)


# ------------------------------------------------------------------ the benchmark
@pytest.mark.slow
def test_callback_overhead_benchmark_smoke(tmp_path):
    from benchmarks import callback_overhead

    code = callback_overhead.main(["--epochs", "2", "--reps", "1", "--train-limit", "96",
                                   "--probe-limit", "64", "--memory-epochs", "2",
                                   "--results-dir", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "callback_overhead.json").read_text())
    assert set(results["ratios"]) == {"WeightTrace()", "WeightTrace(every_n_batches=10)",
                                      "MarginMonitor(validation probe)"}
    for name, ratio in results["ratios"].items():
        assert ratio > 0 and math.isfinite(ratio), name
        timing = results["overhead"][name]
        assert ratio == np.median(timing["ratio_per_rep"])
        assert len(timing["epoch_seconds"]) == 1 and len(timing["epoch_seconds"][0]) == 1
    assert results["overhead"]["none"]["ratio"] == 1.0
    steps = results["steps_per_epoch"]
    assert steps == math.ceil(96 / results["recipe"]["batch_size"])
    memory = results["memory"]
    cap = WeightTrace().max_records
    per_epoch = memory["per epoch (default)"]
    every_step = memory[f"every_n_batches=1, max_records={cap} (default cap)"]
    uncapped = memory[callback_overhead.UNCAPPED]
    assert per_epoch["records"] == 2 + 1  # train begin + one per epoch
    assert every_step["records"] == 2 * steps + 1 and every_step["last_step"] == 2 * steps
    assert uncapped["records"] == every_step["records"]  # the cap is not reached here
    variables = len(zoo.create_model("lenet5").trainable_variables)
    assert every_step["bytes_per_record"] == 8 * (2 + 4 * variables + 3 * variables)
    for m in memory.values():
        assert m["record_bytes"] == m["records"] * m["bytes_per_record"]
        assert m["max_records"] is None or m["records"] <= m["max_records"]
    assert results["weight_trace_default_max_records"] == WeightTrace().max_records
    assert "| WeightTrace() |" in (tmp_path / "callback_overhead.md").read_text()
    assert (tmp_path / "callback_overhead.png").stat().st_size > 0
