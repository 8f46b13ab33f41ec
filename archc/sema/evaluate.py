"""archc's own expression evaluator (never Python's eval): numbers, strings, tuples, lists, arithmetic,
comparisons, conditionals and a few builtins. Values may be symbolic (`Sym`), in which case the result is the
Python source of the expression, folded as far as the concrete parts allow."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from archc.errors import ArchError
from archc.lang import syntax as S
from archc.sema import symbolic
from archc.sema.symbolic import Sym, Unknown

# A guard against expressions that would build enormous values (`range(10 ** 12)`, `[0] * 10 ** 9`).
MAX_SEQUENCE = 100_000
# Integers beyond this are no size of a network; bounding them keeps arithmetic in a loop from growing without end.
MAX_INT = 2**256


class Scope:
    """Names visible to an expression: parameters, lets and loop variables, then the enclosing scope."""

    def __init__(self, values: dict[str, Any] | None = None, parent: Scope | None = None, in_channels: Any = None) -> None:
        self.values: dict[str, Any] = dict(values or {})
        self.parent = parent
        self.in_channels: Any = in_channels if in_channels is not None or parent is None else parent.in_channels

    def lookup(self, name: str) -> tuple[bool, Any]:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.values:
                return True, scope.values[name]
            scope = scope.parent
        return False, None

    def names(self) -> set[str]:
        out: set[str] = set()
        scope: Scope | None = self
        while scope is not None:
            out |= set(scope.values)
            scope = scope.parent
        return out

    def child(self) -> Scope:
        return Scope(parent=self)


class _TooLarge(ValueError):
    """A builtin would build a value over the limits."""


def _range(*args: Any) -> Any:
    if any(isinstance(a, Sym) for a in args):
        return symbolic.call("range", *args)
    if not all(isinstance(a, int) and not isinstance(a, bool) for a in args) or not 1 <= len(args) <= 3:
        raise TypeError("range takes one to three integers")
    r = range(*args)
    if len(r) > MAX_SEQUENCE:
        raise _TooLarge(f"range of {len(r)} items is over the limit of {MAX_SEQUENCE}")
    return list(r)


def _numeric(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def apply(*args: Any) -> Any:
        if any(symbolic.is_symbolic(a) for a in args):
            return symbolic.call(name, *args)
        return fn(*args)

    return apply


BUILTINS: dict[str, Callable[..., Any]] = {
    "int": _numeric("int", int),
    "float": _numeric("float", float),
    "min": _numeric("min", min),
    "max": _numeric("max", max),
    "abs": _numeric("abs", abs),
    "len": _numeric("len", len),
    "ceil": _numeric("math.ceil", math.ceil),
    "sqrt": _numeric("math.sqrt", math.sqrt),
    "log": _numeric("math.log", math.log),
    "round": _numeric("round", round),
    "range": _range,
}

_BINOPS = {"+", "-", "*", "/", "//", "%"}


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, tuple):
        return "a tuple"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "none"
    if isinstance(value, (Sym, Unknown)):
        return "a number"
    return "a module"


def evaluate(expr: S.Expr, scope: Scope, call: Callable[[S.Call, Scope], Any] | None = None) -> Any:
    """The value of `expr` in `scope`. Calls that are not builtins go to `call` (module constructors)."""
    match expr:
        case S.Const(value=value):
            return value
        case S.Name(name=name):
            found, value = scope.lookup(name)
            if not found:
                raise ArchError("E010", f"unknown name `{name}`", expr.loc, _did_you_mean(name, scope.names()))
            return value
        case S.InputAttr():
            if scope.in_channels is None:
                raise ArchError("E018", "`in` is only defined inside a block", expr.loc, "an arch's input is given by `input`")
            return scope.in_channels
        case S.LayerAttr(attr=attr):
            # The emitter of an init rule binds `layer.<attr>` to the attribute of the module it sets.
            found, value = scope.lookup("layer." + attr)
            if not found:
                raise ArchError(
                    "E042",
                    f"`layer.{attr}` reads the layer an init rule sets: it stands only in an init argument",
                    expr.loc,
                    "compute the value from the definition's parameters",
                )
            return value
        case S.TupleLit(items=items):
            return tuple(evaluate(i, scope, call) for i in items)
        case S.ListLit(items=items):
            return [evaluate(i, scope, call) for i in items]
        case S.BinOp(op=op, left=left, right=right):
            return _binop(expr, op, evaluate(left, scope, call), evaluate(right, scope, call))
        case S.Compare(op=op, left=left, right=right):
            lv, rv = evaluate(left, scope, call), evaluate(right, scope, call)
            if isinstance(lv, Unknown) or isinstance(rv, Unknown):
                raise ArchError(
                    "E043",
                    "this comparison depends on a size only known at run time",
                    expr.loc,
                    "archc cannot tell this size when it writes the class (it follows a loop over a constructor argument):"
                    " pass it as a parameter",
                )
            try:
                return symbolic.binary(op, lv, rv)
            except TypeError:
                raise ArchError("E042", f"cannot compare {_type_name(lv)} with {_type_name(rv)} using `{op}`", expr.loc) from None
        case S.BoolOp(op=op, left=left, right=right):
            lv = evaluate(left, scope, call)
            if not isinstance(lv, Sym) and ((op == "and" and not lv) or (op == "or" and lv)):
                return lv
            return symbolic.boolean(op, lv, evaluate(right, scope, call))
        case S.Not(operand=operand):
            return symbolic.negate(evaluate(operand, scope, call))
        case S.Neg(operand=operand):
            value = evaluate(operand, scope, call)
            if isinstance(value, bool) or not isinstance(value, (int, float, Sym, Unknown)):
                raise ArchError("E042", f"cannot negate {_type_name(value)}", expr.loc)
            return -value
        case S.Cond(then=then, test=test, orelse=orelse):
            tv = evaluate(test, scope, call)
            if not isinstance(tv, Sym):
                return evaluate(then if tv else orelse, scope, call)
            chosen = evaluate(then, scope, call), evaluate(orelse, scope, call)
            for value, branch in zip(chosen, (then, orelse), strict=True):
                try:
                    symbolic.literal(value)
                except TypeError:
                    raise ArchError(
                        "E042",
                        "a module chosen by `a if c else b` on a value the constructor takes",
                        branch.loc,
                        "write an `if c { ... } else { ... }` statement around the member instead",
                    ) from None
            return symbolic.conditional(tv, *chosen)
        case S.Index(target=target, index=index):
            tv, iv = evaluate(target, scope, call), evaluate(index, scope, call)
            if isinstance(tv, Sym) or isinstance(iv, Sym):
                return Sym(f"{symbolic.wrap(tv, 10)}[{symbolic.literal(iv)}]")
            if not isinstance(tv, (list, tuple, str)):
                raise ArchError("E042", f"cannot index {_type_name(tv)}", expr.loc)
            if not isinstance(iv, int) or isinstance(iv, bool):
                raise ArchError("E042", f"an index must be an int, not {_type_name(iv)}", index.loc)
            if not -len(tv) <= iv < len(tv):
                raise ArchError(
                    "E041", f"index {iv} is out of range for {len(tv)} items", index.loc, f"indices run from {-len(tv)} to {len(tv) - 1}"
                )
            return tv[iv]
        case S.Call(func=func, args=args, kwargs=kwargs) if func in BUILTINS and not expr.optional:
            if kwargs:
                raise ArchError("E045", f"`{func}` takes no keyword arguments", expr.loc, "pass its arguments by position")
            values = [evaluate(a, scope, call) for a in args]
            try:
                return BUILTINS[func](*values)
            except _TooLarge as e:
                raise ArchError("E062", f"`{func}`: {e}", expr.loc, f"archc keeps sequences under {MAX_SEQUENCE:,} items") from None
            except OverflowError as e:  # int(1e999), float(10 ** 400)
                raise ArchError(
                    "E062", f"`{func}`: the number is too large ({e})", expr.loc, "no size or rate in a network comes near such a number"
                ) from None
            except (TypeError, ValueError) as e:
                raise ArchError("E045", f"`{func}`: {e}", expr.loc) from None
        case S.Call():
            if call is None:
                raise ArchError("E019", f"`{expr.func}(...)` is not a value here", expr.loc)
            return call(expr, scope)
    raise ArchError("E042", "unsupported expression", expr.loc)


def _binop(expr: S.BinOp, op: str, lv: Any, rv: Any) -> Any:
    if op == "*" and isinstance(lv, (list, tuple)) != isinstance(rv, (list, tuple)):
        count = rv if isinstance(lv, (list, tuple)) else lv
        if (
            isinstance(count, int)
            and not isinstance(count, bool)
            and count * len(lv if isinstance(lv, (list, tuple)) else rv) > MAX_SEQUENCE
        ):
            raise ArchError("E062", f"a sequence of over {MAX_SEQUENCE} items", expr.loc)
    numeric = (int, float, Sym, Unknown)
    if op in _BINOPS and isinstance(lv, numeric) and isinstance(rv, numeric) and not isinstance(lv, bool) and not isinstance(rv, bool):
        if op in ("/", "//", "%") and not isinstance(rv, (Sym, Unknown)) and rv == 0:
            raise ArchError("E040", "division by zero", expr.loc, "the divisor is 0 for the arguments used here")
        try:
            result = symbolic.binary(op, lv, rv)
        except OverflowError:
            raise ArchError("E062", "number too large", expr.loc) from None
        if isinstance(result, int) and abs(result) > MAX_INT:
            raise ArchError("E062", "number too large", expr.loc, f"archc keeps integers under 2**{MAX_INT.bit_length()}")
        return result
    if op == "*" and any(isinstance(v, Sym) for v in (lv, rv)) and any(isinstance(v, (list, tuple)) for v in (lv, rv)):
        return symbolic.binary(op, lv, rv)  # `[8] * n` with n a constructor argument
    if op == "+" and any(isinstance(v, Sym) for v in (lv, rv)) and any(isinstance(v, (list, tuple)) for v in (lv, rv)):
        return symbolic.binary(op, lv, rv)  # `depths + [d]`, a list the generated code builds in a loop
    if op == "+" and type(lv) is type(rv) and isinstance(lv, (list, tuple, str)):
        if len(lv) + len(rv) > MAX_SEQUENCE:
            raise ArchError("E062", f"a sequence of over {MAX_SEQUENCE} items", expr.loc)
        return lv + rv
    # A negative count repeats zero times, as in Python (which overflows on a huge negative one).
    if op == "*" and isinstance(lv, (list, tuple)) and isinstance(rv, int) and not isinstance(rv, bool):
        return lv * max(rv, 0)
    if op == "*" and isinstance(rv, (list, tuple)) and isinstance(lv, int) and not isinstance(lv, bool):
        return rv * max(lv, 0)
    raise ArchError("E042", f"cannot apply `{op}` to {_type_name(lv)} and {_type_name(rv)}", expr.loc)


def close_match(name: str, candidates: set[str]) -> str | None:
    """The candidate closest to a misspelt name, if one is close enough."""
    import difflib

    close = difflib.get_close_matches(name, sorted(candidates), n=1)
    return close[0] if close else None


# Python's spellings of archc's constants.
PYTHON_CONSTANTS = {"True": "true", "False": "false", "None": "none"}


def _did_you_mean(name: str, candidates: set[str]) -> str | None:
    if name in PYTHON_CONSTANTS and name not in candidates:
        return f"archc spells it `{PYTHON_CONSTANTS[name]}`, in lower case"
    close = close_match(name, candidates)
    return f"did you mean `{close}`?" if close else None


def did_you_mean(name: str, candidates: set[str]) -> str | None:
    """A `did you mean` hint for a misspelt name."""
    return _did_you_mean(name, candidates)
