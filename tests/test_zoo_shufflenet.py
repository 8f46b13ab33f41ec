"""ShuffleNetV2 (x0.5, x1.0, x1.5, x2.0) against torchvision 0.29: counts, strict state_dict load, equal logits with
the weights randomised (BatchNorm statistics included) in eval and training mode, every leaf module's type and settings
(the stride-1 units' empty branch1 included), every layer's shape, MACs.

The reference figures are measured on torchvision's models (built without weights) in each test, or read from
torchvision's weights metadata, never taken from archc. The default run holds shufflenet_v2_x0_5 to them; the rest run
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
    leaves,
    published_params,
    torchvision_reference,
)

torch.set_num_threads(1)

NAMES = [
    "shufflenet_v2_x0_5",
    *(pytest.param(name, marks=pytest.mark.full) for name in ("shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0")),
]

# Logits are compared at a reduced input: the stem, the max pool and three stages divide it by 32.
LOGITS_INPUT = (3, 64, 64)

case = case_fixture(NAMES, torchvision_reference)


def randomise(model: nn.Module) -> None:
    """BatchNorm statistics and affine parameters far from their initial values."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2)
                m.weight.normal_(1, 0.3)
                m.bias.normal_(0, 0.3)


def test_counts_equal_generated_module_reference_and_published_figure(case: Case) -> None:
    name, compiled, model, reference = case
    assert_counts(compiled, model, params=published_params(name), reference=reference)


def test_state_dict_keys_are_torchvisions_in_order(case: Case) -> None:
    name, compiled, model, reference = case
    assert_state_dict_keys_equal(model, reference)


def test_reference_weights_load_strictly_and_outputs_match_in_eval_and_training(case: Case) -> None:
    name, compiled, model, reference = case
    assert_outputs_match_in_eval_and_training(model, reference, LOGITS_INPUT, randomise)


def test_every_leaf_module_has_torchvisions_type_and_settings(case: Case) -> None:
    name, compiled, model, reference = case
    assert_same_leaves(model, reference)
    assert ("stage2.1.branch1", "Sequential()") in leaves(model)


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_macs_equal_half_the_flop_counter_on_the_reference(case: Case) -> None:
    name, compiled, model, reference = case
    assert_macs_equal_half_the_flop_counter(compiled, reference)


def test_constructor_arguments_reach_the_module(tmp_path: Any) -> None:
    _, model = build_spec("shufflenet_v2_x0_5", tmp_path, num_classes=10)
    reference = torchvision_reference("shufflenet_v2_x0_5", num_classes=10)
    assert_same_leaves(model, reference)
