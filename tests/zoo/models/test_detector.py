"""The two-step detector (zoo/detector/): grid, box coding, target assignment, loss, NMS,
crops, the pipeline, save/load and re-parameterization.

References written here, independent of the code under test: a loop-by-loop NumPy
re-statement of the assignment rule, NumPy focal loss / IoU / Smooth L1, hand-made scenes
whose correct detections are known, and `keras.losses.binary_focal_crossentropy`.
"""

import math
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo.models.detector as zd
from detector_fixtures import TINY, randomize_batchnorm
from voc_fixtures import VOC_BOXES, write_voc_fixture
from zoo import boxes
from zoo.training.tasks import detection as det_task
from zoo.datasets.detection import SyntheticScenes
from zoo.evaluation.detection import evaluate_detections
from zoo.models.repvgg import reparameterize as zoo_reparameterize
from zoo.registry import create_model, list_models


def tiny_detector(input_shape=(32, 32, 3), num_classes=3, **kwargs):
    return zd.detector(num_classes=num_classes, input_shape=input_shape, **{**TINY, **kwargs})


# --------------------------------------------------------------------------- references


def np_assign(boxes, classes, grid, stride, radius, level_scale=8.0):
    """The assignment rule of zoo/detector/targets.py, one cell and one box at a time.

    `grid` and `stride` name one level, or lists of them name several (cells concatenated,
    finest level first; a box belongs to the first level l whose level_scale·s_l is at
    least its longer side, the last level to the rest)."""
    levels = list(zip(grid, stride)) if isinstance(stride, list) else [(grid, stride)]
    batch, m = classes.shape
    index = []
    for level, ((h, w), s) in enumerate(levels):
        part = np.full((batch, h * w), -1)
        for b in range(batch):
            for i in range(h):
                for j in range(w):
                    x, y = (j + 0.5) * s, (i + 0.5) * s
                    best, best_area = -1, np.inf
                    for g in range(m):
                        x1, y1, x2, y2 = (float(v) for v in boxes[b, g])
                        if classes[b, g] < 0 or x2 <= x1 or y2 <= y1:
                            continue
                        side = max(x2 - x1, y2 - y1)
                        box_level = next((k for k, (_, sk) in enumerate(levels[:-1])
                                          if side <= level_scale * sk), len(levels) - 1)
                        if box_level != level:
                            continue
                        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                        centre_cell = (min(max(math.floor(cy / s), 0), h - 1) == i
                                       and min(max(math.floor(cx / s), 0), w - 1) == j)
                        inside = x1 < x < x2 and y1 < y < y2
                        near = abs(x - cx) <= radius * s and abs(y - cy) <= radius * s
                        area = (x2 - x1) * (y2 - y1)
                        if (centre_cell or (inside and near)) and area < best_area:
                            best, best_area = g, area
                    part[b, i * w + j] = best
        index.append(part)
    return np.concatenate(index, axis=1)


def np_focal(t, z, alpha, gamma):
    p = 1 / (1 + np.exp(-z))
    p_t = np.where(t == 1, p, 1 - p)
    a_t = np.where(t == 1, alpha, 1 - alpha)
    return -a_t * (1 - p_t) ** gamma * np.log(p_t)


def np_iou(a, b):
    iw = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0)
    ih = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0)
    inter = iw * ih
    area = lambda c: (c[..., 2] - c[..., 0]) * (c[..., 3] - c[..., 1])
    return inter / (area(a) + area(b) - inter)


def numpy_of(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


# --------------------------------------------------------------------------- grid and coding


def test_grid_centres_row_major():
    centres = zd.grid_centres((2, 3), 8)
    expected = [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]]
    np.testing.assert_array_equal(centres, expected)


def test_decode_hand_value_and_inverse_of_encode():
    centres = zd.grid_centres((2, 2), 4)  # (2, 2), (6, 2), (2, 6), (6, 6)
    raw = np.zeros((1, 4, 4), np.float32)
    raw[0, 3] = [0.0, math.log(2.0), math.log(0.5), 0.0]
    boxes = numpy_of(zd.decode_boxes(raw, centres, 4))
    np.testing.assert_allclose(boxes[0, 0], [-2, -2, 6, 6], atol=1e-5)
    np.testing.assert_allclose(boxes[0, 3], [6 - 4, 6 - 8, 6 + 2, 6 + 4], atol=1e-5)
    # random boxes that contain their cell centre: decode(encode(b)) == b
    rng = np.random.default_rng(0)
    grid, stride = (4, 5), 8
    centres = zd.grid_centres(grid, stride)
    distances = rng.uniform(0.5, 40, size=(3, 20, 4)).astype(np.float32)
    xy = np.concatenate([centres, centres], axis=-1)
    gt = xy + np.asarray([-1, -1, 1, 1], np.float32) * distances
    raw = numpy_of(zd.encode_boxes(gt, centres, stride))
    np.testing.assert_allclose(raw, np.log(distances / stride), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(numpy_of(zd.decode_boxes(raw, centres, stride)), gt, rtol=1e-5,
                               atol=1e-3)


# --------------------------------------------------------------------------- assignment


def hand_scene():
    """32x32 image, stride 8 (cell centres at 4, 12, 20, 28), radius 1.5 (12 px)."""
    boxes = np.zeros((2, 7, 4), np.float32)
    classes = np.full((2, 7), -1, np.int32)
    boxes[0, :7] = [[2, 2, 22, 22],     # A: 20x20, cells rows 0-2 x cols 0-2
                    [9, 9, 15, 15],     # B: 6x6 around cell 5's centre (12, 12): wins cell 5
                    [24, 0, 32, 6],     # C: 8x6, only cell 3 = (row 0, col 3)
                    [0, 24, 8, 32],     # E: cell 12, same area as E' below -> E (lower index)
                    [0, 24, 8, 32],     # E'
                    [17, 17, 19, 19],   # G: 2x2, no cell centre inside: its centre cell 10
                    [0, 0, 32, 32]]     # padding row (class -1): would cover everything
    classes[0, :6] = [0, 1, 2, 3, 4, 0]
    return boxes, classes  # image 1: no objects at all


def test_assign_targets_hand_made():
    boxes, classes = hand_scene()
    out = {k: numpy_of(v) for k, v in zd.assign_targets(boxes, classes, (4, 4), 8, 1.5).items()}
    expected_index = np.full(16, -1)
    expected_index[[0, 1, 2, 4, 6, 8, 9]] = 0   # A
    expected_index[5] = 1                        # B (smaller than A)
    expected_index[3] = 2                        # C
    expected_index[12] = 3                       # E, tie with E' -> lower index
    expected_index[10] = 5                       # G via its centre cell (smaller than A)
    np.testing.assert_array_equal(out["index"][0], expected_index)
    np.testing.assert_array_equal(out["positive"][0], expected_index >= 0)
    np.testing.assert_array_equal(out["classes"][0],
                                  np.where(expected_index >= 0, classes[0][expected_index], -1))
    np.testing.assert_array_equal(out["boxes"][0][expected_index >= 0],
                                  boxes[0][expected_index[expected_index >= 0]])
    np.testing.assert_array_equal(out["boxes"][0][expected_index < 0], 0)
    assert not out["positive"][1].any() and (out["index"][1] == -1).all()


def test_assign_targets_matches_loop_reference():
    rng = np.random.default_rng(3)
    grid, stride, radius = (6, 5), 8, 1.5
    height, width = grid[0] * stride, grid[1] * stride
    xy = rng.uniform(-4, [width, height], size=(4, 9, 2))
    size = rng.uniform(2, 30, size=(4, 9, 2))
    boxes = np.concatenate([xy, xy + size], -1).astype(np.float32)
    classes = rng.integers(-1, 4, size=(4, 9)).astype(np.int32)
    boxes[0, 0, 2] = boxes[0, 0, 0]  # an empty box is never assigned
    index = numpy_of(zd.assign_targets(boxes, classes, grid, stride, radius)["index"])
    np.testing.assert_array_equal(index, np_assign(boxes, classes, grid, stride, radius))
    assert (index >= 0).any()


def test_assign_targets_on_several_levels_matches_loop_reference():
    rng = np.random.default_rng(5)
    grids, strides, radius, level_scale = [(16, 12), (8, 6), (4, 3)], [4, 8, 16], 1.5, 3.0
    height, width = 64, 48
    xy = rng.uniform(-4, [width, height], size=(3, 12, 2))
    size = rng.uniform(2, 60, size=(3, 12, 2))
    boxes = np.concatenate([xy, xy + size], -1).astype(np.float32)
    classes = rng.integers(-1, 4, size=(3, 12)).astype(np.int32)
    boxes[0, :3] = [[0, 0, 12, 6], [20, 20, 32.5, 30], [0, 0, 48, 64]]  # sides 12, 12.5, 64
    classes[0, :3] = 0
    index = numpy_of(zd.assign_targets(boxes, classes, grids, strides, radius,
                                       level_scale)["index"])
    np.testing.assert_array_equal(index, np_assign(boxes, classes, grids, strides, radius,
                                                   level_scale))
    offsets = np.cumsum([0] + [h * w for h, w in grids])
    level_of = lambda g: np.searchsorted(offsets, np.flatnonzero(index[0] == g), "right") - 1
    # 12 px = 3·4 stays on stride 4; 12.5 px goes to stride 8; the whole image to stride 16
    assert set(level_of(0)) == {0} and set(level_of(1)) == {1} and set(level_of(2)) == {2}
    for level in range(3):  # every level learns something in this scene
        assert (index[:, offsets[level]:offsets[level + 1]] >= 0).any()


def test_cells_of_several_levels_are_concatenated_finest_first():
    centres = zd.grid_centres([(2, 2), (1, 1)], [4, 8])
    np.testing.assert_array_equal(centres, [[2, 2], [6, 2], [2, 6], [6, 6], [4, 4]])
    np.testing.assert_array_equal(zd.targets.cell_strides([(2, 2), (1, 1)], [4, 8]),
                                  [4, 4, 4, 4, 8])
    raw = np.zeros((1, 5, 4), np.float32)  # every distance = its cell's stride
    boxes = numpy_of(zd.decode_boxes(raw, centres, zd.targets.cell_strides([(2, 2), (1, 1)],
                                                                           [4, 8])))
    np.testing.assert_allclose(boxes[0, [0, 4]], [[-2, -2, 6, 6], [-4, -4, 12, 12]])
    with pytest.raises(ValueError, match="increase"):
        zd.grid_centres([(2, 2), (4, 4)], [8, 4])
    with pytest.raises(ValueError, match="one grid"):
        zd.grid_centres([(2, 2)], [4, 8])


# --------------------------------------------------------------------------- the loss


def test_sigmoid_focal_loss_matches_numpy_and_keras():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, size=(50, 1)).astype(np.float32)
    t = rng.integers(0, 2, size=(50, 1)).astype(np.float32)
    ours = numpy_of(zd.sigmoid_focal_loss(t, z, 0.25, 2.0))
    np.testing.assert_allclose(ours, np_focal(t, z.astype(np.float64), 0.25, 2.0), rtol=1e-4,
                               atol=1e-6)
    reference = keras.losses.binary_focal_crossentropy(t, z, apply_class_balancing=True,
                                                       alpha=0.25, gamma=2.0, from_logits=True)
    np.testing.assert_allclose(ours[:, 0], numpy_of(reference), rtol=1e-4, atol=1e-6)
    assert np.isfinite(numpy_of(zd.sigmoid_focal_loss(np.ones(2), np.asarray([-200., 200.]))))\
        .all()


