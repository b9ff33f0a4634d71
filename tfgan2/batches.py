"""Real batches on their way into a training step: splitting, checking and packing.

* `split`: a batch is ``x`` or ``(x, labels)``.
* `check_data`: before ``fit``, the dataset's static batch must split over the
  replicas (and into packs), and its samples must have the shape the
  networks were built for.
* `checked_range`: image batches must lie in [-1, 1], the generator's tanh range.
* `Packing`: PacGAN's packing of ``m`` samples into one discriminator input.
"""
import numpy as np
import tensorflow as tf

__all__ = ["split", "latents_and_labels", "replica_element_spec", "check_data", "checked_range", "first_batch",
           "check_range_numpy", "Packing"]


def split(data):
    """``(x, labels)`` of a batch; labels are None when the batch carries none."""
    if isinstance(data, (tuple, list)):
        return data[0], (data[1] if len(data) > 1 else None)
    return data, None


def latents_and_labels(data, num_classes=None):
    """``(z, labels)`` of a prediction batch: ``z`` alone, or ``(z, labels)`` when the GAN is
    conditional (``num_classes`` set); ``predict((z, labels))`` and ``predict([z, labels])``
    arrive as a tuple or list, a one-element tuple is unwrapped."""
    if isinstance(data, (tuple, list)) and len(data) == 1:
        data = data[0]
    if num_classes is not None:
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise ValueError(f"This GAN is conditional (num_classes={num_classes}): "
                             f"predict takes (z, labels).")
        return data[0], data[1]
    if isinstance(data, (tuple, list)):
        raise ValueError("predict takes a batch of latents z (N, latent_dim) only: "
                         "this GAN is unconditional.")
    return data, None


def replica_element_spec(data):
    """The element spec of ``data`` (None for arrays); for a `tf.distribute.DistributedDataset`
    (``strategy.distribute_datasets_from_function``), that of one replica's part, whose
    batch is the per-replica batch."""
    spec = getattr(data, "element_spec", None)
    if spec is None or not isinstance(data, tf.distribute.DistributedDataset):
        return spec
    # Each leaf is a TensorSpec (one local replica) or a PerReplicaSpec of one per replica.
    return tf.nest.map_structure(lambda leaf: tf.nest.flatten(leaf, expand_composites=True)[0],
                                 spec)


