"""Open-set retrieval: train an embedding on some classes, retrieve images of classes it never saw.

    python benchmarks/retrieval.py [--datasets fashion_mnist cifar10] [--seeds 0 1 2]
        [--epochs 6] [--losses softmax multi_similarity xbm ...] [--work runs/retrieval]

The protocol of metric-learning benchmarks (CUB, Cars, SOP), on the sets that are here
offline: the training split's images of the first five classes train the model; the test
split's images of the other five are the queries and the gallery (each image searches all
the others by cosine similarity; `callbacks.retrieval`). For each dataset, loss and seed:
`lenet_embed` with the loss's recipe (`losses.get_recipe`: its head, P×K batches for losses
that mine in the batch), the same trunk, embedding size, optimizer, schedule and epochs, then:

- MAP@R, precision@1 and R-precision of the unseen classes (mean ± std over seeds), and
  each loss's MAP@R gain over softmax cross-entropy in points with its standard error and
  the gain over 2σ (σ the standard error of the difference of the two means);
- the training step time of each loss over softmax's, in one timing pass on the first
  dataset where every loss (the table's and `--timed` ones) takes the same steps on a fixed
  batch in turn, the order rotating (medians).

Each (dataset, loss, seed) cell is stored as JSON under `--work` (default
`runs/retrieval`), so an interrupted run resumes cell by cell; a cell trained with another
recipe is refused. Writes `results/retrieval.json`, `.md` and `.png`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import losses  # noqa: E402
from benchmarks.common import (RESULTS, difference, environment,  # noqa: E402
                               interleaved_step_times, mean_std, write_json, write_text)
from callbacks.retrieval import retrieval_metrics  # noqa: E402
from zoo import datasets, embedding_model, train  # noqa: E402
from zoo.datasets.samplers import PKBatches  # noqa: E402
from zoo.training.tasks import classification  # noqa: E402

LOSSES = ("softmax", "arcface", "contrastive", "triplet", "multi_similarity", "circle",
          "supcon", "proxy_anchor", "xbm")
# Step times are measured for these too (the metric-learning recipes beyond the table).
TIMED = ("multi_similarity", "circle", "supcon", "nt_xent", "n_pairs", "lifted_structure",
         "angular", "proxy_nca", "proxy_anchor", "normalized_softmax", "soft_triple",
         "subcenter_arcface", "margin", "xbm")
TRAIN_CLASSES = (0, 1, 2, 3, 4)
RECIPE = dict(model="lenet_embed", batch_size=64, learning_rate=2e-3, embedding_dim=64)
PK_CLASSES = 5  # P×K batches: all five training classes, 64 // 5 = 12 samples of each
REPO = Path(__file__).resolve().parents[1]


def open_set_split(dataset, train_classes, data_dir=None, train_limit=None, test_limit=None):
    """(train x, y remapped to 0..k-1), (test x, y) of the other classes (original ids);
    the first `train_limit` / `test_limit` images of each (None: all)."""
    train_split = datasets.load(dataset, "train", data_dir=data_dir)
    test_split = datasets.load(dataset, "test", data_dir=data_dir)
    seen = np.isin(train_split.y, train_classes)
    remap = {c: i for i, c in enumerate(train_classes)}
    y_train = np.array([remap[c] for c in train_split.y[seen]], np.int64)
    unseen = ~np.isin(test_split.y, train_classes)
    return ((train_split.x[seen][:train_limit], y_train[:train_limit]),
            (test_split.x[unseen][:test_limit], test_split.y[unseen][:test_limit]))


def build(name, seed, input_shape, num_classes, steps, epochs):
    keras.utils.set_random_seed(seed)
    config = train.TrainConfig(loss=name, seed=seed, epochs=epochs, **RECIPE)
    model = classification.build_model(config, num_classes, input_shape)
    return classification.compile_model(model, config, num_classes, steps)


def fit_data(name, x, y, seed):
    """P×K batches for losses that mine in the batch, shuffled batches of 64 otherwise."""
    if losses.get_recipe(name).balanced_batches:
        return PKBatches(x, y, classes_per_batch=PK_CLASSES,
                         samples_per_class=RECIPE["batch_size"] // PK_CLASSES, seed=seed), {}
    return x, dict(y=y, batch_size=RECIPE["batch_size"], shuffle=True)


def one_cell(dataset, name, seed, args, split, workdir):
    """Train and score one (dataset, loss, seed), or read the stored cell back."""
    path = workdir / f"{dataset}-{name}-{seed}.json"
    recipe = {**RECIPE, "epochs": args.epochs, "train_classes": list(args.train_classes),
              "train_limit": args.train_limit, "test_limit": args.test_limit}
    if path.exists():
        cell = json.loads(path.read_text())
        if cell["recipe"] != recipe:
            raise SystemExit(f"{path} was trained with {cell['recipe']}, not {recipe}: use "
                             f"another --work folder")
        return cell
    (x_train, y_train), (x_test, y_test) = split
    data, kwargs = fit_data(name, x_train, y_train, seed)
    steps = len(data) if not kwargs else int(np.ceil(len(y_train) / RECIPE["batch_size"]))
    model = build(name, seed, x_train.shape[1:], len(args.train_classes), steps, args.epochs)
    started = time.perf_counter()
    model.fit(data, epochs=args.epochs, verbose=2, **kwargs)
    seconds = time.perf_counter() - started
    embeddings = embedding_model(model).predict(x_test, batch_size=512, verbose=0)
    metrics = retrieval_metrics(embeddings, y_test, ks=(1,))
    cell = {"recipe": recipe, "dataset": dataset, "loss": name, "seed": seed,
            "train_seconds": seconds, **{k: metrics[k] for k in
                                         ("map_at_r", "precision_at_1", "r_precision")}}
    workdir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cell, indent=2))
    return cell


def step_times(names, split, args):
    """Seconds per training step of each loss's model on one fixed batch, interleaved."""
    (x_train, y_train), _ = split
    models = {}
    for name in names:
        model = build(name, 0, x_train.shape[1:], len(args.train_classes), 100, 1)
        data, kwargs = fit_data(name, x_train[:4096], y_train[:4096], 0)
        batch = data[0] if not kwargs else (x_train[:RECIPE["batch_size"]],
                                            y_train[:RECIPE["batch_size"]])
        models[name] = (model, batch)
    return interleaved_step_times(models, args.timing_reps, args.timing_steps)


