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
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archc.compiler import Compiled
from archc.passes.macs import count_macs
from tests.zoo_helpers import (
    assert_counts,
    assert_same_logits,
    assert_shapes_match_hooks,
    build_spec,
    count,
    randomize_batchnorm_statistics,
)

torch.set_num_threads(1)

SMALL = ["mobilenet_v3_small", "mnasnet0_5"]
LARGE = ["mobilenet_v2", "mobilenet_v3_large", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"]
NAMES = [*SMALL, *(pytest.param(name, marks=pytest.mark.full) for name in LARGE)]

# Logits are compared at a reduced input: every layer of these networks takes any size down to 1×1.
LOGITS_INPUT = (3, 96, 96)

Case = tuple[Compiled, nn.Module, nn.Module]


def reference_model(name: str, **params: Any) -> nn.Module:
    model: nn.Module = torchvision.models.get_model(name, weights=None, **params)
    return model


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache: dict[str, Case] = {}

    def build(name: str) -> Case:
        if name not in cache:
            compiled, model = build_spec(name, tmp_path_factory.mktemp(name))
            cache[name] = (compiled, model, reference_model(name))
        return cache[name]

    return build


@pytest.mark.parametrize("name", NAMES)
def test_counts_equal_generated_module_reference_and_published_figure(name: str, built: Any) -> None:
    compiled, model, reference = built(name)
    published = torchvision.models.get_model_weights(name)["IMAGENET1K_V1"].meta["num_params"]
    assert_counts(compiled, model, params=published, reference=reference)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_are_torchvisions_in_order(name: str, built: Any) -> None:
    _, model, reference = built(name)
    assert list(model.state_dict()) == list(reference.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_reference_weights_load_strictly_and_logits_match_at_two_scales(name: str, built: Any) -> None:
    _, model, reference = built(name)
    randomize_batchnorm_statistics(reference, affine=True)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    torch.manual_seed(0)
    x = torch.randn(2, *LOGITS_INPUT)
    with torch.no_grad():
        for scale in (1.0, 10.0):
            assert_same_logits(model(x * scale), reference(x * scale))


def leaves(model: nn.Module) -> list[tuple[str, str]]:
    """Every leaf module's path and repr: its class and every setting PyTorch prints (eps, momentum, inplace, p, ...)."""
    return [(path, repr(m)) for path, m in model.named_modules() if not list(m.children())]


@pytest.mark.parametrize("name", NAMES)
def test_every_leaf_module_has_torchvisions_type_and_settings(name: str, built: Any) -> None:
    _, model, reference = built(name)
    assert leaves(model) == leaves(reference)


def residual_flags(model: nn.Module) -> dict[str, bool]:
    """Which blocks add their input: MobileNet's `use_res_connect`, MNASNet's `apply_residual` (the specs' `let`s
    carry torchvision's names)."""
    flags = {}
    for path, m in model.named_modules():
        for attribute in ("use_res_connect", "apply_residual"):
            if isinstance(getattr(m, attribute, None), bool):
                flags[path] = getattr(m, attribute)
    return flags


@pytest.mark.parametrize("name", NAMES)
def test_the_blocks_with_a_residual_are_torchvisions(name: str, built: Any) -> None:
    _, model, reference = built(name)
    ours, theirs = residual_flags(model), residual_flags(reference)
    assert ours == theirs
    assert any(ours.values()) and not all(ours.values())


@pytest.mark.parametrize("name", NAMES)
def test_every_module_output_shape_equals_what_forward_hooks_see(name: str, built: Any) -> None:
    compiled, model, _ = built(name)
    assert_shapes_match_hooks(compiled, model)


@pytest.mark.parametrize("name", NAMES)
def test_macs_equal_half_the_flop_counter_on_the_reference(name: str, built: Any) -> None:
    compiled, _, reference = built(name)
    counter = FlopCounterMode(display=False)
    reference.eval()
    with torch.no_grad(), counter:
        reference(torch.randn(1, *compiled.arch.input_shape))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()


@pytest.mark.parametrize("name", SMALL)
def test_constructor_arguments_reach_the_module(name: str, tmp_path: Any) -> None:
    _, model = build_spec(name, tmp_path, num_classes=10, dropout=0.3)
    reference = reference_model(name, num_classes=10, dropout=0.3)
    assert leaves(model) == leaves(reference)
    assert count(model.parameters()) == count(reference.parameters())
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(1, *LOGITS_INPUT)
    with torch.no_grad():
        assert_same_logits(model(x), reference(x))
