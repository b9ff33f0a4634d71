"""R3GAN's modernized residual generator and discriminator (the ``r3gan`` family).

Huang, Gokaslan, Kuleshov, Tompkin: "The GAN is dead; long live the GAN! A
Modern GAN Baseline" (NeurIPS 2024, arXiv:2501.05441), section 3 ("a roadmap
to a new baseline", config E) and appendix D, as its ``R3GAN/Networks.py``
builds them:

* no normalization layers; every convolution and dense layer without bias,
  the biases sit in the activations (``LeakyReLU(0.2)`` of ``x + b``, kept
  here as the bias of the convolution before it: the same function and
  parameter count);
* residual blocks are inverted bottlenecks (ResNeXt-style)::

      y = x + Conv1x1_{E->C}(act(GroupConv3x3_{E->E}(act(Conv1x1_{C->E}(x)))))

  with ``E = expansion * C`` and groups of ``group_channels`` (16) channels;
* fix-up initialization: weights ``N(0, gain^2 / fan_in)``; in a residual
  branch the first two convolutions take ``gain = sqrt(2 / (1 + 0.2^2)) *
  L^(-1/4)`` (L: the network's total number of residual blocks; the variance
  scaling of the paper's appendix for 3 layers per branch, ``L^(-1/(2*3-2))``)
  and the last one is zero, so every block starts as the identity; other
  layers take gain 1;
* resampling through the fixed low-pass filter ``[1, 2, 1]``
  (`tfgan2.resampling`); a 1x1 convolution changes the width between stages
  (before upsampling in G, after downsampling in D);
* G starts from a learned 4x4 basis modulated by a linear map of ``z``
  (`GenerativeBasis`: ``y[i, j, c] = B[i, j, c] (z W)[c]``) and ends with a
  1x1 convolution to the image channels; D starts with a 1x1 convolution and
  ends with a 4x4 depthwise convolution and a linear layer (the
  "discriminative basis").

G here ends in ``tanh`` (the project's generators return data in [-1, 1]);
R3GAN's generator output is linear.

One stage per resolution 4, 8, ..., ``resolution``; each has
``blocks_per_stage`` blocks. Stage widths: ``width`` up to 32x32, halved for
every doubling above (R3GAN's FFHQ-64 / FFHQ-256 presets), never below the
group size. R3GAN's CIFAR-10 preset is ``width=768, blocks_per_stage=2,
expansion=2`` (groups 96 of 16 channels) with a 64-dimensional ``z``; built
conditional on 10 classes it has 20,781,952 (G) and 21,280,512 (D)
trainable parameters (the paper's table: 20.78 M and 21.28 M).

Conditional (``num_classes=K``), as R3GAN: G concatenates a linear embedding
``c E`` (``embed_dim``, default ``latent_dim``) to ``z``; D's linear head
outputs ``embed_dim`` features (default: the 4x4 stage's width) and the logit
is their inner product with an embedding of ``c`` (a projection discriminator
without the unconditional term).
"""
import math

import keras
import numpy as np
from keras import layers

from tfgan2.layers import Conv2D
from tfgan2.networks import (_check_channels, _check_num_classes, _check_pack, _scoped)
from tfgan2.resampling import LowpassDownsample2D, LowpassUpsample2D, resampling_taps

__all__ = ["r3gan_generator", "r3gan_discriminator", "GenerativeBasis", "stage_widths",
           "RESOLUTIONS"]

RESOLUTIONS = (8, 16, 32, 64, 128, 256)
# The gain of LeakyReLU(0.2): sqrt(2 / (1 + 0.2^2)).
_LRELU_GAIN = math.sqrt(2.0 / (1.0 + 0.2 ** 2))


def _normal(gain, fan_in):
    """R3GAN's ``MSRInitializer``: ``N(0, (gain / sqrt(fan_in))^2)``."""
    if gain == 0:
        return "zeros"
    return keras.initializers.RandomNormal(stddev=float(gain / math.sqrt(fan_in)))


