"""Detection evaluation: COCO AP against hand computations, precision / recall / F1 at the
best threshold, limits (perfect, empty), difficult boxes, the callback's keys, the plots."""

import csv
import math

import numpy as np
import pytest

from zoo.evaluation import detection as ev

CLASSES = ("a", "b")

# Three images. Class a: G1 in image 0, G2 and G3 in image 1; class b: G4 in image 0.
G1, G2, G3, G4 = (10, 10, 50, 50), (0, 0, 20, 20), (30, 30, 70, 70), (60, 60, 90, 90)
GROUND_TRUTH = {
    "boxes": np.array([[G1, G4], [G2, G3], [(0, 0, 0, 0)] * 2], np.float32),
    "classes": np.array([[0, 1], [0, 0], [-1, -1]], np.int32),
}
# Predictions (image, box, score, class), scores all distinct:
P1 = (0, G1, 0.9, 0)                   # exact: IoU 1
P2 = (2, (0, 0, 10, 10), 0.8, 0)       # nothing there: false positive
P3 = (1, (38, 30, 78, 70), 0.7, 0)     # G3 moved 8 px: IoU = 32*40 / (3200 - 1280)
P4 = (1, (2, 0, 22, 20), 0.6, 0)       # G2 moved 2 px: IoU = 18*20 / (800 - 360)
P5 = (0, G1, 0.5, 0)                   # duplicate of P1: false positive
Q1 = (0, G4, 0.4, 1)                   # exact
Q2 = (1, G2, 0.95, 1)                  # right place, wrong class: false positive
IOU_P3, IOU_P4 = 1280 / 1920, 360 / 440


def as_per_image(rows, num_images=3):
    out = []
    for i in range(num_images):
        mine = [r for r in rows if r[0] == i]
        out.append((np.array([r[1] for r in mine], np.float32).reshape(-1, 4),
                    np.array([r[2] for r in mine], np.float32),
                    np.array([r[3] for r in mine], np.int32)))
    return out


PREDICTIONS = as_per_image([P1, P2, P3, P4, P5, Q1, Q2])


def coco_ap_reference(true_positive, num_gt):
    """COCO's 101-point interpolated AP of flags sorted by descending score (written here)."""
    flags = np.asarray(true_positive, float)
    tp, fp = np.cumsum(flags), np.cumsum(1 - flags)
    recall, precision = tp / num_gt, tp / (tp + fp)
    for i in range(len(precision) - 1, 0, -1):  # the precision envelope
        precision[i - 1] = max(precision[i - 1], precision[i])
    points = []
    for r in np.linspace(0, 1, 101):
        index = np.searchsorted(recall, r, side="left")
        points.append(precision[index] if index < len(precision) else 0.0)
    return float(np.mean(points))


def class_a_flags(t):
    """True-positive flags of class a in score order P1, P2, P3, P4, P5 at IoU threshold t."""
    return [True, False, IOU_P3 >= t, IOU_P4 >= t, False]


def test_ap50_matches_hand_computation():
    result = ev.evaluate_detections(PREDICTIONS, GROUND_TRUTH, CLASSES)
    # by hand, class a at IoU .5: precision 1, 1/2, 2/3, 3/4, 3/5 at recall 1/3, 1/3, 2/3,
    # 1, 1; envelope 1, 3/4, 3/4, 3/4, 3/5 -> 34 recall points at 1, 67 at 3/4
    ap_a = (34 * 1.0 + 67 * 0.75) / 101
    assert coco_ap_reference(class_a_flags(0.5), 3) == pytest.approx(ap_a)
    # class b: Q2 (false) then Q1 (true): precision 0, 1/2 -> envelope 1/2 everywhere
    ap_b = 0.5
    assert result["per_class"]["a"]["ap_50"] == pytest.approx(ap_a, abs=1e-9)
    assert result["per_class"]["b"]["ap_50"] == pytest.approx(ap_b, abs=1e-9)
    assert result["map_50"] == pytest.approx((ap_a + ap_b) / 2, abs=1e-9)


def test_map_over_iou_thresholds_matches_reference():
    result = ev.evaluate_detections(PREDICTIONS, GROUND_TRUTH, CLASSES)
    thresholds = 0.5 + 0.05 * np.arange(10)
    ap_a = [coco_ap_reference(class_a_flags(t), 3) for t in thresholds]
    assert result["per_class"]["a"]["ap"] == pytest.approx(np.mean(ap_a), abs=1e-9)
    assert result["map"] == pytest.approx((np.mean(ap_a) + 0.5) / 2, abs=1e-9)
    ap_a_75 = coco_ap_reference(class_a_flags(0.75), 3)  # P3 (IoU .667) now a miss
    assert result["map_75"] == pytest.approx((ap_a_75 + 0.5) / 2, abs=1e-9)
    assert "Average Precision" in result["coco_summary"]


