"""The oldest TensorFlow and Keras tfgan2 runs on, and the import-time check of them.

`MINIMUM_VERSIONS` is the one place these bounds live: setup.py reads this file
(without importing tensorflow or the package) for its ``install_requires``, and
``import tfgan2`` calls `check_installed` before anything else, so a too-old
Keras fails at import with the fix in the message instead of deep inside a
layer at the first training step. The bounds are the oldest releases the test
suite passes with (BUILD.md, "Supported versions"; `.ci/run-minimum` checks
them).

Versions compare by their release numbers only: ``"3.14.0.dev2025"``,
``"2.19.0-dev20241105"`` (nightly builds) and ``"2.16.1+cpu"`` count as
3.14.0, 2.19.0 and 2.16.1. A nightly carries the number of the release it
leads to and has everything of the releases before it.
"""
import re

MINIMUM_VERSIONS = {"tensorflow": "2.16.1", "keras": "3.14.0"}

_RELEASE = re.compile(r"\d+(?:\.\d+)*")


def release_tuple(version):
    """``"3.14.0.dev2025"`` -> ``(3, 14, 0)``: the leading dot-separated integers."""
    match = _RELEASE.match(str(version).strip())
    if match is None:
        raise ValueError(f"version {version!r} does not start with a release number "
                         "such as '3.3.0'")
    numbers = [int(part) for part in match.group().split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:  # 3.3 == 3.3.0
        numbers.pop()
    return tuple(numbers)


def _too_old(package, installed):
    minimum = MINIMUM_VERSIONS[package]
    if release_tuple(installed) >= release_tuple(minimum):
        return None
    return (f"tfgan2 needs {package} >= {minimum}, but {package} {installed} is installed. "
            f'Upgrade it with: pip install "{package}>={minimum}"')


def check_versions(keras_version, tf_version):
    """Raise ImportError naming each of Keras and TensorFlow that is older than its minimum.

    ``keras_version`` or ``tf_version`` may be None (not known, not checked).
    """
    problems = []
    for package, installed in (("tensorflow", tf_version), ("keras", keras_version)):
        message = None if installed is None else _too_old(package, installed)
        if message:
            problems.append(message)
    if problems:
        raise ImportError("\n".join(problems))


def check_installed():
    """`check_versions` on the installed TensorFlow and Keras.

    TensorFlow is checked first, on its own, because a Keras 3 release may fail
    to import on a TensorFlow older than it supports.
    """
    import tensorflow as tf

    check_versions(None, tf.__version__)
    import keras

    check_versions(keras.__version__, tf.__version__)
