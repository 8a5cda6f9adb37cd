"""Magnitude pruning during training: a sparsity schedule and a callback that keeps masks.

    pruning = MagnitudePruning(PolynomialSparsity(0.9, begin_step=0, end_step=2000))
    model.fit(x, y, epochs=5, callbacks=[pruning])
    pruning.sparsity()               # {layer/kernel: fraction of zeros}, ≈ 0.9 overall

    prune_once(model, 0.9)           # one shot, no training; then fine-tune with the zeros held:
    model.fit(x, y, callbacks=[MagnitudePruning.from_zeros(model)])

Schedule (Zhu & Gupta 2017, "To prune, or not to prune"), at training step t:
    s_t = s_f + (s_i − s_f)·(1 − (t − t_0)/(t_1 − t_0))^p      for t_0 ≤ t ≤ t_1
with s_i before t_0 and s_f after t_1; the masks are recomputed every `frequency` steps in
[t_0, t_1] (and once at t_1), so sparsity rises in steps along the curve. `ConstantSparsity`
holds one sparsity, e.g. to fine-tune a pruned model with its masks fixed.

Masks. A mask is 1 for a kept weight and 0 for a pruned one. At each update the weights to
prune are those of smallest magnitude among the weights not pruned yet, so a pruned weight
never comes back and sparsity only grows. After every training batch the callback multiplies
each pruned kernel by its mask: the optimizer may move a pruned weight during the step (Adam's
moments still carry it), the mask puts it back to zero, so the weights the model ends with
(and saves, and exports) hold exact zeros.

Scopes and structures:
    scope="global"     one magnitude threshold over every pruned kernel together: layers
                       with many small weights lose more (Han et al. 2015);
    scope="layer"      each kernel pruned to the same sparsity s_t;
    structure="unstructured"  single weights;
    structure="filter" whole output filters (the last kernel axis: a Conv2D's output
                       channel, a Dense layer's unit), scored by their L2 norm divided by
                       √(weights per filter) so filters of different layers compare (Li et al.
                       2017, "Pruning Filters for Efficient ConvNets"); the filter's bias is
                       zeroed with it, so a pruned filter outputs exactly zero before
                       normalisation.

Which kernels: by default the `kernel` of every Conv2D, Conv1D and Dense layer, except the model's last layer (its logits; pruning them mostly removes classes). Pass
`layers=[names]` to choose. Biases and normalisation parameters are never pruned (except the
bias of a pruned filter, above).

Why not tensorflow-model-optimization: its `prune_low_magnitude` wraps tf.keras 2 layers and
does not accept Keras 3 models. This callback is backend-neutral (NumPy masks,
`variable.assign`). On JAX, Keras keeps the weights outside the model during an epoch; the
callback reads `self.model` in every batch hook, which puts them back (Keras's
`jax_state_sync`), so its masking reaches the next step — at the cost of that sync per step.

L1 / L2 regularisation, which pushes weights towards zero before pruning, is Keras's own:
`layers.Dense(..., kernel_regularizer=keras.regularizers.L1(1e-5))`.
"""

from __future__ import annotations

import keras
import numpy as np

PRUNABLE = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Dense)
SCOPES = ("global", "layer")
STRUCTURES = ("unstructured", "filter")


def _check_fraction(name, value, upper=1.0):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not 0.0 <= float(value) < upper:
        raise ValueError(f"{name} must be a number in [0, {upper}), got {value!r}")
    return float(value)


class ConstantSparsity:
    """Sparsity `sparsity` from `begin_step` on (0 before), masks updated every `frequency`
    steps until `end_step` (None: never again after the first update)."""

    def __init__(self, sparsity, begin_step=0, end_step=None, frequency=100):
        self.final_sparsity = _check_fraction("sparsity", sparsity)
        self.initial_sparsity = self.final_sparsity
        self.begin_step, self.end_step, self.frequency = _check_steps(begin_step, end_step,
                                                                      frequency)

    def __call__(self, step) -> float:
        return self.final_sparsity if step >= self.begin_step else 0.0

    def should_update(self, step) -> bool:
        if step < self.begin_step:
            return False
        if self.end_step is None:
            return step == self.begin_step
        return step <= self.end_step and ((step - self.begin_step) % self.frequency == 0
                                          or step == self.end_step)

    def get_config(self):
        return {"sparsity": self.final_sparsity, "begin_step": self.begin_step,
                "end_step": self.end_step, "frequency": self.frequency}


