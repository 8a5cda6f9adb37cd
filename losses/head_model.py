"""HeadModel: one model, one label array, for losses that need more than the class scores.

Why it exists. Some losses need several things from the model — L-Softmax needs cos θ *and*
‖W_j‖‖x‖, SphereFace cos θ *and* ‖x‖, center loss the distances to the class centers *and*
the logits. A Keras model with several outputs wants `y` with the same structure ("y_true
and y_pred have different structures"), yet users must write `fit(x, y)` with ONE integer
label array. (docs/architecture.md, "Heads and losses", places this in the project.)

How LossLab hides that — the one line a user writes:

    model = losses.heads.make_model(inputs, losses.build_head("sphere", 10)(embedding))
    model.compile(optimizer="adam", loss=losses.SphereFaceLoss(), metrics=["accuracy"])
    model.fit(x, y)                   # y: integer labels (B,)
    model.predict(x)                  # class scores (B, C); argmax = predicted class

(`zoo.create_model("lenet_embed", head="sphere")` does the first line for you.)

- A head returns either a tensor of class scores (B, C) — then the model is a plain
  `keras.Model` and nothing here is involved (softmax, cosine heads) — or a dict with the key
  "scores" (B, C) plus what its losses need, every value batch-first ("cos", "norm", ...).
- `HeadModel` is a *functional* `keras.Model` subclass whose output is that dict. It
  overrides four hooks, all backend-independent:
  `compute_loss` gives the whole dict to a loss that reads head outputs (a loss with a
  non-empty `head_keys` attribute, e.g. `("cos", "x_norm")`) and `y_pred["scores"]` to any
  other loss (plain Keras losses keep working); `compute_metrics` sees `y_pred["scores"]`,
  so `metrics=["accuracy"]` works; `predict` / `predict_on_batch` return the scores;
  `export` exports `inference_model()`, the plain functional sub-model input -> scores.
  `model(x)` itself returns the dict (for probes that want the extras).
- A loss that reads head outputs derives from `HeadOutputLoss`: it lists them in
  `head_keys`, names the head that gives them in `head_hint`, and fetches them with
  `self.head_values(y_pred)` (`head_outputs` underneath), which raises a `ValueError` naming
  the head it needs and the keys it got.

Why this and not the alternatives: a packed single output (scores and extras concatenated)
breaks `accuracy` unless every metric is rewritten to slice, and slicing by position is
fragile; a registry that builds "everything" does not help users who build their own model.
Overriding `predict_step` was rejected because its signature differs between backends (JAX
threads state through it). Being functional, a HeadModel keeps `get_layer("embedding")`
(`zoo.models.lenet.embedding_model` and the callbacks' probes work unchanged); it has no custom
constructor arguments, so `model.save` -> `keras.saving.load_model(path, safe_mode=True)`
revives it from the standard functional config (after `import losses`). There is one
forward pass per step, as for any model.

Not supported: `loss_weights` or a list/dict of losses together with a head-output loss
(compose the terms in one loss instead); the extra outputs are not passed to metrics.
"""

from __future__ import annotations

import keras
from keras import ops

from losses.base import Loss

SCORES = "scores"


def head_keys(loss) -> tuple:
    """The head-output keys a loss reads (its `head_keys` attribute), () for ordinary losses."""
    return tuple(getattr(loss, "head_keys", None) or ())


def head_outputs(y_pred, keys, loss_name: str, head_hint: str):
    """The values of `keys` in the head-output dict `y_pred`, or a ValueError saying why not."""
    if not isinstance(y_pred, dict):
        shape = tuple(getattr(y_pred, "shape", ()))
        raise ValueError(f"{loss_name} needs {', '.join(map(repr, keys))} from {head_hint}, "
                         f"i.e. a model built with losses.heads.make_model; got a single tensor "
                         f"of shape {shape}")
    missing = [key for key in keys if key not in y_pred]
    if missing:
        raise ValueError(f"{loss_name} needs {', '.join(map(repr, keys))} from {head_hint}; "
                         f"got keys {sorted(y_pred)}")
    return [y_pred[key] for key in keys]


