"""Cross-batch memory (losses.memory): the loss against brute-force NumPy references over
batch + memory, the queue's contents after real training steps, warm-up, and the errors.

The references loop over anchors and references in plain Python/NumPy, written from the
formulas (XBM: each anchor of the batch against every other batch sample and every valid
memory entry), independent of the masks and matrices the library uses.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import losses
from losses.memory import CrossBatchMemoryHead, CrossBatchMemoryLoss
from losses.metric import ContrastiveLoss, JointLoss, TripletLoss
from losses.pair_based import MultiSimilarityLoss


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def references(y, e, memory, memory_labels, memory_valid):
    """Per anchor i: the list of (embedding, label) it is compared with."""
    out = []
    for i in range(len(y)):
        refs = [(e[k], y[k]) for k in range(len(y)) if k != i]
        refs += [(memory[k], memory_labels[k]) for k in range(len(memory)) if memory_valid[k]]
        out.append(refs)
    return out


def contrastive_reference(y, e, refs, margin, normalize):
    def unit(v):
        return v / np.linalg.norm(v) if normalize else v
    total, pairs = 0.0, 0
    for i in range(len(y)):
        for r, label in refs[i]:
            d = np.linalg.norm(unit(e[i]) - unit(r))
            total += d ** 2 if label == y[i] else max(0.0, margin - d) ** 2
            pairs += 1
    return total / pairs


def ms_reference(y, e, refs, alpha=2.0, beta=50.0, base=0.5):
    values = []
    for i in range(len(y)):
        a = e[i] / np.linalg.norm(e[i])
        pos = [a @ (r / np.linalg.norm(r)) for r, label in refs[i] if label == y[i]]
        neg = [a @ (r / np.linalg.norm(r)) for r, label in refs[i] if label != y[i]]
        values.append(np.log1p(sum(np.exp(-alpha * (s - base)) for s in pos)) / alpha
                      + np.log1p(sum(np.exp(beta * (s - base)) for s in neg)) / beta)
    return float(np.mean(values))


def triplet_reference(y, e, refs, margin):
    values = []
    for i in range(len(y)):
        pos = [np.linalg.norm(e[i] - r) for r, label in refs[i] if label == y[i]]
        neg = [np.linalg.norm(e[i] - r) for r, label in refs[i] if label != y[i]]
        if pos and neg:
            values.append(max(0.0, max(pos) - min(neg) + margin))
    return float(np.mean(values)) if values else 0.0


def batch(seed, n=6, m=5, dim=3, classes=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    e = rng.normal(size=(n, dim)).astype("float32")
    memory = rng.normal(size=(m, dim)).astype("float32")
    memory_labels = rng.integers(0, classes + 1, m).astype("int32")  # a class not in the batch
    memory_valid = rng.uniform(size=m) < 0.7
    return y, e, memory, memory_labels, memory_valid


def head_dict(e, memory, memory_labels, memory_valid):
    return {"embedding": e, "memory_embedding": memory, "memory_labels": memory_labels,
            "memory_valid": memory_valid}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_wrapped_loss_equals_its_brute_force_reference_over_batch_and_memory(seed):
    y, e, memory, memory_labels, memory_valid = batch(seed)
    refs = references(y, e, memory, memory_labels, memory_valid)
    inputs = head_dict(e, memory, memory_labels, memory_valid)
    checks = [
        (ContrastiveLoss(margin=1.5), contrastive_reference(y, e, refs, 1.5, False)),
        (ContrastiveLoss(margin=0.7, normalize=True),
         contrastive_reference(y, e, refs, 0.7, True)),
        (MultiSimilarityLoss(), ms_reference(y, e, refs)),
        (MultiSimilarityLoss(alpha=3.0, beta=20.0, base=0.2),
         ms_reference(y, e, refs, 3.0, 20.0, 0.2)),
        (TripletLoss(margin=0.4), triplet_reference(y, e, refs, 0.4)),
    ]
    for inner, expected in checks:
        found = float(CrossBatchMemoryLoss(inner)(y, inputs))
        assert found == pytest.approx(expected, rel=1e-5, abs=1e-6), inner.get_config()


def test_with_an_empty_memory_it_is_the_wrapped_loss_on_the_batch():
    y, e, memory, memory_labels, _ = batch(3)
    inputs = head_dict(e, memory, memory_labels, np.zeros(len(memory), bool))
    for inner in (ContrastiveLoss(mining="hard"), MultiSimilarityLoss(epsilon=0.1),
                  TripletLoss(margin=0.2, distance="squared", normalize=True)):
        assert float(CrossBatchMemoryLoss(inner)(y, inputs)) == pytest.approx(
            float(inner(y, e)), rel=1e-5, abs=1e-6)


def _gradients(function, *values):
    """d function / d values on the current backend."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.grad(function, argnums=tuple(range(len(values))))(*values)
    import tensorflow as tf

    variables = [tf.Variable(v) for v in values]
    with tf.GradientTape() as tape:
        value = function(*variables)
    return [np.zeros_like(v) if g is None else g
            for v, g in zip(values, tape.gradient(value, variables))]


def test_memory_entries_carry_no_gradient_and_batch_entries_do():
    y, e, memory, memory_labels, memory_valid = batch(4)
    loss = CrossBatchMemoryLoss(ContrastiveLoss(margin=2.0))
    grad_e, grad_memory = _gradients(
        lambda e, memory: loss(y, head_dict(e, memory, memory_labels, memory_valid)),
        e, memory)
    assert not np.any(_numpy(grad_memory))
    assert np.any(_numpy(grad_e))


