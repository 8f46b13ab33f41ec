"""The command line: compile, check, summary and ir, their exit codes, and what they write."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import archc
from archc.cli import main
from archc.ir import Architecture

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
RESNET18 = SPECS / "resnet18.arch"
ALL_SPECS = sorted(SPECS.glob("*.arch"))


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def summary_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    code, out, err = run_main(capsys, "summary", "--json", *argv)
    assert code == 0, err
    return json.loads(out)


BROKEN = """\
arch Broken() {
    input (3, 32, 32)
    conv(8, 3
}
"""


# compile


def test_compile_writes_one_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    code, out, err = run_main(capsys, "compile", str(RESNET18), "-o", str(out_dir))
    assert code == 0, err
    assert [p.name for p in out_dir.iterdir()] == ["resnet18.py"]
    source = (out_dir / "resnet18.py").read_text(encoding="utf-8")
    compile(source, "resnet18.py", "exec")  # valid Python
    assert "resnet18.py" in out


def test_compile_many_specs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = [SPECS / "resnet18.arch", SPECS / "d2l_resnet18.arch"]
    code, _, err = run_main(capsys, "compile", *map(str, specs), "-o", str(tmp_path))
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d2l_resnet18.py", "resnet18.py"]


@pytest.mark.parametrize("broken_first", [False, True], ids=["broken-last", "broken-first"])
def test_compile_with_a_broken_spec_writes_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str], broken_first: bool) -> None:
    broken = tmp_path / "broken.arch"
    broken.write_text(BROKEN, encoding="utf-8")
    out_dir = tmp_path / "out"
    specs = [str(broken), str(RESNET18)] if broken_first else [str(RESNET18), str(broken)]
    code, out, err = run_main(capsys, "compile", *specs, "-o", str(out_dir))
    assert code == 1
    assert err.startswith(f"{broken}:"), err
    assert [p.name for p in out_dir.iterdir()] == ["resnet18.py"]
    assert out.splitlines() == [f"{RESNET18} -> {out_dir / 'resnet18.py'}"]


def test_compile_does_not_overwrite_on_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A failed compile leaves an earlier output untouched."""
    out_dir = tmp_path / "out"
    assert main(["compile", str(RESNET18), "-o", str(out_dir)]) == 0
    before = (out_dir / "resnet18.py").read_bytes()
    broken = tmp_path / "broken.arch"
    broken.write_text(BROKEN, encoding="utf-8")
    capsys.readouterr()
    code, _, _ = run_main(capsys, "compile", str(RESNET18), str(broken), "-o", str(out_dir))
    assert code == 1
    assert (out_dir / "resnet18.py").read_bytes() == before
    assert [p.name for p in out_dir.iterdir()] == ["resnet18.py"]


# check


def test_check_all_specs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "check", *map(str, ALL_SPECS))
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == len(ALL_SPECS)
    for spec, line in zip(ALL_SPECS, lines, strict=True):
        assert line.startswith(f"{spec}: ok"), line


def test_check_reports_every_broken_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a.arch", tmp_path / "b.arch"
    first.write_text(BROKEN, encoding="utf-8")
    second.write_text(BROKEN.replace("conv(8, 3\n", "conv(8, 3)\n    linear(10)\n"), encoding="utf-8")
    code, out, err = run_main(capsys, "check", str(first), str(RESNET18), str(second))
    assert code == 1
    errors = [line for line in err.splitlines() if re.search(r": error\[E\d{3}\]: ", line)]
    assert [e.split(":")[0] for e in errors] == [str(first), str(second)]
    assert "Traceback" not in err


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "check", str(tmp_path / "nope.arch"))
    assert code == 1
    assert "error[E" in err and "nope.arch" in err
    assert "Traceback" not in err


# summary


