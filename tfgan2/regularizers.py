"""Discriminator regularizers: gradient penalties per example, and weight clipping.

``discriminator`` is any callable ``D(x, training=...)`` returning logits or
a dict with ``"logits"`` (`tfgan2.GAN` passes its ``run_D`` with the batch's
labels bound, so a conditional D is penalized at its own condition). The
penalties return a float32 vector of shape ``(batch,)``; `tfgan2.GAN`
multiplies it by the weight chosen in ``compile`` and averages it over the
global batch exactly like the adversarial loss, so a penalty means the same on
one replica or many. `clip_weights` constrains D's weights directly instead.

Under a float16 compute policy the input gradient is taken in float16 inside
D, where it underflows when D's outputs are small (a zero-initialized last
layer, an early D): the penalties scale the summed logits by ``loss_scale``
before differentiating and divide the float32 gradient by it afterwards,
exactly as dynamic loss scaling does for the weight gradients. `tfgan2.GAN`
passes its D optimizer's current dynamic scale, which halves whenever a
scaled gradient overflows (the step is then skipped); called directly on a
float16 Keras model, the penalties use `DEFAULT_FLOAT16_SCALE`.
"""
import tensorflow as tf

from tfgan2 import replicas

__all__ = ["gradient_penalty", "r1_penalty", "logits_and_r1_penalty", "clip_weights",
           "GRADIENT_PENALTY_MODES", "DEFAULT_FLOAT16_SCALE"]

# Keras' LossScaleOptimizer starts from 2^15 too.
DEFAULT_FLOAT16_SCALE = 2.0 ** 15

# "two_sided": (||g|| - 1)^2 (Gulrajani et al. 2017); "one_sided": max(0, ||g|| - 1)^2
# (Petzka et al. 2018), which only penalizes slopes above the target.
GRADIENT_PENALTY_MODES = ("two_sided", "one_sided")


def _logits(output):
    """The logits of a discriminator output: the tensor itself, or its ``"logits"`` entry."""
    return output["logits"] if isinstance(output, dict) else output


def _scale_for(discriminator, loss_scale):
    """``loss_scale``, or `DEFAULT_FLOAT16_SCALE` for a Keras model computing in float16."""
    if loss_scale is not None:
        return loss_scale
    if getattr(discriminator, "compute_dtype", None) == "float16":
        return DEFAULT_FLOAT16_SCALE
    return None


def _logits_and_squared_input_gradient(discriminator, inputs, training, loss_scale=None):
    """``(D(x), ||grad_x D(x_i)||^2 per example)``.

    ``D(x)`` is returned as the discriminator returned it (logits, or a dict
    whose ``"logits"`` are differentiated). The gradient of the summed logits
    w.r.t. one input is that example's own gradient when D scores examples
    independently (exact without batch statistics; with BatchNorm in training
    mode it includes the batch coupling). ``loss_scale``: see the module docstring.
    """
    scale = _scale_for(discriminator, loss_scale)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        output = discriminator(inputs, training=training)
        total = tf.reduce_sum(tf.cast(_logits(output), tf.float32))
        if scale is not None:
            total = total * tf.cast(scale, tf.float32)
    grads = tf.cast(tape.gradient(total, inputs), tf.float32)
    if scale is not None:
        grads = grads / tf.cast(scale, tf.float32)
    axes = tf.range(1, tf.rank(grads))
    return output, tf.reduce_sum(tf.square(grads), axis=axes)


