"""MobileNetV2, MobileNetV3 (large, small) and MNASNet (0.5, 0.75, 1.0, 1.3) against torchvision 0.29: counts,
strict state_dict load, equal logits, every leaf module's type and settings, every layer's shape, MACs.

The reference figures are measured on torchvision's models (built without weights) in each test, or read from
torchvision's weights metadata, never taken from archc. The default run holds the two smallest specs of the family
(mobilenet_v3_small, mnasnet0_5) to them; the rest run with `-m full`.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from tests.zoo_helpers import (
    Case,
    assert_counts,
    assert_loaded_logits_match,
    assert_logits_match_at_two_scales,
    assert_macs_equal_half_the_flop_counter,
    assert_same_leaves,
    assert_shapes_match_hooks,
    assert_state_dict_keys_equal,
    build_spec,
    case_fixture,
    count,
    published_params,
    torchvision_reference,
)

torch.set_num_threads(1)

SMALL = ["mobilenet_v3_small", "mnasnet0_5"]
LARGE = ["mobilenet_v2", "mobilenet_v3_large", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"]
NAMES = [*SMALL, *(pytest.param(name, marks=pytest.mark.full) for name in LARGE)]

# Logits are compared at a reduced input: every layer of these networks takes any size down to 1×1.
LOGITS_INPUT = (3, 96, 96)

case = case_fixture(NAMES, torchvision_reference)


def test_counts_equal_generated_module_reference_and_published_figure(case: Case) -> None:
    name, compiled, model, reference = case
    assert_counts(compiled, model, params=published_params(name), reference=reference)


def test_state_dict_keys_are_torchvisions_in_order(case: Case) -> None:
    name, compiled, model, reference = case
    assert_state_dict_keys_equal(model, reference)


def test_reference_weights_load_strictly_and_logits_match_at_two_scales(case: Case) -> None:
    name, compiled, model, reference = case
    assert_logits_match_at_two_scales(model, reference, LOGITS_INPUT)


def test_every_leaf_module_has_torchvisions_type_and_settings(case: Case) -> None:
    name, compiled, model, reference = case
    assert_same_leaves(model, reference)


def residual_flags(model: nn.Module) -> dict[str, bool]:
    """Which blocks add their input: MobileNet's `use_res_connect`, MNASNet's `apply_residual` (the specs' `let`s
    carry torchvision's names)."""
    flags = {}
    for path, m in model.named_modules():
        for attribute in ("use_res_connect", "apply_residual"):
            if isinstance(getattr(m, attribute, None), bool):
                flags[path] = getattr(m, attribute)
    return flags


def test_the_blocks_with_a_residual_are_torchvisions(case: Case) -> None:
    name, compiled, model, reference = case
    ours, theirs = residual_flags(model), residual_flags(reference)
    assert ours == theirs
    assert any(ours.values()) and not all(ours.values())


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_macs_equal_half_the_flop_counter_on_the_reference(case: Case) -> None:
    name, compiled, model, reference = case
    assert_macs_equal_half_the_flop_counter(compiled, reference)


@pytest.mark.parametrize("name", SMALL)
def test_constructor_arguments_reach_the_module(name: str, tmp_path: Any) -> None:
    _, model = build_spec(name, tmp_path, num_classes=10, dropout=0.3)
    reference = torchvision_reference(name, num_classes=10, dropout=0.3)
    assert_same_leaves(model, reference)
    assert count(model.parameters()) == count(reference.parameters())
    assert_loaded_logits_match(model, reference, LOGITS_INPUT)
