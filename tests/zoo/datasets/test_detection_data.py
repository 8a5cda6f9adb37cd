"""Detection data: VOC and COCO loaders on fixtures written here, the synthetic scene
generator (determinism, tight boxes), and augmentations that move boxes with the pixels."""

import copy
import json

import numpy as np
import pytest
from PIL import Image, ImageFile

from zoo.datasets import TruncatedImageWarning
from zoo.datasets import detection as det

# ------------------------------------------------------------------ helpers


def pixel_box(mask):
    """Tight xyxy box (pixel edges) of the True pixels, computed here independently."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def voc_xml(filename, width, height, objects):
    parts = [f"<annotation><folder>VOC</folder><filename>{filename}</filename>",
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for name, (x0, y0, x1, y1), difficult in objects:
        parts.append(f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0"
                     f"</truncated><difficult>{difficult}</difficult><bndbox><xmin>{x0}</xmin>"
                     f"<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>"


def write_jpeg(path, width, height, color):
    Image.new("RGB", (width, height), color).save(path, quality=95)


@pytest.fixture
def voc_root(tmp_path):
    """Three images: a (40x20, cat + difficult dog), b (20x40, dog), c (30x30, nothing)."""
    root = tmp_path / "VOC"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    write_jpeg(root / "JPEGImages" / "a.jpg", 40, 20, (200, 30, 30))
    write_jpeg(root / "JPEGImages" / "b.jpg", 20, 40, (30, 200, 30))
    write_jpeg(root / "JPEGImages" / "c.jpg", 30, 30, (30, 30, 200))
    (root / "Annotations" / "a.xml").write_text(voc_xml(
        "a.jpg", 40, 20, [("cat", (5, 3, 14, 12), 0), ("dog", (20, 1, 40, 20), 1)]))
    # a wrong <filename>: the loader falls back to the XML's stem
    (root / "Annotations" / "b.xml").write_text(voc_xml(
        "elsewhere.jpg", 20, 40, [("dog", (1, 1, 10, 10), 0)]))
    (root / "Annotations" / "c.xml").write_text(voc_xml("c.jpg", 30, 30, []))
    (root / "ImageSets" / "Main" / "train.txt").write_text("b\na\n")
    return root


def voc_expected(box, scale_x, scale_y, dx, dy):
    """VOC 1-based inclusive pixels -> edges -> resized pixels."""
    x0, y0, x1, y1 = box
    return np.array([(x0 - 1) * scale_x + dx, (y0 - 1) * scale_y + dy,
                     x1 * scale_x + dx, y1 * scale_y + dy])


# ------------------------------------------------------------------ Pascal VOC


def test_voc_letterbox(voc_root):
    data = det.load_voc(voc_root, image_size=(32, 32))
    assert data.class_names == ("cat", "dog")
    assert data.names == ("a.jpg", "b.jpg", "c.jpg")
    assert data.images.shape == (3, 32, 32, 3) and data.images.dtype == np.float32
    assert data.boxes.shape == (3, 2, 4) and data.classes.dtype == np.int32
    # a: 40x20 -> scale 0.8 -> 32x16, centred vertically (dy = 8)
    np.testing.assert_allclose(data.boxes[0, 0], voc_expected((5, 3, 14, 12), .8, .8, 0, 8),
                               atol=1e-4)
    np.testing.assert_allclose(data.boxes[0, 1], voc_expected((20, 1, 40, 20), .8, .8, 0, 8),
                               atol=1e-4)
    np.testing.assert_array_equal(data.classes, [[0, 1], [1, -1], [-1, -1]])
    np.testing.assert_array_equal(data.difficult, [[False, True], [False, False],
                                                   [False, False]])
    # b: 20x40 -> 16x32, centred horizontally (dx = 8)
    np.testing.assert_allclose(data.boxes[1, 0], voc_expected((1, 1, 10, 10), .8, .8, 8, 0),
                               atol=1e-4)
    np.testing.assert_array_equal(data.boxes[1, 1], 0)
    np.testing.assert_array_equal(data.num_objects, [2, 1, 0])
    # pixels: grey letterbox bands, the JPEG's colour inside
    np.testing.assert_allclose(data.images[0, :8], 0.5)
    np.testing.assert_allclose(data.images[0, 24:], 0.5)
    np.testing.assert_allclose(data.images[0, 10:22, 2:30], np.broadcast_to(
        np.array([200, 30, 30]) / 255, (12, 28, 3)), atol=0.06)
    np.testing.assert_allclose(data.images[1, :, :8], 0.5)
    # the mapping back to original pixels inverts the resize
    np.testing.assert_allclose(data.to_original(0, data.boxes[0, :1]), [[4, 2, 14, 12]],
                               atol=1e-4)
    np.testing.assert_array_equal(data.original_sizes, [[20, 40], [40, 20], [30, 30]])


def test_voc_plain_resize_and_options(voc_root):
    data = det.load_voc(voc_root, image_size=(16, 32), letterbox=False)
    np.testing.assert_allclose(data.boxes[0, 0], voc_expected((5, 3, 14, 12), 32 / 40,
                                                              16 / 20, 0, 0), atol=1e-4)
    np.testing.assert_allclose(data.boxes[1, 0], voc_expected((1, 1, 10, 10), 32 / 20,
                                                              16 / 40, 0, 0), atol=1e-4)
    # given class order; classes not listed are dropped
    swapped = det.load_voc(voc_root, class_names=["dog", "cat"], image_size=32)
    np.testing.assert_array_equal(swapped.classes, [[1, 0], [0, -1], [-1, -1]])
    dogs = det.load_voc(voc_root, class_names=["dog"], image_size=32, max_objects=3)
    np.testing.assert_array_equal(dogs.classes, [[0, -1, -1], [0, -1, -1], [-1, -1, -1]])
    assert dogs.difficult[0, 0]
    easy = det.load_voc(voc_root, image_size=32, keep_difficult=False)
    np.testing.assert_array_equal(easy.classes, [[0], [1], [-1]])
    split = det.load_voc(voc_root, image_size=32, split="train")
    assert split.names == ("b.jpg", "a.jpg")
    with pytest.raises(ValueError, match="bird"):
        det.load_voc(voc_root, class_names=["bird"])
    with pytest.raises(ValueError, match="max_objects"):
        det.load_voc(voc_root, max_objects=1)


def test_voc_kangaroo_layout_and_truncated_jpeg(tmp_path):
    """`annots/` + `images/` folders, and a JPEG cut short by 20 bytes."""
    (tmp_path / "annots").mkdir()
    (tmp_path / "images").mkdir()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "images" / "00090.jpg")
    raw = (tmp_path / "images" / "00090.jpg").read_bytes()
    (tmp_path / "images" / "00090.jpg").write_bytes(raw[:-20])
    (tmp_path / "annots" / "00090.xml").write_text(voc_xml(
        "00090.jpg", 64, 48, [("kangaroo", (1, 1, 64, 48), 0), ("kangaroo", (3, 4, 9, 10), 0)]))
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    with pytest.warns(TruncatedImageWarning, match="00090.jpg"):
        data = det.load_voc(tmp_path, image_size=(48, 64))
    assert ImageFile.LOAD_TRUNCATED_IMAGES == before  # the loader restores PIL's setting
    assert data.class_names == ("kangaroo",) and len(data) == 1
    np.testing.assert_allclose(data.boxes[0], [[0, 0, 64, 48], [2, 3, 9, 10]], atol=1e-4)


def test_voc_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        det.load_voc(tmp_path / "absent")
    (tmp_path / "Annotations").mkdir()
    with pytest.raises(FileNotFoundError, match="image"):
        det.load_voc(tmp_path)


# ------------------------------------------------------------------ COCO JSON


def test_coco_json(tmp_path):
    write_jpeg(tmp_path / "p.jpg", 50, 25, (90, 90, 90))
    Image.new("RGB", (20, 20), (10, 10, 10)).save(tmp_path / "q.png")
    write_jpeg(tmp_path / "r.jpg", 10, 10, (0, 0, 0))
    coco = {
        "images": [{"id": 10, "file_name": "p.jpg", "width": 50, "height": 25},
                   {"id": 11, "file_name": "q.png", "width": 20, "height": 20},
                   {"id": 12, "file_name": "r.jpg", "width": 10, "height": 10}],
        "categories": [{"id": 7, "name": "zebra"}, {"id": 3, "name": "ant"}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [5, 5, 10, 8], "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [0, 0, 20, 10], "iscrowd": 1},
            {"id": 3, "image_id": 10, "category_id": 3, "bbox": [1, 1, 0, 5], "iscrowd": 0},
            {"id": 4, "image_id": 11, "category_id": 3, "bbox": [2.5, 4, 6, 6], "iscrowd": 0},
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco))
    data = det.load_coco(path, image_size=(20, 40))
    assert data.class_names == ("ant", "zebra")  # ascending category id: 3, 7
    # p: 50x25 -> scale min(40/50, 20/25) = 0.8 -> 40x20, no offset
    np.testing.assert_allclose(data.boxes[0, :2], [[4, 4, 12, 10.4], [0, 0, 16, 8]], atol=1e-4)
    np.testing.assert_array_equal(data.classes, [[1, 0], [0, -1], [-1, -1]])
    np.testing.assert_array_equal(data.difficult[0], [False, True])  # iscrowd
    # q: 20x20 -> scale 1 -> 20x20 centred at dx = 10
    np.testing.assert_allclose(data.boxes[1, 0], [12.5, 4, 18.5, 10], atol=1e-4)
    zebras = det.load_coco(path, class_names=["zebra"], image_size=(20, 40), keep_crowd=False)
    np.testing.assert_array_equal(zebras.classes, [[0], [-1], [-1]])
    with pytest.raises(ValueError, match="lion"):
        det.load_coco(path, class_names=["lion"])
    coco["annotations"].append({"id": 5, "image_id": 99, "category_id": 7, "bbox": [0, 0, 1, 1]})
    path.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match="image_id"):
        det.load_coco(path)


# ------------------------------------------------------------------ synthetic scenes


def test_synthetic_scenes_are_deterministic():
    a = det.SyntheticScenes(num_images=12, batch_size=4, seed=5)
    b = det.SyntheticScenes(num_images=12, batch_size=3, seed=5)
    x_a, y_a = a[1]
    x_b = np.concatenate([b[1][0][1:], b[2][0][:2]])  # samples 4..7 from batches of 3
    y_b = np.concatenate([b[1][1]["boxes"][1:], b[2][1]["boxes"][:2]])
    np.testing.assert_array_equal(x_a, x_b)
    np.testing.assert_array_equal(y_a["boxes"], y_b)
    np.testing.assert_array_equal(x_a, det.SyntheticScenes(num_images=12, batch_size=4,
                                                           seed=5)[1][0])
    assert not np.array_equal(x_a, det.SyntheticScenes(num_images=12, batch_size=4,
                                                       seed=6)[1][0])
    assert x_a.shape == (4, 128, 128, 3) and x_a.dtype == np.float32
    assert 0.0 <= x_a.min() and x_a.max() <= 1.0
    assert y_a["boxes"].shape == (4, 6, 4) and y_a["classes"].shape == (4, 6)
    # 8-bit quantised
    np.testing.assert_allclose(x_a * 255, np.round(x_a * 255), atol=1e-3)
    with pytest.raises(IndexError):
        a[3]


def test_synthetic_boxes_tightly_bound_each_object():
    scenes = det.SyntheticScenes(num_images=24, image_size=(96, 112), min_objects=2,
                                 max_objects=5, min_size=8, max_size=40, seed=11)
    counts = []
    for i in range(scenes.num_images):
        image, objects, boxes, classes = scenes.scene(i)
        assert image.shape == (96, 112, 3) and image.dtype == np.uint8
        assert 2 <= len(objects) <= 5 and len(boxes) == len(classes) == len(objects)
        counts.append(len(objects))
        later = np.zeros((96, 112), bool)
        for j in reversed(range(len(objects))):
            obj = objects[j]
            assert classes[j] == det.SHAPE_CLASSES.index(obj.shape)
            alone = det.render_scene([obj], (96, 112))  # black background, one object
            mask = np.any(alone > 0, axis=-1)
            np.testing.assert_array_equal(boxes[j], pixel_box(mask))
            w, h = boxes[j, 2] - boxes[j, 0], boxes[j, 3] - boxes[j, 1]
            assert 0 <= boxes[j, 0] and boxes[j, 2] <= 112 and boxes[j, 3] <= 96
            assert max(w, h) <= 40 + 1 and min(w, h) >= 3
            # the object is still visible in the scene, in its colour (noise aside)
            visible = mask & ~later
            assert visible.sum() >= 0.3 * mask.sum()
            colour = np.asarray(obj.color) * 255
            assert np.median(np.abs(image[visible] - colour)) <= 12
            later |= mask
    assert len(set(counts)) > 1  # a variable number of objects


def test_synthetic_scene_set_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path))
    first = det.synthetic_scene_set(num_images=10, seed=2, image_size=64, max_size=32)
    assert list((tmp_path / "synth_scenes").glob("*.npz"))
    second = det.synthetic_scene_set(num_images=10, seed=2, image_size=64, max_size=32)
    fresh = det.SyntheticScenes(10, image_size=64, max_size=32, seed=2).to_set()
    for data in (second, fresh):
        np.testing.assert_array_equal(first.images, data.images)
        np.testing.assert_array_equal(first.boxes, data.boxes)
        np.testing.assert_array_equal(first.classes, data.classes)
    assert first.class_names == det.SHAPE_CLASSES
    x, targets = first
    assert x.shape == (10, 64, 64, 3) and set(targets) == {"boxes", "classes"}


def test_synthetic_scenes_arguments_and_augmentation():
    with pytest.raises(ValueError, match="classes"):
        det.SyntheticScenes(classes=("hexagon",))
    with pytest.raises(ValueError, match="max_size"):
        det.SyntheticScenes(image_size=32, max_size=48)
    with pytest.raises(ValueError, match="min_objects"):
        det.SyntheticScenes(min_objects=3, max_objects=2)
    scenes = det.SyntheticScenes(8, batch_size=8, image_size=64, max_size=32, seed=3,
                                 classes=("circle", "cross"), augment=det.BoxAugmenter(),
                                 target_fn=lambda boxes, classes: (boxes, classes))
    x, (boxes, classes) = scenes[0]
    assert set(np.unique(classes)) <= {-1, 0, 1}
    np.testing.assert_array_equal(x, scenes[0][0])  # same epoch, same augmentation
    scenes.on_epoch_end()
    assert not np.array_equal(x, scenes[0][0])


# ------------------------------------------------------------------ augmentation


def hand_image():
    image = np.zeros((10, 16, 3), np.float32)
    image[2:6, 3:8] = (1.0, 0.5, 0.25)  # rows 2..5, columns 3..7 -> box (3, 2, 8, 6)
    boxes = np.array([[3, 2, 8, 6], [0, 0, 0, 0]], np.float32)
    return image, boxes, np.array([1, -1], np.int32)


def test_flip_moves_box_with_pixels():
    image, boxes, classes = hand_image()
    flipped, new_boxes, new_classes = det.flip_horizontal(image, boxes, classes)
    np.testing.assert_array_equal(new_boxes[0], pixel_box(flipped[..., 0] > 0))
    np.testing.assert_array_equal(new_boxes[0], [16 - 8, 2, 16 - 3, 6])
    np.testing.assert_array_equal(new_boxes[1], 0)
    np.testing.assert_array_equal(new_classes, classes)
    np.testing.assert_array_equal(flipped, image[:, ::-1])


def test_flip_matches_keras_random_flip():
    import keras

    image, boxes, classes = hand_image()
    batch = np.repeat(image[None], 8, axis=0)
    layer = keras.layers.RandomFlip("horizontal", bounding_box_format="xyxy", seed=3)
    out = layer({"images": batch, "bounding_boxes": {"boxes": np.repeat(boxes[None], 8, 0),
                                                     "labels": np.repeat(classes[None], 8, 0)}})
    images = keras.ops.convert_to_numpy(out["images"])
    keras_boxes = keras.ops.convert_to_numpy(out["bounding_boxes"]["boxes"])
    ours_image, ours_boxes, _ = det.flip_horizontal(image, boxes, classes)
    flipped = [np.array_equal(im, ours_image) for im in images]
    assert any(flipped) and not all(flipped)
    for im, kb, was_flipped in zip(images, keras_boxes, flipped):
        np.testing.assert_allclose(kb[0], ours_boxes[0] if was_flipped else boxes[0], atol=1e-5)


def rectangle_image(size, rect):
    image = np.zeros((size, size, 3), np.float32)
    x0, y0, x1, y1 = rect
    image[y0:y1, x0:x1] = 1.0
    return image


@pytest.mark.parametrize("region, expected", [
    ((8, 16, 40, 48), (4, 8, 44, 40)),           # zoom in x2
    ((-32, -32, 96, 96), (21, 26, 31, 34)),      # zoom out x0.5
    ((0, 0, 64, 64), (10, 20, 30, 36)),          # identity
])
def test_crop_and_resize_moves_box_with_pixels(region, expected):
    image = rectangle_image(64, (10, 20, 30, 36))
    boxes, classes = np.array([[10, 20, 30, 36]], np.float32), np.array([2], np.int32)
    out, new_boxes, new_classes = det.crop_region(image, boxes, classes, region, fill=0.0)
    assert out.shape == (64, 64, 3)
    np.testing.assert_allclose(new_boxes[0], expected, atol=1e-4)
    np.testing.assert_array_equal(new_boxes[0], pixel_box(out[..., 0] > 0.5))
    assert new_classes[0] == 2


def test_zoom_out_fills_the_border():
    image = np.full((8, 8, 3), 0.2, np.float32)
    out, _, _ = det.crop_region(image, np.zeros((1, 4)), np.array([-1]), (-8, -8, 16, 16),
                                    fill=0.7)
    np.testing.assert_allclose(out[0, 0], 0.7, atol=1e-6)
    np.testing.assert_allclose(out[4, 4], 0.2, atol=1e-6)


def test_clip_boxes_clips_and_drops():
    boxes = np.array([[-10, 5, 20, 15],     # half outside: clipped, kept
                      [40, 40, 60, 60],     # wholly outside: dropped
                      [3, 3, 4.5, 20],      # 1.5 px wide: dropped (min_size 2)
                      [25, -40, 30, 10],    # 10 of 50 rows inside: 20% < 30%, dropped
                      [0, 0, 0, 0],         # padding
                      [1, 1, 9, 9]], np.float32)
    classes = np.array([0, 1, 2, 3, -1, 4], np.int32)
    new_boxes, new_classes = det.clip_boxes(boxes, classes, height=32, width=32)
    np.testing.assert_array_equal(new_classes, [0, 4, -1, -1, -1, -1])
    np.testing.assert_array_equal(new_boxes[:2], [[0, 5, 20, 15], [1, 1, 9, 9]])
    np.testing.assert_array_equal(new_boxes[2:], 0)
    kept = det.clip_boxes(boxes, classes, 32, 32, min_size=1, min_visible=0.2)[1]
    np.testing.assert_array_equal(kept, [0, 2, 3, 4, -1, -1])


def test_random_augmentation_keeps_boxes_on_their_pixels():
    augment = det.BoxAugmenter(flip=0.5, zoom=(0.6, 1.6), crop=0.7, min_visible=0.3, fill=0.0)
    rng = np.random.default_rng(0)
    checked = dropped = 0
    for _ in range(40):
        x0, y0 = rng.integers(0, 40, size=2)
        w, h = rng.integers(6, 24, size=2)
        rect = (int(x0), int(y0), int(x0 + w), int(y0 + h))
        image = rectangle_image(64, rect)
        replay = copy.deepcopy(rng)
        out, boxes, classes = augment(image, np.array([rect], np.float32),
                                      np.array([0], np.int32), rng)
        visible = out[..., 0] > 0.5
        if classes[0] >= 0:
            checked += 1
            np.testing.assert_allclose(boxes[0], pixel_box(visible), atol=1.0)
            continue
        # dropped: where the box would land (the documented draw order: flip, then region)
        dropped += 1
        a, b, c, d = rect
        if replay.uniform() < augment.flip:
            a, c = 64 - c, 64 - a
        r0, r1, r2, r3 = augment.region(replay, 64, 64)
        sx, sy = 64 / (r2 - r0), 64 / (r3 - r1)
        mapped_area = (c - a) * sx * (d - b) * sy
        rows, columns = np.any(visible, axis=1).sum(), np.any(visible, axis=0).sum()
        assert visible.sum() < 0.3 * mapped_area + 2 * (rows + columns) or min(rows, columns) < 3
    assert checked >= 25 and dropped >= 1


def test_colour_jitter_scales_saturation_contrast_and_brightness_within_range():
    rng = np.random.default_rng(3)
    image = rng.uniform(0.3, 0.7, size=(8, 8, 3)).astype(np.float32)
    boxes, classes = np.array([[1, 1, 5, 6]], np.float32), np.array([0], np.int32)
    still = dict(flip=0.0, zoom=(1, 1), crop=0.0)
    for name, strength in (("saturation", 0.5), ("contrast", 0.3), ("brightness", 0.3)):
        augment = det.BoxAugmenter(**still, **{name: strength})
        factors = []
        for seed in range(30):
            out, new_boxes, new_classes = augment(image, boxes, classes,
                                                  np.random.default_rng(seed))
            np.testing.assert_allclose(new_boxes, boxes, atol=1e-4)
            np.testing.assert_array_equal(new_classes, classes)
            if name == "saturation":  # grey level kept, deviations from it scaled by f
                grey = image.mean(-1, keepdims=True)
                np.testing.assert_allclose(out.mean(-1, keepdims=True), grey, atol=1e-5)
                ratio = (out - grey) / (image - grey)
            elif name == "contrast":  # mean kept, deviations from it scaled by f
                np.testing.assert_allclose(out.mean(), image.mean(), atol=1e-5)
                ratio = (out - image.mean()) / (image - image.mean())
            else:
                ratio = out / image
            np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-3)
            factors.append(ratio.flat[0])
        assert 1 - strength <= min(factors) < 1 < max(factors) <= 1 + strength, name
    bright = det.BoxAugmenter(**still, brightness=1.0)
    outs = [bright(np.full((4, 4, 3), 0.9, np.float32), boxes, classes,
                   np.random.default_rng(seed))[0] for seed in range(20)]
    assert max(o.max() for o in outs) == 1.0 and min(o.min() for o in outs) >= 0.0
    plain = det.BoxAugmenter(**still)  # no jitter: the image back unchanged
    np.testing.assert_array_equal(plain(image, boxes, classes, rng)[0], image)
    assert "brightness=0.3" in repr(det.BoxAugmenter(brightness=0.3))
    with pytest.raises(ValueError, match="saturation"):
        det.BoxAugmenter(saturation=1.5)


def test_mosaic_tiles_four_images_moves_their_boxes_and_keeps_the_largest():
    h, w, m = 8, 10, 3
    images = np.stack([np.full((h, w, 1), v, np.float32) for v in (0.1, 0.2, 0.3, 0.4)])
    boxes, classes = np.zeros((4, m, 4), np.float32), np.full((4, m), -1, np.int32)
    boxes[0, :2], classes[0, :2] = [[6, 4, 10, 8], [0, 0, 6, 5]], [0, 5]  # 2nd: 1 px left
    boxes[1, :2], classes[1, :2] = [[0, 4, 3, 8], [2, 0, 9, 3]], [1, 6]   # 2nd: above
    boxes[2, 0], classes[2, 0] = [8, 0, 10, 2], 2
    boxes[3, :2], classes[3, :2] = [[0, 0, 4, 4], [6, 5, 10, 8]], [3, 7]  # 2nd: outside
    # centre (w, h) (and anything rounding to it): the window [5, 15) x [4, 12) of the
    # (16, 20) canvas; image q's boxes move by its corner (10·(q%2), 8·(q//2)) − (5, 4)
    for centre in ((w, h), (w + 0.4, h - 0.4)):
        image, out_boxes, out_classes = det.mosaic(images, boxes, classes, centre)
        expected = np.empty((h, w, 1), np.float32)
        expected[:4, :5], expected[:4, 5:], expected[4:, :5], expected[4:, 5:] = \
            0.1, 0.2, 0.3, 0.4
        np.testing.assert_array_equal(image, expected)
        # four boxes survive (areas 16, 12, 4, 16), three fit: the smallest goes
        np.testing.assert_array_equal(out_classes, [0, 1, 3])
        np.testing.assert_allclose(out_boxes, [[1, 0, 5, 4], [5, 0, 8, 4], [5, 4, 9, 8]])
    classes[1, 0] = -1  # three survive, all kept in mosaic order, the rest padding
    _, out_boxes, out_classes = det.mosaic(images, boxes, classes, (w, h))
    np.testing.assert_array_equal(out_classes, [0, 2, 3])
    np.testing.assert_allclose(out_boxes, [[1, 0, 5, 4], [3, 4, 5, 6], [5, 4, 9, 8]])
    # the window's corner: (cx − w/2, cy − h/2), here (0, 8): images 2's top half
    image, _, _ = det.mosaic(images, boxes, classes, (w / 2, 3 * h / 2))
    np.testing.assert_array_equal(image, np.full((h, w, 1), 0.3, np.float32))
    with pytest.raises(ValueError, match="4 images"):
        det.mosaic(images[:3], boxes[:3], classes[:3], (w, h))


def test_detection_batches_mosaic_shows_each_image_with_others(voc_root):
    data = det.load_voc(voc_root, image_size=32)
    plain = det.DetectionBatches(data, batch_size=4, shuffle=True, seed=2)
    off = det.DetectionBatches(data, batch_size=4, shuffle=True, seed=2, mosaic=0.0)
    np.testing.assert_array_equal(plain[0][0], off[0][0])  # off draws nothing
    batches = det.DetectionBatches(data, batch_size=4, shuffle=True, seed=2, mosaic=1.0)
    x, targets = batches[0]
    for k, i in enumerate(batches.order[:4]):
        # its own image fills the window's top-left part, up to the canvas midpoint:
        # x[:32 - y0, :32 - x0] == image[y0:, x0:] for some corner (x0, y0) of the window
        own = data.images[i]
        found = [(x0, y0) for x0 in range(32) for y0 in range(32)
                 if np.array_equal(x[k][:32 - y0, :32 - x0], own[y0:, x0:])]
        assert found, f"image {i} not in its mosaic"
        valid = targets["classes"][k] >= 0
        box = targets["boxes"][k][valid]
        assert np.all(box[:, :2] >= 0) and np.all(box[:, 2:] <= 32)
        assert np.all(box[:, 2:] - box[:, :2] >= 2)
    with pytest.raises(ValueError, match="mosaic"):
        det.DetectionBatches(data, mosaic=1.5)


def test_detection_batches(voc_root):
    data = det.load_voc(voc_root, image_size=32)
    batches = det.DetectionBatches(data, batch_size=2, shuffle=True, seed=1,
                                   augment=det.BoxAugmenter(flip=1.0, zoom=(1, 1), crop=0))
    assert len(batches) == 2
    x, targets = batches[0]
    chosen = batches.order[:2]
    np.testing.assert_allclose(x, data.images[chosen][:, :, ::-1], atol=1e-5)
    for k, i in enumerate(chosen):
        valid = data.classes[i] >= 0
        expected = data.boxes[i][valid][:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [32, 0, 32, 0]
        np.testing.assert_allclose(targets["boxes"][k][valid], expected, atol=1e-4)
    order = batches.order.copy()
    batches.on_epoch_end()
    assert batches.epoch == 1 and sorted(batches.order) == sorted(order)
    with pytest.raises(ValueError):
        det.DetectionBatches((data.images, data.boxes))


def test_pad_objects_and_subset():
    boxes, classes, difficult = det.pad_objects([([[0, 0, 1, 1]], [3]), (np.zeros((0, 4)), [])])
    assert boxes.shape == (2, 1, 4)
    np.testing.assert_array_equal(classes, [[3], [-1]])
    with pytest.raises(ValueError, match="max_objects"):
        det.pad_objects([([[0, 0, 1, 1]] * 3, [0, 0, 0])], max_objects=2)
    with pytest.raises(ValueError):
        det.pad_objects([([[0, 0, 1, 1]], [0, 1])])