def np_wise_iou_v3(a, b, alpha=1.9, delta=3.0):
    """Wise-IoU v3 of boxes a against b (N, 4) xyxy, the mean 1 − IoU over these N boxes."""
    iou_loss = 1 - np_iou(a, b)
    centre = lambda x: 0.5 * (x[:, :2] + x[:, 2:])  # noqa: E731
    enclosing = np.maximum(a[:, 2:], b[:, 2:]) - np.minimum(a[:, :2], b[:, :2])
    v1 = np.exp(((centre(a) - centre(b)) ** 2).sum(1) / (enclosing ** 2).sum(1)) * iou_loss
    beta = iou_loss / iou_loss.mean()
    return beta / (delta * alpha ** (beta - delta)) * v1


@pytest.mark.parametrize("box_loss", ["iou", "smoothl1", "wiou"])
def test_detection_loss_against_numpy(box_loss):
    boxes, classes = hand_scene()
    targets = zd.assign_targets(boxes, classes, (4, 4), 8, 1.5)
    rng = np.random.default_rng(2)
    scores = rng.normal(0, 2, size=(2, 16, 1)).astype(np.float32)
    centres = zd.grid_centres((4, 4), 8)
    pred = np.concatenate([centres - rng.uniform(2, 9, (2, 16, 2)),
                           centres + rng.uniform(2, 9, (2, 16, 2))], -1).astype(np.float32)
    total, obj, box, count = (float(numpy_of(v)) for v in zd.detection_loss(
        targets, scores, pred, 8, box_loss, objectness_weight=0.5, box_weight=2.0))
    positive = numpy_of(targets["positive"])
    target_boxes = numpy_of(targets["boxes"])
    n = positive.sum()
    expected_obj = np_focal(positive[..., None].astype(float), scores.astype(float), 0.25,
                            2.0).sum() / n
    a, b = pred[positive] / 8.0, target_boxes[positive] / 8.0
    if box_loss == "iou":
        per_box = 1 - np_iou(a, b)
    elif box_loss == "wiou":  # the outlier degree over the positive cells only
        per_box = np_wise_iou_v3(a, b)
    else:
        d = np.abs(a - b)
        per_box = np.where(d < 1, 0.5 * d**2, d - 0.5).sum(-1)
    assert count == n == 11
    assert obj == pytest.approx(expected_obj, rel=1e-4)
    assert box == pytest.approx(per_box.sum() / n, rel=1e-4)
    assert total == pytest.approx(0.5 * expected_obj + 2.0 * per_box.sum() / n, rel=1e-4)


def np_quality_focal(y, z, beta):
    sigma = 1 / (1 + np.exp(-z))
    return np.abs(y - sigma) ** beta * -(y * np.log(sigma) + (1 - y) * np.log(1 - sigma))


def test_quality_focal_loss_matches_numpy_and_is_the_focal_loss_on_hard_targets():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, size=(40, 1))
    y = rng.uniform(0, 1, size=(40, 1))
    np.testing.assert_allclose(numpy_of(zd.quality_focal_loss(y, z.astype(np.float32), 2.0)),
                               np_quality_focal(y, z, 2.0), rtol=1e-4, atol=1e-6)
    t = rng.integers(0, 2, size=(40, 1)).astype(np.float32)
    np.testing.assert_allclose(numpy_of(zd.quality_focal_loss(t, z.astype(np.float32), 2.0)),
                               np_focal(t, z, 0.5, 2.0) * 2, rtol=1e-4, atol=1e-6)
    assert np.isfinite(numpy_of(zd.quality_focal_loss(np.ones(2), np.asarray([-200., 200.]))))\
        .all()


