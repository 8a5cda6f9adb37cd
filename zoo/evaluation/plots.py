"""Plots of a training run, saved as PNG (figures are saved and closed: no display needed).

The backend is left to the user: forcing Agg on import would silence every inline figure
of a notebook that imports the zoo; matplotlib falls back to Agg by itself when there is
no display."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns


def save_figure(fig, path, title: str = "", dpi: int = 120) -> Path:
    """Title, tighten, save as PNG and close a figure; returns the path."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)


def plot_history(history: dict, path: str | Path, title: str = "",
                 metrics=("loss", "accuracy")) -> Path:
    """`metrics` (those present: loss and accuracy by default) per epoch, train against
    validation, from a History-like dict."""
    metrics = [m for m in metrics if m in history]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        epochs = np.arange(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path, title)


def plot_confusion_matrix(matrix, class_names, path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows: true class, columns: predicted class)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.6 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(rates, annot=len(class_names) <= 12, fmt=".2f", cmap="Blues", vmin=0, vmax=1,
                xticklabels=class_names, yticklabels=class_names, square=True, ax=ax,
                cbar_kws={"label": "fraction of the true class"})
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix (test)")
    return save_figure(fig, path)


# ------------------------------------------------------------------ text recognition

GALLERY_SIZE = 24


def plot_text_history(history: dict, path, title: str = "") -> Path:
    """CTC loss, CER and sequence accuracy per epoch, train against validation."""
    from matplotlib.ticker import MaxNLocator

    panels = [("loss", "CTC loss"), ("cer", "character error rate"),
              ("sequence_accuracy", "sequence accuracy")]
    panels = [(key, label) for key, label in panels if key in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        values = np.concatenate([history[key], history.get(f"val_{key}", [])])
        if key == "sequence_accuracy":
            ax.set_ylim(-0.02, 1.02)
        elif np.all(values > 0) and values.max() > 10 * values.min():
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", ylabel=label, title=label)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    return save_figure(fig, path, title)


def gallery_indices(truths, predictions, size=GALLERY_SIZE) -> list:
    """Up to `size` indices: the mistakes (up to half of the grid) and the first lines."""
    mistakes = [i for i, (t, p) in enumerate(zip(truths, predictions)) if t != p]
    chosen = mistakes[:size // 2]
    for i in range(len(truths)):
        if len(chosen) >= size:
            break
        if i not in chosen:
            chosen.append(i)
    return sorted(chosen)


def plot_text_gallery(images, truths, predictions, path, title="", size=GALLERY_SIZE,
                      columns=4) -> Path:
    """A grid of text-line images titled with what was read; mistakes in red with the truth.

    Shows the mistakes (up to half the grid) and fills the rest with the first lines.
    """
    chosen = gallery_indices(truths, predictions, size)
    rows = max(1, math.ceil(len(chosen) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.9 * columns, 1.25 * rows + 0.6),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), chosen):
        image = np.asarray(images[index])
        ax.imshow(image[..., 0] if image.ndim == 3 else image, cmap="gray", vmin=0, vmax=1,
                  aspect="auto")
        wrong = predictions[index] != truths[index]
        label = f"read '{predictions[index]}'"
        if wrong:
            label += f"\ntrue '{truths[index]}'"
        ax.set_title(label, fontsize=8, color="tab:red" if wrong else "black",
                     family="monospace")
    errors = sum(t != p for t, p in zip(truths, predictions))
    fig.suptitle(f"{title}\n{errors} of {len(truths)} test lines misread (red)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def plot_sphere_embeddings(panels: dict, path, class_names=None, title="",
                           max_points=2000) -> Path:
    """3-D embeddings scaled to unit length, one sphere per panel, coloured by class.

    A cosine head and its margin losses (CosFace, ArcFace) score only the direction of an
    embedding, so the unit sphere is where they act: a margin shows as tight, separated
    caps; softmax leaves broader, touching ones.

    Args:
        panels: {title: (embeddings (n, 3), labels (n,))}.
        path: the PNG to write.
        class_names: legend names by label. Defaults to None (the labels).
        title: the figure title. Defaults to "".
        max_points: at most this many points per panel (the first ones). Defaults to 2000.
    """
    fig = plt.figure(figsize=(5.2 * len(panels), 5.0))
    colours = sns.color_palette("tab10", 10)
    for column, (name, (embeddings, labels)) in enumerate(panels.items(), 1):
        e = np.asarray(embeddings, np.float64)[:max_points]
        if e.ndim != 2 or e.shape[1] != 3:
            raise ValueError(f"{name}: a sphere needs 3-D embeddings, got shape {e.shape}")
        y = np.asarray(labels).reshape(-1)[:max_points]
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        ax = fig.add_subplot(1, len(panels), column, projection="3d")
        u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 30), np.linspace(0, np.pi, 15))
        ax.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v),
                          color="0.85", linewidth=0.4)
        for label in np.unique(y):
            chosen = y == label
            ax.scatter(*e[chosen].T, s=3, color=colours[int(label) % 10], depthshade=False,
                       label=class_names[int(label)] if class_names else str(label))
        ax.set_title(name)
        ax.set_box_aspect((1, 1, 1))
        ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
    fig.axes[-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7,
                        markerscale=3, frameon=False)
    return save_figure(fig, path, title)
