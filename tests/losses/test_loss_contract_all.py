"""The loss contract (loss_contract.py) for every loss the `losses` package exports.

`CASES` maps each exported `keras.losses.Loss` subclass to how to build a tiny case for it:
its constructor arguments (non-default values, so a config that drops or ignores one
shows), what the model outputs for it (a head from `losses.heads` and class labels, an
embedding, boxes, or per-frame CTC logits) and the matching targets.
`test_every_exported_loss_has_a_case` fails when a loss is exported without an entry, so
no loss can skip the contract.

For each case: the config round trip (every constructor argument, `dtype` included, given
back as passed), the `dtype=` behaviour, `sample_weight`, save/load with `safe_mode=True`,
and finite fits under mixed_float16, under mixed_bfloat16 and with `jit_compile=True`
(`POLICY_RUNS`). To keep this cheap, every case whose model output is a plain tensor is one
branch (its own layers, named after the output) of ONE multi-output model with one loss
per output: the save/load and each policy's fit run once for all of them (one test each;
pytest-xdist would build a module fixture once per worker), and each case is a subtest that
checks its own output, loss history and branch weights. Cases whose head returns a dict
need a `HeadModel` of their own, which accepts a single loss.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field

import keras
import numpy as np
import pytest
from loss_contract import (POLICY_RUNS, check_config_round_trip, check_dtype, check_finite,
                           check_restored, check_sample_weight, check_save_load, fit_steps,
                           save_and_load)

import losses
from losses import boxes as bx
from losses import classification as cl
from losses import margin as mg
from losses import memory as mm
from losses import metric as mt
from losses import pair_based as pb
from losses import proxy as px
from losses import reconstruction as rc
from losses.base import Loss as LossLabBase
from losses.head_model import HeadOutputLoss
from losses.heads import build_head, make_model
from losses.intra_inter import IntraInterLoss
from losses.sequence import CTCLoss

C = 4  # classes
D = 3  # embedding size
FEATURES = 8
N = 32  # training samples: 2 batches of 16, each a 4x4 P×K batch (y = arange % C)
STEPS, SYMBOLS, MAX_LABEL = 8, 5, 4  # CTC: frames, classes (blank 0 included), label length
IMAGE = (16, 16, 1)  # reconstruction: small windows and 2 scales fit 16 px
# Save/load runs eagerly where that is cheaper: on TensorFlow it skips graph tracing (4 s
# instead of 19 s here), while JAX dispatches eager ops one by one (22 s) and compiles the
# step once (15 s). The compiled and XLA graphs are checked by the policy fits either way.
EAGER_SAVE_LOAD = keras.backend.backend() == "tensorflow"


@dataclass(frozen=True)
class Case:
    """How to check one loss.

    Attributes:
        label: Tells the cases of one class apart (the test id).
        arguments: Constructor arguments: non-default values where the loss has any.
        output: What the model outputs for it: "head" (the head `head`, class labels),
            "embedding" (a (B, D) embedding, class labels), "boxes" ((B, 4) boxes),
            "sequence" ((B, T, K) per-frame logits, padded label ids) or "image" ((B, H, W, 1)
            images in [0, 1], clean images as targets).
        head: The head name for output="head".
        head_kwargs: Its arguments.
    """

    label: str
    arguments: dict
    output: str
    head: str | None = None
    head_kwargs: dict = field(default_factory=dict)


BOX_CONFIGURED = {
    bx.IoULoss: dict(box_format="cxcywh", eps=1e-9),
    bx.GIoULoss: dict(box_format="xywh"),
    bx.DIoULoss: dict(eps=1e-6),
    bx.CIoULoss: dict(box_format="xywh"),
    bx.EIoULoss: dict(box_format="cxcywh", name="eiou"),
    bx.FocalEIoULoss: dict(gamma=1.0, box_format="xywh"),
    bx.SIoULoss: dict(theta=2.0, box_format="cxcywh"),
    bx.SmoothL1Loss: dict(beta=0.25, box_format=None, name="l1"),
    bx.WiseIoULoss: dict(version=3, alpha=1.7, delta=2.7, box_format="xywh"),
}

CASES = {
    # classification: configured and default (the two hinge variants differ in code)
    cl.FocalLoss: [
        Case("configured", dict(alpha=[0.1, 0.2, 0.3, 0.4], gamma=1.5, name="focal"), "head",
             "softmax"),
        Case("default", {}, "head", "softmax")],
    cl.WeightedCrossEntropy: [
        Case("configured", dict(weights=[0.5, 1.0, 2.0, 1.5]), "head", "softmax"),
        Case("default", {}, "head", "softmax")],
    cl.MulticlassHinge: [
        Case("configured", dict(variant="weston_watkins", margin=0.5), "head", "softmax"),
        Case("default", {}, "head", "softmax")],
    cl.ProbabilityMSE: [Case("default", {}, "head", "softmax")],
    # margin
    mg.CosFaceLoss: [Case("configured", dict(margin=0.2, scale=16.0), "head", "cosine")],
    mg.ArcFaceLoss: [Case("configured", dict(margin=0.3, scale=16.0, easy_margin=True), "head",
                          "cosine")],
    mg.LargeMarginSoftmaxLoss: [
        Case("configured", dict(margin=3, lambda_base=100.0), "head", "large_margin")],
    mg.SphereFaceLoss: [Case("configured", dict(margin=2, lambda_min=1.0), "head", "sphere")],
    # metric learning
    mt.CenterLoss: [Case("configured", dict(name="center"), "head", "center")],
    mt.ContrastiveLoss: [
        Case("configured", dict(margin=2.0, mining="hard", normalize=True), "embedding"),
        Case("distance_weighted", dict(margin=0.9, mining="distance_weighted", normalize=True,
                                       cutoff=0.4, nonzero_loss_cutoff=1.6), "embedding")],
    mt.TripletLoss: [
        Case("configured", dict(margin=0.2, mining="semi_hard", distance="squared"),
             "embedding"),
        Case("margin_miner", dict(margin=0.25, mining="margin_semihard", mining_margin=0.5,
                                  normalize=True), "embedding")],
    mt.TripletConstrainedLoss: [
        Case("configured", dict(alpha=0.2, beta=0.3, mining="batch_all"), "head", "softmax")],
    pb.MultiSimilarityLoss: [
        Case("configured", dict(alpha=3.0, beta=40.0, base=0.4, epsilon=0.1), "embedding")],
    pb.SupConLoss: [Case("configured", dict(temperature=0.2), "embedding")],
    pb.NTXentLoss: [Case("configured", dict(temperature=0.3), "embedding")],
    pb.CircleLoss: [Case("configured", dict(margin=0.4, gamma=80.0), "embedding")],
    pb.NPairsLoss: [Case("configured", dict(embedding_l2=0.01), "embedding")],
    pb.LiftedStructureLoss: [Case("configured", dict(margin=0.5), "embedding")],
    pb.AngularLoss: [Case("configured", dict(alpha=45.0), "embedding")],
    # proxy-based (losses/proxy.py)
    px.ProxyNCALoss: [Case("configured", dict(scale=5.0, positive_in_denominator=False),
                           "head", "cosine")],
    px.ProxyAnchorLoss: [Case("configured", dict(alpha=16.0, delta=0.2), "head", "cosine")],
    px.NormalizedSoftmaxLoss: [Case("configured", dict(temperature=0.1), "head", "cosine")],
    px.SubCenterArcFaceLoss: [
        Case("configured", dict(margin=0.3, scale=16.0, easy_margin=True), "head",
             "subcenter_cosine", {"centers": 2})],
    px.SoftTripleLoss: [
        Case("configured", dict(lam=10.0, gamma=0.2, delta=0.05, tau=0.3), "head",
             "subcenter_cosine", {"centers": 3})],
    px.MarginLoss: [
        Case("configured", dict(alpha=0.3, nu=0.01, mining="distance_weighted", cutoff=0.4,
                                nonzero_loss_cutoff=1.6), "head", "margin_beta",
             {"class_specific": False})],
    # cross-batch memory: its head holds the queue, filled by the training steps
    mm.CrossBatchMemoryLoss: [
        Case("contrastive", dict(loss=mt.ContrastiveLoss(margin=0.5, normalize=True),
                                 name="xbm"), "head", "xbm", {"memory_size": 24,
                                                               "warmup_steps": 1})],
    mt.JointLoss: [
        Case("center", dict(metric=mt.CenterLoss(), metric_weight=0.1,
                            cross_entropy_weight=0.5),
             "head", "center", {"metric": "mahalanobis", "center_update": "moving_average"}),
        Case("triplet", dict(metric=mt.TripletLoss(mining="batch_all"), metric_weight=0.5),
             "head", "embedding")],
    # the intra/inter loss, on both metrics of its head
    IntraInterLoss: [
        Case("learned", dict(margin=0.3, scale=16.0, lambda_intra=1.0, delta=0.8), "head",
             "intra_inter"),
        Case("running", dict(margin=0.2, margin_type="cos", exclusion="nearest"), "head",
             "intra_inter", {"metric": "running", "momentum": 0.9})],
    # sequence
    CTCLoss: [Case("configured", dict(pad_value=-3, zero_infinity=True), "sequence"),
              Case("default", {}, "sequence")],
    # boxes
    **{cls: [Case("configured", arguments, "boxes")] for cls, arguments in BOX_CONFIGURED.items()},
    # reconstruction
    rc.SSIMLoss: [Case("configured", dict(filter_size=7, filter_sigma=1.0, k2=0.05), "image")],
    rc.MSSSIMLoss: [Case("configured", dict(power_factors=[0.4, 0.6], filter_size=5), "image")],
    rc.CharbonnierLoss: [Case("configured", dict(epsilon=0.01), "image")],
    rc.PSNRLoss: [Case("configured", dict(max_val=2.0, epsilon=1e-6), "image")],
    rc.MixLoss: [Case("configured", dict(alpha=0.5, power_factors=[0.4, 0.6], filter_size=5),
                      "image")],
}

# Public Loss subclasses of the package that are bases, not losses: never instantiated alone.
ABSTRACT = {LossLabBase, HeadOutputLoss}

CASE_LIST = [(cls, case) for cls, cases in CASES.items() for case in cases]


def factory(cls, case):
    """A function giving a fresh loss of the case (nested losses are copied too)."""
    def make():
        arguments = {k: (keras.losses.deserialize(keras.losses.serialize(v))
                         if isinstance(v, keras.losses.Loss) else v)
                     for k, v in case.arguments.items()}
        return cls(**arguments)
    return make
CASE_IDS = [f"{cls.__name__}-{case.label}" for cls, case in CASE_LIST]


# --------------------------------------------------------------------------- the table is complete


def exported_loss_classes():
    """Every public `keras.losses.Loss` subclass defined in a module of `losses`, plus every
    one named in `losses.__all__`."""
    found = set()
    modules = [losses] + [importlib.import_module(info.name)
                          for info in pkgutil.iter_modules(losses.__path__, "losses.")]
    for module in modules:
        for name, value in vars(module).items():
            if (isinstance(value, type) and issubclass(value, keras.losses.Loss)
                    and value.__module__.startswith("losses") and not name.startswith("_")):
                found.add(value)
    for name in losses.__all__:
        value = getattr(losses, name)
        if isinstance(value, type) and issubclass(value, keras.losses.Loss):
            found.add(value)
    return found


def test_every_exported_loss_has_a_case():
    exported = exported_loss_classes()
    missing = sorted(cls.__name__ for cls in exported - set(CASES) - ABSTRACT)
    assert not missing, f"losses without a contract case (add them to CASES): {missing}"
    assert set(CASES) <= exported, sorted(c.__name__ for c in set(CASES) - exported)
    # the table covers the families it should (guards the walk above against finding nothing)
    assert len(CASES) >= 23 and {bx.SIoULoss, CTCLoss, IntraInterLoss, mt.JointLoss} <= exported


def test_every_loss_is_registered_for_safe_loading():
    for cls in CASES:
        assert keras.saving.get_registered_name(cls) == f"losslab>{cls.__name__}", cls
        assert issubclass(cls, LossLabBase), f"{cls.__name__} must derive from losses.base.Loss"


# --------------------------------------------------------------------------- data per case


def _class_labels(n, seed):
    return (np.arange(n) % C).astype("int64")


def _boxes(n, seed, jitter=0.0):
    """Valid xyxy boxes; with `jitter`, a (y_true, y_pred) pair of overlapping boxes."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.0, 1.0, size=(n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.3, 0.6, size=(n, 2))], -1)
    if not jitter:
        return boxes.astype("float32")
    pred = boxes + rng.normal(0.0, jitter, size=boxes.shape)
    pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 0.05)
    return boxes.astype("float32"), pred.astype("float32")


