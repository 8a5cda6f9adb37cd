"""CTC and the CRNN: what `losses.CTCLoss` costs over the bare Keras call, how well
crnn_small reads synthetic text after a stated CPU budget, and greedy against beam decoding.

    python benchmarks/crnn_ctc.py [--epochs 18] [--train-limit 12800] [--batch-size 32]

Defaults: 18 epochs x 12,800 new lines, batch 32, Adam 2e-3 with cosine decay: 7,200 steps,
about 23 minutes of training on 2 CPU cores (~175 lines/s), about 28 minutes in all.

Measures:
1. loss cost: forward + backward (gradient w.r.t. the logits) of
   `CTCLoss(zero_infinity=True)` on padded labels against the bare `keras.ops.ctc_loss`
   call on the same labels already in its form (padding 0, lengths precomputed), batch
   mean, on fixed logits of a CRNN's shape (B=64, T=32, C=37; labels of 4-10 characters),
   eagerly, as a graph (tf.function) and under XLA (jit_compile; JAX: eager and jax.jit).
   Labels and logits are arguments of the timed function, as in a compiled train step.
   Each repetition times `--loss-calls` calls of each variant, one call of each in turn
   (alternating which goes first), after untimed warm-up calls; per repetition the ratio
   of the median call times (ours / raw); quoted the median ratio over repetitions
   (target ≤ 1.05).
2. training: crnn_small on `synth_text` through `zoo.training.tasks.text.run` (new lines every
   epoch, Adam with cosine decay, CTCLoss(zero_infinity=True)); the budget is epochs ×
   lines per epoch on this machine's CPUs, stated in the results with the wall time.
   Quoted: test CER and sequence accuracy, greedy and beam (target CER ≤ 2 % on 4-10
   characters), and the CER curve over the epochs.
3. decoding: the trained model's test logits (computed once) decoded greedily and by
   prefix beam search at several widths: CER, sequence accuracy and ms per line (median of
   `--decode-reps` interleaved repetitions).
Writes `results/crnn_ctc.json`, `results/crnn_ctc.md` and `results/crnn_ctc.png`; the
training run folder (model, history, gallery) goes to `--run-dir`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from benchmarks.common import RESULTS, environment, mean_std, write_json, write_text  # noqa: E402
from losses.sequence import BLANK_INDEX, PAD_VALUE, CTCLoss  # noqa: E402
from zoo import train  # noqa: E402
from zoo.training.run_folder import read_history  # noqa: E402
from zoo.training.tasks import text as text_train  # noqa: E402
from zoo.datasets.text import synthetic_text_set  # noqa: E402
from zoo.evaluation.text import character_error_rate, sequence_accuracy  # noqa: E402

LOSS_TARGET = 1.05
CER_TARGET = 0.02
REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ 1. loss cost

def loss_inputs(batch, frames, classes, seed, min_length=4, max_length=10):
    """Fixed logits (B, T, C), padded labels (-1) and the raw call's form of the same labels
    (padding 0, lengths), all labels feasible (L + repeats <= T)."""
    if 2 * max_length + 1 > frames:
        raise ValueError(f"--frames {frames} is too few for labels of up to {max_length} "
                         f"characters (needs >= {2 * max_length + 1})")
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, size=(batch, frames, classes)).astype(np.float32)
    lengths = rng.integers(min_length, max_length + 1, size=batch).astype(np.int32)
    labels = np.full((batch, max_length), PAD_VALUE, np.int32)
    for row, length in enumerate(lengths):
        labels[row, :length] = rng.integers(1, classes, size=length)
    targets = np.where(labels == PAD_VALUE, BLANK_INDEX, labels).astype(np.int32)
    return logits, labels, targets, lengths


def ours_loss(labels, logits):
    return CTCLoss(zero_infinity=True)(labels, logits)


def raw_loss(targets, target_length, logits):
    frames = keras.ops.ones_like(target_length) * keras.ops.shape(logits)[1]
    per_sample = keras.ops.ctc_loss(targets, logits, target_length, frames,
                                    mask_index=BLANK_INDEX)
    return keras.ops.mean(per_sample)


def loss_steps(mode):
    """{"ours": f(labels, logits), "raw": f(targets, lengths, logits)} -> (loss, gradient)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        def with_gradient(loss_fn):
            def step(*args):
                *labels, logits = args
                with tf.GradientTape() as tape:
                    tape.watch(logits)
                    loss = loss_fn(*labels, logits)
                return loss, tape.gradient(loss, logits)
            if mode == "graph":
                return tf.function(step)
            if mode == "jit":
                return tf.function(step, jit_compile=True)
            return step
    elif backend == "jax":
        import jax

        def with_gradient(loss_fn):
            def step(*args):
                *labels, logits = args
                return jax.value_and_grad(lambda z: loss_fn(*labels, z))(logits)
            return jax.jit(step) if mode == "jit" else step
    else:
        raise ValueError(f"the loss timing supports the tensorflow and jax backends; the "
                         f"backend is {backend!r}")
    return {"ours": with_gradient(ours_loss), "raw": with_gradient(raw_loss)}


