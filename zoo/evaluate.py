"""Score a trained run or shipped weights on any data:
`python -m zoo.evaluate RUN_OR_WEIGHTS --dataset SPEC`.

    python -m zoo.evaluate runs/lenet5-fashion_mnist-softmax --dataset mnist
    python -m zoo.evaluate runs/crnn_small-synth_text-ctc --dataset folder:my_crops
    python -m zoo.evaluate runs/detector-voc-kangaroo-eiou --dataset voc:other_photos
    python -m zoo.evaluate crnn_small.synth_plates --dataset boxes:my_photos

The whole of SPEC is the test set (a folder is not split). The run's task scores it with the
same metrics, plots and gallery as a training run; they go to RUN/evaluations/SLUG/ (for
weights MODEL.TAG: runs/evaluations/MODEL.TAG/SLUG/; or `--out`), with a metrics.json that
names the run and the data. Shipped weights are scored as their card's recipe compiles them
(the task's loss and metrics). From Python: `evaluate_run(run_or_weights, dataset)` returns
the metrics dict. `zoo.train --test-dataset SPEC` calls it after training.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from zoo import quiet

quiet.silence_tensorflow()

import keras  # noqa: E402

from zoo.training.config import ConfigError, TrainConfig  # noqa: E402
from zoo.training.reproducibility import versions  # noqa: E402
from zoo.training.run_folder import RunFolder, atomic_write_json  # noqa: E402


def load_run(run_folder):
    """(config, task, stored metrics, {stage: model}) of a finished run folder."""
    from zoo.training.tasks import task_for_model

    folder = Path(run_folder)
    if not folder.exists():
        raise ConfigError(f"{folder}: neither a run folder nor shipped weights (see python -m "
                          f"zoo.weights list)")
    metrics_file = folder / "metrics.json"
    if not metrics_file.exists():
        raise ConfigError(f"{folder}: not a finished run (no metrics.json)")
    stored = json.loads(metrics_file.read_text())
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in stored["config"].items() if k in fields})
    task = task_for_model(config.model)
    models = {}
    for stage in task.stages:
        path = folder / f"{stage}.keras"
        models[stage] = keras.saving.load_model(path) if path.exists() else None
    if models[task.stages[0]] is None:
        raise ConfigError(f"{folder}: no {task.stages[0]}.keras to score")
    models["class_names"] = stored.get("class_names")
    return config, task, stored, models


def load_weights(name: str):
    """(config, task, card, {stage: model}) of shipped weights "MODEL.TAG": the model built
    with them and compiled as the card's recipe compiles it."""
    from zoo import weights
    from zoo.registry import create_model
    from zoo.training.tasks import task_for_model

    card = weights.card(name)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in card["recipe"].items() if k in fields})
    task = task_for_model(card["model"])
    model = create_model(card["model"], weights=name.split(".", 1)[1])
    task.compile_for_scoring(config, model)
    return config, task, card, {task.stages[0]: model, "class_names": None}


def is_weights_name(source) -> bool:
    """Whether `source` names shipped weights ("MODEL.TAG") rather than a folder."""
    from zoo import weights

    return not Path(source).exists() and str(source) in weights.list_weights()


def evaluate_run(run_folder, dataset: str, test_limit=None, out=None, options=None) -> dict:
    """Score the run in `run_folder`, or the shipped weights named by it ("MODEL.TAG"), on
    all of `dataset`; returns (and writes) the metrics. `options` override task options of
    the run's config for the scoring (e.g. {"read_polarity": "either"} for text models)."""
    if is_weights_name(run_folder):
        config, task, stored, models = load_weights(str(run_folder))
        default_out = Path("runs") / "evaluations" / str(run_folder)
        source = str(run_folder)
    else:
        config, task, stored, models = load_run(run_folder)
        default_out = Path(run_folder) / "evaluations"
        source = str(Path(run_folder).resolve())
    unknown = sorted(set(options or {}) - set(task.options))
    if unknown:
        raise ConfigError(f"option(s) {', '.join(unknown)} do not apply to {task.name} models")
    config = dataclasses.replace(config, test_limit=test_limit, resume=False,
                                 options={**(config.options or {}), **(options or {})})
    prepared = task.test_data(config, dataset, models)
    out = Path(out) if out else default_out / task.dataset_slug(dataset)
    out.mkdir(parents=True, exist_ok=True)
    task_metrics = task.evaluate(config, prepared, models, RunFolder(out))
    metrics = {"task": task.name, "run": source,
               "dataset": dataset, **task_metrics, "versions": versions(),
               "config": config.to_json()}
    metrics["files"] = sorted(p.name for p in out.iterdir() if p.name != "metrics.json") + [
        "metrics.json"]
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a finished run folder, or shipped weights MODEL.TAG "
                        "(python -m zoo.weights list)")
    parser.add_argument("--dataset", required=True, help="the data to score on (a dataset "
                        "form of the run's task; see python -m zoo.train --help)")
    parser.add_argument("--test-limit", type=int, default=None, help="score the first N only")
    parser.add_argument("--out", default=None, help="folder of the results "
                        "(default RUN/evaluations/DATASET)")
    parser.add_argument("--read-polarity", choices=("upright", "either"), default=None,
                        help="text models: also score every line read as given and inverted, "
                        "the likelier read kept (light-on-dark text)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    options = {"read_polarity": args.read_polarity} if args.read_polarity else None
    try:
        metrics = evaluate_run(args.run, args.dataset, args.test_limit, args.out, options)
    except (ConfigError, ValueError, OSError) as error:
        if args.debug:
            raise
        line = (str(error).strip() or type(error).__name__).splitlines()[0]
        print(f"error: {line} (--debug for the traceback)", file=sys.stderr)
        return 2
    from zoo.training.tasks import get_task

    print(f"{get_task(metrics['task']).summary(metrics)} on {args.dataset}")
    return 0


if __name__ == "__main__":
    quiet.filter_stderr()
    sys.exit(main())
