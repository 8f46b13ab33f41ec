"""`archc verify` catches wrong specs that an equal state_dict and fresh weights would let through.

Each case of the battery is a zoo spec with one deliberate change (written into tmp_path), and verify must name
the module the change is in, at the spec line that declares it (found in the altered text, not from archc). The
comparison of module settings is held against hand-built torch modules, and the tolerance at its boundary: an
output perturbed by just over the tolerance differs, by just under it does not.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

from archc.cli import main
from archc.compiler import compile_spec
from archc.tools.runtime import build_model
from archc.tools.verify import compare_models, compare_settings, eval_run, spec_locator
from tests.conftest import SPECS
from tests.zoo_helpers import assert_equals_reference, build_spec

torch.set_num_threads(1)

# verify's documented default tolerance, written out: loosening RTOL in archc makes the boundary test fail.
TOLERANCE = 1e-5
# The battery runs at a small input (verify's --input) and one seed: the changes show at any size.
SMALL = "3x64x64"


def run_verify(spec: Path, against: str, *extra: str) -> tuple[int, dict[str, Any]]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["verify", str(spec), "--against", against, "--json", *extra])
    assert not err.getvalue(), err.getvalue()
    return code, json.loads(out.getvalue())


def altered(tmp_path: Path, spec: str, file: str, old: str, new: str) -> tuple[Path, Path]:
    """specs/<spec>.arch and specs/lib copied into tmp_path, with `old` replaced by `new` (once) in `file`
    (relative to specs/); (spec, altered file) paths."""
    shutil.copytree(SPECS / "lib", tmp_path / "lib")
    shutil.copyfile(SPECS / f"{spec}.arch", tmp_path / f"{spec}.arch")
    target = tmp_path / file
    text = target.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    target.write_text(text.replace(old, new), encoding="utf-8")
    return tmp_path / f"{spec}.arch", target


def line_after(path: Path, anchor: str, text: str) -> int:
    """The 1-based line of the first line holding `text` at or after the first line holding `anchor`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if anchor in line)
    return next(i + 1 for i in range(start, len(lines)) if text in lines[i])


