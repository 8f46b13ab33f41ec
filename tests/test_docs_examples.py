"""Every ```arch example in docs/*.md is a complete spec: it compiles, its generated module imports and runs, and the
module agrees with archc's own analysis (parameter count, output shape).

Fences with another info string (`text`, `python`, ...) are fragments and are not run. An example may import block
libraries from specs/ by their path relative to specs/ (`import "lib/resnet.arch"`): the test copies them next to it.
"""

from __future__ import annotations

import re
import shutil
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


@dataclass(frozen=True)
class Example:
    doc: Path
    line: int  # 1-based line of the opening fence
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc.name}:{self.line}"


def arch_examples(doc: Path) -> list[Example]:
    """The ```arch fenced blocks of a Markdown file, in order."""
    examples: list[Example] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, start = m["fence"], i
        body: list[str] = []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence) and set(lines[i].strip()) == {fence[0]}):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{doc.name}:{start + 1}: unclosed code fence")
        i += 1
        if m["info"] == "arch":
            examples.append(Example(doc, start + 1, "\n".join(body) + "\n"))
    return examples


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