def test_precision_recall_f1_hand_case():
    result = ev.evaluate_detections(PREDICTIONS, GROUND_TRUTH, CLASSES)
    # pooled at IoU .5, by score: Q2 F, P1 T, P2 F, P3 T, P4 T, P5 F, Q1 T; 4 true boxes.
    # F1 at each threshold: 0, 1/3, 2/7, 1/2, 2/3, 3/5, 8/11 -> best at t = 0.4
    assert result["score_threshold"] == pytest.approx(0.4)
    assert result["precision"] == pytest.approx(4 / 7)
    assert result["recall"] == pytest.approx(1.0)
    assert result["f1"] == pytest.approx(8 / 11)
    curve = result["pr_curves"]["all"]
    np.testing.assert_allclose(curve["scores"], [.95, .9, .8, .7, .6, .5, .4], atol=1e-6)
    np.testing.assert_allclose(curve["f1"], [0, 1 / 3, 2 / 7, 1 / 2, 2 / 3, 3 / 5, 8 / 11])
    np.testing.assert_allclose(curve["recall"] * 4, [0, 1, 1, 2, 3, 3, 4])
    # class a alone: P1 T, P2 F, P3 T, P4 T, P5 F of 3 -> best F1 6/7 at t = 0.6
    a = result["per_class"]["a"]
    assert (a["score_threshold"], a["precision"], a["recall"]) == pytest.approx((0.6, .75, 1))
    assert a["f1"] == pytest.approx(6 / 7)
    assert (a["num_ground_truth"], a["num_predictions"]) == (3, 5)
    assert (result["num_ground_truth"], result["num_predictions"], result["num_images"]) == \
        (4, 7, 3)
    # at a stricter IoU, P3 (0.667) is a false positive: P1 T, P2 F, P3 F, P4 T, P5 F; the
    # best F1 is 2 * (1/2) * (2/3) / (1/2 + 2/3) = 4/7 at t = 0.6
    strict = ev.evaluate_detections(PREDICTIONS, GROUND_TRUTH, CLASSES, iou_threshold=0.7)
    assert strict["per_class"]["a"]["f1"] == pytest.approx(4 / 7)
    assert strict["per_class"]["a"]["score_threshold"] == pytest.approx(0.6)


def test_tied_scores_are_one_threshold():
    curve = ev.precision_recall_curve([0.5, 0.5, 0.2], [True, False, True], 2)
    np.testing.assert_allclose(curve["scores"], [0.5, 0.2])
    np.testing.assert_allclose(curve["precision"], [0.5, 2 / 3])
    np.testing.assert_allclose(curve["recall"], [0.5, 1.0])


def test_perfect_predictions_and_no_predictions():
    perfect = as_per_image([(0, G1, 1.0, 0), (0, G4, 1.0, 1), (1, G2, 1.0, 0),
                            (1, G3, 1.0, 0)])
    result = ev.evaluate_detections(perfect, GROUND_TRUTH, CLASSES)
    for key in ("map", "map_50", "map_75", "precision", "recall", "f1", "mar_100"):
        assert result[key] == pytest.approx(1.0), key
    empty = [(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))] * 3
    result = ev.evaluate_detections(empty, GROUND_TRUTH, CLASSES)
    for key in ("map", "map_50", "map_75", "precision", "recall", "f1"):
        assert result[key] == 0.0, key
    assert math.isnan(result["score_threshold"])
    assert set(ev.LOG_KEYS) <= set(result)


def test_input_forms_agree():
    base = ev.evaluate_detections(PREDICTIONS, GROUND_TRUTH, CLASSES)
    padded = {"boxes": np.zeros((3, 4, 4)), "scores": np.zeros((3, 4)),
              "classes": np.full((3, 4), -1)}
    for i, (boxes, scores, classes) in enumerate(PREDICTIONS):
        k = len(scores)
        padded["boxes"][i, :k], padded["scores"][i, :k], padded["classes"][i, :k] = \
            boxes, scores, classes
    xywh = [(np.c_[b[:, :2], b[:, 2:] - b[:, :2]], s, c) for b, s, c in PREDICTIONS]
    for predictions, box_format in ((padded, "xyxy"), (xywh, "xywh")):
        other = ev.evaluate_detections(predictions, GROUND_TRUTH, CLASSES, box_format=box_format)
        for key in ev.LOG_KEYS:
            assert other[key] == pytest.approx(base[key]), key


