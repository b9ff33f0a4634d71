"""Shared test set-up: quiet TensorFlow, two logical CPU devices, small thread pools."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Launcher runs in the tests use float32 instead of measuring a precision at every start
# (tests/test_precision_choice.py passes --precision=auto where it tests the measurement).
os.environ["TFGAN2_PRECISION"] = "float32"
# Likewise the convolution gradients (tests/test_conv_gradient_choice.py tests auto).
os.environ["TFGAN2_CONV_GRADIENTS"] = "native"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPUs let MirroredStrategy tests run without GPUs; this must
# happen before TensorFlow initializes its devices.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


@pytest.fixture
def subprocess_env():
    """Environment for running the launchers in a subprocess from the project root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


@pytest.fixture
def deterministic():
    """Op determinism for one test: equal inputs give bit-identical results."""
    from tensorflow.python.framework import config as tf_config

    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        tf_config.disable_op_determinism()


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Every new MirroredStrategy restarts its collective instance keys, which then
    clash in the runtime's cache with those of earlier strategies over the same
    devices.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


# ------------------------------------------------------------------ tiny GANs and data
@pytest.fixture
def tiny_gan():
    """``tiny_gan(kind="mlp", ...)`` builds a small `tfgan2.GAN` (not compiled).

    ``keras.utils.set_random_seed(init_seed)`` (``init_seed`` defaults to ``seed``), then
    the generator, then the discriminator, so equal arguments give equal initial weights:

    - ``"mlp"``: ``networks.mlp_generator`` / ``mlp_discriminator`` on
      ``(size, size, channels)`` images with ``hidden`` units (no batch statistics);
    - ``"dcgan"``: ``networks.dcgan_generator`` / ``dcgan_discriminator`` at resolution
      ``size`` with ``capacity`` and ``filter_size``;
    - ``"gaussian"``: ``networks.gaussian_generator`` / ``gaussian_discriminator`` on
      ``dim``-vectors with ``hidden`` units (unconditional only).

    ``num_classes``, ``g_conditioning``, ``d_conditioning``, ``embed_dim`` make the networks
    and the GAN conditional; ``pack`` goes to the discriminator and the GAN.
    ``discriminator`` replaces the built one: a ``keras.Model`` used as it is, or a function
    of no arguments called in its place (after the generator, so its weights come from the
    seed too). ``seed`` is the GAN's noise seed (``None``: the GAN draws one);
    ``gan_kwargs`` go to ``tfgan2.GAN`` (``ema_decay=``, ``augment=``, ``multilabel=``, ...).
    """
    import tfgan2  # imported when first used, as the test modules do
    from tfgan2 import networks

    def build(kind="mlp", *, latent_dim=6, size=4, channels=1, hidden=16, dim=10, capacity=2,
              filter_size=3, num_classes=None, g_conditioning="embedding",
              d_conditioning="projection", embed_dim=32, pack=1, seed=0, init_seed=None,
              discriminator=None, **gan_kwargs):
        if init_seed is None and seed is None:
            raise ValueError("tiny_gan needs init_seed when seed is None.")
        keras.utils.set_random_seed(seed if init_seed is None else init_seed)
        conditional = dict(num_classes=num_classes)
        if kind == "mlp":
            image_shape = (size, size, channels)
            g = networks.mlp_generator(latent_dim=latent_dim, image_shape=image_shape,
                                       hidden=hidden, conditioning=g_conditioning,
                                       embed_dim=embed_dim, **conditional)
            make_d = lambda: networks.mlp_discriminator(  # noqa: E731
                image_shape=image_shape, hidden=hidden, conditioning=d_conditioning,
                pack=pack, **conditional)
        elif kind == "dcgan":
            g = networks.dcgan_generator(latent_dim=latent_dim, resolution=size,
                                         channels=channels, capacity=capacity,
                                         filter_size=filter_size, conditioning=g_conditioning,
                                         embed_dim=embed_dim, **conditional)
            make_d = lambda: networks.dcgan_discriminator(  # noqa: E731
                resolution=size, channels=channels, capacity=capacity,
                filter_size=filter_size, conditioning=d_conditioning, pack=pack,
                **conditional)
        elif kind == "gaussian":
            if num_classes:
                raise ValueError("tiny_gan('gaussian') is unconditional.")
            g = networks.gaussian_generator(latent_dim=latent_dim, dim=dim, hidden=hidden)
            make_d = lambda: networks.gaussian_discriminator(  # noqa: E731
                dim=dim, hidden=hidden, pack=pack)
        else:
            raise ValueError(f"kind must be 'mlp', 'dcgan' or 'gaussian', got {kind!r}.")
        if discriminator is None:
            d = make_d()
        elif isinstance(discriminator, keras.Model):
            d = discriminator
        else:
            d = discriminator()
        return tfgan2.GAN(g, d, latent_dim=latent_dim, seed=seed, num_classes=num_classes,
                          pack=pack, **gan_kwargs)

    return build


