"""Benchmark scripts still run (tiny settings) and write their result files."""

import json
import shutil

import numpy as np
import pytest

from benchmarks import lenet_baseline


@pytest.mark.slow
def test_lenet_baseline_smoke(tmp_path):
    lenet_baseline.main(["--seeds", "0", "1", "--epochs", "1", "--train-limit", "256",
                         "--overhead-reps", "1", "--overhead-epochs", "1",
                         "--results-dir", str(tmp_path)])
    results = json.loads((tmp_path / "lenet_baseline.json").read_text())
    for dataset in ("mnist", "fashion_mnist"):
        accuracies = [run["test_accuracy"] for run in results[dataset]["runs"]]
        assert results[dataset]["test_accuracy"]["n"] == 2
        assert abs(results[dataset]["test_accuracy"]["mean"] - sum(accuracies) / 2) < 1e-12
        assert results[dataset]["overhead"]["ratio_of_medians"] > 0
    assert (tmp_path / "lenet_baseline.png").stat().st_size > 0
    assert "| mnist |" in (tmp_path / "lenet_baseline.md").read_text()


@pytest.mark.slow
def test_loss_comparison_smoke(tmp_path):
    from benchmarks import loss_comparison

    arguments = ["--datasets", "mnist", "--losses", "focal", "--seeds", "0", "1",
                 "--epochs", "1", "--train-limit", "256", "--timing-reps", "2",
                 "--timing-steps", "2", "--test-limit", "1000", "--results-dir", str(tmp_path),
                 "--work", str(tmp_path / "cells"), "--cells", str(tmp_path / "record")]
    loss_comparison.main(arguments)
    results = json.loads((tmp_path / "loss_comparison.json").read_text())
    table = results["table"]["mnist"]
    assert set(table) == {"softmax", "focal"}
    assert table["softmax"]["step_time_vs_softmax"] == 1.0
    assert len(table["focal"]["step_seconds"]) == 2 and table["focal"]["step_time_vs_softmax"] > 0
    assert table["focal"]["test_accuracy"]["n"] == 2
    assert 0 < table["focal"]["intra_inter_ratio"]["mean"] < 10
    assert (tmp_path / "loss_comparison_embeddings.png").stat().st_size > 0
    assert "| focal |" in (tmp_path / "loss_comparison.md").read_text()
    # Welch's t from the two seeds' accuracies, computed here by hand
    a = np.array([r["test_accuracy"] for r in table["focal"]["runs"]])
    b = np.array([r["test_accuracy"] for r in table["softmax"]["runs"]])
    t = (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / 2 + b.var(ddof=1) / 2)
    gain = table["focal"]["gain_over_softmax"]
    assert gain["points"] == pytest.approx(100 * (a.mean() - b.mean()))
    assert gain["welch_t"] == pytest.approx(t) if np.isfinite(t) else gain["welch_t"] is None
    # the cells persist: a second run reads them back (resumes) and gives the same rows
    loss_comparison.main([*arguments, "--skip-2d"])
    again = json.loads((tmp_path / "loss_comparison.json").read_text())["table"]["mnist"]
    assert {k: v["runs"] for k, v in again.items()} == {k: v["runs"] for k, v in table.items()}
    # from a fresh checkout (no run folders) the record alone gives the same rows and figure
    shutil.rmtree(tmp_path / "cells")
    with np.load(tmp_path / "loss_comparison_embeddings.npz") as drawn:
        before = dict(drawn)
    (tmp_path / "loss_comparison_embeddings.npz").unlink()
    loss_comparison.main(arguments)
    assert not (tmp_path / "cells").exists()  # nothing was trained again
    again = json.loads((tmp_path / "loss_comparison.json").read_text())
    assert {k: v["runs"] for k, v in again["table"]["mnist"].items()} == {
        k: v["runs"] for k, v in table.items()}
    assert again["two_d_accuracy"] == results["two_d_accuracy"]
    with np.load(tmp_path / "loss_comparison_embeddings.npz") as drawn:
        assert sorted(drawn) == sorted(before)
        for key in before:
            np.testing.assert_array_equal(drawn[key], before[key])
    other_epochs = list(arguments)
    other_epochs[other_epochs.index("--epochs") + 1] = "2"
    with pytest.raises(SystemExit, match="was trained with"):
        loss_comparison.main(other_epochs)  # the same cells, another budget: refused


