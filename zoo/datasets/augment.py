"""Image augmentation for classification training: random shifts and horizontal flips.

`ShiftedBatches` is a `keras.utils.PyDataset` of shuffled batches in which every image is
moved by up to `max_shift` pixels in each direction (the uncovered border filled with 0, the
background of MNIST-like digits) and, with `flip=True`, mirrored left-right with probability
1/2. Random translation of a few pixels is the classic way to lift LeNet-5 on MNIST (Simard,
Steinkraus, Platt 2003, "Best practices for convolutional neural networks applied to visual
document analysis"). Batch i of epoch e depends on (seed, e, i) alone.
"""

from __future__ import annotations

import math

import keras
import numpy as np

AUGMENTATIONS = ("none", "shift", "shift_flip")


def shift_images(images, shifts, fill=0.0) -> np.ndarray:
    """Images (N, H, W, C) moved by integer `shifts` (N, 2) = (dy, dx), borders = `fill`.

    Pixel (r, c) of the result is pixel (r - dy, c - dx) of the input when that is inside it.
    """
    images = np.asarray(images)
    shifts = np.asarray(shifts, np.int64).reshape(-1, 2)
    pad = int(np.abs(shifts).max(initial=0))
    if pad == 0:
        return images.copy()
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=fill)
    height, width = images.shape[1:3]
    out = np.empty_like(images)
    for k, (dy, dx) in enumerate(shifts):
        top, left = pad - dy, pad - dx
        out[k] = padded[k, top:top + height, left:left + width]
    return out


class ShiftedBatches(keras.utils.PyDataset):
    """Shuffled batches of randomly shifted (and optionally flipped) images.

    Args:
        x: images (N, H, W, C).
        y: labels (N,).
        batch_size: images per batch. Defaults to 64.
        max_shift: largest shift in pixels along each axis. Defaults to 2.
        flip: also mirror left-right with probability 1/2. Defaults to False.
        seed: seed of the order and the augmentation. Defaults to 0.
        **kwargs: `keras.utils.PyDataset` arguments.
    """

    def __init__(self, x, y, batch_size=64, max_shift=2, flip=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if int(batch_size) < 1 or int(max_shift) < 0:
            raise ValueError(f"batch_size must be >= 1 and max_shift >= 0, got {batch_size} "
                             f"and {max_shift}")
        self.x, self.y = x, np.asarray(y)
        self.batch_size, self.max_shift, self.flip = int(batch_size), int(max_shift), bool(flip)
        self.seed, self.epoch = seed, 0
        self._order()

    def _order(self):
        self.order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.y))

    def __len__(self):
        return math.ceil(len(self.y) / self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        shifts = rng.integers(-self.max_shift, self.max_shift + 1, size=(len(rows), 2))
        images = shift_images(self.x[rows], shifts)
        if self.flip:
            mirrored = rng.uniform(size=len(rows)) < 0.5
            images[mirrored] = images[mirrored, :, ::-1]
        return images, self.y[rows]

    def on_epoch_end(self):
        self.epoch += 1
        self._order()
