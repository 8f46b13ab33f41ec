"""The generated modules against their references, in one process, alternating, on CPU.

For resnet50, vgg16 and inception_v3 (torchvision) and xception (timm's legacy_xception): a training step (forward,
backward, SGD step) and an inference forward, eager fp32, under torch.compile, and in channels_last with autocast
to bf16. The generated module holds the reference's weights (strict state_dict load) and both take the same batch.
Prints the median seconds per step of each and the ratio generated / reference (1.0: as fast): the median over
rounds of the two steps' ratio within a round, with its quartiles. Steps are timed in the process's CPU time
(`--clock cpu`, the default; one torch thread), which other work on a shared machine disturbs far less than wall
time; `--clock wall` times them by the wall clock.

    .venv/bin/python bench/parity.py            # --quick: small batch and images, a few repeats, compile on resnet50 only
    .venv/bin/python bench/parity.py --full     # batch 8 at 224 (299 for Inception), more repeats
    .venv/bin/python bench/parity.py --models resnet50 --modes eager compile --repeat 21
    .venv/bin/python bench/parity.py --models vgg16 --modes compile --compile-models vgg16 --control   # + the noise floor
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial

import torch
from models import MODES, NETWORKS, alternate, build_pair, clock, machine, make_input, median, paired_ratio, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument(
        "--quick",
        action="store_true",
        help="batch 2, 64x64 (Inception 75x75, 299x299 to train), 5 rounds, compile on resnet50 only (the default)",
    )
    preset.add_argument("--full", action="store_true", help="batch 8, 224x224 (Inception 299x299), 15 repeats")
    parser.add_argument("--models", nargs="+", choices=sorted(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=["eager", "compile", "cl_bf16"])
    parser.add_argument("--steps", nargs="+", choices=("train", "infer"), default=["train", "infer"])
    parser.add_argument("--batch", type=int, help="override the batch size")
    parser.add_argument("--size", type=int, help="override the image side")
    parser.add_argument("--repeat", type=int, help="override the least number of timed rounds")
    parser.add_argument(
        "--budget",
        type=float,
        default=30.0,
        help="seconds of timed rounds per comparison: steps quicker than that get more rounds than --repeat, up to 201 "
        "(default 30; 0: --repeat rounds exactly)",
    )
    parser.add_argument(
        "--compile-models",
        nargs="+",
        choices=sorted(NETWORKS),
        help="the networks the compile mode runs on (default: resnet50 with --quick, all with --full): on CPU, compiling one "
        "training step takes minutes",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: on a shared machine, less noise)")
    parser.add_argument(
        "--control",
        action="store_true",
        help="time a second copy of the reference (same weights) too, and print its ratio to the reference: the noise "
        "floor of the run, measured in it",
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="time steps in the process's CPU time (default) or wall time",
    )
    args = parser.parse_args()
    batch, side, repeat = (8, 224, 15) if args.full else (2, 64, 5)
    batch, repeat = args.batch or batch, args.repeat or repeat
    compile_models = args.compile_models or (list(NETWORKS) if args.full else ["resnet50"])
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    now = clock(device, cpu_time=args.clock == "cpu")
    print(f"# {machine()}")
    print(
        f"# batch {batch}, at least {repeat} rounds{f' (more in a {args.budget:g} s budget)' if args.budget > 0 else ''} "
        "alternating after warm-up steps; "
        f"median {args.clock} seconds per step; "
        "ratio: median of the per-round ratios [quartiles]"
    )
    print(
        f"{'network':<13} {'mode':<19} {'step':<6} {'input':>8} {'generated s':>12} {'reference s':>12} "
        f"{'rounds':>6} {'ratio':>7} {'quartiles':>13}" + (f" {'control':>8} {'quartiles':>13}" if args.control else "")
    )
    ratios: list[float] = []
    start = time.perf_counter()
    for name in args.models:
        network = NETWORKS[name]
        image = args.size or (299 if args.full and name == "inception_v3" else side)
        for mode_key in args.modes:
            mode = MODES[mode_key]
            if mode.compile and name not in compile_models:
                continue
            for step_kind in args.steps:
                size = max(image, network.min_train_size if step_kind == "train" else network.min_size)
                generated, reference = build_pair(name)
                x, target = make_input(batch, size, mode, device)
                gen_step = prepare(generated, mode, device, train=step_kind == "train")
                ref_step = prepare(reference, mode, device, train=step_kind == "train")
                steps = {"generated": partial(gen_step, x, target), "reference": partial(ref_step, x, target)}
                if args.control:
                    copy = NETWORKS[name].reference()
                    copy.load_state_dict(reference.state_dict(), strict=True)
                    steps["control"] = partial(prepare(copy, mode, device, train=step_kind == "train"), x, target)
                times = alternate(
                    steps,
                    repeat=repeat,
                    warmup=1 if not args.full else 2,
                    device=device,
                    now=now,
                    budget=args.budget,
                )
                ours, theirs = median(times["generated"]), median(times["reference"])
                ratio, q1, q3 = paired_ratio(times["generated"], times["reference"])
                ratios.append(ratio)
                print(
                    f"{name:<13} {mode.name:<19} {step_kind:<6} {size:>4}x{size:<3} {ours:>12.4f} {theirs:>12.4f} "
                    f"{len(times['generated']):>6} {ratio:>7.3f}"
                    f"  {q1:.3f}-{q3:.3f}" + (_control(times) if args.control else ""),
                    flush=True,
                )
                torch._dynamo.reset()
    print(f"# ratios: median {median(ratios):.3f}, min {min(ratios):.3f}, max {max(ratios):.3f}; {time.perf_counter() - start:.0f} s")


def _control(times: dict[str, list[float]]) -> str:
    ratio, q1, q3 = paired_ratio(times["control"], times["reference"])
    return f" {ratio:>8.3f}  {q1:.3f}-{q3:.3f}"


if __name__ == "__main__":
    sys.exit(main())
