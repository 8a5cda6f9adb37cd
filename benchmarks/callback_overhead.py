"""What LossLab's training probes cost: LeNet-5 on MNIST with and without each callback.

    python benchmarks/callback_overhead.py [--epochs 4] [--reps 3] [--train-limit N]

Measures, with the LeNet-5 recipe of `benchmarks/lenet_baseline.py`:
1. time per training epoch with each probe against no probe, in the same process. The
   variants are alternated within every repetition (the order rotates from one repetition
   to the next, after one untimed warm-up fit), each on a fresh model with the same seed;
   the first epoch of every fit (tracing, compilation) is left out. An epoch's time runs
   from one epoch end to the next, taken by a clock callback placed *last*, so it includes
   the epoch-end work of the probe (MarginMonitor embeds its probe there). The clock has
   no batch hook: a run without a probe keeps Keras's asynchronous dispatch. Per
   repetition: median epoch time of the variant / that of "none"; quoted: the median of
   those ratios (target ≤ 1.10).
2. the memory of a 10-epoch trace: a WeightTrace driven through its hooks on the same
   model for 10 epochs of the same number of steps (weights held fixed: the size of a trace
   does not depend on the values), recording per epoch (the default), every 10 steps, and
   every step at the default cap `max_records`; what every step would need without a cap
   is computed (records × bytes per record). Sizes are the bytes of the per-record arrays
   of `as_dict()` (what `save` writes), bounded by max_records × bytes per record.
Writes `results/callback_overhead.json`, `results/callback_overhead.md` and
`results/callback_overhead.png`.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, environment, mean_std, write_json, write_text  # noqa: E402
from benchmarks.lenet_baseline import RECIPE  # noqa: E402
from callbacks import MarginMonitor, WeightTrace  # noqa: E402
from zoo import datasets, train  # noqa: E402
from zoo.training.tasks import classification  # noqa: E402

DATASET = "mnist"
TARGET = 1.10
PROBE_LAYER = "f6"  # lenet5 has no "embedding" layer: its 84-D penultimate features
DEFAULT_CAP = inspect.signature(WeightTrace).parameters["max_records"].default
VARIANTS = {
    "none": lambda probe: [],
    "WeightTrace()": lambda probe: [WeightTrace()],
    "WeightTrace(every_n_batches=10)": lambda probe: [WeightTrace(every_n_batches=10)],
    "MarginMonitor(validation probe)": lambda probe: [
        MarginMonitor(probe=probe, probe_source="validation", layer_name=PROBE_LAYER)],
}
MEMORY_CONFIGS = {
    "per epoch (default)": dict(),
    "every_n_batches=10": dict(every_n_batches=10),
    f"every_n_batches=1, max_records={DEFAULT_CAP} (default cap)": dict(every_n_batches=1),
}
UNCAPPED = "every_n_batches=1, no cap (computed)"
RECORD_KEYS = ("step", "epoch", "update", "relative_update", "norm", "sparsity",
               "tracked_values")


class EpochClock(keras.callbacks.Callback):
    """perf_counter at train begin and at every epoch end (epoch hooks only, no batch hook)."""

    def on_train_begin(self, logs=None):
        self.times = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter())

    def epoch_seconds(self):
        return np.diff(self.times)


def new_model(seed, epochs, steps):
    config = train.TrainConfig(dataset=DATASET, seed=seed, epochs=epochs, **RECIPE)
    keras.utils.set_random_seed(seed)
    model = classification.build_model(config, 10, (28, 28, 1))
    return classification.compile_model(model, config, 10, steps)


def steady_epoch_seconds(variant, data, probe, epochs, seed):
    """Seconds of epochs 2..E of one fit with the variant's callbacks (epoch 1 left out)."""
    x, y = data
    steps = int(np.ceil(len(y) / RECIPE["batch_size"]))
    model = new_model(seed, epochs, steps)
    clock = EpochClock()
    model.fit(x, y, batch_size=RECIPE["batch_size"], epochs=epochs, shuffle=True, verbose=0,
              callbacks=[*VARIANTS[variant](probe), clock])
    return clock.epoch_seconds()[1:].tolist()


def overhead(data, probe, epochs, reps, seed):
    names = list(VARIANTS)
    # The first fit of a process runs slower even past its first epoch: warm up untimed.
    steady_epoch_seconds("none", data, probe, 2, seed)
    seconds = {name: [] for name in names}  # per rep: list of steady epoch seconds
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            seconds[name].append(steady_epoch_seconds(name, data, probe, epochs, seed))
            print(f"rep {rep} {name:<34} epochs {np.round(seconds[name][-1], 3).tolist()} s",
                  flush=True)
    steps = int(np.ceil(len(data[1]) / RECIPE["batch_size"]))
    base = [np.median(s) for s in seconds["none"]]
    results = {}
    for name in names:
        medians = [float(np.median(s)) for s in seconds[name]]
        ratios = [m / b for m, b in zip(medians, base)]
        results[name] = {
            "epoch_seconds": seconds[name],
            "median_epoch_seconds_per_rep": medians,
            "median_epoch_seconds": float(np.median(medians)),
            "median_step_ms": 1000 * float(np.median(medians)) / steps,
            "ratio_per_rep": ratios,
            "ratio": float(np.median(ratios)),
            "ratio_stats": mean_std(ratios),
        }
    return results, steps


