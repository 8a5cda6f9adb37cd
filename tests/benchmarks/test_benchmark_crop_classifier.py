"""benchmarks/crop_classifier.py: the validation photos come from the training photos only,
p(object) is one minus the background probability, and the summary is that of its cells."""

import json

import keras
import numpy as np

from benchmarks import crop_classifier as bench
from voc_fixtures import write_voc_fixture
from zoo.training.tasks.detection import REAL_DATA_CLASSIFIER, load_detection_data


def test_validation_photos_are_training_photos_held_out_once(tmp_path):
    voc = write_voc_fixture(tmp_path / "voc")
    fit_set, validation, described = bench.validation_split(voc, image_size=(64, 64))
    train, test, _ = load_detection_data(f"voc:{voc}", image_size=(64, 64))
    assert set(fit_set.names) | set(validation.names) == set(train.names)
    assert not set(fit_set.names) & set(validation.names)
    assert not (set(fit_set.names) | set(validation.names)) & set(test.names)
    assert len(validation) == max(1, round(0.2 * len(train)))
    assert f"{len(fit_set)} to train the classifier" in described


def test_object_probability_is_one_minus_the_background_softmax():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]], "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Identity()])
    scale = 2.0
    expected = 1.0 - np.exp(scale * logits[:, -1]) / np.exp(scale * logits).sum(axis=1)
    np.testing.assert_allclose(bench.object_probability(model, scale, logits), expected,
                               rtol=1e-5, atol=1e-6)


def test_starts_name_random_weights_or_the_real_image_classifier():
    assert bench.start_kwargs("random") == {}
    assert bench.start_kwargs("repvgg_tiny.cifar10") == {
        **REAL_DATA_CLASSIFIER, "backbone_weights": "repvgg_tiny.cifar10"}


def test_benchmark_writes_cells_and_their_summary(tmp_path):
    voc = write_voc_fixture(tmp_path / "voc")
    bench.main(["--voc", str(voc), "--seeds", "1", "--starts", "random", "--epochs", "1",
                "--results-dir", str(tmp_path / "results")])
    results = json.loads((tmp_path / "results" / "crop_classifier.json").read_text())
    row = results["starts"]["random"]
    assert [c["seed"] for c in row["cells"]] == [1]
    for cell in row["cells"]:
        fpr, tpr = np.array(cell["roc"]["fpr"]), np.array(cell["roc"]["tpr"])
        area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids
        assert abs(area - cell["roc_auc"]) < 1e-3
        assert 0.0 <= cell["share_object_above"] <= 1.0
    assert row["summary"]["roc_auc"]["values"] == [row["cells"][0]["roc_auc"]]
    assert results["crops"]["objects"] > 0 and results["crops"]["background"] > 0
    text = (tmp_path / "results" / "crop_classifier.md").read_text()
    assert "| random | " in text
    assert (tmp_path / "results" / "crop_classifier.png").stat().st_size > 0
