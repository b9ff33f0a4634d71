"""Gradient penalty and R1 on a discriminator whose input gradient is known in closed form."""
import numpy as np
import pytest
import tensorflow as tf

from tfgan2 import regularizers


class Linear:
    """D(x) = sum(w * x): grad_x D = w for every input."""

    def __init__(self, w):
        self.w = tf.constant(w, tf.float32)

    def __call__(self, x, training=False):
        return tf.reduce_sum(x * self.w, axis=[1, 2, 3])[:, None]


class Square:
    """D(x) = sum(x^2): grad_x D = 2x, so R1 = 4 ||x||^2."""

    def __call__(self, x, training=False):
        return tf.reduce_sum(tf.square(x), axis=[1, 2, 3])[:, None]


def test_r1_matches_closed_form():
    x = tf.constant(np.random.default_rng(0).normal(size=(3, 4, 4, 1)), tf.float32)
    want = 4.0 * np.sum(np.square(x.numpy()), axis=(1, 2, 3))
    np.testing.assert_allclose(regularizers.r1_penalty(Square(), x).numpy(), want, rtol=1e-5)
    logits, penalty = regularizers.logits_and_r1_penalty(Square(), x)
    assert logits.shape == (3, 1)
    np.testing.assert_allclose(penalty.numpy(), want, rtol=1e-5)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_gradient_penalty_of_linear_critic(scale):
    w = np.full((1, 4, 4, 1), scale / 4.0, np.float32)  # ||w|| = scale
    real = tf.random.normal((5, 4, 4, 1))
    fake = tf.random.normal((5, 4, 4, 1))
    gp = regularizers.gradient_penalty(Linear(w), real, fake, seed=[1, 2]).numpy()
    np.testing.assert_allclose(gp, np.full(5, (scale - 1.0) ** 2), rtol=1e-4)


def test_gradient_penalty_mixing_factor_is_uniform_per_example():
    # With D(x) = sum(x^2) the gradient at x_hat is 2 x_hat, and with real = 1,
    # fake = 0 the mixed point is eps * 1, so the penalty reveals eps.
    n = 4000
    real = tf.ones((n, 1, 1, 1))
    fake = tf.zeros((n, 1, 1, 1))
    gp = regularizers.gradient_penalty(Square(), real, fake, seed=[3, 4]).numpy()
    # penalty = (|2 eps| - 1)^2, so u = sqrt(penalty) = |2 eps - 1|, which is
    # uniform on [0, 1] when eps ~ U[0, 1] (a normal eps would pile up near 1).
    u = np.sqrt(gp)
    assert u.min() >= 0.0 and u.max() <= 1.0
    assert abs(u.mean() - 0.5) < 0.02
    assert abs(np.mean(u < 0.25) - 0.25) < 0.03
    assert len(np.unique(np.round(u, 6))) > n // 2  # one draw per example
