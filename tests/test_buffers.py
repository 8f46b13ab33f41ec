"""Fixed tensors made at build time (`buffer(...)` members) and `roll`, against PyTorch: the emitted buffers equal the
references' bit for bit (torchvision's Swin `relative_position_index`, timm's BlurPool2d `filt`), the state_dict keys
follow `persistent`, the counts and the memory pass agree with the module built, and roll's receptive field with the
input gradients."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from archc.errors import ArchError
from archc.passes.macs import count_macs
from archc.passes.memory import estimate_memory
from archc.passes.receptive_field import compute_receptive_fields
from tests.test_language_cases import assert_pass_matches_module

# Swin's relative position index written without meshgrid or in-place updates: position p of a ws×ws window is row
# p // ws and column p % ws; the index of the pair (i, j) is (dh + ws - 1) * m + dw + ws - 1 with m = 2 * ws - 1, that
# is k(i) - k(j) + (ws - 1) * (m + 1) with k(p) = row * m + column.
BUFFERS = """
block RelativePositionIndex(ws) {
    let n = ws * ws
    let m = 2 * ws - 1
    relative_position_index = buffer(
        flatten((arange(n) // ws * m + arange(n) % ws)[:, none] - (arange(n) // ws * m + arange(n) % ws)[none, :] + (ws - 1) * (m + 1)),
    )
    forward(x) = x + reshape(relative_position_index, (1, n, n))
}

block Blur(planes) {
    filt = buffer(
        repeat((tensor((0.25, 0.5, 0.25))[:, none] * tensor((0.25, 0.5, 0.25))[none, :])[none, none], (planes, 1, 1, 1)),
        persistent = false,
    )
    pool = adaptive_avgpool(3)
    forward(x) = pool(x) * reshape(filt, (planes, 3, 3))
}

arch Net(ws = 7) {
    input (3, 49, 49)
    c = conv(16, 3, padding = 1)
    r = RelativePositionIndex(ws)
    b = Blur(16)
    forward(x) = b(r(c(x)))
}
"""


@pytest.fixture(scope="module")
def buffers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import compile_text

    return compile_text(BUFFERS, tmp_path_factory.mktemp("buffers"), "model", None)


def test_swin_relative_position_index_equals_torchvision(buffers: Any) -> None:
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    compiled, module = buffers
    for ws in (7, 4, 3):
        ours = module.RelativePositionIndex(ws).relative_position_index
        reference = ShiftedWindowAttention(32, [ws, ws], [0, 0], 4).relative_position_index
        assert ours.dtype == reference.dtype and torch.equal(ours, reference)
    model = module.model()
    # Persistent, as torchvision's: in the state_dict under the reference's name.
    assert "r.relative_position_index" in model.state_dict()


def test_blurpool_filter_equals_timm(buffers: Any) -> None:
    from timm.layers import BlurPool2d

    compiled, module = buffers
    for planes in (16, 5):
        ours = module.Blur(planes).filt
        reference = BlurPool2d(planes, filt_size=3, stride=2).filt
        assert ours.dtype == reference.dtype and torch.equal(ours, reference)
    model = module.model()
    # Not persistent, as timm's: a buffer of the module, absent from the state_dict.
    assert "b.filt" in dict(model.named_buffers()) and "b.filt" not in model.state_dict()
    assert "filt" not in BlurPool2d(16).state_dict()


def test_counts_shapes_and_memory_agree_with_the_module(buffers: Any) -> None:
    compiled, module = buffers
    model = module.model()
    # Buffers counted, not parameters (`assert_pass_matches_module`'s hooks would take the block `r`, which holds no
    # module, for a leaf).
    assert compiled.params.params == sum(p.numel() for p in model.parameters())
    assert compiled.params.buffers == sum(b.numel() for b in model.buffers())
    shapes = {n.name: tuple(n.shape) for n in compiled.arch.nodes}
    assert shapes["r.relative_position_index"] == tuple(model.r.relative_position_index.shape)
    assert shapes["b.filt"] == tuple(model.b.filt.shape)
    memory = estimate_memory(compiled.arch)
    assert memory.buffer_bytes == sum(b.numel() * b.element_size() for b in model.buffers())
    assert memory.param_bytes == sum(p.numel() * p.element_size() for p in model.parameters())
    x = torch.randn(2, 3, 49, 49)
    y = model(x)
    assert tuple(y.shape[1:]) == tuple(compiled.arch.nodes[compiled.arch.outputs[0]].shape)
    index = model.r.relative_position_index.reshape(1, 49, 49)
    expected = model.b.pool(model.c(x) + index) * model.b.filt.reshape(16, 3, 3)
    assert torch.equal(y, expected)


def test_buffer_errors_are_located(compile_arch: Any) -> None:
    cases = {
        "buffer(reshape(arange(6), (4, 2)))": "6 elements do not make the sizes",
        "buffer(arange(3)[:, none] + arange(4)[:2, none])": "cannot broadcast",
        "buffer(permute(arange(6), (1, 0)))": "out of range",
        "buffer(7)": "a buffer is a tensor",
        "buffer(tensor(((1, 2), (3,))))": "rows differ in length",
    }
    for expr, message in cases.items():
        text = f"""
        arch Net() {{
            input (4, 8, 8)
            t = {expr}
            c = conv(4, 3, padding = 1)
            forward(x) = c(x)
        }}
        """
        with pytest.raises(ArchError) as e:
            compile_arch(text)
        assert e.value.code == "E088" and message in e.value.message, (expr, e.value)
        assert e.value.loc is not None and e.value.loc.line == 4


ROLL = """
arch Net() {
    input (3, 32, 32)
    c = conv(8, 3, stride = 2, padding = 1)
    forward(x) = roll(c(x), (-3, 2), (2, 3))
}
"""


def test_roll_equals_torch_roll_costs_nothing_and_moves_the_field(compile_arch: Any) -> None:
    compiled, module = compile_arch(ROLL)
    model = module.model().eval()
    assert_pass_matches_module(compiled, model)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    y = model(x)
    assert torch.equal(y, torch.roll(model.c(x), (-3, 2), (2, 3)))
    with FlopCounterMode(display=False) as counter:
        model(x[:1])  # MACs are per image
    assert count_macs(compiled.arch).macs == counter.get_total_flops() // 2
    # The first output unit's field, from the input gradients: its extent and centre per dimension.
    with torch.no_grad():
        model.c.weight.fill_(1.0)
    model(x)[0, :, 0, 0].sum().backward()
    assert x.grad is not None
    touched = x.grad[0].abs().sum(0).nonzero()
    rows, cols = touched[:, 0], touched[:, 1]
    field = compute_receptive_fields(compiled.arch).output.as_dict()
    assert field["size"] == [int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)]
    assert field["start"] == [float(rows.max() + rows.min()) / 2, float(cols.max() + cols.min()) / 2]
    assert field["jump"] == [2, 2]


BLURPOOL = """
# timm's BlurPool2d(planes, filt_size = 3, stride = 2): reflect padding, then a convolution per channel by `filt`.
block BlurPool2d(planes, stride = 2) {
    filt = buffer(
        repeat((tensor((0.25, 0.5, 0.25))[:, none] * tensor((0.25, 0.5, 0.25))[none, :])[none, none], (planes, 1, 1, 1)),
        persistent = false,
    )
    forward(x) = conv2d(pad(x, (1, 1, 1, 1), mode = "reflect"), filt, stride = stride, groups = planes)
}

arch Net() {
    input (3, 32, 32)
    c = conv(16, 3, padding = 1)
    aa = BlurPool2d(16)
    forward(x) = aa(c(x))
}
"""


def test_conv2d_by_a_buffer_is_timms_blurpool(compile_arch: Any) -> None:
    from timm.layers import BlurPool2d

    compiled, module = compile_arch(BLURPOOL)
    model = module.model().eval()
    reference = BlurPool2d(16, filt_size=3, stride=2).eval()
    x = torch.randn(2, 16, 32, 32)
    assert torch.equal(model.aa(x), reference(x))
    assert compiled.params.buffers == sum(b.numel() for b in model.buffers())
    y = model(torch.randn(2, 3, 32, 32))
    assert tuple(y.shape[1:]) == tuple(compiled.arch.nodes[compiled.arch.outputs[0]].shape)
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 32, 32))
    assert count_macs(compiled.arch).macs == counter.get_total_flops() // 2
    # The field of the first output unit against the input gradients (weights made positive, so nothing cancels).
    with torch.no_grad():
        model.c.weight.fill_(1.0)
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    model(x)[0, :, 1, 1].sum().backward()  # unit (1, 1): unit (0, 0) reads the reflected border
    assert x.grad is not None
    touched = x.grad[0].abs().sum(0).nonzero()
    rows, cols = touched[:, 0], touched[:, 1]
    field = compute_receptive_fields(compiled.arch).output.as_dict()
    assert field["size"] == [int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)]
    jump = field["jump"]
    assert [field["start"][0] + jump[0], field["start"][1] + jump[1]] == [
        float(rows.max() + rows.min()) / 2,
        float(cols.max() + cols.min()) / 2,
    ]


def test_conv2d_weight_errors(compile_arch: Any) -> None:
    text = """
    arch Net() {
        input (4, 8, 8)
        w = buffer(reshape(arange(9) * 1.0, (1, 1, 3, 3)))
        forward(x) = conv2d(x, w)
    }
    """
    with pytest.raises(ArchError) as e:
        compile_arch(text)
    assert e.value.code == "E033" and "1 input channels per group" in e.value.message
    with pytest.raises(ArchError) as e:
        compile_arch(text.replace("conv2d(x, w)", "conv2d(x, x)"))
    assert e.value.code == "E081" and e.value.loc is not None and e.value.loc.line == 5


BLURRED = """\
import torch
from torch import nn
from timm.layers import BlurPool2d


class Blurred(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.aa1 = BlurPool2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.aa2 = BlurPool2d(16)
        self.scaled = Scaled()

    def forward(self, x):
        return self.scaled(self.aa2(self.conv2(self.aa1(self.conv1(x)))))


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.arange(16.0).reshape(16, 1, 1) / 3)

    def forward(self, x):
        return x * self.scale


class Large(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("table", (torch.arange(4096) % 7).reshape(4096, 1, 1).float())
        self.conv = nn.Conv2d(3, 4096, 1)

    def forward(self, x):
        return self.conv(x) * self.table
"""


def test_import_writes_buffers_and_the_round_trip_is_equal(tmp_path: Path) -> None:
    from archc.tools.importer import import_source, round_trip

    (tmp_path / "blurred.py").write_text(BLURRED, encoding="utf-8")
    text, _ = import_source(f"{tmp_path / 'blurred.py'}:Blurred", (3, 32, 32))
    # One block for both BlurPools, the filter's count of channels a parameter; the persistent buffer kept so.
    assert text.count("block BlurPool2d(") == 1 and "persistent = false" in text and "conv2d(x, filt, stride = 2, groups = " in text
    # The float32 values written as the doubles they are, so the literal gives them back exactly.
    assert "scale = buffer(" in text and "((0.3333333432674408,),)," in text and text.count("persistent") == 1, text
    assert "repeat(tensor(((((0.0625, 0.125, 0.0625), " in text and "(channels_value, 1, 1, 1))" in text, text
    # The reference is the model itself: state_dict, settings, every module's output, the SGD step.
    verdict = round_trip(f"{tmp_path / 'blurred.py'}:Blurred")
    assert verdict.verdict == "equal", verdict.reason
    with pytest.raises(ArchError) as e:
        import_source(f"{tmp_path / 'blurred.py'}:Large", (3, 8, 8))
    assert e.value.code == "E120" and "buffer `table` of 4,096 values, which no repeat of a smaller tensor gives" in e.value.message


def test_recognised_index_constructions_compile_to_the_references_buffers(compile_arch: Any) -> None:
    """The importer writes relative position indices with `arange`; the text it writes, compiled by archc and built
    in PyTorch, equals torchvision's Swin index and timm's EfficientFormer attention-bias indices bit for bit."""
    import timm
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    from archc.tools.importer import Slot, _index_construction

    references = {
        "swin": ShiftedWindowAttention(32, [7, 7], [0, 0], 4).relative_position_index,
        "swin4": ShiftedWindowAttention(32, [4, 4], [0, 0], 4).relative_position_index,
        "efficientformer": timm.create_model("efficientformer_l1").stages[3].blocks[4].token_mixer.attention_bias_idxs,
    }
    for name, reference in references.items():
        found = _index_construction(reference)
        assert found is not None, name
        parts, built = found
        assert torch.equal(built, reference)
        expr = "".join(str(p.value) if isinstance(p, Slot) else str(p) for p in parts)
        n = math.isqrt(reference.numel())
        compiled, module = compile_arch(
            f"""
            arch Net() {{
                input (1, {n}, {n})
                index = buffer({expr})
                c = conv(1, 1)
                forward(x) = c(x) + reshape(index, (1, {n}, {n}))
            }}
            """,
            name,
        )
        ours = getattr(module, name)().index
        assert ours.dtype == reference.dtype and torch.equal(ours, reference), name
    assert _index_construction(torch.arange(2401)) is None
