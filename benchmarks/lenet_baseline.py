"""LeNet-5 + softmax cross-entropy on MNIST and Fashion-MNIST: the baseline of LossLab.

    python benchmarks/lenet_baseline.py [--seeds 0 1 2] [--epochs 15] [--overhead-reps 3]

Measures, with one recipe for both datasets (the `RECIPE` below):
1. test accuracy, mean ± std over seeds, and training samples/s;
2. the overhead of `zoo.train.run` against a bare `model.fit` on the same model, data and
   batch size, in the same process, alternating the two `--overhead-reps` times; the ratio
   of median throughputs (target ≥ 0.95: the entry point costs nothing).
Writes `results/lenet_baseline.json`, `results/lenet_baseline.md` and
`results/lenet_baseline.png`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, environment, mean_std, write_json, write_text  # noqa: E402
from zoo import datasets, train  # noqa: E402
from zoo.training import reproducibility  # noqa: E402
from zoo.training.run_folder import read_history  # noqa: E402
from zoo.training.tasks import classification  # noqa: E402

RECIPE = dict(model="lenet5", loss="softmax", batch_size=64, learning_rate=2e-3,
              validation_split=0.1)
DATASETS = ("mnist", "fashion_mnist")


def accuracy_runs(dataset, seeds, epochs, workdir, train_limit=None):
    runs = []
    for seed in seeds:
        config = train.TrainConfig(dataset=dataset, seed=seed, epochs=epochs, verbose=2,
                                   out=str(workdir / f"{dataset}-{seed}"),
                                   train_limit=train_limit, **RECIPE)
        print(f"--- {dataset} seed {seed}", flush=True)
        metrics = train.run(config)
        history = read_history(Path(config.out) / "history.csv")
        runs.append({"seed": seed, "test_accuracy": metrics["test_accuracy"],
                     "train_samples_per_second": metrics["train_samples_per_second"],
                     "wall_seconds": metrics["wall_seconds"],
                     "val_accuracy": history.get("val_accuracy", [])})
    return runs


def fit_seconds_bare(dataset, epochs, seed, train_limit=None):
    """Bare `model.fit` on exactly what `zoo.train.run` would feed it; returns fit seconds."""
    config = train.TrainConfig(dataset=dataset, seed=seed, epochs=epochs, **RECIPE)
    reproducibility.seed_everything(seed)
    common = dict(validation_split=config.validation_split, seed=seed)
    x, y = datasets.load(dataset, "train", limit=train_limit, **common)
    x_val, y_val = datasets.load(dataset, "validation", **common)
    model = classification.build_model(config, 10, x.shape[1:])
    classification.compile_model(model, config, 10, int(np.ceil(len(y) / config.batch_size)))
    with reproducibility.deterministic_ops(config.deterministic):  # as zoo.train runs it
        started = time.perf_counter()
        model.fit(x, y, batch_size=config.batch_size, epochs=epochs,
                  validation_data=(x_val, y_val), verbose=0, shuffle=True)
        return time.perf_counter() - started, len(y)


def overhead_runs(dataset, reps, epochs, workdir, train_limit=None):
    bare, entry = [], []
    for rep in range(reps):
        seconds, n = fit_seconds_bare(dataset, epochs, seed=rep, train_limit=train_limit)
        bare.append(n * epochs / seconds)
        config = train.TrainConfig(dataset=dataset, seed=rep, epochs=epochs, verbose=0,
                                   out=str(workdir / f"overhead-{dataset}-{rep}"),
                                   train_limit=train_limit, **RECIPE)
        metrics = train.run(config)
        entry.append(metrics["train_samples"] * epochs / metrics["wall_seconds"])
        print(f"overhead {dataset} rep {rep}: bare {bare[-1]:.0f}/s, zoo.train {entry[-1]:.0f}/s",
              flush=True)
    return {"bare_fit_samples_per_second": bare, "zoo_train_samples_per_second": entry,
            "ratio_of_medians": float(np.median(entry) / np.median(bare)),
            "epochs_per_rep": epochs}


def plot(results, path):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, dataset in zip(axes, DATASETS):
        for run in results[dataset]["runs"]:
            epochs = np.arange(1, len(run["val_accuracy"]) + 1)
            ax.plot(epochs, run["val_accuracy"], marker=".", label=f"seed {run['seed']}")
        acc = results[dataset]["test_accuracy"]
        ax.set(title=f"{dataset}: test {100 * acc['mean']:.2f} ± {100 * acc['std']:.2f} %",
               xlabel="epoch", ylabel="validation accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("LeNet-5, softmax cross-entropy (benchmarks/lenet_baseline.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(results):
    lines = ["| dataset | test accuracy (mean ± std) | seeds | train samples/s (median) | "
             "zoo.train / bare fit throughput |", "|---|---|---|---|---|"]
    for dataset in DATASETS:
        r = results[dataset]
        acc = r["test_accuracy"]
        rate = np.median([run["train_samples_per_second"] for run in r["runs"]])
        lines.append(f"| {dataset} | {100 * acc['mean']:.2f} ± {100 * acc['std']:.2f} % | "
                     f"{acc['n']} | {rate:.0f} | {r['overhead']['ratio_of_medians']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--overhead-reps", type=int, default=3)
    parser.add_argument("--overhead-epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=None, help="smoke runs only")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--only-overhead", action="store_true",
                        help="re-measure the overhead part only, keeping the stored accuracy runs")
    args = parser.parse_args(argv)

    results = {"recipe": {**RECIPE, "epochs": args.epochs, "optimizer": "Adam, cosine decay"},
               "environment": environment(), "seeds": args.seeds}
    if args.only_overhead:
        stored = json.loads((args.results_dir / "lenet_baseline.json").read_text())
        results = {**stored, "overhead_environment": environment()}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for dataset in DATASETS:
            if not args.only_overhead:
                runs = accuracy_runs(dataset, args.seeds, args.epochs, workdir, args.train_limit)
                results[dataset] = {"runs": runs,
                                    "test_accuracy": mean_std([r["test_accuracy"] for r in runs])}
            results[dataset]["overhead"] = overhead_runs(
                dataset, args.overhead_reps, args.overhead_epochs, workdir, args.train_limit)
    write_json("lenet_baseline", results, args.results_dir)
    write_text("lenet_baseline.md", markdown(results), args.results_dir)
    plot(results, args.results_dir / "lenet_baseline.png")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
