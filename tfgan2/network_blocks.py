"""Building blocks shared by the network families (`tfgan2.networks`,
`tfgan2.resnet_networks`, `tfgan2.r3gan_networks`): argument checks, normalization
and convolution blocks, conditional generator inputs and discriminator heads."""
import functools
import inspect
import math

import keras
from keras import layers

from tfgan2.conditioning import ConditionalBatchNormalization, ProjectionLogit
from tfgan2.layers import Conv2D, FusedBatchNormalization, SpectralNormalization

NORMALIZATIONS = ("batch", "none", "spectral")
G_CONDITIONINGS = ("embedding", "cbn")
D_CONDITIONINGS = ("projection", "acgan")


def scoped(builder):
    """Build the network inside ``keras.name_scope(<its name>)``.

    Variable paths then start with the network's name
    (``mlp_generator/fc1/kernel``), so a generator and a discriminator with
    equally named layers stay apart in TensorBoard. Checkpoints match
    variables by object, not by name, so older checkpoints still restore.
    """
    default = inspect.signature(builder).parameters["name"].default

    @functools.wraps(builder)
    def build(*args, **kwargs):
        with keras.name_scope(kwargs.get("name", default)):
            return builder(*args, **kwargs)

    return build


def num_doublings(resolution):
    """Number of stride-2 stages between 4x4 and ``resolution``."""
    if (not isinstance(resolution, int) or resolution < 8
            or resolution & (resolution - 1)):
        raise ValueError(
            f"resolution must be a power of two >= 8 (8, 16, 32, 64, 128, ...), "
            f"got {resolution!r}.")
    return int(math.log2(resolution)) - 2


def check_channels(channels):
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}.")


def check_normalization(normalization):
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, "
                         f"got {normalization!r}.")


def conv_block(filters, size, strides, normalization, name):
    conv = Conv2D(filters, size, strides=strides, padding="same", name=name)
    if normalization == "spectral":
        return SpectralNormalization(conv, name=name + "_sn")
    return conv


def check_pack(pack):
    if int(pack) != pack or pack < 1:
        raise ValueError(f"pack must be an integer >= 1, got {pack!r}.")
    return int(pack)


def batch_norm(name, synchronized=False):
    """Keras' synchronized batch norm across replicas, else the fused-kernel one."""
    if synchronized:
        return layers.BatchNormalization(synchronized=True, name=name)
    return FusedBatchNormalization(name=name)


def norm_layer(normalization, name, synchronized=False):
    if normalization == "batch":
        return batch_norm(name, synchronized)
    return None


def check_choice(value, choices, what):
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}, got {value!r}.")


def check_num_classes(num_classes):
    if num_classes is not None and (int(num_classes) != num_classes or num_classes < 1):
        raise ValueError(f"num_classes must be None or an integer >= 1, got {num_classes!r}.")


def generator_inputs(latent_dim, num_classes, conditioning, embed_dim):
    """``(inputs, x, label)``: G's inputs, the tensor its trunk starts from, the label (or None)."""
    check_num_classes(num_classes)
    z = keras.Input((latent_dim,), name="z")
    if not num_classes:
        return z, z, None
    check_choice(conditioning, G_CONDITIONINGS, "conditioning")
    label = keras.Input((num_classes,), name="label")
    x = z
    if conditioning == "embedding":
        embedded = layers.Dense(embed_dim, use_bias=False, name="label_embedding")(label)
        x = layers.Concatenate(name="z_and_label")([z, embedded])
    return [z, label], x, label


def generator_norm(x, label, conditioning, name, synchronized=False):
    """Batch norm of G: conditional (``cbn`` with a label) or plain."""
    if label is not None and conditioning == "cbn":
        return ConditionalBatchNormalization(synchronized=synchronized, name=name)([x, label])
    return batch_norm(name, synchronized)(x)


def discriminator_outputs(image, features, num_classes, conditioning, q_dim, spectral=False):
    """``(inputs, outputs)`` of D from its input and feature vector ``(B, F)``.

    Plain D: ``(image, logits)``. Projection D: ``([image, label], logits)``.
    An auxiliary classifier or a Q head: a dict ``{"logits", "class_logits",
    "q"}`` (those present). Every output is float32.
    """
    check_num_classes(num_classes)
    if num_classes:
        check_choice(conditioning, D_CONDITIONINGS, "conditioning")
    inputs = image
    if num_classes and conditioning == "projection":
        label = keras.Input((num_classes,), name="label")
        inputs = [image, label]
        logits = ProjectionLogit(name="logit")([features, label])
    else:
        dense = layers.Dense(1, dtype="float32", name="logit")
        if spectral:
            dense = SpectralNormalization(dense, dtype="float32", name="logit_sn")
        logits = dense(features)
    heads = {}
    if num_classes and conditioning == "acgan":
        heads["class_logits"] = layers.Dense(num_classes, dtype="float32",
                                             name="class_logits")(features)
    if q_dim:
        h = layers.Dense(128, name="q_hidden")(features)
        h = layers.LeakyReLU(0.2, name="q_lrelu")(h)
        heads["q"] = layers.Dense(int(q_dim), dtype="float32", name="q")(h)
    if not heads:
        return inputs, logits
    return inputs, {"logits": logits, **heads}
