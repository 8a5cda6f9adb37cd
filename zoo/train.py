"""Training entry point: one model, one dataset, one loss -> a run folder.

    python -m zoo.train --model lenet5 --dataset fashion_mnist --loss softmax \
        --epochs 10 --batch-size 128 --seed 0 --out runs/NAME [--resume]

From Python (notebooks): `zoo.train.run(TrainConfig(...))` returns the metrics dict.

The run folder receives `model.keras`, `history.csv`, `metrics.json` (test accuracy,
per-class accuracy, confusion matrix, wall time, samples/s, versions, seed, config),
`curves.png` and `confusion_matrix.png`. While training, `backup/` holds the last
completed epoch (Keras `BackupAndRestore`); `--resume` continues from it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

import losses
from zoo import datasets, plots
from zoo.datasets.samplers import PKBatches
from zoo.registry import create_model, list_models, model_accepts


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in `metrics.json`."""

    model: str = "lenet5"
    dataset: str = "fashion_mnist"
    loss: str = "softmax"
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    out: str = "runs/default"
    resume: bool = False
    validation_split: float = 0.1
    train_limit: int | None = None
    test_limit: int | None = None
    embedding_dim: int = 2
    data_dir: str | None = None
    verbose: int | str = "auto"
    deterministic: bool = True
    trace_weights: int | None = None  # None: off; 0: once per epoch; N: every N batches
    monitor_margins: bool = False
    box_loss: str = "eiou"  # detector only
    one_step: bool = False  # detector only: class-aware head, no crop classifier
    # Python-only: extra callbacks appended after the built-in ones (not serialised).
    callbacks: list = field(default_factory=list, repr=False)

    def to_json(self):
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "callbacks"}


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


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend."""
    keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def deterministic_ops(enabled: bool = True):
    """Make TensorFlow ops deterministic inside the block, and restore the previous state.

    Scoped on purpose: while op determinism is on, Keras silently turns `jit_compile` off for
    every model (not all ops have deterministic XLA kernels), so leaving it on after a run
    would change how a notebook's later models compile.
    """
    if not enabled or keras.backend.backend() != "tensorflow":
        yield
        return
    from tensorflow.python.framework import config as tf_config  # the only switch back off

    was_enabled = tf_config.is_op_determinism_enabled()
    tf_config.enable_op_determinism()
    try:
        yield
    finally:
        if not was_enabled:
            tf_config.disable_op_determinism()


def versions() -> dict:
    found = {"python": platform.python_version(), "keras": keras.__version__,
             "backend": keras.backend.backend(), "numpy": np.__version__,
             "machine": f"{platform.machine()} {platform.system()}"}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        found["tensorflow"] = tf.__version__
    return found


def build_model(config: TrainConfig, num_classes: int, input_shape) -> keras.Model:
    """The registered model with the head that the loss recipe asks for."""
    recipe = losses.get_recipe(config.loss)
    kwargs = {"num_classes": num_classes, "input_shape": input_shape}
    if model_accepts(config.model, "head"):
        kwargs.update(head=recipe.head, head_kwargs=recipe.head_kwargs,
                      embedding_dim=config.embedding_dim)
    elif recipe.head != "softmax":
        raise ValueError(
            f"loss {config.loss!r} needs a {recipe.head!r} head but model {config.model!r} "
            "has a fixed dense output; use a model with a pluggable head such as lenet_embed"
        )
    return create_model(config.model, **kwargs)


def compile_model(model: keras.Model, config: TrainConfig, num_classes: int, steps: int):
    recipe = losses.get_recipe(config.loss)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=max(1, config.epochs * steps))
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=recipe.build_loss(num_classes),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    pairs = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    return np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


def make_probes(config: TrainConfig, probe_split) -> dict:
    """The callbacks asked for by `--trace-weights` / `--monitor-margins`."""
    import callbacks as probes_module

    probes = {}
    if config.trace_weights is not None:
        probes["weight_trace"] = probes_module.WeightTrace(
            every_n_batches=config.trace_weights or None, seed=config.seed)
    if config.monitor_margins:
        source = "validation" if config.validation_split > 0 else "train"
        probes["margin_monitor"] = probes_module.MarginMonitor(
            probe=(probe_split.x, probe_split.y), probe_source=source, snapshots=True,
            seed=config.seed)
    return probes


def save_probes(probes: dict, out: Path, title: str) -> list:
    """Write the probes' data and plots into the run folder; return the file names."""
    import callbacks as probes_module

    written = []
    if "weight_trace" in probes:
        trace = probes["weight_trace"]
        trace.save(out / "weight_trace.npz")
        probes_module.plot_weight_updates(trace, out / "weight_updates.png", title=title)
        probes_module.plot_update_heatmap(trace, out / "weight_update_heatmap.png", title=title)
        probes_module.plot_weight_trajectories(trace, out / "weight_trajectories.png",
                                               title=title)
        written += ["weight_trace.npz", "weight_updates.png", "weight_update_heatmap.png",
                    "weight_trajectories.png"]
    if "margin_monitor" in probes:
        monitor = probes["margin_monitor"]
        (out / "margins.json").write_text(json.dumps(
            {"epochs": monitor.epochs, "probe_source": monitor.probe_source,
             **{k: [float(v) for v in vs] for k, vs in monitor.history.items()}}, indent=2))
        probes_module.plot_margin_metrics(monitor, out / "margins.png", title=title)
        probes_module.plot_embedding_snapshots(monitor, out / "embedding_snapshots.png",
                                               title=title)
        written += ["margins.json", "margins.png", "embedding_snapshots.png"]
    return written


