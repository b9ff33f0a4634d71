"""Adversarial losses as pure functions of discriminator logits.

Every function takes raw discriminator outputs (logits, no sigmoid) and returns
the *per-example* loss, a float32 tensor of shape ``(batch,)``. The loss of a
batch is the mean of that vector; `tfgan2.GAN` averages it over the global
batch so that a step is the same on one device or many.

Any discriminator output shape works: logits of shape ``(B,)``, ``(B, 1)`` or
``(B, H, W, ...)`` (a patch discriminator, Isola et al. 2017,
arXiv:1611.07004, scoring every patch) are scored element by element and an
example's loss is the mean over all of its logits. For ``(B,)`` / ``(B, 1)``
that is the plain per-example loss.

Notation: ``r = D(x)`` are logits on real data, ``f = D(G(z))`` logits on
generated data, ``sigma`` is the logistic sigmoid and
``softplus(t) = log(1 + exp(t))``. The cross-entropy terms use the identities
``-log sigma(t) = softplus(-t)`` and ``-log(1 - sigma(t)) = softplus(t)``;
``tf.nn.softplus`` evaluates ``max(t, 0) + log(1 + exp(-|t|))``, the form that
never overflows (the stable BCE of the CS231N notes).

One-sided label smoothing (Salimans et al. 2016, arXiv:1606.03498, section
3.4) is an argument of the cross-entropy discriminator losses with TF-GAN's
meaning: ``label_smoothing = s`` moves the real target from 1 to ``1 - s / 2``
(``tf.compat.v1.losses.sigmoid_cross_entropy``'s convention, which blends the
label with 1/2), the fake target stays 0, so the real term becomes
``(1 - s/2) softplus(-r) + s/2 softplus(r)``. TF-GAN smooths by 0.25 by
default; tfgan2 does not smooth unless asked.

The relativistic average losses (Jolicoeur-Martineau 2018, arXiv:1807.00734)
compare each logit with the mean logit of the other kind in the same batch,
``r~ = r - mean(f)`` and ``f~ = f - mean(r)`` (means over every logit of the
batch; `tfgan2.GAN` takes them over the global batch, across replicas). Their generator losses need D's logits on real data
too: `spec(name).relativistic` says so, and `tfgan2.GAN` then evaluates D on
the real batch in the generator step.

The relativistic pairing loss (RpGAN, Jolicoeur-Martineau 2019,
arXiv:1807.00734; the loss of R3GAN, Huang et al. 2024, arXiv:2501.05441, eq.
2-3) pairs real and generated examples row by row instead of comparing with
batch means: ``L_D,i = softplus(-(r_i - f_i))``, ``L_G,i = softplus(-(f_i -
r_i))``. Row ``i`` of the real batch meets row ``i`` of the generated one, so
each replica pairs its own rows and 1 or N replicas compute the same losses.
"""
from typing import Callable, NamedTuple

import tensorflow as tf

__all__ = [
    "minimax_discriminator_loss", "minimax_generator_loss",
    "non_saturating_generator_loss",
    "least_squares_discriminator_loss", "least_squares_generator_loss",
    "wasserstein_discriminator_loss", "wasserstein_generator_loss",
    "hinge_discriminator_loss", "hinge_generator_loss",
    "relativistic_average_discriminator_loss", "relativistic_average_generator_loss",
    "relativistic_average_least_squares_discriminator_loss",
    "relativistic_average_least_squares_generator_loss",
    "relativistic_average_hinge_discriminator_loss",
    "relativistic_average_hinge_generator_loss",
    "relativistic_pairing_discriminator_loss", "relativistic_pairing_generator_loss",
    "LossSpec", "spec", "get", "names", "decision_threshold",
    "classification_loss", "acgan_discriminator_loss", "acgan_generator_loss",
    "mutual_information_penalty",
]


def _logits(logits):
    """Logits of any shape ``(B, ...)`` as float32 (a Python list becomes a tensor)."""
    return tf.cast(tf.convert_to_tensor(logits), tf.float32)


