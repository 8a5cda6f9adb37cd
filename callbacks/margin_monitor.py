"""MarginMonitor: how well the embedding separates the classes, epoch by epoch.

    monitor = callbacks.MarginMonitor(probe=(x_val[:512], y_val[:512]), probe_source="validation")
    model.fit(x, y, epochs=10, callbacks=[monitor, keras.callbacks.CSVLogger("log.csv")])
    callbacks.plot_margin_metrics(monitor, "margins.png")

The probe is a fixed set of labelled samples chosen by the caller, and the caller must say
where it came from (`probe_source="validation"` or `"train"`): the test split is refused, so
that a number watched while tuning can never be a test number.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

PROBE_SOURCES = ("validation", "train")
SEPARATION_KEYS = ("intra", "inter_mean", "inter_min", "intra_inter_ratio", "fisher",
                   "mahalanobis_mean", "mahalanobis_min")
_TINY = 1e-12


def _check_embeddings(embeddings, labels):
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim < 2:
        raise ValueError(f"embeddings must have shape (n, D), got shape {e.shape}")
    e = e.reshape(len(e), -1)
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if len(y) != len(e):
        raise ValueError(f"labels must hold one class per embedding: {len(e)} embeddings, "
                         f"{len(y)} labels")
    if not np.all(np.equal(np.mod(y, 1), 0)) or (y.size and y.min() < 0):
        raise ValueError(f"labels must be integers >= 0, got {np.unique(y)[:10]}")
    y = y.astype(np.int64)
    if len(np.unique(y)) < 2:
        raise ValueError(f"need samples of at least 2 classes, got classes {np.unique(y)}")
    return e, y


def separation_metrics(embeddings, labels, epsilon=1e-3):
    """Class separation of an embedding: distances to and between class centroids.

    Only the classes present in `labels` count (k of them); e_i ∈ R^D, n samples,
    μ_c = mean of the e_i of class c, μ = mean of all e_i, n_c = samples of class c.

    Formula:
        intra             = (1/n) Σ_i ‖e_i − μ_{y_i}‖
        inter_mean / _min = mean / min over pairs a < b of ‖μ_a − μ_b‖
        intra_inter_ratio = intra / inter_mean          (smaller is better separated)
        fisher            = tr(S_B) / tr(S_W)           (larger is better separated)
            S_W = (1/n) Σ_i (e_i − μ_{y_i})(e_i − μ_{y_i})ᵀ
            S_B = (1/n) Σ_c n_c (μ_c − μ)(μ_c − μ)ᵀ
        Σ_W               = Σ_i (e_i − μ_{y_i})(e_i − μ_{y_i})ᵀ / max(n − k, 1)   (pooled)
        Σ                 = Σ_W + ε · max(tr(Σ_W) / D, 1e-12) · I
        mahalanobis_mean / _min = mean / min over pairs a < b of
                            sqrt((μ_a − μ_b)ᵀ Σ⁻¹ (μ_a − μ_b))
    Denominators are floored at 1e-12, so the values stay finite.

    Args:
        embeddings: (n, D) array (further axes are flattened).
        labels: (n,) integer labels (or (n, C) one-hot).
        epsilon: ridge of the Mahalanobis covariance, relative to tr(Σ_W)/D.
            Defaults to 1e-3.

    Returns:
        dict of Python floats with the keys of `SEPARATION_KEYS`.

    Reference: Fisher, "The use of multiple measurements in taxonomic problems", 1936;
    Mahalanobis, "On the generalised distance in statistics", 1936.
    """
    e, y = _check_embeddings(embeddings, labels)
    if not float(epsilon) >= 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
    n, dim = e.shape
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    k = len(classes)
    centroids = np.zeros((k, dim))
    np.add.at(centroids, inverse, e)
    centroids /= counts[:, None]
    within = e - centroids[inverse]
    intra = float(np.mean(np.linalg.norm(within, axis=1)))
    a, b = np.triu_indices(k, 1)
    delta = centroids[a] - centroids[b]
    pair = np.linalg.norm(delta, axis=1)
    inter_mean, inter_min = float(pair.mean()), float(pair.min())
    tr_w = float(np.sum(within ** 2) / n)
    tr_b = float(np.sum(counts * np.sum((centroids - e.mean(axis=0)) ** 2, axis=1)) / n)
    pooled = within.T @ within / max(n - k, 1)
    ridge = float(epsilon) * max(np.trace(pooled) / dim, _TINY)
    cov = pooled + ridge * np.eye(dim)
    maha = np.sqrt(np.maximum(np.sum(delta * np.linalg.solve(cov, delta.T).T, axis=1), 0.0))
    return {
        "intra": intra,
        "inter_mean": inter_mean,
        "inter_min": inter_min,
        "intra_inter_ratio": intra / max(inter_mean, _TINY),
        "fisher": tr_b / max(tr_w, _TINY),
        "mahalanobis_mean": float(maha.mean()),
        "mahalanobis_min": float(maha.min()),
    }


def angular_keys(percentile=5.0):
    return ("angle_to_class_mean", "class_angle_min", "angular_margin_mean",
            f"angular_margin_p{percentile:g}")


def angular_metrics(embeddings, labels, class_weights, percentile=5.0):
    """Angles between samples and the class weight vectors of a cosine head (radians).

    With ê_i = e_i / ‖e_i‖, w_j the j-th column of `class_weights` (normalised again here)
    and θ_ij = arccos(clip(ê_i · w_j, −1, 1)):

    Formula:
        angle_to_class_mean   = (1/n) Σ_i θ_{i, y_i}
        class_angle_min       = min over a ≠ b of arccos(w_a · w_b)
        margin_i              = min_{j ≠ y_i} θ_ij − θ_{i, y_i}   (j over all C head classes)
        angular_margin_mean   = (1/n) Σ_i margin_i
        angular_margin_p{q}   = q-th percentile of margin_i (np.percentile, linear)
    A positive margin_i means sample i is closer in angle to its own class than to any other.

    Args:
        embeddings: (n, D) array.
        labels: (n,) integer labels in [0, C) (or (n, C) one-hot).
        class_weights: (D, C) class weight matrix (columns are class directions).
        percentile: the low percentile q reported. Defaults to 5.0.

    Returns:
        dict of Python floats with the keys of `angular_keys(percentile)`.

    Reference: Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face
    Recognition", CVPR 2019 (its angle statistics between samples and class centres).
    """
    e, y = _check_embeddings(embeddings, labels)
    w = np.asarray(class_weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != e.shape[1] or w.shape[1] < 2:
        raise ValueError(f"class_weights must have shape (D={e.shape[1]}, C >= 2), "
                         f"got shape {w.shape}")
    if y.max() >= w.shape[1]:
        raise ValueError(f"labels must be in [0, {w.shape[1]}) for a head of {w.shape[1]} "
                         f"classes, got label {y.max()}")
    if not 0 <= float(percentile) <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {percentile!r}")
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), _TINY)
    w = w / np.maximum(np.linalg.norm(w, axis=0, keepdims=True), _TINY)
    theta = np.arccos(np.clip(e @ w, -1.0, 1.0))
    rows = np.arange(len(y))
    own = theta[rows, y]
    others = theta.copy()
    others[rows, y] = np.inf
    margin = others.min(axis=1) - own
    between = np.arccos(np.clip(w.T @ w, -1.0, 1.0))
    between = between[~np.eye(w.shape[1], dtype=bool)]
    keys = angular_keys(percentile)
    return {keys[0]: float(own.mean()), keys[1]: float(between.min()),
            keys[2]: float(margin.mean()), keys[3]: float(np.percentile(margin, percentile))}


def project_2d(embeddings, previous_components=None):
    """2-D view of an embedding: itself when D ≤ 2 (padded with 0), else its PCA plane.

    The two principal axes come from the SVD of the centred embedding; each axis' sign is
    flipped to agree with `previous_components` (2, D) when given, so that successive
    snapshots do not mirror. Returns (points (n, 2), components (2, D) or None for D ≤ 2).
    """
    e = np.asarray(embeddings, dtype=np.float64)
    e = e.reshape(len(e), -1)
    if e.shape[1] <= 2:
        return np.pad(e, ((0, 0), (0, 2 - e.shape[1]))), None
    centred = e - e.mean(axis=0)
    components = np.linalg.svd(centred, full_matrices=False)[2][:2]
    if previous_components is not None:
        signs = np.sign(np.sum(components * previous_components, axis=1))
        components = components * np.where(signs == 0, 1.0, signs)[:, None]
    return centred @ components.T, components


def embedding_submodel(model, layer_name="embedding") -> keras.Model:
    """The model from `model`'s input to its embedding: the layer named `layer_name`, else
    the model's exposed `embedding_model` (a Model, or a method returning one)."""
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        layer = None
    if layer is not None:
        try:
            return keras.Model(model.inputs, layer.output, name=f"{model.name}_probe")
        except (AttributeError, ValueError) as err:
            raise ValueError(
                f"cannot build the embedding sub-model of {model.name!r} from layer "
                f"{layer_name!r} (a subclassed model? expose `embedding_model`): "
                f"{err}") from None
    exposed = getattr(model, "embedding_model", None)
    if isinstance(exposed, keras.Model):
        return exposed
    if callable(exposed):
        return exposed()
    names = [layer.name for layer in model.layers]
    raise ValueError(f"{model.name!r} has no layer {layer_name!r} and no "
                     f"`embedding_model`; expected the embedding layer among {names}")


