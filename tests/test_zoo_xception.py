"""The Xception specs against their references: timm's `legacy_xception` and seed 002's CIFAR-100 Xception.

References: timm 1.0.31 (`timm.create_model("legacy_xception")`, no weights), the seed's own code
(tests/fixtures/seed_xception.py) and the figures of shared/reference.md.
"""

from __future__ import annotations

from typing import Any

import pytest
import timm
from torch import nn

from tests.fixtures.seed_xception import xception as seed_xception
from tests.zoo_helpers import assert_counts, assert_equals_reference, assert_shapes_match_hooks, build_spec, built_fixture, count

# shared/reference.md: params and buffers (none listed for the seed row).
REFERENCE = {
    "xception": (22_855_952, 54_568),
    "xception_cifar": (21_013_988, None),
}


def reference_model(name: str, **params: Any) -> nn.Module:
    if name == "xception":
        return timm.create_model("legacy_xception", **params)
    return seed_xception(params.get("num_classes", 100))


built = built_fixture(reference_model)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_parameter_and_buffer_counts_equal_generated_module_reference_and_reference_md(name: str, built: Any) -> None:
    compiled, model, reference = built(name)
    params, buffers = REFERENCE[name]
    assert_counts(compiled, model, params=params, buffers=buffers, reference=reference)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_reference_weights_load_strictly_and_eval_logits_match(name: str, built: Any) -> None:
    compiled, model, reference = built(name)
    assert_equals_reference(compiled, model, reference, batch=1 if name == "xception" else 2)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_every_module_output_shape_equals_what_forward_hooks_see(name: str, built: Any) -> None:
    compiled, model, _ = built(name)
    assert_shapes_match_hooks(compiled, model)


def test_rep_sequences_number_relus_and_pools_as_timm_does(built: Any) -> None:
    _, model, reference = built("xception")
    keys = set(model.state_dict())
    # block1 starts without a ReLU, so its first separable convolution is rep.0; the others start with one.
    assert {"block1.rep.0.conv1.weight", "block2.rep.1.conv1.weight", "block12.rep.4.pointwise.weight"} <= keys
    assert "block4.skip.weight" not in keys and "block12.skipbn.running_var" in keys
    assert keys == set(reference.state_dict())


def layer_kinds(model: nn.Module) -> list[tuple[str, str, bool | None]]:
    """Every leaf module's path, class and in-place flag (None where it has none)."""
    return [(path, type(m).__name__, getattr(m, "inplace", None)) for path, m in model.named_modules() if not list(m.children())]


def test_relu_inplace_flags_equal_timm(built: Any) -> None:
    # Only each rep's first ReLU is out of place: the block's input also feeds the shortcut.
    _, model, reference = built("xception")
    assert layer_kinds(model) == layer_kinds(reference)


def test_layers_and_inplace_flags_equal_the_seed_but_for_the_empty_shortcut(built: Any) -> None:
    # The seed's in-place ReLUs at the head of the entry and middle flow residuals rectify the shortcut's input
    # too; equal logits depend on the generated module keeping them, and their order, as the seed has them.
    _, model, reference = built("xception_cifar")
    ours = [kind for kind in layer_kinds(model) if kind[1] != "Identity"]
    theirs = [kind for kind in layer_kinds(reference) if not kind[0].endswith(".shortcut")]
    assert ours == theirs
    identities = [path for path, _, _ in layer_kinds(model) if path.endswith(".shortcut") and "middel_block" in path]
    assert len(identities) == 8


def test_constructor_num_classes_reaches_the_classifier(tmp_path: Any) -> None:
    _, model = build_spec("xception_cifar", tmp_path, num_classes=10)
    assert model.fc.out_features == 10
    assert count(model.parameters()) == count(reference_model("xception_cifar", num_classes=10).parameters())
