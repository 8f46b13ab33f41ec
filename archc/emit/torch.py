"""The PyTorch emitter: spec definitions -> one readable Python module that imports torch alone.

Each block definition becomes one `nn.Module` class, reused by every instance, as torchvision's `BasicBlock` is.
The emitter translates a definition statement by statement: parameters become constructor arguments, `let`s
become locals, conditionals and loops stay conditionals and loops. What a spec leaves implicit, the input size of
every member (`nn.Conv2d(in_channels, ...)`), it derives by running the same op-table shape rules on symbolic
values (archc/sema/symbolic.py) through the forward. Where a size cannot be written as an expression of the
constructor's arguments (the channels after a loop over a config list), it takes the value every elaborated
instance agrees on. The Python side decides everything; the template only lays out text.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from archc import ops
from archc.emit.init import init_lines
from archc.emit.specialise import Network, call_arguments, constant_params, root_call_sites, selectors, static_lets, unused_params
from archc.errors import SOURCES, ArchError, Loc
from archc.ir import Architecture, ModuleNode
from archc.lang import syntax as S
from archc.sema.buffers import WEIGHT_CONV, build_buffer
from archc.sema.calls import SEQ, arg_loc, bind_block_args, bind_op_args, resolve_callee
from archc.sema.evaluate import Scope, evaluate
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
    members_loop,
    not_a_list,
    operands_example,
    range_bounds,
    tensor_arithmetic,
    tensor_subscripts,
    unpack_call,
)
from archc.sema.names import member_name_code, quoted
from archc.sema.program import Program
from archc.sema.symbolic import UNKNOWN, Sym, boolean, conditional, is_symbolic, is_unknown, literal, negate, same_value

TEMPLATES = Path(__file__).with_name("templates")

# Names the generated code itself uses; spec names that collide are rejected.
RESERVED = {"self", "torch", "nn", "F", "Tensor", "Any", "OrderedDict", "math", "super", "channels", "x"}
# Classes and functions a generated file may define beside the spec's (the op table's helpers): no local may shadow
# them (a member, an attribute, may: torchvision's ConvNeXt block has `self.stochastic_depth`).
HELPER_NAMES = {"StochasticDepth", "stochastic_depth", "Permute", "Transpose", "LayerNorm2d"}
# Python builtins the generated code calls or annotates with (the language's builtins become these, loops use
# `range` and `enumerate`): a parameter, `let` or loop variable of the same name would shadow them.
EMITTED_BUILTINS = {"abs", "bool", "enumerate", "float", "int", "len", "list", "max", "min", "range", "round", "str", "super", "tuple"}
# The public attributes of nn.Module and nn.Sequential instances, which a member, a `seq` key or a parameter kept
# as an attribute (`self.scale`) of the same name would shadow; names starting with `_` are refused as well, which
# covers their private ones. tests/test_hostile.py holds this list to the installed torch.
MODULE_ATTRIBUTES = {
    "T_destination", "add_module", "append", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu",
    "cuda", "double", "dump_patches", "eager_outputs", "eval", "extend", "extra_repr", "float", "forward", "get_buffer",
    "get_extra_state", "get_parameter", "get_submodule", "half", "insert", "ipu", "load_state_dict", "modules", "mtia",
    "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "pop", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu",
    "zero_grad",
}  # fmt: skip


@dataclass
class MemberSpec:
    """A constructor expression with its arguments evaluated (possibly symbolically)."""

    kind: str  # "op" | "block" | "seq"
    type: str
    call: S.Call
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    items: list[tuple[str | None, MemberSpec]] = field(default_factory=list)


@dataclass
class TVal:
    """A tensor in the generated forward: the variable holding it and its symbolic shape."""

    var: str
    shape: tuple[Any, ...]
    batched: bool = True  # False for a learnable tensor (`param`), whose shape is PyTorch's, without a batch


@dataclass
class TList:
    """A list of tensors in the generated forward: the expression holding it and its items' shapes, as entries:
    `("one", shape)` an item, `("run", count, shape)` `count` items (a loop's appends), `("open",)` what a list held
    before the iteration of a loop being written (unknown), `("whole", shape)` items of unknown number whose join on
    channels has `shape` (a forward's first input that is a list: the block's input)."""

    var: str
    entries: tuple[tuple[Any, ...], ...]

    def shapes(self, entries: tuple[tuple[Any, ...], ...] | None = None) -> list[tuple[Any, ...]]:
        out = []
        for e in self.entries if entries is None else entries:
            if e[0] == "either":
                out += self.shapes(e[2]) + self.shapes(e[3])
            elif e[0] == "whole":
                out.append((UNKNOWN, *e[1][1:]))
            elif e[0] != "open":
                out.append(e[-1])
        return out

    def uniform(self) -> tuple[Any, ...] | None:
        """The shape every item has, dimension by dimension (UNKNOWN where items differ); None if none is known."""
        shapes = self.shapes()
        if not shapes:
            return None
        if any(e[0] in ("open", "either") for e in self.entries):
            return tuple(UNKNOWN for _ in shapes[0])
        first = shapes[0]
        return tuple(d if all(same_value(d, s[k]) for s in shapes) else UNKNOWN for k, d in enumerate(first))

    def item(self, index: Any) -> tuple[Any, ...] | None:
        """The shape of item `index` (an integer, or a Sym)."""
        if isinstance(index, int) and not isinstance(index, bool) and all(e[0] == "one" for e in self.entries):
            shapes = self.shapes()
            return shapes[index] if -len(shapes) <= index < len(shapes) else None
        return self.uniform()

    def total(self, axis: int, entries: tuple[tuple[Any, ...], ...] | None = None) -> Any:
        """The size of the items joined on `axis`."""
        total: Any = 0
        for e in self.entries if entries is None else entries:
            if e[0] == "open" or (e[0] == "whole" and axis != 0):
                return UNKNOWN
            if e[0] == "either":
                then, orelse = self.total(axis, e[2]), self.total(axis, e[3])
                if is_unknown(then) or is_unknown(orelse):
                    return UNKNOWN
                size = then if same_value(then, orelse) else conditional(e[1], then, orelse)
            else:
                size = e[-1][axis] if e[0] in ("one", "whole") else e[1] * e[-1][axis]
            if same_value(size, 0):
                continue
            total = sum_channels([total, size]) if not same_value(total, 0) else size
        return total


@dataclass
class Placeholder:
    """An `__init__` line for a member whose input size the forward will tell."""

    indent: int
    name: str
    spec: MemberSpec
    optional: bool
    lines: list[str] | None = None
    condition: Any = True  # the symbolic `if`s it is declared under, joined with `and`
    # Where a forward applies it first: the input shape, and the forward `if`s (in the constructor's terms) around it.
    applied: tuple[Any, ...] | None = None
    applied_under: Any = True
    out: tuple[Any, ...] | None = None  # its output shape where it is first applied


@dataclass
class ClassCode:
    name: str
    base: str
    doc: list[str]
    signature: list[str]
    init: list[str]
    forward: list[str]
    forward_returns: str
    forward_arg: str  # the forward's parameters, annotated: `x: Tensor, shortcut: Tensor | None = None`
    extra_methods: list[str]


def _check_identifier(name: str, loc: Loc, member: bool = False, taken: set[str] | frozenset[str] = frozenset()) -> None:
    """Refuse a spec name that would not be itself in generated Python.

    Every name: Python keywords, the names the generated code uses, dunder names. A local (parameter, `let`, loop
    variable, forward variable): also the builtins the generated code calls and the classes and function it defines
    (`taken`). A member (an attribute of the module, or a key of a `seq`): also nn.Module's attributes and any name
    starting with `_`.
    """
    clash = keyword.iskeyword(name) or name in RESERVED or name.startswith("__")
    if member:
        clash = clash or name in MODULE_ATTRIBUTES or name.startswith("_")
    else:
        clash = clash or name in EMITTED_BUILTINS or name in taken or name in HELPER_NAMES
    if clash:
        what = "a member" if member else "a name"
        raise ArchError(
            "E070", f"`{name}` cannot be {what} in generated Python: it is taken by Python or PyTorch", loc, f"rename it, e.g. `{name}_`"
        )


class Generator:
    """Translates the definitions an architecture uses into Python classes."""

    def __init__(self, program: Program, arch: Architecture, taken: set[str]) -> None:
        self.program = program
        self.arch = arch
        # The classes and the function the module defines: no local of the generated code may shadow them.
        self.taken = taken
        self.instances: dict[str, list[ModuleNode]] = {}
        for m in arch.modules():
            if m.kind in ("block", "arch"):
                self.instances.setdefault(m.type, []).append(m)
        self.shape_runs: list[str] = []  # the definitions whose shape-only runs are under way, outermost first
        self.shape_cache: dict[str, tuple[Any, ...]] = {}
        # Whether each emitted block class takes `in_channels` (classes that never read it do not).
        self.takes_input: dict[str, bool] = {}
        # Per block: the parameters written as constants (archc/emit/specialise.py), with their values; and the
        # blocks each written class instantiates.
        self.constants: dict[str, dict[str, Any]] = {}
        self.dropped: dict[str, set[str]] = {}
        self.calls: dict[str, set[str]] = {}
        # Lists of modules: the blocks whose instances a forward applies item by item (`convs[i](x)`), written as
        # nn.ModuleList subclasses, and per definition its `seq` members applied so (written as nn.ModuleList).
        self.list_blocks: set[str] = set()
        self.list_seqs: dict[str, set[str]] = {}
        for defn in program.definitions.values():
            if defn.forward is None:
                continue
            items = {c.func for c in S.walk(defn.forward.body) if isinstance(c, S.Call) and c.item is not None}
            for member in S.walk(defn.body):
                if isinstance(member, S.Member) and member.name in items and isinstance(member.value, S.Call):
                    if member.value.func == SEQ:
                        self.list_seqs.setdefault(defn.name, set()).add(member.name)
                    elif member.value.func in program.definitions:
                        self.list_blocks.add(member.value.func)
        # Those whose items take each the output of the item before (elaboration holds a block to one way, E036).
        self.chain_blocks = {
            name
            for name in self.list_blocks
            for inst in self.instances.get(name, [])
            if any(c.input_shape[:1] != inst.input_shape[:1] for c in inst.children[1:])
        }

    def consensus(self, defn: str, relpath: str, attr: str, loc: Loc) -> Any:
        """The value of `attr` of member `relpath` that every instance of `defn` agrees on."""
        values = []
        found = []
        for inst in self.instances.get(defn, []):
            node = _find(inst, relpath)
            if node is None:
                continue
            found.append(inst)
            values.append(
                node.input_shape[0]
                if attr == "in_channels" and node.kind != "op"
                else node.attrs.get(attr, node.input_shape[0] if node.input_shape else None)
            )
        distinct = {repr(v) for v in values}
        named = self._parameter_equal(defn, found, values) if len(distinct) > 1 else None
        if named is not None:
            # Sizes that differ between instances but equal one argument in each (DLA's root, built for `root_dim`
            # channels, the tree's argument).
            return Sym(named)
        if len(distinct) != 1:
            message = f"the {attr} of `{relpath}` cannot be written in terms of {defn}'s arguments"
            raise ArchError("E073", message, loc, self._disagree_hint(defn, attr, values))
        value = values[0]
        if isinstance(value, list):
            return tuple(value)
        return self._as_parameter(defn, value)

    def _parameter_equal(self, defn: str, instances: list[ModuleNode], values: list[Any]) -> str | None:
        """The one constructor parameter of `defn` whose value in each instance is that instance's value, if any."""
        definition = self.program.definitions.get(defn)
        if definition is None or definition.kind != "block" or not instances:
            return None
        fixed = self.constants.get(defn, {})
        matches = [
            p.name
            for p in definition.params
            if p.name not in fixed
            and all(type(inst.args.get(p.name)) is int and inst.args.get(p.name) == v for inst, v in zip(instances, values, strict=True))
        ]
        return matches[0] if len(matches) == 1 else None

    def _disagree_hint(self, defn: str, attr: str, values: list[Any]) -> str:
        """What the instances of `defn` disagree on: a channel count (the widths its arguments give), or a size that
        follows the input's height and width (a `linear` after `flatten`)."""
        seen = ", ".join(dict.fromkeys(literal(v) if not isinstance(v, list) else literal(tuple(v)) for v in values))
        spatial = {tuple(inst.input_shape[1:]) for inst in self.instances.get(defn, [])}
        if attr in ("in_channels", "num_features", "num_channels"):
            return (
                f"its instances give it different channel counts ({seen}) that archc cannot derive from {defn}'s arguments:"
                f" pass that width to {defn} as an argument, or write a block per use"
            )
        if len(spatial) > 1:
            return (
                f"its instances give it different sizes ({seen}), from inputs of different heights and widths: pool to a"
                " fixed size first (adaptive_avgpool), or write a block per use"
            )
        return f"its instances give it different sizes ({seen}): pass that size to {defn} as an argument, or write a block per use"

    def _as_parameter(self, defn: str, value: Any) -> Any:
        """`value` written as the one constructor parameter of `defn` that equals it in every instance, where there
        is one (torchvision's `nn.LayerNorm(hidden_dim)` in a block on tokens, whose width is not `in_channels`)."""
        instances = self.instances.get(defn, [])
        if not instances or not isinstance(value, int) or isinstance(value, bool) or value < 2:
            return value
        definition = self.program.definitions.get(defn)
        if definition is None or definition.kind != "block":
            return value
        fixed = self.constants.get(defn, {})
        matches = [
            p.name
            for p in definition.params
            if p.name not in fixed and all(type(inst.args.get(p.name)) is int and inst.args.get(p.name) == value for inst in instances)
        ]
        return Sym(matches[0]) if len(matches) == 1 else value

    def call_arguments(
        self, defn: S.Definition, args: list[Any], kwargs: dict[str, Any], bound: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """A call's arguments as written: without the parameters the callee's class holds as constants."""
        for name, value in self.constants.get(defn.name, {}).items():
            # The class holds the value as a constant: every call gives it (specialise.py found so; a value still
            # symbolic here is a loop variable or a local the caller computes from its own constants).
            assert is_symbolic(bound[name]) or repr(bound[name]) == repr(value), (defn.name, name, bound[name])
        return call_arguments(defn, self.dropped.get(defn.name, set()), args, kwargs)

    def reachable(self, name: str) -> set[str]:
        """The classes an instance of `name` holds, at any depth."""
        seen: set[str] = set()
        todo = [name]
        while todo:
            for callee in self.calls.get(todo.pop(), set()):
                if callee not in seen:
                    seen.add(callee)
                    todo.append(callee)
        return seen

    def block_out_shape(
        self, defn: S.Definition, args: dict[str, Any], in_shape: tuple[Any, ...], last_row: bool = False
    ) -> tuple[Any, ...]:
        """`last_row`: the caller is in a loop or a symbolic branch, where a width the block leaves after a loop of
        its own must be an expression (ClassWriter.last_row)."""
        key = f"{defn.name}|{sorted((k, repr(v)) for k, v in args.items())}|{in_shape!r}|{last_row}"
        if key not in self.shape_cache:
            if defn.name in self.shape_runs and any(is_symbolic(v) for v in args.values()):
                # A block that uses itself (DLA's tree of trees), reached again with arguments in its class's terms:
                # the branch that ends the recursion is written once, and the size after this use is left to the
                # instances (`consensus`).
                return tuple(UNKNOWN for _ in in_shape)
            self.shape_runs.append(defn.name)
            try:
                writer = ClassWriter(self, defn, shape_only=True, last_row=last_row)
                self.shape_cache[key] = writer.run(args, in_shape)
            finally:
                self.shape_runs.pop()
        return self.shape_cache[key]


def _find(module: ModuleNode, relpath: str) -> ModuleNode | None:
    node = module
    for part in relpath.split("."):
        for child in node.children:
            if child.name == part:
                node = child
                break
        else:
            return None
    return node


class ClassWriter:
    """Translates one definition: into a class (emit mode) or just its output shape (shape_only)."""

    def __init__(self, gen: Generator, defn: S.Definition, shape_only: bool = False, last_row: bool = False) -> None:
        self.gen = gen
        self.defn = defn
        self.shape_only = shape_only
        # A size a loop of the block's body computes from its item (a width per row of a config list) is, after
        # the loop, the last row's: written so where a caller's loop needs it (it has no one number there);
        # elsewhere the instances' consensus gives the number, as torchvision writes it.
        self.last_row = last_row
        self.init: list[str | Placeholder] = []
        self.members: dict[str, list[Placeholder]] = {}
        self.optional_members: set[str] = set()
        # The symbolic conditions of the `if`s being written, and for each member the ones it was declared under
        # (an optional member's output shape in the forward depends on them).
        self.conditions: list[Any] = []
        self.member_conditions: dict[str, Any] = {}
        # A size after an optional member, `a if cond else b`, by its code -> cond's code and `a`: a member
        # declared under the same `if` sees `a`.
        self.guarded: dict[str, tuple[str, Any]] = {}
        self.declared = S.declared_members(defn.body)
        # A forward that runs over the members (`for layer in members`): the members are built in order, as in a block
        # without a forward, each on the tensor the loop carries to it, and the loop's name applies each in turn.
        self.members_loop = members_loop(defn.forward)
        if self.members_loop is not None:
            self.declared = self.declared | {self.members_loop.var}
        self.loop_member_shape: tuple[Any, ...] = ()
        self.forward_conditions: list[Any] = []  # the forward `if`s being written, in the constructor's terms
        # `let`s bound inside an `if` or a `for`: their value depends on the branch taken or the iteration (an
        # accumulator like `let total = total + d`), so the class computes them in Python variables.
        self.variable_lets = {
            let.name
            for stmt in S.walk(defn.body)
            if isinstance(stmt, (S.If, S.For))
            for let in S.walk(stmt.body + stmt.orelse if isinstance(stmt, S.If) else stmt.body)
            if isinstance(let, S.Let)
        }
        self.sequential = False  # emitted as an nn.Sequential subclass
        # A list of modules (applied item by item elsewhere): an nn.ModuleList subclass, each item built for the block's
        # input, and `item_shape` what every item gives.
        self.list_block = defn.name in gen.list_blocks and defn.forward is None
        # ... or its items in a chain, each built for the item before's output, as in an nn.Sequential.
        self.chain_list = self.list_block and defn.name in gen.chain_blocks
        self.item_shape: tuple[Any, ...] | None = None
        self.loop_vars: set[str] = set()  # the variables of the forward's `for i in range(...)` loops being written
        self.seq_shape: tuple[Any, ...] = ()
        self.item_count = 0
        self.forward_lines: list[str] = []
        self.forward_vars: set[str] = set()
        self.forward_params = f"{defn.forward.arg if defn.forward else 'x'}: Tensor"  # the generated forward's parameters
        self.self_scalars: dict[str, str] = {}
        self.aux_names: list[str] = []
        self.symbolic_control = 0
        self.returns = "Tensor"
        self.extra: list[str] = []
        self._start_shape: tuple[Any, ...] = ()
        self.scope = Scope()
        self.body_scope = Scope()  # the constructor's names after its body, which `init` reads
        # Where set, the block calls and `if` outcomes a shape-only run records (specialise.py).
        self.network: Network | None = None

    # Evaluation of member constructors, symbolically

    def member_spec(self, call: S.Call, scope: Scope) -> MemberSpec:
        if call.func == ops.BUFFER:
            value, persistent = build_buffer(call, scope)
            return MemberSpec("op", ops.BUFFER, call, [value], {"persistent": persistent})
        args = [evaluate(a, scope, self.member_spec) for a in call.args]
        kwargs = {k: evaluate(v, scope, self.member_spec) for k, v in call.kwargs.items()}
        if call.func == SEQ:
            for key in kwargs:
                _check_identifier(key, arg_loc(call, key), member=True)
            items: list[tuple[str | None, Any]] = [(None, a) for a in args] + list(kwargs.items())
            # Checked here too (as elaboration does): a branch the elaborator did not take is still written.
            for name, item in items:
                if not isinstance(item, MemberSpec):
                    raise ArchError("E019", f"seq takes modules, got {item!r}" + (f" for `{name}`" if name else ""), call.loc)
            return MemberSpec("seq", SEQ, call, items=items)
        # Checked here too: a branch the elaborator did not take is still written into the class.
        callee = resolve_callee(self.gen.program, call)
        if isinstance(callee, ops.Op):
            bind_op_args(callee, args, kwargs, call)
            return MemberSpec("op", call.func, call, args, kwargs)
        bind_block_args(callee, args, kwargs, call)
        return MemberSpec("block", call.func, call, args, kwargs)

    def ctor(self, spec: MemberSpec, in_shape: tuple[Any, ...], relpath: str) -> tuple[list[str], tuple[Any, ...]]:
        """Constructor source lines for a member given its input shape, and its output shape."""
        if spec.kind == "op" and spec.type == ops.BUFFER:
            # `self.register_buffer("name", <expr>)`: class_code writes the call around the expression.
            value = spec.args[0]
            return ([] if self.shape_only else [value.code.code]), value.shape
        if spec.kind == "op":
            row = ops.OPS[spec.type]
            attrs = bind_op_args(row, spec.args, spec.kwargs, spec.call)
            for name, rule in row.inferred.items():
                value = rule(in_shape)
                if is_unknown(value):
                    value = UNKNOWN if self.shape_only else self.gen.consensus(self.defn.name, relpath, name, spec.call.loc)
                attrs = {name: value, **attrs}
            try:
                out = row.shape(attrs, in_shape)
            except ops.OpError:
                out = tuple(UNKNOWN for _ in in_shape)
            if self.shape_only:
                return [], out
            cls, positional, keywords = row.module(attrs)
            return [_call(cls, positional, keywords)], out
        as_list = spec.kind == "seq" and relpath in self.gen.list_seqs.get(self.defn.name, set())
        if as_list:
            # A seq applied item by item (`convs[i](x)`): an nn.ModuleList, each item built for the same input.
            lines: list[str] = []
            shapes = []
            for i, (_, item) in enumerate(spec.items):
                item_lines, out = self.ctor(item, in_shape, f"{relpath}.{i}")
                shapes.append(out)
                if not self.shape_only:
                    item_lines[-1] += ","
                    lines.extend("        " + line for line in item_lines)
            merged = TList("", tuple(("one", o) for o in shapes)).uniform() or in_shape
            if self.shape_only:
                return [], merged
            return ["nn.ModuleList(", "    [", *lines, "    ]", ")"], merged
        if spec.kind == "seq":
            lines = []
            shape = in_shape
            named = any(n is not None for n, _ in spec.items)
            for i, (item_name, item) in enumerate(spec.items):
                key = str(i) if item_name is None else item_name
                item_lines, shape = self.ctor(item, shape, f"{relpath}.{key}")
                if self.shape_only:
                    continue
                if named:
                    item_lines = [f"({key!r}, {item_lines[0]}", *item_lines[1:]]
                    item_lines[-1] += ")"
                item_lines[-1] += ","
                lines.extend("    " + line for line in item_lines)
            if self.shape_only:
                return [], shape
            if not lines:
                return ["nn.Sequential()"], shape
            if named:
                return [
                    "nn.Sequential(",
                    "    OrderedDict(",
                    "        [",
                    *("        " + line for line in lines),
                    "        ]",
                    "    )",
                    ")",
                ], shape
            return ["nn.Sequential(", *lines, ")"], shape
        defn = self.gen.program.definitions[spec.type]
        in_channels = in_shape[0]
        if is_unknown(in_channels) and not self.shape_only:
            in_channels = self.gen.consensus(self.defn.name, relpath, "in_channels", spec.call.loc)
        bound = bind_block_args(defn, spec.args, spec.kwargs, spec.call)
        if self.network is not None:
            self.network.sites.setdefault(defn.name, []).append(bound)
        out = self.gen.block_out_shape(defn, bound, (in_channels, *in_shape[1:]), self.last_row or self.symbolic_control > 0)
        if self.shape_only:
            return [], out
        self.gen.calls.setdefault(self.defn.name, set()).add(defn.name)
        leading = [in_channels] if self.gen.takes_input.get(defn.name, True) else []
        args, kwargs = self.gen.call_arguments(defn, spec.args, spec.kwargs, bound)
        return [_call(defn.name, [*leading, *args], kwargs)], out

    # Body

    def run(self, args: dict[str, Any], in_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """Translate the definition with parameter values `args` on an input of `in_shape`; returns the output shape."""
        scope = Scope(args, in_channels=in_shape[0] if self.defn.kind == "block" else None)
        self._start_shape = in_shape
        self.body_scope = scope
        self.scope = scope
        self.body(self.defn.body, scope, 0)
        if self.members_loop is not None:
            return self.loop_forward(in_shape)
        if self.list_block:
            self.sequential = True
            if self.item_shape is None:
                return in_shape
            # A size an item takes from the loop that builds the items (`for w in widths { conv(w, 3) }`) differs
            # from item to item: unknown.
            local = {s.var for s in S.walk(self.defn.body) if isinstance(s, S.For)} | {
                s.index for s in S.walk(self.defn.body) if isinstance(s, S.For) and s.index is not None
            }
            return tuple(UNKNOWN if _mentions(d, local) or (isinstance(d, Sym) and _LOOP_VAR in d.code) else d for d in self.item_shape)
        if self.defn.forward is None:
            if self.sequential or self.symbolic_control:
                self.sequential = True
                return self.seq_shape if self.seq_shape else in_shape
            return self.chain_forward(scope, in_shape)
        return self.forward(scope, in_shape)

    def emit(self, line: str, indent: int) -> None:
        if not self.shape_only:
            self.init.append("    " * indent + line)

    def body(self, stmts: list[S.Stmt], scope: Scope, indent: int) -> None:
        for stmt in stmts:
            match stmt:
                case S.Let(name=name, value=value):
                    _check_identifier(name, stmt.loc, taken=self.gen.taken)
                    if name == "in_channels" and self.defn.kind == "block":
                        raise ArchError(
                            "E070",
                            "`in_channels` is the block's input size",
                            stmt.loc,
                            "read it as `in.channels`; name the value otherwise",
                        )
                    result = evaluate(value, scope, self.member_spec)
                    if self.shape_only or not (is_symbolic(result) or name in self.variable_lets):
                        scope.values[name] = result
                    else:
                        # A value written in terms of the constructor's variables (or a list holding such values), or
                        # one a branch or loop sets, becomes a local: it is read after as it was left.
                        self.emit(f"{name} = {literal(result)}", indent)
                        scope.values[name] = Sym(name)
                case S.Member(name=name, value=value, key=key):
                    spec = evaluate(value, scope, self.member_spec)
                    self.member(name, spec, stmt.loc, indent, None if key is None else member_name_code(key, scope, stmt.loc))
                case S.If(test=test, body=then, orelse=orelse):
                    cond = evaluate(test, scope)
                    if self.network is not None:
                        outcome = "symbolic" if isinstance(cond, Sym) else bool(cond)
                        seen = self.network.outcomes.setdefault(id(stmt), [])
                        if outcome not in seen:
                            seen.append(outcome)
                    if not isinstance(cond, Sym):
                        self.body(then if cond else orelse, scope, indent)
                        continue
                    self.symbolic_if(cond, then, orelse, scope, indent)
                case S.For(index=index, var=var, iterable=iterable, body=loop_body):
                    self.symbolic_for(index, var, iterable, loop_body, scope, indent)

    def symbolic_if(self, cond: Sym, then: list[S.Stmt], orelse: list[S.Stmt], scope: Scope, indent: int) -> None:
        optional = set()
        if self.defn.forward:
            declared = S.declared_members(then) | S.declared_members(orelse)
            optional = (
                declared - (S.declared_members(then, every_path=True) & S.declared_members(orelse, every_path=True)) - self.optional_members
            )
        in_source_order = [m.name for m in S.walk(self.defn.body) if isinstance(m, S.Member) and m.name in optional]
        for name in dict.fromkeys(in_source_order):
            self.optional_members.add(name)
            self.emit(f"self.{name} = None", indent)
        self.symbolic_control += 1
        self.enter_control(indent)
        if self.shape_only:
            start = self.seq_shape
            before = dict(scope.values)
            self.conditions.append(cond)
            self.body(then, scope, indent)
            self.conditions[-1] = negate(cond)
            then_shape = self.seq_shape
            then_values = dict(scope.values)
            scope.values.clear()
            scope.values.update(before)
            self.seq_shape = start
            self.body(orelse, scope, indent)
            self.conditions.pop()
            # A `let` either branch binds holds whichever the condition picks.
            for name in self.variable_lets & (then_values.keys() | scope.values.keys()):
                a, b = then_values.get(name, UNKNOWN), scope.values.get(name, UNKNOWN)
                scope.values[name] = UNKNOWN if is_unknown(a) or is_unknown(b) else conditional(cond, a, b)
            if then_shape and self.seq_shape:
                self.seq_shape = tuple(
                    conditional(cond, a, b) if not same_value(a, b) else a for a, b in zip(then_shape, self.seq_shape, strict=False)
                )
        else:
            keyword_ = "if"
            depth = len(self.conditions)
            while True:
                self.emit(f"{keyword_} {cond.code}:", indent)
                mark = len(self.init)
                self.conditions.append(cond)
                self.body(then, scope, indent + 1)
                self.conditions[-1] = negate(cond)
                if len(self.init) == mark:
                    self.emit("pass", indent + 1)
                # `else: if ...` reads as `elif ...` when the inner condition is symbolic too.
                if len(orelse) == 1 and isinstance(orelse[0], S.If):
                    inner = evaluate(orelse[0].test, scope)
                    if isinstance(inner, Sym):
                        cond, then, orelse, keyword_ = inner, orelse[0].body, orelse[0].orelse, "elif"
                        continue
                break
            if orelse:
                self.emit("else:", indent)
                self.body(orelse, scope, indent + 1)
            del self.conditions[depth:]
        self.symbolic_control -= 1

    def symbolic_for(self, index: str | None, var: str, iterable: S.Expr, body: list[S.Stmt], scope: Scope, indent: int) -> None:
        for n in (index, var):
            if n is not None:
                _check_identifier(n, iterable.loc, taken=self.gen.taken)
        if S.declared_members(body):
            raise ArchError(
                "E023", "members declared in a loop are numbered, not named", iterable.loc, "write the loop's members without names"
            )
        items = evaluate(iterable, scope)
        self.symbolic_control += 1
        self.enter_control(indent)
        if self.shape_only and isinstance(items, (list, tuple)):
            for i, item in enumerate(items):
                if index is not None:
                    scope.values[index] = i
                scope.values[var] = item
                self.body(body, scope, indent)
        elif self.shape_only and self.list_block and not self.chain_list:
            # Items side by side: each is built for the block's input, so one run of the body on symbols tells them.
            if index is not None:
                scope.values[index] = Sym(index)
            scope.values[var] = Sym(var)
            self.body(body, scope, indent)
        elif self.shape_only:
            self.symbolic_loop_shape(index, var, iterable, items, body, scope, indent)
        else:
            source = literal(items) if not isinstance(items, Sym) else items.code
            if isinstance(iterable, S.Call) and iterable.func == "range":
                source = _range_source(iterable, scope)
            used = S.names_used(body)
            shown_var = var if var in used else "_"
            head = f"for {index}, {shown_var} in enumerate({source}):" if index in used else f"for {shown_var} in {source}:"
            # A `let` the loop assigns again starts as a local before the loop, so each iteration sees the last.
            for stmt in S.walk(body):
                if isinstance(stmt, S.Let):
                    found, before = scope.lookup(stmt.name)
                    if found and not isinstance(before, Sym) and not isinstance(before, MemberSpec):
                        self.emit(f"{stmt.name} = {literal(before)}", indent)
                        scope.values[stmt.name] = Sym(stmt.name)
            self.emit(head, indent)
            if index is not None:
                scope.values[index] = Sym(index)
            scope.values[var] = Sym(var)
            self.body(body, scope, indent + 1)
            # Sizes after the loop that depend on the loop's own variables are unknown outside it.
            local = {n for n in (index, var) if n is not None}
            self.seq_shape = tuple(UNKNOWN if _mentions(d, local) else d for d in self.seq_shape)
        self.symbolic_control -= 1

    def symbolic_loop_shape(
        self, index: str | None, var: str, iterable: S.Expr, items: Any, body: list[S.Stmt], scope: Scope, indent: int
    ) -> None:
        """The shape after a loop whose iterations are not known (shape_only): the body runs once on stand-ins for the
        sizes it starts from. A size the body leaves as it found it stays; one it grows by an amount that does not
        depend on the iteration (DenseNet's `channels + growth_rate`) grows by that amount times the number of
        iterations; any other size after the loop is unknown (the instances' consensus then decides, or E073)."""
        before = self.seq_shape if self.seq_shape else self.start_shape
        stand_ins = tuple(d if is_unknown(d) else Sym(f"{_LOOP_SIZE}{k}") for k, d in enumerate(before))
        self.seq_shape = stand_ins
        # The loop's variables under names of their own: the arguments this class was given are in its caller's
        # terms, where the same name may be the caller's loop variable (VoVNet's `stage_out_chs[i]` passed to a
        # stage whose blocks loop on `i` too), a size the loop does not change.
        local = {f"{_LOOP_VAR}{n}" for n in (index, var) if n is not None}
        if index is not None:
            scope.values[index] = Sym(f"{_LOOP_VAR}{index}")
        scope.values[var] = Sym(f"{_LOOP_VAR}{var}")
        self.body(body, scope, indent)
        after = self.seq_shape
        count: Any = UNKNOWN
        if isinstance(iterable, S.Call) and iterable.func == "range" and len(iterable.args) == 1:
            count = evaluate(iterable.args[0], scope)
        elif isinstance(items, Sym):
            count = Sym(f"len({items.code})")
        shape = []
        for start, stand_in, end in zip(before, stand_ins, after, strict=True):
            if same_value(end, stand_in):
                shape.append(start)
            elif not (isinstance(end, Sym) and _LOOP_SIZE in end.code):
                # Set by the body, whatever it started from: the last iteration's value; the loop's item itself
                # (`for c in widths { conv(c, 3) }`) is the list's last.
                if isinstance(end, Sym) and end.code == f"{_LOOP_VAR}{var}":
                    shape.append(Sym(f"{items.code}[-1]") if isinstance(items, Sym) else UNKNOWN)
                elif _mentions(end, local):
                    shape.append(_last_iteration(end, items, var, index) if self.last_row else UNKNOWN)
                else:
                    shape.append(end)
            else:
                step = _growth(end, stand_in)
                fixed = step is not None and not (_mentions(step, local) or _LOOP_SIZE in step.code or is_unknown(count))
                shape.append(start + count * step if fixed else UNKNOWN)
        self.seq_shape = tuple(shape)
        # Over a list known only at run time, what the body's `let`s hold after the loop is unknown here.
        for let in S.walk(body):
            if isinstance(let, S.Let):
                scope.values[let.name] = UNKNOWN

    def enter_control(self, indent: int) -> None:
        """A sequential body entering a loop or symbolic branch tracks its channels in a variable."""
        if (self.defn.forward is not None and self.members_loop is None) or self.shape_only:
            return
        self.sequential = True
        if self.list_block and not self.chain_list:
            return
        if not self.seq_shape:
            self.seq_shape = self.start_shape
        if not (isinstance(self.seq_shape[0], Sym) and self.seq_shape[0].code == "channels"):
            self.emit(f"channels = {literal(self.seq_shape[0])}", indent)
            self.seq_shape = (Sym("channels"), *(UNKNOWN for _ in self.seq_shape[1:]))

    def member(self, name: str | None, spec: Any, loc: Loc, indent: int, computed: str | None = None) -> None:
        """`computed`: the Python expression of a name the spec computes (or quotes: not an identifier)."""
        if not isinstance(spec, MemberSpec):
            raise ArchError("E019", f"a member must be a module, got {spec!r}", loc, "use `let` for values")
        if name is not None and not name.isidentifier():
            computed = quoted(name)
            name = None
        if name is not None:
            _check_identifier(name, loc, member=True)
            present: Any = True
            for cond in self.conditions:
                present = boolean("and", present, cond)
            self.member_conditions[name] = present
        if self.defn.forward is not None and self.members_loop is None:
            if name is None:
                raise ArchError("E024", "a block with a forward names its members", loc, "give it a name: `name = ...`")
            placeholder = Placeholder(indent, name, spec, name in self.optional_members, condition=self.member_conditions[name])
            self.members.setdefault(name, []).append(placeholder)
            if not self.shape_only:
                self.init.append(placeholder)
            return
        # Without a forward, members run in order, so each one's input is the previous one's output.
        if name is None:
            self.sequential = True
        if not self.seq_shape:
            self.seq_shape = self.start_shape
        key = name if name is not None else computed.removeprefix("f").strip('"') if computed else str(self.item_count)
        self.item_count += 1
        lines, out = self.ctor(spec, self.seq_shape, key)
        if not self.shape_only:
            if computed is not None:
                lines = [f"self.add_module({computed}, {lines[0]}", *lines[1:]]
                lines[-1] += ")"
            elif name is None:
                lines = [f"self.append({lines[0]}", *lines[1:]]
                lines[-1] += ")"
            else:
                lines = [f"self.{name} = {lines[0]}", *lines[1:]]
            for line in lines:
                self.emit(line, indent)
            self.members[key] = [Placeholder(indent, key, spec, False, lines)]
        if self.list_block:
            # What every item gives (a size items disagree on is unknown). Side by side, the next item takes the
            # block's input too; in a chain, the output of this one.
            before = self.item_shape
            self.item_shape = (
                out if before is None else tuple(a if same_value(a, b) else UNKNOWN for a, b in zip(before, out, strict=False))
            )
            if not self.chain_list:
                return
        if self.members_loop is not None:
            # The next member takes what the forward's loop makes of this one's input and output.
            out = self.loop_step(self.seq_shape, out)
        if self.symbolic_control and not self.shape_only and is_unknown(out[0]) and not is_unknown(self.seq_shape[0]):
            # The channels the next member takes would be left as they were: wrong widths in the generated module.
            raise ArchError(
                "E073",
                f"the channels after this member cannot be written in terms of {self.defn.name}'s arguments",
                loc,
                "give the block that this member builds an output width it takes as an argument, or write the loop out",
            )
        if self.symbolic_control and not self.shape_only and not same_value(out[0], self.seq_shape[0]) and not is_unknown(out[0]):
            self.emit(f"channels = {literal(out[0])}", indent)
            out = (Sym("channels"), *(UNKNOWN for _ in out[1:]))
        self.seq_shape = out

    @property
    def start_shape(self) -> tuple[Any, ...]:
        return self._start_shape

    # Forward

    def loop_step(self, running: tuple[Any, ...], member_out: tuple[Any, ...]) -> tuple[Any, ...]:
        """The shape the forward's loop over the members carries on, given the shape it carried to a member and that
        member's output shape: its body run on them, symbolically, writing nothing."""
        assert self.members_loop is not None and self.defn.forward is not None
        saved = self.forward_lines, set(self.forward_vars)
        self.forward_lines = []
        self.loop_member_shape = member_out
        arg = self.defn.forward.arg
        env: dict[str, Any] = {arg: TVal(arg, running)}
        self.forward_stmts(self.members_loop.body, env, running)
        self.forward_lines, self.forward_vars = saved
        carried = env[arg]
        return carried.shape if isinstance(carried, TVal) else running

    def loop_forward(self, in_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """`for layer in members { ... } return x`: a Python loop over the module's children."""
        assert self.members_loop is not None and self.defn.forward is not None
        arg, var = self.defn.forward.arg, self.members_loop.var
        if arg != "x":
            _check_identifier(arg, self.defn.forward.loc, taken=self.gen.taken)
        _check_identifier(var, self.defn.forward.loc, taken=self.gen.taken)
        self.forward_vars = {arg, var}
        self.line(f"for {var} in self.children():")
        mark = len(self.forward_lines)
        self.loop_member_shape = tuple(UNKNOWN for _ in in_shape)
        self.forward_stmts(self.members_loop.body, {arg: TVal(arg, tuple(UNKNOWN for _ in in_shape))}, in_shape)
        self.forward_lines[mark:] = ["    " + line for line in self.forward_lines[mark:]]
        self.line(f"return {arg}")
        return self.seq_shape if self.seq_shape else in_shape

    def chain_forward(self, scope: Scope, in_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """A forward that applies the named members in order."""
        self.forward_lines = [self.apply_line(name, "x", "x") for name in self.members]
        self.forward_vars = {"x"}
        self.forward_lines.append("return x")
        return self.seq_shape if self.seq_shape else in_shape

    def forward(self, scope: Scope, in_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        assert self.defn.forward is not None
        fwd = self.defn.forward
        if fwd.arg != "x":
            _check_identifier(fwd.arg, fwd.loc, taken=self.gen.taken)
        inputs = forward_inputs(fwd)
        first = inputs[0]
        env: dict[str, Any] = {fwd.arg: TList(fwd.arg, (("whole", in_shape),)) if is_list_input(first) else TVal(fwd.arg, in_shape)}
        self.forward_vars = {fwd.arg}
        self.scope = scope
        params = [f"{fwd.arg}: {'list[Tensor]' if is_list_input(first) else 'Tensor'}"]
        for param in inputs[1:]:
            # An input the caller may leave out: None in the signature, its default computed first thing, as timm's
            # DLA writes `if shortcut is None: shortcut = x`.
            _check_identifier(param.name, param.loc, taken=self.gen.taken)
            listed = is_list_input(param)
            params.append(
                f"{param.name}: {'list[Tensor]' if listed else 'Tensor'}" + (" | None = None" if param.default is not None else "")
            )
            self.forward_vars.add(param.name)
            unknown = tuple(UNKNOWN for _ in in_shape)
            if param.default is not None:
                self.line(f"if {param.name} is None:")
                mark = len(self.forward_lines)
                value = self.tensor(param.default, env, param.name)
                var = value.var if isinstance(value, (TVal, TList)) else None
                if var is None:
                    raise ArchError("E081", f"the default of input `{param.name}` is not a tensor or a list of tensors", param.default.loc)
                if var != param.name:
                    self.line(f"{param.name} = {var}")
                self.forward_lines[mark:] = ["    " + line for line in self.forward_lines[mark:]]
            env[param.name] = TList(param.name, (("open",),)) if listed else TVal(param.name, unknown)
        self.forward_params = ", ".join(params)
        shape, _ = self.forward_stmts(fwd.body, env, in_shape)
        if shape is not None:
            return shape
        raise ArchError("E083", "forward has no `return`", fwd.loc, "end it with `return ...`")

    def forward_stmts(self, stmts: list[S.Stmt], env: dict[str, Any], in_shape: tuple[Any, ...]) -> tuple[tuple[Any, ...] | None, bool]:
        """Write forward statements; returns the shape of the first value returned (None if none is) and whether
        every path through them ends in a `return`."""
        shape: tuple[Any, ...] | None = None
        # The `if`s before here that returned on one path only: the shape returned there, and its condition, for the
        # block's output size (`out if radix > 1 else out * radix`) in the constructor's terms.
        returned: list[tuple[Any, tuple[Any, ...], bool]] = []
        for stmt in stmts:
            if isinstance(stmt, S.Assign) and self.appends(stmt, env):
                continue
            if isinstance(stmt, S.Assign):
                if stmt.name != "x":
                    _check_identifier(stmt.name, stmt.loc, taken=self.gen.taken)
                if stmt.aux:
                    self.aux_names.append(stmt.name)
                    self.line(f"{stmt.name}: Tensor | None = None")
                    source = stmt.value
                    # `aux a = head?(x)`: no head, no auxiliary output (None), as torchvision's aux_logits=False.
                    if isinstance(source, S.Call) and source.optional and source.func in self.declared:
                        if source.func not in self.members:
                            env[stmt.name] = None
                            self.forward_vars.add(stmt.name)
                            continue
                        source = S.Call(source.loc, source.func, source.args, source.kwargs, False)
                        guard = f"if self.training and self.{source.func} is not None:"
                    else:
                        guard = "if self.training:"
                    self.line(guard)
                    mark = len(self.forward_lines)
                    value = self.tensor(source, env, stmt.name)
                    self.forward_lines[mark:] = ["    " + line for line in self.forward_lines[mark:]]
                else:
                    value = self.tensor(stmt.value, env, stmt.name)
                if isinstance(value, TVal) and value.var != stmt.name:
                    self.line(f"{stmt.name} = {value.var}")
                    value = TVal(stmt.name, value.shape, value.batched)  # a learnable tensor named stays one
                if isinstance(value, TList) and value.var != stmt.name:
                    self.line(f"{stmt.name} = {value.var}")
                    value = TList(stmt.name, value.entries)
                env[stmt.name] = value
                self.forward_vars.add(stmt.name)
            elif isinstance(stmt, S.Return):
                # With one value the result may overwrite the variable it starts from; with several, later values
                # may still read it.
                targets = [self.return_target(v, env) if len(stmt.values) == 1 else "out" for v in stmt.values]
                outs = [self.tensor(v, env, t) for v, t in zip(stmt.values, targets, strict=True)]
                names = [
                    o.var if isinstance(o, TVal) else v.name if isinstance(v, S.Name) and v.name in self.aux_names else literal(o)
                    for o, v in zip(outs, stmt.values, strict=True)
                ]
                if len(outs) == 1:
                    self.line(f"return {names[0]}")
                else:
                    types = ", ".join("Tensor | None" if n in self.aux_names else "Tensor" for n in names)
                    self.returns = f"tuple[{types}]"
                    self.line("if torch.jit.is_scripting():")
                    self.line(f"    return {', '.join(names)}")
                    self.line(f"return self.eager_outputs({', '.join(names)})")
                    main = [n for n in names if n not in self.aux_names]
                    aux = [n for n in names if n in self.aux_names]
                    params = ", ".join(f"{n}: {'Tensor | None' if n in self.aux_names else 'Tensor'}" for n in names)
                    self.extra.append(
                        "\n".join(
                            [
                                "@torch.jit.unused",
                                f"def eager_outputs(self, {params}) -> {self.returns}:",
                                "    # Auxiliary outputs exist in training mode only, and only where their heads were built;",
                                "    # otherwise the main output comes alone, as torchvision returns it.",
                                f"    if self.training and ({' or '.join(f'{n} is not None' for n in aux)}):",
                                f"        return {', '.join(names)}",
                                f"    return {main[0]}  # type: ignore[return-value]",
                            ]
                        )
                    )
                first = outs[0]
                return _after_early_returns(returned, first.shape if isinstance(first, TVal) else in_shape), True
            elif isinstance(stmt, S.Unpack):
                self.unpack(stmt, env)
            elif isinstance(stmt, S.For) and is_range_loop(stmt):
                loop_shape, ended = self.range_loop(stmt, env, in_shape)
                shape = shape if shape is not None else loop_shape
            elif isinstance(stmt, S.If):
                branch_shape, ended, partial = self.forward_if(stmt, env, in_shape)
                if ended:
                    assert branch_shape is not None
                    return _after_early_returns(returned, branch_shape), True
                if partial is not None:
                    returned.append(partial)
                shape = shape if shape is not None else branch_shape
        return shape, False

    def appends(self, stmt: S.Assign, env: dict[str, Any]) -> bool:
        """`xs = xs + [y]`, written `xs.append(y)` (`xs.extend([y, z])`), as torchvision grows a list of outputs."""
        value, grown = stmt.value, env.get(stmt.name)
        if stmt.aux or not isinstance(grown, TList) or not isinstance(value, S.BinOp) or value.op != "+":
            return False
        if not (isinstance(value.left, S.Name) and value.left.name == stmt.name and isinstance(value.right, S.ListLit)):
            return False
        parts = [self.tensor(item, env, self.fresh(_hint_name(item))) for item in value.right.items]
        if not all(isinstance(p, TVal) for p in parts):
            raise not_a_list(value.right.loc, "tensors")
        names = [p.var for p in parts]
        self.line(f"{stmt.name}.append({names[0]})" if len(names) == 1 else f"{stmt.name}.extend([{', '.join(names)}])")
        env[stmt.name] = TList(stmt.name, grown.entries + tuple(("one", p.shape) for p in parts))
        return True

    def range_loop(self, stmt: S.For, env: dict[str, Any], in_shape: tuple[Any, ...]) -> tuple[tuple[Any, ...] | None, bool]:
        """`for i in range(n) { ... }`: a Python loop, its body written once for any `i`. The body first runs, writing
        nothing, as the first iteration (which binds the names a later iteration reads, as Res2Net's `sp`); then it is
        written on `i`, starting from what an iteration leaves: a tensor's sizes that the iteration changes are unknown
        after it, and a list it appends to holds `count` more such items after the loop."""
        var = stmt.var
        _check_identifier(var, stmt.loc, taken=self.gen.taken)
        code = range_bounds(stmt, self.scalar)
        sizes = range_bounds(stmt, lambda e: evaluate(e, self.scope))
        start = sizes[0] if len(sizes) > 1 else 0
        count: Any = UNKNOWN
        if len(sizes) == 1:
            count = sizes[0]
        elif len(sizes) == 2:
            count = sizes[1] - start
        outer_scope = self.scope
        saved = self.forward_lines, set(self.forward_vars), dict(self.guarded)
        # The first iteration, written nowhere.
        self.forward_lines = []
        self.scope = Scope({var: start}, parent=outer_scope)
        first = dict(env)
        self.forward_stmts(stmt.body, first, in_shape)
        self.forward_lines, self.forward_vars, self.guarded = saved
        entering = dict(env)
        for name, value in first.items():
            before = env.get(name)
            if before is None:
                entering[name] = value
            elif isinstance(value, TVal) and isinstance(before, TVal):
                merged = tuple(a if same_value(a, b) else UNKNOWN for a, b in zip(before.shape, value.shape, strict=False))
                entering[name] = TVal(before.var, merged)
            elif isinstance(value, TList) and isinstance(before, TList) and value.entries != before.entries:
                entering[name] = TList(before.var, (("open",),))
        # Any iteration, written.
        self.line(f"for {var} in range({', '.join(literal(c) for c in code)}):")
        mark = len(self.forward_lines)
        self.forward_vars.add(var)
        self.loop_vars.add(var)
        self.scope = Scope({var: Sym(var)}, parent=outer_scope)
        after = dict(entering)
        _, ended = self.forward_stmts(stmt.body, after, in_shape)
        self.scope = outer_scope
        self.loop_vars.discard(var)
        if len(self.forward_lines) == mark:
            self.line("pass")
        self.forward_lines[mark:] = ["    " + line for line in self.forward_lines[mark:]]
        for name, value in after.items():
            before = env.get(name)
            if isinstance(value, TList) and value.entries[:1] == (("open",),):
                appended = value.entries[1:]
                if isinstance(before, TList) and all(e[0] == "one" for e in appended) and not is_unknown(count):
                    value = TList(name, before.entries + tuple(("run", count, e[1]) for e in appended))
                else:
                    value = TList(name, (("open",),))
            elif isinstance(value, TVal) and isinstance(entering.get(name), TVal):
                was = entering[name]
                value = TVal(value.var, tuple(a if same_value(a, b) else UNKNOWN for a, b in zip(was.shape, value.shape, strict=False)))
            env[name] = value
        return None, False

    def forward_if(
        self, stmt: S.If, env: dict[str, Any], in_shape: tuple[Any, ...]
    ) -> tuple[tuple[Any, ...] | None, bool, tuple[Any, tuple[Any, ...], bool] | None]:
        """A forward `if`: only the branch taken where the class fixes the condition, else `if`/`else` in Python
        on the constructor's values (`if self.use_res_connect:`). Returns the shape returned (merged over the paths
        where both return), whether every path returns, and where one path only returns: its condition in the
        constructor's terms, the shape it returns, and whether it is the `if` path."""
        cond = self.scalar(stmt.test)
        if not isinstance(cond, Sym):
            return (*self.forward_stmts(stmt.body if forward_condition(cond, stmt.test) else stmt.orelse, env, in_shape), None)
        results: list[tuple[tuple[Any, ...] | None, bool]] = []
        envs: list[dict[str, Any]] = []
        # The condition in the constructor's terms (`stride == 1`), for sizes that depend on the path.
        test = evaluate(stmt.test, self.scope)
        for keyword_, branch in (("if " + cond.code, stmt.body), ("else", stmt.orelse)):
            if keyword_ == "else" and not branch:
                envs.append(dict(env))
                results.append((None, False))
                break
            self.forward_conditions.append(test if keyword_ != "else" else negate(test))
            self.line(f"{keyword_}:")
            mark = len(self.forward_lines)
            branch_env = dict(env)
            results.append(self.forward_stmts(branch, branch_env, in_shape))
            envs.append(branch_env)
            if len(self.forward_lines) == mark:
                self.line("pass")
            self.forward_lines[mark:] = ["    " + line for line in self.forward_lines[mark:]]
            self.forward_conditions.pop()
        # A tensor assigned on both paths is the same Python variable after the `if`; its size may depend on the path.
        # A path that returns does not reach what follows: there the other path's names hold.
        for i, (_, ended) in enumerate(results):
            if ended:
                env.update(envs[1 - i])
        if not any(ended for _, ended in results):
            for name in set(envs[0]) & set(envs[1]):
                a, b = envs[0][name], envs[1][name]
                if isinstance(a, TList) and isinstance(b, TList) and a.entries != b.entries:
                    # A list the branches leave different: its items after what they share depend on the path.
                    k = 0
                    while k < min(len(a.entries), len(b.entries)) and a.entries[k] == b.entries[k]:
                        k += 1
                    env[name] = TList(name, (*a.entries[:k], ("either", test, a.entries[k:], b.entries[k:])))
                if isinstance(a, TVal) and isinstance(b, TVal):
                    env[name] = TVal(name, _merge_shapes(test, a.shape, b.shape))
        if all(ended for _, ended in results):
            both = _merge_shapes(test, results[0][0], results[1][0])  # type: ignore[arg-type]
            return both, True, None
        partial = next(((test, s, i == 0) for i, (s, ended) in enumerate(results) if ended and s is not None), None)
        shapes = [s for s, _ in results if s is not None]
        return (shapes[0] if shapes else None), False, partial

    def return_target(self, expr: S.Expr, env: dict[str, Any]) -> str:
        """The variable a returned expression is computed into: the one its chain of calls starts from
        (`x = self.fc(x)`, as torchvision writes it), else `out`."""
        root = expr
        while True:
            if isinstance(root, S.Call) and root.args:
                root = root.args[0]
            elif isinstance(root, S.BinOp):
                root = root.left
            else:
                break
        if isinstance(root, S.Name) and isinstance(env.get(root.name), TVal) and root.name not in self.aux_names:
            return root.name
        return "out" if "out" not in self.aux_names else self.fresh("out")

    def line(self, text: str) -> None:
        self.forward_lines.append(text)

    def fresh(self, base: str) -> str:
        name = base
        n = 2
        while name in self.forward_vars or keyword.iskeyword(name) or name in RESERVED - {"x"}:
            name = f"{base}_{n}"
            n += 1
        self.forward_vars.add(name)
        return name

    def _seen_under(self, size: Any, cond: Any) -> Any:
        """`size` as a member declared under `cond` sees it: `a` for `a if cond else b` after an optional member."""
        if isinstance(size, Sym) and isinstance(cond, Sym) and size.code in self.guarded:
            guard, present = self.guarded[size.code]
            if guard == cond.code:
                return present
        return size

    def is_list(self, name: str, spec: MemberSpec) -> bool:
        """Whether a member's constructor makes a list of modules, applied item by item (`convs[i](x)`)."""
        if spec.kind == "seq":
            return name in self.gen.list_seqs.get(self.defn.name, set())
        return spec.kind == "block" and spec.type in self.gen.list_blocks

    def apply_member(self, name: str, x: TVal, loc: Loc, items: bool = False) -> tuple[Any, ...]:
        """Fill in the member's constructor(s) for input `x`; a member declared in both branches of an `if` has two.
        `items`: x goes to an item of a list of modules, so only the declarations that make such a list take it (a
        member may be a module in one branch and a list in the other: MixNet's `conv_pw`)."""
        outs = []
        placeholders = [p for p in self.members[name] if self.is_list(name, p.spec) == items] or self.members[name]
        for placeholder in placeholders:
            if items and placeholder.lines is not None and placeholder.out is not None:
                # The items of a list of modules stand side by side, each built for the channels of the list's first
                # input (elaboration holds every item to them, E036): a later application, at sizes a forward loop
                # has left unknown (VoVNet's chain `x = conv_mid[i](x)`), changes no constructor.
                outs.append(placeholder.out)
                continue
            shape = tuple(self._seen_under(d, placeholder.condition) for d in x.shape)
            lines, out = self.ctor(placeholder.spec, shape, name)
            placeholder.out = out
            if placeholder.lines is None:
                placeholder.lines = lines
                placeholder.applied, placeholder.applied_under = shape, self.forward_condition()
            elif placeholder.applied is not None and not all(map(same_value, shape, placeholder.applied)):
                # Applied on two paths of a forward `if` to inputs of different sizes (ShuffleNetV2's branch2 takes
                # the whole input where the unit has stride 2, half of it otherwise): sizes conditional on the path,
                # as torchvision writes `inp if (self.stride > 1) else branch_features`.
                first = placeholder.applied_under
                merged = tuple(a if same_value(a, b) else conditional(first, a, b) for a, b in zip(placeholder.applied, shape, strict=True))
                placeholder.lines, _ = self.ctor(placeholder.spec, merged, name)
            outs.append(out)
        first = outs[0]
        return tuple(d if all(same_value(d, o[i]) for o in outs) else UNKNOWN for i, d in enumerate(first))

    def tensor(self, expr: S.Expr, env: dict[str, Any], target: str) -> Any:
        """Write the lines computing `expr`; returns its TVal (or a scalar value). Results go to `target`."""
        match expr:
            case S.Name(name=name):
                if name in env:
                    return env[name]
                if name in self.members and self.members[name][0].spec.type in ops.TENSOR_MEMBERS:
                    return self.read_param(name)
                return self.scalar(expr)
            case S.Call(args=args):
                meaning = forward_call(expr, self.declared)
                if isinstance(meaning, ApplyMember):
                    return self.apply_call(expr, env, target)
                if isinstance(meaning, ApplyItem):
                    return self.apply_item(expr, env, target)
                if isinstance(meaning, Join) and len(args) == 1 and isinstance(xs := self.tensor(args[0], env, self.fresh("xs")), TList):
                    # `cat(xs)`: the tensors of a list, joined.
                    dim = join_dim(expr, self.scalar)
                    first = xs.uniform()
                    if first is None:
                        raise ArchError("E081", "cat joins one or more tensors: the list is empty", expr.loc)
                    axis = ops.dimension(dim, len(first) + 1, "cat", "dim") - 1
                    shape = (*first[:axis], xs.total(axis), *first[axis + 1 :])
                    self.line(f"{target} = torch.cat({xs.var}, {literal(dim)})")
                    return TVal(target, shape)
                if isinstance(meaning, Join):
                    parts = [self.tensor(a, env, self.fresh(_hint_name(a))) for a in args]
                    if not parts or not all(isinstance(p, TVal) for p in parts):
                        raise ArchError("E081", "cat joins one or more tensors: cat(a, b, ...)", expr.loc)
                    dim = join_dim(expr, self.scalar)
                    try:
                        shapes = ops.joined_shapes([p.shape for p in parts], [p.batched for p in parts])
                        batch = next(p.var for p in parts if p.batched)
                        axis = ops.dimension(dim, len(shapes[0]), "cat", "dim") - 1
                    except (ops.OpError, StopIteration) as e:
                        if isinstance(e, ops.OpError):
                            raise ArchError(e.code, e.message, expr.loc, e.hint) from None
                        raise ArchError("E031", "cat joins activations, not learnable tensors alone", expr.loc) from None
                    # A learnable tensor joins each sample: expanded to the batch, as torchvision's ViT expands its class token.
                    names = [
                        p.var if p.batched else f"{p.var}.expand({batch}.shape[0], {', '.join(['-1'] * len(s))})"
                        for p, s in zip(parts, shapes, strict=True)
                    ]
                    joined = sum_channels([s[axis] for s in shapes])
                    shape = (*shapes[0][:axis], joined, *shapes[0][axis + 1 :])
                    self.line(f"{target} = torch.cat([{', '.join(names)}], {literal(dim)})")
                    return TVal(target, shape)
                if isinstance(meaning, InlineOp) and meaning.op.multi:
                    return self.inline_pieces(meaning.op, expr, env, target)
                if isinstance(meaning, InlineOp):
                    return self.inline_call(meaning.op, expr, env, target)
                return self.scalar(expr)
            case S.ListLit(items=items) if items:
                parts = [self.tensor(item, env, self.fresh(_hint_name(item))) for item in items]
                if not any(isinstance(p, (TVal, TList)) for p in parts):
                    return self.scalar(expr)
                if not all(isinstance(p, TVal) for p in parts):
                    raise not_a_list(expr.loc, "a tensor (an item of a list)")
                return TList(f"[{', '.join(p.var for p in parts)}]", tuple(("one", p.shape) for p in parts))
            case S.ListLit():
                return TList("[]", ())
            case S.Index(target=target_expr, index=index):
                x = self.tensor(target_expr, env, target)
                if isinstance(x, TList):
                    # An item of a list of tensors.
                    position = self.scalar(index)
                    item_shape = x.item(evaluate(index, self.scope))
                    if item_shape is None:
                        raise ArchError("E085", f"index {literal(position)} is out of range for this list", index.loc)
                    return TVal(f"{x.var}[{literal(position)}]", item_shape)
                if not isinstance(x, TVal):
                    return self.scalar(expr)
                if not isinstance(index, (S.TupleLit, S.Slice)):
                    rows = self.tensor(index, env, self.fresh(_hint_name(index)))
                    if isinstance(rows, TVal):
                        # `table[index]`: the rows of a param or buffer picked by an integer buffer (checked by
                        # elaboration), index.shape + table.shape[1:], without a batch as the table.
                        shape = ops.output_shape(ops.OPS["gather"], {}, [x.shape, rows.shape])
                        self.line(f"{target} = {x.var}[{rows.var}]")
                        return TVal(target, shape, batched=False)
                row = ops.OPS["index"]
                attrs = {"items": tensor_subscripts(expr, self.scalar)}
                sizes = {"items": tensor_subscripts(expr, lambda e: evaluate(e, self.scope))}
                try:
                    shape = row.shape(sizes, x.shape)
                except ops.OpError as e:
                    raise ArchError(e.code, e.message, expr.loc, e.hint) from None
                assert row.code is not None
                self.line(f"{target} = {row.code(x.var, attrs)}")
                return TVal(target, shape)
            case S.BinOp(left=left, right=right):
                right_names = S.names_used(right)
                left_target = target if target not in right_names else self.fresh(target)
                lv = self.tensor(left, env, left_target)
                rv = self.tensor(right, env, self.fresh(_hint_name(right)) if isinstance(lv, TVal) else target)
                if isinstance(lv, TList) or isinstance(rv, TList):
                    if not (isinstance(lv, TList) and isinstance(rv, TList) and expr.op == "+"):
                        raise not_a_list(expr.loc, "a tensor (lists join with `+` only)")
                    return TList(f"{lv.var} + {rv.var}", lv.entries + rv.entries)
                if not isinstance(lv, TVal) and not isinstance(rv, TVal):
                    return self.scalar(expr)
                arith = tensor_arithmetic(expr, lv, rv, TVal)
                symbol = ops.SYMBOLS[arith.op]
                if isinstance(lv, TVal) and isinstance(rv, TVal):
                    try:
                        shapes = ops.operand_shapes([lv.shape, rv.shape], [lv.batched, rv.batched])
                        shape = ops.broadcast(shapes[0], shapes[1])
                    except ops.OpError as e:
                        raise ArchError(e.code, e.message, expr.loc, e.hint) from None
                    # Elaboration has checked that the operands' sizes agree, so a size an optional member made
                    # conditional (`proj?(x) + f(x)`: `w if proj exists else c`) is the other operand's plain one.
                    shape = tuple(
                        r if isinstance(d, Sym) and d.code in self.guarded and isinstance(r, Sym) and r.code not in self.guarded else d
                        for d, r in zip(shape, shapes[1], strict=True)
                    )
                    self.line(f"{target} = {lv.var} {symbol} {rv.var}")
                    return TVal(target, shape, batched=lv.batched or rv.batched)
                t, k = (lv, rv) if isinstance(lv, TVal) else (rv, lv)
                left_code, right_code = (t.var, literal(k)) if t is lv else (literal(k), t.var)
                self.line(f"{target} = {left_code} {symbol} {right_code}")
                return TVal(target, t.shape, batched=t.batched)
            case _:
                return self.scalar(expr)

    def apply_call(self, expr: S.Call, env: dict[str, Any], target: str) -> Any:
        """`member(x)` or `member?(x)`: the member's constructor filled in for x's shape, and the line applying it."""
        func, args, optional = expr.func, expr.args, expr.optional
        callee = self.callee_forward(func)
        if len(args) > 1 or expr.kwargs or (callee is not None and is_list_input(forward_inputs(callee)[0])):
            return self.apply_inputs(expr, env, target)
        x = self.tensor(args[0], env, target)
        if not isinstance(x, TVal):
            raise ArchError("E081", f"member `{func}` is applied to a tensor, got {x!r}", args[0].loc)
        if self.members_loop is not None and func == self.members_loop.var:
            self.line(f"{target} = {func}({x.var})")
            return TVal(target, self.loop_member_shape)
        if func not in self.members:
            return x
        out_shape = self.apply_member(func, x, expr.loc)
        if optional and func in self.optional_members:
            # Absent, the member passes its input on: the size after it depends on whether it exists.
            present = self.member_conditions.get(func, True)
            when_present = out_shape
            out_shape = tuple(a if same_value(a, b) else conditional(present, a, b) for a, b in zip(out_shape, x.shape, strict=False))
            for d, a in zip(out_shape, when_present, strict=False):
                if isinstance(d, Sym) and isinstance(present, Sym):
                    self.guarded[d.code] = (present.code, a)
        if optional:
            if x.var != target:
                self.line(f"{target} = {x.var}")
            self.line(f"if self.{func} is not None:")
            self.line(f"    {target} = self.{func}({x.var})")
            return TVal(target, out_shape)
        self.line(self.apply_line(func, target, x.var))
        return TVal(target, out_shape)

    def callee_forward(self, func: str) -> S.Forward | None:
        """The forward of the block a member makes (its first declaration's), None for an op or a seq."""
        spec = self.members[func][0].spec if func in self.members else None
        if spec is None or spec.kind != "block":
            return None
        return self.gen.program.definitions[spec.type].forward

    def bind_member_inputs(self, func: str, expr: S.Call, given: dict[int, Any]) -> tuple[list[S.Param], list[Any]]:
        """The inputs of the forward of member `func` and the value each takes in `expr` (None: its default), the
        arguments' values `given` by their expressions' ids. A member declared in two branches may make two blocks
        (DLA's `tree1`, a basic block or a tree): the first whose inputs the call fits."""
        forwards: list[S.Forward | None] = []
        for placeholder in self.members[func]:
            spec = placeholder.spec
            forward = self.gen.program.definitions[spec.type].forward if spec.kind == "block" else None
            if forward not in forwards:
                forwards.append(forward)
        first_error: ArchError | None = None
        for forward in forwards:
            inputs = forward_inputs(forward)
            try:
                exprs = bind_inputs(forward, expr, f"member `{func}`")
                values = [None if e is None else given[id(e)] for e in exprs]
                for param, value, e in zip(inputs, values, exprs, strict=True):
                    if e is None:
                        continue
                    if is_list_input(param) and not isinstance(value, TList):
                        raise ArchError(
                            "E081",
                            f"input `{param.name}` of member `{func}` is a list of tensors",
                            e.loc,
                            "give a list: `[a, b]`, `xs + [y]`",
                        )
                    if not is_list_input(param) and not isinstance(value, TVal):
                        if isinstance(value, TList):
                            raise not_a_list(e.loc)
                        raise ArchError("E081", f"member `{func}` is applied to a tensor, got {value!r}", e.loc)
                return inputs, values
            except ArchError as error:
                first_error = first_error or error
        assert first_error is not None
        raise first_error

    def apply_inputs(self, expr: S.Call, env: dict[str, Any], target: str) -> Any:
        """`tree1(x, shortcut)`, `tree2(x1, children = c)`: a member whose forward takes several inputs."""
        func = expr.func
        if func not in self.members:  # absent here (`m?(x, y)`): its first input
            return self.tensor(expr.args[0], env, target)
        given = {id(e): self.tensor(e, env, self.fresh(_hint_name(e))) for e in [*expr.args, *expr.kwargs.values()]}
        inputs, values = self.bind_member_inputs(func, expr, given)
        x = values[0]
        if isinstance(x, TList):
            uniform = x.uniform()
            if uniform is None:
                raise ArchError("E081", f"member `{func}` is applied to an empty list", expr.args[0].loc)
            x = TVal(x.var, (x.total(0), *uniform[1:]))
        assert isinstance(x, TVal)
        out_shape = self.apply_member(func, x, expr.loc)
        # The inputs given, by position up to the first left out, then by name.
        parts: list[str] = []
        by_name = False
        for param, value in zip(inputs, values, strict=True):
            if value is None:
                by_name = True
                continue
            parts.append(f"{param.name}={value.var}" if by_name else value.var)
        if expr.optional:
            self.line(f"{target} = {x.var}")
            self.line(f"if self.{func} is not None:")
            self.line(f"    {target} = self.{func}({', '.join(parts)})")
        else:
            self.line(f"{target} = self.{func}({', '.join(parts)})")
        return TVal(target, out_shape)

    def apply_item(self, expr: S.Call, env: dict[str, Any], target: str) -> TVal:
        """`convs[i](x)`: `self.convs[i](x)`, the list's constructor filled in for x's shape."""
        assert expr.item is not None
        x = self.tensor(expr.args[0], env, target)
        if not isinstance(x, TVal):
            raise not_a_list(expr.args[0].loc)
        out_shape = self.apply_member(expr.func, x, expr.loc, items=True)
        self.line(f"{target} = self.{expr.func}[{literal(self.scalar(expr.item))}]({x.var})")
        return TVal(target, out_shape)

    def inline_pieces(self, row: ops.Op, expr: S.Call, env: dict[str, Any], target: str) -> TList:
        """`chunk(x, n, dim = 1)`, `split(...)` assigned to one name: the list of its tensors."""
        x = self.tensor(expr.args[0], env, self.fresh("t")) if expr.args else None
        if not isinstance(x, TVal):
            raise ArchError("E081", f"inline `{row.name}` needs its input tensor first: {row.name}(x, ...)", expr.loc)
        attrs, sizes = self.inline_args(row, expr)
        try:
            count: Any = ops.pieces(row, sizes, x.shape)
        except (TypeError, ValueError):
            count = UNKNOWN
        try:
            if isinstance(count, int):
                entries: tuple[tuple[Any, ...], ...] = tuple(("one", row.shape({**sizes, "index": i}, x.shape)) for i in range(count))
            else:
                # As many pieces as the constructor's arguments say: chunk's are equal.
                count = sizes["chunks"] if row.name == "chunk" else UNKNOWN
                piece = row.shape({**sizes, "index": 0}, x.shape)
                entries = (("run", count, piece),) if not is_unknown(count) and row.name == "chunk" else (("open",),)
        except ops.OpError as e:
            raise ArchError(e.code, e.message, expr.loc, e.hint) from None
        self.line(f"{target} = {_call(row.functional or row.name, [Sym(x.var), *(attrs[n] for n in row.positional)], {})}")
        return TList(target, entries)

    def apply_line(self, member: str, out: str, x: str) -> str:
        """The statement applying a member: `out = self.m(x)`, or the op's own form (`mha`'s query, key and value)."""
        spec = self.members[member][0].spec
        row = ops.OPS.get(spec.type) if spec.kind == "op" else None
        if row is not None and row.apply is not None:
            return row.apply.format(out=out, module=f"self.{member}", x=x)
        return f"{out} = self.{member}({x})"

    def unpack(self, stmt: S.Unpack, env: dict[str, Any]) -> None:
        """`x1, x2 = chunk(x, 2, dim = 1)`: one line, as torchvision writes `x1, x2 = x.chunk(2, dim=1)`."""
        row = unpack_call(stmt, self.declared)
        call = stmt.value
        assert isinstance(call, S.Call)
        for name in stmt.names:
            if name != "x":
                _check_identifier(name, stmt.loc, taken=self.gen.taken)
        x = self.tensor(call.args[0], env, self.fresh("t")) if call.args else None
        if not isinstance(x, TVal):
            raise ArchError("E081", f"inline `{row.name}` needs its input tensor first: {row.name}(x, ...)", call.loc)
        attrs, sizes = self.inline_args(row, call)
        try:
            shapes = [row.shape({**sizes, "index": i}, x.shape) for i in range(len(stmt.names))]
        except ops.OpError as e:
            raise ArchError(e.code, e.message, call.loc, e.hint) from None
        self.line(f"{', '.join(stmt.names)} = {_call(row.functional or row.name, [Sym(x.var), *(attrs[n] for n in row.positional)], {})}")
        for name, shape in zip(stmt.names, shapes, strict=True):
            env[name] = TVal(name, shape)
            self.forward_vars.add(name)

    def forward_condition(self) -> Any:
        """The forward `if`s around the statement being written, joined with `and` (True outside any)."""
        present: Any = True
        for cond in self.forward_conditions:
            present = boolean("and", present, cond)
        return present

    def inline_args(self, row: ops.Op, call: S.Call) -> tuple[dict[str, Any], dict[str, Any]]:
        """An inline op's arguments after its tensor, twice: in the forward's terms (`self.groups`, for the call)
        and in the constructor's (`groups`, for the sizes of the members it feeds)."""
        args, kwargs = call.args[1:], call.kwargs
        attrs = bind_op_args(row, [self.scalar(a) for a in args], {k: self.scalar(v) for k, v in kwargs.items()}, call)
        sizes = bind_op_args(row, [evaluate(a, self.scope) for a in args], {k: evaluate(v, self.scope) for k, v in kwargs.items()}, call)
        return attrs, sizes

    def read_param(self, name: str) -> TVal:
        """A learnable tensor read in the forward: the attribute holding it, its constructor written once."""
        shapes = []
        for placeholder in self.members[name]:
            lines, shape = self.ctor(placeholder.spec, (), name)
            if placeholder.lines is None:
                placeholder.lines = lines
            shapes.append(shape)
        return TVal(f"self.{name}", shapes[0], batched=False)

    def operands_call(self, row: ops.Op, expr: S.Call, env: dict[str, Any], target: str) -> TVal:
        """An op of several tensors applied inline: `q @ k`, `F.scaled_dot_product_attention(q, k, v)`."""
        args = expr.args
        if len(args) < row.operands:
            raise ArchError("E081", f"`{row.name}` takes {row.operands} tensors first: {operands_example(row)}", expr.loc)
        values: list[TVal] = []
        for i, a in enumerate(args[: row.operands]):
            later = set().union(*(S.names_used(b) for b in args[i + 1 : row.operands]))
            v = self.tensor(a, env, target if i == 0 and target not in later else self.fresh(_hint_name(a)))
            if isinstance(v, TList):
                raise not_a_list(a.loc)
            if not isinstance(v, TVal):
                raise ArchError("E081", f"`{row.name}` takes {row.operands} tensors first: {operands_example(row)}", a.loc)
            values.append(v)
        rest, kwargs = args[row.operands :], expr.kwargs
        attrs = bind_op_args(row, [self.scalar(a) for a in rest], {k: self.scalar(v) for k, v in kwargs.items()}, expr)
        sizes = bind_op_args(row, [evaluate(a, self.scope) for a in rest], {k: evaluate(v, self.scope) for k, v in kwargs.items()}, expr)
        try:
            shapes = ops.operand_shapes([v.shape for v in values], [v.batched for v in values])
            shape = ops.output_shape(row, sizes, shapes)
        except ops.OpError as e:
            raise ArchError(e.code, e.message, expr.loc, e.hint) from None
        if row.infix is not None:
            self.line(f"{target} = {f' {row.infix} '.join(v.var for v in values)}")
            return TVal(target, shape)
        defaults = dict(row.args)
        keywords = {k: v for k, v in attrs.items() if not same_value(v, defaults[k])}
        self.line(f"{target} = {_call(row.functional or row.name, [Sym(v.var) for v in values], keywords)}")
        return TVal(target, shape)

    def inline_call(self, row: ops.Op, expr: S.Call, env: dict[str, Any], target: str) -> Any:
        """An op applied inline: its functional form (`F.relu(x)`)."""
        if row.operands > 1:
            return self.operands_call(row, expr, env, target)
        func, args = expr.func, expr.args
        x = self.tensor(args[0], env, target) if args else None
        if not isinstance(x, TVal):
            raise ArchError("E081", f"inline `{func}` needs its input tensor first: {func}(x, ...)", expr.loc)
        params: list[Any] = [Sym(x.var)]
        if row.name == WEIGHT_CONV:
            weight = self.tensor(args[1], env, self.fresh("weight")) if len(args) > 1 else None
            if not isinstance(weight, TVal):
                raise ArchError("E081", "conv2d takes its input and then its weight: conv2d(x, weight, ...)", expr.loc)
            rest, kwargs = args[2:], expr.kwargs
            attrs = bind_op_args(row, [weight.shape, *map(self.scalar, rest)], {k: self.scalar(v) for k, v in kwargs.items()}, expr)
            sizes = bind_op_args(
                row, [weight.shape, *(evaluate(a, self.scope) for a in rest)], {k: evaluate(v, self.scope) for k, v in kwargs.items()}, expr
            )
            params.append(Sym(weight.var))
        else:
            attrs, sizes = self.inline_args(row, expr)
        own = not x.batched and row.name in ops.OWN_DIMS  # a learnable or fixed tensor's own dimensions, 0 its first
        try:
            shape = row.shape(ops.own_dims(row.name, sizes) if own else sizes, x.shape)
        except ops.OpError as e:
            raise ArchError(e.code, e.message, expr.loc, e.hint) from None
        if own:
            moved = attrs["dims"] if row.name == "permute" else (attrs["dim0"], attrs["dim1"])
            self.line(f"{target} = {x.var}.{row.name}({', '.join(literal(v) for v in moved)})")
            return TVal(target, shape, batched=False)
        if not x.batched and row.name == "reshape":
            # A learnable tensor has no batch: its whole shape is the sizes (`self.gamma.reshape(1, -1, 1, 1)`).
            self.line(f"{target} = {x.var}.reshape({', '.join(literal(v) for v in attrs['sizes'])})")
            return TVal(target, shape, batched=False)
        if row.code is not None:
            self.line(f"{target} = {row.code(x.var, attrs)}")
            return TVal(target, shape, batched=x.batched or row.name not in ops.ELEMENTWISE)
        defaults = dict(row.args)
        keywords = {k: v for k, v in attrs.items() if k != "weight" and not same_value(v, defaults[k])}
        # Arguments the function takes by position: the first always (`torch.flatten(x, 1)`), later ones up to the
        # last that differs from its default.
        shown = [n for i, n in enumerate(row.positional) if (i == 0 or any(k in keywords for k in row.positional[i:])) and n != "weight"]
        for name in shown:
            params.append(attrs[name])
            keywords.pop(name, None)
        if row.uses_training:
            keywords["training"] = Sym("self.training")
        self.line(f"{target} = {_call(row.functional or func, params, keywords)}")
        return TVal(target, shape, batched=x.batched or row.name not in ops.ELEMENTWISE)

    def scalar(self, expr: S.Expr) -> Any:
        """A non-tensor value in the forward; constructor arguments it uses become attributes (`self.scale`)."""
        value = evaluate(expr, self.scope)
        if is_symbolic(value):
            for name in sorted(S.names_used(expr)):
                found, v = self.scope.lookup(name)
                if found and isinstance(v, Sym) and name not in self.self_scalars and name not in self.loop_vars:
                    _check_identifier(name, expr.loc, member=True)
                    self.self_scalars[name] = v.code
            reads_input = any(isinstance(n, S.InputAttr) for n in S.walk(expr))
            if reads_input and isinstance(self.scope.in_channels, Sym):
                self.self_scalars.setdefault("in_channels", self.scope.in_channels.code)
            value = evaluate(
                expr,
                Scope(
                    {n: Sym(f"self.{n}") for n in self.self_scalars},
                    parent=self.scope,
                    in_channels=Sym("self.in_channels") if reads_input else None,
                ),
            )
        return value

    # Output

    def class_code(self, signature: Signature, class_name: str, doc: str) -> ClassCode:
        init: list[str] = list(signature.prologue)
        for item in self.init:
            if isinstance(item, Placeholder):
                if item.lines is None:
                    raise ArchError("E021", f"member `{item.name}` is never used in the forward", item.spec.call.loc, "use it or remove it")
                if item.spec.kind == "op" and item.spec.type == ops.BUFFER:
                    persistent = item.spec.kwargs["persistent"]
                    flag = "" if persistent is True else f", persistent={literal(persistent)}"
                    init.append("    " * item.indent + f'self.register_buffer("{item.name}", {item.lines[0]}{flag})')
                    continue
                prefix = "    " * item.indent + f"self.{item.name} = "
                init.append(prefix + item.lines[0])
                init.extend("    " * item.indent + line for line in item.lines[1:])
            else:
                init.append(item)
        for name, code in self.self_scalars.items():
            init.append(f"self.{name} = {code}")
        if not any(re.search(r"\bchannels\b", line) for line in init if not line.lstrip().startswith("channels = ")):
            init = [line for line in init if not line.lstrip().startswith("channels = ")]
        init += init_lines(self.gen.program.definitions, self.gen.arch, self.defn, self.body_scope, self.gen.reachable(self.defn.name))
        init = _fill_empty_blocks(init)
        base = "nn.ModuleList" if self.list_block else "nn.Sequential" if self.sequential else "nn.Module"
        return ClassCode(
            class_name,
            base,
            docstring_lines(doc),
            signature.params,
            init,
            [] if self.sequential and self.members_loop is None else self.forward_lines,
            self.returns,
            self.forward_params,
            self.extra,
        )


def _fill_empty_blocks(lines: list[str]) -> list[str]:
    """Insert `pass` into any `if`/`else`/`for` block left without a body."""
    out: list[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        if line.rstrip().endswith(":"):
            indent = len(line) - len(line.lstrip())
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if len(following) - len(following.lstrip()) <= indent or not following.strip():
                out.append(" " * (indent + 4) + "pass")
    return out


# The stand-in for a size at the start of a loop's body (symbolic_loop_shape): no spec name starts with `__`.
_LOOP_SIZE = "__loop_size_"
_LOOP_VAR = "__loop_var_"  # a loop variable, in a loop whose shape after it is worked out symbolically


def _growth(end: Any, start: Sym) -> Sym | None:
    """`step` where `end` is the source of `start + step` or `step + start`, else None."""
    # A sum at the top (precedence of `+`): `+` and `-` associate to the left, so `start + a - b` is `start + (a - b)`
    # and in `a - b + start` the left operand is `a - b`; a conditional or comparison around the sum is not a sum.
    if not isinstance(end, Sym) or end.prec != 6:
        return None
    if end.code.startswith(f"{start.code} + "):
        step = end.code[len(start.code) + 3 :]
    elif end.code.endswith(f" + {start.code}"):
        step = end.code[: -len(start.code) - 3]
    else:
        return None
    if not _balanced(step):
        return None
    if step.isidentifier() or step.isdigit() or (step.startswith("(") and step.endswith(")") and _balanced(step[1:-1])):
        return Sym(step)
    # Parenthesised as a sum wherever it is used, unless no `+` or `-` sits outside its brackets.
    depth, top_level_sum = 0, False
    for i, ch in enumerate(step):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0)
        top_level_sum = top_level_sum or (depth == 0 and step[i : i + 3] in (" + ", " - "))
    return Sym(step, 6 if top_level_sum else 7)


def _last_iteration(end: Sym, items: Any, var: str, index: str | None) -> Any:
    """A size the body computes from the loop's variables (a width per row of a config list, GhostNet's rounded
    `out_chs * width`), after the loop: that of the last row, `items[-1]` for the item and `len(items) - 1` for the
    index, when the list is a constructor argument; else unknown."""
    if not isinstance(items, Sym):
        return UNKNOWN
    source = items.code if items.prec >= Sym("").prec else f"({items.code})"
    code = re.sub(rf"\b{re.escape(_LOOP_VAR + var)}\b", lambda _: f"{source}[-1]", end.code)
    if index is not None:
        code = re.sub(rf"\b{re.escape(_LOOP_VAR + index)}\b", lambda _: f"(len({items.code}) - 1)", code)
    return Sym(code, end.prec)


def _balanced(code: str) -> bool:
    depth = 0
    for ch in code:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _mentions(value: Any, names: set[str]) -> bool:
    """Whether a symbolic value's source uses any of `names`."""
    return isinstance(value, Sym) and any(re.search(rf"\b{re.escape(n)}\b", value.code) for n in names)


def sum_channels(values: list[Any]) -> Any:
    total: Any = 0
    for v in values:
        total = total + v
    return total


def _range_source(call: S.Call, scope: Scope) -> str:
    args = [evaluate(a, scope) for a in call.args]
    return f"range({', '.join(literal(a) for a in args)})"


def _hint_name(expr: S.Expr) -> str:
    if isinstance(expr, S.Call):
        return expr.func
    return "t"


def _call(func: str, positional: list[Any], keywords: dict[str, Any]) -> str:
    parts = [literal(p) for p in positional] + [f"{k}={literal(v)}" for k, v in keywords.items()]
    return f"{func}({', '.join(parts)})"


# The annotation of a plain value, by type; bool before int (a bool is an int). Anything else (a Sym) is Any.
_ATOMS: tuple[tuple[type, str], ...] = ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"))


@dataclass
class _Kinds:
    """The Python types of some values, lists and tuples merged by their items' types: the rows `[3, 16, 0.25]`
    and `[5, 40, 0]` make `list[float | int]`, not `list[float | int] | list[int]`."""

    atoms: set[str] = field(default_factory=set)
    lists: _Kinds | None = None
    tuples: _Kinds | None = None

    def add(self, value: Any) -> None:
        if isinstance(value, (tuple, list)):
            kinds = (self.tuples if isinstance(value, tuple) else self.lists) or _Kinds()
            for v in value:
                kinds.add(v)
            if isinstance(value, tuple):
                self.tuples = kinds
            else:
                self.lists = kinds
        else:
            self.atoms.add(next((name for kind, name in _ATOMS if isinstance(value, kind)), "Any"))

    def render(self) -> str:
        parts = set(self.atoms)
        if self.lists is not None:
            parts.add(f"list[{self.lists.render()}]")
        if self.tuples is not None:
            parts.add(f"tuple[{self.tuples.render()}, ...]")
        if not parts or "Any" in parts:
            return "Any"
        return " | ".join(sorted(parts))


def _annotation(value: Any) -> str:
    kinds = _Kinds()
    kinds.add(value)
    return kinds.render()


@dataclass
class Signature:
    """Constructor parameters, and the lines that compute defaults written in terms of earlier parameters."""

    params: list[str]
    prologue: list[str]


def _after_early_returns(returned: list[tuple[Any, tuple[Any, ...], bool]], shape: tuple[Any, ...]) -> tuple[Any, ...]:
    """The block's output shape where it returns `shape` last and earlier `if`s returned on one path only."""
    for test, branch, on_then in reversed(returned):
        shape = _merge_shapes(test, branch, shape) if on_then else _merge_shapes(test, shape, branch)
    return shape


def _merge_shapes(test: Any, then: tuple[Any, ...], orelse: tuple[Any, ...]) -> tuple[Any, ...]:
    """The shape `then if test else orelse`, per dimension; of another rank on the two paths, unknown sizes. A size
    the symbolic run could not write on one path is the other path's (the instances agree on it where it is read)."""
    if len(then) != len(orelse):
        return tuple(UNKNOWN for _ in then)
    return tuple(
        b if is_unknown(a) or _equal_under(test, a, b) else a if is_unknown(b) or same_value(a, b) else conditional(test, a, b)
        for a, b in zip(then, orelse, strict=True)
    )


def _equal_under(test: Any, a: Any, b: Any) -> bool:
    """Whether `test` states `a == b` as one of its `and`-ed terms (MobileNetV2's `... and in.channels == oup`)."""
    if not isinstance(test, Sym) or is_unknown(a) or is_unknown(b) or not (is_symbolic(a) or is_symbolic(b)):
        return False
    terms = test.code.split(" and ")
    return f"{literal(a)} == {literal(b)}" in terms or f"{literal(b)} == {literal(a)}" in terms


def _signature(
    defn: S.Definition,
    seen_args: list[dict[str, Any]],
    with_input: bool,
    taken: set[str],
    values: dict[str, Any] | None = None,
    fixed: dict[str, Any] | None = None,
    local: set[str] | frozenset[str] = frozenset(),
) -> Signature:
    """Constructor parameters with annotations and defaults; `values` are the parameters as elaborated (with `-D`);
    `fixed`: the parameters the class holds as constants (specialise.py), with their values, which it does not take;
    those in `local` it assigns to a local of their name first.

    Annotations cover every value the elaborated instances pass (`int | tuple[int, ...]`). A default written in
    terms of other parameters, or a list (mutable in Python), becomes `None` and is filled in by the prologue.
    """
    parts = ["in_channels: int"] if with_input else []
    prologue: list[str] = []
    names = {p.name for p in defn.params}
    scope = Scope()
    fixed = fixed or {}
    symbols = Scope({n: fixed[n] if n in fixed and n not in local else Sym(n) for n in names})
    for p in defn.params:
        _check_identifier(p.name, p.loc, taken=taken)
        if with_input and p.name == "in_channels":
            raise ArchError("E070", "a block parameter cannot be named `in_channels`", p.loc, "a block's input channels are `in.channels`")
        if p.name in fixed:
            scope.values[p.name] = fixed[p.name]
            if p.name in local:
                prologue.append(f"{p.name} = {literal(fixed[p.name])}")
            continue
        samples = [values[p.name]] if values and p.name in values else [a[p.name] for a in seen_args if p.name in a]
        if p.default is None:
            parts.append(f"{p.name}: {_annotations(samples)}")
            scope.values[p.name] = samples[0] if samples else None
            continue
        default = evaluate(p.default, scope)
        overridden = bool(values and p.name in values and not same_value(values[p.name], default))
        if overridden:
            default = values[p.name]  # type: ignore[index]  # -D NAME=VALUE
        scope.values[p.name] = default
        annotation = _annotations([*samples, default])
        if S.names_used(p.default) & names and not overridden:
            # Python defaults cannot refer to other parameters: None stands for "computed from them".
            parts.append(f"{p.name}: {annotation} | None = None")
            prologue += [f"if {p.name} is None:", f"    {p.name} = {literal(evaluate(p.default, symbols))}"]
        elif isinstance(default, list):
            parts.append(f"{p.name}: {annotation} | None = None")
            prologue += [f"if {p.name} is None:", f"    {p.name} = {literal(default)}"]
        else:
            parts.append(f"{p.name}: {annotation} = {literal(default)}")
    return Signature(parts, prologue)


def _names_bound(stmt: S.Let | S.For) -> list[str]:
    if isinstance(stmt, S.Let):
        return [stmt.name]
    return [n for n in (stmt.index, stmt.var) if n is not None]


def _annotations(values: list[Any]) -> str:
    """One annotation for all the values a parameter takes."""
    kinds = _Kinds()
    for v in values:
        kinds.add(v)
    return kinds.render()


def class_name_for(arch_name: str) -> str:
    """`resnet18` -> `Resnet18`; names that are already CamelCase stay."""
    if arch_name[:1].isupper():
        return arch_name
    return "".join(part[:1].upper() + part[1:] for part in arch_name.split("_"))


@dataclass
class Variant:
    """A build other than the training module (archc/emit/inference.py): how its classes are written, the helper
    code placed before them, and a paragraph for the module docstring."""

    writer: Callable[[Generator, S.Definition], ClassWriter]
    helpers: list[str]
    note: str
    # Ops the variant writes as the identity: their helper code is not needed.
    identity_ops: frozenset[str] = frozenset()


def emit_python(
    program: Program,
    arch: Architecture,
    spec_path: str,
    function_name: str,
    input_shape: tuple[int, int, int] | None = None,
    variant: Variant | None = None,
) -> str:
    """The generated Python module for `arch`, as text: the training module unless a `variant` is given;
    `input_shape` replaces the spec's `input` (channels, height, width)."""
    make_writer = variant.writer if variant is not None else ClassWriter
    if (
        not (function_name.isascii() and function_name.isidentifier())
        or keyword.iskeyword(function_name)
        or (function_name.startswith("__") and function_name.endswith("__"))  # `__init__`, `__main__`: a package's
        or function_name in RESERVED | {n for n, d in program.definitions.items() if d.kind == "block"}
    ):
        raise ArchError(
            "E071",
            f"the file name `{function_name}` cannot name the generated module and its constructor",
            Loc(program.main.file, 1, 1),
            "rename the spec file to a Python identifier that no block uses, e.g. my_net.arch",
        )
    blocks = {n for n, d in program.definitions.items() if d.kind == "block"}
    gen = Generator(program, arch, blocks | {class_name_for(program.arch().name), function_name})
    arch_def = program.arch()
    order = _definition_order(program, arch_def)

    def class_input(name: str) -> tuple[Any, ...]:
        """A class's input: its channels, then unknown sizes; the rank its instances' inputs have (a head block may
        take flat features)."""
        ranks = {len(m.input_shape) for m in gen.instances.get(name, []) if m.input_shape}
        rank = ranks.pop() if len(ranks) == 1 else 3
        return (Sym("in_channels"), *(UNKNOWN for _ in range(rank - 1)))

    top_scope = Scope({p.name: Sym(p.name) for p in arch_def.params})
    assert arch_def.input is not None or input_shape is not None
    dims = input_shape if input_shape is not None else tuple(evaluate(d, top_scope) for d in arch_def.input.dims)  # type: ignore[union-attr]
    # The input's channels as a constructor argument (timm's `in_chans`), the spec's count its default, where the spec
    # writes a number there (an arch parameter there already is one). Every size after the input is derived from it.
    # Not where the spec uses the name itself (an arch parameter, a block, a `let` or loop variable of the arch's).
    bound_in_arch = {n for st in S.walk(arch_def.body) if isinstance(st, (S.Let, S.For)) for n in _names_bound(st)}
    channels_param = isinstance(dims[0], int) and "in_channels" not in {p.name for p in arch_def.params} | gen.taken | bound_in_arch
    in_channels: Any = Sym("in_channels") if channels_param else dims[0]

    # The parameters each class holds as constants, so that the module holds only the classes the network builds.
    def arch_sites(network: Network) -> None:
        writer = ClassWriter(gen, arch_def, shape_only=True)
        writer.network = network
        writer.run({p.name: Sym(p.name) for p in arch_def.params}, (in_channels, *dims[1:]))

    constants, network = constant_params(
        program,
        order,
        root_call_sites(program, arch_def) if arch_def.root is not None else arch_sites,
        lambda defn: ClassWriter(gen, defn, shape_only=True),
        class_input,
    )
    chooses, own_choices = selectors(program, order, network)
    written: dict[str, ClassCode] = {}
    for name in order:
        defn = program.definitions[name]
        if defn.kind != "block":
            continue
        _check_identifier(defn.name, defn.loc)
        # A block the runs saw no instance of is written as it is (and left out below unless a class calls it).
        constants.setdefault(name, {})
        fixed = {p: v for p, v in constants[name].items() if p in chooses[name]}
        # A list a selector takes only to pass on (EfficientNet's stage settings) is written once, as a local.
        local = {p for p, v in fixed.items() if isinstance(v, (list, tuple)) and p not in own_choices[name]}
        gen.constants[name] = fixed
        gen.dropped[name] = set(fixed)
        seen = [m.args for m in gen.instances.get(name, [])]
        writer = make_writer(gen, defn)
        args = {p.name: Sym(p.name) if p.name in local or p.name not in fixed else fixed[p.name] for p in defn.params}
        in_shape = class_input(name)
        if fixed:
            probe = ClassWriter(gen, defn, shape_only=True)
            probe.network = Network()
            probe.run(dict(args), in_shape)
            writer.variable_lets -= static_lets(defn.body, probe.network.outcomes)
        writer.run(args, in_shape)
        block_signature = _signature(defn, seen, True, gen.taken, fixed=fixed, local=local)
        code = writer.class_code(block_signature, defn.name, _doc(defn))
        # A constant parameter the written class no longer reads (it fed a branch not taken) goes too.
        lines = code.init + code.forward + code.extra_methods
        unused = unused_params(defn, set(constants[name]) - set(fixed) | local, lines, block_signature.prologue)
        if unused:
            gen.dropped[name] |= unused
            fixed = {**fixed, **{p: constants[name][p] for p in unused}}
            block_signature = _signature(defn, seen, True, gen.taken, fixed=fixed, local=local - unused)
            code = writer.class_code(block_signature, defn.name, _doc(defn))
        gen.takes_input[name] = any(re.search(r"\bin_channels\b", line) for line in code.init)
        if not gen.takes_input[name]:
            code.signature.remove("in_channels: int")
        written[name] = code

    signature = _signature(arch_def, [arch.params], False, gen.taken, arch.params)
    top_class: ClassCode | None = None
    if arch_def.root is not None:
        root = arch_def.root
        call_args = [evaluate(a, top_scope) for a in root.args]
        call_kwargs = {k: evaluate(v, top_scope) for k, v in root.kwargs.items()}
        root_defn = program.definitions[root.func]
        bound = bind_block_args(root_defn, call_args, call_kwargs, root)
        call_args, call_kwargs = gen.call_arguments(root_defn, call_args, call_kwargs, bound)
        used_classes = {root.func} | gen.reachable(root.func)
        return_class = root.func
        takes_input = gen.takes_input.get(root.func, True)
        if takes_input and channels_param:
            signature.params.append(f"in_channels: int = {dims[0]}")
        leading = [in_channels] if takes_input else []
        body = [*signature.prologue, f"return {_call(root.func, [*leading, *call_args], call_kwargs)}"]
    else:
        writer = make_writer(gen, arch_def)
        writer.run({p.name: Sym(p.name) for p in arch_def.params}, (in_channels, *dims[1:]))
        return_class = class_name_for(arch_def.name)
        if not return_class.isidentifier():
            raise ArchError(
                "E072",
                f"the arch's name `{arch_def.name}` makes no class name",
                arch_def.loc,
                "give the arch a name with a letter, e.g. `net`",
            )
        if return_class in program.definitions and return_class != arch_def.name or return_class == function_name:
            raise ArchError("E072", f"the arch's class name `{return_class}` is taken", arch_def.loc, "rename the arch")
        _check_identifier(return_class, arch_def.loc)
        code = writer.class_code(signature, return_class, _doc(arch_def))
        used_classes = gen.reachable(arch_def.name)
        names = [p.name for p in arch_def.params]
        if channels_param and any(re.search(r"\bin_channels\b", line) for line in code.init):
            names.append("in_channels")
            signature.params.append(f"in_channels: int = {dims[0]}")
        top_class = code
        body = [f"return {return_class}(" + ", ".join(f"{name}={name}" for name in names) + ")"]

    # The classes the network builds: a class only a branch not taken would have built is not written.
    classes = [code for name, code in written.items() if name in used_classes]
    if top_class is not None:
        classes.append(top_class)
    # What the ops the network uses need beyond torch (stochastic depth), where the written classes use it, then what
    # the variant adds.
    used = {node.op for node in arch.nodes} - (variant.identity_ops if variant is not None else frozenset())
    written_source = "\n".join(_all_lines(classes))
    op_helpers = [
        row.helper
        for name, row in ops.OPS.items()
        if name in used and row.helper is not None and any(re.search(rf"\b{n}\b", written_source) for n in _defined_names(row.helper))
    ]
    helpers = [*op_helpers, *(variant.helpers if variant is not None else [])]
    source = "\n".join([*helpers, *_all_lines(classes), *signature.params, *body])
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False
    )
    return env.get_template("module.py.j2").render(
        spec_path=_escape_doc(spec_path).replace("\n", "\\n").replace("\r", "\\r"),
        classes=classes,
        function_name=function_name,
        function_params=signature.params,
        return_class=return_class,
        function_body=body,
        module_doc=_module_doc(arch.meta, variant.note if variant is not None else ""),
        helpers=helpers,
        input_shape=arch.input_shape,
        imports=_imports(source),
    )


def _defined_names(code: str) -> list[str]:
    """The classes and functions a helper's code defines at its top level."""
    return re.findall(r"^(?:class|def) (\w+)", code, flags=re.MULTILINE)


def _imports(source: str) -> list[str]:
    """The import lines the generated code needs, in isort order."""
    lines = []
    if re.search(r"\bmath\.", source):
        lines.append("import math")
    if "OrderedDict(" in source:
        lines.append("from collections import OrderedDict")
    if re.search(r"\bpartial\(", source):
        lines.append("from functools import partial")
    if re.search(r"\bAny\b", source):
        lines.append("from typing import Any")
    lines.append("")
    if re.search(r"\btorch\.", source):
        lines.append("import torch")
    if re.search(r"\bF\.", source):
        lines.append("import torch.nn.functional as F")
    lines.append("from torch import Tensor, nn" if re.search(r"\bTensor\b", source) else "from torch import nn")
    return lines if lines[0] else lines[1:]


def _all_lines(classes: list[ClassCode]) -> list[str]:
    out: list[str] = []
    for c in classes:
        out.extend(c.signature)
        out.extend(c.init)
        out.extend(c.forward)
        if c.forward:
            out.append(c.forward_returns)
        out.extend(c.extra_methods)
    return out


def _doc(defn: S.Definition) -> str:
    """The comment block right above a definition in the spec, which becomes the class docstring."""
    text = SOURCES.get(defn.loc.file)
    if text is None:
        return ""
    lines = text.splitlines()[: defn.loc.line - 1]
    comment: list[str] = []
    while lines and lines[-1].lstrip().startswith("#"):
        comment.insert(0, lines.pop().strip().lstrip("#").strip())
    return " ".join(comment)


def _escape_doc(text: str) -> str:
    """Text that cannot end a triple-quoted docstring early: backslashes doubled, and every quote escaped that is
    followed by another quote or ends the text (so no run of three unescaped quotes can form)."""
    return _escape_quotes(_escape_unprintable(str(text).replace("\\", "\\\\")))


def _escape_quotes(text: str) -> str:
    return re.sub(r'"(?="|$)', r'\\"', text)


def _escape_unprintable(text: str) -> str:
    """Characters that are not printable (NUL, tabs, line separators) as escapes the docstring decodes back."""
    return "".join(
        ch
        if ch.isprintable()
        else (f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        for ch in text
    )


def _module_doc(meta: dict[str, Any], note: str = "") -> list[str]:
    """The generated module's docstring: the paper, its year and the reference implementation from `meta`, and a
    variant's `note` (already valid docstring text)."""
    lines = []
    if meta.get("paper"):
        lines.append(_escape_doc(meta["paper"]) + (f" ({_escape_doc(meta['year'])})" if meta.get("year") else "") + ".")
        if meta.get("reference"):
            lines += ["", f"Reference implementation: {_escape_doc(meta['reference'])}."]
    if note:
        lines += ["", *textwrap.wrap(note, 110)] if lines else textwrap.wrap(note, 110)
    if not lines:
        return []
    return ['"""' + lines[0], *lines[1:], '"""']


def docstring_lines(text: str, width: int = 100) -> list[str]:
    """A docstring holding `text` as inert text: backslashes and quotes cannot end it early."""
    if not text:
        return []
    # Never break inside a word: an escape sequence split across lines would no longer be one.
    # Quotes are escaped line by line after wrapping: wrapping drops the spaces after a line's last quote, which
    # would then meet the closing quotes (`"bottleneck" ` would end `bottleneck""""`).
    escaped = _escape_unprintable(text.replace("\\", "\\\\"))
    lines = [_escape_quotes(line) for line in textwrap.wrap(escaped, width, break_long_words=False, break_on_hyphens=False)] or [""]
    if len(lines) == 1:
        return [f'"""{lines[0]}"""']
    return ['"""' + lines[0], *lines[1:], '"""']


def _definition_order(program: Program, root: S.Definition) -> list[str]:
    """The block definitions the generated code refers to, a class after the classes it uses."""
    order: list[str] = []

    def visit(defn: S.Definition, stack: tuple[str, ...]) -> None:
        if defn.name in order or defn.name in stack:
            return
        called = [n.func for n in S.walk([*defn.body, *([defn.root] if defn.root else [])]) if isinstance(n, S.Call)]
        for name in dict.fromkeys(called):
            callee = program.definitions.get(name)
            if callee is not None and callee.kind == "block":
                visit(callee, (*stack, defn.name))
        order.append(defn.name)

    visit(root, ())
    return order
