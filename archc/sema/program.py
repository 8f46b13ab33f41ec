"""A spec and the files it imports, as one table of definitions: what every later stage reads."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from archc import ops
from archc.errors import ArchError, ArchErrors, Loc
from archc.lang import syntax as S
from archc.lang.parse import parse_file, parse_text
from archc.sema.calls import SEQ
from archc.sema.evaluate import BUILTINS


@dataclass
class Program:
    """Every definition visible from a spec file, by name."""

    main: S.Module
    definitions: dict[str, S.Definition]
    # Each imported file (as its locations name it) -> the `import` that first read it.
    imported_from: dict[str, Loc] = field(default_factory=dict)

    def arch(self) -> S.Definition:
        archs = [d for d in self.main.definitions if d.kind == "arch"]
        if len(archs) != 1:
            loc = archs[1].loc if archs else Loc(self.main.file, 1, 1)
            raise ArchError(
                "E028",
                f"a spec file needs exactly one `arch`, found {len(archs)}",
                loc,
                "block libraries are imported by specs, not compiled",
                [(archs[0].loc, "the first arch is here")] if archs else [],
            )
        return archs[0]

    def annotate(self, error: ArchError) -> ArchError:
        """`error` with notes on the chain of imports that read the file it points into."""
        return add_import_chain(error, self.imported_from)


def add_import_chain(error: ArchError, imported_from: dict[str, Loc]) -> ArchError:
    """Add `note: imported from FILE:LINE:COL` lines, innermost import first, to an error inside an imported file."""
    for e in error.errors if isinstance(error, ArchErrors) else [error]:
        if e.loc is None or any(loc is None and text.startswith("imported from ") for loc, text in e.notes):
            continue
        file, seen = e.loc.file, set()
        while file in imported_from and file not in seen:
            seen.add(file)
            at = imported_from[file]
            e.notes.append((None, f"imported from {at}"))
            file = at.file
    if isinstance(error, ArchErrors):
        error.notes = list(error.errors[0].notes)
    return error


def _check_inside(imp: S.Import, target: Path, root: Path) -> None:
    """An import names a file inside `root`, the folder of the spec being compiled, by a relative path (compared
    after symbolic links are resolved: a link leading out of the folder leads out)."""
    if os.path.isabs(imp.path) or not target.is_relative_to(root):
        where = "an absolute path" if os.path.isabs(imp.path) else f"outside {root}, the folder of the spec being compiled"
        raise ArchError(
            "E051",
            f"import {imp.path!r} reaches {where}",
            imp.loc,
            'import files inside the spec\'s folder by relative paths (`import "lib/blocks.arch"`), or allow this with'
            " --allow-import-outside",
        )


def load_program(path: Path, text: str | None = None, allow_import_outside: bool = False) -> Program:
    """Parse a spec and, transitively, the files it imports. Imports stay inside the spec's folder (its subfolders
    included) unless `allow_import_outside`: an absolute path, or one whose `..` leads out of it, is E051."""
    main = parse_text(text, str(path)) if text is not None else parse_file(path)
    root = path.resolve().parent
    definitions: dict[str, S.Definition] = {}
    seen: set[Path] = set()
    imported_from: dict[str, Loc] = {}

    def add(module: S.Module) -> None:
        for d in module.definitions:
            if d.name in definitions:
                first = definitions[d.name]
                raise ArchError(
                    "E026",
                    f"`{d.name}` is defined twice",
                    d.loc,
                    "definition names are global across imports: rename one of them",
                    [(first.loc, f"the first definition of `{d.name}` is here")],
                )
            if d.name in ops.OPS or d.name in BUILTINS or d.name == SEQ:
                what = "an op" if d.name in ops.OPS else "a builtin" if d.name in BUILTINS else "the built-in `seq`"
                raise ArchError("E027", f"`{d.name}` is a built-in name ({what})", d.loc, f"give the {d.kind} another name")
            definitions[d.name] = d
        for imp in module.imports:
            if "\x00" in imp.path:  # no file system takes it (os.path refuses it with a ValueError)
                raise ArchError("E050", f"cannot import {imp.path!r}: a path holds no NUL character", imp.loc, "check the path")
            target = (Path(module.file).parent / imp.path).resolve()
            if not allow_import_outside:
                _check_inside(imp, target, root)
            if target in seen:
                continue
            seen.add(target)
            if not target.exists():
                raise ArchError("E050", f"cannot import {imp.path!r}: no such file", imp.loc, f"looked for {target}")
            imported_from[str(target)] = imp.loc
            try:
                imported = parse_file(target)
            except ArchError as e:
                if e.code != "E006" or e.loc is not None:
                    raise
                raise ArchError("E006", f"cannot import {imp.path!r}: {e.message}", imp.loc, e.hint) from None
            add(imported)

    seen.add(path.resolve())
    try:
        add(main)
    except ArchError as e:
        raise add_import_chain(e, imported_from) from None
    return Program(main, definitions, imported_from)
