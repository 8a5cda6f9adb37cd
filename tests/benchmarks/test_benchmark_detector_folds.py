"""benchmarks/detector_folds.py: folds partition the training photos (never the test ones),
the summary is that of its cells, and a finished cell is not trained again."""

import argparse
import json

import numpy as np
import pytest

from benchmarks import detector_folds as bench
from voc_fixtures import write_voc_fixture
from zoo.training.tasks.detection import load_detection_data


def test_folds_deal_every_index_once():
    folds = bench.fold_indices(10, 4)
    assert [len(f) for f in folds] == [3, 3, 2, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(folds)), np.arange(10))
    assert all(np.array_equal(a, b) for a, b in zip(folds, bench.fold_indices(10, 4)))


def test_summary_means_over_seeds_then_folds_and_differences_from_base():
    ap = {("base", 0, 0): 0.5, ("base", 0, 1): 0.7, ("base", 1, 0): 0.4, ("base", 1, 1): 0.4,
          ("colour", 0, 0): 0.7, ("colour", 0, 1): 0.7, ("colour", 1, 0): 0.3,
          ("colour", 1, 1): 0.3}
    cells = {key: {"map_50": value, "map": value / 2} for key, value in ap.items()}
    table = bench.summarise(cells, ["base", "colour"], folds=2, seeds=[0, 1])
    np.testing.assert_allclose(table["base"]["map_50"]["values"], [0.6, 0.4])
    np.testing.assert_allclose(table["colour"]["map_50"]["values"], [0.7, 0.3])
    np.testing.assert_allclose(table["colour"]["map"]["mean"], 0.25)
    gain = table["colour"]["map_50_minus_base"]
    np.testing.assert_allclose(gain["values"], [0.1, -0.1], atol=1e-12)
    np.testing.assert_allclose(gain["mean"], 0.0, atol=1e-12)
    np.testing.assert_allclose(gain["standard_error"], np.std([0.1, -0.1], ddof=1) / np.sqrt(2))
    assert gain["folds_ahead"] == 1 and "map_50_minus_base" not in table["base"]


def test_summary_of_flip_tta_pairs_each_cell_with_its_own_weights_without_it():
    with_tta = {(0, 0): 0.6, (0, 1): 0.8, (1, 0): 0.5, (1, 1): 0.3}
    without = {(0, 0): 0.5, (0, 1): 0.5, (1, 0): 0.5, (1, 1): 0.5}
    cells = {("flip_tta", k, s): {"map_50": v, "map": v / 2,
                                  "map_50_without_tta": without[(k, s)]}
             for (k, s), v in with_tta.items()}
    cells.update({("base", k, s): {"map_50": 0.1, "map": 0.05} for k, s in with_tta})
    table = bench.summarise(cells, ["base", "flip_tta"], folds=2, seeds=[0, 1])
    gain = table["flip_tta"]["map_50_tta_gain"]  # fold means 0.7 and 0.4 against 0.5 and 0.5
    np.testing.assert_allclose(gain["values"], [0.2, -0.1], atol=1e-12)
    assert gain["folds_ahead"] == 1 and "map_50_tta_gain" not in table["base"]
    text = bench.markdown({"settings": {"train_images": 8, "voc": "v", "test_images": 2,
                                        "folds": 2, "seeds": [0, 1], "epochs": 1,
                                        "recipe": "r"}, "table": table})
    assert "AP@.5 +0.050 ± 0.150 with it, ahead on 1 of 2 folds" in text


@pytest.mark.parametrize("config", ["colour_ema", "flip_tta"])
def test_a_cell_trains_on_the_other_folds_and_scores_the_held_out_one(tmp_path, config):
    voc = write_voc_fixture(tmp_path / "voc")
    train, _, _ = load_detection_data(f"voc:{voc}", image_size=(64, 64))
    args = argparse.Namespace(tiny=True, epochs=1)
    cell = bench.one_cell(train.subset([0, 1, 2]), train.subset([3, 4]), config, 0, args)
    assert (cell["train_images"], cell["held_out_images"]) == (3, 2)
    assert 0.0 <= cell["map"] <= cell["map_50"] <= 1.0 and cell["seconds"] > 0
    assert ("map_50_without_tta" in cell) == (config == "flip_tta")


def test_benchmark_writes_cells_and_resumes(tmp_path, monkeypatch):
    voc = write_voc_fixture(tmp_path / "voc")
    args = ["--voc", str(voc), "--folds", "2", "--epochs", "1", "--image-size", "64",
            "--tiny", "--work", str(tmp_path / "work"), "--results-dir", str(tmp_path / "results")]
    asked = []

    def stand_in(train_set, held_out, config, seed, args):  # the cell's trainer, tested above
        asked.append((config, len(train_set), len(held_out)))
        score = {"base": 0.1, "colour_ema": 0.5}[config] + 0.125 * len(asked)
        return {"map_50": score, "map": score / 2, "seconds": 1.0,
                "train_images": len(train_set), "held_out_images": len(held_out)}

    monkeypatch.setattr(bench, "one_cell", stand_in)
    bench.main([*args, "--configs", "colour_ema"])
    results = json.loads((tmp_path / "results" / "detector_folds.json").read_text())
    folds = results["folds"]
    assert sorted(folds[0] + folds[1]) == sorted(set(folds[0] + folds[1]))
    assert results["settings"]["train_images"] == len(folds[0] + folds[1]) == 5
    assert [a[1:] for a in asked] == [(len(folds[1]), len(folds[0])),
                                      (len(folds[0]), len(folds[1]))]
    cell = results["cells"]["colour_ema-fold1-seed0"]
    assert cell["held_out_images"] == len(folds[1]) and cell["train_images"] == len(folds[0])
    assert results["table"]["colour_ema"]["map_50"]["values"] == [0.625, 0.75]
    assert (tmp_path / "results" / "detector_folds.png").exists()
    bench.main([*args, "--configs", "base", "colour_ema"])  # stored cells are not rerun
    assert [a[0] for a in asked] == ["colour_ema", "colour_ema", "base", "base"]
    results = json.loads((tmp_path / "results" / "detector_folds.json").read_text())
    gain = results["table"]["colour_ema"]["map_50_minus_base"]
    np.testing.assert_allclose(gain["values"], [0.625 - 0.475, 0.75 - 0.6])
    assert gain["folds_ahead"] == 2
    text = (tmp_path / "results" / "detector_folds.md").read_text()
    assert "| base | 0.475, 0.600 |" in text and "| colour_ema | 0.625, 0.750 |" in text
    with pytest.raises(SystemExit):
        bench.main([*args, "--folds", "1"])
