"""Object-detection data: seeded synthetic scenes, Pascal VOC and COCO-JSON loaders, and
augmentations that move the boxes with the pixels.

One representation everywhere (padded arrays, the "dense" layout of keras-cv and of Keras's
own bounding-box layers):

- images:    float32 (N, H, W, 3) in [0, 1];
- boxes:     float32 (N, M, 4), "xyxy" in pixels of the (resized) image: x_min, y_min, x_max,
             y_max on pixel *edges*, so a box over columns 3..5 is x_min=3, x_max=6 and its
             width is x_max - x_min;
- classes:   int32 (N, M), ids 0..K-1; padding slots have class `PAD_CLASS` = -1 and box 0;
             the valid objects of an image come first;
- difficult: bool (N, M), Pascal VOC's `difficult` / COCO's `iscrowd` (an "ignore" region
             in evaluation, see `zoo.evaluation.detection`), False for padding.

M is `max_objects`. `DetectionSet` holds the arrays plus the class names and, for loaded
images, how to map boxes back to the original pixels. Batches from `SyntheticScenes` and
`DetectionBatches` (`keras.utils.PyDataset`s) are `(images, {"boxes", "classes"})`, or
`(images, target_fn(boxes, classes))` where a model needs its own target encoding.

Synthetic scenes (`SyntheticScenes`, `synthetic_scene_set`): 1-6 filled shapes per 128x128
image, classes `SHAPE_CLASSES` = circle, square, triangle, diamond, cross, drawn with PIL
(self-contained and fast, no dataset download), long side 12-48 px drawn log-uniformly,
aspect 0.75-1.33, in a random colour that contrasts with the background. Backgrounds are
textured: a base colour, smooth low-frequency colour noise, random stripes, and pixel noise
over the whole image. Objects may overlap: two objects' drawing rectangles share at most
`max_overlap` (0.3) of the smaller one, so no object is hidden. Boxes are amodal and tight:
each is the bounding box of every pixel its shape covers when drawn alone (objects drawn
later occlude earlier ones but do not change their boxes). Every object lies fully inside the
image. Scene i depends only on (seed, i); images are quantised to 8 bits, so a cached set is
exactly what the generator makes.

Real data (`load_voc`, `load_coco`): images are resized to a fixed `image_size`, by default
with a *letterbox* (aspect kept, the image centred, the rest filled with grey 0.5); with
`letterbox=False` a plain resize stretches it. Boxes are scaled the same way:
`box_resized = box_original * scale + offset` per axis, with `scales` and `offsets` stored
per image (`DetectionSet.to_original` inverts it). VOC coordinates are 1-based inclusive
pixel indices; as in Detectron2 they become edges by `x_min - 1, y_min - 1, x_max, y_max`.
COCO's `bbox` is already [x, y, w, h] on edges.

Augmentations (`flip_horizontal`, `crop_region`, `clip_boxes`, `BoxAugmenter`) are
NumPy/PIL, not Keras's preprocessing layers: those run per batch on backend tensors with
their own `SeedGenerator` (so a sample is no longer a function of (seed, index)), and they
drop a box only when its clipped area is 0, whereas we also drop boxes that keep less than
`min_visible` of their area or shrink below `min_size` pixels. `keras.layers.RandomFlip` is
the independent reference for `flip_horizontal` in the tests.

Bad input (a missing folder or file, a corrupt XML or JSON file, an unreadable image) raises
`zoo.datasets.errors.DataError` (a ValueError; `DataNotFound`, also a FileNotFoundError, for
what is missing) with one line that names the file; a truncated image is loaded with a
`TruncatedImageWarning` (see `zoo.datasets.formats.read_image`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import keras

from zoo.boxes import box_area, pairwise_intersection
from zoo.datasets.errors import DataError, DataNotFound
from zoo.datasets.formats import IMAGE_SUFFIXES, read_image
from zoo.datasets.sources import cache_dir

PAD_CLASS = -1
SHAPE_CLASSES = ("circle", "square", "triangle", "diamond", "cross")
IMAGE_SIZE = (128, 128)
MIN_OBJECTS, MAX_OBJECTS = 1, 6
MIN_SIZE, MAX_SIZE = 12, 48
MAX_OVERLAP = 0.3
LETTERBOX_FILL = 0.5
# Part of the cache key of `synthetic_scene_set`: bump it whenever rendering changes.
GENERATOR_VERSION = 1


def _image_size(image_size):
    """An int or (height, width) -> (height, width) of ints >= 1."""
    if isinstance(image_size, (int, np.integer)):
        image_size = (int(image_size), int(image_size))
    try:
        height, width = (int(s) for s in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}") \
            from None
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return height, width


def _rng(seed, *index):
    entropy = list(seed) if isinstance(seed, (tuple, list)) else [seed]
    return np.random.default_rng([int(s) for s in entropy] + [int(i) for i in index])


# ------------------------------------------------------------------ the representation

def pad_objects(objects, max_objects=None):
    """Per-image objects -> padded arrays (boxes, classes, difficult).

    Args:
        objects: one entry per image: `(boxes (k, 4), classes (k,))` or
            `(boxes, classes, difficult (k,))`.
        max_objects: M, the padded length. Defaults to None (the largest k, at least 1).

    Returns:
        boxes float32 (N, M, 4), classes int32 (N, M) with -1 padding, difficult bool (N, M).
    """
    parts = []
    for number, item in enumerate(objects):
        boxes = np.asarray(item[0], np.float32).reshape(-1, 4)
        classes = np.asarray(item[1]).reshape(-1).astype(np.int32)
        difficult = (np.asarray(item[2], bool).reshape(-1) if len(item) > 2
                     else np.zeros(len(classes), bool))
        if not len(boxes) == len(classes) == len(difficult):
            raise ValueError(f"image {number}: {len(boxes)} boxes, {len(classes)} classes and "
                             f"{len(difficult)} difficult flags; expected equal counts")
        parts.append((boxes, classes, difficult))
    longest = max([len(p[1]) for p in parts], default=0)
    m = max(longest, 1) if max_objects is None else int(max_objects)
    if longest > m:
        raise ValueError(f"an image holds {longest} objects but max_objects={m}; raise "
                         f"max_objects")
    boxes = np.zeros((len(parts), m, 4), np.float32)
    classes = np.full((len(parts), m), PAD_CLASS, np.int32)
    difficult = np.zeros((len(parts), m), bool)
    for i, (b, c, d) in enumerate(parts):
        boxes[i, :len(c)], classes[i, :len(c)], difficult[i, :len(c)] = b, c, d
    return boxes, classes, difficult


@dataclass(frozen=True)
class DetectionSet:
    """A fixed set of images with padded ground truth (see the module docstring).

    `images` float32 (N, H, W, 3); `boxes` float32 (N, M, 4) xyxy pixels; `classes` int32
    (N, M), -1 = padding; `difficult` bool (N, M); `class_names`; `names` (file names or
    "synthetic-<i>"); `scales` (N, 2) and `offsets` (N, 2), (x, y), that map original pixels
    to resized ones; `original_sizes` (N, 2), (height, width). Unpacks as
    `images, targets` with `targets = {"boxes": ..., "classes": ...}`.
    """

    images: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    difficult: np.ndarray
    class_names: tuple
    names: tuple = ()
    scales: np.ndarray = field(default=None, repr=False)
    offsets: np.ndarray = field(default=None, repr=False)
    original_sizes: np.ndarray = field(default=None, repr=False)

    def __post_init__(self):
        n = len(self.images)
        if self.images.ndim != 4 or self.boxes.shape[:1] != (n,) or self.boxes.shape[2:] != (4,):
            raise ValueError(f"expected images (N, H, W, C) and boxes (N, M, 4), got "
                             f"{self.images.shape} and {self.boxes.shape}")
        if self.classes.shape != self.boxes.shape[:2] or self.difficult.shape != self.classes.shape:
            raise ValueError(f"classes and difficult must have shape {self.boxes.shape[:2]}, got "
                             f"{self.classes.shape} and {self.difficult.shape}")
        if self.classes.size and self.classes.max() >= len(self.class_names):
            raise ValueError(f"class ids go up to {self.classes.max()} but there are only "
                             f"{len(self.class_names)} class names")
        defaults = {"names": tuple(f"image-{i}" for i in range(n)),
                    "scales": np.ones((n, 2), np.float32),
                    "offsets": np.zeros((n, 2), np.float32),
                    "original_sizes": np.tile(np.asarray(self.images.shape[1:3]), (n, 1))}
        for name, value in defaults.items():
            if getattr(self, name) is None or (name == "names" and not self.names):
                object.__setattr__(self, name, value)

    def __len__(self):
        return len(self.images)

    def __iter__(self):
        return iter((self.images, self.targets))

    @property
    def targets(self) -> dict:
        return {"boxes": self.boxes, "classes": self.classes}

    @property
    def max_objects(self) -> int:
        return self.boxes.shape[1]

    @property
    def num_objects(self) -> np.ndarray:
        """Objects per image, int (N,)."""
        return (self.classes >= 0).sum(axis=1)

    def objects(self, index):
        """The valid (boxes (k, 4), classes (k,), difficult (k,)) of image `index`."""
        valid = self.classes[index] >= 0
        return self.boxes[index][valid], self.classes[index][valid], self.difficult[index][valid]

    def subset(self, indices) -> DetectionSet:
        indices = np.asarray(indices, np.int64).reshape(-1)
        return DetectionSet(self.images[indices], self.boxes[indices], self.classes[indices],
                            self.difficult[indices], self.class_names,
                            tuple(self.names[i] for i in indices), self.scales[indices],
                            self.offsets[indices], self.original_sizes[indices])

    def to_original(self, index, boxes) -> np.ndarray:
        """Boxes (k, 4) xyxy in the resized image `index` -> pixels of the original image."""
        scale = np.tile(self.scales[index], 2)
        offset = np.tile(self.offsets[index], 2)
        return (np.asarray(boxes, np.float32) - offset) / scale


# ------------------------------------------------------------------ synthetic scenes

@dataclass(frozen=True)
class SceneObject:
    """One shape of a scene: its class name, the rectangle (x0, y0, x1, y1) on pixel edges
    it is drawn into, and its RGB colour in [0, 1]."""

    shape: str
    rect: tuple
    color: tuple


def shape_mask(shape, rect, image_size) -> np.ndarray:
    """bool (H, W): the pixels that `shape` covers when drawn into `rect` (x0, y0, x1, y1)."""
    from PIL import Image, ImageDraw

    height, width = _image_size(image_size)
    x0, y0, x1, y1 = (int(v) for v in rect)
    right, bottom = x1 - 1, y1 - 1  # PIL's coordinates are inclusive
    cx, cy = (x0 + right) / 2.0, (y0 + bottom) / 2.0
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse([x0, y0, right, bottom], fill=255)
    elif shape == "square":
        draw.rectangle([x0, y0, right, bottom], fill=255)
    elif shape == "triangle":
        draw.polygon([(x0, bottom), (right, bottom), (cx, y0)], fill=255)
    elif shape == "diamond":
        draw.polygon([(cx, y0), (right, cy), (cx, bottom), (x0, cy)], fill=255)
    elif shape == "cross":
        half = max(1.0, min(x1 - x0, y1 - y0) / 7.0)
        draw.rectangle([x0, cy - half, right, cy + half], fill=255)
        draw.rectangle([cx - half, y0, cx + half, bottom], fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {SHAPE_CLASSES}")
    return np.asarray(canvas) > 0


def mask_box(mask) -> np.ndarray:
    """The tight xyxy box (pixel edges, float32) of a boolean mask; zeros if it is empty."""
    rows, columns = np.nonzero(np.any(mask, axis=1))[0], np.nonzero(np.any(mask, axis=0))[0]
    if rows.size == 0:
        return np.zeros(4, np.float32)
    return np.asarray([columns[0], rows[0], columns[-1] + 1, rows[-1] + 1], np.float32)


def render_scene(objects, image_size=IMAGE_SIZE, background=None) -> np.ndarray:
    """Draw `objects` (`SceneObject`s, in order: later ones on top) onto `background`.

    Args:
        objects: the shapes.
        image_size: (height, width) or an int; None keeps every image at its native
            resolution, top-left on a canvas as large as the largest (`native_canvas`; the
            form tiled training and inference read). Defaults to (128, 128).
        background: float (H, W, 3) in [0, 1]. Defaults to None (black).

    Returns:
        float32 (H, W, 3) in [0, 1] (no noise, not quantised).
    """
    height, width = _image_size(image_size)
    image = (np.zeros((height, width, 3), np.float32) if background is None
             else np.array(background, np.float32))
    for obj in objects:
        image[shape_mask(obj.shape, obj.rect, (height, width))] = np.asarray(obj.color)
    return image


def random_background(rng, image_size=IMAGE_SIZE):
    """A textured background: (float32 (H, W, 3), base colour (3,))."""
    from PIL import Image

    height, width = _image_size(image_size)
    base = rng.uniform(0.1, 0.9, size=3)
    coarse = rng.normal(0.0, rng.uniform(0.03, 0.12), size=(6, 6, 3)).astype(np.float32)
    smooth = np.stack([np.asarray(Image.fromarray(coarse[..., c]).resize((width, height),
                                                                          Image.BICUBIC))
                       for c in range(3)], axis=-1)
    angle, period = rng.uniform(0, np.pi), rng.uniform(4.0, 24.0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    wave = np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period
                  + rng.uniform(0, 2 * np.pi))
    stripes = rng.uniform(0.0, 0.1) * wave[..., None] * rng.uniform(-1.0, 1.0, size=3)
    return np.clip(base + smooth + stripes, 0.0, 1.0).astype(np.float32), base


def _contrasting_color(rng, base):
    for _ in range(50):
        color = rng.uniform(0.0, 1.0, size=3)
        if np.abs(color - base).mean() >= 0.3 and color.max() >= 0.25:
            break
    return tuple(float(c) for c in color)


def _overlap_of_smaller(a, b):
    """Intersection of two xyxy rectangles over the smaller one's area."""
    smaller = min(float(box_area(a)), float(box_area(b)))
    return float(pairwise_intersection(a, b)[0, 0]) / max(smaller, 1)


