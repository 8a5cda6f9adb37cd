"""CTC in plain NumPy: forward (α) and backward (β) recursions in log space, the loss, the
gradient with respect to the logits, and a brute-force sum over all alignments.

This is the yardstick that `losses.sequence.CTCLoss` and `keras.ops.ctc_loss` are tested
against. One sample at a time, written for clarity, not speed.

Notation (Graves et al. 2006). Logits u (T, C) for one sample; y_k^t = softmax(u^t)_k; the
blank is `blank` (LossLab uses 0 everywhere). A label l = (l_1, ..., l_L) with no blanks is
extended to l' = (b, l_1, b, l_2, ..., b, l_L, b) of length S = 2L + 1 (indices s = 0..S-1
here, 1..S in the paper). The many-to-one map 𝓑 collapses repeats and then removes blanks,
e.g. 𝓑(a a ∅ b b) = 𝓑(∅ a b ∅) = "ab" and 𝓑(a ∅ a b) = "aab".

Formula:
    p(l|x) = Σ_{π : 𝓑(π) = l} Π_t y_{π_t}^t                                  (eq. 3)

    forward, α_t(s) = Σ over prefixes π_{1..t} that end in l'_s at t of Π_{t'≤t} y^{t'}:
        α_1(0) = y_b^1,  α_1(1) = y_{l_1}^1,  α_1(s) = 0 for s > 1             (eq. 6, 7)
        α_t(s) = (α_{t-1}(s) + α_{t-1}(s-1) + [l'_s ≠ b and l'_s ≠ l'_{s-2}] α_{t-1}(s-2))
                 · y_{l'_s}^t                                                  (eq. 6)
        p(l|x) = α_T(S-1) + α_T(S-2)                                           (eq. 8)

    backward, β_t(s) = Σ over suffixes π_{t+1..T} that continue from l'_s at t of
    Π_{t'>t} y^{t'} (this β EXCLUDES the emission at t; the paper's β̃ includes it, so
    β̃_t(s) = β_t(s) · y_{l'_s}^t):
        β_T(S-1) = β_T(S-2) = 1,  β_T(s) = 0 otherwise                          (eq. 10)
        β_t(s) = β_{t+1}(s) y_{l'_s}^{t+1} + β_{t+1}(s+1) y_{l'_{s+1}}^{t+1}
               + [l'_{s+2} ≠ b and l'_{s+2} ≠ l'_s] β_{t+1}(s+2) y_{l'_{s+2}}^{t+1}  (eq. 11)

    for every t:   p(l|x) = Σ_s α_t(s) β_t(s)                                  (eq. 14)
    loss           L = -ln p(l|x)
    gradient       ∂L/∂u_k^t = y_k^t - (1/p(l|x)) Σ_{s : l'_s = k} α_t(s) β_t(s)  (eq. 16)

    (The paper writes eq. 16 with its β̃ as y_k^t - (1/(y_k^t Z_t)) Σ α_t(s) β̃_t(s),
    Z_t = Σ_s α_t(s) β̃_t(s) / y_{l'_s}^t = p(l|x); dividing β̃ by y_k^t gives the form above.)

Everything runs in log space (log α, log β, logsumexp), so long sequences do not underflow.
An infeasible alignment (T < L + number of adjacent repeats in l) has p(l|x) = 0: the loss
is +inf and the gradient is undefined (`ctc_gradient` raises ValueError).

Reference: Graves, Fernández, Gomez, Schmidhuber, "Connectionist Temporal Classification:
Labelling Unsegmented Sequence Data with Recurrent Neural Networks", ICML 2006.
"""

from __future__ import annotations

import itertools

import numpy as np

BLANK_INDEX = 0


def log_softmax(logits):
    """log y = u - logsumexp(u) along the last axis, in float64."""
    u = np.asarray(logits, dtype=np.float64)
    u = u - u.max(axis=-1, keepdims=True)
    return u - np.log(np.exp(u).sum(axis=-1, keepdims=True))


