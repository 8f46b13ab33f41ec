"""The error catalogue, `archc.errors.CODES`: every code is produced by a broken spec in tests/errors/ (or, for the
few that need a command line, by that command line), every code a broken spec produces is catalogued, and
docs/errors.md explains each one with an example whose printed error is the one archc prints.

Also the diagnostics around the codes: several errors of one spec reported together, notes pointing at the places
that explain an error, and the chain of imports of an error inside an imported file.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from archc.cli import main
from archc.compiler import compile_spec
from archc.errors import CODES, ArchError, ArchErrors
from archc.sema.check import check_program
from archc.sema.program import load_program
from tests.test_docs_examples import arch_examples
from tests.test_errors import read_expectation

ROOT = Path(__file__).resolve().parent.parent
ERRORS = ROOT / "tests" / "errors"
DOCS = ROOT / "docs"
ERRORS_DOC = DOCS / "errors.md"
SPECS = ROOT / "specs"
RESNET18 = SPECS / "resnet18.arch"
BROKEN_SPECS = sorted(ERRORS.glob("*.arch"))
CODE = re.compile(r"error\[(E\d{3})\]: ")
# The codes the static check reports (archc/sema/check.py); the others come from elaboration and emission.
STATIC = {"E010", "E011", "E012", "E013", "E014", "E015", "E019", "E023", "E024", "E060", "E081", "E082", "E084", "E110", "E111", "E112"}


def run_cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


@cache
def spec_codes() -> dict[Path, list[str]]:
    """The codes `archc check` prints for each broken spec, in order."""
    out = {}
    for path in BROKEN_SPECS:
        code, err = run_cli("check", str(path))
        assert code == 1, err
        out[path] = CODE.findall(err)
    return out


# Errors that come from the command line or the Python API rather than from a spec: how to get each.


def _missing_spec(tmp: Path) -> str:
    return run_cli("check", str(tmp / "missing.arch"))[1]


def _node_limit(tmp: Path) -> str:
    spec = tmp / "net.arch"
    spec.write_text("arch net() {\n    input (3, 8, 8)\n    relu()\n    relu()\n    relu()\n}\n", encoding="utf-8")
    return run_cli("check", "--max-nodes", "3", str(spec))[1]


def _malformed_define(tmp: Path) -> str:
    return run_cli("check", "-D", "num_classes", str(RESNET18))[1]


def _zoo_not_a_directory(tmp: Path) -> str:
    return run_cli("zoo", str(tmp / "missing"))[1]


def _diagram_direction(tmp: Path) -> str:
    from archc.emit.dot import render_dot

    with pytest.raises(ArchError) as caught:
        render_dot(compile_spec(RESNET18), 1, "BT", False)
    return caught.value.render()


def _graphviz_missing(tmp: Path) -> str:
    from archc.emit.dot import write_diagram

    with pytest.MonkeyPatch.context() as m:
        m.setenv("PATH", str(tmp))
        with pytest.raises(ArchError) as caught:
            write_diagram("digraph {}", tmp / "net.svg", "svg")
    return caught.value.render()


def _unknown_reference(tmp: Path) -> str:
    return run_cli("verify", str(RESNET18), "--against", "torchvision:resnet81")[1]


def _unusable_weights(tmp: Path) -> str:
    (tmp / "junk.pt").write_bytes(b"not a state dict")
    return run_cli("export", str(RESNET18), "--onnx", str(tmp / "net.onnx"), "--weights", str(tmp / "junk.pt"))[1]


def _training_data_missing(tmp: Path) -> str:
    return run_cli("train", str(SPECS / "lenet5.arch"), "--data", "cifar10", "--data-dir", str(tmp / "data"))[1]


def _nothing_to_resume(tmp: Path) -> str:
    return run_cli("train", str(SPECS / "lenet5.arch"), "--resume", "--checkpoint", str(tmp / "run"))[1]


def _spec_unfit_for_data(tmp: Path) -> str:
    spec = tmp / "net.arch"
    spec.write_text("arch net() {\n    input (1, 8, 8)\n    flatten(1)\n    linear(5)\n}\n", encoding="utf-8")
    return run_cli("train", str(spec), "--data", "digits")[1]


def _device_missing(tmp: Path) -> str:
    return run_cli("train", str(SPECS / "lenet5.arch"), "--device", "cuda:99")[1]


def _output_not_archcs(tmp: Path) -> str:
    (tmp / "out").mkdir()
    (tmp / "out" / "resnet18.py").write_text("print('mine')\n", encoding="utf-8")
    return run_cli("compile", str(RESNET18), "-o", str(tmp / "out"))[1]


def _two_specs_one_output(tmp: Path) -> str:
    (tmp / "a").mkdir()
    shutil.copyfile(SPECS / "lenet5.arch", tmp / "a" / "lenet5.arch")
    return run_cli("compile", str(SPECS / "lenet5.arch"), str(tmp / "a" / "lenet5.arch"), "-o", str(tmp / "out"))[1]


def _output_not_writable(tmp: Path) -> str:
    (tmp / "file").write_text("", encoding="utf-8")
    status, err = run_cli("compile", str(SPECS / "lenet5.arch"), "-o", str(tmp / "file" / "out"))
    assert status == 2, err
    return err


IMPORTED = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x).sum(1)
        return self.conv(x)


class Moved(Net):
    def forward(self, x):
        return self.conv(x).permute(1, 0, 2, 3).relu()
"""


