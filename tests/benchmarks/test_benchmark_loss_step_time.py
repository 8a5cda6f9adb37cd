"""benchmarks/loss_step_time.py: ratios are per round against the counterpart, then the
median; every loss of both groups is timed; the verdict names the slow ones."""

import json

import numpy as np
import pytest

from benchmarks import loss_step_time as bench


def test_ratio_is_the_median_of_per_round_ratios():
    seconds = {"mse": [1.0, 2.0, 4.0], "ssim": [1.1, 2.6, 4.0]}
    table = bench.ratios(seconds, "mse")
    # rounds 1.1, 1.3, 1.0 -> median 1.1 (the ratio of medians would be 2.6 / 2 = 1.3)
    assert table["ssim"]["ratio"] == pytest.approx(1.1)
    assert table["ssim"]["seconds"] == pytest.approx(2.6)
    assert table["mse"]["ratio"] == 1.0
    text = bench.markdown({"settings": {"reps": 3, "steps": 1},
                           "environment": {"cpu_count": 2},
                           "reconstruction": table,
                           "boxes": bench.ratios({"iou": [1.0], "giou": [1.2]}, "iou")})
    assert "| giou | 1200.0 | 1.200 | NO |" in text and "Above the target: giou (1.20x)" in text


@pytest.mark.slow
def test_benchmark_times_every_loss_of_both_groups(tmp_path):
    from zoo.models.detector import BOX_LOSSES
    from zoo.training.tasks.reconstruction import RECONSTRUCTION_LOSSES

    bench.main(["--tiny", "--reps", "1", "--steps", "1", "--results-dir", str(tmp_path)])
    results = json.loads((tmp_path / "loss_step_time.json").read_text())
    assert set(results["reconstruction"]) == set(RECONSTRUCTION_LOSSES)
    assert set(results["boxes"]) == set(BOX_LOSSES)
    assert results["boxes"]["iou"]["ratio"] == 1.0
    assert all(np.isfinite(row["seconds"]) and row["seconds"] > 0
               for row in results["reconstruction"].values())
    assert (tmp_path / "loss_step_time.png").stat().st_size > 0
