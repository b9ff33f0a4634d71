"""Sample-quality metrics as streaming `keras.metrics.Metric`s, for `GAN.test_step`.

`tfgan2.metrics` computes FID, KID and friends from NumPy feature arrays
after sampling. The classes here compute the same quantities inside a Keras
evaluation (``gan.evaluate``, ``fit(validation_data=...)``), in graph mode
and with TensorFlow ops only, so that a callback can watch them:

    gan.compile(..., metrics=[sample_metrics.KernelDistance(features, name="kid")])
    gan.fit(data, validation_data=held_out, callbacks=[
        keras.callbacks.ModelCheckpoint("best.keras", monitor="val_kid", mode="min",
                                        save_best_only=True)])

Each metric is a `SampleMetric`: ``update_state(real, fake)`` takes a batch
of real data and a batch of generated samples (the GAN passes each held-out
batch with as many fresh samples), maps both through a feature model
(a `keras.Model` from images to ``(B, F)`` features: `classifier_features`
or `inception_features`) and adds them to a state whose size does not grow
with the number of batches:

* `FrechetDistance`: per side, the count, the feature sum ``(F,)`` and the
  sum of outer products ``(F, F)`` in float64 (memory ``O(F^2)``);
  ``result()`` is ``||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^{1/2})``
  (Heusel et al. 2017) with unbiased covariances. With Inception-v3 pool
  features it is FID.
* `KernelDistance`: a block estimate of KID (Binkowski et al. 2018): each
  update computes the unbiased MMD^2 with the kernel
  ``k(x, y) = (x . y / F + 1)^3`` between the batch's ``m = min(B_r, B_f)``
  real and generated features, and ``result()`` is the mean over the
  batches (state: two numbers). Each block estimate is unbiased, so the
  mean is too; its variance shrinks with more batches and with larger
  batches (the reference code uses subsets of 1,000), so evaluate with the
  largest batch that fits. Batches of fewer than 2 samples are skipped.

The state is summed across replicas, so the numbers are those of the global
batches under any `tf.distribute` strategy. The feature model computes in
float32 under any training policy: `classifier_features` and
`inception_features` build it so, and a metric switches the layers of a
feature model built under a mixed policy (`tfgan2.full_precision`).
"""
import keras
import tensorflow as tf

from tfgan2 import classifier as classifier_lib
from tfgan2 import features as features_lib
from tfgan2 import full_precision

__all__ = ["SampleMetric", "check_metrics", "FrechetDistance", "KernelDistance",
           "classifier_features", "inception_features", "InceptionInput"]


def classifier_features(model, layer=classifier_lib.FEATURES_LAYER):
    """A feature model: a `tfgan2.classifier` model's ``layer`` activations (default ``features``)."""
    full_precision.float32_model(model)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    with full_precision.float32_scope():
        return keras.Model(inputs, model.get_layer(layer).output, name=f"{model.name}_features")


@keras.saving.register_keras_serializable(package="tfgan2")
class InceptionInput(keras.layers.Layer):
    """Images in [-1, 1] as Inception-v3 input: 3 channels, ``size x size`` bilinear, clipped.

    The preprocessing of `tfgan2.features.prepare_inception_images`, as a layer.
    """

    def __init__(self, size=features_lib.INCEPTION_SIZE, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, images):
        x = tf.cast(images, tf.float32)
        if x.shape[-1] == 1:
            x = tf.repeat(x, 3, axis=-1)
        if tuple(x.shape[1:3]) != (self.size, self.size):
            x = tf.image.resize(x, (self.size, self.size), method="bilinear", antialias=False)
        return tf.clip_by_value(x, -1.0, 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, 3)

    def get_config(self):
        return dict(super().get_config(), size=self.size)


