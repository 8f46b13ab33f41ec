"""Shape inference: the output shape of every node, with located errors for shapes that cannot meet.

Elaboration calls `infer_shape` for each node as it builds the graph, because structure may depend on shapes
(a block reads `in.channels`; a conv's in_channels is inferred). Shapes leave the batch out (N is symbolic).
"""

from __future__ import annotations

from typing import Any

from archc import ops
from archc.errors import ArchError, Loc, Note
from archc.ops import OpError, Shape, fmt_shape

# Where an input of a node was made, for the notes of a mismatch: its location and a few words (`bn1` (batchnorm)).
Origin = tuple[Loc | None, str]


def infer_shape(op: str, attrs: dict[str, Any], inputs: list[Shape], loc: Loc, origins: list[Origin] | None = None) -> Shape:
    """The output shape of `op` with `attrs` applied to `inputs`; ArchError at `loc` if they do not fit.

    `origins`, one per input, say where the inputs were made: a mismatch at `+` or `cat` notes them.
    """
    try:
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
            first = inputs[0]
            if len(first) != 3:
                raise _mismatch(
                    OpError("E031", f"cat joins feature maps on channels, got {fmt_shape(first)}", "concatenate before `flatten`"),
                    loc,
                    inputs,
                    origins,
                    (0,),
                    ("the first tensor",),
                )
            for i, other in enumerate(inputs[1:], 1):
                if len(other) != 3 or tuple(other[1:]) != tuple(first[1:]):
                    raise _mismatch(
                        OpError(
                            "E031",
                            f"cannot concatenate {fmt_shape(first)} and {fmt_shape(other)} on channels: the spatial sizes differ",
                            "give every branch the same stride and padding",
                        ),
                        loc,
                        inputs,
                        origins,
                        (0, i),
                        ("the first tensor", f"tensor {i + 1}"),
                    )
            return (sum(s[0] for s in inputs), first[1], first[2])
        row = ops.OPS[op]
        (shape,) = inputs
        if row.check is not None:
            row.check(attrs, shape)
        out = row.shape(attrs, shape)
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
