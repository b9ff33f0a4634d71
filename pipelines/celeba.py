"""CelebA faces (aligned 178x218 JPEGs, 40 binary attributes) from TFDS, a folder or TFRecords.

Folder layout, as CelebA distributes it::

    CELEBA/
      img_align_celeba/000001.jpg ... 202599.jpg   (178 wide x 218 high)
      list_attr_celeba.txt      line 1: image count; line 2: the 40 attribute
                                names; then "000001.jpg  -1  1 ..." (-1/1)
      list_eval_partition.txt   "000001.jpg 0" with 0 = train, 1 = validation,
                                2 = test

``source`` may be ``CELEBA`` or ``CELEBA/img_align_celeba`` (the text files
are looked for beside the images and in the parent folder); the Kaggle copy's
``img_align_celeba/img_align_celeba`` nesting and its ``.csv`` versions of the
two lists are accepted too.

The face crop: the aligned images put the face centre near ``(x=89,
y=121)``; the default crop is the 108x108 box centred there (rows 67-174,
columns 35-142), i.e. the face from eyebrows to chin, as in the DCGAN CelebA
setups. ``crop=140`` keeps hair and background; any int gives a square of
that side around the same centre.
"""
import os

import tensorflow as tf

from pipelines.celeba_files import (ATTRIBUTES, DEFAULT_CROP, FACE_CENTER, IMAGE_SIZE, SPLITS,
                                    celeba_crop, celeba_folder_files, face_box, folder_layout,
                                    read_attributes, read_partitions)
from pipelines.common import check_batch_size, check_shard, finish, with_options
from pipelines.image_files import has_glob_chars
from pipelines.image_folder import SHUFFLE_BUFFER, _apply_cache, check_cache, stream_image_files
from pipelines.images import check_resolution, decode_crop_resize, to_unit_range
from pipelines.tfrecords import read_tfrecords

__all__ = ["celeba", "celeba_crop", "celeba_folder_files", "face_box", "read_attributes",
           "read_partitions", "ATTRIBUTES", "IMAGE_SIZE", "FACE_CENTER", "DEFAULT_CROP"]

def _source_kind(source):
    if str(source) == "tfds":
        return "tfds", None
    path = os.path.expanduser(str(source))
    if has_glob_chars(path) or path.endswith(".tfrecord"):
        return "tfrecord", path
    if os.path.isdir(path):
        image_dir = folder_layout(path)[0]
        has_images = image_dir != path or any(
            not n.endswith(".tfrecord") and not n.startswith(".") for n in os.listdir(path)
            if os.path.isfile(os.path.join(path, n)))
        if not has_images and any(n.endswith(".tfrecord") for n in os.listdir(path)):
            return "tfrecord", os.path.join(path, "*.tfrecord")
        return "folder", path
    raise FileNotFoundError(f"CelebA source {source!r} is not 'tfds', an existing folder or a "
                            "TFRecord pattern such as 'DIR/*.tfrecord'.")


def _from_tfds(*, split, data_dir, download, resolution, batch_size, labels, shuffle, repeat,
               cache, crop, seed, deterministic, shard, shuffle_buffer, skip_batches, threads):
    import tensorflow_datasets as tfds  # heavy import, only for this source

    tfds_split = "train+validation+test" if split == "all" else split
    try:
        ds = tfds.load("celeb_a", split=tfds_split, data_dir=data_dir, download=download,
                       shuffle_files=shuffle and cache is None,
                       decoders={"image": tfds.decode.SkipDecoding()},
                       read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False))
    except (AssertionError, tfds.core.DatasetNotFoundError) as e:
        raise FileNotFoundError(
            f"TFDS celeb_a is not prepared in data_dir={data_dir!r} ({e}). Build it there with "
            "`tfds build celeb_a --data_dir=...` (it needs the CelebA files), or pass the CelebA "
            "folder as source.") from e
    if shard is not None:
        ds = ds.shard(*shard)

    def decode(example):
        image = decode_crop_resize(example["image"], resolution, crop)
        if labels:
            attrs = tf.stack([tf.cast(example["attributes"][a], tf.uint8) for a in ATTRIBUTES])
            return image, attrs
        return image

    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = _apply_cache(ds.ignore_errors(), cache)

    def normalize(images, *rest):
        return (to_unit_range(images), tf.cast(rest[0], tf.float32)) if rest else to_unit_range(images)

    ds = finish(ds, batch_size, shuffle=shuffle, repeat=repeat, seed=seed,
                buffer_size=shuffle_buffer, batch_map=normalize, deterministic=deterministic,
                skip_batches=skip_batches)
    policy = (tf.data.experimental.AutoShardPolicy.OFF if shard is not None
              else tf.data.experimental.AutoShardPolicy.DATA)
    return with_options(ds, deterministic=deterministic, auto_shard=policy, threads=threads)