def check_data(data, *, replicas=1, pack=1, sample_shape=None):
    """Raise ValueError if ``data`` (a dataset, or arrays) does not fit the step.

    Every replica must get the same number of examples (else the global-batch
    averages of the losses would be wrong), a multiple of ``pack``; batch with
    ``drop_remainder=True`` so that the batch size is static. Each sample must
    have ``sample_shape`` (the networks' data shape) where both are known.
    A distributed dataset's batches are already per replica: only ``pack`` and
    the sample shape are checked.
    """
    spec = replica_element_spec(data)
    if spec is None:
        return
    first = tf.nest.flatten(spec)[0]
    batch = first.shape[0] if first.shape.rank else None
    if batch is not None and isinstance(data, tf.distribute.DistributedDataset):
        batch *= replicas  # the global batch, split evenly by construction
    if batch is not None and batch % replicas:
        raise ValueError(
            f"The global batch of {batch} examples does not split evenly across "
            f"{replicas} replicas: use a batch size that is a multiple of {replicas}.")
    if batch is not None and (batch // replicas) % pack:
        raise ValueError(
            f"The global batch of {batch} examples gives each of the {replicas} replicas "
            f"{batch // replicas}, not a multiple of pack={pack}: use a batch size "
            f"that is a multiple of {replicas * pack}.")
    if sample_shape is not None and first.shape.rank:
        got = tuple(first.shape[1:])
        expected = tuple(sample_shape)
        fits = len(got) == len(expected) and all(
            g is None or e is None or g == e for g, e in zip(got, expected))
        if not fits:
            raise ValueError(
                f"The data's samples have shape {got} but the networks were built for "
                f"{expected}: resize the data (e.g. the pipelines' resolution argument) or "
                f"build networks for that shape.")


def first_batch(data, y=None):
    """``(x, labels)`` of the first batch ``fit`` would see, as NumPy (labels None if none).

    For a `tf.data.Dataset` this runs a fresh iterator for one element; for
    arrays it is the arrays themselves.
    """
    if isinstance(data, tf.data.Dataset):
        element = next(iter(data.take(1)), None)
        if element is None:
            raise ValueError("The dataset is empty: it yields no batch to train on.")
        x, labels = split(element)
    elif isinstance(data, (tuple, list)):
        x, labels = split(data)
    else:
        x, labels = data, y
    return np.asarray(x), None if labels is None else np.asarray(labels)


def check_range_numpy(real):
    """Raise ValueError unless an image batch (rank 4, NumPy) lies in [-1, 1] (1e-3 slack)."""
    real = np.asarray(real)
    if real.ndim != 4:
        return
    if not np.issubdtype(real.dtype, np.floating):
        raise ValueError(f"The real images are {real.dtype}: normalize them to float values in "
                         f"[-1, 1], e.g. x / 127.5 - 1 for uint8 images in [0, 255].")
    low, high = float(real.min()), float(real.max())
    if low < -1.001 or high > 1.001:
        raise ValueError(
            f"The real images of the first batch are not in [-1, 1] (the generator's tanh "
            f"range): min and max are {low:.4g} and {high:.4g}. Normalize them, e.g. "
            f"x / 127.5 - 1 for values in [0, 255] or 2 * x - 1 for [0, 1].")


def checked_range(real, first_step):
    """``real``, after refusing image batches that are not in [-1, 1].

    Integer images (e.g. uint8 in [0, 255]) are refused when the step is
    traced; float images outside [-1, 1] (by more than 1e-3) fail the step
    where ``first_step`` (a boolean tensor) is true: only the run's first batch
    pays for the two reductions. Vector data (rank < 4) may have any range.
    """
    if real.shape.rank != 4:
        return real
    if real.dtype.is_integer or real.dtype == tf.bool:
        raise ValueError(
            f"The real images are {real.dtype.name}: the generator's tanh output lies in "
            f"[-1, 1], so D would tell them apart by their range. Normalize them, e.g. "
            f"dataset.map(lambda x: tf.cast(x, tf.float32) / 127.5 - 1) for uint8 "
            f"images in [0, 255].")

    def in_range():
        x = tf.cast(real, tf.float32)
        low, high = tf.reduce_min(x), tf.reduce_max(x)
        return tf.logical_and(low >= -1.001, high <= 1.001), low, high

    ok, low, high = tf.cond(first_step, in_range,
                            lambda: (tf.constant(True), tf.constant(0.0), tf.constant(0.0)))
    check = tf.debugging.Assert(ok, [
        "The real images of the first batch are not in [-1, 1] (the generator's tanh "
        "range): min and max are", low, high, ". Normalize them, e.g. x / 127.5 - 1 for "
        "values in [0, 255] or 2 * x - 1 for [0, 1]."])
    with tf.control_dependencies([check]):  # no update runs before the check
        return tf.identity(real)


class Packing:
    """PacGAN packing (Lin et al. 2018, arXiv:1712.04086) of ``m`` samples per D input.

    ``(B, ..., C) -> (B / m, ..., m * C)``: consecutive samples concatenated
    along the last (channel or feature) axis. ``m = 1`` is the identity.
    """

    def __init__(self, m=1):
        if int(m) != m or m < 1:
            raise ValueError(f"pack must be an integer >= 1 (samples per D input), got {m!r}.")
        self.m = int(m)

    def by_slot(self, fn, x, labels=None):
        """``fn(x_j, labels_j)`` once per pack slot ``j`` (rows ``j, j + m, j + 2m, ...``),
        the outputs put back in their rows: every packed group holds one output of each
        call. PacGAN's code calls G once per slot, so batch norm takes its statistics over
        each slot's ``B / m`` samples; ``m = 1`` is one call on the whole batch."""
        m = self.m
        if m == 1:
            return fn(x, labels)
        outs = [fn(x[j::m], None if labels is None else labels[j::m]) for j in range(m)]
        out = tf.stack(outs, axis=1)  # (B / m, m, ...): row i * m + j is slot j's row i
        return tf.reshape(out, [-1] + list(out.shape[2:]))

    def check_batch(self, batch):
        """Raise ValueError if a (static, per-replica) batch of ``batch`` samples cannot be packed."""
        if batch is not None and batch % self.m:
            raise ValueError(f"A batch of {batch} examples (per replica) cannot be packed "
                             f"in groups of pack={self.m}: use a batch size that is a "
                             f"multiple of {self.m} on every replica.")

    def pack(self, x):
        """``(B, ..., C) -> (B / m, ..., m * C)``."""
        m = self.m
        if m == 1:
            return x
        inner = list(x.shape[1:])
        if any(d is None for d in inner):
            raise ValueError(f"pack needs samples of a static shape, got {x.shape}.")
        rank = len(inner)
        x = tf.reshape(x, [-1, m] + inner)
        x = tf.transpose(x, [0] + list(range(2, rank + 1)) + [1, rank + 1])
        return tf.reshape(x, [-1] + inner[:-1] + [m * inner[-1]])

    def unpack(self, x):
        """The inverse of `pack`."""
        m = self.m
        if m == 1:
            return x
        inner = list(x.shape[1:])
        rank = len(inner)
        x = tf.reshape(x, [-1] + inner[:-1] + [m, inner[-1] // m])
        x = tf.transpose(x, [0, rank] + list(range(1, rank)) + [rank + 1])
        return tf.reshape(x, [-1] + inner[:-1] + [inner[-1] // m])
