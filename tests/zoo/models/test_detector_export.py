"""zoo.models.detector.export: the SavedModel's in-graph selection, NMS and step 2 give the
Python pipeline's detections (TwoStepDetector.detect_padded) on the same images."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf  # this module is collected on TensorFlow only: tests/conftest.py

import zoo.models.detector as zd
from detector_fixtures import TINY
from detector_fixtures import randomize_batchnorm as shared_randomize_batchnorm
from zoo.models.detector.export import export_detector, export_step1_litert

pytestmark = pytest.mark.tensorflow


def randomize_batchnorm(model, seed):
    """Moving means of σ 0.3: large enough that a BN folded wrongly moves the boxes."""
    shared_randomize_batchnorm(model, seed, mean_std=0.3)


def served(pipeline, path, images, **kwargs):
    export_detector(pipeline, path, **kwargs)
    reloaded = tf.saved_model.load(str(path))  # held: `serve` needs its variables alive
    out = reloaded.serve(tf.constant(images))
    return {k: v.numpy() for k, v in out.items()}


def assert_same(found, expected, atol=1e-5):
    np.testing.assert_array_equal(found["classes"], expected["classes"])
    np.testing.assert_allclose(found["scores"], expected["scores"], atol=atol)
    np.testing.assert_allclose(found["boxes"], expected["boxes"], atol=1e-3)
    np.testing.assert_array_equal(found["num_detections"], (expected["classes"] >= 0).sum(1)
                                  if "count" not in expected else expected["count"])


def pixel_classifier(size=12, outputs=4):
    """Crops -> a random linear map of every pixel: any crop difference changes the scores."""
    inputs = keras.Input((size, size, 3))
    dense = keras.layers.Dense(outputs)
    logits = dense(keras.layers.Flatten()(inputs))
    rng = np.random.default_rng(7)
    dense.set_weights([rng.normal(0, 0.2, (size * size * 3, outputs)).astype(np.float32),
                       np.zeros(outputs, np.float32)])
    return keras.Model(inputs, logits)


@pytest.fixture(scope="module")
def two_step():
    keras.utils.set_random_seed(3)
    model = zd.detector(num_classes=3, input_shape=(48, 48, 3), **TINY)
    randomize_batchnorm(model, 1)
    images = np.random.default_rng(5).uniform(size=(3, 48, 48, 3)).astype(np.float32)
    return model, pixel_classifier(), images


def padded_selection(pipeline, images):
    """Step 1 + NMS in Python, padded like the export (no step 2)."""
    selected = pipeline.select(pipeline.step1(images))
    d = pipeline.max_detections
    out = {"boxes": np.zeros((len(images), d, 4), np.float32),
           "scores": np.zeros((len(images), d), np.float32),
           "classes": np.full((len(images), d), -1, np.int32),
           "count": np.asarray([len(s[0]) for s in selected])}
    for i, (boxes, scores, classes) in enumerate(selected):
        out["boxes"][i, :len(boxes)], out["scores"][i, :len(boxes)] = boxes, scores
        out["classes"][i, :len(boxes)] = classes
    return out


@pytest.mark.parametrize("threshold", [0.0, "median"])
def test_two_step_export_equals_the_python_pipeline(two_step, tmp_path, threshold):
    model, classifier, images = two_step
    if threshold == "median":  # about half the cells pass: some images get fewer than D boxes
        logits = keras.ops.convert_to_numpy(model.predict_on_batch(images)["scores"])
        threshold = float(np.median(1 / (1 + np.exp(-logits))))
    pipeline = zd.TwoStepDetector(model, classifier, score_threshold=threshold, nms_iou=0.4,
                                  max_detections=12, class_scale=30.0, context=1.5)
    expected = pipeline.detect_padded(images)
    labels = expected["classes"][expected["classes"] >= 0]
    assert len(set(labels.tolist())) >= 2  # the labels depend on what the crops hold
    found = served(pipeline, tmp_path / "two_step", images)
    assert found["boxes"].shape == (3, 12, 4) and found["classes"].dtype == np.int32
    assert_same(found, expected)
    # step 1 alone: the NMS output, unlabelled, scored by objectness
    assert_same(served(pipeline, tmp_path / "step1", images, step2=False),
                padded_selection(pipeline, images), atol=1e-6)


def test_flip_tta_export_equals_the_python_pipeline(two_step, tmp_path):
    """Both views in the graph (mirror, cell permutation, unflipped boxes, average)."""
    model, classifier, images = two_step
    pipeline = zd.TwoStepDetector(model, classifier, score_threshold=0.0, max_detections=9,
                                  class_scale=30.0, flip_tta=True)
    plain = zd.TwoStepDetector(model, classifier, score_threshold=0.0, max_detections=9,
                               class_scale=30.0)
    expected = pipeline.detect_padded(images)
    assert not np.allclose(expected["boxes"], plain.detect_padded(images)["boxes"], atol=1e-2)
    assert_same(served(pipeline, tmp_path / "tta", images), expected)


def test_fused_two_step_export_equals_the_fused_pipeline(two_step, tmp_path):
    """The zoo's own crop classifier (a dict head), both models re-parameterized."""
    model, _, images = two_step
    classifier = zd.crop_classifier(4, (16, 16, 3), widths=(8, 8), depths=(1, 1),
                                    embedding_dim=8)
    randomize_batchnorm(classifier, 2)
    fused = zd.TwoStepDetector(model, classifier, score_threshold=0.0, max_detections=6,
                               class_scale=30.0).fused()
    assert_same(served(fused, tmp_path / "fused", images), fused.detect_padded(images))