class PolynomialSparsity(ConstantSparsity):
    """s_t = s_f + (s_i − s_f)(1 − (t − t_0)/(t_1 − t_0))^power (module docstring).

    Args:
        final_sparsity: s_f, the fraction of pruned weights reached at `end_step`.
        begin_step: t_0, the first step that prunes. Defaults to 0.
        end_step: t_1, the step where s_f is reached (> begin_step).
        initial_sparsity: s_i. Defaults to 0.
        power: p. Defaults to 3 (prune fast first, then slowly).
        frequency: steps between mask updates. Defaults to 100.
    """

    def __init__(self, final_sparsity, begin_step=0, end_step=None, initial_sparsity=0.0,
                 power=3.0, frequency=100):
        if end_step is None:
            raise ValueError("PolynomialSparsity needs end_step (the step where "
                             "final_sparsity is reached)")
        super().__init__(final_sparsity, begin_step, end_step, frequency)
        if self.end_step <= self.begin_step:
            raise ValueError(f"end_step must be after begin_step, got {end_step!r} <= "
                             f"{begin_step!r}")
        self.initial_sparsity = _check_fraction("initial_sparsity", initial_sparsity)
        if not float(power) > 0:
            raise ValueError(f"power must be > 0, got {power!r}")
        self.power = float(power)

    def __call__(self, step) -> float:
        if step < self.begin_step:
            return self.initial_sparsity if step >= 0 else 0.0
        progress = min(1.0, (step - self.begin_step) / (self.end_step - self.begin_step))
        return self.final_sparsity + (self.initial_sparsity - self.final_sparsity) * (
            1.0 - progress) ** self.power

    def get_config(self):
        return {"final_sparsity": self.final_sparsity, "begin_step": self.begin_step,
                "end_step": self.end_step, "initial_sparsity": self.initial_sparsity,
                "power": self.power, "frequency": self.frequency}


def _check_steps(begin_step, end_step, frequency):
    for name, value in (("begin_step", begin_step), ("frequency", frequency)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    if frequency < 1:
        raise ValueError(f"frequency must be >= 1, got {frequency!r}")
    if end_step is not None and (isinstance(end_step, bool)
                                 or not isinstance(end_step, (int, np.integer))
                                 or end_step < begin_step):
        raise ValueError(f"end_step must be None or a whole number >= begin_step, got "
                         f"{end_step!r}")
    return int(begin_step), None if end_step is None else int(end_step), int(frequency)


def prunable_layers(model) -> list:
    """The layers `MagnitudePruning` prunes by default: every Conv1D/Conv2D/Dense layer
    with a kernel, in model order, except the last of them (the logits)."""
    found = [layer for layer in model._flatten_layers(include_self=False)
             if isinstance(layer, PRUNABLE) and getattr(layer, "kernel", None) is not None]
    return found[:-1]


def kernel_sparsity(model, layer_names=None) -> dict:
    """{layer name: fraction of exactly-zero kernel weights} for the prunable layers (or the
    named ones), and "total" over all of them by weight count."""
    layers = _named_layers(model, layer_names) if layer_names else prunable_layers(model)
    out, zeros, size = {}, 0, 0
    for layer in layers:
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        out[layer.name] = float(np.mean(kernel == 0))
        zeros, size = zeros + int(np.sum(kernel == 0)), size + kernel.size
    out["total"] = zeros / max(size, 1)
    return out


def _named_layers(model, names):
    by_name = {layer.name: layer for layer in model._flatten_layers(include_self=False)}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"layers {missing} are not in the model; its layers with a kernel: "
                         f"{[n for n, l in by_name.items() if getattr(l, 'kernel', None) is not None]}")
    chosen = [by_name[n] for n in names]
    without = [layer.name for layer in chosen if getattr(layer, "kernel", None) is None]
    if without:
        raise ValueError(f"layers {without} have no kernel to prune")
    return chosen


