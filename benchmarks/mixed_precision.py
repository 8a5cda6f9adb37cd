"""Mixed precision against float32: LeNet with each margin loss, same data, seeds and budget.

    python benchmarks/mixed_precision.py [--dataset fashion_mnist] [--seeds 0 1 2]
        [--epochs 6] [--train-limit 20000] [--policies mixed_bfloat16 [mixed_float16]]

For each margin-loss recipe (CosFace, ArcFace, SphereFace, L-Softmax on `lenet_embed`'s
heads) and each dtype policy, `zoo.train --mixed-precision POLICY` trains the same model as
the float32 run (same seed, data, schedule), then the test accuracy is compared: the gain
of each policy over float32 in points (mean over seeds, with its standard error) and whether
it is within 0.3 points. Each run is a folder under `--work` (default
`runs/mixed_precision`), so an interrupted benchmark resumes. Writes
`results/mixed_precision.json`, `.md` and `.png`. Wall-clock times are recorded too.

The default policy is mixed_bfloat16 only: on a CPU without float16 kernels mixed_float16 is
emulated (on the 2-core machine of the committed results, 4 s per batch of 64 against about
0.01 s in float32 or bfloat16), so `--policies mixed_float16` is for GPU machines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import (RESULTS, difference, environment, mean_std,  # noqa: E402
                               write_json, write_text)
from zoo import train  # noqa: E402

LOSSES = ("cosface", "arcface", "sphereface", "lsoftmax")
POLICIES = ("mixed_bfloat16", "mixed_float16")
RECIPE = dict(model="lenet_embed", batch_size=64, learning_rate=2e-3, validation_split=0.0,
              embedding_dim=32)  # 32-D as in loss_comparison: 2-D margins vary too much by seed
TOLERANCE = 0.3  # points of test accuracy
REPO = Path(__file__).resolve().parents[1]


def one_run(loss, policy, seed, args):
    """The run folder's metrics: trained now, or read back when it finished earlier."""
    out = args.work / f"{args.dataset}-{loss}-{policy}-{seed}"
    config = train.TrainConfig(dataset=args.dataset, loss=loss, seed=seed, epochs=args.epochs,
                               train_limit=args.train_limit, test_limit=args.test_limit,
                               out=str(out), verbose=2,
                               resume=True, mixed_precision=None if policy == "float32"
                               else policy, **RECIPE)
    metrics = train.run(config)
    return {"seed": seed, "test_accuracy": metrics["test_accuracy"],
            "wall_seconds": metrics["wall_seconds"]}


def summarise(runs, losses, policies):
    table = {}
    for loss in losses:
        reference = mean_std([r["test_accuracy"] for r in runs[loss]["float32"]])
        table[loss] = {}
        for policy in ["float32", *policies]:
            accuracy = mean_std([r["test_accuracy"] for r in runs[loss][policy]])
            row = {"test_accuracy": accuracy,
                   "wall_seconds": float(np.median([r["wall_seconds"]
                                                    for r in runs[loss][policy]])),
                   "runs": runs[loss][policy]}
            if policy != "float32":
                gain, error = difference(accuracy, reference)
                row["gain_points"] = 100 * gain
                row["standard_error_points"] = 100 * error
                row["within_tolerance"] = bool(abs(100 * gain) <= TOLERANCE)
            table[loss][policy] = row
    return table


def markdown(results):
    policies = results["policies"]
    lines = [f"LeNet (`lenet_embed`, {results['recipe']['embedding_dim']}-D embedding) on "
             f"{results['dataset']} ({results['recipe']['train_limit']} training images), "
             f"{results['recipe']['epochs']} epochs, {len(results['seeds'])} seeds; test accuracy %, and each policy's "
             f"difference from float32 in points (± standard error); target: within "
             f"{TOLERANCE} points.", "",
             "| loss | float32 | " + " | ".join(f"{p} | {p} − float32" for p in policies)
             + " |", "|---|---|" + "---|---|" * len(policies)]
    for loss, rows in results["table"].items():
        cells = [f"{100 * rows['float32']['test_accuracy']['mean']:.2f} ± "
                 f"{100 * rows['float32']['test_accuracy']['std']:.2f}"]
        for policy in policies:
            row = rows[policy]
            cells += [f"{100 * row['test_accuracy']['mean']:.2f} ± "
                      f"{100 * row['test_accuracy']['std']:.2f}",
                      f"{row['gain_points']:+.2f} ± {row['standard_error_points']:.2f}"
                      + ("" if row["within_tolerance"] else " (outside)")]
        lines.append(f"| {loss} | " + " | ".join(cells) + " |")
    within = sum(rows[p]["within_tolerance"] for rows in results["table"].values()
                 for p in policies)
    total = len(results["table"]) * len(policies)
    lines += ["", f"{within} of {total} (loss, policy) pairs within {TOLERANCE} points of "
                  f"float32.", ""]
    return "\n".join(lines)


def plot(results, path):
    policies = results["policies"]
    losses = list(results["table"])
    fig, ax = plt.subplots(figsize=(1.8 * len(losses) + 2, 3.6))
    width = 0.8 / len(policies)
    for i, policy in enumerate(policies):
        gains = [results["table"][loss][policy]["gain_points"] for loss in losses]
        errors = [results["table"][loss][policy]["standard_error_points"] for loss in losses]
        ax.bar(np.arange(len(losses)) + (i - (len(policies) - 1) / 2) * width, gains, width,
               yerr=errors, capsize=3, label=policy)
    ax.axhspan(-TOLERANCE, TOLERANCE, color="0.9", zorder=0, label=f"±{TOLERANCE} points")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(np.arange(len(losses)), losses)
    ax.set_ylabel("test accuracy − float32 (points)")
    ax.set_title(f"Mixed precision vs float32, {results['dataset']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--losses", nargs="+", default=list(LOSSES))
    parser.add_argument("--policies", nargs="+", default=["mixed_bfloat16"], choices=POLICIES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-limit", type=int, default=20000)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "mixed_precision")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--name", default="mixed_precision", help="result file stem")
    args = parser.parse_args(argv)
    runs = {loss: {policy: [] for policy in ["float32", *args.policies]}
            for loss in args.losses}
    for seed in args.seeds:  # seeds outermost: a partial run still covers every cell
        for loss in args.losses:
            for policy in ["float32", *args.policies]:
                print(f"--- {loss} {policy} seed {seed}", flush=True)
                runs[loss][policy].append(one_run(loss, policy, seed, args))
    results = {"environment": environment(), "dataset": args.dataset,
               "recipe": {**RECIPE, "epochs": args.epochs, "train_limit": args.train_limit,
                          "test_limit": args.test_limit},
               "seeds": args.seeds, "policies": args.policies,
               "table": summarise(runs, args.losses, args.policies)}
    write_json(args.name, results, args.results_dir)
    write_text(f"{args.name}.md", markdown(results), args.results_dir)
    plot(results, args.results_dir / f"{args.name}.png")
    print(markdown(results))


if __name__ == "__main__":
    main()
