"""The shipped LeNet-5 recipe over seeds: is 99.3 % / 91.5 % a property of the recipe or of
one lucky seed?

    python benchmarks/lenet_recipe.py [--seeds 0 1 2]

Trains `zoo.weights.recipes.RECIPES["lenet5.mnist"]` and `["lenet5.fashion_mnist"]` (LeNet-5
unchanged, 30 epochs, Adam 2e-3 with cosine decay, batch 64, random 2-px shifts, 10 %
validation) once per seed through the runner; seed 0 is the run that made the shipped
weights (its run folder under runs/weights/ is reused when present). Test accuracy on the
10,000 test images, mean ± σ. Writes `results/lenet_recipe.json`, `.md` and `.png`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zoo import quiet  # noqa: E402

quiet.silence_tensorflow()

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.common import RESULTS, environment, mean_std, write_json, write_text  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"mnist": 0.993, "fashion_mnist": 0.915}


def main(argv=None):
    from zoo.training import TrainConfig, run
    from zoo.weights.recipes import RECIPES

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="smoke runs only")
    parser.add_argument("--train-limit", type=int, default=None, help="smoke runs only")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "lenet_recipe")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = {"environment": environment(), "seeds": args.seeds, "datasets": {}}
    for dataset, target in TARGETS.items():
        recipe = dict(RECIPES[f"lenet5.{dataset}"]["config"])
        if args.epochs:
            recipe["epochs"] = args.epochs
        runs = []
        for seed in args.seeds:
            shipped = REPO / "runs" / "weights" / f"lenet5.{dataset}"
            out = (shipped if seed == recipe["seed"] and not (args.epochs or args.train_limit)
                   and (shipped / "metrics.json").exists()
                   else args.work / f"{dataset}-seed{seed}")
            if not (out / "metrics.json").exists():
                run(TrainConfig(**{**recipe, "seed": seed, "out": str(out), "resume": True,
                                   "verbose": 0, "train_limit": args.train_limit}))
            metrics = json.loads((out / "metrics.json").read_text())
            runs.append({"seed": seed, "test_accuracy": metrics["test_accuracy"],
                         "wall_seconds": metrics["wall_seconds"]})
            print(f"[lenet_recipe] {dataset} seed {seed}: {metrics['test_accuracy']:.4f}",
                  flush=True)
        stats = mean_std([r["test_accuracy"] for r in runs])
        results["datasets"][dataset] = {"recipe": recipe, "runs": runs, "test_accuracy": stats,
                                        "target": target,
                                        "mean_meets_target": bool(stats["mean"] >= target),
                                        "seeds_meeting_target": sum(
                                            r["test_accuracy"] >= target for r in runs)}
    write_json("lenet_recipe", results, args.results_dir)
    lines = ["# LeNet-5, the shipped weights' recipe over seeds", "",
             "| dataset | test accuracy (mean ± σ) | per seed | target | seeds meeting it |",
             "|---|---|---|---|---|"]
    for dataset, row in results["datasets"].items():
        s = row["test_accuracy"]
        per_seed = ", ".join(f"{100 * r['test_accuracy']:.2f}" for r in row["runs"])
        lines.append(f"| {dataset} | {100 * s['mean']:.2f} ± {100 * s['std']:.2f} % | "
                     f"{per_seed} | ≥ {100 * row['target']:.1f} % | "
                     f"{row['seeds_meeting_target']} of {len(row['runs'])} |")
    write_text("lenet_recipe.md", "\n".join(lines) + "\n", args.results_dir)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, (dataset, row) in zip(axes, results["datasets"].items()):
        values = [r["test_accuracy"] for r in row["runs"]]
        ax.plot(range(len(values)), values, "o", ms=8)
        ax.axhline(row["test_accuracy"]["mean"], color="tab:blue", lw=1, label="mean")
        ax.axhline(row["target"], color="tab:red", ls="--", lw=1, label="target")
        ax.set_xticks(range(len(values)), [f"seed {r['seed']}" for r in row["runs"]])
        ax.set(title=f"LeNet-5 on {dataset}", ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.results_dir / "lenet_recipe.png", dpi=110)
    plt.close(fig)
    print("\n".join(lines))


if __name__ == "__main__":
    quiet.filter_stderr()
    main()
