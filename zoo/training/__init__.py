"""Training: one runner for every model (`run(TrainConfig(...))`, `python -m zoo.train`).

- `config`: `TrainConfig` and `ConfigError`;
- `runner`: `run` — run folder, seeds, data, model, standard callbacks, fit, evaluation,
  metrics.json — the same for every model;
- `tasks`: what differs per task (classification, text, detection), chosen by the registry;
- `run_folder`, `callbacks`: atomic writes, stages, crash-safe history and backups;
- `optimizers`, `reproducibility`: Adam + cosine decay; seeds, op determinism, versions;
- `cli`: the command line.
"""

from zoo.training.config import ConfigError, TrainConfig
from zoo.training.runner import resolve, run

__all__ = ["ConfigError", "TrainConfig", "resolve", "run"]
