"""Which block parameters the generated module writes as constants, so that it holds only the classes its network uses.

A block parameter is *constant* for the network when every place the network instantiates the block gives it the same
value, and that value does not depend on the arch's parameters (those are the generated constructor's arguments and
stay arguments). It is found top-down from the arch: each block is run (shape only) with its own constant parameters
substituted and the others symbolic, and the arguments of every block it instantiates are read there; a default counts
where the argument is left out.

Two kinds of constant parameter are written as constants (substituted when the class is written, dropped from its
signature and from every call to it):

- a *selector*: one that decides which blocks are built, read in the condition of an `if` that goes the same way
  wherever the network evaluates it and whose other branch would build a block the network has nowhere else
  (ResLayer's `bottleneck`), or passed on, directly or through `let`s, loops and `if`s, to a selector of the block it
  calls (ResNet's `bottleneck`: left a parameter, `bottleneck=True` would build a ResNet of basic blocks). The `if`
  then takes its branch when the class is written, and the other branch's blocks are never referenced. A list a
  selector only passes on is assigned to a local of its name instead (EfficientNet's stage `setting`);
- one the written class no longer reads (ResLayer's `groups` once the Bottleneck branch is gone): the emitter finds
  these after writing the class (`unused_params`).

An `if` that picks a block by a condition on `in.channels`, or on a parameter whose value varies between instances,
keeps both branches, and both classes.

Every other parameter stays a parameter, with the spec's default: the classes still read like the library they came
from, and a parameter that does not change which classes exist keeps its meaning for a caller of the generated class.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from archc.lang import syntax as S
from archc.sema.calls import bind_block_args
from archc.sema.evaluate import Scope, evaluate
from archc.sema.program import Program
from archc.sema.symbolic import Sym, is_symbolic, is_unknown


class _ShapeRun(Protocol):
    network: Network | None

    def run(self, args: dict[str, Any], in_shape: tuple[Any, ...]) -> tuple[Any, ...]: ...


def _blocks_called(program: Program, node: object) -> set[str]:
    return {
        n.func
        for n in S.walk(node)
        if isinstance(n, S.Call) and n.func in program.definitions and program.definitions[n.func].kind == "block"
    }


def selectors(program: Program, order: Sequence[str], network: Network) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """For each definition in `order` (a callee before its callers), the parameters that decide which blocks it builds:
    those an `if` of its own reads that goes the same way wherever the network evaluates it, and whose other branch
    would build a block the network has nowhere else (the second dict: these alone), and those it passes on to a
    selector of a block it calls."""
    found: dict[str, set[str]] = {}
    own: dict[str, set[str]] = {}
    for name in order:
        defn = program.definitions[name]
        params = {p.name for p in defn.params}
        flow = _Flow(program, network, found)
        # Twice: a `let` a loop reassigns feeds the statements before it on the next iteration.
        flow.visit(defn.body, set())
        flow.visit(defn.body, set())
        found[name] = flow.chosen & params
        own[name] = flow.direct & params
    return found, own


class _Flow:
    """The names each `let` or loop variable of a body is computed from (`if` conditions around it included), and the
    names that decide which blocks the body builds."""

    def __init__(self, program: Program, network: Network, found: dict[str, set[str]]) -> None:
        self.program = program
        self.network = network
        self.found = found
        self.deps: dict[str, set[str]] = {}
        self.chosen: set[str] = set()
        self.direct: set[str] = set()

    def expand(self, names: set[str]) -> set[str]:
        out: set[str] = set()
        for n in names:
            out |= self.deps.get(n, {n})
        return out

    def visit(self, stmts: list[S.Stmt], control: set[str]) -> None:
        for stmt in stmts:
            if not isinstance(stmt, (S.If, S.For)):
                self.calls(stmt, control)
            match stmt:
                case S.Let(name=name, value=value):
                    self.deps[name] = self.deps.get(name, set()) | self.expand(S.names_used(value)) | control
                case S.If(test=test, body=then, orelse=orelse):
                    cond = self.expand(S.names_used(test))
                    outcomes = self.network.outcomes.get(id(stmt), [])
                    if len(outcomes) == 1 and isinstance(outcomes[0], bool):
                        dead = orelse if outcomes[0] else then
                        if _blocks_called(self.program, dead) - self.network.sites.keys():
                            self.chosen |= cond | control
                            self.direct |= cond | control
                    self.visit(then, control | cond)
                    self.visit(orelse, control | cond)
                case S.For(index=index, var=var, iterable=iterable, body=body):
                    source = self.expand(S.names_used(iterable)) | control
                    for n in (index, var):
                        if n is not None:
                            self.deps[n] = self.deps.get(n, set()) | source
                    self.visit(body, control)

    def calls(self, stmt: S.Stmt, control: set[str]) -> None:
        """The names passed to a selector of a block the statement instantiates."""
        for call in (n for n in S.walk(stmt) if isinstance(n, S.Call)):
            callee = self.program.definitions.get(call.func)
            if callee is None or callee.kind != "block" or not self.found.get(call.func):
                continue
            bound = {**dict(zip([p.name for p in callee.params], call.args, strict=False)), **call.kwargs}
            for param in self.found[call.func]:
                if param in bound:
                    self.chosen |= self.expand(S.names_used(bound[param])) | control


def static_lets(body: list[S.Stmt], outcomes: dict[int, list[Any]]) -> set[str]:
    """The `let`s bound only under `if`s that went one way in the run that gave `outcomes` (none in a loop): with the
    branch chosen when the class is written, they hold one value, not a Python variable."""
    stacks: dict[str, list[bool]] = {}

    def visit(stmts: list[S.Stmt], static: bool, enclosed: bool) -> None:
        for stmt in stmts:
            match stmt:
                case S.Let(name=name):
                    if enclosed:
                        stacks.setdefault(name, []).append(static)
                case S.If(body=then, orelse=orelse):
                    seen = outcomes.get(id(stmt), [])
                    one_way = len(seen) <= 1 and all(isinstance(o, bool) for o in seen)
                    visit(then, static and one_way, True)
                    visit(orelse, static and one_way, True)
                case S.For(body=loop):
                    visit(loop, False, True)

    visit(body, True, False)
    return {name for name, statics in stacks.items() if all(statics)}


@dataclass
class Network:
    """What the shape-only runs saw: each block's instantiations (bound arguments) and each `if`'s outcomes (by the
    statement's id: True, False, or "symbolic")."""

    sites: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outcomes: dict[int, list[Any]] = field(default_factory=dict)


def constant_params(
    program: Program,
    order: Sequence[str],
    root_sites: Callable[[Network], None],
    shape_writer: Callable[[S.Definition], _ShapeRun],
    class_input: Callable[[str], tuple[Any, ...]],
) -> tuple[dict[str, dict[str, Any]], Network]:
    """For each block the network instantiates, its parameters that take one constant value wherever it does so.

    `root_sites` records the blocks the arch itself instantiates (by name, with their bound arguments); `shape_writer`
    makes a shape-only writer for a definition, which records what it sees in its `network`; `class_input` is the input
    shape a class is written for."""
    network = Network()
    root_sites(network)
    constants: dict[str, dict[str, Any]] = {}
    for name in reversed(order):  # callers first
        defn = program.definitions[name]
        if defn.kind != "block" or name not in network.sites:
            continue
        fixed: dict[str, Any] = {}
        # A block that uses itself (DLA's tree) passes some of its arguments on changed (`levels - 1`): those are not
        # constant, whatever its callers give.
        changed = _changed_by_itself(program, name)
        for p in [p for p in defn.params if p.name not in changed]:
            values = [site[p.name] for site in network.sites[name]]
            if not any(is_symbolic(v) or is_unknown(v) for v in values) and len({repr(v) for v in values}) == 1:
                fixed[p.name] = values[0]
        constants[name] = fixed
        writer = shape_writer(defn)
        writer.network = network
        writer.run({p.name: fixed.get(p.name, Sym(p.name)) for p in defn.params}, class_input(name))
    return constants, network


def _changed_by_itself(program: Program, name: str) -> set[str]:
    """The parameters of block `name` that its uses of itself do not pass on as they are (`levels - 1`, or left to
    the default); every parameter where it uses itself through other blocks; none where it does not use itself."""
    defn = program.definitions[name]
    names = [p.name for p in defn.params]
    seen: set[str] = set()
    todo = [c.func for c in S.walk(defn.body) if isinstance(c, S.Call) and c.func != name and c.func in program.definitions]
    while todo:  # through others: any argument may change on the way
        callee = todo.pop()
        if callee in seen:
            continue
        seen.add(callee)
        for call in S.walk(program.definitions[callee].body):
            if isinstance(call, S.Call) and call.func == name:
                return set(names)
            if isinstance(call, S.Call) and call.func in program.definitions:
                todo.append(call.func)
    changed: set[str] = set()
    for call in S.walk(defn.body):
        if not (isinstance(call, S.Call) and call.func == name):
            continue
        given: dict[str, S.Expr] = dict(zip(names, call.args, strict=False)) | call.kwargs
        for n in names:
            value = given.get(n)
            if not (isinstance(value, S.Name) and value.name == n):
                changed.add(n)
    return changed


def root_call_sites(program: Program, arch_def: S.Definition) -> Callable[[Network], None]:
    """The arch's `= Block(...)` call, with the arch's parameters symbolic."""

    def record(network: Network) -> None:
        assert arch_def.root is not None
        scope = Scope({p.name: Sym(p.name) for p in arch_def.params})
        root = arch_def.root
        args = [evaluate(a, scope) for a in root.args]
        kwargs = {k: evaluate(v, scope) for k, v in root.kwargs.items()}
        callee = program.definitions[root.func]
        network.sites.setdefault(callee.name, []).append(bind_block_args(callee, args, kwargs, root))

    return record


def call_arguments(defn: S.Definition, dropped: set[str], args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """A call's arguments without the `dropped` parameters; a positional argument after a dropped one becomes a keyword."""
    names = [p.name for p in defn.params]
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for i, value in enumerate(args):
        if names[i] in dropped:
            continue
        if len(positional) < i:
            keywords[names[i]] = value
        else:
            positional.append(value)
    keywords.update((k, v) for k, v in kwargs.items() if k not in dropped)
    return positional, keywords


def unused_params(defn: S.Definition, candidates: set[str], lines: list[str], prologue: list[str]) -> set[str]:
    """The `candidates` no line of the written class reads (a keyword argument's name or an attribute is not a read),
    other than the prologue lines that fill in the parameter's own default."""
    unused: set[str] = set()
    for name in candidates:
        pattern = re.compile(rf"(?<![.\w]){re.escape(name)}\b(?!\s*=(?!=))")
        own = {
            line
            for i, line in enumerate(prologue)
            if line in (f"if {name} is None:", f"{name} = {line.partition(' = ')[2]}") or (i and prologue[i - 1] == f"if {name} is None:")
        }
        if not any(pattern.search(line) for line in lines if line not in own):
            unused.add(name)
    return unused
