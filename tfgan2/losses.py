"""Adversarial losses as pure functions of discriminator logits.

Every function takes raw discriminator outputs (logits, no sigmoid) and returns
the *per-example* loss, a float32 tensor of shape ``(batch,)``. The loss of a
batch is the mean of that vector; `tfgan2.GAN` averages it over the global
batch so that a step is the same on one device or many.

Notation: ``r = D(x)`` are logits on real data, ``f = D(G(z))`` logits on
generated data, ``sigma`` is the logistic sigmoid and
``softplus(t) = log(1 + exp(t))``. The cross-entropy terms use the identities
``-log sigma(t) = softplus(-t)`` and ``-log(1 - sigma(t)) = softplus(t)``;
``tf.nn.softplus`` evaluates ``max(t, 0) + log(1 + exp(-|t|))``, the form that
never overflows (the stable BCE of the CS231N notes).
"""
import tensorflow as tf

__all__ = [
    "minimax_discriminator_loss", "minimax_generator_loss",
    "non_saturating_generator_loss",
    "least_squares_discriminator_loss", "least_squares_generator_loss",
    "wasserstein_discriminator_loss", "wasserstein_generator_loss",
    "hinge_discriminator_loss", "hinge_generator_loss",
    "get", "names", "decision_threshold",
    "classification_loss", "acgan_discriminator_loss", "acgan_generator_loss",
    "mutual_information_penalty",
]


def _flat(logits):
    """Logits of shape (B,) or (B, 1) -> float32 (B,)."""
    logits = tf.cast(logits, tf.float32)
    return tf.reshape(logits, [tf.shape(logits)[0]])


def minimax_discriminator_loss(real_logits, fake_logits):
    """Cross-entropy discriminator loss (Goodfellow et al. 2014, arXiv:1406.2661).

    ``L_D = -log sigma(r) - log(1 - sigma(f)) = softplus(-r) + softplus(f)``.
    Shared by the minimax and non-saturating games.
    """
    return tf.nn.softplus(-_flat(real_logits)) + tf.nn.softplus(_flat(fake_logits))


def minimax_generator_loss(fake_logits):
    """Original minimax generator loss (Goodfellow et al. 2014).

    ``L_G = log(1 - sigma(f)) = -softplus(f)``. Its gradient vanishes when D
    confidently rejects the samples, which is why `non_saturating` is preferred.
    """
    return -tf.nn.softplus(_flat(fake_logits))


def non_saturating_generator_loss(fake_logits):
    """Non-saturating generator loss (Goodfellow et al. 2014, section 3).

    ``L_G = -log sigma(f) = softplus(-f)``.
    """
    return tf.nn.softplus(-_flat(fake_logits))


def least_squares_discriminator_loss(real_logits, fake_logits):
    """LSGAN discriminator loss (Mao et al. 2017, arXiv:1611.04076), targets b=1, a=0.

    ``L_D = 1/2 (r - 1)^2 + 1/2 f^2`` on the raw scores.
    """
    r, f = _flat(real_logits), _flat(fake_logits)
    return 0.5 * tf.square(r - 1.0) + 0.5 * tf.square(f)


def least_squares_generator_loss(fake_logits):
    """LSGAN generator loss (Mao et al. 2017), target c=1: ``L_G = 1/2 (f - 1)^2``."""
    return 0.5 * tf.square(_flat(fake_logits) - 1.0)


def wasserstein_discriminator_loss(real_logits, fake_logits):
    """Wasserstein critic loss (Arjovsky et al. 2017, arXiv:1701.07875).

    ``L_D = f - r``. Needs a Lipschitz constraint on D: use it with a gradient
    penalty (Gulrajani et al. 2017) or spectral normalization.
    """
    return _flat(fake_logits) - _flat(real_logits)


def wasserstein_generator_loss(fake_logits):
    """Wasserstein generator loss (Arjovsky et al. 2017): ``L_G = -f``."""
    return -_flat(fake_logits)


def hinge_discriminator_loss(real_logits, fake_logits):
    """Hinge discriminator loss (Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018).

    ``L_D = max(0, 1 - r) + max(0, 1 + f)``.
    """
    return tf.nn.relu(1.0 - _flat(real_logits)) + tf.nn.relu(1.0 + _flat(fake_logits))


def hinge_generator_loss(fake_logits):
    """Hinge-game generator loss (Miyato et al. 2018, arXiv:1802.05957): ``L_G = -f``."""
    return -_flat(fake_logits)


_LOSSES = {
    "minimax": (minimax_discriminator_loss, minimax_generator_loss),
    "non_saturating": (minimax_discriminator_loss, non_saturating_generator_loss),
    "least_squares": (least_squares_discriminator_loss, least_squares_generator_loss),
    "wasserstein": (wasserstein_discriminator_loss, wasserstein_generator_loss),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
}


def decision_threshold(name):
    """Logit above which D judges an input real under loss ``name``.

    0.5 for ``least_squares``, whose targets are 0 (fake) and 1 (real); 0 for
    the others, whose logits are symmetric around the decision boundary.
    """
    get(name)  # validates the name
    return 0.5 if name == "least_squares" else 0.0


def names():
    """The valid loss names, in a fixed order."""
    return tuple(_LOSSES)


def get(name):
    """Return the ``(discriminator_loss, generator_loss)`` pair for ``name``.

    Raises:
      ValueError: ``name`` is not one of `names()`; the message lists them.
    """
    try:
        return _LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown GAN loss {name!r}; valid losses are: {', '.join(_LOSSES)}."
        ) from None


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
