"""Text-line data for CTC recognizers: a seeded synthetic generator and two real-data loaders.

All give batches `(images, labels)`:

- images: float32 (B, H, W, 1) in [0, 1], dark text on a lighter background; H is the
  `height` argument of every generator and loader (32 by default, the CRNN paper's; 48 or
  64 when whole crops such as number plates would leave their characters too small);
- labels: int32 (B, L_max) charset ids 1..N (`zoo.charset.Charset`; 0 is the CTC blank),
  padded at the end with `losses.sequence.PAD_VALUE` = -1.

Synthetic lines (`SyntheticText`, a `keras.utils.PyDataset`, and `synthetic_text_set`, a fixed
test set cached on disk): random strings of `min_length`..`max_length` characters (4-10 by
default) drawn uniformly from the charset, rendered with the DejaVu fonts that matplotlib
ships (sans, serif, mono; regular, bold, oblique) through PIL, with augmentations: font and
size, horizontal stretch, rotation (±3°), background level and smooth texture, text
contrast, Gaussian blur and pixel noise. Sample i is a function of (seed, i) alone, so the
same seed gives the same images whatever the batch size, worker count or order of access.
Images are quantised to 8 bits, so a cached set is exactly what the generator makes.

Width: every synthetic line is rendered to `height` keeping its aspect ratio (times the
stretch), squeezed horizontally only if wider than `width`, and placed on a background of
exactly `width` pixels: by default 4 × height (`line_width`: 128 for 32 px, 192 for 48), so
a taller line holds the same text, not a squeezed one. A fixed width keeps one compiled
training step; at 32 x 128 the CRNN sees T = 128 // 4 - 1 = 31 frames, more than the
2·10 + 1 = 21 that the longest default label needs in the worst case (a blank between every
pair of characters), so every label has a CTC alignment (taller lines have more frames).

Real crops (`TextFolder`, `load_text_folder`): a folder of images with either a CSV
`labels.csv` of `filename,text` rows (a header row `filename,text` is optional; quote texts
that hold commas) or the label in each file name (`hello.png`, `hello_2.png`: the stem, less
a trailing `_<digits>` that keeps file names unique). Images of any size and colour are
converted to grey, resized to `height` keeping the aspect ratio and padded on the right by
repeating their last column — to a fixed `width` (wider crops are squeezed to it), or with
`width=None` to the widest image of the batch rounded up to a multiple of 16 (few distinct
shapes, so few retraces).

Text boxes in whole images (`read_text_boxes`, `load_text_boxes`): the OpenALPR benchmark
format, a `NAME.txt` next to each `NAME.jpg` holding one line per text box,
`file x y w h TEXT` (tab- or space-separated; pixels of the image as stored, EXIF rotation
not applied; (x, y) the top-left corner). Each box is cut out with a margin (10 % of the
box height on each side by default, so that the first and last strokes are not clipped by
a tight annotation; clipped to the image) and then treated like a folder crop: grey,
resized to `height`, padded.

Bad input (a missing folder, CSV, annotation or image, a malformed CSV row or annotation
line, a box outside its image, an unreadable image, no labelled images at all) raises
`zoo.datasets.errors.DataError` (a ValueError) with one line that names the file or folder;
a truncated image is loaded with a `TruncatedImageWarning`.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import keras
from losses.sequence import PAD_VALUE
from zoo.charset import LOWERCASE_ALPHANUMERIC, Charset
from zoo.datasets.errors import DataError, DataNotFound
from zoo.datasets.formats import IMAGE_SUFFIXES, read_image
from zoo.datasets.sources import cache_dir

HEIGHT = 32
WIDTH = 128  # of a HEIGHT-px synthetic line; `line_width` scales it with the height
MIN_HEIGHT = 16  # the renderer's font sizes (2·height - 20 ...) need at least this
MIN_LENGTH, MAX_LENGTH = 4, 10
# Part of the cache key of `synthetic_text_set`: bump it whenever rendering changes.
GENERATOR_VERSION = 1
PLATES_VERSION = 2  # ... and this one whenever the plate rendering changes
CSV_NAME = "labels.csv"
_HEADER_CELLS = {"filename", "file", "image", "path", "name"}
BOX_MARGIN = 0.1  # of the box height, on each side of a text box


def line_width(height=HEIGHT) -> int:
    """The default width of a synthetic line `height` px high: 4 × height (128 for 32 px).

    The 32 x 128 lines hold 4-10 characters; keeping that aspect ratio at other heights
    keeps the same text legible instead of squeezing it horizontally.
    """
    return WIDTH * int(height) // HEIGHT


def _check_height(height) -> int:
    whole = (isinstance(height, (int, np.integer, float, np.floating))
             and not isinstance(height, bool) and float(height).is_integer())
    if not whole or height < MIN_HEIGHT:
        raise ValueError(f"height must be a whole number of pixels >= {MIN_HEIGHT}; got "
                         f"{height!r}")
    return int(height)


def dejavu_fonts() -> list:
    """The DejaVu .ttf files shipped with matplotlib, sorted (the "Display" subsets left out:
    they hold only a few glyphs)."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = sorted(p for p in folder.glob("DejaVu*.ttf") if "Display" not in p.name)
    if not fonts:
        raise FileNotFoundError(f"no DejaVu*.ttf fonts in {folder}; reinstall matplotlib or "
                                f"pass fonts=[...] explicitly")
    return fonts


