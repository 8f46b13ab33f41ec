"""A generated module defines only the classes its network uses: every class a generated file defines is the type
of some module of the network its constructor builds (checked on the built model, not on archc's own analysis)."""

from __future__ import annotations

import ast
import importlib

import pytest

from tests.conftest import GENERATED

MODULES = sorted(p.stem for p in GENERATED.glob("*.py") if p.name != "__init__.py")


def _defined_classes(name: str) -> set[str]:
    tree = ast.parse((GENERATED / f"{name}.py").read_text())
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


@pytest.mark.parametrize("name", MODULES)
def test_every_generated_class_is_instantiated(name: str) -> None:
    import torch

    module = importlib.import_module(f"generated.{name}")
    with torch.device("meta"):
        model = getattr(module, name)()
    used = {type(m).__name__ for m in model.modules()}
    unused = _defined_classes(name) - used
    assert not unused, f"{name}.py defines classes its network never builds: {sorted(unused)}"