@pytest.fixture
def adam():
    """``adam(lr=1e-3, beta_1=0.5)``: a fresh ``keras.optimizers.Adam``."""

    def make(lr=1e-3, beta_1=0.5):
        return keras.optimizers.Adam(lr, beta_1=beta_1)

    return make


@pytest.fixture
def compiled(adam):
    """``compiled(gan, lr=1e-3, *, d_lr=None, g_lr=None, optimizer="adam", beta_1=0.5,
    **compile_kwargs)`` compiles ``gan`` and returns it.

    Two fresh optimizers: ``Adam(rate, beta_1=beta_1)`` or, with ``optimizer="sgd"``,
    ``SGD(rate)``; the rate is ``d_lr`` / ``g_lr`` for D / G where given, else ``lr``.
    ``compile_kwargs`` go to ``GAN.compile`` (``loss=``, ``r1_gamma=``, ...).
    """

    def compile_(gan, lr=1e-3, *, d_lr=None, g_lr=None, optimizer="adam", beta_1=0.5,
                 **compile_kwargs):
        def make(rate):
            if optimizer == "adam":
                return adam(rate, beta_1=beta_1)
            if optimizer == "sgd":
                return keras.optimizers.SGD(rate)
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}.")

        gan.compile(d_optimizer=make(lr if d_lr is None else d_lr),
                    g_optimizer=make(lr if g_lr is None else g_lr), **compile_kwargs)
        return gan

    return compile_


@pytest.fixture
def images():
    """``images(n=16, size=4, channels=1, seed=0)``: ``(n, size, size, channels)`` float32
    drawn uniformly from [-1, 1] by ``np.random.default_rng(seed)``."""

    def make(n=16, size=4, channels=1, seed=0):
        shape = (n, size, size, channels)
        return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")

    return make


@pytest.fixture
def batches():
    """``batches(x, batch=8, repeat=True)``: a ``tf.data.Dataset`` of ``x`` (an array or a
    tuple such as ``(images, labels)``) in batches of ``batch``, the last partial batch
    dropped, repeated forever unless ``repeat=False``."""

    def make(x, batch=8, repeat=True):
        ds = tf.data.Dataset.from_tensor_slices(x).batch(batch, drop_remainder=True)
        return ds.repeat() if repeat else ds

    return make


@pytest.fixture
def policy():
    """``policy(name)`` sets the global Keras precision policy; float32 again afterwards."""
    import keras

    def set_policy(name):
        keras.mixed_precision.set_global_policy(name)

    yield set_policy
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def png_folder():
    """``png_folder(path, count=24, size=8)``: ``count`` grey PNG digits (scikit-learn's)
    written to the new folder ``path``, which it returns."""
    def write(path, count=24, size=8):
        import numpy as np
        from PIL import Image
        from sklearn.datasets import load_digits

        path.mkdir(parents=True)
        for i, digit in enumerate(load_digits().images[:count]):
            pixels = (digit / 16 * 255).astype(np.uint8)
            Image.fromarray(pixels).resize((size, size), Image.NEAREST).save(
                path / f"{i:03d}.png")
        return path

    return write
