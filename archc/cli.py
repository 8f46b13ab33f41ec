"""The command line: `archc compile | check | summary | ir | diagram | report | zoo | fmt | completion | train | verify | export | import`.

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
from typing import Any

# pydantic (imported only by `archc ir`, for the IR's JSON) looks for plugins in every installed distribution's
# entry points when it builds a validator, a twentieth of a second in an environment holding torch; the command
# line has no use for them.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from archc import __version__  # noqa: E402
from archc.compiler import compile_spec, parse_overrides  # noqa: E402
from archc.errors import ArchError  # noqa: E402
from archc.files import write_atomic  # noqa: E402
from archc.passes.memory import DTYPE_BYTES  # noqa: E402
from archc.tools.source import is_source  # noqa: E402


def _input_shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 3 or not all(p.strip().isascii() and p.strip().isdigit() and 0 < int(p) <= 2**31 - 1 for p in parts):
        raise argparse.ArgumentTypeError(f"expected CxHxW with positive integers up to 2**31 - 1, e.g. 3x224x224, got {text!r}")
    c, h, w = (int(p) for p in parts)
    return c, h, w


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _fold_depth(text: str) -> int | str:
    """`--depth` of diagram and report: a positive number of levels, or `all`."""
    if text == "all":
        return text
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer or all, got {text!r}")
    return int(text)


FOLD_HELP = (
    "fold modules below the first N levels of names (1: stages, 2: blocks); all: draw every layer; "
    "default: the deepest N whose picture fits a page (at most 24 boxes from input to output, 60 in all)"
)


def _allow_import_outside(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-import-outside",
        action="store_true",
        help="let imports name absolute paths and files outside the spec's folder (refused by default: E051)",
    )


def _spec_options(p: argparse.ArgumentParser) -> None:
    """`-D`, `--input` and `--allow-import-outside`, for the commands that take one spec beyond `spec_command`'s."""
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE", help="override a top-level parameter")
    p.add_argument("--input", type=_input_shape, metavar="CxHxW", help="input size instead of the spec's")
    _allow_import_outside(p)


