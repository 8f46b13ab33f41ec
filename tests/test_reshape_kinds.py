"""Dimension kinds through `reshape`: dimensions kept whole keep their kind, so that ResNeSt's split attention (timm's
`SplitAttn`: the channels reshaped into (radix, C / radix), summed back over the radix) leaves a C×H×W map that a conv
or a pool takes. Each figure against PyTorch: the block's output against timm's `SplitAttn` with the same weights,
shapes against forward hooks and the same forward written by hand, receptive fields against input gradients, MACs
against the flop counter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archc.passes.macs import count_macs
from archc.passes.receptive_field import compute_receptive_fields
from tests.conftest import run_cli
from tests.test_analysis import check_neighbouring_units
from tests.zoo_helpers import assert_counts, assert_shapes_match_hooks

torch.set_num_threads(1)

# timm's SplitAttn, written with the language's reshape: the map's size is known to the block (`size`), so the 5-D
# reshape names it, as timm's `x.reshape((B, radix, RC // radix, H, W))`; RadixSoftmax as timm writes it.
SPLIT = """
block SplitAttn(out, attn_chs, size, radix = 2) {{
    conv = conv(out * radix, 3, padding = 1, groups = radix, bias = false)
    bn0 = batchnorm()
    act0 = relu(inplace = true)
    fc1 = conv(attn_chs, 1)
    bn1 = batchnorm()
    act1 = relu(inplace = true)
    fc2 = conv(out * radix, 1)
    forward(x) {{
        x = act0(bn0(conv(x)))
        x = reshape(x, (radix, -1, size, size))
        gap = mean(sum(x, 1), (2, 3), keepdim = true)
        attn = fc2(act1(bn1(fc1(gap))))
        attn = softmax(transpose(reshape(attn, (1, radix, -1)), 1, 2), 1)
        attn = reshape(reshape(attn, (-1,)), (-1, 1, 1))
        return sum(x * reshape(attn, (radix, -1, 1, 1)), 1)
    }}
}}

