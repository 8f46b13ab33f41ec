"""Fixed tensors made when a module is built: the expression of a `buffer(...)` member.

`filt = buffer(expr, persistent = false)` declares a tensor that is computed once in the constructor and registered
with `register_buffer` (Swin's `relative_position_index`, BlurPool's `filt`). Its expression is written with the
build-time constructors `arange(...)` and `tensor(...)`, the arithmetic operators (broadcast as PyTorch does),
subscripts (`t[:, none]`, `t[1:]`, `t[0]`) and the calls of `FUNCTIONS`. Parts without a tensor are values as
anywhere else (a parameter, a `let`).

One function, `build_tensor`, serves both interpreters that need it: elaboration (concrete values; the shape and
dtype are what it wants) and the emitter (symbolic values; the Python source is what it wants). Nothing here
computes a tensor's values: the emitted PyTorch source does, and the tests hold it to the references'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archc.errors import ArchError, Loc
from archc.lang import syntax as S
from archc.sema import symbolic
from archc.sema.evaluate import BUILTINS, Scope, evaluate
from archc.sema.symbolic import UNKNOWN, Sym, Unknown, same_value

BUFFER = "buffer"
# The op convolving by a tensor of the module's own (a buffer's main use: BlurPool's `F.conv2d(x, self.filt, ...)`).
WEIGHT_CONV = "conv2d"
# The calls a buffer's expression may make, with their forms (for the hint of a wrong call).
FUNCTIONS = {
    "arange": "arange(end), arange(start, end) or arange(start, end, step): integers, int64",
    "tensor": "tensor(((1, 2, 1), (2, 4, 2))): a literal of numbers, nested tuples (int64 if all integers, else float32)",
    "reshape": "reshape(t, (sizes)): one size may be -1",
    "permute": "permute(t, (dims))",
    "transpose": "transpose(t, dim0, dim1)",
    "flatten": "flatten(t, start_dim = 0, end_dim = -1)",
    "repeat": "repeat(t, (counts)): as Tensor.repeat",
    "cat": "cat(a, b, ..., dim = 0)",
    "sum": "sum(t, dim)",
    "abs": "abs(t): each element's magnitude (on numbers, the builtin)",
}
MAX_ELEMENTS = 2**28  # a fixed tensor of a network is small; this guards the constructor against a typo


@dataclass(frozen=True)
class BuiltTensor:
    """A build-time tensor: its shape (numbers, or symbolic sizes in the emitter), dtype and Python source."""

    shape: tuple[Any, ...]
    dtype: str  # "int64" | "float32"
    code: Sym


def _error(message: str, loc: Loc, hint: str | None = None) -> ArchError:
    return ArchError("E088", message, loc, hint)


def has_tensor(expr: S.Expr) -> bool:
    """Whether an expression calls anything but a builtin (`min`, `range`): a tensor function, or a mistake."""
    return any(isinstance(n, S.Call) and n.func not in BUILTINS for n in S.walk(expr))


def build_buffer(call: S.Call, scope: Scope) -> tuple[BuiltTensor, Any]:
    """`buffer(expr, persistent = ...)`: the tensor and the `persistent` flag (PyTorch's default, true)."""
    names = ["value", "persistent"]
    if len(call.args) > 2 or set(call.kwargs) - set(names) or not (call.args or "value" in call.kwargs):
        raise _error("buffer takes a tensor expression and `persistent`", call.loc, "buffer(arange(4) * 2, persistent = false)")
    given = dict(zip(names, call.args, strict=False))
    for key, value in call.kwargs.items():
        if key in given:
            raise ArchError("E015", f"buffer: argument `{key}` given twice", call.loc)
        given[key] = value
    value = build_tensor(given["value"], scope)
    if not isinstance(value, BuiltTensor):
        raise _error(
            f"a buffer is a tensor, got {value!r}",
            given["value"].loc,
            "build it with arange(...) or tensor(...): buffer(tensor((0.25, 0.5, 0.25)))",
        )
    persistent = evaluate(given["persistent"], scope) if "persistent" in given else True
    if not isinstance(persistent, (bool, Sym)):
        raise ArchError("E016", f"buffer: `persistent` must be true or false, got {persistent!r}", call.loc)
    return value, persistent


def build_tensor(expr: S.Expr, scope: Scope) -> Any:
    """The value of a buffer's expression: a BuiltTensor, or a plain value for a part without a tensor."""
    if not has_tensor(expr):
        return evaluate(expr, scope)
    match expr:
        case S.Call(func=func) if func in FUNCTIONS and not expr.optional and expr.item is None:
            return _call(expr, scope)
        case S.Call(func=func):
            raise _error(
                f"`{func}(...)` is not a build-time tensor function",
                expr.loc,
                "a buffer's expression calls " + ", ".join(f"`{f}`" for f in FUNCTIONS),
            )
        case S.BinOp(op=op, left=left, right=right):
            return _arithmetic(expr, op, build_tensor(left, scope), build_tensor(right, scope))
        case S.Neg(operand=operand):
            value = _tensor(build_tensor(operand, scope), operand.loc)
            return BuiltTensor(value.shape, value.dtype, -value.code)
        case S.Index(target=target, index=index):
            value = _tensor(build_tensor(target, scope), target.loc)
            items = index.items if isinstance(index, S.TupleLit) else [index]
            return _subscript(value, items, scope, expr.loc)
    raise _error("this expression does not make a build-time tensor", expr.loc, "a buffer's expression: " + FUNCTIONS["tensor"])


def _tensor(value: Any, loc: Loc) -> BuiltTensor:
    if not isinstance(value, BuiltTensor):
        raise _error(f"expected a tensor here, got {value!r}", loc)
    return value


def _int(value: Any, loc: Loc, what: str) -> Any:
    if isinstance(value, (Sym, Unknown)) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise _error(f"{what} must be an integer, got {value!r}", loc)


def _sizes(value: Any, loc: Loc, what: str) -> tuple[Any, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(_int(v, loc, what) for v in value)
    if isinstance(value, Sym):
        raise _error(f"{what} must be a tuple written out, got `{value.code}`", loc, "write each size: (a, b, c)")
    raise _error(f"{what} must be a tuple of integers, got {value!r}", loc)


def _dim(d: Any, rank: int, loc: Loc) -> int:
    d = _int(d, loc, "a dimension")
    if not isinstance(d, int):
        raise _error("a dimension of a buffer's tensor must be a number written out", loc)
    if not -rank <= d < max(rank, 1):
        raise _error(f"dimension {d} is out of range for a tensor of {rank} dimensions", loc)
    return d % rank if rank else 0


def _numel(shape: tuple[Any, ...]) -> Any:
    n: Any = 1
    for d in shape:
        n = n * d if isinstance(d, int) and isinstance(n, int) else UNKNOWN
    return n


def _checked(shape: tuple[Any, ...], dtype: str, code: Sym, loc: Loc) -> BuiltTensor:
    n = _numel(shape)
    if isinstance(n, int) and n > MAX_ELEMENTS:
        raise _error(f"a buffer of {n:,} elements", loc, f"archc keeps a fixed tensor under {MAX_ELEMENTS:,} elements")
    return BuiltTensor(shape, dtype, code)


def _args(call: S.Call, scope: Scope, names: list[str], defaults: dict[str, Any]) -> list[Any]:
    """Bind a call's arguments by position and name, each a tensor or a value."""
    if len(call.args) > len(names):
        raise _error(f"`{call.func}` takes at most {len(names)} arguments", call.loc, FUNCTIONS[call.func])
    bound = {n: build_tensor(a, scope) for n, a in zip(names, call.args, strict=False)}
    for key, value in call.kwargs.items():
        if key not in names or key in bound:
            raise _error(f"`{call.func}` has no argument `{key}` here", call.kwarg_locs.get(key, call.loc), FUNCTIONS[call.func])
        bound[key] = build_tensor(value, scope)
    missing = [n for n in names if n not in bound and n not in defaults]
    if missing:
        raise _error(f"`{call.func}` needs `{missing[0]}`", call.loc, FUNCTIONS[call.func])
    return [bound.get(n, defaults.get(n)) for n in names]


def _call(call: S.Call, scope: Scope) -> BuiltTensor:
    func, loc = call.func, call.loc
    if func == "arange":
        values = [_int(build_tensor(a, scope), a.loc, "an arange bound") for a in call.args]
        if call.kwargs or not 1 <= len(values) <= 3:
            raise _error("`arange` takes one to three integers by position", loc, FUNCTIONS[func])
        start, end, step = (0, values[0], 1) if len(values) == 1 else (*values, 1)[:3]
        if all(isinstance(v, int) for v in (start, end, step)):
            if step == 0:
                raise _error("`arange`: the step is 0", loc)
            size: Any = len(range(start, end, step))
        else:
            size = values[0] if len(values) == 1 else UNKNOWN
        return _checked((size,), "int64", symbolic.call("torch.arange", *values), loc)
    if func == "tensor":
        (value,) = _args(call, scope, ["data"], {})
        shape = _literal_shape(value, loc)
        floats = any(isinstance(v, float) for v in _leaves(value))
        data = _as_lists(value)
        return _checked(shape, "float32" if floats else "int64", symbolic.call("torch.tensor", data), loc)
    if func == "cat":
        dim = build_tensor(call.kwargs["dim"], scope) if "dim" in call.kwargs else 0
        if set(call.kwargs) - {"dim"}:
            raise _error("`cat` takes tensors and `dim`", loc, FUNCTIONS[func])
        parts = [_tensor(build_tensor(a, scope), a.loc) for a in call.args]
        if not parts:
            raise _error("`cat` joins one or more tensors", loc, FUNCTIONS[func])
        rank = len(parts[0].shape)
        d = _dim(dim, rank, loc)
        for p in parts[1:]:
            if len(p.shape) != rank or not all(
                same_value(a, b) or not _concrete(a, b) for i, (a, b) in enumerate(zip(p.shape, parts[0].shape, strict=True)) if i != d
            ):
                raise _error("`cat`: the tensors' sizes differ outside the joined dimension", loc)
        joined: Any = 0
        for p in parts:
            joined = joined + p.shape[d] if isinstance(p.shape[d], int) and isinstance(joined, int) else UNKNOWN
        shape = (*parts[0].shape[:d], joined, *parts[0].shape[d + 1 :])
        dtype = "float32" if any(p.dtype == "float32" for p in parts) else "int64"
        code = Sym(f"torch.cat([{', '.join(p.code.code for p in parts)}], {d})")
        return _checked(shape, dtype, code, loc)
    table = {
        "reshape": (["input", "sizes"], {}),
        "permute": (["input", "dims"], {}),
        "transpose": (["input", "dim0", "dim1"], {}),
        "flatten": (["input", "start_dim", "end_dim"], {"start_dim": 0, "end_dim": -1}),
        "repeat": (["input", "counts"], {}),
        "sum": (["input", "dim"], {}),
        "abs": (["input"], {}),
    }
    names, defaults = table[func]
    first, *rest = _args(call, scope, names, defaults)
    x = _tensor(first, call.args[0].loc if call.args else loc)
    rank = len(x.shape)

    def method(*args: Any) -> Sym:
        return Sym(f"{symbolic.wrap(x.code, 10)}.{func}({', '.join(symbolic.literal(a) for a in args)})")

    if func == "reshape":
        sizes = _sizes(rest[0], loc, "reshape's sizes")
        shape = _reshape(x.shape, sizes, loc)
        return _checked(shape, x.dtype, method(*sizes), loc)
    if func == "permute":
        dims = [_dim(d, rank, loc) for d in _sizes(rest[0], loc, "permute's dims")]
        if sorted(dims) != list(range(rank)):
            raise _error(f"permute's dims must order all {rank} dimensions once each, got {tuple(dims)}", loc)
        return _checked(tuple(x.shape[d] for d in dims), x.dtype, method(*dims), loc)
    if func == "transpose":
        a, b = _dim(rest[0], rank, loc), _dim(rest[1], rank, loc)
        swapped = list(x.shape)
        swapped[a], swapped[b] = swapped[b], swapped[a]
        return _checked(tuple(swapped), x.dtype, method(a, b), loc)
    if func == "flatten":
        s, e = _dim(rest[0], rank, loc), _dim(rest[1], rank, loc)
        if s > e:
            raise _error(f"flatten: start_dim {s} is after end_dim {e}", loc)
        merged = _numel(x.shape[s : e + 1])
        return _checked((*x.shape[:s], merged, *x.shape[e + 1 :]), x.dtype, method(*((s, e) if (s, e) != (0, rank - 1) else ())), loc)
    if func == "repeat":
        counts = _sizes(rest[0], loc, "repeat's counts")
        if len(counts) < rank:
            raise _error(f"repeat needs a count for each of the {rank} dimensions", loc)
        padded = (1,) * (len(counts) - rank) + x.shape
        shape = tuple(
            d * c if isinstance(d, int) and isinstance(c, int) else symbolic.binary("*", d, c) for d, c in zip(padded, counts, strict=True)
        )
        return _checked(shape, x.dtype, method(*counts), loc)
    if func == "abs":
        return _checked(x.shape, x.dtype, method(), loc)
    # sum
    d = _dim(rest[0], rank, loc)
    return _checked((*x.shape[:d], *x.shape[d + 1 :]), x.dtype, method(d), loc)


def _concrete(*values: Any) -> bool:
    return all(isinstance(v, int) for v in values)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _as_lists(value: Any) -> Any:
    return [_as_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def _literal_shape(value: Any, loc: Loc) -> tuple[Any, ...]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise _error("an empty tensor literal", loc)
        shapes = {_literal_shape(v, loc) for v in value}
        if len(shapes) != 1:
            raise _error("a tensor literal's rows differ in length", loc, "every row of tensor(...) has the same sizes")
        return (len(value), *shapes.pop())
    if isinstance(value, bool) or not isinstance(value, (int, float, Sym)):
        raise _error(f"a tensor literal holds numbers, got {value!r}", loc)
    return ()


def _reshape(shape: tuple[Any, ...], sizes: tuple[Any, ...], loc: Loc) -> tuple[Any, ...]:
    total = _numel(shape)
    if sum(1 for s in sizes if s == -1) > 1:
        raise _error("reshape: at most one size may be -1", loc)
    known = _numel(tuple(s for s in sizes if s != -1))
    if not isinstance(total, int) or not isinstance(known, int):
        return tuple(UNKNOWN if s == -1 else s for s in sizes)
    if -1 in sizes:
        if known == 0 or total % known:
            raise _error(f"reshape: {total} elements do not split into {sizes}", loc)
        return tuple(total // known if s == -1 else s for s in sizes)
    if known != total:
        raise _error(f"reshape: {total} elements do not make the sizes {sizes} ({known} elements)", loc)
    return sizes


def _broadcast(a: tuple[Any, ...], b: tuple[Any, ...], loc: Loc) -> tuple[Any, ...]:
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    out = []
    for x, y in zip(a, b, strict=True):
        if same_value(x, y) or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        elif isinstance(x, int) and isinstance(y, int):
            raise _error(
                f"cannot broadcast tensors of shapes {'×'.join(map(str, a))} and {'×'.join(map(str, b))}",
                loc,
                "sizes aligned from the right must be equal, or one of them 1: t[:, none] adds a dimension of 1",
            )
        else:
            out.append(y if isinstance(x, Unknown) else x)
    return tuple(out)


def _arithmetic(expr: S.BinOp, op: str, left: Any, right: Any) -> BuiltTensor:
    for value, side in ((left, expr.left), (right, expr.right)):
        if not isinstance(value, (BuiltTensor, int, float, Sym)) or isinstance(value, bool):
            raise _error(f"cannot apply `{op}` to a tensor and {value!r}", side.loc)
    if op in ("/", "//", "%") and not isinstance(right, (BuiltTensor, Sym)) and right == 0:
        raise ArchError("E040", "division by zero", expr.loc, "the divisor is 0 for the arguments used here")
    tensors = [v for v in (left, right) if isinstance(v, BuiltTensor)]
    shape = tensors[0].shape if len(tensors) == 1 else _broadcast(tensors[0].shape, tensors[1].shape, expr.loc)
    floats = any(v.dtype == "float32" for v in tensors) or any(isinstance(v, float) for v in (left, right)) or op == "/"
    code = symbolic.binary(
        op, left.code if isinstance(left, BuiltTensor) else left, right.code if isinstance(right, BuiltTensor) else right
    )
    return _checked(shape, "float32" if floats else "int64", code if isinstance(code, Sym) else Sym(symbolic.literal(code)), expr.loc)


def _subscript(value: BuiltTensor, items: list[S.Expr], scope: Scope, loc: Loc) -> BuiltTensor:
    shape, dim, codes = list(value.shape), 0, []
    out: list[Any] = []
    for item in items:
        if isinstance(item, S.Slice):
            parts = [None if p is None else _int(evaluate(p, scope), p.loc, "a slice bound") for p in (item.start, item.stop, item.step)]
            if dim >= len(shape):
                raise _error(f"too many subscripts for a tensor of {len(shape)} dimensions", item.loc)
            if parts[2] is not None and (not isinstance(parts[2], int) or parts[2] <= 0):
                raise _error("a slice step must be a positive number", item.loc)
            size = shape[dim]
            if isinstance(size, int) and all(p is None or isinstance(p, int) for p in parts):
                out.append(len(range(size)[slice(*parts)]))
            else:
                out.append(size if parts == [None, None, None] else UNKNOWN)
            codes.append(":".join("" if p is None else symbolic.literal(p) for p in parts[: 3 if parts[2] is not None else 2]))
            dim += 1
            continue
        index = evaluate(item, scope)
        if index is None:
            out.append(1)
            codes.append("None")
            continue
        index = _int(index, item.loc, "an index")
        if dim >= len(shape):
            raise _error(f"too many subscripts for a tensor of {len(shape)} dimensions", item.loc)
        if isinstance(index, int) and isinstance(shape[dim], int) and not -shape[dim] <= index < shape[dim]:
            raise _error(f"index {index} is out of range for a dimension of size {shape[dim]}", item.loc)
        codes.append(symbolic.literal(index))
        dim += 1
    out.extend(shape[dim:])
    return _checked(tuple(out), value.dtype, Sym(f"{symbolic.wrap(value.code, 10)}[{', '.join(codes)}]"), loc)