# (id, spec, reference, file, old, new, the module named, anchor and text of its declaring line in `file`,
#  where it must show: settings names (or "type") and the runs ("eval", "training", "step") that must differ; where
#  eval is not among them, the eval runs must be equal)
BATTERY = [
    (
        "avgpool-for-maxpool",
        "resnet18",
        "torchvision:resnet18",
        "lib/resnet.arch",
        "maxpool = maxpool(3, stride = 2, padding = 1)",
        "maxpool = avgpool(3, stride = 2, padding = 1)",
        "maxpool",
        ("block ResNet(", "maxpool = avgpool("),
        {"type"},
        {"eval", "training"},
    ),
    (
        "relu6-for-relu",
        "resnet18",
        "torchvision:resnet18",
        "lib/resnet.arch",
        "    relu = relu(inplace = true)\n    maxpool",
        "    relu = relu6(inplace = true)\n    maxpool",
        "relu",  # the stem's: at ×1 its inputs mostly stay under 6, at ×10 they do not
        ("block ResNet(", "relu = relu6("),
        {"type"},
        {"eval"},
    ),
    (
        "ceil-mode-dropped",
        "googlenet",
        "torchvision:googlenet",
        "googlenet.arch",
        "maxpool1 = maxpool(3, stride = 2, ceil_mode = true)",
        "maxpool1 = maxpool(3, stride = 2)",
        "maxpool1",
        ("arch GoogLeNet(", "maxpool1 = maxpool("),
        {"ceil_mode"},
        {"eval", "training"},
    ),
    (
        "batchnorm-eps",
        "resnet18",
        "torchvision:resnet18",
        "lib/resnet.arch",
        "    bn1 = batchnorm()\n    relu = relu(inplace = true)\n    maxpool",
        "    bn1 = batchnorm(eps = 0.001)\n    relu = relu(inplace = true)\n    maxpool",
        "bn1",
        ("block ResNet(", "bn1 = batchnorm("),
        {"eps"},
        {"eval", "training"},
    ),
    (
        "batchnorm-momentum",
        "resnet18",
        "torchvision:resnet18",
        "lib/resnet.arch",
        "    bn2 = batchnorm()\n    # A projection",
        "    bn2 = batchnorm(momentum = 0.01)\n    # A projection",
        "layer1.0.bn2",
        ("block BasicBlock(", "bn2 = batchnorm("),
        {"momentum"},
        {"step"},  # no output reveals momentum: the running statistics after the step do
    ),
    (
        "dilated-window",
        "resnet18",
        "torchvision:resnet18",
        "lib/resnet.arch",
        "conv2 = conv(planes, 3, padding = 1, bias = false)\n    bn2",
        "conv2 = conv(planes, 3, padding = 2, dilation = 2, bias = false)\n    bn2",
        "layer1.0.conv2",
        ("block BasicBlock(", "conv2 = conv("),
        {"padding", "dilation"},
        {"eval", "training"},
    ),
    (
        "relu-batchnorm-swapped",
        "resnet18",
        "torchvision:resnet18",
        "lib/resnet.arch",
        "x = maxpool(relu(bn1(conv1(x))))",
        "x = maxpool(bn1(relu(conv1(x))))",
        "relu",  # the stem's relu now runs first, on the convolution's output
        ("block ResNet(", "relu = relu("),
        set(),
        {"eval", "training"},
    ),
    (
        "residual-one-layer-late",
        "resnet18",
        "torchvision:resnet18",
        "lib/resnet.arch",
        "        out = bn2(conv2(out))\n        return relu(out + identity)",
        "        out = bn2(conv2(out))\n        return relu(out) + identity",
        "layer1.0.relu",  # its second call: the ReLU before the addition instead of after
        ("block BasicBlock(", "relu = relu("),
        set(),
        {"eval", "training"},
    ),
    (
        "dropout-p",
        "alexnet",
        "torchvision:alexnet",
        "lib/alexnet.arch",
        "classifier = seq(\n        dropout(dropout),",
        "classifier = seq(\n        dropout(0.3),",
        "classifier.0",
        ("classifier = seq(", "dropout(0.3)"),
        {"p"},
        {"training"},  # dropout is the identity in eval mode
    ),
    (
        "branches-swapped",
        "googlenet",
        "torchvision:googlenet",
        "lib/googlenet.arch",
        "forward(x) = cat(branch1(x), branch2(x), branch3(x), branch4(x))",
        "forward(x) = cat(branch1(x), branch2(x), branch4(x), branch3(x))",
        "inception3a",  # its branch3 and branch4 are both 32 wide: only the order of the channels changes
        ("block Inception(", "block Inception("),  # a block instance is located at its definition (and its forward)
        set(),
        {"eval", "training"},
    ),
]


@pytest.mark.parametrize(
    ("spec", "reference", "file", "old", "new", "module", "declared", "settings", "runs"),
    [case[1:] for case in BATTERY],
    ids=[case[0] for case in BATTERY],
)
def test_verify_catches_one_wrong_change_and_names_its_module(
    tmp_path: Path,
    spec: str,
    reference: str,
    file: str,
    old: str,
    new: str,
    module: str,
    declared: tuple[str, str],
    settings: set[str],
    runs: set[str],
) -> None:
    path, target = altered(tmp_path, spec, file, old, new)
    code, report = run_verify(path, reference, "--input", SMALL, "--seeds", "1")
    assert code == 1 and not report["equal"]
    assert report["same_state_dict"], "one change that keeps every weight's shape"
    where = f"{target}:{line_after(target, *declared)}:"
    # The settings that differ: those of the changed module, at its line.
    found = {d["what"] for d in report["settings"]}
    assert settings <= found if settings else found == set(), report["settings"]
    for difference in report["settings"]:
        if difference["path"] == module:
            assert difference["loc"].startswith(where), difference
    if settings:
        assert report["settings"][0]["path"] == module, report["settings"]
        assert report["settings"][0]["loc"].startswith(where)
    # The runs that must differ name the changed module first, at its line.
    kinds = {"eval": "eval, ", "training": "training, ", "step": "SGD step"}
    for run in report["runs"]:
        kind = next(k for k, prefix in kinds.items() if run["name"].startswith(prefix))
        if kind not in runs:
            # Where eval mode cannot see the change (dropout, momentum), it must not: the run named sees it.
            assert "eval" in runs or run["first"] is None, run
            continue
        first = run["first"]
        assert first is not None, run
        if kind == "step":
            assert first["path"].startswith(module + ".running_"), first
        else:
            assert first["path"] == module, first
        assert first["loc"].startswith(where), (first, where)
        assert first["detail"], "a short summary of both values"


