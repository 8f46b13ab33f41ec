"""DenseNet-121, -161, -169 and -201 against torchvision 0.29: counts, strict state_dict load (torchvision's
`features.denseblock1.denselayer1.norm1` keys), equal logits at two input scales, every leaf module's type and
settings, every layer's shape, MACs.

The reference figures are measured on torchvision's models (built without weights) in each test, or read from
torchvision's weights metadata, never taken from archc. The default run holds densenet121, the smallest, to them;
the others run with `-m full`.
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
    published_params,
    torchvision_reference,
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

case = case_fixture(NAMES, torchvision_reference)


def test_counts_equal_generated_module_reference_and_published_figure(case: Case) -> None:
    name, compiled, model, reference = case
    assert_counts(compiled, model, params=published_params(name), reference=reference)


def test_state_dict_keys_are_torchvisions_in_order(case: Case) -> None:
    name, compiled, model, reference = case
    assert_state_dict_keys_equal(model, reference)
    growth, blocks, _ = CONFIG[name]
    assert f"features.denseblock4.denselayer{blocks[3]}.conv2.weight" in model.state_dict()
    assert "features.transition3.conv.weight" in model.state_dict() and "features.transition4.conv.weight" not in model.state_dict()


def test_reference_weights_load_strictly_and_logits_match_at_two_scales(case: Case) -> None:
    name, compiled, model, reference = case
    assert_logits_match_at_two_scales(model, reference, LOGITS_INPUT)


def test_every_leaf_module_has_torchvisions_type_and_settings(case: Case) -> None:
    name, compiled, model, reference = case
    assert_same_leaves(model, reference)


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_macs_equal_half_the_flop_counter_on_the_reference(case: Case) -> None:
    name, compiled, model, reference = case
    assert_macs_equal_half_the_flop_counter(compiled, reference)


def test_the_specs_are_one_definition_with_torchvisions_arguments(case: Case) -> None:
    name, compiled, model, reference = case
    assert compiled.arch.root.type == "DenseNet"
    growth, blocks, init = CONFIG[name]
    args = compiled.arch.root.args
    assert (args["growth_rate"], tuple(args["block_config"]), args["num_init_features"], args["bn_size"]) == (growth, blocks, init, 4)


def test_constructor_argument_reaches_the_module(tmp_path: Path) -> None:
    _, model = build_spec("densenet121", tmp_path, num_classes=10)
    reference = torchvision_reference("densenet121", num_classes=10)
    assert_same_leaves(model, reference)
    assert count(model.parameters()) == count(reference.parameters())
    assert_loaded_logits_match(model, reference, LOGITS_INPUT)
