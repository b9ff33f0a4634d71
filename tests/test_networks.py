"""Output shapes and ranges of the seed networks; invalid configurations fail clearly."""
import numpy as np
import pytest

from tfgan2 import networks


@pytest.mark.parametrize("resolution,channels", [(8, 1), (16, 3), (64, 3)])
def test_dcgan_shapes_and_range(resolution, channels):
    g = networks.dcgan_generator(latent_dim=10, resolution=resolution, channels=channels,
                                 capacity=4, filter_size=3)
    d = networks.dcgan_discriminator(resolution=resolution, channels=channels, capacity=4,
                                     filter_size=3)
    z = np.random.default_rng(0).normal(size=(3, 10)).astype("float32") * 10
    x = g(z, training=False).numpy()
    assert x.shape == (3, resolution, resolution, channels)
    assert x.min() >= -1.0 and x.max() <= 1.0
    logits = d(x, training=False).numpy()
    assert logits.shape == (3, 1)
    # Raw logits: not squashed into (0, 1).
    big = d(np.full((2, resolution, resolution, channels), 50.0, "float32")).numpy()
    assert big.shape == (2, 1)


def test_dcgan_64_follows_the_notes_block_widths():
    g = networks.dcgan_generator(resolution=64, capacity=16, filter_size=5)
    d = networks.dcgan_discriminator(resolution=64, capacity=16, filter_size=5)
    deconvs = [l.filters for l in g.layers if l.name.endswith("_deconv")]
    assert deconvs == [64, 32, 16, 16]
    assert g.get_layer("project").units == 4 * 4 * 128
    d_filters = [l.filters for l in d.layers if l.name.endswith("_conv1")]
    assert d_filters == [16, 32, 64, 128]
    assert g.get_layer("image").kernel_size == (5, 5)
    assert d.get_layer("block0_conv0").kernel_size == (5, 5)


@pytest.mark.parametrize("normalization", ["none", "spectral"])
def test_dcgan_discriminator_without_batch_statistics(normalization):
    d = networks.dcgan_discriminator(resolution=8, channels=1, capacity=4,
                                     normalization=normalization)
    assert not any("bn" in l.name for l in d.layers)
    x = np.random.default_rng(1).uniform(-1, 1, (4, 8, 8, 1)).astype("float32")
    # No batch statistics: each example's logit is independent of the others.
    # (training=False: spectral normalization's power iteration updates on every
    # training call.)
    np.testing.assert_allclose(d(x, training=False).numpy()[:1], d(x[:1], training=False).numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", [0, 12, 4, 100, "64"])
def test_dcgan_rejects_bad_resolution(bad):
    with pytest.raises(ValueError, match="power of two"):
        networks.dcgan_generator(resolution=bad)
    with pytest.raises(ValueError, match="power of two"):
        networks.dcgan_discriminator(resolution=bad)


def test_dcgan_rejects_bad_channels_and_normalization():
    with pytest.raises(ValueError, match="channels"):
        networks.dcgan_generator(resolution=8, channels=2)
    with pytest.raises(ValueError, match="batch, none, spectral"):
        networks.dcgan_discriminator(resolution=8, normalization="layer")


def test_cs231n_networks():
    z = np.random.default_rng(2).uniform(-1, 1, (2, 96)).astype("float32")
    for g, d in [(networks.mlp_generator(), networks.mlp_discriminator()),
                 (networks.infogan_generator(), networks.conv_discriminator())]:
        x = g(z, training=False).numpy()
        assert x.shape == (2, 28, 28, 1)
        assert np.abs(x).max() <= 1.0
        assert d(x).shape == (2, 1)
    mlp = networks.mlp_generator()
    assert [l.units for l in mlp.layers if hasattr(l, "units")] == [1024, 1024, 784]
    flat = [l.units for l in networks.mlp_discriminator().layers if hasattr(l, "units")]
    assert flat == [256, 256, 1]


def test_gaussian_networks_are_unbounded():
    g = networks.gaussian_generator()
    d = networks.gaussian_discriminator()
    z = np.random.default_rng(3).uniform(-1, 1, (4, 200)).astype("float32")
    x = g(z).numpy()
    assert x.shape == (4, 200)
    assert d(x).shape == (4, 1)
    # Linear output: scaling the last layer's weights scales the samples past (0, 1).
    kernel, bias = g.get_layer("sample").get_weights()
    g.get_layer("sample").set_weights([kernel * 100, bias + 5])
    assert np.abs(g(z).numpy()).max() > 1.5
