"""Packaging for tfgan2: the library (tfgan2), its input pipelines and launchers."""
import glob

from setuptools import find_packages, setup

setup(
    name="tfgan2",
    version="0.1.0",
    description="GAN training on TensorFlow 2 and Keras 3: two-tape train_step, "
                "losses, regularizers, networks, tf.data pipelines and launchers.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tfgan2", "tfgan2.*", "pipelines", "pipelines.*",
                                    "launch", "launch.*"]),
    # The root flagfiles (digits.cfg, ...), installed to <prefix>/share/tfgan2/configs,
    # where launch.train --flagfile=NAME.cfg finds them from any directory.
    data_files=[("share/tfgan2/configs", sorted(glob.glob("*.cfg")))],
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "tensorflow-datasets>=4.9",
        # TFDS imports it to download and prepare MNIST but does not declare it.
        "importlib_resources>=6.0",
        "absl-py>=1.4",
        "matplotlib>=3.7",
        "numpy>=1.26",
        "pillow>=10.0",
        "scikit-learn>=1.3",
        "scipy>=1.11",
    ],
    # tensorboard: the tests read event files back with TensorBoard's own reader
    # (and keras.callbacks.TensorBoard needs it); requests: keras.callbacks.RemoteMonitor.
    extras_require={"test": ["pytest>=7.4", "tensorboard>=2.16", "requests>=2.28"]},
)
