"""`if`/`else` in a forward, on values known when the module is built (torchvision's `use_res_connect`): one block
definition whose instances take either path, checked against torchvision's InvertedResidual."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual as TorchvisionInvertedResidual

from tests.conftest import run_cli
from tests.test_language_cases import assert_pass_matches_module

INVERTED_RESIDUAL = """
block ConvBNReLU(out_channels, kernel_size = 3, stride = 1, groups = 1) {
    conv(out_channels, kernel_size, stride = stride, padding = (kernel_size - 1) // 2, groups = groups, bias = false)
    batchnorm()
    relu(inplace = true)
}
# Sandler et al., "MobileNetV2" (2018): the residual exists only where the block keeps the shape.
block InvertedResidual(oup, stride, expand_ratio) {
    let hidden = in.channels * expand_ratio
    let use_res_connect = stride == 1 and in.channels == oup
    if expand_ratio != 1 {
        conv = seq(
            ConvBNReLU(hidden, 1),
            ConvBNReLU(hidden, stride = stride, groups = hidden),
            conv(oup, 1, bias = false),
            batchnorm(),
        )
    } else {
        conv = seq(ConvBNReLU(hidden, stride = stride, groups = hidden), conv(oup, 1, bias = false), batchnorm())
    }
    forward(x) {
        if use_res_connect {
            return x + conv(x)
        }
        return conv(x)
    }
}
arch Net() {
    input (16, 12, 12)
    a = InvertedResidual(16, 1, 6)
    b = InvertedResidual(24, 2, 6)
    c = InvertedResidual(24, 1, 1)
    forward(x) = c(b(a(x)))
}
"""


def reference(inp: int, oup: int, stride: int, expand_ratio: int) -> nn.Module:
    """torchvision's block with ReLU for ReLU6 (the spec above uses ReLU), statistics and affine randomised."""
    block = TorchvisionInvertedResidual(inp, oup, stride, expand_ratio)
    for module in list(block.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(module, name, nn.ReLU(inplace=True))
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.normal_(1, 0.3)
            m.bias.data.normal_(0, 0.3)
    return block.eval()


def test_one_block_takes_the_residual_only_where_the_shape_allows_it(compile_arch: Any) -> None:
    compiled, module = compile_arch(INVERTED_RESIDUAL)
    model = module.model().eval()
    assert_pass_matches_module(compiled, model)
    torch.manual_seed(0)
    for name, args in (("a", (16, 16, 1, 6)), ("b", (16, 24, 2, 6)), ("c", (24, 24, 1, 1))):
        ref = reference(*args)
        mine = getattr(model, name)
        mine.load_state_dict(ref.state_dict(), strict=True)
        assert mine.use_res_connect == ref.use_res_connect
        x = torch.randn(2, args[0], 12, 12) * 3
        with torch.no_grad():
            assert torch.allclose(mine(x), ref(x), atol=1e-5)
    source = compiled.python()
    assert source.count("class InvertedResidual") == 1
    assert "if self.use_res_connect:" in source


@pytest.mark.parametrize(
    ("forward", "expected"),
    [
        ("if x { return c(x) }\n        return x", "E042:5:"),  # a tensor is no build-time condition
        ("if true { y = c(x) } else { z = c(x) }\n        return y", "E010:6:"),  # y is not bound on the else path
    ],
)
def test_forward_if_errors_are_located(tmp_path: Path, forward: str, expected: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(f"arch Net() {{\n    input (3, 8, 8)\n    c = conv(3, 1)\n    forward(x) {{\n        {forward}\n    }}\n}}\n")
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1
    code, line = expected.split(":", 1)
    assert f"error[{code}]" in outcome.err
    assert f"{spec}:{line}" in outcome.err


def test_a_branch_that_returns_leaves_the_other_branch_names_bound(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        "arch Net(skip = false) {\n    input (3, 8, 8)\n    c = conv(3, 1)\n    forward(x) {\n"
        "        if skip { return x } else { y = c(x) }\n        return y\n    }\n}\n"
    )
    outcome = run_cli("check", str(spec))
    assert outcome.code == 0, outcome.err


SPLIT_SUM = """
block Split(out, radix = 2) {
    conv = conv(out * radix, 3, padding = 1, bias = false)
    forward(x) {
        x = conv(x)
        if radix > 1 {
            x = unflatten(x, 1, (radix, -1))
            return sum(x, 1)
        }
        return x
    }
}
block Outer(out, radix = 2) {
    split = Split(out, radix = radix)
    after = conv(8, 1)
}
arch Net(radix = 2) {
    input (3, 8, 8)
    o = Outer(4, radix = radix)
}
"""


@pytest.mark.parametrize("radix", [1, 2, 3])
def test_a_block_whose_size_depends_on_a_path_that_returns_early(compile_arch: Any, radix: int) -> None:
    """A forward `if` that returns on one path: the caller's class sizes the next member for either path, in its
    own constructor's terms (it wrote `self.radix`, an attribute of the callee, and the size of the other path)."""
    compiled, module = compile_arch(SPLIT_SUM, overrides={"radix": radix})
    model = module.model()
    out = model(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 8, 8, 8)
    assert model.o.after.in_channels == 4  # the channels PyTorch gives: out * radix summed over radix, or out
    assert sum(p.numel() for p in model.parameters()) == compiled.params.params
    # The class itself, built at another radix than the spec's, is still right.
    other = module.Outer(3, 4, radix=5 - radix)
    assert other(torch.randn(1, 3, 8, 8)).shape == (1, 8, 8, 8)
