"""What the expressions of a forward mean: one home for the rules that the static check, elaboration and the
emitter each apply to a forward.

A call in a forward applies a member, joins tensors (`cat`), applies an op inline or calls a builtin; a binary
operator with a tensor operand is elementwise arithmetic. `forward_call` and `tensor_arithmetic` say which, or
raise the located error; each interpreter then does its own work with the answer: the check nothing more,
elaboration adds a node to the graph, the emitter writes a line of Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archc import ops
from archc.errors import ArchError, Loc
from archc.lang import syntax as S
from archc.sema.calls import CAT
from archc.sema.evaluate import BUILTINS, did_you_mean
from archc.sema.symbolic import Sym


@dataclass(frozen=True)
class ApplyMember:
    """`conv1(x)`, `downsample?(x)`: a declared member applied to one tensor."""

    name: str
    optional: bool


@dataclass(frozen=True)
class ApplyItem:
    """`convs[i](x)`: item `i` of a member that is a list of modules (a `seq`, or a block of numbered members)."""

    name: str


@dataclass(frozen=True)
class Join:
    """`cat(a, b, ...)`, `cat(a, b, dim = 1)`: tensors concatenated on channels, or on `dim` (PyTorch's, batch 0)."""


@dataclass(frozen=True)
class InlineOp:
    """`relu(x)`, `max_pool2d`-like ops applied without a member: the op's functional form."""

    op: ops.Op


@dataclass(frozen=True)
class BuiltinCall:
    """`int(...)`, `len(...)`: a value, not a tensor."""


ForwardCall = ApplyMember | ApplyItem | Join | InlineOp | BuiltinCall


def forward_call(call: S.Call, declared: set[str]) -> ForwardCall:
    """What `call` means in the forward of a definition declaring the members `declared` (on any path).

    Raises the errors every interpreter reports alike: a member applied to other than one tensor (E081), `?` on a
    name that is no member (E011), an op with weights used inline (E082), an unknown name (E011). An op that returns
    several tensors (`chunk`, `split`) gives a list of them."""
    func = call.func
    if call.item is not None:
        if func not in declared:
            raise ArchError("E011", f"no member `{func}` to take an item of", call.loc, did_you_mean(func, declared))
        if len(call.args) != 1 or call.kwargs:
            raise ArchError("E081", f"an item of `{func}` is applied to one tensor", call.loc, f"write `{func}[i](x)`")
        return ApplyItem(func)
    if func in declared:
        if not call.args:
            raise ArchError("E081", f"member `{func}` is applied to no tensor", call.loc, f"write `{func}(x)`")
        return ApplyMember(func, call.optional)
    if call.optional:
        raise ArchError("E011", f"no member `{func}`", call.loc, did_you_mean(func, declared))
    if func == CAT:
        return Join()
    op = ops.lookup(func)
    if op is not None:
        if op.functional is None:
            raise ArchError(
                "E082",
                f"`{op.name}` cannot be used inline" + (" (it has weights)" if op.inferred else ""),
                call.loc,
                f"declare it as a member (`{op.name}1 = {op.name}(...)`) and apply it by name",
            )
        return InlineOp(op)
    if func in BUILTINS:
        return BuiltinCall()
    raise ArchError("E011", f"unknown member or op `{func}`", call.loc, did_you_mean(func, declared | set(ops.OPS) | {CAT}))


def forward_inputs(forward: S.Forward | None) -> list[S.Param]:
    """The inputs of a forward, in order: `forward(x, shortcut = x, children = [])`'s three; a module without a
    forward (an op, a `seq`, a block applying its members in order) takes one tensor."""
    if forward is None:
        return [S.Param(Loc("", 0, 0), "x", None)]
    return forward.params or [S.Param(forward.loc, forward.arg, None)]


def is_list_input(param: S.Param) -> bool:
    """Whether an input of a forward is a list of tensors: its default is a list (`children = []`)."""
    return isinstance(param.default, S.ListLit)


def bind_inputs(forward: S.Forward | None, call: S.Call, what: str) -> list[S.Expr | None]:
    """The expression each input of `forward` takes in `call` (`tree1(x, shortcut)`, `tree2(x, children = c)`), None
    where the caller leaves an input to its default. A located E081 for an input too many, unknown, given twice or
    missing; `what` names the callee (`member `tree1``)."""
    if forward is None and (len(call.args) != 1 or call.kwargs):
        raise ArchError("E081", f"{what} is applied to one tensor", call.loc, f"write `{call.func}(x)`")
    params = forward_inputs(forward)
    names = [p.name for p in params]
    shown = ", ".join(names)
    if len(call.args) > len(params):
        raise ArchError(
            "E081",
            f"{what} takes {len(params)} input{'s' if len(params) > 1 else ''} ({shown}), given {len(call.args)}",
            call.args[len(params)].loc,
            f"apply it as `{call.func}({shown})`",
        )
    bound: list[S.Expr | None] = [*call.args, *([None] * (len(params) - len(call.args)))]
    for key, value in call.kwargs.items():
        loc = call.kwarg_locs.get(key, value.loc)
        if key not in names:
            raise ArchError("E081", f"{what} has no input `{key}`", loc, did_you_mean(key, set(names)) or f"its inputs: {shown}")
        i = names.index(key)
        if bound[i] is not None:
            raise ArchError("E081", f"input `{key}` of {what} is given twice", loc, "give it once, by position or by name")
        bound[i] = value
    for param, taken in zip(params, bound, strict=True):
        if taken is None and param.default is None:
            raise ArchError("E081", f"input `{param.name}` of {what} is not given", call.loc, f"apply it as `{call.func}({shown})`")
    return bound


# Elementwise arithmetic: the operators a tensor takes, and the node each makes.
TENSOR_OPERATORS = {"+": ops.ADD, "-": ops.SUB, "*": ops.MUL, "/": ops.DIV}


@dataclass(frozen=True)
class Arithmetic:
    """The node a binary operator with a tensor operand makes.

    Two tensors: `op` on both, broadcast as PyTorch does. A tensor and a number: `op` on the tensor with
    `attrs == {"scalar": k}`, and `"reverse": True` where the number stands on the left (`6 - x`)."""

    op: str
    attrs: dict[str, Any]
    tensors: tuple[bool, bool]  # which operands are tensors, left and right


def tensor_arithmetic(expr: S.BinOp, left: Any, right: Any, is_tensor: type | tuple[type, ...]) -> Arithmetic:
    """The arithmetic `expr` means, given its operands' values (`is_tensor` tells tensors from numbers); a located
    E080 for an operator or operand that tensors do not take."""
    lt, rt = isinstance(left, is_tensor), isinstance(right, is_tensor)
    assert lt or rt
    if expr.op not in TENSOR_OPERATORS:
        raise ArchError(
            "E080",
            f"`{expr.op}` does not apply to tensors",
            expr.loc,
            "tensors take + - * / elementwise (with PyTorch's broadcasting), with each other or with a number",
        )
    if lt and rt:
        return Arithmetic(TENSOR_OPERATORS[expr.op], {}, (True, True))
    number = right if lt else left
    # A constructor argument the emitter carries as a symbol (a block's `scale`) is a number once the module is built.
    if isinstance(number, bool) or not isinstance(number, (int, float, Sym)):
        raise ArchError(
            "E080",
            f"a tensor combines with a number or another tensor, not with {number!r}",
            expr.loc,
            "write the number (`x * 0.5`, `x + 3`), or apply the module first",
        )
    attrs: dict[str, Any] = {"scalar": number}
    if not lt:
        attrs["reverse"] = True
    return Arithmetic(TENSOR_OPERATORS[expr.op], attrs, (lt, rt))


def forward_condition(value: Any, test: S.Expr) -> bool:
    """The truth of a forward `if`'s condition, which must be a value known when the module is built."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return bool(value)
    if isinstance(value, (list, tuple)):
        return bool(value)
    raise ArchError(
        "E042",
        "a forward's `if` tests a value known when the module is built, not a tensor",
        test.loc,
        "test a parameter, a `let` or `in.channels` (torchvision's `use_res_connect`); tensors flow through ops",
    )


def operands_example(op: ops.Op) -> str:
    """How an op of several tensors is called: `matmul(a, b)`, `attention(q, k, v)`."""
    names = {2: "a, b", 3: "q, k, v"}.get(op.operands, ", ".join(f"x{i + 1}" for i in range(op.operands)))
    return f"{op.name}({names})"


def unpack_call(stmt: S.Unpack, declared: set[str]) -> ops.Op:
    """The op an unpacking statement applies: one that returns several tensors, called directly; E081 otherwise."""
    value = stmt.value
    if isinstance(value, S.Call):
        meaning = forward_call(value, declared)
        if isinstance(meaning, InlineOp) and meaning.op.multi:
            return meaning.op
    raise ArchError(
        "E081",
        f"{len(stmt.names)} names take the tensors of an op that returns several, such as `chunk`",
        stmt.loc,
        f"write `{', '.join(stmt.names)} = chunk(x, {len(stmt.names)}, dim = 1)`, or assign one name",
    )


def join_dim(call: S.Call, value: Callable[[S.Expr], Any]) -> Any:
    """The dimension `cat(..., dim = d)` joins on (1, the channels, by default); E012 for any other keyword."""
    for key in call.kwargs:
        if key != "dim":
            raise ArchError("E012", f"cat has no argument `{key}`", call.kwarg_locs.get(key, call.loc), "cat(a, b, ..., dim = 1)")
    return value(call.kwargs["dim"]) if "dim" in call.kwargs else 1


def tensor_subscripts(expr: S.Index, value: Callable[[S.Expr], Any]) -> tuple[Any, ...]:
    """The `items` of the `index` op `x[...]` means: an integer per indexed dimension, (start, stop, step) per slice
    (None where left out). `value` evaluates a bound; each must be an integer known when the module is built."""
    parts = expr.index.items if isinstance(expr.index, S.TupleLit) else [expr.index]
    items: list[Any] = []

    def bound(e: S.Expr) -> Any:
        v = value(e)
        if isinstance(v, bool) or not isinstance(v, (int, Sym)):
            raise ArchError("E042", f"a tensor's subscript is an integer or a slice, not {v!r}", e.loc, "e.g. x[:, 0] or x[:, 1:]")
        return v

    for part in parts:
        if isinstance(part, S.Slice):
            items.append(tuple(None if e is None else bound(e) for e in (part.start, part.stop, part.step)))
        else:
            items.append(bound(part))
    return tuple(items)


# The name a forward loop runs over: the block's members, in the order declared.
MEMBERS = "members"


@dataclass(frozen=True)
class MembersLoop:
    """A forward `for layer in members { ... } return x`: the body run once per member, in the order declared, with
    `var` naming it; the tensor the forward takes is carried from one iteration to the next and returned."""

    var: str
    body: list[S.Stmt]


def is_range_loop(stmt: S.For) -> bool:
    """`for i in range(n) { ... }` in a forward: a loop over integers, not over the members."""
    return isinstance(stmt.iterable, S.Call) and stmt.iterable.func == "range" and stmt.iterable.item is None and stmt.index is None


def range_bounds(stmt: S.For, value: Callable[[S.Expr], Any]) -> tuple[Any, ...]:
    """The arguments of a forward loop's `range(...)`, each an integer known when the module is built (E087 otherwise);
    `value` evaluates them (to a `Sym` where the emitter writes a constructor argument)."""
    call = stmt.iterable
    assert isinstance(call, S.Call)
    if call.kwargs or not 1 <= len(call.args) <= 3:
        raise ArchError("E087", "a forward loop runs over range(n), range(start, stop) or range(start, stop, step)", call.loc)
    bounds = []
    for arg in call.args:
        v = value(arg)
        if isinstance(v, bool) or not isinstance(v, (int, Sym)):
            shown = repr(v) if isinstance(v, (float, str, list, tuple)) or v is None else "a tensor"
            raise ArchError(
                "E087",
                f"a forward loop's bound is an integer known when the module is built, not {shown}",
                arg.loc,
                "a parameter, a `let` or a number, e.g. `for i in range(scale - 1)`",
            )
        bounds.append(v)
    return tuple(bounds)


def not_a_list(loc: Loc, what: str = "a tensor") -> ArchError:
    """E086: a list of tensors where one tensor is expected (or the other way round)."""
    return ArchError(
        "E086",
        f"a list of tensors where {what} is expected",
        loc,
        "take one of its tensors (`xs[i]`, `xs[-1]`) or join them (`cat(xs)`)",
    )


def list_index(items: list[Any], index: Any, loc: Loc) -> Any:
    """Item `index` of a list of tensors (or of modules): a located E085 out of range, E042 for a non-integer."""
    if isinstance(index, bool) or not isinstance(index, int):
        raise ArchError("E042", f"a list's index is an integer known when the module is built, not {index!r}", loc, "e.g. xs[0], xs[i]")
    if not -len(items) <= index < len(items):
        raise ArchError(
            "E085",
            f"index {index} is out of range for a list of {len(items)}",
            loc,
            f"the items are 0 to {len(items) - 1} (or -1 to -{len(items)} from the end)" if items else "the list is empty",
        )
    return items[index]


def members_loop(forward: S.Forward | None) -> MembersLoop | None:
    """The loop of a forward that runs over the block's members, or None for a forward without one; E084 for a loop
    in another form. The form is one loop, its body assignments, then `return` of the forward's argument. A loop over
    `range(...)` is no such loop, and may stand anywhere in a forward."""
    if forward is None:
        return None
    loops = [s for s in S.walk(forward.body) if isinstance(s, S.For) and not is_range_loop(s)]
    if not loops:
        return None
    first = loops[0]
    example = f"for layer in {MEMBERS} {{ {forward.arg} = cat({forward.arg}, layer({forward.arg})) }} then `return {forward.arg}`"
    if not (isinstance(first.iterable, S.Name) and first.iterable.name == MEMBERS) or first.index is not None:
        raise ArchError(
            "E084",
            "a forward's `for` runs over the block's members or over range(n)",
            first.iterable.loc,
            f"write `for layer in {MEMBERS}` or `for i in range(n)`; a loop over values builds members in the block's body",
        )
    body = forward.body
    returned = body[1].values if len(body) == 2 and isinstance(body[1], S.Return) else []
    if body[0] is not first or len(returned) != 1 or not isinstance(returned[0], S.Name) or returned[0].name != forward.arg:
        raise ArchError(
            "E084",
            f"a forward that loops over the members is the loop, then `return {forward.arg}`",
            first.loc,
            f"carry the forward's tensor through the loop: {example}",
        )
    for stmt in first.body:
        if not isinstance(stmt, S.Assign) or stmt.aux:
            raise ArchError(
                "E084",
                "a loop over the members assigns tensors, one statement each",
                stmt.loc,
                f"e.g. {example}",
            )
    if not any(isinstance(s, S.Assign) and s.name == forward.arg for s in first.body):
        raise ArchError("E084", f"the loop never assigns `{forward.arg}`, so it does nothing", first.loc, f"e.g. {example}")
    return MembersLoop(first.var, first.body)
