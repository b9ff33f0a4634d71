"""Any folder of JPEG/PNG images (the user's own data set) as a batched tf.data pipeline."""
import os

import numpy as np
import tensorflow as tf

from pipelines.common import check_batch_size, check_shard, check_skip, finish, with_options
from pipelines.decode_files import decode_stream
from pipelines.image_files import check_image_sizes, find_images
from pipelines.images import check_crop, check_resolution, to_unit_range

__all__ = ["image_folder", "stream_image_files", "check_cache", "SHUFFLE_BUFFER"]

# Decoded uint8 images held for shuffling after a cache: 2,048 x 64x64x3 bytes = 25 MB.
SHUFFLE_BUFFER = 2048


def check_cache(cache):
    """``None`` (no cache), ``"memory"`` or a file path prefix for `tf.data.Dataset.cache`."""
    if cache is None or cache is False:
        return None
    if not isinstance(cache, (str, os.PathLike)) or not str(cache):
        raise ValueError(f"cache must be None, 'memory' or a file path, got {cache!r}.")
    cache = str(cache)
    if cache != "memory":
        parent = os.path.dirname(os.path.abspath(os.path.expanduser(cache)))
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"cache path {cache!r}: folder {parent!r} does not exist.")
    return cache


def _apply_cache(ds, cache):
    if cache is None:
        return ds
    return ds.cache() if cache == "memory" else ds.cache(os.path.expanduser(cache))


def stream_image_files(paths, *, resolution, batch_size, crop=None, channels=3, extras=None,
                       shuffle=True, repeat=True, cache=None, seed=None, deterministic=False,
                       shard=None, shuffle_buffer=SHUFFLE_BUFFER, jpeg_only=False,
                       skip_batches=0, skipped=None, threads="auto"):
    """Batches of images decoded from ``paths`` (already screened), with ``extras`` rows alongside.

    Order of work: file names are sharded and shuffled (a full shuffle of the
    names is cheap), then read + decoded + cropped in a parallel map and
    resized per batch (`pipelines.decode_files.decode_stream`); files that fail to
    decode are left out and recorded in ``skipped`` (a
    `pipelines.skipped.SkippedFiles`, optional); batches are converted to
    float32 [-1, 1]. With ``cache`` the decoded uint8 images are cached in
    a fixed (seeded random) order and shuffled afterwards with a buffer of
    ``shuffle_buffer`` images. Memory is independent of the number of files
    apart from the list of names (and the cache, when asked for).

    ``extras``: optional array with one row per path (e.g. attributes);
    batches are then ``(images, float32 extras)``. ``jpeg_only``: the screen
    found only JPEGs, so the decoder needs no format test. ``skip_batches``
    starts the stream that many batches in: without a cache the skipped
    file names are never read (a resumed run starts at once); with a cache
    the skipped batches are read from it.

    ``threads``: the pipeline's thread pool, see `pipelines.common.with_options`
    (``"auto"``: a private pool of usable CPUs + 1 with single-threaded ops;
    ``None``: tf.data's defaults).
    """
    batch_size = check_batch_size(batch_size)
    resolution = check_resolution(resolution)
    cache = check_cache(cache)
    shard = check_shard(shard)
    skip_batches = check_skip(skip_batches)
    if deterministic and seed is None:
        seed = 0
    paths = np.asarray([os.fspath(p) for p in paths], dtype=object)
    if extras is not None:
        extras = np.asarray(extras)
        if len(extras) != len(paths):
            raise ValueError(f"extras has {len(extras)} rows for {len(paths)} files.")
    if shard is not None:
        paths = paths[shard[1]::shard[0]]
        extras = None if extras is None else extras[shard[1]::shard[0]]
    if len(paths) == 0:
        raise ValueError(f"No files left for shard {shard}.")
    if shuffle and cache is not None:
        order = np.random.default_rng(seed).permutation(len(paths))
        paths = paths[order]
        extras = None if extras is None else extras[order]

    names = tf.data.Dataset.from_tensor_slices(
        paths.astype(str) if extras is None else (paths.astype(str), extras))
    shuffle_names = shuffle and cache is None
    if shuffle_names:
        names = names.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            names = names.repeat()
            if skip_batches:  # skip names, not decoded images (exact unless a file fails)
                names = names.skip(skip_batches * batch_size)
            skip_batches = 0

    def normalize(images, *rest):
        if rest:
            return to_unit_range(images), tf.cast(rest[0], tf.float32)
        return to_unit_range(images)

    shuffle_images, repeat_images = shuffle and not shuffle_names, repeat and not shuffle_names
    decode = dict(resolution=resolution, crop=crop, channels=channels, jpeg_only=jpeg_only,
                  deterministic=deterministic, skipped=skipped)
    if cache is None and not shuffle_images and not repeat_images:
        # Nothing happens per image after decoding: the decoder's batches are the batches.
        ds = decode_stream(names, batch_size=batch_size, **decode)
        if skip_batches:
            ds = ds.skip(skip_batches)
        ds = ds.map(normalize, num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=deterministic).prefetch(tf.data.AUTOTUNE)
    else:
        ds = _apply_cache(decode_stream(names, **decode), cache)
        ds = finish(ds, batch_size, shuffle=shuffle_images, repeat=repeat_images, seed=seed,
                    buffer_size=shuffle_buffer, batch_map=normalize,
                    deterministic=deterministic, skip_batches=skip_batches)
    policy = (tf.data.experimental.AutoShardPolicy.OFF if shard is not None
              else tf.data.experimental.AutoShardPolicy.DATA)
    return with_options(ds, deterministic=deterministic, auto_shard=policy, threads=threads)


