"""tfgan2.augment: DiffAugment and ADA ops, identity at p=0, gradients, seeds, adaptation."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan2 import augment, callbacks

SEED = tf.constant([3, 4], tf.int64)


def ada(ops, p=1.0):
    return augment.AdaptiveAugment(target=None, initial_p=p, ops=ops)


def run(layer, x, seed=SEED, rows=None):
    return layer(tf.constant(x), training=True, seed=seed, rows=rows).numpy()


def test_identity_outside_training_and_at_p_zero(images):
    x = images(8, size=8, channels=3)
    for layer in (augment.DiffAugment(), ada(augment.ADA_OPS, p=0.5)):
        np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    np.testing.assert_allclose(run(ada(augment.ADA_OPS, p=0.0), x), x, atol=1e-6)


@pytest.mark.parametrize("layer", [
    *[augment.DiffAugment(policy=op) for op in augment.DIFFAUGMENT_OPS],
    *[ada((op,)) for op in augment.ADA_OPS],
], ids=lambda layer: getattr(layer, "policy", None) or layer.ops[0])
def test_each_op_changes_images_and_is_differentiable(layer, images):
    x = tf.constant(images(32, size=8, channels=3))
    weights = tf.constant(images(32, size=8, channels=3, seed=1))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True, seed=SEED)
        total = tf.reduce_sum(y * weights)
    grad = tape.gradient(total, x).numpy()
    assert y.shape == x.shape
    # Images change (a discrete draw, e.g. no flip, leaves some as they are).
    changed = np.mean(np.any(np.abs(y.numpy() - x.numpy()) > 1e-4, axis=(1, 2, 3)))
    assert changed >= 0.3
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0
    # The gradient is that of a linear map of the pixels (every op is linear in x given its
    # random draw): check it against a finite difference along a random direction.
    direction = tf.constant(images(32, size=8, channels=3, seed=2))
    f = lambda t: float(tf.reduce_sum(layer(x + t * direction, training=True, seed=SEED)  # noqa
                                      * weights))
    numeric = (f(1e-2) - f(-1e-2)) / 2e-2
    assert numeric == pytest.approx(float(np.sum(grad * direction.numpy())), rel=1e-2, abs=1e-2)


def test_diffaugment_magnitudes(images):
    x = images(64, size=16)
    # translation: a shift of at most 1/8 of the size, zero padding, pixels otherwise exact.
    y = run(augment.DiffAugment(policy="translation"), x)
    for img, out in zip(x[..., 0], y[..., 0]):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(out, np.roll(np.roll(np.pad(img, 2), dy, 0), dx, 1)[2:-2, 2:-2])]
        assert matches, "not an integer shift of at most 2 pixels with zero padding"
    # cutout: zeros in one square of at most (16/2)^2 pixels, the rest unchanged.
    y = run(augment.DiffAugment(policy="cutout"), x)
    zeroed = (y == 0) & (x != 0)
    assert np.all((y == x) | zeroed)
    counts = zeroed.reshape(64, -1).sum(1)
    assert counts.max() == 64 and counts.min() >= 16
    # color: brightness, saturation and contrast keep each image an affine map of itself.
    y = run(augment.DiffAugment(policy="color"), x)
    for img, out in zip(x.reshape(64, -1), y.reshape(64, -1)):
        slope, intercept = np.polyfit(img, out, 1)
        np.testing.assert_allclose(out, slope * img + intercept, atol=1e-4)
        assert 0.5 - 1e-4 <= slope <= 1.5 + 1e-4


def test_ada_flip_rot90_and_integer_translation_are_exact_permutations(images):
    x = images(32, size=8)
    y = run(ada(("xflip",)), x)
    for img, out in zip(x[..., 0], y[..., 0]):
        assert np.array_equal(out, img) or np.array_equal(out, img[:, ::-1])
    y = run(ada(("rotate90",)), x)
    for img, out in zip(x[..., 0], y[..., 0]):
        assert any(np.allclose(out, np.rot90(img, k), atol=1e-5) for k in range(4))
    y = run(ada(("xint",)), x)
    for img, out in zip(x[..., 0], y[..., 0]):  # every output pixel is some input pixel
        assert np.all(np.min(np.abs(out.reshape(-1, 1) - img.reshape(1, -1)), axis=1) < 1e-5)


def test_ada_color_ops_keep_luma_or_scale(images):
    x = images(16, size=8, channels=3)
    y = run(ada(("brightness",)), x)
    shift = (y - x).reshape(16, -1)
    np.testing.assert_allclose(shift, shift[:, :1] * np.ones_like(shift), atol=1e-5)
    assert 0.05 < np.std(shift[:, 0]) < 0.5
    for op in ("saturation", "hue"):
        y = run(ada((op,)), x)
        np.testing.assert_allclose(y.mean(-1), x.mean(-1), atol=1e-5)  # luma is kept
    y = run(ada(("hue",)), x)  # a rotation about the luma axis keeps the chroma norm
    chroma = lambda a: np.linalg.norm(a - a.mean(-1, keepdims=True), axis=-1)  # noqa: E731
    np.testing.assert_allclose(chroma(y), chroma(x), atol=1e-5)


def test_draws_depend_on_seed_and_rows_split_a_global_draw(images):
    x = images(8, size=8, channels=3)
    for layer in (augment.DiffAugment(), ada(augment.ADA_OPS, p=0.7)):
        full = run(layer, x)
        assert not np.allclose(full, run(layer, x, seed=tf.constant([3, 5], tf.int64)))
        halves = [run(layer, x[:4], rows=tf.constant([0, 8])),
                  run(layer, x[4:], rows=tf.constant([4, 8]))]
        np.testing.assert_allclose(np.concatenate(halves), full, atol=1e-5)
        # Rows of a global draw are not the draw of the smaller batch.
        assert not np.allclose(run(layer, x[4:]), full[4:])


def test_probability_p_sets_the_share_of_changed_images(images):
    x = images(400, size=8)
    for p in (0.25, 0.75):
        y = run(ada(("brightness",), p=p), x)
        share = np.mean(np.any(np.abs(y - x) > 1e-7, axis=(1, 2, 3)))
        assert abs(share - p) < 0.08


def test_observe_moves_p_toward_the_target():
    layer = augment.AdaptiveAugment(target=0.6, initial_p=0.5, interval=2, speed_images=1000)
    for _ in range(4):  # D calls every real image real: r_t = 1 > 0.6
        layer.observe(tf.ones([10, 1]), 10)
    assert float(layer.r_t.numpy()) == 1.0
    np.testing.assert_allclose(float(layer.p.numpy()), 0.5 + 2 * 20 / 1000, rtol=1e-6)
    for _ in range(6):  # r_t = -1 < 0.6: p goes down
        layer.observe(-tf.ones([10, 1]), 10)
    np.testing.assert_allclose(float(layer.p.numpy()), 0.54 - 3 * 0.02, rtol=1e-6)
    fixed = augment.AdaptiveAugment(target=None, initial_p=0.3, interval=1)
    fixed.observe(tf.ones([4]), 4)
    assert float(fixed.p.numpy()) == pytest.approx(0.3) and float(fixed.r_t.numpy()) == 1.0


@pytest.fixture
def augmented_gan(tiny_gan, compiled):
    """``augmented_gan(layer, d_bias=0.0, seed=0, penalties=True)``: an MLP GAN on 8x8x1
    images whose D sees its inputs through ``layer``, compiled with SGD(0.01) and the hinge
    loss, R1 and the gradient penalty at 1 (0 with ``penalties=False``). A nonzero ``d_bias``
    is D's logit bias, and D then stays as it is (its rate is 0)."""

    def build(layer, d_bias=0.0, seed=0, penalties=True):
        gan = tiny_gan(latent_dim=4, size=8, hidden=8, seed=seed, augment=layer)
        if d_bias:
            gan.discriminator.get_layer("logit").bias.assign([d_bias])
        return compiled(gan, optimizer="sgd", d_lr=0.0 if d_bias else 0.01, g_lr=0.01,
                        loss="hinge", r1_gamma=1.0 if penalties else 0.0,
                        gradient_penalty=1.0 if penalties else 0.0)

    return build


