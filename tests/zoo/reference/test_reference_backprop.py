"""zoo.reference.backprop: each layer's backward pass against central finite differences
(no framework involved), then whole LeNets against tf.GradientTape gradients and actual
keras.optimizers.SGD steps, in float32 and float64."""

import numpy as np
import pytest

import keras
import zoo
from zoo.reference import backprop as bp

F32_TOL = 1e-5


@pytest.fixture(autouse=True)
def _seeded_weights():
    """Fixed initial weights for every test. Unseeded, the weights depended on what earlier
    tests drew from the global RNG. In one full-suite run a single element of c3/kernel's
    gradient was off by 6e-3 while all others agreed to 1e-6: the mark of a max-pooling
    window whose two largest inputs lie within float32 rounding, where the NumPy forward
    pass and TensorFlow's (oneDNN) pick different maxima and route the gradient to different
    pixels. The same checks pass for each of 40 seeded draws."""
    keras.utils.set_random_seed(1234)
F64_TOL = 1e-10


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def numeric_grad(f, arr, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of arr (in place)."""
    grad = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        plus = f()
        arr[idx] = old - eps
        minus = f()
        arr[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def naive_conv(x, w, b, padding):
    """Cross-correlation by explicit loops; Keras "same" = (k-1)//2 before, the rest after."""
    kh, kw = w.shape[:2]
    if padding == "same":
        pads = ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)
    else:
        pads = (0, 0), (0, 0)
    xp = np.pad(x, ((0, 0), *pads, (0, 0)))
    ho, wo = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
    y = np.zeros((x.shape[0], ho, wo, w.shape[3]))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, i : i + kh, j : j + kw, :]  # (N, kh, kw, C)
            y[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2])) + b
    return y


# --- each layer, framework-free -------------------------------------------------------------


@pytest.mark.parametrize(
    "padding, kernel, size",
    [("valid", (3, 3), (5, 6)), ("same", (3, 3), (5, 5)), ("same", (4, 2), (5, 4)),
     ("valid", (5, 5), (5, 5))],
)
def test_conv2d_forward_matches_loops_and_keras(padding, kernel, size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *size, 2))
    w = rng.normal(size=(*kernel, 2, 3))
    b = rng.normal(size=3)
    y, _ = bp.conv2d_forward(x, w, b, padding)
    np.testing.assert_allclose(y, naive_conv(x, w, b, padding), rtol=1e-12, atol=1e-12)
    keras_conv = keras.ops.convert_to_numpy(keras.ops.conv(x, w, padding=padding))
    keras_y = keras_conv + b
    # JAX computes in float32 unless x64 is enabled
    tolerance = 1e-10 if keras_conv.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, keras_y, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("padding, kernel", [("valid", (3, 3)), ("same", (3, 3)), ("same", (4, 2))])
@pytest.mark.parametrize("use_bias", [True, False])
def test_conv2d_backward_finite_differences(padding, kernel, use_bias):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 4, 2))
    w = rng.normal(size=(*kernel, 2, 3))
    b = rng.normal(size=3) if use_bias else None
    y, cache = bp.conv2d_forward(x, w, b, padding)
    r = rng.normal(size=y.shape)  # L = Σ r ⊙ y, so δ = r
    dx, dw, db = bp.conv2d_backward(r, cache)

    def loss():
        return float(np.sum(r * bp.conv2d_forward(x, w, b, padding)[0]))

    assert rel_err(dx, numeric_grad(loss, x)) < 1e-8
    assert rel_err(dw, numeric_grad(loss, w)) < 1e-8
    if use_bias:
        assert rel_err(db, numeric_grad(loss, b)) < 1e-8
    else:
        assert db is None


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("pool_size, size", [(2, (4, 4)), (2, (5, 7)), ((2, 3), (5, 6))])
def test_pool_forward_and_backward(kind, pool_size, size):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, *size, 3))
    fwd = bp.avg_pool_forward if kind == "avg" else bp.max_pool_forward
    bwd = bp.avg_pool_backward if kind == "avg" else bp.max_pool_backward
    ph, pw = (pool_size, pool_size) if np.isscalar(pool_size) else pool_size
    y, cache = fwd(x, pool_size)
    # forward: an independent loop over windows
    ho, wo = size[0] // ph, size[1] // pw
    expected = np.zeros((2, ho, wo, 3))
    reduce = np.mean if kind == "avg" else np.max
    for i in range(ho):
        for j in range(wo):
            expected[:, i, j] = reduce(x[:, i * ph : (i + 1) * ph, j * pw : (j + 1) * pw], (1, 2))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    # backward: central differences (random inputs have no ties)
    r = rng.normal(size=y.shape)
    dx = bwd(r, cache)
    numeric = numeric_grad(lambda: float(np.sum(r * fwd(x, pool_size)[0])), x)
    assert rel_err(dx, numeric) < 1e-8
    # rows/columns dropped by "valid" get no gradient
    assert not dx[:, ho * ph :].any() and not dx[:, :, wo * pw :].any()


