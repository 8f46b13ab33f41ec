"""Stochastic depth as torchvision.ops.StochasticDepth: the same draws in training (same generator state), the
identity in eval, as a member and inline, and gone from the inference build."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torchvision.ops import StochasticDepth as TorchvisionStochasticDepth

from archc.compiler import compile_spec
from archc.errors import ArchError
from tests.test_language_cases import assert_pass_matches_module

SPEC = """
block Residual(p, mode) {
    conv = conv(in.channels, 3, padding = 1)
    drop = stochastic_depth(p, mode = mode)
    forward(x) = x + drop(conv(x))
}
arch Net(p = 0.3, mode = "row") {
    input (4, 8, 8)
    a = Residual(p, mode)
    b = conv(4, 1)
    forward(x) = stochastic_depth(b(a(x)), 0.5, mode = mode)
}
"""


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_draws_as_torchvision_in_training_and_passes_through_in_eval(compile_arch: Any, mode: str) -> None:
    compiled, module = compile_arch(SPEC, overrides={"mode": mode})
    model = module.model(mode=mode)
    assert_pass_matches_module(compiled, model)
    assert repr(model.a.drop) == repr(TorchvisionStochasticDepth(0.3, mode))
    x = torch.randn(16, 4, 8, 8)
    model.train()
    torch.manual_seed(1)
    ours = model(x)
    torch.manual_seed(1)
    branch = TorchvisionStochasticDepth(0.3, mode).train()(model.a.conv(x))
    expected = TorchvisionStochasticDepth(0.5, mode).train()(model.b(x + branch))
    torch.testing.assert_close(ours, expected)
    zeroed = (ours.flatten(1) == 0).all(1)
    assert 0 < int(zeroed.sum()) < 16 if mode == "row" else True  # rows are dropped one by one
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.b(x + model.a.conv(x)))


def test_the_inference_build_has_no_stochastic_depth(tmp_path: Any) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(SPEC)
    compiled = compile_spec(spec)
    source = compiled.inference_python()
    assert "stochastic_depth" not in source and "StochasticDepth" not in source
    assert "StochasticDepth(" in compiled.python()


def test_stochastic_depth_mode_is_checked(compile_arch: Any) -> None:
    with pytest.raises(ArchError, match='"row" .* or "batch"'):
        compile_arch(SPEC, overrides={"mode": "rows"})


# torchvision's MBConv: `self.stochastic_depth` exists in every block and runs only where `use_res_connect`.
RESIDUAL_ONLY = """
block MBlock(out_channels, stride, p) {
    let use_res_connect = stride == 1 and in.channels == out_channels
    block = conv(out_channels, 3, stride = stride, padding = 1)
    stochastic_depth = stochastic_depth(p, "row")
    forward(x) {
        if use_res_connect {
            return stochastic_depth(block(x)) + x
        }
        return block(x)
    }
}
arch Net() {
    input (4, 8, 8)
    a = MBlock(8, 2, 0.1)
    b = MBlock(8, 1, 0.2)
}
"""


def test_a_weightless_member_applied_in_a_branch_not_taken_still_exists(compile_arch: Any) -> None:
    compiled, module = compile_arch(RESIDUAL_ONLY)
    model = module.model()
    assert_pass_matches_module(compiled, model)
    tree = [m.path for m in _walk(compiled.arch.root)]
    assert "a.stochastic_depth" in tree and "b.stochastic_depth" in tree
    assert [n.module for n in compiled.arch.nodes if n.op == "stochastic_depth"] == ["b.stochastic_depth"]
    assert repr(model.a.stochastic_depth) == repr(TorchvisionStochasticDepth(0.1, "row"))
    assert repr(model.b.stochastic_depth) == repr(TorchvisionStochasticDepth(0.2, "row"))


def _walk(module: Any) -> Any:
    yield module
    for child in module.children:
        yield from _walk(child)


@pytest.mark.parametrize("member", ['extra = stochastic_depth(p, "row")', "extra = conv(8, 1)"], ids=["never applied", "with weights"])
def test_a_member_no_branch_applies_or_one_with_weights_is_still_unused(compile_arch: Any, member: str) -> None:
    declared = 'stochastic_depth = stochastic_depth(p, "row")'
    spec = RESIDUAL_ONLY.replace(declared, f"{declared}\n    {member}")
    if "conv" in member:
        spec = spec.replace("return stochastic_depth(block(x)) + x", "return stochastic_depth(block(extra(x))) + x")
    with pytest.raises(ArchError, match="E021|never used") as info:
        compile_arch(spec)
    assert info.value.code == "E021"


def test_a_weightless_member_of_a_branch_no_instance_takes_is_unused(compile_arch: Any) -> None:
    spec = RESIDUAL_ONLY.replace("let use_res_connect = stride == 1 and in.channels == out_channels", "let use_res_connect = false")
    with pytest.raises(ArchError) as info:
        compile_arch(spec)
    assert info.value.code == "E021"
