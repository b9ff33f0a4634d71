"""Cost of spectral normalization per training step, as ratios to no normalization.

    python -m benchmarks.spectral_norm [--resolution=32 --capacity=16 --batch_size=64]

Times `tfgan2.GAN.fit` steps (one D and one G update, hinge loss) of the DCGAN
pair whose discriminator uses ``normalization="none"``, tfgan2's
``"spectral"`` (`tfgan2.layers.SpectralNormalization`: W / sigma(W) in the
forward pass, one power iteration per D update), and, for reference, the
same network wrapped in ``keras.layers.SpectralNormalization``. Rounds are
interleaved so that load from other processes hits every variant alike; the
best round of each is reported.
"""
import time

import numpy as np
from absl import app, flags

flags.DEFINE_integer("resolution", 32, "Image size.")
flags.DEFINE_integer("capacity", 16, "dcgan capacity.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("steps", 50, "Steps per timed round.")
flags.DEFINE_integer("rounds", 5, "Interleaved rounds.")
FLAGS = flags.FLAGS


def _keras_sn(model):
    """The dcgan 'none' discriminator with its convolutions and logit in Keras's wrapper."""
    import keras

    def clone(layer):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            return keras.layers.SpectralNormalization(layer.__class__.from_config(
                layer.get_config()), name=layer.name + "_sn")
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)


def build(variant):
    import keras
    import tensorflow as tf

    import tfgan2
    from tfgan2 import networks

    keras.utils.set_random_seed(0)
    res, cap = FLAGS.resolution, FLAGS.capacity
    g = networks.dcgan_generator(latent_dim=64, resolution=res, channels=3, capacity=cap)
    norm = "spectral" if variant == "tfgan2 spectral" else "none"
    d = networks.dcgan_discriminator(resolution=res, channels=3, capacity=cap,
                                     normalization=norm)
    if variant == "keras SpectralNormalization":
        d = _keras_sn(d)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gan = tfgan2.GAN(g, d, latent_dim=64, seed=0)
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5),
                loss="hinge", steps_per_execution=FLAGS.steps)
    x = np.random.default_rng(0).uniform(-1, 1, (FLAGS.batch_size, res, res, 3)).astype("float32")
    data = tf.data.Dataset.from_tensors(x).repeat()
    gan.fit(data, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0)  # trace and warm up
    return gan, data


def main(argv):
    del argv
    variants = ["none", "tfgan2 spectral", "keras SpectralNormalization"]
    built = {v: build(v) for v in variants}
    best = {v: float("inf") for v in variants}
    for _ in range(FLAGS.rounds):
        for v in variants:
            gan, data = built[v]
            start = time.perf_counter()
            gan.fit(data, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0)
            best[v] = min(best[v], (time.perf_counter() - start) / FLAGS.steps * 1e3)
    print(f"dcgan {FLAGS.resolution}x{FLAGS.resolution}, capacity {FLAGS.capacity}, batch "
          f"{FLAGS.batch_size}; best of {FLAGS.rounds} rounds of {FLAGS.steps} steps")
    for v in variants:
        print(f"{v:>30}: {best[v]:7.1f} ms/step   ratio to none {best[v] / best['none']:.3f}")


if __name__ == "__main__":
    app.run(main)
