"""`archc summary`: per-layer rows and totals, as a table or as JSON."""

from __future__ import annotations

from typing import Any

from archc.compiler import Compiled
from archc.ops import fmt_shape
from archc.passes.macs import count_macs
from archc.passes.receptive_field import compute_receptive_fields


def summary_data(compiled: Compiled) -> dict[str, Any]:
    """The summary as plain data (the `--json` output)."""
    arch, report = compiled.arch, compiled.params
    costs = count_macs(arch)
    fields = compute_receptive_fields(arch)
    seen: set[str] = set()
    layers = []
    for node in arch.nodes[1:]:
        params = 0
        if node.module is not None and node.module not in seen:
            seen.add(node.module)
            params = report.per_module[node.module].params if node.module in report.per_module else 0
        layers.append(
            {
                "name": node.name,
                "op": node.op,
                "shape": node.shape,
                "params": params,
                "macs": costs.per_node[node.id].macs,
                "other_ops": costs.per_node[node.id].other,
                "receptive_field": fields.per_node[node.id].as_dict(),
                "training_only": node.training_only,
                "line": node.loc.line,
            }
        )
    return {
        "name": arch.name,
        "spec": compiled.path.as_posix(),
        "meta": arch.meta,
        "input": arch.input_shape,
        "output": arch.nodes[arch.outputs[0]].shape,
        "outputs": [arch.nodes[i].shape for i in [*arch.outputs, *arch.aux_outputs]],
        "params": report.params,
        "trainable_params": report.trainable_params,
        "buffers": report.buffers,
        "macs": costs.macs,
        "other_ops": costs.other,
        "training_only_macs": costs.training_only_macs,
        "receptive_field": fields.output.as_dict(),
        "warnings": fields.warnings,
        "layers": layers,
    }


def _count(n: int) -> str:
    """12,345,678 -> 12.35M, as summaries print large counts."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n) if n else ""


def print_summary(compiled: Compiled) -> None:
    """The summary as a table on standard output."""
    from rich.console import Console
    from rich.table import Table

    data = summary_data(compiled)
    table = Table(title=f"{data['name']}  ({data['spec']})", title_justify="left")
    table.add_column("layer")
    table.add_column("op")
    table.add_column("output", justify="right")
    table.add_column("params", justify="right")
    table.add_column("MACs", justify="right")
    table.add_column("RF", justify="right")
    for row in data["layers"]:
        name = row["name"] + (" (train)" if row["training_only"] else "")
        size = row["receptive_field"]["size"]
        rf = str(size[0]) if size[0] == size[1] else f"{size[0]}×{size[1]}"
        table.add_row(
            name, row["op"], fmt_shape(tuple(row["shape"])), f"{row['params']:,}" if row["params"] else "", _count(row["macs"]), rf
        )
    console = Console(width=max(110, Console().width))
    console.print(table)
    console.print(f"input: {fmt_shape(tuple(data['input']))}   output: {fmt_shape(tuple(data['output']))}")
    console.print(f"params: {data['params']:,} (trainable {data['trainable_params']:,})   buffers: {data['buffers']:,}")
    extra = f" (+{data['training_only_macs']:,} in training-only outputs)" if data["training_only_macs"] else ""
    console.print(f"MACs: {data['macs']:,} per image{extra}   other ops: {data['other_ops']:,}")
    for warning in data["warnings"]:
        console.print(f"warning: {warning}")
