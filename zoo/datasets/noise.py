"""Noise for denoising: corrupt clean images in [0, 1], freshly every epoch for training.

- "gaussian", level σ:      x̃ = clip(x + n, 0, 1),  n ~ N(0, σ²) per pixel and channel;
- "salt_pepper", level p:   a fraction p of the pixel positions (all channels together) is
                             set to 0 or 1 with equal odds, the rest kept.

`add_noise` corrupts an array once (a seeded generator: the test set's noise is fixed, so
every model is scored on the same noisy images); `NoisyImages` is a `keras.utils.PyDataset`
of (noisy, clean) batches that draws new noise and a new order every epoch, as a denoiser
should train (it never sees the same corruption twice).
"""

from __future__ import annotations

import math

import keras
import numpy as np

NOISES = ("gaussian", "salt_pepper")
DEFAULT_LEVELS = {"gaussian": 0.3, "salt_pepper": 0.1}


def check_noise(kind, level):
    """(kind, level) with the level checked; level None takes the kind's default."""
    if kind not in NOISES:
        raise ValueError(f"noise must be one of {', '.join(NOISES)}, got {kind!r}")
    level = DEFAULT_LEVELS[kind] if level is None else level
    upper = 1.0 if kind == "salt_pepper" else math.inf
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level <= upper:
        raise ValueError(f"the {kind} noise level must be a number in (0, {upper}], got "
                         f"{level!r}")
    return kind, float(level)


def add_noise(images, kind="gaussian", level=None, rng=None):
    """A noisy float32 copy of `images` (N, H, W, C) in [0, 1] (module docstring)."""
    kind, level = check_noise(kind, level)
    rng = rng if rng is not None else np.random.default_rng(0)
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}")
    if kind == "gaussian":
        noisy = images + rng.normal(0.0, level, images.shape).astype(np.float32)
        return np.clip(noisy, 0.0, 1.0)
    noisy = images.copy()
    hit = rng.random(images.shape[:3]) < level
    salt = rng.random(images.shape[:3]) < 0.5
    noisy[hit & salt] = 1.0
    noisy[hit & ~salt] = 0.0
    return noisy


class NoisyImages(keras.utils.PyDataset):
    """(noisy, clean) batches of `images`, new noise and a new order every epoch.

    Args:
        images: clean images (N, H, W, C) in [0, 1].
        batch_size: images per batch.
        noise, level: see `add_noise`.
        seed: seed of the order and the noise of every epoch.
    """

    def __init__(self, images, batch_size=128, noise="gaussian", level=None, seed=0,
                 **kwargs):
        super().__init__(**kwargs)
        self.images = np.asarray(images, np.float32)
        self.noise, self.level = check_noise(noise, level)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size, self.seed, self.epoch = batch_size, int(seed), 0
        self._shuffle()

    def _shuffle(self):
        self.rng = np.random.default_rng([self.seed, self.epoch])
        self.order = self.rng.permutation(len(self.images))

    def __len__(self):
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        clean = self.images[rows]
        noise_rng = np.random.default_rng([self.seed, self.epoch, index])
        return add_noise(clean, self.noise, self.level, noise_rng), clean

    def on_epoch_end(self):
        self.epoch += 1
        self._shuffle()
