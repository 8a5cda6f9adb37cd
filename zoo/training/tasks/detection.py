"""The detection task: the two-step detector trained end to end (step 1, then step 2).

    python -m zoo.train --model detector                       # synthetic scenes, EIoU
    python -m zoo.train --model detector --dataset voc:PATH --loss ciou
    python -m zoo.train --model detector --dataset neon_trees --image-size 256  # tiled

    from zoo.training.tasks.detection import train_two_step
    pipeline, histories = train_two_step(synthetic_scene_set(2000, seed=0), box_loss="eiou")
    evaluate_detections(pipeline.predict(test.images), test, test.class_names)

Step 1 trains on `DetectionBatches` of the set (augmented: random horizontal flips, or any
`BoxAugmenter`); step 2 trains on `classifier_crops` of the same set (jittered ground-truth
crops + background crops). The two are independent, so either can be retrained alone.

Datasets of the run (`load_detection_data`):
- `synth_scenes`: 2000 training scenes (seed 0) and 500 test scenes (seed 1), trained with
  random horizontal flips;
- `voc:PATH`: a Pascal VOC folder (`load_voc`, images letterboxed to `--image-size`, 128
  px by default). If
  `PATH/ImageSets/Main/` has `test.txt`, the test images are those and the training images
  `trainval.txt` (else `train.txt`); else `val.txt` with `train.txt`; else every annotated
  image, split 80/20 by a permutation seeded with `SPLIT_SEED` = 0 (fixed, so runs with
  different `--seed`s are scored on the same test images). `load_detection_data` gives
  `BoxAugmenter()` (flip, zoom 0.75-1.33, random crops; boxes move, clip and drop with the
  pixels); the task trains with zoom `REAL_DATA_ZOOM` (0.5-2) unless `--zoom` says otherwise
  (`--colour-jitter` adds a colour jitter and `--ema` averages step 1's weights, both off
  by default), and starts step 2's crop classifier from step 1's backbone weights
  (`classifier_kwargs`);
- `coco:ANNOTATIONS.json[,IMAGES_DIR]`: a COCO-JSON file (`load_coco`), split and augmented
  as a VOC folder without ImageSets;
- `neon_trees`: NEON aerial tiles of 400-2,500 px with 25-45 px tree crowns
  (`zoo.datasets.neon_trees`, read out of the `deepforest` wheel): three tiles for training,
  `2019_YELL_2_541000_4977000_image_crop` (279 trees) for testing, always tiled.

Tiled (`--tiles` for voc/coco, always for `neon_trees`): images stay at native resolution;
step 1 trains on `RandomTiles` (random `--image-size` windows, rotated and mirrored, zoomed
by `--zoom`, default native pixels) and both
steps detect tile by tile (`detect_tiled`, `--tile-overlap`) in test images larger than the
input. COCOeval then counts up to `TILED_MAX_DETECTIONS` detections per image (its 100 would
cap recall in a 279-tree tile), and the metrics add "untiled_map_50": the same detector on
each test image letterboxed whole into its input.
`--train-limit` / `--test-limit` keep the first N images of each part.

The run folder holds both steps' models, the pipeline (`pipeline/`, and `pipeline_fused/`
with every RepVGG block folded) and, on the TensorFlow backend, `savedmodel/`: the fused
pipeline as one SavedModel whose `serve(images)` runs step 1, NMS and step 2 in the graph
(`zoo.models.detector.export`; images at the input size, tiles merged by the caller).

Both models compile with `jit_compile=True` by default. Besides speed, this is a workaround:
under TensorFlow 2.21 on CPU with oneDNN on (the default), the gradient of a 1x1 stride-2
convolution on a few input channels (`Conv2DBackpropFilter`, the RepVGG stem's 1x1 branch on
RGB images) corrupts memory and crashes the process for some input sizes (seen at 64 and
128 px); XLA does not use that kernel. `TF_ENABLE_ONEDNN_OPTS=0` (set before TensorFlow is
imported) is the other way out.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import keras
import numpy as np

from zoo.datasets.detection import (IMAGE_SIZE, BoxAugmenter, DetectionBatches,
                                    DetectionSet, flip_horizontal)
from zoo.datasets.label_checks import check_class_labels
from zoo.boxes import nms
from zoo.models.detector.model import classifier_loss, crop_classifier, default_head, detector
from zoo.models.detector.pipeline import (TwoStepDetector, _sigmoid, classifier_crops,
                                          run_step1)
from zoo.models.detector.tiling import detect_tiled
from zoo.models.detector.targets import BOX_LOSSES, SCORE_LOSSES
from zoo.training.config import ConfigError
from zoo.training.optimizers import make_optimizer
from zoo.training.tasks.base import Option, Prepared, Task

DEFAULT_TRAIN_IMAGES, DEFAULT_TEST_IMAGES = 2000, 500
SPLIT_SEED, TEST_FRACTION = 0, 0.2
# The forms `--dataset` takes for the detector.
DATASET_FORMS = {"synth_scenes": "synth_scenes", "neon_trees": "neon_trees", "voc": "voc:PATH",
                 "coco": "coco:ANNOTATIONS.json[,IMAGES_DIR]"}
# COCOeval's cap of detections per image when scoring tiled (dense) images; its default 100
# would cap recall at 100 objects, and the NEON test tile holds 279 trees
TILED_MAX_DETECTIONS = 1000
CLASSIFIER_EPOCHS = 8
# The backbone real-image runs start from: a RepVGG with the detector's default widths and
# depths trained on CIFAR-10 photos (benchmarks/results/detector.md: on kangaroo and NEON it
# beats random initialisation at the same budget).
REAL_DATA_BACKBONE = "repvgg_tiny.cifar10"
# Step 2 on real images: the crop classifier with the widths and depths of that backbone,
# started from the same weights (CIFAR-10's 32-px photos are its own input size). On a
# validation split of the kangaroo training photos its p(kangaroo) separates object crops
# from background crops with ROC AUC 0.87 ± 0.02 over 3 seeds, against 0.60 ± 0.01 from
# random weights (benchmarks/results/crop_classifier.md).
REAL_DATA_CLASSIFIER = {"widths": (16, 32, 64, 128), "depths": (1, 2, 2, 2)}
# Step 1's score loss on real images: on a validation split of the kangaroo training photos
# (the test photos unseen) the quality focal score beat the focal one on AP@.5, AP@.75 and
# mAP over 4 seeds; synthetic scenes keep the loss their benchmark numbers were made with.
REAL_DATA_SCORE_LOSS = "quality_focal"
# The training zoom range on letterboxed real images: on the same validation split of the
# kangaroo training photos (160 epochs, 2 seeds) 0.5-2 beat BoxAugmenter's default 0.75-1.33
# on step-1 AP@.5 (0.576 against 0.486). Tiles keep native pixels (1-1).
REAL_DATA_ZOOM = (0.5, 2.0)
# `--colour-jitter` (saturation, contrast, brightness strengths of `BoxAugmenter`) and
# `--ema` (an average of step 1's weights) are off by default: 0.5,0.3,0.3 was ahead on 3 of
# 4 folds of the kangaroo training photos but behind on the test photos (two-step AP@.5
# 0.497 ± 0.027 against 0.546 ± 0.029, benchmarks/results/detector.md), and the average
# added nothing on the folds (README).
COLOUR_KEYS = ("saturation", "contrast", "brightness")
ZOOM_LIMITS = (0.25, 4.0)  # --zoom beyond these shrinks objects to nothing or to noise
SIZE_MULTIPLE = 16  # the default detector's deepest stride (its stride-8 grid reads stage 16)


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


def build_detector(train_set: DetectionSet, box_loss="eiou", epochs=10, batch_size=32,
                   learning_rate=2e-3, seed=0, one_step=False, augment=True, jit_compile=True,
                   tile_size=None, tile_zoom=None, init_from=None, ema_momentum=None,
                   mosaic=0.0, **detector_kwargs):
    """The compiled step-1 model for a `DetectionSet` and its training batches.

    With `tile_size` the model takes (tile_size, tile_size) inputs and trains on
    `RandomTiles` of the (native-resolution) set, rotated and mirrored, each window zoomed by
    a factor log-uniform in `tile_zoom` (min, max) (None: (1, 1), native pixels); `augment`
    is then unused. With `init_from` (shipped weights such as "detector.synth_scenes", a run
    folder or a .keras file, as `--init-from`) the model starts from that step 1, layer by
    layer (`zoo.training.transfer`); a ValueError if a layer cannot be copied (another
    architecture: its weights would silently stay random). With `ema_momentum` the
    optimizer averages the weights over the run and `fit` ends with the average
    (`make_optimizer`). `mosaic` is the probability of a 2 x 2 mosaic per training image
    (`DetectionBatches`); not with tiles.

    Returns:
        (model, batches): a compiled `DenseDetector` and the `DetectionBatches` (or
        `RandomTiles`) to fit it on. See `fit_detector` for the arguments.
    """
    if not isinstance(train_set, DetectionSet):
        raise ValueError(f"train_set must be a DetectionSet, got {type(train_set).__name__}")
    if augment is True:
        augment = random_flip
    elif augment is not None and augment is not False and not callable(augment):
        raise ValueError(f"augment must be True, False, None or a callable (image, boxes, "
                         f"classes, rng), got {augment!r}")
    warn_if_xla_is_off(jit_compile)
    keras.utils.set_random_seed(seed)
    if tile_size is not None and mosaic:
        raise ValueError("mosaic is for letterboxed images; tiles are windows of large "
                         "images already")
    if tile_size is not None:
        from zoo.datasets.detection_tiles import RandomTiles

        batches = RandomTiles(train_set, tile_size, batch_size=batch_size, seed=seed,
                              scale=tile_zoom or (1.0, 1.0))
        input_shape = (*batches.tile_size, train_set.images.shape[-1])
    else:
        batches = DetectionBatches(train_set, batch_size, shuffle=True, seed=seed,
                                   augment=augment or None, mosaic=mosaic)
        input_shape = train_set.images.shape[1:]
    model = detector(num_classes=len(train_set.class_names), input_shape=input_shape,
                     one_step=one_step, box_loss=box_loss, **detector_kwargs)
    if init_from is not None:
        from zoo.training.transfer import initialise_from

        kept = initialise_from(model, init_from, "detector")["kept"]
        if kept:
            raise ValueError(f"init_from {init_from!r}: layers not copied (another "
                             f"architecture?): {kept}")
    model.compile(optimizer=make_optimizer(learning_rate, epochs * len(batches),
                                           global_clipnorm=10.0, ema_momentum=ema_momentum),
                  jit_compile=jit_compile)
    return model, batches


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
        seed: seed of the weights, the shuffling and the augmentation. Defaults to 0.
        one_step: train the class-aware one-step variant. Defaults to False.
        augment: True for random horizontal flips (`random_flip`), False or None for none,
            or a `DetectionBatches` augment callable such as a `BoxAugmenter`. Defaults to
            True.
        jit_compile: compile the step with XLA (see the module docstring). Defaults to True.
        callbacks: extra Keras callbacks. Defaults to ().
        verbose: Keras verbosity. Defaults to 2.
        **detector_kwargs: more arguments of `build_detector` (`tile_size`, `init_from`,
            `ema_momentum`, ...) and of the `detector` builder.
    """
    model, batches = build_detector(train_set, box_loss, epochs, batch_size, learning_rate,
                                    seed, one_step, augment, jit_compile, **detector_kwargs)
    history = model.fit(batches, epochs=epochs, callbacks=list(callbacks), verbose=verbose)
    return model, history


