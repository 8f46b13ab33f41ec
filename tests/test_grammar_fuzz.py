"""Specs generated from the grammar (archc/lang/grammar.lark): every construct of the language, with random names and
numbers and arguments that are sometimes valid, plus token-level mutations of such specs.

The properties, for every generated spec:

- `archc check` exits 0 or 1, never 3; nothing escapes `main`; no traceback; every error it prints starts with
  `path:line:col:`;
- for a spec `check` accepts, `archc compile` writes a module that parses (`ast.parse`), imports, builds, and runs
  one forward (eval and training mode) on a small input, giving the output shape archc computed. If it does not,
  that is an archc bug.

Deterministic (`derandomize=True`): the same examples run every time, so a failure is reproducible.
"""

from __future__ import annotations

import ast
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from archc.compiler import compile_spec
from tests.conftest import Outcome, load_source, run_cli

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

SPEC_KEYWORDS = set("import block arch let if elif else for in meta input forward aux return and or not true false none".split())
OPS = ["conv", "linear", "batchnorm", "relu", "sigmoid", "tanh", "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"]
OPS += ["flatten", "dropout", "identity"]
OP_KEYWORDS = ["out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias", "out_features", "eps", "momentum"]
OP_KEYWORDS += ["affine", "inplace", "ceil_mode", "count_include_pad", "output_size", "start_dim", "p", "strid"]


# Lexical pieces.

COMMON_NAMES = ["a", "b", "c", "w", "n", "k", "s", "width", "planes", "stride", "scale", "cfg", "mode", "p", "t", "h", "stem", "body"]
COMMON_NAMES += ["head", "branch", "conv1", "bn", "act", "pool", "fc", "v", "y", "z", "out", "down", "num_classes", "Block", "B"]
NAME = st.one_of(
    st.sampled_from(COMMON_NAMES),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True),
).filter(lambda s: s not in SPEC_KEYWORDS)
# Definitions are named apart from everything else (a parameter named like a block shadows it: FOUND below).
DEFINITION_NAME = NAME.map(lambda s: f"Def_{s}")


def _float_text(f: float) -> str:
    text = repr(f)
    return text if re.fullmatch(r"\d+(\.\d+)?([eE][+-]?\d+)?", text) else "0.5"


NUMBER = st.one_of(
    st.sampled_from(["0", "1", "2", "3", "4", "8", "16", "32", "7", "0.5", "0.25", "0.0", "1e-5", "2.5E3", "1e400", "65536"]),
    st.sampled_from(["100000", "100001", "1000000000", str(2**63), str(10**30), "0.000001", "1E+2"]),
    st.integers(0, 300).map(str),
    st.floats(0, 1000, allow_nan=False, allow_infinity=False).map(_float_text),
)
STRING = st.sampled_from(['"a"', '"M"', '""', '"relu"', '"x y"', '"it\'s"', '"{0} %s"', '"\u00e9\u00d7"'])
CHANNELS = st.sampled_from(["4", "8", "16"])


@dataclass
class Scope:
    """What a generated expression may refer to."""

    values: list[str]  # names of values: parameters, lets, loop variables
    ints: list[str]  # those known to hold small positive ints
    in_block: bool
    lists: list[str] = field(default_factory=list)  # those known to hold lists of small positive ints


def value_expr(draw: st.DrawFn, scope: Scope, depth: int) -> str:
    """Any value expression of the grammar (`expr`/`texpr`), valid or not when evaluated."""
    kinds = ["number", "number", "string", "const", "neg"]
    if scope.values:
        kinds += ["name", "name"]
    if scope.in_block:
        kinds.append("in")
    if depth > 0:
        kinds += ["binop", "binop", "compare", "bool", "not", "cond", "tuple", "list", "index", "builtin", "paren"]
    kind = draw(st.sampled_from(kinds))

    def sub() -> str:
        return value_expr(draw, scope, depth - 1)

    if kind == "number":
        return draw(NUMBER)
    if kind == "string":
        return draw(STRING)
    if kind == "const":
        return draw(st.sampled_from(["true", "false", "none"]))
    if kind == "neg":
        return "-" + draw(st.sampled_from(["0", "1", "2", "8", "0.5", "1e-5"]))
    if kind == "name":
        return draw(st.sampled_from(scope.values))
    if kind == "in":
        return "in.channels"
    if kind == "binop":
        return f"({sub()} {draw(st.sampled_from(['+', '-', '*', '/', '//', '%']))} {sub()})"
    if kind == "compare":
        return f"({sub()} {draw(st.sampled_from(['==', '!=', '<', '<=', '>', '>=']))} {sub()})"
    if kind == "bool":
        return f"({sub()} {draw(st.sampled_from(['and', 'or']))} {sub()})"
    if kind == "not":
        return f"(not {sub()})"
    if kind == "cond":
        return f"({sub()} if {sub()} else {sub()})"
    if kind == "tuple":
        items = [sub() for _ in range(draw(st.integers(0, 3)))]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if kind == "list":
        items = [sub() for _ in range(draw(st.integers(0, 3)))]
        return "[" + ", ".join(items) + (draw(st.sampled_from(["", ","])) if items else "") + "]"
    if kind == "index":
        return f"({sub()})[{sub()}]"
    if kind == "builtin":
        func = draw(st.sampled_from(["int", "float", "min", "max", "abs", "len", "ceil", "range"]))
        return f"{func}({', '.join(sub() for _ in range(draw(st.integers(0, 3))))})"
    return f"({sub()})"


