"""Inference of the detector: NMS, crop-and-resize, the step-2 crops, and `TwoStepDetector`.

    pipeline = TwoStepDetector(detector, classifier, class_names=SHAPE_CLASSES)
    detections = pipeline(images)          # per image (boxes (k, 4), scores (k,), classes (k,))
    pipeline.save("runs/det/pipeline");  TwoStepDetector.load("runs/det/pipeline")
    pipeline.fused()                       # the same pipeline with re-parameterized models

The pipeline, per batch of images (B, H, W, 3):
1. step 1: the dense detector gives per-cell logits and xyxy boxes; score = sigmoid(logit)
   (one-step: the best class's);
2. keep cells with score >= `score_threshold`, the `pre_nms_top_k` best, then greedy NMS
   (`nms`, class-agnostic by default) down to `max_detections`; boxes are clipped to the image;
3. step 2 (two-step only): every kept box, widened by `context`, is cut out and resized to
   the classifier's input (`crop_boxes`, bilinear); the classifier gives class
   probabilities p = softmax(class_scale · scores); the label is the best object class and
   the final score is objectness · p(label). When the classifier has K + 1 outputs, the last
   is "background": its probability mass lowers the score of boxes that are not objects.

NumPy does the orchestration (NMS, crops): keras.ops has neither NMS nor crop-and-resize, and
both are cheap next to the two networks. Training crops for step 2 come from the same
`crop_boxes` (`classifier_crops`: ground-truth boxes with jitter plus background boxes),
so the classifier sees at training what it sees at inference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np

from zoo.boxes import expand_boxes, iou_one_to_many, nms, pairwise_iou
from zoo.models.detector.model import DenseOutputs, intra_inter_available
from zoo.models.repvgg import reparameterize

PIPELINE_FILE, DETECTOR_FILE, CLASSIFIER_FILE = "pipeline.json", "detector.keras", \
    "classifier.keras"


# --------------------------------------------------------------------------- crops


def crop_boxes(images, boxes, box_indices, size) -> np.ndarray:
    """Bilinear crops of xyxy boxes (pixel edges), resized to `size` (h, w).

    Output pixel (u, v) of a crop of box (x1, y1, x2, y2) samples the image at the point
    x = x1 + (v + 0.5)·(x2 - x1)/w, y = y1 + (u + 0.5)·(y2 - y1)/h (edge coordinates, so
    pixel (r, c) covers [c, c + 1) x [r, r + 1) and its value sits at (c + 0.5, r + 0.5)),
    interpolated bilinearly between the four nearest pixel centres; outside the image the
    border pixels repeat. A box with integer edges cropped at its own size returns exactly
    its pixels; a linear image is reproduced exactly.

    Args:
        images: (B, H, W, C).
        boxes: (N, 4) xyxy pixels.
        box_indices: (N,) the image of each box.
        size: (h, w) of the crops, or an int.

    Returns:
        float32 (N, h, w, C).
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be (B, H, W, C), got shape {images.shape}")
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    box_indices = np.asarray(box_indices, np.int64).reshape(-1)
    if len(box_indices) != len(boxes):
        raise ValueError(f"need one image index per box, got {len(box_indices)} for "
                         f"{len(boxes)} boxes")
    if len(box_indices) and (box_indices.min() < 0 or box_indices.max() >= len(images)):
        raise ValueError(f"box_indices must be in [0, {len(images)}), got "
                         f"{box_indices.min()}..{box_indices.max()}")
    out_h, out_w = (size, size) if isinstance(size, (int, np.integer)) else size
    _, height, width, _ = images.shape
    # sample points in pixel-centre coordinates: edge coordinate - 0.5
    v = (np.arange(out_w, dtype=np.float32) + 0.5) / out_w
    u = (np.arange(out_h, dtype=np.float32) + 0.5) / out_h
    xs = boxes[:, None, 0] + v[None, :] * (boxes[:, None, 2] - boxes[:, None, 0]) - 0.5
    ys = boxes[:, None, 1] + u[None, :] * (boxes[:, None, 3] - boxes[:, None, 1]) - 0.5
    x0, y0 = np.floor(xs), np.floor(ys)
    wx, wy = (xs - x0)[:, None, :, None], (ys - y0)[:, :, None, None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    xa, xb = np.clip(x0, 0, width - 1), np.clip(x0 + 1, 0, width - 1)
    ya, yb = np.clip(y0, 0, height - 1), np.clip(y0 + 1, 0, height - 1)
    b = box_indices[:, None, None]

    def pick(rows, columns):
        return images[b, rows[:, :, None], columns[:, None, :]]

    top = pick(ya, xa) * (1 - wx) + pick(ya, xb) * wx
    bottom = pick(yb, xa) * (1 - wx) + pick(yb, xb) * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def classifier_crops(images, boxes, classes, num_classes, crop_size=32, context=1.25,
                     jitter=0.1, copies=1, background=1.0, background_iou=0.3, seed=0,
                     negatives=None):
    """Training data for the step-2 classifier: jittered ground-truth crops + background.

    Each valid ground-truth box gives `copies` crops; each copy has its centre moved by
    N(0, jitter)·(w, h) and its width and height scaled by exp(N(0, jitter)) (mimicking
    step-1 errors), then is widened by `context` like at inference. Each image also gives
    `background` random boxes on average (the integer part, plus one with the fractional
    part as probability) labelled `num_classes` ("background"): the size of a random
    ground-truth box of the set, placed uniformly inside the image, kept only if its IoU with
    every ground-truth box of its image is < `background_iou` (20 tries). `negatives` adds
    given boxes as background too: step 1's false positives (`false_positive_boxes`), the
    hard negatives that teach step 2 what step 1 confuses with an object.

    Args:
        images: (N, H, W, 3).
        boxes: (N, M, 4) xyxy pixels.
        classes: (N, M), -1 = padding.
        num_classes: K, the number of object classes.
        crop_size: crop side (or (h, w)). Defaults to 32.
        context: widening factor of every crop. Defaults to 1.25.
        jitter: relative jitter σ. Defaults to 0.1.
        copies: crops per ground-truth box. Defaults to 1.
        background: background crops per image (>= 0). Defaults to 1.
        background_iou: largest IoU of a background box with the objects. Defaults to 0.3.
        seed: seed of the jitter and of the background boxes. Defaults to 0.
        negatives: per image, boxes (k, 4) xyxy to crop as background. Defaults to None.

    Returns:
        (crops float32 (n, h, w, 3), labels int32 (n,)), labels in 0..K (K = background).
    """
    images = np.asarray(images, np.float32)
    boxes, classes = np.asarray(boxes, np.float32), np.asarray(classes, np.int64)
    if boxes.ndim != 3 or classes.shape != boxes.shape[:2] or len(boxes) != len(images):
        raise ValueError(f"expected images (N, H, W, 3), boxes (N, M, 4), classes (N, M); got "
                         f"{images.shape}, {boxes.shape}, {classes.shape}")
    if classes.size and classes.max() >= num_classes:
        raise ValueError(f"class ids go up to {classes.max()} but num_classes={num_classes}")
    rng = np.random.default_rng(seed)
    height, width = images.shape[1:3]
    image_of, object_boxes, labels = [], [], []
    valid = classes >= 0
    gt_index = np.nonzero(valid)
    for _ in range(int(copies)):
        chosen = boxes[gt_index]
        size = chosen[:, 2:] - chosen[:, :2]
        centre = 0.5 * (chosen[:, :2] + chosen[:, 2:]) + rng.normal(0, jitter, size.shape) * size
        size = size * np.exp(rng.normal(0, jitter, size.shape))
        object_boxes.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
        image_of.append(gt_index[0])
        labels.append(classes[gt_index])
    sizes = (boxes[..., 2:] - boxes[..., :2])[valid]
    extra, fraction = int(background), float(background) - int(background)
    for i in range(len(images) if len(sizes) else 0):
        count = extra + int(rng.uniform() < fraction)
        for _ in range(count):
            for _attempt in range(20):
                w, h = np.minimum(sizes[rng.integers(len(sizes))], [width, height])
                x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
                box = np.asarray([x0, y0, x0 + w, y0 + h], np.float32)
                if not valid[i].any() or iou_one_to_many(box, boxes[i][valid[i]]).max() \
                        < background_iou:
                    object_boxes.append(box[None])
                    image_of.append(np.asarray([i]))
                    labels.append(np.asarray([num_classes]))
                    break
    if negatives is not None:
        if len(negatives) != len(images):
            raise ValueError(f"negatives must hold one (k, 4) array per image: got "
                             f"{len(negatives)} for {len(images)} images")
        for i, found in enumerate(negatives):
            found = np.asarray(found, np.float32).reshape(-1, 4)
            object_boxes.append(found)
            image_of.append(np.full(len(found), i))
            labels.append(np.full(len(found), num_classes))
    if not object_boxes:
        size = (crop_size, crop_size) if np.isscalar(crop_size) else tuple(crop_size)
        return np.zeros((0,) + size + (images.shape[-1],), np.float32), np.zeros(0, np.int32)
    all_boxes = expand_boxes(np.concatenate(object_boxes).astype(np.float32), context)
    crops = crop_boxes(images, all_boxes, np.concatenate(image_of), crop_size)
    return crops, np.concatenate(labels).astype(np.int32)


def false_positive_boxes(detections, boxes, classes, background_iou=0.3, minimum=4):
    """Hard negatives for step 2: per image, step 1's detections whose IoU with every
    ground-truth box is < `background_iou`, best scored first, at most max(`minimum`, the
    image's object count) of them.

    Args:
        detections: per image (boxes (k, 4), scores (k,), ...) from step 1.
        boxes: (N, M, 4) ground truth, xyxy pixels.
        classes: (N, M), -1 = padding.
        background_iou: largest IoU with an object. Defaults to 0.3.
        minimum: the cap for an image with few objects. Defaults to 4.

    Returns:
        list of float32 (k_i, 4) arrays.
    """
    out = []
    for (found, scores, *_), gt, valid in zip(detections, np.asarray(boxes, np.float32),
                                             np.asarray(classes) >= 0):
        found = np.asarray(found, np.float32).reshape(-1, 4)
        order = np.argsort(-np.asarray(scores), kind="stable")
        found = found[order]
        if valid.any() and len(found):
            overlap = pairwise_iou(found, gt[valid]).max(axis=1)
            found = found[overlap < background_iou]
        out.append(found[:max(int(minimum), int(valid.sum()))])
    return out


# --------------------------------------------------------------------------- flip TTA
# Horizontal-flip test-time augmentation of step 1 (`flip_tta=True`): step 1 runs on the
# images x and on their mirror images x' (x'[:, :, u] = x[:, :, W − 1 − u]). A level of w
# columns and stride s covers the width exactly (W = w·s), so cell (i, j) of x' looks where
# cell (i, w − 1 − j) of x looks: the cells pair up through that mirror permutation π, and a
# box (x1, y1, x2, y2) of x' is (W − x2, y1, W − x1, y2) in x's frame. Per cell p:
#     score logit = logit((σ(s_p) + σ(s'_π(p))) / 2)
#     box         = (b_p + unflip(b'_π(p))) / 2
# then the usual threshold, NMS and step 2. Averaging the two views cell by cell ensembles
# two predictions of the same object; YOLOv5's `augment=True` instead concatenates both
# views' boxes and leaves NMS to pick one. The result is exactly flip-equivariant (the
# detections of x' are the mirrored detections of x), for a second step-1 pass.

FLIP_EPSILON = 1e-7  # keeps logit(p) finite where both views are certain


def mirror_permutation(levels, image_width) -> np.ndarray:
    """int (P,): π with cell π[p] of the mirror image seeing what cell p sees, for the
    levels [((h, w), s), ...] of a `DenseOutputs` (cells row-major, level 0 first)."""
    parts, offset = [], 0
    for (h, w), s in levels:
        if w * s != image_width:
            raise ValueError(f"flip test-time augmentation needs every level to cover the "
                             f"image width exactly; a level of {w} columns at stride {s} "
                             f"covers {w * s} px of {image_width}")
        columns = np.arange(w)[::-1]
        parts.append(offset + (np.arange(h)[:, None] * w + columns[None, :]).reshape(-1))
        offset += h * w
    return np.concatenate(parts)


def unflip_boxes(boxes, image_width):
    """Boxes (..., 4) xyxy of the mirror image -> the same boxes in the image's frame."""
    boxes = np.asarray(boxes, np.float32)
    return np.stack([image_width - boxes[..., 2], boxes[..., 1],
                     image_width - boxes[..., 0], boxes[..., 3]], axis=-1)


def average_views(outputs, mirrored_outputs, permutation, image_width) -> dict:
    """Step-1 outputs {"scores": logits (B, P, C), "boxes": (B, P, 4)} of x and of x'
    -> their cell-by-cell average in x's frame (see the section's comment)."""
    scores = np.asarray(mirrored_outputs["scores"], np.float64)[:, permutation]
    boxes = unflip_boxes(np.asarray(mirrored_outputs["boxes"])[:, permutation], image_width)
    p = 0.5 * (_sigmoid(outputs["scores"]) + _sigmoid(scores))
    p = np.clip(p, FLIP_EPSILON, 1.0 - FLIP_EPSILON)
    return {"scores": (np.log(p) - np.log1p(-p)).astype(np.float32),
            "boxes": (0.5 * (np.asarray(outputs["boxes"], np.float32) + boxes))
            .astype(np.float32)}


def run_step1(model, images, flip_tta=False) -> dict:
    """The step-1 outputs {"scores": logits (B, P, C), "boxes": (B, P, 4)} as NumPy; with
    `flip_tta` the average of the images' and their mirror images' (see above)."""
    images = np.asarray(images, np.float32)

    def predict(batch):
        out = model.predict_on_batch(batch)
        return {k: np.asarray(keras.ops.convert_to_numpy(out[k]), np.float32)
                for k in ("scores", "boxes")}

    outputs = predict(images)
    if not flip_tta:
        return outputs
    width = images.shape[2]
    permutation = mirror_permutation(_dense_outputs(model).levels, width)
    return average_views(outputs, predict(images[:, :, ::-1]), permutation, width)


# --------------------------------------------------------------------------- the pipeline


def _dense_outputs(model) -> DenseOutputs:
    found = [layer for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, DenseOutputs)]
    if len(found) != 1:
        raise ValueError(f"the step-1 model must hold exactly one DenseOutputs layer (a model "
                         f"from zoo.create_model('detector')), found {len(found)}")
    return found[0]


