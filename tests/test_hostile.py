"""No injection: hostile specs either fail with a located error (exit 1), or compile to a module that runs no spec
text as code.

Spec text reaches the generated Python in three ways: names (validated identifiers), strings and numbers (written
by `archc.sema.symbolic.literal`), and comments above definitions (docstrings). The properties:

- every name that is a Python keyword, a builtin, a dunder name, or a name the generated code uses itself, in every
  place a name can stand, is either rejected with `path:line:col: error` or compiles to a module that imports,
  builds, runs forward in training and eval mode and gives the output shape archc computed;
- hostile strings, comments, `-D` values and file paths (quotes, backslashes, `\"\"\"`, line breaks where the lexer
  allows them, `__import__('os')...` text) stay inert: the generated source parses, every identifier in it is
  either one the spec declared outside strings and comments or one the emitter writes for every spec, no spec
  string appears outside a string literal or docstring, and importing, building and running the module in a
  subprocess fires none of the canaries (an environment variable, a file, a module global) the hostile text
  would set if it ever ran.

"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import keyword
import os
import re
import subprocess
import sys
import tokenize
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from archc.compiler import compile_spec, parse_overrides
from archc.errors import ArchError
from tests.conftest import Outcome
from tests.conftest import run_cli as cli

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated"


def assert_located_error(outcome: Outcome, path: Path | str) -> None:
    assert outcome.code == 1, f"exit {outcome.code}\n{outcome.err[-2000:]}"
    assert "Traceback" not in outcome.err and "internal error" not in outcome.err, outcome.err
    assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: error\b", outcome.err, re.M), f"not located in {path}:\n{outcome.err}"


# What the generated code may name: identifiers the spec declares (outside strings and comments), and those the
# emitter writes itself (read off the committed generated modules of the zoo, plus Python's own names). No word of
# the hostile payloads is among them.

_SPEC_TOKEN = re.compile(r'"[^"\n]*"|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*')


def spec_identifiers(*texts: str) -> set[str]:
    """The names of spec texts, strings and comments left out, and the class names made of them (`net` -> `Net`)."""
    names = {t for text in texts for t in _SPEC_TOKEN.findall(text) if t[0] not in '"#'}
    return names | {"".join(part[:1].upper() + part[1:] for part in n.split("_")) for n in names}


def code_tokens(source: str) -> list[tokenize.TokenInfo]:
    return list(tokenize.generate_tokens(io.StringIO(source).readline))


def _emitter_vocabulary() -> set[str]:
    names: set[str] = set()
    for path in GENERATED.glob("*.py"):
        if path.name == "__init__.py":  # the package's registry, hand-written, not emitted
            continue
        names |= {t.string for t in code_tokens(path.read_text(encoding="utf-8")) if t.type == tokenize.NAME}
    # Builtins and modules the emitter writes for constructs the zoo may not use.
    return names | set(keyword.kwlist) | {"range", "enumerate", "min", "max", "int", "float", "abs", "len", "math", "ceil"}


EMITTER_VOCABULARY = _emitter_vocabulary()
# Words of the hostile payloads: none may ever be an identifier of generated code.
PAYLOAD_WORDS = {"ARCHC_PWNED", "archc_pwned", "ARCHC_CANARY", "__import__", "system", "environ", "__setitem__", "open", "exec", "eval"}


def _ast_identifiers(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.arg):
            out.add(node.arg)
        elif isinstance(node, ast.keyword) and node.arg is not None:
            out.add(node.arg)
        elif isinstance(node, ast.alias):
            out.add(node.asname or node.name.split(".")[0])
    return out


def assert_inert(source: str, spec_texts: list[str], strings: list[str], stem: str = "spec") -> None:
    """The generated source parses; its identifiers come from the spec's names, its file stem (the generated
    function) or the emitter; spec strings appear only inside string literals (docstrings included)."""
    tree = ast.parse(source)  # a SyntaxError is the failure
    allowed = spec_identifiers(*spec_texts) | EMITTER_VOCABULARY | {stem, unicodedata.normalize("NFKC", stem)}
    identifiers = _ast_identifiers(tree)
    leaked = identifiers & (PAYLOAD_WORDS - spec_identifiers(*spec_texts))
    assert not leaked, f"payload words became code: {sorted(leaked)}\n{source}"
    assert identifiers <= allowed, f"identifiers from neither the spec's names nor the emitter: {sorted(identifiers - allowed)}\n{source}"
    tokens = code_tokens(source)
    names = {t.string for t in tokens if t.type == tokenize.NAME}
    assert names <= allowed | {"_"}, sorted(names - allowed)
    code_only = " ".join(t.string for t in tokens if t.type not in (tokenize.STRING, tokenize.COMMENT))
    for s in strings:
        if len(s) >= 4:
            assert s not in code_only, f"spec string {s!r} appears outside string literals:\n{source}"
    # Every spec string that made it into the module is the value of a string constant (or part of a docstring).
    constants = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    for s in strings:
        if len(s) >= 4 and s in source:
            assert any(s in c for c in constants), f"spec string {s!r} is in the source but in no string constant"


# Part 1: names. Every place a name can stand in a spec, with every kind of troublesome name.

NAMES = [
    # Python keywords that are not keywords of the spec language, and soft keywords.
    *["def", "class", "None", "async", "nonlocal", "match", "type", "_"],
    # Builtins, most of which the generated code may call or use in annotations.
    *["range", "min", "max", "int", "float", "abs", "len", "enumerate", "list", "tuple", "str", "exec", "open", "super"],
    # Dunder names.
    *["__import__", "__class__", "__init__", "__"],
    # Names of the generated code itself: modules, types, locals, nn.Module attributes, the generated classes and
    # function of the specs below (`Net`, `B`, `spec`), ops and builtins of the language.
    *["self", "torch", "nn", "F", "Tensor", "Any", "OrderedDict", "math", "x", "channels", "in_channels", "out", "y"],
    *["forward", "training", "train", "eval", "append", "modules", "eager_outputs", "extra_repr", "compile", "_modules"],
    *["_parameters", "_buffers", "_version", "dump_patches", "call_super_init", "T_destination", "Net", "B", "spec", "cat"],
    *["seq", "ceil"],
    # Keywords of the spec language: syntax errors.
    *["if", "none"],
]


def _arch_with(body: str) -> str:
    return "arch net() {\n    input (3, 8, 8)\n    " + body + "\n}\n"


# A block whose generated constructor uses the builtins the emitter writes (range, enumerate, min, max, int, float,
# abs, len, math.ceil), annotations (list, tuple, str, float), a symbolic `if` and another block's class (`B`), with
# the hostile name as one more parameter: it must shadow none of them.
_SINK = """\
block B() {
    relu()
}