def filter_scores(kernel) -> np.ndarray:
    """Per output filter (last axis) ‖w_f‖₂ / √n_f, n_f the weights of one filter."""
    flat = np.reshape(kernel, (-1, kernel.shape[-1]))
    return np.sqrt(np.sum(flat.astype(np.float64) ** 2, axis=0) / flat.shape[0])


def _prune_count(total, sparsity):
    return int(np.floor(sparsity * total + 1e-9))


def compute_masks(kernels, masks, sparsity, scope="global", structure="unstructured"):
    """New masks (one bool array per kernel, True = kept) reaching `sparsity`.

    The weights already masked stay masked; among the others the smallest scores (|w|, or
    the filter score) are pruned until the count of pruned units is floor(sparsity · units)
    — over all kernels together (scope "global") or per kernel (scope "layer"). Ties at the
    threshold are broken by position, so the count is exact.
    """
    if structure == "unstructured":
        scores = [np.abs(np.asarray(k, np.float64)).reshape(-1) for k in kernels]
        kept = [np.asarray(m, bool).reshape(-1) for m in masks]
    else:
        scores = [filter_scores(np.asarray(k)) for k in kernels]
        kept = [np.asarray(m, bool).reshape(-1, np.shape(m)[-1]).all(axis=0) for m in masks]
    if scope == "global":
        groups = [list(range(len(kernels)))]
    else:
        groups = [[i] for i in range(len(kernels))]
    new_kept = [k.copy() for k in kept]
    for group in groups:
        score = np.concatenate([np.where(kept[i], scores[i], -np.inf) for i in group])
        target = _prune_count(score.size, sparsity)
        already = int(np.sum(np.isneginf(score)))
        if target <= already:
            continue
        order = np.argsort(score, kind="stable")  # pruned first (-inf), then smallest
        pruned = np.zeros(score.size, bool)
        pruned[order[:target]] = True
        start = 0
        for i in group:
            n = scores[i].size
            new_kept[i] = ~pruned[start:start + n]
            start += n
    out = []
    for kernel, keep in zip(kernels, new_kept):
        shape = np.shape(kernel)
        if structure == "unstructured":
            out.append(keep.reshape(shape))
        else:
            out.append(np.broadcast_to(keep, shape).copy())
    return out


def apply_masks(layers, masks, structure="unstructured"):
    """kernel ← kernel · mask for each layer (masks: {layer name: bool array}); with
    structure "filter" the bias of every filter whose weights are all masked is zeroed."""
    for layer in layers:
        mask = masks[layer.name]
        kernel = layer.kernel
        kernel.assign(keras.ops.convert_to_numpy(kernel) * mask.astype(kernel.dtype))
        bias = getattr(layer, "bias", None)
        if structure == "filter" and bias is not None:
            alive = mask.reshape(-1, mask.shape[-1]).any(axis=0)
            bias.assign(keras.ops.convert_to_numpy(bias) * alive.astype(bias.dtype))


def prune_once(model, sparsity, scope="global", structure="unstructured", layers=None) -> dict:
    """One-shot magnitude pruning of a model's kernels to `sparsity`, in place, no training.

    Same scopes, structures and default layers as `MagnitudePruning`. Returns the masks
    {layer name: bool array, True = kept}; hand the model to `MagnitudePruning.from_zeros`
    to fine-tune it with the zeros held.
    """
    _check_fraction("sparsity", sparsity)
    if scope not in SCOPES or structure not in STRUCTURES:
        raise ValueError(f"scope must be one of {SCOPES} and structure one of {STRUCTURES}, "
                         f"got {scope!r} and {structure!r}")
    chosen = _named_layers(model, layers) if layers else prunable_layers(model)
    kernels = [keras.ops.convert_to_numpy(layer.kernel) for layer in chosen]
    found = compute_masks(kernels, [np.ones(k.shape, bool) for k in kernels], sparsity, scope,
                          structure)
    masks = {layer.name: mask for layer, mask in zip(chosen, found)}
    apply_masks(chosen, masks, structure)
    return masks


