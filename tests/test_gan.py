"""tfgan2.GAN: a real fit changes both networks, each phase only its own, EMA, checkpoints."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import callbacks

LATENT = 6


def weights(model):
    return [w.copy() for w in model.get_weights()]


def changed(before, model):
    return [not np.array_equal(a, b) for a, b in zip(before, model.get_weights())]


def test_fit_changes_both_networks_and_logs_metrics(tiny_gan, compiled, images, batches):
    gan = compiled(tiny_gan("dcgan", latent_dim=LATENT, size=8))
    g0, d0 = weights(gan.generator), weights(gan.discriminator)
    hist = gan.fit(batches(images(size=8)), steps_per_epoch=3, epochs=2, verbose=0)
    assert gan.step == 6
    assert int(gan.d_optimizer.iterations.numpy()) == 6
    assert int(gan.g_optimizer.iterations.numpy()) == 6
    g_kernels = [v for v in gan.generator.trainable_variables]
    assert any(changed(g0, gan.generator)) and any(changed(d0, gan.discriminator))
    assert len(g_kernels) > 0
    for key in ("d_loss", "g_loss", "p_real", "p_fake", "real_as_real", "fake_as_fake"):
        values = hist.history[key]
        assert len(values) == 2 and np.all(np.isfinite(values)), key
    for key in ("p_real", "p_fake", "real_as_real", "fake_as_fake"):
        assert 0.0 <= hist.history[key][-1] <= 1.0


def test_each_phase_updates_only_its_own_network(tiny_gan, compiled, images):
    gan = compiled(tiny_gan(latent_dim=LATENT))
    real = tf.constant(images())
    g0, d0 = weights(gan.generator), weights(gan.discriminator)
    gan.discriminator_step(real)
    assert all(changed(d0, gan.discriminator)), "every D weight gets a gradient"
    assert not any(changed(g0, gan.generator)), "the D phase must not touch G"
    g1, d1 = weights(gan.generator), weights(gan.discriminator)
    gan.generator_step(8)
    assert all(changed(g1, gan.generator)), "G's gradients flow through D into every G weight"
    assert not any(changed(d1, gan.discriminator)), "the G phase must not touch D"


def test_generator_gradient_matches_manual_chain_rule(tiny_gan, compiled):
    gan = compiled(tiny_gan(latent_dim=LATENT), loss="wasserstein")
    gan.g_optimizer = keras.optimizers.SGD(0.1)
    gan.g_optimizer.build(gan.generator.trainable_variables)
    before = weights(gan.generator)
    z = gan.noise.latent(8, gan.noise.seed_for(tfgan2.noise.G_NOISE, gan.g_optimizer.iterations))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(-gan.discriminator(gan.generator(z, training=True), training=True))
    grads = tape.gradient(loss, gan.generator.trainable_variables)
    gan.generator_step(8)
    for w0, g, w1 in zip(before, grads, gan.generator.get_weights()):
        np.testing.assert_allclose(w1, w0 - 0.1 * g.numpy(), rtol=1e-4, atol=1e-6)


def test_d_steps_and_g_steps_count_updates(tiny_gan, compiled, images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT), d_steps=2, g_steps=3)
    gan.fit(batches(images()), steps_per_epoch=2, epochs=1, verbose=0)
    assert gan.step == 2
    assert int(gan.d_optimizer.iterations.numpy()) == 4
    assert int(gan.g_optimizer.iterations.numpy()) == 6


@pytest.mark.parametrize("loss", tfgan2.losses.names())
def test_every_loss_and_penalty_trains(loss, tiny_gan, compiled, images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT), loss=loss,
                   gradient_penalty=10.0 if loss == "wasserstein" else 0.0,
                   r1_gamma=1.0 if loss == "non_saturating" else 0.0)
    hist = gan.fit(batches(images()), steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(hist.history["d_loss"][0])


def test_penalties_enter_the_discriminator_loss(tiny_gan, compiled, images):
    x = tf.constant(images())
    plain = compiled(tiny_gan(latent_dim=LATENT, seed=3), loss="wasserstein")
    penalized = compiled(tiny_gan(latent_dim=LATENT, seed=3), loss="wasserstein",
                         gradient_penalty=10.0)
    a = plain.discriminator_step(x)["loss"].numpy()
    b = penalized.discriminator_step(x)["loss"].numpy()
    assert np.all(b >= a - 1e-6) and np.any(b > a + 1e-3)


def test_ema_follows_documented_formula(tiny_gan, compiled):
    gan = compiled(tiny_gan(latent_dim=LATENT, ema_decay=0.9))
    w0 = weights(gan.generator)
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in w0]),
                                  np.concatenate([w.ravel() for w in
                                                  gan.ema_generator.get_weights()]))
    gan.generator_step(8)
    decay = min(0.9, 2.0 / 11.0)  # t = 1 after the first update
    for e, a, b in zip(gan.ema_generator.get_weights(), w0, gan.generator.get_weights()):
        np.testing.assert_allclose(e, decay * a + (1 - decay) * b, rtol=1e-5, atol=1e-7)
    z = gan.sample_latent(5, seed=1)
    np.testing.assert_allclose(gan.generate(5, latents=z),
                               gan.ema_generator(z, training=False).numpy(), rtol=1e-6)
    assert not np.allclose(gan.generate(5, latents=z), gan.generator(z, training=False).numpy())


def test_latent_distributions(tiny_gan):
    gan = tiny_gan(latent_dim=LATENT, latent_distribution="uniform")
    z = gan.sample_latent(2000, seed=0)
    assert z.shape == (2000, LATENT) and z.min() >= -1 and z.max() <= 1
    zt = gan.noise.latent(2000, tf.constant([1, 2], tf.int64)).numpy()
    assert zt.min() >= -1 and zt.max() <= 1 and abs(zt.std() - 1 / np.sqrt(3)) < 0.02
    normal = tiny_gan(latent_dim=LATENT).noise.latent(2000, tf.constant([1, 2], tf.int64)).numpy()
    assert abs(normal.std() - 1.0) < 0.03
    with pytest.raises(ValueError, match="normal, uniform"):
        tiny_gan(latent_dim=LATENT, latent_distribution="gaussian")


def test_noise_differs_between_steps_and_phases(tiny_gan, compiled):
    gan = compiled(tiny_gan(latent_dim=LATENT))
    a = gan.noise.latent(4, gan.noise.seed_for(tfgan2.noise.D_NOISE, 0)).numpy()
    b = gan.noise.latent(4, gan.noise.seed_for(tfgan2.noise.D_NOISE, 1)).numpy()
    c = gan.noise.latent(4, gan.noise.seed_for(tfgan2.noise.G_NOISE, 0)).numpy()
    assert not np.allclose(a, b) and not np.allclose(a, c)
    again = gan.noise.latent(4, gan.noise.seed_for(tfgan2.noise.D_NOISE, 0))
    np.testing.assert_array_equal(a, again.numpy())


def test_generate_range_and_shape(tiny_gan, compiled):
    gan = compiled(tiny_gan("dcgan", latent_dim=LATENT, size=8, ema_decay=0.99))
    out = gan.generate(300, seed=0, batch_size=128)
    assert out.shape == (300, 8, 8, 1) and out.dtype == np.float32
    assert out.min() >= -1 and out.max() <= 1
    np.testing.assert_array_equal(out, gan.generate(300, seed=0))
    none = gan.generate(0)
    assert none.shape == (0, 8, 8, 1) and none.dtype == np.float32


def test_works_with_any_keras_callback(tmp_path, tiny_gan, compiled, images, batches):
    gan = compiled(tiny_gan(latent_dim=LATENT))
    path = tmp_path / "log.csv"
    seen = []
    gan.fit(batches(images()), steps_per_epoch=2, epochs=2, verbose=0, callbacks=[
        keras.callbacks.CSVLogger(str(path)),
        keras.callbacks.LambdaCallback(on_batch_end=lambda b, logs: seen.append(logs["g_loss"])),
    ])
    rows = path.read_text().strip().splitlines()
    assert rows[0].split(",")[0] == "epoch" and "d_loss" in rows[0] and len(rows) == 3
    assert len(seen) == 4


def test_compile_validates_arguments(tiny_gan, adam):
    gan = tiny_gan(latent_dim=LATENT)
    opt = adam()
    with pytest.raises(ValueError, match="same object"):
        gan.compile(d_optimizer=opt, g_optimizer=opt)
    with pytest.raises(ValueError, match="d_steps"):
        gan.compile(d_optimizer=adam(), g_optimizer=adam(), d_steps=0)
    with pytest.raises(ValueError, match="r1_gamma"):
        gan.compile(d_optimizer=adam(), g_optimizer=adam(), r1_gamma=-1.0)
    with pytest.raises(ValueError, match="valid losses"):
        gan.compile(d_optimizer=adam(), g_optimizer=adam(), loss="bce")


def test_checkpoint_restores_into_fresh_objects(tmp_path, tiny_gan, compiled, images, batches):
    gan = compiled(tiny_gan("dcgan", latent_dim=LATENT, size=8, ema_decay=0.9), d_steps=2)
    gan.fit(batches(images(size=8)), steps_per_epoch=3, epochs=1, verbose=0)
    ckpt = callbacks.Checkpointer(str(tmp_path), every_n_steps=0)
    ckpt.set_model(gan)
    path = ckpt.save()
    assert path.endswith("ckpt-3")

    fresh = compiled(tiny_gan("dcgan", latent_dim=LATENT, size=8, seed=7, ema_decay=0.9),
                     d_steps=2)
    assert not np.allclose(fresh.generator.get_weights()[0], gan.generator.get_weights()[0])
    assert callbacks.Checkpointer(str(tmp_path)).restore(fresh) == 3
    for a, b in [(gan.generator, fresh.generator), (gan.discriminator, fresh.discriminator),
                 (gan.ema_generator, fresh.ema_generator)]:
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_array_equal(wa, wb)
    for oa, ob in [(gan.d_optimizer, fresh.d_optimizer), (gan.g_optimizer, fresh.g_optimizer)]:
        assert int(ob.iterations.numpy()) == int(oa.iterations.numpy())
        for va, vb in zip(oa.variables, ob.variables):
            np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert int(fresh.d_optimizer.iterations.numpy()) == 6
    assert int(fresh.g_optimizer.iterations.numpy()) == 3
    # Training continues identically from the restored state.
    gan.fit(batches(images(size=8)), steps_per_epoch=1, epochs=1, verbose=0)
    fresh.fit(batches(images(size=8)), steps_per_epoch=1, epochs=1, verbose=0)
    for wa, wb in zip(gan.generator.get_weights(), fresh.generator.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
