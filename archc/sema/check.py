"""The static check: the errors a spec's definitions have whatever values flow through them, all of them at once.

It runs before elaboration, over every definition the spec can see (its own and its imports'), and reports:
calls of unknown ops, blocks and members; unknown keyword arguments, too many positional arguments, missing and
repeated arguments of ops and blocks; members applied to other than one tensor; names that are bound nowhere
before their use; named members in loops and unnamed members in blocks with a forward. It is conservative: a
name counts as bound if a parameter, a `let`, a loop variable or a member of that name stands anywhere before the
use (in a loop, anywhere in the loop), so what it reports elaboration would report too, given the branch is taken.
Errors that depend on values (shapes, arithmetic) are elaboration's, one per spec.
"""

from __future__ import annotations

from archc import ops
from archc.errors import ArchError, sort_errors
from archc.lang import syntax as S
from archc.sema.calls import SEQ, check_block_call, op_arg_loc, resolve_callee
from archc.sema.evaluate import BUILTINS, did_you_mean
from archc.sema.forward import (
    ApplyMember,
    InlineOp,
    bind_inputs,
    forward_call,
    forward_inputs,
    is_list_input,
    is_range_loop,
    members_loop,
    unpack_call,
)
from archc.sema.inits import check_init
from archc.sema.program import Program
from archc.sema.symbolic import UNKNOWN


def check_program(program: Program) -> list[ArchError]:
    """Every name and call error in the program's definitions, in file, line and column order."""
    checker = _Checker(program)
    for defn in program.definitions.values():
        checker.definition(defn)
    return sort_errors(checker.errors + _cycles(program))


def _cycles(program: Program) -> list[ArchError]:
    """Blocks that use themselves, directly or through others (E060), wherever they are built: one error per cycle,
    at the call that closes it. A use under an `if` is left out: the recursion may end there (DLA's
    `if levels == 1 { ... } else { tree1 = DlaTree(levels - 1, ...) }`), and elaboration's depth limit tells one that
    does not (E063)."""
    uses: dict[str, dict[str, S.Call]] = {}  # block -> the blocks its body constructs, with the first call of each
    for name, defn in program.definitions.items():
        if defn.kind != "block":
            continue
        unconditional = _outside_ifs(defn.body)
        calls = [c for c in S.walk([unconditional, [p.default for p in defn.params]]) if isinstance(c, S.Call)]
        targets: dict[str, S.Call] = {}
        for call in calls:
            used = program.definitions.get(call.func)
            if used is not None and used.kind == "block" and ops.lookup(call.func) is None and call.func not in BUILTINS:
                targets.setdefault(call.func, call)
        uses[name] = targets
    errors: list[ArchError] = []
    seen: set[frozenset[str]] = set()
    done: set[str] = set()
    for start in uses:
        if start in done:
            continue
        path: list[str] = [start]
        stack = [iter(uses[start])]
        while stack:
            target = next(stack[-1], None)
            if target is None:
                done.add(path.pop())
                stack.pop()
                continue
            if target in path:  # a cycle: path[i:] and back to target
                cycle = path[path.index(target) :]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    errors.append(_cycle_error(program, uses, cycle))
            elif target not in done:
                path.append(target)
                stack.append(iter(uses[target]))
    return errors


def _outside_ifs(stmts: list[S.Stmt]) -> list[S.Stmt]:
    """The statements of a body that run whatever its `if`s decide: loops' bodies opened, `if`s left out."""
    out: list[S.Stmt] = []
    for stmt in stmts:
        if isinstance(stmt, S.For):
            out += [S.Let(stmt.loc, stmt.var, stmt.iterable), *_outside_ifs(stmt.body)]
        elif not isinstance(stmt, S.If):
            out.append(stmt)
    return out


def _cycle_error(program: Program, uses: dict[str, dict[str, S.Call]], cycle: list[str]) -> ArchError:
    head, last = cycle[0], cycle[-1]
    closing = uses[last][head]
    if len(cycle) == 1:
        message = f"block `{head}` uses itself"
    else:
        through = " and ".join(f"`{n}`" for n in cycle[1:]) if len(cycle) <= 3 else ", ".join(f"`{n}`" for n in cycle[1:])
        message = f"block `{head}` uses itself, through {through}"
    notes = [(uses[a][b].loc, f"`{a}` uses `{b}` here") for a, b in zip(cycle, cycle[1:], strict=False)]
    notes.append((program.definitions[head].loc, f"`{head}` is defined here"))
    hint = "a block uses itself only under an `if` that ends the recursion; to repeat a block, use a `for` loop"
    return ArchError("E060", message, closing.loc, hint, notes)