block Sink(w = 8, xs = [4, 6], mode = "a", scale = 0.5, @N@ = 8) {
    let half = w // 2
    for i, v in xs {
        conv(max(v, 1) + min(w, 1) * 0 + int(float(w)) * 0 + abs(w) * 0 + len(xs) * 0 + ceil(w / 2) * 0 + i * 0, (3, 3), padding = 1)
    }
    for j in range(w // 4) {
        relu()
    }
    if mode == "a" {
        relu()
    } else {
        sigmoid()
    }
    conv(half, 1)
    B()
}
"""

PLACES = {
    "block_name": "block @N@() { relu() }\n" + _arch_with("@N@()"),
    "arch_name": "arch @N@() {\n    input (3, 8, 8)\n    relu()\n}\n",
    "block_param": _SINK + _arch_with("Sink()"),
    "arch_param": "block B() { relu() }\narch net(@N@ = 8) {\n    input (3, 8, 8)\n    conv(@N@, 3)\n    B()\n}\n",
    "let": "block B(w = 8) {\n    let @N@ = w * 2\n    conv(@N@, 3)\n}\n" + _arch_with("B()"),
    "member_with_forward": "block B() {\n    @N@ = conv(8, 3)\n    forward(x) = @N@(x)\n}\n" + _arch_with("B()"),
    "member_without_forward": "block B() {\n    @N@ = conv(8, 3)\n    relu()\n}\n" + _arch_with("B()"),
    "arch_member": "arch net() {\n    input (3, 8, 8)\n    @N@ = conv(8, 3)\n    c = conv(4, 1)\n    forward(x) = c(@N@(x))\n}\n",
    "seq_key": _arch_with("s = seq(@N@ = conv(8, 3), r = relu())"),
    "loop_variable": "block B(xs = [8, 8]) {\n    for @N@ in xs {\n        conv(@N@, 3, padding = 1)\n    }\n}\n" + _arch_with("B()"),
    "loop_index": "block B(xs = [8, 8]) {\n    for @N@, v in xs {\n        conv(v + @N@ * 0, 3, padding = 1)\n    }\n}\n"
    + _arch_with("B()"),
    "forward_argument": "block B() {\n    c = conv(8, 3)\n    forward(@N@) = c(@N@)\n}\n" + _arch_with("B()"),
    "forward_variable": "block B() {\n    c = conv(8, 3)\n    d = conv(8, 1)\n    forward(x) {\n        @N@ = c(x)\n"
    "        out = d(@N@)\n        return relu(out + @N@)\n    }\n}\n" + _arch_with("B()"),
    "aux_output": "arch net() {\n    input (3, 8, 8)\n    c = conv(8, 3)\n    h = conv(4, 1)\n    forward(x) {\n        y = c(x)\n"
    "        aux @N@ = h(y)\n        return y, @N@\n    }\n}\n",
    "forward_scalar": "block B(@N@ = 0.5) {\n    c = conv(8, 3)\n    forward(x) = c(x) * @N@\n}\n" + _arch_with("B(0.25)"),
}


def exercise(module: Any, function: str, input_shape: list[int], expected: list[int]) -> None:
    """Build the model, run forward in training and eval mode, use the usual nn.Module API on every submodule."""
    model = getattr(module, unicodedata.normalize("NFKC", function))()
    x = torch.randn(2, *input_shape)
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()
    with torch.no_grad():
        y = model(x)
    assert isinstance(y, torch.Tensor), f"forward returned {type(y).__name__}, not a tensor"
    assert list(y.shape) == [2, *expected], f"output {list(y.shape)}, archc says {expected}"
    for m in model.modules():
        m.eval()
        m.train()
    model.state_dict()
    repr(model)


def _load(source: str, directory: Path, name: str) -> Any:
    path = directory / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"_archc_hostile_{abs(hash(str(directory)))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _name_params() -> list[Any]:
    return [pytest.param(place, name, id=f"{place}-{name}") for place in PLACES for name in NAMES]


@pytest.mark.parametrize(("place", "name"), _name_params())
def test_name_is_rejected_or_harmless(place: str, name: str, tmp_path: Path) -> None:
    text = PLACES[place].replace("@N@", name)
    path = tmp_path / "spec.arch"
    path.write_text(text, encoding="utf-8")
    try:  # what `archc compile` runs, in-process
        compiled = compile_spec(path)
        source = compiled.python()
    except ArchError:
        assert_located_error(cli("check", str(path)), path)
        return
    assert_inert(source, [text], [])
    expected = compiled.arch.nodes[compiled.arch.outputs[0]].shape
    exercise(_load(source, tmp_path, "spec"), "spec", compiled.arch.input_shape, expected)


@pytest.mark.parametrize(
    ("place", "name"),
    [
        ("member_with_forward", "self"),
        ("block_param", "torch"),
        ("let", "nn"),
        ("loop_variable", "F"),
        ("arch_param", "Tensor"),
        ("forward_variable", "channels"),
        ("block_name", "__import__"),
        ("arch_member", "forward"),
        ("member_without_forward", "training"),
        ("forward_argument", "def"),
        ("block_param", "in_channels"),
    ],
)
def test_names_the_generated_code_needs_are_rejected(place: str, name: str, tmp_path: Path) -> None:
    """The matrix above is not vacuous: these are rejected with a location, not just harmless."""
    path = tmp_path / "spec.arch"
    path.write_text(PLACES[place].replace("@N@", name), encoding="utf-8")
    assert_located_error(cli("check", str(path)), path)


def test_module_attributes_cover_torch() -> None:
    """Every public attribute of an nn.Sequential instance (methods, class and instance attributes) is refused as a
    member name, so a new torch release that adds one fails here instead of in a user's generated module."""
    from archc.emit.torch import MODULE_ATTRIBUTES

    public = {n for n in dir(torch.nn.Sequential()) if not n.startswith("_")}
    assert public <= MODULE_ATTRIBUTES, sorted(public - MODULE_ATTRIBUTES)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("\u0455elf", id="cyrillic_s_self"),
        pytest.param("t\u043erch", id="cyrillic_o_torch"),
        pytest.param("\uff53elf", id="fullwidth_self"),
        pytest.param("\u0192", id="latin_f_hook"),
        pytest.param("x\u0301", id="combining_accent"),
        pytest.param("\u2160", id="roman_numeral_one"),
        pytest.param("\u212a", id="kelvin_sign"),
        pytest.param("se\u200blf", id="zero_width_space"),
    ],
)
def test_unicode_look_alike_names_are_rejected(name: str, tmp_path: Path) -> None:
    """Names are ASCII: look-alikes of `self`, `torch`, `F` never reach Python, where NFKC would fold some of them."""
    path = tmp_path / "spec.arch"
    path.write_text(f"arch net() {{\n    input (3, 8, 8)\n    {name} = conv(8, 3)\n}}\n", encoding="utf-8")
    assert_located_error(cli("check", str(path)), path)


