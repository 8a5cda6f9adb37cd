"""zoo.models.detector.tiling: tile origins by hand, and tiled detection over a large image
with a stand-in detector (bright squares found by connected components in each tile), so
the test checks the tiling, shifting and merging, not a network."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from zoo.models.detector.tiling import detect_tiled, tile_origins


def test_tile_origins_cover_the_length_with_the_overlap():
    assert tile_origins(100, 128, 32) == [0]                    # smaller than a tile
    assert tile_origins(128, 128, 32) == [0]
    assert tile_origins(300, 128, 32) == [0, 96, 172]           # step 96, last flush
    assert tile_origins(320, 128, 32) == [0, 96, 192]
    with pytest.raises(ValueError, match="overlap < tile"):
        tile_origins(300, 128, 128)


class SquareFinder:
    """A stand-in detector: every bright blob of a tile is a detection of class 0."""

    image_shape = (64, 64)
    nms_iou, max_detections, one_step, class_agnostic_nms = 0.5, 100, False, True

    def __init__(self):
        self.calls = []

    def detect(self, tiles):
        self.calls.append(tiles.shape)
        out = []
        for tile in tiles:
            labelled, _ = ndimage.label(tile[..., 0] > 0.9)
            boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop]
                     for s in ndimage.find_objects(labelled)]
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            out.append((boxes, np.full(len(boxes), 0.9, np.float32),
                        np.zeros(len(boxes), np.int32)))
        return out


def test_every_object_of_a_large_image_is_found_once_in_image_coordinates():
    image = np.full((150, 230, 3), 0.2, np.float32)
    squares = [(5, 5), (40, 58), (100, 110), (60, 170), (130, 215), (20, 100)]  # (y, x)
    for y, x in squares:
        image[y:y + 10, x:x + 12] = 1.0  # 12 wide, 10 high; some straddle tile edges
    finder = SquareFinder()
    boxes, scores, classes = detect_tiled(finder, image, overlap=24, batch_size=4)
    expected = sorted([x, y, x + 12, y + 10] for y, x in squares)
    assert sorted(boxes.tolist()) == expected
    assert np.all(classes == 0) and np.all(scores == pytest.approx(0.9))
    # rows at 0, 40, 80, 86 and columns at 0, 40, 80, 120, 160, 166 (step 64 - 24 = 40,
    # the last flush with the edge): 24 tiles, in batches of 4
    assert tile_origins(150, 64, 24) == [0, 40, 80, 86]
    assert tile_origins(230, 64, 24) == [0, 40, 80, 120, 160, 166]
    assert [shape for shape in finder.calls] == [(4, 64, 64, 3)] * 6


def test_a_small_image_is_padded_not_resized():
    image = np.full((40, 50, 3), 0.2, np.float32)
    image[10:20, 30:45] = 1.0
    boxes, _, _ = detect_tiled(SquareFinder(), image)
    assert boxes.tolist() == [[30.0, 10.0, 45.0, 20.0]]


def test_tiled_and_letterboxed_detections_of_a_native_set_land_in_image_pixels():
    from zoo.datasets.detection import DetectionSet, native_canvas, pad_objects
    from zoo.training.tasks.detection import (letterboxed_detections, needs_tiles,
                                              tiled_detections)

    big = np.full((100, 200, 3), 0.2, np.float32)
    big[40:60, 100:140] = 1.0                      # 40 x 20 at (100, 40)
    small = np.full((50, 30, 3), 0.2, np.float32)
    small[10:30, 5:15] = 1.0                       # 10 x 20 at (5, 10)
    objects = [([[100, 40, 140, 60]], [0]), ([[5, 10, 15, 30]], [0])]
    boxes, classes, difficult = pad_objects(objects)
    data = DetectionSet(native_canvas([big, small]), boxes, classes, difficult, ("sq",),
                        original_sizes=np.asarray([[100, 200], [50, 30]]))
    finder = SquareFinder()
    assert needs_tiles(finder, data)
    assert not needs_tiles(finder, data.subset([1]))  # 50 x 30 fits the 64 px input
    tiled = tiled_detections(finder, data, overlap=48)
    assert [b.tolist() for b, _, _ in tiled] == [[[100, 40, 140, 60]], [[5, 10, 15, 30]]]
    # letterboxed whole: 200 x 100 -> 64 x 32 centred (scale 0.32, 16 px bands above and
    # below); the square becomes 12.8 x 6.4 px, found to the pixel, then scaled back
    whole = letterboxed_detections(finder, data)
    np.testing.assert_allclose(whole[0][0], [[100, 40, 140, 60]], atol=1 / 0.32)
    np.testing.assert_allclose(whole[1][0], [[5, 10, 15, 30]], atol=1 / (64 / 50))
