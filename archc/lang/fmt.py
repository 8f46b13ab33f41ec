"""`archc fmt`: every spec in one canonical layout, comments kept (docs/language.md, "Canonical layout").

The layout is computed from Lark's concrete tree (every token kept, parentheses included) rather than from the AST,
which forgets parentheses, `elif` and where `meta`, `input` and `forward` stood. Each statement becomes a list of
text pieces and bracket groups; a line that does not fit `WIDTH` breaks its groups from the right, one item per line
with a trailing comma, and a group written with a trailing comma (or holding a comment) stays broken, so the output
formats to itself. Comments, which the grammar ignores, are collected by a lexer callback and put back by
position: a comment after code on its line follows the last token before it, a comment on a line of its own stands
before the next token's line.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree

from archc.errors import normalize_newlines
from archc.lang.parse import GRAMMAR, parse_file, parse_text

WIDTH = 140  # as the project's Python (pyproject's ruff line-length)
INDENT = "    "
_OPENERS = ("{", "(", "[")
_CLOSERS = ("}", ")", "]")


@dataclass
class _T:
    """Text standing for one source token (pos: its offset), or added by the formatter (pos None)."""

    text: str
    pos: int | None = None


@dataclass
class _Group:
    """A bracketed, comma-separated list: flat on one line, or one item per line with a trailing comma."""

    open: _T
    items: list[list[_Part]]
    close: _T
    force: bool  # written with a trailing comma, or holding a comment: stays broken
    pad: bool = False  # `{ a = 1 }`: spaces inside the brackets when flat


_Part = _T | _Group


@dataclass
class _Line:
    indent: int
    pieces: list[_T]
    starts: str = ""  # "stmt", "import" or "def" when the line begins a statement or a top-level item
    comments: list[str] = field(default_factory=list)

    @property
    def code(self) -> str:
        return "".join(p.text for p in self.pieces)


@dataclass
class _Entry:
    """An output line: code (or a comment line's text), its trailing comment, and where it came from."""

    code: str
    comment: str
    first: int | None  # the source offset of its first token or comment
    starts: str
    is_comment: bool


@cache
def _parser() -> tuple[Lark, list[Token]]:
    found: list[Token] = []
    lark = Lark(
        GRAMMAR.read_text(),
        parser="lalr",
        keep_all_tokens=True,
        maybe_placeholders=True,
        start="start",
        lexer_callbacks={"COMMENT": found.append},
    )
    return lark, found


def _concrete(text: str) -> tuple[Tree[Token], list[Token]]:
    lark, found = _parser()
    found.clear()
    tree = lark.parse(text)
    comments = list(found)
    found.clear()
    return tree, comments


def _flat_len(parts: list[_Part]) -> int:
    return sum(len(p.text) for p in _flatten(parts))


def _flatten(parts: list[_Part]) -> list[_T]:
    out: list[_T] = []
    for p in parts:
        if isinstance(p, _T):
            out.append(p)
            continue
        out.append(p.open)
        if p.pad and p.items:
            out.append(_T(" "))
        for i, item in enumerate(p.items):
            if i:
                out.append(_T(", "))
            out.extend(_flatten(item))
        if p.pad and p.items:
            out.append(_T(" "))
        out.append(p.close)
    return out


def _layout(parts: list[_Part], indent: int, starts: str = "") -> list[_Line]:
    """One logical line as physical lines: flat if it fits, else its groups broken from the right."""
    groups = [i for i, p in enumerate(parts) if isinstance(p, _Group) and p.items]
    forced = {i for i in groups if _forced(parts[i])}
    broken = set(forced)
    for k in range(len(groups) + 1):
        broken = forced | set(groups[len(groups) - k :])
        if _fits(parts, indent, broken):
            break
    lines: list[_Line] = []
    current = _Line(indent, [], starts)
    for i, p in enumerate(parts):
        if i not in broken:
            current.pieces.extend(_flatten([p]))
            continue
        assert isinstance(p, _Group)
        current.pieces.append(p.open)
        lines.append(current)
        for item in p.items:
            lines.extend(_layout([*item, _T(",")], indent + 1))
        current = _Line(indent, [p.close])
    lines.append(current)
    return lines


def _fits(parts: list[_Part], indent: int, broken: set[int]) -> bool:
    width = len(INDENT) * indent
    for i, p in enumerate(parts):
        if i in broken:
            assert isinstance(p, _Group)
            if width + len(p.open.text) > WIDTH:
                return False
            width = len(INDENT) * indent + len(p.close.text)
        else:
            width += _flat_len([p])
    return width <= WIDTH


def _forced(part: _Part) -> bool:
    if isinstance(part, _T):
        return False
    return part.force or any(_forced(p) for item in part.items for p in item)


class _Formatter:
    def __init__(self, comments: list[Token]) -> None:
        self.comment_pos = [c.start_pos or 0 for c in comments]
        self.lines: list[_Line] = []

    # Helpers

    def _has_comment(self, start: int | None, end: int | None) -> bool:
        if start is None or end is None:
            return False
        i = bisect.bisect_right(self.comment_pos, start)
        return i < len(self.comment_pos) and self.comment_pos[i] < end

    def _group(self, open_tok: Token, children: Sequence[object], close_tok: Token, item: object, pad: bool = False) -> _Group:
        """A group of the comma-separated `children` (tokens and trees), each item made by `item`."""
        items: list[list[_Part]] = []
        trailing = False
        for child in children:
            if child is None:
                continue
            if isinstance(child, Token) and child.type == "COMMA":
                trailing = True
                continue
            trailing = False
            items.append(item(child))  # type: ignore[operator]
        force = trailing or self._has_comment(open_tok.start_pos, close_tok.start_pos)
        return _Group(_T(str(open_tok), open_tok.start_pos), items, _T(str(close_tok), close_tok.start_pos), force, pad)

    def _emit(self, parts: list[_Part], indent: int, starts: str = "stmt") -> None:
        self.lines.extend(_layout(parts, indent, starts))

    # Top level

    def module(self, tree: Tree[Token]) -> None:
        for item in tree.children:
            assert isinstance(item, Tree)
            if item.data == "import_decl":
                kw, path = item.children
                assert isinstance(kw, Token) and isinstance(path, Token)
                self._emit([_T("import ", kw.start_pos), _T(str(path), path.start_pos)], 0, "import")
            else:
                self.definition(item)

    def definition(self, tree: Tree[Token]) -> None:
        kids = [c for c in tree.children if c is not None]
        kw, name, lpar = kids[0], kids[1], kids[2]
        assert isinstance(kw, Token) and isinstance(name, Token) and isinstance(lpar, Token)
        i = 3
        params: list[object] = []
        if isinstance(kids[i], Tree) and kids[i].data == "params":  # type: ignore[union-attr]
            params = list(kids[i].children)  # type: ignore[union-attr]
            i += 1
        rpar = kids[i]
        assert isinstance(rpar, Token)
        parts: list[_Part] = [_T(f"{kw} ", kw.start_pos), _T(str(name), name.start_pos)]
        parts.append(self._params(lpar, params, rpar))
        i += 1
        if isinstance(kids[i], Token):  # `= Block(...)`
            eq = kids[i]
            parts.append(_T(" = ", eq.start_pos))  # type: ignore[union-attr]
            parts.extend(self.expr(kids[i + 1]))
            i += 2
        body = kids[i]
        assert isinstance(body, Tree)
        self.body(parts, body.children, 0, "def")

    def _params(self, lpar: Token, params: list[object], rpar: Token) -> _Part:
        if not [p for p in params if p is not None]:
            return _T("()", lpar.start_pos)
        return self._group(lpar, params, rpar, self.param)

    def param(self, tree: object) -> list[_Part]:
        assert isinstance(tree, Tree)
        kids = [c for c in tree.children if c is not None]
        name = kids[0]
        assert isinstance(name, Token)
        parts: list[_Part] = [_T(str(name), name.start_pos)]
        if len(kids) > 1:
            parts.append(_T(" = ", kids[1].start_pos))  # type: ignore[union-attr]
            parts.extend(self.expr(kids[2]))
        return parts

    def open_body(self, header: list[_Part], children: Sequence[object], indent: int, starts: str) -> tuple[list[_Part], str]:
        """Emit `header {` and the statements one level in; return the parts that begin the closing line (`}`) and
        what that line starts, for the caller to complete (`} else {`) and emit. A comment-free empty body stays on
        the header line: `header {}`."""
        lbrace, *stmts, rbrace = children
        assert isinstance(lbrace, Token) and isinstance(rbrace, Token)
        if not stmts and not self._has_comment(lbrace.start_pos, rbrace.start_pos):
            return [*header, _T(" {", lbrace.start_pos), _T("}", rbrace.start_pos)], starts
        self._emit([*header, _T(" {", lbrace.start_pos)], indent, starts)
        for stmt in stmts:
            self.stmt(stmt, indent + 1)
        return [_T("}", rbrace.start_pos)], ""

    def body(self, header: list[_Part], children: Sequence[object], indent: int, starts: str = "stmt") -> None:
        close, close_starts = self.open_body(header, children, indent, starts)
        self._emit(close, indent, close_starts)

    # Statements

    def stmt(self, tree: object, indent: int) -> None:
        assert isinstance(tree, Tree)
        kind = tree.data
        kids = [c for c in tree.children if c is not None]
        if kind in ("let_stmt", "member_stmt", "quoted_member_stmt", "assign_stmt", "aux_stmt"):
            parts: list[_Part] = []
            for k in kids[:-2]:  # `let`, `aux` and the name
                assert isinstance(k, Token)
                parts.append(_T(f"{k} ", k.start_pos) if k.type not in ("NAME", "STRING") else _T(str(k), k.start_pos))
            eq = kids[-2]
            assert isinstance(eq, Token)
            parts.append(_T(" = ", eq.start_pos))
            parts.extend(self.expr(kids[-1]))
            self._emit(parts, indent)
        elif kind == "unpack_stmt":
            parts = []
            for k in kids[:-1]:
                assert isinstance(k, Token)
                text = {"COMMA": ", ", "EQUAL": " = "}.get(k.type, str(k))
                parts.append(_T(text, k.start_pos))
            parts.extend(self.expr(kids[-1]))
            self._emit(parts, indent)
        elif kind == "item_stmt":
            self._emit(self.expr(kids[0]), indent)
        elif kind == "return_stmt":
            kw = kids[0]
            assert isinstance(kw, Token)
            parts = [_T("return ", kw.start_pos)]
            for k in kids[1:]:
                if isinstance(k, Token) and k.type == "COMMA":
                    parts.append(_T(", ", k.start_pos))
                else:
                    parts.extend(self.expr(k))
            self._emit(parts, indent)
        elif kind in ("if_stmt", "forward_if"):
            self.if_stmt(kids, indent)
        elif kind in ("for_stmt", "forward_for"):
            parts = []
            for k in kids[:-2]:
                assert isinstance(k, Token)
                if k.type == "COMMA":
                    parts.append(_T(", ", k.start_pos))
                elif k.type == "NAME":
                    parts.append(_T(str(k), k.start_pos))
                elif str(k) == "for":
                    parts.append(_T("for ", k.start_pos))
                else:  # in
                    parts.append(_T(" in ", k.start_pos))
            parts.extend(self.expr(kids[-2]))
            body = kids[-1]
            assert isinstance(body, Tree)
            self.body(parts, body.children, indent)
        elif kind == "meta_stmt":
            kw, lbrace, *entries, rbrace = kids
            assert isinstance(kw, Token) and isinstance(lbrace, Token) and isinstance(rbrace, Token)
            if not entries:
                self._emit([_T("meta ", kw.start_pos), _T("{}", lbrace.start_pos)], indent)
            else:
                self._emit([_T("meta ", kw.start_pos), self._group(lbrace, entries, rbrace, self.meta_entry, pad=True)], indent)
        elif kind == "input_stmt":
            kw, lpar, *dims, rpar = kids
            assert isinstance(kw, Token) and isinstance(lpar, Token) and isinstance(rpar, Token)
            self._emit([_T("input ", kw.start_pos), self._group(lpar, dims, rpar, self.expr)], indent)
        elif kind == "forward_def":
            kw, lpar, params, rpar, *rest = kids
            assert isinstance(kw, Token) and isinstance(lpar, Token) and isinstance(params, Tree) and isinstance(rpar, Token)
            header: list[_Part] = [_T("forward", kw.start_pos), self._params(lpar, list(params.children), rpar)]
            if isinstance(rest[0], Token) and rest[0].type == "EQUAL":
                self._emit([*header, _T(" = ", rest[0].start_pos), *self.expr(rest[1])], indent)
            else:
                self.body(header, rest, indent)
        elif kind in ("init_stmt", "init_if"):
            kw, *rest = kids
            assert isinstance(kw, Token)
            opening: list[_Part] = [_T("init", kw.start_pos)]
            if kind == "init_if":
                opening = [_T("if ", kw.start_pos), *self.expr(rest[0])]
                rest = rest[1:]
            self.body(opening, rest, indent)
        elif kind == "init_rule":
            *target, eq, value = kids
            parts = [_T(str(k), k.start_pos) for k in target if isinstance(k, Token)]
            assert isinstance(eq, Token) and isinstance(value, Tree)
            parts.append(_T(" = ", eq.start_pos))
            if value.data == "init_params":
                lpar, *params, rpar = value.children
                assert isinstance(lpar, Token) and isinstance(rpar, Token)
                parts.append(self._group(lpar, params, rpar, self.arg))
            else:
                parts.extend(self.expr(value))
            self._emit(parts, indent)
        else:  # pragma: no cover - the grammar has no other statement
            raise AssertionError(kind)

    def meta_entry(self, tree: object) -> list[_Part]:
        assert isinstance(tree, Tree)
        name, eq, value = tree.children
        assert isinstance(name, Token) and isinstance(eq, Token)
        return [_T(str(name), name.start_pos), _T(" = ", eq.start_pos), *self.expr(value)]

    def if_stmt(self, kids: list[object], indent: int) -> None:
        kw, test, body, *clauses = kids
        assert isinstance(kw, Token) and isinstance(body, Tree)
        line, starts = self.open_body([_T("if ", kw.start_pos), *self.expr(test)], body.children, indent, "stmt")
        for clause in clauses:
            assert isinstance(clause, Tree)
            ckw, *rest = clause.children
            assert isinstance(ckw, Token)
            if clause.data in ("elif_clause", "forward_elif"):
                header = [*line, _T(" elif ", ckw.start_pos), *self.expr(rest[0])]
            else:
                header = [*line, _T(" else", ckw.start_pos)]
            body = rest[-1]
            assert isinstance(body, Tree)
            line, starts = self.open_body(header, body.children, indent, starts)
        self._emit(line, indent, starts)

    # Expressions

    def expr(self, node: object) -> list[_Part]:
        if isinstance(node, Token):  # pragma: no cover - every expression token sits in a rule
            return [_T(str(node), node.start_pos)]
        assert isinstance(node, Tree)
        kind = node.data
        kids = [c for c in node.children if c is not None]
        first = kids[0]
        pos = first.start_pos if isinstance(first, Token) else None
        if kind in ("number", "string", "true", "false", "none", "name"):
            return [_T(str(first), pos)]
        if kind == "input_attr":
            return [_T("in." + str(kids[2]), pos)]
        if kind == "layer_attr":
            return [_T(f"{kids[0]}.{kids[-1]}", pos)]
        if kind in ("binop", "compare", "or_op", "and_op"):
            left, op, right = kids
            assert isinstance(op, Token)
            return [*self.expr(left), _T(f" {op} ", op.start_pos), *self.expr(right)]
        if kind == "not_op":
            return [_T("not ", pos), *self.expr(kids[1])]
        if kind == "neg":
            return [_T("-", pos), *self.expr(kids[1])]
        if kind == "cond":
            then, kw_if, test, kw_else, orelse = kids
            assert isinstance(kw_if, Token) and isinstance(kw_else, Token)
            return [*self.expr(then), _T(" if ", kw_if.start_pos), *self.expr(test), _T(" else ", kw_else.start_pos), *self.expr(orelse)]
        if kind == "index":
            target, lsqb, index, rsqb = kids
            assert isinstance(lsqb, Token) and isinstance(rsqb, Token)
            return [*self.expr(target), _T("[", lsqb.start_pos), *self.expr(index), _T("]", rsqb.start_pos)]
        if kind == "subscripts":
            target, lsqb, *items, rsqb = kids
            assert isinstance(lsqb, Token) and isinstance(rsqb, Token)
            parts = [*self.expr(target), _T("[", lsqb.start_pos)]
            values = [k for k in items if not (isinstance(k, Token) and k.type == "COMMA")]
            for i, value in enumerate(values):
                parts += [*([_T(", ", None)] if i else []), *self.expr(value)]
            return [*parts, _T("]", rsqb.start_pos)]
        if kind in ("slice", "slice_step"):
            # `a:b`, `::2`: bounds and colons without spaces, as Python's formatters write a simple slice.
            parts = []
            for kid in node.children:
                if isinstance(kid, Token) and kid.type == "COLON":
                    parts.append(_T(":", kid.start_pos))
                elif kid is not None:
                    parts += self.expr(kid)
            return parts
        if kind == "atom":  # parentheses
            lpar, inner, rpar = kids
            assert isinstance(rpar, Token)
            return [_T("(", pos), *self.expr(inner), _T(")", rpar.start_pos)]
        if kind in ("tuple_lit", "list_lit"):
            opener, *items, closer = kids
            assert isinstance(opener, Token) and isinstance(closer, Token)
            values = [k for k in items if not (isinstance(k, Token) and k.type == "COMMA")]
            if not values:
                return [_T(str(opener) + str(closer), pos)]
            if kind == "tuple_lit" and len(values) == 1:  # `(a,)`: the comma makes the tuple, so it never breaks
                return [_T("(", pos), *self.expr(values[0]), _T(",)", closer.start_pos)]
            return [self._group(opener, items, closer, self.expr)]
        if kind == "item_call":
            # `convs[i](x)`: the item, then its arguments as a call's.
            target, lsqb, index, rsqb, lpar, *rest = kids
            assert isinstance(lsqb, Token) and isinstance(rsqb, Token) and isinstance(lpar, Token)
            item = [*self.expr(target), _T("[", lsqb.start_pos), *self.expr(index), _T("]", rsqb.start_pos)]
            close = rest[-1]
            assert isinstance(close, Token)
            if len(rest) == 1:
                return [*item, _T("()", lpar.start_pos)]
            assert isinstance(rest[0], Tree) and rest[0].data == "args"
            return [*item, self._group(lpar, list(rest[0].children), close, self.arg)]
        if kind == "call":
            name = kids[0]
            assert isinstance(name, Token)
            optional = "?" if isinstance(kids[1], Token) and kids[1].type == "OPTIONAL" else ""
            lpar, rpar = kids[1 + len(optional)], kids[-1]
            assert isinstance(lpar, Token) and isinstance(rpar, Token)
            args = kids[2 + len(optional) : -1]
            head = _T(str(name) + optional, pos)
            if not args:
                return [head, _T("()", lpar.start_pos)]
            assert isinstance(args[0], Tree) and args[0].data == "args"
            return [head, self._group(lpar, list(args[0].children), rpar, self.arg)]
        raise AssertionError(kind)  # pragma: no cover - the grammar has no other expression

    def arg(self, node: object) -> list[_Part]:
        if isinstance(node, Tree) and node.data in ("kwarg", "string_kwarg", "init_param"):
            name, eq, value = node.children
            assert isinstance(name, Token) and isinstance(eq, Token)
            return [_T(str(name), name.start_pos), _T(" = ", eq.start_pos), *self.expr(value)]
        return self.expr(node)


def _render(lines: list[_Line], tree: Tree[Token], comments: list[Token]) -> str:
    """The physical lines with the comments put back and blank lines where the layout keeps them."""
    # Where each source element (token or comment) stands, and the line of the one before it.
    elements = sorted([*tree.scan_values(lambda v: isinstance(v, Token)), *comments], key=lambda t: t.start_pos or 0)
    prev_line: dict[int, int] = {}
    prev_is_token_on_line: dict[int, bool] = {}
    for i, element in enumerate(elements):
        before = elements[i - 1] if i else None
        prev_line[element.start_pos or 0] = (before.end_line or 0) if before is not None else 0
        prev_is_token_on_line[element.start_pos or 0] = before is not None and before.type != "COMMENT" and before.end_line == element.line
    line_of = {element.start_pos or 0: element.line or 0 for element in elements}

    placed: list[tuple[int, int]] = sorted((p.pos, i) for i, line in enumerate(lines) for p in line.pieces if p.pos is not None)
    placed_pos = [p for p, _ in placed]
    before_line: dict[int, list[Token]] = {}  # standalone comments, by the index of the line they precede
    for c in comments:
        pos = c.start_pos or 0
        if prev_is_token_on_line[pos]:
            j = bisect.bisect_left(placed_pos, pos) - 1
            lines[placed[j][1]].comments.append(str(c).rstrip())
        else:
            j = bisect.bisect_right(placed_pos, pos)
            before_line.setdefault(placed[j][1] if j < len(placed) else len(lines), []).append(c)

    entries: list[_Entry] = []
    for i in range(len(lines) + 1):
        following = lines[i] if i < len(lines) else None
        for c in before_line.get(i, []):
            indent = 0
            if following is not None:
                indent = following.indent + (1 if following.code.startswith(_CLOSERS) else 0)
            entries.append(_Entry(INDENT * indent + str(c).rstrip(), "", c.start_pos, "", True))
        if following is not None:
            first = next((p.pos for p in following.pieces if p.pos is not None), None)
            comment = "  ".join(following.comments)
            entries.append(_Entry(INDENT * following.indent + following.code, comment, first, following.starts, False))

    blank = [False] * len(entries)
    for j, e in enumerate(entries):
        if j == 0 or e.first is None or not (e.starts or e.is_comment):
            continue
        previous = entries[j - 1]
        opens = not previous.is_comment and previous.code.endswith(_OPENERS)
        blank[j] = line_of[e.first] - prev_line[e.first] >= 2 and not opens
    last_top = ""
    for j, e in enumerate(entries):
        if e.starts not in ("def", "import"):
            continue
        if e.starts == "def" or last_top == "def":
            k = j
            while k > 0 and entries[k - 1].is_comment and not entries[k - 1].code.startswith(" ") and not blank[k]:
                k -= 1
            if k > 0:
                blank[k] = True
        last_top = e.starts

    # Trailing comments of consecutive lines line up, two spaces after the longest of those lines.
    column = [0] * len(entries)
    j = 0
    while j < len(entries):
        k = j
        while k < len(entries) and entries[k].comment and (k == j or not blank[k]):
            k += 1
        if k > j:
            width = max(len(e.code) for e in entries[j:k]) + 2
            column[j:k] = [width] * (k - j)
        j = max(k, j + 1)

    out: list[str] = []
    for j, e in enumerate(entries):
        if blank[j]:
            out.append("")
        out.append(e.code.ljust(column[j]) + e.comment if e.comment else e.code)
    return "".join(line + "\n" for line in out)


def format_text(text: str, file: str = "<spec>") -> str:
    """The canonical layout of a spec's text; raises ArchError (with its location) if it does not parse. Lines end
    with "\n" in it, whatever ended them in `text`, and a byte-order mark is dropped."""
    text = normalize_newlines(text).removeprefix("\ufeff")
    parse_text(text, file)
    tree, comments = _concrete(text)
    f = _Formatter(comments)
    f.module(tree)
    return _render(f.lines, tree, comments)


def format_file(path: Path) -> tuple[str, str]:
    """The file's text and its canonical layout; raises ArchError if it cannot be read or parsed."""
    from archc.compiler import _too_deep

    try:
        parse_file(path)
        text = path.read_bytes().decode("utf-8")
        return text, format_text(text, str(path))
    except RecursionError:
        raise _too_deep(path) from None
