"""Symbolic values: Python expressions the emitter writes where a value depends on a constructor argument.

The same op-table rules and the same expression evaluator run on concrete numbers (elaboration) and on `Sym`
(emission): arithmetic on a `Sym` folds what it can and otherwise builds the Python source of the expression.
`UNKNOWN` stands for a value nobody can know statically (a block's input height); arithmetic keeps it unknown.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable
from typing import Any

# Python operator precedence, higher binds tighter.
_PREC = {"if": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "+": 6, "-": 6, "*": 7, "/": 7, "//": 7, "%": 7, "neg": 8, "atom": 10}

_CONCRETE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class Unknown:
    """A value that cannot be known before run time."""

    def __repr__(self) -> str:
        return "UNKNOWN"

    def _same(self, *_: Any) -> Unknown:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __floordiv__ = __rfloordiv__ = __truediv__ = __rtruediv__ = __mod__ = __rmod__ = __neg__ = _same


UNKNOWN = Unknown()


class Sym:
    """The Python source of an expression over constructor arguments, with its precedence."""

    __slots__ = ("code", "prec")

    def __init__(self, code: str, prec: int = _PREC["atom"]) -> None:
        self.code = code
        self.prec = prec

    def __repr__(self) -> str:
        return f"Sym({self.code!r})"

    def __hash__(self) -> int:
        return hash(self.code)

    def same(self, other: object) -> bool:
        return isinstance(other, Sym) and other.code == self.code

    def __add__(self, other: Any) -> Any:
        return binary("+", self, other)

    def __radd__(self, other: Any) -> Any:
        return binary("+", other, self)

    def __sub__(self, other: Any) -> Any:
        return binary("-", self, other)

    def __rsub__(self, other: Any) -> Any:
        return binary("-", other, self)

    def __mul__(self, other: Any) -> Any:
        return binary("*", self, other)

    def __rmul__(self, other: Any) -> Any:
        return binary("*", other, self)

    def __floordiv__(self, other: Any) -> Any:
        return binary("//", self, other)

    def __rfloordiv__(self, other: Any) -> Any:
        return binary("//", other, self)

    def __truediv__(self, other: Any) -> Any:
        return binary("/", self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return binary("/", other, self)

    def __mod__(self, other: Any) -> Any:
        return binary("%", self, other)

    def __neg__(self) -> Sym:
        return Sym("-" + wrap(self, _PREC["neg"]), _PREC["neg"])


def is_symbolic(value: Any) -> bool:
    """True for a Sym or a container holding one."""
    if isinstance(value, Sym):
        return True
    if isinstance(value, (tuple, list)):
        return any(is_symbolic(v) for v in value)
    return False


def is_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, (tuple, list)):
        return any(is_unknown(v) for v in value)
    return False


def literal(value: Any) -> str:
    """Python source for a concrete value (only numbers, bools, None, strings and containers of them)."""
    if isinstance(value, Sym):
        return value.code
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # Double quotes, as the rest of the generated code; JSON escapes are valid Python escapes.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"no Python literal for {value!r}")


def wrap(value: Any, prec: int, right: bool = False) -> str:
    """Source of `value`, parenthesised if it binds less tightly than an operator of precedence `prec`."""
    if isinstance(value, Sym):
        if value.prec < prec or (right and value.prec == prec):
            return f"({value.code})"
        return value.code
    text = literal(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0 and prec >= _PREC["neg"]:
        return f"({text})"
    return text


def binary(op: str, left: Any, right: Any) -> Any:
    """`left op right`, computed when both are concrete, simplified or written out otherwise."""
    if isinstance(left, Unknown) or isinstance(right, Unknown):
        return UNKNOWN
    if not isinstance(left, Sym) and not isinstance(right, Sym):
        return _CONCRETE_OPS[op](left, right)
    if op == "*" and (_is_const(left, 1) or _is_const(right, 1)):
        return right if _is_const(left, 1) else left
    if op in "+-" and _is_const(right, 0):
        return left
    if op == "+" and _is_const(left, 0):
        return right
    if op in ("//", "/") and _is_const(right, 1) and op == "//":
        return left
    if op == "//" and isinstance(left, Sym) and left.prec == _PREC["*"]:
        # `(p * b) // b` is `p` for integers: the size a split by `b` leaves (`out * radix // radix`).
        factor = " * " + wrap(right, _PREC["*"], right=True)
        prefix = left.code[: -len(factor)]
        if left.code.endswith(factor) and " / " not in prefix and "(" not in prefix:
            return Sym(prefix, _PREC["*"])
    if op in _CONCRETE_OPS and op not in "+-*/%" and op != "//":
        prec = _PREC["cmp"]
        return Sym(f"{wrap(left, prec + 1)} {op} {wrap(right, prec + 1)}", prec)
    prec = _PREC[op]
    return Sym(f"{wrap(left, prec)} {op} {wrap(right, prec, right=True)}", prec)


def _is_const(value: Any, const: int) -> bool:
    return not isinstance(value, (Sym, bool, Unknown)) and isinstance(value, (int, float)) and value == const


def boolean(op: str, left: Any, right: Any) -> Any:
    """`left and right` / `left or right` with short-circuit folding of concrete operands."""
    if not isinstance(left, Sym):
        if op == "and":
            return right if left else left
        return left if left else right
    if not isinstance(right, Sym):
        if op == "and" and not right:
            return Sym(f"{wrap(left, _PREC['and'])} and False", _PREC["and"]) if right is False else right
        if op == "or" and right:
            return right
        if op == "and":
            return left
    prec = _PREC[op]
    return Sym(f"{wrap(left, prec)} {op} {wrap(right, prec, right=True)}", prec)


def negate(value: Any) -> Any:
    if isinstance(value, Sym):
        return Sym("not " + wrap(value, _PREC["not"]), _PREC["not"])
    return not value


def conditional(test: Any, then: Any, orelse: Any) -> Any:
    """`then if test else orelse`."""
    if not isinstance(test, Sym):
        return then if test else orelse
    if isinstance(then, Unknown) or isinstance(orelse, Unknown):
        return UNKNOWN
    if isinstance(then, Sym) and then.same(orelse) or (not is_symbolic(then) and not is_symbolic(orelse) and then == orelse):
        return then
    prec = _PREC["if"]
    return Sym(f"{wrap(then, prec + 1)} if {wrap(test, prec + 1)} else {wrap(orelse, prec)}", prec)


def call(func: str, *args: Any) -> Sym:
    """`func(args...)` as source."""
    return Sym(f"{func}(" + ", ".join(literal(a) for a in args) + ")")


def same_value(a: Any, b: Any) -> bool:
    """Whether two values are certainly equal (symbolically or concretely)."""
    if isinstance(a, Sym) or isinstance(b, Sym):
        return isinstance(a, Sym) and a.same(b)
    if isinstance(a, Unknown) or isinstance(b, Unknown):
        return False
    return bool(a == b)
