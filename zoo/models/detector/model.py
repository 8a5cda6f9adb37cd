"""The two models of the detector: the dense step-1 detector and the step-2 crop classifier.

Step 1, `DenseDetector` (registered builder `detector`): RepVGG backbone -> a one-level neck
at stride s (the stage at stride s plus the upsampled next stage, both through 1x1 convs),
or a feature pyramid with one level per stride of `stride=(8, 16, 32)` -> a tower of RepVGG
blocks per level -> two 1x1 convolutions per cell, shared by the levels: C score logits
(C = 1 objectness logit, or one logit per class when `one_step=True`) and 4 raw box
distances -> `DenseOutputs`, which returns {"scores": (B, P, C) logits, "boxes": (B, P, 4)
xyxy pixels} with P = Σ_levels (H/s)·(W/s) cells, each level in row-major order.

Training: `DenseDetector` is a functional `keras.Model` whose `compute_loss` takes the padded
ground truth as it comes from `SyntheticScenes` / `DetectionBatches` (`y = {"boxes": (B, M,
4), "classes": (B, M)}`), assigns targets with `keras.ops` (`targets.assign_targets`) and
returns `targets.detection_loss`. So the one line a user writes is

    model = zoo.create_model("detector", box_loss="eiou")
    model.compile(optimizer="adam")                     # no loss: the model knows it
    model.fit(SyntheticScenes(2000), epochs=10)

Building targets inside the model (rather than with a NumPy `target_fn`) keeps the data
pipeline the plain detection representation, lets `evaluate` and any batch size work, and
keeps one place that knows the grid. The input size must be fixed (H and W divisible by the
deepest stride used) so every shape is static and the step jit-compiles.

Step 2, `crop_classifier`: a small RepVGG on crops (default 32x32) -> global average pool ->
dense "embedding" -> a head from `losses.heads` ("intra_inter" when `losses.intra_inter` is
present, else "softmax"); with a dict head the model is a `HeadModel`.
"""

from __future__ import annotations

import importlib
import math

import keras
import numpy as np
from keras import layers, ops

from losses import heads as head_registry
from zoo.models.detector import targets as T
from zoo.registry import register_model
from zoo.models.repvgg import RepVGGBlock, _check_stages, repvgg_backbone

EMBEDDING_LAYER = "embedding"
OUTPUTS_LAYER = "dense_outputs"


@keras.saving.register_keras_serializable(package="losslab")
class DenseOutputs(layers.Layer):
    """Raw per-cell maps -> {"scores": (B, P, C) logits, "boxes": (B, P, 4) xyxy pixels}.

    Formula (cell p = i·w + j of a level with stride s, centre
    (x_p, y_p) = ((j + 0.5)s, (i + 0.5)s)):
        d = s·exp(min(raw, 8))
        box_p = (x_p - d_l, y_p - d_t, x_p + d_r, y_p + d_b)
    With several levels the cells of all levels are concatenated, level 0 first.

    Args:
        grid_size: (h, w) of the feature map, or one (h, w) per level.
        stride: pixels per cell s, or the increasing strides of the levels.
        num_classes: the number of object classes K of the task (informative for the
            two-step detector, whose score map has one channel).
        one_step: whether the score channels are per-class (True) or one objectness logit
            (False). Defaults to False.

    Called on (score_map, box_map), or with several levels on (score maps, box maps), one
    map per level.
    """

    def __init__(self, grid_size, stride, num_classes, one_step=False, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})
        self.levels = T.check_levels(grid_size, stride)
        self.multi_level = T.is_multi_level(stride)
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes, self.one_step = int(num_classes), bool(one_step)
        self.centres = T.grid_centres(self.grid_size, self.stride)
        self.cell_strides = T.cell_strides(self.grid_size, self.stride)

    @property
    def grid_size(self):
        """(h, w), or with several levels a list of them."""
        grids = [grid for grid, _ in self.levels]
        return grids if self.multi_level else grids[0]

    @property
    def stride(self):
        """s, or with several levels the list of strides."""
        strides = [s for _, s in self.levels]
        return strides if self.multi_level else strides[0]

    @property
    def strides(self) -> tuple:
        """The strides of the levels, one or more, finest first."""
        return tuple(s for _, s in self.levels)

    @property
    def num_cells(self):
        return sum(h * w for (h, w), _ in self.levels)

    def _flatten(self, maps, channels):
        maps = list(maps) if self.multi_level else [maps]
        if len(maps) != len(self.levels):
            raise ValueError(f"DenseOutputs expects one map per level ({len(self.levels)}), "
                             f"got {len(maps)}")
        parts = [ops.reshape(ops.cast(m, "float32"), (-1, h * w, channels))
                 for m, ((h, w), _) in zip(maps, self.levels)]
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)

    def call(self, score_map, box_map):
        channels = (score_map[0] if self.multi_level else score_map).shape[-1]
        scores = self._flatten(score_map, channels)
        raw = self._flatten(box_map, 4)
        return {"scores": scores, "boxes": T.decode_boxes(raw, self.centres,
                                                          self.cell_strides)}

    def compute_output_spec(self, score_map, box_map):
        first = score_map[0] if self.multi_level else score_map
        batch = first.shape[0]
        return {"scores": keras.KerasTensor((batch, self.num_cells, first.shape[-1]),
                                            "float32"),
                "boxes": keras.KerasTensor((batch, self.num_cells, 4), "float32")}

    def get_config(self):
        grid = ([list(g) for g in self.grid_size] if self.multi_level
                else list(self.grid_size))
        return {**super().get_config(), "grid_size": grid, "stride": self.stride,
                "num_classes": self.num_classes, "one_step": self.one_step}


