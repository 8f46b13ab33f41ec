"""`archc verify` over the whole referenced zoo (the exhaustive sweep, `pytest -m full`): every spec whose `meta
reference` names a torchvision or timm model is equal to it, as verify judges (strict state_dict load, every module's
type, settings and outputs in eval and training mode and after an SGD step, BatchNorm randomised, inputs ×1 and
×10). Compared at 3×64×64, the size the per-family tests use, where the spec can take it; at its own input otherwise
(the ViT's position embeddings fix its input). The default run keeps the per-family tests' smaller checks."""

from __future__ import annotations

import gc
import re
from pathlib import Path

import pytest

from archc.compiler import compile_spec
from archc.errors import ArchError
from archc.tools.verify import verify

SPECS = Path(__file__).resolve().parent.parent / "specs"


def referenced() -> list[tuple[Path, str, str]]:
    out = []
    for path in sorted(SPECS.glob("*.arch")):
        match = re.search(r'reference = "(torchvision|timm):([A-Za-z0-9_.]+)"', path.read_text())
        if match:
            out.append((path, match.group(1), match.group(2)))
    return out


@pytest.mark.full
@pytest.mark.parametrize(("path", "library", "name"), referenced(), ids=lambda v: v.stem if isinstance(v, Path) else "")
def test_every_referenced_spec_is_equal_to_its_reference(path: Path, library: str, name: str) -> None:
    try:
        compiled = compile_spec(path, input_shape=(3, 64, 64))
    except ArchError:
        compiled = compile_spec(path)
    report = verify(compiled, library, name)
    assert report.equal, report.render()
    del report
    gc.collect()
