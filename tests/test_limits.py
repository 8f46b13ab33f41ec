"""Limits: whatever a spec asks for (huge repeat counts, recursion, import cycles, deep nesting, sizes that overflow,
zero or negative sizes, division by zero), `archc check` answers within a few seconds and a bounded amount of
memory, with exit 1 and a located error (or exit 0 where the spec is actually valid): never an internal error
(exit 3), never a traceback, never a hang.

Every case runs `archc check` in a subprocess with a wall-clock limit and an address-space limit (so a runaway
spec cannot take the machine down), and reports its peak resident memory. A case that archc gets wrong is
marked `bug=...` (a strict xfail) until it is fixed; the assertion states the behaviour that is right.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

TIME_LIMIT_S = 6.0  # "a few seconds": all but one case take under a second today, the slowest about three
# The limit is the child's own CPU time (RLIMIT_CPU), so a loaded machine does not make a quick answer a "hang"; the
# wall-clock limit, much longer, catches a child that blocks without computing.
WALL_LIMIT_S = 60.0
MEMORY_LIMIT_BYTES = 1 << 30  # peak resident memory of one `archc check`
ADDRESS_SPACE_BYTES = 2 << 30  # hard cap on the child, so that a memory bomb fails instead of swapping
INT64_MAX = 2**63 - 1

# Runs `archc.cli.main` and reports its exit status and peak memory; an exception escaping `main` is exit 98. The
# peak is this process's VmHWM (ru_maxrss would count the pytest process it was forked from).
_RUNNER = r"""
import re, sys, traceback
from archc.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 2
except BaseException:
    traceback.print_exc()
    code = 98
sys.stderr.flush()
with open("/proc/self/status") as status:
    peak = re.search(r"VmHWM:\s*(\d+) kB", status.read()).group(1)
sys.stderr.write("\nARCHC_TEST_MAXRSS_KB=%s\n" % peak)
sys.exit(code)
"""


@dataclass
class Run:
    code: int | None  # None: killed at the time limit
    out: str
    err: str
    seconds: float
    maxrss_bytes: int


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))
    cpu = int(TIME_LIMIT_S)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU at the soft limit, SIGKILL at the hard one


def run_archc(args: list[str], cwd: Path) -> Run:
    """`archc ARGS` in a fresh interpreter, with a time and an address-space limit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _RUNNER, *args],
            capture_output=True,
            text=True,
            timeout=WALL_LIMIT_S,
            cwd=cwd,
            env=env,
            preexec_fn=_limit_address_space,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return Run(None, out, err, time.monotonic() - start, 0)
    seconds = time.monotonic() - start
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):  # past TIME_LIMIT_S of CPU time: no answer
        return Run(None, proc.stdout, proc.stderr, seconds, 0)
    match = re.search(r"ARCHC_TEST_MAXRSS_KB=(\d+)", proc.stderr)
    maxrss = int(match.group(1)) * 1024 if match else 0
    err = re.sub(r"\n?ARCHC_TEST_MAXRSS_KB=\d+\n?", "", proc.stderr)
    return Run(proc.returncode, proc.stdout, err, seconds, maxrss)


@dataclass
class Case:
    """A spec (`spec.arch`, plus other files beside it), the extra `check` arguments, and what must happen."""

    text: str
    expect: str  # "error": exit 1 with a located error; "ok": exit 0; "either": one of the two
    files: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    copy_lib: bool = False  # put specs/lib beside the spec (for the zoo specs)
    located_in: str = "spec.arch"  # the file the error points into; "*": any file; "-D": a -D value
    bug: str | None = None  # why the case fails today: an archc bug


def _arch(*lines: str, input_shape: str = "(3, 8, 8)") -> str:
    return "arch net() {\n    input " + input_shape + "\n" + "".join(f"    {line}\n" for line in lines) + "}\n"


BIG = "1" + "0" * 30  # 10 ** 30: over int64
GOOGOL = "1" + "0" * 100  # 10 ** 100


