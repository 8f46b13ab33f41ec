"""Graphviz diagrams of an elaborated spec: `render_dot` builds the DOT text, `write_diagram` writes it and renders it.

The picture is the graph of the IR (`Architecture.nodes`) drawn inside the module tree (`Architecture.root`):

- one box per node, showing its op and key arguments (`conv 3×3 /2, 64`, `maxpool 3×3 /2`, `linear 1000`), coloured by
  op family (convolution, normalisation, activation, pooling, linear, merge, reshaping);
- each block or seq instance a cluster (`subgraph cluster_<path>`) labelled with its path and type
  (`layer1: ResLayer`, `layer1.0: BasicBlock`);
- each edge labelled with the shape of the tensor it carries, batch left out (`64×56×56`);
- an input node (`input`, its shape on the edge below it), an output node, and one output node per auxiliary head (`aux1 (training)`),
  training-only nodes and edges dashed.

`depth` folds the module tree: modules `depth` levels down (and deeper) become one box each, labelled with path and
type (`layer1.0: BasicBlock`), every module at the same depth alike (those above it stay clusters); consecutive
sibling blocks that are identical (same type, arguments, input shape and structure) and chained one into the next
become one box (`layer3.1–5: Bottleneck ×5`). `×N` always stands for N blocks in a chain. A list of modules applied
item by item with other layers between (Res2Net's `convs[i](x)`) is no box: its items are boxes at its level. A box does not repeat the
shape its outgoing edges carry. `fit_depth` picks the default depth: the deepest whose picture fits a page. The DOT
text is deterministic: the same spec gives the same bytes. Nothing here imports torch.
"""

from __future__ import annotations

import html
import json
import re
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphviz

from archc.compiler import Compiled, compile_spec
from archc.errors import ArchError
from archc.files import write_atomic
from archc.ir import Architecture, ModuleNode, Node
from archc.ops import ARITHMETIC
from archc.passes.macs import count_macs

FORMATS = ("dot", "svg", "png", "pdf")
RANKDIRS = ("TB", "LR")
INSTALL_HINT = (
    "install Graphviz, which provides `dot`: apt-get install graphviz (Debian, Ubuntu), brew install graphviz (macOS), "
    "or see https://graphviz.org/download/"
)

FONT = "Helvetica"
# Op family -> (fill, border) colours.
PALETTE: dict[str, tuple[str, str]] = {
    "conv": ("#dbeafe", "#2563eb"),
    "norm": ("#fef3c7", "#d97706"),
    "act": ("#dcfce7", "#16a34a"),
    "pool": ("#ffedd5", "#ea580c"),
    "linear": ("#ede9fe", "#7c3aed"),
    "merge": ("#fce7f3", "#db2777"),
    "shape": ("#f3f4f6", "#6b7280"),
    "block": ("#ccfbf1", "#0f766e"),
    "io": ("#1f2937", "#1f2937"),
}
FAMILIES: dict[str, str] = {
    "conv": "conv",
    "linear": "linear",
    "batchnorm": "norm",
    "relu": "act",
    "sigmoid": "act",
    "tanh": "act",
    "relu6": "act",
    "hardtanh": "act",
    "silu": "act",
    "gelu": "act",
    "hardswish": "act",
    "hardsigmoid": "act",
    "leaky_relu": "act",
    "elu": "act",
    "mish": "act",
    "prelu": "act",
    "softmax": "act",
    "log_softmax": "act",
    "groupnorm": "norm",
    "instancenorm": "norm",
    "local_response_norm": "norm",
    "maxpool": "pool",
    "avgpool": "pool",
    "adaptive_avgpool": "pool",
    "adaptive_maxpool": "pool",
    "add": "merge",
    "cat": "merge",
    "mul": "merge",
    "sub": "merge",
    "div": "merge",
    "flatten": "shape",
    "dropout": "shape",
    "stochastic_depth": "shape",
    "identity": "shape",
    "input": "io",
    "param": "io",
    "buffer": "io",
}
# Cluster fills by nesting level, darkening inwards.
CLUSTER_FILLS = ("#f8fafc", "#eef2f7", "#e4eaf2", "#dae2ed")
CLUSTER_BORDER = "#94a3b8"
MUTED = "#4b5563"
EDGE_COLOUR = "#6b7280"


