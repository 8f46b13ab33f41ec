"""Wide ResNet-50-2, Wide ResNet-101-2 and ResNeXt-101 64x4d, written with specs/lib/resnet.arch, against
torchvision 0.29: counts, strict state_dict load, equal logits at two input scales, every leaf module's type and
settings, every layer's shape, MACs.

The reference figures are measured on torchvision's models (built without weights) in each test, or read from
torchvision's weights metadata, never taken from archc. The three hold 68M to 127M parameters, so they run with
`-m full` only; one module-scoped fixture builds a spec and its reference once and frees them before the next. The
default run covers the same definitions through resnet50 and resnext50_32x4d (tests/test_zoo.py).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
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
    assert_shapes_match_hooks,
    build_spec,
    leaves,
    reference_flops,
)

torch.set_num_threads(1)

# torchvision's (layers, groups, width_per_group) of each model (its wide_resnet50_2(), ... functions).
CONFIG = {
    "wide_resnet50_2": ([3, 4, 6, 3], 1, 128),
    "wide_resnet101_2": ([3, 4, 23, 3], 1, 128),
    "resnext101_64x4d": ([3, 4, 23, 3], 64, 4),
}

# Logits are compared at a reduced input: five halvings leave 2×2 before the global pooling.
LOGITS_INPUT = (3, 64, 64)

Case = tuple[str, Compiled, nn.Module, nn.Module]


def reference_model(name: str, **params: Any) -> nn.Module:
    model: nn.Module = torchvision.models.get_model(name, weights=None, **params)
    return model


@pytest.fixture(scope="module", params=[pytest.param(name, marks=pytest.mark.full) for name in CONFIG])
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


def test_reference_weights_load_strictly_and_logits_match_at_two_scales(case: Case) -> None:
    name, compiled, model, reference = case
    assert_logits_match_at_two_scales(model, reference, LOGITS_INPUT, batch=1)


def test_every_leaf_module_has_torchvisions_type_and_settings(case: Case) -> None:
    name, compiled, model, reference = case
    assert leaves(model) == leaves(reference)


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_macs_equal_half_the_flop_counter_on_the_reference(case: Case) -> None:
    name, compiled, model, reference = case
    assert count_macs(compiled.arch).macs * 2 == reference_flops(reference, compiled.arch.input_shape)


def test_the_specs_are_the_resnet_definition_with_torchvisions_arguments(case: Case) -> None:
    name, compiled, model, reference = case
    assert compiled.arch.root.type == "ResNet"
    layers, groups, width = CONFIG[name]
    args = compiled.arch.root.args
    assert (list(args["layers"]), args["bottleneck"], args["groups"], args["width_per_group"]) == (layers, True, groups, width)
    # The grouped 3×3 of the first block: torchvision's width = planes * width_per_group / 64 * groups.
    conv2 = model.get_submodule("layer1.0.conv2")
    assert (conv2.in_channels, conv2.groups) == (int(64 * width / 64) * groups, groups)