@pytest.mark.tensorflow
def test_max_pool_ties_follow_tensorflow():
    import tensorflow as tf

    window_ties = np.array(
        [[1, 1, 0, 2, 5, 5],
         [1, 1, 2, 0, 5, 5],
         [3, 0, 0, 0, 7, 1],
         [0, 3, 0, 0, 7, 7]], dtype=np.float32)[None, :, :, None]
    x = tf.constant(window_ties)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = keras.layers.MaxPooling2D(2)(x)
    upstream = np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3, 1)
    tf_dx = tape.gradient(y, x, output_gradients=tf.constant(upstream)).numpy()
    ours_y, cache = bp.max_pool_forward(window_ties, 2)
    ours_dx = bp.max_pool_backward(upstream, cache)
    np.testing.assert_array_equal(ours_y, y.numpy())
    np.testing.assert_array_equal(ours_dx, tf_dx)
    # the documented convention: the first maximum in row-major order takes it all
    first = np.zeros((4, 6), np.float32)
    first[0, 0], first[0, 3], first[0, 4] = 1, 2, 3
    first[2, 0], first[2, 2], first[2, 4] = 4, 5, 6
    np.testing.assert_array_equal(ours_dx[0, :, :, 0], first)


def test_dense_and_flatten_backward_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 2, 2, 2))
    w = rng.normal(size=(8, 4))
    b = rng.normal(size=4)

    def run():
        flat, fcache = bp.flatten_forward(x)
        y, dcache = bp.dense_forward(flat, w, b)
        return flat, fcache, y, dcache

    flat, fcache, y, dcache = run()
    np.testing.assert_array_equal(flat[1], x[1].reshape(-1))  # C order, channels fastest
    np.testing.assert_allclose(y, flat @ w + b)
    r = rng.normal(size=y.shape)
    dflat, dw, db = bp.dense_backward(r, dcache)
    dx = bp.flatten_backward(dflat, fcache)

    def loss():
        return float(np.sum(r * run()[2]))

    assert rel_err(dx, numeric_grad(loss, x)) < 1e-8
    assert rel_err(dw, numeric_grad(loss, w)) < 1e-8
    assert rel_err(db, numeric_grad(loss, b)) < 1e-8


@pytest.mark.parametrize("name", bp.ACTIVATIONS)
def test_activation_backward_finite_differences(name):
    rng = np.random.default_rng(4)
    z = rng.normal(size=(3, 5))
    z[np.abs(z) < 1e-3] = 0.5  # keep away from ReLU's kink
    a, cache = bp.activation_forward(z, name)
    expected = {"relu": np.where(z > 0, z, 0.0), "sigmoid": 1 / (1 + np.exp(-z)),
                "tanh": np.tanh(z), "linear": z}[name]
    np.testing.assert_allclose(a, expected, rtol=1e-12, atol=1e-15)
    r = rng.normal(size=z.shape)
    dz = bp.activation_backward(r, cache)
    numeric = numeric_grad(lambda: float(np.sum(r * bp.activation_forward(z, name)[0])), z)
    assert rel_err(dz, numeric) < 1e-8


def test_relu_derivative_at_zero_is_zero():
    _, cache = bp.activation_forward(np.zeros(3), "relu")
    np.testing.assert_array_equal(bp.activation_backward(np.ones(3), cache), 0.0)


