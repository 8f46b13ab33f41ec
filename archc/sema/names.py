"""Member names that a spec computes: `"denselayer{i + 1}" = DenseLayer(...)`, evaluated on concrete values
(elaboration) and written as an f-string on symbolic ones (the emitter)."""

from __future__ import annotations

from typing import Any

from archc.errors import ArchError, Loc
from archc.lang import syntax as S
from archc.sema.evaluate import Scope, evaluate
from archc.sema.symbolic import Sym


def _piece_text(value: Any, loc: Loc) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ArchError("E074", f"a member name is built from integers and strings, got {value!r}", loc, "e.g. {i + 1} or {name}")
    return str(value)


def member_name(key: list[str | S.Expr], scope: Scope, loc: Loc) -> str:
    """The name a computed member gets for the values in `scope`; E074 where PyTorch would refuse it."""
    name = "".join(piece if isinstance(piece, str) else _piece_text(evaluate(piece, scope), piece.loc) for piece in key)
    if not name or "." in name:
        raise ArchError(
            "E074",
            f'"{name}" cannot name a module: PyTorch\'s module names are not empty and hold no "."',
            loc,
            'a "." separates the levels of a state_dict key: nest blocks for nested names',
        )
    return name


def member_name_code(key: list[str | S.Expr], scope: Scope, loc: Loc) -> str:
    """The Python expression of a computed member name: a string literal where the values are known, else an
    f-string over the constructor's variables (`f"denselayer{i + 1}"`)."""
    values: list[str | Any] = [piece if isinstance(piece, str) else evaluate(piece, scope) for piece in key]
    if not any(isinstance(v, Sym) for v in values):
        return quoted("".join(v if isinstance(v, str) else _piece_text(v, loc) for v in values))
    parts = []
    for v in values:
        if isinstance(v, Sym):
            parts.append("{" + v.code + "}")
        else:
            parts.append(str(v).replace("{", "{{").replace("}", "}}"))
    return 'f"' + "".join(parts) + '"'


def quoted(name: str) -> str:
    """A name as a Python string literal, in double quotes as ruff writes them."""
    return '"' + name + '"' if '"' not in name and "\\" not in name and name.isprintable() else repr(name)
