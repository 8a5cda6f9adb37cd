"""Model registry in the manner of timm.

    @register_model
    def lenet5(num_classes=10, input_shape=(28, 28, 1), **kwargs) -> keras.Model: ...

    zoo.create_model("lenet5", num_classes=10)
    zoo.list_models()            # ['lenet5', 'lenet_embed', 'lenet_tcnn', ...]
"""

from __future__ import annotations

import fnmatch
import inspect

_MODELS: dict = {}


def register_model(builder):
    """Register a builder function under its own name; returns it unchanged."""
    name = builder.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = builder
    return builder


def list_models(pattern: str = "*"):
    """Sorted names of the registered models matching a shell-style `pattern`."""
    return sorted(name for name in _MODELS if fnmatch.fnmatch(name, pattern))


def model_builder(name: str):
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _MODELS[name]


def model_accepts(name: str, argument: str) -> bool:
    """Whether the builder of `name` takes `argument` (e.g. "head")."""
    return argument in inspect.signature(model_builder(name)).parameters


def create_model(name: str, **kwargs):
    """Build the registered model `name` with the builder's keyword arguments."""
    return model_builder(name)(**kwargs)