def gain(values, reference) -> dict:
    """Mean gain in points over the reference, its standard error (√(s²/n + s_r²/n_r)) and
    the gain in units of 2 standard errors (> 1: ahead by more than 2σ)."""
    if min(len(values), len(reference)) < 2:
        return {"points": 100 * float(np.mean(values) - np.mean(reference)),
                "standard_error": None, "over_two_sigma": None}
    points, error = (100 * v for v in difference(mean_std(values), mean_std(reference)))
    return {"points": float(points), "standard_error": float(error),
            "over_two_sigma": float(points / (2 * error)) if error > 0 else None}


def summarise(cells, names):
    rows = {}
    reference = [c["map_at_r"] for c in cells["softmax"]]
    for name in names:
        runs = cells[name]
        rows[name] = {key: mean_std([c[key] for c in runs])
                      for key in ("map_at_r", "precision_at_1", "r_precision")}
        rows[name]["map_at_r_gain_over_softmax"] = gain([c["map_at_r"] for c in runs],
                                                        reference)
        rows[name]["runs"] = runs
    return rows


def step_time_table(seconds) -> dict:
    softmax = float(np.median(seconds["softmax"]))
    return {name: {"seconds": values, "vs_softmax": float(np.median(values) / softmax)}
            for name, values in seconds.items()}


def markdown(results):
    steps = results.get("step_times") or {}
    lines = []
    for dataset, table in results["table"].items():
        lines += [f"### {dataset}: trained on classes {results['recipe']['train_classes']}, "
                  f"retrieval among the other five (test split)", "",
                  "| loss | MAP@R % | P@1 % | R-precision % | MAP@R gain over softmax "
                  "(± s.e.) | step time ×softmax |", "|---|---|---|---|---|---|"]
        for name, row in table.items():
            g = row["map_at_r_gain_over_softmax"]
            gain_cell = "—" if name == "softmax" else (
                f"{g['points']:+.2f}" + (f" ± {g['standard_error']:.2f}"
                                          if g["standard_error"] is not None else ""))
            step = steps.get(name, {}).get("vs_softmax")
            lines.append(
                f"| {name} | " + " | ".join(
                    f"{100 * row[k]['mean']:.2f} ± {100 * row[k]['std']:.2f}"
                    for k in ("map_at_r", "precision_at_1", "r_precision"))
                + f" | {gain_cell} | {'—' if step is None else f'{step:.2f}'} |")
        best = max((n for n in table if n != "softmax"),
                   key=lambda n: table[n]["map_at_r"]["mean"])
        g = table[best]["map_at_r_gain_over_softmax"]
        verdict = ("more than 2σ ahead" if (g["over_two_sigma"] or 0) > 1 else
                   "not 2σ ahead")
        ahead = [f"{n} ({table[n]['map_at_r_gain_over_softmax']['points']:+.2f} ± "
                 f"{table[n]['map_at_r_gain_over_softmax']['standard_error']:.2f})"
                 for n in table if n != "softmax"
                 and (table[n]["map_at_r_gain_over_softmax"]["over_two_sigma"] or 0) > 1]
        lines += ["", f"Best: {best}, MAP@R {g['points']:+.2f} points over softmax, "
                      f"{verdict}. More than 2σ (two standard errors) ahead of softmax: "
                      f"{', '.join(ahead) or 'none'}.", ""]
    if steps:
        lines += [f"### Training step time over softmax's ({results['timing_dataset']}, "
                  f"lenet_embed, batch {RECIPE['batch_size']}, median of "
                  f"{results['recipe']['timing_reps']} rounds)", "",
                  "| loss | step time ×softmax |", "|---|---|"]
        lines += [f"| {name} | {row['vs_softmax']:.2f} |" for name, row in steps.items()]
        lines.append("")
    return "\n".join(lines)