def _per_example(values):
    """Element-wise losses ``(B, ...)`` -> the mean over each example's elements, ``(B,)``."""
    values = tf.convert_to_tensor(values)
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def _check_smoothing(label_smoothing):
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}.")
    return 0.5 * float(label_smoothing)


def _real_cross_entropy(logits, label_smoothing):
    """``-t log sigma(x) - (1 - t) log(1 - sigma(x))`` with target ``t = 1 - s/2``."""
    half = _check_smoothing(label_smoothing)
    loss = tf.nn.softplus(-logits)
    if half:
        loss = (1.0 - half) * loss + half * tf.nn.softplus(logits)
    return loss


def minimax_discriminator_loss(real_logits, fake_logits, label_smoothing=0.0):
    """Cross-entropy discriminator loss (Goodfellow et al. 2014, arXiv:1406.2661).

    ``L_D = -log sigma(r) - log(1 - sigma(f)) = softplus(-r) + softplus(f)``,
    with the real target smoothed to ``1 - label_smoothing / 2`` if asked (see
    the module docstring). Shared by the minimax and non-saturating games.
    """
    r, f = _logits(real_logits), _logits(fake_logits)
    return (_per_example(_real_cross_entropy(r, label_smoothing))
            + _per_example(tf.nn.softplus(f)))


def minimax_generator_loss(fake_logits):
    """Original minimax generator loss (Goodfellow et al. 2014).

    ``L_G = log(1 - sigma(f)) = -softplus(f)``. Its gradient vanishes when D
    confidently rejects the samples, which is why `non_saturating` is preferred.
    (TF-GAN's ``minimax_generator_loss`` is ``-softplus(-1) - softplus(f)``: it
    also counts a real term for a constant logit of 1, which shifts the value
    by ``-0.3133`` and leaves the gradient unchanged.)
    """
    return _per_example(-tf.nn.softplus(_logits(fake_logits)))


def non_saturating_generator_loss(fake_logits):
    """Non-saturating generator loss (Goodfellow et al. 2014, section 3).

    ``L_G = -log sigma(f) = softplus(-f)`` (TF-GAN's ``modified_generator_loss``).
    """
    return _per_example(tf.nn.softplus(-_logits(fake_logits)))


def least_squares_discriminator_loss(real_logits, fake_logits):
    """LSGAN discriminator loss (Mao et al. 2017, arXiv:1611.04076), targets b=1, a=0.

    ``L_D = 1/2 (r - 1)^2 + 1/2 f^2`` on the raw scores.
    """
    r, f = _logits(real_logits), _logits(fake_logits)
    return _per_example(0.5 * tf.square(r - 1.0)) + _per_example(0.5 * tf.square(f))


def least_squares_generator_loss(fake_logits):
    """LSGAN generator loss (Mao et al. 2017), target c=1: ``L_G = 1/2 (f - 1)^2``."""
    return _per_example(0.5 * tf.square(_logits(fake_logits) - 1.0))


def wasserstein_discriminator_loss(real_logits, fake_logits):
    """Wasserstein critic loss (Arjovsky et al. 2017, arXiv:1701.07875).

    ``L_D = f - r``. Needs a Lipschitz constraint on D: a gradient penalty
    (Gulrajani et al. 2017), spectral normalization, or weight clipping
    (``GAN.compile(weight_clip=c)``, the original paper's choice).
    """
    return _per_example(_logits(fake_logits)) - _per_example(_logits(real_logits))


def wasserstein_generator_loss(fake_logits):
    """Wasserstein generator loss (Arjovsky et al. 2017): ``L_G = -f``."""
    return _per_example(-_logits(fake_logits))


def hinge_discriminator_loss(real_logits, fake_logits):
    """Hinge discriminator loss (Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018).

    ``L_D = max(0, 1 - r) + max(0, 1 + f)``.
    """
    r, f = _logits(real_logits), _logits(fake_logits)
    return _per_example(tf.nn.relu(1.0 - r)) + _per_example(tf.nn.relu(1.0 + f))


def hinge_generator_loss(fake_logits):
    """Hinge-game generator loss (Miyato et al. 2018, arXiv:1802.05957): ``L_G = -f``."""
    return _per_example(-_logits(fake_logits))