@pytest.mark.parametrize("num_scores", [1, 5], ids=["objectness", "one_step"])
def test_quality_focal_detection_loss_targets_each_cells_iou(num_scores):
    boxes, classes = hand_scene()
    targets = zd.assign_targets(boxes, classes, (4, 4), 8, 1.5)
    rng = np.random.default_rng(4)
    scores = rng.normal(0, 2, size=(2, 16, num_scores)).astype(np.float32)
    centres = zd.grid_centres((4, 4), 8)
    pred = np.concatenate([centres - rng.uniform(2, 9, (2, 16, 2)),
                           centres + rng.uniform(2, 9, (2, 16, 2))], -1).astype(np.float32)
    _, obj, box, count = (float(numpy_of(v)) for v in zd.detection_loss(
        targets, scores, pred, 8, "iou", score_loss="quality_focal"))
    positive = numpy_of(targets["positive"])
    target_boxes = numpy_of(targets["boxes"])
    quality = np.where(positive, np_iou(pred.astype(float), target_boxes), 0.0)
    y = np.zeros((2, 16, num_scores))
    column = numpy_of(targets["classes"]) if num_scores > 1 else np.zeros((2, 16), int)
    rows, cells = np.nonzero(positive)
    y[rows, cells, column[rows, cells]] = quality[rows, cells]
    expected = np_quality_focal(y, scores.astype(float), 2.0).sum() / positive.sum()
    assert count == positive.sum() == 11
    assert 0 < quality[positive].min() and quality.max() < 1  # soft targets, not 0/1
    assert obj == pytest.approx(expected, rel=1e-4)
    # the box term does not depend on the score loss
    _, _, box_focal, _ = zd.detection_loss(targets, scores, pred, 8, "iou")
    assert box == pytest.approx(float(numpy_of(box_focal)), rel=1e-6)


def test_one_step_loss_uses_class_targets():
    boxes, classes = hand_scene()
    targets = zd.assign_targets(boxes, classes, (4, 4), 8, 1.5)
    scores = np.zeros((2, 16, 5), np.float32)
    _, obj, _, _ = zd.detection_loss(targets, scores, np.tile([[0, 0, 8, 8]], (2, 16, 1))
                                     .astype(np.float32), 8, "giou")
    positive = numpy_of(targets["positive"])
    t = np.zeros((2, 16, 5))
    t[positive, numpy_of(targets["classes"])[positive]] = 1
    expected = np_focal(t, np.zeros_like(t), 0.25, 2.0).sum() / positive.sum()
    assert float(numpy_of(obj)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("box_loss,score_loss", [*((b, "focal") for b in zd.BOX_LOSSES),
                                                  ("eiou", "quality_focal")])
def test_loss_finite_with_no_objects_and_padding(box_loss, score_loss):
    model = tiny_detector(box_loss=box_loss, score_loss=score_loss)
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    boxes, classes = hand_scene()
    for y in ({"boxes": np.zeros((2, 3, 4), np.float32), "classes": np.full((2, 3), -1)},
              {"boxes": boxes, "classes": classes}):
        loss = model.compute_loss(images, y, model(images, training=True))
        assert np.isfinite(float(numpy_of(loss)))


@pytest.mark.parametrize("score_loss", zd.SCORE_LOSSES)
def test_mixed_precision_outputs_and_loss_are_float32(score_loss):
    keras.config.set_dtype_policy("mixed_float16")  # conftest restores float32
    model = tiny_detector(box_loss="ciou", score_loss=score_loss)
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    boxes, classes = hand_scene()
    out = model(images, training=True)
    assert out["scores"].dtype == "float32" and out["boxes"].dtype == "float32"
    loss = model.compute_loss(images, {"boxes": boxes, "classes": classes}, out)
    assert np.isfinite(float(numpy_of(loss)))


@pytest.mark.parametrize("stride", [8, (4, 8, 16)], ids=["one_level", "pyramid"])
def test_tiny_training_run_loss_decreases(stride):
    keras.utils.set_random_seed(0)
    scenes = SyntheticScenes(8, batch_size=8, image_size=64, min_size=12, max_size=28, seed=5)
    images, y = scenes[0]
    model = zd.detector(num_classes=5, input_shape=(64, 64, 3), stride=stride,
                        **{**TINY, "level_scale": 4.0})
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    history = model.fit(images, y, batch_size=8, epochs=25, verbose=0).history
    assert set(history) >= {"loss", "objectness_loss", "box_loss", "positives"}
    assert np.isfinite(history["loss"]).all()
    assert np.mean(history["loss"][-3:]) < 0.6 * np.mean(history["loss"][:3])
    assert np.mean(history["box_loss"][-3:]) < np.mean(history["box_loss"][:3])
    # a step on a batch without objects (all padding) keeps the loss and the weights finite
    empty = {"boxes": np.zeros_like(y["boxes"]), "classes": np.full_like(y["classes"], -1)}
    logs = model.train_on_batch(images, empty, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["positives"] == 0
    assert all(np.isfinite(numpy_of(w)).all() for w in model.trainable_weights)


# --------------------------------------------------------------------------- NMS and crops


def test_nms_hand_cases():
    same = np.asarray([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10]], np.float32)
    # equal scores: the lower index wins and suppresses its copies
    np.testing.assert_array_equal(boxes.nms(same, [0.9, 0.9, 0.8], 0.5), [0])
    disjoint = np.asarray([[0, 0, 4, 4], [10, 10, 14, 14], [20, 0, 24, 4]], np.float32)
    np.testing.assert_array_equal(boxes.nms(disjoint, [0.1, 0.7, 0.4], 0.5), [1, 2, 0])
    np.testing.assert_array_equal(boxes.nms(disjoint, [0.1, 0.7, 0.4], 0.5, max_output=2), [1, 2])
    # threshold edge: [0,0,10,10] vs [0,0,10,20]... IoU = 100 / 200 = 0.5 exactly
    edge = np.asarray([[0, 0, 10, 10], [0, 0, 10, 20]], np.float32)
    np.testing.assert_array_equal(boxes.nms(edge, [0.9, 0.8], 0.5), [0, 1])  # kept: not > 0.5
    np.testing.assert_array_equal(boxes.nms(edge, [0.9, 0.8], 0.49), [0])
    # per-class: overlapping boxes of different classes both survive
    np.testing.assert_array_equal(boxes.nms(same[:2], [0.9, 0.8], 0.5, classes=[0, 1]), [0, 1])
    assert boxes.nms(np.zeros((0, 4)), np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError, match="one score per box"):
        boxes.nms(same, [0.9])


def test_crop_boxes_exact_cases():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(2, 12, 10, 3)).astype(np.float32)
    crop = zd.crop_boxes(images, [[2, 3, 7, 9]], [1], (6, 5))
    np.testing.assert_allclose(crop[0], images[1, 3:9, 2:7], atol=1e-6)
    # a linear image is reproduced exactly at the sample points
    yy, xx = np.mgrid[0:12, 0:10].astype(np.float32)
    ramp = np.stack([xx + 0.5, yy + 0.5, 2 * xx - yy], -1)[None]  # value at pixel centres
    box = [1.3, 2.1, 8.7, 9.4]
    crop = zd.crop_boxes(ramp, [box], [0], (4, 3))[0]
    x = box[0] + (np.arange(3) + 0.5) * (box[2] - box[0]) / 3
    y = box[1] + (np.arange(4) + 0.5) * (box[3] - box[1]) / 4
    np.testing.assert_allclose(crop[..., 0], np.tile(x, (4, 1)), atol=1e-4)
    np.testing.assert_allclose(crop[..., 1], np.tile(y[:, None], (1, 3)), atol=1e-4)
    # outside the image the border repeats
    corner = zd.crop_boxes(images, [[-5, -5, 0.5, 0.5]], [0], 3)
    np.testing.assert_allclose(corner[0], np.broadcast_to(images[0, 0, 0], (3, 3, 3)),
                               atol=1e-6)
    with pytest.raises(ValueError, match="box_indices"):
        zd.crop_boxes(images, [[0, 0, 2, 2]], [2], 3)


def test_classifier_crops_labels_and_background():
    boxes, classes = hand_scene()
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    crops, labels = zd.classifier_crops(images, boxes, classes, 5, crop_size=8, context=1.0,
                                        jitter=0.0, copies=1, background=2.0, seed=0)
    valid = classes >= 0
    np.testing.assert_array_equal(labels[:valid.sum()], classes[valid])
    np.testing.assert_allclose(crops[:valid.sum()], zd.crop_boxes(
        images, boxes[valid], np.nonzero(valid)[0], 8), atol=1e-6)
    assert (labels[valid.sum():] == 5).all() and crops.shape[1:] == (8, 8, 3)
    assert 1 <= (labels == 5).sum() <= 4