def inception_features(input_shape, weights_path=None, *, random_weights=False,
                       input_size=features_lib.INCEPTION_SIZE):
    """A feature model: Inception-v3's 2,048 pool features of images ``input_shape`` in [-1, 1].

    ``weights_path``: a local copy of the Keras ImageNet Inception-v3 weights
    (`tfgan2.features.INCEPTION_WEIGHTS_FILE`); nothing is downloaded.
    ``random_weights=True`` builds it untrained (for tests of shapes only).

    Raises:
      FileNotFoundError: no weights file at ``weights_path``.
    """
    extractor = features_lib.InceptionExtractor(weights_path, random_weights=random_weights,
                                                input_size=input_size)
    net = extractor.network
    with full_precision.float32_scope():
        inputs = keras.Input(tuple(input_shape), name="image")
        pool = keras.Model(net.inputs, net.get_layer("avg_pool").output, name="inception_pool")
        outputs = pool(InceptionInput(input_size, name="inception_input")(inputs))
        return keras.Model(inputs, outputs, name="inception_features")


def _feature_dim(feature_model):
    shape = getattr(feature_model, "output_shape", None)
    if not shape or shape[-1] is None or len(shape) != 2:
        raise ValueError(f"The feature model must map a batch to (B, F) features with a known "
                         f"F (a Functional keras.Model), got output shape {shape!r}.")
    return int(shape[-1])


class _Holder:
    def __init__(self, model):
        self.model = model


