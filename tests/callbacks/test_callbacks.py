"""Tests of callbacks.WeightTrace, callbacks.MarginMonitor and their plot helpers.

Every expected value is computed here, with plain NumPy loops written independently of the
code under test, from weights snapshotted by a separate callback or from embeddings known
exactly (a model whose "embedding" layer is the identity on its input).
"""

import csv
import math

import keras
import numpy as np
import pytest
from keras import ops

import callbacks
import zoo
from callbacks import MarginMonitor, WeightTrace

RNG = np.random.default_rng(1234)


# ------------------------------------------------------------------ helpers
class Snapshots(keras.callbacks.Callback):
    """Copies of every trainable variable at train begin and after every optimizer step."""

    def __init__(self):
        super().__init__()
        self.weights, self.epoch_end_steps, self.names = [], [], []

    def _grab(self):
        return [np.array(ops.convert_to_numpy(v.value), dtype=np.float64)
                for v in self.model.trainable_variables]

    def on_train_begin(self, logs=None):
        self.names = [v.path for v in self.model.trainable_variables]
        self.weights = [self._grab()]

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append(self._grab())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end_steps.append(len(self.weights) - 1)


def dense_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, activation="tanh", name="d1")(inputs)
    outputs = keras.layers.Dense(2, name="d2")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def dense_data(n):
    x = RNG.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def identity_embedding_model(dim, classes):
    """Input -> Identity named "embedding" -> Dense logits: the embedding is the input."""
    inputs = keras.Input((dim,))
    embedding = keras.layers.Identity(name="embedding")(inputs)
    outputs = keras.layers.Dense(classes, name="logits")(embedding)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class FakeCosineHead(keras.layers.Layer):
    """Stand-in for losses.heads.CosineHead: class_weights() and a dict output."""

    def __init__(self, classes, **kwargs):
        super().__init__(**kwargs)
        self.classes = classes

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.classes),
                                 initializer="random_normal", name="w")

    def class_weights(self):
        return self.w / ops.sqrt(ops.sum(ops.square(self.w), axis=0, keepdims=True))

    def call(self, x):
        x = x / ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + 1e-12)
        return {"scores": 10.0 * ops.matmul(x, self.class_weights())}


def reference_separation(e, y, eps):
    """Loop-by-loop NumPy version of the documented formulas."""
    e = np.asarray(e, np.float64)
    n, dim = e.shape
    classes = sorted(set(y.tolist()))
    mu = {c: e[y == c].mean(axis=0) for c in classes}
    intra = np.mean([np.linalg.norm(e[i] - mu[y[i]]) for i in range(n)])
    pairs = [(a, b) for i, a in enumerate(classes) for b in classes[i + 1:]]
    dist = [np.linalg.norm(mu[a] - mu[b]) for a, b in pairs]
    g = e.mean(axis=0)
    s_w = sum(np.outer(e[i] - mu[y[i]], e[i] - mu[y[i]]) for i in range(n)) / n
    s_b = sum(np.sum(y == c) * np.outer(mu[c] - g, mu[c] - g) for c in classes) / n
    pooled = s_w * n / (n - len(classes))
    cov_inv = np.linalg.inv(pooled + eps * np.trace(pooled) / dim * np.eye(dim))
    maha = [math.sqrt((mu[a] - mu[b]) @ cov_inv @ (mu[a] - mu[b])) for a, b in pairs]
    return {"intra": intra, "inter_mean": np.mean(dist), "inter_min": np.min(dist),
            "intra_inter_ratio": intra / np.mean(dist),
            "fisher": np.trace(s_b) / np.trace(s_w),
            "mahalanobis_mean": np.mean(maha), "mahalanobis_min": np.min(maha)}


