"""Bad input on the command line: one line that names the problem, exit code 2, no
traceback, and no run folder that counts as finished (the runner's contract)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo import train
from zoo.datasets import sources


def write_voc(root, count=4):
    """A tiny VOC folder (annots/ + images/) of `count` 40x32 JPEGs with one box each."""
    root = Path(root)
    (root / "images").mkdir(parents=True)
    (root / "annots").mkdir()
    for i in range(count):
        Image.fromarray(np.full((32, 40, 3), 60 * i % 255, np.uint8)).save(
            root / "images" / f"{i:05d}.jpg")
        (root / "annots" / f"{i:05d}.xml").write_text(
            f"<annotation><filename>{i:05d}.jpg</filename><size><width>40</width>"
            "<height>32</height><depth>3</depth></size><object><name>cat</name><bndbox>"
            "<xmin>5</xmin><ymin>5</ymin><xmax>20</xmax><ymax>25</ymax></bndbox></object>"
            "</annotation>")
    return root


def run_cli(argv, capsys):
    """(exit code, stderr lines) of `python -m zoo.train ARGV` run in this process."""
    try:
        code = train.main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


def assert_one_line_exit_2(code, err, *fragments):
    assert code == 2
    assert len(err) == 1, err  # one line, no traceback
    assert "Traceback" not in err[0]
    for fragment in fragments:
        assert fragment in err[0], (fragment, err[0])


def assert_not_finished(out: Path):
    assert not (out / "metrics.json").exists()
    assert not out.exists() or not any(out.glob("*.keras"))


@pytest.mark.parametrize("flag, value, message", [
    ("--batch-size", "0", "argument --batch-size: must be >= 1, got 0"),
    ("--epochs", "0", "argument --epochs: must be >= 1, got 0"),
    ("--epochs", "-1", "argument --epochs: must be >= 1, got -1"),
    ("--train-limit", "0", "argument --train-limit: must be >= 1, got 0"),
    ("--validation-split", "1.5", "argument --validation-split: must be in [0, 1), got 1.5"),
    ("--learning-rate", "0", "argument --learning-rate: must be > 0, got 0.0"),
])
def test_numbers_out_of_range(flag, value, message, capsys, tmp_path):
    out = tmp_path / "run"
    code, err = run_cli(["--model", "lenet5", flag, value, "--out", str(out)], capsys)
    assert_one_line_exit_2(code, err, message)
    assert not out.exists()


def test_margin_loss_on_a_model_without_a_margin_head(capsys, tmp_path):
    out = tmp_path / "run"
    code, err = run_cli(["--model", "lenet5", "--loss", "arcface", "--out", str(out)], capsys)
    assert_one_line_exit_2(code, err, "loss 'arcface' needs a 'cosine' head",
                           "model 'lenet5' has a fixed dense output")
    assert not out.exists()


@pytest.mark.parametrize("argv, fragments", [
    (["--model", "crnn_small", "--monitor-margins"],
     ["--monitor-margins does not apply to text models", "per-frame character logits"]),
    (["--model", "detector", "--validation-split", "0.2"],
     ["--validation-split does not apply to detection models"]),
    (["--model", "lenet5", "--one-step"],
     ["option(s) one_step do not apply to classification models"]),
    (["--model", "crnn_small", "--classifier-epochs", "2"],
     ["option(s) classifier_epochs do not apply to text models", "text options: beam_width"]),
    (["--model", "lenet5", "--embedding-dim", "8"],
     ["--embedding-dim does not apply to model 'lenet5'"]),
])
def test_flags_a_task_cannot_use_are_refused_with_the_reason(argv, fragments, capsys, tmp_path):
    code, err = run_cli(argv + ["--out", str(tmp_path / "run")], capsys)
    assert_one_line_exit_2(code, err, *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("dataset, fragment", [
    ("voc:/nonexistent/voc", "/nonexistent/voc"),
    ("coco:/nonexistent/annotations.json", "/nonexistent/annotations.json"),
])
def test_missing_detection_data(dataset, fragment, capsys, tmp_path):
    out = tmp_path / "run"
    code, err = run_cli(["--model", "detector", "--dataset", dataset, "--out", str(out)], capsys)
    assert_one_line_exit_2(code, err, fragment)
    assert_not_finished(out)


def test_missing_text_folder(capsys, tmp_path):
    out = tmp_path / "run"
    code, err = run_cli(["--model", "crnn_small", "--dataset", "folder:/nonexistent/crops",
                         "--out", str(out)], capsys)
    assert_one_line_exit_2(code, err, "/nonexistent/crops")
    assert_not_finished(out)


def test_corrupt_voc_xml_is_named(capsys, tmp_path):
    root = write_voc(tmp_path / "voc")
    (root / "annots" / "00002.xml").write_text("<annotation><filename>00002.jpg</filen")
    out = tmp_path / "run"
    code, err = run_cli(["--model", "detector", "--dataset", f"voc:{root}", "--out", str(out)],
                        capsys)
    assert_one_line_exit_2(code, err, "00002.xml")
    assert_not_finished(out)


def test_zero_byte_jpeg_is_named(capsys, tmp_path):
    root = write_voc(tmp_path / "voc")
    (root / "images" / "00001.jpg").write_bytes(b"")
    out = tmp_path / "run"
    code, err = run_cli(["--model", "detector", "--dataset", f"voc:{root}", "--out", str(out)],
                        capsys)
    assert_one_line_exit_2(code, err, "00001.jpg")
    assert_not_finished(out)


def test_cifar10_with_no_data_source(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(sources, "network_reachable", lambda *args, **kwargs: False)
    out = tmp_path / "run"
    code, err = run_cli(["--model", "lenet5", "--dataset", "cifar10", "--out", str(out)], capsys)
    assert_one_line_exit_2(code, err, "'cifar10'", "Fix: ")
    assert_not_finished(out)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="arcface"):
        train.main(["--model", "lenet5", "--loss", "arcface", "--debug",
                    "--out", str(tmp_path / "run")])


def test_a_failed_run_never_counts_as_finished_on_resume(capsys, tmp_path):
    """A bad first attempt leaves nothing a --resume would take for a finished run."""
    root = write_voc(tmp_path / "voc")
    (root / "images" / "00001.jpg").write_bytes(b"")
    out = tmp_path / "run"
    argv = ["--model", "detector", "--dataset", f"voc:{root}", "--out", str(out)]
    assert run_cli(argv, capsys)[0] == 2
    assert run_cli(argv + ["--resume"], capsys)[0] == 2  # still bad: refused again, not "done"
    assert not (out / "metrics.json").exists()
    assert not (out / "run_state.json").exists() or \
        json.loads((out / "run_state.json").read_text())["finished_stages"] == []


def test_resume_with_other_settings_is_refused(capsys, tmp_path):
    from zoo.training.run_folder import RunFolder

    out = tmp_path / "run"
    RunFolder(out).create({"model": "lenet5", "dataset": "fashion_mnist", "epochs": 3})
    code, err = run_cli(["--model", "lenet5", "--epochs", "5", "--out", str(out), "--resume"],
                        capsys)
    assert_one_line_exit_2(code, err, "was started with", "epochs=3 (now 5)")


def test_a_label_out_of_range_stops_the_run_before_training(capsys, tmp_path, monkeypatch):
    """The data-side check: XLA-compiled steps would drop the losses' own assertions."""
    from zoo import datasets

    def load(name, split="train", limit=None, **kwargs):
        y = np.arange(8) % 3
        if split == "test":
            y[2] = 3  # three classes: ids 0, 1, 2
        return datasets.Split(np.zeros((8, 28, 28, 1), np.float32), y, ("a", "b", "c"))

    monkeypatch.setattr(datasets, "load", load)
    out = tmp_path / "run"
    code, err = run_cli(["--model", "lenet5", "--dataset", "mnist", "--epochs", "1",
                         "--validation-split", "0", "--out", str(out)], capsys)
    assert_one_line_exit_2(code, err, "test labels must be class ids in [0, 2]", "[0, 3]")
    assert_not_finished(out)


