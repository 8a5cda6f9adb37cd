"""benchmarks/transfer.py: the scoring normalisation, the stored split, and a tiny run of
every part on stand-in plate photos (synthetic plates pasted into grey images)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from benchmarks import transfer
from zoo.charset import CHARSETS, Charset
from zoo.datasets.synthetic_plates import random_plate_text, render_plate
from zoo.datasets.text import dejavu_fonts


def stand_in_plates(folder, count):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        text, groups = random_plate_text(rng, Charset(CHARSETS["upper"]))
        photo = np.full((100, 240), 90, np.uint8)
        photo[20:68, 20:212] = render_plate(groups, rng, dejavu_fonts(), 48, 192)
        Image.fromarray(photo).convert("RGB").save(folder / f"p{i:02d}.jpg")
        (folder / f"p{i:02d}.txt").write_text(f"p{i:02d}.jpg\t20\t20\t192\t48\t{text}\n")
    return folder


def test_every_reader_is_scored_after_the_same_normalisation():
    assert transfer.normalise("rk-755aj") == "RK755AJ"
    assert transfer.normalise("W·053 011 ") == "W053011"
    result = transfer.scores(["RK755AJ", "AB12"], ["RK-755AJ", "A812"])
    assert result["cer"] == pytest.approx(1 / 11)  # one substitution in 11 characters
    assert result["sequence_accuracy"] == 0.5


def test_the_o_zero_diagnostic_counts_only_o_and_0_as_one():
    # RKO26AJ read as RK026AJ: one substitution of 14 characters in the plain CER, none folded
    truths, reads = ["RKO26AJ", "AB120CD"], ["rk-026aj", "A8120CD"]
    assert transfer.scores(truths, reads)["cer"] == pytest.approx(2 / 14)
    assert transfer.folded_cer(truths, reads) == pytest.approx(1 / 14)  # B/8 still counts
    assert transfer.folded_cer(["OO0"], ["000"]) == 0.0


def test_the_split_is_seeded_stored_once_and_checked(tmp_path):
    plates = stand_in_plates(tmp_path / "plates", 10)
    path = tmp_path / "split.json"
    split = transfer.plate_split(plates, path)
    assert len(split["test"]) == 2 and len(split["train"]) == 8  # ceil(0.2 * 10) test
    assert sorted(split["test"] + split["train"]) == [f"p{i:02d}" for i in range(10)]
    order = np.random.default_rng(transfer.SPLIT_SEED).permutation(10)
    assert split["test"] == sorted(f"p{i:02d}" for i in order[:2])
    assert transfer.plate_split(plates, path) == split  # read back, not redrawn
    (plates / f"{split['test'][0]}.txt").unlink()
    with pytest.raises(SystemExit, match="lacks photos"):
        transfer.plate_split(plates, path)


@pytest.mark.slow
def test_transfer_smoke(tmp_path, monkeypatch):
    plates = stand_in_plates(tmp_path / "plates", 15)
    monkeypatch.setattr(transfer, "SPLIT_FILE", tmp_path / "split.json")
    transfer.main(["--plates", str(plates), "--seeds", "0", "--epochs", "1",
                   "--lenet-images", "128", "--lenet-epochs", "1", "--work",
                   str(tmp_path / "work"), "--results-dir", str(tmp_path / "results")])
    results = json.loads((tmp_path / "results" / "transfer.json").read_text())
    rows = results["text"]["rows"]
    assert set(rows) == {*transfer.PRETRAINED, "scratch", "fine_tuned"}
    assert len(rows["fine_tuned"]["per_seed"][0]["reads"]) == 3  # ceil(0.2 * 15) test crops
    assert rows["fine_tuned"]["cer"]["n"] == 1
    for name in transfer.PRETRAINED:
        assert 0 <= rows[name]["cer"]
    lenet = results["lenet"]
    assert set(lenet["rows"]) == {"scratch", "fine_tuned"}
    assert lenet["shipped"]["lenet5.mnist"]["test_accuracy"] > 0.98
    for name in ("transfer.md", "transfer.png", "transfer_gallery.png"):
        assert (tmp_path / "results" / name).stat().st_size > 0


def test_the_polarity_stage_picks_the_lowest_mean_of_upright_and_inverted_cer():
    from benchmarks import transfer_recipe

    def row(seeds, upright, inverted):
        # one held-out line "ABCD" per seed: `upright`/`inverted` wrong characters of 4
        cells = [{"seed": s, "truths": ["ABCD"], "reads": ["ABCD"[u:].rjust(4, "X")],
                  "reads_inverted": ["ABCD"[v:].rjust(4, "X")]}
                 for s, u, v in zip(seeds, upright, inverted)]
        return {"seeds": list(seeds), "cells": cells}

    first, second, third = transfer_recipe.POLARITY_CANDIDATES
    recipes = {first: row([0, 1], [0, 0], [4, 4]),       # upright perfect, inverted hopeless
               second: row([0, 1], [1, 1], [1, 1]),       # a little of both: mean 1/4
               third: row([0, 1, 2], [0, 1, 0], [2, 2, 0]),  # seed 2 left out: mean 5/16
               "base": row([0], [0], [0])}                # not a candidate
    stage = transfer_recipe.polarity_stage(recipes)
    assert stage["seeds"] == [0, 1]
    assert stage["rows"][first] == {"cer": 0.0, "cer_inverted": 1.0, "mean": 0.5}
    assert stage["rows"][second]["mean"] == pytest.approx(0.25)
    assert stage["rows"][third] == pytest.approx({"cer": 1 / 8, "cer_inverted": 0.5,
                                                  "mean": 5 / 16})
    assert stage["chosen"] == second
    del recipes[first]["cells"][0]["reads_inverted"]  # a cell of an older run: no choice yet
    assert transfer_recipe.polarity_stage(recipes)["chosen"] is None
    assert transfer_recipe.polarity_stage({second: recipes[second]})["chosen"] is None


def test_the_label_correction_touches_only_o_in_the_digit_field_of_aa999aa(tmp_path):
    assert transfer.corrected_text("RKO26AJ") == "RK026AJ"
    assert transfer.corrected_text("RK3OOAG") == "RK300AG"
    assert transfer.corrected_text("RK340AO") == "RK340AO"    # O in the letter field
    assert transfer.corrected_text("NO450AM") == "NO450AM"
    assert transfer.corrected_text("4BO4979") == "4BO4979"    # another plate form
    assert transfer.corrected_text("RKO26AJX") == "RKO26AJX"
    plates = tmp_path / "plates"
    plates.mkdir()
    for name, text in (("a", "RKO26AJ"), ("b", "RK6O5AB")):
        (plates / f"{name}.jpg").write_bytes(b"jpeg")
        (plates / f"{name}.txt").write_text(f"{name}.jpg\t1\t2\t30\t10\t{text}\n")
    folders = transfer.materialise(plates, {"train": ["a"], "test": ["b"]}, tmp_path / "w",
                                   correct_train=True)
    assert (folders["train"] / "a.txt").read_text() == "a.jpg\t1\t2\t30\t10\tRK026AJ\n"
    assert not (folders["train"] / "a.txt").is_symlink()
    assert (folders["test"] / "b.txt").read_text().endswith("\tRK6O5AB\n")  # as published
    plain = transfer.materialise(plates, {"train": ["a"], "test": ["b"]}, tmp_path / "p")
    assert (plain["train"] / "a.txt").read_text().endswith("\tRKO26AJ\n")


def test_the_label_stage_scores_both_recipes_against_corrected_held_out_labels():
    from benchmarks import transfer_recipe

    published, clean = transfer_recipe.LABEL_CANDIDATES

    def row(seeds, reads, inverted):
        cells = [{"seed": s, "truths": ["RKO26AJ"], "reads": [r], "reads_inverted": [v]}
                 for s, r, v in zip(seeds, reads, inverted)]
        return {"seeds": list(seeds), "cells": cells}

    recipes = {published: row([0, 1], ["RKO26AJ", "RKO26AJ"], ["RK026AJ", "XXXXXXX"]),
               clean: row([0, 1, 2], ["RK026AJ", "RK026AJ", "X"], ["RK026AJ", "RKO26AJ", "X"])}
    stage = transfer_recipe.label_stage(recipes, published)
    assert stage["seeds"] == [0, 1]
    # published: upright 1 of 14 wrong against RK026AJ; inverted 0 + 7 of 14
    assert stage["rows"][published] == pytest.approx(
        {"cer": 2 / 14, "cer_inverted": 7 / 14, "cer_published": 0.0, "mean": 9 / 28})
    assert stage["rows"][clean] == pytest.approx(
        {"cer": 0.0, "cer_inverted": 1 / 14, "cer_published": 2 / 14, "mean": 1 / 28})
    assert stage["chosen"] == clean
    assert transfer_recipe.label_stage(recipes, "mix25_invert20")["chosen"] is None
    assert transfer_recipe.label_stage({published: recipes[published]}, published)["chosen"] is None


def test_the_decoding_stage_compares_greedy_and_beam_reads_of_the_same_cells():
    from benchmarks import transfer_recipe

    cells = [{"seed": 0, "truths": ["RKO26AJ"], "reads": ["RKO26AJ"],
              "reads_inverted": ["RK026AJ"], "reads_beam": ["RK026AJ"],
              "reads_inverted_beam": ["RK02AJ"]}]
    stage = transfer_recipe.decoding_stage({"r": {"seeds": [0], "cells": cells}}, "r")
    # against the corrected label RK026AJ: greedy 1 + 0 wrong of 7; beam 0 + 1 deletion of 7
    assert stage["rows"]["greedy"] == pytest.approx({"cer": 1 / 7, "cer_inverted": 0.0,
                                                     "mean": 1 / 14})
    assert stage["rows"]["beam"] == pytest.approx({"cer": 0.0, "cer_inverted": 1 / 7,
                                                   "mean": 1 / 14})
    assert stage["chosen"] == "greedy"  # a tie keeps the first candidate
    cells[0]["reads_inverted_beam"] = ["RK026AJ"]
    assert transfer_recipe.decoding_stage({"r": {"seeds": [0], "cells": cells}},
                                          "r")["chosen"] == "beam"
    del cells[0]["reads_beam"]  # a cell read before stage 4 existed: no choice yet
    assert transfer_recipe.decoding_stage({"r": {"seeds": [0], "cells": cells}},
                                          "r")["chosen"] is None
    assert transfer_recipe.decoding_stage({}, "r")["chosen"] is None
