"""RepVGG blocks, backbone and their re-parameterisation (zoo/repvgg.py).

Every check compares against a NumPy reference written here: a plain convolution with the
paper's symmetric one-pixel padding, BatchNormalization in inference mode, and the folding
formulas W' = γ/σ·W, b' = β - γμ/σ, σ = sqrt(var + ε).
"""

import numpy as np
import pytest

import keras
from keras import layers

import zoo.models.repvgg as repvgg
from zoo.registry import create_model, list_models

RepVGGBlock = repvgg.RepVGGBlock
TOL = 1e-4  # max abs difference allowed between the training form and the fused form


# --------------------------------------------------------------------------- NumPy reference


def np_conv(x, kernel, stride, pad):
    """NHWC cross-correlation with `pad` zeros on every side (PyTorch's `padding=pad`)."""
    x = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    kh, kw = kernel.shape[:2]
    out_h = (x.shape[1] - kh) // stride + 1
    out_w = (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]))
    for a in range(kh):
        for b in range(kw):
            rows = slice(a, a + stride * (out_h - 1) + 1, stride)
            cols = slice(b, b + stride * (out_w - 1) + 1, stride)
            patch = x[:, rows, cols]
            out += np.einsum("nhwc,co->nhwo", patch, kernel[a, b])
    return out


def np_bn(z, bn):
    gamma, beta, mean, var = (np.asarray(w, dtype=np.float64) for w in bn.get_weights())
    return gamma * (z - mean) / np.sqrt(var + bn.epsilon) + beta


def np_block(x, block):
    """The training-form block in inference mode, branch by branch."""
    x = np.asarray(x, dtype=np.float64)
    s = block.strides
    y = np_bn(np_conv(x, np.asarray(block.conv3x3.kernel, np.float64), s, 1), block.bn3x3)
    y += np_bn(np_conv(x, np.asarray(block.conv1x1.kernel, np.float64), s, 0), block.bn1x1)
    if block.filters == x.shape[-1] and s == 1:
        y += np_bn(x, block.bn_identity)
    return np.maximum(y, 0.0)


def np_fold(block):
    """Independent folding of the three branches into one 3x3 kernel and bias."""
    def scale_shift(bn):
        gamma, beta, mean, var = (np.asarray(w, dtype=np.float64) for w in bn.get_weights())
        t = gamma / np.sqrt(var + bn.epsilon)
        return t, beta - mean * t

    t3, c3 = scale_shift(block.bn3x3)
    t1, c1 = scale_shift(block.bn1x1)
    kernel = np.asarray(block.conv3x3.kernel, np.float64) * t3.reshape(1, 1, 1, -1)
    k1 = np.zeros_like(kernel)
    k1[1:2, 1:2] = np.asarray(block.conv1x1.kernel, np.float64) * t1.reshape(1, 1, 1, -1)
    kernel, bias = kernel + k1, c3 + c1
    if block.has_identity:
        tid, cid = scale_shift(block.bn_identity)
        eye = np.zeros_like(kernel)
        for i in range(kernel.shape[2]):
            eye[1, 1, i, i] = 1.0
        kernel, bias = kernel + eye * tid.reshape(1, 1, 1, -1), bias + cid
    return kernel, bias


def bns(model):
    return [layer for layer in model._flatten_layers()
            if isinstance(layer, layers.BatchNormalization)]


def randomise_bn(model, rng, var_range=(0.5, 2.0)):
    """γ, β, moving mean and moving variance away from their initial values."""
    for bn in bns(model):
        n = bn.gamma.shape[0]
        bn.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0.0, 0.3, n), rng.normal(0.0, 0.3, n),
                        rng.uniform(*var_range, n)])


