"""The whole detector as one SavedModel: step 1, box selection and NMS in the graph, step 2.

    from zoo.models.detector.export import export_detector
    export_detector(pipeline, "runs/det/savedmodel")      # a `TwoStepDetector`
    served = tf.saved_model.load("runs/det/savedmodel")
    out = served.serve(images)     # {"boxes", "scores", "classes", "num_detections"}

`serve(images)` takes float32 images (B, H, W, 3) at the detector's input size and returns
what `TwoStepDetector.detect_padded` returns, plus the count per image:

    boxes (B, D, 4) xyxy pixels, scores (B, D), classes int32 (B, D), num_detections (B,)

with D = `max_detections`, padding boxes 0, score 0, class -1. Each step is the Python
pipeline's (`pipeline.py`), written in TensorFlow ops:

0. with `flip_tta`, step 1 also runs on the mirror images and the two views are averaged
   cell by cell (`average_views`);
1. score = max_c sigmoid(logit_c); cells with score >= `score_threshold`, the
   `pre_nms_top_k` best (equal scores: lower cell first), boxes clipped to the image;
2. greedy NMS (`tf.image.non_max_suppression`: a box survives IoU == `nms_iou`, as
   `zoo.boxes.nms`); per-class NMS of a one-step detector by offsetting each class's boxes
   so that boxes of different classes never overlap;
3. step 2: each kept box widened by `context` and cut out with `tf.image.crop_and_resize`,
   whose corner-aligned samples are moved onto `crop_boxes`' pixel-centre samples, the image
   edge-padded so that samples outside it repeat the border pixels as `crop_boxes` does;
   probabilities softmax(class_scale · scores), label the best object class, final score
   objectness · p(label), detections re-sorted by it.

Step 1 alone also converts to LiteRT (`export_step1_litert`: a .tflite file, batch 1, the
raw {"scores" logits, "boxes" xyxy pixels} outputs): on a phone, threshold and NMS them with
the platform's NMS, or with `zoo.boxes.nms` as `TwoStepDetector.select` does.

TensorFlow only (a SavedModel is a TensorFlow format), like `zoo.models.crnn.export_recognizer`.
Tiled inference over images larger than the input (`tiling.py`) stays in Python: serve the
tiles, merge in the caller.
"""

from __future__ import annotations

import math

import keras

from zoo.models.detector.pipeline import (TwoStepDetector, _dense_outputs, _scores_of,
                                          mirror_permutation)


def _classifier_scores_model(classifier):
    """The classifier's input -> scores path (a dict head gives its inference model)."""
    if hasattr(classifier, "inference_model"):
        return classifier.inference_model()
    return classifier


