"""`archc summary`: per-layer rows and totals, as a table or as JSON."""

from __future__ import annotations

from typing import Any

from archc.compiler import Compiled
from archc.ops import fmt_shape


def summary_data(compiled: Compiled) -> dict[str, Any]:
    """The summary as plain data (the `--json` output)."""
    arch, report = compiled.arch, compiled.params
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
                "output": node.shape,
                "params": params,
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
        "aux_outputs": [arch.nodes[i].shape for i in arch.aux_outputs],
        "params": report.params,
        "trainable_params": report.trainable_params,
        "buffers": report.buffers,
        "layers": layers,
    }


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
    for row in data["layers"]:
        name = row["name"] + (" (train)" if row["training_only"] else "")
        table.add_row(name, row["op"], fmt_shape(tuple(row["output"])), f"{row['params']:,}" if row["params"] else "")
    console = Console(width=max(100, Console().width))
    console.print(table)
    console.print(f"input: {fmt_shape(tuple(data['input']))}   output: {fmt_shape(tuple(data['output']))}")
    console.print(f"params: {data['params']:,} (trainable {data['trainable_params']:,})   buffers: {data['buffers']:,}")
