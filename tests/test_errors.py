"""Diagnostics: one broken spec per error kind in tests/errors/, each naming where its error must point.

Every file starts with comment lines:

    # expect: LINE:COL: MESSAGE-SUBSTRING   where the error must point and part of its message
    # expect: LINE:COL: error[E###]: MESSAGE-SUBSTRING   the same, and its code (errors.CODES)
    # help: SUBSTRING                       (optional) part of the `help:` line
    # xfail: REASON                         (optional) archc does not get this right yet

`archc check FILE` must exit 1 and print `FILE:LINE:COL: error[E###]: ...` first, then the source line and a caret
under column COL, and never a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from archc.cli import main

ERRORS = Path(__file__).resolve().parent / "errors"
HEADER = re.compile(r"#\s*(expect|help|xfail):\s*(.*?)\s*$")
EXPECT = re.compile(r"(\d+):(\d+):\s*(?:error\[(E\d{3})\]:?\s*)?(.*)")


@dataclass
class Expectation:
    line: int
    column: int
    message: str
    code: str | None = None
    help: str | None = None
    xfail: str | None = None


def read_expectation(path: Path) -> Expectation:
    """The `# expect:` / `# help:` / `# xfail:` header of a spec (read leniently: some specs are not UTF-8)."""
    fields: dict[str, str] = {}
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        m = HEADER.match(line)
        if m is None:
            break
        fields[m[1]] = m[2]
    if "expect" not in fields:
        raise ValueError(f"{path.name}: the first line must be `# expect: LINE:COL: MESSAGE`")
    m = EXPECT.fullmatch(fields["expect"])
    if m is None:
        raise ValueError(f"{path.name}: cannot read `# expect: {fields['expect']}`")
    return Expectation(int(m[1]), int(m[2]), m[4], m[3], fields.get("help"), fields.get("xfail"))


def _cases() -> list[object]:
    cases = []
    for path in sorted(ERRORS.glob("*.arch")):
        expectation = read_expectation(path)
        marks = [pytest.mark.xfail(strict=True, reason=expectation.xfail)] if expectation.xfail else []
        cases.append(pytest.param(path, expectation, id=path.stem, marks=marks))
    return cases


CASES = _cases()


def test_there_is_a_spec_per_error_kind() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize(("path", "expected"), CASES)
def test_error_is_located(path: Path, expected: Expectation, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "internal error" not in err
    assert code == 1, err
    lines = err.splitlines()
    assert lines, "nothing on stderr"
    prefix = f"{path}:{expected.line}:{expected.column}: error[" + (f"{expected.code}]: " if expected.code else "")
    assert lines[0].startswith(prefix), f"expected {prefix!r}, got:\n{err}"
    assert expected.message in lines[0], err
    # The source line, then a caret under the column.
    assert len(lines) >= 3, err
    gutter = f"{expected.line} | "
    assert lines[1].startswith(gutter), err
    source = lines[1][len(gutter) :]
    caret = lines[2]
    assert caret.strip() == "^", err
    assert len(caret) - 1 == len(gutter) + expected.column - 1, f"caret not under column {expected.column}:\n{err}"
    assert expected.column <= len(source) + 1, err
    if expected.help is not None:
        helps = [line for line in lines if line.startswith("help: ")]
        assert helps, f"no help line:\n{err}"
        assert expected.help in helps[0], err


@pytest.mark.parametrize("path", sorted(ERRORS.glob("*.arch")), ids=lambda p: p.stem)
def test_error_never_crashes(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Whatever its location, a broken spec is a user error (exit 1), never an internal one (exit 3)."""
    code = main(["check", str(path)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    assert "internal error" not in err
