"""Shared pieces of the detector tests: a tiny detector and non-trivial BatchNorm statistics."""

from __future__ import annotations

import keras
import numpy as np

# A detector small enough to build and run in a second; every stage of the real one.
TINY = {"widths": (8, 16, 16), "depths": (1, 1, 1), "neck_width": 8, "head_width": 8,
        "head_depth": 1}


def randomize_batchnorm(model, seed=0, mean_std=0.1):
    """Non-trivial BN statistics (γ, β, moving mean ~ N(0, `mean_std`), moving variance), so
    that fusing or exporting them is really tested."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n),
                               rng.normal(0, mean_std, n), rng.uniform(0.5, 1.5, n)])
