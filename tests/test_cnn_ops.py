"""The activations and normalisations of modern CNNs (relu6 ... local_response_norm), each as a member and inline.

Every op is checked against PyTorch itself: the generated module's layer equals the `nn` module built by hand
(`repr`), its output equals the PyTorch op applied by hand, shapes (forward hooks), parameters and buffers
(`numel`) match the passes, MACs are FlopCounterMode's FLOPs / 2, and receptive fields are the extent of the
input gradient. Bad arguments give located errors.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archc.errors import ArchError
from archc.passes.macs import count_macs
from archc.passes.memory import estimate_memory
from archc.passes.receptive_field import compute_receptive_fields
from tests.test_analysis import measure_receptive_field
from tests.test_language_cases import assert_pass_matches_module

ROOT = Path(__file__).resolve().parent.parent
C, H, W = 8, 6, 7


@dataclass(frozen=True)
class Case:
    member: str  # the member's constructor in the spec
    reference: Callable[[], nn.Module]  # the same layer built by hand
    inline: str | None = None  # the inline call, `{x}` for its input
    functional: Callable[[torch.Tensor], torch.Tensor] | None = None  # the inline call by hand


CASES = {
    "relu6": Case("relu6(inplace = true)", lambda: nn.ReLU6(inplace=True), "relu6({x})", F.relu6),
    "hardtanh": Case(
        "hardtanh(-2.0, 0.5)",
        lambda: nn.Hardtanh(-2.0, 0.5),
        "hardtanh({x}, min_val = -0.25, max_val = 2)",
        lambda t: F.hardtanh(t, -0.25, 2.0),
    ),
    "silu": Case("silu(inplace = true)", lambda: nn.SiLU(inplace=True), "silu({x})", F.silu),
    "gelu": Case('gelu(approximate = "tanh")', lambda: nn.GELU(approximate="tanh"), "gelu({x})", F.gelu),
    "hardswish": Case("hardswish()", nn.Hardswish, "hardswish({x}, inplace = true)", F.hardswish),
    "hardsigmoid": Case("hardsigmoid(inplace = true)", lambda: nn.Hardsigmoid(inplace=True), "hardsigmoid({x})", F.hardsigmoid),
    "softmax": Case("softmax(1)", lambda: nn.Softmax(dim=1), "softmax({x}, dim = -1)", lambda t: F.softmax(t, dim=-1)),
    "log_softmax": Case("log_softmax(dim = 2)", lambda: nn.LogSoftmax(dim=2), "log_softmax({x}, 3)", lambda t: F.log_softmax(t, dim=3)),
    "leaky_relu": Case(
        "leaky_relu(0.2)",
        lambda: nn.LeakyReLU(0.2),
        "leaky_relu({x}, negative_slope = 0.3, inplace = true)",
        lambda t: F.leaky_relu(t, 0.3),
    ),
    "elu": Case("elu(alpha = 0.5)", lambda: nn.ELU(alpha=0.5), "elu({x}, 2.0)", lambda t: F.elu(t, 2.0)),
    "mish": Case("mish(inplace = true)", lambda: nn.Mish(inplace=True), "mish({x})", F.mish),
    "prelu": Case("prelu()", nn.PReLU),
    "prelu_per_channel": Case(f"prelu({C}, init = 0.1)", lambda: nn.PReLU(C, init=0.1)),
    "groupnorm": Case("groupnorm(4, eps = 0.001)", lambda: nn.GroupNorm(4, C, eps=0.001)),
    "groupnorm_plain": Case("groupnorm(2, affine = false)", lambda: nn.GroupNorm(2, C, affine=False)),
    "instancenorm": Case("instancenorm()", lambda: nn.InstanceNorm2d(C)),
    "instancenorm_tracking": Case(
        "instancenorm(momentum = 0.2, affine = true, track_running_stats = true)",
        lambda: nn.InstanceNorm2d(C, momentum=0.2, affine=True, track_running_stats=True),
    ),
    "local_response_norm": Case(
        "local_response_norm(3, alpha = 0.001, k = 2.0)",
        lambda: nn.LocalResponseNorm(3, alpha=0.001, k=2.0),
        "local_response_norm({x}, 2)",
        lambda t: F.local_response_norm(t, 2),
    ),
}


def case_spec(case: Case) -> str:
    # conv(x) is applied once per use: an in-place op changes only its own input.
    output = "act(conv(x))" if case.inline is None else f"cat(act(conv(x)), {case.inline.format(x='conv(x)')})"
    return f"""
