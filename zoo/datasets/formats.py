"""Readers for the on-disk formats datasets come in (no source logic here).

- idx (LeCun's MNIST format, also Fashion-MNIST), optionally gzipped;
- the Keras `mnist.npz`;
- the classic `mnist.pkl.gz` (deeplearning.net tutorial split, 50k/10k/10k);
- CIFAR-10 python batches (`cifar-10-batches-py/`);
- an image folder with one sub-folder per class;
- single image files (`read_image`: the one place the data layer opens an image with PIL).

Bad input raises `zoo.datasets.errors.DataError` (a ValueError) naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
import tarfile
import threading
import warnings
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from zoo.datasets.errors import DataError, DataNotFound, TruncatedImageWarning

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_TRUNCATED_LOCK = threading.Lock()


class ChecksumError(DataError):
    """A file's SHA-256 is not the one pinned for it."""


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> None:
    try:
        actual = sha256(path)
    except FileNotFoundError:
        raise DataNotFound(f"{path}: no such file") from None
    if actual != expected:
        raise ChecksumError(
            f"checksum mismatch for {path}: expected sha256 {expected}, got {actual} "
            "(the file is corrupt or not the one expected; delete it and fetch again)"
        )


def _open_maybe_gzip(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (magic 0x0000 08 NDIM, big-endian dims, uint8 data)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFound(f"{path}: no such file")
    try:
        with _open_maybe_gzip(path) as handle:
            header = handle.read(4)
            if len(header) != 4 or header[0] != 0 or header[1] != 0:
                raise DataError(f"{path} is not an idx file (bad magic {header!r})")
            if header[2] != 0x08:
                raise DataError(f"{path}: only unsigned-byte idx files are supported")
            ndim = header[3]
            raw_dims = handle.read(4 * ndim)
            if len(raw_dims) != 4 * ndim:
                raise DataError(f"{path}: idx header cut short (truncated?)")
            dims = struct.unpack(">" + "I" * ndim, raw_dims)
            data = np.frombuffer(handle.read(), dtype=np.uint8)
    except (OSError, EOFError) as error:  # e.g. a .gz that is not gzip, or cut short
        raise DataError(f"{path}: cannot read ({error})") from None
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} but holds {data.size} bytes (truncated?)")
    return data.reshape(dims)


def with_channel_axis(images: np.ndarray) -> np.ndarray:
    """(N, H, W[, C]) -> (N, H, W, C), a view."""
    images = np.asarray(images)
    return images[..., None] if images.ndim == 3 else images


