"""`RetrievalMonitor`: retrieval metrics of the embedding of a fixed probe set, per epoch.

Metric learning is judged by retrieval (pytorch-metric-learning's AccuracyCalculator):
every probe image searches the other probe images by its embedding, and
`callbacks.retrieval.retrieval_metrics` scores what it finds (precision@1, R-precision,
MAP@R, Recall@k). The monitor writes them into `logs` at each epoch end as
`{prefix}{metric}` (e.g. "retrieval/map_at_r"), the same keys from epoch 0 on, so History,
CSVLogger and TensorBoard record them: place it before those loggers.
"""

from __future__ import annotations

import keras
import numpy as np

from callbacks.margin_monitor import checked_probe, embedding_submodel
from callbacks.retrieval import retrieval_metrics


class RetrievalMonitor(keras.callbacks.Callback):
    """Retrieval metrics of a probe set's embedding at the end of every `every` epochs.

    Args:
        probe: (x, y) — inputs (an array or a dict of arrays) and integer or one-hot
            labels. Keyword-only, required.
        probe_source: "validation" or "train" (never the test split). Keyword-only,
            required.
        layer_name: the embedding layer (else the model's `embedding_model`). Defaults to
            "embedding".
        ks: the k of Recall@k. Defaults to (1, 5, 10).
        distance: "cosine" or "euclidean". Defaults to "cosine".
        max_samples: a larger probe is subsampled once (seeded). Defaults to 4096.
        seed: seed of that subsampling. Defaults to 0.
        every: measure at epochs 0, every, 2·every, ... (the last measured values are
            repeated in between, so every epoch has the keys). Defaults to 1.
        batch_size: batch size of the probe prediction. Defaults to 256.
        prefix: prefix of the `logs` keys. Defaults to "retrieval/".
    """

    def __init__(self, *, probe, probe_source, layer_name="embedding", ks=(1, 5, 10),
                 distance="cosine", max_samples=4096, seed=0, every=1, batch_size=256,
                 prefix="retrieval/"):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1, got {every!r}")
        self.probe_x, self.probe_y = checked_probe(probe, probe_source, max_samples, seed)
        self.probe_source = probe_source
        self.layer_name, self.ks, self.distance = layer_name, tuple(ks), distance
        self.every, self.batch_size, self.prefix = every, batch_size, prefix
        self.history = {}
        self._embedder, self._embedder_of, self._last = None, None, None

    def compute(self) -> dict:
        """The metrics for the model's current weights (Python floats, no prefix)."""
        if self._embedder_of is not self.model:
            self._embedder = embedding_submodel(self.model, self.layer_name)
            self._embedder_of = self.model
        embeddings = self._embedder.predict(self.probe_x, batch_size=self.batch_size,
                                            verbose=0)
        found = retrieval_metrics(np.asarray(embeddings).reshape(len(self.probe_y), -1),
                                  self.probe_y, ks=self.ks, distance=self.distance)
        found.pop("queries")
        return found

    def on_epoch_end(self, epoch, logs=None):
        if self._last is None or epoch % self.every == 0:
            self._last = self.compute()
        for key, value in self._last.items():
            self.history.setdefault(f"{self.prefix}{key}", []).append(value)
            if logs is not None:
                logs[f"{self.prefix}{key}"] = value
