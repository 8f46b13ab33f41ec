"""docs/zoo.md lists every spec with the figures archc computes today (a snapshot), and `archc zoo` prints that table."""

from __future__ import annotations

from scripts.zoo_doc import DOC, render


def test_snapshot_docs_zoo_table() -> None:
    """Snapshot: guards docs/zoo.md's table against unreviewed drift from archc's figures, not their correctness."""
    text = DOC.read_text()
    assert render(text) == text, "run `python scripts/zoo_doc.py` to refresh docs/zoo.md"


def test_archc_zoo_prints_the_same_table(capsys) -> None:  # type: ignore[no-untyped-def]
    from archc.cli import main
    from archc.tools.zoo import markdown_table, zoo_entries
    from tests.conftest import ROOT

    assert main(["zoo", str(ROOT / "specs"), "--markdown"]) == 0
    assert capsys.readouterr().out == markdown_table(zoo_entries(ROOT / "specs"))
    assert markdown_table(zoo_entries(ROOT / "specs")) in DOC.read_text()