def test_difficult_boxes_are_ignored():
    truth = {"boxes": np.array([[G1, G3]], np.float32), "classes": np.array([[0, 0]]),
             "difficult": np.array([[False, True]])}
    on_both = as_per_image([(0, G1, 0.9, 0), (0, G3, 0.8, 0)], 1)
    result = ev.evaluate_detections(on_both, truth, ("a",))
    assert (result["map"], result["precision"], result["recall"]) == pytest.approx((1, 1, 1))
    assert result["num_ground_truth"] == 1
    only_regular = ev.evaluate_detections(as_per_image([(0, G1, 0.9, 0)], 1), truth, ("a",))
    assert (only_regular["recall"], only_regular["map"]) == pytest.approx((1, 1))
    plain = dict(truth, difficult=np.zeros((1, 2), bool))
    assert ev.evaluate_detections(as_per_image([(0, G1, 0.9, 0)], 1), plain,
                                  ("a",))["recall"] == 0.5


def test_pairwise_iou_matches_keras_box_iou():
    from keras import ops

    from losses.boxes import box_iou

    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 50, size=(2, 7, 2, 2))
    boxes = np.concatenate([corners.min(axis=2), corners.max(axis=2)], axis=-1)
    ours = ev.pairwise_iou(boxes[0], boxes[1])
    theirs = ops.convert_to_numpy(box_iou(boxes[0].astype(np.float32),
                                          boxes[1].astype(np.float32)))
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert ev.pairwise_iou(np.zeros((0, 4)), boxes[1]).shape == (0, 7)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="3 images"):
        ev.evaluate_detections(PREDICTIONS[:2], GROUND_TRUTH, CLASSES)
    bad_class = list(PREDICTIONS)
    bad_class[0] = (bad_class[0][0], bad_class[0][1], np.full(len(bad_class[0][1]), 5))
    with pytest.raises(ValueError, match="classes"):
        ev.evaluate_detections(bad_class, GROUND_TRUTH, CLASSES)
    with pytest.raises(ValueError, match=r"\(k, 4\)"):
        ev.evaluate_detections([(np.zeros((1, 3)), [1.0], [0])] * 3, GROUND_TRUTH, CLASSES)
    with pytest.raises(ValueError, match="class names"):
        ev.evaluate_detections(PREDICTIONS, GROUND_TRUTH, ("a",))
    with pytest.raises(ValueError, match="box_format"):
        ev.evaluate_detections(PREDICTIONS, GROUND_TRUTH, CLASSES, box_format="yxyx")
    empty_truth = {"boxes": np.zeros((1, 1, 4)), "classes": np.full((1, 1), -1)}
    with pytest.raises(ValueError, match="no"):
        ev.evaluate_detections([(np.zeros((0, 4)), [], [])], empty_truth, CLASSES)


def test_callback_writes_stable_keys(tmp_path):
    import keras

    from zoo.datasets.detection import DetectionSet

    images = np.random.default_rng(0).uniform(size=(3, 8, 8, 3)).astype(np.float32)
    data = DetectionSet(images, GROUND_TRUTH["boxes"], GROUND_TRUTH["classes"],
                        np.zeros((3, 2), bool), CLASSES)

    def predict_fn(batch):  # perfect predictions, whatever the model says
        indices = [next(i for i in range(3) if np.array_equal(image, images[i]))
                   for image in batch]
        return [(data.objects(i)[0], np.ones(data.num_objects[i]), data.objects(i)[1])
                for i in indices]

    evaluator = ev.DetectionEvaluator(data, predict_fn, every_n_epochs=2, batch_size=2)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    log = tmp_path / "log.csv"
    history = model.fit(images, np.zeros((3, 1)), epochs=4, verbose=0,
                        callbacks=[evaluator, keras.callbacks.CSVLogger(str(log))])
    keys = ["val_" + k for k in ev.LOG_KEYS]
    assert evaluator.keys == tuple(keys)
    for key in keys:
        assert len(history.history[key]) == 4, key
    # evaluated at epochs 0, 2 and 3 (the last); NaN at epoch 1
    assert [e for e, _ in evaluator.history] == [0, 2, 3]
    assert history.history["val_map"][0] == 1.0 and history.history["val_f1"][2] == 1.0
    assert math.isnan(history.history["val_map"][1])
    assert all(isinstance(history.history[k][0], float) for k in keys)
    with open(log) as handle:
        header = next(csv.reader(handle))
    assert set(keys) <= set(header)
    assert evaluator.result["pr_curves"]["all"]["f1"][-1] == 1.0
    with pytest.raises(ValueError, match="every_n_epochs"):
        ev.DetectionEvaluator(data, predict_fn, every_n_epochs=0)
    with pytest.raises(ValueError, match="class_names"):
        ev.DetectionEvaluator((images, GROUND_TRUTH), predict_fn)