# --------------------------------------------------------------------------- the pipeline

COLOURS = np.eye(3, dtype=np.float32)  # class k is drawn in pure colour k


def colour_classifier(size=8):
    """Crops -> logits: 20 x the mean colour, background logit 5 (K + 1 = 4 outputs)."""
    inputs = keras.Input((size, size, 3))
    dense = keras.layers.Dense(4)
    outputs = dense(keras.layers.GlobalAveragePooling2D()(inputs))
    dense.set_weights([np.concatenate([20 * COLOURS, np.zeros((3, 1))], 1).astype(np.float32),
                       np.asarray([0, 0, 0, 5], np.float32)])
    return keras.Model(inputs, outputs)


def colour_scene():
    boxes = np.asarray([[[2, 2, 14, 14], [18, 4, 30, 12], [6, 18, 26, 30], [0, 0, 0, 0]]],
                       np.float32)
    classes = np.asarray([[0, 1, 2, -1]], np.int32)
    images = np.zeros((1, 32, 32, 3), np.float32)
    for (x1, y1, x2, y2), k in zip(boxes[0, :3].astype(int), classes[0, :3]):
        images[0, y1:y2, x1:x2] = COLOURS[k]
    return images, boxes, classes


def perfect_outputs(boxes, classes, grid, stride, num_scores):
    targets = {k: numpy_of(v) for k, v in zd.assign_targets(boxes, classes, grid, stride,
                                                            1.5).items()}
    positive = targets["positive"]
    scores = np.full(positive.shape + (num_scores,), -10.0, np.float32)
    if num_scores == 1:
        scores[positive, 0] = 10.0
    else:
        scores[positive, targets["classes"][positive]] = 10.0
    pred = np.where(positive[..., None], targets["boxes"], [0, 0, 1, 1]).astype(np.float32)
    return {"scores": scores, "boxes": pred}


