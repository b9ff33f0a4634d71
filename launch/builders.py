"""Turn parsed training flags into library objects: data, networks, a compiled GAN.

Data sources and network families are looked up in their registries
(`launch.data_sources`, `launch.network_families`); this module only wires
the flags through them.
"""
import keras

import tfgan2
from launch import data_sources, network_families

__all__ = ["data_shape", "source", "family", "label_spec", "conditioning", "build_dataset",
           "build_networks", "build_gan", "real_samples", "crop_spec", "r1_gamma", "r2_gamma",
           "burn_in", "ema_half_life"]

crop_spec = data_sources.crop_spec


def source(fv):
    """The run's `launch.data_sources.DataSource`."""
    return data_sources.get(fv.data_source)


def family(fv):
    """The run's `launch.network_families.NetworkFamily`."""
    return network_families.get(fv.network)


def data_shape(fv):
    """Shape of one example of the configured data source."""
    return source(fv).shape(fv)


def label_spec(fv):
    """``(num_classes, multilabel)`` of a conditional run (from its data source);
    ``(None, False)`` otherwise. `launch.config.validate` checks the flags."""
    if not fv.conditional:
        return None, False
    src = source(fv)
    return src.num_classes, src.multilabel


def infogan_codes(fv):
    """The run's `tfgan2.infogan.LatentCodes`, or None."""
    if not fv.infogan_codes:
        return None
    return tfgan2.infogan.LatentCodes.parse(fv.infogan_codes)


def conditioning(fv):
    """The `launch.network_families.Conditioning` of the run's networks."""
    num_classes, _ = label_spec(fv)
    codes = infogan_codes(fv)
    return network_families.Conditioning(
        num_classes=num_classes, generator=fv.conditioning,
        discriminator=fv.discriminator_conditioning,
        q_dim=codes.q_dim if codes else 0, code_dim=codes.dim if codes else 0)


def build_dataset(fv, start_step=0, skipped=None, strategy=None):
    """The endless training dataset of global batches, from the batch of ``start_step``.

    Conditional runs get ``(images, labels)`` batches. With ``--deterministic``
    the pipelines keep their element order fixed, so a resumed run sees
    exactly the batches an uninterrupted one would. ``skipped``, a
    `pipelines.skipped.SkippedFiles`, records the input files a file-reading
    source leaves out (other sources ignore it).

    ``strategy``: in a multi-worker run, a source that can (``shards``) is
    built per worker through ``strategy.distribute_datasets_from_function``
    (`pipelines.sharded_input_fn`): each worker reads and decodes only its own
    share of the files, in per-replica batches, instead of decoding every
    image and keeping its share (what Keras's automatic sharding of one
    global dataset does). Other sources, and other strategies, get the one
    dataset of global batches.
    """
    src = source(fv)
    kwargs = dict(skipped=skipped) if src.reads_files and skipped is not None else {}
    if src.shards and strategy is not None and _multi_worker(strategy):
        import pipelines

        def make(batch_size, shard, skip_batches):
            return src.dataset(fv, skip_batches, bool(fv.conditional), batch_size=batch_size,
                               shard=shard, **kwargs)

        return strategy.distribute_datasets_from_function(
            pipelines.sharded_input_fn(make, fv.batch_size, steps_done=start_step))
    return src.dataset(fv, start_step, bool(fv.conditional), **kwargs)


def _multi_worker(strategy):
    import tfgan2

    return tfgan2.distribute.is_multi_worker(strategy)


