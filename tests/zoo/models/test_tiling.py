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
