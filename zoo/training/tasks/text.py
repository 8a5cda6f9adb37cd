"""The text task: CTC recognizers (CRNN) on synthetic lines, a folder of labelled crops, or
text boxes annotated in whole images.

    python -m zoo.train --model crnn_small --dataset synth_text \
        --epochs 18 --train-limit 12800 --batch-size 32 --learning-rate 2e-3
    python -m zoo.train --model crnn_small --dataset folder:PATH ...
    python -m zoo.train --model crnn --dataset folder:PATH,labels.csv ...
    python -m zoo.train --model crnn_small --dataset boxes:PATH --image-height 48 ...

Line height (`--image-height`, option `image_height`; by default 32 px for synth_text and 48
px for real crops, the best of 32 / 48 / 64 on real plates): every split is made at
that height and the model is built for it (`input_shape=(H, None, 1)`, H a multiple of 16
from 32 up). A whole crop (a number plate with its border and a margin) at 32 px leaves
its characters only about half the line high (~16 px); 48 or 64 gives them more pixels.
Synthetic lines keep their aspect ratio: 4·H px wide (128 at 32 px), T = H - 1 frames.
`--augment-lines` perturbs each real training crop anew every epoch
(`zoo.datasets.line_augment`: shear, rotation, scale, shift, contrast, blur, noise).
`--plate-fraction F` draws that share of the synthetic samples as number-plate crops
(`zoo.datasets.synthetic_plates`; needs `--charset upper` or `full`).
`--synthetic-share S` (real data) appends freshly rendered synthetic lines to every batch
of real crops, S of the batch (`zoo.datasets.line_mix`; stream seeded (seed, 3), plates
among them with `--plate-fraction`), so that fine-tuning on a few dozen crops keeps
training on the synthetic task too.

Data (`TextData`):

- `synth_text`: seeded synthetic lines of `zoo.datasets.text` (4-10 characters of the 36
  lowercase alphanumerics, 32 x 128 px at the default height, T = 31 frames). Training
  reads a stream of
  `SyntheticText` lines seeded (seed, 0), **new lines every epoch**: epoch e gets lines
  e·N ... (e+1)·N - 1, N = `train_limit` (default 20,000) rounded up to whole batches. The
  generator renders every batch anyway (even a fixed set is re-rendered each epoch), so
  fresh lines cost nothing and the model never sees a line twice. Validation:
  round(validation_split · N) fixed lines seeded (seed, 1); test: `test_limit` (default
  2,000) fixed lines seeded (seed, 2), both `synthetic_text_set` (cached on disk). The three
  seeds differ in their second entry, so no line of one split comes from another's random
  stream.
- `folder:PATH` or `folder:PATH,labels.csv`: a user's labelled crops (`read_labels`: a
  `labels.csv` of `filename,text` rows, or the text in each file name). The charset is the
  default 36 characters when they cover every label (a model that reads the synthetic
  text too), else the sorted characters of the labels. Crops are read once
  (`load_text_folder`), padded to the widest crop rounded up to 16 px (one width: one
  compiled step), and split by a permutation seeded with `seed`: 10 % test (at most
  `test_limit`), `validation_split` validation, the rest training (at most `train_limit`).
- `boxes:PATH`: text boxes annotated in whole images, the OpenALPR benchmark format (a
  `NAME.txt` of `file x y w h TEXT` lines next to each `NAME.jpg`;
  `zoo.datasets.text.load_text_boxes`): each box is cut out with 10 % of its height as a
  margin on each side, then treated as a folder crop: the same charset rule, padding and
  seeded split (`split_lines`).
- With `--test-dataset SPEC` (`config.test_dataset`) on `folder:` or `boxes:` data, the run
  keeps no test split of its own: SPEC's lines are the test lines (a user's held-out
  photos), and all of `--dataset` is training and validation.

Model: `zoo.create_model(config.model, charset=charset, input_shape=(H, None, 1))`, so the
saved model carries its vocabulary and its height. Optimiser: Adam with cosine decay over
the run, as every task. Expect the usual CTC plateau first: for some 500-1000 steps the
model emits only blanks (loss near 27, CER 1.0) before the loss falls; a run much shorter
than that (or whose cosine schedule has already decayed by then) ends inside it.
crnn_small reads ~175 lines/s with batch 32 on 2 CPU cores (32-px lines).

Loss: `losses.CTCLoss(zero_infinity=True)`. A label that needs more frames than the image
gives (L + adjacent repeats > T, e.g. a long text on a narrow crop) has no alignment and a
loss of +inf; one such sample makes the batch mean +inf and the weights NaN at the next
step. With `zero_infinity` it contributes 0 (and no gradient) instead, the
`ctc_infeasible` column of history.csv counts such samples per epoch, and the run counts
them in each split before training and warns. On `synth_text` every label is feasible
(31 frames >= the 2·10 + 1 that the worst 10-character label needs).

The run folder receives `model.keras`, `history.csv` (loss, CER, sequence accuracy,
infeasible count; train and validation), `metrics.json` (test CER and sequence accuracy
with greedy AND beam decoding, decoding times, wall time, samples/s, parameters, data
sizes, charset, versions, seed, config), `curves.png`, `gallery.png` (test lines with what
was read, mistakes in red) and, on the TensorFlow backend, `recognizer/` (a SavedModel
whose `serve(images)` returns strings, `zoo.models.crnn.export_recognizer`). While training,
`backup/` holds the last completed epoch; `--resume` continues from it (the synthetic
stream continues at the resumed epoch's lines).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from losses.sequence import CTCInfeasibleCount, CTCLoss, min_frames
from zoo.charset import Charset
from zoo.models.crnn import (POLARITIES, check_height, crnn_frames, decode_either_polarity,
                             decode_logits, export_recognizer, polarity_logits)
from zoo.datasets.line_augment import AugmentedLines, EpochOf
from zoo.datasets.label_checks import check_sequence_labels
from zoo.datasets.line_mix import MixedLines
from zoo.datasets.text import (BOX_MARGIN, SyntheticText, TextLines, load_text_boxes,
                               load_text_folder, read_labels, read_text_boxes,
                               synthetic_text_set)
from zoo.evaluation.plots import plot_text_gallery, plot_text_history
from zoo.registry import create_model
from zoo.training.config import ConfigError
from zoo.training.optimizers import make_optimizer
from zoo.training.run_folder import read_history
from zoo.training.tasks.base import Option, Prepared, Task
from zoo.evaluation.text import (CharacterErrorRate, SequenceAccuracy, character_error_rate,
                              sequence_accuracy)

TEXT_LOSSES = ("ctc",)
SYNTH_TEXT = "synth_text"
FOLDER_PREFIX = "folder:"
BOXES_PREFIX = "boxes:"
DATASET_HELP = (f"{SYNTH_TEXT}, {FOLDER_PREFIX}PATH, {FOLDER_PREFIX}PATH,labels.csv or "
                f"{BOXES_PREFIX}PATH")
DEFAULT_TRAIN_SAMPLES = 20_000  # synthetic lines per epoch
DEFAULT_TEST_SAMPLES = 2_000
FOLDER_TEST_FRACTION = 0.1
BEAM_WIDTH = 10  # TF's CPU beam search costs ~4 ms per line at width 10, ~50 ms at 100
IMAGE_HEIGHT = 32  # the default height of synthetic lines (the CRNN paper's)
# The default height of real crops, chosen on real photos: the shipped plate reader adapted to
# 32, 48 and 64 px with the same budget, then fine-tuned, read held-out plates of 3-fold
# cross-validation on the training photos at CER 4.35 %, 3.68 % and 4.52 %
# (benchmarks/transfer_recipe.py, results/transfer_recipe.json, rows h32 / h48 / h64).
REAL_IMAGE_HEIGHT = 48
EVAL_BATCH_SIZE = 256
# second entry of the synthetic seeds (config.seed, stream): one random stream per split
TRAIN_STREAM, VALIDATION_STREAM, TEST_STREAM, MIX_STREAM = 0, 1, 2, 3
MIX_SAMPLES = 1_000_000  # synthetic lines that --synthetic-share draws from, in turn


def parse_text_dataset(spec: str):
    """`synth_text` -> ("synth_text", None, None); `folder:PATH[,labels.csv]` ->
    ("folder", Path(PATH), "auto" or the CSV name); `boxes:PATH` -> ("boxes", Path(PATH),
    None). Anything else raises ValueError."""
    if spec == SYNTH_TEXT:
        return SYNTH_TEXT, None, None
    if isinstance(spec, str) and spec.startswith(BOXES_PREFIX):
        root = spec[len(BOXES_PREFIX):]
        if not root.strip():
            raise ValueError(f"dataset {spec!r} names no folder; use {BOXES_PREFIX}PATH (images "
                             f"with a NAME.txt of 'file x y w h TEXT' lines next to each)")
        return "boxes", Path(root), None
    if isinstance(spec, str) and spec.startswith(FOLDER_PREFIX):
        rest = spec[len(FOLDER_PREFIX):]
        root, labels = rest, "auto"
        head, comma, tail = rest.rpartition(",")
        if comma and tail.strip().lower().endswith(".csv"):
            root, labels = head, tail.strip()
        if not root.strip():
            raise ValueError(f"dataset {spec!r} names no folder; use {FOLDER_PREFIX}PATH or "
                             f"{FOLDER_PREFIX}PATH,labels.csv")
        return "folder", Path(root), labels
    raise ValueError(f"unknown text dataset {spec!r}; known: {DATASET_HELP}")


# ------------------------------------------------------------------ data

class SyntheticTextStream(SyntheticText):
    """`SyntheticText` read as one stream over the whole fit: new lines every epoch.

    Holds `epochs` × `steps_per_epoch` batches; epoch e of a fit reads batches
    e·steps_per_epoch ... (e+1)·steps_per_epoch - 1. Fit it with
    `steps_per_epoch=stream.steps_per_epoch` (Keras then keeps one iterator across the
    epochs), `shuffle=False` (Keras would shuffle the batches of the whole stream; the
    lines are random anyway) and `StreamPosition(stream)` among the callbacks (a resumed
    fit then starts at its first epoch's batches, not at the start of the stream).

    Args:
        samples_per_epoch: lines per epoch, rounded up to whole batches.
        epochs: epochs of the fit.
        batch_size: lines per batch. Defaults to 32.
        **kwargs: `SyntheticText` arguments (charset, lengths, size, seed, ...).
    """

    def __init__(self, samples_per_epoch, epochs, batch_size=32, **kwargs):
        if int(samples_per_epoch) < 1 or int(epochs) < 1 or int(batch_size) < 1:
            raise ValueError(f"samples_per_epoch, epochs and batch_size must be >= 1; got "
                             f"{samples_per_epoch}, {epochs}, {batch_size}")
        self.steps_per_epoch = math.ceil(int(samples_per_epoch) / int(batch_size))
        super().__init__(num_samples=self.steps_per_epoch * int(batch_size) * int(epochs),
                         batch_size=batch_size, **kwargs)
        self.start_batch = 0

    @property
    def samples_per_epoch(self) -> int:
        return self.steps_per_epoch * self.batch_size

    def __getitem__(self, index):
        return super().__getitem__((self.start_batch + index) % len(self))


class StreamPosition(keras.callbacks.Callback):
    """Points a `SyntheticTextStream` at the first epoch that a fit actually trains.

    `keras.callbacks.BackupAndRestore` (placed before this callback) makes a resumed fit
    begin at epoch k > 0; Keras creates the data iterator after the first
    `on_epoch_begin`, so setting `start_batch` there is in time. Later epochs continue the
    same iterator.
    """

    def __init__(self, stream: SyntheticTextStream):
        super().__init__()
        self.stream = stream
        self._placed = False

    def on_train_begin(self, logs=None):
        self._placed = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self._placed:
            self.stream.start_batch = epoch * self.stream.steps_per_epoch
            self._placed = True


@dataclass
class TextData:
    """Training data (a stream or fixed lines), validation and test lines, and their facts."""

    train: object  # SyntheticTextStream or TextLines
    validation: TextLines | None
    test: TextLines
    charset: Charset
    width: int
    steps_per_epoch: int
    samples_per_epoch: int
    info: dict


def _subset(lines: TextLines, indices) -> TextLines:
    indices = np.asarray(indices, np.int64)
    names = tuple(lines.names[i] for i in indices) if lines.names else ()
    return TextLines(lines.x[indices], lines.y[indices],
                     tuple(lines.texts[i] for i in indices), lines.charset, names)


def named_charset(config) -> Charset | None:
    """The `charset` option's `Charset` (zoo.charset.CHARSETS), or None when not given."""
    from zoo.charset import CHARSETS

    name = config.options.get("charset")
    return None if name is None else Charset(CHARSETS[name])


def image_height(config) -> int:
    """The line height of a run: its `image_height` option; by default 32 px for synth_text
    and 48 px for real crops (folder:, boxes:), see `REAL_IMAGE_HEIGHT`."""
    chosen = config.options.get("image_height")
    if chosen is not None:
        return int(chosen)
    synthetic = parse_text_dataset(config.dataset or SYNTH_TEXT)[0] == SYNTH_TEXT
    return IMAGE_HEIGHT if synthetic else REAL_IMAGE_HEIGHT


def infeasible_count(labels, frames: int) -> int:
    """Labels (B, L) padded with -1 that need more than `frames` frames (L + repeats)."""
    if len(labels) == 0:
        return 0
    needed = keras.ops.convert_to_numpy(min_frames(np.asarray(labels, np.int32)))
    return int(np.sum(needed > int(frames)))


def synthetic_data(config) -> TextData:
    """The `synth_text` splits: a training stream and fixed validation / test sets, all
    `image_height(config)` px high and 4 times as wide."""
    per_epoch = int(config.train_limit or DEFAULT_TRAIN_SAMPLES)
    height = image_height(config)
    charset = named_charset(config) or Charset()
    plates = float(config.options.get("plate_fraction", 0.0))
    train = SyntheticTextStream(per_epoch, config.epochs, config.batch_size,
                                seed=(config.seed, TRAIN_STREAM), height=height,
                                charset=charset, plate_fraction=plates)
    n_validation = int(round(config.validation_split * train.samples_per_epoch))
    validation = (synthetic_text_set(n_validation, seed=(config.seed, VALIDATION_STREAM),
                                     charset=charset, height=height, width=train.width,
                                     plate_fraction=plates)
                  if n_validation > 0 else None)
    test = synthetic_text_set(int(config.test_limit or DEFAULT_TEST_SAMPLES),
                              seed=(config.seed, TEST_STREAM), charset=charset,
                              height=height, width=train.width, plate_fraction=plates)
    info = {"source": SYNTH_TEXT, "train_lines_per_epoch": train.samples_per_epoch,
            "train_lines_total": train.num_samples,
            "validation_lines": n_validation, "test_lines": len(test),
            "lengths": [train.min_length, train.max_length], "plate_fraction": plates,
            "seeds": {"train": [config.seed, TRAIN_STREAM],
                      "validation": [config.seed, VALIDATION_STREAM],
                      "test": [config.seed, TEST_STREAM]},
            "new_lines_every_epoch": True}
    return TextData(train, validation, test, train.charset, train.width,
                    train.steps_per_epoch, train.samples_per_epoch, info)


def folder_charset(texts) -> Charset:
    """The default 36 characters if they cover every text, else the texts' own characters."""
    default = Charset()
    if all(character in default for text in texts for character in text):
        return default
    return Charset.from_texts(texts)


def split_lines(config, lines: TextLines, source, info=None,
                test_fraction=FOLDER_TEST_FRACTION) -> TextData:
    """Fixed lines split by a permutation seeded with `config.seed`: 10 % test (at most
    `test_limit`), `validation_split` validation, the rest training (at most `train_limit`).

    The split of every dataset of real lines (`folder:`, `boxes:`), so they split alike.

    Args:
        config: the run's `TrainConfig` (seed, validation_split, limits, batch_size).
        lines: all the lines, padded to one width.
        source: the folder they came from (named in errors and in `info["source"]`).
        info: more facts for metrics.json. Defaults to None.
        test_fraction: the share held out as test lines; 0 keeps none (the returned
            `test` is then None: the caller supplies the test lines). Defaults to 0.1.
    """
    n = len(lines)
    n_test = max(1, int(round(test_fraction * n))) if test_fraction > 0 else 0
    n_validation = (max(1, int(round(config.validation_split * n)))
                    if config.validation_split > 0 else 0)
    if n - n_test - n_validation < 1:
        raise ValueError(f"{source} holds {n} labelled crops: too few for {n_test} test, "
                         f"{n_validation} validation and at least 1 training crop")
    order = np.random.default_rng(config.seed).permutation(n)
    test_indices = order[:n_test][:config.test_limit or None]
    validation_indices = order[n_test:n_test + n_validation]
    train_indices = order[n_test + n_validation:][:config.train_limit or None]
    train = _subset(lines, np.sort(train_indices))
    validation = _subset(lines, np.sort(validation_indices)) if n_validation else None
    test = _subset(lines, np.sort(test_indices)) if n_test else None
    width = int(lines.x.shape[2])
    info = {"source": str(source), **(info or {}), "crops": n, "train_lines": len(train),
            "validation_lines": len(validation) if validation else 0,
            "test_lines": len(test) if test else 0, "split_seed": config.seed,
            "test_fraction": test_fraction, "new_lines_every_epoch": False}
    steps = math.ceil(len(train) / config.batch_size)
    return TextData(train, validation, test, lines.charset, width, steps, len(train), info)


def folder_data(config, root: Path, labels="auto") -> TextData:
    """A folder of labelled crops split into training, validation and test lines."""
    pairs = read_labels(root, labels)
    charset = named_charset(config) or folder_charset([text for _, text in pairs])
    lines = load_text_folder(root, charset=charset, labels=labels,
                             height=image_height(config))
    return split_lines(config, lines, root, {"labels": labels}, _own_test_fraction(config))


def boxes_data(config, root: Path) -> TextData:
    """Text boxes annotated in a folder of images (`load_text_boxes`), cut out with the
    default margin and split like a folder of crops."""
    charset = named_charset(config) or folder_charset(
        [box.text for box in read_text_boxes(root)])
    lines = load_text_boxes(root, charset=charset, height=image_height(config))
    return split_lines(config, lines, root, {"format": "file x y w h TEXT",
                                             "margin": BOX_MARGIN}, _own_test_fraction(config))


def _own_test_fraction(config) -> float:
    """10 % of a real dataset held out as test lines, none when `--test-dataset` names
    the test lines (a user's own held-out set: then all the data trains or validates)."""
    return 0.0 if config.test_dataset else FOLDER_TEST_FRACTION


def load_test_lines(config, spec, charset: Charset, height: int) -> TextLines:
    """All the lines of dataset `spec` read with `charset` at `height` px (a test set)."""
    kind, root, labels = parse_text_dataset(spec)
    if kind == SYNTH_TEXT:
        return synthetic_text_set(int(config.test_limit or DEFAULT_TEST_SAMPLES),
                                  seed=(config.seed, TEST_STREAM), charset=charset,
                                  height=height, width=4 * height,
                                  plate_fraction=float(config.options.get("plate_fraction",
                                                                          0.0)))
    if kind == "boxes":
        return load_text_boxes(root, charset=charset, height=height)
    test = load_text_folder(root, charset=charset, labels=labels, height=height)
    if config.test_limit:
        test = _subset(test, np.arange(min(config.test_limit, len(test))))
    return test


def load_text_data(config) -> TextData:
    """The splits named by `config.dataset` (see the module docstring)."""
    kind, root, labels = parse_text_dataset(config.dataset)
    if kind == SYNTH_TEXT:
        data = synthetic_data(config)
    elif kind == "boxes":
        data = boxes_data(config, root)
    else:
        data = folder_data(config, root, labels)
    if data.test is None:  # real data with --test-dataset: that is the test split
        data.test = load_test_lines(config, config.test_dataset, data.charset,
                                    image_height(config))
        data.info.update(test_source=config.test_dataset, test_lines=len(data.test))
    frames = crnn_frames(data.width)
    counts = {"frames": frames}
    named = {"validation": data.validation, "test": data.test}
    if isinstance(data.train, TextLines):
        named["train"] = data.train
    for name, split in named.items():
        counts[f"{name}_infeasible"] = (infeasible_count(split.y, crnn_frames(split.x.shape[2]))
                                        if split else 0)
    for name, split in named.items():  # once here: XLA-compiled steps drop the assertions
        if split:
            check_sequence_labels(split.y, data.charset.num_classes, name)
    bad = {k: v for k, v in counts.items() if k.endswith("_infeasible") and v}
    if bad:
        warnings.warn(f"{bad} labels need more than the {frames} frames of {data.width}-px-"
                      f"wide images (L + adjacent repeats > T): CTC cannot align them, so "
                      f"they train with loss 0 and are always misread; widen the crops or "
                      f"shorten the labels", RuntimeWarning, stacklevel=2)
    data.info.update(height=image_height(config), width=data.width, **counts)
    return data


# ------------------------------------------------------------------ model

def compile_text_model(model: keras.Model, config, steps_per_epoch: int) -> keras.Model:
    """CTC loss (zero_infinity), Adam with cosine decay, CER / sequence accuracy /
    infeasible-count metrics (greedy decoding inside the compiled step)."""
    model.compile(optimizer=make_optimizer(config.learning_rate,
                                           config.epochs * steps_per_epoch),
                  loss=CTCLoss(zero_infinity=True),
                  metrics=[CharacterErrorRate(), SequenceAccuracy(), CTCInfeasibleCount()])
    return model


def read_lines(model, images, charset: Charset, strategy="greedy", beam_width=BEAM_WIDTH,
               logits=None, polarity="upright", inverted_logits=None):
    """Texts read from `images` (or from precomputed `logits`) and the decoding seconds.

    `polarity` "either" reads every line twice, as given and inverted (1 − x: light text on
    a dark ground becomes dark on light), and keeps the read of the higher log-probability
    (`zoo.models.crnn.decode_either_polarity`); `logits` and `inverted_logits` (the logits
    of 1 − images), when already computed, are not predicted again
    (`zoo.models.crnn.polarity_logits`).
    """
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}; got {polarity!r}")
    if polarity == "either":
        both = polarity_logits(model, images, EVAL_BATCH_SIZE, logits, inverted_logits)
        started = time.perf_counter()
        ids = decode_either_polarity(*both, strategy, beam_width)
        return charset.decode_batch(ids), time.perf_counter() - started
    if logits is None:
        logits = model.predict(images, batch_size=EVAL_BATCH_SIZE, verbose=0)
    started = time.perf_counter()
    ids = keras.ops.convert_to_numpy(decode_logits(logits, strategy, beam_width))
    texts = charset.decode_batch(ids)
    return texts, time.perf_counter() - started