def _relative(real_logits, fake_logits, real_mean=None, fake_mean=None):
    """``(r - mean(f), f - mean(r))``, the means over every logit of the batch unless given."""
    r, f = _logits(real_logits), _logits(fake_logits)
    real_mean = tf.reduce_mean(r) if real_mean is None else tf.cast(real_mean, tf.float32)
    fake_mean = tf.reduce_mean(f) if fake_mean is None else tf.cast(fake_mean, tf.float32)
    return r - fake_mean, f - real_mean


def relativistic_average_discriminator_loss(real_logits, fake_logits, label_smoothing=0.0,
                                            real_mean=None, fake_mean=None):
    """RaSGAN discriminator loss (Jolicoeur-Martineau 2018, arXiv:1807.00734, eq. 11).

    ``L_D = -log sigma(r~) - log(1 - sigma(f~)) = softplus(-r~) + softplus(f~)``
    with ``r~ = r - mean(f)``, ``f~ = f - mean(r)``; ``label_smoothing``
    smooths the real target as in `minimax_discriminator_loss`. Every
    relativistic loss takes ``real_mean`` / ``fake_mean`` to use means over a
    larger batch than the logits given (`tfgan2.GAN` passes the global-batch
    means under a distribution strategy).
    """
    rel_r, rel_f = _relative(real_logits, fake_logits, real_mean, fake_mean)
    return (_per_example(_real_cross_entropy(rel_r, label_smoothing))
            + _per_example(tf.nn.softplus(rel_f)))


def relativistic_average_generator_loss(fake_logits, real_logits, real_mean=None,
                                        fake_mean=None):
    """RaSGAN generator loss: the roles swapped, ``L_G = softplus(r~) + softplus(-f~)``.

    Unlike the standard GAN, G's loss depends on D's real logits: G both
    raises its samples' logits and lowers the real ones relative to them.
    """
    rel_r, rel_f = _relative(real_logits, fake_logits, real_mean, fake_mean)
    return _per_example(tf.nn.softplus(rel_r)) + _per_example(tf.nn.softplus(-rel_f))


def relativistic_average_least_squares_discriminator_loss(real_logits, fake_logits,
                                                          real_mean=None, fake_mean=None):
    """RaLSGAN discriminator loss (Jolicoeur-Martineau 2018, section 4.3).

    ``L_D = (r~ - 1)^2 + (f~ + 1)^2`` (the paper's form, without LSGAN's 1/2).
    """
    rel_r, rel_f = _relative(real_logits, fake_logits, real_mean, fake_mean)
    return _per_example(tf.square(rel_r - 1.0)) + _per_example(tf.square(rel_f + 1.0))


def relativistic_average_least_squares_generator_loss(fake_logits, real_logits,
                                                      real_mean=None, fake_mean=None):
    """RaLSGAN generator loss: ``L_G = (f~ - 1)^2 + (r~ + 1)^2``."""
    rel_r, rel_f = _relative(real_logits, fake_logits, real_mean, fake_mean)
    return _per_example(tf.square(rel_f - 1.0)) + _per_example(tf.square(rel_r + 1.0))


def relativistic_average_hinge_discriminator_loss(real_logits, fake_logits,
                                                  real_mean=None, fake_mean=None):
    """RaHinge discriminator loss (Jolicoeur-Martineau 2018, section 4.3).

    ``L_D = max(0, 1 - r~) + max(0, 1 + f~)``.
    """
    rel_r, rel_f = _relative(real_logits, fake_logits, real_mean, fake_mean)
    return _per_example(tf.nn.relu(1.0 - rel_r)) + _per_example(tf.nn.relu(1.0 + rel_f))


def relativistic_average_hinge_generator_loss(fake_logits, real_logits, real_mean=None,
                                              fake_mean=None):
    """RaHinge generator loss: ``L_G = max(0, 1 - f~) + max(0, 1 + r~)``."""
    rel_r, rel_f = _relative(real_logits, fake_logits, real_mean, fake_mean)
    return _per_example(tf.nn.relu(1.0 - rel_f)) + _per_example(tf.nn.relu(1.0 + rel_r))


