"""P×K class-balanced batches."""

import numpy as np
import pytest

from zoo.datasets.samplers import PKBatches


def make(n_per_class=(30, 30, 30, 5), seed=0):
    y = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])
    x = np.arange(len(y), dtype="float32")[:, None]  # x identifies the row
    return x, y


def test_every_batch_has_p_distinct_classes_with_k_samples_each():
    x, y = make()
    data = PKBatches(x, y, classes_per_batch=3, samples_per_class=4, seed=1)
    assert len(data) == len(y) // 12
    for i in range(len(data)):
        xb, yb = data[i]
        assert xb.shape == (12, 1)
        np.testing.assert_array_equal(y[xb[:, 0].astype(int)], yb)  # labels match the rows
        classes, counts = np.unique(yb, return_counts=True)
        assert len(classes) == 3 and np.all(counts == 4)


def test_small_classes_are_drawn_with_replacement_large_without():
    x, y = make(n_per_class=(2, 40))
    data = PKBatches(x, y, classes_per_batch=2, samples_per_class=6, seed=0)
    xb, yb = data[0]
    rows_of_big = xb[yb == 1, 0]
    assert len(set(rows_of_big)) == 6  # no repeats when the class is large enough
    assert len(set(xb[yb == 0, 0])) <= 2


def test_seeded_and_redrawn_each_epoch():
    x, y = make()
    a, b = PKBatches(x, y, 2, 5, seed=7), PKBatches(x, y, 2, 5, seed=7)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    first = a[0][0].copy()
    a.on_epoch_end()
    assert not np.array_equal(first, a[0][0])


def test_bad_arguments():
    x, y = make()
    with pytest.raises(ValueError, match=r"classes_per_batch must be in \[1, 4\]"):
        PKBatches(x, y, classes_per_batch=5)
    with pytest.raises(ValueError, match="samples_per_class"):
        PKBatches(x, y, 2, 0)
    with pytest.raises(ValueError, match="x has"):
        PKBatches(x[:3], y, 2, 2)
