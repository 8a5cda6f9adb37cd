"""The run folder: atomic writes, stages that survive a kill, and the history file.

A run writes into one folder. Every file that a later step (or a resumed run) reads is
written atomically: to a temporary file in the same folder, then `os.replace`d, so a kill
leaves either the old file or the new one, never half of one. A run moves through stages:

    fitting a stage (backup/STAGE holds the last finished epoch)
    -> STAGE.keras saved, "STAGE" recorded in run_state.json, backup/STAGE removed
    -> ... (the detector has two stages) -> metrics.json: the run is complete.

`--resume` reads that state: a complete run is returned as is, a finished stage is loaded
from its .keras file instead of being trained again, and an interrupted stage continues
from its backup. A run folder without metrics.json never counts as finished.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np

METRICS_FILE, STATE_FILE, BACKUP_DIR = "metrics.json", "run_state.json", "backup"


def _json_default(value):
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def atomic_save_model(model, path) -> Path:
    """`model.save(path)` (a .keras file) through a temporary .keras file and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.partial.keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_history(path) -> dict:
    """history.csv as {column: [float per epoch]} (the "epoch" column left out)."""
    rows = read_history_rows(path)
    if not rows:
        return {}
    return {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch"}


def read_history_rows(path) -> list:
    """The complete rows of a history CSV (a torn last line is dropped); [] if absent."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return [row for row in reader
                if None not in row.values() and None not in row and row.get("epoch", "") != ""]


def write_history_rows(path, rows: list) -> Path:
    """Write history rows (dicts with an "epoch" column first) atomically."""
    keys = ["epoch"] + sorted({k for row in rows for k in row if k != "epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n", restval="nan")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


class RunFolder:
    """One run's folder and its stages; see the module docstring.

    Args:
        path: the folder (created by `create`).
        resume: continue what is there instead of starting over. Defaults to False.
    """

    def __init__(self, path, resume=False):
        self.path = Path(path)
        self.resume = bool(resume)

    def file(self, name) -> Path:
        return self.path / name

    def completed_metrics(self) -> dict | None:
        """The stored metrics when resuming a complete run, else None."""
        metrics = self.file(METRICS_FILE)
        if not self.resume or not metrics.exists():
            return None
        try:
            return json.loads(metrics.read_text())
        except ValueError:  # written atomically, so only a foreign edit gets here
            return None

    def create(self, config: dict | None = None) -> "RunFolder":
        """Make the folder; without `resume`, clear what an earlier run left in it. `config`
        (the run's settings) is recorded, so that a later `--resume` can check it."""
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.resume:
            for stale in self.path.iterdir():
                if stale.name in (BACKUP_DIR, STATE_FILE, METRICS_FILE) or \
                        stale.name.startswith("history"):
                    shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        state = self._state()
        if config is not None and "config" not in state:
            atomic_write_json(self.file(STATE_FILE), {**state, "config": config})
        return self

    def recorded_config(self) -> dict | None:
        """The settings the run in this folder was started with (None if unknown)."""
        if self.file(METRICS_FILE).exists():
            try:
                return json.loads(self.file(METRICS_FILE).read_text()).get("config")
            except ValueError:
                return None
        return self._state().get("config")

    def _state(self) -> dict:
        try:
            return json.loads(self.file(STATE_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return {"finished_stages": []}

    def stage_done(self, stage: str) -> bool:
        return (self.resume and stage in self._state()["finished_stages"]
                and self.stage_model_path(stage).exists())

    def stage_model_path(self, stage: str) -> Path:
        return self.file(f"{stage}.keras")

    def history_path(self, stage: str, primary: bool) -> Path:
        return self.file("history.csv" if primary else f"history_{stage}.csv")

    def backup_dir(self, stage: str) -> Path:
        return self.file(BACKUP_DIR) / stage

    def finish_stage(self, stage: str, model) -> None:
        """Save the stage's model, record the stage as finished, drop its backup."""
        atomic_save_model(model, self.stage_model_path(stage))
        state = self._state()
        state["finished_stages"] = sorted(set(state["finished_stages"]) | {stage})
        atomic_write_json(self.file(STATE_FILE), state)
        shutil.rmtree(self.backup_dir(stage), ignore_errors=True)

    def load_stage(self, stage: str):
        return keras.saving.load_model(self.stage_model_path(stage))

    def write_metrics(self, metrics: dict) -> None:
        """The last write of a run: after it, the run counts as complete."""
        atomic_write_json(self.file(METRICS_FILE), metrics)
        shutil.rmtree(self.file(BACKUP_DIR), ignore_errors=True)
