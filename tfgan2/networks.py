"""Generator and discriminator builders for the seed systems.

Generators map a latent vector ``z`` to data in [-1, 1] (tanh output, or a
linear output for unbounded vector data); discriminators return raw logits of
shape ``(B, 1)`` with no sigmoid, since every loss in `tfgan2.losses` works on
logits.

* ``dcgan_*`` -- the CelebA DCGAN of the Keras lecture notes: encoder blocks
  Conv-BN-Conv(stride 2)-BN-LeakyReLU(0.3) and global average pooling in D; a
  4x4 dense projection and Conv2DTranspose decoder blocks with tanh output in G.
  ``capacity`` is NET_CAPACITY, ``filter_size`` FILTER_SIZE.
* ``mlp_*`` -- the CS231N fully connected MNIST GAN.
* ``infogan_generator`` / ``conv_discriminator`` -- the CS231N InfoGAN-style
  generator and DCGAN-style discriminator for 28x28 images.
* ``gaussian_*`` -- the 1-D Gaussian toy GAN (200-dimensional vectors).
* ``resnet_*`` -- the SNGAN / SAGAN / BigGAN residual networks
  (`tfgan2.resnet_networks`).
* ``r3gan_*`` -- R3GAN's normalization-free residual networks
  (`tfgan2.r3gan_networks`).

Conditional variants (dcgan and mlp families). With ``num_classes=K`` a
generator takes ``[z, c]`` (``c``: the ``(B, K)`` condition vector of
`tfgan2.GAN.condition`) and ``conditioning`` chooses how ``c`` enters:
``"embedding"`` concatenates a learned embedding ``c E`` to ``z``; ``"cbn"``
replaces G's batch norms by `ConditionalBatchNormalization` (the mlp
generator gains batch norms after its hidden layers for it). A
discriminator with ``num_classes=K`` is either a projection discriminator
(``conditioning="projection"``: takes ``[x, c]``, Miyato & Koyama 2018) or an
auxiliary classifier (``"acgan"``: takes ``x``, returns ``{"logits",
"class_logits"}``, Odena et al. 2017). ``q_dim > 0`` adds InfoGAN's Q head
(``"q"``, Chen et al. 2016) on D's features. Discriminators with extra heads
return a dict; the others return their logits as before.
"""
import math

import keras
from keras import layers

from tfgan2.layers import Conv2D, Conv2DTranspose, MinibatchStdDev
from tfgan2.network_blocks import (D_CONDITIONINGS, G_CONDITIONINGS, NORMALIZATIONS, batch_norm,
                                   check_channels, check_normalization, check_pack, conv_block,
                                   discriminator_outputs, generator_inputs, generator_norm,
                                   norm_layer, num_doublings, scoped)

__all__ = [
    "dcgan_generator", "dcgan_discriminator", "mlp_generator", "mlp_discriminator",
    "infogan_generator", "conv_discriminator", "gaussian_generator",
    "gaussian_discriminator", "resnet_generator", "resnet_discriminator", "r3gan_generator",
    "r3gan_discriminator", "NORMALIZATIONS", "G_CONDITIONINGS", "D_CONDITIONINGS",
]

@scoped
def dcgan_discriminator(resolution=64, channels=3, capacity=16, filter_size=5,
                        normalization="batch", sync_batchnorm=False, num_classes=None,
                        conditioning="projection", q_dim=0, pack=1, minibatch_std=0,
                        name="dcgan_discriminator"):
    """DCGAN discriminator: ``log2(resolution) - 2`` encoder blocks, then GAP and a logit.

    Block ``i`` (filters ``capacity * min(2**i, 8)``) is
    Conv(stride 1)-Norm-Conv(stride 2)-Norm-LeakyReLU(0.3); at 64x64 the filters
    are ``capacity * (1, 2, 4, 8)`` as in the notes. ``normalization`` is
    ``"batch"`` (the notes), ``"none"``, or ``"spectral"`` (Miyato et al. 2018,
    no batch statistics; `tfgan2.layers.SpectralNormalization`). ``sync_batchnorm``
    computes batch statistics over the global batch of all replicas instead of
    each replica's share. ``pack``: the input holds that many images
    concatenated along channels (``GAN(..., pack=pack)``). ``minibatch_std``:
    the group size of a `tfgan2.layers.MinibatchStdDev` feature map added
    before the last block (Karras et al. 2018; 0: none). The logit is
    float32 under any mixed-precision policy.
    """
    check_channels(channels)
    check_normalization(normalization)
    blocks = num_doublings(resolution)
    if int(minibatch_std) != minibatch_std or minibatch_std < 0 or minibatch_std == 1:
        raise ValueError(f"minibatch_std must be 0 (off) or a group size >= 2, "
                         f"got {minibatch_std!r}.")
    inputs = keras.Input((resolution, resolution, channels * check_pack(pack)), name="image")
    x = inputs
    for i in range(blocks):
        if minibatch_std and i == blocks - 1:
            x = MinibatchStdDev(int(minibatch_std), name="minibatch_std")(x)
        filters = capacity * min(2 ** i, 8)
        for j, strides in enumerate((1, 2)):
            x = conv_block(filters, filter_size, strides, normalization, f"block{i}_conv{j}")(x)
            norm = norm_layer(normalization, f"block{i}_bn{j}", sync_batchnorm)
            if norm is not None:
                x = norm(x)
        x = layers.LeakyReLU(0.3, name=f"block{i}_lrelu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    inputs, outputs = discriminator_outputs(inputs, x, num_classes, conditioning, q_dim,
                                             spectral=normalization == "spectral")
    return keras.Model(inputs, outputs, name=name)