def _nested_blocks(depth: int) -> str:
    chain = "".join(f"block B{i}() {{ B{i + 1}() }}\n" for i in range(depth))
    return chain + f"block B{depth}() {{ relu() }}\n" + _arch("B0()")


def _nested_fors(depth: int) -> str:
    return _arch("".join(f"for i{k} in [1] {{ " for k in range(depth)) + "relu()" + " }" * depth)


CASES: dict[str, Case] = {
    # Huge repeat counts.
    "range_10e9": Case(_arch("for i in range(1000000000) { relu() }"), "error"),
    "range_10_pow_9": Case(_arch("for i in range(10 ** 9) { relu() }"), "error"),  # no `**` in the language: a syntax error
    "range_two_billion": Case(_arch("let r = range(-1000000000, 1000000000)", "relu()"), "error"),
    "range_huge_stop": Case(_arch(f"for i in range(0, {BIG}, 1) {{ relu() }}"), "error"),
    "list_repeat_10e9": Case(_arch("let xs = [0] * 1000000000", "relu()"), "error"),
    "list_repeat_10_pow_9": Case(_arch("let xs = [0] * 10 ** 9", "relu()"), "error"),
    "list_repeat_left_10e9": Case(_arch("let xs = 1000000000 * [0]", "relu()"), "error"),
    "tuple_repeat_10e9": Case(_arch("let xs = (0,) * 1000000000", "relu()"), "error"),
    "string_repeat_10e9": Case(_arch('let s = "ab" * 1000000000', "relu()"), "error"),
    "list_repeat_huge": Case(_arch(f"let xs = [0] * {BIG}", "relu()"), "error"),
    "list_repeat_negative_huge": Case(_arch(f"let xs = [0] * -{BIG}", "relu()"), "either"),
    "list_repeat_negative": Case(_arch("let xs = [0] * -5", "relu()"), "ok"),
    "nested_loops_1e10_empty": Case(_arch("for i in range(100000) { for j in range(100000) { } }", "relu()"), "error"),
    "nested_loops_1e10_let": Case(_arch("for i in range(100000) { for j in range(100000) { let k = j } }", "relu()"), "error"),
    "nested_loops_1e10_members": Case(
        _arch("for i in range(100000) { for j in range(100000) { relu() } }"), "error", args=["--max-nodes", "1000"]
    ),
    "declared_members_over_max_nodes": Case(
        _arch("for i in range(100000) { relu() relu() relu() }"), "error", args=["--max-nodes", "1000"]
    ),
    "squaring_in_a_loop": Case(_arch("let a = 10", "for i in range(40) { let a = a * a }", "relu()"), "error"),
    "string_doubling_in_a_loop": Case(_arch('let s = "ab"', "for i in range(40) { let s = s + s }", "relu()"), "error"),
    "list_doubling_in_a_loop": Case(_arch("let s = [1]", "for i in range(40) { let s = s + s }", "relu()"), "error"),
    "int_literal_5000_digits": Case(_arch("let n = " + "1" * 5000, "relu()"), "either"),
    # The node limit.
    "resnet18_max_nodes_50": Case(
        (SPECS / "resnet18.arch").read_text(encoding="utf-8"),
        "error",
        args=["--max-nodes", "50"],
        copy_lib=True,
        located_in="lib/resnet.arch",
    ),
    "resnet18_default_limit": Case((SPECS / "resnet18.arch").read_text(encoding="utf-8"), "ok", copy_lib=True),
    # Recursive blocks.
    "block_uses_itself": Case("block A() { A() }\n" + _arch("A()"), "error"),
    "block_uses_itself_as_member": Case("block A() {\n    a = A()\n    forward(x) = a(x)\n}\n" + _arch("A()"), "error"),
    "blocks_use_each_other": Case("block A() { B() }\nblock B() { A() }\n" + _arch("A()"), "error"),
    "arch_is_a_recursive_block": Case("block A() { A() }\narch net() = A() {\n    input (3, 8, 8)\n}\n", "error"),
    "recursion_in_seq": Case("block A() { seq(relu(), A()) }\n" + _arch("A()"), "error"),
    "recursion_unbounded_count": Case("block A(n = 0) { A(n + 1) }\n" + _arch("A()"), "error"),
    "recursion_bounded_deep": Case("block A(n = 0) {\n    if n > 0 { A(n - 1) } else { relu() }\n}\n" + _arch("A(60)"), "either"),
    "recursion_bounded_shallow": Case("block A(n = 0) {\n    if n > 0 { A(n - 1) } else { relu() }\n}\n" + _arch("A(3)"), "either"),
    "recursion_bounded_not_taken": Case("block A(n = 0) {\n    if n > 0 { A(n - 1) } else { relu() }\n}\n" + _arch("A(0)"), "either"),
    # Import cycles: fine, or a located error; never a hang.
    "import_cycle": Case('import "b.arch"\n' + _arch("B()"), "either", files={"b.arch": 'import "spec.arch"\nblock B() { relu() }\n'}),
    "import_itself": Case('import "spec.arch"\n' + _arch("relu()"), "either"),
    "import_cycle_of_three": Case(
        'import "b.arch"\n' + _arch("B()"),
        "either",
        files={"b.arch": 'import "c.arch"\nblock B() { C() }\n', "c.arch": 'import "b.arch"\nimport "spec.arch"\nblock C() { relu() }\n'},
    ),
    "import_cycle_with_recursive_blocks": Case(
        'import "b.arch"\nblock A() { B() }\n' + _arch("A()"),
        "error",
        files={"b.arch": 'import "spec.arch"\nblock B() { A() }\n'},
        located_in="*",
    ),
    "import_a_directory": Case('import "."\n' + _arch("relu()"), "error"),
    "import_dev_zero": Case('import "/dev/zero"\n' + _arch("relu()"), "error"),
    # Deep nesting.
    "parentheses_500": Case(_arch("let k = " + "(" * 500 + "3" + ")" * 500, "conv(8, k)"), "either"),
    "parentheses_5000": Case(_arch("let k = " + "(" * 5000 + "3" + ")" * 5000, "conv(8, k)"), "either"),
    "parenthesised_sums_500": Case(_arch("let k = " + "(1 + " * 500 + "1" + ")" * 500, "relu()"), "either"),
    "parenthesised_sums_5000": Case(_arch("let k = " + "(1 + " * 5000 + "1" + ")" * 5000, "relu()"), "either"),
    "sum_of_500_terms": Case(_arch("let k = " + " + ".join(["1"] * 500), "relu()"), "either"),
    "negation_5000": Case(_arch("let k = " + "-" * 5000 + "1", "relu()"), "either"),
    "not_5000": Case(_arch("let k = " + "not " * 5000 + "true", "relu()"), "either"),
    "lists_500": Case(_arch("let k = " + "[" * 500 + "]" * 500, "relu()"), "either"),
    "lists_5000": Case(_arch("let k = " + "[" * 5000 + "]" * 5000, "relu()"), "either"),
    "index_chain_500": Case(_arch("let k = [1]" + "[0]" * 500, "relu()"), "either"),
    "conditionals_500": Case(_arch("let k = (" + "1 if true else " * 500 + "1)", "relu()"), "either"),
    "conditionals_5000": Case(_arch("let k = (" + "1 if true else " * 5000 + "1)", "relu()"), "either"),
    "seq_100": Case(_arch("seq(" * 100 + "relu()" + ")" * 100), "either"),
    "seq_500": Case(_arch("seq(" * 500 + "relu()" + ")" * 500), "either"),
    "blocks_nested_45": Case(_nested_blocks(45), "ok"),
    "blocks_nested_100": Case(_nested_blocks(100), "either"),
    "if_nested_50": Case(_arch("if true { " * 50 + "relu()" + " }" * 50), "ok"),
    "if_nested_300": Case(_arch("if true { " * 300 + "relu()" + " }" * 300), "either"),
    "for_nested_50": Case(_nested_fors(50), "ok"),
    "for_nested_300": Case(_nested_fors(300), "either"),
    "elif_chain_300": Case(_arch("if false { relu() } " + "elif false { relu() } " * 300 + "else { relu() }"), "ok"),
    "elif_chain_3000": Case(_arch("if false { relu() } " + "elif false { relu() } " * 3000 + "else { relu() }"), "either"),
    # Sizes that overflow: PyTorch sizes are int64.
    "conv_googol_channels": Case(_arch(f"conv({GOOGOL}, 3)"), "error"),
    "conv_10_pow_100_channels": Case(_arch("conv(10 ** 100, 3)"), "error"),  # a syntax error
    "linear_huge_features": Case(_arch("flatten()", f"linear({BIG})"), "error"),
    "conv_huge_padding": Case(_arch(f"conv(8, 3, padding = {BIG})"), "error"),
    "conv_huge_stride": Case(_arch(f"conv(8, 3, stride = {BIG})"), "error"),
    "conv_huge_kernel": Case(_arch(f"conv(8, {BIG})"), "error"),
    "maxpool_huge_kernel": Case(_arch(f"maxpool({BIG})"), "error"),
    "adaptive_avgpool_huge_output": Case(_arch(f"adaptive_avgpool({BIG})"), "error"),
    "input_10e9_squared": Case(_arch("conv(8, 3)", input_shape="(3, 1000000000, 1000000000)"), "either"),
    "input_10e10_squared_flattened": Case(_arch("flatten()", "linear(10)", input_shape="(3, 10000000000, 10000000000)"), "error"),
    "input_googol": Case(_arch("relu()", input_shape=f"(3, {GOOGOL}, 8)"), "error"),
    "input_10_pow_9": Case(_arch("relu()", input_shape="(3, 10 ** 9, 10 ** 9)"), "error"),  # a syntax error
    # Zero and negative sizes.
    "conv_zero_channels": Case(_arch("conv(0, 3)"), "error"),
    "conv_negative_channels": Case(_arch("conv(-3, 3)"), "error"),
    "conv_zero_kernel": Case(_arch("conv(8, 0)"), "error"),
    "conv_negative_padding": Case(_arch("conv(8, 3, padding = -1)"), "error"),
    "conv_zero_groups": Case(_arch("conv(8, 3, groups = 0)"), "error"),
    "conv_zero_stride": Case(_arch("conv(8, 3, stride = 0)"), "error"),
    "conv_zero_dilation": Case(_arch("conv(8, 3, dilation = 0)"), "error"),
    "input_zero_channels": Case(_arch("conv(8, 3)", input_shape="(0, 32, 32)"), "error"),
    "input_negative_height": Case(_arch("relu()", input_shape="(3, -1, 32)"), "error"),
    "input_zero_width": Case(_arch("relu()", input_shape="(3, 32, 0)"), "error"),
    "maxpool_zero_kernel": Case(_arch("maxpool(0)"), "error"),
    "avgpool_negative_kernel": Case(_arch("avgpool(-2)"), "error"),
    "linear_zero_features": Case(_arch("flatten()", "linear(0)"), "error"),
    "adaptive_avgpool_zero": Case(_arch("adaptive_avgpool(0)"), "error"),
    "adaptive_maxpool_negative": Case(_arch("adaptive_maxpool((-1, 2))"), "error"),
    "dropout_negative": Case(_arch("dropout(-0.5)"), "error"),
    "range_negative_is_empty": Case(_arch("for i in range(-5) { conv(8, 3) }", "relu()"), "ok"),
    "shrinks_to_nothing": Case(_arch("maxpool(2)", "maxpool(2)", "maxpool(2)", "maxpool(2)"), "error"),
    # Division by zero.
    "floor_division_by_zero": Case(_arch("let z = 1 // 0", "relu()"), "error"),
    "true_division_by_zero": Case(_arch("let z = 1 / 0", "relu()"), "error"),
    "division_by_float_zero": Case(_arch("let z = 1 / 0.0", "relu()"), "error"),
    "modulo_zero": Case(_arch("let z = 1 % (2 - 2)", "relu()"), "error"),
    "division_by_zero_in_conv_argument": Case(_arch("conv(8 // 0, 3)"), "error"),
    "division_by_zero_in_input": Case(_arch("relu()", input_shape="(3, 32 // 0, 32)"), "error"),
    "division_by_zero_in_forward": Case(_arch("c = conv(8, 3)", "forward(x) = c(x) * (1 / 0)"), "error"),
    "division_by_zero_in_block_default": Case("block B(k = 1 // 0) { relu() }\n" + _arch("B()"), "error"),
    "division_by_zero_in_default_from_parameter": Case("block B(n, k = 8 // n) { conv(k, 3) }\n" + _arch("B(0)"), "error"),
    "division_by_zero_in_arch_default": Case("arch net(k = 1 // 0) {\n    input (3, 8, 8)\n    relu()\n}\n", "error"),
    "division_by_zero_in_define": Case(
        "arch net(k = 1) {\n    input (3, 8, 8)\n    relu()\n}\n", "error", args=["-D", "k=1//0"], located_in="-D"
    ),
    "division_by_zero_in_untaken_branch": Case(
        "block B(n = 1) {\n    if n > 0 { relu() } else { conv(8 // (n - n), 3) }\n}\n" + _arch("B()"), "either"
    ),
}