@keras.saving.register_keras_serializable(package="losslab")
class DenseDetector(keras.Model):
    """Functional dense detector whose `compute_loss` builds its targets from padded boxes.

    Formula (see `zoo.models.detector.targets`):
        L = objectness_weight·Σ S(t, z)/N + box_weight·Σ_positive box_loss(b̂/s, b/s)/N
    S the sigmoid focal loss (t = 1 on positive cells) or the quality focal loss (t = the
    IoU of the cell's box with its object).

    `y` must be the dict {"boxes": (B, M, 4) xyxy pixels, "classes": (B, M), -1 = padding}.
    Besides "loss", `fit` logs "objectness_loss", "box_loss" and "positives" (mean positive
    cells per batch). `sample_weight` is not supported (ValueError).

    Args:
        box_loss: one of `targets.BOX_LOSSES`. Defaults to "eiou".
        radius: centre-sampling radius in cells. Defaults to 1.5.
        objectness_weight: weight of the focal term. Defaults to 1.
        box_weight: weight of the box term. Defaults to 1.
        focal_alpha: α of the sigmoid focal loss. Defaults to 0.25.
        focal_gamma: γ of the sigmoid focal loss (β of the quality focal loss). Defaults
            to 2.
        score_loss: "focal" or "quality_focal" (`targets.SCORE_LOSSES`). Defaults to
            "focal".
        level_scale: with several output levels, the longest box side a level takes is
            level_scale·stride (`targets.assign_targets`). Defaults to 8.

    Reference: Tian et al., "FCOS: Fully Convolutional One-Stage Object Detection", ICCV 2019.
    """

    def __init__(self, *args, box_loss="eiou", radius=T.RADIUS, objectness_weight=1.0,
                 box_weight=1.0, focal_alpha=T.FOCAL_ALPHA, focal_gamma=T.FOCAL_GAMMA,
                 level_scale=T.LEVEL_SCALE, score_loss="focal", **kwargs):
        super().__init__(*args, **kwargs)
        self.box_loss = T.check_box_loss(box_loss)
        self.score_loss = T.check_score_loss(score_loss)
        if not math.isfinite(float(level_scale)) or float(level_scale) <= 0:
            raise ValueError(f"level_scale must be a finite number > 0, got {level_scale!r}")
        self.level_scale = float(level_scale)
        for name, value in (("radius", radius), ("objectness_weight", objectness_weight),
                            ("box_weight", box_weight), ("focal_gamma", focal_gamma)):
            if not math.isfinite(float(value)) or float(value) < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if focal_alpha is not None and not 0.0 <= float(focal_alpha) <= 1.0:
            raise ValueError(f"focal_alpha must be None or in [0, 1], got {focal_alpha!r}")
        self.radius, self.objectness_weight = float(radius), float(objectness_weight)
        self.box_weight, self.focal_gamma = float(box_weight), float(focal_gamma)
        self.focal_alpha = None if focal_alpha is None else float(focal_alpha)
        found = [layer for layer in self.layers if isinstance(layer, DenseOutputs)]
        if len(found) != 1:
            raise ValueError("a DenseDetector needs exactly one DenseOutputs layer, found "
                             f"{len(found)}")
        self.dense_outputs = found[0]
        self.objectness_tracker = keras.metrics.Mean(name="objectness_loss")
        self.box_tracker = keras.metrics.Mean(name="box_loss")
        self.positives_tracker = keras.metrics.Mean(name="positives")

    @property
    def one_step(self):
        return self.dense_outputs.one_step

    @property
    def num_classes(self):
        return self.dense_outputs.num_classes

    @property
    def stride(self):
        """s, or with several levels the list of strides."""
        return self.dense_outputs.stride

    @property
    def strides(self) -> tuple:
        """The strides of the output levels, finest first (one or more)."""
        return self.dense_outputs.strides

    @property
    def grid_size(self):
        """(h, w), or with several levels one (h, w) per level."""
        return self.dense_outputs.grid_size

    def assign(self, y):
        """`targets.assign_targets` for the ground-truth dict `y` on this model's grid."""
        if not isinstance(y, dict) or "boxes" not in y or "classes" not in y:
            got = sorted(y) if isinstance(y, dict) else type(y).__name__
            raise ValueError("DenseDetector expects y = {'boxes': (B, M, 4), 'classes': "
                             f"(B, M)}} (padded ground truth), got {got}")
        return T.assign_targets(y["boxes"], y["classes"], self.grid_size, self.stride,
                                self.radius, self.level_scale)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if sample_weight is not None:
            raise ValueError("DenseDetector does not support sample_weight; got one")
        targets = self.assign(y)
        total, objectness, box_term, positives = T.detection_loss(
            targets, y_pred["scores"], y_pred["boxes"], self.dense_outputs.cell_strides,
            self.box_loss,
            self.objectness_weight, self.box_weight, self.focal_alpha, self.focal_gamma,
            self.score_loss)
        self.objectness_tracker.update_state(objectness)
        self.box_tracker.update_state(box_term)
        self.positives_tracker.update_state(positives)
        for extra in self.losses:
            total = total + ops.sum(ops.cast(extra, "float32"))
        return total

    def get_config(self):
        return {**super().get_config(), "box_loss": self.box_loss, "radius": self.radius,
                "objectness_weight": self.objectness_weight, "box_weight": self.box_weight,
                "focal_alpha": self.focal_alpha, "focal_gamma": self.focal_gamma,
                "level_scale": self.level_scale, "score_loss": self.score_loss}


