"""Pairwise distances and similarities: the ground floor of the metric losses.

Every function takes float embeddings (B, D) — and optionally a second set (N, D) — and
returns a float32 matrix (B, N) (N = B when the second set is omitted). They use `keras.ops`
only and are safe to differentiate everywhere:

| function                        | value                                  |
|---------------------------------|----------------------------------------|
| `pairwise_squared_distances`    | ‖a_i - b_j‖², >= 0, exact 0 on a set's own diagonal |
| `pairwise_distances`            | ‖a_i - b_j‖ with a safe sqrt: 0 and a finite gradient at 0 |
| `pairwise_cosine_similarity`    | â_i · b̂_j, norms floored (a zero vector gives 0) |
| `mahalanobis_squared_distances` | (a_i - b_j)ᵀ (L Lᵀ + εI) (a_i - b_j), ε > 0: M pos.-def. |
| `l2_normalize`                  | a / ‖a‖, squared norm floored at 1e-12 |

The squared distances use the Gram expansion ‖a‖² + ‖b‖² - 2 a·b (one matrix product, O(B·N)
memory instead of O(B·N·D)). Rounding can make it slightly negative for coincident points, so
it is clamped at 0, and the diagonal of a set against itself is set to exactly 0 (the
diagonal entries then carry no gradient, which is right: d(a, a) = 0 for every a).
"""

from __future__ import annotations

from keras import ops

_SQRT_FLOOR = 1e-12  # squared distances below this count as 0 in `pairwise_distances`
_NORM_FLOOR = 1e-12  # floor on squared norms, as in tf.math.l2_normalize


def _float32(x):
    return ops.cast(x, "float32")


def l2_normalize(x, axis=-1):
    """x / ‖x‖ along `axis`, in float32; the squared norm is floored at 1e-12 (x = 0 -> 0)."""
    x = _float32(x)
    return x * ops.rsqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True),
                                     _NORM_FLOOR))


def safe_sqrt(x, floor=_SQRT_FLOOR):
    """sqrt(x) for x >= 0, with value 0 and gradient 0 where x <= `floor`.

    Plain sqrt has an infinite derivative at 0 (and 0·inf = NaN through the chain rule);
    here the square root is taken of max(x, floor), so its derivative is at most
    1 / (2·sqrt(floor)), and entries at or below `floor` are replaced by an exact 0.
    """
    x = _float32(x)
    return ops.where(x > floor, ops.sqrt(ops.maximum(x, floor)), ops.zeros_like(x))


def pairwise_squared_distances(a, b=None):
    """Squared Euclidean distances ‖a_i - b_j‖², float32 (B, N).

    Formula:
        d²_ij = max(‖a_i‖² + ‖b_j‖² - 2·a_i·b_j, 0),   d²_ii = 0 exactly when b is None

    Args:
        a: Embeddings (B, D).
        b: Second set (N, D), or `None` for `a` against itself. Defaults to `None`.

    Returns:
        float32 tensor (B, N).
    """
    a = _float32(a)
    same = b is None
    b = a if same else _float32(b)
    a_sq = ops.sum(ops.square(a), axis=-1, keepdims=True)             # (B, 1)
    b_sq = ops.reshape(ops.sum(ops.square(b), axis=-1), (1, -1))       # (1, N)
    squared = ops.maximum(a_sq + b_sq - 2.0 * ops.matmul(a, ops.transpose(b)), 0.0)
    if same:
        squared = squared * (1.0 - ops.eye(ops.shape(a)[0], dtype="float32"))
    return squared


def pairwise_distances(a, b=None, squared=False):
    """Euclidean distances ‖a_i - b_j‖ (or their squares), float32 (B, N).

    Formula:
        d_ij = sqrt(d²_ij) where d²_ij > 1e-12, else 0        (see `safe_sqrt`)

    Args:
        a: Embeddings (B, D).
        b: Second set (N, D), or `None` for `a` against itself. Defaults to `None`.
        squared: Return squared distances instead. Defaults to `False`.

    Returns:
        float32 tensor (B, N); finite gradients even for coincident points.
    """
    squared_distances = pairwise_squared_distances(a, b)
    return squared_distances if squared else safe_sqrt(squared_distances)


def pairwise_cosine_similarity(a, b=None):
    """Cosine similarities â_i · b̂_j, float32 (B, N); a zero vector has similarity 0.

    Formula:
        s_ij = (a_i / ‖a_i‖) · (b_j / ‖b_j‖)          (squared norms floored at 1e-12)

    Args:
        a: Embeddings (B, D).
        b: Second set (N, D), or `None` for `a` against itself. Defaults to `None`.

    Returns:
        float32 tensor (B, N) in [-1, 1].
    """
    a_hat = l2_normalize(a)
    b_hat = a_hat if b is None else l2_normalize(b)
    return ops.clip(ops.matmul(a_hat, ops.transpose(b_hat)), -1.0, 1.0)


def mahalanobis_squared_distances(a, b, factor, epsilon=1e-3):
    """Squared Mahalanobis distances with a learned metric M = L Lᵀ + εI, float32 (B, N).

    Formula:
        d_ij = (a_i - b_j)ᵀ M (a_i - b_j) = ‖(a_i - b_j) L‖² + ε‖a_i - b_j‖²

    Computed as squared Euclidean distances between the projected rows a L and b L, plus ε
    times the plain ones, so M is never formed and d_ij >= ε‖a_i - b_j‖² >= 0 (M is
    positive-definite for ε > 0 whatever L is). Used by the "center" head for its
    distances to the class centers.

    Args:
        a: Embeddings (B, D).
        b: Second set, e.g. class centers (N, D).
        factor: L, a (D, K) matrix (K = D for the center head, initialised to the identity).
        epsilon: ε >= 0. Defaults to `1e-3`.

    Returns:
        float32 tensor (B, N).
    """
    a, b, factor = _float32(a), _float32(b), _float32(factor)
    projected = pairwise_squared_distances(ops.matmul(a, factor), ops.matmul(b, factor))
    if epsilon:
        projected = projected + epsilon * pairwise_squared_distances(a, b)
    return projected


def metric_matrix(factor, epsilon=1e-3):
    """M = L Lᵀ + εI, float32 (D, D), for a factor L of shape (D, K)."""
    factor = _float32(factor)
    dim = ops.shape(factor)[0]
    return ops.matmul(factor, ops.transpose(factor)) + epsilon * ops.eye(dim, dtype="float32")
