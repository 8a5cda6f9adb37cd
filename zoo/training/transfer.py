"""Starting a run from an earlier model: `--init-from` and `--freeze-backbone`.

`--init-from SOURCE` copies weights into the new model before training. SOURCE is the name of
shipped weights ("lenet5.mnist", `zoo.list_weights()`), a run folder (its `STAGE.keras` for
the stage being trained, else `model.keras`) or a `.keras` file.
Weights move layer by layer, matched by the top-level layer's name: a layer whose weights all
have the same shapes in both models is copied, any other (a classifier with another number of
classes, a text model's output layer for another charset) keeps its fresh initialisation.
What was copied and what was not is recorded in metrics.json (`init`).

`--freeze-backbone N` trains the head alone for the first N epochs, then everything (as in
the keras-io transfer-learning guide). The head is every layer that was not copied from the
source plus the model's last layer with weights; the backbone is the rest. Each phase
compiles a fresh optimizer from the run's compile configuration.
"""

from __future__ import annotations

from pathlib import Path

import keras

from zoo.training.config import ConfigError


def shipped_weights(source) -> str | None:
    """`source` if it names shipped weights ("MODEL.TAG"), else None."""
    from zoo.weights import list_weights

    return str(source) if str(source) in list_weights() else None


def source_model_path(source, stage: str = "model") -> Path | str:
    """The .keras file that `--init-from SOURCE` names (or the weights name), or ConfigError."""
    if shipped_weights(source):
        return str(source)
    path = Path(source)
    if path.is_dir():
        for name in (f"{stage}.keras", "model.keras"):
            if (path / name).exists():
                return path / name
        found = sorted(p.name for p in path.glob("*.keras"))
        raise ConfigError(f"--init-from {source}: the folder holds no {stage}.keras or "
                          f"model.keras (found: {', '.join(found) or 'no .keras file'})")
    if path.suffix == ".keras":
        if not path.exists():
            raise ConfigError(f"--init-from {source}: no such file")
        return path
    raise ConfigError(f"--init-from {source!r}: expected shipped weights (MODEL.TAG), a run "
                      f"folder or a .keras file")


def _weighted_layers(model) -> dict:
    return {layer.name: layer for layer in model.layers if layer.weights}


def transfer_weights(source, target) -> dict:
    """Copy the weights of `source`'s top-level layers into `target`'s layers of the same name
    where every weight has the same shape; returns {"copied": [...], "kept": {name: why}}."""
    available = _weighted_layers(source)
    copied, kept = [], {}
    for name, layer in _weighted_layers(target).items():
        if name not in available:
            kept[name] = "not in the source model"
            continue
        theirs = available[name].get_weights()
        ours = layer.get_weights()
        shapes_theirs = [w.shape for w in theirs]
        shapes_ours = [w.shape for w in ours]
        if shapes_theirs != shapes_ours:
            kept[name] = f"shapes differ: source {shapes_theirs}, this model {shapes_ours}"
            continue
        layer.set_weights(theirs)
        copied.append(name)
    return {"copied": copied, "kept": kept}


def initialise_from(model, source, stage: str = "model") -> dict:
    """`transfer_weights` from the model that `source` names; the report, with its path."""
    path = source_model_path(source, stage)
    if isinstance(path, str):  # shipped weights
        from zoo.registry import create_model

        model_name, tag = path.split(".", 1)
        loaded = create_model(model_name, weights=tag)
    else:
        loaded = keras.saving.load_model(path, compile=False)
    report = transfer_weights(loaded, model)
    if not report["copied"]:
        raise ConfigError(f"--init-from {source}: no layer of {path} matches the model "
                          f"being trained (layers kept: {', '.join(report['kept'])})")
    return {"source": str(path), **report}


def head_layers(model, report: dict | None) -> list:
    """The layers trained first under `--freeze-backbone`: the ones not copied from the
    source, and the last layer with weights."""
    layers = list(_weighted_layers(model))
    head = set((report or {}).get("kept", {})) & set(layers)
    head.add(layers[-1])
    return [name for name in layers if name in head]


def set_backbone_trainable(model, head: list, trainable: bool) -> None:
    """Freeze or unfreeze every weighted top-level layer outside `head`, and recompile."""
    for layer in model.layers:
        if layer.weights and layer.name not in head:
            layer.trainable = trainable
    model.compile_from_config(model.get_compile_config())