def random_scene_objects(rng, image_size=IMAGE_SIZE, classes=SHAPE_CLASSES,
                         min_objects=MIN_OBJECTS, max_objects=MAX_OBJECTS, min_size=MIN_SIZE,
                         max_size=MAX_SIZE, max_overlap=MAX_OVERLAP, base=(0.5, 0.5, 0.5)):
    """Random `SceneObject`s fully inside the image (see the module docstring)."""
    height, width = _image_size(image_size)
    count = int(rng.integers(min_objects, max_objects + 1))
    objects = []
    for _ in range(count):
        for _attempt in range(30):
            side = math.exp(rng.uniform(math.log(min_size), math.log(max_size)))
            aspect = math.exp(rng.uniform(math.log(0.75), math.log(4 / 3)))
            w = int(np.clip(round(side * math.sqrt(aspect)), min_size, min(max_size, width)))
            h = int(np.clip(round(side / math.sqrt(aspect)), min_size, min(max_size, height)))
            x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            rect = (x0, y0, x0 + w, y0 + h)
            if all(_overlap_of_smaller(rect, o.rect) <= max_overlap for o in objects):
                shape = classes[int(rng.integers(len(classes)))]
                objects.append(SceneObject(shape, rect, _contrasting_color(rng, base)))
                break
    return objects


