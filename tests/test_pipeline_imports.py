"""The pipeline modules import without cycles: each one alone, in a fresh interpreter."""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINES = os.path.join(ROOT, "pipelines")


def _imports(path):
    """The pipelines.* modules a file imports anywhere (top level or inside functions)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipelines."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("pipelines."))
    return names


def test_no_import_cycle_between_pipeline_modules():
    graph = {name[:-3]: _imports(os.path.join(PIPELINES, name))
             for name in os.listdir(PIPELINES) if name.endswith(".py") and name != "__init__.py"}

    def reaches(start, target, seen=()):
        return any(n == target or (n not in seen and reaches(n, target, seen + (n,)))
                   for n in graph.get(start, ()))

    cycles = [name for name in graph if reaches(name, name)]
    assert not cycles, f"import cycles through {cycles}: {graph}"


@pytest.mark.parametrize("module", ["pipelines.tfrecords", "pipelines.celeba_files"])
def test_module_imports_alone(module):
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