def evaluate_text(model, test: TextLines, beam_width=BEAM_WIDTH, polarity="upright") -> dict:
    """Test loss, and CER / sequence accuracy of greedy and beam decoding, with timings.

    `predictions` holds the greedy texts (for the gallery). `in_graph` holds Keras's
    compiled metrics on the same lines: `in_graph["cer"]` equals the greedy CER. `polarity`
    "either" adds the decodings "greedy_either" and "beam_either": each line read as given
    and inverted, the likelier read kept (`read_lines`).
    """
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}; got {polarity!r}")
    in_graph = model.evaluate(test.x, test.y, batch_size=EVAL_BATCH_SIZE, verbose=0,
                              return_dict=True)
    started = time.perf_counter()
    logits = model.predict(test.x, batch_size=EVAL_BATCH_SIZE, verbose=0)
    predict_seconds = time.perf_counter() - started
    result = {"in_graph": {k: float(v) for k, v in in_graph.items()},
              "predict_ms_per_line": 1000 * predict_seconds / len(test), "decoding": {}}
    readings = [(strategy, strategy, {}) for strategy in ("greedy", "beam")]
    if polarity == "either":
        _, inverted_logits = polarity_logits(model, test.x, EVAL_BATCH_SIZE, logits)
        readings += [(f"{strategy}_either", strategy,
                      {"polarity": "either", "inverted_logits": inverted_logits})
                     for strategy in ("greedy", "beam")]
    for name, strategy, how in readings:
        texts, seconds = read_lines(model, None, test.charset, strategy, beam_width, logits,
                                    **how)
        result["decoding"][name] = {
            "cer": character_error_rate(test.texts, texts),
            "sequence_accuracy": sequence_accuracy(test.texts, texts),
            "decode_seconds": seconds, "decode_ms_per_line": 1000 * seconds / len(test),
            **({"beam_width": int(beam_width)} if strategy == "beam" else {})}
        if name == "greedy":
            result["predictions"] = texts
    return result


