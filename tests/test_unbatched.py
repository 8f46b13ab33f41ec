"""Tensors without a batch (a `param`, a `buffer`, what is computed from them) in a forward: elementwise activations
keep them batch-less; a member, or any other op of one tensor, applied to one is E081 at the call (it used to read the
tensor's first dimension as the batch and emit code that fails or computes something else).

The reference for the numbers is PyTorch run on the generated module's own parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archc.compiler import compile_spec
from archc.errors import ArchError
from tests.conftest import compile_text

ACTIVATED = """\
block Scaled() {
    scale = param((3, 1, 1))
    bias = param((3,))
    forward(x) {
        return x * (16 * sigmoid(scale)) + reshape(gelu(bias), (1, 3, 1, 1))
    }
}
arch model() = Scaled() { input (3, 4, 4) }
"""


def test_an_activation_of_a_param_has_no_batch_and_computes_what_pytorch_does(tmp_path: Path) -> None:
    compiled, module = compile_text(ACTIVATED, tmp_path)
    model = module.model().eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
        x = torch.randn(2, 3, 4, 4)
        expected = x * (16 * torch.sigmoid(model.scale)) + torch.nn.functional.gelu(model.bias).reshape(1, 3, 1, 1)
        assert torch.equal(model(x), expected)
        assert model(x[:1]).shape == (1, 3, 4, 4)
    assert compiled.params.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("body", "what", "column"),
    [
        ("return x + reshape(mlp(table), (1, 3, 3))", "member `mlp` is applied to a tensor without a batch", 32),
        ("return x + reshape(softmax(table, -1), (1, 3, 2))", "inline `softmax` of a tensor without a batch", 36),
        ("return x + reshape(mlp(2 * table), (1, 3, 3))", "member `mlp` is applied to a tensor without a batch", 34),
    ],
)
def test_a_member_or_op_applied_to_a_buffer_is_refused_at_the_call(tmp_path: Path, body: str, what: str, column: int) -> None:
    text = f"""\
block A() {{
    table = buffer(tensor(((1.0, 2.0), (3.0, 4.0), (5.0, 6.0))))
    mlp = seq(linear(8), relu(), linear(3, bias = false))
    forward(x) {{
        {body}
    }}
}}
arch t() = A() {{ input (3, 3, 2) }}
"""
    (tmp_path / "t.arch").write_text(text)
    with pytest.raises(ArchError) as e:
        compile_spec(tmp_path / "t.arch")
    assert e.value.code == "E081" and what in e.value.message, e.value.message
    assert e.value.loc is not None and (e.value.loc.line, e.value.loc.column) == (5, column), e.value.loc


def test_summary_rows_of_such_tensors_have_no_batch_as_the_module_computes_them(tmp_path: Path) -> None:
    from archc.tools.summary import summary_data

    compiled, module = compile_text(ACTIVATED, tmp_path)
    model = module.model()
    rows = {row["name"]: row for row in summary_data(compiled)["layers"]}
    with torch.no_grad():
        assert not rows["sigmoid"]["batched"] and tuple(rows["sigmoid"]["shape"]) == tuple(torch.sigmoid(model.scale).shape)
        assert not rows["reshape"]["batched"] and tuple(rows["reshape"]["shape"]) == (1, 3, 1, 1)
    assert rows["add"]["batched"]
