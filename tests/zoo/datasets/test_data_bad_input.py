"""Bad input to the data layer: one `DataError` line naming the file, or a warning naming a
truncated image that still loads. Fixtures are written here, in tmp_path."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile

from zoo import datasets
from zoo.datasets import DataError, DataNotFound, DatasetUnavailable, TruncatedImageWarning
from zoo.datasets import __main__ as cli
from zoo.datasets import detection as det
from zoo.datasets import formats, sources
from zoo.datasets import text as T


def assert_names(error, *paths):
    """`error` is a DataError whose message is one line naming every path."""
    assert isinstance(error, DataError) and isinstance(error, ValueError)
    message = str(error)
    assert "\n" not in message, message
    assert error.summary == message
    for path in paths:
        assert str(path) in message, (str(path), message)


def write_jpeg(path, width=24, height=16, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return pixels


def write_truncated_jpeg(path, width=48, height=32):
    write_jpeg(path, width, height)
    path.write_bytes(path.read_bytes()[:-20])


def voc_xml(filename="a.jpg", box="<xmin>2</xmin><ymin>3</ymin><xmax>10</xmax><ymax>9</ymax>",
            size="<size><width>24</width><height>16</height><depth>3</depth></size>"):
    return (f"<annotation><filename>{filename}</filename>{size}<object><name>cat</name>"
            f"<difficult>0</difficult><bndbox>{box}</bndbox></object></annotation>")


@pytest.fixture
def voc(tmp_path):
    """A valid VOC folder: a.jpg (24x16, one cat) and b.jpg (no objects)."""
    root = tmp_path / "VOC"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    write_jpeg(root / "JPEGImages" / "a.jpg")
    write_jpeg(root / "JPEGImages" / "b.jpg", seed=1)
    (root / "Annotations" / "a.xml").write_text(voc_xml())
    (root / "Annotations" / "b.xml").write_text(
        "<annotation><filename>b.jpg</filename></annotation>")
    return root


@pytest.fixture
def no_truncated_flag():
    """PIL's global flag is off before the test and must be off after it."""
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    yield
    after = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = before
    assert after is False, "a loader left ImageFile.LOAD_TRUNCATED_IMAGES switched on"


# ------------------------------------------------------------------ the error types

def test_error_types():
    assert issubclass(DataNotFound, DataError) and issubclass(DataNotFound, FileNotFoundError)
    assert issubclass(DatasetUnavailable, DataError) and issubclass(DatasetUnavailable,
                                                                    RuntimeError)
    assert issubclass(datasets.ChecksumError, DataError)
    assert issubclass(TruncatedImageWarning, UserWarning)
    assert DataError.exit_code == 2
    error = DataError("no labels in it\nat all", path="/data/x")
    assert str(error) == "/data/x: no labels in it at all" and error.path == "/data/x"
    assert str(DataNotFound("/data/y: no such file")) == "/data/y: no such file"


# ------------------------------------------------------------------ Pascal VOC

def test_voc_valid_fixture_loads(voc):
    data = det.load_voc(voc, image_size=16)
    assert data.names == ("a.jpg", "b.jpg") and data.class_names == ("cat",)
    np.testing.assert_array_equal(data.num_objects, [1, 0])


def test_voc_missing_folder(tmp_path):
    missing = tmp_path / "nonexistent"
    with pytest.raises(DataNotFound) as info:
        det.load_voc(missing)
    assert_names(info.value, missing)
    assert "does not exist" in str(info.value)


@pytest.mark.parametrize("content, problem", [
    ("<annotation><filename>a.jpg</filename><object>", "not well-formed XML"),
    ("", "not well-formed XML"),
    (voc_xml(box=""), "lacks <xmin>"),
    (voc_xml(box="<xmin>2</xmin><ymin>3</ymin><ymax>9</ymax>"), "lacks <xmax>"),
    (voc_xml(box="<xmin>two</xmin><ymin>3</ymin><xmax>10</xmax><ymax>9</ymax>"),
     "<xmin>two</xmin>, not a number"),
    (voc_xml(box="<xmin>12</xmin><ymin>3</ymin><xmax>10</xmax><ymax>9</ymax>"),
     "xmax < xmin"),
    ("<annotation><object><name>cat</name></object></annotation>", "lacks <bndbox>"),
    ("<annotation><object><bndbox><xmin>1</xmin></bndbox></object></annotation>",
     "lacks <name>"),
    (voc_xml(size="<size><height>16</height></size>"), "<size> lacks <width>"),
], ids=["cut-short", "empty", "empty-bndbox", "no-xmax", "non-numeric", "inverted",
        "no-bndbox", "no-name", "size-without-width"])
def test_voc_corrupt_xml_names_the_file(voc, content, problem):
    bad = voc / "Annotations" / "a.xml"
    bad.write_text(content)
    with pytest.raises(DataError) as info:
        det.load_voc(voc, image_size=16)
    assert_names(info.value, bad)
    assert problem in str(info.value)


def test_voc_xml_without_size_still_loads(voc):
    (voc / "Annotations" / "a.xml").write_text(voc_xml(size=""))
    data = det.load_voc(voc, image_size=16)
    np.testing.assert_array_equal(data.original_sizes[0], [16, 24])  # from the image