# Labels.


def fmt_shape(shape: Iterable[int]) -> str:
    """`64×56×56`: a tensor shape without the batch dimension."""
    return "×".join(str(d) for d in shape)


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, list | tuple) and len(value) == 2:
        return value[0], value[1]
    return value, value


def _size(value: Any) -> str:
    h, w = _pair(value)
    return f"{h}×{w}"


def _stride(value: Any) -> str:
    """` /2` for a stride other than 1 (` /1×2` for an uneven one), else nothing."""
    h, w = _pair(value)
    if (h, w) == (1, 1):
        return ""
    return f" /{h}" if h == w else f" /{h}×{w}"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_op(op: str, attrs: dict[str, Any]) -> str:
    """The op and its key arguments, as a box shows them: `conv 3×3 /2, 64`, `maxpool 3×3 /2`, `linear 1000`, `×0.17`."""
    a = attrs
    if op == "conv":
        text = f"conv {_size(a['kernel_size'])}{_stride(a.get('stride', 1))}, {a['out_channels']}"
        groups, dilation = a.get("groups", 1), a.get("dilation", 1)
        if groups != 1:
            text += ", depthwise" if groups == a.get("in_channels") else f", groups {groups}"
        dh, dw = _pair(dilation)
        if (dh, dw) != (1, 1):
            text += f", dilation {dh}" if dh == dw else f", dilation {dh}×{dw}"
        return text
    if op in ("maxpool", "avgpool"):
        stride = a.get("stride")
        return f"{op} {_size(a['kernel_size'])}{_stride(a['kernel_size'] if stride is None else stride)}"
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        kind = op.removeprefix("adaptive_")
        size = _pair(a["output_size"])
        return f"global {kind}" if size == (1, 1) else f"adaptive {kind} {_size(a['output_size'])}"
    if op == "linear":
        return f"linear {a['out_features']}"
    if op == "dropout":
        return f"dropout {_number(a.get('p', 0.5))}"
    if op in ARITHMETIC and "scalar" in a:
        sign = {"add": "+", "sub": "−", "mul": "×", "div": "÷"}[op]
        number = _number(a["scalar"]) if isinstance(a["scalar"], (int, float)) else str(a["scalar"])
        return f"{number}{sign}x" if a.get("reverse") else f"{sign}{number}"
    return op


def _count(n: int) -> str:
    """36.9K, 11.7M, 1.82G: three significant digits."""
    for unit, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def _html(lines: list[tuple[str, str]], left: bool = False) -> str:
    """An HTML-like label: one (style, text) per line; style is 'title', 'main', 'muted' or 'light'. Lines are
    centred, or aligned left. Each line is a table row, so that lines are a font's line height apart (with `<br/>`
    Graphviz sets them one font size apart, and an underscore touches the line below)."""
    out = []
    for style, text in lines:
        text = html.escape(text, quote=False)
        if style == "title":
            out.append(f"<b>{text}</b>")
        elif style == "muted":
            out.append(f'<font point-size="9" color="{MUTED}">{text}</font>')
        elif style == "light":
            out.append(f'<font point-size="9" color="#e5e7eb">{text}</font>')
        else:
            out.append(text)
    if len(out) == 1 and not left:
        return f"<{out[0]}>"
    align = ' align="left"' if left else ""
    rows = "".join(f"<tr><td{align}>{line}</td></tr>" for line in out)
    return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{rows}</table>>'


# Folding.


@dataclass
class _Unit:
    """One box of the picture: an IR node, a folded module, or a run of identical sibling blocks."""

    key: str  # DOT node id: `n5` for IR node 5, `m_layer1` a folded module, `r_layer3.1` a run
    cluster: str  # path of the enclosing cluster, '' for the top level
    nodes: list[int] = field(default_factory=list)
    module: ModuleNode | None = None
    run: list[ModuleNode] = field(default_factory=list)


def _parent(path: str) -> str:
    return path.rpartition(".")[0]


def _depth(path: str) -> int:
    return path.count(".") + 1 if path else 0


def _signature(m: ModuleNode) -> str:
    """Everything that makes two module instances build the same structure."""

    def sig(m: ModuleNode) -> list[Any]:
        return [m.kind, m.type, m.args, m.attrs, m.input_shape, [[c.name, sig(c)] for c in m.children]]

    return json.dumps(sig(m), sort_keys=True, default=str)


