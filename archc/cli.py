"""The command line: `archc compile | check | summary | ir`.

Exit codes: 0 success, 1 a located error in a spec, 2 a usage error, 3 an internal error (a bug in archc).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

# pydantic looks for plugins in every installed distribution's entry points when it builds the IR's validators,
# a twentieth of a second in an environment holding torch; the command line has no use for them.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from archc import __version__  # noqa: E402
from archc.compiler import compile_spec, parse_overrides  # noqa: E402
from archc.errors import ArchError  # noqa: E402
from archc.files import write_atomic  # noqa: E402
from archc.passes.memory import DTYPE_BYTES  # noqa: E402


def _input_shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected CxHxW with positive integers, e.g. 3x224x224, got {text!r}")
    c, h, w = (int(p) for p in parts)
    return c, h, w


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archc", description="Compile CNN architecture specs (.arch) to PyTorch.")
    parser.add_argument("--version", action="version", version=f"archc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def spec_command(name: str, help_text: str, many: bool) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("specs", nargs="+" if many else None, type=Path, metavar="SPEC" if not many else "SPEC", help="a .arch file")
        p.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE", help="override a top-level parameter")
        p.add_argument("--max-nodes", type=int, default=200_000, help="refuse networks with more graph nodes (default 200000)")
        return p

    p = spec_command("compile", "write the PyTorch module of each spec", True)
    p.add_argument("-o", "--output", type=Path, default=Path("generated"), metavar="DIR", help="output directory (default generated/)")
    spec_command("check", "parse, elaborate and type-check specs without writing anything", True)
    p = spec_command("summary", "per-layer output shapes, parameters, MACs, receptive fields and memory", False)
    p.add_argument("--input", type=_input_shape, metavar="CxHxW", help="input size instead of the spec's")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--depth", type=_positive, metavar="N", help="fold rows to the first N levels of names (1: stages, 2: blocks)")
    p.add_argument("--batch", type=_positive, default=1, metavar="N", help="batch size for the memory figures (default 1)")
    p.add_argument("--dtype", choices=sorted(DTYPE_BYTES), default="fp32", help="element type for the memory figures (default fp32)")
    p = spec_command("ir", "print the elaborated IR as JSON", False)
    p.add_argument("--input", type=_input_shape, metavar="CxHxW", help="input size instead of the spec's")
    p = sub.add_parser("diagram", help="draw a spec with Graphviz", description="draw a spec with Graphviz (docs/diagrams.md)")
    p.add_argument("spec", type=Path, metavar="SPEC", help="a .arch file")
    p.add_argument("-f", "--format", choices=("dot", "svg", "png", "pdf"), default="svg", help="output format (default svg)")
    p.add_argument("--depth", type=_positive, metavar="N", help="fold modules below the first N levels of names")
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB", help="top to bottom (default) or left to right")
    p.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="output file (default SPEC-STEM.FORMAT; the .dot is written beside it)"
    )
    p.add_argument("--figures", action="store_true", help="show params and MACs in each box")
    p = sub.add_parser("report", help="write a self-contained HTML report", description="an HTML page: diagram, source, summary")
    p.add_argument("spec", type=Path, metavar="SPEC", help="a .arch file")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.html", help="the page to write")
    p.add_argument("--depth", type=_positive, metavar="N", help="fold the diagram below the first N levels of names")
    p = sub.add_parser(
        "zoo", help="list the specs of a directory with their metadata and parameters", description="list the specs of a directory"
    )
    p.add_argument("directory", nargs="?", type=Path, default=Path("specs"), help="a directory of .arch files (default specs/)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (the one in docs/zoo.md)")
    p.add_argument("--chart", type=Path, metavar="FILE.svg", help="also write MACs against top-1 accuracy as an SVG chart")
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "zoo":
        return _zoo(args.directory, args.markdown, args.chart)
    if args.command == "diagram":
        from archc.emit.dot import diagram_command

        written = diagram_command(args.spec, args.format, args.depth, args.rankdir, args.output, args.figures)
        print(f"{args.spec} -> {written}")
        return 0
    if args.command == "report":
        from archc.emit.report import report_command

        print(f"{args.spec} -> {report_command(args.spec, args.output, args.depth)}")
        return 0
    overrides = parse_overrides(args.defines)
    if args.command in ("compile", "check"):
        # Each spec on its own: a broken one is reported and the others are still checked and written.
        failed = False
        for spec in args.specs:
            try:
                compiled = compile_spec(spec, overrides, max_nodes=args.max_nodes)
                source = compiled.python()
            except ArchError as e:
                print(e.render(), file=sys.stderr)
                failed = True
                continue
            if args.command == "compile":
                target = args.output / f"{compiled.module_name}.py"
                write_atomic(target, source)
                print(f"{compiled.path} -> {target}")
            else:
                print(f"{compiled.path}: ok ({len(compiled.arch.nodes) - 1} layers, {compiled.params.params:,} params)")
        return 1 if failed else 0
    compiled = compile_spec(args.specs, overrides, input_shape=args.input, max_nodes=args.max_nodes)
    if args.command == "ir":
        print(compiled.arch.model_dump_json(indent=1))
    elif args.json:
        from archc.summary import summary_data

        print(json.dumps(summary_data(compiled, args.batch, args.dtype), indent=1))
    else:
        from archc.summary import print_summary

        print_summary(compiled, args.depth, args.batch, args.dtype)
    return 0


def _zoo(directory: Path, markdown: bool, chart: Path | None) -> int:
    from archc.zoo import markdown_table, zoo_chart_svg, zoo_entries

    if not directory.is_dir():
        raise ArchError("E091", f"{directory} is not a directory", None, "give the directory holding the .arch specs")
    entries = zoo_entries(directory)
    if chart is not None:
        write_atomic(chart, zoo_chart_svg(entries))
    if markdown:
        print(markdown_table(entries), end="")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(entries)} specs in {directory}", title_justify="left")
    for column, justify in (
        ("spec", "left"),
        ("paper", "left"),
        ("year", "right"),
        ("reference", "left"),
        ("input", "left"),
        ("params", "right"),
        ("GMACs", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for e in entries:
        table.add_row(
            e.name,
            str(e.meta.get("paper", "")),
            str(e.meta.get("year", "")),
            str(e.meta.get("reference", "")),
            "×".join(map(str, e.input_shape)),
            f"{e.params:,}",
            f"{e.macs / 1e9:.2f}",
        )
    Console().print(table)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `archc` console script."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ArchError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except RecursionError:
        print(ArchError("E060", "the spec nests too deeply to process", None, "nest fewer brackets or blocks").render(), file=sys.stderr)
        return 1
    except Exception as e:  # an archc bug: one line, the traceback on request
        if args.debug:
            traceback.print_exc()
        else:
            first = (str(e).splitlines() or [""])[0]
            print(f"internal error: {type(e).__name__}: {first} (run with --debug for the traceback)", file=sys.stderr)
        return 3
