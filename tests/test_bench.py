"""bench/'s timing helpers: the per-round ratio, the clocks, and one tiny run of bench/parity.py end to end.

The figures themselves are the benchmarks' (docs/performance.md); here only that the machinery measures what it says.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from models import alternate, clock, paired_ratio  # noqa: E402


def test_paired_ratio_cancels_drift_between_rounds() -> None:
    # The machine slows down 5x for half the rounds; within each round ours takes 1.1x theirs.
    theirs = [1.0, 5.0, 1.0, 5.0, 5.0, 1.0, 1.0, 5.0]
    ours = [1.1 * t for t in theirs]
    ratio, q1, q3 = paired_ratio(ours, theirs)
    assert abs(ratio - 1.1) < 1e-9 and abs(q1 - 1.1) < 1e-9 and abs(q3 - 1.1) < 1e-9


def test_paired_ratio_quartiles_bracket_the_median() -> None:
    ratio, q1, q3 = paired_ratio([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)
    assert (q1, ratio, q3) == (2.0, 3.0, 4.0)


def test_cpu_clock_leaves_out_time_asleep() -> None:
    cpu = torch.device("cpu")
    assert clock(cpu, cpu_time=True) is time.process_time
    assert clock(cpu, cpu_time=False) is time.perf_counter
    times = alternate({"sleep": lambda: time.sleep(0.05)}, repeat=2, warmup=0, device=cpu, now=clock(cpu, cpu_time=True))
    assert all(t < 0.02 for t in times["sleep"]), times  # asleep is not on the CPU
    wall = alternate({"sleep": lambda: time.sleep(0.05)}, repeat=2, warmup=0, device=cpu)
    assert all(t >= 0.05 for t in wall["sleep"]), wall


def test_budget_gives_quick_steps_more_rounds() -> None:
    cpu = torch.device("cpu")
    steps = {"a": lambda: time.sleep(0.01), "b": lambda: time.sleep(0.01)}
    times = alternate(steps, repeat=3, warmup=1, device=cpu, budget=0.4, max_repeat=50)
    assert 10 <= len(times["a"]) == len(times["b"]) <= 22, len(times["a"])  # about 0.4 s / 0.02 s
    capped = alternate(steps, repeat=3, warmup=1, device=cpu, budget=10.0, max_repeat=7)
    assert len(capped["a"]) == 7
    assert len(alternate(steps, repeat=3, warmup=1, device=cpu)["a"]) == 3


def test_parity_script_runs_and_prints_a_ratio() -> None:
    args = [
        "--models",
        "resnet50",
        "--modes",
        "eager",
        "--steps",
        "infer",
        "--batch",
        "1",
        "--size",
        "32",
        "--repeat",
        "3",
        "--budget",
        "0",
        "--control",
    ]
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "parity.py"), *args], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("resnet50"))
    rounds, ratio = int(row.split()[6]), float(row.split()[7])
    assert rounds == 3, row
    assert 0.2 < ratio < 5.0, row  # the same function on the same input: not wildly apart
    control = float(row.split()[9])  # a second copy of the reference against the reference
    assert 0.2 < control < 5.0, row
