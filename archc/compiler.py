"""The pipeline in one place: parse > elaborate > passes > emitters, for the CLI and the Python API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archc.elaborate import MAX_NODES, elaborate
from archc.errors import SOURCES, ArchError, Loc, raise_all, too_deep
from archc.ir import Architecture
from archc.lang import syntax as S
from archc.lang.parse import parse_expression
from archc.passes.params import ParamReport, count_params
from archc.sema.check import check_program, unused_values
from archc.sema.evaluate import Scope, evaluate
from archc.sema.program import Program, load_program


@dataclass
class Compiled:
    """A spec elaborated, with its parameter counts."""

    path: Path
    program: Program
    arch: Architecture
    params: ParamReport
    input_shape: tuple[int, int, int] | None = None  # the input that replaced the spec's, if any
    warnings: list[str] = field(default_factory=list)  # located, for the CLI to print; the spec compiles

    @property
    def module_name(self) -> str:
        """The generated module's and constructor's name: the spec file's stem."""
        return self.path.stem

    def python(self) -> str:
        """The generated PyTorch module's source."""
        from archc.emit.torch import emit_python

        return self._emit(emit_python, self.module_name)

    @property
    def inference_name(self) -> str:
        """The inference build's module and constructor name: `<stem>_inference`."""
        return f"{self.path.stem}_inference"

    def inference_python(self) -> str:
        """The inference build's source (archc/emit/inference.py, docs/inference.md)."""
        from archc.emit.inference import emit_inference

        return self._emit(emit_inference, self.inference_name)

    def _emit(self, emitter: Callable[[Program, Architecture, str, str, tuple[int, int, int] | None], str], name: str) -> str:
        """Run an emitter on this spec; its errors are located in the spec's sources."""
        try:
            return emitter(self.program, self.arch, _display_path(self.path), name, self.input_shape)
        except ArchError as e:
            raise self.program.annotate(e) from None
        except RecursionError:
            raise _too_deep(self.path, self.program) from None


def _display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def parse_overrides(defines: list[str]) -> dict[str, Any]:
    """`-D NAME=VALUE` strings -> values, each VALUE read as a spec expression."""
    out: dict[str, Any] = {}
    for item in defines:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ArchError("E090", f"-D expects NAME=VALUE, got {item!r}", None, "for example -D num_classes=10")
        out[name] = evaluate(parse_expression(text, f"-D {name}"), Scope())
    return out


def _too_deep(path: Path, program: Program | None = None) -> ArchError:
    """Nesting beyond what archc's recursive passes can follow, located at the most deeply nested node of the
    program's syntax trees, or without them (a file that failed to read) at the deepest bracket of the file."""
    if program is not None:
        trees = [program.main, *program.definitions.values()]
        return too_deep(S.deepest(trees) or Loc(str(path), 1, 1))
    loc = Loc(str(path), 1, 1)
    text = SOURCES.get(str(path))
    if text is not None:
        depth = deepest = 0
        line = column = 1
        for ch in text:
            if ch in "([{":
                depth += 1
                if depth > deepest:
                    deepest, loc = depth, Loc(str(path), line, column)
            elif ch in ")]}":
                depth -= 1
            line, column = (line + 1, 1) if ch == "\n" else (line, column + 1)
    return too_deep(loc)


def compile_spec(
    path: Path | str,
    overrides: dict[str, Any] | None = None,
    input_shape: tuple[int, int, int] | None = None,
    text: str | None = None,
    max_nodes: int = MAX_NODES,
    allow_import_outside: bool = False,
) -> Compiled:
    """Parse, check and elaborate a spec file (or `text` under that file name) and count its parameters.

    The static check reports every error it finds at once (`ArchErrors` when there are several); elaboration
    stops at its first. Errors inside imported files carry the chain of imports as notes. Imports stay inside the
    spec's folder unless `allow_import_outside` (E051).
    """
    path = Path(path)
    try:
        program = load_program(path, text, allow_import_outside)
    except RecursionError:
        raise _too_deep(path) from None
    try:
        raise_all(check_program(program))
        arch = elaborate(program, overrides, max_nodes=max_nodes, input_shape=input_shape)
    except ArchError as e:
        raise program.annotate(e) from None
    except RecursionError:
        raise _too_deep(path, program) from None
    return Compiled(path, program, arch, count_params(arch), input_shape, unused_values(program))