def build_classifier(train_set: DetectionSet, head=None, epochs=CLASSIFIER_EPOCHS,
                     batch_size=128, learning_rate=2e-3, seed=0, crop_size=32, context=1.25,
                     jitter=0.1, copies=2, background=1.0, jit_compile=True, negatives=None,
                     **classifier_kwargs):
    """The compiled step-2 crop classifier (K classes + background) and its training crops;
    `negatives` (per image, boxes to crop as background: `mine_hard_negatives`) go to
    `classifier_crops`.

    Returns:
        (model, class_scale, crops, labels). See `fit_classifier` for the arguments.
    """
    warn_if_xla_is_off(jit_compile)
    head = head or default_head()
    num_classes = len(train_set.class_names)
    crops, labels = classifier_crops(train_set.images, train_set.boxes, train_set.classes,
                                     num_classes, crop_size, context, jitter, copies,
                                     background, seed=seed, negatives=negatives)
    keras.utils.set_random_seed(seed)
    model = crop_classifier(num_classes + 1, crops.shape[1:], head=head, **classifier_kwargs)
    loss, class_scale = classifier_loss(head)
    steps = epochs * int(np.ceil(len(crops) / batch_size))
    model.compile(optimizer=make_optimizer(learning_rate, steps, global_clipnorm=10.0),
                  loss=loss,
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=jit_compile)
    return model, class_scale, crops, labels


