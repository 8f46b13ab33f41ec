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
from torch.nn import functional as F
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


# Size, jump and centre of the field, and the headline field (of the last spatial feature map), against the input
# gradients of output units: each unit's field is the extent of the non-zero gradient of that unit; its centre is the
# middle of that extent, and the jump the distance between the centres of two neighbouring units.


class _MaxAsAverage(TorchFunctionMode):
    """Max pooling made average pooling of the same geometry (modules and inline calls alike): every position of a
    window then carries gradient, not only the maximum."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        if func is F.max_pool2d:
            names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
            given = {**dict(zip(names, args[1:], strict=False)), **kwargs}
            assert given.get("dilation", 1) in (1, (1, 1)) and not given.get("return_indices", False)
            stride = given.get("stride") or given["kernel_size"]
            return F.avg_pool2d(args[0], given["kernel_size"], stride, given.get("padding", 0), given.get("ceil_mode", False))
        return func(*args, **kwargs)


class _Captured(Exception):
    """Raised by the hook once the tensor is captured: the rest of the forward is not needed."""


def unit_extents(
    model: nn.Module, module_path: str, input_size: int, channels: int, units: list[tuple[int, int]], before: tuple[int, ...] | None = None
) -> list[tuple[int, int, int, int]]:
    """For each (row, column) position of a module's output (or, with `before` = C, H, W, of its input
    unflattened to that shape): first and last input row, first and last input column whose gradient reaches it.
    Positive weights, BatchNorm the identity, max pools as average pools: every path in the field carries gradient.
    All the channels at a position: a `cat` of branches with different fields has the widest one's. One image per
    unit, in one batch."""
    model = model.float().eval()
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

    def keep(tensor: torch.Tensor) -> None:
        captured.append(tensor if before is None else tensor.reshape(tensor.shape[0], *before))
        raise _Captured

    target = dict(model.named_modules())[module_path]
    if before is None:
        handle = target.register_forward_hook(lambda mod, args, out: keep(out))
    else:
        handle = target.register_forward_pre_hook(lambda mod, args: keep(args[0]))
    x = torch.ones(len(units), channels, input_size, input_size, requires_grad=True)
    with _MaxAsAverage(), pytest.raises(_Captured):
        model(x)
    handle.remove()
    (out,) = captured
    sum(out[b, :, i, j].sum() for b, (i, j) in enumerate(units)).backward()  # type: ignore[union-attr]
    assert x.grad is not None
    extents = []
    for b in range(len(units)):
        nonzero = x.grad[b].abs().sum(0) > 0
        rows, cols = nonzero.any(1).nonzero(), nonzero.any(0).nonzero()
        extents.append((int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())))
    return extents


def expected_extent(field: dict[str, list[float]], unit: tuple[int, int], input_size: int) -> tuple[float, float, float, float]:
    """The input rows and columns archc's field of `unit` covers: centre start + index · jump, size wide; asserts the
    field lies inside the input, so that no padding clips the measurement."""
    bounds = []
    for axis, index in enumerate(unit):
        centre = field["start"][axis] + index * field["jump"][axis]
        half = (field["size"][axis] - 1) / 2
        assert 0 <= centre - half and centre + half <= input_size - 1, f"the field of unit {unit} is clipped: use a larger input"
        bounds += [centre - half, centre + half]
    return bounds[0], bounds[1], bounds[2], bounds[3]


def check_neighbouring_units(
    compiled: Any, model: nn.Module, node_name: str, module_path: str, before: tuple[int, ...] | None = None
) -> None:
    """Size, centre and jump of `node_name`'s field against the gradients of its centre unit and the unit one row
    and one column further (the jump is the distance between their centres)."""
    arch = compiled.arch
    node = [n for n in arch.nodes if n.name == node_name][-1]  # a module applied twice (a block's relu): the last
    field = compute_receptive_fields(arch).per_node[node.id].as_dict()
    h, w = node.shape[1], node.shape[2]
    units = [((h - 1) // 2, (w - 1) // 2), ((h - 1) // 2 + 1, (w - 1) // 2 + 1)]
    size = arch.input_shape[1]
    measured = unit_extents(model, module_path, size, arch.input_shape[0], units, before)
    expected = [expected_extent(field, unit, size) for unit in units]
    assert measured == expected
    centres = [((r0 + r1) / 2, (c0 + c1) / 2) for r0, r1, c0, c1 in measured]
    assert (centres[1][0] - centres[0][0], centres[1][1] - centres[0][1]) == tuple(field["jump"])


# Specs and input sizes at which the centre units' fields lie inside the input, with the node to measure and the
# module whose output (or input, unflattened) it is.
NEIGHBOURS = [
    ("resnet18", 640, "layer4.1.relu", "layer4", None),
    ("vgg16", 320, "features.30", "features", None),
    ("alexnet", 320, "features.12", "features", None),
    ("googlenet", 640, "inception4a.cat", "inception4a", None),
    ("lenet5", 32, "maxpool_1", "fc1", (16, 5, 5)),
]


@pytest.mark.parametrize(("name", "size", "node", "module_path", "before"), NEIGHBOURS, ids=[n[0] for n in NEIGHBOURS])
def test_receptive_field_size_jump_and_centre_equal_the_gradients_of_neighbouring_units(
    name: str, size: int, node: str, module_path: str, before: tuple[int, ...] | None, tmp_path: Path
) -> None:
    spec = SPECS / f"{name}.arch"
    compiled = compile_spec(spec, input_shape=(compile_spec(spec).arch.input_shape[0], size, size))
    module = load_source(compiled.python(), spec.stem, tmp_path)
    check_neighbouring_units(compiled, getattr(module, spec.stem)(), node, module_path, before)


WINDOWS = """
arch Net() {{
    input (3, {size}, {size})
    stem = conv(8, 3, stride = 2, padding = 1)
    pool = maxpool(3, stride = 2, ceil_mode = true)
    patch = conv(8, 2, stride = 2)
    wide = conv(8, (1, 5), padding = (0, 2))
    dilated = conv(8, 3, padding = 2, dilation = 2)
    down = avgpool(3, stride = 2, padding = 1)
    keep = adaptive_avgpool(({keep}, {keep}))
    head = linear(4)
    forward(x) {{
        return head(flatten(keep(down(dilated(wide(patch(pool(stem(x))))))), 1))
    }}
}}
"""


@pytest.mark.parametrize("node", ["stem", "pool", "patch", "wide", "dilated", "down", "keep"])
def test_field_through_padding_dilation_ceil_mode_and_stride_2_equals_the_gradients(node: str, compile_arch: Any) -> None:
    # 125 -> 63 -> 31 (ceil_mode: 30.5 rounds up) -> 15 -> 15 -> 15 -> 8 -> 8
    compiled, module = compile_arch(WINDOWS.format(size=125, keep=8))
    assert [n.shape[1] for n in compiled.arch.nodes[1:8]] == [63, 31, 15, 15, 15, 8, 8]
    check_neighbouring_units(compiled, module.model(), node, node)


def test_an_adaptive_pool_that_keeps_the_size_is_the_identity_for_the_field(compile_arch: Any) -> None:
    compiled, _ = compile_arch(WINDOWS.format(size=125, keep=8))
    fields = compute_receptive_fields(compiled.arch)
    keep = next(n for n in compiled.arch.nodes if n.name == "keep")
    assert fields.per_node[keep.id] == fields.per_node[keep.inputs[0]]
    # and it is the last spatial feature map: the headline, as VGG's and AlexNet's `avgpool`
    assert fields.feature_node == keep.id


@pytest.mark.parametrize(
    ("name", "node", "quoted", "size", "module_path"),
    [("resnet18", "layer4.1.relu", 435, 640, "layer4"), ("vgg16", "avgpool", 212, 224, "avgpool")],
)
def test_headline_field_is_the_last_feature_maps_and_the_papers_figure(
    name: str, node: str, quoted: int, size: int, module_path: str, tmp_path: Path
) -> None:
    """The headline field is the last spatial feature map's (ResNet's layer4, VGG's pool5 through the adaptive pool
    that keeps its 7×7), the figure Araujo et al. (Distill, 2019) quote; the output's, through global pooling, is
    larger. Measured on the centre unit, at an input where its field is not clipped (VGG's at its own 224: above, the
    adaptive pool would no longer keep the size)."""
    spec = SPECS / f"{name}.arch"
    fields = compute_receptive_fields(compile_spec(spec).arch)
    assert fields.feature.as_dict()["size"] == [quoted, quoted]
    assert fields.output.h.size > fields.feature.h.size
    compiled = compile_spec(spec, input_shape=(3, size, size))
    model = getattr(load_source(compiled.python(), spec.stem, tmp_path), spec.stem)()
    at_size = compute_receptive_fields(compiled.arch)
    feature = compiled.arch.nodes[at_size.feature_node]
    assert feature.name == node
    assert at_size.feature == fields.feature
    unit = ((feature.shape[1] - 1) // 2, (feature.shape[2] - 1) // 2)
    assert unit_extents(model, module_path, size, 3, [unit]) == [expected_extent(fields.feature.as_dict(), unit, size)]


def test_headline_field_leaves_out_maps_of_one_position_and_training_only_heads(compile_arch: Any) -> None:
    compiled, _ = compile_arch(
        """
        arch Net() {
            input (3, 20, 20)
            c1 = conv(8, 5)
            c2 = conv(8, 5, stride = 2)
            c3 = conv(8, 6)
            aux1 = conv(4, 3, padding = 1)
            head = linear(5)
            forward(x) {
                x = c2(c1(x))
                aux a = flatten(aux1(x), 1)
                return head(flatten(c3(x), 1)), a
            }
        }
        """
    )
    # c3 maps the 6×6 of c2 to 1×1: a feature vector. The auxiliary conv keeps a 6×6 map but runs in training only.
    fields = compute_receptive_fields(compiled.arch)
    assert compiled.arch.nodes[fields.feature_node].name == "c2"
    assert [n.shape[1:] for n in compiled.arch.nodes if n.name in ("c2", "c3")] == [[6, 6], [1, 1]]


def test_a_squeeze_and_excitation_gate_gives_every_unit_the_same_field(compile_arch: Any) -> None:
    """A gate computed from the whole map and broadcast back over it: every unit then sees the whole input, the same
    field wherever it stands (jump 0), as the gradients of two neighbouring units show."""
    compiled, module = compile_arch(
        """
        arch Net() {
            input (3, 32, 32)
            c1 = conv(8, 3, stride = 2, padding = 1)
            squeeze = adaptive_avgpool(1)
            gate = conv(8, 1)
            c2 = conv(8, 3, padding = 1)
            forward(x) {
                x = c1(x)
                return c2(x * sigmoid(gate(squeeze(x))))
            }
        }
        """
    )
    fields = compute_receptive_fields(compiled.arch)
    field = fields.per_node[compiled.arch.outputs[0]].as_dict()
    assert field["jump"] == [0, 0]
    start, half = field["start"][0], (field["size"][0] - 1) / 2
    assert start - half <= 0 and start + half >= 31  # the whole input
    extents = unit_extents(module.model(), "c2", 32, 3, [(7, 7), (8, 8)])
    assert extents == [(0, 31, 0, 31)] * 2
