"""2-D Gaussian mixtures of the PacGAN / VEEGAN benchmarks.

* ``ring``: 8 modes evenly spaced on a circle of radius 1, standard deviation 0.01
  (Lin et al. 2018, arXiv:1712.04086, table 1);
* ``grid``: 25 modes at ``{-4, -2, 0, 2, 4}^2``, standard deviation 0.05 (table 2).

Modes are equally likely.
"""
import numpy as np
import tensorflow as tf

from pipelines.common import check_batch_size, check_skip

__all__ = ["MIXTURES", "mixture_centres", "mixture_2d"]

MIXTURES = {"ring": 0.01, "grid": 0.05}


def mixture_centres(kind):
    """``(centres (K, 2) float32, std)`` of mixture ``kind`` (``ring`` or ``grid``)."""
    if kind == "ring":
        angles = 2 * np.pi * np.arange(8) / 8
        centres = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    elif kind == "grid":
        centres = np.array([(x, y) for x in range(-4, 5, 2) for y in range(-4, 5, 2)], float)
    else:
        raise ValueError(f"Unknown mixture {kind!r}: use one of {', '.join(MIXTURES)}.")
    return centres.astype(np.float32), MIXTURES[kind]


def mixture_2d(batch_size, kind="ring", *, seed=None, skip_batches=0):
    """An endless dataset of ``(B, 2)`` float32 points of mixture ``kind``, fresh every batch.

    Batch ``i`` is a stateless function of (``seed``, ``i``): reproducible, and
    ``skip_batches`` starts at that index at no cost.
    """
    batch_size = check_batch_size(batch_size)
    centres, std = mixture_centres(kind)
    centres = tf.constant(centres)
    base = 0 if seed is None else int(seed)

    def draw(index):
        seed_pair = tf.stack([tf.constant(base, tf.int64), index])
        pick = tf.random.stateless_uniform([batch_size], seed_pair, 0, len(centres), tf.int32)
        noise = tf.random.stateless_normal([batch_size, 2],
                                           tf.random.experimental.stateless_fold_in(seed_pair, 1))
        return tf.gather(centres, pick) + std * noise

    start = check_skip(skip_batches)
    return tf.data.Dataset.counter(start=start).map(draw).prefetch(tf.data.AUTOTUNE)