def channels(draw: st.DrawFn, scope: Scope) -> str:
    options = ["4", "8", "16", *scope.ints] + (["in.channels"] if scope.in_block else [])
    return draw(st.sampled_from(options))


def sane_keep(draw: st.DrawFn, scope: Scope) -> str:
    """A module that keeps the height and width (and is valid on any feature map)."""
    ch = channels(draw, scope)
    options = [
        f"conv({ch}, 3, padding = 1)",
        f"conv({ch}, 1)",
        f"conv({ch}, (1, 3), padding = (0, 1))",
        f"conv({ch}, 3, stride = 1, padding = 2, dilation = 2, bias = false)",
        "batchnorm()",
        "batchnorm(eps = 0.001, momentum = 0.01)",
        "relu()",
        "relu(inplace = true)",
        "sigmoid()",
        "tanh()",
        "identity()",
        "dropout(0.25)",
        "maxpool(3, stride = 1, padding = 1)",
        "avgpool(3, 1, 1)",
        "avgpool(3, stride = 1, padding = 1, count_include_pad = false)",
        f"seq(conv({ch}, 3, padding = 1, bias = false), batchnorm(), relu(inplace = true))",
        f"seq(a = conv({ch}, 1), b = relu())",
        "seq()",
    ]
    if scope.in_block:
        options.append("conv(in.channels, 3, padding = 1, groups = in.channels, bias = false)")
    return draw(st.sampled_from(options))


def sane_down(draw: st.DrawFn, scope: Scope) -> str:
    ch = channels(draw, scope)
    return draw(st.sampled_from(["maxpool(2)", f"conv({ch}, 3, stride = 2, padding = 1)", "avgpool(2, ceil_mode = true)"]))


def chaos_call(draw: st.DrawFn, scope: Scope, callees: list[str]) -> str:
    """A constructor call with random arguments, sometimes to an unknown name."""
    func = draw(st.one_of(st.sampled_from(OPS + callees + ["seq"]), NAME))
    args = [value_expr(draw, scope, 2) for _ in range(draw(st.integers(0, 3)))]
    kwargs = [f"{draw(st.sampled_from(OP_KEYWORDS))} = {value_expr(draw, scope, 1)}" for _ in range(draw(st.integers(0, 2)))]
    return f"{func}({', '.join(args + kwargs)})"


@dataclass
class BlockInfo:
    name: str
    params: list[tuple[str, str]]  # (name, default)
    forward: bool


def call_block(draw: st.DrawFn, block: BlockInfo, scope: Scope, chaos: int) -> str:
    """A call to a generated block: no arguments (defaults), or some, by position or keyword."""
    if not block.params or draw(st.booleans()):
        return f"{block.name}()"
    args = []
    for i, (name, default) in enumerate(block.params):
        if draw(st.integers(0, 2)) == 0:
            continue
        value = value_expr(draw, scope, 1) if chaos and draw(st.booleans()) else default
        if default in ("4", "8", "16") and scope.ints and draw(st.booleans()):
            value = draw(st.sampled_from(scope.ints + (["in.channels"] if scope.in_block else [])))
        if default in ("[8, 16]", "[4]") and scope.lists and draw(st.booleans()):
            value = draw(st.sampled_from(scope.lists))
        args.append(f"{name} = {value}" if i or draw(st.booleans()) else value)
    positional = [a for a in args if " = " not in a]
    keyword = [a for a in args if " = " in a]
    return f"{block.name}({', '.join(positional + keyword)})"