def _imported(tmp: Path, name: str) -> str:
    (tmp / "net.py").write_text(IMPORTED, encoding="utf-8")
    status, err = run_cli("import", f"{tmp / 'net.py'}:{name}")
    assert status == 1 and f"{tmp / 'net.py'}:" in err, err  # located in the model's code
    return err


def _not_expressible(tmp: Path) -> str:
    return _imported(tmp, "Moved")


def _not_traceable(tmp: Path) -> str:
    return _imported(tmp, "Net")


NOT_FROM_A_SPEC: dict[str, Callable[[Path], str]] = {
    "E006": _missing_spec,
    "E061": _node_limit,
    "E090": _malformed_define,
    "E091": _zoo_not_a_directory,
    "E092": _diagram_direction,
    "E093": _graphviz_missing,
    "E094": _unknown_reference,
    "E095": _unusable_weights,
    "E096": _output_not_archcs,
    "E097": _two_specs_one_output,
    "E098": _output_not_writable,
    "E100": _training_data_missing,
    "E101": _nothing_to_resume,
    "E102": _spec_unfit_for_data,
    "E103": _device_missing,
    "E120": _not_expressible,
    "E121": _not_traceable,
}


# The catalogue and the broken specs


def test_every_code_is_produced_by_a_broken_spec_or_a_command_line() -> None:
    produced = {c for codes in spec_codes().values() for c in codes}
    missing = set(CODES) - produced - set(NOT_FROM_A_SPEC)
    assert not missing, f"no spec in tests/errors/ produces {sorted(missing)}"


def test_every_code_a_broken_spec_produces_is_catalogued_and_documented() -> None:
    documented = set(re.findall(r"^### (E\d{3}): ", ERRORS_DOC.read_text(encoding="utf-8"), re.MULTILINE))
    for path, codes in spec_codes().items():
        assert codes, f"{path.name}: no error[E###] printed"
        for code in codes:
            assert code in CODES, f"{path.name}: {code} is not in archc.errors.CODES"
            assert code in documented, f"{path.name}: {code} is not explained in docs/errors.md"


@pytest.mark.parametrize("path", BROKEN_SPECS, ids=lambda p: p.stem)
def test_each_broken_spec_names_the_code_it_produces(path: Path) -> None:
    expected = read_expectation(path)
    assert expected.code is not None, f"{path.name}: write `# expect: LINE:COL: error[E###]: ...`"
    assert spec_codes()[path][0] == expected.code


@pytest.mark.parametrize("code", sorted(NOT_FROM_A_SPEC))
def test_command_line_errors(code: str, tmp_path: Path) -> None:
    text = NOT_FROM_A_SPEC[code](tmp_path)
    assert CODE.findall(text) == [code], text
    assert "Traceback" not in text


def test_codes_are_checked() -> None:
    with pytest.raises(ValueError, match="E999"):
        ArchError("E999", "no such code")
    assert all(re.fullmatch(r"E\d{3}", c) and title and not title.endswith(".") for c, title in CODES.items())


