"""The numbers a GAN logs per training step and per evaluation batch.

``d_loss`` and ``g_loss`` (per-example losses averaged over the epoch so far;
penalties included for D in training), ``loss`` = ``d_loss + g_loss`` (what
Keras callbacks that watch one number read, non-finite as soon as either
is), ``p_real`` / ``p_fake`` = mean ``sigmoid(D(.))`` on real / generated data,
D's confusion-matrix view ``real_as_real`` / ``fake_as_fake``, and, when the
GAN has them, ``class_loss`` / ``class_accuracy`` (ACGAN) and ``info_penalty``
(InfoGAN).
"""
import keras
import tensorflow as tf

__all__ = ["StepMetrics", "results"]

_AUXILIARY = ("class_loss", "class_accuracy", "info_penalty")


class StepMetrics:
    """Keras `Mean` trackers of the logged numbers and the logs made of them.

    ``trackers`` is a dict of `keras.metrics.Mean` by name; the GAN keeps it
    as an attribute so that Keras tracks and resets the metrics.
    """

    def __init__(self, auxiliary_classifier=False, infogan=False):
        names = (["d_loss", "g_loss", "p_real", "p_fake", "real_as_real", "fake_as_fake", "loss"]
                 + ["class_loss", "class_accuracy"] * bool(auxiliary_classifier)
                 + ["info_penalty"] * bool(infogan))
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    def update(self, d_loss, g_loss, real_logits, fake_logits, judged_real, auxiliary):
        """Add one step's (or evaluation batch's) values; ``judged_real(logits)`` gives
        1.0 where D judges an input real (`tfgan2.objective.Objective.judged_real`)."""
        t = self.trackers
        t["d_loss"].update_state(d_loss)
        t["g_loss"].update_state(g_loss)
        t["loss"].update_state(d_loss + g_loss)
        t["p_real"].update_state(tf.sigmoid(tf.cast(real_logits, tf.float32)))
        t["p_fake"].update_state(tf.sigmoid(tf.cast(fake_logits, tf.float32)))
        t["real_as_real"].update_state(judged_real(real_logits))
        t["fake_as_fake"].update_state(1.0 - judged_real(fake_logits))
        for name in _AUXILIARY:
            if name in t:
                t[name].update_state(auxiliary[name])

    def logs(self, extra=(), augment=None, batch_axis=False):
        """The trackers' results, ``extra`` metrics' results and ``augment.logs()`` (ADA's
        ``ada_p``, ``ada_r_t``) when it has them.

        ``batch_axis``: give every value shape ``(1,)``: Keras reduces
        multi-worker logs with ``strategy.reduce(MEAN, axis=0)``, which needs one
        (tensorflow/tensorflow#72388).
        """
        logs = {name: m.result() for name, m in self.trackers.items()}
        logs.update({m.name: m.result() for m in extra})
        if hasattr(augment, "logs"):
            logs.update(augment.logs())
        if batch_axis:
            logs = {name: tf.reshape(v, [1]) for name, v in logs.items()}
        return logs


def results(metrics):
    """``{name: result}`` of Keras metrics; Python floats when eager, as Keras's own
    ``get_metrics_result`` gives (on TensorFlow 2.16 they would stay EagerTensors)."""
    values = {m.name: m.result() for m in metrics}
    if not tf.executing_eagerly():
        return values
    return {name: float(value) if getattr(value, "shape", None) == () else value
            for name, value in values.items()}