def real_samples(fv, num=2000):
    """Real examples for pictures that compare against data (vector histograms), or None."""
    if fv.data_source == "gaussian":
        import numpy as np
        rng = np.random.default_rng(fv.seed + 1)
        return rng.normal(fv.gaussian_mean, fv.gaussian_std, (num // 10 + 1, fv.gaussian_size))
    return None


def build_networks(fv, conv_gradient=None):
    """``(generator, discriminator)`` for the configured network, data shape and conditioning.

    Their convolutions take ``conv_gradient`` gradients (default
    ``fv.conv_gradients``; ``auto`` unresolved builds ``native``, which is
    what generating from a run needs).
    """
    import tfgan2

    method = conv_gradient or fv.conv_gradients
    shape = data_shape(fv)
    fam = family(fv)
    fam.check(shape)
    with tfgan2.conv_gradients.method_scope("native" if method == "auto" else method):
        return fam.build(fv, shape, conditioning(fv))


def learning_rate(fv, base, updates_per_step):
    """``base``, a linear decay from ``base`` to 0 over the run's optimizer updates, or
    R3GAN's burn-in (``--lr_schedule=burn_in``)."""
    if fv.lr_schedule == "linear_decay":
        return keras.optimizers.schedules.PolynomialDecay(
            base, decay_steps=fv.train_steps * updates_per_step, end_learning_rate=0.0, power=1.0)
    if fv.lr_schedule == "burn_in":
        return burn_in(fv, base, base * fv.burn_in_lr_ratio, updates_per_step)
    return base


def burn_in(fv, start, end, updates_per_step=1):
    """``start``, or with ``--burn_in_steps`` R3GAN's cosine from ``start`` to ``end`` over
    that many training steps (``updates_per_step`` optimizer updates each), then ``end``."""
    if not fv.burn_in_steps or start == end:
        return start
    return tfgan2.schedules.CosineRamp(start, end, fv.burn_in_steps * updates_per_step)


def _pixel_scaled(fv, gamma):
    if not fv.r1_reference_size:
        return gamma
    height, width = data_shape(fv)[:2]
    return gamma * height * width / fv.r1_reference_size ** 2


def r1_gamma(fv):
    """The R1 weight of the run: ``--r1_gamma``, or with ``--r1_reference_size=S``
    ``r1_gamma * H * W / S**2`` for the data's H x W images.

    R1 is the squared gradient of D summed over pixels; a D that reads the same
    picture at twice the size spreads each gradient over four pixels, so the
    sum is a quarter as large and gamma must grow with the pixel count to
    weigh the same (StyleGAN2-ADA's heuristic also scales gamma with H * W).
    """
    return _pixel_scaled(fv, fv.r1_gamma)


def r2_gamma(fv):
    """The R2 weight of the run, ``--r2_gamma`` scaled like `r1_gamma`."""
    return _pixel_scaled(fv, fv.r2_gamma)


def _penalty_schedule(fv, gamma):
    return burn_in(fv, gamma, gamma * fv.burn_in_gamma_ratio, fv.d_steps) if gamma else gamma


def _adam(fv, base_lr, updates_per_step):
    beta_2 = burn_in(fv, fv.beta2, fv.beta2_final or fv.beta2, updates_per_step)
    return tfgan2.optimizers.FusedAdam(learning_rate(fv, base_lr, updates_per_step),
                                       beta_1=fv.beta1, beta_2=beta_2)


def ema_half_life(fv):
    """``--ema_half_life`` in generator updates (growing from 0 over the burn-in), or None."""
    if not fv.ema_half_life:
        return None
    return burn_in(fv, 0.0, fv.ema_half_life * fv.g_steps, fv.g_steps)


def build_gan(fv, compile_model=True, precision=None, steps_per_execution=None,
              conv_gradient=None):
    """A `tfgan2.GAN` from the flags, compiled with two Adam optimizers (`tfgan2.optimizers.FusedAdam`) unless told not to.

    ``precision`` (default ``fv.precision``) is the Keras policy it is built
    under; ``auto`` unresolved (`launch.choices` resolves it for
    training) builds float32, which is what generating from a run needs.
    ``steps_per_execution`` and ``conv_gradient`` (`build_networks`) override the flags'.
    """
    keras.utils.set_random_seed(fv.seed)
    precision = precision or fv.precision
    keras.mixed_precision.set_global_policy("float32" if precision == "auto" else precision)
    generator, discriminator = build_networks(fv, conv_gradient)
    num_classes, multilabel = label_spec(fv)
    gan = tfgan2.GAN(generator, discriminator, latent_dim=fv.latent_dim,
                     latent_distribution=fv.latent_distribution,
                     ema_decay=None if fv.ema_half_life else (fv.ema_decay or None),
                     ema_half_life=ema_half_life(fv), seed=fv.seed, num_classes=num_classes,
                     multilabel=multilabel, infogan_codes=infogan_codes(fv),
                     augment=tfgan2.augment.from_spec(fv.augment, ada_target=fv.ada_target,
                                                      ada_speed_images=fv.ada_speed),
                     pack=fv.pack, pack_generator_per_slot=fv.pack_generator_per_slot)
    if compile_model:
        gan.compile(
            d_optimizer=_adam(fv, fv.d_lr, fv.d_steps), g_optimizer=_adam(fv, fv.g_lr, fv.g_steps),
            loss=fv.loss, d_steps=fv.d_steps, g_steps=fv.g_steps,
            gradient_penalty=fv.gradient_penalty,
            r1_gamma=_penalty_schedule(fv, r1_gamma(fv)),
            r2_gamma=_penalty_schedule(fv, r2_gamma(fv)),
            classifier_weight=fv.classifier_weight, info_weight=fv.info_weight,
            gradient_penalty_mode=fv.gp_mode, label_smoothing=fv.label_smoothing,
            weight_clip=fv.weight_clip or None,
            steps_per_execution=steps_per_execution or fv.steps_per_execution,
            jit_compile=fv.jit_compile)
    return gan
