"""The inference build (`archc compile --inference`): the training module with BatchNorm folded into convolutions,
dropout gone and auxiliary heads gone, loading the training module's `state_dict()` as it is.

What is folded comes from the elaborated graph, not from the text: a BatchNorm with running statistics whose
input is a convolution that feeds nothing else, where the convolution is the BatchNorm's previous sibling in the
module tree, or the output of that sibling block (Xception's separable convolutions). The emitted class is shared by
every instance of a definition, so a spec location is folded only where every instance it elaborates to folds.
The emitter (archc/emit/torch.py) writes the classes as for training; this module's writer changes three kinds of
members: a folded convolution gets a bias, a folded BatchNorm becomes a parameter-free `FoldedBatchNorm` (which
keeps the training module's names and Sequential indices), and dropout becomes `nn.Identity()`. Auxiliary heads
(`aux` outputs of a forward, and the members only they use) and `init` blocks are removed from the definitions
before emission.
The top class converts an image input to channels_last, the memory format oneDNN and cuDNN convolutions run fastest
in (the values are the same).

Loading: each class holding a `FoldedBatchNorm` or a removed head registers `load_training_state` as a
`load_state_dict` pre-hook, which folds the BatchNorm entries of a training state_dict into the convolution's
weight and bias and drops the heads' keys, so `load_state_dict(training.state_dict(), strict=True)` works.
docs/inference.md describes the design.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from archc import ops
from archc.errors import ArchError, Loc
from archc.ir import Architecture, Location
from archc.lang import syntax as S
from archc.sema.calls import bind_op_args
from archc.sema.program import Program
from archc.sema.symbolic import literal, same_value

from .torch import ClassCode, ClassWriter, Generator, MemberSpec, Signature, Variant, emit_python

LocKey = tuple[str, int, int]

# The helper code of every inference module, placed before its classes.
# Ops that act in training only: the inference build writes nn.Identity() for their members and drops them inline.
IDENTITY_AT_INFERENCE = frozenset({"dropout", "stochastic_depth"})

HELPERS = [
    '''class FoldedBatchNorm(nn.Identity):
    """The place of a BatchNorm folded into the convolution before it, which now computes both.

    `conv` is that convolution's path from the parent of both; without it, the convolution is the module
    registered just before this one, or its submodule `within`. Loading a training state_dict
    (load_training_state) folds this BatchNorm's weight, bias and running statistics into the convolution.
    """

    def __init__(self, conv: str | None = None, within: str = "", eps: float = 1e-05) -> None:
        super().__init__()
        self.conv = conv
        self.within = within
        self.eps = eps''',
    '''def fold_batchnorm(state_dict: dict[str, Any], conv: str, bn: str, eps: float) -> None:
    """Fold the BatchNorm entries `bn*` of a state_dict into the convolution entries `conv*`: in eval mode
    bn(conv(x)) = conv'(x) with weight w * s and bias (b - mean) * s + beta, where s = gamma / sqrt(var + eps).
    """
    weight = state_dict[conv + "weight"]
    var = state_dict.pop(bn + "running_var").double()
    mean = state_dict.pop(bn + "running_mean").double()
    gamma = state_dict.pop(bn + "weight", None)
    beta = state_dict.pop(bn + "bias", None)
    state_dict.pop(bn + "num_batches_tracked", None)
    scale = torch.rsqrt(var + eps) * (gamma.double() if gamma is not None else 1.0)
    bias = state_dict[conv + "bias"].double() if conv + "bias" in state_dict else torch.zeros_like(mean)
    shift = (bias - mean) * scale + (beta.double() if beta is not None else 0.0)
    state_dict[conv + "weight"] = (weight.double() * scale.reshape(-1, *[1] * (weight.dim() - 1))).to(weight.dtype)
    state_dict[conv + "bias"] = shift.to(weight.dtype)''',
    '''def load_training_state(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any, heads: tuple[str, ...] = ()) -> None:
    """A load_state_dict pre-hook that reads the training module's state_dict: the keys of its auxiliary
    `heads` are dropped, and each FoldedBatchNorm's entries are folded into its convolution. A state_dict
    already folded (this module's own) loads as it is.
    """
    for key in [k for k in state_dict if any(k.startswith(f"{prefix}{head}.") for head in heads)]:
        del state_dict[key]
    for path, parent in module.named_modules(prefix=prefix[:-1]):
        previous = ""
        for name, child in parent.named_children():
            bn = f"{path}.{name}." if path else f"{name}."
            if isinstance(child, FoldedBatchNorm) and bn + "running_var" in state_dict:
                target = child.conv if child.conv is not None else ".".join(part for part in (previous, child.within) if part)
                if not isinstance(dict(parent.named_modules()).get(target or "-"), nn.Conv2d):
                    raise RuntimeError(f"{bn[:-1]}: no convolution {target!r} to fold this BatchNorm into")
                fold_batchnorm(state_dict, f"{path}.{target}." if path else f"{target}.", bn, child.eps)
            previous = name''',
]

NOTE = (
    "The inference build: each BatchNorm after a convolution is folded into it, dropout and auxiliary heads are "
    "gone, and an image input runs in channels_last. Load the training module's state_dict() (strict): the BatchNorm "
    "entries are folded at load time, the auxiliary heads' entries ignored (docs/inference.md)."
)


def _key(loc: Loc | Location) -> LocKey:
    return (loc.file, loc.line, loc.column)


@dataclass
class FoldPlan:
    """Which spec locations fold: convolutions that take a BatchNorm's bias, and for each folded BatchNorm how its
    FoldedBatchNorm finds the convolution: (`conv`, the path from their parent, when every instance agrees on one;
    else None and `within`, the path inside the module registered just before the BatchNorm, '' for that module)."""

    convs: set[LocKey]
    batchnorms: dict[LocKey, tuple[str | None, str]]


def plan_folds(arch: Architecture) -> FoldPlan:
    """The conv-BatchNorm pairs of the graph that fold exactly, kept where every instance of a location agrees."""
    modules = {m.path: m for m in arch.modules()}
    parent: dict[str, str] = {}
    previous_sibling: dict[str, str] = {}
    for m in modules.values():
        for i, child in enumerate(m.children):
            parent[child.path] = m.path
            if i:
                previous_sibling[child.path] = m.children[i - 1].path
    uses = Counter(n.module for n in arch.nodes if n.module is not None)
    consumers: dict[int, list[int]] = {}
    for n in arch.nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n.id)
    nodes = {n.id: n for n in arch.nodes}
    returned = set(arch.outputs) | set(arch.aux_outputs)

    def inside(path: str, ancestor: str) -> str | None:
        """`path` relative to `ancestor` ('' if equal), None if it is not inside it."""
        if path == ancestor:
            return ""
        if not ancestor or path.startswith(ancestor + "."):
            return path[len(ancestor) + 1 :] if ancestor else path
        return None

    # (conv location, BatchNorm location, conv path from the BatchNorm's parent, from its previous sibling)
    pairs: list[tuple[LocKey, LocKey, str, str | None]] = []
    for bn in arch.nodes:
        if bn.op != "batchnorm" or bn.module is None or len(bn.inputs) != 1 or not modules[bn.module].attrs.get("track_running_stats"):
            continue
        conv = nodes[bn.inputs[0]]
        if (
            conv.op != "conv"
            or conv.module is None
            or consumers.get(conv.id) != [bn.id]
            or conv.id in returned
            or uses[conv.module] != 1
            or uses[bn.module] != 1
        ):
            continue
        from_parent = inside(conv.module, parent[bn.module])
        if not from_parent:  # the conv is not beside the BatchNorm, or inside a module beside it
            continue
        sibling = previous_sibling.get(bn.module)
        from_sibling = inside(conv.module, sibling) if sibling is not None else None
        pairs.append((_key(modules[conv.module].loc), _key(modules[bn.module].loc), from_parent, from_sibling))
    # A location folds only if all its instances do (one class serves them all), and a folded BatchNorm reaches its
    # convolution by one path; dropping a location can unfold its partners, so repeat until nothing changes.
    total = Counter(_key(m.loc) for m in modules.values() if m.kind == "op" and m.type in ("conv", "batchnorm"))
    appended = {
        _key(m.loc): m.name.isdigit() and modules[parent[m.path]].kind != "seq"
        for m in modules.values()
        if m.kind == "op" and m.type == "batchnorm"
    }
    while True:
        conv_count = Counter(c for c, _, _, _ in pairs)
        bn_count = Counter(b for _, b, _, _ in pairs)
        from_parents: dict[LocKey, set[str]] = {}
        from_siblings: dict[LocKey, set[str | None]] = {}
        for _, b, from_parent, from_sibling in pairs:
            from_parents.setdefault(b, set()).add(from_parent)
            from_siblings.setdefault(b, set()).add(from_sibling)
        routes: dict[LocKey, tuple[str | None, str] | None] = {}
        for b in from_parents:
            (within,) = from_siblings[b] if len(from_siblings[b]) == 1 else (None,)
            by_sibling = (None, within) if within is not None else None
            by_parent = (next(iter(from_parents[b])), "") if len(from_parents[b]) == 1 else None
            # A BatchNorm appended in a loop (an index in a Sequential block) is found from the module before it,
            # whose index follows the loop; one with a name, or in a seq(...), by its path.
            routes[b] = by_sibling if appended[b] and by_sibling else by_parent or by_sibling
        kept = [pair for pair in pairs if conv_count[pair[0]] == total[pair[0]] and bn_count[pair[1]] == total[pair[1]] and routes[pair[1]]]
        if len(kept) == len(pairs):
            return FoldPlan({c for c, _, _, _ in kept}, {b: route for b, route in routes.items() if route is not None})
        pairs = kept


def without_aux_heads(defn: S.Definition) -> tuple[S.Definition, list[str]]:
    """`defn` without its auxiliary outputs (`aux name = ...` in the forward) and the members only they use."""
    if defn.forward is None or not any(isinstance(s, S.Assign) and s.aux for s in defn.forward.body):
        return defn, []
    aux = [s for s in defn.forward.body if isinstance(s, S.Assign) and s.aux]
    main = [s for s in defn.forward.body if not (isinstance(s, S.Assign) and s.aux)]
    declared = S.declared_members(defn.body)
    aux_names = {s.name for s in aux}

    def called(stmts: Sequence[S.Stmt]) -> set[str]:
        return {c.func for c in S.walk(stmts) if isinstance(c, S.Call) and c.func in declared}

    heads = called(aux) - called(main)
    body = []
    for stmt in main:
        if isinstance(stmt, S.Return):
            stmt = dataclasses.replace(stmt, values=[v for v in stmt.values if not (isinstance(v, S.Name) and v.name in aux_names)])
        body.append(stmt)
    forward = dataclasses.replace(defn.forward, body=body)
    order = [m.name for m in S.walk(defn.body) if isinstance(m, S.Member) and m.name in heads]
    return dataclasses.replace(defn, body=_drop_members(defn.body, heads), forward=forward), list(dict.fromkeys(order))


def _drop_members(stmts: list[S.Stmt], names: set[str]) -> list[S.Stmt]:
    """The statements without the members named `names`; a conditional left with nothing in it goes too."""
    out: list[S.Stmt] = []
    for stmt in stmts:
        if isinstance(stmt, S.Member) and stmt.name in names:
            continue
        if isinstance(stmt, S.If):
            then, orelse = _drop_members(stmt.body, names), _drop_members(stmt.orelse, names)
            if (stmt.body or stmt.orelse) and not (then or orelse):
                continue
            stmt = dataclasses.replace(stmt, body=then, orelse=orelse)
        out.append(stmt)
    return out


class InferenceWriter(ClassWriter):
    """Writes a class of the inference build: folded convolutions with a bias, FoldedBatchNorm for folded
    BatchNorms, nn.Identity for dropout, and the load hook where the class needs one."""

    def __init__(self, gen: Generator, defn: S.Definition, plan: FoldPlan, heads: dict[str, list[str]], channels_last: str | None) -> None:
        super().__init__(gen, defn)
        self.plan = plan
        self.heads = heads.get(defn.name, [])
        self.folds = False
        self.channels_last = defn.name == channels_last

    def run(self, args: dict[str, Any], in_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        out = super().run(args, in_shape)
        if self.channels_last and not self.shape_only and not self.sequential and self.forward_lines:
            arg = self.defn.forward.arg if self.defn.forward is not None else "x"
            self.forward_lines[:0] = [
                "# Convolutions run faster on channels_last tensors (oneDNN on CPU, cuDNN); the values are the same.",
                f"{arg} = {arg}.contiguous(memory_format=torch.channels_last)",
            ]
        return out

    def ctor(self, spec: MemberSpec, in_shape: tuple[Any, ...], relpath: str) -> tuple[list[str], tuple[Any, ...]]:
        if spec.kind == "op" and not self.shape_only:
            key = _key(spec.call.loc)
            if spec.type == "conv" and key in self.plan.convs:
                spec = _with_bias(spec)
            elif spec.type == "batchnorm" and key in self.plan.batchnorms:
                attrs = bind_op_args(ops.OPS["batchnorm"], spec.args, spec.kwargs, spec.call)
                conv, within = self.plan.batchnorms[key]
                keywords: dict[str, Any] = {"conv": conv} if conv is not None else {"within": within} if within else {}
                if not same_value(attrs["eps"], 1e-5):
                    keywords["eps"] = attrs["eps"]
                self.folds = True
                return [f"FoldedBatchNorm({', '.join(f'{k}={literal(v)}' for k, v in keywords.items())})"], in_shape
            elif spec.type in IDENTITY_AT_INFERENCE:
                return ["nn.Identity()"], in_shape
        return super().ctor(spec, in_shape, relpath)

    def tensor(self, expr: S.Expr, env: dict[str, Any], target: str) -> Any:
        # Inline dropout (`dropout(x, 0.5)`, not a member) and stochastic depth are the identity at inference.
        if isinstance(expr, S.Call) and expr.func in IDENTITY_AT_INFERENCE and expr.func not in self.declared and expr.args:
            return self.tensor(expr.args[0], env, target)
        return super().tensor(expr, env, target)

    def class_code(self, signature: Signature, class_name: str, doc: str) -> ClassCode:
        code = super().class_code(signature, class_name, doc)
        if self.heads:
            heads = literal(tuple(self.heads))
            code.init.append("# The training module's auxiliary heads are not built; their state_dict entries are ignored.")
            code.init.append(f"self.register_load_state_dict_pre_hook(partial(load_training_state, heads={heads}))")
        elif self.folds:
            code.init.append("self.register_load_state_dict_pre_hook(load_training_state)")
        return code


def _with_bias(spec: MemberSpec) -> MemberSpec:
    """A conv member spec with `bias = true` (positional `bias` is the conv's seventh argument)."""
    names = [name for name, _ in ops.OPS["conv"].args]
    position = names.index("bias")
    if len(spec.args) > position:
        return dataclasses.replace(spec, args=[*spec.args[:position], True, *spec.args[position + 1 :]])
    return dataclasses.replace(spec, kwargs={**spec.kwargs, "bias": True})


# Names the inference build's helper code defines or uses, which a spec's names would shadow.
HELPER_NAMES = {"FoldedBatchNorm", "fold_batchnorm", "load_training_state", "partial"}


def _check_helper_names(program: Program) -> None:
    for defn in program.definitions.values():
        names: list[tuple[str, Loc]] = [(defn.name, defn.loc), *((p.name, p.loc) for p in defn.params)]
        names += [
            (s.name, s.loc) for s in S.walk([*defn.body, *(defn.forward.body if defn.forward else [])]) if isinstance(s, (S.Let, S.Assign))
        ]
        for name, loc in names:
            if name in HELPER_NAMES:
                raise ArchError(
                    "E070", f"`{name}` cannot be a name in the inference build: its helper code uses it", loc, f"rename it, e.g. `{name}_`"
                )


def emit_inference(
    program: Program, arch: Architecture, spec_path: str, function_name: str, input_shape: tuple[int, int, int] | None = None
) -> str:
    """The inference module for `arch`, as text; its constructor is `function_name`."""
    _check_helper_names(program)
    plan = plan_folds(arch)
    definitions: dict[str, S.Definition] = {}
    heads: dict[str, list[str]] = {}
    for name, defn in program.definitions.items():
        # No `init` block: the strict load of the training state_dict sets every parameter, and a rule may name a
        # BatchNorm that is folded here (timm's zero-initialised last BatchNorm of a residual block).
        definitions[name], dropped = without_aux_heads(dataclasses.replace(defn, init=None))
        if dropped:
            heads[name] = dropped
    main = dataclasses.replace(program.main, definitions=[definitions.get(d.name, d) for d in program.main.definitions])
    stripped = dataclasses.replace(program, main=main, definitions=definitions)
    # The network's top class takes its input in channels_last where that input is an image (C×H×W).
    arch_def = stripped.arch()
    root = arch_def.root.func if arch_def.root is not None else arch_def.name
    has_conv = any(m.kind == "op" and m.type == "conv" for m in arch.modules())
    channels_last = root if len(arch.input_shape) == 3 and has_conv else None
    writer = partial(InferenceWriter, plan=plan, heads=heads, channels_last=channels_last)
    helpers = HELPERS if plan.batchnorms or heads else []
    return emit_python(stripped, arch, spec_path, function_name, input_shape, Variant(writer, helpers, NOTE, IDENTITY_AT_INFERENCE))
