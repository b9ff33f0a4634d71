"""What every launcher does around its ``main``: quiet output and one-line usage errors.

* TensorFlow's and absl's informational lines are silenced unless
  ``--verbosity`` is given: Python logging shows warnings and errors only
  (as ``WARNING: message``), TensorFlow's C++ log shows nothing below
  fatal (``TF_CPP_MIN_LOG_LEVEL=3`` unless the environment sets it), and
  the informational lines TensorFlow's libraries print while they load
  (``oneDNN custom operations are on``, ``Could not find cuda drivers``)
  are dropped; anything else written while they load is passed on.
  ``--verbosity=0`` (absl's flag: -1 warnings, 0 info, 1 debug) brings
  every line back in absl's usual format.
* A `absl.app.UsageError` prints ``<launcher>: <message>`` and one line
  pointing to ``--helpshort`` instead of the whole flag listing.
* GPU memory grows as needed (`enable_gpu_memory_growth`), so a training and
  ``launch.evaluate --watch`` (or ``launch.sample``) share one GPU.
"""
import logging
import os
import re
import sys
import tempfile

from absl import app, flags
from absl import logging as absl_logging

__all__ = ["run", "quiet_output", "enable_gpu_memory_growth", "HELP_HINT"]

HELP_HINT = "Pass --helpshort to list this launcher's flags (--helpfull: all of them)."
# Lines of the C++ logging (absl / TSL) at INFO or WARNING, and absl's notice before its
# initialization, as TensorFlow's shared libraries print them while they load.
_LOAD_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} [\d:.]+ +\d+ [\w.\-]+:\d+\] )")
# absl --verbosity -> TF_CPP_MIN_LOG_LEVEL (0 all, 1 no INFO, 2 no WARNING, 3 no ERROR).
_CPP_LEVEL = {-1: "1", -2: "2"}


def _import_tensorflow_quietly():
    """Import TensorFlow with stderr captured; pass on what is not load-time log noise."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(True)
                    if not _LOAD_NOISE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def quiet_output(flag_values=flags.FLAGS):
    """Set the logging of this process from ``--verbosity`` (see the module doc)."""
    if flag_values["verbosity"].present:
        level = flag_values.verbosity
        if level < 0:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", _CPP_LEVEL.get(level, "3"))
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    absl_logging.set_verbosity(absl_logging.WARNING)
    absl_logging.get_absl_handler().python_handler.setFormatter(
        logging.Formatter("%(levelname)s: %(message)s"))
    _import_tensorflow_quietly()
    import tensorflow as tf

    tf.get_logger().setLevel("WARNING")


def enable_gpu_memory_growth():
    """Make TensorFlow take GPU memory as it needs it, not nearly all of it at start.

    Without it the first process on a GPU reserves almost all its memory and a
    second one (``launch.evaluate --watch`` next to a training) fails to start.
    Must run before TensorFlow initializes its devices; returns the GPUs it set
    (none on a machine without GPUs, or once the devices are initialized).
    """
    _import_tensorflow_quietly()
    import tensorflow as tf

    done = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the devices are initialized: too late to change
            continue
        done.append(gpu)
    return done


def run(main, name, argv=None):
    """`absl.app.run` of ``main`` with `quiet_output` and `enable_gpu_memory_growth` first,
    and one-line usage errors."""

    def wrapped(args):
        quiet_output()
        enable_gpu_memory_growth()
        try:
            return main(args)
        except app.UsageError as exc:
            sys.stdout.flush()
            sys.stderr.write(f"{name}: {exc}\n{HELP_HINT}\n")
            sys.stderr.flush()
            sys.exit(exc.exitcode)

    app.run(wrapped, argv=argv)
