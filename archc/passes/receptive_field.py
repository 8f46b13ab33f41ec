"""Receptive fields: for every node, per spatial dimension, the size, the jump (effective stride) and the centre of
the first output unit's field in input pixels, by the recurrences of Araujo, Norris and Sim, "Computing Receptive
Fields of Convolutional Neural Networks" (Distill, 2019):

    size_out = size_in + (k_eff - 1) * jump_in          k_eff = dilation * (kernel - 1) + 1
    jump_out = jump_in * stride
    start_out = start_in + ((k_eff - 1) / 2 - padding) * jump_in

The input has size 1, jump 1 and start 0 (the centre of pixel 0). Where paths merge (add, cat) the field is the
largest of the incoming ones; paths whose centres or jumps disagree give a warning. A global operation (flatten,
an adaptive pool to 1×1) sees its whole input: its field is that input's field over every position. A normalisation
with statistics over the whole map (groupnorm, instancenorm), a softmax along a spatial dimension, self-attention
(`mha`: every token attends to all) and a mean or maximum over positions give every output unit that whole field,
the same wherever the unit stands: jump 0, which later windows keep. An adaptive pool whose output keeps its input's
size is a window of 1 and stride 1: the identity for the field.

The headline figure is the field of the last spatial feature map (`last_feature_map`), the one papers quote, not the
output's: a classifier's output sits after global pooling, whose field covers the whole map at any input size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from archc import ops
from archc.ir import Architecture, Node


@dataclass(frozen=True)
class Field:
    """One spatial dimension of a receptive field."""

    size: float
    jump: float
    start: float

    def through_window(self, kernel: int, stride: float, padding: int, dilation: int = 1) -> Field:
        k_eff = dilation * (kernel - 1) + 1
        return Field(self.size + (k_eff - 1) * self.jump, self.jump * stride, self.start + ((k_eff - 1) / 2 - padding) * self.jump)

    def whole(self, extent: int) -> Field:
        """The field of a unit that sees all `extent` positions of this map."""
        return self.through_window(extent, extent, 0)

    def everywhere(self, extent: int) -> Field:
        """The field of each unit of a map whose every unit sees all `extent` positions of this map (a normalisation
        over the whole map): the same field wherever the unit stands, so the jump is 0 and later windows keep it."""
        whole = self.whole(extent)
        return Field(whole.size, 0, whole.start)


# The field of a learnable tensor, which no input position reaches.
NOTHING = Field(0, 0, 0)


@dataclass(frozen=True)
class ReceptiveField:
    """Height and width fields of a node."""

    h: Field
    w: Field

    def as_dict(self) -> dict[str, list[float]]:
        return {
            "size": [_number(self.h.size), _number(self.w.size)],
            "jump": [_number(self.h.jump), _number(self.w.jump)],
            "start": [_number(self.h.start), _number(self.w.start)],
        }


def _number(x: float) -> float:
    return int(x) if float(x).is_integer() else x


@dataclass(frozen=True)
class FieldReport:
    per_node: dict[int, ReceptiveField]
    output: ReceptiveField  # of the eval-mode output: through global pooling, for a classifier
    feature_node: int  # the last spatial feature map (`last_feature_map`)
    warnings: list[str]

    @property
    def feature(self) -> ReceptiveField:
        """The headline field: that of a unit of the last spatial feature map."""
        return self.per_node[self.feature_node]


def _window(node: Node) -> tuple[tuple[int, int], tuple[float, float], tuple[int, int], tuple[int, int]] | None:
    """Kernel, stride, padding and dilation of a sliding-window op, or None for pointwise ones."""
    a = node.attrs
    if node.op in ("conv", "maxpool", "avgpool"):
        kernel = ops.pair(a["kernel_size"])
        stride = ops.pair(a["stride"] if a.get("stride") is not None else a["kernel_size"])
        return kernel, stride, ops.padding_pair(a), ops.pair(a.get("dilation", 1))
    if node.op == "conv2d":  # a convolution by a weight tensor (out, in / groups, kh, kw)
        w = a["weight"]
        stride = ops.pair(a["stride"])
        return (w[2], w[3]), stride, ops.padding_pair({**a, "kernel_size": (w[2], w[3])}), ops.pair(a["dilation"])
    if node.op == "pad" and tuple(_axes(node)) == ops.MAP_AXES:
        # Padding widens no field: it shifts the positions, as a 1×1 window with the padding before (top, left).
        pad = a["pad"]
        return (1, 1), (1, 1), (pad[2] if len(pad) >= 4 else 0, pad[0]), (1, 1)
    return None


# Normalisations whose statistics are taken over the whole map: every output unit sees every input position.
SPATIAL_STATISTICS = ("groupnorm", "instancenorm")


def _adaptive(size_in: int, size_out: int) -> tuple[int, float]:
    """The largest window and the mean stride of PyTorch's adaptive pooling from size_in to size_out."""
    windows = [math.ceil((i + 1) * size_in / size_out) - (i * size_in) // size_out for i in range(size_out)]
    return max(windows), size_in / size_out


def compute_receptive_fields(arch: Architecture) -> FieldReport:
    """The receptive field of every node and of the eval-mode output."""
    unit = Field(1, 1, 0)
    fields: dict[int, ReceptiveField] = {}
    grids: dict[int, tuple[int, int]] = {}
    warnings: list[str] = []
    for node in arch.nodes:
        grids[node.id] = _grid(node, grids)
        if node.op == "input":
            fields[node.id] = ReceptiveField(unit, unit)
            continue
        if not node.inputs:  # a learnable tensor: no input position reaches it (jump 0: it lines up with any field)
            fields[node.id] = ReceptiveField(NOTHING, NOTHING)
            continue
        incoming = [fields[i] for i in node.inputs]
        first = incoming[0]
        source = arch.nodes[node.inputs[0]].shape
        window = _window(node)
        if window is not None:
            (kh, kw), (sh, sw), (ph, pw), (dh, dw) = window
            fields[node.id] = ReceptiveField(first.h.through_window(kh, sh, ph, dh), first.w.through_window(kw, sw, pw, dw))
        elif node.op in ("adaptive_avgpool", "adaptive_maxpool"):
            (kh, sh), (kw, sw) = _adaptive(source[1], node.shape[1]), _adaptive(source[2], node.shape[2])
            fields[node.id] = ReceptiveField(first.h.through_window(kh, sh, 0), first.w.through_window(kw, sw, 0))
        elif (
            node.op == "mha"
            or (node.op in ("matmul", "attention") and all(_positional(arch.nodes[i]) for i in node.inputs))
            or (node.op in ops.REDUCTIONS and _reduces_positions(node, arch.nodes[node.inputs[0]]))
        ):
            # Attention: every token attends to every token (a matrix product of two tensors of positions, as
            # attention's scores, mixes them all). A mean or maximum over positions: each unit sees them all.
            gh, gw = grids[node.inputs[0]]
            fields[node.id] = ReceptiveField(first.h.everywhere(gh), first.w.everywhere(gw))
        elif len(node.inputs) == 1 and _positional(arch.nodes[node.inputs[0]]) and not _positional(node):
            # Positions merged into features (flatten): every unit sees the whole grid the positions lay on.
            gh, gw = grids[node.inputs[0]]
            fields[node.id] = ReceptiveField(first.h.whole(gh), first.w.whole(gw))
        elif node.op in SPATIAL_STATISTICS:
            fields[node.id] = ReceptiveField(first.h.everywhere(source[1]), first.w.everywhere(source[2]))
        elif node.op in ("softmax", "log_softmax") and len(source) == 3 and ops.softmax_axis(node.attrs["dim"], tuple(source), node.op) > 0:
            along_h = ops.softmax_axis(node.attrs["dim"], tuple(source), node.op) == 1
            h = first.h.everywhere(source[1]) if along_h else first.h
            w = first.w if along_h else first.w.everywhere(source[2])
            fields[node.id] = ReceptiveField(h, w)
        elif node.op == "roll":
            fields[node.id] = _roll(node, first, source)
        elif len(incoming) > 1:
            shapes = [arch.nodes[i].shape for i in node.inputs]
            fields[node.id] = ReceptiveField(
                _merge(node, [f.h for f in incoming], _broadcast(shapes, node, "H"), "height", warnings),
                _merge(node, [f.w for f in incoming], _broadcast(shapes, node, "W"), "width", warnings),
            )
        else:
            fields[node.id] = first
    return FieldReport(fields, fields[arch.outputs[0]], last_feature_map(arch), warnings)


def last_feature_map(arch: Architecture) -> int:
    """The id of the last spatial feature map: of the nodes the eval-mode output depends on (auxiliary heads and
    training-only nodes left out), the last in execution order whose output has a height and a width (H and W axes,
    in any order) and more than one position along either. That is the map global pooling or a flatten then reduce
    (ResNet's layer4, VGG's pool5 and the adaptive pool that keeps its 7×7), or the output itself for a network whose
    output is a map. A map of one position (a LeNet-like stack, or a small input, that ends in 1×1) is left out: a
    single unit has no neighbours, it is a feature vector as after global pooling. Where no map has more than one
    position (an input of flat features, or of 1×1), the input node. A sequence of tokens (an L axis, as a ViT's
    encoder output) counts as a map of its positions; a learnable tensor (a position embedding) stands nowhere."""
    needed = {arch.outputs[0]}
    for node in reversed(arch.nodes):
        if node.id in needed:
            needed.update(node.inputs)
    for node in reversed(arch.nodes):
        if node.id not in needed or node.training_only or node.op in ops.TENSOR_MEMBERS:
            continue
        axes = _axes(node)
        if "H" in axes and "W" in axes and max(_extent(node, "H"), _extent(node, "W")) > 1:
            return node.id
        if "L" in axes and node.shape[axes.index("L")] > 1:
            return node.id
    return arch.nodes[0].id


def _axes(node: Node) -> list[str]:
    return node.axes or list(ops.MAP_AXES if len(node.shape) == 3 else ("F",) * len(node.shape))


def _extent(node: Node, axis: str) -> int:
    """The height (`axis` "H") or width ("W") of a node's grid: the product of its dimensions of that kind, which a
    window partition splits into pieces (blocks, and positions within a block)."""
    return math.prod(size for size, kind in zip(node.shape, _axes(node), strict=True) if kind == axis)


def _positional(node: Node) -> bool:
    """Whether a node's units stand at positions of the image: a dimension of it is the height, the width or tokens."""
    return bool(set(_axes(node)) & {"H", "W", "L"})


def _grid(node: Node, grids: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """The height and width of the grid of positions a node's units stand on: its own H and W, else its input's
    (tokens keep the grid they were flattened from)."""
    if node.op in ops.TENSOR_MEMBERS:  # a learnable or fixed tensor stands at no position of the image
        return (1, 1)
    axes = _axes(node)
    if "H" in axes and "W" in axes:
        return _extent(node, "H"), _extent(node, "W")
    # A learnable tensor (a class token joined to the tokens) stands on no grid: the first input that does decides.
    return next((grids[i] for i in node.inputs if grids[i] != (1, 1)), grids[node.inputs[0]] if node.inputs else (1, 1))


def _roll(node: Node, first: ReceptiveField, source: list[int]) -> ReceptiveField:
    """torch.roll along the height or width: output position i holds input position (i - shift) mod size, so the first
    unit's field moves by (-shift) mod size input steps of the map rolled (size and jump kept). The units that wrap
    around the edge do not follow the jump: the figure is the first unit's, as everywhere in this pass."""
    axes = ops.MAP_AXES if len(source) == 3 else tuple("F" for _ in source)
    axes = tuple(node.axes) if node.axes else axes
    shifts, dims = node.attrs["shifts"], node.attrs["dims"]
    shifts, dims = (shifts if isinstance(shifts, tuple) else (shifts,)), (dims if isinstance(dims, tuple) else (dims,))
    moved = {"H": 0, "W": 0}
    for shift, dim in zip(shifts, dims, strict=True):
        d = dim % (len(source) + 1) - 1
        if axes[d] in moved:
            moved[axes[d]] += shift
    h, w = first.h, first.w
    if moved["H"]:
        size = source[axes.index("H")]
        h = Field(h.size, h.jump, h.start + (-moved["H"] % size) * h.jump)
    if moved["W"]:
        size = source[axes.index("W")]
        w = Field(w.size, w.jump, w.start + (-moved["W"] % size) * w.jump)
    return ReceptiveField(h, w)


def _reduces_positions(node: Node, source: Node) -> bool:
    """Whether a reduction (`mean`, `amax`) runs over a dimension of positions (height, width or tokens)."""
    axes = _axes(source)
    return any(axes[d] in ("H", "W", "L") for d in ops.reduced_axes(node.attrs, len(axes)))


def _broadcast(shapes: list[list[int]], node: Node, axis: str) -> list[bool]:
    """Which inputs of an elementwise node are broadcast along its height or width (`axis`, "H" or "W": size 1 against
    a larger output; a split-attention gate N×radix×C×1×1 against N×radix×C×H×W as much as an N×C×1×1 one): each of
    their values meets every output position, so their fields do not have to line up with the others'."""
    axes, out = _axes(node), node.shape
    if axis not in axes:
        return [False] * len(shapes)
    i = axes.index(axis)
    return [len(s) == len(out) and s[i] == 1 and out[i] > 1 for s in shapes]


def _merge(node: Node, incoming: list[Field], broadcast: list[bool], axis: str, warnings: list[str]) -> Field:
    # A broadcast input gives every output position the same value, so the same field: jump 0 (squeeze-and-excitation
    # gates, whose field is the whole map; before, it kept the pooled jump, which later windows multiplied).
    incoming = [Field(f.size, 0, f.start) if b else f for f, b in zip(incoming, broadcast, strict=True)]
    widest = max(incoming, key=lambda f: f.size)
    # A field that is the same everywhere (jump 0) covers the others' regions: it cannot be misaligned with them.
    aligned = [f for f, b in zip(incoming, broadcast, strict=True) if not b and f.jump != 0]
    centres = {f.start for f in aligned}
    jumps = {f.jump for f in aligned}
    if len(centres) > 1 or len(jumps) > 1:
        warnings.append(
            f"{node.loc.file}:{node.loc.line}:{node.loc.column}: `{node.name}` merges paths whose {axis} fields are misaligned "
            f"(centres {sorted(centres)}, jumps {sorted(jumps)})"
        )
    return widest