# ------------------------------------------------------------------ the task

class TextTask(Task):
    name = "text"
    default_dataset = SYNTH_TEXT
    dataset_forms = (SYNTH_TEXT, f"{FOLDER_PREFIX}PATH[,labels.csv]", f"{BOXES_PREFIX}PATH")
    default_loss = "ctc"
    options = {"beam_width": Option(BEAM_WIDTH, "text: beam width of the beam-search "
                                    "decoding scored on the test lines", type=int),
               "image_height": Option(None, "text: height in pixels of the text lines and "
                                      "of the model's input, a multiple of 16 from 32 up "
                                      f"(None: {IMAGE_HEIGHT} for synth_text, "
                                      f"{REAL_IMAGE_HEIGHT} for folder: and boxes: crops, "
                                      "the best of 32/48/64 on real plates)", type=int),
               "charset": Option(None, "text: the characters the model reads: lower "
                                 "(digits + a-z), upper (digits + A-Z), full (digits, both "
                                 "cases, -.,:/'&()#+); default lower for synth_text, else the "
                                 "labels' own", type=str, choices=("lower", "upper", "full")),
               "augment_lines": Option(False, "text: each epoch, perturb every real "
                                       "training crop a little (shear, rotation, scale, "
                                       "shift, contrast, blur, noise); folder: and boxes: "
                                       "data"),
               "invert_lines": Option(0.0, "text: share of the real training crops "
                                      "(folder: and boxes: data) served inverted, light on "
                                      "dark, each epoch, 0-1 (0: none); for crops of one "
                                      "polarity when text of the other is to be read too",
                                      type=float),
               "plate_fraction": Option(0.0, "text: share of the synthetic samples "
                                        "(synth_text, or those of --synthetic-share) drawn "
                                        "as number-plate crops (border, band, separators, "
                                        "surroundings; 5-8 capitals and digits) instead of "
                                        "plain lines, 0-1", type=float),
               "synthetic_share": Option(0.0, "text: share of every training batch of real "
                                         "crops (folder: and boxes: data) made of freshly "
                                         "rendered synthetic lines, 0-0.9 (0: none)",
                                         type=float),
               "read_polarity": Option("upright", "text: 'either' also scores every test "
                                       "line read as given and inverted, the likelier read "
                                       "kept (light-on-dark text; decodings greedy_either, "
                                       "beam_either)", type=str, choices=POLARITIES)}
    refuses = {
        "monitor_margins": "it measures class margins of an embedding; a text recognizer "
                           "has per-frame character logits, not classes of images",
        "embedding_dim": "a CRNN has no embedding layer of adjustable size",
        "data_dir": "the data is named by --dataset (synth_text, folder:PATH or "
                    "boxes:PATH)",
    }

    def losses(self):
        return list(TEXT_LOSSES)

    def share_option(self, config, name, high=1.0) -> float:
        """Option `name` as a float, refused outside [0, high]."""
        value = float(self.option(config, name))
        if not 0.0 <= value <= high:
            raise ConfigError(f"{name} must be in [0, {high:g}], got {value}")
        return value

    def check(self, config):
        super().check(config)
        if int(self.option(config, "beam_width")) < 1:
            raise ConfigError(f"beam_width must be >= 1, got {self.option(config, 'beam_width')}")
        if self.option(config, "read_polarity") not in POLARITIES:
            raise ConfigError(f"read_polarity must be one of {POLARITIES}, got "
                              f"{self.option(config, 'read_polarity')!r}")
        try:
            if self.option(config, "image_height") is not None:
                check_height(self.option(config, "image_height"))
        except (TypeError, ValueError) as error:
            raise ConfigError(f"image_height: {error}") from None
        try:
            kind = parse_text_dataset(config.dataset)[0]
        except ValueError as error:
            raise ConfigError(str(error)) from None
        fraction = self.share_option(config, "plate_fraction")
        share = self.share_option(config, "synthetic_share", high=0.9)
        if share > 0 and kind == SYNTH_TEXT:
            raise ConfigError("synthetic_share mixes synthetic lines into real crops; "
                              "synth_text is all synthetic already")
        if fraction > 0 and kind != SYNTH_TEXT and share == 0:
            raise ConfigError(f"plate_fraction applies to synthetic lines (synth_text, or "
                              f"those mixed in by --synthetic-share); {config.dataset!r} is "
                              f"read as it is")
        if self.share_option(config, "invert_lines") > 0 and kind == SYNTH_TEXT:
            raise ConfigError("invert_lines inverts real crops (folder: and boxes: data); "
                              "synth_text renders its own lines")
        if self.option(config, "augment_lines") and kind == SYNTH_TEXT:
            raise ConfigError("augment_lines perturbs real crops; synth_text draws new, "
                              "augmented lines every epoch already")
        # real data without --charset reads with its labels' characters: checked when drawn
        if fraction > 0 and (kind == SYNTH_TEXT or named_charset(config)) and (
                named_charset(config) or Charset()).characters.islower():
            raise ConfigError("plate_fraction draws capitals and digits: use --charset upper "
                              "or full")

    def prepare(self, config):
        data = load_text_data(config)
        model = create_model(config.model, charset=data.charset,
                             input_shape=(image_height(config), None, 1))
        compile_text_model(model, config, data.steps_per_epoch)
        return Prepared(data, model, data.samples_per_epoch, info=data.info)

    def fit(self, config, prepared, fitter):
        data, model = prepared.data, prepared.model
        if isinstance(data.train, SyntheticTextStream):
            fit_data = data.train
            # in order: Keras would otherwise shuffle the batches of the whole stream at once
            fit_kwargs = dict(steps_per_epoch=data.steps_per_epoch, shuffle=False)
            extra = [StreamPosition(data.train)]
        elif (self.option(config, "augment_lines") or self.option(config, "synthetic_share")
              or self.option(config, "invert_lines")):
            fit_data = AugmentedLines(data.train.x, data.train.y, config.batch_size,
                                      config.seed,
                                      perturb=bool(self.option(config, "augment_lines")),
                                      invert_share=float(self.option(config, "invert_lines")))
            share = float(self.option(config, "synthetic_share"))
            if share > 0:
                synthetic = SyntheticText(
                    MIX_SAMPLES, seed=(config.seed, MIX_STREAM), charset=data.charset,
                    height=image_height(config), width=data.width,
                    plate_fraction=float(self.option(config, "plate_fraction")))
                fit_data = MixedLines(fit_data, synthetic, share, config.batch_size)
            fit_kwargs = dict(shuffle=False)  # AugmentedLines shuffles, seeded per epoch
            extra = [EpochOf(fit_data)]
        else:
            fit_data = data.train.x
            fit_kwargs = dict(y=data.train.y, batch_size=config.batch_size, shuffle=True)
            extra = []
        validation = data.validation

        def fit(callbacks, epochs, initial_epoch=0):
            # StreamPosition after the backup: it reads the epoch the restored fit starts at
            model.fit(fit_data, epochs=epochs, initial_epoch=initial_epoch,
                      validation_data=(validation.x, validation.y) if validation else None,
                      validation_batch_size=EVAL_BATCH_SIZE, callbacks=callbacks + extra,
                      verbose=config.verbose, **fit_kwargs)

        return {"model": fitter.fit_stage("model", model, fit)}

    def evaluate(self, config, prepared, models, folder):
        data, model = prepared.data, models["model"]
        beam_width = int(self.option(config, "beam_width"))
        polarity = self.option(config, "read_polarity")
        evaluation = evaluate_text(model, data.test, beam_width, polarity)
        greedy, beam = evaluation["decoding"]["greedy"], evaluation["decoding"]["beam"]
        print(f"[losslab] test ({len(data.test)} lines): CER {greedy['cer']:.4f} greedy, "
              f"{beam['cer']:.4f} beam (width {beam_width}); sequence accuracy "
              f"{greedy['sequence_accuracy']:.4f} / {beam['sequence_accuracy']:.4f}",
              flush=True)
        if polarity == "either":
            either = evaluation["decoding"]["beam_either"]
            print(f"[losslab] read as given or inverted: CER "
                  f"{evaluation['decoding']['greedy_either']['cer']:.4f} greedy, "
                  f"{either['cer']:.4f} beam", flush=True)
        files = ["model.keras", "history.csv", "curves.png", "gallery.png"]
        export_seconds = None
        if keras.backend.backend() == "tensorflow":
            started = time.perf_counter()
            export_recognizer(model, folder.file("recognizer"))
            export_seconds = time.perf_counter() - started
            files.append("recognizer/")
        title = f"{config.model} · {config.dataset} · ctc"
        if folder.file("history.csv").exists():  # absent when scoring a trained model
            plot_text_history(read_history(folder.file("history.csv")),
                              folder.file("curves.png"), title)
        plot_text_gallery(data.test.x, data.test.texts, evaluation["predictions"],
                          folder.file("gallery.png"),
                          title=f"{title} · test CER {greedy['cer']:.4f} (greedy)")
        return {
            "test_cer": greedy["cer"],
            "test_sequence_accuracy": greedy["sequence_accuracy"],
            "test_cer_beam": beam["cer"],
            "test_sequence_accuracy_beam": beam["sequence_accuracy"],
            "beam_width": beam_width,
            "read_polarity": polarity,
            "test_loss": evaluation["in_graph"]["loss"],
            "test_in_graph_metrics": evaluation["in_graph"],
            "decoding": evaluation["decoding"],
            "predict_ms_per_line": evaluation["predict_ms_per_line"],
            "charset": data.charset.characters,
            "data": data.info,
            "loss": {"name": "CTCLoss", "zero_infinity": True, "blank": 0, "pad_value": -1},
            "export_seconds": export_seconds,
            "files": files,
        }

    def compile_for_scoring(self, config, model):
        return compile_text_model(model, config, 1)

    def test_data(self, config, spec, models):
        """All of `spec` as the test lines, read with the model's charset and height."""
        from zoo.models.crnn import charset_of

        model = models["model"]
        charset = charset_of(model)
        height = int(model.input_shape[1])
        test = load_test_lines(config, spec, charset, height)
        data = TextData(None, None, test, charset, int(test.x.shape[2]), 0, 0,
                        {"source": spec, "test_lines": len(test)})
        return Prepared(data, model, 0, info=data.info)

    def summary(self, metrics):
        return (f"test CER {metrics['test_cer']:.4f}, sequence accuracy "
                f"{metrics['test_sequence_accuracy']:.4f} (greedy)")
