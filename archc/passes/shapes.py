"""Shape inference: the output shape of every node, with located errors for shapes that cannot meet.

Elaboration calls `infer_shape` for each node as it builds the graph, because structure may depend on shapes
(a block reads `in.channels`; a conv's in_channels is inferred). Shapes leave the batch out (N is symbolic).
"""

from __future__ import annotations

from typing import Any

from archc import ops
from archc.errors import ArchError, Loc, Note
from archc.ops import Axes, OpError, Shape, fmt_shape
from archc.sema.symbolic import same_value

# Where an input of a node was made, for the notes of a mismatch: its location and a few words (`bn1` (batchnorm)).
Origin = tuple[Loc | None, str]


def infer_shape(
    op: str,
    attrs: dict[str, Any],
    inputs: list[Shape],
    loc: Loc,
    origins: list[Origin] | None = None,
    axes: list[Axes] | None = None,
) -> Shape:
    """The output shape of `op` with `attrs` applied to `inputs`; ArchError at `loc` if they do not fit.

    `origins`, one per input, say where the inputs were made: a mismatch at `+` or `cat` notes them. `axes`, one
    per input, say what each dimension is (`ops.Axes`): an op that needs a C×H×W map refuses a permuted one.
    """
    try:
        if axes is not None and op in ops.OPS:
            check_layout(ops.OPS[op], inputs[0], axes[0])
        if op in ops.ARITHMETIC:
            if len(inputs) == 1:
                return inputs[0]
            first, other = inputs
            try:
                return ops.broadcast(first, other)
            except OpError as e:
                if op == ops.ADD and len(first) == len(other) == 3 and e.message.startswith("cannot broadcast"):
                    # A residual whose branches disagree: the common case, with its common fix.
                    e = OpError(
                        "E030",
                        f"cannot add tensors of shapes {fmt_shape(first)} and {fmt_shape(other)}",
                        "both operands of `+` need the same shape: project the shortcut (a 1×1 conv with the same stride)"
                        if 1 not in (*first, *other)
                        else e.hint,
                    )
                raise _mismatch(e, loc, inputs, origins, (0, 1), ("the left operand", "the right operand")) from None
        if op == ops.CAT:
            return _cat_shape(attrs, inputs, loc, origins)
        row = ops.OPS[op]
        shape = inputs[0]  # conv2d's second input is its weight, in its attributes as a shape
        if row.check is not None:
            row.check(attrs, shape)
        out = ops.output_shape(row, attrs, inputs[: row.operands])
        for d in out:  # a safeguard: the window check above rejects such maps first
            if isinstance(d, int) and d <= 0:
                raise OpError(
                    "E032",
                    f"{op} gives an empty output {fmt_shape(out)} from {fmt_shape(shape)}",
                    "use a larger input or fewer downsampling steps",
                )
        return out
    except OpError as e:
        raise ArchError(e.code, e.message, loc, e.hint) from None


def _cat_shape(attrs: dict[str, Any], inputs: list[Shape], loc: Loc, origins: list[Origin] | None) -> Shape:
    """`cat` on dimension `attrs["dim"]` (PyTorch's, the batch 0): every other dimension must agree."""
    first = inputs[0]
    dim = attrs.get("dim", 1)
    on_channels = dim == 1
    if on_channels and len(first) != 3 and any(len(s) != len(first) for s in inputs):
        raise _mismatch(
            OpError("E031", f"cat joins feature maps on channels, got {fmt_shape(first)}", "concatenate before `flatten`"),
            loc,
            inputs,
            origins,
            (0,),
            ("the first tensor",),
        )
    axis = ops.dimension(dim, len(first), "cat", "dim") - 1
    for i, other in enumerate(inputs[1:], 1):
        if len(other) != len(first) or any(j != axis and not same_value(a, b) for j, (a, b) in enumerate(zip(first, other, strict=True))):
            what = "the spatial sizes differ" if on_channels and len(first) == 3 else "their other dimensions differ"
            raise _mismatch(
                OpError(
                    "E031",
                    f"cannot concatenate {fmt_shape(first)} and {fmt_shape(other)} "
                    + ("on channels" if on_channels else f"on dimension {dim}")
                    + f": {what}",
                    "give every branch the same stride and padding"
                    if on_channels and len(first) == 3
                    else "only the joined dimension may differ",
                ),
                loc,
                inputs,
                origins,
                (0, i),
                ("the first tensor", f"tensor {i + 1}"),
            )
    joined: Any = 0
    for s in inputs:
        joined = joined + s[axis]
    return (*first[:axis], joined, *first[axis + 1 :])


def _mismatch(
    e: OpError, loc: Loc, inputs: list[Shape], origins: list[Origin] | None, which: tuple[int, ...], words: tuple[str, ...]
) -> ArchError:
    """The error of a `+` or `cat` whose operands do not fit, with a note on where each operand at fault was made."""
    notes: list[Note] = []
    if origins is not None:
        for index, word in zip(which, words, strict=True):
            where, what = origins[index]
            notes.append((where, f"{word}, {fmt_shape(inputs[index])}, is {what}"))
    return ArchError(e.code, e.message, loc, e.hint, notes)


def describe(shape: Shape, axes: Axes) -> str:
    """`N×56×56×96 (H×W×C)`: a shape with what its dimensions are, where that is not the usual C×H×W."""
    return fmt_shape(shape) + ("" if axes in (ops.MAP_AXES, ("F",)) else f" ({'×'.join(axes)})")


def check_layout(row: ops.Op, shape: Shape, axes: Axes) -> None:
    """OpError where the input's dimensions are not what `row` works on (its `layout`)."""
    if row.layout == "map" and len(axes) == 3 and axes != ops.MAP_AXES:
        raise OpError(
            "E035",
            f"{row.name} needs a C×H×W feature map, channels first; this is {describe(shape, axes)}",
            "permute the channels back first: permute(x, (0, 3, 1, 2)) after (0, 2, 3, 1)",
        )
    if row.layout == "channels" and axes and axes[0] not in ("C", "F"):
        raise OpError(
            "E035",
            f"{row.name} normalises dimension 1, the channels, and this is {describe(shape, axes)}",
            "permute the channels to dimension 1 first, or use layernorm for the last dimension",
        )
    if row.layout == "last" and axes and axes[-1] in ops.SPATIAL:
        raise OpError(
            "E034",
            f"{row.name} maps the last dimension, and this is a feature map {describe(shape, axes)}: its last is the width",
            "add `flatten()` before it for a classifier, or permute the channels last (permute(x, (0, 2, 3, 1))) for one per position",
        )


def infer_axes(op: str, attrs: dict[str, Any], axes: list[Axes], shape: Shape, before: Shape | None = None) -> Axes:
    """What each dimension of `op`'s output is, given its inputs' (`ops.Axes`), the first input's shape `before`
    and the output `shape`."""
    first = axes[0]
    row = ops.OPS.get(op)
    if row is not None and row.joint_axes is not None and len(axes) == row.operands:
        return row.joint_axes(attrs, axes)
    if row is not None and row.axes is not None:
        return row.axes(attrs, first)
    if row is not None and row.sized_axes is not None and before is not None:
        return row.sized_axes(attrs, first, before, shape)
    if len(first) == len(shape):
        return first
    # A rank-changing op without its own rule: nothing is known of its dimensions.
    return tuple("F" for _ in shape)
