"""Layers the networks use in place of Keras 3 defaults that are slower or differ from the papers.

`FusedBatchNormalization` is `keras.layers.BatchNormalization` with the
training-mode forward and backward pass of TensorFlow's fused kernel
(``FusedBatchNormV3``, oneDNN on CPUs, cuDNN on GPUs). Keras 3 computes batch
norm from separate moments, subtract, multiply and add ops, which in a DCGAN
step on a CPU costs about as much as a third of the convolutions; the fused
kernel does the same in one pass over the data.

`SpectralNormalization` is spectral normalization as Miyato et al. (2018)
define it: the raw kernel stays the variable and the forward pass uses
``W / sigma(W)``; Keras's layer of that name instead overwrites the kernel
with ``W / sigma`` on every training-mode call.

`Conv2D` and `Conv2DTranspose` are the Keras layers whose backward-data
convolutions (gradients, and a transposed convolution's forward pass) can run
as forward convolutions (`tfgan2.conv_gradients`), faster on some CPUs; same
variables and values.

`MinibatchStdDev` appends the minibatch standard deviation feature of
Karras et al. (2018) to a discriminator's feature maps, so D can tell a batch
of too-similar samples from real ones.
"""
import functools

import keras
import tensorflow as tf

from tfgan2 import conv_gradients

__all__ = ["Conv2D", "Conv2DTranspose", "FusedBatchNormalization", "SpectralNormalization",
           "spectral_normalization_layers", "advance_power_iterations",
           "has_keras_spectral_normalization", "MinibatchStdDev"]


def _equal_stride(layer):
    strides = tuple(layer.strides)
    return strides[0] if len(set(strides)) == 1 else None


def _forward_possible(layer):
    return (tuple(layer.dilation_rate) == (1, 1) and _equal_stride(layer) is not None
            and layer.data_format == "channels_last" and keras.backend.backend() == "tensorflow")


