"""Gradients with whichever Keras backend is active, so loss tests run on TF and JAX alike."""

import keras
import numpy as np


def value_and_grad(fn, y_pred):
    """Loss value and d loss / d y_pred with the active Keras backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.Variable(y_pred)
        with tf.GradientTape() as tape:
            value = fn(x)
        return value.numpy(), tape.gradient(value, x).numpy()
    if backend == "jax":
        import jax

        value, grad = jax.value_and_grad(fn)(jax.numpy.asarray(y_pred))
        return np.asarray(value), np.asarray(grad)
    if backend == "torch":
        import torch

        x = torch.tensor(y_pred, requires_grad=True)
        value = fn(x)
        value.backward()
        return value.detach().cpu().numpy(), x.grad.detach().cpu().numpy()
    raise NotImplementedError(backend)