class SampleMetric(keras.metrics.Metric):
    """A metric of generated samples against real data: ``update_state(real, fake)``.

    Args:
      feature_model: a `keras.Model` from data batches to ``(B, F)`` features
        (not trained by the metric). It computes in float32: layers built
        under a mixed policy are switched to float32 in place
        (`tfgan2.full_precision.float32_model`).
      name: the name the logs carry (``val_<name>`` during ``fit``).
    """

    def __init__(self, feature_model, name, **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(feature_model, dict):  # from a config
            feature_model = keras.saving.deserialize_keras_object(feature_model)
        if not isinstance(feature_model, keras.Model):
            raise ValueError(f"feature_model must be a keras.Model (e.g. "
                             f"tfgan2.sample_metrics.classifier_features(classifier)), got "
                             f"{type(feature_model).__name__}.")
        self.feature_dim = _feature_dim(feature_model)
        full_precision.float32_model(feature_model)
        feature_model.trainable = False
        # Out of Keras' saving walk: several metrics may share one feature model,
        # and each saves its weights itself (save_own_variables).
        self._holder = _Holder(feature_model)

    def get_feature_model(self):
        """The feature model (a method, not an attribute: see ``__init__``)."""
        return self._holder.model

    def features(self, x):
        """``(B, F)`` float64 features of a batch, in inference mode."""
        return tf.cast(self._holder.model(x, training=False), tf.float64)

    def save_own_variables(self, store):
        """The feature model's weights (a metric's running state is not saved)."""
        for i, weight in enumerate(self._holder.model.weights):
            store[str(i)] = keras.ops.convert_to_numpy(weight)

    def load_own_variables(self, store):
        weights = self._holder.model.weights
        if len(store.keys()) != len(weights):
            raise ValueError(f"The saved feature model of metric {self.name!r} has "
                             f"{len(store.keys())} weights, this one {len(weights)}.")
        for i, weight in enumerate(weights):
            weight.assign(store[str(i)])

    def update_state(self, real, fake, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(f"{type(self).__name__} takes no sample_weight.")
        self.update_features(self.features(real), self.features(fake))

    def update_features(self, real_features, fake_features):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name,
                "feature_model": keras.saving.serialize_keras_object(self._holder.model)}


@keras.saving.register_keras_serializable(package="tfgan2")
class FrechetDistance(SampleMetric):
    """Streaming Fréchet distance between real and generated features (see the module docstring)."""

    def __init__(self, feature_model, name="fd", **kwargs):
        super().__init__(feature_model, name=name, **kwargs)
        f = self.feature_dim
        self._state = {}
        for side in ("real", "fake"):
            self._state[side] = (
                self.add_variable((), "zeros", dtype="float64", name=f"{side}_count"),
                self.add_variable((f,), "zeros", dtype="float64", name=f"{side}_sum"),
                self.add_variable((f, f), "zeros", dtype="float64", name=f"{side}_outer"))

    def update_features(self, real_features, fake_features):
        for side, x in (("real", real_features), ("fake", fake_features)):
            count, total, outer = self._state[side]
            count.assign_add(tf.cast(tf.shape(x)[0], tf.float64))
            total.assign_add(tf.reduce_sum(x, axis=0))
            outer.assign_add(tf.matmul(x, x, transpose_a=True))

    def statistics(self, side):
        """``(mean, unbiased covariance)`` of the ``"real"`` or ``"fake"`` features seen."""
        count, total, outer = (tf.convert_to_tensor(v) for v in self._state[side])
        mean = total / tf.maximum(count, 1.0)
        cov = (outer - count * tf.tensordot(mean, mean, axes=0)) / tf.maximum(count - 1.0, 1.0)
        return mean, cov

    def result(self):
        mu_r, s_r = self.statistics("real")
        mu_f, s_f = self.statistics("fake")
        # Tr((S_r S_f)^{1/2}) = sum of the square roots of the eigenvalues of the
        # symmetric S_r^{1/2} S_f S_r^{1/2}, which eigh handles stably.
        e, v = tf.linalg.eigh(s_r)
        root = tf.matmul(v * tf.sqrt(tf.maximum(e, 0.0)), v, transpose_b=True)
        middle = tf.matmul(root, tf.matmul(s_f, root))
        middle = 0.5 * (middle + tf.transpose(middle))
        trace_root = tf.reduce_sum(tf.sqrt(tf.maximum(tf.linalg.eigvalsh(middle), 0.0)))
        value = (tf.reduce_sum(tf.square(mu_r - mu_f)) + tf.linalg.trace(s_r)
                 + tf.linalg.trace(s_f) - 2.0 * trace_root)
        enough = tf.logical_and(self._state["real"][0] >= 2, self._state["fake"][0] >= 2)
        return tf.cast(tf.where(enough, value, tf.constant(float("nan"), tf.float64)),
                       tf.float32)


def check_metrics(metrics):
    """``metrics`` as a list after refusing anything but `SampleMetric`s (``GAN.compile(metrics=)``)."""
    metrics = [] if metrics is None else list(metrics)
    refused = [m for m in metrics if not isinstance(m, SampleMetric)]
    if refused:
        raise ValueError(
            f"GAN.compile(metrics=...) takes sample-quality metrics that compare held-out "
            f"real batches with generated ones (tfgan2.sample_metrics.KernelDistance, "
            f"FrechetDistance), got {refused!r}. D's accuracy is always logged as "
            f"real_as_real and fake_as_fake, its probabilities as p_real and p_fake.")
    return metrics


def mmd2_unbiased(x, y):
    """Unbiased MMD^2 with the cubic polynomial kernel of two ``(m, F)`` float64 tensors, m >= 2."""
    m = tf.cast(tf.shape(x)[0], tf.float64)
    dim = tf.cast(tf.shape(x)[1], tf.float64)
    k_xx = (tf.matmul(x, x, transpose_b=True) / dim + 1.0) ** 3
    k_yy = (tf.matmul(y, y, transpose_b=True) / dim + 1.0) ** 3
    k_xy = (tf.matmul(x, y, transpose_b=True) / dim + 1.0) ** 3
    same = (tf.reduce_sum(k_xx) - tf.linalg.trace(k_xx)
            + tf.reduce_sum(k_yy) - tf.linalg.trace(k_yy))
    return same / (m * (m - 1.0)) - 2.0 * tf.reduce_mean(k_xy)


@keras.saving.register_keras_serializable(package="tfgan2")
class KernelDistance(SampleMetric):
    """Streaming block estimate of the kernel (Inception) distance, KID (see the module docstring)."""

    def __init__(self, feature_model, name="kid", **kwargs):
        super().__init__(feature_model, name=name, **kwargs)
        self.total = self.add_variable((), "zeros", dtype="float64", name="mmd2_sum")
        self.blocks = self.add_variable((), "zeros", dtype="float64", name="blocks")

    def update_features(self, real_features, fake_features):
        m = tf.minimum(tf.shape(real_features)[0], tf.shape(fake_features)[0])

        def add():
            self.total.assign_add(mmd2_unbiased(real_features[:m], fake_features[:m]))
            self.blocks.assign_add(tf.constant(1.0, tf.float64))

        tf.cond(m >= 2, add, lambda: None)

    def result(self):
        blocks = tf.convert_to_tensor(self.blocks)
        value = tf.where(blocks > 0, self.total / tf.maximum(blocks, 1.0),
                         tf.constant(float("nan"), tf.float64))
        return tf.cast(value, tf.float32)
