"""Plots of what WeightTrace and MarginMonitor record, saved as PNG files.

Figures are built with matplotlib's object API (`matplotlib.figure.Figure`), not pyplot, so
no global backend is touched: the helpers work headless and inside notebooks alike. Every
helper returns the `Path` it wrote.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from callbacks.margin_monitor import MarginMonitor
from callbacks.weight_trace import MEASURES, _trace_dict, aggregate_by_layer


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _save(fig, path, title):
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)


def _per(trace, by):
    if by == "layer":
        return aggregate_by_layer(trace), "layers"
    if by == "variable":
        return _trace_dict(trace), "variables"
    raise ValueError(f"by must be 'layer' or 'variable', got {by!r}")


def plot_weight_updates(trace, path, measure="update", by="layer", log_scale=True, title=""):
    """One curve per layer (or variable) of a traced measure against the step.

    Args:
        trace: a WeightTrace, its `as_dict()`, or a path to its .npz file.
        path: the PNG file to write.
        measure: "update", "relative_update", "norm" or "sparsity". Defaults to "update".
        by: "layer" (variables of a layer combined, see `aggregate_by_layer`) or
            "variable". Defaults to "layer".
        log_scale: logarithmic y axis (not for sparsity). Defaults to True.
        title: figure title. Defaults to "".
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    data, names_key = _per(trace, by)
    steps, values = data["step"], data[measure]
    fig = _figure(7, 4.2)
    ax = fig.add_subplot()
    for i, name in enumerate(data[names_key].tolist()):
        ax.plot(steps, values[:, i], marker="." if len(steps) < 60 else None, label=name)
    if log_scale and measure != "sparsity" and np.any(values[np.isfinite(values)] > 0):
        ax.set_yscale("log")
    unit = _unit(trace)
    ax.set(xlabel=unit, ylabel=measure.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=2 if values.shape[1] > 6 else 1)
    return _save(fig, path, title or f"weight {measure.replace('_', ' ')} per {by}")


def _unit(trace):
    data = _trace_dict(trace)
    return "optimizer step" if int(data["every_n_batches"]) else "epoch"