def find_cosine_heads(model):
    """Layers of `model` (nested models included) that have a callable `class_weights`."""
    found = []

    def walk(layers):
        for layer in layers:
            if callable(getattr(layer, "class_weights", None)):
                found.append(layer)
            if getattr(layer, "layers", None):
                walk(layer.layers)

    walk(model.layers)
    return found


def checked_probe(probe, probe_source, max_samples, seed):
    """A probe's (x, y) as the probes use it: never the test split, labels (B,) (one-hot
    taken by argmax), and at most `max_samples` of them, subsampled once (seeded, without
    replacement, in order). x may be an array or a dict of arrays."""
    if probe_source not in PROBE_SOURCES:
        raise ValueError(
            f"probe_source must be one of {PROBE_SOURCES} (the probe must never be the "
            f"test split), got {probe_source!r}")
    if not isinstance(probe, (tuple, list)) or len(probe) != 2:
        raise ValueError(f"probe must be a pair (x, y), got {type(probe).__name__}")
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 2:
        raise ValueError(f"max_samples must be an int >= 2, got {max_samples!r}")
    x, y = probe
    n = _length(x)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if len(y) != n:
        raise ValueError(f"probe x and y must have the same length, got {n} and {len(y)}")
    if n > max_samples:
        index = np.sort(np.random.default_rng(seed).choice(n, max_samples, replace=False))
        x, y = _take(x, index), y[index]
    return x, y


