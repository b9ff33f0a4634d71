"""Prepared TFRecord shards: write decoded, cropped, resized images once; stream them fast.

Each record is a `tf.train.Example` with

* ``image``: the resized uint8 pixels, as the raw ``height * width * channels``
  bytes in HWC order (``format=b"raw"``, the default: read about twice as
  fast as PNG, 12 KB per image at 64x64, 2.5 GB for all of CelebA) or
  PNG-encoded (``format=b"png"``, lossless, smaller on disk);
* ``height``, ``width``, ``channels``: int64;
* ``filename``: the source file's base name;
* ``partition``: int64, CelebA's 0 = train, 1 = validation, 2 = test, -1 unknown;
* ``attributes``: 40 int64 values 0/1 (CelebA order), only when known.

Shards are named ``{prefix}-00000-of-00016.tfrecord``; the images are
written in a seeded random order, round robin over the shards, so every
shard is a random sample and reading them interleaved is well mixed.
"""
import glob
import logging
import os
import time

import numpy as np
import tensorflow as tf

from pipelines.celeba_files import SPLITS, celeba_crop, celeba_folder_files
from pipelines.common import (check_batch_size, check_shard, finish, num_workers, with_options)
from pipelines.decode_files import decode_stream
from pipelines.image_files import has_glob_chars
from pipelines.image_folder import SHUFFLE_BUFFER, _apply_cache, check_cache
from pipelines.images import check_resolution, to_unit_range

__all__ = ["write_shards", "write_records", "read_tfrecords", "peek_record", "SPLITS",
           "RECORDS_PER_SHARD"]

_log = logging.getLogger(__name__)

RECORDS_PER_SHARD = 4096
_PARSE_BLOCK = 128  # records parsed per call; a damaged record drops its whole block
_FORMATS = ("png", "raw")


def _bytes(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def write_records(examples, out_dir, *, num_shards, prefix="images", progress=None, total=None):
    """Write ``examples`` round robin into ``num_shards`` files; returns the list of paths.

    ``examples`` yields dicts with ``image`` (encoded bytes), ``format``,
    ``height``, ``width``, ``channels``, ``filename``, ``partition`` and
    optionally ``attributes``. ``progress(done, total)`` is called now and then.
    """
    if int(num_shards) != num_shards or num_shards < 1:
        raise ValueError(f"num_shards must be a positive integer, got {num_shards!r}.")
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, f"{prefix}-{i:05d}-of-{num_shards:05d}.tfrecord")
             for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    done, last = 0, 0.0
    try:
        for ex in examples:
            feature = {
                "image": _bytes(ex["image"]),
                "format": _bytes(ex["format"]),
                "height": _ints([ex["height"]]),
                "width": _ints([ex["width"]]),
                "channels": _ints([ex["channels"]]),
                "filename": _bytes(ex["filename"]),
                "partition": _ints([ex.get("partition", -1)]),
            }
            if ex.get("attributes") is not None:
                feature["attributes"] = _ints(ex["attributes"])
            record = tf.train.Example(features=tf.train.Features(feature=feature))
            writers[done % num_shards].write(record.SerializeToString())
            done += 1
            if progress is not None and time.monotonic() - last > 0.5:
                progress(done, total)
                last = time.monotonic()
    finally:
        for w in writers:
            w.close()
    if progress is not None:
        progress(done, total)
    return paths