def member(draw: st.DrawFn, scope: Scope, blocks: list[BlockInfo], chaos: int) -> str:
    roll = draw(st.integers(0, 9))
    if chaos >= 2 and roll < 4 or chaos == 1 and roll == 0:
        return chaos_call(draw, scope, [b.name for b in blocks])
    if blocks and roll >= 7:
        return call_block(draw, draw(st.sampled_from(blocks)), scope, chaos)
    if roll == 6:
        return sane_down(draw, scope)
    return sane_keep(draw, scope)


def condition(draw: st.DrawFn, scope: Scope, chaos: int) -> str:
    if chaos and draw(st.booleans()):
        return value_expr(draw, scope, 2)
    options = ["true", "false"] + [f"{n} > 4" for n in scope.ints] + [f"{n} == 8 or {n} < 2" for n in scope.ints]
    if scope.in_block:
        options += ["in.channels != 8", "in.channels > 3 and in.channels < 16"]
    return draw(st.sampled_from(options))


def iterable(draw: st.DrawFn, scope: Scope, chaos: int) -> str:
    if chaos and draw(st.booleans()):
        return value_expr(draw, scope, 2)
    options = ["[8, 16]", "(4,)", "[]", "range(2)", "range(0)", "range(1, 3)", '[8, "M", 16]', "[(1, 8), (2, 4)]"]
    options += [f"range({n} // 4)" for n in scope.ints] + scope.lists + [f"{n} + [8]" for n in scope.lists]
    return draw(st.sampled_from(options))


def sequential_body(draw: st.DrawFn, scope: Scope, blocks: list[BlockInfo], chaos: int, depth: int, named: bool, indent: str) -> list[str]:
    """Statements of a body without a forward: lets, anonymous and named members, if/elif/else, for."""
    lines: list[str] = []
    kinds = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(["item", "item", "item", "named", "let", "if", "for"] if depth > 0 else ["item", "item", "named", "let"])
        )
        kinds.append(kind)
        if kind == "item" or (kind == "named" and not named):
            lines.append(indent + member(draw, scope, blocks, chaos))
        elif kind == "named":
            lines.append(f"{indent}{draw(NAME)} = {member(draw, scope, blocks, chaos)}")
        elif kind == "let":
            name = draw(NAME)
            if chaos or draw(st.booleans()):
                lines.append(f"{indent}let {name} = {value_expr(draw, scope, 2)}")
                scope.values.append(name)
            else:
                lines.append(f"{indent}let {name} = {draw(CHANNELS)}")
                scope.values.append(name)
                scope.ints.append(name)
        elif kind == "if":
            lines.append(f"{indent}if {condition(draw, scope, chaos)} {{")
            lines += sequential_body(draw, scope, blocks, chaos, depth - 1, named, indent + "    ")
            for _ in range(draw(st.integers(0, 1))):
                lines.append(f"{indent}}} elif {condition(draw, scope, chaos)} {{")
                lines += sequential_body(draw, scope, blocks, chaos, depth - 1, named, indent + "    ")
            if draw(st.booleans()):
                lines.append(f"{indent}}} else {{")
                lines += sequential_body(draw, scope, blocks, chaos, depth - 1, named, indent + "    ")
            lines.append(f"{indent}}}")
        else:
            var = draw(NAME)
            index = draw(st.one_of(st.none(), NAME))
            head = f"{index}, {var}" if index else var
            source = iterable(draw, scope, chaos)
            lines.append(f"{indent}for {head} in {source} {{")
            int_items = source in ("[8, 16]", "(4,)") or source.split(" ")[0] in scope.lists
            inner = Scope(
                scope.values + [var] + ([index] if index else []), scope.ints + ([var] if int_items else []), scope.in_block, scope.lists
            )
            lines += sequential_body(draw, inner, blocks, chaos, depth - 1, False, indent + "    ")
            lines.append(f"{indent}}}")
    if set(kinds) <= {"let"}:  # a body of lets only may compile to an empty Python block: FOUND below
        lines.append(indent + member(draw, scope, blocks, chaos))
    return lines


