"""benchmarks/pruning.py on a tiny budget: the one-shot accuracy equals a brute-force global
prune of the shipped weights written here, the fine-tuned cells keep the sparsity, the table
summarises its cells, files are written and finished cells are reused."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest


@pytest.mark.slow
def test_pruning_benchmark_smoke(tmp_path):
    from benchmarks import pruning
    from zoo import create_model, datasets

    arguments = ["--sparsities", "0.6", "--methods", "global", "gradual", "--seeds", "0", "1",
                 "--fine-tune-epochs", "1", "--target-budgets", "1", "--train-limit", "256",
                 "--work", str(tmp_path / "cells"), "--results-dir", str(tmp_path)]
    pruning.main(arguments)
    results = json.loads((tmp_path / "pruning.json").read_text())

    model = create_model("lenet5", weights="mnist")
    kernels = [model.get_layer(n).kernel for n in ("c1", "c3", "f5", "f6")]
    values = np.concatenate([np.abs(keras.ops.convert_to_numpy(k)).ravel() for k in kernels])
    threshold = np.sort(values)[int(0.6 * values.size) - 1]
    for k in kernels:  # no ties at the threshold in these float weights
        w = keras.ops.convert_to_numpy(k)
        k.assign(np.where(np.abs(w) <= threshold, 0.0, w))
    test = datasets.load("mnist", "test")
    expected = np.mean(np.argmax(model.predict(test.x, verbose=0), -1) == test.y)
    row = results["table"]["global"]["0.6"]
    assert row["one_shot"] == pytest.approx(expected, abs=1e-6)
    assert row["measured_sparsity"] == pytest.approx(0.6, abs=1e-4)
    cells = [json.loads((tmp_path / "cells" / f"global-0.6-{s}-e1.json").read_text())
             for s in (0, 1)]
    assert row["fine_tuned"]["mean"] == pytest.approx(np.mean([c["fine_tuned"] for c in cells]))
    assert all(c["measured"]["total"] == pytest.approx(0.6, abs=1e-4) for c in cells)
    gradual = results["table"]["gradual"]["0.6"]
    assert gradual["one_shot"] is None and gradual["measured_sparsity"] == pytest.approx(0.6,
                                                                                         abs=1e-4)
    selection = results["selection_at_target"]  # 90 %: 4 candidates scored on validation
    assert selection["validation_images"] == 6000 and selection["training_part_images"] == 256
    assert len(selection["candidates"]) == 4
    best = max(selection["candidates"], key=lambda c: c["validation_accuracy"])
    chosen = selection["selected"]
    assert chosen["recipe"] == {k: best[k] for k in ("method", "epochs", "shifts")}
    shift = "-shift" if best["shifts"] else ""
    finals = [json.loads((tmp_path / "cells" / f"{best['method']}-0.9-{s}-e1-cosine{shift}.json")
                         .read_text()) for s in (0, 1)]
    assert all(c["scored_on"] == "test" for c in finals)
    assert chosen["fine_tuned"]["mean"] == pytest.approx(np.mean([c["fine_tuned"] for c in finals]))
    assert chosen["measured_sparsity"] == pytest.approx(0.9, abs=1e-4)
    assert results["target"]["value"] == chosen["fine_tuned"]["mean"]
    assert "| global | 60.0 % |" in (tmp_path / "pruning.md").read_text()
    assert (tmp_path / "pruning.png").stat().st_size > 0
    pruning.main(arguments)  # finished cells are read back, not retrained
    again = json.loads((tmp_path / "pruning.json").read_text())["table"]
    assert again["global"]["0.6"]["fine_tuned"] == row["fine_tuned"]
