"""The SNGAN / SAGAN / BigGAN residual generator and discriminator (the ``resnet`` family).

The ResNet architectures of Miyato et al. 2018 ("Spectral normalization for
generative adversarial networks", arXiv:1802.05957, appendix B: tables 4-6)
as the reference implementations build them (pfnet-research/sngan_projection;
Mimicry's ``torch_mimicry/nets/sngan``), with SAGAN's self-attention (Zhang et
al. 2019) at a chosen resolution and, when conditional, BigGAN's generator
conditioning (Brock et al. 2019, arXiv:1809.11096) and the projection
discriminator (Miyato & Koyama 2018, arXiv:1802.05637).

Generator (``resnet_generator``)::

    z -> Dense(4 * 4 * C0) -> reshape (4, 4, C0)
      -> GBlock x n    (n = log2(resolution) - 2, each doubling the resolution)
      -> BN -> ReLU -> Conv3x3(channels) -> tanh

    GBlock(x):  h = Conv3x3(ReLU(BN(Conv3x3(up(ReLU(BN(x)))))))     (up: nearest, x2, as
                return h + up(Conv1x1(x))                          SNGAN and BigGAN;
                                                                   Mimicry: bilinear)

Discriminator (``resnet_discriminator``)::

    x -> OptimizedBlock -> DBlock x (m - 1) -> ReLU -> global sum pool -> SN-Dense(1)

    OptimizedBlock(x):  h = pool(Conv3x3(ReLU(Conv3x3(x))));  return h + Conv1x1(pool(x))
    DBlock(x):          h = Conv3x3(ReLU(Conv3x3(ReLU(x))))  [-> pool];
                        return h + [pool ->] Conv1x1(x)  (identity when the shape is kept)

(pool: 2x2 average pooling; a 1x1 convolution commutes with the nearest
upsampling and the average pooling, so the shortcuts resample where it is
cheaper: the same function and variables as the papers' order.) Every
convolution and dense layer of D is spectrally normalized
(`tfgan2.layers.SpectralNormalization`), G's only with ``spectral_norm=True``
(SAGAN, BigGAN). Residual convolutions start Glorot-uniform with gain sqrt(2),
the others with gain 1 (as the reference code).

Widths are multiples of ``width`` (the papers' ``ch``), per resolution:

========== ================================ ========================================
resolution G: C0, block outputs             D: block outputs (downsampling blocks)
========== ================================ ========================================
8, 16, 32  4; 4 per block                   2 per block; down to 8x8 (at least
                                            once), then two blocks at that size
64         16; 8, 4, 2, 1                   1, 2, 4, 8, 16 (all)
128        16; 16, 8, 4, 2, 1               1, 2, 4, 8, 16 (these), 16
256        16; 16, 8, 8, 4, 2, 1            1, 2, 4, 8, 8, 16 (these), 16
========== ================================ ========================================

So ``width=64`` at 32x32 is SNGAN's CIFAR-10 ResNet (G 256 channels, D 128:
4,276,739 and 1,053,825 trainable parameters, the sums of the parameter
shapes of Mimicry's ``ResNetGenerator32`` / ``ResNetDiscriminator32``, whose
spectral-norm vectors are buffers), at 64 and 128 Mimicry's SNGAN-64 / -128
(ngf = ndf = 1024), at 256 BigGAN's 256x256 layout.

Conditional (``num_classes=K``): G takes ``[z, c]``; a shared embedding
``e = c E`` (``embed_dim``, BigGAN's 128) and the latent split into ``n + 1``
chunks ``z_0 .. z_n`` (the hierarchical latent): ``z_0`` feeds the dense
layer, block ``i`` conditions both its batch norms on ``[e, z_(i+1)]``
(`tfgan2.conditioning.ConditionalBatchNormalization`); the last batch norm is
unconditional. D adds the projection term ``<(c V), h>`` (``V``
spectrally normalized, as SNGAN's SNEmbedID) to its logit, or carries an
ACGAN / InfoGAN head (`tfgan2.networks`, module docstring).
"""
import keras
import tensorflow as tf
from keras import layers

from tfgan2.attention import SelfAttention2D
from tfgan2.conditioning import ConditionalBatchNormalization
from tfgan2.layers import Conv2D, SpectralNormalization
from tfgan2.networks import (D_CONDITIONINGS, _batch_norm, _check_channels, _check_choice,
                             _check_num_classes, _check_pack, _discriminator_outputs, _scoped)

__all__ = ["resnet_generator", "resnet_discriminator", "LatentChunks", "RESOLUTIONS"]

RESOLUTIONS = (8, 16, 32, 64, 128, 256)
# resolution -> (first width, block output widths), as multiples of ``width``.
_G_WIDTHS = {8: (4, (4,)), 16: (4, (4, 4)), 32: (4, (4, 4, 4)),
             64: (16, (8, 4, 2, 1)), 128: (16, (16, 8, 4, 2, 1)),
             256: (16, (16, 8, 8, 4, 2, 1))}
