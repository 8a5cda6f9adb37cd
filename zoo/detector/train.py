"""Training the two-step detector end to end, and the run behind
`python -m zoo.train --model detector --dataset synth_scenes --box-loss eiou`.

    from zoo.detector.train import train_two_step
    pipeline, histories = train_two_step(synthetic_scene_set(2000, seed=0), box_loss="eiou")
    evaluate_detections(pipeline.predict(test.images), test, test.class_names)

Step 1 trains on `DetectionBatches` of the set (random horizontal flips); step 2 trains on
`classifier_crops` of the same set (jittered ground-truth crops + background crops). The two
are independent, so either can be retrained alone.

Both models compile with `jit_compile=True` by default. Besides speed, this is a workaround:
under TensorFlow 2.21 on CPU with oneDNN on (the default), the gradient of a 1x1 stride-2
convolution on a few input channels (`Conv2DBackpropFilter`, the RepVGG stem's 1x1 branch on
RGB images) corrupts memory and crashes the process for some input sizes (seen at 64 and
128 px); XLA does not use that kernel. `TF_ENABLE_ONEDNN_OPTS=0` (set before TensorFlow is
imported) is the other way out.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import keras
import numpy as np

from zoo.datasets.detection import DetectionBatches, DetectionSet, flip_horizontal
from zoo.detector.inference import TwoStepDetector, classifier_crops
from zoo.detector.model import classifier_loss, crop_classifier, default_head, detector

DEFAULT_TRAIN_IMAGES, DEFAULT_TEST_IMAGES = 2000, 500


def random_flip(image, boxes, classes, rng):
    """Horizontal flip with probability 1/2 (a `DetectionBatches` augment callable)."""
    if rng.uniform() < 0.5:
        return flip_horizontal(image, boxes, classes)
    return image, boxes, classes


def warn_if_xla_is_off(jit_compile=True):
    """Warn when Keras will drop `jit_compile` because TensorFlow op determinism is on (then
    the step runs through the oneDNN kernel described in the module docstring)."""
    if not jit_compile or keras.backend.backend() != "tensorflow":
        return
    from tensorflow.python.framework import config as tf_config

    if tf_config.is_op_determinism_enabled():
        warnings.warn("TensorFlow op determinism is on, so Keras trains without XLA; with "
                      "oneDNN on, the gradient of the RepVGG stem's 1x1 stride-2 conv can "
                      "crash the process. Train the detector outside deterministic ops, or "
                      "set TF_ENABLE_ONEDNN_OPTS=0 before importing TensorFlow.",
                      RuntimeWarning, stacklevel=3)


def _optimizer(learning_rate, steps):
    schedule = keras.optimizers.schedules.CosineDecay(float(learning_rate),
                                                      decay_steps=max(1, int(steps)))
    return keras.optimizers.Adam(schedule, global_clipnorm=10.0)


def fit_detector(train_set: DetectionSet, box_loss="eiou", epochs=10, batch_size=32,
                 learning_rate=2e-3, seed=0, one_step=False, augment=True, jit_compile=True,
                 callbacks=(), verbose=2, **detector_kwargs):
    """Build and train the step-1 model on a `DetectionSet`; returns (model, History).

    Args:
        train_set: the training `DetectionSet` (its images fix the input shape).
        box_loss: one of `targets.BOX_LOSSES`. Defaults to "eiou".
        epochs: passes over the set. Defaults to 10.
        batch_size: images per step. Defaults to 32.
        learning_rate: Adam's initial rate, cosine-decayed to 0. Defaults to 2e-3.
        seed: seed of the weights, the shuffling and the flips. Defaults to 0.
        one_step: train the class-aware one-step variant. Defaults to False.
        augment: random horizontal flips. Defaults to True.
        jit_compile: compile the step with XLA (see the module docstring). Defaults to True.
        callbacks: extra Keras callbacks. Defaults to ().
        verbose: Keras verbosity. Defaults to 2.
        **detector_kwargs: more arguments of the `detector` builder.
    """
    if not isinstance(train_set, DetectionSet):
        raise ValueError(f"train_set must be a DetectionSet, got {type(train_set).__name__}")
    warn_if_xla_is_off(jit_compile)
    keras.utils.set_random_seed(seed)
    model = detector(num_classes=len(train_set.class_names),
                     input_shape=train_set.images.shape[1:], one_step=one_step,
                     box_loss=box_loss, **detector_kwargs)
    batches = DetectionBatches(train_set, batch_size, shuffle=True, seed=seed,
                               augment=random_flip if augment else None)
    model.compile(optimizer=_optimizer(learning_rate, epochs * len(batches)),
                  jit_compile=jit_compile)
    history = model.fit(batches, epochs=epochs, callbacks=list(callbacks), verbose=verbose)
    return model, history


def fit_classifier(train_set: DetectionSet, head=None, epochs=8, batch_size=128,
                   learning_rate=2e-3, seed=0, crop_size=32, context=1.25, jitter=0.1,
                   copies=2, background=1.0, jit_compile=True, verbose=2, **classifier_kwargs):
    """Build and train the step-2 crop classifier (K classes + background); returns
    (model, class_scale, History).

    Args:
        train_set: the `DetectionSet` the crops come from.
        head: classifier head; None = "intra_inter" when available, else "softmax".
        epochs: passes over the crops. Defaults to 8.
        batch_size: crops per step. Defaults to 128.
        learning_rate: Adam's initial rate, cosine-decayed to 0. Defaults to 2e-3.
        seed: seed of the weights and the crops. Defaults to 0.
        crop_size, context, jitter, copies, background: see `classifier_crops`.
        jit_compile: compile the step with XLA. Defaults to True.
        verbose: Keras verbosity. Defaults to 2.
        **classifier_kwargs: more arguments of the `crop_classifier` builder.
    """
    warn_if_xla_is_off(jit_compile)
    head = head or default_head()
    num_classes = len(train_set.class_names)
    crops, labels = classifier_crops(train_set.images, train_set.boxes, train_set.classes,
                                     num_classes, crop_size, context, jitter, copies,
                                     background, seed=seed)
    keras.utils.set_random_seed(seed)
    model = crop_classifier(num_classes + 1, crops.shape[1:], head=head, **classifier_kwargs)
    loss, class_scale = classifier_loss(head)
    steps = epochs * int(np.ceil(len(crops) / batch_size))
    model.compile(optimizer=_optimizer(learning_rate, steps), loss=loss,
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=jit_compile)
    history = model.fit(crops, labels, batch_size=batch_size, epochs=epochs, shuffle=True,
                        verbose=verbose)
    return model, class_scale, history


def train_two_step(train_set: DetectionSet, box_loss="eiou", epochs=10, classifier_epochs=8,
                   batch_size=32, learning_rate=2e-3, seed=0, one_step=False, head=None,
                   jit_compile=True, verbose=2, detector_kwargs=None, classifier_kwargs=None,
                   pipeline_kwargs=None):
    """Train step 1 (and step 2 unless `one_step`) and assemble the `TwoStepDetector`.

    Returns:
        (pipeline, {"detector": History, "classifier": History or None}).
    """
    model, history = fit_detector(train_set, box_loss, epochs, batch_size, learning_rate, seed,
                                  one_step, jit_compile=jit_compile, verbose=verbose,
                                  **(detector_kwargs or {}))
    classifier, class_scale, classifier_history = None, 1.0, None
    if not one_step:
        classifier, class_scale, classifier_history = fit_classifier(
            train_set, head, classifier_epochs, seed=seed, jit_compile=jit_compile,
            verbose=verbose, **(classifier_kwargs or {}))
    pipeline = TwoStepDetector(model, classifier, class_names=train_set.class_names,
                               class_scale=class_scale, **(pipeline_kwargs or {}))
    return pipeline, {"detector": history, "classifier": classifier_history}


def objectness_ground_truth(data: DetectionSet) -> dict:
    """The ground truth with every class set to 0, to score step 1 alone (class-agnostic)."""
    return {"boxes": data.boxes, "classes": np.where(data.classes >= 0, 0, -1),
            "difficult": data.difficult}


def evaluate_pipeline(pipeline: TwoStepDetector, test_set: DetectionSet,
                      batch_size=32) -> dict:
    """AP of the pipeline and of its step 1 alone (class-agnostic), plus timing."""
    from zoo.detection_eval import evaluate_detections

    started = time.perf_counter()
    detections = pipeline.predict(test_set.images, batch_size)
    seconds = time.perf_counter() - started
    result = evaluate_detections(detections, test_set, test_set.class_names)
    step1 = []
    for start in range(0, len(test_set), batch_size):
        step1 += pipeline.select(pipeline.step1(test_set.images[start:start + batch_size]))
    agnostic = evaluate_detections([(b, s, np.zeros(len(b), np.int32)) for b, s, _ in step1],
                                   objectness_ground_truth(test_set), ("object",))
    return {"result": result, "detections": detections, "seconds": seconds,
            "step1_map_50": float(agnostic["map_50"]), "step1_map": float(agnostic["map"])}


def run(config) -> dict:
    """The `python -m zoo.train --model detector` run: train on synthetic scenes, evaluate,
    write the run folder; returns the metrics dict.

    Reads from `config` (a `zoo.train.TrainConfig`, or any object with these attributes):
    out, epochs, batch_size, learning_rate, seed, train_limit (training scenes, default
    2000), test_limit (test scenes, default 500), verbose, and optionally box_loss
    (default "eiou"), one_step (default False), classifier_epochs (default 8).

    The folder receives pipeline/ and pipeline_fused/ (`TwoStepDetector.save`),
    history.csv (step 1), metrics.json (COCO mAP, AP50, precision / recall / F1, per-class
    AP, step-1 class-agnostic AP, both pipelines' AP, timings, config), pr_curves.png and
    detections.png.
    """
    from zoo.datasets.detection import synthetic_scene_set
    from zoo.detection_eval import plot_detection_gallery, plot_pr_curves

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    box_loss = getattr(config, "box_loss", "eiou")
    one_step = bool(getattr(config, "one_step", False))
    train_set = synthetic_scene_set(config.train_limit or DEFAULT_TRAIN_IMAGES, seed=0)
    test_set = synthetic_scene_set(config.test_limit or DEFAULT_TEST_IMAGES, seed=1)
    started = time.perf_counter()
    pipeline, histories = train_two_step(
        train_set, box_loss=box_loss, epochs=config.epochs, batch_size=config.batch_size,
        learning_rate=config.learning_rate, seed=config.seed, one_step=one_step,
        classifier_epochs=getattr(config, "classifier_epochs", 8), verbose=config.verbose)
    train_seconds = time.perf_counter() - started
    evaluation = evaluate_pipeline(pipeline, test_set)
    fused = pipeline.fused()
    fused_evaluation = evaluate_pipeline(fused, test_set)
    pipeline.save(out / "pipeline")
    fused.save(out / "pipeline_fused")
    history = histories["detector"].history
    keys = sorted(history)
    lines = ["epoch," + ",".join(keys)] + [
        f"{e}," + ",".join(repr(float(history[k][e])) for k in keys)
        for e in range(len(history[keys[0]]))]
    (out / "history.csv").write_text("\n".join(lines) + "\n")
    result = evaluation["result"]
    title = f"detector · synth_scenes · {box_loss}{' · one-step' if one_step else ''}"
    plot_pr_curves(result, out / "pr_curves.png", title)
    plot_detection_gallery(test_set.images[:16], test_set.subset(range(16)),
                           evaluation["detections"][:16], test_set.class_names,
                           out / "detections.png", title=title,
                           score_threshold=_gallery_threshold(result))
    scalar = {k: float(v) for k, v in result.items() if isinstance(v, (int, float))}
    metrics = {
        **scalar,
        "per_class": result["per_class"],
        "step1_map_50": evaluation["step1_map_50"], "step1_map": evaluation["step1_map"],
        "fused_map_50": float(fused_evaluation["result"]["map_50"]),
        "fused_map": float(fused_evaluation["result"]["map"]),
        "classifier_accuracy": (float(histories["classifier"].history["accuracy"][-1])
                                if histories["classifier"] else None),
        "train_seconds": train_seconds,
        "test_seconds_per_image": evaluation["seconds"] / len(test_set),
        "fused_test_seconds_per_image": fused_evaluation["seconds"] / len(test_set),
        "train_images": len(train_set), "test_images": len(test_set),
        "parameters": {"detector": pipeline.detector.count_params(),
                       "classifier": (pipeline.classifier.count_params()
                                      if pipeline.classifier is not None else 0)},
        "box_loss": box_loss, "one_step": one_step, "seed": config.seed,
        "pipeline": pipeline.config(),
        "config": config.to_json() if hasattr(config, "to_json") else vars(config),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default))
    return metrics


def _gallery_threshold(result):
    """The best-F1 score threshold (0.5 when undefined)."""
    value = float(result.get("score_threshold", float("nan")))
    return value if np.isfinite(value) else 0.5


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
