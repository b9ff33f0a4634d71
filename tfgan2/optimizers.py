"""`FusedAdam`: Keras's Adam with each variable's update run as one fused TensorFlow kernel.

Keras 3's `keras.optimizers.Adam` updates a variable with about ten separate
element-wise ops (two moment updates, a square, a square root, a division,
...), each a pass over memory. TensorFlow's ``ResourceApplyAdam`` kernel does
the same update in one pass:

    alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m <- m + (g - m) (1 - beta_1)
    v <- v + (g^2 - v) (1 - beta_2)
    w <- w - alpha m / (sqrt(v) + epsilon)

which is Keras's update, term for term (Kingma & Ba 2015, with epsilon
outside the square root as in Keras). The slot variables, the step counter,
learning-rate schedules, clipping, weight decay and checkpoints are those of
`keras.optimizers.Adam` (a checkpoint of one restores into the other). Where
the kernel does not apply — sparse gradients (embeddings), ``amsgrad`` — the
update falls back to Keras's own. For the digits MLP GAN, whose step is
dominated by G's 1024x1024 layer, the optimizer is about half of the op time
with Keras's update (`benchmarks/profile_step.py --network=mlp`).

``beta_1`` and ``beta_2`` may also be schedules of the optimizer's step
(`tfgan2.schedules.CosineRamp`: R3GAN raises beta_2 from 0.9 to 0.99 during
its burn-in); the bias corrections then use the current betas, as PyTorch's
Adam does when its betas are changed during training.
"""
import keras
import tensorflow as tf

from tfgan2 import schedules


def _handle(variable):
    """The resource handle of a Keras or TensorFlow variable (this replica's component)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


@keras.saving.register_keras_serializable(package="tfgan2")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` (same arguments, same state) with a fused dense update;
    ``beta_1`` / ``beta_2`` may be schedules of the step (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        scheduled = [schedules.is_schedule(b) for b in (self.beta_1, self.beta_2)]
        if any(scheduled) and self.amsgrad:
            raise ValueError("FusedAdam takes scheduled betas only without amsgrad.")
        self._scheduled_betas = any(scheduled)

    def _betas(self, dtype):
        return [tf.cast(schedules.value_at(b, self.iterations), dtype)
                for b in (self.beta_1, self.beta_2)]

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            if self._scheduled_betas:
                raise ValueError("FusedAdam's scheduled betas need dense gradients; "
                                 "this variable's are sparse (an embedding).")
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = self._betas(dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))

    def get_config(self):
        config = super().get_config()
        for key in ("beta_1", "beta_2"):
            if schedules.is_schedule(config[key]):
                config[key] = keras.optimizers.schedules.serialize(config[key])
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("beta_1", "beta_2"):
            if isinstance(config.get(key), dict):
                config[key] = keras.optimizers.schedules.deserialize(
                    config[key], custom_objects=custom_objects)
        return super().from_config(config, custom_objects=custom_objects)
