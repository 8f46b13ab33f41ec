"""`archc report`: a self-contained page, driven in headless Chromium: hovering a layer shows its figures."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from archc.cli import main
from tests.conftest import SPECS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def resnet18_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "resnet18.html"
    assert main(["report", str(SPECS / "resnet18.arch"), "-o", str(out), "--depth", "all"]) == 0
    return out


@pytest.fixture(scope="module")
def googlenet_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "googlenet.html"
    assert main(["report", str(SPECS / "googlenet.arch"), "-o", str(out)]) == 0  # folded to fit, depth 1
    return out


def test_report_is_self_contained(resnet18_report: Path) -> None:
    page = resnet18_report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    # Nothing is fetched: no external scripts, styles, images or fonts.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page


def test_report_holds_the_summary_and_the_spec_source(resnet18_report: Path) -> None:
    page = resnet18_report.read_text(encoding="utf-8")
    assert "11,689,512" in page and "1,814,073,344" in page
    assert "block BasicBlock(planes, stride = 1)" in page  # the imported library is shown too
    assert 'data-layer="layer4.1.conv2"' in page


@pytest.fixture(scope="module")
def browser() -> Any:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs chromium and chromedriver (scripts/setup.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,900",
    ):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_hovering_a_layer_shows_its_figures_and_its_spec_line(browser: Any, resnet18_report: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(resnet18_report.as_uri())
    element_id = browser.execute_script(
        "return JSON.parse(document.getElementById('report-data').textContent).layers['layer1.0.conv1'].svg_nodes[0]"
    )
    ActionChains(browser).move_to_element(browser.find_element(By.ID, element_id)).perform()
    info = browser.find_element(By.ID, "info").text
    assert "layer1.0.conv1" in info and "N×64×56×56" in info and "36,864" in info and "115,605,504" in info
    highlighted = browser.find_element(By.CSS_SELECTOR, ".line.hl").text
    assert "conv1 = conv(planes, 3, stride = stride, padding = 1, bias = false)" in highlighted
    browser.save_screenshot(str(tmp_path / "report.png"))


def test_clicking_a_table_row_selects_the_layer_in_the_diagram(browser: Any, resnet18_report: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(resnet18_report.as_uri())
    browser.find_element(By.CSS_SELECTOR, 'tr[data-layer="fc"]').click()
    assert browser.find_element(By.ID, "info").text.startswith("fc")
    assert browser.find_elements(By.CSS_SELECTOR, "g.node.selected")


# The report follows --depth (issue 16, item 4).


def _report_data(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    assert m is not None
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def _table(page: str) -> list[tuple[str, str]]:
    """(layer, params) of each table row, params without separators."""
    row = re.compile(r'<tr data-layer="([^"]+)"><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td>')
    return [(name, params.replace(",", "")) for name, params in row.findall(page)]


@pytest.mark.parametrize(
    ("name", "depth"), [("resnet18", "1"), ("resnet50", "2"), ("googlenet", "1"), ("inception_v3", "2"), ("resnet18", "all")]
)
def test_table_rows_and_box_totals_follow_the_depth(name: str, depth: str, tmp_path: Path) -> None:
    from tests.zoo_helpers import build_spec

    out = tmp_path / f"{name}.html"
    assert main(["report", str(SPECS / f"{name}.arch"), "-o", str(out), "--depth", depth]) == 0
    page = out.read_text(encoding="utf-8")
    compiled, model = build_spec(name, tmp_path)
    # Independent: the model's own submodules, parameters counted once each.
    submodules = dict(model.named_modules())
    layer_names = [n.name for n in compiled.arch.nodes[1:]]
    level = None if depth == "all" else int(depth)
    # Every layer its own row (a module applied twice, twice), or one row per name cut to `depth` parts.
    expected = layer_names if level is None else list(dict.fromkeys(".".join(n.split(".")[:level]) for n in layer_names))
    table = _table(page)
    assert [row for row, _ in table] == expected
    for row, params in table:
        if row in submodules and row not in {r for r, _ in table if r != row and r.startswith(row + ".")}:
            assert int(params or 0) == sum(p.numel() for p in submodules[row].parameters()), row
    assert sum(int(p or 0) for _, p in table) == sum(p.numel() for p in model.parameters())
    # Each box, clicked, shows the totals of what it holds.
    data = _report_data(page)
    checked = 0
    for entry_name in set(data["svg_nodes"].values()):
        entry = data["layers"][entry_name]
        details = dict(entry["details"])
        paths = entry["rows"]
        if all(p in submodules for p in paths):
            torch_params = sum(sum(p.numel() for p in submodules[path].parameters()) for path in paths)
            assert int(details["params"].replace(",", "")) == torch_params, entry_name
            checked += 1
    assert checked >= 5
    if name == "googlenet":
        box = data["layers"]["inception4c"]
        assert dict(box["details"])["params"] == f"{sum(p.numel() for p in submodules['inception4c'].parameters()):,}"
        assert "inception4c" in data["svg_nodes"].values() and "inception4c.cat" not in data["svg_nodes"].values()
    if name == "resnet50":
        run = data["layers"]["layer3.1–5"]
        assert run["rows"] == [f"layer3.{k}" for k in range(1, 6)]


def test_report_defaults_to_the_diagrams_depth(tmp_path: Path) -> None:
    from archc.compiler import compile_spec
    from archc.emit.dot import fit_depth

    out = tmp_path / "googlenet.html"
    assert main(["report", str(SPECS / "googlenet.arch"), "-o", str(out)]) == 0
    depth = fit_depth(compile_spec(SPECS / "googlenet.arch").arch)
    assert depth is not None
    rows = [row for row, _ in _table(out.read_text(encoding="utf-8"))]
    assert rows and all(row.count(".") < depth for row in rows)
    assert "inception4c" in rows and "inception4c.cat" not in rows


@pytest.mark.parametrize("size", [(1400, 900), (900, 1200), (1600, 500)])
def test_the_diagram_opens_fitted_to_its_pane_clear_of_the_hint(browser: Any, googlenet_report: Path, size: tuple[int, int]) -> None:
    browser.set_window_size(*size)
    browser.get(googlenet_report.as_uri())
    pane, picture, hint = browser.execute_script(
        "const r = (el) => { const b = el.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };"
        "const box = document.getElementById('diagram');"
        "return [r(box), r(box.querySelector('svg')), r(box.querySelector('.hint'))];"
    )
    left, top, right, bottom = picture
    assert left >= pane[0] and right <= pane[2] and top >= pane[1] and bottom <= pane[3], (pane, picture)
    assert bottom <= hint[1], (picture, hint)  # nothing under the hint
    # Fitted: the picture fills the pane's width or its height (above the hint), less small margins.
    assert (right - left) >= (pane[2] - pane[0]) - 20 or (bottom - top) >= (hint[1] - pane[1]) - 20, (pane, picture, hint)


def test_clicking_a_folded_box_shows_its_blocks_totals(browser: Any, googlenet_report: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.set_window_size(1400, 900)
    browser.get(googlenet_report.as_uri())
    data = browser.execute_script("return JSON.parse(document.getElementById('report-data').textContent)")
    entry = data["layers"]["inception4c"]
    (element_id,) = entry["svg_nodes"]
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", browser.find_element(By.ID, element_id))
    info = browser.find_element(By.ID, "info").text
    assert info.splitlines()[0] == "inception4c"
    assert "Inception" in info and dict(entry["details"])["params"] in info
    assert int(dict(entry["details"])["params"].replace(",", "")) > 400_000  # the block's, not its last cat's 0
    (row,) = browser.find_elements(By.CSS_SELECTOR, "tr.hl")
    assert row.get_attribute("data-layer") == "inception4c"
