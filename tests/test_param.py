"""Learnable tensors of their own (`param`): torchvision's ConvNeXt block, layer scale and stochastic depth
included, loads strictly and computes the same, and the passes count the tensor as PyTorch does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.convnext import CNBlock as TorchvisionCNBlock

from archc.passes.macs import count_macs
from archc.passes.receptive_field import compute_receptive_fields
from tests.conftest import run_cli
from tests.test_language_cases import assert_pass_matches_module

SPEC = """
# Liu et al., "A ConvNet for the 2020s" (2022), as torchvision's CNBlock.
block CNBlock(dim, scale = 0.000001, stochastic_depth_prob = 0.0) {
    block = seq(
        conv(dim, 7, padding = 3, groups = dim),
        permute((0, 2, 3, 1)),
        layernorm(eps = 0.000001),
        linear(4 * dim),
        gelu(),
        linear(dim),
        permute((0, 3, 1, 2)),
    )
    layer_scale = param((dim, 1, 1), fill = scale)
    stochastic_depth = stochastic_depth(stochastic_depth_prob, mode = "row")
    forward(x) {
        result = layer_scale * block(x)
        result = stochastic_depth(result)
        return result + x
    }
}

arch Net() {
    input (16, 8, 8)
    b = CNBlock(16, scale = 0.5, stochastic_depth_prob = 0.25)
}
"""


def test_convnext_block_with_layer_scale_equals_torchvision(compile_arch: Any) -> None:
    compiled, module = compile_arch(SPEC)
    model = module.model()
    assert_pass_matches_module(compiled, model)
    reference = TorchvisionCNBlock(16, layer_scale=0.5, stochastic_depth_prob=0.25)
    torch.testing.assert_close(model.b.layer_scale, reference.layer_scale)  # the fill is the reference's
    torch.manual_seed(0)
    for p in reference.parameters():
        p.data.normal_(0, 0.5)
    model.b.load_state_dict(reference.state_dict(), strict=True)
    assert list(model.b.state_dict()) == list(reference.state_dict())
    x = torch.randn(4, 16, 8, 8)
    for mode in ("eval", "train"):
        getattr(model, mode)()
        getattr(reference, mode)()
        for scale in (1.0, 10.0):
            torch.manual_seed(1)
            ours = model(x * scale)
            torch.manual_seed(1)
            torch.testing.assert_close(ours, reference(x * scale))
    counter = FlopCounterMode(display=False)
    model.eval()
    with torch.no_grad(), counter:
        model(torch.randn(1, 16, 8, 8))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()
    assert compute_receptive_fields(compiled.arch).warnings == []


@pytest.mark.parametrize(
    ("shape", "ok"),
    [("(16, 1, 1)", True), ("(1, 16, 1, 1)", True), ("(16,)", False), ("(2, 16, 1, 1)", False)],
)
def test_a_learnable_tensor_broadcasts_as_pytorch_aligns_it(tmp_path: Path, shape: str, ok: bool) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(f"arch Net() {{\n    input (16, 4, 4)\n    s = param({shape}, fill = 1)\n    forward(x) = s * x\n}}\n")
    outcome = run_cli("check", str(spec))
    assert (outcome.code == 0) == ok, outcome.err
    if not ok:
        assert "error[E030]" in outcome.err and f"{spec}:4:" in outcome.err
        with pytest.raises(RuntimeError):  # PyTorch refuses it too, for a batch of another size
            torch.ones(eval(shape)) * torch.ones(3, 16, 4, 4)
    else:
        torch.ones(eval(shape)) * torch.ones(3, 16, 4, 4)


TIMM_BLOCK = """
# timm's ConvNeXtBlock: its layer scale `gamma` is a (C,) vector, reshaped in the forward to broadcast over a map.
block ConvNeXtBlock(dim) {
    conv_dw = conv(dim, 7, padding = 3, groups = dim)
    norm = layernorm(eps = 0.000001)
    mlp = seq(fc1 = linear(4 * dim), act = gelu(), fc2 = linear(dim))
    gamma = param((dim,), fill = 0.5)
    forward(x) {
        y = permute(mlp(norm(permute(conv_dw(x), (0, 2, 3, 1)))), (0, 3, 1, 2))
        return y * reshape(gamma, (1, -1, 1, 1)) + x
    }
}

arch Net() {
    input (16, 8, 8)
    b = ConvNeXtBlock(16)
}
"""


def test_a_learnable_tensor_reshaped_in_the_forward_equals_timms_layer_scale(compile_arch: Any) -> None:
    """`reshape(gamma, (1, -1, 1, 1))` reshapes the whole learnable tensor (it has no batch): timm's
    `x.mul(self.gamma.reshape(1, -1, 1, 1))`, the state_dict key and shape `gamma: (C,)` kept."""
    from timm.models.convnext import ConvNeXtBlock

    compiled, module = compile_arch(TIMM_BLOCK)
    model = module.model()
    assert "self.gamma.reshape(1, -1, 1, 1)" in compiled.python()
    assert_pass_matches_module(compiled, model)
    reference = ConvNeXtBlock(16, ls_init_value=0.5, conv_mlp=False)
    torch.testing.assert_close(model.b.gamma, reference.gamma)
    torch.manual_seed(0)
    for p in reference.parameters():
        p.data.normal_(0, 0.5)
    model.b.load_state_dict(reference.state_dict(), strict=True)
    assert model.b.gamma.shape == (16,)
    model.eval()
    reference.eval()
    for batch in (1, 3):  # a learnable tensor taken for a sample would broadcast against one batch size only
        x = torch.randn(batch, 16, 8, 8)
        torch.testing.assert_close(model(x), reference(x))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, 16, 8, 8))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()