@pytest.mark.parametrize("bias,direction", [(50.0, 1), (-50.0, -1)])
def test_p_adapts_in_fit_and_is_logged(bias, direction, images, batches, augmented_gan):
    """A D that calls every real image real (overfits) raises p; one that rejects them lowers it."""
    layer = augment.AdaptiveAugment(target=0.6, initial_p=0.5, interval=1, speed_images=400,
                                    ops=("xflip", "brightness"))
    gan = augmented_gan(layer, d_bias=bias, penalties=False)
    history = gan.fit(batches(images(16, size=8)), steps_per_epoch=5, epochs=1, verbose=0).history
    assert history["ada_r_t"][-1] == direction
    assert history["ada_p"][-1] == pytest.approx(0.5 + direction * 5 * 8 / 400, abs=1e-6)


def test_gan_augments_every_call_with_its_own_seed(images, batches, augmented_gan):
    layer = augment.DiffAugment()
    calls = []
    original = layer.call

    def spy(inputs, training=None, seed=None, rows=None):
        calls.append(seed)
        return original(inputs, training=training, seed=seed, rows=rows)

    layer.call = spy
    gan = augmented_gan(layer)
    gan.run_eagerly = True
    gan.fit(batches(images(16, size=8)), steps_per_epoch=2, epochs=1, verbose=0)
    # Per step: real (with R1), fake, gradient-penalty mixture, G's fakes.
    assert len(calls) == 8
    seeds = {tuple(np.asarray(s).tolist()) for s in calls}
    assert len(seeds) == 8


