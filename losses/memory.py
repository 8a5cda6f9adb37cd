"""Cross-batch memory (XBM): pair-based losses that see more negatives than the batch holds.

Wang, Zhang, Huang, Scott, "Cross-Batch Memory for Embedding Learning", CVPR 2020: once the
embeddings drift slowly (after a short warm-up), the embeddings of the last few thousand
samples are nearly what the network would give them now, so they can serve as extra
references. A queue of the last M embeddings and labels is kept; each anchor i of the batch
is compared with the references k in the batch *and* in the memory:

    loss = mean_i ℓ(e_i; {(e_k, y_k) : k ∈ batch ∪ memory, k ≠ i})

where ℓ is the wrapped loss's per-anchor term (contrastive, Multi-Similarity, batch-hard
triplet). Memory entries carry no gradient (they are stored values); the batch's own
embeddings do, as anchors and as references.

Where the state lives (the LossLab rule: heads hold state, losses stay stateless):

- `CrossBatchMemoryHead` (head "xbm"): the "embedding" head (dense logits + the embedding)
  plus the queue as non-trainable variables — embeddings (M, D), labels (M,), which slots
  are filled, the write position and the number of batches written. They are saved with the
  model.
- `HeadModel.compute_loss` hands a loss that reads "memory_embedding", "memory_labels" and
  "memory_valid" the queue's current content, and after the loss (in training steps only)
  writes the batch's embeddings and labels into it, overwriting the oldest entries. The
  update happens inside the compiled training step on every backend (TensorFlow assigns the
  variables; JAX's stateless `compute_loss` returns their new values).
- `CrossBatchMemoryLoss(loss)`: forms the reference set (batch first, then the valid memory
  entries), its positive and negative masks (`losses.mining.reference_masks`), and calls
  the wrapped loss's `reference_loss`.

    model = losses.heads.make_model(inputs, losses.build_head("xbm", 10, memory_size=2048,
                                                              warmup_steps=500)(embedding))
    model.compile(loss=JointLoss(CrossBatchMemoryLoss(MultiSimilarityLoss())))

The references for one step are the batch and the memory as it was before the step (the
paper enqueues first; with a full memory that differs only in whether the B oldest entries
are still seen for one more step). The queue is written on one device: training with a
data-parallel strategy is not supported yet. On JAX, the write needs a Keras whose stateless
`compute_loss` returns the non-trainable variables assigned in it (3.15 does; the JAX test
job checks the queue after real steps).
"""

from __future__ import annotations

import keras
from keras import ops

from losses import mining as _mining
from losses.base import check_positive_int, static_shape
from losses.head_model import HeadOutputLoss
from losses.heads import EmbeddingHead, register_head
from losses.metric import ContrastiveLoss, JointLoss, TripletLoss, _labels_and_embedding
from losses.pair_based import MultiSimilarityLoss
from losses.registry import LossRecipe, register_recipe

MEMORY_KEYS = ("memory_embedding", "memory_labels", "memory_valid")
# The losses with a `reference_loss` (their per-anchor terms against a reference set).
SUPPORTED = (ContrastiveLoss, MultiSimilarityLoss, TripletLoss)


@keras.saving.register_keras_serializable(package="losslab")
class CrossBatchMemoryHead(EmbeddingHead):
    """The "embedding" head plus a queue of the last `memory_size` embeddings and labels.

    Output (as `EmbeddingHead`): {"scores": logits (B, C), "embedding": x (B, D)}. The queue
    is read and written by `HeadModel.compute_loss` for `CrossBatchMemoryLoss`; see the
    module docstring.

    Args:
        num_classes: number of classes C (the logits' width).
        memory_size: M, the number of embeddings kept; at least the batch size. Defaults
            to 1024.
        warmup_steps: training steps (batches written) before the memory is read: early
            embeddings drift too fast to be references (the paper starts the memory after
            about 1k iterations). Defaults to 0.
        kernel_initializer: initializer of the logits' weights. Defaults to
            `"glorot_uniform"`.
    """

    def __init__(self, num_classes, memory_size=1024, warmup_steps=0, **kwargs):
        super().__init__(num_classes, **kwargs)
        self.memory_size = check_positive_int("memory_size", memory_size)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) \
                or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        self.warmup_steps = warmup_steps

    def build(self, input_shape):
        super().build(input_shape)
        size, dim = self.memory_size, int(input_shape[-1])
        self.memory_embedding = self.add_weight(
            shape=(size, dim), initializer="zeros", dtype="float32", trainable=False,
            name="memory_embedding")
        self.memory_labels = self.add_weight(
            shape=(size,), initializer="zeros", dtype="int32", trainable=False,
            name="memory_labels")
        self.memory_count = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False,
            name="memory_count")
        self.memory_position = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False,
            name="memory_position")
        self.memory_writes = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False,
            name="memory_writes")

    def memory_inputs(self):
        """{"memory_embedding" (M, D), "memory_labels" (M,), "memory_valid" bool (M,)}: the
        filled slots, all invalid until `warmup_steps` batches were written."""
        started = ops.greater_equal(ops.convert_to_tensor(self.memory_writes),
                                    self.warmup_steps)
        # the ring fills slots 0, 1, ... in order, so the filled ones are those below the count
        filled = ops.less(ops.arange(self.memory_size, dtype="int32"),
                          ops.convert_to_tensor(self.memory_count))
        valid = ops.logical_and(filled, started)
        # copies: values, not handles that the write after the loss would change
        return {"memory_embedding": ops.copy(self.memory_embedding),
                "memory_labels": ops.copy(self.memory_labels),
                "memory_valid": valid}

    def write(self, embedding, labels):
        """Enqueue a batch: its embeddings (B, D) and labels overwrite the oldest entries."""
        batch, dim = static_shape(embedding)[0], static_shape(embedding)[-1]
        if dim is not None and dim != self.memory_embedding.shape[-1]:
            raise ValueError(f"the cross-batch memory holds {self.memory_embedding.shape[-1]}-D "
                             f"embeddings, got {dim}-D ones")
        if batch is not None and batch > self.memory_size:
            raise ValueError(f"the cross-batch memory holds {self.memory_size} embeddings, "
                             f"fewer than the batch of {batch}: make memory_size at least the "
                             f"batch size")
        embedding = ops.stop_gradient(ops.cast(embedding, "float32"))
        labels = _mining.class_ids(labels)
        position = ops.convert_to_tensor(self.memory_position)
        count = ops.shape(labels)[0]
        slots = ops.expand_dims(ops.mod(position + ops.arange(count, dtype="int32"),
                                        self.memory_size), 1)
        self.memory_embedding.assign(ops.scatter_update(self.memory_embedding, slots, embedding))
        self.memory_labels.assign(ops.scatter_update(self.memory_labels, slots, labels))
        self.memory_count.assign(ops.minimum(ops.convert_to_tensor(self.memory_count) + count,
                                             self.memory_size))
        self.memory_position.assign(ops.mod(position + count, self.memory_size))
        self.memory_writes.assign(ops.convert_to_tensor(self.memory_writes) + 1)

    def get_config(self):
        return {**super().get_config(), "memory_size": self.memory_size,
                "warmup_steps": self.warmup_steps}


