"""Self-attention over the positions of a feature map (SAGAN, Zhang et al. 2019, arXiv:1805.08318;
the BigGAN form, Brock et al. 2019, arXiv:1809.11096).

For ``x`` of shape ``(B, H, W, C)`` with ``N = H W`` positions::

    theta = x W_theta                      (B, N, C/8)     1x1 convolutions, no bias
    phi   = maxpool_2x2(x W_phi)           (B, N/4, C/8)
    g     = maxpool_2x2(x W_g)             (B, N/4, C/2)
    beta  = softmax(theta phi^T)           (B, N, N/4)     over the pooled positions
    y     = x + gamma * (beta g) W_o       (B, H, W, C)    W_o: 1x1 convolution C/2 -> C

``gamma`` is a learned scalar starting at 0, so an untrained layer is the
identity. With ``spectral_norm=True`` the four convolutions are wrapped in
`tfgan2.layers.SpectralNormalization` (SAGAN applies it in G and D). The
attention logits and softmax are computed in float32 under any
mixed-precision policy.
"""
import keras
import tensorflow as tf

from tfgan2.layers import Conv2D, SpectralNormalization

__all__ = ["SelfAttention2D"]


@keras.saving.register_keras_serializable(package="tfgan2")
class SelfAttention2D(keras.layers.Layer):
    """SAGAN / BigGAN self-attention block ``x + gamma * attention(x)`` (module docstring).

    Needs ``C`` divisible by 8 and even ``H``, ``W``.
    """

    def __init__(self, spectral_norm=False, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.spectral_norm = bool(spectral_norm)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _conv(self, filters, name, input_shape):
        conv = Conv2D(filters, 1, use_bias=False, kernel_initializer=self.kernel_initializer,
                      dtype=self.dtype_policy, name=name)
        if self.spectral_norm:
            conv = SpectralNormalization(conv, dtype=self.dtype_policy, name=name + "_sn")
        conv.build(input_shape)
        return conv

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None or input_shape[-1] % 8:
            raise ValueError(f"SelfAttention2D takes (B, H, W, C) maps with C a multiple of 8, "
                             f"got shape {tuple(input_shape)}.")
        channels = input_shape[-1]
        self.theta = self._conv(channels // 8, "theta", input_shape)
        self.phi = self._conv(channels // 8, "phi", input_shape)
        self.g = self._conv(channels // 2, "g", input_shape)
        self.o = self._conv(channels, "o", tuple(input_shape[:-1]) + (channels // 2,))
        self.gamma = self.add_weight(shape=(), initializer="zeros", name="gamma")

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        shape = tf.shape(x)
        b, h, w = shape[0], shape[1], shape[2]
        channels = x.shape[-1]

        def pooled(t):
            return tf.nn.max_pool2d(t, 2, 2, "VALID")

        theta = tf.reshape(self.theta(x), [b, h * w, channels // 8])
        phi = tf.reshape(pooled(self.phi(x)), [b, (h // 2) * (w // 2), channels // 8])
        g = tf.reshape(pooled(self.g(x)), [b, (h // 2) * (w // 2), channels // 2])
        logits = tf.matmul(tf.cast(theta, tf.float32), tf.cast(phi, tf.float32),
                           transpose_b=True)
        beta = tf.cast(tf.nn.softmax(logits, axis=-1), x.dtype)
        attended = tf.reshape(tf.matmul(beta, g), [b, h, w, channels // 2])
        return x + tf.cast(self.gamma, x.dtype) * self.o(attended)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "spectral_norm": self.spectral_norm,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
