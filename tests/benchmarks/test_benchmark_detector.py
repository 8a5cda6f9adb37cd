"""benchmarks/detector.py still runs (tiny models and sizes) and writes consistent results.

The checks re-derive what the benchmark summarises from its own per-run rows (mean and
standard deviation with NumPy, the short-budget value from the curve), compare the curve's
last point with the independently computed final step-1 AP, and check the fused pipeline
against the unfused one.
"""

import json

import numpy as np
import pytest

from benchmarks import detector as bench
from benchmarks.common import format_mean_std
from voc_fixtures import write_voc_fixture
from zoo.datasets.detection import DEFAULT_ZOOM


def tiny_args(tmp_path):
    """The smallest settings: one seed, 16 training / 8 test scenes of 64 px, tiny models."""
    return ["--seeds", "0", "--epochs", "2", "--train-images", "16", "--test-images", "8",
            "--short-epochs", "1", "--classifier-epochs", "1", "--batch-size", "16",
            "--image-size", "64", "--tiny", "--results-dir", str(tmp_path / "results"),
            "--work-dir", str(tmp_path / "work")]


@pytest.mark.slow
def test_detector_benchmark_synthetic_parts(tmp_path):
    bench.main(["--parts", "losses", "steps", "fused", "--losses", "eiou", "iou",
                "--fused-reps", "2", "--fused-batch", "4", *tiny_args(tmp_path)])
    results = json.loads((tmp_path / "results" / "detector.json").read_text())
    assert set(results) >= {"losses", "steps", "fused", "environment"}

    table = results["losses"]["table"]
    assert set(table) == {"eiou", "iou"}
    for row in table.values():
        run = row["runs"][0]
        assert len(run["curve_map_50"]) == 2 and len(run["epoch_seconds"]) == 2
        # the curve's last point is the final step-1 model scored on the same test set
        assert run["curve_map_50"][-1] == pytest.approx(run["step1_map_50"], abs=1e-9)
        assert row["short_step1_map_50"]["values"] == [run["curve_map_50"][0]]
        assert row["map_50"]["mean"] == pytest.approx(np.mean(row["map_50"]["values"]))
        assert 0.0 <= run["map_50"] <= 1.0 and run["classifier_seconds"] > 0
    # the classifier is trained once per seed and shared by the losses
    assert table["eiou"]["runs"][0]["classifier_accuracy"] == \
        table["iou"]["runs"][0]["classifier_accuracy"]

    steps = results["steps"]["table"]
    assert steps["two-step"]["map_50"] == table["eiou"]["map_50"]  # reused, not retrained
    assert steps["one-step"]["runs"][0]["classifier_seconds"] == 0.0

    fused = results["fused"]
    assert fused["source"].startswith("the pipeline of the losses part (eiou")
    assert fused["max_abs_difference"]["step1_logits"] < 1e-3
    assert fused["max_abs_difference"]["step1_boxes_pixels"] < 1e-2
    for key in ("xla", "no_xla"):
        for task in ("step1", "pipeline"):
            row = fused["speed"][key][task]
            assert len(row["fused_seconds"]) == 2 and row["ratio"] > 0
            assert row["ratio"] == pytest.approx(
                np.median(row["unfused_seconds"]) / np.median(row["fused_seconds"]))

    text = (tmp_path / "results" / "detector.md").read_text()
    for heading in ("## Box losses", "## One step against two", "## Fused", "## Targets"):
        assert heading in text
    assert "| eiou |" in text and "| iou |" in text
    assert (tmp_path / "results" / "detector.png").stat().st_size > 0