def test_summary_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    data = summary_json(capsys, str(RESNET18))
    for key in ("name", "input", "output", "params", "trainable_params", "buffers", "layers"):
        assert key in data, key
    assert data["name"] == "resnet18"
    assert data["input"] == [3, 224, 224]
    assert data["output"] == [1000]
    assert data["params"] == 11_689_512  # torchvision's resnet18
    assert data["layers"]
    for layer in data["layers"]:
        for key in ("name", "op", "shape", "params", "macs", "receptive_field"):
            assert key in layer, (key, layer)
    assert data["layers"][0]["name"] == "conv1"
    assert data["layers"][0]["shape"] == [64, 112, 112]
    assert sum(layer["params"] for layer in data["layers"]) == data["params"]


def test_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "summary", str(RESNET18))
    assert code == 0, err
    assert "conv1" in out and "11,689,512" in out


def test_summary_input_override(capsys: pytest.CaptureFixture[str]) -> None:
    default = summary_json(capsys, str(RESNET18))
    small = summary_json(capsys, "--input", "3x64x64", str(RESNET18))
    assert small["input"] == [3, 64, 64]
    assert small["layers"][0]["shape"] == [64, 32, 32]
    assert small["output"] == [1000]
    assert small["params"] == default["params"]
    changed = [a["name"] for a, b in zip(default["layers"], small["layers"], strict=True) if a["shape"] != b["shape"]]
    assert "conv1" in changed and "layer4.1.conv2" in changed


@pytest.mark.parametrize("bad", ["3x", "3x64", "0x64x64", "3x-1x64", "axbxc", "3x64x64x64", ""])
def test_summary_bad_input_is_a_usage_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["summary", "--input", bad, str(RESNET18)])
    assert exc.value.code == 2
    assert "CxHxW" in capsys.readouterr().err


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["frobnicate"], ["summary"], ["summary", str(RESNET18), str(RESNET18)], ["check", "--max-nodes", "x", str(RESNET18)]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
    capsys.readouterr()


# ir


def test_ir_validates(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "ir", str(RESNET18))
    assert code == 0, err
    arch = Architecture.from_json(out)
    assert arch.name == "resnet18"
    assert arch.input_shape == [3, 224, 224]
    assert arch.nodes[arch.outputs[0]].shape == [1000]
    assert [m.path for m in arch.modules()][:3] == ["", "conv1", "bn1"]


def test_ir_input_override(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "ir", "--input", "3x64x64", str(RESNET18))
    assert code == 0, err
    arch = Architecture.from_json(out)
    assert arch.input_shape == [3, 64, 64]
    assert arch.nodes[1].shape == [64, 32, 32]


# -D overrides


def test_define_changes_output(capsys: pytest.CaptureFixture[str]) -> None:
    data = summary_json(capsys, "-D", "num_classes=10", str(RESNET18))
    assert data["output"] == [10]
    assert data["layers"][-1]["shape"] == [10]


def test_define_is_an_expression(capsys: pytest.CaptureFixture[str]) -> None:
    assert summary_json(capsys, "-D", "num_classes=5 * 2", str(RESNET18))["output"] == [10]


def test_define_unknown_parameter(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "summary", "-D", "nope=1", str(RESNET18))
    assert code == 1
    first = err.splitlines()[0]
    assert re.match(rf"{re.escape(str(RESNET18))}:\d+:\d+: error\[E012\]: ", first), first
    assert "`nope`" in first
    assert "num_classes" in err  # the parameters it does have
    assert "Traceback" not in err


def test_define_unknown_parameter_check(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "check", "-D", "nope=1", str(RESNET18))
    assert code == 1
    assert "`nope`" in err.splitlines()[0]


def test_define_without_equals(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "summary", "-D", "num_classes", str(RESNET18))
    assert code == 1
    assert "error[E" in err and "NAME=VALUE" in err
    assert "Traceback" not in err


def test_define_bad_expression(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "summary", "-D", "num_classes=1 +", str(RESNET18))
    assert code == 1
    assert "error[E" in err.splitlines()[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("value", ["2.5", '"ten"', "none", "[10]"])
def test_define_wrong_type_is_a_user_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "check", "-D", f"num_classes={value}", str(RESNET18))
    assert code == 1, err


def test_define_bool_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "check", "-D", "num_classes=true", str(RESNET18))
    assert code == 1, err


