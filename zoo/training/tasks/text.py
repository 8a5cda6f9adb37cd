"""Training a CTC text recognizer (CRNN), the run behind

    python -m zoo.train --model crnn_small --dataset synth_text --loss ctc \
        --epochs 18 --train-limit 12800 --batch-size 32 --learning-rate 2e-3
    python -m zoo.train --model crnn_small --dataset folder:PATH --loss ctc ...
    python -m zoo.train --model crnn --dataset folder:PATH,labels.csv --loss ctc ...

From Python: `zoo.train.run(TrainConfig(model="crnn_small", dataset="synth_text",
loss="ctc"))` (or `zoo.text_train.run(config)`) returns the metrics dict.

Data (`TextData`):

- `synth_text`: seeded synthetic lines of `zoo.datasets.text` (4-10 characters of the 36
  lowercase alphanumerics, 32 x 128 px, T = 31 frames). Training reads a stream of
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

Model: `zoo.create_model(config.model, charset=charset)`, so the saved model carries its
vocabulary. Optimiser: Adam with cosine decay over the run, as `zoo.train`. Expect the usual
CTC plateau first: for some 500-1000 steps the model emits only blanks (loss near 27, CER
1.0) before the loss falls; a run much shorter than that (or whose cosine schedule has
already decayed by then) ends inside it. crnn_small reads ~175 lines/s with batch 32 on 2
CPU cores.

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
whose `serve(images)` returns strings, `zoo.crnn.export_recognizer`). While training,
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
from zoo.crnn import crnn_frames, decode_logits, export_recognizer
from zoo.datasets.text import (SyntheticText, TextLines, load_text_folder, read_labels,
                               synthetic_text_set)
from zoo.registry import create_model
from zoo.text_metrics import (CharacterErrorRate, SequenceAccuracy, character_error_rate,
                              sequence_accuracy)

TEXT_MODELS = ("crnn", "crnn_small")
TEXT_LOSSES = ("ctc",)
SYNTH_TEXT = "synth_text"
FOLDER_PREFIX = "folder:"
DATASET_HELP = f"{SYNTH_TEXT}, {FOLDER_PREFIX}PATH or {FOLDER_PREFIX}PATH,labels.csv"
DEFAULT_TRAIN_SAMPLES = 20_000  # synthetic lines per epoch
DEFAULT_TEST_SAMPLES = 2_000
FOLDER_TEST_FRACTION = 0.1
BEAM_WIDTH = 10  # TF's CPU beam search costs ~4 ms per line at width 10, ~50 ms at 100
GALLERY_SIZE = 24
EVAL_BATCH_SIZE = 256
# second entry of the synthetic seeds (config.seed, stream): one random stream per split
TRAIN_STREAM, VALIDATION_STREAM, TEST_STREAM = 0, 1, 2


def is_text_model(name) -> bool:
    """True for the CTC recognizers that `run` trains."""
    return name in TEXT_MODELS


def parse_text_dataset(spec: str):
    """`synth_text` -> ("synth_text", None, None); `folder:PATH[,labels.csv]` ->
    ("folder", Path(PATH), "auto" or the CSV name). Anything else raises ValueError."""
    if spec == SYNTH_TEXT:
        return SYNTH_TEXT, None, None
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


def config_error(config):
    """Why `config` cannot train a text model (a message), or None if it can."""
    if not is_text_model(config.model):
        return f"model {config.model!r} is not a text recognizer; known: {', '.join(TEXT_MODELS)}"
    if config.loss not in TEXT_LOSSES:
        return (f"text model {config.model!r} trains with --loss ctc (CTC over its per-frame "
                f"logits); got --loss {config.loss!r}")
    try:
        parse_text_dataset(config.dataset)
    except ValueError as error:
        return str(error)
    return None


def default_run_folder(config) -> str:
    """`config.out`, unless it is `zoo.train`'s default for a folder: dataset (which would
    hold the path and a ':'): then runs/<model>-folder-<folder name>-ctc."""
    dataset = str(config.dataset)
    if not dataset.startswith(FOLDER_PREFIX):
        return config.out
    if config.out != f"runs/{config.model}-{dataset}-{config.loss}":
        return config.out
    _, root, _ = parse_text_dataset(dataset)
    return f"runs/{config.model}-folder-{root.resolve().name or 'data'}-{config.loss}"


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
    return TextLines(lines.x[indices], lines.y[indices],
                     tuple(lines.texts[i] for i in indices), lines.charset)


def infeasible_count(labels, frames: int) -> int:
    """Labels (B, L) padded with -1 that need more than `frames` frames (L + repeats)."""
    if len(labels) == 0:
        return 0
    needed = keras.ops.convert_to_numpy(min_frames(np.asarray(labels, np.int32)))
    return int(np.sum(needed > int(frames)))


def synthetic_data(config) -> TextData:
    """The `synth_text` splits: a training stream and fixed validation / test sets."""
    per_epoch = int(config.train_limit or DEFAULT_TRAIN_SAMPLES)
    train = SyntheticTextStream(per_epoch, config.epochs, config.batch_size,
                                seed=(config.seed, TRAIN_STREAM))
    n_validation = int(round(config.validation_split * train.samples_per_epoch))
    validation = (synthetic_text_set(n_validation, seed=(config.seed, VALIDATION_STREAM))
                  if n_validation > 0 else None)
    test = synthetic_text_set(int(config.test_limit or DEFAULT_TEST_SAMPLES),
                              seed=(config.seed, TEST_STREAM))
    info = {"source": SYNTH_TEXT, "train_lines_per_epoch": train.samples_per_epoch,
            "train_lines_total": train.num_samples,
            "validation_lines": n_validation, "test_lines": len(test),
            "lengths": [train.min_length, train.max_length],
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


def folder_data(config, root: Path, labels="auto") -> TextData:
    """A folder of labelled crops split into training, validation and test lines."""
    pairs = read_labels(root, labels)
    charset = folder_charset([text for _, text in pairs])
    lines = load_text_folder(root, charset=charset, labels=labels)
    n = len(lines)
    n_test = max(1, int(round(FOLDER_TEST_FRACTION * n)))
    n_validation = (max(1, int(round(config.validation_split * n)))
                    if config.validation_split > 0 else 0)
    if n - n_test - n_validation < 1:
        raise ValueError(f"{root} holds {n} labelled crops: too few for {n_test} test, "
                         f"{n_validation} validation and at least 1 training crop")
    order = np.random.default_rng(config.seed).permutation(n)
    test_indices = order[:n_test][:config.test_limit or None]
    validation_indices = order[n_test:n_test + n_validation]
    train_indices = order[n_test + n_validation:][:config.train_limit or None]
    train = _subset(lines, np.sort(train_indices))
    validation = _subset(lines, np.sort(validation_indices)) if n_validation else None
    test = _subset(lines, np.sort(test_indices))
    width = int(lines.x.shape[2])
    info = {"source": str(root), "labels": labels, "crops": n, "train_lines": len(train),
            "validation_lines": len(validation) if validation else 0,
            "test_lines": len(test), "split_seed": config.seed,
            "test_fraction": FOLDER_TEST_FRACTION, "new_lines_every_epoch": False}
    steps = math.ceil(len(train) / config.batch_size)
    return TextData(train, validation, test, charset, width, steps, len(train), info)


def load_text_data(config) -> TextData:
    """The splits named by `config.dataset` (see the module docstring)."""
    kind, root, labels = parse_text_dataset(config.dataset)
    data = synthetic_data(config) if kind == SYNTH_TEXT else folder_data(config, root, labels)
    frames = crnn_frames(data.width)
    counts = {"frames": frames}
    named = {"validation": data.validation, "test": data.test}
    if isinstance(data.train, TextLines):
        named["train"] = data.train
    for name, split in named.items():
        counts[f"{name}_infeasible"] = infeasible_count(split.y, frames) if split else 0
    bad = {k: v for k, v in counts.items() if k.endswith("_infeasible") and v}
    if bad:
        warnings.warn(f"{bad} labels need more than the {frames} frames of {data.width}-px-"
                      f"wide images (L + adjacent repeats > T): CTC cannot align them, so "
                      f"they train with loss 0 and are always misread; widen the crops or "
                      f"shorten the labels", RuntimeWarning, stacklevel=2)
    data.info.update(width=data.width, **counts)
    return data


# ------------------------------------------------------------------ model

def compile_text_model(model: keras.Model, config, steps_per_epoch: int) -> keras.Model:
    """CTC loss (zero_infinity), Adam with cosine decay, CER / sequence accuracy /
    infeasible-count metrics (greedy decoding inside the compiled step)."""
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=max(1, config.epochs * steps_per_epoch))
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=CTCLoss(zero_infinity=True),
                  metrics=[CharacterErrorRate(), SequenceAccuracy(), CTCInfeasibleCount()])
    return model


def read_lines(model, images, charset: Charset, strategy="greedy", beam_width=BEAM_WIDTH,
               logits=None):
    """Texts read from `images` (or from precomputed `logits`) and the decoding seconds."""
    if logits is None:
        logits = model.predict(images, batch_size=EVAL_BATCH_SIZE, verbose=0)
    started = time.perf_counter()
    ids = keras.ops.convert_to_numpy(decode_logits(logits, strategy, beam_width))
    texts = charset.decode_batch(ids)
    return texts, time.perf_counter() - started


def evaluate_text(model, test: TextLines, beam_width=BEAM_WIDTH) -> dict:
    """Test loss, and CER / sequence accuracy of greedy and beam decoding, with timings.

    `predictions` holds the greedy texts (for the gallery). `in_graph` holds Keras's
    compiled metrics on the same lines: `in_graph["cer"]` equals the greedy CER.
    """
    in_graph = model.evaluate(test.x, test.y, batch_size=EVAL_BATCH_SIZE, verbose=0,
                              return_dict=True)
    started = time.perf_counter()
    logits = model.predict(test.x, batch_size=EVAL_BATCH_SIZE, verbose=0)
    predict_seconds = time.perf_counter() - started
    result = {"in_graph": {k: float(v) for k, v in in_graph.items()},
              "predict_ms_per_line": 1000 * predict_seconds / len(test), "decoding": {}}
    for strategy in ("greedy", "beam"):
        texts, seconds = read_lines(model, None, test.charset, strategy, beam_width, logits)
        result["decoding"][strategy] = {
            "cer": character_error_rate(test.texts, texts),
            "sequence_accuracy": sequence_accuracy(test.texts, texts),
            "decode_seconds": seconds, "decode_ms_per_line": 1000 * seconds / len(test),
            **({"beam_width": int(beam_width)} if strategy == "beam" else {})}
        if strategy == "greedy":
            result["predictions"] = texts
    return result


# ------------------------------------------------------------------ plots

def plot_text_history(history: dict, path, title: str = "") -> Path:
    """CTC loss, CER and sequence accuracy per epoch, train against validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [("loss", "CTC loss"), ("cer", "character error rate"),
              ("sequence_accuracy", "sequence accuracy")]
    panels = [(key, label) for key, label in panels if key in history]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        values = np.concatenate([history[key], history.get(f"val_{key}", [])])
        if key == "sequence_accuracy":
            ax.set_ylim(-0.02, 1.02)
        elif np.all(values > 0) and values.max() > 10 * values.min():
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", ylabel=label, title=label)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def gallery_indices(truths, predictions, size=GALLERY_SIZE) -> list:
    """Up to `size` indices: the mistakes (up to half of the grid) and the first lines."""
    mistakes = [i for i, (t, p) in enumerate(zip(truths, predictions)) if t != p]
    chosen = mistakes[:size // 2]
    for i in range(len(truths)):
        if len(chosen) >= size:
            break
        if i not in chosen:
            chosen.append(i)
    return sorted(chosen)


def plot_text_gallery(images, truths, predictions, path, title="", size=GALLERY_SIZE,
                      columns=4) -> Path:
    """A grid of text-line images titled with what was read; mistakes in red with the truth.

    Shows the mistakes (up to half the grid) and fills the rest with the first lines.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = gallery_indices(truths, predictions, size)
    rows = max(1, math.ceil(len(chosen) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.9 * columns, 1.25 * rows + 0.6),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), chosen):
        image = np.asarray(images[index])
        ax.imshow(image[..., 0] if image.ndim == 3 else image, cmap="gray", vmin=0, vmax=1,
                  aspect="auto")
        wrong = predictions[index] != truths[index]
        label = f"read '{predictions[index]}'"
        if wrong:
            label += f"\ntrue '{truths[index]}'"
        ax.set_title(label, fontsize=8, color="tab:red" if wrong else "black",
                     family="monospace")
    errors = sum(t != p for t, p in zip(truths, predictions))
    fig.suptitle(f"{title}\n{errors} of {len(truths)} test lines misread (red)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


# ------------------------------------------------------------------ the run

def run(config) -> dict:
    """Train a CTC recognizer, evaluate it, write the run folder; returns the metrics dict.

    Reads from `config` (a `zoo.train.TrainConfig`): model, dataset, loss ("ctc"), epochs,
    batch_size, learning_rate, seed, out, resume, validation_split, train_limit,
    test_limit, verbose, deterministic, callbacks; and, if present, beam_width (default
    `BEAM_WIDTH`). Raises ValueError for a model, loss or dataset that is not a text one.
    """
    from zoo.train import deterministic_ops

    problem = config_error(config)
    if problem:
        raise ValueError(problem)
    with deterministic_ops(getattr(config, "deterministic", True)):
        return _run(config)


def _run(config) -> dict:
    from zoo.train import (EpochTimer, _prepare_run_folder, read_history, seed_everything,
                           versions)

    out = Path(config.out)
    if _prepare_run_folder(out, config.resume):
        print(f"[losslab] {out} holds a completed run; nothing to resume.")
        return json.loads((out / "metrics.json").read_text())
    seed_everything(config.seed)
    data = load_text_data(config)
    beam_width = int(getattr(config, "beam_width", BEAM_WIDTH))

    model = create_model(config.model, charset=data.charset)
    compile_text_model(model, config, data.steps_per_epoch)
    timer = EpochTimer()
    callbacks = [keras.callbacks.BackupAndRestore(str(out / "backup"))]
    if isinstance(data.train, SyntheticTextStream):
        callbacks.append(StreamPosition(data.train))
        # in order: Keras would otherwise shuffle the batches of the whole stream at once
        fit_data = data.train
        fit_kwargs = dict(steps_per_epoch=data.steps_per_epoch, shuffle=False)
    else:
        fit_data = data.train.x
        fit_kwargs = dict(y=data.train.y, batch_size=config.batch_size, shuffle=True)
    callbacks += [keras.callbacks.CSVLogger(str(out / "history.csv"), append=config.resume),
                  timer, *getattr(config, "callbacks", [])]
    validation = data.validation
    started = time.perf_counter()
    model.fit(fit_data, epochs=config.epochs,
              validation_data=(validation.x, validation.y) if validation else None,
              validation_batch_size=EVAL_BATCH_SIZE, callbacks=callbacks,
              verbose=config.verbose, **fit_kwargs)
    wall_seconds = time.perf_counter() - started

    evaluation = evaluate_text(model, data.test, beam_width)
    greedy, beam = evaluation["decoding"]["greedy"], evaluation["decoding"]["beam"]
    print(f"[losslab] test ({len(data.test)} lines): CER {greedy['cer']:.4f} greedy, "
          f"{beam['cer']:.4f} beam (width {beam_width}); sequence accuracy "
          f"{greedy['sequence_accuracy']:.4f} / {beam['sequence_accuracy']:.4f}", flush=True)
    model.save(out / "model.keras")
    files = ["model.keras", "history.csv", "metrics.json", "curves.png", "gallery.png"]
    export_seconds = None
    if keras.backend.backend() == "tensorflow":
        export_started = time.perf_counter()
        export_recognizer(model, out / "recognizer")
        export_seconds = time.perf_counter() - export_started
        files.append("recognizer/")
    # the first timed epoch includes tracing; the median of the rest is the rate
    steady = timer.epoch_seconds[1:] or timer.epoch_seconds
    metrics = {
        "test_cer": greedy["cer"],
        "test_sequence_accuracy": greedy["sequence_accuracy"],
        "test_cer_beam": beam["cer"],
        "test_sequence_accuracy_beam": beam["sequence_accuracy"],
        "beam_width": beam_width,
        "test_loss": evaluation["in_graph"]["loss"],
        "test_in_graph_metrics": evaluation["in_graph"],
        "decoding": evaluation["decoding"],
        "predict_ms_per_line": evaluation["predict_ms_per_line"],
        "epochs_this_session": len(timer.epoch_seconds),
        "epoch_seconds": timer.epoch_seconds,
        "wall_seconds": wall_seconds,
        "train_samples_per_second": (data.samples_per_epoch / float(np.median(steady))
                                     if steady else None),
        "train_samples": data.samples_per_epoch,
        "parameters": model.count_params(),
        "charset": data.charset.characters,
        "data": data.info,
        "loss": {"name": "CTCLoss", "zero_infinity": True, "blank": 0, "pad_value": -1},
        "export_seconds": export_seconds,
        "files": files,
        "seed": config.seed,
        "versions": versions(),
        "config": config.to_json() if hasattr(config, "to_json") else dict(vars(config)),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    title = f"{config.model} · {config.dataset} · ctc"
    plot_text_history(read_history(out / "history.csv"), out / "curves.png", title)
    plot_text_gallery(data.test.x, data.test.texts, evaluation["predictions"],
                      out / "gallery.png",
                      title=f"{title} · test CER {greedy['cer']:.4f} (greedy)")
    return metrics
