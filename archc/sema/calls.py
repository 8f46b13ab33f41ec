"""Calls of constructors: which op or block a name means, and how a call's arguments bind to its parameters.

The static check, elaboration and the emitter all bind calls through these functions, so the three say the same
thing about a call, with the same error at the same place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archc import ops
from archc.errors import ArchError, Loc, Note
from archc.lang import syntax as S
from archc.sema.evaluate import Scope, close_match, did_you_mean, evaluate

if TYPE_CHECKING:
    from archc.sema.program import Program

# The built-in constructor of numbered and named sequences, and the built-in join of a forward.
SEQ = "seq"
CAT = "cat"


def resolve_callee(program: Program, call: S.Call) -> ops.Op | S.Definition:
    """The op or block a constructor call names (not `seq`), or a located error with a did-you-mean."""
    op = ops.lookup(call.func)
    if op is not None:
        if op.multi:
            raise ArchError(
                "E082",
                f"`{op.name}` returns several tensors, so it is no member",
                call.loc,
                f"apply it in a forward and unpack them: `x1, x2 = {op.name}(x, 2, dim = 1)`",
            )
        if not op.member:
            raise ArchError(
                "E082",
                f"`{op.name}` is applied inline in a forward, so it is no member",
                call.loc,
                f"write `y = {op.name}(x, ...)` in the forward",
            )
        return op
    defn = program.definitions.get(call.func)
    if defn is None or defn.kind != "block":
        blocks = {n: d for n, d in program.definitions.items() if d.kind == "block"}
        suggestion = close_match(call.func, set(ops.OPS) | set(blocks) | {SEQ})
        notes: list[Note] = []
        if defn is not None:
            notes.append((defn.loc, f"`{call.func}` is an arch, defined here; only blocks are instantiated"))
        elif suggestion in blocks:
            notes.append((blocks[suggestion].loc, f"`{suggestion}` is defined here"))
        raise ArchError(
            "E011",
            f"unknown op or block `{call.func}`",
            call.loc,
            f"did you mean `{suggestion}`?" if suggestion else "define it with `block` or import it",
            notes,
        )
    return defn


def bind_op_args(op: ops.Op, args: list[Any], kwargs: dict[str, Any], call: S.Call) -> dict[str, Any]:
    """An op's attributes from call arguments, with defaults; an error located at the argument at fault."""
    try:
        return ops.bind_args(op, args, kwargs)
    except ops.OpError as e:
        raise ArchError(e.code, e.message, op_arg_loc(op, call, e.arg, len(call.args) - len(args)), e.hint) from None


def arg_loc(call: S.Call, arg: str | None) -> Loc:
    """Where keyword argument `arg` stands in `call`, or the call itself."""
    if arg is not None and arg in call.kwarg_locs:
        return call.kwarg_locs[arg]
    return call.loc


def op_arg_loc(op: ops.Op, call: S.Call, arg: str | None, skip: int = 0) -> Loc:
    """Where argument `arg` of `op` stands in `call`, by keyword or by position (after `skip` leading arguments:
    an inline op's tensor), or the call itself."""
    names = [n for n, _ in op.args]
    if arg is not None and arg not in call.kwarg_locs and arg in names and skip + names.index(arg) < len(call.args):
        return call.args[skip + names.index(arg)].loc
    return arg_loc(call, arg)


def check_block_call(defn: S.Definition, positional: int, keywords: list[str], call: S.Call) -> None:
    """The errors a call of block `defn` with `positional` arguments and `keywords` has whatever their values:
    too many arguments, an unknown or repeated keyword, a parameter without default left out."""
    names = [p.name for p in defn.params]
    signature = f"{defn.name}({', '.join(names)})"
    defined = (defn.loc, f"`{defn.name}` is defined here")
    if positional > len(names):
        raise ArchError("E014", f"{defn.name} takes {len(names)} arguments, got {positional}", call.loc, signature, [defined])
    bound = set(names[:positional])
    for key in keywords:
        if key not in names:
            raise ArchError(
                "E012", f"{defn.name} has no parameter `{key}`", arg_loc(call, key), did_you_mean(key, set(names)) or signature, [defined]
            )
        if key in bound:
            raise ArchError(
                "E015",
                f"{defn.name}: argument `{key}` given twice",
                arg_loc(call, key),
                f"`{key}` is also argument {names.index(key) + 1} by position: give it once",
                [defined],
            )
        bound.add(key)
    for p in defn.params:
        if p.name not in bound and p.default is None:
            raise ArchError(
                "E013",
                f"{defn.name} needs the argument `{p.name}`",
                call.loc,
                signature,
                [(p.loc, f"parameter `{p.name}` is declared here")],
            )


def bind_block_args(defn: S.Definition, args: list[Any], kwargs: dict[str, Any], call: S.Call) -> dict[str, Any]:
    """A block's parameters from call arguments, with defaults (which may use earlier parameters)."""
    check_block_call(defn, len(args), list(kwargs), call)
    names = [p.name for p in defn.params]
    bound = {**dict(zip(names, args, strict=False)), **kwargs}
    # Defaults may refer to earlier parameters.
    params_scope = Scope()
    out: dict[str, Any] = {}
    for p in defn.params:
        if p.name in bound:
            out[p.name] = bound[p.name]
        else:
            assert p.default is not None  # check_block_call said so
            out[p.name] = evaluate(p.default, params_scope)
        params_scope.values[p.name] = out[p.name]
    return out
