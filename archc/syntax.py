"""The abstract syntax tree of a .arch file. Every node carries the location of its first token."""

from __future__ import annotations

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
class Call(Expr):
    func: str
    args: list[Expr]
    kwargs: dict[str, Expr]
    optional: bool = False  # `member?(x)`
    kwarg_locs: dict[str, Loc] = field(default_factory=dict)  # where each keyword argument's name stands


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
    """A named (`conv1 = conv(64, 3)`) or anonymous (`conv(64, 3)`, name None) member."""

    name: str | None
    value: Expr


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
class Return(Stmt):
    values: list[Expr]


@dataclass
class Forward(Stmt):
    arg: str
    body: list[Stmt]  # Assign and Return statements


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
