"""Conditional GANs, ACGAN and InfoGAN: labels reach G and D, losses, replicas, resume, errors."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgan2
from tfgan2 import conditioning, infogan, losses, networks

LATENT = 4
SHAPE = (4, 4, 1)


def two_class_data(n=64, seed=0):
    """Class 0: images near -0.7; class 1: images near +0.7."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.int32)
    images = (np.where(labels[:, None, None, None] == 1, 0.7, -0.7)
              + 0.05 * rng.standard_normal((n,) + SHAPE)).astype(np.float32)
    return images, labels


def dataset(images, labels, batch=16):
    return (tf.data.Dataset.from_tensor_slices((images, labels))
            .batch(batch, drop_remainder=True).repeat())


def adam(lr=2e-3):
    return keras.optimizers.Adam(lr, beta_1=0.5)


def mlp_gan(seed=0, g_conditioning="embedding", d_conditioning="projection", num_classes=2,
            multilabel=False, hidden=32, **kwargs):
    keras.utils.set_random_seed(seed)
    g = networks.mlp_generator(latent_dim=LATENT, image_shape=SHAPE, hidden=hidden,
                               num_classes=num_classes, conditioning=g_conditioning,
                               embed_dim=4)
    d = networks.mlp_discriminator(image_shape=SHAPE, hidden=hidden, num_classes=num_classes,
                                   conditioning=d_conditioning)
    return tfgan2.GAN(g, d, latent_dim=LATENT, seed=seed, num_classes=num_classes,
                      multilabel=multilabel, **kwargs)


def compiled(gan, **kwargs):
    gan.compile(d_optimizer=adam(), g_optimizer=adam(), **kwargs)
    return gan


@pytest.mark.parametrize("g_cond,d_cond", [("embedding", "projection"), ("cbn", "acgan")])
def test_a_model_trained_on_two_classes_generates_each_on_request(g_cond, d_cond):
    images, labels = two_class_data()
    gan = compiled(mlp_gan(g_conditioning=g_cond, d_conditioning=d_cond),
                   steps_per_execution=10)
    gan.fit(dataset(images, labels), steps_per_epoch=300, epochs=1, verbose=0)
    zero = gan.generate(200, seed=1, labels=0)
    one = gan.generate(200, seed=1, labels=np.ones(200, np.int64))
    # The same latents, only the label differs: the images follow the label.
    assert zero.mean() < -0.3 and one.mean() > 0.3, (zero.mean(), one.mean())
    assert np.mean(zero.mean(axis=(1, 2, 3)) < 0) > 0.95
    assert np.mean(one.mean(axis=(1, 2, 3)) > 0) > 0.95


def test_labels_reach_the_discriminator():
    gan = mlp_gan()
    x = np.zeros((3,) + SHAPE, np.float32)
    kernel = gan.discriminator.get_layer("logit").embedding.kernel
    kernel.assign(np.random.default_rng(0).normal(size=kernel.shape).astype(np.float32))
    a, b = gan.discriminate(x + 0.5, [0, 0, 0]), gan.discriminate(x + 0.5, [1, 1, 1])
    assert not np.allclose(a, b)


def test_projection_logit_formula():
    layer = conditioning.ProjectionLogit()
    rng = np.random.default_rng(0)
    h = rng.normal(size=(5, 3)).astype(np.float32)
    c = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 1]]
    out = layer([h, c]).numpy()
    w, b = (v.numpy() for v in layer.linear.weights)
    v = layer.embedding.kernel.numpy()
    expected = h @ w + b + np.sum((c @ v) * h, axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_conditional_batch_norm_starts_as_batch_norm_and_learns_per_class_scale():
    layer = conditioning.ConditionalBatchNormalization()
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (8, 2, 2, 3)).astype(np.float32)
    c = np.eye(2, dtype=np.float32)[[0, 1] * 4]
    y = layer([x, c], training=True).numpy()
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-4)
    layer.gamma.kernel.assign([[1.0] * 3, [0.0] * 3])  # class 0: scale 2, class 1: scale 1
    y = layer([x, c], training=True).numpy()
    plain = (x - mean) / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(y[0::2], 2 * plain[0::2], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y[1::2], plain[1::2], rtol=1e-4, atol=1e-4)


