"""`python -m zoo.evaluate RUN --dataset SPEC` and `zoo.train --test-dataset SPEC`: a trained
run scored on other data, checked against the saved model's own predictions."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from zoo import datasets, evaluate, train
from zoo.training import TrainConfig, run
from zoo.training.config import ConfigError


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run(TrainConfig(model="lenet5", dataset="fashion_mnist", epochs=1, batch_size=64,
                    train_limit=256, test_limit=64, validation_split=0.05, verbose=0,
                    out=str(out), test_dataset="mnist"))
    return out


def test_scores_equal_the_saved_models_predictions_on_the_other_dataset(trained_run, capsys):
    assert evaluate.main([str(trained_run), "--dataset", "mnist", "--test-limit", "300"]) == 0
    assert "on mnist" in capsys.readouterr().out
    stored = json.loads((trained_run / "evaluations" / "mnist" / "metrics.json").read_text())
    x, y = datasets.load("mnist", "test", limit=300)
    model = keras.saving.load_model(trained_run / "model.keras")
    predicted = np.argmax(model.predict(x, verbose=0), axis=-1)
    assert stored["test_accuracy"] == pytest.approx(np.mean(predicted == y), abs=1e-6)
    assert stored["test_samples"] == 300 and stored["dataset"] == "mnist"
    assert (trained_run / "evaluations" / "mnist" / "confusion_matrix.png").stat().st_size > 0


def test_train_with_a_test_dataset_records_it(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["test_dataset"]["dataset"] == "mnist"
    assert metrics["test_dataset"]["summary"].startswith("test accuracy ")


def test_bad_runs_and_datasets_are_one_line_errors(trained_run, tmp_path, capsys):
    assert evaluate.main([str(tmp_path), "--dataset", "mnist"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a finished run (no metrics.json)" in err[0]
    assert evaluate.main([str(trained_run), "--dataset", "voc:/x"]) == 2
    assert "unknown classification dataset 'voc:/x'" in capsys.readouterr().err
    assert train.main(["--model", "lenet5", "--test-dataset", "synth_text",
                       "--out", str(tmp_path / "r")]) == 2
    assert "unknown classification dataset 'synth_text'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_text_run_scored_on_a_folder_of_crops(tmp_path):
    from PIL import Image

    from text_references import reference_edit_distance
    from zoo.datasets import text as T

    texts = ("ab12", "c3", "x9z", "7k", "qq", "m4n")
    root = tmp_path / "crops"
    root.mkdir()
    rows = ["filename,text"]
    for i, text in enumerate(texts):
        Image.fromarray(T.render_text_line(text, augment=False, width=96)).save(
            root / f"c{i}.png")
        rows.append(f"c{i}.png,{text}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    run(TrainConfig(model="crnn_small", epochs=1, batch_size=8, train_limit=16, test_limit=8,
                    validation_split=0.5, verbose=0, out=str(out)))
    stored = evaluate.evaluate_run(out, f"folder:{root}")
    assert stored["data"]["test_lines"] == len(texts)
    model = keras.saving.load_model(out / "model.keras")
    lines = T.load_text_folder(root)
    characters = T.Charset().characters
    read = []
    for frames in model.predict(lines.x, verbose=0):  # greedy: best path, merge, drop blanks
        path = frames.argmax(-1)
        read.append("".join(characters[k - 1] for j, k in enumerate(path)
                            if k != 0 and (j == 0 or k != path[j - 1])))
    edits = sum(reference_edit_distance(t, r) for t, r in zip(lines.texts, read))
    assert stored["test_cer"] == pytest.approx(edits / sum(len(t) for t in lines.texts))
    assert (out / "evaluations" / "folder-crops" / "gallery.png").stat().st_size > 0

    # --read-polarity either: each line's best path as given or inverted, the likelier kept
    either = evaluate.evaluate_run(out, f"folder:{root}", out=tmp_path / "either",
                                   options={"read_polarity": "either"})
    read = []
    for upright, inverted in zip(model.predict(lines.x, verbose=0),
                                 model.predict(1.0 - lines.x, verbose=0)):
        def best_path(frames):
            log_p = frames - np.log(np.exp(frames).sum(-1, keepdims=True))
            return frames.argmax(-1), log_p.max(-1).sum()

        (path, score), (path_inverted, score_inverted) = best_path(upright), best_path(inverted)
        path = path_inverted if score_inverted > score else path
        read.append("".join(characters[k - 1] for j, k in enumerate(path)
                            if k != 0 and (j == 0 or k != path[j - 1])))
    edits = sum(reference_edit_distance(t, r) for t, r in zip(lines.texts, read))
    assert either["decoding"]["greedy_either"]["cer"] == pytest.approx(
        edits / sum(len(t) for t in lines.texts))
    assert either["read_polarity"] == "either" and "beam_either" in either["decoding"]
    assert either["test_cer"] == stored["test_cer"]  # the upright scores stay as they were
    with pytest.raises(ConfigError, match="do not apply"):
        evaluate.evaluate_run(out, f"folder:{root}", options={"num_tiles": 3})


def test_shipped_weights_are_scored_by_name(tmp_path):
    """`zoo.evaluate lenet5.mnist --dataset mnist`: the card's model with its weights, scored
    like a run; accuracy checked against an argmax over the same model's predictions."""
    from zoo.registry import create_model

    stored = evaluate.evaluate_run("lenet5.mnist", "mnist", test_limit=300, out=tmp_path / "e")
    assert stored["run"] == "lenet5.mnist"
    test = datasets.load("mnist", "test", limit=300)
    logits = create_model("lenet5", weights="mnist").predict(test.x, verbose=0)
    assert stored["test_accuracy"] == pytest.approx(np.mean(logits.argmax(-1) == test.y))
    assert stored["test_accuracy"] > 0.95
    assert (tmp_path / "e" / "metrics.json").exists()


def test_an_unknown_source_is_neither_a_run_nor_weights(capsys):
    assert evaluate.main(["lenet5.nothing", "--dataset", "mnist"]) == 2
    assert "neither a run folder nor shipped weights" in capsys.readouterr().err


@pytest.mark.tensorflow
def test_the_run_exports_in_every_format(trained_run, tmp_path):
    """`python -m zoo.export`: .keras, SavedModel and LiteRT give the run's predictions."""
    from zoo import export as zexport

    import tensorflow as tf

    x, _ = datasets.load("mnist", "test", limit=8)
    expected = keras.saving.load_model(trained_run / "model.keras").predict(x, verbose=0)
    path = zexport.export_run(trained_run, "keras", tmp_path / "m")
    np.testing.assert_allclose(keras.saving.load_model(path).predict(x, verbose=0), expected,
                               atol=1e-6)
    assert zexport.main([str(trained_run), "--format", "savedmodel"]) == 0
    served = tf.saved_model.load(str(trained_run / "export" / "savedmodel"))
    np.testing.assert_allclose(served.serve(tf.constant(x)).numpy(), expected, atol=1e-5)
    path = zexport.export_run(trained_run, "litert", tmp_path / "lenet")
    serve = tf.lite.Interpreter(model_path=str(path)).get_signature_runner("serve")
    (name,) = serve.get_input_details()
    (scores,) = serve(**{name: x[:1]}).values()
    assert path.suffix == ".tflite"
    np.testing.assert_allclose(scores, expected[:1], atol=1e-4)
