"""What a task tells the runner: its datasets, losses, options, and how it fits and scores.

The runner (`zoo.training.runner.run`) does the same steps for every model; a `Task` fills
in what differs. A task is chosen by the model registry's metadata
(`register_model(..., task=...)`), never by the model's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoo.training.config import ConfigError


@dataclass(frozen=True)
class Option:
    """A task-specific option: `--flag` on the command line, `options[name]` in Python."""

    default: Any
    help: str
    type: Any = None  # argparse type; None for a switch (store_true)
    choices: tuple | None = None


@dataclass
class Prepared:
    """What a task's `prepare` hands the runner: the data, the compiled model(s), facts."""

    data: Any
    model: Any
    train_samples_per_epoch: int
    info: dict = field(default_factory=dict)


class Task:
    """The per-task part of a training run. Subclasses set the attributes and methods.

    Attributes:
        name: the task's name in the registry ("classification", "text", "detection").
        default_dataset: used when `--dataset` is not given.
        dataset_forms: the `--dataset` forms, for `--help` and for error messages.
        default_loss: used when `--loss` is not given.
        default_batch_size: used when `--batch-size` is not given.
        options: task-specific options {name: Option}.
        refuses: generic TrainConfig fields this task cannot use {field: why}; setting one
            (to anything but its default) is a ConfigError that says why.
        stages: the names of the fit stages (model files `STAGE.keras`); the first is the
            one the probes watch and history.csv records.
        op_determinism: whether TensorFlow op determinism may be on while it trains.
    """

    name = ""
    default_dataset = ""
    dataset_forms: tuple = ()
    default_loss = ""
    default_batch_size = 128
    options: dict = {}
    refuses: dict = {}
    stages: tuple = ("model",)
    op_determinism = True

    # ------------------------------------------------------------------ configuration

    def losses(self) -> list:
        """The values `--loss` takes for this task."""
        raise NotImplementedError

    def dataset_kind(self, dataset: str) -> str:
        """The form `dataset` matches (one of `dataset_forms`), or raise ConfigError."""
        prefix, colon, rest = str(dataset).partition(":")
        for form in self.dataset_forms:
            if colon and form.startswith(prefix + ":"):
                if not rest.strip():
                    raise ConfigError(f"--dataset {dataset!r} names no path; expected {form}")
                return form
            if not colon and form == dataset:
                return form
        raise ConfigError(f"unknown {self.name} dataset {dataset!r}; known: "
                          f"{', '.join(self.dataset_forms)}")

    def option(self, config, name):
        return config.options.get(name, self.options[name].default)

    def check(self, config) -> None:
        """Raise ConfigError if `config` (defaults resolved) cannot run; no I/O."""
        unknown = sorted(set(config.options) - set(self.options))
        if unknown:
            raise ConfigError(f"option(s) {', '.join(unknown)} do not apply to {self.name} "
                              f"models; {self.name} options: {', '.join(self.options) or 'none'}")
        if config.loss not in self.losses():
            raise ConfigError(f"unknown loss {config.loss!r} for {self.name} model "
                              f"{config.model!r}; known: {', '.join(self.losses())}")
        self.dataset_kind(config.dataset)

    @staticmethod
    def dataset_slug(dataset: str) -> str:
        """A dataset spec as a folder name: a path reduced to its last name, no ':'."""
        kind, colon, where = str(dataset).partition(":")
        if not colon:
            return kind
        first = where.split(",", 1)[0].rstrip("/\\")
        stem = first.replace("\\", "/").rsplit("/", 1)[-1]
        stem = stem.rsplit(".", 1)[0] if "." in stem else stem
        return f"{kind}-{stem or 'data'}"

    def default_run_folder(self, config) -> str:
        """runs/MODEL-DATASET-LOSS, with a path in the dataset reduced to its last name."""
        return f"runs/{config.model}-{self.dataset_slug(config.dataset)}-{config.loss}"

    # ------------------------------------------------------------------ the run

    def prepare(self, config) -> Prepared:
        """Load the data and build + compile the model of the first stage."""
        raise NotImplementedError

    def fit(self, config, prepared: Prepared, fitter) -> dict:
        """Train every stage through `fitter.fit_stage(...)`; returns {stage: model}."""
        raise NotImplementedError

    def probe_data(self, config, prepared: Prepared):
        """(x, y, source) for MarginMonitor; None when the task has no class embedding."""
        return None

    def evaluate(self, config, prepared: Prepared, models: dict, folder) -> dict:
        """Score the trained model(s) on the test split, write the task's plots and exports
        into `folder`; returns the task's metrics (merged into metrics.json)."""
        raise NotImplementedError

    def compile_for_scoring(self, config, model):
        """Compile a model built from shipped weights (`zoo.evaluate MODEL.TAG`) with the
        task's loss and metrics, as `prepare` would; `config` is the weights' recipe."""
        raise ConfigError(f"scoring shipped weights of {self.name} models is not supported; "
                          f"score a run folder instead")

    def test_data(self, config, spec: str, models: dict) -> Prepared:
        """A `Prepared` whose data holds `spec` as the test split (the whole of it), for
        scoring trained `models` on data of the user's (`python -m zoo.evaluate`)."""
        raise NotImplementedError

    def summary(self, metrics: dict) -> str:
        """One line with the headline result, for the command line."""
        raise NotImplementedError
