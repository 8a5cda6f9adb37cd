"""Label ranges checked once on the data side, before any compiled training step sees them.

Inside an XLA-compiled step (`jit_compile=True`, Keras's default on a GPU, and `jax.jit`)
the losses' graph assertions are dropped; a label out of range then makes the loss NaN
(`losses.base.poison_invalid`), which stops a run only after it has started. The runner's
tasks call these on every split they load, so a bad label stops a run before its first
step with a message that names the split and the offending value:

- `check_class_labels(y, num_classes, split)`: class ids in [0, num_classes - 1];
- `check_sequence_labels(y, num_classes, split)`: CTC label rows, ids in
  [1, num_classes - 1] (0 is the blank) followed only by the padding -1.
"""

from __future__ import annotations

import numpy as np

from losses.sequence import BLANK_INDEX, PAD_VALUE
from zoo.datasets.errors import DataError


def check_class_labels(y, num_classes: int, split: str) -> None:
    """DataError unless every label of `y` is an integer in [0, num_classes - 1]."""
    labels = np.asarray(y)
    if labels.size == 0:
        return
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
        raise DataError(f"the {split} labels must be integer class ids")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= int(num_classes):
        raise DataError(f"the {split} labels must be class ids in [0, {num_classes - 1}] for "
                        f"{num_classes} classes; got ids in [{low}, {high}]")


def check_sequence_labels(y, num_classes: int, split: str, pad_value=PAD_VALUE) -> None:
    """DataError unless every row of `y` is ids in [1, num_classes - 1], then padding."""
    labels = np.asarray(y)
    if labels.size == 0:
        return
    if labels.ndim != 2:
        raise DataError(f"the {split} label ids must be rows (lines, length); got shape "
                        f"{labels.shape}")
    is_pad = labels == pad_value
    real = labels[~is_pad]
    if real.size and (real.min() <= BLANK_INDEX or real.max() >= int(num_classes)):
        raise DataError(f"the {split} label ids must be in [1, {num_classes - 1}] (0 is the "
                        f"blank); got ids in [{real.min()}, {real.max()}]")
    gaps = np.nonzero(np.any(is_pad[:, :-1] & ~is_pad[:, 1:], axis=1))[0]
    if gaps.size:
        raise DataError(f"the {split} label rows must end in their padding ({pad_value}); "
                        f"row {gaps[0]} is {labels[gaps[0]].tolist()}")