def test_sigmoid_is_finite_for_large_inputs():
    a, cache = bp.activation_forward(np.array([-1000.0, 0.0, 1000.0]), "sigmoid")
    np.testing.assert_allclose(a, [0.0, 0.5, 1.0])
    assert np.isfinite(bp.activation_backward(np.ones(3), cache)).all()


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("soft", [False, True])
def test_losses_value_and_finite_differences(loss, soft):
    rng = np.random.default_rng(5)
    z = rng.normal(size=(4, 3))
    if soft:
        t = rng.random((4, 3))
        t /= t.sum(axis=1, keepdims=True)
    else:
        t = np.eye(3)[[0, 2, 1, 2]]
    value, dz = bp.LOSSES[loss](z, t)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = (-(t * np.log(p)).sum(axis=1).mean() if loss == "cross_entropy"
                else ((p - t) ** 2).mean())
    assert abs(value - expected) < 1e-12
    keras_loss = (keras.losses.CategoricalCrossentropy(from_logits=True)(t, z)
                  if loss == "cross_entropy" else keras.losses.MeanSquaredError()(t, p))
    assert abs(value - float(keras_loss)) < 1e-6  # Keras computes in float32
    numeric = numeric_grad(lambda: bp.LOSSES[loss](z, t)[0], z)
    assert rel_err(dz, numeric) < 1e-8


def test_cross_entropy_hand_case():
    # z = (0, log 3): p = (1/4, 3/4); label 1 -> -log(3/4); dz = (p - t)/N = (1/4, -1/4)
    value, dz = bp.softmax_cross_entropy(np.array([[0.0, np.log(3.0)]]), np.array([[0.0, 1.0]]))
    assert abs(value - np.log(4 / 3)) < 1e-15
    np.testing.assert_allclose(dz, [[0.25, -0.25]], atol=1e-15)


# --- whole models against TensorFlow ----------------------------------------------------------


def keras_loss(loss, y, logits):
    # a Keras Loss computes in floatx() (float32) unless given a dtype
    dtype = logits.dtype.name
    if loss == "cross_entropy":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)(y, logits)
    onehot = keras.ops.one_hot(y, logits.shape[-1], dtype=dtype)
    return keras.losses.MeanSquaredError(dtype=dtype)(onehot, keras.ops.softmax(logits))


def tape_gradients(model, x, y, loss):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        logits = model(x)
        value = keras_loss(loss, y, logits)
    variables = model.trainable_variables
    grads = {v.path: g.numpy() for v, g in zip(variables, tape.gradient(value, variables))}
    return grads, float(value), logits