def loss_modes():
    return ("eager", "graph", "jit") if keras.backend.backend() == "tensorflow" else (
        "eager", "jit")


def _block(value):
    """Wait for the backend to finish computing `value` (asynchronous dispatch)."""
    for leaf in keras.tree.flatten(value):
        keras.ops.convert_to_numpy(leaf)


def time_calls(step, args, calls):
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        _block(step(*args))
        seconds.append(time.perf_counter() - started)
    return seconds


def loss_timing(batch, frames, classes, reps, calls, seed):
    """Per mode: median call seconds of each variant per repetition and their ratios."""
    logits, labels, targets, lengths = loss_inputs(batch, frames, classes, seed)
    tensors = {k: keras.ops.convert_to_tensor(v) for k, v in
               dict(logits=logits, labels=labels, targets=targets, lengths=lengths).items()}
    arguments = {"ours": (tensors["labels"], tensors["logits"]),
                 "raw": (tensors["targets"], tensors["lengths"], tensors["logits"])}
    results = {}
    for mode in loss_modes():
        steps = loss_steps(mode)
        values = {}
        for name, step in steps.items():  # warm-up: tracing / compilation, untimed
            values[name] = [keras.ops.convert_to_numpy(v) for v in step(*arguments[name])]
            time_calls(step, arguments[name], 2)
        medians = {name: [] for name in steps}
        for rep in range(reps):
            seconds = {name: [] for name in steps}
            for call in range(calls):  # call by call, alternating: load drifts hit both
                order = list(steps) if (rep + call) % 2 == 0 else list(steps)[::-1]
                for name in order:
                    seconds[name] += time_calls(steps[name], arguments[name], 1)
            for name in steps:
                medians[name].append(float(np.median(seconds[name])))
        ratios = [o / r for o, r in zip(medians["ours"], medians["raw"])]
        results[mode] = {
            "ours_ms": [1000 * s for s in medians["ours"]],
            "raw_ms": [1000 * s for s in medians["raw"]],
            "ours_median_ms": 1000 * float(np.median(medians["ours"])),
            "raw_median_ms": 1000 * float(np.median(medians["raw"])),
            "ratio_per_rep": ratios, "ratio": float(np.median(ratios)),
            "ratio_stats": mean_std(ratios),
            "target_met": bool(np.median(ratios) <= LOSS_TARGET),
            # the two variants compute the same thing: checked on every run
            "max_abs_loss_difference": float(abs(values["ours"][0] - values["raw"][0])),
            "max_abs_gradient_difference": float(np.max(np.abs(values["ours"][1]
                                                               - values["raw"][1]))),
        }
        r = results[mode]
        print(f"loss {mode:<5} ours {r['ours_median_ms']:.2f} ms, raw {r['raw_median_ms']:.2f} "
              f"ms, ratio {r['ratio']:.3f} (reps {np.round(ratios, 3).tolist()})", flush=True)
    return results


