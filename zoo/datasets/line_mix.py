"""Real text lines with synthetic ones mixed into every batch.

Fine-tuning a pretrained recognizer on a few dozen real crops moves it towards them and away
from everything else it could read: after a few epochs it has seen each real crop many times
and no other text. Mixing freshly rendered synthetic lines into every batch (the
`SyntheticText` renderer that pretrained it, number plates included with `plate_fraction`)
keeps the synthetic task in the gradient while the real crops adapt the model — the usual
remedy for a small real set in text recognition, where real and synthetic data are trained
together (e.g. Baek et al., "What If We Only Use Real Datasets for Scene Text Recognition?",
CVPR 2021, and PP-OCR's mixed synthetic/real recipes).

`MixedLines(real, synthetic, share)` serves batch i as real batch i followed by
`synthetic_per_batch(batch, share)` synthetic lines, so that `share` of every batch is
synthetic and an epoch still passes over each real line once. The synthetic lines of batch i
in epoch e are samples `(e · len + i) · k + j` of the generator (k per batch): every epoch
draws new ones, the same ones in a rerun. Labels of both kinds are padded to one width.
"""

from __future__ import annotations

import keras
import numpy as np

from losses.sequence import PAD_VALUE


def synthetic_per_batch(batch_size: int, share: float) -> int:
    """How many synthetic lines join `batch_size` real ones so that `share` of the batch is
    synthetic: round(batch_size · share / (1 − share)), at least 1 for a positive share."""
    share = float(share)
    if not 0.0 <= share < 1.0:
        raise ValueError(f"the synthetic share of a batch must be in [0, 1); got {share!r}")
    if share == 0.0:
        return 0
    return max(1, int(round(int(batch_size) * share / (1.0 - share))))


def _pad_labels(labels, width: int) -> np.ndarray:
    labels = np.asarray(labels)
    padded = np.full((len(labels), width), PAD_VALUE, labels.dtype)
    padded[:, :labels.shape[1]] = labels
    return padded


class MixedLines(keras.utils.PyDataset):
    """Batches of real lines (from `real`) with synthetic lines (from `synthetic`) appended.

    Args:
        real: a `keras.utils.PyDataset` of `(images, labels)` batches with an `epoch`
            attribute (`AugmentedLines`); `EpochOf(mixed)` sets the epoch of both.
        synthetic: a `SyntheticText` of the same height, width and charset as the real
            lines; its `num_samples` only needs to be positive (indices wrap around).
        share: the synthetic share of every batch, in [0, 1).
        batch_size: the real lines per batch (that of `real`).
        **kwargs: `keras.utils.PyDataset` arguments.
    """

    def __init__(self, real, synthetic, share, batch_size, **kwargs):
        super().__init__(**kwargs)
        if (synthetic.height, synthetic.width) != tuple(real.x.shape[1:3]):
            raise ValueError(f"synthetic lines are {synthetic.height}x{synthetic.width} px, "
                             f"the real ones {real.x.shape[1]}x{real.x.shape[2]}")
        self.real, self.synthetic = real, synthetic
        self.per_batch = synthetic_per_batch(batch_size, share)
        self.label_width = max(int(np.asarray(real.y).shape[1]), synthetic.max_length)

    @property
    def epoch(self) -> int:
        return self.real.epoch

    @epoch.setter
    def epoch(self, value: int):
        self.real.epoch = int(value)

    def __len__(self):
        return len(self.real)

    def __getitem__(self, index):
        images, labels = self.real[index]
        if self.per_batch == 0:
            return images, labels
        first = (self.epoch * len(self) + index) * self.per_batch
        drawn = [self.synthetic.sample((first + j) % self.synthetic.num_samples)
                 for j in range(self.per_batch)]
        extra = np.stack([image for image, _ in drawn])[..., None].astype(np.float32) / 255.0
        extra_labels = self.synthetic.charset.encode_batch([text for _, text in drawn],
                                                           self.label_width, PAD_VALUE)
        return (np.concatenate([images, extra]),
                np.concatenate([_pad_labels(labels, self.label_width),
                                np.asarray(extra_labels, np.asarray(labels).dtype)]))