# Internal errors: exit 3, one line, the traceback only with --debug


def _boom(message: str):
    def compile_spec(*args: object, **kwargs: object) -> None:
        raise RuntimeError(message)

    return compile_spec


@pytest.mark.parametrize("command", ["check", "summary", "ir"])
def test_internal_error_is_one_line(command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("archc.cli.compile_spec", _boom("boom"))
    code, out, err = run_main(capsys, command, str(RESNET18))
    assert code == 3
    assert out == ""
    assert err.splitlines() == ["internal error: RuntimeError: boom (run with --debug for the traceback)"]


def test_internal_error_traceback_with_debug(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("archc.cli.compile_spec", _boom("boom"))
    code, _, err = run_main(capsys, "--debug", "check", str(RESNET18))
    assert code == 3
    assert "Traceback" in err and "RuntimeError: boom" in err


def test_internal_error_with_a_multiline_message_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("archc.cli.compile_spec", _boom("1 validation error for Node\nshape.0\n  Input should be a valid integer"))
    code, _, err = run_main(capsys, "check", str(RESNET18))
    assert code == 3
    assert len(err.splitlines()) == 1, err


# Entry points (subprocesses)


def test_python_m_archc_version() -> None:
    r = subprocess.run([sys.executable, "-m", "archc", "--version"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"archc {archc.__version__}"


def _console_script() -> str:
    script = shutil.which("archc", path=str(Path(sys.executable).parent)) or shutil.which("archc")
    if script is None:
        pytest.skip("the archc console script is not installed")
    return script


def test_console_script_syntax_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.arch"
    broken.write_text(BROKEN, encoding="utf-8")
    r = subprocess.run([_console_script(), "check", str(broken)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 1
    assert r.stdout == ""
    errors = [line for line in r.stderr.splitlines() if "error[" in line]
    assert len(errors) == 1, r.stderr
    assert errors[0].startswith(f"{broken}:4:1: error[E001]:"), r.stderr
    assert "Traceback" not in r.stderr


def test_console_script_usage_error() -> None:
    r = subprocess.run([_console_script(), "summary", "--input", "3x", str(RESNET18)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("command", ["compile", "check", "summary", "summary --json", "ir"])
def test_commands_do_not_import_torch(command: str, tmp_path: Path) -> None:
    argv = [*command.split(), "specs/resnet18.arch"]
    if command == "compile":
        argv += ["-o", str(tmp_path)]
    code = (
        "import sys\n"
        "from archc.cli import main\n"
        f"rc = main({argv!r})\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_summary_json_carries_the_analysis_figures(capsys: pytest.CaptureFixture[str]) -> None:
    data = summary_json(capsys, "--batch", "4", "--dtype", "bf16", str(RESNET18))
    assert data["macs"] == sum(layer["macs"] for layer in data["layers"] if not layer["training_only"])
    assert data["memory"]["batch"] == 4 and data["memory"]["dtype"] == "bf16"
    assert data["memory"]["activation_bytes"] == sum(layer["activation_bytes"] for layer in data["layers"])
    assert data["output_receptive_field"]["size"] == data["layers"][-1]["receptive_field"]["size"]
    # The headline field is the last spatial feature map's, named beside it.
    at = [layer for layer in data["layers"] if layer["name"] == data["receptive_field_at"]][-1]
    assert data["receptive_field"] == at["receptive_field"] and at["shape"][1:] == [7, 7]


def test_summary_depth_folds_rows_with_subtotals(capsys: pytest.CaptureFixture[str]) -> None:
    full = summary_json(capsys, str(RESNET18))
    code, out, _ = run_main(capsys, "summary", "--depth", "1", str(RESNET18))
    assert code == 0
    layer2 = next(line for line in out.splitlines() if "│ layer2 " in line)
    params = sum(layer["params"] for layer in full["layers"] if layer["name"].startswith("layer2."))
    assert f"{params:,}" in layer2 and "ResLayer" in layer2
    with pytest.raises(SystemExit) as exc:
        main(["summary", "--depth", "0", str(RESNET18)])
    assert exc.value.code == 2
