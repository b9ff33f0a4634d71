"""Turn parsed training flags into library objects: data, networks, a compiled GAN."""
import keras

import pipelines
import tfgan2

__all__ = ["data_shape", "build_dataset", "build_networks", "build_gan", "real_samples"]


def data_shape(fv):
    """Shape of one example of the configured data source."""
    if fv.data_source == "digits":
        return (8, 8, 1)
    if fv.data_source == "mnist":
        return (28, 28, 1)
    if fv.data_source == "gaussian":
        return (fv.gaussian_size,)
    if fv.data_source in ("celeba", "celeba_tfds"):
        return (fv.resolution, fv.resolution, 3)
    if fv.data_source == "image_folder":
        return (fv.resolution, fv.resolution, fv.channels)
    raise ValueError(f"Unknown --data_source={fv.data_source!r}.")


def crop_spec(fv):
    """The --crop flag as the pipelines' crop argument."""
    crop = fv.crop.strip().lower()
    if crop == "auto":
        crop = "108" if fv.data_source in ("celeba", "celeba_tfds") else "center"
    return None if crop == "none" else crop if crop == "center" else int(crop)


def build_dataset(fv, start_step=0):
    """The endless training dataset of global batches, from the batch of step ``start_step``.

    With ``--deterministic`` the pipelines keep their element order fixed, so
    a resumed run sees exactly the batches an uninterrupted one would.
    """
    det = dict(deterministic=True) if fv.deterministic else {}
    skip = dict(skip_batches=start_step)
    if fv.data_source == "digits":
        return pipelines.digits(fv.batch_size, seed=fv.seed, **skip)
    if fv.data_source == "mnist":
        try:  # never a download attempt: without network it hangs in retries for minutes
            return pipelines.mnist(fv.batch_size, split=fv.split, data_dir=fv.data_dir,
                                   seed=fv.seed, download=False, **skip)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{exc} Then pass --data_dir=DIR; or train on MNIST as PNG files with "
                f"--data_source=image_folder --data_dir=FOLDER --channels=1 "
                f"--resolution=32.") from exc
    if fv.data_source in ("celeba", "celeba_tfds"):
        source = "tfds" if fv.data_source == "celeba_tfds" else fv.data_dir
        return pipelines.celeba(source, split=fv.split, resolution=fv.resolution,
                                batch_size=fv.batch_size, crop=crop_spec(fv),
                                data_dir=fv.data_dir if source == "tfds" else None,
                                seed=fv.seed, **det, **skip)
    if fv.data_source == "image_folder":
        return pipelines.image_folder(fv.data_dir, resolution=fv.resolution,
                                      batch_size=fv.batch_size, channels=fv.channels,
                                      crop=crop_spec(fv), seed=fv.seed, **det, **skip)
    if fv.data_source == "gaussian":
        return pipelines.gaussian(fv.batch_size, mean=fv.gaussian_mean, std=fv.gaussian_std,
                                  size=fv.gaussian_size, seed=fv.seed, **skip)
    raise ValueError(f"Unknown --data_source={fv.data_source!r}.")


def real_samples(fv, num=2000):
    """Real examples for pictures that compare against data (vector histograms), or None."""
    if fv.data_source == "gaussian":
        import numpy as np
        rng = np.random.default_rng(fv.seed + 1)
        return rng.normal(fv.gaussian_mean, fv.gaussian_std, (num // 10 + 1, fv.gaussian_size))
    return None


def build_networks(fv):
    """``(generator, discriminator)`` for the configured network and data shape."""
    shape = data_shape(fv)
    nets = tfgan2.networks
    if fv.network == "dcgan":
        if len(shape) != 3 or shape[0] != shape[1]:
            raise ValueError(f"--network=dcgan needs square images, data shape is {shape}.")
        res, channels = fv.resolution, shape[-1]
        return (nets.dcgan_generator(latent_dim=fv.latent_dim, resolution=res, channels=channels,
                                     capacity=fv.capacity, filter_size=fv.filter_size,
                                     sync_batchnorm=fv.sync_batchnorm),
                nets.dcgan_discriminator(resolution=res, channels=channels, capacity=fv.capacity,
                                         filter_size=fv.filter_size,
                                         normalization=fv.d_normalization,
                                         sync_batchnorm=fv.sync_batchnorm))
    widths = {}
    if fv.g_hidden:
        widths["g"] = dict(hidden=fv.g_hidden)
    if fv.d_hidden:
        widths["d"] = dict(hidden=fv.d_hidden)
    if fv.network == "mlp":
        return (nets.mlp_generator(latent_dim=fv.latent_dim, image_shape=shape,
                                   **widths.get("g", {})),
                nets.mlp_discriminator(image_shape=shape, **widths.get("d", {})))
    if fv.network == "infogan":
        if shape[:2] != (28, 28):
            raise ValueError(f"--network=infogan builds 28x28 images, data shape is {shape}.")
        return (nets.infogan_generator(latent_dim=fv.latent_dim, channels=shape[-1]),
                nets.conv_discriminator(channels=shape[-1]))
    if fv.network == "gaussian":
        return (nets.gaussian_generator(latent_dim=fv.latent_dim, dim=shape[0],
                                        **widths.get("g", {})),
                nets.gaussian_discriminator(dim=shape[0], **widths.get("d", {})))
    raise ValueError(f"Unknown --network={fv.network!r}.")


def learning_rate(fv, base, updates_per_step):
    """``base``, or a linear decay from ``base`` to 0 over the run's optimizer updates."""
    if fv.lr_schedule == "linear_decay":
        return keras.optimizers.schedules.PolynomialDecay(
            base, decay_steps=fv.train_steps * updates_per_step, end_learning_rate=0.0, power=1.0)
    return base


def build_gan(fv, compile_model=True):
    """A `tfgan2.GAN` from the flags, compiled with two Adam optimizers unless told not to."""
    keras.utils.set_random_seed(fv.seed)
    keras.mixed_precision.set_global_policy(fv.precision)
    generator, discriminator = build_networks(fv)
    gan = tfgan2.GAN(generator, discriminator, latent_dim=fv.latent_dim,
                     latent_distribution=fv.latent_distribution,
                     ema_decay=fv.ema_decay or None, seed=fv.seed)
    if compile_model:
        gan.compile(
            d_optimizer=keras.optimizers.Adam(learning_rate(fv, fv.d_lr, fv.d_steps),
                                              beta_1=fv.beta1, beta_2=fv.beta2),
            g_optimizer=keras.optimizers.Adam(learning_rate(fv, fv.g_lr, fv.g_steps),
                                              beta_1=fv.beta1, beta_2=fv.beta2),
            loss=fv.loss, d_steps=fv.d_steps, g_steps=fv.g_steps,
            gradient_penalty=fv.gradient_penalty, r1_gamma=fv.r1_gamma,
            steps_per_execution=fv.steps_per_execution, jit_compile=fv.jit_compile)
    return gan
