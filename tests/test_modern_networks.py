"""The residual network families: resnet (SNGAN/SAGAN/BigGAN) and r3gan (R3GAN).

Shapes and ranges at 32-256 px, conditional and packed; the published parameter
counts at full width; R3GAN's resampling filter and fix-up initialization;
self-attention; save/load under safe_mode; one GAN step on 1 and 2 replicas;
bit-exact resume; the launcher families.
"""
import contextlib
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags

import tfgan2
from tfgan2 import attention, layers as layers_lib, networks, r3gan_networks, resampling

# Tiny widths: resnet's ch (blocks have 1-16 x ch channels), r3gan's stage width
# (a multiple of 8: twice it must split into groups of 16).
TINY = {"resnet": dict(width=2), "r3gan": dict(width=8, blocks_per_stage=1)}


# Launcher flags of an image folder (the families build sizes the digits do not have).
FOLDER = ["--data_source=image_folder", "--data_dir=/images"]


def builders(family):
    return (getattr(networks, f"{family}_generator"),
            getattr(networks, f"{family}_discriminator"))


def trainable_count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def labels_of(ids, num_classes):
    return tf.constant(np.eye(num_classes, dtype=np.float32)[ids])


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize("family", ["resnet", "r3gan"])
@pytest.mark.parametrize("resolution,channels,num_classes,pack", [
    (32, 3, 5, 1), (64, 1, None, 2), (128, 3, None, 1), (256, 1, 3, 1)])