def images_to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W[, C]) -> float32 (N, H, W, C) in [0, 1]."""
    images = with_channel_axis(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def read_mnist_pkl(path: str | Path):
    """Read `mnist.pkl.gz` -> (x_train, y_train), (x_test, y_test) as uint8 (N, 28, 28, 1).

    The pickle holds the original bytes divided by 256 (float32, 50k/10k/10k); multiplying
    back recovers them exactly, and train + valid is MNIST's 60,000-image training set.
    """
    with gzip.open(path, "rb") as handle:
        train, valid, test = pickle.load(handle, encoding="latin1")

    def as_images(x):
        return np.round(np.asarray(x, np.float32) * 256).astype(np.uint8).reshape(-1, 28, 28, 1)

    x_train = np.concatenate([as_images(train[0]), as_images(valid[0])])
    y_train = np.concatenate([train[1], valid[1]]).astype(np.int64)
    return (x_train, y_train), (as_images(test[0]), np.asarray(test[1], np.int64))


def read_cifar_batches(folder: str | Path):
    """Read CIFAR-10's python batches -> (x_train, y_train), (x_test, y_test) as uint8 NHWC."""
    folder = Path(folder)

    def read(name):
        path = folder / name
        if not path.is_file():
            raise DataNotFound(f"{path}: no such file (CIFAR-10 batches need data_batch_1..5 "
                               f"and test_batch)")
        try:
            with open(path, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            x = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            return x, np.asarray(batch[b"labels"], np.int64)
        except Exception as error:  # unpickling garbage raises almost anything
            raise DataError(f"{path}: not a CIFAR-10 python batch ({type(error).__name__}: "
                            f"{error})") from None

    parts = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    return (x_train, y_train), read("test_batch")


def read_image_folder(root: str | Path, image_size=None, color_mode="rgb", class_names=None,
                      desc=None):
    """Read `root/<class>/<image>` into uint8 NHWC images and integer labels.

    Classes are the sorted sub-folder names unless `class_names` fixes the order (so that a
    test folder gets the train folder's label ids). Images are resized to `image_size`
    (height, width) when given; otherwise they must all have the same size.
    """
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise DataNotFound(f"{root}: folder does not exist (expected an image folder with "
                           f"one sub-folder per class)")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    class_names = list(class_names) if class_names is not None else found
    missing = sorted(set(found) - set(class_names))
    if missing:
        raise DataError(f"{root} has sub-folders {missing} that are not in class_names")
    files = [
        (path, label)
        for label, name in enumerate(class_names)
        if (root / name).is_dir()
        for path in sorted((root / name).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise DataError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}) in per-class "
                        f"sub-folders")
    modes = {"rgb": "RGB", "grayscale": "L"}
    if color_mode not in modes:
        raise ValueError(f"color_mode must be one of {sorted(modes)}, got {color_mode!r}")
    images = []
    for path, _ in tqdm(files, desc=desc or f"reading {root.name}", unit="img", leave=False):
        image = read_image(path, modes[color_mode])
        if image_size is not None:
            image = image.resize((image_size[1], image_size[0]), Image.BILINEAR)
        images.append(np.asarray(image, np.uint8))
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(f"{root}: images differ in size {sorted(shapes)[:3]}; pass image_size")
    x = np.stack(images)
    if x.ndim == 3:
        x = x[..., None]
    return x, np.asarray([label for _, label in files], np.int64), class_names


def extract_tar(archive: str | Path, destination: str | Path) -> Path:
    """Extract a tar(.gz) archive with a progress bar; skip if already extracted."""
    archive, destination = Path(archive), Path(destination)
    done = destination / ".extracted"
    if done.exists():
        return destination
    destination.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in tqdm(members, desc=f"extracting {archive.name}", unit="file",
                               leave=False):
                tar.extract(member, destination, filter="data")
    except (tarfile.TarError, EOFError) as error:  # corrupt or cut-short archive
        raise DataError(f"{archive}: not a readable tar archive ({error}); delete it and "
                        f"fetch it again") from None
    done.touch()
    return destination


def _unidentified(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        size = None
    if size == 0:
        return f"{path}: empty file (0 bytes), not an image"
    size_note = f", {size} bytes" if size else ""
    return f"{path}: not a readable image (format not recognised{size_note})"


def read_image(path: str | Path, mode: str | None = None):
    """Open an image file and decode it fully -> a PIL image (in memory, file closed).

    This is the one place where the data layer opens images, so that every loader answers
    bad files the same way:

    - a missing file raises `DataNotFound` naming it;
    - an empty or undecodable file raises `DataError` naming it;
    - a truncated file (e.g. a JPEG cut short) is loaded anyway, with the missing part
      filled in by PIL, and a `TruncatedImageWarning` (a UserWarning) naming it. PIL's
      global `ImageFile.LOAD_TRUNCATED_IMAGES` is switched on only for that one read.

    Args:
        path: the image file.
        mode: PIL mode to convert to ("RGB", "L", ...). Defaults to None (as stored).
    """
    from PIL import Image, ImageFile

    path = Path(path)

    def decode():
        with Image.open(path) as image:
            image.load()
            return image.convert(mode) if mode else image.copy()

    try:
        try:
            return decode()
        except OSError as error:
            if not str(error).startswith("image file is truncated"):
                raise
        with _TRUNCATED_LOCK:
            previous = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = True
            try:
                image = decode()
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = previous
        warnings.warn(f"{path}: image file is truncated; loaded what it holds, the rest "
                      f"filled in", TruncatedImageWarning, stacklevel=2)
        return image
    except FileNotFoundError:
        raise DataNotFound(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file") from None
    except Image.UnidentifiedImageError:
        raise DataError(_unidentified(path)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # PIL's decoder errors
        raise DataError(f"{path}: cannot decode image ({type(error).__name__}: "
                        f"{error})") from None
