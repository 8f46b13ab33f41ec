"""The Python API: `build` a spec into a PyTorch module in memory, `analyze` it into typed figures.

`build` runs the same pipeline as `archc compile` (parse > check > elaborate > emit) and executes the emitted
source as a module registered in `sys.modules` and `linecache`, so its classes pickle, script and compile as a
generated file's do. torch is imported only when a module is built; `analyze` never imports it.
"""

from __future__ import annotations

import hashlib
import linecache
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from archc.compiler import Compiled, compile_spec

if TYPE_CHECKING:
    from torch import nn


def compile_for(
    path: Path | str, params: dict[str, Any] | None = None, in_channels: int | None = None, input_size: tuple[int, int] | None = None
) -> Compiled:
    """The spec compiled with arch parameters `params`, its input's channels and/or height and width replaced."""
    compiled = compile_spec(path, dict(params or {}))
    if in_channels is None and input_size is None:
        return compiled
    c, h, w = compiled.arch.input_shape
    shape = (in_channels or c, *(input_size or (h, w)))
    if shape == (c, h, w):
        return compiled
    return compile_spec(path, dict(params or {}), input_shape=(shape[0], shape[1], shape[2]))


def load_module(compiled: Compiled) -> types.ModuleType:
    """The emitted source of `compiled` executed as a module, registered under a name unique to that source."""
    source = compiled.python()
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    name = f"archc_built_{compiled.module_name}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    filename = f"<archc build {compiled.path.as_posix()} {digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(name, f"{compiled.module_name}, built by archc from {compiled.path.as_posix()}")
    module.__file__ = filename
    sys.modules[name] = module
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def build(path: Path | str, *, in_channels: int | None = None, input_size: tuple[int, int] | None = None, **params: Any) -> nn.Module:
    """The spec at `path` as a PyTorch module, compiled in memory through the same emitter as `archc compile`.

    `params` are the arch's parameters (`num_classes=10`), checked as `-D` definitions are; `in_channels` and
    `input_size` (height, width) replace the spec's input. Errors in the spec raise `archc.errors.ArchError`.
    """
    compiled = compile_for(path, params, in_channels, input_size)
    module = load_module(compiled)
    model: nn.Module = getattr(module, compiled.module_name)(**params)
    return model


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReceptiveField(_Frozen):
    """Size, jump (stride in input pixels) and centre of the first unit, per dimension (height, width)."""

    size: tuple[float, float]
    jump: tuple[float, float]
    start: tuple[float, float]


class Memory(_Frozen):
    """Parameter, buffer and training-activation bytes for `batch` images of `dtype`."""

    dtype: str
    batch: int
    param_bytes: int
    buffer_bytes: int
    activation_bytes: int


class Layer(_Frozen):
    """One row of the summary: a node of the graph."""

    name: str
    op: str
    shape: list[int]
    batched: bool
    """False for a learnable tensor (`param`) or a reshape of one: `shape` is its whole shape, with no batch"""
    params: int
    macs: int
    receptive_field: ReceptiveField
    activation_bytes: int
    training_only: bool
    line: int


class Report(_Frozen):
    """What `archc summary` shows, as typed objects (the fields of `archc summary --json`)."""

    name: str
    spec: str
    meta: dict[str, Any]
    input: list[int]
    output: list[int]
    outputs: list[list[int]]
    params: int
    trainable_params: int
    buffers: int
    macs: int
    training_only_macs: int
    receptive_field: ReceptiveField
    """the headline: of the last spatial feature map (docs/analysis.md)"""
    receptive_field_at: str
    """the name of that map's node"""
    output_receptive_field: ReceptiveField
    """of the eval-mode output: through global pooling, for a classifier"""
    memory: Memory
    warnings: list[str]
    layers: list[Layer]


def analyze(
    path: Path | str,
    *,
    in_channels: int | None = None,
    input_size: tuple[int, int] | None = None,
    batch: int = 1,
    dtype: str = "fp32",
    **params: Any,
) -> Report:
    """The summary of the spec at `path` (shapes, parameters, MACs, receptive fields, memory) without torch."""
    from archc.tools.summary import summary_data

    return Report.model_validate(summary_data(compile_for(path, params, in_channels, input_size), batch, dtype))