@pytest.mark.parametrize("one_step", [False, True])
def test_perfect_step1_outputs_give_perfect_detections(one_step):
    images, boxes, classes = colour_scene()
    model = tiny_detector(one_step=one_step)
    classifier = None if one_step else colour_classifier()
    pipeline = zd.TwoStepDetector(model, classifier, class_names=("r", "g", "b"),
                                  context=1.0, score_threshold=0.5)
    out = perfect_outputs(boxes, classes, (4, 4), 8, 3 if one_step else 1)
    (found_boxes, scores, labels), = pipeline.postprocess(images, out)
    order = np.argsort(labels)
    np.testing.assert_array_equal(labels[order], [0, 1, 2])
    np.testing.assert_allclose(found_boxes[order], boxes[0, :3], atol=1e-5)
    assert (scores > 0.99).all()
    result = evaluate_detections([(found_boxes, scores, labels)],
                                 {"boxes": boxes, "classes": classes}, ("r", "g", "b"))
    assert result["map"] == pytest.approx(1.0) and result["f1"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def tiny_pipeline():
    keras.utils.set_random_seed(1)
    model = tiny_detector(input_shape=(32, 32, 3), num_classes=5)
    classifier = zd.crop_classifier(6, (16, 16, 3), widths=(8, 8), depths=(1, 1),
                                    embedding_dim=8)
    randomize_batchnorm(model, 1)
    randomize_batchnorm(classifier, 2)
    images = np.random.default_rng(4).uniform(size=(3, 32, 32, 3)).astype(np.float32)
    pipeline = zd.TwoStepDetector(model, classifier, score_threshold=0.0, max_detections=7,
                                  class_scale=30.0)
    return pipeline, images


def test_pipeline_output_shapes(tiny_pipeline):
    pipeline, images = tiny_pipeline
    detections = pipeline(images)
    assert len(detections) == 3
    for boxes, scores, classes in detections:
        assert boxes.shape == (7, 4) and scores.shape == (7,) and classes.shape == (7,)
        assert boxes.dtype == np.float32 and classes.dtype == np.int32
        assert (boxes >= 0).all() and (boxes <= 32).all() and (np.diff(scores) <= 0).all()
        assert ((classes >= 0) & (classes < 5)).all()
    padded = pipeline.detect_padded(images)
    assert padded["boxes"].shape == (3, 7, 4) and padded["classes"].shape == (3, 7)
    with pytest.raises(ValueError, match="images must be"):
        pipeline(images[:, :16])


def _same_detections(a, b, atol):
    for (b1, s1, c1), (b2, s2, c2) in zip(a, b):
        np.testing.assert_array_equal(c1, c2)
        np.testing.assert_allclose(b1, b2, atol=atol)
        np.testing.assert_allclose(s1, s2, atol=atol)


def test_pipeline_save_load_and_fused(tiny_pipeline, tmp_path):
    pipeline, images = tiny_pipeline
    expected = pipeline(images)
    loaded = zd.TwoStepDetector.load(pipeline.save(tmp_path / "pipe"))
    assert loaded.config() == pipeline.config()
    _same_detections(loaded(images), expected, 1e-6)
    fused = pipeline.fused()
    assert not any(isinstance(layer, zd.model.RepVGGBlock) and not layer.deploy
                   for m in (fused.detector, fused.classifier)
                   for layer in m._flatten_layers())
    np.testing.assert_allclose(fused.step1(images)["scores"], pipeline.step1(images)["scores"],
                               atol=1e-4)
    np.testing.assert_allclose(fused.step1(images)["boxes"], pipeline.step1(images)["boxes"],
                               atol=1e-3)
    _same_detections(fused(images), expected, 1e-3)
    reloaded = zd.TwoStepDetector.load(fused.save(tmp_path / "fused"))
    _same_detections(reloaded(images), expected, 1e-3)


def test_detector_model_save_load_keeps_loss_settings(tmp_path):
    model = tiny_detector(box_loss="siou", radius=2.0, box_weight=3.0,
                          score_loss="quality_focal")
    model.save(tmp_path / "d.keras")
    loaded = keras.saving.load_model(tmp_path / "d.keras")
    assert isinstance(loaded, zd.DenseDetector)
    assert (loaded.box_loss, loaded.radius, loaded.box_weight, loaded.score_loss) == \
        ("siou", 2.0, 3.0, "quality_focal")
    assert loaded.grid_size == (4, 4) and loaded.stride == 8


def test_pyramid_detector_levels_save_load_and_fusion(tmp_path):
    keras.utils.set_random_seed(2)
    model = tiny_detector(input_shape=(32, 48, 3), stride=(4, 8, 16), level_scale=5.0)
    randomize_batchnorm(model, 3)
    assert model.strides == (4, 8, 16) and model.grid_size == [(8, 12), (4, 6), (2, 3)]
    assert model.output["boxes"].shape[1:] == (96 + 24 + 6, 4)
    images = np.random.default_rng(1).uniform(size=(2, 32, 48, 3)).astype(np.float32)
    out = {k: numpy_of(v) for k, v in model(images).items()}
    # each level decodes with its own stride: a zero raw output is a box of ±s around the cell
    box_conv = model.get_layer("box_conv")
    box_conv.set_weights([np.zeros_like(w) for w in box_conv.get_weights()])
    zero = numpy_of(model(images)["boxes"])[0]
    expected = np.concatenate([np.full((n, 1), s, np.float32) for n, s in ((96, 4), (24, 8),
                                                                           (6, 16))])
    centres = zd.grid_centres(model.grid_size, list(model.strides))
    np.testing.assert_allclose(zero, np.concatenate([centres, centres], 1)
                               + np.asarray([-1, -1, 1, 1]) * expected, atol=1e-4)
    box_conv.set_weights([np.random.default_rng(4).normal(0, 0.05, w.shape)
                          for w in box_conv.get_weights()])
    out = {k: numpy_of(v) for k, v in model(images).items()}
    model.save(tmp_path / "pyramid.keras")
    loaded = keras.saving.load_model(tmp_path / "pyramid.keras", safe_mode=True)
    assert loaded.strides == (4, 8, 16) and loaded.level_scale == 5.0
    np.testing.assert_allclose(numpy_of(loaded(images)["boxes"]), out["boxes"], atol=1e-5)
    fused = zoo_reparameterize(model)
    assert not any(isinstance(layer, zd.model.RepVGGBlock) and not layer.deploy
                   for layer in fused._flatten_layers())
    np.testing.assert_allclose(numpy_of(fused(images)["scores"]), out["scores"], atol=1e-4)
    np.testing.assert_allclose(numpy_of(fused(images)["boxes"]), out["boxes"], rtol=1e-4,
                               atol=1e-3)


def test_registry_and_classifier_head():
    assert {"detector", "crop_classifier"} <= set(list_models())
    model = create_model("detector", num_classes=4, input_shape=(32, 32, 3), one_step=True,
                         **TINY)
    assert model.one_step and model.output["scores"].shape[1:] == (16, 4)
    classifier = create_model("crop_classifier", num_classes=6, input_shape=(16, 16, 3),
                              widths=(8,), depths=(1,))
    head = zd.default_head()
    assert head == ("intra_inter" if zd.intra_inter_available() else "softmax")
    if head == "intra_inter":
        assert isinstance(classifier.output, dict) and "distances" in classifier.output
    loss, scale = zd.classifier_loss("softmax")
    assert scale == 1.0 and isinstance(loss, keras.losses.SparseCategoricalCrossentropy)


def test_value_errors():
    with pytest.raises(ValueError, match="box_loss"):
        tiny_detector(box_loss="l2")
    with pytest.raises(ValueError, match="score_loss must be one of 'focal', 'quality_focal'"):
        tiny_detector(score_loss="varifocal")
    with pytest.raises(ValueError, match="stride"):
        tiny_detector(stride=3)
    for bad in ((4, 16), (16, 8), (), (2.0, 4)):  # not consecutive, decreasing, empty, float
        with pytest.raises(ValueError, match="stride"):
            tiny_detector(stride=bad)
    with pytest.raises(ValueError, match="level_scale"):
        tiny_detector(stride=(4, 8), level_scale=0)
    with pytest.raises(ValueError, match="divisible"):
        tiny_detector(input_shape=(36, 32, 3))
    model = tiny_detector()
    images = np.zeros((1, 32, 32, 3), np.float32)
    with pytest.raises(ValueError, match="padded ground truth"):
        model.compute_loss(images, np.zeros((1, 3)), model(images))
    with pytest.raises(ValueError, match="sample_weight"):
        model.compute_loss(images, {"boxes": np.zeros((1, 1, 4)), "classes": [[0]]},
                           model(images), sample_weight=np.ones(1))
    with pytest.raises(ValueError, match="needs a classifier"):
        zd.TwoStepDetector(model)
    with pytest.raises(ValueError, match="max_objects"):
        zd.assign_targets(np.zeros((1, 2, 4)), np.zeros((1, 3)), (4, 4), 8)
    with pytest.raises(ValueError, match="radius"):
        zd.assign_targets(np.zeros((1, 2, 4)), np.zeros((1, 2)), (4, 4), 8, radius=-1)


# --------------------------------------------------------------------------- VOC / COCO runs


def test_split_indices_is_a_seeded_partition():
    train_idx, test_idx = det_task.split_indices(10, 0.2, seed=3)
    expected_test = np.sort(np.random.default_rng(3).permutation(10)[:2])
    np.testing.assert_array_equal(test_idx, expected_test)
    np.testing.assert_array_equal(np.sort(np.r_[train_idx, test_idx]), np.arange(10))
    assert len(det_task.split_indices(2, 0.01)[1]) == 1  # at least one test image
    assert len(det_task.split_indices(3, 0.99)[0]) == 1  # at least one training image
    with pytest.raises(ValueError, match="at least 2"):
        det_task.split_indices(1)
    with pytest.raises(ValueError, match="test_fraction"):
        det_task.split_indices(5, 1.0)


def test_load_detection_data_voc_split_and_image_sets(tmp_path):
    root = write_voc_fixture(tmp_path / "voc")
    train, test, info = det_task.load_detection_data(f"voc:{root}")
    test_idx = np.sort(np.random.default_rng(0).permutation(6)[:1])  # round(0.2 * 6) = 1
    assert list(test.names) == [f"{i:05d}.jpg" for i in test_idx]
    assert sorted(train.names + test.names) == [f"{i:05d}.jpg" for i in range(6)]
    assert train.class_names == test.class_names == ("cat", "dog")
    assert train.images.shape[1:] == (128, 128, 3) and "5 train / 1 test" in info["split"]
    from zoo.datasets.detection import BoxAugmenter

    assert isinstance(info["augment"], BoxAugmenter)
    # boxes: 96x64 letterboxed into 128x128 -> 128x85 pixels (sx = 4/3, sy = 85/64) at
    # dy = (128 - 85) // 2 = 21; VOC (11, 9, 40, 30) is the edge box (10, 8, 40, 30)
    everything = train if "00000.jpg" in train.names else test
    first = everything.names.index("00000.jpg")
    sx, sy = 4 / 3, 85 / 64
    np.testing.assert_allclose(everything.objects(first)[0][0],
                               [10 * sx, 8 * sy + 21, 40 * sx, 30 * sy + 21], atol=1e-4)
    # ImageSets/Main decide the split when they exist; limits keep the first N
    sets = write_voc_fixture(tmp_path / "sets", image_sets={
        "trainval.txt": ["00000", "00002", "00003", "00005"], "test.txt": ["00001", "00004"]})
    train, test, info = det_task.load_detection_data(f"voc:{sets}", train_limit=3)
    assert list(train.names) == ["00000.jpg", "00002.jpg", "00003.jpg"]
    assert list(test.names) == ["00001.jpg", "00004.jpg"] and "ImageSets" in info["split"]


def test_load_detection_data_coco_and_bad_names(tmp_path):
    import json

    root = write_voc_fixture(tmp_path / "voc")
    images = [{"id": i + 1, "file_name": f"images/{i:05d}.jpg", "width": 96, "height": 64}
              for i in range(6)]
    annotations = [{"id": 10 * i + k, "image_id": i + 1, "category_id": 1 if n == "cat" else 2,
                    "bbox": [x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1], "iscrowd": 0}
                   for i, objects in enumerate(VOC_BOXES)
                   for k, (n, x1, y1, x2, y2) in enumerate(objects)]
    (root / "coco.json").write_text(json.dumps({
        "images": images, "annotations": annotations,
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}))
    train, test, _ = det_task.load_detection_data(f"coco:{root / 'coco.json'},{root}")
    voc_train, voc_test, _ = det_task.load_detection_data(f"voc:{root}")
    np.testing.assert_allclose(train.boxes, voc_train.boxes, atol=1e-4)  # the same boxes
    assert list(test.names) == list(voc_test.names)
    task = det_task.DetectionTask()
    assert task.dataset_kind(f"coco:{root}") == "coco:ANNOTATIONS.json[,IMAGES_DIR]"
    with pytest.raises(ValueError, match="unknown detection dataset 'mnist'"):
        task.dataset_kind("mnist")
    with pytest.raises(ValueError, match="unknown detection dataset"):
        det_task.load_detection_data("mnist")
    with pytest.raises(ValueError, match="names no path"):
        det_task.load_detection_data("voc:")


def test_cli_knows_the_detection_dataset_forms(capsys):
    from zoo import train
    from zoo.training import resolve

    assert train.main(["--model", "detector", "--dataset", "yolo:x"]) == 2
    assert "unknown detection dataset 'yolo:x'" in capsys.readouterr().err
    config = train.parse_args(["--model", "detector", "--dataset", "voc:../data/kangaroo/",
                               "--loss", "ciou"])
    assert resolve(config)[0].out == "runs/detector-voc-kangaroo-ciou"
    config.out = "runs/mine"
    assert resolve(config)[0].out == "runs/mine"
    with pytest.raises(SystemExit):
        train.main(["--help"])
    assert "synth_scenes, neon_trees, voc:PATH, coco:ANNOTATIONS.json[,IMAGES_DIR]" in \
        capsys.readouterr().out


def test_step1_detections_equal_the_pipeline_selection(tiny_pipeline):
    pipeline, images = tiny_pipeline
    ours = det_task.step1_detections(pipeline.detector, images, score_threshold=0.0,
                                     max_detections=7)
    for (b1, s1, c1), (b2, s2, _) in zip(ours, pipeline.select(pipeline.step1(images))):
        np.testing.assert_allclose(b1, b2, atol=1e-6)
        np.testing.assert_allclose(s1, s2, atol=1e-6)
        assert (c1 == 0).all() and len(c1) == 7
    with pytest.raises(ValueError, match="augment"):
        det_task.fit_detector(SyntheticScenes(2, image_size=32, max_size=16).to_set(),
                        augment="flip")


def test_mirror_permutation_by_hand_and_refuses_a_grid_wider_than_the_image():
    # 32 px: a 2 x 2 level at stride 16 (cells 0 1 / 2 3), then one cell at stride 32
    np.testing.assert_array_equal(zd.pipeline.mirror_permutation(
        [((2, 2), 16), ((1, 1), 32)], 32), [1, 0, 3, 2, 4])
    # 3 columns at stride 8: 0 1 2 -> 2 1 0
    np.testing.assert_array_equal(zd.pipeline.mirror_permutation([((1, 3), 8)], 24), [2, 1, 0])
    with pytest.raises(ValueError, match="cover the image width"):
        zd.pipeline.mirror_permutation([((2, 3), 16)], 40)


def test_flip_tta_averages_each_cell_with_the_cell_that_sees_its_mirror():
    """Reference: for every cell, the cell of the mirror image whose centre is the mirror of
    its centre on the same level, found by search; probabilities and unflipped boxes averaged."""
    keras.utils.set_random_seed(2)
    model = tiny_detector(input_shape=(32, 32, 3), stride=(8, 16))
    randomize_batchnorm(model, 5)
    images = np.random.default_rng(9).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    plain = {k: keras.ops.convert_to_numpy(v) for k, v in model.predict_on_batch(images).items()}
    mirror = {k: keras.ops.convert_to_numpy(v)
              for k, v in model.predict_on_batch(images[:, :, ::-1].copy()).items()}
    cells = [(s, (j + 0.5) * s, (i + 0.5) * s) for s, h, w in ((8, 4, 4), (16, 2, 2))
             for i in range(h) for j in range(w)]
    sigmoid = lambda x: 1 / (1 + np.exp(-np.asarray(x, np.float64)))  # noqa: E731
    found = zd.pipeline.run_step1(model, images, flip_tta=True)
    assert found["scores"].shape == plain["scores"].shape == (2, 20, 1)
    for p, (s, x, y) in enumerate(cells):
        q = [k for k, c in enumerate(cells) if c == (s, 32 - x, y)]
        assert len(q) == 1
        b = mirror["boxes"][:, q[0]]
        expected_box = 0.5 * (plain["boxes"][:, p] + np.stack(
            [32 - b[:, 2], b[:, 1], 32 - b[:, 0], b[:, 3]], axis=-1))
        expected_p = 0.5 * (sigmoid(plain["scores"][:, p]) + sigmoid(mirror["scores"][:, q[0]]))
        np.testing.assert_allclose(found["boxes"][:, p], expected_box, atol=1e-4)
        np.testing.assert_allclose(sigmoid(found["scores"][:, p]), expected_p, atol=1e-6)
    # without it, run_step1 is the model's own output
    np.testing.assert_allclose(zd.pipeline.run_step1(model, images)["boxes"], plain["boxes"])


def test_flip_tta_detections_are_flip_equivariant_and_survive_save_load(tiny_pipeline,
                                                                          tmp_path):
    """What the mirror image gives is the mirror of what the image gives; plain step 1 is
    not so (a random network has no symmetry), which the check would otherwise miss. This
    checks the unflipping and the averaging; the pairing of cells holds for any pairing
    and is checked by the brute-force search above."""
    pipeline, images = tiny_pipeline
    tta = zd.TwoStepDetector(pipeline.detector, pipeline.classifier, score_threshold=0.0,
                             max_detections=7, class_scale=30.0, flip_tta=True)
    mirrored = images[:, :, ::-1].copy()

    def mirrored_boxes(selected):
        return [np.stack([32 - b[:, 2], b[:, 1], 32 - b[:, 0], b[:, 3]], axis=-1)
                for b, _, _ in selected]

    direct, of_mirror = tta.select(tta.step1(images)), tta.select(tta.step1(mirrored))
    for (b1, s1, _), b2, (_, s2, _) in zip(of_mirror, mirrored_boxes(direct), direct):
        np.testing.assert_allclose(b1, b2, atol=1e-4)
        np.testing.assert_allclose(s1, s2, atol=1e-6)
    plain = pipeline.select(pipeline.step1(mirrored))
    assert not all(np.allclose(b1, b2, atol=1e-2) for (b1, _, _), b2 in
                   zip(plain, mirrored_boxes(pipeline.select(pipeline.step1(images)))))
    loaded = zd.TwoStepDetector.load(tta.save(tmp_path / "tta"))
    assert loaded.flip_tta and loaded.config() == tta.config()
    _same_detections(loaded(images), tta(images), 1e-6)
    # step 1 alone (Step1Only) takes the pipeline's setting
    step1_only = det_task.Step1Only.of(tta)
    for (b1, s1, _), (b2, s2, _) in zip(step1_only.detect(images), direct):
        np.testing.assert_allclose(b1, b2, atol=1e-6)
        np.testing.assert_allclose(s1, s2, atol=1e-6)


def test_build_detector_starts_from_another_step1_or_refuses_another_architecture(tmp_path):
    """`init_from`: every weight of a saved step 1 (trained on other classes: the objectness
    score does not depend on them) lands in the new model; a step 1 of another architecture
    is refused, since its layers would silently stay random."""
    source = tiny_detector(num_classes=2, stride=(8, 16))
    randomize_batchnorm(source, seed=3)
    for weight in source.trainable_weights:
        weight.assign(np.random.default_rng(1).normal(size=weight.shape))
    source.save(tmp_path / "step1.keras")
    scenes = SyntheticScenes(2, image_size=32, max_size=16).to_set()  # 5 shape classes
    model, _ = det_task.build_detector(scenes, jit_compile=False, stride=(8, 16),
                                       init_from=str(tmp_path / "step1.keras"), **TINY)
    assert len(model.weights) == len(source.weights)
    for ours, theirs in zip(model.weights, source.weights):
        assert ours.path == theirs.path
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours),
                                      keras.ops.convert_to_numpy(theirs))
    with pytest.raises(ValueError, match="not copied"):
        det_task.build_detector(scenes, jit_compile=False, stride=8,
                                init_from=str(tmp_path / "step1.keras"), **TINY)


