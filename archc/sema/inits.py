"""The `init` construct: the init functions a spec can call (torch.nn.init's, named without the trailing `_`), the
op types whose parameters a rule can name, and the checks of an `init` block, which the static check reports and the
emitter relies on (archc/emit/init.py writes the loop over `self.modules()`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archc.errors import ArchError, Loc
from archc.lang import syntax as S
from archc.sema.evaluate import Scope, did_you_mean, evaluate
from archc.sema.symbolic import literal

REQUIRED = object()

# torch.nn.init's functions: name -> (argument, default) after the tensor, in torch's order and spelling.
_KAIMING = (("a", 0), ("mode", "fan_in"), ("nonlinearity", "leaky_relu"))
INIT_FUNCTIONS: dict[str, tuple[tuple[str, Any], ...]] = {
    "uniform": (("a", 0.0), ("b", 1.0)),
    "normal": (("mean", 0.0), ("std", 1.0)),
    "trunc_normal": (("mean", 0.0), ("std", 1.0), ("a", -2.0), ("b", 2.0)),
    "constant": (("val", REQUIRED),),
    "ones": (),
    "zeros": (),
    "xavier_uniform": (("gain", 1.0),),
    "xavier_normal": (("gain", 1.0),),
    "kaiming_uniform": _KAIMING,
    "kaiming_normal": _KAIMING,
    "orthogonal": (("gain", 1),),
}
# Functions that compute a fan (or need a matrix): PyTorch refuses them on a tensor of fewer than 2 dimensions.
FAN_FUNCTIONS = frozenset({"xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal"})
# torch.nn.init.calculate_gain's nonlinearities.
NONLINEARITIES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
)


@dataclass(frozen=True)
class InitType:
    """An op whose parameters an init rule can set: its module class when the arch has none of it, which of its
    parameters are matrices (a fan can be computed) or may be absent (`bias = false`), and the attributes of its
    module an init argument can read as `layer.<attribute>` (PyTorch's names; a conv's `kernel_size` is a tuple)."""

    default_class: str
    params: tuple[str, ...]
    matrices: tuple[str, ...]
    optional: tuple[str, ...]
    attributes: tuple[str, ...]


_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")


INIT_TYPES: dict[str, InitType] = {
    "conv": InitType("nn.Conv2d", ("weight", "bias"), ("weight",), ("bias",), _CONV),
    "conv1d": InitType("nn.Conv1d", ("weight", "bias"), ("weight",), ("bias",), _CONV),
    "linear": InitType("nn.Linear", ("weight", "bias"), ("weight",), ("bias",), ("in_features", "out_features")),
    "batchnorm": InitType("nn.BatchNorm2d", ("weight", "bias"), (), (), ("num_features", "eps", "momentum")),
    # absent without affine
    "groupnorm": InitType("nn.GroupNorm", ("weight", "bias"), (), ("weight", "bias"), ("num_groups", "num_channels", "eps")),
    "instancenorm": InitType("nn.InstanceNorm2d", ("weight", "bias"), (), ("weight", "bias"), ("num_features", "eps", "momentum")),
    "prelu": InitType("nn.PReLU", ("weight",), (), (), ("num_parameters",)),
}


@dataclass(frozen=True)
class Target:
    """What a rule names: an op type (`block` None), or the member `path` of block `block`, of op type `op`, with
    for each step whether the member exists whatever the block's conditionals do."""

    op: str
    block: str | None = None
    path: tuple[str, ...] = ()
    always: tuple[bool, ...] = ()


def _member(defn: S.Definition, name: str) -> tuple[S.Member | None, bool]:
    """The member statement `name` of a definition (in any branch), and whether every path declares it."""
    for stmt in S.walk(defn.body):
        if isinstance(stmt, S.Member) and stmt.name == name:
            return stmt, name in S.declared_members(defn.body, every_path=True)
    return None, False


