"""`archc fmt`: the zoo is in the canonical layout; formatting keeps the AST and the comments, is idempotent, and
gives one layout however the whitespace was scrambled."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from archc.cli import main
from archc.errors import ArchError
from archc.lang.fmt import format_text
from archc.lang.parse import _parser as ast_parser
from archc.lang.parse import parse_text
from tests.conftest import ROOT, SPECS
from tests.test_docs_examples import arch_examples
from tests.test_grammar_fuzz import mutated_specs
from tests.test_grammar_fuzz import specs as generated_specs

ZOO = sorted(SPECS.glob("*.arch")) + sorted((SPECS / "lib").glob("*.arch"))
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The lexical pieces of a spec: whitespace, strings, comments, tokens (as tests/test_grammar_fuzz.py splits them).
PIECE = re.compile(r'\s+|"[^"\n]*"|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|//|==|!=|<=|>=|.', re.S)


def shape(node: object) -> Any:
    """The AST as plain data without source locations."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (
            type(node).__name__,
            {f.name: shape(getattr(node, f.name)) for f in dataclasses.fields(node) if f.name not in ("loc", "kwarg_locs", "file")},
        )
    if isinstance(node, list):
        return [shape(n) for n in node]
    if isinstance(node, dict):
        return {k: shape(v) for k, v in node.items()}
    return node


def comments(text: str) -> list[str]:
    """The comments of a spec, in order (a string may hold a `#`, so the lexer's pieces decide)."""
    return [p.rstrip() for p in PIECE.findall(text) if p.startswith("#")]


def assert_same_program(before: str, after: str) -> None:
    assert shape(parse_text(after, "after.arch")) == shape(parse_text(before, "before.arch"))
    # Every comment is kept. Trailing comments that end up on one line are joined (`# a  # b`), and a comment written
    # before a comma may move past the trailing comment after it, so their words are compared, not their order.
    assert sorted(" ".join(comments(after)).split()) == sorted(" ".join(comments(before)).split())


@pytest.mark.parametrize("spec", ZOO, ids=lambda p: str(p.relative_to(SPECS)))
def test_the_zoo_is_in_the_canonical_layout(spec: Path) -> None:
    text = spec.read_text()
    assert format_text(text, str(spec)) == text


def test_the_language_reference_examples_are_in_the_canonical_layout() -> None:
    examples = arch_examples(ROOT / "docs" / "language.md")
    assert len(examples) > 5
    for example in examples:
        assert format_text(example.text, example.id) == example.text, example.id


