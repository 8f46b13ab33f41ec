"""`archc verify` against torchvision and `archc export --onnx` run in onnxruntime.

verify's verdicts are held against facts independent of archc: torchvision's own resnet18, and copies of the spec
altered in known places (the keys and spec lines a difference must name are found in the altered text). export's
file is run by onnxruntime and compared with the generated module run in PyTorch with the same weights.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch
import torchvision
from torch import nn

from archc.cli import main
from archc.compiler import compile_spec
from tests.conftest import SPECS, load_source
from tests.zoo_helpers import assert_same_logits, randomize_batchnorm_statistics

torch.set_num_threads(1)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def altered_resnet18(tmp_path: Path, old: str, new: str) -> tuple[Path, Path]:
    """A copy of specs/resnet18.arch whose library has `old` replaced by `new` (once); (spec, library) paths."""
    (tmp_path / "lib").mkdir()
    spec = tmp_path / "resnet18.arch"
    shutil.copyfile(SPECS / "resnet18.arch", spec)
    library = tmp_path / "lib" / "resnet.arch"
    text = (SPECS / "lib" / "resnet.arch").read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    library.write_text(text.replace(old, new), encoding="utf-8")
    return spec, library


def line_of(path: Path, text: str) -> int:
    """The 1-based line of `path` holding `text`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    (number,) = [i + 1 for i, line in enumerate(lines) if text in line]
    return number


# verify


def test_verify_resnet18_against_torchvision_is_equal() -> None:
    code, out, err = run_cli("verify", str(SPECS / "resnet18.arch"), "--against", "torchvision:resnet18")
    assert code == 0, out + err
    reference = torchvision.models.resnet18()
    params = sum(p.numel() for p in reference.parameters())
    assert f"parameters: {params:,} in the spec, {params:,} in the reference: equal" in out
    assert f"the same {len(reference.state_dict())} keys with the same shapes" in out
    # Every module of the spec's model sits at a path of torchvision's: its type and settings are compared.
    assert f"module types and settings: {len(list(reference.named_modules()))} modules at the same paths alike: equal" in out
    for run in ("eval, seed 0, inputs ×1 and ×10", "eval, seed 2, inputs ×1 and ×10", "training, seed 0, input ×1"):
        assert re.search(rf"^  {run}: \d+ module outputs alike .*: equal$", out, re.MULTILINE), out
    assert re.search(rf"^  SGD step: {len(reference.state_dict())} state_dict tensors alike .*: equal$", out, re.MULTILINE), out
    assert out.rstrip().endswith("\nequal")


def test_verify_names_each_changed_layer_and_its_spec_line(tmp_path: Path) -> None:
    # BasicBlock's conv2 becomes 1x1: every BasicBlock's conv2 weight changes shape.
    spec, library = altered_resnet18(
        tmp_path, "conv2 = conv(planes, 3, padding = 1, bias = false)\n    bn2", "conv2 = conv(planes, 1, bias = false)\n    bn2"
    )
    code, out, err = run_cli("verify", str(spec), "--against", "torchvision:resnet18")
    assert code == 1, out + err
    line = line_of(library, "conv2 = conv(planes, 1, bias = false)")
    reference = torchvision.models.resnet18().state_dict()
    changed = [k for k in reference if k.endswith("conv2.weight")]
    assert len(changed) == 8
    for key in changed:
        shape = "×".join(map(str, reference[key].shape))
        mine = "×".join(map(str, (*reference[key].shape[:2], 1, 1)))
        where = rf"{re.escape(str(library))}:{line}:\d+"
        assert re.search(rf"^      {re.escape(key)}  spec {mine}, reference {shape}  {where}$", out, re.MULTILINE), out
    assert "modules and outputs: not compared (the state_dicts differ)" in out
    assert out.rstrip().endswith("not equal")


def test_verify_lists_a_renamed_layer_as_missing_and_unexpected(tmp_path: Path) -> None:
    spec, library = altered_resnet18(tmp_path, "    fc = linear(num_classes)", "    classifier = linear(num_classes)")
    library.write_text(library.read_text(encoding="utf-8").replace("return fc(x)", "return classifier(x)"), encoding="utf-8")
    code, out, err = run_cli("verify", str(spec), "--against", "torchvision:resnet18")
    assert code == 1, out + err
    line = line_of(library, "classifier = linear(num_classes)")
    missing, unexpected = out.split("missing from the spec")[1].split("unexpected in the spec")
    assert re.findall(r"^      (\S+)", missing, re.MULTILINE) == ["fc.weight", "fc.bias"]
    for key in ("classifier.weight", "classifier.bias"):
        assert re.search(rf"^      {key}  \S+  {re.escape(str(library))}:{line}:\d+$", unexpected, re.MULTILINE), out
    # Same counts, different names: the parameter line alone would not tell.
    assert ": equal" in out.splitlines()[1]


