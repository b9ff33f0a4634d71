"""Export a GAN's sampler as a TensorFlow SavedModel for serving.

`export_sampler(gan, path)` writes the network `GAN.generate` uses (the
EMA generator when kept) with one endpoint, ``serve``, which is also the
SavedModel's ``serving_default`` signature:

* inputs: ``z`` float32 ``(N, input_dim)`` (``latent_dim``, plus the
  InfoGAN codes when the GAN has them, as `GAN.sample_latent` draws them); conditional GANs also
  ``labels``: int32 class ids ``(N,)``, or float32 ``(N, num_classes)``
  label vectors for a multi-label GAN;
* output: ``{"images": float32 (N, ...)}``, the samples in the data range
  ([-1, 1] for images), computed in inference mode.

The SavedModel needs neither tfgan2 nor Keras to run:
``tf.saved_model.load(path).signatures["serving_default"](z=...)``, or TF
Serving (BUILD.md shows the REST request).
"""
import keras
import tensorflow as tf

__all__ = ["export_sampler", "serving_input_signature"]


def serving_input_signature(gan):
    """The `tf.TensorSpec`s of the serving function's inputs, named ``z`` (and ``labels``)."""
    specs = [tf.TensorSpec((None, gan.input_dim), tf.float32, name="z")]
    if gan.conditional:
        if gan.multilabel:
            specs.append(tf.TensorSpec((None, gan.num_classes), tf.float32, name="labels"))
        else:
            specs.append(tf.TensorSpec((None,), tf.int32, name="labels"))
    return specs


def export_sampler(gan, filepath, verbose=True):
    """Write ``gan.sampler`` to ``filepath`` as a SavedModel (see the module docstring).

    Returns ``filepath``.
    """
    sampler = gan.sampler
    archive = keras.export.ExportArchive()
    archive.track(sampler)
    specs = serving_input_signature(gan)

    def images(z, labels=None):
        out = gan.run_G(z, labels, training=False, network=sampler)
        return {"images": tf.cast(out, tf.float32)}

    if gan.conditional:
        fn = tf.function(lambda z, labels: images(z, labels), input_signature=specs)
    else:
        fn = tf.function(lambda z: images(z), input_signature=specs)
    archive.add_endpoint("serve", fn)
    archive.write_out(filepath, verbose=verbose)
    return filepath
