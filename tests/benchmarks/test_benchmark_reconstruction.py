"""benchmarks/reconstruction.py on a tiny budget: one run per (loss, seed) through zoo.train,
the table's differences from MSE computed as stated, files written, runs reused."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.slow
def test_reconstruction_benchmark_smoke(tmp_path):
    from benchmarks import reconstruction

    arguments = ["--dataset", "mnist", "--losses", "mse", "mix", "--seeds", "0", "1",
                 "--epochs", "1", "--train-limit", "128", "--test-limit", "64",
                 "--widths", "4", "8", "--work", str(tmp_path / "runs"),
                 "--results-dir", str(tmp_path)]
    reconstruction.main(arguments)
    # another dataset than Fashion-MNIST: its own result files, and no PSNR target
    results = json.loads((tmp_path / "reconstruction_mnist.json").read_text())
    table = results["table"]
    for loss in ("mse", "mix"):
        stored = [json.loads((tmp_path / "runs" / f"mnist-gaussian-{loss}-{seed}" /
                              "metrics.json").read_text()) for seed in (0, 1)]
        assert [r["test_psnr"] for r in table[loss]["runs"]] == [m["test_psnr"] for m in stored]
        assert stored[0]["config"]["options"]["model_kwargs"] == {"widths": [4, 8],
                                                                   "blocks": 1}
    a = np.array([r["test_ssim"] for r in table["mix"]["runs"]])
    b = np.array([r["test_ssim"] for r in table["mse"]["runs"]])
    assert table["mix"]["ssim_minus_mse"]["mean"] == pytest.approx(a.mean() - b.mean())
    assert table["mix"]["ssim_minus_mse"]["standard_error"] == pytest.approx(
        np.sqrt(a.var(ddof=1) / 2 + b.var(ddof=1) / 2))
    verdict = results["verdict"]
    assert verdict["best_loss"] == max(table, key=lambda l: table[l]["psnr"]["mean"])
    assert verdict["ssim_losses"] == ["mix"]
    assert verdict["target_met"] is None and verdict["target_psnr"] is None
    text = (tmp_path / "reconstruction_mnist.md").read_text()
    assert "| mix |" in text and "no target is set" in text
    assert not (tmp_path / "reconstruction.json").exists()
    for name in ("reconstruction_mnist.png", "reconstruction_mnist_gallery.png"):
        assert (tmp_path / name).stat().st_size > 0
    reconstruction.main(arguments)  # finished runs are read back, not retrained
    again = json.loads((tmp_path / "reconstruction_mnist.json").read_text())["table"]
    assert again["mse"]["runs"] == table["mse"]["runs"]


def test_a_new_loss_joins_the_stored_table_without_its_runs(tmp_path, capsys, monkeypatch):
    """The results file's runs at the same settings are reused (their run folders gone);
    only the new loss trains, and the gallery, which needs every model, is not redrawn."""
    from benchmarks import reconstruction

    arguments = ["--dataset", "mnist", "--seeds", "0", "1", "--epochs", "1",
                 "--train-limit", "128", "--test-limit", "64", "--widths", "4", "8",
                 "--work", str(tmp_path / "runs"), "--results-dir", str(tmp_path)]
    row = {"test_psnr": 20.0, "test_ssim": 0.5, "input_psnr": 10.0, "input_ssim": 0.2,
           "wall_seconds": 1.0}
    asked = []

    def stand_in(args, loss, seed):  # the training itself is tested above
        asked.append((loss, seed))
        return {"seed": seed, **row, "test_psnr": 20.0 + seed + (loss == "psnr")}

    monkeypatch.setattr(reconstruction, "one_run", stand_in)
    reconstruction.main([*arguments, "--losses", "mse"])
    reconstruction.main([*arguments, "--losses", "psnr"])
    assert asked == [("mse", 0), ("mse", 1), ("psnr", 0), ("psnr", 1)]
    results = json.loads((tmp_path / "reconstruction_mnist.json").read_text())
    assert list(results["table"]) == ["mse", "psnr"] and results["settings"]["seeds"] == [0, 1]
    np.testing.assert_allclose(results["table"]["psnr"]["psnr_minus_mse"]["mean"], 1.0)
    assert results["verdict"]["best_loss"] == "psnr"
    assert "gallery not redrawn" in capsys.readouterr().out
    # other settings: nothing is reused
    reconstruction.main([*arguments, "--losses", "psnr", "--epochs", "2"])
    assert asked[-2:] == [("psnr", 0), ("psnr", 1)]
    results = json.loads((tmp_path / "reconstruction_mnist.json").read_text())
    assert list(results["table"]) == ["psnr"] and results["settings"]["epochs"] == 2