def _logsumexp(*terms):
    stacked = np.stack(np.broadcast_arrays(*terms))
    top = stacked.max(axis=0)
    safe_top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return safe_top + np.log(np.exp(stacked - safe_top).sum(axis=0))


def _check(logits, label, blank):
    logits = np.asarray(logits, dtype=np.float64)
    label = np.asarray(label, dtype=np.int64).reshape(-1)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (T, C), got shape {logits.shape}")
    num_classes = logits.shape[1]
    if label.size and (label.min() < 0 or label.max() >= num_classes or np.any(label == blank)):
        raise ValueError(f"label ids must be in [0, {num_classes - 1}] and differ from the "
                         f"blank {blank}; got {label.tolist()}")
    return logits, label


def extend_with_blanks(label, blank=BLANK_INDEX):
    """l' = (b, l_1, b, l_2, ..., b, l_L, b), length 2L + 1."""
    label = np.asarray(label, dtype=np.int64).reshape(-1)
    extended = np.full(2 * label.size + 1, blank, dtype=np.int64)
    extended[1::2] = label
    return extended


def min_frames(label):
    """Fewest frames any alignment of `label` needs: L + number of adjacent repeats."""
    label = np.asarray(label).reshape(-1)
    return int(label.size + np.sum(label[1:] == label[:-1]))


def _shift(values, k, fill=-np.inf):
    """values[s - k] at position s (k > 0: from the left; k < 0: from the right)."""
    out = np.full_like(values, fill)
    if k > 0 and k < values.size:
        out[k:] = values[:-k]
    elif k < 0 and -k < values.size:
        out[:k] = values[-k:]
    return out


def _can_skip(extended, blank):
    """skip[s]: the transition s-2 -> s is allowed (l'_s not blank, l'_s != l'_{s-2})."""
    skip = np.zeros(extended.size, dtype=bool)
    skip[2:] = (extended[2:] != blank) & (extended[2:] != extended[:-2])
    return skip


def ctc_log_alpha(logits, label, blank=BLANK_INDEX):
    """log α_t(s) for t = 0..T-1 and s = 0..2L, shape (T, 2L + 1)."""
    logits, label = _check(logits, label, blank)
    log_y = log_softmax(logits)
    extended = extend_with_blanks(label, blank)
    num_steps, size = log_y.shape[0], extended.size
    skip = _can_skip(extended, blank)
    log_alpha = np.full((num_steps, size), -np.inf)
    log_alpha[0, 0] = log_y[0, blank]
    if size > 1:
        log_alpha[0, 1] = log_y[0, extended[1]]
    for t in range(1, num_steps):
        prev = log_alpha[t - 1]
        from_two = np.where(skip, _shift(prev, 2), -np.inf)
        log_alpha[t] = _logsumexp(prev, _shift(prev, 1), from_two) + log_y[t, extended]
    return log_alpha


def ctc_log_beta(logits, label, blank=BLANK_INDEX):
    """log β_t(s) (emission at t excluded), shape (T, 2L + 1)."""
    logits, label = _check(logits, label, blank)
    log_y = log_softmax(logits)
    extended = extend_with_blanks(label, blank)
    num_steps, size = log_y.shape[0], extended.size
    skip_ahead = _shift(_can_skip(extended, blank), -2, fill=False)  # s -> s + 2 allowed
    log_beta = np.full((num_steps, size), -np.inf)
    log_beta[-1, -1] = 0.0
    if size > 1:
        log_beta[-1, -2] = 0.0
    for t in range(num_steps - 2, -1, -1):
        emit = log_beta[t + 1] + log_y[t + 1, extended]  # β_{t+1}(s) y_{l'_s}^{t+1}
        to_two = np.where(skip_ahead, _shift(emit, -2), -np.inf)
        log_beta[t] = _logsumexp(emit, _shift(emit, -1), to_two)
    return log_beta


