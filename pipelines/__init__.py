"""tf.data input pipelines: every dataset yields float32 batches ready for `tfgan2.GAN`.

Images come out in [-1, 1] with shape ``(B, H, W, C)``; vector data as
``(B, D)``. Batches are full (``drop_remainder=True``) so a global batch always
splits evenly over replicas.
"""
from pipelines.celeba import celeba
from pipelines.common import sharded_input_fn
from pipelines.digits import digits, digits_arrays, upsample_digits
from pipelines.gaussian import gaussian
from pipelines.image_folder import image_folder
from pipelines.mixtures import mixture_2d, mixture_centres
from pipelines.mnist import mnist
from pipelines.stacked_digits import mode_ids, stacked_digits
from pipelines.tfrecords import write_shards

__all__ = ["digits", "digits_arrays", "upsample_digits", "stacked_digits", "mode_ids",
           "gaussian", "mnist", "celeba", "image_folder", "mixture_2d", "mixture_centres",
           "write_shards", "sharded_input_fn"]
