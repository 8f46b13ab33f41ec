"""Every spec in the zoo against its reference: strict state_dict load, equal logits, parameter counts, shapes.

The references are independent of archc: torchvision's models, the seed document's own code
(tests/fixtures/d2l_resnet.py) and the figures of shared/reference.md, measured on those models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

from archc.compiler import Compiled, compile_spec
from tests.conftest import SPECS, load_source
from tests.fixtures.d2l_resnet import ResNet18 as D2LResNet18

# shared/reference.md: params and buffers of the reference models.
REFERENCE = {
    "resnet18": (11_689_512, 9_620),
    "resnet34": (21_797_672, 17_060),
    "resnet50": (25_557_032, 53_173),
    "resnet101": (44_549_160, 105_448),
    "resnet152": (60_192_808, 151_579),
    "resnext50_32x4d": (25_028_904, 68_277),
    "resnext101_32x8d": (88_791_336, 202_984),
    "d2l_resnet18": (11_178_378, None),
}
TORCHVISION = [name for name in REFERENCE if not name.startswith("d2l")]


def reference_model(name: str) -> nn.Module:
    if name == "d2l_resnet18":
        model = D2LResNet18()
        model(torch.zeros(1, 1, 96, 96))  # materialise the Lazy modules
        return model
    return getattr(torchvision.models, name)()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache: dict[str, tuple[Compiled, nn.Module]] = {}

    def build(name: str) -> tuple[Compiled, nn.Module]:
        if name not in cache:
            compiled = compile_spec(SPECS / f"{name}.arch")
            module = load_source(compiled.python(), name, tmp_path_factory.mktemp(name))
            cache[name] = (compiled, getattr(module, name)())
        return cache[name]

    return build


def count(tensors: Any) -> int:
    return sum(t.numel() for t in tensors)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_parameter_counts_equal_generated_module_and_reference(name: str, built: Any) -> None:
    compiled, model = built(name)
    reference = reference_model(name)
    params, buffers = REFERENCE[name]
    assert compiled.params.params == count(model.parameters()) == count(reference.parameters()) == params
    assert compiled.params.trainable_params == count(p for p in model.parameters() if p.requires_grad)
    assert compiled.params.buffers == count(model.buffers()) == count(reference.buffers())
    if buffers is not None:
        assert compiled.params.buffers == buffers


@pytest.mark.parametrize("name", list(REFERENCE))
def test_reference_weights_load_strictly_and_logits_match(name: str, built: Any) -> None:
    compiled, model = built(name)
    reference = reference_model(name)
    # Random statistics, so BatchNorm in eval mode does more than the identity.
    with torch.no_grad():
        for m in reference.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    torch.manual_seed(0)
    x = torch.randn(2, *compiled.arch.input_shape)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= 1e-5 * theirs.abs().max().item()


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d", "d2l_resnet18"])
def test_every_module_output_shape_equals_the_shape_pass(name: str, built: Any) -> None:
    compiled, model = built(name)
    seen: dict[str, list[tuple[int, ...]]] = {}
    handles = []
    for path, module in model.named_modules():

        def hook(mod: nn.Module, args: Any, out: Any, path: str = path) -> None:
            seen.setdefault(path, []).append(tuple(out.shape[1:]))

        handles.append(module.register_forward_hook(hook))
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, *compiled.arch.input_shape))
    for h in handles:
        h.remove()
    applied: dict[str, list[tuple[int, ...]]] = {}
    for node in compiled.arch.nodes:
        if node.module is not None:
            applied.setdefault(node.module, []).append(tuple(node.shape))
    leaf_paths = {p for p, m in model.named_modules() if not list(m.children())}
    assert leaf_paths <= set(applied), "every leaf module of the generated code is a node of the IR"
    for path, shapes in applied.items():
        assert seen[path] == shapes, path
    assert tuple(out.shape[1:]) == tuple(compiled.arch.nodes[compiled.arch.outputs[0]].shape)


def test_generated_module_names_match_reference_state_dict(built: Any) -> None:
    compiled, model = built("resnet50")
    keys = set(model.state_dict())
    assert "layer2.0.downsample.0.weight" in keys and "fc.bias" in keys
    assert keys == set(torchvision.models.resnet50().state_dict())


def test_constructor_parameters_reach_the_module(built: Any, tmp_path: Path) -> None:
    compiled = compile_spec(SPECS / "resnet18.arch")
    module = load_source(compiled.python(), "resnet18", tmp_path)
    model = module.resnet18(num_classes=10)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    assert count(model.parameters()) == count(torchvision.models.resnet18(num_classes=10).parameters())


@pytest.mark.parametrize("name", ["resnet18", "d2l_resnet18"])
def test_generated_module_scripts_with_torch_jit(name: str, built: Any) -> None:
    compiled, model = built(name)
    model.eval()
    scripted = torch.jit.script(model)
    x = torch.randn(2, *compiled.arch.input_shape)
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), atol=1e-5)


def test_generated_module_compiles_with_torch_compile_without_graph_breaks(built: Any) -> None:
    compiled, model = built("resnet18")
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    optimized = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        assert torch.allclose(optimized(x), model(x), atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_generated_module_runs_on_cuda_like_on_cpu(built: Any) -> None:
    compiled, model = built("resnext50_32x4d")
    model.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        cpu = model(x)
        gpu = model.cuda()(x.cuda()).cpu()
    model.cpu()
    assert (gpu - cpu).abs().max().item() <= 1e-3 * cpu.abs().max().item()


def test_command_line_override_becomes_the_constructor_default(tmp_path: Path) -> None:
    compiled = compile_spec(SPECS / "resnet18.arch", {"num_classes": 10})
    assert compiled.arch.nodes[compiled.arch.outputs[0]].shape == [10]
    module = load_source(compiled.python(), "resnet18", tmp_path)
    assert module.resnet18()(torch.randn(1, 3, 64, 64)).shape == (1, 10)