class SyntheticScenes(keras.utils.PyDataset):
    """Seeded synthetic detection scenes as a `keras.utils.PyDataset`.

    Batches are `(images (B, H, W, 3) float32, {"boxes": (B, M, 4), "classes": (B, M)})`
    (or `target_fn(boxes, classes)` in place of the dict), M = `max_objects`. Scene i
    depends only on (seed, i): the same seed gives the same scenes whatever the batch size,
    workers or order of access. With `augment`, scene i of epoch e is augmented with a
    generator seeded by (seed, i, e).

    Args:
        num_images: scenes per epoch. Defaults to 10,000.
        batch_size: scenes per batch (the last batch may be smaller). Defaults to 32.
        image_size: (height, width) or an int; None keeps every image at its native
            resolution, top-left on a canvas as large as the largest (`native_canvas`; the
            form tiled training and inference read). Defaults to (128, 128).
        classes: shape names, a subset of `SHAPE_CLASSES` (class id = position). Defaults
            to `SHAPE_CLASSES`.
        min_objects: fewest objects per scene. Defaults to 1.
        max_objects: most objects per scene, and the padded length M. Defaults to 6.
        min_size: shortest side of an object's drawing rectangle, pixels. Defaults to 12.
        max_size: longest side, pixels. Defaults to 48.
        max_overlap: the most two drawing rectangles may share, as a fraction of the
            smaller one. Defaults to 0.3.
        seed: an int or a tuple of ints. Defaults to 0.
        augment: a `BoxAugmenter` (or any callable `(image, boxes, classes, rng)`), or
            None. Defaults to None.
        target_fn: maps `(boxes, classes)` of a batch to the targets. Defaults to None
            (the dict).
        **kwargs: `keras.utils.PyDataset` arguments (workers, use_multiprocessing,
            max_queue_size).
    """

    def __init__(self, num_images=10_000, batch_size=32, image_size=IMAGE_SIZE,
                 classes=SHAPE_CLASSES, min_objects=MIN_OBJECTS, max_objects=MAX_OBJECTS,
                 min_size=MIN_SIZE, max_size=MAX_SIZE, max_overlap=MAX_OVERLAP, seed=0,
                 augment=None, target_fn=None, **kwargs):
        super().__init__(**kwargs)
        self.image_size = _image_size(image_size)
        self.classes = tuple(classes)
        unknown = [c for c in self.classes if c not in SHAPE_CLASSES]
        if unknown or not self.classes:
            raise ValueError(f"classes must be a non-empty subset of {SHAPE_CLASSES}, got "
                             f"{classes!r}")
        if int(num_images) < 1 or int(batch_size) < 1:
            raise ValueError(f"num_images and batch_size must be >= 1; got {num_images}, "
                             f"{batch_size}")
        if not 1 <= int(min_objects) <= int(max_objects):
            raise ValueError(f"need 1 <= min_objects <= max_objects; got {min_objects}, "
                             f"{max_objects}")
        if not 2 <= int(min_size) <= int(max_size) <= min(self.image_size):
            raise ValueError(f"need 2 <= min_size <= max_size <= {min(self.image_size)} (the "
                             f"image side); got {min_size}, {max_size}")
        if not 0.0 <= float(max_overlap) <= 1.0:
            raise ValueError(f"max_overlap must be in [0, 1], got {max_overlap}")
        self.num_images, self.batch_size = int(num_images), int(batch_size)
        self.min_objects, self.max_objects = int(min_objects), int(max_objects)
        self.min_size, self.max_size = int(min_size), int(max_size)
        self.max_overlap = float(max_overlap)
        self.seed = tuple(int(s) for s in seed) if isinstance(seed, (tuple, list)) else int(seed)
        self.augment, self.target_fn, self.epoch = augment, target_fn, 0

    def __len__(self):
        return math.ceil(self.num_images / self.batch_size)

    def scene(self, index: int):
        """(uint8 image (H, W, 3), [SceneObject, ...], boxes (k, 4), classes (k,)) of scene
        `index`, without augmentation."""
        if not 0 <= index < self.num_images:
            raise IndexError(f"scene {index} out of range [0, {self.num_images})")
        rng = _rng(self.seed, index)
        background, base = random_background(rng, self.image_size)
        objects = random_scene_objects(rng, self.image_size, self.classes, self.min_objects,
                                       self.max_objects, self.min_size, self.max_size,
                                       self.max_overlap, base)
        image = render_scene(objects, self.image_size, background)
        image = image + rng.normal(0.0, rng.uniform(0.0, 0.04), size=image.shape)
        image = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
        boxes = np.asarray([mask_box(shape_mask(o.shape, o.rect, self.image_size))
                            for o in objects], np.float32).reshape(-1, 4)
        classes = np.asarray([self.classes.index(o.shape) for o in objects], np.int32)
        return image, objects, boxes, classes

    def arrays(self, indices, epoch=None):
        """(images float32 (B, H, W, 3), boxes (B, M, 4), classes (B, M)) of `indices`;
        augmented (as in `epoch`, default the current one) when `augment` is set."""
        epoch = self.epoch if epoch is None else int(epoch)
        images, objects = [], []
        for i in indices:
            image, _, boxes, classes = self.scene(int(i))
            images.append(image.astype(np.float32) / 255.0)
            objects.append((boxes, classes))
        boxes, classes, _ = pad_objects(objects, self.max_objects)
        if self.augment is not None:
            for k, i in enumerate(indices):
                images[k], boxes[k], classes[k] = self.augment(
                    images[k], boxes[k], classes[k], _rng(self.seed, int(i), epoch, 1))
        return np.stack(images).astype(np.float32), boxes, classes

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range [0, {len(self)})")
        start = index * self.batch_size
        x, boxes, classes = self.arrays(range(start, min(start + self.batch_size,
                                                         self.num_images)))
        return x, _targets(boxes, classes, self.target_fn)

    def on_epoch_end(self):
        self.epoch += 1

    def to_set(self) -> DetectionSet:
        """All `num_images` scenes (never augmented) as a `DetectionSet`."""
        images, objects = [], []
        for i in range(self.num_images):
            image, _, boxes, classes = self.scene(i)
            images.append(image)
            objects.append((boxes, classes))
        boxes, classes, difficult = pad_objects(objects, self.max_objects)
        return DetectionSet(np.stack(images).astype(np.float32) / 255.0, boxes, classes,
                            difficult, self.classes,
                            tuple(f"synthetic-{i}" for i in range(self.num_images)))


