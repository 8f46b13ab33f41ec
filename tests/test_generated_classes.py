"""A generated module defines only the classes its network uses: every class a generated file defines is the type
of some module of the network its constructor builds (checked on the built model, not on archc's own analysis)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

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


# `Pick` chooses between two blocks by `wide`, which `Net` passes on from `use_wide`; `extra` only the wide branch reads.
LIBRARY = """
block Wide(c) {
    conv(c, 3, padding = 1)
}
block Narrow(c) {
    conv(c, 1)
}
block Pick(wide, c, extra = 2) {
    let w = wide
    for i in range(2) {
        if w {
            Wide(c * extra)
        } else {
            Narrow(c)
        }
    }
}
block Net(use_wide = false, n = 8) {
    Pick(use_wide, n)
    Pick(use_wide, n * 2)
}
"""


def test_a_constant_choice_is_written_as_its_branch(compile_arch: Any) -> None:
    """`use_wide` is false everywhere: neither `Wide` nor the parameters that chose it or only it read are written,
    the argument after the dropped one is passed by keyword, and the model is the one the same library builds where
    the choice is left to the constructor."""
    import torch

    from tests.test_language_cases import assert_pass_matches_module

    compiled, module = compile_arch(LIBRARY + "arch model() = Net() {\n    input (3, 8, 8)\n}\n")
    source = compiled.python()
    assert "class Wide" not in source
    assert not re.search(r"\b(wide|use_wide|w|extra)\b", source)
    assert "self.append(Pick(in_channels, c=n))" in source
    model = module.model()
    assert {type(m).__name__ for m in model.modules()} >= {"Net", "Pick", "Narrow"}
    assert_pass_matches_module(compiled, model)

    # The choice as an arch parameter: both classes are written and the constructor picks.
    chosen, chooser = compile_arch(LIBRARY + "arch model(wide = false) = Net(use_wide = wide) {\n    input (3, 8, 8)\n}\n")
    assert "class Wide" in chosen.python() and "class Narrow" in chosen.python()
    assert "Wide" in {type(m).__name__ for m in chooser.model(wide=True).modules()}
    narrow = chooser.model(wide=False)
    assert "Wide" not in {type(m).__name__ for m in narrow.modules()}
    assert {k: v.shape for k, v in narrow.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    x = torch.randn(1, 3, 8, 8)
    narrow.load_state_dict(model.state_dict(), strict=True)
    assert torch.equal(narrow.eval()(x), model.eval()(x))


def test_a_config_table_is_annotated_by_its_items_types(tmp_path: Path) -> None:
    """Rows of ints and floats given by several instances: one list type merged over every row (GhostNet's `cfgs`),
    not a union of each row's, and a hint that every value the instances pass satisfies (checked by pydantic)."""
    import typing

    from pydantic import TypeAdapter

    spec = tmp_path / "table.arch"
    spec.write_text(
        "block Stage(rows) {\n    for r in rows {\n        conv(r[0], 3, padding = 1)\n    }\n}\n"
        "arch table() {\n    input (3, 8, 8)\n    a = Stage([[8, 0.25], [16, 1]])\n    b = Stage([[4, 2], (8, 1.5)])\n}\n"
    )
    source = compile_spec(spec).python()
    assert "rows: list[list[float | int] | tuple[float | int, ...]]) -> None:" in source
    module = load_source(source, "table", tmp_path)
    adapter: TypeAdapter[Any] = TypeAdapter(typing.get_type_hints(module.Stage.__init__)["rows"])
    for value in ([[8, 0.25], [16, 1]], [[4, 2], (8, 1.5)]):
        assert adapter.validate_python(value, strict=True) == value