def write_shards(source, out_dir, *, resolution=64, crop=108, num_shards=None, split="all",
                 image_format="raw", prefix="celeba", seed=0, progress=None):
    """Decode, crop and resize the images of ``source`` once, into TFRecord shards in ``out_dir``.

    ``source``: a CelebA folder (see `pipelines.celeba`; attributes and
    partitions are stored when their files are present) or any folder of
    images. ``crop``: as in `pipelines.celeba` (an int is the CelebA face
    box of that size). ``num_shards`` defaults to one per
    `RECORDS_PER_SHARD` images. Bad files are skipped and counted as in the
    streaming pipelines. Returns ``{"files": [...], "images": n, "skipped": k}``.
    """
    resolution = check_resolution(resolution)
    if image_format not in _FORMATS:
        raise ValueError(f"image_format must be one of {_FORMATS}, got {image_format!r}.")
    files = celeba_folder_files(source, split=split, labels=False)
    crop = celeba_crop(crop, files.image_size)
    n = len(files.paths)
    if num_shards is None:
        num_shards = max(1, -(-n // RECORDS_PER_SHARD))
    num_shards = min(int(num_shards), n)
    order = np.random.default_rng(seed).permutation(n)
    paths = np.asarray(files.paths, dtype=object)[order].astype(str)
    partitions = np.asarray(files.partitions, np.int64)[order]
    has_attrs = files.attributes is not None
    columns = (paths, paths, partitions) + ((files.attributes[order],) if has_attrs else ())

    def encode(image, path, partition, *attributes):
        data = tf.io.encode_png(image) if image_format == "png" else image
        return (data, tf.strings.split(path, os.sep)[-1], partition) + attributes

    # The streaming pipelines' decoder, so that records hold exactly their pixels.
    ds = decode_stream(tf.data.Dataset.from_tensor_slices(columns), resolution=resolution,
                       crop=crop, jpeg_only=files.formats == {"jpeg"}, deterministic=True)
    ds = ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def examples():
        for data, name, partition, *attributes in ds.as_numpy_iterator():
            yield {"image": data if image_format == "png" else data.tobytes(),
                   "format": image_format.encode(), "height": resolution, "width": resolution,
                   "channels": 3, "filename": name, "partition": partition,
                   "attributes": attributes[0] if has_attrs else None}

    count = [0]

    def counted():
        for ex in examples():
            count[0] += 1
            yield ex

    out = write_records(counted(), out_dir, num_shards=num_shards, prefix=prefix,
                        progress=progress, total=n)
    skipped = len(files.skipped) + (n - count[0])
    _log.info("Wrote %d images (%dx%d, %s) into %d shards in %s; skipped %d bad files.",
              count[0], resolution, resolution, image_format, len(out), out_dir, skipped)
    return {"files": out, "images": count[0], "skipped": skipped}


def _tfrecord_files(pattern):
    pattern = os.path.expanduser(str(pattern))
    if os.path.isdir(pattern):
        pattern = os.path.join(pattern, "*.tfrecord")
    files = sorted(glob.glob(pattern)) if has_glob_chars(pattern) else (
        [pattern] if os.path.isfile(pattern) else [])
    if not files:
        raise FileNotFoundError(f"No TFRecord files match {pattern!r}; create them with "
                                "`python -m pipelines.prepare --source=FOLDER --out=DIR`.")
    return files


def peek_record(files):
    """The first record of the first non-empty file, as a `tf.train.Example`."""
    for path in files:
        for raw in tf.data.TFRecordDataset(path).take(1):
            return tf.train.Example.FromString(raw.numpy())
    raise ValueError(f"The TFRecord files {files[:3]}... hold no records.")


def read_tfrecords(pattern, *, split="all", resolution=64, batch_size=64, labels=False,
                   shuffle=True, repeat=True, cache=None, seed=None, deterministic=False,
                   shard=None, shuffle_buffer=SHUFFLE_BUFFER, skip_batches=0, threads="auto"):
    """Batches from prepared shards: float32 images in [-1, 1] (and float32 0/1 attributes).

    ``pattern``: a glob (``"DIR/*.tfrecord"``), one file, or a folder holding
    ``*.tfrecord``. ``split`` filters on the stored CelebA partition
    (``"all"`` keeps everything). Images stored at another size are resized
    (antialiased) to ``resolution``. Shards are read interleaved in parallel;
    with ``shard=(n, i)`` worker ``i`` reads every n-th file (every n-th
    record when there are fewer files than workers), otherwise multi-worker
    runs auto-shard by FILE when there are at least as many files as workers.

    ``threads``: the pipeline's thread pool, see `pipelines.common.with_options`
    (``"auto"``: a private pool of usable CPUs + 1 with single-threaded ops;
    ``None``: tf.data's defaults).
    """
    batch_size = check_batch_size(batch_size)
    resolution = check_resolution(resolution)
    cache = check_cache(cache)
    shard = check_shard(shard)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}.")
    if deterministic and seed is None:
        seed = 0
    files = _tfrecord_files(pattern)
    first = peek_record(files).features.feature
    stored = int(first["height"].int64_list.value[0])
    channels = int(first["channels"].int64_list.value[0])
    image_format = first["format"].bytes_list.value[0].decode()
    if split != "all" and first["partition"].int64_list.value[0] < 0:
        raise ValueError(f"The records in {pattern!r} carry no CelebA partition (the source had "
                         f"no list_eval_partition.txt); use split='all' instead of {split!r}.")
    if labels and "attributes" not in first:
        raise ValueError(f"labels=True but the records in {pattern!r} hold no attributes (the "
                         "source had no list_attr_celeba.txt).")
    if stored != resolution:
        _log.info("Records in %s hold %dx%d images; resizing them to %dx%d on the fly.",
                  pattern, stored, stored, resolution, resolution)

    record_shard = None
    if shard is not None and len(files) >= shard[0]:
        files = files[shard[1]::shard[0]]
    else:
        record_shard = shard
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle and cache is None:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20),
                       cycle_length=min(len(files), 8), block_length=1,
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if record_shard is not None:
        ds = ds.shard(*record_shard)

    spec = {"image": tf.io.FixedLenFeature([], tf.string),
            "partition": tf.io.FixedLenFeature([], tf.int64, default_value=-1)}
    if labels:
        spec["attributes"] = tf.io.FixedLenFeature([40], tf.int64)
    wanted = SPLITS[split]

    def parse(serialized):
        # Vectorized over a block of records: one parse_example call, and for raw
        # pixels one decode_raw, instead of one function call per image.
        ex = tf.io.parse_example(serialized, spec)
        if image_format == "png":
            images = tf.map_fn(lambda d: tf.io.decode_png(d, channels=channels), ex["image"],
                               fn_output_signature=tf.TensorSpec([stored, stored, channels],
                                                                 tf.uint8))
        else:
            images = tf.reshape(tf.io.decode_raw(ex["image"], tf.uint8),
                                [-1, stored, stored, channels])
        if stored != resolution:
            images = tf.image.resize(images, [resolution, resolution], antialias=True)
            images = tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)
        out = (images, tf.cast(ex["attributes"], tf.uint8)) if labels else images
        return out, ex["partition"]

    ds = ds.batch(_PARSE_BLOCK).map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                                    deterministic=deterministic)
    ds = ds.ignore_errors().unbatch()
    if wanted is not None:
        ds = ds.filter(lambda _, partition: tf.equal(partition, wanted))
    ds = ds.map(lambda element, _: element)
    ds = _apply_cache(ds, cache)

    def normalize(images, *rest):
        if rest:
            return to_unit_range(images), tf.cast(rest[0], tf.float32)
        return to_unit_range(images)

    ds = finish(ds, batch_size, shuffle=shuffle, repeat=repeat, seed=seed,
                buffer_size=shuffle_buffer, batch_map=normalize, deterministic=deterministic,
                skip_batches=skip_batches)
    if shard is not None:
        policy = tf.data.experimental.AutoShardPolicy.OFF
    elif len(files) >= num_workers():
        policy = tf.data.experimental.AutoShardPolicy.FILE
    else:
        policy = tf.data.experimental.AutoShardPolicy.DATA
    return with_options(ds, deterministic=deterministic, auto_shard=policy, threads=threads)
