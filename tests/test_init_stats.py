"""Weight initialisation against the reference: every parameter (weight and bias) of the generated module has, at
construction, the mean and standard deviation of the reference's parameter of the same name (torchvision or timm,
built without weights), within sampling tolerance. The two are drawn from different seeds: what must agree is the
distribution, so the tolerance is the sampling error of the statistics, computed from the number of elements.

A few representative specs run by default; every spec with a library reference runs under `-m full`.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from archc.compiler import compile_spec
from archc.tools.verify import reference_model
from tests.conftest import SPECS, load_source

# One or two per family: ResNet (type rules), VGG-BN (`if init_weights`), GoogLeNet and Inception3 (truncated
# normals, a member override), RegNet, timm's Xception and ResNetV2 (a member override of a conv).
DEFAULT = ["resnet18", "vgg11_bn", "googlenet", "inception_v3", "regnet_x_400mf", "xception", "preact_resnet18"]


def _referenced() -> list[str]:
    """The zoo specs whose reference is a library model (torchvision:... or timm:...)."""
    found = re.compile(r'reference = "(torchvision|timm):')
    return sorted(p.stem for p in SPECS.glob("*.arch") if found.search(p.read_text(encoding="utf-8")))


FULL = [s for s in _referenced() if s not in DEFAULT]


def _models(spec: Path, directory: Path) -> tuple[nn.Module, nn.Module]:
    compiled = compile_spec(spec)
    library, name = str(compiled.arch.meta["reference"]).split(":", 1)
    module = load_source(compiled.python(), spec.stem, directory)
    torch.manual_seed(0)
    ours = getattr(module, spec.stem)()
    torch.manual_seed(1)
    theirs = reference_model(library, name, compiled)
    return ours, theirs


def init_mismatches(ours: nn.Module, theirs: nn.Module, sigmas: float = 6.0) -> list[str]:
    """The parameters whose mean or standard deviation differ by more than `sigmas` standard errors.

    For n i.i.d. elements of standard deviation s, the difference of two sample means has standard error
    s·sqrt(2/n), the difference of two sample standard deviations about s·sqrt(1/n) (normal data; uniform data has
    less). Tensors of fewer than 100 elements get 10 standard errors, since the normal approximation is rough there.
    A constant (s = 0) must match exactly, up to rounding."""
    mine, reference = dict(ours.named_parameters()), dict(theirs.named_parameters())
    assert mine.keys() == reference.keys(), sorted(mine.keys() ^ reference.keys())[:5]
    out = []
    for key, p in mine.items():
        x, y = p.detach().double().flatten(), reference[key].detach().double().flatten()
        n = x.numel()
        if n < 2:
            continue
        s = max(x.std().item(), y.std().item())
        k = sigmas if n >= 100 else 10.0
        mean_tol = k * s * math.sqrt(2 / n) + 1e-6
        std_tol = k * s * math.sqrt(1 / n) + 1e-6
        dm, ds = abs(x.mean().item() - y.mean().item()), abs(x.std().item() - y.std().item())
        if dm > mean_tol or ds > std_tol:
            out.append(
                f"{key} ({n} elements): mean {x.mean().item():.4g} vs {y.mean().item():.4g}, "
                f"std {x.std().item():.4g} vs {y.std().item():.4g} (tolerances {mean_tol:.2g}, {std_tol:.2g})"
            )
    return out


@pytest.mark.parametrize("name", DEFAULT)
def test_generated_init_matches_the_reference(name: str, tmp_path: Path) -> None:
    ours, theirs = _models(SPECS / f"{name}.arch", tmp_path)
    assert init_mismatches(ours, theirs) == []


@pytest.mark.full
@pytest.mark.parametrize("name", FULL)
def test_generated_init_matches_the_reference_full(name: str, tmp_path: Path) -> None:
    ours, theirs = _models(SPECS / f"{name}.arch", tmp_path)
    assert init_mismatches(ours, theirs) == []


def test_the_comparison_fails_without_the_init_block(tmp_path: Path) -> None:
    """ResNet-18 with its `init` removed keeps PyTorch's defaults: conv1's std is then about 0.048 against
    torchvision's 0.026, and the test above would fail."""
    shutil.copytree(SPECS / "lib", tmp_path / "lib")
    shutil.copy(SPECS / "resnet18.arch", tmp_path / "resnet18.arch")
    lib = tmp_path / "lib" / "resnet.arch"
    text, removed = re.subn(r"\n    init \{\n.*?\n    \}\n", "\n", lib.read_text(encoding="utf-8"), flags=re.S)
    assert removed == 1
    lib.write_text(text, encoding="utf-8")
    ours, theirs = _models(tmp_path / "resnet18.arch", tmp_path)
    found = init_mismatches(ours, theirs)
    assert any(m.startswith("conv1.weight ") for m in found), found
    assert ours.conv1.weight.std().item() > 1.5 * theirs.conv1.weight.std().item()


def test_zero_init_residual_zeroes_the_last_batchnorm_of_each_block_as_torchvision() -> None:
    """The generated constructor's `zero_init_residual`, against torchvision's: the same weights are zero."""
    import torchvision

    from generated.resnet18 import resnet18
    from generated.resnet50 import resnet50

    for ours_ctor, name in ((resnet18, "resnet18"), (resnet50, "resnet50")):
        ours = ours_ctor(zero_init_residual=True)
        theirs = torchvision.models.get_model(name, weights=None, zero_init_residual=True)
        zeros = {k for k, p in ours.named_parameters() if p.dim() == 1 and not p.detach().any()}
        expected = {k for k, p in theirs.named_parameters() if p.dim() == 1 and not p.detach().any()}
        assert zeros == expected and zeros, sorted(zeros ^ expected)[:5]
        assert not {k for k, p in ours_ctor().named_parameters() if k.endswith(".weight") and not p.detach().any()}


def test_two_rules_on_members_of_one_block_both_run(tmp_path: Path) -> None:
    """`B.a = ...` and `B.b = ...` both apply (they were emitted as `if isinstance(m, B)` / `elif isinstance(m, B)`,
    and the second never ran): checked on the weights of the built module."""
    spec = tmp_path / "two_rules.arch"
    spec.write_text(
        "block B() {\n    a = conv(8, 1)\n    b = batchnorm()\n}\n"
        "arch two_rules() {\n    input (3, 8, 8)\n    blk = B()\n    init {\n"
        "        B.a = (weight = constant(2))\n        B.b = (weight = constant(0))\n    }\n}\n"
    )
    compiled = compile_spec(spec)
    model = load_source(compiled.python(), "two_rules", tmp_path).two_rules()
    assert bool((model.blk.a.weight == 2).all()) and bool((model.blk.b.weight == 0).all())