@pytest.mark.slow
def test_loss_comparison_merge_replaces_rows_and_checks_the_recipe(tmp_path):
    from benchmarks import loss_comparison

    common = ["--datasets", "mnist", "--seeds", "0", "--epochs", "1", "--train-limit", "128",
              "--timing-reps", "1", "--timing-steps", "1", "--results-dir", str(tmp_path),
              "--test-limit", "500"]
    loss_comparison.main([*common, "--losses", "focal", "hinge"])
    first = json.loads((tmp_path / "loss_comparison.json").read_text())
    loss_comparison.main([*common, "--losses", "hinge", "--merge", "--skip-2d"])
    merged = json.loads((tmp_path / "loss_comparison.json").read_text())
    assert merged["losses"] == ["softmax", "focal", "hinge"]
    assert merged["table"]["mnist"]["focal"] == first["table"]["mnist"]["focal"]  # untouched
    (update,) = merged["updates"]
    assert update["losses"] == ["hinge"] and update["parts"] == ["table"]
    # Seeded, deterministic training: the re-run softmax reproduces the stored accuracy.
    assert update["softmax_max_accuracy_change"]["mnist"] < 0.02
    # The 2-D panels survive a table-only merge, and a 2-D-only merge redraws them.
    assert set(np.load(tmp_path / "loss_comparison_embeddings.npz").files) >= {
        "focal/embeddings", "hinge/labels"}
    with pytest.raises(SystemExit, match="epochs"):
        loss_comparison.main([*common[:4], "--epochs", "2", *common[6:], "--losses", "hinge",
                              "--merge"])


@pytest.mark.slow
def test_lenet_recipe_smoke(tmp_path):
    from benchmarks import lenet_recipe

    lenet_recipe.main(["--seeds", "1", "2", "--epochs", "1", "--train-limit", "256",
                       "--work", str(tmp_path / "work"), "--results-dir", str(tmp_path)])
    results = json.loads((tmp_path / "lenet_recipe.json").read_text())
    for dataset in ("mnist", "fashion_mnist"):
        row = results["datasets"][dataset]
        accuracies = [r["test_accuracy"] for r in row["runs"]]
        assert [r["seed"] for r in row["runs"]] == [1, 2]
        assert row["test_accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
        assert row["recipe"]["options"] == {"augment": "shift"}  # the shipped recipe
        assert row["seeds_meeting_target"] == sum(a >= row["target"] for a in accuracies)
    assert (tmp_path / "lenet_recipe.png").stat().st_size > 0


def test_format_mean_std_says_when_there_is_one_run():
    from benchmarks.common import format_mean_std, mean_std

    assert format_mean_std(mean_std([0.5, 0.7])) == f"0.600 ± {np.std([0.5, 0.7], ddof=1):.3f}"
    assert format_mean_std(mean_std([0.25]), digits=2) == "0.25 (1 run)"


def test_thesis_claim_verdict_and_welch_t_by_hand():
    from benchmarks import loss_comparison

    def rows(accuracies):
        return {name: {"runs": [{"test_accuracy": a} for a in values]}
                for name, values in accuracies.items()}

    rivals = loss_comparison.MARGIN_AND_METRIC
    ours = [0.920, 0.925, 0.930]
    # every rival 0.60 to 0.64 points behind: the claim holds
    clear = {name: [a - 0.006 - 0.0002 * (i % 2) * k for k, a in enumerate(ours)]
             for i, name in enumerate(rivals)}
    # the same, but contrastive 1 point ahead, and cosface only 0.3 behind
    mixed = dict(clear, contrastive=[a + 0.01 for a in ours[::-1]], cosface=[0.917, 0.922, 0.927])
    table = {"clear": rows({"intra_inter": ours, **clear}),
             "mixed": rows({"intra_inter": ours, **mixed})}
    claim = loss_comparison.thesis_claim(table)
    assert claim["clear"]["verdict"] == "holds"
    assert claim["clear"]["rivals_led"] == len(rivals)
    assert claim["mixed"]["verdict"] == "does not hold"
    assert claim["mixed"]["rivals_led"] == len(rivals) - 1
    assert claim["mixed"]["rivals_ahead_significantly"] == 0  # a shifted copy: t = -2.45, p > 0.05
    a, b = np.array(ours), np.array(mixed["contrastive"])
    t = (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / 3 + b.var(ddof=1) / 3)
    lead = claim["mixed"]["leads"]["contrastive"]
    assert lead["points"] == pytest.approx(-1.0)
    assert lead["welch_t"] == pytest.approx(t)
    assert claim["mixed"]["leads"]["cosface"]["points"] == pytest.approx(0.3)
    text = loss_comparison.claim_markdown(claim)
    assert "| clear |" in text and "holds: ahead of 8 of 8" in text
    assert "does not hold: ahead of 7 of 8" in text
