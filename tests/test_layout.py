"""Tensors of any layout: permute, transpose, flatten over any dimensions, unflatten, layernorm over the last
dimension and over a map's channels, linear on the last dimension. Checked against torchvision's ConvNeXt block,
LayerNorm2d and ShuffleNetV2's channel shuffle, against forward hooks and the flop counter, and the errors that keep
a map's ops off a permuted tensor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.convnext import CNBlock, LayerNorm2d
from torchvision.models.shufflenetv2 import channel_shuffle

from archc.passes.macs import count_macs
from tests.conftest import run_cli
from tests.test_language_cases import assert_pass_matches_module

SPEC = """
# Liu et al., "A ConvNet for the 2020s" (2022): the ConvNeXt block's body, channels last in the middle.
block CNBody(dim) {
    block = seq(
        conv(dim, 7, padding = 3, groups = dim),
        permute((0, 2, 3, 1)),
        layernorm(eps = 0.000001),
        linear(4 * dim),
        gelu(),
        linear(dim),
        permute((0, 3, 1, 2)),
    )
    forward(x) = x + block(x)
}

arch Net(groups = 4) {
    input (3, 32, 32)
    stem = seq(conv(16, 4, stride = 4), layernorm2d(eps = 0.000001))
    body = CNBody(16)
    norm = layernorm()
    head = linear(10)
    forward(x) {
        y = body(stem(x))
        s = unflatten(y, 1, (groups, -1))
        s = transpose(s, 1, 2)
        s = flatten(s, 1, 2)
        t = transpose(flatten(s, 2), 1, 2)
        return head(flatten(norm(t), 1))
    }
}
"""


def randomise(module: torch.nn.Module) -> None:
    for p in module.parameters():
        p.data.normal_(0, 0.5)


def test_layouts_match_torchvision_convnext_and_shufflenet(compile_arch: Any) -> None:
    compiled, module = compile_arch(SPEC)
    model = module.model().eval()
    assert_pass_matches_module(compiled, model)
    torch.manual_seed(0)
    reference = CNBlock(16, layer_scale=1.0, stochastic_depth_prob=0.0).eval()
    randomise(reference)
    model.body.block.load_state_dict(reference.block.state_dict(), strict=True)
    stem_norm = LayerNorm2d(16, eps=1e-6)
    randomise(stem_norm)
    model.stem[1].load_state_dict(stem_norm.state_dict(), strict=True)
    for scale in (1.0, 10.0):
        x = torch.randn(2, 3, 32, 32) * scale
        with torch.no_grad():
            y = model.stem[0](x)
            torch.testing.assert_close(model.stem[1](y), stem_norm(y))
            z = model.stem(x)
            torch.testing.assert_close(model.body(z), z + reference.block(z))
            body = model.body(z)
            shuffled = channel_shuffle(body, 4)
            tokens = shuffled.flatten(2).transpose(1, 2)
            expected = model.head(model.norm(tokens).flatten(1))
            torch.testing.assert_close(model(x), expected)


def test_linear_on_tokens_counts_every_row(compile_arch: Any) -> None:
    compiled, module = compile_arch(SPEC)
    model = module.model().eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, 3, 32, 32))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()


def test_the_generated_code_reads_like_torchvision(compile_arch: Any) -> None:
    compiled, _ = compile_arch(SPEC)
    source = compiled.python()
    assert "Permute([0, 2, 3, 1])," in source and "class Permute(nn.Module):" in source
    assert "LayerNorm2d(16, eps=1e-06)" in source and "class LayerNorm2d(nn.LayerNorm):" in source
    assert "torch.unflatten(y, 1, (groups, -1))" in source or "torch.unflatten(y, 1, (self.groups, -1))" in source
    assert "torch.flatten(s, 1, 2)" in source


def test_flattening_tokens_gives_every_unit_the_whole_image(compile_arch: Any) -> None:
    from archc.passes.receptive_field import compute_receptive_fields

    compiled, module = compile_arch(SPEC)
    model = module.model().double().eval()
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    model(x)[0, 0].backward()
    assert x.grad is not None
    assert bool((x.grad[0].abs().sum(0) > 0).all())
    size = compute_receptive_fields(compiled.arch).output.as_dict()["size"]
    assert min(size) >= 32


@pytest.mark.parametrize(
    ("forward", "line", "code", "words"),
    [
        # A member's error points at its declaration, as for any member built for the wrong input.
        ("c(permute(x, (0, 2, 3, 1)))", 3, "E035", "channels first"),
        ("bn(permute(x, (0, 2, 3, 1)))", 4, "E035", "normalises dimension 1"),
        ("fc(x)", 5, "E034", "maps the last dimension"),
        ("permute(x, (1, 0, 2, 3))", 6, "E038", "batch dimension 0 stays first"),
        ("permute(x, (0, 1, 2))", 6, "E038", "order the 4 dimensions"),
        ("transpose(x, 0, 1)", 6, "E038", "batch dimension"),
        ("flatten(x, 2, 1)", 6, "E038", "end_dim 1 comes before start_dim 2"),
        ("unflatten(x, 1, (2, 2))", 6, "E016", "do not multiply"),
    ],
)
def test_layout_errors_are_located(tmp_path: Path, forward: str, line: int, code: str, words: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        "arch Net() {\n    input (3, 8, 8)\n    c = conv(3, 1)\n    bn = batchnorm()\n    fc = linear(4)\n"
        f"    forward(x) = {forward}\n}}\n"
    )
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert f"{spec}:{line}:" in outcome.err and f"error[{code}]" in outcome.err and words in outcome.err, outcome.err


CHUNK = """
arch Net() {
    input (4, 8, 8)
    c = conv(2, 1)
    forward(x) {
        a, b = chunk(x, 2, dim = 1)
        return cat(a, c(b))
    }
}
"""


def test_chunk_unpacks_as_torch_chunk(compile_arch: Any) -> None:
    compiled, module = compile_arch(CHUNK)
    model = module.model().eval()
    assert_pass_matches_module(compiled, model)
    x = torch.randn(2, 4, 8, 8)
    a, b = x.chunk(2, dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.cat([a, model.c(b)], 1))
    assert "a, b = torch.chunk(x, 2, 1)" in compiled.python()


@pytest.mark.parametrize(
    ("statement", "line", "code", "words"),
    [
        ("a, b = chunk(x, 3, dim = 1)", 5, "E081", "gives 3 tensors here, and 2 names"),
        ("a, b = chunk(x, 2, dim = 2)", 5, "E016", "does not split into 2 equal parts"),
        ("a = relu(chunk(x, 2, dim = 1))", 5, "E086", "a list of tensors where a tensor is expected"),
        ("a, b = c(x)", 5, "E081", "names take the tensors of an op that returns several"),
    ],
)
def test_unpacking_errors_are_located(tmp_path: Path, statement: str, line: int, code: str, words: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        f"arch Net() {{\n    input (6, 7, 8)\n    c = conv(2, 1)\n    forward(x) {{\n        {statement}\n        return x\n    }}\n}}\n"
    )
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert f"{spec}:{line}:" in outcome.err and f"error[{code}]" in outcome.err and words in outcome.err, outcome.err


def test_chunk_is_no_member(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text("arch Net() {\n    input (4, 8, 8)\n    s = chunk(2, dim = 1)\n}\n")
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1 and "error[E082]" in outcome.err and "x1, x2 = chunk(x, 2, dim = 1)" in outcome.err


def test_a_block_on_flat_features_normalises_them_as_batchnorm1d(compile_arch: Any) -> None:
    """A block whose instances take flat features is written for flat features: its batchnorm is BatchNorm1d (a
    BatchNorm2d refuses a 2-D batch), checked by running the generated module against the same layers by hand."""
    compiled, module = compile_arch(
        "block Head(n) {\n    bn = batchnorm()\n    fc = linear(n)\n}\n"
        "arch Net() {\n    input (3, 8, 8)\n    c = conv(4, 3)\n    f = flatten()\n    head = Head(10)\n}\n"
    )
    model = module.model().eval()
    assert isinstance(model.head.bn, torch.nn.BatchNorm1d)
    assert_pass_matches_module(compiled, model)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.head.fc(model.head.bn(model.c(x).flatten(1))))