def tensor_expr(draw: st.DrawFn, arg: str, members: list[str], optional: list[str], scope: Scope, depth: int) -> str:
    """A forward expression: members applied, inline ops, `+`, `cat`, scalar `*`, `m?(t)`."""
    kinds = ["arg"] + (["member", "member"] if members else []) + (["optional"] if optional else [])
    if depth > 0:
        kinds += ["inline", "add", "cat", "scale"]
    kind = draw(st.sampled_from(kinds))

    def sub() -> str:
        return tensor_expr(draw, arg, members, optional, scope, depth - 1)

    if kind == "arg":
        return arg
    if kind == "member":
        return f"{draw(st.sampled_from(members))}({sub()})"
    if kind == "optional":
        return f"{draw(st.sampled_from(optional))}?({sub()})"
    if kind == "inline":
        op = draw(
            st.sampled_from(["relu({})", "relu({}, inplace = true)", "sigmoid({})", "tanh({})", "maxpool({}, 3, stride = 1, padding = 1)"])
        )
        return op.format(sub())
    if kind == "add":
        return f"{sub()} + {sub()}"
    if kind == "cat":
        return f"cat({', '.join(sub() for _ in range(draw(st.integers(1, 3))))})"
    scalar = draw(st.sampled_from(["0.5", "2", *scope.values])) if scope.values else "0.5"
    return f"{sub()} * {scalar}" if draw(st.booleans()) else f"{scalar} * {sub()}"


def forward_body(draw: st.DrawFn, scope: Scope, blocks: list[BlockInfo], chaos: int, indent: str, is_arch: bool) -> list[str]:
    """Named members and a forward that uses them: a chain, a residual, a concatenation or a random expression."""
    lines: list[str] = []
    arg = draw(st.sampled_from(["x", "x", "inp", "t"]))
    pattern = draw(st.sampled_from(["chain", "residual", "cat", "optional", "statements", "random"]))
    if pattern == "residual" and scope.in_block:
        scale = draw(st.sampled_from(["", " * 0.5", " * 2"] + [f" * {n}" for n in scope.ints]))
        lines.append(f"{indent}r = conv(in.channels, 3, padding = 1)")
        lines.append(f"{indent}forward({arg}) = relu({arg} + r({arg}){scale})")
        return lines
    count = draw(st.integers(1, 3))
    names = [f"m{i}" for i in range(count)]
    if chaos and draw(st.booleans()):
        names = [draw(NAME) for _ in range(count)]
    for name in names:
        lines.append(f"{indent}{name} = {member(draw, scope, blocks, chaos)}")
    optional: list[str] = []
    if pattern in ("optional", "random") or draw(st.integers(0, 4)) == 0:
        lines.append(f"{indent}if {condition(draw, scope, chaos)} {{")
        # Channel-preserving: sizes after an absent optional member that changes channels are wrong (FOUND below).
        keep = ["batchnorm()", "relu()", "identity()", "maxpool(3, stride = 1, padding = 1)", "dropout()"]
        keep += ["conv(in.channels, 3, padding = 1)", "seq(conv(in.channels, 1), batchnorm())"] if scope.in_block else []
        lines.append(f"{indent}    o = {draw(st.sampled_from(keep))}")
        lines.append(f"{indent}}}")
        optional.append("o")
    chain = arg
    for name in names:
        chain = f"{name}({chain})"
    if optional:
        chain = f"o?({chain})"
    if pattern == "cat":
        lines.append(f"{indent}forward({arg}) = cat({chain}, {arg})")
    elif pattern == "random":
        expr = tensor_expr(draw, arg, names, optional, scope, 3)
        lines.append(f"{indent}forward({arg}) = {expr}")
    elif pattern == "statements" or is_arch:
        lines.append(f"{indent}forward({arg}) {{")
        lines.append(f"{indent}    y = {chain}")
        lines.append(f"{indent}    y = relu(y)")
        if is_arch and draw(st.booleans()):
            lines.insert(0, f"{indent}h = seq(adaptive_avgpool((1, 1)), flatten(), linear(3))")
            lines.insert(1, f"{indent}if {condition(draw, scope, chaos)} {{")
            lines.insert(2, f"{indent}    side = seq(adaptive_avgpool((1, 1)), flatten(), linear(3))")
            lines.insert(3, f"{indent}}}")
            lines.append(f"{indent}    aux a1 = side?(y)")
            lines.append(f"{indent}    return h(y), a1")
        else:
            lines.append(f"{indent}    return y")
        lines.append(f"{indent}}}")
    else:
        lines.append(f"{indent}forward({arg}) = {chain}")
    return lines


