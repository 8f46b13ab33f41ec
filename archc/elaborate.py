"""Elaboration: a parsed spec plus its imports and parameter values -> the IR (archc/ir.py).

Elaboration runs the spec like an interpreter. A member statement (`conv1 = conv(64, 3)`) makes a deferred
constructor; the member becomes a concrete module when the forward first applies it, because only then is its
input shape known (in_channels is inferred, like LazyConv2d, and a block may read `in.channels`). Each
application adds a node to the graph, with its shape from `passes.shapes.infer_shape`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from archc import ops
from archc.errors import ArchError, Loc
from archc.ir import Architecture, Location, ModuleNode, Node
from archc.lang import syntax as S
from archc.passes.shapes import infer_axes, infer_shape
from archc.sema.buffers import WEIGHT_CONV, build_buffer
from archc.sema.calls import CAT, SEQ, bind_block_args, bind_op_args, resolve_callee
from archc.sema.evaluate import Scope, did_you_mean, evaluate
from archc.sema.forward import (
    ApplyItem,
    ApplyMember,
    InlineOp,
    Join,
    bind_inputs,
    forward_call,
    forward_condition,
    forward_inputs,
    is_list_input,
    is_range_loop,
    join_dim,
    list_index,
    members_loop,
    not_a_list,
    operands_example,
    range_bounds,
    tensor_arithmetic,
    tensor_subscripts,
    unpack_call,
)
from archc.sema.names import member_name
from archc.sema.program import Program

MAX_NODES = 200_000
# Blocks nested deeper than this are taken for a block that uses itself.
MAX_DEPTH = 50


@dataclass
class Spec:
    """A deferred module constructor: what a member statement evaluates to."""

    kind: str  # "op" | "block" | "seq"
    type: str
    loc: Loc
    attrs: dict[str, Any] = field(default_factory=dict)  # op attributes or block arguments
    items: list[tuple[str | None, Spec]] = field(default_factory=list)  # seq members


@dataclass
class Tensor:
    node: int
    shape: tuple[Any, ...]
    axes: tuple[str, ...] = ops.MAP_AXES
    batched: bool = True  # False for a learnable tensor (`param`): its shape is PyTorch's, with no batch dimension


def _location(loc: Loc) -> Location:
    return Location(file=loc.file, line=loc.line, column=loc.column)


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


class Elaborator:
    def __init__(self, program: Program, max_nodes: int = MAX_NODES) -> None:
        self.program = program
        self.max_nodes = max_nodes
        self.nodes: list[Node] = []
        self.training_only = False
        self.inline_counts: dict[str, int] = {}
        self.depth = 0
        self.active: list[str] = []  # the definitions whose forwards are running, outermost first
        self.input_given = False  # the input size is the caller's (--input), not the spec's `input`
        self.iterations = 0  # loop iterations so far, bounded like the nodes
        # Per block that a forward applies item by item: how its items take their inputs, "side" (each the list's
        # first input: Res2Net's convs) or "chain" (each the previous item's output: VoVNet's conv_mid), with where
        # that was first seen. One class writes every instance, so the whole network keeps to one.
        self.list_modes: dict[str, tuple[str, Loc]] = {}
        # The channels each item of a list of modules gave, by the item's path.
        self.item_channels: dict[str, Any] = {}

    # Constructors

    def make_spec(self, call: S.Call, scope: Scope) -> Spec:
        """Evaluate a constructor call (`conv(64, 3)`, `BasicBlock(64)`, `seq(...)`) into a Spec."""
        if call.optional:
            raise ArchError(
                "E019", "`?` applies a member in the forward; it is not a constructor", call.loc, f"write `{call.func}(...)` here"
            )
        if call.func == ops.BUFFER:
            value, persistent = build_buffer(call, scope)
            attrs = {"value": value.code.code, "shape": value.shape, "dtype": value.dtype, "persistent": persistent}
            return Spec("op", ops.BUFFER, call.loc, attrs=attrs)
        args = [evaluate(a, scope, self.make_spec) for a in call.args]
        kwargs = {k: evaluate(v, scope, self.make_spec) for k, v in call.kwargs.items()}
        if call.func == SEQ:
            items: list[tuple[str | None, Spec]] = [(None, a) for a in args] + list(kwargs.items())
            for name, item in items:
                if not isinstance(item, Spec):
                    raise ArchError("E019", f"seq takes modules, got {item!r}" + (f" for `{name}`" if name else ""), call.loc)
            return Spec("seq", SEQ, call.loc, items=items)
        for value in [*args, *kwargs.values()]:
            if isinstance(value, Spec):
                raise ArchError("E019", "a module is not an argument here", call.loc, "modules are arguments of seq(...) only")
        callee = resolve_callee(self.program, call)
        if isinstance(callee, ops.Op):
            return Spec("op", callee.name, call.loc, attrs=bind_op_args(callee, args, kwargs, call))
        return Spec("block", callee.name, call.loc, attrs=bind_block_args(callee, args, kwargs, call))

    # Graph building

    def add_node(self, op: str, module: str | None, name: str, attrs: dict[str, Any], inputs: list[Tensor], scope: str, loc: Loc) -> Tensor:
        if len(self.nodes) >= self.max_nodes:
            raise ArchError(
                "E061", f"the network has over {self.max_nodes} nodes", loc, "raise the node limit (--max-nodes) if this is intended"
            )
        if op in ops.TENSOR_MEMBERS:
            shape: tuple[Any, ...] = tuple(attrs["shape"])
            axes: tuple[str, ...] = ops.MAP_AXES if len(shape) == 3 else ("F",) * len(shape)
        else:
            shape = infer_shape(op, attrs, [t.shape for t in inputs], loc, [self.origin(t) for t in inputs], [t.axes for t in inputs])
            try:
                leading = [t for t in inputs if t.batched] or inputs
                axes = infer_axes(op, attrs, [t.axes for t in leading], shape, leading[0].shape)
            except ops.OpError as e:
                raise ArchError(e.code, e.message, loc, e.hint) from None
        node = Node(
            id=len(self.nodes),
            name=name,
            op=op,
            module=module,
            attrs=attrs,
            inputs=[t.node for t in inputs],
            shape=list(shape),
            axes=list(axes),
            scope=scope,
            training_only=self.training_only,
            loc=_location(loc),
        )
        self.nodes.append(node)
        return Tensor(node.id, tuple(shape), axes)

    def origin(self, t: Tensor) -> tuple[Loc | None, str]:
        """Where the node that made `t` stands in the spec, and what it is: for the notes of a mismatch."""
        node = self.nodes[t.node]
        loc = Loc(node.loc.file, node.loc.line, node.loc.column)
        if node.op == "input":
            # An input size given by the caller (--input) is not the one the spec's `input` line shows.
            return (None, "the network's input, its size given by --input") if self.input_given else (loc, "the network's input")
        kind = "" if node.name.rpartition(".")[2].startswith(node.op) else f" ({node.op})"
        return loc, f"the output of `{node.name}`{kind}, made here"

    def inline_name(self, scope: str, op: str) -> str:
        key = _join(scope, op)
        n = self.inline_counts.get(key, 0)
        self.inline_counts[key] = n + 1
        return key if n == 0 else f"{key}_{n}"

    # Instances

    def instantiate(self, spec: Spec, name: str, path: str, x: Tensor) -> Instance:
        if spec.kind == "op":
            op = ops.OPS[spec.type]
            try:
                attrs = ops.infer_attrs(op, spec.attrs, x.shape)
            except ops.OpError as e:
                raise ArchError(e.code, e.message, spec.loc, e.hint) from None
            module = ModuleNode(
                name=name, path=path, kind="op", type=spec.type, attrs=attrs, input_shape=list(x.shape), loc=_location(spec.loc)
            )
            return OpInstance(self, module, spec)
        if spec.kind == "seq":
            module = ModuleNode(name=name, path=path, kind="seq", type=SEQ, input_shape=list(x.shape), loc=_location(spec.loc))
            seq = BlockInstance(self, module, None, Scope())
            for item_name, item in spec.items:
                seq.declare(item_name, item, item.loc)
            return seq
        defn = self.program.definitions[spec.type]
        return self.instantiate_block(defn, spec.attrs, name, path, x, "block", spec.loc)

    def instantiate_block(
        self, defn: S.Definition, args: dict[str, Any], name: str, path: str, x: Tensor, kind: str, loc: Loc
    ) -> BlockInstance:
        if self.depth > MAX_DEPTH and defn.name in self.active:
            raise ArchError(
                "E063",
                f"block `{defn.name}` uses itself over {MAX_DEPTH} deep: its recursion does not end",
                loc,
                "stop it with an `if` on an argument each use lowers, as `if levels > 1 { tree = Tree(levels - 1) }`",
                [(defn.loc, f"`{defn.name}` is defined here")],
            )
        if self.depth > MAX_DEPTH:
            raise ArchError(
                "E060",
                f"blocks nest over {MAX_DEPTH} deep at `{defn.name}`",
                loc,
                "a block may not use itself, directly or through others",
                [(defn.loc, f"`{defn.name}` is defined here")],
            )
        module = ModuleNode(name=name, path=path, kind=kind, type=defn.name, args=args, input_shape=list(x.shape), loc=_location(defn.loc))  # type: ignore[arg-type]
        scope = Scope(args, in_channels=x.shape[0] if defn.kind == "block" else None)
        block = BlockInstance(self, module, defn, scope)
        block.run_body(defn.body, scope)
        return block


class Instance:
    def __init__(self, elab: Elaborator, module: ModuleNode) -> None:
        self.elab = elab
        self.module = module

    def apply(self, x: Tensor, loc: Loc) -> Tensor:
        raise NotImplementedError


class OpInstance(Instance):
    def __init__(self, elab: Elaborator, module: ModuleNode, spec: Spec) -> None:
        super().__init__(elab, module)
        self.spec = spec

    def apply(self, x: Tensor, loc: Loc) -> Tensor:
        # A module applied again (a shared member) must get the input size it was built for.
        op = ops.OPS[self.module.type]
        try:
            again = ops.infer_attrs(op, {}, x.shape)
        except ops.OpError as e:
            raise ArchError(e.code, e.message, loc, e.hint) from None
        for name, value in again.items():
            if self.module.attrs[name] != value:
                raise ArchError(
                    "E036",
                    f"`{self.module.path}` was built for inputs of shape {ops.fmt_shape(tuple(self.module.input_shape))}"
                    f" and is applied here to {ops.fmt_shape(x.shape)}",
                    loc,
                    "a member has one set of weights: declare a second member for the other input",
                    [(self.spec.loc, f"`{self.module.path}` is declared here")],
                )
        scope = self.module.path.rpartition(".")[0]
        return self.elab.add_node(self.module.type, self.module.path, self.module.path, self.module.attrs, [x], scope, self.spec.loc)


@dataclass
class Slot:
    name: str
    spec: Spec
    loc: Loc
    order: int
    instance: Instance | None = None


class BlockInstance(Instance):
    """A block, seq or arch instance: its members, made concrete as the forward reaches them."""

    def __init__(self, elab: Elaborator, module: ModuleNode, defn: S.Definition | None, scope: Scope) -> None:
        super().__init__(elab, module)
        self.defn = defn
        self.scope = scope
        self.slots: dict[str, Slot] = {}
        self.child_orders: list[int] = []
        self.declared = S.declared_members(defn.body) if defn else set()
        self.loop_members: dict[str, str] = {}  # a forward loop's name -> the member it stands for now
        self.applied_by_item: set[str] = set()  # members that are lists of modules, applied item by item (`convs[i](x)`)
        self.applied_whole: set[str] = set()

    def declare(self, name: str | None, spec: Spec, loc: Loc) -> None:
        order = len(self.slots)
        key = str(order) if name is None else name
        if key in self.slots:
            raise ArchError(
                "E020",
                f"member `{key}` is declared twice",
                loc,
                "give the second member another name",
                [(self.slots[key].loc, f"`{key}` is first declared here")],
            )
        self.slots[key] = Slot(key, spec, loc, order)

    def run_body(self, body: list[S.Stmt], scope: Scope) -> None:
        for stmt in body:
            match stmt:
                case S.Let(name=name, value=value):
                    scope.values[name] = evaluate(value, scope, self.elab.make_spec)
                    if isinstance(scope.values[name], Spec):
                        raise ArchError("E019", f"`let {name}` holds a module", stmt.loc, f"declare a member instead: `{name} = ...`")
                case S.Member(name=name, value=value, key=key):
                    spec = evaluate(value, scope, self.elab.make_spec)
                    if not isinstance(spec, Spec):
                        raise ArchError("E019", f"a member must be a module, got {spec!r}", stmt.loc, "use `let` for values")
                    self.declare(name if key is None else member_name(key, scope, stmt.loc), spec, stmt.loc)
                case S.If(test=test, body=then, orelse=orelse):
                    self.run_body(then if _truth(evaluate(test, scope), test.loc) else orelse, scope)
                case S.For(index=index, var=var, iterable=iterable, body=loop_body):
                    items = evaluate(iterable, scope)
                    if not isinstance(items, (list, tuple)):
                        raise ArchError("E042", f"cannot loop over {items!r}", iterable.loc, "loop over a list, a tuple or range(n)")
                    for i, item in enumerate(items):
                        self.elab.iterations += 1
                        if self.elab.iterations > self.elab.max_nodes:
                            raise ArchError(
                                "E061",
                                f"loops run over {self.elab.max_nodes} times in all",
                                iterable.loc,
                                "raise the limit with --max-nodes if this is intended",
                            )
                        if index is not None:
                            scope.values[index] = i
                        scope.values[var] = item
                        self.run_body(loop_body, scope)
                case _:
                    raise ArchError("E007", "this statement does not belong in a block body", stmt.loc)

    def member_stmts(self, name: str) -> list[S.Member]:
        """The statements declaring member `name`, in source order."""
        body = self.defn.body if self.defn is not None else []
        return [m for m in S.walk(body) if isinstance(m, S.Member) and m.name == name]

    def member(self, name: str, x: Tensor, loc: Loc) -> Instance:
        slot = self.slots[name]
        if slot.instance is None:
            path = _join(self.module.path, name)
            slot.instance = self.elab.instantiate(slot.spec, name, path, x)
            at = bisect.bisect(self.child_orders, slot.order)
            self.child_orders.insert(at, slot.order)
            self.module.children.insert(at, slot.instance.module)
        return slot.instance

    def apply(self, x: Tensor, loc: Loc, more: list[Any] | None = None) -> Tensor:
        """The block's output for input `x` (a tensor, or a list where its forward's first input is one) and, for a
        forward taking several, the values of the others (None: the input's default)."""
        outputs, _ = self.run_forward(x, loc, more)
        if len(outputs) != 1:
            raise ArchError("E083", "a block returns one tensor", loc, "only an arch returns auxiliary outputs")
        return outputs[0]

    def run_forward(self, x: Tensor, loc: Loc, more: list[Any] | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """Apply the block: its forward, or else its members in order. Returns (outputs, aux outputs)."""
        self.elab.depth += 1
        self.elab.active.append(self.defn.name if self.defn is not None else "")
        try:
            return self._run_forward(x, loc, more or [])
        finally:
            self.elab.depth -= 1
            self.elab.active.pop()

    def _run_forward(self, x: Tensor, loc: Loc, more: list[Any]) -> tuple[list[Tensor], list[Tensor]]:
        if self.defn is None or self.defn.forward is None:
            for name in list(self.slots):
                x = self.member(name, x, self.slots[name].loc).apply(x, self.slots[name].loc)
            if not self.slots and self.defn is not None:  # an empty seq() passes its input through, as nn.Sequential()
                raise ArchError(
                    "E025", "this block has no members and no forward", self.defn.loc, "declare its members, or remove the block"
                )
            return [x], []
        forward = self.defn.forward
        members_loop(forward)  # E084 for a loop in a form archc does not take
        scope = self.scope.child()
        scope.values[forward.arg] = x
        # The other inputs: as given, or their defaults, read in the forward's scope (`shortcut = x`, `children = []`).
        for given, value in zip(forward_inputs(forward)[1:], more + [None] * len(forward_inputs(forward)), strict=False):
            if value is None and given.default is None:  # the network's own block: it is given the image alone
                raise ArchError("E081", f"input `{given.name}` of `{_block_name(self)}` is not given", given.loc, "give it a default")
            scope.values[given.name] = value if value is not None else self.eval_tensor(given.default, scope)  # type: ignore[arg-type]
        result = self.run_forward_body(forward.body, scope, set())
        if result is not None:
            return result
        raise ArchError("E083", "forward has no `return`", forward.loc, "end it with `return ...`")

    def run_forward_body(self, stmts: list[S.Stmt], scope: Scope, aux_names: set[str]) -> tuple[list[Tensor], list[Tensor]] | None:
        """Run forward statements; the outputs once a `return` is reached, else None."""
        for stmt in stmts:
            match stmt:
                case S.Assign(name=name, value=value, aux=aux):
                    if aux and isinstance(value, S.Call) and value.optional and value.func not in self.slots:
                        # `aux a = head?(x)` without the head: no auxiliary output.
                        scope.values[name] = None
                        aux_names.add(name)
                        continue
                    previous = self.elab.training_only
                    self.elab.training_only = previous or aux
                    scope.values[name] = self.eval_tensor(value, scope)
                    self.elab.training_only = previous
                    if aux:
                        aux_names.add(name)
                case S.Unpack(names=names, value=value):
                    op = unpack_call(stmt, self.declared)
                    assert isinstance(value, S.Call)
                    pieces = self.inline_op(op, value, scope)
                    assert isinstance(pieces, tuple)
                    if len(pieces) != len(names):
                        raise ArchError(
                            "E081",
                            f"`{op.name}` gives {len(pieces)} tensors here, and {len(names)} names take them",
                            stmt.loc,
                            f"name each of the {len(pieces)} tensors",
                        )
                    for name, piece in zip(names, pieces, strict=True):
                        scope.values[name] = piece
                case S.For(var=var, body=loop_body) if is_range_loop(stmt):
                    # `for i in range(n)`: the body once per integer, each iteration elaborated on its own.
                    for i in range(*range_bounds(stmt, lambda e: evaluate(e, scope))):
                        self.elab.iterations += 1
                        if self.elab.iterations > self.elab.max_nodes:
                            raise ArchError(
                                "E061",
                                f"loops run over {self.elab.max_nodes} times in all",
                                stmt.iterable.loc,
                                "raise the limit with --max-nodes if this is intended",
                            )
                        scope.values[var] = i
                        result = self.run_forward_body(loop_body, scope, aux_names)
                        if result is not None:
                            return result
                case S.For(var=var, body=loop_body):
                    # `for layer in members`: the body once per member, in the order declared.
                    declared = self.declared
                    self.declared = declared | {var}
                    for member in list(self.slots):
                        self.loop_members[var] = member
                        self.run_forward_body(loop_body, scope, aux_names)
                    self.loop_members.pop(var, None)
                    self.declared = declared
                case S.If(test=test, body=then, orelse=orelse):
                    result = self.run_forward_body(then if forward_condition(evaluate(test, scope), test) else orelse, scope, aux_names)
                    if result is not None:
                        return result
                case S.Return(values=values):
                    outputs: list[Tensor] = []
                    aux_outputs: list[Tensor] = []
                    for v in values:
                        t = self.eval_tensor(v, scope)
                        if t is None and isinstance(v, S.Name) and v.name in aux_names:
                            continue
                        if isinstance(t, list):
                            raise not_a_list(v.loc)
                        if not isinstance(t, Tensor):
                            raise ArchError("E083", "forward must return tensors", v.loc)
                        is_aux = isinstance(v, S.Name) and v.name in aux_names
                        (aux_outputs if is_aux else outputs).append(t)
                    if len(outputs) != 1:
                        raise ArchError("E083", "forward returns exactly one main output", stmt.loc, "other outputs are `aux` ones")
                    self.build_members_of_other_branches()
                    for name in self.applied_by_item:
                        container = self.slots[name].instance
                        assert isinstance(container, BlockInstance)
                        idle = [s for s in container.slots.values() if s.instance is None]
                        if idle:
                            raise ArchError(
                                "E021",
                                f"item {idle[0].name} of `{name}` is never applied in the forward",
                                idle[0].loc,
                                "apply it or remove it",
                            )
                    unused = [n for n, s in self.slots.items() if s.instance is None]
                    if unused:
                        slot = self.slots[unused[0]]
                        raise ArchError("E021", f"member `{slot.name}` is never used in the forward", slot.loc, "use it or remove it")
                    return outputs, aux_outputs
        return None

    def build_members_of_other_branches(self) -> None:
        """Build the weightless members that only a forward branch not taken here applies.

        torchvision builds such a module in every instance and calls it on one path only (MBConv's
        `self.stochastic_depth`, applied where `use_res_connect`): the member exists in each instance, as its
        module, but adds no node. Only ops without weights and without arguments inferred from an input, and empty
        seqs, qualify, so the module is the same whatever it would have been applied to; it records the block's input
        shape.
        """
        assert self.defn is not None and self.defn.forward is not None
        applied = {c.func for c in S.walk(self.defn.forward.body) if isinstance(c, S.Call)}
        for name, slot in self.slots.items():
            if slot.instance is not None or name not in applied:
                continue
            # An empty seq (ShuffleNetV2's `branch1 = nn.Sequential()` in its stride-1 units) is weightless too.
            if slot.spec.kind == "seq" and not slot.spec.items:
                self.member(name, Tensor(-1, tuple(self.module.input_shape)), slot.loc)
                continue
            if slot.spec.kind != "op":
                continue
            op = ops.OPS[slot.spec.type]
            if op.inferred or op.functional is None:
                continue
            self.member(name, Tensor(-1, tuple(self.module.input_shape)), slot.loc)

    def eval_tensor(self, expr: S.Expr, scope: Scope) -> Any:
        """Evaluate a forward expression: tensors flow through members and inline ops."""
        match expr:
            case S.Call():
                meaning = forward_call(expr, self.declared)
                match meaning:
                    case ApplyMember(name=func, optional=optional):
                        func = self.loop_members.get(func, func)
                        if func not in self.slots and not optional:
                            raise ArchError(
                                "E022",
                                f"member `{func}` does not exist for these arguments",
                                expr.loc,
                                f"write `{func}?(...)` to pass the input through when it is absent",
                                [(m.loc, f"`{func}` is declared here, in a branch not taken") for m in self.member_stmts(func)[:1]],
                            )
                        callee = self.slots[func].spec if func in self.slots else None
                        defn = self.elab.program.definitions[callee.type] if callee is not None and callee.kind == "block" else None
                        wanted_inputs = forward_inputs(defn.forward if defn is not None else None)
                        exprs = bind_inputs(defn.forward if defn is not None else None, expr, f"member `{func}`")
                        values = [None if e is None else self.eval_tensor(e, scope) for e in exprs]
                        for wanted, value, e in zip(wanted_inputs, values, exprs, strict=True):
                            if e is None:
                                continue
                            if is_list_input(wanted):
                                if not isinstance(value, list):
                                    raise ArchError(
                                        "E081",
                                        f"input `{wanted.name}` of member `{func}` is a list of tensors, got {value!r}",
                                        e.loc,
                                        "give a list: `[a, b]`, `xs + [y]`",
                                    )
                            elif isinstance(value, list):
                                raise not_a_list(e.loc)
                            elif not isinstance(value, Tensor):
                                raise ArchError("E081", f"member `{func}` is applied to a tensor, got {value!r}", e.loc)
                        x: Any = values[0]
                        for value, e in zip(values, exprs, strict=True):
                            for tensor in value if isinstance(value, list) else [value]:
                                if isinstance(tensor, Tensor) and not tensor.batched and e is not None:
                                    raise unbatched_input(func, e.loc)
                        if func not in self.slots:
                            return x
                        if func in self.applied_by_item:
                            raise self.whole_and_items(func, expr.loc)
                        self.applied_whole.add(func)
                        if isinstance(x, list):  # a list input: the block is built for its tensors joined on channels
                            if not x:
                                raise ArchError("E081", f"member `{func}` is applied to an empty list", exprs[0].loc)  # type: ignore[union-attr]
                            first = x[0].shape
                            total = sum(t.shape[0] for t in x)
                            member = self.member(func, Tensor(-1, (total, *first[1:])), expr.loc)
                        else:
                            member = self.member(func, x, expr.loc)
                        if isinstance(member, BlockInstance):
                            return member.apply(x, expr.loc, values[1:])
                        return member.apply(x, expr.loc)
                    case ApplyItem(name=func):
                        return self.apply_item(func, expr, scope)
                    case Join():
                        tensors = [self.eval_tensor(a, scope) for a in expr.args]
                        if len(tensors) == 1 and isinstance(tensors[0], list):  # cat(xs): the tensors of a list
                            tensors = tensors[0]
                        for t, a in zip(tensors, expr.args, strict=False):
                            if isinstance(t, list):
                                raise not_a_list(a.loc, "a tensor among several")
                        if not tensors or not all(isinstance(t, Tensor) for t in tensors):
                            raise ArchError("E081", "cat joins one or more tensors: cat(a, b, ...)", expr.loc)
                        dim = join_dim(expr, lambda e: evaluate(e, scope))
                        try:
                            shapes = ops.joined_shapes([t.shape for t in tensors], [t.batched for t in tensors])
                        except ops.OpError as e:
                            raise ArchError(e.code, e.message, expr.loc, e.hint) from None
                        tensors = [
                            Tensor(t.node, sh, t.axes if t.batched else t.axes[1:], t.batched)
                            for t, sh in zip(tensors, shapes, strict=True)
                        ]
                        return self.elab.add_node(
                            ops.CAT, None, self.elab.inline_name(self.module.path, CAT), {"dim": dim}, tensors, self.module.path, expr.loc
                        )
                    case InlineOp(op=op):
                        result = self.inline_op(op, expr, scope)
                        return list(result) if isinstance(result, tuple) else result  # a list of the tensors of `chunk`
                return evaluate(expr, scope)
            case S.ListLit(items=list_items):
                values = [self.eval_tensor(item, scope) for item in list_items]
                if not any(isinstance(v, (Tensor, list)) for v in values):
                    return evaluate(expr, scope)
                for v, item in zip(values, list_items, strict=True):
                    if isinstance(v, list):
                        raise not_a_list(item.loc, "a tensor (an item of a list)")
                    if not isinstance(v, Tensor):
                        raise ArchError("E086", f"a list of tensors holds tensors only, not {v!r}", item.loc)
                return values
            case S.BinOp(op=op, left=left, right=right):
                lv, rv = self.eval_tensor(left, scope), self.eval_tensor(right, scope)
                if isinstance(lv, list) or isinstance(rv, list):
                    if op == "+" and isinstance(lv, list) and isinstance(rv, list):
                        return lv + rv  # `xs + [y]`: a longer list
                    raise not_a_list((left if isinstance(lv, list) else right).loc, "a tensor (lists join with `+` only)")
                if not isinstance(lv, Tensor) and not isinstance(rv, Tensor):
                    return evaluate(S.BinOp(expr.loc, op, S.Const(left.loc, lv), S.Const(right.loc, rv)), scope)
                arith = tensor_arithmetic(expr, lv, rv, Tensor)
                inputs = self.aligned([t for t in (lv, rv) if isinstance(t, Tensor)], expr.loc)
                out = self.elab.add_node(
                    arith.op, None, self.elab.inline_name(self.module.path, arith.op), arith.attrs, inputs, self.module.path, expr.loc
                )
                if not any(t.batched for t in inputs):  # of params, buffers and numbers alone: no batch either
                    return Tensor(out.node, out.shape, out.axes, batched=False)
                return out
            case S.Index(target=target, index=index):
                x = self.eval_tensor(target, scope)
                if isinstance(x, list):
                    if isinstance(index, (S.TupleLit, S.Slice)):
                        raise ArchError("E042", "a list takes one integer index", index.loc, "e.g. xs[0], xs[-1], xs[i]")
                    return list_index(x, evaluate(index, scope), index.loc)
                if not isinstance(x, Tensor):
                    return evaluate(expr, scope)
                if not isinstance(index, (S.TupleLit, S.Slice)):
                    found = self.eval_tensor(index, scope)
                    if isinstance(found, (Tensor, list)):
                        return self.gather(x, found, expr, index)
                items = tensor_subscripts(expr, lambda e: evaluate(e, scope))
                return self.elab.add_node(
                    "index", None, self.elab.inline_name(self.module.path, "index"), {"items": items}, [x], self.module.path, expr.loc
                )
            case S.Name(name=name) if not scope.lookup(name)[0] and name in self.slots and self.slots[name].spec.type in ops.TENSOR_MEMBERS:
                return self.read_param(name, expr.loc)
            case S.Name(name=name):
                found, value = scope.lookup(name)
                if not found:
                    raise ArchError("E010", f"unknown name `{name}`", expr.loc, did_you_mean(name, scope.names()))
                return value
            case _:
                return evaluate(expr, scope)

    def whole_and_items(self, name: str, loc: Loc) -> ArchError:
        return ArchError(
            "E081",
            f"`{name}` is applied both whole and item by item",
            loc,
            "a list of modules (`convs[i](x)`) is not applied whole; declare two members",
        )

    def apply_item(self, func: str, expr: S.Call, scope: Scope) -> Tensor:
        """`convs[i](x)`: item `i` of a member that is a list of modules, built for x where first applied."""
        assert expr.item is not None
        if func not in self.slots:
            raise ArchError("E022", f"member `{func}` does not exist for these arguments", expr.loc)
        x = self.eval_tensor(expr.args[0], scope)
        if isinstance(x, list):
            raise not_a_list(expr.args[0].loc)
        if not isinstance(x, Tensor):
            raise ArchError("E081", f"an item of `{func}` is applied to a tensor, got {x!r}", expr.args[0].loc)
        if not x.batched:
            raise unbatched_input(func, expr.args[0].loc)
        slot = self.slots[func]
        if slot.spec.kind == "op" or (slot.spec.kind == "block" and self.elab.program.definitions[slot.spec.type].forward is not None):
            raise ArchError(
                "E081",
                f"`{func}` is no list of modules, so it has no items",
                expr.loc,
                "a list of modules is a `seq(...)` or a block of numbered members without a forward",
                [(slot.loc, f"`{func}` is declared here")],
            )
        if func in self.applied_whole:
            raise self.whole_and_items(func, expr.loc)
        self.applied_by_item.add(func)
        container = self.member(func, x, expr.loc)
        assert isinstance(container, BlockInstance)
        names = list(container.slots)
        name = list_index(names, evaluate(expr.item, scope), expr.item.loc)
        built = tuple(container.module.input_shape)
        # The class writes the items side by side, each for the channels of the list's first input, or (a block's
        # items) in a chain, each for the channels of the item before it, as nn.Sequential builds them.
        k = names.index(name)
        before = self.elab.item_channels.get(f"{container.module.path}.{names[k - 1]}") if k > 0 else None
        side = x.shape[:1] == built[:1]
        chain = before is not None and x.shape[:1] == (before,) and slot.spec.kind == "block"
        mode = self.elab.list_modes.get(slot.spec.type) if slot.spec.kind == "block" else None
        if not (side or chain) or (k > 0 and mode is not None and not (side if mode[0] == "side" else chain)):
            chained = k > 0 and mode is not None and mode[0] == "chain"
            takes = f"the output of item {names[k - 1]}" if chained else f"{ops.fmt_shape(built)} inputs"
            notes = [(slot.loc, f"`{func}` is declared here")]
            if mode is not None:
                how = "each the output of the item before" if chained else "the list's first input each"
                notes.append((mode[1], f"{slot.spec.type}'s items take {how} here"))
            raise ArchError(
                "E036",
                f"the items of `{func}` take {takes} and item {name} is applied here to {ops.fmt_shape(x.shape)}",
                expr.loc,
                "the items of a list of modules take the list's first input each (side by side), or each the output of"
                " the item before (a chain, in a block's items); declare a list per input width",
                notes,
            )
        if slot.spec.kind == "block" and k > 0 and side != chain and mode is None:
            self.elab.list_modes[slot.spec.type] = ("side" if side else "chain", expr.loc)
        out = container.member(name, x, expr.loc).apply(x, expr.loc)
        self.elab.item_channels[f"{container.module.path}.{name}"] = out.shape[0] if out.shape else None
        return out

    def gather(self, table: Tensor, index: Tensor | list[Tensor], expr: S.Index, at: S.Expr) -> Tensor:
        """`table[index]`: the rows of a learnable or fixed tensor (no batch) picked by an integer `buffer` (read
        whole, or reshaped, flattened, permuted, transposed or indexed): index.shape + table.shape[1:], itself a
        tensor without a batch, as the table is."""
        if isinstance(index, list):
            raise not_a_list(at.loc)
        if table.batched:
            raise ArchError(
                "E089",
                "indexing an activation by a tensor: only a `param` or `buffer` is indexed by one",
                expr.loc,
                "gather rows of a table of the module's own: `table[index]` with `table = param((n, k))` and an integer buffer",
            )
        if index.batched or not self.integer_buffer(index.node):
            raise ArchError(
                "E089",
                "a tensor is indexed by an integer `buffer` (or a reshape of one), and this index is not one",
                at.loc,
                "declare the index as a member, `index = buffer(arange(...))`, and write `table[index]`",
            )
        try:
            shape = ops.output_shape(ops.OPS["gather"], {}, [table.shape, index.shape])
        except ops.OpError as e:
            raise ArchError(e.code, e.message, expr.loc, e.hint) from None
        name = self.elab.inline_name(self.module.path, "gather")
        out = self.elab.add_node("gather", None, name, {}, [table, index], self.module.path, expr.loc)
        return Tensor(out.node, shape, out.axes, batched=False)

    def integer_buffer(self, node: int) -> bool:
        """Whether IR node `node` holds an integer `buffer`, read whole or moved about (reshaped, flattened, permuted,
        transposed, indexed): the values of a gather's index."""
        found = self.elab.nodes[node]
        if found.op == ops.BUFFER:
            return bool(found.attrs.get("dtype") == "int64")
        if found.op in ("reshape", "flatten", "permute", "transpose", "index") and found.inputs:
            return self.integer_buffer(found.inputs[0])
        return False

    def read_param(self, name: str, loc: Loc) -> Tensor:
        """A learnable tensor read in the forward: a node of its own, with no input, its shape PyTorch's."""
        instance = self.member(name, Tensor(-1, ()), loc)
        module = instance.module
        shape = tuple(module.attrs["shape"])
        # Not a module applied (no forward hook sees it): a node of its own, named by its state_dict key.
        node = self.elab.add_node(module.type, None, module.path, module.attrs, [], module.path.rpartition(".")[0], loc)
        return Tensor(node.node, shape, node.axes, batched=False)

    def weight_tensor(self, expr: S.Call, scope: Scope) -> Tensor:
        """conv2d's weight: a tensor of the module's own (`buffer` or `param`), of 4 dimensions."""
        if len(expr.args) < 2:
            raise ArchError("E081", "conv2d takes its input and then its weight: conv2d(x, weight, ...)", expr.loc)
        weight = self.eval_tensor(expr.args[1], scope)
        if not isinstance(weight, Tensor) or weight.batched or len(weight.shape) != 4:
            raise ArchError(
                "E081",
                "conv2d's weight is a tensor of the module's own of 4 dimensions (out, in / groups, kh, kw)",
                expr.args[1].loc,
                "declare it as a `buffer(...)` or `param(...)` member and pass it by name",
            )
        return weight

    def inline_op(self, op: ops.Op, expr: S.Call, scope: Scope) -> Any:
        if not expr.args:
            raise ArchError("E081", f"inline `{op.name}` needs its input tensor first: {op.name}(x, ...)", expr.loc)
        if op.operands > 1:
            return self.operands_op(op, expr, scope)
        x = self.eval_tensor(expr.args[0], scope)
        if isinstance(x, list):
            raise not_a_list(expr.args[0].loc)
        if not isinstance(x, Tensor):
            raise ArchError("E081", f"inline `{op.name}` needs a tensor as its first argument", expr.args[0].loc)
        if not x.batched and op.name not in (*ops.OWN_DIMS, "reshape") and op.name not in ops.ELEMENTWISE:
            raise ArchError(
                "E081",
                f"inline `{op.name}` of a tensor without a batch (a `param` or `buffer`, or computed from one)",
                expr.args[0].loc,
                "a param or buffer is read with reshape, permute, transpose, elementwise activations, arithmetic and gathering rows",
            )
        inputs = [x]
        if op.name == WEIGHT_CONV:
            weight = self.weight_tensor(expr, scope)
            inputs.append(weight)
            args = [weight.shape, *(evaluate(a, scope) for a in expr.args[2:])]
        else:
            args = [evaluate(a, scope) for a in expr.args[1:]]
        kwargs = {k: evaluate(v, scope) for k, v in expr.kwargs.items()}
        attrs = bind_op_args(op, args, kwargs, expr)
        if op.multi:
            # One node per tensor returned, each knowing which piece it is.
            try:
                count = ops.pieces(op, attrs, x.shape)
            except ops.OpError as e:
                raise ArchError(e.code, e.message, expr.loc, e.hint) from None
            return tuple(
                self.elab.add_node(
                    op.name, None, self.elab.inline_name(self.module.path, op.name), {**attrs, "index": i}, [x], self.module.path, expr.loc
                )
                for i in range(count)
            )
        if not x.batched and op.name in ops.OWN_DIMS:
            # A learnable or fixed tensor's dimensions moved (MaxViT's bias, `permute(bias, (2, 0, 1))`): they are its
            # own, 0 its first, and the result has no batch either.
            attrs = ops.own_dims(op.name, attrs)
            name = self.elab.inline_name(self.module.path, op.name)
            out = self.elab.add_node(op.name, None, name, attrs, inputs, self.module.path, expr.loc)
            return Tensor(out.node, out.shape, out.axes, batched=False)
        out = self.elab.add_node(op.name, None, self.elab.inline_name(self.module.path, op.name), attrs, inputs, self.module.path, expr.loc)
        if not x.batched and (op.name == "reshape" or op.name in ops.ELEMENTWISE):
            # A learnable tensor reshaped (timm's layer scale, `gamma.reshape(1, -1, 1, 1)`): it has no batch, so the
            # sizes are its whole shape, and the result is a learnable tensor's, broadcast as `param`'s is; so is
            # an activation of one (Swin V2's `16 * sigmoid(bias)`).
            return Tensor(out.node, out.shape, out.axes, batched=False)
        return out

    def operands_op(self, op: ops.Op, expr: S.Call, scope: Scope) -> Tensor:
        """An op of several tensors (`matmul(a, b)`, `attention(q, k, v)`): its tensors first, then its arguments; a
        learnable tensor among them aligned on the right, as arithmetic aligns it."""
        if len(expr.args) < op.operands:
            raise ArchError("E081", f"`{op.name}` takes {op.operands} tensors first: {operands_example(op)}", expr.loc)
        tensors = []
        for a in expr.args[: op.operands]:
            t = self.eval_tensor(a, scope)
            if isinstance(t, list):
                raise not_a_list(a.loc)
            if not isinstance(t, Tensor):
                raise ArchError("E081", f"`{op.name}` takes {op.operands} tensors first: {operands_example(op)}", a.loc)
            tensors.append(t)
        args = [evaluate(a, scope) for a in expr.args[op.operands :]]
        kwargs = {k: evaluate(v, scope) for k, v in expr.kwargs.items()}
        attrs = bind_op_args(op, args, kwargs, expr)
        tensors = self.aligned(tensors, expr.loc)
        return self.elab.add_node(
            op.name, None, self.elab.inline_name(self.module.path, op.name), attrs, tensors, self.module.path, expr.loc
        )

    @staticmethod
    def aligned(tensors: list[Tensor], loc: Loc) -> list[Tensor]:
        """The operands of arithmetic or of an op of several tensors, their shapes aligned as the op meets them (a
        learnable tensor's, which has no batch, against the batched ones: ops.operand_shapes)."""
        try:
            shapes = ops.operand_shapes([t.shape for t in tensors], [t.batched for t in tensors])
        except ops.OpError as e:
            raise ArchError(e.code, e.message, loc, e.hint) from None
        return [Tensor(t.node, s, t.axes, t.batched) for t, s in zip(tensors, shapes, strict=True)]


def unbatched_input(func: str, loc: Loc) -> ArchError:
    """A member applied to a tensor without a batch: its shape rule would read the tensor's first dimension as one."""
    return ArchError(
        "E081",
        f"member `{func}` is applied to a tensor without a batch (a `param` or `buffer`, or computed from one)",
        loc,
        "members apply to the forward's activations; a param or buffer is read with the inline ops"
        " (reshape, permute, arithmetic, gathering rows)",
    )


def _block_name(block: BlockInstance) -> str:
    """The name an error gives a block instance: its definition's, or its path for a seq."""
    return block.defn.name if block.defn is not None else block.module.path


def _truth(value: Any, loc: Loc) -> bool:
    if isinstance(value, (bool, int, float, str, list, tuple)) or value is None:
        return bool(value)
    raise ArchError("E042", f"a condition must be a value, got {value!r}", loc)


def top_level_params(program: Program, overrides: dict[str, Any]) -> dict[str, Any]:
    """The arch's parameters: defaults, with `-D NAME=VALUE` overrides."""
    arch = program.arch()
    names = {p.name for p in arch.params}
    for key in overrides:
        if key not in names:
            raise ArchError(
                "E012",
                f"`{arch.name}` has no parameter `{key}`",
                arch.loc,
                did_you_mean(key, names) or f"its parameters: {', '.join(sorted(names)) or 'none'}",
            )
    scope = Scope()
    for p in arch.params:
        if p.name in overrides:
            scope.values[p.name] = overrides[p.name]
        elif p.default is not None:
            scope.values[p.name] = evaluate(p.default, scope)
        else:
            raise ArchError("E013", f"parameter `{p.name}` has no default", p.loc, f"give it one, or pass -D {p.name}=VALUE")
    return scope.values


def elaborate(
    program: Program, overrides: dict[str, Any] | None = None, max_nodes: int = MAX_NODES, input_shape: tuple[int, int, int] | None = None
) -> Architecture:
    """Elaborate the spec's arch into the IR; `input_shape` replaces the spec's `input` (channels, height, width)."""
    arch = program.arch()
    params = top_level_params(program, overrides or {})
    scope = Scope(params)
    if arch.input is None and input_shape is None:
        raise ArchError(
            "E029",
            f"`{arch.name}` has no input shape",
            arch.loc,
            "add `input (3, 224, 224)` (channels, height, width), or give one with --input 3x224x224",
        )
    dims = list(input_shape) if input_shape is not None else [evaluate(d, scope) for d in arch.input.dims]  # type: ignore[union-attr]
    for i, d in enumerate(dims):
        if not isinstance(d, int) or isinstance(d, bool) or not 0 < d <= ops.MAX_SIZE:
            if input_shape is not None:  # the caller's size, not the spec's `input`
                raise ArchError(
                    "E044",
                    f"the input size given (--input) must be positive integers up to 2**31 - 1, got {d!r}",
                    None,
                    "channels, height and width, e.g. --input 3x224x224",
                )
            raise ArchError(
                "E044",
                f"input sizes must be positive integers up to 2**31 - 1, got {d!r}",
                arch.input.dims[i].loc,  # type: ignore[union-attr]
                "channels, height and width, e.g. input (3, 224, 224)",
            )
    meta = {k: evaluate(v, scope) for k, v in arch.meta.items()}
    elab = Elaborator(program, max_nodes)
    elab.input_given = input_shape is not None
    x = _input_node(elab, dims, arch.input.loc if arch.input is not None else arch.loc)
    if arch.root is not None:
        spec = elab.make_spec(arch.root, scope)
        if spec.kind != "block":
            raise ArchError("E007", "an arch is an instance of a block", arch.root.loc, "write `= SomeBlock(...)`, or give the arch a body")
        defn = program.definitions[spec.type]
        root = elab.instantiate_block(defn, spec.attrs, "", "", x, "arch", arch.root.loc)
    else:
        root = BlockInstance(elab, ModuleNode(name="", path="", kind="arch", type=arch.name, loc=_location(arch.loc)), arch, scope)
        root.run_body(arch.body, scope)
    outputs, aux = root.run_forward(x, arch.loc)
    return Architecture(
        name=arch.name,
        file=program.main.file,
        params=params,
        meta=meta,
        input_shape=dims,
        root=root.module,
        nodes=elab.nodes,
        outputs=[t.node for t in outputs],
        aux_outputs=[t.node for t in aux],
    )


def _input_node(elab: Elaborator, dims: list[int], loc: Loc) -> Tensor:
    node = Node(id=0, name="input", op="input", module=None, inputs=[], shape=dims, axes=list(ops.MAP_AXES), scope="", loc=_location(loc))
    elab.nodes.append(node)
    return Tensor(0, tuple(dims), ops.MAP_AXES)