# The static check reports what it finds all at once, and nothing on valid specs


SEVERAL = """\
block Unit(width) {
    conv(widht, 3)
    batchnrom()
}

arch net() {
    input (3, 32, 32)
    Unit(8, stride = 2)
    relu(in_place = true)
}
"""


def test_several_errors_are_reported_together_in_source_order(tmp_path: Path) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(SEVERAL, encoding="utf-8")
    code, err = run_cli("check", str(spec))
    assert code == 1
    heads = [line for line in err.splitlines() if CODE.search(line)]
    assert [h.split(": error")[0] for h in heads] == [f"{spec}:2:10", f"{spec}:3:5", f"{spec}:8:13", f"{spec}:9:10"]
    assert CODE.findall(err) == ["E010", "E011", "E012", "E012"]
    with pytest.raises(ArchErrors) as caught:
        compile_spec(spec)
    assert len(caught.value.errors) == 4
    assert caught.value.code == "E010" and caught.value.loc is not None and caught.value.loc.line == 2


def test_a_broken_spec_does_not_stop_the_others(tmp_path: Path) -> None:
    broken = tmp_path / "broken.arch"
    broken.write_text(SEVERAL, encoding="utf-8")
    out = tmp_path / "out"
    code, err = run_cli("compile", str(broken), str(RESNET18), "-o", str(out))
    assert code == 1
    assert len(CODE.findall(err)) == 4
    assert [p.name for p in out.iterdir()] == ["resnet18.py"]


@pytest.mark.parametrize("spec", sorted(SPECS.glob("*.arch")), ids=lambda p: p.stem)
def test_static_check_is_quiet_on_the_zoo(spec: Path) -> None:
    assert check_program(load_program(spec)) == []


def test_static_check_is_quiet_on_the_language_examples(tmp_path: Path) -> None:
    shutil.copytree(SPECS / "lib", tmp_path / "lib")
    for i, example in enumerate(arch_examples(DOCS / "language.md")):
        path = tmp_path / f"example{i}.arch"
        path.write_text(example.text, encoding="utf-8")
        assert [e.render() for e in check_program(load_program(path))] == [], example.id


@pytest.mark.parametrize("path", BROKEN_SPECS, ids=lambda p: p.stem)
def test_static_check_leaves_elaboration_errors_to_elaboration(path: Path) -> None:
    """A broken spec whose error is found by running it has nothing the static check objects to."""
    if read_expectation(path).code in STATIC:
        return
    try:
        program = load_program(path)
    except ArchError:
        return  # a syntax or import error: nothing to check
    assert check_program(program) == []


# Notes


def _notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("note: ")]


def test_a_mismatched_add_notes_where_each_operand_was_made() -> None:
    path = ERRORS / "channel_mismatch_add.arch"
    _, err = run_cli("check", str(path))
    assert _notes(err) == [
        f"note: {path}:4:11: the left operand, N×16×32×32, is the output of `0.bn1` (batchnorm), made here",
        f"note: {path}:10:5: the right operand, N×3×32×32, is the network's input",
    ]
    lines = err.splitlines()
    at = lines.index(_notes(err)[0])
    assert lines[at + 1] == "4 |     bn1 = batchnorm()"
    assert lines[at + 2] == "              ^"


def test_a_mismatched_cat_notes_both_branches() -> None:
    path = ERRORS / "spatial_mismatch_cat.arch"
    _, err = run_cli("check", str(path))
    notes = _notes(err)
    assert [n.split(": ")[1] for n in notes] == [f"{path}:3:12", f"{path}:4:13"]
    assert "N×8×32×32" in notes[0] and "`0.left` (conv)" in notes[0]
    assert "N×8×16×16" in notes[1] and "`0.right` (conv)" in notes[1]


def test_a_misspelt_block_notes_where_the_block_is_defined() -> None:
    path = ERRORS / "unknown_block.arch"
    _, err = run_cli("check", str(path))
    assert _notes(err) == [f"note: {path}:3:1: `Small` is defined here"]
    _, err = run_cli("check", str(ERRORS / "block_wrong_argument.arch"))
    assert _notes(err) == [f"note: {ERRORS / 'block_wrong_argument.arch'}:3:1: `Small` is defined here"]