def test_voc_missing_split_file_and_image(voc):
    with pytest.raises(DataNotFound) as info:
        det.load_voc(voc, split="trainval")
    assert_names(info.value, voc / "ImageSets" / "Main" / "trainval.txt")
    (voc / "JPEGImages" / "b.jpg").unlink()
    with pytest.raises(DataNotFound) as info:
        det.load_voc(voc)
    assert_names(info.value, voc / "Annotations" / "b.xml", voc / "JPEGImages")


def test_voc_zero_byte_jpeg(voc):
    empty = voc / "JPEGImages" / "a.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DataError) as info:
        det.load_voc(voc, image_size=16)
    assert_names(info.value, empty)
    assert "0 bytes" in str(info.value)


def test_voc_truncated_jpeg_loads_with_a_warning(voc, no_truncated_flag):
    cut = voc / "JPEGImages" / "a.jpg"
    write_truncated_jpeg(cut, 24, 16)
    with pytest.warns(TruncatedImageWarning, match="truncated") as record:
        data = det.load_voc(voc, image_size=16)
    assert len(data) == 2
    assert [str(cut) in str(w.message) for w in record] == [True]


# ------------------------------------------------------------------ COCO

@pytest.fixture
def coco(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    write_jpeg(images / "p.jpg")
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "p.jpg", "width": 24, "height": 16}],
        "categories": [{"id": 3, "name": "ant"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 5, 6]}]}))
    return path, images


def test_coco_valid_fixture_loads(coco):
    path, images = coco
    assert len(det.load_coco(path, images, image_size=16)) == 1


def test_coco_missing_file_and_folder(coco, tmp_path):
    path, images = coco
    with pytest.raises(DataNotFound) as info:
        det.load_coco(tmp_path / "absent.json", images)
    assert_names(info.value, tmp_path / "absent.json")
    with pytest.raises(DataNotFound) as info:
        det.load_coco(path, tmp_path / "no-images")
    assert_names(info.value, tmp_path / "no-images")
    (images / "p.jpg").unlink()
    with pytest.raises(DataNotFound) as info:
        det.load_coco(path, images)
    assert_names(info.value, path, "p.jpg")


