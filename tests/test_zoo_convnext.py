"""ConvNeXt (tiny, small, base, large) against torchvision 0.29: counts, strict state_dict load (the layer scales
included), equal logits with the weights randomised, equal training-mode outputs with stochastic depth's draws, every
leaf module's type and settings, every layer's shape, MACs.

The reference figures are measured on torchvision's models (built without weights) in each test, or read from
torchvision's weights metadata, never taken from archc. The default run holds convnext_tiny to them; the rest run
with `-m full`.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from tests.zoo_helpers import (
    Case,
    assert_counts,
    assert_macs_equal_half_the_flop_counter,
    assert_outputs_match_in_eval_and_training,
    assert_same_leaves,
    assert_shapes_match_hooks,
    assert_state_dict_keys_equal,
    build_spec,
    case_fixture,
    published_params,
    torchvision_reference,
)

torch.set_num_threads(1)

NAMES = ["convnext_tiny", *(pytest.param(name, marks=pytest.mark.full) for name in ("convnext_small", "convnext_base", "convnext_large"))]

# Logits are compared at a reduced input: the stem and three downsamplings divide it by 32.
LOGITS_INPUT = (3, 64, 64)

case = case_fixture(NAMES, torchvision_reference)


def randomise(model: nn.Module) -> None:
    """Weights far from initialisation, the layer scales included (at 1e-6 a branch would hardly count)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)


def test_counts_equal_generated_module_reference_and_published_figure(case: Case) -> None:
    name, compiled, model, reference = case
    assert_counts(compiled, model, params=published_params(name), reference=reference)


def test_state_dict_keys_are_torchvisions_in_order(case: Case) -> None:
    name, compiled, model, reference = case
    assert_state_dict_keys_equal(model, reference)
    assert "features.1.0.layer_scale" in model.state_dict()


def test_reference_weights_load_strictly_and_outputs_match_in_eval_and_training(case: Case) -> None:
    name, compiled, model, reference = case
    assert_outputs_match_in_eval_and_training(model, reference, LOGITS_INPUT, randomise)


def test_every_leaf_module_has_torchvisions_type_and_settings(case: Case) -> None:
    name, compiled, model, reference = case
    assert_same_leaves(model, reference)
    probabilities = [m.p for m in model.modules() if type(m).__name__ == "StochasticDepth"]
    assert probabilities == [m.p for m in reference.modules() if type(m).__name__ == "StochasticDepth"]


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_macs_equal_half_the_flop_counter_on_the_reference(case: Case) -> None:
    name, compiled, model, reference = case
    assert_macs_equal_half_the_flop_counter(compiled, reference)


def test_constructor_arguments_reach_the_module(tmp_path: Any) -> None:
    _, model = build_spec("convnext_tiny", tmp_path, num_classes=10, stochastic_depth_prob=0.3)
    reference = torchvision_reference("convnext_tiny", num_classes=10, stochastic_depth_prob=0.3)
    assert_same_leaves(model, reference)