def test_builds_with_the_contract_shapes(family, resolution, channels, num_classes, pack):
    make_g, make_d = builders(family)
    g = make_g(latent_dim=12, resolution=resolution, channels=channels,
               num_classes=num_classes, **TINY[family])
    d = make_d(resolution=resolution, channels=channels, num_classes=num_classes, pack=pack,
               **TINY[family])
    rng = np.random.default_rng(0)
    z = tf.constant(rng.normal(size=(4, 12)).astype(np.float32) * 3)
    ids = np.array([0, 1, 2, 0]) % (num_classes or 1)
    c = labels_of(ids, num_classes) if num_classes else None
    x = g([z, c] if num_classes else z, training=True)
    assert x.shape == (4, resolution, resolution, channels) and x.dtype == tf.float32
    assert float(tf.reduce_max(tf.abs(x))) <= 1.0
    assert float(tf.math.reduce_std(x)) > 1e-3  # not a constant image
    assert d.inputs[0].shape[-1] == channels * pack
    packed = tf.reshape(tf.transpose(tf.reshape(x, (4 // pack, pack, resolution, resolution,
                                                    channels)), (0, 2, 3, 1, 4)),
                        (4 // pack, resolution, resolution, channels * pack))
    logits = d([packed, c] if num_classes else packed, training=False)
    assert logits.shape == (4 // pack, 1) and logits.dtype == tf.float32
    # No batch statistics in D: each example's logit depends on that example alone.
    one = d([packed[:1], c[:1]] if num_classes else packed[:1], training=False)
    np.testing.assert_allclose(one.numpy(), logits.numpy()[:1], rtol=1e-4, atol=1e-5)
    if num_classes:
        # D's projection reads the label: the same image judged under another class.
        other = d([packed, labels_of((ids + 1) % num_classes, num_classes)], training=False)
        assert not np.allclose(other.numpy(), logits.numpy())


def test_generators_read_the_label():
    c0, c1 = labels_of([0, 0], 3), labels_of([1, 1], 3)
    z = tf.constant(np.random.default_rng(1).normal(size=(2, 12)).astype(np.float32))
    g = networks.r3gan_generator(latent_dim=12, resolution=16, num_classes=3, **TINY["r3gan"])
    assert not np.allclose(g([z, c0]).numpy(), g([z, c1]).numpy())
    g = networks.resnet_generator(latent_dim=12, resolution=16, num_classes=3, **TINY["resnet"])
    # BigGAN's conditional batch norm: gain and bias linear in [shared embedding, z chunk];
    # they start at zero (an untrained layer is plain batch norm), so give them weights.
    norms = [l for l in g.layers if isinstance(l, tfgan2.conditioning.ConditionalBatchNormalization)]
    assert len(norms) == 4  # two per block, the last batch norm is unconditional
    rng = np.random.default_rng(2)
    for norm in norms:
        for dense in (norm.gamma, norm.beta):
            dense.kernel.assign(rng.normal(size=dense.kernel.shape).astype(np.float32))
    assert not np.allclose(g([z, c0], training=False).numpy(), g([z, c1], training=False).numpy())
    # The hierarchical latent: 12 = 3 chunks of 4 (the dense layer and two blocks).
    assert g.get_layer("latent_chunks").sizes == [4, 4, 4]
    assert g.get_layer("project").kernel.shape == (4, 4 * 4 * 4 * 2)


def test_resnet_discriminator_heads():
    # Projection with an InfoGAN head: the projected logit and q; ACGAN: class logits.
    d = networks.resnet_discriminator(resolution=8, width=4, num_classes=3, q_dim=2)
    assert len(d.inputs) == 2 and set(d.output) == {"logits", "q"}
    x = tf.zeros([2, 8, 8, 3])
    out = d([x, labels_of([0, 1], 3)])
    assert out["logits"].shape == (2, 1) and out["q"].shape == (2, 2)
    d = networks.resnet_discriminator(resolution=8, width=4, num_classes=3,
                                      conditioning="acgan")
    assert len(d.inputs) == 1 and d(x)["class_logits"].shape == (2, 3)
    # The projection's class embedding is spectrally normalized too.
    names = [l.name for l in layers_lib.spectral_normalization_layers(
        networks.resnet_discriminator(resolution=8, width=4, num_classes=3))]
    assert "label_embedding_sn" in names and "logit_sn" in names


def test_mixed_bfloat16_outputs_stay_float32():
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        for family in ("resnet", "r3gan"):
            make_g, make_d = builders(family)
            g = make_g(latent_dim=8, resolution=16, **TINY[family])
            d = make_d(resolution=16, **TINY[family])
            x = g(tf.zeros([2, 8]), training=True)
            assert x.dtype == tf.float32 and d(x).dtype == tf.float32
            assert g.get_layer("image").compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("make,kwargs,message", [
    (networks.resnet_generator, dict(resolution=512), "from 8 to 256"),
    (networks.resnet_discriminator, dict(resolution=48), "from 8 to 256"),
    (networks.resnet_generator, dict(channels=2), "channels"),
    (networks.resnet_generator, dict(resolution=32, attention=4), r"feature maps \(8, 16, 32\)"),
    (networks.resnet_discriminator, dict(resolution=32, attention=32), r"\(8, 16\)"),
    (networks.resnet_generator, dict(resolution=64, num_classes=3, latent_dim=3),
     "at least 5"),
    (networks.r3gan_generator, dict(width=12), "multiple of 8"),
    (networks.r3gan_discriminator, dict(resolution=8, width=8, num_classes=3,
                                        conditioning="acgan"), "projection"),
    (networks.r3gan_discriminator, dict(resolution=8, width=8, q_dim=2), "InfoGAN"),
    (networks.r3gan_generator, dict(resolution=8, width=8, filter=()), "filter"),
])
def test_bad_arguments_are_clear_errors(make, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


# ------------------------------------------------------------------ published sizes
def test_resnet_at_cifar_width_has_sngan_resnet32_parameter_counts():
    # Mimicry's torch_mimicry/nets/sngan/sngan_32.py (ResNetGenerator32, ngf=256, nz=128;
    # ResNetDiscriminator32, ndf=128): the sums of its parameter shapes are 4,276,739 and
    # 1,053,825 (its spectral-norm vectors are buffers, as our vector_u are non-trainable);
    # "G about 4.3 M, D about 1.1 M".
    g = networks.resnet_generator(latent_dim=128, resolution=32, channels=3, width=64)
    d = networks.resnet_discriminator(resolution=32, channels=3, width=64)
    assert trainable_count(g) == 4_276_739
    assert trainable_count(d) == 1_053_825
    assert [l.filters for l in g.layers if l.name.endswith("_conv0")] == [256, 256, 256]
    d_convs = [l.layer.filters for l in d.layers if l.name.endswith("_conv1_sn")]
    assert d_convs == [128] * 4
    # Every weight layer of D is spectrally normalized: two convolutions per block, the
    # shortcuts of the two downsampling blocks, the logit.
    assert len(layers_lib.spectral_normalization_layers(d)) == 4 * 2 + 2 + 1


def test_resnet_widths_follow_sngan_64_and_128():
    # Mimicry's SNGAN-64 / -128 at ch = ngf / 16 = ndf / 16: G 16ch -> 8, 4, 2, 1 ch
    # (64) or 16, 8, 4, 2, 1 ch (128); D 1, 2, 4, 8, 16 ch (64; all downsample) and
    # 1, 2, 4, 8, 16, 16 ch (128; the last block keeps 4x4).
    for res, g_widths, d_widths in [(64, [8, 4, 2, 1], [1, 2, 4, 8, 16]),
                                    (128, [16, 8, 4, 2, 1], [1, 2, 4, 8, 16, 16])]:
        g = networks.resnet_generator(resolution=res, width=4)
        d = networks.resnet_discriminator(resolution=res, width=4)
        assert g.get_layer("reshape").output.shape[-1] == 64
        assert [l.filters // 4 for l in g.layers if l.name.endswith("_conv1")] == g_widths
        assert [l.layer.filters // 4 for l in d.layers
                if l.name.endswith("_conv1_sn")] == d_widths
        assert d.get_layer("sum_pool").output.shape[-1] == d_widths[-1] * 4


def test_r3gan_at_cifar_width_has_the_papers_parameter_counts():
    # R3GAN's CIFAR-10 preset (train.py): widths 768 at 4, 8, 16, 32, two blocks per
    # stage, cardinality 96 (16 channels per group), expansion 2, z 64, conditional on
    # 10 classes; the paper's table: G 20.78 M, D 21.28 M parameters.
    g = networks.r3gan_generator(latent_dim=64, resolution=32, width=768, num_classes=10)
    d = networks.r3gan_discriminator(resolution=32, width=768, num_classes=10)
    assert trainable_count(g) == 20_781_952
    assert trainable_count(d) == 21_280_512
    assert abs(trainable_count(g) / 20.78e6 - 1) < 0.02
    assert abs(trainable_count(d) / 21.28e6 - 1) < 0.02
    grouped = [l for l in g.layers if l.name.endswith("_conv1")]
    assert len(grouped) == 8 and {(l.groups, l.filters) for l in grouped} == {(96, 1536)}
    assert not [l for l in g.layers + d.layers
                if "normalization" in type(l).__name__.lower()]


def test_r3gan_stage_widths_halve_above_32():
    assert r3gan_networks.stage_widths(256, 768) == {4: 768, 8: 768, 16: 768, 32: 768,
                                                     64: 384, 128: 192, 256: 96}
    assert r3gan_networks.stage_widths(128, 16) == {4: 16, 8: 16, 16: 16, 32: 16, 64: 8,
                                                    128: 8}


# ------------------------------------------------------------------ R3GAN's building blocks
def _bilinear_up(a, axis):
    a = np.moveaxis(a, axis, 0)
    p = np.concatenate([np.zeros_like(a[:1]), a, np.zeros_like(a[:1])])
    out = np.empty((2 * a.shape[0],) + a.shape[1:], a.dtype)
    out[0::2] = 0.25 * p[:-2] + 0.75 * p[1:-1]
    out[1::2] = 0.75 * p[1:-1] + 0.25 * p[2:]
    return np.moveaxis(out, 0, axis)


def _filtered_down(a, axis):
    a = np.moveaxis(a, axis, 0)
    n = a.shape[0]
    p = np.concatenate([np.zeros_like(a[:1]), a, np.zeros_like(a[:1])])
    out = (p[0:n:2] + 3 * p[1:n + 1:2] + 3 * p[2:n + 2:2] + p[3:n + 3:2]) / 8
    return np.moveaxis(out, 0, axis)


def test_resampling_is_the_1_3_3_1_filter():
    np.testing.assert_allclose(resampling.resampling_taps((1, 2, 1)), [1 / 8, 3 / 8, 3 / 8, 1 / 8])
    x = np.random.default_rng(3).normal(size=(2, 6, 4, 3)).astype(np.float32)
    up = resampling.LowpassUpsample2D()(x).numpy()
    np.testing.assert_allclose(up, _bilinear_up(_bilinear_up(x, 1), 2), rtol=1e-6, atol=1e-6)
    down = resampling.LowpassDownsample2D()(x).numpy()
    np.testing.assert_allclose(down, _filtered_down(_filtered_down(x, 1), 2), rtol=1e-6,
                               atol=1e-6)
    # Inside the image a constant stays constant (gain 4 up, 1 down).
    ones = np.ones((1, 8, 8, 1), np.float32)
    assert np.allclose(resampling.LowpassUpsample2D()(ones).numpy()[0, 1:-1, 1:-1], 1.0)
    assert np.allclose(resampling.LowpassDownsample2D()(ones).numpy()[0, 1:-1, 1:-1], 1.0)
    with pytest.raises(ValueError, match="even"):
        resampling.LowpassDownsample2D()(np.ones((1, 5, 4, 1), np.float32))


def test_r3gan_fixup_initialization():
    keras.utils.set_random_seed(0)
    g = networks.r3gan_generator(latent_dim=16, resolution=16, width=128)  # 3 stages x 2 blocks
    gain = math.sqrt(2 / 1.04) * 6 ** -0.25
    for layer in g.layers:
        if layer.name.endswith("_conv2"):  # the last convolution of every residual branch
            assert not np.any(layer.kernel.numpy()) and not layer.use_bias
    first = g.get_layer("stage8_block0_conv0").kernel.numpy()  # 1x1, fan-in 128
    grouped = g.get_layer("stage8_block0_conv1").kernel.numpy()  # 3x3, 16 channels per group
    assert first.std() == pytest.approx(gain / math.sqrt(128), rel=0.05)
    assert grouped.std() == pytest.approx(gain / math.sqrt(16 * 9), rel=0.05)
    assert grouped.shape == (3, 3, 16, 256)
    # With the branches at zero, G is basis -> upsampling -> 1x1 convolution.
    z = tf.constant(np.random.default_rng(4).normal(size=(3, 16)).astype(np.float32))
    h = g.get_layer("basis")(z)
    for side in (8, 16):
        h = g.get_layer(f"stage{side}_up")(h)
    np.testing.assert_allclose(g(z).numpy(), g.get_layer("image")(h).numpy(), rtol=1e-5,
                               atol=1e-6)


def test_grouped_convolution_matches_one_convolution_per_group():
    conv = layers_lib.Conv2D(32, 3, padding="same", groups=4)
    x = tf.constant(np.random.default_rng(5).normal(size=(2, 6, 6, 16)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = conv(x)
        loss = tf.reduce_sum(y * y)
    grads = tape.gradient(loss, [x, conv.kernel])
    kernel = conv.kernel
    with tf.GradientTape() as tape:
        tape.watch(x)
        parts = [tf.nn.conv2d(a, k, 1, "SAME") + b for a, k, b in
                 zip(tf.split(x, 4, -1), tf.split(kernel, 4, -1), tf.split(conv.bias, 4))]
        ref = tf.concat(parts, -1)
        ref_loss = tf.reduce_sum(ref * ref)
    ref_grads = tape.gradient(ref_loss, [x, kernel])
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    for a, b in zip(grads, ref_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ self-attention
def test_self_attention_starts_as_identity_and_is_spectrally_normalized():
    layer = attention.SelfAttention2D(spectral_norm=True)
    x = tf.constant(np.random.default_rng(6).normal(size=(2, 4, 4, 16)).astype(np.float32))
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    layer.gamma.assign(1.0)
    y = layer(x).numpy()
    assert not np.allclose(y, x.numpy())
    # Attention mixes positions: changing one pixel changes the output elsewhere.
    x2 = tf.tensor_scatter_nd_add(x, [[0, 3, 3]], [tf.ones(16) * 5.0])
    assert not np.allclose(layer(x2).numpy()[0, 0, 0], y[0, 0, 0])
    d = networks.resnet_discriminator(resolution=16, width=4, attention=8)
    d_sn = layers_lib.spectral_normalization_layers(d)
    att = d.get_layer("attention")
    assert {id(l) for l in (att.theta, att.phi, att.g, att.o)} <= {id(l) for l in d_sn}
    g = networks.resnet_generator(resolution=16, width=4, attention=16)
    assert g.get_layer("attention").output.shape == (None, 16, 16, 16)
    assert not layers_lib.spectral_normalization_layers(g)
    g = networks.resnet_generator(resolution=16, width=4, spectral_norm=True)
    assert len(layers_lib.spectral_normalization_layers(g)) == 2 * 3 + 2


# ------------------------------------------------------------------ saving
@pytest.mark.parametrize("family,extra", [
    ("resnet", dict(attention=8, width=4)), ("r3gan", dict(filter=(1, 3, 3, 1)))])
def test_save_and_load_under_safe_mode(tmp_path, family, extra):
    make_g, make_d = builders(family)
    kwargs = {**TINY[family], **extra}
    g_kwargs = dict(kwargs, spectral_norm=True) if family == "resnet" else kwargs
    g = make_g(latent_dim=6, resolution=16, num_classes=3, **g_kwargs)
    d = make_d(resolution=16, num_classes=3, **kwargs)
    z = tf.constant(np.random.default_rng(7).normal(size=(3, 6)).astype(np.float32))
    c = labels_of([0, 1, 2], 3)
    for model, inputs in ((g, [z, c]), (d, [g([z, c]), c])):
        if "attention" in [l.name for l in model.layers]:
            model.get_layer("attention").gamma.assign(0.7)  # not the identity
        path = str(tmp_path / f"{model.name}.keras")
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
        np.testing.assert_array_equal(loaded(inputs, training=False).numpy(),
                                      model(inputs, training=False).numpy())


# ------------------------------------------------------------------ in a GAN
def tiny_gan(family, strategy=None, seed=0, ema_decay=0.5, sgd=False, full=True):
    """A resnet (``full``: conditional, self-attention in D, synchronized batch norm in G so
    that 1 and 2 replicas see the same statistics) or a packed r3gan, at 8x8x1.

    ``sgd``: plain SGD instead of Adam. The resnet's convolutions before a batch norm
    have biases (as the reference code; part of the parameter count) whose gradient is
    zero up to rounding: Adam divides that rounding noise by its own size and moves the
    bias by a rounding-dependent amount, so 1 and 2 replicas agree only under SGD.
    """
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        keras.utils.set_random_seed(seed)
        if family == "resnet":
            cond = dict(num_classes=2) if full else {}
            g = networks.resnet_generator(latent_dim=6, resolution=8, channels=1, width=2,
                                          sync_batchnorm=full, **cond)
            d = networks.resnet_discriminator(resolution=8, channels=1, width=4,
                                              attention=4 if full else 0, **cond)
            gan = tfgan2.GAN(g, d, latent_dim=6, seed=seed, ema_decay=ema_decay, **cond)
            if full:
                d.get_layer("attention").gamma.assign(0.5)
        else:
            g = networks.r3gan_generator(latent_dim=6, resolution=8, channels=1,
                                         **TINY["r3gan"])
            d = networks.r3gan_discriminator(resolution=8, channels=1, pack=2, **TINY["r3gan"])
            gan = tfgan2.GAN(g, d, latent_dim=6, seed=seed, ema_decay=ema_decay, pack=2)

        def optimizer():
            return keras.optimizers.SGD(0.1) if sgd else keras.optimizers.Adam(1e-3, beta_1=0.5)

        gan.compile(optimizer(), optimizer(), loss="hinge")
    return gan


def data(family, n=32, batch=8, labels=True):
    rng = np.random.default_rng(8)
    images = rng.uniform(-1, 1, (n, 8, 8, 1)).astype(np.float32)
    if family == "resnet" and labels:
        ids = rng.integers(0, 2, n).astype(np.int32)
        ds = tf.data.Dataset.from_tensor_slices((images, ids))
    else:
        ds = tf.data.Dataset.from_tensor_slices(images)
    return ds.batch(batch, drop_remainder=True).repeat()


@pytest.mark.parametrize("family", ["resnet", "r3gan"])
def test_two_replicas_match_one(mirrored, family):
    one = tiny_gan(family, tf.distribute.OneDeviceStrategy("/cpu:0"), sgd=True)
    two = tiny_gan(family, mirrored, sgd=True)
    before = [w.copy() for w in one.discriminator.get_weights()]
    h1 = one.fit(data(family), steps_per_epoch=2, epochs=1, verbose=0).history
    h2 = two.fit(data(family), steps_per_epoch=2, epochs=1, verbose=0).history
    assert any(not np.allclose(a, b) for a, b in zip(before, one.discriminator.get_weights()))
    for a, b in [(one.generator, two.generator), (one.discriminator, two.discriminator),
                 (one.ema_generator, two.ema_generator)]:
        for wa, wb in zip(a.get_weights(), b.get_weights()):
            np.testing.assert_allclose(wa, wb, rtol=2e-4, atol=2e-5)
    for key in ("d_loss", "g_loss"):
        assert np.isfinite(h1[key][0])
        assert h2[key][0] == pytest.approx(h1[key][0], rel=1e-4, abs=1e-5), key


@pytest.mark.parametrize("family", ["resnet", "r3gan"])
def test_training_resumes_bit_exact(tmp_path, family, deterministic):

    def run(directory, steps, seed):
        gan = tiny_gan(family, seed=seed, ema_decay=0.9, full=False)
        result = tfgan2.train(gan, lambda start: data(family, labels=False).skip(start),
                              str(directory), steps, log_every=2, sample_every=0,
                              checkpoint_every=2, verbose=0)
        return gan, result

    whole, _ = run(tmp_path / "whole", 4, seed=0)
    run(tmp_path / "split", 2, seed=0)
    resumed, result = run(tmp_path / "split", 4, seed=1)  # other initial weights: restored
    assert result.start_step == 2 and resumed.step == 4
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ the launcher
def parsed(*args):
    from launch import config

    fv = flags.FlagValues()
    config.define_train_flags(fv)
    fv(["launch", *args])
    return fv


@pytest.mark.parametrize("args,g_params,d_params", [
    (["--network=resnet", "--resolution=16", "--channels=1", "--g_hidden=4", "--d_hidden=4",
      "--attention=8", "--g_spectral_norm", *FOLDER], None, None),
    # The published widths by default: SNGAN's CIFAR-10 ResNet at 32x32x3.
    (["--network=resnet", "--resolution=32", "--latent_dim=128", *FOLDER], 4_276_739,
     1_053_825),
    (["--network=r3gan", "--resolution=16", "--g_hidden=16", "--d_hidden=8", "--pack=2",
      *FOLDER], None, None),
    (["--network=r3gan", "--conditional", "--g_hidden=16", "--d_hidden=16"], None, None),
])
def test_launcher_families_build_from_flags(args, g_params, d_params):
    from launch import builders, config

    fv = parsed(*args)
    config.validate(fv)
    shape = builders.data_shape(fv)
    g, d = builders.build_networks(fv)
    assert g.output_shape == (None,) + shape
    assert d.inputs[0].shape[-1] == shape[-1] * fv.pack
    if g_params is not None:
        assert (trainable_count(g), trainable_count(d)) == (g_params, d_params)
    if "--attention=8" in args:
        assert g.get_layer("attention") and d.get_layer("attention")
        assert layers_lib.spectral_normalization_layers(g)
    if fv.conditional:
        assert len(g.inputs) == 2 and len(d.inputs) == 2


@pytest.mark.parametrize("network", ["resnet", "r3gan"])
def test_images_cfg_takes_the_families(network):
    from launch import config

    fv = parsed(f"--flagfile={config.find_config('images.cfg')}", "--data_dir=/images",
                f"--network={network}", "--minibatch_std=0")
    config.validate(fv)
    assert (fv.resolution, fv.loss, fv.r1_gamma) == (64, "hinge", 4.0)


@pytest.mark.parametrize("args,message", [
    (["--network=dcgan", "--attention=8"], "needs --network=resnet"),
    (["--network=r3gan", "--g_spectral_norm"], "needs --network=resnet"),
    (["--network=resnet", "--resolution=512", *FOLDER], "from 8 to 256"),
    (["--network=resnet", "--attention=4"], r"none at this size"),
    (["--network=resnet", "--resolution=64", "--attention=64", *FOLDER], r"\(8, 16, 32\)"),
    (["--network=r3gan", "--data_source=mnist"], "from 8 to 256"),
])
def test_launcher_rejects_what_the_families_cannot_build(args, message):
    from launch import config

    with pytest.raises(ValueError, match=message):
        config.validate(parsed(*args))
