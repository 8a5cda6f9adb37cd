"""LossLab losses: `keras.losses.Loss` subclasses, their functional forms, and the heads.

    import losses
    model.compile(loss=losses.get_recipe("softmax").build_loss(10))
"""

from losses import classification, heads
from losses.classification import (FocalLoss, MulticlassHinge, ProbabilityMSE,
                                   WeightedCrossEntropy, effective_number_weights,
                                   inverse_frequency_weights)
from losses.heads import build_head, list_heads
from losses.registry import LossRecipe, get_recipe, list_recipes, register_recipe

__all__ = [
    "classification", "FocalLoss", "MulticlassHinge", "ProbabilityMSE", "WeightedCrossEntropy",
    "effective_number_weights", "inverse_frequency_weights",
    "heads", "build_head", "list_heads",
    "LossRecipe", "get_recipe", "list_recipes", "register_recipe",
]
