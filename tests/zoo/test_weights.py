"""Shipped weights: every file loads through `create_model(..., weights=...)` with its SHA-256
checked, predicts what its card says on real test images, and a changed file is refused."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import zoo
from zoo import datasets, weights
from zoo.training import TrainConfig, run


def test_lenet5_weights_are_shipped():
    assert {"mnist", "fashion_mnist"} <= set(zoo.list_weights("lenet5"))


@pytest.mark.parametrize("name", weights.list_weights())
def test_every_shipped_file_loads_verified_and_predicts_as_its_card_says(name, tmp_path,
                                                                         monkeypatch):
    card = weights.card(name)
    assert weights.sha256(weights.FILES / card["file"]) == card["sha256"]
    model_name, tag = name.split(".", 1)
    model = zoo.create_model(model_name, weights=tag)
    assert model.count_params() == card["parameters"]
    task = zoo.model_info(model_name).task
    if "check" in card:  # test images shipped with the outputs the model gave at build time
        check = np.load(weights.FILES / card["check"])
        np.testing.assert_allclose(model.predict(check["x"], verbose=0), check["outputs"],
                                   atol=1e-4)
        assert np.mean(check["outputs"].argmax(-1) == check["y"]) >= 0.5  # a trained model
    elif task == "classification":
        x, y = datasets.load(card["recipe"]["dataset"], "test", limit=1000)
        accuracy = np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y)
        # 1,000 of the 10,000 test images: within 2 points of the card's full-test accuracy
        assert accuracy == pytest.approx(card["metrics"]["test_accuracy"], abs=0.02)
    elif task == "text":
        from text_references import reference_edit_distance
        from zoo.datasets.text import synthetic_text_set
        from zoo.models.crnn import charset_of
        from zoo.training.tasks.text import TEST_STREAM

        monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path / "cache"))
        charset = charset_of(model)
        height = card["builder_kwargs"]["input_shape"][0]
        lines = synthetic_text_set(200, seed=(card["recipe"]["seed"], TEST_STREAM),
                                   charset=charset, height=height,
                                   plate_fraction=card["recipe"]["options"].get(
                                       "plate_fraction", 0.0))
        read = []
        for frames in model.predict(lines.x, verbose=0):  # greedy, written out here
            path = frames.argmax(-1)
            read.append("".join(charset.characters[k - 1] for j, k in enumerate(path)
                                if k != 0 and (j == 0 or k != path[j - 1])))
        edits = sum(reference_edit_distance(t, r) for t, r in zip(lines.texts, read))
        cer = edits / sum(len(t) for t in lines.texts)
        # the first 200 of the card's 2,000 test lines
        assert cer == pytest.approx(card["metrics"]["test_cer"], abs=0.02)
    elif task == "detection":  # step 1 alone (the pipeline's selection), class-agnostic
        from zoo.datasets.detection import synthetic_scene_set
        from zoo.evaluation.detection import evaluate_detections
        from zoo.training.tasks.detection import objectness_ground_truth, step1_detections

        monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path / "cache"))
        assert card["recipe"]["dataset"] == "synth_scenes"
        scenes = synthetic_scene_set(500, seed=1).subset(range(100))
        ap = evaluate_detections(step1_detections(model, scenes.images),
                                 objectness_ground_truth(scenes), ("object",))["map_50"]
        # the first 100 of the card's 500 test scenes
        assert ap == pytest.approx(card["metrics"]["step1_map_50"], abs=0.05)
    else:
        pytest.fail(f"no check written for {task} weights {name}")


def test_a_changed_file_or_a_conflicting_argument_is_refused(tmp_path, monkeypatch):
    files = tmp_path / "files"
    shutil.copytree(weights.FILES, files)
    monkeypatch.setattr(weights, "FILES", files)
    target = files / weights.card("lenet5.mnist")["file"]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(weights.WeightsError, match="does not match the card"):
        zoo.create_model("lenet5", weights="mnist")
    with pytest.raises(weights.WeightsError, match="no shipped weights named 'lenet5.cifar10'"):
        zoo.create_model("lenet5", weights="cifar10")
    monkeypatch.undo()
    with pytest.raises(weights.WeightsError, match="need num_classes=10"):
        zoo.create_model("lenet5", weights="mnist", num_classes=4)


@pytest.mark.slow
def test_init_from_shipped_weights(tmp_path):
    metrics = run(TrainConfig(model="lenet5", dataset="fashion_mnist", epochs=1, batch_size=64,
                              train_limit=256, test_limit=64, verbose=0, out=str(tmp_path),
                              init_from="lenet5.mnist"))
    assert metrics["init"]["source"] == "lenet5.mnist" and metrics["init"]["kept"] == {}
