"""One error type for everything a user can get wrong, carrying where it happened and a hint."""

from __future__ import annotations

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


class ArchError(Exception):
    """A located user error: `file:line:col: error: message`, the source line, a caret, and a hint."""

    def __init__(self, message: str, loc: Loc | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.hint = hint

    def render(self) -> str:
        """The error as the CLI prints it."""
        if self.loc is None:
            lines = [f"error: {self.message}"]
        else:
            lines = [f"{self.loc}: error: {self.message}"]
            source = _source_line(self.loc)
            if source is not None:
                gutter = f"{self.loc.line} | "
                lines.append(gutter + source)
                caret_pad = "".join("\t" if ch == "\t" else " " for ch in source[: self.loc.column - 1])
                lines.append(" " * len(gutter) + caret_pad + "^")
        if self.hint:
            lines.append(f"help: {self.hint}")
        return "\n".join(lines)


# Source texts by file name, registered by the parser so errors can quote specs that never touched the disk.
SOURCES: dict[str, str] = {}


def _source_line(loc: Loc) -> str | None:
    text = SOURCES.get(loc.file)
    if text is None:
        try:
            text = Path(loc.file).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    lines = text.splitlines()
    if 1 <= loc.line <= len(lines):
        return lines[loc.line - 1].rstrip("\r\n")
    return None
