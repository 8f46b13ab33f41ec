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
from archc.ops import fmt_shape
from archc.tools.summary import summary_data

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


def render_report(compiled: Compiled, svg: str, layer_of_dot_node: dict[str, str]) -> str:
    """The report page. `svg` is the diagram as Graphviz renders it; `layer_of_dot_node` maps each DOT node name
    to the name of the layer (IR node) it shows, so the page can link the two."""
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

    svg_nodes: dict[str, str] = {}
    for element_id, title in _SVG_NODE.findall(svg):
        layer = layer_of_dot_node.get(html.unescape(title))
        if layer is not None:
            svg_nodes[element_id] = layer
    nodes_of_layer: dict[str, list[str]] = {}
    for element_id, layer in svg_nodes.items():
        nodes_of_layer.setdefault(layer, []).append(element_id)

    layers: dict[str, Any] = {}
    rows = []
    for node, row in zip(compiled.arch.nodes[1:], data["layers"], strict=True):
        rf = row["receptive_field"]
        size, jump = rf["size"], rf["jump"]
        details = [
            ("op", row["op"]),
            *((k, str(v)) for k, v in node.attrs.items()),
            ("output", fmt_shape(tuple(row["shape"]))),
            ("params", f"{row['params']:,}"),
            ("MACs", f"{row['macs']:,}"),
            ("receptive field", f"{size[0]}×{size[1]}, jump {jump[0]}×{jump[1]}"),
            ("spec", f"{_display(node.loc.file)}:{node.loc.line}:{node.loc.column}"),
        ]
        if row["training_only"]:
            details.append(("runs", "in training mode only"))
        layers[row["name"]] = {
            "details": details,
            "line_id": f"f{file_index.get(node.loc.file, 0)}l{node.loc.line}",
            "svg_nodes": nodes_of_layer.get(row["name"], []),
        }
        rows.append(
            {
                "name": row["name"],
                "op": row["op"],
                "shape": fmt_shape(tuple(row["shape"])),
                "params": _count(row["params"]),
                "macs": _count(row["macs"]),
                "rf": f"{size[0]}×{size[1]}",
            }
        )
    payload = json.dumps({"layers": layers, "svg_nodes": svg_nodes}, sort_keys=True)
    figures = [
        ("input", fmt_shape(tuple(data["input"]))),
        ("params", f"{data['params']:,}"),
        ("MACs", f"{data['macs']:,}"),
        ("receptive field", f"{'×'.join(str(s) for s in data['receptive_field']['size'])} at {data['receptive_field_at']}"),
        ("at the output", "×".join(str(s) for s in data["output_receptive_field"]["size"])),
    ]
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


def report_command(spec: Path, output: Path, depth: int | None = None, allow_import_outside: bool = False) -> Path:
    """`archc report`: compile `spec`, draw it (folded to `depth` if given) and write the HTML page to `output`."""
    from archc.compiler import compile_spec
    from archc.emit import dot

    compiled = compile_spec(spec, allow_import_outside=allow_import_outside)
    svg = dot.render_bytes(dot.render_dot(compiled, depth), "svg").decode("utf-8")
    layer_of_dot_node = dot.layers_of_dot_nodes(compiled.arch, depth)
    write_atomic(output, render_report(compiled, svg, layer_of_dot_node))
    return output
