"""tfgan2.layers.SpectralNormalization: raw kernel, gradient through sigma, u per D update."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import callbacks, layers, networks


def sn_discriminator(shape=(4, 4, 1), wrapper=layers.SpectralNormalization):
    inputs = keras.Input(shape)
    x = keras.layers.Flatten()(inputs)
    x = wrapper(keras.layers.Dense(8), name="fc_sn")(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    outputs = wrapper(keras.layers.Dense(1), name="logit_sn")(x)
    return keras.Model(inputs, outputs)


def sn_gan(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    g = networks.mlp_generator(latent_dim=4, image_shape=(4, 4, 1), hidden=8)
    gan = tfgan2.GAN(g, sn_discriminator(), latent_dim=4, seed=seed, **kwargs)
    gan.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2), loss="hinge")
    return gan


def images(n=16, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 4, 4, 1)).astype("float32")


def dataset(batch=8):
    return tf.data.Dataset.from_tensor_slices(images()).batch(batch, drop_remainder=True).repeat()


def values(model):
    return [v.numpy() for v in model.weights]


def test_forward_pass_in_training_mode_changes_no_variable():
    d = sn_discriminator()
    before = values(d)
    d(images(), training=True)
    d(images(), training=False)
    for a, b in zip(before, values(d)):
        np.testing.assert_array_equal(a, b)


def test_generator_step_changes_no_discriminator_variable():
    gan = sn_gan()
    before = values(gan.discriminator)
    gan.generator_step(8)
    for a, b in zip(before, values(gan.discriminator)):
        np.testing.assert_array_equal(a, b)
    g_before = values(gan.generator)
    gan.discriminator_step(tf.constant(images()[:8]))
    after = {v.path: np.array(v) for v in gan.discriminator.weights}
    changed = {v.path for v, old in zip(gan.discriminator.weights, before)
               if not np.array_equal(old, after[v.path])}
    # The optimizer moves the kernels, the power iteration u (a 1-vector of the logit layer
    # stays +-1).
    assert {p for p in after if "kernel" in p} <= changed
    assert any("fc_sn" in p and "vector_u" in p for p in changed)
    for a, b in zip(g_before, values(gan.generator)):
        np.testing.assert_array_equal(a, b)


def test_d_update_advances_u_by_one_power_iteration():
    gan = sn_gan()
    layer = gan.discriminator.get_layer("fc_sn")
    w = layer.layer.kernel.numpy().reshape(-1, 8)
    u = layer.vector_u.numpy()
    u = u / np.linalg.norm(u)
    v = u @ w.T
    v /= np.linalg.norm(v)
    expected = v @ w
    expected /= np.linalg.norm(expected)
    gan.discriminator_step(tf.constant(images()[:8]))
    np.testing.assert_allclose(layer.vector_u.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_gradient_matches_autodiff_of_kernel_over_largest_singular_value():
    keras.utils.set_random_seed(1)
    layer = layers.SpectralNormalization(keras.layers.Dense(5), power_iterations=2000)
    x = tf.constant(np.random.default_rng(0).normal(size=(7, 6)).astype("float32"))
    layer(x)
    layer.advance()  # 2000 power iterations: u, v are the top singular vectors
    kernel = layer.layer.kernel
    target = tf.constant(np.random.default_rng(1).normal(size=(7, 5)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) * target)
    grad = tape.gradient(loss, kernel)
    with tf.GradientTape() as tape:
        w = tf.convert_to_tensor(kernel)
        sigma = tf.linalg.svd(w, compute_uv=False)[0]
        expected_loss = tf.reduce_sum((x @ (w / sigma) + layer.layer.bias) * target)
    expected = tape.gradient(expected_loss, kernel)
    np.testing.assert_allclose(float(loss), float(expected_loss), rtol=1e-5)
    np.testing.assert_allclose(grad.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    # The normalized kernel has spectral norm 1.
    assert np.linalg.svd(layer.normalized_kernel().numpy(), compute_uv=False)[0] == \
        pytest.approx(1.0, rel=1e-5)


def test_conv_layer_matches_conv_with_normalized_kernel():
    keras.utils.set_random_seed(2)
    conv = keras.layers.Conv2D(3, 3, strides=2, padding="same", activation="relu")
    layer = layers.SpectralNormalization(conv)
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 6, 6, 2)).astype("float32"))
    y = layer(x, training=True)
    kernel = layer.normalized_kernel()
    expected = tf.nn.relu(tf.nn.conv2d(x, kernel, 2, "SAME") + conv.bias)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="wraps Dense or Conv"):
        layers.SpectralNormalization(keras.layers.LayerNormalization())


def test_dcgan_spectral_discriminator_uses_the_layer_and_gan_warns_on_keras_one():
    d = networks.dcgan_discriminator(resolution=8, channels=1, capacity=2, filter_size=3,
                                     normalization="spectral")
    assert len(layers.spectral_normalization_layers(d)) == 3  # two convolutions, the logit
    g = networks.mlp_generator(latent_dim=4, image_shape=(4, 4, 1), hidden=8)
    with pytest.warns(UserWarning, match="overwrites its kernel"):
        tfgan2.GAN(g, sn_discriminator(wrapper=keras.layers.SpectralNormalization), latent_dim=4)


def test_two_replicas_match_one(mirrored):
    def build(strategy):
        with strategy.scope():
            return sn_gan()

    one, two = build(tf.distribute.OneDeviceStrategy("/cpu:0")), build(mirrored)
    one.fit(dataset(), steps_per_epoch=3, epochs=1, verbose=0)
    two.fit(dataset(), steps_per_epoch=3, epochs=1, verbose=0)
    for a, b in zip(values(one.discriminator), values(two.discriminator)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    layer = two.discriminator.get_layer("fc_sn")
    local = two.distribute_strategy.experimental_local_results(layer.vector_u.value)
    np.testing.assert_array_equal(local[0].numpy(), local[1].numpy())


def save(gan, directory):
    ckpt = callbacks.Checkpointer(str(directory), every_n_steps=0)
    ckpt.set_model(gan)
    ckpt.save()


def test_resume_is_exact_and_keras_spectral_checkpoints_restore(tmp_path):
    straight = sn_gan()
    straight.fit(dataset(), steps_per_epoch=4, epochs=1, verbose=0)
    first = sn_gan()
    first.fit(dataset(), steps_per_epoch=2, epochs=1, verbose=0)
    save(first, tmp_path / "new")
    resumed = sn_gan(seed=5)
    assert callbacks.Checkpointer(str(tmp_path / "new")).restore(resumed) == 2
    resumed.fit(dataset().skip(2), steps_per_epoch=2, epochs=1, verbose=0)
    for a, b in zip(values(straight.discriminator), values(resumed.discriminator)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    # A checkpoint of a discriminator built with keras.layers.SpectralNormalization (whose
    # kernels hold W / sigma) restores into this layer and computes about the same logits.
    keras.utils.set_random_seed(0)
    g = networks.mlp_generator(latent_dim=4, image_shape=(4, 4, 1), hidden=8)
    old = tfgan2.GAN(g, sn_discriminator(wrapper=keras.layers.SpectralNormalization),
                     latent_dim=4, seed=0)
    old.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2), loss="hinge")
    old.fit(dataset(), steps_per_epoch=20, epochs=1, verbose=0)
    save(old, tmp_path / "old")
    fresh = sn_gan(seed=3)
    assert callbacks.Checkpointer(str(tmp_path / "old")).restore(fresh) == 20
    np.testing.assert_array_equal(fresh.discriminator.get_layer("fc_sn").layer.kernel.numpy(),
                                  old.discriminator.get_layer("fc_sn").layer.kernel.numpy())
    np.testing.assert_allclose(fresh.discriminate(images()), old.discriminate(images()),
                               rtol=0.05, atol=0.05)


def test_g_update_advances_gs_power_iterations_and_d_update_does_not():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    x = layers.SpectralNormalization(keras.layers.Dense(8), name="g_fc_sn")(inputs)
    x = layers.SpectralNormalization(keras.layers.Dense(16, activation="tanh"), name="g_out_sn")(x)
    g = keras.Model(inputs, keras.layers.Reshape((4, 4, 1))(x))
    gan = tfgan2.GAN(g, sn_discriminator(), latent_dim=4, seed=0, ema_decay=0.5)
    gan.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2), loss="hinge")
    layer = gan.generator.get_layer("g_fc_sn")
    w = layer.layer.kernel.numpy()
    raw = layer.vector_u.numpy()
    gan.discriminator_step(tf.constant(images()[:8]))
    np.testing.assert_array_equal(layer.vector_u.numpy(), raw)  # D's update leaves G's u
    v = (raw / np.linalg.norm(raw)) @ w.T
    expected = (v / np.linalg.norm(v)) @ w
    gan.generator_step(8)
    np.testing.assert_allclose(layer.vector_u.numpy(), expected / np.linalg.norm(expected),
                               rtol=1e-5, atol=1e-6)
    # The EMA copy takes the vector with the other non-trainable weights.
    ema_u = gan.ema_generator.get_layer("g_fc_sn").vector_u.numpy()
    np.testing.assert_array_equal(ema_u, layer.vector_u.numpy())
