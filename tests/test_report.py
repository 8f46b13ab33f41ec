"""`archc report`: a self-contained page, driven in headless Chromium: hovering a layer shows its figures."""

from __future__ import annotations

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
    assert main(["report", str(SPECS / "resnet18.arch"), "-o", str(out)]) == 0
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
