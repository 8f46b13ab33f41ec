"""`archc import` of the forms timm's layer scale, ECA and MetaFormer norms use (docs/import.md): a parameter
reshaped in the forward, `expand_as` before arithmetic, `GroupNorm1` and `LayerNorm2dNoBias`; each round-trips equal
to the model (state_dict loaded strictly, module types and settings, every module's output)."""

from __future__ import annotations

from pathlib import Path

from archc.tools.importer import import_source, round_trip

MODEL = """
import torch
from torch import nn
from timm.layers.norm import GroupNorm1
from timm.models.metaformer import LayerNorm2dNoBias


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm = GroupNorm1(dim)
        self.norm2 = LayerNorm2dNoBias(dim)
        self.gate = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.gamma = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x):
        y = self.norm2(self.norm(self.conv(x)))
        g = torch.sigmoid(self.gate(y.mean((2, 3)).view(x.shape[0], 1, -1))).view(x.shape[0], -1, 1, 1)
        y = y * g.expand_as(y)
        return x + y.mul(self.gamma.reshape(1, -1, 1, 1))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 4, stride=4)
        self.block1 = Block(16)
        self.down = nn.Conv2d(16, 32, 2, stride=2)
        self.block2 = Block(32)
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        x = self.block2(self.down(self.block1(self.stem(x))))
        return self.fc(x.mean((2, 3)))
"""


def test_layer_scale_expand_as_and_metaformer_norms_round_trip(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(MODEL, encoding="utf-8")
    text, _ = import_source(f"{tmp_path / 'net.py'}:Net", (3, 32, 32))
    assert "gamma = param((16,))" in text and "gamma = param((32,))" in text, text  # the model's key and shape
    assert "reshape(gamma, (1, -1, 1, 1))" in text and "expand_as" not in text, text
    assert "norm = groupnorm(1)" in text and "norm2 = layernorm2d(eps = 1e-06, bias = false)" in text, text
    assert "mean(out, (2, 3))" in text and "adaptive_avgpool" not in text, text  # a spatial mean as the model wrote it
    verdict = round_trip(f"{tmp_path / 'net.py'}:Net")
    assert verdict.verdict == "equal", verdict.reason


AFFINE = '''
import torch
from torch import nn


class Affine(nn.Module):
    """timm's ResMLP Affine: `torch.addcmul(self.beta, self.alpha, x)`."""

    def __init__(self, dim):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones((1, 1, dim)))
        self.beta = nn.Parameter(torch.zeros((1, 1, dim)))

    def forward(self, x):
        return torch.addcmul(self.beta, self.alpha, x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 8, stride=8)
        self.norm = Affine(16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.norm(self.stem(x).flatten(2).transpose(1, 2))
        return self.fc(x.mean(1))
'''


def test_addcmul_is_a_sum_and_a_product_and_round_trips(tmp_path: Path) -> None:
    (tmp_path / "affine.py").write_text(AFFINE, encoding="utf-8")
    text, _ = import_source(f"{tmp_path / 'affine.py'}:Net", (3, 32, 32))
    assert "forward(x) = beta + alpha * x" in text, text
    verdict = round_trip(f"{tmp_path / 'affine.py'}:Net")
    assert verdict.verdict == "equal", verdict.reason


GELUS = """
from torch import nn
from timm.layers.activations import GELU, GELUTanh


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.act = GELU()
        self.conv2 = nn.Conv2d(8, 8, 3)
        self.act2 = GELUTanh()

    def forward(self, x):
        return self.act2(self.conv2(self.act(self.conv(x))))
"""


def test_timms_gelu_classes_import_as_gelu_and_round_trip(tmp_path: Path) -> None:
    # timm's GELU and GELUTanh derive from nn.Module alone (ConvNeXt's MLP in timm): the op `gelu`, `approximate`
    # as their forward calls F.gelu.
    (tmp_path / "gelus.py").write_text(GELUS, encoding="utf-8")
    text, _ = import_source(f"{tmp_path / 'gelus.py'}:Net", (3, 16, 16))
    assert "act = gelu()" in text and 'act2 = gelu(approximate = "tanh")' in text, text
    verdict = round_trip(f"{tmp_path / 'gelus.py'}:Net")
    assert verdict.verdict == "equal", verdict.reason