def _bound_in(stmts: list[S.Stmt]) -> set[str]:
    """The names `let`s and loops bind anywhere in a body."""
    names: set[str] = set()
    for stmt in S.walk(stmts):
        if isinstance(stmt, S.Let):
            names.add(stmt.name)
        elif isinstance(stmt, S.For):
            names |= {n for n in (stmt.index, stmt.var) if n is not None}
    return names


class _Checker:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.errors: list[ArchError] = []
        self.members: set[str] = set()
        self.body_of: list[S.Stmt] = []
        self.ambiguous: dict[str, S.Definition] = {}  # names of both a member and a value, where the forward reads them

    def definition(self, defn: S.Definition) -> None:
        self.members = S.declared_members(defn.body)
        self.body_of = defn.body
        bound: set[str] = set()
        for p in defn.params:  # a default sees the parameters before it
            if p.default is not None:
                self.value(p.default, bound)
            bound.add(p.name)
        params = set(bound)
        loops = False
        try:
            loops = members_loop(defn.forward) is not None
        except ArchError as e:
            self.errors.append(e)
            loops = True  # a loop meant to run over the members: its members' names are not what is wrong
        # A forward that runs over the members takes them in order, as a block without a forward: numbered or named.
        self.member_rules(defn.body, defn.forward is not None and not loops, in_loop=False)
        if defn.root is not None:
            self.value(defn.root, params)
        self.body(defn.body, set(params))
        everything = params | _bound_in(defn.body)
        for entry in defn.meta.values():
            self.value(entry, everything)
        if defn.input is not None:
            for dim in defn.input.dims:
                self.value(dim, everything)
        if defn.init is not None:
            self.init(defn.init.body, everything)
            self.errors.extend(check_init(self.program.definitions, defn.init))
        if defn.forward is not None:
            # A parameter or `let` named like a member cannot be read as a value in the forward: the generated
            # class would keep both as `self.NAME` (the forward's own variables are locals, so they may).
            inputs = [p.name for p in forward_inputs(defn.forward)]
            forward_locals = set(inputs) | {s.name for s in S.walk(defn.forward.body) if isinstance(s, S.Assign)}
            forward_locals |= {n for s in S.walk(defn.forward.body) if isinstance(s, S.Unpack) for n in s.names}
            self.ambiguous = {n: defn for n in (everything & self.members) - forward_locals}
            for i, param in enumerate(forward_inputs(defn.forward)):
                if param.default is not None:  # a default reads the inputs before it
                    self.flow(param.default, everything | set(inputs[:i]))
                if defn.kind == "arch" and i == 1:
                    self.errors.append(
                        ArchError("E081", "an arch's forward takes one input, the image", param.loc, f"write `forward({inputs[0]})`")
                    )
                if i == 0 and param.default is not None and not is_list_input(param):
                    self.errors.append(
                        ArchError(
                            "E081",
                            f"the first input, `{param.name}`, is always given: its default can only be a list, which makes it one",
                            param.default.loc,
                            f"write `forward({param.name})`, or `forward({param.name} = [])` for a list of tensors",
                        )
                    )
            self.forward(defn.forward.body, everything | set(inputs))

    def forward(self, stmts: list[S.Stmt], known: set[str]) -> None:
        """Forward statements in order; `known` grows with the names they assign (after an `if`, those its every
        branch assigns)."""
        for stmt in stmts:
            if isinstance(stmt, S.Assign):
                self.flow(stmt.value, known)
                self.no_forward_alias(stmt, known)
                known.add(stmt.name)
            elif isinstance(stmt, S.Return):
                for v in stmt.values:
                    self.flow(v, known)
            elif isinstance(stmt, S.Unpack):
                try:
                    op = unpack_call(stmt, self.members)
                except ArchError as e:
                    self.errors.append(e)
                else:
                    assert isinstance(stmt.value, S.Call)
                    self.op_args(op, stmt.value, len(stmt.value.args) - 1)
                    for a in [*stmt.value.args, *stmt.value.kwargs.values()]:
                        self.flow(a, known)
                known |= set(stmt.names)
            elif isinstance(stmt, S.For) and is_range_loop(stmt):
                # `for i in range(n)`: `i` is a value. A later iteration sees what an earlier one assigned (elaboration,
                # which runs every iteration, reports a name read before any iteration assigns it).
                self.value(stmt.iterable, known)
                assigned = {a.name for a in S.walk(stmt.body) if isinstance(a, S.Assign)}
                inside = known | {stmt.var} | assigned | {n for u in S.walk(stmt.body) if isinstance(u, S.Unpack) for n in u.names}
                self.forward(stmt.body, inside)
                known |= inside - {stmt.var}
            elif isinstance(stmt, S.For):
                # `for layer in members`: the loop's name applies each member (members_loop checks the form).
                members = self.members
                self.members = members | {stmt.var}
                inside = known | {stmt.var}
                self.forward(stmt.body, inside)
                self.members = members
                known |= inside - {stmt.var}
            elif isinstance(stmt, S.If):
                self.value(stmt.test, known)
                then, orelse = set(known), set(known)
                self.forward(stmt.body, then)
                self.forward(stmt.orelse, orelse)
                # A branch that returns does not reach what follows: the other branch's names are bound there.
                then_returns, else_returns = (bool(b) and isinstance(b[-1], S.Return) for b in (stmt.body, stmt.orelse))
                known |= orelse if then_returns else then if else_returns else then & orelse

    def body(self, stmts: list[S.Stmt], bound: set[str]) -> None:
        """Statements in order; `bound` grows with the names they bind."""
        for stmt in stmts:
            match stmt:
                case S.Let(name=name, value=value):
                    self.value(value, bound)
                    self.no_alias(stmt, value, bound)
                    bound.add(name)
                case S.Member(value=value, key=key):
                    self.value(value, bound)
                    self.no_alias(stmt, value, bound)
                    for piece in key or []:
                        if isinstance(piece, S.Expr):
                            self.value(piece, bound)
                case S.If(test=test, body=then, orelse=orelse):
                    self.value(test, bound)
                    self.body(then, bound)
                    self.body(orelse, bound)
                case S.For(index=index, var=var, iterable=iterable, body=loop_body):
                    self.value(iterable, bound)
                    # A later iteration sees what an earlier one bound.
                    bound |= {n for n in (index, var) if n is not None} | _bound_in(loop_body)
                    self.body(loop_body, bound)

    def no_alias(self, stmt: S.Let | S.Member, value: S.Expr, bound: set[str]) -> None:
        """A member read as a value in a body (`d = c`, `seq(c, relu())`): a module is declared once, by a call."""
        for node in S.walk(value):
            if not isinstance(node, S.Name) or node.name not in self.members or node.name in bound or node.name in BUILTINS:
                continue
            made = next((m.value for m in S.walk(self.body_of) if isinstance(m, S.Member) and m.name == node.name), None)
            like = f"`{made.func}(...)`" if isinstance(made, S.Call) else "its own call"
            if isinstance(stmt, S.Member) and stmt.name is not None and value is node:
                message = f"`{stmt.name} = {node.name}` would give member `{node.name}` a second name: members cannot be aliased"
            else:
                message = f"member `{node.name}` read as a value: members cannot be aliased or passed on, only declared and applied"
            self.errors.append(
                ArchError(
                    "E019",
                    message,
                    node.loc,
                    f"to share its weights, apply `{node.name}` more than once in a forward; for a second layer like it,"
                    f" declare one with {like}",
                    [(made.loc, f"member `{node.name}` is declared here")] if made is not None else [],
                )
            )

    def member_inputs(self, call: S.Call) -> None:
        """The inputs a member is applied to, by number and name, where every declaration of it is a call of a block
        or an op (a member declared in two branches may make two blocks: the call must fit one of them)."""
        made = [m.value for m in S.walk(self.body_of) if isinstance(m, S.Member) and m.name == call.func]
        forwards: list[S.Forward | None] = []
        for value in made:
            if not isinstance(value, S.Call) or value.func == SEQ:
                return  # a seq takes one tensor too, but elaboration says so with its own words
            defn = self.program.definitions.get(value.func)
            if defn is not None and defn.kind == "block":
                forwards.append(defn.forward)
            elif ops.lookup(value.func) is not None:
                forwards.append(None)
            else:
                return
        errors = []
        for forward in forwards:
            try:
                bind_inputs(forward, call, f"member `{call.func}`")
                return
            except ArchError as e:
                errors.append(e)
        if errors:
            self.errors.append(errors[0])

    def no_forward_alias(self, stmt: S.Assign, known: set[str]) -> None:
        """`y = c` in a forward, for a member `c` that is a module (a `param` is a tensor, and may be read so)."""
        value = stmt.value
        if not isinstance(value, S.Name) or value.name not in self.members or value.name in known:
            return
        made = next((m.value for m in S.walk(self.body_of) if isinstance(m, S.Member) and m.name == value.name), None)
        if not isinstance(made, S.Call) or made.func in ops.TENSOR_MEMBERS:
            return
        self.errors.append(
            ArchError(
                "E019",
                f"`{stmt.name} = {value.name}` would give member `{value.name}` a second name: members cannot be aliased",
                value.loc,
                f"apply the member where it is needed, `{value.name}(x)`, by its own name",
                [(made.loc, f"member `{value.name}` is declared here")],
            )
        )

    def init(self, body: list[S.InitRule | S.InitIf], bound: set[str]) -> None:
        """The names an `init` block reads: its conditions and its init functions' arguments."""
        for entry in body:
            if isinstance(entry, S.InitIf):
                self.value(entry.test, bound)
                self.init(entry.body, bound)
                continue
            for call in entry.params.values():
                for arg in [*call.args, *call.kwargs.values()]:
                    self.value(arg, bound, init=True)

    def member_rules(self, stmts: list[S.Stmt], has_forward: bool, in_loop: bool) -> None:
        """Members in a loop are numbered, so they have no names; members of a block with a forward have names."""
        for stmt in stmts:
            match stmt:
                case S.Member(name=name) if name is not None and in_loop:
                    self.errors.append(
                        ArchError(
                            "E023",
                            f"member `{name}` is named inside a loop",
                            stmt.loc,
                            "members declared in a loop are numbered (a name would be declared twice): drop the name",
                        )
                    )
                case S.Member(name=None, key=None) if has_forward:
                    self.errors.append(
                        ArchError("E024", "a block with a forward names its members", stmt.loc, "give it a name: `name = ...`")
                    )
                case S.Member(name=None) if has_forward:
                    self.errors.append(
                        ArchError(
                            "E024",
                            "a block with a forward applies its members by name, so their names are identifiers",
                            stmt.loc,
                            'computed names ("layer{i}") are for blocks whose members run in order: no forward, or one that'
                            " loops over them (`for layer in members`)",
                        )
                    )
                case S.If(body=then, orelse=orelse):
                    self.member_rules(then, has_forward, in_loop)
                    self.member_rules(orelse, has_forward, in_loop)
                case S.For(body=loop_body):
                    self.member_rules(loop_body, has_forward, in_loop=True)

    def ambiguous_value(self, expr: S.Name, defn: S.Definition) -> None:
        member = next(m for m in S.walk(defn.body) if isinstance(m, S.Member) and m.name == expr.name)
        value: list[S.Param | S.Let] = [p for p in defn.params if p.name == expr.name]
        value += [s for s in S.walk(defn.body) if isinstance(s, S.Let) and s.name == expr.name]
        what, declared = ("parameter", f"parameter `{expr.name}`") if isinstance(value[0], S.Param) else ("`let`", f"`let {expr.name}`")
        self.errors.append(
            ArchError(
                "E019",
                f"`{expr.name}` is both a member and a {what}, so the forward cannot read it as a value",
                expr.loc,
                f"rename the member or the {what}",
                [(member.loc, f"member `{expr.name}` is declared here"), (value[0].loc, f"{declared} is declared here")],
            )
        )

    def name(self, expr: S.Name, bound: set[str]) -> None:
        if expr.name not in bound and expr.name not in self.members and expr.name not in BUILTINS:
            self.errors.append(ArchError("E010", f"unknown name `{expr.name}`", expr.loc, did_you_mean(expr.name, bound)))

    def value(self, expr: S.Expr, bound: set[str], init: bool = False) -> None:
        """An expression of a body, a default, `meta` or `input`: its calls construct modules or call builtins. An
        init function's argument (`init`) may also read the layer it sets, `layer.groups`."""
        inside: set[int] = set()  # the build-time tensor calls of a `buffer(...)`, checked when it is built
        for node in S.walk(expr):
            if isinstance(node, S.Call) and node.func == ops.BUFFER and not node.optional:
                inside |= {id(n) for n in S.walk([*node.args, *node.kwargs.values()]) if isinstance(n, S.Call)}
            if isinstance(node, S.Name):
                self.name(node, bound)
            elif isinstance(node, S.LayerAttr) and not init:
                self.errors.append(
                    ArchError(
                        "E042",
                        f"`layer.{node.attr}` reads the layer an init rule sets: it stands only in an init argument",
                        node.loc,
                        "compute the value from the definition's parameters",
                    )
                )
            elif isinstance(node, S.Call) and node.item is not None:
                self.errors.append(
                    ArchError("E019", f"`{node.func}[...](...)` applies a member's item in a forward", node.loc, "declare members here")
                )
            elif isinstance(node, S.Call) and id(node) in inside:
                continue
            elif isinstance(node, S.Call) and not node.optional and node.func not in BUILTINS and node.func != SEQ:
                self.constructor(node)

    def constructor(self, call: S.Call) -> None:
        try:
            callee = resolve_callee(self.program, call)
            if isinstance(callee, ops.Op):
                self.op_args(callee, call, len(call.args))
            else:
                check_block_call(callee, len(call.args), list(call.kwargs), call)
        except ArchError as e:
            self.errors.append(e)

    def op_args(self, op: ops.Op, call: S.Call, positional: int) -> None:
        """Arity and keyword errors of an op call; the values themselves are checked where they are known."""
        try:
            ops.bind_args(op, [UNKNOWN] * positional, dict.fromkeys(call.kwargs, UNKNOWN))
        except ops.OpError as e:
            self.errors.append(ArchError(e.code, e.message, op_arg_loc(op, call, e.arg, len(call.args) - positional), e.hint))

    def flow(self, expr: S.Expr, bound: set[str]) -> None:
        """An expression of a forward: calls apply members, `cat`, inline ops or builtins."""
        match expr:
            case S.Name():
                self.name(expr, bound)
                if expr.name in self.ambiguous:
                    self.ambiguous_value(expr, self.ambiguous[expr.name])
                return
            case S.Call(args=args, kwargs=kwargs):
                try:
                    meaning = forward_call(expr, self.members)
                except ArchError as e:
                    self.errors.append(e)
                else:
                    if isinstance(meaning, InlineOp) and len(args) >= meaning.op.operands:
                        self.op_args(meaning.op, expr, len(args) - meaning.op.operands)
                    if isinstance(meaning, ApplyMember):
                        self.member_inputs(expr)
                for a in [*args, *kwargs.values(), *([expr.item] if expr.item is not None else [])]:
                    self.flow(a, bound)
                return
        for child in vars(expr).values():
            for item in child if isinstance(child, list) else [child]:
                if isinstance(item, S.Expr):
                    self.flow(item, bound)


def unused_values(program: Program) -> list[str]:
    """Warnings for values a forward computes and never reads: their layers still run and are counted."""
    warnings: list[str] = []
    for defn in program.definitions.values():
        if defn.forward is None:
            continue
        stmts = list(S.walk(defn.forward.body))
        read: set[str] = set()
        for stmt in stmts:
            if isinstance(stmt, (S.Assign, S.Unpack)):
                read |= S.names_used(stmt.value)
            elif isinstance(stmt, S.Return):
                read |= S.names_used(stmt.values)
            elif isinstance(stmt, S.If):
                read |= S.names_used(stmt.test)
        for stmt in stmts:
            names = [stmt.name] if isinstance(stmt, S.Assign) else stmt.names if isinstance(stmt, S.Unpack) else []
            for name in names:
                if name not in read:
                    warnings.append(
                        f"{stmt.loc}: `{name}` is computed in the forward of `{defn.name}` and never used"
                        " (its layers still run and are counted): use it or remove it"
                    )
                    read.add(name)  # once per name
    return warnings