def test_verify_of_the_unchanged_spec_at_the_battery_settings_is_equal() -> None:
    for spec in ("resnet18", "googlenet", "alexnet"):
        reference = f"torchvision:{spec}"
        code, report = run_verify(SPECS / f"{spec}.arch", reference, "--input", SMALL, "--seeds", "1")
        assert code == 0 and report["equal"], (spec, report["settings"], report["runs"])
        assert [run["name"] for run in report["runs"]] == ["eval, seed 0, inputs ×1 and ×10", "training, seed 0, input ×1", "SGD step"]


# The comparison of settings, on hand-built modules: generic, so ops the language lacks today are covered too.


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        (nn.ReLU(), nn.ReLU6(), [("type", "ReLU", "ReLU6")]),
        (nn.GELU(), nn.GELU(approximate="tanh"), [("approximate", "none", "tanh")]),
        (nn.BatchNorm2d(8), nn.BatchNorm2d(8, eps=1e-3), [("eps", 1e-5, 1e-3)]),
        (nn.BatchNorm2d(8), nn.BatchNorm2d(8, momentum=None), [("momentum", 0.1, None)]),
        (nn.LeakyReLU(0.1), nn.LeakyReLU(0.2), [("negative_slope", 0.1, 0.2)]),
        (nn.Hardtanh(-1.0, 1.0), nn.Hardtanh(-2.0, 1.0), [("min_val", -1.0, -2.0)]),
        (nn.Dropout(0.5), nn.Dropout(0.2, inplace=True), [("p", 0.5, 0.2), ("inplace", False, True)]),
        (nn.AvgPool2d(3, 2, 1), nn.AvgPool2d(3, 2, 1, count_include_pad=False), [("count_include_pad", True, False)]),
        (nn.MaxPool2d(3, 2), nn.MaxPool2d(3, 2, ceil_mode=True), [("ceil_mode", False, True)]),
        (
            nn.Conv2d(4, 4, 3, padding=1),
            nn.Conv2d(4, 4, 3, padding=2, dilation=2),
            [("padding", (1, 1), (2, 2)), ("dilation", (1, 1), (2, 2))],
        ),
        (nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3, groups=2), [("groups", 1, 2)]),
        (nn.MaxPool2d(3, 2, 1), nn.MaxPool2d((3, 3), (2, 2), (1, 1)), []),  # an int and its tuple are the same
        (nn.Identity(), nn.Sequential(), []),  # an empty Sequential is the identity
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None,
)
def test_compare_settings_finds_what_no_weight_shape_shows(ours: nn.Module, theirs: nn.Module, expected: list[Any]) -> None:
    assert compare_settings(ours, theirs) == expected


def test_a_custom_class_is_compared_as_the_torch_nn_class_it_derives_from() -> None:
    class FrozenNorm(nn.BatchNorm2d):
        pass

    assert compare_settings(FrozenNorm(8), nn.BatchNorm2d(8)) == []
    assert compare_settings(FrozenNorm(8, eps=1e-3), nn.BatchNorm2d(8)) == [("eps", 1e-3, 1e-5)]


def test_relu_for_relu6_is_caught_in_the_outputs_at_the_scaled_input() -> None:
    # ReLU6 where ReLU should be: fresh weights keep activations under 6 at ×1; at ×10 they pass it.
    def net(activation: nn.Module) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), activation)

    ours, theirs = net(nn.ReLU6()), net(nn.ReLU())
    at_one = eval_run(ours, theirs, (3, 16, 16), str, seed=0, scales=(1.0,))
    assert at_one.first is None, "the weakness the scaled input removes"
    run = eval_run(ours, theirs, (3, 16, 16), str, seed=0)
    assert run.first is not None and run.first.path == "2"


# The tolerance at its boundary: the logits perturbed by a fraction of the tolerance either side of 1.


@pytest.fixture(scope="module")
def resnet18_pair() -> tuple[Any, nn.Module, nn.Module]:
    compiled = compile_spec(SPECS / "resnet18.arch", input_shape=(3, 64, 64))
    return compiled, build_model(compiled), torchvision.models.resnet18()


