"""Training-step time of each reconstruction and box loss against its plain counterpart.

    python benchmarks/loss_step_time.py [--reps 9] [--steps 20]

A loss is only worth its maths if it does not slow training. Each loss trains the model it
is used with, on one fixed batch, and its step time is divided by that of the plain loss on
the same model and batch:

    reconstruction   `unet_denoiser` (widths 16/32/64), 64 Fashion-MNIST-sized images
                     (28 x 28 x 1), the task's losses (`zoo.train --loss`), against MSE;
    boxes            the detector's step 1 (`zoo.create_model("detector")`, 128 px, stride 8,
                     batch 32 synthetic scenes), every `BOX_LOSSES` entry, against IoU.

Steps are timed in rounds (`benchmarks.common.interleaved_step_times`: every model takes
`--steps` steps in turn, the order rotating by round), so a slow spell of the machine falls
on all of them; the ratio is taken per round and its median over `--reps` rounds reported.
The target (#12): every loss within 1.15x its counterpart. Writes
`results/loss_step_time.{json,md,png}`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import (RESULTS, environment, interleaved_step_times,  # noqa: E402
                               write_results)

NAME = "loss_step_time"
TARGET_RATIO = 1.15
RECONSTRUCTION_BASELINE, BOX_BASELINE = "mse", "iou"


def reconstruction_models(widths=(16, 32, 64), batch=64, side=28) -> dict:
    """{loss: (compiled U-Net, batch)} for every reconstruction loss of the task."""
    from zoo.models.autoencoder import unet_denoiser
    from zoo.training.tasks.reconstruction import RECONSTRUCTION_LOSSES, build_loss

    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(batch, side, side, 1)).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, 0.3, clean.shape), 0, 1).astype(np.float32)
    models = {}
    for loss in RECONSTRUCTION_LOSSES:
        keras.utils.set_random_seed(0)
        model = unet_denoiser(input_shape=(side, side, 1), widths=widths)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=build_loss(loss, side))
        models[loss] = (model, (noisy, clean))
    return models


def box_models(image_size=128, batch=32, widths=None, jit_compile=True) -> dict:
    """{box loss: (compiled step-1 detector, batch of synthetic scenes)}; compiled with XLA
    as the detector trains (`jit_compile=False` only to keep smoke tests short)."""
    from zoo.datasets.detection import SyntheticScenes
    from zoo.models.detector import BOX_LOSSES, detector

    scenes = SyntheticScenes(batch, batch_size=batch, image_size=image_size, seed=0,
                             max_size=image_size // 2)
    images, y = scenes[0]
    models = {}
    for loss in BOX_LOSSES:
        keras.utils.set_random_seed(0)
        model = detector(num_classes=5, input_shape=(image_size, image_size, 3),
                         box_loss=loss, **({"widths": widths} if widths else {}))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
        models[loss] = (model, (images, y))
    return models


def ratios(seconds: dict, baseline: str) -> dict:
    """Per loss: median seconds per step and the median over rounds of its round's time
    over the baseline's."""
    reference = np.asarray(seconds[baseline])
    return {name: {"seconds": float(np.median(times)),
                   "ratio": float(np.median(np.asarray(times) / reference)),
                   "rounds": [float(t) for t in times]}
            for name, times in seconds.items()}


def markdown(results) -> str:
    s = results["settings"]
    lines = ["# Step time of each loss against its plain counterpart", "",
             f"Produced by `benchmarks/loss_step_time.py`. One fixed batch per model, "
             f"{s['reps']} interleaved rounds of {s['steps']} steps; ratio = the median over "
             f"rounds of the loss's step time over the counterpart's in the same round. "
             f"Target: ≤ {TARGET_RATIO:g}x. Machine: {results['environment']['cpu_count']} "
             "CPUs.", ""]
    for group, title in (("reconstruction", "U-Net denoiser, against MSE"),
                         ("boxes", "detector step 1, against IoU")):
        lines += [f"## {title}", "", "| loss | ms / step | ratio | within target |",
                  "|---|---|---|---|"]
        for name, row in sorted(results[group].items(), key=lambda kv: kv[1]["ratio"]):
            lines.append(f"| {name} | {1000 * row['seconds']:.1f} | {row['ratio']:.3f} | "
                         f"{'yes' if row['ratio'] <= TARGET_RATIO else 'NO'} |")
        lines.append("")
    slow = [f"{name} ({row['ratio']:.2f}x)" for group in ("reconstruction", "boxes")
            for name, row in results[group].items() if row["ratio"] > TARGET_RATIO]
    lines.append("Every loss within the target." if not slow else
                 "Above the target: " + ", ".join(slow) + ".")
    return "\n".join(lines) + "\n"


def plot(results, path):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, group, title in ((axes[0], "reconstruction", "U-Net, ratio to MSE"),
                             (axes[1], "boxes", "detector step 1, ratio to IoU")):
        names = sorted(results[group], key=lambda n: results[group][n]["ratio"])
        values = [results[group][n]["ratio"] for n in names]
        ax.barh(names, values, color=["tab:red" if v > TARGET_RATIO else "tab:blue"
                                      for v in values])
        ax.axvline(TARGET_RATIO, color="red", ls="--", lw=0.8, label="target")
        ax.axvline(1.0, color="grey", lw=0.6)
        ax.set_title(title)
        ax.set_xlabel("step time ratio (median over rounds)")
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--tiny", action="store_true",
                        help="small models and batches: for smoke tests only")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.reps < 1 or args.steps < 1:
        parser.error("--reps and --steps must be >= 1")
    recon = (reconstruction_models(widths=(4, 8), batch=8, side=16) if args.tiny
             else reconstruction_models())
    boxes = (box_models(image_size=32, batch=4, widths=(4, 8, 8, 8), jit_compile=False)
             if args.tiny else box_models())
    results = {"environment": environment(),
               "settings": {"reps": args.reps, "steps": args.steps, "tiny": args.tiny},
               "reconstruction": ratios(interleaved_step_times(recon, args.reps, args.steps),
                                        RECONSTRUCTION_BASELINE),
               "boxes": ratios(interleaved_step_times(boxes, args.reps, args.steps),
                               BOX_BASELINE)}
    write_results(NAME, results, markdown, plot, args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
