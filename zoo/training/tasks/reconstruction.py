"""The reconstruction task: denoising autoencoders trained on noisy copies of image datasets.

Data: `zoo.datasets.load(name)` (mnist, fashion_mnist, cifar10), clean images in [0, 1].
Training batches are `NoisyImages` (fresh Gaussian or salt-and-pepper noise every epoch);
the validation and test images are corrupted once with a fixed seed, so every model and
every loss is scored on the same noisy images. Model: a registered `reconstruction` model
(`conv_autoencoder`, `unet_denoiser`) sized to the images. Losses:

    mse, mae              Keras's MeanSquaredError / MeanAbsoluteError
    bce                   BinaryCrossentropy on the [0, 1] pixels
    ssim, ms_ssim         1 − SSIM / 1 − MS-SSIM (`losses.reconstruction`)
    mix                   α(1 − MS-SSIM) + (1 − α)·L1, α = 0.84 (Zhao et al. 2017)
    charbonnier           √((x − y)² + ε²)
    psnr                  −PSNR per image, 10·log10(MSE + ε) (HINet's PSNR loss)

MS-SSIM uses as many of its five scales as the image allows with the 11-px window (2 for
28-px images, 2 for 32 px: a scale halves the side and needs 11 px at the coarsest), with the
paper's weights of those scales renormalised to sum to 1.

Metrics: PSNR = 10·log10(1 / MSE) and SSIM per image, averaged, for the model's output and for
the noisy input (what the model must beat). The run folder holds model.keras, history.csv,
curves.png (loss and PSNR) and gallery.png (noisy / denoised / clean).
"""

from __future__ import annotations

import keras
import numpy as np

from losses.reconstruction import psnr, ssim
from zoo import datasets
from zoo.datasets.noise import NOISES, NoisyImages, add_noise, check_noise
from zoo.evaluation.plots import plot_history, save_figure
from zoo.registry import create_model
from zoo.training.config import ConfigError
from zoo.training.optimizers import make_optimizer
from zoo.training.run_folder import read_history
from zoo.training.tasks.base import Option, Prepared, Task
from zoo.training.tasks.classification import image_test_split, load_image_splits

RECONSTRUCTION_LOSSES = ("mse", "mae", "bce", "ssim", "ms_ssim", "mix", "charbonnier", "psnr")
TEST_NOISE_SEED = 2024  # the fixed corruption of the validation and test images
EVAL_BATCH_SIZE = 256
GALLERY = 8


def ms_ssim_scales(side, filter_size=11) -> tuple:
    """The MS-SSIM weights for images of `side` px: the first M of the paper's five, M the
    most scales whose coarsest side is at least `filter_size` px, renormalised to sum 1."""
    from losses.reconstruction import MS_SSIM_WEIGHTS

    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and (filter_size - 1) * 2 ** scales + 1 <= side:
        scales += 1
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    return tuple(float(w) for w in weights / weights.sum())


def build_loss(name, image_side):
    """The Keras loss named `name` for images whose shorter side is `image_side` px."""
    from losses import reconstruction as R

    if name == "mse":
        return keras.losses.MeanSquaredError()
    if name == "mae":
        return keras.losses.MeanAbsoluteError()
    if name == "bce":
        return keras.losses.BinaryCrossentropy()
    if name == "ssim":
        return R.SSIMLoss()
    if name == "ms_ssim":
        return R.MSSSIMLoss(power_factors=ms_ssim_scales(image_side))
    if name == "mix":
        return R.MixLoss(power_factors=ms_ssim_scales(image_side))
    if name == "charbonnier":
        return R.CharbonnierLoss()
    if name == "psnr":
        return R.PSNRLoss()
    raise ValueError(f"unknown reconstruction loss {name!r}; known: "
                     f"{', '.join(RECONSTRUCTION_LOSSES)}")


def image_scores(clean, images, batch_size=EVAL_BATCH_SIZE) -> dict:
    """Mean PSNR and SSIM of `images` against `clean` (NumPy arrays, batched)."""
    values = {"psnr": [], "ssim": []}
    for start in range(0, len(clean), batch_size):
        a, b = clean[start:start + batch_size], images[start:start + batch_size]
        values["psnr"].append(keras.ops.convert_to_numpy(psnr(a, b)))
        values["ssim"].append(keras.ops.convert_to_numpy(ssim(a, b)))
    return {k: float(np.mean(np.concatenate(v))) for k, v in values.items()}


def plot_gallery(rows, path, title=""):
    """One row of images per (label, images (N, H, W, C) in [0, 1]) of `rows`, e.g. noisy /
    denoised / clean, one column per image."""
    import matplotlib.pyplot as plt

    count = len(rows[0][1])
    fig, axes = plt.subplots(len(rows), count, figsize=(1.3 * count, 1.4 * len(rows)),
                             squeeze=False)
    for row, (label, images) in enumerate(rows):
        for k in range(count):
            image = np.clip(images[k], 0, 1)
            axes[row, k].imshow(image[..., 0] if image.shape[-1] == 1 else image,
                                cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1)
            axes[row, k].set_xticks([])
            axes[row, k].set_yticks([])
        axes[row, 0].set_ylabel(label)
    return save_figure(fig, path, title)


