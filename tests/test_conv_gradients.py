"""Stride-1 convolution gradients as forward convolutions (`tfgan2.conv_gradients`)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import conv_gradients
from tfgan2.layers import Conv2D


def _gradients(method, x, kernel, padding):
    """First derivatives of a nonlinear loss of the convolution, and the second derivatives of
    the squared input gradient (the R1 pattern), w.r.t. the input and the kernel."""
    with tf.GradientTape(persistent=True) as outer:
        outer.watch([x, kernel])
        with tf.GradientTape() as inner:
            inner.watch([x, kernel])
            loss = tf.reduce_sum(tf.sin(conv_gradients.conv2d(x, kernel, padding, method)))
        dx, dk = inner.gradient(loss, [x, kernel])
        penalty = tf.reduce_sum(tf.square(dx))
    return [dx, dk] + outer.gradient(penalty, [x, kernel])


@pytest.mark.parametrize("padding", ["SAME", "valid"])
@pytest.mark.parametrize("kernel_shape", [(5, 5, 3, 4), (4, 4, 2, 3), (3, 1, 2, 2), (1, 1, 3, 2)])
def test_forward_gradients_match_tensorflows(padding, kernel_shape):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 9, 8, kernel_shape[2])), tf.float32)
    kernel = tf.constant(rng.normal(size=kernel_shape), tf.float32)
    forward = conv_gradients.conv2d(x, kernel, padding, "forward")
    np.testing.assert_array_equal(forward, conv_gradients.conv2d(x, kernel, padding, "native"))
    for name, a, b in zip(("dx", "dkernel", "d2x", "d2kernel"),
                          _gradients("native", x, kernel, padding),
                          _gradients("forward", x, kernel, padding)):
        assert a.shape == b.shape, name
        scale = float(tf.reduce_max(tf.abs(a)))
        assert scale > 0, name
        assert float(tf.reduce_max(tf.abs(a - b))) <= 1e-5 * scale, name


def test_forward_gradients_inside_tf_function_bfloat16():
    x = tf.cast(tf.random.stateless_normal((2, 6, 6, 3), seed=[1, 2]), tf.bfloat16)
    kernel = tf.cast(tf.random.stateless_normal((3, 3, 3, 4), seed=[3, 4]), tf.bfloat16)

    @tf.function
    def grads(method):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = tf.cast(conv_gradients.conv2d(x, kernel, "SAME", method), tf.float32)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, kernel])

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


def test_layer_config_round_trip_and_checkpoint_compatibility(tmp_path):
    layer = Conv2D(4, 3, padding="same", gradient="forward", name="c")
    model = keras.Sequential([keras.Input((6, 6, 2)), layer])
    clone = Conv2D.from_config(layer.get_config())
    assert clone.gradient == "forward"
    # Same variables as Keras's layer: a Keras Conv2D checkpoint restores into it.
    plain = keras.Sequential([keras.Input((6, 6, 2)),
                              keras.layers.Conv2D(4, 3, padding="same", name="c")])
    path = str(tmp_path / "plain.weights.h5")
    plain.save_weights(path)
    model.load_weights(path)
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(model(x), plain(x), rtol=1e-6, atol=1e-6)
    saved = str(tmp_path / "model.keras")
    model.save(saved)
    loaded = keras.models.load_model(saved)
    assert loaded.layers[-1].gradient == "forward"
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(strides=2), dict(dilation_rate=2)])
def test_strided_or_dilated_layers_keep_tensorflows_gradients(kwargs):
    layer = Conv2D(3, 3, padding="same", gradient="forward", **kwargs)
    x = tf.random.stateless_normal((1, 8, 8, 2), seed=[0, 1])
    layer.build(x.shape)
    assert not layer._forward_gradients_apply()
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    grad = tape.gradient(y, x)
    reference = keras.layers.Conv2D(3, 3, padding="same", **kwargs)
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    with tf.GradientTape() as tape:
        tape.watch(x)
        y_ref = reference(x)
    np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grad, tape.gradient(y_ref, x), rtol=1e-5, atol=1e-6)


def _train(method, r1_gamma):
    keras.utils.set_random_seed(0)
    with conv_gradients.method_scope(method):
        generator = tfgan2.networks.dcgan_generator(latent_dim=8, resolution=16, channels=1,
                                                    capacity=4, filter_size=3)
        discriminator = tfgan2.networks.dcgan_discriminator(
            resolution=16, channels=1, capacity=4, filter_size=3, normalization="spectral")
    layers = [l.layer if hasattr(l, "layer") else l for l in
              generator.layers + discriminator.layers]
    convs = [l for l in layers if isinstance(l, Conv2D)]
    assert convs and all(l.gradient == method for l in convs)
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