@functools.lru_cache(maxsize=256)
def _font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


def _rng(seed, index):
    entropy = list(seed) if isinstance(seed, (tuple, list)) else [seed]
    return np.random.default_rng([int(s) for s in entropy] + [int(index)])


def random_text(rng, charset: Charset, min_length=MIN_LENGTH, max_length=MAX_LENGTH) -> str:
    """A uniform random string; with a space in the charset, never at either end."""
    length = int(rng.integers(min_length, max_length + 1))
    characters = [charset.characters[k] for k in rng.integers(len(charset), size=length)]
    visible = [c for c in charset.characters if not c.isspace()]
    for end in (0, -1):
        if characters and characters[end].isspace() and visible:
            characters[end] = visible[int(rng.integers(len(visible)))]
    return "".join(characters)


def render_text_line(text: str, rng=None, fonts=None, height=HEIGHT, width=None,
                     augment=True) -> np.ndarray:
    """Render `text` as a uint8 (height, width) grey image, dark text on a light background.

    Args:
        text: the string to draw.
        rng: a `numpy.random.Generator` for the augmentations. Required if `augment`.
        fonts: .ttf paths to choose from. Defaults to `dejavu_fonts()`.
        height: output height, at least 16. Defaults to 32.
        width: output width; wider renderings are squeezed to it. Defaults to None
            (`line_width(height)`: 128 for 32 px).
        augment: random font, size, stretch, rotation, background, contrast, blur and
            noise; False draws black text in the first font (DejaVu Sans Bold by default)
            on white. Defaults to True.
    """
    from PIL import Image, ImageDraw, ImageFilter

    height = _check_height(height)
    width = line_width(height) if width is None else int(width)
    fonts = list(fonts) if fonts is not None else dejavu_fonts()
    if augment and rng is None:
        raise ValueError("render_text_line(augment=True) needs rng=np.random.default_rng(...)")
    # draw the ink mask at about twice the output size, then scale down (anti-aliasing)
    font_path = fonts[int(rng.integers(len(fonts)))] if augment else fonts[0]
    size = int(rng.integers(2 * height - 20, 2 * height - 2)) if augment else 2 * height - 12
    font = _font(str(font_path), size)
    ascent, descent = font.getmetrics()
    left, _, right, _ = font.getbbox(text)
    pad = size // 4
    canvas = Image.new("L", (max(right - left, 1) + 2 * pad, ascent + descent + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad), text, fill=255, font=font)
    if augment:
        canvas = canvas.rotate(float(rng.uniform(-3.0, 3.0)), resample=Image.BILINEAR,
                               expand=True, fillcolor=0)
    mask = np.asarray(canvas, np.float32) / 255.0
    # crop to the ink horizontally; keep the whole line box vertically (so "o" stays small)
    columns = np.nonzero(mask.max(axis=0) > 0.1)[0]
    x0, x1 = (columns[0], columns[-1] + 1) if columns.size else (0, mask.shape[1])
    margin = (rng.integers(0, pad // 2 + 1, size=2) if augment else (pad // 4, pad // 4))
    trim = rng.integers(0, pad // 2 + 1, size=2) if augment else (pad // 2, pad // 2)
    mask = mask[trim[0]:mask.shape[0] - trim[1],
                max(x0 - margin[0], 0):min(x1 + margin[1], mask.shape[1])]
    stretch = float(rng.uniform(0.8, 1.2)) if augment else 1.0
    text_width = int(np.clip(round(mask.shape[1] * height / mask.shape[0] * stretch), 1, width))
    mask = np.asarray(Image.fromarray(mask).resize((text_width, height), Image.BILINEAR))
    mask = np.clip(mask, 0.0, 1.0)

    if augment:
        background = float(rng.uniform(0.6, 1.0))
        ink = max(background - float(rng.uniform(0.4, 0.9)), 0.0)
        texture = rng.normal(0.0, rng.uniform(0.0, 0.1), size=(height // 8 + 2, width // 16 + 2))
        texture = np.asarray(Image.fromarray(texture.astype(np.float32)).resize(
            (width, height), Image.BILINEAR))
        offset = int(rng.integers(0, (width - text_width) // 4 + 1))
    else:
        background, ink, texture, offset = 1.0, 0.0, 0.0, 0
    coverage = np.zeros((height, width), np.float32)
    coverage[:, offset:offset + text_width] = mask
    image = (background + texture) * (1.0 - coverage) + ink * coverage
    image = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    if augment:
        sigma = float(rng.uniform(0.0, 1.0))
        if sigma > 0.25:
            image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(sigma)))
        noise = rng.normal(0.0, rng.uniform(0.0, 0.05), size=image.shape) * 255
        image = np.round(np.clip(image + noise, 0, 255)).astype(np.uint8)
    return image


@dataclass(frozen=True)
class TextLines:
    """A fixed set of text lines: `x` float32 (N, H, W, 1) in [0, 1], `y` int32 (N, L) ids
    padded with -1, the `texts`, and the `charset` that maps them. Unpacks as `x, y`.

    `names` says where each line came from, when it came from files (a crop's file name,
    `NAME.txt:LINE` for a text box), so a misread line can be found; it is empty for
    synthetic lines.
    """

    x: np.ndarray
    y: np.ndarray
    texts: tuple
    charset: Charset
    names: tuple = ()

    def __iter__(self):
        return iter((self.x, self.y))

    def __len__(self):
        return len(self.texts)


class SyntheticText(keras.utils.PyDataset):
    """Seeded synthetic text lines as a `keras.utils.PyDataset` of (images, labels) batches.

    Batch k holds samples k·batch_size ... ; sample i depends only on (seed, i).

    Args:
        num_samples: lines per epoch (the same lines every epoch). Defaults to 10,000.
        batch_size: lines per batch (the last batch may be smaller). Defaults to 32.
        charset: a `Charset` or a string of characters. Defaults to the 36 lowercase
            alphanumerics.
        min_length: shortest string. Defaults to 4.
        max_length: longest string, and the label width L_max. Defaults to 10.
        height: image height, at least 16. Defaults to 32.
        width: image width (see the module docstring). Defaults to None
            (`line_width(height)`: 128 for 32 px, 192 for 48).
        seed: an int or a tuple of ints. Defaults to 0.
        augment: augment the renderings (False: black text in the first font on white).
            Defaults to True.
        fonts: .ttf paths. Defaults to `dejavu_fonts()`.
        plate_fraction: the share of samples drawn as number-plate crops
            (`zoo.datasets.synthetic_plates.render_plate`: 5-8 capitals and digits of the
            charset on a plate with border, band, separators and surroundings) instead of
            plain lines. Defaults to 0 (plain lines only; the streams of earlier versions
            are unchanged).
        **kwargs: `keras.utils.PyDataset` arguments (workers, use_multiprocessing,
            max_queue_size).

    Reference: Jaderberg, Simonyan, Vedaldi, Zisserman, "Synthetic Data and Artificial
    Neural Networks for Natural Scene Text Recognition", NIPS DLW 2014 (the synthetic-data
    approach; this generator is a much simpler one).
    """

    def __init__(self, num_samples=10_000, batch_size=32, charset=LOWERCASE_ALPHANUMERIC,
                 min_length=MIN_LENGTH, max_length=MAX_LENGTH, height=HEIGHT, width=None,
                 seed=0, augment=True, fonts=None, plate_fraction=0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(plate_fraction) <= 1.0:
            raise ValueError(f"plate_fraction must be in [0, 1]; got {plate_fraction!r}")
        if not 1 <= int(min_length) <= int(max_length):
            raise ValueError(f"need 1 <= min_length <= max_length; got min_length="
                             f"{min_length}, max_length={max_length}")
        if int(num_samples) < 1 or int(batch_size) < 1:
            raise ValueError(f"num_samples and batch_size must be >= 1; got {num_samples}, "
                             f"{batch_size}")
        self.num_samples, self.batch_size = int(num_samples), int(batch_size)
        self.charset = Charset(charset)
        self.min_length, self.max_length = int(min_length), int(max_length)
        self.height = _check_height(height)
        self.width = line_width(self.height) if width is None else int(width)
        self.seed = tuple(seed) if isinstance(seed, (tuple, list)) else int(seed)
        self.augment = bool(augment)
        self.fonts = [Path(p) for p in fonts] if fonts is not None else dejavu_fonts()
        self.plate_fraction = float(plate_fraction)
        if self.plate_fraction > 0:
            from zoo.datasets.synthetic_plates import plate_alphabet

            plate_alphabet(self.charset)  # a charset without capitals or digits: ValueError

    def _draw(self, index):
        """(rng, text, plate groups or None) of sample `index`; the rng continues into the
        rendering."""
        rng = _rng(self.seed, index)
        if self.plate_fraction > 0 and rng.random() < self.plate_fraction:
            from zoo.datasets.synthetic_plates import random_plate_text

            text, groups = random_plate_text(rng, self.charset, self.min_length,
                                             self.max_length)
            return rng, text, groups
        return rng, random_text(rng, self.charset, self.min_length, self.max_length), None

    def __len__(self):
        return math.ceil(self.num_samples / self.batch_size)

    def text(self, index: int) -> str:
        """The string of sample `index` (cheap: nothing is rendered)."""
        return self._draw(index)[1]

    def sample(self, index: int):
        """(uint8 (height, width) image, text) of sample `index`."""
        if not 0 <= index < self.num_samples:
            raise IndexError(f"sample {index} out of range [0, {self.num_samples})")
        rng, text, groups = self._draw(index)
        if groups is not None:
            from zoo.datasets.synthetic_plates import render_plate

            return render_plate(groups, rng, self.fonts, self.height, self.width), text
        image = render_text_line(text, rng, self.fonts, self.height, self.width, self.augment)
        return image, text

    def _arrays(self, indices):
        images, texts = zip(*(self.sample(i) for i in indices))
        x = np.stack(images)[..., None].astype(np.float32) / 255.0
        return x, self.charset.encode_batch(texts, self.max_length, PAD_VALUE), texts

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range [0, {len(self)})")
        start = index * self.batch_size
        x, y, _ = self._arrays(range(start, min(start + self.batch_size, self.num_samples)))
        return x, y

    def to_lines(self) -> TextLines:
        """All `num_samples` lines as arrays."""
        x, y, texts = self._arrays(range(self.num_samples))
        return TextLines(x, y, tuple(texts), self.charset)


def synthetic_text_set(num_samples=1000, seed=1, charset=LOWERCASE_ALPHANUMERIC,
                       min_length=MIN_LENGTH, max_length=MAX_LENGTH, height=HEIGHT,
                       width=None, augment=True, cache=True, plate_fraction=0.0) -> TextLines:
    """A fixed synthetic set (e.g. the test set), cached under `cache_dir()/synth_text/`.

    The cache key covers every argument (the height and the resolved width included), the
    font files and `GENERATOR_VERSION`; a cached set is byte-identical to a fresh generation
    on the machine that wrote it.

    Args:
        num_samples: number of lines. Defaults to 1000.
        seed: generator seed (int or tuple); use one the training set does not. Defaults
            to 1 (`SyntheticText` defaults to 0).
        charset, min_length, max_length, height, width, augment: as `SyntheticText`.
        cache: read/write the cache. Defaults to True.
        plate_fraction: as `SyntheticText`. Defaults to 0.
    """
    lines = SyntheticText(num_samples, 256, charset, min_length, max_length, height, width,
                          seed, augment, plate_fraction=plate_fraction)
    plates = ({"plate_fraction": lines.plate_fraction, "plates_version": PLATES_VERSION}
              if lines.plate_fraction > 0 else {})  # plain sets keep their old cache keys
    key = json.dumps({**plates, "version": GENERATOR_VERSION, "n": lines.num_samples,
                      "seed": lines.seed, "charset": lines.charset.characters,
                      "lengths": [lines.min_length, lines.max_length],
                      "size": [lines.height, lines.width], "augment": lines.augment,
                      "fonts": [p.name for p in lines.fonts]}, sort_keys=True)
    path = cache_dir() / "synth_text" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"
    if cache and path.exists():
        with np.load(path) as data:
            return TextLines(data["x"][..., None].astype(np.float32) / 255.0,
                             data["y"], tuple(str(t) for t in data["texts"]), lines.charset)
    result = lines.to_lines()
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, x=np.round(result.x[..., 0] * 255).astype(np.uint8), y=result.y,
                     texts=np.asarray(result.texts, dtype=str), key=np.asarray(key))
            os.replace(tmp, path)
        except OSError as error:  # a read-only home must not break loading
            print(f"[losslab] could not cache synthetic text at {path}: {error}",
                  file=sys.stderr)
    return result


# ------------------------------------------------------------------ real crops

def label_from_file_name(path) -> str:
    """`hello.png` -> "hello", `hello_12.png` -> "hello" (a trailing _<digits> is dropped)."""
    return re.sub(r"_\d+$", "", Path(path).stem)


def read_labels(root, labels="auto"):
    """The (image path, text) pairs of a crop folder, sorted by file name.

    Args:
        root: the folder.
        labels: "auto" (`root/labels.csv` if present, else file names), a CSV path (relative
            to `root` or absolute) of `filename,text` rows, or None (file names).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataNotFound(f"{root}: folder does not exist (expected text-line crops with a "
                           f"{CSV_NAME} or labels in the file names)")
    if labels == "auto":
        labels = CSV_NAME if (root / CSV_NAME).exists() else None
    if labels is None:
        source = root
        paths = sorted(p for p in root.iterdir()
                       if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        pairs = [(p, label_from_file_name(p)) for p in paths]
    else:
        csv_path = source = Path(labels) if Path(labels).is_absolute() else root / labels
        if not csv_path.is_file():
            raise DataNotFound(f"{csv_path}: no such labels file")
        try:
            with open(csv_path, newline="", encoding="utf-8") as handle:
                rows = [row for row in csv.reader(handle) if row]
        except UnicodeDecodeError as error:
            raise DataError(f"{csv_path}: not UTF-8 text ({error.reason} at byte "
                            f"{error.start})") from None
        except csv.Error as error:
            raise DataError(f"{csv_path}: not a readable CSV file ({error})") from None
        if rows and rows[0][0].strip().lower() in _HEADER_CELLS:
            rows = rows[1:]
        pairs = []
        for number, row in enumerate(rows, start=1):
            if len(row) != 2:
                raise DataError(f"{csv_path} row {number}: expected 'filename,text' (quote "
                                f"texts holding commas); got {row}")
            pairs.append((root / row[0].strip(), row[1]))
        missing = [p for p, _ in pairs if not p.is_file()]
        if missing:
            raise DataNotFound(f"{csv_path} names {len(missing)} image(s) that do not exist, "
                               f"e.g. {', '.join(str(p) for p in missing[:3])}")
    if not pairs:
        raise DataError(f"{source} holds no labelled images ({', '.join(IMAGE_SUFFIXES)})")
    return pairs


def line_from_image(image, height=HEIGHT, width=None) -> np.ndarray:
    """A grey PIL image -> uint8 (height, w), aspect kept; squeezed to `width` if wider."""
    from PIL import Image

    height = int(height)
    w = max(1, round(image.width * height / image.height))
    if width is not None:
        w = min(w, int(width))
    return np.asarray(image.resize((w, height), Image.BILINEAR), np.uint8)


def read_line_image(path, height=HEIGHT, width=None) -> np.ndarray:
    """An image file -> uint8 (height, w) grey, aspect kept; squeezed to `width` if wider."""
    # read_image: DataError naming a bad file; warns if truncated
    return line_from_image(read_image(path, "L"), height, width)


def pad_lines(images, width) -> np.ndarray:
    """uint8 (height, w_i) images -> float32 (B, height, width, 1), right-padded by
    repeating each image's last column."""
    padded = [np.pad(im, ((0, 0), (0, width - im.shape[1])), mode="edge") for im in images]
    return np.stack(padded)[..., None].astype(np.float32) / 255.0


def _batch_width(images, width, width_multiple):
    if width is not None:
        return int(width)
    widest = max(im.shape[1] for im in images)
    return int(math.ceil(widest / width_multiple) * width_multiple)


class TextFolder(keras.utils.PyDataset):
    """A folder of labelled text-line crops as a `keras.utils.PyDataset` of batches.

    Args:
        root: the folder (see the module docstring for the label formats).
        charset: a `Charset` or string; texts with other characters raise ValueError.
            Defaults to None (the sorted characters of all labels).
        labels: "auto", a CSV path, or None (file names); see `read_labels`. Defaults to
            "auto".
        batch_size: lines per batch. Defaults to 32.
        height: image height (every crop is resized to it). Defaults to 32.
        width: fixed padded width, or None for the batch's widest image rounded up to a
            multiple of `width_multiple`. Defaults to None.
        width_multiple: rounding of the batch width when `width` is None. Defaults to 16.
        max_label_length: label width L_max. Defaults to None (the longest label).
        shuffle: reshuffle the order every epoch (seeded by `seed` and the epoch). Defaults
            to False.
        seed: shuffling seed. Defaults to 0.
        **kwargs: `keras.utils.PyDataset` arguments.
    """

    def __init__(self, root, charset=None, labels="auto", batch_size=32, height=HEIGHT,
                 width=None, width_multiple=16, max_label_length=None, shuffle=False, seed=0,
                 **kwargs):
        super().__init__(**kwargs)
        pairs = read_labels(root, labels)
        self.paths = [p for p, _ in pairs]
        self.texts = tuple(t for _, t in pairs)
        self.charset = Charset(charset) if charset is not None else Charset.from_texts(
            self.texts)
        ids = []
        for path, text in pairs:
            try:
                ids.append(self.charset.encode(text))
            except ValueError as error:
                raise DataError(f"label of {path.name}: {error} (in {path.parent})") from None
        longest = max(len(i) for i in ids)
        self.max_label_length = longest if max_label_length is None else int(max_label_length)
        self.labels = self.charset.encode_batch(self.texts, self.max_label_length, PAD_VALUE)
        self.batch_size, self.height = int(batch_size), int(height)
        self.width = None if width is None else int(width)
        self.width_multiple = int(width_multiple)
        self.shuffle, self.seed, self.epoch = bool(shuffle), int(seed), 0
        self.order = self._order()

    def _order(self):
        if not self.shuffle:
            return np.arange(len(self.paths))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.paths))

    def on_epoch_end(self):
        self.epoch += 1
        self.order = self._order()

    def __len__(self):
        return math.ceil(len(self.paths) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range [0, {len(self)})")
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = [read_line_image(self.paths[i], self.height, self.width) for i in chosen]
        width = _batch_width(images, self.width, self.width_multiple)
        return pad_lines(images, width), self.labels[chosen]


def load_text_folder(root, charset=None, labels="auto", height=HEIGHT, width=None,
                     width_multiple=16, max_label_length=None) -> TextLines:
    """A folder of labelled crops as one `TextLines` (in file order), padded to `width` or
    to the widest crop rounded up to `width_multiple`. Arguments as `TextFolder`."""
    folder = TextFolder(root, charset, labels, 1, height, width, width_multiple,
                        max_label_length)
    folder.batch_size = len(folder.paths)  # one batch: everything
    x, y = folder[0]
    return TextLines(x, y, folder.texts, folder.charset, tuple(p.name for p in folder.paths))


# ------------------------------------------------------------------ text boxes in images

@dataclass(frozen=True)
class TextBox:
    """One annotated text box: the image, the box (x, y, w, h: pixels, top-left corner), its
    text, and where the annotation stands (`source` file, 1-based `line`)."""

    image: Path
    x: float
    y: float
    w: float
    h: float
    text: str
    source: Path
    line: int

    @property
    def name(self) -> str:
        """`NAME.txt:LINE`: where the box is annotated."""
        return f"{self.source.name}:{self.line}"


def _parse_box_line(raw: str, source: Path, number: int, root: Path) -> TextBox:
    line = raw.strip()
    # tab-separated: the text may hold spaces; space-separated: the text is the rest
    fields = [f.strip() for f in line.split("\t")] if "\t" in line else line.split(None, 5)
    expected = f"expected 'file x y w h TEXT' (tab- or space-separated); got {line!r}"
    if len(fields) != 6 or not all(fields):
        raise DataError(f"{source} line {number}: {expected}")
    try:
        x, y, w, h = (float(v) for v in fields[1:5])
    except ValueError:
        raise DataError(f"{source} line {number}: x y w h must be numbers; {expected}") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise DataError(f"{source} line {number}: the box needs finite x, y and a positive "
                        f"width and height; got x={x:g} y={y:g} w={w:g} h={h:g}")
    return TextBox(root / fields[0], x, y, w, h, fields[5], source, number)


def read_text_boxes(root) -> list:
    """The annotated text boxes of a folder (`TextBox` list; no image is read).

    Every `*.txt` of `root` (sorted by name) is an annotation file; each non-blank line is
    one box, `file x y w h TEXT`, `file` relative to `root`. Raises `DataError` naming the
    file and line for a line that does not parse and for an image that does not exist,
    and naming the folder when it is missing or holds no boxes.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataNotFound(f"{root}: folder does not exist (expected images with a NAME.txt "
                           f"of 'file x y w h TEXT' lines next to each)")
    boxes = []
    for source in sorted(p for p in root.iterdir() if p.suffix.lower() == ".txt"
                         and p.is_file()):
        try:
            lines = source.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as error:
            raise DataError(f"{source}: not UTF-8 text ({error.reason} at byte "
                            f"{error.start})") from None
        for number, raw in enumerate(lines, start=1):
            if raw.strip():
                box = _parse_box_line(raw, source, number, root)
                if not box.image.is_file():
                    raise DataNotFound(f"{source} line {number} names the image "
                                       f"{box.image.name}, which does not exist "
                                       f"({box.image})")
                boxes.append(box)
    if not boxes:
        raise DataError(f"{root} holds no text boxes (NAME.txt files of 'file x y w h TEXT' "
                        f"lines next to the images)")
    return boxes


def box_crop_region(box, image_size, margin=BOX_MARGIN) -> tuple:
    """The pixel region (left, top, right, bottom) cut out for `box` in an image of
    `image_size` (width, height): the box grown by round(margin · h) px on each side, out
    to whole pixels, clipped to the image. A box not inside the image is a DataError."""
    width, height = image_size
    if box.x < 0 or box.y < 0 or box.x + box.w > width or box.y + box.h > height:
        raise DataError(f"{box.source} line {box.line}: the box x={box.x:g} y={box.y:g} "
                        f"w={box.w:g} h={box.h:g} reaches outside the {width}x{height} image "
                        f"{box.image}")
    pad = round(float(margin) * box.h)  # whole pixels: the margin does not blur the crop
    return (max(0, math.floor(box.x - pad)), max(0, math.floor(box.y - pad)),
            min(width, math.ceil(box.x + box.w + pad)),
            min(height, math.ceil(box.y + box.h + pad)))


def load_text_boxes(root, charset=None, height=HEIGHT, margin=BOX_MARGIN, width=None,
                    width_multiple=16, max_label_length=None) -> TextLines:
    """The text boxes of a folder of annotated images as grey text lines (`TextLines`).

    Each box of `read_text_boxes(root)` is cut out of its image with `margin` × its height
    on each side (clipped to the image), converted to grey, resized to `height` keeping the
    aspect ratio, and padded like `load_text_folder`'s crops: to `width` (wider ones
    squeezed), or to the widest rounded up to `width_multiple`. The lines come in the order
    of the annotation files and their lines; `names` are `NAME.txt:LINE`.

    Args:
        root: the folder of images and their NAME.txt annotations.
        charset: a `Charset` or string; a text with another character is a DataError naming
            its annotation. Defaults to None (the sorted characters of all texts).
        height: line height. Defaults to 32.
        margin: the margin on each side, a fraction of the box height (rounded to whole
            pixels). Defaults to 0.1.
        width: fixed padded width, or None (see above). Defaults to None.
        width_multiple: rounding of the width when `width` is None. Defaults to 16.
        max_label_length: label width L_max. Defaults to None (the longest text).
    """
    if not (math.isfinite(float(margin)) and float(margin) >= 0):
        raise ValueError(f"margin must be a fraction >= 0 of the box height; got {margin!r}")
    if isinstance(height, bool) or int(height) != height or int(height) < 1:
        raise ValueError(f"height must be a whole number of pixels >= 1; got {height!r}")
    height = int(height)
    boxes = read_text_boxes(root)
    texts = tuple(box.text for box in boxes)
    charset = Charset(charset) if charset is not None else Charset.from_texts(texts)
    for box in boxes:
        try:
            charset.encode(box.text)
        except ValueError as error:
            raise DataError(f"text of {box.source} line {box.line}: {error}") from None
    images, image, image_path = [], None, None
    for box in boxes:
        if box.image != image_path:  # the boxes of one image come together: read it once
            image, image_path = read_image(box.image, "L"), box.image
        crop = image.crop(box_crop_region(box, image.size, margin))
        images.append(line_from_image(crop, height, width))
    longest = max(len(text) for text in texts)
    labels = charset.encode_batch(texts, longest if max_label_length is None
                                  else int(max_label_length), PAD_VALUE)
    x = pad_lines(images, _batch_width(images, width, width_multiple))
    return TextLines(x, labels, texts, charset, tuple(box.name for box in boxes))
