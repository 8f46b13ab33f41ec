"""The networks bench/parity.py and bench/gpu.py measure: each generated module beside its reference.

The generated module comes from generated/ (held equal to a fresh compile of specs/ by tests/test_generated_snapshot.py) and
is given the reference's weights with a strict state_dict load, so both compute the same function.
"""

from __future__ import annotations

import contextlib
import importlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Network:
    name: str  # the spec and generated module
    reference: Callable[[], nn.Module]
    min_size: int  # the smallest input side the network takes
    min_train_size: int = 0  # the smallest in training mode, where an auxiliary head runs (default min_size)


def _torchvision(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(**kwargs)

    return build


def _timm(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name)

    return build


NETWORKS = {
    "resnet50": Network("resnet50", _torchvision("resnet50"), 32),
    "vgg16": Network("vgg16", _torchvision("vgg16"), 32),
    # The auxiliary head pools 5x5 with stride 3 and then convolves 5x5: it needs 17x17 at Mixed_6e, a 299x299 input.
    "inception_v3": Network("inception_v3", _torchvision("inception_v3", aux_logits=True, init_weights=False), 75, 299),
    "xception": Network("xception", _timm("legacy_xception"), 64),
    # Issue 14's three: depthwise convolutions with squeeze-and-excitation and hard-swish, stochastic depth, channels-last
    # blocks with layer scale.
    "mobilenet_v3_large": Network("mobilenet_v3_large", _torchvision("mobilenet_v3_large"), 32),
    "efficientnet_b0": Network("efficientnet_b0", _torchvision("efficientnet_b0"), 32),
    "convnext_tiny": Network("convnext_tiny", _torchvision("convnext_tiny"), 32),
}


def build_pair(name: str) -> tuple[nn.Module, nn.Module]:
    """(generated, reference), the generated module holding the reference's weights."""
    torch.manual_seed(0)
    reference = NETWORKS[name].reference()
    generated = getattr(importlib.import_module(f"generated.{name}"), name)()
    generated.load_state_dict(reference.state_dict(), strict=True)
    return generated, reference


def logits(output: Any) -> list[torch.Tensor]:
    """Every tensor a forward returned: the logits, and the auxiliary logits in training mode (Inception)."""
    if isinstance(output, torch.Tensor):
        return [output]
    return [t for t in output if isinstance(t, torch.Tensor)]


def loss_of(output: Any, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the logits plus 0.4 x on the auxiliary logits, as torchvision's Inception recipe."""
    outs = logits(output)
    loss = nn.functional.cross_entropy(outs[0].float(), target)
    for aux in outs[1:]:
        loss = loss + 0.4 * nn.functional.cross_entropy(aux.float(), target)
    return loss


@dataclass(frozen=True)
class Mode:
    name: str
    channels_last: bool = False
    autocast: torch.dtype | None = None  # autocast to this dtype
    compile: bool = False


MODES = {
    "eager": Mode("eager"),
    "bf16": Mode("bf16", autocast=torch.bfloat16),
    "compile": Mode("compile", compile=True),
    "cl_bf16": Mode("channels_last+bf16", channels_last=True, autocast=torch.bfloat16),
}


def prepare(model: nn.Module, mode: Mode, device: torch.device, train: bool) -> Callable[[torch.Tensor, torch.Tensor], Any]:
    """One step of `model` in `mode`: a training step (forward, backward, SGD step) or an inference forward."""
    model = model.to(device)
    if mode.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train(train)
    forward: Callable[..., Any] = torch.compile(model) if mode.compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9) if train else None

    def autocast() -> contextlib.AbstractContextManager[Any]:
        if mode.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=mode.autocast)

    def step(x: torch.Tensor, target: torch.Tensor) -> Any:
        if optimizer is None:
            with torch.inference_mode(), autocast():
                return forward(x)
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_of(forward(x), target)
        loss.backward()
        optimizer.step()
        return loss

    return step


def make_input(batch: int, size: int, mode: Mode, device: torch.device, classes: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=generator).to(device)
    if mode.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, torch.randint(0, classes, (batch,), generator=generator).to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def clock(device: torch.device, cpu_time: bool) -> Callable[[], float]:
    """The clock a step is timed with: wall time (`perf_counter`), or on CPU the process's CPU time
    (`process_time`), which a shared machine's other work inflates far less (with one torch thread, a step's work
    runs on the calling thread: forward, backward and compiled kernels alike)."""
    return time.process_time if cpu_time and device.type == "cpu" else time.perf_counter


@contextlib.contextmanager
def timed(out: list[float], device: torch.device, now: Callable[[], float] = time.perf_counter) -> Iterator[None]:
    sync(device)
    start = now()
    yield
    sync(device)
    out.append(now() - start)


def alternate(
    steps: dict[str, Callable[[], Any]],
    repeat: int,
    warmup: int,
    device: torch.device,
    inner: int = 1,
    now: Callable[[], float] = time.perf_counter,
    budget: float = 0.0,
    max_repeat: int = 201,
) -> dict[str, list[float]]:
    """Seconds per call of each step, run in turn (ABAB..., the order flipped every round so neither always goes
    first), after `warmup` untimed calls each; every sample is the mean of `inner` back-to-back calls, timed by
    `now`. Sample i of every step comes from the same round.

    At least `repeat` rounds; with a `budget` (seconds of samples, by `now`), more until the budget is spent, up to
    `max_repeat`: quick steps get more samples for the same time."""
    for _ in range(warmup):
        for run in steps.values():
            run()
    times: dict[str, list[float]] = {k: [] for k in steps}
    order = list(steps)
    spent, i = 0.0, 0
    while i < repeat or (spent < budget and i < max_repeat):
        for key in order if i % 2 == 0 else reversed(order):
            sample: list[float] = []
            with timed(sample, device, now):
                for _ in range(inner):
                    steps[key]()
            times[key].append(sample[0] / inner)
            spent += sample[0]
        i += 1
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def paired_ratio(ours: list[float], theirs: list[float]) -> tuple[float, float, float]:
    """The median over rounds of ours / theirs, each pair from one round, and the quartiles of those ratios.

    Pairing cancels what drifts between rounds (another job starting, the clock speed changing): each ratio compares
    two steps run back to back. The quartiles say how far one round's ratio strays."""
    ratios = sorted(a / b for a, b in zip(ours, theirs, strict=True))
    if len(ratios) < 2:
        return ratios[0], ratios[0], ratios[0]
    q1, q2, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return q2, q1, q3


def machine() -> str:
    """The CPU model and core count, and the GPU when there is one."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    return text
