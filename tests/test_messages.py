"""Messages that fit their case (issue 16, item 6): where an error points and the line it quotes agree whatever ends
the lines, the quoted line never sends the spec's control bytes to the terminal and keeps its caret under the column
whatever the characters' widths, a huge line is shown cut, once, and Python habits get a help line naming archc's
spelling. Each case asserts the exit code, the location, the message's key words and the help line.

The broken specs of tests/errors/ cover the cases a plain file shows (an escape in a string, a block that uses
itself through others, members aliased, `True`, `'M'`, `;`, `nn.BatchNorm2d`, `if a = 1`, `int(1e999)`); this file
covers those that need bytes a text file in the catalogue cannot hold well, and the command-line options.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.cells import cell_len

from tests.conftest import Outcome, run_cli

ROOT = Path(__file__).resolve().parent.parent
# `convv` on line 4, column 5, after an `input` line and a `relu()` line.
LINES = ["arch net() {", "    input (3, 8, 8)", "    relu()", "    convv(8, 3)", "}"]


def check(tmp_path: Path, data: bytes, *options: str) -> tuple[Path, Outcome]:
    spec = tmp_path / "net.arch"
    spec.write_bytes(data)
    return spec, run_cli("check", *options, str(spec))


def error_lines(outcome: Outcome) -> list[str]:
    assert outcome.code == 1, outcome
    assert "Traceback" not in outcome.err and "internal error" not in outcome.err
    return outcome.err.splitlines()


def caret_cell(lines: list[str], at: int) -> int:
    """The display cell of the caret under the quoted line lines[at], counted from the start of the line's text."""
    gutter = lines[at].index(" | ") + 3
    caret = lines[at + 1]
    assert caret.endswith("^") and not caret[:-1].strip(" "), caret
    return cell_len(caret) - 1 - gutter


@pytest.mark.parametrize(
    ("ending", "name"),
    [(b"\n", "LF"), (b"\r\n", "CRLF"), (b"\r", "CR only")],
    ids=["lf", "crlf", "cr"],
)
def test_lines_end_at_lf_crlf_or_a_lone_cr(tmp_path: Path, ending: bytes, name: str) -> None:
    spec, outcome = check(tmp_path, ending.join(line.encode() for line in LINES) + ending)
    lines = error_lines(outcome)
    assert lines[0] == f"{spec}:4:5: error[E011]: unknown op or block `convv`", name
    assert lines[1] == "4 |     convv(8, 3)"
    assert caret_cell(lines, 1) == 4
    assert lines[-1] == "help: did you mean `conv`?"


@pytest.mark.parametrize(("char", "shown"), [("\f", "\\x0c"), ("\u2028", "\\u2028"), ("\x1c", "\\x1c"), ("\x85", "\\x85")])
def test_a_character_python_takes_for_a_line_break_is_not_one(tmp_path: Path, char: str, shown: str) -> None:
    """Python's str.splitlines breaks at \\f, \\x1c-\\x1e, \\x85 and U+2028/9, Lark at \\n only: archc's line count is
    Lark's, so the located line and the quoted line are the same line, shown with the character escaped."""
    text = "\n".join(["arch net() {", f"    input (3, 8, 8)  # a{char}b", "    relu()", f"    convv(8, 3)  # {char}", "}", ""])
    spec, outcome = check(tmp_path, text.encode())
    lines = error_lines(outcome)
    assert lines[0] == f"{spec}:4:5: error[E011]: unknown op or block `convv`"
    assert lines[1] == f"4 |     convv(8, 3)  # {shown}"
    assert caret_cell(lines, 1) == 4


def test_a_form_feed_before_the_column_moves_the_caret_by_its_escape(tmp_path: Path) -> None:
    text = "arch net() {\n    input (3, 8, 8)\n\f    convv(8, 3)\n}\n"
    spec, outcome = check(tmp_path, text.encode())
    lines = error_lines(outcome)
    assert lines[0] == f"{spec}:3:6: error[E011]: unknown op or block `convv`"
    assert lines[1] == "3 | \\x0c    convv(8, 3)"
    assert caret_cell(lines, 1) == len("\\x0c    ")


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    spec, outcome = check(tmp_path, b"\xef\xbb\xbf" + "\n".join(LINES[:3] + ["}", ""]).encode())
    assert outcome.code == 0, outcome.err
    spec, outcome = check(tmp_path, b"\xef\xbb\xbf" + "\n".join([*LINES, ""]).encode())
    lines = error_lines(outcome)
    assert lines[0] == f"{spec}:4:5: error[E011]: unknown op or block `convv`"
    # On the first line a byte-order mark is no column either.
    spec, outcome = check(tmp_path, b"\xef\xbb\xbfarch net() { relu( }\n")
    lines = error_lines(outcome)
    assert lines[0] == f"{spec}:1:20: error[E001]: unexpected '}}'"
    assert lines[1] == "1 | arch net() { relu( }"
    assert caret_cell(lines, 1) == 19