def reference_angular(e, y, w, q):
    e = np.asarray(e, np.float64)
    w = np.asarray(w, np.float64)
    w = w / np.linalg.norm(w, axis=0)
    own, margins = [], []
    for i in range(len(e)):
        u = e[i] / np.linalg.norm(e[i])
        angles = [math.acos(max(-1.0, min(1.0, float(u @ w[:, j])))) for j in range(w.shape[1])]
        own.append(angles[y[i]])
        margins.append(min(a for j, a in enumerate(angles) if j != y[i]) - angles[y[i]])
    between = [math.acos(max(-1.0, min(1.0, float(w[:, a] @ w[:, b]))))
               for a in range(w.shape[1]) for b in range(w.shape[1]) if a != b]
    return {"angle_to_class_mean": np.mean(own), "class_angle_min": min(between),
            "angular_margin_mean": np.mean(margins),
            f"angular_margin_p{q:g}": np.percentile(margins, q)}


def is_png(path):
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------- separation metrics
def test_separation_hand_computed():
    # class 0 at (0,0),(2,0) -> centroid (1,0); class 1 at (10,0),(10,2) -> centroid (10,1)
    e = np.array([[0, 0], [2, 0], [10, 0], [10, 2]], np.float64)
    y = np.array([0, 0, 1, 1])
    m = callbacks.separation_metrics(e, y, epsilon=0.0)
    assert m["intra"] == pytest.approx(1.0)
    assert m["inter_mean"] == pytest.approx(math.sqrt(82))
    assert m["inter_min"] == pytest.approx(math.sqrt(82))
    assert m["intra_inter_ratio"] == pytest.approx(1 / math.sqrt(82))
    # tr S_W = mean squared deviation = 1; tr S_B = both centroids 20.5 from the mean (5.5, .5)
    assert m["fisher"] == pytest.approx(20.5)
    # pooled covariance = diag(2, 2) / (4 - 2) = I
    assert m["mahalanobis_min"] == pytest.approx(math.sqrt(82))
    # ridge eps * tr/D = 1 * 1 -> covariance 2 I
    assert callbacks.separation_metrics(e, y, epsilon=1.0)["mahalanobis_mean"] == \
        pytest.approx(math.sqrt(41))


def test_separation_matches_numpy_reference():
    e = RNG.normal(size=(17, 3)) + np.repeat(np.eye(3) * 2, [6, 6, 5], axis=0)
    y = np.repeat([0, 1, 2], [6, 6, 5])
    got = callbacks.separation_metrics(e, y, epsilon=1e-2)
    want = reference_separation(e, y, 1e-2)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key
    onehot = np.eye(3)[y]
    assert callbacks.separation_metrics(e, onehot, 1e-2)["fisher"] == pytest.approx(want["fisher"])