def resolve_target(definitions: dict[str, S.Definition], rule: S.InitRule) -> Target:
    """The op type (and member path) a rule's target names, or ArchError E111."""
    head, *path = rule.target
    if not path:
        if head in INIT_TYPES:
            return Target(head)
        if head in definitions and definitions[head].kind == "block":
            hint = f"a rule names an op type, or a member of a block: `{head}.member`"
        else:
            hint = did_you_mean(head, set(INIT_TYPES)) or f"the op types with parameters to initialise: {', '.join(INIT_TYPES)}"
        raise ArchError("E111", f"cannot initialise `{head}`: not an op type with parameters", rule.loc, hint)
    defn = definitions.get(head)
    if defn is None or defn.kind != "block":
        blocks = {n for n, d in definitions.items() if d.kind == "block"}
        hint = did_you_mean(head, blocks) or "a member path starts at a block the spec defines or imports"
        raise ArchError("E111", f"no block `{head}` to initialise a member of", rule.loc, hint)
    always: list[bool] = []
    where = head
    value: S.Expr | None = None
    for i, name in enumerate(path):
        last = i == len(path) - 1
        if isinstance(value, S.Call) and value.func == "seq":
            # An item of the seq the path reached, by its number.
            if not name.isdigit() or int(name) >= len(value.args):
                raise ArchError("E111", f"`{where}` has no item `{name}`", rule.loc, f"its items are numbered 0 to {len(value.args) - 1}")
            value = value.args[int(name)]
            always.append(True)
        else:
            stmt, every = _member(defn, name)
            if stmt is None:
                raise ArchError(
                    "E111",
                    f"`{where}` has no member `{name}`",
                    rule.loc,
                    did_you_mean(name, S.declared_members(defn.body)) or "name a member",
                )
            always.append(every)
            value = stmt.value
        if isinstance(value, S.Call) and value.func == "seq":
            if last:
                raise ArchError("E111", f"`{name}` of `{where}` is a seq, not a layer", rule.loc, "name its item by number: `.0`")
            where = f"{where}.{name}"
            continue
        if not isinstance(value, S.Call):
            raise ArchError("E111", f"member `{name}` of `{where}` is not one op or block", rule.loc, "name a member that is one layer")
        if value.func in definitions and definitions[value.func].kind == "block":
            if last:
                raise ArchError(
                    "E111",
                    f"member `{name}` of `{where}` is a `{value.func}` block, not a layer",
                    rule.loc,
                    f"name a layer inside it: `{'.'.join(rule.target)}.member`",
                )
            defn, where = definitions[value.func], value.func
            continue
        if value.func not in INIT_TYPES:
            raise ArchError(
                "E111",
                f"member `{name}` of `{where}` is a `{value.func}`, which has no parameters to initialise",
                rule.loc,
                f"the op types with parameters to initialise: {', '.join(INIT_TYPES)}",
            )
        if not last:
            raise ArchError("E111", f"member `{name}` of `{where}` is a layer, with no members", rule.loc, "end the path at the layer")
        return Target(value.func, head, tuple(path), tuple(always))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def bind_init(call: S.Call) -> dict[str, S.Expr]:
    """An init call's arguments by name, as written (defaults left out), or ArchError E110/E112."""
    spec = INIT_FUNCTIONS.get(call.func)
    if spec is None:
        hint = did_you_mean(call.func, set(INIT_FUNCTIONS)) or "the init functions are torch.nn.init's: " + ", ".join(INIT_FUNCTIONS)
        raise ArchError("E110", f"unknown init function `{call.func}`", call.loc, hint)
    names = [n for n, _ in spec]
    if len(call.args) > len(names):
        raise ArchError(
            "E112",
            f"{call.func} takes {len(names)} argument{'s' if len(names) != 1 else ''} after the tensor, got {len(call.args)}",
            call.args[len(names)].loc,
            f"{call.func}({', '.join(names)})" if names else f"write `{call.func}()`",
        )
    bound = dict(zip(names, call.args, strict=False))
    for key, value in call.kwargs.items():
        if key not in names:
            raise ArchError(
                "E112",
                f"{call.func} has no argument `{key}`",
                call.kwarg_locs.get(key, value.loc),
                did_you_mean(key, set(names)) or (f"its arguments: {', '.join(names)}" if names else "it takes none"),
            )
        if key in bound:
            raise ArchError("E112", f"argument `{key}` of {call.func} given twice", value.loc, "give each argument once")
        bound[key] = value
    for name, default in spec:
        if default is REQUIRED and name not in bound:
            raise ArchError("E112", f"{call.func} needs `{name}`", call.loc, f"e.g. `{call.func}({name} = 0)`")
    return bound


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _show(value: Any) -> str:
    try:
        return literal(value)
    except TypeError:
        return repr(value)


