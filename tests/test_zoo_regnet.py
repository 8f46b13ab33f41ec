"""The RegNet specs (specs/lib/regnet.arch: RegNetX and RegNetY) against torchvision's models: counts (and
torchvision's published sizes), strict state_dict load (the hyphenated `block1-0` names included), every leaf module's
type and settings, equal logits with BatchNorm statistics and affine parameters randomised at two input scales, every
layer's shape, MACs.

The reference figures are measured on torchvision's model in each test, or read from its weights' meta, never taken
from archc. The default run holds the two smallest (regnet_x_400mf, the tutorial's example, and regnet_y_400mf); the
rest run under `-m full`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision

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
    compile_at,
    count,
    torchvision_reference,
)

torch.set_num_threads(1)

SMALL = ["regnet_x_400mf", "regnet_y_400mf"]
LARGE = [
    "regnet_x_800mf",
    "regnet_x_1_6gf",
    "regnet_x_3_2gf",
    "regnet_x_8gf",
    "regnet_x_16gf",
    "regnet_x_32gf",
    "regnet_y_800mf",
    "regnet_y_1_6gf",
    "regnet_y_3_2gf",
    "regnet_y_8gf",
    "regnet_y_16gf",
    "regnet_y_32gf",
    "regnet_y_128gf",
]
NAMES = [*SMALL, *(pytest.param(name, marks=pytest.mark.full) for name in LARGE)]

# Logits are compared at a reduced size (five stride-2 stages take 64 to 2), at two scales of the input.
LOGITS_INPUT = (3, 64, 64)


def weights_meta(name: str) -> dict[str, Any]:
    """The meta of the weights torchvision publishes for `name` (ImageNet-1K V1; regnet_y_128gf has SWAG ones only)."""
    weights = torchvision.models.get_model_weights(name)
    chosen = weights["IMAGENET1K_V1"] if "IMAGENET1K_V1" in weights.__members__ else weights["IMAGENET1K_SWAG_LINEAR_V1"]
    return dict(chosen.meta)


# One pair at a time: the large ones hold gigabytes (regnet_y_128gf: 645M parameters per copy).
case = case_fixture(NAMES, torchvision_reference)


def test_counts_equal_generated_module_reference_and_published_figure(case: Case) -> None:
    name, compiled, model, reference = case
    assert_counts(compiled, model, params=weights_meta(name)["num_params"], reference=reference)


def test_state_dict_keys_and_leaf_modules_are_torchvisions_in_order(case: Case) -> None:
    name, compiled, model, reference = case
    assert_state_dict_keys_equal(model, reference)
    assert_same_leaves(model, reference)


def test_reference_weights_load_strictly_and_logits_match_at_two_scales(case: Case) -> None:
    name, compiled, model, reference = case
    assert_logits_match_at_two_scales(model, reference, LOGITS_INPUT)


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compile_at(name, LOGITS_INPUT), model)


def test_macs_equal_half_the_flop_counter_on_the_reference(case: Case) -> None:
    name, compiled, model, reference = case
    assert_macs_equal_half_the_flop_counter(compiled, reference)


def test_regnet_y_blocks_hold_squeeze_and_excitation_and_regnet_x_blocks_none(tmp_path: Path) -> None:
    _, y = build_spec("regnet_y_400mf", tmp_path)
    # torchvision squeezes to a quarter of the block's input channels: 32 (the stem) for the first block, 48 after.
    assert y.trunk_output.block1.get_submodule("block1-0").f.se.fc1.out_channels == 8
    assert y.trunk_output.block2.get_submodule("block2-1").f.se.fc1.out_channels == 26
    _, x = build_spec("regnet_x_400mf", tmp_path)
    assert not any(path.endswith(".se") for path, _ in x.named_modules())


def test_published_top1_is_in_the_meta() -> None:
    for name in [*SMALL, *LARGE]:
        assert compile_at(name).arch.meta["top1"] == weights_meta(name)["_metrics"]["ImageNet-1K"]["acc@1"]


@pytest.mark.parametrize("name", SMALL)
def test_constructor_argument_reaches_the_module(name: str, tmp_path: Path) -> None:
    _, model = build_spec(name, tmp_path, num_classes=10)
    reference = torchvision_reference(name, num_classes=10)
    assert count(model.parameters()) == count(reference.parameters())
    assert_loaded_logits_match(model, reference, (3, 96, 96))