@keras.saving.register_keras_serializable(package="tfgan2")
class GenerativeBasis(keras.layers.Layer):
    """R3GAN's generator input: ``y[b, i, j, c] = B[i, j, c] * (x W)[b, c]``, ``(B, size, size, C)``.

    ``B`` (the learned basis, ``size x size x channels``) starts ``N(0, 1)``,
    ``W`` (no bias) ``N(0, 1 / fan_in)``.
    """

    def __init__(self, channels, size=4, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.size = int(size)

    def build(self, input_shape):
        self.basis = self.add_weight(shape=(self.size, self.size, self.channels),
                                     initializer=keras.initializers.RandomNormal(stddev=1.0),
                                     name="basis")
        self.linear = layers.Dense(self.channels, use_bias=False,
                                   kernel_initializer=_normal(1.0, input_shape[-1]),
                                   dtype=self.dtype_policy, name="linear")
        self.linear.build(input_shape)

    def call(self, inputs):
        h = self.linear(inputs)
        basis = keras.ops.cast(self.basis, h.dtype)
        return basis[None] * h[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "size": self.size}


def _check_resolution(resolution):
    if resolution not in RESOLUTIONS or not isinstance(resolution, int):
        raise ValueError(f"resolution must be a power of two from 8 to 256 "
                         f"({', '.join(map(str, RESOLUTIONS))}), got {resolution!r}.")


def _check_positive(value, what):
    if int(value) != value or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}.")
    return int(value)


