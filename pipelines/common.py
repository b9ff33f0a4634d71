"""The tail every pipeline shares: shuffle, repeat, batch, prefetch."""
import tensorflow as tf

__all__ = ["finish", "check_batch_size"]


def check_batch_size(batch_size):
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    return int(batch_size)


def finish(ds, batch_size, *, shuffle, repeat, seed=None, buffer_size=10_000):
    """Shuffle (per pass, seeded if ``seed``), repeat, batch with ``drop_remainder``, prefetch."""
    batch_size = check_batch_size(batch_size)
    if shuffle:
        ds = ds.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
