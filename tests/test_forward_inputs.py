"""Forwards taking several inputs (a tensor with a default, a list of tensors) and blocks that use themselves under an
`if` (DLA's tree of trees): the generated module against timm's own DlaTree (strict state_dict load, equal outputs),
shapes against forward hooks, parameters against `sum(numel)`, MACs against FlopCounterMode / 2, the receptive field
against input gradients, and the errors of misuse, located."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from timm.models.dla import DlaBasic, DlaTree
from torch import nn

from archc.passes.macs import count_macs
from archc.passes.receptive_field import compute_receptive_fields
from tests.conftest import run_cli
from tests.zoo_helpers import assert_counts, assert_shapes_match_hooks, randomize_batchnorm_statistics, reference_flops

torch.set_num_threads(1)

# DLA's blocks, in small: a basic block whose shortcut the tree may give, a root joining a list of children, and a tree
# of `levels` levels that uses itself.
TREE = """
block Basic(planes, stride = 1) {
    conv1 = conv(planes, 3, stride = stride, padding = 1, bias = false)
    bn1 = batchnorm()
    relu = relu(inplace = true)
    conv2 = conv(planes, 3, padding = 1, bias = false)
    bn2 = batchnorm()
    forward(x, shortcut = x) {
        out = relu(bn1(conv1(x)))
        return relu(bn2(conv2(out)) + shortcut)
    }
}

block Root(out_channels) {
    conv = conv(out_channels, 1, bias = false)
    bn = batchnorm()
    relu = relu(inplace = true)
    forward(xs = []) = relu(bn(conv(cat(xs))))
}

block Tree(levels, out_channels, stride = 1, level_root = false, root_dim = 0) {
    if stride > 1 {
        downsample = maxpool(stride, stride = stride)
    } else {
        downsample = identity()
    }
    if levels == 1 and in.channels != out_channels {
        project = seq(conv(out_channels, 1, bias = false), batchnorm())
    } else {
        project = identity()
    }
    if levels == 1 {
        tree1 = Basic(out_channels, stride)
        tree2 = Basic(out_channels)
        root = Root(out_channels)
    } else {
        tree1 = Tree(levels - 1, out_channels, stride, root_dim = 2 * out_channels)
        tree2 = Tree(levels - 1, out_channels, root_dim = root_dim + out_channels)
    }
    forward(x, children = []) {
        bottom = downsample(x)
        shortcut = project(bottom)
        if level_root {
            children = children + [bottom]
        }
        if levels == 1 {
            x1 = tree1(x, shortcut)
            x2 = tree2(x1)
            return root([x2, x1] + children)
        }
        x1 = tree1(x)
        return tree2(x1, children = children + [x1])
    }
}

arch Net(levels = 2, stride = 2) {
    input (8, 16, 16)
    a = Tree(levels, 12, stride, level_root = true, root_dim = 2 * 12 + 8)
    b = Tree(1, 12, root_dim = 24)
}
"""


class Net(nn.Module):
    """The same trees from timm's own classes."""

    def __init__(self, levels: int, stride: int) -> None:
        super().__init__()
        self.a = DlaTree(levels, DlaBasic, 8, 12, stride, level_root=True)
        self.b = DlaTree(1, DlaBasic, 12, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


@pytest.mark.parametrize(("levels", "stride"), [(1, 2), (2, 2), (3, 1)])
def test_a_tree_of_trees_equals_timms(compile_arch: Any, levels: int, stride: int) -> None:
    compiled, module = compile_arch(TREE, overrides={"levels": levels, "stride": stride})
    model = module.model(levels=levels, stride=stride)
    reference = Net(levels, stride)
    assert list(model.state_dict()) == list(reference.state_dict())
    torch.manual_seed(0)
    randomize_batchnorm_statistics(reference, affine=True)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    assert_counts(compiled, model, reference=reference)
    assert_shapes_match_hooks(compiled, model)
    assert count_macs(compiled.arch).macs * 2 == reference_flops(reference, (8, 16, 16))


def test_a_lone_tree_builds_itself_at_every_depth(compile_arch: Any) -> None:
    # One instance from the arch: its class still takes `levels` as an argument, since it builds itself at levels - 1.
    text = TREE.replace("    b = Tree(1, 12, root_dim = 24)\n", "")
    compiled, module = compile_arch(text)
    model = module.model().eval()
    reference = DlaTree(2, DlaBasic, 8, 12, 2, level_root=True)
    torch.manual_seed(0)
    randomize_batchnorm_statistics(reference, affine=True)
    model.a.load_state_dict(reference.state_dict(), strict=True)
    reference.eval()
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    assert_counts(compiled, model, reference=reference)


def test_the_generated_forwards_take_their_inputs_as_timm_does(compile_arch: Any) -> None:
    compiled, _ = compile_arch(TREE)
    source = compiled.python()
    assert "def forward(self, x: Tensor, shortcut: Tensor | None = None) -> Tensor:" in source
    assert "        if shortcut is None:\n            shortcut = x\n" in source
    assert "def forward(self, xs: list[Tensor]) -> Tensor:" in source
    assert "def forward(self, x: Tensor, children: list[Tensor] | None = None) -> Tensor:" in source
    assert "        if children is None:\n            children = []\n" in source
    assert "x1 = self.tree1(x, shortcut)" in source and "self.root([x2, x1] + children)" in source
    # One class for every depth: it builds itself, and the root's input size is the tree's argument.
    assert "self.tree1 = Tree(in_channels, levels - 1, out_channels, stride, root_dim=2 * out_channels)" in source
    assert "self.root = Root(root_dim, out_channels)" in source


def test_the_receptive_field_through_the_trees_matches_the_input_gradient(compile_arch: Any) -> None:
    compiled, module = compile_arch(TREE, overrides={"levels": 2, "stride": 1})
    model = module.model(levels=2, stride=1).eval().double()
    # Positive weights: every path adds to the gradient, none cancels another.
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.01, 0.05)
    # An input larger than the field, so that no border clips it.
    x = torch.ones(1, 8, 48, 48, dtype=torch.float64, requires_grad=True)
    model(x).sum(1)[0, 24, 24].backward()
    assert x.grad is not None
    reached = x.grad[0].abs().sum(0) > 0
    rows, cols = reached.any(1).nonzero().flatten(), reached.any(0).nonzero().flatten()
    extent = (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1)
    field = compute_receptive_fields(compiled.arch).output.as_dict()["size"]
    assert tuple(field) == extent