class _Plan:
    """Which box each IR node is drawn in, at a given depth."""

    def __init__(self, arch: Architecture, depth: int | None) -> None:
        self.arch = arch
        self.modules = {m.path: m for m in arch.modules()}
        self.consumers: dict[int, list[int]] = {n.id: [] for n in arch.nodes}
        for n in arch.nodes:
            for i in n.inputs:
                self.consumers[i].append(n.id)
        # Module path -> the IR nodes that run in it or below it.
        self._under: dict[str, list[int]] = {}
        for n in arch.nodes:
            path = n.module if n.module is not None else n.scope
            parts = path.split(".") if path else []
            for k in range(1, len(parts) + 1):
                self._under.setdefault(".".join(parts[:k]), []).append(n.id)
        # A list of modules applied item by item (Res2Net's `convs[i](x)`, between which other layers run) is no box of
        # its own: folded into one, its items would feed each other through the layers between them, a cycle. Its items
        # stand at its level instead.
        self.interleaved = {
            path
            for path, ids in self._under.items()
            if self.modules.get(path) is not None and self.modules[path].kind != "op" and max(ids) - min(ids) + 1 != len(ids)
        }
        # IR node id -> unit key; unit key -> unit.
        self.unit_of: dict[int, str] = {}
        self.units: dict[str, _Unit] = {}
        for n in arch.nodes:
            target = self._fold_target(n, depth)
            path = n.module if n.module is not None else n.scope
            while target is not None and target in self.interleaved and path != target:
                target = ".".join(path.split(".")[: len(target.split(".")) + 1])
                if n.module is not None and target == n.module and path == target:
                    break
            if target is None:
                # A module sits in its parent's cluster; an inline op in the block it runs in.
                self._assign(n.id, _Unit(f"n{n.id}", n.scope if n.module is None else _parent(n.module)))
            else:
                self._assign(n.id, _Unit(f"m_{target}", _parent(target), module=self.modules[target]))
        if depth is not None:
            self._merge_runs(depth)

    @staticmethod
    def _fold_target(n: Node, depth: int | None) -> str | None:
        """The module a node folds into at this depth, or None where it is drawn itself."""
        if depth is None or n.op == "input":
            return None
        if n.module is not None:
            parts = n.module.split(".")
            return ".".join(parts[:depth]) if len(parts) > depth else None
        parts = n.scope.split(".") if n.scope else []
        return ".".join(parts[:depth]) if len(parts) >= depth else None

    def _assign(self, node_id: int, unit: _Unit) -> None:
        unit = self.units.setdefault(unit.key, unit)
        unit.nodes.append(node_id)
        self.unit_of[node_id] = unit.key

    def under(self, path: str) -> list[int]:
        """IR nodes that run in the module at `path` or below it."""
        return self._under.get(path, [])

    def _members(self, path: str) -> list[int]:
        """IR nodes drawn in the folded module at `path` (empty when it is not a box)."""
        unit = self.units.get(f"m_{path}")
        return unit.nodes if unit is not None else []

    def chained(self, first: list[int], second: list[int]) -> bool:
        """Whether `first` feeds only `second` and `second` reads only `first` (from outside themselves)."""
        a, b = set(first), set(second)
        outputs = set(self.arch.outputs) | set(self.arch.aux_outputs)
        if a & outputs:
            return False
        leaves = {c for i in a for c in self.consumers[i]} - a
        reads = {i for j in b for i in self.arch.nodes[j].inputs} - b
        return leaves <= b and reads <= a and bool(reads)

    def _merge_runs(self, depth: int) -> None:
        """Consecutive identical sibling blocks at the fold level, each feeding only the next, become one box."""
        for parent in list(self.modules.values()):
            if parent.kind == "op" or _depth(parent.path) != depth - 1:
                continue
            runs: list[list[ModuleNode]] = []
            for child in parent.children:
                if child.kind not in ("block", "seq") or not self._members(child.path):
                    runs.append([])
                    continue
                last = runs[-1] if runs else []
                nodes = self._members(child.path)
                if last and _signature(last[-1]) == _signature(child) and self.chained(self._members(last[-1].path), nodes):
                    last.append(child)
                else:
                    runs.append([child])
            for run in runs:
                if len(run) < 2:
                    continue
                nodes = sorted(i for m in run for i in self._members(m.path))
                for m in run:
                    del self.units[f"m_{m.path}"]
                unit = _Unit(f"r_{run[0].path}", parent.path, run=run)
                for i in nodes:
                    self._assign(i, unit)

    def ordered_units(self) -> list[_Unit]:
        return sorted(self.units.values(), key=lambda u: min(u.nodes))

    def ranks(self) -> int:
        """Boxes on the longest path of the picture, from the input box to an output box (the output box counted):
        how tall a top-to-bottom drawing is."""
        level: dict[int, int] = {}
        for n in self.arch.nodes:
            level[n.id] = max((level[i] + (self.unit_of[i] != self.unit_of[n.id]) for i in n.inputs), default=0)
        ends = [*self.arch.outputs, *self.arch.aux_outputs]
        return max(level[o] for o in ends) + 2 if ends else max(level.values()) + 1

    def height(self) -> float:
        """The picture's height in points, estimated: RANK_HEIGHT for each box on the tallest path, CLUSTER_EDGE for
        each cluster border it crosses (a cluster's label and margins), as Graphviz lays a top-to-bottom drawing out."""
        tallest: dict[int, float] = {}
        for n in self.arch.nodes:
            here = self.units[self.unit_of[n.id]]
            best = 0.0
            for i in n.inputs:
                there = self.units[self.unit_of[i]]
                step = 0.0 if there.key == here.key else RANK_HEIGHT + CLUSTER_EDGE * _crossings(there.cluster, here.cluster)
                best = max(best, tallest[i] + step)
            tallest[n.id] = best
        ends = [*self.arch.outputs, *self.arch.aux_outputs] or [n.id for n in self.arch.nodes]
        return max(tallest[o] for o in ends) + 2 * RANK_HEIGHT


