"""MinibatchStdDev: the statistic, its gradient, its place in D, saving, and replicas."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan2 import networks
from tfgan2.layers import MinibatchStdDev


def reference(x, group_size):
    """The feature map of Karras et al. (2018) in NumPy, groups of consecutive rows."""
    out = []
    for start in range(0, len(x), group_size):
        group = x[start:start + group_size].astype(np.float64)
        stat = np.sqrt(group.var(axis=0) + 1e-8).mean()
        out += [np.full(x.shape[1:3] + (1,), stat)] * len(group)
    return np.concatenate([x, np.stack(out)], axis=-1)


@pytest.mark.parametrize("batch,group_size", [(8, 4), (6, 4), (5, 2)])
def test_feature_map_matches_the_definition(batch, group_size):
    x = np.random.default_rng(batch).normal(0, 2, (batch, 3, 3, 5)).astype("float32")
    y = MinibatchStdDev(group_size)(x).numpy()
    assert y.shape == (batch, 3, 3, 6)
    np.testing.assert_allclose(y, reference(x, group_size), rtol=1e-5, atol=1e-6)
    # Rows of different groups see different statistics; a group shares one.
    assert y[0, 0, 0, -1] != y[-1, 0, 0, -1]


def test_a_collapsed_group_shows_no_spread_and_the_gradient_reaches_every_sample():
    rng = np.random.default_rng(0)
    same = np.repeat(rng.normal(size=(1, 2, 2, 3)), 4, axis=0)
    spread = rng.normal(size=(4, 2, 2, 3))
    x = tf.constant(np.concatenate([same, spread]).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        feature = MinibatchStdDev(4)(x)[..., -1]
        total = tf.reduce_sum(feature)
    np.testing.assert_allclose(feature[:4].numpy(), 1e-4, rtol=1e-3)
    assert float(tf.reduce_min(feature[4:])) > 0.3
    grad = tape.gradient(total, x).numpy()
    assert np.all(np.abs(grad[4:]).reshape(4, -1).max(axis=1) > 1e-3)


def test_mixed_precision_output_keeps_the_policy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        y = MinibatchStdDev(2)(tf.ones([4, 2, 2, 3]))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert y.dtype == tf.bfloat16 and y.shape == (4, 2, 2, 4)


@pytest.mark.parametrize("bad", [1, 0, -2, 2.5])
def test_invalid_group_sizes(bad):
    with pytest.raises(ValueError, match="group_size must be an integer >= 2"):
        MinibatchStdDev(bad)


def test_discriminator_adds_it_before_its_last_block_and_saves(tmp_path):
    d = networks.dcgan_discriminator(resolution=16, channels=1, capacity=2, filter_size=3,
                                     normalization="spectral", minibatch_std=4)
    names = [layer.name for layer in d.layers]
    assert names.index("block0_lrelu") < names.index("minibatch_std") < names.index(
        "block1_conv0_sn")
    assert d.get_layer("minibatch_std").output.shape == (None, 8, 8, 3)
    plain = networks.dcgan_discriminator(resolution=16, channels=1, capacity=2, filter_size=3,
                                         normalization="spectral")
    # The next convolution reads one more channel: 3 x 3 x 1 x 4 more weights.
    assert d.count_params() - plain.count_params() == 3 * 3 * 1 * 4
    x = np.random.default_rng(1).uniform(-1, 1, (8, 16, 16, 1)).astype("float32")
    d.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras")
    np.testing.assert_allclose(loaded(x).numpy(), d(x).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="minibatch_std must be 0"):
        networks.dcgan_discriminator(resolution=16, channels=1, capacity=2, minibatch_std=1)


def test_two_replicas_match_one(mirrored, tiny_gan, compiled, images, batches):
    """Per-replica batches of 4 with groups of 2: both form the same groups."""
    def build(strategy):
        with strategy.scope():
            d = lambda: networks.dcgan_discriminator(  # noqa: E731
                resolution=8, channels=1, capacity=2, filter_size=3, normalization="spectral",
                minibatch_std=2)
            return compiled(tiny_gan(latent_dim=4, size=8, hidden=8, discriminator=d), 0.1,
                            optimizer="sgd", loss="hinge", r1_gamma=1.0)

    dataset = batches(images(16, size=8))
    one, two = build(tf.distribute.OneDeviceStrategy("/cpu:0")), build(mirrored)
    before = [w.copy() for w in one.get_weights()]
    h1 = one.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0).history
    h2 = two.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0).history
    assert any(not np.allclose(a, b) for a, b in zip(before, one.get_weights()))
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    for key in h1:
        assert h2[key][0] == pytest.approx(h1[key][0], rel=1e-3, abs=1e-4), key