def trace_memory(model, steps_per_epoch, epochs, **kwargs):
    """Drive a WeightTrace through `epochs` epochs of hooks; the size of what it keeps."""
    trace = WeightTrace(**kwargs)
    trace.set_model(model)
    started = time.perf_counter()
    trace.on_train_begin()
    for epoch in range(epochs):
        trace.on_epoch_begin(epoch)
        if trace.every_n_batches:
            for batch in range(steps_per_epoch):
                trace.on_train_batch_end(batch)
        trace.on_epoch_end(epoch, {})
    seconds = time.perf_counter() - started
    data = trace.as_dict()
    variables, tracked = len(data["variables"]), len(data["tracked_index"])
    per_record = 8 * (2 + 4 * variables + tracked)  # step, epoch; 4 measures; tracked values
    return {
        "config": dict(kwargs),
        "records": int(len(data["step"])),
        "last_step": int(data["step"][-1]),
        "stride": int(data["stride"]),
        "max_records": int(data["max_records"]),
        "record_bytes": int(sum(np.asarray(data[k]).nbytes for k in RECORD_KEYS)),
        "bytes_per_record": per_record,
        "record_bytes_bound": per_record * int(data["max_records"]),
        "total_bytes": int(sum(np.asarray(v).nbytes for v in data.values())),
        "device_weight_copy_bytes": 4 * int(np.sum(data["sizes"])),
        "seconds_to_drive": seconds,
    }


def memory(steps_per_epoch, epochs, seed):
    """Traces driven for `epochs` epochs, plus what every step without a cap would need."""
    model = new_model(seed, epochs, steps_per_epoch)
    found = {}
    for label, kwargs in MEMORY_CONFIGS.items():
        found[label] = m = trace_memory(model, steps_per_epoch, epochs, **kwargs)
        print(f"memory {label:<44} {m['records']:>5} records {m['record_bytes']:>10} B "
              f"({m['seconds_to_drive']:.1f} s to drive)", flush=True)
    # Without a cap every step is kept: record 0 + one per step, each of the same size
    # (tests/test_callbacks_integration.py checks record_bytes = records × bytes_per_record).
    capped = found[f"every_n_batches=1, max_records={DEFAULT_CAP} (default cap)"]
    records = 1 + epochs * steps_per_epoch
    found[UNCAPPED] = {
        "config": {"every_n_batches": 1, "max_records": None}, "records": records,
        "last_step": epochs * steps_per_epoch, "stride": 1, "max_records": None,
        "record_bytes": records * capped["bytes_per_record"],
        "bytes_per_record": capped["bytes_per_record"], "record_bytes_bound": None,
        "total_bytes": None, "device_weight_copy_bytes": capped["device_weight_copy_bytes"],
        "seconds_to_drive": None,
    }
    return found


