"""Snapshot: generated/ holds what the compiler makes of specs/ today. These tests guard against unreviewed drift
of the committed files, not correctness: a wrong module regenerated is still a passing snapshot. Whether the
generated modules are right is checked elsewhere (against the references, the flop counter, input gradients)."""

from __future__ import annotations

from pathlib import Path

import pytest

from archc.compiler import compile_spec
from tests.conftest import GENERATED, ROOT, SPECS

SPEC_FILES = sorted(SPECS.glob("*.arch"))
# generated/__init__.py is the package's registry (create_model, list_models), the one file archc does not write.
GENERATED_MODULES = sorted(p for p in GENERATED.glob("*.py") if p != GENERATED / "__init__.py")


@pytest.mark.parametrize("spec", SPEC_FILES, ids=lambda p: p.stem)
def test_snapshot_generated_file_equals_a_fresh_compile(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshot: guards generated/<spec>.py against unreviewed drift, not correctness."""
    monkeypatch.chdir(ROOT)
    fresh = compile_spec(spec.relative_to(ROOT)).python()
    committed = (GENERATED / f"{spec.stem}.py").read_text()
    assert fresh == committed, f"generated/{spec.stem}.py is stale: run `archc compile specs/*.arch` and review the diff"


def test_snapshot_every_spec_has_a_generated_file_and_no_file_is_orphaned() -> None:
    """Snapshot: guards the set of files in generated/ against unreviewed drift, not correctness."""
    assert {p.stem for p in SPEC_FILES} == {p.stem for p in GENERATED_MODULES}