def gradient_penalty(discriminator, real, fake, *, seed=None, eps=None, training=True,
                     target=1.0, mode="two_sided", loss_scale=None):
    """WGAN-GP penalty (Gulrajani et al. 2017, arXiv:1704.00028), two- or one-sided.

    ``x_hat = eps * x + (1 - eps) * G(z)`` with ``eps ~ U[0, 1]`` drawn per
    example, ``s_i = ||grad_x D(x_hat_i)||_2 / target`` and

    * ``mode="two_sided"``: ``penalty_i = (s_i - 1)^2``;
    * ``mode="one_sided"``: ``penalty_i = max(0, s_i - 1)^2`` (Petzka et al.
      2018, arXiv:1709.08894: only slopes steeper than the target are
      penalized, which is all a Lipschitz constraint asks for).

    A discriminator with several logits per example (a patch D) is
    differentiated through the sum of its logits, as in TF-GAN.

    Args:
      discriminator: callable returning logits (or a dict with ``"logits"``).
      real, fake: tensors of the same shape ``(B, ...)``.
      seed: shape-(2,) int seed for the stateless draw of ``eps``, or
      eps: the mixing factors themselves, shape ``(B,)``, in [0, 1].
      target: the gradient norm aimed at (> 0).
      mode: one of `GRADIENT_PENALTY_MODES`.
      loss_scale: the factor the input gradient is scaled by under float16
        (see the module docstring); None: 1, or `DEFAULT_FLOAT16_SCALE` for a
        float16 Keras model.
    """
    if mode not in GRADIENT_PENALTY_MODES:
        raise ValueError(f"gradient penalty mode must be one of "
                         f"{', '.join(GRADIENT_PENALTY_MODES)}, got {mode!r}.")
    if not float(target) > 0:
        raise ValueError(f"gradient penalty target must be > 0, got {target!r}.")
    real = tf.cast(real, fake.dtype)
    batch = tf.shape(real)[:1]
    if eps is None:
        if seed is None:
            raise ValueError("gradient_penalty needs a seed or the mixing factors eps.")
        eps = tf.random.stateless_uniform(batch, seed=seed, minval=0.0, maxval=1.0)
    shape = tf.concat([batch, tf.ones([tf.rank(real) - 1], tf.int32)], 0)
    eps = tf.reshape(tf.cast(eps, real.dtype), shape)
    mixed = eps * real + (1.0 - eps) * fake
    _, squared_norm = _logits_and_squared_input_gradient(discriminator, mixed, training,
                                                         loss_scale)
    excess = tf.sqrt(squared_norm + 1e-12) / float(target) - 1.0
    if mode == "one_sided":
        excess = tf.nn.relu(excess)
    return tf.square(excess)


def logits_and_r1_penalty(discriminator, real, *, training=True, loss_scale=None):
    """``(D(x), penalty)``: R1 (Mescheder et al. 2018, arXiv:1801.04406) per example.

    ``penalty_i = ||grad_x D(x_i)||_2^2`` on real data, without the ``gamma/2``
    factor that the GAN applies. Returning the logits lets a training step reuse
    the forward pass it needs for the adversarial loss anyway. The same
    function on generated samples is R2 (R3GAN, Huang et al. 2024).
    ``loss_scale``: see `gradient_penalty`.
    """
    return _logits_and_squared_input_gradient(discriminator, real, training, loss_scale)


def r1_penalty(discriminator, real, *, training=True, loss_scale=None):
    """R1 penalty per example, ``||grad_x D(x_i)||_2^2`` (see `logits_and_r1_penalty`)."""
    return logits_and_r1_penalty(discriminator, real, training=training,
                                 loss_scale=loss_scale)[1]


def clip_weights(variables, clip):
    """Clip every variable to ``[-clip, clip]`` in place (WGAN weight clipping).

    Arjovsky et al. 2017 (arXiv:1701.07875, Algorithm 1) clip the critic's
    weights after each of its updates to keep it (roughly) Lipschitz; they use
    ``clip = 0.01``. `tfgan2.GAN` does this after every D update when
    compiled with ``weight_clip``. Returns the list of clipped values.

    Raises:
      ValueError: ``clip`` is not a positive finite number.
    """
    clip = float(clip)
    if not clip > 0 or clip == float("inf"):
        raise ValueError(f"weight clip must be a positive finite number, got {clip!r}.")
    values = [tf.clip_by_value(v, -clip, clip) for v in variables]
    replicas.assign(variables, values)  # each replica's copy, also inside a distributed step
    return values