def _to_format(xyxy, box_format):
    x1, y1, x2, y2 = np.moveaxis(xyxy, -1, 0)
    if box_format == "xywh":
        return np.stack([x1, y1, x2 - x1, y2 - y1], -1).astype("float32")
    if box_format == "cxcywh":
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1).astype("float32")
    return xyxy


def _labels_for_ctc(n, seed, pad_value):
    """Label ids in [1, K-1], 1..MAX_LABEL of them (all alignable in STEPS frames)."""
    rng = np.random.default_rng(seed)
    labels = np.full((n, MAX_LABEL), pad_value, "int64")
    for i, length in enumerate(rng.integers(1, MAX_LABEL + 1, size=n)):
        labels[i, :length] = rng.integers(1, SYMBOLS, size=length)
    return labels


def _images(n, seed):
    """Smooth images in [0, 1]: a cumulative sum of noise along the rows, normalised."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=(n, *IMAGE)).cumsum(axis=1) / IMAGE[0]).astype("float32")


def targets(case, loss, n=N, seed=0):
    """The training targets of a case."""
    if case.output == "image":
        return _images(n, seed)
    if case.output in ("head", "embedding"):
        return _class_labels(n, seed)
    if case.output == "boxes":
        return _to_format(_boxes(n, seed), getattr(loss, "box_format", None) or "xyxy")
    return _labels_for_ctc(n, seed, loss.pad_value)


def eager_inputs(case, loss, n=8, seed=1):
    """(y_true, y_pred) for calling the loss directly: y_pred is what its model would give."""
    rng = np.random.default_rng(seed)
    if case.output == "head":
        head = build_head(case.head, C, **case.head_kwargs)
        outputs = head(rng.normal(size=(n, 4)).astype("float32"))
        if hasattr(head, "memory_inputs"):  # what a HeadModel adds: a memory holding a batch
            head.write(head(rng.normal(size=(n, 4)).astype("float32"))["embedding"],
                       _class_labels(n, seed + 1))
            outputs = {**outputs, **head.memory_inputs()}
        if isinstance(outputs, dict):
            outputs = {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
        else:
            outputs = keras.ops.convert_to_numpy(outputs)
        return _class_labels(n, seed), outputs
    if case.output == "embedding":
        return _class_labels(n, seed), rng.normal(size=(n, D)).astype("float32")
    if case.output == "image":
        clean = _images(n, seed)
        return clean, np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype("float32")
    if case.output == "boxes":
        box_format = getattr(loss, "box_format", None) or "xyxy"
        y_true, y_pred = _boxes(n, seed, jitter=0.1)
        return _to_format(y_true, box_format), _to_format(y_pred, box_format)
    return (_labels_for_ctc(n, seed, loss.pad_value),
            rng.normal(size=(n, STEPS, SYMBOLS)).astype("float32"))


# --------------------------------------------------------------------------- models per case


def branch(case, tag, inputs):
    """The layers of one case, every one named `tag` or `tag_...`; returns the output."""
    if case.output == "head":
        embedding = keras.layers.Dense(4, name=f"{tag}_embedding")(inputs)
        return build_head(case.head, C, **{**case.head_kwargs, "name": tag})(embedding)
    if case.output == "embedding":
        return keras.layers.Dense(D, name=tag)(inputs)
    if case.output == "image":  # sigmoid pixels, computed in float32 like the box outputs
        hidden = keras.layers.Dense(int(np.prod(IMAGE)), dtype="float32",
                                    activation="sigmoid", name=f"{tag}_pixels")(inputs)
        return keras.layers.Reshape(IMAGE, dtype="float32", name=tag)(hidden)
    if case.output == "boxes":  # initial outputs: valid boxes near (0.2, 0.2, 0.8, 0.8)
        hidden = keras.layers.Dense(4, name=f"{tag}_embedding")(inputs)
        return keras.layers.Dense(
            4, dtype="float32", name=tag,
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
            bias_initializer=keras.initializers.Constant([0.2, 0.2, 0.8, 0.8]))(hidden)
    hidden = keras.layers.Dense(8, name=f"{tag}_embedding")(inputs)
    logits = keras.layers.Dense(STEPS * SYMBOLS, dtype="float32", name=f"{tag}_logits")(hidden)
    return keras.layers.Reshape((STEPS, SYMBOLS), dtype="float32", name=tag)(logits)


def needs_head_model(case):
    """Whether the case's head returns a dict (then its model is a HeadModel of its own)."""
    if case.output != "head":
        return False
    return isinstance(build_head(case.head, C, **case.head_kwargs)(keras.Input((4,))), dict)


