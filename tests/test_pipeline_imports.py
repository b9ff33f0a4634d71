"""The packages' modules import each other without cycles; some pipeline modules import
alone, in a fresh interpreter."""
import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _imports(path, package):
    """The ``package.*`` modules a file imports anywhere (top level or inside functions),
    ``from package import module`` included."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == package:
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith(package + "."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith(package + "."))
    return names


@pytest.mark.parametrize("package", ["pipelines", "tfgan2", "launch"])
def test_no_import_cycle_between_modules(package):
    folder = os.path.join(ROOT, package)
    modules = {name[:-3] for name in os.listdir(folder)
               if name.endswith(".py") and name != "__init__.py"}
    graph = {name: _imports(os.path.join(folder, name + ".py"), package) & modules
             for name in modules}

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