def image_folder(path_or_glob, *, resolution, batch_size, channels=3, crop=None, shuffle=True,
                 repeat=True, cache=None, seed=None, deterministic=False, shard=None,
                 recursive=True, shuffle_buffer=SHUFFLE_BUFFER, skip_batches=0, skipped=None,
                 threads="auto"):
    """float32 batches ``(B, resolution, resolution, channels)`` in [-1, 1] from image files.

    ``path_or_glob``: a folder (searched recursively unless ``recursive=False``;
    hidden files skipped) or a glob pattern such as ``"photos/**/*.png"``.
    JPEG, PNG, GIF and BMP are read by content, whatever the extension;
    grayscale is converted to RGB and alpha dropped. ``crop``: ``None`` (whole
    image, squashed to a square), ``"center"`` (largest centred square) or
    ``(top, left, height, width)`` -- see `pipelines.images`.

    Bad files: every file is screened once when the pipeline is built (format
    signature + end marker, see `pipelines.image_files`), so non-images and
    truncated files are skipped and counted in ONE warning (once per process). A file that
    passes the screen but fails to decode is left out during training, so
    training never stops on a bad file. Both kinds are recorded in
    ``skipped``, a `pipelines.skipped.SkippedFiles`, when given (read its
    ``count`` at the end of a run). An empty
    folder or a pattern matching nothing raises `FileNotFoundError`; a
    folder without a single usable image raises `ValueError`. Images smaller than
    ``resolution`` are upscaled, with a warning (`pipelines.image_files.check_image_sizes`).

    ``batch_size`` is the GLOBAL batch; multi-worker input is auto-sharded by
    DATA, or explicitly with ``shard=(num_shards, index)`` (see
    `pipelines.common.sharded_input_fn`). ``deterministic=True`` keeps the
    element order fixed (ordered parallel maps, seed 0 unless ``seed``).
    ``skip_batches`` starts the stream that many batches in (see
    `stream_image_files`).

    ``threads``: the pipeline's thread pool, see `pipelines.common.with_options`
    (``"auto"``: a private pool of usable CPUs + 1 with single-threaded ops;
    ``None``: tf.data's defaults).
    """
    check_batch_size(batch_size)
    check_resolution(resolution)
    check_crop(crop)
    check_cache(cache)
    check_shard(shard)
    formats = set()
    paths = find_images(path_or_glob, recursive=recursive, formats=formats, skipped=skipped)
    check_image_sizes(paths, resolution, crop=crop, what=repr(str(path_or_glob)))
    return stream_image_files(paths, jpeg_only=formats == {"jpeg"}, skipped=skipped,
                              resolution=resolution,
                              batch_size=batch_size, crop=crop,
                              channels=channels, shuffle=shuffle, repeat=repeat, cache=cache,
                              seed=seed, deterministic=deterministic, shard=shard,
                              shuffle_buffer=shuffle_buffer, skip_batches=skip_batches,
                              threads=threads)