def test_fused_pyramid_export_equals_the_fused_pipeline(tmp_path):
    """Three levels (one above the deepest stage), every block folded, served as one model."""
    keras.utils.set_random_seed(5)
    model = zd.detector(num_classes=3, input_shape=(32, 32, 3), stride=(4, 8, 16), **TINY)
    randomize_batchnorm(model, 4)
    images = np.random.default_rng(8).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    fused = zd.TwoStepDetector(model, pixel_classifier(), score_threshold=0.0,
                               max_detections=10, class_scale=30.0).fused()
    assert_same(served(fused, tmp_path / "pyramid", images), fused.detect_padded(images))


@pytest.mark.parametrize("agnostic", [True, False])
def test_one_step_export_per_class_and_class_agnostic_nms(tmp_path, agnostic):
    keras.utils.set_random_seed(4)
    model = zd.detector(num_classes=3, input_shape=(32, 32, 3), one_step=True, **TINY)
    randomize_batchnorm(model, 3)
    images = np.random.default_rng(6).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    pipeline = zd.TwoStepDetector(model, score_threshold=0.0, nms_iou=0.3, max_detections=16,
                                  class_agnostic_nms=agnostic)
    expected = pipeline.detect_padded(images)
    assert_same(served(pipeline, tmp_path / "one_step", images), expected, atol=1e-6)


def test_export_refuses_what_it_cannot_serve(tmp_path):
    with pytest.raises(ValueError, match="TwoStepDetector"):
        export_detector(object(), tmp_path / "x")


def test_fused_step1_runs_in_the_litert_interpreter(two_step, tmp_path):
    model, _, images = two_step
    fused = zd.TwoStepDetector(model, pixel_classifier()).fused().detector
    path = export_step1_litert(fused, tmp_path / "step1.tflite")
    interpreter = tf.lite.Interpreter(model_path=str(path))
    serve = interpreter.get_signature_runner("serve")
    expected = fused.predict_on_batch(images[:1])
    found = serve(images=images[:1])
    assert set(found) == {"scores", "boxes"}
    np.testing.assert_allclose(found["scores"], expected["scores"], atol=1e-4)
    np.testing.assert_allclose(found["boxes"], expected["boxes"], atol=2e-3)