@scoped
def dcgan_generator(latent_dim=100, resolution=64, channels=3, capacity=16,
                    filter_size=5, sync_batchnorm=False, num_classes=None,
                    conditioning="embedding", embed_dim=32, name="dcgan_generator"):
    """DCGAN generator: Dense to 4x4x(8*capacity), BN, then one decoder block per doubling.

    Decoder block ``i`` is Conv2DTranspose(stride 2)-BN-LeakyReLU(0.3) with
    ``capacity * max(4 // 2**i, 1)`` filters (``capacity * (4, 2, 1, 1)`` at
    64x64, as in the notes), then a ``filter_size`` convolution to ``channels``
    with tanh (float32 under any mixed-precision policy). ``sync_batchnorm``:
    batch statistics over the global batch of all replicas. ``num_classes``,
    ``conditioning``, ``embed_dim``: see the module docstring.
    """
    check_channels(channels)
    blocks = num_doublings(resolution)
    inputs, x, label = generator_inputs(latent_dim, num_classes, conditioning, embed_dim)
    x = layers.Dense(4 * 4 * capacity * 8, name="project")(x)
    x = generator_norm(x, label, conditioning, "project_bn", sync_batchnorm)
    x = layers.Reshape((4, 4, capacity * 8), name="reshape")(x)
    for i in range(blocks):
        filters = capacity * max(4 // 2 ** i, 1)
        x = Conv2DTranspose(filters, filter_size, strides=2, padding="same",
                                   name=f"block{i}_deconv")(x)
        x = generator_norm(x, label, conditioning, f"block{i}_bn", sync_batchnorm)
        x = layers.LeakyReLU(0.3, name=f"block{i}_lrelu")(x)
    outputs = Conv2D(channels, filter_size, padding="same", activation="tanh",
                     dtype="float32", name="image")(x)
    return keras.Model(inputs, outputs, name=name)


@scoped
def mlp_generator(latent_dim=96, image_shape=(28, 28, 1), hidden=1024, num_classes=None,
                  conditioning="embedding", embed_dim=32, name="mlp_generator"):
    """CS231N vanilla generator: Dense(1024)-ReLU-Dense(1024)-ReLU-Dense(H*W*C)-tanh.

    Conditional (``num_classes``): ``"embedding"`` feeds ``[z, c E]`` to the
    same layers; ``"cbn"`` makes each hidden layer Dense-CBN(c)-ReLU.
    """
    inputs, x, label = generator_inputs(latent_dim, num_classes, conditioning, embed_dim)
    for i in (1, 2):
        if label is not None and conditioning == "cbn":
            x = layers.Dense(hidden, name=f"fc{i}")(x)
            x = generator_norm(x, label, conditioning, f"bn{i}")
            x = layers.ReLU(name=f"relu{i}")(x)
        else:
            x = layers.Dense(hidden, activation="relu", name=f"fc{i}")(x)
    x = layers.Dense(math.prod(image_shape), activation="tanh", dtype="float32",
                     name="fc3")(x)
    outputs = layers.Reshape(tuple(image_shape), dtype="float32", name="image")(x)
    return keras.Model(inputs, outputs, name=name)


@scoped
def mlp_discriminator(image_shape=(28, 28, 1), hidden=256, num_classes=None,
                      conditioning="projection", q_dim=0, pack=1, name="mlp_discriminator"):
    """CS231N vanilla discriminator: Flatten-Dense(256)-LReLU(0.01)-Dense(256)-LReLU(0.01)-Dense(1).

    ``num_classes``, ``conditioning``, ``q_dim``: heads on the second hidden
    layer's features (see the module docstring). ``pack``: inputs hold that
    many samples along the last axis.
    """
    shape = tuple(image_shape)
    inputs = keras.Input(shape[:-1] + (shape[-1] * check_pack(pack),), name="image")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(hidden, name="fc1")(x)
    x = layers.LeakyReLU(0.01, name="lrelu1")(x)
    x = layers.Dense(hidden, name="fc2")(x)
    x = layers.LeakyReLU(0.01, name="lrelu2")(x)
    inputs, outputs = discriminator_outputs(inputs, x, num_classes, conditioning, q_dim)
    return keras.Model(inputs, outputs, name=name)


@scoped
def infogan_generator(latent_dim=96, channels=1, name="infogan_generator"):
    """CS231N InfoGAN-style generator for 28x28 images.

    Dense(1024)-ReLU-BN, Dense(7*7*128)-ReLU-BN, reshape to 7x7x128,
    Conv2DTranspose(64, 4, stride 2)-ReLU-BN, Conv2DTranspose(channels, 4,
    stride 2)-tanh.
    """
    inputs = keras.Input((latent_dim,), name="z")
    x = layers.Dense(1024, activation="relu", name="fc1")(inputs)
    x = batch_norm("bn1")(x)
    x = layers.Dense(7 * 7 * 128, activation="relu", name="fc2")(x)
    x = batch_norm("bn2")(x)
    x = layers.Reshape((7, 7, 128), name="reshape")(x)
    x = Conv2DTranspose(64, 4, strides=2, padding="same", activation="relu",
                               name="deconv1")(x)
    x = batch_norm("bn3")(x)
    outputs = Conv2DTranspose(channels, 4, strides=2, padding="same",
                                     activation="tanh", dtype="float32", name="image")(x)
    return keras.Model(inputs, outputs, name=name)


@scoped
def conv_discriminator(channels=1, name="conv_discriminator"):
    """CS231N DCGAN-style discriminator for 28x28 images.

    Conv(32, 5)-LReLU(0.01)-MaxPool(2), Conv(64, 5)-LReLU(0.01)-MaxPool(2),
    Flatten, Dense(4*4*64)-LReLU(0.01), Dense(1).
    """
    inputs = keras.Input((28, 28, channels), name="image")
    x = Conv2D(32, 5, name="conv1")(inputs)
    x = layers.LeakyReLU(0.01, name="lrelu1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = Conv2D(64, 5, name="conv2")(x)
    x = layers.LeakyReLU(0.01, name="lrelu2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4 * 4 * 64, name="fc1")(x)
    x = layers.LeakyReLU(0.01, name="lrelu3")(x)
    outputs = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs, outputs, name=name)


@scoped
def gaussian_generator(latent_dim=200, dim=200, hidden=256, name="gaussian_generator"):
    """Gaussian toy generator: Dense(256)-ReLU-Dense(dim), linear output.

    The notes end the generator with a sigmoid, which cannot produce a normal
    distribution with values outside (0, 1); the output here is linear so any
    mean and standard deviation can be matched.
    """
    inputs = keras.Input((latent_dim,), name="z")
    x = layers.Dense(hidden, activation="relu", name="fc1")(inputs)
    outputs = layers.Dense(dim, dtype="float32", name="sample")(x)
    return keras.Model(inputs, outputs, name=name)


@scoped
def gaussian_discriminator(dim=200, hidden=256, pack=1, name="gaussian_discriminator"):
    """Gaussian toy discriminator: Dense(256)-ReLU-Dense(1) logit (``pack`` samples per input)."""
    inputs = keras.Input((dim * check_pack(pack),), name="sample")
    x = layers.Dense(hidden, activation="relu", name="fc1")(inputs)
    outputs = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs, outputs, name=name)


# The residual families have modules of their own.
from tfgan2.r3gan_networks import r3gan_discriminator, r3gan_generator  # noqa: E402
from tfgan2.resnet_networks import resnet_discriminator, resnet_generator  # noqa: E402
