"""CRNN text-line recognizer: convolutions -> map-to-sequence -> 2 BiLSTMs -> CTC logits.

Shi, Bai, Yao, "An End-to-End Trainable Neural Network for Image-based Sequence Recognition
and Its Application to Scene Text Recognition", TPAMI 2017 (arXiv:1507.05717), Table 1:

    input  32 x W grey image                      (variable W: input shape (32, None, 1))
    conv1  64 3x3 -> max-pool 2x2          16 x W/2
    conv2 128 3x3 -> max-pool 2x2           8 x W/4
    conv3 256 3x3, conv4 256 3x3 -> max-pool 2x1 (height only)   4 x W/4
    conv5 512 3x3 + BN, conv6 512 3x3 + BN -> max-pool 2x1       2 x W/4
    conv7 512 2x2 valid                      1 x (W/4 - 1)
    map-to-sequence: one 512-d feature vector per column, T = W // 4 - 1 frames
    BiLSTM 256 (+ linear join of both directions to 256), BiLSTM 256 (+ join to C)

Input height. The paper's lines are 32 px high; a whole crop (a number plate with its
border and a margin) resized to 32 px leaves its characters only about half of that, so the
height is a parameter:
`input_shape=(H, None, 1)` with H any multiple of 16 from 32 up (32, 48, 64, ...). Only the
last pooling adapts: pool6 takes H/16 rows at a time (2 for the paper's 32 px, 3 for 48, 4
for 64), so conv7 always sees 2 rows and leaves 1, a feature vector per column whose
receptive field spans the whole line height. No layer's weights depend on H: the parameter
count is the same at every height (weights trained at one height load at another) and the
32-px model is exactly the paper's. H must be a multiple of 16: three poolings halve it
and the last one divides it by H/16; any other height would lose its bottom rows to the
poolings' floor rounding.

The join after each BiLSTM is the authors' `BiRnnJoin` (bgshih/crnn): a linear map of the
concatenated directions; the second one is the transcription layer, so the model outputs
logits (B, T, C), C = len(charset) + 1, class `losses.sequence.BLANK_INDEX` = 0 the blank.
The paper's "1x2 windows" are pooled in height only (width kept); the authors' Torch code
pads them (T = W/4 + 1); here T = W // 4 - 1 (`crnn_frames`), 24 frames for the paper's
100-px-wide input, 31 for 128. Batch normalisation follows the paper's table (conv5, conv6;
the authors' code puts it after conv3, conv5, conv7), with momentum 0.9 (Torch's default,
the authors' framework; Keras's 0.99 lets the inference statistics lag far behind the
weights in short runs).

Parameters of `crnn` with the paper's 37 classes: 5,548,800 (convolutions) + 4,096 (two
BatchNorms, half of them non-trainable statistics) + 2,775,845 (BiLSTM 512->2x256:
1,574,912; join 131,328; BiLSTM 256->2x256: 1,050,624; logits 18,981) = 8,328,741
≈ the paper's 8.3 M. `crnn_small` (widths 16-32-64-64-128-128-128, BiLSTM 64) has 526,245
with 37 classes: a width for CPU training.

The vocabulary travels with the model: the logits layer (`CTCLogits`, named "logits") keeps
the charset in its config, so `model.save("m.keras")` / `keras.saving.load_model(...,
safe_mode=True)` round-trip it and `charset_of(model)` reads it back (import `zoo` or
`zoo.models.crnn` before loading, to register the layers).

    model = zoo.create_model("crnn_small", charset="0123456789")
    model.compile(loss=CTCLoss(zero_infinity=True), metrics=[CharacterErrorRate()])
    recognize(model, images)                     # ['3141', '59', ...]
    reader = build_inference_model(model)        # images -> ids (B, T), -1 padded
    export_recognizer(model, "reader/")          # TF SavedModel: images -> strings
"""

from __future__ import annotations

import numpy as np