def calibrate_bn(model, x, rng):
    """Moving statistics of the data (deep outputs stay O(1)), then jittered; γ, β random."""
    for bn in bns(model):
        bn.momentum = 0.0
    model(x, training=True)
    for bn in bns(model):
        gamma, beta, mean, var = bn.get_weights()
        n = gamma.shape[0]
        bn.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0.0, 0.3, n),
                        mean + rng.normal(0.0, 0.2, n) * np.sqrt(var),
                        var * rng.uniform(0.5, 2.0, n)])


def block_model(in_channels, filters, strides, **kwargs):
    inputs = keras.Input((None, None, in_channels))
    outputs = RepVGGBlock(filters, strides=strides, name="block", **kwargs)(inputs)
    return keras.Model(inputs, outputs)


def images(rng, n, h, w, c):
    return rng.normal(size=(n, h, w, c)).astype("float32")


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


# --------------------------------------------------------------------------- single blocks


def _unit_block(strides, w1):
    """1 channel, 3x3 kernel of ones, 1x1 kernel `w1`, every BN the identity map."""
    model = block_model(1, 1, strides)
    block = model.get_layer("block")
    block.conv3x3.set_weights([np.ones((3, 3, 1, 1))])
    block.conv1x1.set_weights([np.full((1, 1, 1, 1), w1)])
    for bn in bns(model):  # var = 1 - ε makes σ = 1
        bn.set_weights([np.ones(1), np.zeros(1), np.zeros(1), np.full(1, 1.0 - bn.epsilon)])
    return model


