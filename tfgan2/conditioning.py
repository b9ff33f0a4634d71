"""Layers that feed a condition ``c`` into a network.

``c`` is the float condition vector `tfgan2.GAN.condition` gives the
networks: one-hot class ids, multi-hot binary attributes or a continuous
code, shape ``(B, K)``. A linear map of a one-hot vector is a per-class
embedding lookup, so every layer here serves class ids and attribute
vectors alike.

* `ConditionalBatchNormalization` -- batch norm whose scale and shift are
  functions of ``c`` (de Vries et al. 2017, arXiv:1707.00683; the generator
  of Miyato & Koyama 2018).
* `ProjectionLogit` -- the projection discriminator's output (Miyato &
  Koyama 2018, arXiv:1802.05637).
"""
import keras
import tensorflow as tf

from tfgan2.layers import FusedBatchNormalization

__all__ = ["ConditionalBatchNormalization", "ProjectionLogit"]


@keras.saving.register_keras_serializable(package="tfgan2")
class ConditionalBatchNormalization(keras.layers.Layer):
    """``y = BN(x) * (1 + gamma(c)) + beta(c)``, called as ``layer([x, c])``.

    ``BN`` normalizes over the last axis without a scale or shift of its own
    (batch statistics in training, moving averages in inference);
    ``gamma(c) = c W_g`` and ``beta(c) = c W_b`` are linear in ``c`` and start
    at zero, so an untrained layer is plain batch norm. ``x`` is ``(B, C)`` or
    ``(B, H, W, C)``; ``synchronized`` computes the statistics over all
    replicas' batches.
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.synchronized = bool(synchronized)

    def build(self, input_shape):
        x_shape, c_shape = input_shape
        channels = x_shape[-1]
        norm_cls = (keras.layers.BatchNormalization if self.synchronized
                    else FusedBatchNormalization)
        extra = {"synchronized": True} if self.synchronized else {}
        self.norm = norm_cls(momentum=self.momentum, epsilon=self.epsilon, center=False,
                             scale=False, dtype=self.dtype_policy, name="norm", **extra)
        self.norm.build(x_shape)
        self.gamma = keras.layers.Dense(channels, use_bias=False, kernel_initializer="zeros",
                                        dtype=self.dtype_policy, name="gamma")
        self.beta = keras.layers.Dense(channels, use_bias=False, kernel_initializer="zeros",
                                       dtype=self.dtype_policy, name="beta")
        self.gamma.build(c_shape)
        self.beta.build(c_shape)

    def call(self, inputs, training=None):
        x, c = inputs
        y = self.norm(x, training=training)
        gamma, beta = self.gamma(c), self.beta(c)
        if len(x.shape) == 4:
            gamma = gamma[:, None, None, :]
            beta = beta[:, None, None, :]
        return y * (1.0 + gamma) + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, epsilon=self.epsilon,
                      synchronized=self.synchronized)
        return config


@keras.saving.register_keras_serializable(package="tfgan2")
class ProjectionLogit(keras.layers.Layer):
    """``logit = w^T h + b + (c V)^T h``, called as ``layer([h, c])``; float32 ``(B, 1)``.

    ``h`` is the discriminator's feature vector ``(B, F)`` and ``c V`` the
    learned embedding of the condition (a row of ``V`` per class). The
    projection term is the log density ratio's class-dependent part under
    the model of Miyato & Koyama (2018). Computed in float32 under any
    mixed-precision policy.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def build(self, input_shape):
        h_shape, c_shape = input_shape
        self.linear = keras.layers.Dense(1, dtype=self.dtype_policy, name="linear")
        self.embedding = keras.layers.Dense(h_shape[-1], use_bias=False,
                                            dtype=self.dtype_policy, name="embedding")
        self.linear.build(h_shape)
        self.embedding.build(c_shape)

    def call(self, inputs):
        h, c = inputs
        h = tf.cast(h, self.compute_dtype)
        projection = tf.reduce_sum(self.embedding(c) * h, axis=-1, keepdims=True)
        return self.linear(h) + projection

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)