SPEC_OR_SOURCE = "a .arch file, or a model to import in memory: torchvision:NAME, timm:NAME, FILE.py:CALLABLE"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archc", description="Compile CNN architecture specs (.arch) to PyTorch.")
    parser.add_argument("--version", action="version", version=f"archc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def spec_command(name: str, help_text: str, many: bool) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        where = ", or a folder: every .arch file under it" if name == "check" else ""
        p.add_argument(
            "specs", nargs="+" if many else None, type=Path, metavar="SPEC", help=f"a .arch file{where}" if many else SPEC_OR_SOURCE
        )
        p.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE", help="override a top-level parameter")
        p.add_argument("--max-nodes", type=_positive, default=200_000, help="refuse networks with more graph nodes (default 200000)")
        _allow_import_outside(p)
        return p

    p = spec_command("compile", "write the PyTorch module of each spec", True)
    p.add_argument("-o", "--output", type=Path, default=Path("generated"), metavar="DIR", help="output directory (default generated/)")
    p.add_argument(
        "--inference",
        action="store_true",
        help="write the inference build instead, DIR/SPEC_inference.py: BatchNorm folded into convolutions, no dropout or auxiliary heads",
    )
    spec_command("check", "parse, elaborate and type-check specs without writing anything", True)
    p = spec_command("summary", "per-layer output shapes, parameters, MACs, receptive fields and memory", False)
    p.add_argument("--input", type=_input_shape, metavar="CxHxW", help="input size instead of the spec's")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--depth", type=_positive, metavar="N", help="fold rows to the first N levels of names (1: stages, 2: blocks)")
    p.add_argument("--batch", type=_positive, default=1, metavar="N", help="batch size for the memory figures (default 1)")
    p.add_argument("--dtype", choices=sorted(DTYPE_BYTES), default="fp32", help="element type for the memory figures (default fp32)")
    p = spec_command("ir", "print the elaborated IR as JSON", False)
    p.add_argument("--input", type=_input_shape, metavar="CxHxW", help="input size instead of the spec's")
    p = sub.add_parser(
        "import",
        help="write the spec of a torchvision, timm or Python model (torchvision:NAME, timm:NAME, FILE.py:CALLABLE)",
        description="trace a model with torch.fx and write its spec (docs/import.md)",
    )
    p.add_argument(
        "source", metavar="SOURCE", help="torchvision:NAME, timm:NAME or FILE.py:CALLABLE (a function or class returning an nn.Module)"
    )
    p.add_argument("-o", "--output", type=Path, metavar="FILE.arch", help="the spec to write (default: standard output)")
    p.add_argument("--input", type=_input_shape, metavar="CxHxW", help="input size (default: the library's, else 3x224x224)")
    p = sub.add_parser("diagram", help="draw a spec with Graphviz", description="draw a spec with Graphviz (docs/diagrams.md)")
    p.add_argument("spec", type=Path, metavar="SPEC", help=SPEC_OR_SOURCE)
    p.add_argument("-f", "--format", choices=("dot", "svg", "png", "pdf"), help="output format (default: the output's extension, else svg)")
    p.add_argument("--depth", type=_fold_depth, metavar="N|all", help=FOLD_HELP)
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB", help="top to bottom (default) or left to right")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="output file, its extension naming the format (default SPEC-STEM.FORMAT, the .dot beside it); - for standard output",
    )
    p.add_argument("--dpi", type=_positive, metavar="N", help="pixels per inch of a png (Graphviz's default 96)")
    p.add_argument("--figures", action="store_true", help="show params and MACs in each box")
    _spec_options(p)
    p = sub.add_parser("report", help="write a self-contained HTML report", description="an HTML page: diagram, source, summary")
    p.add_argument("spec", type=Path, metavar="SPEC", help=SPEC_OR_SOURCE)
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.html", help="the page to write")
    p.add_argument("--depth", type=_fold_depth, metavar="N|all", help=FOLD_HELP + "; the table follows it")
    _spec_options(p)
    p = sub.add_parser(
        "zoo", help="list the specs of a directory with their metadata and parameters", description="list the specs of a directory"
    )
    p.add_argument("directory", nargs="?", type=Path, default=Path("specs"), help="a directory of .arch files (default specs/)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (the one in docs/zoo.md)")
    p.add_argument("--chart", type=Path, metavar="FILE.svg", help="also write MACs against top-1 accuracy as an SVG chart")
    _add_tool_commands(sub)
    _train_parser(sub)
    _add_torch_commands(sub)
    return parser


# --- Tool commands: fmt, completion (issue 9, items 1 and 4) ---------------------------------------------------


def _add_tool_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "fmt", help="rewrite specs in the canonical layout", description="rewrite specs in the canonical layout (docs/language.md)"
    )
    p.add_argument("specs", nargs="+", type=Path, metavar="SPEC", help="a .arch file, or a folder: every .arch file under it")
    p.add_argument("--check", action="store_true", help="write nothing; list the files that would change and exit 1 if any would")
    p = sub.add_parser("completion", help="print a shell completion script", description="print a completion script for bash or zsh")
    p.add_argument("shell", choices=("bash", "zsh"), help="the shell")


def _run_tool_command(args: argparse.Namespace) -> int | None:
    """Run `fmt` or `completion`; None for any other command."""
    if args.command == "fmt":
        return _fmt(spec_files(args.specs), args.check)
    if args.command == "completion":
        import shtab

        parser = _parser()
        _complete_paths(parser, shtab.FILE, shtab.DIRECTORY)
        print(shtab.complete(parser, shell=args.shell), end="")
        return 0
    return None


