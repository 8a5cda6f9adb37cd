"""zoo.datasets.label_checks: label ranges refused on the data side, with the split named."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.datasets.errors import DataError
from zoo.datasets.label_checks import check_class_labels, check_sequence_labels


def test_class_labels_in_range_pass_and_the_rest_are_named():
    check_class_labels(np.array([0, 3, 9]), 10, "train")
    check_class_labels(np.array([], int), 10, "train")  # an empty split has nothing wrong
    with pytest.raises(DataError, match=r"test labels must be class ids in \[0, 9\].*\[0, 10\]"):
        check_class_labels(np.array([0, 10]), 10, "test")
    with pytest.raises(DataError, match=r"validation .*got ids in \[-1, 2\]"):
        check_class_labels(np.array([-1, 2]), 10, "validation")
    with pytest.raises(DataError, match="integer class ids"):
        check_class_labels(np.array([0.5, 1.0]), 10, "train")


def test_sequence_labels_need_ids_above_the_blank_then_padding():
    check_sequence_labels(np.array([[1, 2, -1], [36, -1, -1]]), 37, "train")
    with pytest.raises(DataError, match=r"train label ids must be in \[1, 36\].*\[0, 2\]"):
        check_sequence_labels(np.array([[1, 0, 2]]), 37, "train")  # the blank is no label
    with pytest.raises(DataError, match=r"\[1, 37\]"):
        check_sequence_labels(np.array([[1, 37]]), 37, "test")
    with pytest.raises(DataError, match=r"row 1 is \[1, -1, 2\]"):
        check_sequence_labels(np.array([[1, 2, 3], [1, -1, 2]]), 37, "validation")
