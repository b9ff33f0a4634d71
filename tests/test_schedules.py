"""R3GAN's burn-in schedules: the curve, and each hyperparameter that follows it."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import networks, schedules
from tfgan2.ema import MovingAverage
from tfgan2.objective import Objective
from tfgan2.optimizers import FusedAdam


def test_cosine_ramp_values_in_both_directions():
    down = schedules.CosineRamp(0.05, 0.005, 100)
    up = schedules.CosineRamp(0.9, 0.99, 100)
    for step, t in ((0, 0.0), (25, 0.25), (50, 0.5), (100, 1.0), (250, 1.0)):
        c = 0.5 * (1 + math.cos(math.pi * t))
        assert float(down(step)) == pytest.approx(0.005 + 0.045 * c, rel=1e-6)
        assert float(up(step)) == pytest.approx(0.99 - 0.09 * c, rel=1e-6)
    # The same curve as Keras' CosineDecay for a decay (alpha = end / start).
    keras_decay = keras.optimizers.schedules.CosineDecay(2e-4, 100, alpha=0.25)
    ramp = schedules.CosineRamp(2e-4, 5e-5, 100)
    for step in (0, 13, 50, 99, 100, 120):
        assert float(ramp(step)) == pytest.approx(float(keras_decay(step)), rel=1e-5)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(down))
    assert isinstance(again, schedules.CosineRamp) and float(again(30)) == float(down(30))
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        schedules.CosineRamp(1.0, 0.0, 0)


def test_scheduled_gamma_is_read_at_ds_step():
    w = np.array([[0.5], [-2.0]], np.float32)
    d = lambda x, training=True: {"logits": tf.matmul(x, w)}  # noqa: E731
    real = fake = tf.constant([[1.0, 1.0]])
    gamma = schedules.CosineRamp(4.0, 0.0, 10)
    objective = Objective("wasserstein", r1_gamma=gamma, r2_gamma=gamma)
    for step in (0, 5, 10):
        loss = objective.discriminator(d, d, real, fake, step=step)["loss"].numpy()[0]
        assert loss == pytest.approx(float(gamma(step)) * 4.25, rel=1e-6)  # 2 x gamma/2 x ||w||^2


def test_fused_adam_follows_a_beta_2_schedule():
    beta_2 = schedules.CosineRamp(0.5, 0.99, 4)
    opt = FusedAdam(0.1, beta_1=0.0, beta_2=beta_2, epsilon=1e-8)
    var = tf.Variable([1.0, -2.0])
    opt.build([var])
    v, w = np.zeros(2), np.array([1.0, -2.0])
    for t in range(3):
        g = np.array([0.3, -0.7]) * (t + 1)
        opt.apply([tf.constant(g, tf.float32)], [var])
        b2 = float(beta_2(t))
        v = b2 * v + (1 - b2) * g ** 2
        w = w - 0.1 * math.sqrt(1 - b2 ** (t + 1)) * g / (np.sqrt(v) + 1e-8)
        np.testing.assert_allclose(var.numpy(), w, rtol=1e-5)
    again = FusedAdam.from_config(opt.get_config())
    assert isinstance(again.beta_2, schedules.CosineRamp) and again.beta_2.end == 0.99


def test_ema_half_life():
    g = networks.mlp_generator(latent_dim=2, image_shape=(2, 2, 1), hidden=4)
    fixed = MovingAverage(g, half_life=10.0)
    assert float(fixed.decay_at(0)) == pytest.approx(0.5 ** 0.1)
    ramp = MovingAverage(g, half_life=schedules.CosineRamp(0.0, 100.0, 10))
    assert float(ramp.decay_at(0)) == 0.0  # half-life 0: the average is a copy
    assert float(ramp.decay_at(10)) == pytest.approx(0.5 ** 0.01)
    with pytest.raises(ValueError, match="one of ema_decay and ema_half_life"):
        MovingAverage(g, decay=0.9, half_life=5.0)


@pytest.fixture
def r3gan_style_gan(tiny_gan):
    """``r3gan_style_gan()``: a small MLP GAN with every burn-in schedule of R3GAN (learning
    rate, beta_2, R1/R2 gamma, EMA half-life), FusedAdam and the relativistic pairing loss."""

    def build():
        gan = tiny_gan(latent_dim=4, hidden=8, seed=5, init_seed=0,
                       ema_half_life=schedules.CosineRamp(0.0, 8.0, 6))

        def adam():
            return FusedAdam(schedules.CosineRamp(2e-3, 5e-4, 6), beta_1=0.0,
                             beta_2=schedules.CosineRamp(0.9, 0.99, 6))

        gan.compile(adam(), adam(), loss="relativistic_pairing",
                    r1_gamma=schedules.CosineRamp(1.0, 0.1, 6),
                    r2_gamma=schedules.CosineRamp(1.0, 0.1, 6))
        return gan

    return build


def test_scheduled_run_resumes_bit_exactly_and_saves(tmp_path, deterministic, r3gan_style_gan,
                                                     images, batches):
    x = images(64)

    def data(start):
        return batches(x, repeat=False).skip(start)

    whole = r3gan_style_gan()
    tfgan2.train(whole, data, str(tmp_path / "whole"), 8, log_every=4, sample_every=0,
                 checkpoint_every=4, verbose=0)
    first = r3gan_style_gan()
    tfgan2.train(first, data, str(tmp_path / "split"), 4, log_every=4, sample_every=0,
                 checkpoint_every=4, verbose=0)
    resumed = r3gan_style_gan()
    tfgan2.train(resumed, data, str(tmp_path / "split"), 8, log_every=4, sample_every=0,
                 checkpoint_every=4, verbose=0)
    assert resumed.step == 8
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    path = str(tmp_path / "gan.keras")
    whole.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.r1_gamma, schedules.CosineRamp)
    assert isinstance(loaded.moving_average.half_life, schedules.CosineRamp)
    assert isinstance(loaded.d_optimizer.beta_2, schedules.CosineRamp)