import keras
from keras import layers
from losses.sequence import PAD_VALUE, ctc_beam_decode, ctc_greedy_decode
from zoo.charset import LOWERCASE_ALPHANUMERIC, Charset
from zoo.registry import register_model

PAPER_FILTERS = (64, 128, 256, 256, 512, 512, 512)
SMALL_FILTERS = (16, 32, 64, 64, 128, 128, 128)
# after which convolution (0-based) a max-pool follows, and its (height, width) window; the
# last one (after conv6) is (H / 16, 1): see `_pool_windows`
_POOLS = {0: (2, 2), 1: (2, 2), 3: (2, 1), 5: (2, 1)}
_BATCH_NORM = (4, 5)
STRATEGIES = ("greedy", "beam")
POLARITIES = ("upright", "either")  # recognize: lines as given, or also inverted
MIN_HEIGHT = 32
HEIGHT_MULTIPLE = 16


def crnn_frames(width: int) -> int:
    """Frames T of a CRNN's output for an input `width` (both widths): W // 4 - 1."""
    return int(width) // 4 - 1


def _charset_or_none(charset):
    if charset is None or isinstance(charset, Charset):
        return charset
    if isinstance(charset, dict):
        return Charset.from_config(charset)
    return Charset(charset)


@keras.saving.register_keras_serializable(package="losslab")
class CTCLogits(layers.Dense):
    """Per-frame CTC logits over a charset plus the blank; keeps the charset in its config.

    Formula:
        logits[t] = W·x[t] + b,   C = len(charset) + 1 outputs, class 0 = blank

    A `keras.layers.Dense` whose config also holds the characters, so a saved model carries
    its vocabulary (`charset_of(model)`). Built from `units` alone it has no charset.

    Args:
        units: number of classes C. Defaults to None (`len(charset) + 1`).
        charset: a `Charset`, a string of characters, or a Charset config. Defaults to None.
        **kwargs: `keras.layers.Dense` arguments (name, dtype, initializers, ...).

    Reference: Shi, Bai, Yao, "An End-to-End Trainable Neural Network for Image-based
    Sequence Recognition", TPAMI 2017, §2.3 (transcription).
    """

    def __init__(self, units=None, charset=None, **kwargs):
        charset = _charset_or_none(charset)
        if units is None:
            if charset is None:
                raise ValueError("CTCLogits needs units (the number of classes) or a charset")
            units = charset.num_classes
        if charset is not None and int(units) != charset.num_classes:
            raise ValueError(f"units={units} does not match the charset: {len(charset)} "
                             f"characters + the blank = {charset.num_classes} classes")
        super().__init__(int(units), **kwargs)
        self.charset = charset

    def get_config(self):
        charset = None if self.charset is None else self.charset.characters
        return {**super().get_config(), "charset": charset}


@keras.saving.register_keras_serializable(package="losslab")
class CTCDecoder(layers.Layer):
    """CTC logits (B, T, C) -> decoded ids (B, T) int32, padded at the end with -1.

    Formula:
        greedy: ids = 𝓑(argmax_k logits[t, k])      beam: ids ≈ argmax_l p(l | logits)
    with 𝓑 merging repeats and removing the blank 0 (`losses.sequence` decoders).

    Args:
        strategy: "greedy" (best path) or "beam" (prefix beam search). Defaults to "greedy".
        beam_width: prefixes kept per step by the beam search. Defaults to 100.
        **kwargs: layer arguments (name, ...).

    Reference: Graves et al., "Connectionist Temporal Classification", ICML 2006, §3.2.
    """

    def __init__(self, strategy="greedy", beam_width=100, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}")
        if int(beam_width) < 1:
            raise ValueError(f"beam_width must be >= 1; got {beam_width}")
        self.strategy = strategy
        self.beam_width = int(beam_width)

    def call(self, logits):
        return decode_logits(logits, self.strategy, self.beam_width)

    def compute_output_spec(self, logits):
        return keras.KerasTensor(tuple(logits.shape[:2]), dtype="int32")

    def get_config(self):
        return {**super().get_config(), "strategy": self.strategy,
                "beam_width": self.beam_width}


