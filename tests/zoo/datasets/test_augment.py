"""zoo.datasets.augment against hand-made cases: a single lit pixel moves where it should."""

import numpy as np
import pytest

from zoo.datasets.augment import ShiftedBatches, shift_images


def test_a_lit_pixel_moves_by_the_shift_and_the_border_fills_with_zero():
    image = np.zeros((1, 5, 6, 1), np.float32)
    image[0, 2, 3, 0] = 1.0
    for dy, dx in [(0, 0), (1, -2), (-2, 2), (2, 2)]:
        moved = shift_images(image, [(dy, dx)])
        expected = np.zeros_like(image)
        expected[0, 2 + dy, 3 + dx, 0] = 1.0
        np.testing.assert_array_equal(moved, expected)
    edge = np.ones((1, 3, 3, 1), np.float32)
    np.testing.assert_array_equal(shift_images(edge, [(1, 0)])[0, 0, :, 0], [0, 0, 0])


def test_batches_cover_every_image_once_per_epoch_and_repeat_with_the_seed():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) + 1  # 1x1 images: no shift room
    y = np.arange(10)
    batches = ShiftedBatches(x, y, batch_size=4, max_shift=0, flip=True, seed=3)
    assert len(batches) == 3
    seen = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert sorted(seen) == list(range(10))
    first = [batches[i][1].tolist() for i in range(3)]
    again = ShiftedBatches(x, y, batch_size=4, max_shift=0, seed=3)
    assert [again[i][1].tolist() for i in range(3)] == first
    batches.on_epoch_end()
    assert [batches[i][1].tolist() for i in range(3)] != first  # a new order each epoch
    images, labels = batches[0]
    np.testing.assert_array_equal(images[:, 0, 0, 0], labels + 1)  # images stay with labels
    with pytest.raises(ValueError, match="samples"):
        ShiftedBatches(x, y[:3])