def _targets(boxes, classes, target_fn):
    if target_fn is None:
        return {"boxes": boxes, "classes": classes}
    return target_fn(boxes, classes)


def synthetic_scene_set(num_images=500, seed=1, image_size=IMAGE_SIZE, classes=SHAPE_CLASSES,
                        min_objects=MIN_OBJECTS, max_objects=MAX_OBJECTS, min_size=MIN_SIZE,
                        max_size=MAX_SIZE, max_overlap=MAX_OVERLAP, cache=True) -> DetectionSet:
    """A fixed synthetic test set, cached under `cache_dir()/synth_scenes/`.

    The cache key covers every argument and `GENERATOR_VERSION`; a cached set is identical
    to a fresh generation.

    Args:
        num_images: number of scenes. Defaults to 500.
        seed: generator seed; use one the training set does not. Defaults to 1
            (`SyntheticScenes` defaults to 0).
        image_size, classes, min_objects, max_objects, min_size, max_size, max_overlap:
            as `SyntheticScenes`.
        cache: read/write the cache. Defaults to True.
    """
    scenes = SyntheticScenes(num_images, 64, image_size, classes, min_objects, max_objects,
                             min_size, max_size, max_overlap, seed)
    key = json.dumps({"version": GENERATOR_VERSION, "n": scenes.num_images, "seed": scenes.seed,
                      "size": scenes.image_size, "classes": scenes.classes,
                      "objects": [scenes.min_objects, scenes.max_objects],
                      "sizes": [scenes.min_size, scenes.max_size],
                      "overlap": scenes.max_overlap}, sort_keys=True)
    path = cache_dir() / "synth_scenes" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    if cache and path.exists():
        with np.load(path) as data:
            return DetectionSet(data["images"].astype(np.float32) / 255.0, data["boxes"],
                                data["classes"], np.zeros(data["classes"].shape, bool),
                                scenes.classes,
                                tuple(f"synthetic-{i}" for i in range(scenes.num_images)))
    result = scenes.to_set()
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez_compressed(tmp, images=np.round(result.images * 255).astype(np.uint8),
                                boxes=result.boxes, classes=result.classes, key=np.asarray(key))
            os.replace(tmp, path)
        except OSError as error:  # a read-only home must not break loading
            print(f"[losslab] could not cache synthetic scenes at {path}: {error}",
                  file=sys.stderr)
    return result


# ------------------------------------------------------------------ real datasets

def resize_image(image, image_size, letterbox=True, fill=LETTERBOX_FILL):
    """A PIL image -> (float32 (H, W, 3) in [0, 1], scale (sx, sy), offset (dx, dy)).

    With `letterbox` the aspect is kept and the image centred on a `fill` background; else
    it is stretched. A pixel edge x of the original lands at x * sx + dx.
    """
    from PIL import Image

    height, width = _image_size(image_size)
    image = image.convert("RGB")
    if letterbox:
        scale = min(width / image.width, height / image.height)
        new_w = max(1, min(width, round(image.width * scale)))
        new_h = max(1, min(height, round(image.height * scale)))
    else:
        new_w, new_h = width, height
    resized = np.asarray(image.resize((new_w, new_h), Image.BILINEAR), np.float32) / 255.0
    dx, dy = (width - new_w) // 2, (height - new_h) // 2
    canvas = np.full((height, width, 3), fill, np.float32)
    canvas[dy:dy + new_h, dx:dx + new_w] = resized
    return canvas, (new_w / image.width, new_h / image.height), (dx, dy)


def native_canvas(images, fill=LETTERBOX_FILL) -> np.ndarray:
    """Images of different sizes at their own resolution -> one float32 array (N, H_max,
    W_max, 3), each image in the top-left corner (so its pixel coordinates are unchanged)
    and `fill` elsewhere."""
    height = max(image.shape[0] for image in images)
    width = max(image.shape[1] for image in images)
    canvas = np.full((len(images), height, width, 3), fill, np.float32)
    for i, image in enumerate(images):
        canvas[i, :image.shape[0], :image.shape[1]] = image
    return canvas


def _read_images(paths, image_size, letterbox, fill):
    images, scales, offsets, sizes = [], [], [], []
    for path in paths:
        image = read_image(path, "RGB")  # DataError naming a bad file; warns if truncated
        sizes.append((image.height, image.width))
        if image_size is None:  # native resolution
            images.append(np.asarray(image, np.float32) / 255.0)
            scales.append((1.0, 1.0))
            offsets.append((0, 0))
            continue
        canvas, scale, offset = resize_image(image, image_size, letterbox, fill)
        images.append(canvas)
        scales.append(scale)
        offsets.append(offset)
    images = native_canvas(images, fill) if image_size is None else np.stack(images)
    return (images, np.asarray(scales, np.float32), np.asarray(offsets, np.float32),
            np.asarray(sizes, np.int64))


def _assemble(paths, per_image, class_names, image_size, letterbox, fill, max_objects):
    """Read and resize the images, scale their (original-pixel) boxes, pad everything."""
    images, scales, offsets, sizes = _read_images(paths, image_size, letterbox, fill)
    objects = []
    for (boxes, classes, difficult), scale, offset in zip(per_image, scales, offsets):
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4) * np.tile(scale, 2) \
            + np.tile(offset, 2)
        objects.append((boxes, classes, difficult))
    boxes, classes, difficult = pad_objects(objects, max_objects)
    return DetectionSet(images, boxes, classes, difficult, tuple(class_names),
                        tuple(Path(p).name for p in paths), scales, offsets, sizes)


