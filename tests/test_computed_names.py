"""Members named by strings (`"block1-0"`) and by names a loop computes (`"denselayer{i + 1}"`): the state_dict keys
of torchvision's DenseNet, checked against its `_DenseBlock`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torchvision.models.densenet import _DenseBlock

from tests.conftest import run_cli
from tests.test_language_cases import assert_pass_matches_module

DENSE_BLOCK = """
# Huang et al., "Densely Connected Convolutional Networks" (2017): each layer's output joins its input.
block DenseLayer(growth_rate, bn_size) {
    norm1 = batchnorm()
    relu1 = relu(inplace = true)
    conv1 = conv(bn_size * growth_rate, 1, bias = false)
    norm2 = batchnorm()
    relu2 = relu(inplace = true)
    conv2 = conv(growth_rate, 3, padding = 1, bias = false)
    forward(x) = cat(x, conv2(relu2(norm2(conv1(relu1(norm1(x)))))))
}
block DenseBlock(num_layers, bn_size, growth_rate) {
    for i in range(num_layers) {
        "denselayer{i + 1}" = DenseLayer(growth_rate, bn_size)
    }
}
arch Net() {
    input (64, 16, 16)
    denseblock1 = DenseBlock(4, 4, 32)
    "tail-1" = conv(8, 1)
}
"""


def test_a_loop_names_members_as_torchvision_densenet_does(compile_arch: Any) -> None:
    compiled, module = compile_arch(DENSE_BLOCK)
    model = module.model().eval()
    assert_pass_matches_module(compiled, model)
    reference = _DenseBlock(num_layers=4, num_input_features=64, bn_size=4, growth_rate=32, drop_rate=0.0).eval()
    torch.manual_seed(0)
    for m in reference.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.normal_(1, 0.3)
            m.bias.data.normal_(0, 0.3)
    model.denseblock1.load_state_dict(reference.state_dict(), strict=True)
    assert [n for n, _ in model.denseblock1.named_children()] == [f"denselayer{i}" for i in range(1, 5)]
    assert "tail-1.weight" in model.state_dict()
    for scale in (1.0, 10.0):
        x = torch.randn(2, 64, 16, 16) * scale
        with torch.no_grad():
            torch.testing.assert_close(model.denseblock1(x), reference(x))
    source = compiled.python()
    assert 'self.add_module(f"denselayer{i + 1}", DenseLayer(channels, growth_rate, bn_size))' in source
    assert 'self.add_module("tail-1", nn.Conv2d(' in source


@pytest.mark.parametrize(
    ("member", "code", "column"),
    [
        ('"layer{i // 2}" = conv(3, 1)', "E020", 9),  # two iterations give the same name
        ('"layer.{i}" = conv(3, 1)', "E074", 9),  # "." separates state_dict levels
        ('"layer{i * 0.5}" = conv(3, 1)', "E074", 18),  # a float is no part of a name
        ('"layer{i" = conv(3, 1)', "E074", 9),  # an unclosed brace
        ('"layer{j}" = conv(3, 1)', "E010", 16),  # the computed part is checked like any expression
    ],
)
def test_computed_name_errors_are_located(tmp_path: Path, member: str, code: str, column: int) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(f"arch Net() {{\n    input (3, 8, 8)\n    for i in range(4) {{\n        {member}\n    }}\n}}\n")
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1
    assert f"{spec}:4:{column}: error[{code}]" in outcome.err, outcome.err


def test_a_block_with_a_forward_cannot_compute_member_names(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        'arch Net() {\n    input (3, 8, 8)\n    for i in range(2) {\n        "c{i}" = conv(3, 1)\n    }\n    forward(x) = x\n}\n'
    )
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1
    assert "error[E024]" in outcome.err and "computed names" in outcome.err


def test_fmt_lays_out_a_quoted_member(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(DENSE_BLOCK.replace('"denselayer{i + 1}" = ', '"denselayer{i + 1}"   =  '))
    assert run_cli("fmt", str(spec)).code == 0
    assert '        "denselayer{i + 1}" = DenseLayer(growth_rate, bn_size)\n' in spec.read_text()


# Dense blocks of different lengths in a loop: the channels after each depend on the loop's variables, so the class
# must compute them (`channels + num_layers * growth_rate`), not take one iteration's growth or a shared number.
DENSE_STAGES = (
    DENSE_BLOCK.split("arch Net()")[0]
    + """
