"""The inference build (`archc compile --inference`, docs/inference.md) held to the training module in PyTorch.

Each model test builds the training module from generated/<spec>.py with random weights and random BatchNorm
affine parameters and running statistics, loads its state_dict into the inference build (strict), and compares
eval-mode logits. Which BatchNorms were folded is checked against PyTorch itself: forward hooks on the training
module find the BatchNorms whose input is a convolution's output, untouched. Every spec's inference build is held
to its training module at two input scales (the large ones under `pytest -m full`), and for each new family's
smallest model the folded BatchNorms are the Conv2d -> BatchNorm2d pairs torch.fx finds in torchvision's model.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.fx
import torchvision
from torch import nn

from archc.cli import main
from archc.compiler import compile_spec
from archc.tools.runtime import randomize_batchnorm_statistics
from tests.conftest import GENERATED, ROOT, SPECS, compile_text, load_source
from tests.zoo_helpers import assert_logits_match_at_two_scales, zoo_params

# (spec, input size for the test: smaller than the spec's where the network allows, to keep the test fast)
MODELS = [
    ("resnet18", 64),
    ("resnet50", 64),
    ("resnext50_32x4d", 64),
    ("vgg11_bn", 32),
    ("googlenet", 64),
    ("inception_v3", 96),
    ("xception", 96),
    ("preact_resnet18", 32),
    ("bn_inception", 64),
    ("alexnet", 64),
    ("lenet5", 32),
]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def load_generated(name: str) -> ModuleType:
    """The committed training module generated/<name>.py."""
    spec = importlib.util.spec_from_file_location(f"_archc_training_{name}", GENERATED / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batchnorms_run(model: nn.Module, x: torch.Tensor) -> tuple[set[str], set[str]]:
    """Names of the BatchNorms an eval forward runs, and of those whose input is a convolution's output tensor,
    unmodified (PyTorch's view of the graph)."""
    outputs: dict[int, tuple[torch.Tensor, int]] = {}
    found: set[str] = set()
    ran: set[str] = set()
    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(lambda _m, _i, out: outputs.__setitem__(id(out), (out, out._version))))
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):

            def check(_m: nn.Module, inputs: tuple[torch.Tensor, ...], name: str = name) -> None:
                ran.add(name)
                seen = outputs.get(id(inputs[0]))
                if seen is not None and seen[0] is inputs[0] and seen[1] == inputs[0]._version:
                    found.add(name)

            handles.append(m.register_forward_pre_hook(check))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return ran, found


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "size"), MODELS, ids=[m[0] for m in MODELS])
def test_inference_build_gives_the_training_logits(name: str, size: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    training = getattr(load_generated(name), name)()
    randomize_batchnorm_statistics(training, seed=1, affine=True)
    compiled = compile_spec(SPECS / f"{name}.arch")
    module = load_source(compiled.inference_python(), f"{name}_inference", tmp_path)
    inference = getattr(module, f"{name}_inference")()
    inference.load_state_dict(training.state_dict(), strict=True)
    training.eval()
    inference.eval()

    channels = compiled.arch.input_shape[0]
    x = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = training(x)
        got = inference(x)
    assert isinstance(got, torch.Tensor)  # one tensor, no auxiliary outputs
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-4 * expected.abs().max().item()

    folded = (
        {n for n, m in inference.named_modules() if isinstance(m, module.FoldedBatchNorm)} if hasattr(module, "FoldedBatchNorm") else set()
    )
    ran, after_a_conv = batchnorms_run(training, x)
    assert folded == after_a_conv
    assert {n for n, m in inference.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)} == ran - folded
    if name != "preact_resnet18":  # every BatchNorm follows a convolution, except in pre-activation units
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in inference.modules())
    assert not any(isinstance(m, nn.Dropout) for m in inference.modules())
    if folded:
        assert count_params(inference) < count_params(training)
    else:
        assert count_params(inference) == count_params(training)


def test_preactivation_units_keep_the_batchnorm_that_precedes_a_conv(tmp_path: Path) -> None:
    # Pre-activation units: norm1 runs before conv1 (not folded: its zero padding makes folding it into the conv
    # inexact); norm2 follows conv1 (folded).
    compiled = compile_spec(SPECS / "preact_resnet18.arch")
    module = load_source(compiled.inference_python(), "preact_resnet18_inference", tmp_path)
    model = module.preact_resnet18_inference()
    unit = model.stages[0].blocks[0]
    assert isinstance(unit.norm1, nn.BatchNorm2d)
    assert isinstance(unit.norm2, module.FoldedBatchNorm)
    assert unit.conv1.bias is not None and unit.conv2.bias is None


