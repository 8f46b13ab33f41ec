"""examples/: the training scripts run (one epoch each), and the generated-module one never imports archc."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"


@pytest.mark.parametrize("script", ["train_generated.py", "train_build.py"])
def test_example_trains_for_an_epoch(script: str) -> None:
    env = {**os.environ, "EPOCHS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    lines = re.findall(r"^epoch (\d+): train loss [\d.]+, validation accuracy ([\d.]+)$", result.stdout, re.MULTILINE)
    assert [n for n, _ in lines] == ["1"], result.stdout
    assert float(lines[0][1]) > 0.2  # better than chance (0.1) after one epoch


def test_the_generated_example_imports_no_archc() -> None:
    tree = ast.parse((EXAMPLES / "train_generated.py").read_text(encoding="utf-8"))
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "archc" not in modules and "generated" in modules, modules
