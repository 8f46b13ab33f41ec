"""The RegNet specs (specs/lib/regnet.arch: RegNetX and RegNetY) against torchvision's models: counts (and
torchvision's published sizes), strict state_dict load (the hyphenated `block1-0` names included), every leaf module's
type and settings, equal logits with BatchNorm statistics and affine parameters randomised at two input scales, every
layer's shape, MACs.

The reference figures are measured on torchvision's model in each test, or read from its weights' meta, never taken
from archc. The default run holds the two smallest (regnet_x_400mf, the tutorial's example, and regnet_y_400mf); the
rest run under `-m full`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archc.compiler import Compiled, compile_spec
from archc.passes.macs import count_macs
from archc.tools.runtime import randomize_batchnorm_statistics
from tests.conftest import SPECS
from tests.zoo_helpers import assert_counts, assert_same_logits, assert_shapes_match_hooks, build_spec, count

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

Case = tuple[Compiled, nn.Module, nn.Module]


def weights_meta(name: str) -> dict[str, Any]:
    """The meta of the weights torchvision publishes for `name` (ImageNet-1K V1; regnet_y_128gf has SWAG ones only)."""
    weights = torchvision.models.get_model_weights(name)
    chosen = weights["IMAGENET1K_V1"] if "IMAGENET1K_V1" in weights.__members__ else weights["IMAGENET1K_SWAG_LINEAR_V1"]
    return dict(chosen.meta)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Case]:
    # One model at a time: the large ones hold gigabytes (regnet_y_128gf: 645M parameters per copy).
    cache: dict[str, Case] = {}

    def build(name: str) -> Case:
        if name not in cache:
            cache.clear()
            compiled, model = build_spec(name, tmp_path_factory.mktemp(name))
            cache[name] = (compiled, model, torchvision.models.get_model(name))
        return cache[name]

    return build


def leaf_modules(model: nn.Module) -> list[tuple[str, str]]:
    """Every leaf module's path and repr: its class and every setting (stride, padding, groups, eps, inplace, ...)."""
    return [(path, repr(m)) for path, m in model.named_modules() if not list(m.children())]


@pytest.mark.parametrize("name", NAMES)
def test_counts_equal_generated_module_reference_and_published_figure(name: str, built: Callable[[str], Case]) -> None:
    compiled, model, reference = built(name)
    assert_counts(compiled, model, params=weights_meta(name)["num_params"], reference=reference)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_and_leaf_modules_are_torchvisions_in_order(name: str, built: Callable[[str], Case]) -> None:
    compiled, model, reference = built(name)
    assert list(model.state_dict()) == list(reference.state_dict())
    assert leaf_modules(model) == leaf_modules(reference)


@pytest.mark.parametrize("name", NAMES)
def test_reference_weights_load_strictly_and_logits_match_at_two_scales(name: str, built: Callable[[str], Case]) -> None:
    compiled, model, reference = built(name)
    randomize_batchnorm_statistics(reference, affine=True)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    torch.manual_seed(0)
    x = torch.randn(2, *LOGITS_INPUT)
    with torch.no_grad():
        for scale in (1.0, 10.0):
            assert_same_logits(model(x * scale), reference(x * scale))


@pytest.mark.parametrize("name", NAMES)
def test_every_module_output_shape_equals_what_forward_hooks_see(name: str, built: Callable[[str], Case]) -> None:
    _, model, _ = built(name)
    assert_shapes_match_hooks(compile_spec(SPECS / f"{name}.arch", input_shape=LOGITS_INPUT), model)


@pytest.mark.parametrize("name", NAMES)
def test_macs_equal_half_the_flop_counter_on_the_reference(name: str, built: Callable[[str], Case]) -> None:
    compiled, _, reference = built(name)
    counter = FlopCounterMode(display=False)
    reference.eval()
    with torch.no_grad(), counter:
        reference(torch.randn(1, *compiled.arch.input_shape))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()


def test_regnet_y_blocks_hold_squeeze_and_excitation_and_regnet_x_blocks_none(built: Callable[[str], Case]) -> None:
    _, y, _ = built("regnet_y_400mf")
    # torchvision squeezes to a quarter of the block's input channels: 32 (the stem) for the first block, 48 after.
    assert y.trunk_output.block1.get_submodule("block1-0").f.se.fc1.out_channels == 8
    assert y.trunk_output.block2.get_submodule("block2-1").f.se.fc1.out_channels == 26
    _, x, _ = built("regnet_x_400mf")
    assert not any(path.endswith(".se") for path, _ in x.named_modules())


def test_published_top1_is_in_the_meta() -> None:
    for name in [*SMALL, *LARGE]:
        assert compile_spec(SPECS / f"{name}.arch").arch.meta["top1"] == weights_meta(name)["_metrics"]["ImageNet-1K"]["acc@1"]


@pytest.mark.parametrize("name", SMALL)
def test_constructor_argument_reaches_the_module(name: str, tmp_path: Path) -> None:
    _, model = build_spec(name, tmp_path, num_classes=10)
    reference = torchvision.models.get_model(name, num_classes=10)
    assert count(model.parameters()) == count(reference.parameters())
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert_same_logits(model(x), reference(x))
