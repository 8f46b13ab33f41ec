"""Memory: the bytes of parameters and buffers, and of the activations a training forward produces at batch N.

Activations are the outputs of every node of a training-mode forward (auxiliary heads included), for `batch`
images, except outputs that share the input's storage: in-place ops (`relu(inplace = true)`) and views or
pass-throughs (`flatten`, `identity`). That is what autograd can keep alive until the backward pass; PyTorch's own
workspace and the saved statistics of BatchNorm are not included.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc import ops
from archc.ir import Architecture, Node

# Bytes per element of floating-point tensors; num_batches_tracked (BatchNorm, InstanceNorm) stays int64 (8 bytes)
# whatever the dtype.
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp64": 8}
INT64_BYTES = 8


@dataclass(frozen=True)
class MemoryReport:
    dtype: str
    batch: int
    param_bytes: int
    buffer_bytes: int
    activation_bytes: int
    per_node: dict[int, int]  # activation bytes of each node's output at this batch and dtype


def allocates(node: Node) -> bool:
    """Whether a node's output is a new tensor (not its input, a view of it, or the input updated in place)."""
    if node.op in (*ops.ARITHMETIC, ops.CAT):
        return True
    return ops.OPS[node.op].allocates_output and node.attrs.get("inplace") is not True


def estimate_memory(arch: Architecture, batch: int = 1, dtype: str = "fp32") -> MemoryReport:
    """Parameter, buffer and activation bytes at `batch` images of `dtype`."""
    size = DTYPE_BYTES[dtype]
    param_bytes = buffer_bytes = 0
    for module in arch.modules():
        if module.kind != "op":
            continue
        row = ops.OPS[module.type]
        param_bytes += int(row.params(module.attrs)) * size
        buffers = int(row.buffers(module.attrs))
        if module.type == ops.BUFFER:  # a fixed tensor keeps the dtype it is built with (int64 indices)
            buffer_bytes += buffers * (INT64_BYTES if module.attrs["dtype"] == "int64" else size)
            continue
        counters = 1 if module.type in ("batchnorm", "instancenorm") and module.attrs["track_running_stats"] else 0
        buffer_bytes += (buffers - counters) * size + counters * INT64_BYTES
    per_node = {n.id: ops.numel(tuple(n.shape)) * batch * size for n in arch.nodes if n.op != "input" and allocates(n)}
    return MemoryReport(dtype, batch, param_bytes, buffer_bytes, sum(per_node.values()), per_node)
