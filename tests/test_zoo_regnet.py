"""RegNetX-400MF (the tutorial's worked example) against torchvision's `regnet_x_400mf`: counts, strict state_dict
load (torchvision's hyphenated `block1-0` names included), equal logits, every layer's shape, MACs.

The reference figures are measured on torchvision's model in each test, not taken from archc.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archc.compiler import Compiled
from archc.passes.macs import count_macs
from tests.zoo_helpers import assert_counts, assert_equals_reference, assert_same_logits, assert_shapes_match_hooks, build_spec, count

torch.set_num_threads(1)

# torchvision's published size of regnet_x_400mf (RegNet_X_400MF_Weights.IMAGENET1K_V1.meta["num_params"]).
PUBLISHED_PARAMS = 5_495_976

Case = tuple[Compiled, nn.Module, nn.Module]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    compiled, model = build_spec("regnet_x_400mf", tmp_path_factory.mktemp("regnet"))
    yield compiled, model, torchvision.models.regnet_x_400mf()


def test_counts_equal_generated_module_reference_and_published_figure(case: Case) -> None:
    compiled, model, reference = case
    published = torchvision.models.RegNet_X_400MF_Weights.IMAGENET1K_V1.meta["num_params"]
    assert published == PUBLISHED_PARAMS
    assert_counts(compiled, model, params=published, reference=reference)


def test_state_dict_keys_are_torchvisions_in_order(case: Case) -> None:
    compiled, model, reference = case
    assert list(model.state_dict()) == list(reference.state_dict())
    assert "trunk_output.block1.block1-0.f.a.0.weight" in model.state_dict()
    assert "trunk_output.block4.block4-11.f.c.1.running_var" in model.state_dict()


def test_reference_weights_load_strictly_and_logits_match(case: Case) -> None:
    compiled, model, reference = case
    assert_equals_reference(compiled, model, reference)


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_macs_equal_half_the_flop_counter_on_the_reference(case: Case) -> None:
    compiled, model, reference = case
    counter = FlopCounterMode(display=False)
    reference.eval()
    with torch.no_grad(), counter:
        reference(torch.randn(1, *compiled.arch.input_shape))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()


def test_constructor_argument_reaches_the_module(tmp_path: Path) -> None:
    _, model = build_spec("regnet_x_400mf", tmp_path, num_classes=10)
    reference = torchvision.models.regnet_x_400mf(num_classes=10)
    assert count(model.parameters()) == count(reference.parameters())
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert_same_logits(model(x), reference(x))