def float64_copy(model):
    """`model` rebuilt in float64 end to end, same weights.

    Building under the float64 policy is not enough: the zoo pins the logits layer (and
    Keras the Input) to float32, so the layers and the input are re-created as float64.
    """
    def clone(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float64"})

    inputs = keras.Input(model.inputs[0].shape[1:], dtype="float64")
    copy = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    copy.set_weights([w.astype(np.float64) for w in model.get_weights()])
    return copy


MODELS = [
    ("lenet5", "avg", "relu"),
    ("lenet5", "max", "relu"),
    ("lenet5", "max", "tanh"),
    ("lenet_tcnn", "avg", "sigmoid"),
    ("lenet_tcnn", "max", "sigmoid"),
]


@pytest.mark.tensorflow
@pytest.mark.parametrize("name, pooling, activation", MODELS)
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_model_gradients_match_gradient_tape_float32(name, pooling, activation, loss):
    model = zoo.create_model(name, pooling=pooling, activation=activation)
    rng = np.random.default_rng(6)
    for _ in range(3):  # several random batches
        x = rng.random((4, 28, 28, 1)).astype(np.float32)
        y = rng.integers(0, 10, size=4)
        grads, value = bp.gradients(model, x, y, loss=loss)
        expected, expected_value, logits = tape_gradients(model, x, y, loss)
        assert rel_err(bp.forward(model, x), logits) < F32_TOL
        assert abs(value - expected_value) <= F32_TOL * abs(expected_value)
        assert set(grads) == set(expected)
        for path, grad in grads.items():
            assert grad.dtype == np.float32
            assert rel_err(grad, expected[path]) < F32_TOL, path


@pytest.mark.tensorflow
@pytest.mark.parametrize("name, pooling, activation",
                         [("lenet5", "avg", "tanh"), ("lenet5", "max", "relu"),
                          ("lenet_tcnn", "max", "sigmoid")])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_model_gradients_match_gradient_tape_float64(name, pooling, activation, loss):
    keras.config.set_dtype_policy("float64")  # conftest restores float32
    model = float64_copy(zoo.create_model(name, pooling=pooling, activation=activation))
    assert {v.dtype for v in model.trainable_variables} == {"float64"}
    rng = np.random.default_rng(7)
    for _ in range(2):
        x = rng.random((3, 28, 28, 1))
        y = rng.integers(0, 10, size=3)
        grads, value = bp.gradients(model, x, y, loss=loss)
        expected, expected_value, _ = tape_gradients(model, x, y, loss)
        assert abs(value - expected_value) <= F64_TOL * abs(expected_value)
        for path, grad in grads.items():
            assert grad.dtype == np.float64
            assert rel_err(grad, expected[path]) < F64_TOL, path


@pytest.mark.tensorflow
def test_sequential_model_with_odd_shapes_matches_gradient_tape():
    # even "same" kernel, no bias, pooling that crops, a non-square pool, a Sequential model
    model = keras.Sequential([
        keras.Input((9, 9, 2)),
        keras.layers.Conv2D(3, 4, padding="same", use_bias=False, activation="tanh"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(4, 2, activation="sigmoid"),
        keras.layers.AveragePooling2D((2, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(5),
    ])
    rng = np.random.default_rng(8)
    x = rng.normal(size=(3, 9, 9, 2)).astype(np.float32)
    y = rng.integers(0, 5, size=3)
    for loss in ("cross_entropy", "mse"):
        grads, _ = bp.gradients(model, x, y, loss=loss)
        expected, _, _ = tape_gradients(model, x, y, loss)
        assert set(grads) == set(expected)
        for path, grad in grads.items():
            assert rel_err(grad, expected[path]) < F32_TOL, path


def _weights(model):
    return {v.path: keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables}


@pytest.mark.tensorflow
@pytest.mark.parametrize("name, pooling, activation",
                         [("lenet5", "avg", "relu"), ("lenet_tcnn", "max", "sigmoid")])
def test_sgd_step_matches_keras_optimizer_apply_gradients(name, pooling, activation):
    import tensorflow as tf

    model = zoo.create_model(name, pooling=pooling, activation=activation)
    optimizer = keras.optimizers.SGD(learning_rate=0.5)
    rng = np.random.default_rng(9)
    for loss in ("cross_entropy", "mse"):
        x = rng.random((4, 28, 28, 1)).astype(np.float32)
        y = rng.integers(0, 10, size=4)
        before = _weights(model)
        ours = bp.sgd_step(model, x, y, learning_rate=0.5, loss=loss)
        with tf.GradientTape() as tape:
            value = keras_loss(loss, y, model(x))
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(value, variables), variables))
        after = _weights(model)
        for path in before:
            assert rel_err(ours[path], after[path]) < F32_TOL, path
            # the step itself, which the weights' size would hide (float32 cancellation in
            # w' - w costs up to ~|w|/|Δw| ulps, hence the looser bound)
            assert rel_err(ours[path] - before[path], after[path] - before[path]) < 1e-4, path


def test_sgd_step_matches_compiled_train_on_batch():
    """An actual training step: model.compile(SGD) + train_on_batch, both losses."""
    for loss in ("cross_entropy", "mse"):
        model = zoo.create_model("lenet5", pooling="max", activation="tanh")
        if loss == "cross_entropy":
            keras_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        else:
            def keras_fn(t, z):
                return keras.losses.MeanSquaredError()(t, keras.ops.softmax(z))
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.3), loss=keras_fn,
                      jit_compile=False)
        rng = np.random.default_rng(10)
        x = rng.random((4, 28, 28, 1)).astype(np.float32)
        labels = rng.integers(0, 10, size=4)
        y = labels if loss == "cross_entropy" else np.eye(10, dtype=np.float32)[labels]
        before = _weights(model)
        ours = bp.sgd_step(model, x, y, learning_rate=0.3, loss=loss)
        _, value = bp.gradients(model, x, y, loss=loss)
        keras_value = model.train_on_batch(x, y)
        assert abs(value - float(keras_value)) <= F32_TOL * abs(value)
        after = _weights(model)
        for path in before:
            assert rel_err(ours[path], after[path]) < F32_TOL, path
            assert rel_err(ours[path] - before[path], after[path] - before[path]) < 1e-4, path


