"""Vectors of independent normal values: the 1-D Gaussian toy problem."""
import tensorflow as tf

from pipelines.common import check_batch_size, check_skip

__all__ = ["gaussian"]


def gaussian(batch_size, *, mean=4.0, std=1.25, size=200, seed=None, skip_batches=0):
    """An endless `tf.data.Dataset` of ``(B, size)`` float32 batches, entries ``N(mean, std^2)``.

    Each batch is drawn fresh (stateless, from ``seed`` and the batch index),
    so the stream is reproducible for a fixed seed and never repeats;
    ``skip_batches`` starts it at that batch index at no cost.
    """
    batch_size = check_batch_size(batch_size)
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std!r}.")
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}.")
    base = 0 if seed is None else int(seed)

    def draw(index):
        noise = tf.random.stateless_normal([batch_size, int(size)], seed=tf.stack(
            [tf.constant(base, tf.int64), index]))
        return mean + std * noise

    start = check_skip(skip_batches)
    return tf.data.Dataset.counter(start=start).map(draw).prefetch(tf.data.AUTOTUNE)
