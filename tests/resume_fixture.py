"""GANs and data of the saved-resume fixture (tests/fixtures/resume_b700c70).

`tests/fixtures/make_resume_fixture.py` trained each configuration for
`FIRST_STEPS` steps, saved a checkpoint with `tfgan2.callbacks.make_checkpoint`,
trained `MORE_STEPS` more and kept the weights. `tests/test_saved_resume.py`
restores that checkpoint into the same configuration built by the current code
and checks that it continues to the same weights: the noise streams,
augmentation draws and optimizer state of runs saved before a change carry over.
The configurations cover every noise stream of the GAN: D and G noise, the
gradient-penalty mixing factor, every augmentation stream (real, fake, penalty,
G's fakes and, for a relativistic loss, G's reals), InfoGAN codes, labels,
packing, EMA and ADA's state.
"""
import hashlib
import platform

import keras
import numpy as np
import tensorflow as tf

import tfgan2

FIRST_STEPS, MORE_STEPS, BATCH = 3, 3, 8
NAMES = ("relativistic_penalties_augment", "conditional_infogan", "packed_ada_clipped")


def build(name):
    """The compiled GAN of configuration ``name`` (fixed seeds, tiny networks)."""
    keras.utils.set_random_seed(7)
    nets = tfgan2.networks
    if name == "relativistic_penalties_augment":
        gan = tfgan2.GAN(nets.dcgan_generator(latent_dim=6, resolution=8, channels=1, capacity=2),
                         nets.dcgan_discriminator(resolution=8, channels=1, capacity=2),
                         latent_dim=6, ema_decay=0.9, seed=11,
                         augment=tfgan2.augment.DiffAugment("color,translation,cutout"))
        compile_args = dict(loss="relativistic_average", d_steps=2, r1_gamma=1.0,
                            gradient_penalty=0.5)
    elif name == "conditional_infogan":
        gan = tfgan2.GAN(nets.mlp_generator(latent_dim=6 + 3, image_shape=(8, 8, 1), hidden=16,
                                            num_classes=3, conditioning="cbn"),
                         nets.mlp_discriminator(image_shape=(8, 8, 1), hidden=16, num_classes=3,
                                                conditioning="acgan", q_dim=3),
                         latent_dim=6, latent_distribution="uniform", ema_decay=0.8, seed=12,
                         num_classes=3, infogan_codes="categorical:2,continuous:1")
        compile_args = dict(loss="non_saturating", label_smoothing=0.25)
    elif name == "packed_ada_clipped":
        gan = tfgan2.GAN(nets.dcgan_generator(latent_dim=5, resolution=8, channels=1, capacity=2),
                         nets.dcgan_discriminator(resolution=8, channels=1, capacity=2, pack=2,
                                                  normalization="spectral"),
                         latent_dim=5, seed=13, pack=2,
                         augment=tfgan2.augment.AdaptiveAugment(target=0.6, initial_p=0.3,
                                                                interval=1, speed_images=64))
        compile_args = dict(loss="wasserstein", weight_clip=0.05, g_steps=2)
    else:
        raise ValueError(name)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5), **compile_args)
    return gan


def dataset(name, start_step=0):
    """The real batches from step ``start_step`` on (with labels where the GAN is conditional)."""
    rng = np.random.default_rng(3)
    images = np.tanh(rng.normal(size=(BATCH * (FIRST_STEPS + MORE_STEPS), 8, 8, 1)))
    labels = rng.integers(0, 3, len(images)).astype(np.int32)
    data = ((images.astype(np.float32), labels) if name == "conditional_infogan"
            else images.astype(np.float32))
    return tf.data.Dataset.from_tensor_slices(data).batch(BATCH).skip(start_step)


def state(gan):
    """Every weight of the GAN (networks, EMA copy, step, seed, augmentation) and every
    optimizer variable, keyed by role and position (Keras numbers optimizer and layer
    names per process, so paths are no stable key): what the continuation is compared on."""
    out = {f"model_{i:03d}": np.asarray(v) for i, v in enumerate(gan.weights)}
    for role in ("d_optimizer", "g_optimizer"):
        out.update({f"{role}_{i:03d}": np.asarray(v)
                    for i, v in enumerate(getattr(gan, role).variables)})
    return out


def machine():
    """What decides float32 rounding of the kernels: the CPU (model and feature flags,
    which pick oneDNN's code paths) and the TensorFlow version."""
    model, flags = platform.processor(), ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() in ("flags", "Features"):
                    flags = " ".join(sorted(value.split()))
    except OSError:
        pass
    return {"processor": model, "cpu_flags_sha1": hashlib.sha1(flags.encode()).hexdigest(),
            "tensorflow": tf.__version__, "machine": platform.machine()}
