"""Hyperparameters that follow the training step: R3GAN's cosine "burn-in".

R3GAN (Huang et al. 2024, arXiv:2501.05441, appendix D) moves four
hyperparameters along a cosine from a start to an end value over the first
part of training and holds the end value afterwards: the learning rate
(2e-4 -> 5e-5), the R1/R2 weight gamma (CIFAR-10: 0.05 -> 0.005), Adam's
beta_2 (0.9 -> 0.99) and the EMA half-life (0 -> 5M images), all over 20M
images. `CosineRamp` is that curve as a function of an optimizer's step:

    t = min(step, steps) / steps
    value(step) = end + (start - end) * (1 + cos(pi t)) / 2

It is a `keras.optimizers.schedules.LearningRateSchedule`, so it serves as
a learning rate as it is, and tfgan2 takes it wherever a hyperparameter may
follow the step: ``GAN.compile(r1_gamma=..., r2_gamma=...)`` (at D's step),
`tfgan2.optimizers.FusedAdam` ``beta_1`` / ``beta_2`` (at the optimizer's
step) and ``GAN(ema_half_life=...)`` (at G's step). Each is a pure function
of a step counter the checkpoint holds, so a restored run continues the same
curve bit for bit. Convert R3GAN's image counts with the global batch size:
``steps = images / batch_size``.
"""
import math

import keras
import tensorflow as tf

__all__ = ["CosineRamp", "value_at", "is_schedule"]


@keras.saving.register_keras_serializable(package="tfgan2")
class CosineRamp(keras.optimizers.schedules.LearningRateSchedule):
    """From ``start`` at step 0 to ``end`` at step ``steps`` along a half cosine, then ``end``.

    Either direction: ``start > end`` decays (learning rate, gamma), ``start <
    end`` grows (beta_2, EMA half-life).
    """

    def __init__(self, start, end, steps, name="cosine_ramp"):
        if not int(steps) == steps or steps < 1:
            raise ValueError(f"CosineRamp steps must be an integer >= 1, got {steps!r}.")
        for what, value in (("start", start), ("end", end)):
            if not math.isfinite(float(value)):
                raise ValueError(f"CosineRamp {what} must be a finite number, got {value!r}.")
        self.start, self.end, self.steps = float(start), float(end), int(steps)
        self.name = name

    def __call__(self, step):
        t = tf.minimum(tf.cast(step, tf.float32), float(self.steps)) / float(self.steps)
        return self.end + (self.start - self.end) * 0.5 * (1.0 + tf.cos(math.pi * t))

    def get_config(self):
        return {"start": self.start, "end": self.end, "steps": self.steps, "name": self.name}


def is_schedule(value):
    """True for a `keras.optimizers.schedules.LearningRateSchedule` (a value that follows the step)."""
    return isinstance(value, keras.optimizers.schedules.LearningRateSchedule)


def value_at(value, step):
    """``value(step)`` as a float32 tensor for a schedule, else ``value`` as it is."""
    return tf.cast(value(step), tf.float32) if is_schedule(value) else value