@pytest.mark.slow
def test_detector_benchmark_voc_part_keeps_other_sections(tmp_path, capsys, monkeypatch):
    voc = write_voc_fixture(tmp_path / "voc")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "detector.json").write_text(json.dumps({"kept": 1}))
    bench.main(["--parts", "voc", "--voc", str(voc), "--voc-epochs", "1", "--voc-losses",
                "giou", *tiny_args(tmp_path)])
    results = json.loads((tmp_path / "results" / "detector.json").read_text())
    assert results["kept"] == 1
    section = results["voc_1ep_64px"]  # 1 epoch, not the default 80
    assert section["settings"]["train_images"] == 5 and set(section["table"]) == {"giou"}
    assert section["test_names"] == [
        f"{i:05d}.jpg" for i in np.sort(np.random.default_rng(0).permutation(6)[:1])]
    assert len(section["table"]["giou"]["runs"][0]["curve_map_50"]) == 1
    text = (tmp_path / "results" / "detector.md").read_text()
    assert "## Pascal VOC: voc, 1 epoch, 64 px\n" in text and "| giou |" in text
    # per seed: another seed at the same settings joins the section, a stored one is not
    # run again (seed 1's run is a stand-in: the merge, not the training, is under test)
    # From here on every run is a stand-in that records what it was asked to train: the
    # sections' merging, naming and settings are under test, and the first run above has
    # shown that a real one goes through.
    seed0 = section["table"]["giou"]["runs"][0]
    asked = []

    def stand_in(train_set, test_set, loss, seed, *args, **kwargs):
        asked.append({"loss": loss, "seed": seed, **kwargs})
        return {**seed0, "seed": seed, "map_50": seed0["map_50"] + 0.25}, None

    monkeypatch.setattr(bench, "one_run", stand_in)
    bench.main(["--parts", "voc", "--voc", str(voc), "--voc-epochs", "1", "--voc-losses",
                "giou", *tiny_args(tmp_path), "--seeds", "1"])
    assert [(a["loss"], a["seed"]) for a in asked] == [("giou", 1)]
    merged = json.loads((tmp_path / "results" / "detector.json").read_text())["voc_1ep_64px"]
    assert merged["settings"]["seeds"] == [0, 1]
    runs = merged["table"]["giou"]["runs"]
    assert [r["seed"] for r in runs] == [0, 1] and runs[0] == section["table"]["giou"]["runs"][0]
    assert merged["table"]["giou"]["map_50"]["values"] == [seed0["map_50"],
                                                           seed0["map_50"] + 0.25]
    capsys.readouterr()
    bench.main(["--parts", "voc", "--voc", str(voc), "--voc-epochs", "1", "--voc-losses",
                "giou", *tiny_args(tmp_path), "--seeds", "0", "1"])
    assert capsys.readouterr().out.count("stored, not run again") == 2 and len(asked) == 1
    assert json.loads((tmp_path / "results" / "detector.json").read_text())[
        "voc_1ep_64px"]["table"] == merged["table"]
    results["voc_1ep_64px"] = merged
    # the same data through a feature pyramid, with the quality focal score and another
    # training zoom range: its own section, next to the first, each setting in its name,
    # settings and title; a section stored before --score-loss existed (no score_loss in its
    # settings) is the focal one and keeps its rows
    del results["voc_1ep_64px"]["settings"]["score_loss"]
    (tmp_path / "results" / "detector.json").write_text(json.dumps(results))
    bench.main(["--parts", "voc", "--voc", str(voc), "--voc-epochs", "1", "--voc-losses",
                "iou", "--voc-strides", "4,8,16", "--score-loss", "quality_focal",
                "--voc-zoom", "0.5,2", *tiny_args(tmp_path)])
    variant_asked = asked[-1]
    assert (variant_asked["loss"], variant_asked["stride"]) == ("iou", [4, 8, 16])
    assert variant_asked["score_loss"] == "quality_focal"
    assert variant_asked["augment"].zoom == (0.5, 2.0)
    assert variant_asked["init_from"] is None
    bench.main(["--parts", "voc", "--voc", str(voc), "--voc-epochs", "1", "--voc-losses",
                "iou", "--voc-init-from", "detector.synth_scenes", *tiny_args(tmp_path)])
    assert asked[-1]["init_from"] == "detector.synth_scenes"
    assert asked[-1]["ema_momentum"] is None and asked[-1]["augment"].brightness == 0
    bench.main(["--parts", "voc", "--voc", str(voc), "--voc-epochs", "1", "--voc-losses",
                "iou", "--voc-colour", "0.5,0.3,0.2", "--voc-ema", "0.99",
                *tiny_args(tmp_path)])
    jittered = asked[-1]["augment"]
    assert (jittered.saturation, jittered.contrast, jittered.brightness) == (0.5, 0.3, 0.2)
    assert jittered.zoom == DEFAULT_ZOOM and asked[-1]["ema_momentum"] == 0.99
    assert not asked[-1]["flip_tta"]
    bench.main(["--parts", "voc", "--voc", str(voc), "--voc-epochs", "1", "--voc-losses",
                "iou", "--voc-flip-tta", *tiny_args(tmp_path)])
    assert asked[-1]["flip_tta"]
    bench.main(["--parts", "voc", "--voc", str(voc), "--voc-epochs", "1", "--voc-losses",
                "iou", *tiny_args(tmp_path)])
    assert (asked[-1]["stride"], asked[-1]["score_loss"]) == (None, "focal")
    assert asked[-1]["augment"].zoom != (0.5, 2.0)
    monkeypatch.undo()
    results = json.loads((tmp_path / "results" / "detector.json").read_text())
    assert set(results["voc_1ep_64px"]["table"]) == {"giou", "iou"}
    assert results["voc_1ep_64px"]["table"]["giou"] == merged["table"]["giou"]
    variant = results["voc_pyramid_quality_1ep_zoom0.5-2_64px"]
    assert variant["settings"]["strides"] == [4, 8, 16]
    assert variant["settings"]["score_loss"] == "quality_focal"
    assert variant["settings"]["zoom"] == [0.5, 2.0]
    assert "zoom=(0.5, 2.0)" in variant["augmentation"]
    assert "zoom" not in results["voc_1ep_64px"]["settings"]
    text = (tmp_path / "results" / "detector.md").read_text()
    assert ("## Pascal VOC: voc, from random weights, feature pyramid (strides 4, 8, 16), "
            "quality focal score, zoom 0.5-2, 1 epoch, 64 px") in text
    started = results["voc_1ep_init-detector.synth_scenes_64px"]
    assert started["settings"]["init_from"] == "detector.synth_scenes"
    assert ("## Pascal VOC: voc, from random weights, step 1 from detector.synth_scenes, "
            "1 epoch, 64 px") in text
    averaged = results["voc_1ep_colour_ema_64px"]["settings"]
    assert averaged["colour_jitter"] == [0.5, 0.3, 0.2] and averaged["ema_momentum"] == 0.99
    assert ("## Pascal VOC: voc, from random weights, colour jitter 0.5/0.3/0.2, weight "
            "average (EMA 0.99), 1 epoch, 64 px") in text
    assert results["voc_1ep_flip_64px"]["settings"]["flip_tta"]
    assert "## Pascal VOC: voc, from random weights, flip TTA, 1 epoch, 64 px" in text
    assert text.count("- kangaroo AP@.5 ≥ 0.60") == 6  # a target line per section and loss
    gains = [run["precision_gain"] for run in variant["table"]["iou"]["runs"]]
    assert variant["table"]["iou"]["precision_gain"]["values"] == gains
    gain_lines = [line for line in text.splitlines() if line.startswith(
        "- two-step precision at equal recall ≥ step 1 alone, kangaroo")]
    assert len(gain_lines) == 6
    assert all(", 64 px, " in line for line in gain_lines)  # sizes tell the runs apart
    with pytest.raises(SystemExit):
        bench.main(["--parts", "voc", "--voc-zoom", "2,1", *tiny_args(tmp_path)])
    for bad in (["--voc-colour", "0.5"], ["--voc-ema", "1.5"]):
        with pytest.raises(SystemExit):
            bench.main(["--parts", "voc", *bad, *tiny_args(tmp_path)])


