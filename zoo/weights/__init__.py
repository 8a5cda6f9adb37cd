"""Named pretrained weights shipped with the zoo, in the manner of timm's `pretrained=True`.

    zoo.list_weights("lenet5")                      # ['fashion_mnist', 'mnist']
    model = zoo.create_model("lenet5", weights="mnist")
    zoo.weights.card("lenet5.mnist")                # data, recipe, command, metrics, versions

Each weights file lives in `zoo/weights/files/` as `MODEL.TAG.weights.h5` beside its model card
`MODEL.TAG.json`. The card holds the file's SHA-256, checked on every load (a mismatch is an
error, never a silent load), the builder arguments the weights need (number of classes, head,
charset...), the training data and recipe, the exact command that rebuilds the file
(`python -m zoo.weights build MODEL.TAG`, see `zoo.weights.recipes`), the metrics it reached
and the library versions. Loading needs no network.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

FILES = Path(__file__).resolve().parent / "files"


class WeightsError(ValueError):
    """Unknown weights, or a file that does not match its card."""


def _cards() -> dict:
    return {path.name[:-len(".json")]: path for path in sorted(FILES.glob("*.json"))}


def list_weights(model: str | None = None) -> list:
    """The tags of the shipped weights of `model` (or every "MODEL.TAG" name)."""
    names = list(_cards())
    if model is None:
        return names
    return [name.split(".", 1)[1] for name in names if name.split(".", 1)[0] == model]


def full_name(model: str, tag: str) -> str:
    return f"{model}.{tag}"


def card(name: str) -> dict:
    """The model card of "MODEL.TAG" (a dict; see the module docstring)."""
    cards = _cards()
    if name not in cards:
        raise WeightsError(f"no shipped weights named {name!r}; shipped: "
                           f"{', '.join(cards) or 'none'}")
    return json.loads(cards[name].read_text())


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_file(name: str) -> Path:
    """The verified weights file of "MODEL.TAG" (its SHA-256 checked against the card)."""
    found = card(name)
    path = FILES / found["file"]
    if not path.exists():
        raise WeightsError(f"{path}: the weights file of {name!r} is missing")
    actual = sha256(path)
    if actual != found["sha256"]:
        raise WeightsError(f"{path}: SHA-256 {actual} does not match the card's "
                           f"{found['sha256']}; rebuild it with python -m zoo.weights build {name}")
    return path


def builder_arguments(model: str, tag: str) -> dict:
    """The builder arguments that the weights "MODEL.TAG" were trained with."""
    found = card(full_name(model, tag))
    if found["model"] != model:
        raise WeightsError(f"weights {full_name(model, tag)!r} are for model {found['model']!r}")
    arguments = dict(found["builder_kwargs"])
    if "charset" in arguments and arguments["charset"] is not None:
        from zoo.charset import Charset

        arguments["charset"] = Charset(arguments["charset"])
    if "input_shape" in arguments:
        arguments["input_shape"] = tuple(arguments["input_shape"])
    return arguments


def build_with_weights(builder, model: str, tag: str, **kwargs):
    """`builder(**card arguments, **kwargs)` with the verified weights loaded.

    Arguments the weights fix (the number of classes, the head, the charset) may be given
    only with the same value; anything else in `kwargs` goes to the builder.
    """
    arguments = builder_arguments(model, tag)
    for key, value in kwargs.items():
        if key in arguments and value != arguments[key]:
            raise WeightsError(f"weights {full_name(model, tag)!r} need {key}="
                               f"{arguments[key]!r}, got {value!r}; build the model without "
                               "weights, or fine-tune with --init-from")
    path = weights_file(full_name(model, tag))
    network = builder(**{**arguments, **kwargs})
    network.load_weights(path)
    return network