def test_plots_write_png(tmp_path):
    result = ev.evaluate_detections(PREDICTIONS, GROUND_TRUTH, CLASSES)
    images = np.random.default_rng(0).uniform(size=(3, 100, 100, 3))
    for path in (ev.plot_pr_curves(result, tmp_path / "pr.png"),
                 ev.plot_detection_gallery(images, GROUND_TRUTH, PREDICTIONS, CLASSES,
                                           tmp_path / "gallery.png", score_threshold=0.3)):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_more_objects_than_coco_keeps_per_image_need_a_higher_cap():
    # one image, 150 objects, 150 exact detections with falling scores: COCO's default cap
    # of 100 detections per image stops recall at 100/150, so the 101-point interpolated AP
    # is the share of recall points r in {0, 0.01, ..., 1} with r <= 2/3: 67/101
    boxes = np.asarray([[10 * i, 0, 10 * i + 8, 8] for i in range(150)], np.float32)
    truth = {"boxes": boxes[None], "classes": np.zeros((1, 150), np.int32)}
    predictions = [(boxes, np.linspace(1.0, 0.5, 150, dtype=np.float32),
                    np.zeros(150, np.int32))]
    capped = ev.evaluate_detections(predictions, truth, ("a",))
    assert capped["map_50"] == pytest.approx(67 / 101, abs=1e-6)
    assert capped["map"] == pytest.approx(67 / 101, abs=1e-6)
    whole = ev.evaluate_detections(predictions, truth, ("a",), max_detections=1000)
    assert whole["map_50"] == pytest.approx(1.0) and whole["map"] == pytest.approx(1.0)
    assert whole["mar_100"] == pytest.approx(1.0)  # the AR at the raised cap
    with pytest.raises(ValueError, match="max_detections"):
        ev.evaluate_detections(predictions, truth, ("a",), max_detections=5)


def test_precision_at_recall_is_the_best_precision_from_that_recall_on():
    # 4 objects; ranked: hit, miss, hit, hit, miss -> recall .25 .25 .5 .75 .75
    curve = ev.precision_recall_curve([0.9, 0.8, 0.7, 0.6, 0.5],
                                      [True, False, True, True, False], 4)
    np.testing.assert_allclose(curve["recall"], [0.25, 0.25, 0.5, 0.75, 0.75])
    got = ev.precision_at_recall(curve, [0.1, 0.25, 0.3, 0.5, 0.75, 0.8])
    # r <= .25: the first point (1/1); .3 to .75: 3/4, the best from there on (not 2/3 or
    # 3/5); .8: never reached
    np.testing.assert_allclose(got[:5], [1.0, 1.0, 3 / 4, 3 / 4, 3 / 4])
    assert math.isnan(got[5])


def test_precision_gain_compares_two_rankings_at_equal_recall():
    # the same 2 hits and 2 misses among 2 objects; step 2 moves the misses below the hits
    step1 = ev.precision_recall_curve([0.9, 0.8, 0.7, 0.6], [False, True, False, True], 2)
    step2 = ev.precision_recall_curve([0.9, 0.8, 0.7, 0.6], [True, True, False, False], 2)
    gain = ev.precision_gain(step2, step1, step=0.25)
    # levels .25 .5 .75 1: step 2 precision 1 1 1 1; step 1: 1/2 1/2 1/2 1/2
    assert gain["recall_levels"] == 4 and gain["max_common_recall"] == 1.0
    assert gain["mean"] == pytest.approx(0.5) and gain["min"] == pytest.approx(0.5)
    assert gain["share_not_worse"] == 1.0 and gain["max"] == pytest.approx(0.5)
    # a re-scoring that keeps the ranking changes nothing at any level
    same = ev.precision_gain(step1, step1, step=0.25)
    assert same["min"] == same["max"] == same["mean"] == 0.0
    reverse = ev.precision_gain(step1, step2, step=0.25)
    assert reverse["mean"] == pytest.approx(-0.5) and reverse["share_not_worse"] == 0.0
    # a step 2 that loses every object shares no recall level with step 1
    none = ev.precision_recall_curve([0.9], [False], 2)
    assert ev.precision_gain(none, step1)["recall_levels"] == 0