def test_voc_part_with_flip_tta_also_scores_the_same_weights_without_it(tmp_path):
    voc = write_voc_fixture(tmp_path / "voc")
    bench.main(["--parts", "voc", "--voc", str(voc), "--voc-epochs", "1", "--voc-losses",
                "giou", "--voc-flip-tta", *tiny_args(tmp_path)])
    results = json.loads((tmp_path / "results" / "detector.json").read_text())
    row = results["voc_1ep_flip_64px"]["table"]["giou"]
    for key in ("map_50", "map_50_without_tta", "map_without_tta",
                "step1_map_50_without_tta"):
        assert 0.0 <= row[key]["mean"] <= 1.0
    text = (tmp_path / "results" / "detector.md").read_text()
    assert (f"giou, the same weights without flip TTA: AP@.5 "
            f"{format_mean_std(row['map_50_without_tta'])}") in text


def test_sections_are_named_by_start_pyramid_score_and_epochs_and_listed_in_that_order():
    assert bench.section_key("voc", None, None) == "voc"
    assert bench.section_key("voc", "repvgg_tiny.cifar10", [8, 16, 32], "quality_focal",
                             160) == "voc_pretrained_pyramid_quality_160ep"
    assert bench.section_key("voc", "x", [8, 16, 32], "quality_focal", 160,
                             (0.5, 2.0)) == "voc_pretrained_pyramid_quality_160ep_zoom0.5-2"
    assert bench.section_key("voc", "x", None, "focal", None, None,
                             "repvgg_tiny.cifar10") == "voc_pretrained_step2pretrained"
    assert bench.section_key("voc", "x", None, "focal", 160, None, "x",
                             256) == "voc_pretrained_160ep_step2pretrained_256px"
    assert bench.section_key("voc", "x", None, "focal", None, None, "x", None,
                             "detector.synth_scenes") == \
        "voc_pretrained_step2pretrained_init-detector.synth_scenes"
    assert bench.section_key("voc", None, None, "focal", None, None, None, 256,
                             "runs/synth/") == "voc_init-synth_256px"  # a run folder: its name
    assert bench.section_key("voc", "x", None, "focal", None, None, None, None,
                             "detector.synth_scenes", (0.5, 0.3, 0.3), 0.99) == \
        "voc_pretrained_init-detector.synth_scenes_colour_ema"
    stored = {key: {} for key in ("neon", "voc_pretrained_pyramid_quality_160ep",
                                  "voc_pretrained_pyramid_quality_160ep_zoom0.5-2",
                                  "voc_pretrained_pyramid_quality_160ep_zoom0.5-2"
                                  "_step2pretrained",
                                  "voc_pretrained_pyramid_quality_160ep_zoom0.5-2"
                                  "_step2pretrained_256px",
                                  "voc_pretrained_pyramid_quality_160ep_zoom0.5-2"
                                  "_step2pretrained_init-detector.synth_scenes",
                                  "voc_pretrained_pyramid_quality", "voc_quality", "voc",
                                  "voc_pretrained_pyramid_quality_40ep", "voc_pretrained",
                                  "environment", "fused")}
    assert bench.sections(stored, "voc") == [
        "voc", "voc_pretrained", "voc_quality", "voc_pretrained_pyramid_quality",
        "voc_pretrained_pyramid_quality_40ep", "voc_pretrained_pyramid_quality_160ep",
        "voc_pretrained_pyramid_quality_160ep_zoom0.5-2",
        "voc_pretrained_pyramid_quality_160ep_zoom0.5-2_step2pretrained",
        "voc_pretrained_pyramid_quality_160ep_zoom0.5-2_step2pretrained_256px",
        "voc_pretrained_pyramid_quality_160ep_zoom0.5-2_step2pretrained"
        "_init-detector.synth_scenes"]
    assert bench.sections(stored, "neon") == ["neon"]


