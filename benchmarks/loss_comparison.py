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
Writes `results/NAME.json`, `.md`, `NAME_embeddings.png` and `NAME_embeddings.npz` (the 2-D
points drawn), NAME = `--name` (default loss_comparison).

`--merge` re-runs only the listed losses (and softmax, the reference) and replaces their rows
in the existing NAME.json, e.g. after a loss's defaults changed:

    python benchmarks/loss_comparison.py --epochs 4 --train-limit 10000 --merge \
        --losses intra_inter

`--full` runs the thesis comparison at full budget (the full training sets, 20 epochs, 3
seeds; `loss_comparison_full.*`), each (dataset, loss, seed) cell a run folder under
`runs/loss_comparison_full/`, so the hours-long job resumes where it stopped: run the same
command again. `--work DIR` keeps the cells of any run. Run folders do not survive a fresh
checkout, so `--full` also records each finished cell's scores (and the 2-D pass's drawn
embeddings) in `results/loss_comparison_full_cells/` (`--cells DIR` for any run), committed
as cells finish: a recorded cell is read back, not retrained. Each loss's row gives its accuracy
gain over softmax in points with Welch's t (unequal variances) over the seeds.

It refuses when the stored recipe, seeds or datasets differ from this run's; each merge is
recorded under "updates". Training is deterministic (seeded, op determinism), so the
re-run softmax rows must reproduce the stored ones: their largest accuracy change is
recorded as a check.
"""

from __future__ import annotations

import argparse
import json
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
from benchmarks.common import (RESULTS, environment, interleaved_step_times,  # noqa: E402
                               mean_std, write_json, write_text)
from callbacks.margin_monitor import separation_metrics  # noqa: E402
from zoo import datasets, embedding_model, train  # noqa: E402
from zoo.training.tasks import classification  # noqa: E402

LOSSES = ("softmax", "focal", "hinge", "prob_mse", "lsoftmax", "sphereface", "cosface",
          "arcface", "center", "contrastive", "triplet", "triplet_constrained", "intra_inter")
RECIPE = dict(model="lenet_embed", batch_size=64, learning_rate=2e-3, validation_split=0.1)
# The thesis's claim: its proposed loss (IntraInter) is ahead of every margin and metric loss
# by 0.59 to 2.43 accuracy points.
THESIS_LOSS = "intra_inter"
MARGIN_AND_METRIC = ("lsoftmax", "sphereface", "cosface", "arcface", "center", "contrastive",
                     "triplet", "triplet_constrained")
THESIS_CLAIM_POINTS = (0.59, 2.43)
FULL_EPOCHS = 20  # the thesis names no epoch budget: the 20
PANEL_POINTS = 3000  # test embeddings drawn per loss in the 2-D figure
REPO = Path(__file__).resolve().parents[1]


def test_embeddings(run_dir: Path, dataset: str, limit: int | None = None):
    model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    test = datasets.load(dataset, "test", limit=limit)
    embeddings = embedding_model(model).predict(test.x, batch_size=512, verbose=0)
    return embeddings, test.y


def one_run(dataset, loss, seed, args, workdir, embedding_dim):
    """Train one (dataset, loss, seed) cell, or read it back when its run folder finished
    (with `--work`, cells persist: an interrupted comparison resumes cell by cell, and a
    cell interrupted mid-training resumes from its last epoch) or when `--cells` records it.

    Returns (scores, test embeddings, test labels); a cell read from `--cells` returns the
    embeddings only for the 2-D pass (the first PANEL_POINTS, as drawn), None otherwise."""
    out = workdir / f"{dataset}-{loss}-{seed}-{embedding_dim}d"
    wanted = {"epochs": args.epochs, "train_limit": args.train_limit,
              "test_limit": args.test_limit, "seed": seed, "loss": loss}
    record = args.cells / f"{out.name}.json" if args.cells else None
    if record is not None and record.exists():
        stored = json.loads(record.read_text())
        if stored["config"] != wanted:
            raise SystemExit(f"{record} was trained with {stored['config']}, not {wanted}: "
                             f"use another --cells folder")
        if embedding_dim != 2:
            return stored["run"], None, None
        with np.load(record.with_suffix(".npz")) as points:
            return stored["run"], points["embeddings"], points["labels"]
    config = train.TrainConfig(dataset=dataset, loss=loss, seed=seed, epochs=args.epochs,
                               embedding_dim=embedding_dim, train_limit=args.train_limit,
                               test_limit=args.test_limit, out=str(out), verbose=0, resume=True, **RECIPE)
    if (out / "metrics.json").exists():
        metrics = json.loads((out / "metrics.json").read_text())
        stored = {k: metrics["config"].get(k)
                  for k in ("epochs", "train_limit", "test_limit", "seed", "loss")}
        if stored != wanted:
            raise SystemExit(f"{out} was trained with {stored}, not {wanted}: use another "
                             f"--work folder")
    else:
        metrics = train.run(config)
    embeddings, labels = test_embeddings(out, dataset, args.test_limit)
    separation = separation_metrics(embeddings, labels)
    run = {"seed": seed, "test_accuracy": metrics["test_accuracy"],
           "intra_inter_ratio": float(separation["intra_inter_ratio"]),
           "train_samples_per_second": metrics["train_samples_per_second"]}
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        if embedding_dim == 2:
            np.savez_compressed(record.with_suffix(".npz"),
                                embeddings=embeddings[:PANEL_POINTS].astype(np.float32),
                                labels=labels[:PANEL_POINTS])
        write_text(record.name, json.dumps({"config": wanted, "run": run}, indent=1) + "\n",
                   record.parent)
    return run, embeddings, labels


def step_times(dataset, names, args):
    """Seconds per training step of each loss's model, interleaved; {name: [per round]}."""
    from zoo.datasets.samplers import PKBatches

    data = datasets.load(dataset, "train", limit=2048)
    models = {}
    for name in names:
        config = train.TrainConfig(dataset=dataset, loss=name, epochs=1,
                                   embedding_dim=args.embedding_dim, **RECIPE)
        model = classification.build_model(config, 10, data.x.shape[1:])
        classification.compile_model(model, config, 10, steps=100)
        if losses.get_recipe(name).balanced_batches:
            batch = PKBatches(data.x, data.y, 8, config.batch_size // 8, seed=0)[0]
        else:
            batch = (data.x[:config.batch_size], data.y[:config.batch_size])
        models[name] = (model, batch)
    return interleaved_step_times(models, args.timing_reps, args.timing_steps)


def gain_over(accuracies, reference) -> dict:
    """Mean accuracy gain (points) over the reference runs, with Welch's t and its two-sided
    p (unequal variances; scipy.stats.ttest_ind), None where fewer than 2 runs per side."""
    from scipy.stats import ttest_ind

    gain = 100 * (float(np.mean(accuracies)) - float(np.mean(reference)))
    if min(len(accuracies), len(reference)) < 2:
        return {"points": gain, "welch_t": None, "p_value": None}
    t, p = ttest_ind(accuracies, reference, equal_var=False)
    finite = bool(np.isfinite(t))
    return {"points": gain, "welch_t": float(t) if finite else None,
            "p_value": float(p) if finite else None}


def significant(gain: dict) -> bool:
    """Whether a `gain_over` result has Welch's p below 0.05."""
    return gain["p_value"] is not None and gain["p_value"] < 0.05


def thesis_claim(table: dict) -> dict:
    """Per dataset, the thesis loss's lead over each margin and metric loss (points, Welch's t
    and p, as `gain_over`) and a verdict: "holds" when every lead is at least the claim's
    lower end (0.59 points), else "does not hold"; with how many rivals it leads at all, leads
    at p < 0.05 and trails at p < 0.05."""
    claim = {}
    for dataset, rows in table.items():
        ours = [r["test_accuracy"] for r in rows[THESIS_LOSS]["runs"]]
        leads = {rival: gain_over(ours, [r["test_accuracy"] for r in rows[rival]["runs"]])
                 for rival in MARGIN_AND_METRIC}
        holds = all(lead["points"] >= THESIS_CLAIM_POINTS[0] for lead in leads.values())
        claim[dataset] = {
            "leads": leads, "verdict": "holds" if holds else "does not hold",
            "rivals_led": sum(lead["points"] > 0 for lead in leads.values()),
            "rivals_led_significantly": sum(lead["points"] > 0 and significant(lead)
                                            for lead in leads.values()),
            "rivals_ahead_significantly": sum(lead["points"] < 0 and significant(lead)
                                              for lead in leads.values())}
    return claim


def claim_markdown(claim: dict) -> str:
    low, high = THESIS_CLAIM_POINTS
    lines = [f"\nThe thesis's claim: {THESIS_LOSS} is ahead of every margin and metric loss by "
             f"{low}–{high} points. Its lead over each (points, Welch t, p):\n",
             "| dataset | " + " | ".join(MARGIN_AND_METRIC) + " | verdict |",
             "|---|" + "---|" * (len(MARGIN_AND_METRIC) + 1)]
    for dataset, row in claim.items():
        cells = []
        for rival in MARGIN_AND_METRIC:
            lead = row["leads"][rival]
            cells.append(f"{lead['points']:+.2f}" + (
                "" if lead["welch_t"] is None
                else f" (t {lead['welch_t']:.2f}, p {lead['p_value']:.2f})"))
        lines.append(f"| {dataset} | " + " | ".join(cells) + f" | {row['verdict']}: ahead of "
                     f"{row['rivals_led']} of {len(MARGIN_AND_METRIC)} "
                     f"({row['rivals_led_significantly']} at p < 0.05), behind "
                     f"{row['rivals_ahead_significantly']} at p < 0.05 |")
    return "\n".join(lines) + "\n"


def summarise(runs_by_loss, names, seconds):
    rows = {}
    softmax_step = np.median(seconds["softmax"])
    reference = [r["test_accuracy"] for r in runs_by_loss["softmax"]]
    for name in names:
        runs = runs_by_loss[name]
        accuracies = [r["test_accuracy"] for r in runs]
        rows[name] = {"test_accuracy": mean_std(accuracies),
                      "gain_over_softmax": gain_over(accuracies, reference),
                      "intra_inter_ratio": mean_std([r["intra_inter_ratio"] for r in runs]),
                      "step_seconds": seconds[name],
                      "step_time_vs_softmax": float(np.median(seconds[name]) / softmax_step),
                      "runs": runs}
    return rows


def markdown(results, names):
    datasets_run = results["datasets"]
    header = "| loss | " + " | ".join(
        f"{d} accuracy % | {d} gain over softmax (Welch t) | {d} intra/inter | "
        f"{d} step time ×softmax" for d in datasets_run) + " |"
    lines = [header, "|---|" + "---|---|---|---|" * len(datasets_run)]
    for name in names:
        cells = []
        for d in datasets_run:
            row = results["table"][d][name]
            acc, ratio = row["test_accuracy"], row["intra_inter_ratio"]
            gain = row.get("gain_over_softmax")
            gain_cell = ("—" if gain is None or name == "softmax" else
                         f"{gain['points']:+.2f}" + (f" (t {gain['welch_t']:.2f})"
                                                     if gain["welch_t"] is not None else ""))
            cells += [f"{100 * acc['mean']:.2f} ± {100 * acc['std']:.2f}", gain_cell,
                      f"{ratio['mean']:.3f}", f"{row['step_time_vs_softmax']:.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    claim = claim_markdown(results["thesis_claim"]) if "thesis_claim" in results else ""
    return "\n".join(lines) + "\n" + claim


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
    parser.add_argument("--test-limit", type=int, default=None,
                        help="score on the first N test images only (quick runs; default all)")
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--skip-2d", action="store_true", help="skip the 2-D embedding figure")
    parser.add_argument("--skip-table", action="store_true",
                        help="only the 2-D embedding pass (with --merge: redraw the figure)")
    parser.add_argument("--timing-reps", type=int, default=5)
    parser.add_argument("--timing-steps", type=int, default=20)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--name", default="loss_comparison", help="result file stem")
    parser.add_argument("--merge", action="store_true",
                        help="re-run only --losses and replace their rows in NAME.json")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep every cell's run folder here, and resume from them "
                        "(default: a temporary folder, nothing kept)")
    parser.add_argument("--cells", type=Path, default=None,
                        help="record every finished cell's scores here (and the 2-D pass's "
                        "drawn embeddings), and do not retrain a recorded cell: unlike the "
                        "run folders of --work, this small record is committed with the "
                        "results, so a long comparison goes on from a fresh checkout")
    parser.add_argument("--full", action="store_true",
                        help=f"the thesis's budget: the full training sets, {FULL_EPOCHS} "
                        f"epochs, 3 seeds; results NAME = loss_comparison_full, cells kept "
                        f"in runs/loss_comparison_full (resumable: run it again to go on)")
    args = parser.parse_args(argv)
    if args.full:
        args.train_limit, args.test_limit, args.epochs = None, None, FULL_EPOCHS
        args.seeds = sorted(set(args.seeds) | {0, 1, 2})
        if args.name == "loss_comparison":
            args.name = "loss_comparison_full"
        args.work = args.work or REPO / "runs" / "loss_comparison_full"
        args.cells = args.cells or args.results_dir / f"{args.name}_cells"
    if args.skip_table and not args.merge:
        parser.error("--skip-table only makes sense with --merge (a table must exist)")
    names = list(dict.fromkeys(["softmax", *args.losses]))  # softmax is the reference
    unknown = sorted(set(names) - set(losses.list_recipes()))
    if unknown:
        parser.error(f"unknown losses {unknown}; known: {losses.list_recipes()}")

    recipe = {**RECIPE, "epochs": args.epochs, "train_limit": args.train_limit,
              "test_limit": args.test_limit,
              "embedding_dim": args.embedding_dim, "timing_reps": args.timing_reps,
              "timing_steps": args.timing_steps}
    stored = load_for_merge(args, recipe) if args.merge else None
    results = {"environment": environment(), "recipe": recipe, "seeds": args.seeds,
               "datasets": args.datasets, "losses": names, "table": {}}
    two_d = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.work or Path(tmp)
        for dataset in ([] if args.skip_table else args.datasets):
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
            dataset = args.datasets[0]
            for name in names:
                print(f"--- 2-D {dataset} {name}", flush=True)
                run, embeddings, labels = one_run(dataset, name, args.seeds[0], args, workdir, 2)
                two_d[name] = (embeddings[:PANEL_POINTS], labels[:PANEL_POINTS],
                               run["test_accuracy"])
    if stored is not None:
        results, two_d = merged(stored, results, two_d, args)
        names = results["losses"]
    if {THESIS_LOSS, *MARGIN_AND_METRIC} <= set(names) and results["table"]:
        results["thesis_claim"] = thesis_claim(results["table"])
    if two_d:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        save_embeddings(two_d, args.results_dir / f"{args.name}_embeddings.npz")
        plot_embeddings(two_d, args.results_dir / f"{args.name}_embeddings.png",
                        args.datasets[0])
        results["two_d_accuracy"] = {name: panel[2] for name, panel in two_d.items()}
    write_json(args.name, results, args.results_dir)
    write_text(f"{args.name}.md", markdown(results, names), args.results_dir)
    print(markdown(results, names))
    return 0


def save_embeddings(panels, path):
    arrays = {}
    for name, (embeddings, labels, accuracy) in panels.items():
        arrays[f"{name}/embeddings"] = embeddings
        arrays[f"{name}/labels"] = labels
        arrays[f"{name}/accuracy"] = np.float64(accuracy)
    np.savez_compressed(path, **arrays)


def load_embeddings(path) -> dict:
    with np.load(path) as stored:
        names = dict.fromkeys(key.split("/")[0] for key in stored.files)
        return {("center" if name == "centre" else name): (
            stored[f"{name}/embeddings"], stored[f"{name}/labels"],
            float(stored[f"{name}/accuracy"])) for name in names}


def rename_center(stored: dict) -> dict:
    """Results stored before the loss took one spelling call its row "centre"."""
    def renamed(value):
        if isinstance(value, dict):
            return {("center" if k == "centre" else k): renamed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [renamed(v) for v in value]
        return "center" if value == "centre" else value

    return renamed(stored)


def load_for_merge(args, recipe) -> dict:
    """The stored results that `--merge` updates; refused if they were made differently."""
    import json

    path = args.results_dir / f"{args.name}.json"
    if not path.exists():
        raise SystemExit(f"--merge: {path} does not exist; run without --merge first")
    stored = rename_center(json.loads(path.read_text()))
    stored["recipe"].setdefault("test_limit", None)  # results from before --test-limit
    for key, ours in (("recipe", recipe), ("seeds", args.seeds), ("datasets", args.datasets)):
        if stored[key] != ours:
            raise SystemExit(f"--merge: the stored {key} {stored[key]} differs from this "
                             f"run's {ours}; a merged table would mix budgets")
    return stored


def merged(stored, fresh, two_d, args):
    """`stored` with the freshly run losses' rows replaced (softmax: checked, then kept).

    Step-time ratios of the re-run losses come from the fresh timing pass (their own softmax).
    The 2-D panels of re-run losses replace the stored ones when those were saved."""
    replaced = [name for name in fresh["losses"] if name != "softmax"]
    reproduced = {}
    for dataset in fresh["table"]:
        table = stored["table"][dataset]
        old = np.array(table["softmax"]["test_accuracy"]["values"])
        new = np.array(fresh["table"][dataset]["softmax"]["test_accuracy"]["values"])
        reproduced[dataset] = float(np.max(np.abs(old - new)))
        for name in replaced:
            table[name] = fresh["table"][dataset][name]
    stored["losses"] = list(dict.fromkeys(stored["losses"] + replaced))
    stored.setdefault("updates", []).append({
        "date": fresh["environment"]["date"], "losses": replaced,
        "parts": (["table"] if fresh["table"] else []) + (["2-D"] if two_d else []),
        "environment": fresh["environment"],
        "softmax_max_accuracy_change": reproduced})
    panels_path = args.results_dir / f"{args.name}_embeddings.npz"
    if two_d and panels_path.exists():
        panels = load_embeddings(panels_path)
        panels.update(two_d)
        two_d = panels
    elif two_d and set(two_d) != set(stored["losses"]):
        print("--merge: no stored 2-D embeddings to merge into; the figure shows only this "
              "run's losses", flush=True)
    return stored, two_d

if __name__ == "__main__":
    sys.exit(main())
