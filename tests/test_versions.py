"""The minimum TensorFlow and Keras: one set of bounds for setup.py, the CI pins and the import check."""
import ast
import os
import re
import runpy
import subprocess
import sys

import keras
import pytest
import setuptools
import tensorflow as tf

from tfgan2 import _versions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIN_TF = _versions.MINIMUM_VERSIONS["tensorflow"]
MIN_KERAS = _versions.MINIMUM_VERSIONS["keras"]


def _setup_kwargs(monkeypatch):
    """The keyword arguments setup.py passes to setuptools.setup, without installing anything."""
    captured = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
    monkeypatch.chdir(ROOT)
    runpy.run_path(os.path.join(ROOT, "setup.py"), run_name="__main__")
    return captured


def _lower_bounds(requirements):
    """{"keras": "3.3.0", ...} from requirement strings such as "keras>=3.3.0"."""
    bounds = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)", requirement.replace(" ", ""))
        assert match, f"{requirement!r} is not of the form name>=version"
        bounds[match.group(1).lower().replace("_", "-")] = match.group(2)
    return bounds


def test_release_tuple_reads_release_numbers_of_release_and_nightly_versions():
    assert _versions.release_tuple("3.14.0.dev2025") == (3, 14)
    assert _versions.release_tuple("2.19.0-dev20241105") == (2, 19)
    assert _versions.release_tuple("2.16.1+cpu") == (2, 16, 1)
    assert _versions.release_tuple("3.3") == _versions.release_tuple("3.3.0") == (3, 3)
    assert _versions.release_tuple("3.10.0") > _versions.release_tuple("3.9.2")
    with pytest.raises(ValueError, match="'unknown' does not start with a release number"):
        _versions.release_tuple("unknown")


@pytest.mark.parametrize("keras_version, tf_version", [
    (MIN_KERAS, MIN_TF), ("3.15.1", "2.21.0"), ("3.14.0.dev2025", "2.22.0-dev20260101"),
    ("3.14.1", "2.20.0"), ("4.0", "3.0")])
def test_check_versions_accepts_the_minimum_and_newer(keras_version, tf_version):
    _versions.check_versions(keras_version, tf_version)  # raises on failure


def test_check_versions_names_the_installed_version_the_minimum_and_the_fix():
    with pytest.raises(ImportError) as error:
        _versions.check_versions("3.2.1", MIN_TF)
    message = str(error.value)
    assert "keras 3.2.1 is installed" in message
    assert f"keras >= {MIN_KERAS}" in message
    assert f'pip install "keras>={MIN_KERAS}"' in message
    assert "tensorflow" not in message


def test_check_versions_reports_both_when_both_are_too_old():
    with pytest.raises(ImportError) as error:
        _versions.check_versions("2.15.0", "2.15.1")  # the Keras 2 that TensorFlow 2.15 ships
    lines = str(error.value).splitlines()
    assert len(lines) == 2
    assert "tensorflow 2.15.1 is installed" in lines[0]
    assert f'pip install "tensorflow>={MIN_TF}"' in lines[0]
    assert "keras 2.15.0 is installed" in lines[1]


def test_check_versions_of_a_nightly_older_than_the_minimum_fails():
    with pytest.raises(ImportError, match=r"keras 3\.0\.0\.dev2023 is installed"):
        _versions.check_versions("3.0.0.dev2023", MIN_TF)


def test_check_installed_reads_the_installed_versions(monkeypatch):
    _versions.check_installed()  # this environment is new enough
    monkeypatch.setattr(keras, "__version__", "3.0.5")
    with pytest.raises(ImportError, match=r"keras 3\.0\.5 is installed"):
        _versions.check_installed()
    monkeypatch.setattr(keras, "__version__", "3.15.1")
    monkeypatch.setattr(tf, "__version__", "2.15.0")
    with pytest.raises(ImportError, match=r"tensorflow 2\.15\.0 is installed"):
        _versions.check_installed()


def test_import_tfgan2_fails_with_the_fix_on_a_too_old_keras(subprocess_env):
    code = "import keras; keras.__version__ = '3.1.0'; import tfgan2"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "ImportError: tfgan2 needs keras >= " in result.stderr
    assert f'pip install "keras>={MIN_KERAS}"' in result.stderr


def test_setup_py_bounds_are_the_import_check_minimums(monkeypatch):
    bounds = _lower_bounds(_setup_kwargs(monkeypatch)["install_requires"])
    assert bounds["tensorflow"] == MIN_TF
    assert bounds["keras"] == MIN_KERAS


def test_setup_py_imports_neither_tensorflow_keras_nor_tfgan2():
    with open(os.path.join(ROOT, "setup.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert not imported & {"tensorflow", "keras", "tfgan2"}


def test_minimum_versions_file_pins_every_lower_bound_of_setup_py(monkeypatch):
    kwargs = _setup_kwargs(monkeypatch)
    bounds = _lower_bounds(kwargs["install_requires"] + kwargs["extras_require"]["test"])
    pins = {}
    with open(os.path.join(ROOT, ".ci", "minimum-versions.txt"), encoding="utf-8") as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                name, version = line.split("==")
                pins[name.strip().lower().replace("_", "-")] = version.strip()
    assert not set(bounds) - set(pins), "setup.py bounds missing from .ci/minimum-versions.txt"
    assert ({name: _versions.release_tuple(pins[name]) for name in bounds}
            == {name: _versions.release_tuple(bound) for name, bound in bounds.items()})