def _prepare_run_folder(out: Path, resume: bool) -> bool:
    """Create `out`; without `resume`, clear what an earlier run left. True if complete."""
    out.mkdir(parents=True, exist_ok=True)
    if resume:
        return (out / "metrics.json").exists() and not (out / "backup").exists()
    for stale in ("backup", "history.csv", "metrics.json"):
        path = out / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return False


def read_history(path: Path) -> dict:
    import csv

    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows] for key in rows[0] if key != "epoch"}


def run(config: TrainConfig) -> dict:
    """Train, evaluate and write the run folder; return the metrics dict."""
    if config.model == "detector":  # its own task: boxes, two steps (zoo/detector/train.py)
        from zoo.detector.train import run as run_detector

        return run_detector(config)
    from zoo import text_train  # imported here: it imports this module

    if text_train.is_text_model(config.model):  # text lines, CTC (zoo/text_train.py)
        return text_train.run(config)
    with deterministic_ops(config.deterministic):
        return _run(config)


def _run(config: TrainConfig) -> dict:
    out = Path(config.out)
    if _prepare_run_folder(out, config.resume):
        print(f"[losslab] {out} holds a completed run; nothing to resume.")
        return json.loads((out / "metrics.json").read_text())
    losses.get_recipe(config.loss)  # fail on an unknown loss before loading any data
    seed_everything(config.seed)

    common = dict(validation_split=config.validation_split, seed=config.seed,
                  data_dir=config.data_dir)
    train = datasets.load(config.dataset, "train", limit=config.train_limit, **common)
    validation = (datasets.load(config.dataset, "validation", **common)
                  if config.validation_split > 0 else None)
    test = datasets.load(config.dataset, "test", limit=config.test_limit, **common)
    num_classes = len(train.class_names)
    recipe = losses.get_recipe(config.loss)
    if recipe.balanced_batches:  # in-batch mining needs several samples of each class
        classes_per_batch = min(num_classes, 8)
        fit_data = PKBatches(train.x, train.y, classes_per_batch=classes_per_batch,
                             samples_per_class=max(2, config.batch_size // classes_per_batch),
                             seed=config.seed)
        fit_kwargs = {}
        steps = len(fit_data)
        samples_per_epoch = steps * fit_data.p * fit_data.k
    else:
        fit_data = train.x
        fit_kwargs = dict(y=train.y, batch_size=config.batch_size, shuffle=True)
        steps = int(np.ceil(len(train) / config.batch_size))
        samples_per_epoch = len(train)

    model = build_model(config, num_classes, train.x.shape[1:])
    compile_model(model, config, num_classes, steps)
    timer = EpochTimer()
    probes = make_probes(config, validation or train)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        *probes.values(),  # before CSVLogger, so that it records their keys
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=config.resume),
        timer,
        *config.callbacks,
    ]
    started = time.perf_counter()
    model.fit(fit_data, epochs=config.epochs,
              validation_data=(validation.x, validation.y) if validation else None,
              callbacks=callbacks, verbose=config.verbose, **fit_kwargs)
    wall_seconds = time.perf_counter() - started

    test_loss, test_accuracy = model.evaluate(test.x, test.y, batch_size=512, verbose=0)
    predictions = np.argmax(model.predict(test.x, batch_size=512, verbose=0), axis=-1)
    matrix = confusion_matrix(test.y, predictions, num_classes)
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    # The first timed epoch includes tracing/compilation; the median of the rest is the rate.
    steady = timer.epoch_seconds[1:] or timer.epoch_seconds
    metrics = {
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "per_class_accuracy": {name: float(a) for name, a in zip(train.class_names, per_class)},
        "confusion_matrix": matrix.tolist(),
        "class_names": list(train.class_names),
        "epochs_this_session": len(timer.epoch_seconds),
        "wall_seconds": wall_seconds,
        "train_samples_per_second": samples_per_epoch / float(np.median(steady)),
        "train_samples": samples_per_epoch,
        "parameters": model.count_params(),
        "seed": config.seed,
        "versions": versions(),
        "config": config.to_json(),
    }
    model.save(out / "model.keras")
    title = f"{config.model} · {config.dataset} · {config.loss}"
    metrics["probe_files"] = save_probes(probes, out, title)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plots.plot_history(read_history(out / "history.csv"), out / "curves.png", title)
    plots.plot_confusion_matrix(matrix, train.class_names, out / "confusion_matrix.png",
                                f"{title} · test accuracy {test_accuracy:.4f}")
    return metrics


