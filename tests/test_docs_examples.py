"""Every ```arch example in docs/*.md is a complete spec: it compiles, its generated module imports and runs, and the
module agrees with archc's own analysis (parameter count, output shape). Every block marked runnable runs.

Fences with another info string (`text`, `python`, ...) are fragments and are not run, unless the line above the
fence is `<!-- runnable -->`: those ```bash and ```python blocks of a page run in order, in one scratch directory
holding a copy of specs/, with the virtual environment's `archc` and `python` first on the PATH, and must exit 0.
A block under `<!-- file: PATH -->` is written to PATH in that directory (appended, after a blank line, if an earlier
block wrote it) before the blocks after it run: the tutorial's spec files, which are held equal to specs/.
An example may import block libraries from specs/ by their path relative to specs/ (`import "lib/resnet.arch"`): the
test copies them next to it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SPECS = ROOT / "specs"

_OPEN = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)\s*$")
_ARCH = re.compile(r"^\s*arch\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
_IMPORT = re.compile(r'^\s*import\s+"([^"]*)"', re.MULTILINE)


_MARK = re.compile(r"^<!--\s*(?P<mark>runnable|file:\s*(?P<path>\S+))\s*-->\s*$")


@dataclass(frozen=True)
class Example:
    doc: Path
    line: int  # 1-based line of the opening fence
    text: str
    info: str = "arch"
    mark: str | None = None  # "runnable", or "file: PATH"

    @property
    def id(self) -> str:
        return f"{self.doc.name}:{self.line}"

    @property
    def file(self) -> str | None:
        """The path a `<!-- file: PATH -->` block is written to."""
        return self.mark.partition(":")[2].strip() if self.mark and self.mark.startswith("file:") else None


def code_blocks(doc: Path) -> list[Example]:
    """The fenced blocks of a Markdown file, in order, with the marker comment on the line above each."""
    blocks: list[Example] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, start = m["fence"], i
        mark = _MARK.match(lines[start - 1]) if start > 0 else None
        body: list[str] = []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence) and set(lines[i].strip()) == {fence[0]}):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{doc.name}:{start + 1}: unclosed code fence")
        i += 1
        blocks.append(Example(doc, start + 1, "\n".join(body) + "\n", m["info"], mark["mark"] if mark else None))
    return blocks


def arch_examples(doc: Path) -> list[Example]:
    """The ```arch fenced blocks of a Markdown file that are complete specs (not parts of a file), in order."""
    return [b for b in code_blocks(doc) if b.info == "arch" and b.file is None]


def all_examples() -> list[Example]:
    return [e for doc in sorted(DOCS.glob("*.md")) for e in arch_examples(doc)]


EXAMPLES = all_examples()


def test_docs_have_examples() -> None:
    assert EXAMPLES, "no ```arch examples found under docs/"


def _stem(text: str) -> str:
    """The file stem to compile an example under: its arch's name, which names the generated constructor."""
    names = _ARCH.findall(text)
    assert len(names) == 1, f"an example holds exactly one `arch`, found {len(names)}"
    name = names[0]
    # A capitalised arch name is also its class name; a constructor of the same name would shadow the class.
    return name if name[:1].islower() else "model"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_doc_example(example: Example, compile_arch: Any, tmp_path: Path) -> None:
    for path in _IMPORT.findall(example.text):
        source = SPECS / path
        assert source.is_file(), f"{example.id}: examples import libraries from specs/ only, {path!r} is not there"
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, tmp_path / path)

    name = _stem(example.text)
    compiled, module = compile_arch(example.text, name)
    arch = compiled.arch
    assert arch.input_shape, f"{example.id}: no input shape"

    model = getattr(module, name)()
    model.eval()
    x = torch.randn(2, *arch.input_shape)
    with torch.no_grad():
        out = model(x)

    assert isinstance(out, torch.Tensor), f"{example.id}: eval mode returns the main output alone"
    assert sum(p.numel() for p in model.parameters()) == compiled.params.params
    assert tuple(out.shape) == (2, *arch.nodes[arch.outputs[0]].shape)

    if arch.aux_outputs:
        # Training mode adds the auxiliary outputs, main output first.
        model.train()
        with torch.no_grad():
            outs = model(x)
        assert isinstance(outs, tuple) and tuple(outs[0].shape) == tuple(out.shape)
        shapes = [tuple(t.shape[1:]) for t in outs[1:] if t is not None]
        assert shapes == [tuple(arch.nodes[i].shape) for i in arch.aux_outputs]


# Runnable blocks and the files they work on


def runnable_docs() -> list[Path]:
    return [doc for doc in sorted(DOCS.glob("*.md")) if any(b.mark == "runnable" for b in code_blocks(doc))]


def test_runnable_blocks_are_marked_in_the_tutorial_and_the_cli_reference() -> None:
    assert {"tutorial.md", "cli.md"} <= {doc.name for doc in runnable_docs()}
    for doc in runnable_docs():
        for block in code_blocks(doc):
            if block.mark == "runnable":
                assert block.info in ("bash", "python"), f"{block.id}: only bash and python blocks run"


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["OMP_NUM_THREADS"] = "2"
    env["STEPS"] = "2"  # the tutorial's training loop, shortened (the tutorial says so)
    env.pop("PYTHONPATH", None)
    return env


@pytest.mark.parametrize("doc", runnable_docs(), ids=lambda p: p.name)
def test_runnable_blocks_run(doc: Path, tmp_path: Path) -> None:
    shutil.copytree(SPECS, tmp_path / "specs")
    written: set[str] = set()
    for block in code_blocks(doc):
        if block.file is not None:
            target = tmp_path / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as f:
                f.write(("\n" if block.file in written else "") + block.text)
            written.add(block.file)
        elif block.mark == "runnable":
            command = ["bash", "-euo", "pipefail", "-c", block.text] if block.info == "bash" else [sys.executable, "-c", block.text]
            result = subprocess.run(command, cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, f"{block.id} exited {result.returncode}:\n{block.text}\n{result.stdout}\n{result.stderr}"


def test_the_tutorial_writes_the_zoo_spec_of_regnet_x_400mf(tmp_path: Path) -> None:
    files: dict[str, list[str]] = {}
    for block in code_blocks(DOCS / "tutorial.md"):
        if block.file is not None:
            files.setdefault(block.file, []).append(block.text)
    assert set(files) == {"nets/lib/regnet.arch", "nets/regnet_x_400mf.arch"}
    for path, parts in files.items():
        spec = SPECS / path.removeprefix("nets/")
        assert "\n".join(parts) == spec.read_text(encoding="utf-8"), f"docs/tutorial.md's {path} differs from {spec}"
