"""The inference build (`archc compile --inference`) against torchvision's eval-mode model, side by side in one process.

For each network the script builds torchvision's model (random weights, BatchNorm statistics and affine parameters
randomised), compiles the spec's inference build into a temporary directory, loads torchvision's state_dict into
it (strict: the generated training module has torchvision's keys, and the inference build takes them), checks the
logits agree, then times the two forwards alternating, under torch.inference_mode on CPU, and prints the medians and
the ratio (inference build / torchvision: below 1 is faster).

    .venv/bin/python bench/inference.py [--models resnet50 resnet18 vgg16_bn] [--batch 8] [--threads 2] [--repeat 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archc.compiler import compile_spec  # noqa: E402
from archc.tools.runtime import randomize_batchnorm_statistics  # noqa: E402


def inference_build(name: str, directory: Path) -> nn.Module:
    """Compile specs/<name>.arch's inference build into `directory`, import it and build the model."""
    compiled = compile_spec(ROOT / "specs" / f"{name}.arch")
    path = directory / f"{compiled.inference_name}.py"
    path.write_text(compiled.inference_python())
    spec = importlib.util.spec_from_file_location(compiled.inference_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model: nn.Module = getattr(module, compiled.inference_name)()
    return model


def seconds(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "resnet18", "vgg16_bn"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--channels-last", action="store_true", help="run both models and the input in channels_last")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layout = "channels_last" if args.channels_last else "contiguous"
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, CPU, {layout} models and input")
    width = max(10, *map(len, args.models))
    print(f"{'network':<{width}} {'torchvision eval ms':>20} {'inference build ms':>19} {'ratio':>6} {'max |diff| / max |logit|':>25}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            reference = getattr(torchvision.models, name)()
            randomize_batchnorm_statistics(reference, seed=0, affine=True)
            ours = inference_build(name, Path(tmp))
            ours.load_state_dict(reference.state_dict(), strict=True)
            reference.eval()
            ours.eval()
            x = torch.randn(args.batch, 3, 224, 224)
            if args.channels_last:
                reference = reference.to(memory_format=torch.channels_last)
                ours = ours.to(memory_format=torch.channels_last)
                x = x.to(memory_format=torch.channels_last)
            with torch.inference_mode():
                expected, got = reference(x), ours(x)
                error = ((got - expected).abs().max() / expected.abs().max()).item()
                for _ in range(args.warmup):
                    seconds(reference, x)
                    seconds(ours, x)
                times: dict[str, list[float]] = {"reference": [], "ours": []}
                for i in range(args.repeat):  # alternating, and each first in turn, so drift hits both alike
                    order = ("reference", "ours") if i % 2 == 0 else ("ours", "reference")
                    for which in order:
                        times[which].append(seconds(reference if which == "reference" else ours, x))
            ref_ms = statistics.median(times["reference"]) * 1e3
            ours_ms = statistics.median(times["ours"]) * 1e3
            print(f"{name:<{width}} {ref_ms:>20.1f} {ours_ms:>19.1f} {ours_ms / ref_ms:>6.3f} {error:>25.2e}", flush=True)


if __name__ == "__main__":
    main()