# resolution -> (block output widths, which blocks halve the resolution).
_D_WIDTHS = {8: ((2, 2, 2), (True, False, False)),
             16: ((2, 2, 2), (True, False, False)),
             32: ((2, 2, 2, 2), (True, True, False, False)),
             64: ((1, 2, 4, 8, 16), (True,) * 5),
             128: ((1, 2, 4, 8, 16, 16), (True,) * 5 + (False,)),
             256: ((1, 2, 4, 8, 8, 16, 16), (True,) * 6 + (False,))}


def _check_resolution(resolution):
    if resolution not in RESOLUTIONS or not isinstance(resolution, int):
        raise ValueError(f"resolution must be a power of two from 8 to 256 "
                         f"({', '.join(map(str, RESOLUTIONS))}), got {resolution!r}.")


def _check_width(width):
    if int(width) != width or width < 1:
        raise ValueError(f"width must be an integer >= 1 (the papers' ch), got {width!r}.")
    return int(width)


def _check_attention(attention, sizes, network):
    """``attention``: 0 (none) or one of the feature-map sizes ``sizes`` of the network."""
    if attention in (0, None):
        return 0
    if attention not in sizes:
        raise ValueError(f"attention must be 0 (none) or the side of one of the {network}'s "
                         f"feature maps ({', '.join(map(str, sorted(set(sizes))))}), got "
                         f"{attention!r}.")
    return int(attention)


def _residual_init():
    """Glorot-uniform with gain sqrt(2) (``xavier_uniform_(w, sqrt(2))``)."""
    return keras.initializers.VarianceScaling(2.0, mode="fan_avg", distribution="uniform")


def _conv(filters, size, name, spectral, initializer="glorot_uniform", **kwargs):
    conv = Conv2D(filters, size, padding="same", kernel_initializer=initializer, name=name,
                  **kwargs)
    if spectral:
        return SpectralNormalization(conv, name=name + "_sn", dtype=kwargs.get("dtype"))
    return conv


def _dense(units, name, spectral, **kwargs):
    dense = layers.Dense(units, name=name, **kwargs)
    if spectral:
        return SpectralNormalization(dense, name=name + "_sn", dtype=kwargs.get("dtype"))
    return dense


@keras.saving.register_keras_serializable(package="tfgan2")
class LatentChunks(keras.layers.Layer):
    """Splits ``(B, sum(sizes))`` into a list of ``(B, sizes[i])`` (BigGAN's hierarchical latent)."""

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.sizes = [int(s) for s in sizes]
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError(f"sizes must be positive chunk sizes, got {sizes!r}.")

    def call(self, inputs):
        return tf.split(inputs, self.sizes, axis=-1)

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape[:-1]) + (s,) for s in self.sizes]

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes}