def test_acgan_losses_match_hand_computed_values():
    real = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]], np.float32)
    fake = np.array([[0.0, 1.0, 0.0], [-1.0, 2.0, 1.0]], np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 2]]

    def ce(logits, k):
        return -(logits[k] - math.log(sum(math.exp(v) for v in logits)))

    expected_d = [ce(real[0], 0) + ce(fake[0], 0), ce(real[1], 2) + ce(fake[1], 2)]
    expected_g = [ce(fake[0], 0), ce(fake[1], 2)]
    np.testing.assert_allclose(losses.acgan_discriminator_loss(real, fake, y), expected_d,
                               rtol=1e-6)
    np.testing.assert_allclose(losses.acgan_generator_loss(fake, y), expected_g, rtol=1e-6)
    # Multi-label: mean sigmoid cross-entropy over the attributes.
    attrs = np.array([[1.0, 0.0, 1.0]], np.float32)
    sig = lambda t: 1 / (1 + math.exp(-t))  # noqa: E731
    want = -np.mean([math.log(sig(0.0)), math.log(1 - sig(1.0)), math.log(sig(0.0))])
    np.testing.assert_allclose(losses.acgan_generator_loss(fake[:1], attrs, multilabel=True),
                               [want], rtol=1e-6)


def test_mutual_information_penalty_matches_hand_computed_value():
    cat_logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], np.float32)
    cat_codes = np.array([2, 0])
    cont = np.array([[0.5, -0.5], [0.0, 1.0]], np.float32)
    means = np.array([[0.0, 0.0], [0.0, 0.0]], np.float32)
    log_cat = [c - math.log(sum(math.exp(v) for v in row))
               for row, c in zip(cat_logits, [3.0, 0.0])]
    log_cont = [np.mean([-0.5 * v * v - 0.5 * math.log(2 * math.pi) for v in row])
                for row in cont]
    expected = [-(a + b) / 2 for a, b in zip(log_cat, log_cont)]
    got = losses.mutual_information_penalty([cat_codes], [cat_logits], cont, means)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    codes = infogan.LatentCodes.parse("categorical:3,continuous:2")
    packed = np.concatenate([np.eye(3, dtype=np.float32)[cat_codes], cont], axis=1)
    q = np.concatenate([cat_logits, means], axis=1)
    np.testing.assert_allclose(codes.penalty(packed, q), expected, rtol=1e-6)


def test_latent_codes_parse_and_reject_bad_specs():
    codes = infogan.LatentCodes.parse("categorical:10, categorical:3,continuous:2")
    assert codes.categorical == (10, 3) and codes.continuous == 2 and codes.dim == 15
    assert infogan.LatentCodes.parse(codes.spec()) == codes
    for bad in ("categorical:1", "discrete:4", "continuous:x", ""):
        with pytest.raises(ValueError):
            infogan.LatentCodes.parse(bad)


def test_infogan_learns_its_codes_and_traverses_one_at_a_time():
    keras.utils.set_random_seed(0)
    codes = infogan.LatentCodes(categorical=(2,), continuous=1)
    g = networks.mlp_generator(latent_dim=LATENT + codes.dim, image_shape=SHAPE, hidden=32)
    d = networks.mlp_discriminator(image_shape=SHAPE, hidden=32, q_dim=codes.q_dim)
    gan = compiled(tfgan2.GAN(g, d, latent_dim=LATENT, seed=0, infogan_codes=codes),
                   steps_per_execution=10)
    images, _ = two_class_data()
    ds = tf.data.Dataset.from_tensor_slices(images).batch(16, drop_remainder=True).repeat()
    hist = gan.fit(ds, steps_per_epoch=100, epochs=3, verbose=0)
    penalty = hist.history["info_penalty"]
    # Chance level: (log 2 + E[-log N(c; 0, 1)] for c ~ U[-1, 1]) / 2 = 0.81.
    assert penalty[-1] < penalty[0] and penalty[-1] < 0.6, penalty
    base = gan.sample_latent(3, seed=0)
    assert base.shape == (3, LATENT + codes.dim)
    walk = codes.traversal(1, [-1.0, 0.0, 1.0], base[:, LATENT:])
    assert walk.shape == (3, 3, codes.dim)
    np.testing.assert_array_equal(walk[:, :, -1], [[-1.0] * 3, [0.0] * 3, [1.0] * 3])
    np.testing.assert_array_equal(walk[:, :, :2], np.repeat(base[None, :, LATENT:LATENT + 2],
                                                            3, axis=0))


