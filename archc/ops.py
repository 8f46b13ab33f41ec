"""The op table: one row per primitive op, with every rule a pass or an emitter needs.

A row gives the op's arguments and defaults, its output shape, its parameter and buffer counts, and how PyTorch
spells it as a module (`nn.Conv2d(...)`) and inline (`F.relu(x)`). Adding an op is adding a row; no pass grows an
`if op == ...` ladder. Shape rules use plain arithmetic, so they run on numbers and on `Sym` alike.

Shapes leave the batch out: `(C, H, W)` for feature maps, `(F,)` for flat features.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from archc.sema.symbolic import UNKNOWN, Sym, Unknown, is_symbolic, literal, same_value

Shape = tuple[Any, ...]
Attrs = dict[str, Any]
# What each dimension of a sample is: "C" channels, "H" and "W" the image's height and width, "L" positions
# flattened into tokens, "F" flat features. A feature map is C×H×W; after permute(x, (0, 2, 3, 1)), H×W×C.
Axes = tuple[str, ...]
MAP_AXES: Axes = ("C", "H", "W")
SPATIAL = frozenset({"H", "W"})

REQUIRED = object()


class OpError(Exception):
    """An op's arguments or input shape are wrong; the caller adds the location. `code` is from errors.CODES."""

    def __init__(self, code: str, message: str, hint: str | None = None, arg: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.arg = arg  # the argument at fault, when there is one


def pair(value: Any) -> tuple[Any, Any]:
    """An int or a 2-tuple as a 2-tuple; a symbolic argument of unknown form gives unknown sizes."""
    if isinstance(value, tuple):
        if len(value) != 2:
            raise OpError("E016", f"expected one number or a pair (h, w), got {len(value)} numbers")
        return value[0], value[1]
    if isinstance(value, Sym):
        return UNKNOWN, UNKNOWN
    return value, value


def _feature_map(shape: Shape, op: str) -> Shape:
    if len(shape) != 3:
        raise OpError("E035", f"{op} needs a C×H×W feature map, got flat features {fmt_shape(shape)}", "apply it before `flatten`")
    return shape


def _flat(shape: Shape, op: str) -> Shape:
    if len(shape) != 1:
        raise OpError("E034", f"{op} needs flat features, got a feature map {fmt_shape(shape)}", "add `flatten()` before it")
    return shape


def _window_out(size: Any, kernel: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any) -> Any:
    """PyTorch's output size of a sliding window (conv and pooling)."""
    if isinstance(size, Unknown) or any(isinstance(v, (Unknown, Sym)) for v in (kernel, stride, padding, dilation, ceil_mode)):
        return (
            UNKNOWN if isinstance(size, Unknown) or not isinstance(size, Sym) else _symbolic_window(size, kernel, stride, padding, dilation)
        )
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        # PyTorch drops a last window that would start in the right padding.
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return span // stride + 1


def _symbolic_window(size: Sym, kernel: Any, stride: Any, padding: Any, dilation: Any) -> Any:
    if any(isinstance(v, Unknown) for v in (kernel, stride, padding, dilation)):
        return UNKNOWN
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def padding_pair(attrs: Attrs) -> tuple[Any, Any]:
    """The padding before the first position, per axis: a number or pair, or PyTorch's "valid" (none) and "same" (the
    output keeps the input's size; PyTorch puts the odd one of an even total after, so before is total // 2)."""
    padding = attrs.get("padding", 0)
    if padding == "valid":
        return 0, 0
    if padding == "same":
        kh, kw = pair(attrs["kernel_size"])
        dh, dw = pair(attrs.get("dilation", 1))
        return tuple(UNKNOWN if is_symbolic(k) or is_symbolic(d) else d * (k - 1) // 2 for k, d in ((kh, dh), (kw, dw)))  # type: ignore[return-value]
    return pair(padding)


def _check_window(shape: Shape, attrs: Attrs, op: str) -> None:
    """Concrete checks shared by conv and pooling: the window must fit the padded map."""
    _, h, w = _feature_map(shape, op)
    kh, kw = pair(attrs["kernel_size"])
    ph, pw = padding_pair(attrs)
    dh, dw = pair(attrs.get("dilation", 1))
    sh, sw = pair(attrs.get("stride") or attrs["kernel_size"])
    for size, k, p, d, s, axis in ((h, kh, ph, dh, sh, "height"), (w, kw, pw, dw, sw, "width")):
        if not all(isinstance(v, int) for v in (size, k, p, d, s)):
            continue
        if k <= 0 or s <= 0 or d <= 0 or p < 0:
            raise OpError("E016", f"{op}: kernel, stride and dilation must be positive and padding non-negative")
        if d * (k - 1) + 1 > size + 2 * p:
            raise OpError(
                "E032",
                f"{op}: the {axis} {size} (padded {size + 2 * p}) is smaller than the kernel {d * (k - 1) + 1}",
                "use a smaller kernel or stride earlier, more padding, or a larger input",
            )


def fmt_shape(shape: Shape) -> str:
    """`N×C×H×W` with the batch left symbolic."""
    return "×".join(["N", *(str(d) for d in shape)])


# Rules per op.


def _conv_shape(a: Attrs, s: Shape) -> Shape:
    c, h, w = _feature_map(s, "conv")
    if a["padding"] == "same":  # stride 1 (_conv_check): the input's size
        return (a["out_channels"], h, w)
    kh, kw = pair(a["kernel_size"])
    sh, sw = pair(a["stride"])
    ph, pw = padding_pair(a)
    dh, dw = pair(a["dilation"])
    return (a["out_channels"], _window_out(h, kh, sh, ph, dh, False), _window_out(w, kw, sw, pw, dw, False))


def _conv_check(a: Attrs, s: Shape) -> None:
    c = s[0]
    groups, out = a["groups"], a["out_channels"]
    if isinstance(out, int) and out <= 0:
        raise OpError("E016", f"conv: out_channels must be positive, got {out}")
    if a["padding"] == "same" and pair(a["stride"]) != (1, 1):
        raise OpError(
            "E016",
            'conv: padding = "same" keeps the size, so the stride is 1, as in PyTorch',
            "give the padding as numbers for a strided convolution",
            arg="padding",
        )
    if isinstance(groups, int) and isinstance(c, int) and isinstance(out, int):
        if groups <= 0 or c % groups or out % groups:
            raise OpError(
                "E033",
                f"conv: groups={groups} must divide both the input channels ({c}) and the output channels ({out})",
                "choose groups dividing both channel counts",
            )
    _check_window(s, a, "conv")


def _conv_params(a: Attrs) -> Any:
    kh, kw = pair(a["kernel_size"])
    weight = a["out_channels"] * (a["in_channels"] // a["groups"]) * kh * kw
    return weight + (a["out_channels"] if a["bias"] else 0)


def _conv_module(a: Attrs) -> tuple[str, list[Any], Attrs]:
    return "nn.Conv2d", [a["in_channels"], a["out_channels"]], _non_default(a, "conv", skip=("in_channels", "out_channels"))


def _linear_shape(a: Attrs, s: Shape) -> Shape:
    """`nn.Linear` maps the last dimension: flat features, tokens (N×L×D) or a channels-last map (N×H×W×C)."""
    return (*s[:-1], a["out_features"])


def _linear_params(a: Attrs) -> Any:
    return a["in_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0)


def _batchnorm_params(a: Attrs) -> Any:
    return 2 * a["num_features"] if a["affine"] else 0


def _batchnorm_buffers(a: Attrs) -> Any:
    return 2 * a["num_features"] + 1 if a["track_running_stats"] else 0


def _batchnorm_module(a: Attrs) -> tuple[str, list[Any], Attrs]:
    cls = "nn.BatchNorm2d" if a["rank"] == 3 else "nn.BatchNorm1d"
    return cls, [a["num_features"]], _non_default(a, "batchnorm", skip=("num_features", "rank"))


def _numeric_padding(a: Attrs, op: str) -> None:
    if isinstance(a["padding"], str):
        raise OpError("E016", f'{op}: padding = "{a["padding"]}" is a convolution\'s', "give the padding as numbers", arg="padding")


def _pool_shape(a: Attrs, s: Shape) -> Shape:
    _numeric_padding(a, "pooling")
    c, h, w = _feature_map(s, "pooling")
    kh, kw = pair(a["kernel_size"])
    sh, sw = pair(a["stride"] if a["stride"] is not None else a["kernel_size"])
    ph, pw = pair(a["padding"])
    dh, dw = pair(a.get("dilation", 1))
    return (c, _window_out(h, kh, sh, ph, dh, a["ceil_mode"]), _window_out(w, kw, sw, pw, dw, a["ceil_mode"]))


def _pool_check(a: Attrs, s: Shape) -> None:
    _numeric_padding(a, "pooling")
    kh, kw = pair(a["kernel_size"])
    ph, pw = pair(a["padding"])
    for k, p in ((kh, ph), (kw, pw)):
        if isinstance(k, int) and isinstance(p, int) and p * 2 > k:
            raise OpError("E037", f"pooling: padding {p} must be at most half the kernel size {k}", f"use padding {k // 2} or less")
    _check_window(s, a, "pooling")


def _adaptive_shape(a: Attrs, s: Shape) -> Shape:
    c, _, _ = _feature_map(s, "adaptive pooling")
    oh, ow = pair(a["output_size"])
    return (c, oh, ow)


def _dim(value: Any, rank: int, op: str, arg: str) -> int:
    """A PyTorch dimension of a batched tensor of `rank` dims (the batch is 0), negative counting from the end, as a
    positive index; the batch itself is refused."""
    full = rank + 1
    if is_symbolic(value):
        raise OpError("E038", f"{op}: `{arg}` must be a number the spec fixes, not a constructor argument", arg=arg)
    if not _is_int(value) or not -full <= value < full:
        raise OpError("E038", f"{op}: `{arg}` must be a dimension from 1 to {rank} (or -{rank} to -1), got {value!r}", arg=arg)
    dim = value % full
    if dim == 0:
        raise OpError(
            "E038",
            f"{op}: `{arg}` is the batch dimension",
            "dimensions count the batch as 0, as PyTorch's do: the first dimension of a sample is 1",
            arg=arg,
        )
    return int(dim)


def dimension(value: Any, rank: int, op: str, arg: str) -> int:
    """`_dim` for callers outside the op table (cat's `dim`), raising OpError alike."""
    return _dim(value, rank, op, arg)


def joined_shapes(shapes: list[Shape], batched: list[bool]) -> list[Shape]:
    """The shapes `cat` joins, batch left out: a learnable tensor (`batched` False) with a leading 1 is expanded to
    the batch (a class token, (1, 1, D), joins N×L×D tokens as 1×D)."""
    rank = max((len(s) for s, b in zip(shapes, batched, strict=True) if b), default=None)
    out = []
    for s, b in zip(shapes, batched, strict=True):
        if not b:
            if rank is None or len(s) != rank + 1 or s[0] != 1:
                raise OpError(
                    "E031",
                    f"a learnable tensor of shape {'×'.join(str(d) for d in s)} cannot join activations of rank {rank}",
                    "give it a leading 1 for the batch, to which it is expanded: a class token is param((1, 1, dim))",
                )
            s = tuple(s[1:])
        out.append(s)
    return out


def _flatten_range(a: Attrs, s: Shape) -> tuple[int, int]:
    start = a["start_dim"]
    if not isinstance(start, int) or isinstance(start, bool) or not 1 <= start <= len(s):
        raise OpError(
            "E038",
            f"flatten: start_dim must be between 1 and {len(s)} for an input of {fmt_shape(s)}, got {start!r}",
            "start_dim 0 would merge the batch dimension; flatten(1) flattens each sample",
        )
    end = _dim(a["end_dim"], len(s), "flatten", "end_dim")
    if end < start:
        raise OpError("E038", f"flatten: end_dim {a['end_dim']} comes before start_dim {start}", arg="end_dim")
    return start, end


def _flatten_shape(a: Attrs, s: Shape) -> Shape:
    start, end = _flatten_range(a, s)
    size: Any = 1
    for d in s[start - 1 : end]:
        size = size * d
    return (*s[: start - 1], size, *s[end:])


def _merge_axes(labels: Axes) -> str:
    """The label of dimensions flattened into one: channels stay channels (a channel shuffle), positions become
    tokens (`L`), anything else flat features (`F`)."""
    kinds = set(labels)
    if kinds == {"C"}:
        return "C"
    if len(kinds) == 1 and kinds <= SPATIAL:
        return labels[0]  # pieces of the height made whole again (a window partition undone)
    if kinds <= {"H", "W", "L"}:
        return "L"
    return "F"


def _flatten_axes(a: Attrs, axes: Axes) -> Axes:
    start, end = _flatten_range(a, tuple(range(len(axes))))
    return (*axes[: start - 1], _merge_axes(axes[start - 1 : end]), *axes[end:])


def _unflatten_shape(a: Attrs, s: Shape) -> Shape:
    dim = _dim(a["dim"], len(s), "unflatten", "dim")
    sizes = a["sizes"]
    if not isinstance(sizes, tuple) or not sizes or not all(is_symbolic(v) or (_is_int(v) and (v > 0 or v == -1)) for v in sizes):
        raise OpError("E016", f"unflatten: `sizes` must be a tuple of positive sizes (one may be -1), got {sizes!r}", arg="sizes")
    known: Any = 1
    for v in sizes:
        if is_symbolic(v) or v != -1:
            known = known * v
    whole = s[dim - 1]
    wild = [v for v in sizes if not is_symbolic(v) and v == -1]
    if len(wild) > 1 or (_is_int(whole) and _is_int(known) and (whole % known if wild else whole != known)):
        raise OpError("E016", f"unflatten: sizes {sizes} do not multiply to the dimension's {whole}", arg="sizes")
    out = tuple(whole // known if not is_symbolic(v) and v == -1 else v for v in sizes)
    return (*s[: dim - 1], *out, *s[dim:])


def _unflatten_axes(a: Attrs, axes: Axes) -> Axes:
    dim = _dim(a["dim"], len(axes), "unflatten", "dim")
    return (*axes[: dim - 1], *[axes[dim - 1]] * len(a["sizes"]), *axes[dim:])


def _chunk_shape(a: Attrs, s: Shape) -> Shape:
    dim = _dim(a["dim"], len(s), "chunk", "dim")
    chunks, size = a["chunks"], s[dim - 1]
    if not is_symbolic(chunks) and (not _is_int(chunks) or chunks < 1):
        raise OpError("E016", f"chunk: `chunks` must be a positive integer, got {chunks!r}", arg="chunks")
    if _is_int(size) and size % chunks:
        raise OpError(
            "E016",
            f"chunk: dimension {dim} of {fmt_shape(s)} has {size}, which does not split into {chunks} equal parts",
            "archc splits into equal parts only: choose `chunks` dividing the size",
            arg="chunks",
        )
    return (*s[: dim - 1], size // chunks, *s[dim:])


def _split_shape(a: Attrs, s: Shape) -> Shape:
    dim = _dim(a["dim"], len(s), "split", "dim")
    sizes, whole = a["split_sizes"], s[dim - 1]
    if not isinstance(sizes, tuple) or not sizes or not all(is_symbolic(v) or (_is_int(v) and v > 0) for v in sizes):
        got = literal(sizes)
        raise OpError("E016", f"split: `split_sizes` must be a tuple of positive sizes, got {got}", "e.g. (16, 48)", arg="split_sizes")
    if _is_int(whole) and all(_is_int(v) for v in sizes) and sum(sizes) != whole:
        raise OpError(
            "E016",
            f"split: sizes {sizes} add up to {sum(sizes)}, and dimension {dim} of {fmt_shape(s)} has {whole}",
            "the parts must add up to the whole dimension",
            arg="split_sizes",
        )
    return (*s[: dim - 1], sizes[a.get("index", 0)], *s[dim:])


def _unbind_shape(a: Attrs, s: Shape) -> Shape:
    dim = _dim(a["dim"], len(s), "unbind", "dim")
    return (*s[: dim - 1], *s[dim:])


def _unbind_axes(a: Attrs, axes: Axes) -> Axes:
    return _unbind_shape(a, axes)


def pieces(op: Op, attrs: Attrs, shape: Shape) -> Any:
    """How many tensors a multi-output op returns, given its input's shape (`unbind` gives one per position)."""
    if op.name == "unbind":
        return shape[_dim(attrs["dim"], len(shape), "unbind", "dim") - 1]
    return int(attrs["chunks"]) if op.name == "chunk" else len(attrs["split_sizes"])


def _matrices(op: str, shapes: list[Shape], names: tuple[str, ...]) -> None:
    for s, name in zip(shapes, names, strict=True):
        if len(s) < 2:
            raise OpError(
                "E039",
                f"{op}: {name} is {fmt_shape(s)}, and a matrix product needs two dimensions besides the batch",
                "give each sample rows and columns: tokens N×L×D, or heads N×H×L×D",
            )


def _leading(op: str, shapes: list[Shape]) -> Shape:
    """The leading dimensions (before the last two, the batch left out) of the operands of a matrix product,
    broadcast as PyTorch's `matmul` does."""
    lead = shapes[0][:-2]
    for other in shapes[1:]:
        try:
            lead = broadcast(lead, other[:-2])
        except OpError:
            shown = " and ".join(fmt_shape(s) for s in shapes)
            raise OpError(
                "E030",
                f"{op}: the dimensions before the last two of {shown} do not broadcast",
                "they must be equal, or one of them 1, and as many in each operand",
            ) from None
    return lead


def _meet(op: str, first: Shape, second: Shape, what: str, hint: str) -> None:
    k, k2 = first[-1], second[-2]
    if _is_int(k) and _is_int(k2) and k != k2:
        raise OpError("E039", f"{op}: cannot multiply {fmt_shape(first)} by {fmt_shape(second)}: {what} ({k} against {k2})", hint)


def _matmul_shape(a: Attrs, shapes: list[Shape]) -> Shape:
    """PyTorch's `a @ b` on a batch of stacks of matrices: (..., n, k) @ (..., k, m) -> (..., n, m), the dimensions
    before the last two broadcast."""
    first, second = shapes
    _matrices("matmul", shapes, ("the first operand", "the second operand"))
    _meet(
        "matmul",
        first,
        second,
        "the first's last dimension is not the second's next to last",
        "the columns of the first meet the rows of the second: transpose one, as `matmul(q, transpose(k, -2, -1))`",
    )
    return (*_leading("matmul", shapes), first[-2], second[-1])


def _matmul_axes(a: Attrs, axes: list[Axes]) -> Axes:
    """What each dimension of `a @ b` is: the rows of the first, the columns of the second, the inner dimension
    gone (timm's global context, (C, L) @ (L, 1), gives channels, not tokens); the leading dimensions those of the
    operand with more of them (the first's where as many)."""
    first, second = axes
    lead = first[:-2] if len(first) >= len(second) else second[:-2]
    return (*lead, first[-2], second[-1])


def _gather_shape(a: Attrs, shapes: list[Shape]) -> Shape:
    """`table[index]` with an integer tensor: a row of the table for each index, index.shape + table.shape[1:]."""
    table, index = shapes
    if not table:
        raise OpError("E089", "indexing a tensor of no dimensions by a tensor", "the table has rows: a param((n, k)) or a buffer")
    return (*index, *table[1:])


def _gather_cost(a: Attrs, shapes: list[Shape], out: Shape) -> Cost:
    """Rows copied, no arithmetic."""
    return Cost()


def _matmul_cost(a: Attrs, shapes: list[Shape], out: Shape) -> Cost:
    """One multiply-accumulate per output element and per term of the inner dimension (FlopCounterMode's bmm / 2)."""
    return Cost(numel(out) * shapes[0][-1])


def _attention_shape(a: Attrs, shapes: list[Shape]) -> Shape:
    """F.scaled_dot_product_attention: queries (..., L, E), keys (..., S, E), values (..., S, Ev) -> (..., L, Ev)."""
    q, k, v = shapes
    _matrices("attention", shapes, ("the queries", "the keys", "the values"))
    if _is_int(q[-1]) and _is_int(k[-1]) and q[-1] != k[-1]:
        raise OpError(
            "E039",
            f"attention: the queries {fmt_shape(q)} and the keys {fmt_shape(k)} differ in their last dimension ({q[-1]} against {k[-1]})",
            "queries and keys have one size per head",
        )
    if _is_int(k[-2]) and _is_int(v[-2]) and k[-2] != v[-2]:
        raise OpError(
            "E039",
            f"attention: the keys {fmt_shape(k)} and the values {fmt_shape(v)} differ in their number ({k[-2]} against {v[-2]})",
            "one value per key: both are next to last",
        )
    return (*_leading("attention", shapes), q[-2], v[-1])


def _attention_cost(a: Attrs, shapes: list[Shape], out: Shape) -> Cost:
    """The scores (q @ kᵀ: L·S·E per stack) and their weighted sum of the values (L·S·Ev), as FlopCounterMode counts
    `F.scaled_dot_product_attention` (its two bmm on CPU, its fused kernels on CUDA); the softmax is none."""
    q, k, v = shapes
    stacks = numel(out[:-2])
    return Cost(stacks * q[-2] * k[-2] * (q[-1] + v[-1]))


def _operands_only(a: Attrs, s: Shape) -> Shape:
    raise AssertionError("an op of several tensors has its shape from `joint_shape`")


def _no_cost(a: Attrs, s: Shape, out: Shape) -> Cost:
    raise AssertionError("an op of several tensors has its cost from `joint_cost`")


def output_shape(op: Op, attrs: Attrs, shapes: list[Shape]) -> Shape:
    """The output shape of `op` applied to its input tensors' shapes (one, or `op.operands`)."""
    if op.joint_shape is not None:
        return op.joint_shape(attrs, shapes)
    (shape,) = shapes
    return op.shape(attrs, shape)


def op_cost(op: Op, attrs: Attrs, shapes: list[Shape], out: Shape) -> Cost:
    """The cost rule of `op` on its input tensors' shapes and its output's."""
    if op.joint_cost is not None:
        return op.joint_cost(attrs, shapes, out)
    (shape,) = shapes
    return op.cost(attrs, shape, out)


def _permutation(a: Attrs, rank: int) -> tuple[int, ...]:
    dims = a["dims"]
    if not isinstance(dims, tuple) or sorted(dims) != list(range(rank + 1)):
        raise OpError(
            "E038",
            f"permute: `dims` must order the {rank + 1} dimensions 0 to {rank} (0 is the batch), got {dims!r}",
            "e.g. permute(x, (0, 2, 3, 1)) puts the channels of an N×C×H×W map last",
            arg="dims",
        )
    if dims[0] != 0:
        raise OpError("E038", "permute: the batch dimension 0 stays first", "e.g. (0, 2, 3, 1)", arg="dims")
    return tuple(d - 1 for d in dims[1:])


# Ops that move the dimensions of a tensor without a batch (a `param` or `buffer` read in a forward) by its own
# dimensions, 0 its first: `permute(table, (2, 0, 1))`, as `reshape`'s sizes are its whole shape.
OWN_DIMS = ("permute", "transpose")
# Inline ops of one tensor that act on each element alone: on a tensor without a batch (a `param`, a `buffer`) they
# give one without a batch, of the same shape. No other op of one tensor takes such a tensor (E081).
ELEMENTWISE = frozenset(
    {"relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "hardswish", "hardsigmoid", "hardtanh", "mish", "elu", "leaky_relu"}
)


def own_dims(op: str, a: Attrs) -> Attrs:
    """The arguments of `op` (in OWN_DIMS) on a tensor without a batch, counted as the rules count them, the batch 0:
    `permute(t, (2, 0, 1))` is the rule's (0, 3, 1, 2), `transpose(t, 0, 1)` its (1, 2)."""
    if op == "permute":
        dims = a["dims"]
        if not isinstance(dims, tuple) or not all(_is_int(d) for d in dims):
            return a
        return {**a, "dims": (0, *(d + 1 if d >= 0 else d for d in dims))}
    return {**a, **{k: a[k] + 1 if _is_int(a[k]) and a[k] >= 0 else a[k] for k in ("dim0", "dim1")}}


def _permute_shape(a: Attrs, s: Shape) -> Shape:
    return tuple(s[d] for d in _permutation(a, len(s)))


def _permute_axes(a: Attrs, axes: Axes) -> Axes:
    return tuple(axes[d] for d in _permutation(a, len(axes)))


def _swap(a: Attrs, rank: int) -> tuple[int, int]:
    return _dim(a["dim0"], rank, "transpose", "dim0") - 1, _dim(a["dim1"], rank, "transpose", "dim1") - 1


def _transpose_shape(a: Attrs, s: Shape) -> Shape:
    i, j = _swap(a, len(s))
    out = list(s)
    out[i], out[j] = out[j], out[i]
    return tuple(out)


def _transpose_axes(a: Attrs, axes: Axes) -> Axes:
    return _transpose_shape(a, axes)


def _softmax_shape(op: str) -> Callable[[Attrs, Shape], Shape]:
    def rule(a: Attrs, s: Shape) -> Shape:
        softmax_axis(a["dim"], s, op)
        return s

    return rule


def softmax_axis(dim: Any, s: Shape, op: str) -> int:
    """Which axis of the per-sample shape `s` a PyTorch `dim` (batch counted, negatives from the end) names."""
    rank = len(s) + 1
    if not _is_int(dim) or not (1 <= dim < rank or -rank < dim <= -1):
        raise OpError(
            "E038",
            f"{op}: dim must be between 1 and {rank - 1} (or -{rank - 1} and -1) for an input of {fmt_shape(s)}, got {dim!r}",
            "dim 0 would mix the samples of a batch; dim 1 is the channels (or features)",
            arg="dim",
        )
    return int(dim % rank) - 1


def _dims(value: Any, rank: int, op: str) -> tuple[int, ...]:
    """One PyTorch dimension or a tuple of them (the batch is 0, refused), as sorted positive indices."""
    values = value if isinstance(value, tuple) else (value,)
    if not values:
        raise OpError("E038", f"{op}: `dim` names no dimension", "e.g. dim = (2, 3) for the height and width", arg="dim")
    dims = sorted({_dim(v, rank, op, "dim") for v in values})
    if len(dims) != len(values):
        raise OpError("E038", f"{op}: `dim` names a dimension twice, {value!r}", arg="dim")
    return tuple(dims)


def _weight_conv(a: Attrs) -> Attrs:
    """A convolution by a weight tensor (out, in / groups, kh, kw), as the attributes of `conv`."""
    w = a["weight"]
    return {
        "out_channels": w[0],
        "kernel_size": (w[2], w[3]),
        "stride": a["stride"],
        "padding": a["padding"],
        "dilation": a["dilation"],
        "groups": a["groups"],
    }


def _weight_conv_check(a: Attrs, s: Shape) -> None:
    conv = _weight_conv(a)
    _conv_check(conv, s)
    c, groups, per_group = s[0], a["groups"], a["weight"][1]
    if all(_is_int(v) for v in (c, groups, per_group)) and c // groups != per_group:
        raise OpError(
            "E033",
            f"conv2d: the weight takes {per_group} input channels per group, and the input gives {c} in {groups} groups",
            f"the weight's second size is in_channels / groups: {c // groups} here",
        )


def _weight_conv_cost(a: Attrs, s: Shape, out: Shape) -> Cost:
    w = a["weight"]
    return Cost(numel(out) * w[1] * w[2] * w[3])


def _roll_shape(a: Attrs, s: Shape) -> Shape:
    """torch.roll keeps the shape; `shifts` and `dims` pair up, and the batch is not rolled."""
    shifts, dims = a["shifts"], a["dims"]
    shifts, dims = (shifts if isinstance(shifts, tuple) else (shifts,)), (dims if isinstance(dims, tuple) else (dims,))
    if len(shifts) != len(dims):
        raise OpError("E016", f"roll: {len(shifts)} shifts for {len(dims)} dimensions", "give one shift per dimension", arg="shifts")
    for d in dims:
        _dim(d, len(s), "roll", "dims")
    return s


def _reduce_shape(op: str) -> Callable[[Attrs, Shape], Shape]:
    def rule(a: Attrs, s: Shape) -> Shape:
        dims = _dims(a["dim"], len(s), op)
        if a["keepdim"]:
            return tuple(1 if i + 1 in dims else d for i, d in enumerate(s))
        return tuple(d for i, d in enumerate(s) if i + 1 not in dims)

    return rule


def _reduce_axes(a: Attrs, axes: Axes) -> Axes:
    if a["keepdim"]:
        return axes
    dims = _dims(a["dim"], len(axes), "reduction")
    return tuple(x for i, x in enumerate(axes) if i + 1 not in dims)


def reduced_axes(node_attrs: Attrs, rank: int) -> tuple[int, ...]:
    """The dimensions (0-based, batch left out) a reduction node reduces, for the passes."""
    return tuple(d - 1 for d in _dims(node_attrs["dim"], rank, "reduction"))


def _product(sizes: Shape) -> Any:
    total: Any = 1
    for d in sizes:
        total = total * d
    return total


def _reshape_shape(a: Attrs, s: Shape) -> Shape:
    sizes = a["sizes"]
    if not isinstance(sizes, tuple) or not sizes or not all(is_symbolic(v) or (_is_int(v) and (v > 0 or v == -1)) for v in sizes):
        raise OpError(
            "E016",
            f"reshape: `sizes` must be a tuple of positive sizes of one sample (one may be -1), got {sizes!r}",
            "the batch is kept: reshape(x, (768, -1)) makes each sample 768×(the rest)",
            arg="sizes",
        )
    wild = [v for v in sizes if not is_symbolic(v) and v == -1]
    known = _product(tuple(v for v in sizes if is_symbolic(v) or v != -1))
    whole = _product(s)
    if len(wild) > 1:
        raise OpError("E016", f"reshape: only one size may be -1, got {sizes!r}", arg="sizes")
    if _is_int(whole) and _is_int(known) and (whole % known if wild else whole != known):
        raise OpError(
            "E016",
            f"reshape: sizes {sizes} do not hold the {whole} values of a sample of {fmt_shape(s)}",
            "the sizes of one sample (the batch left out) must multiply to its number of values",
            arg="sizes",
        )
    if wild and not (_is_int(whole) and _is_int(known)):
        return tuple(UNKNOWN if not is_symbolic(v) and v == -1 else v for v in sizes)
    return tuple(whole // known if not is_symbolic(v) and v == -1 else v for v in sizes)


def _reshape_axes(a: Attrs, axes: Axes, before: Shape, after: Shape) -> Axes:
    """What each dimension of a reshape's output is. A row-major reshape maps groups of input dimensions onto groups of
    output dimensions, cut where the products of the sizes so far agree on both sides (`_reshape_groups`): a dimension
    kept whole keeps its kind (C×H×W to radix×(C / radix)×H×W keeps H and W). Dimensions merged into one take
    flatten's label (`_merge_axes`: channels stay channels, pieces of the height the height, positions become tokens);
    one dimension split keeps channels as channels (as `unflatten` splits them into groups), a height or a width as
    pieces of it (a window partition, timm's NesT `blockify`) and makes tokens a height and a width (flatten(x, 2)
    undone); anything else is plain (`F`), as is a dimension of size 1 the reshape adds. Plain or channel values (no
    position among them) reshaped into three dimensions are read as a C×H×W map (a gate's `view(n, c, 1, 1)`), unless the
    channels stay last (MaxViT's windows, (B, groups, P², C)); so is a height and a width after anything but a position
    (a space-to-depth's (C·b², H / b, W / b))."""
    out: list[str] = []
    for inner, count in _reshape_groups(before, after):
        labels = axes[inner[0] : inner[1]]
        if count == 1 and len(labels) == 1:
            out.append(labels[0])
        elif count == 1 and labels:
            out.append(_merge_axes(labels))
        elif labels == ("C",):
            out += ["C"] * count
        elif labels == ("L",) and count == 2:
            out += ["H", "W"]
        elif len(labels) == 1 and labels[0] in SPATIAL:
            out += [labels[0]] * count
        else:
            out += ["F"] * count
    positions = SPATIAL | {"L"}
    if len(out) == 3 and not set(axes) & positions and not set(out) & positions and out[-1] != "C":
        return MAP_AXES
    if len(out) == 3 and out[0] not in positions and out[1:] == ["H", "W"]:
        return MAP_AXES  # channels (or features made channels: a space-to-depth) over a height and a width
    return tuple(out)


def _reshape_groups(before: Shape, after: Shape) -> list[tuple[tuple[int, int], int]]:
    """The groups of a reshape from `before` to `after`: (the range of input dimensions, the number of output dimensions
    they become), in order. A group closes where the products of the sizes taken so far agree; a dimension of size 1
    facing a larger one is a group of its own (dropped, or added). Sizes not all known: one group of everything."""
    if not all(_is_int(d) for d in (*before, *after)):
        return [((0, len(before)), len(after))]
    groups: list[tuple[tuple[int, int], int]] = []
    i = j = 0
    while i < len(before) or j < len(after):
        if i < len(before) and before[i] == 1 and (j == len(after) or after[j] != 1):
            groups.append(((i, i + 1), 0))
            i += 1
            continue
        if j < len(after) and after[j] == 1 and (i == len(before) or before[i] != 1):
            groups.append(((i, i), 1))
            j += 1
            continue
        start, first, taken_in, taken_out = i, j, 1, 1
        if i < len(before):
            taken_in, i = before[i], i + 1
        if j < len(after):
            taken_out, j = after[j], j + 1
        while taken_in != taken_out and (i < len(before) or j < len(after)):
            if (taken_in < taken_out and i < len(before)) or j == len(after):
                taken_in, i = taken_in * before[i], i + 1
            else:
                taken_out, j = taken_out * after[j], j + 1
        groups.append(((start, i), j - first))
    return groups


def _index_items(a: Attrs, s: Shape) -> list[Any]:
    """The subscripts of `x[...]` after the batch's `:`, one per dimension of a sample (missing ones whole)."""
    items = list(a["items"])
    if not items or items[0] != (None, None, None):
        raise OpError(
            "E038",
            "indexing a tensor keeps the batch whole: its first subscript is `:`",
            "e.g. x[:, 0] takes the first token of each sample",
        )
    items = items[1:]
    if len(items) > len(s):
        raise OpError("E038", f"{len(items) + 1} subscripts for a tensor of {fmt_shape(s)}", f"it has {len(s) + 1} dimensions")
    return items + [(None, None, None)] * (len(s) - len(items))


def _index_shape(a: Attrs, s: Shape) -> Shape:
    out = []
    for i, (item, size) in enumerate(zip(_index_items(a, s), s, strict=True)):
        if isinstance(item, tuple):
            if item == (None, None, None):
                out.append(size)
            elif item[0] in (None, 0) and item[2] in (None, 1) and is_symbolic(item[1]):
                # `x[:, :k]` with k a constructor argument: k positions (PyTorch would clip a k beyond the size;
                # elaboration, with the numbers, gives the exact size).
                out.append(item[1])
            elif _is_int(size) and all(v is None or _is_int(v) for v in item):
                if item[2] is not None and item[2] <= 0:
                    raise OpError("E038", "a slice's step must be positive", "e.g. x[:, ::2]")
                n = len(range(*slice(*item).indices(size)))
                if n == 0:
                    raise OpError("E032", f"the slice {_slice_code(item)} of dimension {i + 1} ({size}) is empty")
                out.append(n)
            else:
                out.append(UNKNOWN)
        elif _is_int(size) and not -size <= item < size:
            raise OpError(
                "E041", f"index {item} is out of range for dimension {i + 1} of {fmt_shape(s)}", f"it runs from {-size} to {size - 1}"
            )
    return tuple(out)


def _index_axes(a: Attrs, axes: Axes) -> Axes:
    items = _index_items(a, axes)
    return tuple(x for x, item in zip(axes, items, strict=True) if isinstance(item, tuple))


def _slice_code(item: tuple[Any, Any, Any]) -> str:
    start, stop, step = ("" if v is None else literal(v) for v in item)
    return f"{start}:{stop}" + (f":{step}" if step else "")


def _index_code(x: str, a: Attrs) -> str:
    return f"{x}[{', '.join(_slice_code(i) if isinstance(i, tuple) else literal(i) for i in a['items'])}]"


def _reshape_code(x: str, a: Attrs) -> str:
    return f"{x}.reshape({x}.shape[0], {', '.join(literal(v) for v in a['sizes'])})"


def _norm_code(x: str, a: Attrs) -> str:
    """`torch.linalg.vector_norm(x, dim=(2, 3), keepdim=True)`, with `ord=1` for the L1 norm (2 is its default)."""
    args = [x, *([f"ord={literal(a['p'])}"] if not same_value(a["p"], 2) else []), f"dim={literal(a['dim'])}"]
    if not same_value(a["keepdim"], False):
        args.append(f"keepdim={literal(a['keepdim'])}")
    return f"torch.linalg.vector_norm({', '.join(args)})"


def _mha_check(a: Attrs, s: Shape) -> None:
    if len(s) != 2:
        raise OpError(
            "E035",
            f"mha attends over tokens, an N×L×D tensor; got {fmt_shape(s)}",
            "flatten the positions into tokens and put the features last: permute(flatten(x, 2), (0, 2, 1))",
        )
    d, heads = s[-1], a["num_heads"]
    if _is_int(d) and _is_int(heads) and d % heads:
        raise OpError(
            "E033", f"mha: num_heads={heads} must divide the embedding size {d}", "choose a number of heads dividing it", arg="num_heads"
        )


def _mha_params(a: Attrs) -> Any:
    d = a["embed_dim"]
    return 4 * d * d + (4 * d if a["bias"] else 0)


def _mha_module(a: Attrs) -> tuple[str, list[Any], Attrs]:
    keywords = _non_default(a, "mha", skip=("num_heads",))
    return "nn.MultiheadAttention", [a["embed_dim"], a["num_heads"]], {**keywords, "batch_first": True}


def _mha_cost(a: Attrs, s: Shape, out: Shape) -> Cost:
    """Projections of queries, keys and values (3·L·D²), the scores and their weighted sum (2·L²·D), the output
    projection (L·D²); the softmax and the biases are no multiply-accumulates of a matrix product."""
    tokens, d = s
    macs = 4 * tokens * d * d + 2 * tokens * tokens * d
    return Cost(macs)


def _conv1d_shape(a: Attrs, s: Shape) -> Shape:
    if len(s) != 2:
        raise OpError(
            "E035",
            f"conv1d needs a C×L sequence, got {fmt_shape(s)}",
            "reshape to channels and positions first: ECA's reshape(mean(x, (2, 3)), (1, -1))",
        )
    k, st, p, d = (a[n] for n in ("kernel_size", "stride", "padding", "dilation"))
    if p == "same":
        if st != 1:
            raise OpError("E016", 'conv1d: padding = "same" keeps the length, so the stride is 1, as in PyTorch', arg="padding")
        return (a["out_channels"], s[1])
    return (a["out_channels"], _window_out(s[1], k, st, 0 if p == "valid" else p, d, False))


def _conv1d_check(a: Attrs, s: Shape) -> None:
    _conv1d_shape(a, s)
    c, length = s
    groups, out = a["groups"], a["out_channels"]
    if _is_int(groups) and _is_int(c) and _is_int(out) and (c % groups or out % groups):
        raise OpError(
            "E033",
            f"conv1d: groups={groups} must divide both the input channels ({c}) and the output channels ({out})",
            "choose groups dividing both channel counts",
        )
    k, p, d = a["kernel_size"], a["padding"], a["dilation"]
    p = {"same": (d * (k - 1)) // 2 if _is_int(d) and _is_int(k) else UNKNOWN, "valid": 0}.get(p, p) if isinstance(p, str) else p
    if all(_is_int(v) for v in (length, k, p, d)) and d * (k - 1) + 1 > length + 2 * p:
        raise OpError(
            "E032",
            f"conv1d: the length {length} (padded {length + 2 * p}) is shorter than the kernel {d * (k - 1) + 1}",
            "use a smaller kernel or more padding",
        )


def _conv1d_params(a: Attrs) -> Any:
    return a["out_channels"] * (a["in_channels"] // a["groups"]) * a["kernel_size"] + (a["out_channels"] if a["bias"] else 0)


def _conv1d_cost(a: Attrs, s: Shape, out: Shape) -> Cost:
    return Cost(numel(out) * (a["in_channels"] // a["groups"]) * a["kernel_size"])


def _param_module(a: Attrs) -> tuple[str, list[Any], Attrs]:
    """`torch.full(shape, fill)`, or with `std` a normal draw around `fill` (ViT's position embedding:
    `torch.empty(...).normal_(std=0.02)`)."""
    shape = literal(tuple(a["shape"]))
    if not is_symbolic(a["std"]) and a["std"] == 0:
        return "nn.Parameter", [Sym(f"torch.full({shape}, {literal(a['fill'])})")], {}
    return "nn.Parameter", [Sym(f"torch.empty({shape}).normal_({literal(a['fill'])}, {literal(a['std'])})")], {}


def _hardtanh_check(a: Attrs, s: Shape) -> None:
    low, high = a["min_val"], a["max_val"]
    if _is_number(low) and _is_number(high) and not low < high:
        raise OpError(
            "E016", f"hardtanh: max_val ({high}) must be greater than min_val ({low})", "hardtanh(-1.0, 1.0) clips to [-1, 1]", "max_val"
        )


def _prelu_check(a: Attrs, s: Shape) -> None:
    n, c = a["num_parameters"], s[0]
    if _is_int(n) and _is_int(c) and n not in (1, c):
        raise OpError(
            "E016",
            f"prelu: num_parameters must be 1 or the input channels ({c}), got {n}",
            f"prelu() learns one slope; prelu({c}) one per channel",
            "num_parameters",
        )


def _groupnorm_check(a: Attrs, s: Shape) -> None:
    c, _, _ = _feature_map(s, "groupnorm")
    groups = a["num_groups"]
    if _is_int(groups) and _is_int(c) and c % groups:
        raise OpError(
            "E033",
            f"groupnorm: num_groups={groups} must divide the input channels ({c})",
            "choose num_groups dividing the channel count",
            "num_groups",
        )


def _map_shape(op: str) -> Callable[[Attrs, Shape], Shape]:
    return lambda a, s: _feature_map(s, op)


def _affine_params(a: Attrs) -> Any:
    return 2 * a["num_channels" if "num_channels" in a else "num_features"] if a["affine"] else 0


def _instancenorm_buffers(a: Attrs) -> Any:
    return 2 * a["num_features"] + 1 if a["track_running_stats"] else 0


def _same_shape(a: Attrs, s: Shape) -> Shape:
    return s


def _none(a: Attrs) -> int:
    return 0


def _non_default(a: Attrs, op: str, skip: tuple[str, ...] = ()) -> Attrs:
    """The keyword arguments that differ from PyTorch's defaults, in the op's argument order."""
    row = OPS[op]
    out: Attrs = {}
    for name, default in row.args:
        if name in skip:
            continue
        value = a[name]
        if is_symbolic(value) or value != default or type(value) is not type(default):
            out[name] = value
    return out


def _simple_module(cls: str, op: str) -> Callable[[Attrs], tuple[str, list[Any], Attrs]]:
    return lambda a: (cls, [], _non_default(a, op))


@dataclass(frozen=True)
class Cost:
    """The arithmetic of one application to one image: `macs`, the multiply-accumulates of matrix products
    (convolution, linear), the figure FLOP counters report as FLOPs / 2. Other operations (normalisation,
    activations, pooling, additions) are not counted: counters disagree about them and none measures them
    independently (docs/analysis.md)."""

    macs: int = 0


def numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return int(n)


def _conv_cost(a: Attrs, s: Shape, out: Shape) -> Cost:
    kh, kw = pair(a["kernel_size"])
    macs = numel(out) * (a["in_channels"] // a["groups"]) * kh * kw
    return Cost(macs)


def _linear_cost(a: Attrs, s: Shape, out: Shape) -> Cost:
    rows = numel(s[:-1])
    return Cost(rows * a["in_features"] * a["out_features"])


def _free(a: Attrs, s: Shape, out: Shape) -> Cost:
    return Cost()


STOCHASTIC_DEPTH = '''def stochastic_depth(input: Tensor, p: float, mode: str = "row", training: bool = True) -> Tensor:
    """Stochastic depth (Huang et al., "Deep Networks with Stochastic Depth", 2016), as torchvision.ops writes it:
    in training, each sample's (mode "row") or the batch's (mode "batch") input is zeroed with probability p and the
    rest scaled by 1 / (1 - p); in eval mode the input passes through."""
    if not training or p == 0.0:
        return input
    survival_rate = 1.0 - p
    size = [input.shape[0]] + [1] * (input.ndim - 1) if mode == "row" else [1] * input.ndim
    noise = torch.empty(size, dtype=input.dtype, device=input.device)
    noise = noise.bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return input * noise


class StochasticDepth(nn.Module):
    """The module form of `stochastic_depth`, as torchvision.ops.StochasticDepth."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, input: Tensor) -> Tensor:
        return stochastic_depth(input, self.p, self.mode, self.training)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(p={self.p}, mode={self.mode})"'''


LAYERNORM2D = '''class LayerNorm2d(nn.LayerNorm):
    """Layer normalisation over the channels of an N×C×H×W map at each position, as torchvision's ConvNeXt writes it."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        x = x.permute(0, 3, 1, 2)
        return x'''


def _layernorm_params(a: Attrs) -> Any:
    if not a["elementwise_affine"]:
        return 0
    return a["normalized_shape"] * (2 if a["bias"] else 1)


PERMUTE = '''class Permute(nn.Module):
    """Reorders the dimensions of its input, as torchvision.ops.Permute (a module, so a Sequential can hold it)."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: Tensor) -> Tensor:
        return torch.permute(x, self.dims)'''

TRANSPOSE = '''class Transpose(nn.Module):
    """Swaps two dimensions of its input (a module, so a Sequential can hold it)."""

    def __init__(self, dim0: int, dim1: int) -> None:
        super().__init__()
        self.dim0 = dim0
        self.dim1 = dim1

    def forward(self, x: Tensor) -> Tensor:
        return torch.transpose(x, self.dim0, self.dim1)'''


PAD_MODES = ("constant", "reflect", "replicate", "circular")
# nn's padding modules by mode, `{k}` the number of dimensions padded (1 to 3).
_PAD_MODULES = {"reflect": "nn.ReflectionPad{k}d", "replicate": "nn.ReplicationPad{k}d", "circular": "nn.CircularPad{k}d"}


def _pad_shape(a: Attrs, s: Shape) -> Shape:
    """F.pad: `pad` gives (before, after) for the last dimension, then the one before it, ...; each grows by both."""
    pad = a["pad"]
    k = len(pad) // 2
    if k > len(s):
        raise OpError(
            "E016",
            f"pad: {len(pad)} numbers pad {k} dimensions, but a sample of {fmt_shape(s)} has {len(s)}",
            "pad the dimensions of a sample: (left, right) for the last one, then (top, bottom), ...",
            arg="pad",
        )
    if a["mode"] != "constant" and k not in (len(s) - 1, len(s)):
        raise OpError(
            "E016",
            f'pad: mode "{a["mode"]}" pads the last {len(s) - 1} or {len(s)} dimensions of {fmt_shape(s)} '
            f"(as PyTorch's), got {len(pad)} numbers for {k}",
            f"give {2 * (len(s) - 1)} numbers: (left, right, top, bottom) for a map",
            arg="pad",
        )
    out = list(s)
    for i in range(k):
        before, after = pad[2 * i], pad[2 * i + 1]
        size = out[len(out) - 1 - i]
        limit = {"reflect": size - 1, "circular": size}.get(a["mode"])
        if limit is not None and all(isinstance(v, int) for v in (size, before, after)) and max(before, after) > limit:
            raise OpError(
                "E016",
                f'pad: mode "{a["mode"]}" pads a dimension of {size} by at most {limit} on a side, got {before} and {after}',
                "it repeats values of the tensor, so it cannot pad more than the dimension holds",
                arg="pad",
            )
        out[len(out) - 1 - i] = size + before + after
    return tuple(out)


def _pad_check(a: Attrs, s: Shape) -> None:
    if a["mode"] != "constant" and not same_value(a["value"], 0.0):
        raise OpError(
            "E016", f'pad: mode "{a["mode"]}" takes no `value` (PyTorch refuses it)', 'a value goes with mode "constant" only', arg="value"
        )


def _pad_module(a: Attrs) -> tuple[str, list[Any], Attrs]:
    """nn's padding module of the mode and the number of dimensions padded: `nn.ZeroPad2d((0, 1, 0, 1))`."""
    k = len(a["pad"]) // 2
    if a["mode"] != "constant":
        return _PAD_MODULES[a["mode"]].format(k=k), [a["pad"]], {}
    if same_value(a["value"], 0.0):
        return f"nn.ZeroPad{k}d", [a["pad"]], {}
    return f"nn.ConstantPad{k}d", [a["pad"], a["value"]], {}


def _no_module(a: Attrs) -> tuple[str, list[Any], Attrs]:
    """The module form of an op applied inline only (`member = False`, or `multi`): sema.calls refuses it as a member."""
    return "", [], {}


@dataclass(frozen=True)
class Op:
    """One primitive op and its rules."""

    name: str
    doc: str
    args: tuple[tuple[str, Any], ...]
    shape: Callable[[Attrs, Shape], Shape]
    module: Callable[[Attrs], tuple[str, list[Any], Attrs]]
    # Multiply-accumulates of one application to one image, from the attributes and the input and output shapes
    # (`_free` for ops without a matrix product).
    cost: Callable[[Attrs, Shape, Shape], Cost]
    # Inline form: function name and the keyword arguments it takes, or None when the op has weights.
    functional: str | None = None
    check: Callable[[Attrs, Shape], None] | None = None
    params: Callable[[Attrs], Any] = _none
    buffers: Callable[[Attrs], Any] = _none
    # Arguments inferred from the input shape: attribute name -> function of the input shape.
    inferred: dict[str, Callable[[Shape], Any]] = field(default_factory=dict)
    # Inline only: the argument to pass `training=self.training` to.
    uses_training: bool = False
    # False where the output shares the input's storage (a view, or the input itself).
    allocates_output: bool = True
    # Python source the module or inline form needs in the generated file (a class or function torch lacks),
    # written once before the classes of a module that uses the op.
    helper: str | None = None
    # What the input's dimensions must be: "map", a C×H×W feature map, channels first; "channels", channels (or
    # flat features) first; "last": the op maps the last dimension, which must not be a spatial one; "any".
    layout: str = "any"
    # The output's dimension labels, for ops that move, merge or split dimensions (default: the input's).
    axes: Callable[[Attrs, Axes], Axes] | None = None
    # Likewise, for ops whose labels follow the sizes (`reshape`): from the input's labels and shape and the output's shape.
    sized_axes: Callable[[Attrs, Axes, Shape, Shape], Axes] | None = None
    # Arguments the inline form passes by position, in order (`torch.flatten(x, 1)`).
    positional: tuple[str, ...] = ()
    # The number of tensors it returns is its `chunks` argument (`x1, x2 = chunk(x, 2, dim = 1)`): inline only, each
    # piece a node of its own with `attrs["index"]`.
    multi: bool = False
    # False for ops applied inline only (`mean`, `reshape`, `chunk`): sema.calls refuses them as members.
    member: bool = True
    # The Python expression of the inline form where it is not a function call: `x[:, 0]`, `x.reshape(...)`.
    code: Callable[[str, Attrs], str] | None = None
    # The statement applying the module where it is not `out = self.m(x)`: `{out}`, `{module}` and `{x}` filled in.
    apply: str | None = None
    # Not callable by name in a spec: written with syntax of its own (`x[:, 0]`).
    syntax_only: bool = False
    # The number of tensors it takes, its first arguments (`matmul(a, b)`); above one, the shape and cost rules are
    # `joint_shape` and `joint_cost`, of every input's shape (and `shape`, `cost` are never called).
    operands: int = 1
    joint_shape: Callable[[Attrs, list[Shape]], Shape] | None = None
    joint_cost: Callable[[Attrs, list[Shape], Shape], Cost] | None = None
    # The output's dimension labels from every tensor input's (`matmul`: the first's rows, the second's columns).
    joint_axes: Callable[[Attrs, list[Axes]], Axes] | None = None
    # The Python operator written between its two tensors, where the inline form is one (`q @ k`).
    infix: str | None = None


def _reduction(name: str, doc: str) -> Op:
    """A reduction over dimensions (`torch.<name>(x, dim, keepdim=...)`), applied inline; listed in REDUCTIONS."""
    return Op(
        name,
        doc,
        (("dim", REQUIRED), ("keepdim", False)),
        _reduce_shape(name),
        _no_module,
        _free,
        functional=f"torch.{name}",
        axes=_reduce_axes,
        positional=("dim",),
        member=False,
    )


OPS: dict[str, Op] = {
    op.name: op
    for op in [
        Op(
            "conv",
            "2-D convolution (`nn.Conv2d`); in_channels is inferred.",
            (
                ("out_channels", REQUIRED),
                ("kernel_size", REQUIRED),
                ("stride", 1),
                ("padding", 0),
                ("dilation", 1),
                ("groups", 1),
                ("bias", True),
            ),
            _conv_shape,
            _conv_module,
            _conv_cost,
            check=_conv_check,
            params=_conv_params,
            inferred={"in_channels": lambda s: _feature_map(s, "conv")[0]},
            layout="map",
        ),
        Op(
            "conv1d",
            "1-D convolution over a C×L sequence (`nn.Conv1d`); in_channels is inferred: ECA's convolution across channels.",
            (
                ("out_channels", REQUIRED),
                ("kernel_size", REQUIRED),
                ("stride", 1),
                ("padding", 0),
                ("dilation", 1),
                ("groups", 1),
                ("bias", True),
            ),
            _conv1d_shape,
            lambda a: ("nn.Conv1d", [a["in_channels"], a["out_channels"]], _non_default(a, "conv1d", skip=("in_channels", "out_channels"))),
            _conv1d_cost,
            check=_conv1d_check,
            params=_conv1d_params,
            inferred={"in_channels": lambda s: s[0]},
        ),
        Op(
            "linear",
            "Fully connected layer (`nn.Linear`); in_features is inferred.",
            (("out_features", REQUIRED), ("bias", True)),
            _linear_shape,
            lambda a: ("nn.Linear", [a["in_features"], a["out_features"]], _non_default(a, "linear", skip=("out_features",))),
            _linear_cost,
            params=_linear_params,
            inferred={"in_features": lambda s: s[-1]},
            layout="last",
        ),
        Op(
            "batchnorm",
            "Batch normalisation over channels (`nn.BatchNorm2d`, or `BatchNorm1d` on flat features).",
            (("eps", 1e-5), ("momentum", 0.1), ("affine", True), ("track_running_stats", True)),
            _same_shape,
            _batchnorm_module,
            _free,
            params=_batchnorm_params,
            buffers=_batchnorm_buffers,
            inferred={"num_features": lambda s: s[0], "rank": len},
            layout="channels",
        ),
        Op(
            "layernorm",
            "Layer normalisation over the last dimension (`nn.LayerNorm`): tokens, flat features or a channels-last map.",
            (("eps", 1e-5), ("elementwise_affine", True), ("bias", True)),
            _same_shape,
            lambda a: ("nn.LayerNorm", [a["normalized_shape"]], _non_default(a, "layernorm")),
            _free,
            params=_layernorm_params,
            inferred={"normalized_shape": lambda s: s[-1]},
            layout="last",
        ),
        Op(
            "layernorm2d",
            "Layer normalisation over the channels of a C×H×W map at each position, as torchvision's ConvNeXt "
            "`LayerNorm2d` (an `nn.LayerNorm` that permutes channels last and back).",
            (("eps", 1e-5), ("elementwise_affine", True), ("bias", True)),
            _map_shape("layernorm2d"),
            lambda a: ("LayerNorm2d", [a["normalized_shape"]], _non_default(a, "layernorm2d")),
            _free,
            params=_layernorm_params,
            inferred={"normalized_shape": lambda s: _feature_map(s, "layernorm2d")[0]},
            layout="map",
            helper=LAYERNORM2D,
        ),
        Op(
            "groupnorm",
            "Group normalisation (`nn.GroupNorm`): statistics per sample over channel groups and the whole map.",
            (("num_groups", REQUIRED), ("eps", 1e-5), ("affine", True)),
            _map_shape("groupnorm"),
            lambda a: ("nn.GroupNorm", [a["num_groups"], a["num_channels"]], _non_default(a, "groupnorm", skip=("num_groups",))),
            _free,
            check=_groupnorm_check,
            params=_affine_params,
            inferred={"num_channels": lambda s: _feature_map(s, "groupnorm")[0]},
            layout="map",
        ),
        Op(
            "instancenorm",
            "Instance normalisation (`nn.InstanceNorm2d`): statistics per sample and channel over the whole map.",
            (("eps", 1e-5), ("momentum", 0.1), ("affine", False), ("track_running_stats", False)),
            _map_shape("instancenorm"),
            lambda a: ("nn.InstanceNorm2d", [a["num_features"]], _non_default(a, "instancenorm")),
            _free,
            params=_affine_params,
            buffers=_instancenorm_buffers,
            inferred={"num_features": lambda s: _feature_map(s, "instancenorm")[0]},
            layout="map",
        ),
        Op(
            "local_response_norm",
            "Normalisation over `size` neighbouring channels (`nn.LocalResponseNorm`), as AlexNet and GoogLeNet use it.",
            (("size", REQUIRED), ("alpha", 1e-4), ("beta", 0.75), ("k", 1.0)),
            _map_shape("local_response_norm"),
            lambda a: ("nn.LocalResponseNorm", [a["size"]], _non_default(a, "local_response_norm", skip=("size",))),
            _free,
            functional="F.local_response_norm",
            layout="map",
        ),
        Op(
            "relu",
            "Rectified linear unit.",
            (("inplace", False),),
            _same_shape,
            _simple_module("nn.ReLU", "relu"),
            _free,
            functional="F.relu",
        ),
        Op(
            "sigmoid",
            "Logistic sigmoid.",
            (),
            _same_shape,
            _simple_module("nn.Sigmoid", "sigmoid"),
            _free,
            functional="torch.sigmoid",
        ),
        Op("tanh", "Hyperbolic tangent.", (), _same_shape, _simple_module("nn.Tanh", "tanh"), _free, functional="torch.tanh"),
        Op(
            "relu6",
            "ReLU capped at 6 (`nn.ReLU6`), as MobileNet uses it.",
            (("inplace", False),),
            _same_shape,
            _simple_module("nn.ReLU6", "relu6"),
            _free,
            functional="F.relu6",
        ),
        Op(
            "hardtanh",
            "Clips to [min_val, max_val] (`nn.Hardtanh`).",
            (("min_val", -1.0), ("max_val", 1.0), ("inplace", False)),
            _same_shape,
            _simple_module("nn.Hardtanh", "hardtanh"),
            _free,
            functional="F.hardtanh",
            check=_hardtanh_check,
        ),
        Op(
            "silu",
            "Sigmoid linear unit x·sigmoid(x), also called swish (`nn.SiLU`).",
            (("inplace", False),),
            _same_shape,
            _simple_module("nn.SiLU", "silu"),
            _free,
            functional="F.silu",
        ),
        Op(
            "gelu",
            "Gaussian error linear unit (`nn.GELU`); approximate = 'tanh' for the tanh approximation.",
            (("approximate", "none"),),
            _same_shape,
            _simple_module("nn.GELU", "gelu"),
            _free,
            functional="F.gelu",
        ),
        Op(
            "hardswish",
            "x·relu6(x + 3)/6 (`nn.Hardswish`), as MobileNetV3 uses it.",
            (("inplace", False),),
            _same_shape,
            _simple_module("nn.Hardswish", "hardswish"),
            _free,
            functional="F.hardswish",
        ),
        Op(
            "hardsigmoid",
            "relu6(x + 3)/6 (`nn.Hardsigmoid`).",
            (("inplace", False),),
            _same_shape,
            _simple_module("nn.Hardsigmoid", "hardsigmoid"),
            _free,
            functional="F.hardsigmoid",
        ),
        Op(
            "leaky_relu",
            "Leaky ReLU (`nn.LeakyReLU`).",
            (("negative_slope", 0.01), ("inplace", False)),
            _same_shape,
            _simple_module("nn.LeakyReLU", "leaky_relu"),
            _free,
            functional="F.leaky_relu",
        ),
        Op(
            "elu",
            "Exponential linear unit (`nn.ELU`).",
            (("alpha", 1.0), ("inplace", False)),
            _same_shape,
            _simple_module("nn.ELU", "elu"),
            _free,
            functional="F.elu",
        ),
        Op(
            "mish",
            "x·tanh(softplus(x)) (`nn.Mish`).",
            (("inplace", False),),
            _same_shape,
            _simple_module("nn.Mish", "mish"),
            _free,
            functional="F.mish",
        ),
        Op(
            "softmax",
            "Softmax along `dim` (`nn.Softmax`); dims count the batch as PyTorch's do: 1 is the channels.",
            (("dim", REQUIRED),),
            _softmax_shape("softmax"),
            _simple_module("nn.Softmax", "softmax"),
            _free,
            functional="F.softmax",
        ),
        Op(
            "log_softmax",
            "Logarithm of the softmax along `dim` (`nn.LogSoftmax`).",
            (("dim", REQUIRED),),
            _softmax_shape("log_softmax"),
            _simple_module("nn.LogSoftmax", "log_softmax"),
            _free,
            functional="F.log_softmax",
        ),
        Op(
            "prelu",
            "Leaky ReLU with learnt slopes (`nn.PReLU`): one, or one per channel.",
            (("num_parameters", 1), ("init", 0.25)),
            _same_shape,
            _simple_module("nn.PReLU", "prelu"),
            _free,
            check=_prelu_check,
            params=lambda a: a["num_parameters"],
        ),
        Op(
            "maxpool",
            "2-D max pooling; stride defaults to the kernel size.",
            (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False)),
            _pool_shape,
            _simple_module("nn.MaxPool2d", "maxpool"),
            _free,
            functional="F.max_pool2d",
            check=_pool_check,
            layout="map",
        ),
        Op(
            "avgpool",
            "2-D average pooling; stride defaults to the kernel size.",
            (("kernel_size", REQUIRED), ("stride", None), ("padding", 0), ("ceil_mode", False), ("count_include_pad", True)),
            _pool_shape,
            _simple_module("nn.AvgPool2d", "avgpool"),
            _free,
            functional="F.avg_pool2d",
            check=_pool_check,
            layout="map",
        ),
        Op(
            "adaptive_avgpool",
            "Average pooling to a fixed output size (`(1, 1)`: global average pooling).",
            (("output_size", REQUIRED),),
            _adaptive_shape,
            _simple_module("nn.AdaptiveAvgPool2d", "adaptive_avgpool"),
            _free,
            functional="F.adaptive_avg_pool2d",
            layout="map",
        ),
        Op(
            "adaptive_maxpool",
            "Max pooling to a fixed output size.",
            (("output_size", REQUIRED),),
            _adaptive_shape,
            _simple_module("nn.AdaptiveMaxPool2d", "adaptive_maxpool"),
            _free,
            functional="F.adaptive_max_pool2d",
            layout="map",
        ),
        Op(
            "flatten",
            "Flattens dimensions start_dim to end_dim into one (C×H×W into features by default).",
            (("start_dim", 1), ("end_dim", -1)),
            _flatten_shape,
            _simple_module("nn.Flatten", "flatten"),
            _free,
            functional="torch.flatten",
            allocates_output=False,
            axes=_flatten_axes,
            positional=("start_dim", "end_dim"),
        ),
        Op(
            "unflatten",
            "Splits dimension `dim` into `sizes` (`nn.Unflatten`), e.g. channels into groups for a shuffle.",
            (("dim", REQUIRED), ("sizes", REQUIRED)),
            _unflatten_shape,
            lambda a: ("nn.Unflatten", [a["dim"], a["sizes"]], {}),
            _free,
            functional="torch.unflatten",
            allocates_output=False,
            axes=_unflatten_axes,
            positional=("dim", "sizes"),
        ),
        Op(
            "chunk",
            "Splits a tensor into `chunks` equal parts along `dim` (PyTorch's, the batch 0), unpacked in a forward: "
            "`x1, x2 = chunk(x, 2, dim = 1)`, as ShuffleNetV2 splits its channels.",
            (("chunks", REQUIRED), ("dim", REQUIRED)),
            _chunk_shape,
            _no_module,
            _free,
            functional="torch.chunk",
            allocates_output=False,
            positional=("chunks", "dim"),
            multi=True,
        ),
        Op(
            "unbind",
            "Takes a tensor apart along `dim` (PyTorch's, the batch 0): one tensor per position, each without that "
            "dimension, unpacked in a forward: `q, k, v = unbind(qkv, 1)`, as timm's attention writes `qkv.unbind(0)`.",
            (("dim", REQUIRED),),
            _unbind_shape,
            _no_module,
            _free,
            functional="torch.unbind",
            allocates_output=False,
            axes=_unbind_axes,
            positional=("dim",),
            multi=True,
            member=False,
        ),
        Op(
            "matmul",
            "The matrix product of two tensors (`a @ b`, torch.matmul): (..., n, k) by (..., k, m) gives (..., n, m), the "
            "dimensions before the last two broadcast as PyTorch does; attention's scores, `matmul(q, transpose(k, -2, -1))`.",
            (),
            _operands_only,
            _no_module,
            _no_cost,
            functional="torch.matmul",
            member=False,
            operands=2,
            joint_shape=_matmul_shape,
            joint_cost=_matmul_cost,
            joint_axes=_matmul_axes,
            infix="@",
        ),
        Op(
            "attention",
            "Scaled dot-product attention of queries, keys and values (F.scaled_dot_product_attention): "
            "softmax(q @ kᵀ · scale) @ v, `scale` 1/√E by default (E the queries' last dimension).",
            (("scale", None),),
            _operands_only,
            _no_module,
            _no_cost,
            functional="F.scaled_dot_product_attention",
            member=False,
            operands=3,
            joint_shape=_attention_shape,
            joint_cost=_attention_cost,
        ),
        _reduction(
            "mean",
            "Mean over `dim` (one PyTorch dimension or a tuple, the batch 0), keeping them as size 1 with `keepdim`: "
            "`mean(x, (2, 3))` pools a map globally, as ShuffleNetV2's `x.mean([2, 3])`.",
        ),
        _reduction(
            "sum",
            "Sum over `dim` (one PyTorch dimension or a tuple, the batch 0), with `keepdim` as `mean`: split attention's `x.sum(dim=1)`.",
        ),
        _reduction("amax", "Maximum over `dim` (one PyTorch dimension or a tuple, the batch 0), with `keepdim` as `mean`."),
        Op(
            "norm",
            "The p-norm (`p` 2, Euclidean, or 1) over `dim` (one PyTorch dimension or a tuple, the batch 0), with `keepdim` as "
            "`mean`: ConvNeXt V2's Global Response Norm, `x.norm(p=2, dim=(1, 2), keepdim=True)`, as torch.linalg.vector_norm.",
            (("dim", REQUIRED), ("keepdim", False), ("p", 2)),
            _reduce_shape("norm"),
            _no_module,
            _free,
            functional="torch.linalg.vector_norm",
            axes=_reduce_axes,
            positional=("dim",),
            member=False,
            code=_norm_code,
        ),
        Op(
            "reshape",
            "Gives each sample the shape `sizes` (the batch kept; one size may be -1): `reshape(x, (768, -1))` is "
            "torchvision's `x.reshape(n, 768, -1)`.",
            (("sizes", REQUIRED),),
            _reshape_shape,
            _no_module,
            _free,
            functional="reshape",
            allocates_output=False,
            sized_axes=_reshape_axes,
            positional=("sizes",),
            member=False,
            code=_reshape_code,
        ),
        Op(
            "pad",
            "Pads the last dimensions (F.pad): `pad` holds (before, after) for the last dimension, then the one before "
            'it; `mode` "constant" (with `value`), "reflect", "replicate" or "circular". hgnetv2\'s stem: `pad(x, (0, 1, 0, 1))`.',
            (("pad", REQUIRED), ("mode", "constant"), ("value", 0.0)),
            _pad_shape,
            _pad_module,
            _free,
            functional="F.pad",
            check=_pad_check,
            positional=("pad",),
        ),
        Op(
            "index",
            "`x[:, 0]`, `x[:, 1:]`: indexing and slicing a tensor, the batch kept whole (written with brackets).",
            (("items", REQUIRED),),
            _index_shape,
            _no_module,
            _free,
            functional="index",
            allocates_output=False,
            axes=_index_axes,
            member=False,
            code=_index_code,
            syntax_only=True,
        ),
        Op(
            "gather",
            "`table[index]`: the rows of a `param` or `buffer` picked by an integer `buffer` (torchvision's MaxViT and Swin "
            "bias tables read at `relative_position_index`): index.shape + table.shape[1:], written with brackets.",
            (),
            _operands_only,
            _no_module,
            _no_cost,
            functional="gather",
            member=False,
            operands=2,
            joint_shape=_gather_shape,
            joint_cost=_gather_cost,
            syntax_only=True,
        ),
        Op(
            "split",
            "Splits a tensor along `dim` into parts of the given sizes, unpacked in a forward: `a, b = split(x, (16, 48), dim = 1)`.",
            (("split_sizes", REQUIRED), ("dim", REQUIRED)),
            _split_shape,
            _no_module,
            _free,
            functional="torch.split",
            allocates_output=False,
            positional=("split_sizes", "dim"),
            multi=True,
            member=False,
        ),
        Op(
            "mha",
            "Multi-head self-attention over tokens (`nn.MultiheadAttention`, batch first; embed_dim is inferred): "
            "`attn(x)` attends x to itself, as torchvision's ViT calls `self_attention(x, x, x, need_weights=False)`.",
            (("num_heads", REQUIRED), ("dropout", 0.0), ("bias", True)),
            _same_shape,
            _mha_module,
            _mha_cost,
            check=_mha_check,
            params=_mha_params,
            inferred={"embed_dim": lambda s: s[-1]},
            layout="last",
            apply="{out}, _ = {module}({x}, {x}, {x}, need_weights=False)",
        ),
        Op(
            "permute",
            "Reorders the dimensions (PyTorch's, the batch 0 first): `permute(x, (0, 2, 3, 1))` puts channels last.",
            (("dims", REQUIRED),),
            _permute_shape,
            lambda a: ("Permute", [list(a["dims"])], {}),
            _free,
            functional="torch.permute",
            allocates_output=False,
            axes=_permute_axes,
            positional=("dims",),
            helper=PERMUTE,
        ),
        Op(
            "transpose",
            "Swaps two dimensions (PyTorch's, the batch 0): `transpose(x, 1, 2)`.",
            (("dim0", REQUIRED), ("dim1", REQUIRED)),
            _transpose_shape,
            lambda a: ("Transpose", [a["dim0"], a["dim1"]], {}),
            _free,
            functional="torch.transpose",
            allocates_output=False,
            axes=_transpose_axes,
            positional=("dim0", "dim1"),
            helper=TRANSPOSE,
        ),
        Op(
            "dropout",
            "Dropout; active in training mode only.",
            (("p", 0.5), ("inplace", False)),
            _same_shape,
            _simple_module("nn.Dropout", "dropout"),
            _free,
            functional="F.dropout",
            uses_training=True,
        ),
        Op(
            "stochastic_depth",
            "Stochastic depth (Huang et al. 2016), as torchvision.ops.StochasticDepth: in training, zeroes a residual "
            "branch per sample (`row`) or for the whole batch (`batch`) with probability p and scales the rest by "
            "1 / (1 - p); the identity in eval mode.",
            (("p", REQUIRED), ("mode", "row")),
            _same_shape,
            lambda a: ("StochasticDepth", [a["p"], a["mode"]], {}),
            _free,
            functional="stochastic_depth",
            uses_training=True,
            helper=STOCHASTIC_DEPTH,
        ),
        Op(
            "param",
            "A learnable tensor of its own (`nn.Parameter`), not inside a module: ConvNeXt's layer scale, a class token. "
            "Read by name in a forward; its shape is PyTorch's (no batch), broadcast against a batch of activations.",
            (("shape", REQUIRED), ("fill", 0.0), ("std", 0.0)),
            lambda a, s: tuple(a["shape"]),
            _param_module,
            _free,
            params=lambda a: numel(tuple(a["shape"])),
            allocates_output=False,
        ),
        Op(
            "buffer",
            "A fixed tensor of its own, computed once when the module is built and registered with `register_buffer` "
            "(Swin's `relative_position_index`, BlurPool's `filt`): `buffer(expr, persistent = true)`, `expr` built "
            "from `arange(...)` and `tensor(...)` (archc/sema/buffers.py). Read by name in a forward, as a `param` is; "
            "counted as a buffer, not a parameter.",
            (("value", REQUIRED), ("persistent", True)),
            lambda a, s: tuple(a["shape"]),
            lambda a: ("self.register_buffer", [], {}),
            _free,
            buffers=lambda a: numel(tuple(a["shape"])),
            allocates_output=False,
        ),
        Op(
            "conv2d",
            "A 2-d convolution by a weight tensor of the module's own, as F.conv2d: `conv2d(x, filt, stride = 2, groups = "
            "channels)` with `filt` a `buffer` or `param` of shape (out, in / groups, kh, kw) (timm's BlurPool2d).",
            (("weight", REQUIRED), ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)),
            lambda a, s: _conv_shape(_weight_conv(a), s),
            _no_module,
            _weight_conv_cost,
            functional="F.conv2d",
            check=_weight_conv_check,
            positional=("weight",),
            member=False,
            layout="map",
        ),
        Op(
            "roll",
            "Rolls a tensor along dimensions (PyTorch's, the batch 0), as torch.roll: `roll(x, (-3, -3), (1, 2))` "
            "shifts an H×W×C map by 3 positions up and left, those leaving one edge coming back at the other (Swin's "
            "shifted windows).",
            (("shifts", REQUIRED), ("dims", REQUIRED)),
            _roll_shape,
            _no_module,
            _free,
            functional="torch.roll",
            positional=("shifts", "dims"),
            member=False,
        ),
        Op(
            "identity",
            "Passes its input through.",
            (),
            _same_shape,
            _simple_module("nn.Identity", "identity"),
            _free,
            allocates_output=False,
        ),
    ]
}

# Data-flow operators of the forward: they have no module form. Elementwise arithmetic takes two tensors
# (broadcast as PyTorch does) or one tensor and `attrs["scalar"]` (`"reverse"` where the number comes first).
ADD = "add"
SUB = "sub"
MUL = "mul"
DIV = "div"
ARITHMETIC = (ADD, SUB, MUL, DIV)
SYMBOLS = {ADD: "+", SUB: "-", MUL: "*", DIV: "/"}
CAT = "cat"
REDUCTIONS = tuple(name for name, op in OPS.items() if op.axes is _reduce_axes)

PARAM = "param"
BUFFER = "buffer"
# What a forward reads by name as a tensor of its own, with no batch: a learnable one, or a fixed one.
TENSOR_MEMBERS = (PARAM, BUFFER)


def batched_shape(shape: Shape, rank: int) -> Shape:
    """A learnable tensor's PyTorch shape (no batch dimension) as the shape it broadcasts like, batch left out, against
    activations of `rank` dimensions (a batch left out): PyTorch aligns shapes on the right, so (C, 1, 1) meets
    N×C×H×W as C×1×1, and a leading 1 meets the batch."""
    if len(shape) <= rank:
        return (*(1,) * (rank - len(shape)), *shape)
    if len(shape) == rank + 1 and shape[0] == 1:
        return tuple(shape[1:])
    raise OpError(
        "E030",
        f"a learnable tensor of shape {'×'.join(str(d) for d in shape)} does not broadcast against N×" + "×".join(["?"] * rank),
        "its dimensions align with the activations' from the right; one more is allowed, of size 1, against the batch",
    )


def operand_shapes(shapes: list[Shape], batched: list[bool]) -> list[Shape]:
    """The shapes elementwise operands meet in, batch left out: a learnable tensor's (`batched` False) aligned on
    the right against the activations' rank, as PyTorch aligns it."""
    rank = max((len(s) for s, b in zip(shapes, batched, strict=True) if b), default=None)
    if rank is None:
        return shapes
    return [s if b else batched_shape(s, rank) for s, b in zip(shapes, batched, strict=True)]


def broadcast(a: Shape, b: Shape) -> Shape:
    """The shape of an elementwise operation on tensors of shapes `a` and `b` (batch left out), by PyTorch's
    broadcasting: sizes equal, or one of them 1. Symbolic sizes that cannot be compared are taken from the operand
    that is not 1 (elaboration has checked the concrete shapes already)."""
    if len(a) != len(b):
        raise OpError(
            "E030",
            f"cannot broadcast {fmt_shape(a)} and {fmt_shape(b)}: they have different ranks",
            "both operands carry the batch first, so their ranks must match: reshape one (a 1×1 map is C×1×1)",
        )
    out = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if same_value(x, y) or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        elif isinstance(x, int) and isinstance(y, int):
            raise OpError(
                "E030",
                f"cannot broadcast {fmt_shape(a)} and {fmt_shape(b)}: dimension {i + 1} is {x} against {y}",
                "sizes must be equal, or one of them 1 (a squeeze-and-excitation scale is C×1×1)",
            )
        else:
            out.append(y if isinstance(x, Unknown) else x)
    return tuple(out)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _sizes(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """One number, or a pair (h, w), each passing `check`."""
    return lambda v: check(v) or (isinstance(v, tuple) and len(v) == 2 and all(check(x) for x in v))


# No tensor dimension in PyTorch exceeds int64; archc draws the line far below, where no network goes.
MAX_SIZE = 2**31 - 1

_positive = _sizes(lambda v: _is_int(v) and 0 < v <= MAX_SIZE)

# What each argument may be, by name (arguments mean the same in every op): a test and how to say it.
ARG_KINDS: dict[str | tuple[str, str], tuple[Callable[[Any], bool], str]] = {
    "out_channels": (lambda v: _is_int(v) and 0 < v <= MAX_SIZE, "a positive integer (at most 2**31 - 1)"),
    "out_features": (lambda v: _is_int(v) and 0 < v <= MAX_SIZE, "a positive integer (at most 2**31 - 1)"),
    "groups": (lambda v: _is_int(v) and 0 < v <= MAX_SIZE, "a positive integer (at most 2**31 - 1)"),
    "kernel_size": (_positive, "a positive integer or a pair (h, w) of them"),
    "output_size": (_positive, "a positive integer or a pair (h, w) of them"),
    "dilation": (_positive, "a positive integer or a pair (h, w) of them"),
    "stride": (_positive, "a positive integer or a pair (h, w) of them"),
    "padding": (
        lambda v: v in ("same", "valid") or _sizes(lambda x: _is_int(x) and 0 <= x <= MAX_SIZE)(v),
        'a non-negative integer or a pair (h, w) of them, or "same" or "valid" (a convolution\'s)',
    ),
    "start_dim": (_is_int, "an integer"),
    "eps": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "momentum": (lambda v: v is None or (_is_number(v) and 0 <= v <= 1), "a number between 0 and 1, or none"),
    "p": (lambda v: _is_number(v) and 0 <= v <= 1, "a probability between 0 and 1"),
    "end_dim": (_is_int, "an integer"),
    "dim0": (_is_int, "an integer"),
    "dim1": (_is_int, "an integer"),
    "chunks": (lambda v: _is_int(v) and 0 < v <= 1024, "a positive integer"),
    "dims": (lambda v: isinstance(v, tuple) and all(_is_int(d) for d in v), "a tuple of dimensions, e.g. (0, 2, 3, 1)"),
    "sizes": (lambda v: isinstance(v, tuple) and all(_is_int(d) for d in v), "a tuple of sizes, e.g. (2, -1)"),
    "shifts": (
        lambda v: _is_int(v) or (isinstance(v, tuple) and len(v) > 0 and all(_is_int(d) for d in v)),
        "an integer or a tuple of them, one per dimension rolled",
    ),
    ("roll", "dims"): (
        lambda v: _is_int(v) or (isinstance(v, tuple) and len(v) > 0 and all(_is_int(d) for d in v)),
        "a dimension or a tuple of them (PyTorch's, the batch 0), e.g. (1, 2)",
    ),
    ("norm", "p"): (lambda v: _is_number(v) and v in (1, 2), "1 or 2 (the L1 or the Euclidean norm)"),
    ("conv2d", "weight"): (lambda v: isinstance(v, tuple) and len(v) == 4, "a tensor of 4 dimensions (out, in / groups, kh, kw)"),
    ("buffer", "value"): (lambda v: hasattr(v, "dtype") or isinstance(v, str), "a tensor built with arange(...) or tensor(...)"),
    "persistent": (lambda v: isinstance(v, bool), "true or false"),
    "shape": (
        lambda v: isinstance(v, tuple) and 0 < len(v) <= 8 and all(_is_int(d) and 0 < d <= MAX_SIZE for d in v),
        "a tuple of positive sizes, e.g. (dim, 1, 1)",
    ),
    "fill": (_is_number, "a number"),
    "std": (lambda v: _is_number(v) and v >= 0, "a non-negative number"),
    "mode": (lambda v: v in ("row", "batch"), '"row" (one draw per sample) or "batch" (one for the batch)'),
    ("pad", "mode"): (lambda v: v in PAD_MODES, 'one of "constant", "reflect", "replicate" or "circular"'),
    "pad": (
        lambda v: isinstance(v, tuple) and len(v) in (2, 4, 6) and all(_is_int(d) and 0 <= d <= MAX_SIZE for d in v),
        "a tuple of 2, 4 or 6 sizes at least 0, (before, after) per dimension from the last: (left, right, top, bottom)",
    ),
    "value": (_is_number, "a number"),
    "scale": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "dim": (
        lambda v: _is_int(v) or (isinstance(v, tuple) and all(_is_int(d) for d in v)),
        "an integer (or, for a reduction, a tuple of them)",
    ),
    "keepdim": (lambda v: isinstance(v, bool), "true or false"),
    "split_sizes": (lambda v: isinstance(v, tuple) and all(_is_int(d) or is_symbolic(d) for d in v), "a tuple of sizes, e.g. (16, 48)"),
    "items": (lambda v: isinstance(v, tuple), "subscripts"),
    "num_heads": (lambda v: _is_int(v) and 0 < v <= MAX_SIZE, "a positive integer (at most 2**31 - 1)"),
    "dropout": (lambda v: _is_number(v) and 0 <= v <= 1, "a probability between 0 and 1"),
    "min_val": (_is_number, "a number"),
    "max_val": (_is_number, "a number"),
    "negative_slope": (_is_number, "a number"),
    "alpha": (_is_number, "a number"),
    "beta": (_is_number, "a number"),
    "k": (_is_number, "a number"),
    "init": (_is_number, "a number"),
    "approximate": (lambda v: v in ("none", "tanh"), 'one of "none" (exact) or "tanh" (the tanh approximation)'),
    "num_groups": (lambda v: _is_int(v) and 0 < v <= MAX_SIZE, "a positive integer (at most 2**31 - 1)"),
    "num_parameters": (lambda v: _is_int(v) and 0 < v <= MAX_SIZE, "a positive integer (at most 2**31 - 1)"),
    "size": (lambda v: _is_int(v) and 0 < v <= MAX_SIZE, "a positive integer (at most 2**31 - 1)"),
    **{
        flag: (lambda v: isinstance(v, bool), "true or false")
        for flag in ("bias", "affine", "track_running_stats", "inplace", "ceil_mode", "count_include_pad", "elementwise_affine")
    },
}


def check_args(op: Op, attrs: Attrs) -> None:
    """Raise OpError for an argument of the wrong kind; symbolic values are checked where they are used."""
    for name, default in op.args:
        value = attrs[name]
        if is_symbolic(value) or isinstance(value, Unknown):
            continue
        if value is None and default is None:  # the op's own default, such as a pool's stride (its kernel size)
            continue
        test, expected = ARG_KINDS.get((op.name, name)) or ARG_KINDS[name]
        if not test(value):
            raise OpError("E016", f"{op.name}: `{name}` must be {expected}, got {value!r}", arg=name)


def lookup(name: str) -> Op | None:
    """The op row a spec calls by `name`, or None."""
    op = OPS.get(name)
    return None if op is None or op.syntax_only else op


def bind_args(op: Op, args: list[Any], kwargs: dict[str, Any]) -> Attrs:
    """Positional and keyword arguments -> the op's attributes with defaults filled in."""
    names = [n for n, _ in op.args]
    if len(args) > len(names):
        raise OpError("E014", f"{op.name} takes at most {len(names)} arguments ({', '.join(names) or 'none'}), got {len(args)}")
    attrs: Attrs = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"its arguments are: {', '.join(names) or 'none'}"
            raise OpError("E012", f"{op.name} has no argument `{key}`", hint, arg=key)
        if key in attrs:
            raise OpError(
                "E015",
                f"{op.name}: argument `{key}` given twice",
                f"`{key}` is also argument {names.index(key) + 1} by position: give it once",
                arg=key,
            )
        attrs[key] = value
    for name, default in op.args:
        if name not in attrs:
            if default is REQUIRED:
                raise OpError("E013", f"{op.name} needs the argument `{name}`", f"{op.name}({', '.join(names)})")
            attrs[name] = default
    check_args(op, attrs)
    return attrs


def infer_attrs(op: Op, attrs: Attrs, in_shape: Shape) -> Attrs:
    """The attributes with those inferred from the input shape (in_channels, in_features, ...) added first."""
    inferred = {name: rule(in_shape) for name, rule in op.inferred.items()}
    return {**inferred, **attrs}