def test_fmt_keeps_the_inputs(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(TREE.lstrip())
    outcome = run_cli("fmt", "--check", str(spec))
    assert outcome.code == 0, outcome.err


def _spec(forward: str, callee: str = "forward(x, shortcut = x, children = []) = relu(x + shortcut)") -> str:
    return (
        "block B(w) {\n"
        "    c = conv(w, 1)\n"
        f"    {callee}\n"
        "}\n\n"
        "block A() {\n"
        "    b = B(4)\n"
        f"    forward(x) {{\n        {forward}\n    }}\n"
        "}\n\n"
        "arch Net() {\n    input (4, 8, 8)\n    A()\n}\n"
    )


@pytest.mark.parametrize(
    ("forward", "where", "code", "words"),
    [
        ("return b(x, x, [x], x)", "9:29", "E081", "member `b` takes 3 inputs (x, shortcut, children), given 4"),
        ("return b(x, short = x)", "9:21", "E081", "member `b` has no input `short`"),
        ("return b(x, x, shortcut = x)", "9:24", "E081", "input `shortcut` of member `b` is given twice"),
        ("return b(x, [x])", "9:21", "E086", "a list of tensors where a tensor is expected"),
        ("return b(x, x, x)", "9:24", "E081", "input `children` of member `b` is a list of tensors"),
    ],
)
def test_misapplied_inputs_are_located(tmp_path: Path, forward: str, where: str, code: str, words: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(_spec(forward, "forward(x, shortcut = x, children = []) = relu(c(cat([x] + children)) + shortcut)"))
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert f"{spec}:{where}:" in outcome.err and f"error[{code}]" in outcome.err and words in outcome.err, outcome.err


def test_an_input_without_default_must_be_given(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(_spec("return b(x)", "forward(x, shortcut) = relu(c(x) + shortcut)"))
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert f"{spec}:9:16:" in outcome.err and "error[E081]: input `shortcut` of member `b` is not given" in outcome.err, outcome.err


def test_an_op_member_takes_one_tensor(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text("arch Net() {\n    input (4, 8, 8)\n    c = conv(4, 1)\n    forward(x) = c(x, x)\n}\n")
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1 and f"{spec}:4:18:" in outcome.err and "member `c` is applied to one tensor" in outcome.err, outcome.err


def test_a_recursion_that_does_not_end_is_located_at_the_use(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(TREE.replace("tree1 = Tree(levels - 1,", "tree1 = Tree(levels + 1,"))
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert f"{spec}:37:17: error[E063]: block `Tree` uses itself over 50 deep" in outcome.err, outcome.err
    assert "Traceback" not in outcome.err


def test_a_use_of_itself_outside_any_if_is_refused_before_elaboration(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        "block T(n) {\n    conv(4, 1)\n    for i in range(n) {\n        T(n - 1)\n    }\n}\n\n"
        "arch Net() {\n    input (4, 8, 8)\n    T(2)\n}\n"
    )
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1 and f"{spec}:4:9: error[E060]: block `T` uses itself" in outcome.err, outcome.err


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        (
            "arch Net() {\n    input (4, 8, 8)\n    c = conv(4, 1)\n    forward(x, y = x) = c(x)\n}\n",
            "4:16",
            "an arch's forward takes one input, the image",
        ),
        (
            "block B() {\n    c = conv(4, 1)\n    forward(x = 1) = c(x)\n}\n\narch Net() {\n    input (4, 8, 8)\n    B()\n}\n",
            "3:17",
            "the first input, `x`, is always given",
        ),
        (
            "block B() {\n    c = conv(4, 1)\n    forward(x, y) = c(x) + y\n}\n\narch Net() = B() {\n    input (4, 8, 8)\n}\n",
            "3:16",
            "input `y` of `B` is not given",
        ),
    ],
)
def test_inputs_a_forward_cannot_take(tmp_path: Path, text: str, where: str, words: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(text)
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1 and f"{spec}:{where}: error[E081]: {words}" in outcome.err, outcome.err


def test_the_static_check_reports_every_misapplied_member_at_once(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(_spec("y = b(x, x, [x], x)\n        return b(x, short = x)"))
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert f"{spec}:9:26: error[E081]: member `b` takes 3 inputs" in outcome.err, outcome.err
    assert f"{spec}:10:21: error[E081]: member `b` has no input `short`" in outcome.err, outcome.err
