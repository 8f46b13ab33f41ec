"""Compile time and memory against depth: synthetic ResNets of 18 to 1001 layers and a plain chain of 10,000.

The specs are written into a temporary directory (the ResNets import specs/lib/resnet.arch). For each, in this
process: the best of `--repeat` runs of compile (parse, check, elaborate, parameter counts), emit (the PyTorch
source) and summary (MACs, receptive fields, memory), then the peak Python memory of one more compile + emit
(tracemalloc). Prints time and memory per graph node and, for each series, the growth ratio: the per-node figure
at the largest spec over that at the smallest (1.0: linear; a quadratic pass grows with the size ratio).

    .venv/bin/python bench/scale.py [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from archc.compiler import compile_spec  # noqa: E402
from archc.tools.summary import summary_data  # noqa: E402

# layers -> (blocks per stage, bottleneck): torchvision's 18 ... 152, He et al.'s ResNet-200 (v2), and deeper
# ImageNet-style bottleneck ResNets (3 * blocks + 2 layers) for 500 and 1001, the third stage taking the extra blocks.
RESNETS = {
    18: ([2, 2, 2, 2], False),
    34: ([3, 4, 6, 3], False),
    50: ([3, 4, 6, 3], True),
    101: ([3, 4, 23, 3], True),
    152: ([3, 8, 36, 3], True),
    200: ([3, 24, 36, 3], True),
    500: ([3, 8, 152, 3], True),
    1001: ([3, 8, 319, 3], True),
}


def resnet_spec(layers: int) -> str:
    blocks, bottleneck = RESNETS[layers]
    return (
        'import "lib/resnet.arch"\n\n'
        f"arch resnet{layers}(num_classes = 1000) = ResNet({blocks}, num_classes = num_classes, "
        f"bottleneck = {'true' if bottleneck else 'false'}) {{\n    input (3, 224, 224)\n}}\n"
    )


def chain_spec(layers: int) -> str:
    """`layers` 3x3 convolutions in a row, no forward: a plain sequential network."""
    body = "    for i in range(n) {\n        conv(8, 3, padding = 1)\n    }\n"
    return f"arch chain{layers}(n = {layers}) {{\n    input (8, 16, 16)\n{body}}}\n"


def write_specs(directory: Path, resnets: list[int], chains: list[int]) -> dict[str, list[Path]]:
    (directory / "lib").mkdir(exist_ok=True)
    shutil.copy(ROOT / "specs" / "lib" / "resnet.arch", directory / "lib" / "resnet.arch")
    series: dict[str, list[Path]] = {"resnet": [], "chain": []}
    for n in resnets:
        path = directory / f"resnet{n}.arch"
        path.write_text(resnet_spec(n))
        series["resnet"].append(path)
    for n in chains:
        path = directory / f"chain{n}.arch"
        path.write_text(chain_spec(n))
        series["chain"].append(path)
    return series


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The shortest of `repeat` timed calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def measure(path: Path, repeat: int) -> dict[str, float]:
    """Graph nodes, seconds of compile, emit and summary, and peak traced bytes of compile + emit, for one spec."""
    t_compile, compiled = best(lambda: compile_spec(path, max_nodes=1_000_000), repeat)
    t_emit, _ = best(compiled.python, repeat)
    t_summary, _ = best(partial(summary_data, compiled), repeat)
    nodes = len(compiled.arch.nodes)
    compiled = None
    gc.collect()
    tracemalloc.start()
    compile_spec(path, max_nodes=1_000_000).python()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"nodes": nodes, "compile": t_compile, "emit": t_emit, "summary": t_summary, "peak": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per spec and stage; the best is kept (default 3)")
    parser.add_argument("--quick", action="store_true", help="ResNet 18 ... 200 and chains of 1,000 and 2,000 only")
    args = parser.parse_args()
    resnets = [n for n in RESNETS if not args.quick or n <= 200]
    chains = [1000, 2000] if args.quick else [1000, 10_000]
    with tempfile.TemporaryDirectory() as tmp:
        series = write_specs(Path(tmp), resnets, chains)
        print(f"{'spec':<12} {'nodes':>7} {'compile s':>10} {'emit s':>8} {'summary s':>10} {'µs/node':>8} {'peak MiB':>9} {'KiB/node':>9}")
        results: dict[str, list[dict[str, float]]] = {}
        measure(series["resnet"][0], 1)  # warm up: the grammar, the templates, first-call costs
        for name, paths in series.items():
            for path in paths:
                r = measure(path, args.repeat)
                total = r["compile"] + r["emit"] + r["summary"]
                r["per_node"] = total / r["nodes"]
                r["peak_per_node"] = r["peak"] / r["nodes"]
                results.setdefault(name, []).append(r)
                print(
                    f"{path.stem:<12} {r['nodes']:>7.0f} {r['compile']:>10.3f} {r['emit']:>8.3f} {r['summary']:>10.3f} "
                    f"{r['per_node'] * 1e6:>8.1f} {r['peak'] / 2**20:>9.1f} {r['peak_per_node'] / 1024:>9.2f}",
                    flush=True,
                )
    for name, rows in results.items():
        small, large = rows[0], rows[-1]
        print(
            f"# {name}: {large['nodes'] / small['nodes']:.0f}x the nodes; time per node x{large['per_node'] / small['per_node']:.2f}, "
            f"memory per node x{large['peak_per_node'] / small['peak_per_node']:.2f} (largest over smallest; 1.0 is linear)"
        )


if __name__ == "__main__":
    main()