def test_ada_state_is_checkpointed_and_resume_is_exact(tmp_path, images, batches, augmented_gan):
    def make():
        return augmented_gan(augment.AdaptiveAugment(target=0.6, initial_p=0.5, interval=1,
                                                     speed_images=100,
                                                     ops=("xint", "scale", "contrast")),
                             penalties=False)

    straight = make()
    straight.fit(batches(images(16, size=8)), steps_per_epoch=4, epochs=1, verbose=0)
    first = make()
    first.fit(batches(images(16, size=8)), steps_per_epoch=2, epochs=1, verbose=0)
    assert float(first.augment.p.numpy()) != 0.5
    ckpt = callbacks.Checkpointer(str(tmp_path), every_n_steps=0)
    ckpt.set_model(first)
    ckpt.save()
    resumed = make()
    assert callbacks.Checkpointer(str(tmp_path)).restore(resumed) == 2
    assert float(resumed.augment.p.numpy()) == float(first.augment.p.numpy())
    resumed.fit(batches(images(16, size=8)).skip(2), steps_per_epoch=2, epochs=1, verbose=0)
    np.testing.assert_allclose(resumed.augment.p.numpy(), straight.augment.p.numpy())
    for a, b in zip(straight.generator.get_weights(), resumed.generator.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_from_spec_and_grid(images):
    assert augment.from_spec("none") is None
    layer = augment.from_spec("diffaugment:translation+cutout")
    assert isinstance(layer, augment.DiffAugment) and layer.ops == ["translation", "cutout"]
    assert augment.from_spec("ada", ada_target=0.7).target == 0.7
    for bad in ("diffaugment:blur", "autoaugment"):
        with pytest.raises(ValueError, match="augmentation|policy"):
            augment.from_spec(bad)
    grid = augment.grid_of_augmentations(augment.DiffAugment(), images(2, size=8, channels=3),
                                         num_versions=3)
    assert grid.shape == (6, 8, 8, 3)
    np.testing.assert_array_equal(grid[0], images(2, size=8, channels=3)[0])
    assert not np.allclose(grid[1], grid[0])


def test_layers_round_trip_through_keras_config():
    for layer in (augment.DiffAugment(policy="cutout", cutout_ratio=0.25),
                  augment.AdaptiveAugment(target=0.5, interval=8, ops=("xflip", "rotate"))):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("name", ["mixed_bfloat16", "mixed_float16"])
def test_augmentation_under_a_mixed_policy_is_the_float32_augmentation(name, images, batches,
                                                                       augmented_gan):
    """Made under a mixed policy (as launch.train does with --precision), both layers still
    compute in float32: the same pixels as under float32, and ADA's p adapts in fit."""
    x = images(8, size=8, channels=3)
    expected = [run(augment.DiffAugment(), x), run(ada(augment.ADA_OPS, p=0.7), x)]
    keras.mixed_precision.set_global_policy(name)
    try:
        layers = [augment.DiffAugment(), ada(augment.ADA_OPS, p=0.7)]
        for layer, want in zip(layers, expected):
            assert layer.compute_dtype == "float32"
            np.testing.assert_array_equal(run(layer, x), want)
            low = tf.cast(x, name.split("_")[1])  # what a mixed-precision G hands D
            out = layer(low, training=True, seed=SEED)
            assert out.dtype == tf.float32
            np.testing.assert_allclose(out.numpy(), want, atol=0.02)
        adaptive = augment.AdaptiveAugment(target=0.6, initial_p=0.5, interval=1,
                                           speed_images=400)
        gan = augmented_gan(adaptive, d_bias=50.0, penalties=False)
        history = gan.fit(batches(images(16, size=8)), steps_per_epoch=3, epochs=1,
                          verbose=0).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert history["ada_p"][-1] == pytest.approx(0.5 + 3 * 8 / 400, abs=1e-6)
    assert np.isfinite(history["g_loss"][-1])
