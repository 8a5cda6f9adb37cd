"""LossLab losses: `keras.losses.Loss` subclasses, their functional forms, and the heads.

    import losses
    model = zoo.create_model("lenet_embed", num_classes=10, head="cosine")
    model.compile(optimizer="adam", loss=losses.ArcFaceLoss(), metrics=["accuracy"])
    model.fit(x, y)                       # y: integer labels

Families: `classification` (focal, weighted CE, hinge, probability MSE), `margin` (CosFace,
ArcFace, L-Softmax, SphereFace), `metric` (center, contrastive, triplet, triplet-constrained,
`JointLoss` for metric + CE), `pair_based` (Multi-Similarity, SupCon, NT-Xent, Circle,
N-pairs, lifted structure, angular), `proxy` (ProxyNCA, ProxyAnchor, normalized softmax,
sub-center ArcFace, SoftTriple, margin loss with learnable β), `memory` (cross-batch memory,
XBM, for contrastive, Multi-Similarity and batch-hard triplet), `intra_inter` (angular margin + Mahalanobis intra-class
constraint + inter-class exclusion), `sequence` (CTC), `boxes` (IoU family, Smooth L1),
`reconstruction` (SSIM, MS-SSIM, Charbonnier, MS-SSIM + L1). They stand
on `base` (the base class `base.Loss`, argument and input checks), `distances` and `mining`
(in-batch pairs and triplets), `heads` (the learnable last layers) and `head_model` (one
label array for losses that read several head outputs, and their base `HeadOutputLoss`).
Every loss takes `reduction`, `name` and `dtype` like Keras' own losses, and its config
holds every constructor argument. Importing this package registers every class with Keras,
so saved models load with `safe_mode=True`.

Spelling: "center" (`CenterLoss`, `CenterHead`, head and recipe "center"); the old "centre"
names still work as deprecated aliases (a `DeprecationWarning`), listed nowhere.
"""

from losses import (base, boxes, classification, distances, head_model, heads, intra_inter,
                    margin, memory, metric, mining, pair_based, proxy, reconstruction,
                    registry, sequence)
from losses._compat import module_aliases as _module_aliases
from losses.boxes import (CIoULoss, DIoULoss, EIoULoss, FocalEIoULoss, GIoULoss, IoULoss,
                          SIoULoss, SmoothL1Loss, WiseIoULoss, box_iou)
from losses.classification import (FocalLoss, MulticlassHinge, ProbabilityMSE,
                                   WeightedCrossEntropy, effective_number_weights,
                                   inverse_frequency_weights)
from losses.head_model import HeadModel
from losses.heads import (CenterHead, CosineHead, EmbeddingHead, LargeMarginHead,
                          MarginBetaHead, SphereHead, SubCenterCosineHead, build_head, list_heads,
                          make_model)
from losses.intra_inter import IntraInterHead, IntraInterLoss
from losses.margin import ArcFaceLoss, CosFaceLoss, LargeMarginSoftmaxLoss, SphereFaceLoss
from losses.memory import CrossBatchMemoryHead, CrossBatchMemoryLoss
from losses.metric import (CenterLoss, ContrastiveLoss, JointLoss, TripletConstrainedLoss,
                           TripletLoss)
from losses.pair_based import (AngularLoss, CircleLoss, LiftedStructureLoss,
                                MultiSimilarityLoss, NPairsLoss, NTXentLoss, SupConLoss)
from losses.proxy import (MarginLoss, NormalizedSoftmaxLoss, ProxyAnchorLoss, ProxyNCALoss,
                          SoftTripleLoss, SubCenterArcFaceLoss)
from losses.reconstruction import CharbonnierLoss, MixLoss, MSSSIMLoss, PSNRLoss, SSIMLoss
from losses.registry import LossRecipe, get_recipe, list_recipes, register_recipe
from losses.sequence import BLANK_INDEX, CTCInfeasibleCount, CTCLoss

__all__ = [
    # families
    "base", "boxes", "classification", "distances", "head_model", "heads", "intra_inter",
    "margin", "memory", "metric", "mining", "pair_based", "proxy", "reconstruction", "registry",
    "sequence",
    # classification
    "FocalLoss", "MulticlassHinge", "ProbabilityMSE", "WeightedCrossEntropy",
    "effective_number_weights", "inverse_frequency_weights",
    # margin + heads
    "ArcFaceLoss", "CosFaceLoss", "LargeMarginSoftmaxLoss", "SphereFaceLoss",
    "CosineHead", "LargeMarginHead", "SphereHead", "HeadModel", "build_head", "list_heads",
    "make_model",
    # metric learning
    "CenterLoss", "ContrastiveLoss", "TripletLoss", "TripletConstrainedLoss", "JointLoss",
    "MultiSimilarityLoss", "SupConLoss", "NTXentLoss", "CircleLoss", "NPairsLoss",
    "LiftedStructureLoss", "AngularLoss",
    "CenterHead", "EmbeddingHead",
    # cross-batch memory
    "CrossBatchMemoryLoss", "CrossBatchMemoryHead",
    # proxy-based metric learning
    "ProxyNCALoss", "ProxyAnchorLoss", "NormalizedSoftmaxLoss", "SubCenterArcFaceLoss",
    "SoftTripleLoss", "MarginLoss", "SubCenterCosineHead", "MarginBetaHead",
    # the proposed loss: angular margin + Mahalanobis intra-class / inter-class terms
    "IntraInterLoss", "IntraInterHead",
    # sequence
    "BLANK_INDEX", "CTCLoss", "CTCInfeasibleCount",
    # boxes
    "IoULoss", "GIoULoss", "DIoULoss", "CIoULoss", "EIoULoss", "FocalEIoULoss", "SIoULoss",
    "WiseIoULoss", "SmoothL1Loss", "box_iou",
    # reconstruction
    "SSIMLoss", "MSSSIMLoss", "CharbonnierLoss", "PSNRLoss", "MixLoss",
    # registry
    "LossRecipe", "get_recipe", "list_recipes", "register_recipe",
]

# Deprecated names (`losses.CentreHead`), answered with a DeprecationWarning; not in __all__.
__getattr__ = _module_aliases(__name__, {"CentreHead": "CenterHead"}, globals())
