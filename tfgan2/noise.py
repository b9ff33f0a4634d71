"""The GAN's random streams: latents, InfoGAN codes, mixing factors and augmentation seeds.

Every random number of a training step is a stateless function of
``(base seed, stream, counter)``: the base seed is a variable saved with the
checkpoint, the stream an id below, the counter an optimizer's step. A
restored run therefore draws exactly what it would have drawn without the
interruption, and each draw is made for the global batch with every replica
keeping its own rows (`tfgan2.replicas.Rows`), so 1 or N replicas see the same
numbers. The stream ids are part of the saved state's meaning: changing one
changes what every existing run draws after a resume.
"""
import numpy as np
import tensorflow as tf

from tfgan2 import replicas

__all__ = ["Noise", "LATENT_DISTRIBUTIONS", "D_NOISE", "G_NOISE", "GP_MIX", "EVAL_NOISE",
           "AUG_REAL", "AUG_FAKE", "AUG_GP", "AUG_G", "AUG_G_REAL", "INFO_CODES"]

LATENT_DISTRIBUTIONS = ("normal", "uniform")

# D-phase noise, G-phase noise, the gradient-penalty mixing factor and evaluation noise.
D_NOISE, G_NOISE, GP_MIX, EVAL_NOISE = 1, 2, 3, 4
# Augmentation of D's inputs: real and fake in D's step, the gradient-penalty
# mixtures, and the fakes (and, for relativistic losses, the reals) of G's step.
AUG_REAL, AUG_FAKE, AUG_GP, AUG_G, AUG_G_REAL = 5, 6, 7, 8, 9
# Folded into a latent seed for the InfoGAN codes drawn with that latent.
INFO_CODES = 17


class Noise:
    """Draws of the generator's inputs and of the other random streams.

    Args:
      seed: the base seed, an int64 scalar variable (checkpointed with the GAN).
      latent_dim: size of ``z``.
      distribution: ``"normal"`` (N(0, 1)) or ``"uniform"`` (U[-1, 1]).
      codes: `tfgan2.infogan.LatentCodes` appended to ``z``, or None.
    """

    def __init__(self, seed, latent_dim, distribution="normal", codes=None):
        if distribution not in LATENT_DISTRIBUTIONS:
            raise ValueError(f"latent_distribution must be one of "
                             f"{', '.join(LATENT_DISTRIBUTIONS)}, got {distribution!r}.")
        self.seed = seed
        self.latent_dim = int(latent_dim)
        self.distribution = distribution
        self.codes = codes

    @property
    def input_dim(self):
        """Width of G's input: ``z``, then the InfoGAN codes."""
        return self.latent_dim + (self.codes.dim if self.codes is not None else 0)

    def seed_for(self, stream, counter):
        """A stateless seed unique to (base seed, stream, counter); equal on all replicas."""
        return tf.random.experimental.stateless_fold_in(
            tf.stack([tf.convert_to_tensor(self.seed), tf.constant(stream, tf.int64)]),
            tf.cast(counter, tf.int64))

    def latent(self, batch_size, seed):
        """This replica's G inputs ``(batch_size, input_dim)`` from a stateless ``seed``:
        its rows of the draw for the global batch (z, then any InfoGAN codes)."""
        def draw(n):
            shape = tf.stack([n, self.latent_dim])
            if self.distribution == "uniform":
                z = tf.random.stateless_uniform(shape, seed, minval=-1.0, maxval=1.0)
            else:
                z = tf.random.stateless_normal(shape, seed)
            if self.codes is None:
                return z
            code_seed = tf.random.experimental.stateless_fold_in(seed, INFO_CODES)
            return tf.concat([z, self.codes.sample(n, code_seed)], axis=1)

        return replicas.this_replica(batch_size).take(draw)

    def uniform(self, batch_size, seed):
        """This replica's rows of ``U[0, 1)`` drawn for the global batch, shape ``(batch_size,)``
        (the gradient penalty's mixing factors)."""
        return replicas.this_replica(batch_size).take(
            lambda n: tf.random.stateless_uniform(tf.stack([n]), seed))

    def sample_latent(self, num, seed=None):
        """``num`` G inputs as a float32 NumPy array ``(num, input_dim)`` (NumPy's generator)."""
        rng = np.random.default_rng(seed)
        if self.distribution == "uniform":
            z = rng.uniform(-1.0, 1.0, (num, self.latent_dim))
        else:
            z = rng.standard_normal((num, self.latent_dim))
        z = z.astype(np.float32)
        if self.codes is not None:
            codes = self.codes.sample_numpy(num, None if seed is None else seed + 1)
            z = np.concatenate([z, codes], axis=1)
        return z
