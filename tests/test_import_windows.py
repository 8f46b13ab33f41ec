"""`archc import` of models that move windows into the batch (torchvision's Swin: (B, H, W, C) to (B·nW, ws², C)):
the importer keeps the batch apart, (B, nW, ws², C), and the spec it writes must equal the model.

The reference is the model itself: the round trip is `archc verify`'s whole comparison (state_dict loaded strictly,
every module's type, settings and output, eval and training mode, an SGD step), and the parameter count
`sum(p.numel())`.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from torch import nn

from archc.cli import main
from archc.tools.importer import import_source, round_trip

SWIN = """\
from torchvision.models.swin_transformer import SwinTransformer, SwinTransformerBlockV2, PatchMergingV2


def tiny():
    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4],
                           num_classes=10)


def tiny_v2():
    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4],
                           num_classes=10, block=SwinTransformerBlockV2, downsample_layer=PatchMergingV2)
"""

WINDOWS = """\
import torch
from torch import nn


class Windows(nn.Module):
    \"\"\"Tokens of a 8x8 map cut into 4x4 windows, each window mixed on its own, the map put back.\"\"\"

    def __init__(self, norm):
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 4, stride=4)
        self.norm = norm
        self.mix = nn.Linear(16, 16)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.proj(x).permute(0, 2, 3, 1)                                   # B, 8, 8, C
        b, h, w, c = x.shape
        x = x.view(b, h // 4, 4, w // 4, 4, c).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(-1, 16, c)                                               # B·4, 16, C: windows in the batch
        x = self.norm(x)
        x = self.mix(x.transpose(1, 2)).transpose(1, 2).softmax(dim=1)
        x = x.view(b, h // 4, w // 4, 4, 4, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        return self.head(x.mean((1, 2)))


def layernorm():
    return Windows(nn.LayerNorm(8))


def batchnorm():
    return Windows(nn.BatchNorm1d(16))
"""


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("windows")
    (folder / "swin.py").write_text(SWIN, encoding="utf-8")
    (folder / "windows.py").write_text(WINDOWS, encoding="utf-8")
    return folder


def test_a_swin_round_trips_equal_with_its_windows_kept_apart_from_the_batch(sources: Path) -> None:
    source = f"{sources / 'swin.py'}:tiny"
    text, _ = import_source(source)
    # The shifted windows: a roll, the windows as a dimension of their own after the batch, the mask a fixed tensor
    # the module builds once (torchvision makes it in every forward), left out of the state_dict as it is there.
    assert "roll(" in text and "(-2, -2), (1, 2))" in text, text
    assert "attn_mask = buffer(" in text and "persistent = false" in text, text
    assert "reshape(permute(reshape(" in text and "x[:, 0]" in text, text
    verdict = round_trip(source)
    assert verdict.verdict == "equal", verdict.reason


def test_summary_of_a_swin_counts_its_parameters(sources: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("swin_source", sources / "swin.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = sum(p.numel() for p in module.tiny().parameters())
    code, out, err = run_cli("summary", f"{sources / 'swin.py'}:tiny")
    assert code == 0, err
    assert f"{expected:,}" in out, out


def test_windows_in_the_batch_through_rows_only_ops_round_trip(sources: Path) -> None:
    verdict = round_trip(f"{sources / 'windows.py'}:layernorm")
    assert verdict.verdict == "equal", verdict.reason


def test_a_norm_over_windows_in_the_batch_is_not_imported(sources: Path) -> None:
    # BatchNorm1d over (B·4, 16, C) takes its statistics across samples and windows together: no spec keeps that
    # apart, so the import stops where the batch is moved, naming the reshape.
    assert isinstance(nn.BatchNorm1d(16), nn.Module)
    verdict = round_trip(f"{sources / 'windows.py'}:batchnorm")
    assert verdict.verdict == "not imported", verdict.reason
    assert "which moves the batch" in verdict.reason and "to (392, 16, 8)" in verdict.reason, verdict.reason


def test_verify_reads_a_kept_apart_output_in_the_merged_shape_and_no_other() -> None:
    import torch

    from archc.tools.verify import tensor_difference

    theirs = torch.randn(2 * 4, 16, 8)
    ours = theirs.reshape(2, 4, 16, 8).clone()
    assert tensor_difference(ours, theirs)[0] == 0.0
    ours[1, 3, 15, 7] += 1e-3 * theirs.abs().max()  # one number off, in the last window of the second sample
    assert tensor_difference(ours, theirs)[0] > 0.0
    # The windows in another order (the batch inside the windows) are not the reference's numbers in its order.
    swapped = theirs.reshape(4, 2, 16, 8).transpose(0, 1).contiguous()
    assert tensor_difference(swapped, theirs)[0] > 0.0
    # Shapes that only a reshape across other dimensions would match still differ.
    assert tensor_difference(theirs.reshape(2, 4, 8, 16), theirs)[0] == float("inf")


def test_swin_v2_is_not_imported_and_says_why(sources: Path) -> None:
    # Swin V2 applies `qkv` through F.linear with a bias it computes in every forward (the keys' third zeroed):
    # a spec's Linear has its own bias, so the import stops there, at torchvision's line.
    verdict = round_trip(f"{sources / 'swin.py'}:tiny_v2")
    assert verdict.verdict == "not imported", verdict.reason
    assert "`linear` with `qkv`'s weight and a bias its forward computes" in verdict.reason, verdict.reason
    code, _, err = run_cli("import", f"{sources / 'swin.py'}:tiny_v2")
    assert code == 1 and "error[E120]" in err and "swin_transformer.py:" in err, err
