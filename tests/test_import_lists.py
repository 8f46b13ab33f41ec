"""`archc import` of modules whose forward applies the items of a list of modules one by one (docs/import.md): a
ModuleList applied in a Python loop (Res2Net's scales), by index out of order, a ModuleDict subclass with a forward of
its own (timm's MixedConv2d), a Sequential subclass taking a list (VoVNet's SequentialAppendList), `torch.stack` and
`torch.softmax` (SelectiveKernel). Each import is compiled and built, the model's state_dict loaded strictly into it
(so the keys are the model's), and its output compared with the model's."""

from __future__ import annotations

from pathlib import Path

import torch

from archc.compiler import compile_spec
from archc.tools.importer import import_source
from archc.tools.runtime import build_model

torch.set_num_threads(1)

HEADER = """
import torch
from torch import nn
from torch.nn import functional as F
"""

RES2 = (
    HEADER
    + '''
class Res2(nn.Module):
    """timm's Bottle2neck, in small: the scales applied in a loop over two ModuleLists."""

    def __init__(self, chs, width, scale, first):
        super().__init__()
        self.width, self.first = width, first
        self.conv1 = nn.Conv2d(chs, width * scale, 1, bias=False)
        self.convs = nn.ModuleList([nn.Conv2d(width, width, 3, padding=1, bias=False) for _ in range(scale - 1)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(scale - 1)])
        self.pool = nn.AvgPool2d(3, stride=1, padding=1) if first else None
        self.conv3 = nn.Conv2d(width * scale, chs, 1, bias=False)

    def forward(self, x):
        spx = torch.split(F.relu(self.conv1(x)), self.width, 1)
        spo = []
        sp = spx[0]  # taken and never used: timm does this
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            sp = spx[i] if i == 0 or self.first else sp + spx[i]
            sp = F.relu(bn(conv(sp)))
            spo.append(sp)
        spo.append(self.pool(spx[-1]) if self.pool is not None else spx[-1])
        return F.relu(self.conv3(torch.cat(spo, 1)) + x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.a = Res2(16, 4, 4, True)
        self.b = Res2(16, 4, 4, False)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.b(self.a(self.stem(x))).mean((2, 3)))
'''
)

INDEXED = (
    HEADER
    + '''
class Block(nn.Module):
    """Items applied by index, out of order, and a piece of a split read twice."""

    def __init__(self, chs):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(chs // 2, chs // 2, k, padding=k // 2) for k in (1, 3, 5)])

    def forward(self, x):
        a, b = torch.chunk(x, 2, dim=1)
        y = self.convs[2](a) + self.convs[0](a)
        return torch.cat([y, self.convs[1](b)], dim=1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = Block(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.block(self.stem(x)).mean((2, 3)))
'''
)

OWN_LISTS = (
    HEADER
    + '''
class MixedConv(nn.ModuleDict):
    """timm's MixedConv2d: a ModuleDict of convolutions, one per channel group, with a forward of its own."""

    def __init__(self, chs, kernels):
        super().__init__()
        self.splits = [chs // len(kernels)] * len(kernels)
        for i, k in enumerate(kernels):
            self.add_module(str(i), nn.Conv2d(self.splits[i], self.splits[i], k, padding=k // 2, groups=self.splits[i]))

    def forward(self, x):
        parts = torch.split(x, self.splits, 1)
        return torch.cat([c(parts[i]) for i, c in enumerate(self.values())], 1)


class AppendList(nn.Sequential):
    """timm's SequentialAppendList: each item applied to the one before, every output appended to a list."""

    def forward(self, x, concat_list):
        for i, module in enumerate(self):
            concat_list.append(module(x if i == 0 else concat_list[-1]))
        return torch.cat(concat_list, dim=1)


class Osa(nn.Module):
    def __init__(self, chs):
        super().__init__()
        self.mixed = MixedConv(chs, (3, 5))
        self.conv_mid = AppendList(*[nn.Sequential(nn.Conv2d(chs, chs, 3, padding=1), nn.ReLU()) for _ in range(3)])
        self.conv_concat = nn.Conv2d(4 * chs, chs, 1)

    def forward(self, x):
        x = self.mixed(x)
        return self.conv_concat(self.conv_mid(x, [x]))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.osa = Osa(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.osa(self.stem(x)).mean((2, 3)))
'''
)