def fit_classifier(train_set: DetectionSet, head=None, epochs=CLASSIFIER_EPOCHS, batch_size=128,
                   learning_rate=2e-3, seed=0, crop_size=32, context=1.25, jitter=0.1,
                   copies=2, background=1.0, jit_compile=True, verbose=2, callbacks=(),
                   **classifier_kwargs):
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
        callbacks: Keras callbacks. Defaults to ().
        **classifier_kwargs: more arguments of the `crop_classifier` builder.
    """
    model, class_scale, crops, labels = build_classifier(
        train_set, head, epochs, batch_size, learning_rate, seed, crop_size, context, jitter,
        copies, background, jit_compile, **classifier_kwargs)
    history = model.fit(crops, labels, batch_size=batch_size, epochs=epochs, shuffle=True,
                        callbacks=list(callbacks), verbose=verbose)
    return model, class_scale, history


def train_two_step(train_set: DetectionSet, box_loss="eiou", epochs=10, classifier_epochs=8,
                   batch_size=32, learning_rate=2e-3, seed=0, one_step=False, head=None,
                   jit_compile=True, verbose=2, detector_kwargs=None, classifier_kwargs=None,
                   pipeline_kwargs=None, augment=True, callbacks=()):
    """Train step 1 (and step 2 unless `one_step`) and assemble the `TwoStepDetector`.

    `augment` and `callbacks` go to `fit_detector` (step 1), e.g. `step1_evaluator(test)`.

    Returns:
        (pipeline, {"detector": History, "classifier": History or None}).
    """
    model, history = fit_detector(train_set, box_loss, epochs, batch_size, learning_rate, seed,
                                  one_step, augment=augment, jit_compile=jit_compile,
                                  callbacks=callbacks, verbose=verbose,
                                  **(detector_kwargs or {}))
    classifier, class_scale, classifier_history = None, 1.0, None
    if not one_step:
        classifier, class_scale, classifier_history = fit_classifier(
            train_set, head, classifier_epochs, seed=seed, jit_compile=jit_compile,
            verbose=verbose, **(classifier_kwargs or {}))
    pipeline = TwoStepDetector(model, classifier, class_names=train_set.class_names,
                               class_scale=class_scale, **(pipeline_kwargs or {}))
    return pipeline, {"detector": history, "classifier": classifier_history}


def mine_hard_negatives(model, train_set: DetectionSet, tiled=False, batch_size=32,
                        **kwargs) -> list:
    """Step 1's false positives on its own training images (`false_positive_boxes`): per
    image the boxes step 1 scores as objects that overlap no object (IoU < 0.3), at most
    max(4, its object count), best first. Trained on as background, they let step 2 lower
    exactly the scores step 1 gets wrong; random background boxes rarely look like an
    object. `tiled` runs step 1 tile by tile over native-resolution images."""
    from zoo.models.detector.pipeline import false_positive_boxes

    step1 = Step1Only(model)
    if tiled:
        detections = tiled_detections(step1, train_set)
    else:
        detections = []
        for start in range(0, len(train_set), batch_size):
            detections += step1.detect(train_set.images[start:start + batch_size])
    return false_positive_boxes(detections, train_set.boxes, train_set.classes, **kwargs)


def objectness_ground_truth(data: DetectionSet) -> dict:
    """The ground truth with every class set to 0, to score step 1 alone (class-agnostic)."""
    return {"boxes": data.boxes, "classes": np.where(data.classes >= 0, 0, -1),
            "difficult": data.difficult}


def step1_detections(model, images, score_threshold=0.05, nms_iou=0.5, max_detections=100,
                     pre_nms_top_k=1000, flip_tta=False) -> list:
    """Class-agnostic detections of a step-1 model alone: per image (boxes (k, 4), scores
    (k,), classes (k,) = 0).

    The selection of `TwoStepDetector.select` with the same defaults: score =
    sigmoid(best logit) >= `score_threshold`, the `pre_nms_top_k` best, boxes clipped to the
    image, class-agnostic NMS at `nms_iou` down to `max_detections`. So the last value of
    `step1_evaluator` equals `evaluate_pipeline(...)["step1_map_50"]` of the trained pipeline.
    `flip_tta` averages each image's outputs with its mirror image's (`run_step1`).
    """
    out = run_step1(model, images, flip_tta)
    logits, boxes = out["scores"], out["boxes"]
    height, width = np.asarray(images).shape[1:3]
    limits = np.asarray([width, height, width, height], np.float32)
    detections = []
    for image_logits, image_boxes in zip(logits, boxes):
        scores = _sigmoid(image_logits).max(axis=-1)
        keep = np.nonzero(scores >= score_threshold)[0]
        keep = keep[np.argsort(-scores[keep], kind="stable")[:pre_nms_top_k]]
        kept = np.clip(image_boxes[keep], 0.0, limits)
        order = nms(kept, scores[keep], nms_iou, max_detections)
        detections.append((kept[order].astype(np.float32), scores[keep][order].astype(np.float32),
                           np.zeros(len(order), np.int32)))
    return detections


def step1_evaluator(test_set: DetectionSet, every_n_epochs=1, prefix="step1_",
                    batch_size=32, **select_kwargs):
    """A `DetectionEvaluator` callback for step 1 (`fit_detector(callbacks=[...])`): after
    every `every_n_epochs`-th epoch (and the last) it scores the model being trained,
    class-agnostic (`step1_detections` against `objectness_ground_truth`), and writes
    `step1_map_50`, `step1_map`, ... into the logs (NaN on skipped epochs); `.history` keeps
    (epoch, values). Its cost is one pass of the model over `test_set` plus COCOeval.
    """
    from zoo.evaluation.detection import DetectionEvaluator

    def predict(images):
        return step1_detections(evaluator.model, images, **select_kwargs)

    evaluator = DetectionEvaluator((test_set.images, objectness_ground_truth(test_set)),
                                   predict, every_n_epochs, class_names=("object",),
                                   batch_size=batch_size, prefix=prefix)
    return evaluator


class Step1Only:
    """A step-1 model alone, class-agnostic, with the pipeline's selection
    (`step1_detections`): `detect(images)` gives (boxes, scores, classes = 0) per image, so
    `detect_tiled` can run it. `Step1Only.of(pipeline)` takes a pipeline's model and
    selection settings."""

    def __init__(self, model, score_threshold=0.05, nms_iou=0.5, max_detections=100,
                 pre_nms_top_k=1000, flip_tta=False):
        self.model, self.image_shape = model, tuple(int(s) for s in model.input_shape[1:3])
        self.score_threshold, self.nms_iou = float(score_threshold), float(nms_iou)
        self.max_detections, self.pre_nms_top_k = int(max_detections), int(pre_nms_top_k)
        self.one_step, self.class_agnostic_nms = False, True
        self.flip_tta = bool(flip_tta)

    @classmethod
    def of(cls, pipeline: TwoStepDetector):
        return cls(pipeline.detector, pipeline.score_threshold, pipeline.nms_iou,
                   pipeline.max_detections, pipeline.pre_nms_top_k, pipeline.flip_tta)

    def detect(self, images) -> list:
        return step1_detections(self.model, images, self.score_threshold, self.nms_iou,
                                self.max_detections, self.pre_nms_top_k, self.flip_tta)


def needs_tiles(pipeline, test_set: DetectionSet) -> bool:
    """True when some test image is larger than the pipeline's input (tiled inference)."""
    height, width = pipeline.image_shape
    sizes = np.asarray(test_set.original_sizes)
    return tuple(test_set.images.shape[1:3]) != (height, width) and bool(
        np.any((sizes[:, 0] > height) | (sizes[:, 1] > width)))