@pytest.mark.parametrize("content, problem", [
    ('{"images": [', "not valid JSON"),
    ("", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    ("[1, 2]", "not COCO detection JSON"),
    ('{"images": []}', "lacks ['annotations', 'categories']"),
    ('{"images": [{"id": 1}], "annotations": [], "categories": []}', "lacks one of"),
    ('{"images": [{"id": 1, "file_name": "p.jpg"}], "categories": [{"id": 3, "name": "a"}],'
     ' "annotations": [{"id": 9, "image_id": 1, "category_id": 3, "bbox": "wide"}]}',
     "annotation 9 has bbox"),
], ids=["cut-short", "empty", "not-utf8", "a-list", "no-annotations", "image-without-name",
        "bad-bbox"])
def test_coco_bad_json_names_the_file(coco, content, problem):
    path, images = coco
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(DataError) as info:
        det.load_coco(path, images)
    assert_names(info.value, path)
    assert problem in str(info.value)


def test_coco_zero_byte_image(coco):
    path, images = coco
    (images / "p.jpg").write_bytes(b"")
    with pytest.raises(DataError) as info:
        det.load_coco(path, images, image_size=16)
    assert_names(info.value, images / "p.jpg")


# ------------------------------------------------------------------ text-line crops

def write_crop(path, width=40):
    Image.new("L", (width, 32), 220).save(path)


def test_text_folder_missing(tmp_path):
    missing = tmp_path / "nonexistent"
    for call in (T.read_labels, T.load_text_folder):
        with pytest.raises(DataNotFound) as info:
            call(missing)
        assert_names(info.value, missing)


def test_text_labels_csv_naming_a_missing_image(tmp_path):
    write_crop(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text("filename,text\na.png,ab\nb.png,cd\n")
    with pytest.raises(DataNotFound) as info:
        T.load_text_folder(tmp_path)
    assert_names(info.value, tmp_path / "labels.csv", tmp_path / "b.png")
    with pytest.raises(DataNotFound) as info:
        T.read_labels(tmp_path, labels="other.csv")
    assert_names(info.value, tmp_path / "other.csv")


def test_text_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(DataError) as info:
        T.load_text_folder(tmp_path)
    assert_names(info.value, tmp_path)
    assert "no labelled images" in str(info.value)


def test_text_zero_byte_and_truncated_crops(tmp_path, no_truncated_flag):
    write_crop(tmp_path / "ab.png")
    write_truncated_jpeg(tmp_path / "cd.jpg", 64, 32)
    with pytest.warns(TruncatedImageWarning) as record:
        lines = T.load_text_folder(tmp_path)
    assert lines.texts == ("ab", "cd") and lines.x.shape[:2] == (2, 32)
    assert [str(tmp_path / "cd.jpg") in str(w.message) for w in record] == [True]
    (tmp_path / "ef.jpg").write_bytes(b"")
    with pytest.raises(DataError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncatedImageWarning)  # cd.jpg, read again
        T.load_text_folder(tmp_path)
    assert_names(info.value, tmp_path / "ef.jpg")


# ------------------------------------------------------------------ image folders, read_image

def test_image_folder_zero_byte_and_missing(tmp_path):
    (tmp_path / "cat").mkdir()
    write_jpeg(tmp_path / "cat" / "1.jpg")
    (tmp_path / "cat" / "2.jpg").write_bytes(b"")
    with pytest.raises(DataError) as info:
        datasets.load_image_folder(tmp_path)
    assert_names(info.value, tmp_path / "cat" / "2.jpg")
    with pytest.raises(DataNotFound) as info:
        datasets.load_image_folder(tmp_path / "nonexistent")
    assert_names(info.value, tmp_path / "nonexistent")


def test_read_image_truncated_warns_every_time_and_restores_the_flag(tmp_path,
                                                                     no_truncated_flag):
    cut = tmp_path / "cut.jpg"
    write_truncated_jpeg(cut)
    for _ in range(2):  # the second read warns too: the flag was not left switched on
        with pytest.warns(TruncatedImageWarning, match="cut.jpg: image file is truncated"):
            image = formats.read_image(cut, "RGB")
        assert image.size == (48, 32) and image.mode == "RGB"
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    # an intact image loads silently, and the same as PIL reads it
    whole = tmp_path / "whole.png"
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(whole)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(np.asarray(formats.read_image(whole)),
                                      np.arange(12).reshape(3, 4))


def png_with_zeroed_pixel_data():
    """A PNG whose compressed pixel data (IDAT) starts with 30 zero bytes."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.full((20, 20, 3), 100, np.uint8)).save(buffer, "PNG")
    raw = bytearray(buffer.getvalue())
    start = raw.find(b"IDAT") + 4
    raw[start:start + 30] = bytes(30)
    return bytes(raw)


@pytest.mark.parametrize("content, problem", [
    (b"", "empty file (0 bytes)"),
    (b"this is not an image at all", "not a readable image"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 10, "not a readable image"),  # a bare JPEG header
    (png_with_zeroed_pixel_data(), "cannot decode image"),
], ids=["zero-bytes", "text", "bare-jpeg-header", "corrupt-png-data"])
def test_read_image_undecodable(tmp_path, content, problem):
    bad = tmp_path / "bad.img"
    bad.write_bytes(content)
    with pytest.raises(DataError) as info:
        formats.read_image(bad)
    assert_names(info.value, bad)
    assert problem in str(info.value)
    with pytest.raises(DataNotFound) as info:
        formats.read_image(tmp_path / "absent.png")
    assert_names(info.value, tmp_path / "absent.png")


# ------------------------------------------------------------------ built-in datasets

@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """Empty data, cache and Keras folders, no Debian copy, and no network: the probe is
    replaced (and counted), so nothing can be downloaded."""
    for name in ("data", "cache", "keras"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("LOSSLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("LOSSLAB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    probes = []
    monkeypatch.setattr(sources, "network_reachable", lambda *a, **k: probes.append(1) or False)
    return tmp_path, probes


def test_fetch_with_no_source_names_the_dataset_and_the_fix(nowhere):
    tmp_path, probes = nowhere
    with pytest.raises(DatasetUnavailable) as info:
        sources.fetch("cifar10", verbose=False)
    error = info.value
    assert probes == [1]  # tensorflow-datasets was asked only through the (fake) probe
    first = str(error).splitlines()[0]
    assert first == error.summary
    assert "'cifar10'" in first and "Fix: " + sources.FIXES["cifar10"] in first
    assert str(tmp_path / "data") in first  # the LOSSLAB_DATA folder that lacked it
    assert str(error) == f"{first}\n{error.details}"
    for label in ("LossLab cache", "Keras cache", "tensorflow-datasets"):
        assert label in error.details
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and isinstance(again, DatasetUnavailable)


def test_cli_prints_one_line_and_exits_2(nowhere, capsys):
    assert cli.main(["fetch", "cifar10"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("python -m zoo.datasets: error: dataset 'cifar10'")
    assert cli.main(["fetch", "cifar10", "--verbose"]) == 2
    assert "Sources tried, in order:" in capsys.readouterr().err


def test_cli_names_a_bad_file_in_data_dir(nowhere, capsys):
    tmp_path, _ = nowhere
    for split in ("train", "test"):
        (tmp_path / "data" / split / "cat").mkdir(parents=True)
        write_jpeg(tmp_path / "data" / split / "cat" / "1.jpg", 32, 32)
    (tmp_path / "data" / "test" / "cat" / "2.jpg").write_bytes(b"")
    assert cli.main(["fetch", "cifar10"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()  # tqdm's bars, then the error
    errors = [line for line in lines if "error" in line]
    assert errors == [lines[-1]] and lines[-1].startswith("python -m zoo.datasets: error: ")
    assert lines[-1].endswith(str(tmp_path / "data" / "test" / "cat" / "2.jpg")
                              + ": empty file (0 bytes), not an image")
