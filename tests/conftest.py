"""Shared helpers: compile a spec (file or text) and import the generated module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from archc.compiler import Compiled, compile_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GENERATED = ROOT / "generated"


def load_source(source: str, name: str, directory: Path) -> ModuleType:
    """Write generated source to `directory/name.py` and import it as a fresh module."""
    path = directory / f"{name}.py"
    path.write_text(source)
    module_name = f"_archc_test_{name}_{abs(hash(str(directory)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def compile_text(text: str, directory: Path, name: str = "model", overrides: dict[str, Any] | None = None) -> tuple[Compiled, ModuleType]:
    """Compile spec text (written as `directory/name.arch`) and import its generated module."""
    spec_path = directory / f"{name}.arch"
    spec_path.write_text(text)
    compiled = compile_spec(spec_path, overrides)
    return compiled, load_source(compiled.python(), name, directory)


@pytest.fixture
def compile_arch(tmp_path: Path) -> Any:
    """`compile_arch(text, name="model")` -> (Compiled, generated module)."""

    def run(text: str, name: str = "model", overrides: dict[str, Any] | None = None) -> tuple[Compiled, ModuleType]:
        return compile_text(text, tmp_path, name, overrides)

    return run