def tiled_detections(detector, test_set: DetectionSet, overlap=None) -> list:
    """`detect_tiled` over each test image's own region (its `original_sizes`)."""
    return [detect_tiled(detector, test_set.images[i, :h, :w], overlap)
            for i, (h, w) in enumerate(np.asarray(test_set.original_sizes))]


def letterboxed_detections(detector, test_set: DetectionSet, batch_size=32) -> list:
    """Each test image's own region letterboxed whole into the detector's input, detected,
    and the boxes mapped back to the image's pixels: what a detector without tiling sees."""
    from zoo.datasets.detection import crop_region

    height, width = detector.image_shape
    detections = []
    for start in range(0, len(test_set), batch_size):
        images, regions = [], []
        for i in range(start, min(start + batch_size, len(test_set))):
            h, w = (int(v) for v in test_set.original_sizes[i])
            scale = min(width / w, height / h)
            x0, y0 = -(width / scale - w) / 2, -(height / scale - h) / 2
            region = (x0, y0, x0 + width / scale, y0 + height / scale)
            image, _, _ = crop_region(test_set.images[i, :h, :w], np.zeros((1, 4)), [-1],
                                      region, (height, width))
            images.append(image)
            regions.append((x0, y0, scale))
        for (b, s, c), (x0, y0, scale) in zip(detector.detect(np.stack(images)), regions):
            detections.append((b / scale + np.asarray([x0, y0, x0, y0], np.float32), s, c))
    return detections


def evaluate_pipeline(pipeline: TwoStepDetector, test_set: DetectionSet, batch_size=32,
                      tiled=None, overlap=None) -> dict:
    """AP of the pipeline and of its step 1 alone (class-agnostic), plus timing.

    "precision_gain": the pipeline's precision minus step 1's at equal recall, both
    class-agnostic at IoU 0.5 (`precision_gain`): what step 2 does to step 1's ranking.

    With `tiled` (default: when a test image is larger than the input, `needs_tiles`) both
    run tile by tile (`detect_tiled`, `overlap` as there), COCOeval keeps up to
    `TILED_MAX_DETECTIONS` per image, and "untiled_map_50" / "untiled_step1_map_50" score
    the same detector on each image letterboxed whole into its input.
    """
    from zoo.evaluation.detection import evaluate_detections, precision_gain

    tiled = needs_tiles(pipeline, test_set) if tiled is None else bool(tiled)
    cap = TILED_MAX_DETECTIONS if tiled else 100
    step1_only = Step1Only.of(pipeline)
    started = time.perf_counter()
    if tiled:
        detections = tiled_detections(pipeline, test_set, overlap)
    else:
        detections = pipeline.predict(test_set.images, batch_size)
    seconds = time.perf_counter() - started
    result = evaluate_detections(detections, test_set, test_set.class_names,
                                 max_detections=cap)
    if tiled:
        step1 = tiled_detections(step1_only, test_set, overlap)
    else:
        step1 = []
        for start in range(0, len(test_set), batch_size):
            step1 += step1_only.detect(test_set.images[start:start + batch_size])
    objects = objectness_ground_truth(test_set)
    agnostic = evaluate_detections(step1, objects, ("object",), max_detections=cap)
    pipeline_agnostic = evaluate_detections(
        [(b, s, np.zeros_like(c)) for b, s, c in detections], objects, ("object",),
        max_detections=cap)
    out = {"result": result, "detections": detections, "seconds": seconds,
           "step1_map_50": float(agnostic["map_50"]), "step1_map": float(agnostic["map"]),
           "precision_gain": precision_gain(pipeline_agnostic["pr_curves"]["all"],
                                            agnostic["pr_curves"]["all"]),
           "tiled": tiled, "max_detections": cap}
    if tiled:
        whole = evaluate_detections(letterboxed_detections(pipeline, test_set, batch_size),
                                    test_set, test_set.class_names, max_detections=cap)
        whole_step1 = evaluate_detections(letterboxed_detections(step1_only, test_set,
                                                                 batch_size),
                                          objectness_ground_truth(test_set), ("object",),
                                          max_detections=cap)
        out["untiled_map_50"] = float(whole["map_50"])
        out["untiled_step1_map_50"] = float(whole_step1["map_50"])
    return out