def _stage_index(stride, num_stages):
    strides = [2 ** (k + 1) for k in range(num_stages)]
    if stride not in strides:
        raise ValueError(f"stride must be the stride of one of the backbone's stages "
                         f"{strides}, got {stride!r}")
    return strides.index(stride)


def _check_strides(stride, num_stages):
    """The levels' strides: powers of two from a stage's stride up, increasing, each stride
    either a backbone stage's or, above the deepest stage, an extra level (RetinaNet's P6/P7)."""
    strides = list(stride)
    deepest = 2 ** num_stages
    if (not strides or any(isinstance(s, bool) or not isinstance(s, (int, np.integer))
                           for s in strides)
            or any(b != 2 * a for a, b in zip(strides, strides[1:]))
            or strides[0] > deepest):
        raise ValueError(f"stride must be a stage's stride or consecutive powers of two "
                         f"starting at one (stages: {[2 ** (k + 1) for k in range(num_stages)]}"
                         f"; above {deepest}, extra levels), got {stride!r}")
    _stage_index(strides[0], num_stages)
    return [int(s) for s in strides]


def _single_level_neck(stages, level, neck_width):
    """One level at stride s: the stage at s plus the upsampled next stage, 1x1 convs."""
    x = layers.Conv2D(neck_width, 1, name="neck_lateral")(stages[level])
    if level + 1 < len(stages):
        deeper = layers.Conv2D(neck_width, 1, name="neck_top")(stages[level + 1])
        x = layers.Add(name="neck_add")([x, layers.UpSampling2D(2, name="neck_up")(deeper)])
    x = layers.BatchNormalization(name="neck_bn")(x)
    return layers.ReLU(name="neck_relu")(x)