@pytest.mark.parametrize("value", ["100", "16", "0"])
def test_detector_image_size_must_fit_the_backbone_strides(value, capsys, tmp_path):
    out = tmp_path / "run"
    code, err = run_cli(["--model", "detector", "--image-size", value, "--out", str(out)],
                        capsys)
    assert_one_line_exit_2(code, err, "image_size must be a multiple of 16 from 32 up",
                           f"got {value}")
    assert not out.exists()
    assert train.parse_args(["--model", "detector", "--image-size", "256"]).options == {
        "image_size": 256}


@pytest.mark.parametrize("arguments, message", [
    (["--tiles"], "--tiles reads large real images"),
    (["--zoom", "0.5,2"], "--zoom is for real images"),
    (["--dataset", "neon_trees", "--zoom", "2,0.5"], "zoom must be MIN,MAX with 0.25 <= MIN"),
    (["--dataset", "neon_trees", "--zoom", "0.1,1"], "got '0.1,1'"),
    (["--dataset", "neon_trees", "--zoom", "1"], "zoom must be MIN,MAX"),
    (["--dataset", "neon_trees", "--zoom", "a,b"], "zoom must be MIN,MAX"),
    (["--colour-jitter", "0.5,0.3,0.3"], "--colour-jitter is for letterboxed real images"),
    (["--dataset", "neon_trees", "--colour-jitter", "0.5,0.3,0.3"],
     "--colour-jitter is for letterboxed real images"),
    (["--dataset", "voc:x", "--colour-jitter", "0.5,0.3"], "colour_jitter must be SATURATION"),
    (["--dataset", "voc:x", "--colour-jitter", "0.5,1.3,0"], "got '0.5,1.3,0'"),
    (["--dataset", "voc:x", "--ema", "1"], "ema must be 0 (off) or a momentum in (0, 1)"),
    (["--dataset", "voc:x", "--ema", "-0.5"], "got -0.5"),
    (["--mosaic", "0.5"], "--mosaic is for letterboxed real images"),
    (["--dataset", "neon_trees", "--mosaic", "0.5"], "--mosaic is for letterboxed real images"),
    (["--dataset", "voc:x", "--mosaic", "1.5"], "mosaic must be a probability in [0, 1]"),
    (["--dataset", "neon_trees", "--image-size", "128", "--tile-overlap", "128"],
     "tile_overlap must be a whole number of pixels in [0, 128)"),
])
def test_detector_tiling_options_are_checked_before_any_data(arguments, message, capsys,
                                                             tmp_path):
    out = tmp_path / "run"
    code, err = run_cli(["--model", "detector", *arguments, "--out", str(out)], capsys)
    assert_one_line_exit_2(code, err, message)
    assert not out.exists()
    assert train.parse_args(["--model", "detector", "--tiles", "--tile-overlap", "32"]
                            ).options == {"tiles": True, "tile_overlap": 32}
    assert train.parse_args(["--model", "detector", "--zoom", "0.5,2"]).options == {
        "zoom": "0.5,2"}
