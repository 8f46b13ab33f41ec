"""Lark parse tree -> AST (archc/lang/syntax.py), every node stamped with its file, line and column."""

from __future__ import annotations

import hashlib
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from archc.errors import CODES, SOURCES, ArchError, Loc, normalize_newlines, too_deep
from archc.files import read_spec_bytes
from archc.lang import syntax as S

GRAMMAR = Path(__file__).with_name("grammar.lark")

# Token names as a person would say them, for syntax errors.
_TOKEN_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "LPAR": "'('",
    "RPAR": "')'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "EQUAL": "'='",
    "DOT": "'.'",
    "COMPARE": "a comparison",
    "ADDOP": "'+' or '-'",
    "MULOP": "'*', '/', '//' or '%'",
    "MINUS": "'-'",
    "OPTIONAL": "'?'",
    "$END": "the end of the file",
}


def _cache_file(grammar: str) -> str | bool:
    """Where Lark keeps the analysed grammar between runs (building the LALR tables takes longer than parsing
    ResNet-152): `$XDG_CACHE_HOME/archc/` or `~/.cache/archc/`, private to the user. Lark stores the grammar's
    hash in the file and rebuilds it when the grammar or Lark changes; without a writable directory, no cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(base, "archc")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError:
        return False
    if not os.access(directory, os.W_OK):
        return False
    return os.path.join(directory, f"grammar-{hashlib.sha256(grammar.encode()).hexdigest()[:16]}.lark-cache")


@cache
def _parser() -> Lark:
    grammar = GRAMMAR.read_text()
    return Lark(
        grammar,
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
        start=["start", "texpr"],
        cache=_cache_file(grammar),
    )


class _ToAst(Transformer[Token, Any]):
    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def _loc(self, meta: Any) -> Loc:
        return Loc(self.file, getattr(meta, "line", 1), getattr(meta, "column", 1))

    def _tok(self, tok: Token) -> Loc:
        return Loc(self.file, tok.line or 1, tok.column or 1)

    # Top level

    @v_args(meta=True)
    def start(self, meta: Any, items: list[Any]) -> S.Module:
        imports = [i for i in items if isinstance(i, S.Import)]
        defs = [d for d in items if isinstance(d, S.Definition)]
        return S.Module(self.file, imports, defs)

    @v_args(meta=True, inline=True)
    def import_decl(self, meta: Any, path: Token) -> S.Import:
        return S.Import(self._tok(path), path[1:-1])

    def _definition(self, kind: str, meta: Any, name: Token, params: list[S.Param] | None, body: list[S.Stmt]) -> S.Definition:
        d = S.Definition(self._loc(meta), kind, str(name), params or [], [])
        for stmt in body:
            if isinstance(stmt, S.Forward):
                if d.forward is not None:
                    raise ArchError(
                        "E007",
                        "a second forward in one definition",
                        stmt.loc,
                        "keep one forward",
                        [(d.forward.loc, "the first forward is here")],
                    )
                d.forward = stmt
            elif isinstance(stmt, S.Meta):
                d.meta.update(stmt.entries)
            elif isinstance(stmt, S.Init):
                if d.init is not None:
                    raise ArchError(
                        "E007",
                        "a second init in one definition",
                        stmt.loc,
                        "put all the rules in one init",
                        [(d.init.loc, "the first init is here")],
                    )
                d.init = stmt
            elif isinstance(stmt, S.InputDecl):
                if kind != "arch":
                    raise ArchError(
                        "E007",
                        "`input` belongs in an arch, not a block",
                        stmt.loc,
                        "blocks take their input shape from where they are used",
                    )
                d.input = stmt
            else:
                d.body.append(stmt)
        return d

    @v_args(meta=True, inline=True)
    def block_def(self, meta: Any, name: Token, params: Any, body: list[S.Stmt]) -> S.Definition:
        return self._definition("block", meta, name, params, body)

    @v_args(meta=True, inline=True)
    def arch_def(self, meta: Any, name: Token, params: Any, root: S.Call | None, body: list[S.Stmt]) -> S.Definition:
        d = self._definition("arch", meta, name, params, body)
        d.root = root
        if root is not None and (d.body or d.forward or d.init):
            first = d.forward or d.init or d.body[0]
            raise ArchError(
                "E007", "an arch that is a block instance has no members or forward of its own", first.loc, "put them in the block"
            )
        return d

    def params(self, items: list[S.Param | None]) -> list[S.Param]:
        params = [p for p in items if p is not None]
        first: dict[str, S.Param] = {}
        defaulted: S.Param | None = None
        for p in params:
            if p.name in first:
                raise ArchError(
                    "E008",
                    f"parameter `{p.name}` is declared twice",
                    p.loc,
                    "give each parameter its own name",
                    [(first[p.name].loc, f"`{p.name}` is first declared here")],
                )
            first[p.name] = p
            if p.default is not None:
                defaulted = defaulted or p
            elif defaulted is not None:
                raise ArchError(
                    "E009",
                    f"parameter `{p.name}` has no default but follows `{defaulted.name}`, which has one",
                    p.loc,
                    f"put `{p.name}` before the parameters with defaults, or give it a default",
                    [(defaulted.loc, f"`{defaulted.name}` has a default")],
                )
        return params

    @v_args(inline=True)
    def param(self, name: Token, default: S.Expr | None) -> S.Param:
        return S.Param(self._tok(name), str(name), default)

    def body(self, items: list[S.Stmt]) -> list[S.Stmt]:
        return items

    # Statements

    @v_args(meta=True, inline=True)
    def let_stmt(self, meta: Any, name: Token, value: S.Expr) -> S.Let:
        return S.Let(self._loc(meta), str(name), value)

    @v_args(meta=True, inline=True)
    def member_stmt(self, meta: Any, name: Token, value: S.Expr) -> S.Member:
        return S.Member(self._loc(meta), str(name), value)

    @v_args(meta=True, inline=True)
    def quoted_member_stmt(self, meta: Any, name: Token, value: S.Expr) -> S.Member:
        key = self._name_pieces(name)
        if all(isinstance(piece, str) for piece in key):
            literal = "".join(key)  # type: ignore[arg-type]
            _check_module_name(literal, self._tok(name))
            return S.Member(self._loc(meta), literal, value)
        return S.Member(self._loc(meta), None, value, key)

    def _name_pieces(self, token: Token) -> list[str | S.Expr]:
        """The text and `{expr}` parts of a quoted member name, each expression parsed where it stands."""
        text = str(token)[1:-1]
        pieces: list[str | S.Expr] = []
        at = 0
        while at < len(text):
            start = text.find("{", at)
            if start < 0:
                pieces.append(text[at:])
                break
            end = text.find("}", start)
            if end < 0:
                raise ArchError(
                    "E074", f'"{text}" opens a `{{` it does not close', self._tok(token), "write `{expr}` for a computed part, e.g. {i + 1}"
                )
            if start > at:
                pieces.append(text[at:start])
            column = (token.column or 1) + 1 + start + 1
            pieces.append(_parse_piece(text[start + 1 : end], self.file, token.line or 1, column))
            at = end + 1
        return pieces

    @v_args(meta=True, inline=True)
    def item_stmt(self, meta: Any, value: S.Expr) -> S.Member:
        return S.Member(self._loc(meta), None, value)

    @v_args(meta=True)
    def if_stmt(self, meta: Any, items: list[Any]) -> S.If:
        test, body, *rest = items
        orelse: list[S.Stmt] = rest[-1] if rest and rest[-1] is not None else []
        for clause in reversed([r for r in rest[:-1]]):
            orelse = [S.If(clause[0].loc, clause[0], clause[1], orelse)]
        return S.If(self._loc(meta), test, body, orelse)

    def elif_clause(self, items: list[Any]) -> tuple[S.Expr, list[S.Stmt]]:
        return items[0], items[1]

    def else_clause(self, items: list[Any]) -> list[S.Stmt]:
        return list(items[0])

    # A forward's `if` builds the same node as a body's; its branches hold forward statements.
    forward_if = if_stmt
    forward_elif = elif_clause
    forward_else = else_clause
    forward_body = body

    @v_args(meta=True, inline=True)
    def for_stmt(self, meta: Any, first: Token, second: Token | None, iterable: S.Expr, body: list[S.Stmt]) -> S.For:
        if second is None:
            return S.For(self._loc(meta), None, str(first), iterable, body)
        return S.For(self._loc(meta), str(first), str(second), iterable, body)

    forward_for = for_stmt

    @v_args(meta=True)
    def meta_stmt(self, meta: Any, items: list[Any]) -> S.Meta:
        return S.Meta(self._loc(meta), dict(i for i in items if i is not None))

    @v_args(inline=True)
    def meta_entry(self, name: Token, value: S.Expr) -> tuple[str, S.Expr]:
        return str(name), value

    @v_args(meta=True)
    def input_stmt(self, meta: Any, items: list[S.Expr]) -> S.InputDecl:
        return S.InputDecl(self._loc(meta), items)

    @v_args(meta=True)
    def init_stmt(self, meta: Any, items: list[Any]) -> S.Init:
        return S.Init(self._loc(meta), items)

    @v_args(meta=True)
    def init_if(self, meta: Any, items: list[Any]) -> S.InitIf:
        test, *body = items
        return S.InitIf(self._loc(meta), test, body)

    @v_args(meta=True)
    def init_rule(self, meta: Any, items: list[Any]) -> S.InitRule:
        *names, value = items
        # `a.1.0` lexes as a name and the number 1.0: each number is a seq item's index.
        rule = S.InitRule(self._loc(meta), [part for n in names for part in str(n).split(".")], {})
        if isinstance(value, S.Call):
            rule.params["weight"] = value
            rule.kwarg_locs["weight"] = value.loc
            return rule
        for name, call in value:
            if name in rule.params:
                raise ArchError(
                    "E015",
                    f"`{name}` initialised twice",
                    self._tok(name),
                    "give each parameter one init function",
                    [(rule.kwarg_locs[str(name)], "first given here")],
                )
            rule.params[str(name)] = call
            rule.kwarg_locs[str(name)] = self._tok(name)
        return rule

    def init_params(self, items: list[Any]) -> list[tuple[Token, S.Call]]:
        return [i for i in items if i is not None]

    @v_args(inline=True)
    def init_param(self, name: Token, call: S.Call) -> tuple[Token, S.Call]:
        return name, call

    @v_args(meta=True)
    def forward_def(self, meta: Any, items: list[Any]) -> S.Forward:
        params, *rest = items
        loc = self._loc(meta)
        arg = params[0].name
        if len(rest) == 1 and isinstance(rest[0], S.Expr):
            return S.Forward(loc, arg, [S.Return(rest[0].loc, [rest[0]])], params)
        return S.Forward(loc, arg, list(rest), params)

    @v_args(meta=True, inline=True)
    def assign_stmt(self, meta: Any, name: Token, value: S.Expr) -> S.Assign:
        return S.Assign(self._loc(meta), str(name), value)

    @v_args(meta=True)
    def unpack_stmt(self, meta: Any, items: list[Any]) -> S.Unpack:
        *names, value = items
        return S.Unpack(self._loc(meta), [str(n) for n in names], value)

    @v_args(meta=True, inline=True)
    def aux_stmt(self, meta: Any, name: Token, value: S.Expr) -> S.Assign:
        return S.Assign(self._loc(meta), str(name), value, aux=True)

    @v_args(meta=True)
    def return_stmt(self, meta: Any, items: list[S.Expr]) -> S.Return:
        return S.Return(self._loc(meta), items)

    # Expressions

    @v_args(meta=True, inline=True)
    def cond(self, meta: Any, then: S.Expr, test: S.Expr, orelse: S.Expr) -> S.Cond:
        return S.Cond(self._loc(meta), then, test, orelse)

    @v_args(meta=True, inline=True)
    def or_op(self, meta: Any, left: S.Expr, right: S.Expr) -> S.BoolOp:
        return S.BoolOp(self._loc(meta), "or", left, right)

    @v_args(meta=True, inline=True)
    def and_op(self, meta: Any, left: S.Expr, right: S.Expr) -> S.BoolOp:
        return S.BoolOp(self._loc(meta), "and", left, right)

    @v_args(meta=True, inline=True)
    def not_op(self, meta: Any, operand: S.Expr) -> S.Not:
        return S.Not(self._loc(meta), operand)

    @v_args(meta=True, inline=True)
    def compare(self, meta: Any, left: S.Expr, op: Token, right: S.Expr) -> S.Compare:
        return S.Compare(self._loc(meta), str(op), left, right)

    @v_args(meta=True, inline=True)
    def binop(self, meta: Any, left: S.Expr, op: Token, right: S.Expr) -> S.BinOp:
        return S.BinOp(self._tok(op), str(op), left, right)

    @v_args(meta=True, inline=True)
    def neg(self, meta: Any, operand: S.Expr) -> S.Neg:
        return S.Neg(self._loc(meta), operand)

    @v_args(meta=True, inline=True)
    def index(self, meta: Any, target: S.Expr, index: S.Expr) -> S.Index:
        return S.Index(self._loc(meta), target, index)

    @v_args(meta=True)
    def subscripts(self, meta: Any, items: list[S.Expr | None]) -> S.Index:
        target, *subscripts = items
        assert target is not None
        return S.Index(self._loc(meta), target, S.TupleLit(self._loc(meta), [i for i in subscripts if i is not None]))

    @v_args(meta=True, inline=True)
    def slice(self, meta: Any, start: S.Expr | None, stop: S.Expr | None) -> S.Slice:
        return S.Slice(self._loc(meta), start, stop, None)

    @v_args(meta=True, inline=True)
    def slice_step(self, meta: Any, start: S.Expr | None, stop: S.Expr | None, step: S.Expr | None) -> S.Slice:
        return S.Slice(self._loc(meta), start, stop, step)

    @v_args(inline=True)
    def number(self, tok: Token) -> S.Const:
        text = str(tok)
        try:
            value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:  # Python refuses int() of more than 4300 digits
            raise ArchError("E062", "number too large", self._tok(tok), "no size in a network needs that many digits") from None
        if value == float("inf"):
            raise ArchError(
                "E062",
                f"number too large: {_short(text)} is beyond a float's range (about 1.8e308)",
                self._tok(tok),
                "no size or rate in a network comes near such a number",
            )
        return S.Const(self._tok(tok), value)

    @v_args(inline=True)
    def string(self, tok: Token) -> S.Const:
        return S.Const(self._tok(tok), str(tok)[1:-1])

    @v_args(meta=True)
    def true(self, meta: Any, _: list[Any]) -> S.Const:
        return S.Const(self._loc(meta), True)

    @v_args(meta=True)
    def false(self, meta: Any, _: list[Any]) -> S.Const:
        return S.Const(self._loc(meta), False)

    @v_args(meta=True)
    def none(self, meta: Any, _: list[Any]) -> S.Const:
        return S.Const(self._loc(meta), None)

    @v_args(inline=True)
    def name(self, tok: Token) -> S.Name:
        return S.Name(self._tok(tok), str(tok))

    @v_args(meta=True, inline=True)
    def input_attr(self, meta: Any, attr: Token) -> S.InputAttr:
        if str(attr) != "channels":
            raise ArchError("E018", f"`in` has no property `{attr}`", self._tok(attr), "a block can read `in.channels`")
        return S.InputAttr(self._loc(meta), str(attr))

    @v_args(meta=True, inline=True)
    def layer_attr(self, meta: Any, _layer: Token, attr: Token) -> S.LayerAttr:
        return S.LayerAttr(self._loc(meta), str(attr))

    @v_args(meta=True)
    def tuple_lit(self, meta: Any, items: list[S.Expr | None]) -> S.TupleLit:
        return S.TupleLit(self._loc(meta), [i for i in items if i is not None])

    @v_args(meta=True)
    def list_lit(self, meta: Any, items: list[S.Expr | None]) -> S.ListLit:
        return S.ListLit(self._loc(meta), [i for i in items if i is not None])

    @v_args(meta=True, inline=True)
    def call(self, meta: Any, func: Token, optional: Token | None, args: Any) -> S.Call:
        return self._call(self._tok(func), str(func), optional is not None, args)

    def _call(self, loc: Loc, func: str, optional: bool, args: Any) -> S.Call:
        positional: list[S.Expr] = []
        keywords: dict[str, S.Expr] = {}
        kwarg_locs: dict[str, Loc] = {}
        for a in args or []:
            if isinstance(a, tuple):
                key, value, key_loc, quoted = a
                if quoted:
                    _check_seq_key(func, key, key_loc)
                if key in keywords:
                    raise ArchError(
                        "E015",
                        f"argument `{key}` given twice",
                        value.loc,
                        "give each argument once",
                        [(kwarg_locs[key], "first given here")],
                    )
                kwarg_locs[key] = key_loc
                keywords[key] = value
            elif keywords:
                raise ArchError("E017", "a positional argument after a keyword argument", a.loc, "put positional arguments first")
            else:
                positional.append(a)
        return S.Call(loc, func, positional, keywords, optional, kwarg_locs)

    @v_args(meta=True, inline=True)
    def item_call(self, meta: Any, target: S.Expr, index: S.Expr, args: Any) -> S.Call:
        if not isinstance(target, S.Name):
            raise ArchError("E081", "only a member's item is applied by index", target.loc, "write `convs[i](x)`, `convs` a member")
        call = self._call(target.loc, target.name, False, args)
        call.item = index
        return call

    def args(self, items: list[Any]) -> list[Any]:
        return [i for i in items if i is not None]

    @v_args(inline=True)
    def kwarg(self, name: Token, value: S.Expr) -> tuple[str, S.Expr, Loc, bool]:
        return str(name), value, self._tok(name), False

    @v_args(inline=True)
    def string_kwarg(self, name: Token, value: S.Expr) -> tuple[str, S.Expr, Loc, bool]:
        return str(name)[1:-1], value, self._tok(name), True


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}…{text[-10:]}"


def _parse_piece(text: str, file: str, line: int, column: int) -> S.Expr:
    """A `{expr}` of a quoted member name, its locations moved to where it stands in the file."""
    source = SOURCES.get(file)
    try:
        expr = _parse(text, file, "texpr")
    except ArchError as e:
        loc = e.loc or Loc(file, 1, 1)
        raise ArchError(e.code, e.message, Loc(file, line, column + loc.column - 1), e.hint) from None
    finally:
        if source is not None:
            SOURCES[file] = source  # the file's text, which errors quote, not the piece's
    assert isinstance(expr, S.Expr)
    for node in S.walk(expr):
        node.loc = Loc(file, line, column + node.loc.column - 1)
    if isinstance(expr, S.Call):
        expr.kwarg_locs = {k: Loc(file, line, column + v.column - 1) for k, v in expr.kwarg_locs.items()}
    return expr


def _check_module_name(key: str, loc: Loc) -> None:
    """A name PyTorch accepts for a submodule: not empty, no "."."""
    if not key or "." in key:
        raise ArchError(
            "E074",
            f'"{key}" cannot name a module: PyTorch\'s module names are not empty and hold no "."',
            loc,
            'a "." separates the levels of a state_dict key: nest seq(...)s for nested names',
        )


def _check_seq_key(func: str, key: str, loc: Loc) -> None:
    """A quoted name names a `seq` entry, and must be one PyTorch accepts as a submodule name."""
    if func != "seq":
        raise ArchError(
            "E074",
            f'a quoted name ("{key}") names a seq entry; `{func}` takes parameter names',
            loc,
            f"write `{key} = ...` if it is a parameter" if key.isidentifier() else "use seq(...) for modules named by strings",
        )
    if not key or "." in key:
        raise ArchError(
            "E074",
            f'"{key}" cannot name a module: PyTorch\'s module names are not empty and hold no "."',
            loc,
            'a "." separates the levels of a state_dict key: nest seq(...)s for nested names',
        )


def _describe_expected(expected: set[str]) -> str:
    # `layer` before a dot (an init argument's `layer.groups`) is a name too, which NAME says.
    words = {_TOKEN_WORDS.get(t, repr(t.strip('"').lower()) if t.isupper() else repr(t)) for t in expected - {"LAYER"}}
    # A missing closing bracket is the likeliest fix, so it is named first.
    ordered = sorted(words, key=lambda w: (w not in ("'}'", "')'", "']'"), w))
    if len(ordered) > 10:
        ordered = ordered[:10] + ["..."]
    return ", ".join(ordered)


def parse_text(text: str, file: str) -> S.Module:
    """Parse spec source text; raises ArchError with the location of the first syntax error."""
    module = _parse(text, file, "start")
    assert isinstance(module, S.Module)
    return module


def parse_expression(text: str, file: str) -> S.Expr:
    """Parse one expression (a `-D NAME=VALUE` value)."""
    expr = _parse(text, file, "texpr")
    assert isinstance(expr, S.Expr)
    return expr


def _parse(text: str, file: str, start: str) -> Any:
    # Lark counts lines by "\n" only: a CR-only or CRLF file is read with "\n" line ends, so that the line and column
    # of an error and the line an error quotes (errors.source_lines) agree. A UTF-8 byte-order mark is no character.
    text = normalize_newlines(text)
    if start == "start":
        text = text.removeprefix("\ufeff")
    SOURCES[file] = text
    try:
        tree = _parser().parse(text, start=start)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, file) from None
    try:
        return _ToAst(file).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, ArchError):
            raise e.orig_exc from None
        if isinstance(e.orig_exc, RecursionError):
            raise too_deep(_deepest(tree, file)) from None
        raise
    except RecursionError:
        raise too_deep(_deepest(tree, file)) from None


def _syntax_error(e: UnexpectedInput, text: str, file: str) -> ArchError:
    """A Lark error as an ArchError, with a help line fitting the case (Python habits get archc's spelling)."""
    loc = Loc(file, max(e.line, 1), max(e.column, 1))
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        return ArchError("E004", "unexpected end of file", loc, f"expected {_describe_expected(set(e.expected))}")
    if isinstance(e, UnexpectedToken):
        expected = f"expected {_describe_expected(set(e.expected))}"
        line = text.split("\n")[loc.line - 1] if loc.line <= text.count("\n") + 1 else ""
        before = line[: loc.column - 1]
        token = str(e.token)
        hint = expected
        if token == "=" and "COMPARE" in e.expected and re.search(r"\b(if|elif)\b", before):
            hint = "compare with `==`: `=` names a member or a value"
        elif token == "." and (m := re.search(r"\b(nn|torch|F|nn\.functional)\s*$", before)):
            hint = _torch_hint(m[1], line[loc.column :])
        elif token == ":" and "LSQB" not in e.expected:  # a slice's `:` stands in brackets; elsewhere, Python's body
            hint = _character_hint(":", line[loc.column - 1 :])
        return ArchError("E001", f"unexpected {token!r}", loc, hint)
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream if e.pos_in_stream is not None else -1
        char = text[pos] if 0 <= pos < len(text) else "?"
        rest = text[pos : text.find("\n", pos) if "\n" in text[pos:] else len(text)]
        if char == '"':
            body = re.match(r'"[^"\n]*', rest)
            backslash = body[0].find("\\") if body else -1
            if backslash >= 0:
                escape = rest[backslash : backslash + 2]
                return ArchError(
                    "E002",
                    f"unknown escape `{escape}` in a string: archc strings have no escapes",
                    Loc(file, loc.line, loc.column + backslash),
                    'a string holds any characters but `"`, `\\` and line breaks, as they are',
                )
            return ArchError("E003", "unterminated string", loc, 'a string ends with `"` on the same line')
        return ArchError("E002", f"unexpected character {char!r}", loc, _character_hint(char, rest))
    return ArchError("E001", "syntax error", loc)


def _character_hint(char: str, rest: str) -> str:
    """The help line of an unexpected character: archc's spelling for Python's."""
    if char == "'":
        quoted = re.match(r"'([^'\"]*)'", rest)
        return f'strings take double quotes: "{quoted[1]}"' if quoted else 'strings take double quotes: "..."'
    if char == ";":
        return "archc needs no `;`: a statement ends where the next begins (write one per line)"
    if char == ":":
        return "a body is written in braces, `if c { ... }`, not after `:`"
    if char in "!&|":
        return "archc writes `not`, `and` and `or`, and compares with `==` and `!=`"
    return "names, numbers, strings and the operators of the language reference"


def _torch_hint(prefix: str, rest: str) -> str:
    """The help line for `nn.Conv2d(...)`: ops are called by archc's names."""
    from archc.ops import OPS

    # `rest` follows the first ".": `Conv2d(...)`, or `nn.ReLU()` after `torch.`; the op is the chain's last name.
    chain = re.match(r"\s*[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*", rest)
    written = re.sub(r"\s+", "", chain[0]) if chain else ""
    name = written.rpartition(".")[2]
    key = re.sub(r"[123]d$", "", name.lower()).replace("_", "")
    spelling = {op.replace("_", ""): op for op in [*OPS, "cat"]}
    spelling["sequential"] = "seq"
    if key in spelling:
        return f"archc calls ops by its own names: `{spelling[key]}(...)` for `{prefix}.{written}` (docs/language.md lists them)"
    return f"archc calls ops by its own names, without `{prefix}.`: `conv(...)` for `nn.Conv2d` (docs/language.md lists them)"


def _deepest(tree: Tree[Token], file: str) -> Loc | None:
    """Where the parse tree nests deepest (walked with an explicit stack: the tree is too deep for recursion)."""
    best: tuple[int, Loc | None] = (-1, None)
    stack: list[tuple[Tree[Token] | Token | None, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if node is None:  # an optional part left out
            continue
        at = node if isinstance(node, Token) else node.meta
        line, column = getattr(at, "line", None), getattr(at, "column", None)
        if depth > best[0] and isinstance(line, int) and isinstance(column, int):
            best = (depth, Loc(file, line, column))
        if isinstance(node, Tree):
            stack.extend((child, depth + 1) for child in node.children)
    return best[1]


def parse_file(path: Path) -> S.Module:
    """Read and parse a spec file. A file not named `.arch` that does not parse is E006, which quotes none of it (a
    syntax error's snippet would print a line of whatever file it is)."""
    try:
        return _parse_file(path)
    except ArchError as e:
        if path.suffix == ".arch" or e.code == "E006":
            raise
        SOURCES.pop(str(path), None)
        at = f" ({CODES[e.code]} at line {e.loc.line})" if e.loc is not None else ""
        raise ArchError(
            "E006", f"cannot read {path} as a spec: its name does not end in .arch and it does not parse{at}", None, "specs are .arch files"
        ) from None


def _parse_file(path: Path) -> S.Module:
    data = read_spec_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        # Lines and columns counted as the parser counts them: "\r\n" and "\r" end lines, a byte-order mark is no column.
        head = data[: e.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n").removeprefix(b"\xef\xbb\xbf")
        line = head.count(b"\n") + 1
        column = len(head[head.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
        raise ArchError("E005", "the file is not valid UTF-8", Loc(str(path), line, column), "save the spec as UTF-8 text") from None
    return parse_text(text, str(path))