block Transition() {
    norm = batchnorm()
    conv = conv(in.channels // 2, 1, bias = false)
    pool = avgpool(2, stride = 2)
}
block Features(block_config, growth_rate) {
    stem = conv(16, 3, padding = 1, bias = false)
    for i, num_layers in block_config {
        "denseblock{i + 1}" = DenseBlock(num_layers, 2, growth_rate)
        if i != len(block_config) - 1 {
            "transition{i + 1}" = Transition()
        }
    }
    norm5 = batchnorm()
}
block Tail(width, repeats) {
    for _ in range(repeats) {
        conv(width, 1)
    }
}
arch Net() {
    input (3, 16, 16)
    features = Features((2, 3, 1), 8)
    tail = Tail(12, 3)
    last = conv(5, 1)
}
"""
)


@pytest.mark.parametrize("new_first", [False, True])
def test_channels_after_a_loop_of_growing_blocks_follow_the_loop(compile_arch: Any, new_first: bool) -> None:
    spec = DENSE_STAGES
    if new_first:  # the layer's output before its input: the growth is written `growth_rate + channels`
        spec = spec.replace("cat(x, conv2(", "cat(conv2(")
        spec = spec.replace("relu1(norm1(x)))))))", "relu1(norm1(x)))))), x)")
    compiled, module = compile_arch(spec)
    model = module.model()
    assert_pass_matches_module(compiled, model)
    # Counted in PyTorch: 16 -> +2·8 = 32 -> 16 -> +3·8 = 40 -> 20 -> +1·8 = 28 channels into norm5.
    assert model.features.norm5.num_features == 28
    source = compiled.python()
    assert "channels = channels + num_layers * growth_rate" in source
    assert ("channels = growth_rate + channels" in source) is new_first
    assert "nn.Conv2d(12, 5, kernel_size=1)" in source


def test_a_size_a_loop_changes_in_a_way_the_class_cannot_write_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        "block Double() {\n    conv(in.channels * 2, 1)\n}\n"
        "block Doubling(n) {\n    for _ in range(n) {\n        Double()\n    }\n}\n"
        'block Stages(cfg) {\n    for i, n in cfg {\n        "stage{i}" = Doubling(n)\n        "head{i}" = conv(8, 1)\n    }\n}\n'
        "arch net() {\n    input (3, 8, 8)\n    s = Stages([1, 2])\n}\n"
    )
    outcome = run_cli("compile", str(spec), "-o", str(tmp_path / "out"))
    assert outcome.code == 1
    # Located at the member whose output width the class cannot write (the next one would take a stale width).
    assert f"{spec}:11:9: error[E073]: the channels after this member cannot be written in terms of Stages's arguments" in outcome.err, (
        outcome.err
    )
    assert not (tmp_path / "out" / "net.py").exists()


# A stage per entry of a config table, each stage's output width computed per row (rounded, as GhostNet's
# make_divisible): the loop over the stages needs each stage's width in the stage's own arguments' terms.
ROWS = """
block Stage(rows, width) {
    for r in rows {
        let o = r[0] * width
        conv(max(4, int(o + 2.0) // 4 * 4), 3, padding = 1, stride = r[1])
    }
}

block Stages(cfgs, width) {
    for c in cfgs {
        Stage(c, width)
    }
}

arch model(width = 1.0) {
    input (3, 16, 16)
    body = Stages([[[6, 1], [10, 2]], [[13, 1]], [[21, 2], [30, 1]]], width)
    pool = adaptive_avgpool(1)
}
"""


def test_a_width_a_loop_computes_per_row_is_the_last_rows_after_it(compile_arch: Any) -> None:
    compiled, module = compile_arch(ROWS)
    model = module.model()
    assert_pass_matches_module(compiled, model)
    widths = [max(4, int(o + 2.0) // 4 * 4) for o in (6, 10, 13, 21, 30)]  # the rounding, in Python
    assert [c.out_channels for c in model.modules() if isinstance(c, nn.Conv2d)] == widths
    assert [c.in_channels for c in model.modules() if isinstance(c, nn.Conv2d)] == [3, *widths[:-1]]
    # The class is not the default's numbers: another table and width build a module that runs.
    other = module.Stages(5, [[[7, 2]], [[50, 1], [9, 1]], [[33, 1]]], 2.0)
    assert other(torch.randn(1, 5, 16, 16)).shape == (1, max(4, int(33 * 2.0 + 2.0) // 4 * 4), 8, 8)
    assert "channels = " in compiled.python() and "c[-1][0]" in compiled.python()
