"""The data sources the launchers know, one registry entry each.

A `DataSource` knows the shape of its examples, its labels (none, class ids
or binary attributes), what ``--data_dir`` must name, its extra flag checks,
and how to build its training dataset. Adding a source is one `register`
call; `launch.config` reads the flag choices from `names()`.

Importing this module is cheap (no TensorFlow): pipelines are imported when
a dataset is built.
"""
import math

from launch.registry import Registry

__all__ = ["DataSource", "register", "get", "names", "SOURCES"]


class DataSource:
    """One data source.

    Attributes:
      name: the ``--data_source`` value.
      description: one line for ``--help``.
      shape: ``shape(fv) -> tuple``, the shape of one example.
      dataset: ``dataset(fv, start_step, labels) -> tf.data.Dataset`` of global
        batches from the batch of ``start_step`` on; ``(images, labels)`` pairs
        when ``labels``. A source that ``reads_files`` also takes
        ``skipped=``, a `pipelines.skipped.SkippedFiles` recording the files
        it leaves out.
      num_classes: classes (class ids) or binary attributes (``multilabel``) of
        the labels it can yield; None when it has no labels.
      data_dir: what ``--data_dir`` must name, or None when it is not needed.
      face_crop: the ``--crop`` flag takes a CelebA face box size.
      check: ``check(fv) -> None``, extra flag checks (raise ValueError).
      arrays: ``arrays() -> (data, labels)`` for sources held in memory, else None.
      reads_files: the source decodes image files (and can report skipped ones).
      shards: ``dataset`` also takes ``batch_size=`` (instead of ``--batch_size``)
        and ``shard=(num_shards, index)``, and then reads and decodes only that
        share of the files or records: a multi-worker run gives each worker its
        own (`launch.builders.build_dataset`).
    """

    def __init__(self, name, description, shape, dataset, *, num_classes=None,
                 multilabel=False, data_dir=None, face_crop=False, check=None, arrays=None,
                 reads_files=False, shards=False):
        self.name = name
        self.description = description
        self.shape = shape
        self.dataset = dataset
        self.num_classes = num_classes
        self.multilabel = bool(multilabel)
        self.data_dir = data_dir
        self.face_crop = face_crop
        self.check = check or (lambda fv: None)
        self.arrays = arrays
        self.reads_files = bool(reads_files)
        self.shards = bool(shards)

    @property
    def has_labels(self):
        return self.num_classes is not None

    def is_vector(self, fv):
        return len(self.shape(fv)) == 1

    def real_data(self, fv, num=None, labels=True):
        """``(data, labels)``: real examples of the source (all of an in-memory one, else
        ``num`` from the training pipeline); labels None when the source has none."""
        if self.arrays is not None:
            data, targets = self.arrays()
            return data, (targets if labels and self.has_labels else None)
        if num is None:
            raise ValueError(f"--data_source={self.name} needs a number of real examples")
        import numpy as np

        with_labels = labels and self.has_labels
        dataset = self.dataset(fv, 0, with_labels)
        data, targets = [], []
        for batch in dataset.take(math.ceil(num / fv.batch_size)):
            if with_labels:
                data.append(np.asarray(batch[0]))
                targets.append(np.asarray(batch[1]))
            else:
                data.append(np.asarray(batch))
        data = np.concatenate(data)[:num].astype(np.float32)
        if not with_labels:
            return data, None
        targets = np.concatenate(targets)[:num]
        return data, targets.astype(np.float32 if self.multilabel else np.int64)


_REGISTRY = Registry("data source", "data_source")
SOURCES = _REGISTRY.entries
register, names, get = _REGISTRY.register, _REGISTRY.names, _REGISTRY.get


# ------------------------------------------------------------------ the sources
def _determinism(fv):
    return dict(deterministic=True) if fv.deterministic else {}


def crop_spec(fv):
    """The --crop flag as the pipelines' crop argument."""
    crop = fv.crop.strip().lower()
    if crop == "auto":
        crop = "108" if get(fv.data_source).face_crop else "center"
    return None if crop == "none" else crop if crop == "center" else int(crop)


def _digits(fv, start, labels):
    import pipelines

    return pipelines.digits(fv.batch_size, labels=labels, seed=fv.seed, skip_batches=start)


def _digits_arrays():
    import pipelines

    return pipelines.digits_arrays()


def _check_digits(fv):
    if fv.resolution != 8:
        raise ValueError(f"--resolution={fv.resolution} is invalid for --data_source=digits: "
                         f"the digits are 8x8, use --resolution=8.")


