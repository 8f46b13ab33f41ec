"""`archc export`: the spec's model as an ONNX file, through `torch.onnx.export`.

It uses torch's TorchScript-based exporter (`dynamo=False`): it needs nothing beyond torch and onnx, takes
seconds where the torch.export-based one takes tens of seconds on a ResNet, and the generated modules are plain
TorchScript-friendly code. The model is exported in eval mode (auxiliary heads and dropout off) with a dynamic
batch dimension; its input is named `x` and its output `logits`. This module imports torch; the CLI imports it
only for this command.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from archc.compiler import Compiled
from archc.errors import ArchError
from archc.files import write_atomic
from archc.tools.runtime import build_model

OPSET = 17
_VERIFY_HINT = "archc verify compares a spec with a model"


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a `torch.save`d state_dict into the model, strictly."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as e:
        first = (str(e).splitlines() or [""])[0]
        hint = "give a file written by torch.save(model.state_dict(), ...)"
        raise ArchError("E095", f"cannot read the weights {path}: {first}", None, hint) from None
    if not isinstance(state, dict):
        raise ArchError("E095", f"{path} holds a {type(state).__name__}, not a state_dict", None, "save model.state_dict()")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shapes differ
        lines = [line.strip() for line in str(e).splitlines() if line.strip().startswith("size mismatch")]
        raise ArchError("E095", f"the weights in {path} do not fit the spec: {lines[0] if lines else e}", None, _VERIFY_HINT) from None
    problems = [*(f"missing {k}" for k in result.missing_keys), *(f"unexpected {k}" for k in result.unexpected_keys)]
    if problems:
        shown = ", ".join(problems[:3]) + (f" and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise ArchError("E095", f"the weights in {path} do not fit the spec: {shown}", None, _VERIFY_HINT)


def export_onnx(compiled: Compiled, target: Path, weights: Path | None = None) -> None:
    """Write the spec's model to `target` as ONNX, traced at the spec's input size (the one `compiled` was elaborated
    at), whole or not at all: random init, or a state_dict file's weights."""
    model = build_model(compiled)
    if weights is not None:
        load_weights(model, weights)
    model.eval()
    x = torch.randn(1, *compiled.arch.input_shape)
    fd, tmp = tempfile.mkstemp(suffix=".onnx")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
            torch.onnx.export(
                model,
                (x,),
                tmp,
                dynamo=False,
                input_names=["x"],
                output_names=["logits"],
                dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=OPSET,
            )
        write_atomic(target, Path(tmp).read_bytes())
    finally:
        Path(tmp).unlink(missing_ok=True)