def decode_logits(logits, strategy="greedy", beam_width=100):
    """CTC logits (B, T, C) -> ids (B, T) int32 padded with -1, by `strategy`.

    Args:
        logits: per-frame logits, blank = class 0.
        strategy: "greedy" or "beam". Defaults to "greedy".
        beam_width: beam width of the "beam" strategy. Defaults to 100.
    """
    if strategy == "greedy":
        ids, _ = ctc_greedy_decode(logits, pad_value=PAD_VALUE)
        return ids
    if strategy == "beam":
        ids, _, _ = ctc_beam_decode(logits, beam_width=beam_width, top_paths=1,
                                    pad_value=PAD_VALUE)
        return ids[:, 0]
    raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}")


def decode_logits_scored(logits, strategy="greedy", beam_width=100):
    """CTC logits (B, T, C) -> (ids (B, T) int32 padded with -1, log-probabilities (B,)).

    The log-probability scores each read, to compare reads of the same line (say, of the
    line and of its inverted copy): greedy, that of the best path, sum_t max_k log y_t^k;
    beam, the beam's estimate of ln p(l|x) (Graves et al., 2006, §3.2).

    Args: as `decode_logits`.
    """
    if strategy == "greedy":
        ids, _ = ctc_greedy_decode(logits, pad_value=PAD_VALUE)
        log_probs = keras.ops.sum(keras.ops.max(keras.ops.log_softmax(
            keras.ops.cast(logits, "float32"), axis=-1), axis=-1), axis=-1)
        return ids, log_probs
    if strategy == "beam":
        ids, _, log_probs = ctc_beam_decode(logits, beam_width=beam_width, top_paths=1,
                                            pad_value=PAD_VALUE)
        return ids[:, 0], log_probs[:, 0]
    raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}")


def decode_either_polarity(logits, logits_inverted, strategy="greedy", beam_width=100):
    """Ids (B, T) of each line read as given (`logits`) or inverted (`logits_inverted`, the
    logits of 1 − x), whichever read has the higher log-probability (`decode_logits_scored`;
    a tie keeps the line as given). For text that comes both dark on light and light on
    dark, as number plates do."""
    (ids, scores), (ids_inverted, scores_inverted) = (
        [keras.ops.convert_to_numpy(t) for t in decode_logits_scored(x, strategy, beam_width)]
        for x in (logits, logits_inverted))
    return np.where((scores_inverted > scores)[:, None], ids_inverted, ids)


def polarity_logits(model, images, batch_size=64, logits=None, inverted_logits=None) -> tuple:
    """(logits, inverted logits): the CTC model's outputs for `images` in [0, 1] read as given
    and inverted (1 − x). Either one already computed is passed in and not predicted again;
    `images` may be None when both are."""
    if images is None and (logits is None or inverted_logits is None):
        raise ValueError("reading both polarities needs the images, or both the upright "
                         "and the inverted logits")
    if logits is None:
        logits = model.predict(np.asarray(images, np.float32), batch_size=batch_size,
                               verbose=0)
    if inverted_logits is None:
        inverted_logits = model.predict(1.0 - np.asarray(images, np.float32),
                                        batch_size=batch_size, verbose=0)
    return logits, inverted_logits


def _resolve_classes(num_classes, charset):
    charset = _charset_or_none(charset)
    if charset is None and num_classes is None:
        charset = Charset(LOWERCASE_ALPHANUMERIC)
    if charset is not None and num_classes is not None and int(num_classes) != charset.num_classes:
        raise ValueError(f"num_classes={num_classes} does not match the charset: "
                         f"{len(charset)} characters + the blank = {charset.num_classes}")
    num_classes = charset.num_classes if charset is not None else int(num_classes)
    if num_classes < 2:
        raise ValueError(f"a CTC model needs at least 2 classes (blank + 1); got {num_classes}")
    return num_classes, charset


