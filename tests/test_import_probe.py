"""`archc import` of models outside docs/import.md's table (issue 15): each round-trips equal or says precisely why
not. The constructs here are the ones timm models outside the table met, each in a small module: the error names
the module and the construct, located at the module's source, never a traceback or a message about the model as a
whole.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from archc.cli import main
from archc.tools.importer import import_source, spec_verdict

PATCHES = """\
from torch import nn


class Mixer(nn.Module):
    \"\"\"As timm's MobileViTv2 LinearTransformerBlock: a GroupNorm over the unfolded patches (N, C, P, L).\"\"\"

    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(1, c)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x + self.proj(self.norm(x))


class Patches(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.mixer = Mixer(8)

    def forward(self, x):
        b, _, h, w = x.shape
        x = self.stem(x).reshape(b, 8, 2, h // 2, 2, w // 2).permute(0, 1, 2, 4, 3, 5)
        x = self.mixer(x.reshape(b, 8, 4, h * w // 4))
        return x.reshape(b, 8, 2, 2, h // 2, w // 2).permute(0, 1, 2, 4, 3, 5).reshape(b, 8, h, w)
"""


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_a_spec_that_does_not_compile_names_the_module_and_the_line_of_its_block(tmp_path: Path) -> None:
    (tmp_path / "patches.py").write_text(PATCHES, encoding="utf-8")
    target = tmp_path / "out.arch"
    code, _, err = run_cli("import", f"{tmp_path / 'patches.py'}:Patches", "-o", str(target), "--input", "3x8x8")
    # The language refuses a groupnorm over C×L×L; the error is the module's (`mixer`, class Mixer, at its source),
    # with the line of its block the spec stops at, not the model's as a whole.
    line = PATCHES.splitlines().index("class Mixer(nn.Module):") + 1
    assert code == 1 and "error[E120]" in err and "`mixer` (archc_import_patches.Mixer), block `Mixer`" in err, err
    assert "does not compile at `norm = groupnorm(1)`: groupnorm needs a C×H×W feature map" in err, err
    assert f"patches.py:{line}:1:" in err and "(the model)" not in err, err
    assert "Traceback" not in err and not target.exists(), err


UNAPPLIED = """\
import torch
from torch import nn


class PosEnc(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.proj = nn.Conv2d(c, c, 3, padding=1, groups=c)

    def forward(self, x):
        return x + self.proj(x)


class Serial(nn.Module):
    def __init__(self, c, shared):
        super().__init__()
        self.cpe = shared
        self.fc = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return self.fc(self.cpe(x))


class Shared(nn.Module):
    \"\"\"As timm's CoaT: one position encoding held by the model and by each of its serial blocks.\"\"\"

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.cpe1 = PosEnc(8)
        self.blocks = nn.Sequential(Serial(8, self.cpe1), Serial(8, self.cpe1))

    def forward(self, x):
        return self.blocks(self.stem(x))


class Table(nn.Module):
    def __init__(self, n, c):
        super().__init__()
        self.register_buffer("embed", torch.randn(n, c), persistent=False)

    def get_embed(self):
        return self.embed


class Rope(nn.Module):
    \"\"\"As timm's Eva: the forward reads a member's tensor through a method of its own.\"\"\"

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 2, stride=2)
        self.rope = Table(16, 8)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        embed = self.rope.get_embed()
        return x * embed
"""


def test_a_member_shared_with_other_members_is_named_with_them(tmp_path: Path) -> None:
    (tmp_path / "unapplied.py").write_text(UNAPPLIED, encoding="utf-8")
    code, _, err = run_cli("import", f"{tmp_path / 'unapplied.py'}:Shared", "--input", "3x8x8")
    line = UNAPPLIED.splitlines().index("class Shared(nn.Module):") + 1
    assert code == 1 and "error[E120]" in err and "its member `cpe1` (PosEnc) has weights but its forward never applies it" in err, err
    assert "the same module is also `blocks.0.cpe`, `blocks.1.cpe`, a module shared between members" in err, err
    assert f"unapplied.py:{line}:1:" in err and "Traceback" not in err, err


def test_a_member_whose_tensors_a_method_reads_is_located_at_the_call(tmp_path: Path) -> None:
    (tmp_path / "unapplied.py").write_text(UNAPPLIED, encoding="utf-8")
    code, _, err = run_cli("import", f"{tmp_path / 'unapplied.py'}:Rope", "--input", "3x8x8")
    line = UNAPPLIED.splitlines().index("        embed = self.rope.get_embed()") + 1
    assert code == 1 and "error[E120]" in err and "its member `rope` (Table) has buffers but its forward reads its tensors" in err, err
    assert "(`embed`) instead of applying it" in err and f"unapplied.py:{line}:1:" in err and "Traceback" not in err, err


NORM_ACT = """\
import torch
import torch.nn.functional as F
from timm.layers.norm_act import LayerNormAct, LayerNormAct2d
from torch import nn


class Stem(nn.Module):
    \"\"\"As timm's ViTamin stem: LayerNormAct2d (F.layer_norm over the channels permuted last, then its activation).\"\"\"

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.norm1 = LayerNormAct2d(8, act_layer=nn.GELU)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.norm2 = LayerNormAct2d(8, eps=1e-6, act_layer=nn.SiLU)
        self.fc = nn.Linear(8, 8)
        self.norm3 = LayerNormAct(8, act_layer=nn.ReLU)

    def forward(self, x):
        x = self.norm2(self.conv2(self.norm1(self.conv1(x))))
        return self.norm3(self.fc(x.flatten(2).transpose(1, 2)))


class StdConv(nn.Conv2d):
    \"\"\"As timm's ScaledStdConv2d: the weight standardised by F.batch_norm in the forward.\"\"\"

    def forward(self, x):
        weight = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None, training=True).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


class Standardised(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = StdConv(3, 8, 3)

    def forward(self, x):
        return self.conv(x)


class Branches(nn.Module):
    \"\"\"As timm's CrossViT MultiScaleBlock: a list of tensors as input, its items indexed.\"\"\"

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(8, 8, 1)
        self.b = nn.Conv2d(8, 8, 1)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.a(xs[0]), self.b(xs[1])]


class Cross(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.ModuleList([Branches(), Branches()])

    def forward(self, x):
        x = self.stem(x)
        xs = [x, x * 2]
        for block in self.blocks:
            xs = block(xs)
        return xs[0] + xs[1]
"""


def test_timms_layernormact2d_and_layernormact_round_trip_equal(tmp_path: Path) -> None:
    (tmp_path / "normact.py").write_text(NORM_ACT, encoding="utf-8")
    source_text = f"{tmp_path / 'normact.py'}:Stem"
    text, source = import_source(source_text, (3, 8, 8))
    # The norm an op of its own settings, its activation applied inline where the forward applies the module.
    assert "norm1 = layernorm2d()" in text and "norm2 = layernorm2d(eps = 1e-06)" in text and "norm3 = layernorm()" in text, text
    assert "silu(norm2(conv2(gelu(norm1(conv1(x))))), inplace = true)" in text and "relu(norm3(fc(" in text, text
    # The reference is the model itself: the state_dict loads strictly and every module's output agrees.
    verdict = spec_verdict(source_text, text, source)
    assert verdict.verdict == "equal", verdict.reason


def test_an_op_called_through_torchs_functional_dispatch_is_located_at_the_models_line(tmp_path: Path) -> None:
    (tmp_path / "normact.py").write_text(NORM_ACT, encoding="utf-8")
    code, _, err = run_cli("import", f"{tmp_path / 'normact.py'}:Standardised", "--input", "3x8x8")
    line = next(i for i, t in enumerate(NORM_ACT.splitlines(), 1) if "weight = F.batch_norm(" in t)
    assert code == 1 and "error[E120]" in err and "`conv` (archc_import_normact.StdConv): `batch_norm` has no archc op" in err, err
    # The line of the model's forward that calls F.batch_norm, not torch/overrides.py's dispatch.
    assert err.startswith(f"{tmp_path / 'normact.py'}:{line}:1:") and "overrides.py" not in err, err


def test_indexing_a_list_of_tensors_given_as_input_names_the_input(tmp_path: Path) -> None:
    (tmp_path / "normact.py").write_text(NORM_ACT, encoding="utf-8")
    code, _, err = run_cli("import", f"{tmp_path / 'normact.py'}:Cross", "--input", "3x8x8")
    line = NORM_ACT.splitlines().index("        return [self.a(xs[0]), self.b(xs[1])]") + 1
    assert code == 1 and "error[E120]" in err and "`blocks.0` (archc_import_normact.Branches)" in err, err
    assert "indexing the forward's input `xs`, which is not one tensor (a list or tuple of tensors)" in err, err
    assert f"normact.py:{line}:1:" in err and "Traceback" not in err, err