def _crossings(a: str, b: str) -> int:
    """Cluster borders between a box in cluster `a` and one in cluster `b`: out of a's clusters, into b's."""
    x, y = a.split(".") if a else [], b.split(".") if b else []
    common = 0
    while common < min(len(x), len(y)) and x[common] == y[common]:
        common += 1
    return len(x) + len(y) - 2 * common


# The default depth: the deepest whose picture fits a page. A box and the edge below it take about 54 points of
# height, so 24 of them make a picture some 1,300 points tall, readable (its text 7 points or more) when fitted to an
# A4 page or a screen; 60 boxes keep it narrow enough too.
PAGE_RANKS = 24
PAGE_BOXES = 60
# Nested clusters make a picture taller than its boxes alone (VoVNet's stages, blocks and their ConvNormActs): the
# estimate of `_Plan.height` must stay within PAGE_HEIGHT points too (the measured pictures: 52 points a box, 14 a
# cluster border crossed).
RANK_HEIGHT = 52.0
CLUSTER_EDGE = 14.0
PAGE_HEIGHT = 1450.0
ALL = "all"


def fit_depth(arch: Architecture) -> int | None:
    """The deepest fold whose picture has at most PAGE_RANKS boxes from input to output, PAGE_BOXES boxes in all, and
    an estimated height of at most PAGE_HEIGHT points:
    None (every layer) where the whole graph fits, else a depth from 1 down, 1 where nothing fits."""
    paths = [n.module if n.module is not None else n.scope for n in arch.nodes]
    deepest = max((p.count(".") + 1 for p in paths if p), default=0)
    best: int | None = 1
    for depth in [*range(1, deepest + 1), None]:
        plan = _Plan(arch, depth)
        if plan.ranks() > PAGE_RANKS or len(plan.units) > PAGE_BOXES or plan.height() > PAGE_HEIGHT:
            break
        best = depth
    return best


def resolve_depth(arch: Architecture, depth: int | str | None) -> int | None:
    """The depth to draw at: `depth` itself, every layer (None) for `all`, the fitted one (`fit_depth`) for None."""
    if depth is None:
        return fit_depth(arch)
    if depth == ALL:
        return None
    if isinstance(depth, str):
        raise ArchError("E092", f"unknown depth {depth!r}", None, f"give a number of levels from 1, or {ALL} to draw every layer")
    return depth