def test_a_duplicate_notes_the_first() -> None:
    _, err = run_cli("check", str(ERRORS / "definition_twice.arch"))
    assert _notes(err) == [f"note: {ERRORS / 'definition_twice.arch'}:2:1: the first definition of `Unit` is here"]
    _, err = run_cli("check", str(ERRORS / "member_declared_twice.arch"))
    assert _notes(err) == [f"note: {ERRORS / 'member_declared_twice.arch'}:4:5: `conv1` is first declared here"]


def _library_chain(tmp: Path, blocks: str) -> Path:
    (tmp / "lib").mkdir()
    (tmp / "lib" / "blocks.arch").write_text(blocks, encoding="utf-8")
    (tmp / "lib" / "stages.arch").write_text('import "blocks.arch"\n\nblock Stage(width) {\n    Conv(width)\n}\n', encoding="utf-8")
    spec = tmp / "net.arch"
    spec.write_text('import "lib/stages.arch"\n\narch net() {\n    input (3, 32, 32)\n    Stage(8)\n}\n', encoding="utf-8")
    return spec


@pytest.mark.parametrize(
    ("blocks", "code", "line"),
    [
        ("block Conv(width) {\n    convv(width, 3)\n}\n", "E011", 2),  # the static check
        ("block Conv(width) {\n    conv(width, 3, groups = 3)\n}\n", "E033", 2),  # elaboration
        ("block Conv(width) {\n    conv(width, 3\n}\n", "E001", 3),  # parsing
    ],
    ids=["check", "elaboration", "syntax"],
)
def test_an_error_in_an_imported_file_notes_the_chain_of_imports(tmp_path: Path, blocks: str, code: str, line: int) -> None:
    spec = _library_chain(tmp_path, blocks)
    _, err = run_cli("check", str(spec))
    blocks_file = (tmp_path / "lib" / "blocks.arch").resolve()
    assert err.startswith(f"{blocks_file}:{line}:"), err
    assert CODE.findall(err) == [code]
    assert [n for n in _notes(err) if "imported from" in n] == [
        f"note: imported from {(tmp_path / 'lib' / 'stages.arch').resolve()}:1:8",
        f"note: imported from {spec}:1:8",
    ]


# docs/errors.md


def _doc_sections() -> list[tuple[str, str, str]]:
    """(code, title, section text) for each `### E###: title` of docs/errors.md."""
    text = ERRORS_DOC.read_text(encoding="utf-8")
    parts = re.split(r"^### (E\d{3}): (.*)$", text, flags=re.MULTILINE)
    return [(parts[i], parts[i + 1], parts[i + 2]) for i in range(1, len(parts), 3)]


def test_docs_explain_every_code_with_its_title_in_order() -> None:
    assert [(code, title) for code, title, _ in _doc_sections()] == list(CODES.items())
    for code, _, section in _doc_sections():
        assert "Fix:" in section, f"docs/errors.md: {code} says nothing on the fix"
        assert f"error[{code}]" in section, f"docs/errors.md: {code} shows no error"


EXAMPLE = re.compile(r"```arch-broken\n(?P<spec>.*?)```\n\n```text\n(?P<printed>.*?)```", re.DOTALL)


def _doc_examples() -> list[object]:
    cases = []
    for code, _, section in _doc_sections():
        for m in EXAMPLE.finditer(section):
            cases.append(pytest.param(code, m["spec"], m["printed"], id=code))
    return cases


@pytest.mark.parametrize(("code", "spec", "printed"), _doc_examples())
def test_docs_examples_print_what_archc_prints(code: str, spec: str, printed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = printed.split(":", 1)[0]
    (tmp_path / name).write_text(spec, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    status, err = run_cli("check", name)
    assert status == 1
    assert err.replace(str(tmp_path.resolve()), "/path/to") == printed
    assert CODE.findall(err)[0] == code


def test_every_broken_example_of_the_docs_is_checked() -> None:
    text = ERRORS_DOC.read_text(encoding="utf-8")
    assert text.count("```arch-broken") == len(_doc_examples())
