"""A run killed with SIGKILL at any moment, then resumed with `resume=True`, ends with every
epoch exactly once in its history and a complete run folder: classification, text and
detection. The kill happens in a child process, at a point chosen by patching the runner's
own steps (no test hook in the product)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from zoo.training import TrainConfig, run

ROOT = Path(__file__).resolve().parents[3]

CLASSIFICATION = dict(model="lenet5", dataset="fashion_mnist", epochs=3, batch_size=64,
                      train_limit=256, test_limit=64, validation_split=0.05, verbose=0)
TEXT = dict(model="crnn_small", dataset="synth_text", epochs=3, batch_size=8, train_limit=16,
            test_limit=8, validation_split=0.5, verbose=0)
DETECTION = dict(model="detector", dataset="synth_scenes", epochs=3, batch_size=8,
                 train_limit=16, test_limit=4, verbose=0, options={
                     "classifier_epochs": 2, "image_size": [64, 64],
                     "detector_kwargs": {"widths": [8, 16, 16], "depths": [1, 1, 1],
                                         "neck_width": 8, "head_width": 8, "head_depth": 1},
                     "classifier_kwargs": {"widths": [8, 8], "depths": [1, 1],
                                           "embedding_dim": 8}})

# Where the child kills itself: `patch` runs in the child before `run(config)`.
KILL_POINTS = {
    # inside epoch 1, after its second batch (the last checkpoint is epoch 0's)
    "mid_epoch": """
        class Kill(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch
            def on_train_batch_end(self, batch, logs=None):
                if self.epoch == 1 and batch == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
        config.callbacks.append(Kill())
    """,
    # epoch 1's history row written, its checkpoint not yet
    "between_history_and_checkpoint": """
        from zoo.training import callbacks as training_callbacks
        save = training_callbacks.RunBackup._save_model
        def kill_before_second_save(self):
            if self._current_epoch == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            save(self)
        training_callbacks.RunBackup._save_model = kill_before_second_save
    """,
    # every epoch trained and checkpointed, the stage not yet recorded as finished
    "after_fit": """
        class Kill(keras.callbacks.Callback):
            def on_train_end(self, logs=None):
                os.kill(os.getpid(), signal.SIGKILL)
        config.callbacks.append(Kill())
    """,
    # the model saved and evaluated, metrics.json not yet written
    "before_metrics": """
        from zoo.training import run_folder
        def kill(self, metrics):
            os.kill(os.getpid(), signal.SIGKILL)
        run_folder.RunFolder.write_metrics = kill
    """,
    # detection: step 1 finished, step 2 killed inside its second epoch's checkpoint
    "in_second_stage": """
        from zoo.training import callbacks as training_callbacks
        save = training_callbacks.RunBackup._save_model
        def kill_in_classifier(self):
            if self.backup_dir.endswith("classifier") and self._current_epoch == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            save(self)
        training_callbacks.RunBackup._save_model = kill_in_classifier
    """,
}


def killed_run(config: dict, kill_point: str, tmp_path) -> subprocess.CompletedProcess:
    script = "\n".join([
        "import json, os, signal, sys",
        "import keras",
        "from zoo.training import TrainConfig, run",
        f"config = TrainConfig(**json.loads({json.dumps(json.dumps(config))}))",
        textwrap.dedent(KILL_POINTS[kill_point]),
        "run(config)",
        "sys.exit(3)  # not killed: the test's kill point was never reached",
    ])
    env = {**os.environ, "LOSSLAB_CACHE": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def epochs_in(path) -> list:
    with open(path, newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


# epochs of the first stage that the resumed run trains (the rest came from the checkpoint)
RETRAINED = {"mid_epoch": 2, "between_history_and_checkpoint": 2, "after_fit": 0,
             "before_metrics": 0, "in_second_stage": 0}


def kill_then_resume(base: dict, kill_point: str, tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = {**base, "out": str(out), "seed": 0}
    child = killed_run(config, kill_point, tmp_path)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    assert not (out / "metrics.json").exists()
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path / "cache"))
    metrics = run(TrainConfig(**{**config, "resume": True}))
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["task"] == metrics["task"]
    assert epochs_in(out / "history.csv") == list(range(base["epochs"]))
    assert not (out / "backup").exists()
    assert stored["epochs_this_session"] == RETRAINED[kill_point]  # nothing trained twice
    return out, stored


@pytest.mark.slow
@pytest.mark.parametrize("kill_point", ["mid_epoch", "between_history_and_checkpoint",
                                        "after_fit", "before_metrics"])
def test_classification_run_survives_a_kill(kill_point, tmp_path, monkeypatch):
    out, stored = kill_then_resume(CLASSIFICATION, kill_point, tmp_path, monkeypatch)
    model = keras.saving.load_model(out / "model.keras")
    steps = int(np.ceil(256 / 64))
    assert int(model.optimizer.iterations) == 3 * steps  # trained 3 epochs, not more
    assert 0.0 <= stored["test_accuracy"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("kill_point", ["between_history_and_checkpoint", "after_fit"])
def test_text_run_survives_a_kill(kill_point, tmp_path, monkeypatch):
    out, stored = kill_then_resume(TEXT, kill_point, tmp_path, monkeypatch)
    model = keras.saving.load_model(out / "model.keras")
    assert int(model.optimizer.iterations) == 3 * 2  # 16 lines / batch 8, 3 epochs
    assert 0.0 <= stored["test_cer"]


@pytest.mark.slow
@pytest.mark.parametrize("kill_point", ["mid_epoch", "in_second_stage"])
def test_detection_run_survives_a_kill(kill_point, tmp_path, monkeypatch):
    out, stored = kill_then_resume(DETECTION, kill_point, tmp_path, monkeypatch)
    assert epochs_in(out / "history_classifier.csv") == [0, 1]
    assert {"map_50", "step1_map_50", "wall_seconds"} <= set(stored)
    for name in ("detector.keras", "classifier.keras", "pipeline/pipeline.json"):
        assert (out / name).exists(), name