def _scores_of(output):
    return output["scores"] if isinstance(output, dict) else output


def _softmax(logits):
    logits = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


class TwoStepDetector:
    """Image batch -> detections: step-1 boxes, NMS, step-2 crop classification.

    Holds the step-1 model (`zoo.create_model("detector")`, or its re-parameterized copy)
    and, for a two-step detector, the crop classifier; a one-step detector (`one_step=True`
    step-1 model) needs none and takes its labels from the class scores. See the module
    docstring for the steps. `save(folder)` writes detector.keras, classifier.keras and
    pipeline.json; `TwoStepDetector.load(folder)` reads them back.

    Args:
        detector: the step-1 `keras.Model` ({"scores", "boxes"} outputs).
        classifier: the crop classifier (K or K + 1 outputs, the last being background), or
            None for a one-step detector. Defaults to None.
        class_names: the K class names. Defaults to None ("0", "1", ...).
        score_threshold: smallest step-1 score kept. Defaults to 0.05.
        nms_iou: NMS threshold (suppress IoU > it). Defaults to 0.5.
        max_detections: most detections per image. Defaults to 100.
        pre_nms_top_k: best cells kept before NMS. Defaults to 1000.
        context: crop widening factor of step 2 (the classifier's training value).
            Defaults to 1.25.
        class_scale: probabilities are softmax(class_scale · classifier scores): 1 for
            logits, the loss's scale s for cosine heads. Defaults to 1.
        class_agnostic_nms: NMS across classes (True) or per class (one-step only).
            Defaults to True.
        batch_size: crops per classifier call. Defaults to 256.
        flip_tta: average step 1 over each image and its mirror image (horizontal-flip
            test-time augmentation, see `run_step1`; twice step 1's cost). Defaults to False.
    """

    def __init__(self, detector, classifier=None, class_names=None, score_threshold=0.05,
                 nms_iou=0.5, max_detections=100, pre_nms_top_k=1000, context=1.25,
                 class_scale=1.0, class_agnostic_nms=True, batch_size=256, flip_tta=False):
        outputs = _dense_outputs(detector)
        self.detector, self.classifier = detector, classifier
        self.one_step, self.num_classes = outputs.one_step, outputs.num_classes
        self.class_names = tuple(str(c) for c in (
            class_names if class_names is not None else range(self.num_classes)))
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for a detector of "
                             f"{self.num_classes} classes")
        if self.one_step and classifier is not None:
            raise ValueError("a one-step detector takes no classifier")
        if not self.one_step:
            if classifier is None:
                raise ValueError("a two-step detector (one_step=False) needs a classifier")
            outputs_k = int(_scores_of(classifier.output).shape[-1])
            if outputs_k not in (self.num_classes, self.num_classes + 1):
                raise ValueError(f"the classifier has {outputs_k} outputs; expected "
                                 f"{self.num_classes} or {self.num_classes + 1} (background)")
            self.background = outputs_k == self.num_classes + 1
            self.crop_size = tuple(int(s) for s in classifier.input_shape[1:3])
        if not 0.0 <= float(score_threshold) <= 1.0 or not 0.0 <= float(nms_iou) <= 1.0:
            raise ValueError(f"score_threshold and nms_iou must be in [0, 1], got "
                             f"{score_threshold!r} and {nms_iou!r}")
        self.score_threshold, self.nms_iou = float(score_threshold), float(nms_iou)
        self.max_detections, self.pre_nms_top_k = int(max_detections), int(pre_nms_top_k)
        self.context, self.class_scale = float(context), float(class_scale)
        self.class_agnostic_nms, self.batch_size = bool(class_agnostic_nms), int(batch_size)
        self.image_shape = tuple(int(s) for s in detector.input_shape[1:3])
        self.flip_tta = bool(flip_tta)
        if self.flip_tta:  # a level that does not cover the width cannot be mirrored
            mirror_permutation(outputs.levels, self.image_shape[1])

    def config(self) -> dict:
        return {"class_names": list(self.class_names), "score_threshold": self.score_threshold,
                "nms_iou": self.nms_iou, "max_detections": self.max_detections,
                "pre_nms_top_k": self.pre_nms_top_k, "context": self.context,
                "class_scale": self.class_scale, "class_agnostic_nms": self.class_agnostic_nms,
                "batch_size": self.batch_size, "flip_tta": self.flip_tta}

    # ---- the steps

    def _check_images(self, images):
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[1:3] != self.image_shape:
            raise ValueError(f"images must be (B, {self.image_shape[0]}, "
                             f"{self.image_shape[1]}, C), got shape {images.shape}")
        return images

    def step1(self, images) -> dict:
        """The step-1 outputs {"scores": logits (B, P, C), "boxes": (B, P, 4)} as NumPy
        (averaged with the mirror images' when `flip_tta`)."""
        return run_step1(self.detector, self._check_images(images), self.flip_tta)

    def select(self, step1_outputs) -> list:
        """Threshold, top-k and NMS per image -> [(boxes (k, 4), scores (k,), classes (k,))];
        classes are the one-step labels, or -1 before step 2."""
        logits, boxes = step1_outputs["scores"], step1_outputs["boxes"]
        height, width = self.image_shape
        limits = np.asarray([width, height, width, height], np.float32)
        selected = []
        for image_logits, image_boxes in zip(logits, boxes):
            probabilities = _sigmoid(image_logits)
            labels = probabilities.argmax(axis=-1) if self.one_step else \
                np.full(len(probabilities), -1)
            scores = probabilities.max(axis=-1)
            keep = np.nonzero(scores >= self.score_threshold)[0]
            keep = keep[np.argsort(-scores[keep], kind="stable")[:self.pre_nms_top_k]]
            kept_boxes = np.clip(image_boxes[keep], 0.0, limits)
            per_class = None if self.class_agnostic_nms or not self.one_step else labels[keep]
            order = nms(kept_boxes, scores[keep], self.nms_iou, self.max_detections, per_class)
            selected.append((kept_boxes[order].astype(np.float32),
                             scores[keep][order].astype(np.float32),
                             labels[keep][order].astype(np.int32)))
        return selected

    def class_probabilities(self, crops) -> np.ndarray:
        """Classifier probabilities (n, K or K + 1) of crops (n, h, w, 3)."""
        parts = []
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start:start + self.batch_size]
            # pad to a power of two (>= 8) so the predict function is traced only a few times
            padded = max(8, 2 ** math.ceil(math.log2(len(chunk))))
            chunk = np.concatenate([chunk, np.zeros((padded - len(chunk),) + chunk.shape[1:],
                                                    np.float32)])
            out = self.classifier.predict_on_batch(chunk)
            scores = np.asarray(keras.ops.convert_to_numpy(_scores_of(out)), np.float64)
            parts.append(scores[:min(self.batch_size, len(crops) - start)])
        if not parts:
            return np.zeros((0, self.num_classes + int(self.background)))
        return _softmax(self.class_scale * np.concatenate(parts))

    def classify(self, images, selected) -> list:
        """Step 2 on the selected boxes -> [(boxes, scores, classes)] with final labels."""
        counts = [len(s[0]) for s in selected]
        if self.one_step or not sum(counts):
            return selected
        all_boxes = np.concatenate([s[0] for s in selected])
        image_of = np.repeat(np.arange(len(selected)), counts)
        crops = crop_boxes(images, expand_boxes(all_boxes, self.context), image_of,
                                self.crop_size)
        probabilities = self.class_probabilities(crops)[:, :self.num_classes]
        labels = probabilities.argmax(axis=-1)
        class_probability = probabilities[np.arange(len(labels)), labels]
        out, start = [], 0
        for (boxes, objectness, _), count in zip(selected, counts):
            part = slice(start, start + count)
            scores = (objectness * class_probability[part]).astype(np.float32)
            order = np.argsort(-scores, kind="stable")
            out.append((boxes[order], scores[order], labels[part][order].astype(np.int32)))
            start += count
        return out

    def postprocess(self, images, step1_outputs) -> list:
        """Everything after the step-1 network: selection, NMS and step 2."""
        return self.classify(self._check_images(images), self.select(step1_outputs))

    def detect(self, images) -> list:
        """Per image (boxes float32 (k, 4) xyxy pixels, scores (k,), classes int32 (k,))."""
        images = self._check_images(images)
        return self.postprocess(images, self.step1(images))

    __call__ = detect

    def detect_padded(self, images) -> dict:
        """`detect` as padded arrays {"boxes" (B, D, 4), "scores" (B, D), "classes" (B, D)},
        D = `max_detections`, class -1 and score 0 in the padding."""
        detections = self.detect(images)
        d = self.max_detections
        out = {"boxes": np.zeros((len(detections), d, 4), np.float32),
               "scores": np.zeros((len(detections), d), np.float32),
               "classes": np.full((len(detections), d), -1, np.int32)}
        for i, (boxes, scores, classes) in enumerate(detections):
            out["boxes"][i, :len(boxes)], out["scores"][i, :len(boxes)] = boxes, scores
            out["classes"][i, :len(boxes)] = classes
        return out

    def predict(self, images, batch_size=32) -> list:
        """`detect` over a large array, `batch_size` images at a time."""
        images = np.asarray(images, np.float32)
        out = []
        for start in range(0, len(images), batch_size):
            out += self.detect(images[start:start + batch_size])
        return out

    # ---- deployment

    def fused(self) -> TwoStepDetector:
        """The same pipeline with every RepVGG block folded (`zoo.models.repvgg.reparameterize`);
        a classifier with a dict head contributes its input -> scores model."""
        classifier = None
        if self.classifier is not None:
            classifier = self.classifier
            if hasattr(classifier, "inference_model"):
                classifier = classifier.inference_model()
            classifier = reparameterize(classifier)
        return TwoStepDetector(reparameterize(self.detector), classifier, **self.config())

    def save(self, folder) -> Path:
        """Write detector.keras, classifier.keras (two-step) and pipeline.json to `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.detector.save(folder / DETECTOR_FILE)
        if self.classifier is not None:
            self.classifier.save(folder / CLASSIFIER_FILE)
        (folder / PIPELINE_FILE).write_text(json.dumps(self.config(), indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder, safe_mode=True) -> TwoStepDetector:
        """Read a pipeline written by `save`."""
        folder = Path(folder)
        config_path = folder / PIPELINE_FILE
        if not config_path.exists():
            raise ValueError(f"{folder} holds no {PIPELINE_FILE}; expected a folder written "
                             "by TwoStepDetector.save")
        import losses  # noqa: F401 (registers the heads and losses)

        intra_inter_available()  # registers the "intra_inter" head when it exists
        config = json.loads(config_path.read_text())
        detector = keras.saving.load_model(folder / DETECTOR_FILE, safe_mode=safe_mode)
        classifier = None
        if (folder / CLASSIFIER_FILE).exists():
            classifier = keras.saving.load_model(folder / CLASSIFIER_FILE, safe_mode=safe_mode)
        return cls(detector, classifier, **config)

