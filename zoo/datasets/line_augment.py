"""Augmentation of real text-line crops: each epoch, every crop moved, bent and re-lit a little.

A few dozen real crops (a user's plates) are memorised within a few epochs: the training CER
reaches 0 while unseen crops are still misread. `perturb_line` draws, per crop and epoch,

- geometry (one affine map, bilinear, borders filled with the crop's median edge value):
  horizontal shear ±0.15, rotation ±3°, scale 0.9-1.1 on each axis, shift ±4 % of the width
  and ±6 % of the height: how a box annotated by another hand, or a plate seen from another
  angle, is cut;
- light: contrast × 0.6-1.2 and brightness ±0.12 around mid-grey, Gaussian blur σ up to 1
  px (every other crop), pixel noise σ up to 0.03.

The label does not change: no character leaves the crop at these magnitudes (the loader's
margin is 10 % of the box height on each side).

Polarity (`invert_share`, off by default): plates, signs and screens come both dark on light
and light on dark, and a user's crops may hold only one of the two. Fine-tuning on them
teaches the recognizer to read that one only; drawing a share of the crops inverted
(1 − x) each epoch keeps both, as PP-OCR's recognition augmentation does (its `reverse`
step, `ppocr/data/imaug/rec_img_aug.py`). `AugmentedLines` is the
`keras.utils.PyDataset` that serves them: shuffled batches, batch i of epoch e a function of
(seed, e, i) alone; `EpochOf(dataset)` among the fit's callbacks tells it the epoch (also
the right one in a resumed fit).

Reference: the geometric and photometric perturbations of text-recognition training, e.g.
Shi et al., "ASTER: An Attentional Scene Text Recognizer with Flexible Rectification",
TPAMI 2019 (§4.2 data augmentation), here in a small fixed form.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def perturb_line(image, rng) -> np.ndarray:
    """One random perturbation of a float (H, W) line image in [0, 1] (see the docstring)."""
    from PIL import Image, ImageFilter

    height, width = image.shape
    edge = float(np.median(np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])))
    shear = rng.uniform(-0.15, 0.15)
    angle = math.radians(rng.uniform(-3.0, 3.0))
    scale_x, scale_y = rng.uniform(0.9, 1.1, size=2)
    shift_x, shift_y = rng.uniform(-0.04, 0.04) * width, rng.uniform(-0.06, 0.06) * height
    # output pixel p comes from input A·(p - c) + c - t: rotation, shear and scale about the
    # centre c, then a shift t
    cos, sin = math.cos(angle), math.sin(angle)
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1, shear], [0, 1]]) @ np.diag(
        [scale_x, scale_y])
    inverse = np.linalg.inv(forward)
    centre = np.array([width / 2, height / 2])
    offset = centre - inverse @ (centre + np.array([shift_x, shift_y]))
    grey = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    moved = grey.transform((width, height), Image.AFFINE,
                           (inverse[0, 0], inverse[0, 1], offset[0],
                            inverse[1, 0], inverse[1, 1], offset[1]),
                           resample=Image.BILINEAR, fillcolor=int(round(edge * 255)))
    if rng.random() < 0.5:
        moved = moved.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.2, 1.0))))
    values = np.asarray(moved, np.float32) / 255.0
    values = (values - 0.5) * rng.uniform(0.6, 1.2) + 0.5 + rng.uniform(-0.12, 0.12)
    values = values + rng.normal(0.0, rng.uniform(0.0, 0.03), size=values.shape)
    return np.clip(values, 0.0, 1.0).astype(np.float32)


class AugmentedLines(keras.utils.PyDataset):
    """Shuffled batches of `(perturbed images, labels)` drawn from fixed text lines.

    Args:
        x: float32 (N, H, W, 1) line images in [0, 1].
        y: int32 (N, L) padded labels.
        batch_size: lines per batch. Defaults to 32.
        seed: an int. Defaults to 0.
        perturb: perturb every line (False: the lines as they are, still shuffled per
            epoch). Defaults to True.
        invert_share: the share of lines served inverted (1 − x, light on dark), drawn per
            line and epoch, in [0, 1]. Defaults to 0.
        **kwargs: `keras.utils.PyDataset` arguments.
    """

    def __init__(self, x, y, batch_size=32, seed=0, perturb=True, invert_share=0.0, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y = np.asarray(x, np.float32), np.asarray(y)
        if len(self.x) != len(self.y) or len(self.x) == 0:
            raise ValueError(f"need as many labels as images, at least one; got {len(self.x)} "
                             f"images and {len(self.y)} labels")
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.perturb = bool(perturb)
        self.invert_share = float(invert_share)
        if not 0.0 <= self.invert_share <= 1.0:
            raise ValueError(f"invert_share must be in [0, 1], got {invert_share!r}")
        self.epoch = 0  # set by `EpochOf` at each epoch's start, so a resumed fit goes on

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range [0, {len(self)})")
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))
        chosen = order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.x[chosen]
        if self.perturb:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            images = np.stack([perturb_line(self.x[k, ..., 0], rng) for k in chosen])[..., None]
        if self.invert_share > 0:
            # a stream of its own, so that the perturbations do not change with the share
            flip = np.random.default_rng([self.seed, self.epoch, index, 1]).random(len(chosen))
            images = np.where((flip < self.invert_share)[:, None, None, None], 1.0 - images,
                              images).astype(np.float32)
        return images, self.y[chosen]


class EpochOf(keras.callbacks.Callback):
    """Tells an `AugmentedLines` which epoch the fit is in (before its first batch)."""

    def __init__(self, dataset: AugmentedLines):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset.epoch = int(epoch)