# ------------------------------------------------------------------ 2. training

def train_crnn(args):
    config = train.TrainConfig(
        model="crnn_small", dataset=text_train.SYNTH_TEXT, loss="ctc", epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
        out=str(args.run_dir), validation_split=args.validation_split,
        train_limit=args.train_limit, test_limit=args.test_limit, verbose=2)
    started = time.perf_counter()
    metrics = train.run(config)
    seconds = time.perf_counter() - started
    history = read_history(Path(args.run_dir) / "history.csv")
    greedy, beam = metrics["decoding"]["greedy"], metrics["decoding"]["beam"]
    return {
        "config": config.to_json(),
        "budget": {"epochs": args.epochs,
                   "lines_per_epoch": metrics["data"]["train_lines_per_epoch"],
                   "lines_seen": args.epochs * metrics["data"]["train_lines_per_epoch"],
                   "cpu_count": os.cpu_count(), "train_wall_seconds": metrics["wall_seconds"],
                   "total_seconds": seconds},
        "epoch_seconds": metrics["epoch_seconds"],
        "train_samples_per_second": metrics["train_samples_per_second"],
        "parameters": metrics["parameters"],
        "test_lines": metrics["data"]["test_lines"],
        "test_cer": greedy["cer"], "test_sequence_accuracy": greedy["sequence_accuracy"],
        "test_cer_beam": beam["cer"], "test_sequence_accuracy_beam": beam["sequence_accuracy"],
        "beam_width": metrics["beam_width"],
        "target_met": bool(greedy["cer"] <= CER_TARGET),
        "history": history,
        "run_dir": _display_path(args.run_dir),
    }


def _display_path(path):
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


# ------------------------------------------------------------------ 3. decoding

def decoding(run_dir, seed, test_limit, decode_limit, widths, reps):
    """Greedy and beam decoding of the trained model's test logits: accuracy and time."""
    model = keras.saving.load_model(Path(run_dir) / "model.keras")
    test = synthetic_text_set(test_limit, seed=(seed, text_train.TEST_STREAM))
    count = min(len(test), decode_limit or len(test))
    logits = model.predict(test.x[:count], batch_size=text_train.EVAL_BATCH_SIZE, verbose=0)
    truths = list(test.texts[:count])
    variants = [("greedy", None)] + [("beam", int(w)) for w in widths]
    seconds = {v: [] for v in variants}
    texts = {}
    for rep in range(reps):
        order = variants if rep % 2 == 0 else variants[::-1]
        for strategy, width in order:
            read, spent = text_train.read_lines(None, None, test.charset, strategy,
                                                width or 1, logits)
            seconds[(strategy, width)].append(spent)
            texts[(strategy, width)] = read
    results = {}
    for strategy, width in variants:
        name = strategy if width is None else f"beam{width}"
        read = texts[(strategy, width)]
        results[name] = {
            "strategy": strategy, "beam_width": width,
            "cer": character_error_rate(truths, read),
            "sequence_accuracy": sequence_accuracy(truths, read),
            "ms_per_line": 1000 * float(np.median(seconds[(strategy, width)])) / count,
            "ms_per_line_per_rep": [1000 * s / count for s in seconds[(strategy, width)]],
        }
        r = results[name]
        print(f"decode {name:<7} CER {r['cer']:.4f}, sequence accuracy "
              f"{r['sequence_accuracy']:.4f}, {r['ms_per_line']:.3f} ms/line", flush=True)
    return {"lines": count, "reps": reps, "variants": results}


# ------------------------------------------------------------------ report

