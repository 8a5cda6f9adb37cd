"""The optimizer every zoo run uses: Adam with a cosine decay to 0 over the whole run."""

from __future__ import annotations

import keras


def make_optimizer(learning_rate: float, total_steps: int, global_clipnorm=None):
    """Adam(CosineDecay(learning_rate, total_steps)), optionally with gradient clipping.

    Args:
        learning_rate: the initial rate.
        total_steps: optimizer steps of the whole run (epochs x steps per epoch); the rate
            reaches 0 there.
        global_clipnorm: clip the gradients' global norm to this. Defaults to None (off).
    """
    schedule = keras.optimizers.schedules.CosineDecay(
        float(learning_rate), decay_steps=max(1, int(total_steps)))
    return keras.optimizers.Adam(schedule, global_clipnorm=global_clipnorm)
