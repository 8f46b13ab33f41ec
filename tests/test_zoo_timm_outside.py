"""timm CNNs outside torchvision, written from docs/language.md alone, against their references: counts, strict
state_dict load, every module's settings and output, logits in eval and training mode, shapes.

References: timm's `repvgg_a0` (RepVGG, training form), `cspresnet50` (CSPNet), `gernet_s` (GENet), `lcnet_050`
(PP-LCNet), `ghostnet_100` (GhostNet v1), `ecaresnet50d` (ECA-ResNet-50-D), `rexnet_100` (ReXNet), `resnest14d`
(ResNeSt's split attention; `resnest50d` under `-m full`), `res2net50_26w_4s` (Res2Net: lists of tensors, a forward
loop over a range), `mixnet_s` (MixConv's channel groups, each through its own kernel size), `ese_vovnet19b_dw`,
`ese_vovnet39b` and `ese_vovnet19b_slim` (VoVNetV2's one-shot aggregation: a chain of convolutions whose every output
joins the block's input), `dla34` (Deep Layer Aggregation: blocks taking several inputs, a tree that builds itself),
built by timm.create_model without weights. Every model is compiled at 3×64×64 (the specs
declare 224), small enough to build and run each in a few seconds; one module-scoped fixture builds a spec and its
reference once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from archc.compiler import Compiled
from tests.conftest import ROOT
from tests.zoo_helpers import (
    Case,
    assert_counts,
    assert_equals_reference,
    assert_loaded_logits_match,
    assert_macs_equal_half_the_flop_counter,
    assert_shapes_match_hooks,
    assert_state_dict_keys_equal,
    assert_training_logits_match,
    build_spec,
    case_fixture,
    count,
    timm_reference,
)

NAMES = [
    "repvgg_a0",
    "cspresnet50",
    "gernet_s",
    "lcnet_050",
    "ghostnet_100",
    "ecaresnet50d",
    "rexnet_100",
    "resnest14d",
    pytest.param("resnest50d", marks=pytest.mark.full),
    "res2net50_26w_4s",
    "mixnet_s",
    "ese_vovnet19b_dw",
    "ese_vovnet39b",
    "ese_vovnet19b_slim",
    "dla34",
]
INPUT = (3, 64, 64)


def build(name: str, directory: Path, **params: Any) -> tuple[Compiled, nn.Module]:
    """Compile specs/<name>.arch at 3×64×64 and build its model with the generated constructor."""
    return build_spec(name, directory, INPUT, **params)


# (name, compiled spec at 3×64×64, generated model, timm's model), built once and freed after its tests.
case = case_fixture(NAMES, timm_reference, INPUT)


def test_parameter_and_buffer_counts_equal_generated_module_and_reference(case: Case) -> None:
    name, compiled, model, reference = case
    assert_counts(compiled, model, reference=reference)


@pytest.mark.parametrize("name", NAMES)
def test_archc_summary_json_params_equal_the_references(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "archc", "summary", "--json", "--input", "3x64x64", f"specs/{name}.arch"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    summary = json.loads(result.stdout)
    assert summary["params"] == count(timm_reference(name).parameters())


def test_macs_equal_half_the_flops_pytorch_counts_on_timms_model(case: Case) -> None:
    name, compiled, model, reference = case
    assert_macs_equal_half_the_flop_counter(compiled, reference)


def test_generated_state_dict_keys_are_timms_in_timms_order(case: Case) -> None:
    name, compiled, model, reference = case
    assert_state_dict_keys_equal(model, reference)


def test_settings_and_every_module_output_equal_timms(case: Case) -> None:
    # Types and settings of every layer (eps, inplace, strides, groups, paddings), then a strict load of timm's
    # state_dict (BatchNorm randomised) and every module's output at input scales ×1 and ×10.
    name, compiled, model, reference = case
    assert_equals_reference(compiled, model, reference)


def test_training_mode_logits_equal_timms(case: Case) -> None:
    # Training mode uses the batch statistics; GhostNet's and ReXNet's head dropout (p = 0.2 by default) draws from
    # the seed, the same mask on both sides.
    name, compiled, model, reference = case
    assert_training_logits_match(model, reference, INPUT)


def test_every_module_output_shape_equals_what_forward_hooks_see(case: Case) -> None:
    name, compiled, model, reference = case
    assert_shapes_match_hooks(compiled, model)


def test_spec_names_its_reference(case: Case) -> None:
    name, compiled, model, reference = case
    assert compiled.arch.meta["reference"] == f"timm:{name}"
    assert compiled.arch.meta["paper"] and isinstance(compiled.arch.meta["year"], int)


@pytest.mark.parametrize("name", NAMES)
def test_num_classes_and_drop_rate_reach_the_module_as_in_timm(name: str, tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"num_classes": 10, "drop_rate": 0.25}
    _, model = build(name, tmp_path, **kwargs)
    reference = timm_reference(name, **kwargs)
    # Two samples: ReXNet's SE and split attention's BatchNorm see 1×1 maps, which training cannot normalise alone.
    out = assert_loaded_logits_match(model, reference, INPUT, batch=2)
    assert out.shape == (2, 10)
    # The head's dropout (inline F.dropout) is active in training mode.
    model.train()
    x = torch.randn(2, *INPUT)
    assert not torch.equal(model(x), model(x))