def _check_class_names(class_names, found, source):
    """Given names must all occur in the data (a typo would silently drop every object)."""
    if class_names is None:
        return tuple(sorted(found))
    class_names = tuple(str(c) for c in class_names)
    if len(set(class_names)) != len(class_names) or not class_names:
        raise ValueError(f"class_names must be distinct and non-empty, got {class_names}")
    absent = [c for c in class_names if c not in found]
    if absent:
        raise ValueError(f"class_names {absent} occur nowhere in {source}; its classes are "
                         f"{sorted(found)}")
    return class_names


def _first_dir(root, candidates, what):
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    raise DataNotFound(f"{root} has no {what} folder (looked for {', '.join(candidates)}); "
                       f"pass it explicitly")


def parse_voc_xml(path) -> dict:
    """One Pascal VOC annotation -> {"filename", "width", "height", "objects": [{"name",
    "box" (x_min, y_min, x_max, y_max) on pixel edges, "difficult"}]}.

    A missing file raises `DataNotFound`; a file that is not well-formed XML, an <object>
    without <name> or <bndbox>, a coordinate that is missing or not a number, or a box
    whose max lies before its min raises `DataError` naming the file. <size> is optional
    (the loaders take the size from the image), but when present needs numeric <width> and
    <height>.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFound(f"{path}: no such annotation file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise DataError(f"{path}: not well-formed XML ({error})") from None

    def number(node, tag, where):
        child = node.find(tag)
        if child is None or child.text is None or not child.text.strip():
            raise DataError(f"{path}: {where} lacks <{tag}>")
        try:
            return float(child.text)
        except ValueError:
            raise DataError(f"{path}: {where} has <{tag}>{child.text.strip()}</{tag}>, not a "
                            f"number") from None

    size = root.find("size")
    objects = []
    for k, obj in enumerate(root.iter("object"), start=1):
        box = obj.find("bndbox")
        name = (obj.findtext("name") or "").strip()
        where = f"<object> {k}" + (f" ({name})" if name else "")
        if box is None or not name:
            raise DataError(f"{path}: {where} lacks "
                            f"{'<name>' if not name else '<bndbox>'}")
        where += " <bndbox>"
        # 1-based inclusive pixel indices -> 0-based pixel edges (as Detectron2 does)
        edges = (number(box, "xmin", where) - 1, number(box, "ymin", where) - 1,
                 number(box, "xmax", where), number(box, "ymax", where))
        if edges[2] <= edges[0] or edges[3] <= edges[1]:
            raise DataError(f"{path}: {where} has xmax < xmin or ymax < ymin "
                            f"({', '.join(f'{v:g}' for v in edges)} as edges)")
        objects.append({"name": name, "box": edges,
                        "difficult": (obj.findtext("difficult") or "0").strip() == "1"})
    return {"filename": (root.findtext("filename") or "").strip(),
            "width": number(size, "width", "<size>") if size is not None else None,
            "height": number(size, "height", "<size>") if size is not None else None,
            "objects": objects}


def _voc_image_path(images_dir, xml_path, filename):
    if filename and (images_dir / filename).exists():
        return images_dir / filename
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        candidate = images_dir / (xml_path.stem + suffix)
        if candidate.exists():
            return candidate
    raise DataNotFound(f"{xml_path}: no image for it in {images_dir} (tried {filename!r} and "
                       f"{xml_path.stem}.*)")


def load_voc(root, class_names=None, image_size=IMAGE_SIZE, letterbox=True,
             keep_difficult=True, split=None, max_objects=None, annotations_dir=None,
             images_dir=None, fill=LETTERBOX_FILL, class_map=None, names=None) -> DetectionSet:
    """A Pascal VOC folder (XML annotations + images) -> `DetectionSet`.

    Args:
        root: the folder; annotations in `Annotations/`, `annots/` or `annotations/`,
            images in `JPEGImages/` or `images/` (or give them explicitly).
        class_names: class order (id = position); objects of other classes are dropped,
            and a name that occurs nowhere raises ValueError. Defaults to None (the sorted
            names found in the XML files).
        image_size: (height, width) or an int; None keeps every image at its native
            resolution, top-left on a canvas as large as the largest (`native_canvas`; the
            form tiled training and inference read). Defaults to (128, 128).
        letterbox: keep the aspect and pad with `fill` (else stretch). Defaults to True.
        keep_difficult: keep objects marked `difficult` (flagged in `difficult`); False
            drops them. Defaults to True.
        split: read the image ids from `root/ImageSets/Main/<split>.txt` (e.g. "trainval")
            instead of every XML file. Defaults to None.
        max_objects: padded length M. Defaults to None (the most objects in one image).
        annotations_dir: the XML folder. Defaults to None (found under `root`).
        images_dir: the image folder. Defaults to None (found under `root`).
        fill: letterbox padding value. Defaults to 0.5.
        class_map: {name in the XML: class name}, applied first, e.g. to merge classes;
            a name it lacks is kept as it is. Defaults to None.
        names: read only the annotations of these image ids (file stems), in this order;
            an id without an XML file raises `DataNotFound`. Defaults to None.

    Reference: Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge",
    IJCV 2010.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataNotFound(f"{root}: folder does not exist (expected a Pascal VOC folder with "
                           f"Annotations/ and JPEGImages/)")
    annotations_dir = Path(annotations_dir) if annotations_dir else _first_dir(
        root, ("Annotations", "annots", "annotations"), "annotation")
    images_dir = Path(images_dir) if images_dir else _first_dir(
        root, ("JPEGImages", "images", "Images"), "image")
    for folder in (annotations_dir, images_dir):
        if not folder.is_dir():
            raise DataNotFound(f"{folder}: folder does not exist")
    if split is not None and names is not None:
        raise ValueError("give split or names, not both")
    if names is not None:
        xml_paths = [annotations_dir / f"{i}.xml" for i in names]
    elif split is not None:
        split_file = root / "ImageSets" / "Main" / f"{split}.txt"
        if not split_file.is_file():
            raise DataNotFound(f"{split_file}: no such file (split={split!r} reads the image "
                               f"ids from it)")
        ids = split_file.read_text().split()
        xml_paths = [annotations_dir / f"{i}.xml" for i in ids]
    else:
        xml_paths = sorted(annotations_dir.glob("*.xml"))
    if not xml_paths:
        raise DataError(f"{annotations_dir} holds no .xml annotations")
    parsed = [parse_voc_xml(p) for p in xml_paths]
    for record in parsed:
        for o in record["objects"]:
            o["name"] = (class_map or {}).get(o["name"], o["name"])
    found = {o["name"] for record in parsed for o in record["objects"]}
    class_names = _check_class_names(class_names, found, annotations_dir)
    paths, per_image = [], []
    for xml_path, record in zip(xml_paths, parsed):
        paths.append(_voc_image_path(images_dir, xml_path, record["filename"]))
        kept = [o for o in record["objects"] if o["name"] in class_names
                and (keep_difficult or not o["difficult"])]
        per_image.append(([o["box"] for o in kept],
                          [class_names.index(o["name"]) for o in kept],
                          [o["difficult"] for o in kept]))
    return _assemble(paths, per_image, class_names, image_size, letterbox, fill, max_objects)


