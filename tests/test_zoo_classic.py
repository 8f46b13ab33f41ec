"""LeNet-5, AlexNet and the eight VGGs against their references: counts, strict state_dict load, equal logits, shapes.

References: seed 000's own LeNet5 class (tests/fixtures/seed_lenet5.py), torchvision's `alexnet` and `vgg*`, and
the figures of shared/reference.md. The VGGs hold 130M+ parameters each, so one module-scoped fixture builds a
spec and its reference once and pytest runs every test of that spec before building the next (at most one pair
is alive at a time).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torchvision
from torch import nn
from torchvision.models.vgg import cfgs as torchvision_vgg_cfgs

from tests.fixtures.seed_lenet5 import LeNet5 as SeedLeNet5
from tests.zoo_helpers import (
    Case,
    assert_counts,
    assert_equals_reference,
    assert_loaded_logits_match,
    assert_shapes_match_hooks,
    build_spec,
    case_fixture,
    compile_at,
)

# shared/reference.md: params and buffers of the reference models (None where it lists no figure).
REFERENCE: dict[str, tuple[int | None, int | None]] = {
    "lenet5": (61_706, None),
    "alexnet": (61_100_840, 0),
    "vgg11": (132_863_336, 0),
    "vgg13": (133_047_848, 0),
    "vgg16": (138_357_544, 0),
    "vgg19": (143_667_240, 0),
    "vgg11_bn": (132_868_840, 5_512),
    "vgg13_bn": (None, None),  # not in reference.md: held against torchvision's model only
    "vgg16_bn": (138_365_992, 8_461),
    "vgg19_bn": (None, None),  # likewise
}
VGGS = [name for name in REFERENCE if name.startswith("vgg")]
# The paper's configurations (Table 1), as torchvision's `cfgs` names them.
VGG_CONFIG = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}


def reference_model(name: str) -> nn.Module:
    if name == "lenet5":
        return SeedLeNet5()
    return getattr(torchvision.models, name)()


case = case_fixture(list(REFERENCE), reference_model)


def test_parameter_and_buffer_counts_equal_generated_module_reference_and_published_figures(case: Case) -> None:
    name, compiled, model, reference = case
    params, buffers = REFERENCE[name]
    assert_counts(compiled, model, params, buffers, reference)


def test_reference_weights_load_strictly_and_logits_match(case: Case) -> None:
    name, compiled, model, reference = case
    assert_equals_reference(compiled, model, reference, batch=1)


@pytest.mark.parametrize("case", ["lenet5", "alexnet", "vgg11_bn"], indirect=True)
def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_spec_names_its_reference_and_takes_the_reference_input(case: Case) -> None:
    name, compiled, model, reference = case
    expected = "seed 000: LeNet5" if name == "lenet5" else f"torchvision:{name}"
    assert compiled.arch.meta["reference"] == expected
    assert compiled.arch.input_shape == ([1, 32, 32] if name == "lenet5" else [3, 224, 224])


@pytest.mark.parametrize("name", VGGS)
def test_every_vgg_is_the_one_shared_config_driven_definition(name: str) -> None:
    compiled = compile_at(name)
    assert compiled.arch.root.type == "VGG"
    features = next(child for child in compiled.arch.root.children if child.name == "features")
    assert features.type == "VGGFeatures"
    assert compiled.arch.root.args["cfg"] == torchvision_vgg_cfgs[VGG_CONFIG[name.removesuffix("_bn")]]
    assert compiled.arch.root.args["batch_norm"] is name.endswith("_bn")


def test_alexnet_constructor_arguments_reach_the_module(tmp_path: Path) -> None:
    _, model = build_spec("alexnet", tmp_path, num_classes=10, dropout=0.25)
    reference = torchvision.models.alexnet(num_classes=10, dropout=0.25)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.25]
    assert_loaded_logits_match(model, reference, (3, 224, 224))


def test_lenet5_generated_state_dict_keys_are_the_seed_keys(tmp_path: Path) -> None:
    _, model = build_spec("lenet5", tmp_path)
    assert list(model.state_dict()) == list(SeedLeNet5().state_dict())
