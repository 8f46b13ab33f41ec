"""The expression builtins that compute sizes from the input: `log` (ECA's adaptive kernel size), evaluated by archc
and written into the generated class, both held to Python's math.log."""

from __future__ import annotations

import math
from typing import Any

import pytest

from archc.errors import ArchError

ECA_KERNEL = """
block Eca(gamma = 2, beta = 1) {
    let t = int(abs(log(in.channels, 2) + beta) / gamma)
    let k = max((t if t % 2 == 1 else t + 1), 3)
    conv = conv1d(1, k, padding = (k - 1) // 2, bias = false)
    forward(x) = x * reshape(conv(reshape(mean(x, (2, 3)), (1, -1))), (-1, 1, 1))
}

arch model(width = 64) {
    input (3, 8, 8)
    stem = conv(width, 1)
    eca = Eca()
    natural = conv(int(log(width) * 10), 1)
}
"""


def eca_kernel(channels: int) -> int:
    """timm's EcaModule: t = int(abs(math.log(channels, 2) + beta) / gamma), then odd and at least 3."""
    t = int(abs(math.log(channels, 2) + 1) / 2)
    return max(t if t % 2 else t + 1, 3)


@pytest.mark.parametrize("width", [16, 64, 256, 2048, 100])
def test_log_sizes_equal_pythons_in_archc_and_in_the_generated_class(compile_arch: Any, width: int) -> None:
    compiled, module = compile_arch(ECA_KERNEL, overrides={"width": width})
    sizes = {m.path: m.attrs for m in compiled.arch.modules() if m.kind == "op"}
    assert sizes["eca.conv"]["kernel_size"] == eca_kernel(width)
    assert sizes["natural"]["out_channels"] == int(math.log(width) * 10)
    # The class computes the kernel from its in_channels: built at another width, it follows math.log.
    assert "math.log(in_channels, 2)" in compiled.python()
    for channels in (width, 512):
        eca = module.Eca(channels)
        assert eca.conv.kernel_size == (eca_kernel(channels),)
    model = module.model()
    assert model.natural.out_channels == int(math.log(width) * 10)


def test_log_outside_its_domain_is_an_error_at_the_call(compile_arch: Any) -> None:
    with pytest.raises(ArchError) as err:
        compile_arch("arch model(w = 0) {\n    input (3, 8, 8)\n    c = conv(int(log(w, 2)) + 1, 1)\n}\n")
    assert err.value.code == "E045" and "log" in str(err.value)
    assert err.value.loc is not None and (err.value.loc.line, err.value.loc.column) == (3, 18)


ROUNDED = """
block Widths(base = 16.0, step = 11.25) {
    let c = base
    for i in range(4) {
        conv(round(c), 1)
        let c = c + step
    }
}

arch model(step = 11.25) {
    input (3, 8, 8)
    widths = Widths(step = step)
}
"""


@pytest.mark.parametrize("step", [11.25, 0.5, 2.5])
def test_round_halves_to_even_as_python_in_archc_and_in_the_generated_class(compile_arch: Any, step: float) -> None:
    # ReXNet's widths: 16 + k · 11.25 rounded, 38.5 to 38 (Python's round, not half up).
    expected = [round(16.0 + k * step) for k in range(4)]
    compiled, module = compile_arch(ROUNDED, overrides={"step": step})
    assert [m.attrs["out_channels"] for m in compiled.arch.modules() if m.kind == "op"] == expected
    assert "round(c)" in compiled.python()
    built = module.Widths(3, step=step)
    assert [c.out_channels for c in built] == expected
    assert [c.out_channels for c in module.Widths(3, step=step + 1.0)] == [round(16.0 + k * (step + 1.0)) for k in range(4)]


def test_a_name_round_would_shadow_the_builtin_the_generated_code_calls(compile_arch: Any) -> None:
    with pytest.raises(ArchError) as err:
        compile_arch("arch model(round = 2) {\n    input (3, 8, 8)\n    c = conv(round, 1)\n}\n")
    assert err.value.code == "E070" and "`round`" in str(err.value)
