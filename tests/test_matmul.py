"""Matrix products in the language: `matmul(a, b)` (PyTorch's `a @ b`, leading dimensions broadcast), `unbind(x, dim)`
(a list of tensors, one per position of `dim`) and `attention(q, k, v, scale = ...)` (F.scaled_dot_product_attention).
Attention written out as timm's `Attention` writes it, checked against timm's module itself (strict state_dict load,
equal outputs), its shapes against forward hooks and the generated module's outputs, its parameters against
`sum(numel)`, its MACs against FlopCounterMode / 2; and the errors of misuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from timm.layers import Attention
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archc.passes.macs import count_macs
from tests.conftest import run_cli
from tests.zoo_helpers import assert_counts, assert_same_logits, assert_shapes_match_hooks, counted_attention, reference_flops

torch.set_num_threads(1)

# timm's Attention (timm/layers/attention.py), its two paths: `attention` (F.scaled_dot_product_attention, timm's
# fused path) or the product written out (`q * scale`, `q @ kᵀ`, softmax, `@ v`).
ATTENTION = """
block Attention(dim, num_heads = 8, fused = true) {
    let head_dim = dim // num_heads
    qkv = linear(dim * 3, bias = false)
    q_norm = identity()
    k_norm = identity()
    attn_drop = dropout(0.0)
    norm = identity()
    proj = linear(dim)
    proj_drop = dropout(0.0)
    forward(x) {
        qkv = permute(reshape(qkv(x), (-1, 3, num_heads, head_dim)), (0, 2, 3, 1, 4))
        q, k, v = unbind(qkv, 1)
        q = q_norm(q)
        k = k_norm(k)
        if fused {
            x = attention(q, k, v)
        } else {
            q = q * (1.0 / sqrt(head_dim))
            attn = softmax(matmul(q, transpose(k, -2, -1)), -1)
            x = matmul(attn_drop(attn), v)
        }
        x = reshape(transpose(x, 1, 2), (-1, dim))
        return proj_drop(proj(norm(x)))
    }
}

