"""benchmarks/retrieval.py: the open-set split, the gain arithmetic (by hand), and a tiny
end-to-end run that resumes from its cells and refuses cells of another budget."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_the_open_set_split_trains_on_seen_classes_and_queries_unseen_ones():
    from benchmarks.retrieval import open_set_split

    (x_train, y_train), (x_test, y_test) = open_set_split("mnist", (3, 7), train_limit=500,
                                                          test_limit=300)
    assert len(x_train) == len(y_train) == 500 and set(np.unique(y_train)) == {0, 1}
    assert len(x_test) == len(y_test) == 300
    assert not set(np.unique(y_test)) & {3, 7} and len(np.unique(y_test)) == 8


def test_the_gain_and_its_standard_error_by_hand():
    from benchmarks.retrieval import gain

    found = gain([0.30, 0.34, 0.32], [0.20, 0.22, 0.24])
    # means 0.32 and 0.22; variances 4e-4 each; s.e. = 100·sqrt(4e-4/3 + 4e-4/3)
    error = 100 * np.sqrt(2 * 4e-4 / 3)
    assert found["points"] == pytest.approx(10.0)
    assert found["standard_error"] == pytest.approx(error)
    assert found["over_two_sigma"] == pytest.approx(10.0 / (2 * error))
    assert gain([0.3], [0.2])["standard_error"] is None


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_retrieval_benchmark_smoke(tmp_path):
    from benchmarks import retrieval

    cells = ["--datasets", "mnist", "--losses", "xbm", "--seeds", "0", "1", "--epochs", "1",
             "--train-limit", "320", "--test-limit", "200", "--results-dir", str(tmp_path),
             "--work", str(tmp_path / "cells")]
    arguments = [*cells, "--timed", "supcon", "--timing-reps", "2", "--timing-steps", "1"]
    retrieval.main(arguments)
    results = json.loads((tmp_path / "retrieval.json").read_text())
    table = results["table"]["mnist"]
    assert set(table) == {"softmax", "xbm"}
    for row in table.values():
        assert row["map_at_r"]["n"] == 2 and 0 <= row["map_at_r"]["mean"] <= 1
        assert 0 <= row["precision_at_1"]["mean"] <= 1
    a = np.array([r["map_at_r"] for r in table["xbm"]["runs"]])
    b = np.array([r["map_at_r"] for r in table["softmax"]["runs"]])
    assert table["xbm"]["map_at_r_gain_over_softmax"]["points"] == pytest.approx(
        100 * (a.mean() - b.mean()))
    steps = results["step_times"]
    assert set(steps) == {"softmax", "xbm", "supcon"} and steps["softmax"]["vs_softmax"] == 1.0
    assert len(steps["supcon"]["seconds"]) == 2 and steps["supcon"]["vs_softmax"] > 0
    text = (tmp_path / "retrieval.md").read_text()
    assert "| xbm |" in text and "| supcon |" in text and "Best: xbm" in text
    assert (tmp_path / "retrieval.png").stat().st_size > 0
    # the cells persist: a second run reads them back and gives the same rows
    retrieval.main([*cells, "--timing-reps", "0"])
    again = json.loads((tmp_path / "retrieval.json").read_text())["table"]["mnist"]
    assert {k: v["runs"] for k, v in again.items()} == {k: v["runs"] for k, v in table.items()}
    other = list(arguments)
    other[other.index("--epochs") + 1] = "2"
    with pytest.raises(SystemExit, match="was trained with"):
        retrieval.main(other)
