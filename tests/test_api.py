"""The Python API: `archc.build` compiles a spec into a module in memory, `archc.analyze` gives typed figures."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archc
from archc.errors import ArchError
from tests.conftest import ROOT, SPECS

torch.set_num_threads(1)


def test_build_resnet18_has_ten_outputs_and_one_input_channel() -> None:
    model = archc.build(SPECS / "resnet18.arch", num_classes=10, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 10)
    assert model.conv1.in_channels == 1  # type: ignore[union-attr]
    assert archc.build(SPECS / "resnet18.arch", num_classes=10).eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 10)


def test_build_matches_the_generated_module() -> None:
    from generated.resnet18 import resnet18

    built, generated = archc.build(SPECS / "resnet18.arch").eval(), resnet18().eval()
    built.load_state_dict(generated.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(built(x), generated(x))


def test_build_adapts_the_input_of_an_arch_without_blocks() -> None:
    model = archc.build(SPECS / "lenet5.arch", num_classes=4, in_channels=3, input_size=(40, 40))
    assert model(torch.zeros(2, 3, 40, 40)).shape == (2, 4)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch 2.14 deprecates TorchScript; it still works
def test_built_modules_pickle_and_script() -> None:
    model = archc.build(SPECS / "lenet5.arch", num_classes=3).eval()
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    again = torch.load(buffer, weights_only=False)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
        assert torch.equal(torch.jit.script(model)(x), model(x))
        assert torch.allclose(torch.compile(model, backend="eager")(x), model(x))  # dynamo reads the registered source


def test_build_reports_spec_errors() -> None:
    with pytest.raises(ArchError) as caught:
        archc.build(SPECS / "resnet18.arch", num_clases=10)
    assert caught.value.code == "E012"
    with pytest.raises(ArchError) as caught:
        archc.build(SPECS / "missing.arch")
    assert caught.value.code == "E006"


def test_analyze_agrees_with_the_built_module() -> None:
    report = archc.analyze(SPECS / "resnet18.arch", num_classes=10)
    assert isinstance(report, archc.Report)
    model = archc.build(SPECS / "resnet18.arch", num_classes=10)
    assert report.params == sum(p.numel() for p in model.parameters())
    assert report.buffers == sum(b.numel() for b in model.buffers())
    with torch.no_grad():
        assert report.output == list(model.eval()(torch.zeros(1, *report.input)).shape[1:])
    conv1 = next(layer for layer in report.layers if layer.name == "conv1")
    assert conv1.params == model.conv1.weight.numel()  # type: ignore[union-attr]
    assert conv1.receptive_field.size == tuple(model.conv1.kernel_size)  # type: ignore[union-attr]
    assert report.memory.param_bytes == 4 * report.params


def test_import_archc_and_analyze_do_not_import_torch() -> None:
    code = "import sys, archc; archc.analyze('specs/lenet5.arch'); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'biuld'"):
        archc.biuld  # type: ignore[attr-defined]  # noqa: B018


def test_compile_honours_an_input_override(tmp_path: Path) -> None:
    """The emitted constructor follows `compile_spec(..., input_shape=...)`, which build relies on."""
    from archc.api import compile_for, load_module

    module = load_module(compile_for(SPECS / "vgg11.arch", {"num_classes": 5}, in_channels=1, input_size=(32, 32)))
    assert module.vgg11()(torch.zeros(1, 1, 32, 32)).shape == (1, 5)


@pytest.mark.parametrize("spec", ["lenet5", "googlenet", "inception_v3", "xception_cifar", "d2l_resnet18"])
def test_an_other_channel_build_has_the_parameters_the_analysis_counts(spec: str) -> None:
    """Grey for an RGB spec, RGB for a grey one: the emitted module and the elaborated IR agree on the first layer."""
    path = SPECS / f"{spec}.arch"
    as_written = archc.analyze(path, num_classes=7)
    channels = 3 if as_written.input[0] == 1 else 1
    report = archc.analyze(path, num_classes=7, in_channels=channels)
    model = archc.build(path, num_classes=7, in_channels=channels)
    assert report.input == [channels, *as_written.input[1:]]
    assert sum(p.numel() for p in model.parameters()) == report.params != as_written.params
