"""The analysis passes against independent measurements on the generated modules.

MACs: torch.utils.flop_counter.FlopCounterMode's total / 2, eval mode, one image (it counts matrix products only).
Receptive fields: the extent of the non-zero input gradient of one output unit, with max pools made average pools of
the same geometry and positive weights, so that every path in the field carries gradient.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from archc.compiler import compile_spec
from archc.passes.macs import count_macs
from archc.passes.memory import estimate_memory
from archc.passes.receptive_field import compute_receptive_fields
from tests.conftest import SPECS, load_source
from tests.zoo_helpers import counted_attention, zoo_params

SPEC_FILES = sorted(SPECS.glob("*.arch"))


def generated_model(spec: Path, directory: Path, **overrides: Any) -> tuple[Any, nn.Module]:
    compiled = compile_spec(spec, overrides or None)
    module = load_source(compiled.python(), spec.stem, directory)
    return compiled, getattr(module, spec.stem)()


@pytest.mark.parametrize("spec", zoo_params(SPEC_FILES))
def test_macs_equal_half_the_flop_counter_in_eval_mode(spec: Path, tmp_path: Path) -> None:
    compiled, model = generated_model(spec, tmp_path)
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counted_attention(), counter:
        model(torch.randn(1, *compiled.arch.input_shape))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()
    del model
    gc.collect()


def test_training_only_macs_are_reported_apart(compile_arch: Any) -> None:
    compiled, module = compile_arch(
        """
        arch Net() {
            input (3, 16, 16)
            conv1 = conv(8, 3, padding = 1)
            head = linear(5)
            aux1 = linear(7)
            forward(x) {
                x = flatten(conv1(x), 1)
                aux a = aux1(x)
                return head(x), a
            }
        }
        """
    )
    report = count_macs(compiled.arch)
    assert report.training_only_macs == 8 * 16 * 16 * 7
    model = module.model().train()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, 3, 16, 16))
    assert (report.macs + report.training_only_macs) * 2 == counter.get_total_flops()


def measure_receptive_field(model: nn.Module, module_path: str, input_size: int, channels: int) -> tuple[int, int]:
    """Height and width of the input region whose gradient reaches the centre unit of a module's output."""
    for child in list(model.modules()):
        for attr, sub in list(child.named_children()):
            if isinstance(sub, nn.MaxPool2d):
                avg = nn.AvgPool2d(sub.kernel_size, sub.stride, sub.padding, ceil_mode=sub.ceil_mode)  # type: ignore[arg-type]
                setattr(child, attr, avg)
    model = model.double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            if isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
                m.reset_running_stats()
    captured: list[torch.Tensor] = []
    target = dict(model.named_modules())[module_path]
    handle = target.register_forward_hook(lambda mod, args, out: captured.append(out))
    x = torch.ones(1, channels, input_size, input_size, dtype=torch.float64, requires_grad=True)
    model(x)
    handle.remove()
    out = captured[0]
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    assert x.grad is not None
    nonzero = x.grad[0].abs().sum(0) > 0
    rows = nonzero.any(1).nonzero()
    cols = nonzero.any(0).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize(("name", "module_path"), [("resnet18", "layer4"), ("resnext50_32x4d", "layer3"), ("d2l_resnet18", "net.b4")])
def test_receptive_field_equals_the_gradient_extent(name: str, module_path: str, tmp_path: Path) -> None:
    spec = SPECS / f"{name}.arch"
    compiled = compile_spec(spec)
    fields = compute_receptive_fields(compiled.arch)
    node = [n for n in compiled.arch.nodes if n.name == module_path or n.name.startswith(module_path + ".")][-1]
    size = fields.per_node[node.id].as_dict()["size"]
    # An input larger than the field, so that no padding clips it around the centre unit.
    input_size = 2 * int(max(size)) + 64
    _, model = generated_model(spec, tmp_path)
    measured = measure_receptive_field(model, module_path, input_size, compiled.arch.input_shape[0])
    assert measured == tuple(size)


def test_receptive_field_through_asymmetric_kernels_and_branches(compile_arch: Any) -> None:
    compiled, module = compile_arch(
        """
        block Branches() {
            a = seq(conv(8, (1, 7), padding = (0, 3)), conv(8, (7, 1), padding = (3, 0)))
            b = conv(8, 3, padding = 2, dilation = 2)
            forward(x) = cat(a(x), b(x))
        }
        arch Net() {
            input (3, 64, 64)
            stem = conv(8, 3, stride = 2, padding = 1)
            body = Branches()
            pool = maxpool(3, stride = 2, padding = 1)
        }
        """
    )
    fields = compute_receptive_fields(compiled.arch)
    size = fields.output.as_dict()["size"]
    measured = measure_receptive_field(module.model(), "pool", 96, 3)
    assert measured == tuple(size)


class OutputBytes(TorchFunctionMode):
    """Bytes of the new tensors torch functions return (module forwards included), skipping in-place results and
    views of their inputs: the activations a forward produces."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        inputs = [a for a in args if isinstance(a, torch.Tensor)]
        if isinstance(out, torch.Tensor) and not isinstance(out, nn.Parameter):
            shares = any(out.untyped_storage().data_ptr() == a.untyped_storage().data_ptr() for a in inputs)
            if not shares and func is not torch.Tensor.__getitem__:
                self.total += out.numel() * out.element_size()
        return out


@pytest.mark.parametrize(("name", "dtype", "batch"), [("resnet18", "fp32", 2), ("d2l_resnet18", "bf16", 3), ("resnext50_32x4d", "fp32", 1)])
def test_memory_equals_tensor_sizes_of_a_training_forward(name: str, dtype: str, batch: int, tmp_path: Path) -> None:
    compiled, model = generated_model(SPECS / f"{name}.arch", tmp_path)
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    model = model.to(torch_dtype).train()
    report = estimate_memory(compiled.arch, batch, dtype)
    assert report.param_bytes == sum(p.numel() * p.element_size() for p in model.parameters())
    assert report.buffer_bytes == sum(b.numel() * b.element_size() for b in model.buffers())
    x = torch.randn(batch, *compiled.arch.input_shape, dtype=torch_dtype)
    with OutputBytes() as counter:
        model(x)
    assert report.activation_bytes == counter.total


@pytest.mark.parametrize(("name", "module_path"), [("resnet18", "layer4"), ("vgg11", "features")])
def test_receptive_field_equals_the_gradient_extent_on_the_reference_model(name: str, module_path: str) -> None:
    import torchvision

    compiled = compile_spec(SPECS / f"{name}.arch")
    fields = compute_receptive_fields(compiled.arch)
    node = [n for n in compiled.arch.nodes if n.name == module_path or n.name.startswith(module_path + ".")][-1]
    size = fields.per_node[node.id].as_dict()["size"]
    reference = getattr(torchvision.models, name)()
    measured = measure_receptive_field(reference, module_path, 2 * int(max(size)) + 64, 3)
    assert measured == tuple(size)