def load_coco(annotation_file, images_dir=None, class_names=None, image_size=IMAGE_SIZE,
              letterbox=True, keep_crowd=True, max_objects=None,
              fill=LETTERBOX_FILL) -> DetectionSet:
    """A COCO-JSON detection file + its images -> `DetectionSet`.

    Class ids follow the `categories` in ascending category id (or `class_names`);
    `category_ids()` of the file is that order. `iscrowd` annotations become `difficult`
    (ignored in evaluation). Boxes of zero width or height are dropped. Images without
    annotations are kept (all padding).

    Args:
        annotation_file: the JSON file (`images`, `annotations`, `categories`).
        images_dir: the folder of the `file_name`s. Defaults to None (the JSON's folder).
        class_names: category names to keep, in this order; annotations of other categories
            are dropped; a name not among the categories raises ValueError. Defaults to None
            (every category).
        image_size, letterbox, max_objects, fill: as `load_voc`.
        keep_crowd: keep `iscrowd` annotations (flagged `difficult`). Defaults to True.

    Reference: Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014.
    """
    annotation_file = Path(annotation_file)
    if not annotation_file.is_file():
        raise DataNotFound(f"{annotation_file}: no such annotation file")
    try:
        with open(annotation_file, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise DataError(f"{annotation_file}: not valid JSON ({error})") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{annotation_file}: not UTF-8 text ({error.reason} at byte "
                        f"{error.start})") from None
    if not isinstance(data, dict):
        raise DataError(f"{annotation_file} is not COCO detection JSON: it holds a "
                        f"{type(data).__name__}, not an object")
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise DataError(f"{annotation_file} is not COCO detection JSON: it lacks {missing}")
    images_dir = Path(images_dir) if images_dir else annotation_file.parent
    if not images_dir.is_dir():
        raise DataNotFound(f"{images_dir}: image folder does not exist (the images of "
                           f"{annotation_file})")

    def fields(record, what, keys):
        try:
            return [record[k] for k in keys]
        except (KeyError, TypeError):
            raise DataError(f"{annotation_file}: {what} {record!r:.80} lacks one of "
                            f"{list(keys)}") from None

    categories = sorted(data["categories"], key=lambda c: fields(c, "category", ["id"])[0])
    name_of = dict(fields(c, "category", ["id", "name"]) for c in categories)
    class_names = (tuple(name_of.values()) if class_names is None
                   else _check_class_names(class_names, set(name_of.values()), annotation_file))
    image_records = [fields(image, "image", ["id", "file_name"]) for image in data["images"]]
    per_image = {image_id: ([], [], []) for image_id, _ in image_records}
    for ann in data["annotations"]:
        category_id, image_id, bbox = fields(ann, "annotation",
                                             ["category_id", "image_id", "bbox"])
        name = name_of.get(category_id)
        if name is None:
            raise DataError(f"{annotation_file}: annotation {ann.get('id')} has category_id "
                            f"{category_id}, which is not in categories")
        if image_id not in per_image:
            raise DataError(f"{annotation_file}: annotation {ann.get('id')} refers to image_id "
                            f"{image_id}, which is not in images")
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise DataError(f"{annotation_file}: annotation {ann.get('id')} has bbox "
                            f"{bbox!r:.60}, not [x, y, width, height]") from None
        crowd = bool(ann.get("iscrowd", 0))
        if name not in class_names or w <= 0 or h <= 0 or (crowd and not keep_crowd):
            continue
        boxes, classes, difficult = per_image[image_id]
        boxes.append((x, y, x + w, y + h))
        classes.append(class_names.index(name))
        difficult.append(crowd)
    paths = [images_dir / file_name for _, file_name in image_records]
    absent = [p for p in paths if not p.exists()]
    if absent:
        examples = ", ".join(p.name for p in absent[:3])
        raise DataNotFound(f"{annotation_file}: {len(absent)} of its {len(paths)} images are "
                           f"missing from {images_dir}, e.g. {examples}")
    return _assemble(paths, [per_image[image_id] for image_id, _ in image_records], class_names,
                     image_size, letterbox, fill, max_objects)


# ------------------------------------------------------------------ augmentation

def _valid(classes):
    return np.asarray(classes) >= 0


def _pack(boxes, classes, keep):
    """Keep the `keep` rows first, in order; the rest become padding (box 0, class -1)."""
    m = len(classes)
    out_boxes = np.zeros((m, 4), np.float32)
    out_classes = np.full(m, PAD_CLASS, np.int32)
    k = int(np.sum(keep))
    out_boxes[:k], out_classes[:k] = boxes[keep], classes[keep]
    return out_boxes, out_classes


def flip_horizontal(image, boxes, classes):
    """Mirror an image (H, W, C) and its padded boxes (M, 4) xyxy: x -> W - x.

    Returns:
        (image, boxes, classes), new arrays.
    """
    width = image.shape[1]
    boxes = np.asarray(boxes, np.float32)
    classes = np.asarray(classes, np.int32)
    flipped = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]],
                       axis=1)
    flipped[~_valid(classes)] = 0.0
    return np.ascontiguousarray(image[:, ::-1]), flipped.astype(np.float32), classes.copy()


def clip_boxes(boxes, classes, height, width, min_size=2.0, min_visible=0.3):
    """Clip padded boxes to the image and drop those that left it or got too small.

    A box is kept when its clipped width and height are both >= `min_size` pixels and its
    clipped area is >= `min_visible` of its area before clipping. Kept boxes come first;
    dropped ones become padding (class -1, box 0).

    Args:
        boxes: (M, 4) xyxy pixels (may lie partly or wholly outside the image).
        classes: (M,) ids, -1 for padding.
        height: image height.
        width: image width.
        min_size: smallest clipped side, pixels. Defaults to 2.
        min_visible: smallest fraction of the area left inside the image. Defaults to 0.3.

    Returns:
        (boxes float32 (M, 4), classes int32 (M,)).
    """
    boxes = np.asarray(boxes, np.float32)
    classes = np.asarray(classes, np.int32)
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    clipped = np.stack([np.clip(boxes[:, 0], 0, width), np.clip(boxes[:, 1], 0, height),
                        np.clip(boxes[:, 2], 0, width), np.clip(boxes[:, 3], 0, height)], axis=1)
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = (_valid(classes) & (cw >= min_size) & (ch >= min_size)
            & (cw * ch >= min_visible * area - 1e-6))
    return _pack(clipped, classes, keep)


