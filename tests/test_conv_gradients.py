"""Convolution gradients (and transposed convolutions) as forward convolutions (`tfgan2.conv_gradients`)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import conv_gradients
from tfgan2.layers import Conv2D, Conv2DTranspose


def _gradients(method, x, kernel, padding, strides=1):
    """First derivatives of a nonlinear loss of the convolution, and the second derivatives of
    the squared input gradient (the R1 pattern), w.r.t. the input and the kernel."""
    with tf.GradientTape(persistent=True) as outer:
        outer.watch([x, kernel])
        with tf.GradientTape() as inner:
            inner.watch([x, kernel])
            y = conv_gradients.conv2d(x, kernel, padding, method, strides=strides)
            loss = tf.reduce_sum(tf.sin(y))
        dx, dk = inner.gradient(loss, [x, kernel])
        penalty = tf.reduce_sum(tf.square(dx))
    return [dx, dk] + outer.gradient(penalty, [x, kernel])


def _transposed(method, x, kernel, output_hw, strides, padding):
    """The transposed convolution, the same derivatives as `_gradients`."""
    with tf.GradientTape(persistent=True) as outer:
        outer.watch([x, kernel])
        with tf.GradientTape() as inner:
            inner.watch([x, kernel])
            y = conv_gradients.conv2d_transpose(x, kernel, output_hw, strides, padding, method)
            loss = tf.reduce_sum(tf.sin(y))
        dx, dk = inner.gradient(loss, [x, kernel])
        penalty = tf.reduce_sum(tf.square(dx))
    return [y, dx, dk] + outer.gradient(penalty, [x, kernel])


def _assert_close(reference, values, names):
    for name, a, b in zip(names, reference, values):
        assert a.shape == b.shape, name
        scale = float(tf.reduce_max(tf.abs(a)))
        assert scale > 0, name
        assert float(tf.reduce_max(tf.abs(a - b))) <= 1e-5 * scale, name


@pytest.mark.parametrize("padding", ["SAME", "valid"])
@pytest.mark.parametrize("kernel_shape", [(5, 5, 3, 4), (4, 4, 2, 3), (3, 1, 2, 2), (1, 1, 3, 2)])
def test_forward_gradients_match_tensorflows(padding, kernel_shape):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 9, 8, kernel_shape[2])), tf.float32)
    kernel = tf.constant(rng.normal(size=kernel_shape), tf.float32)
    forward = conv_gradients.conv2d(x, kernel, padding, "forward")
    np.testing.assert_array_equal(forward, conv_gradients.conv2d(x, kernel, padding, "native"))
    _assert_close(_gradients("native", x, kernel, padding),
                  _gradients("forward", x, kernel, padding),
                  ("dx", "dkernel", "d2x", "d2kernel"))


# Even and odd sizes, kernels larger, equal and smaller than the stride, both paddings.
STRIDED = [((8, 8), (5, 5), 2, "SAME"), ((9, 7), (4, 4), 2, "SAME"), ((6, 11), (3, 2), 2, "VALID"),
           ((9, 7), (1, 1), 2, "SAME"), ((10, 9), (5, 3), 3, "SAME"), ((11, 8), (2, 2), 3, "VALID"),
           ((7, 6), (3, 3), 1, "SAME"), ((7, 6), (3, 2), 1, "VALID")]


@pytest.mark.parametrize("size, kernel_size, strides, padding", STRIDED)
def test_strided_input_gradient_by_phases_matches_tensorflows(size, kernel_size, strides,
                                                              padding):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, *size, 3)), tf.float32)
    kernel = tf.constant(rng.normal(size=(*kernel_size, 3, 4)), tf.float32)
    forward = conv_gradients.conv2d(x, kernel, padding, "forward", strides=strides)
    np.testing.assert_array_equal(
        forward, conv_gradients.conv2d(x, kernel, padding, "native", strides=strides))
    _assert_close(_gradients("native", x, kernel, padding, strides),
                  _gradients("forward", x, kernel, padding, strides),
                  ("dx", "dkernel", "d2x", "d2kernel"))
    dy = tf.constant(rng.normal(size=forward.shape), tf.float32)
    expected = tf.raw_ops.Conv2DBackpropInput(
        input_sizes=x.shape, filter=kernel, out_backprop=dy,
        strides=[1, strides, strides, 1], padding=padding.upper())
    _assert_close([expected], [conv_gradients.phase_input_gradient(
        dy, kernel, size, strides, padding)], ["phase"])


@pytest.mark.parametrize("size, kernel_size, strides, padding", STRIDED)
def test_transposed_convolution_by_phases_matches_tensorflows(size, kernel_size, strides,
                                                              padding):
    rng = np.random.default_rng(2)
    kernel = tf.constant(rng.normal(size=(*kernel_size, 3, 4)), tf.float32)
    small = tf.nn.conv2d(tf.zeros((2, *size, 3)), kernel, strides, padding.upper()).shape
    x = tf.constant(rng.normal(size=small), tf.float32)
    _assert_close(_transposed("native", x, kernel, size, strides, padding),
                  _transposed("forward", x, kernel, size, strides, padding),
                  ("y", "dx", "dkernel", "d2x", "d2kernel"))


@pytest.mark.parametrize("op", ["conv", "strided conv", "transposed conv"])
def test_forward_gradients_inside_tf_function_bfloat16(op):
    x = tf.cast(tf.random.stateless_normal((2, 6, 6, 3), seed=[1, 2]), tf.bfloat16)
    kernel = tf.cast(tf.random.stateless_normal((3, 3, 3, 4), seed=[3, 4]), tf.bfloat16)
    if op == "transposed conv":
        kernel = tf.transpose(kernel, [0, 1, 3, 2])  # (k, k, C_out = 4, C_in = 3)

    def apply(method):
        if op == "conv":
            return conv_gradients.conv2d(x, kernel, "SAME", method)
        if op == "strided conv":
            return conv_gradients.conv2d(x, kernel, "SAME", method, strides=2)
        return conv_gradients.conv2d_transpose(x, kernel, (12, 12), 2, "SAME", method)

    @tf.function
    def grads(method):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = apply(method)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
        return [y] + tape.gradient(loss, [x, kernel])

    for a, b in zip(grads("native"), grads("forward")):
        assert b.dtype == tf.bfloat16
        a, b = tf.cast(a, tf.float32), tf.cast(b, tf.float32)
        assert float(tf.reduce_max(tf.abs(a - b))) <= 0.02 * float(tf.reduce_max(tf.abs(a)))


def test_bad_method_and_padding_are_refused():
    x, kernel = tf.zeros((1, 4, 4, 1)), tf.zeros((3, 3, 1, 1))
    with pytest.raises(ValueError, match="one of .*native.*forward"):
        conv_gradients.conv2d(x, kernel, "SAME", "fast")
    with pytest.raises(ValueError, match="padding must be"):
        conv_gradients.conv2d(x, kernel, "causal", "forward")
    with pytest.raises(ValueError, match="one of"):
        with conv_gradients.method_scope("backward"):
            pass


def test_method_scope_sets_the_layers_default_and_restores_it():
    assert conv_gradients.default_method() == "native"
    with conv_gradients.method_scope("forward"):
        inside = Conv2D(2, 3, padding="same")
        explicit = Conv2D(2, 3, gradient="native")
    assert conv_gradients.default_method() == "native"
    assert (inside.gradient, explicit.gradient, Conv2D(2, 3).gradient) == \
        ("forward", "native", "native")
    with pytest.raises(ValueError, match="one of"):
        Conv2D(2, 3, gradient="fast")


@pytest.mark.parametrize("layer_type, kwargs", [(Conv2D, {}), (Conv2DTranspose, dict(strides=2))])
def test_layer_config_round_trip_and_checkpoint_compatibility(tmp_path, layer_type, kwargs):
    layer = layer_type(4, 3, padding="same", gradient="forward", name="c", **kwargs)
    model = keras.Sequential([keras.Input((6, 6, 2)), layer])
    clone = layer_type.from_config(layer.get_config())
    assert clone.gradient == "forward"
    # Same variables as Keras's layer: a checkpoint of the Keras layer restores into it.
    keras_type = getattr(keras.layers, layer_type.__name__)
    plain = keras.Sequential([keras.Input((6, 6, 2)),
                              keras_type(4, 3, padding="same", name="c", **kwargs)])
    path = str(tmp_path / "plain.weights.h5")
    plain.save_weights(path)
    model.load_weights(path)
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(model(x), plain(x), rtol=1e-5, atol=1e-5)
    saved = str(tmp_path / "model.keras")
    model.save(saved)
    loaded = keras.models.load_model(saved)
    assert type(loaded.layers[-1]) is layer_type and loaded.layers[-1].gradient == "forward"
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layer_type, kwargs, applies", [
    (Conv2D, dict(strides=2), True), (Conv2D, dict(strides=(2, 1)), False),
    (Conv2D, dict(dilation_rate=2), False), (Conv2DTranspose, dict(strides=2), True),
    (Conv2DTranspose, dict(strides=1), True),
    (Conv2DTranspose, dict(strides=2, output_padding=1), False),
    (Conv2DTranspose, dict(strides=(1, 2)), False)])
def test_layers_match_keras_and_fall_back_where_they_must(layer_type, kwargs, applies):
    layer = layer_type(3, 3, padding="same", gradient="forward", **kwargs)
    x = tf.random.stateless_normal((2, 8, 8, 2), seed=[0, 1])
    layer.build(x.shape)
    assert layer.forward_gradients_possible() == applies
    assert tfgan2.layers.uses_forward_gradients([keras.Sequential([layer])]) == applies
    reference = getattr(keras.layers, layer_type.__name__)(3, 3, padding="same", **kwargs)
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    results = []
    for model in (layer, reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x)
            loss = tf.reduce_sum(tf.sin(y))
        results.append([y, *tape.gradient(loss, [x, *model.trainable_weights])])
    for ours, keras_value in zip(*results):
        np.testing.assert_allclose(ours, keras_value, rtol=1e-5, atol=1e-5)


def _train(method, r1_gamma):
    keras.utils.set_random_seed(0)
    with conv_gradients.method_scope(method):
        generator = tfgan2.networks.dcgan_generator(latent_dim=8, resolution=16, channels=1,
                                                    capacity=4, filter_size=3)
        discriminator = tfgan2.networks.dcgan_discriminator(
            resolution=16, channels=1, capacity=4, filter_size=3, normalization="spectral")
    layers = [l.layer if hasattr(l, "layer") else l for l in
              generator.layers + discriminator.layers]
    convs = [l for l in layers if isinstance(l, (Conv2D, Conv2DTranspose))]
    assert {type(l) for l in convs} == {Conv2D, Conv2DTranspose}
    assert any(tuple(l.strides) == (2, 2) for l in convs if isinstance(l, Conv2D))
    assert all(l.gradient == method for l in convs)
    gan = tfgan2.GAN(generator, discriminator, latent_dim=8, seed=3)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3),
                loss="hinge", r1_gamma=r1_gamma)
    real = np.random.default_rng(2).uniform(-1, 1, (32, 16, 16, 1)).astype(np.float32)
    history = gan.fit(tf.data.Dataset.from_tensor_slices(real).batch(8), epochs=1, verbose=0)
    return history.history, generator.get_weights() + discriminator.get_weights()


def test_gan_trains_the_same_with_either_method():
    native_logs, native_weights = _train("native", r1_gamma=1.0)
    forward_logs, forward_weights = _train("forward", r1_gamma=1.0)
    for key in ("d_loss", "g_loss"):
        np.testing.assert_allclose(forward_logs[key], native_logs[key], rtol=1e-3, atol=1e-4)
    moved = 0
    for a, b in zip(native_weights, forward_weights):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4)
        moved += 1
    assert moved > 10
