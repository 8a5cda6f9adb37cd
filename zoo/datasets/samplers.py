"""Class-balanced P×K batches for metric learning (triplet, contrastive, centre losses).

In-batch pair and triplet mining needs several samples of each class in every batch; a
shuffled batch of 128 MNIST images rarely has a hard positive for every anchor. A P×K
batch holds P classes with K samples each (Hermans, Beyer, Leibe, "In Defense of the
Triplet Loss for Person Re-Identification", 2017).
"""

from __future__ import annotations

import keras
import numpy as np


class PKBatches(keras.utils.PyDataset):
    """Batches of `classes_per_batch` (P) classes × `samples_per_class` (K) samples.

    Each epoch has `len(y) // (P·K)` batches (at least 1). Within a batch the P classes are
    distinct and drawn uniformly; each class's K samples are drawn without replacement when
    the class has at least K samples, else with replacement. Everything follows `seed`, and
    each epoch draws anew (`on_epoch_end`), so runs are reproducible.

    Args:
        x: inputs, an array (N, ...).
        y: integer labels (N,).
        classes_per_batch: P. Defaults to 8.
        samples_per_class: K. Defaults to 16.
        seed: seed of the draws. Defaults to 0.
        **kwargs: `keras.utils.PyDataset` arguments (workers, use_multiprocessing, ...).
    """

    def __init__(self, x, y, classes_per_batch=8, samples_per_class=16, seed=0, **kwargs):
        super().__init__(**kwargs)
        y = np.asarray(y).reshape(-1)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        self.classes = np.unique(y)
        if not 1 <= classes_per_batch <= len(self.classes):
            raise ValueError(f"classes_per_batch must be in [1, {len(self.classes)}] (the "
                             f"number of classes present), got {classes_per_batch}")
        if samples_per_class < 1:
            raise ValueError(f"samples_per_class must be >= 1, got {samples_per_class}")
        self.x, self.y = x, y
        self.p, self.k = int(classes_per_batch), int(samples_per_class)
        self.index_of_class = {c: np.flatnonzero(y == c) for c in self.classes}
        self.rng = np.random.default_rng(seed)
        self.batches_per_epoch = max(1, len(y) // (self.p * self.k))
        self._draw_epoch()

    def _draw_epoch(self):
        batches = []
        for _ in range(self.batches_per_epoch):
            chosen = self.rng.choice(self.classes, size=self.p, replace=False)
            parts = [self.rng.choice(self.index_of_class[c], size=self.k,
                                     replace=len(self.index_of_class[c]) < self.k)
                     for c in chosen]
            batches.append(np.concatenate(parts))
        self.batches = batches

    def __len__(self):
        return self.batches_per_epoch

    def __getitem__(self, index):
        rows = self.batches[index]
        return self.x[rows], self.y[rows]

    def on_epoch_end(self):
        self._draw_epoch()