def plot(results, path):
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    names = list(results["overhead"])
    for i, name in enumerate(names):
        r = results["overhead"][name]
        left.bar(i, r["ratio"], color="tab:blue" if name != "none" else "tab:gray", alpha=0.7)
        left.plot([i] * len(r["ratio_per_rep"]), r["ratio_per_rep"], "k.", ms=6)
        left.annotate(f"{r['ratio']:.3f}", (i, r["ratio"]), ha="center", va="bottom",
                      xytext=(0, 3), textcoords="offset points", fontsize=8)
    left.axhline(1.0, color="k", lw=0.8)
    left.axhline(TARGET, color="tab:red", ls="--", lw=1, label=f"target ≤ {TARGET:.2f}")
    left.set_xticks(range(len(names)), [n.replace("(", "\n(") for n in names], fontsize=8)
    left.set(ylabel="epoch time / epoch time without probe",
             title="training time ratio (bars: median, dots: repetitions)")
    left.legend()
    left.grid(axis="y", alpha=0.3)

    labels = list(results["memory"])
    values = [results["memory"][k]["record_bytes"] for k in labels]
    for i, label in enumerate(labels):
        computed = label == UNCAPPED
        right.bar(i, values[i], color="tab:gray" if computed else "tab:green", alpha=0.7,
                  hatch="//" if computed else None)
    for i, label in enumerate(labels):
        right.annotate(f"{results['memory'][label]['records']} records", (i, values[i]),
                       ha="center", va="bottom", xytext=(0, 3), textcoords="offset points",
                       fontsize=8)
    bound = results["memory"][labels[0]]["bytes_per_record"] * DEFAULT_CAP
    right.axhline(bound, color="tab:red", ls="--", lw=1,
                  label=f"max_records × bytes per record ({DEFAULT_CAP} records)")
    ticks = [k.replace(", ", ",\n").replace(" (", "\n(") for k in labels]
    right.set_xticks(range(len(labels)), ticks, fontsize=8)
    right.set(yscale="log", ylabel="bytes of the trace's record arrays",
              title=f"WeightTrace memory after {results['memory_epochs']} epochs "
                    f"({results['steps_per_epoch']} steps each)")
    right.legend(fontsize="small", loc="upper left")
    right.grid(axis="y", alpha=0.3)
    fig.suptitle("Probe overhead, LeNet-5 on MNIST (benchmarks/callback_overhead.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(results):
    steps = results["steps_per_epoch"]
    lines = [f"| callbacks | median epoch (s) | median step (ms) | ratio to none (median of "
             f"{results['reps']} reps) | per-rep ratios | ≤ {TARGET:.2f} |",
             "|---|---|---|---|---|---|"]
    for name, r in results["overhead"].items():
        reps = ", ".join(f"{v:.3f}" for v in r["ratio_per_rep"])
        ok = "" if name == "none" else ("yes" if r["ratio"] <= TARGET else "**no**")
        lines.append(f"| {name} | {r['median_epoch_seconds']:.3f} | {r['median_step_ms']:.2f} | "
                     f"{r['ratio']:.3f} | {reps} | {ok} |")
    lines += ["", f"{steps} steps per epoch; epochs 2–{results['epochs']} of every fit timed.",
              "", f"WeightTrace memory after {results['memory_epochs']} epochs of {steps} steps "
              f"(default cap max_records = {DEFAULT_CAP}):", "",
              "| trace | records | stride | record arrays (bytes) | bound max_records × "
              "bytes/record | all arrays (bytes) | host copy of the weights (bytes) |",
              "|---|---|---|---|---|---|---|"]
    for label, m in results["memory"].items():
        bound, total = m["record_bytes_bound"], m["total_bytes"]
        lines.append(f"| {label} | {m['records']} | {m['stride']} | {m['record_bytes']:,} | "
                     f"{'no cap' if bound is None else f'{bound:,}'} | "
                     f"{'—' if total is None else f'{total:,}'} | "
                     f"{m['device_weight_copy_bytes']:,} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4,
                        help="epochs per fit (>= 2; the first is not timed)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=None, help="smoke runs only")
    parser.add_argument("--probe-limit", type=int, default=None,
                        help="validation images given to MarginMonitor (it keeps at most "
                        "its max_samples); smoke runs only")
    parser.add_argument("--memory-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error(f"--epochs must be >= 2 (the first epoch is not timed), got {args.epochs}")
    if args.reps < 1 or args.memory_epochs < 1:
        parser.error("--reps and --memory-epochs must be >= 1")

    common = dict(validation_split=RECIPE["validation_split"], seed=args.seed)
    x, y = datasets.load(DATASET, "train", limit=args.train_limit, **common)
    x_val, y_val = datasets.load(DATASET, "validation", limit=args.probe_limit, **common)
    results = {
        "recipe": {**RECIPE, "model": "lenet5", "dataset": DATASET,
                   "optimizer": "Adam, cosine decay", "train_samples": int(len(y))},
        "environment": environment(), "seed": args.seed, "epochs": args.epochs,
        "reps": args.reps, "target_ratio": TARGET, "weight_trace_default_max_records":
            DEFAULT_CAP,
        "margin_monitor": {"probe_source": "validation", "probe_samples": int(len(y_val)),
                           "layer_name": PROBE_LAYER},
        "timing": "epoch time = gap between successive epoch ends (clock callback last, "
                  "no batch hook); first epoch of every fit excluded; ratio = median over "
                  "repetitions of (median epoch time of the variant / that of 'none')",
    }
    results["overhead"], results["steps_per_epoch"] = overhead(
        (x, y), (x_val, y_val), args.epochs, args.reps, args.seed)
    results["ratios"] = {name: r["ratio"] for name, r in results["overhead"].items()
                         if name != "none"}
    results["memory_epochs"] = args.memory_epochs
    results["memory"] = memory(results["steps_per_epoch"], args.memory_epochs, args.seed)

    write_json("callback_overhead", results, args.results_dir)
    write_text("callback_overhead.md", markdown(results), args.results_dir)
    plot(results, args.results_dir / "callback_overhead.png")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
