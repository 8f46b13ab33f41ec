"""The version: `archc --version`, the installed distribution's metadata and the changelog agree."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys

import archc
from tests.conftest import ROOT

CHANGELOG = ROOT / "CHANGELOG.md"


def test_archc_version_is_the_installed_distributions() -> None:
    r = subprocess.run([sys.executable, "-m", "archc", "--version"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"archc {importlib.metadata.version('archc')}\n"
    assert importlib.metadata.version("archc") == archc.__version__


def test_the_changelog_keeps_a_changelog() -> None:
    text = CHANGELOG.read_text()
    assert text.startswith("# Changelog\n")
    sections = re.findall(r"^## (.+)$", text, re.M)
    assert sections[0] == "[Unreleased]"
    releases = [re.fullmatch(r"\[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})", s) for s in sections[1:]]
    assert releases and all(releases), sections
    versions = [tuple(map(int, m.group(1).split("."))) for m in releases if m]
    assert versions == sorted(versions, reverse=True), "newest release first"
    assert releases[0] and releases[0].group(1) == archc.__version__, "the newest release is the package's version"
    kinds = set(re.findall(r"^### (.+)$", text, re.M))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, kinds