def _pyramid_neck(stages, strides, neck_width):
    """A feature pyramid (Lin et al. 2017) over the stages from strides[0] to the deepest:
        M_deepest = conv1x1(C_deepest),  M_s = conv1x1(C_s) + upsample2(M_2s)
        P_s = ReLU(BN(M_s)) for the requested strides,
        P_2s = RepVGGBlock(stride 2)(P_s) for strides above the deepest stage.
    Returns one map per stride."""
    stage_strides = [2 ** (k + 1) for k in range(len(stages))]
    first = stage_strides.index(strides[0])
    merged = {}
    for k in range(len(stages) - 1, first - 1, -1):
        s = stage_strides[k]
        x = layers.Conv2D(neck_width, 1, name=f"neck_lateral{s}")(stages[k])
        if k + 1 < len(stages):
            up = layers.UpSampling2D(2, name=f"neck_up{s}")(merged[2 * s])
            x = layers.Add(name=f"neck_add{s}")([x, up])
        merged[s] = x
    outputs = {}
    for s in strides:
        if s in merged:
            x = layers.BatchNormalization(name=f"neck_bn{s}")(merged[s])
            outputs[s] = layers.ReLU(name=f"neck_relu{s}")(x)
        else:
            outputs[s] = RepVGGBlock(neck_width, strides=2, name=f"neck_extra{s}")(
                outputs[s // 2])
    return [outputs[s] for s in strides]


@register_model(task="detection")
def detector(num_classes=5, input_shape=(128, 128, 3), widths=(16, 32, 64, 128),
             depths=(1, 2, 2, 2), stride=8, neck_width=64, head_width=64, head_depth=2,
             one_step=False, box_loss="eiou", radius=T.RADIUS, objectness_weight=1.0,
             box_weight=1.0, focal_alpha=T.FOCAL_ALPHA, focal_gamma=T.FOCAL_GAMMA,
             prior=0.01, backbone_weights=None, level_scale=T.LEVEL_SCALE, score_loss="focal",
             name=None):
    """The step-1 dense detector (a `DenseDetector`), not compiled.

    One level (`stride=8`): the stage at stride 8 plus the upsampled stage at 16 -> a head
    tower -> scores and boxes per cell. Several levels (`stride=(8, 16, 32)`): a feature
    pyramid over the stages, levels above the deepest stage made by stride-2 RepVGG blocks
    (RetinaNet's P6/P7), one head tower per level (each has its own batch-norm statistics)
    and the score and box convolutions shared by all levels; each box is learnt on the level
    its size falls in (`targets.assign_targets`), so small objects meet a fine grid and
    large ones a wide receptive field.

    Args:
        num_classes: number of object classes K. Defaults to 5 (`SHAPE_CLASSES`).
        input_shape: (H, W, 3), fixed, H and W divisible by the deepest stride used
            (2·stride when a deeper stage exists). Defaults to (128, 128, 3).
        widths: RepVGG stage widths. Defaults to (16, 32, 64, 128).
        depths: RepVGG blocks per stage. Defaults to (1, 2, 2, 2).
        stride: stride of the output grid, one of the stages' (2, 4, 8, ...), or a tuple of
            consecutive powers of two for a pyramid, e.g. (8, 16, 32). Defaults to 8.
        neck_width: channels of the neck. Defaults to 64.
        head_width: channels of the head tower. Defaults to 64.
        head_depth: RepVGG blocks in the head tower. Defaults to 2.
        one_step: per-class score logits (no crop classifier) instead of one objectness
            logit. Defaults to False.
        box_loss: one of `targets.BOX_LOSSES`. Defaults to "eiou".
        radius, objectness_weight, box_weight, focal_alpha, focal_gamma, level_scale,
            score_loss: see `DenseDetector`.
        prior: initial score probability (bias = -log((1 - prior)/prior)). Defaults to 0.01.
        backbone_weights: shipped weights of a RepVGG classifier with the same widths and
            depths, e.g. "repvgg_tiny.cifar10", copied into the backbone
            (`load_backbone_weights`). Defaults to None (random).
        name: model name. Defaults to None ("detector" or "one_step_detector").
    """
    widths, depths = _check_stages(widths, depths)
    multi_level = T.is_multi_level(stride)
    if multi_level:
        strides = _check_strides(stride, len(widths))
        deepest = max(strides[-1], 2 ** len(widths))
    else:
        level = _stage_index(stride, len(widths))
        strides = [stride]
        deepest = stride * (2 if level + 1 < len(widths) else 1)
    height, width = input_shape[0], input_shape[1]
    if height is None or width is None or height % deepest or width % deepest:
        raise ValueError(f"input_shape must have fixed H and W divisible by {deepest}, got "
                         f"{tuple(input_shape)}")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not 0.0 < prior < 1.0:
        raise ValueError(f"prior must be in (0, 1), got {prior!r}")

    inputs = keras.Input(tuple(input_shape), name="image")
    backbone = repvgg_backbone(tuple(input_shape), widths, depths, return_stages=True,
                               name="backbone")
    if backbone_weights is not None:
        load_backbone_weights(backbone, backbone_weights)
    stages = backbone(inputs)
    if multi_level:
        features = _pyramid_neck(stages, strides, neck_width)
    else:
        features = [_single_level_neck(stages, level, neck_width)]
    channels = num_classes if one_step else 1
    bias = -math.log((1.0 - prior) / prior)
    score_conv = layers.Conv2D(channels, 1, bias_initializer=keras.initializers.Constant(bias),
                               kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                               dtype="float32", name="score_conv")
    box_conv = layers.Conv2D(4, 1, kernel_initializer=keras.initializers.RandomNormal(
        stddev=0.01), dtype="float32", name="box_conv")
    score_maps, box_maps = [], []
    for s, x in zip(strides, features):
        prefix = f"head{s}" if multi_level else "head"
        for k in range(head_depth):
            x = RepVGGBlock(head_width, name=f"{prefix}_block{k}")(x)
        score_maps.append(score_conv(x))
        box_maps.append(box_conv(x))
    grids = [(height // s, width // s) for s in strides]
    if multi_level:
        outputs = DenseOutputs(grids, strides, num_classes, one_step,
                               name=OUTPUTS_LAYER)(score_maps, box_maps)
    else:
        outputs = DenseOutputs(grids[0], strides[0], num_classes, one_step,
                               name=OUTPUTS_LAYER)(score_maps[0], box_maps[0])
    return DenseDetector(inputs, outputs,
                         name=name or ("one_step_detector" if one_step else "detector"),
                         box_loss=box_loss, radius=radius, objectness_weight=objectness_weight,
                         box_weight=box_weight, focal_alpha=focal_alpha,
                         focal_gamma=focal_gamma, level_scale=level_scale,
                         score_loss=score_loss)


def load_backbone_weights(backbone, weights):
    """Copy a pretrained RepVGG classifier's blocks into `backbone`, block by block.

    `weights` names shipped weights "MODEL.TAG" of a registered RepVGG classifier
    (`zoo.list_weights`), e.g. "repvgg_tiny.cifar10". Blocks are matched by name
    (stage{i}_block{j}); convolution kernels do not depend on the input size, so a backbone
    pretrained on 32-px images serves a 256-px detector. A backbone whose widths or depths
    differ from the classifier's is refused with both.
    """
    from zoo.registry import create_model

    model, _, tag = str(weights).partition(".")
    if not tag:
        raise ValueError(f"backbone_weights must name shipped weights MODEL.TAG, e.g. "
                         f"'repvgg_tiny.cifar10', got {weights!r}")
    pretrained = create_model(model, weights=tag)
    source = {layer.name: layer for layer in pretrained.layers
              if isinstance(layer, RepVGGBlock)}
    blocks = [layer for layer in backbone.layers if isinstance(layer, RepVGGBlock)]
    names = [layer.name for layer in blocks]
    if sorted(names) != sorted(source) or any(
            [w.shape for w in layer.get_weights()] !=
            [w.shape for w in source[layer.name].get_weights()] for layer in blocks):
        raise ValueError(f"backbone_weights {weights!r} hold blocks "
                         f"{[(n, source[n].filters) for n in sorted(source)]}, but this "
                         f"backbone has {[(layer.name, layer.filters) for layer in blocks]}; "
                         f"build the detector with the classifier's widths and depths")
    for layer in blocks:
        layer.set_weights(source[layer.name].get_weights())


# --------------------------------------------------------------------------- step 2


def intra_inter_available() -> bool:
    """Whether `losses.intra_inter` (the "intra_inter" head and `IntraInterLoss`) exists."""
    try:
        importlib.import_module("losses.intra_inter")
    except ImportError:
        return False
    return "intra_inter" in head_registry.list_heads()


def default_head() -> str:
    return "intra_inter" if intra_inter_available() else "softmax"


def classifier_loss(head):
    """(loss, score scale) for a crop classifier with `head`; probabilities are
    softmax(scale · scores)."""
    if head == "intra_inter":
        from losses.intra_inter import IntraInterLoss

        loss = IntraInterLoss()
        return loss, loss.scale
    if head == "cosine":
        from losses.margin import ArcFaceLoss

        loss = ArcFaceLoss()
        return loss, loss.scale
    if head == "softmax":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True), 1.0
    raise ValueError(f"head must be 'intra_inter', 'cosine' or 'softmax' for the crop "
                     f"classifier, got {head!r}")


@register_model
def crop_classifier(num_classes=6, input_shape=(32, 32, 3), widths=(16, 32, 64),
                    depths=(1, 2, 2), embedding_dim=32, head=None, head_kwargs=None,
                    backbone_weights=None, name="crop_classifier"):
    """The step-2 classifier of object crops: RepVGG -> pool -> "embedding" -> head.

    In the two-step detector its classes are the K object classes plus "background" (last).

    Args:
        num_classes: number of outputs. Defaults to 6 (5 shapes + background).
        input_shape: crop shape (S, S, 3). Defaults to (32, 32, 3).
        widths: RepVGG stage widths. Defaults to (16, 32, 64).
        depths: RepVGG blocks per stage. Defaults to (1, 2, 2).
        embedding_dim: size of the dense "embedding" layer. Defaults to 32.
        head: a head of `losses.heads` ("intra_inter", "cosine", "softmax", ...).
            Defaults to None ("intra_inter" if available, else "softmax").
        head_kwargs: extra keyword arguments for the head. Defaults to None.
        backbone_weights: shipped weights of a RepVGG classifier with the same widths and
            depths (`load_backbone_weights`), e.g. "repvgg_tiny.cifar10" with widths
            (16, 32, 64, 128) and depths (1, 2, 2, 2), copied into the backbone. Defaults to
            None (random).
        name: model name. Defaults to "crop_classifier".
    """
    head = head or default_head()
    if head == "intra_inter":
        intra_inter_available()  # importing losses.intra_inter registers the head
    inputs = keras.Input(tuple(input_shape), name="image")
    backbone = repvgg_backbone(tuple(input_shape), widths, depths, name="backbone")
    if backbone_weights is not None:
        load_backbone_weights(backbone, backbone_weights)
    x = layers.GlobalAveragePooling2D(name="pool")(backbone(inputs))
    embedding = layers.Dense(embedding_dim, name=EMBEDDING_LAYER)(x)
    outputs = head_registry.build_head(head, num_classes, **(head_kwargs or {}))(embedding)
    return head_registry.make_model(inputs, outputs, name=name)