@pytest.mark.slow
def test_voc_run_writes_metrics(tmp_path):
    import json
    from zoo.training import TrainConfig, run

    root = write_voc_fixture(tmp_path / "voc")
    # batch 5 = the 5 training images: one traced step; tiny models: quick XLA compiles
    config = TrainConfig(model="detector", dataset=f"voc:{root}", out=str(tmp_path / "run"),
                         epochs=1, batch_size=5, learning_rate=1e-3, seed=0, verbose=0,
                         loss="giou", trace_weights=0, options={
                             "classifier_epochs": 1, "image_size": (64, 64),
                             "detector_kwargs": TINY, "strides": "4,8,16",  # a pyramid
                             "classifier_kwargs": {"widths": (8, 8), "depths": (1, 1),
                                                   "embedding_dim": 8}})
    metrics = run(config)
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert stored["strides"] == [4, 8, 16]
    assert stored["dataset"] == f"voc:{root}" and stored["class_names"] == ["cat", "dog"]
    assert (stored["train_images"], stored["test_images"]) == (5, 1)
    assert stored["test_names"] == [f"{i:05d}.jpg"
                                    for i in np.random.default_rng(0).permutation(6)[:1]]
    assert "BoxAugmenter" in stored["augmentation"] and stored["box_loss"] == "giou"
    assert 0.0 <= metrics["map_50"] <= 1.0 and np.isfinite(metrics["wall_seconds"])
    for name in ("history.csv", "pr_curves.png", "detections.png", "pipeline/pipeline.json",
                 "pipeline_fused/detector.keras", "weight_trace.npz", "weight_updates.png",
                 "savedmodel/saved_model.pb"):
        assert (tmp_path / "run" / name).exists(), name
    assert "savedmodel/" in stored["files"] and stored["export_seconds"] > 0
    # python -m zoo.export: the pipeline folder and step 1 as LiteRT give the run's outputs
    import tensorflow as tf
    from zoo import export as zexport

    pipeline = zd.TwoStepDetector.load(tmp_path / "run" / "pipeline")
    images = np.random.default_rng(0).uniform(size=(1, 64, 64, 3)).astype(np.float32)
    reloaded = zd.TwoStepDetector.load(zexport.export_run(tmp_path / "run", "keras",
                                                          tmp_path / "pipe"))
    assert reloaded.config() == pipeline.config()
    np.testing.assert_allclose(reloaded.step1(images)["scores"],
                               pipeline.step1(images)["scores"], atol=1e-4)
    path = zexport.export_run(tmp_path / "run", "litert", tmp_path / "step1")
    serve = tf.lite.Interpreter(model_path=str(path)).get_signature_runner("serve")
    np.testing.assert_allclose(serve(images=images)["scores"],
                               pipeline.step1(images)["scores"], atol=1e-4)