def _complete_paths(parser: argparse.ArgumentParser, file: object, directory: object) -> None:
    """Mark every path argument of every command for shtab: files, or directories where a directory is meant."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _complete_paths(sub, file, directory)
        elif action.type is Path:
            action.complete = directory if action.metavar == "DIR" or action.dest == "directory" else file  # type: ignore[attr-defined]


def spec_files(paths: list[Path]) -> list[Path]:
    """`check`'s and `fmt`'s arguments with each folder replaced by the `.arch` files under it, at any depth, sorted by
    path (hidden folders and files, whose names start with `.`, skipped). A folder holding none is an error (E091)."""
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(
            f for f in path.rglob("*.arch") if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts)
        )
        if not found:
            raise ArchError("E091", f"{path} holds no .arch files", None, "give .arch files, or a folder with .arch files under it")
        files.extend(found)
    return list(dict.fromkeys(files))


def _check_library(spec: Path, allow_import_outside: bool) -> bool:
    """For `check` of a folder: a file there without an `arch` is a block library, which cannot be elaborated alone;
    it is parsed with its imports and statically checked (names, calls), and True returned. False for a spec."""
    from archc.errors import raise_all
    from archc.sema.check import check_program
    from archc.sema.program import load_program

    program = load_program(spec, None, allow_import_outside)
    if any(d.kind == "arch" for d in program.main.definitions):
        return False
    try:
        raise_all(check_program(program))
    except ArchError as e:
        raise program.annotate(e) from None
    blocks = sum(d.kind == "block" for d in program.main.definitions)
    print(f"{spec}: ok (a library of {blocks} block{'s' if blocks != 1 else ''}, checked without elaboration)")
    return True


def _fmt(specs: list[Path], check: bool) -> int:
    from archc.lang.fmt import format_file

    failed = False
    changed = 0
    for spec in specs:
        try:
            text, formatted = format_file(spec)
        except ArchError as e:  # the file stays as it is
            print(e.render(), file=sys.stderr)
            failed = True
            continue
        if formatted == text:
            continue
        changed += 1
        if check:
            print(f"{spec}: would reformat")
        else:
            write_atomic(spec, formatted)
            print(f"{spec}: reformatted")
    verb = "would be reformatted" if check else "reformatted"
    print(f"{changed} of {len(specs)} file{'s' if len(specs) != 1 else ''} {verb}", file=sys.stderr)
    return 1 if failed or (check and changed) else 0


# --- end of tool commands ----------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    tool = _run_tool_command(args)
    if tool is not None:
        return tool
    if args.command == "train":
        return _train(args)
    if args.command in TORCH_COMMANDS:
        return _run_torch_command(args)
    if args.command == "zoo":
        return _zoo(args.directory, args.markdown, args.chart)
    if args.command == "import":
        return _import(args.source, args.output, args.input)
    if args.command in ("diagram", "report") and is_source(str(args.spec)):
        return _on_source(args)
    if args.command == "diagram":
        from archc.emit.dot import diagram_command

        def warn(message: str) -> None:
            print(f"warning: {message}", file=sys.stderr)

        written = diagram_command(
            args.spec,
            args.format,
            args.depth,
            args.rankdir,
            args.output,
            args.figures,
            args.allow_import_outside,
            args.dpi,
            warn,
            overrides=parse_overrides(args.defines),
            input_shape=args.input,
        )
        if str(written) != "-":  # standard output holds the picture
            print(f"{getattr(args, 'source', args.spec)} -> {written}")
        return 0
    if args.command == "report":
        from archc.emit.report import report_command

        page = report_command(
            args.spec, args.output, args.depth, args.allow_import_outside, overrides=parse_overrides(args.defines), input_shape=args.input
        )
        print(f"{getattr(args, 'source', args.spec)} -> {page}")
        return 0
    overrides = parse_overrides(args.defines)
    if args.command in ("compile", "check"):
        inference = args.command == "compile" and args.inference
        specs = _unique_outputs(args.specs, args.output, inference) if args.command == "compile" else spec_files(args.specs)
        in_folders = set(specs) - set(args.specs)
        # Each spec on its own: a broken one is reported and the others are still checked and written.
        failed = False
        for spec in specs:
            try:
                if spec in in_folders and _check_library(spec, args.allow_import_outside):
                    continue
                compiled = compile_spec(spec, overrides, max_nodes=args.max_nodes, allow_import_outside=args.allow_import_outside)
                source = compiled.inference_python() if inference else compiled.python()
                if args.command == "compile":
                    target = _output_for(spec, args.output, inference)
                    _check_output(spec, target)
            except ArchError as e:
                print(e.render(), file=sys.stderr)
                failed = True
                continue
            for warning in compiled.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            if args.command == "compile":
                write_atomic(target, source)
                print(f"{compiled.path} -> {target}")
            else:
                print(f"{compiled.path}: ok ({len(compiled.arch.nodes) - 1} layers, {compiled.params.params:,} params)")
        return 1 if failed else 0
    if is_source(str(args.specs)):  # a model to import: in memory, torch imported for it only
        from archc.tools.importer import import_source, load_source

        try:
            text, imported = import_source(str(args.specs), args.input)
        except ArchError as e:
            if args.command != "summary" or e.code not in ("E120", "E121"):
                raise
            # Not writable as a spec: the summary of its PyTorch modules, as torchinfo gives it, and why.
            from archc.tools.module_summary import module_summary_data, print_module_summary

            model = load_source(str(args.specs), args.input)
            if args.json:
                print(json.dumps(module_summary_data(model, e), indent=1))
            else:
                print_module_summary(model, e)
            return 0
        compiled = compile_spec(Path(f"{imported.name}.arch"), overrides, input_shape=args.input, text=text, max_nodes=args.max_nodes)
    else:
        compiled = compile_spec(
            args.specs, overrides, input_shape=args.input, max_nodes=args.max_nodes, allow_import_outside=args.allow_import_outside
        )
    if args.command == "ir":
        print(compiled.arch.to_json(indent=1))
    elif args.json:
        from archc.tools.summary import summary_data

        print(json.dumps(summary_data(compiled, args.batch, args.dtype), indent=1))
    else:
        from archc.tools.summary import print_summary

        print_summary(compiled, args.depth, args.batch, args.dtype)
    return 0


# --- archc import, and a SOURCE where a spec goes (issue 15, items 2 and 4) -------------------------------------------


def _import(source: str, output: Path | None, input_shape: tuple[int, int, int] | None) -> int:
    from archc.tools.importer import import_source

    if not is_source(source):
        raise ArchError("E094", f"`{source}` names no model", None, "give torchvision:NAME, timm:NAME or FILE.py:CALLABLE")
    text, _ = import_source(source, input_shape)
    if output is None:
        print(text, end="")
    else:
        write_atomic(output, text)
        print(f"{source} -> {output}")
    return 0


def _on_source(args: argparse.Namespace) -> int:
    """`diagram`/`report` of a model to import: its spec in a temporary folder, drawn as a spec file is."""
    import tempfile

    from archc.tools.importer import import_source

    text, source = import_source(str(args.spec))
    with tempfile.TemporaryDirectory(prefix="archc-import-") as folder:
        spec = Path(folder) / f"{source.name}.arch"
        spec.write_text(text, encoding="utf-8")
        args.source, args.spec = args.spec, spec
        if args.command == "diagram" and args.output is None:
            args.output = Path(f"{source.name}.{args.format or 'svg'}")
        return _run(args)


# --- compile's outputs: archc replaces only what it wrote (issue 16, item 2) --------------------------------------


def _output_for(spec: Path, directory: Path, inference: bool) -> Path:
    """The module `archc compile` writes for `spec` (named as `Compiled.module_name` and `inference_name` are)."""
    return directory / f"{spec.stem}_inference.py" if inference else directory / f"{spec.stem}.py"


def _unique_outputs(specs: list[Path], directory: Path, inference: bool) -> list[Path]:
    """`specs` without repeats of one file; two different specs that would write one module are an error before
    anything is written (the second would silently replace the first)."""
    by_target: dict[Path, Path] = {}
    unique = []
    for spec in specs:
        target = _output_for(spec, directory, inference)
        first = by_target.get(target)
        if first is not None:
            if first.resolve() == spec.resolve():
                continue
            raise ArchError(
                "E097",
                f"{first} and {spec} would both be written to {target}",
                None,
                "compile them into different folders (-o), or rename one of the specs",
            )
        by_target[target] = spec
        unique.append(spec)
    return unique


def _check_output(spec: Path, target: Path) -> None:
    """Refuse a module name the output package defines itself, and a file there that archc did not write."""
    from archc.errors import Loc
    from archc.files import package_names, written_by_archc

    if target.stem in package_names(target.parent):
        raise ArchError(
            "E071",
            f"the file name `{spec.stem}` is a name {target.parent / '__init__.py'} defines; the module would shadow it",
            Loc(str(spec), 1, 1),
            "rename the spec file, or compile it into another folder (-o)",
        )
    if (target.exists() or target.is_symlink()) and not written_by_archc(target):
        raise ArchError(
            "E096",
            f"{target} exists and archc did not write it (it has no `@generated by archc` first line)",
            None,
            f"archc replaces only its own modules: move {target} away, or compile into another folder (-o)",
        )


# --- verify, export: the commands that run the generated module (issue 9, items 2 and 3) -------------------------
# They import torch inside `_run_torch_command` only; the compile path never does.

TORCH_COMMANDS = ("verify", "export")


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, e.g. 1e-5, got {text!r}")
    return value


def _reference(text: str) -> tuple[str, str]:
    library, sep, name = text.partition(":")
    if not sep or library not in ("torchvision", "timm") or not name:
        raise argparse.ArgumentTypeError(f"expected torchvision:NAME or timm:NAME, e.g. torchvision:resnet18, got {text!r}")
    return library, name


def _add_torch_commands(sub: Any) -> None:
    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("spec", type=Path, metavar="SPEC", help="a .arch file")
        p.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE", help="override a top-level parameter")
        _allow_import_outside(p)
        return p

    p = command(
        "verify",
        "compare a spec with a torchvision or timm model: counts, state_dict keys and shapes, every module's type and"
        " settings, every module's output (eval and training mode) and one SGD step",
    )
    p.add_argument(
        "--against",
        type=_reference,
        required=True,
        metavar="torchvision:NAME|timm:NAME",
        help="the reference model, built without weights",
    )
    p.add_argument(
        "--rtol",
        type=_tolerance,
        metavar="R",
        help="a tensor differs when its largest absolute difference exceeds R times the reference's largest magnitude (default 1e-5)",
    )
    p.add_argument(
        "--seeds", type=_positive, default=3, metavar="N", help="BatchNorm randomisations (and batches) in eval mode (default 3)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--input", type=_input_shape, metavar="CxHxW", help="input size to compare at instead of the spec's")
    p = command("export", "write the spec's model as an ONNX file (eval mode, batch dimension dynamic)")
    p.add_argument("--onnx", type=Path, required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument("--input", type=_input_shape, metavar="CxHxW", help="input size to build and trace at instead of the spec's")
    p.add_argument("--weights", type=Path, metavar="FILE.pt", help="a state_dict saved with torch.save to export instead of random weights")


def _run_torch_command(args: argparse.Namespace) -> int:
    # --input (verify's and export's) elaborates the spec at that size, so a size the spec cannot take is a located
    # error.
    compiled = compile_spec(
        args.spec, parse_overrides(args.defines), input_shape=getattr(args, "input", None), allow_import_outside=args.allow_import_outside
    )
    if args.command == "verify":
        from archc.tools.runtime import RTOL
        from archc.tools.verify import verify

        library, name = args.against
        report = verify(compiled, library, name, rtol=RTOL if args.rtol is None else args.rtol, seeds=args.seeds)
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False, allow_nan=False) if args.json else report.render())
        return 0 if report.equal else 1
    from archc.tools.export import export_onnx

    export_onnx(compiled, args.onnx, args.weights)
    print(f"{compiled.path} -> {args.onnx}")
    return 0


# --- end of verify, export ---------------------------------------------------------------------------------------


def _zoo(directory: Path, markdown: bool, chart: Path | None) -> int:
    from archc.tools.zoo import markdown_table, zoo_chart_svg, zoo_entries

    if not directory.is_dir():
        raise ArchError("E091", f"{directory} is not a directory", None, "give the directory holding the .arch specs")
    entries = zoo_entries(directory)
    if chart is not None:
        write_atomic(chart, zoo_chart_svg(entries))
    if markdown:
        print(markdown_table(entries), end="")
        return 0
    import shutil

    from rich.console import Console
    from rich.table import Table

    # On a terminal, every column at the terminal's width; on a pipe (or a terminal under 100 columns), one line per
    # spec within 80 columns (or $COLUMNS, if a positive number): no paper, and the reference cut to the room left.
    env_columns = os.environ.get("COLUMNS", "")
    given = env_columns.isdigit() and int(env_columns) > 0
    console = Console(width=shutil.get_terminal_size().columns if sys.stdout.isatty() or given else 80)
    wide = console.width >= 100
    columns = [("spec", "left"), ("paper", "left"), ("year", "right"), ("reference", "left"), ("input", "left")]
    columns += [("params", "right"), ("GMACs", "right")]
    rows = [
        {
            "spec": e.name,
            "paper": str(e.meta.get("paper", "")),
            "year": str(e.meta.get("year", "")),
            "reference": str(e.meta.get("reference", "")),
            "input": "×".join(map(str, e.input_shape)),
            "params": f"{e.params:,}",
            "GMACs": f"{e.macs / 1e9:.2f}",
        }
        for e in entries
    ]
    title = f"{len(entries)} specs in {directory}"
    if wide:
        table = Table(title=title, title_justify="left")
        for column, justify in columns:
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
    else:
        columns = [c for c in columns if c[0] != "paper"]
        table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
        widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c, _ in columns}
        # Each column but the last is followed by a padding of 2 (no box, no vertical lines).
        room = console.width - 2 * (len(columns) - 1) - sum(w for c, w in widths.items() if c != "reference")
        widths["reference"] = max(len("reference"), min(widths["reference"], room))
        for column, justify in columns:
            table.add_column(column, justify=justify, no_wrap=True, width=widths[column], overflow="ellipsis")  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(row[c] for c, _ in columns))
    console.print(table)
    return 0


# ---- archc train (issue 8): the command's arguments and its run; the training itself is archc/tools/train.py ----


TRAIN_DATA = ("digits", "fashion-mnist", "cifar10", "fake")
FAKE_SIZE = 512  # training images of `--data fake` (and a quarter as many for validation)


def _data_name(text: str) -> str:
    if text in TRAIN_DATA or (text.startswith("imagefolder:") and len(text) > len("imagefolder:")):
        return text
    size = text.partition(":")[2]
    if text.startswith("fake:") and size.isascii() and size.isdigit() and int(size) > 0:
        return text
    raise argparse.ArgumentTypeError(f"unknown data {text!r}: use digits, fashion-mnist, cifar10, imagefolder:PATH, fake or fake:N")


def _non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _train_parser(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a spec on a dataset (also under torchrun, with DistributedDataParallel)",
        description="train a spec on a dataset; under `torchrun --nproc_per_node=K -m archc train ...` on K processes (docs/api.md)",
    )
    p.add_argument("spec", type=Path, metavar="SPEC", help="a .arch file")
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME=VALUE", help="override a top-level parameter")
    p.add_argument(
        "--data",
        type=_data_name,
        default="digits",
        metavar="NAME",
        help=f"digits (default), fashion-mnist, cifar10, imagefolder:PATH, or fake:N (N random images, N/4 to validate; fake: {FAKE_SIZE})",
    )
    p.add_argument("--input", type=_input_shape, metavar="CxHxW", help="input size instead of the spec's (the data is fitted to it)")
    p.add_argument("--data-dir", type=Path, default=Path("data"), metavar="DIR", help="where fashion-mnist and cifar10 are (default data/)")
    p.add_argument("--download", action="store_true", help="download fashion-mnist or cifar10 into --data-dir if missing")
    p.add_argument("--epochs", type=_positive, default=10, metavar="N", help="total epochs, counting resumed ones (default 10)")
    p.add_argument(
        "--max-steps",
        type=_positive,
        metavar="N",
        help="stop after N training steps in all, counting resumed ones; the epoch it stops in is validated and recorded",
    )
    p.add_argument("--batch-size", type=_positive, default=64, metavar="B", help="images per step on each process (default 64)")
    p.add_argument(
        "--lr", type=_positive_float, default=0.05, metavar="LR", help="peak learning rate of SGD, decayed by a cosine (default 0.05)"
    )
    p.add_argument("--momentum", type=_fraction, default=0.9, metavar="M", help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=_fraction, default=5e-4, metavar="WD", help="SGD weight decay (default 5e-4)")
    p.add_argument("--label-smoothing", type=_fraction, default=0.0, metavar="S", help="label smoothing of the cross-entropy (default 0)")
    p.add_argument(
        "--aux-weight", type=_fraction, metavar="W", help="weight of auxiliary outputs' losses (default 0.4 for one, 0.3 each for more)"
    )
    p.add_argument("--device", metavar="D", help="cpu, cuda, cuda:N or mps (default: cuda if available, else cpu)")
    p.add_argument("--amp", action="store_true", help="mixed precision: float16 with gradient scaling on CUDA, bfloat16 on CPU")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format for the model and the batches")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--checkpoint", type=Path, metavar="DIR", help="write DIR/last.pt after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from DIR/last.pt of --checkpoint")
    p.add_argument("--metrics", type=Path, metavar="FILE", help="write one JSON line of metrics per epoch")
    p.add_argument("--curves", type=Path, metavar="FILE.png", help="learning-curve PNG (default: the metrics file's name with .png)")
    p.add_argument(
        "--seed", type=_non_negative, default=0, metavar="N", help="seed of the split, the shuffles and the initial weights (default 0)"
    )
    p.add_argument("--workers", type=_non_negative, default=0, metavar="N", help="data-loading worker processes per process (default 0)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar (the per-epoch lines stay)")


def _train(args: argparse.Namespace) -> int:
    if args.resume and args.checkpoint is not None:  # a finished run is answered before torch is imported
        from archc.tools.run_state import finished_message, read_state

        run = read_state(args.checkpoint)
        message = finished_message(args.checkpoint, run, args.epochs, args.max_steps) if run is not None else None
        if message is not None:
            print(message)
            return 0
    from archc.tools.train import TrainConfig, train  # imports torch

    fake = args.data.startswith("fake")
    config = TrainConfig(
        spec=args.spec,
        data="fake" if fake else args.data,
        fake_size=int(args.data.partition(":")[2] or FAKE_SIZE) if fake else FAKE_SIZE,
        max_steps=args.max_steps,
        input_shape=args.input,
        data_dir=args.data_dir,
        download=args.download,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        aux_weight=args.aux_weight,
        device=args.device,
        amp=args.amp,
        channels_last=args.channels_last,
        compile=args.compile,
        checkpoint=args.checkpoint,
        resume=args.resume,
        metrics=args.metrics,
        curves=args.curves,
        seed=args.seed,
        workers=args.workers,
        defines=parse_overrides(args.defines),
        progress=args.progress,
    )
    try:
        train(config)
    except KeyboardInterrupt:
        where = f": `--resume --checkpoint {args.checkpoint}` continues from the last finished epoch" if args.checkpoint else ""
        print(f"interrupted{where}", file=sys.stderr)
        return 130
    return 0


# ---- end of archc train ----


# Errors of the command line's arguments rather than of a spec: exit 2, like argparse's.
USAGE_CODES = {"E092", "E098"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `archc` console script."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ArchError as e:
        print(e.render(), file=sys.stderr)
        return 2 if e.code in USAGE_CODES else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
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