def test_conditional_training_is_equal_on_one_and_two_replicas(mirrored):
    images, labels = two_class_data(32)
    results = []
    for strategy in (tf.distribute.OneDeviceStrategy("/cpu:0"), mirrored):
        with strategy.scope():
            gan = compiled(mlp_gan(d_conditioning="acgan"))
        gan.fit(dataset(images, labels), steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)
        results.append([w.copy() for w in gan.generator.get_weights()
                        + gan.discriminator.get_weights()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_conditional_training_resumes_bit_exact(tmp_path, deterministic):
    images, labels = two_class_data(48)

    def make():
        return compiled(mlp_gan(g_conditioning="cbn", d_conditioning="projection",
                                ema_decay=0.9))

    def data(start):
        return dataset(images, labels).skip(start)

    whole = make()
    tfgan2.train(whole, data, str(tmp_path / "whole"), 12, log_every=4, sample_every=0,
                 checkpoint_every=4, verbose=0)
    first = make()
    tfgan2.train(first, data, str(tmp_path / "split"), 8, log_every=4, sample_every=0,
                 checkpoint_every=4, verbose=0)
    resumed = make()
    result = tfgan2.train(resumed, data, str(tmp_path / "split"), 12, log_every=4,
                          sample_every=0, checkpoint_every=4, verbose=0)
    assert result.start_step == 8 and resumed.step == 12
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "split" / "samples").exists()


def test_invalid_labels_get_clear_errors_before_any_update():
    images, labels = two_class_data(32)
    gan = compiled(mlp_gan())
    before = [w.copy() for w in gan.get_weights()]
    no_labels = tf.data.Dataset.from_tensor_slices(images).batch(16).repeat()
    with pytest.raises(ValueError, match="yields no labels"):
        gan.fit(no_labels, steps_per_epoch=1, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="integer ids"):
        gan.fit(dataset(images, labels.astype(np.float32)), steps_per_epoch=1, verbose=0)
    with pytest.raises(ValueError, match="do not fit"):
        gan.fit(dataset(images, np.eye(3, dtype=np.float32)[labels]), steps_per_epoch=1,
                verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"must lie in \[0, 2\)"):
        gan.fit(dataset(images, labels + 1), steps_per_epoch=1, verbose=0)
    for a, b in zip(before, gan.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)"):
        gan.generate(3, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="conditional"):
        gan.run_G(tf.zeros([1, LATENT]), None)
    with pytest.raises(ValueError, match="unconditional"):
        tfgan2.GAN(networks.mlp_generator(latent_dim=LATENT, image_shape=SHAPE, hidden=8),
                   networks.mlp_discriminator(image_shape=SHAPE, hidden=8, num_classes=2),
                   latent_dim=LATENT)


def test_multilabel_conditioning_on_attribute_vectors():
    rng = np.random.default_rng(0)
    attrs = rng.integers(0, 2, (32, 5)).astype(np.float32)
    images = (0.6 * (attrs[:, :1, None, None] * 2 - 1)
              * np.ones((1,) + SHAPE)).astype(np.float32)
    gan = compiled(mlp_gan(num_classes=5, multilabel=True, d_conditioning="acgan"))
    hist = gan.fit(dataset(images, attrs), steps_per_epoch=20, epochs=1, verbose=0)
    assert 0.0 <= hist.history["class_accuracy"][-1] <= 1.0
    out = gan.generate(4, labels=attrs[:4])
    assert out.shape == (4,) + SHAPE
    with pytest.raises(ValueError, match="0 or 1"):
        gan.generate(1, labels=[[0.5, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match="multi-label"):
        gan.generate(2)


def test_sample_grid_draws_one_row_per_class(tmp_path):
    from tfgan2 import callbacks

    gan = mlp_gan(num_classes=3)
    grid = callbacks.SampleGrid(str(tmp_path), num_samples=7, seed=0)
    grid.set_model(gan)
    z, labels, cols = grid.latents_and_labels()
    assert cols == 2 and z.shape == (6, LATENT)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(z[:2], z[2:4])  # each column keeps its z across classes
    path = grid.write(5)
    assert path.endswith("step_0000005.png") and (tmp_path / "step_0000005.png").exists()


def test_generate_returns_the_classes_it_drew():
    gan = compiled(mlp_gan(num_classes=3))
    samples, labels = gan.generate(40, seed=4, return_labels=True)
    assert samples.shape[0] == 40 and labels.shape == (40,) and labels.dtype == np.int32
    assert set(labels) == {0, 1, 2}
    np.testing.assert_array_equal(samples, gan.generate(40, seed=4, labels=labels))
    fixed = gan.generate(5, seed=4, labels=2, return_labels=True)[1]
    np.testing.assert_array_equal(fixed, [2] * 5)
