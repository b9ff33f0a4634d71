"""MNIST through TensorFlow Datasets (the CS231N data)."""
import tensorflow as tf

from pipelines.common import finish

__all__ = ["mnist"]


def _to_unit_range(example, labels):
    image = tf.cast(example["image"], tf.float32) / 127.5 - 1.0
    if labels:
        return image, tf.cast(example["label"], tf.int32)
    return image


def mnist(batch_size, *, split="train", data_dir=None, labels=False, shuffle=True,
          repeat=True, seed=None, download=True, skip_batches=0):
    """MNIST from TFDS as ``(B, 28, 28, 1)`` float32 batches in [-1, 1] (and labels if asked).

    ``data_dir`` is the TFDS data directory; with ``download=False`` a missing
    dataset is a `FileNotFoundError` saying how to prepare it, instead of a
    download attempt. ``skip_batches`` starts
    the stream that many batches in.
    """
    import tensorflow_datasets as tfds  # heavy import, only when MNIST is used

    if not download:
        builder = tfds.builder("mnist", data_dir=data_dir)
        if not builder.is_prepared():
            where = data_dir or "the default TFDS data directory (~/tensorflow_datasets)"
            raise FileNotFoundError(
                f"MNIST is not prepared in {where}. Prepare it once where there is network "
                f"access (tfds build mnist --data_dir=DIR, or tfds.load('mnist', "
                f"data_dir=DIR)) and copy DIR here.")
    ds = tfds.load("mnist", split=split, data_dir=data_dir, download=download,
                   shuffle_files=shuffle)
    ds = ds.map(lambda ex: _to_unit_range(ex, labels), num_parallel_calls=tf.data.AUTOTUNE)
    return finish(ds, batch_size, shuffle=shuffle, repeat=repeat, seed=seed,
                  skip_batches=skip_batches)
