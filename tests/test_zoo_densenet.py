"""DenseNet-121, -161, -169 and -201 against torchvision 0.29: counts, strict state_dict load (torchvision's
`features.denseblock1.denselayer1.norm1` keys), equal logits at two input scales, every leaf module's type and
settings, every layer's shape, MACs.

The reference figures are measured on torchvision's models (built without weights) in each test, or read from
torchvision's weights metadata, never taken from archc. The default run holds densenet121, the smallest, to them;
the others run with `-m full`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

from archc.compiler import Compiled
from archc.passes.macs import count_macs
from tests.zoo_helpers import (
    assert_counts,
    assert_logits_match_at_two_scales,
    assert_same_logits,
    assert_shapes_match_hooks,
    build_spec,
    count,
    leaves,
    reference_flops,
)

torch.set_num_threads(1)

# torchvision's (growth_rate, block_config, num_init_features) of each model (its densenet121(), ... functions).
CONFIG = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
}
NAMES = ["densenet121", *(pytest.param(name, marks=pytest.mark.full) for name in ["densenet161", "densenet169", "densenet201"])]

# Logits are compared at a reduced input: five halvings leave 2×2 before the global pooling.
LOGITS_INPUT = (3, 64, 64)

Case = tuple[str, Compiled, nn.Module, nn.Module]


def reference_model(name: str, **params: Any) -> nn.Module:
    model: nn.Module = torchvision.models.get_model(name, weights=None, **params)
    return model


@pytest.fixture(scope="module", params=NAMES)
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    """(name, compiled spec, generated model, reference model), built once and freed after its tests."""
    name = request.param
    compiled, model = build_spec(name, tmp_path_factory.mktemp(name))
    reference = reference_model(name)
    yield name, compiled, model, reference
    del compiled, model, reference
    gc.collect()


def test_counts_equal_generated_module_reference_and_published_figure(case: Case) -> None:
    name, compiled, model, reference = case
    published = torchvision.models.get_model_weights(name)["IMAGENET1K_V1"].meta["num_params"]
    assert_counts(compiled, model, params=published, reference=reference)


def test_state_dict_keys_are_torchvisions_in_order(case: Case) -> None:
    name, compiled, model, reference = case
    assert list(model.state_dict()) == list(reference.state_dict())
    growth, blocks, _ = CONFIG[name]
    assert f"features.denseblock4.denselayer{blocks[3]}.conv2.weight" in model.state_dict()
    assert "features.transition3.conv.weight" in model.state_dict() and "features.transition4.conv.weight" not in model.state_dict()


def test_reference_weights_load_strictly_and_logits_match_at_two_scales(case: Case) -> None:
    name, compiled, model, reference = case
    assert_logits_match_at_two_scales(model, reference, LOGITS_INPUT)


def test_every_leaf_module_has_torchvisions_type_and_settings(case: Case) -> None:
    name, compiled, model, reference = case
    assert leaves(model) == leaves(reference)


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_macs_equal_half_the_flop_counter_on_the_reference(case: Case) -> None:
    name, compiled, model, reference = case
    assert count_macs(compiled.arch).macs * 2 == reference_flops(reference, compiled.arch.input_shape)


def test_the_specs_are_one_definition_with_torchvisions_arguments(case: Case) -> None:
    name, compiled, model, reference = case
    assert compiled.arch.root.type == "DenseNet"
    growth, blocks, init = CONFIG[name]
    args = compiled.arch.root.args
    assert (args["growth_rate"], tuple(args["block_config"]), args["num_init_features"], args["bn_size"]) == (growth, blocks, init, 4)


def test_constructor_argument_reaches_the_module(tmp_path: Path) -> None:
    _, model = build_spec("densenet121", tmp_path, num_classes=10)
    reference = reference_model("densenet121", num_classes=10)
    assert leaves(model) == leaves(reference)
    assert count(model.parameters()) == count(reference.parameters())
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(1, *LOGITS_INPUT)
    with torch.no_grad():
        assert_same_logits(model(x), reference(x))