def params(
    draw: st.DrawFn, scope: Scope, chaos: int, every_default: bool, taken: set[str] = frozenset()
) -> tuple[str, list[tuple[str, str]]]:
    out: list[tuple[str, str]] = []
    parts = []
    defaults = False
    for _ in range(draw(st.integers(0, 3))):
        name = draw(NAME)
        if name in scope.values or name in taken or re.fullmatch(r"(B|Block)\d", name):  # duplicates: FOUND below
            continue
        if chaos and draw(st.booleans()):
            default = value_expr(draw, scope, 2)
        else:
            default = draw(st.sampled_from(["8", "4", "16", "true", "false", '"relu"', "[8, 16]", "[4]", "0.5", "(3, 3)"]))
            if default in ("8", "4", "16"):
                scope.ints.append(name)
            if default in ("[8, 16]", "[4]"):
                scope.lists.append(name)
        scope.values.append(name)
        if every_default or defaults or draw(st.integers(0, 3)):  # no parameter without a default after one with: FOUND
            defaults = True
            parts.append(f"{name} = {default}")
            out.append((name, default))
        else:
            parts.append(name)
            out.append((name, draw(CHANNELS)))
    return ", ".join(parts) + draw(st.sampled_from(["", ","]) if parts else st.just("")), out


def class_name_for(arch_name: str) -> str:
    """The generated class name of an arch (archc.emit.torch.class_name_for)."""
    return arch_name if arch_name[:1].isupper() else "".join(part[:1].upper() + part[1:] for part in arch_name.split("_"))


@st.composite
def specs(draw: st.DrawFn) -> str:
    """A syntactically valid spec: some blocks, then the arch."""
    chaos = draw(st.sampled_from([0, 0, 0, 1, 1, 2]))
    blocks: list[BlockInfo] = []
    text: list[str] = []
    for i in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([f"Block{i}", f"B{i}"])) if not chaos or draw(st.booleans()) else draw(DEFINITION_NAME)
        scope = Scope([], [], True)
        param_text, param_list = params(draw, scope, chaos, every_default=False)
        if draw(st.booleans()):
            text.append(f"# {draw(st.sampled_from(['A block.', 'Docs: ' + chr(34) * 3, 'x']))}")
        text.append(f"block {name}({param_text}) {{")
        with_forward = draw(st.booleans())
        if with_forward:
            text += forward_body(draw, scope, blocks, chaos, "    ", is_arch=False)
        else:
            text += sequential_body(draw, scope, blocks, chaos, 2, True, "    ")
        text.append("}")
        blocks.append(BlockInfo(name, param_list, with_forward))
    arch_name = draw(st.sampled_from(["net", "model", "tiny_net"])) if not chaos else draw(NAME)
    if not class_name_for(arch_name).isidentifier():  # `arch _5x` makes `class 5x`: FOUND below
        arch_name = "net"
    scope = Scope([], [], False)
    # A parameter named like the arch's class shadows it (FOUND below): the class name is taken.
    param_text, _ = params(draw, scope, chaos, every_default=True, taken={class_name_for(arch_name)})
    meta = ""
    if draw(st.booleans()):
        entries = ['paper = "A paper"', "year = 2024", 'reference = "none"', "top1 = 71.5"]
        if scope.values:
            entries.append(f"knob = {draw(st.sampled_from(scope.values))}")
        meta = "    meta { " + ", ".join(draw(st.permutations(entries))[: draw(st.integers(1, len(entries)))]) + " }"
    c = draw(st.sampled_from(["3", "1", "4"]))
    hw = draw(st.sampled_from(["16", "32", "8"]))
    dims = [c, hw, hw]
    if chaos and draw(st.booleans()):
        dims[draw(st.integers(0, 2))] = value_expr(draw, scope, 1)
    input_line = f"    input ({', '.join(dims)})"
    if blocks and draw(st.integers(0, 3)) == 0:
        root = call_block(draw, draw(st.sampled_from(blocks)), scope, chaos)
        text.append(f"arch {arch_name}({param_text}) = {root} {{")
        text += [line for line in (meta, input_line) if line]
        text.append("}")
        return "\n".join(text) + "\n"
    text.append(f"arch {arch_name}({param_text}) {{")
    text += [line for line in (meta, input_line) if line]
    if draw(st.booleans()):
        text += forward_body(draw, scope, blocks, chaos, "    ", is_arch=True)
    else:
        text += sequential_body(draw, scope, blocks, chaos, 2, True, "    ")
        if draw(st.booleans()):
            text += ["    adaptive_avgpool((1, 1))", "    flatten()", f"    linear({draw(st.sampled_from(['10', '3']))})"]
    text.append("}")
    return "\n".join(text) + "\n"


