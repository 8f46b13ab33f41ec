"""Rewrite the table in docs/zoo.md from the specs (`archc zoo --markdown`); tests/test_zoo_doc.py holds them equal."""

from __future__ import annotations

import sys
from pathlib import Path

from archc.zoo import markdown_table, zoo_entries

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "zoo.md"
BEGIN, END = "<!-- zoo table: begin -->\n", "<!-- zoo table: end -->\n"


def render(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + BEGIN + markdown_table(zoo_entries(ROOT / "specs")) + END + tail


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text()))
    sys.exit(0)
