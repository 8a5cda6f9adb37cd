"""Ship a trained run or shipped weights: `python -m zoo.export RUN_OR_WEIGHTS --format F`.

    python -m zoo.export runs/lenet5-mnist-softmax --format litert
    python -m zoo.export runs/crnn_small-synth_text-ctc --format savedmodel
    python -m zoo.export runs/detector-voc-kangaroo-eiou --format savedmodel
    python -m zoo.export lenet5.mnist --format savedmodel --out lenet5_mnist

| task           | keras                       | savedmodel                        | litert                  |
|----------------|-----------------------------|-----------------------------------|-------------------------|
| classification | model.keras                 | `model.export`: images -> scores  | scores, from the SavedModel |
| text           | model.keras                 | images -> {"ids", "text"} strings (`export_recognizer`) | fixed-width lines -> logits, built-in ops only, + OUT.json (below) |
| detection      | the pipeline folder (`TwoStepDetector.save`) | images -> padded detections, NMS and step 2 in the graph (`export_detector`) | fused step 1, raw logits and boxes (`export_step1_litert`) |

Every export is the fused model where the model has RepVGG blocks (detector, RepVGG
classifiers): what is served is what runs fastest, with the same outputs.

A CRNN's BiLSTMs over a line of any width are a while loop over TensorLists, which LiteRT
converts only with TensorFlow "Flex" ops (and the CTC decoders too). So its LiteRT export is a
copy for lines of one width (`--line-width`, default 8 x the line height; `fixed_width_copy`)
with the LSTMs unrolled, converted with LiteRT's built-in ops only, and it outputs the
per-frame logits. Decoding is best-path CTC (`zoo.models.crnn.greedy_decode_texts`),
described with the charset in OUT.json next to OUT.tflite (per frame the likeliest class,
repeats merged, the blank 0 dropped, class k > 0 = charset[k - 1]):

    spec = json.loads(Path("OUT.json").read_text())
    serve = Interpreter(model_path="OUT.tflite").get_signature_runner("serve")
    logits = serve(image=lines)["output_0"]      # lines: float32 (B, height, width, 1)
    texts = greedy_decode_texts(logits, Charset(spec["charset"]))

The output goes to `--out`, by default RUN/export/FORMAT (for weights MODEL.TAG:
runs/export/MODEL.TAG/FORMAT). From Python: `export_run(run_or_weights, fmt, out)` returns
the path written. SavedModel and LiteRT need the TensorFlow backend.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from zoo import quiet

quiet.silence_tensorflow()

import keras  # noqa: E402

from zoo.training.config import ConfigError  # noqa: E402

FORMATS = ("keras", "savedmodel", "litert")


def _needs_tensorflow(fmt):
    if keras.backend.backend() != "tensorflow":
        raise ConfigError(f"--format {fmt} writes through TensorFlow; the Keras backend is "
                          f"{keras.backend.backend()!r} (set KERAS_BACKEND=tensorflow)")


def _litert_from_savedmodel(savedmodel: Path, out: Path, builtins_only=False) -> Path:
    """LiteRT from a SavedModel's `serve`; `builtins_only`: fail rather than need Flex ops."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(savedmodel),
                                                         signature_keys=["serve"])
    if builtins_only:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(converter.convert())
    return out


def _fused(model):
    """The re-parameterized copy of a model with training-form RepVGG blocks, else itself."""
    from zoo.models.repvgg import RepVGGBlock, reparameterize

    if any(isinstance(layer, RepVGGBlock) and not layer.deploy
           for layer in model._flatten_layers()):
        return reparameterize(model)
    return model


def export_classifier(model, fmt, out: Path) -> Path:
    """A classification model (a dict-head model serves its class scores)."""
    if hasattr(model, "inference_model"):
        model = model.inference_model()
    model = _fused(model)
    if fmt == "keras":
        out = out.with_suffix(".keras")
        out.parent.mkdir(parents=True, exist_ok=True)
        model.save(out)
        return out
    _needs_tensorflow(fmt)
    if fmt == "savedmodel":
        model.export(str(out), verbose=False)
        return out
    with tempfile.TemporaryDirectory() as folder:
        model.export(folder, verbose=False)
        return _litert_from_savedmodel(Path(folder), out.with_suffix(".tflite"))


