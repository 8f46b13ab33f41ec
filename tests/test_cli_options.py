"""The same options everywhere (issue 16, item 5): `-D` and `--input` on `diagram`, `report` and `train`; `check`
and `fmt` on folders; `train --max-steps`, `--data fake:N` and the paths it prints; `--resume` of a finished run
answered before torch is imported; `archc zoo` within 80 columns on a pipe."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archc.compiler import compile_spec
from archc.emit.dot import render_dot, resolve_depth
from tests.conftest import ROOT, SPECS, run_cli
from tests.test_startup import imported_modules

LENET = str(SPECS / "lenet5.arch")


# diagram, report: -D and --input


def test_diagram_takes_defines_and_input(tmp_path: Path) -> None:
    out = tmp_path / "r.dot"
    result = run_cli("diagram", str(SPECS / "resnet18.arch"), "-D", "num_classes=10", "--input", "1x64x64", "-f", "dot", "-o", str(out))
    assert result.code == 0, result.err
    # The command draws what the compiler gives for the same definitions and input, and not the default build.
    compiled = compile_spec(SPECS / "resnet18.arch", {"num_classes": 10}, input_shape=(1, 64, 64))
    expected = render_dot(compiled, resolve_depth(compiled.arch, None), "TB", False)
    assert out.read_text() == expected
    default = compile_spec(SPECS / "resnet18.arch")
    assert expected != render_dot(default, resolve_depth(default.arch, None), "TB", False)
    bad = run_cli("diagram", str(SPECS / "resnet18.arch"), "-D", "no_such=1", "-f", "dot", "-o", str(out))
    assert bad.code == 1 and "error[" in bad.err and "Traceback" not in bad.err


def test_report_takes_defines_and_input(tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    result = run_cli("report", str(SPECS / "lenet5.arch"), "-D", "num_classes=7", "--input", "1x28x28", "-o", str(page))
    assert result.code == 0, result.err
    text = page.read_text()
    default = tmp_path / "d.html"
    assert run_cli("report", str(SPECS / "lenet5.arch"), "-o", str(default)).code == 0
    assert "1×28×28" in text and "1×28×28" not in default.read_text()
    compiled = compile_spec(SPECS / "lenet5.arch", {"num_classes": 7}, input_shape=(1, 28, 28))
    assert f"{compiled.params.params:,}" in text


# check, fmt: folders

GOOD = "arch net() {\n    input (1, 8, 8)\n    conv(4, 3)\n}\n"
LIBRARY = "block Pair(c) {\n    conv(c, 3, padding = 1)\n    relu()\n}\n"
BROKEN = "arch net() {\n    input (1, 8, 8)\n    conv(4, 3, nonsense = 1)\n}\n"


def test_check_recurses_into_folders_and_locates_errors_per_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "lib").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a" / "good.arch").write_text(GOOD)
    (tmp_path / "a" / "lib" / "pair.arch").write_text(LIBRARY)
    (tmp_path / "a" / "broken.arch").write_text(BROKEN)
    (tmp_path / ".hidden" / "skipped.arch").write_text(BROKEN)
    (tmp_path / "a" / "notes.txt").write_text("not a spec")
    result = run_cli("check", str(tmp_path))
    assert result.code == 1
    assert f"{tmp_path / 'a' / 'good.arch'}: ok" in result.out
    assert f"{tmp_path / 'a' / 'lib' / 'pair.arch'}: ok (a library of 1 block" in result.out
    assert f"{tmp_path / 'a' / 'broken.arch'}:3:" in result.err  # located in its own file
    assert "skipped" not in result.out + result.err and "notes" not in result.out + result.err
    (tmp_path / "a" / "broken.arch").unlink()
    assert run_cli("check", str(tmp_path)).code == 0
    # A library named by itself is still E028: libraries are checked only as part of a folder.
    assert "error[E028]" in run_cli("check", str(tmp_path / "a" / "lib" / "pair.arch")).err
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("check", str(empty))
    assert result.code == 1 and "error[E091]" in result.err and "no .arch files" in result.err


def test_a_library_with_a_wrong_call_fails_check_of_its_folder(tmp_path: Path) -> None:
    (tmp_path / "lib.arch").write_text("block Pair(c) {\n    conv(c, 3, nonsense = 1)\n}\n")
    result = run_cli("check", str(tmp_path))
    assert result.code == 1 and f"{tmp_path / 'lib.arch'}:2:" in result.err


def test_check_on_the_zoo_folder_passes() -> None:
    result = run_cli("check", str(SPECS / "lib"))
    assert result.code == 0, result.err
    assert result.out.count(": ok (a library") == len(list((SPECS / "lib").glob("*.arch")))


def test_fmt_recurses_into_folders(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    messy = tmp_path / "sub" / "messy.arch"
    messy.write_text("block A(){relu()}\n")
    (tmp_path / "tidy.arch").write_text("block A() {\n    relu()\n}\n")
    result = run_cli("fmt", "--check", str(tmp_path))
    assert result.code == 1 and result.out == f"{messy}: would reformat\n" and "1 of 2 files" in result.err
    assert run_cli("fmt", str(tmp_path)).code == 0
    assert messy.read_text() == "block A() {\n    relu()\n}\n"


# zoo on a pipe


@pytest.mark.parametrize("columns", [None, "0", "wide"])
def test_zoo_fits_80_columns_on_a_pipe(columns: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:  # not a positive number: ignored
        env["COLUMNS"] = columns
    r = subprocess.run([sys.executable, "-m", "archc", "zoo"], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    names = sorted(p.stem for p in SPECS.glob("*.arch"))
    # One line per spec, the name and its parameter count whole.
    from archc.tools.zoo import zoo_entries

    for entry in zoo_entries(SPECS):
        (line,) = [line for line in lines if line.split(" ", 1)[0] == entry.name]
        assert f"{entry.params:,}" in line
    assert len([line for line in lines if line.split(" ", 1)[0] in names]) == len(names)


# train: --max-steps, fake:N, --input, printed paths, --resume of a finished run


def test_max_steps_fake_data_and_the_paths_printed(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    argv = ["train", LENET, "--data", "fake:48", "--batch-size", "16", "--epochs", "3", "--max-steps", "5", "--no-progress"]
    result = run_cli(*argv, "--checkpoint", str(ck), "--metrics", str(tmp_path / "m.jsonl"))
    assert result.code == 0, result.err
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    # 48 images in batches of 16: 3 steps an epoch; step 5 falls in the second epoch, which is cut there.
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 3), (2, 5)]
    assert "stopped at step 2 of 3" in result.out
    for line in (f"checkpoint: {ck / 'last.pt'}", f"metrics: {tmp_path / 'm.jsonl'}", f"curves: {tmp_path / 'm.png'}"):
        assert line in result.out.splitlines()
    assert (ck / "last.pt").is_file() and (tmp_path / "m.png").is_file()
    import torch

    assert torch.load(ck / "last.pt", weights_only=True)["step"] == 5
    # Resumed as it stands: finished. Asked for more: the cut epoch cannot continue exactly.
    again = run_cli(*argv, "--checkpoint", str(ck), "--resume")
    assert again.code == 0 and "run already finished at step 5" in again.out
    more = run_cli(*argv[:-3], "--max-steps", "9", "--no-progress", "--checkpoint", str(ck), "--resume")
    assert more.code == 1 and "error[E101]" in more.err and "inside epoch 2" in more.err


def test_resume_after_whole_epochs_continues_and_counts_steps(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    argv = ["train", LENET, "--data", "fake:32", "--batch-size", "16", "--no-progress", "--checkpoint", str(ck)]
    assert run_cli(*argv, "--epochs", "1").code == 0
    result = run_cli(*argv, "--epochs", "2", "--resume")
    assert result.code == 0, result.err
    import torch

    state = torch.load(ck / "last.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (2, 4)


def test_train_without_outputs_says_nothing_was_written_and_takes_input(tmp_path: Path) -> None:
    result = run_cli("train", LENET, "--data", "fake:16", "--batch-size", "8", "--epochs", "1", "--input", "1x28x28", "--no-progress")
    assert result.code == 0, result.err
    assert "nothing written" in result.out
    bad = run_cli("train", LENET, "--data", "fake:16", "--epochs", "1", "--input", "1x2x2", "--no-progress")
    assert bad.code == 1 and "error[" in bad.err and "Traceback" not in bad.err


@pytest.mark.parametrize("data", ["fake:0", "fake:x", "fake:-3"])
def test_bad_fake_sizes_are_usage_errors(data: str) -> None:
    result = run_cli("train", LENET, "--data", data)
    assert result.code == "SystemExit(2)" and "fake:N" in result.err


def test_resume_of_a_finished_run_answers_before_importing_torch(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    argv = ["train", LENET, "--data", "fake:16", "--batch-size", "8", "--epochs", "1", "--no-progress", "--checkpoint", str(ck)]
    assert run_cli(*argv).code == 0
    names = imported_modules([*argv, "--resume"])
    assert "torch" not in names and "numpy" not in names
    r = subprocess.run([sys.executable, "-m", "archc", *argv, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == f"{ck}: run already finished at step 2 (epoch 1; --epochs 1); nothing to do\n"


def test_a_spec_without_input_takes_the_one_given(tmp_path: Path) -> None:
    spec = tmp_path / "n.arch"
    spec.write_text("arch n() {\n    c = conv(4, 3)\n}\n")
    given = run_cli("summary", str(spec), "--input", "2x9x7", "--json")
    assert given.code == 0, given.err
    # Against a spec that states the same input: the same table.
    stated = tmp_path / "s.arch"
    stated.write_text("arch n() {\n    input (2, 9, 7)\n    c = conv(4, 3)\n}\n")
    ours, theirs = json.loads(given.out), json.loads(run_cli("summary", str(stated), "--json").out)
    for table in (ours, theirs):  # the file and its lines differ: the spec that states its input has one more line
        table.pop("spec")
        for layer in table["layers"]:
            layer.pop("line")
    assert ours == theirs
    missing = run_cli("summary", str(spec))
    assert missing.code == 1 and "error[E029]" in missing.err and "--input" in missing.err


def test_a_reshaped_param_has_no_batch_in_the_summary(tmp_path: Path) -> None:
    """Layer scale, `x * reshape(gamma, (1, -1, 1, 1))`: the reshape's row is the tensor PyTorch makes of the
    parameter (no batch), the product's a batch of maps; checked against the generated module run in PyTorch."""
    import torch

    from tests.conftest import load_source

    spec = tmp_path / "ls.arch"
    spec.write_text(
        "block Scaled() {\n    conv1 = conv(in.channels, 3, padding = 1)\n    gamma = param((in.channels,), fill = 0.1)\n"
        "    forward(x) = conv1(x) * reshape(gamma, (1, -1, 1, 1))\n}\n"
        "arch ls() {\n    input (8, 16, 16)\n    b = Scaled()\n}\n"
    )
    model = load_source(compile_spec(spec).python(), "ls", tmp_path).ls()
    scale = model.b.gamma.reshape(1, -1, 1, 1)
    product = model(torch.randn(2, 8, 16, 16))
    rows = {r["name"]: r for r in json.loads(run_cli("summary", str(spec), "--json").out)["layers"]}
    assert (rows["b.reshape"]["shape"], rows["b.reshape"]["batched"]) == (list(scale.shape), False)
    assert (rows["b.gamma"]["shape"], rows["b.gamma"]["batched"]) == (list(model.b.gamma.shape), False)
    assert (rows["b.mul"]["shape"], rows["b.mul"]["batched"]) == (list(product.shape[1:]), True)
    table = run_cli("summary", str(spec)).out
    shown = "×".join(map(str, scale.shape))
    assert re.search(rf"│ b\.reshape +│ reshape +│ +{shown} │", table), table
