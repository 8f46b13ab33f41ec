"""Files and paths (issue 16, item 3): archc reads regular spec files of bounded size only, keeps imports inside the
spec's folder unless told otherwise, never quotes a file that is not a spec, reports an unwritable output folder as a
usage error, and answers Ctrl-C with one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import archc.cli
from archc.files import MAX_SPEC_BYTES
from tests.conftest import ROOT, SPECS, run_cli

NET = "arch net() {\n    input (3, 8, 8)\n    conv(4, 3)\n}\n"
SECRET = "admin_qz:s3cr3t-hash:19000:0:99999:7:::"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def importing(target: str) -> str:
    return f'import "{target}"\n' + NET


# Reading: regular files, at most MAX_SPEC_BYTES.


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "net.arch"
    os.mkfifo(fifo)
    # In a subprocess with a timeout: reading a FIFO nobody writes to would block forever.
    proc = subprocess.run(
        [sys.executable, "-m", "archc", "check", str(fifo)], capture_output=True, text=True, timeout=60, cwd=ROOT, env=_env()
    )
    assert proc.returncode == 1, proc.stderr
    assert f"error[E006]: cannot read {fifo}: it is not a regular file" in proc.stderr


def test_a_device_is_refused() -> None:
    outcome = run_cli("check", "/dev/zero")
    assert outcome.code == 1, outcome
    assert "error[E006]: cannot read /dev/zero: it is not a regular file" in outcome.err


def test_a_directory_is_refused(tmp_path: Path) -> None:
    """`check` and `fmt` take folders (of specs); the commands that take one spec refuse one."""
    outcome = run_cli("summary", str(tmp_path))
    assert outcome.code == 1 and f"cannot read {tmp_path}: it is a directory" in outcome.err, outcome


def test_a_file_over_the_limit_is_refused_and_the_limit_said(tmp_path: Path) -> None:
    big = tmp_path / "net.arch"
    big.write_text(NET + "#" * MAX_SPEC_BYTES, encoding="utf-8")
    outcome = run_cli("check", str(big))
    assert outcome.code == 1, outcome
    assert re.search(r"error\[E006\]: cannot read .*net\.arch: [\d,]+ bytes, over the 4 MiB limit for a spec", outcome.err), outcome.err
    # At the limit it is read.
    big.write_text(NET + "#" * (MAX_SPEC_BYTES - len(NET) - 1) + "\n", encoding="utf-8")
    assert run_cli("check", str(big)).code == 0


# Imports stay inside the folder of the spec being compiled.


def test_an_absolute_import_is_refused_and_nothing_of_the_file_printed(tmp_path: Path) -> None:
    secret = write(tmp_path / "elsewhere" / "shadow", SECRET + "\n")
    spec = write(tmp_path / "specs" / "net.arch", importing(str(secret)))
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome
    assert re.match(rf"{re.escape(str(spec))}:1:8: error\[E051\]: import '{re.escape(str(secret))}' reaches an absolute path", outcome.err)
    assert "--allow-import-outside" in outcome.err
    assert "s3cr3t" not in outcome.err and "admin_qz" not in outcome.err


def test_an_import_leading_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "shared" / "blocks.arch", "block B() { relu() }\n")
    spec = write(tmp_path / "specs" / "net.arch", importing("../shared/blocks.arch"))
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome
    assert f"error[E051]: import '../shared/blocks.arch' reaches outside {(tmp_path / 'specs').resolve()}" in outcome.err
    # Also from a nested library: `lib/a.arch` importing `../../x.arch` leaves the spec's folder.
    write(tmp_path / "specs" / "lib" / "a.arch", 'import "../../shared/blocks.arch"\n')
    spec = write(tmp_path / "specs" / "nested.arch", importing("lib/a.arch"))
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1 and "error[E051]" in outcome.err and "imported from" in outcome.err, outcome


def test_a_symbolic_link_leading_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "shared" / "blocks.arch", "block B() { relu() }\n")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "lib").symlink_to(tmp_path / "shared")
    spec = write(tmp_path / "specs" / "net.arch", importing("lib/blocks.arch"))
    assert "error[E051]" in run_cli("check", str(spec)).err


@pytest.mark.parametrize("command", ["check", "summary", "ir", "compile", "diagram"])
def test_allow_import_outside(command: str, tmp_path: Path) -> None:
    write(tmp_path / "shared" / "blocks.arch", "block B() { relu() }\n")
    spec = write(tmp_path / "specs" / "net.arch", importing("../shared/blocks.arch"))
    extra = {"compile": ["-o", str(tmp_path / "out")], "diagram": ["-f", "dot", "-o", str(tmp_path / "net.dot")]}.get(command, [])
    assert run_cli(command, str(spec), *extra).code == 1
    outcome = run_cli(command, "--allow-import-outside", str(spec), *extra)
    assert outcome.code == 0, outcome


def test_imports_inside_the_folder_and_the_zoo_are_fine(tmp_path: Path) -> None:
    write(tmp_path / "lib" / "deep" / "b.arch", "block B() { relu() }\n")
    write(tmp_path / "lib" / "a.arch", 'import "deep/b.arch"\nimport "../lib/deep/b.arch"\nblock A() { B() }\n')
    spec = write(tmp_path / "net.arch", 'import "lib/a.arch"\n' + NET.replace("conv(4, 3)", "A()"))
    assert run_cli("check", str(spec)).code == 0
    assert run_cli("check", *map(str, sorted(SPECS.glob("*.arch")))).code == 0


def test_an_error_never_quotes_a_file_not_named_arch(tmp_path: Path) -> None:
    write(tmp_path / "secret.txt", SECRET + "\n")
    spec = write(tmp_path / "net.arch", importing("secret.txt"))
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome
    assert f"{spec}:1:8: error[E006]: cannot import 'secret.txt'" in outcome.err
    assert "s3cr3t" not in outcome.err and "admin_qz" not in outcome.err
    outcome = run_cli("check", str(tmp_path / "secret.txt"))
    assert outcome.code == 1 and "error[E006]" in outcome.err, outcome
    assert "s3cr3t" not in outcome.err and "admin_qz" not in outcome.err


def test_an_unreadable_import_is_named(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "blocks.arch")
    (tmp_path / "dir.arch").mkdir()
    for target in ("blocks.arch", "dir.arch"):
        spec = write(tmp_path / "net.arch", importing(target))
        outcome = run_cli("check", str(spec))
        assert outcome.code == 1, outcome
        assert f"{spec}:1:8: error[E006]: cannot import '{target}': cannot read {tmp_path / target}" in outcome.err


# Writing and interrupting.


def test_an_unwritable_output_folder_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path / "file", "")
    for args in (
        ["compile", str(SPECS / "lenet5.arch"), "-o", str(tmp_path / "file" / "out")],
        ["diagram", str(SPECS / "lenet5.arch"), "-f", "dot", "-o", str(tmp_path / "file" / "x.dot")],
        ["report", str(SPECS / "lenet5.arch"), "-o", str(tmp_path / "file" / "x.html")],
    ):
        outcome = run_cli(*args)
        assert outcome.code == 2, outcome
        assert outcome.err.startswith(f"error[E098]: cannot write {tmp_path / 'file'}"), outcome.err
        assert "internal error" not in outcome.err


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(archc.cli, "compile_spec", interrupted)
    outcome = run_cli("compile", str(SPECS / "lenet5.arch"), "-o", "/nonexistent")
    assert outcome.code == 130, outcome
    assert outcome.err == "interrupted\n"


def test_ctrl_c_of_a_real_process(tmp_path: Path) -> None:
    # A spec that takes a while to elaborate; SIGINT arrives during the compile.
    spec = write(tmp_path / "net.arch", "arch net() {\n    input (3, 8, 8)\n    for i in range(100000) {\n        relu()\n    }\n}\n")
    proc = subprocess.Popen([sys.executable, "-m", "archc", "check", str(spec)], stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
    time.sleep(3)
    proc.send_signal(2)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the compile finished before the signal")
    assert proc.returncode == 130, err
    assert err == "interrupted\n"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}