def export_text(model, fmt, out: Path, line_width=None) -> Path:
    """A CTC text model: .keras, a SavedModel that returns strings, or LiteRT logits for
    lines of `line_width` pixels (default 8 x the line height) with OUT.json beside it."""
    if fmt == "keras":
        out = out.with_suffix(".keras")
        out.parent.mkdir(parents=True, exist_ok=True)
        model.save(out)
        return out
    _needs_tensorflow(fmt)
    from zoo.models.crnn import charset_of, export_recognizer, fixed_width_copy

    if fmt == "savedmodel":
        export_recognizer(model, out)
        return out
    height = model.input_shape[1]
    width = int(line_width) if line_width is not None else 8 * height
    try:
        fixed = fixed_width_copy(model, width)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    with tempfile.TemporaryDirectory() as folder:
        fixed.export(folder, verbose=False)
        path = _litert_from_savedmodel(Path(folder), out.with_suffix(".tflite"),
                                       builtins_only=True)
    out.with_suffix(".json").write_text(json.dumps({
        "input": {"height": height, "width": width, "channels": model.input_shape[3],
                  "values": "float32 in [0, 1], a text line right-padded to the width by "
                            "repeating its last column (squeezed if wider)"},
        "output": "CTC logits (batch, frames, classes); class 0 is the blank",
        "charset": charset_of(model).characters,
        "decode": "per frame the likeliest class; merge repeats; drop 0; class k > 0 is "
                  "charset[k - 1] (zoo.models.crnn.greedy_decode_texts)"}, indent=2))
    return path


def export_pipeline(pipeline, fmt, out: Path) -> Path:
    """A `TwoStepDetector`: its folder, one SavedModel, or step 1 as LiteRT."""
    fused = pipeline.fused()
    if fmt == "keras":
        return fused.save(out)
    _needs_tensorflow(fmt)
    from zoo.models.detector.export import export_detector, export_step1_litert

    if fmt == "savedmodel":
        export_detector(fused, out)
        return out
    return export_step1_litert(fused.detector, out.with_suffix(".tflite"))


def export_run(source, fmt, out=None, line_width=None) -> Path:
    """Export a run folder or shipped weights "MODEL.TAG" as `fmt`; returns the path written.
    `line_width`: the input width of a text model's LiteRT export."""
    from zoo.evaluate import is_weights_name, load_run, load_weights

    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    if is_weights_name(source):
        _, task, _, models = load_weights(source)
        default = Path("runs") / "export" / str(source) / fmt
    else:
        _, task, _, models = load_run(source)
        default = Path(source) / "export" / fmt
    out = Path(out) if out is not None else default
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    if task.name == "detection":
        from zoo.models.detector.pipeline import TwoStepDetector

        if is_weights_name(source) or not (Path(source) / "pipeline").is_dir():
            raise ConfigError(f"{source}: a detection run folder with its pipeline/ is needed")
        return export_pipeline(TwoStepDetector.load(Path(source) / "pipeline"), fmt, out)
    model = models[task.stages[0]]
    if task.name == "text":
        return export_text(model, fmt, out, line_width)
    return export_classifier(model, fmt, out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a run folder, or shipped weights MODEL.TAG")
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    parser.add_argument("--out", default=None, help="where to write (default: see above)")
    parser.add_argument("--line-width", type=int, default=None,
                        help="text models, --format litert: the fixed line width in pixels "
                        "(default 8 x the line height)")
    args = parser.parse_args(argv)
    try:
        path = export_run(args.source, args.fmt, args.out, args.line_width)
    except ConfigError as error:
        parser.exit(2, f"error: {error}\n")
    print(f"[losslab] wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
