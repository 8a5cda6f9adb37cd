"""Denoising losses on the same U-Net: MSE, BCE, SSIM, MS-SSIM + L1 (Zhao et al. 2017), −PSNR.

    python benchmarks/reconstruction.py [--dataset fashion_mnist] [--seeds 0 1 2]
        [--epochs 5] [--train-limit 10000] [--noise gaussian --noise-level 0.3]

Each loss trains `unet_denoiser` (widths `--widths`, default 16 32 64) through `zoo.train`
(task `reconstruction`) on the same images, noise, seeds and budget (Adam with cosine decay,
batch 64), and is scored on the same fixed noisy test set (all 10,000 test images): PSNR and
SSIM per image, averaged. Reported: each loss's mean ± standard deviation over seeds; the
noisy input's PSNR/SSIM; each SSIM-based loss's SSIM minus MSE's (± standard error), the
paper's claim being that SSIM-based losses win on SSIM; the target PSNR ≥ 24 dB for the best
loss (#12, Gaussian σ = 0.3 on Fashion-MNIST). Every run is a folder under `--work`
(default `runs/reconstruction`), so an interrupted benchmark resumes, and the runs of an
existing results file made with the same settings are read back, so a new loss or seed
joins the table without training the others again. Writes
`results/NAME.json`, `.md`, `.png` (PSNR and SSIM per loss) and `NAME_gallery.png` (the same
test images denoised by each loss, seed 0); NAME is `reconstruction` for Fashion-MNIST and
`reconstruction_DATASET` for another dataset (`--name` overrides), e.g.

    python benchmarks/reconstruction.py --dataset cifar10
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import (RESULTS, difference, environment, format_mean_std,  # noqa: E402
                               mean_std, write_results)
from zoo import datasets, train  # noqa: E402
from zoo.datasets.noise import add_noise  # noqa: E402
from zoo.training.tasks.reconstruction import TEST_NOISE_SEED  # noqa: E402
from zoo.training.tasks.reconstruction import plot_gallery as reconstruction_gallery  # noqa: E402

LOSSES = ("mse", "bce", "ssim", "mix", "psnr")
TARGET_PSNR = 24.0
TARGET_SETTING = ("fashion_mnist", "gaussian", 0.3)  # the setting the target is set for
REPO = Path(__file__).resolve().parents[1]


def run_folder(args, loss, seed):
    return args.work / f"{args.dataset}-{args.noise}-{loss}-{seed}"


def one_run(args, loss, seed):
    config = train.TrainConfig(
        model="unet_denoiser", dataset=args.dataset, loss=loss, seed=seed, epochs=args.epochs,
        batch_size=64, learning_rate=args.learning_rate, train_limit=args.train_limit,
        test_limit=args.test_limit, validation_split=0.0, out=str(run_folder(args, loss, seed)),
        resume=True, verbose=2, data_dir=args.data_dir,
        options={"noise": args.noise, "noise_level": args.noise_level,
                 "model_kwargs": {"widths": tuple(args.widths), "blocks": args.blocks}})
    metrics = train.run(config)
    return {"seed": seed, **{k: metrics[k] for k in ("test_psnr", "test_ssim", "input_psnr",
                                                     "input_ssim", "wall_seconds")}}


def stored_runs(path, settings) -> dict:
    """{loss: {seed: row}} of an earlier results file made with the same `settings` (seeds
    apart), so that a new loss or seed joins the table without training the others again;
    {} when there is none or its settings differ. Files from before `blocks` had one."""
    if not path.exists():
        return {}
    earlier = json.loads(path.read_text())
    kept = {"blocks": 1, **{k: v for k, v in earlier.get("settings", {}).items()
                            if k != "seeds"}}
    if kept != settings:
        print(f"{path.name} was made with other settings: its runs are not reused")
        return {}
    return {loss: {row["seed"]: row for row in row_set["runs"]}
            for loss, row_set in earlier["table"].items()}


def summarise(runs):
    table = {loss: {"psnr": mean_std([r["test_psnr"] for r in rows]),
                    "ssim": mean_std([r["test_ssim"] for r in rows]),
                    "wall_seconds": float(np.median([r["wall_seconds"] for r in rows])),
                    "runs": rows} for loss, rows in runs.items()}
    if "mse" in table:
        for loss, row in table.items():
            if loss != "mse":
                for metric in ("psnr", "ssim"):
                    gain, error = difference(row[metric], table["mse"][metric])
                    row[f"{metric}_minus_mse"] = {"mean": gain, "standard_error": error}
    return table


def markdown(results):
    s = results["settings"]
    first = next(iter(results["table"].values()))["runs"][0]
    lines = ["# Denoising losses on one U-Net", "",
             f"Produced by `benchmarks/reconstruction.py`. `unet_denoiser` (widths "
             f"{s['widths']}, {s.get('blocks', 1)} residual block(s) per stage) on "
             f"{s['dataset']} ({s['train_limit'] or 'all'} training images, "
             f"{s['epochs']} epochs, batch 64, Adam {s['learning_rate']:g} cosine-decayed), "
             f"{s['noise']} noise {s['noise_level']:g}, seeds {s['seeds']}; scored on the "
             f"{s['test_images']} test images with the same fixed noise. Mean ± standard "
             f"deviation over seeds. Noisy input: PSNR {first['input_psnr']:.2f} dB, SSIM "
             f"{first['input_ssim']:.4f}. Machine: {results['environment']['cpu_count']} CPUs.",
             "", "| loss | PSNR (dB) | SSIM | SSIM − MSE's (± s.e.) | PSNR − MSE's | s / run |",
             "|---|---|---|---|---|---|"]
    for loss, row in results["table"].items():
        cells = []
        for key, digits in (("ssim_minus_mse", 4), ("psnr_minus_mse", 2)):
            d = row.get(key)
            cells.append("–" if d is None else
                         f"{d['mean']:+.{digits}f} ± {d['standard_error']:.{digits}f}")
        lines.append(f"| {loss} | {format_mean_std(row['psnr'], 2)} | "
                     f"{format_mean_std(row['ssim'], 4)} | {cells[0]} | {cells[1]} | "
                     f"{row['wall_seconds']:.0f} |")
    verdict = results["verdict"]
    target = ("no target is set for this setting" if verdict["target_met"] is None else
              f"target ≥ {TARGET_PSNR:g} dB {'met' if verdict['target_met'] else 'not met'}")
    lines += ["", f"Best PSNR: {verdict['best_loss']} at {verdict['best_psnr']:.2f} dB; "
                  f"{target}.",
              f"SSIM-based losses ahead of MSE on SSIM by more than 2 standard errors: "
              f"{', '.join(verdict['ssim_losses_ahead']) or 'none'} (of "
              f"{', '.join(verdict['ssim_losses']) or 'none run'}).", ""]
    return "\n".join(lines)


def plot(results, path):
    losses = list(results["table"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
        means = [results["table"][l][metric]["mean"] for l in losses]
        stds = [results["table"][l][metric]["std"] for l in losses]
        ax.bar(losses, means, yerr=stds, capsize=4, color="tab:blue")
        low = min(m - s for m, s in zip(means, stds))
        high = max(m + s for m, s in zip(means, stds))
        ax.set_ylim(low - 0.3 * (high - low + 1e-3), high + 0.3 * (high - low + 1e-3))
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
    if results["verdict"]["target_psnr"] is not None:
        axes[0].axhline(TARGET_PSNR, color="red", ls="--", lw=0.8)
    fig.suptitle(f"Denoising {results['settings']['dataset']}, "
                 f"{results['settings']['noise']} {results['settings']['noise_level']:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_gallery(args, losses, seed, path, count=8):
    """The same noisy test images denoised by each loss's model (seed `seed`)."""
    test = datasets.load(args.dataset, "test", limit=count, data_dir=args.data_dir)
    noisy = add_noise(test.x, args.noise, args.noise_level,
                      np.random.default_rng(TEST_NOISE_SEED))[:count]
    rows = [("noisy", noisy)]
    for loss in losses:
        model = keras.saving.load_model(run_folder(args, loss, seed) / "model.keras")
        rows.append((loss, np.asarray(model.predict(noisy, verbose=0))))
    rows.append(("clean", test.x[:count]))
    return reconstruction_gallery(rows, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--losses", nargs="+", default=list(LOSSES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--train-limit", type=int, default=10000)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--noise", default="gaussian", choices=("gaussian", "salt_pepper"))
    parser.add_argument("--noise-level", type=float, default=0.3)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--blocks", type=int, default=1,
                        help="residual blocks per U-Net stage (default 1)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "reconstruction")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--name", default=None,
                        help="result file stem (default: reconstruction for Fashion-MNIST, "
                             "reconstruction_DATASET for another dataset)")
    args = parser.parse_args(argv)
    name = args.name or ("reconstruction" if args.dataset == "fashion_mnist"
                         else f"reconstruction_{args.dataset}")
    is_target = (args.dataset, args.noise, args.noise_level) == TARGET_SETTING
    test_images = len(datasets.load(args.dataset, "test", limit=args.test_limit,
                                     data_dir=args.data_dir).y)
    settings = {"dataset": args.dataset, "epochs": args.epochs,
                "learning_rate": args.learning_rate, "train_limit": args.train_limit,
                "test_images": test_images, "noise": args.noise,
                "noise_level": args.noise_level, "widths": args.widths, "blocks": args.blocks}
    stored = stored_runs(args.results_dir / f"{name}.json", settings)
    runs = {}
    for loss in dict.fromkeys([*stored, *args.losses]):  # stored losses first, then new ones
        rows = dict(stored.get(loss, {}))
        for seed in (args.seeds if loss in args.losses else []):
            if seed not in rows:
                rows[seed] = one_run(args, loss, seed)
        runs[loss] = [rows[seed] for seed in sorted(rows)]
    table = summarise(runs)
    best = max(table, key=lambda loss: table[loss]["psnr"]["mean"])
    ssim_losses = [loss for loss in table if loss in ("ssim", "ms_ssim", "mix")]
    ahead = [loss for loss in ssim_losses if "ssim_minus_mse" in table[loss]
             and table[loss]["ssim_minus_mse"]["mean"]
             > 2 * table[loss]["ssim_minus_mse"]["standard_error"]]
    seeds = sorted({row["seed"] for rows in runs.values() for row in rows})
    results = {"environment": environment(),
               "settings": {**settings, "seeds": seeds},
               "table": table,
               "verdict": {"best_loss": best, "best_psnr": table[best]["psnr"]["mean"],
                           "target_psnr": TARGET_PSNR if is_target else None,
                           "target_met": (bool(table[best]["psnr"]["mean"] >= TARGET_PSNR)
                                          if is_target else None),
                           "ssim_losses": ssim_losses, "ssim_losses_ahead": ahead}}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    write_results(name, results, markdown, plot, args.results_dir)
    missing = [loss for loss in table
               if not (run_folder(args, loss, seeds[0]) / "model.keras").exists()]
    if missing:  # read back from the results file: their models are not here to draw
        print(f"gallery not redrawn: no run folder of seed {seeds[0]} for {', '.join(missing)}")
    else:
        plot_gallery(args, list(table), seeds[0], args.results_dir / f"{name}_gallery.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
