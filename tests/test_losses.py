"""Losses against values computed by hand from the probability form of each formula."""
import math

import numpy as np
import pytest
import tensorflow as tf

from tfgan2 import losses

REAL = [2.0, -1.0, 0.0]
FAKE = [0.5, -3.0, 1.5]


def sigmoid(t):
    return 1.0 / (1.0 + math.exp(-t))


def expected(name):
    """(d_loss, g_loss) per example, written with sigmoid and log, not softplus."""
    if name in ("minimax", "non_saturating"):
        d = [-math.log(sigmoid(r)) - math.log(1 - sigmoid(f)) for r, f in zip(REAL, FAKE)]
        if name == "minimax":
            g = [math.log(1 - sigmoid(f)) for f in FAKE]
        else:
            g = [-math.log(sigmoid(f)) for f in FAKE]
    elif name == "least_squares":
        d = [0.5 * (r - 1) ** 2 + 0.5 * f ** 2 for r, f in zip(REAL, FAKE)]
        g = [0.5 * (f - 1) ** 2 for f in FAKE]
    elif name == "wasserstein":
        d = [f - r for r, f in zip(REAL, FAKE)]
        g = [-f for f in FAKE]
    else:
        d = [max(0, 1 - r) + max(0, 1 + f) for r, f in zip(REAL, FAKE)]
        g = [-f for f in FAKE]
    return d, g


@pytest.mark.parametrize("name", losses.names())
def test_losses_match_hand_computed_values(name):
    d_fn, g_fn = losses.get(name)
    d_want, g_want = expected(name)
    real = tf.constant(REAL)[:, None]  # (B, 1) logits, as networks return them
    fake = tf.constant(FAKE)[:, None]
    np.testing.assert_allclose(d_fn(real, fake).numpy(), d_want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_fn(fake).numpy(), g_want, rtol=1e-5, atol=1e-6)
    assert d_fn(real, fake).shape == (3,)


def test_hand_values_spot_check():
    # -log(sigmoid(2)) - log(1 - sigmoid(0.5)) = 0.126928 + 0.974077
    d = losses.minimax_discriminator_loss(tf.constant([2.0]), tf.constant([0.5]))
    assert d.numpy()[0] == pytest.approx(1.101005, abs=1e-5)
    assert losses.hinge_discriminator_loss([0.25], [-0.5]).numpy()[0] == pytest.approx(1.25)


def test_cross_entropy_is_stable_for_huge_logits():
    big = tf.constant([1e4, -1e4])
    d = losses.minimax_discriminator_loss(big, -big).numpy()
    np.testing.assert_allclose(d, [0.0, 2e4], rtol=1e-6)
    g = losses.non_saturating_generator_loss(big).numpy()
    np.testing.assert_allclose(g, [0.0, 1e4], rtol=1e-6)
    assert np.all(np.isfinite(losses.minimax_generator_loss(big).numpy()))


def test_non_saturating_gradient_survives_confident_discriminator():
    f = tf.Variable([-10.0])
    with tf.GradientTape(persistent=True) as tape:
        ns = losses.non_saturating_generator_loss(f)
        mm = losses.minimax_generator_loss(f)
    assert abs(tape.gradient(ns, f).numpy()[0]) > 0.99
    assert abs(tape.gradient(mm, f).numpy()[0]) < 1e-4


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError) as err:
        losses.get("vanilla")
    for name in losses.names():
        assert name in str(err.value)
    assert "'vanilla'" in str(err.value)


def test_decision_threshold_per_loss():
    assert losses.decision_threshold("least_squares") == 0.5
    for name in ("minimax", "non_saturating", "wasserstein", "hinge"):
        assert losses.decision_threshold(name) == 0.0
    with pytest.raises(ValueError, match="valid losses"):
        losses.decision_threshold("vanilla")
