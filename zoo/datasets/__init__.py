"""Datasets as NumPy arrays: float32 images in [0, 1] shaped (N, H, W, C), int64 labels.

    from zoo import datasets
    x, y = datasets.load("fashion_mnist", split="train", validation_split=0.1, seed=0)
    x_val, y_val = datasets.load("fashion_mnist", split="validation", validation_split=0.1)
    datasets.class_names("fashion_mnist")      # ('T-shirt/top', 'Trouser', ...)

Where the data comes from, in order, is documented in `zoo.datasets.sources`. Bad input (a
missing or unreadable file or folder, a dataset no source can provide) raises `DataError`, a
ValueError whose first line names the file and what is wrong (see `zoo.datasets.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.datasets import formats
from zoo.datasets.errors import DataError, DataNotFound, TruncatedImageWarning
from zoo.datasets.formats import ChecksumError, read_image
from zoo.datasets.sources import CLASS_NAMES, DatasetUnavailable, fetch, fetch_stored

__all__ = ["Split", "load", "load_image_folder", "class_names", "list_datasets",
           "train_validation_indices", "DataError", "DataNotFound", "DatasetUnavailable",
           "ChecksumError", "TruncatedImageWarning", "read_image", "fetch", "fetch_stored"]

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Split:
    """Images `x` (float32 NHWC in [0, 1]), labels `y` (int64) and the class names.

    Unpacks like a pair: `x, y = load(...)`.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple

    def __iter__(self):
        return iter((self.x, self.y))

    def __len__(self):
        return len(self.y)


def list_datasets():
    return sorted(CLASS_NAMES)


def class_names(name: str) -> tuple:
    if name not in CLASS_NAMES:
        raise ValueError(f"unknown dataset {name!r}; known: {list_datasets()}")
    return CLASS_NAMES[name]


def train_validation_indices(n: int, validation_split: float, seed: int):
    """Deterministic, stratification-free split of range(n): (train_idx, val_idx), both sorted."""
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
    permutation = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * validation_split))
    return np.sort(permutation[n_val:]), np.sort(permutation[:n_val])


def _select(x, y, split, validation_split, seed, limit):
    if split != "test":
        train_idx, val_idx = train_validation_indices(len(y), validation_split, seed)
        index = val_idx if split == "validation" else train_idx
        x, y = x[index], y[index]
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


def load(name: str, split: str = "train", validation_split: float = 0.0, seed: int = 0,
         data_dir: str | Path | None = None, limit: int | None = None) -> Split:
    """Load `mnist`, `fashion_mnist` or `cifar10`.

    Args:
        name: dataset name, one of `list_datasets()`.
        split: "train", "validation" (held out of the official training set) or "test".
        validation_split: fraction of the training set held out as validation. The same
            `seed` and fraction always give the same partition. Defaults to 0.
        seed: seed of the validation partition. Defaults to 0.
        data_dir: a folder with the dataset's files, tried before every other source.
            Defaults to the `LOSSLAB_DATA` environment variable, if set.
        limit: keep only the first `limit` samples of the split (for quick runs).
    """
    if split not in SPLITS:  # argument errors before any I/O
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "validation" and validation_split <= 0:
        raise ValueError("split='validation' needs validation_split > 0")
    (x_train, y_train), (x_test, y_test) = fetch_stored(name, data_dir=data_dir)
    x, y = (x_test, y_test) if split == "test" else (x_train, y_train)
    x, y = _select(x, y, split, validation_split, seed, limit)
    return Split(formats.images_to_float(x), y, class_names(name))


def load_image_folder(root: str | Path, image_size=None, color_mode: str = "rgb",
                      class_names=None) -> Split:
    """An image folder with one sub-folder per class -> `Split` (float32 in [0, 1]).

    Args:
        root: the folder; class names are its sorted sub-folder names.
        image_size: (height, width) to resize to; required when sizes differ.
        color_mode: "rgb" or "grayscale". Defaults to "rgb".
        class_names: fix the class order (e.g. the train folder's for a test folder).
    """
    x, y, names = formats.read_image_folder(root, image_size, color_mode, class_names)
    return Split(formats.images_to_float(x), y, tuple(names))