# Part 2: strings, comments, -D values and file paths, with canaries.


def payload(case: str) -> str:
    """Python text that, if it ever ran, would set an environment variable and create a file (no `"`, no backslash:
    spec strings cannot hold them)."""
    return f"__import__('os').environ.__setitem__('ARCHC_PWNED_{case}', '1') or open('archc_pwned_{case}', 'w')"


@dataclass
class Hostile:
    text: str  # the spec; @P@ stands for the payload of the case
    defines: list[str] = field(default_factory=list)  # -D values; @P@ likewise
    directory: str = ""  # a subdirectory the spec lives in (for hostile paths)
    stem: str = "spec"
    bug: str | None = None


_NET_BODY = "    input (3, 8, 8)\n    stem = Foo()\n    head = conv(4, 1)\n    forward(x) = head(stem(x))\n"

HOSTILE: dict[str, Hostile] = {
    "comments_above_definitions": Hostile(
        '# """ + @P@ + """\n'
        "# ''' + @P@ + '''\n"
        "# a trailing backslash \\\n"
        '# escapes \\N{DIGIT ONE} \\x41 \\u0041 \\" \\\\" {0} %s \\\n'
        "block Foo(n = 8) {\n    conv(n, 3, padding = 1)\n}\n"
        '# """\n'
        '# ends with a quote "\n'
        "arch net() {\n" + _NET_BODY + "}\n"
    ),
    "comment_ending_in_quotes": Hostile('# @P@ ""\nblock Foo() { conv(8, 3, padding = 1) }\n# @P@ "\narch net() {\n' + _NET_BODY + "}\n"),
    "comment_of_quotes_only": Hostile('#"""""""\nblock Foo() { conv(8, 3, padding = 1) }\n#"\narch net() {\n' + _NET_BODY + "}\n"),
    "comment_with_line_separators": Hostile(
        "# a\u2028@P@\u2029b\x85c\x0cd\x0be\x1cf\rg\nblock Foo() { conv(8, 3, padding = 1) }\narch net() {\n" + _NET_BODY + "}\n"
    ),
    "comment_long_words_of_quotes": Hostile(
        "".join(f'# {"a" * k}""""{"b" * (200 - k)}\n' for k in range(94, 101))
        + "block Foo() { conv(8, 3, padding = 1) }\narch net() {\n"
        + _NET_BODY
        + "}\n"
    ),
    "comment_long_word_with_backslash_escape": Hostile(
        "# " + "a" * 99 + "\\xzz @P@\nblock Foo() { conv(8, 3, padding = 1) }\narch net() {\n" + _NET_BODY + "}\n",
    ),
    "comment_with_nul": Hostile(
        "# before\x00after @P@\nblock Foo() { conv(8, 3, padding = 1) }\narch net() {\n" + _NET_BODY + "}\n",
    ),
    "meta_strings": Hostile(
        "block Foo() { conv(8, 3, padding = 1) }\n"
        "arch net() {\n"
        "    meta {\n"
        "        paper = \"''' @P@ '''\",\n"
        '        year = "@P@ {0} %s",\n'
        '        reference = "\'",\n'
        '        top1 = "@P@",\n'
        '        extra = ["it\'s", "\'\'\'", ("@P@",)],\n'
        "    }\n" + _NET_BODY + "}\n"
    ),
    "meta_paper_is_a_list": Hostile(
        "block Foo() { conv(8, 3, padding = 1) }\n"
        "arch net() {\n"
        '    meta { paper = ["it\'s", "\'\'\'", "@P@"], year = ["\'"], reference = ("x\'",) }\n' + _NET_BODY + "}\n"
    ),
    "meta_strings_with_line_breaks": Hostile(
        "block Foo() { conv(8, 3, padding = 1) }\n"
        "arch net() {\n"
        '    meta { paper = "a\r@P@\r", year = "\u2028@P@\u2029", reference = "\x0c\x0b\x1b\x7f" }\n' + _NET_BODY + "}\n"
    ),
    "meta_string_with_nul": Hostile(
        "block Foo() { conv(8, 3, padding = 1) }\narch net() {\n" + '    meta { paper = "a\x00b @P@" }\n' + _NET_BODY + "}\n",
    ),
    "string_parameters": Hostile(
        'block Foo(mode = "@P@", cfg = ["@P@", "M", 8], tag = "\'\'\'", raw = "a\r\x00\u2028b") {\n'
        '    if mode == "@P@" {\n        relu()\n    } elif mode == "\'\'\'" {\n        sigmoid()\n    } else {\n        tanh()\n    }\n'
        "    for v in cfg {\n"
        '        if v == "M" {\n            maxpool(3, stride = 1, padding = 1)\n'
        '        } elif v == "@P@" {\n            identity()\n'
        "        } else {\n            conv(v, 3, padding = 1)\n        }\n    }\n"
        "    if tag == raw {\n        relu()\n    }\n"
        "    conv(8, 1)\n"
        "}\n"
        'arch net(kind = "@P@", label = "{0}") {\n'
        "    input (3, 8, 8)\n"
        '    stem = Foo(kind, ["M", kind, 4])\n'
        "    head = conv(4, 1)\n"
        "    forward(x) = head(stem(x))\n"
        "}\n"
    ),
    "string_arguments_in_the_block_form": Hostile(
        'block Foo(mode = "a", cfg = [8]) {\n    for v in cfg {\n        if v == "M" {\n            maxpool(2)\n'
        "        } else {\n            conv(v, 3, padding = 1)\n        }\n    }\n"
        '    if mode == "@P@" {\n        relu()\n    }\n}\n'
        'arch net(mode = "@P@") = Foo(mode, ["@P@" if false else 8, "M"]) {\n    meta { paper = "@P@" }\n    input (3, 8, 8)\n}\n'
    ),
    "define_strings": Hostile(
        'block Foo(mode = "a") {\n    conv(8, 3, padding = 1)\n    if mode == "b" {\n        relu()\n    }\n}\n'
        'arch net(s = "a", cfg = [1], paper = "p") {\n'
        "    meta { paper = paper, reference = s }\n"
        "    input (3, 8, 8)\n"
        "    stem = Foo(s)\n"
        "    head = conv(4, 1)\n"
        "    forward(x) = head(stem(x))\n"
        "}\n",
        defines=["s=\"@P@ '''\"", 'cfg=["@P@", ("\'",), [""], 1]', "paper=\"''' @P@ '''\""],
    ),
    "path_with_quotes_and_braces": Hostile(
        "block Foo() { conv(8, 3, padding = 1) }\narch net() {\n" + _NET_BODY + "}\n", directory="a\"\"\"b'''{0}%s\\c"
    ),
    "path_with_newline": Hostile(
        "block Foo() { conv(8, 3, padding = 1) }\narch net() {\n" + _NET_BODY + "}\n",
        directory="d\nARCHC_CANARY = @P@\n#",
    ),
    "path_with_carriage_return": Hostile(
        "block Foo() { conv(8, 3, padding = 1) }\narch net() {\n" + _NET_BODY + "}\n",
        directory="d\rARCHC_CANARY = @P@\r#",
    ),
    "stem_fullwidth_torch": Hostile(
        "arch net() {\n    input (3, 8, 8)\n    a = conv(4, 3)\n    b = conv(4, 3)\n    forward(x) = cat(a(x), b(x))\n}\n",
        stem="\uff54orch",
    ),
    "stem_fullwidth_F": Hostile(
        "arch net() {\n    input (3, 8, 8)\n    a = conv(4, 3)\n    forward(x) = relu(a(x))\n}\n",
        stem="\uff26",
    ),
    "stem_fullwidth_nn": Hostile(
        "arch net() {\n    input (3, 8, 8)\n    a = conv(4, 3)\n}\n",
        stem="\uff4en",
    ),
}