def test_inference_build_loads_its_own_state_dict(tmp_path: Path) -> None:
    compiled = compile_spec(SPECS / "resnet18.arch")
    module = load_source(compiled.inference_python(), "resnet18_inference", tmp_path)
    training = load_generated("resnet18").resnet18()
    randomize_batchnorm_statistics(training, seed=1, affine=True)
    first = module.resnet18_inference()
    first.load_state_dict(training.state_dict(), strict=True)
    second = module.resnet18_inference()
    second.load_state_dict(first.state_dict(), strict=True)  # already folded: loaded as it is
    for (k, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_training_state_dict_without_running_statistics_is_refused(tmp_path: Path) -> None:
    compiled = compile_spec(SPECS / "resnet18.arch")
    module = load_source(compiled.inference_python(), "resnet18_inference", tmp_path)
    state = load_generated("resnet18").resnet18().state_dict()
    del state["bn1.running_var"]
    with pytest.raises(RuntimeError, match="bn1"):
        module.resnet18_inference().load_state_dict(state, strict=True)


# Small specs for the cases the zoo does not show.

SHARED_BLOCK = """\
block Unit(c) {
    conv1 = conv(c, 3, padding = 1, bias = false)
    forward(x) = conv1(x)
}

arch NAME(num_classes = 10) {
    input (3, 16, 16)
    a = Unit(8)
    bn_a = batchnorm()
    b = Unit(8)
    after_b = AFTER
    pool = adaptive_avgpool((1, 1))
    fc = linear(num_classes)
    forward(x) = fc(dropout(flatten(pool(after_b(b(bn_a(a(x))))), 1), 0.5))
}
"""


def _build_both(text: str, name: str, tmp_path: Path) -> tuple[nn.Module, nn.Module, ModuleType]:
    compiled, training_module = compile_text(text, tmp_path, name)
    torch.manual_seed(0)
    training = getattr(training_module, name)()
    randomize_batchnorm_statistics(training, seed=1, affine=True)
    module = load_source(compiled.inference_python(), f"{name}_inference", tmp_path)
    inference = getattr(module, f"{name}_inference")()
    inference.load_state_dict(training.state_dict(), strict=True)
    training.eval()
    inference.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(inference(x), training(x), rtol=1e-5, atol=1e-5)
    return training, inference, module


def test_a_block_followed_by_batchnorm_everywhere_folds_its_last_conv(tmp_path: Path) -> None:
    text = SHARED_BLOCK.replace("NAME", "both").replace("AFTER", "batchnorm()")
    _, inference, module = _build_both(text, "both", tmp_path)
    assert isinstance(inference.bn_a, module.FoldedBatchNorm) and inference.bn_a.conv == "a.conv1"
    assert isinstance(inference.after_b, module.FoldedBatchNorm)


def test_a_block_followed_by_batchnorm_in_one_use_only_folds_nothing(tmp_path: Path) -> None:
    # One class serves both instances of Unit: its conv cannot take a bias for one of them alone.
    text = SHARED_BLOCK.replace("NAME", "mixed").replace("AFTER", "relu()")
    _, inference, module = _build_both(text, "mixed", tmp_path)
    assert isinstance(inference.bn_a, nn.BatchNorm2d)
    assert inference.a.conv1.bias is None
    assert not hasattr(module, "FoldedBatchNorm")
    assert "F.dropout" not in (tmp_path / "mixed_inference.py").read_text()


def test_a_conv_feeding_two_consumers_is_not_folded(tmp_path: Path) -> None:
    text = """\
arch twice(num_classes = 10) {
    input (3, 16, 16)
    c = conv(8, 3, padding = 1)
    bn = batchnorm()
    fc = linear(num_classes)
    forward(x) {
        y = c(x)
        return fc(flatten(adaptive_avgpool(bn(y) + y, (1, 1)), 1))
    }
}
"""
    _, inference, _ = _build_both(text, "twice", tmp_path)
    assert isinstance(inference.bn, nn.BatchNorm2d)


def test_an_init_rule_on_a_folded_batchnorm_is_left_to_the_training_module(tmp_path: Path) -> None:
    # timm's zero_init_last: an init rule names a BatchNorm that the inference build folds. The inference build has
    # no init code (the strict load sets every parameter); it used to fail on `FoldedBatchNorm.weight`.
    text = """\
block Unit(c) {
    conv1 = conv(c, 3, padding = 1, bias = false)
    bn = batchnorm()
    forward(x) = relu(bn(conv1(x))) + x
}

arch zeroed(num_classes = 10) {
    input (3, 16, 16)
    stem = conv(8, 3, padding = 1)
    a = Unit(8)
    pool = adaptive_avgpool((1, 1))
    fc = linear(num_classes)
    forward(x) = fc(flatten(pool(a(stem(x))), 1))
    init {
        Unit.bn = (weight = zeros())
    }
}
"""
    training, inference, module = _build_both(text, "zeroed", tmp_path)
    assert training.a.bn.weight.detach().abs().sum().item() > 0  # randomised after the init, so the fold is exercised
    assert isinstance(inference.a.bn, module.FoldedBatchNorm)
    assert "nn.init" not in (tmp_path / "zeroed_inference.py").read_text()


# The command


def test_compile_inference_writes_a_deterministic_ruff_clean_module_for_every_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = sorted(SPECS.glob("*.arch"))
    assert main(["compile", "--inference", *map(str, specs), "-o", str(tmp_path / "a")]) == 0
    assert "resnet50_inference.py" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(f"{p.stem}_inference.py" for p in specs)
    again = [str(SPECS / f"{n}.arch") for n in ("resnet50", "googlenet", "vgg11_bn", "xception")]
    assert main(["compile", "--inference", *again, "-o", str(tmp_path / "b")]) == 0
    for n in ("resnet50", "googlenet", "vgg11_bn", "xception"):
        assert (tmp_path / "a" / f"{n}_inference.py").read_bytes() == (tmp_path / "b" / f"{n}_inference.py").read_bytes()
    ruff = [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--select", "E,F,W,I,B,UP", "--ignore", "E501"]
    result = subprocess.run([*ruff, "--target-version", "py311", str(tmp_path / "a")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compile_inference_of_a_broken_spec_is_a_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.arch"
    broken.write_text("arch Broken() {\n    input (3, 32, 32)\n    conv(8, 3\n}\n")
    assert main(["compile", "--inference", str(broken), "-o", str(tmp_path / "out")]) == 1
    assert f"{broken}:4:1: error[E" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_compile_inference_does_not_import_torch(tmp_path: Path) -> None:
    cmd = [sys.executable, "-X", "importtime", "-m", "archc", "compile", "--inference", "specs/resnet50.arch", "-o", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")]
    assert "archc.emit.inference" in imported
    assert not [m for m in imported if m == "torch" or m.startswith("torch.")]


def test_a_spec_name_the_helper_code_uses_is_a_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text("block FoldedBatchNorm() {\n    conv(8, 3)\n}\n\narch net() {\n    input (3, 32, 32)\n    FoldedBatchNorm()\n}\n")
    assert main(["compile", str(spec), "-o", str(tmp_path / "train")]) == 0  # the training module has no such helper
    assert main(["compile", "--inference", str(spec), "-o", str(tmp_path / "out")]) == 1
    assert f"{spec}:1:1: error[E070]: `FoldedBatchNorm` cannot be a name in the inference build" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# Every spec, and the new families' folds against torchvision.


@pytest.mark.parametrize("path", zoo_params(sorted(SPECS.glob("*.arch"))))
def test_every_spec_inference_build_gives_the_training_logits_at_two_scales(path: Path, tmp_path: Path) -> None:
    # The spec's own input size, one image at scales ×1 and ×10; BatchNorm statistics and affine parameters randomised.
    # In float64: a fold reorders the arithmetic, whose float32 rounding reaches 1e-5 of the logits in the deepest
    # nets (ecaresnet50d: 1.3e-5), while a wrong fold differs at any precision; float64 holds them to 1e-9.
    name = path.stem
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        training = getattr(load_generated(name), name)()
        with torch.no_grad():  # ConvNeXt's layer scale starts at 1e-6, which would hide its blocks from the logits
            for key, parameter in training.named_parameters():
                if key.endswith("layer_scale"):
                    parameter.uniform_(0.5, 1.5)
        compiled = compile_spec(path)
        module = load_source(compiled.inference_python(), f"{name}_inference", tmp_path)
        inference = getattr(module, f"{name}_inference")()
        assert_logits_match_at_two_scales(inference, training, compiled.arch.input_shape, batch=1, rtol=1e-9)
        folded = {n for n, m in inference.named_modules() if type(m).__name__ == "FoldedBatchNorm"}
        _, after_a_conv = batchnorms_run(training, torch.randn(1, *compiled.arch.input_shape))
    finally:
        torch.set_default_dtype(default)
    if name in PARTLY_FOLDED:
        # Each fold left out is of the kind PARTLY_FOLDED names; the others fold.
        assert folded and folded < after_a_conv
        assert all(PARTLY_FOLDED[name](path) for path in after_a_conv - folded), sorted(after_a_conv - folded)
        return
    assert folded == after_a_conv


# Specs whose conv > BatchNorm pairs the inference build folds only in part, and which BatchNorms it leaves: a pair
# across two lists of modules (Res2Net's `bns[i](convs[i](x))`: the BatchNorm is not beside its conv), and MixNet's
# BatchNorms after a conv that is a list of convolutions (MixConv) in other instances of the block (one class serves
# them all, so the location folds nowhere).
PARTLY_FOLDED: dict[str, Callable[[str], bool]] = {
    "res2net50_26w_4s": lambda path: ".bns." in path,
    "mixnet_s": lambda path: path.startswith("blocks.") and path.rsplit(".", 1)[-1] in ("bn1", "bn2", "bn3"),
}


def conv_batchnorm_pairs(model: nn.Module) -> dict[str, nn.Conv2d]:
    """The (Conv2d -> BatchNorm2d) pairs of `model`'s torch.fx graph where the convolution's output feeds only the
    BatchNorm: each BatchNorm's path, with its convolution."""
    graph = torch.fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    pairs: dict[str, nn.Conv2d] = {}
    for node in graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], nn.BatchNorm2d):
            source = node.args[0]
            if (
                isinstance(source, torch.fx.Node)
                and source.op == "call_module"
                and isinstance(modules[source.target], nn.Conv2d)
                and list(source.users) == [node]
            ):
                pairs[node.target] = modules[source.target]
    return pairs


# Each new family's smallest model, and the kind of convolution its folds must include.
FAMILIES = [
    ("mobilenet_v2", "depthwise"),
    ("mobilenet_v3_small", "depthwise"),
    ("mnasnet0_5", "depthwise"),
    ("efficientnet_b0", "depthwise"),
    ("efficientnet_v2_s", "depthwise"),
    ("shufflenet_v2_x0_5", "depthwise"),
    ("regnet_x_400mf", "grouped"),
    ("regnet_y_400mf", "grouped"),
    ("resnext101_64x4d", "grouped"),
    ("wide_resnet50_2", None),
    ("densenet121", None),  # BN-ReLU-conv: only the BatchNorms after a conv fold
    ("squeezenet1_1", None),  # no BatchNorm
    ("convnext_tiny", None),  # LayerNorm, no BatchNorm
    ("vit_b_16", None),  # LayerNorm, no BatchNorm
]


@pytest.mark.parametrize(("name", "kind"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_folded_batchnorms_are_the_conv_batchnorm_pairs_of_the_torchvision_reference(name: str, kind: str | None, tmp_path: Path) -> None:
    reference = torchvision.models.get_model(name)
    pairs = conv_batchnorm_pairs(reference)
    module = load_source(compile_spec(SPECS / f"{name}.arch").inference_python(), f"{name}_inference", tmp_path)
    with torch.device("meta"):  # only its structure is read: no memory, no initialisation
        inference = getattr(module, f"{name}_inference")()
    folded = {n for n, m in inference.named_modules() if type(m).__name__ == "FoldedBatchNorm"}
    assert len(folded) == len(pairs)
    assert folded == set(pairs)
    # Each folded BatchNorm's convolution (found by PyTorch, at the same path in the inference build) took its bias;
    # every other convolution kept the reference's bias or none.
    paths = {id(m): n for n, m in reference.named_modules()}
    folded_convs = {paths[id(conv)] for conv in pairs.values()}
    for path, conv in reference.named_modules():
        if isinstance(conv, nn.Conv2d):
            ours = inference.get_submodule(path)
            assert isinstance(ours, nn.Conv2d) and ours.groups == conv.groups, path
            assert (ours.bias is not None) == (conv.bias is not None or path in folded_convs), path
    left = {n for n, m in inference.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    assert left == {n for n, m in reference.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)} - folded
    depthwise = [c for c in pairs.values() if c.groups == c.in_channels > 1]
    grouped = [c for c in pairs.values() if 1 < c.groups < c.in_channels]
    if kind == "depthwise":
        assert depthwise and not grouped
    elif kind == "grouped":
        assert grouped and not depthwise
    else:
        assert not depthwise and not grouped
