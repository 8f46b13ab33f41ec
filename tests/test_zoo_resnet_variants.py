"""Wide ResNet-50-2, Wide ResNet-101-2 and ResNeXt-101 64x4d, written with specs/lib/resnet.arch, against
torchvision 0.29: counts, strict state_dict load, equal logits at two input scales, every leaf module's type and
settings, every layer's shape, MACs.

The reference figures are measured on torchvision's models (built without weights) in each test, or read from
torchvision's weights metadata, never taken from archc. The three hold 68M to 127M parameters, so they run with
`-m full` only; one module-scoped fixture builds a spec and its reference once and frees them before the next. The
default run covers the same definitions through resnet50 and resnext50_32x4d (tests/test_zoo.py).
"""

from __future__ import annotations

import pytest
import torch

from tests.zoo_helpers import (
    Case,
    assert_counts,
    assert_logits_match_at_two_scales,
    assert_macs_equal_half_the_flop_counter,
    assert_same_leaves,
    assert_shapes_match_hooks,
    assert_state_dict_keys_equal,
    case_fixture,
    published_params,
    torchvision_reference,
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

case = case_fixture([pytest.param(name, marks=pytest.mark.full) for name in CONFIG], torchvision_reference)


def test_counts_equal_generated_module_reference_and_published_figure(case: Case) -> None:
    name, compiled, model, reference = case
    assert_counts(compiled, model, params=published_params(name), reference=reference)


def test_state_dict_keys_are_torchvisions_in_order(case: Case) -> None:
    name, compiled, model, reference = case
    assert_state_dict_keys_equal(model, reference)


def test_reference_weights_load_strictly_and_logits_match_at_two_scales(case: Case) -> None:
    name, compiled, model, reference = case
    assert_logits_match_at_two_scales(model, reference, LOGITS_INPUT, batch=1)


def test_every_leaf_module_has_torchvisions_type_and_settings(case: Case) -> None:
    name, compiled, model, reference = case
    assert_same_leaves(model, reference)


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_macs_equal_half_the_flop_counter_on_the_reference(case: Case) -> None:
    name, compiled, model, reference = case
    assert_macs_equal_half_the_flop_counter(compiled, reference)


def test_the_specs_are_the_resnet_definition_with_torchvisions_arguments(case: Case) -> None:
    name, compiled, model, reference = case
    assert compiled.arch.root.type == "ResNet"
    layers, groups, width = CONFIG[name]
    args = compiled.arch.root.args
    assert (list(args["layers"]), args["bottleneck"], args["groups"], args["width_per_group"]) == (layers, True, groups, width)
    # The grouped 3×3 of the first block: torchvision's width = planes * width_per_group / 64 * groups.
    conv2 = model.get_submodule("layer1.0.conv2")
    assert (conv2.in_channels, conv2.groups) == (int(64 * width / 64) * groups, groups)