def _take(x, index):
    if isinstance(x, dict):
        return {k: np.asarray(v)[index] for k, v in x.items()}
    return np.asarray(x)[index]


def _length(x):
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


class MarginMonitor(keras.callbacks.Callback):
    """Class separation and angular margins of the embedding of a fixed probe set, per epoch.

    Once per epoch the probe's embedding is read through a sub-model (model input → the
    embedding layer) built once, and the metrics of `separation_metrics` are computed; when
    the model has a cosine head (a layer with a callable `class_weights()` returning the
    L2-normalised (D, C) class weights) those of `angular_metrics` as well. See those two
    functions for the formulas. Everything is written into `logs` in `on_epoch_end` as
    Python floats under `{prefix}{metric}` (e.g. "margin/fisher"), with the same keys from
    epoch 0 on (the cosine keys exist iff a head is found at train begin); `history` keeps
    them too (with `epochs`), and `snapshots` the 2-D view (`project_2d`) of every epoch when asked.
    Place the monitor *before* CSVLogger / TensorBoard in the callbacks list.

    Cost per epoch: one prediction of at most `max_samples` probe samples plus O(n·D² + D³)
    NumPy on the host.

    The embedding is, in order: the layer named `layer_name`; else the model's exposed
    embedding, `model.embedding_model` (a Model, or a method returning one). The model's own
    outputs (a tensor or a dict such as {"scores": ...}) are never used.

    Args:
        probe: (x, y) — inputs (array or dict of arrays) and integer (or one-hot) labels.
            Keyword-only, required.
        probe_source: where the probe comes from, "validation" or "train" (recorded as
            `probe_source`); the test split is refused. Keyword-only, required.
        layer_name: name of the embedding layer. Defaults to "embedding".
        cosine_head: "auto" (the one layer with a callable `class_weights`; an error if
            several), a layer name, or None to skip angular metrics. Defaults to "auto".
        max_samples: probes larger than this are subsampled once (seeded, without
            replacement). Defaults to 2048.
        seed: seed of that subsampling. Defaults to 0.
        epsilon: relative ridge of the Mahalanobis covariance. Defaults to 1e-3.
        percentile: the low percentile of the angular margin. Defaults to 5.0.
        snapshots: keep the 2-D embedding of every epoch (and of train begin, epoch −1)
            for `plot_embedding_snapshots`. Defaults to False.
        batch_size: batch size of the probe prediction. Defaults to 256.
        prefix: prefix of the `logs` keys. Defaults to "margin/".

    Reference: Wen et al., "A Discriminative Feature Learning Approach for Deep Face
    Recognition" (centre loss), ECCV 2016 — intra-class compactness vs inter-class
    dispersion; Deng et al., "ArcFace", CVPR 2019 — angular statistics.
    """

    def __init__(self, *, probe, probe_source, layer_name="embedding", cosine_head="auto",
                 max_samples=2048, seed=0, epsilon=1e-3, percentile=5.0, snapshots=False,
                 batch_size=256, prefix="margin/"):
        super().__init__()
        if not 0 <= float(percentile) <= 100:
            raise ValueError(f"percentile must be in [0, 100], got {percentile!r}")
        x, y = checked_probe(probe, probe_source, max_samples, seed)
        _check_embeddings(np.zeros((len(y), 1)), y)  # integer labels, >= 2 classes
        self.probe_x, self.probe_y = x, y.astype(np.int64)
        self.probe_source = probe_source
        self.layer_name = layer_name
        self.cosine_head = cosine_head
        self.max_samples = max_samples
        self.seed = seed
        self.epsilon = float(epsilon)
        self.percentile = float(percentile)
        self.keep_snapshots = bool(snapshots)
        self.batch_size = batch_size
        self.prefix = prefix
        self.history = {}  # "{prefix}{metric}" -> list of floats, one per epoch
        self.epochs = []
        self.snapshots = []  # dicts: epoch, points (n, 2), class_directions (C, 2) or None
        self._embedder = None
        self._embedder_of = None
        self._head = None
        self._components = None

    # ------------------------------------------------------------------ set-up
    def _build_embedder(self, model):
        return embedding_submodel(model, self.layer_name)

    def _find_head(self, model):
        if self.cosine_head is None:
            return None
        heads = find_cosine_heads(model)
        if self.cosine_head == "auto":
            if len(heads) > 1:
                raise ValueError(f"several layers have class_weights(): "
                                 f"{[h.name for h in heads]}; pass cosine_head=<name>")
            return heads[0] if heads else None
        for head in heads:
            if head.name == self.cosine_head:
                return head
        raise ValueError(f"cosine_head={self.cosine_head!r}: expected the name of a layer "
                         f"with class_weights(), found {[h.name for h in heads]}")

    def log_keys(self):
        """The `logs` keys written at every epoch end (known after train begin)."""
        keys = list(SEPARATION_KEYS)
        if self._head is not None:
            keys += list(angular_keys(self.percentile))
        return [f"{self.prefix}{key}" for key in keys]

    def on_train_begin(self, logs=None):
        model = self.model
        if self._embedder_of is not model:
            self._embedder = self._build_embedder(model)
            self._embedder_of = model
            self._head = self._find_head(model)
        if self.keep_snapshots and not self.snapshots:
            self._snapshot(-1, self._embed())

    # ---------------------------------------------------------------- measure
    def _embed(self):
        self.model  # noqa: B018  (on JAX, reading .model syncs the trained state back)
        out = self._embedder.predict(self.probe_x, batch_size=self.batch_size, verbose=0)
        return np.asarray(out, dtype=np.float64).reshape(len(self.probe_y), -1)

    def _class_weights(self):
        return np.asarray(ops.convert_to_numpy(self._head.class_weights()), dtype=np.float64)

    def _snapshot(self, epoch, embeddings):
        points, self._components = project_2d(embeddings, self._components)
        directions = None
        if self._head is not None:
            w = self._class_weights()
            w = w / np.maximum(np.linalg.norm(w, axis=0, keepdims=True), _TINY)
            directions = (w.T @ self._components.T if self._components is not None
                          else np.pad(w.T, ((0, 0), (0, 2 - w.shape[0]))))
        self.snapshots.append({"epoch": epoch, "points": points, "labels": self.probe_y,
                               "class_directions": directions})

    def compute(self):
        """The metrics for the model's current weights (dict of Python floats, no prefix)."""
        embeddings = self._embed()
        metrics = separation_metrics(embeddings, self.probe_y, self.epsilon)
        if self._head is not None:
            metrics.update(angular_metrics(embeddings, self.probe_y, self._class_weights(),
                                           self.percentile))
        return metrics, embeddings

    def on_epoch_end(self, epoch, logs=None):
        metrics, embeddings = self.compute()
        for key, value in metrics.items():
            self.history.setdefault(f"{self.prefix}{key}", []).append(value)
            if logs is not None:
                logs[f"{self.prefix}{key}"] = value
        self.epochs.append(epoch)
        if self.keep_snapshots:
            self._snapshot(epoch, embeddings)
