# %% [markdown]
# # Denoising autoencoders: which loss makes a clean image?
#
# **Description:** a residual U-Net learns to remove Gaussian noise from Fashion-MNIST
# images, trained with four losses — mean squared error, binary cross-entropy on pixels,
# 1 − SSIM, and Zhao et al.'s mix of MS-SSIM and L1 — and judged by PSNR (what MSE
# optimises) and SSIM (what the structural losses optimise). Also: what SSIM measures, why a
# skip-free autoencoder blurs, and salt-and-pepper noise.<br>
# **Accelerator:** none needed (about 15 minutes on 2 CPU cores for the full run).<br>
# **Data:** Fashion-MNIST (fetched by `python -m zoo.datasets fetch fashion_mnist`, or
# through tensorflow-datasets on Colab).

# %% [markdown]
# ## Parameters
#
# `SMOKE = True` trains on 256 images for one epoch, with fewer losses (how CI runs every notebook). Set it to
# `False` for the real run.

# %% tags=["parameters"]
SMOKE = False
SEED = 0
EPOCHS = 1 if SMOKE else 3
TRAIN_LIMIT = 256 if SMOKE else 10000
TEST_LIMIT = 128 if SMOKE else 2000
LOSSES = ["mse", "mix"] if SMOKE else ["mse", "bce", "ssim", "mix"]
SALT_PEPPER_LOSSES = ["mse"] if SMOKE else ["mse", "charbonnier", "mix"]
WIDTHS = (16, 32, 64)

# %% [markdown]
# ## Setup
#
# On Colab the first cell installs LossLab. Locally, `make setup` has already installed it
# into `.venv`.

# %%
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_URL = "https://github.com/losslab/losslab"  # your fork; or upload losslab.zip instead

if "google.colab" in sys.modules:  # pragma: no cover - only on Colab
    if Path("losslab.zip").exists():
        zipfile.ZipFile("losslab.zip").extractall(".")
    elif not Path("losslab").is_dir():
        clone = subprocess.run(["git", "clone", "-q", REPO_URL, "losslab"],
                               capture_output=True, text=True)
        if clone.returncode != 0:
            raise RuntimeError(f"could not clone {REPO_URL}: {clone.stderr.strip()}. Set "
                               f"REPO_URL to your fork, or upload the repository as "
                               f"losslab.zip next to this notebook.")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "losslab"], check=True)
    sys.path.insert(0, "losslab")

# %%
import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import matplotlib.pyplot as plt
import numpy as np

from losses.reconstruction import psnr, ssim
from zoo import create_model, datasets
from zoo.datasets.noise import NoisyImages, add_noise
from zoo.training import TrainConfig, run
from zoo.training.tasks.reconstruction import TEST_NOISE_SEED
from zoo.runtime import describe_runtime

keras.utils.set_random_seed(SEED)
print(describe_runtime())
test = datasets.load("fashion_mnist", "test", limit=TEST_LIMIT)
noisy = add_noise(test.x, "gaussian", 0.3, np.random.default_rng(TEST_NOISE_SEED))


def scores(images):
    return (float(np.mean(keras.ops.convert_to_numpy(psnr(test.x, images)))),
            float(np.mean(keras.ops.convert_to_numpy(ssim(test.x, images)))))


print("noisy input (σ = 0.3): PSNR %.2f dB, SSIM %.4f" % scores(noisy))

# %% [markdown]
# ## PSNR and SSIM do not agree on what "close" means
#
# PSNR = 10·log10(1/MSE) only counts squared pixel errors. SSIM compares local means,
# contrasts and correlations under an 11×11 Gaussian window, so it cares about *structure*.
# Three corruptions of the same image with errors of a similar size show the difference: noise
# keeps the edges but adds grain, a blur keeps the mean but loses edges, a brightness shift
# keeps every edge.

