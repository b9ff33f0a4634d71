"""The GAN's objective: every term of the discriminator's and the generator's loss, per example.

`Objective` is built from `tfgan2.GAN.compile`'s arguments and computes; it
never updates a weight (the GAN owns the tapes, the optimizers and what runs
after an update). Per example ``i`` of the batch (a group of ``pack`` samples
when packing):

    L_D,i = d_loss(D(x), D(G(z)))_i + lambda_GP GP_i + gamma_1 / 2 R1_i
            + gamma_2 / 2 R2_i + w_C class_loss_i + lambda_I info_i
    L_G,i = g_loss(D(G(z)) [, D(x)])_i + w_C class_loss_i + lambda_I info_i

``d_loss`` / ``g_loss``: the adversarial pair of `tfgan2.losses`; GP: the
gradient penalty at ``eps x + (1 - eps) G(z)`` (`tfgan2.regularizers`); R1 / R2:
the squared input gradient on real / generated data; ``class_loss``: ACGAN's terms when D has
a ``"class_logits"`` head; ``info``: InfoGAN's mutual-information penalty when
D has a ``"q"`` head. The relativistic average losses compare each logit with
the mean logit of the other kind over the global batch (all replicas); the
relativistic losses' generator term uses D's real logits, held constant.

D is reached through callables ``d(x, training=True)`` that the GAN makes of its
``run_D`` (labels bound, augmentation applied, packed inputs): the penalties
are gradients with respect to exactly those inputs.
"""
import numpy as np
import tensorflow as tf

from tfgan2 import losses as losses_lib
from tfgan2 import regularizers, replicas, schedules

__all__ = ["Objective", "loss_spec_of"]


def loss_spec_of(loss):
    """The `tfgan2.losses.LossSpec` of a loss name or of a pair of callables.

    Raises:
      ValueError: neither a known name nor a pair of callables.
    """
    if isinstance(loss, str):
        return losses_lib.spec(loss)
    if isinstance(loss, (tuple, list)) and len(loss) == 2 and all(callable(fn) for fn in loss):
        return losses_lib.LossSpec(loss[0], loss[1])
    raise ValueError(f"loss must be one of {', '.join(losses_lib.names())} or a pair of "
                     f"callables (d_loss_fn(real_logits, fake_logits), "
                     f"g_loss_fn(fake_logits)), got {loss!r}.")


def global_mean_logits(real_logits, fake_logits):
    """``{"real_mean", "fake_mean"}``: D's mean logits over the global batch (all replicas).

    Summing over the replicas makes a step the same on one device or many (the
    gradient flows back through the all-reduce).
    """
    logits = [tf.cast(t, tf.float32) for t in (real_logits, fake_logits)]
    values = replicas.global_sums(
        [tf.reduce_sum(t) for t in logits] + [tf.cast(tf.size(t), tf.float32) for t in logits])
    return {"real_mean": values[0] / values[2], "fake_mean": values[1] / values[3]}