def export_detector(pipeline: TwoStepDetector, path, step2=True):
    """TensorFlow only: write `pipeline` as a SavedModel whose `serve` maps images to padded
    detections (see the module docstring).

    Args:
        pipeline: a `TwoStepDetector` (its settings: thresholds, NMS, context, class scale).
        path: folder to write the SavedModel into.
        step2: include the crop classifier (two-step detectors). False exports step 1 with
            NMS alone: labels -1, scores the step-1 objectness. Defaults to True.

    Returns:
        the `keras.export.ExportArchive` that was written.
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"export_detector writes a TensorFlow SavedModel and needs the "
                         f"tensorflow backend; the backend is {keras.backend.backend()!r}")
    if not isinstance(pipeline, TwoStepDetector):
        raise ValueError(f"export_detector needs a TwoStepDetector, got "
                         f"{type(pipeline).__name__}")
    import tensorflow as tf

    detector = pipeline.detector
    use_classifier = bool(step2) and not pipeline.one_step
    classifier = _classifier_scores_model(pipeline.classifier) if use_classifier else None
    height, width = pipeline.image_shape
    d, num_classes = pipeline.max_detections, pipeline.num_classes
    threshold, iou = pipeline.score_threshold, pipeline.nms_iou
    per_class = pipeline.one_step and not pipeline.class_agnostic_nms
    limits = tf.constant([width, height, width, height], tf.float32)
    # samples of a widened box reach (context - 1)/2 of its size beyond the image at most
    pad = int(math.ceil(max(pipeline.context - 1.0, 0.0) / 2 * max(height, width))) + 2

    def select_one(inputs):
        """One image: (scores (P,), labels (P,), boxes (P, 4)) -> padded top-D after NMS."""
        scores, labels, boxes = inputs
        cells = tf.shape(scores)[0]
        k = tf.minimum(pipeline.pre_nms_top_k, cells)
        masked = tf.where(scores >= threshold, scores, -1.0)
        top_scores, top = tf.math.top_k(masked, k=k, sorted=True)
        top_boxes = tf.clip_by_value(tf.gather(boxes, top), 0.0, limits)
        top_labels = tf.gather(labels, top)
        nms_boxes = top_boxes
        if per_class:  # boxes of different classes far apart: per-class NMS in one call
            offset = tf.cast(top_labels, tf.float32)[:, None] * (2.0 * float(max(height,
                                                                                 width)) + 2.0)
            nms_boxes = top_boxes + offset
        yxyx = tf.gather(nms_boxes, [1, 0, 3, 2], axis=1)
        keep = tf.image.non_max_suppression(yxyx, top_scores, max_output_size=d,
                                            iou_threshold=iou, score_threshold=-0.5)
        count = tf.shape(keep)[0]
        padding = d - count
        kept_boxes = tf.pad(tf.gather(top_boxes, keep), [[0, padding], [0, 0]])
        kept_scores = tf.pad(tf.gather(top_scores, keep), [[0, padding]])
        kept_labels = tf.pad(tf.gather(top_labels, keep), [[0, padding]], constant_values=-1)
        return kept_boxes, kept_scores, kept_labels, count

    def crops_of(images, boxes):
        """`crop_boxes(images, expand_boxes(boxes, context), ...)` for boxes (B, D, 4)."""
        crop_h, crop_w = pipeline.crop_size
        rows = tf.clip_by_value(tf.range(-pad, height + pad), 0, height - 1)
        columns = tf.clip_by_value(tf.range(-pad, width + pad), 0, width - 1)
        padded = tf.gather(tf.gather(images, rows, axis=1), columns, axis=2)
        flat = tf.reshape(boxes, (-1, 4))
        centre = 0.5 * (flat[:, :2] + flat[:, 2:])
        half = 0.5 * pipeline.context * (flat[:, 2:] - flat[:, :2])
        x1, y1 = centre[:, 0] - half[:, 0], centre[:, 1] - half[:, 1]
        x2, y2 = centre[:, 0] + half[:, 0], centre[:, 1] + half[:, 1]
        # crop_boxes samples x1 + (v + 0.5)(x2 - x1)/w - 0.5 (pixel-centre coordinates);
        # crop_and_resize samples bx1·(W' - 1) + v·(bx2 - bx1)(W' - 1)/(w - 1)
        step_x, step_y = (x2 - x1) / crop_w, (y2 - y1) / crop_h
        first_x = x1 + 0.5 * step_x - 0.5 + pad
        first_y = y1 + 0.5 * step_y - 0.5 + pad
        last_x, last_y = first_x + (crop_w - 1) * step_x, first_y + (crop_h - 1) * step_y
        scale_y, scale_x = float(height + 2 * pad - 1), float(width + 2 * pad - 1)
        normalized = tf.stack([first_y / scale_y, first_x / scale_x,
                               last_y / scale_y, last_x / scale_x], axis=1)
        image_of = tf.repeat(tf.range(tf.shape(boxes)[0]), d)
        return tf.image.crop_and_resize(padded, normalized, image_of, (crop_h, crop_w),
                                        method="bilinear")

    def step1(images):
        """Per-cell probabilities (B, P, C) and boxes (B, P, 4), flip-averaged if asked."""
        out = detector(images, training=False)
        probabilities = tf.sigmoid(tf.cast(out["scores"], tf.float32))
        boxes = tf.cast(out["boxes"], tf.float32)
        if pipeline.flip_tta:  # `average_views` in graph
            mirrored = detector(tf.reverse(images, axis=[2]), training=False)
            permutation = tf.constant(mirror_permutation(_dense_outputs(detector).levels,
                                                         width))
            p = tf.gather(tf.sigmoid(tf.cast(mirrored["scores"], tf.float32)), permutation,
                          axis=1)
            b = tf.gather(tf.cast(mirrored["boxes"], tf.float32), permutation, axis=1)
            b = tf.stack([width - b[..., 2], b[..., 1], width - b[..., 0], b[..., 3]], axis=-1)
            probabilities, boxes = 0.5 * (probabilities + p), 0.5 * (boxes + b)
        return probabilities, boxes

    def serve(images):
        probabilities, step1_boxes = step1(images)
        scores = tf.reduce_max(probabilities, axis=-1)
        if pipeline.one_step:
            labels = tf.cast(tf.argmax(probabilities, axis=-1), tf.int32)
        else:
            labels = tf.fill(tf.shape(scores), -1)
        boxes, objectness, classes, count = tf.map_fn(
            select_one, (scores, labels, step1_boxes),
            fn_output_signature=(tf.TensorSpec((d, 4), tf.float32),
                                 tf.TensorSpec((d,), tf.float32),
                                 tf.TensorSpec((d,), tf.int32),
                                 tf.TensorSpec((), tf.int32)))
        valid = tf.range(d)[None, :] < count[:, None]
        if use_classifier:
            logits = _scores_of(classifier(crops_of(images, boxes), training=False))
            p = tf.nn.softmax(pipeline.class_scale * tf.cast(logits, tf.float32), axis=-1)
            p = tf.reshape(p[:, :num_classes], (-1, d, num_classes))
            classes = tf.cast(tf.argmax(p, axis=-1), tf.int32)
            final = objectness * tf.reduce_max(p, axis=-1)
            # re-sort by the final score, padding last (stable: ties keep NMS order)
            order = tf.argsort(tf.where(valid, final, -1.0), axis=1, direction="DESCENDING",
                               stable=True)
            boxes = tf.gather(boxes, order, batch_dims=1)
            objectness = tf.gather(final, order, batch_dims=1)
            classes = tf.gather(classes, order, batch_dims=1)
        classes = tf.where(valid, classes, -1)
        objectness = tf.where(valid, objectness, 0.0)
        boxes = tf.where(valid[..., None], boxes, 0.0)
        return {"boxes": boxes, "scores": objectness, "classes": classes,
                "num_detections": count}

    archive = keras.export.ExportArchive()
    archive.track(detector)
    if classifier is not None:
        archive.track(classifier)
    archive.add_endpoint(
        "serve", serve, input_signature=[tf.TensorSpec((None, height, width, 3), tf.float32)])
    archive.write_out(str(path), verbose=False)
    return archive


def export_step1_litert(detector, path):
    """TensorFlow only: write the step-1 network as a LiteRT (.tflite) model, batch 1.

    Re-parameterize first (`zoo.models.repvgg.reparameterize`, or `pipeline.fused().detector`)
    for the small, fast graph. Its signature "serve" takes images (1, H, W, 3) float32 and
    returns "scores" (1, P, C) logits and "boxes" (1, P, 4) xyxy pixels.

    Args:
        detector: the step-1 `keras.Model` (`zoo.create_model("detector")`).
        path: the .tflite file to write.

    Returns:
        the path written.
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"export_step1_litert converts with TensorFlow and needs the "
                         f"tensorflow backend; the backend is {keras.backend.backend()!r}")
    import tempfile
    from pathlib import Path

    import tensorflow as tf

    height, width, channels = detector.input_shape[1:]
    archive = keras.export.ExportArchive()
    archive.track(detector)
    archive.add_endpoint(
        "serve", lambda images: detector(images, training=False),
        input_signature=[tf.TensorSpec((1, height, width, channels), tf.float32)])
    with tempfile.TemporaryDirectory() as folder:
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serve"])
        flat = converter.convert()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flat)
    return path