# %%
image = test.x[:1]
rng = np.random.default_rng(1)
gauss = np.clip(image + rng.normal(0, 0.1, image.shape), 0, 1).astype("float32")
kernel = np.ones((5, 5, 1, 1), "float32") / 25
blur = keras.ops.convert_to_numpy(keras.ops.conv(image, kernel, padding="same"))
shift = np.clip(image + 0.1, 0, 1).astype("float32")
fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
for ax, (name, picture) in zip(axes, [("original", image), ("noise", gauss), ("blur", blur),
                                      ("brighter", shift)]):
    p = float(keras.ops.convert_to_numpy(psnr(image, picture))[0])
    s = float(keras.ops.convert_to_numpy(ssim(image, picture))[0])
    ax.imshow(picture[0, ..., 0], cmap="gray", vmin=0, vmax=1)
    ax.set_title(name if name == "original" else f"{name}\nPSNR {p:.1f} dB, SSIM {s:.2f}",
                 fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Two denoisers
#
# `conv_autoencoder` squeezes the image through a 7×7 bottleneck and back: everything must
# pass through it, so fine detail is lost, but so is the noise. `unet_denoiser` has skip
# connections at every scale and learns a *correction* of its input (residual learning: it
# starts as the identity), so it can keep detail, and noise too until it has learnt what to
# remove. Same loss (MSE), same short budget: which wins here is a question of budget, not
# a law.

# %%
MODEL_KWARGS = {"unet_denoiser": {"widths": WIDTHS},  # 3 scales: 28, 14, 7 px
                "conv_autoencoder": {"widths": WIDTHS[:2]}}  # 2 downsamplings: 28 -> 7 px


def train_denoiser(model, loss, epochs=EPOCHS, noise="gaussian", level=0.3):
    folder = tempfile.mkdtemp()
    metrics = run(TrainConfig(model=model, dataset="fashion_mnist", loss=loss, epochs=epochs,
                              batch_size=64, learning_rate=2e-3, seed=SEED,
                              train_limit=TRAIN_LIMIT, test_limit=TEST_LIMIT,
                              validation_split=0.0, out=folder, verbose=0,
                              options={"noise": noise, "noise_level": level,
                                       "model_kwargs": MODEL_KWARGS[model]}))
    return metrics, keras.saving.load_model(Path(folder) / "model.keras")


architectures = {}
for name in ("conv_autoencoder", "unet_denoiser"):
    metrics, model = train_denoiser(name, "mse")
    architectures[name] = model
    print(f"{name:17s} {model.count_params():7d} parameters: PSNR {metrics['test_psnr']:.2f} "
          f"dB, SSIM {metrics['test_ssim']:.4f}")

# %% [markdown]
# ## Four losses, one U-Net
#
# The same U-Net, images, noise and budget; only the loss changes. Zhao et al. (2017)
# report that networks trained with SSIM-type losses score better *on SSIM* (and often on
# PSNR too) than with MSE, because MSE's gradient is dominated by large errors in flat
# regions, while the structural term rewards getting edges and textures right.

# %%
by_loss = {}
for loss in LOSSES:
    metrics, model = train_denoiser("unet_denoiser", loss)
    by_loss[loss] = (metrics, model)
    print(f"{loss:5s} PSNR {metrics['test_psnr']:.2f} dB, SSIM {metrics['test_ssim']:.4f}")

# %%
count = 6
rows = [("noisy", noisy[:count])]
rows += [(loss, model.predict(noisy[:count], verbose=0)) for loss, (_, model)
         in by_loss.items()]
rows += [("clean", test.x[:count])]
fig, axes = plt.subplots(len(rows), count, figsize=(1.4 * count, 1.45 * len(rows)))
for r, (label, images) in enumerate(rows):
    for k in range(count):
        axes[r, k].imshow(np.clip(images[k, ..., 0], 0, 1), cmap="gray", vmin=0, vmax=1)
        axes[r, k].set_xticks([])
        axes[r, k].set_yticks([])
    axes[r, 0].set_ylabel(label)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Salt-and-pepper noise
#
# Here 10 % of the pixels are set to black or white. One might expect an L1-type loss (the
# mix's L1 term, or Charbonnier) to do better than MSE on such outliers; the run below tests
# it.
#
# The U-Net's output clip(x + r, 0, 1) can move a pixel stuck at 0 or 1 as easily as any
# other. (An earlier output, sigmoid(logit(x) + r), could not: at logit ±9.2 the sigmoid's
# slope is 1e-4, and with this noise it stayed the identity.)

# %%
for loss in SALT_PEPPER_LOSSES:
    metrics, _ = train_denoiser("unet_denoiser", loss, noise="salt_pepper", level=0.1)
    print(f"salt-and-pepper, {loss:11s} PSNR {metrics['test_psnr']:.2f} dB, SSIM "
          f"{metrics['test_ssim']:.4f} (input {metrics['input_psnr']:.2f} dB)")

# %% [markdown]
# ## The benchmark
#
# `benchmarks/reconstruction.py` runs the four losses over three seeds on 10,000 images and
# scores all 10,000 test images. Its table and gallery:

# %%
report = Path("..") / "benchmarks" / "results" / "reconstruction.md"
if report.exists():
    from IPython.display import Image, Markdown, display

    display(Markdown(report.read_text().split("\n", 2)[2]))
    display(Image(filename=str(report.with_name("reconstruction_gallery.png"))))
else:
    print("run `python benchmarks/reconstruction.py` to produce", report)

# %% [markdown]
# ## What to take away
#
# - The residual U-Net is ahead of the skip-free autoencoder (20.41 against 19.44 dB here): it
#   starts from the noisy image and only learns what to remove.
# - One short run does not rank losses by a few thousandths of SSIM: here (3 epochs, one
#   seed) MSE has the best SSIM too (0.684, the SSIM loss 0.674). Over 5 epochs and three
#   seeds (the benchmark above) each loss wins on the measure it optimises, the SSIM loss on
#   SSIM (0.785 against MSE's 0.770), MSE on PSNR, as Zhao et al. report. The structural
#   losses are for results people look at, MSE for when PSNR is the contract.
# - Salt-and-pepper: MSE is ahead here (19.82 dB, the mix 18.07, Charbonnier 16.44). The
#   corrupted pixels are in the *input*, the targets are clean: the network has to find them
#   and replace them, and MSE's gradient, largest on exactly those pixels, does that fastest.
#   "L1 is robust to outliers" is about outliers in the targets (notebook 07, section 4).
