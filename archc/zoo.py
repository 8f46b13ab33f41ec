"""`archc zoo`: every spec in a directory with its metadata and parameter count, as a table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archc.compiler import compile_spec


@dataclass(frozen=True)
class ZooEntry:
    """One spec of the zoo."""

    name: str
    spec: Path
    meta: dict[str, Any]
    input_shape: list[int]
    params: int


def zoo_entries(spec_dir: Path) -> list[ZooEntry]:
    """Compile every `*.arch` in `spec_dir` (not its lib/) and collect what the table shows, sorted by name."""
    entries = []
    for path in sorted(spec_dir.glob("*.arch")):
        compiled = compile_spec(path)
        entries.append(ZooEntry(path.stem, path, compiled.arch.meta, compiled.arch.input_shape, compiled.params.params))
    return entries


def markdown_table(entries: list[ZooEntry], spec_link: str = "../specs", generated_link: str = "../generated") -> str:
    """The zoo as a Markdown table, one row per spec, with links to the spec and its generated module."""
    lines = [
        "| spec | paper | year | reference | input | params | top-1 | generated |",
        "|---|---|---:|---|---|---:|---:|---|",
    ]
    for e in entries:
        top1 = e.meta.get("top1")
        lines.append(
            f"| [`{e.name}`]({spec_link}/{e.name}.arch) | {e.meta.get('paper', '')} | {e.meta.get('year', '')} "
            f"| {e.meta.get('reference', '')} | {'×'.join(str(d) for d in e.input_shape)} | {e.params:,} "
            f"| {'' if top1 is None else f'{top1:g}'} | [`{e.name}.py`]({generated_link}/{e.name}.py) |"
        )
    return "\n".join(lines) + "\n"
