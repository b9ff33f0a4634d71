"""GAN(pack=m): PacGAN grouping, losses per group, every loss and penalty, replicas."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import augment, networks


def test_pack_groups_consecutive_samples_along_channels_and_unpacks(tiny_gan, images):
    model = tiny_gan(latent_dim=4, hidden=8, pack=3)
    x = tf.constant(images(6))
    packed = model.pack_samples(x).numpy()
    assert packed.shape == (2, 4, 4, 3)
    for group in range(2):
        for k in range(3):
            np.testing.assert_array_equal(packed[group, ..., k], x.numpy()[3 * group + k, ..., 0])
    np.testing.assert_array_equal(model.unpack_samples(packed).numpy(), x.numpy())
    vectors = tf.reshape(tf.range(12.0), [6, 2])
    np.testing.assert_array_equal(model.pack_samples(vectors).numpy()[1], [6, 7, 8, 9, 10, 11])
    assert model.discriminate(images(6)).shape == (2,)


@pytest.mark.parametrize("pack", [1, 2, 4])
def test_discriminator_loss_is_the_mean_over_groups(pack, tiny_gan, images):
    """A batch of pack x 3 samples is judged as 3 groups (PacGAN's count: the batch is
    m times the groups D judges), one loss term per group."""
    groups = 3
    model = tiny_gan(latent_dim=4, hidden=8, pack=pack)
    model.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0), loss="non_saturating")
    real = tf.constant(images(pack * groups))
    out = model.discriminator_step(real)
    assert out["loss"].shape == (groups,) and out["real_logits"].shape == (groups, 1)
    z = model.noise.latent(pack * groups, model.noise.seed_for(tfgan2.noise.D_NOISE, 0))
    fake = model.generator(z, training=True)
    r = model.discriminator(model.pack_samples(real)).numpy().ravel()
    f = model.discriminator(model.pack_samples(fake)).numpy().ravel()
    expected = np.logaddexp(0, -r) + np.logaddexp(0, f)
    np.testing.assert_allclose(out["loss"].numpy(), expected, rtol=1e-5)
    # G's non-saturating loss, softplus(-D(group)), is per group of its own pack x 3 samples.
    g_out = model.generator_step(pack * groups)
    z = model.noise.latent(pack * groups, model.noise.seed_for(tfgan2.noise.G_NOISE, 0))
    f = model.discriminator(model.pack_samples(model.generator(z, training=True)))
    assert g_out["loss"].shape == (groups,)
    np.testing.assert_allclose(g_out["loss"].numpy(), np.logaddexp(0, -f.numpy().ravel()),
                               rtol=1e-5)


@pytest.mark.parametrize("loss,penalties", [
    ("least_squares", {}),
    ("wasserstein", dict(gradient_penalty=10.0)), ("hinge", dict(r1_gamma=1.0)),
])
def test_every_loss_and_penalty_trains_packed(loss, penalties, tiny_gan, images, batches):
    model = tiny_gan(latent_dim=4, hidden=8, pack=2,
                     augment=augment.DiffAugment(policy="translation"))
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3), loss=loss,
                  **penalties)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(batches(images(16)), steps_per_epoch=2, epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values())
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())
               if a.size > 1)


def test_batches_must_be_multiples_of_pack(tiny_gan, images, batches):
    model = tiny_gan(latent_dim=4, hidden=8, pack=3)
    model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="pack=3"):
        model.fit(batches(images(16), batch=8), steps_per_epoch=1, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="pack must be an integer"):
        tiny_gan(latent_dim=4, hidden=8, pack=0)
    with pytest.raises(ValueError, match="multiple of 3"):
        model.discriminate(images(4))


@pytest.mark.parametrize("kwargs", [
    dict(pack=2, augment="diffaugment", loss="wasserstein", gradient_penalty=10.0),
    dict(pack=2, augment="ada", loss="hinge", r1_gamma=1.0),
    dict(pack=2, augment="diffaugment", loss="relativistic_pairing", r1_gamma=1.0, r2_gamma=2.0),
    dict(pack=4, augment="diffaugment", loss="non_saturating"),  # one group per replica
])
def test_two_replicas_match_one(mirrored, kwargs, tiny_gan, images, batches):
    kwargs = dict(kwargs)
    pack, spec = kwargs.pop("pack"), kwargs.pop("augment")

    def build(strategy):
        with strategy.scope():
            layer = (augment.DiffAugment() if spec == "diffaugment" else
                     augment.AdaptiveAugment(initial_p=0.5, interval=1, speed_images=200,
                                             ops=("xflip", "xint", "scale", "brightness")))
            model = tiny_gan(latent_dim=4, hidden=8, pack=pack, augment=layer)
            model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), **kwargs)
        return model

    one, two = build(tf.distribute.OneDeviceStrategy("/cpu:0")), build(mirrored)
    h1 = one.fit(batches(images(16)), steps_per_epoch=2, epochs=1, verbose=0).history
    h2 = two.fit(batches(images(16)), steps_per_epoch=2, epochs=1, verbose=0).history
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    for key in h1:
        assert h2[key][0] == pytest.approx(h1[key][0], rel=1e-3, abs=1e-4), key


@pytest.mark.parametrize("per_slot", [False, True])
def test_generator_per_slot_takes_batch_statistics_over_each_pack_slot(per_slot):
    """PacGAN's code calls G once per pack slot: with pack_generator_per_slot, latent
    i * m + j goes through G with slot j's B / m latents (batch norm normalizes each slot
    on its own) and comes back in its row, so each packed group holds one sample per slot."""
    z_in = keras.Input((4,))
    h = keras.layers.BatchNormalization(epsilon=1e-3)(z_in)  # gamma 1, beta 0 at the start
    g = keras.Model(z_in, keras.layers.Reshape((2, 2, 1))(h))
    d = networks.mlp_discriminator(image_shape=(2, 2, 1), hidden=8, pack=3)
    model = tfgan2.GAN(g, d, latent_dim=4, pack=3, pack_generator_per_slot=per_slot)
    z = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    z[1::3] += 5.0  # slot 1 sits far away: only its own statistics centre it
    out = model.run_G(tf.constant(z), training=True).numpy().reshape(12, 4)

    def normalized(x):
        return (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)

    if per_slot:
        for j in range(3):
            np.testing.assert_allclose(out[j::3], normalized(z[j::3]), rtol=1e-4, atol=1e-4)
    else:
        np.testing.assert_allclose(out, normalized(z), rtol=1e-4, atol=1e-4)
    # Sampling uses the moving statistics, one call on the whole batch either way.
    np.testing.assert_allclose(model.run_G(z, training=False).numpy(),
                               g(z, training=False).numpy(), rtol=1e-6, atol=1e-6)
    assert model.get_config()["pack_generator_per_slot"] is per_slot
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    data = tf.data.Dataset.from_tensor_slices(
        np.random.default_rng(1).uniform(-1, 1, (12, 2, 2, 1)).astype("float32"))
    history = model.fit(data.batch(6, drop_remainder=True).repeat(), steps_per_epoch=2,
                        epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values())
