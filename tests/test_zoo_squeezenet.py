"""SqueezeNet 1.0 and 1.1 against torchvision 0.29: counts, strict state_dict load, equal logits at two input scales,
every leaf module's type and settings (the max pools' ceil_mode included), every layer's shape, MACs.

The reference figures are measured on torchvision's models (built without weights) in each test, or read from
torchvision's weights metadata, never taken from archc. Both models are small and run in the default run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

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
    leaves,
    published_params,
    torchvision_reference,
)

torch.set_num_threads(1)

NAMES = ["squeezenet1_0", "squeezenet1_1"]

# Logits are compared at a reduced input at which ceil_mode changes a pooled size (22 -> 11, not 10), as at 224.
LOGITS_INPUT = (3, 96, 96)

case = case_fixture(NAMES, torchvision_reference)


def test_counts_equal_generated_module_reference_and_published_figure(case: Case) -> None:
    name, compiled, model, reference = case
    assert_counts(compiled, model, params=published_params(name), buffers=0, reference=reference)


def test_state_dict_keys_are_torchvisions_in_order(case: Case) -> None:
    name, compiled, model, reference = case
    assert_state_dict_keys_equal(model, reference)
    assert "features.12.expand3x3.weight" in model.state_dict() and "classifier.1.weight" in model.state_dict()


def test_reference_weights_load_strictly_and_logits_match_at_two_scales(case: Case) -> None:
    name, compiled, model, reference = case
    assert_logits_match_at_two_scales(model, reference, LOGITS_INPUT)


def test_every_leaf_module_has_torchvisions_type_and_settings(case: Case) -> None:
    name, compiled, model, reference = case
    assert_same_leaves(model, reference)
    assert sum("ceil_mode=True" in text for _, text in leaves(model)) == 3


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_macs_equal_half_the_flop_counter_on_the_reference(case: Case) -> None:
    name, compiled, model, reference = case
    assert_macs_equal_half_the_flop_counter(compiled, reference)


def test_the_specs_are_one_definition_with_torchvisions_version(case: Case) -> None:
    name, compiled, model, reference = case
    assert compiled.arch.root.type == "SqueezeNet"
    assert compiled.arch.root.args["version"] == name.removeprefix("squeezenet")


@pytest.mark.parametrize("name", NAMES)
def test_constructor_arguments_reach_the_module(name: str, tmp_path: Path) -> None:
    _, model = build_spec(name, tmp_path, num_classes=10, dropout=0.25)
    reference = torchvision_reference(name, num_classes=10, dropout=0.25)
    assert_same_leaves(model, reference)
    assert count(model.parameters()) == count(reference.parameters())
    assert_loaded_logits_match(model, reference, LOGITS_INPUT)
