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
        assert stored[0]["config"]["options"]["model_kwargs"] == {"widths": [4, 8]}
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