def _short_name(path: str) -> str:
    """A module's name inside its cluster: the last part of its path, with the parts before while it is a number
    (`branch1`, `layer1.0`, `repeat.3`)."""
    parts = path.split(".")
    k = len(parts) - 1
    while k > 0 and parts[k].isdigit():
        k -= 1
    return ".".join(parts[k:])


def _contents_line(m: ModuleNode, plan: _Plan) -> str | None:
    """What a folded module holds: `BasicBlock ×2` (a chain of two identical blocks), `Bottleneck → Bottleneck ×5`
    for a stage of one block type, `maxpool 3×3 → BasicConv2d` for a short seq, `7 BasicConv2d` for blocks that do not
    form a chain (Inception's branches). `×N` always stands for N blocks each feeding the next."""
    children = m.children
    if m.kind == "seq" and 0 < len(children) <= 3 and len({c.type for c in children}) > 1:
        return " → ".join(describe_op(c.type, c.attrs) if c.kind == "op" else c.type for c in children)
    if not children or any(c.kind != "block" for c in children) or len({c.type for c in children}) != 1:
        return None
    chain = all(plan.chained(plan.under(a.path), plan.under(b.path)) for a, b in zip(children, children[1:], strict=False))
    if not chain:
        return f"{len(children)} {children[0].type}"
    runs: list[list[ModuleNode]] = []
    for c in children:
        if runs and _signature(runs[-1][-1]) == _signature(c):
            runs[-1].append(c)
        else:
            runs.append([c])
    if len(runs) > 3:
        return f"{children[0].type} ×{len(children)}"
    return " → ".join(r[0].type + (f" ×{len(r)}" if len(r) > 1 else "") for r in runs)


def _run_name(run: list[ModuleNode]) -> str:
    """`layer3.1–5`, `block4–block11`."""
    return f"{_short_name(run[0].path)}–{run[-1].name}"


# The DOT text.


