"""timm's Inception-v4 and Inception-ResNet-v2 against the specs: counts, strict state_dict load, equal logits, shapes.

References: timm's `inception_v4` and `inception_resnet_v2` (timm.create_model, no weights) and the figures of
shared/reference.md. Both models are large (12-13 GMACs at 299×299), so one module-scoped fixture builds a spec and
its reference once, pytest runs every test of that spec before building the next, and forwards use batch 1 (the
constructor test runs at 139×139, the smallest size both networks reduce to 3×3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from timm.layers import SelectAdaptivePool2d as TimmSelectAdaptivePool2d
from torch import nn

from tests.zoo_helpers import (
    Case,
    assert_counts,
    assert_equals_reference,
    assert_loaded_logits_match,
    assert_shapes_match_hooks,
    assert_state_dict_keys_equal,
    build_spec,
    case_fixture,
    timm_reference,
)

# shared/reference.md: params and buffers of the reference models.
REFERENCE = {
    "inception_v4": (42_679_816, 63_317),
    "inception_resnet_v2": (55_843_464, 60_748),
}
# timm's results/results-imagenet.csv (huggingface/pytorch-image-models), the `.tf_in1k` weights at 299×299.
TOP1 = {"inception_v4": 80.156, "inception_resnet_v2": 80.462}

case = case_fixture(list(REFERENCE), timm_reference)


def hyperparameters(module: nn.Module) -> dict[str, Any]:
    """A torch.nn layer's public attributes: its constructor's arguments (kernel, stride, eps, count_include_pad...)."""
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training"}


def test_parameter_and_buffer_counts_equal_generated_module_reference_and_published_figures(case: Case) -> None:
    name, compiled, model, reference = case
    params, buffers = REFERENCE[name]
    assert_counts(compiled, model, params, buffers, reference)


def test_generated_state_dict_keys_are_timms_in_timms_order(case: Case) -> None:
    name, compiled, model, reference = case
    assert_state_dict_keys_equal(model, reference)


def test_every_torch_layer_has_the_hyperparameters_of_timms_layer_at_the_same_path(case: Case) -> None:
    # Covers what a state_dict does not: BatchNorm's eps of 0.001, the pools' count_include_pad=False,
    # strides, paddings, the ReLUs' inplace flags and the head's dropout.
    name, compiled, model, reference = case
    checked = set()
    for path, ours in model.named_modules():
        if type(ours).__module__.startswith("torch.nn.modules"):
            theirs = reference.get_submodule(path)
            assert isinstance(theirs, type(ours)), (path, type(theirs))
            expected = hyperparameters(ours)
            assert {k: getattr(theirs, k) for k in expected} == expected, path
            checked.add(path)
    # Every timm layer but the ReLUs (which timm keeps inside its BatchNormAct2d, as `bn.act`) has its counterpart.
    layers = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Dropout)
    assert {path for path, m in reference.named_modules() if isinstance(m, layers)} <= checked


def test_residual_scales_and_the_last_blocks_missing_relu_are_timms(case: Case) -> None:
    name, compiled, model, reference = case
    scales = {path: m.scale for path, m in model.named_modules() if hasattr(m, "scale")}
    assert scales == {path: m.scale for path, m in reference.named_modules() if hasattr(m, "scale")}
    if name == "inception_resnet_v2":
        assert {scales["repeat.9"], scales["repeat_1.19"], scales["repeat_2.8"], scales["block8"]} == {0.17, 0.10, 0.20, 1.0}
        assert model.get_submodule("block8").relu is None and reference.get_submodule("block8").relu is None
        assert isinstance(model.get_submodule("repeat_2.8").relu, nn.ReLU)


def test_reference_weights_load_strictly_and_logits_match(case: Case) -> None:
    name, compiled, model, reference = case
    assert_equals_reference(compiled, model, reference, batch=1)


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_spec_names_its_reference_published_top1_and_input(case: Case) -> None:
    name, compiled, model, reference = case
    assert compiled.arch.meta["reference"] == f"timm:{name}"
    assert compiled.arch.meta["top1"] == TOP1[name]
    assert compiled.arch.input_shape == list(reference.pretrained_cfg["input_size"])


@pytest.mark.parametrize("name", list(REFERENCE))
def test_constructor_arguments_reach_the_module_as_in_timm(name: str, tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"num_classes": 10, "drop_rate": 0.25, "global_pool": "max"}
    _, model = build_spec(name, tmp_path, **kwargs)
    reference = timm_reference(name, **kwargs)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.25]
    assert isinstance(model.get_submodule("global_pool.pool"), nn.AdaptiveMaxPool2d)
    assert_loaded_logits_match(model, reference, (3, 139, 139))


@pytest.mark.parametrize("pool_type", ["avg", "max"])
def test_global_pool_equals_timms_select_adaptive_pool(pool_type: str, tmp_path: Path) -> None:
    _, model = build_spec("inception_v4", tmp_path, global_pool=pool_type)
    ours = model.get_submodule("global_pool")
    theirs = TimmSelectAdaptivePool2d(pool_type=pool_type, flatten=True)
    x = torch.randn(2, 1536, 8, 8)
    assert torch.equal(ours(x), theirs(x))