def parse_args(argv=None) -> TrainConfig:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m zoo.train", description="Train a zoo model with a LossLab loss.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default=defaults.model, help=f"one of {list_models()}")
    parser.add_argument("--dataset", default=defaults.dataset,
                        help=f"one of {datasets.list_datasets()}; text models (crnn, "
                        "crnn_small): synth_text, folder:PATH or folder:PATH,labels.csv")
    parser.add_argument("--loss", default=None,
                        help=f"one of {losses.list_recipes()} (default {defaults.loss}); "
                        "text models: ctc (their default)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                        help="Adam's initial rate (cosine decay to 0 over the run)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", default=None, help="run folder (default runs/MODEL-DATASET-LOSS)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run in --out from its last epoch")
    parser.add_argument("--validation-split", type=float, default=defaults.validation_split)
    parser.add_argument("--train-limit", type=int, default=None,
                        help="use the first N samples (synth_text: lines per epoch)")
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--embedding-dim", type=int, default=defaults.embedding_dim,
                        help="embedding size, for models with a pluggable head")
    parser.add_argument("--data-dir", default=None, help="folder tried first for the data")
    parser.add_argument("--trace-weights", type=int, nargs="?", const=0, default=None,
                        metavar="N", help="trace weight updates (every N batches; "
                        "without N once per epoch) and plot them into the run folder")
    parser.add_argument("--box-loss", default=defaults.box_loss,
                        help="detector: eiou|ciou|giou|diou|iou|siou|smoothl1|focal-eiou")
    parser.add_argument("--one-step", action="store_true",
                        help="detector: class-aware one-step head instead of two steps")
    parser.add_argument("--monitor-margins", action="store_true",
                        help="record class separation and angular margins of the embedding "
                        "on the validation split, with plots and embedding snapshots")
    args = vars(parser.parse_args(argv))
    if args["loss"] is None:
        from zoo import text_train  # imported here: it imports this module

        args["loss"] = "ctc" if text_train.is_text_model(args["model"]) else defaults.loss
    args["out"] = args["out"] or f"runs/{args['model']}-{args['dataset']}-{args['loss']}"
    return TrainConfig(**args)


DETECTION_DATASETS = ("synth_scenes", "voc:PATH", "coco:ANNOTATIONS.json[,IMAGES_DIR]")


def main(argv=None) -> int:
    config = parse_args(argv)
    detector = config.model == "detector"
    from zoo import text_train  # imported here: it imports this module

    text = text_train.is_text_model(config.model)
    checks = [(config.model, list_models(), "model")]
    if text:
        problem = text_train.config_error(config)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        config.out = text_train.default_run_folder(config)  # no folder: path in the name
    elif detector:
        from zoo.detector.targets import BOX_LOSSES
        from zoo.detector.train import dataset_kind, default_run_folder

        config.out = default_run_folder(config)  # keep a voc:/coco: path out of the folder name
        checks += [(dataset_kind(config.dataset), list(DETECTION_DATASETS), "detection dataset"),
                   (config.box_loss, list(BOX_LOSSES), "box loss")]
    else:
        checks += [(config.loss, losses.list_recipes(), "loss"),
                   (config.dataset, datasets.list_datasets(), "dataset")]
    for value, known, what in checks:
        if value not in known:
            print(f"error: unknown {what} {value!r}; known: {', '.join(known)}", file=sys.stderr)
            return 2
    metrics = run(config)
    if text:
        score = (f"test CER {metrics['test_cer']:.4f}, sequence accuracy "
                 f"{metrics['test_sequence_accuracy']:.4f} (greedy)")
    else:
        score = (f"AP@.5 {metrics['map_50']:.4f}" if detector
                 else f"test accuracy {metrics['test_accuracy']:.4f}")
    print(f"\n{score}; results in {Path(config.out).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
