"""zoo.datasets.detection_tiles: quarter turns and random windows checked against the pixels
(each box is recomputed from a mask of its object, brute force), and the sampling rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from zoo.datasets.detection import DetectionSet, pad_objects
from zoo.datasets.detection_tiles import RandomTiles, dihedral_transform, rotate90


def _mask_box(mask):
    """Edges (x0, y0, x1, y1) of the True pixels."""
    rows, cols = np.nonzero(mask)
    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


def test_a_quarter_turn_moves_each_box_with_its_pixels():
    image = np.zeros((20, 30, 3), np.float32)
    rects = [(2, 3, 7, 9), (15, 10, 29, 20)]  # x0, y0, x1, y1 edges
    for k, (x0, y0, x1, y1) in enumerate(rects):
        image[y0:y1, x0:x1, k] = 1.0
    boxes = np.asarray(rects + [(0, 0, 0, 0)], np.float32)
    classes = np.asarray([0, 1, -1], np.int32)
    turned, moved, kept = rotate90(image, boxes, classes)
    assert turned.shape == (30, 20, 3)
    for k in range(2):
        assert moved[k].tolist() == _mask_box(turned[..., k] > 0.5)
    assert moved[2].tolist() == [0, 0, 0, 0] and kept.tolist() == [0, 1, -1]


def test_the_eight_symmetries_are_distinct_and_keep_the_boxes_true():
    image = np.zeros((16, 16, 3), np.float32)
    image[1:4, 2:9, 0] = 1.0  # an asymmetric bar in an asymmetric place
    boxes, classes = np.asarray([[2, 1, 9, 4]], np.float32), np.asarray([0], np.int32)
    seen = set()
    for turns in range(4):
        for mirror in (False, True):
            out, moved, _ = dihedral_transform(image, boxes, classes, turns, mirror)
            assert moved[0].tolist() == _mask_box(out[..., 0] > 0.5)
            seen.add(out.tobytes())
    assert len(seen) == 8


def _native_set(seed=0):
    """Two images of different sizes on one canvas; objects are bright squares."""
    rng = np.random.default_rng(seed)
    sizes = [(300, 420), (90, 100)]
    canvas = np.full((2, 300, 420, 3), 0.5, np.float32)
    objects = []
    for i, (h, w) in enumerate(sizes):
        canvas[i, :h, :w] = 0.1
        boxes = []
        for _ in range(6 if i == 0 else 1):
            x, y = rng.integers(0, w - 20), rng.integers(0, h - 20)
            canvas[i, y:y + 14, x:x + 18] = 1.0
            boxes.append([x, y, x + 18, y + 14])
        objects.append((boxes, [0] * len(boxes)))
    boxes, classes, difficult = pad_objects(objects)
    return DetectionSet(canvas, boxes, classes, difficult, ("square",),
                        original_sizes=np.asarray(sizes))


def test_random_windows_are_native_pixels_with_their_boxes():
    data = _native_set()
    tiles = RandomTiles(data, 64, tiles_per_epoch=40, batch_size=16, min_visible=1.0, seed=3)
    assert len(tiles) == 3
    images, targets = tiles[0]
    assert images.shape == (16, 64, 64, 3)
    checked = 0
    for image, boxes, classes in zip(images, targets["boxes"], targets["classes"]):
        labelled, _ = ndimage.label(image[..., 0] > 0.95)
        # whole squares only (min_visible 1): each kept box is exactly one blob's extent,
        # 18 x 14 or 14 x 18 after a quarter turn, at native scale
        whole = [_mask_box(labelled == k + 1) for k in range(labelled.max())]
        for box in boxes[classes >= 0]:
            assert box.tolist() in whole
            assert sorted([box[2] - box[0], box[3] - box[1]]) == [14, 18]
            checked += 1
    assert checked > 0


def test_windows_depend_on_seed_index_and_epoch_only():
    data = _native_set()
    a = RandomTiles(data, 64, tiles_per_epoch=8, batch_size=4, seed=1)
    b = RandomTiles(data, 64, tiles_per_epoch=8, batch_size=4, seed=1)
    np.testing.assert_array_equal(a[1][0], b[1][0])
    first = a[0][0]
    a.on_epoch_end()
    assert not np.array_equal(first, a[0][0])


def test_images_are_drawn_in_proportion_to_their_area():
    data = _native_set()
    tiles = RandomTiles(data, 64, tiles_per_epoch=4000, seed=0)
    rng = np.random.default_rng(0)
    drawn = np.bincount([tiles.window(rng)[0] for _ in range(4000)], minlength=2)
    share = 90 * 100 / (300 * 420 + 90 * 100)
    assert drawn[1] / 4000 == pytest.approx(share, abs=0.02)


def test_an_image_smaller_than_the_tile_lies_inside_it_on_the_fill():
    data = _native_set().subset([1])  # 90 x 100, one square
    tiles = RandomTiles(data, 128, tiles_per_epoch=4, batch_size=4, dihedral=False, seed=0)
    images, targets = tiles[0]
    for image, boxes, classes in zip(images, targets["boxes"], targets["classes"]):
        assert np.isclose(image, 0.5).all(axis=-1).sum() == 128 * 128 - 90 * 100
        assert (classes >= 0).sum() == 1


def test_bad_arguments_are_refused():
    data = _native_set()
    with pytest.raises(ValueError, match="square tiles"):
        RandomTiles(data, (64, 96))
    with pytest.raises(ValueError, match="scale"):
        RandomTiles(data, 64, scale=(2.0, 1.0))
    with pytest.raises(ValueError, match="DetectionSet"):
        RandomTiles(np.zeros((2, 8, 8, 3)), 64)