def _chunk_sizes(total, count):
    """``count`` sizes summing to ``total``, as even as possible (larger ones first)."""
    if total < count:
        raise ValueError(f"latent_dim={total} is too small for the hierarchical latent of "
                         f"this resolution: it needs at least {count} (one chunk for the dense "
                         f"layer and one per block).")
    return [total // count + (1 if i < total % count else 0) for i in range(count)]


def _g_norm(x, condition, name, synchronized):
    if condition is None:
        return _batch_norm(name, synchronized)(x)
    return ConditionalBatchNormalization(synchronized=synchronized, name=name)([x, condition])


def _g_block(x, condition, filters, spectral, synchronized, name):
    h = _g_norm(x, condition, f"{name}_bn0", synchronized)
    h = layers.ReLU(name=f"{name}_relu0")(h)
    h = layers.UpSampling2D(2, name=f"{name}_up")(h)
    h = _conv(filters, 3, f"{name}_conv0", spectral, _residual_init())(h)
    h = _g_norm(h, condition, f"{name}_bn1", synchronized)
    h = layers.ReLU(name=f"{name}_relu1")(h)
    h = _conv(filters, 3, f"{name}_conv1", spectral, _residual_init())(h)
    shortcut = _conv(filters, 1, f"{name}_shortcut", spectral)(x)
    shortcut = layers.UpSampling2D(2, name=f"{name}_shortcut_up")(shortcut)
    return layers.Add(name=f"{name}_add")([h, shortcut])


@_scoped
def resnet_generator(latent_dim=128, resolution=32, channels=3, width=64, attention=0,
                     spectral_norm=False, sync_batchnorm=False, num_classes=None,
                     embed_dim=128, name="resnet_generator"):
    """The SNGAN / BigGAN residual generator (module docstring): ``z`` (and ``c``) -> tanh image.

    Args:
      latent_dim: size of ``z`` (SNGAN's 128).
      resolution: output side, a power of two from 8 to 256.
      channels: 1 or 3.
      width: the papers' ``ch``; block widths are multiples of it (module table).
      attention: side of the feature map after which a `tfgan2.attention.SelfAttention2D`
        block is inserted (SAGAN; 0: none).
      spectral_norm: spectral normalization of G's convolutions and dense layer
        (SAGAN / BigGAN); `tfgan2.GAN` runs one power iteration of each before
        every generator update, as it does for D's before every D update.
      sync_batchnorm: batch statistics over the global batch of all replicas.
      num_classes, embed_dim: conditional generator with a shared class embedding
        of ``embed_dim`` and the hierarchical latent (module docstring).
    """
    _check_channels(channels)
    _check_resolution(resolution)
    width = _check_width(width)
    _check_num_classes(num_classes)
    first, outs = _G_WIDTHS[resolution]
    attention = _check_attention(attention, [8 * 2 ** i for i in range(len(outs))],
                                 "generator")
    z = keras.Input((latent_dim,), name="z")
    inputs, x, conditions = z, z, [None] * len(outs)
    if num_classes:
        label = keras.Input((num_classes,), name="label")
        inputs = [z, label]
        shared = layers.Dense(int(embed_dim), use_bias=False, name="shared_embedding")(label)
        chunks = LatentChunks(_chunk_sizes(latent_dim, len(outs) + 1), name="latent_chunks")(z)
        x = chunks[0]
        conditions = [layers.Concatenate(name=f"block{i}_condition")([shared, chunk])
                      for i, chunk in enumerate(chunks[1:])]
    x = _dense(4 * 4 * first * width, "project", spectral_norm)(x)
    x = layers.Reshape((4, 4, first * width), name="reshape")(x)
    for i, mult in enumerate(outs):
        x = _g_block(x, conditions[i], mult * width, spectral_norm, sync_batchnorm, f"block{i}")
        if attention == 8 * 2 ** i:
            x = SelfAttention2D(spectral_norm=spectral_norm, name="attention")(x)
    x = _batch_norm("output_bn", sync_batchnorm)(x)
    x = layers.ReLU(name="output_relu")(x)
    outputs = _conv(channels, 3, "image", spectral_norm, activation="tanh", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def _d_block(x, filters, downsample, name, optimized=False):
    in_channels = x.shape[-1]
    h = x if optimized else layers.ReLU(name=f"{name}_relu0")(x)
    h = _conv(filters if optimized else in_channels, 3, f"{name}_conv0", True,
              _residual_init())(h)
    h = layers.ReLU(name=f"{name}_relu1")(h)
    h = _conv(filters, 3, f"{name}_conv1", True, _residual_init())(h)
    if downsample:
        h = layers.AveragePooling2D(2, name=f"{name}_pool")(h)
    shortcut = x
    if downsample:
        shortcut = layers.AveragePooling2D(2, name=f"{name}_shortcut_pool")(shortcut)
    if optimized or downsample or in_channels != filters:
        shortcut = _conv(filters, 1, f"{name}_shortcut", True)(shortcut)
    return layers.Add(name=f"{name}_add")([h, shortcut])


@_scoped
def resnet_discriminator(resolution=32, channels=3, width=64, attention=0, pack=1,
                         num_classes=None, conditioning="projection", q_dim=0,
                         name="resnet_discriminator"):
    """The SNGAN residual discriminator (module docstring): image (and ``c``) -> logits ``(B, 1)``.

    Args:
      resolution: input side, a power of two from 8 to 256.
      channels: 1 or 3; ``pack``: images per input, concatenated along channels
        (``GAN(..., pack=pack)``).
      width: the papers' ``ch`` (module table).
      attention: side of the feature map after which a spectrally normalized
        `tfgan2.attention.SelfAttention2D` block is inserted (0: none).
      num_classes, conditioning, q_dim: ``"projection"`` adds the spectrally
        normalized projection term; ``"acgan"`` and ``q_dim`` add heads as in
        `tfgan2.networks` (module docstring there).
    """
    _check_channels(channels)
    _check_resolution(resolution)
    width = _check_width(width)
    _check_num_classes(num_classes)
    outs, downs = _D_WIDTHS[resolution]
    sizes, size = [], resolution
    for down in downs:
        size //= 2 if down else 1
        sizes.append(size)
    attention = _check_attention(attention, sizes, "discriminator")
    image = keras.Input((resolution, resolution, channels * _check_pack(pack)), name="image")
    x = image
    attended = False
    for i, (mult, down) in enumerate(zip(outs, downs)):
        x = _d_block(x, mult * width, down, f"block{i}", optimized=i == 0)
        if attention == sizes[i] and not attended:
            x = SelfAttention2D(spectral_norm=True, name="attention")(x)
            attended = True
    x = layers.ReLU(name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    features = layers.Rescaling(float(sizes[-1] ** 2), name="sum_pool")(x)
    if not (num_classes and conditioning == "projection"):
        return keras.Model(*_discriminator_outputs(image, features, num_classes, conditioning,
                                                   q_dim, spectral=True), name=name)
    _check_choice(conditioning, D_CONDITIONINGS, "conditioning")
    _, outputs = _discriminator_outputs(image, features, None, conditioning, q_dim,
                                        spectral=True)
    label = keras.Input((num_classes,), name="label")
    embedded = _dense(features.shape[-1], "label_embedding", True, use_bias=False,
                      dtype="float32")(label)
    projection = layers.Dot(axes=1, dtype="float32", name="projection")([embedded, features])
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs
    logits = layers.Add(dtype="float32", name="projected_logit")([logits, projection])
    if isinstance(outputs, dict):
        outputs = {**outputs, "logits": logits}
    else:
        outputs = logits
    return keras.Model([image, label], outputs, name=name)
