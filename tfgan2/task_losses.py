"""Losses for models that pair an adversarial loss with a task loss (image-to-image).

For users' own training loops over image-to-image models (pix2pix, CycleGAN,
super-resolution): `combine_adversarial_loss` weights an adversarial loss
against a task loss (a reconstruction or perceptual loss), and
`cycle_consistency_loss` is CycleGAN's reconstruction term. Both work in eager
mode and inside `tf.function`.
"""
import tensorflow as tf

__all__ = ["combine_adversarial_loss", "gradient_norm", "cycle_consistency_loss"]


def gradient_norm(gradients):
    """Global L2 norm of a list of gradients (``None`` entries skipped), overflow-safe.

    Computed as ``m * ||g / m||`` with ``m = max |g|``, so that squaring huge
    entries cannot overflow to infinity. 0 when every gradient is ``None`` or 0.
    """
    grads = [tf.cast(g, tf.float32) for g in gradients if g is not None]
    if not grads:
        return tf.constant(0.0)
    largest = tf.reduce_max(tf.stack([tf.reduce_max(tf.abs(g)) for g in grads]))
    safe = tf.where(largest > 0, largest, 1.0)
    return safe * tf.linalg.global_norm([g / safe for g in grads])


def _to_batch(loss):
    loss = tf.convert_to_tensor(loss)
    if loss.shape.rank is None or loss.shape.rank <= 1:
        return loss
    return tf.reduce_mean(loss, axis=list(range(1, loss.shape.rank)))


def combine_adversarial_loss(main_loss, adversarial_loss, *, weight_factor=None,
                             gradient_ratio=None, variables=None, tape=None,
                             epsilon=1e-6):
    """``main_loss + w * adversarial_loss`` with a fixed weight or a gradient-norm ratio.

    Exactly one of:

    * ``weight_factor``: ``w`` is that number;
    * ``gradient_ratio = rho``: ``w = ||grad L_main|| / (||grad L_adv|| + epsilon) / rho``,
      the gradients taken w.r.t. ``variables`` (`gradient_norm`), so that the
      weighted adversarial gradient is ``1 / rho`` times the task gradient in
      norm: ``rho = 1`` lets both pull equally (Shrivastava et al. 2017,
      arXiv:1612.07828; used by Sajjadi et al. 2017 / Schmidt et al. 2017,
      arXiv:1705.05823). Needs ``variables`` and a **persistent** ``tape``
      that recorded both losses; call this inside the tape's context so the
      combined loss is recorded too.

    ``w`` is held constant (``tf.stop_gradient``): the combined gradient is
    ``grad L_main + w grad L_adv``. A weight (or ratio) of exactly 0 returns
    ``main_loss`` untouched. When the two losses have different shapes they
    are first reduced to per-example means ``(B,)``; their first dimensions
    must then agree.

    Returns:
      The combined loss, of ``main_loss``'s shape (or ``(B,)`` after reduction).

    Raises:
      ValueError: both or neither of ``weight_factor`` / ``gradient_ratio``;
        ``gradient_ratio`` without ``variables`` and ``tape``; incompatible
        batch sizes.
    """
    if (weight_factor is None) == (gradient_ratio is None):
        raise ValueError("combine_adversarial_loss needs exactly one of weight_factor "
                         "(a fixed weight) and gradient_ratio (a gradient-norm ratio).")
    main_loss = tf.convert_to_tensor(main_loss)
    adversarial_loss = tf.convert_to_tensor(adversarial_loss)
    if not main_loss.shape.is_compatible_with(adversarial_loss.shape):
        if (main_loss.shape.rank and adversarial_loss.shape.rank
                and main_loss.shape[0] != adversarial_loss.shape[0]):
            raise ValueError(
                f"main_loss and adversarial_loss must share their first (batch) dimension, "
                f"got shapes {main_loss.shape} and {adversarial_loss.shape}.")
        main_loss, adversarial_loss = _to_batch(main_loss), _to_batch(adversarial_loss)
    fixed = weight_factor if weight_factor is not None else gradient_ratio
    if tf.get_static_value(tf.convert_to_tensor(fixed)) == 0:
        return main_loss
    if weight_factor is not None:
        weight = tf.cast(weight_factor, adversarial_loss.dtype)
    else:
        if variables is None or tape is None:
            raise ValueError("gradient_ratio needs the variables to differentiate and the "
                             "persistent GradientTape that recorded both losses.")
        if not getattr(tape, "_persistent", False):
            raise ValueError("gradient_ratio needs a persistent GradientTape "
                             "(tf.GradientTape(persistent=True)): it differentiates two losses.")
        variables = list(variables)
        main_norm = gradient_norm(tape.gradient(main_loss, variables))
        adv_norm = gradient_norm(tape.gradient(adversarial_loss, variables))
        weight = main_norm / (adv_norm + epsilon) / tf.cast(gradient_ratio, tf.float32)
        weight = tf.cast(weight, adversarial_loss.dtype)
    return main_loss + tf.stop_gradient(weight) * adversarial_loss


def _per_example_l1(data, reconstructed):
    diff = tf.abs(tf.cast(data, tf.float32) - tf.cast(reconstructed, tf.float32))
    if diff.shape.rank == 1:
        return diff
    return tf.reduce_mean(tf.reshape(diff, [tf.shape(diff)[0], -1]), axis=1)


def cycle_consistency_loss(data_x, reconstructed_x, data_y, reconstructed_y):
    """CycleGAN cycle-consistency loss per example (Zhu et al. 2017, arXiv:1703.10593).

    With ``F: X -> Y`` and ``G: Y -> X``, ``reconstructed_x = G(F(x))`` and
    ``reconstructed_y = F(G(y))``:

        L_i = (mean |x_i - G(F(x_i))| + mean |y_i - F(G(y_i))|) / 2,

    the L1 error averaged over each example's elements (so the weight of the
    term does not depend on the image size, as in the original code). Returns
    ``(B,)``; its mean is TF-GAN's scalar ``cycle_consistency_loss``. Both
    domains need the same batch size.
    """
    loss_x = _per_example_l1(data_x, reconstructed_x)
    loss_y = _per_example_l1(data_y, reconstructed_y)
    if loss_x.shape[0] is not None and loss_y.shape[0] is not None \
            and loss_x.shape[0] != loss_y.shape[0]:
        raise ValueError(f"cycle_consistency_loss needs batches of one size, got "
                         f"{loss_x.shape[0]} examples of x and {loss_y.shape[0]} of y.")
    return 0.5 * (loss_x + loss_y)
