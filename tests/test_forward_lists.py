"""Lists of tensors, loops over `range(n)` and items of a list of modules in a forward (Res2Net's and MixNet's
vocabulary): the generated module against a hand-written torch module (strict state_dict load, equal outputs), its
state_dict keys, shapes against forward hooks, parameters against `sum(numel)`, MACs against FlopCounterMode / 2, and
the errors of misuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from archc.passes.macs import count_macs
from tests.conftest import run_cli
from tests.zoo_helpers import assert_counts, assert_shapes_match_hooks, randomize_batchnorm_statistics, reference_flops

torch.set_num_threads(1)

# Res2Net's multi-scale block, in small: numbered lists of convs and norms, one applied per scale.
RES2 = """
block Convs(n, width, stride = 1) {
    for i in range(n) {
        conv(width, 3, stride = stride, padding = 1, bias = false)
    }
}

block Norms(n) {
    for i in range(n) {
        batchnorm()
    }
}

block Res2(width, scale = 4) {
    let nums = scale - 1
    conv1 = conv(width * scale, 1, bias = false)
    convs = Convs(nums, width)
    bns = Norms(nums)
    conv3 = conv(in.channels, 1, bias = false)
    forward(x) {
        out = relu(conv1(x))
        spx = chunk(out, scale, dim = 1)
        spo = []
        for i in range(nums) {
            if i == 0 {
                sp = spx[i]
            } else {
                sp = sp + spx[i]
            }
            sp = relu(bns[i](convs[i](sp)))
            spo = spo + [sp]
        }
        out = cat(spo + [spx[-1]])
        return relu(conv3(out) + x)
    }
}

