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
