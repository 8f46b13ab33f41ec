"""A generated module defines only the classes its network uses: every class a generated file defines is the type
of some module of the network its constructor builds (checked on the built model, not on archc's own analysis)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from archc.compiler import compile_spec
from tests.conftest import GENERATED, SPECS, load_source

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


def test_a_parameter_that_chose_the_blocks_is_no_argument(tmp_path: Path) -> None:
    """ResNet-18's classes take no `bottleneck`: passing one fails instead of quietly building a ResNet-18."""
    from generated import resnet18

    assert "Bottleneck" not in vars(resnet18)
    with pytest.raises(TypeError, match="bottleneck"):
        resnet18.ResNet(3, [2, 2, 2, 2], bottleneck=True)
    with pytest.raises(TypeError, match="bottleneck"):
        resnet18.ResLayer(64, 64, 2, bottleneck=True)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_an_overridden_arch_parameter_stays_a_constructor_argument(name: str, tmp_path: Path) -> None:
    """`archc compile -D` of an arch parameter sets its default; the generated function still takes it, and the
    built model follows it (counted on the model, against torchvision's)."""
    import torch
    import torchvision

    python = compile_spec(SPECS / f"{name}.arch", {"num_classes": 10, "zero_init_residual": True}).python()
    module = load_source(python, name, tmp_path)
    build = getattr(module, name)
    params = inspect.signature(build).parameters
    assert params["num_classes"].default == 10
    assert params["zero_init_residual"].default is True
    reference = getattr(torchvision.models, name)
    for kwargs in ({}, {"num_classes": 7}):
        model = build(**kwargs)
        expected = reference(num_classes=kwargs.get("num_classes", 10))
        assert model.fc.out_features == expected.fc.out_features
        assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in expected.parameters())
    # zero_init_residual reaches the last BatchNorm of every residual branch, and its opposite leaves them at one.
    last = "bn3" if name == "resnet50" else "bn2"
    for zero in (True, False):
        model = build(zero_init_residual=zero)
        blocks = [m for m in model.modules() if hasattr(m, last) and hasattr(m, "conv1")]
        assert blocks
        assert all(torch.all(getattr(b, last).weight == (0 if zero else 1)) for b in blocks)