# The line the error must point at, where one line is plainly at fault (line 1 `arch net() {` or the block, line 2
# `input`, line 3 on the body of `_arch`).
ERROR_LINES = {
    **dict.fromkeys(
        [
            *("range_10e9", "range_10_pow_9", "range_two_billion", "range_huge_stop", "list_repeat_10e9", "list_repeat_10_pow_9"),
            *("list_repeat_left_10e9", "tuple_repeat_10e9", "string_repeat_10e9", "list_repeat_huge", "list_repeat_negative_huge"),
            *("nested_loops_1e10_empty", "nested_loops_1e10_let", "nested_loops_1e10_members", "declared_members_over_max_nodes"),
            *("int_literal_5000_digits", "parentheses_500", "parentheses_5000", "parenthesised_sums_500", "parenthesised_sums_5000"),
            *("sum_of_500_terms", "negation_5000", "not_5000", "lists_500", "lists_5000", "index_chain_500", "conditionals_500"),
            *("conditionals_5000", "seq_100", "seq_500", "if_nested_300", "for_nested_300", "elif_chain_3000"),
            *("conv_googol_channels", "conv_10_pow_100_channels", "conv_huge_padding", "conv_huge_stride", "conv_huge_kernel"),
            *("maxpool_huge_kernel", "adaptive_avgpool_huge_output", "conv_zero_channels", "conv_negative_channels"),
            *("conv_zero_kernel", "conv_negative_padding", "conv_zero_groups", "conv_zero_stride", "conv_zero_dilation"),
            *("maxpool_zero_kernel", "avgpool_negative_kernel", "adaptive_avgpool_zero", "adaptive_maxpool_negative"),
            *("dropout_negative", "floor_division_by_zero", "true_division_by_zero", "division_by_float_zero", "modulo_zero"),
            "division_by_zero_in_conv_argument",
        ],
        3,
    ),
    **dict.fromkeys(["squaring_in_a_loop", "string_doubling_in_a_loop", "list_doubling_in_a_loop"], 4),
    **dict.fromkeys(["linear_huge_features", "linear_zero_features", "division_by_zero_in_forward"], 4),
    **dict.fromkeys(["input_googol", "input_10_pow_9", "input_zero_channels", "input_negative_height", "input_zero_width"], 2),
    **dict.fromkeys(["division_by_zero_in_input"], 2),
    **dict.fromkeys(["block_uses_itself", "arch_is_a_recursive_block", "recursion_in_seq", "recursion_unbounded_count"], 1),
    **dict.fromkeys(["division_by_zero_in_block_default", "division_by_zero_in_default_from_parameter"], 1),
    **dict.fromkeys(["division_by_zero_in_arch_default"], 1),
}