def _memory_model(memory_size, warmup_steps=0):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    embedding = keras.layers.Dense(3, name="embedding")(inputs)
    head = losses.build_head("xbm", 4, memory_size=memory_size, warmup_steps=warmup_steps)
    return losses.make_model(inputs, head(embedding))


def test_training_steps_fill_the_queue_with_the_latest_embeddings_and_labels():
    """8 steps of 16 into 40 slots: the last batch sits at slots 32..39, 0..7 (the ring
    wrapped), with the labels it was given; its embeddings are those of the weights the
    last step started from."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = rng.permutation(np.arange(64) % 4)
    model = _memory_model(40)
    model.compile(optimizer=keras.optimizers.SGD(0.0),  # fixed weights: exact embeddings
                  loss=JointLoss(CrossBatchMemoryLoss(ContrastiveLoss())), jit_compile=True)
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    head = model.get_layer("xbm")
    assert int(_numpy(head.memory_writes)) == 8 and int(_numpy(head.memory_position)) == 8
    slots = [*range(32, 40), *range(0, 8)]
    embedding = keras.Model(model.input, model.get_layer("embedding").output).predict(
        x, verbose=0)
    np.testing.assert_allclose(_numpy(head.memory_embedding)[slots], embedding[48:], atol=1e-5)
    np.testing.assert_array_equal(_numpy(head.memory_labels)[slots], y[48:])
    ring = np.zeros(40, int)  # the labels of 8 batches written one after another, in a loop
    for step in range(8):
        for j, label in enumerate(y[16 * (step % 4):16 * (step % 4) + 16]):
            ring[(16 * step + j) % 40] = label
    np.testing.assert_array_equal(_numpy(head.memory_labels), ring)
    assert int(_numpy(head.memory_count)) == 40
    assert np.all(_numpy(head.memory_inputs()["memory_valid"]))


def test_a_partly_filled_memory_offers_only_the_written_slots():
    model = _memory_model(40)
    head = model.get_layer("xbm")
    rng = np.random.default_rng(3)
    head.write(rng.normal(size=(16, 3)).astype("float32"), np.arange(16) % 4)
    np.testing.assert_array_equal(_numpy(head.memory_inputs()["memory_valid"]),
                                  np.arange(40) < 16)
    for _ in range(2):  # 48 written into 40 slots: full, the count stops at the size
        head.write(rng.normal(size=(16, 3)).astype("float32"), np.arange(16) % 4)
    assert int(_numpy(head.memory_count)) == 40 and int(_numpy(head.memory_position)) == 8
    assert np.all(_numpy(head.memory_inputs()["memory_valid"]))
    with pytest.raises(ValueError, match="3-D embeddings, got 8-D"):
        head.write(np.zeros((4, 8), "float32"), np.zeros(4, int))


@pytest.mark.filterwarnings("ignore:Gradients do not exist")  # no CE: the logits are unused
def test_the_memory_is_not_read_before_the_warm_up_and_evaluation_does_not_write():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 8)).astype("float32")
    y = np.arange(32) % 4
    model = _memory_model(32, warmup_steps=3)
    model.compile(optimizer="sgd", loss=CrossBatchMemoryLoss(MultiSimilarityLoss()))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)          # 2 writes < 3
    head = model.get_layer("xbm")
    assert not np.any(_numpy(head.memory_inputs()["memory_valid"]))
    model.evaluate(x, y, batch_size=16, verbose=0)
    assert int(_numpy(head.memory_writes)) == 2
    model.fit(x[:16], y[:16], batch_size=16, epochs=1, verbose=0)  # the 3rd write
    assert np.all(_numpy(head.memory_inputs()["memory_valid"]))


@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_a_saved_model_keeps_its_memory(tmp_path):
    x = np.random.default_rng(2).normal(size=(16, 8)).astype("float32")
    y = np.arange(16) % 4
    model = _memory_model(16)
    model.compile(optimizer="adam", loss=CrossBatchMemoryLoss(TripletLoss()))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    for name in ("memory_embedding", "memory_labels", "memory_count", "memory_writes"):
        np.testing.assert_array_equal(_numpy(getattr(restored.get_layer("xbm"), name)),
                                      _numpy(getattr(model.get_layer("xbm"), name)))
    assert isinstance(restored.loss, CrossBatchMemoryLoss)
    assert isinstance(restored.loss.loss, TripletLoss)


def test_bad_configurations_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="wraps one of"):
        CrossBatchMemoryLoss(losses.SupConLoss())
    with pytest.raises(ValueError, match="mining='all' or 'hard'"):
        CrossBatchMemoryLoss(ContrastiveLoss(mining="distance_weighted"))
    with pytest.raises(ValueError, match="batch_hard"):
        CrossBatchMemoryLoss(TripletLoss(mining="batch_all"))
    with pytest.raises(ValueError, match="memory_size"):
        CrossBatchMemoryHead(4, memory_size=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        CrossBatchMemoryHead(4, warmup_steps=-1)
    head = CrossBatchMemoryHead(4, memory_size=8)
    head(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="at least the batch size"):
        head.write(np.zeros((9, 3), "float32"), np.zeros(9, "int32"))
    # without the xbm head the loss says which head it needs
    with pytest.raises(ValueError, match="'xbm' head"):
        CrossBatchMemoryLoss(ContrastiveLoss())(np.zeros(4, "int32"),
                                                {"embedding": np.zeros((4, 3), "float32")})
