"""The network families the launchers know, one registry entry each.

A `NetworkFamily` builds ``(generator, discriminator)`` from the flags, the
data shape and the conditioning the run asks for, and says which data it
fits. Adding a family is one `register` call; `launch.config` reads the flag
choices from `names()`. Importing this module is cheap (no TensorFlow).
"""

from launch.registry import Registry

__all__ = ["NetworkFamily", "Conditioning", "register", "get", "names", "FAMILIES"]


class Conditioning:
    """What the networks of a run are conditioned on.

    ``num_classes``: classes or binary attributes of the labels (None:
    unconditional); ``generator``: ``"embedding"`` or ``"cbn"``;
    ``discriminator``: ``"projection"`` or ``"acgan"``; ``q_dim``: size of
    InfoGAN's Q head (0: none); ``code_dim``: InfoGAN code inputs added to G.
    """

    def __init__(self, num_classes=None, generator="embedding", discriminator="projection",
                 q_dim=0, code_dim=0):
        self.num_classes = num_classes
        self.generator = generator
        self.discriminator = discriminator
        self.q_dim = int(q_dim)
        self.code_dim = int(code_dim)

    def g_kwargs(self):
        if self.num_classes is None:
            return {}
        return dict(num_classes=self.num_classes, conditioning=self.generator)

    def d_kwargs(self):
        kwargs = dict(q_dim=self.q_dim) if self.q_dim else {}
        if self.num_classes is not None:
            kwargs.update(num_classes=self.num_classes, conditioning=self.discriminator)
        return kwargs

    @property
    def any(self):
        return self.num_classes is not None or self.q_dim > 0


class NetworkFamily:
    """One ``--network`` choice.

    Attributes:
      name: the flag value.
      description: one line for ``--help``.
      build: ``build(fv, shape, conditioning) -> (generator, discriminator)``.
      check: ``check(shape) -> None``; raises ValueError when the family cannot
        model data of that shape (the message names what it needs).
      vector: the family models vectors (not images).
      conditional: the family has conditional and InfoGAN variants.
    """

    def __init__(self, name, description, build, check, *, vector=False, conditional=False):
        self.name = name
        self.description = description
        self.build = build
        self.check = check
        self.vector = vector
        self.conditional = conditional


_REGISTRY = Registry("network family", "network")
FAMILIES = _REGISTRY.entries
register, names, get = _REGISTRY.register, _REGISTRY.names, _REGISTRY.get


def _widths(fv):
    g = dict(hidden=fv.g_hidden) if fv.g_hidden else {}
    d = dict(hidden=fv.d_hidden) if fv.d_hidden else {}
    return g, d


def _check_square_power_of_two(shape):
    if len(shape) != 3 or shape[0] != shape[1] or shape[0] < 8 or shape[0] & (shape[0] - 1):
        raise ValueError(f"--network=dcgan needs square images whose side is a power of two "
                         f">= 8; the data's shape is {shape} (MNIST's 28x28: use --network=mlp "
                         f"or infogan).")


def _dcgan(fv, shape, cond):
    import tfgan2

    res, channels = shape[0], shape[-1]
    nets = tfgan2.networks
    return (nets.dcgan_generator(latent_dim=fv.latent_dim + cond.code_dim, resolution=res,
                                 channels=channels, capacity=fv.capacity,
                                 filter_size=fv.filter_size, sync_batchnorm=fv.sync_batchnorm,
                                 **cond.g_kwargs()),
            nets.dcgan_discriminator(resolution=res, channels=channels, capacity=fv.capacity,
                                     filter_size=fv.filter_size,
                                     normalization=fv.d_normalization,
                                     sync_batchnorm=fv.sync_batchnorm, pack=fv.pack,
                                     minibatch_std=fv.minibatch_std, **cond.d_kwargs()))


def _check_images(shape):
    if len(shape) != 3:
        raise ValueError(f"--network=mlp models images; the data's shape is {shape}.")


def _mlp(fv, shape, cond):
    import tfgan2

    g, d = _widths(fv)
    return (tfgan2.networks.mlp_generator(latent_dim=fv.latent_dim + cond.code_dim,
                                          image_shape=shape, **g, **cond.g_kwargs()),
            tfgan2.networks.mlp_discriminator(image_shape=shape, pack=fv.pack, **d,
                                              **cond.d_kwargs()))


