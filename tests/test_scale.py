"""Compile time grows linearly with depth: the time per graph node at 8x the nodes stays within 3x.

A pass quadratic in the number of nodes would take 8x as long per node; the bound is loose so that a shared,
noisy machine does not fail it. The specs are bench/scale.py's synthetic ones (the full series is there).
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

import pytest

from archc.compiler import compile_spec
from archc.tools.summary import summary_data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from scale import chain_spec  # noqa: E402

LIB = (ROOT / "specs" / "lib" / "resnet.arch").read_text()


def resnet_spec(blocks: int) -> str:
    """A bottleneck ResNet with `blocks` blocks in its third stage (11 nodes each)."""
    return (
        'import "lib/resnet.arch"\n'
        f"arch deep(num_classes = 10) = ResNet([1, 1, {blocks}, 1], num_classes = num_classes, bottleneck = true) {{\n"
        "    input (3, 32, 32)\n}\n"
    )


def seconds_per_node(path: Path, repeat: int) -> float:
    """The best of `repeat` runs of compile + emit + summary, over the number of graph nodes. CPU time of this
    process, not wall time, so that other work on a shared machine does not count."""
    best = float("inf")
    nodes = 0
    for _ in range(repeat):
        gc.collect()
        start = time.process_time()
        compiled = compile_spec(path)
        compiled.python()
        summary_data(compiled)
        best = min(best, time.process_time() - start)
        nodes = len(compiled.arch.nodes)
    return best / nodes


@pytest.mark.parametrize(
    ("name", "small", "large"),
    [("chain", chain_spec(1000), chain_spec(8000)), ("resnet", resnet_spec(9), resnet_spec(93))],
)
def test_time_per_node_grows_at_most_loosely(name: str, small: str, large: str, tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "resnet.arch").write_text(LIB)
    (tmp_path / "small.arch").write_text(small)
    (tmp_path / "large.arch").write_text(large)
    seconds_per_node(tmp_path / "small.arch", 1)  # warm up
    n_small = len(compile_spec(tmp_path / "small.arch").arch.nodes)
    n_large = len(compile_spec(tmp_path / "large.arch").arch.nodes)
    assert 7 <= n_large / n_small <= 9
    small_t = seconds_per_node(tmp_path / "small.arch", 3)
    large_t = seconds_per_node(tmp_path / "large.arch", 2)
    assert large_t < 3 * small_t, f"{name}: {large_t * 1e6:.0f} µs/node at {n_large} nodes, {small_t * 1e6:.0f} at {n_small}"
