"""tfgan2: GAN training on TensorFlow 2 and Keras 3.

The public API: `GAN` (a `keras.Model` with a two-tape `train_step`), and the
modules `losses`, `regularizers`, `networks` and `callbacks`.
"""
from tfgan2 import losses, networks, regularizers
from tfgan2.gan import GAN

__version__ = "0.1.0"
__all__ = ["GAN", "losses", "networks", "regularizers", "__version__"]
