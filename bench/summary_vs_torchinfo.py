"""archc summary against torchinfo and fvcore on the same networks, side by side in one run.

Each tool runs in a fresh Python process, as a user would run it (imports included), several times, alternating;
the script prints the median wall time and the peak resident memory of each, and archc's ratio to each other tool.

    .venv/bin/pip install -e ".[bench]"    # torchinfo and fvcore
    .venv/bin/python bench/summary_vs_torchinfo.py [--repeat 5]

torchinfo and fvcore need torch, a model built with its weights allocated, and a forward pass; archc reads the spec.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# spec, torchvision builder, input size
NETWORKS = [
    ("resnet152", "torchvision.models.resnet152()", (3, 224, 224)),
    ("vgg16", "torchvision.models.vgg16()", (3, 224, 224)),
    ("inception_v3", "torchvision.models.inception_v3(aux_logits=True, init_weights=False).eval()", (3, 299, 299)),
]


def commands(spec: str, builder: str, shape: tuple[int, int, int]) -> dict[str, list[str]]:
    size = ", ".join(map(str, shape))
    return {
        "archc summary": [sys.executable, "-m", "archc", "summary", f"specs/{spec}.arch", "--json"],
        "torchinfo.summary": [
            sys.executable,
            "-c",
            f"import torch, torchvision, torchinfo; m = {builder}; torchinfo.summary(m, (1, {size}), verbose=0)",
        ],
        "fvcore FlopCountAnalysis": [
            sys.executable,
            "-c",
            "import torch, torchvision; from fvcore.nn import FlopCountAnalysis; "
            f"m = {builder}; a = FlopCountAnalysis(m.eval(), torch.randn(1, {size})); a.unsupported_ops_warnings(False); "
            "a.uncalled_modules_warnings(False); a.total()",
        ],
    }


def run(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak resident set (bytes) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'network':<14} {'tool':<26} {'wall s':>8} {'peak MiB':>9} {'archc time ratio':>17} {'archc memory ratio':>19}")
    for spec, builder, shape in NETWORKS:
        tools = commands(spec, builder, shape)
        times: dict[str, list[float]] = {t: [] for t in tools}
        peaks: dict[str, list[int]] = {t: [] for t in tools}
        for _ in range(args.repeat):
            for tool, argv in tools.items():  # alternating, so drift on a shared machine hits every tool alike
                elapsed, peak = run(argv)
                times[tool].append(elapsed)
                peaks[tool].append(peak)
        ours_t = statistics.median(times["archc summary"])
        ours_m = statistics.median(peaks["archc summary"])
        for tool in tools:
            t, m = statistics.median(times[tool]), statistics.median(peaks[tool])
            ratio_t = "" if tool == "archc summary" else f"{ours_t / t:.3f}"
            ratio_m = "" if tool == "archc summary" else f"{ours_m / m:.3f}"
            print(f"{spec:<14} {tool:<26} {t:>8.3f} {m / 2**20:>9.1f} {ratio_t:>17} {ratio_m:>19}")


if __name__ == "__main__":
    main()
