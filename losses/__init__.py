"""LossLab losses: `keras.losses.Loss` subclasses, their functional forms, and the heads.

    import losses
    model.compile(loss=losses.get_recipe("softmax").build_loss(10))
"""

from losses import heads
from losses.heads import build_head, list_heads
from losses.registry import LossRecipe, get_recipe, list_recipes, register_recipe

__all__ = ["heads", "build_head", "list_heads", "LossRecipe", "get_recipe", "list_recipes",
           "register_recipe"]
