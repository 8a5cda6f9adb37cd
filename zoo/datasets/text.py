"""Text-line data for CTC recognizers: a seeded synthetic generator and a real-crop loader.

Both give batches `(images, labels)`:

- images: float32 (B, 32, W, 1) in [0, 1], dark text on a lighter background;
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

Width: every synthetic line is rendered to height 32 keeping its aspect ratio (times the
stretch), squeezed horizontally only if wider than `width`, and placed on a background of
exactly `width` pixels (128 by default). A fixed width keeps one compiled training step; the
CRNN sees T = 128 // 4 - 1 = 31 frames, more than the 2·10 + 1 = 21 that the longest default
label needs in the worst case (a blank between every pair of characters), so every label has
a CTC alignment.

Real crops (`TextFolder`, `load_text_folder`): a folder of images with either a CSV
`labels.csv` of `filename,text` rows (a header row `filename,text` is optional; quote texts
that hold commas) or the label in each file name (`hello.png`, `hello_2.png`: the stem, less
a trailing `_<digits>` that keeps file names unique). Images of any size and colour are
converted to grey, resized to height 32 keeping the aspect ratio and padded on the right by
repeating their last column — to a fixed `width` (wider crops are squeezed to it), or with
`width=None` to the widest image of the batch rounded up to a multiple of 16 (few distinct
shapes, so few retraces). Bad input (a missing folder, CSV or image, a malformed CSV row, an
unreadable image, no labelled images at all) raises `zoo.datasets.errors.DataError` (a
ValueError) with one line that names the file or folder; a truncated image is loaded with a
`TruncatedImageWarning`.
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
WIDTH = 128
MIN_LENGTH, MAX_LENGTH = 4, 10
# Part of the cache key of `synthetic_text_set`: bump it whenever rendering changes.
GENERATOR_VERSION = 1
CSV_NAME = "labels.csv"
_HEADER_CELLS = {"filename", "file", "image", "path", "name"}


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


def render_text_line(text: str, rng=None, fonts=None, height=HEIGHT, width=WIDTH,
                     augment=True) -> np.ndarray:
    """Render `text` as a uint8 (height, width) grey image, dark text on a light background.

    Args:
        text: the string to draw.
        rng: a `numpy.random.Generator` for the augmentations. Required if `augment`.
        fonts: .ttf paths to choose from. Defaults to `dejavu_fonts()`.
        height: output height. Defaults to 32.
        width: output width; wider renderings are squeezed to it. Defaults to 128.
        augment: random font, size, stretch, rotation, background, contrast, blur and
            noise; False draws black text in the first font (DejaVu Sans Bold by default)
            on white. Defaults to True.
    """
    from PIL import Image, ImageDraw, ImageFilter

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
    padded with -1, the `texts`, and the `charset` that maps them. Unpacks as `x, y`."""

    x: np.ndarray
    y: np.ndarray
    texts: tuple
    charset: Charset

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
        height: image height. Defaults to 32.
        width: image width (see the module docstring). Defaults to 128.
        seed: an int or a tuple of ints. Defaults to 0.
        augment: augment the renderings (False: black text in the first font on white).
            Defaults to True.
        fonts: .ttf paths. Defaults to `dejavu_fonts()`.
        **kwargs: `keras.utils.PyDataset` arguments (workers, use_multiprocessing,
            max_queue_size).

    Reference: Jaderberg, Simonyan, Vedaldi, Zisserman, "Synthetic Data and Artificial
    Neural Networks for Natural Scene Text Recognition", NIPS DLW 2014 (the synthetic-data
    approach; this generator is a much simpler one).
    """

    def __init__(self, num_samples=10_000, batch_size=32, charset=LOWERCASE_ALPHANUMERIC,
                 min_length=MIN_LENGTH, max_length=MAX_LENGTH, height=HEIGHT, width=WIDTH,
                 seed=0, augment=True, fonts=None, **kwargs):
        super().__init__(**kwargs)
        if not 1 <= int(min_length) <= int(max_length):
            raise ValueError(f"need 1 <= min_length <= max_length; got min_length="
                             f"{min_length}, max_length={max_length}")
        if int(num_samples) < 1 or int(batch_size) < 1:
            raise ValueError(f"num_samples and batch_size must be >= 1; got {num_samples}, "
                             f"{batch_size}")
        self.num_samples, self.batch_size = int(num_samples), int(batch_size)
        self.charset = Charset(charset)
        self.min_length, self.max_length = int(min_length), int(max_length)
        self.height, self.width = int(height), int(width)
        self.seed = tuple(seed) if isinstance(seed, (tuple, list)) else int(seed)
        self.augment = bool(augment)
        self.fonts = [Path(p) for p in fonts] if fonts is not None else dejavu_fonts()

    def __len__(self):
        return math.ceil(self.num_samples / self.batch_size)

    def text(self, index: int) -> str:
        """The string of sample `index` (cheap: nothing is rendered)."""
        return random_text(_rng(self.seed, index), self.charset, self.min_length,
                           self.max_length)

    def sample(self, index: int):
        """(uint8 (height, width) image, text) of sample `index`."""
        if not 0 <= index < self.num_samples:
            raise IndexError(f"sample {index} out of range [0, {self.num_samples})")
        rng = _rng(self.seed, index)
        text = random_text(rng, self.charset, self.min_length, self.max_length)
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
                       width=WIDTH, augment=True, cache=True) -> TextLines:
    """A fixed synthetic set (e.g. the test set), cached under `cache_dir()/synth_text/`.

    The cache key covers every argument, the font files and `GENERATOR_VERSION`; a cached
    set is byte-identical to a fresh generation on the machine that wrote it.

    Args:
        num_samples: number of lines. Defaults to 1000.
        seed: generator seed (int or tuple); use one the training set does not. Defaults
            to 1 (`SyntheticText` defaults to 0).
        charset, min_length, max_length, height, width, augment: as `SyntheticText`.
        cache: read/write the cache. Defaults to True.
    """
    lines = SyntheticText(num_samples, 256, charset, min_length, max_length, height, width,
                          seed, augment)
    key = json.dumps({"version": GENERATOR_VERSION, "n": lines.num_samples,
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


def read_line_image(path, height=HEIGHT, width=None) -> np.ndarray:
    """An image file -> uint8 (height, w) grey, aspect kept; squeezed to `width` if wider."""
    from PIL import Image

    image = read_image(path, "L")  # DataError naming a bad file; warns if truncated
    w = max(1, round(image.width * height / image.height))
    if width is not None:
        w = min(w, int(width))
    return np.asarray(image.resize((w, height), Image.BILINEAR), np.uint8)


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
        height: image height. Defaults to 32.
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
    return TextLines(x, y, folder.texts, folder.charset)
