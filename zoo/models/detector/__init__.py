"""A two-step lightweight detector on a re-parameterizable (RepVGG) backbone.

    model = zoo.create_model("detector", box_loss="eiou")      # step 1, a DenseDetector
    model.compile(optimizer="adam", jit_compile=True)
    model.fit(DetectionBatches(train_set, 32, shuffle=True), epochs=10)

    from zoo.training.tasks.detection import train_two_step     # both steps
    pipeline, _ = train_two_step(train_set, box_loss="eiou")
    detections = pipeline(images)      # per image (boxes (k, 4) xyxy, scores (k,), classes (k,))
    pipeline.fused().save("runs/det/deploy")                     # re-parameterized models

Step 1 (`model.py`, `targets.py`): RepVGG backbone -> one-level neck at stride 8, or a
feature pyramid (`stride=(8, 16, 32)`, each box learnt on the level its size falls in) -> a dense,
anchor-free head: per cell one objectness logit and four distances (FCOS), trained with a
sigmoid focal loss (or GFL's quality focal loss: the score learns the box's IoU) and a
selectable box loss (`targets.BOX_LOSSES`: eiou, ciou, giou, diou, wiou,
iou, siou, smoothl1, focal-eiou); targets by centre sampling, built in `keras.ops` inside
`DenseDetector.compute_loss` from the padded ground truth.
Step 2 (`model.py`, `pipeline.py`): crops of the step-1 boxes, classified by a small RepVGG
(`crop_classifier`, "intra_inter" head + IntraInterLoss when available, else softmax + CE)
over K classes + background.
Inference (`pipeline.py`): threshold -> NMS -> step 2 -> (boxes, scores, classes), in the
one object `TwoStepDetector` (save / load a folder of .keras files, `fused()`).
`one_step=True` gives a class-aware step 1 without the classifier, for comparison.
Images larger than the input (`tiling.py`): `detect_tiled(pipeline, image)` runs it over
overlapping tiles at native resolution and merges the boxes across tiles.
Serving (`export.py`, TensorFlow): `export_detector(pipeline, path)` writes the whole pipeline,
NMS and step 2 included, as one SavedModel; `export_step1_litert` step 1 as LiteRT.
"""

from zoo.models.detector.export import export_detector, export_step1_litert
from zoo.models.detector.model import (DenseDetector, DenseOutputs, classifier_loss,
                                       crop_classifier, default_head, detector,
                                       intra_inter_available)
from zoo.models.detector.pipeline import TwoStepDetector, classifier_crops, crop_boxes
from zoo.models.detector.targets import (BOX_LOSSES, SCORE_LOSSES, assign_targets,
                                         decode_boxes, detection_loss, encode_boxes,
                                         grid_centres, quality_focal_loss, sigmoid_focal_loss)
from zoo.models.detector.tiling import detect_tiled, tile_origins

__all__ = ["BOX_LOSSES", "SCORE_LOSSES", "DenseDetector", "DenseOutputs", "TwoStepDetector",
           "assign_targets", "classifier_crops", "classifier_loss", "crop_boxes",
           "crop_classifier", "decode_boxes", "default_head", "detect_tiled", "detection_loss",
           "detector", "export_detector", "export_step1_litert", "encode_boxes",
           "grid_centres", "intra_inter_available", "quality_focal_loss",
           "sigmoid_focal_loss", "tile_origins"]
