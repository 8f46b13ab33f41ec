"""The abstract syntax tree of a .arch file. Every node carries the location of its first token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from archc.errors import Loc

# Expressions


@dataclass
class Expr:
    loc: Loc


@dataclass
class Const(Expr):
    value: int | float | str | bool | None


@dataclass
class Name(Expr):
    name: str


@dataclass
class InputAttr(Expr):
    """`in.channels`: a property of the enclosing block's input."""

    attr: str


@dataclass
class LayerAttr(Expr):
    """`layer.groups`: an attribute of the layer an init rule sets (its module's, as PyTorch names it)."""

    attr: str


@dataclass
class TupleLit(Expr):
    items: list[Expr]


@dataclass
class ListLit(Expr):
    items: list[Expr]


@dataclass
class BinOp(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass
class Compare(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass
class BoolOp(Expr):
    op: str  # "and" | "or"
    left: Expr
    right: Expr


@dataclass
class Not(Expr):
    operand: Expr


@dataclass
class Neg(Expr):
    operand: Expr


@dataclass
class Cond(Expr):
    then: Expr
    test: Expr
    orelse: Expr


@dataclass
class Index(Expr):
    target: Expr
    index: Expr


@dataclass
class Slice(Expr):
    """`start:stop:step` in a subscript; each part may be left out (None)."""

    start: Expr | None
    stop: Expr | None
    step: Expr | None


@dataclass
class Call(Expr):
    func: str
    args: list[Expr]
    kwargs: dict[str, Expr]
    optional: bool = False  # `member?(x)`
    kwarg_locs: dict[str, Loc] = field(default_factory=dict)  # where each keyword argument's name stands
    item: Expr | None = None  # `convs[i](x)`: the item of member `func` applied


# Statements


@dataclass
class Stmt:
    loc: Loc


@dataclass
class Let(Stmt):
    name: str
    value: Expr


@dataclass
class Member(Stmt):
    """A named (`conv1 = conv(64, 3)`) or anonymous (`conv(64, 3)`, name None) member, or one named by a string
    whose `{expr}` parts a loop computes (`"denselayer{i + 1}" = ...`: name None, `key` its pieces)."""

    name: str | None
    value: Expr
    key: list[str | Expr] | None = None


@dataclass
class If(Stmt):
    test: Expr
    body: list[Stmt]
    orelse: list[Stmt]


@dataclass
class For(Stmt):
    index: str | None  # `for i, v in xs`: i
    var: str
    iterable: Expr
    body: list[Stmt]


@dataclass
class Meta(Stmt):
    entries: dict[str, Expr]


@dataclass
class InputDecl(Stmt):
    dims: list[Expr]


@dataclass
class Assign(Stmt):
    name: str
    value: Expr
    aux: bool = False


@dataclass
class Unpack(Stmt):
    """`x1, x2 = chunk(x, 2)`: the tensors an op returns, one name each."""

    names: list[str]
    value: Expr


@dataclass
class Return(Stmt):
    values: list[Expr]


@dataclass
class Forward(Stmt):
    arg: str  # the first input's name
    body: list[Stmt]  # Assign and Return statements
    # Every input, the first included: `forward(x, shortcut = x, children = [])` (a default: the input when not given).
    params: list[Param] = field(default_factory=list)


@dataclass
class InitRule(Stmt):
    """`conv = kaiming_normal(mode = "fan_out")`, `Bottleneck.bn3 = (weight = constant(0))`: how a parameter of the
    modules a target names is initialised. `target`: an op type, or a block and a member path under it."""

    target: list[str]
    params: dict[str, Call]  # "weight" / "bias" -> the init function call; a bare call sets the weight
    kwarg_locs: dict[str, Loc] = field(default_factory=dict)


@dataclass
class InitIf(Stmt):
    """`if zero_init_residual { ... }` inside `init`: rules applied when the condition holds."""

    test: Expr
    body: list[InitRule | InitIf]


@dataclass
class Init(Stmt):
    """`init { ... }`: the weight initialisation of a definition's modules, written after its members."""

    body: list[InitRule | InitIf]


@dataclass
class Param:
    loc: Loc
    name: str
    default: Expr | None


@dataclass
class Definition:
    """A `block` or an `arch`."""

    loc: Loc
    kind: str  # "block" | "arch"
    name: str
    params: list[Param]
    body: list[Stmt]
    forward: Forward | None = None
    meta: dict[str, Expr] = field(default_factory=dict)
    input: InputDecl | None = None
    root: Call | None = None  # `arch x(...) = Block(...)`
    init: Init | None = None


@dataclass
class Import:
    loc: Loc
    path: str


@dataclass
class Module:
    """One parsed file."""

    file: str
    imports: list[Import]
    definitions: list[Definition]


# Queries over the tree


def walk(node: object) -> Iterator[Expr | Stmt]:
    """Every expression and statement in `node` (a node, a list or a dict of them), parents first, in source order."""
    if isinstance(node, (Expr, Stmt)):
        yield node
        for value in vars(node).values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)
    elif isinstance(node, dict):
        for item in node.values():
            yield from walk(item)


def deepest(node: object) -> Loc | None:
    """The location of the most deeply nested expression or statement in `node`, found with an explicit stack, so
    that it works on the trees too deep for the recursive passes."""
    best: tuple[int, Loc | None] = (-1, None)
    stack: list[tuple[object, int]] = [(node, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (Expr, Stmt)):
            if depth > best[0]:
                best = (depth, item.loc)
            stack.extend((value, depth + 1) for value in vars(item).values())
        elif isinstance(item, (Definition, Module, Param)):
            stack.extend((value, depth) for value in vars(item).values())
        elif isinstance(item, (list, tuple)):
            stack.extend((value, depth) for value in item)
        elif isinstance(item, dict):
            stack.extend((value, depth) for value in item.values())
    return best[1]


def names_used(node: object) -> set[str]:
    """The names an expression or statement reads."""
    return {n.name for n in walk(node) if isinstance(n, Name)}


def declared_members(body: list[Stmt], every_path: bool = False) -> set[str]:
    """Names of the members a body declares: in any branch, or (every_path) whichever way its conditionals go."""
    names: set[str] = set()
    for stmt in body:
        if isinstance(stmt, Member) and stmt.name:
            names.add(stmt.name)
        elif isinstance(stmt, If):
            then, orelse = declared_members(stmt.body, every_path), declared_members(stmt.orelse, every_path)
            names |= then & orelse if every_path else then | orelse
        elif isinstance(stmt, For) and not every_path:
            names |= declared_members(stmt.body)
    return names