def celeba(source, *, split="train", resolution=64, batch_size=64, labels=False, shuffle=True,
           repeat=True, cache=None, crop=DEFAULT_CROP, data_dir=None, download=False,
           deterministic=False, seed=None, shard=None, shuffle_buffer=SHUFFLE_BUFFER,
           skip_batches=0, skipped=None, threads="auto"):
    """CelebA as float32 batches ``(B, resolution, resolution, 3)`` in [-1, 1].

    With ``labels=True`` the batches are ``(images, attributes)``,
    ``attributes`` float32 ``(B, 40)`` holding 0.0/1.0 in `ATTRIBUTES` order
    (CelebA's -1 becomes 0).

    ``source``:

    * ``"tfds"`` -- TFDS ``celeb_a`` prepared in ``data_dir`` (no download
      unless ``download=True``; CelebA must be fetched by hand anyway);
    * a CelebA folder (layout in the module docstring); ``split`` needs
      ``list_eval_partition.txt`` unless ``"all"``; ``labels`` needs
      ``list_attr_celeba.txt``;
    * TFRecord shards from ``python -m pipelines.prepare``: a pattern such as
      ``"DIR/*.tfrecord"`` or the folder holding them (fastest; ``crop`` is
      ignored since the records are already cropped).

    ``split``: ``"train"``, ``"validation"``, ``"test"`` or ``"all"``.
    ``crop``: int (square of that side around the face, default 108),
    ``None``, ``"center"`` or ``(top, left, height, width)``; applied inside
    the JPEG decoder, then an antialiased resize to ``resolution``.
    ``cache``: ``None``, ``"memory"`` (about ``3 * resolution**2`` bytes per
    image: 2.5 GB for all of CelebA at 64) or a file path prefix; caches the
    decoded uint8 images.
    ``batch_size`` is the GLOBAL batch (``fit`` under a strategy splits it);
    multi-worker runs auto-shard (FILE for enough TFRecord files, else
    DATA), or shard explicitly with ``shard=(num_shards, index)`` via
    `pipelines.common.sharded_input_fn`. ``deterministic=True``: ordered
    parallel maps and seeded shuffles (seed 0 unless ``seed``).

    ``skip_batches`` starts the stream that many batches in, for a resumed
    run: a folder skips file names before reading them; TFRecords and TFDS
    read the skipped records again (TFRecords hold decoded pixels, so no
    JPEG is decoded for them).

    Bad files in a folder (truncated, not images) are skipped with one
    warning giving their count; see `pipelines.image_folder` for the
    trade-off of the header/end-marker screen. ``skipped``, a
    `pipelines.skipped.SkippedFiles`, records them and the files that fail
    to decode while streaming (folder source).

    ``threads``: the pipeline's thread pool, see `pipelines.common.with_options`
    (``"auto"``: a private pool of usable CPUs + 1 with single-threaded ops;
    ``None``: tf.data's defaults).
    """
    check_batch_size(batch_size)
    resolution = check_resolution(resolution)
    check_cache(cache)
    shard = check_shard(shard)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}.")
    if deterministic and seed is None:
        seed = 0
    kind, path = _source_kind(source)
    common = dict(resolution=resolution, batch_size=batch_size, shuffle=shuffle, repeat=repeat,
                  cache=cache, seed=seed, deterministic=deterministic, shard=shard,
                  shuffle_buffer=shuffle_buffer, skip_batches=skip_batches, threads=threads)
    if kind == "tfrecord":
        return read_tfrecords(path, split=split, labels=labels, **common)
    if kind == "tfds":
        return _from_tfds(split=split, data_dir=data_dir, download=download, labels=labels,
                          crop=celeba_crop(crop), **common)
    files = celeba_folder_files(path, split=split, labels=labels)
    if skipped is not None:
        skipped.add_listed(len(files.paths) + len(files.skipped))
        skipped.add_screened(files.skipped)
    return stream_image_files(files.paths, crop=celeba_crop(crop, files.image_size),
                              jpeg_only=files.formats == {"jpeg"}, skipped=skipped,
                              extras=files.attributes if labels else None, **common)
