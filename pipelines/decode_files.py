"""Decoding a stream of image files in parallel chunks, counting the files that fail.

`decode_stream` turns a dataset of ``(path, *extras)`` into one of
``(uint8 image, *extras)`` (``resolution x resolution x channels``), the
same pixels `pipelines.images.decode_crop_resize` gives (to float rounding
of the resize, see below).

How it works, and why:

* The names are grouped into chunks of `CHUNK`. A parallel interleave hands
  each chunk to a worker thread, which runs a small dataset over it: read,
  decode (a fixed crop box is cut inside the JPEG decoder), `ignore_errors`
  to drop the files whose decoder fails, and the survivors as one batch.
* That batch is compared with the chunk's names. The missing names go to
  `pipelines.skipped.SkippedFiles.add_decode_failures` through a
  `tf.numpy_function` that only runs when a chunk lost a file: nothing is
  paid per good file, no `tf.Variable` is involved, and the failures are
  exact and named (an `ignore_errors` alone drops them silently).
* With a fixed crop box all images of a chunk have the same size, so the
  chunk is resized in one batched matrix product (`resize_fixed` on a
  batch) instead of one small op chain per image. Other crops (none,
  ``"center"`` of varying sizes) resize each image on its own.
* Each chunk's output is emitted as one block, so with ``deterministic``
  the order is exactly the names' order minus the failed files (a resumed
  run that skips names sees the same stream); otherwise chunks come out as
  soon as they are ready.
"""
import numpy as np
import tensorflow as tf

from pipelines.images import CropBox, check_crop, check_resolution, decode_crop, \
    decode_crop_resize, resize_fixed, round_to_uint8

__all__ = ["decode_stream", "CHUNK"]

CHUNK = 32  # files per chunk: amortizes the chunk's small dataset, keeps a chunk's batch small


def _recorder(skipped):
    def record(paths):
        if skipped is not None:
            skipped.add_decode_failures(paths.tolist())
        return np.int64(len(paths))
    return record


def decode_stream(names, *, resolution, crop=None, channels=3, jpeg_only=False,
                  deterministic=False, skipped=None, chunk=CHUNK):
    """``names`` of ``(path, *extras)`` (or bare paths) -> ``(uint8 image, *extras)`` (or images).

    Files whose decoder fails are left out and recorded in ``skipped`` (a
    `pipelines.skipped.SkippedFiles`, or None to only drop them).
    ``crop``, ``channels``, ``jpeg_only``: as in `decode_crop_resize`.
    """
    resolution = check_resolution(resolution)
    crop = check_crop(crop)
    bare = not isinstance(names.element_spec, tuple)
    if bare:
        names = names.map(lambda path: (path,))
    extra_specs = names.element_spec[1:]
    fixed = isinstance(crop, CropBox)
    if fixed:  # decode + crop per file, one batched resize per chunk
        decoded_shape = [crop.height, crop.width, channels]

        def decode(data):
            return tf.ensure_shape(decode_crop(data, crop, channels, jpeg_only=jpeg_only),
                                   decoded_shape)
    else:
        decoded_shape = [resolution, resolution, channels]

        def decode(data):
            return decode_crop_resize(data, resolution, crop, channels, jpeg_only=jpeg_only)
    empty = (tf.zeros([0] + decoded_shape, tf.uint8), tf.zeros([0], tf.int32)) + tuple(
        tf.zeros([0] + spec.shape.as_list(), spec.dtype) for spec in extra_specs)
    record = _recorder(skipped)

    def one_chunk(paths, *extras):
        n = tf.shape(paths)[0]

        def load(path, position, *rest):
            return (decode(tf.io.read_file(path)), position) + rest

        survivors = tf.data.Dataset.from_tensor_slices(
            (paths, tf.range(n)) + extras).map(load).ignore_errors().batch(chunk)
        # Exactly one batch, empty when every file of the chunk failed.
        survivors = survivors.concatenate(tf.data.Dataset.from_tensors(empty)).take(1)

        def finish(images, positions, *rest):
            lost = tf.sparse.to_dense(tf.sets.difference(tf.range(n)[None], positions[None]))[0]
            recorded = tf.cond(
                tf.size(lost) > 0,
                lambda: tf.numpy_function(record, [tf.gather(paths, lost)], tf.int64,
                                          stateful=True),
                lambda: tf.constant(0, tf.int64))
            with tf.control_dependencies([recorded]):
                if fixed:
                    images = round_to_uint8(resize_fixed(images, (crop.height, crop.width),
                                                         resolution))
                else:
                    images = tf.identity(images)
            images.set_shape([None, resolution, resolution, channels])
            return (images,) + rest

        return survivors.map(finish).unbatch()

    ds = names.batch(chunk).interleave(
        one_chunk, cycle_length=tf.data.AUTOTUNE, block_length=chunk,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return ds.map(lambda image: image) if bare else ds