@pytest.mark.slow
def test_tiled_voc_run_trains_on_windows_and_scores_tile_by_tile(tmp_path):
    import json
    from zoo.training import TrainConfig, run

    root = write_voc_fixture(tmp_path / "voc")  # 96 x 64 images, larger than the 32 px input
    config = TrainConfig(model="detector", dataset=f"voc:{root}", out=str(tmp_path / "run"),
                         epochs=1, batch_size=8, learning_rate=1e-3, seed=0, verbose=0,
                         loss="giou", trace_weights=0, options={
                             "classifier_epochs": 1, "image_size": 32, "tiles": True,
                             "tile_overlap": 8, "hard_negatives": True, "flip_tta": True,
                             "detector_kwargs": TINY,
                             "classifier_kwargs": {"widths": (8, 8), "depths": (1, 1),
                                                   "embedding_dim": 8}})
    run(config)
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert stored["tiled"] and stored["max_detections"] == det_task.TILED_MAX_DETECTIONS
    assert stored["hard_negatives"] >= 0 and isinstance(stored["step2_helps"], bool)
    gain = stored["step2_precision_gain"]
    assert set(gain) == {"max_common_recall", "recall_levels", "mean", "min", "max",
                         "share_not_worse"}
    assert gain["recall_levels"] == 0 or gain["min"] <= gain["mean"]
    assert stored["augmentation"].startswith("RandomTiles(tile_size=(32, 32)")
    # 5 training images of 96 x 64 = 30,720 px: 30 windows of 32 x 32 per epoch
    assert stored["train_samples"] == 30
    for key in ("map_50", "step1_map_50", "untiled_map_50", "untiled_step1_map_50"):
        assert 0.0 <= stored[key] <= 1.0
    pipeline = zd.TwoStepDetector.load(tmp_path / "run" / "pipeline")
    assert pipeline.image_shape == (32, 32)
    assert pipeline.flip_tta and stored["pipeline"]["flip_tta"]  # tiles flip-averaged too
    assert (tmp_path / "run" / "detections.png").stat().st_size > 0


def test_false_positives_are_the_detections_that_overlap_no_object():
    from zoo.models.detector.pipeline import classifier_crops, false_positive_boxes

    gt = np.asarray([[[0, 0, 10, 10], [0, 0, 0, 0]]], np.float32)
    classes = np.asarray([[0, -1]])
    found = np.asarray([[1, 1, 10, 10],      # IoU 0.81 with the object: a hit
                        [20, 20, 30, 30],    # IoU 0: false positive, score 0.5
                        [5, 0, 15, 10],      # IoU 50/150 = 0.33 >= 0.3: not background
                        [40, 0, 50, 10],     # IoU 0: false positive, score 0.9
                        [60, 0, 70, 10]], np.float32)  # score 0.1
    scores = np.asarray([0.95, 0.5, 0.6, 0.9, 0.1])
    negatives = false_positive_boxes([(found, scores)], gt, classes, minimum=2)
    assert negatives[0].tolist() == [[40, 0, 50, 10], [20, 20, 30, 30]]  # best first, 2 kept
    assert len(false_positive_boxes([(found, scores)], gt, classes, minimum=4)[0]) == 3
    image = np.zeros((1, 80, 80, 3), np.float32)
    image[0, :, 40:50] = 1.0
    crops, labels = classifier_crops(image, gt, classes, 1, crop_size=8, context=1.0,
                                     jitter=0.0, background=0, negatives=negatives)
    assert labels.tolist() == [0, 1, 1]   # the object, then the two negatives as background
    assert np.allclose(crops[1], 1.0)     # the crop of [40, 0, 50, 10] is all white
    with pytest.raises(ValueError, match="one \\(k, 4\\) array per image"):
        classifier_crops(image, gt, classes, 1, negatives=[])


def test_backbone_weights_are_copied_block_by_block(monkeypatch):
    from zoo import registry
    from zoo.models.repvgg import repvgg_tiny

    keras.utils.set_random_seed(1)
    classifier = repvgg_tiny(widths=(8, 8, 16, 16), depths=(1, 1, 1, 1))
    asked = []

    def fake_create_model(name, weights=None, **kwargs):
        asked.append((name, weights))
        return classifier

    monkeypatch.setattr(registry, "create_model", fake_create_model)
    model = zd.detector(num_classes=1, input_shape=(64, 64, 3), widths=(8, 8, 16, 16),
                        depths=(1, 1, 1, 1), neck_width=8, head_width=8, head_depth=1,
                        backbone_weights="repvgg_tiny.cifar10")
    assert asked == [("repvgg_tiny", "cifar10")]
    backbone = model.get_layer("backbone")
    for name in ("stage0_block0", "stage3_block0"):
        for ours, theirs in zip(backbone.get_layer(name).get_weights(),
                                classifier.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="build the detector with the classifier's widths"):
        zd.detector(num_classes=1, input_shape=(64, 64, 3), widths=(8, 8, 16, 32),
                    depths=(1, 1, 1, 1), backbone_weights="repvgg_tiny.cifar10")
    with pytest.raises(ValueError, match="MODEL.TAG"):
        zd.detector(num_classes=1, input_shape=(64, 64, 3), backbone_weights="cifar10")


def test_the_crop_classifier_backbone_is_copied_from_pretrained_weights(monkeypatch):
    from zoo import registry
    from zoo.models.repvgg import repvgg_tiny

    keras.utils.set_random_seed(2)
    pretrained = repvgg_tiny(widths=(8, 8, 16), depths=(1, 1, 1))
    monkeypatch.setattr(registry, "create_model", lambda name, weights=None, **kw: pretrained)
    model = zd.crop_classifier(2, widths=(8, 8, 16), depths=(1, 1, 1), embedding_dim=4,
                               head="softmax", backbone_weights="repvgg_tiny.cifar10")
    for name in ("stage0_block0", "stage2_block0"):
        for ours, theirs in zip(model.get_layer("backbone").get_layer(name).get_weights(),
                                pretrained.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="widths"):
        zd.crop_classifier(2, widths=(8, 8, 32), depths=(1, 1, 1), head="softmax",
                           backbone_weights="repvgg_tiny.cifar10")