# Imports and builds each compiled module in a fresh interpreter, each in its own directory, and reports, per case,
# whether it ran and which canaries fired.
_RUNNER = r"""
import importlib.util, json, os, sys, traceback, unicodedata
import torch

results = {}
for case in json.loads(sys.argv[1]):
    os.chdir(case["dir"])
    before = set(os.environ)
    result = {"error": None}
    module = None
    try:
        spec = importlib.util.spec_from_file_location("hostile_" + case["id"], case["path"])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = getattr(module, unicodedata.normalize("NFKC", case["function"]))()
        x = torch.randn(2, *case["input"])
        model.train()
        with torch.no_grad():
            model(x)
        model.eval()
        with torch.no_grad():
            y = model(x)
        if list(y.shape) != [2, *case["output"]]:
            result["error"] = "output shape %s, archc says %s" % (list(y.shape), case["output"])
        repr(model)
        model.state_dict()
    except BaseException as e:
        result["error"] = "".join(traceback.format_exception_only(type(e), e)).strip()
    result["env"] = sorted(k for k in set(os.environ) - before if k.startswith("ARCHC_PWNED"))
    result["files"] = sorted(p for p in os.listdir(case["dir"]) if p.startswith("archc_pwned"))
    result["globals"] = sorted(k for k in vars(module) if k.startswith("ARCHC_")) if module is not None else []
    results[case["id"]] = result
print(json.dumps(results))
"""


