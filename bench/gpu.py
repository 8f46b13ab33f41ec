"""Images per second of the generated modules and their references on a GPU: training step and inference, fp32 and
bf16 (autocast), channels_last + bf16, and torch.compile. In one process, alternating, as bench/parity.py.

Without CUDA it still runs, on CPU at small sizes, and says so (the figures are then CPU figures, for the script's
own check; bench/parity.py is the CPU benchmark).

    .venv/bin/python bench/gpu.py                      # CUDA: batch 64 at 224 (Inception 299), 20 rounds
    .venv/bin/python bench/gpu.py --models resnet50 --modes eager bf16 --batch 128
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch
from models import MODES, NETWORKS, alternate, build_pair, machine, make_input, median, paired_ratio, prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(NETWORKS), help="default: all on CUDA, resnet50 on CPU")
    parser.add_argument(
        "--modes", nargs="+", choices=sorted(MODES), help="default: eager, bf16, cl_bf16 and compile on CUDA; eager and cl_bf16 on CPU"
    )
    parser.add_argument("--steps", nargs="+", choices=("train", "infer"), default=["train", "infer"])
    parser.add_argument("--batch", type=int, help="images per step (default 64 on CUDA, 2 on CPU)")
    parser.add_argument("--size", type=int, help="image side (default 224, Inception 299, on CUDA; 64 on CPU)")
    parser.add_argument("--repeat", type=int, help="timed rounds (default 20 on CUDA, 3 on CPU)")
    parser.add_argument("--inner", type=int, help="steps per timed sample (default 5 on CUDA, 1 on CPU)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    models = args.models or (list(NETWORKS) if cuda else ["resnet50"])
    modes = args.modes or (["eager", "bf16", "cl_bf16", "compile"] if cuda else ["eager", "cl_bf16"])
    batch = args.batch or (64 if cuda else 2)
    repeat = args.repeat or (20 if cuda else 3)
    inner = args.inner or (5 if cuda else 1)
    if cuda:
        torch.backends.cudnn.benchmark = True
    else:
        torch.set_num_threads(1)
    print(f"# {machine()}")
    if not cuda:
        print("# no CUDA device: ran on CPU, at small sizes; these are not GPU figures")
    print(
        f"# batch {batch}, {repeat} rounds of {inner} steps, alternating, after 3 warm-up steps each; median images/s; "
        "ratio: median of the per-round ratios"
    )
    print(f"{'network':<13} {'mode':<19} {'step':<6} {'input':>8} {'generated im/s':>15} {'reference im/s':>15} {'ratio':>7}")
    start = time.perf_counter()
    for name in models:
        side = args.size or ((299 if name == "inception_v3" else 224) if cuda else 64)
        for mode_key in modes:
            mode = MODES[mode_key]
            for step_kind in args.steps:
                size = max(side, NETWORKS[name].min_train_size if step_kind == "train" else NETWORKS[name].min_size)
                ours_model, reference = build_pair(name)
                x, target = make_input(batch, size, mode, device)
                ours_step = prepare(ours_model, mode, device, train=step_kind == "train")
                ref_step = prepare(reference, mode, device, train=step_kind == "train")
                times = alternate(
                    {"generated": partial(ours_step, x, target), "reference": partial(ref_step, x, target)},
                    repeat=repeat,
                    warmup=3,
                    device=device,
                    inner=inner,
                )
                ours, theirs = batch / median(times["generated"]), batch / median(times["reference"])
                ratio = paired_ratio(times["reference"], times["generated"])[0]  # images/s: the inverse of the times
                print(
                    f"{name:<13} {mode.name:<19} {step_kind:<6} {size:>4}x{size:<3} {ours:>15.1f} {theirs:>15.1f} {ratio:>7.3f}",
                    flush=True,
                )
                del ours_model, reference, ours_step, ref_step
                torch._dynamo.reset()
                if cuda:
                    torch.cuda.empty_cache()
    print(f"# {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
