"""A forward that runs over the block's members (`for layer in members`), as torchvision's DenseNet block does:
against torchvision's _DenseBlock (strict state_dict load, equal outputs with the BatchNorm statistics randomised),
a residual around each member against the same computation by hand, shapes against forward hooks, and the errors
of a loop archc does not take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torchvision.models.densenet import _DenseBlock

from tests.conftest import run_cli
from tests.test_language_cases import assert_pass_matches_module
from tests.zoo_helpers import randomize_batchnorm_statistics

torch.set_num_threads(1)

DENSE = """
block DenseLayer(growth_rate, bn_size) {
    norm1 = batchnorm()
    relu1 = relu(inplace = true)
    conv1 = conv(bn_size * growth_rate, 1, bias = false)
    norm2 = batchnorm()
    relu2 = relu(inplace = true)
    conv2 = conv(growth_rate, 3, padding = 1, bias = false)
}

block DenseBlock(num_layers, bn_size, growth_rate) {
    for i in range(num_layers) {
        "denselayer{i + 1}" = DenseLayer(growth_rate, bn_size)
    }
    forward(x) {
        for layer in members {
            new_features = layer(x)
            x = cat(x, new_features)
        }
        return x
    }
}

arch Net(layers = 3) {
    input (8, 12, 12)
    block = DenseBlock(layers, 2, 4)
}
"""


@pytest.mark.parametrize("layers", [1, 3])
def test_a_loop_over_members_equals_torchvision_dense_block(compile_arch: Any, layers: int) -> None:
    compiled, module = compile_arch(DENSE, overrides={"layers": layers})
    model = module.model(layers=layers)
    assert compiled.arch.nodes[compiled.arch.outputs[0]].shape == [8 + 4 * layers, 12, 12]
    reference = _DenseBlock(layers, 8, bn_size=2, growth_rate=4, drop_rate=0.0)
    torch.manual_seed(0)
    randomize_batchnorm_statistics(reference, affine=True)
    model.block.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        for scale in (1.0, 10.0):
            torch.testing.assert_close(model(x * scale), reference(x * scale))
            # every layer's own output, as the reference computes it from the features before it
            features = [x * scale]
            for name, layer in reference.items():
                new = layer(features)
                torch.testing.assert_close(getattr(model.block, name)(torch.cat(features, 1)), new)
                features.append(new)
    assert_pass_matches_module(compiled, model)


RESIDUAL = """
block Stack(n, width) {
    for i in range(n) {
        seq(conv(width, 3, padding = 1), batchnorm(), relu())
    }
    forward(x) {
        for layer in members {
            x = x + layer(x)
        }
        return x
    }
}

arch Net() {
    input (6, 8, 8)
    stack = Stack(3, 6)
}
"""


def test_a_residual_around_each_member(compile_arch: Any) -> None:
    compiled, module = compile_arch(RESIDUAL)
    model = module.model().eval()
    randomize_batchnorm_statistics(model, affine=True)
    x = torch.randn(2, 6, 8, 8)
    expected = x
    with torch.no_grad():
        for layer in model.stack:
            expected = expected + layer(expected)
        torch.testing.assert_close(model(x), expected)
    assert [n.name for n in compiled.arch.nodes if n.op == "add"] == ["stack.add", "stack.add_1", "stack.add_2"]
    assert_pass_matches_module(compiled, model)


@pytest.mark.parametrize(
    ("forward", "where", "words"),
    [
        ("for v in [1, 2] {\n            x = c(x)\n        }\n        return x", "6:18", "runs over the block's members"),
        ("for layer in members {\n            y = layer(x)\n        }\n        return y", "6:9", "is the loop, then `return x`"),
        ("x = c(x)\n        for layer in members {\n            x = layer(x)\n        }\n        return x", "7:9", "is the loop"),
        ("for layer in members {\n            return layer(x)\n        }\n        return x", "7:13", "assigns tensors"),
    ],
)
def test_loops_archc_does_not_take_are_located(tmp_path: Path, forward: str, where: str, words: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(
        "block B() {\n    c = conv(4, 1)\n    d = conv(4, 1)\n    e = conv(4, 1)\n    forward(x) {\n"
        f"        {forward}\n    }}\n}}\n\narch Net() {{\n    input (4, 8, 8)\n    B()\n}}\n"
    )
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert f"{spec}:{where}:" in outcome.err and words in outcome.err, outcome.err