def plot(results, path):
    tables = results["table"]
    fig, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4), squeeze=False)
    for ax, (dataset, table) in zip(axes[0], tables.items()):
        names = list(table)
        means = [100 * table[n]["map_at_r"]["mean"] for n in names]
        stds = [100 * table[n]["map_at_r"]["std"] for n in names]
        colors = ["0.6" if n == "softmax" else "tab:blue" for n in names]
        ax.bar(names, means, yerr=stds, color=colors, capsize=3)
        ax.axhline(means[0], color="0.4", lw=0.8, ls="--")
        ax.set_ylabel("MAP@R on unseen classes (%)")
        ax.set_title(f"{dataset}: open-set retrieval, {len(table['softmax']['runs'])} seeds")
        ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["fashion_mnist", "cifar10"])
    parser.add_argument("--losses", nargs="+", default=list(LOSSES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-classes", type=int, nargs="+", default=list(TRAIN_CLASSES))
    parser.add_argument("--train-limit", type=int, default=None,
                        help="train on the first N images of the seen classes (quick runs)")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="retrieve among the first N test images of the unseen classes")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the datasets' files (e.g. CIFAR-10's train/ test/)")
    parser.add_argument("--timed", nargs="*", default=list(TIMED),
                        help="losses whose step time is measured besides the table's")
    parser.add_argument("--timing-reps", type=int, default=5)
    parser.add_argument("--timing-steps", type=int, default=20)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "retrieval")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--name", default="retrieval", help="result file stem")
    args = parser.parse_args(argv)
    names = list(dict.fromkeys(["softmax", *args.losses]))
    unknown = sorted(set(names) - set(losses.list_recipes()))
    if unknown:
        parser.error(f"unknown losses {unknown}; known: {losses.list_recipes()}")
    results = {"environment": environment(),
               "recipe": {**RECIPE, "epochs": args.epochs,
                          "train_classes": list(args.train_classes),
                          "train_limit": args.train_limit, "test_limit": args.test_limit,
                          "timing_reps": args.timing_reps, "timing_steps": args.timing_steps},
               "seeds": args.seeds, "losses": names, "table": {}}
    for dataset in args.datasets:
        split = open_set_split(dataset, args.train_classes, args.data_dir, args.train_limit,
                               args.test_limit)
        cells = {name: [] for name in names}
        for seed in args.seeds:  # seeds outermost: a partial run still covers every loss
            for name in names:
                print(f"--- {dataset} {name} seed {seed}", flush=True)
                cell = one_cell(dataset, name, seed, args, split, args.work)
                cells[name].append(cell)
                print(f"    MAP@R {cell['map_at_r']:.4f}  P@1 {cell['precision_at_1']:.4f}",
                      flush=True)
        results["table"][dataset] = summarise(cells, names)
        if dataset == args.datasets[0] and args.timing_reps > 0:
            print(f"--- step times on {dataset}", flush=True)
            timed = list(dict.fromkeys([*names, *args.timed]))
            results["timing_dataset"] = dataset
            results["step_times"] = step_time_table(step_times(timed, split, args))
    write_json(args.name, results, args.results_dir)
    write_text(f"{args.name}.md", markdown(results), args.results_dir)
    plot(results, args.results_dir / f"{args.name}.png")
    print(markdown(results))


if __name__ == "__main__":
    main()
