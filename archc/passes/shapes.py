"""Shape inference: the output shape of every node, with located errors for shapes that cannot meet.

Elaboration calls `infer_shape` for each node as it builds the graph, because structure may depend on shapes
(a block reads `in.channels`; a conv's in_channels is inferred). Shapes leave the batch out (N is symbolic).
"""

from __future__ import annotations

from typing import Any

from archc import ops
from archc.errors import ArchError, Loc
from archc.ops import OpError, Shape, fmt_shape


def infer_shape(op: str, attrs: dict[str, Any], inputs: list[Shape], loc: Loc) -> Shape:
    """The output shape of `op` with `attrs` applied to `inputs`; ArchError at `loc` if they do not fit."""
    try:
        if op == ops.ADD:
            first = inputs[0]
            for other in inputs[1:]:
                if tuple(other) != tuple(first):
                    raise OpError(
                        f"cannot add tensors of shapes {fmt_shape(first)} and {fmt_shape(other)}",
                        "both operands of `+` need the same shape: project the shortcut (a 1×1 conv with the same stride)",
                    )
            return first
        if op == ops.MUL:
            return inputs[0]
        if op == ops.CAT:
            first = inputs[0]
            if len(first) != 3:
                raise OpError(f"cat joins feature maps on channels, got {fmt_shape(first)}")
            for other in inputs[1:]:
                if len(other) != 3 or tuple(other[1:]) != tuple(first[1:]):
                    raise OpError(
                        f"cannot concatenate {fmt_shape(first)} and {fmt_shape(other)} on channels: the spatial sizes differ",
                        "give every branch the same stride and padding",
                    )
            return (sum(s[0] for s in inputs), first[1], first[2])
        row = ops.OPS[op]
        (shape,) = inputs
        if row.check is not None:
            row.check(attrs, shape)
        out = row.shape(attrs, shape)
        for d in out:
            if isinstance(d, int) and d <= 0:
                raise OpError(
                    f"{op} gives an empty output {fmt_shape(out)} from {fmt_shape(shape)}", "use a larger input or fewer downsampling steps"
                )
        return out
    except OpError as e:
        raise ArchError(e.message, loc, e.hint) from None