def render_dot(compiled: Compiled, depth: int | None = None, rankdir: str = "TB", show_figures: bool = False) -> str:
    """The diagram of a compiled spec as DOT text; `depth` folds modules that many levels down into one box each."""
    if rankdir not in RANKDIRS:
        raise ArchError("E092", f"unknown direction {rankdir!r}", None, f"use one of {', '.join(RANKDIRS)}")
    if depth is not None and depth < 1:
        raise ArchError("E092", f"depth must be at least 1, got {depth}", None, "leave it out to draw every layer")
    arch = compiled.arch
    plan = _Plan(arch, depth)
    nodes = arch.nodes
    figures = _Figures(compiled) if show_figures else None

    title = arch.name if arch.name == arch.root.type else f"{arch.name}: {arch.root.type}"
    title_lines = [("title", title)]
    if figures is not None:
        title_lines.append(("muted", f"{_count(compiled.params.params)} params · {_count(figures.total_macs)} MACs per image"))
    g = graphviz.Digraph(
        arch.name,
        graph_attr={
            "rankdir": rankdir,
            "label": _html(title_lines, left=True),
            "labelloc": "t",
            "labeljust": "l",
            "fontname": FONT,
            "fontsize": "14",
            "nodesep": "0.25",
            "ranksep": "0.15",
            "ordering": "out",
            "bgcolor": "white",
            "newrank": "true",
        },
        node_attr={"fontname": FONT, "fontsize": "11", "shape": "box", "style": "rounded,filled", "margin": "0.12,0.05", "height": "0.3"},
        edge_attr={"fontname": FONT, "fontsize": "9", "fontcolor": EDGE_COLOUR, "color": EDGE_COLOUR, "arrowsize": "0.6"},
    )

    units = plan.ordered_units()
    by_cluster: dict[str, list[_Unit]] = {}
    clusters: set[str] = set()
    for unit in units:
        by_cluster.setdefault(unit.cluster, []).append(unit)
        path = unit.cluster
        while path:
            clusters.add(path)
            path = _parent(path)
    first_node = {u.key: min(u.nodes) for u in units}
    cluster_first: dict[str, int] = {}
    cluster_training: dict[str, bool] = {}
    for unit in units:
        training = all(nodes[i].training_only for i in unit.nodes)
        path = unit.cluster
        while path:
            cluster_first[path] = min(cluster_first.get(path, first_node[unit.key]), first_node[unit.key])
            cluster_training[path] = cluster_training.get(path, True) and training
            path = _parent(path)
    children: dict[str, list[str]] = {}
    for path in sorted(clusters):
        children.setdefault(_parent(path), []).append(path)

    def emit(graph: graphviz.Digraph, path: str) -> None:
        items: list[tuple[int, str, _Unit | None]] = [(first_node[u.key], u.key, u) for u in by_cluster.get(path, [])]
        items += [(cluster_first[c], c, None) for c in children.get(path, [])]
        for _, name, unit in sorted(items, key=lambda item: item[0]):
            if unit is not None:
                _emit_unit(graph, unit, plan, figures)
                continue
            module = plan.modules[name]
            level = _depth(name)
            with graph.subgraph(name=f"cluster_{name}") as sub:
                sub.attr(
                    label=_html([("main", f"{_short_name(name)}: {module.type}")]),
                    labeljust="l",
                    fontsize="11",
                    style="rounded,filled,dashed" if cluster_training[name] else "rounded,filled",
                    fillcolor=CLUSTER_FILLS[(level - 1) % len(CLUSTER_FILLS)],
                    color=CLUSTER_BORDER,
                    penwidth="1",
                    tooltip=f"{name}: {module.type}({_args_text(module.args)})",
                )
                emit(sub, name)

    emit(g, "")

    # Edges: one per (source box, destination box, source node), labelled with the source's shape.
    # Training-only edges last: with ordering=out, auxiliary heads then sit right of the main path.
    seen: set[tuple[str, str, int]] = set()
    for n in sorted(nodes, key=lambda n: n.training_only):
        for i in n.inputs:
            src, dst = plan.unit_of[i], plan.unit_of[n.id]
            if src == dst or (src, dst, i) in seen:
                continue
            seen.add((src, dst, i))
            attrs = {"style": "dashed"} if n.training_only else {}
            g.edge(src, dst, label=fmt_shape(nodes[i].shape), **attrs)

    fill, border = PALETTE["io"]
    io = {"fillcolor": fill, "color": border, "fontcolor": "white"}
    for k, o in enumerate(arch.outputs):
        name = "output" if len(arch.outputs) == 1 else f"output {k + 1}"
        key = "output" if len(arch.outputs) == 1 else f"output{k + 1}"
        g.node(key, _html([("main", name)]), **io)
        g.edge(plan.unit_of[o], key, label=fmt_shape(nodes[o].shape))
    aux_names = _aux_names(arch)
    for k, o in sorted(enumerate(arch.aux_outputs), key=lambda item: item[1]):
        key = f"training_output{k + 1}"
        g.node(key, _html([("main", f"{aux_names[k]} (training)")]), fillcolor="white", color=border, style="rounded,filled,dashed")
        g.edge(plan.unit_of[o], key, label=fmt_shape(nodes[o].shape), style="dashed")
    source: str = g.source
    return source


def boxes_of_dot_nodes(arch: Architecture, depth: int | None = None) -> dict[str, tuple[str, list[str]]]:
    """DOT node name -> (what the box is called, the names of the layers it holds), as `render_dot` draws at `depth`:
    a layer's name for a layer's box, the module's path for a folded module (`layer2.0`), the run's for a run of
    blocks (`layer3.1–5`). Output nodes are left out."""
    plan = _Plan(arch, depth)
    out: dict[str, tuple[str, list[str]]] = {}
    for unit in plan.ordered_units():
        names = [arch.nodes[i].name for i in unit.nodes]
        if unit.module is not None:
            title = unit.module.path
        elif unit.run:
            title = f"{unit.run[0].path}–{unit.run[-1].name}"
        else:
            title = names[0]
        out[unit.key] = (title, names)
    return out


def _aux_names(arch: Architecture) -> list[str]:
    """`aux1`, `AuxLogits`: the top-level module each auxiliary output comes from, else `aux<k>`."""
    names: list[str] = []
    for k, o in enumerate(arch.aux_outputs):
        node = arch.nodes[o]
        name = (node.scope or node.module or "").split(".")[0] or f"aux{k + 1}"
        names.append(name if name not in names else f"{name} ({k + 1})")
    return names


def _args_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in args.items())


