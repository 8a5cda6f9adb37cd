"""zoo.demo: the angles it reports, checked on hand-placed embeddings, and one tiny run of
the whole demo (every run folder, the sphere figure and the summary)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from zoo import demo


def test_angular_spread_on_hand_placed_directions():
    a = math.radians(20.0)
    embeddings = np.array([
        [2.0, 0.0, 0.0], [math.cos(a), math.sin(a), 0.0], [math.cos(a), -math.sin(a), 0.0],
        [0.0, 3.0, 0.0], [0.0, 0.5, 0.0],                 # class 1 on the y axis
        [0.0, math.sin(a), math.cos(a)], [0.0, -math.sin(a), math.cos(a)]])  # class 2, ±20°
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    found = demo.angular_spread(embeddings, labels)
    # angles to the class directions (x, y, z axes): 0, 20, 20 | 0, 0 | 20, 20 -> median 20
    assert found["median_angle_to_class"] == pytest.approx(20.0)
    assert found["nearest_class_mean"] == pytest.approx(90.0)
    assert found["nearest_class_min"] == pytest.approx(90.0)
    # lengths do not matter, only directions
    again = demo.angular_spread(embeddings * np.arange(1, 8)[:, None], labels)
    assert again == pytest.approx(found)


def test_the_demo_end_to_end_on_a_few_images(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path), "--epochs", "1", "--embed-epochs", "1",
                      "--train-limit", "256", "--test-limit", "500"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["test_accuracy"]) == {"lenet5-softmax", "lenet_embed3d-softmax",
                                             "lenet_embed3d-cosface"}
    assert set(summary["angular_spread"]) == {"softmax", "cosface"}
    assert (tmp_path / "sphere.png").stat().st_size > 10_000
    assert (tmp_path / "lenet_embed3d-cosface" / "embedding_snapshots.png").exists()
    assert "sphere.png" in capsys.readouterr().out
