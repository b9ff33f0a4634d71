"""Layers the networks use in place of slower Keras 3 defaults.

`FusedBatchNormalization` is `keras.layers.BatchNormalization` with the
training-mode forward and backward pass of TensorFlow's fused kernel
(``FusedBatchNormV3``, oneDNN on CPUs, cuDNN on GPUs). Keras 3 computes batch
norm from separate moments, subtract, multiply and add ops, which in a DCGAN
step on a CPU costs about as much as a third of the convolutions; the fused
kernel does the same in one pass over the data.
"""
import keras
import tensorflow as tf

__all__ = ["FusedBatchNormalization"]


@keras.saving.register_keras_serializable(package="tfgan2")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Batch normalization over the last axis with a fused training-mode kernel.

    Same variables, arguments and results as `keras.layers.BatchNormalization`
    (so checkpoints of either restore into the other): in training,

        y = gamma * (x - mean_B) / sqrt(var_B + epsilon) + beta,
        moving_mean <- momentum * moving_mean + (1 - momentum) * mean_B,
        moving_variance <- momentum * moving_variance + (1 - momentum) * var_B,

    with ``mean_B`` and the biased ``var_B`` over all axes but the last. The
    fused kernel is used for 2-D ``(B, C)`` and 4-D ``(B, H, W, C)`` inputs
    normalized over the last axis, on the TensorFlow backend, without mask,
    renorm or ``synchronized``; everything else (and inference) runs the Keras
    layer's own code. As in Keras, bfloat16/float16 inputs are normalized in
    float32 and the result is cast back to the compute dtype.
    """

    def _fused_applies(self, inputs, training, mask):
        rank = len(inputs.shape)
        axis = self.axis if isinstance(self.axis, int) else None
        return (bool(training) and self.trainable and mask is None and not self.renorm
                and not self.synchronized and keras.backend.backend() == "tensorflow"
                and rank in (2, 4) and axis in (-1, rank - 1)
                and inputs.shape[-1] is not None)

    def call(self, inputs, training=None, mask=None):
        if not self._fused_applies(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        x = tf.cast(inputs, tf.float32)
        shape = tf.shape(x)
        if len(inputs.shape) == 2:
            x = tf.reshape(x, [-1, 1, 1, channels])
        gamma = (tf.cast(self.gamma, tf.float32) if self.scale
                 else tf.ones([channels], tf.float32))
        beta = (tf.cast(self.beta, tf.float32) if self.center
                else tf.zeros([channels], tf.float32))
        y, mean, unbiased_variance = tf.compat.v1.nn.fused_batch_norm(
            x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The kernel normalizes with the biased variance but returns the unbiased
        # one (n / (n - 1) times larger); Keras averages the biased one.
        count = tf.cast(tf.size(x) // channels, tf.float32)
        variance = unbiased_variance * tf.maximum(count - 1.0, 0.0) / tf.maximum(count, 1.0)
        momentum = self.momentum
        self.moving_mean.assign(
            tf.cast(self.moving_mean, tf.float32) * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            tf.cast(self.moving_variance, tf.float32) * momentum
            + variance * (1.0 - momentum))
        if len(inputs.shape) == 2:
            y = tf.reshape(y, shape)
        return tf.cast(y, self.compute_dtype)