def test_separation_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2 classes"):
        callbacks.separation_metrics(np.ones((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="one class per embedding"):
        callbacks.separation_metrics(np.ones((3, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(n, D\)"):
        callbacks.separation_metrics(np.ones(3), np.array([0, 1, 0]))


# ------------------------------------------------------------ angular margins
def test_angular_margin_hand_made_vectors():
    w = np.array([[1.0, 0.0], [0.0, 1.0]])  # class 0 along x, class 1 along y
    deg = np.deg2rad
    e = np.array([[math.cos(deg(30)), math.sin(deg(30))],       # class 0: own 30, other 60
                  [2 * math.cos(deg(80)), 2 * math.sin(deg(80))],  # class 0: own 80, other 10
                  [1.0, 1.0],                                    # class 1: 45 and 45
                  [0.0, 3.0]])                                   # class 1: own 0, other 90
    y = np.array([0, 0, 1, 1])
    m = callbacks.angular_metrics(e, y, w, percentile=25)
    assert m["angle_to_class_mean"] == pytest.approx(deg(38.75))
    assert m["class_angle_min"] == pytest.approx(deg(90))
    assert m["angular_margin_mean"] == pytest.approx(deg(12.5))  # (30 - 70 + 0 + 90) / 4
    assert m["angular_margin_p25"] == pytest.approx(deg(-17.5))  # sorted -70, 0, 30, 90


def test_angular_matches_numpy_reference_and_validates():
    e = RNG.normal(size=(11, 3))
    y = RNG.integers(0, 4, size=11)
    y[:2] = [0, 1]
    w = RNG.normal(size=(3, 4))
    got = callbacks.angular_metrics(e, y, w, percentile=10)
    for key, value in reference_angular(e, y, w, 10).items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    with pytest.raises(ValueError, match="class_weights must have shape"):
        callbacks.angular_metrics(e, y, w[:2])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\)"):
        callbacks.angular_metrics(e, np.where(y == 0, 4, y), w)


def test_project_2d_is_pca_with_stable_signs():
    e = RNG.normal(size=(20, 4)) * np.array([5.0, 2.0, 0.5, 0.1])
    points, comps = callbacks.project_2d(e)
    centred = e - e.mean(axis=0)
    _, vecs = np.linalg.eigh(centred.T @ centred)
    top = vecs[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(points), np.abs(centred @ top), atol=1e-9)
    _, again = callbacks.project_2d(e, previous_components=-comps)
    np.testing.assert_allclose(again, -comps, atol=1e-12)
    flat, none = callbacks.project_2d(e[:, :1])
    assert none is None and flat.shape == (20, 2) and np.all(flat[:, 1] == 0)


# ---------------------------------------------------------- MarginMonitor API
def test_monitor_probe_source_is_explicit():
    x, y = np.ones((4, 2)), np.array([0, 1, 0, 1])
    with pytest.raises(TypeError):
        MarginMonitor(probe=(x, y))  # probe_source is required
    with pytest.raises(ValueError, match="test split"):
        MarginMonitor(probe=(x, y), probe_source="test")
    with pytest.raises(ValueError, match="same length"):
        MarginMonitor(probe=(x, y[:3]), probe_source="train")
    monitor = MarginMonitor(probe=(RNG.normal(size=(50, 2)), np.arange(50) % 2),
                            probe_source="train", max_samples=20)
    assert monitor.probe_source == "train" and len(monitor.probe_y) == 20
    model = identity_embedding_model(2, 2)
    bad = MarginMonitor(probe=(x, y), probe_source="validation", layer_name="nope")
    bad.set_model(model)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        bad.on_train_begin()


def test_monitor_and_trace_keys_in_history_and_csv(tmp_path):
    x = (RNG.normal(size=(30, 3)) + np.repeat(np.eye(3) * 3, 10, axis=0)).astype("float32")
    y = np.repeat([0, 1, 2], 10)
    model = identity_embedding_model(3, 3)
    monitor = MarginMonitor(probe=(x, y), probe_source="validation", epsilon=1e-3)
    trace = WeightTrace(log_per_variable=True)
    log = tmp_path / "log.csv"
    history = model.fit(x, y, epochs=2, batch_size=10, verbose=0,
                        callbacks=[monitor, trace, keras.callbacks.CSVLogger(str(log))])
    keys = monitor.log_keys() + trace.log_keys()
    assert len(keys) == 7 + 4 + 4 * 2  # 7 separation; 4 global + 4 x (logits kernel, bias)
    assert "margin/angular_margin_mean" not in keys  # no cosine head here
    with open(log) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    want = reference_separation(x, y, 1e-3)  # the embedding is the input itself
    for key in keys:
        assert len(history.history[key]) == 2, key
        for epoch in range(2):
            assert isinstance(history.history[key][epoch], float)
            assert float(rows[epoch][key]) == pytest.approx(history.history[key][epoch],
                                                            rel=1e-12), key
    for name, value in want.items():
        assert history.history[f"margin/{name}"] == pytest.approx([value] * 2, rel=1e-5), name
    assert monitor.history["margin/fisher"] == history.history["margin/fisher"]


def test_monitor_reads_cosine_head_with_dict_outputs():
    keras.utils.set_random_seed(3)
    x = (RNG.normal(size=(24, 2)) + np.repeat(np.eye(2)[[0, 1, 0]] * [[2], [2], [-2]], 8,
                                              axis=0)).astype("float32")
    y = np.repeat([0, 1, 2], 8)
    inputs = keras.Input((2,))
    embedding = keras.layers.Identity(name="embedding")(inputs)
    head = FakeCosineHead(3, name="cosine")
    model = keras.Model(inputs, head(embedding))
    model.compile(optimizer="sgd",
                  loss={"scores": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    monitor = MarginMonitor(probe=(x, y), probe_source="validation", percentile=10,
                            snapshots=True)
    history = model.fit(x, {"scores": y}, epochs=2, batch_size=8, verbose=0,
                        callbacks=[monitor])
    assert monitor.log_keys()[-4:] == ["margin/angle_to_class_mean", "margin/class_angle_min",
                                       "margin/angular_margin_mean", "margin/angular_margin_p10"]
    want = reference_angular(x, y, ops.convert_to_numpy(head.w), 10)  # weights after fit
    for name, value in want.items():
        assert history.history[f"margin/{name}"][-1] == pytest.approx(value, rel=1e-5), name
    assert [s["epoch"] for s in monitor.snapshots] == [-1, 0, 1]
    directions = monitor.snapshots[-1]["class_directions"]
    w = ops.convert_to_numpy(head.w)
    np.testing.assert_allclose(directions, (w / np.linalg.norm(w, axis=0)).T, rtol=1e-5)


def test_monitor_on_softmax_lenet_embed(tmp_path):
    keras.utils.set_random_seed(0)
    model = zoo.create_model("lenet_embed", embedding_dim=2)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = RNG.random((24, 28, 28, 1)).astype("float32")
    y = np.arange(24) % 4
    monitor = MarginMonitor(probe=(x[:16], y[:16]), probe_source="train", snapshots=True)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[monitor])
    assert callbacks.find_cosine_heads(model) == []
    assert sorted(k for k in history.history if k.startswith("margin/")) == \
        sorted(monitor.log_keys()) == sorted(f"margin/{k}" for k in
                                             callbacks.margin_monitor.SEPARATION_KEYS)
    embedding = zoo.embedding_model(model).predict(x[:16], verbose=0)
    for name, value in reference_separation(embedding, y[:16], 1e-3).items():
        assert history.history[f"margin/{name}"][0] == pytest.approx(value, rel=1e-4), name
    np.testing.assert_allclose(monitor.snapshots[-1]["points"], embedding, rtol=1e-5)
    png = callbacks.plot_embedding_snapshots(monitor, tmp_path / "snap.png")
    assert is_png(png)


# --------------------------------------------------------------- WeightTrace
def test_weight_trace_every_step_matches_snapshots():
    model = dense_model()
    x, y = dense_data(32)
    trace = WeightTrace(every_n_batches=1, track=2, seed=1, sparsity_threshold=0.05,
                        log_per_variable=True)
    snaps = Snapshots()
    history = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0,
                        callbacks=[trace, snaps])
    data = trace.as_dict()
    assert data["variables"].tolist() == snaps.names == ["d1/kernel", "d1/bias", "d2/kernel",
                                                         "d2/bias"]
    np.testing.assert_array_equal(data["step"], np.arange(9))
    np.testing.assert_array_equal(data["epoch"], [0] + [0] * 4 + [1] * 4)
    assert np.all(np.isnan(data["update"][0]))
    for s in range(1, 9):
        for v in range(4):
            now, before = snaps.weights[s][v], snaps.weights[s - 1][v]
            update = np.sqrt(np.sum((now - before) ** 2))
            norm = np.sqrt(np.sum(now ** 2))
            assert update > 0
            assert data["update"][s, v] == pytest.approx(update, rel=1e-5)
            assert data["norm"][s, v] == pytest.approx(norm, rel=1e-6)
            assert data["relative_update"][s, v] == pytest.approx(update / norm, rel=1e-5)
            assert data["sparsity"][s, v] == pytest.approx(np.mean(np.abs(now) <= 0.05))
    for k, (v, i) in enumerate(zip(data["tracked_variable"], data["tracked_index"])):
        trajectory = [snaps.weights[s][v].reshape(-1)[i] for s in range(9)]
        np.testing.assert_allclose(data["tracked_values"][:, k], trajectory, rtol=1e-6)
    assert np.bincount(data["tracked_variable"]).tolist() == [2, 2, 2, 2]
    # epoch summaries: displacement over the epoch, all variables together
    ends = [0] + snaps.epoch_end_steps
    for epoch in range(2):
        a, b = snaps.weights[ends[epoch]], snaps.weights[ends[epoch + 1]]
        update = math.sqrt(sum(np.sum((p - q) ** 2) for p, q in zip(a, b)))
        norm = math.sqrt(sum(np.sum(q ** 2) for q in b))
        assert history.history["weights/update"][epoch] == pytest.approx(update, rel=1e-5)
        assert history.history["weights/norm"][epoch] == pytest.approx(norm, rel=1e-6)
        assert history.history["weights/relative_update"][epoch] == \
            pytest.approx(update / norm, rel=1e-5)
        zeros = sum(np.sum(np.abs(q) <= 0.05) for q in b) / sum(q.size for q in b)
        assert history.history["weights/sparsity"][epoch] == pytest.approx(zeros)
        d2k = np.sqrt(np.sum((a[2] - b[2]) ** 2))
        assert history.history["weights/d2/kernel/update"][epoch] == pytest.approx(d2k, rel=1e-5)


def test_weight_trace_gating_and_sgd_update():
    model = dense_model(seed=1)
    x, y = dense_data(40)
    trace = WeightTrace(every_n_batches=3, layers=["d2"])
    snaps = Snapshots()
    model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0, callbacks=[trace, snaps])
    data = trace.as_dict()
    assert data["variables"].tolist() == ["d2/kernel", "d2/bias"]
    np.testing.assert_array_equal(data["step"], [0, 3, 6, 9])  # 10 steps, every third
    for r, s in enumerate(data["step"][1:], start=1):
        one_step = np.sqrt(np.sum((snaps.weights[s][2] - snaps.weights[s - 1][2]) ** 2))
        assert data["update"][r, 0] == pytest.approx(one_step, rel=1e-5)
    # SGD without momentum: the bias update of step 9 (epoch 2, batch 3: x[24:32]) is
    # -lr * the mean softmax cross-entropy gradient p - onehot(y)
    last = snaps.weights[9][3] - snaps.weights[8][3]
    logits = np.tanh(x[24:32] @ snaps.weights[8][0] + snaps.weights[8][1]) @ \
        snaps.weights[8][2] + snaps.weights[8][3]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    grad = (probs - np.eye(2)[y[24:32]]).mean(0)
    np.testing.assert_allclose(last, -0.1 * grad, rtol=1e-4, atol=1e-7)
    assert data["update"][3, 1] == pytest.approx(np.linalg.norm(0.1 * grad), rel=1e-4)
    # no batch hook at all unless every_n_batches is given (keeps async dispatch)
    assert getattr(WeightTrace().on_train_batch_end, "_is_default", False)
    assert not getattr(trace.on_train_batch_end, "_is_default", False)


def test_weight_trace_cap_downsamples_on_a_uniform_grid():
    model = dense_model(seed=2)
    x, y = dense_data(64)

    class Bounded(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            sizes.append(len(trace.as_dict()["step"]))

    sizes = []
    trace = WeightTrace(every_n_batches=1, max_records=5)
    snaps = Snapshots()
    model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0,
              callbacks=[trace, snaps, Bounded()])
    data = trace.as_dict()
    assert max(sizes) == 5 and len(sizes) == 16
    # steps 0..16 thinned twice: period 1 -> 2 -> 4
    np.testing.assert_array_equal(data["step"], [0, 4, 8, 12, 16])
    assert trace.stride == 4
    for r, s in enumerate(data["step"][1:], start=1):  # kept values are still one step
        one_step = np.sqrt(np.sum((snaps.weights[s][0] - snaps.weights[s - 1][0]) ** 2))
        assert data["update"][r, 0] == pytest.approx(one_step, rel=1e-5)

    per_epoch = WeightTrace(max_records=3)  # records at epoch ends: 0, 1, .., 5 thinned
    model.fit(x[:8], y[:8], epochs=5, batch_size=8, verbose=0, callbacks=[per_epoch])
    np.testing.assert_array_equal(per_epoch.as_dict()["step"], [0, 2, 4])
    assert len(per_epoch.as_dict()["epoch_index"]) == 5


def test_weight_trace_rejects_bad_arguments():
    with pytest.raises(ValueError, match="every_n_batches"):
        WeightTrace(every_n_batches=0)
    with pytest.raises(ValueError, match="max_records"):
        WeightTrace(max_records=1)
    model = dense_model()
    trace = WeightTrace(layers=["conv*"])
    trace.set_model(model)
    with pytest.raises(ValueError, match="matches no trainable variable"):
        trace.on_train_begin()
    trace = WeightTrace(track={"d1/kernel": [12]})  # d1/kernel has 4 x 3 = 12 entries
    trace.set_model(model)
    with pytest.raises(ValueError, match=r"\[0, 12\)"):
        trace.on_train_begin()
    kernels = WeightTrace(layers="*/kernel", track={"d1/kernel": [0, 11]})
    kernels.set_model(model)
    kernels.on_train_begin()
    assert kernels.variable_names == ["d1/kernel", "d2/kernel"]
    assert kernels.tracked_index.tolist() == [0, 11]


def test_trace_npz_round_trip_layers_and_plots(tmp_path):
    model = dense_model()
    x, y = dense_data(16)
    trace = WeightTrace(every_n_batches=1)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[trace])
    path = trace.save(tmp_path / "trace.npz")
    loaded = callbacks.load_trace(path)
    original = trace.as_dict()
    assert sorted(loaded) == sorted(original)
    for key, value in original.items():
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)
    layers = callbacks.aggregate_by_layer(loaded)
    assert layers["layers"].tolist() == ["d1", "d2"]
    expected = np.sqrt(original["update"][:, 0] ** 2 + original["update"][:, 1] ** 2)
    np.testing.assert_allclose(layers["update"][1:, 0], expected[1:])
    sizes = original["sizes"][2:]
    np.testing.assert_allclose(layers["sparsity"][:, 1],
                               original["sparsity"][:, 2:] @ sizes / sizes.sum())
    for i, png in enumerate([
        callbacks.plot_weight_updates(trace, tmp_path / "u.png"),
        callbacks.plot_weight_updates(loaded, tmp_path / "r.png", measure="relative_update",
                                      by="variable"),
        callbacks.plot_update_heatmap(path, tmp_path / "h.png"),
        callbacks.plot_weight_trajectories(loaded, tmp_path / "t.png"),
        callbacks.plot_margin_metrics({"margin/fisher": [1.0, 2.0], "margin/intra": [2.0, 1.0]},
                                      tmp_path / "m.png"),
    ]):
        assert is_png(png), i


def test_heatmap_of_a_trace_without_updates_is_a_clear_error(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    trace = WeightTrace(every_n_batches=50)
    model.fit(np.zeros((4, 3)), np.zeros((4, 2)), batch_size=2, epochs=1, verbose=0,
              callbacks=[trace])
    with pytest.raises(ValueError, match="no update yet"):
        callbacks.plot_update_heatmap(trace, tmp_path / "h.png")
