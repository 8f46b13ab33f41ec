"""`archc summary`: per-layer rows and totals, as a table or as JSON."""

from __future__ import annotations

import shutil
import sys
from typing import Any

from archc import ops
from archc.compiler import Compiled
from archc.ops import fmt_shape
from archc.passes.macs import count_macs
from archc.passes.memory import estimate_memory
from archc.passes.receptive_field import compute_receptive_fields


def summary_data(compiled: Compiled, batch: int = 1, dtype: str = "fp32") -> dict[str, Any]:
    """The summary as plain data (the `--json` output); memory is for `batch` images of `dtype`."""
    arch, report = compiled.arch, compiled.params
    costs = count_macs(arch)
    fields = compute_receptive_fields(arch)
    memory = estimate_memory(arch, batch, dtype)
    seen: set[str] = set()
    layers = []
    # A learnable or fixed tensor (`param`, `buffer`), and a reshape of one (timm's layer scale), have PyTorch's
    # shape: no batch.
    unbatched: set[int] = set()
    # So are what elaboration keeps without a batch: their own dimensions moved, an activation of one, arithmetic of
    # such tensors alone (archc/elaborate.py).
    kept = ("reshape", *ops.OWN_DIMS, *ops.ELEMENTWISE, *ops.SYMBOLS)
    for node in arch.nodes:
        if node.op in ("param", "buffer") or (node.op in kept and node.inputs and all(i in unbatched for i in node.inputs)):
            unbatched.add(node.id)
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
                "batched": node.id not in unbatched,
                "params": params,
                "macs": costs.per_node[node.id].macs,
                "receptive_field": fields.per_node[node.id].as_dict(),
                "activation_bytes": memory.per_node.get(node.id, 0),
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
        "training_only_macs": costs.training_only_macs,
        "receptive_field": fields.feature.as_dict(),
        "receptive_field_at": arch.nodes[fields.feature_node].name,
        "output_receptive_field": fields.output.as_dict(),
        "memory": {
            "dtype": memory.dtype,
            "batch": memory.batch,
            "param_bytes": memory.param_bytes,
            "buffer_bytes": memory.buffer_bytes,
            "activation_bytes": memory.activation_bytes,
        },
        "warnings": fields.warnings,
        "layers": layers,
    }


def _count(n: int) -> str:
    """12,345,678 -> 12.35M, as summaries print large counts."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n) if n else ""


def fold(layers: list[dict[str, Any]], depth: int, types: dict[str, str]) -> list[dict[str, Any]]:
    """Rows grouped by the first `depth` parts of their names, with subtotals: depth 1 gives stages, 2 blocks.
    A group is labelled with the type of the module at its path (`types`: path -> block or op name)."""
    groups: dict[str, dict[str, Any]] = {}
    for row in layers:
        key = ".".join(row["name"].split(".")[:depth])
        group = groups.setdefault(key, {**row, "name": key, "params": 0, "macs": 0, "ops": []})
        group["params"] += row["params"]
        group["macs"] += row["macs"]
        group["shape"], group["batched"], group["receptive_field"] = row["shape"], row["batched"], row["receptive_field"]
        group["training_only"] = group["training_only"] and row["training_only"]
        group["ops"].append(row["op"])
    for key, group in groups.items():
        group["op"] = group["ops"][0] if len(group["ops"]) == 1 else types.get(key, f"{len(group['ops'])} ops")
    return list(groups.values())


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


_COLUMNS = (("layer", "left"), ("op", "left"), ("output", "right"), ("params", "right"), ("MACs", "right"), ("RF", "right"))


def _table_rows(compiled: Compiled, data: dict[str, Any], depth: int | None) -> list[tuple[str, ...]]:
    rows = fold(data["layers"], depth, {m.path: m.type for m in compiled.arch.modules()}) if depth else data["layers"]
    out: list[tuple[str, ...]] = []
    for row in rows:
        name = row["name"] + (" (train)" if row["training_only"] else "")
        rf = _side(row["receptive_field"]["size"])
        params = f"{row['params']:,}" if row["params"] else ""
        out.append((name, row["op"], row_shape(row), params, _count(row["macs"]), rf))
    return out


def row_shape(row: dict[str, Any]) -> str:
    """A row's output shape, `N×C×H×W`; a learnable tensor's (or a reshape of one) is PyTorch's own, with no batch."""
    return fmt_shape(tuple(row["shape"])) if row["batched"] else "×".join(str(d) for d in row["shape"])


