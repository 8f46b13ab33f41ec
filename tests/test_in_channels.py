"""The generated constructors take `in_channels` (timm's `in_chans`), the spec's input channels by default.

Every zoo model built with 1 and 4 input channels is compared with the same model in its reference library: timm's
built with `in_chans`; torchvision's (which has no such argument) through the shapes of its first convolution, whose
weight holds `in_channels / groups` slices. Small models also run a forward on 1- and 4-channel images."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from archc.api import load_module
from archc.compiler import compile_spec
from archc.tools.verify import reference_model
from tests.conftest import SPECS, compile_text

ALL = sorted(SPECS.glob("*.arch"))
WITH_REFERENCE = [p for p in ALL if str(compile_spec(p).arch.meta.get("reference", "")).split(":")[0] in ("torchvision", "timm")]


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def constructor(spec: Path) -> Any:
    compiled = compile_spec(spec)
    return getattr(load_module(compiled), compiled.module_name)


@pytest.mark.parametrize("spec", ALL, ids=lambda p: p.stem)
def test_in_channels_is_a_constructor_argument_defaulting_to_the_input(spec: Path) -> None:
    compiled = compile_spec(spec)
    parameter = inspect.signature(constructor(spec)).parameters["in_channels"]
    assert parameter.default == compiled.arch.input_shape[0]


def torchvision_reference(compiled: Any, name: str) -> nn.Module:
    """torchvision's model without storage where its builder allows (RegNet's computes its widths with tensors: on
    the CPU, those over 25M parameters skipped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                return reference_model("torchvision", name, compiled)
        except NotImplementedError:
            if compiled.params.params > 25_000_000:
                pytest.skip(f"{name} builds only with storage; its smaller siblings are compared")
            return reference_model("torchvision", name, compiled)


@pytest.mark.parametrize("spec", WITH_REFERENCE, ids=lambda p: p.stem)
def test_other_channel_counts_match_the_reference(spec: Path) -> None:
    compiled = compile_spec(spec)
    library, name = str(compiled.arch.meta["reference"]).split(":", 1)
    build = constructor(spec)
    if library == "torchvision":
        reference = torchvision_reference(compiled, name)
        first = next(m for m in reference.modules() if isinstance(m, nn.Conv2d))  # the one the image enters
        assert (first.in_channels, first.groups) == (3, 1)
        per_channel = first.weight.numel() // 3  # its weights for one input channel
    for channels in (1, 4):
        with torch.device("meta"):
            ours = build(in_channels=channels)
            if library == "timm":
                import timm

                theirs = timm.create_model(name, pretrained=False, num_classes=compiled.arch.params["num_classes"], in_chans=channels)
                expected = count(theirs)
            else:
                expected = count(reference) + (channels - 3) * per_channel
        assert count(ours) == expected, (spec.stem, channels)


@pytest.mark.parametrize("name", ["lenet5", "resnet18", "mobilenet_v3_small", "squeezenet1_1", "xception_cifar"])
def test_a_forward_on_other_channel_counts(name: str) -> None:
    compiled = compile_spec(SPECS / f"{name}.arch")
    build = constructor(SPECS / f"{name}.arch")
    _, height, width = compiled.arch.input_shape
    torch.manual_seed(0)
    for channels in (1, 4):
        model = build(num_classes=7, in_channels=channels).eval()
        with torch.no_grad():
            out = model(torch.randn(2, channels, height, width))
        assert out.shape == (2, 7)
        # The channels reach every size that follows from them: the same as compiling the spec at that input.
        at = compile_spec(SPECS / f"{name}.arch", {"num_classes": 7}, input_shape=(channels, height, width))
        assert count(model) == at.params.params
        with pytest.raises(RuntimeError):
            model(torch.randn(1, 3 if channels != 3 else 2, height, width))


def test_a_flat_arch_parametrises_its_first_layer_even_a_linear(tmp_path: Path) -> None:
    text = "arch mlp() {\n    input (2, 4, 4)\n    flatten(1)\n    linear(5)\n}\n"
    compiled, module = compile_text(text, tmp_path, "mlp")
    for channels in (1, 3):
        model = module.mlp(in_channels=channels)
        assert count(model) == channels * 16 * 5 + 5  # linear(channels·4·4 -> 5)
        assert model(torch.randn(2, channels, 4, 4)).shape == (2, 5)


def test_an_arch_whose_input_is_a_parameter_keeps_that_parameter(tmp_path: Path) -> None:
    text = "arch net(c = 2) {\n    input (c, 8, 8)\n    conv(4, 3)\n}\n"
    _, module = compile_text(text, tmp_path, "net")
    assert "in_channels" not in inspect.signature(module.net).parameters
    assert count(module.net(c=5)) == 4 * 5 * 9 + 4


def test_an_arch_that_binds_the_name_itself_has_no_in_channels_argument(tmp_path: Path) -> None:
    text = "arch net(w = 2) {\n    input (3, 8, 8)\n    let in_channels = w * 2\n    conv(in_channels, 3)\n}\n"
    _, module = compile_text(text, tmp_path, "net")
    assert "in_channels" not in inspect.signature(module.net).parameters
    assert count(module.net(w=3)) == 6 * 3 * 9 + 6  # conv(3 -> w·2 = 6, 3×3)
