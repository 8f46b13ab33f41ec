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
