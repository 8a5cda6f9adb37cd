"""The optimizer every zoo run uses: Adam with a cosine decay to 0 over the whole run."""

from __future__ import annotations

import keras


def make_optimizer(learning_rate: float, total_steps: int, global_clipnorm=None,
                   ema_momentum=None):
    """Adam(CosineDecay(learning_rate, total_steps)), optionally with gradient clipping and
    an exponential moving average of the weights.

    With `ema_momentum` m the optimizer keeps, after every step k, the average
    a_k = m·a_(k−1) + (1 − m)·w_k of the trainable weights w_k (a_1 = w_1; Polyak averaging,
    as ultralytics' ModelEMA), and `model.fit` replaces the weights by it when it ends
    (Keras's `use_ema`, `finalize_variable_values`). The average spans about 1 / (1 − m)
    steps; non-trainable state such as BatchNormalization's moving statistics is not
    averaged.

    Args:
        learning_rate: the initial rate.
        total_steps: optimizer steps of the whole run (epochs x steps per epoch); the rate
            reaches 0 there.
        global_clipnorm: clip the gradients' global norm to this. Defaults to None (off).
        ema_momentum: m in (0, 1), or None for no averaging. Defaults to None.
    """
    schedule = keras.optimizers.schedules.CosineDecay(
        float(learning_rate), decay_steps=max(1, int(total_steps)))
    if ema_momentum is None:
        return keras.optimizers.Adam(schedule, global_clipnorm=global_clipnorm)
    if not 0.0 < float(ema_momentum) < 1.0:
        raise ValueError(f"ema_momentum must be in (0, 1) or None, got {ema_momentum!r}")
    return keras.optimizers.Adam(schedule, global_clipnorm=global_clipnorm, use_ema=True,
                                 ema_momentum=float(ema_momentum))
