"""`archc import` of torchvision's resnet50: the seconds from the model's name to its formatted, compiled spec
(building the model without weights, tracing each module with torch.fx, grouping the blocks, formatting and
compiling the spec). Issue 15 asks for under 10 s. Prints the median over `--repeat` runs in one process (the first
run also pays for importing torchvision's model code).

    .venv/bin/python bench/import.py                    # torchvision:resnet50, 5 runs
    .venv/bin/python bench/import.py --source timm:resnet50 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import time

from archc.tools.importer import import_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="torchvision:resnet50", help="the model to import (default torchvision:resnet50)")
    parser.add_argument("--repeat", type=int, default=5, help="runs (default 5)")
    args = parser.parse_args()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        text, _ = import_source(args.source)
        times.append(time.perf_counter() - start)
    lines = text.count("\n")
    print(f"{args.source}: import {statistics.median(times):.2f} s (median of {len(times)}, first {times[0]:.2f} s), {lines} lines of spec")


if __name__ == "__main__":
    main()
