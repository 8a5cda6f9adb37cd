"""benchmarks/crnn_ctc.py still runs (tiny settings) and writes its result files."""

import json

import numpy as np
import pytest

from benchmarks import crnn_ctc


def test_loss_inputs_are_feasible_and_in_both_forms():
    logits, labels, targets, lengths = crnn_ctc.loss_inputs(8, 32, 37, seed=0)
    assert logits.shape == (8, 32, 37) and labels.shape == (8, 10)
    assert np.all((lengths >= 4) & (lengths <= 10))
    for row, length in zip(range(8), lengths):
        assert np.all(labels[row, :length] >= 1) and np.all(labels[row, :length] < 37)
        assert np.all(labels[row, length:] == -1) and np.all(targets[row, length:] == 0)
        np.testing.assert_array_equal(targets[row, :length], labels[row, :length])
    with pytest.raises(ValueError, match="too few"):
        crnn_ctc.loss_inputs(8, 16, 37, seed=0)


@pytest.mark.slow
def test_crnn_ctc_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path / "cache"))
    crnn_ctc.main(["--loss-batch", "8", "--loss-reps", "2", "--loss-calls", "2",
                   "--epochs", "1", "--train-limit", "16", "--batch-size", "8",
                   "--validation-split", "0.5", "--test-limit", "8", "--beam-widths", "2", "4",
                   "--decode-limit", "6", "--decode-reps", "2",
                   "--run-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path)])
    results = json.loads((tmp_path / "crnn_ctc.json").read_text())
    timing = results["loss_timing"]
    assert set(timing) == {"eager", "graph", "jit"}
    for mode, r in timing.items():
        assert len(r["ratio_per_rep"]) == 2 and r["ratio"] > 0
        assert r["ratio"] == pytest.approx(np.median(np.asarray(r["ours_ms"])
                                                     / np.asarray(r["raw_ms"])))
        # the two calls compute the same loss and gradient
        assert r["max_abs_loss_difference"] < 1e-4 and r["max_abs_gradient_difference"] < 1e-5
    training = results["training"]
    assert training["budget"]["lines_seen"] == 16 and training["test_lines"] == 8
    assert 0 <= training["test_sequence_accuracy"] <= 1 and training["test_cer"] >= 0
    assert len(training["history"]["val_cer"]) == 1
    decoding = results["decoding"]
    assert decoding["lines"] == 6 and list(decoding["variants"]) == ["greedy", "beam2", "beam4"]
    greedy = decoding["variants"]["greedy"]
    # part 3 decodes the same model's test logits as the run did, on the first 6 lines
    assert greedy["ms_per_line"] > 0 and len(greedy["ms_per_line_per_rep"]) == 2
    assert (tmp_path / "crnn_ctc.png").stat().st_size > 0
    markdown = (tmp_path / "crnn_ctc.md").read_text()
    assert "| jit |" in markdown and "| beam4 |" in markdown
    assert (tmp_path / "run" / "gallery.png").exists()
