"""One short `zoo.train` run of each task on whatever backend runs the tests (the JAX job has
no TensorFlow installed): it trains, scores, writes metrics.json and a model that reloads."""

from __future__ import annotations

import json
import math

import keras
import pytest

from zoo import train

RUNS = {  # task: (model, dataset, loss, the metric it must report, extra settings)
    "classification": ("lenet5", "fashion_mnist", "softmax", "test_accuracy", {}),
    "text": ("crnn_small", "synth_text", "ctc", "test_cer", {}),
    "reconstruction": ("unet_denoiser", "fashion_mnist", "mse", "test_psnr",
                       {"options": {"model_kwargs": {"widths": (8, 16)}}}),
    "detection": ("detector", "synth_scenes", "ciou", "map_50",
                  {"options": {"one_step": True}}),
}


@pytest.mark.parametrize("task", RUNS)
def test_the_task_trains_on_this_backend(task, tmp_path):
    model, dataset, loss, metric, extra = RUNS[task]
    metrics = train.run(train.TrainConfig(
        model=model, dataset=dataset, loss=loss, epochs=1, batch_size=32, train_limit=128,
        test_limit=32, verbose=0, out=str(tmp_path), **extra))
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["task"] == task and stored["versions"]["backend"] == keras.backend.backend()
    assert math.isfinite(stored[metric]) and stored[metric] == metrics[metric]
    saved = sorted(tmp_path.glob("*.keras"))
    assert saved, "no model was saved"
    keras.saving.load_model(saved[0], safe_mode=True)