def rich_table(title: str, rows: list[tuple[str, ...]], width: int, columns: tuple[tuple[str, str], ...] = _COLUMNS) -> str:
    """The table as rich lays it out (wrapping cells when it is wider than `width`), without colour."""
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text  # cells as plain text: a quoted seq name may hold rich's markup brackets

    table = Table(title=Text(title), title_justify="left")
    for header, justify in columns:
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    buffer = io.StringIO()
    Console(width=width, file=buffer, color_system=None, highlight=False).print(table)
    return buffer.getvalue()


def plain_table(title: str, rows: list[tuple[str, ...]], width: int, columns: tuple[tuple[str, str], ...] = _COLUMNS) -> str | None:
    """The same table as `rich_table` where it fits in `width`, drawn directly with rich's box characters
    (tests/test_startup.py holds the two equal): rich measures and pads every cell through its general layout
    engine, a third of a second on ResNet-152's 520 rows. None where the table would not fit. Plain text on a
    terminal too: the title is not set in italics nor the header in bold."""
    from rich.box import HEAVY_HEAD
    from rich.cells import cell_len

    widths = [max([cell_len(header)] + [cell_len(row[i]) for row in rows]) for i, (header, _) in enumerate(columns)]
    total = sum(widths) + 3 * len(widths) + 1
    if total > width or cell_len(title) > total:
        return None

    def line(cells: tuple[str, ...], left: str, middle: str, right: str) -> str:
        parts = []
        for text, size, (_, justify) in zip(cells, widths, columns, strict=True):
            pad = " " * (size - cell_len(text))
            parts.append(f" {text}{pad} " if justify == "left" else f" {pad}{text} ")
        return left + middle.join(parts) + right

    box = HEAVY_HEAD
    spans = [w + 2 for w in widths]
    lines = [title + " " * (total - cell_len(title)), box.get_top(spans)]
    lines.append(line(tuple(h for h, _ in columns), box.head_left, box.head_vertical, box.head_right))
    lines.append(box.get_row(spans, "head", edge=True))
    lines.extend(line(row, box.mid_left, box.mid_vertical, box.mid_right) for row in rows)
    lines.append(box.get_bottom(spans))
    return "\n".join(lines) + "\n"


def _side(sizes: list[Any]) -> str:
    return str(sizes[0]) if sizes[0] == sizes[1] else f"{sizes[0]}×{sizes[1]}"


def _field_line(compiled: Compiled, data: dict[str, Any]) -> str:
    """The headline field (of the last spatial feature map) and, beside it, the output's (through global pooling)."""
    rf, at = data["receptive_field"], data["receptive_field_at"]
    shape = next(n.shape for n in compiled.arch.nodes if n.name == at)
    line = f"receptive field: {_side(rf['size'])} px at {at} ({fmt_shape(tuple(shape))}), jump {_side(rf['jump'])}"
    output = data["output_receptive_field"]
    if output != rf:
        line += f"   at the output: {_side(output['size'])}"
    return line + "\n"


def print_summary(compiled: Compiled, depth: int | None = None, batch: int = 1, dtype: str = "fp32") -> None:
    """The summary as a table on standard output; `depth` folds rows into stages or blocks with subtotals."""
    data = summary_data(compiled, batch, dtype)
    rows = _table_rows(compiled, data, depth)
    title = f"{data['name']}  ({data['spec']})"
    width = max(110, shutil.get_terminal_size().columns)
    out = [plain_table(title, rows, width) or rich_table(title, rows, width)]
    out.append(f"input: {fmt_shape(tuple(data['input']))}   output: {fmt_shape(tuple(data['output']))}\n")
    out.append(f"params: {data['params']:,} (trainable {data['trainable_params']:,})   buffers: {data['buffers']:,}\n")
    extra = f" (+{data['training_only_macs']:,} in training-only outputs)" if data["training_only_macs"] else ""
    out.append(f"MACs: {data['macs']:,} per image{extra}\n")
    out.append(_field_line(compiled, data))
    m = data["memory"]
    out.append(
        f"memory ({m['dtype']}, batch {m['batch']}): params {_bytes(m['param_bytes'])}, buffers {_bytes(m['buffer_bytes'])}, "
        f"training activations {_bytes(m['activation_bytes'])}\n"
    )
    out.extend(f"warning: {warning}\n" for warning in data["warnings"])
    sys.stdout.write("".join(out))
