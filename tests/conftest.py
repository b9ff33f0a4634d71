"""Shared test set-up: quiet TensorFlow, two logical CPU devices, small thread pools."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Launcher runs in the tests use float32 instead of measuring a precision at every start
# (tests/test_precision_choice.py passes --precision=auto where it tests the measurement).
os.environ["TFGAN2_PRECISION"] = "float32"
# Likewise the convolution gradients (tests/test_conv_gradient_choice.py tests auto).
os.environ["TFGAN2_CONV_GRADIENTS"] = "native"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPUs let MirroredStrategy tests run without GPUs; this must
# happen before TensorFlow initializes its devices.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


@pytest.fixture
def subprocess_env():
    """Environment for running the launchers in a subprocess from the project root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


@pytest.fixture
def deterministic():
    """Op determinism for one test: equal inputs give bit-identical results."""
    from tensorflow.python.framework import config as tf_config

    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        tf_config.disable_op_determinism()


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Every new MirroredStrategy restarts its collective instance keys, which then
    clash in the runtime's cache with those of earlier strategies over the same
    devices.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