def split_indices(count, test_fraction=TEST_FRACTION, seed=SPLIT_SEED):
    """A seeded train/test split of `count` items: (train indices, test indices), both sorted.

    The first round(`test_fraction`·count) items (at least 1) of
    `numpy.random.default_rng(seed).permutation(count)` are the test part.
    """
    if int(count) < 2:
        raise ValueError(f"need at least 2 images to split into train and test, got {count}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    order = np.random.default_rng(seed).permutation(int(count))
    n_test = min(int(count) - 1, max(1, round(float(test_fraction) * int(count))))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _image_set_split(root, names):
    """(train indices, test indices, description) from root/ImageSets/Main (image ids are
    the file stems of `names`), or None when it holds no usable lists."""
    lists = Path(root) / "ImageSets" / "Main"
    chosen = None
    if (lists / "test.txt").exists():
        train_file = "trainval.txt" if (lists / "trainval.txt").exists() else "train.txt"
        chosen = (train_file, "test.txt")
    elif (lists / "train.txt").exists() and (lists / "val.txt").exists():
        chosen = ("train.txt", "val.txt")
    if chosen is None or not (lists / chosen[0]).exists():
        return None
    position = {Path(name).stem: i for i, name in enumerate(names)}
    parts = []
    for file in chosen:
        ids = (lists / file).read_text().split()
        missing = [i for i in ids if i not in position]
        if missing:
            raise ValueError(f"{lists / file} names images without annotations, e.g. "
                             f"{missing[:3]}")
        parts.append(np.asarray(sorted(position[i] for i in ids), np.int64))
    return parts[0], parts[1], f"ImageSets/Main/{chosen[0]} and {chosen[1]}"


def checked_strides(value):
    """The step-1 output stride(s): None (the builder's default, 8), one stride, or a pyramid
    of consecutive powers of two given as "8,16,32" or a tuple; else ConfigError."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else (
        [value] if isinstance(value, (int, np.integer)) else list(value))
    try:
        strides = [int(str(p).strip()) for p in parts]
    except ValueError:
        strides = []
    if (not strides or any(s < 2 or s & (s - 1) for s in strides)
            or any(b != 2 * a for a, b in zip(strides, strides[1:]))):
        raise ConfigError(f"strides must be one power of two (8) or consecutive powers of two "
                          f"(8,16,32), got {value!r}")
    return strides[0] if len(strides) == 1 else tuple(strides)


def _numbers(value) -> tuple:
    """Floats from "A,B,..." or a sequence; () when one of them is not a number."""
    parts = str(value).split(",") if isinstance(value, str) else list(value)
    try:
        return tuple(float(str(part).strip()) for part in parts)
    except ValueError:
        return ()


def checked_zoom(value):
    """The run's (min, max) training zoom from "MIN,MAX" or a pair (None: the default), each
    in [`ZOOM_LIMITS`] and min <= max; else ConfigError."""
    if value is None:
        return None
    zoom = _numbers(value)
    low, high = ZOOM_LIMITS
    if len(zoom) != 2 or not low <= zoom[0] <= zoom[1] <= high:
        raise ConfigError(f"zoom must be MIN,MAX with {low} <= MIN <= MAX <= {high}, got "
                          f"{value!r}")
    return zoom


def checked_colour(value):
    """The run's (saturation, contrast, brightness) jitter strengths from "S,C,B" or a
    triple (None: no jitter), each in [0, 1]; else ConfigError."""
    if value is None:
        return None
    colour = _numbers(value)
    if len(colour) != 3 or not all(0.0 <= c <= 1.0 for c in colour):
        raise ConfigError(f"colour_jitter must be SATURATION,CONTRAST,BRIGHTNESS, each in "
                          f"[0, 1], got {value!r}")
    return colour


def checked_ema(value):
    """The run's EMA momentum: None (the default), 0 (off) or a number in (0, 1); else
    ConfigError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not (value == 0 or 0.0 < value < 1.0):
        raise ConfigError(f"ema must be 0 (off) or a momentum in (0, 1), got {value!r}")
    return float(value)


def checked_mosaic(value):
    """The run's mosaic probability: None (the default) or a number in [0, 1]; else
    ConfigError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not 0.0 <= value <= 1.0:
        raise ConfigError(f"mosaic must be a probability in [0, 1], got {value!r}")
    return float(value)


def checked_image_size(value) -> tuple:
    """The run's (height, width): `value` an int or a pair, each a multiple of
    `SIZE_MULTIPLE` (the backbone's deepest stride) and at least 2 of them; else ConfigError."""
    sizes = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if (len(sizes) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer))
                               or s < 2 * SIZE_MULTIPLE or s % SIZE_MULTIPLE for s in sizes)):
        raise ConfigError(f"image_size must be a multiple of {SIZE_MULTIPLE} from "
                          f"{2 * SIZE_MULTIPLE} up (or a (height, width) pair of such), got "
                          f"{value!r}")
    return int(sizes[0]), int(sizes[1])


def load_detection_data(dataset="synth_scenes", train_limit=None, test_limit=None,
                        image_size=IMAGE_SIZE, split_seed=SPLIT_SEED,
                        test_fraction=TEST_FRACTION, tiles=False):
    """The train and test `DetectionSet`s of a detector run, and how they were made.

    Args:
        dataset: "synth_scenes", "neon_trees", "voc:PATH" or
            "coco:ANNOTATIONS.json[,IMAGES_DIR]" (see the module docstring).
        train_limit: keep the first N training images. Defaults to None (2000 synthetic
            scenes, or every training image).
        test_limit: keep the first N test images. Defaults to None (500 synthetic scenes,
            or every test image).
        image_size: (height, width) of loaded images (letterboxed). Defaults to (128, 128).
            Unused with `tiles`.
        split_seed: seed of the train/test permutation without ImageSets. Defaults to 0.
        test_fraction: test share of that split. Defaults to 0.2.
        tiles: load voc/coco images at native resolution (`native_canvas`) for tiled
            training and inference. Defaults to False; "neon_trees" is always native.

    Returns:
        (train_set, test_set, info) with info = {"dataset", "split" (in words), "augment"
        (the `fit_detector` augment value: True = flips for synthetic scenes, a
        `BoxAugmenter()` for real images), "train_names", "test_names" (file names; empty
        for synthetic scenes)}.
    """
    from zoo.datasets.detection import load_coco, load_voc, synthetic_scene_set

    dataset = str(dataset)
    prefix, colon, _ = dataset.partition(":")
    kind = DATASET_FORMS[prefix] if colon and prefix in ("voc", "coco") else dataset
    if kind == "synth_scenes":
        train = synthetic_scene_set(train_limit or DEFAULT_TRAIN_IMAGES, seed=0,
                                    image_size=image_size)
        test = synthetic_scene_set(test_limit or DEFAULT_TEST_IMAGES, seed=1,
                                   image_size=image_size)
        return train, test, {"dataset": dataset, "augment": True,
                             "train_names": [], "test_names": [],
                             "split": f"synthetic scenes: {len(train)} for training (seed 0), "
                                      f"{len(test)} for testing (seed 1)"}
    if kind == "neon_trees":
        from zoo.datasets import neon_trees as neon

        root = neon.neon_trees_folder()
        train, test = (load_voc(root, neon.CLASS_NAMES, image_size=None,
                                class_map=neon.CLASS_MAP, names=names)
                       for names in (neon.TRAIN_TILES, neon.TEST_TILES))
        return train, test, {
            "dataset": dataset, "augment": None, "tiles": True,
            "split": f"NEON tree crowns at native resolution: train {', '.join(train.names)} "
                     f"({int(train.num_objects.sum())} trees), test {', '.join(test.names)} "
                     f"({int(test.num_objects.sum())} trees)",
            "train_names": list(train.names), "test_names": list(test.names)}
    native = None if tiles else image_size
    if kind not in DATASET_FORMS.values():
        raise ValueError(f"unknown detection dataset {dataset!r}; known: "
                         f"{', '.join(DATASET_FORMS.values())}")
    where = dataset.split(":", 1)[1]
    if not where:
        raise ValueError(f"{dataset!r} names no path; expected {kind}")
    found = None
    if kind == DATASET_FORMS["voc"]:
        data = load_voc(where, image_size=native)
        found = _image_set_split(where, data.names)
    else:
        annotations, _, images_dir = where.partition(",")
        data = load_coco(annotations, images_dir or None, image_size=native)
    if found is None:
        train_idx, test_idx = split_indices(len(data), test_fraction, split_seed)
        how = (f"{len(data)} images split {1 - test_fraction:.0%}/{test_fraction:.0%} by a "
               f"permutation seeded with {split_seed}")
    else:
        train_idx, test_idx, how = found
    train_idx = train_idx[:train_limit] if train_limit else train_idx
    test_idx = test_idx[:test_limit] if test_limit else test_idx
    train, test = data.subset(train_idx), data.subset(test_idx)
    return train, test, {
        "dataset": dataset, "augment": None if tiles else BoxAugmenter(), "tiles": bool(tiles),
        "split": f"{how}: {len(train)} train / {len(test)} test images",
        "train_names": list(train.names), "test_names": list(test.names)}