def _params() -> list[object]:
    out = []
    for name, case in CASES.items():
        marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
        out.append(pytest.param(case, ERROR_LINES.get(name), id=name, marks=marks))
    return out


def _write(case: Case, directory: Path) -> Path:
    spec = directory / "spec.arch"
    spec.write_text(case.text, encoding="utf-8")
    for name, text in case.files.items():
        (directory / name).write_text(text, encoding="utf-8")
    if case.copy_lib:
        shutil.copytree(SPECS / "lib", directory / "lib")
    return spec


def _error_header(located_in: str, directory: Path) -> re.Pattern[str]:
    """`PATH:LINE:COL: error` (with or without an error code) at the start of a line."""
    if located_in == "*":
        return re.compile(r"^\S.*:\d+:\d+: error\b", re.M)
    if located_in == "-D":
        return re.compile(r"^-D \w+:\d+:\d+: error\b", re.M)
    return re.compile(rf"^{re.escape(str(directory / located_in))}:\d+:\d+: error\b", re.M)


@pytest.mark.parametrize(("case", "line"), _params())
def test_limit(case: Case, line: int | None, tmp_path: Path) -> None:
    spec = _write(case, tmp_path)
    run = run_archc(["check", *case.args, str(spec)], tmp_path)
    what = f"exit {run.code} after {run.seconds:.1f}s, peak {run.maxrss_bytes / 2**20:.0f} MiB\nstderr: {run.err[-1500:]}"
    assert run.code is not None, f"no answer within {TIME_LIMIT_S}s of CPU time (a hang)\n{what}"
    assert run.maxrss_bytes < MEMORY_LIMIT_BYTES, f"peak memory over {MEMORY_LIMIT_BYTES >> 20} MiB\n{what}"
    assert "Traceback" not in run.err, what
    assert run.code != 3 and "internal error" not in run.err, what
    allowed = {"error": {1}, "ok": {0}, "either": {0, 1}}[case.expect]
    assert run.code in allowed, what
    if run.code == 1:
        assert _error_header(case.located_in, tmp_path).search(run.err), f"the error is not located in {case.located_in}\n{what}"
        if line is not None:
            at_line = re.compile(rf"^{re.escape(str(tmp_path / case.located_in))}:{line}:\d+: error\b", re.M)
            assert at_line.search(run.err), f"the error does not point at line {line}\n{what}"