def check_height(height) -> int:
    """`height` as an int if a CRNN accepts it (a multiple of 16, at least 32), else
    ValueError saying which heights work."""
    whole = (isinstance(height, (int, np.integer, float, np.floating))
             and not isinstance(height, bool) and float(height).is_integer())
    if not whole or height < MIN_HEIGHT or height % HEIGHT_MULTIPLE:
        raise ValueError(f"the CRNN needs an input height of at least {MIN_HEIGHT} and a "
                         f"multiple of {HEIGHT_MULTIPLE} (the poolings bring it down to 2 "
                         f"rows, a 2x2 convolution to 1), e.g. 32, 48 or 64; got {height!r}")
    return int(height)


def _pool_windows(height: int) -> dict:
    """The max-pool windows for an input `height`: the paper's, with the last one taking
    height / 16 rows so that conv7 (2 rows, valid) leaves exactly one feature row."""
    windows = dict(_POOLS)
    windows[max(_POOLS)] = (height // HEIGHT_MULTIPLE, 1)
    return windows


def _check_input_shape(input_shape):
    if len(tuple(input_shape)) != 3:
        raise ValueError(f"input_shape must be (height, width, channels) with width None for "
                         f"variable widths; got {input_shape!r}")
    height, width, channels = tuple(input_shape)
    height = check_height(height)
    if width is not None and crnn_frames(width) < 1:
        raise ValueError(f"input width {width} gives no output frame; use width >= 8 or None")
    return int(height), None if width is None else int(width), int(channels)


def _build_crnn(name, num_classes, charset, input_shape, filters, rnn_units):
    num_classes, charset = _resolve_classes(num_classes, charset)
    height, width, channels = _check_input_shape(input_shape)
    pools = _pool_windows(height)
    inputs = keras.Input((height, width, channels), name="image")
    x = inputs
    for index, units in enumerate(filters):
        last = index == len(filters) - 1
        x = layers.Conv2D(units, 2 if last else 3, padding="valid" if last else "same",
                          name=f"conv{index + 1}")(x)
        if index in _BATCH_NORM:
            x = layers.BatchNormalization(momentum=0.9, name=f"bn{index + 1}")(x)
        x = layers.ReLU(name=f"relu{index + 1}")(x)
        if index in pools:
            x = layers.MaxPooling2D(pools[index], strides=pools[index],
                                    name=f"pool{index + 1}")(x)
    # (B, 1, T, F) -> (B, T, F): one feature vector per column
    if x.shape[1] != 1:  # cannot happen for a checked height; a guard against edits above
        raise AssertionError(f"the CNN left {x.shape[1]} feature rows for height {height}")
    x = layers.Permute((2, 1, 3), name="columns")(x)
    x = layers.Reshape((-1, filters[-1]), name="map_to_sequence")(x)
    x = layers.Bidirectional(layers.LSTM(rnn_units, return_sequences=True), name="bilstm1")(x)
    x = layers.Dense(rnn_units, name="bilstm1_join")(x)
    x = layers.Bidirectional(layers.LSTM(rnn_units, return_sequences=True), name="bilstm2")(x)
    logits = CTCLogits(num_classes, charset=charset, name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name=name)


@register_model(task="text")
def crnn(num_classes=None, charset=None, input_shape=(32, None, 1)):
    """CRNN of Shi, Bai, Yao (2015/2017): 7 convolutions, 2 BiLSTM-256, CTC logits.

    8,328,741 parameters for the paper's 37 classes (36 characters + blank); see the module
    docstring for the breakdown. Output (B, W // 4 - 1, C) logits, blank = class 0.

    Args:
        num_classes: number of classes C (characters + blank). Defaults to None (from
            `charset`; with neither, the paper's 36 lowercase alphanumerics, C = 37).
        charset: a `Charset` or a string of characters, stored with the model. Defaults to
            None.
        input_shape: (height, width, channels); width None accepts any width; height a
            multiple of 16 from 32 up (32 in the paper; 48 or 64 for whole crops whose
            characters would be too small at 32; the parameter count does not change).
            Defaults to (32, None, 1).

    Reference: Shi, Bai, Yao, "An End-to-End Trainable Neural Network for Image-based
    Sequence Recognition and Its Application to Scene Text Recognition", TPAMI 2017.
    """
    return _build_crnn("crnn", num_classes, charset, input_shape, PAPER_FILTERS, 256)


@register_model(task="text")
def crnn_small(num_classes=None, charset=None, input_shape=(32, None, 1)):
    """A narrow CRNN for CPU training: convolutions 16-32-64-64-128-128-128, 2 BiLSTM-64.

    Same topology and frame count as `crnn`; 526,245 parameters for 37 classes.

    Args:
        num_classes: number of classes C (characters + blank). Defaults to None (from
            `charset`; with neither, 36 lowercase alphanumerics, C = 37).
        charset: a `Charset` or a string of characters, stored with the model. Defaults to
            None.
        input_shape: (height, width, channels), width None for any width, height a
            multiple of 16 from 32 up (as `crnn`). Defaults to (32, None, 1).

    Reference: Shi, Bai, Yao, "An End-to-End Trainable Neural Network for Image-based
    Sequence Recognition and Its Application to Scene Text Recognition", TPAMI 2017.
    """
    return _build_crnn("crnn_small", num_classes, charset, input_shape, SMALL_FILTERS, 64)


# ------------------------------------------------------------------ inference

def _logits_layers(model):
    for layer in model.layers:
        if isinstance(layer, CTCLogits):
            yield layer
        elif isinstance(layer, keras.Model):
            yield from _logits_layers(layer)


def charset_of(model) -> Charset:
    """The `Charset` stored in the model's `CTCLogits` layer (ValueError if there is none)."""
    for layer in _logits_layers(model):
        if layer.charset is not None:
            return layer.charset
    raise ValueError(f"model {model.name!r} carries no charset (built from num_classes alone, "
                     "or not a CRNN); build it with charset=... or pass charset= explicitly")


def build_inference_model(model, strategy="greedy", beam_width=100) -> keras.Model:
    """images -> decoded ids (B, T) int32 padded with -1; shares `model`'s weights.

    The result still holds the `CTCLogits` layer, so `charset_of` works on it and a saved
    copy keeps the vocabulary; `recognize(inference_model, images)` returns strings.

    Args:
        model: a model that outputs CTC logits (B, T, C), e.g. `crnn`.
        strategy: "greedy" or "beam". Defaults to "greedy".
        beam_width: beam width of the "beam" strategy. Defaults to 100.
    """
    ids = CTCDecoder(strategy, beam_width, name="ctc_decoder")(model.outputs[0])
    return keras.Model(model.inputs, ids, name=f"{model.name}_reader")


def recognize(model, images, strategy="greedy", beam_width=100, charset=None,
              batch_size=64, polarity="upright") -> list:
    """Read text lines: images (N, H, W, C) -> N strings.

    Args:
        model: a CTC model (logits output) or its `build_inference_model` (ids output).
        images: float32 images in [0, 1], shaped as the model's input.
        strategy: "greedy" or "beam" (ignored for an inference model, which has its own).
            Defaults to "greedy".
        beam_width: beam width of the "beam" strategy. Defaults to 100.
        charset: the vocabulary. Defaults to None (the one stored in the model).
        batch_size: prediction batch size. Defaults to 64.
        polarity: "upright" reads the lines as given; "either" reads each line as given and
            inverted and keeps the likelier read (`decode_either_polarity`; needs a CTC
            model). Defaults to "upright".
    """
    if polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES}; got {polarity!r}")
    charset = _charset_or_none(charset)
    charset = charset_of(model) if charset is None else charset
    images = np.asarray(images, np.float32)
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    if outputs.ndim == 2:  # already decoded ids
        if polarity != "upright":
            raise ValueError("polarity='either' compares log-probabilities: pass the CTC "
                             "model, not its inference model")
        return charset.decode_batch(outputs)
    if polarity == "either":
        both = polarity_logits(model, images, batch_size, logits=outputs)
        return charset.decode_batch(decode_either_polarity(*both, strategy, beam_width))
    ids = decode_logits(outputs, strategy, beam_width)
    return charset.decode_batch(keras.ops.convert_to_numpy(ids))