@pytest.mark.tensorflow
def test_float64_sgd_step_matches_keras():
    import tensorflow as tf

    keras.config.set_dtype_policy("float64")
    model = float64_copy(zoo.create_model("lenet5", pooling="max"))
    rng = np.random.default_rng(11)
    x = rng.random((3, 28, 28, 1))
    y = rng.integers(0, 10, size=3)
    before = _weights(model)
    ours = bp.sgd_step(model, x, y, learning_rate=0.1)
    with tf.GradientTape() as tape:
        value = keras_loss("cross_entropy", y, model(x))
    variables = model.trainable_variables
    # the optimizer keeps its learning rate in floatx(): float32 would round 0.1 to 1 + 1.5e-8
    keras.config.set_floatx("float64")
    try:
        optimizer = keras.optimizers.SGD(0.1)
    finally:
        keras.config.set_floatx("float32")
    optimizer.apply_gradients(zip(tape.gradient(value, variables), variables))
    after = _weights(model)
    for path in before:
        assert rel_err(ours[path] - before[path], after[path] - before[path]) < F64_TOL, path


def test_gradients_leave_the_model_unchanged_and_accept_one_hot():
    model = zoo.create_model("lenet_tcnn")
    before = _weights(model)
    rng = np.random.default_rng(12)
    x = rng.random((2, 28, 28, 1)).astype(np.float32)
    labels = np.array([3, 7])
    sparse, _ = bp.gradients(model, x, labels)
    dense, _ = bp.gradients(model, x, np.eye(10)[labels])
    column, _ = bp.gradients(model, x, labels[:, None])
    bp.sgd_step(model, x, labels, learning_rate=1.0)
    for path, value in _weights(model).items():
        np.testing.assert_array_equal(value, before[path])
        np.testing.assert_array_equal(sparse[path], dense[path])
        np.testing.assert_array_equal(sparse[path], column[path])


# --- bad input ---------------------------------------------------------------------------------


def _chain(*hidden):
    return keras.Sequential([keras.Input((6, 6, 1)), *hidden, keras.layers.Flatten(),
                             keras.layers.Dense(3)])


@pytest.mark.parametrize(
    "model, match",
    [
        (lambda: _chain(keras.layers.Dropout(0.5)), "Dropout"),
        (lambda: _chain(keras.layers.BatchNormalization()), "BatchNormalization"),
        (lambda: _chain(keras.layers.Conv2D(2, 3, activation="elu")), "activation"),
        (lambda: _chain(keras.layers.Conv2D(2, 3, strides=2)), "stride"),
        (lambda: _chain(keras.layers.MaxPooling2D(2, strides=1)), "strides = pool_size"),
        (lambda: _chain(keras.layers.Conv2D(2, 3, kernel_regularizer="l2")), "regularizer"),
    ],
)
def test_unsupported_models_raise(model, match):
    x = np.zeros((1, 6, 6, 1), np.float32)
    with pytest.raises(ValueError, match=match):
        bp.gradients(model(), x, np.array([0]))


def test_branching_model_raises():
    inputs = keras.Input((4,))
    a = keras.layers.Dense(3)(inputs)
    b = keras.layers.Dense(3)(inputs)
    model = keras.Model(inputs, keras.layers.Add()([a, b]))
    with pytest.raises(ValueError, match="not supported|single chain"):
        bp.gradients(model, np.zeros((1, 4), np.float32), np.array([0]))


def test_bad_arguments_raise():
    model = _chain()
    x = np.zeros((2, 6, 6, 1), np.float32)
    with pytest.raises(ValueError, match="loss must be one of"):
        bp.gradients(model, x, np.array([0, 1]), loss="hinge")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        bp.gradients(model, x, np.array([0, 3]))
    with pytest.raises(ValueError, match="must be integers"):
        bp.gradients(model, x, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"targets \(2, 3\)"):
        bp.gradients(model, x, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="x must have shape"):
        bp.gradients(model, np.zeros((2, 5, 6, 1)), np.array([0, 1]))
    with pytest.raises(ValueError, match="padding must be"):
        bp.conv2d_forward(np.zeros((1, 4, 4, 1)), np.zeros((3, 3, 1, 1)), padding="full")
    with pytest.raises(ValueError, match="channels"):
        bp.conv2d_forward(np.zeros((1, 4, 4, 2)), np.zeros((3, 3, 1, 1)))
    with pytest.raises(ValueError, match="smaller than the pool window"):
        bp.max_pool_forward(np.zeros((1, 1, 4, 1)), 2)
    with pytest.raises(ValueError, match="activation must be one of"):
        bp.activation_forward(np.zeros(2), "gelu")
    with pytest.raises(ValueError, match="dy must have shape"):
        bp.dense_backward(np.zeros((2, 2)), bp.dense_forward(np.zeros((2, 3)), np.zeros((3, 4)))[1])
