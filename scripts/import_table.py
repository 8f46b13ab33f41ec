"""Round-trip every model of docs/import.md's table and print the rows (and the time each took) as JSON lines;
with --markdown FILE.jsonl, print the table of such a file instead (pasted into docs/import.md).

    PYTHONPATH=$PWD .venv/bin/python scripts/import_table.py [SOURCE ...] > results.jsonl
    PYTHONPATH=$PWD .venv/bin/python scripts/import_table.py --markdown results.jsonl
"""

from __future__ import annotations

import json
import sys

from archc.tools.import_zoo import markdown, reason_text, run, sources

if sys.argv[1:2] == ["--markdown"]:
    with open(sys.argv[2], encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    print(markdown(rows), end="")
    print(f"\nThe run took {sum(r['seconds'] for r in rows) / 60:.0f} minutes.")
    sys.exit(0)
names = sys.argv[1:] or sources()
for verdict in run(names):
    row = {"source": verdict.source, "verdict": verdict.verdict, "reason": reason_text(verdict), "seconds": round(verdict.seconds, 1)}
    print(json.dumps(row), flush=True)