def fixed_width_copy(model, width: int) -> keras.Model:
    """The CRNN `model` for lines of exactly `width` pixels, its LSTMs unrolled; same weights.

    With a known number of frames and `unroll=True` the BiLSTMs become plain matrix products
    and activations instead of a while loop over TensorLists, so LiteRT converts the model
    with its built-in ops only (no Flex). Narrower lines are right-padded (`pad_lines`), wider
    ones squeezed to `width`, as the text task does for a fixed width.
    """
    width = int(width)
    height, _, channels = model.input_shape[1:]
    if width < 8 or crnn_frames(width) < 1:
        raise ValueError(f"width must be at least 8 pixels (one output frame), got {width}")

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, layers.Bidirectional):
            config["layer"]["config"]["unroll"] = True
            if "backward_layer" in config:
                config["backward_layer"]["config"]["unroll"] = True
        return layer.__class__.from_config(config)

    inputs = keras.Input((height, width, channels), name="image")
    copy = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def greedy_decode_texts(logits, charset: Charset) -> list:
    """Best-path CTC decoding of (B, T, C) logits to strings: per frame the likeliest id,
    repeats merged, blanks (id 0) dropped, ids k > 0 read as `charset.characters[k - 1]`
    (`zoo.evaluation.text.greedy_decode_ids`, then `Charset.decode_batch`). What a user of
    the LiteRT export runs on its logits.
    """
    from zoo.evaluation.text import greedy_decode_ids

    ids = keras.ops.convert_to_numpy(greedy_decode_ids(np.asarray(logits, np.float32)))
    return charset.decode_batch(ids)


