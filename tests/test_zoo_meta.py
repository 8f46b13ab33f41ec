"""Every zoo spec carries its metadata, and the published top-1 it quotes is the reference library's own figure."""

from __future__ import annotations

from pathlib import Path

import pytest
import torchvision

from archc.compiler import compile_spec
from tests.conftest import SPECS

SPEC_FILES = sorted(SPECS.glob("*.arch"))


@pytest.mark.parametrize("spec", SPEC_FILES, ids=lambda p: p.stem)
def test_spec_carries_paper_year_and_reference(spec: Path) -> None:
    meta = compile_spec(spec).arch.meta
    assert meta.get("paper") and isinstance(meta.get("year"), int) and meta.get("reference"), meta


@pytest.mark.parametrize("spec", SPEC_FILES, ids=lambda p: p.stem)
def test_torchvision_top1_is_the_published_figure(spec: Path) -> None:
    meta = compile_spec(spec).arch.meta
    reference = str(meta.get("reference", ""))
    if not reference.startswith("torchvision:") or "top1" not in meta:
        pytest.skip("no torchvision top-1 quoted")
    weights = torchvision.models.get_model_weights(reference.split(":", 1)[1])
    # ImageNet-1K V1 where torchvision has it; regnet_y_128gf has SWAG weights only, quoted at the spec's 224.
    chosen = weights["IMAGENET1K_V1"] if "IMAGENET1K_V1" in weights.__members__ else weights["IMAGENET1K_SWAG_LINEAR_V1"]
    published = chosen.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert meta["top1"] == pytest.approx(published, abs=1e-9)
