"""Shared helpers: compile a spec (file or text) and import the generated module; run the CLI in-process."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from archc.cli import main
from archc.compiler import Compiled, compile_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GENERATED = ROOT / "generated"


@dataclass
class Outcome:
    """What one in-process run of the CLI gave: its exit code (or the exception that escaped `main`), its output."""

    code: int | str
    out: str
    err: str


def run_cli(*args: str) -> Outcome:
    """`archc ARGS` in-process; an exception escaping `main` (argparse's SystemExit included) is the outcome's code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code: int | str = main(list(args))
        except SystemExit as e:
            code = f"SystemExit({e.code})"
        except BaseException as e:  # noqa: BLE001 - the property is that nothing escapes
            code = f"{type(e).__name__}: {e}"
    return Outcome(code, out.getvalue(), err.getvalue())


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
