"""tfgan2.GAN under MirroredStrategy on two logical CPUs (set up in conftest.py)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2


@pytest.fixture
def gan_under(tiny_gan, compiled):
    """``gan_under(strategy, **compile_kwargs)``: an MLP GAN (weights from seed 0, noise seed 3,
    EMA decay 0.5) made and compiled with SGD(0.5) for both networks in ``strategy``'s scope."""

    def build(strategy, **compile_kwargs):
        with strategy.scope():
            gan = tiny_gan(latent_dim=4, hidden=8, seed=3, init_seed=0, ema_decay=0.5)
            return compiled(gan, 0.5, optimizer="sgd", **compile_kwargs)

    return build


@pytest.mark.parametrize("compile_kwargs", [
    dict(loss="non_saturating"),
    dict(loss="wasserstein", gradient_penalty=10.0),
    dict(loss="hinge", r1_gamma=2.0, d_steps=2),
    dict(loss="least_squares", g_steps=2, steps_per_execution=2),
    dict(loss="wasserstein", weight_clip=0.05),
    dict(loss="minimax", label_smoothing=0.2, gradient_penalty=1.0,
         gradient_penalty_mode="one_sided"),
    dict(loss="relativistic_average", label_smoothing=0.1),
    dict(loss="relativistic_average_hinge", g_steps=2),
])
def test_two_replicas_match_one(mirrored, compile_kwargs, images, batches, gan_under):
    one = gan_under(tf.distribute.OneDeviceStrategy("/cpu:0"), **compile_kwargs)
    two = gan_under(mirrored, **compile_kwargs)
    assert two.distribute_strategy.num_replicas_in_sync == 2
    assert two.steps_per_execution == compile_kwargs.get("steps_per_execution", 1)
    h1 = one.fit(batches(images(16)), steps_per_epoch=2, epochs=1, verbose=0).history
    h2 = two.fit(batches(images(16)), steps_per_epoch=2, epochs=1, verbose=0).history
    for a, b in [(one.generator, two.generator), (one.discriminator, two.discriminator),
                 (one.ema_generator, two.ema_generator)]:
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(wa, wb, rtol=2e-4, atol=2e-5)
    # Logged losses are the true global means, not 1/N of them.
    for key in ("d_loss", "g_loss", "p_real", "p_fake"):
        assert h2[key][0] == pytest.approx(h1[key][0], rel=1e-4, abs=1e-5), key
    assert two.step == 2 and int(two.d_optimizer.iterations.numpy()) == 2 * compile_kwargs.get(
        "d_steps", 1)


def test_each_replica_draws_different_noise(mirrored, gan_under):
    strategy = mirrored
    gan = gan_under(strategy)

    @tf.function
    def draw():
        return strategy.run(lambda: gan.noise.latent(3, gan.noise.seed_for(tfgan2.noise.D_NOISE, 0)))

    a, b = strategy.experimental_local_results(draw())
    assert not np.allclose(a.numpy(), b.numpy())
    # Together the replicas hold exactly the rows of the single-device global draw.
    single = gan_under(tf.distribute.OneDeviceStrategy("/cpu:0"))
    np.testing.assert_array_equal(np.concatenate([a.numpy(), b.numpy()]),
                                  single.noise.latent(6, single.noise.seed_for(tfgan2.noise.D_NOISE, 0)).numpy())


def test_uneven_global_batch_is_a_clear_error(mirrored, images, batches, gan_under):
    gan = gan_under(mirrored)
    with pytest.raises(ValueError, match="batch of 7 examples does not split evenly across 2"):
        gan.fit(batches(images(14), batch=7), steps_per_epoch=1, epochs=1, verbose=0)


def test_float16_overflow_on_one_replica_skips_the_step_on_every_replica(mirrored, tiny_gan,
                                                                         compiled):
    """An infinite gradient on replica 1 only: the D step is skipped everywhere (no weight
    changes, no NaN), both replicas halve the loss scale, and training continues."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with mirrored.scope():
            gan = compiled(tiny_gan("gaussian", latent_dim=4, dim=6, hidden=8, seed=3,
                                    init_seed=0), 0.1, optimizer="sgd")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    poisoned = x.copy()
    poisoned[6] = 1e30  # row 6 of the first batch of 8: replica 1's share only; inf in float16
    d_before = [w.copy() for w in gan.discriminator.get_weights()]
    scale = float(gan.d_optimizer.dynamic_scale.numpy())
    gan.fit(tf.data.Dataset.from_tensor_slices(poisoned[:8]).batch(8), epochs=1, verbose=0)
    for before, after in zip(d_before, gan.discriminator.get_weights()):
        np.testing.assert_array_equal(before, after)
    halved = [float(v.numpy()) for v in
              mirrored.experimental_local_results(gan.d_optimizer.dynamic_scale.value)]
    assert halved == [scale / 2] * 2
    gan.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), epochs=1, verbose=0)
    after = gan.discriminator.get_weights()
    assert all(np.all(np.isfinite(w)) for w in after)
    assert any(not np.array_equal(a, b) for a, b in zip(d_before, after))