def _check_28(shape):
    if tuple(shape[:2]) != (28, 28):
        raise ValueError(f"--network=infogan builds 28x28 images; the data's shape is {shape} "
                         f"(use --network=dcgan or mlp).")


def _infogan(fv, shape, cond):
    import tfgan2

    if fv.pack > 1:
        raise ValueError(f"--pack={fv.pack} needs --network=dcgan, mlp or gaussian.")
    return (tfgan2.networks.infogan_generator(latent_dim=fv.latent_dim, channels=shape[-1]),
            tfgan2.networks.conv_discriminator(channels=shape[-1]))


def _check_vectors(shape):
    if len(shape) != 1:
        raise ValueError(f"--network=gaussian models vectors; the data's shape is {shape}.")


def _gaussian(fv, shape, cond):
    import tfgan2

    g, d = _widths(fv)
    return (tfgan2.networks.gaussian_generator(latent_dim=fv.latent_dim, dim=shape[0], **g),
            tfgan2.networks.gaussian_discriminator(dim=shape[0], pack=fv.pack, **d))


# The sides the residual families build (tfgan2.resnet_networks / r3gan_networks.RESOLUTIONS).
RESIDUAL_RESOLUTIONS = (8, 16, 32, 64, 128, 256)


def _residual_check(name):
    def check(shape):
        if (len(shape) != 3 or shape[0] != shape[1]
                or shape[0] not in RESIDUAL_RESOLUTIONS):
            raise ValueError(f"--network={name} needs square images whose side is a power of "
                             f"two from 8 to 256; the data's shape is {shape} (set "
                             f"--resolution).")
    return check


def _resnet(fv, shape, cond):
    """SNGAN/SAGAN/BigGAN residual networks: widths ``--g_hidden`` / ``--d_hidden`` (the
    papers' ch, default 64), ``--attention``, ``--g_spectral_norm``."""
    import tfgan2

    res, channels = shape[0], shape[-1]
    labels = {} if cond.num_classes is None else dict(num_classes=cond.num_classes)
    nets = tfgan2.networks
    return (nets.resnet_generator(latent_dim=fv.latent_dim + cond.code_dim, resolution=res,
                                  channels=channels, width=fv.g_hidden or 64,
                                  attention=fv.attention, spectral_norm=fv.g_spectral_norm,
                                  sync_batchnorm=fv.sync_batchnorm, **labels),
            nets.resnet_discriminator(resolution=res, channels=channels,
                                      width=fv.d_hidden or 64, attention=fv.attention,
                                      pack=fv.pack, **cond.d_kwargs()))


def _r3gan(fv, shape, cond):
    """R3GAN's networks: stage widths ``--g_hidden`` / ``--d_hidden`` (default 768, R3GAN's
    CIFAR-10 width), two blocks per stage."""
    import tfgan2

    res, channels = shape[0], shape[-1]
    labels = {} if cond.num_classes is None else dict(num_classes=cond.num_classes)
    nets = tfgan2.networks
    return (nets.r3gan_generator(latent_dim=fv.latent_dim + cond.code_dim, resolution=res,
                                 channels=channels, width=fv.g_hidden or 768, **labels),
            nets.r3gan_discriminator(resolution=res, channels=channels,
                                     width=fv.d_hidden or 768, pack=fv.pack,
                                     **cond.d_kwargs()))


register(NetworkFamily("dcgan", "the CelebA DCGAN of the Keras notes (conv, batch norm)",
                       _dcgan, _check_square_power_of_two, conditional=True))
register(NetworkFamily("mlp", "the CS231N fully connected GAN", _mlp, _check_images,
                       conditional=True))
register(NetworkFamily("infogan", "the CS231N InfoGAN-style generator and conv "
                       "discriminator for 28x28 images", _infogan, _check_28))
register(NetworkFamily("gaussian", "the 1-D Gaussian toy MLPs", _gaussian, _check_vectors,
                       vector=True))
register(NetworkFamily("resnet", "the SNGAN/SAGAN residual networks (spectral norm in D, "
                       "optional self-attention; BigGAN conditioning)", _resnet,
                       _residual_check("resnet"), conditional=True))
register(NetworkFamily("r3gan", "R3GAN's normalization-free residual networks (grouped "
                       "inverted bottlenecks, fix-up init)", _r3gan, _residual_check("r3gan"),
                       conditional=True))