def test_block_hand_computed_stride_1():
    model = _unit_block(1, 2.0)
    x = np.arange(1, 10, dtype="float32").reshape(1, 3, 3, 1)
    # 3x3 window sums with zero padding + 2x (1x1 branch) + x (identity)
    expected = np.array([[12 + 3, 21 + 6, 16 + 9], [27 + 12, 45 + 15, 33 + 18],
                         [24 + 21, 39 + 24, 28 + 27]], dtype="float32")
    np.testing.assert_allclose(model(x)[0, :, :, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(repvgg.reparameterize(model)(x)[0, :, :, 0], expected, rtol=1e-5)


def test_block_hand_computed_stride_2_on_even_input():
    """The 3x3 window of output (i, j) is centred on input (2i, 2j), where the 1x1 reads."""
    model = _unit_block(2, 1.0)
    assert not model.get_layer("block").has_identity
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    # out[0,0]: x[0:2,0:2] + x[0,0]; out[0,1]: x[0:2,1:4] + x[0,2]; out[1,0]: x[1:4,0:2] + x[2,0]
    expected = np.array([[0 + 1 + 4 + 5 + 0, 1 + 2 + 3 + 5 + 6 + 7 + 2],
                         [4 + 5 + 8 + 9 + 12 + 13 + 8,
                          5 + 6 + 7 + 9 + 10 + 11 + 13 + 14 + 15 + 10]], dtype="float32")
    np.testing.assert_allclose(model(x)[0, :, :, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(repvgg.reparameterize(model)(x)[0, :, :, 0], expected, rtol=1e-5)


@pytest.mark.parametrize("in_channels,filters,strides,size,identity", [
    (4, 4, 1, (6, 7), True),      # identity branch
    (3, 5, 1, (5, 5), False),     # channel change: no identity
    (4, 4, 2, (8, 8), False),     # stride 2, even size (Keras "same" would pad asymmetrically)
    (4, 6, 2, (7, 9), False),     # stride 2, odd sizes
])
def test_block_and_fusion_match_numpy(in_channels, filters, strides, size, identity):
    rng = np.random.default_rng(in_channels * 10 + filters + strides)
    model = block_model(in_channels, filters, strides)
    block = model.get_layer("block")
    randomise_bn(model, rng)
    assert block.has_identity is identity
    x = images(rng, 2, *size, in_channels)
    reference = np_block(x, block)
    out_size = tuple((s - 1) // strides + 1 for s in size)
    assert reference.shape == (2, *out_size, filters)
    assert max_diff(model(x, training=False), reference) < 1e-5

    kernel, bias = block.fused_kernel_and_bias()
    np_kernel, np_bias = np_fold(block)
    assert kernel.shape == (3, 3, in_channels, filters) and bias.shape == (filters,)
    np.testing.assert_allclose(kernel, np_kernel, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bias, np_bias, rtol=1e-6, atol=1e-6)
    # the folded kernel, applied by NumPy with the paper's padding, is the block
    assert max_diff(np.maximum(np_conv(x, np_kernel, strides, 1) + np_bias, 0), reference) < 1e-5

    fused = repvgg.reparameterize(model)
    assert max_diff(fused(x, training=False), reference) < TOL
    assert max_diff(fused(x, training=False), model(x, training=False)) < TOL


def test_each_batchnorm_epsilon_is_folded():
    rng = np.random.default_rng(7)
    model = block_model(3, 3, 1, bn_epsilon=0.3)
    block = model.get_layer("block")
    randomise_bn(model, rng, var_range=(0.01, 0.1))  # small variances: ε matters
    block.bn1x1.epsilon = 1e-5
    block.bn_identity.epsilon = 0.05
    x = images(rng, 2, 5, 5, 3)
    reference = np_block(x, block)
    assert max_diff(model(x, training=False), reference) < 1e-5
    assert max_diff(repvgg.reparameterize(model)(x), reference) < TOL
    # folding with Keras's default ε instead would be visibly wrong
    for bn in bns(model):
        bn.epsilon = 1e-3
    assert max_diff(np_block(x, block), reference) > 1e-2


def test_deploy_block_form():
    rng = np.random.default_rng(3)
    train = block_model(4, 4, 1)
    randomise_bn(train, rng)
    deploy = block_model(4, 4, 1, deploy=True)
    block = deploy.get_layer("block")
    assert [w.shape for w in block.weights] == [(3, 3, 4, 4), (4,)]
    kernel, bias = train.get_layer("block").fused_kernel_and_bias()
    block.fused.set_weights([kernel, bias])
    x = images(rng, 2, 6, 6, 4)
    assert max_diff(deploy(x), train(x, training=False)) < TOL
    np.testing.assert_array_equal(block.fused_kernel_and_bias()[0], kernel)
    # a model of deploy-form blocks is copied as it is
    assert max_diff(repvgg.reparameterize(deploy)(x), deploy(x)) < 1e-6


# --------------------------------------------------------------------------- backbone


def _block_params(widths, depths, in_channels):
    """(training-form, deploy-form) parameter counts of the stages, by hand."""
    train = deploy = 0
    for width, depth in zip(widths, depths):
        for b in range(depth):
            cin = in_channels
            train += 9 * cin * width + cin * width + 2 * 4 * width  # 3x3, 1x1, two BNs
            if b > 0 and cin == width:
                train += 4 * cin  # identity BN
            deploy += 9 * cin * width + width
            in_channels = width
    return train, deploy


def test_backbone_fusion_on_variable_sizes():
    rng = np.random.default_rng(0)
    widths, depths = (8, 16, 16), (1, 3, 2)
    model = repvgg.repvgg_backbone((None, None, 3), widths, depths, return_stages=True)
    calibrate_bn(model, images(rng, 4, 16, 16, 3), rng)
    fused = repvgg.reparameterize(model)

    kinds = {type(layer).__name__ for layer in fused.layers}
    assert kinds == {"InputLayer", "ZeroPadding2D", "Conv2D", "ReLU"}
    convs = [layer for layer in fused.layers if isinstance(layer, layers.Conv2D)]
    assert len(convs) == sum(depths)
    assert all(c.kernel_size == (3, 3) and c.use_bias for c in convs)
    assert sum(isinstance(layer, layers.ZeroPadding2D) for layer in fused.layers) == len(depths)
    assert not bns(fused)
    assert (model.count_params(), fused.count_params()) == _block_params(widths, depths, 3)

    for size in [(16, 16), (17, 23), (9, 8)]:
        x = images(rng, 2, *size, 3)
        outs, fused_outs = model(x, training=False), fused(x)
        h, w = size
        for stage, (out, fused_out) in enumerate(zip(outs, fused_outs)):
            h, w = (h + 1) // 2, (w + 1) // 2
            assert out.shape == (2, h, w, widths[stage])
            assert float(np.max(np.abs(out))) > 0.1  # not vacuously small
            assert max_diff(out, fused_out) < TOL, (size, stage)


def test_classifier_trains_then_fuses_exactly():
    assert {"repvgg_tiny", "repvgg_a0"} <= set(list_models("repvgg*"))
    rng = np.random.default_rng(1)
    widths, depths = (8, 16, 16, 32), (1, 2, 1, 2)
    model = create_model("repvgg_tiny", num_classes=5, input_shape=(16, 16, 3), widths=widths,
                         depths=depths)
    assert model.output_shape == (None, 5)
    assert model.get_layer("embedding").output.shape == (None, 32)
    x, y = images(rng, 8, 16, 16, 3), rng.integers(0, 5, 8)
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=False)
    before = model.get_layer("stage0_block0").conv3x3.get_weights()[0].copy()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # BN statistics move off their init
    assert not np.allclose(model.get_layer("stage0_block0").conv3x3.get_weights()[0], before)
    randomise_bn(model, rng)

    fused = repvgg.reparameterize(model)
    train_params, deploy_params = _block_params(widths, depths, 3)
    head = (32 + 1) * 5
    assert model.count_params() == train_params + head
    assert fused.count_params() == deploy_params + head
    logits, fused_logits = model(x, training=False), fused(x)
    assert keras.backend.standardize_dtype(fused_logits.dtype) == "float32"
    assert max_diff(logits, fused_logits) < TOL
    # nothing is shared: changing the trained model leaves the fused copy alone
    model.get_layer("logits").kernel.assign(np.zeros((32, 5)))
    assert max_diff(fused(x), fused_logits) == 0.0


def test_pluggable_head_and_nested_detector_backbone():
    rng = np.random.default_rng(2)
    model = repvgg.repvgg_tiny(num_classes=4, input_shape=(None, None, 3), widths=(8, 8),
                              depths=(1, 2), embedding_dim=6, head="cosine")
    randomise_bn(model, rng)
    x = images(rng, 2, 12, 12, 3)
    assert max_diff(repvgg.reparameterize(model)(x), model(x, training=False)) < TOL

    # a detector-like model holding the backbone as a nested functional model
    backbone = repvgg.repvgg_backbone((None, None, 3), widths=(8, 8), depths=(2, 1),
                                      return_stages=True)
    randomise_bn(backbone, rng)
    inputs = keras.Input((None, None, 3))
    p1, p2 = backbone(inputs)
    outputs = [layers.Conv2D(3, 1, name="head1")(p1), layers.Conv2D(3, 1, name="head2")(p2)]
    detector = keras.Model(inputs, outputs)
    fused = repvgg.reparameterize(detector)
    assert not any(isinstance(layer, RepVGGBlock) for layer in fused._flatten_layers())
    x = images(rng, 2, 10, 14, 3)
    for a, b in zip(detector(x, training=False), fused(x)):
        assert a.shape == b.shape and max_diff(a, b) < TOL


def test_repvgg_a0_parameter_counts():
    model = repvgg.repvgg_a0()
    widths, depths = (48, 48, 96, 192, 1280), (1, 2, 4, 14, 1)
    train_params, deploy_params = _block_params(widths, depths, 3)
    head = 1281 * 1000
    assert model.count_params() == train_params + head
    assert model.get_layer("stage4_block0").output.shape == (None, 7, 7, 1280)
    fused = repvgg.reparameterize(model)
    assert fused.count_params() == deploy_params + head
    assert abs(fused.count_params() / 8.30e6 - 1) < 0.005  # the paper reports 8.30M


# --------------------------------------------------------------------------- saving, precision


def test_save_and_load_both_forms(tmp_path):
    rng = np.random.default_rng(4)
    model = repvgg.repvgg_tiny(num_classes=3, input_shape=(None, None, 3), widths=(8, 8, 16),
                               depths=(1, 2, 1))
    randomise_bn(model, rng)
    fused = repvgg.reparameterize(model)
    deploy_blocks = repvgg.repvgg_backbone((None, None, 3), widths=(4,), depths=(2,), deploy=True)
    x = images(rng, 2, 11, 13, 3)
    for name, original in [("train", model), ("fused", fused), ("deploy_blocks", deploy_blocks)]:
        path = str(tmp_path / f"{name}.keras")
        original.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        assert max_diff(loaded(x, training=False), original(x, training=False)) < 1e-6, name
    loaded = keras.saving.load_model(str(tmp_path / "train.keras"), safe_mode=True)
    block = loaded.get_layer("stage1_block1")
    assert isinstance(block, RepVGGBlock) and block.has_identity and not block.deploy
    assert block.get_config()["filters"] == 8 and block.get_config()["strides"] == 1
    assert max_diff(repvgg.reparameterize(loaded)(x), fused(x)) < 1e-6


def test_block_config_round_trip():
    block = RepVGGBlock(6, strides=2, deploy=True, kernel_initializer="glorot_uniform",
                        bn_momentum=0.9, bn_epsilon=1e-5, name="b")
    config = block.get_config()
    clone = RepVGGBlock.from_config(config)
    assert clone.get_config() == config
    expected = {"filters": 6, "strides": 2, "deploy": True, "bn_momentum": 0.9, "bn_epsilon": 1e-5}
    assert {key: config[key] for key in expected} == expected


def test_mixed_precision_block_folds():
    keras.config.set_dtype_policy("mixed_bfloat16")
    rng = np.random.default_rng(5)
    model = block_model(4, 4, 1)
    randomise_bn(model, rng)
    x = images(rng, 2, 6, 6, 4)
    out = model(x, training=False)
    fused = repvgg.reparameterize(model)
    fused_out = fused(x)
    std = keras.backend.standardize_dtype
    assert std(out.dtype) == std(fused_out.dtype) == "bfloat16"
    assert fused.get_layer("block").kernel.dtype == "float32"  # variables stay float32
    scale = float(np.max(np.abs(np.asarray(out, np.float32))))
    assert np.all(np.isfinite(np.asarray(fused_out, np.float32)))
    assert max_diff(np.asarray(out, np.float32), np.asarray(fused_out, np.float32)) < 0.05 * scale


# --------------------------------------------------------------------------- bad input


def test_bad_arguments():
    with pytest.raises(ValueError, match="filters must be a positive integer"):
        RepVGGBlock(0)
    with pytest.raises(ValueError, match="strides must be 1 or 2"):
        RepVGGBlock(4, strides=3)
    with pytest.raises(ValueError, match="same length"):
        repvgg.repvgg_backbone(widths=(8, 16), depths=(1,))
    with pytest.raises(ValueError, match="depths must be positive integers"):
        repvgg.repvgg_backbone(widths=(8,), depths=(0,))
    with pytest.raises(ValueError, match=r"expects \(batch, height, width, channels\)"):
        RepVGGBlock(4)(keras.Input((5, 3)))
    with pytest.raises(ValueError, match="not built yet"):
        RepVGGBlock(4).fused_kernel_and_bias()
    with pytest.raises(ValueError, match="functional keras.Model"):
        repvgg.reparameterize(keras.Sequential([keras.Input((8, 8, 3)), RepVGGBlock(4)]))
    inner = keras.Sequential([keras.Input((8, 8, 3)), RepVGGBlock(4, name="inner_block")])
    inputs = keras.Input((8, 8, 3))
    with pytest.raises(ValueError, match="could not fold the RepVGG blocks"):
        repvgg.reparameterize(keras.Model(inputs, inner(inputs)))
