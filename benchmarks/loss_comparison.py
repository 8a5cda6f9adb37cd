"""Every classification loss on the same LeNet, data, optimizer, schedule and budget.

    python benchmarks/loss_comparison.py [--datasets mnist fashion_mnist] [--seeds 0 1 2]
        [--epochs 8] [--train-limit 20000] [--embedding-dim 32] [--losses softmax arcface ...]

For each dataset, loss and seed: `lenet_embed` (same trunk and embedding size for all) is
trained through `zoo.train.run` with the loss's recipe (its head; P×K batches for losses
that mine in the batch), then measured on the test split:
- test accuracy (mean ± std over seeds);
- the intra/inter-class distance ratio of the test embeddings (mean distance to the class
  centroid over mean distance between centroids; lower = tighter, better separated);
- the training step time of each loss over softmax CE's, measured in one timing pass where
  every loss's model takes `--timing-steps` steps on a fixed batch in turn, the order
  rotating over `--timing-reps` rounds (medians; the runs above are too far apart in time
  on a shared machine to compare their throughputs).
A second pass trains every loss with a 2-D embedding (one seed, first dataset) and draws the
test embeddings per loss, as in the centre-loss and SphereFace papers.
Writes `results/loss_comparison.json`, `.md` and `results/loss_comparison_embeddings.png`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import losses  # noqa: E402
from benchmarks.common import RESULTS, environment, mean_std, write_json, write_text  # noqa: E402
from callbacks.margin_monitor import separation_metrics  # noqa: E402
from zoo import datasets, embedding_model, train  # noqa: E402

LOSSES = ("softmax", "focal", "hinge", "prob_mse", "lsoftmax", "sphereface", "cosface",
          "arcface", "centre", "contrastive", "triplet", "triplet_constrained", "intra_inter")
RECIPE = dict(model="lenet_embed", batch_size=64, learning_rate=2e-3, validation_split=0.1)


def test_embeddings(run_dir: Path, dataset: str):
    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    test = datasets.load(dataset, "test")
    embeddings = embedding_model(model).predict(test.x, batch_size=512, verbose=0)
    return embeddings, test.y


def one_run(dataset, loss, seed, args, workdir, embedding_dim):
    out = workdir / f"{dataset}-{loss}-{seed}-{embedding_dim}d"
    config = train.TrainConfig(dataset=dataset, loss=loss, seed=seed, epochs=args.epochs,
                               embedding_dim=embedding_dim, train_limit=args.train_limit,
                               out=str(out), verbose=0, **RECIPE)
    metrics = train.run(config)
    embeddings, labels = test_embeddings(out, dataset)
    separation = separation_metrics(embeddings, labels)
    return {"seed": seed, "test_accuracy": metrics["test_accuracy"],
            "intra_inter_ratio": float(separation["intra_inter_ratio"]),
            "train_samples_per_second": metrics["train_samples_per_second"]}, embeddings, labels


def step_times(dataset, names, args):
    """Seconds per training step of each loss's model, interleaved; {name: [per round]}."""
    import time

    from zoo.datasets.samplers import PKBatches

    data = datasets.load(dataset, "train", limit=2048)
    models = {}
    for name in names:
        config = train.TrainConfig(dataset=dataset, loss=name, epochs=1,
                                   embedding_dim=args.embedding_dim, **RECIPE)
        model = train.build_model(config, 10, data.x.shape[1:])
        train.compile_model(model, config, 10, steps=100)
        if losses.get_recipe(name).balanced_batches:
            batch = PKBatches(data.x, data.y, 8, config.batch_size // 8, seed=0)[0]
        else:
            batch = (data.x[:config.batch_size], data.y[:config.batch_size])
        for _ in range(3):  # tracing and warm-up
            model.train_on_batch(*batch)
        models[name] = (model, batch)
    seconds = {name: [] for name in names}
    for round_ in range(args.timing_reps):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            model, batch = models[name]
            started = time.perf_counter()
            for _ in range(args.timing_steps):
                model.train_on_batch(*batch)
            seconds[name].append((time.perf_counter() - started) / args.timing_steps)
    return seconds


def summarise(runs_by_loss, names, seconds):
    rows = {}
    softmax_step = np.median(seconds["softmax"])
    for name in names:
        runs = runs_by_loss[name]
        rows[name] = {"test_accuracy": mean_std([r["test_accuracy"] for r in runs]),
                      "intra_inter_ratio": mean_std([r["intra_inter_ratio"] for r in runs]),
                      "step_seconds": seconds[name],
                      "step_time_vs_softmax": float(np.median(seconds[name]) / softmax_step),
                      "runs": runs}
    return rows


def markdown(results, names):
    datasets_run = results["datasets"]
    header = "| loss | " + " | ".join(
        f"{d} accuracy % | {d} intra/inter | {d} step time ×softmax" for d in datasets_run) + " |"
    lines = [header, "|---|" + "---|---|---|" * len(datasets_run)]
    for name in names:
        cells = []
        for d in datasets_run:
            row = results["table"][d][name]
            acc, ratio = row["test_accuracy"], row["intra_inter_ratio"]
            cells += [f"{100 * acc['mean']:.2f} ± {100 * acc['std']:.2f}",
                      f"{ratio['mean']:.3f}", f"{row['step_time_vs_softmax']:.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_embeddings(panels, path, dataset):
    cols = 5
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, (embeddings, labels, accuracy)) in zip(axes.ravel(), panels.items()):
        ax.scatter(embeddings[:, 0], embeddings[:, 1], c=labels, cmap="tab10", s=2, alpha=0.5)
        ax.set_title(f"{name} ({100 * accuracy:.1f} %)", fontsize=10)
        ax.set_aspect("equal", adjustable="datalim")
    fig.suptitle(f"2-D test embeddings of lenet_embed on {dataset}, one per loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist"])
    parser.add_argument("--losses", nargs="+", default=list(LOSSES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-limit", type=int, default=20000)
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--skip-2d", action="store_true", help="skip the 2-D embedding figure")
    parser.add_argument("--timing-reps", type=int, default=5)
    parser.add_argument("--timing-steps", type=int, default=20)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    names = list(dict.fromkeys(["softmax", *args.losses]))  # softmax is the reference
    unknown = sorted(set(names) - set(losses.list_recipes()))
    if unknown:
        parser.error(f"unknown losses {unknown}; known: {losses.list_recipes()}")

    results = {"environment": environment(), "recipe": {**RECIPE, "epochs": args.epochs,
               "train_limit": args.train_limit, "embedding_dim": args.embedding_dim,
               "timing_reps": args.timing_reps, "timing_steps": args.timing_steps},
               "seeds": args.seeds, "datasets": args.datasets, "losses": names, "table": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for dataset in args.datasets:
            runs_by_loss = {name: [] for name in names}
            for seed in args.seeds:  # seeds outermost: a partial run still covers every loss
                for name in names:
                    print(f"--- {dataset} {name} seed {seed}", flush=True)
                    run, _, _ = one_run(dataset, name, seed, args, workdir, args.embedding_dim)
                    runs_by_loss[name].append(run)
                    print(f"    accuracy {run['test_accuracy']:.4f}", flush=True)
            print(f"--- step times on {dataset}", flush=True)
            seconds = step_times(dataset, names, args)
            results["table"][dataset] = summarise(runs_by_loss, names, seconds)
        if not args.skip_2d:
            args.results_dir.mkdir(parents=True, exist_ok=True)
            dataset = args.datasets[0]
            panels = {}
            for name in names:
                print(f"--- 2-D {dataset} {name}", flush=True)
                run, embeddings, labels = one_run(dataset, name, args.seeds[0], args, workdir, 2)
                panels[name] = (embeddings[:3000], labels[:3000], run["test_accuracy"])
            plot_embeddings(panels, args.results_dir / "loss_comparison_embeddings.png", dataset)
            results["two_d_accuracy"] = {name: p[2] for name, p in panels.items()}
    write_json("loss_comparison", results, args.results_dir)
    write_text("loss_comparison.md", markdown(results, names), args.results_dir)
    print(markdown(results, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