class MagnitudePruning(keras.callbacks.Callback):
    """Prune the smallest weights during `fit` on a schedule, keeping them at zero.

    Args:
        schedule: a `PolynomialSparsity` or `ConstantSparsity`, or a number s for
            `ConstantSparsity(s)` (prune once at the first step, then hold).
        scope: "global" (one threshold over all pruned kernels) or "layer". Defaults to
            "global".
        structure: "unstructured" (weights) or "filter" (whole output filters). Defaults to
            "unstructured".
        layers: names of the layers whose kernels are pruned. Defaults to None
            (`prunable_layers`: every conv and dense layer but the last).

    Attributes (after training): `masks` {layer name: bool array}, `history` [(step,
    target sparsity, measured sparsity)] at each mask update.

    The step count continues across `fit` calls on the same callback; a new callback with
    `ConstantSparsity` and the masks of a pruned model (`MagnitudePruning.from_zeros`) holds
    them while fine-tuning.
    """

    def __init__(self, schedule, scope="global", structure="unstructured", layers=None):
        super().__init__()
        if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
            schedule = ConstantSparsity(schedule)
        if not isinstance(schedule, ConstantSparsity):
            raise ValueError(f"schedule must be a PolynomialSparsity, a ConstantSparsity or a "
                             f"sparsity in [0, 1), got {schedule!r}")
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        if structure not in STRUCTURES:
            raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
        if layers is not None and (isinstance(layers, str) or not list(layers)):
            raise ValueError(f"layers must be None or a non-empty list of layer names, got "
                             f"{layers!r}")
        self.schedule, self.scope, self.structure = schedule, scope, structure
        self.layer_names = None if layers is None else list(layers)
        self.masks, self.history, self.step = {}, [], 0
        self._layers = None

    @classmethod
    def from_zeros(cls, model, **kwargs):
        """A callback that holds the zeros a pruned model already has (its masks are the
        non-zero weights), for fine-tuning: no new weight is pruned."""
        callback = cls(ConstantSparsity(0.0), **kwargs)
        callback.set_model(model)
        callback._bind()
        callback.masks = {layer.name: keras.ops.convert_to_numpy(layer.kernel) != 0
                          for layer in callback._layers}
        return callback

    def _bind(self):
        if self._layers is None:
            self._layers = (_named_layers(self.model, self.layer_names) if self.layer_names
                            else prunable_layers(self.model))
            if not self._layers:
                raise ValueError("the model has no layer to prune (conv or dense layers "
                                 "other than the last)")
            for layer in self._layers:
                self.masks.setdefault(layer.name, np.ones(tuple(layer.kernel.shape), bool))

    def on_train_begin(self, logs=None):
        self._bind()
        self._apply()

    def on_train_batch_begin(self, batch, logs=None):
        if self.schedule.should_update(self.step):
            self.model  # noqa: B018  (on JAX, reading .model puts the step's weights back)
            self._update(self.schedule(self.step))

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.model  # noqa: B018  (as above; the next step then starts from the masked ones)
        self._apply()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["sparsity"] = kernel_sparsity(self.model, [l.name for l in self._layers])[
                "total"]

    def _update(self, sparsity):
        kernels = [keras.ops.convert_to_numpy(layer.kernel) for layer in self._layers]
        masks = [self.masks[layer.name] for layer in self._layers]
        for layer, mask in zip(self._layers, compute_masks(kernels, masks, sparsity,
                                                           self.scope, self.structure)):
            self.masks[layer.name] = mask
        self._apply()
        measured = kernel_sparsity(self.model, [l.name for l in self._layers])["total"]
        self.history.append((self.step, float(sparsity), measured))

    def _apply(self):
        if any(not mask.all() for mask in self.masks.values()):  # else nothing to hold at 0
            apply_masks(self._layers, self.masks, self.structure)

    def sparsity(self) -> dict:
        """`kernel_sparsity` of the pruned layers now."""
        return kernel_sparsity(self.model, [l.name for l in self._layers])
