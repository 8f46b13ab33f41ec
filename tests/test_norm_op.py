"""The `norm` op, the p-norm over dimensions (`torch.linalg.vector_norm`), and its import from `x.norm(...)`,
`torch.norm(...)` and `torch.linalg.vector_norm(...)`: ConvNeXt V2's Global Response Norm. Shapes against forward
hooks, parameters against `sum(numel)`, MACs against the flop counter, values against PyTorch's own norms written
by hand, the receptive field against input gradients, and the import of timm's GlobalResponseNorm round-tripped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from archc.passes.macs import count_macs
from archc.passes.receptive_field import compute_receptive_fields
from tests.conftest import run_cli
from tests.zoo_helpers import assert_counts, assert_shapes_match_hooks

torch.set_num_threads(1)

SPEC = """
# Global response norm (Woo et al., ConvNeXt V2, 2023) on a C×H×W map, as timm's GlobalResponseNorm without channels_last.
block Grn(c) {
    weight = param((c,), fill = 0.5)
    bias = param((c,), fill = 0.25)
    forward(x) {
        g = norm(x, (2, 3), keepdim = true)
        n = g / (mean(g, 1, keepdim = true) + 0.000001)
        return x + (reshape(bias, (1, -1, 1, 1)) + reshape(weight, (1, -1, 1, 1)) * (x * n))
    }
}

# Each norm in a block of its own, so that a forward hook sees its output.
block SpatialL1() {
    forward(x) = norm(x, (2, 3), keepdim = true, p = 1)
}

block Across() {
    forward(x) = norm(x, 1)
}

block Last() {
    forward(x) = norm(x, -1, p = 1)
}

arch Net() {
    input (3, 8, 8)
    c = conv(12, 3, padding = 1)
    grn = Grn(12)
    spatial_l1 = SpatialL1()
    across = Across()
    last = Last()
    forward(x) {
        y = grn(c(x))
        a = spatial_l1(y)
        b = across(c(x))
        d = last(permute(y, (0, 2, 3, 1)))
        return cat(flatten(a, 1), flatten(b, 1), flatten(d, 1), dim = 1)
    }
}
"""


def by_hand(model: Any, x: torch.Tensor) -> torch.Tensor:
    """SPEC's forward written with PyTorch's own norms (`Tensor.norm` and `torch.norm`)."""
    y = model.c(x)
    g = y.norm(p=2, dim=(2, 3), keepdim=True)
    n = g / (g.mean(dim=1, keepdim=True) + 1e-6)
    y = y + torch.addcmul(model.grn.bias.view(1, -1, 1, 1), model.grn.weight.view(1, -1, 1, 1), y * n)
    a = torch.norm(y, p=1, dim=(2, 3), keepdim=True)
    b = model.c(x).norm(p=2, dim=1)
    d = y.permute(0, 2, 3, 1).abs().sum(dim=-1)
    return torch.cat([a.flatten(1), b.flatten(1), d.flatten(1)], dim=1)


def test_norm_computes_what_pytorch_computes(compile_arch: Any) -> None:
    compiled, module = compile_arch(SPEC)
    assert "torch.linalg.vector_norm(x, dim=(2, 3), keepdim=True)" in compiled.python()
    assert "torch.linalg.vector_norm(x, ord=1, dim=(2, 3), keepdim=True)" in compiled.python()
    model = module.model().eval()
    torch.manual_seed(0)
    for p in model.parameters():
        p.data.normal_(0, 0.5)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        ours, expected = model(x), by_hand(model, x)
    torch.testing.assert_close(ours, expected)
    assert tuple(compiled.arch.nodes[compiled.arch.outputs[0]].shape) == tuple(ours.shape[1:])


def test_norm_shapes_params_and_macs_match_pytorch(compile_arch: Any) -> None:
    compiled, module = compile_arch(SPEC)
    model = module.model().eval()
    assert_shapes_match_hooks(compiled, model)  # spatial_l1: 12×1×1, across: 8×8, last: 8×8
    assert_counts(compiled, model)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 8, 8))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()


def test_a_norm_over_positions_sees_the_whole_image_and_one_over_channels_does_not(compile_arch: Any) -> None:
    compiled, module = compile_arch(SPEC)
    model = module.model().eval()
    report = compute_receptive_fields(compiled.arch)
    field = {n.scope: report.per_node[n.id] for n in compiled.arch.nodes if n.op == "norm"}
    paths = {"spatial_l1": lambda x: model.spatial_l1(model.grn(model.c(x))), "across": lambda x: model.across(model.c(x))}
    for name, whole in (("spatial_l1", True), ("across", False)):
        x = torch.randn(1, 3, 8, 8, requires_grad=True)
        out = paths[name](x)
        (out[0, 0, 0, 0] if whole else out[0, 4, 4]).backward()
        assert x.grad is not None
        reached = (x.grad[0].abs().sum(0) > 0).nonzero()
        rows, cols = int(reached[:, 0].max() - reached[:, 0].min() + 1), int(reached[:, 1].max() - reached[:, 1].min() + 1)
        if whole:
            assert (rows, cols) == (8, 8)
            assert (field[name].h.size, field[name].w.size) == (8 + 2, 8 + 2)  # every pixel and the conv's padding
        else:
            assert (field[name].h.size, field[name].w.size) == (rows, cols) == (3, 3)


@pytest.mark.parametrize(
    ("call", "code", "words"),
    [
        ("norm(c(x), (2, 3), p = 3)", "E016", "`p` must be 1 or 2"),
        ("norm(c(x), 0)", "E038", "is the batch dimension"),
        ("norm(c(x), (1, 4))", "E038", "norm"),
    ],
)
def test_norm_errors_are_located(tmp_path: Path, call: str, code: str, words: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        f"arch Net() {{\n    input (3, 8, 8)\n    c = conv(12, 3, padding = 1)\n    forward(x) {{\n        return {call}\n    }}\n}}\n"
    )
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert f"{spec}:5:" in outcome.err and f"error[{code}]" in outcome.err and words in outcome.err, outcome.err
    assert "Traceback" not in outcome.err


def test_norm_is_no_member(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text("arch Net() {\n    input (3, 8, 8)\n    n = norm((2, 3))\n}\n")
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1 and f"{spec}:3:9: error[E082]: `norm` is applied inline" in outcome.err, outcome.err


GRN_MODEL = """
import torch
from torch import nn
from timm.layers.grn import GlobalResponseNorm


class GrnNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.grn = GlobalResponseNorm(16, channels_last=False)
        self.fc1 = nn.Linear(16, 32)
        self.grn_last = GlobalResponseNorm(32, channels_last=True)
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        x = self.grn(self.stem(x))
        x = self.grn_last(self.fc1(x.permute(0, 2, 3, 1)))
        x = x / torch.norm(x, dim=-1, keepdim=True)
        x = x * torch.linalg.vector_norm(x, 1, dim=(1, 2), keepdim=True)
        return self.fc(x.mean((1, 2)))
"""


def test_timm_global_response_norm_imports_as_norm_and_round_trips(tmp_path: Path) -> None:
    """timm's GlobalResponseNorm in both layouts (`x.norm(p=2, dim=self.spatial_dim, keepdim=True)`), `torch.norm` with
    its default p ("fro", the Euclidean norm over named dimensions) and `torch.linalg.vector_norm` with ord 1."""
    from archc.tools.importer import import_source, round_trip

    (tmp_path / "grn_net.py").write_text(GRN_MODEL, encoding="utf-8")
    text, _ = import_source(f"{tmp_path / 'grn_net.py'}:GrnNet", (3, 32, 32))
    assert "norm(x, (2, 3), keepdim = true)" in text and "norm(x, (1, 2), keepdim = true)" in text, text
    assert "norm(x, -1, keepdim = true)" in text and "(1, 2), keepdim = true, p = 1)" in text, text
    verdict = round_trip(f"{tmp_path / 'grn_net.py'}:GrnNet")
    assert verdict.verdict == "equal", verdict.reason


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("x.norm(p=float('inf'), dim=1)", "`norm` with p=inf"),
        ("torch.linalg.vector_norm(x, 3, dim=1)", "`norm` with p=3"),
        ("x.norm(dim=None)", "`norm` over every dimension"),
        ("x.norm(dim=(0, 1))", "`norm` over the batch"),
    ],
)
def test_norms_the_language_lacks_are_import_errors(tmp_path: Path, expr: str, words: str) -> None:
    (tmp_path / "odd.py").write_text(
        "import torch\nfrom torch import nn\n\n\nclass Odd(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        f"        self.stem = nn.Conv2d(3, 8, 4, stride=4)\n\n    def forward(self, x):\n        x = self.stem(x)\n        return {expr}\n",
        encoding="utf-8",
    )
    outcome = run_cli("import", f"{tmp_path / 'odd.py'}:Odd", "--input", "3x16x16")
    assert outcome.code == 1 and "error[E120]" in outcome.err and words in outcome.err, outcome.err
    assert "Traceback" not in outcome.err
