"""One training runner for every model: `run(config)` -> the run folder and its metrics.

    run folder -> seeds and determinism -> data -> model -> optimizer -> standard callbacks
    -> fit -> evaluation -> metrics.json

The same steps for every model. What differs per task (classification, text recognition,
detection) is the task object named by the model's registry entry (`zoo.training.tasks`):
its datasets and losses, how it builds, fits (the detector fits two stages) and scores.
The standard callbacks of every fit stage are the probes (`--trace-weights`,
`--monitor-margins`), `HistoryLogger` (history.csv), `RunBackup` (`--resume`), the epoch
timer, `keras.callbacks.TensorBoard` (`--tensorboard`) and the caller's own callbacks.

metrics.json has one schema: `task`, the task's metrics (`test_accuracy`, `test_cer`,
`map_50`, ...), `wall_seconds`, `epochs_this_session`, `train_samples_per_second`,
`train_samples`, `parameters`, `seed`, `files`, `versions`, `config`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time

import keras
import numpy as np

from zoo.training.callbacks import EpochTimer, HistoryLogger, RunBackup
from zoo.training.config import ConfigError, TrainConfig
from zoo.training.distribution import Placement, distributed
from zoo.training.reproducibility import deterministic_ops, seed_everything, versions
from zoo.training.run_folder import RunFolder
from zoo.training.tasks import task_for_model


def resolve(config: TrainConfig):
    """A copy of `config` with the task's defaults filled in, checked; and the task.

    Raises ConfigError (one line) for anything that cannot run, before any data is read.
    """
    config = dataclasses.replace(config, options=dict(config.options),
                                 callbacks=list(config.callbacks))
    config.validate()
    try:
        task = task_for_model(config.model)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    for name, why in task.refuses.items():
        value = getattr(config, name)
        if value not in (None, False):
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} does not apply to {task.name} models such as "
                              f"{config.model!r}: {why}")
    config.dataset = config.dataset or task.default_dataset
    config.loss = config.loss or task.default_loss
    config.batch_size = config.batch_size or task.default_batch_size
    if config.validation_split is None and "validation_split" not in task.refuses:
        config.validation_split = 0.1
    task.check(config)
    if config.init_from:
        from zoo.training.transfer import source_model_path

        source_model_path(config.init_from, task.stages[0])  # ConfigError before any I/O
    if config.test_dataset:
        task.dataset_kind(config.test_dataset)
    config.out = config.out or task.default_run_folder(config)
    return config, task


@contextlib.contextmanager
def dtype_policy(name):
    """Keras's global dtype policy set to `name` (None: leave it) while the run builds,
    trains and scores its models; the caller's policy is restored afterwards. Keras's
    `compile` then wraps the optimizer in a LossScaleOptimizer under mixed_float16."""
    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# settings that may change between a run and its --resume (they do not change the result;
# test_dataset does: a text model on real data then keeps no test split of its own)
RESUME_MAY_CHANGE = ("resume", "verbose", "tensorboard", "out", "callbacks")


def comparable(settings: dict) -> dict:
    return json.loads(json.dumps({k: v for k, v in settings.items()
                                  if k not in RESUME_MAY_CHANGE}, default=str))


def check_resumable(config, folder: RunFolder) -> None:
    """ConfigError when `--resume` would continue a run started with other settings."""
    recorded = folder.recorded_config()
    if recorded is None:
        return
    ours, theirs = comparable(config.to_json()), comparable(recorded)
    differ = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    if differ:
        said = ", ".join(f"{k}={theirs.get(k)!r} (now {ours.get(k)!r})" for k in differ)
        raise ConfigError(f"--resume: {folder.path} was started with {said}; repeat its "
                          f"options or choose another --out")


def run(config: TrainConfig) -> dict:
    """Train, evaluate and write the run folder; return the metrics dict.

    With `config.resume`, a complete run folder is returned as is and an interrupted one
    continues (`zoo.training.run_folder`).
    """
    config, task = resolve(config)
    with distributed(config.distribute) as placement:
        return _run(config, task, placement)


def _run(config: TrainConfig, task, placement: Placement) -> dict:
    folder = RunFolder(config.out, config.resume)
    if config.resume:
        check_resumable(config, folder)
    done = folder.completed_metrics()
    if done is not None:
        print(f"[losslab] {folder.path} holds a completed run; nothing to resume.")
        return done
    seed_everything(config.seed)
    with deterministic_ops(config.deterministic and task.op_determinism), \
            dtype_policy(config.mixed_precision):
        prepared = task.prepare(config)  # bad data fails here, before the folder exists
        folder.create(comparable(config.to_json()))
        fitter = Fitter(config, task, folder, prepared)
        started = time.perf_counter()
        models = task.fit(config, prepared, fitter)
        wall_seconds = time.perf_counter() - started
        task_metrics = task.evaluate(config, prepared, models, folder)
    primary = models[task.stages[0]]
    steady = fitter.timer.epoch_seconds[1:] or fitter.timer.epoch_seconds
    metrics = {
        "task": task.name,
        **task_metrics,
        "wall_seconds": wall_seconds,
        "epochs_this_session": len(fitter.timer.epoch_seconds),
        "epoch_seconds": fitter.timer.epoch_seconds,
        # the first epoch includes tracing/compilation; the median of the rest is the rate
        "train_samples_per_second": (prepared.train_samples_per_epoch / float(np.median(steady))
                                     if steady else None),
        "train_samples": prepared.train_samples_per_epoch,
        "parameters": task_metrics.get("parameters", primary.count_params()),
        "seed": config.seed,
        "distribution": placement.to_json(),
        # the detector trains outside op determinism (XLA); record what was in force
        "op_determinism": bool(config.deterministic and task.op_determinism
                               and keras.backend.backend() == "tensorflow"),
        "versions": versions(),
        "config": config.to_json(),
    }
    title = f"{config.model} · {config.dataset} · {config.loss}"
    metrics["files"] = sorted(set(task_metrics.get("files", [])) | set(
        fitter.save_probes(title)) | {"metrics.json"})
    metrics["probe_files"] = sorted(fitter.probe_files)
    if fitter.init_report is not None:
        metrics["init"] = fitter.init_report
    if fitter.freeze_report is not None:
        metrics["frozen_backbone"] = fitter.freeze_report
    folder.write_metrics(metrics)
    if config.test_dataset:
        from zoo.evaluate import evaluate_run

        scored = evaluate_run(folder.path, config.test_dataset)
        metrics["test_dataset"] = {
            "dataset": config.test_dataset,
            "folder": str(folder.file("evaluations") / task.dataset_slug(config.test_dataset)),
            "summary": task.summary(scored)}
        print(f"[losslab] {config.test_dataset}: {metrics['test_dataset']['summary']}")
        folder.write_metrics(metrics)
    return metrics


class Fitter:
    """Runs a task's fit stages with the standard callbacks and the run folder's stages.

    `fit_stage(stage, model, fit)` returns the trained model: loaded from `STAGE.keras` when
    a resumed run finished that stage before; else `fit(callbacks, epochs, initial_epoch)` is
    called (it must pass all three to `model.fit`), then the model is saved and the stage
    recorded. The first stage also gets `--init-from` (weights copied before training) and
    `--freeze-backbone N` (a stage `STAGE_head` of N epochs with the backbone frozen, then
    the rest of the epochs with everything trainable, in the same history).
    """

    def __init__(self, config, task, folder: RunFolder, prepared):
        self.config, self.task, self.folder, self.prepared = config, task, folder, prepared
        self.timer = EpochTimer()
        self.probes = None
        self.probe_files = []
        self.init_report = None
        self.freeze_report = None

    def _make_probes(self) -> dict:
        import callbacks as probes_module

        probes = {}
        if self.config.trace_weights is not None:
            probes["weight_trace"] = probes_module.WeightTrace(
                every_n_batches=self.config.trace_weights or None, seed=self.config.seed)
        if self.config.monitor_margins:
            x, y, source = self.task.probe_data(self.config, self.prepared)
            probes["margin_monitor"] = probes_module.MarginMonitor(
                probe=(x, y), probe_source=source, snapshots=True, seed=self.config.seed)
        return probes

    def callbacks(self, stage: str, backup: str | None = None, append: bool | None = None,
                  probes: bool = True):
        """The standard callbacks of one fit stage, in their required order.

        Args:
            stage: the stage whose history the fit writes.
            backup: the checkpoint folder's name. Defaults to `stage`.
            append: keep the history's earlier rows. Defaults to `config.resume`.
            probes: attach the probes (not while the backbone is frozen: WeightTrace follows
                one set of trainable variables). Defaults to True.
        """
        primary = stage == self.task.stages[0]
        found = []
        if primary and probes:
            if self.probes is None:
                self.probes = self._make_probes()
            found += list(self.probes.values())  # before the history, which records their keys
        found += [HistoryLogger(self.folder.history_path(stage, primary),
                                append=self.config.resume if append is None else append),
                  RunBackup(self.folder.backup_dir(backup or stage), delete_checkpoint=False)]
        if primary:
            found.append(self.timer)
        if self.config.tensorboard:
            found.append(keras.callbacks.TensorBoard(
                log_dir=str(self.folder.file("tensorboard") / stage)))
        if primary:
            found += list(self.config.callbacks)
        return found

    def fit_stage(self, stage: str, model, fit, epochs: int | None = None):
        """Train (or load) one stage; `epochs` defaults to the run's."""
        epochs = self.config.epochs if epochs is None else int(epochs)
        if self.folder.stage_done(stage):
            print(f"[losslab] {self.folder.path}: stage {stage!r} finished earlier; "
                  f"loading {self.folder.stage_model_path(stage).name}", flush=True)
            return self.folder.load_stage(stage)
        primary = stage == self.task.stages[0]
        if primary and self.config.init_from:
            from zoo.training.transfer import initialise_from

            self.init_report = initialise_from(model, self.config.init_from, stage)
            print(f"[losslab] initialised {len(self.init_report['copied'])} layers from "
                  f"{self.init_report['source']}; fresh: "
                  f"{', '.join(self.init_report['kept']) or 'none'}", flush=True)
        freeze = self.config.freeze_backbone if primary else None
        if freeze:
            self._fit_head_then_all(stage, model, fit, freeze, epochs)
        else:
            fit(self.callbacks(stage), epochs)
        self.folder.finish_stage(stage, model)
        return model

    def _fit_head_then_all(self, stage, model, fit, freeze, epochs):
        from zoo.training.transfer import head_layers, set_backbone_trainable

        head = head_layers(model, self.init_report)
        phase = f"{stage}_head"
        if self.folder.stage_done(phase):
            model.set_weights(self.folder.load_stage(phase).get_weights())
        else:
            print(f"[losslab] epochs 1-{freeze}: training the head ({', '.join(head)}) with "
                  f"the backbone frozen", flush=True)
            set_backbone_trainable(model, head, False)
            fit(self.callbacks(stage, backup=phase, probes=False), freeze)
            self.folder.finish_stage(phase, model)
        set_backbone_trainable(model, head, True)
        fit(self.callbacks(stage, append=True), epochs, freeze)
        self.freeze_report = {"epochs": freeze, "head": head}

    def save_probes(self, title: str) -> list:
        """Write the probes' data and plots into the run folder; returns the file names."""
        import callbacks as probes_module

        out = self.folder.path
        written = []
        probes = self.probes or {}
        if "weight_trace" in probes and \
                probes["weight_trace"].as_dict()["epoch_index"].size:
            trace = probes["weight_trace"]
            trace.save(out / "weight_trace.npz")
            probes_module.plot_weight_updates(trace, out / "weight_updates.png", title=title)
            probes_module.plot_update_heatmap(trace, out / "weight_update_heatmap.png",
                                              title=title)
            probes_module.plot_weight_trajectories(trace, out / "weight_trajectories.png",
                                                   title=title)
            written += ["weight_trace.npz", "weight_updates.png", "weight_update_heatmap.png",
                        "weight_trajectories.png"]
        if "margin_monitor" in probes and probes["margin_monitor"].epochs:
            monitor = probes["margin_monitor"]
            (out / "margins.json").write_text(json.dumps(
                {"epochs": monitor.epochs, "probe_source": monitor.probe_source,
                 **{k: [float(v) for v in vs] for k, vs in monitor.history.items()}}, indent=2))
            probes_module.plot_margin_metrics(monitor, out / "margins.png", title=title)
            probes_module.plot_embedding_snapshots(monitor, out / "embedding_snapshots.png",
                                                   title=title)
            written += ["margins.json", "margins.png", "embedding_snapshots.png"]
        self.probe_files = written
        return written
