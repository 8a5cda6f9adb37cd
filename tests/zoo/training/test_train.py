"""The training entry point end to end on small subsets of the real Fashion-MNIST."""

import csv
import json

import keras
import numpy as np
import pytest

from zoo import train
from zoo.training import resolve
from zoo.training.callbacks import EpochTimer
from zoo.training.tasks import classification

SMALL = dict(dataset="fashion_mnist", train_limit=640, test_limit=200, batch_size=64,
             validation_split=0.05, verbose=0)


class Interrupt(keras.callbacks.Callback):
    """Simulates a crash after `epoch` has finished (after the backup was written)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt(f"simulated interruption after epoch {epoch}")


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_run_writes_the_run_folder(tmp_path):
    metrics = train.run(train.TrainConfig(model="lenet5", epochs=2, out=str(tmp_path), **SMALL))
    for name in ("model.keras", "history.csv", "metrics.json", "curves.png", "confusion_matrix.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert not (tmp_path / "backup").exists()
    stored = json.loads((tmp_path / "metrics.json").read_text())
    matrix = np.asarray(stored["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 200
    np.testing.assert_allclose(stored["test_accuracy"], np.trace(matrix) / 200, atol=1e-6)
    assert set(stored["per_class_accuracy"]) == set(stored["class_names"])
    assert stored["train_samples_per_second"] > 0 and stored["seed"] == 0
    assert {"keras", "numpy", "python", "backend"} <= set(stored["versions"])
    assert metrics["test_accuracy"] == stored["test_accuracy"]
    assert [row["epoch"] for row in read_rows(tmp_path / "history.csv")] == ["0", "1"]
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert reloaded.count_params() == 61706


def test_same_seed_same_run(tmp_path):
    config = dict(model="lenet5", epochs=1, **SMALL)
    first = train.run(train.TrainConfig(out=str(tmp_path / "a"), **config))
    second = train.run(train.TrainConfig(out=str(tmp_path / "b"), **config))
    assert first["test_loss"] == second["test_loss"]
    assert read_rows(tmp_path / "a/history.csv") == read_rows(tmp_path / "b/history.csv")


def test_resume_continues_without_losing_epochs(tmp_path):
    config = dict(model="lenet5", epochs=3, out=str(tmp_path), **SMALL)
    with pytest.raises(KeyboardInterrupt):
        train.run(train.TrainConfig(callbacks=[Interrupt(epoch=1)], **config))
    assert (tmp_path / "backup").is_dir()
    before = read_rows(tmp_path / "history.csv")
    assert [row["epoch"] for row in before] == ["0", "1"]

    train.run(train.TrainConfig(resume=True, **config))
    after = read_rows(tmp_path / "history.csv")
    assert [row["epoch"] for row in after] == ["0", "1", "2"]
    assert after[:2] == before  # the first two epochs were not trained again
    assert not (tmp_path / "backup").exists()
    model = keras.saving.load_model(tmp_path / "model.keras")
    steps = int(np.ceil(640 / 64))  # train_limit counts after the validation split
    assert int(model.optimizer.iterations) == 3 * steps

    again = train.run(train.TrainConfig(resume=True, **config))  # complete: nothing to do
    assert len(read_rows(tmp_path / "history.csv")) == 3 and "test_accuracy" in again


def test_fresh_run_clears_an_old_one(tmp_path):
    config = dict(model="lenet5", out=str(tmp_path), **SMALL)
    with pytest.raises(KeyboardInterrupt):
        train.run(train.TrainConfig(epochs=2, callbacks=[Interrupt(epoch=0)], **config))
    train.run(train.TrainConfig(epochs=1, **config))
    assert [row["epoch"] for row in read_rows(tmp_path / "history.csv")] == ["0"]


def test_lenet_embed_with_the_softmax_recipe(tmp_path):
    metrics = train.run(train.TrainConfig(model="lenet_embed", embedding_dim=8, epochs=1,
                                          out=str(tmp_path), **SMALL))
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert metrics["parameters"] == model.count_params()
    # an embedding model is also scored by retrieval on the test images' embeddings
    from callbacks.retrieval import retrieval_metrics
    from zoo import datasets

    test = datasets.load("fashion_mnist", "test", limit=SMALL["test_limit"])
    embeddings = keras.Model(model.inputs, model.get_layer("embedding").output).predict(
        test.x, verbose=0)
    expected = retrieval_metrics(embeddings, test.y)
    # the run embeds in other batches than predict does here: float32 sums differ (JAX: 3e-6)
    assert metrics["retrieval"]["map_at_r"] == pytest.approx(expected["map_at_r"], abs=1e-5)
    assert metrics["retrieval"]["queries"] == expected["queries"] == SMALL["test_limit"]
    assert 0 <= metrics["retrieval"]["ami"] <= 1


def test_cli_rejects_unknown_names_and_has_help(capsys):
    assert train.main(["--loss", "nope"]) == 2
    assert "unknown loss 'nope' for classification model 'lenet5'; known: " in \
        capsys.readouterr().err
    assert train.main(["--model", "nope"]) == 2
    with pytest.raises(SystemExit) as info:
        train.main(["--help"])
    assert info.value.code == 0
    assert "--resume" in capsys.readouterr().out


def test_cli_parses_into_a_config():
    config = train.parse_args(["--model", "lenet_tcnn", "--epochs", "4", "--batch-size", "32"])
    assert (config.model, config.epochs, config.batch_size) == ("lenet_tcnn", 4, 32)
    assert config.out is None and config.dataset is None  # the task's defaults, resolved by run
    resolved, task = resolve(config)
    assert task.name == "classification"
    assert resolved.out == "runs/lenet_tcnn-fashion_mnist-softmax"
    assert resolved.batch_size == 32  # given, kept
    assert resolve(train.parse_args(["--model", "lenet5"]))[0].batch_size == 128


def test_probes_write_their_data_and_keys_into_history(tmp_path):
    config = train.TrainConfig(model="lenet_embed", embedding_dim=2, epochs=2, out=str(tmp_path),
                               trace_weights=5, monitor_margins=True, **SMALL)
    metrics = train.run(config)
    for name in metrics["probe_files"]:
        assert (tmp_path / name).stat().st_size > 0, name
    header = read_rows(tmp_path / "history.csv")[0].keys()
    assert {"weights/update", "margin/intra", "margin/fisher"} <= set(header)
    margins = json.loads((tmp_path / "margins.json").read_text())
    assert margins["probe_source"] == "validation" and len(margins["margin/intra"]) == 2


def test_cli_probe_flags():
    assert train.parse_args(["--trace-weights"]).trace_weights == 0
    assert train.parse_args(["--trace-weights", "7"]).trace_weights == 7
    assert train.parse_args([]).trace_weights is None
    assert train.parse_args(["--monitor-margins"]).monitor_margins


def test_epoch_timer_keeps_asynchronous_dispatch():
    """A batch hook would force a host sync per step and slow the training it times."""
    hooks = [name for name in vars(EpochTimer) if "batch" in name]
    assert hooks == []


def test_recipes_with_balanced_batches_train_on_pk_batches(tmp_path, monkeypatch):
    import losses

    seen = []
    original = classification.PKBatches

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return original(*args, **kwargs)

    recipe = losses.LossRecipe(name="_balanced_softmax_for_test", head="softmax",
                               build_loss=losses.get_recipe("softmax").build_loss,
                               summary="test only", balanced_batches=True)
    monkeypatch.setitem(losses.registry._RECIPES, recipe.name, recipe)
    monkeypatch.setattr(classification, "PKBatches", spy)
    metrics = train.run(train.TrainConfig(model="lenet_embed", loss=recipe.name, epochs=1,
                                          out=str(tmp_path), **SMALL))
    assert seen == [dict(classes_per_batch=8, samples_per_class=8, seed=0)]
    assert metrics["train_samples"] == (640 // 64) * 64  # train_limit counts after the split


@pytest.mark.tensorflow
def test_determinism_is_scoped_to_the_run(tmp_path):
    from tensorflow.python.framework import config as tf_config

    seen = []

    class Probe(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(tf_config.is_op_determinism_enabled())

    train.run(train.TrainConfig(model="lenet5", epochs=1, out=str(tmp_path), callbacks=[Probe()],
                                **SMALL))
    assert seen == [True]
    assert not tf_config.is_op_determinism_enabled()
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse", jit_compile=True)
    assert model.jit_compile  # Keras drops XLA while determinism is on


def test_cli_detector_arguments(capsys):
    config = train.parse_args(["--model", "detector", "--loss", "ciou", "--one-step"])
    assert (config.loss, config.options) == ("ciou", {"one_step": True})
    resolved, task = resolve(config)
    assert (task.name, resolved.dataset) == ("detection", "synth_scenes")  # its default data
    # a photo set of ~130 images must get more than one update per epoch by default
    assert resolved.batch_size == 32
    assert resolve(train.parse_args(["--model", "detector", "--batch-size", "8"]))[0] \
        .batch_size == 8
    assert train.main(["--model", "detector", "--loss", "l2"]) == 2
    assert "unknown loss 'l2' for detection model 'detector'" in capsys.readouterr().err
    assert train.main(["--model", "detector", "--dataset", "mnist"]) == 2
    assert "unknown detection dataset 'mnist'" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # loss scale
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_under_the_policy_and_restores_the_callers(tmp_path, policy):
    """The model is built under the policy (float16/bfloat16 compute, float32 weights), the
    arcface loss on its cosine head stays finite, and the global policy is float32 again."""
    assert keras.config.dtype_policy().name == "float32"
    metrics = train.main(["--model", "lenet_embed", "--loss", "arcface", "--epochs", "1",
                          "--train-limit", "256", "--test-limit", "64", "--batch-size", "64",
                          "--validation-split", "0", "--mixed-precision", policy,
                          "--out", str(tmp_path)])
    assert metrics == 0 and keras.config.dtype_policy().name == "float32"
    saved = keras.saving.load_model(tmp_path / "model.keras")
    conv = next(layer for layer in saved.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.dtype_policy.name == policy and conv.kernel.dtype == "float32"
    assert conv.compute_dtype == policy.split("_")[1]
    results = json.loads((tmp_path / "metrics.json").read_text())
    assert results["config"]["mixed_precision"] == policy
    assert np.isfinite(results["test_loss"]) and 0 <= results["test_accuracy"] <= 1


def test_mixed_precision_refuses_other_policies(capsys):
    with pytest.raises(SystemExit) as info:
        train.main(["--mixed-precision", "float16"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(train.ConfigError, match="mixed_precision must be one of"):
        train.TrainConfig(mixed_precision="float64").validate()