def test_a_utf8_error_after_a_byte_order_mark_and_cr_line_ends_is_located_like_the_rest(tmp_path: Path) -> None:
    spec, outcome = check(tmp_path, b"\xef\xbb\xbfarch net() {\r    input (3, 8, 8)\r    re\xfflu()\r}\r")
    lines = error_lines(outcome)
    assert lines[0] == f"{spec}:3:7: error[E005]: the file is not valid UTF-8"
    assert lines[-1] == "help: save the spec as UTF-8 text"


@pytest.mark.parametrize("name", ["日本語", "ｗｉｄｅ", "e\u0301e\u0301"], ids=["cjk", "fullwidth", "combining"])
def test_the_caret_stays_under_the_column_after_wide_or_combining_characters(tmp_path: Path, name: str) -> None:
    line = f'    seq("{name}" = relu(), 2 = relu())'
    spec, outcome = check(tmp_path, f"arch net() {{\n    input (3, 8, 8)\n{line}\n}}\n".encode())
    lines = error_lines(outcome)
    column = line.index("2 =") + 3
    assert lines[0] == f"{spec}:3:{column}: error[E001]: unexpected '='"
    assert lines[1] == f"3 | {line}"
    assert caret_cell(lines, 1) == cell_len(line[: column - 1])


def test_escape_bytes_of_a_spec_are_shown_escaped_never_sent_to_the_terminal(tmp_path: Path) -> None:
    # An escape sequence in a string, a bidirectional override in a comment, and a bell.
    line = '    conv(8, 3, padding_mode = "\x1b[2J\x07") @'
    text = f"arch net() {{\n    input (3, 8, 8)  # \u202e\n{line}\n}}\n"
    spec, outcome = check(tmp_path, text.encode())
    lines = error_lines(outcome)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\u202a-\u202e]", outcome.err), repr(outcome.err)
    assert lines[0] == f"{spec}:3:{line.index('@') + 1}: error[E002]: unexpected character '@'"
    assert lines[1] == '3 |     conv(8, 3, padding_mode = "\\x1b[2J\\x07") @'
    assert caret_cell(lines, 1) == len('    conv(8, 3, padding_mode = "\\x1b[2J\\x07") ')
    # A message quoting a spec's string escapes it too.
    text = 'arch net() {\n    input (3, 8, 8)\n    seq("a\x1b[31m.b" = relu())\n}\n'
    spec, outcome = check(tmp_path, text.encode())
    lines = error_lines(outcome)
    assert "\x1b" not in outcome.err
    assert lines[0].startswith(f'{spec}:3:9: error[E074]: "a\\x1b[31m.b" cannot name a module')


def test_a_megabyte_line_is_shown_cut_once(tmp_path: Path) -> None:
    name = "a" * 1_000_000
    spec, outcome = check(tmp_path, f"arch net() {{\n    input (3, 8, 8)\n    relu({name})\n}}\n".encode())
    lines = error_lines(outcome)
    assert len(outcome.err) < 2000, len(outcome.err)
    assert lines[0] == f"{spec}:3:10: error[E010]: unknown name `{'a' * 99}… (999,902 more characters)"
    assert lines[1].startswith("3 |     relu(aaa") and lines[1].endswith("a…")
    assert caret_cell(lines, 1) == len("    relu(")
    # The error far along the line: the part of the line around the column, the caret under it.
    spec, outcome = check(tmp_path, f"arch net() {{\n    input (3, 8, 8)\n    relu({name} $)\n}}\n".encode())
    lines = error_lines(outcome)
    assert len(outcome.err) < 2000, len(outcome.err)
    assert lines[0] == f"{spec}:3:{len('    relu(') + len(name) + 2}: error[E002]: unexpected character '$'"
    assert lines[1].startswith("3 | …aaa") and lines[1].endswith("a $)")
    shown = lines[1][len("3 | ") :]
    assert caret_cell(lines, 1) == shown.index("$")


