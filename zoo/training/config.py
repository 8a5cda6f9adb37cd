"""`TrainConfig`: everything that defines a training run, checked before anything runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


MIXED_PRECISION = ("mixed_float16", "mixed_bfloat16")


class ConfigError(ValueError):
    """A run that cannot be made as configured; its message is one line that says why."""


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in `metrics.json`.

    `None` means "the task's default": the dataset and loss of the model's task
    (`zoo.training.tasks`), the run folder `runs/MODEL-DATASET-LOSS`. Options that only one
    task understands (the detector's `one_step`, the text task's `beam_width`, ...) go in
    `options`; the task refuses the ones it does not know.
    """

    model: str = "lenet5"
    dataset: str | None = None
    loss: str | None = None
    epochs: int = 10
    batch_size: int | None = None  # None: the task's (Task.default_batch_size)
    learning_rate: float = 1e-3
    seed: int = 0
    out: str | None = None
    resume: bool = False
    validation_split: float | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    embedding_dim: int | None = None
    data_dir: str | None = None
    verbose: int | str = "auto"
    deterministic: bool = True
    trace_weights: int | None = None  # None: off; 0: once per epoch; N: every N batches
    monitor_margins: bool = False
    tensorboard: bool = False
    init_from: str | None = None  # a run folder or a .keras file (zoo.training.transfer)
    freeze_backbone: int | None = None  # epochs that train the head alone first
    test_dataset: str | None = None  # also score the trained model on all of this data
    mixed_precision: str | None = None  # a Keras dtype policy of MIXED_PRECISION, or None
    distribute: str | None = None  # data-parallel engine (zoo.training.distribution), or None
    options: dict = field(default_factory=dict)
    # Python-only: extra callbacks appended after the built-in ones (not serialised).
    callbacks: list = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "callbacks"}

    def validate(self) -> "TrainConfig":
        """Raise ConfigError for values no task can use; returns self."""
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ConfigError(f"epochs must be a whole number >= 1, got {self.epochs!r}")
        for name in ("batch_size", "train_limit", "test_limit", "embedding_dim"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ConfigError(f"{name} must be a whole number >= 1 (or unset), "
                                  f"got {value!r}")
        if self.validation_split is not None and not 0.0 <= self.validation_split < 1.0:
            raise ConfigError(f"validation_split must be in [0, 1), got "
                              f"{self.validation_split!r}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.trace_weights is not None and self.trace_weights < 0:
            raise ConfigError(f"trace_weights must be >= 0 (0: once per epoch), got "
                              f"{self.trace_weights!r}")
        if self.freeze_backbone is not None and not (
                isinstance(self.freeze_backbone, int) and 1 <= self.freeze_backbone < self.epochs):
            raise ConfigError(f"freeze_backbone must be a whole number of epochs in [1, epochs) "
                              f"= [1, {self.epochs}), got {self.freeze_backbone!r}")
        if self.mixed_precision not in (None, *MIXED_PRECISION):
            raise ConfigError(f"mixed_precision must be one of {', '.join(MIXED_PRECISION)} "
                              f"(or unset for float32), got {self.mixed_precision!r}")
        from zoo.training.distribution import check as check_distribute

        check_distribute(self.distribute)
        if not isinstance(self.options, dict):
            raise ConfigError(f"options must be a dict, got {type(self.options).__name__}")
        return self