def ctc_log_likelihood(logits, label, blank=BLANK_INDEX):
    """ln p(l|x) from the forward pass (eq. 8); -inf when no alignment fits."""
    logits, label = _check(logits, label, blank)
    if logits.shape[0] == 0:  # no frames: only the empty label is emitted, with p = 1
        return 0.0 if label.size == 0 else -np.inf
    log_alpha = ctc_log_alpha(logits, label, blank)
    last = log_alpha[-1]
    return float(_logsumexp(last[-1], last[-2]) if last.size > 1 else last[-1])


def ctc_loss(logits, label, blank=BLANK_INDEX):
    """L = -ln p(l|x) for one sample: logits (T, C), label a 1-D array of ids (no padding)."""
    return -ctc_log_likelihood(logits, label, blank)


def ctc_gradient(logits, label, blank=BLANK_INDEX):
    """∂L/∂u (T, C) by eq. 16: y_k^t - (1/p) Σ_{s: l'_s = k} α_t(s) β_t(s)."""
    logits, label = _check(logits, label, blank)
    log_p = ctc_log_likelihood(logits, label, blank)
    if not np.isfinite(log_p):
        raise ValueError(f"infeasible alignment: T = {logits.shape[0]} frames cannot emit a "
                         f"label that needs {min_frames(label)}; p(l|x) = 0 has no gradient")
    extended = extend_with_blanks(label, blank)
    occupancy = np.exp(ctc_log_alpha(logits, label, blank)
                       + ctc_log_beta(logits, label, blank) - log_p)  # (T, S), rows sum to 1
    per_class = np.zeros(logits.shape)
    for s, k in enumerate(extended):
        per_class[:, k] += occupancy[:, s]
    return np.exp(log_softmax(logits)) - per_class


def collapse(path, blank=BLANK_INDEX):
    """𝓑(π): merge adjacent repeats, then drop blanks."""
    out, previous = [], None
    for k in path:
        if k != previous and k != blank:
            out.append(int(k))
        previous = k
    return tuple(out)


def ctc_brute_force_likelihood(logits, label, blank=BLANK_INDEX):
    """p(l|x) = Σ_{π ∈ C^T, 𝓑(π) = l} Π_t y_{π_t}^t by enumerating all C^T paths (eq. 3).

    Only for tiny cases (C^T paths; refuses more than 10^6).
    """
    logits, label = _check(logits, label, blank)
    y = np.exp(log_softmax(logits))
    num_steps, num_classes = y.shape
    if num_classes ** num_steps > 10**6:
        raise ValueError(f"C^T = {num_classes}^{num_steps} paths is too many to enumerate")
    target = tuple(int(k) for k in label)
    total = 0.0
    for path in itertools.product(range(num_classes), repeat=num_steps):
        if collapse(path, blank) == target:
            total += float(np.prod(y[np.arange(num_steps), path]))
    return total


def ctc_brute_force_labellings(logits, blank=BLANK_INDEX):
    """{labelling l: p(l|x)} for every labelling reachable in T frames (tiny cases only)."""
    logits = np.asarray(logits, dtype=np.float64)
    y = np.exp(log_softmax(logits))
    num_steps, num_classes = y.shape
    if num_classes ** num_steps > 10**6:
        raise ValueError(f"C^T = {num_classes}^{num_steps} paths is too many to enumerate")
    totals = {}
    for path in itertools.product(range(num_classes), repeat=num_steps):
        key = collapse(path, blank)
        totals[key] = totals.get(key, 0.0) + float(np.prod(y[np.arange(num_steps), path]))
    return totals


def ctc_batch_loss(logits, labels, logit_length=None, pad_value=-1, blank=BLANK_INDEX):
    """Per-sample losses (B,) for padded labels (B, S) and logits (B, T, C).

    Sample i uses its first `logit_length[i]` frames (all T when None) and the entries of
    `labels[i]` that differ from `pad_value`.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    lengths = (np.full(len(logits), logits.shape[1]) if logit_length is None
               else np.asarray(logit_length))
    return np.array([ctc_loss(logits[i, :lengths[i]], labels[i][labels[i] != pad_value], blank)
                     for i in range(len(logits))])
