"""callbacks.retrieval: a hand-computed case, and a brute-force NumPy reference written
here (full distance matrix, stable argsort, the definitions one query at a time)."""

from __future__ import annotations

import numpy as np
import pytest

from callbacks.retrieval import (clustering_scores, nearest_neighbours,
                                      retrieval_metrics)


def test_a_hand_computed_line_of_five_points():
    # on a line: a a b b b at 0, 1.4, 2, 3, 11 (no ties); per query (R, top-R hits):
    # q0 (1, [1]) q1 (1, [0]) q2 (2, [0, 1]) q3 (2, [1, 0]) q4 (2, [1, 1])
    x = np.array([[0.0], [1.4], [2.0], [3.0], [11.0]])
    y = np.array([0, 0, 1, 1, 1])
    found = retrieval_metrics(x, y, ks=(1, 2), distance="euclidean")
    assert found["precision_at_1"] == pytest.approx(3 / 5)
    assert found["r_precision"] == pytest.approx((1 + 0 + 0.5 + 0.5 + 1) / 5)
    assert found["map_at_r"] == pytest.approx((1 + 0 + 0.25 + 0.5 + 1) / 5)
    assert found["recall_at_1"] == pytest.approx(3 / 5)
    assert found["recall_at_2"] == pytest.approx(1.0)
    assert found["queries"] == 5


def brute_force(q, qy, r, ry, distance, same_set, ks):
    if distance == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        r = r / np.linalg.norm(r, axis=1, keepdims=True)
        d = -(q @ r.T)
    else:
        d = ((q[:, None, :] - r[None, :, :]) ** 2).sum(-1)
    p1, rp, mapr, recall = [], [], [], {k: [] for k in ks}
    for i in range(len(q)):
        order = [j for j in np.argsort(d[i], kind="stable") if not (same_set and j == i)]
        rel = [1.0 if ry[j] == qy[i] else 0.0 for j in order]
        big_r = int(sum(rel))
        if big_r == 0:
            continue
        p1.append(rel[0])
        rp.append(sum(rel[:big_r]) / big_r)
        mapr.append(sum(rel[k] * sum(rel[:k + 1]) / (k + 1) for k in range(big_r)) / big_r)
        for k in ks:
            recall[k].append(max(rel[:k]))
    return {"precision_at_1": np.mean(p1), "r_precision": np.mean(rp),
            "map_at_r": np.mean(mapr), **{f"recall_at_{k}": np.mean(v) for k, v in recall.items()},
            "queries": len(p1)}


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
@pytest.mark.parametrize("same_set", [True, False])
def test_equals_the_brute_force_reference(distance, same_set):
    rng = np.random.default_rng(3)
    q = rng.normal(size=(70, 5)).astype(np.float32)
    qy = rng.integers(0, 4, size=70)
    q[qy == 0] += 1.5  # some structure, so that the metrics are neither 0 nor 1
    if same_set:
        r, ry = None, None
        reference = (q, qy)
    else:
        r = rng.normal(size=(50, 5)).astype(np.float32)
        ry = rng.integers(0, 5, size=50)  # label 4 has no query; some queries may lack refs
        r[ry == 0] += 1.5
        reference = (r, ry)
    found = retrieval_metrics(q, qy, r, ry, ks=(1, 3, 8), distance=distance, batch_size=16)
    expected = brute_force(q.astype(np.float64), qy, reference[0].astype(np.float64),
                           reference[1], distance, same_set, (1, 3, 8))
    assert found == pytest.approx(expected, abs=1e-6)
    assert 0.2 < found["map_at_r"] < 0.9


def test_neighbours_leave_the_query_out_and_bad_input_is_refused():
    x = np.eye(4, dtype=np.float32) + 0.1
    assert not np.any(nearest_neighbours(x, x, 3, same_set=True) == np.arange(4)[:, None])
    with pytest.raises(ValueError, match=r"k must be in \[1, 3\]"):
        nearest_neighbours(x, x, 4, same_set=True)
    with pytest.raises(ValueError, match="distance must be one of"):
        nearest_neighbours(x, x, 1, distance="manhattan")
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.array([[np.nan, 1.0], [1.0, 0.0]]), [0, 0])
    with pytest.raises(ValueError, match="no query has a reference of its own label"):
        retrieval_metrics(np.eye(3), [0, 1, 2])


def test_clusters_that_match_the_labels_score_one():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 10
    y = np.repeat(np.arange(3), 20)
    x = centres[y] + rng.normal(scale=0.1, size=(60, 3))
    assert clustering_scores(x, y) == pytest.approx({"nmi": 1.0, "ami": 1.0})
    shuffled = clustering_scores(x, rng.permutation(y))
    assert shuffled["ami"] < 0.2


def test_the_monitor_logs_what_the_metrics_give_on_the_trained_embedding():
    import keras

    from callbacks import RetrievalMonitor

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    x = (np.eye(3)[y] * 2 + rng.normal(scale=0.8, size=(90, 3))).astype(np.float32)
    inputs = keras.Input((3,))
    embedding = keras.layers.Dense(4, name="embedding")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3)(embedding))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = RetrievalMonitor(probe=(x, y), probe_source="validation", ks=(1, 5), every=2)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[monitor])
    keys = {"retrieval/precision_at_1", "retrieval/r_precision", "retrieval/map_at_r",
            "retrieval/recall_at_1", "retrieval/recall_at_5"}
    assert keys <= set(history.history) and all(len(history.history[k]) == 3 for k in keys)
    # epoch 0 measured, epoch 1 repeats it (every=2), epoch 2 measured on the final weights
    maps = history.history["retrieval/map_at_r"]
    assert maps[1] == maps[0]
    final = retrieval_metrics(keras.Model(inputs, embedding).predict(x, batch_size=256, verbose=0), y,
                              ks=(1, 5))
    assert maps[2] == pytest.approx(final["map_at_r"])
    with pytest.raises(ValueError, match="never be the test split"):
        RetrievalMonitor(probe=(x, y), probe_source="test")
