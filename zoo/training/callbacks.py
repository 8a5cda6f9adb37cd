"""The runner's own callbacks: the epoch timer, the crash-safe backup and history.

Placed by the runner in this order: probes (they write into `logs`) -> `HistoryLogger`
(records those logs) -> `RunBackup` (checkpoints the epoch) -> `EpochTimer` -> TensorBoard ->
the user's callbacks. A kill between the history row of epoch e and its checkpoint makes a
resumed fit redo epoch e; `HistoryLogger` then drops the stale row, so every epoch is in the
history exactly once.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import keras

from zoo.training.run_folder import read_history_rows, write_history_rows


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch's training part (validation excluded).

    Only epoch-level hooks: overriding a batch hook would make Keras give up asynchronous
    dispatch and slow the very thing being timed. Validation starts with `on_test_begin`.
    """

    def __init__(self):
        super().__init__()
        self.epoch_seconds = []
        self._start = self._train_end = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._train_end = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        if self._start is not None and self._train_end is None:
            self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append((self._train_end or time.perf_counter()) - self._start)
        self._start = None


class HistoryLogger(keras.callbacks.Callback):
    """Keras's `CSVLogger`, crash-safe: the whole file is rewritten atomically each epoch.

    On a resumed fit the rows of the epochs that will be trained again (epoch >= the first
    epoch of this fit) are dropped first, so no epoch is ever in the file twice.

    Args:
        path: the CSV file.
        append: keep the rows already in the file (a resumed run). Defaults to False.
    """

    def __init__(self, path, append=False):
        super().__init__()
        self.path = Path(path)
        self.append = bool(append)
        self.rows = []
        self._first_epoch_seen = False

    def on_train_begin(self, logs=None):
        self.rows = read_history_rows(self.path) if self.append else []
        self._first_epoch_seen = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self._first_epoch_seen:  # the first epoch of this fit (after a restore)
            self.rows = [row for row in self.rows if int(row["epoch"]) < epoch]
            self._first_epoch_seen = True

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch}
        for key, value in (logs or {}).items():
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                row[key] = value
        self.rows.append(row)
        write_history_rows(self.path, self.rows)


class RunBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` whose checkpoints are single files written atomically.

    Each epoch's weights (with the optimizer state) go to `epoch-NNNN.weights.h5` through a
    temporary file and `os.replace`; the epoch is in the file name, so no second file has to
    agree with it. The two newest are kept: if the newest cannot be read (a truncated file),
    the fit resumes from the one before. The folder is removed when the fit ends, unless
    `delete_checkpoint=False`.
    """

    PATTERN = re.compile(r"^epoch-(\d+)\.weights\.h5$")

    def __init__(self, backup_dir, keep=2, delete_checkpoint=True):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=delete_checkpoint)
        self.keep = int(keep)
        self.restored_epoch = 0

    def _checkpoints(self):
        folder = Path(self.backup_dir)
        if not folder.exists():
            return []
        found = [(int(m.group(1)), folder / m.group(0))
                 for m in map(self.PATTERN.match, (p.name for p in folder.iterdir())) if m]
        return sorted(found, reverse=True)

    def _load_model(self):
        self.restored_epoch = 0
        checkpoints = self._checkpoints()
        if not checkpoints:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        errors = []
        for epoch, path in checkpoints:
            try:
                self.model.load_weights(path)
            except Exception as error:  # a truncated or foreign file: try the previous one
                errors.append(f"{path.name}: {error}")
                continue
            if errors:
                print(f"[losslab] skipped unreadable checkpoint(s) {errors}; resuming from "
                      f"{path.name}", flush=True)
            self.model._initial_epoch = epoch
            self.restored_epoch = epoch
            return
        raise OSError(f"no readable checkpoint in {self.backup_dir}: {errors}")

    def on_train_begin(self, logs=None):
        self._load_model()

    def _save_model(self):
        folder = Path(self.backup_dir)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"epoch-{self._current_epoch:04d}.weights.h5"
        temporary = folder / f".epoch-{self._current_epoch:04d}.partial.weights.h5"
        self.model.save_weights(temporary, overwrite=True)
        temporary.replace(final)
        for _, old in self._checkpoints()[self.keep:]:
            old.unlink(missing_ok=True)
        (folder / "training_metadata.json").write_text(json.dumps(
            {"epoch": self._current_epoch, "note": "informative; the file names decide"}))