SHARED = [(cls, case) for cls, case in CASE_LIST if not needs_head_model(case)]
SHARED_IDS = [f"{cls.__name__}-{case.label}" for cls, case in SHARED]
OWN = [(cls, case) for cls, case in CASE_LIST if needs_head_model(case)]
OWN_IDS = [f"{cls.__name__}-{case.label}" for cls, case in OWN]


def inputs_x(n=N, seed=0):
    return np.random.default_rng(seed).normal(size=(n, FEATURES)).astype("float32")


def shared_model(seed=0):
    """One branch per shared case, output i named f"out{i}"; and its losses and targets."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((FEATURES,))
    outputs, losses_, ys = [], [], []
    for i, (cls, case) in enumerate(SHARED):
        loss = factory(cls, case)()
        outputs.append(branch(case, f"out{i}", inputs))
        losses_.append(loss)
        ys.append(targets(case, loss))
    return keras.Model(inputs, outputs), losses_, ys


def own_model(case, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((FEATURES,))
    return make_model(inputs, branch(case, "out", inputs))


# --------------------------------------------------------------------------- the checks


@pytest.mark.parametrize("cls, case", CASE_LIST, ids=CASE_IDS)
def test_config_round_trip(cls, case):
    loss = factory(cls, case)()
    assert type(loss) is cls
    check_config_round_trip(loss)
    config = loss.get_config()
    for name, value in case.arguments.items():  # the config gives back what was asked for
        if isinstance(value, keras.losses.Loss):
            value = keras.saving.serialize_keras_object(value)
        assert config[name] == value, (name, config[name], value)


@pytest.mark.parametrize("cls, case", CASE_LIST, ids=CASE_IDS)
def test_dtype_round_trip_and_behaviour(cls, case):
    assert inspect.signature(cls.__init__).parameters["dtype"].default is None
    loss = factory(cls, case)()
    assert loss.dtype == "float32" and loss.get_config()["dtype"] == "float32"
    check_dtype(loss, *eager_inputs(case, loss))


@pytest.mark.parametrize("cls, case", CASE_LIST, ids=CASE_IDS)
def test_sample_weight(cls, case):
    loss = factory(cls, case)()
    check_sample_weight(factory(cls, case), *eager_inputs(case, loss))


def test_save_load_shared_model(subtests, tmp_path):
    """One save/load of the shared model; each case is a subtest reading its own output."""
    model, losses_, ys = shared_model()
    restored = save_and_load(model, losses_, inputs_x(), ys, tmp_path,
                             run_eagerly=EAGER_SAVE_LOAD)
    for index, ((cls, _), label) in enumerate(zip(SHARED, SHARED_IDS)):
        with subtests.test(label):
            assert type(restored.losses[index]) is cls
            check_restored(restored, index)


@pytest.mark.filterwarnings("ignore:Gradients do not exist")  # CenterLoss alone: no CE on W
@pytest.mark.parametrize("cls, case", OWN, ids=OWN_IDS)
def test_save_load_head_model(cls, case, tmp_path):
    loss = factory(cls, case)()
    check_save_load(own_model(case), loss, inputs_x(), targets(case, loss), tmp_path,
                    run_eagerly=EAGER_SAVE_LOAD)


@pytest.mark.parametrize("policy, jit_compile", POLICY_RUNS)
def test_finite_under_policy_shared_model(policy, jit_compile, subtests):
    """One fit of the shared model under `policy`; each case is a subtest reading its own
    loss history and branch weights."""
    keras.config.set_dtype_policy(policy)  # conftest restores float32
    model, losses_, ys = shared_model()
    history = fit_steps(model, losses_, inputs_x(), ys, jit_compile)
    for index, label in enumerate(SHARED_IDS):
        with subtests.test(label):
            check_finite(model, history, f"out{index}")


@pytest.mark.filterwarnings("ignore:Gradients do not exist")
@pytest.mark.parametrize("policy, jit_compile", POLICY_RUNS)
@pytest.mark.parametrize("cls, case", OWN, ids=OWN_IDS)
def test_finite_under_policy_head_model(cls, case, policy, jit_compile):
    keras.config.set_dtype_policy(policy)  # conftest restores float32
    loss = factory(cls, case)()
    model = own_model(case)
    history = fit_steps(model, loss, inputs_x(), targets(case, loss), jit_compile)
    check_finite(model, history)


def test_the_shared_model_gives_each_loss_its_own_output():
    """The per-case checks above read output i, history key f"out{i}_loss" and the weights
    of the layers "out{i}" / "out{i}_...": make sure that is how the shared model is wired."""
    model, losses_, ys = shared_model()
    assert list(model.output_names) == [f"out{i}" for i in range(len(SHARED))]
    assert len(losses_) == len(ys) == len(SHARED) >= 20
    for i in range(len(SHARED)):
        own = [w for w in model.weights
               if w.path.startswith(f"out{i}/") or w.path.startswith(f"out{i}_")]
        assert len(own) >= 2, (i, [w.path for w in model.weights])
    assert sum(len([w for w in model.weights if w.path.split("/")[0].split("_")[0] == f"out{i}"])
               for i in range(len(SHARED))) == len(model.weights)  # no weight outside a branch


# --------------------------------------------------------------------------- labels under XLA

# Metric losses compare labels only for equality (any integer is a class), so the
# cross-batch memory loss, which reads no class scores, has no out-of-range label.
LABELLED = [(cls, case) for cls, case in CASE_LIST if case.output in ("head", "sequence")
            and cls is not mm.CrossBatchMemoryLoss]


def xla_compiled(function):
    """`function` compiled by XLA on the current backend (where assertions are dropped)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True, autograph=False)
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(function)
    pytest.skip(f"no XLA compilation on the {keras.backend.backend()} backend")


