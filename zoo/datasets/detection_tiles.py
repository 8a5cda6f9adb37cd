"""Tiled training: random windows of native-resolution images, the size of the network input.

A detector for aerial tiles of 400-2,500 px with 25-45 px objects cannot be trained on the
whole tile letterboxed to its input (the objects shrink below what it sees) and does not
need to be: it is trained on windows cut at native resolution and run over the large image
tile by tile (`zoo.models.detector.tiling.detect_tiled`). `RandomTiles` draws those windows:

- window k of epoch e uses a generator seeded by (seed, k, e), so a batch is a function of
  the seed, its index and the epoch;
- the image is drawn with probability proportional to its area (`original_sizes`), so every
  region of the training set is equally likely;
- a scale s ~ log-uniform(`scale`) sets the window side to tile / s input pixels, resampled
  to the tile size (s = 1: native pixels; a range is multi-scale training); the window's
  origin is uniform over the whole-pixel positions that keep it inside the image (an image
  smaller than the window lies inside it, on a `fill` border);
- with `dihedral`, one of the eight rotations / mirrorings of the square
  (`dihedral_transform`), as aerial images have no "up"; else a horizontal flip with
  probability 1/2;
- boxes move with the pixels and are clipped; a box keeping less than `min_visible` of its
  area or thinner than `min_size` px is dropped (`clip_boxes`).

This is the slicing-aided fine-tuning of Akyon et al., "Slicing Aided Hyper Inference and
Fine-tuning for Small Object Detection" (SAHI), ICIP 2022, with random rather than grid
windows.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from zoo.datasets.detection import (LETTERBOX_FILL, DetectionSet, _image_size, _rng, _targets,
                                    crop_region, flip_horizontal)


def rotate90(image, boxes, classes):
    """Rotate an image (H, W, C) a quarter turn counter-clockwise (`numpy.rot90`) with its
    padded boxes (M, 4) xyxy: a pixel at column x, row y moves to column y, row W - 1 - x,
    so the box (x0, y0, x1, y1) becomes (y0, W - x1, y1, W - x0)."""
    width = image.shape[1]
    boxes = np.asarray(boxes, np.float32)
    classes = np.asarray(classes, np.int32)
    turned = np.stack([boxes[:, 1], width - boxes[:, 2], boxes[:, 3], width - boxes[:, 0]],
                      axis=1)
    turned[classes < 0] = 0.0
    return np.ascontiguousarray(np.rot90(image)), turned.astype(np.float32), classes.copy()


def dihedral_transform(image, boxes, classes, quarter_turns, mirror):
    """One of the 8 symmetries of the square: an optional horizontal mirror, then
    `quarter_turns` counter-clockwise quarter turns (`rotate90`)."""
    if mirror:
        image, boxes, classes = flip_horizontal(image, boxes, classes)
    for _ in range(int(quarter_turns) % 4):
        image, boxes, classes = rotate90(image, boxes, classes)
    return image, boxes, classes


class RandomTiles(keras.utils.PyDataset):
    """Random native-resolution windows of a `DetectionSet` as `(images, targets)` batches
    (see the module docstring).

    Args:
        data: a `DetectionSet`, typically `load_voc(..., image_size=None)` (native
            resolution; each image's own region is its `original_sizes`).
        tile_size: (height, width) or an int, the network input. Must be square when
            `dihedral`.
        tiles_per_epoch: windows per epoch. Defaults to None (as many as cover the images'
            total area once).
        batch_size: windows per batch. Defaults to 16.
        scale: (min, max) zoom of a window (see the module docstring). Defaults to (1, 1).
        dihedral: random rotations and mirrors (aerial images); else horizontal flips.
            Defaults to True.
        min_visible: smallest kept fraction of a cut box's area. Defaults to 0.5.
        min_size: smallest kept box side, pixels. Defaults to 2.
        target_fn: maps `(boxes, classes)` to the targets. Defaults to None (the dict).
        seed: seed of the windows. Defaults to 0.
        fill: value outside an image. Defaults to 0.5.
        **kwargs: `keras.utils.PyDataset` arguments.
    """

    def __init__(self, data, tile_size, tiles_per_epoch=None, batch_size=16, scale=(1.0, 1.0),
                 dihedral=True, min_visible=0.5, min_size=2.0, target_fn=None, seed=0,
                 fill=LETTERBOX_FILL, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(data, DetectionSet):
            raise ValueError(f"data must be a DetectionSet, got {type(data).__name__}")
        self.tile_size = _image_size(tile_size)
        if dihedral and self.tile_size[0] != self.tile_size[1]:
            raise ValueError(f"dihedral augmentation needs square tiles, got {self.tile_size}")
        scale = tuple(float(s) for s in scale)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must be (min, max) with 0 < min <= max, got {scale}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        areas = np.prod(np.asarray(data.original_sizes, np.float64), axis=1)
        if tiles_per_epoch is None:
            tiles_per_epoch = math.ceil(areas.sum() / float(np.prod(self.tile_size)))
        if int(tiles_per_epoch) < 1:
            raise ValueError(f"tiles_per_epoch must be >= 1, got {tiles_per_epoch}")
        self.data, self.batch_size = data, int(batch_size)
        self.tiles_per_epoch, self.scale, self.dihedral = int(tiles_per_epoch), scale, \
            bool(dihedral)
        self.min_visible, self.min_size, self.fill = float(min_visible), float(min_size), \
            float(fill)
        self.target_fn, self.seed, self.epoch = target_fn, int(seed), 0
        self.probabilities = areas / areas.sum()

    def __len__(self):
        return math.ceil(self.tiles_per_epoch / self.batch_size)

    def __repr__(self):
        return (f"RandomTiles(tile_size={self.tile_size}, tiles_per_epoch="
                f"{self.tiles_per_epoch}, scale={self.scale}, dihedral={self.dihedral}, "
                f"min_visible={self.min_visible}, min_size={self.min_size})")

    def on_epoch_end(self):
        self.epoch += 1

    def window(self, rng):
        """(image index, region (x0, y0, x1, y1)) of one random window."""
        index = int(rng.choice(len(self.data), p=self.probabilities))
        height, width = (int(s) for s in self.data.original_sizes[index])
        s = math.exp(rng.uniform(math.log(self.scale[0]), math.log(self.scale[1])))
        side_h, side_w = self.tile_size[0] / s, self.tile_size[1] / s
        # whole-pixel origins: at scale 1 a window is an exact copy of native pixels
        x0 = round(rng.uniform(min(0.0, width - side_w), max(0.0, width - side_w)))
        y0 = round(rng.uniform(min(0.0, height - side_h), max(0.0, height - side_h)))
        return index, (x0, y0, x0 + side_w, y0 + side_h)

    def tile(self, k, epoch=None):
        """Window `k` of `epoch` (default the current one): (image, boxes, classes)."""
        rng = _rng(self.seed, int(k), self.epoch if epoch is None else int(epoch), 2)
        index, region = self.window(rng)
        height, width = (int(s) for s in self.data.original_sizes[index])
        # cut the window (and a pixel of margin) out first: crop_region copies its input
        x0, y0, x1, y1 = region
        left, top = max(0, math.floor(x0) - 1), max(0, math.floor(y0) - 1)
        right, bottom = min(width, math.ceil(x1) + 1), min(height, math.ceil(y1) + 1)
        shift = np.asarray([left, top, left, top], np.float32)
        image, boxes, classes = crop_region(
            self.data.images[index, top:bottom, left:right], self.data.boxes[index] - shift,
            self.data.classes[index], (x0 - left, y0 - top, x1 - left, y1 - top),
            self.tile_size, self.fill, self.min_size, self.min_visible)
        if self.dihedral:
            return dihedral_transform(image, boxes, classes, rng.integers(4), rng.uniform() < 0.5)
        if rng.uniform() < 0.5:
            return flip_horizontal(image, boxes, classes)
        return image, boxes, classes

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range [0, {len(self)})")
        ks = range(index * self.batch_size, min((index + 1) * self.batch_size,
                                                self.tiles_per_epoch))
        images, boxes, classes = zip(*(self.tile(k) for k in ks))
        return np.stack(images), _targets(np.stack(boxes), np.stack(classes), self.target_fn)
