"""make_optimizer: the cosine schedule and the weight average that fit leaves in the model."""

import keras
import numpy as np
import pytest

from zoo.training.optimizers import make_optimizer


class RawWeights(keras.callbacks.Callback):
    """The kernel after every training step (before fit swaps in the average)."""

    def __init__(self):
        super().__init__()
        self.kernels = []

    def on_train_batch_end(self, batch, logs=None):
        self.kernels.append(keras.ops.convert_to_numpy(self.model.layers[-1].kernel).copy())


def fitted(ema_momentum, steps=12):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False)])
    model.compile(optimizer=make_optimizer(0.05, steps, ema_momentum=ema_momentum), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(steps * 4, 3)), rng.normal(size=(steps * 4, 2))
    raw = RawWeights()
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[raw])
    return keras.ops.convert_to_numpy(model.layers[-1].kernel), raw.kernels


def test_fit_ends_with_the_moving_average_of_the_weights():
    final, raw = fitted(0.8)
    average = raw[0]  # a_1 = w_1, then a_k = m a_(k-1) + (1 - m) w_k
    for kernel in raw[1:]:
        average = 0.8 * average + 0.2 * kernel
    np.testing.assert_allclose(final, average, rtol=1e-5, atol=1e-6)
    assert np.abs(final - raw[-1]).max() > 1e-3  # the average is not the last step's weights


def test_without_ema_fit_ends_with_the_last_weights():
    final, raw = fitted(None)
    np.testing.assert_allclose(final, raw[-1], rtol=1e-6)


def test_learning_rate_decays_to_zero_over_the_run():
    optimizer = make_optimizer(0.1, 10)
    rates = [float(optimizer._learning_rate(step))
             for step in (0, 5, 10)]
    np.testing.assert_allclose(rates, [0.1, 0.05, 0.0], atol=1e-7)


@pytest.mark.parametrize("momentum", [0.0, 1.0, -0.5, 1.5])
def test_bad_momentum_is_a_value_error(momentum):
    with pytest.raises(ValueError, match="ema_momentum"):
        make_optimizer(0.1, 10, ema_momentum=momentum)