def _paired(real_logits, fake_logits):
    """Real and generated logits of the same shape ``(B, ...)``, float32."""
    r, f = _logits(real_logits), _logits(fake_logits)
    if r.shape.rank is not None and f.shape.rank is not None and r.shape != f.shape:
        if r.shape.is_fully_defined() and f.shape.is_fully_defined():
            raise ValueError(f"The pairing loss pairs real and generated logits row by row: "
                             f"got shapes {r.shape} and {f.shape}.")
    return r, f


def relativistic_pairing_discriminator_loss(real_logits, fake_logits):
    """RpGAN discriminator loss (R3GAN eq. 2): ``L_D,i = softplus(-(r_i - f_i)) =
    -log sigma(r_i - f_i)``, real row ``i`` paired with generated row ``i``."""
    r, f = _paired(real_logits, fake_logits)
    return _per_example(tf.nn.softplus(f - r))


def relativistic_pairing_generator_loss(fake_logits, real_logits):
    """RpGAN generator loss (R3GAN eq. 3): ``L_G,i = softplus(-(f_i - r_i))``.

    ``r`` is D's logit on the real example paired with ``f``'s; `tfgan2.GAN`
    holds it constant in G's step, as R3GAN's trainer does.
    """
    r, f = _paired(real_logits, fake_logits)
    return _per_example(tf.nn.softplus(r - f))


class LossSpec(NamedTuple):
    """One entry of the loss table.

    Attributes:
      discriminator: ``(real_logits, fake_logits[, label_smoothing]) -> (B,)``.
      generator: ``(fake_logits) -> (B,)``, or ``(fake_logits, real_logits)``
        when ``relativistic``.
      relativistic: the generator loss needs D's logits on real data.
      batch_means: both losses take ``real_mean`` / ``fake_mean``, the mean
        logits over the global batch (the relativistic average losses).
      label_smoothing: the discriminator loss takes ``label_smoothing``
        (it has a probability target on real data).
      threshold: logit above which D judges an input real.
    """
    discriminator: Callable
    generator: Callable
    relativistic: bool = False
    label_smoothing: bool = False
    batch_means: bool = False
    threshold: float = 0.0


_LOSSES = {
    "minimax": LossSpec(minimax_discriminator_loss, minimax_generator_loss,
                        label_smoothing=True),
    "non_saturating": LossSpec(minimax_discriminator_loss, non_saturating_generator_loss,
                               label_smoothing=True),
    "least_squares": LossSpec(least_squares_discriminator_loss, least_squares_generator_loss,
                              threshold=0.5),
    "wasserstein": LossSpec(wasserstein_discriminator_loss, wasserstein_generator_loss),
    "hinge": LossSpec(hinge_discriminator_loss, hinge_generator_loss),
    "relativistic_average": LossSpec(
        relativistic_average_discriminator_loss, relativistic_average_generator_loss,
        relativistic=True, label_smoothing=True, batch_means=True),
    "relativistic_average_least_squares": LossSpec(
        relativistic_average_least_squares_discriminator_loss,
        relativistic_average_least_squares_generator_loss, relativistic=True,
        batch_means=True),
    "relativistic_average_hinge": LossSpec(
        relativistic_average_hinge_discriminator_loss,
        relativistic_average_hinge_generator_loss, relativistic=True, batch_means=True),
    "relativistic_pairing": LossSpec(
        relativistic_pairing_discriminator_loss, relativistic_pairing_generator_loss,
        relativistic=True),
}


def decision_threshold(name):
    """Logit above which D judges an input real under loss ``name``.

    0.5 for ``least_squares``, whose targets are 0 (fake) and 1 (real); 0 for
    the others, whose logits are symmetric around the decision boundary (for
    the relativistic losses D's raw logit, not its comparison with the batch).
    """
    return spec(name).threshold


def names():
    """The valid loss names, in a fixed order."""
    return tuple(_LOSSES)


def spec(name):
    """The `LossSpec` of ``name`` (both functions and what they need).

    Raises:
      ValueError: ``name`` is not one of `names()`; the message lists them.
    """
    try:
        return _LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown GAN loss {name!r}; valid losses are: {', '.join(_LOSSES)}."
        ) from None


