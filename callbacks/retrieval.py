"""Retrieval metrics of an embedding, as pytorch-metric-learning's AccuracyCalculator gives them.

Every query retrieves its nearest references by exact k-NN (`nearest_neighbours`: cosine
similarity or Euclidean distance, computed with `keras.ops` in batches of queries, so any
backend and no FAISS). When queries and references are the same set, each query's own entry
is left out. For query i with label y_i, let R_i be the number of references with label y_i
(itself excluded) and rel_i(k) = 1 if its k-th neighbour has label y_i, else 0:

    precision_at_1 = mean_i rel_i(1)
    r_precision    = mean_i (1/R_i) Σ_{k ≤ R_i} rel_i(k)
    map_at_r       = mean_i (1/R_i) Σ_{k ≤ R_i} rel_i(k) · P_i(k),  P_i(k) = (1/k) Σ_{j ≤ k} rel_i(j)
    recall_at_k    = mean_i max_{j ≤ k} rel_i(j)          (at least one right one in the top k)

Queries with R_i = 0 (a label no reference has) are left out of every mean, as in PML.
`clustering_scores` adds NMI and AMI of k-means clusters (scikit-learn) against the labels.

References: Musgrave, Belongie, Lim, "A Metric Learning Reality Check", ECCV 2020 (MAP@R,
R-precision); pytorch-metric-learning's `AccuracyCalculator` (the definitions above).
"""

from __future__ import annotations

import numpy as np

DISTANCES = ("cosine", "euclidean")


def _check(embeddings, labels, what):
    e = np.asarray(embeddings, np.float32)
    y = np.asarray(labels).reshape(-1)
    if e.ndim != 2 or len(e) != len(y) or len(e) == 0:
        raise ValueError(f"{what}: need embeddings (n, D) and n labels, n >= 1; got shapes "
                         f"{e.shape} and {y.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError(f"{what}: the embeddings hold NaN or inf")
    return e, y


def nearest_neighbours(queries, references, k, distance="cosine", same_set=False,
                       batch_size=1024):
    """Indices (Q, k) of each query's k nearest references, nearest first.

    Args:
        queries: (Q, D) embeddings.
        references: (N, D) embeddings.
        k: neighbours per query (at most N, or N - 1 with `same_set`).
        distance: "cosine" (largest cosine similarity first) or "euclidean".
        same_set: queries are the references (row i is reference i): leave each out.
        batch_size: queries per batch. Defaults to 1024.
    """
    from keras import ops

    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    q = np.asarray(queries, np.float32)
    r = np.asarray(references, np.float32)
    available = len(r) - (1 if same_set else 0)
    if not 1 <= int(k) <= available:
        raise ValueError(f"k must be in [1, {available}], got {k}")
    if distance == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
    references_t = ops.convert_to_tensor(r)
    squared = ops.sum(references_t ** 2, axis=1)
    found = []
    for start in range(0, len(q), batch_size):
        block = ops.convert_to_tensor(q[start:start + batch_size])
        scores = ops.matmul(block, ops.transpose(references_t))
        if distance == "euclidean":  # -‖q - r‖² up to a per-query constant
            scores = 2.0 * scores - squared[None, :]
        if same_set:
            rows = ops.arange(ops.shape(block)[0])
            self_mask = ops.equal(ops.arange(len(r))[None, :], (rows + start)[:, None])
            scores = ops.where(self_mask, -np.inf, scores)
        found.append(ops.convert_to_numpy(ops.top_k(scores, int(k))[1]))
    return np.concatenate(found).astype(np.int64)


def retrieval_metrics(embeddings, labels, reference_embeddings=None, reference_labels=None,
                      ks=(1, 5, 10), distance="cosine", batch_size=1024) -> dict:
    """precision_at_1, r_precision, map_at_r and recall_at_{k} for k in `ks` (see the module
    docstring), plus `queries` (how many counted).

    Args:
        embeddings, labels: the queries (n, D) and their labels (n,).
        reference_embeddings, reference_labels: the set searched. Defaults to None (the
            queries themselves, each query left out of its own search).
        ks: the k of Recall@k. Defaults to (1, 5, 10).
        distance: "cosine" or "euclidean". Defaults to "cosine".
        batch_size: queries per k-NN batch. Defaults to 1024.
    """
    q, qy = _check(embeddings, labels, "queries")
    same_set = reference_embeddings is None
    r, ry = (q, qy) if same_set else _check(reference_embeddings, reference_labels,
                                            "references")
    classes, counts = np.unique(ry, return_counts=True)
    per_class = dict(zip(classes.tolist(), counts.tolist()))
    relevant = np.array([per_class.get(label, 0) for label in qy.tolist()])
    if same_set:
        relevant = relevant - 1
    counted = relevant > 0
    if not np.any(counted):
        raise ValueError("no query has a reference of its own label")
    k_max = min(max(int(relevant.max()), max(ks)), len(r) - (1 if same_set else 0))
    neighbours = nearest_neighbours(q[counted], r, k_max, distance, False, batch_size) \
        if not same_set else nearest_neighbours(q, r, k_max, distance, True,
                                                batch_size)[counted]
    hits = (ry[neighbours] == qy[counted][:, None]).astype(np.float64)  # rel_i(k)
    big_r = relevant[counted]
    within_r = np.arange(k_max)[None, :] < big_r[:, None]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k_max + 1)[None, :]
    results = {
        "precision_at_1": float(hits[:, 0].mean()),
        "r_precision": float(np.mean(np.sum(hits * within_r, axis=1) / big_r)),
        "map_at_r": float(np.mean(np.sum(hits * precision_at * within_r, axis=1) / big_r)),
        "queries": int(counted.sum()),
    }
    for k in ks:
        results[f"recall_at_{k}"] = float(np.mean(hits[:, :min(int(k), k_max)].max(axis=1)))
    return results


def clustering_scores(embeddings, labels, seed=0) -> dict:
    """NMI and AMI of k-means clusters (as many as labels, scikit-learn's KMeans, 10 starts,
    seeded) against the labels; cosine-normalised embeddings, as the retrieval uses."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    e, y = _check(embeddings, labels, "embeddings")
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    clusters = KMeans(len(np.unique(y)), n_init=10, random_state=seed).fit_predict(e)
    return {"nmi": float(normalized_mutual_info_score(y, clusters)),
            "ami": float(adjusted_mutual_info_score(y, clusters))}
