"""`OptimizerPair`: what Keras callbacks see as ``model.optimizer`` of a `tfgan2.GAN`.

A GAN has two optimizers, ``d_optimizer`` and ``g_optimizer``. Keras'
callbacks read and write one ``model.optimizer.learning_rate``
(`keras.callbacks.LearningRateScheduler`, `keras.callbacks.ReduceLROnPlateau`)
and read ``model.optimizer.iterations`` (`keras.callbacks.TensorBoard`). The
pair answers both:

* ``learning_rate`` reads the discriminator's learning rate. Assigning
  ``lr`` sets D's to ``lr`` and G's to ``lr * g_lr / d_lr`` (the ratio of the
  two rates just before the assignment, or the one at ``compile`` when D's
  rate is 0), so a schedule or a plateau reduction moves both rates and
  keeps the two-time-scale ratio (TTUR, Heusel et al. 2017) the run was
  configured with.
* ``iterations`` is the GAN's step counter (real batches consumed).

The pair holds no state of its own: it is not saved; the two optimizers are.
An optimizer whose learning rate is a `keras.optimizers.schedules`
schedule cannot be assigned a number; assigning raises ``ValueError``
naming it.
"""
import keras
import numpy as np

__all__ = ["OptimizerPair", "optimizer_from", "optimizers_for", "check_built"]


def optimizer_from(optimizer, role):
    """``optimizer`` as a `keras.optimizers.Optimizer` (identifiers via `keras.optimizers.get`).

    ``role`` names the argument in the error (``"d_optimizer"``).
    """
    if isinstance(optimizer, (str, dict)):
        try:
            return keras.optimizers.get(optimizer)
        except ValueError as exc:
            raise ValueError(f"{role}={optimizer!r} is not an optimizer Keras knows: "
                             f"{exc}") from exc
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(f"{role} must be a keras.optimizers.Optimizer or an identifier "
                         f"such as 'adam', got {type(optimizer).__name__}.")
    return optimizer


def check_built(network, role, example_shape):
    """Raise ValueError if ``network`` has no trainable variables yet (its optimizer would
    have nothing to update); ``example_shape`` is shown in the fix, e.g. ``(None, 100)``."""
    if not network.built or not network.trainable_variables:
        raise ValueError(
            f"The {role} ({network.name}) is not built: it has no variables yet, so its "
            f"optimizer would have nothing to update. Build it before compile, e.g. "
            f"{role}.build({example_shape}) or call it once on a batch, or create it with a "
            f"keras.Input (a Functional model).")


def optimizers_for(d_optimizer, g_optimizer):
    """The two optimizers ``GAN.compile`` is given, as distinct `keras.optimizers.Optimizer`s.

    Under the ``mixed_float16`` policy each is wrapped in a
    `keras.optimizers.LossScaleOptimizer` (float16 gradients underflow without
    loss scaling) unless it is one already.
    """
    if d_optimizer is g_optimizer and isinstance(d_optimizer, keras.optimizers.Optimizer):
        raise ValueError(
            "d_optimizer and g_optimizer are the same object: each network needs its own "
            "optimizer (its own slots). Pass two objects, e.g. "
            "d_optimizer=keras.optimizers.Adam(2e-4), g_optimizer=keras.optimizers.Adam(2e-4), "
            "or identifiers such as 'adam', which create one instance each.")
    pair = (optimizer_from(d_optimizer, "d_optimizer"), optimizer_from(g_optimizer, "g_optimizer"))
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        pair = tuple(opt if isinstance(opt, keras.optimizers.LossScaleOptimizer)
                     else keras.optimizers.LossScaleOptimizer(opt) for opt in pair)
    return pair


def _lr(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _has_schedule(optimizer):
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return isinstance(getattr(inner, "_learning_rate", None),
                      keras.optimizers.schedules.LearningRateSchedule)


class OptimizerPair:
    """Both optimizers of a GAN behind one ``learning_rate`` (see the module docstring)."""

    name = "gan_optimizers"
    built = True
    # The GAN keeps its own EMA generator (GAN(ema_decay=...)), which evaluate,
    # predict, generate and export use; keras.callbacks.SwapEMAWeights reads this
    # and refuses to run.
    use_ema = False

    def __init__(self, d_optimizer, g_optimizer, step_counter):
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self._step_counter = step_counter
        d_lr, g_lr = _lr(d_optimizer), _lr(g_optimizer)
        self._initial_ratio = g_lr / d_lr if d_lr else 1.0

    @property
    def learning_rate(self):
        """The discriminator's current learning rate (a float)."""
        return _lr(self.d_optimizer)

    @learning_rate.setter
    def learning_rate(self, value):
        value = float(value)
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"A learning rate must be a finite number >= 0, got {value!r}.")
        for role, opt in (("d_optimizer", self.d_optimizer), ("g_optimizer", self.g_optimizer)):
            if _has_schedule(opt):
                raise ValueError(
                    f"The GAN's {role} ({opt.name}) follows a keras.optimizers.schedules "
                    f"schedule, so its learning rate cannot be set by a callback: use either "
                    f"schedules in the optimizers or a learning-rate callback, not both.")
        d_lr = _lr(self.d_optimizer)
        ratio = _lr(self.g_optimizer) / d_lr if d_lr else self._initial_ratio
        self.d_optimizer.learning_rate = value
        self.g_optimizer.learning_rate = value * ratio

    @property
    def iterations(self):
        """The GAN's step counter (a variable)."""
        return self._step_counter

    @property
    def variables(self):
        return list(self.d_optimizer.variables) + list(self.g_optimizer.variables)

    def build(self, variables):
        """Nothing to build: `GAN.compile` built both optimizers on their networks."""

    def __repr__(self):
        return (f"OptimizerPair(d_optimizer={self.d_optimizer.name}, "
                f"g_optimizer={self.g_optimizer.name})")