def test_detector_benchmark_skips_a_missing_voc_folder(tmp_path):
    bench.main(["--parts", "voc", "--voc", str(tmp_path / "absent"), "--results-dir",
                str(tmp_path), "--work-dir", str(tmp_path / "work")])
    results = json.loads((tmp_path / "detector.json").read_text())
    assert "not found" in results["voc"]["skipped"]
    assert "not found" in (tmp_path / "detector.md").read_text()


@pytest.mark.slow
def test_detector_benchmark_neon_part_scores_tiled_and_whole(tmp_path, monkeypatch):
    from zoo.datasets.detection import DetectionSet, native_canvas, pad_objects

    rng = np.random.default_rng(0)

    def large_set(sizes):
        images, objects = [], []
        for h, w in sizes:
            image = np.full((h, w, 3), 0.2, np.float32)
            boxes = []
            for _ in range(8):
                x, y = rng.integers(0, w - 12), rng.integers(0, h - 12)
                image[y:y + 10, x:x + 10] = 0.9
                boxes.append([x, y, x + 10, y + 10])
            images.append(image)
            objects.append((boxes, [0] * 8))
        boxes, classes, difficult = pad_objects(objects)
        return DetectionSet(native_canvas(images), boxes, classes, difficult, ("Tree",),
                            original_sizes=np.asarray(sizes))

    train, test = large_set([(150, 170), (64, 64)]), large_set([(140, 150)])

    def fake_load(dataset, *args, tiles=False, **kwargs):
        assert dataset == "neon_trees" and tiles
        return train, test, {"split": "fake tiles", "augment": None, "tiles": True}

    monkeypatch.setattr(bench, "load_detection_data", fake_load)
    bench.main(["--parts", "neon", "--neon-epochs", "1", "--neon-size", "64",
                "--neon-batch", "8", *tiny_args(tmp_path)])
    section = json.loads((tmp_path / "results" / "detector.json").read_text())["neon_1ep"]
    run = section["runs"][0]
    for key in ("map_50", "step1_map_50", "untiled_map_50", "untiled_step1_map_50",
                "hard_map_50"):
        assert 0.0 <= run[key] <= 1.0
        assert section["summary"][key]["values"] == [run[key]]
    assert run["hard_negatives"] >= 0
    assert section["settings"]["max_detections"] == 1000 and len(run["epoch_seconds"]) == 1
    text = (tmp_path / "results" / "detector.md").read_text()
    assert "## NEON tree crowns: tiled" in text and "NEON test tile AP@.5" in text

    # resumable per seed: the stored seed is not trained again, the result is kept
    def no_training(*args, **kwargs):
        raise AssertionError("a stored seed was trained again")

    monkeypatch.setattr(bench, "fit_detector", no_training)
    bench.main(["--parts", "neon", "--neon-epochs", "1", "--neon-size", "64",
                "--neon-batch", "8", *tiny_args(tmp_path)])
    again = json.loads((tmp_path / "results" / "detector.json").read_text())["neon_1ep"]
    assert again["runs"] == section["runs"]
