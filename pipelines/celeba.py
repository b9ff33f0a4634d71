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
import collections
import csv
import logging
import os

import numpy as np
import tensorflow as tf

from pipelines.common import check_batch_size, check_shard, finish, with_options
from pipelines.image_files import has_glob_chars, list_files, screen_images
from pipelines.image_folder import SHUFFLE_BUFFER, _apply_cache, check_cache, stream_image_files
from pipelines.images import CropBox, check_crop, check_resolution, decode_crop_resize, to_unit_range
from pipelines.tfrecords import SPLITS, read_tfrecords

__all__ = ["celeba", "celeba_crop", "celeba_folder_files", "face_box", "read_attributes",
           "read_partitions", "ATTRIBUTES", "IMAGE_SIZE", "FACE_CENTER", "DEFAULT_CROP"]

_log = logging.getLogger(__name__)

IMAGE_SIZE = (218, 178)  # (height, width) of the aligned images
FACE_CENTER = (121, 89)  # (y, x)
DEFAULT_CROP = 108

ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young")

_ATTR_FILES = ("list_attr_celeba.txt", "list_attr_celeba.csv")
_PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")

FolderFiles = collections.namedtuple(
    "FolderFiles", ["paths", "partitions", "attributes", "image_size", "skipped", "formats"])