@pytest.mark.parametrize("cls, case", LABELLED,
                         ids=[f"{c.__name__}-{k.label}" for c, k in LABELLED])
def test_an_out_of_range_label_gives_nan_under_xla(cls, case):
    """A label the model has no class (or CTC id) for: NaN under XLA, never a plausible loss.

    Each case's valid batch gives a finite loss through the same compiled function, so the
    NaN comes from the bad label, not from the compilation."""
    loss = factory(cls, case)()
    y_true, y_pred = eager_inputs(case, loss)
    call = xla_compiled(lambda y, p: loss(y, p))
    assert np.isfinite(float(keras.ops.convert_to_numpy(call(y_true, y_pred))))
    bad = np.array(y_true, copy=True)
    if case.output == "head":
        bad[0] = C  # classes are 0 .. C-1
    else:
        bad[0, 0] = SYMBOLS  # ids are 1 .. SYMBOLS-1
    assert np.isnan(float(keras.ops.convert_to_numpy(call(bad, y_pred)))), cls.__name__


# --------------------------------------------------------------------------- edge cases


def _first_rows(value, n):
    if isinstance(value, dict):
        return {k: np.asarray(v)[:n] for k, v in value.items()}
    return np.asarray(value)[:n]


@pytest.mark.parametrize("cls, case", CASE_LIST, ids=CASE_IDS)
def test_an_empty_batch_gives_an_empty_loss_like_keras(cls, case):
    """Zero samples: no error and no NaN; the result is what Keras's own losses give for
    an empty batch (the empty per-sample loss, reduced by the same rule)."""
    loss = factory(cls, case)()
    y_true, y_pred = eager_inputs(case, loss)
    reference = keras.losses.MeanSquaredError(reduction=loss.reduction)(
        np.zeros((0, 1), "float32"), np.zeros((0, 1), "float32"))
    found = loss(_first_rows(y_true, 0), _first_rows(y_pred, 0))
    assert keras.ops.shape(found) == keras.ops.shape(reference)
    assert not np.any(np.isnan(keras.ops.convert_to_numpy(found)))