class _Figures:
    """Parameters and MACs per box, each module's parameters counted once (at its first application)."""

    def __init__(self, compiled: Compiled) -> None:
        self.per_module = compiled.params.per_module
        report = count_macs(compiled.arch)
        self.per_node = report.per_node
        self.total_macs = report.macs
        self.counted: set[str] = set()

    def line(self, arch: Architecture, node_ids: list[int]) -> str | None:
        params = macs = 0
        for i in node_ids:
            node = arch.nodes[i]
            if node.module is not None and node.module not in self.counted:
                self.counted.add(node.module)
                count = self.per_module.get(node.module)
                params += count.params if count is not None else 0
            cost = self.per_node.get(i)
            macs += cost.macs if cost is not None else 0
        parts = ([f"{_count(params)} params"] if params else []) + ([f"{_count(macs)} MACs"] if macs else [])
        return " · ".join(parts) or None


def _emit_unit(graph: graphviz.Digraph, unit: _Unit, plan: _Plan, figures: _Figures | None) -> None:
    arch = plan.arch
    nodes = [arch.nodes[i] for i in unit.nodes]
    training = all(n.training_only for n in nodes)
    lines: list[tuple[str, str]]
    if unit.module is None and not unit.run:
        (node,) = nodes
        family = FAMILIES.get(node.op, "shape")
        lines = [("main", describe_op(node.op, node.attrs))]
        where = f"line {node.loc.line} of {Path(node.loc.file).name}"
        tooltip = f"{node.name}: {fmt_shape(node.shape)} ({where})" if node.op != "input" else f"input: {fmt_shape(node.shape)}"
    elif unit.module is not None:
        family = "block"
        m = unit.module
        lines = [("main", f"{_short_name(m.path)}: {m.type}")]
        stage = _contents_line(m, plan)
        if stage is not None:
            lines.append(("main", stage))
        tooltip = f"{m.path}: {m.type}({_args_text(m.args)}), {len(nodes)} nodes"
    else:
        family = "block"
        first = unit.run[0]
        lines = [("main", f"{_run_name(unit.run)}: {first.type} ×{len(unit.run)}")]
        tooltip = f"{len(unit.run)} × {first.type}({_args_text(first.args)}), {len(nodes)} nodes"
    if figures is not None:
        extra = figures.line(arch, unit.nodes)
        if extra is not None:
            lines.append(("muted", extra))
    fill, border = PALETTE[family]
    attrs = {"fillcolor": fill, "color": border, "tooltip": tooltip}
    if family == "io":
        attrs["fontcolor"] = "white"
        lines = [(("light" if style == "muted" else style), text) for style, text in lines]
    if family == "block":
        attrs["penwidth"] = "1.5"
    if family == "merge":
        attrs["shape"] = "ellipse"
    if training:
        attrs["style"] = "rounded,filled,dashed"
    graph.node(unit.key, _html(lines), **attrs)


# Writing and rendering.


