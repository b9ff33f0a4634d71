"""Discriminator gradient regularizers, per example.

``discriminator`` is any callable ``D(x, training=...)`` returning logits or
a dict with ``"logits"`` (`tfgan2.GAN` passes its ``run_D`` with the batch's
labels bound, so a conditional D is penalized at its own condition). Both
functions return a float32 vector of shape ``(batch,)``; `tfgan2.GAN`
multiplies it by the weight chosen in ``compile`` and averages it over the
global batch exactly like the adversarial loss, so a penalty means the same on
one replica or many.
"""
import tensorflow as tf

__all__ = ["gradient_penalty", "r1_penalty", "logits_and_r1_penalty"]


def _logits(output):
    """The logits of a discriminator output: the tensor itself, or its ``"logits"`` entry."""
    return output["logits"] if isinstance(output, dict) else output


def _logits_and_squared_input_gradient(discriminator, inputs, training):
    """``(D(x), ||grad_x D(x_i)||^2 per example)``.

    ``D(x)`` is returned as the discriminator returned it (logits, or a dict
    whose ``"logits"`` are differentiated). The gradient of the summed logits w.r.t. one input is that example's own
    gradient when D scores examples independently (exact without batch
    statistics; with BatchNorm in training mode it includes the batch coupling).
    """
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        output = discriminator(inputs, training=training)
        total = tf.reduce_sum(tf.cast(_logits(output), tf.float32))
    grads = tf.cast(tape.gradient(total, inputs), tf.float32)
    axes = tf.range(1, tf.rank(grads))
    return output, tf.reduce_sum(tf.square(grads), axis=axes)


def gradient_penalty(discriminator, real, fake, *, seed=None, eps=None, training=True):
    """WGAN-GP penalty (Gulrajani et al. 2017, arXiv:1704.00028).

    ``x_hat = eps * x + (1 - eps) * G(z)`` with ``eps ~ U[0, 1]`` drawn per
    example, and ``penalty_i = (||grad_x D(x_hat_i)||_2 - 1)^2``.

    Args:
      discriminator: callable returning logits (or a dict with ``"logits"``).
      real, fake: tensors of the same shape ``(B, ...)``.
      seed: shape-(2,) int seed for the stateless draw of ``eps``, or
      eps: the mixing factors themselves, shape ``(B,)``, in [0, 1].
    """
    real = tf.cast(real, fake.dtype)
    batch = tf.shape(real)[:1]
    if eps is None:
        if seed is None:
            raise ValueError("gradient_penalty needs a seed or the mixing factors eps.")
        eps = tf.random.stateless_uniform(batch, seed=seed, minval=0.0, maxval=1.0)
    shape = tf.concat([batch, tf.ones([tf.rank(real) - 1], tf.int32)], 0)
    eps = tf.reshape(tf.cast(eps, real.dtype), shape)
    mixed = eps * real + (1.0 - eps) * fake
    _, squared_norm = _logits_and_squared_input_gradient(discriminator, mixed, training)
    norm = tf.sqrt(squared_norm + 1e-12)
    return tf.square(norm - 1.0)


def logits_and_r1_penalty(discriminator, real, *, training=True):
    """``(D(x), penalty)``: R1 (Mescheder et al. 2018, arXiv:1801.04406) per example.

    ``penalty_i = ||grad_x D(x_i)||_2^2`` on real data, without the ``gamma/2``
    factor that the GAN applies. Returning the logits lets a training step reuse
    the forward pass it needs for the adversarial loss anyway.
    """
    return _logits_and_squared_input_gradient(discriminator, real, training)


def r1_penalty(discriminator, real, *, training=True):
    """R1 penalty per example, ``||grad_x D(x_i)||_2^2`` (see `logits_and_r1_penalty`)."""
    return logits_and_r1_penalty(discriminator, real, training=training)[1]
