"""One error type for everything a user can get wrong, carrying a stable code, where it happened, notes and a hint.

Every error has a code `E###` from `CODES`, the one catalogue (docs/errors.md explains each). Codes are grouped by
tens: E00x reading and syntax, E01x names and calls, E02x definitions and members, E03x shapes, E04x values,
E05x imports, E06x limits, E07x generated Python, E08x the forward's data flow, E09x command-line usage,
E10x training.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Loc:
    """A position in a spec file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# The catalogue: every code a user can meet, with its short title. A code never changes meaning; retired codes
# are not reused.
CODES: dict[str, str] = {
    # Reading and syntax
    "E001": "unexpected token",
    "E002": "unexpected character",
    "E003": "unterminated string",
    "E004": "unexpected end of file",
    "E005": "the file is not UTF-8",
    "E006": "cannot read the spec file",
    "E007": "a definition part in the wrong place",
    "E008": "parameter declared twice",
    "E009": "parameter without a default after one with",
    # Names and calls
    "E010": "unknown name",
    "E011": "unknown op, block or member",
    "E012": "unknown argument",
    "E013": "missing argument",
    "E014": "too many arguments",
    "E015": "argument given twice",
    "E016": "wrong kind of argument",
    "E017": "positional argument after a keyword argument",
    "E018": "`in` outside a block, or an unknown property of it",
    "E019": "a module where a value belongs, or a value where a module belongs",
    # Definitions and members
    "E020": "member declared twice",
    "E021": "member never used",
    "E022": "member absent for these arguments",
    "E023": "named member in a loop",
    "E024": "unnamed member in a block with a forward",
    "E025": "block with no members and no forward",
    "E026": "definition given twice",
    "E027": "definition named like a built-in",
    "E028": "not exactly one arch in the spec",
    "E029": "arch without an input shape",
    # Shapes
    "E030": "shapes that do not broadcast",
    "E031": "shape mismatch at `cat`",
    "E032": "feature map smaller than the kernel",
    "E033": "groups do not divide the channels",
    "E034": "a last-dimension op on a feature map",
    "E035": "a feature-map op on flat features or a permuted map",
    "E036": "shared member applied to a different shape",
    "E037": "pooling padding over half the kernel",
    "E038": "dimension out of range (flatten, softmax)",
    "E039": "matrix product operands that do not meet (matmul, attention)",
    # Values
    "E040": "division by zero",
    "E041": "index out of range",
    "E042": "type error in an expression",
    "E043": "comparison of a size known only at run time",
    "E044": "input size not a positive integer",
    "E045": "bad call of a builtin",
    # Imports
    "E050": "imported file missing",
    "E051": "import outside the spec's folder",
    # Limits
    "E060": "nesting too deep",
    "E061": "too many nodes",
    "E062": "value too large",
    "E063": "recursion that does not end",
    # Generated Python
    "E070": "name taken by Python or PyTorch",
    "E071": "spec file name unusable as a module name",
    "E072": "arch class name taken",
    "E073": "instances disagree on a size",
    "E074": "quoted name outside seq or unusable as a module name",
    # The forward's data flow
    "E080": "an operator or operand tensors do not take",
    "E081": "member, `cat` or inline op applied to the wrong arguments",
    "E082": "op with weights used inline",
    "E083": "wrong outputs of a forward",
    "E084": "a forward loop archc does not take",
    "E085": "list index out of range",
    "E086": "a list of tensors where a tensor is expected",
    "E087": "forward loop bound not a build-time integer",
    "E088": "bad expression of a fixed tensor (`buffer`)",
    "E089": "tensor indexed by what is not an integer buffer",
    # Command-line usage
    "E090": "malformed -D definition",
    "E091": "not a directory",
    "E092": "unknown diagram option",
    "E093": "Graphviz missing or failing",
    "E094": "unknown reference model",
    "E095": "weights file unusable",
    "E096": "output file not written by archc",
    "E097": "two specs write one output file",
    "E098": "output not writable",
    # Training (`archc train`)
    "E100": "training data not found",
    "E101": "no usable checkpoint to resume from",
    "E102": "spec unfit for the training data",
    "E103": "device not available",
    # Weight initialisation (`init`)
    "E110": "unknown init function",
    "E111": "unknown target of an init rule",
    "E112": "bad argument of an init function",
    # Importing a model (`archc import`)
    "E120": "model the language cannot express",
    "E121": "model torch.fx cannot trace",
}

# A note: where (or None) and what, e.g. where an operand of a mismatched `+` was made.
Note = tuple[Loc | None, str]