NAN_EMBEDDING_LOSSES = [mt.TripletLoss(mining=m) for m in mt.TRIPLET_MINING] + \
    [mt.ContrastiveLoss(mining=m) for m in mt.CONTRASTIVE_MINING] + \
    [pb.MultiSimilarityLoss(), pb.SupConLoss(), pb.NTXentLoss(), pb.CircleLoss(),
     pb.NPairsLoss(), pb.LiftedStructureLoss(), pb.AngularLoss()]


@pytest.mark.parametrize("loss", NAN_EMBEDDING_LOSSES,
                         ids=lambda v: f"{type(v).__name__}-{getattr(v, 'mining', '')}")
def test_a_nan_embedding_gives_a_nan_loss(loss):
    """A NaN in the embedding must not hide behind mining (a finite loss with NaN
    gradients): the loss is NaN too, eagerly and under XLA."""
    y_true = _class_labels(8, 0)
    y_pred = np.random.default_rng(0).normal(size=(8, D)).astype("float32")
    y_pred[0, 0] = np.nan
    assert np.isnan(float(keras.ops.convert_to_numpy(loss(y_true, y_pred))))
    call = xla_compiled(lambda y, p: loss(y, p))
    assert np.isnan(float(keras.ops.convert_to_numpy(call(y_true, y_pred))))