def check_value(func: str, name: str, value: Any, loc: Loc) -> None:
    """A concrete argument value of the kind torch.nn.init takes, or ArchError E112."""
    if name == "mode":
        if value not in ("fan_in", "fan_out"):
            raise ArchError("E112", f"mode of {func} is {_show(value)}", loc, 'mode is "fan_in" or "fan_out"')
    elif name == "nonlinearity":
        if value not in NONLINEARITIES:
            hint = did_you_mean(str(value), set(NONLINEARITIES)) or "torch.nn.init.calculate_gain's: " + ", ".join(NONLINEARITIES)
            raise ArchError("E112", f"nonlinearity of {func} is {_show(value)}", loc, hint)
    elif not _number(value):
        raise ArchError("E112", f"`{name}` of {func} is {_show(value)}, not a number", loc, f"write a number, e.g. `{name} = 0`")
    elif name == "std" and value < 0:
        raise ArchError("E112", f"std of {func} is negative ({value})", loc, "a standard deviation is 0 or more")


def check_rule_params(target: Target, rule: S.InitRule) -> None:
    """The parameters a rule names exist on its op type and take its init functions, or ArchError E110/E112."""
    kind = INIT_TYPES[target.op]
    for param, call in rule.params.items():
        loc = rule.kwarg_locs.get(param, call.loc)
        if param not in kind.params:
            raise ArchError("E112", f"`{target.op}` has no parameter `{param}`", loc, f"its parameters: {', '.join(kind.params)}")
        bound = bind_init(call)
        if call.func in FAN_FUNCTIONS and param not in kind.matrices:
            raise ArchError(
                "E112",
                f"{call.func} needs a tensor of 2 or more dimensions; the {param} of `{target.op}` has 1",
                call.loc,
                "use normal, uniform, trunc_normal or constant",
            )
        for name, expr in bound.items():
            reads_input = next((e for e in S.walk(expr) if isinstance(e, S.InputAttr)), None)
            if reads_input is not None:
                raise ArchError(
                    "E112",
                    f"an init argument cannot read `in.channels`: {call.func}'s `{name}` is a value of the block's parameters",
                    reads_input.loc,
                    "read the layer's own size, `layer.in_channels`, or let the function compute the fan:"
                    ' kaiming_normal(mode = "fan_out")',
                )
            attrs = [e for e in S.walk(expr) if isinstance(e, S.LayerAttr)]
            for attr in attrs:
                if attr.attr not in kind.attributes:
                    raise ArchError(
                        "E112",
                        f"`{target.op}` has no attribute `{attr.attr}` to read",
                        attr.loc,
                        did_you_mean(attr.attr, set(kind.attributes)) or f"its attributes: {', '.join(kind.attributes)}",
                    )
            if not S.names_used(expr) and not attrs:
                check_value(call.func, name, evaluate(expr, Scope()), expr.loc)


def check_init(definitions: dict[str, S.Definition], init: S.Init) -> list[ArchError]:
    """Every error of an `init` block but its names, which the static check looks up with the definition's others."""
    errors: list[ArchError] = []

    def entries(body: list[S.InitRule | S.InitIf]) -> None:
        seen: dict[tuple[str, ...], Loc] = {}
        for entry in body:
            if isinstance(entry, S.InitIf):
                entries(entry.body)
                continue
            key = tuple(entry.target)
            if key in seen:
                errors.append(
                    ArchError("E111", f"`{'.'.join(key)}` is initialised twice", entry.loc, "merge the rules", [(seen[key], "first here")])
                )
                continue
            seen[key] = entry.loc
            try:
                check_rule_params(resolve_target(definitions, entry), entry)
            except ArchError as e:
                errors.append(e)

    entries(init.body)
    return errors
