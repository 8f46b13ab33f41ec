"""`table[index]`: a learnable or fixed tensor's rows gathered by an integer `buffer` (MaxViT's and Swin's relative
position bias, `self.relative_position_bias_table[self.relative_position_index]`), against PyTorch: the generated
module's output equals the reference computation with torchvision's own index, the shape pass the tensor PyTorch
makes, MACs FlopCounterMode's (a gather counts none), and an index that is not an integer buffer is a located E089."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from archc.errors import ArchError
from archc.passes.macs import count_macs

GATHER = """
block Bias(ws, heads) {
    let n = ws * ws
    let m = 2 * ws - 1
    relative_position_bias_table = param((m * m, heads))
    relative_position_index = buffer(
        (arange(n) // ws * m + arange(n) % ws)[:, none] - (arange(n) // ws * m + arange(n) % ws)[none, :] + (ws - 1) * (m + 1),
    )
    forward(x) = x + reshape(relative_position_bias_table[reshape(relative_position_index, (-1,))], (n, n, heads))
}

arch Net(ws = 3, heads = 4) {
    input (3, 9, 9)
    c = conv(heads, 3, padding = 1)
    b = Bias(ws, heads)
    forward(x) = b(reshape(permute(c(x), (0, 2, 3, 1)), (ws * ws, ws * ws, heads)))
}
"""


@pytest.fixture(scope="module")
def gathered(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.conftest import compile_text

    return compile_text(GATHER, tmp_path_factory.mktemp("gather"), "model", None)


def test_gather_is_torchvision_maxvit_bias_and_the_emitted_code_indexes(gathered: Any) -> None:
    from torchvision.models.maxvit import RelativePositionalMultiHeadAttention

    compiled, module = gathered
    model = module.model().eval()
    reference = RelativePositionalMultiHeadAttention(16, 4, 9)  # 4 heads over a 3×3 window
    # archc's index is torchvision's, value for value, and the gather its `get_relative_positional_bias`.
    assert torch.equal(model.b.relative_position_index, reference.relative_position_index)
    with torch.no_grad():
        model.b.relative_position_bias_table.copy_(reference.relative_position_bias_table)
        bias = reference.get_relative_positional_bias()[0].permute(1, 2, 0)  # (9, 9, heads)
        x = torch.randn(2, 3, 9, 9)
        y = model(x)
        expected = model.c(x).permute(0, 2, 3, 1).reshape(2, 9, 9, 4) + bias
    assert torch.equal(y, expected)
    source = compiled.python()
    assert "self.relative_position_bias_table[" in source and "self.relative_position_index.reshape(-1)" in source, source


def test_gather_shape_params_and_macs_agree_with_pytorch(gathered: Any) -> None:
    compiled, module = gathered
    model = module.model().eval()
    nodes = {n.name: n for n in compiled.arch.nodes}
    gather = nodes["b.gather"]
    table, index = model.b.relative_position_bias_table, model.b.relative_position_index
    assert tuple(gather.shape) == tuple(table[index.flatten()].shape)  # index.shape + table.shape[1:], no batch
    assert compiled.params.params == sum(p.numel() for p in model.parameters())
    assert compiled.params.buffers == sum(b.numel() for b in model.buffers())
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 9, 9))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()


@pytest.mark.parametrize(
    ("forward", "member", "message"),
    [
        ("c(x)[reshape(idx, (-1,))]", "idx = buffer(arange(4))", "only a `param` or `buffer`"),
        ("x + reshape(table[c(x)], (9, 9, 4))", "", "not one"),
        ("x + reshape(table[floats], (9, 9, 4))", "floats = buffer(tensor((0.5, 1.5)))", "not one"),
        ("x + reshape(table[table], (9, 9, 4))", "", "not one"),
    ],
)
def test_an_index_that_is_not_an_integer_buffer_is_a_located_e089(compile_arch: Any, forward: str, member: str, message: str) -> None:
    text = f"""
arch Net() {{
    input (4, 9, 9)
    c = conv(4, 1)
    table = param((25, 4))
    {member}
    forward(x) = {forward}
}}
"""
    with pytest.raises(ArchError) as e:
        compile_arch(text)
    assert e.value.code == "E089" and message in e.value.message, e.value
    assert e.value.loc is not None and e.value.loc.line == 7, e.value.loc


PERMUTED = """
block Bias(ws, heads) {
    let n = ws * ws
    let m = 2 * ws - 1
    relative_position_bias_table = param((m * m, heads))
    relative_position_index = buffer(
        (arange(n) // ws * m + arange(n) % ws)[:, none] - (arange(n) // ws * m + arange(n) % ws)[none, :] + (ws - 1) * (m + 1),
    )
    forward(x) = x + reshape(
        permute(reshape(relative_position_bias_table[reshape(relative_position_index, (-1,))], (n, n, heads)), (2, 0, 1)),
        (1, heads, n, n),
    )
}

arch Net() {
    input (3, 8, 8)
    c = conv(2, 3, padding = 1)
    b = Bias(2, 2)
    forward(x) = b(reshape(c(x), (4, 2, 4, 4)))
}
"""


def test_a_gathered_table_permuted_by_its_own_dimensions_is_maxvits_bias(compile_arch: Any) -> None:
    from torchvision.models.maxvit import RelativePositionalMultiHeadAttention

    compiled, module = compile_arch(PERMUTED)
    model = module.model().eval()
    reference = RelativePositionalMultiHeadAttention(8, 4, 4)  # 2 heads over a 2×2 window
    with torch.no_grad():
        model.b.relative_position_bias_table.copy_(reference.relative_position_bias_table)
        x = torch.randn(2, 3, 8, 8)
        expected = model.c(x).reshape(2, 4, 2, 4, 4) + reference.get_relative_positional_bias()  # (1, heads, n, n)
        assert torch.equal(model(x), expected)
    # The permute moves the table's own dimensions (no batch): the shape pass has torchvision's bias shape.
    nodes = {n.name: n for n in compiled.arch.nodes}
    assert tuple(nodes["b.permute"].shape) == tuple(reference.get_relative_positional_bias().shape[1:])
    assert ".permute(2, 0, 1)" in compiled.python()