class Objective:
    """Both phases' per-example losses, from the arguments of `tfgan2.GAN.compile`.

    Args:
      loss: a name from `tfgan2.losses.names()`, or a pair of callables
        ``(d_loss_fn, g_loss_fn)``: ``d_loss_fn(real_logits, fake_logits)``
        and ``g_loss_fn(fake_logits)`` returning per-example losses ``(B,)``
        (register them with `keras.saving.register_keras_serializable` to
        save the model); D judges a logit above 0 real for a custom loss. D
        may return logits of any shape ``(B, ...)`` (a patch discriminator):
        an example's loss is the mean over its logits.
      label_smoothing: one-sided label smoothing ``s`` in [0, 1] of D's real
        target, ``1 - s / 2`` (TF-GAN's meaning; TF-GAN's default is 0.25);
        only for the losses with a cross-entropy target
        (`tfgan2.losses.spec(loss).label_smoothing`).
      gradient_penalty: weight of the WGAN-GP penalty (0 disables it).
      gradient_penalty_mode: ``"two_sided"`` ``(||g|| - 1)^2`` or
        ``"one_sided"`` ``max(0, ||g|| - 1)^2`` (Petzka et al. 2018).
      r1_gamma: R1 weight gamma; the penalty added is ``gamma / 2 * R1``.
      r2_gamma: R2 weight (R1 on generated samples, R3GAN's second
        penalty); the term added is ``r2_gamma / 2 * R2``. Either gamma may be
        a schedule of D's step (`tfgan2.schedules.CosineRamp`, R3GAN's burn-in).
      classifier_weight: weight of the ACGAN class terms (D with an
        auxiliary classifier head), added to both losses.
      info_weight: weight lambda of InfoGAN's mutual-information penalty,
        added to both losses as in TF-GAN.
      labels: the GAN's `tfgan2.labels.LabelSpec`.
      codes: the GAN's `tfgan2.infogan.LatentCodes` (or None); ``latent_dim``
        is where they start in G's input.
      packed: D judges groups of several samples (no auxiliary heads then).
    """

    def __init__(self, loss="non_saturating", *, label_smoothing=0.0, gradient_penalty=0.0,
                 gradient_penalty_mode="two_sided", r1_gamma=0.0, r2_gamma=0.0,
                 classifier_weight=1.0, info_weight=1.0, labels=None, codes=None,
                 latent_dim=None, packed=False):
        for name, value in (("gradient_penalty", gradient_penalty), ("r1_gamma", r1_gamma),
                            ("r2_gamma", r2_gamma),
                            ("classifier_weight", classifier_weight),
                            ("info_weight", info_weight)):
            if name.endswith("gamma") and schedules.is_schedule(value):
                continue
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0"
                                 + (" or a schedule" if name.endswith("gamma") else "")
                                 + f", got {value!r}.")
        self.spec = loss_spec_of(loss)
        self.loss_name = loss if isinstance(loss, str) else "custom"
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}.")
        if label_smoothing and not self.spec.label_smoothing:
            smoothable = [n for n in losses_lib.names() if losses_lib.spec(n).label_smoothing]
            raise ValueError(f"label_smoothing applies to losses with a cross-entropy target "
                             f"({', '.join(smoothable)}); loss {loss!r} has none.")
        if gradient_penalty_mode not in regularizers.GRADIENT_PENALTY_MODES:
            raise ValueError(f"gradient_penalty_mode must be one of "
                             f"{', '.join(regularizers.GRADIENT_PENALTY_MODES)}, "
                             f"got {gradient_penalty_mode!r}.")
        self.label_smoothing = float(label_smoothing)
        self.gradient_penalty = float(gradient_penalty)
        self.gradient_penalty_mode = gradient_penalty_mode
        self.r1_gamma = r1_gamma if schedules.is_schedule(r1_gamma) else float(r1_gamma)
        self.r2_gamma = r2_gamma if schedules.is_schedule(r2_gamma) else float(r2_gamma)
        self.classifier_weight = float(classifier_weight)
        self.info_weight = float(info_weight)
        self.labels, self.codes, self.latent_dim = labels, codes, latent_dim
        self.packed = bool(packed)
        self._d_kwargs = {"label_smoothing": self.label_smoothing} if label_smoothing else {}

    @property
    def relativistic(self):
        """The generator's term needs D's logits on the real batch."""
        return self.spec.relativistic

    @property
    def threshold(self):
        """The logit above which D judges an input real."""
        return self.spec.threshold

    def judged_real(self, logits):
        """1.0 where D judges an input real, 0.0 elsewhere, one per logit, float32."""
        return tf.cast(tf.reshape(tf.cast(logits, tf.float32), [-1]) > self.threshold,
                       tf.float32)

    # ---------------------------------------------------------- adversarial
    def _means(self, real_logits, fake_logits):
        return global_mean_logits(real_logits, fake_logits) if self.spec.batch_means else {}

    def discriminator_loss(self, real_logits, fake_logits, means=None):
        """The adversarial part of ``L_D`` per example."""
        means = self._means(real_logits, fake_logits) if means is None else means
        return self.spec.discriminator(real_logits, fake_logits, **self._d_kwargs, **means)

    def generator_loss(self, fake_logits, real_logits=None, means=None):
        """The adversarial part of ``L_G`` per example (``real_logits`` for relativistic losses)."""
        if not self.relativistic:
            return self.spec.generator(fake_logits)
        means = self._means(real_logits, fake_logits) if means is None else means
        return self.spec.generator(fake_logits, real_logits, **means)

    def adversarial(self, real_logits, fake_logits):
        """``(L_D, L_G)`` adversarial parts per example on the same logits (evaluation)."""
        means = self._means(real_logits, fake_logits)
        return (self.discriminator_loss(real_logits, fake_logits, means),
                self.generator_loss(fake_logits, real_logits, means))

    # ------------------------------------------------------------ auxiliary
    def auxiliary(self, real_out, fake_out, labels, latents):
        """Per-example ACGAN class loss (and accuracy on real data) and InfoGAN penalty.

        ``real_out`` is None in the generator's phase, where the class term is
        ``CE(C(G(z, y)), y)`` only. ``latents`` are G's inputs (z, then codes).
        """
        terms = {}
        if self.packed and ("class_logits" in fake_out or "q" in fake_out):
            raise ValueError("pack > 1 does not support auxiliary D heads (class_logits, q): "
                             "a packed input has no single label or code.")
        if "class_logits" in fake_out:
            if self.labels is None or not self.labels.conditional:
                raise ValueError("D returns class_logits but the GAN is unconditional.")
            y = self.labels.condition(labels)
            multilabel = self.labels.multilabel
            if real_out is None:
                terms["class_loss"] = losses_lib.acgan_generator_loss(
                    fake_out["class_logits"], y, multilabel)
            else:
                terms["class_loss"] = losses_lib.acgan_discriminator_loss(
                    real_out["class_logits"], fake_out["class_logits"], y, multilabel)
                terms["class_accuracy"] = self._class_accuracy(real_out["class_logits"], y)
        if "q" in fake_out:
            if self.codes is None:
                raise ValueError("D returns a Q head ('q') but the GAN has no infogan_codes.")
            terms["info_penalty"] = self.codes.penalty(latents[:, self.latent_dim:],
                                                       fake_out["q"])
        return terms

    def _class_accuracy(self, class_logits, y):
        """Per-example share of labels D's classifier gets right (per attribute if multi-label)."""
        logits = tf.cast(class_logits, tf.float32)
        if self.labels.multilabel:
            return tf.reduce_mean(tf.cast(tf.equal(tf.cast(logits > 0, tf.float32), y),
                                          tf.float32), axis=-1)
        return tf.cast(tf.equal(tf.argmax(logits, -1), tf.argmax(y, -1)), tf.float32)

    def _with_auxiliary(self, per_example, aux):
        for term, weight in ((aux.get("class_loss"), self.classifier_weight),
                             (aux.get("info_penalty"), self.info_weight)):
            if term is not None:
                per_example += weight * term
        return per_example

    # --------------------------------------------------------------- phases
    @staticmethod
    def _active(weight):
        return schedules.is_schedule(weight) or weight > 0

    def discriminator(self, d_real, d_fake, real, fake, *, labels=None, latents=None,
                      d_mix=None, eps=None, loss_scale=None, step=None):
        """Every term of D's phase; call inside the tape that differentiates D.

        ``d_real`` / ``d_fake`` / ``d_mix``: D on (packed) real, generated and
        mixed inputs; ``eps``: the gradient penalty's mixing factors, one per
        (packed) example (needed when ``gradient_penalty > 0``);
        ``loss_scale``: the dynamic loss scale under float16, by which the
        penalties' input gradients are scaled (`tfgan2.regularizers`);
        ``step``: D's step, at which scheduled gammas are read.

        Returns a dict: ``"loss"`` (``L_D`` per example), ``"real_logits"``,
        ``"fake_logits"`` and the auxiliary terms.
        """
        penalty = dict(training=True, loss_scale=loss_scale)
        if self._active(self.r1_gamma):
            real_out, r1 = regularizers.logits_and_r1_penalty(d_real, real, **penalty)
        else:
            real_out = d_real(real)
        if self._active(self.r2_gamma):
            fake_out, r2 = regularizers.logits_and_r1_penalty(d_fake, fake, **penalty)
        else:
            fake_out = d_fake(fake)
        per_example = self.discriminator_loss(real_out["logits"], fake_out["logits"])
        if self.gradient_penalty > 0:
            gp = regularizers.gradient_penalty(d_mix, real, fake, eps=eps,
                                               mode=self.gradient_penalty_mode,
                                               loss_scale=loss_scale)
            per_example += self.gradient_penalty * gp
        if self._active(self.r1_gamma):
            per_example += 0.5 * schedules.value_at(self.r1_gamma, step) * r1
        if self._active(self.r2_gamma):
            per_example += 0.5 * schedules.value_at(self.r2_gamma, step) * r2
        aux = self.auxiliary(real_out, fake_out, labels, latents)
        return {"loss": self._with_auxiliary(per_example, aux),
                "real_logits": real_out["logits"], "fake_logits": fake_out["logits"], **aux}

    def generator(self, fake_out, real_logits=None, *, labels=None, latents=None):
        """Every term of G's phase from D's output on G's samples; call inside G's tape.

        ``real_logits``: D's logits on the real batch (relativistic losses),
        computed outside the tape. Returns ``{"loss": L_G per example, ...}``.
        """
        if self.relativistic and real_logits is None:
            raise ValueError(f"loss {self.loss_name!r} needs D's logits on the real batch in "
                             f"the generator's phase.")
        per_example = self.generator_loss(fake_out["logits"], real_logits)
        aux = self.auxiliary(None, fake_out, labels, latents)
        return {"loss": self._with_auxiliary(per_example, aux), **aux}