arch Net(num_classes = 10) {{
    input (4, {size}, {size})
    split = SplitAttn(6, 8, {size})
    after = conv(8, 3, stride = 2, padding = 1)
    pool = adaptive_avgpool(1)
    fc = linear(num_classes)
    forward(x) {{
        return fc(flatten(pool(after(split(x))), 1))
    }}
}}
"""

# The radix dimension alone: channels split into (2, C / 2) and summed back, between two windows. The field passes
# through the kept height and width unchanged.
RADIX = """
arch Net() {
    input (3, 33, 33)
    before = conv(8, 3, padding = 1)
    after = conv(4, 3, stride = 2)
    forward(x) {
        return after(sum(reshape(before(x), (2, -1, 33, 33)), 1))
    }
}
"""


def test_the_split_keeps_height_and_width_and_the_sum_gives_back_a_map(compile_arch: Any) -> None:
    compiled, _ = compile_arch(SPLIT.format(size=8))
    nodes = {n.name: n for n in compiled.arch.nodes}
    assert nodes["split.reshape"].shape == [2, 6, 8, 8] and nodes["split.reshape"].axes == ["C", "C", "H", "W"]
    assert nodes["split.sum"].axes == ["C", "H", "W"] and nodes["split.sum_1"].axes == ["C", "H", "W"]
    # The gate's (radix, C / radix, 1, 1): its trailing 1×1 kept as a height and a width.
    assert nodes["split.reshape_4"].axes == ["C", "C", "H", "W"]


def test_split_attention_equals_timms_splitattn(compile_arch: Any) -> None:
    from timm.layers import SplitAttn

    compiled, module = compile_arch(SPLIT.format(size=8))
    model = module.model().eval()
    reference = SplitAttn(4, 6, radix=2, rd_channels=4, norm_layer=nn.BatchNorm2d).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0, 0.5)
        for m in reference.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    model.split.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        for scale in (1.0, 10.0):
            torch.testing.assert_close(model.split(x * scale), reference(x * scale))
    assert_counts(compiled, model)


def by_hand(split: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """The shapes of split attention's inline steps, computed by PyTorch as timm's forward computes them."""
    x = split.act0(split.bn0(split.conv(x)))
    b, rc, h, w = x.shape
    x = x.reshape((b, 2, rc // 2, h, w))
    total = x.sum(dim=1)
    gap = total.mean((2, 3), keepdim=True)
    attn = split.fc2(split.act1(split.bn1(split.fc1(gap))))
    radix = attn.view(b, 1, 2, -1).transpose(1, 2)
    soft = torch.softmax(radix, dim=1)
    gate = soft.reshape(b, -1).view(b, -1, 1, 1).reshape((b, 2, rc // 2, 1, 1))
    product = x * gate
    out = product.sum(dim=1)
    steps = {"reshape": x, "sum": total, "mean": gap, "softmax": soft, "reshape_4": gate, "mul": product, "sum_1": out}
    return {name: tuple(t.shape[1:]) for name, t in steps.items()}


def test_shapes_equal_forward_hooks_and_pytorchs_own_reshapes(compile_arch: Any) -> None:
    compiled, module = compile_arch(SPLIT.format(size=8))
    model = module.model().eval()
    assert_shapes_match_hooks(compiled, model)
    with torch.no_grad():
        expected = by_hand(model.split, torch.randn(2, 4, 8, 8))
    shapes = {n.name: tuple(n.shape) for n in compiled.arch.nodes}
    assert {name: shapes[f"split.{name}"] for name in expected} == expected


def test_macs_equal_half_the_flop_counter(compile_arch: Any) -> None:
    compiled, module = compile_arch(SPLIT.format(size=8))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module.model().eval()(torch.randn(1, 4, 8, 8))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()


def test_the_field_passes_through_a_split_and_sum_of_the_channels(compile_arch: Any) -> None:
    """Size, centre and jump after the split and the sum are those of the windows alone (3 then 3 with stride 2:
    5 pixels, jump 2), as the gradients of two neighbouring units show."""
    compiled, module = compile_arch(RADIX)
    node = next(n for n in compiled.arch.nodes if n.name == "sum")
    assert node.axes == ["C", "H", "W"]
    field = compute_receptive_fields(compiled.arch)
    assert field.per_node[node.id] == field.per_node[node.inputs[0]] == field.per_node[1]
    assert field.per_node[compiled.arch.outputs[0]].as_dict() == {"size": [5, 5], "jump": [2, 2], "start": [1, 1]}
    check_neighbouring_units(compiled, module.model(), "after", "after")


def test_the_gate_gives_every_unit_of_split_attention_the_whole_map(compile_arch: Any) -> None:
    """The radix gate is computed from the whole map and broadcast back over (radix, C / radix, H, W): every unit
    then sees the whole input, the same field wherever it stands (jump 0), as the gradients of two neighbours show."""
    compiled, module = compile_arch(SPLIT.format(size=16))
    fields = compute_receptive_fields(compiled.arch)
    split = next(n for n in compiled.arch.nodes if n.name == "split.sum_1")
    field = fields.per_node[split.id].as_dict()
    assert field["jump"] == [0, 0]
    start, half = field["start"][0], (field["size"][0] - 1) / 2
    assert start - half <= 0 and start + half >= 15
    # Random weights and input: with constant ones (unit_extents) both radix branches are equal and the softmax's
    # gradient vanishes exactly, which would hide the gate's path.
    model = module.model().eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    for unit in [(7, 7), (8, 8)]:
        x = torch.randn(1, 4, 16, 16, requires_grad=True)
        model.split(x)[0, :, unit[0], unit[1]].sum().backward()
        assert x.grad is not None
        assert bool((x.grad[0].abs().sum(0) > 0).all())


def test_a_dimension_merged_with_a_position_is_plain_and_a_conv_refuses_it(tmp_path: Path) -> None:
    # (8, 16, 16) to (16, 8, 16): the channels and the height regrouped, the width kept.
    spec = tmp_path / "net.arch"
    spec.write_text(
        "arch Net() {\n    input (3, 16, 16)\n    c = conv(8, 3, padding = 1)\n    d = conv(8, 3)\n"
        "    forward(x) {\n        return d(reshape(c(x), (16, 8, 16)))\n    }\n}\n"
    )
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert "error[E035]" in outcome.err and "(F×F×W)" in outcome.err, outcome.err


@pytest.mark.parametrize(
    ("sizes", "axes"),
    [
        ((8, -1), ["C", "L"]),  # positions merged into tokens, the channels kept: flatten(x, 2)
        ((2, 4, 256), ["C", "C", "L"]),
        ((-1,), ["F"]),
        ((8, 16, 16), ["C", "H", "W"]),
    ],
)
def test_kinds_of_other_reshapes(compile_arch: Any, sizes: tuple[int, ...], axes: list[str]) -> None:
    compiled, module = compile_arch(
        f"arch Net() {{\n    input (3, 16, 16)\n    c = conv(8, 3, padding = 1)\n"
        f"    forward(x) {{\n        return reshape(c(x), {sizes})\n    }}\n}}\n"
    )
    out = compiled.arch.nodes[compiled.arch.outputs[0]]
    assert out.axes == axes
    with torch.no_grad():
        assert tuple(module.model()(torch.randn(1, 3, 16, 16)).shape[1:]) == tuple(out.shape)
