"""An exponential moving average of the generator's weights (the copy samples are drawn from).

Averaging G's weights over the last updates gives smoother, better samples
than the last weights alone (Yazici et al. 2019, arXiv:1806.04498; Karras et
al. 2018). `MovingAverage` keeps a clone of the generator and updates it after
each generator step:

    w_ema <- d * w_ema + (1 - d) * w,    d = min(decay, (1 + t) / (10 + t))

at generator step ``t`` (the warm-up of `tf.train.ExponentialMovingAverage`,
so the copy follows G closely at the start). Non-trainable weights (BatchNorm
moving statistics) are copied.

Alternatively the average is given by its half-life ``h`` in generator steps
(StyleGAN2-ADA and R3GAN give it in images: ``h = images / batch_size``):

    d = 0.5 ^ (1 / h)

so a weight's influence halves every ``h`` steps. ``h`` may follow the step
(`tfgan2.schedules.CosineRamp`: R3GAN grows it from 0, a plain copy, during
its burn-in).
"""
import keras
import tensorflow as tf

from tfgan2 import replicas, schedules

__all__ = ["MovingAverage", "clone"]


def clone(generator):
    """A copy of ``generator`` with the same weights, named ``ema_<name>``.

    Raises:
      ValueError: the generator cannot be cloned (a subclassed model).
    """
    try:
        # Its own name scope: the copy's variables are "ema_<G>/<layer>/<weight>",
        # distinct from G's in TensorBoard histograms and graphs.
        with keras.name_scope(f"ema_{generator.name}"):
            copy = keras.models.clone_model(generator)
        copy.name = f"ema_{generator.name}"
    except Exception as exc:  # subclassed models cannot be cloned
        raise ValueError(
            "ema_decay needs a generator that keras.models.clone_model can copy "
            f"(a Functional or Sequential model): {exc}") from exc
    copy.set_weights(generator.get_weights())
    return copy


class MovingAverage:
    """The moving average of ``model``'s weights, kept in ``average`` (by default `clone(model)`).

    Give ``decay`` (a float in [0, 1), with the warm-up) or ``half_life`` (in
    steps, a number >= 0 or a schedule of the step), not both.
    """

    def __init__(self, model, decay=None, average=None, half_life=None):
        if (decay is None) == (half_life is None):
            raise ValueError("Give the EMA one of ema_decay and ema_half_life.")
        if decay is not None and not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"ema_decay must be None or in [0, 1), got {decay!r}.")
        if half_life is not None and not schedules.is_schedule(half_life):
            if not float(half_life) >= 0 or float(half_life) == float("inf"):
                raise ValueError(f"ema_half_life must be a finite number of steps >= 0 or a "
                                 f"schedule, got {half_life!r}.")
            half_life = float(half_life)
        self.model = model
        self.decay = None if decay is None else float(decay)
        self.half_life = half_life
        self.average = clone(model) if average is None else average

    def decay_at(self, step):
        """The decay used after update ``step`` (0-based): ``min(decay, (1 + t) / (10 + t))``,
        or ``0.5 ^ (1 / half_life(t))``."""
        t = tf.cast(step, tf.float32)
        if self.half_life is not None:
            half_life = tf.cast(schedules.value_at(self.half_life, step), tf.float32)
            return tf.pow(0.5, 1.0 / tf.maximum(half_life, 1e-8))
        return tf.minimum(self.decay, (1.0 + t) / (10.0 + t))

    def update(self, step):
        """One update of the average after the model's update ``step``.

        Written ``ema <- ema - (1 - d)(ema - w)``: a subtraction and one fused
        scaled update per weight (``ResourceApplyGradientDescent``).
        """
        decay = self.decay_at(step)
        moved, deltas, copied, values = [], [], [], []
        for ema_var, var in zip(self.average.weights, self.model.weights):
            if var.trainable and tf.as_dtype(var.dtype).is_floating:
                moved.append(ema_var)
                deltas.append(tf.convert_to_tensor(ema_var) - tf.convert_to_tensor(var))
            else:
                copied.append(ema_var)
                values.append(tf.convert_to_tensor(var))

        def move(v, delta):
            return tf.raw_ops.ResourceApplyGradientDescent(
                var=v.handle, alpha=tf.cast(1.0 - decay, v.dtype), delta=delta)

        replicas.assign(moved, deltas, move)
        replicas.assign(copied, values)
