"""Messages that fit their case in a forward: indexing a tensor, a value computed and never used, and the words that
are keywords only where a statement begins."""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.compiler import compile_spec
from tests.conftest import run_cli

SPECS = Path(__file__).resolve().parent.parent / "specs"

NET = "arch Net() {{\n    input (4, 8, 8)\n    c = conv(2, 1)\n    forward(x) {{\n{body}\n    }}\n}}\n"


def test_indexing_a_tensor_says_it_is_a_tensor(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(NET.format(body="        return x[0]"))
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1
    assert f"{spec}:5:16: error[E038]: indexing a tensor keeps the batch whole" in outcome.err
    assert "module" not in outcome.err and "x[:, 0]" in outcome.err


def test_a_value_never_used_is_a_located_warning(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(NET.format(body="        y = c(x)\n        z = c(x)\n        return y"))
    outcome = run_cli("check", str(spec))
    assert outcome.code == 0
    assert f"warning: {spec}:6:9: `z` is computed in the forward of `Net` and never used" in outcome.err
    spec.write_text(NET.format(body="        y = c(x)\n        return y"))
    assert "warning" not in run_cli("check", str(spec)).err


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.arch")), ids=lambda p: p.stem)
def test_the_zoo_computes_nothing_it_does_not_use(spec: Path) -> None:
    assert compile_spec(spec).warnings == []


@pytest.mark.parametrize("word", ["block", "arch", "aux"])
def test_statement_keywords_name_members_as_the_docs_say(tmp_path: Path, word: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(f"arch Net() {{\n    input (4, 8, 8)\n    {word} = conv(2, 1)\n    forward(x) = {word}(x)\n}}\n")
    assert run_cli("check", str(spec)).code == 0
    docs = (Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text()
    keywords_row = next(line for line in docs.splitlines() if line.startswith("| Keywords |"))
    assert f"`{word}`" in keywords_row and "may name a member" in keywords_row
