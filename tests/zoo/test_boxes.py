"""zoo.boxes against brute force: areas and IoU by counting pixels, formats by hand."""

import numpy as np
import pytest

from zoo import boxes


def pixel_mask(box, size=24):
    """The set of unit pixels (r, c) whose centres lie inside an integer xyxy box."""
    x1, y1, x2, y2 = box
    grid = np.zeros((size, size), bool)
    grid[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = True
    return grid


def test_iou_and_intersection_by_counting_pixels():
    rng = np.random.default_rng(0)
    corners = rng.integers(0, 20, size=(12, 2, 2))
    found = np.concatenate([corners.min(1), corners.max(1) + 1], axis=1)  # x1 y1 x2 y2
    a, b = found[:5], found[5:]
    iou = boxes.pairwise_iou(a, b)
    inter = boxes.pairwise_intersection(a, b)
    for i, box_a in enumerate(a):
        for j, box_b in enumerate(b):
            ma, mb = pixel_mask(box_a), pixel_mask(box_b)
            assert inter[i, j] == (ma & mb).sum()
            assert iou[i, j] == pytest.approx((ma & mb).sum() / (ma | mb).sum())
    np.testing.assert_allclose(boxes.iou_one_to_many(a[0], b), iou[0])
    assert boxes.box_area([3, 4, 1, 9]) == 0  # x2 < x1: empty, not negative
    assert boxes.pairwise_iou([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0  # 0 / 0 = 0


def test_formats_and_expansion_by_hand():
    np.testing.assert_allclose(boxes.to_xyxy([[2, 3, 4, 5]], "xywh"), [[2, 3, 6, 8]])
    np.testing.assert_allclose(boxes.to_xyxy([[4, 5, 2, 6]], "cxcywh"), [[3, 2, 5, 8]])
    np.testing.assert_allclose(boxes.to_xyxy([[1, 2, 3, 4]]), [[1, 2, 3, 4]])
    with pytest.raises(ValueError, match="box_format"):
        boxes.to_xyxy([[0, 0, 1, 1]], "yolo")
    np.testing.assert_allclose(boxes.expand_boxes([[2, 2, 6, 4]], 1.5), [[1, 1.5, 7, 4.5]])