arch Net(scale = 4) {
    input (16, 8, 8)
    a = Res2(4, scale = scale)
    b = Res2(6, scale = 3)
}
"""


class Res2(nn.Module):
    """The same block by hand, as timm's Bottle2neck writes it."""

    def __init__(self, inplanes: int, width: int, scale: int) -> None:
        super().__init__()
        self.width = width
        self.conv1 = nn.Conv2d(inplanes, width * scale, 1, bias=False)
        self.convs = nn.ModuleList([nn.Conv2d(width, width, 3, padding=1, bias=False) for _ in range(scale - 1)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(scale - 1)])
        self.conv3 = nn.Conv2d(width * scale, inplanes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spx = torch.split(torch.relu(self.conv1(x)), self.width, 1)
        spo = []
        sp = spx[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            sp = spx[i] if i == 0 else sp + spx[i]
            sp = torch.relu(bn(conv(sp)))
            spo.append(sp)
        spo.append(spx[-1])
        return torch.relu(self.conv3(torch.cat(spo, 1)) + x)


class Net(nn.Module):
    def __init__(self, scale: int) -> None:
        super().__init__()
        self.a = Res2(16, 4, scale)
        self.b = Res2(16, 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


@pytest.mark.parametrize("scale", [2, 4])
def test_res2_block_equals_the_hand_written_module(compile_arch: Any, scale: int) -> None:
    compiled, module = compile_arch(RES2, overrides={"scale": scale})
    model = module.model(scale=scale)
    reference = Net(scale)
    assert list(model.state_dict()) == list(reference.state_dict())
    assert "a.convs.0.weight" in model.state_dict() and "b.bns.1.running_mean" in model.state_dict()
    assert isinstance(model.a.convs, nn.ModuleList) and isinstance(model.b.bns, nn.ModuleList)
    torch.manual_seed(0)
    randomize_batchnorm_statistics(reference, affine=True)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    assert_counts(compiled, model, reference=reference)
    assert_shapes_match_hooks(compiled, model)
    assert count_macs(compiled.arch).macs * 2 == reference_flops(reference, (16, 8, 8))


def test_the_generated_forward_is_a_python_loop(compile_arch: Any) -> None:
    compiled, _ = compile_arch(RES2)
    source = compiled.python()
    # One loop per forward (not a copy per iteration), items taken by index, outputs appended.
    assert "for i in range(self.nums):" in source
    assert "sp = self.convs[i](sp)" in source
    assert "spo.append(sp)" in source
    assert "torch.cat(spo + [spx[-1]], 1)" in source
    assert "class Convs(nn.ModuleList):" in source
    assert source.count("self.convs[") == 1


# MixNet's mixed conv, in small: a seq whose items, kernels 3 and 5, each take one piece of the channels.
MIXED = """
block Mixed(out_channels) {
    convs = seq(conv(out_channels // 2, 3, padding = 1), conv(out_channels // 2, 5, padding = 2))
    forward(x) {
        xs = split(x, (in.channels // 2, in.channels // 2), dim = 1)
        outs = [convs[0](xs[0]), convs[1](xs[1])]
        return cat(outs, dim = 1)
    }
}

arch Net() {
    input (8, 10, 10)
    m = Mixed(12)
}
"""


def test_a_seq_applied_item_by_item_is_a_module_list(compile_arch: Any) -> None:
    compiled, module = compile_arch(MIXED)
    model = module.model()
    assert isinstance(model.m.convs, nn.ModuleList)
    assert [k for k in model.state_dict()] == ["m.convs.0.weight", "m.convs.0.bias", "m.convs.1.weight", "m.convs.1.bias"]
    x = torch.randn(2, 8, 10, 10)
    a, b = x.split(4, 1)
    with torch.no_grad():
        expected = torch.cat([model.m.convs[0](a), model.m.convs[1](b)], 1)
        torch.testing.assert_close(model(x), expected)
    assert_counts(compiled, model)
    assert_shapes_match_hooks(compiled, model)
    assert count_macs(compiled.arch).macs * 2 == reference_flops(model, (8, 10, 10))


@pytest.mark.parametrize(
    ("forward", "where", "code", "words"),
    [
        ("xs = chunk(x, 2, dim = 1)\n        return c[2](xs[0])", "10:18", "E085", "index 2 is out of range for a list of 2"),
        ("xs = chunk(x, 2, dim = 1)\n        return c[0](xs[3])", "10:24", "E085", "index 3 is out of range for a list of 2"),
        ("xs = chunk(x, 2, dim = 1)\n        return c[0](xs)", "10:21", "E086", "a list of tensors where a tensor is expected"),
        ("xs = chunk(x, 2, dim = 1)\n        return relu(xs)", "10:21", "E086", "a list of tensors where a tensor is expected"),
        ("for i in range(x) {\n            x = c[0](x)\n        }\n        return x", "9:24", "E087", "built, not a tensor"),
        ("for i in range(0.5) {\n            x = c[0](x)\n        }\n        return x", "9:24", "E087", "not 0.5"),
        ("for v in [1, 2] {\n            x = c[0](x)\n        }\n        return x", "9:18", "E084", "or over range(n)"),
        ("y = c[0](x)\n        return c[1](cat(y, y, y))", "10:16", "E036", "item 1 is applied here to N×6×8×8"),
    ],
)
def test_misuse_is_located(tmp_path: Path, forward: str, where: str, code: str, words: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        "block Two() {\n    conv(2, 1)\n    conv(2, 1)\n}\n\nblock B() {\n    c = Two()\n    forward(x) {\n"
        f"        {forward}\n    }}\n}}\n\narch Net() {{\n    input (4, 8, 8)\n    B()\n}}\n"
    )
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert f"{spec}:{where}:" in outcome.err and f"error[{code}]" in outcome.err and words in outcome.err, outcome.err


# MixNet's member that is one conv in some instances and a list of convs (one per channel group) in others.
MIXED_OR_PLAIN = """
block Groups(out_chs, kernels) {
    for k in kernels {
        conv(out_chs // len(kernels), k, padding = (k - 1) // 2, bias = false)
    }
}

block Mix(out_chs, kernels) {
    if len(kernels) > 1 {
        c = Groups(out_chs, kernels)
    } else {
        c = conv(out_chs, kernels[0], padding = (kernels[0] - 1) // 2, bias = false)
    }
    forward(x) {
        if len(kernels) > 1 {
            xs = chunk(x, len(kernels), dim = 1)
            ys = []
            for i in range(len(kernels)) {
                ys = ys + [c[i](xs[i])]
            }
            return cat(ys)
        }
        return c(x)
    }
}

arch Net() {
    input (6, 9, 9)
    a = Mix(12, [3, 5, 7])
    b = Mix(8, [3])
    d = Mix(8, [1, 3])
}
"""


def test_a_member_is_a_module_in_some_instances_and_a_list_in_others(compile_arch: Any) -> None:
    compiled, module = compile_arch(MIXED_OR_PLAIN)
    model = module.model().eval()
    assert isinstance(model.a.c, nn.ModuleList) and isinstance(model.b.c, nn.Conv2d) and isinstance(model.d.c, nn.ModuleList)
    assert [tuple(c.weight.shape) for c in model.a.c] == [(4, 2, 3, 3), (4, 2, 5, 5), (4, 2, 7, 7)]
    assert [tuple(c.weight.shape) for c in model.d.c] == [(4, 4, 1, 1), (4, 4, 3, 3)]
    x = torch.randn(2, 6, 9, 9)
    with torch.no_grad():
        y = torch.cat([c(p) for c, p in zip(model.a.c, x.chunk(3, 1), strict=True)], 1)
        y = model.b.c(y)
        y = torch.cat([c(p) for c, p in zip(model.d.c, y.chunk(2, 1), strict=True)], 1)
        torch.testing.assert_close(model(x), y)
    assert_counts(compiled, model)
    assert_shapes_match_hooks(compiled, model)
    assert count_macs(compiled.arch).macs * 2 == reference_flops(model, (6, 9, 9))


# VoVNet's one-shot aggregation, in small: an optional 1×1 reduction, then a chain through a list of convolutions
# (`x = convs[i](x)`: each item takes the previous item's output), every output kept and joined with the input.
OSA = """
block Convs(n, mid) {
    for i in range(n) {
        conv(mid, 3, padding = 1, bias = false)
    }
}

block Osa(mid, out, n = 2) {
    if in.channels != mid {
        reduction = conv(mid, 1, bias = false)
    }
    convs = Convs(n, mid)
    concat = conv(out, 1, bias = false)
    forward(x) {
        outs = [x]
        x = reduction?(x)
        for i in range(n) {
            x = relu(convs[i](x))
            outs = outs + [x]
        }
        return concat(cat(outs))
    }
}

arch Net() {
    input (8, 8, 8)
    a = Osa(4, 12)
    b = Osa(12, 16)
    c = Osa(6, 10, n = 3)
}
"""


class Osa(nn.Module):
    """The same block by hand, as timm's OsaBlock and SequentialAppendList write it."""

    def __init__(self, in_chs: int, mid: int, out: int, n: int) -> None:
        super().__init__()
        self.reduction = nn.Conv2d(in_chs, mid, 1, bias=False) if in_chs != mid else None
        self.convs = nn.ModuleList([nn.Conv2d(mid, mid, 3, padding=1, bias=False) for _ in range(n)])
        self.concat = nn.Conv2d(in_chs + n * mid, out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x]
        if self.reduction is not None:
            x = self.reduction(x)
        for conv in self.convs:
            x = torch.relu(conv(x))
            outs.append(x)
        return self.concat(torch.cat(outs, 1))


def test_a_chain_through_a_list_after_an_optional_member_equals_the_hand_written_module(compile_arch: Any) -> None:
    # The list's items are built for the channels of its first input (the reduction's output where it exists); the
    # loop leaves x's channels unknown in its body, which once made compile fail (E073) on the widths of `convs`.
    compiled, module = compile_arch(OSA)
    model = module.model()
    reference = nn.Sequential(Osa(8, 4, 12, 2), Osa(12, 12, 16, 2), Osa(16, 6, 10, 3))
    assert [k.partition(".")[2] for k in model.state_dict()] == [k.partition(".")[2] for k in reference.state_dict()]
    model.load_state_dict(dict(zip(model.state_dict(), reference.state_dict().values(), strict=True)), strict=True)
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    assert_counts(compiled, model, reference=reference)
    assert_shapes_match_hooks(compiled, model)
    assert "x = self.convs[i](x)" in compiled.python()


# A stage loops on `i` over blocks whose width its caller computed from a loop variable also named `i`.
SAME_NAME = """
block Stage(out, depth) {
    for i in range(depth) {
        conv(out, 3, padding = 1)
        relu()
    }
}

block Stages(widths, depths) {
    for i in range(len(widths)) {
        Stage(widths[i], depths[i])
    }
}

arch Net() {
    input (3, 8, 8)
    stages = Stages([4, 8, 6], [1, 2, 1])
}
"""


def test_a_callees_loop_variable_named_like_the_callers_keeps_the_width_after_its_loop(compile_arch: Any) -> None:
    # The width after Stage's loop is its argument `widths[i]`, in the caller's `i`: not Stage's own `i` (which once
    # made it unknown, E073 at the member).
    compiled, module = compile_arch(SAME_NAME)
    model = module.model()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 4), (4, 8), (8, 8), (8, 6)]
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 6, 8, 8)
    assert_counts(compiled, model)
    assert_shapes_match_hooks(compiled, model)
    assert "channels = widths[i]" in compiled.python()


