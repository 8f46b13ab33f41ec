"""GoogLeNet and Inception-v3 against torchvision: counts, strict weight loading, logits, auxiliary outputs, shapes.

Both reference models are built as torchvision's `googlenet(aux_logits=True, init_weights=True)` and
`inception_v3(aux_logits=True, init_weights=True)` (no weights, so transform_input is False).
"""

from __future__ import annotations

import unittest.mock
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

from archc.compiler import Compiled, compile_spec
from tests.conftest import SPECS, load_source
from tests.zoo_helpers import (
    assert_counts,
    assert_equals_reference,
    assert_same_logits,
    assert_shapes_match_hooks,
    built_fixture,
    count,
)

# shared/reference.md: params and buffers of torchvision's models with aux_logits=True.
REFERENCE = {
    "googlenet": (13_004_888, 15_131),
    "inception_v3": (27_161_264, 36_320),
}
# The number of outputs in training mode: logits and the auxiliary heads, in torchvision's order.
TRAINING_OUTPUTS = {"googlenet": 3, "inception_v3": 2}


def reference_model(name: str, **kwargs: Any) -> nn.Module:
    return getattr(torchvision.models, name)(init_weights=True, **kwargs)


# `built(name)` -> (compiled spec, generated model, torchvision model with its auxiliary heads), each built once.
built = built_fixture(lambda name: reference_model(name, aux_logits=True))


@pytest.fixture
def no_dropout() -> Iterator[None]:
    """Dropout as the identity on both sides (nn.Dropout calls F.dropout too): random masks would differ."""
    with unittest.mock.patch("torch.nn.functional.dropout", lambda x, *args, **kwargs: x):
        yield


@pytest.mark.parametrize("name", list(REFERENCE))
def test_parameter_and_buffer_counts_equal_generated_module_reference_and_published_figures(name: str, built: Any) -> None:
    compiled, model, reference = built(name)
    params, buffers = REFERENCE[name]
    assert_counts(compiled, model, params=params, buffers=buffers, reference=reference)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_reference_weights_load_strictly_and_eval_logits_match(name: str, built: Any) -> None:
    compiled, model, reference = built(name)
    assert_equals_reference(compiled, model, reference)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_eval_mode_returns_the_logits_tensor_alone(name: str, built: Any) -> None:
    compiled, model, reference = built(name)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, *compiled.arch.input_shape))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (1, 1000)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_training_mode_returns_logits_and_auxiliary_logits_equal_to_reference(name: str, built: Any, no_dropout: None) -> None:
    compiled, model, reference = built(name)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.train()
    reference.train()
    torch.manual_seed(0)
    # Batch 2: BatchNorm in training mode normalizes with batch statistics, on both sides alike.
    x = torch.randn(2, *compiled.arch.input_shape)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert isinstance(ours, tuple) and not isinstance(ours, torch.Tensor)
    assert len(ours) == len(theirs) == TRAINING_OUTPUTS[name]
    for our_output, their_output in zip(ours, theirs, strict=True):
        assert_same_logits(our_output, their_output)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_every_module_output_shape_equals_the_shape_pass_auxiliary_heads_included(name: str, built: Any) -> None:
    compiled, model, reference = built(name)
    # Training mode runs every node of the IR, the training-only auxiliary heads too.
    assert_shapes_match_hooks(compiled, model, training=True)


def test_exactly_the_auxiliary_head_nodes_are_training_only_in_the_ir(built: Any) -> None:
    for name, heads in (("googlenet", ("aux1", "aux2")), ("inception_v3", ("AuxLogits",))):
        compiled, model, reference = built(name)
        arch = compiled.arch
        assert len(arch.aux_outputs) == len(heads)
        for node in arch.nodes:
            assert node.training_only == ((node.scope or "").split(".")[0] in heads), node.name
        assert [arch.nodes[i].shape for i in arch.aux_outputs] == [[1000]] * len(heads)


def test_state_dict_keys_follow_torchvision_names(built: Any) -> None:
    googlenet_keys = set(built("googlenet")[1].state_dict())
    assert {"inception3a.branch2.1.conv.weight", "aux1.fc2.bias", "aux2.conv.bn.running_var"} <= googlenet_keys
    inception_keys = set(built("inception_v3")[1].state_dict())
    assert {"Conv2d_1a_3x3.conv.weight", "Mixed_6e.branch7x7dbl_3.bn.weight", "AuxLogits.conv0.conv.weight", "fc.bias"} <= inception_keys


def test_generated_googlenet_scripts_with_torch_jit_and_gives_the_eager_logits(built: Any) -> None:
    compiled, model, reference = built("googlenet")
    model.eval()
    scripted = torch.jit.script(model)
    x = torch.randn(2, *compiled.arch.input_shape)
    with torch.no_grad():
        eager = model(x)
        # As torchvision's, a scripted module returns the full tuple; the heads are None in eval mode.
        logits, aux2, aux1 = scripted(x)
    assert aux2 is None and aux1 is None
    assert_same_logits(logits, eager)


@pytest.fixture(scope="module")
def built_without_aux(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Compiled, nn.Module]]:
    """`built_without_aux(name)` -> the spec compiled with -D aux_logits=false -D num_classes=10, and its model."""
    cache: dict[str, tuple[Compiled, nn.Module]] = {}

    def build(name: str) -> tuple[Compiled, nn.Module]:
        if name not in cache:
            compiled = compile_spec(SPECS / f"{name}.arch", {"aux_logits": False, "num_classes": 10})
            module = load_source(compiled.python(), name, tmp_path_factory.mktemp(f"{name}_without_aux"))
            cache[name] = (compiled, getattr(module, name)())
        return cache[name]

    return build


@pytest.mark.parametrize("name", list(REFERENCE))
def test_without_aux_logits_the_heads_are_absent_and_counts_match_reference(name: str, built_without_aux: Any) -> None:
    compiled, model = built_without_aux(name)
    reference = reference_model(name, aux_logits=False, num_classes=10)
    assert compiled.arch.aux_outputs == []
    assert compiled.params.params == count(model.parameters()) == count(reference.parameters())
    assert compiled.params.buffers == count(model.buffers()) == count(reference.buffers())
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, *compiled.arch.input_shape)).shape == (1, 10)


def test_without_aux_logits_training_mode_returns_the_logits_alone(built_without_aux: Any) -> None:
    compiled, model = built_without_aux("googlenet")
    model.train()
    with torch.no_grad():
        out = model(torch.randn(2, *compiled.arch.input_shape))
    assert isinstance(out, torch.Tensor)