def _gallery_threshold(result):
    """The best-F1 score threshold (0.5 when undefined)."""
    value = float(result.get("score_threshold", float("nan")))
    return value if np.isfinite(value) else 0.5


def step2_changes_nothing(gain) -> bool:
    """True when `evaluate_pipeline`'s "precision_gain" says the two-step precision equals
    step 1's at every shared recall level ("min" = "max" = 0): step 2 kept the ranking."""
    if not gain or not gain.get("recall_levels") or gain.get("max") is None:
        return False
    return abs(gain["min"]) < 1e-12 and abs(gain["max"]) < 1e-12


# ------------------------------------------------------------------ the task

class DetectionTask(Task):
    """The two-step detector: stage "detector" (step 1), then stage "classifier" (step 2).

    Metrics: COCO mAP, AP50, AP75, precision / recall / F1 at the best-F1 threshold,
    per-class AP, step 1's class-agnostic AP, the fused pipeline's AP, timings, the split.
    Files: detector.keras, classifier.keras, pipeline/ and pipeline_fused/
    (`TwoStepDetector.save`), history.csv (step 1), history_classifier.csv (step 2),
    pr_curves.png, detections.png.
    """

    name = "detection"
    default_dataset = "synth_scenes"
    dataset_forms = tuple(DATASET_FORMS.values())
    default_loss = "eiou"
    # A real photo set is small (kangaroo: 131 training images): at 128 an epoch would be
    # one or two updates. 32 is what the benchmark and the notebook train with.
    default_batch_size = 32
    stages = ("detector", "classifier")
    op_determinism = False  # XLA is needed (see the module docstring); determinism drops it
    options = {
        "one_step": Option(False, "detection: a class-aware one-step head, no crop "
                           "classifier (for comparison)"),
        "classifier_epochs": Option(CLASSIFIER_EPOCHS, "detection: epochs of the step-2 "
                                    "crop classifier", type=int),
        # Python only (no command-line flag): more builder arguments, e.g. small widths
        "detector_kwargs": Option(None, "", type="python"),
        "classifier_kwargs": Option(None, "", type="python"),
        "image_size": Option(IMAGE_SIZE[0], "detection: side in pixels of the square input "
                             "that images are letterboxed to (a multiple of 16 from 32 up; "
                             "in Python also (height, width)); objects shrink with the "
                             "image, so large photos with small objects need more "
                             "(or --tiles)", type=int),
        "tiles": Option(False, "detection: keep voc/coco images at native resolution, train "
                        "on random windows of --image-size (rotated and mirrored) and detect "
                        "tile by tile in images larger than that; always on for neon_trees"),
        "backbone_weights": Option(None, "detection: start the backbones of step 1 and of the "
                                   "crop classifier from shipped RepVGG weights (python -m "
                                   "zoo.weights list), or 'none' for random; default "
                                   f"{REAL_DATA_BACKBONE} on real images "
                                   "(voc, coco, neon_trees), random on synthetic scenes",
                                   type=str),
        "hard_negatives": Option(False, "detection: step 2 also learns step 1's false "
                                 "positives on the training images as background"),
        "tile_overlap": Option(None, "detection: pixels shared by neighbouring tiles in tiled "
                               "inference (default a quarter of --image-size)", type=int),
        "strides": Option(None, "detection: step 1's output stride, 8 (default), or a "
                          "feature pyramid such as 8,16,32 where each object is learnt on "
                          "the level its size falls in (--image-size must then be a multiple "
                          "of the largest)", type=str),
        "zoom": Option(None, "detection: multi-scale training, each training image (or "
                       "tile window) zoomed by a random factor, log-uniform in MIN,MAX "
                       "(above 1 zooms in), inside the fixed --image-size input; default "
                       f"{','.join(f'{z:g}' for z in REAL_DATA_ZOOM)} on letterboxed real "
                       "images, 1,1 (native pixels) on tiles; synthetic scenes are drawn at "
                       "random sizes already", type=str),
        "colour_jitter": Option(None, "detection: saturation,contrast,brightness jitter of "
                                "the training images, each strength s in [0, 1] scaling by "
                                "a factor in [1 - s, 1 + s], e.g. 0.5,0.3,0.3; default off; "
                                "letterboxed real images only (not tiles or synthetic "
                                "scenes)", type=str),
        "mosaic": Option(None, "detection: probability that a training image becomes a 2 x 2 "
                         "mosaic of itself and three others (YOLOv4), before the other "
                         "augmentations; default off (0); letterboxed real images only",
                         type=float),
        "flip_tta": Option(False, "detection: score with horizontal-flip test-time "
                           "augmentation: step 1 averaged over each test image and its mirror "
                           "image (twice step 1's cost); saved in the pipeline, so the "
                           "exported model does the same"),
        "ema": Option(None, "detection: momentum m of an exponential moving average of step "
                      "1's weights (about 1/(1 - m) steps), which become its final weights, "
                      "e.g. 0.99; default off (0)", type=float),
        "score_loss": Option(None, "detection: what step 1's score learns, 'focal' (1 on "
                             "every cell assigned to an object) or 'quality_focal' (the IoU "
                             "of the cell's box with the object, so scores rank boxes by "
                             f"how well they fit); default {REAL_DATA_SCORE_LOSS} on real "
                             "images, focal on synthetic scenes", type=str,
                             choices=SCORE_LOSSES),
    }
    refuses = {
        "monitor_margins": "it measures class margins of an embedding; the detector's "
                           "step 1 outputs boxes and objectness, not class embeddings",
        "embedding_dim": "the detector's widths are set by its builder",
        "data_dir": "the data is named by --dataset (synth_scenes, neon_trees, voc:PATH, "
                    "coco:FILE)",
        "validation_split": "the detector has no validation split; it is scored on its "
                            "test split after training",
        "distribute": "its step compiles with XLA (jit_compile), whose kernels tf.distribute "
                      "could not place on two devices in our tests; train it on one device",
    }

    def losses(self):
        return list(BOX_LOSSES)

    def check(self, config):
        super().check(config)
        epochs = self.option(config, "classifier_epochs")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigError(f"classifier_epochs must be a whole number >= 1, got {epochs!r}")
        size = checked_image_size(self.option(config, "image_size"))
        if self.option(config, "tiles") and str(config.dataset) == "synth_scenes":
            raise ConfigError("--tiles reads large real images (voc:PATH, coco:FILE, "
                              "neon_trees); synthetic scenes are made at --image-size")
        strides = checked_strides(self.option(config, "strides"))
        if isinstance(strides, tuple) and any(side % strides[-1] for side in size):
            raise ConfigError(f"image_size {size} must be a multiple of the largest stride "
                              f"{strides[-1]} of --strides {','.join(map(str, strides))}")
        if checked_zoom(self.option(config, "zoom")) is not None and self.synthetic(config):
            raise ConfigError("--zoom is for real images (voc:PATH, coco:FILE, neon_trees); "
                              "synthetic scenes are drawn with objects of random sizes")
        score_loss = self.option(config, "score_loss")
        if score_loss is not None and score_loss not in SCORE_LOSSES:
            raise ConfigError(f"score_loss must be one of {', '.join(SCORE_LOSSES)}, got "
                              f"{score_loss!r}")
        letterboxed_real = not (self.tiled(config) or self.synthetic(config))
        asked_for = {
            "--colour-jitter": checked_colour(self.option(config, "colour_jitter")) is not None,
            "--mosaic": bool(checked_mosaic(self.option(config, "mosaic")))}
        for flag, used in asked_for.items():
            if used and not letterboxed_real:
                raise ConfigError(f"{flag} is for letterboxed real images (voc:PATH, "
                                  f"coco:FILE without --tiles)")
        checked_ema(self.option(config, "ema"))
        overlap = self.option(config, "tile_overlap")
        if overlap is not None and (isinstance(overlap, bool) or not isinstance(overlap, int)
                                    or not 0 <= overlap < min(size)):
            raise ConfigError(f"tile_overlap must be a whole number of pixels in [0, "
                              f"{min(size)}) (below --image-size), got {overlap!r}")

    def detector_kwargs(self, config) -> dict:
        """The `detector` builder's arguments: `detector_kwargs`, plus the backbone weights
        (`REAL_DATA_BACKBONE` for real images with the default widths and depths, unless
        `backbone_weights` says otherwise; "none" is random) and the score loss
        (`REAL_DATA_SCORE_LOSS` for real images unless `score_loss` says otherwise)."""
        kwargs = dict(self.option(config, "detector_kwargs") or {})
        strides = checked_strides(self.option(config, "strides"))
        if strides is not None:
            kwargs["stride"] = strides
        real = not self.synthetic(config)
        kwargs["score_loss"] = self.option(config, "score_loss") or (
            REAL_DATA_SCORE_LOSS if real else "focal")
        chosen = self.option(config, "backbone_weights")
        if chosen is None:
            default_backbone = not {"widths", "depths"} & set(kwargs)
            chosen = REAL_DATA_BACKBONE if real and default_backbone else "none"
        if str(chosen).lower() != "none":
            kwargs["backbone_weights"] = chosen
        return kwargs

    def classifier_kwargs(self, config) -> dict:
        """The `crop_classifier` builder's arguments: `classifier_kwargs`; on real images,
        unless those set widths, depths or backbone weights, the backbone weights step 1
        starts from (`detector_kwargs`; none with `--backbone-weights none`) with
        `REAL_DATA_CLASSIFIER`'s widths and depths."""
        kwargs = dict(self.option(config, "classifier_kwargs") or {})
        weights = self.detector_kwargs(config).get("backbone_weights")
        real = not self.synthetic(config)
        if real and weights and not {"widths", "depths", "backbone_weights"} & set(kwargs):
            kwargs.update(REAL_DATA_CLASSIFIER, backbone_weights=weights)
        return kwargs

    def synthetic(self, config) -> bool:
        """Whether the run trains on synthetic scenes (its dataset, or the task's default)."""
        return str(config.dataset or self.default_dataset) == "synth_scenes"

    def tiled(self, config) -> bool:
        return bool(self.option(config, "tiles")) or str(config.dataset) == "neon_trees"

    def prepare(self, config):
        size = checked_image_size(self.option(config, "image_size"))
        tiles = self.tiled(config)
        train_set, test_set, info = load_detection_data(
            config.dataset, config.train_limit, config.test_limit, image_size=size,
            tiles=tiles)
        for split, part in (("train", train_set), ("test", test_set)):
            objects = part.classes[part.classes != -1]  # -1 pads; once, outside XLA steps
            check_class_labels(objects, len(train_set.class_names), split)
        zoom = checked_zoom(self.option(config, "zoom"))
        letterboxed_real = isinstance(info["augment"], BoxAugmenter)
        if zoom is None and letterboxed_real:
            zoom = REAL_DATA_ZOOM
        if zoom is not None:
            info["zoom"] = list(zoom)
        ema = checked_ema(self.option(config, "ema")) or None
        if letterboxed_real:
            colour = checked_colour(self.option(config, "colour_jitter")) or (0.0, 0.0, 0.0)
            info["augment"] = BoxAugmenter(zoom=zoom, **dict(zip(COLOUR_KEYS, colour)))
            if any(colour):
                info["colour_jitter"] = list(colour)
        info["ema_momentum"] = ema
        mosaic = checked_mosaic(self.option(config, "mosaic")) or 0.0
        if mosaic:
            info["mosaic"] = mosaic
        model, batches = build_detector(
            train_set, config.loss, config.epochs, config.batch_size, config.learning_rate,
            config.seed, bool(self.option(config, "one_step")), augment=info["augment"],
            tile_size=size if tiles else None, tile_zoom=zoom if tiles else None,
            ema_momentum=ema, mosaic=mosaic, **self.detector_kwargs(config))
        data = {"train": train_set, "test": test_set, "info": info, "batches": batches}
        samples = batches.tiles_per_epoch if tiles else len(train_set)
        return Prepared(data, model, samples, info=info)

    def fit(self, config, prepared, fitter):
        data, model = prepared.data, prepared.model

        def fit_step1(callbacks, epochs, initial_epoch=0):
            model.fit(data["batches"], epochs=epochs, initial_epoch=initial_epoch,
                      callbacks=callbacks, verbose=config.verbose)

        models = {"detector": fitter.fit_stage("detector", model, fit_step1)}
        if self.option(config, "one_step"):
            models["classifier"] = None
            return models
        epochs = int(self.option(config, "classifier_epochs"))
        negatives = None
        if self.option(config, "hard_negatives"):
            negatives = mine_hard_negatives(models["detector"], data["train"],
                                            tiled=self.tiled(config))
            data["info"]["hard_negatives"] = int(sum(len(n) for n in negatives))
        classifier, _, crops, labels = build_classifier(
            data["train"], epochs=epochs, seed=config.seed, negatives=negatives,
            **self.classifier_kwargs(config))

        def fit_step2(callbacks, stage_epochs, initial_epoch=0):
            classifier.fit(crops, labels, batch_size=128, epochs=stage_epochs,
                           initial_epoch=initial_epoch, shuffle=True, callbacks=callbacks,
                           verbose=config.verbose)

        models["classifier"] = fitter.fit_stage("classifier", classifier, fit_step2, epochs)
        return models

    def evaluate(self, config, prepared, models, folder):
        from zoo.evaluation.detection import plot_detection_gallery, plot_pr_curves

        train_set, test_set, info = (prepared.data["train"], prepared.data["test"],
                                     prepared.data["info"])
        head = (self.option(config, "classifier_kwargs") or {}).get("head") or default_head()
        class_scale = 1.0 if models["classifier"] is None else classifier_loss(head)[1]
        pipeline = TwoStepDetector(models["detector"], models["classifier"],
                                   class_names=train_set.class_names, class_scale=class_scale,
                                   flip_tta=bool(self.option(config, "flip_tta")))
        overlap = self.option(config, "tile_overlap")
        evaluation = evaluate_pipeline(pipeline, test_set, overlap=overlap)
        fused = pipeline.fused()
        fused_evaluation = evaluate_pipeline(fused, test_set, overlap=overlap)
        pipeline.save(folder.file("pipeline"))
        fused.save(folder.file("pipeline_fused"))
        export_seconds = None
        if keras.backend.backend() == "tensorflow":  # one servable model, NMS in the graph
            from zoo.models.detector.export import export_detector

            started = time.perf_counter()
            export_detector(fused, folder.file("savedmodel"))
            export_seconds = time.perf_counter() - started
        result = evaluation["result"]
        kind, _, where = str(config.dataset).partition(":")
        name = f"{kind}:{Path(where.split(',')[0]).name}" if where else config.dataset
        one_step = bool(self.option(config, "one_step"))
        title = f"detector · {name} · {config.loss}{' · one-step' if one_step else ''}"
        plot_pr_curves(result, folder.file("pr_curves.png"), title)
        shown = range(min(16, len(test_set)))
        if evaluation["tiled"]:  # a few large images, each at its own size, unlabelled boxes
            shown = range(min(4, len(test_set)))
            images = [test_set.images[i, :h, :w]
                      for i, (h, w) in zip(shown, test_set.original_sizes)]
            layout = {"columns": 2, "panel_inches": 8.0, "labels": False}
        else:
            images, layout = test_set.images[:16], {}
        plot_detection_gallery(images, test_set.subset(shown),
                               evaluation["detections"][:len(shown)], test_set.class_names,
                               folder.file("detections.png"), title=title,
                               score_threshold=_gallery_threshold(result), **layout)
        scalar = {k: float(v) for k, v in result.items() if isinstance(v, (int, float))}
        augment = info["augment"]
        classifier_history = None
        if models["classifier"] is not None and folder.file("history_classifier.csv").exists():
            from zoo.training.run_folder import read_history

            classifier_history = read_history(folder.file("history_classifier.csv"))
        files = ["detector.keras", "history.csv", "pipeline/", "pipeline_fused/",
                 "pr_curves.png", "detections.png"]
        if export_seconds is not None:
            files.append("savedmodel/")
        if models["classifier"] is not None:
            files += ["classifier.keras", "history_classifier.csv"]
        return {
            **scalar,
            "per_class": result["per_class"],
            "step1_map_50": evaluation["step1_map_50"], "step1_map": evaluation["step1_map"],
            "fused_map_50": float(fused_evaluation["result"]["map_50"]),
            "fused_map": float(fused_evaluation["result"]["map"]),
            "classifier_accuracy": (float(classifier_history["accuracy"][-1])
                                    if classifier_history else None),
            "test_seconds_per_image": evaluation["seconds"] / len(test_set),
            "fused_test_seconds_per_image": fused_evaluation["seconds"] / len(test_set),
            "export_seconds": export_seconds,
            "train_images": len(train_set), "test_images": len(test_set),
            "dataset": config.dataset, "class_names": list(train_set.class_names),
            "split": info["split"],
            "augmentation": (repr(prepared.data["batches"]) if info.get("tiles") else
                             "random horizontal flips" if augment is True else repr(augment)),
            "tiled": evaluation["tiled"], "max_detections": evaluation["max_detections"],
            "hard_negatives": info.get("hard_negatives", 0),
            "backbone_weights": self.detector_kwargs(config).get("backbone_weights"),
            "classifier_backbone_weights": self.classifier_kwargs(config).get(
                "backbone_weights"),
            "strides": list(pipeline.detector.strides),
            "score_loss": pipeline.detector.score_loss,
            "step2_helps": (None if models["classifier"] is None else
                            bool(result["map_50"] >= evaluation["step1_map_50"])),
            # two-step minus step-1 precision at equal recall (class-agnostic, IoU 0.5)
            "step2_precision_gain": (None if models["classifier"] is None else
                                     evaluation["precision_gain"]),
            **({"untiled_map_50": evaluation["untiled_map_50"],
                "untiled_step1_map_50": evaluation["untiled_step1_map_50"]}
               if evaluation["tiled"] else {}),
            "test_names": info["test_names"],
            "parameters": {"detector": pipeline.detector.count_params(),
                           "classifier": (pipeline.classifier.count_params()
                                          if pipeline.classifier is not None else 0)},
            "box_loss": config.loss, "one_step": one_step,
            "pipeline": pipeline.config(),
            "files": files,
        }

    def test_data(self, config, spec, models):
        """All images of a voc:/coco: folder as the test set, in the run's classes and size."""
        from zoo.datasets.detection import load_coco, load_voc

        kind = self.dataset_kind(spec)
        where = spec.split(":", 1)[1]
        class_names = tuple(models["class_names"])
        size = None if self.tiled(config) else checked_image_size(
            self.option(config, "image_size"))
        if kind == DATASET_FORMS["voc"]:
            test = load_voc(where, class_names=class_names, image_size=size)
        elif kind == DATASET_FORMS["coco"]:
            annotations, _, images_dir = where.partition(",")
            test = load_coco(annotations, images_dir or None, class_names=class_names,
                             image_size=size)
        else:
            raise ConfigError("score the detector on voc:PATH or coco:FILE; synth_scenes "
                              "is scored by the training run itself")
        if config.test_limit:
            test = test.subset(range(min(config.test_limit, len(test))))
        info = {"augment": None, "split": f"all {len(test)} images of {spec}",
                "test_names": list(test.names)}
        return Prepared({"train": test, "test": test, "info": info}, models["detector"], 0,
                        info=info)

    def summary(self, metrics):
        text = f"AP@.5 {metrics['map_50']:.4f} (step 1 alone {metrics['step1_map_50']:.4f})"
        gain = metrics.get("step2_precision_gain")
        if gain and gain.get("recall_levels"):
            text += (f"; step 2 changes precision at equal recall by {gain['mean']:+.3f} on "
                     f"average")
        if metrics.get("step2_helps") is False:
            text += ("; step 2 lowers AP here: use step 1's scores (--one-step), or try "
                     "--hard-negatives")
        elif step2_changes_nothing(gain):
            text += ("; step 2 leaves step 1's precision as it is at every recall level (it "
                     "scores every detection as an object): it costs time and changes "
                     "nothing here, --one-step gives the same ranking faster")
        return text
