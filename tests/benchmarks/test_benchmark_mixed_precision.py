"""benchmarks/mixed_precision.py on a tiny budget: every cell trained under its policy, the
differences from float32 computed as stated (checked by hand), files written, cells reused."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.slow
def test_mixed_precision_benchmark_smoke(tmp_path):
    from benchmarks import mixed_precision

    arguments = ["--dataset", "mnist", "--losses", "cosface", "--policies", "mixed_bfloat16",
                 "--seeds", "0", "1", "--epochs", "1", "--train-limit", "256",
                 "--test-limit", "128", "--work", str(tmp_path / "cells"),
                 "--results-dir", str(tmp_path)]
    mixed_precision.main(arguments)
    results = json.loads((tmp_path / "mixed_precision.json").read_text())
    rows = results["table"]["cosface"]
    for policy in ("float32", "mixed_bfloat16"):
        assert rows[policy]["test_accuracy"]["n"] == 2
    cell = json.loads((tmp_path / "cells" / "mnist-cosface-mixed_bfloat16-0" /
                       "metrics.json").read_text())
    assert cell["config"]["mixed_precision"] == "mixed_bfloat16"
    a = np.array([r["test_accuracy"] for r in rows["mixed_bfloat16"]["runs"]])
    b = np.array([r["test_accuracy"] for r in rows["float32"]["runs"]])
    assert rows["mixed_bfloat16"]["gain_points"] == pytest.approx(100 * (a.mean() - b.mean()))
    assert rows["mixed_bfloat16"]["standard_error_points"] == pytest.approx(
        100 * np.sqrt(a.var(ddof=1) / 2 + b.var(ddof=1) / 2))
    assert rows["mixed_bfloat16"]["within_tolerance"] == (
        abs(100 * (a.mean() - b.mean())) <= 0.3)
    assert "| cosface |" in (tmp_path / "mixed_precision.md").read_text()
    assert (tmp_path / "mixed_precision.png").stat().st_size > 0
    mixed_precision.main(arguments)  # finished cells are read back, not retrained
    again = json.loads((tmp_path / "mixed_precision.json").read_text())["table"]["cosface"]
    assert again["float32"]["runs"] == rows["float32"]["runs"]