def _mnist(fv, start, labels, download=False):
    import pipelines

    try:  # no download by default: without network it hangs in retries for minutes
        return pipelines.mnist(fv.batch_size, split=fv.split, data_dir=fv.data_dir,
                               labels=labels, seed=fv.seed, download=download,
                               skip_batches=start)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{exc} Then pass --data_dir=DIR; or train on MNIST as PNG files with "
            f"--data_source=image_folder --data_dir=FOLDER --channels=1 "
            f"--resolution=32.") from exc


def _celeba(source):
    def build(fv, start, labels, skipped=None, batch_size=None, shard=None):
        import pipelines

        path = "tfds" if source == "tfds" else fv.data_dir
        return pipelines.celeba(path, split=fv.split, resolution=fv.resolution,
                                batch_size=batch_size or fv.batch_size, crop=crop_spec(fv),
                                labels=labels,
                                data_dir=fv.data_dir if source == "tfds" else None,
                                seed=fv.seed, skip_batches=start, skipped=skipped, shard=shard,
                                **_determinism(fv))
    return build


def _image_folder(fv, start, labels, skipped=None, batch_size=None, shard=None):
    import pipelines

    return pipelines.image_folder(fv.data_dir, resolution=fv.resolution,
                                  batch_size=batch_size or fv.batch_size, channels=fv.channels,
                                  crop=crop_spec(fv), seed=fv.seed, skip_batches=start,
                                  skipped=skipped, shard=shard, **_determinism(fv))


def _check_image_folder(fv):
    if fv.channels not in (1, 3):
        raise ValueError(f"--channels={fv.channels} is invalid: use 1 or 3.")


def _stacked_digits(fv, start, labels):
    import pipelines

    return pipelines.stacked_digits(fv.batch_size, fv.resolution, seed=fv.seed,
                                    skip_batches=start)


def _check_stacked_digits(fv):
    if fv.resolution < 8:
        raise ValueError(f"--resolution={fv.resolution} is invalid for "
                         f"--data_source=stacked_digits: the digits are upsampled from 8x8, "
                         f"use 8 or more (e.g. 32).")


def _gaussian(fv, start, labels):
    import pipelines

    return pipelines.gaussian(fv.batch_size, mean=fv.gaussian_mean, std=fv.gaussian_std,
                              size=fv.gaussian_size, seed=fv.seed, skip_batches=start)


CELEBA_ATTRIBUTES = 40

register(DataSource(
    "digits", "scikit-learn's 1,797 real 8x8 handwritten digits (built in), 10 classes",
    lambda fv: (8, 8, 1), _digits, num_classes=10, check=_check_digits,
    arrays=_digits_arrays))
register(DataSource(
    "stacked_digits", "three independent scikit-learn digits as the R, G, B channels of "
    "one --resolution image (1,000 equally likely modes; built in, Stacked MNIST's protocol)",
    lambda fv: (fv.resolution, fv.resolution, 3), _stacked_digits,
    check=_check_stacked_digits))
register(DataSource(
    "gaussian", "1-D Gaussian toy data: vectors of --gaussian_size draws",
    lambda fv: (fv.gaussian_size,), _gaussian))
register(DataSource(
    "mnist", "MNIST 28x28 from TFDS (prepared in --data_dir), 10 classes",
    lambda fv: (28, 28, 1), _mnist, num_classes=10))
register(DataSource(
    "celeba", "CelebA from its folder or prepared TFRecords, 40 binary attributes",
    lambda fv: (fv.resolution, fv.resolution, 3), _celeba("folder"),
    num_classes=CELEBA_ATTRIBUTES, multilabel=True, face_crop=True, reads_files=True,
    shards=True,
    data_dir="the CelebA folder (img_align_celeba/ with the attribute and partition lists) "
             "or prepared TFRecords (a folder of *.tfrecord or a glob pattern)"))
register(DataSource(
    "celeba_tfds", "CelebA from TFDS (prepared in --data_dir), 40 binary attributes",
    lambda fv: (fv.resolution, fv.resolution, 3), _celeba("tfds"),
    num_classes=CELEBA_ATTRIBUTES, multilabel=True, face_crop=True, shards=True))
register(DataSource(
    "image_folder", "a folder (or glob) of JPEG/PNG images, no labels",
    lambda fv: (fv.resolution, fv.resolution, fv.channels), _image_folder,
    data_dir="a folder (or glob pattern) of JPEG/PNG images", check=_check_image_folder,
    reads_files=True, shards=True))
