"""LossLab callbacks: probes that watch what a loss does to a network while it trains.

- `WeightTrace`: per-variable update ‖W_t − W_{t−1}‖, relative update, norm, sparsity and the
  trajectories of a few scalar weights; bounded in memory, saved to / loaded from .npz.
- `MarginMonitor`: class separation (intra / inter centroid distances, Fisher, Mahalanobis)
  and, with a cosine head, angular margins of the embedding of a fixed probe set.
- `RetrievalMonitor`: retrieval metrics of that embedding (precision@1, R-precision, MAP@R,
  Recall@k; `callbacks.retrieval`, with NMI/AMI of k-means clusters in `clustering_scores`).
- `MagnitudePruning`: prunes the smallest weights (global or per layer, single weights or whole
  filters) on a `PolynomialSparsity` / `ConstantSparsity` schedule and keeps them at zero.

All write plain floats into `logs` at every epoch end, with the same keys from epoch 0, so
History, CSVLogger and TensorBoard record them: place them before those loggers.
"""

from callbacks.margin_monitor import (
    MarginMonitor,
    angular_metrics,
    find_cosine_heads,
    project_2d,
    separation_metrics,
)
from callbacks.retrieval import clustering_scores, nearest_neighbours, retrieval_metrics
from callbacks.pruning import (
    ConstantSparsity,
    MagnitudePruning,
    PolynomialSparsity,
    kernel_sparsity,
)
from callbacks.retrieval_monitor import RetrievalMonitor
from callbacks.plots import (
    plot_embedding_snapshots,
    plot_margin_metrics,
    plot_update_heatmap,
    plot_weight_trajectories,
    plot_weight_updates,
)
from callbacks.weight_trace import WeightTrace, aggregate_by_layer, load_trace

__all__ = [
    "WeightTrace",
    "MagnitudePruning",
    "PolynomialSparsity",
    "ConstantSparsity",
    "kernel_sparsity",
    "MarginMonitor",
    "RetrievalMonitor",
    "retrieval_metrics",
    "clustering_scores",
    "nearest_neighbours",
    "load_trace",
    "aggregate_by_layer",
    "separation_metrics",
    "angular_metrics",
    "project_2d",
    "find_cosine_heads",
    "plot_weight_updates",
    "plot_update_heatmap",
    "plot_weight_trajectories",
    "plot_margin_metrics",
    "plot_embedding_snapshots",
]