def crop_region(image, boxes, classes, region, output_size=None, fill=LETTERBOX_FILL,
                min_size=2.0, min_visible=0.3):
    """Show `region` of the image, resized to `output_size`; move, clip and drop the boxes.

    `region` = (x0, y0, x1, y1) in pixel edges of the input; it may reach outside the image
    (zoom out: the outside is `fill`). A point x of the input lands at
    (x - x0) * W_out / (x1 - x0). Resampling is bilinear (PIL, per channel in float).

    Args:
        image: float (H, W, C).
        boxes: (M, 4) xyxy pixels.
        classes: (M,) ids, -1 for padding.
        region: (x0, y0, x1, y1), x1 > x0 and y1 > y0.
        output_size: (height, width). Defaults to None (the input size).
        fill: value outside the input image. Defaults to 0.5.
        min_size, min_visible: as `clip_boxes`.

    Returns:
        (image float32 (H_out, W_out, C), boxes, classes).
    """
    from PIL import Image

    image = np.asarray(image, np.float32)
    height, width = image.shape[:2]
    out_h, out_w = _image_size(output_size if output_size is not None else (height, width))
    x0, y0, x1, y1 = (float(v) for v in region)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"region must be (x0, y0, x1, y1) with x1 > x0, y1 > y0; got {region}")
    # pad the input so the region lies inside it, then resize the region with PIL's `box`
    left, top = max(0, math.ceil(-x0)), max(0, math.ceil(-y0))
    right, bottom = max(0, math.ceil(x1 - width)), max(0, math.ceil(y1 - height))
    padded = np.pad(image, ((top, bottom), (left, right), (0, 0)), constant_values=fill)
    box = (x0 + left, y0 + top, x1 + left, y1 + top)
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(padded[..., c])).resize(
        (out_w, out_h), Image.BILINEAR, box=box)) for c in range(image.shape[2])]
    out = np.stack(channels, axis=-1).astype(np.float32)
    sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
    boxes = np.asarray(boxes, np.float32)
    moved = (boxes - np.asarray([x0, y0, x0, y0], np.float32)) * np.asarray([sx, sy, sx, sy],
                                                                           np.float32)
    moved, classes = clip_boxes(moved, classes, out_h, out_w, min_size, min_visible)
    return out, moved, classes


def mosaic(images, boxes, classes, centre, min_size=2.0, min_visible=0.3):
    """The mosaic augmentation of YOLOv4 (Bochkovskiy et al. 2020), at native scale.

    Four images of one size (H, W, C) are tiled 2 x 2 into a (2H, 2W) canvas (first top-left,
    then top-right, bottom-left, bottom-right) and the (H, W) window of the canvas centred at
    `centre` = (cx, cy) is returned; cx in [W/2, 3W/2] and cy in [H/2, 3H/2] make the window
    show a part of each image around the canvas's midpoint. Boxes move with their image
    (image q's are shifted by its corner (W·(q mod 2), H·(q div 2))), are clipped to the
    window and dropped as in `clip_boxes`. The window holds at most M = boxes.shape[1]
    boxes (the padded layout of a `DetectionSet`); beyond M, the largest M kept boxes stay.

    Args:
        images: (4, H, W, C) floats.
        boxes: (4, M, 4) xyxy pixels, padded.
        classes: (4, M) ids, -1 for padding.
        centre: (cx, cy), canvas pixels; rounded to whole pixels (no resampling).
        min_size, min_visible: as `clip_boxes`.

    Returns:
        (image float32 (H, W, C), boxes (M, 4), classes (M,)).
    """
    images = np.asarray(images, np.float32)
    boxes, classes = np.asarray(boxes, np.float32), np.asarray(classes, np.int32)
    if images.ndim != 4 or images.shape[0] != 4 or boxes.shape[:2] != (4, classes.shape[1]):
        raise ValueError(f"mosaic takes 4 images (4, H, W, C) with boxes (4, M, 4) and classes "
                         f"(4, M); got {images.shape}, {boxes.shape}, {classes.shape}")
    _, height, width, _ = images.shape
    corners = np.asarray([[0, 0], [width, 0], [0, height], [width, height]], np.float32)
    x0 = int(np.clip(round(centre[0] - width / 2), 0, width))
    y0 = int(np.clip(round(centre[1] - height / 2), 0, height))
    window = np.empty_like(images[0])  # each image's visible piece is copied straight in
    for (left, top), image in zip(corners.astype(int), images):
        # the overlap of this image's quadrant and the window, in canvas pixels
        y_from, y_to = max(top, y0), min(top + height, y0 + height)
        x_from, x_to = max(left, x0), min(left + width, x0 + width)
        window[y_from - y0:y_to - y0, x_from - x0:x_to - x0] = \
            image[y_from - top:y_to - top, x_from - left:x_to - left]
    shift = np.tile(corners - np.asarray([x0, y0], np.float32), 2)[:, None, :]  # (4, 1, 4)
    moved = np.where(classes[..., None] >= 0, boxes + shift, 0.0).reshape(-1, 4)
    kept, kept_classes = clip_boxes(moved, classes.reshape(-1), height, width, min_size,
                                    min_visible)
    count = int(np.sum(kept_classes >= 0))
    limit = classes.shape[1]
    if count > limit:  # the largest M, in their mosaic order
        area = (kept[:count, 2] - kept[:count, 0]) * (kept[:count, 3] - kept[:count, 1])
        largest = np.zeros(count, bool)
        largest[np.argsort(-area, kind="stable")[:limit]] = True
        kept, kept_classes = _pack(kept[:count], kept_classes[:count], largest)
    return window, kept[:limit], kept_classes[:limit]


DEFAULT_ZOOM = (0.75, 1.33)