class ReconstructionTask(Task):
    name = "reconstruction"
    default_dataset = "fashion_mnist"
    default_loss = "mse"
    options = {
        "noise": Option("gaussian", "reconstruction: the corruption to remove", type=str,
                        choices=NOISES),
        "noise_level": Option(None, "reconstruction: σ of Gaussian noise (default 0.3) or the "
                              "fraction of salt-and-pepper pixels (default 0.1)", type=float),
        # Python only (no command-line flag): more builder arguments, e.g. widths
        "model_kwargs": Option(None, "", type="python"),
    }
    refuses = {
        "monitor_margins": "it measures class margins of an embedding; a denoiser outputs "
                           "images",
        "embedding_dim": "a denoiser has no embedding layer of adjustable size",
        "freeze_backbone": "a denoiser has no separate head to train first",
    }

    @property
    def dataset_forms(self):
        return tuple(datasets.list_datasets())

    def losses(self):
        return list(RECONSTRUCTION_LOSSES)

    def noise(self, config):
        try:
            return check_noise(self.option(config, "noise"), self.option(config, "noise_level"))
        except ValueError as error:
            raise ConfigError(str(error)) from None

    def check(self, config):
        super().check(config)
        self.noise(config)

    def _noisy(self, split, config):
        kind, level = self.noise(config)
        return add_noise(split.x, kind, level, np.random.default_rng(TEST_NOISE_SEED))

    def prepare(self, config):
        train, validation, test = load_image_splits(config)
        kind, level = self.noise(config)
        batches = NoisyImages(train.x, config.batch_size, kind, level, seed=config.seed)
        shape = train.x.shape[1:]
        try:
            model = create_model(config.model, input_shape=shape,
                                 **(self.option(config, "model_kwargs") or {}))
        except ValueError as error:
            raise ConfigError(f"model {config.model!r} cannot take {config.dataset} images "
                              f"{shape}: {error}") from None
        model.compile(optimizer=make_optimizer(config.learning_rate,
                                               config.epochs * len(batches)),
                      loss=build_loss(config.loss, min(shape[:2])),
                      metrics=[keras.metrics.MeanMetricWrapper(psnr, name="psnr"),
                               keras.metrics.MeanMetricWrapper(ssim, name="ssim")])
        data = {"train": train, "validation": validation, "test": test, "batches": batches,
                "noisy_validation": self._noisy(validation, config) if validation else None,
                "noisy_test": self._noisy(test, config)}
        return Prepared(data, model, len(train))

    def fit(self, config, prepared, fitter):
        data, model = prepared.data, prepared.model
        validation = data["validation"]

        def fit(callbacks, epochs, initial_epoch=0):
            model.fit(data["batches"], epochs=epochs, initial_epoch=initial_epoch,
                      validation_data=((data["noisy_validation"], validation.x)
                                       if validation else None),
                      callbacks=callbacks, verbose=config.verbose)

        return {"model": fitter.fit_stage("model", model, fit)}

    def evaluate(self, config, prepared, models, folder):
        model, test, noisy = models["model"], prepared.data["test"], prepared.data["noisy_test"]
        denoised = np.asarray(model.predict(noisy, batch_size=EVAL_BATCH_SIZE, verbose=0),
                              np.float32)
        scores, before = image_scores(test.x, denoised), image_scores(test.x, noisy)
        kind, level = self.noise(config)
        title = f"{config.model} · {config.dataset} · {config.loss} · {kind} {level:g}"
        if folder.file("history.csv").exists():
            plot_history(read_history(folder.file("history.csv")), folder.file("curves.png"),
                         title, metrics=("loss", "psnr", "ssim"))
        count = min(GALLERY, len(test.x))
        plot_gallery([("noisy", noisy[:count]), ("denoised", denoised[:count]),
                      ("clean", test.x[:count])], folder.file("gallery.png"),
                     f"{title} · PSNR {before['psnr']:.1f} → {scores['psnr']:.1f} dB")
        test_loss = model.evaluate(noisy, test.x, batch_size=EVAL_BATCH_SIZE, verbose=0,
                                   return_dict=True)["loss"]
        return {"test_psnr": scores["psnr"], "test_ssim": scores["ssim"],
                "input_psnr": before["psnr"], "input_ssim": before["ssim"],
                "test_loss": float(test_loss),
                "noise": kind, "noise_level": level, "test_samples": len(test.x),
                "files": ["model.keras", "history.csv", "curves.png", "gallery.png"]}

    def test_data(self, config, spec, models):
        test = image_test_split(self.name, spec, config, models["model"])
        return Prepared({"test": test, "noisy_test": self._noisy(test, config)},
                        models["model"], 0)

    def summary(self, metrics):
        return (f"test PSNR {metrics['test_psnr']:.2f} dB (noisy input "
                f"{metrics['input_psnr']:.2f}), SSIM {metrics['test_ssim']:.4f} (input "
                f"{metrics['input_ssim']:.4f})")