SELECTIVE = (
    HEADER
    + '''
class Selective(nn.Module):
    """timm's SelectiveKernel, in small: paths over one input, stacked, weighted by a softmax over the paths."""

    def __init__(self, chs):
        super().__init__()
        self.paths = nn.ModuleList([nn.Conv2d(chs, chs, 3, padding=d, dilation=d) for d in (1, 2)])
        self.fc = nn.Conv2d(chs, 2 * chs, 1)

    def forward(self, x):
        x = torch.stack([op(x) for op in self.paths], dim=1)
        attn = self.fc(x.sum(1).mean((2, 3), keepdim=True))
        b, c, h, w = attn.shape
        attn = torch.softmax(attn.view(b, 2, c // 2, h, w), dim=1)
        return torch.sum(x * attn, dim=1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.sk = Selective(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.sk(self.stem(x)).mean((2, 3)))
'''
)


def _imported(tmp_path: Path, code: str) -> tuple[str, torch.nn.Module, torch.nn.Module]:
    """(the spec, the model, the generated module with the model's state_dict loaded strictly)."""
    (tmp_path / "net.py").write_text(code, encoding="utf-8")
    text, source = import_source(f"{tmp_path / 'net.py'}:Net", (3, 16, 16))
    compiled = compile_spec(Path(f"{source.name}.arch"), text=text)
    ours = build_model(compiled).eval()
    reference = source.model
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
    return text, reference, ours


def _assert_same_outputs(reference: torch.nn.Module, ours: torch.nn.Module) -> None:
    torch.manual_seed(1)
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # statistics other than the defaults, so a misplaced norm shows
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


def test_module_lists_applied_in_a_loop_are_applied_by_item(tmp_path: Path) -> None:
    text, reference, ours = _imported(tmp_path, RES2)
    assert "convs[0](" in text and "bns[2](" in text, text
    assert "pool(" in text, text  # the last scale of the first block, `spx[-1]`
    assert "for i in range(3) {\n        conv(4, 3, padding = 1, bias = false)\n    }" in text, text  # equal items: a loop
    _assert_same_outputs(reference, ours)


def test_items_applied_by_index_out_of_order_and_a_piece_read_twice(tmp_path: Path) -> None:
    text, reference, ours = _imported(tmp_path, INDEXED)
    assert "convs[2](" in text and "convs[0](" in text and "convs[1](" in text, text
    _assert_same_outputs(reference, ours)


def test_lists_with_a_forward_of_their_own_are_traced_into_their_caller(tmp_path: Path) -> None:
    text, reference, ours = _imported(tmp_path, OWN_LISTS)
    assert "mixed[1](" in text and "conv_mid[2](" in text, text
    assert "block MixedConv(" in text and "block AppendList(" in text, text  # declared as lists, no forward of their own
    _assert_same_outputs(reference, ours)


def test_stack_and_a_softmax_over_the_paths(tmp_path: Path) -> None:
    text, reference, ours = _imported(tmp_path, SELECTIVE)
    assert "paths[0](" in text and "paths[1](" in text and "unflatten(" in text, text
    _assert_same_outputs(reference, ours)


WIDTHS = (
    HEADER
    + """
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(8, 4, 1), nn.Conv2d(4, 4, 1)])

    def forward(self, x):
        y = self.convs[0](x)
        return self.convs[1](y) + y


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 1)
        self.block = Block()

    def forward(self, x):
        return self.block(self.stem(x))
"""
)


def test_items_of_one_list_that_chain_at_different_widths(tmp_path: Path) -> None:
    """convs[0] takes 8 channels, convs[1] its 4: items that chain (the language's chained list, VoVNet's conv_mid)."""
    text, reference, ours = _imported(tmp_path, WIDTHS)
    assert "convs[0](" in text and "convs[1](" in text, text
    _assert_same_outputs(reference, ours)