# The same block without its reduction (timm's VoVNet with 3×3 convolutions: ese_vovnet39b): the first item takes
# the block's input, each later one the item before's output, so the list's items are built in a chain.
CHAIN = """
block Convs(n, mid) {
    for i in range(n) {
        conv(mid, 3, padding = 1, bias = false)
    }
}

block Osa(mid, out, n = 2) {
    convs = Convs(n, mid)
    concat = conv(out, 1, bias = false)
    forward(x) {
        outs = [x]
        for i in range(n) {
            x = relu(convs[i](x))
            outs = outs + [x]
        }
        return concat(cat(outs))
    }
}

arch Net() {
    input (8, 8, 8)
    a = Osa(4, 12)
    b = Osa(12, 16)
    c = Osa(6, 10, n = 3)
}
"""


class ChainOsa(Osa):
    def __init__(self, in_chs: int, mid: int, out: int, n: int) -> None:
        super().__init__(in_chs, mid, out, n)
        self.reduction = None
        self.convs = nn.ModuleList([nn.Conv2d(in_chs if i == 0 else mid, mid, 3, padding=1, bias=False) for i in range(n)])


def test_items_applied_in_a_chain_are_built_each_for_the_item_before(compile_arch: Any) -> None:
    compiled, module = compile_arch(CHAIN)
    model = module.model()
    reference = nn.Sequential(ChainOsa(8, 4, 12, 2), ChainOsa(12, 12, 16, 2), ChainOsa(16, 6, 10, 3))
    assert [tuple(c.weight.shape[:2]) for c in model.c.convs] == [(6, 16), (6, 6), (6, 6)]
    assert isinstance(model.c.convs, nn.ModuleList)
    model.load_state_dict(dict(zip(model.state_dict(), reference.state_dict().values(), strict=True)), strict=True)
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    assert_counts(compiled, model, reference=reference)
    assert_shapes_match_hooks(compiled, model)
    assert count_macs(compiled.arch).macs * 2 == reference_flops(reference, (8, 8, 8))
    assert "channels = mid" in compiled.python()