class ArchError(Exception):
    """A user error: `file:line:col: error[E###]: message`, the source line, a caret, notes, and a hint."""

    def __init__(
        self, code: str, message: str, loc: Loc | None = None, hint: str | None = None, notes: Iterable[Note] | None = None
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.loc = loc
        self.hint = hint
        self.notes: list[Note] = list(notes or [])

    def render(self) -> str:
        """The error as the CLI prints it: the spec's text in it (names, strings, the quoted line) with control and
        formatting characters escaped, so none reaches the terminal, and overlong words cut."""
        head = f"error[{self.code}]: {_printable(self.message)}"
        lines = [head if self.loc is None else f"{_escaped(str(self.loc))}: {head}"]
        if self.loc is not None:
            lines += _snippet(self.loc)
        for loc, text in self.notes:
            if loc is None:
                lines.append(f"note: {_printable(text)}")
            else:
                lines.append(f"note: {_escaped(str(loc))}: {_printable(text)}")
                lines += _snippet(loc)
        if self.hint:
            lines.append(f"help: {_printable(self.hint)}")
        return "\n".join(lines)


class ArchErrors(ArchError):
    """Several independent errors found in one spec, in file, line and column order; acts as the first of them."""

    def __init__(self, errors: Iterable[ArchError]) -> None:
        self.errors = sort_errors(errors)
        if not self.errors:
            raise ValueError("ArchErrors needs at least one error")
        first = self.errors[0]
        super().__init__(first.code, first.message, first.loc, first.hint, first.notes)

    def render(self) -> str:
        return "\n\n".join(e.render() for e in self.errors)


def too_deep(loc: Loc | None) -> ArchError:
    """The error for nesting beyond what archc's recursive passes can follow, at the deepest place found."""
    return ArchError("E060", "the spec nests too deeply to process", loc, "nest fewer brackets, blocks or operators")


def sort_errors(errors: Iterable[ArchError]) -> list[ArchError]:
    """Errors by file, line and column (unlocated ones first), keeping the order of errors at one place."""
    return sorted(errors, key=lambda e: ("", 0, 0) if e.loc is None else (e.loc.file, e.loc.line, e.loc.column))


def raise_all(errors: list[ArchError]) -> None:
    """Raise nothing for no errors, the error itself for one, and `ArchErrors` for more."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ArchErrors(errors)


# Characters never printed as they are: controls (escape sequences, carriage returns, form feeds), formatting
# characters (bidirectional overrides, zero-width joiners) and line or paragraph separators. Tabs stay.
_HIDDEN = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
# A quoted line longer than this is shown as a window of it around the column; a word of a message longer than
# _LONG_WORD (a name of a megabyte, not a long path) is cut to its first _WORD_KEPT characters.
_LINE_WINDOW = 160
_LONG_WORD = 1000
_WORD_KEPT = 100
_WORD = re.compile(rf"\S{{{_LONG_WORD + 1},}}")


def _visible(ch: str) -> str:
    """A character as printed: itself, or its escape (`\\x1b`, `\\u2028`) when it is hidden."""
    if ch == "\t" or unicodedata.category(ch) not in _HIDDEN:
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _escaped(text: str) -> str:
    """`text` with hidden characters escaped, line breaks kept."""
    return "".join(ch if ch == "\n" else _visible(ch) for ch in text)


def _printable(text: str) -> str:
    """A message's text with hidden characters escaped (line breaks kept) and words over _LONG_WORD cut."""
    return _WORD.sub(lambda m: f"{m[0][:_WORD_KEPT]}… ({len(m[0]) - _WORD_KEPT:,} more characters)", _escaped(text))


def _snippet(loc: Loc) -> list[str]:
    """The source line at `loc` with a caret under its column, or nothing when the source is not at hand. Hidden
    characters are shown escaped, a long line as the part around the column, and the caret is placed by display
    width (a CJK character takes two cells, a combining accent none)."""
    source = _source_line(loc)
    if source is None:
        return []
    from rich.cells import cell_len

    column = max(loc.column - 1, 0)
    start, end, before, after = 0, len(source), "", ""
    if len(source) > _LINE_WINDOW:
        start = max(0, min(column - _LINE_WINDOW // 2, len(source) - _LINE_WINDOW))
        end = start + _LINE_WINDOW
        before = "…" if start > 0 else ""
        after = "…" if end < len(source) else ""
    shown = [_visible(ch) for ch in source[start:end]]
    gutter = f"{loc.line} | "
    caret_pad = " " * cell_len(before) + "".join("\t" if ch == "\t" else " " * cell_len(ch) for ch in shown[: column - start])
    return [gutter + before + "".join(shown) + after, " " * len(gutter) + caret_pad + "^"]


def source_lines(text: str) -> list[str]:
    """The lines of a spec as archc counts them (and Lark, once `normalize_newlines` has run): ended by `\\n`,
    `\\r\\n` or a lone `\\r`, and by nothing else (a form feed or U+2028 is a character of its line)."""
    return normalize_newlines(text).split("\n")


def normalize_newlines(text: str) -> str:
    """`\\r\\n` and lone `\\r` as `\\n`; every other character, and every offset, unchanged but for the `\\r`
    that a `\\r\\n` loses."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


# Source texts by file name, registered by the parser so errors can quote specs that never touched the disk.
SOURCES: dict[str, str] = {}


def _source_line(loc: Loc) -> str | None:
    if not loc.file.endswith(".arch") and Path(loc.file).is_file():
        return None  # never quote a file that is not a spec
    text = SOURCES.get(loc.file)
    if text is None:
        try:
            text = Path(loc.file).read_text(encoding="utf-8-sig", errors="replace")
        except OSError:
            return None
    lines = source_lines(text)
    if 1 <= loc.line <= len(lines):
        return lines[loc.line - 1]
    return None
