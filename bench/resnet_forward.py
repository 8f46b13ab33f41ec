"""Does the generated resnet50's forward code cost anything? Three models in one process, alternating:

- generated: the generated resnet50;
- patched: the same generated module with torchvision's `Bottleneck.forward` put on every block (same modules and
  weights, so only the forward's code differs: torchvision runs the shortcut after the main path and adds in place);
- torchvision: the reference.

Prints the per-round paired ratios (median [quartiles]) of each pair, timed in process CPU time with one thread.

    .venv/bin/python bench/resnet_forward.py --step train --rounds 60
    .venv/bin/python bench/resnet_forward.py --step train --rounds 80 --mode compile
"""

from __future__ import annotations

import argparse
import statistics
import types
from functools import partial

import torch
import torchvision
from models import MODES, alternate, clock, make_input, paired_ratio, prepare

import generated.resnet50 as generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", choices=("train", "infer"), default="train")
    parser.add_argument("--mode", choices=sorted(MODES), default="eager")
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    reference = torchvision.models.resnet50()
    models = {}
    for key in ("generated", "patched"):
        model = generated.resnet50()
        model.load_state_dict(reference.state_dict(), strict=True)
        models[key] = model
    for block in models["patched"].modules():
        if isinstance(block, generated.Bottleneck):
            block.forward = types.MethodType(torchvision.models.resnet.Bottleneck.forward, block)  # type: ignore[method-assign]
    models["torchvision"] = reference
    cpu, mode = torch.device("cpu"), MODES[args.mode]
    x, target = make_input(2, 64, mode, cpu)
    steps = {key: partial(prepare(model, mode, cpu, train=args.step == "train"), x, target) for key, model in models.items()}
    times = alternate(steps, repeat=args.rounds, warmup=2, device=cpu, now=clock(cpu, cpu_time=True))
    print(f"# resnet50, {args.mode} {args.step} step, batch 2 at 64x64, {args.rounds} rounds; CPU seconds")
    for a, b in (("generated", "torchvision"), ("generated", "patched"), ("patched", "torchvision")):
        ratio, q1, q3 = paired_ratio(times[a], times[b])
        print(f"{a}/{b}: {ratio:.3f} [{q1:.3f}-{q3:.3f}]  medians {statistics.median(times[a]):.4f} {statistics.median(times[b]):.4f}")


if __name__ == "__main__":
    main()