# A list of two 1×1 convolutions to 2 channels, applied side by side (both items on the 4-channel input) in one
# block and in a chain (the second on the first's output) in another: one class cannot build both.
SIDE_AND_CHAIN = """
block Pair() {
    conv(2, 1)
    conv(2, 1)
}

block Side() {
    p = Pair()
    forward(x) = cat(p[0](x), p[1](x))
}

block Chain() {
    p = Pair()
    forward(x) = p[1](p[0](x))
}

arch Net() {
    input (4, 8, 8)
    s = Side()
    c = Chain()
    forward(x) = c(s(x))
}
"""


def test_a_list_applied_side_by_side_and_in_a_chain_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(SIDE_AND_CHAIN)
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert f"{spec}:14:18: error[E036]: the items of `p` take N×4×8×8 inputs and item 1 is applied here to N×2×8×8" in outcome.err
    assert f"{spec}:9:31: Pair's items take the list's first input each here" in outcome.err, outcome.err


# A chain whose items give different widths: the list's output width is no one size, so the class cannot write the
# joined width in its arguments' terms. With one instance it is that instance's number; with two that disagree, E073
# (never a module built with a wrong width).
WIDTHS = """
block Convs(widths) {
    for w in widths {
        conv(w, 3, padding = 1, bias = false)
    }
}

block Osa(widths, out) {
    convs = Convs(widths)
    concat = conv(out, 1, bias = false)
    forward(x) {
        outs = [x]
        for i in range(len(widths)) {
            x = convs[i](x)
            outs = outs + [x]
        }
        return concat(cat(outs))
    }
}

arch Net() {
    input (8, 8, 8)
    a = Osa([4, 6, 10], 12)
}
"""


def test_a_chain_of_items_of_different_widths_builds_the_join_for_its_width(compile_arch: Any, tmp_path: Path) -> None:
    compiled, module = compile_arch(WIDTHS)
    model = module.model()
    assert [tuple(c.weight.shape[:2]) for c in model.a.convs] == [(4, 8), (6, 4), (10, 6)]
    assert model.a.concat.in_channels == 8 + 4 + 6 + 10
    assert model(torch.randn(2, 8, 8, 8)).shape == (2, 12, 8, 8)
    assert_counts(compiled, model)
    assert_shapes_match_hooks(compiled, model)
    spec = tmp_path / "two.arch"
    spec.write_text(WIDTHS.replace("a = Osa([4, 6, 10], 12)", "a = Osa([4, 6, 10], 12)\n    b = Osa([3, 5], 16)"))
    outcome = run_cli("compile", str(spec), "-o", str(tmp_path / "out"))
    assert outcome.code == 1 and "error[E073]: the in_channels of `concat`" in outcome.err, outcome.err
    # The help speaks of the widths the instances' arguments give (8 + 4 + 6 + 10, and 12 + 3 + 5 after `a`), not
    # of pooling.
    assert "different channel counts (28, 20)" in outcome.err and "pool" not in outcome.err, outcome.err
    assert not (tmp_path / "out" / "two.py").exists()
