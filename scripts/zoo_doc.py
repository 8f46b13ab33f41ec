"""Rewrite the table in docs/zoo.md (`archc zoo --markdown`) and the chart docs/zoo.svg (`archc zoo --chart`) from
the specs; tests/test_zoo_doc.py and tests/test_zoo_chart.py hold them equal."""

from __future__ import annotations

import sys
from pathlib import Path

from archc.tools.zoo import markdown_table, write_zoo_chart, zoo_entries

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "zoo.md"
CHART = ROOT / "docs" / "zoo.svg"
BEGIN, END = "<!-- zoo table: begin -->\n", "<!-- zoo table: end -->\n"


def render(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + BEGIN + markdown_table(zoo_entries(ROOT / "specs")) + END + tail


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text()))
    write_zoo_chart(ROOT / "specs", CHART)
    sys.exit(0)
