"""Native-resolution VOC loading (the form tiled training reads) and the NEON tree tiles read
out of a wheel: a fake wheel built here, each file's hash pinned by the test, tampering and
an offline machine refused with the fix."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from zoo.datasets import detection as det
from zoo.datasets import formats, neon_trees
from zoo.datasets.errors import DataError, DataNotFound

from tests.zoo.datasets.test_detection_data import voc_root, voc_xml  # noqa: F401 (fixture)


def test_native_resolution_keeps_pixels_and_boxes_top_left(voc_root):  # noqa: F811
    data = det.load_voc(voc_root, image_size=None, class_map={"dog": "animal",
                                                              "cat": "animal"})
    assert data.class_names == ("animal",)
    assert data.names == ("a.jpg", "b.jpg", "c.jpg")
    assert data.images.shape == (3, 40, 40, 3)  # the largest height and width
    assert data.original_sizes.tolist() == [[20, 40], [40, 20], [30, 30]]
    # a: 40 x 20 red image top-left, the rest the letterbox grey
    assert np.allclose(data.images[0, :20, :40], np.asarray([200, 30, 30]) / 255, atol=0.03)
    assert np.all(data.images[0, 20:] == det.LETTERBOX_FILL)
    # VOC 1-based inclusive (5, 3, 14, 12) -> edges (4, 2, 14, 12), unscaled
    assert data.objects(0)[0].tolist() == [[4, 2, 14, 12], [19, 0, 40, 20]]
    assert np.all(data.scales == 1) and np.all(data.offsets == 0)


def test_names_pick_images_in_order(voc_root):  # noqa: F811
    data = det.load_voc(voc_root, image_size=None, names=["c", "a"])
    assert data.names == ("c.jpg", "a.jpg")
    with pytest.raises(DataNotFound, match="zz.xml"):
        det.load_voc(voc_root, names=["zz"])
    with pytest.raises(ValueError, match="not both"):
        det.load_voc(voc_root, names=["a"], split="train")


@pytest.fixture
def fake_wheel(tmp_path, monkeypatch):
    """A zip laid out like the deepforest wheel, with small tiles; FILES pinned to them."""
    wheel = tmp_path / "deepforest-2.1.0-py3-none-any.whl"
    hashes = {}
    with zipfile.ZipFile(wheel, "w") as archive:
        for k, tile in enumerate(neon_trees.TRAIN_TILES + neon_trees.TEST_TILES):
            png, xml = tmp_path / f"{tile}.png", tmp_path / f"{tile}.xml"
            Image.new("RGB", (30 + 10 * k, 40), (20 * k, 90, 40)).save(png)
            name = "Alive" if tile.startswith("SOAP") else "Tree"
            xml.write_text(voc_xml(f"{tile}.tif", 30 + 10 * k, 40, [(name, (2, 2, 9, 9), 0)]))
            for path in (png, xml):
                archive.write(path, neon_trees.INNER_FOLDER + path.name)
                hashes[path.name] = formats.sha256(path)
    monkeypatch.setattr(neon_trees, "FILES", hashes)
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LOSSLAB_DATA", raising=False)
    return wheel


def test_tiles_come_out_of_the_wheel_checked_and_load_as_one_class(fake_wheel, tmp_path):
    root = neon_trees.extract(fake_wheel, tmp_path / "neon")
    assert sorted(p.name for p in (root / "annotations").iterdir()) == sorted(
        n for n in neon_trees.FILES if n.endswith(".xml"))
    train = det.load_voc(root, neon_trees.CLASS_NAMES, image_size=None,
                         class_map=neon_trees.CLASS_MAP, names=neon_trees.TRAIN_TILES)
    assert train.class_names == ("Tree",) and train.num_objects.tolist() == [1, 1, 1]
    assert train.original_sizes.tolist() == [[40, 30], [40, 40], [40, 50]]


def test_a_tampered_file_is_refused(fake_wheel, tmp_path, monkeypatch):
    first = next(iter(neon_trees.FILES))
    monkeypatch.setitem(neon_trees.FILES, first, "0" * 64)
    with pytest.raises(formats.ChecksumError, match="checksum mismatch"):
        neon_trees.extract(fake_wheel, tmp_path / "neon")
    assert not (tmp_path / "neon" / "images" / first).exists()


def test_the_cached_wheel_is_used_and_offline_says_how_to_fix(fake_wheel, monkeypatch):
    with pytest.raises(DataError, match="pip download --no-deps deepforest==2.1.0"):
        neon_trees.neon_trees_folder(download=False)
    wheels = neon_trees.cache_dir() / "wheels"
    wheels.mkdir(parents=True)
    (wheels / fake_wheel.name).write_bytes(fake_wheel.read_bytes())
    monkeypatch.setattr(neon_trees, "WHEEL", ("deepforest", "2.1.0",
                                              formats.sha256(fake_wheel)))
    root = neon_trees.neon_trees_folder(download=False)
    assert root == neon_trees.cache_dir() / "neon_trees"
    assert neon_trees.neon_trees_folder(download=False) == root  # now from the cache


def test_fetch_prepares_the_neon_tiles_and_names_the_fix_offline(fake_wheel, monkeypatch,
                                                                 capsys):
    from zoo.datasets import __main__ as cli

    monkeypatch.setattr(neon_trees, "pypi_wheel", lambda *a, **k: (_ for _ in ()).throw(
        neon_trees.SourceUnavailable("no network")))
    assert cli.main(["fetch", "neon_trees"]) == 2
    assert "pip download --no-deps deepforest==2.1.0" in capsys.readouterr().err
    monkeypatch.setattr(neon_trees, "pypi_wheel", lambda *a, **k: fake_wheel)
    assert cli.main(["fetch", "neon_trees"]) == 0
    assert "Pascal VOC folder" in capsys.readouterr().out
    assert (neon_trees.cache_dir() / "neon_trees" / "annotations" / "SOAP_061.xml").is_file()
