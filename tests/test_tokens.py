"""Tokens and the ops that reshape them: reductions (`mean`, `amax`), `reshape`, indexing and slicing (`x[:, 0]`),
`split`, `cat` on any dimension (a learnable tensor expanded to the batch), and multi-head self-attention (`mha`).
Each is checked against PyTorch running the same computation written by hand, against forward hooks, `sum(numel)`,
the flop counter (attention through PyTorch's math kernel, whose matrix products it counts) and input gradients;
and the small ViT against torchvision's VisionTransformer built with the same sizes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.vision_transformer import VisionTransformer

from archc.compiler import compile_spec
from archc.passes.macs import count_macs
from archc.passes.receptive_field import compute_receptive_fields
from tests.conftest import load_source, run_cli
from tests.zoo_helpers import assert_counts, assert_equals_reference, assert_shapes_match_hooks, counted_attention

torch.set_num_threads(1)

SPECS = Path(__file__).resolve().parent.parent / "specs"

OPS_SPEC = """
arch Net() {
    input (3, 8, 8)
    c = conv(12, 3, padding = 1)
    cls = param((1, 1, 12), fill = 0.5)
    attn = mha(3)
    forward(x) {
        y = c(x)
        t = permute(flatten(y, 2), (0, 2, 1))
        t = cat(cls, t, dim = 1)
        t = t + attn(t)
        m = mean(y, (2, 3), keepdim = true)
        a = amax(y, -1)
        r = reshape(y, (4, -1))
        p, q = split(r, (1, 3), dim = 1)
        s = t[:, 1:, ::2]
        return cat(flatten(m, 1), flatten(a, 1), flatten(q, 1), flatten(s, 1), t[:, 0], dim = 1)
    }
}
"""


def by_hand(model: Any, x: torch.Tensor) -> torch.Tensor:
    """The forward of OPS_SPEC written directly in PyTorch."""
    y = model.c(x)
    t = y.flatten(2).transpose(1, 2)
    t = torch.cat([model.cls.expand(x.shape[0], -1, -1), t], dim=1)
    t = t + model.attn(t, t, t, need_weights=False)[0]
    m = y.mean(dim=(2, 3), keepdim=True)
    a = y.amax(dim=-1)
    r = y.reshape(x.shape[0], 4, -1)
    _, q = r.split([1, 3], dim=1)
    s = t[:, 1:, ::2]
    return torch.cat([m.flatten(1), a.flatten(1), q.flatten(1), s.flatten(1), t[:, 0]], dim=1)


def flops_math(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward with attention through PyTorch's math kernel (plain matrix products the counter sees;
    the fused CPU kernel has no flop rule in the counter; nn.MultiheadAttention's fused fast path off)."""
    with torch.no_grad(), counted_attention(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def test_token_ops_compute_what_pytorch_computes(compile_arch: Any) -> None:
    compiled, module = compile_arch(OPS_SPEC)
    model = module.model().eval()
    torch.manual_seed(0)
    for p in model.parameters():
        p.data.normal_(0, 0.5)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        ours, expected = model(x), by_hand(model, x)
    torch.testing.assert_close(ours, expected)
    assert tuple(compiled.arch.nodes[compiled.arch.outputs[0]].shape) == tuple(ours.shape[1:])
    assert_counts(compiled, model)
    assert count_macs(compiled.arch).macs * 2 == flops_math(model, torch.randn(1, 3, 8, 8))
    shapes = {n.name: tuple(n.shape) for n in compiled.arch.nodes}
    assert shapes["mean"] == (12, 1, 1) and shapes["amax"] == (12, 8) and shapes["reshape"] == (4, 192)
    assert shapes["split"] == (1, 192) and shapes["split_1"] == (3, 192) and shapes["index"] == (64, 6)


def test_attention_and_reductions_see_the_whole_image(compile_arch: Any) -> None:
    """The receptive field after attention, or a mean over positions, is every pixel: checked by input gradients."""
    compiled, module = compile_arch(OPS_SPEC)
    model = module.model().eval()
    fields = {n.name: n for n in compiled.arch.nodes}
    report = compute_receptive_fields(compiled.arch)
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    y = model.c(x)
    t = y.flatten(2).transpose(1, 2)
    t = torch.cat([model.cls.expand(1, -1, -1), t], dim=1)
    a = model.attn(t, t, t, need_weights=False)[0]
    a[0, 5].sum().backward()  # one token after attention
    assert x.grad is not None
    reached = x.grad[0].abs().sum(0) > 0
    assert bool(reached.all())
    field = report.per_node[fields["attn"].id]
    assert (field.h.size, field.w.size) == (8 + 2, 8 + 2)  # the whole padded map: every pixel and the padding
    mean = report.per_node[fields["mean"].id]
    assert (mean.h.size, mean.w.size) == (10, 10) and mean.h.jump == 0


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ("return c(x)[0]", "E038", "keeps the batch whole"),
        ("return flatten(c(x), 1)[:, 900]", "E041", "index 900 is out of range"),
        ("return mean(c(x), 0)", "E038", "is the batch dimension"),
        ("return reshape(c(x), (5, -1))", "E016", "do not hold the 768 values"),
        ("a, b = split(c(x), (5, 5), dim = 1)\n        return a", "E016", "add up to 10"),
        ("return cat(c(x), flatten(c(x), 2), dim = 1)", "E031", "cannot concatenate"),
        # A member's error stands at the member, as for every module (line 4).
        ("return attn(flatten(c(x), 1))", "E035", "attends over tokens"),
    ],
)
def test_token_op_errors_are_located(tmp_path: Path, body: str, code: str, words: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        "arch Net() {\n    input (3, 8, 8)\n    c = conv(12, 3, padding = 1)\n    attn = mha(3)\n"
        f"    forward(x) {{\n        {body}\n    }}\n}}\n"
    )
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    line = 4 if "attn(" in body else 6
    assert f"{spec}:{line}:" in outcome.err and f"error[{code}]" in outcome.err and words in outcome.err, outcome.err


