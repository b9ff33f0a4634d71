"""tf.data input pipelines: every dataset yields float32 batches ready for `tfgan2.GAN`.

Images come out in [-1, 1] with shape ``(B, H, W, C)``; vector data as
``(B, D)``. Batches are full (``drop_remainder=True``) so a global batch always
splits evenly over replicas.
"""
from pipelines.digits import digits, digits_arrays
from pipelines.gaussian import gaussian
from pipelines.mnist import mnist

__all__ = ["digits", "digits_arrays", "gaussian", "mnist"]
