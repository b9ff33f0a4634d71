"""TensorBoard event files without the tensorboard package: scalars, images, a training logger.

`tf.summary.scalar` / `tf.summary.image` live in the ``tensorboard`` pip
package, which TensorFlow no longer installs. The event format itself is in
TensorFlow: `tf.summary.write` records a tensor with a ``SummaryMetadata``
naming the TensorBoard plugin that displays it. This module writes exactly
what those two functions write:

* scalar: a float32 scalar tensor, plugin ``"scalars"``, data class SCALAR;
* image: a string vector ``[width, height, png_1, ..., png_k]``, plugin
  ``"images"``, data class BLOB_SEQUENCE.

Install ``tensorboard`` only to look at the files
(``tensorboard --logdir=<workdir>/tensorboard``). `read_events` reads them
back with `tf.compat.v1.train.summary_iterator`.
"""
import glob
import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tfgan2 import visualize
from tfgan2.callbacks import HostStep, StepInterval, log_values

__all__ = ["write_scalar", "write_scalars", "write_image", "read_events", "TensorBoardLogger",
           "confusion_shares", "SCALAR_PLUGIN", "IMAGE_PLUGIN"]

SCALAR_PLUGIN = "scalars"
IMAGE_PLUGIN = "images"


def _metadata(plugin, data_class, description=""):
    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = plugin
    meta.data_class = data_class
    if description:
        meta.summary_description = description
    return meta


def write_scalar(tag, value, step):
    """Records ``value`` under ``tag`` at ``step`` in the default summary writer; returns success."""
    meta = _metadata(SCALAR_PLUGIN, summary_pb2.DATA_CLASS_SCALAR)
    return tf.summary.write(tag, tf.constant(float(value), tf.float32), step=int(step),
                            metadata=meta)


def write_scalars(values, step, prefix=""):
    """`write_scalar` for each finite number in the dict ``values`` (tags get ``prefix``)."""
    for key, value in values.items():
        if isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
            write_scalar(prefix + key, value, step)


def write_image(tag, images, step):
    """Records uint8 images ``(H, W, C)`` or ``(K, H, W, C)`` (C = 1, 3 or 4) as PNGs under ``tag``."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images must be uint8 (K, H, W, C) with C in 1, 3, 4, got "
                         f"{images.dtype} {images.shape}")
    height, width = images.shape[1:3]
    pngs = [tf.io.encode_png(image) for image in images]
    tensor = tf.stack([tf.as_string(width), tf.as_string(height), *pngs])
    meta = _metadata(IMAGE_PLUGIN, summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
    return tf.summary.write(tag, tensor, step=int(step), metadata=meta)


def read_events(log_dir):
    """Reads every event file under ``log_dir``.

    Returns ``{"scalars": {tag: [(step, value), ...]}, "images": {tag: [(step,
    array uint8 (H, W, C)), ...]}}`` (first image of each record), in file
    order.
    """
    scalars, images = {}, {}
    files = sorted(glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"),
                             recursive=True))
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if not value.HasField("tensor"):
                    continue
                array = tf.make_ndarray(value.tensor)
                if plugin == SCALAR_PLUGIN:
                    scalars.setdefault(value.tag, []).append((event.step, float(array)))
                elif plugin == IMAGE_PLUGIN and array.size >= 3:
                    png = tf.io.decode_png(array[2]).numpy()
                    images.setdefault(value.tag, []).append((event.step, png))
    return {"scalars": scalars, "images": images}


def confusion_shares(logs):
    """D's confusion matrix as row shares from a GAN's logs, or ``{}`` if they lack it.

    ``real_as_real`` and ``fake_as_fake`` (logged by `tfgan2.GAN`) with
    their complements ``real_as_fake = 1 - real_as_real`` and
    ``fake_as_real = 1 - fake_as_fake``.
    """
    if "real_as_real" not in logs or "fake_as_fake" not in logs:
        return {}
    rr, ff = float(logs["real_as_real"]), float(logs["fake_as_fake"])
    return {"real_as_real": rr, "real_as_fake": 1.0 - rr, "fake_as_fake": ff,
            "fake_as_real": 1.0 - ff}


class TensorBoardLogger(HostStep):
    """Writes training scalars and sample grids of a `tfgan2.GAN` as TensorBoard events.

    Every ``every_n_steps`` steps of the GAN's step (counted on the host,
    `tfgan2.callbacks.HostStep`; and at the end of
    training) it records each numeric entry of the batch logs (``d_loss``,
    ``g_loss``, ``p_real``, ``p_fake``, ``real_as_real``, ``fake_as_fake``:
    Keras' running means since the start of the epoch) as ``train/<name>``.
    Every ``image_every_n_steps`` steps (default: ``every_n_steps``) and at the
    end it records a grid of ``num_images`` samples from fixed latents
    (``seed``) as the image ``samples`` (image data only). Events carry the
    GAN step, so a resumed run continues its curves. D's confusion view (the
    four shares of `confusion_shares`) goes to ``confusion/<cell>`` with the
    training scalars. Evaluations (``fit(validation_data=...)``,
    ``evaluate``) are recorded when they end, as ``val/<name>`` and
    ``val_confusion/<cell>``. The logs are read, and the file flushed, only
    when something is written.
    """

    def __init__(self, log_dir, every_n_steps=100, num_images=16, image_every_n_steps=None,
                 seed=0):
        super().__init__()
        self.log_dir = log_dir
        self.every_n_steps = int(every_n_steps)
        self.image_every_n_steps = int(image_every_n_steps or every_n_steps)
        self.num_images = int(num_images)
        self.seed = seed
        self._writer = None
        self._scalars = StepInterval(self.every_n_steps)
        self._images = StepInterval(self.image_every_n_steps)
        self._last_scalars = self._last_images = None

    @property
    def writer(self):
        if self._writer is None:
            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def write_scalars(self, logs, step, prefix="train/", confusion_prefix="confusion/"):
        values = {k: v for k, v in log_values(logs).items() if isinstance(v, float)}
        with self.writer.as_default():
            write_scalars(values, step, prefix=prefix)
            write_scalars(confusion_shares(values), step, prefix=confusion_prefix)
        if prefix == "train/":
            self._last_scalars = step

    @property
    def write_every(self):
        """Step intervals at which it writes during training."""
        return (self.every_n_steps, self.image_every_n_steps)

    def on_test_end(self, logs=None):
        if logs:
            self.write_scalars(logs, self.current_step(), prefix="val/",
                               confusion_prefix="val_confusion/")
            self.writer.flush()

    def write_images(self, step):
        if self.num_images < 1:
            return
        latents = self.model.sample_latent(self.num_images, seed=self.seed)
        fake = self.model.generate(self.num_images, latents=latents)
        if fake.ndim != 4:
            return
        with self.writer.as_default():
            write_image("samples", visualize.image_grid(fake), step)
        self._last_images = step

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._scalars.start(self.host_step)
        self._images.start(self.host_step)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        step = self.host_step  # each write flushes the file as its writer context ends
        if self._scalars.due(step):
            self.write_scalars(logs, step)
        if self._images.due(step) and not getattr(self.model, "training_failed", False):
            self.write_images(step)

    def on_train_end(self, logs=None):
        if getattr(self.model, "training_failed", False):
            return
        step = self.current_step()
        if logs and step != self._last_scalars:
            self.write_scalars(logs, step)
        if step != self._last_images:
            self.write_images(step)

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
