"""Loss recipes by short name, for `python -m zoo.train --loss NAME`.

A recipe says which head the model needs, how to build the loss for it, and whether the
training batches must be class-balanced (P×K) — everything the entry point needs to turn a
name into a trainable model.

Old names still work as deprecated aliases that are never listed: `get_recipe("centre")`
warns and returns the "center" recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras

from losses._compat import warn_renamed


@dataclass(frozen=True)
class LossRecipe:
    name: str
    head: str
    build_loss: Callable[..., keras.losses.Loss]
    summary: str
    head_kwargs: dict = field(default_factory=dict)
    balanced_batches: bool = False


_RECIPES: dict = {}
_ALIASES = {"centre": "center"}  # deprecated name -> name; never listed


def register_recipe(recipe: LossRecipe) -> LossRecipe:
    if recipe.name in _RECIPES:
        raise ValueError(f"loss recipe {recipe.name!r} is already registered")
    _RECIPES[recipe.name] = recipe
    return recipe


def list_recipes(include_deprecated=False):
    """The recipe names, sorted; with `include_deprecated`, also the old names still accepted."""
    return sorted([*_RECIPES, *(_ALIASES if include_deprecated else ())])


def get_recipe(name: str) -> LossRecipe:
    """The recipe `name` (an old name gives its renamed recipe, with a DeprecationWarning)."""
    if name in _ALIASES:
        warn_renamed(name, _ALIASES[name], "loss recipe")
        name = _ALIASES[name]
    if name not in _RECIPES:
        raise ValueError(f"unknown loss {name!r}; known losses: {', '.join(list_recipes())}")
    return _RECIPES[name]


register_recipe(LossRecipe(
    name="softmax",
    head="softmax",
    build_loss=lambda num_classes: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    summary="softmax cross-entropy on dense logits",
))
