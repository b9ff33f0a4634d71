"""CelebA's folder layout: attribute and partition lists, the face crop, the split table.

Shared by the streaming pipeline (`pipelines.celeba`) and the TFRecord writer
and reader (`pipelines.tfrecords`), which therefore do not import each other.
See `pipelines.celeba` for the layout and the face crop.
"""
import collections
import csv
import logging
import os

import numpy as np
import tensorflow as tf

from pipelines.image_files import list_files, screen_images
from pipelines.images import CropBox, check_crop

__all__ = ["celeba_crop", "celeba_folder_files", "face_box", "read_attributes",
           "read_partitions", "ATTRIBUTES", "IMAGE_SIZE", "FACE_CENTER", "DEFAULT_CROP",
           "SPLITS", "FolderFiles", "folder_layout"]

# CelebA's list_eval_partition values; "all" takes every image.
SPLITS = {"train": 0, "validation": 1, "test": 2, "all": None}

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


def folder_layout(folder):
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
    ``(path, reason)`` pairs of the files screened out. ``split="all"`` takes every file in the image folder.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}.")
    image_dir, attr_path, partition_path = folder_layout(folder)
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
                       bad, formats)
