"""What a conditional GAN accepts as labels, checked once for datasets, steps and NumPy input.

Single-label GANs take class ids in ``[0, num_classes)`` (or ``(B,
num_classes)`` one-hot / continuous vectors); multi-label GANs take ``(B,
num_classes)`` vectors of 0/1 attributes (CelebA's 40). The networks are fed
the float32 condition vector `LabelSpec.condition` makes of either.
"""
import numpy as np
import tensorflow as tf

from tfgan2 import batches

__all__ = ["LabelSpec"]


class LabelSpec:
    """The labels of a GAN with ``num_classes`` classes (or binary attributes if ``multilabel``).

    ``num_classes=None`` is an unconditional GAN: it takes no labels.
    """

    def __init__(self, num_classes=None, multilabel=False):
        if num_classes is not None and (int(num_classes) != num_classes or num_classes < 1):
            raise ValueError(f"num_classes must be None (unconditional) or an integer >= 1, "
                             f"got {num_classes!r}.")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.multilabel = bool(multilabel)
        if self.multilabel and self.num_classes is None:
            raise ValueError("multilabel=True needs num_classes (the number of binary labels).")

    @property
    def conditional(self):
        return self.num_classes is not None

    def _expected(self, batch="B"):
        k = self.num_classes
        ids = "class ids" if batch == "B" else f"class ids in [0, {k})"
        return (f"({batch}, {k}) 0/1 vectors" if self.multilabel else
                f"({batch},) {ids} or ({batch}, {k}) one-hot vectors")

    # ------------------------------------------------------------- static
    def check_static(self, shape, dtype):
        """Raise ValueError unless a batch of labels of this shape and dtype fits."""
        ids = shape.rank == 1 and not self.multilabel
        vectors = shape.rank == 2 and shape[-1] in (None, self.num_classes)
        if ids and not dtype.is_integer:
            raise ValueError(f"Class labels must be integer ids in [0, {self.num_classes}); got "
                             f"dtype {dtype.name}. Cast them (e.g. tf.cast(y, tf.int32)) or pass "
                             f"one-hot vectors of shape (B, {self.num_classes}).")
        if not (ids or vectors):
            raise ValueError(f"Labels of shape {shape} (per batch) do not fit this GAN "
                             f"(num_classes={self.num_classes}): expected {self._expected()}.")

    def check_data(self, x, y=None):
        """Raise ValueError if the data given to ``fit`` cannot condition this GAN.

        ``x`` is a dataset yielding ``(images, labels)``, or arrays with the
        labels in ``y`` or as ``x[1]``. Label values are checked in the step.
        """
        if not self.conditional:
            return
        spec = batches.replica_element_spec(x)
        if spec is not None:
            if not isinstance(spec, (tuple, list)) or len(spec) < 2:
                raise ValueError(
                    f"This GAN is conditional (num_classes={self.num_classes}) but the dataset "
                    f"yields no labels ({spec}): make it yield (images, labels) pairs.")
            shape, dtype = spec[1].shape, spec[1].dtype
        elif y is not None:
            shape, dtype = tf.TensorShape(np.shape(y)), tf.as_dtype(np.asarray(y).dtype)
        elif isinstance(x, (tuple, list)) and len(x) >= 2:
            shape, dtype = tf.TensorShape(np.shape(x[1])), tf.as_dtype(np.asarray(x[1]).dtype)
        else:
            raise ValueError(f"This GAN is conditional (num_classes={self.num_classes}): pass "
                             f"labels with the images (fit(x, y) or (images, labels) batches).")
        self.check_static(shape, dtype)

    # ------------------------------------------------------------ in graph
    def checked(self, labels):
        """``labels`` with in-graph checks of their values: a batch with a class id out of
        range (or a multi-label entry other than 0/1) fails the step before any update."""
        labels = tf.convert_to_tensor(labels)
        self.check_static(labels.shape, labels.dtype)
        k = self.num_classes
        if labels.shape.rank == 1:
            checks = [
                tf.debugging.assert_non_negative(
                    labels, message=f"class labels must lie in [0, {k})"),
                tf.debugging.assert_less(
                    labels, tf.cast(k, labels.dtype),
                    message=f"class labels must lie in [0, {k}) (num_classes={k})")]
        elif self.multilabel:
            binary = tf.reduce_all((labels == 0) | (labels == 1))
            checks = [tf.debugging.Assert(binary, [f"multi-label vectors must hold 0 or 1 "
                                                   f"for each of the {k} labels"])]
        else:
            checks = []
        with tf.control_dependencies(checks):
            return tf.identity(labels)

    def condition(self, labels):
        """Labels as the float32 condition vector ``(B, num_classes)`` the networks take.

        Class ids (an integer ``(B,)`` tensor) become one-hot vectors; a float
        ``(B, num_classes)`` tensor (one-hot, multi-hot attributes, or a
        continuous code) is used as it is.
        """
        if labels is None:
            raise ValueError(f"This GAN is conditional (num_classes={self.num_classes}): "
                             f"feed (images, labels) batches and pass labels to generate.")
        labels = tf.convert_to_tensor(labels)
        if labels.dtype.is_integer and labels.shape.rank == 1:
            return tf.one_hot(labels, self.num_classes, dtype=tf.float32)
        return tf.cast(labels, tf.float32)

    # -------------------------------------------------------------- NumPy
    def check_numpy(self, labels, num=None):
        """``labels`` as the NumPy array the networks are fed, after checking it.

        Class ids: integers in ``[0, num_classes)``, shape ``(N,)`` (a single int
        is repeated ``num`` times). Multi-label GANs (and one-hot / continuous
        conditions): floats of shape ``(N, num_classes)``.
        """
        if not self.conditional:
            raise ValueError("This GAN is unconditional: it takes no labels.")
        arr = np.asarray(labels)
        if arr.ndim == 0 and num is not None:
            arr = np.full((num,), arr)
        if arr.ndim == 1 and not self.multilabel:
            if not (np.issubdtype(arr.dtype, np.integer)
                    or (arr.size and np.all(np.mod(arr, 1) == 0))):
                raise ValueError(f"Class labels must be integers in [0, {self.num_classes}), "
                                 f"got dtype {arr.dtype}.")
            if arr.size and (arr.min() < 0 or arr.max() >= self.num_classes):
                raise ValueError(f"Class labels must lie in [0, {self.num_classes}), got values "
                                 f"from {arr.min()} to {arr.max()}.")
            arr = arr.astype(np.int32)
        elif arr.ndim == 2 and arr.shape[1] == self.num_classes:
            arr = arr.astype(np.float32)
            if not np.all(np.isfinite(arr)):
                raise ValueError("Label vectors must be finite.")
            if self.multilabel and not np.all((arr == 0) | (arr == 1)):
                raise ValueError("Multi-label vectors must hold 0 or 1 for each of the "
                                 f"{self.num_classes} labels.")
        else:
            raise ValueError(f"Labels of shape {arr.shape} do not fit this GAN: expected "
                             f"{self._expected('N')}.")
        if num is not None and len(arr) != num:
            raise ValueError(f"Got {len(arr)} labels for {num} samples.")
        return arr

    def sample(self, num, seed=None):
        """``num`` class ids drawn uniformly (class-conditional GANs), as int32 NumPy."""
        if not self.conditional or self.multilabel:
            raise ValueError("sample_labels draws class ids of a class-conditional GAN; this one "
                             + ("is unconditional." if not self.conditional else
                                "is multi-label: pass label vectors (e.g. real ones)."))
        return np.random.default_rng(seed).integers(0, self.num_classes, num).astype(np.int32)
