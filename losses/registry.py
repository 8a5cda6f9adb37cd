"""Loss recipes by short name, for `python -m zoo.train --loss NAME`.

A recipe says which head the model needs, how to build the loss for it, and whether the
training batches must be class-balanced (P×K) — everything the entry point needs to turn a
name into a trainable model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras


@dataclass(frozen=True)
class LossRecipe:
    name: str
    head: str
    build_loss: Callable[..., keras.losses.Loss]
    summary: str
    head_kwargs: dict = field(default_factory=dict)
    balanced_batches: bool = False


_RECIPES: dict = {}


def register_recipe(recipe: LossRecipe) -> LossRecipe:
    if recipe.name in _RECIPES:
        raise ValueError(f"loss recipe {recipe.name!r} is already registered")
    _RECIPES[recipe.name] = recipe
    return recipe


def list_recipes():
    return sorted(_RECIPES)


def get_recipe(name: str) -> LossRecipe:
    if name not in _RECIPES:
        raise ValueError(f"unknown loss {name!r}; known losses: {', '.join(list_recipes())}")
    return _RECIPES[name]


register_recipe(LossRecipe(
    name="softmax",
    head="softmax",
    build_loss=lambda num_classes: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    summary="softmax cross-entropy on dense logits",
))