def test_verify_reports_the_first_module_whose_output_differs_with_equal_state_dicts(tmp_path: Path) -> None:
    # The same weights, applied differently: no ReLU after the addition. torchvision's block calls its one `relu`
    # twice; the spec's calls it once, so the first block's output is the first to differ, located at the block's
    # definition (which holds its forward).
    tail = "\n    }\n}\n\n# 1×1"
    spec, library = altered_resnet18(tmp_path, "        return relu(out + identity)" + tail, "        return out + identity" + tail)
    code, out, err = run_cli("verify", str(spec), "--against", "torchvision:resnet18", "--input", "3x64x64", "--seeds", "1")
    assert code == 1, out + err
    assert "the same 122 keys" in out
    where = re.escape(f"{tmp_path / 'lib' / 'resnet.arch'}:{line_of(library, 'block BasicBlock(')}:")
    assert re.search(rf"^  eval, seed 0, inputs ×1 and ×10: differ, first at layer1\.0  {where}\d+: output: ", out, re.MULTILINE), out


def test_verify_unknown_reference_is_a_clean_error() -> None:
    code, out, err = run_cli("verify", str(SPECS / "resnet18.arch"), "--against", "torchvision:resnet81")
    assert code == 1
    assert "error[E094]: torchvision has no model `resnet81`" in err
    assert "did you mean `torchvision:resnet18`?" in err
    assert "Traceback" not in err + out


def test_verify_malformed_reference_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as caught, contextlib.redirect_stderr(io.StringIO()) as err:
        main(["verify", str(SPECS / "resnet18.arch"), "--against", "resnet18"])
    assert caught.value.code == 2
    assert "expected torchvision:NAME or timm:NAME" in err.getvalue()


def test_verify_and_export_leave_torch_out_of_the_compile_path() -> None:
    # The CLI module imports neither; only running the commands does.
    import subprocess

    code = "import sys, archc.cli; assert 'torch' not in sys.modules and 'archc.tools.verify' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# export


def onnx_logits(path: Path, x: torch.Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: x.numpy()})[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["resnet18", "googlenet"])
def test_export_onnx_runs_in_onnxruntime_with_the_modules_logits(name: str, tmp_path: Path) -> None:
    compiled = compile_spec(SPECS / f"{name}.arch")
    model: nn.Module = getattr(load_source(compiled.python(), name, tmp_path), name)()
    randomize_batchnorm_statistics(model)
    weights = tmp_path / "weights.pt"
    torch.save(model.state_dict(), weights)
    target = tmp_path / f"{name}.onnx"
    code, out, err = run_cli("export", str(SPECS / f"{name}.arch"), "--onnx", str(target), "--weights", str(weights))
    assert code == 0, out + err
    model.eval()
    torch.manual_seed(0)
    x = torch.randn(3, *compiled.arch.input_shape)  # traced with a batch of 1: the batch dimension is dynamic
    with torch.no_grad():
        expected = model(x)
    assert isinstance(expected, torch.Tensor), "eval mode: the logits alone, no auxiliary heads"
    assert_same_logits(torch.from_numpy(onnx_logits(target, x)), expected, rtol=1e-4)


def test_export_with_another_input_size(tmp_path: Path) -> None:
    target = tmp_path / "small.onnx"
    code, out, err = run_cli("export", str(SPECS / "resnet18.arch"), "--onnx", str(target), "--input", "3x64x64", "-D", "num_classes=10")
    assert code == 0, out + err
    assert onnx_logits(target, torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_export_with_weights_that_do_not_fit_writes_nothing(tmp_path: Path) -> None:
    weights = tmp_path / "other.pt"
    torch.save(torchvision.models.resnet34().state_dict(), weights)
    target = tmp_path / "resnet18.onnx"
    code, out, err = run_cli("export", str(SPECS / "resnet18.arch"), "--onnx", str(target), "--weights", str(weights))
    assert code == 1
    assert "error[E095]: the weights in" in err and "unexpected layer1.2." in err, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == [weights], "no file, partial or temporary, is left"


def test_export_of_unreadable_weights_is_a_clean_error(tmp_path: Path) -> None:
    weights = tmp_path / "junk.pt"
    weights.write_bytes(b"not a state dict")
    code, out, err = run_cli("export", str(SPECS / "resnet18.arch"), "--onnx", str(tmp_path / "x.onnx"), "--weights", str(weights))
    assert code == 1
    assert "error[E095]: cannot read the weights" in err
    assert not (tmp_path / "x.onnx").exists()


def test_export_at_an_input_size_the_spec_cannot_take_is_a_located_error(tmp_path: Path) -> None:
    target = tmp_path / "lenet5.onnx"
    code, out, err = run_cli("export", str(SPECS / "lenet5.arch"), "--onnx", str(target), "--input", "1x8x8")
    assert code == 1
    line = line_of(SPECS / "lenet5.arch", "conv2 = conv(")
    assert re.search(rf"lenet5\.arch:{line}:\d+: error\[E032\]", err), err
    assert not target.exists()