def get(name):
    """Return the ``(discriminator_loss, generator_loss)`` pair for ``name``.

    For the relativistic losses the generator loss takes
    ``(fake_logits, real_logits)``; see `spec`.

    Raises:
      ValueError: ``name`` is not one of `names()`; the message lists them.
    """
    entry = spec(name)
    return entry.discriminator, entry.generator


# ------------------------------------------------------------ auxiliary heads
def classification_loss(class_logits, labels, multilabel=False):
    """Per-example cross-entropy of D's auxiliary classifier, float32 ``(B,)``.

    ``labels`` is the condition vector ``(B, K)`` (one-hot, or soft targets).
    Single-label: softmax cross-entropy ``-sum_k y_k log softmax(l)_k``.
    Multi-label (independent binary attributes): the sigmoid cross-entropy
    averaged over the ``K`` attributes, so its scale does not grow with K.
    """
    logits = tf.cast(class_logits, tf.float32)
    labels = tf.cast(labels, tf.float32)
    if multilabel:
        return tf.reduce_mean(
            tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits), axis=-1)
    return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def acgan_discriminator_loss(real_class_logits, fake_class_logits, labels, multilabel=False):
    """ACGAN's class term for D (Odena et al. 2017, arXiv:1610.09585), per example.

    ``L_C = CE(C(x), y) + CE(C(G(z, y)), y)``: D's classifier head must name
    the class of real data and of generated data (conditioned on ``y``). The
    GAN adds it, times ``classifier_weight``, to the adversarial D loss
    (TF-GAN's ``acgan_discriminator_loss`` is the batch mean of the same sum).
    """
    return (classification_loss(real_class_logits, labels, multilabel)
            + classification_loss(fake_class_logits, labels, multilabel))


def acgan_generator_loss(fake_class_logits, labels, multilabel=False):
    """ACGAN's class term for G (Odena et al. 2017): ``CE(C(G(z, y)), y)`` per example."""
    return classification_loss(fake_class_logits, labels, multilabel)


def mutual_information_penalty(categorical_codes=(), categorical_logits=(),
                               continuous_codes=None, continuous_means=None,
                               continuous_scale=1.0):
    """InfoGAN's variational mutual-information penalty (Chen et al. 2016), per example.

    The negative log-likelihood of the structured latent codes under Q's
    predicted distributions, averaged over the code groups as in TF-GAN's
    ``mutual_information_penalty`` (the mean over groups of each group's mean
    log-probability, negated; its batch mean equals TF-GAN's value):

        penalty_i = -(1 / n_groups) * (sum_g log softmax(q_g,i)[c_g,i]
                    + mean_j log N(c_ij; mu_ij, scale))

    ``categorical_codes``: a list of int ``(B,)`` class ids, one per
    categorical code, with ``categorical_logits`` their ``(B, k_g)`` logits;
    ``continuous_codes`` / ``continuous_means``: ``(B, m)`` values and Q's
    predicted means (one group, unit ``scale`` by default, as TF-GAN's
    examples use). Minimizing it maximizes a lower bound on I(c; G(z, c)),
    up to the codes' constant entropy.
    """
    if len(categorical_codes) != len(categorical_logits):
        raise ValueError(f"{len(categorical_codes)} categorical codes but "
                         f"{len(categorical_logits)} logit tensors.")
    log_probs = []
    for codes, logits in zip(categorical_codes, categorical_logits):
        log_probs.append(-tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(codes, tf.int32), logits=tf.cast(logits, tf.float32)))
    if continuous_codes is not None:
        c = tf.cast(continuous_codes, tf.float32)
        mu = tf.cast(continuous_means, tf.float32)
        scale = tf.cast(continuous_scale, tf.float32)
        log_density = (-0.5 * tf.square((c - mu) / scale) - tf.math.log(scale)
                       - 0.5 * tf.math.log(2.0 * tf.constant(3.141592653589793)))
        log_probs.append(tf.reduce_mean(log_density, axis=-1))
    if not log_probs:
        raise ValueError("mutual_information_penalty needs at least one code.")
    return -tf.add_n(log_probs) / float(len(log_probs))