arch Net(fused = true) {
    input (48, 2, 5)
    attn = Attention(48, num_heads = 4, fused = fused)
    forward(x) {
        return attn(permute(flatten(x, 2), (0, 2, 1)))
    }
}
"""


class Net(nn.Module):
    def __init__(self, fused: bool) -> None:
        super().__init__()
        self.attn = Attention(48, num_heads=4)
        self.attn.fused_attn = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x.flatten(2).permute(0, 2, 1))


@pytest.mark.parametrize("fused", [True, False])
def test_attention_written_out_equals_timm(compile_arch: Any, fused: bool) -> None:
    compiled, module = compile_arch(ATTENTION, overrides={"fused": fused})
    model = module.model(fused=fused)
    reference = Net(fused)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    torch.manual_seed(0)
    x = torch.randn(3, 48, 2, 5)
    with torch.no_grad():
        for scale in (1.0, 10.0):
            assert_same_logits(model(x * scale), reference(x * scale))
    assert_counts(compiled, model, reference=reference)
    assert_shapes_match_hooks(compiled, model)
    # The scores and the weighted sum: 2·H·L·L·(D / H) MACs beside the projections, fused or not.
    assert count_macs(compiled.arch).macs * 2 == reference_flops(reference, (48, 2, 5))
    source = compiled.python()
    assert "F.scaled_dot_product_attention(q, k, v)" in source
    assert "q, k, v = torch.unbind(qkv, 1)" in source
    if not fused:
        assert " @ v" in source


def generated_flops(model: nn.Module, shape: tuple[int, ...]) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counted_attention(), counter:
        model(torch.randn(1, *shape))
    return int(counter.get_total_flops())


# Broadcasting of the dimensions before the last two, a learnable matrix as an operand, and `unbind` on a later
# dimension and counted from the end.
PRODUCTS = """
block Products(heads) {
    w = param((32 // heads, 8), std = 1.0)
    forward(x) {
        a = reshape(x, (heads, 6, -1))
        b = mean(a, 1, keepdim = true)
        s = matmul(a, transpose(b, -2, -1))
        t = matmul(transpose(s, -2, -1), a)
        u = matmul(t, w)
        rows = unbind(u, -2)
        c0, c1, c2, c3, c4, c5, c6, c7 = unbind(u, 3)
        return cat(rows[0], rows[-1], c7, dim = 2)
    }
}

arch Net(heads = 2) {
    input (6, 4, 8)
    p = Products(heads)
}
"""


@pytest.mark.parametrize("heads", [1, 2])
def test_products_broadcast_as_pytorch_does(compile_arch: Any, heads: int) -> None:
    compiled, module = compile_arch(PRODUCTS, overrides={"heads": heads})
    model = module.model(heads=heads).eval()
    x = torch.randn(2, 6, 4, 8)
    w = model.p.w
    a = x.reshape(2, heads, 6, -1)
    b = a.mean(1, keepdim=True)
    u = ((a @ b.transpose(-2, -1)).transpose(-2, -1) @ a) @ w
    expected = torch.cat([u.unbind(-2)[0], u.unbind(-2)[-1], u.unbind(3)[7]], 2)
    with torch.no_grad():
        out = model(x)
    torch.testing.assert_close(out, expected)
    assert tuple(out.shape[1:]) == tuple(compiled.arch.nodes[compiled.arch.outputs[0]].shape)
    # Each node's shape is what PyTorch gives the same operations.
    shapes = {n.name.rpartition(".")[2]: tuple(n.shape) for n in compiled.arch.nodes}
    assert shapes["matmul"] == tuple((a @ b.transpose(-2, -1)).shape[1:])
    assert shapes["unbind"] == tuple(u.unbind(-2)[0].shape[1:])
    assert sum(n.op == "unbind" for n in compiled.arch.nodes) == u.shape[-2] + u.shape[3]
    assert_counts(compiled, model)
    assert count_macs(compiled.arch).macs * 2 == generated_flops(model, (6, 4, 8))


@pytest.mark.parametrize(
    ("forward", "where", "code", "words"),
    [
        ("return matmul(x, x)", "4:16", "E039", "cannot multiply N×4×6 by N×4×6"),
        ("return matmul(mean(x, 2), x)", "4:16", "E039", "the first operand is N×4"),
        ("return matmul(reshape(x, (2, 2, 6)), reshape(x, (4, 6, 1)))", "4:16", "E030", "do not broadcast"),
        ("return attention(x, x, transpose(x, 1, 2))", "4:16", "E039", "the keys N×4×6 and the values N×6×4"),
        ("return attention(x, reshape(x, (6, 4)), x)", "4:16", "E039", "differ in their last dimension"),
        ("return matmul(x)", "4:16", "E081", "takes 2 tensors first"),
        ("a, b, c = unbind(x, 1)\n        return a", "4:9", "E081", "gives 4 tensors here, and 3 names"),
        ("xs = unbind(x, 0)\n        return xs[0]", "4:14", "E038", "the batch dimension"),
        ("return attention(x, x, x, scale = -1)", "4:35", "E016", "`scale` must be a positive number"),
    ],
)
def test_misuse_is_located(tmp_path: Path, forward: str, where: str, code: str, words: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        f"block B() {{\n    forward(x) {{\n        x = flatten(x, 2)\n        {forward}\n    }}\n}}\n\n"
        "arch Net() {\n    input (4, 2, 3)\n    B()\n}\n"
    )
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert f"{spec}:{where}:" in outcome.err and f"error[{code}]" in outcome.err and words in outcome.err, outcome.err


# `archc import` of attention written out: timm's Attention on both paths (its `permute(2, 0, 3, 1, 4)` moves the
# batch, `unbind(0)` brings it back), and a product written with `@`.
ATTENTION_MODEL = """\
import torch
from torch import nn
from timm.layers import Attention


class ClassAttn(nn.Module):
    # cait's class attention, in small: keys and values taken by index (kv[0]), a query unsqueezed.

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, dim * 2)

    def forward(self, x):
        B, N, C = x.shape
        q = self.q(x[:, 0]).unsqueeze(1).reshape(B, 1, self.heads, C // self.heads).permute(0, 2, 1, 3)
        kv = self.kv(x).reshape(B, N, 2, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=0.5)
        return out.transpose(1, 2).reshape(B, 1, C)


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, 32, 4, stride=4)
        self.fused = Attention(32, num_heads=4, qkv_bias=True)
        self.plain = Attention(32, num_heads=2)
        self.plain.fused_attn = False
        self.key = nn.Linear(32, 32)
        self.cls_attn = ClassAttn(32, 4)
        self.head = nn.Linear(32, 5)

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)
        x = x + self.fused(x)
        x = x + self.plain(x)
        scores = (x @ self.key(x).transpose(-2, -1)).softmax(dim=-1)
        return self.head((scores @ x).mean(1) + self.cls_attn(x)[:, 0])
"""


def test_attention_written_out_imports_and_round_trips(tmp_path: Path) -> None:
    from archc.tools.importer import import_source, round_trip

    (tmp_path / "tokens.py").write_text(ATTENTION_MODEL, encoding="utf-8")
    text, _ = import_source(f"{tmp_path / 'tokens.py'}:Tokens", (3, 16, 16))
    assert "permute(reshape(qkv(x), (16, 3, 4, 8)), (0, 2, 3, 1, 4)), 1)" in text, text
    assert "attention(q_norm(" in text and "matmul(" in text and "softmax(" in text, text
    assert "(0, 2, 3, 1, 4))\n" in text and "x[:, 0], x[:, 1], scale = 0.5)" in text, text
    verdict = round_trip(f"{tmp_path / 'tokens.py'}:Tokens")
    assert verdict.verdict == "equal", verdict.reason


def test_a_batch_moved_and_kept_there_is_refused(tmp_path: Path) -> None:
    (tmp_path / "moved.py").write_text(
        "from torch import nn\n\n\n"
        "class Moved(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.proj = nn.Conv2d(3, 8, 4, stride=4)\n\n"
        "    def forward(self, x):\n"
        "        return self.proj(x).permute(1, 0, 2, 3).relu()\n",
        encoding="utf-8",
    )
    outcome = run_cli("import", f"{tmp_path / 'moved.py'}:Moved", "--input", "3x16x16")
    assert outcome.code == 1 and "error[E120]" in outcome.err and "a permute moved to dimension 1" in outcome.err, outcome.err
    assert f"{tmp_path / 'moved.py'}:10:" in outcome.err, outcome.err
