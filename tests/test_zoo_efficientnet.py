"""EfficientNet B0-B7 and EfficientNetV2 S/M/L against torchvision 0.29: counts, strict state_dict load, equal logits,
every module's type and settings (BatchNorm eps and momentum, the stochastic depth probability of each block, the
classifier's dropout), every layer's shape, MACs, and stochastic depth drawing as torchvision's in training mode.

The reference figures are measured on torchvision's models (built without weights) in each test, or read from
torchvision's weights metadata, never taken from archc. The default run holds efficientnet_b0 and efficientnet_v2_s
to them; the rest run with `-m full`.
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
    assert_same_logits,
    assert_shapes_match_hooks,
    assert_state_dict_keys_equal,
    build_spec,
    case_fixture,
    compile_at,
    count,
    published_params,
    randomize_batchnorm_statistics,
    torchvision_reference,
)

torch.set_num_threads(1)

SMALL = ["efficientnet_b0", "efficientnet_v2_s"]
LARGE = [f"efficientnet_b{i}" for i in range(1, 8)] + ["efficientnet_v2_m", "efficientnet_v2_l"]
NAMES = [*SMALL, *(pytest.param(name, marks=pytest.mark.full) for name in LARGE)]

# Logits and shapes are compared at a reduced input: every layer takes any size down to 1×1 (V2's weights ask for
# at least 33×33, which 64×64 is).
REDUCED_INPUT = (3, 64, 64)

case = case_fixture(NAMES, torchvision_reference)


def test_counts_equal_generated_module_reference_and_published_figure(case: Case) -> None:
    name, compiled, model, reference = case
    assert_counts(compiled, model, params=published_params(name), reference=reference)


def test_state_dict_keys_are_torchvisions_in_order(case: Case) -> None:
    name, compiled, model, reference = case
    assert_state_dict_keys_equal(model, reference)


def test_every_leaf_module_has_torchvisions_type_and_settings(case: Case) -> None:
    """Names, types and reprs of every module without children, in order: BatchNorm's eps and momentum, each
    block's StochasticDepth(p=..., mode=row), the SiLUs' inplace, the classifier's Dropout(p=..., inplace=True)."""
    name, compiled, model, reference = case
    assert_same_leaves(model, reference)
    probabilities = [c.p for n, c in reference.named_modules() if n.endswith("stochastic_depth")]
    assert probabilities[0] == 0.0 and probabilities[-1] > 0.0  # the linear rule, first block to last


def test_the_blocks_with_a_residual_are_torchvisions(case: Case) -> None:
    name, compiled, model, reference = case
    ours = [n for n, m in model.named_modules() if getattr(m, "use_res_connect", False)]
    theirs = [n for n, m in reference.named_modules() if getattr(m, "use_res_connect", False)]
    assert ours == theirs and ours


def test_reference_weights_load_strictly_and_logits_match_at_two_scales(case: Case) -> None:
    name, compiled, model, reference = case
    assert_logits_match_at_two_scales(model, reference, REDUCED_INPUT, affine=False)


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compile_at(name, REDUCED_INPUT), model)


def test_macs_equal_half_the_flop_counter_on_the_reference_at_a_reduced_input(case: Case) -> None:
    name, compiled, model, reference = case
    assert_macs_equal_half_the_flop_counter(compile_at(name, REDUCED_INPUT), reference)


@pytest.mark.parametrize("name", ["efficientnet_b0", *(pytest.param(n, marks=pytest.mark.full) for n in ["efficientnet_v2_s", *LARGE])])
def test_macs_at_the_specs_input_equal_half_the_flop_counter(name: str) -> None:
    compiled = compile_at(name)
    meta = torchvision.models.get_model_weights(name).IMAGENET1K_V1
    assert compiled.arch.input_shape[1] == meta.transforms().crop_size[0]  # the input is the weights' crop size
    assert_macs_equal_half_the_flop_counter(compiled, torchvision_reference(name))


def test_stochastic_depth_draws_as_torchvisions_in_training_mode(tmp_path: Path) -> None:
    """One training-mode forward of efficientnet_b0 under one seed equals torchvision's: the same blocks draw, in the
    same order, with the same probabilities (the classifier's dropout is 0 on both, through the constructor)."""
    _, model = build_spec("efficientnet_b0", tmp_path, dropout=0.0)
    reference = torchvision_reference("efficientnet_b0", dropout=0.0)
    randomize_batchnorm_statistics(reference)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.train()
    reference.train()
    x = torch.randn(8, *REDUCED_INPUT)
    outputs = []
    for net in (model, reference, model):
        torch.manual_seed(1)
        outputs.append(net(x))
    torch.manual_seed(2)
    other_seed = model(x)
    assert_same_logits(outputs[0], outputs[1])
    assert torch.equal(outputs[0], outputs[2])
    # The draws matter: another seed drops other rows and gives other logits.
    assert (other_seed - outputs[0]).abs().max().item() > 1e-3


@pytest.mark.parametrize("name", ["efficientnet_b0", pytest.param("efficientnet_v2_s", marks=pytest.mark.full)])
def test_constructor_arguments_reach_the_module(name: str, tmp_path: Path) -> None:
    params: dict[str, Any] = {"num_classes": 10, "dropout": 0.1, "stochastic_depth_prob": 0.5}
    _, model = build_spec(name, tmp_path, **params)
    reference = torchvision_reference(name, **params)
    assert count(model.parameters()) == count(reference.parameters())
    assert_same_leaves(model, reference)
    assert_loaded_logits_match(model, reference, REDUCED_INPUT)
