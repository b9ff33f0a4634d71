"""scikit-learn's handwritten digits: 1,797 real 8x8 images shipped inside the package."""
import numpy as np
import tensorflow as tf

from pipelines.common import finish

__all__ = ["digits_arrays", "digits", "upsample_digits", "DIGITS_SHAPE"]

DIGITS_SHAPE = (8, 8, 1)


def digits_arrays():
    """``(images, labels)``: float32 ``(1797, 8, 8, 1)`` in [-1, 1] and int32 ``(1797,)``.

    The raw pixels are integers 0..16; ``x / 8 - 1`` maps them onto [-1, 1].
    """
    from sklearn.datasets import load_digits  # imported lazily: sklearn is slow to import

    bunch = load_digits()
    images = bunch.images.astype(np.float32)[..., None] / 8.0 - 1.0
    return images, bunch.target.astype(np.int32)


def upsample_digits(images, resolution):
    """``(N, 8, 8, C) -> (N, R, R, C)`` float32 NumPy, resized bilinearly (half-pixel
    centres): the digits at ``resolution`` as the stacked-digits pipeline and the
    small-data image folder draw them."""
    return tf.image.resize(np.asarray(images, np.float32), (resolution, resolution),
                           method="bilinear").numpy()


def digits(batch_size, *, labels=False, shuffle=True, repeat=True, seed=None, skip_batches=0):
    """A `tf.data.Dataset` of digit batches ``(B, 8, 8, 1)`` in [-1, 1].

    Yields ``(images, labels)`` when ``labels`` is true. Batches are full
    (``drop_remainder=True``); with ``repeat`` the dataset is endless and
    reshuffled every pass. ``skip_batches`` starts the (seeded) stream that
    many batches in, as a resumed run needs.
    """
    images, targets = digits_arrays()
    ds = tf.data.Dataset.from_tensor_slices((images, targets) if labels else images)
    return finish(ds, batch_size, shuffle=shuffle, repeat=repeat, seed=seed,
                  buffer_size=len(images), skip_batches=skip_batches)
