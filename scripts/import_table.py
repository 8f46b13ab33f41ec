"""Round-trip every model of docs/import.md's table and print the rows (and the time each took) as JSON lines.

    PYTHONPATH=$PWD .venv/bin/python scripts/import_table.py [SOURCE ...] > results.jsonl
"""

from __future__ import annotations

import json
import sys

from archc.tools.import_zoo import reason_text, run, sources

names = sys.argv[1:] or sources()
for verdict in run(names):
    row = {"source": verdict.source, "verdict": verdict.verdict, "reason": reason_text(verdict), "seconds": round(verdict.seconds, 1)}
    print(json.dumps(row), flush=True)
