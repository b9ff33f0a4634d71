"""Packaging for tfgan2: the library (tfgan2), its input pipelines and launchers."""
import glob
import os
import runpy

from setuptools import find_packages, setup

# The TensorFlow and Keras bounds live in tfgan2/_versions.py, which `import tfgan2`
# also checks; run as a plain file so that setup.py imports neither TensorFlow nor tfgan2.
_MINIMUM = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                       "tfgan2", "_versions.py"))["MINIMUM_VERSIONS"]

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
    # Lower bounds: the oldest releases the test suite passes with (.ci/minimum-versions.txt).
    install_requires=[
        f"tensorflow>={_MINIMUM['tensorflow']}",
        f"keras>={_MINIMUM['keras']}",
        "tensorflow-datasets>=4.9.3",
        # TFDS imports it to download and prepare MNIST but does not declare it.
        "importlib_resources>=6.0.0",
        "absl-py>=1.4.0",
        "matplotlib>=3.7.0",
        "numpy>=1.26.0",
        "pillow>=10.0.0",
        "scikit-learn>=1.3.0",
        "scipy>=1.11.1",
    ],
    # tensorboard: the tests read event files back with TensorBoard's own reader
    # (and keras.callbacks.TensorBoard needs it); requests: keras.callbacks.RemoteMonitor.
    extras_require={"test": ["pytest>=7.4.0", "tensorboard>=2.16.2", "requests>=2.28.0"]},
)