def export_recognizer(model, path, strategy="greedy", beam_width=100, charset=None):
    """TensorFlow only: write a SavedModel whose `serve` maps images to strings.

    `serve(images)` takes float32 (B, H, W, C) images (any width when the model accepts
    any) and returns {"ids": int32 (B, T) padded with -1, "text": string (B,)}. String
    tensors exist only in TensorFlow, hence this separate, lazily importing function; the
    backend-agnostic path is `build_inference_model` + `Charset.decode_batch`.

        reloaded = tf.saved_model.load(path)
        reloaded.serve(images)["text"]         # [b'3141', b'59', ...]

    Args:
        model: a CTC model (logits output), e.g. `crnn`.
        path: folder to write the SavedModel into.
        strategy: "greedy" or "beam". Defaults to "greedy".
        beam_width: beam width of the "beam" strategy. Defaults to 100.
        charset: the vocabulary. Defaults to None (the one stored in the model).

    Returns:
        the `keras.export.ExportArchive` that was written.
    """
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"export_recognizer writes a TensorFlow SavedModel and needs the "
                         f"tensorflow backend; the backend is {keras.backend.backend()!r}")
    import tensorflow as tf

    charset = _charset_or_none(charset)
    charset = charset_of(model) if charset is None else charset
    reader = build_inference_model(model, strategy, beam_width)
    # id 0 (blank) and the -1 padding (clipped to 0) become the empty string
    vocabulary = tf.constant(["", *charset.characters])
    archive = keras.export.ExportArchive()
    archive.track(reader)

    def serve(images):
        ids = reader(images, training=False)
        characters = tf.gather(vocabulary, tf.maximum(ids, 0))
        return {"ids": ids, "text": tf.strings.reduce_join(characters, axis=-1)}

    height, width, channels = reader.inputs[0].shape[1:]
    archive.add_endpoint(
        "serve", serve,
        input_signature=[tf.TensorSpec((None, height, width, channels), tf.float32)])
    archive.write_out(str(path), verbose=False)
    return archive
