"""The reconstruction task: noise against its definition, the denoisers' shapes and identity
start, PSNR against NumPy, MS-SSIM scales by hand, and one tiny run through zoo.train."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from zoo import create_model, list_models
from zoo.datasets.noise import NoisyImages, add_noise
from zoo.training.config import ConfigError
from losses.reconstruction import psnr
from zoo.training.tasks import reconstruction as R


def test_gaussian_noise_statistics_and_clipping():
    clean = np.full((200, 8, 8, 1), 0.5, np.float32)
    noisy = add_noise(clean, "gaussian", 0.1, np.random.default_rng(0))
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert abs(np.mean(noisy - clean)) < 0.005 and abs(np.std(noisy - clean) - 0.1) < 0.005
    dark = add_noise(np.zeros((50, 8, 8, 1), np.float32), "gaussian", 0.3)
    assert dark.min() == 0.0 and 0.0 < dark.mean() < 0.3 * 0.45  # clipped half-normal


def test_salt_and_pepper_hits_whole_pixels():
    clean = np.full((100, 10, 10, 3), 0.5, np.float32)
    noisy = add_noise(clean, "salt_pepper", 0.2, np.random.default_rng(1))
    changed = (noisy != 0.5).any(axis=-1)
    assert abs(changed.mean() - 0.2) < 0.02
    values = noisy[changed]
    assert ((values == 0) | (values == 1)).all()
    assert (values == values[:, :1]).all()  # all channels of a pixel together
    assert abs((values[:, 0] == 1).mean() - 0.5) < 0.05


def test_noisy_images_draw_new_noise_each_epoch_and_keep_clean_targets():
    images = np.random.default_rng(2).uniform(size=(10, 4, 4, 1)).astype(np.float32)
    batches = NoisyImages(images, batch_size=4, level=0.2, seed=3)
    assert len(batches) == 3
    first_noisy, first_clean = batches[0]
    rows = batches.order[:4]
    np.testing.assert_array_equal(first_clean, images[rows])
    again, _ = batches[0]
    np.testing.assert_array_equal(again, first_noisy)  # one epoch: the same batch
    batches.on_epoch_end()
    _, clean = batches[0]
    noisy = add_noise(clean, "gaussian", 0.2, np.random.default_rng([3, 1, 0]))
    np.testing.assert_array_equal(batches[0][0], noisy)
    assert not np.array_equal(batches.order[:4], rows) or not np.array_equal(noisy,
                                                                              first_noisy)


def test_bad_noise_is_a_value_error():
    with pytest.raises(ValueError, match="noise must be"):
        add_noise(np.zeros((1, 4, 4, 1)), "speckle")
    with pytest.raises(ValueError, match="salt_pepper noise level"):
        add_noise(np.zeros((1, 4, 4, 1)), "salt_pepper", 1.5)
    with pytest.raises(ValueError, match="gaussian noise level"):
        add_noise(np.zeros((1, 4, 4, 1)), "gaussian", 0)


def test_psnr_and_ms_ssim_scales_by_hand():
    a = np.zeros((2, 4, 4, 1), np.float32)
    b = a.copy()
    b[0] += 0.1                      # MSE 0.01 -> 20 dB
    b[1, 0, 0, 0] = 1.0              # MSE 1/16 -> 10·log10(16) dB
    np.testing.assert_allclose(keras.ops.convert_to_numpy(psnr(a, b)),
                               [20.0, 10 * np.log10(16)], rtol=1e-5)
    w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    np.testing.assert_allclose(R.ms_ssim_scales(28), np.asarray(w[:2]) / sum(w[:2]))
    np.testing.assert_allclose(R.ms_ssim_scales(41), np.asarray(w[:3]) / sum(w[:3]))
    np.testing.assert_allclose(R.ms_ssim_scales(200), np.asarray(w) / sum(w))
    assert R.ms_ssim_scales(20) == (1.0,)


@pytest.mark.parametrize("name", ["conv_autoencoder", "unet_denoiser"])
def test_denoisers_shapes_save_load_and_bad_sizes(name, tmp_path):
    assert name in list_models(task="reconstruction")
    model = create_model(name, input_shape=(32, 32, 3))
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    y = keras.ops.convert_to_numpy(model(x))
    assert y.shape == x.shape and (y > 0).all() and (y < 1).all()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), y, atol=1e-6)
    with pytest.raises(ValueError, match="divisible"):
        create_model(name, input_shape=(30, 30, 1))


@pytest.mark.parametrize("blocks", [1, 2])
def test_residual_unet_starts_as_the_identity_with_blocks_per_stage(blocks):
    model = create_model("unet_denoiser", input_shape=(16, 16, 1), widths=(8, 16),
                         blocks=blocks)
    x = np.random.default_rng(1).uniform(0.0, 1.0, size=(2, 16, 16, 1)).astype(np.float32)
    x[0, :4], x[1, :4] = 0.0, 1.0  # saturated pixels (salt and pepper) too
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), x, atol=1e-6)
    # stages: enc0, enc1 (the bottom) and dec0, each of `blocks` residual blocks
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 3 * blocks
    with pytest.raises(ValueError, match="blocks"):
        create_model("unet_denoiser", input_shape=(16, 16, 1), widths=(8, 16), blocks=0)


def test_residual_output_moves_saturated_pixels():
    """clip(x + r, 0, 1): a correction r moves a pixel at 0 or 1 by r (the logit-space form
    sigmoid(logit(x) + r) moved it by about 1e-4·r); r is clipped to the image range."""
    from zoo.models.autoencoder import ClippedResidual

    image = np.array([[0.0, 1.0, 0.5, 0.9]], "float32")
    correction = np.array([[0.3, -0.4, 0.2, 0.3]], "float32")
    out = keras.ops.convert_to_numpy(ClippedResidual()(image, correction))
    np.testing.assert_allclose(out, [[0.3, 0.6, 0.7, 1.0]], atol=1e-7)


def test_models_saved_with_the_logit_residual_still_load(tmp_path):
    from zoo.models.autoencoder import LogitResidual

    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, LogitResidual()(inputs, keras.layers.Conv2D(1, 1)(inputs)))
    model.save(tmp_path / "old.keras")
    loaded = keras.saving.load_model(tmp_path / "old.keras", safe_mode=True)
    x = np.random.default_rng(0).uniform(0.1, 0.9, (1, 4, 4, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(model(x)), atol=1e-6)


@pytest.mark.slow
def test_tiny_denoising_run_writes_metrics_and_gallery(tmp_path):
    from zoo import train

    out = tmp_path / "run"
    metrics = train.run(train.TrainConfig(
        model="conv_autoencoder", dataset="mnist", loss="mix", epochs=2, batch_size=32,
        train_limit=256, test_limit=64, learning_rate=3e-3, out=str(out), verbose=0,
        options={"noise": "salt_pepper", "noise_level": 0.2}))
    assert {"test_psnr", "test_ssim", "input_psnr", "input_ssim"} <= set(metrics)
    assert metrics["noise"] == "salt_pepper" and metrics["noise_level"] == 0.2
    for name in ("gallery.png", "curves.png", "model.keras"):
        assert (out / name).stat().st_size > 0
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["test_psnr"] == pytest.approx(metrics["test_psnr"])
    # the reported PSNR is the mean per-image PSNR of the model on the fixed noisy test set
    from zoo import datasets

    test = datasets.load("mnist", "test", limit=64)
    noisy = add_noise(test.x, "salt_pepper", 0.2, np.random.default_rng(R.TEST_NOISE_SEED))
    model = keras.saving.load_model(out / "model.keras")
    denoised = keras.ops.convert_to_numpy(model.predict(noisy, verbose=0))
    mse = ((denoised - test.x) ** 2).mean(axis=(1, 2, 3))
    assert metrics["test_psnr"] == pytest.approx(np.mean(10 * np.log10(1 / mse)), rel=1e-4)
    input_mse = ((noisy - test.x) ** 2).mean(axis=(1, 2, 3))
    assert metrics["input_psnr"] == pytest.approx(np.mean(10 * np.log10(1 / input_mse)),
                                                  rel=1e-4)


def test_config_errors():
    from zoo import train

    task = R.ReconstructionTask()
    base = ["--model", "unet_denoiser", "--dataset", "fashion_mnist", "--loss", "mse"]
    config = train.parse_args(base + ["--noise", "salt_pepper", "--noise-level", "2"])
    with pytest.raises(ConfigError, match="noise level"):
        task.check(config)
    with pytest.raises(ConfigError, match="unknown loss"):
        task.check(train.parse_args(base[:-1] + ["arcface"]))


@pytest.mark.slow
def test_evaluate_scores_a_denoiser_on_another_dataset(tmp_path):
    """zoo.evaluate RUN --dataset SPEC: the run's noise on the other set's test images."""
    from zoo import evaluate, train

    out = tmp_path / "run"
    train.run(train.TrainConfig(model="conv_autoencoder", dataset="mnist", loss="mse",
                                epochs=1, batch_size=32, train_limit=64, test_limit=32,
                                out=str(out), verbose=0))
    scored = evaluate.main([str(out), "--dataset", "fashion_mnist", "--test-limit", "32"])
    assert scored == 0
    found = list((out / "evaluations").rglob("metrics.json"))
    assert found and {"test_psnr", "input_psnr"} <= set(json.loads(found[0].read_text()))
    assert evaluate.main([str(out), "--dataset", "cifar10", "--test-limit", "8"]) == 2
