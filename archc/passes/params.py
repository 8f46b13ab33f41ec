"""Parameter counts: trainable parameters and buffers per module and in total."""

from __future__ import annotations

from dataclasses import dataclass

from archc import ops
from archc.ir import Architecture


@dataclass(frozen=True)
class ParamCount:
    params: int
    buffers: int


@dataclass(frozen=True)
class ParamReport:
    """Counts per module path (own weights only, for op modules) and the totals a state_dict holds."""

    per_module: dict[str, ParamCount]
    params: int
    trainable_params: int
    buffers: int


def count_params(arch: Architecture) -> ParamReport:
    """Sum each module's parameters once, however often the forward applies it (shared weights count once)."""
    per_module: dict[str, ParamCount] = {}
    for module in arch.modules():
        if module.kind != "op":
            continue
        row = ops.OPS[module.type]
        per_module[module.path] = ParamCount(int(row.params(module.attrs)), int(row.buffers(module.attrs)))
    params = sum(c.params for c in per_module.values())
    buffers = sum(c.buffers for c in per_module.values())
    # Every parameter archc creates is trainable; frozen layers would be the place to subtract.
    return ParamReport(per_module, params, params, buffers)