@functools.lru_cache(maxsize=None)
def _onednn_or_gpu():
    """Whether TensorFlow's own grouped convolution kernels (with gradients) are available:
    oneDNN on CPUs (on unless ``TF_ENABLE_ONEDNN_OPTS=0``) or cuDNN on GPUs."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except ImportError:  # pragma: no cover - older or unusual builds
        onednn = False
    return onednn or bool(tf.config.list_physical_devices("GPU"))


def _split_grouped_conv2d(x, kernel, groups, strides, padding, dilations):
    """A grouped convolution as ``groups`` ordinary ones on channel slices, concatenated."""
    xs = tf.split(x, groups, axis=-1)
    ks = tf.split(kernel, groups, axis=-1)
    return tf.concat([tf.nn.conv2d(a, k, strides=strides, padding=padding, dilations=dilations)
                      for a, k in zip(xs, ks)], axis=-1)


@keras.saving.register_keras_serializable(package="tfgan2")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` with a choice of how its gradients are computed.

    ``gradient``: ``"native"`` (TensorFlow's backward kernels) or
    ``"forward"`` (forward convolutions, `tfgan2.conv_gradients`: both
    gradients at stride 1, the input gradient at larger equal strides);
    ``None`` takes `tfgan2.conv_gradients.default_method()` at construction
    (see `tfgan2.conv_gradients.method_scope`), and the layer's config records
    the method. ``"forward"`` applies to undilated, ungrouped, channels-last
    convolutions with equal strides on the TensorFlow backend; other
    configurations use the Keras layer's own op. Variables, checkpoints and
    forward values are those of `keras.layers.Conv2D`.

    Grouped convolutions (``groups > 1``) run TensorFlow's grouped kernel
    directly where it exists with its gradients (oneDNN on CPUs, cuDNN on
    GPUs), else as one convolution per group; Keras 3 instead compiles every
    grouped convolution on a CPU with XLA, which measured 280x slower here
    (16 groups of 16 channels, 16x16, batch 16: 3.4 s against 12 ms forward
    and backward).
    """

    def __init__(self, *args, gradient=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.gradient = conv_gradients.check_method(
            conv_gradients.default_method() if gradient is None else gradient)

    def forward_gradients_possible(self):
        """Whether ``gradient="forward"`` would change how this layer is differentiated."""
        return _forward_possible(self) and self.groups == 1

    def _forward_gradients_apply(self):
        return self.gradient == "forward" and self.forward_gradients_possible()

    def convolution_op(self, inputs, kernel):
        if (self.groups > 1 and keras.backend.backend() == "tensorflow"
                and self.data_format == "channels_last"):
            kernel = tf.cast(kernel, inputs.dtype)
            options = dict(strides=self.strides, padding=self.padding.upper(),
                           dilations=self.dilation_rate)
            if _onednn_or_gpu():
                return tf.nn.conv2d(inputs, kernel, **options)
            return _split_grouped_conv2d(inputs, kernel, self.groups, **options)
        if not self._forward_gradients_apply():
            return super().convolution_op(inputs, kernel)
        return conv_gradients.conv2d(inputs, kernel, self.padding, method="forward",
                                     strides=_equal_stride(self))

    def get_config(self):
        return {**super().get_config(), "gradient": self.gradient}


@keras.saving.register_keras_serializable(package="tfgan2")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` with a choice of how it is computed and differentiated.

    ``gradient``: ``"native"`` (TensorFlow's ``Conv2DBackpropInput`` forward,
    its registered gradients) or ``"forward"``
    (`tfgan2.conv_gradients.conv2d_transpose`: the forward pass as one
    stride-1 forward convolution and a depth-to-space shuffle, the input
    gradient as the strided convolution); ``None`` takes
    `tfgan2.conv_gradients.default_method()` at construction. ``"forward"``
    applies to undilated, channels-last layers with equal strides and no
    ``output_padding`` on the TensorFlow backend, given the spatial input
    size; the rest runs the Keras layer's own op. Variables, checkpoints and
    (to float rounding) outputs are those of `keras.layers.Conv2DTranspose`.
    """

    def __init__(self, *args, gradient=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.gradient = conv_gradients.check_method(
            conv_gradients.default_method() if gradient is None else gradient)

    def forward_gradients_possible(self):
        """Whether ``gradient="forward"`` would change how this layer is computed."""
        return _forward_possible(self) and self.output_padding is None

    def call(self, inputs):
        hw = tuple(inputs.shape[1:3])
        if self.gradient != "forward" or not self.forward_gradients_possible() or None in hw:
            return super().call(inputs)
        _, height, width, _ = self.compute_output_shape(tuple(inputs.shape))
        outputs = conv_gradients.conv2d_transpose(
            inputs, self.kernel, (height, width), _equal_stride(self), self.padding,
            method="forward")
        if self.use_bias:
            outputs = outputs + tf.cast(self.bias, outputs.dtype)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        return {**super().get_config(), "gradient": self.gradient}


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
        return (bool(training) and self.trainable and mask is None
                and not getattr(self, "renorm", False)
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


def _unit(x):
    return x / tf.maximum(tf.norm(x), 1e-12)


@keras.saving.register_keras_serializable(package="tfgan2")
class SpectralNormalization(keras.layers.Wrapper):
    """Spectral normalization of a Dense or convolution layer (Miyato et al. 2018, arXiv:1802.05957).

    With the kernel reshaped to a matrix ``W`` of shape ``(fan_in, units)``
    and ``u`` the stored power-iteration vector (``(1, units)``)::

        u_hat = u / ||u||,   v = u_hat W^T / ||u_hat W^T||   (both held constant)
        sigma(W) = v W u_hat^T,          y = layer_op(x, W / sigma(W))

    so the gradient reaches ``W`` both directly and through ``sigma``
    (``d sigma / dW = v^T u_hat``, the derivative of the largest singular
    value when ``u``, ``v`` are the singular vectors). A call -- in training
    mode or not -- changes no variable: ``W`` is the trainable variable and
    changes only through the optimizer.

    ``u`` advances only in `advance` (``power_iterations`` steps of
    ``u <- normalize(normalize(u W^T) W)``), which `tfgan2.GAN` calls once at
    the start of every discriminator update, before D is called: so all D
    calls of one update (real, fake, penalties) use the same ``sigma``, and the
    generator's step -- which also calls D in training mode -- changes nothing
    in D. ``u`` is computed from the synchronized kernel and assigned with
    ``only_first_replica`` aggregation, so it is the same on every replica.

    The variables carry the names and structure of `keras.layers.SpectralNormalization`
    (``layer`` with its kernel and bias, ``vector_u``), so checkpoints of networks
    built with it restore into this layer; their kernels, already divided by their
    sigma, then have ``sigma ~ 1`` and the restored network computes about the
    same function.
    """

    def __init__(self, layer, power_iterations=1, **kwargs):
        super().__init__(layer, **kwargs)
        if int(power_iterations) != power_iterations or power_iterations < 1:
            raise ValueError(f"power_iterations must be an integer >= 1, got {power_iterations!r}.")
        if not isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D,
                                  keras.layers.Conv3D)):
            raise ValueError(f"SpectralNormalization wraps Dense or Conv1D/2D/3D layers, got "
                             f"{type(layer).__name__}.")
        if isinstance(layer, keras.layers.Conv2DTranspose):
            raise ValueError("SpectralNormalization does not wrap Conv2DTranspose.")
        self.power_iterations = int(power_iterations)

    def build(self, input_shape):
        super().build(input_shape)
        units = self.layer.kernel.shape[-1]
        self.vector_u = self.add_weight(
            shape=(1, units), initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            trainable=False, aggregation="only_first_replica", name="vector_u",
            dtype=self.layer.kernel.dtype)

    def _matrix(self):
        kernel = tf.convert_to_tensor(self.layer.kernel)
        return tf.reshape(tf.cast(kernel, tf.float32), [-1, kernel.shape[-1]])

    def sigma(self):
        """``v W u_hat^T`` with ``u_hat``, ``v`` from the stored ``u`` (gradient only through W)."""
        w = self._matrix()
        u = tf.stop_gradient(_unit(tf.cast(tf.convert_to_tensor(self.vector_u), tf.float32)))
        v = tf.stop_gradient(_unit(tf.matmul(u, w, transpose_b=True)))
        return tf.reshape(tf.matmul(tf.matmul(v, w), u, transpose_b=True), [])

    def advance(self):
        """Run the power iterations on the current kernel and store the new ``u``."""
        w = tf.stop_gradient(self._matrix())
        u = _unit(tf.cast(tf.convert_to_tensor(self.vector_u), tf.float32))
        for _ in range(self.power_iterations):
            u = _unit(tf.matmul(_unit(tf.matmul(u, w, transpose_b=True)), w))
        self.vector_u.assign(tf.cast(u, self.vector_u.dtype))

    def normalized_kernel(self):
        """``W / sigma(W)`` in the kernel's shape, float32."""
        return tf.cast(tf.convert_to_tensor(self.layer.kernel), tf.float32) / self.sigma()

    def call(self, inputs, training=None):
        inner = self.layer
        x = tf.convert_to_tensor(inputs)
        kernel = tf.cast(self.normalized_kernel(), x.dtype)
        if isinstance(inner, keras.layers.Dense):
            y = tf.tensordot(x, kernel, axes=[[x.shape.rank - 1], [0]])
            if inner.use_bias:
                y = y + tf.cast(inner.bias, y.dtype)
        else:
            y = inner.convolution_op(x, kernel)
            if inner.use_bias:
                if inner.data_format == "channels_last":
                    y = y + tf.cast(inner.bias, y.dtype)
                else:
                    shape = [1, inner.filters] + [1] * inner.rank
                    y = y + tf.reshape(tf.cast(inner.bias, y.dtype), shape)
        if inner.activation is not None:
            y = inner.activation(y)
        return tf.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


@keras.saving.register_keras_serializable(package="tfgan2")
class MinibatchStdDev(keras.layers.Layer):
    """The minibatch standard deviation feature (Karras et al. 2018, arXiv:1710.10196, sec. 3).

    The batch ``x`` of shape ``(B, H, W, C)`` is cut into groups of
    ``group_size`` consecutive samples (the last group holds the
    ``B mod group_size`` left over, if any). For a group ``S``::

        s(S) = mean over (h, w, c) of sqrt(Var_{i in S}[x_i[h, w, c]] + 1e-8)

    (the population variance over the group's samples), and every sample of
    ``S`` gets ``s(S)`` as one extra feature map: the output is
    ``(B, H, W, C + 1)``. A generator that collapses to few outputs makes
    ``s`` small, which D then sees. No variables; the statistic is computed in
    float32 and the gradient flows through it to every member of the group.

    Groups are consecutive rows, and `tfgan2.GAN` gives each replica
    consecutive rows of the global batch, so 1 and N replicas form the same
    groups whenever the per-replica batch is a multiple of ``group_size``.
    Real and generated samples go to D in separate calls, so a group never
    mixes them.
    """

    def __init__(self, group_size=4, **kwargs):
        super().__init__(**kwargs)
        if int(group_size) != group_size or group_size < 2:
            raise ValueError(f"group_size must be an integer >= 2 (samples per group), "
                             f"got {group_size!r}.")
        self.group_size = int(group_size)

    def call(self, inputs):
        x = tf.cast(tf.convert_to_tensor(inputs), tf.float32)
        if x.shape.rank != 4:
            raise ValueError(f"MinibatchStdDev takes feature maps (B, H, W, C), got shape "
                             f"{x.shape}.")
        shape = tf.shape(x)
        n = shape[0]
        ids = tf.range(n) // self.group_size
        groups = (n + self.group_size - 1) // self.group_size
        mean = tf.math.unsorted_segment_mean(x, ids, groups)
        variance = tf.math.unsorted_segment_mean(tf.square(x - tf.gather(mean, ids)), ids,
                                                 groups)
        stat = tf.reduce_mean(tf.sqrt(variance + 1e-8), axis=[1, 2, 3])
        feature = tf.broadcast_to(tf.reshape(tf.gather(stat, ids), [-1, 1, 1, 1]),
                                  tf.concat([shape[:3], [1]], axis=0))
        return tf.cast(tf.concat([x, feature], axis=-1), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (None if input_shape[-1] is None
                                          else input_shape[-1] + 1,)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size}


def _all_layers(model):
    return model._flatten_layers(include_self=False, recursive=True)


def spectral_normalization_layers(model):
    """The `SpectralNormalization` layers inside ``model`` (nested models included)."""
    return [layer for layer in _all_layers(model) if isinstance(layer, SpectralNormalization)]


def has_keras_spectral_normalization(model):
    """True if ``model`` holds a `keras.layers.SpectralNormalization` (which overwrites kernels)."""
    return any(isinstance(layer, keras.layers.SpectralNormalization)
               for layer in _all_layers(model))


def advance_power_iterations(layers):
    """`SpectralNormalization.advance` for each layer (one discriminator update's worth)."""
    for layer in layers:
        layer.advance()