def test_fmt_check_accepts_the_zoo(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["fmt", "--check", *(str(p.relative_to(ROOT)) for p in ZOO)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert f"0 of {len(ZOO)} files would be reformatted" in err


@st.composite
def scrambled(draw: st.DrawFn) -> tuple[str, str]:
    """A zoo spec and the same tokens and comments with other whitespace: spaces and tabs anywhere between tokens,
    line breaks added or joined, while a comment stays on its line (after code, or on a line of its own) and blank
    lines stay blank lines."""
    path = draw(st.sampled_from(ZOO))
    canonical = path.read_text()
    pieces = PIECE.findall(canonical)
    out: list[str] = [draw(st.sampled_from(["", "\n", "  \n\t"]))]
    for i, piece in enumerate(pieces):
        if not piece.isspace():
            out.append(piece)
            continue
        before = pieces[i - 1] if i else ""
        after = pieces[i + 1] if i + 1 < len(pieces) else ""
        spaces = draw(st.sampled_from([" ", "  ", "\t", "   "]))
        if piece.count("\n") >= 2:  # a blank line stays one
            out.append(spaces + "\n" + draw(st.sampled_from(["", " ", "\t"])) + "\n" + spaces)
        elif "\n" in piece:
            if before.startswith("#") or after.startswith("#") or draw(st.booleans()):
                out.append(draw(st.sampled_from(["", " "])) + "\n" + spaces)
            else:  # join the lines
                out.append(spaces)
        elif after.startswith("#"):  # a trailing comment stays on its line
            out.append(draw(st.sampled_from(["", " ", "    "])))
        else:
            out.append(spaces if draw(st.integers(0, 5)) else "\n" + spaces)
    return canonical, "".join(out)


@PROPERTY
@given(scrambled())
def test_a_scrambled_zoo_spec_formats_to_the_canonical_bytes(case: tuple[str, str]) -> None:
    canonical, text = case
    assert text != canonical
    assert_same_program(canonical, text)
    assert format_text(text, "scrambled.arch") == canonical


@st.composite
def commented_specs(draw: st.DrawFn) -> str:
    """A generated spec (tests/test_grammar_fuzz.py) with comments after some lines and on lines of their own."""
    lines = draw(generated_specs()).splitlines()
    out: list[str] = []
    for n, line in enumerate(lines):
        if draw(st.integers(0, 6)) == 0:
            out.append(f"# own line {n}")
        out.append(line + (f"  # after {n}" if draw(st.integers(0, 4)) == 0 else ""))
    return "\n".join(out) + "\n"


@PROPERTY
@given(commented_specs())
def test_generated_specs_keep_their_ast_and_comments_and_format_to_a_fixed_point(text: str) -> None:
    try:
        parse_text(text, "generated.arch")
    except ArchError:
        assume(False)
    once = format_text(text, "generated.arch")
    assert_same_program(text, once)
    assert format_text(once, "generated.arch") == once
    # The width is the code's (docs/language.md): a comment after the code follows it, however long the line gets.
    code = [re.sub(r"\s{2,}#.*$", "", line) for line in once.splitlines() if not line.lstrip().startswith("#")]
    assert all(len(line) <= 140 or "(" not in line for line in code)


def test_layout_rules() -> None:
    text = """import "lib/a.arch"
block A(  x,y=1) {    # after the brace
   let z = ( x + 1 ) * 2
   if x == 1 { relu() } elif x == 2 {
      conv(z, 3)  # one
   }
   else { identity() }
   for i , v in [1,2,3] { seq(conv(v,1),   # c1
       # own line
       relu()
   ) }


   forward(x) = relu(x)
}
# the doc of B
block B() { seq(
    relu(),
) }
arch c(n = 1) = B() { meta { year = 2016 } input (1, 2, 3) }
"""
    expected = """import "lib/a.arch"

block A(x, y = 1) {  # after the brace
    let z = (x + 1) * 2
    if x == 1 {
        relu()
    } elif x == 2 {
        conv(z, 3)  # one
    } else {
        identity()
    }
    for i, v in [1, 2, 3] {
        seq(
            conv(v, 1),  # c1
            # own line
            relu(),
        )
    }

    forward(x) = relu(x)
}

# the doc of B
block B() {
    seq(
        relu(),
    )
}

arch c(n = 1) = B() {
    meta { year = 2016 }
    input (1, 2, 3)
}
"""
    assert format_text(text, "t.arch") == expected
    assert_same_program(text, expected)


def test_a_long_argument_list_breaks_from_the_right_one_item_per_line() -> None:
    args = ", ".join(f"argument_{i} = {i}" for i in range(12))
    text = f"arch net(num_classes = 1000) = Net(seq(relu(), relu()), {args}) {{\n    input (3, 8, 8)\n}}\n"
    out = format_text(text, "long.arch")
    assert out.splitlines()[:3] == ["arch net(num_classes = 1000) = Net(", "    seq(relu(), relu()),", "    argument_0 = 0,"]
    assert out.splitlines()[-4:] == ["    argument_11 = 11,", ") {", "    input (3, 8, 8)", "}"]
    assert max(len(line) for line in out.splitlines()) <= 140
    assert format_text(out, "long.arch") == out
    assert_same_program(text, out)


def test_a_one_tuple_keeps_its_comma_and_parentheses_stay() -> None:
    assert (
        format_text("block A() {\n    let t = ((1 ,) , (2+3)*4)\n    relu()\n}\n", "t.arch")
        == "block A() {\n    let t = ((1,), (2 + 3) * 4)\n    relu()\n}\n"
    )


def test_the_formatter_uses_the_parsers_grammar() -> None:
    from archc.lang.fmt import _parser as fmt_parser

    assert ast_parser().source_grammar == fmt_parser()[0].source_grammar


def test_fmt_rewrites_in_place_and_check_lists_without_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messy = tmp_path / "messy.arch"
    tidy = tmp_path / "tidy.arch"
    messy.write_text("block A(){relu()}\n")
    tidy.write_text("block A() {\n    relu()\n}\n")
    assert main(["fmt", "--check", str(messy), str(tidy)]) == 1
    out, err = capsys.readouterr()
    assert out == f"{messy}: would reformat\n"
    assert "1 of 2 files would be reformatted" in err
    assert messy.read_text() == "block A(){relu()}\n"
    assert main(["fmt", str(messy), str(tidy)]) == 0
    out, _ = capsys.readouterr()
    assert out == f"{messy}: reformatted\n"
    assert messy.read_text() == tidy.read_text()
    assert main(["fmt", "--check", str(messy)]) == 0


def test_fmt_reports_a_file_that_does_not_parse_and_leaves_it_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.arch"
    messy = tmp_path / "messy.arch"
    broken.write_text("block A() {\n    relu(\n}\n")
    messy.write_text("block A(){relu()}\n")
    assert main(["fmt", str(broken), str(messy)]) == 1
    _, err = capsys.readouterr()
    assert re.search(rf"^{re.escape(str(broken))}:3:1: error\[E001\]: ", err, re.M)
    assert "Traceback" not in err
    assert broken.read_text() == "block A() {\n    relu(\n}\n"
    assert messy.read_text() == "block A() {\n    relu()\n}\n"  # the other files are still formatted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.arch", "messy.arch"]  # no temporary file left


def test_fmt_reports_nesting_too_deep_for_it_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.arch"
    messy = tmp_path / "messy.arch"
    text = "block A() {\n    let x = " + "(" * 5000 + "1" + ")" * 5000 + "\n    relu()\n}\n"
    deep.write_text(text)
    messy.write_text("block A(){relu()}\n")
    assert main(["fmt", str(deep), str(messy)]) == 1
    _, err = capsys.readouterr()
    assert re.search(rf"^{re.escape(str(deep))}:\d+:\d+: error\[E060\]: ", err, re.M)
    assert deep.read_text() == text
    assert messy.read_text() == "block A() {\n    relu()\n}\n"


def test_trailing_comments_of_consecutive_lines_line_up() -> None:
    text = "block A() {\n    let n = 1  # one\n    let many = 2 # two\n\n    let k = 3 # alone\n    relu()\n}\n"
    expected = "block A() {\n    let n = 1     # one\n    let many = 2  # two\n\n    let k = 3  # alone\n    relu()\n}\n"
    assert format_text(text, "aligned.arch") == expected


def test_windows_line_endings_and_tabs_format_to_the_canonical_layout() -> None:
    assert format_text("block A() {\r\n\trelu()  # c \r\n}\r\n", "crlf.arch") == "block A() {\n    relu()  # c\n}\n"


@st.composite
def zoo_with_comments(draw: st.DrawFn) -> str:
    """A zoo spec with comments after any token: trailing ones, and ones on a line of their own."""
    pieces = PIECE.findall(draw(st.sampled_from(ZOO)).read_text())
    out: list[str] = []
    for i, piece in enumerate(pieces):
        out.append(piece)
        if not piece.isspace() and not piece.startswith("#"):
            out.append(draw(st.sampled_from(["", "", "", "", "", "", "", "", f"  # after {i}\n", f"\n# own {i}\n", "\n\n"])))
    return "".join(out)


@PROPERTY
@given(zoo_with_comments())
def test_comments_anywhere_in_a_zoo_spec_are_kept_and_format_to_a_fixed_point(text: str) -> None:
    once = format_text(text, "commented.arch")
    assert_same_program(text, once)
    assert format_text(once, "commented.arch") == once


@settings(PROPERTY, max_examples=15)
@given(mutated_specs())
def test_fmt_on_mutated_specs_formats_or_gives_a_located_error_and_never_crashes(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mutated.arch"
        path.write_text(text, encoding="utf-8")
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(["fmt", str(path)])
        after = path.read_text(encoding="utf-8")
    assert code in (0, 1), err.getvalue()
    assert "Traceback" not in err.getvalue()
    if code == 1:
        assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: error\[E\d+\]: ", err.getvalue(), re.M), err.getvalue()
        assert after == text
    else:
        assert format_text(after, "mutated.arch") == after
