"""GAN.compile options: relativistic losses, label smoothing, weight clipping, one-sided
gradient penalty, patch discriminators."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import losses, networks

LATENT = 6


def mlp_gan(seed=0, discriminator=None):
    keras.utils.set_random_seed(seed)
    g = networks.mlp_generator(latent_dim=LATENT, image_shape=(4, 4, 1), hidden=16)
    d = discriminator or networks.mlp_discriminator(image_shape=(4, 4, 1), hidden=16)
    return tfgan2.GAN(g, d, latent_dim=LATENT, seed=seed)


def compile_(gan, **kwargs):
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5), **kwargs)
    return gan


def images(n=16, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 4, 4, 1)).astype("float32")


def dataset(x, batch=8):
    return tf.data.Dataset.from_tensor_slices(x).batch(batch, drop_remainder=True).repeat()


def linear_discriminator(scale):
    """D(x) = scale * sum(x): its input gradient has norm scale * 4 on 4x4x1 inputs."""
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Flatten()(inputs)
    out = keras.layers.Dense(1, use_bias=False,
                             kernel_initializer=keras.initializers.Constant(scale))(x)
    return keras.Model(inputs, out)


def patch_discriminator():
    """A 4x4x1 image -> (2, 2, 1) patch logits."""
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    out = keras.layers.Conv2D(1, 2, strides=2)(x)
    return keras.Model(inputs, out)


@pytest.mark.parametrize("loss", [n for n in losses.names() if losses.spec(n).relativistic])
def test_relativistic_generator_step_uses_real_logits(loss):
    gan = compile_(mlp_gan(), loss=loss)
    gan.g_optimizer = keras.optimizers.SGD(0.1)
    gan.g_optimizer.build(gan.generator.trainable_variables)
    real = tf.constant(images(8))
    before = [w.copy() for w in gan.generator.get_weights()]
    z = gan.noise.latent(8, gan.noise.seed_for(tfgan2.noise.G_NOISE, gan.g_optimizer.iterations))
    real_logits = gan.discriminator(real, training=True)
    with tf.GradientTape() as tape:
        fake_logits = gan.discriminator(gan.generator(z, training=True), training=True)
        manual = tf.reduce_mean(losses.spec(loss).generator(fake_logits, real_logits))
    grads = tape.gradient(manual, gan.generator.trainable_variables)
    out = gan.generator_step(8, real=real)
    assert float(tf.reduce_mean(out["loss"])) == pytest.approx(float(manual), rel=1e-5)
    for w0, g, w1 in zip(before, grads, gan.generator.get_weights()):
        np.testing.assert_allclose(w1, w0 - 0.1 * g.numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="needs the real batch"):
        gan.generator_step(8)


def test_relativistic_loss_trains_with_fit():
    gan = compile_(mlp_gan(), loss="relativistic_average_hinge", label_smoothing=0.0)
    hist = gan.fit(dataset(images()), steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(hist.history["g_loss"][0]) and gan.step == 2


def test_label_smoothing_enters_the_discriminator_loss():
    x = tf.constant(images(8))
    smoothed = compile_(mlp_gan(seed=2), label_smoothing=0.25)
    out = smoothed.discriminator_step(x)
    want = losses.minimax_discriminator_loss(out["real_logits"], out["fake_logits"],
                                             label_smoothing=0.25)
    plain = losses.minimax_discriminator_loss(out["real_logits"], out["fake_logits"])
    np.testing.assert_allclose(out["loss"].numpy(), want.numpy(), rtol=1e-6)
    assert not np.allclose(out["loss"].numpy(), plain.numpy())
    with pytest.raises(ValueError, match="cross-entropy target .*'hinge' has none"):
        compile_(mlp_gan(), loss="hinge", label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        compile_(mlp_gan(), label_smoothing=1.5)


def test_weight_clip_bounds_every_discriminator_weight_after_its_update():
    gan = compile_(mlp_gan(), loss="wasserstein", weight_clip=0.01)
    g0 = [w.copy() for w in gan.generator.get_weights()]
    assert max(np.abs(w).max() for w in gan.discriminator.get_weights()) > 0.01
    gan.discriminator_step(tf.constant(images(8)))
    d = gan.discriminator.get_weights()
    assert max(np.abs(w).max() for w in d) <= 0.01 + 1e-9
    assert any(np.isclose(np.abs(w), 0.01).any() for w in d)  # some weights hit the bound
    assert all(np.array_equal(a, b) for a, b in zip(g0, gan.generator.get_weights()))
    for bad in (-1.0, 0.0, float("inf")):
        with pytest.raises(ValueError, match="weight_clip must be None or a finite number > 0"):
            compile_(mlp_gan(), weight_clip=bad)


@pytest.mark.parametrize("scale, two_sided", [(0.05, (1 - 0.2) ** 2), (0.5, (2 - 1) ** 2)])
def test_one_sided_gradient_penalty_only_penalizes_steep_slopes(scale, two_sided):
    # ||grad D|| = 4 * scale everywhere: 0.2 (below the target 1) or 2 (above).
    x = tf.constant(images(8))
    loss = {}
    for mode, weight in (("plain", 0.0), ("two_sided", 10.0), ("one_sided", 10.0)):
        gan = compile_(mlp_gan(seed=1, discriminator=linear_discriminator(scale)),
                       loss="wasserstein", gradient_penalty=weight,
                       gradient_penalty_mode="two_sided" if mode == "plain" else mode)
        loss[mode] = gan.discriminator_step(x)["loss"].numpy()
    np.testing.assert_allclose(loss["two_sided"] - loss["plain"], 10 * two_sided, rtol=1e-4)
    one_sided = 0.0 if scale < 0.25 else two_sided
    np.testing.assert_allclose(loss["one_sided"] - loss["plain"], 10 * one_sided,
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="gradient_penalty_mode must be one of two_sided"):
        compile_(mlp_gan(), gradient_penalty_mode="both")


@pytest.mark.parametrize("loss", ["non_saturating", "relativistic_average"])
def test_patch_discriminator_losses_average_over_patches(loss):
    gan = compile_(mlp_gan(discriminator=patch_discriminator()), loss=loss,
                   gradient_penalty=1.0, r1_gamma=1.0)
    out = gan.discriminator_step(tf.constant(images(8)))
    assert out["real_logits"].shape == (8, 2, 2, 1) and out["loss"].shape == (8,)
    hist = gan.fit(dataset(images()), steps_per_epoch=2, epochs=1, verbose=0)
    for key in ("d_loss", "g_loss", "real_as_real"):
        assert np.isfinite(hist.history[key][0]), key


def test_every_fit_checks_the_sample_shape_against_the_networks():
    # A DCGAN discriminator (global average pooling) would take any image size.
    keras.utils.set_random_seed(0)
    gan = compile_(tfgan2.GAN(networks.dcgan_generator(latent_dim=LATENT, resolution=8,
                                                       channels=1, capacity=2),
                              networks.dcgan_discriminator(resolution=8, channels=1, capacity=2),
                              latent_dim=LATENT))
    assert gan.data_shape == (8, 8, 1)

    def data(side):
        return dataset(np.zeros((16, side, side, 1), np.float32))

    gan.fit(data(8), steps_per_epoch=1, epochs=1, verbose=0)
    for side in (16, 4):
        with pytest.raises(ValueError, match=r"\({0}, {0}, 1\) but the networks were built "
                                             r"for \(8, 8, 1\)".format(side)):
            gan.fit(data(side), steps_per_epoch=1, epochs=1, verbose=0)
    assert gan.step == 1


def test_xla_is_off_unless_asked_and_then_checks_the_first_batch_on_the_host(mirrored):
    gan = compile_(mlp_gan())
    assert gan.jit_compile is False
    xla = compile_(mlp_gan(), jit_compile=True)
    assert xla.jit_compile is True  # Keras drops XLA silently while op determinism is on
    with pytest.raises(ValueError, match=r"not in \[-1, 1\].*min and max are 0 and"):
        xla.fit(dataset(np.linspace(0, 255, 16 * 16).reshape(16, 4, 4, 1).astype("float32")),
                steps_per_epoch=1, epochs=1, verbose=0)
    assert xla.step == 0
    with mirrored.scope():
        two = mlp_gan()
    with pytest.raises(ValueError, match="jit_compile=True does not work with 2 replicas"):
        compile_(two, jit_compile=True)


def test_xla_dropped_by_keras_under_op_determinism_is_reported(deterministic):
    with pytest.warns(UserWarning, match="jit_compile=True was dropped by Keras"):
        gan = compile_(mlp_gan(), jit_compile=True)
    assert gan.jit_compile is False