def render_bytes(dot_text: str, fmt: str, dpi: int | None = None, warn: Callable[[str], None] | None = None) -> bytes:
    """The picture in `fmt` (svg, png, pdf) by Graphviz's `dot`, at `dpi` (png only); an ArchError with an install hint
    where `dot` is missing. Graphviz's warnings go to `warn` (a PNG too large for cairo comes out scaled down, its text
    shrunk: `warn` is told so, with the picture's size)."""
    if fmt not in FORMATS or fmt == "dot":
        raise ArchError("E092", f"cannot render the format {fmt!r}", None, f"use one of {', '.join(FORMATS[1:])}")
    command = ["dot", f"-T{fmt}", *([f"-Gdpi={dpi}"] if dpi is not None else [])]
    try:
        # Not graphviz.pipe: it leaves Graphviz's warnings on the terminal or drops them, and they matter here.
        done = subprocess.run(command, input=dot_text.encode("utf-8"), capture_output=True, check=False)
    except FileNotFoundError as e:
        raise ArchError("E093", f"cannot render {fmt}: Graphviz's `dot` program was not found", None, INSTALL_HINT) from e
    stderr = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        raise ArchError(
            "E093", f"Graphviz's `dot` failed: {stderr or done.returncode}", None, "check the Graphviz installation with `dot -V`"
        )
    scaled = re.search(r"too large for cairo-renderer bitmaps\. Scaling by ([\d.]+)", stderr)
    if scaled and warn is not None:
        pixels = png_size(done.stdout)
        size = f" {pixels[0]}×{pixels[1]} pixels" if pixels else ""
        warn(
            f"the {fmt} is too large for Graphviz's cairo renderer, which scaled it by {float(scaled[1]):.2g} to{size}:"
            " its text may be unreadable; draw it as SVG (-f svg) or fold it with a smaller --depth"
        )
    return done.stdout


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, from its IHDR chunk; None for anything else."""
    if len(data) < 24 or not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# Each picture format's file extension, and the leading bytes of such a file.
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXTENSIONS = {".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png", ".pdf": "pdf"}


def diagram_format(fmt: str | None, output: Path | None) -> str:
    """The format to draw in: `fmt` if given, else the one the output's extension names, else svg. An extension naming
    another format than `fmt`, or none archc draws, is E092: a picture is what its name says."""
    if fmt is not None and fmt not in FORMATS:
        raise ArchError("E092", f"unknown diagram format {fmt!r}", None, f"use one of {', '.join(FORMATS)}")
    suffix = output.suffix.lower() if output is not None and str(output) != "-" else ""
    named = EXTENSIONS.get(suffix)
    if suffix and named is None:
        raise ArchError(
            "E092",
            f"cannot draw {output}: archc draws no {suffix} pictures",
            None,
            "name the output .svg, .png, .pdf or .dot (the format follows the extension), or leave the extension out and give -f",
        )
    if fmt is not None and named is not None and named != fmt:
        raise ArchError(
            "E092", f"-f {fmt} contradicts the output's name {output}, a {named} file", None, "leave out -f: the extension says the format"
        )
    return fmt or named or "svg"


def write_diagram(dot_text: str, path: Path | str, fmt: str, dpi: int | None = None, warn: Callable[[str], None] | None = None) -> Path:
    """Write the DOT text beside `path` (`path` itself for fmt 'dot') and, for svg, png or pdf, the picture at `path`.

    The .dot file is written first, so it is there even when Graphviz's `dot` program is missing (an ArchError).
    """
    if fmt not in FORMATS:
        raise ArchError("E092", f"unknown diagram format {fmt!r}", None, f"use one of {', '.join(FORMATS)}")
    path = Path(path)
    dot_path = path if fmt == "dot" else path.with_suffix(".dot")
    if dot_path == path and fmt != "dot":
        dot_path = path.with_name(path.name + ".dot")
    write_atomic(dot_path, dot_text.encode("utf-8"))
    if fmt != "dot":
        try:
            data = render_bytes(dot_text, fmt, dpi, warn)
        except ArchError as e:
            raise ArchError(e.code, f"{e.message}; the DOT text is in {dot_path}", None, e.hint) from e
        write_atomic(path, data)
    return path


def diagram_command(
    spec: Path,
    fmt: str | None = None,
    depth: int | str | None = None,
    rankdir: str = "TB",
    output: Path | None = None,
    figures: bool = False,
    allow_import_outside: bool = False,
    dpi: int | None = None,
    warn: Callable[[str], None] | None = None,
    overrides: dict[str, Any] | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> Path:
    """`archc diagram`: compile `spec` (with `-D` `overrides` and `--input` `input_shape`), write its diagram (default
    `<spec stem>.<fmt>` in the current directory) and the .dot beside it; returns the path of the diagram. The format
    is `fmt`, or the one `output`'s extension names, or svg (`diagram_format`); `output` `-` writes the picture (or the
    DOT text) to standard output, and no .dot file.
    `depth` is a number of levels, `all` for every layer, or None for the deepest that fits a page (`fit_depth`)."""
    fmt = diagram_format(fmt, output)
    if dpi is not None and fmt != "png":
        raise ArchError("E092", f"--dpi applies to png pictures, not {fmt}", None, "leave out --dpi, or draw a png")
    compiled = compile_spec(spec, overrides, input_shape=input_shape, allow_import_outside=allow_import_outside)
    dot_text = render_dot(compiled, resolve_depth(compiled.arch, depth), rankdir, figures)
    if output is not None and str(output) == "-":
        data = dot_text.encode("utf-8") if fmt == "dot" else render_bytes(dot_text, fmt, dpi, warn)
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return Path("-")
    target = output if output is not None else Path(f"{Path(spec).stem}.{fmt}")
    return write_diagram(dot_text, target, fmt, dpi, warn)
