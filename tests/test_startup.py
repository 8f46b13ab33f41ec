"""Start-up: the compile path imports neither torch nor numpy, the grammar cache, and the summary's fast table.

`python -X importtime` lists every module a process imports, so these tests see what the command really loads,
not only what is left in sys.modules.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from archc.compiler import compile_spec
from archc.tools.summary import _table_rows, plain_table, rich_table, summary_data

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def imported_modules(argv: list[str], env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages a `python -X importtime -m archc ...` run imported."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "archc", *argv], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env
    )
    assert r.returncode == 0, r.stderr[-2000:]
    names = set()
    for line in r.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name.split(".")[0])
    assert "archc" in names, r.stderr[-2000:]  # the log is what we think it is
    return names


@pytest.mark.parametrize(
    "command",
    [
        "compile specs/resnet18.arch -o {tmp}",
        "check specs/resnet18.arch specs/inception_v3.arch",
        "summary specs/resnet152.arch",
        "summary --json specs/resnet18.arch",
        "diagram specs/resnet18.arch -f dot -o {tmp}/resnet18.dot",
    ],
)
def test_compile_path_imports_neither_torch_nor_numpy(command: str, tmp_path: Path) -> None:
    names = imported_modules(command.format(tmp=tmp_path).split())
    assert "torch" not in names
    assert "numpy" not in names


def test_a_command_that_needs_torch_is_seen_importing_it() -> None:
    # The same log does show torch when it is imported: the check above can fail.
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "import torch"], capture_output=True, text=True, timeout=120)
    assert any(line.rsplit("|", 1)[1].strip() == "torch" for line in r.stderr.splitlines() if line.startswith("import time:"))


def test_grammar_cache_gives_the_same_result(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "archc", "ir", "specs/inception_v3.arch"]
    first = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)  # builds and saves
    assert first.returncode == 0, first.stderr
    cached = list((tmp_path / "cache" / "archc").glob("grammar-*.lark-cache"))
    assert len(cached) == 1
    second = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)  # loads it
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    cached[0].write_bytes(b"garbage")  # a damaged cache is rebuilt, not trusted
    third = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert third.returncode == 0, third.stderr
    assert third.stdout == first.stdout


def test_no_writable_cache_directory_still_works(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {**os.environ, "XDG_CACHE_HOME": str(blocker)}  # a file: the cache directory cannot be made
    r = subprocess.run([sys.executable, "-m", "archc", "check", "specs/resnet18.arch"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


@pytest.mark.parametrize(("spec", "depth"), [("resnet18", None), ("inception_v3", None), ("googlenet", 2), ("xception", 1)])
def test_plain_table_is_rich_table(spec: str, depth: int | None) -> None:
    compiled = compile_spec(SPECS / f"{spec}.arch")
    rows = _table_rows(compiled, summary_data(compiled), depth)
    fast = plain_table(f"{spec}  (specs/{spec}.arch)", rows, 200)
    assert fast is not None
    assert fast == rich_table(f"{spec}  (specs/{spec}.arch)", rows, 200)


def test_a_table_too_wide_is_left_to_rich() -> None:
    compiled = compile_spec(SPECS / "inception_v3.arch")
    rows = _table_rows(compiled, summary_data(compiled), None)
    assert plain_table("inception_v3", rows, 60) is None
    narrow = rich_table("inception_v3", rows, 60)
    assert max(len(line) for line in narrow.splitlines()) <= 60
