"""`archc import` writes a block's module calls in the order the model applies them (issue 15): a value the model
computes before a call the written expression would evaluate first gets its own assignment where the model computes
it, so the generated forward, and its backward pass, run in the model's order; verify's full check (outputs and the
SGD step, relative tolerance 1e-5) holds the round trip."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import torch

from archc.tools.importer import import_source, round_trip

MODEL = """
import torch
from torch import nn


class Block(nn.Module):
    # timm's RepVggBlock: the shortcut first, then the two branches, then the sum.
    def __init__(self, dim):
        super().__init__()
        self.shortcut = nn.BatchNorm2d(dim)
        self.conv_1x1 = nn.Conv2d(dim, dim, 1)
        self.conv_kxk = nn.Conv2d(dim, dim, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        identity = self.shortcut(x)
        x = self.conv_1x1(x) + self.conv_kxk(x)
        return self.act(x + identity)


class InOrder(nn.Module):
    # The shortcut last: the expression as written already evaluates in the model's order.
    def __init__(self, dim):
        super().__init__()
        self.shortcut = nn.BatchNorm2d(dim)
        self.conv_1x1 = nn.Conv2d(dim, dim, 1)
        self.conv_kxk = nn.Conv2d(dim, dim, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x):
        y = self.conv_1x1(x) + self.conv_kxk(x)
        return self.act(y + self.shortcut(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.block1 = Block(16)
        self.block2 = InOrder(16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(x.mean((2, 3)))
"""

CALLS = ("shortcut", "conv_1x1", "conv_kxk")


def _model_order(path: Path, block: str) -> list[str]:
    """The order the model applies its block's members, seen by forward hooks (the reference, not archc's text)."""
    spec = importlib.util.spec_from_file_location("order_net", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Net()
    seen: list[str] = []
    for name, child in getattr(net, block).named_children():
        child.register_forward_hook(lambda m, a, o, name=name: seen.append(name))
    net(torch.randn(1, 3, 16, 16))
    return [name for name in seen if name in CALLS]


def _written_order(text: str, block: str) -> list[str]:
    """The order the block's written forward evaluates its calls: statements top to bottom, each expression's
    operands left to right before the op that takes them (innermost calls first)."""
    body = text[text.index(f"block {block}(") :]
    body = body[body.index("forward(x)") : body.index("\n}")]
    order: list[str] = []
    for line in body.splitlines():
        expression = line.split("=", 1)[-1] if re.match(r"\s*\w+ = ", line) else line
        # A call is evaluated when its closing parenthesis is reached: order the calls by that position.
        stack: list[tuple[str, int]] = []
        closes: list[tuple[int, str]] = []
        for m in re.finditer(r"(\w+)\(|\)", expression):
            if m.group(0) == ")":
                name, _ = stack.pop()
                closes.append((m.start(), name))
            else:
                stack.append((m.group(1), m.start()))
        order += [name for _, name in sorted(closes) if name in CALLS]
    return order


def test_calls_written_in_the_models_order_round_trip_equal(tmp_path: Path) -> None:
    path = tmp_path / "order_net.py"
    path.write_text(MODEL, encoding="utf-8")
    text, _ = import_source(f"{path}:Net", (3, 32, 32))
    assert _model_order(path, "block1") == list(CALLS)
    assert _written_order(text, "Block") == _model_order(path, "block1"), text
    assert "= shortcut(x)" in text, text  # the shortcut gets its own assignment where the model computes it
    # Where the written order already is the model's, the forward stays one expression.
    assert _written_order(text, "InOrder") == _model_order(path, "block2"), text
    assert "forward(x) = act(conv_1x1(x) + conv_kxk(x) + shortcut(x))" in text, text
    verdict = round_trip(f"{path}:Net")
    assert verdict.verdict == "equal", verdict.reason


DROP_PATH = """
from torch import nn
from timm.layers import DropPath


class Block(nn.Module):
    def __init__(self, dim, p):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.drop_path = DropPath(p)

    def forward(self, x):
        return x + self.drop_path(self.conv(x))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.block1 = Block(8, 0.25)
        self.block2 = Block(8, 0.5)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(x.mean((2, 3)))
"""


def test_timm_drop_path_is_stochastic_depth_drawn_in_the_models_order(tmp_path: Path) -> None:
    """timm's DropPath draws its mask from the global generator as torchvision's stochastic depth does: imported as
    the op, verify's training run (both models seeded alike) drops the same samples in every block."""
    path = tmp_path / "drop_net.py"
    path.write_text(DROP_PATH, encoding="utf-8")
    text, source = import_source(f"{path}:Net", (3, 16, 16))
    assert "stochastic_depth(" in text, text
    assert {m.drop_prob for m in source.model.modules() if type(m).__name__ == "DropPath"} == {0.25, 0.5}
    verdict = round_trip(f"{path}:Net")
    assert verdict.verdict == "equal", verdict.reason