@pytest.mark.parametrize("factor", [1.02, 0.98])
def test_the_tolerance_holds_at_its_boundary(factor: float, resnet18_pair: tuple[Any, nn.Module, nn.Module]) -> None:
    compiled, model, reference = resnet18_pair

    # fc's output, each sample's smallest logit raised by `factor` times the tolerance of the sample's largest
    # magnitude: the same as perturbing that class's bias by a relative amount just over (or under) the tolerance.
    def perturb(module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        rows = torch.arange(out.shape[0])
        scale = out.detach().abs().amax(dim=1)
        out[rows, out.detach().abs().argmin(dim=1)] += factor * TOLERANCE * scale
        return out

    handle = model.fc.register_forward_hook(perturb)
    try:
        locate, locate_key = spec_locator(compiled)
        _, settings, runs = compare_models(model, reference, compiled.arch.input_shape, locate, locate_key, seeds=1)
    finally:
        handle.remove()
    assert settings == []
    forward, step = runs[:-1], runs[-1]
    assert step.first is None, "a constant added to the logits leaves the gradients as they are"
    for run in forward:
        if factor > 1:
            assert run.first is not None and run.first.path == "fc", run
            assert TOLERANCE < run.worst < 1.05 * TOLERANCE
        else:
            assert run.first is None, run
            assert 0.95 * TOLERANCE < run.worst <= TOLERANCE


def test_verify_json_and_rtol_flag(tmp_path: Path) -> None:
    # The battery's eps change makes eval-mode outputs differ by about 1e-3 of their scale: a tolerance of 1e-2
    # lets it through those (not through the settings).
    path, _ = altered(
        tmp_path,
        "resnet18",
        "lib/resnet.arch",
        "    bn1 = batchnorm()\n    relu = relu(inplace = true)\n    maxpool",
        "    bn1 = batchnorm(eps = 0.001)\n    relu = relu(inplace = true)\n    maxpool",
    )
    code, report = run_verify(path, "torchvision:resnet18", "--input", SMALL, "--seeds", "1", "--rtol", "1e-2")
    assert code == 1 and report["rtol"] == 1e-2
    assert [run["first"] for run in report["runs"] if run["name"].startswith("eval")] == [None]
    assert [d["path"] for d in report["settings"]] == ["bn1"]


def test_verify_rejects_a_negative_tolerance() -> None:
    with pytest.raises(SystemExit) as caught, contextlib.redirect_stderr(io.StringIO()) as err:
        main(["verify", str(SPECS / "resnet18.arch"), "--against", "torchvision:resnet18", "--rtol", "-1"])
    assert caught.value.code == 2
    assert "expected a non-negative number" in err.getvalue()


def test_the_zoo_comparison_catches_batchnorm_momentum_that_no_eval_output_shows(tmp_path: Path) -> None:
    compiled, model = build_spec("resnet18", tmp_path)
    reference = torchvision.models.resnet18()
    assert_equals_reference(compiled, model, reference, batch=1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.01
    with pytest.raises(AssertionError) as caught:
        assert_equals_reference(compiled, model, reference, batch=1)
    assert str(caught.value).startswith("bn1  ") and "momentum: spec 0.01, reference 0.1" in str(caught.value)


def test_timms_own_activation_classes_are_compared_as_the_torch_nn_activation_they_compute() -> None:
    # timm.layers.activations' Sigmoid (ECA's gate), HardSigmoid, ... derive from nn.Module alone; each computes a
    # torch.nn activation, which the spec's op writes: the same type, while a different activation still differs.
    from timm.layers import activations

    x = torch.randn(64) * 8
    for theirs, ours in [
        (activations.Sigmoid(), nn.Sigmoid()),
        (activations.Tanh(), nn.Tanh()),
        (activations.Swish(), nn.SiLU()),
        (activations.Mish(), nn.Mish()),
        (activations.HardSigmoid(), nn.Hardsigmoid()),
        (activations.HardSwish(), nn.Hardswish()),
        (activations.GELU(), nn.GELU()),
        (activations.GELUTanh(), nn.GELU(approximate="tanh")),
    ]:
        assert torch.allclose(theirs(x.clone()), ours(x.clone()), atol=1e-6), type(theirs).__name__  # the claim itself
        assert compare_settings(ours, theirs) == [], type(theirs).__name__
    assert compare_settings(nn.Hardsigmoid(), activations.Sigmoid()) == [("type", "Hardsigmoid", "Sigmoid")]
    assert compare_settings(nn.SiLU(inplace=True), activations.Swish()) == [("inplace", True, False)]
