"""zoo.datasets.line_mix: how many synthetic lines join a batch (hand-computed), and the
batches of `MixedLines` (the real batch unchanged first, then the synthetic samples that
the epoch and batch index name, labels padded to one width)."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.charset import Charset
from zoo.datasets.line_augment import AugmentedLines, EpochOf
from zoo.datasets.line_mix import MixedLines, synthetic_per_batch
from zoo.datasets.text import SyntheticText


def test_synthetic_lines_per_batch_make_the_share_asked_for():
    assert synthetic_per_batch(16, 0.5) == 16          # 16 real + 16 synthetic
    assert synthetic_per_batch(16, 0.25) == 5          # round(16 / 3 = 5.33)
    assert synthetic_per_batch(12, 0.75) == 36         # 12 · 3
    assert synthetic_per_batch(16, 0.0) == 0
    assert synthetic_per_batch(4, 0.01) == 1           # a positive share draws at least one
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            synthetic_per_batch(16, bad)


def parts(n_real=10, batch_size=4, share=0.5):
    charset = Charset()
    rng = np.random.default_rng(0)
    x = rng.random((n_real, 32, 128, 1)).astype(np.float32)
    texts = [f"a{k}" for k in range(n_real)]
    y = charset.encode_batch(texts, 3)
    real = AugmentedLines(x, y, batch_size=batch_size, seed=1, perturb=False)
    synthetic = SyntheticText(50, charset=charset, height=32, width=128, max_length=6,
                              seed=7, augment=False)
    return real, synthetic, MixedLines(real, synthetic, share, batch_size)


def test_a_mixed_batch_is_the_real_batch_then_the_named_synthetic_samples():
    real, synthetic, mixed = parts()
    assert len(mixed) == len(real) == 3
    mixed.epoch = 2
    assert real.epoch == 2  # the epoch reaches the real lines' shuffling
    images, labels = mixed[1]
    real_images, real_labels = real[1]
    assert images.shape == (8, 32, 128, 1) and labels.shape == (8, 6)  # width max(3, 6)
    np.testing.assert_array_equal(images[:4], real_images)
    np.testing.assert_array_equal(labels[:4, :3], real_labels)
    assert np.all(labels[:4, 3:] == -1)
    first = (2 * 3 + 1) * 4  # (epoch · batches + index) · per batch
    for j in range(4):
        image, text = synthetic.sample((first + j) % 50)
        np.testing.assert_allclose(images[4 + j, ..., 0], image / 255.0, atol=1e-7)
        assert Charset().decode(labels[4 + j]) == text
    # the same batch of the same epoch again is identical; another epoch draws new lines
    np.testing.assert_array_equal(mixed[1][0], images)
    mixed.epoch = 3
    assert not np.array_equal(mixed[1][0][4:], images[4:])


def test_epoch_of_drives_a_mixed_dataset_and_sizes_must_match():
    real, synthetic, mixed = parts()
    EpochOf(mixed).on_epoch_begin(5)
    assert (mixed.epoch, real.epoch) == (5, 5)
    other = SyntheticText(10, charset=Charset(), height=48, width=192)
    with pytest.raises(ValueError, match="48x192 px, the real ones 32x128"):
        MixedLines(real, other, 0.5, 4)
    x, y = parts(share=0.0)[2][0]
    assert len(x) == 4  # no share: the real batch alone