def face_box(size=DEFAULT_CROP, center=FACE_CENTER, image_size=IMAGE_SIZE):
    """The ``size`` x ``size`` `CropBox` centred at ``center`` ``(y, x)``; must fit the image."""
    if int(size) != size or size < 1:
        raise ValueError(f"crop size must be a positive integer, got {size!r}.")
    size = int(size)
    box = CropBox(center[0] - size // 2, center[1] - size // 2, size, size)
    if (box.top < 0 or box.left < 0 or box.top + size > image_size[0]
            or box.left + size > image_size[1]):
        raise ValueError(f"a {size}x{size} crop centred at (y={center[0]}, x={center[1]}) does "
                         f"not fit in a {image_size[0]}x{image_size[1]} (HxW) image; the largest "
                         f"is {2 * min(center[0], center[1], image_size[0] - center[0], image_size[1] - center[1])}.")
    return box


def celeba_crop(crop, image_size=IMAGE_SIZE):
    """An int (face box of that side), ``None``, ``"center"`` or a box, as a checked crop spec."""
    if isinstance(crop, str) and crop.strip().isdigit():
        crop = int(crop)
    if isinstance(crop, (int, np.integer)) and not isinstance(crop, bool):
        return face_box(int(crop), image_size=tuple(image_size or IMAGE_SIZE))
    return check_crop(crop, image_size)


def _read_rows(path):
    """Rows of whitespace- or comma-separated fields (CelebA .txt or Kaggle .csv)."""
    with open(path, newline="") as f:
        if path.endswith(".csv"):
            return [row for row in csv.reader(f) if row]
        return [line.split() for line in f if line.strip()]


def read_attributes(path):
    """``{file name: uint8 array of 40 values 0/1}`` in `ATTRIBUTES` order, from -1/1 lists."""
    rows = _read_rows(path)
    if path.endswith(".csv"):
        names, body = rows[0][1:], rows[1:]
    else:
        names, body = rows[1], rows[2:]
    if sorted(names) != sorted(ATTRIBUTES):
        raise ValueError(f"{path}: expected the 40 CelebA attribute names, got {names[:5]}...")
    columns = [names.index(a) for a in ATTRIBUTES]
    table = {}
    for row in body:
        values = np.asarray(row[1:], dtype=np.int64)
        if len(values) != len(names):
            raise ValueError(f"{path}: row for {row[0]} has {len(values)} values, expected "
                             f"{len(names)}.")
        table[row[0]] = (values[columns] > 0).astype(np.uint8)
    return table


def read_partitions(path):
    """``{file name: 0 | 1 | 2}`` (train, validation, test)."""
    rows = _read_rows(path)
    if path.endswith(".csv"):
        rows = rows[1:]
    return {row[0]: int(row[1]) for row in rows}


def _layout(folder):
    """``(image folder, attribute file or None, partition file or None)``."""
    folder = os.path.expanduser(str(folder))
    image_dir = folder
    for sub in (("img_align_celeba", "img_align_celeba"), ("img_align_celeba",)):
        if os.path.isdir(os.path.join(folder, *sub)):
            image_dir = os.path.join(folder, *sub)
            break
    candidates = [image_dir, os.path.dirname(image_dir), folder, os.path.dirname(folder)]

    def find(names):
        for d in candidates:
            for n in names:
                if os.path.isfile(os.path.join(d, n)):
                    return os.path.join(d, n)
        return None

    return image_dir, find(_ATTR_FILES), find(_PARTITION_FILES)


def _image_size(path):
    data = tf.io.read_file(path)
    if data.numpy()[:3] == b"\xff\xd8\xff":
        return tuple(int(v) for v in tf.io.extract_jpeg_shape(data)[:2])
    return tuple(int(v) for v in tf.shape(tf.io.decode_image(data, expand_animations=False))[:2])


def celeba_folder_files(folder, *, split="train", labels=False):
    """The screened image files of a CelebA-style folder for ``split``, with their metadata.

    Returns ``FolderFiles(paths, partitions, attributes, image_size, skipped, formats)``:
    ``partitions`` per path (-1 without a partition file), ``attributes`` a
    uint8 ``(n, 40)`` array (or ``None`` without an attribute file),
    ``image_size`` ``(height, width)`` of the first image, ``skipped`` the
    number of bad files. ``split="all"`` takes every file in the image folder.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}.")
    image_dir, attr_path, partition_path = _layout(folder)
    meta_names = set(_ATTR_FILES + _PARTITION_FILES)
    files = [p for p in list_files(image_dir, recursive=False)
             if os.path.basename(p) not in meta_names]
    if not files:
        raise FileNotFoundError(f"No image files in {image_dir!r}.")
    partitions = read_partitions(partition_path) if partition_path else None
    if split != "all":
        if partitions is None:
            raise FileNotFoundError(
                f"split={split!r} needs list_eval_partition.txt beside {image_dir!r} (or in its "
                "parent folder); pass split='all' to use every image.")
        wanted = SPLITS[split]
        files = [p for p in files if partitions.get(os.path.basename(p)) == wanted]
        if not files:
            raise ValueError(f"No images of split {split!r} in {image_dir!r} according to "
                             f"{partition_path}.")
    if labels and attr_path is None:
        raise FileNotFoundError(f"labels=True needs list_attr_celeba.txt beside {image_dir!r} "
                                "(or in its parent folder).")
    formats = set()
    good, bad = screen_images(files, what=repr(image_dir), formats=formats)
    attributes = None
    if attr_path is not None:
        table = read_attributes(attr_path)
        missing = [p for p in good if os.path.basename(p) not in table]
        if missing and labels:
            _log.warning("Skipping %d images without a row in %s: %s.", len(missing), attr_path,
                         ", ".join(os.path.basename(p) for p in missing[:5]))
            good = [p for p in good if os.path.basename(p) in table]
        if not missing or labels:
            attributes = np.stack([table[os.path.basename(p)] for p in good]) if good else None
    if not good:
        raise ValueError(f"None of the {len(files)} files of split {split!r} in {image_dir!r} is "
                         "a usable image.")
    parts = [partitions.get(os.path.basename(p), -1) if partitions else -1 for p in good]
    return FolderFiles(good, np.asarray(parts, np.int64), attributes, _image_size(good[0]),
                       len(bad), formats)


def _source_kind(source):
    if str(source) == "tfds":
        return "tfds", None
    path = os.path.expanduser(str(source))
    if has_glob_chars(path) or path.endswith(".tfrecord"):
        return "tfrecord", path
    if os.path.isdir(path):
        image_dir = _layout(path)[0]
        has_images = image_dir != path or any(
            not n.endswith(".tfrecord") and not n.startswith(".") for n in os.listdir(path)
            if os.path.isfile(os.path.join(path, n)))
        if not has_images and any(n.endswith(".tfrecord") for n in os.listdir(path)):
            return "tfrecord", os.path.join(path, "*.tfrecord")
        return "folder", path
    raise FileNotFoundError(f"CelebA source {source!r} is not 'tfds', an existing folder or a "
                            "TFRecord pattern such as 'DIR/*.tfrecord'.")


def _from_tfds(*, split, data_dir, download, resolution, batch_size, labels, shuffle, repeat,
               cache, crop, seed, deterministic, shard, shuffle_buffer, skip_batches):
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
    return with_options(ds, deterministic=deterministic, auto_shard=policy)


def celeba(source, *, split="train", resolution=64, batch_size=64, labels=False, shuffle=True,
           repeat=True, cache=None, crop=DEFAULT_CROP, data_dir=None, download=False,
           deterministic=False, seed=None, shard=None, shuffle_buffer=SHUFFLE_BUFFER,
           skip_batches=0):
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
    trade-off of the header/end-marker screen.
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
                  shuffle_buffer=shuffle_buffer, skip_batches=skip_batches)
    if kind == "tfrecord":
        return read_tfrecords(path, split=split, labels=labels, **common)
    if kind == "tfds":
        return _from_tfds(split=split, data_dir=data_dir, download=download, labels=labels,
                          crop=celeba_crop(crop), **common)
    files = celeba_folder_files(path, split=split, labels=labels)
    return stream_image_files(files.paths, crop=celeba_crop(crop, files.image_size),
                              jpeg_only=files.formats == {"jpeg"},
                              extras=files.attributes if labels else None, **common)