@dataclass
class Compiled:
    outcome: Outcome
    spec: Path
    source: str | None = None
    text: str = ""
    strings: list[str] = field(default_factory=list)
    run: dict[str, Any] | None = None


def _spec_strings(text: str, defines: list[str]) -> list[str]:
    """The string literals of a spec and of its -D values (comments left out)."""
    return [t[1:-1] for t in _SPEC_TOKEN.findall("\n".join([text, *(d.partition("=")[2] for d in defines)])) if t.startswith('"')]


@pytest.fixture(scope="module")
def hostile_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Compiled]:
    """Compile every hostile case, then import, build and run all the accepted ones in one subprocess."""
    results: dict[str, Compiled] = {}
    jobs = []
    for case_id, case in HOSTILE.items():
        base = tmp_path_factory.mktemp(case_id)
        directory = base / case.directory.replace("@P@", payload(case_id)) if case.directory else base
        directory.mkdir(parents=True, exist_ok=True)
        text = case.text.replace("@P@", payload(case_id))
        defines = [d.replace("@P@", payload(case_id)) for d in case.defines]
        spec = directory / f"{case.stem}.arch"
        spec.write_text(text, encoding="utf-8")
        out = base / "out"
        outcome = cli("compile", *(a for d in defines for a in ("-D", d)), "-o", str(out), str(spec))
        result = Compiled(outcome, spec, text=text, strings=_spec_strings(text, defines))
        results[case_id] = result
        generated = out / f"{case.stem}.py"
        if outcome.code != 0 or not generated.is_file():
            continue
        result.source = generated.read_text(encoding="utf-8")
        compiled = compile_spec(spec, parse_overrides(defines))
        jobs.append(
            {
                "id": case_id,
                "dir": str(base),
                "path": str(generated),
                "function": case.stem,
                "input": compiled.arch.input_shape,
                "output": compiled.arch.nodes[compiled.arch.outputs[0]].shape,
            }
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHC_PWNED")}
    proc = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(jobs)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    for case_id, run in runs.items():
        results[case_id].run = run
    return results


def _hostile_params() -> list[Any]:
    return [
        pytest.param(case_id, id=case_id, marks=[pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else [])
        for case_id, case in HOSTILE.items()
    ]


@pytest.mark.parametrize("case_id", _hostile_params())
def test_hostile_text_stays_inert(case_id: str, hostile_results: dict[str, Compiled]) -> None:
    result = hostile_results[case_id]
    if result.outcome.code != 0:
        assert_located_error(result.outcome, result.spec)
        return
    assert result.source is not None and result.run is not None
    assert result.run["env"] == [], f"a canary fired: environment {result.run['env']}\n{result.source}"
    assert result.run["files"] == [], f"a canary fired: files {result.run['files']}\n{result.source}"
    assert result.run["globals"] == [], f"a canary fired: module globals {result.run['globals']}\n{result.source}"
    assert_inert(result.source, [result.text], result.strings, HOSTILE[case_id].stem)
    assert result.run["error"] is None, f"the generated module fails: {result.run['error']}\n{result.source}"


def test_canaries_would_fire(tmp_path: Path) -> None:
    """The canaries are live: the payload, run as Python, sets the variable and creates the file."""
    code = f"import os, sys; os.chdir(sys.argv[1]); {payload('probe')}; print(os.environ.get('ARCHC_PWNED_probe'))"
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "1", proc.stderr
    assert (tmp_path / "archc_pwned_probe").exists()


def test_inertness_check_catches_an_injection() -> None:
    """assert_inert itself: a payload that became code is caught."""
    bad = f'"""doc"""\n{payload("x")}\n'
    with pytest.raises(AssertionError):
        assert_inert(bad, ["arch net() {}"], [payload("x")])


# Part 3: -D values that are not values.


@pytest.mark.parametrize(
    "define",
    [
        pytest.param("s=__import__('os').system('true')", id="call_chain"),
        pytest.param('s=__import__("os")', id="dunder_call"),
        pytest.param('s=open("x")', id="builtin_call"),
        pytest.param("s=eval", id="bare_name"),
        pytest.param('s="a\\"b"', id="escaped_quote"),
        pytest.param('s="a', id="unterminated"),
        pytest.param('s="a" + "b" \nimport os', id="newline_then_code"),
        pytest.param("s=[x for x in y]", id="comprehension"),
        pytest.param("s=lambda: 1", id="lambda"),
        pytest.param("s=(1, conv(8, 3))", id="module_in_tuple"),
    ],
)
def test_define_that_is_not_a_value_is_rejected(define: str, tmp_path: Path) -> None:
    path = tmp_path / "spec.arch"
    path.write_text('arch net(s = "a") {\n    meta { paper = s }\n    input (3, 8, 8)\n    relu()\n}\n', encoding="utf-8")
    outcome = cli("check", "-D", define, str(path))
    assert outcome.code == 1, outcome
    assert "Traceback" not in outcome.err and "internal error" not in outcome.err, outcome.err
    assert re.search(r"^-D s:\d+:\d+: error\b", outcome.err, re.M), outcome.err
