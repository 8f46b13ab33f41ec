"""A Pygments lexer for .arch specs, so documentation highlights them (```arch fences in Sphinx or MkDocs).

Registered as the `pygments.lexers` entry point `arch` in pyproject.toml: `pygments.lexers.get_lexer_by_name("arch")`
and `pygmentize -l arch spec.arch` find it once archc is installed. Nothing else in archc imports this module, so the
compile path does not load Pygments.
"""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Whitespace

from archc.ops import OPS
from archc.sema.evaluate import BUILTINS
from archc.sema.inits import INIT_FUNCTIONS

# The words of archc/lang/grammar.lark, by role (tests/test_editors.py holds them to the grammar).
DECLARATIONS = ("block", "arch")
KEYWORDS = ("import", "let", "if", "elif", "else", "for", "in", "meta", "input", "forward", "aux", "return", "init")
WORD_OPERATORS = ("and", "or", "not")
CONSTANTS = ("true", "false", "none")
# What a spec can call without defining it: the ops, `seq`, `cat`, the value builtins and the init functions.
BUILTIN_CALLS = tuple(sorted({*(n for n, op in OPS.items() if not op.syntax_only), *BUILTINS, *INIT_FUNCTIONS, "seq", "cat"}))


class ArchLexer(RegexLexer):
    """The .arch language of archc (docs/language.md)."""

    name = "arch"
    aliases: ClassVar[list[str]] = ["arch", "archc"]
    filenames: ClassVar[list[str]] = ["*.arch"]
    mimetypes: ClassVar[list[str]] = ["text/x-arch"]

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"[^"\\\n]*"', String.Double),
            (r"(block|arch)(\s+)([A-Za-z_][A-Za-z0-9_]*)", bygroups(Keyword.Declaration, Whitespace, Name.Class)),  # type: ignore[no-untyped-call]
            (r"(in)(\.)(channels)\b", bygroups(Keyword, Punctuation, Name.Attribute)),  # type: ignore[no-untyped-call]
            (words(DECLARATIONS, suffix=r"\b"), Keyword.Declaration),
            (words(WORD_OPERATORS, suffix=r"\b"), Operator.Word),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (words(BUILTIN_CALLS, suffix=r"(?=\s*\??\s*\()"), Name.Builtin),
            (r"[A-Za-z_][A-Za-z0-9_]*(?=\s*\??\s*\()", Name.Function),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r"\d+\.\d+([eE][+-]?\d+)?|\d+[eE][+-]?\d+", Number.Float),
            (r"\d+", Number.Integer),
            (r"==|!=|<=|>=|//|[<>+\-*/%=?]", Operator),
            (r"[(){}\[\],.:]", Punctuation),
        ]
    }
