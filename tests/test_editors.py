"""Editor and docs support: the Pygments lexer, the TextMate grammar and VS Code extension, shell completion."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pygments import lex
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String, _TokenType

from archc.cli import _parser as cli_parser
from archc.lang.lexer import BUILTIN_CALLS, ArchLexer
from archc.ops import OPS
from archc.sema.evaluate import BUILTINS
from archc.sema.inits import INIT_FUNCTIONS
from tests.conftest import ROOT, SPECS

ZOO = sorted(SPECS.glob("*.arch")) + sorted((SPECS / "lib").glob("*.arch"))
EDITORS = ROOT / "editors"
TM_GRAMMAR = EDITORS / "arch.tmLanguage.json"


def grammar_keywords() -> set[str]:
    """The words archc/lang/grammar.lark spells out as literals: its keywords."""
    return set(re.findall(r'"([a-z]+)"', (ROOT / "archc" / "lang" / "grammar.lark").read_text()))


def test_the_keyword_list_is_read_from_the_grammar() -> None:
    assert {"block", "arch", "forward", "elif", "aux", "none"} <= grammar_keywords()


# Pygments


def tokens(text: str) -> list[tuple[_TokenType, str]]:
    return [(t, v) for t, v in lex(text, ArchLexer()) if not v.isspace()]


def test_pygments_finds_the_lexer_through_the_entry_point() -> None:
    assert type(get_lexer_by_name("arch")) is ArchLexer
    assert type(get_lexer_for_filename("resnet18.arch")) is ArchLexer


@pytest.mark.parametrize("spec", ZOO, ids=lambda p: str(p.relative_to(SPECS)))
def test_every_zoo_spec_lexes_without_errors_and_losslessly(spec: Path) -> None:
    text = spec.read_text()
    pieces = list(lex(text, ArchLexer()))
    assert [v for t, v in pieces if t in Error] == []
    assert "".join(v for _, v in pieces) == text


def test_token_types() -> None:
    text = 'block B(p = 1.5e-3) { c = conv(in.channels, 3) if not p else Other?(x) # note\n meta { s = "a # b", n = 2 } }'
    got = tokens(text)
    assert got[:2] == [(Keyword.Declaration, "block"), (Name.Class, "B")]
    assert (Number.Float, "1.5e-3") in got
    assert (Number.Integer, "3") in got and (Number.Integer, "2") in got
    assert (Name.Builtin, "conv") in got
    assert (Name.Function, "Other") in got
    assert (Keyword, "in") in got and (Name.Attribute, "channels") in got
    assert (Keyword, "if") in got and (Keyword, "else") in got and (Keyword, "meta") in got
    assert (Operator.Word, "not") in got
    assert (Operator, "?") in got and (Operator, "=") in got
    assert (Comment.Single, "# note") in got
    assert (String.Double, '"a # b"') in got  # a `#` in a string starts no comment
    assert (Name, "p") in got and (Name, "x") in got


@pytest.mark.parametrize("word", sorted(grammar_keywords()))
def test_every_grammar_keyword_is_highlighted_as_one(word: str) -> None:
    ((kind, value),) = [t for t in tokens(f"{word} ") if t[1] == word]
    assert kind in Keyword or kind in Operator.Word, (word, kind)


def test_the_lexer_knows_every_op_and_builtin() -> None:
    assert {n for n, op in OPS.items() if not op.syntax_only} | set(BUILTINS) | set(INIT_FUNCTIONS) | {"seq", "cat"} == set(BUILTIN_CALLS)


def test_the_compile_path_imports_neither_pygments_nor_shtab() -> None:
    code = (
        "import sys\nimport archc, archc.cli\nfrom archc.compiler import compile_spec\n"
        "compile_spec('specs/resnet18.arch').python()\n"
        "archc.cli.main(['check', 'specs/resnet18.arch'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygments', 'shtab', 'torch')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.splitlines()[-1] == "[]"


# TextMate grammar and VS Code


def tm_patterns(node: Any) -> list[dict[str, Any]]:
    """Every rule of the grammar that has a regex."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if any(k in node for k in ("match", "begin", "end")):
            found.append(node)
        for value in node.values():
            found.extend(tm_patterns(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(tm_patterns(value))
    return found


def scopes_of(word: str, grammar: dict[str, Any]) -> set[str]:
    """The scope names the grammar gives `word` when a rule's regex matches exactly that word."""
    scopes: set[str] = set()
    for rule in tm_patterns(grammar):
        m = re.search(rule.get("match", "(?!)"), f"{word} ")
        if m is None:
            continue
        if "name" in rule and m.group(0) == word:
            scopes.add(rule["name"])
        for i, capture in rule.get("captures", {}).items():
            if m.group(int(i)) == word:
                scopes.add(capture["name"])
    return scopes


def test_the_textmate_grammar_is_json_and_its_regexes_compile() -> None:
    grammar = json.loads(TM_GRAMMAR.read_text())
    assert grammar["scopeName"] == "source.arch"
    rules = tm_patterns(grammar)
    assert len(rules) > 15
    # TextMate uses Oniguruma; these patterns use only what Python's re shares with it (classes, groups,
    # alternation, \b, lookahead), so compiling them with re is a fair check.
    for rule in rules:
        for key in ("match", "begin", "end"):
            if key in rule:
                re.compile(rule[key])


@pytest.mark.parametrize("word", sorted(grammar_keywords()))
def test_the_textmate_grammar_scopes_every_grammar_keyword(word: str) -> None:
    scopes = scopes_of(word, json.loads(TM_GRAMMAR.read_text()))
    assert any(s.startswith(("keyword.", "storage.", "constant.language.", "variable.language.")) for s in scopes), (word, scopes)


def test_the_textmate_grammar_scopes_ops_builtins_comments_strings_and_numbers() -> None:
    grammar = json.loads(TM_GRAMMAR.read_text())
    (builtin,) = [r["match"] for r in tm_patterns(grammar) if r.get("name") == "support.function.builtin.arch"]
    for name in BUILTIN_CALLS:
        assert re.match(builtin, f"{name}(x)").group(0) == name, name  # type: ignore[union-attr]
        assert re.match(builtin, f"{name} ?(x)") and not re.match(builtin, f"{name} = 1") and not re.match(builtin, f"my_{name}(x)")
    comment = grammar["repository"]["comment"]["match"]
    assert re.search(comment, 'x = 1  # a "note"').group(0) == '# a "note"'  # type: ignore[union-attr]
    string = grammar["repository"]["string"]["match"]
    assert re.fullmatch(string, '"torchvision:resnet18"') and not re.fullmatch(string, '"a\nb"')
    numbers = {r["name"]: r["match"] for r in grammar["repository"]["number"]["patterns"]}
    assert re.fullmatch(numbers["constant.numeric.float.arch"], "1e-5") and re.fullmatch(numbers["constant.numeric.float.arch"], "0.5")
    assert re.fullmatch(numbers["constant.numeric.integer.arch"], "64")


def test_the_vscode_extension_contributes_the_language_and_the_grammar() -> None:
    vscode = EDITORS / "vscode"
    package = json.loads((vscode / "package.json").read_text())
    (language,) = package["contributes"]["languages"]
    assert language["id"] == "arch" and ".arch" in language["extensions"]
    config = json.loads((vscode / language["configuration"]).read_text())
    assert config["comments"]["lineComment"] == "#"
    assert ["{", "}"] in config["brackets"] and ["(", ")"] in config["brackets"] and ["[", "]"] in config["brackets"]
    (grammar,) = package["contributes"]["grammars"]
    assert grammar["language"] == "arch"
    assert (vscode / grammar["path"]).resolve() == TM_GRAMMAR.resolve()
    assert json.loads((vscode / grammar["path"]).read_text())["scopeName"] == grammar["scopeName"]


# Shell completion


def subcommands() -> list[str]:
    (sub,) = [a for a in cli_parser()._actions if a.dest == "command"]
    return sorted(sub.choices)  # type: ignore[arg-type]


def completion(shell: str) -> str:
    result = subprocess.run([sys.executable, "-m", "archc", "completion", shell], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bash_completion_is_valid_bash_and_knows_every_command(tmp_path: Path) -> None:
    script = completion("bash")
    assert {"compile", "fmt", "completion", "zoo"} <= set(subcommands())
    for command in subcommands():
        assert re.search(rf"\b{command}\b", script), command
    assert "--check" in script and "--rankdir" in script
    path = tmp_path / "archc.bash"
    path.write_text(script)
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # Sourced in a shell, it registers the completion function for `archc`.
    result = subprocess.run(["bash", "-c", f"source {path} && complete -p archc"], capture_output=True, text=True)
    assert result.returncode == 0 and "archc" in result.stdout, result.stderr


def test_zsh_completion_knows_every_command(tmp_path: Path) -> None:
    script = completion("zsh")
    assert script.startswith("#compdef archc")
    for command in subcommands():
        assert re.search(rf"\b{command}\b", script), command
    if shutil.which("zsh"):
        path = tmp_path / "_archc"
        path.write_text(script)
        assert subprocess.run(["zsh", "-n", str(path)]).returncode == 0