def plot(results, path):
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.5))
    modes = list(results["loss_timing"])
    for i, mode in enumerate(modes):
        r = results["loss_timing"][mode]
        left.bar(i, r["ratio"], color="tab:blue", alpha=0.7)
        left.plot([i] * len(r["ratio_per_rep"]), r["ratio_per_rep"], "k.", ms=6)
        left.annotate(f"{r['ratio']:.3f}\n({r['raw_median_ms']:.1f} ms raw)",
                      (i, r["ratio"]), ha="center", va="bottom", xytext=(0, 3),
                      textcoords="offset points", fontsize=8)
    left.axhline(1.0, color="k", lw=0.8)
    left.axhline(LOSS_TARGET, color="tab:red", ls="--", lw=1, label=f"target ≤ {LOSS_TARGET}")
    shape = results["loss_shape"]
    highest = max(max(r["ratio_per_rep"]) for r in results["loss_timing"].values())
    left.set_ylim(0, 1.25 * max(highest, LOSS_TARGET))
    left.set_xticks(range(len(modes)), modes)
    left.set(ylabel="CTCLoss time / keras.ops.ctc_loss time",
             title=f"forward + backward, B={shape['batch']} T={shape['frames']} "
                   f"C={shape['classes']}\n(bars: median, dots: repetitions)")
    left.legend(loc="lower right")
    left.grid(axis="y", alpha=0.3)

    t = results["training"]
    history = t["history"]
    epochs = np.arange(1, len(history["cer"]) + 1)
    middle.plot(epochs, np.maximum(history["cer"], 1e-4), marker="o", label="train (greedy)")
    if "val_cer" in history:
        middle.plot(epochs, np.maximum(history["val_cer"], 1e-4), marker="o",
                    label="validation (greedy)")
    middle.plot([epochs[-1]], [max(t["test_cer"], 1e-4)], "r*", ms=12,
                label=f"test {100 * t['test_cer']:.2f} %")
    middle.axhline(CER_TARGET, color="tab:red", ls="--", lw=1, label=f"target ≤ {CER_TARGET:.0%}")
    middle.set(yscale="log", xlabel="epoch", ylabel="character error rate",
               title=f"crnn_small on synth_text: {t['budget']['lines_seen']:,} lines, "
                     f"{t['budget']['train_wall_seconds'] / 60:.1f} min on "
                     f"{t['budget']['cpu_count']} CPUs")
    if len(epochs) <= 20:
        middle.set_xticks(epochs)
    else:
        middle.xaxis.set_major_locator(MaxNLocator(integer=True))
    middle.grid(alpha=0.3, which="both")
    middle.legend(fontsize="small")

    d = results["decoding"]["variants"]
    names = list(d)
    x = np.arange(len(names))
    right.bar(x - 0.2, [100 * d[n]["cer"] for n in names], 0.4, label="CER %", color="tab:orange")
    right.bar(x + 0.2, [100 * (1 - d[n]["sequence_accuracy"]) for n in names], 0.4,
              label="sequence error %", color="tab:purple")
    right.set_xticks(x, [f"{n}\n{d[n]['ms_per_line']:.2f} ms/line" for n in names],
                     fontsize=8)
    right.set(ylabel="%", title=f"greedy vs beam decoding ({results['decoding']['lines']} "
                                f"test lines)")
    right.legend(fontsize="small")
    right.grid(axis="y", alpha=0.3)
    fig.suptitle("CTC loss cost, CRNN-small accuracy and decoding (benchmarks/crnn_ctc.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(results):
    shape = results["loss_shape"]
    lines = [f"**Loss cost** (forward + backward, B={shape['batch']}, T={shape['frames']}, "
             f"C={shape['classes']}; median of {results['loss_reps']} interleaved repetitions "
             f"of {results['loss_calls']} calls):", "",
             "| mode | CTCLoss (ms) | keras.ops.ctc_loss (ms) | ratio | per-rep ratios | "
             f"≤ {LOSS_TARGET} |", "|---|---|---|---|---|---|"]
    for mode, r in results["loss_timing"].items():
        reps = ", ".join(f"{v:.3f}" for v in r["ratio_per_rep"])
        lines.append(f"| {mode} | {r['ours_median_ms']:.2f} | {r['raw_median_ms']:.2f} | "
                     f"{r['ratio']:.3f} | {reps} | {'yes' if r['target_met'] else '**no**'} |")
    t = results["training"]
    b = t["budget"]
    lines += ["", f"**crnn_small on synth_text** ({t['parameters']:,} parameters; "
              f"{b['epochs']} epochs × {b['lines_per_epoch']:,} new lines, batch "
              f"{t['config']['batch_size']}, Adam {t['config']['learning_rate']:g} with cosine "
              f"decay; {b['train_wall_seconds'] / 60:.1f} min of training on "
              f"{b['cpu_count']} CPUs; {t['test_lines']:,} test lines of 4–10 characters):", "",
              "| decoding | test CER | test sequence accuracy |", "|---|---|---|",
              f"| greedy | {100 * t['test_cer']:.2f} % | "
              f"{100 * t['test_sequence_accuracy']:.2f} % |",
              f"| beam (width {t['beam_width']}) | {100 * t['test_cer_beam']:.2f} % | "
              f"{100 * t['test_sequence_accuracy_beam']:.2f} % |", "",
              f"Target CER ≤ {CER_TARGET:.0%}: {'met' if t['target_met'] else '**not met**'}. "
              f"Training throughput {t['train_samples_per_second']:.0f} lines/s.", "",
              f"**Decoding** ({results['decoding']['lines']} test lines, logits computed once; "
              f"median of {results['decoding']['reps']} repetitions):", "",
              "| decoder | CER | sequence accuracy | ms per line |", "|---|---|---|---|"]
    for name, r in results["decoding"]["variants"].items():
        lines.append(f"| {name} | {100 * r['cer']:.2f} % | {100 * r['sequence_accuracy']:.2f} % "
                     f"| {r['ms_per_line']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loss-batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--classes", type=int, default=37)
    parser.add_argument("--loss-reps", type=int, default=7)
    parser.add_argument("--loss-calls", type=int, default=20, help="timed calls per repetition")
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--train-limit", type=int, default=12_800,
                        help="new synthetic lines per epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--validation-split", type=float, default=0.05,
                        help="validation lines as a fraction of the lines per epoch")
    parser.add_argument("--test-limit", type=int, default=2000)
    parser.add_argument("--beam-widths", type=int, nargs="+", default=[5, 10, 25, 50])
    parser.add_argument("--decode-limit", type=int, default=500,
                        help="test lines decoded in part 3 (beam search is slow on CPU)")
    parser.add_argument("--decode-reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "benchmarks" / "crnn_ctc",
                        help="training run folder (model, history, gallery)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if min(args.loss_reps, args.loss_calls, args.epochs, args.decode_reps) < 1:
        parser.error("--loss-reps, --loss-calls, --epochs and --decode-reps must be >= 1")

    results = {
        "environment": environment(), "seed": args.seed,
        "loss_shape": {"batch": args.loss_batch, "frames": args.frames,
                       "classes": args.classes, "label_lengths": [4, 10]},
        "loss_reps": args.loss_reps, "loss_calls": args.loss_calls,
        "loss_target_ratio": LOSS_TARGET, "cer_target": CER_TARGET,
        "timing": "per mode and repetition: median seconds of `loss_calls` calls of each "
                  "variant, one call of each in turn (order alternating), after warm-up; "
                  "ratio = median over repetitions of ours / raw",
    }
    print("== 1. CTCLoss against keras.ops.ctc_loss", flush=True)
    results["loss_timing"] = loss_timing(args.loss_batch, args.frames, args.classes,
                                         args.loss_reps, args.loss_calls, args.seed)
    results["loss_ratios"] = {m: r["ratio"] for m, r in results["loss_timing"].items()}
    print("== 2. crnn_small on synth_text", flush=True)
    results["training"] = train_crnn(args)
    print("== 3. greedy against beam decoding", flush=True)
    results["decoding"] = decoding(args.run_dir, args.seed, args.test_limit, args.decode_limit,
                                   args.beam_widths, args.decode_reps)

    write_json("crnn_ctc", results, args.results_dir)
    write_text("crnn_ctc.md", markdown(results), args.results_dir)
    plot(results, args.results_dir / "crnn_ctc.png")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
