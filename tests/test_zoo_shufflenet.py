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
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archc.compiler import Compiled
from archc.passes.macs import count_macs
from tests.zoo_helpers import assert_counts, assert_same_logits, assert_shapes_match_hooks, build_spec

torch.set_num_threads(1)

NAMES = [
    "shufflenet_v2_x0_5",
    *(pytest.param(name, marks=pytest.mark.full) for name in ("shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0")),
]

# Logits are compared at a reduced input: the stem, the max pool and three stages divide it by 32.
LOGITS_INPUT = (3, 64, 64)

Case = tuple[Compiled, nn.Module, nn.Module]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache: dict[str, Case] = {}

    def build(name: str) -> Case:
        if name not in cache:
            compiled, model = build_spec(name, tmp_path_factory.mktemp(name))
            cache[name] = (compiled, model, torchvision.models.get_model(name, weights=None))
        return cache[name]

    return build


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
def test_reference_weights_load_strictly_and_outputs_match_in_eval_and_training(name: str, built: Any) -> None:
    _, model, reference = built(name)
    randomise(reference)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(4, *LOGITS_INPUT)
    for mode in ("eval", "train"):
        model.train(mode == "train")
        reference.train(mode == "train")
        for scale in (1.0, 10.0):
            with torch.no_grad():
                assert_same_logits(model(x * scale), reference(x * scale))


def leaves(model: nn.Module) -> list[tuple[str, str]]:
    return [(path, repr(m)) for path, m in model.named_modules() if not list(m.children())]


@pytest.mark.parametrize("name", NAMES)
def test_every_leaf_module_has_torchvisions_type_and_settings(name: str, built: Any) -> None:
    _, model, reference = built(name)
    ours, theirs = leaves(model), leaves(reference)
    assert [p for p, _ in ours] == [p for p, _ in theirs]
    assert ours == theirs
    assert ("stage2.1.branch1", "Sequential()") in ours


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


def test_constructor_arguments_reach_the_module(tmp_path: Any) -> None:
    _, model = build_spec("shufflenet_v2_x0_5", tmp_path, num_classes=10)
    reference = torchvision.models.shufflenet_v2_x0_5(num_classes=10)
    assert leaves(model) == leaves(reference)