@register_head("xbm")
def xbm_head(num_classes, **kwargs):
    kwargs.setdefault("name", "xbm")
    return CrossBatchMemoryHead(num_classes, **kwargs)


def check_cross_batch_form(loss):
    """ValueError unless `loss` has a cross-batch memory form: one of `SUPPORTED`, in a
    configuration its own `check_reference_form` accepts."""
    if not isinstance(loss, SUPPORTED):
        names = ", ".join(cls.__name__ for cls in SUPPORTED)
        raise ValueError(f"CrossBatchMemoryLoss wraps one of {names}; got "
                         f"{type(loss).__name__}")
    loss.check_reference_form()
    return loss


@keras.saving.register_keras_serializable(package="losslab")
class CrossBatchMemoryLoss(HeadOutputLoss):
    """A pair-based loss over the batch *and* a cross-batch memory (XBM, Wang et al. 2020).

    Formula:
        loss = mean_i ℓ(e_i; R_i),   R_i = {(e_k, y_k) : k ∈ batch ∪ valid memory, k ≠ i}

    with ℓ the wrapped loss's per-anchor term over its positive references (y_k = y_i) and
    negative references (y_k ≠ y_i): ContrastiveLoss (mining "all" or "hard"),
    MultiSimilarityLoss, or TripletLoss (mining "batch_hard"). With an empty memory it is
    the wrapped loss on the batch. Needs the "xbm" head (`CrossBatchMemoryHead`) in a
    `HeadModel`; see the module docstring.

        model.compile(loss=JointLoss(CrossBatchMemoryLoss(ContrastiveLoss(margin=0.5,
                                                                            normalize=True))))

    Args:
        loss: The wrapped loss (an instance, or its serialized dict).
        reduction: Keras loss reduction. Defaults to `"sum_over_batch_size"`.
        name: Loss name. Defaults to `"cross_batch_memory_loss"`.
        dtype: Dtype Keras casts the inputs and the loss to (the loss computes in float32).
            Defaults to `None`.

    Reference: Wang, Zhang, Huang, Scott, "Cross-Batch Memory for Embedding Learning",
    CVPR 2020 (as pytorch-metric-learning's `CrossBatchMemory`).
    """

    head_keys = ("embedding",) + MEMORY_KEYS
    head_hint = "an 'xbm' head (losses.memory.CrossBatchMemoryHead)"

    def __init__(self, loss, reduction="sum_over_batch_size", name="cross_batch_memory_loss",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(loss, dict):
            loss = keras.saving.deserialize_keras_object(loss)
        self.loss = check_cross_batch_form(loss)

    def call(self, y_true, y_pred):
        embedding, memory, memory_labels, memory_valid = self.head_values(y_pred)
        labels, embedding = _labels_and_embedding(y_true, embedding, "CrossBatchMemoryLoss")
        reference = ops.concatenate([embedding, ops.stop_gradient(ops.cast(memory, "float32"))],
                                    axis=0)
        reference_labels = ops.concatenate([labels, ops.cast(memory_labels, "int32")], axis=0)
        reference_valid = ops.concatenate([ops.ones_like(labels, dtype="bool"),
                                           ops.cast(memory_valid, "bool")], axis=0)
        masks = _mining.reference_masks(labels, reference_labels, reference_valid)
        return self.loss.reference_loss(embedding, reference, masks)

    def get_config(self):
        return {**super().get_config(), "loss": keras.saving.serialize_keras_object(self.loss)}



register_recipe(LossRecipe(
    name="xbm", head="xbm", balanced_batches=True,
    head_kwargs={"memory_size": 2048, "warmup_steps": 200},
    build_loss=lambda num_classes: JointLoss(CrossBatchMemoryLoss(MultiSimilarityLoss()),
                                             metric_weight=1.0),
    summary="softmax CE + Multi-Similarity over the batch and a 2,048-embedding cross-batch "
            "memory read after 200 steps (XBM; Wang et al. 2020), P×K batches"))
