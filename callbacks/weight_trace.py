"""WeightTrace: how far each weight tensor moves while a model trains.

    trace = callbacks.WeightTrace(every_n_batches=10, layers=["c*", "embedding"])
    model.fit(x, y, epochs=5, callbacks=[trace, keras.callbacks.CSVLogger("log.csv")])
    trace.save("trace.npz")                      # later: callbacks.load_trace("trace.npz")
    callbacks.plot_update_heatmap(trace, "updates.png")

Put the callback *before* CSVLogger / TensorBoard in the list: callbacks see the same `logs`
dict in list order, so a logger placed earlier would not see the keys this one writes.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import keras
import numpy as np
from keras import ops

MEASURES = ("update", "relative_update", "norm", "sparsity")
_TINY = 1e-12


def _layer_of_variables(model):
    """{id(variable): layer path} for every trainable variable, walking nested models."""
    owners = {}

    def walk(layers, parent):
        for layer in layers:
            name = f"{parent}{layer.name}"
            inner = getattr(layer, "layers", None)
            if inner:
                walk(inner, f"{name}/")
            for variable in layer.trainable_variables:
                owners.setdefault(id(variable), name)

    walk(model.layers, "")
    return owners


def _relative(update, norm):
    """update / norm, with 0/0 = 0 (a zero tensor that did not move)."""
    update = np.asarray(update, dtype=np.float64)
    norm = np.asarray(norm, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(update == 0, 0.0, update / np.maximum(norm, _TINY))


class WeightTrace(keras.callbacks.Callback):
    """Trace of weight updates, norms, sparsity and a few scalar weights during training.

    For every traced variable W (all trainable variables by default) a *record* holds:

    Formula:
        update          = ‖W_t − W_r‖₂   (norm over all entries, computed on the host)
        relative_update = update / ‖W_t‖₂   (0 when update = 0)
        norm            = ‖W_t‖₂
        sparsity        = #{i : |W_t[i]| ≤ sparsity_threshold} / size(W)
        tracked values  = W_t[i] for the chosen flat indices i

    When records are taken, and what the reference W_r is:
        - `every_n_batches=None` (default, cheapest): one record at the end of every epoch;
          W_r is the previous record (previous epoch end, or the weights at train begin).
          No batch hook is installed, so Keras keeps asynchronous dispatch where it can.
        - `every_n_batches=N`: one record after every N-th optimizer step s (counted across
          epochs and successive `fit` calls); W_r = W_{s−1}, the weights one step earlier,
          so `update` is one optimizer step ‖W_s − W_{s−1}‖, sampled every N steps (a copy
          of the weights is kept on the host at step s − 1). Each record costs one
          device→host copy of the traced weights; other batches only count.
    Record 0 is the state at the first train begin (step 0), with `update` = NaN.

    Bounded size: past `max_records` records the trace keeps only the records whose step
    is a multiple of twice the current recording period, and records at that doubled
    period from then on. The kept records stay on a uniform grid that contains step 0 and
    their values are not changed (an update is still one step, or one epoch, long).

    Epoch summaries (always, one transfer per epoch) are written into `logs` in
    `on_epoch_end` as Python floats, with the same keys from epoch 0 on:
        `{prefix}update`          = sqrt(Σ_v ‖W_v,e − W_v,e−1‖²), the displacement over the epoch
        `{prefix}relative_update` = `{prefix}update` / sqrt(Σ_v ‖W_v,e‖²)
        `{prefix}norm`            = sqrt(Σ_v ‖W_v,e‖²)
        `{prefix}sparsity`        = near-zero weights / all traced weights
    and, with `log_per_variable=True`, the same four per variable as
    `{prefix}{variable path}/{measure}` (e.g. "weights/c1/kernel/update").

    Args:
        every_n_batches: None for one record per epoch, or N ≥ 1 for one record every N
            optimizer steps (N = 1: every step). Defaults to None.
        layers: which variables to trace: None for all trainable ones, or a name / a list of
            shell-style patterns matched against the layer name ("c1", "c*") and against the
            variable path ("c1/kernel", "*/kernel"). Defaults to None.
        track: the scalar weights whose whole trajectory is kept: an int k (k flat indices
            per variable, sampled without replacement with `seed`; all of them when the
            variable is smaller) or a dict {variable path: [flat indices]}. Defaults to 3.
        seed: seed of the sampled indices. Defaults to 0.
        sparsity_threshold: |w| at or below this absolute value counts as zero.
            Defaults to 1e-3.
        max_records: the most records kept in memory (≥ 2). Defaults to 1000.
        log_per_variable: also write per-variable epoch summaries into `logs`.
            Defaults to False.
        prefix: prefix of the `logs` keys. Defaults to "weights/".

    The full trace: `as_dict()` (NumPy arrays), `save(path)` (.npz) and `load_trace(path)`.

    Reference: the update/weight ratio (relative update, ~1e-3 is healthy) of the CS231n
    notes, "Neural Networks Part 3: Babysitting the learning process" (Karpathy).
    """

    def __init__(self, every_n_batches=None, layers=None, track=3, seed=0,
                 sparsity_threshold=1e-3, max_records=1000, log_per_variable=False,
                 prefix="weights/"):
        super().__init__()
        if every_n_batches is not None and (
            isinstance(every_n_batches, bool) or not isinstance(every_n_batches, int)
            or every_n_batches < 1
        ):
            raise ValueError(
                f"every_n_batches must be None or an int >= 1, got {every_n_batches!r}")
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 2:
            raise ValueError(f"max_records must be an int >= 2, got {max_records!r}")
        if not isinstance(track, dict) and (
            isinstance(track, bool) or not isinstance(track, int) or track < 0
        ):
            raise ValueError(
                f"track must be an int >= 0 or a dict {{variable path: [indices]}}, "
                f"got {track!r}")
        if not float(sparsity_threshold) >= 0:
            raise ValueError(f"sparsity_threshold must be >= 0, got {sparsity_threshold!r}")
        if isinstance(layers, str):
            layers = [layers]
        self.every_n_batches = every_n_batches
        self.layers = None if layers is None else list(layers)
        self.track = track
        self.seed = seed
        self.sparsity_threshold = float(sparsity_threshold)
        self.max_records = max_records
        self.log_per_variable = log_per_variable
        self.prefix = prefix
        if every_n_batches is None:
            # Keep Keras's default (no-op) batch hook: overriding it costs async dispatch.
            self.on_train_batch_end = super().on_train_batch_end
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self):
        """Forget the trace (the next `fit` starts a new one)."""
        self._variables = None
        self.variable_names, self.layer_names, self.sizes = [], [], []
        self.tracked_variable = np.zeros(0, np.int64)
        self.tracked_index = np.zeros(0, np.int64)
        self._pick = []
        self._step = 0
        self._epoch = 0
        self.stride = 1
        self._records = []  # (step, epoch, packed row)
        self._epoch_records = []  # (epoch, packed row)
        self._previous = None
        self._epoch_reference = None

    @property
    def period(self):
        """Steps (or epochs, when `every_n_batches` is None) between two records now."""
        return (self.every_n_batches or 1) * self.stride

    def log_keys(self):
        """The `logs` keys written at every epoch end (known once the model is set)."""
        keys = [f"{self.prefix}{m}" for m in MEASURES]
        if self.log_per_variable:
            keys += [f"{self.prefix}{v}/{m}" for v in self.variable_names for m in MEASURES]
        return keys

    def _select(self, model):
        owners = _layer_of_variables(model)
        chosen, names, layer_names = [], [], []
        available = []
        for variable in model.trainable_variables:
            layer = owners.get(id(variable), variable.path.rsplit("/", 1)[0])
            path = variable.path
            available.append(path)
            if self.layers is not None and not any(
                fnmatch.fnmatchcase(layer, p) or fnmatch.fnmatchcase(path, p)
                for p in self.layers
            ):
                continue
            chosen.append(variable)
            names.append(path if path not in names else f"{path}_{len(names)}")
            layer_names.append(layer)
        if not chosen:
            raise ValueError(
                f"WeightTrace: layers={self.layers!r} matches no trainable variable; "
                f"expected layer names or patterns among: {available}")
        return chosen, names, layer_names

    def _choose_indices(self):
        sizes = self.sizes
        if isinstance(self.track, dict):
            unknown = sorted(set(self.track) - set(self.variable_names))
            if unknown:
                raise ValueError(
                    f"track names unknown variables {unknown}; traced variables: "
                    f"{self.variable_names}")
            picks = []
            for name, size in zip(self.variable_names, sizes):
                idx = np.asarray(self.track.get(name, []), dtype=np.int64).reshape(-1)
                if idx.size and (idx.min() < 0 or idx.max() >= size):
                    raise ValueError(
                        f"track[{name!r}] must hold flat indices in [0, {size}), "
                        f"got {idx.tolist()}")
                picks.append(idx)
        else:
            rng = np.random.default_rng(self.seed)
            picks = [np.sort(rng.choice(size, min(self.track, size), replace=False))
                     .astype(np.int64) for size in sizes]
        self._pick = picks
        self.tracked_variable = np.concatenate(
            [np.full(len(p), v, np.int64) for v, p in enumerate(picks)] or [np.zeros(0, np.int64)])
        self.tracked_index = np.concatenate(picks or [np.zeros(0, np.int64)])

    # ----------------------------------------------------------- measurement
    def _weights(self):
        """The traced variables as float32 NumPy arrays (one host copy per variable).

        Measuring on the host is ~30x cheaper than dozens of small eager device ops per
        record for the models LossLab trains; the copy is the only device work.
        """
        self.model  # noqa: B018  (on JAX, reading .model syncs the trained state back)
        return [np.asarray(ops.convert_to_numpy(v.value), dtype=np.float32)
                for v in self._variables]

    def _snapshot(self):
        return self._weights()

    def _measure(self, reference):
        """One row [update (V), norm (V), sparsity (V), tracked values (K)], float64."""
        weights = self._weights()
        n = len(weights)
        row = np.empty(3 * n + sum(len(p) for p in self._pick), np.float64)
        for i, w in enumerate(weights):
            row[i] = np.linalg.norm(w - reference[i]) if reference is not None else np.nan
            row[n + i] = np.linalg.norm(w)
            row[2 * n + i] = np.mean(np.abs(w) <= self.sparsity_threshold)
        picks = [w.reshape(-1)[pick] for w, pick in zip(weights, self._pick) if len(pick)]
        row[3 * n:] = np.concatenate(picks) if picks else []
        return row

    def _append(self, step, row):
        self._records.append((step, self._epoch, row))
        if len(self._records) > self.max_records:
            keep = 2 * self.period
            self._records = [r for r in self._records if r[0] % keep == 0]
            self.stride *= 2

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs=None):
        model = self.model
        variables, names, layer_names = self._select(model)
        if self._variables is not None and names != self.variable_names:
            raise ValueError(
                f"WeightTrace was recording {self.variable_names} and now sees {names}; "
                "call reset() before using it with another model")
        self._variables = variables
        if not self._records:
            self.variable_names, self.layer_names = names, layer_names
            self.sizes = [int(np.prod(v.shape)) for v in variables]
            self._choose_indices()
            self._append(0, self._measure(None))
        self._epoch_reference = self._snapshot()
        self._previous = self._epoch_reference if self.every_n_batches else None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        # Installed only when every_n_batches is set (see __init__).
        self._step += 1
        period = self.period
        if self._step % period == 0:
            self._append(self._step, self._measure(self._previous))
        if (self._step + 1) % self.period == 0:
            self._previous = self._snapshot()

    def on_epoch_end(self, epoch, logs=None):
        row = self._measure(self._epoch_reference)
        self._epoch_reference = self._snapshot()
        self._epoch_records.append((epoch, row))
        if self.every_n_batches is None:
            self._step += 1
            if self._step % self.period == 0:
                self._append(self._step, row)
        if logs is None:
            return
        n = len(self.variable_names)
        update, norm, sparsity = row[:n], row[n:2 * n], row[2 * n:3 * n]
        sizes = np.asarray(self.sizes, np.float64)
        total_update = float(np.sqrt(np.sum(update ** 2)))
        total_norm = float(np.sqrt(np.sum(norm ** 2)))
        logs[f"{self.prefix}update"] = total_update
        logs[f"{self.prefix}relative_update"] = float(_relative(total_update, total_norm))
        logs[f"{self.prefix}norm"] = total_norm
        logs[f"{self.prefix}sparsity"] = float(np.sum(sparsity * sizes) / np.sum(sizes))
        if self.log_per_variable:
            relative = _relative(update, norm)
            for i, name in enumerate(self.variable_names):
                for measure, values in zip(MEASURES, (update, relative, norm, sparsity)):
                    logs[f"{self.prefix}{name}/{measure}"] = float(values[i])

    # ----------------------------------------------------------------- export
    def as_dict(self):
        """The trace as NumPy arrays (the keys `save` writes and `load_trace` returns).

        R records, V traced variables, K tracked scalar weights, E epochs:
        step (R,), epoch (R,), update / relative_update / norm / sparsity (R, V),
        tracked_values (R, K), tracked_variable (K,) index into variables,
        tracked_index (K,) flat index, variables / layers (V,) names, sizes (V,),
        epoch_index (E,), epoch_update / epoch_relative_update / epoch_norm /
        epoch_sparsity (E, V), and the settings every_n_batches (0 = per epoch),
        stride, max_records, sparsity_threshold.
        """
        n = len(self.variable_names)

        def unpack(rows, count):
            rows = np.asarray(rows, np.float64).reshape(count, 3 * n + len(self.tracked_index))
            update, norm = rows[:, :n], rows[:, n:2 * n]
            return {"update": update, "relative_update": _relative(update, norm), "norm": norm,
                    "sparsity": rows[:, 2 * n:3 * n], "tracked_values": rows[:, 3 * n:]}

        records = unpack([r[2] for r in self._records], len(self._records))
        epochs = unpack([r[1] for r in self._epoch_records], len(self._epoch_records))
        return {
            "step": np.asarray([r[0] for r in self._records], np.int64),
            "epoch": np.asarray([r[1] for r in self._records], np.int64),
            **records,
            "tracked_variable": self.tracked_variable,
            "tracked_index": self.tracked_index,
            "variables": np.asarray(self.variable_names, dtype=str),
            "layers": np.asarray(self.layer_names, dtype=str),
            "sizes": np.asarray(self.sizes, np.int64),
            "epoch_index": np.asarray([r[0] for r in self._epoch_records], np.int64),
            **{f"epoch_{m}": epochs[m] for m in MEASURES},
            "every_n_batches": np.int64(self.every_n_batches or 0),
            "stride": np.int64(self.stride),
            "max_records": np.int64(self.max_records),
            "sparsity_threshold": np.float64(self.sparsity_threshold),
        }

    def save(self, path):
        """Write the trace to a compressed .npz file (no pickled objects); returns the path."""
        path = Path(path)
        np.savez_compressed(path, **self.as_dict())
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def load_trace(path):
    """Read a trace written by `WeightTrace.save` back as the dict of `WeightTrace.as_dict`."""
    with np.load(path, allow_pickle=False) as data:
        return {key: (data[key].item() if data[key].ndim == 0 else data[key]) for key in data}


def _trace_dict(trace):
    if isinstance(trace, WeightTrace):
        return trace.as_dict()
    if isinstance(trace, (str, Path)):
        return load_trace(trace)
    if isinstance(trace, dict) and "update" in trace:
        return trace
    raise ValueError(
        f"expected a WeightTrace, its as_dict() or an .npz path, got {type(trace).__name__}")


def aggregate_by_layer(trace):
    """Per-layer measures from a per-variable trace (WeightTrace, its dict or an .npz path).

    Formula (variables v of layer L, sizes n_v):
        update_L = sqrt(Σ_v update_v²);  norm_L = sqrt(Σ_v norm_v²)
        relative_update_L = update_L / norm_L;  sparsity_L = Σ_v n_v·sparsity_v / Σ_v n_v

    Returns a dict with "layers" (L,), "step" (R,) and the four measures as (R, L) arrays.
    """
    data = _trace_dict(trace)
    layers = list(dict.fromkeys(data["layers"].tolist()))
    owner = np.asarray([layers.index(name) for name in data["layers"].tolist()])
    sizes = np.asarray(data["sizes"], np.float64)
    out = {"layers": np.asarray(layers, dtype=str), "step": data["step"]}
    shape = (len(data["step"]), len(layers))
    update_sq, norm_sq, zeros = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for v, layer in enumerate(owner):
        update_sq[:, layer] += data["update"][:, v] ** 2
        norm_sq[:, layer] += data["norm"][:, v] ** 2
        zeros[:, layer] += data["sparsity"][:, v] * sizes[v]
    layer_sizes = np.bincount(owner, weights=sizes, minlength=len(layers))
    out["update"] = np.sqrt(update_sq)
    out["norm"] = np.sqrt(norm_sq)
    out["relative_update"] = _relative(out["update"], out["norm"])
    out["relative_update"][np.isnan(out["update"])] = np.nan
    out["sparsity"] = zeros / layer_sizes
    return out
