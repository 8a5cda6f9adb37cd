"""Shared plumbing for benchmark scripts: environment record, result files, summary stats."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict:
    """Machine, versions and date, stored with every result file."""
    from zoo.training.reproducibility import versions

    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        **versions(),
    }


def mean_std(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "n": int(len(values)), "values": values.tolist()}


def write_json(name: str, payload: dict, results_dir: Path = RESULTS) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def write_text(name: str, text: str, results_dir: Path = RESULTS) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / name
    path.write_text(text)
    return path


def write_results(name: str, results: dict, markdown, plot, results_dir: Path = RESULTS):
    """results/NAME.json, NAME.md (`markdown(results)`, also printed) and NAME.png
    (`plot(results, path)`): the three files a benchmark commits."""
    write_json(name, results, results_dir)
    text = markdown(results)
    write_text(f"{name}.md", text, results_dir)
    plot(results, results_dir / f"{name}.png")
    print(text)


def format_mean_std(stat: dict, digits: int = 3) -> str:
    """"mean ± std" of a `mean_std` dict; "value (1 run)" when it holds one value, whose
    spread is unknown rather than 0."""
    if stat.get("n") == 1:
        return f"{stat['mean']:.{digits}f} (1 run)"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def difference(a: dict, b: dict) -> tuple:
    """mean(a) - mean(b) and its standard error √(s_a²/n_a + s_b²/n_b), for two `mean_std`
    dicts over independent seeds."""
    se = np.sqrt(a["std"] ** 2 / max(a["n"], 1) + b["std"] ** 2 / max(b["n"], 1))
    return a["mean"] - b["mean"], float(se)


def interleaved_step_times(models: dict, reps: int, steps: int, warmup: int = 3) -> dict:
    """Seconds per training step of each model on its own fixed batch, {name: [per round]}.

    `models` maps a name to (compiled model, batch). Each model first takes `warmup` steps
    (tracing). Then, in every round, each model takes `steps` steps in turn, the order
    rotating from round to round, so that a slow spell of a shared machine falls on all of
    them; compare medians, as ratios.
    """
    import time

    for model, batch in models.values():
        for _ in range(warmup):
            model.train_on_batch(*batch)
    names = list(models)
    seconds = {name: [] for name in names}
    for round_ in range(reps):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            model, batch = models[name]
            started = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(*batch)
            seconds[name].append((time.perf_counter() - started) / steps)
    return seconds
