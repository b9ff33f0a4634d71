"""Decoding a stream of image files in parallel, counting the files that fail.

`decode_stream` turns a dataset of ``(path, *extras)`` into one of
``(uint8 image, *extras)`` (``resolution x resolution x channels``), the
same pixels as `pipelines.images.decode_crop_resize` (to float rounding of
the resize; tested within 1 of 255).

How it works, and why:

* One parallel map reads and decodes each file (a fixed crop box is cut
  inside the JPEG decoder, `tf.io.decode_and_crop_jpeg`, so only the box is
  decoded); `ignore_errors` drops the files whose decoder fails, so training
  never stops on a bad file.
* With a fixed crop box all crops have the same size, so the resize runs
  once per batch (64 images, or the caller's ``batch_size``) as two banded
  matrix products over the whole batch (`resize_fixed`) instead of one
  small op chain per image. Other crops (none, ``"center"`` of varying
  sizes) resize each image in the map.
* With ``batch_size`` the resized batches are returned as they are (a
  pipeline that neither caches nor shuffles images needs no per-image
  stream after decoding); without it they are split into images.
* The failures are counted without a `tf.Variable` and without a cost per
  file: the names are numbered as they enter the map, and two
  `tf.numpy_function` calls, one per 256 names and one per batch of
  decoded images (in sequential maps, so calls happen in stream order),
  tell a `_FailureWindow` which numbers went in and which came out. With
  ``deterministic`` (order kept) a number still missing when a later one
  came out is a failure; otherwise the map may reorder by the handful of
  elements it runs at once, so a number is a failure once numbers more than
  `REORDER_WINDOW` later came out: the count then lags the stream by at most
  that many names. At the end of a finite stream everything still missing
  is a failure. The failed paths go to
  `pipelines.skipped.SkippedFiles.add_decode_failures`.
"""
import threading

import numpy as np
import tensorflow as tf

from pipelines.common import check_batch_size
from pipelines.images import CropBox, check_crop, check_resolution, decode_crop, \
    decode_crop_resize, resize_fixed, round_to_uint8

__all__ = ["decode_stream", "REORDER_WINDOW"]

REORDER_WINDOW = 256  # names; far more than a parallel map holds in flight (plus one batch)
_NAME_BLOCK = 256  # names numbered per call
_BATCH = 64  # decoded images per batched resize and per check


class _FailureWindow:
    """Numbers in (with their paths), numbers out; the ones that never come out are failures."""

    def __init__(self, skipped, window=REORDER_WINDOW):
        self.skipped = skipped
        self.window = window
        self.pending = {}  # number -> path, in but not out yet
        self.newest_out = -1
        self.lock = threading.Lock()

    def went_in(self, numbers, paths):
        with self.lock:
            self.pending.update(zip(numbers.tolist(), paths.tolist()))
        return np.int64(len(numbers))

    def came_out(self, numbers, stream_ended):
        failed = []
        with self.lock:
            for n in numbers.tolist():
                self.pending.pop(n, None)
            if len(numbers):
                self.newest_out = max(self.newest_out, int(numbers.max()))
            limit = np.inf if stream_ended else self.newest_out - self.window
            failed = [n for n in self.pending if n < limit]
            failed = [self.pending.pop(n) for n in sorted(failed)]
        if failed:
            self.skipped.add_decode_failures(failed)
        return np.int64(len(failed))


def decode_stream(names, *, resolution, crop=None, channels=3, jpeg_only=False,
                  deterministic=False, skipped=None, batch_size=None):
    """``names`` of ``(path, *extras)`` (or bare paths) -> ``(uint8 image, *extras)`` (or images).

    Files whose decoder fails are left out and recorded in ``skipped`` (a
    `pipelines.skipped.SkippedFiles`, or None to only drop them).
    ``deterministic``: keep the names' order (minus the failures).
    ``crop``, ``channels``, ``jpeg_only``: as in `decode_crop_resize`.
    ``batch_size``: None for a stream of single images; an int for batches of
    exactly that many (``(B, ...)`` images and extras; a last, partial batch
    of a finite stream is dropped), which saves splitting the resized
    batches into images and batching them again.
    """
    resolution = check_resolution(resolution)
    crop = check_crop(crop)
    if batch_size is not None:
        batch_size = check_batch_size(batch_size)
    bare = not isinstance(names.element_spec, tuple)
    fixed = isinstance(crop, CropBox)
    window = None
    if skipped is not None:
        window = _FailureWindow(skipped, window=0 if deterministic else REORDER_WINDOW)

    if window is not None:
        def number(block, element):
            paths, extras = (element, ()) if bare else (element[0], tuple(element[1:]))
            numbers = block * _NAME_BLOCK + tf.range(tf.shape(paths, tf.int64)[0])
            noted = tf.numpy_function(window.went_in, [numbers, paths], tf.int64, stateful=True)
            with tf.control_dependencies([noted]):
                return (tf.identity(numbers), paths) + extras
        names = names.batch(_NAME_BLOCK).enumerate().map(number).unbatch()

    def load(*element):
        if window is not None:
            number, path, *extras = element
        else:  # no numbering: one map less per file
            (path, *extras), number = element, tf.constant(0, tf.int64)
        data = tf.io.read_file(path)
        if fixed:
            image = tf.ensure_shape(decode_crop(data, crop, channels, jpeg_only=jpeg_only),
                                    [crop.height, crop.width, channels])
        else:
            image = decode_crop_resize(data, resolution, crop, channels, jpeg_only=jpeg_only)
        return (image, number) + tuple(extras)

    ds = names.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.ignore_errors().batch(batch_size or _BATCH)
    if window is not None:  # one marker batch after the last: the stream ended
        ds = ds.map(lambda *batch: batch + (False,))
        marker = tuple(tf.zeros([0] + spec.shape.as_list()[1:], spec.dtype)
                       for spec in ds.element_spec[:-1]) + (True,)
        ds = ds.concatenate(tf.data.Dataset.from_tensors(marker))

    if window is not None:
        def check(images, numbers, *rest):
            *rest, ended = rest
            checked = tf.numpy_function(window.came_out, [numbers, ended], tf.int64,
                                        stateful=True)
            with tf.control_dependencies([checked]):
                return (tf.identity(images), numbers) + tuple(rest)
        ds = ds.map(check)  # sequential: the window sees the batches in stream order

    def finish(images, numbers, *rest):
        if fixed:
            images = round_to_uint8(resize_fixed(images, (crop.height, crop.width), resolution))
        images.set_shape([batch_size, resolution, resolution, channels])
        for extra in rest:  # after the filter below, batches are full: static batch size
            extra.set_shape(tf.TensorShape([batch_size]).concatenate(extra.shape[1:]))
        return images if bare else (images,) + tuple(rest)

    if batch_size is not None:  # full batches only (the marker and a last partial one go)
        ds = ds.filter(lambda images, *rest: tf.equal(tf.shape(images)[0], batch_size))
    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return ds if batch_size is not None else ds.unbatch()
