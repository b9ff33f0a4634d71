"""The model orchestrates, the pieces below it do not know it: no leaf module imports `tfgan2.gan`."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEAVES = ("objective", "labels", "noise", "replicas", "ema", "batches", "step_metrics",
          "schedules", "losses", "regularizers", "augment", "optimizer_pair", "serialization",
          "optimizers")


def _tfgan2_imports(path):
    """The tfgan2 modules a file imports anywhere (top level or inside functions)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tfgan2":
                names.update(a.name for a in node.names)
            elif node.module.startswith("tfgan2."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("tfgan2."))
    return names


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaf_module_does_not_import_the_gan(leaf):
    seen, todo = set(), [leaf]
    while todo:  # everything the leaf imports, directly or through other tfgan2 modules
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = os.path.join(ROOT, "tfgan2", name + ".py")
        if os.path.isfile(path):
            todo.extend(_tfgan2_imports(path))
    assert "gan" not in seen, f"tfgan2.{leaf} imports tfgan2.gan (through {sorted(seen)})"


def test_gan_class_stays_a_thin_shell():
    """`GAN` keeps the Keras shell; what it wires together lives in the leaf modules."""
    tree = ast.parse(open(os.path.join(ROOT, "tfgan2", "gan.py"), encoding="utf-8").read())
    gan = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "GAN")
    assert gan.end_lineno - gan.lineno + 1 <= 600