# Targeted mutations of generated specs.

TOKEN = re.compile(r'\s+|"[^"\n]*"|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|//|==|!=|<=|>=|.', re.S)
ODD_TOKENS = ["0", "-1", str(10**30), "1e400", "0.5", "-", "(", ")", "{", "}", "[", "]", ",", "=", "?", ".", "in", "if", "for", "else"]
ODD_TOKENS += ["forward", "aux", "return", "let", "block", "arch", "import", '"', "#", "\\", "\u00d7", "\x00", "\u200b", "self", "__init__"]
ODD_TOKENS += ["seq(", "cat(", "x", "in.channels", "none", "true", "range(100001)", "[0] * 100001", "conv(8, 3)", "relu()"]


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    toks = [t for t in TOKEN.findall(draw(specs()))]
    for _ in range(draw(st.integers(1, 3))):
        words = [i for i, t in enumerate(toks) if not t.isspace()]
        if not words:
            break
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "insert", "truncate"]))
        i = draw(st.sampled_from(words))
        if kind == "delete":
            del toks[i]
        elif kind == "duplicate":
            toks.insert(i, toks[i])
        elif kind == "swap":
            j = draw(st.sampled_from(words))
            toks[i], toks[j] = toks[j], toks[i]
        elif kind == "replace":
            toks[i] = draw(st.sampled_from(ODD_TOKENS + [toks[k] for k in words]))
        elif kind == "insert":
            toks.insert(i, draw(st.sampled_from(ODD_TOKENS)) + " ")
        else:
            toks = toks[:i]
    return "".join(toks)


# The properties.


_GUTTER = re.compile(r"^\s*\d+ \| ")
_MENTIONS_ERROR = re.compile(r"\berror(\[E\d+\])?:")
_LOCATED = re.compile(r"^\S[^\n]*?:\d+:\d+: error\b")


def assert_cli_contract(outcome: Outcome, text: str) -> None:
    what = f"exit {outcome.code}\nstderr:\n{outcome.err[-3000:]}\nspec:\n{text}"
    assert outcome.code in (0, 1), what
    assert "Traceback" not in outcome.err + outcome.out, what
    assert "internal error" not in outcome.err, what
    if outcome.code == 1:
        headers = [line for line in outcome.err.splitlines() if _MENTIONS_ERROR.search(line) and not _GUTTER.match(line)]
        assert headers, f"no error message\n{what}"
        for line in headers:
            assert _LOCATED.match(line), f"an error line without `path:line:col:`: {line!r}\n{what}"


INT64_MAX = 2**63 - 1
RUN_LIMIT = 4_000_000  # elements of the largest activation, or parameters, a forward is run with


def assert_compiles_and_runs(path: Path, text: str, directory: Path) -> None:
    """For a spec `check` accepts: compile, parse, import, build, run forward in eval and training mode."""
    out_dir = directory / "out"
    outcome = run_cli("compile", "-o", str(out_dir), str(path))
    assert outcome.code == 0, f"check accepted the spec, compile did not: exit {outcome.code}\n{outcome.err}\nspec:\n{text}"
    source = (out_dir / f"{path.stem}.py").read_text(encoding="utf-8")
    what = f"spec:\n{text}\ngenerated:\n{source}"
    ast.parse(source)
    compiled = compile_spec(path)
    sizes = [d for node in compiled.arch.nodes for d in node.shape] + [compiled.params.params]
    if max(sizes) > INT64_MAX:
        return  # accepted sizes PyTorch cannot represent: a known bug (test_limits.py, OVERFLOW)
    module = load_source(source, path.stem, directory)
    if max([compiled.params.params] + [math.prod(node.shape) for node in compiled.arch.nodes]) > RUN_LIMIT:
        return  # valid, but too large to build and run here
    model = getattr(module, path.stem)()
    x = torch.randn(2, *compiled.arch.input_shape)
    model.eval()
    with torch.no_grad():
        y = model(x)
    expected = compiled.arch.nodes[compiled.arch.outputs[0]].shape
    assert isinstance(y, torch.Tensor) and list(y.shape) == [2, *expected], (
        f"output {getattr(y, 'shape', y)}, archc says {expected}\n{what}"
    )
    model.train()
    with torch.no_grad():
        model(x)


# Failures of bugs already recorded (FOUND below) while they are open: an example that hits one is not counted
# again, so that the properties keep looking for new bugs. Remove an entry once its bug is fixed.
KNOWN_FAILURES: dict[str, re.Pattern[str]] = {}


