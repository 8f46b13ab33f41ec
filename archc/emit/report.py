"""`archc report`: one self-contained HTML page (no network): the diagram with pan and zoom, the spec source beside
it, the summary table below; hovering or clicking a layer shows its figures and its line in the spec."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import jinja2

from archc.compiler import Compiled
from archc.errors import SOURCES
from archc.files import write_atomic
from archc.ir import Node
from archc.ops import fmt_shape
from archc.tools.summary import fold, row_shape, summary_data

TEMPLATES = Path(__file__).with_name("templates")

_SVG_NODE = re.compile(r'<g id="([^"]+)" class="node">\s*<title>(.*?)</title>', re.S)


def _display(file: str) -> str:
    """A spec path as the user knows it: relative to the working directory where it lies below it."""
    try:
        return Path(file).resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return file


def _count(n: int) -> str:
    return f"{n:,}" if n else ""


def _row_details(row: dict[str, Any], rf: tuple[list[int], list[int]]) -> list[tuple[str, str]]:
    size, jump = rf
    return [
        ("output", row_shape(row)),
        ("params", f"{row['params']:,}"),
        ("MACs", f"{row['macs']:,}"),
        ("receptive field", f"{size[0]}×{size[1]}, jump {jump[0]}×{jump[1]}"),
    ]


def render_report(compiled: Compiled, svg: str, boxes: dict[str, tuple[str, list[str]]], depth: int | None = None) -> str:
    """The report page. `svg` is the diagram as Graphviz renders it, folded to `depth` (None: every layer); `boxes`
    maps each DOT node name to what its box is called and the layers it holds (`dot.boxes_of_dot_nodes`), so the
    page can link the two. The table has one row per layer, or with `depth` one per group of layers the first
    `depth` parts of whose names agree (as `archc summary --depth`), with their totals."""
    data = summary_data(compiled)
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and doctype: the SVG sits inline in the page
    files = sorted({compiled.path.as_posix(), *(n.loc.file for n in compiled.arch.nodes)}, key=lambda f: f != compiled.path.as_posix())
    sources = []
    for index, name in enumerate(files):
        text = SOURCES.get(name)
        if text is None:
            try:
                text = Path(name).read_text(encoding="utf-8")
            except OSError:
                text = ""
        sources.append({"index": index, "name": _display(name), "lines": text.splitlines()})
    file_index = {name: i for i, name in enumerate(files)}

    def key(name: str) -> str:
        return name if depth is None else ".".join(name.split(".")[:depth])

    modules = {m.path: m for m in compiled.arch.modules()}
    layer_rows = data["layers"]
    first_node: dict[str, Node] = {}
    for node, row in zip(compiled.arch.nodes[1:], layer_rows, strict=True):
        first_node.setdefault(key(row["name"]), node)
    grouped = layer_rows if depth is None else fold(layer_rows, depth, {m.path: m.type for m in modules.values()})

    layers: dict[str, Any] = {}
    rows = []
    for row in grouped:
        name = row["name"]
        rf = row["receptive_field"]
        node = first_node[name]
        single = depth is None or (len(row["ops"]) == 1 and node.name == name)
        loc = node.loc if single or name not in modules else modules[name].loc
        if single:
            details = [("op", row["op"]), *((k, str(v)) for k, v in node.attrs.items())]
        else:
            details = [("type", row["op"]), ("layers", str(len(row["ops"])))]
        details += _row_details(row, (rf["size"], rf["jump"]))
        details.append(("spec", f"{_display(loc.file)}:{loc.line}:{loc.column}"))
        if row["training_only"]:
            details.append(("runs", "in training mode only"))
        layers[name] = {"details": details, "line_id": f"f{file_index.get(loc.file, 0)}l{loc.line}", "rows": [name], "svg_nodes": []}
        size = rf["size"]
        rows.append(
            {
                "name": name,
                "op": row["op"],
                "shape": row_shape(row),
                "params": _count(row["params"]),
                "macs": _count(row["macs"]),
                "rf": f"{size[0]}×{size[1]}",
            }
        )
    by_name = {row["name"]: row for row in grouped}

    # Each box shows the row it folds into; a run of blocks, the sum of its blocks' rows.
    entry_of_box: dict[str, str] = {}
    for box, (title, names) in boxes.items():
        keys = [k for k in dict.fromkeys(key(n) for n in names) if k in by_name]  # the input has no row
        if not keys:
            continue
        if len(keys) == 1:
            entry_of_box[box] = keys[0]
            continue
        members = [by_name[k] for k in keys]
        last = members[-1]
        rf = last["receptive_field"]
        total = {**last, "params": sum(r["params"] for r in members), "macs": sum(r["macs"] for r in members)}
        loc = first_node[keys[0]].loc if keys[0] not in modules else modules[keys[0]].loc
        details = [("blocks", f"{len(keys)} × {members[0]['op']}"), *_row_details(total, (rf["size"], rf["jump"]))]
        details.append(("spec", f"{_display(loc.file)}:{loc.line}:{loc.column}"))
        layers[title] = {"details": details, "line_id": f"f{file_index.get(loc.file, 0)}l{loc.line}", "rows": keys, "svg_nodes": []}
        entry_of_box[box] = title
    svg_nodes: dict[str, str] = {}
    for element_id, title in _SVG_NODE.findall(svg):
        entry = entry_of_box.get(html.unescape(title))
        if entry is not None:
            svg_nodes[element_id] = entry
            layers[entry]["svg_nodes"].append(element_id)
    # A row folded into a run selects the run's box.
    for entry in list(layers.values()):
        for row_name in entry["rows"]:
            if not layers[row_name]["svg_nodes"] and entry["svg_nodes"]:
                layers[row_name]["svg_nodes"] = entry["svg_nodes"]

    payload = json.dumps({"layers": layers, "svg_nodes": svg_nodes}, sort_keys=True)
    figures = [
        ("input", fmt_shape(tuple(data["input"]))),
        ("params", f"{data['params']:,}"),
        ("MACs", f"{data['macs']:,}"),
        ("receptive field", f"{'×'.join(str(s) for s in data['receptive_field']['size'])} at {data['receptive_field_at']}"),
        ("at the output", "×".join(str(s) for s in data["output_receptive_field"]["size"])),
    ]
    if depth is not None:
        figures.append(("folded to depth", str(depth)))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(
        title=f"{data['name']} ({compiled.path.as_posix()})",
        figures=figures,
        svg=svg,
        sources=sources,
        rows=rows,
        # `</` would end the script element early; JSON allows it escaped.
        data_json=payload.replace("</", "<\\/"),
    )


def report_command(
    spec: Path,
    output: Path,
    depth: int | str | None = None,
    allow_import_outside: bool = False,
    overrides: dict[str, Any] | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> Path:
    """`archc report`: compile `spec` (with `-D` `overrides` and `--input` `input_shape`), draw it folded to `depth` (a
    number of levels, `all` for every layer, None for the deepest that fits a page, as `archc diagram`) and write the
    HTML page to `output`, its table folded alike."""
    from archc.compiler import compile_spec
    from archc.emit import dot

    compiled = compile_spec(spec, overrides, input_shape=input_shape, allow_import_outside=allow_import_outside)
    folded = dot.resolve_depth(compiled.arch, depth)
    svg = dot.render_bytes(dot.render_dot(compiled, folded), "svg").decode("utf-8")
    write_atomic(output, render_report(compiled, svg, dot.boxes_of_dot_nodes(compiled.arch, folded), folded))
    return output
