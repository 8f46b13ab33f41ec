"""Multiply-accumulates per node and in total.

`macs` is the multiply-accumulates of convolutions, linear layers and matrix products (`matmul`, `attention`) on
the eval-mode path, for one image. It equals `torch.utils.flop_counter.FlopCounterMode`'s total / 2 on the
generated module, which counts matrix products only. Training-only nodes (auxiliary heads) are summed apart. Other
operations (normalisation, activations, pooling, additions) are not counted: see docs/analysis.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc import ops
from archc.ir import Architecture, Node
from archc.ops import Cost


@dataclass(frozen=True)
class MacReport:
    per_node: dict[int, Cost]
    macs: int  # conv + linear, eval-mode path, one image
    training_only_macs: int  # conv + linear of nodes that run in training mode only


def node_cost(node: Node, arch: Architecture) -> Cost:
    """The cost rule of the node's op applied to its shapes; every op has one."""
    out = tuple(node.shape)
    if node.op in ops.ARITHMETIC or node.op in (ops.CAT, *ops.TENSOR_MEMBERS):
        return Cost()
    row = ops.OPS[node.op]
    operands = node.inputs[: row.operands]  # conv2d's second input is its weight, not an operand
    return ops.op_cost(row, node.attrs, [tuple(arch.nodes[i].shape) for i in operands], out)


def count_macs(arch: Architecture) -> MacReport:
    """Cost of every node (the input excluded) and the totals, per image."""
    per_node = {node.id: node_cost(node, arch) for node in arch.nodes if node.op != "input"}
    inference = [per_node[n.id] for n in arch.nodes if n.id in per_node and not n.training_only]
    training = [per_node[n.id] for n in arch.nodes if n.id in per_node and n.training_only]
    return MacReport(
        per_node,
        macs=sum(c.macs for c in inference),
        training_only_macs=sum(c.macs for c in training),
    )
