"""Data-parallel training: one model, each global batch split over the devices of a machine.

    python -m zoo.train --model lenet5 --distribute mirrored            # TensorFlow: all GPUs
    KERAS_BACKEND=jax python -m zoo.train ... --distribute data-parallel  # JAX: all devices

| --distribute  | backend    | engine                                                  |
|---------------|------------|---------------------------------------------------------|
| mirrored      | TensorFlow | `tf.distribute.MirroredStrategy` (the local GPUs, else the CPU) |
| data-parallel | JAX        | `keras.distribution.DataParallel` (all `jax.devices()`)  |

What a user should know:

- `--batch-size` is the global batch: with R replicas each takes batch/R samples per step,
  and the learning rate is the one for that global batch.
- Per-sample losses (classification, margins, CTC, boxes) give the one-device gradient:
  Keras divides each replica's mean loss by R and sums the replicas' gradients.
- Losses that mine pairs or triplets inside the batch (contrastive, triplet, multi-similarity,
  circle, ...) mine **within each replica's share of the batch** under tf.distribute: the
  step is the mean of the replicas' steps, each over batch/R samples, so keep batch/R large
  enough to hold positives (the P×K sampler puts whole classes together, in order). Under
  JAX's `DataParallel` the loss is one program over the sharded global batch, so mining sees
  all of it. `tests/losses/test_data_parallel.py` checks both on two CPU devices.
- BatchNormalization normalises with each replica's own statistics (Keras's default).
- Refused under `mirrored`: the cross-batch memory (`xbm`: each replica would overwrite the
  queue with its share) and the detector (its XLA-compiled step could not be placed on two
  devices in our tests).
- Several machines: Keras 3's `fit` fails under TensorFlow's
  `MultiWorkerMirroredStrategy` (keras-team/keras#20585, still open; reproduced here with
  Keras 3.15: the symbolic build reduces the first batch across workers and TensorFlow
  cannot convert it), so there is no `multiworker` option. Keras's multi-host route is JAX:
  `keras.distribution.initialize()` in every process, then `--distribute data-parallel`
  (see the README).
"""

from __future__ import annotations

import contextlib
import dataclasses

import keras

from zoo.training.config import ConfigError

DISTRIBUTE = ("mirrored", "data-parallel")
BACKEND_OF = {"mirrored": "tensorflow", "data-parallel": "jax"}


@dataclasses.dataclass(frozen=True)
class Placement:
    """How this run trains: the engine (None: one device) and the number of replicas."""

    strategy: str | None = None
    replicas: int = 1

    def to_json(self) -> dict:
        return {"strategy": self.strategy, "replicas": self.replicas}


def check(name: str | None) -> None:
    """ConfigError unless `name` is None or a strategy of the running Keras backend."""
    if name is None:
        return
    if name not in DISTRIBUTE:
        raise ConfigError(f"distribute must be one of {', '.join(DISTRIBUTE)} (or unset), got "
                          f"{name!r}")
    backend = keras.backend.backend()
    if BACKEND_OF[name] != backend:
        other = [n for n, b in BACKEND_OF.items() if b == backend]
        hint = f"; use --distribute {other[0]}" if other else ""
        raise ConfigError(f"--distribute {name} needs the {BACKEND_OF[name]} backend, this is "
                          f"{backend}{hint}")


@contextlib.contextmanager
def distributed(name: str | None):
    """Build, train and score inside this context; yields the `Placement`. Every variable
    the run creates is created under the strategy (TensorFlow) or the distribution (JAX)."""
    check(name)
    if name is None:
        yield Placement()
    elif name == "data-parallel":
        import jax

        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(
            devices=jax.devices()))
        try:
            yield Placement(name, len(jax.devices()))
        finally:
            keras.distribution.set_distribution(previous)
    else:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        with strategy.scope():
            yield Placement(name, int(strategy.num_replicas_in_sync))
