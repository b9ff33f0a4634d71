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
    elif name == "hinge":
        d = [max(0, 1 - r) + max(0, 1 + f) for r, f in zip(REAL, FAKE)]
        g = [-f for f in FAKE]
    elif name == "relativistic_pairing":  # row i of the real batch against row i of the fake
        d = [-math.log(sigmoid(r - f)) for r, f in zip(REAL, FAKE)]
        g = [-math.log(sigmoid(f - r)) for r, f in zip(REAL, FAKE)]
    else:  # relativistic average: each logit against the other kind's batch mean
        mean_r, mean_f = sum(REAL) / len(REAL), sum(FAKE) / len(FAKE)
        rel = [(r - mean_f, f - mean_r) for r, f in zip(REAL, FAKE)]
        if name == "relativistic_average":
            d = [-math.log(sigmoid(a)) - math.log(1 - sigmoid(b)) for a, b in rel]
            g = [-math.log(1 - sigmoid(a)) - math.log(sigmoid(b)) for a, b in rel]
        elif name == "relativistic_average_least_squares":
            d = [(a - 1) ** 2 + (b + 1) ** 2 for a, b in rel]
            g = [(b - 1) ** 2 + (a + 1) ** 2 for a, b in rel]
        else:
            d = [max(0, 1 - a) + max(0, 1 + b) for a, b in rel]
            g = [max(0, 1 - b) + max(0, 1 + a) for a, b in rel]
    return d, g


@pytest.mark.parametrize("name", losses.names())
def test_losses_match_hand_computed_values(name):
    d_fn, g_fn = losses.get(name)
    d_want, g_want = expected(name)
    real = tf.constant(REAL)[:, None]  # (B, 1) logits, as networks return them
    fake = tf.constant(FAKE)[:, None]
    g_args = (fake, real) if losses.spec(name).relativistic else (fake,)
    np.testing.assert_allclose(d_fn(real, fake).numpy(), d_want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_fn(*g_args).numpy(), g_want, rtol=1e-5, atol=1e-6)
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
    for name in ("minimax", "non_saturating", "wasserstein", "hinge", "relativistic_average"):
        assert losses.decision_threshold(name) == 0.0
    with pytest.raises(ValueError, match="valid losses"):
        losses.decision_threshold("vanilla")


@pytest.mark.parametrize("name", losses.names())
def test_patch_logits_average_over_each_example(name):
    # A patch discriminator scores 2 x 3 patches per example; each example's
    # loss is the mean of its patches' element-wise losses. Written with one
    # (B * 6, 1) call per example's patches for the non-relativistic losses,
    # whose element-wise loss does not depend on the rest of the batch.
    rng = np.random.default_rng(1)
    real = tf.constant(rng.normal(size=(3, 2, 3, 1)), tf.float32)
    fake = tf.constant(rng.normal(size=(3, 2, 3, 1)), tf.float32)
    entry = losses.spec(name)
    d = entry.discriminator(real, fake).numpy()
    g = (entry.generator(fake, real) if entry.relativistic else entry.generator(fake)).numpy()
    assert d.shape == (3,) and g.shape == (3,)
    flat_r, flat_f = tf.reshape(real, [-1, 1]), tf.reshape(fake, [-1, 1])
    d_all = entry.discriminator(flat_r, flat_f).numpy().reshape(3, 6)
    g_all = (entry.generator(flat_f, flat_r) if entry.relativistic
             else entry.generator(flat_f)).numpy().reshape(3, 6)
    # Relativistic batch means over all 18 logits equal those of the flat call.
    np.testing.assert_allclose(d, d_all.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, g_all.mean(axis=1), rtol=1e-5, atol=1e-6)


def test_label_smoothing_moves_only_the_real_target():
    r = tf.constant([2.0, -1.0])
    f = tf.constant([0.5, -3.0])
    s = 0.2
    t = 1 - s / 2
    want = [-(t * math.log(sigmoid(a)) + (1 - t) * math.log(1 - sigmoid(a)))
            - math.log(1 - sigmoid(b)) for a, b in zip([2.0, -1.0], [0.5, -3.0])]
    got = losses.minimax_discriminator_loss(r, f, label_smoothing=s).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # Fake logits alone: smoothing changes nothing on the fake term.
    zero_real = losses.minimax_discriminator_loss(tf.constant([50.0]), f[:1], label_smoothing=0)
    assert zero_real.numpy()[0] == pytest.approx(math.log(1 + math.exp(0.5)), rel=1e-5)
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        losses.minimax_discriminator_loss(r, f, label_smoothing=1.5)
    assert [n for n in losses.names() if losses.spec(n).label_smoothing] == [
        "minimax", "non_saturating", "relativistic_average"]


@pytest.mark.parametrize("name", [n for n in losses.names() if losses.spec(n).batch_means])
def test_relativistic_losses_take_means_of_a_larger_batch(name):
    # One replica's half of a batch, given the whole batch's means, gets the
    # whole batch's per-example losses of its rows.
    rng = np.random.default_rng(2)
    real = tf.constant(rng.normal(size=(6, 1)), tf.float32)
    fake = tf.constant(rng.normal(size=(6, 1)), tf.float32)
    entry = losses.spec(name)
    means = {"real_mean": tf.reduce_mean(real), "fake_mean": tf.reduce_mean(fake)}
    whole_d = entry.discriminator(real, fake).numpy()
    whole_g = entry.generator(fake, real).numpy()
    half_d = entry.discriminator(real[:3], fake[:3], **means).numpy()
    half_g = entry.generator(fake[:3], real[:3], **means).numpy()
    np.testing.assert_allclose(half_d, whole_d[:3], rtol=1e-6)
    np.testing.assert_allclose(half_g, whole_g[:3], rtol=1e-6)
    assert not np.allclose(entry.discriminator(real[:3], fake[:3]).numpy(), whole_d[:3])


def test_pairing_loss_pairs_rows_and_ignores_the_rest_of_the_batch():
    # softplus(-(2 - 0.5)) = log(1 + e^-1.5) = 0.201413; G: log(1 + e^1.5) = 1.701413.
    d = losses.relativistic_pairing_discriminator_loss([[2.0], [0.0]], [[0.5], [7.0]]).numpy()
    g = losses.relativistic_pairing_generator_loss([[0.5], [7.0]], [[2.0], [0.0]]).numpy()
    np.testing.assert_allclose(d, [0.201413, 7.000911], rtol=1e-5)
    np.testing.assert_allclose(g, [1.701413, 0.000911], atol=1e-6)
    # The first pair's loss does not depend on the second pair: one replica's rows
    # give the same per-example losses as the whole batch.
    alone = losses.relativistic_pairing_discriminator_loss([[2.0]], [[0.5]]).numpy()
    assert alone[0] == pytest.approx(d[0], rel=1e-6)
    assert losses.spec("relativistic_pairing").relativistic
    assert not losses.spec("relativistic_pairing").batch_means
    with pytest.raises(ValueError, match="row by row"):
        losses.relativistic_pairing_discriminator_loss([[1.0], [2.0]], [[1.0]])
