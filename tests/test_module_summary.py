"""`archc summary SOURCE` of a model archc cannot write as a spec: the model's own modules, run once on shape-only
tensors, with why there is no spec. Every figure is checked against PyTorch run on real tensors: the parameter count
(`sum(p.numel())`), each module's output shape (forward hooks), the MACs (`torch.utils.flop_counter`, FLOPs / 2)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from archc.cli import main

CUMSUM = """\
import torch
from torch import nn


class Cumulative(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.scale = nn.Parameter(torch.ones(8, 1, 1))
        self.blocks = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = self.conv(x).cumsum(2) * self.scale
        return self.head(self.blocks(x).mean((2, 3)))


def model():
    return Cumulative()
"""


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def source(tmp_path: Path) -> str:
    (tmp_path / "cumulative.py").write_text(CUMSUM, encoding="utf-8")
    return f"{tmp_path / 'cumulative.py'}:model"


def _reference() -> tuple[torch.nn.Module, dict[str, list[int]], int]:
    namespace: dict[str, object] = {}
    exec(compile(CUMSUM, "cumulative.py", "exec"), namespace)
    model = namespace["model"]().eval()  # type: ignore[operator]
    shapes: dict[str, list[int]] = {}

    def hook(name: str) -> object:
        def record(module: torch.nn.Module, args: object, out: torch.Tensor) -> None:
            shapes.setdefault(name, list(out.shape))

        return record

    for name, m in model.named_modules():
        m.register_forward_hook(hook(name))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 20, 20))
    return model, shapes, counter.get_total_flops() // 2


def test_a_model_that_cannot_be_imported_is_summarised_from_its_modules(source: str) -> None:
    model, shapes, macs = _reference()
    code, out, err = run_cli("summary", source, "--input", "3x20x20", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["imported"] is False and data["reason"].startswith("E120") and "cumsum" in data["reason"], data["reason"]
    assert data["params"] == sum(p.numel() for p in model.parameters())
    assert data["buffers"] == sum(b.numel() for b in model.buffers())
    assert data["macs"] == macs
    assert data["output"] == shapes[""][1:]
    rows = {row["name"]: row for row in data["layers"]}
    assert set(rows) == {"(model)", "conv", "blocks.0", "blocks.1", "blocks.2", "head"}  # leaves, and `scale`'s owner
    for name, row in rows.items():
        assert row["shape"] == shapes["" if name == "(model)" else name], name
    assert sum(row["params"] for row in rows.values()) == data["params"]
    assert rows["(model)"]["params"] == 8  # its own `scale`


def test_the_table_says_it_is_not_a_spec_and_why(source: str) -> None:
    model, _, macs = _reference()
    code, out, err = run_cli("summary", source, "--input", "3x20x20")
    assert code == 0, err
    assert "not imported" in out.splitlines()[0]
    assert f"params: {sum(p.numel() for p in model.parameters()):,}" in out and f"MACs: {macs:,} per image" in out
    assert "1×8×9×9" in out  # blocks.0's output, the batch of one shown as PyTorch gives it
    assert err.startswith("warning: archc cannot write") and "E120" in err and "cumsum" in err


def test_other_commands_still_stop_at_the_import_error(source: str) -> None:
    code, out, err = run_cli("diagram", source, "--input", "3x20x20")
    assert code == 1 and "error[E120]" in err and out == ""


def test_summary_of_a_timm_model_archc_cannot_write_counts_its_parameters() -> None:
    import timm

    reference = sum(p.numel() for p in timm.create_model("davit_tiny").parameters())
    code, out, err = run_cli("summary", "timm:davit_tiny")
    assert code == 0 and "E120" in err
    assert f"params: {reference:,} " in out