def plot_update_heatmap(trace, path, by="layer", title=""):
    """Heatmap of log10(relative update): one row per layer (or variable), one column per record.

    Args:
        trace: a WeightTrace, its `as_dict()`, or a path to its .npz file.
        path: the PNG file to write.
        by: "layer" or "variable". Defaults to "layer".
        title: figure title. Defaults to "".
    """
    import seaborn as sns

    data, names_key = _per(trace, by)
    keep = np.isfinite(data["update"]).all(axis=1)  # drops record 0 (no update yet)
    if not keep.any():
        raise ValueError("the trace holds no update yet (only the initial record): train for "
                         "at least one recording period (every_n_batches steps, or one epoch)")
    steps = data["step"][keep]
    relative = data["relative_update"][keep].T
    with np.errstate(divide="ignore"):
        shown = np.log10(np.where(relative > 0, relative, np.nan))
    names = data[names_key].tolist()
    fig = _figure(min(4 + 0.12 * len(steps), 14), 1.2 + 0.35 * len(names))
    ax = fig.add_subplot()
    tick_every = max(1, len(steps) // 12)
    sns.heatmap(shown, ax=ax, cmap="viridis", yticklabels=names,
                xticklabels=[str(s) if i % tick_every == 0 else "" for i, s in enumerate(steps)],
                cbar_kws={"label": "log10 ‖ΔW‖ / ‖W‖"})
    ax.set(xlabel=_unit(trace), ylabel=by)
    return _save(fig, path, title or "relative update")


def plot_weight_trajectories(trace, path, title=""):
    """Trajectories of the tracked scalar weights, one panel per variable that has some.

    Args:
        trace: a WeightTrace, its `as_dict()`, or a path to its .npz file.
        path: the PNG file to write.
        title: figure title. Defaults to "".
    """
    data = _trace_dict(trace)
    owners = data["tracked_variable"]
    variables = [v for v in range(len(data["variables"])) if np.any(owners == v)]
    if not variables:
        raise ValueError("the trace tracks no scalar weight (track=0)")
    cols = min(3, len(variables))
    rows = math.ceil(len(variables) / cols)
    fig = _figure(4.2 * cols, 3.0 * rows)
    for panel, v in enumerate(variables):
        ax = fig.add_subplot(rows, cols, panel + 1)
        for k in np.flatnonzero(owners == v):
            ax.plot(data["step"], data["tracked_values"][:, k],
                    label=f"[{int(data['tracked_index'][k])}]")
        ax.set(title=str(data["variables"][v]), xlabel=_unit(trace), ylabel="value")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    return _save(fig, path, title or "tracked weights")


def _margin_history(history):
    if isinstance(history, MarginMonitor):
        return history.history, history.prefix
    if hasattr(history, "history") and isinstance(history.history, dict):  # keras History
        history = history.history
    if isinstance(history, dict):
        return history, "margin/"
    raise ValueError(f"expected a MarginMonitor, a History or a dict, got "
                     f"{type(history).__name__}")


def plot_margin_metrics(history, path, prefix=None, title=""):
    """One panel per MarginMonitor metric against the epoch.

    Args:
        history: a MarginMonitor, a keras History, or a `history.history`-like dict.
        path: the PNG file to write.
        prefix: the key prefix to plot. Defaults to the monitor's, else "margin/".
        title: figure title. Defaults to "".
    """
    series, default_prefix = _margin_history(history)
    prefix = default_prefix if prefix is None else prefix
    keys = [k for k in series if k.startswith(prefix) and len(series[k])]
    if not keys:
        raise ValueError(f"no key starting with {prefix!r} in {sorted(series)}")
    cols = min(4, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig = _figure(3.6 * cols, 2.8 * rows)
    for panel, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, panel + 1)
        values = np.asarray(series[key], dtype=np.float64)
        ax.plot(np.arange(1, len(values) + 1), values, marker="o")
        ax.set(title=key[len(prefix):], xlabel="epoch")
        ax.grid(alpha=0.3)
    return _save(fig, path, title or "embedding separation")


def plot_embedding_snapshots(monitor, path, max_panels=12, cols=4, title=""):
    """Grid of 2-D scatter plots of the probe embedding over epochs (an animation on paper).

    Needs a MarginMonitor built with `snapshots=True`. With more snapshots than
    `max_panels`, evenly spaced ones are shown (first and last included). Class weight
    directions of a cosine head, when recorded, are drawn as rays from the origin.

    Args:
        monitor: a MarginMonitor (or its `snapshots` list).
        path: the PNG file to write.
        max_panels: the most panels drawn. Defaults to 12.
        cols: panels per row. Defaults to 4.
        title: figure title. Defaults to "".
    """
    snapshots = monitor.snapshots if isinstance(monitor, MarginMonitor) else list(monitor)
    if not snapshots:
        raise ValueError("no snapshot recorded: build the MarginMonitor with snapshots=True")
    if len(snapshots) > max_panels:
        picks = np.unique(np.linspace(0, len(snapshots) - 1, max_panels).round().astype(int))
        snapshots = [snapshots[i] for i in picks]
    cols = min(cols, len(snapshots))
    rows = math.ceil(len(snapshots) / cols)
    fig = _figure(3.2 * cols, 3.2 * rows)
    classes = np.unique(np.concatenate([s["labels"] for s in snapshots]))
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for panel, snap in enumerate(snapshots):
        ax = fig.add_subplot(rows, cols, panel + 1)
        points, labels = snap["points"], snap["labels"]
        for c in classes:
            mask = labels == c
            ax.scatter(points[mask, 0], points[mask, 1], s=6, color=cmap(int(c) % cmap.N),
                       label=str(c))
        directions = snap.get("class_directions")
        if directions is not None:
            reach = np.abs(points).max() if len(points) else 1.0
            for c, d in enumerate(directions):
                ax.plot([0, d[0] * reach], [0, d[1] * reach], lw=1, color=cmap(c % cmap.N))
        epoch = snap["epoch"]
        ax.set(title="before training" if epoch < 0 else f"epoch {epoch + 1}",
               xticks=[], yticks=[])
        if panel == 0 and len(classes) <= 10:
            ax.legend(fontsize="xx-small", markerscale=2, loc="best")
    return _save(fig, path, title or "probe embedding")