def test_inline_only_ops_are_no_members(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text("arch Net() {\n    input (3, 8, 8)\n    m = mean((2, 3))\n}\n")
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1 and f"{spec}:3:9: error[E082]: `mean` is applied inline" in outcome.err


SMALL_VIT = """import "lib/vit.arch"

arch small_vit(num_classes = 10) = VisionTransformer(32, 8, 2, 4, 32, 64, num_classes = num_classes) {
    input (3, 32, 32)
}
"""


@pytest.fixture(scope="module")
def small_vit(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("vit")
    (directory / "lib").mkdir()
    shutil.copy(SPECS / "lib" / "vit.arch", directory / "lib" / "vit.arch")
    (directory / "small_vit.arch").write_text(SMALL_VIT)
    compiled = compile_spec(directory / "small_vit.arch")
    model = load_source(compiled.python(), "small_vit", directory).small_vit()
    torch.manual_seed(0)
    reference = VisionTransformer(32, 8, 2, 4, 32, 64, num_classes=10)
    with torch.no_grad():
        for p in reference.parameters():  # away from initialisation: the zero-initialised head and class token too
            p.normal_(0, 0.3)
    return compiled, model, reference


def test_small_vit_equals_torchvision_module_by_module(small_vit: Any) -> None:
    compiled, model, reference = small_vit
    assert_counts(compiled, model, reference=reference)
    assert_equals_reference(compiled, model, reference)
    assert_shapes_match_hooks(compiled, model)
    assert count_macs(compiled.arch).macs * 2 == flops_math(reference.eval(), torch.randn(1, 3, 32, 32))


def test_vit_b_16_counts_equal_torchvision() -> None:
    """Parameters from the reference built without weights, and MACs against torchvision's published GFLOPS
    (which count attention's matrix products, as archc does)."""
    import torchvision

    compiled = compile_spec(SPECS / "vit_b_16.arch")
    reference = torchvision.models.vit_b_16()
    assert compiled.params.params == sum(p.numel() for p in reference.parameters())
    meta = torchvision.models.ViT_B_16_Weights.IMAGENET1K_V1.meta
    assert compiled.params.params == meta["num_params"]
    assert round(count_macs(compiled.arch).macs / 1e9, 3) == meta["_ops"]


def test_split_sizes_may_be_block_arguments(compile_arch: Any) -> None:
    compiled, module = compile_arch(
        "block B(c) {\n    conv = conv(2 * c, 1)\n    forward(x) {\n        a, b = split(conv(x), (c, c), dim = 1)\n"
        "        return a * b\n    }\n}\narch Net() {\n    input (3, 8, 8)\n    b = B(4)\n    d = B(8)\n}\n"
    )
    model = module.model().eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        y = model.b.conv(x)
        z = model.d.conv(y[:, :4] * y[:, 4:])
        torch.testing.assert_close(model(x), z[:, :8] * z[:, 8:])


def test_a_module_chosen_inline_on_a_constructor_argument_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        "block B(act = true) {\n    seq(conv(8, 1), (relu() if act else identity()))\n}\n"
        "arch Net() {\n    input (3, 8, 8)\n    b = B()\n}\n"
    )
    outcome = run_cli("compile", str(spec), "-o", str(tmp_path))
    assert outcome.code == 1 and f"{spec}:2:22: error[E042]" in outcome.err and "`if c {" in outcome.err, outcome
    assert not (tmp_path / "net.py").exists()


def test_sum_and_a_slice_bounded_by_a_block_argument(compile_arch: Any) -> None:
    """GhostNet's `out[:, :self.out_chs]` and split attention's `x.sum(dim=1)`: the generated class takes the bound
    from its argument, and the module computes what PyTorch computes by hand."""
    compiled, module = compile_arch(
        "block Cut(c) {\n    conv = conv(2 * c, 1)\n    forward(x) {\n        y = conv(x)\n        return y[:, :c]\n    }\n}\n"
        "block Net2(c) {\n    cut = Cut(c)\n    after = conv(8, 1)\n    forward(x) = after(cut(x))\n}\n"
        "arch Net() {\n    input (3, 8, 8)\n    a = Net2(4)\n    b = Net2(6)\n"
        "    forward(x) = sum(b(a(x)), (2, 3), keepdim = true)\n}\n"
    )
    model = module.model().eval()
    assert model.a.after.in_channels == 4 and model.b.after.in_channels == 6
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        y = model.a.after(model.a.cut.conv(x)[:, :4])
        y = model.b.after(model.b.cut.conv(y)[:, :6])
        torch.testing.assert_close(model(x), y.sum(dim=(2, 3), keepdim=True))
    assert tuple(compiled.arch.nodes[compiled.arch.outputs[0]].shape) == (8, 1, 1)
    assert_counts(compiled, model)


ECA = """
block Eca(k = 3) {
    conv = conv1d(1, k, padding = (k - 1) // 2, bias = false)
    forward(x) {
        y = reshape(mean(x, (2, 3)), (1, -1))
        y = reshape(sigmoid(conv(y)), (-1, 1, 1))
        return x * y
    }
}

arch Net() {
    input (3, 16, 16)
    c = conv(16, 3, padding = 1)
    e = Eca(5)
}
"""


def test_conv1d_across_channels_equals_timm_eca(compile_arch: Any) -> None:
    """Wang et al.'s efficient channel attention as timm writes it (EcaModule: a 1-D convolution across the pooled
    channels): equal outputs, parameters by sum(numel), MACs by the flop counter."""
    from timm.layers import EcaModule

    compiled, module = compile_arch(ECA)
    model = module.model().eval()
    reference = EcaModule(None, kernel_size=5)
    with torch.no_grad():
        reference.conv.weight.normal_(0, 1.0)
    model.e.conv.load_state_dict(reference.conv.state_dict(), strict=True)
    x = torch.randn(2, 16, 16, 16)
    with torch.no_grad():
        for scale in (1.0, 10.0):
            torch.testing.assert_close(model.e(x * scale), reference(x * scale))
    assert isinstance(model.e.conv, torch.nn.Conv1d)
    assert_counts(compiled, model)
    assert count_macs(compiled.arch).macs * 2 == flops_math(model, torch.randn(1, 3, 16, 16))


def test_generated_encoder_block_takes_its_width_from_hidden_dim(tmp_path: Path) -> None:
    """The block class on tokens writes its widths as torchvision's EncoderBlock does (`nn.LayerNorm(hidden_dim)`),
    so it builds at a width no instance of the spec has, and equals torchvision's layer of that width."""
    from torchvision.models.vision_transformer import EncoderBlock

    compiled = compile_spec(SPECS / "vit_b_16.arch")
    module = load_source(compiled.python(), "vit_b_16", tmp_path)
    torch.manual_seed(0)
    ours = module.EncoderBlock(4, 32, 64).eval()
    theirs = EncoderBlock(4, 32, 64, 0.0, 0.0, norm_layer=torch.nn.LayerNorm).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))
