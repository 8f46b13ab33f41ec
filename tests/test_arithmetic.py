"""Elementwise arithmetic in a forward: tensor with tensor (PyTorch's broadcasting) and tensor with number, checked
against PyTorch: outputs, shapes through forward hooks, parameters, MACs against the flop counter, and the field."""

from __future__ import annotations

from typing import Any

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from archc.passes.macs import count_macs
from archc.passes.receptive_field import compute_receptive_fields
from tests.test_language_cases import assert_pass_matches_module

SQUEEZE_EXCITATION = """
# Hu et al., "Squeeze-and-Excitation Networks" (2018), as torchvision.ops.SqueezeExcitation writes it.
block SqueezeExcitation(input_channels, squeeze_channels) {
    avgpool = adaptive_avgpool(1)
    fc1 = conv(squeeze_channels, 1)
    fc2 = conv(input_channels, 1)
    activation = relu()
    scale_activation = sigmoid()
    forward(x) {
        scale = scale_activation(fc2(activation(fc1(avgpool(x)))))
        return scale * x
    }
}
arch Net() {
    input (16, 12, 12)
    conv = conv(16, 3, padding = 1)
    se = SqueezeExcitation(16, 4)
    forward(x) = se(conv(x))
}
"""


def test_squeeze_excitation_broadcasts_like_torchvision(compile_arch: Any) -> None:
    compiled, module = compile_arch(SQUEEZE_EXCITATION)
    model = module.model().eval()
    assert_pass_matches_module(compiled, model)
    reference = torchvision.ops.SqueezeExcitation(16, 4).eval()
    torch.manual_seed(0)
    for p in reference.parameters():
        p.data.normal_(0, 1)
    model.se.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(3, 16, 12, 12) * 5
    with torch.no_grad():
        assert torch.allclose(model.se(x), reference(x), atol=1e-5)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, 16, 12, 12))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()
    # The scale reaches every position: the output's field is the whole input. Small positive weights keep the
    # sigmoid away from saturation, where float arithmetic would make the gradient exactly 0.
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.01, 0.05)
    x = torch.ones(1, 16, 12, 12, requires_grad=True)
    model.double()(x.double()).sum(1)[0, 6, 6].backward()
    assert x.grad is not None
    reached = x.grad[0].abs().sum(0) > 0
    assert bool(reached.all())
    field = compute_receptive_fields(compiled.arch).output.as_dict()["size"]
    assert min(field) >= 12
    assert compute_receptive_fields(compiled.arch).warnings == []


ARITHMETIC = """
arch Net() {
    input (4, 6, 6)
    a = conv(4, 1)
    b = conv(4, 1)
    pool = adaptive_avgpool(1)
    forward(x) {
        p = a(x)
        q = b(x)
        s = pool(q)
        return (p - q) * (p / (s * s + 1)) + (6 - p) / 2 + 3 * q - s - 0.5
    }
}
"""


def test_tensor_and_number_arithmetic_follows_python_precedence_and_order(compile_arch: Any) -> None:
    compiled, module = compile_arch(ARITHMETIC)
    model = module.model().eval()
    assert_pass_matches_module(compiled, model)
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        p, q = model.a(x), model.b(x)
        s = q.mean((2, 3), keepdim=True)
        expected = (p - q) * (p / (s * s + 1)) + (6 - p) / 2 + 3 * q - s - 0.5
        assert torch.allclose(model(x), expected, atol=1e-5)
    assert compiled.arch.nodes[compiled.arch.outputs[0]].shape == [4, 6, 6]
    ops = [n.op for n in compiled.arch.nodes if n.op in ("add", "sub", "mul", "div")]
    assert sorted(set(ops)) == ["add", "div", "mul", "sub"]


def test_the_generated_forward_writes_the_operators(compile_arch: Any) -> None:
    compiled, _ = compile_arch(ARITHMETIC)
    source = compiled.python()
    assert "(6 - " not in source  # each operation on its own line, as torchvision writes a forward
    assert " - 0.5" in source and "6 - " in source and " / 2" in source and "3 * " in source