def test_on_real_images_the_crop_classifier_starts_from_step_1s_backbone_weights():
    from zoo import train

    task = det_task.DetectionTask()

    def kwargs(*arguments, classifier_kwargs=None):
        config = train.parse_args(["--model", "detector", *arguments])
        if classifier_kwargs is not None:
            config.options["classifier_kwargs"] = classifier_kwargs
        return task.classifier_kwargs(config)

    pretrained = {**det_task.REAL_DATA_CLASSIFIER,
                  "backbone_weights": det_task.REAL_DATA_BACKBONE}
    assert det_task.REAL_DATA_CLASSIFIER == {"widths": (16, 32, 64, 128),
                                             "depths": (1, 2, 2, 2)}
    assert kwargs("--dataset", "voc:x") == pretrained
    assert kwargs("--dataset", "neon_trees") == pretrained
    assert kwargs() == {}                                                 # synthetic scenes
    assert kwargs("--dataset", "voc:x", "--backbone-weights", "none") == {}
    assert kwargs("--dataset", "voc:x", classifier_kwargs={"widths": (8, 8)}) == {
        "widths": (8, 8)}                                                 # the user's shape
    assert kwargs("--dataset", "voc:x", classifier_kwargs={"head": "softmax"}) == {
        "head": "softmax", **pretrained}


def test_real_images_default_to_the_pretrained_backbone_and_the_quality_score():
    from zoo import train

    task = det_task.DetectionTask()

    def kwargs(*arguments):
        return task.detector_kwargs(train.parse_args(["--model", "detector", *arguments]))

    focal, quality = {"score_loss": "focal"}, {"score_loss": "quality_focal"}
    assert det_task.REAL_DATA_SCORE_LOSS == "quality_focal"
    assert kwargs() == focal                                            # synthetic scenes
    assert kwargs("--dataset", "voc:x") == {"backbone_weights": det_task.REAL_DATA_BACKBONE,
                                            **quality}
    assert kwargs("--dataset", "neon_trees", "--backbone-weights", "none") == quality
    assert kwargs("--dataset", "voc:x", "--backbone-weights", "none",
                  "--score-loss", "focal") == focal
    assert kwargs("--backbone-weights", "repvgg_tiny.cifar10") == {
        "backbone_weights": "repvgg_tiny.cifar10", **focal}
    assert kwargs("--score-loss", "quality_focal") == quality
    config = train.parse_args(["--model", "detector", "--dataset", "voc:x"])
    config.options["detector_kwargs"] = {"widths": (8, 8, 16, 16)}     # another backbone
    assert task.detector_kwargs(config) == {"widths": (8, 8, 16, 16), **quality}


def test_strides_option_builds_a_pyramid_and_checks_the_image_size():
    from zoo import train
    from zoo.training.tasks.base import ConfigError

    task = det_task.DetectionTask()

    def config(*arguments):
        return train.parse_args(["--model", "detector", "--loss", "eiou", "--dataset",
                                 "synth_scenes", *arguments])

    assert task.detector_kwargs(config("--strides", "8,16,32"))["stride"] == (8, 16, 32)
    assert task.detector_kwargs(config("--strides", "4"))["stride"] == 4
    task.check(config("--strides", "8,16,32", "--image-size", "256"))
    with pytest.raises(ConfigError, match="largest stride 32"):
        task.check(config("--strides", "8,16,32", "--image-size", "176"))
    for bad in ("8,32", "16,8", "12", "x", ""):
        with pytest.raises(ConfigError, match="strides"):
            task.check(config("--strides", bad))
    python = config()
    python.options["score_loss"] = "varifocal"  # the command line refuses it in argparse
    with pytest.raises(ConfigError, match="score_loss must be one of focal, quality_focal"):
        task.check(python)


@pytest.mark.parametrize("tiles", [False, True])
def test_zoom_reaches_the_training_batches_and_each_data_kind_has_its_default(tmp_path, tiles):
    from zoo.training import TrainConfig, resolve

    root = write_voc_fixture(tmp_path / "voc")

    def batches(**options):
        config = TrainConfig(model="detector", dataset=f"voc:{root}", epochs=1, options={
            "tiles": tiles, "image_size": 64, "backbone_weights": "none",
            "detector_kwargs": {"widths": (4, 4, 4, 4), "depths": (1, 1, 1, 1)}, **options})
        config, task = resolve(config)
        prepared = task.prepare(config)
        batches.optimizer, batches.train = prepared.model.optimizer, prepared.data["train"]
        return prepared.data["batches"], prepared.info

    zoomed, info = batches(zoom="0.5,1.5")
    assert info["zoom"] == [0.5, 1.5]
    plain, plain_info = batches()
    if tiles:
        assert zoomed.scale == (0.5, 1.5) and plain.scale == (1.0, 1.0)
        assert plain_info["ema_momentum"] is None  # tiles: no colour jitter, no average
        assert "colour_jitter" not in plain_info and "mosaic" not in plain_info
        with pytest.raises(ValueError, match="mosaic is for letterboxed images"):
            det_task.build_detector(batches.train, tile_size=64, mosaic=0.5)
    else:
        assert zoomed.augment.zoom == (0.5, 1.5)
        assert plain.augment.zoom == det_task.REAL_DATA_ZOOM == (0.5, 2.0)  # the default
        # colour jitter and the weight average: off by default, on when asked
        augment = plain.augment
        assert (augment.saturation, augment.contrast, augment.brightness) == (0, 0, 0)
        assert "colour_jitter" not in plain_info and plain_info["ema_momentum"] is None
        assert not batches.optimizer.use_ema
        assert plain.mosaic == 0.0 and "mosaic" not in plain_info
        narrow, narrow_info = batches(zoom="0.75,1.33", colour_jitter="0.5,0.3,0.2", ema=0.9,
                                      mosaic=0.5)
        assert narrow.mosaic == 0.5 and narrow_info["mosaic"] == 0.5
        assert narrow.augment.zoom == (0.75, 1.33)
        assert (narrow.augment.saturation, narrow.augment.contrast,
                narrow.augment.brightness) == (0.5, 0.3, 0.2)
        assert narrow_info["colour_jitter"] == [0.5, 0.3, 0.2]
        assert narrow_info["ema_momentum"] == 0.9  # and it reaches step 1's optimizer
        assert batches.optimizer.use_ema and batches.optimizer.ema_momentum == pytest.approx(0.9)


def test_the_run_summary_says_when_step_2_changes_nothing():
    from zoo.evaluation.detection import precision_gain, precision_recall_curve

    step1 = precision_recall_curve([0.9, 0.8, 0.7, 0.6], [False, True, False, True], 2)
    better = precision_recall_curve([0.9, 0.8, 0.7, 0.6], [True, True, False, False], 2)
    task = det_task.DetectionTask()
    base = {"map_50": 0.5, "step1_map_50": 0.5, "step2_helps": True}
    kept = task.summary({**base, "step2_precision_gain": precision_gain(step1, step1)})
    assert "changes nothing here" in kept and "--one-step" in kept
    raised = task.summary({**base, "map_50": 0.7,
                           "step2_precision_gain": precision_gain(better, step1)})
    assert "changes nothing" not in raised and "+0.500" in raised
    lowered = task.summary({**base, "map_50": 0.3, "step2_helps": False,
                            "step2_precision_gain": precision_gain(step1, better)})
    assert "lowers AP" in lowered and "changes nothing" not in lowered
    assert not det_task.step2_changes_nothing(None)  # a one-step run has no step 2
