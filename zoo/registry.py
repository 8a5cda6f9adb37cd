"""Model registry in the manner of timm: builders by name, with the task each model trains on.

    @register_model                                   # a classification model
    def lenet5(num_classes=10, input_shape=(28, 28, 1), **kwargs) -> keras.Model: ...

    @register_model(task="text")                      # trained by the text task
    def crnn_small(charset=None, ...) -> keras.Model: ...

    zoo.create_model("lenet5", num_classes=10)
    zoo.list_models()            # ['crnn', 'crnn_small', 'detector', 'lenet5', ...]
    zoo.model_info("crnn").task  # 'text': the training runner picks its task from this

The task names the runner's task object (`zoo.training.tasks`), as timm records the module
a model comes from; the registry itself imports nothing from training.
"""

from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass
from typing import Callable

TASKS = ("classification", "text", "detection", "reconstruction")


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows of a model: its name, builder and task."""

    name: str
    builder: Callable
    task: str


_MODELS: dict = {}


def register_model(builder=None, *, task: str = "classification"):
    """Register a builder under its own name; use bare or as `@register_model(task=...)`."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")

    def register(function):
        name = function.__name__
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = ModelInfo(name, function, task)
        return function

    return register(builder) if builder is not None else register


def list_models(pattern: str = "*", task: str | None = None):
    """Sorted names of the registered models matching a shell-style `pattern` (and `task`)."""
    return sorted(name for name, info in _MODELS.items()
                  if fnmatch.fnmatch(name, pattern) and task in (None, info.task))


def model_info(name: str) -> ModelInfo:
    """The `ModelInfo` of `name`; an unknown name raises ValueError listing the known ones."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _MODELS[name]


def model_builder(name: str):
    return model_info(name).builder


def model_accepts(name: str, argument: str) -> bool:
    """Whether the builder of `name` takes `argument` (e.g. "head")."""
    return argument in inspect.signature(model_builder(name)).parameters


def create_model(name: str, weights: str | None = None, **kwargs):
    """Build the registered model `name` with the builder's keyword arguments.

    Args:
        name: a registered model (`list_models()`).
        weights: the tag of shipped pretrained weights (`zoo.list_weights(name)`), e.g.
            "mnist"; their SHA-256 is checked and the builder gets the arguments they were
            trained with. Defaults to None (random initialisation).
        **kwargs: the builder's arguments.
    """
    builder = model_builder(name)
    if weights is None:
        return builder(**kwargs)
    from zoo.weights import build_with_weights

    return build_with_weights(builder, name, weights, **kwargs)