@pytest.mark.parametrize("value", ["-1", "0", "x", "１"])
def test_max_nodes_takes_a_positive_integer(tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text("\n".join(LINES[:3] + ["}", ""]), encoding="utf-8")
    outcome = run_cli("check", "--max-nodes", value, str(spec))
    assert outcome.code == "SystemExit(2)"
    assert f"argument --max-nodes: expected a positive integer, got '{value}'" in outcome.err


@pytest.mark.parametrize("value", ["99999999999999999999x2x2", "3x0x8", "²x2x2", "3x8"])
def test_input_errors_point_at_the_option(value: str) -> None:
    outcome = run_cli("summary", str(ROOT / "specs" / "lenet5.arch"), "--input", value)
    assert outcome.code == "SystemExit(2)"
    assert f"argument --input: expected CxHxW with positive integers up to 2**31 - 1, e.g. 3x224x224, got '{value}'" in outcome.err
    assert "lenet5.arch:" not in outcome.err


def test_an_input_size_given_by_the_option_is_not_noted_at_the_specs_input_line() -> None:
    path = ROOT / "tests" / "errors" / "channel_mismatch_add.arch"
    outcome = run_cli("summary", str(path), "--input", "3x4x4")
    lines = error_lines(outcome)
    assert lines[0] == f"{path}:6:37: error[E030]: cannot add tensors of shapes N×16×4×4 and N×3×4×4"
    assert "note: the right operand, N×3×4×4, is the network's input, its size given by --input" in lines
    assert not any("input (3, 32, 32)" in line for line in lines)


def test_input_sizes_given_in_python_are_not_blamed_on_the_spec() -> None:
    from archc.compiler import compile_spec
    from archc.errors import ArchError

    with pytest.raises(ArchError) as caught:
        compile_spec(ROOT / "specs" / "lenet5.arch", input_shape=(1, 0, 32))
    assert caught.value.code == "E044" and caught.value.loc is None
    assert "--input" in caught.value.message and caught.value.hint == "channels, height and width, e.g. --input 3x224x224"


# A use of itself outside any `if` never ends (one under an `if` may: DLA's trees, tests/test_forward_inputs.py).
UNGUARDED_RECURSION = """\
block A(n) {
    relu()
    for i in range(n) {
        B(n - 1)
    }
}

block B(n) {
    C(n)
}

block C(n) {
    A(n)
}

arch net() {
    input (3, 8, 8)
    A(3)
}
"""


@pytest.mark.parametrize("command", ["check", "compile", "summary", "ir", "diagram", "report"])
def test_recursion_three_levels_deep_is_one_error_whatever_the_command(tmp_path: Path, command: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(UNGUARDED_RECURSION, encoding="utf-8")
    extra = {"compile": ["-o", str(tmp_path / "out")], "report": ["-o", str(tmp_path / "out" / "net.html")]}.get(command, [])
    outcome = run_cli(command, *extra, str(spec))
    lines = error_lines(outcome)
    assert lines[0] == f"{spec}:13:5: error[E060]: block `A` uses itself, through `B` and `C`"
    assert "nest" not in outcome.err
    assert f"note: {spec}:4:9: `A` uses `B` here" in lines
    assert f"note: {spec}:9:5: `B` uses `C` here" in lines
    assert lines[-1] == "help: a block uses itself only under an `if` that ends the recursion; to repeat a block, use a `for` loop"
    assert not (tmp_path / "out").exists()


def test_int_of_a_huge_number_speaks_of_the_number(tmp_path: Path) -> None:
    spec, outcome = check(tmp_path, f"arch net() {{\n    input (3, 8, 8)\n    conv(int(float(1{'0' * 400})), 3)\n}}\n".encode())
    lines = error_lines(outcome)
    assert lines[0] == f"{spec}:3:14: error[E062]: `float`: the number is too large (int too large to convert to float)"
    assert lines[-1] == "help: no size or rate in a network comes near such a number"
    assert "sequence" not in outcome.err


@pytest.mark.parametrize(
    ("line", "column", "message", "help"),
    [
        ("    relu(inplace = False)", 20, "error[E010]: unknown name `False`", "help: archc spells it `false`, in lower case"),
        ("    maxpool(2, padding_mode = 'M')", 31, 'error[E002]: unexpected character "\'"', 'help: strings take double quotes: "M"'),
        ("    relu();", 11, "error[E002]: unexpected character ';'", "help: archc needs no `;`: a statement ends where the next begins"),
        (
            "    c = torch.nn.ReLU()",
            14,
            "error[E001]: unexpected '.'",
            "help: archc calls ops by its own names: `relu(...)` for `torch.nn.ReLU` (docs/language.md lists them)",
        ),
        (
            "    c = nn.Conv2d(3, 8, 3)",
            11,
            "error[E001]: unexpected '.'",
            "help: archc calls ops by its own names: `conv(...)` for `nn.Conv2d` (docs/language.md lists them)",
        ),
        ("    if 1 = 1 { relu() }", 10, "error[E001]: unexpected '='", "help: compare with `==`: `=` names a member or a value"),
        ("    if true: relu()", 12, "error[E001]: unexpected ':'", "help: a body is written in braces"),
        ("    if not true && false { relu() }", 17, "error[E002]: unexpected character '&'", "help: archc writes `not`, `and` and `or`"),
    ],
)
def test_python_habits_get_archcs_spelling(tmp_path: Path, line: str, column: int, message: str, help: str) -> None:
    spec, outcome = check(tmp_path, f"arch net() {{\n    input (3, 8, 8)\n{line}\n}}\n".encode())
    lines = error_lines(outcome)
    assert lines[0].startswith(f"{spec}:3:{column}: {message}"), lines[0]
    assert lines[-1].startswith(help), lines[-1]


def test_a_member_passed_to_seq_is_not_aliased_either(tmp_path: Path) -> None:
    spec, outcome = check(tmp_path, b"arch net() {\n    input (3, 8, 8)\n    c = conv(8, 3)\n    seq(c, relu())\n}\n")
    lines = error_lines(outcome)
    assert lines[0] == (
        f"{spec}:4:9: error[E019]: member `c` read as a value: members cannot be aliased or passed on, only declared and applied"
    )
    assert f"note: {spec}:3:9: member `c` is declared here" in lines
    assert lines[-1].startswith("help: to share its weights, apply `c` more than once in a forward")


def test_an_import_path_holding_a_nul_byte_is_a_located_error(tmp_path: Path) -> None:
    spec, outcome = check(tmp_path, b'import "lib/a\x00b.arch"\n\narch net() {\n    input (3, 8, 8)\n    relu()\n}\n')
    lines = error_lines(outcome)
    assert lines[0] == f"{spec}:1:8: error[E050]: cannot import 'lib/a\\x00b.arch': a path holds no NUL character"
    assert lines[1] == '1 | import "lib/a\\x00b.arch"'
    assert lines[-1] == "help: check the path"


def test_a_member_aliased_in_a_forward_is_explained_and_a_param_may_be_read(tmp_path: Path) -> None:
    text = "arch net() {\n    input (3, 8, 8)\n    c = conv(8, 3)\n    forward(x) {\n        y = c\n        return y(x)\n    }\n}\n"
    spec, outcome = check(tmp_path, text.encode())
    lines = error_lines(outcome)
    assert lines[0] == f"{spec}:5:13: error[E019]: `y = c` would give member `c` a second name: members cannot be aliased"
    assert "help: apply the member where it is needed, `c(x)`, by its own name" in lines
    text = "arch net() {\n    input (3, 8, 8)\n    w = param((3, 1, 1))\n    forward(x) {\n        y = w\n        return x * y\n    }\n}\n"
    spec, outcome = check(tmp_path, text.encode())
    assert outcome.code == 0, outcome.err


def test_a_long_path_is_never_cut(tmp_path: Path) -> None:
    folder = tmp_path / ("d" * 200) / ("e" * 200)
    folder.mkdir(parents=True)
    spec, outcome = check(folder, "\n".join([*LINES, ""]).encode())
    assert len(str(spec)) > 400
    assert error_lines(outcome)[0] == f"{spec}:4:5: error[E011]: unknown op or block `convv`"
