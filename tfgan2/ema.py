"""An exponential moving average of the generator's weights (the copy samples are drawn from).

Averaging G's weights over the last updates gives smoother, better samples
than the last weights alone (Yazici et al. 2019, arXiv:1806.04498; Karras et
al. 2018). `MovingAverage` keeps a clone of the generator and updates it after
each generator step:

    w_ema <- d * w_ema + (1 - d) * w,    d = min(decay, (1 + t) / (10 + t))

at generator step ``t`` (the warm-up of `tf.train.ExponentialMovingAverage`,
so the copy follows G closely at the start). Non-trainable weights (BatchNorm
moving statistics) are copied.
"""
import keras
import tensorflow as tf

from tfgan2 import replicas

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
    """The moving average of ``model``'s weights, kept in ``average`` (by default `clone(model)`)."""

    def __init__(self, model, decay, average=None):
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"ema_decay must be None or in [0, 1), got {decay!r}.")
        self.model, self.decay = model, float(decay)
        self.average = clone(model) if average is None else average

    def decay_at(self, step):
        """The decay used after update ``step`` (0-based): ``min(decay, (1 + t) / (10 + t))``."""
        t = tf.cast(step, tf.float32)
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
