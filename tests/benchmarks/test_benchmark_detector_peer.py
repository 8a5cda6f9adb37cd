"""benchmarks/detector_peer.py: the peer's decoded output in the evaluator's form, and a run
without keras-hub saying why it set nothing beside LossLab."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import detector_peer as peer
from voc_fixtures import write_voc_fixture


def test_decoded_detections_keep_only_the_counted_boxes():
    decoded = {"boxes": np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4),
               "confidence": np.asarray([[0.9, 0.5, -1.0], [0.7, -1.0, -1.0]], np.float32),
               "labels": np.asarray([[0, 2, -1], [1, -1, -1]], np.float32),
               "num_detections": np.asarray([2, 1])}
    (b0, s0, c0), (b1, s1, c1) = peer.decoded_detections(decoded)
    np.testing.assert_array_equal(b0, decoded["boxes"][0, :2])
    np.testing.assert_allclose(s0, [0.9, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(c0, [0, 2])
    assert c0.dtype == np.int32 and b1.shape == (1, 4) and s1.tolist() == [pytest.approx(0.7)]
    assert c1.tolist() == [1]


def test_targets_are_keras_hub_boxes_and_labels():
    targets = peer.retinanet_targets(np.zeros((2, 3, 4)), np.asarray([[0, -1, -1], [1, 0, -1]]))
    assert set(targets) == {"boxes", "labels"} and targets["labels"].dtype == np.float32
    assert targets["labels"].tolist() == [[0, -1, -1], [1, 0, -1]]


def test_without_keras_hub_the_run_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(peer, "peer_available", lambda: (False, "No module named 'keras_hub'"))
    root = write_voc_fixture(tmp_path / "voc")
    assert peer.main(["--voc", str(root), "--epochs", "1", "--seeds", "0", "--image-size",
                      "64", "--tiny", "--results-dir", str(tmp_path / "out")]) == 0
    stored = json.loads((tmp_path / "out" / "detector_peer.json").read_text())
    assert stored["available"] is False and stored["rows"] == {}
    assert "keras_hub" in stored["why"]
    text = (tmp_path / "out" / "detector_peer.md").read_text()
    assert "Peer not run: No module named 'keras_hub'" in text


def test_the_report_judges_the_difference_by_its_standard_error():
    def row(values, step1=None, speed=10.0):
        runs = [{"seed": i, "map_50": v, "map": v / 4, "f1": v, "epoch_seconds": [3.0, 2.0],
                 "images_per_second": speed, "parameters": 100,
                 **({"step1_map_50": step1[i]} if step1 else {})}
                for i, v in enumerate(values)]
        return {"runs": runs, "summary": peer.summary(runs)}

    results = {"settings": {"image_size": 64, "epochs": 2, "batch_size": 4,
                            "learning_rate": 0.01, "seeds": [0, 1, 2]},
               "split": "6 images.", "augmentation": "none", "peer": "keras-hub x",
               "environment": {"cpu_count": 2},
               "rows": {"losslab_random": row([0.2, 0.3, 0.1], [0.5, 0.52, 0.54], speed=40.0),
                        "retinanet": row([0.1, 0.1, 0.1])}}
    text = peer.markdown(results)
    # two-step: mean 0.2 - 0.1, σ = 0.1 (n - 1), se = 0.1 / √3 = 0.058 < 0.1 / 2: a tie
    assert "- LossLab two-step: +0.100 ± 0.058, a tie within noise." in text
    # step 1: 0.52 - 0.1 = 0.42, se = 0.02 / √3 = 0.012: ahead
    assert "- LossLab step 1 alone: +0.420 ± 0.012, ahead by more than 2 standard errors." \
        in text
    assert "x4.00 the peer's images/s" in text


class _OneBoxPerTile:
    """Stands in for keras-hub's detector: one box at (8, 8)-(24, 24) of every tile."""

    def __call__(self, images, training=False):
        return images

    def decode_predictions(self, raw, images):
        n = len(images)
        return {"boxes": np.tile(np.asarray([[[8.0, 8.0, 24.0, 24.0]]], np.float32), (n, 1, 1)),
                "confidence": np.full((n, 1), 0.9, np.float32),
                "labels": np.zeros((n, 1), np.float32), "num_detections": np.ones(n)}


def test_the_tiled_peer_puts_each_tiles_boxes_in_image_pixels():
    from zoo.models.detector.tiling import detect_tiled

    # 112 px wide, 64-px tiles with 16 px of overlap: tiles start at x = 0 and x = 48
    image = np.zeros((64, 112, 3), np.float32)
    boxes, scores, classes = detect_tiled(peer.TiledPeer(_OneBoxPerTile(), 64), image,
                                          overlap=16)
    order = np.argsort(boxes[:, 0])
    np.testing.assert_allclose(boxes[order], [[8, 8, 24, 24], [56, 8, 72, 24]])
    np.testing.assert_allclose(scores, [0.9, 0.9], rtol=1e-6)
    assert classes.tolist() == [0, 0]


def test_a_tie_at_zero_is_not_behind():
    runs = [{"seed": i, "map_50": 0.0, "map": 0.0, "f1": 0.0, "epoch_seconds": [1.0],
             "images_per_second": 1.0, "parameters": 10, "step1_map_50": 0.0} for i in range(2)]
    rows = {key: {"runs": runs, "summary": peer.summary(runs)}
            for key in ("losslab_random", "retinanet")}
    results = {"settings": {"image_size": 256, "epochs": 1, "batch_size": 16,
                            "learning_rate": 0.01, "seeds": [0, 1]}, "data": "neon",
               "split": "4 tiles.", "augmentation": "RandomTiles(tile_size=256, dihedral=True)",
               "peer": "keras-hub x", "environment": {"cpu_count": 2}, "rows": rows,
               "max_detections": 321}
    text = peer.markdown(results)
    assert "- LossLab two-step: +0.000 ± 0.000, a tie within noise." in text
    assert "detected tile by tile over the test tile (up to 321 detections counted)" in text