arch model() {{
    input (3, {H}, {W})
    conv = conv({C}, 3, padding = 1)
    act = {case.member}
    forward(x) = {output}
}}
"""


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_as_member_and_inline_is_the_pytorch_op(name: str, compile_arch: Any) -> None:
    case = CASES[name]
    compiled, module = compile_arch(case_spec(case))
    model = module.model()
    reference = case.reference()
    assert repr(model.act) == repr(reference)
    reference.load_state_dict(model.act.state_dict())
    assert_pass_matches_module(compiled, model)
    model.eval()
    reference.eval()
    x = torch.randn(2, 3, H, W)
    with torch.no_grad():
        out = model(x)
        assert torch.allclose(out[:, :C], reference(model.conv(x)), atol=1e-6)
        if case.functional is not None:
            assert torch.allclose(out[:, C:], case.functional(model.conv(x)), atol=1e-6)
        else:
            assert out.shape[1] == C
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x[:1])
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()
    node = next(n for n in compiled.arch.nodes if n.module == "act")
    assert count_macs(compiled.arch).per_node[node.id].macs == 0


def test_non_default_arguments_change_the_output(compile_arch: Any) -> None:
    """The arguments reach PyTorch: gelu's tanh approximation is not the exact gelu, hardtanh's bounds are not [-1, 1]."""
    _, module = compile_arch(
        """
        arch model() {
            input (4, 5, 5)
            forward(x) = cat(gelu(x, approximate = "tanh"), gelu(x), hardtanh(x, -3.0, 0.5), hardtanh(x))
        }
        """
    )
    x = 3 * torch.randn(1, 4, 5, 5)
    out = module.model()(x)
    tanh, exact, bounded, unit = out[:, :4], out[:, 4:8], out[:, 8:12], out[:, 12:]
    assert torch.allclose(tanh, F.gelu(x, approximate="tanh")) and torch.allclose(exact, F.gelu(x))
    assert not torch.allclose(tanh, exact)
    assert torch.allclose(bounded, x.clamp(-3.0, 0.5)) and torch.allclose(unit, x.clamp(-1.0, 1.0))
    assert not torch.allclose(bounded, unit)


def test_generated_code_of_every_case_passes_ruff(compile_arch: Any, tmp_path: Path) -> None:
    for name, case in CASES.items():
        compiled, _ = compile_arch(case_spec(case), name=name)
        (tmp_path / f"{name}_gen.py").write_text(compiled.python(), encoding="utf-8")
    # The project's rules for generated code (pyproject.toml: generated/ may have long lines).
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    files = sorted(str(p) for p in tmp_path.glob("*_gen.py"))
    result = subprocess.run(
        [ruff, "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), "--ignore", "E501", *files], capture_output=True, text=True
    )
    assert len(files) == len(CASES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prelu_per_channel_takes_in_channels_in_a_block(compile_arch: Any) -> None:
    compiled, module = compile_arch(
        """
        block Act() {
            act = prelu(in.channels)
        }
        arch model() {
            input (5, 4, 4)
            a = Act()
        }
        """
    )
    model = module.model()
    assert model.a.act.weight.numel() == 5
    assert compiled.params.params == sum(p.numel() for p in model.parameters())


def test_instancenorm_buffer_bytes_count_the_int64_counter(compile_arch: Any) -> None:
    compiled, module = compile_arch(
        """
        arch model() {
            input (6, 4, 4)
            a = instancenorm(track_running_stats = true)
            b = groupnorm(3)
        }
        """
    )
    model = module.model()
    report = estimate_memory(compiled.arch, 1, "fp32")
    assert report.buffer_bytes == sum(b.numel() * b.element_size() for b in model.buffers())
    assert report.param_bytes == sum(p.numel() * p.element_size() for p in model.parameters())


FIELD = """
arch model() {{
    input (3, {size}, {size})
    conv1 = conv(4, 3)
    norm = {norm}
    conv2 = conv(4, 3)
    forward(x) {{
        y = conv1(x)
        return conv2(norm(y) + y)
    }}
}}
"""


@pytest.mark.parametrize("norm", ["groupnorm(2)", "instancenorm()", "softmax(2)", "softmax(dim = -1)", "local_response_norm(3)", "silu()"])
def test_receptive_field_equals_the_gradient_extent(norm: str, compile_arch: Any) -> None:
    """groupnorm and instancenorm see the whole map, softmax along H or W that axis, pointwise ops keep the field."""
    size = 16
    compiled, module = compile_arch(FIELD.format(size=size, norm=norm))
    fields = compute_receptive_fields(compiled.arch)
    node = next(n for n in compiled.arch.nodes if n.module == "conv2")
    computed = fields.per_node[node.id].as_dict()["size"]
    measured = measure_receptive_field(module.model(), "conv2", size, 3)
    assert measured == tuple(computed)
    # Paths with a field over the whole map merge with local ones without a misalignment warning.
    assert fields.warnings == []


def error_of(compile_arch: Any, text: str) -> ArchError:
    with pytest.raises(ArchError) as caught:
        compile_arch(text)
    return caught.value


def net(member: str, before: str = "", input_shape: str = "(8, 6, 6)") -> str:
    return f"arch model() {{\n    input {input_shape}\n{before}    {member}\n}}\n"


@pytest.mark.parametrize(
    ("text", "code", "line", "column", "words"),
    [
        (net('gelu(approximate = "fast")'), "E016", 3, 10, ['"none"', '"tanh"', "'fast'"]),
        (net("groupnorm(3)"), "E033", 3, 5, ["num_groups=3", "(8)"]),
        (net("groupnorm(2)", "    flatten()\n"), "E035", 4, 5, ["groupnorm", "C×H×W"]),
        (net("instancenorm()", "    flatten()\n"), "E035", 4, 5, ["instancenorm"]),
        (net("local_response_norm(2)", "    flatten()\n"), "E035", 4, 5, ["local_response_norm"]),
        (net("softmax(0)"), "E038", 3, 5, ["dim", "between 1 and 3"]),
        (net("log_softmax(dim = 4)"), "E038", 3, 5, ["log_softmax", "got 4"]),
        (net("softmax()"), "E013", 3, 5, ["dim"]),
        (net("softmax(1.5)"), "E016", 3, 13, ["integer"]),
        (net("prelu(5)"), "E016", 3, 5, ["num_parameters", "(8)"]),
        (net("hardtanh(1.0, -1.0)"), "E016", 3, 5, ["max_val"]),
        (net("leaky_relu(negative_slope = true)"), "E016", 3, 16, ["number"]),
        (net("local_response_norm(0)"), "E016", 3, 25, ["positive"]),
        ("arch model() {\n    input (8, 6, 6)\n    forward(x) = prelu(x)\n}\n", "E082", 3, 18, ["prelu", "inline"]),
        ("arch model() {\n    input (8, 6, 6)\n    forward(x) = groupnorm(x, 2)\n}\n", "E082", 3, 18, ["groupnorm"]),
        ("arch model() {\n    input (8, 6, 6)\n    forward(x) = softmax(x, dim = 0)\n}\n", "E038", 3, 18, ["dim"]),
    ],
)
def test_bad_arguments_give_located_errors(text: str, code: str, line: int, column: int, words: list[str], compile_arch: Any) -> None:
    error = error_of(compile_arch, text)
    assert error.code == code, error.render()
    assert error.loc is not None and (error.loc.line, error.loc.column) == (line, column), error.render()
    for word in words:
        assert word in error.message, error.render()