def test_runner_reports_internal_errors_and_memory(tmp_path: Path) -> None:
    """The harness itself: a valid spec answers 0 quickly with a plausible peak memory."""
    spec = tmp_path / "spec.arch"
    spec.write_text(_arch("conv(8, 3)"), encoding="utf-8")
    run = run_archc(["check", str(spec)], tmp_path)
    assert run.code == 0, run.err
    assert 0 < run.maxrss_bytes < MEMORY_LIMIT_BYTES
    assert run.seconds < WALL_LIMIT_S


def test_max_nodes_error_names_the_limit(tmp_path: Path) -> None:
    shutil.copytree(SPECS / "lib", tmp_path / "lib")
    spec = tmp_path / "resnet18.arch"
    shutil.copyfile(SPECS / "resnet18.arch", spec)
    run = run_archc(["check", "--max-nodes", "50", str(spec)], tmp_path)
    assert run.code == 1, run.err
    assert re.search(rf"^{re.escape(str(tmp_path / 'lib' / 'resnet.arch'))}:\d+:\d+: error", run.err, re.M), run.err
    assert "50" in run.err and "--max-nodes" in run.err, run.err


def test_int64_bound_matches_torch() -> None:
    """The overflow cases use sizes over int64, which is what PyTorch's sizes are."""
    import torch

    assert torch.iinfo(torch.int64).max == INT64_MAX
    assert int(BIG) > INT64_MAX and int(GOOGOL) > INT64_MAX
