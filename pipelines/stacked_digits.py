"""Stacked digits: three independently drawn digits as the R, G and B channels of one image.

The Stacked MNIST protocol (Metz et al. 2017; Srivastava et al. 2017; Lin et al. 2018,
arXiv:1712.04086) built from scikit-learn's 8x8 digits, upsampled bilinearly to
``resolution`` (as `upsample_digits` does). Each image draws its three classes
independently and uniformly, so the 1,000 triples ("modes", `mode_ids`) are equally
likely, and each channel a digit of its class uniformly from ``digits``. Channel c
of an image is its digit ``labels[:, c]`` in [-1, 1].
"""
import numpy as np
import tensorflow as tf

from pipelines.common import check_batch_size, check_skip
from pipelines.digits import digits_arrays, upsample_digits

__all__ = ["stacked_digits", "mode_ids", "NUM_MODES"]

NUM_MODES = 1000


def mode_ids(labels):
    """The mode of each digit triple ``(N, 3)``: ``100 r + 10 g + b`` in [0, 1000)."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] != 3:
        raise ValueError(f"labels must be digit triples of shape (N, 3), got {labels.shape}.")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"labels must be digits 0-9, got values from {labels.min()} to "
                         f"{labels.max()}.")
    return (labels.astype(np.int64) * np.array([100, 10, 1])).sum(axis=1)


def _check_digits(digits):
    if digits is None:
        return digits_arrays()
    images, labels = (np.asarray(a) for a in digits)
    labels = labels.reshape(-1)
    if images.ndim != 4 or images.shape[1:3] != (8, 8) or images.shape[-1] != 1 \
            or len(images) != len(labels):
        raise ValueError(f"digits must be (images (N, 8, 8, 1), labels (N,)), got shapes "
                         f"{images.shape} and {labels.shape}.")
    missing = sorted(set(range(10)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"digits must hold every class 0-9 to stack them; missing {missing}.")
    return images.astype(np.float32), labels.astype(np.int32)


def stacked_digits(batch_size, resolution=32, *, digits=None, labels=False, seed=None,
                   skip_batches=0):
    """An endless dataset of ``(B, resolution, resolution, 3)`` stacked digits in [-1, 1].

    ``digits``: ``(images (N, 8, 8, 1), labels (N,))`` to draw from, holding every
    class (default: all 1,797 of `digits_arrays`). Yields ``(images, triples)``,
    triples int32 ``(B, 3)``, when ``labels`` is true. Batch ``i`` is a stateless
    function of (``seed``, ``i``): reproducible, every batch fresh, and
    ``skip_batches`` starts at that index at no cost.
    """
    batch_size = check_batch_size(batch_size)
    if int(resolution) != resolution or resolution < 8:
        raise ValueError(f"resolution must be an integer >= 8, got {resolution!r}.")
    images, classes = _check_digits(digits)
    order = np.argsort(classes, kind="stable")
    counts = np.bincount(classes, minlength=10)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    big = tf.constant(upsample_digits(images[order], int(resolution))[..., 0])  # (N, R, R)
    counts, starts = tf.constant(counts, tf.int32), tf.constant(starts, tf.int32)
    base = 0 if seed is None else int(seed)

    def draw(index):
        seed_pair = tf.stack([tf.constant(base, tf.int64), index])
        triples = tf.random.stateless_uniform([batch_size, 3], seed_pair, 0, 10, tf.int32)
        u = tf.random.stateless_uniform([batch_size, 3],
                                        tf.random.experimental.stateless_fold_in(seed_pair, 1))
        n = tf.gather(counts, triples)
        within = tf.minimum(tf.cast(u * tf.cast(n, tf.float32), tf.int32), n - 1)
        picked = tf.gather(big, tf.gather(starts, triples) + within)  # (B, 3, R, R)
        stacked = tf.transpose(picked, [0, 2, 3, 1])
        return (stacked, triples) if labels else stacked

    start = check_skip(skip_batches)
    return tf.data.Dataset.counter(start=start).map(draw).prefetch(tf.data.AUTOTUNE)