class BoxAugmenter:
    """Random horizontal flip, zoom and crop that move the boxes with the pixels, and an
    optional colour jitter that leaves them where they are.

    Per call: flip with probability `flip`; then one resampling of a view rectangle that
    combines a zoom z ~ log-uniform(`zoom`) (z > 1 zooms in on a random part, z < 1 shows
    the image smaller on a `fill` border) and, with probability `crop`, a random crop of
    `min_crop`..1 of each side (stretched back to the full size). Boxes are then clipped,
    and dropped when they keep less than `min_visible` of their area or get thinner than
    `min_size` pixels (`clip_boxes`). Last, the colour jitter of torchvision's `ColorJitter`
    without hue, in a fixed order, each factor drawn uniformly from [1 − s, 1 + s]:
    saturation (blend with the grey image g = mean over channels: g + f·(x − g)), contrast
    (blend with the image's mean grey level m: m + f·(x − m)), brightness (f·x), then a
    clip to [0, 1]; a strength of 0 draws nothing. Call as
    `augment(image, boxes, classes, rng)` with a `numpy.random.Generator`; returns new
    (image, boxes, classes).

    Args:
        flip: probability of a horizontal flip. Defaults to 0.5.
        zoom: (min, max) zoom factor. Defaults to (0.75, 1.33).
        crop: probability of a random crop. Defaults to 0.5.
        min_crop: smallest crop side, as a fraction of the image side. Defaults to 0.6.
        min_size: smallest kept box side, pixels. Defaults to 2.
        min_visible: smallest kept fraction of a box's area. Defaults to 0.3.
        fill: value of the border when zooming out. Defaults to 0.5.
        saturation: strength s of the saturation jitter, in [0, 1]. Defaults to 0 (off).
        contrast: strength of the contrast jitter, in [0, 1]. Defaults to 0 (off).
        brightness: strength of the brightness jitter, in [0, 1]. Defaults to 0 (off).
    """

    def __init__(self, flip=0.5, zoom=DEFAULT_ZOOM, crop=0.5, min_crop=0.6, min_size=2.0,
                 min_visible=0.3, fill=LETTERBOX_FILL, saturation=0.0, contrast=0.0,
                 brightness=0.0):
        zoom = tuple(float(z) for z in zoom)
        if len(zoom) != 2 or not 0 < zoom[0] <= zoom[1]:
            raise ValueError(f"zoom must be (min, max) with 0 < min <= max, got {zoom}")
        for name, p in (("flip", flip), ("crop", crop), ("min_visible", min_visible),
                        ("saturation", saturation), ("contrast", contrast),
                        ("brightness", brightness)):
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if not 0.0 < float(min_crop) <= 1.0:
            raise ValueError(f"min_crop must be in (0, 1], got {min_crop}")
        self.flip, self.zoom, self.crop, self.min_crop = float(flip), zoom, float(crop), \
            float(min_crop)
        self.min_size, self.min_visible, self.fill = float(min_size), float(min_visible), \
            float(fill)
        self.saturation, self.contrast, self.brightness = float(saturation), float(contrast), \
            float(brightness)

    def region(self, rng, height, width):
        """The view rectangle (x0, y0, x1, y1) in input pixels."""
        z = math.exp(rng.uniform(math.log(self.zoom[0]), math.log(self.zoom[1])))
        w, h = width / z, height / z
        # zoom in: the view lies inside the image; zoom out: the image lies inside the view
        x0 = rng.uniform(min(0.0, width - w), max(0.0, width - w))
        y0 = rng.uniform(min(0.0, height - h), max(0.0, height - h))
        if rng.uniform() < self.crop:
            fw, fh = rng.uniform(self.min_crop, 1.0, size=2)
            x0 += rng.uniform(0.0, 1.0 - fw) * w
            y0 += rng.uniform(0.0, 1.0 - fh) * h
            w, h = w * fw, h * fh
        return (x0, y0, x0 + w, y0 + h)

    def __call__(self, image, boxes, classes, rng):
        if rng.uniform() < self.flip:
            image, boxes, classes = flip_horizontal(image, boxes, classes)
        height, width = image.shape[:2]
        image, boxes, classes = crop_region(image, boxes, classes,
                                            self.region(rng, height, width), (height, width),
                                            self.fill, self.min_size, self.min_visible)
        return self.jitter_colour(image, rng), boxes, classes

    def jitter_colour(self, image, rng):
        """Saturation, contrast and brightness jitter of an (H, W, C) image in [0, 1]."""
        if not (self.saturation or self.contrast or self.brightness):
            return image
        image = np.asarray(image, np.float32)
        if self.saturation:
            grey = image.mean(axis=-1, keepdims=True)
            image = grey + rng.uniform(1 - self.saturation, 1 + self.saturation) * (image - grey)
        if self.contrast:
            level = image.mean()
            image = level + rng.uniform(1 - self.contrast, 1 + self.contrast) * (image - level)
        if self.brightness:
            image = image * rng.uniform(1 - self.brightness, 1 + self.brightness)
        return np.clip(image, 0.0, 1.0).astype(np.float32)

    def __repr__(self):
        colour = "".join(f", {name}={value}" for name, value in (
            ("saturation", self.saturation), ("contrast", self.contrast),
            ("brightness", self.brightness)) if value)
        return (f"BoxAugmenter(flip={self.flip}, zoom={self.zoom}, crop={self.crop}, "
                f"min_crop={self.min_crop}, min_size={self.min_size}, "
                f"min_visible={self.min_visible}, fill={self.fill}{colour})")


class DetectionBatches(keras.utils.PyDataset):
    """A `DetectionSet` as a `keras.utils.PyDataset` of `(images, targets)` batches.

    Args:
        data: a `DetectionSet` (e.g. from `load_voc`, `load_coco`, `synthetic_scene_set`).
        batch_size: images per batch. Defaults to 32.
        shuffle: reshuffle every epoch (seeded by `seed` and the epoch). Defaults to False.
        augment: a `BoxAugmenter` (or a callable `(image, boxes, classes, rng)`), applied
            with a generator seeded by (seed, image index, epoch). Defaults to None.
        mosaic: probability that an image is replaced by a `mosaic` of itself (top-left)
            and three others drawn from the set, the window's corner uniform over the whole
            pixels of [0, W) x [0, H) of the canvas, before `augment`; drawn from its own
            generator, so the batches without it are those of `mosaic=0`. Defaults to 0
            (off).
        target_fn: maps `(boxes, classes)` to the targets. Defaults to None (the dict
            `{"boxes", "classes"}`).
        seed: seed of shuffling and augmentation. Defaults to 0.
        **kwargs: `keras.utils.PyDataset` arguments.
    """

    def __init__(self, data, batch_size=32, shuffle=False, augment=None, target_fn=None, seed=0,
                 mosaic=0.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(data, DetectionSet):
            raise ValueError(f"data must be a DetectionSet, got {type(data).__name__}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= float(mosaic) <= 1.0:
            raise ValueError(f"mosaic must be a probability in [0, 1], got {mosaic}")
        self.mosaic = float(mosaic)
        self.data, self.batch_size = data, int(batch_size)
        self.shuffle, self.augment, self.target_fn = bool(shuffle), augment, target_fn
        self.seed, self.epoch = int(seed), 0
        self.order = self._order()

    def _order(self):
        if not self.shuffle:
            return np.arange(len(self.data))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.data))

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._order()

    def __len__(self):
        return math.ceil(len(self.data) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range [0, {len(self)})")
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.data.images[chosen].copy()
        boxes, classes = self.data.boxes[chosen].copy(), self.data.classes[chosen].copy()
        if self.mosaic:
            for k, i in enumerate(chosen):
                images[k], boxes[k], classes[k] = self._mosaic(int(i))
        if self.augment is not None:
            for k, i in enumerate(chosen):
                images[k], boxes[k], classes[k] = self.augment(
                    images[k], boxes[k], classes[k], _rng(self.seed, int(i), self.epoch, 1))
        return images, _targets(boxes, classes, self.target_fn)

    def _mosaic(self, index):
        """Image `index` as it is, or (with probability `mosaic`) its mosaic with three others."""
        rng = _rng(self.seed, index, self.epoch, 2)
        if rng.uniform() >= self.mosaic:
            return self.data.images[index], self.data.boxes[index], self.data.classes[index]
        chosen = np.concatenate([[index], rng.integers(len(self.data), size=3)])
        height, width = self.data.images.shape[1:3]
        # the window's corner, whole pixels in [0, W) x [0, H): at least a corner of its own
        # image stays in view
        centre = (rng.integers(width) + width / 2, rng.integers(height) + height / 2)
        return mosaic(self.data.images[chosen], self.data.boxes[chosen],
                      self.data.classes[chosen], centre)