def known_failure(error: BaseException) -> str | None:
    text = f"{type(error).__name__}: {error}"
    return next((name for name, pattern in KNOWN_FAILURES.items() if pattern.search(text)), None)


def check_and_run(text: str, run_accepted: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path = directory / "spec.arch"
        path.write_text(text, encoding="utf-8")
        try:
            outcome = run_cli("check", str(path))
            assert_cli_contract(outcome, text)
            if outcome.code == 0 and run_accepted:
                assert_compiles_and_runs(path, text, directory)
        except BaseException as e:
            if known_failure(e) is None:
                raise


_DOC_EXAMPLE = """\
# A residual block.
block Res(width = 8, scale = 0.5) {
    if in.channels != width {
        proj = conv(width, 1, bias = false)
    }
    body = seq(conv(width, 3, padding = 1, bias = false), batchnorm(), relu(inplace = true))
    forward(x) = relu(body(x) * scale + proj?(x))
}

block Stage(cfg = [8, "M", 16], n = 2) {
    for i, v in cfg {
        if v == "M" {
            maxpool(2)
        } else {
            Res(v)
        }
    }
    for j in range(n) {
        identity()
    }
}

arch net(num_classes = 10, aux_logits = true) {
    meta { paper = "x", year = 2024 }
    input (3, 16, 16)
    stem = Stage()
    head = seq(adaptive_avgpool((1, 1)), flatten(), linear(num_classes))
    if aux_logits {
        side = seq(adaptive_avgpool((1, 1)), flatten(), linear(num_classes))
    }
    forward(x) {
        x = stem(x)
        aux a1 = side?(x)
        return head(x), a1
    }
}
"""


@SETTINGS
@given(specs())
@example(_DOC_EXAMPLE)
def test_generated_specs_keep_the_cli_contract_and_compile_to_running_code(text: str) -> None:
    check_and_run(text, run_accepted=True)


@settings(SETTINGS, max_examples=100)
@given(mutated_specs())
def test_mutated_generated_specs_keep_the_cli_contract(text: str) -> None:
    check_and_run(text, run_accepted=False)


def test_the_generator_makes_valid_specs_often() -> None:
    """The strategy is not vacuous: a good share of what it makes is accepted, and some of it is rejected."""
    codes = []

    @settings(SETTINGS)
    @given(specs())
    def collect(text: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "spec.arch"
            path.write_text(text, encoding="utf-8")
            codes.append(run_cli("check", str(path)).code)

    collect()
    assert codes.count(0) >= len(codes) // 5, codes
    assert codes.count(1) >= 1, codes


# Bugs the properties found, minimised, now fixed and kept as regression cases: each is asserted with the right
# behaviour (a located error, or a module that imports, builds and runs). An open one is marked xfail(strict) with
# its reason until archc is fixed. The generator still steers clear of the first seven (unique parameter names,
# defaults once one is given, definitions named apart, parameters not named like the arch's class, arch names whose
# class name is an identifier, optional members that keep the channels).

_SHADOW = "the generated `def {fn}({param}=...)` shadows the class `{cls}` it then calls (TypeError: 'int' object is not callable)"
FOUND = {
    "duplicate_arch_parameter": (
        "arch net(a = 8, a = 8) {\n    input (3, 16, 16)\n    conv(4, 3, padding = 1)\n}\n",
        "archc bug: check accepts a parameter declared twice; the generated module does not parse "
        "(SyntaxError: duplicate argument 'a' in function definition)",
    ),
    "duplicate_block_parameter": (
        "block B(a = 8, a = 4) {\n    conv(a, 1)\n}\narch net() {\n    input (3, 8, 8)\n    B()\n}\n",
        "archc bug: check accepts a block parameter declared twice; the generated module does not parse "
        "(SyntaxError: duplicate argument 'a' in function definition)",
    ),
    "parameter_without_default_after_one_with": (
        "block B(a = 8, b) {\n    conv(b, 1)\n}\narch net() {\n    input (3, 8, 8)\n    B(b = 4)\n}\n",
        "archc bug: check accepts a parameter without a default after one with a default; the generated module does not "
        "parse (SyntaxError: non-default argument follows default argument)",
    ),
    "arch_parameter_named_like_a_block": (
        "block Stem() {\n    relu()\n}\narch net(Stem = 4) = Stem() {\n    input (3, 8, 8)\n}\n",
        "archc bug: check accepts an arch parameter named like a block: " + _SHADOW.format(fn="spec", param="Stem", cls="Stem"),
    ),
    "arch_parameter_named_like_the_arch_class": (
        "arch TrEm(TrEm = 16) {\n    input (3, 8, 8)\n    conv(TrEm, 1)\n}\n",
        "archc bug: check accepts an arch parameter named like the arch's generated class: "
        + _SHADOW.format(fn="spec", param="TrEm", cls="TrEm"),
    ),
    "arch_name_underscore_digit": (
        "arch _5net() {\n    input (3, 8, 8)\n    relu()\n}\n",
        "archc bug: check accepts `arch _5net`, whose class name class_name_for('_5net') is `5net`: the generated "
        "module does not parse (SyntaxError: invalid decimal literal)",
    ),
    "size_after_an_absent_optional_member": (
        "arch net(w = 4) {\n    input (3, 8, 8)\n    h = seq(adaptive_avgpool((1, 1)), flatten(), linear(3))\n"
        "    if w > 4 {\n        o = conv(w, 1)\n    }\n    forward(x) = h(o?(x))\n}\n",
        "archc bug: wrong generated code: the size after `o?(x)` is written as if `o` always existed (`nn.Linear(w, 3)`), "
        "but with w = 4 `o` is absent and 3 channels reach the linear (RuntimeError: mat1 and mat2 shapes cannot be "
        "multiplied (2x3 and 4x3)); it should be `w if w > 4 else 3`",
    ),
    "elif_false_after_a_runtime_if": (
        "block B(n = 8) {\n    if n > 4 {\n        conv(8, 1)\n    } elif false {\n        relu()\n    }\n    relu()\n}\n"
        "arch net() {\n    input (3, 8, 8)\n    B()\n}\n",
        "archc bug: a constant-false `elif` after an `if` on a constructor argument, in a body that tracks `channels`, "
        "compiles to an empty `else:` (IndentationError: expected an indented block); _fill_empty_blocks is skipped "
        "when the code mentions `channels`",
    ),
    "else_holding_only_a_let": (
        "arch net(n = 16) {\n    input (3, 8, 8)\n    if n == 8 {\n        conv(8, 3)\n    } else {\n        let k = 1\n    }\n"
        "    conv(4, 1)\n}\n",
        "archc bug: an `else` holding only a constant `let`, in a body that tracks `channels`, compiles to an empty "
        "`else:` (IndentationError: expected an indented block)",
    ),
    "conv_stride_none": (
        "arch net() {\n    input (3, 16, 16)\n    conv(8, 3, stride = none)\n}\n",
        "archc bug: exit 3, internal error TypeError (unsupported operand type(s) for //: 'int' and 'NoneType'): "
        "`stride = none` passes the argument check (pools take it), and conv's shape rule divides by it",
    ),
    "seq_item_not_a_module_in_an_untaken_branch": (
        "block B(planes = 8, stride = 1) {\n    c = conv(planes, 3, padding = 1)\n    if stride != 1 {\n"
        "        d = seq(conv(planes, 1), ())\n    }\n    forward(x) = c(d?(x))\n}\n"
        "arch net() {\n    input (3, 8, 8)\n    B()\n}\n",
        "archc bug (found by tests/test_robustness.py): exit 3, internal error AttributeError ('tuple' object has no "
        "attribute 'kind'): the emitter, writing the branch elaboration did not take, took `()` for a seq item",
    ),
    "repeat_by_negative_huge_count": (
        "arch net(c = [8] * -1000000000000000000000000000000) {\n    input (1, 8, 8)\n    relu()\n}\n",
        "archc bug: exit 3, internal error OverflowError (cannot fit 'int' into an index-sized integer): the "
        "MAX_SEQUENCE guard of `list * int` lets negative counts through, and Python cannot repeat by -10**30",
    ),
}


@pytest.mark.parametrize("text", [pytest.param(text, id=name) for name, (text, _) in FOUND.items()])
def test_found_by_the_fuzzer(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path = directory / "spec.arch"
        path.write_text(text, encoding="utf-8")
        outcome = run_cli("check", str(path))
        assert_cli_contract(outcome, text)
        if outcome.code == 0:
            assert_compiles_and_runs(path, text, directory)


def test_known_failures_are_found_cases() -> None:
    """Every failure the properties skip as known is one of the FOUND cases."""
    assert set(KNOWN_FAILURES) <= set(FOUND)
