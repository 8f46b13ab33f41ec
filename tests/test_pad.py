"""`pad` (F.pad; nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.CircularPad2d as a
member): every mode, as a member and inline, against the same network written in PyTorch; counts and MACs against
the generated module; the receptive field against input gradients; its errors; and `archc import` of a model that
pads with F.pad (timm's hgnetv2 stem), round-tripped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archc.passes.macs import count_macs
from archc.tools.verify import compare_settings
from tests.conftest import run_cli
from tests.test_analysis import check_neighbouring_units
from tests.test_language_cases import assert_pass_matches_module

SPEC = """
block Pads() {
    zero = pad((0, 1, 0, 1))
    refl = pad((1, 1, 1, 1), mode = "reflect")
    const = pad((1, 0, 0, 0), value = 0.5)
    circ = pad((1, 1, 1, 1), mode = "circular")
    conv_a = conv(8, 3, stride = 2)
    conv_b = conv(8, 5, stride = 2)
    conv_c = conv(16, 2, stride = 2)
    conv_d = conv(16, 3, stride = 2)
    forward(x) {
        y = conv_a(refl(zero(x)))
        z = conv_b(pad(x, (2, 2, 2, 2), mode = "replicate"))
        w = conv_c(pad(const(x), (0, 0, 1, 0), value = -1.0))
        return cat(y, z) + w + conv_d(circ(x)) + pad(x, (0, 0, 0, 0, 0, 13))[:, :, 3:11, 3:11]
    }
}

arch Net() {
    input (3, 15, 15)
    b = Pads()
}
"""


class Pads(nn.Module):
    """SPEC's block, written in PyTorch."""

    def __init__(self) -> None:
        super().__init__()
        self.zero = nn.ZeroPad2d((0, 1, 0, 1))
        self.refl = nn.ReflectionPad2d((1, 1, 1, 1))
        self.const = nn.ConstantPad2d((1, 0, 0, 0), 0.5)
        self.circ = nn.CircularPad2d((1, 1, 1, 1))
        self.conv_a = nn.Conv2d(3, 8, 3, stride=2)
        self.conv_b = nn.Conv2d(3, 8, 5, stride=2)
        self.conv_c = nn.Conv2d(3, 16, 2, stride=2)
        self.conv_d = nn.Conv2d(3, 16, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_a(self.refl(self.zero(x)))
        z = self.conv_b(F.pad(x, (2, 2, 2, 2), mode="replicate"))
        w = self.conv_c(F.pad(self.const(x), (0, 0, 1, 0), value=-1.0))
        return torch.cat([y, z], 1) + w + self.conv_d(self.circ(x)) + F.pad(x, (0, 0, 0, 0, 0, 13))[:, :, 3:11, 3:11]


def test_pad_in_every_mode_equals_pytorch(compile_arch: Any) -> None:
    compiled, module = compile_arch(SPEC)
    model = module.model()
    assert_pass_matches_module(compiled, model)  # shapes by forward hooks, params and buffers by sum(numel)
    reference = Pads()
    for name in ("zero", "refl", "const", "circ"):  # the module each mode is in PyTorch, with its settings
        ours, theirs = getattr(model.b, name), getattr(reference, name)
        assert type(ours) is type(theirs) and compare_settings(ours, theirs) == [], name
    model.b.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    for scale in (1.0, 10.0):
        x = torch.randn(2, 3, 15, 15) * scale
        torch.testing.assert_close(model(x), reference(x))
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, 3, 15, 15))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()


FIELD = """
arch Net() {
    input (3, 64, 64)
    p = pad((2, 0, 1, 0))
    c = conv(4, 3, stride = 2)
    q = pad((0, 3, 1, 2))
    d = conv(4, 3, stride = 2)
}
"""


def test_pad_shifts_the_receptive_field_as_the_gradients_do(compile_arch: Any) -> None:
    """Padding before (top, left) moves every later unit's field up and left by that much, and widens none."""
    compiled, module = compile_arch(FIELD)
    check_neighbouring_units(compiled, module.model(), "d", "d")
    check_neighbouring_units(compiled, module.model(), "c", "c")


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ('pad(x, (1, 1, 1, 1), mode = "reflect", value = 1.0)', 'mode "reflect" takes no `value`'),
        ('pad(x, (8, 8, 1, 1), mode = "reflect")', "by at most 7 on a side"),
        ('pad(x, (1, 1), mode = "replicate")', "pads the last 2 or 3 dimensions"),
        ("pad(x, (1, 1, 1))", "a tuple of 2, 4 or 6 sizes"),
        ('pad(x, (1, 1), mode = "wrap")', 'one of "constant", "reflect"'),
    ],
)
def test_pad_errors_are_located(tmp_path: Path, call: str, words: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(f"arch Net() {{\n    input (3, 8, 8)\n    forward(x) = {call}\n}}\n")
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1 and "error[E016]" in outcome.err and words in outcome.err, outcome.err
    assert f"{spec}:3:" in outcome.err


MODEL = '''
import torch
import torch.nn.functional as F
from torch import nn


class Stem(nn.Module):
    """timm's hgnetv2 StemV2: pads after each 2×2 window; then a reflecting pad and a module pad."""

    def __init__(self):
        super().__init__()
        self.stem1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.stem2a = nn.Conv2d(8, 4, 2)
        self.stem2b = nn.Conv2d(4, 8, 2)
        self.pool = nn.MaxPool2d(2, stride=1, ceil_mode=True)
        self.zero = nn.ZeroPad2d((1, 0, 1, 0))
        self.out = nn.Conv2d(16, 8, 3)

    def forward(self, x):
        x = self.stem1(x)
        x = F.pad(x, (0, 1, 0, 1))
        x2 = self.stem2a(x)
        x2 = F.pad(x2, (0, 1, 0, 1))
        x2 = self.stem2b(x2)
        x1 = self.pool(x)
        x = torch.cat([x1, x2], dim=1)
        return self.out(F.pad(self.zero(x), (1, 0, 1, 0), mode="reflect"))
'''


def test_import_writes_f_pad_and_pad_modules_and_round_trips_equal(tmp_path: Path) -> None:
    from archc.tools.importer import import_model, load_source, round_trip

    (tmp_path / "stem.py").write_text(MODEL)
    text = import_model(load_source(f"{tmp_path / 'stem.py'}:Stem"))
    assert "pad(stem1(x), (0, 1, 0, 1))" in text and "zero = pad((1, 0, 1, 0))" in text and 'mode = "reflect"' in text, text
    verdict = round_trip(f"{tmp_path / 'stem.py'}:Stem")
    assert verdict.verdict == "equal", verdict.reason
