"""The objective's terms against hand-computed values, and penalties under float16."""
import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import networks, regularizers
from tfgan2.objective import Objective

W = np.array([[0.5], [-2.0]], np.float32)  # D(x) = x W + b: every input gradient is W


def linear_d(x, training=True):
    return {"logits": tf.matmul(x, W) + 0.25}


def test_discriminator_terms_match_hand_computed_values():
    real = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    fake = tf.constant([[0.0, 0.0], [1.0, 1.0]])
    objective = Objective("relativistic_pairing", r1_gamma=2.0, r2_gamma=4.0)
    terms = objective.discriminator(linear_d, linear_d, real, fake)
    r, f = [0.75, -1.75], [0.25, -1.25]  # x W + 0.25
    squared_gradient = 0.5 ** 2 + 2.0 ** 2  # ||W||^2, the same for every example
    adversarial = [np.log1p(np.exp(-(a - b))) for a, b in zip(r, f)]
    want = [a + 2.0 / 2 * squared_gradient + 4.0 / 2 * squared_gradient for a in adversarial]
    np.testing.assert_allclose(terms["loss"].numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(terms["real_logits"].numpy().ravel(), r)
    np.testing.assert_allclose(terms["fake_logits"].numpy().ravel(), f)
    # R2 alone: the penalty is taken on the generated batch only.
    only_r2 = Objective("wasserstein", r2_gamma=1.0).discriminator(linear_d, linear_d, real, fake)
    np.testing.assert_allclose(only_r2["loss"].numpy(),
                               np.subtract(f, r) + 0.5 * squared_gradient, rtol=1e-6)


def test_penalty_weights_are_checked():
    with pytest.raises(ValueError, match="r2_gamma must be a finite number >= 0"):
        Objective(r2_gamma=-1.0)


@contextlib.contextmanager
def policy(name):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _small_d(scale, policy_name):
    """A small D whose last kernel is multiplied by ``scale`` (its outputs are that small)."""
    with policy(policy_name):
        keras.utils.set_random_seed(5)
        d = networks.dcgan_discriminator(resolution=16, channels=1, capacity=8,
                                         normalization="none")
    kernel, bias = d.layers[-1].get_weights()
    d.layers[-1].set_weights([kernel * scale, bias * scale])
    return d


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e-5])
def test_float16_penalties_match_float32(scale):
    # Without scaling, float16 input gradients of the 1e-5 D are 30-70% off (some underflow).
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (6, 16, 16, 1)), tf.float32)
    y = tf.constant(np.random.default_rng(1).uniform(-1, 1, (6, 16, 16, 1)), tf.float32)
    eps = tf.constant(np.linspace(0.1, 0.9, 6), tf.float32)
    values = {}
    for name in ("float32", "mixed_float16"):
        d = _small_d(scale, name)
        values[name] = (regularizers.r1_penalty(d, x).numpy(),
                        regularizers.gradient_penalty(d, x, y, eps=eps).numpy())
    for got, want in zip(values["mixed_float16"], values["float32"]):
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, want, rtol=2e-2, atol=1e-3 * want.max())


def test_pairing_generator_step_holds_real_logits_constant(deterministic, tiny_gan, compiled,
                                                           images):
    gan = compiled(tiny_gan(latent_dim=4, hidden=8, seed=2, init_seed=1), 0.1, optimizer="sgd",
                   loss="relativistic_pairing", r1_gamma=1.0, r2_gamma=1.0)
    real = tf.constant(images(8, seed=3))
    d_before = [w.copy() for w in gan.discriminator.get_weights()]
    g_before = [w.copy() for w in gan.generator.get_weights()]
    z = gan.noise.latent(8, gan.noise.seed_for(tfgan2.noise.G_NOISE, 0))
    real_logits = gan.discriminator(real, training=True)
    with tf.GradientTape() as tape:
        fake_logits = gan.discriminator(gan.generator(z, training=True), training=True)
        formula = tf.reduce_mean(tf.nn.softplus(real_logits - fake_logits))
    grads = tape.gradient(formula, gan.generator.trainable_variables)
    gan.generator_step(8, real=real)
    for before, after in zip(d_before, gan.discriminator.get_weights()):
        np.testing.assert_array_equal(before, after)  # no gradient reached D
    for w0, g, w1 in zip(g_before, grads, gan.generator.get_weights()):
        np.testing.assert_allclose(w1, w0 - 0.1 * g.numpy(), rtol=1e-5, atol=1e-7)
    assert gan.r2_gamma == 1.0 and gan.get_compile_config()["r2_gamma"] == 1.0
