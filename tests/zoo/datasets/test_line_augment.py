"""zoo.datasets.line_augment: the affine map checked on a pure shift and a pure shear (with
the random draws fixed by hand), and the batches of `AugmentedLines` (each line once per
epoch, labels kept with their images, seeded by (seed, epoch, batch)), and the share of
lines served inverted."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.datasets.line_augment import AugmentedLines, EpochOf, perturb_line


class FixedDraws:
    """An rng whose uniform draws are given in order; no blur, no noise."""

    def __init__(self, values):
        self.values = list(values)

    def uniform(self, low=0.0, high=1.0, size=None):
        if size is None:
            return self.values.pop(0)
        return np.array([self.values.pop(0) for _ in range(size)])

    def random(self):
        return 1.0  # >= 0.5: no blur

    def normal(self, loc=0.0, scale=1.0, size=None):
        return np.zeros(size)


def bars(height=24, width=64):
    image = np.full((height, width), 0.8, np.float32)
    image[6:18, 10:14] = 0.1
    image[6:18, 30:34] = 0.1
    return image


def draws(shear=0.0, angle=0.0, scale=(1.0, 1.0), shift=(0.0, 0.0)):
    # shear, angle, (scale x, scale y), shift x (share of W), shift y (share of H),
    # contrast, brightness, noise sigma
    return FixedDraws([shear, angle, *scale, *shift, 1.0, 0.0, 0.0])


def test_a_pure_shift_moves_the_ink_by_that_many_pixels():
    image = bars()
    moved = perturb_line(image, draws(shift=(4 / 64, 0.0)))  # 4 px to the right
    np.testing.assert_allclose(moved[:, 4:], image[:, :-4], atol=1 / 255 + 1e-6)
    assert np.allclose(moved[:, :4], 0.8, atol=1 / 255 + 1e-6)  # filled with the edge value


def test_a_pure_shear_slants_columns_about_the_centre():
    image = bars(height=25)
    sheared = perturb_line(image, draws(shear=0.25))
    # pixel centres at y + 0.5, the centre at 12.5: x' = x + 0.25 (y + 0.5 - 12.5), so
    # row 16 moves 1 px right and row 8 1 px left
    np.testing.assert_allclose(sheared[16, 1:], image[16, :-1], atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(sheared[8, :-1], image[8, 1:], atol=1 / 255 + 1e-6)


def test_random_perturbations_stay_images_and_are_seeded():
    image = bars()
    a = perturb_line(image, np.random.default_rng(3))
    b = perturb_line(image, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.shape == image.shape and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert not np.allclose(a, image, atol=0.02)


def test_batches_hold_every_line_once_per_epoch_with_its_label():
    n = 10
    x = np.stack([np.full((24, 64), k / n, np.float32) for k in range(n)])[..., None]
    y = np.arange(n, dtype=np.int32)[:, None] + 1
    data = AugmentedLines(x, y, batch_size=4, seed=1)
    assert len(data) == 3
    epochs = []
    for epoch in (0, 1):
        EpochOf(data).on_epoch_begin(epoch)
        labels = np.concatenate([data[i][1][:, 0] for i in range(len(data))])
        assert sorted(labels.tolist()) == list(range(1, n + 1))
        epochs.append(labels)
        images, batch_labels = data[0]
        # a flat image stays about its level (contrast, brightness and noise are small):
        # the label travels with its image
        levels = images[:, 12, 32, 0]
        assert np.all(np.abs(levels - (batch_labels[:, 0] - 1) / n) < 0.3)
    assert epochs[0].tolist() != epochs[1].tolist()  # reshuffled
    EpochOf(data).on_epoch_begin(0)
    np.testing.assert_array_equal(data[1][0], data[1][0])
    with pytest.raises(IndexError):
        data[3]
    with pytest.raises(ValueError, match="as many labels"):
        AugmentedLines(x, y[:3])


def test_a_share_of_lines_is_served_inverted_and_the_rest_unchanged():
    n = 200
    levels = np.linspace(0.05, 0.45, n, dtype=np.float32)  # every line darker than 0.5
    x = np.repeat(levels[:, None, None, None], 16, axis=1).repeat(32, axis=2)
    y = np.arange(n, dtype=np.int32)[:, None]
    plain = AugmentedLines(x, y, batch_size=50, seed=4, perturb=False, invert_share=0.3)
    inverted = []
    for i in range(len(plain)):
        images, labels = plain[i]
        original = x[labels[:, 0]]
        flipped = np.all(np.isclose(images, 1.0 - original), axis=(1, 2, 3))
        kept = np.all(images == original, axis=(1, 2, 3))
        assert np.all(flipped ^ kept)  # each line either as it is or exactly 1 - x
        inverted.extend(flipped)
    assert 0.2 < np.mean(inverted) < 0.4  # 200 draws of a 0.3 share
    every = AugmentedLines(x, y, batch_size=50, seed=4, perturb=False, invert_share=1.0)
    images, labels = every[0]
    np.testing.assert_allclose(images, 1.0 - x[labels[:, 0]], atol=1e-6)
    # the perturbations do not depend on the share: lines left upright are the same pixels
    perturbed = AugmentedLines(x, y, batch_size=50, seed=4)
    mixed = AugmentedLines(x, y, batch_size=50, seed=4, invert_share=0.5)
    a, b = perturbed[1][0], mixed[1][0]
    upright = np.all(np.isclose(a, b), axis=(1, 2, 3))
    assert 0 < upright.sum() < len(a)
    np.testing.assert_allclose(b[~upright], 1.0 - a[~upright], atol=1e-6)
    for share in (-0.1, 1.5):
        with pytest.raises(ValueError, match="invert_share must be in"):
            AugmentedLines(x, y, invert_share=share)