def stage_widths(resolution, width=768, expansion=2, group_channels=16):
    """``{side: channels}`` of the stages 4, 8, ..., ``resolution`` (module docstring).

    Raises:
      ValueError: ``width`` is not a multiple of the unit that makes every
        expanded width a whole number of groups.
    """
    _check_resolution(resolution)
    width = _check_positive(width, "width")
    expansion = _check_positive(expansion, "expansion")
    group_channels = _check_positive(group_channels, "group_channels")
    unit = group_channels // math.gcd(group_channels, expansion)
    if width % unit:
        raise ValueError(f"width={width} must be a multiple of {unit}, so that the expanded "
                         f"width (expansion={expansion} x width) splits into groups of "
                         f"{group_channels} channels.")
    widths = {}
    side = 4
    while side <= resolution:
        w = width if side <= 32 else width * 32 // side
        widths[side] = max(unit, w // unit * unit)
        side *= 2
    return widths


def _block(x, expansion, group_channels, total_blocks, name):
    channels = x.shape[-1]
    expanded = channels * expansion
    gain = _LRELU_GAIN * total_blocks ** (-1.0 / 4.0)
    h = Conv2D(expanded, 1, kernel_initializer=_normal(gain, channels), name=f"{name}_conv0")(x)
    h = layers.LeakyReLU(0.2, name=f"{name}_act0")(h)
    h = Conv2D(expanded, 3, padding="same", groups=expanded // group_channels,
               kernel_initializer=_normal(gain, group_channels * 9), name=f"{name}_conv1")(h)
    h = layers.LeakyReLU(0.2, name=f"{name}_act1")(h)
    h = Conv2D(channels, 1, use_bias=False, kernel_initializer="zeros", name=f"{name}_conv2")(h)
    return layers.Add(name=f"{name}_add")([x, h])


def _linear_conv(filters, fan_in, name, **kwargs):
    return Conv2D(filters, 1, use_bias=False, kernel_initializer=_normal(1.0, fan_in), name=name,
                  **kwargs)


def _check_filter(filter_taps):
    resampling_taps(filter_taps)
    return tuple(float(t) for t in np.asarray(filter_taps, dtype=np.float64).ravel())


@_scoped
def r3gan_generator(latent_dim=64, resolution=32, channels=3, width=768, blocks_per_stage=2,
                    expansion=2, group_channels=16, num_classes=None, embed_dim=None,
                    filter=(1, 2, 1), name="r3gan_generator"):  # noqa: A002 - R3GAN's name
    """R3GAN's generator (module docstring): ``z`` (and ``c``) -> tanh image.

    Args:
      latent_dim: size of ``z`` (R3GAN's 64).
      resolution: a power of two from 8 to 256; channels: 1 or 3.
      width, blocks_per_stage, expansion, group_channels: stage width (see
        `stage_widths`), residual blocks per stage, inverted-bottleneck
        expansion, channels per group of the 3x3 convolutions.
      num_classes, embed_dim: conditional G with a class embedding of
        ``embed_dim`` (default ``latent_dim``) concatenated to ``z``.
      filter: the resampling filter taps (`tfgan2.resampling`).
    """
    _check_channels(channels)
    widths = stage_widths(resolution, width, expansion, group_channels)
    blocks = _check_positive(blocks_per_stage, "blocks_per_stage")
    _check_num_classes(num_classes)
    taps = _check_filter(filter)
    total_blocks = blocks * len(widths)
    z = keras.Input((latent_dim,), name="z")
    inputs, x = z, z
    if num_classes:
        label = keras.Input((num_classes,), name="label")
        inputs = [z, label]
        embedded = layers.Dense(int(embed_dim or latent_dim), use_bias=False,
                                kernel_initializer=_normal(1.0, num_classes),
                                name="label_embedding")(label)
        x = layers.Concatenate(name="z_and_label")([z, embedded])
    previous = None
    for side, w in widths.items():
        if previous is None:
            x = GenerativeBasis(w, name="basis")(x)
        else:
            if w != previous:
                x = _linear_conv(w, previous, f"stage{side}_transition")(x)
            x = LowpassUpsample2D(taps, name=f"stage{side}_up")(x)
        for b in range(blocks):
            x = _block(x, expansion, group_channels, total_blocks, f"stage{side}_block{b}")
        previous = w
    outputs = _linear_conv(channels, previous, "image", activation="tanh", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


@_scoped
def r3gan_discriminator(resolution=32, channels=3, width=768, blocks_per_stage=2, expansion=2,
                        group_channels=16, pack=1, num_classes=None, conditioning="projection",
                        q_dim=0, embed_dim=None, filter=(1, 2, 1),
                        name="r3gan_discriminator"):  # noqa: A002 - R3GAN's name
    """R3GAN's discriminator (module docstring): image (and ``c``) -> logits ``(B, 1)`` float32.

    Args:
      resolution, channels, width, blocks_per_stage, expansion, group_channels,
        filter: as `r3gan_generator` (the stages in reverse).
      pack: images per input, concatenated along channels (``GAN(..., pack=pack)``).
      num_classes, conditioning, embed_dim: R3GAN's projection: the head outputs
        ``embed_dim`` features (default: the 4x4 stage's width) and the logit is
        their inner product with an embedding of ``c``. Only ``"projection"``.
      q_dim: must be 0 (no InfoGAN head).
    """
    _check_channels(channels)
    widths = stage_widths(resolution, width, expansion, group_channels)
    blocks = _check_positive(blocks_per_stage, "blocks_per_stage")
    _check_num_classes(num_classes)
    if num_classes and conditioning != "projection":
        raise ValueError(f"the r3gan discriminator is conditioned by projection, as R3GAN; "
                         f"conditioning={conditioning!r} is not available (use "
                         f"--discriminator_conditioning=projection).")
    if q_dim:
        raise ValueError(f"the r3gan discriminator has no InfoGAN head (q_dim={q_dim!r}); use "
                         f"--network=dcgan or resnet for InfoGAN codes.")
    taps = _check_filter(filter)
    total_blocks = blocks * len(widths)
    sides = sorted(widths, reverse=True)
    image = keras.Input((resolution, resolution, channels * _check_pack(pack)), name="image")
    x = _linear_conv(widths[resolution], image.shape[-1], "extract")(image)
    for side in sides:
        for b in range(blocks):
            x = _block(x, expansion, group_channels, total_blocks, f"stage{side}_block{b}")
        if side > 4:
            x = LowpassDownsample2D(taps, name=f"stage{side}_down")(x)
            if widths[side // 2] != widths[side]:
                x = _linear_conv(widths[side // 2], widths[side], f"stage{side}_transition")(x)
    last = widths[4]
    out_dim = int(embed_dim or last) if num_classes else 1
    x = layers.DepthwiseConv2D(4, use_bias=False, depthwise_initializer=_normal(1.0, 16),
                               name="basis")(x)
    x = layers.Flatten(name="flatten")(x)
    features = layers.Dense(out_dim, use_bias=False, kernel_initializer=_normal(1.0, last),
                            dtype="float32", name="logit" if not num_classes else "features")(x)
    if not num_classes:
        return keras.Model(image, features, name=name)
    label = keras.Input((num_classes,), name="label")
    embedded = layers.Dense(out_dim, use_bias=False, dtype="float32",
                            kernel_initializer=_normal(1.0 / math.sqrt(out_dim), num_classes),
                            name="label_embedding")(label)
    logits = layers.Dot(axes=1, dtype="float32", name="logit")([features, embedded])
    return keras.Model([image, label], logits, name=name)
