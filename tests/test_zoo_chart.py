"""The zoo chart (`archc zoo --chart`, docs/zoo.svg): one bubble per spec with a published top-1, placed by its
figures, deterministic, and the copy in docs/ current (a snapshot)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archc.tools.zoo import ZooEntry, write_zoo_chart, zoo_chart_svg, zoo_entries
from scripts.zoo_doc import CHART
from tests.conftest import SPECS

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def entries() -> list[ZooEntry]:
    return zoo_entries(SPECS)


@pytest.fixture(scope="module")
def root(entries: list[ZooEntry]) -> ET.Element:
    return ET.fromstring(zoo_chart_svg(entries).encode())


def shown(entries: list[ZooEntry]) -> list[ZooEntry]:
    return [e for e in entries if e.meta.get("top1") is not None]


def bubbles(root: ET.Element) -> dict[str, tuple[float, float, float]]:
    """spec name -> (cx, cy, r) of its bubble."""
    out = {}
    for c in root.iter(f"{SVG}circle"):
        if c.get("class") == "bubble":
            name = c.get("data-spec")
            assert name is not None and name not in out
            out[name] = (float(c.get("cx", "nan")), float(c.get("cy", "nan")), float(c.get("r", "nan")))
    return out


def test_chart_is_svg(root: ET.Element) -> None:
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox")


def test_zoo_has_specs_with_and_without_top1(entries: list[ZooEntry]) -> None:
    assert len(shown(entries)) >= 10 and len(shown(entries)) < len(entries)
    assert len({e.macs for e in shown(entries)}) > 5 and all(e.macs > 0 for e in entries)


def test_one_bubble_and_one_label_per_spec_with_top1(entries: list[ZooEntry], root: ET.Element) -> None:
    names = sorted(e.name for e in shown(entries))
    assert sorted(bubbles(root)) == names
    labels = sorted((t.text or "") for t in root.iter(f"{SVG}text") if t.get("class") == "label")
    assert labels == names


def test_specs_without_top1_are_named_in_the_footnote(entries: list[ZooEntry], root: ET.Element) -> None:
    missing = sorted(e.name for e in entries if e.meta.get("top1") is None)
    footnote = " ".join((t.text or "") for t in root.iter(f"{SVG}text") if t.get("class") == "footnote")
    assert "not shown: no published top-1: " + ", ".join(missing) in footnote
    assert not set(missing) & set(bubbles(root))


def _assert_monotonic(pairs: list[tuple[float, float]], increasing: bool) -> None:
    """Sorted by the figure, the coordinate never goes the wrong way, and strictly so where the figures differ."""
    pairs = sorted(pairs)
    for (fa, ca), (fb, cb) in zip(pairs, pairs[1:], strict=False):
        if fa == fb:
            assert ca == pytest.approx(cb, abs=0.05)
        elif increasing:
            assert cb >= ca, (fa, ca, fb, cb)
        else:
            assert cb <= ca, (fa, ca, fb, cb)
    assert pairs[0][1] != pairs[-1][1]


def test_x_follows_macs_y_follows_top1_radius_follows_params(entries: list[ZooEntry], root: ET.Element) -> None:
    placed = bubbles(root)
    figures = {e.name: e for e in shown(entries)}
    _assert_monotonic([(figures[n].macs, cx) for n, (cx, _, _) in placed.items()], increasing=True)
    _assert_monotonic([(float(figures[n].meta["top1"]), cy) for n, (_, cy, _) in placed.items()], increasing=False)  # SVG y grows down
    _assert_monotonic([(figures[n].params, r) for n, (_, _, r) in placed.items()], increasing=True)


def test_x_is_logarithmic_and_area_is_proportional_to_params(entries: list[ZooEntry], root: ET.Element) -> None:
    placed = bubbles(root)
    e = {x.name: x for x in shown(entries)}
    # On a log scale, distances along x are ratios of MACs.
    a, b, c = (placed[n][0] for n in ("resnet18", "resnet34", "vgg16"))
    ratio = (b - a) / (c - a)
    expected = math.log(e["resnet34"].macs / e["resnet18"].macs) / math.log(e["vgg16"].macs / e["resnet18"].macs)
    assert ratio == pytest.approx(expected, abs=0.01)
    r_big, r_small = placed["vgg19_bn"][2], placed["resnet18"][2]
    assert (r_big / r_small) ** 2 == pytest.approx(e["vgg19_bn"].params / e["resnet18"].params, rel=0.02)


def test_chart_is_deterministic(entries: list[ZooEntry], tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = zoo_chart_svg(entries)
    assert zoo_chart_svg(list(entries)) == first
    assert zoo_chart_svg(list(reversed(entries))) == first
    write_zoo_chart(SPECS, tmp_path / "zoo.svg")
    assert (tmp_path / "zoo.svg").read_bytes() == first.encode()


def test_chart_of_few_or_no_specs(entries: list[ZooEntry]) -> None:
    for subset in ([], entries[:1], [e for e in entries if e.meta.get("top1") is None], shown(entries)[:2]):
        root = ET.fromstring(zoo_chart_svg(subset).encode())
        assert len(bubbles(root)) == len(shown(subset))


def test_snapshot_docs_zoo_chart(entries: list[ZooEntry]) -> None:
    """Snapshot: guards docs/zoo.svg against unreviewed drift from `archc zoo --chart`, not correctness."""
    assert CHART.read_text(encoding="utf-8") == zoo_chart_svg(entries), "run `python scripts/zoo_doc.py` to refresh docs/zoo.svg"


def test_archc_zoo_chart_writes_the_docs_chart(tmp_path: Path) -> None:
    from archc.cli import main

    target = tmp_path / "zoo.svg"
    assert main(["zoo", str(SPECS), "--chart", str(target), "--markdown"]) == 0
    assert target.read_text(encoding="utf-8") == CHART.read_text(encoding="utf-8")