class HeadOutputLoss(Loss):
    """Base of the losses that read named outputs of a head (a `HeadModel`'s dict).

    A subclass sets `head_keys` (the outputs it reads, in order; a property where they
    depend on the configuration), `head_hint` (the head that gives them, for the error
    message) and, when one plain tensor can stand for its single output, `tensor_key` (a
    cosine head's output *is* cos θ, an embedding model's output *is* the embedding). In
    `call` it gets the values with `self.head_values(y_pred)`. A `HeadModel` hands such a
    loss the whole dict, because `head_keys` is not empty.
    """

    head_keys = ()
    head_hint = "a head"
    tensor_key = None

    def head_values(self, y_pred):
        """The values of `head_keys` in `y_pred`, as a list; a ValueError saying what's missing.

        A plain tensor is accepted as the single value of `tensor_key`, if the loss has one.
        """
        if self.tensor_key is not None and not isinstance(y_pred, dict):
            return [y_pred]
        return head_outputs(y_pred, self.head_keys, type(self).__name__, self.head_hint)


def _scores(y_pred):
    if not isinstance(y_pred, dict) or SCORES not in y_pred:
        got = sorted(y_pred) if isinstance(y_pred, dict) else type(y_pred).__name__
        raise ValueError(f"a HeadModel's output must be a dict with a {SCORES!r} entry; got {got}")
    return y_pred[SCORES]


@keras.saving.register_keras_serializable(package="losslab")
class HeadModel(keras.Model):
    """Functional model whose head returns a dict: losses get the dict, the rest get scores.

    Build it like a functional model, `HeadModel(inputs, outputs)` with `outputs` a dict
    holding "scores" (or use `losses.heads.make_model` / `HeadModel.from_backbone`).
    See the module docstring for the design.

    Args:
        inputs: the model inputs (as for `keras.Model`).
        outputs: a dict of tensors with a "scores" entry (B, C).
        name: the model name. Defaults to `None`.
    """

    def __init__(self, inputs, outputs, name=None, **kwargs):
        _scores(outputs)
        super().__init__(inputs, outputs, name=name, **kwargs)

    @classmethod
    def from_backbone(cls, backbone: keras.Model, head, name=None):
        """`HeadModel` from a functional backbone (input -> embedding) and a dict-output head.

        The backbone's layers become this model's layers (not a nested model), so its layer
        names, e.g. "embedding", stay reachable with `get_layer`.
        """
        return cls(backbone.input, head(backbone.output), name=name or backbone.name)

    # ---- training and evaluation: the one label array goes to the loss, scores to metrics

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = getattr(self, "loss", None)
        memory = self.memory_head()
        if not head_keys(loss):
            value = super().compute_loss(x, y, _scores(y_pred), sample_weight, training=training)
        else:
            if memory is not None:
                y_pred = {**y_pred, **memory.memory_inputs()}
            terms = [ops.cast(loss(y, y_pred, sample_weight), "float32")]
            terms += [ops.sum(ops.cast(extra, "float32")) for extra in self.losses]
            value = terms[0] if len(terms) == 1 else ops.sum(ops.stack(terms))
        if memory is not None and training and y is not None:
            memory.write(y_pred["embedding"], y)
        return value

    def memory_head(self):
        """The layer holding a cross-batch memory (`losses.memory`), or None: a layer with
        `memory_inputs()` (what the loss reads) and `write(embedding, labels)` (the update
        after each training step's loss)."""
        heads = [layer for layer in self.layers if hasattr(layer, "memory_inputs")]
        if len(heads) > 1:
            raise ValueError(f"a HeadModel holds at most one cross-batch memory, got "
                             f"{[layer.name for layer in heads]}")
        return heads[0] if heads else None

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, y, _scores(y_pred), sample_weight=sample_weight)

    # ---- inference: class scores only

    def predict(self, *args, **kwargs):
        return _scores(super().predict(*args, **kwargs))

    def predict_on_batch(self, x):
        return _scores(super().predict_on_batch(x))

    def inference_model(self, name=None) -> keras.Model:
        """Plain functional model input -> scores (B, C), sharing this model's weights."""
        return keras.Model(self.input, _scores(self.output),
                           name=name or f"{self.name}_inference")

    def export(self, filepath, *args, **kwargs):
        """Export `inference_model()` (input -> scores); see `keras.Model.export`."""
        return self.inference_model().export(filepath, *args, **kwargs)
