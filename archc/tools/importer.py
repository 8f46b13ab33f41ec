"""`archc import`: a spec from a model that is already written (torchvision, timm, or a Python file).

The model is built without weights and each module is traced on its own with torch.fx, its submodules kept as
leaves: a module of a class the op table knows (`nn.Conv2d`, `nn.BatchNorm2d`, ...) becomes an op call with every
setting that differs from the op's default, a plain `nn.Sequential` of layers a `seq(...)`, and every other module
an instance of a `block` named after its class, whose members are the module's children and whose forward is its
traced graph. Instances of a class with the same structure share one block, parameterised by the values that
differ between them (channels, stride, groups, ...); a class whose instances differ in structure gives one block
per structure (`Bottleneck`, `Bottleneck2`). A run of anonymous members that are calls of one block becomes a
loop. Sizes a forward reads (`x.shape`) come from running its graph once on shape-only (fake) tensors, at the size
the model applies the module to: they become the numbers of `reshape`, `split` and slices. A forward that branches
on a size, which the plain trace cannot follow, is traced at that size (`_SizedTracer`). The result goes through
`archc fmt` and is compiled (and its PyTorch module written) before it is returned: what the language cannot
express, or the tracer cannot trace, is a located error (E120, E121) naming the module and the op, never a partial
spec.

This module imports torch; the CLI imports it only for `archc import` and for a SOURCE given to
`summary`/`diagram`/`report`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import keyword
import math
import operator
import re
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.fx
from torch import nn
from torch.nn import functional as F

from archc import ops
from archc.compiler import compile_spec
from archc.errors import ArchError, Loc
from archc.lang.fmt import format_text
from archc.tools.source import SOURCE_PATTERN

# --- sources -------------------------------------------------------------------------------------------------------

DEFAULT_INPUT = (3, 224, 224)
BATCH = 2  # the batch the importer runs modules on, shape-only


@dataclass
class Source:
    """A model to import: the module (eval mode), its name, its reference string and its input size."""

    model: nn.Module
    name: str
    reference: str | None
    input_shape: tuple[int, int, int]


def load_source(text: str, input_shape: tuple[int, int, int] | None = None) -> Source:
    """Build the model a SOURCE names, without weights."""
    match = SOURCE_PATTERN.match(text)
    if match is None:
        raise ArchError("E094", f"`{text}` names no model", None, "give torchvision:NAME, timm:NAME or FILE.py:CALLABLE")
    library, name, file, func = match.groups()
    if library is not None:
        from archc.tools.verify import library_model

        torch.manual_seed(0)
        model = library_model(library, name)
        shape = input_shape or _library_input(library, name, model)
        return Source(model.eval(), _identifier(name), f"{library}:{name}", shape)
    path = Path(file)
    if not path.is_file():
        raise ArchError("E006", f"{path}: no such file", None, "give FILE.py:CALLABLE, FILE a Python file")
    spec = importlib.util.spec_from_file_location(f"archc_import_{_identifier(path.stem)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # inspect finds the classes' source lines through it
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's file: any error it raises is reported, located where Python says
        raise ArchError("E121", f"{path} raised {type(e).__name__} when run: {e}", None, "fix the file so that it imports") from None
    maker = getattr(module, func, None)
    if maker is None or not callable(maker):
        raise ArchError("E094", f"{path} defines no callable `{func}`", None, "name a function or class that returns an nn.Module")
    torch.manual_seed(0)
    model = maker()
    if not isinstance(model, nn.Module):
        raise ArchError("E094", f"{path}:{func}() returned {type(model).__name__}, not an nn.Module", None, "return the model")
    return Source(model.eval(), _identifier(func), None, input_shape or DEFAULT_INPUT)


def _library_input(library: str, name: str, model: nn.Module) -> tuple[int, int, int]:
    """The input size the library evaluates the model at: torchvision's weights' crop size, timm's config."""
    if library == "timm":
        size = getattr(model, "pretrained_cfg", {}).get("input_size")
        if isinstance(size, (tuple, list)) and len(size) == 3:
            return int(size[0]), int(size[1]), int(size[2])
        return DEFAULT_INPUT
    import torchvision

    size = getattr(model, "image_size", None)  # a ViT built without weights takes this size only
    if isinstance(size, int) and not isinstance(size, bool):
        return 3, size, size
    try:
        weights = next(iter(torchvision.models.get_model_weights(name)))
        crop = weights.transforms().crop_size[0]
    except (StopIteration, ValueError, AttributeError, IndexError, TypeError):
        return DEFAULT_INPUT
    return 3, int(crop), int(crop)


def _identifier(text: str) -> str:
    out = re.sub(r"\W", "_", text)
    return out if out and not out[0].isdigit() else f"m_{out}"


# --- errors ----------------------------------------------------------------------------------------------------------


def _class_loc(cls: type) -> Loc | None:
    try:
        file = inspect.getsourcefile(cls)
        line = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return None
    return Loc(file, line, 1) if file else None


def _node_loc(node: torch.fx.Node, cls: type) -> Loc | None:
    frames = re.findall(r'File "([^"]+)", line (\d+)', node.stack_trace or "")
    found = [f for f in frames if "/torch/fx/" not in f[0] and Path(f[0]) != Path(__file__)]  # not the tracer's own
    # The model's own line (`F.batch_norm(self.weight, ...)`), not torch's functional dispatch it goes through
    # (torch/nn/functional.py, torch/overrides.py); for a module of torch's own (nn.Upsample), its forward's line.
    torch_dir = Path(torch.__file__).parent
    outside = [f for f in found if torch_dir not in Path(f[0]).parents]
    found = outside or found[:1]
    if found:
        file, line = found[-1]
        return Loc(file, int(line), 1)
    return _class_loc(cls)


def _caller_loc(node: torch.fx.Node, child: nn.Module, cls: type) -> Loc | None:
    """The line of the traced forward where it calls into a method of its member `child` that made the node, else
    the innermost frame's."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\w+)', node.stack_trace or "")
    frames = [f for f in frames if "/torch/fx/" not in f[0] and Path(f[0]) != Path(__file__)]
    own = [c for c in type(child).__mro__ if c not in (nn.Module, object)]
    for k, (_, _, function) in enumerate(frames[1:], 1):
        if any(function in vars(c) for c in own):
            return Loc(frames[k - 1][0], int(frames[k - 1][1]), 1)
    return _node_loc(node, cls)


class _Unsupported(Exception):
    def __init__(self, what: str, hint: str) -> None:
        super().__init__(what)
        self.what, self.hint = what, hint


def _where(path: str, module: nn.Module) -> str:
    return f"`{path or '(the model)'}` ({type(module).__module__}.{type(module).__qualname__})"


# --- spec text with holes --------------------------------------------------------------------------------------------


@dataclass
class Slot:
    """A literal of the spec that may become a block parameter: its value and the name it would take."""

    value: Any
    hint: str
    # A keyword argument written only where its value is not the op's default: `, stride = 2` or nothing.
    keyword: bool = False
    default: Any = None


@dataclass
class Ref:
    """A call of a child block instance inside a body (its arguments are decided once all instances are known)."""

    inst: Instance


Part = str | Slot | Ref


@dataclass
class Instance:
    """A module that becomes a block instance."""

    path: str
    module: nn.Module
    cls: str  # the block's base name
    members: list[tuple[str | None, list[Part]]]  # (name or None for anonymous, constructor text)
    forward: list[Part] | None  # None: members applied in order
    variant: Variant | None = None
    listed: bool = False  # a list of modules, its items applied one by one (`convs[i](x)`), never whole

    def parts(self) -> list[Part]:
        out: list[Part] = []
        for _, text in self.members:
            out.extend(text)
        out.extend(self.forward or [])
        return out

    def key(self) -> tuple[Any, ...]:
        """The structure: the text with holes, children by their variant."""
        skeleton: list[Any] = []
        for name, text in self.members:
            skeleton.append(("member", name))
            skeleton.extend(_skeleton(text))
        skeleton.append(("forward", None if self.forward is None else tuple(_skeleton(self.forward))))
        return (self.cls, self.listed, tuple(skeleton))

    def values(self) -> list[Any]:
        """The values of the holes, in order: own literals and the children's arguments."""
        out: list[Any] = []
        for p in self.parts():
            if isinstance(p, Slot):
                out.append(p.value)
            elif isinstance(p, Ref):
                assert p.inst.variant is not None
                out.extend(p.inst.variant.args(p.inst))
        return out

    def hints(self) -> list[str]:
        out: list[str] = []
        for p in self.parts():
            if isinstance(p, Slot):
                out.append(p.hint)
            elif isinstance(p, Ref):
                assert p.inst.variant is not None
                out.extend(name for name, _ in p.inst.variant.params)
        return out


def _skeleton(parts: list[Part]) -> list[Any]:
    out: list[Any] = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, Slot):
            out.append(("slot", p.hint))
        else:
            assert p.inst.variant is not None
            out.append(("ref", p.inst.variant.name))
    return out


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b and (not isinstance(a, tuple) or all(_same(x, y) for x, y in zip(a, b, strict=True)))


@dataclass
class Variant:
    """A block definition: its instances share a structure; parameters are the holes whose values differ."""

    name: str
    instances: list[Instance]
    params: list[tuple[str, Any]] = field(default_factory=list)  # (name, default)
    # For each hole: the parameter index it reads, or None for a literal.
    holes: list[int | None] = field(default_factory=list)
    vectors: dict[int, list[Any]] = field(default_factory=dict)  # id(instance) -> hole values

    def settle(self) -> None:
        """Decide the parameters: one per distinct column of hole values that differs between instances."""
        for inst in self.instances:
            self.vectors[id(inst)] = inst.values()
        hints = self.instances[0].hints()
        columns = list(zip(*(self.vectors[id(i)] for i in self.instances), strict=True)) if self.vectors else []
        columns = columns or [() for _ in hints]
        seen: dict[tuple[Any, ...], int] = {}
        taken: set[str] = set()
        self.holes = []
        for hint, column in zip(hints, columns, strict=True):
            if all(_same(v, column[0]) for v in column):
                self.holes.append(None)
                continue
            key = tuple((type(v).__name__, repr(v)) for v in column)
            if key not in seen:
                seen[key] = len(self.params)
                name = _param_name(hint, taken)
                taken.add(name)
                default = Counter(repr(v) for v in column).most_common(1)[0][0]
                self.params.append((name, next(v for v in column if repr(v) == default)))
            self.holes.append(seen[key])

    def args(self, inst: Instance) -> list[Any]:
        """The values this instance passes for the parameters."""
        values = self.vectors[id(inst)]
        out: list[Any] = [None] * len(self.params)
        for hole, value in zip(self.holes, values, strict=True):
            if hole is not None:
                out[hole] = value
        return out


RESERVED = {"self", "torch", "nn", "F", "Tensor", "Any", "OrderedDict", "math", "super", "channels", "x", "in_channels"}


def _param_name(hint: str, taken: set[str]) -> str:
    base = hint if hint.isidentifier() and not keyword.iskeyword(hint) and hint not in RESERVED else f"{hint}_value"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


# --- literals --------------------------------------------------------------------------------------------------------


def literal(value: Any) -> str:
    """A value as spec text."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "none"
    if isinstance(value, int):
        return str(value) if value >= 0 else f"-{-value}"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Unsupported(f"the value {value} has no spelling in a spec", "the language has finite numbers only")
        text = repr(abs(value))
        return text if value >= 0 else f"-{text}"
    if isinstance(value, str):
        if '"' in value or "\n" in value:
            raise _Unsupported(f"the string {value!r} has no spelling in a spec", "strings hold no quotes or newlines")
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        items = [literal(v) for v in value]
        if isinstance(value, list):
            return "[" + ", ".join(items) + "]"
        return "(" + items[0] + ",)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    raise _Unsupported(f"the value {value!r} ({type(value).__name__}) has no spelling in a spec", "use numbers, strings or tuples")


def _square(value: Any) -> Any:
    """(3, 3) as 3: what a spec writes for a square kernel."""
    if isinstance(value, (tuple, list)) and len(value) >= 1 and all(v == value[0] for v in value):
        return value[0]
    return tuple(value) if isinstance(value, list) else value


def _op_text(op: str, values: dict[str, Any], positional: tuple[str, ...] = (), first: list[Part] | None = None) -> list[Part]:
    """`op(first, a, b, key = value)`: required arguments by position, the others where they differ from the op's
    default, by keyword."""
    parts: list[Part] = [f"{op}("]
    items: list[list[Part]] = []
    if first is not None:
        items.append(first)
    for name, default in ops.OPS[op].args:
        if name not in values:
            continue
        value = values[name]
        if default is ops.REQUIRED or name in positional:
            items.append([Slot(value, name)])
        else:
            items.append([Slot(value, name, True, default)])
    for i, item in enumerate(items):
        if i and not (isinstance(item[0], Slot) and item[0].keyword):
            parts.append(", ")
        parts.extend(item)
    parts.append(")")
    return parts


# --- fixed tensors: a module's own buffers ---------------------------------------------------------------------------

# The most values a `buffer(...)` writes out as a literal (after taking out a repeat along the first dimension).
BUFFER_LITERAL_LIMIT = 1024


def _buffer_member(module: nn.Module, path: str, name: str, tensor: torch.Tensor) -> list[Part]:
    """`buffer(tensor(...), persistent = false)`: the model's buffer written back as the language builds it, a literal
    of its values, repeated along the first dimension where every slice is the same (BlurPool's filter, one per
    channel: the count a parameter of the block). The written expression is rebuilt here with the calls the generated
    module makes (`torch.tensor(...).repeat(...)`) and must equal the model's tensor, values and dtype, else E120."""

    def fail(why: str, hint: str) -> ArchError:
        return ArchError("E120", f"cannot import {_where(path, module)}: buffer `{name}` {why}", _class_loc(type(module)), hint)

    from torch._subclasses.fake_tensor import FakeTensor

    if isinstance(tensor, FakeTensor):  # set by the forward while the importer ran it on tensors without data
        raise fail(
            "is made by the forward itself, when it runs (timm's ConViT: `self.rel_indices = self.get_rel_indices(N)`)",
            "the language builds fixed tensors when the module is built: set the buffer in `__init__`",
        )
    t = tensor.detach().cpu()
    if t.dtype not in (torch.float32, torch.int64):
        raise fail(f"of dtype {t.dtype}", "the language builds float32 and int64 fixed tensors")
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise fail("holds values that are not finite", "a literal writes finite numbers only")
    recognised = _index_construction(t)
    if recognised is not None:
        construction, built = recognised
        if built.dtype == t.dtype and built.shape == t.shape and torch.equal(built, t):
            persistent_flag = [", persistent = false"] if name in getattr(module, "_non_persistent_buffers_set", set()) else []
            return ["buffer(", *construction, *persistent_flag, ")"]
    count = t.shape[0] if t.dim() >= 1 and t.shape[0] > 1 and bool((t == t[:1]).all()) else 1
    base = t[:1] if count > 1 else t
    if base.numel() > BUFFER_LITERAL_LIMIT:
        raise fail(
            f"of {base.numel():,} values, which no repeat of a smaller tensor gives: too many to write out"
            f" (archc writes up to {BUFFER_LITERAL_LIMIT:,})",
            "the language builds such a tensor from arange(...) and arithmetic (docs/language.md#fixed-tensors-buffer);"
            " write it in the spec by hand",
        )
    values = base.tolist()
    floats = t.is_floating_point()

    def text(v: Any) -> str:
        if isinstance(v, list):
            inner = ", ".join(text(x) for x in v)
            return f"({inner},)" if len(v) == 1 else f"({inner})"
        return repr(float(v)) if floats else str(int(v))

    def number(v: Any) -> Any:
        return [number(x) for x in v] if isinstance(v, list) else float(v) if floats else int(v)

    rebuilt = torch.tensor(number(values))
    if count > 1:
        rebuilt = rebuilt.repeat(count, *([1] * (t.dim() - 1)))
    if rebuilt.dtype != t.dtype or rebuilt.shape != t.shape or not torch.equal(rebuilt, t):
        raise fail("is not rebuilt exactly by the literal written", "a value does not survive the round trip through its text")
    parts: list[Part] = ["buffer("]
    literal_parts: list[Part] = [f"tensor({text(values)})"]
    if count > 1:
        parts += ["repeat(", *literal_parts, ", (", Slot(count, "channels"), *[", 1"] * (t.dim() - 1), "))"]
    else:
        parts += literal_parts
    if name in getattr(module, "_non_persistent_buffers_set", set()):
        parts.append(", persistent = false")
    parts.append(")")
    return parts


def _index_construction(t: torch.Tensor) -> tuple[list[Part], torch.Tensor] | None:
    """The relative position indices of attention over a square window of ws×ws positions, recognised by their values
    and written with `arange`: each returned with the tensor the written expression gives (the same torch calls the
    generated module makes), which the caller compares with the model's.

    Swin's (torchvision's `relative_position_index`, timm's RelPosBias): (dh + ws - 1)·(2ws - 1) + dw + ws - 1 for
    positions i, j, which is k(i) - k(j) + (ws - 1)·2ws with k(p) = (p // ws)·(2ws - 1) + p % ws; flat (ws⁴) or
    ws²×ws². LeViT/EfficientFormer's `attention_bias_idxs`: |dh|·ws + |dw|, ws²×ws²."""
    if t.dtype != torch.int64 or t.dim() not in (1, 2) or t.numel() < 1:
        return None
    area = math.isqrt(t.numel())
    ws = math.isqrt(area)
    if ws < 1 or ws * ws != area or area * area != t.numel() or (t.dim() == 2 and tuple(t.shape) != (area, area)):
        return None
    p = torch.arange(area)
    rows, cols = p // ws, p % ws
    span = 2 * ws - 1
    key = rows * span + cols
    swin = key[:, None] - key[None, :] + (ws - 1) * 2 * ws
    n, w, m, c = Slot(area, "window_area"), Slot(ws, "window_size"), Slot(span, "window_span"), Slot((ws - 1) * 2 * ws, "index_offset")
    k: list[Part] = ["(arange(", n, ") // ", w, " * ", m, " + arange(", n, ") % ", w, ")"]
    swin_parts: list[Part] = [*k, "[:, none] - ", *k, "[none, :] + ", c]
    if t.dim() == 1 and torch.equal(swin.flatten(), t):
        return ["flatten(", *swin_parts, ")"], swin.flatten()
    if t.dim() == 2 and torch.equal(swin, t):
        return swin_parts, swin
    offsets = (rows[:, None] - rows[None, :]).abs() * ws + (cols[:, None] - cols[None, :]).abs()
    if t.dim() == 2 and torch.equal(offsets, t):
        r: list[Part] = ["(arange(", n, ") // ", w, ")"]
        q: list[Part] = ["(arange(", n, ") % ", w, ")"]
        written: list[Part] = ["abs(", *r, "[:, none] - ", *r, "[none, :]) * ", w, " + abs(", *q, "[:, none] - ", *q, "[none, :])"]
        return written, offsets
    return None


def _window_mask_construction(t: torch.Tensor) -> tuple[list[Part], torch.Tensor] | None:
    """Shifted-window attention's mask (torchvision's Swin builds it in the forward from sizes alone): over an H×W map
    cut into ws×ws windows after a cyclic shift by s, the positions of a window that came from different regions
    (3 along each axis: before H - ws, before H - s, the rest) do not attend to each other, -100 added to their score.
    Region of a row h: h // (H - ws) + h // (H - s), where H ≥ 2ws. Recognised by its values, (1, nW, 1, ws², ws²),
    and written with `arange`; returned with the tensor the written expression gives."""
    if t.dtype != torch.float32 or t.dim() != 5 or t.shape[0] != 1 or t.shape[2] != 1 or t.shape[3] != t.shape[4]:
        return None
    windows, area = int(t.shape[1]), int(t.shape[3])
    ws = math.isqrt(area)
    if ws < 2 or ws * ws != area:
        return None
    for nh in range(1, windows + 1):
        if windows % nh:
            continue
        nw = windows // nh
        height, width = nh * ws, nw * ws
        if height < 2 * ws or width < 2 * ws:
            continue
        for sh in range(1, ws):
            for sw in range(1, ws):
                rh = torch.arange(height) // (height - ws) + torch.arange(height) // (height - sh)
                rw = torch.arange(width) // (width - ws) + torch.arange(width) // (width - sw)
                region = (3 * rh[:, None] + rw[None, :]).reshape(nh, ws, nw, ws).permute(0, 2, 1, 3).reshape(windows, area)
                built = ((1 // ((region[:, None, :] - region[:, :, None]).abs() + 1) - 1) * 100.0).reshape(1, windows, 1, area, area)
                if built.dtype != t.dtype or not torch.equal(built, t):
                    continue
                h, w = Slot(height, "height"), Slot(width, "width")
                k, s, u = Slot(ws, "window_size"), Slot(sh, "shift"), Slot(sw, "shift")
                row: list[Part] = ["(arange(", h, ") // (", h, " - ", k, ") + arange(", h, ") // (", h, " - ", s, "))"]
                col: list[Part] = ["(arange(", w, ") // (", w, " - ", k, ") + arange(", w, ") // (", w, " - ", u, "))"]
                cells: list[Part] = ["reshape(3 * ", *row, "[:, none] + ", *col, "[none, :], (", Slot(nh, "rows"), ", ", k, ", ",
                                     Slot(nw, "columns"), ", ", k, "))"]  # fmt: skip
                grouped: list[Part] = ["reshape(permute(", *cells, ", (0, 2, 1, 3)), (", Slot(windows, "windows"), ", "]
                grouped += [Slot(area, "window_area"), "))"]
                return [
                    "reshape((1 // (abs(",
                    *grouped,
                    "[:, none, :] - ",
                    *grouped,
                    "[:, :, none]) + 1) - 1) * 100.0, (1, ",
                    Slot(windows, "windows"),
                    ", 1, ",
                    Slot(area, "window_area"),
                    ", ",
                    Slot(area, "window_area"),
                    "))",
                ], built
    return None


def _constant_member(module: nn.Module, path: str, tensor: torch.Tensor) -> list[Part]:
    """A tensor the forward makes from sizes alone, which the trace took in as a constant (`_FACTORY_METHODS`): a
    `buffer(..., persistent = false)` written with `arange` where archc recognises it (Swin's shifted-window mask), else
    E120: a literal of it would not read as the model's code."""
    recognised = _window_mask_construction(tensor.detach().cpu())
    if recognised is None:
        raise ArchError(
            "E120",
            f"cannot import {_where(path, module)}: a tensor of shape {tuple(tensor.shape)} that its forward makes from sizes",
            _class_loc(type(module)),
            "the language builds fixed tensors with `buffer(...)` from arange(...) and arithmetic"
            " (docs/language.md#fixed-tensors-buffer): write it in the spec by hand",
        )
    return ["buffer(", *recognised[0], ", persistent = false)"]


# --- leaf modules: the op table in reverse ---------------------------------------------------------------------------


def _conv(m: nn.Conv2d) -> tuple[str, dict[str, Any]]:
    if m.padding_mode != "zeros":
        raise _Unsupported(f"padding_mode={m.padding_mode!r}", "archc's conv pads with zeros only")
    return "conv", {
        "out_channels": m.out_channels,
        "kernel_size": _square(m.kernel_size),
        "stride": _square(m.stride),
        "padding": m.padding if isinstance(m.padding, str) else _square(m.padding),
        "dilation": _square(m.dilation),
        "groups": m.groups,
        "bias": m.bias is not None,
    }


def _conv1d(m: nn.Conv1d) -> tuple[str, dict[str, Any]]:
    if m.padding_mode != "zeros":
        raise _Unsupported(f"padding_mode={m.padding_mode!r}", "archc's conv1d pads with zeros only")
    return "conv1d", {
        "out_channels": m.out_channels,
        "kernel_size": m.kernel_size[0],
        "stride": m.stride[0],
        "padding": m.padding if isinstance(m.padding, str) else m.padding[0],
        "dilation": m.dilation[0],
        "groups": m.groups,
        "bias": m.bias is not None,
    }


def _batchnorm(m: nn.modules.batchnorm._BatchNorm) -> tuple[str, dict[str, Any]]:
    if m.momentum is None:
        raise _Unsupported("momentum=None (a cumulative moving average)", "archc's batchnorm takes a number")
    return "batchnorm", {"eps": m.eps, "momentum": m.momentum, "affine": m.affine, "track_running_stats": m.track_running_stats}


def _layernorm(m: nn.LayerNorm) -> tuple[str, dict[str, Any]]:
    if len(m.normalized_shape) != 1:
        raise _Unsupported(f"normalized_shape={m.normalized_shape}", "archc's layernorm normalises the last dimension only")
    op = "layernorm2d" if any(c.__name__ == "LayerNorm2d" for c in type(m).__mro__) else "layernorm"
    return op, {"eps": m.eps, "elementwise_affine": m.elementwise_affine, "bias": getattr(m, "bias", None) is not None}


def _pool(op: str, m: Any, names: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    values = {n: _square(getattr(m, n)) for n in names}
    if "stride" in values and _same(values["stride"], values["kernel_size"]):
        values["stride"] = None
    return op, values


def _plain(op: str, *names: str) -> Callable[[Any], tuple[str, dict[str, Any]]]:
    return lambda m: (op, {n: getattr(m, n) for n in names})


def _maxpool(m: nn.MaxPool2d) -> tuple[str, dict[str, Any]]:
    if m.return_indices:
        raise _Unsupported("return_indices=True", "archc's maxpool returns the pooled map only")
    return _pool("maxpool", m, ("kernel_size", "stride", "padding", "dilation", "ceil_mode"))


def _avgpool(m: nn.AvgPool2d) -> tuple[str, dict[str, Any]]:
    if m.divisor_override is not None:
        raise _Unsupported(f"divisor_override={m.divisor_override}", "archc's avgpool divides by the window")
    return _pool("avgpool", m, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"))


def _adaptive(op: str) -> Callable[[Any], tuple[str, dict[str, Any]]]:
    def convert(m: Any) -> tuple[str, dict[str, Any]]:
        size = m.output_size
        if isinstance(size, (tuple, list)) and any(s is None for s in size):
            raise _Unsupported(f"output_size={size}", "archc's adaptive pooling takes sizes, not None")
        return op, {"output_size": tuple(size) if isinstance(size, list) else size}

    return convert


def _prelu(m: nn.PReLU) -> tuple[str, dict[str, Any]]:
    return "prelu", {"num_parameters": m.num_parameters}


def _stochastic_depth(m: Any) -> tuple[str, dict[str, Any]]:
    return "stochastic_depth", {"p": m.p, "mode": m.mode}


def _drop_path(m: Any) -> tuple[str, dict[str, Any]]:
    """timm's DropPath: torchvision's stochastic depth by sample (the same draw, `bernoulli_(1 - p)` on a
    (batch, 1, ...) tensor, from the global generator) where it scales the kept samples by 1 / (1 - p)."""
    if not m.scale_by_keep:
        raise ArchError(
            "E120",
            f"cannot import timm's DropPath(drop_prob = {m.drop_prob}, scale_by_keep = False)",
            _class_loc(type(m)),
            "the language's stochastic_depth scales the samples it keeps by 1 / (1 - p)",
        )
    return "stochastic_depth", {"p": m.drop_prob, "mode": "row"}


def _mha(m: nn.MultiheadAttention) -> tuple[str, dict[str, Any]]:
    if not m.batch_first:
        raise _Unsupported("batch_first=False", "archc's mha takes tokens batch first (N×L×D)")
    if not m._qkv_same_embed_dim or m.bias_k is not None or m.add_zero_attn:
        raise _Unsupported("keys or values of their own sizes, or added to", "archc's mha attends a tensor to itself")
    return "mha", {"num_heads": m.num_heads, "dropout": m.dropout, "bias": m.in_proj_bias is not None}


# nn's padding modules, by the base class of each mode.
_PAD_MODES = {"_ConstantPadNd": "constant", "_ReflectionPadNd": "reflect", "_ReplicationPadNd": "replicate", "_CircularPadNd": "circular"}


def _pad(m: Any) -> tuple[str, dict[str, Any]]:
    mode = next(_PAD_MODES[c.__name__] for c in type(m).__mro__ if c.__name__ in _PAD_MODES)
    values: dict[str, Any] = {"pad": tuple(m.padding), "mode": mode}
    if mode == "constant":
        values["value"] = float(m.value)
    return "pad", values


def _permute(m: Any) -> tuple[str, dict[str, Any]]:
    return "permute", {"dims": tuple(m.dims)}


LEAVES: dict[type, Callable[[Any], tuple[str, dict[str, Any]]]] = {
    nn.Conv2d: _conv,
    nn.Conv1d: _conv1d,
    nn.Linear: lambda m: ("linear", {"out_features": m.out_features, "bias": m.bias is not None}),
    nn.BatchNorm2d: _batchnorm,
    nn.BatchNorm1d: _batchnorm,
    nn.LayerNorm: _layernorm,
    nn.GroupNorm: lambda m: ("groupnorm", {"num_groups": m.num_groups, "eps": m.eps, "affine": m.affine}),
    nn.InstanceNorm2d: _plain("instancenorm", "eps", "momentum", "affine", "track_running_stats"),
    nn.LocalResponseNorm: _plain("local_response_norm", "size", "alpha", "beta", "k"),
    nn.ReLU: _plain("relu", "inplace"),
    nn.ReLU6: _plain("relu6", "inplace"),
    nn.Sigmoid: _plain("sigmoid"),
    nn.Tanh: _plain("tanh"),
    nn.Hardtanh: _plain("hardtanh", "min_val", "max_val", "inplace"),
    nn.SiLU: _plain("silu", "inplace"),
    nn.GELU: _plain("gelu", "approximate"),
    nn.Hardswish: _plain("hardswish", "inplace"),
    nn.Hardsigmoid: _plain("hardsigmoid", "inplace"),
    nn.LeakyReLU: _plain("leaky_relu", "negative_slope", "inplace"),
    nn.ELU: _plain("elu", "alpha", "inplace"),
    nn.Mish: _plain("mish", "inplace"),
    nn.Softmax: _plain("softmax", "dim"),
    nn.LogSoftmax: _plain("log_softmax", "dim"),
    nn.PReLU: _prelu,
    nn.MaxPool2d: _maxpool,
    nn.AvgPool2d: _avgpool,
    nn.AdaptiveAvgPool2d: _adaptive("adaptive_avgpool"),
    nn.AdaptiveMaxPool2d: _adaptive("adaptive_maxpool"),
    nn.Flatten: _plain("flatten", "start_dim", "end_dim"),
    nn.Unflatten: lambda m: ("unflatten", {"dim": m.dim, "sizes": tuple(m.unflattened_size)}),
    nn.Dropout: _plain("dropout", "p", "inplace"),
    nn.Identity: lambda m: ("identity", {}),
    nn.MultiheadAttention: _mha,
    **{
        getattr(nn, f"{kind}Pad{k}d"): _pad
        for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")
        for k in (1, 2, 3)
        if hasattr(nn, f"{kind}Pad{k}d")
    },
}
# Classes of the libraries that are one op (matched by module and name: the libraries are imported lazily).
NAMED_LEAVES: dict[tuple[str, str], Callable[[Any], tuple[str, dict[str, Any]]]] = {
    ("torchvision.ops.stochastic_depth", "StochasticDepth"): _stochastic_depth,
    ("timm.layers.drop", "DropPath"): _drop_path,
    ("torchvision.ops.misc", "Permute"): _permute,
    ("torchvision.models.convnext", "LayerNorm2d"): _layernorm,
    ("timm.layers.norm", "LayerNorm2d"): _layernorm,
    ("timm.layers.norm", "LayerNorm"): _layernorm,
    ("timm.layers.linear", "Linear"): LEAVES[nn.Linear],
    ("timm.layers.norm", "GroupNorm"): LEAVES[nn.GroupNorm],
    ("timm.layers.norm", "GroupNorm1"): LEAVES[nn.GroupNorm],  # F.group_norm with its own weight: nn.GroupNorm's forward
    ("timm.models.metaformer", "LayerNorm2dNoBias"): _layernorm,  # timm's LayerNorm2d, its bias None
    ("timm.models.metaformer", "LayerNormNoBias"): _layernorm,
    # timm's own activations (`create_act_layer`), each the torch.nn activation it computes.
    ("timm.layers.activations", "Sigmoid"): _plain("sigmoid"),
    ("timm.layers.activations", "Tanh"): _plain("tanh"),
    ("timm.layers.activations", "Swish"): _plain("silu", "inplace"),
    ("timm.layers.activations", "Mish"): lambda m: ("mish", {"inplace": getattr(m, "inplace", False)}),
    ("timm.layers.activations", "HardSigmoid"): _plain("hardsigmoid", "inplace"),
    ("timm.layers.activations", "HardSwish"): _plain("hardswish", "inplace"),
    ("timm.layers.activations", "GELU"): lambda m: ("gelu", {}),  # F.gelu(input); its `inplace` is a dummy
    ("timm.layers.activations", "GELUTanh"): lambda m: ("gelu", {"approximate": "tanh"}),
}
# timm's norm followed by its activation in one module (`BatchNormAct2d`, `GroupNormAct`): the op, then the activation
# inline.
NORM_ACT = {("timm.layers.norm_act", "BatchNormAct2d"), ("timm.layers.norm_act", "GroupNormAct")}
# LayerNormAct2d (LayerNormAct): F.layer_norm with its own weight over the channels permuted last (the last dimension).
NORM_ACT |= {("timm.layers.norm_act", "LayerNormAct2d"), ("timm.layers.norm_act", "LayerNormAct")}


def _leaf_converter(m: nn.Module) -> Callable[[Any], tuple[str, dict[str, Any]]] | None:
    cls = type(m)
    named = NAMED_LEAVES.get((cls.__module__, cls.__name__))
    if named is not None:
        return named
    return LEAVES.get(cls)


def _norm_act(m: nn.Module, path: str) -> tuple[list[Part], tuple[str, dict[str, Any]] | None]:
    """timm's BatchNormAct2d (GroupNormAct, LayerNormAct2d, LayerNormAct): batchnorm's (groupnorm's, layernorm2d's,
    layernorm's) text, and the activation its forward applies after it (None: identity)."""
    drop, act = getattr(m, "drop", None), getattr(m, "act", None)
    if drop is not None and not isinstance(drop, nn.Identity):
        raise ArchError(
            "E120", f"cannot import {_where(path, m)}: drop block after the norm", _class_loc(type(m)), "the language has no drop block"
        )
    convert = _leaf_converter(act) if act is not None else None
    if act is None or convert is None:
        raise ArchError(
            "E120", f"cannot import {_where(path, m)}: its activation {type(act).__name__}", _class_loc(type(m)), "an op's activation"
        )
    try:
        if isinstance(m, nn.LayerNorm):
            op, values = _layernorm(m)
            op = "layernorm2d" if type(m).__name__ == "LayerNormAct2d" else op
        else:
            op, values = LEAVES[nn.GroupNorm](m) if isinstance(m, nn.GroupNorm) else _batchnorm(m)  # type: ignore[arg-type]
        post = convert(act)
    except _Unsupported as e:
        raise ArchError("E120", f"cannot import {_where(path, m)}: {e.what}", _class_loc(type(m)), e.hint) from None
    if ops.OPS[post[0]].functional is None and post[0] != "identity":
        raise ArchError("E120", f"cannot import {_where(path, m)}: activation {post[0]} inline", _class_loc(type(m)), None)
    return _op_text(op, values), None if post[0] == "identity" else post


def _named_norm_acts(m: nn.Module) -> bool:
    """A Sequential of named items, one of them timm's norm with an activation after it: a block whose forward applies
    its items in order, the activation inline (in a `seq` it would need an index of its own)."""
    children = list(m.named_children())
    if not _sequential_like(m) or not all(n.isidentifier() and not keyword.iskeyword(n) for n, _ in children):
        return False
    return any(
        (type(c).__module__, type(c).__name__) in NORM_ACT and not isinstance(getattr(c, "act", None), nn.Identity) for _, c in children
    )


def _is_plain_sequential(m: nn.Module) -> bool:
    return type(m) is nn.Sequential


def _sequential_like(m: nn.Module) -> bool:
    """A Sequential (or a subclass that keeps its forward): its children run in order."""
    return isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward


# --- forward: torch.fx graph to spec text -------------------------------------------------------------------------------


def _wrapped_functions() -> tuple[Callable[..., Any], ...]:
    """Library functions traced as one call, each written with ops (`_LEAF_FUNCTIONS`): torchvision's
    `channel_shuffle` reads `x.size()`, which a spec spells `unflatten`, `transpose`, `flatten`."""
    try:
        from torchvision.models.shufflenetv2 import channel_shuffle
    except ImportError:  # pragma: no cover - torchvision is a dependency of the importer
        return ()
    return (channel_shuffle,)


# Modules whose `torch.fx.wrap`ped functions are traced through, not kept as one call: torchvision's Swin wraps its
# window attention, patch merging and bias lookup (`shifted_window_attention`, `_patch_merging_pad`,
# `_get_relative_position_bias`) so that FX graphs keep them whole; a spec writes what they do with ops.
_TRACED_THROUGH = ("torchvision.models.swin_transformer",)


@contextlib.contextmanager
def _through_wrapped() -> Iterator[None]:
    """torch.fx's table of wrapped functions without those of `_TRACED_THROUGH`'s modules, while a trace runs."""
    from torch.fx import _symbolic_trace

    table = _symbolic_trace._wrapped_fns_to_patch
    through = [vars(m) for name in _TRACED_THROUGH if (m := sys.modules.get(name)) is not None]
    held = {key: found for key, found in table.items() if any(found is g for g in through)}
    for key in held:
        del table[key]
    try:
        yield
    finally:
        table.update(held)


def _functional_members(graph: torch.fx.Graph, module: nn.Module, path: str) -> None:
    """`F.linear(x, self.qkv.weight, self.qkv.bias)` (torchvision's Swin passes its members' weights to a function):
    the member applied, `self.qkv(x)`, where the weights are a member Linear's own, the bias included as it has one.
    A member's weight with a bias the forward computes (Swin V2 zeroes the keys' third of `qkv.bias` in every
    forward) is E120: a spec applies a Linear with its own bias."""
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target is not F.linear:
            continue
        names = ("input", "weight", "bias")
        bound = dict(zip(names, node.args, strict=False)) | dict(node.kwargs)
        weight, bias = bound.get("weight"), bound.get("bias")
        if not isinstance(weight, torch.fx.Node) or weight.op != "get_attr" or not str(weight.target).endswith(".weight"):
            continue
        owner = str(weight.target).rsplit(".", 1)[0]
        if "." in owner or not isinstance(getattr(module, owner, None), nn.Linear):
            continue
        child = getattr(module, owner)
        if child.bias is None:
            if bias is not None:
                continue
        elif not (isinstance(bias, torch.fx.Node) and bias.op == "get_attr" and str(bias.target) == f"{owner}.bias"):
            if bias is None:
                continue
            raise ArchError(
                "E120",
                f"cannot import {_where(path, module)}: `linear` with `{owner}`'s weight and a bias its forward computes"
                f" (torchvision's Swin V2 zeroes the keys' third of `{owner}.bias` in every forward)",
                _node_loc(node, type(module)),
                "a spec applies a Linear with its own weight and bias",
            )
        with graph.inserting_before(node):
            call = graph.call_module(owner, (bound["input"],))
        call.meta = dict(node.meta)
        node.replace_all_uses_with(call)
        graph.erase_node(node)
        for attr in (weight, bias):
            if isinstance(attr, torch.fx.Node) and not attr.users:
                graph.erase_node(attr)


class _ChildrenAsLeaves(torch.fx.Tracer):
    """Traces one module's forward, its submodules called as leaves, but for the lists of modules with a forward of
    their own (`_own_list`), whose forward is traced into the caller's: their items are the leaves."""

    def __init__(self, through: set[int] | None = None) -> None:
        super().__init__(autowrap_functions=_wrapped_functions())
        self.record_stack_traces = True  # each node's Python line, for the errors
        # A buffer read is a node (`get_attr`), also where the forward computes from it (MaxViT's
        # `self.relative_position_index.view(-1)`), not a constant folded into the graph.
        self.proxy_buffer_attributes = True
        self.through = through or set()

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name != "" and id(m) not in self.through


def _own_list(m: nn.Module) -> bool:
    """A ModuleList, ModuleDict or Sequential subclass with a forward of its own and numbered items (timm's
    `MixedConv2d`, VoVNet's `SequentialAppendList`): its forward applies its items, which a spec names by index only,
    so it is traced into its caller's forward (`conv_pw[0](x)`) and declared a list of modules."""
    if not isinstance(m, (nn.ModuleList, nn.ModuleDict, nn.Sequential)) or type(m) in (nn.ModuleList, nn.ModuleDict, nn.Sequential):
        return False
    if any(type(m).forward is base.forward for base in (nn.Module, nn.Sequential)):
        return False
    names = [n for n, _ in m.named_children()]
    return bool(names) and names == [str(i) for i in range(len(names))] and not list(m.parameters(recurse=False))


def _fake_mode() -> Any:
    """A mode in which tensors have shapes but no data: running a model in it costs nothing."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode(allow_non_fake_inputs=True)


_NO_VALUE: Any = object()  # a value the sized trace does not know (an argument held at a constant, a failed run)


class _ValueProxy(torch.fx.Proxy):
    """A proxy that holds the value its node has at the size the model applies the module to (a shape-only tensor),
    as HuggingFace transformers' `HFTracer` does: `if`, `len`, `int` and iteration answer from that value, so a
    forward is traced along the branch the model takes at that size, and a size it reads is a number."""

    value: Any = _NO_VALUE

    def __getattr__(self, k: str) -> Any:
        value = self.__dict__.get("value", _NO_VALUE)
        if isinstance(value, torch.Tensor) and not k.startswith("__"):
            found = getattr(value, k, None)
            if found is not None and not callable(found) and not _holds_tensor(found):
                return tuple(found) if isinstance(found, torch.Size) else found  # `x.shape`, `x.ndim`: numbers
        return super().__getattr__(k)

    def __len__(self) -> int:
        return len(_SizedTracer.concrete(self, "`len` of"))

    def __int__(self) -> int:
        return int(_SizedTracer.concrete(self, "`int` of"))

    def __index__(self) -> int:
        return operator.index(_SizedTracer.concrete(self, "an index from"))


_FACTORY_METHODS = ("new_zeros", "new_ones", "new_full")


class _SizedTracer(_ChildrenAsLeaves):
    """torch.fx's trace specialised to one input size, for a forward the plain trace cannot follow (`if x.shape[-2] <
    7`, timm's padding "same" computed from the input): each proxy holds the value its node has when the module runs on
    a shape-only tensor of the size the model applies it to (`_fake_mode`), and an operation whose value holds no tensor
    (a size, arithmetic on sizes, a comparison of sizes) is that number itself, not a node. A branch on a tensor's
    values, not its sizes, is still an error."""

    def __init__(self, through: set[int], shape: tuple[int, ...]) -> None:
        super().__init__(through)
        self.mode = _fake_mode()
        with self.mode:
            self.input = torch.empty(*shape)
        self.fed = False
        self.fakes: dict[int, torch.Tensor] = {}
        self.running = False  # computing a value: modules run as they are, attributes read as they are

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.running:
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if self.running:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def proxy(self, node: torch.fx.Node) -> torch.fx.Proxy:
        return _ValueProxy(node, self)

    def create_proxy(
        self,
        kind: str,
        target: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None = None,
        type_expr: Any | None = None,
        proxy_factory_fn: Callable[[torch.fx.Node], torch.fx.Proxy] | None = None,
    ) -> Any:
        value = self._value(kind, target, args, kwargs)
        if value is not _NO_VALUE and kind == "call_method" and target in _FACTORY_METHODS:
            # A tensor made from sizes alone (Swin's mask, `x.new_zeros((H, W))`): a constant, filled by the forward
            # as it runs (`mask[a:b, c:d] = n`) and taken into the graph as a tensor of the module's own.
            real = torch.empty(0, dtype=value.dtype)
            concrete = torch.fx.node.map_aggregate(args[1:], lambda v: v.value if isinstance(v, _ValueProxy) else v)
            return getattr(real, target)(*concrete, **kwargs)
        if value is not _NO_VALUE and kind in ("call_function", "call_method") and not _holds_tensor(value):
            return tuple(value) if isinstance(value, torch.Size) else value  # a number from here on
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if isinstance(proxy, _ValueProxy):
            proxy.value = value
        return proxy

    def _value(self, kind: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if kind == "placeholder":
            if self.fed or args:
                return _NO_VALUE  # an argument held at a constant (concrete_args): torch.fx's own check on it
            self.fed = True
            return self.input
        if kind == "get_attr":
            found: Any = self.root
            self.running = True  # torch.fx's patched `Module.__getattr__` would make the attribute a proxy again
            try:
                for part in str(target).split("."):
                    found = getattr(found, part, None)
            finally:
                self.running = False
            if not isinstance(found, torch.Tensor):
                return _NO_VALUE
            if id(found) not in self.fakes:
                self.fakes[id(found)] = self.mode.from_tensor(found)
            return self.fakes[id(found)]
        unknown = False

        def unwrap(v: Any) -> Any:
            nonlocal unknown
            if isinstance(v, _ValueProxy):
                unknown = unknown or v.value is _NO_VALUE
                return v.value
            if isinstance(v, torch.fx.Proxy):
                unknown = True
            return v

        a = torch.fx.node.map_aggregate(args, unwrap)
        k = torch.fx.node.map_aggregate(kwargs, unwrap)
        if unknown:
            return _NO_VALUE
        self.running = True
        try:
            with torch.no_grad(), self.mode:
                if kind == "call_function":
                    return target(*a, **k)
                if kind == "call_method":
                    return getattr(a[0], target)(*a[1:], **k)
                if kind == "call_module":
                    return self.root.get_submodule(target)(*a, **k)
        except Exception:  # a value the run cannot give (data-dependent): the node stays, as in the plain trace
            return _NO_VALUE
        finally:
            self.running = False
        return _NO_VALUE

    @staticmethod
    def concrete(proxy: torch.fx.Proxy, what: str) -> Any:
        value = getattr(proxy, "__dict__", {}).get("value", _NO_VALUE)
        if value is _NO_VALUE:
            raise torch.fx.proxy.TraceError(
                f"{what} a value the trace does not know (an argument held at a constant, or a value read from data)"
            )
        if isinstance(value, torch.Tensor):
            raise torch.fx.proxy.TraceError(
                f"{what} a tensor's values, not its sizes: the forward's structure would depend on the input's data"
            )
        return value

    def to_bool(self, obj: torch.fx.Proxy) -> bool:
        return bool(self.concrete(obj, "a branch on"))

    def iter(self, obj: torch.fx.Proxy) -> Any:
        value = getattr(obj, "__dict__", {}).get("value", _NO_VALUE)
        if isinstance(value, (tuple, list)):
            return iter([obj[i] for i in range(len(value))])  # type: ignore[index]
        return iter(self.concrete(obj, "iterating over"))


def input_shapes(model: nn.Module, shape: tuple[int, ...], every: dict[int, tuple[Any, ...]] | None = None) -> dict[int, tuple[int, ...]]:
    """The size of the tensor each module is first applied to, for a batch of two of `shape` (id(module) -> size);
    `every`, where given, gets the sizes of all the tensors it is first applied to (DLA's tree: `x` and its
    `children`), in the order of its arguments."""
    shapes: dict[int, tuple[int, ...]] = {}

    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            shapes.setdefault(id(module), tuple(args[0].shape))
        if every is not None and id(module) not in every:
            found: list[Any] = []
            torch.fx.node.map_aggregate((args, kwargs), found.append)
            every[id(module)] = tuple(tuple(v.shape) for v in found if isinstance(v, torch.Tensor))

    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in model.modules()]
    try:
        with torch.no_grad(), _fake_mode():
            model(torch.empty(BATCH, *shape))
    except Exception:  # the model's own error: the forwards that need sizes say so where they read one
        pass
    finally:
        for handle in handles:
            handle.remove()
    return shapes


class _Run(torch.fx.Interpreter):
    """Runs a traced forward on a batch of two shape-only tensors and keeps what each node gives: a tensor's size, or
    a value (`x.shape`, `x.size(1)`, arithmetic on them), which the spec writes as a number."""

    def __init__(self, module: nn.Module, graph: torch.fx.Graph) -> None:
        super().__init__(torch.fx.GraphModule(module, graph))
        self.shapes: dict[torch.fx.Node, tuple[int, ...]] = {}
        self.known: dict[torch.fx.Node, Any] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        if n.op == "placeholder" and not n.args and n.users and all(_held_check(u, n) for u in n.users):
            user = next(iter(n.users))  # an argument held at the constant its caller passes: torch.fx's check has it
            return None if user.target is not operator.eq else user.args[1]
        out = super().run_node(n)
        if isinstance(out, torch.Tensor):
            self.shapes[n] = tuple(out.shape)
        elif n.op in ("call_function", "call_method") and not _holds_tensor(out):
            self.known[n] = tuple(out) if isinstance(out, torch.Size) else out
        return out


def _holds_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) or (isinstance(value, (tuple, list)) and any(_holds_tensor(v) for v in value))


def _needs_run(node: torch.fx.Node) -> bool:
    """Whether the node reads a size or needs one to be written (a reshape, a slice, an expand)."""
    if node.op == "call_method":
        return str(node.target) in ("size", "dim", "view", "reshape", "expand", "split", "numel", "unbind", "unsqueeze")
    if node.op == "call_function":
        return node.target in (getattr, torch.reshape, torch.split, torch.unbind, operator.getitem, torch._assert)
    return False


def run_graph(module: nn.Module, graph: torch.fx.Graph, shape: tuple[int, ...] | None) -> _Run | None:
    """The graph run on shape-only tensors of `shape` (None: the module was never applied to one tensor, or the run
    failed: a forward that reads sizes then says so)."""
    if shape is None:
        return None
    run = _Run(module, graph)
    try:
        with torch.no_grad(), _fake_mode():
            run.run(torch.empty(*shape))
    except Exception:
        return None
    return run


# --- windows moved into the batch ----------------------------------------------------------------------------------
#
# Swin's window attention reshapes (B, H, W, C) to (B·nW, ws·ws, C): the windows join the batch. Memory is row-major
# and the batch outermost, so (B·k, ...) is (B, k, ...) with the first two dimensions merged, and every op that treats
# the first dimension as rows (a Linear, a LayerNorm, a matmul over the last two, arithmetic, softmax on a later
# dimension) gives the same numbers on either. `_unmerge_batch` rewrites such a graph to keep the batch apart, as a
# spec writes it: the reshape to (B·k, ...) made one to (B, k, ...), the dimensions of the ops after it counted past the
# k, until a reshape gives the batch back. An op that would mix samples (a norm over the batch, a reduction or a
# slice of the merged dimension) leaves the graph as it was, and the writer's own error names it.

_ROW_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.LayerNorm, nn.GELU, nn.ReLU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Identity, nn.Dropout,
)  # fmt: skip
_ROW_FUNCTIONS: tuple[Any, ...] = (
    operator.add, operator.sub, operator.mul, operator.truediv, operator.matmul, torch.add, torch.sub, torch.mul,
    torch.div, torch.matmul, F.gelu, F.relu, F.silu, F.dropout, F.linear, torch.sigmoid,
)  # fmt: skip
_ROW_METHODS = ("contiguous", "clone", "add", "sub", "mul", "div", "matmul", "sigmoid", "relu")


class _Mixes(Exception):
    """The graph uses a merged batch in a way the rewrite cannot keep apart."""


def _unmerge_batch(graph: torch.fx.Graph, run: _Run, batch: int) -> bool:
    """The graph rewritten so that no tensor merges the batch with other dimensions (see above); False, the graph
    untouched, where it has no such tensor or uses one in a way the rewrite does not follow."""
    shapes = run.shapes
    merged: dict[torch.fx.Node, tuple[int, int]] = {}  # node -> (k, the merged dimension's place in the real tensor)
    edits: list[tuple[torch.fx.Node, tuple[Any, ...], dict[str, Any]]] = []

    def dim(d: Any, rank: int, at: int) -> int:
        if not isinstance(d, int) or isinstance(d, bool):
            raise _Mixes
        if d < 0:
            return d  # counted from the end, the same in both
        if d == at:
            raise _Mixes
        return d if d < at else d + 1

    batched: set[torch.fx.Node] = set()  # what depends on the forward's inputs (a parameter's reshape has no batch)
    for node in graph.nodes:
        if node.op == "placeholder" or any(n in batched for n in node.all_input_nodes):
            batched.add(node)
        if node.op not in ("call_function", "call_method", "call_module"):
            continue
        inputs = [n for n in node.all_input_nodes if n in merged]
        reshape = (node.op == "call_method" and node.target in ("view", "reshape")) or (
            node.op == "call_function" and node.target is torch.reshape
        )
        source = node.args[0] if node.args else None
        if reshape and isinstance(source, torch.fx.Node) and source in batched and source in shapes and node in shapes:
            before, after = shapes[source], shapes[node]
            if merged.get(source, (0, 0))[1] != 0 or not after or after[0] % batch or not before or before[0] % batch:
                if source in merged:
                    return False
                continue
            k = after[0] // batch
            if source not in merged and k == 1:
                continue
            edits.append((node, (source, (batch, k, *after[1:]) if k > 1 else (batch, *after[1:])), {}))
            if k > 1:
                merged[node] = (k, 0)
            continue
        if not inputs:
            continue
        k, at = merged[inputs[0]]
        unbind = node.target is torch.unbind or (node.op == "call_method" and node.target == "unbind")
        if any(merged[n] != (k, at) for n in inputs) or (node not in shapes and not unbind):
            return False
        try:
            rank = len(shapes[inputs[0]])
            out = shapes.get(node)
            if node.op == "call_module":
                module = run.module.get_submodule(str(node.target))
                if not isinstance(module, _ROW_MODULES) or at != 0:
                    return False
                merged[node] = (k, at)
                continue
            name = str(node.target) if node.op == "call_method" else None
            if node.op == "call_function" and node.target in _ROW_FUNCTIONS or name in _ROW_METHODS:
                if out is None or len(out) != rank or out[at] != shapes[inputs[0]][at]:
                    return False
                merged[node] = (k, at)
                continue
            args, kwargs = list(node.args), dict(node.kwargs)
            if name == "permute" or node.target is torch.permute:
                given = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
                order = [d % rank if isinstance(d, int) else d for d in given]
                if node.target is torch.permute and "dims" in kwargs:
                    order = [d % rank for d in kwargs.pop("dims")]
                written: list[int] = []
                for d in order:
                    written.extend([at, at + 1] if d == at else [dim(d, rank, at)])
                edits.append((node, (args[0], tuple(written)), kwargs))
                merged[node] = (k, list(order).index(at))
            elif name == "transpose" or node.target is torch.transpose:
                a, b = (dim(d % rank, rank, at) for d in args[1:3])
                edits.append((node, (args[0], a, b), kwargs))
                merged[node] = (k, at)
            elif name == "softmax" or node.target in (F.softmax, torch.softmax):
                d = args[1] if len(args) > 1 else kwargs.pop("dim")
                edits.append((node, (args[0], dim(d, rank, at), *args[2:]), kwargs))
                merged[node] = (k, at)
            elif node.target is torch.roll:
                shifts = args[1] if len(args) > 1 else kwargs.pop("shifts")
                dims = args[2] if len(args) > 2 else kwargs.pop("dims")
                dims = tuple(dim(d, rank, at) for d in (dims if isinstance(dims, (tuple, list)) else (dims,)))
                edits.append((node, (args[0], shifts, dims), kwargs))
                merged[node] = (k, at)
            elif name == "unbind" or node.target is torch.unbind:
                d = args[1] if len(args) > 1 else kwargs.pop("dim", 0)
                d %= rank
                edits.append((node, (args[0], dim(d, rank, at)), kwargs))
                merged[node] = (k, at - 1 if d < at else at)
            elif node.op == "call_function" and node.target is operator.getitem:
                index = args[1]
                if source in merged and isinstance(index, int) and _is_multi(source):
                    merged[node] = merged[source]  # one piece of an unbind
                    continue
                items = list(index) if isinstance(index, tuple) else [index]
                if any(i is Ellipsis or i is None or isinstance(i, torch.fx.Node) for i in items):
                    return False
                if len(items) > at and not (isinstance(items[at], slice) and items[at] == slice(None)):
                    return False
                new = items[: at + 1] + [slice(None)] + items[at + 1 :] if len(items) > at else items
                edits.append((node, (args[0], tuple(new) if len(new) > 1 else new[0]), kwargs))
                dropped = sum(1 for i in items[:at] if isinstance(i, int))
                merged[node] = (k, at - dropped)
            else:
                return False
        except (_Mixes, KeyError, TypeError, ValueError):
            return False
    if not edits:
        return False
    for node, new_args, new_kwargs in edits:
        node.args, node.kwargs = new_args, new_kwargs
    return True


# torch functions and methods with an archc inline op: (op, the torch argument names after the tensor, torch's
# defaults, arguments dropped).
_FN: dict[Any, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    F.relu: ("relu", ("inplace",), {"inplace": False}),
    torch.relu: ("relu", (), {}),
    F.relu6: ("relu6", ("inplace",), {"inplace": False}),
    F.silu: ("silu", ("inplace",), {"inplace": False}),
    F.gelu: ("gelu", ("approximate",), {"approximate": "none"}),
    F.hardswish: ("hardswish", ("inplace",), {"inplace": False}),
    F.hardsigmoid: ("hardsigmoid", ("inplace",), {"inplace": False}),
    F.hardtanh: ("hardtanh", ("min_val", "max_val", "inplace"), {"min_val": -1.0, "max_val": 1.0, "inplace": False}),
    torch.sigmoid: ("sigmoid", (), {}),
    F.sigmoid: ("sigmoid", (), {}),
    torch.tanh: ("tanh", (), {}),
    F.tanh: ("tanh", (), {}),
    F.leaky_relu: ("leaky_relu", ("negative_slope", "inplace"), {"negative_slope": 0.01, "inplace": False}),
    F.elu: ("elu", ("alpha", "inplace"), {"alpha": 1.0, "inplace": False}),
    F.mish: ("mish", ("inplace",), {"inplace": False}),
    F.softmax: ("softmax", ("dim", "_stacklevel", "dtype"), {"dim": None, "_stacklevel": 3, "dtype": None}),
    torch.softmax: ("softmax", ("dim", "dtype"), {"dim": None, "dtype": None}),
    F.log_softmax: ("log_softmax", ("dim", "_stacklevel", "dtype"), {"dim": None, "_stacklevel": 3, "dtype": None}),
    F.adaptive_avg_pool2d: ("adaptive_avgpool", ("output_size",), {}),
    F.adaptive_max_pool2d: ("adaptive_maxpool", ("output_size", "return_indices"), {"return_indices": False}),
    F.max_pool2d: (
        "maxpool",
        ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
        {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False},
    ),
    F.avg_pool2d: (
        "avgpool",
        ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
        {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True, "divisor_override": None},
    ),
    F.dropout: ("dropout", ("p", "training", "inplace"), {"p": 0.5, "training": True, "inplace": False}),
    torch.flatten: ("flatten", ("start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1}),
    torch.transpose: ("transpose", ("dim0", "dim1"), {}),
    torch.swapaxes: ("transpose", ("dim0", "dim1"), {}),  # MaxViT's SwapAxes
    torch.permute: ("permute", ("dims",), {}),
    torch.unflatten: ("unflatten", ("dim", "sizes"), {}),
    torch.chunk: ("chunk", ("chunks", "dim"), {"dim": 0}),
    F.pad: ("pad", ("pad", "mode", "value"), {"mode": "constant", "value": None}),
    torch.roll: ("roll", ("shifts", "dims"), {}),
    F.local_response_norm: ("local_response_norm", ("size", "alpha", "beta", "k"), {"alpha": 1e-4, "beta": 0.75, "k": 1.0}),
}
_METHODS: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "relu": ("relu", (), {}),
    "sigmoid": ("sigmoid", (), {}),
    "tanh": ("tanh", (), {}),
    "flatten": ("flatten", ("start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1}),
    "transpose": ("transpose", ("dim0", "dim1"), {}),
    "chunk": ("chunk", ("chunks", "dim"), {"dim": 0}),
    "unflatten": ("unflatten", ("dim", "sizes"), {}),
    "softmax": ("softmax", ("dim",), {}),
}
# What the language does not have yet, by the torch function or method that needs it.
_MISSING = {
    "size": "reading a tensor's size in the forward, where the module is not applied to one tensor",
    "getattr": "reading a tensor's attribute (`x.shape`) in the forward, where the module is not applied to one tensor",
    "softmax": "`softmax` without a dimension",
}
_ARITH = {
    operator.add: "+",
    torch.add: "+",
    operator.sub: "-",
    torch.sub: "-",
    operator.mul: "*",
    torch.mul: "*",
    operator.truediv: "/",
    torch.div: "/",
}
_PREC = {"+": 6, "-": 6, "*": 7, "/": 7}


@dataclass
class _Expr:
    parts: list[Part]
    prec: int = 10  # 10 an atom or call, 7 `*` and `/`, 6 `+` and `-`, 8 unary minus


def _name_of(target: Any) -> str:
    return str(getattr(target, "__name__", target))


class _Forward:
    """One module's traced graph as a forward: statements in graph order, a value used once right where it is made
    written inside the expression that uses it."""

    def __init__(
        self,
        graph: torch.fx.Graph,
        module: nn.Module,
        path: str,
        members: set[str],
        post: dict[str, tuple[str, dict[str, Any]]] | None = None,
        run: _Run | None = None,
        lists: set[str] | None = None,
        pre: dict[str, tuple[str, dict[str, Any]]] | None = None,
        inputs_of: dict[str, list[tuple[str, str, bool]]] | None = None,
    ) -> None:
        self.post = post or {}
        # members applied to several tensors: the inputs each one's forward takes (`Importer.inputs`)
        self.inputs_of = inputs_of or {}
        self.inputs: list[tuple[str, str, bool]] = []  # this forward's inputs: (spec name, Python name, a list)
        self.list_inputs: dict[str, list[torch.fx.Node]] = {}  # an input list's tensors, in order
        self.pre = pre or {}  # members whose input the model pads first (timm's Conv2dSame): the op applied before
        self.lists = lists or set()  # members that are lists of modules, applied item by item
        self.run_ = run
        self.known: dict[torch.fx.Node, Any] = run.known if run is not None else {}
        self.shapes: dict[torch.fx.Node, tuple[int, ...]] = run.shapes if run is not None else {}
        self.nodes = list(graph.nodes)
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.module, self.path, self.members = module, path, members
        self.exprs: dict[torch.fx.Node, _Expr] = {}
        self.names: dict[torch.fx.Node, str] = {}
        self.used: set[str] = set()
        self.concrete: set[torch.fx.Node] = set()
        self.pieces: dict[torch.fx.Node, int] = {}  # a split's number of parts
        # Where a permute moved the batch (timm's attention, `permute(2, 0, 3, 1, 4)`): the written tensor is the
        # traced one with that dimension moved back first, until an `unbind` brings the batch back (`_unbind`).
        self.batch_at: dict[torch.fx.Node, int] = {}
        self.constants: set[str] = set()  # tensors the forward makes from sizes, written as `buffer(...)` members
        self.lines: list[list[Part]] = []
        self.inline = self._in_model_order()
        self.last_use = {n: max((self.index[u] for u in self._users(n)), default=self.index[n]) for n in self.nodes}

    def _users(self, node: torch.fx.Node) -> list[torch.fx.Node]:
        """The nodes that use a value, but for the sizes read from it (the spec writes those as numbers)."""
        return [u for u in node.users if u not in self.known]

    def fail(self, node: torch.fx.Node, what: str, hint: str) -> ArchError:
        return ArchError("E120", f"cannot import {_where(self.path, self.module)}: {what}", _node_loc(node, type(self.module)), hint)

    def _in_model_order(self) -> set[torch.fx.Node]:
        """The values written inside the expression that uses them (`_inlined`), but for those that would then be
        evaluated after an ordered value (a module call, dropout, an op reading a parameter) the model evaluates
        later: each of those gets its own assignment where the model computes it (`out = identity(x)` before
        `conv_1x1(x) + conv_kxk(x)`), so the generated forward applies the modules in the model's order and its
        backward pass accumulates the gradients in the model's order (verify's SGD step compares them to 1e-5)."""
        kept: set[torch.fx.Node] = set()
        while True:
            inline = self._inlined(kept)
            late = self._out_of_order(inline)
            if not late:
                return inline
            # The latest first: its own statement takes the values inlined into it along (`out = stem2b(pad(stem2a(x)))`).
            kept.add(max(late, key=lambda n: self.index[n]))

    def _ordered(self, node: torch.fx.Node) -> bool:
        """Whether moving the node past another such node could change the result: a module call, a random op, an
        op reading a parameter."""
        if node.op == "call_module":
            return True
        if node.op == "call_function" and node.target is F.dropout:
            return True
        return any(a.op == "get_attr" for a in node.all_input_nodes)

    def _out_of_order(self, inline: set[torch.fx.Node]) -> set[torch.fx.Node]:
        """The inlined ordered values the written forward evaluates after an ordered value the model evaluates later
        (the operands of an expression evaluated left to right, each before the op that takes it)."""
        order: list[torch.fx.Node] = []

        def visit(node: torch.fx.Node) -> None:
            for arg in node.all_input_nodes:
                if arg in inline:
                    visit(arg)
            order.append(node)

        for node in self.nodes:
            if node not in inline and node not in self.known:
                visit(node)
        late: set[torch.fx.Node] = set()
        latest = -1
        for node in order:
            if not self._ordered(node):
                continue
            if self.index[node] < latest and node in inline:
                late.add(node)
            latest = max(latest, self.index[node])
        return late

    def _inlined(self, kept: set[torch.fx.Node] | None = None) -> set[torch.fx.Node]:
        out: set[torch.fx.Node] = set()
        for n in reversed(self.nodes):
            users = self._users(n)
            if n.op in ("placeholder", "output", "get_attr") or len(users) != 1 or n in self.known or (kept and n in kept):
                continue
            (user,) = users
            if _is_multi(n) or _uses(user, n) > 1:
                continue  # a piece of a split, or a value its user takes twice (`self.tree2(x1, None, [bottom, x1])`)
            between = [m for m in self.nodes[self.index[n] + 1 : self.index[user]] if m not in self.known]
            if all(m in out and all(self.index[u] <= self.index[user] for u in self._users(m)) for m in between):
                out.add(n)
        return out

    def run(self) -> tuple[list[Part], bool]:
        """(the forward's text, whether it only applies the members in order)."""
        for node in self.nodes:
            try:
                self._node(node)
            except _Unsupported as e:
                raise self.fail(node, e.what, e.hint) from None
        return self._text()

    def _free_name(self, node: torch.fx.Node) -> str:
        live = {name for n, name in self.names.items() if self.last_use[n] > self.index[node]}
        for name in ("x", "out", "y", "z", *(f"y{i}" for i in range(1, 1000))):
            if name not in live and name not in self.members and name not in self.list_inputs:
                return name
        raise _Unsupported("a forward of more than 1000 live values", "split the module")

    def _value(self, arg: Any, hint: str = "value") -> _Expr:
        if isinstance(arg, torch.fx.Node) and arg in self.known:
            return _Expr([Slot(self.known[arg], hint)])
        if isinstance(arg, torch.fx.Node):
            if arg in self.exprs:
                return self.exprs.pop(arg)
            return _Expr([self.names[arg]])
        return _Expr([Slot(arg, hint)])

    def _node(self, node: torch.fx.Node) -> None:
        if node in self.known:
            return  # a size the forward reads (`x.shape`, `x.size(1)`, a check on it): a number where it is used
        if _dead_piece(node):
            return  # a piece of a split the forward takes and never uses (`sp = spx[0]` before a loop that sets it)
        if node.target is operator.getitem and node in self.names and _is_multi(node.args[0]):  # type: ignore[arg-type]
            return  # a piece its split named (`q, k, v = unbind(qkv, 1)`): read by that name
        if node.op == "call_module" or (node.op == "call_function" and (node.target is F.scaled_dot_product_attention or _is_mask(node))):
            self._hold(node)
        if node.op != "output" and any(n in self.concrete for n in node.all_input_nodes):
            self.concrete.add(node)  # torch.fx's check that a held argument has its value
            return
        moved = [n for n in node.all_input_nodes if self.batch_at.get(n)]
        if moved and not _is_unbind(node) and not self._takes_first(node):
            raise _Unsupported(
                f"`{_name_of(node.target)}` of a tensor whose batch a permute moved to dimension {self.batch_at[moved[0]]}",
                "the language keeps the batch first: `unbind` the dimension before it, as timm's attention does",
            )
        if node.op == "placeholder":
            key = getattr(node, "ph_key", None)
            if isinstance(key, str):
                # An input its caller gives beyond the first tensor (`shortcut`), or a tensor of a list (`children#0`)
                self._input(node, key)
                return
            if self.names and (node.args or all(_held_check(u, node) for u in node.users)):
                # an argument held at its default, or at the constant its caller passes (concrete_args): torch.fx
                # checks an int's value (`assert p == 7`) and gives the forward the constant itself
                self.concrete.add(node)
                return
            if self.names:
                raise _Unsupported("a forward with more than one input", "archc's modules take one tensor")
            self.names[node] = "x"
            self.inputs.append(("x", self._first_input(), False))
            return
        if node.op == "output":
            out = node.args[0]
            if isinstance(out, (list, tuple)) and len(out) == 1 and isinstance(node.graph._codegen, torch.fx.graph._PyTreeCodeGen):
                out = out[0]  # the trace of a list input flattens the output too (`return [conv]`: one tensor)
            if isinstance(out, (list, tuple)) and out:
                raise _Unsupported(
                    f"a forward that returns a {'tuple' if isinstance(out, tuple) else 'list'} of {len(out)} values",
                    "a block returns one tensor; it takes lists of tensors as inputs, but gives none back",
                )
            if not isinstance(out, torch.fx.Node):
                raise _Unsupported("a forward that returns several values or none", "archc's blocks return one tensor")
            self.lines.append(["return ", *self._value(out).parts])
            return
        if node.op == "get_attr":
            target = str(node.target)
            if target in self.constants or ("." not in target and target in dict(self.module.named_buffers(recurse=False))):
                self.names[node] = target  # a `buffer(...)` member (_buffer_member), read by name
                return
            if "." in target or target not in dict(self.module.named_parameters(recurse=False)):
                raise _Unsupported(f"reading `{target}`, not a parameter of this module", "only the module's own parameters can be read")
            self.names[node] = target
            return
        expr = self._expression(node)
        if node in self.inline:
            self.exprs[node] = expr
            return
        if _is_multi(node):
            count = self.pieces.get(node, node.args[1] if len(node.args) > 1 else node.kwargs.get("chunks"))
            if isinstance(count, int) and count > 1024:
                raise _Unsupported(f"`unbind` into {count} tensors", "unbind a dimension of a few positions")
            assert isinstance(count, int)
            names: list[tuple[int, torch.fx.Node]] = []
            for user in sorted(node.users, key=lambda u: self.index[u]):
                index = user.args[1] if len(user.args) > 1 else None
                if user.target is not operator.getitem or not isinstance(index, int) or not -count <= index < count:
                    raise _Unsupported("a chunked tensor used whole", "use each piece")
                if not _dead_piece(user):
                    names.append((index % count, user))
            if sorted(i for i, _ in names) == list(range(count)):
                # Every piece used once: each gets a name (`a, b = chunk(x, 2, dim = 1)`).
                pieces = []
                for _, user in sorted(names, key=lambda t: t[0]):
                    name = self._free_name(node)
                    self.names[user] = name
                    self.used.add(name)
                    pieces.append(name)
                self.lines.append([", ".join(pieces) + " = ", *expr.parts])
                return
            # Pieces used twice or not at all: a list of tensors, read by index (`spx = split(...)`, `spx[1]`).
            self.last_use[node] = max((self.last_use[u] for _, u in names), default=self.index[node])
            name = self._free_name(node)
            self.names[node] = name
            for index, user in names:
                self.names[user] = f"{name}[{index}]"
            self.lines.append([f"{name} = ", *expr.parts])
            return
        name = self._free_name(node)
        self.names[node] = name
        self.lines.append([f"{name} = ", *expr.parts])

    def _hold(self, node: torch.fx.Node) -> None:
        """A forward's argument held at its default passed on (timm's `attn(x, attn_mask=attn_mask)`, then
        `scaled_dot_product_attention(..., attn_mask=attn_mask, is_causal=is_causal)`): its default value; and a
        member's keyword argument at the member's own default left out, as the member then runs as `m(x)`."""

        def value(a: Any) -> Any:
            held = isinstance(a, torch.fx.Node) and a.op == "placeholder" and a in self.concrete and len(a.args) == 1
            return a.args[0] if held else a

        args, kwargs = tuple(value(a) for a in node.args), {k: value(v) for k, v in node.kwargs.items()}
        if node.op == "call_module":
            try:
                params = inspect.signature(self.module.get_submodule(str(node.target)).forward).parameters
            except (AttributeError, TypeError, ValueError):
                params = {}  # type: ignore[assignment]
            empty = inspect.Parameter.empty
            kwargs = {
                k: v
                for k, v in kwargs.items()
                if isinstance(v, torch.fx.Node) or k not in params or params[k].default is empty or not _same_default(v, params[k].default)
            }
        node.args, node.kwargs = args, kwargs

    def _first_input(self) -> str:
        try:
            return next(iter(inspect.signature(self.module.forward).parameters))
        except (TypeError, ValueError, StopIteration):
            return "x"

    def _input(self, node: torch.fx.Node, key: str) -> None:
        """A placeholder of `Importer._tensor_call`: an input of the written forward, named as the model names it
        (`shortcut`, `children`; a list's tensors `children[0]`, ...); one the forward never reads is still taken."""
        name, _, place = key.partition("#")
        if not name.isidentifier() or keyword.iskeyword(name) or name in self.members or (name == "x" and self.inputs):
            raise _Unsupported(f"an input named `{name}`", "name the forward's inputs apart from its members")
        if not place:
            self.names[node] = name
            self.inputs.append((name, name, False))
            return
        if name not in self.list_inputs:
            self.list_inputs[name] = []
            self.inputs.append((name, name, True))
        self.list_inputs[name].append(node)
        self.names[node] = f"{name}[{place}]"

    def _tensors(self, items: list[Any]) -> list[Part]:
        """A list of tensors: `[x2, x1] + children` where a run of them is a list input whole, in order."""
        segments: list[list[Part]] = []
        loose: list[Part] = []

        def flush() -> None:
            if loose:
                segments.append(["[", *loose, "]"])
                loose.clear()

        i = 0
        while i < len(items):
            for name, tensors in self.list_inputs.items():
                if len(items) - i >= len(tensors) and all(a is b for a, b in zip(items[i : i + len(tensors)], tensors, strict=False)):
                    flush()
                    segments.append([name])
                    i += len(tensors)
                    break
            else:
                loose.extend([", "] if loose else [])
                loose.extend(self._value(items[i]).parts)
                i += 1
        flush()
        out: list[Part] = []
        for k, segment in enumerate(segments):
            out.extend([" + "] if k else [])
            out.extend(segment)
        return out or ["[]"]

    def _several(self, node: torch.fx.Node, callee: str) -> _Expr:
        """A member applied to several tensors or a list (`tree1(x, shortcut)`, `tree2(x1, children = children +
        [x1])`, `root([x2, x1] + children)`): the inputs its forward takes, by position up to the first it leaves to
        its default, by name after it and for lists."""
        target = str(node.target)
        declared = self.inputs_of.get(target)
        given: dict[str, Any] = node.meta.get("archc_inputs", {})
        if declared is None or not given:
            raise _Unsupported(f"calling `{target}` with {len(node.args) + len(node.kwargs)} arguments", "members take one tensor")
        parts: list[Part] = [f"{callee}("]
        by_name = False
        for k, (name, python, is_list) in enumerate(declared):
            value = given.get(python)
            if value is None:
                by_name = True
                continue
            parts.extend([", "] if k else [])
            if k and (by_name or is_list):
                parts.append(f"{name} = ")
            parts.extend(self._tensors(list(value)) if is_list else self._value(value).parts)
        return _Expr([*parts, ")"])

    def _expression(self, node: torch.fx.Node) -> _Expr:
        if node.op == "call_module" and "archc_inputs" in node.meta:
            return self._several(node, str(node.target))
        if node.op == "call_module":
            target = str(node.target)
            callee = target
            if "." in target:
                head, _, item = target.partition(".")
                if head not in self.lists or not item.isdigit():
                    raise _Unsupported(
                        f"calling `{target}`, an item of a ModuleList or ModuleDict", "the language applies a block's own members only"
                    )
                callee = f"{head}[{item}]"
            if len(node.args) != 1 or node.kwargs:
                raise _Unsupported(f"calling `{target}` with {len(node.args) + len(node.kwargs)} arguments", "members take one tensor")
            if not isinstance(node.args[0], torch.fx.Node):
                raise _Unsupported(f"applying `{target}` to {type(node.args[0]).__name__}", "members take one tensor")
            argument = self._value(node.args[0]).parts
            if target in self.pre:
                op, values = self.pre[target]
                argument = _fixed_pad(_op_text(op, dict(values), (), argument))
            call = [f"{callee}(", *argument, ")"]
            if target in self.post:
                op, values = self.post[target]
                return _Expr(_op_text(op, dict(values), (), call))
            return _Expr(call)
        if node.op == "call_function" and node.target is operator.getitem:
            source = node.args[0]
            if isinstance(source, torch.fx.Node) and _is_multi(source):
                return _Expr([self.names[node]]) if node in self.names else _Expr(["?"])
            return self._index(node)
        if node.op == "call_function" and _name_of(node.target) in _LEAF_FUNCTIONS and node.target in _wrapped_functions():
            return _LEAF_FUNCTIONS[_name_of(node.target)](self, node)
        reshape = node.op == "call_method" and node.target in ("view", "reshape")
        if reshape or (node.op == "call_function" and node.target is torch.reshape):
            return self._reshape(node)
        if node.op == "call_method" and node.target == "expand":
            return self._expand(node)
        if node.op == "call_method" and node.target == "expand_as":
            return self._expand_as(node)
        if (node.op == "call_method" and node.target == "split") or (node.op == "call_function" and node.target is torch.split):
            return self._split(node)
        if node.op == "call_function" and node.target in _ARITH:
            return self._arith(node, _ARITH[node.target])
        if node.op == "call_method" and node.target in ("add", "sub", "mul", "div"):
            return self._arith(node, {"add": "+", "sub": "-", "mul": "*", "div": "/"}[str(node.target)])
        if node.op == "call_function" and node.target is F.conv2d:
            return self._weight_conv(node)
        if node.op == "call_function" and node.target is torch.cat:
            return self._cat(node)
        if node.op == "call_function" and node.target is torch.stack:
            return self._stack(node)
        if (node.op == "call_function" and node.target is torch.addcmul) or (node.op == "call_method" and node.target == "addcmul"):
            return self._addcmul(node)
        if (node.op == "call_method" and node.target == "mean") or (node.op == "call_function" and node.target is torch.mean):
            return self._reduce(node, "mean")
        if (node.op == "call_method" and node.target == "amax") or (node.op == "call_function" and node.target is torch.amax):
            return self._reduce(node, "amax")
        if (node.op == "call_method" and node.target == "sum") or (node.op == "call_function" and node.target is torch.sum):
            return self._reduce(node, "sum")
        if (node.op == "call_method" and node.target == "norm") or (
            node.op == "call_function" and node.target in (torch.norm, torch.linalg.vector_norm)
        ):
            return self._norm(node)
        if node.op == "call_method" and node.target == "contiguous":
            return self._value(node.args[0])
        if node.op == "call_method" and node.target == "permute":
            dims = node.args[1:] if not (len(node.args) == 2 and isinstance(node.args[1], (tuple, list))) else node.args[1]
            return self._permute(node, tuple(dims))
        if node.op == "call_function" and node.target is torch.permute:
            given = node.args[1] if len(node.args) > 1 else node.kwargs.get("dims")
            return self._permute(node, tuple(given) if isinstance(given, (tuple, list)) else ())
        if _is_unbind(node):
            return self._unbind(node)
        if (node.op == "call_method" and node.target == "unsqueeze") or (node.op == "call_function" and node.target is torch.unsqueeze):
            return self._unsqueeze(node)
        if (node.op == "call_function" and node.target in (operator.matmul, torch.matmul)) or (
            node.op == "call_method" and node.target == "matmul"
        ):
            return self._matmul(node)
        if node.op == "call_function" and node.target is torch.einsum:
            return self._einsum(node)
        if node.op == "call_function" and node.target is F.scaled_dot_product_attention:
            return self._attention(node)
        if _is_mask(node) and len(node.args) == 2 and not node.kwargs:
            mask = node.args[1]
            if (self.known.get(mask) if isinstance(mask, torch.fx.Node) else mask) is None and (
                not isinstance(mask, torch.fx.Node) or mask in self.known
            ):
                return self._value(node.args[0])  # timm's `maybe_add_mask(attn, attn_mask)` without a mask: the scores
        table = _FN.get(node.target) if node.op == "call_function" else _METHODS.get(str(node.target)) if node.op == "call_method" else None
        if table is None:
            name = _name_of(node.target)
            missing = _MISSING.get(name.rsplit(".", 1)[-1])
            if missing:
                raise _Unsupported(f"`{name}` needs {missing}, which the language lacks", "the language is growing these (issue 14)")
            raise _Unsupported(f"`{name}` has no archc op", "write the model with ops the language has (docs/language.md#ops)")
        op, names, defaults = table
        bound = dict(defaults)
        for name, value in zip(names, node.args[1:], strict=False):
            bound[name] = value
        bound.update({k: v for k, v in node.kwargs.items() if k not in ("input",)})
        if len(node.args) - 1 > len(names):
            raise _Unsupported(f"`{_name_of(node.target)}` with {len(node.args)} arguments", "pass fewer arguments")
        return self._apply(node, op, bound)

    def _apply(self, node: torch.fx.Node, op: str, bound: dict[str, Any]) -> _Expr:
        bound.pop("training", None)  # dropout's: the generated module passes self.training
        bound.pop("_stacklevel", None)
        for flag in ("return_indices", "divisor_override", "dtype"):
            if bound.pop(flag, None) not in (None, False):
                raise _Unsupported(f"`{_name_of(node.target)}` with {flag}", "the language has no such setting")
        if op == "pad":
            # Sizes the forward computed (davit's stem pads to a multiple of its stride): the numbers of this input.
            sizes = bound["pad"]
            bound["pad"] = tuple(self.known.get(v, v) if isinstance(v, torch.fx.Node) else v for v in sizes)
            if bound.get("value") is None:
                bound["value"] = 0.0
            if bound.get("mode", "constant") == "constant" and all(v == 0 for v in bound["pad"]):
                return self._value(node.args[0])  # nothing to pad at this size (Swin pads to a multiple of its window)
        if op in ("softmax", "log_softmax") and bound.get("dim") is None:
            raise _Unsupported(f"`{op}` without a dimension", "pass dim")
        if op == "chunk" and bound.get("dim", 0) == 0:
            raise _Unsupported("`chunk` over the batch", "chunk another dimension")
        known = {name for name, _ in ops.OPS[op].args}
        for name in bound:
            if name not in known:
                raise _Unsupported(f"`{_name_of(node.target)}` with `{name}`", "the language has no such setting")
        if op in ("flatten", "maxpool", "avgpool") and "stride" in bound and _same(bound.get("stride"), bound.get("kernel_size")):
            bound["stride"] = None
        for name in ("kernel_size", "stride", "padding", "dilation", "output_size"):
            if name in bound:
                bound[name] = _square(bound[name])
        return self._inline(op, node.args[0], bound)

    def _weight_conv(self, node: torch.fx.Node) -> _Expr:
        """`F.conv2d(x, self.filt, stride=2, groups=c)`: `conv2d(x, filt, stride = 2, groups = c)`, the weight a tensor of
        the module's own (BlurPool's fixed filter)."""
        names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
        bound = {**dict(zip(names, node.args, strict=False)), **node.kwargs}
        weight = bound.get("weight")
        if not isinstance(weight, torch.fx.Node) or weight.op != "get_attr" or weight not in self.names:
            raise _Unsupported(
                "`conv2d` by a weight the forward computes", "the language convolves by a `buffer` or `param` of the module's own"
            )
        if bound.get("bias") is not None:
            raise _Unsupported("`conv2d` with a bias tensor", "add the bias after the convolution")
        values: dict[str, Any] = {
            k: _square(bound[k]) if k != "groups" else bound[k] for k in ("stride", "padding", "dilation", "groups") if k in bound
        }
        if isinstance(values.get("padding"), str):
            raise _Unsupported(f"`conv2d` with padding={values['padding']!r}", "pad with numbers")
        return _Expr(_op_text("conv2d", values, (), [*self._value(bound["input"]).parts, ", ", self.names[weight]]))

    def _reduce(self, node: torch.fx.Node, op: str) -> _Expr:
        """`mean(x, dims, keepdim = true)`, `amax(...)`: a reduction over dimensions other than the batch."""
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        if node.kwargs.get("dtype") is not None or not isinstance(keepdim, bool) or dims is None:
            raise _Unsupported(f"`{op}` over every dimension or with a dtype", "reduce named dimensions")
        dims = tuple(dims) if isinstance(dims, (list, tuple)) else dims
        rank = len(self.shapes.get(node.args[0], ())) if isinstance(node.args[0], torch.fx.Node) else 0
        if any(d == 0 or (rank and d == -rank) for d in (dims if isinstance(dims, tuple) else (dims,))):
            raise _Unsupported(f"`{op}` over the batch", "reduce the dimensions of a sample")
        values: dict[str, Any] = {"dim": dims[0] if isinstance(dims, tuple) and len(dims) == 1 else dims}
        if keepdim:
            values["keepdim"] = True
        return _Expr(_op_text(op, values, ("dim",), self._value(node.args[0]).parts))

    def _norm(self, node: torch.fx.Node) -> _Expr:
        """`x.norm(p=2, dim=..., keepdim=...)`, `torch.norm(...)` and `torch.linalg.vector_norm(x, ord, dim, keepdim)`
        -> `norm(x, dim, keepdim = true, p = 1)`: the L2 (or L1) norm over dimensions other than the batch."""
        names = ("input", "ord", "dim", "keepdim") if node.target is torch.linalg.vector_norm else ("input", "p", "dim", "keepdim")
        bound = {**dict(zip(names, node.args, strict=False)), **node.kwargs}
        p = bound.get(names[1], 2 if names[1] == "ord" else "fro")
        dims, keepdim = bound.get("dim"), bound.get("keepdim", False)
        dims = tuple(dims) if isinstance(dims, (list, tuple)) else dims
        if bound.get("dtype") is not None or bound.get("out") is not None or not isinstance(keepdim, bool) or dims is None:
            raise _Unsupported("`norm` over every dimension or with a dtype", "take the norm over named dimensions")
        if p == "fro":
            p = 2  # the Frobenius norm over named dimensions is their Euclidean norm
        if isinstance(p, bool) or p not in (1, 2):
            raise _Unsupported(f"`norm` with p={p!r}", "the language's `norm` is the Euclidean (p = 2) or the L1 (p = 1) norm")
        rank = len(self.shapes.get(bound["input"], ())) if isinstance(bound["input"], torch.fx.Node) else 0
        if any(d == 0 or (rank and d == -rank) for d in (dims if isinstance(dims, tuple) else (dims,))):
            raise _Unsupported("`norm` over the batch", "take the norm over the dimensions of a sample")
        values: dict[str, Any] = {"dim": dims[0] if isinstance(dims, tuple) and len(dims) == 1 else dims}
        if keepdim:
            values["keepdim"] = True
        if p != 2:
            values["p"] = 1
        return _Expr(_op_text("norm", values, ("dim",), self._value(bound["input"]).parts))

    def _permute(self, node: torch.fx.Node, dims: tuple[Any, ...]) -> _Expr:
        """`permute(x, dims)`, the batch first. A permute that moves the batch (timm's attention,
        `qkv.permute(2, 0, 3, 1, 4)`) is written with the batch moved back first, `(0, 2, 3, 1, 4)`: the same tensor
        but for where the batch stands, which `batch_at` records for the `unbind` that follows."""
        rank = len(self._shape(node.args[0])) if dims and node.args[0] in self.shapes else len(dims)
        if (
            not dims
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims)
            or sorted(d % rank for d in dims) != list(range(rank))
        ):
            raise _Unsupported(f"`permute` to {dims!r}", "permute with numbers")
        dims = tuple(d % rank for d in dims)
        if isinstance(node.args[0], torch.fx.Node) and self._own(node.args[0]):
            return self._inline("permute", node.args[0], {"dims": dims})  # a parameter's or buffer's own dimensions
        at = dims.index(0)
        if at:
            self.batch_at[node] = at
            dims = (0, *(d for d in dims if d != 0))
        return self._inline("permute", node.args[0], {"dims": dims})

    def _own(self, node: torch.fx.Node) -> bool:
        """Whether the node is a tensor of the module's own (a parameter or buffer read, `get_attr`) or computed from
        such tensors alone: it has no batch, and its dimensions and sizes are its whole shape."""
        if node.op == "get_attr":
            return True
        if node.op not in ("call_function", "call_method"):
            return False
        inputs = node.all_input_nodes
        return bool(inputs) and all(n in self.known or self._own(n) for n in inputs) and any(n not in self.known for n in inputs)

    def _takes_first(self, node: torch.fx.Node) -> bool:
        """Whether the node takes one position of the first dimension of a tensor whose batch a permute moved just
        after it (`qkv[0]`, as `unbind(0)` does for one piece): written `qkv[:, 0]`, the batch first again."""
        source = node.args[0] if node.args else None
        index = node.args[1] if len(node.args) > 1 else None
        return (
            node.op == "call_function"
            and node.target is operator.getitem
            and isinstance(source, torch.fx.Node)
            and self.batch_at.get(source) == 1
            and isinstance(index, int)
            and not isinstance(index, bool)
        )

    def _unbind(self, node: torch.fx.Node) -> _Expr:
        """`q, k, v = unbind(x, d)`. On a tensor whose batch a permute moved to `at`, the dimension is counted in
        the written tensor (the batch first), and the pieces must have the batch first again: `d` just before it."""
        source = node.args[0]
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        shape = self._shape(source)
        if not isinstance(dim, int) or isinstance(dim, bool) or not -len(shape) <= dim < len(shape):
            raise _Unsupported(f"`unbind` on dimension {dim!r}", "unbind a dimension given as a number")
        dim %= len(shape)
        at = self.batch_at.get(source, 0) if isinstance(source, torch.fx.Node) else 0
        if dim == at:
            raise _Unsupported("`unbind` over the batch", "unbind another dimension")
        if at and dim != at - 1:
            raise _Unsupported(
                f"`unbind` of dimension {dim} of a tensor whose batch a permute moved to dimension {at}",
                "the language keeps the batch first: unbind the dimension just before it",
            )
        written = dim + 1 if dim < at else dim
        self.pieces[node] = shape[dim]
        return _Expr(_op_text("unbind", {"dim": written}, ("dim",), self._value(source).parts))

    def _unsqueeze(self, node: torch.fx.Node) -> _Expr:
        """`x.unsqueeze(d)` (cait's class attention, `q(x[:, 0]).unsqueeze(1)`): each sample reshaped to the size the
        run found, a dimension of one added (not before the batch)."""
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        after = self._shape(node)
        if isinstance(node.args[0], torch.fx.Node) and self._own(node.args[0]):
            return _Expr(["reshape(", *self._value(node.args[0]).parts, f", {literal(tuple(after))})"])  # no batch
        if not isinstance(dim, int) or isinstance(dim, bool) or dim % len(after) == 0:
            raise _Unsupported(f"`unsqueeze` on dimension {dim!r}", "add a dimension after the batch")
        return _Expr(["reshape(", *self._value(node.args[0]).parts, f", {literal(tuple(after[1:]))})"])

    def _matmul(self, node: torch.fx.Node) -> _Expr:
        """`a @ b`, `torch.matmul(a, b)`: `matmul(a, b)`."""
        if len(node.args) != 2 or node.kwargs or not all(isinstance(a, torch.fx.Node) for a in node.args):
            raise _Unsupported(f"`{_name_of(node.target)}` of other than two tensors", "multiply two tensors")
        a, b = (self._value(t) for t in node.args)
        return _Expr(["matmul(", *a.parts, ", ", *b.parts, ")"])

    def _einsum(self, node: torch.fx.Node) -> _Expr:
        """`torch.einsum` whose equation is a batched matrix product (MaxViT's "B G H I D, B G H J D -> B G H I J"):
        `matmul(a, b)`, an operand whose last two letters are the other way round transposed first
        (`matmul(q, transpose(k, -2, -1))`). Other equations are not imported."""
        equation = node.args[0] if node.args else None
        operands = list(node.args[1:])
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = list(operands[0])
        if not isinstance(equation, str) or node.kwargs or len(operands) != 2 or not all(isinstance(t, torch.fx.Node) for t in operands):
            raise _Unsupported("`einsum` of other than an equation and two tensors", "multiply two tensors with `matmul`")
        order = _einsum_matmul(equation)
        if order is None:
            raise _Unsupported(
                f"`einsum` with the equation {equation!r}, not a matrix product over the same leading dimensions",
                "write it with `matmul`, `transpose` and `permute`",
            )
        parts: list[list[Part]] = []
        for operand, swapped in zip(operands, order, strict=True):
            value = self._value(operand).parts
            parts.append(["transpose(", *value, ", -2, -1)"] if swapped else list(value))
        return _Expr(["matmul(", *parts[0], ", ", *parts[1], ")"])

    def _attention(self, node: torch.fx.Node) -> _Expr:
        """`F.scaled_dot_product_attention(q, k, v)` without a mask, dropout or causality: `attention(q, k, v)`, with
        `scale = s` where the model gives one."""
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
        bound = dict(zip(names, node.args, strict=False)) | dict(node.kwargs)
        if not all(isinstance(bound.get(n), torch.fx.Node) for n in names[:3]):
            raise _Unsupported("`scaled_dot_product_attention` of other than three tensors", "pass queries, keys and values")
        if (
            bound.get("attn_mask") is not None
            or bound.get("dropout_p", 0.0) != 0.0
            or bound.get("is_causal", False)
            or bound.get("enable_gqa", False)
        ):
            raise _Unsupported(
                "`scaled_dot_product_attention` with a mask, dropout, causality or grouped queries", "the language's `attention` has none"
            )
        scale = bound.get("scale")
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
            raise _Unsupported(f"`scaled_dot_product_attention` with scale {scale!r}", "give the scale as a number")
        parts: list[Part] = ["attention("]
        for i, name in enumerate(names[:3]):
            parts.extend([", "] if i else [])
            parts.extend(self._value(bound[name]).parts)
        return _Expr([*parts, f", scale = {literal(float(scale))})" if scale is not None else ")"])

    def _shape(self, node: Any) -> tuple[int, ...]:
        if not isinstance(node, torch.fx.Node) or node not in self.shapes:
            raise _Unsupported("a size the forward reads, where the module was not run on one tensor", "apply the module to one tensor")
        return self.shapes[node]

    def _reshape(self, node: torch.fx.Node) -> _Expr:
        """`x.view(n, c, -1)`: each sample given the shape the run found (`flatten(x, 1)` where it is flat), the
        batch kept."""
        before, after = self._shape(node.args[0]), self._shape(node)
        source = node.args[0]
        if isinstance(source, torch.fx.Node) and self._own(source):
            # A parameter reshaped to broadcast against a map (layer scale's `gamma.reshape(1, -1, 1, 1)`): the
            # parameter has no batch, so the sizes are its whole shape, written as the model wrote them.
            written = node.args[1] if len(node.args) == 2 and isinstance(node.args[1], (tuple, list)) else node.args[1:]
            sizes = tuple(written) if written and all(isinstance(v, int) and not isinstance(v, bool) for v in written) else after
            return _Expr(["reshape(", *self._value(source).parts, f", {literal(sizes)})"])
        if not before or not after or before[0] != after[0]:
            raise _Unsupported(
                f"`{_name_of(node.target)}` from {before} to {after} (a batch of 2), which moves the batch",
                "the language's reshape keeps the batch first",
            )
        if len(after) == 2:
            return self._inline("flatten", node.args[0], {"start_dim": 1})
        if after == before:
            return self._value(node.args[0])
        # The sizes as written, never a block's parameter (as `split`'s): the shape rule needs them as numbers.
        return _Expr(["reshape(", *self._value(node.args[0]).parts, f", {literal(tuple(after[1:]))})"])

    def _expand(self, node: torch.fx.Node) -> _Expr:
        """A learnable tensor with a leading 1 expanded to the batch (ViT's class token): the parameter, which `cat`
        and arithmetic expand."""
        source = node.args[0]
        if isinstance(source, torch.fx.Node) and source.op == "get_attr":
            shape = tuple(dict(self.module.named_parameters(recurse=False))[str(source.target)].shape)
            after = self._shape(node)
            if shape[:1] == (1,) and after[1:] == shape[1:] and all(u.target is torch.cat for u in node.users):
                return self._value(source)
        raise _Unsupported("`expand` of a tensor other than a parameter joined to the tokens", "the language expands only in `cat`")

    def _expand_as(self, node: torch.fx.Node) -> _Expr:
        """`x * y.expand_as(x)` (ECA's gate): where each use is arithmetic whose result broadcasting gives anyway,
        the tensor itself, which the arithmetic broadcasts."""
        source, shape = node.args[0], self._shape(node)
        for user in self._users(node):
            plain = user.op == "call_function" and user.target in _ARITH
            plain = plain or (user.op == "call_method" and user.target in ("add", "sub", "mul", "div"))
            others = [a for a in user.args if a is not node]
            if not plain or len(user.args) != 2 or len(others) != 1 or user not in self.shapes:
                raise _Unsupported("`expand_as` other than an operand of arithmetic", "broadcast in the arithmetic")
            other = self._shape(others[0]) if isinstance(others[0], torch.fx.Node) else ()
            if tuple(torch.broadcast_shapes(other, self._shape(source))) != self.shapes[user]:  # type: ignore[no-untyped-call]
                raise _Unsupported(f"`expand_as` to {shape}, which broadcasting does not give", "broadcast in the arithmetic")
        return self._value(source)

    def _index(self, node: torch.fx.Node) -> _Expr:
        """`x[:, 0]`, `x[:, 1:]`: one subscript per dimension from the batch on, the batch whole."""
        if self._takes_first(node):
            value = self._value(node.args[0])
            parts = value.parts if value.prec >= 10 else ["(", *value.parts, ")"]
            return _Expr([*parts, f"[:, {literal(node.args[1])}]"])
        source, index = node.args[0], node.args[1]
        if isinstance(source, torch.fx.Node) and isinstance(index, torch.fx.Node) and index in self.shapes:
            # A parameter's rows gathered by an integer buffer (MaxViT's `self.relative_position_bias_table[bias_index]`)
            if not self._own(source) or not self._own(index):
                raise _Unsupported("indexing by a tensor other than a parameter or buffer by a buffer", "gather rows of a table")
            value = self._value(source)
            parts = value.parts if value.prec >= 10 else ["(", *value.parts, ")"]
            return _Expr([*parts, "[", *self._value(index).parts, "]"])
        items = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
        if not isinstance(node.args[0], torch.fx.Node) or node.args[0] not in self.shapes:
            raise _Unsupported(f"indexing {_not_tensor(node.args[0])}", "the language indexes tensors; it passes a list of tensors whole")
        if items.count(Ellipsis) == 1:  # `x[..., 0::2, 0::2, :]`: as many whole dimensions as it stands for
            at = items.index(Ellipsis)
            items = (*items[:at], *[slice(None)] * (len(self._shape(node.args[0])) - len(items) + 1), *items[at + 1 :])
        sizes = self._shape(node.args[0])
        if all(
            isinstance(i, slice)
            and i.start in (None, 0)
            and i.step in (None, 1)
            and (i.stop is None or (isinstance(i.stop, int) and i.stop >= size))
            for i, size in zip(items, sizes, strict=False)
        ):
            return self._value(node.args[0])  # every position of every dimension (Swin's `x[:, :H, :W, :]` at H, W)
        text: list[str] = []
        for item in items:
            item = self.known.get(item, item) if isinstance(item, torch.fx.Node) else item
            if isinstance(item, slice):
                bounds = [item.start, item.stop, item.step]
                if any(b is not None and not isinstance(b, int) for b in bounds):
                    raise _Unsupported(f"slicing with {item}", "slice with numbers")
                words = ["" if b is None else literal(b) for b in bounds]
                text.append(":".join(words[:2]) if item.step is None else ":".join(words))
            elif isinstance(item, int) and not isinstance(item, bool):
                text.append(literal(item))
            else:
                raise _Unsupported(f"indexing with {item!r}", "index with numbers and slices")
        if not text or text[0] != ":":
            raise _Unsupported("indexing the batch", "the first subscript is `:`, the batch whole")
        value = self._value(node.args[0])
        parts = value.parts if value.prec >= 10 else ["(", *value.parts, ")"]
        return _Expr([*parts, f"[{', '.join(text)}]"])

    def _split(self, node: torch.fx.Node) -> _Expr:
        """`a, b = split(x, (16, 48), dim = 1)`: sizes written out where the forward gave one size for all parts."""
        sizes = node.args[1] if len(node.args) > 1 else node.kwargs.get("split_size_or_sections", node.kwargs.get("split_size"))
        dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
        sizes = self.known.get(sizes, sizes) if isinstance(sizes, torch.fx.Node) else sizes
        dim = self.known.get(dim, dim) if isinstance(dim, torch.fx.Node) else dim
        shape = self._shape(node.args[0])
        if not isinstance(dim, int) or dim % len(shape) == 0:
            raise _Unsupported("`split` over the batch", "split another dimension")
        dim = dim % len(shape)
        if isinstance(sizes, int):
            total = shape[dim]
            sizes = tuple(min(sizes, total - start) for start in range(0, total, sizes))
        if not isinstance(sizes, (tuple, list)) or not all(isinstance(v, int) for v in sizes):
            raise _Unsupported(f"`split` into {sizes!r}", "split into sizes given as numbers")
        self.pieces[node] = len(sizes)
        # The sizes as written, never a block's parameter: the generated module needs them as numbers (E016).
        return _Expr(["split(", *self._value(node.args[0]).parts, f", {literal(tuple(sizes))}, dim = {dim})"])

    def _inline(self, op: str, tensor: Any, values: dict[str, Any]) -> _Expr:
        positional = ("start_dim",) if op == "flatten" else ()
        if op == "flatten" and values.get("start_dim") == 1 and values.get("end_dim", -1) == -1:
            values = {"start_dim": 1}
        return _Expr(_fixed_pad(_op_text(op, values, positional, self._value(tensor).parts)))

    def _arith(self, node: torch.fx.Node, symbol: str) -> _Expr:
        if node.kwargs.get("alpha", 1) != 1 or len(node.args) != 2:
            raise _Unsupported(f"`{_name_of(node.target)}` with alpha or more operands", "write the scaling as a product")
        a, b = node.args
        if not isinstance(a, torch.fx.Node) and not isinstance(b, torch.fx.Node):
            raise _Unsupported("arithmetic on two numbers in the forward", "compute it in the body")
        for v in (a, b):
            if not isinstance(v, (torch.fx.Node, int, float)) or isinstance(v, bool):
                raise _Unsupported(f"arithmetic with {v!r}", "tensors take numbers and tensors")
        left, right = self._value(a, "scale"), self._value(b, "scale")
        prec = _PREC[symbol]
        lp = left.parts if left.prec >= prec else ["(", *left.parts, ")"]
        rp = right.parts if right.prec > prec else ["(", *right.parts, ")"]
        return _Expr([*lp, f" {symbol} ", *rp], prec)

    def _addcmul(self, node: torch.fx.Node) -> _Expr:
        """`torch.addcmul(a, b, c)` (ResMLP's affine, `addcmul(beta, alpha, x)`): `a + b * c`."""
        if len(node.args) != 3 or node.kwargs.get("value", 1) != 1 or not all(isinstance(a, torch.fx.Node) for a in node.args):
            raise _Unsupported("`addcmul` with a value or other than three tensors", "write it as `a + b * c`")
        a, b, c = (self._value(t) for t in node.args)
        product = [*(b.parts if b.prec >= 7 else ["(", *b.parts, ")"]), " * ", *(c.parts if c.prec > 7 else ["(", *c.parts, ")"])]
        return _Expr([*(a.parts if a.prec >= 6 else ["(", *a.parts, ")"]), " + ", *product], 6)

    def _cat(self, node: torch.fx.Node) -> _Expr:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if isinstance(tensors, torch.fx.Node) and tensors.op == "placeholder":
            # The forward's input is a list of tensors it joins first (torchvision's _DenseLayer): the spec passes
            # the joined tensor, so the join is the input itself.
            return self._value(tensors)
        if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, torch.fx.Node) for t in tensors):
            raise _Unsupported("`torch.cat` of a list built at run time", "concatenate named tensors")
        whole = [name for name, items in self.list_inputs.items() if list(map(id, items)) == list(map(id, tensors))]
        if whole and dim == 1:
            return _Expr([f"cat({whole[0]})"])  # an input list joined whole (DLA's root: `torch.cat(x_children, 1)`)
        if isinstance(dim, int) and dim < 0 and tensors[0] in self.shapes:
            dim += len(self.shapes[tensors[0]])
        if dim == 0 or not isinstance(dim, int):
            raise _Unsupported(f"`torch.cat` on dimension {dim}", "the language's `cat` joins the dimensions of a sample")
        parts: list[Part] = ["cat("]
        for i, t in enumerate(tensors):
            parts.extend([", "] if i else [])
            parts.extend(self._value(t).parts)
        rank = len(self.shapes.get(tensors[0], (0, 0, 0, 0)))
        return _Expr([*parts, ")" if dim == 1 and rank == 4 else f", dim = {dim})"])

    def _stack(self, node: torch.fx.Node) -> _Expr:
        """`torch.stack(xs, dim = d)` (SelectiveKernel's paths): each tensor given a dimension of one at d
        (`unflatten(x, d, (1, size))`), joined there."""
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if not isinstance(tensors, (list, tuple)) or not tensors or not all(isinstance(t, torch.fx.Node) for t in tensors):
            raise _Unsupported("`torch.stack` of a list built at run time", "stack named tensors")
        shape = self._shape(tensors[0])
        if not isinstance(dim, int) or not 0 < dim % (len(shape) + 1) < len(shape):
            raise _Unsupported(f"`torch.stack` on dimension {dim}", "the language stacks between the dimensions of a sample")
        dim %= len(shape) + 1
        parts: list[Part] = ["cat("]
        for i, t in enumerate(tensors):
            parts.extend([", "] if i else [])
            parts.extend(_op_text("unflatten", {"dim": dim, "sizes": (1, self._shape(t)[dim])}, ("dim", "sizes"), self._value(t).parts))
        return _Expr([*parts, f", dim = {dim})"])

    def _text(self) -> tuple[list[Part], bool]:
        several = len(self.inputs) > 1 or any(is_list for _, _, is_list in self.inputs)
        sequential = len(self.lines) == 1 and self.lines[0][0] == "return " and not several
        signature = "forward(x)"
        if several:
            signature = "forward(" + ", ".join(f"{name} = []" if is_list else name for name, _, is_list in self.inputs) + ")"
        out: list[Part] = []
        if len(self.lines) == 1:
            out = [f"{signature} = ", *self.lines[0][1:], "\n"]
        else:
            out = [f"{signature} {{\n"]
            for line in self.lines:
                out.extend([*line, "\n"])
            out.append("}\n")
        return out, sequential


def _not_tensor(value: Any) -> str:
    """What a value indexed in a forward is, where it is not one tensor (MultiScaleBlock's `x[i]` of its list input)."""
    if not isinstance(value, torch.fx.Node):
        return f"a {type(value).__name__} that is not a tensor"
    if value.op == "placeholder":
        return f"the forward's input `{str(value.target).lstrip('*')}`, which is not one tensor (a list or tuple of tensors)"
    if value.op == "call_module":
        return f"what member `{value.target}` returns, which is not one tensor (a list or tuple of tensors)"
    return f"`{value.name}`, a value that is not one tensor"


def _fixed_pad(parts: list[Part]) -> list[Part]:
    """A forward's `pad` with its numbers as written, never a block's parameter (the sizes a forward computed, timm's
    padding "same" at one input size): the generated module needs them as numbers (the shape rule counts them)."""
    if parts[:1] != ["pad("]:
        return parts
    return [literal(p.value) if isinstance(p, Slot) and p.hint == "pad" and not p.keyword else p for p in parts]


def _same_default(value: Any, default: Any) -> bool:
    """Whether an argument's value is its default: None, a flag or a number alike."""
    if value is None or default is None or isinstance(value, bool) or isinstance(default, bool):
        return value is default
    return isinstance(value, (int, float)) and isinstance(default, (int, float)) and value == default


def _uses(user: torch.fx.Node, node: torch.fx.Node) -> int:
    """How many times `user` takes `node` among its arguments."""
    found: list[Any] = []
    torch.fx.node.map_aggregate((user.args, user.kwargs), found.append)
    return sum(1 for v in found if v is node)


def _dead_piece(node: torch.fx.Node) -> bool:
    """A piece of a split taken and never used."""
    source = node.args[0] if node.args else None
    return node.target is operator.getitem and not node.users and isinstance(source, torch.fx.Node) and _is_multi(source)


def _is_multi(node: torch.fx.Node) -> bool:
    return (node.op == "call_function" and node.target in (torch.chunk, torch.split, torch.unbind)) or (
        node.op == "call_method" and node.target in ("chunk", "split", "unbind")
    )


def _is_mask(node: torch.fx.Node) -> bool:
    """timm's `maybe_add_mask(scores, attn_mask)` (traced as one call), which adds a mask where there is one."""
    return node.op == "call_function" and _name_of(node.target) == "maybe_add_mask"


def _is_unbind(node: torch.fx.Node) -> bool:
    return (node.op == "call_function" and node.target is torch.unbind) or (node.op == "call_method" and node.target == "unbind")


def _channel_shuffle(forward: _Forward, node: torch.fx.Node) -> _Expr:
    """torchvision's `channel_shuffle(x, groups)`: channels into (groups, C / groups), transposed, flattened back."""
    groups = node.args[1] if len(node.args) > 1 else node.kwargs.get("groups")
    groups = forward.known.get(groups, groups) if isinstance(groups, torch.fx.Node) else groups
    if not isinstance(groups, int):
        raise _Unsupported(f"`channel_shuffle` with groups {groups!r}", "shuffle a number of groups")
    x = forward._value(node.args[0]).parts
    grouped = _op_text("unflatten", {"dim": 1, "sizes": (groups, -1)}, ("dim", "sizes"), x)
    swapped = _op_text("transpose", {"dim0": 1, "dim1": 2}, ("dim0", "dim1"), grouped)
    return _Expr(["flatten(", *swapped, ", 1, 2)"])


# Library functions traced as one call (`_wrapped_functions`), by name: how each is written.
_LEAF_FUNCTIONS: dict[str, Callable[[_Forward, torch.fx.Node], _Expr]] = {"channel_shuffle": _channel_shuffle}


def _chain(graph: torch.fx.Graph, name: str, items: list[str]) -> bool:
    """Where the forward applies every item of the ModuleList (or ModuleDict) `name` once, in order, each to the
    previous one's output (`for block in self.blocks: x = block(x)`), rewrite the graph to apply `name` once, as a
    sequence; whether it did."""
    calls = [n for n in graph.nodes if n.op == "call_module" and str(n.target).startswith(f"{name}.")]
    if not items or [str(n.target) for n in calls] != [f"{name}.{item}" for item in items]:
        return False
    for previous, node in zip(calls, calls[1:], strict=False):
        if node.args != (previous,) or node.kwargs or list(previous.users) != [node]:
            return False
    first, last = calls[0], calls[-1]
    if len(first.args) != 1 or first.kwargs or not isinstance(first.args[0], torch.fx.Node):
        return False
    with graph.inserting_before(first):
        whole = graph.call_module(name, (first.args[0],))
    last.replace_all_uses_with(whole)
    for node in reversed(calls):
        graph.erase_node(node)
    return True


# torchvision's _DenseBlock: each layer applied to every feature before it, all of them joined at the end.
DENSE_FORWARD = "forward(x) {\nfor layer in members {\nnew_features = layer(x)\nx = cat(x, new_features)\n}\nreturn x\n}\n"


def _dense_loop(graph: torch.fx.Graph, items: list[str]) -> bool:
    """Whether the forward applies its children in order, each to the list of the input and every output before it,
    and returns them all joined on channels (`features.append(layer(features))`, `torch.cat(features, 1)`): a loop
    over the members that joins each one's new features to the tensor it carries (DENSE_FORWARD)."""
    nodes = list(graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    calls = [n for n in nodes if n.op == "call_module"]
    if not items or len(placeholders) != 1 or [str(n.target) for n in calls] != items:
        return False
    features: list[torch.fx.Node] = [placeholders[0]]
    for call in calls:
        if call.kwargs or len(call.args) != 1 or not isinstance(call.args[0], (list, tuple)) or list(call.args[0]) != features:
            return False
        features.append(call)
    out = nodes[-1]
    cat = out.args[0] if out.op == "output" else None
    if not isinstance(cat, torch.fx.Node) or cat.op != "call_function" or cat.target is not torch.cat:
        return False
    dim = cat.args[1] if len(cat.args) > 1 else cat.kwargs.get("dim", 0)
    joined = cat.args[0] if cat.args else cat.kwargs.get("tensors")
    rest = [n for n in nodes if n not in (*placeholders, *calls, cat, out)]
    return isinstance(dim, int) and dim == 1 and isinstance(joined, (list, tuple)) and list(joined) == features and not rest


def _self_attention(graph: torch.fx.Graph, module: nn.Module) -> None:
    """`attn(x, x, x, need_weights=False)[0]` becomes `attn(x)`, as the spec applies `mha`: a tensor attended to itself,
    the weights dropped."""
    for node in list(graph.nodes):
        if node.op != "call_module":
            continue
        try:
            target = module.get_submodule(str(node.target))
        except AttributeError:
            continue
        if not isinstance(target, nn.MultiheadAttention):
            continue
        kwargs = dict(node.kwargs)
        args = [*node.args, *(kwargs.pop(k) for k in ("query", "key", "value") if k in kwargs)]
        masks = all(kwargs.pop(k, None) is None for k in ("key_padding_mask", "attn_mask")) and not kwargs.pop("is_causal", False)
        weights = kwargs.pop("need_weights", True)
        kwargs.pop("average_attn_weights", None)
        if len(args) != 3 or not (args[0] is args[1] is args[2]) or not masks or kwargs:
            raise _Unsupported(f"`{node.target}` applied to other than one tensor attending to itself", "archc's mha is self-attention")
        users = list(node.users)
        indexed = [(u, u.args[1]) for u in users if u.op == "call_function" and u.target is operator.getitem and len(u.args) == 2]
        weights_used = any(i == 1 and (u.users or weights) for u, i in indexed)
        if len(indexed) != len(users) or weights_used or any(i not in (0, 1) for _, i in indexed):
            raise _Unsupported(f"the attention weights of `{node.target}` used", "archc's mha returns the attended tokens only")
        for user, i in indexed:
            if i == 0:
                user.replace_all_uses_with(node)
            graph.erase_node(user)
        node.args, node.kwargs = (args[0],), {}


def _items_applied(graph: torch.fx.Graph, name: str, child: nn.Module) -> bool:
    """Whether the forward applies items of the list of modules `name` one by one (`self.convs[0](x)`, or a Python loop
    over it, which torch.fx unrolls): a ModuleList, ModuleDict or Sequential of numbered items, or one with a forward of
    its own traced into this one."""
    if type(child) not in (nn.ModuleList, nn.ModuleDict, nn.Sequential) and not _own_list(child):
        return False
    items = [n for n, _ in child.named_children()]
    if not items or items != [str(i) for i in range(len(items))]:
        return False
    return any(n.op == "call_module" and str(n.target).startswith(f"{name}.") for n in graph.nodes)


def _in_order(graph: torch.fx.Graph, names: list[str]) -> bool:
    """Whether the graph applies the named children in order, each to the previous one's output, and returns the last."""
    nodes = [n for n in graph.nodes]
    if len(nodes) != len(names) + 2 or not names:
        return False
    previous = nodes[0]
    for node, name in zip(nodes[1:-1], names, strict=True):
        if node.op != "call_module" or node.target != name or node.args != (previous,) or node.kwargs:
            return False
        previous = node
    return nodes[-1].args[0] is previous


# --- the importer ----------------------------------------------------------------------------------------------------


def _member_name(name: str) -> str:
    return name if name.isidentifier() and not keyword.iskeyword(name) else f'"{name}"'


class Importer:
    def __init__(self, model: nn.Module | None = None, shape: tuple[int, ...] = DEFAULT_INPUT) -> None:
        self.model, self.shape = model, shape
        self.shapes: dict[int, tuple[int, ...]] | None = None  # id(module) -> the size of its input, when asked
        self.every: dict[int, tuple[Any, ...]] = {}  # id(module) -> the sizes of all its inputs (with `shapes`)
        # Classes whose instances share a block only at one input size (the generated class cannot derive a size
        # from its arguments otherwise: E073).
        self.by_input: set[str] = set()
        self.instances: list[Instance] = []
        self.post: dict[int, tuple[str, dict[str, Any]]] = {}  # id(module) -> the activation applied after it
        self.pre: dict[int, tuple[str, dict[str, Any]]] = {}  # id(module) -> the op applied to its input first (a pad)
        # id(module) -> the constants its caller passes after the tensor (`pre_logits=False`), its forward traced with them
        self.constants: dict[int, dict[str, Any]] = {}
        # id(module) -> the tensors its caller passes beyond one (`self.tree1(x, shortcut)`, `self.root([x2, x1])`):
        # each input held as a placeholder (a list of them for a list), the forward traced with them
        self.given: dict[int, dict[str, Any]] = {}
        # id(module) -> the inputs its written forward takes, (spec name, Python name, a list of tensors), where it
        # takes more than one tensor
        self.inputs: dict[int, list[tuple[str, str, bool]]] = {}
        self.chained: set[int] = set()  # ModuleLists and ModuleDicts whose items the forward applies in order
        self.listed: set[int] = set()  # lists of modules whose items a forward applies one by one (`convs[0](x)`)

    def input_shape(self, module: nn.Module) -> tuple[int, ...] | None:
        """The size of the tensor the model first applies `module` to, in a batch of two (None: never one tensor)."""
        if self.model is None:
            return None
        if self.shapes is None:
            self.shapes = input_shapes(self.model, self.shape, self.every)
        return self.shapes.get(id(module))

    def member(self, module: nn.Module, path: str) -> list[Part]:
        """The constructor text of a member: an op, a seq or a block instance."""
        if (type(module).__module__, type(module).__name__) in NORM_ACT:
            text, post = _norm_act(module, path)
            if post is not None:
                self.post[id(module)] = post
            return text
        convert = _leaf_converter(module)
        if convert is not None:
            try:
                op, values = convert(module)
                return _op_text(op, values)
            except _Unsupported as e:
                raise ArchError("E120", f"cannot import {_where(path, module)}: {e.what}", _class_loc(type(module)), e.hint) from None
        padded = self._padded_conv(module)
        if padded is not None:
            return padded
        children = list(module.named_children())
        if _is_plain_sequential(module) and not children:
            return ["seq()"]  # an empty Sequential: the identity (GhostNet's shortcut where shapes agree)
        if (
            _is_plain_sequential(module)
            and not _named_norm_acts(module)
            and children
            and all(_leaf_converter(c) is not None or (type(c).__module__, type(c).__name__) in NORM_ACT for _, c in children)
        ):
            parts: list[Part] = ["seq("]
            for i, (name, child) in enumerate(children):
                parts.extend([", "] if i else [])
                if name != str(i):
                    parts.append(f"{_member_name(name)} = ")
                parts.extend(self.member(child, f"{path}.{name}" if path else name))
                if id(child) in self.post or id(child) in self.pre:
                    raise ArchError(
                        "E120",
                        f"cannot import {_where(path, module)}: its item `{name}` "
                        + ("pads its input first" if id(child) in self.pre else "applies an activation after its norm"),
                        _class_loc(type(child)),
                        "in a sequence the op would need an index of its own",
                    )
            return [*parts, ")"]
        if not children and not list(module.parameters(recurse=False)) and type(module).forward is nn.Module.forward:
            raise ArchError("E120", f"cannot import {_where(path, module)}: it has no forward", _class_loc(type(module)), None)
        inst = self.instance(module, path)
        return [Ref(inst)]

    def _padded_conv(self, module: nn.Module) -> list[Part] | None:
        """An nn.Conv2d subclass whose forward pads its input and convolves it with its own settings (timm's
        `Conv2dSame`, padding "same" computed from the input's size): the conv, its input padded by the numbers that
        forward computes at the size the model applies it to (found by its sized trace). None: another forward."""
        if not isinstance(module, nn.Conv2d) or type(module).forward is nn.Conv2d.forward or list(module.children()):
            return None
        shape = self.input_shape(module)
        if shape is None or module.padding_mode != "zeros":
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = _SizedTracer(set(), shape).trace(module)
        except Exception:
            return None
        nodes = [n for n in graph.nodes if n.op not in ("placeholder", "get_attr", "output")]
        conv = nodes[-1] if nodes and nodes[-1].target is F.conv2d and len(nodes) <= 2 else None
        if conv is None or list(conv.users) != [list(graph.nodes)[-1]] or conv.kwargs:
            return None
        source, weight, bias, *settings = conv.args
        pad = nodes[0] if len(nodes) == 2 else None
        if pad is not None and (pad.target is not F.pad or source is not pad or getattr(pad.args[0], "op", None) != "placeholder"):
            return None
        pads = pad.args[1] if pad is not None else ()
        constant = pad is None or (pad.kwargs.get("mode", "constant") == "constant" and pad.kwargs.get("value", 0) in (0, None))
        own = [
            getattr(weight, "target", None) == "weight",
            (bias is None and module.bias is None) or getattr(bias, "target", None) == "bias",
            _same(tuple(settings), (tuple(module.stride), tuple(module.padding), tuple(module.dilation), module.groups)),
        ]
        if not constant or len(pad.args if pad is not None else ()) > 2 or not all(own):
            return None
        if not isinstance(pads, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) for v in pads):
            return None
        if any(pads):
            self.pre[id(module)] = ("pad", {"pad": pads})
        return _op_text(*_conv(module))

    def _trace(self, module: nn.Module, path: str, through: set[int]) -> torch.fx.Graph:
        """The module's forward traced, its arguments after the tensor held at the constants its caller passes (or
        their defaults); a forward the plain trace cannot follow (a branch on a size) traced again at the size the
        model applies the module to (`_SizedTracer`)."""
        concrete = {**(_defaults(module) or {}), **self.constants.get(id(module), {}), **self.given.get(id(module), {})} or None
        error: Exception | None = None
        shape: tuple[int, ...] | None = None
        for tracer in ("plain", "sized"):
            if tracer == "sized":
                # torch's own modules (nn.LSTM) are ops or not: their internals are not the model's
                shape = None if type(module).__module__.startswith("torch.") else self.input_shape(module)
                if shape is None:
                    break
            try:
                with warnings.catch_warnings(), _through_wrapped():
                    warnings.simplefilter("ignore")
                    traced = _ChildrenAsLeaves(through) if tracer == "plain" else _SizedTracer(through, shape or ())
                    graph = traced.trace(module, concrete_args=concrete)
            except Exception as e:  # torch.fx raises many kinds (TraceError, TypeError, NotImplementedError, ...)
                error = e
                continue
            _functional_members(graph, module, path)
            return graph
        assert error is not None
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ArchError(
            "E121",
            f"cannot trace {_where(path, module)}: {message}",
            _trace_loc(error, type(module)),
            "its forward depends on the input's values, or calls what torch.fx cannot follow",
        ) from None

    def _constant_calls(self, graph: torch.fx.Graph, module: nn.Module, path: str, dense: bool = False) -> None:
        """A member called with constants after its tensor (timm's `self.head(x, pre_logits=False)`): its forward is
        traced with them held (`concrete_args`), and the call applies it to the tensor alone."""
        for node in graph.nodes:
            target = str(node.target)
            if node.op != "call_module" or "." in target or not node.args:
                continue
            if len(node.args) == 1 and not node.kwargs and isinstance(node.args[0], torch.fx.Node):
                continue
            extra: list[Any] = []
            torch.fx.node.map_aggregate((node.args[1:], node.kwargs), extra.append)
            if not isinstance(node.args[0], torch.fx.Node) or any(isinstance(v, torch.fx.Node) for v in extra):
                if not dense:  # a dense block's layers take the list of features joined (DENSE_FORWARD)
                    self._tensor_call(node, module, path)  # a member taking several tensors, or a list of them
                continue
            child = module.get_submodule(target)
            if _leaf_converter(child) is not None or isinstance(child, nn.MultiheadAttention) or type(child).forward is nn.Module.forward:
                continue
            try:
                signature = inspect.signature(child.forward)
                bound = signature.bind(None, *node.args[1:], **node.kwargs)
            except (TypeError, ValueError):
                continue
            variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            if any(signature.parameters[name].kind in variadic for name in bound.arguments):
                continue
            constants = dict(list(bound.arguments.items())[1:])
            held = self.constants.setdefault(id(child), constants)
            if held != constants:
                raise ArchError(
                    "E120",
                    f"cannot import {_where(path, module)}: it calls `{target}` with {held} and with {constants}",
                    _node_loc(node, type(module)),
                    "a member's forward is traced once, with the constants its calls pass: pass the same ones",
                )
            node.args, node.kwargs = node.args[:1], {}

    def _tensor_call(self, node: torch.fx.Node, module: nn.Module, path: str) -> None:
        """A member called with several tensors or a list of them (DLA's `self.tree1(x, shortcut)`, `self.tree2(x1,
        None, children)`, `self.root([x2, x1] + children)`): its forward is traced with a placeholder for each tensor
        (`PHWithMeta`, keyed by the input's name and place in its list), the constants held; the call's inputs by name
        are kept on the node (`archc_inputs`) for the caller's forward, which passes those the member's forward uses."""
        from torch.fx._symbolic_trace import PHWithMeta

        target = str(node.target)
        child = module.get_submodule(target)
        fail = ArchError(
            "E120",
            f"cannot import {_where(path, module)}: calling `{target}` with {len(node.args) + len(node.kwargs)} arguments",
            _node_loc(node, type(module)),
            "a member takes tensors, lists of tensors and constants",
        )
        if _leaf_converter(child) is not None or type(child).forward is nn.Module.forward or isinstance(child, nn.MultiheadAttention):
            return  # an op (self-attention's `attn(x, x, x)`: `_self_attention`), or E120 where the forward is written
        try:
            signature = inspect.signature(child.forward)
            bound = signature.bind(*node.args, **node.kwargs)
        except (TypeError, ValueError):
            raise fail from None
        variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        if any(signature.parameters[name].kind in variadic for name in bound.arguments):
            raise fail
        nodes: list[Any] = []
        torch.fx.node.map_aggregate((node.args, node.kwargs), lambda v: nodes.append(v) if isinstance(v, torch.fx.Node) else None)
        plain = [n for n in node.graph.nodes if n.op == "call_module" and n.target == node.target and n is not node and len(n.args) == 1]
        if any(not n.kwargs and isinstance(n.args[0], torch.fx.Node) for n in plain):
            raise ArchError(
                "E120",
                f"cannot import {_where(path, module)}: it calls `{target}` with one tensor and with {len(nodes)} values",
                _node_loc(node, type(module)),
                "a member's forward is traced once, with the inputs its calls pass: pass the same ones",
            )
        self.input_shape(child)
        if len(self.every.get(id(child), ())) != len(nodes):
            return  # values other than tensors (sizes read from the input): E120 where the forward is written
        given: dict[str, Any] = {}  # what the child's trace holds: placeholders and constants
        shape: dict[str, Any] = {}  # the same, comparable between calls
        inputs: dict[str, Any] = {}  # the caller's values of the tensor inputs
        for i, (name, value) in enumerate(bound.arguments.items()):
            if isinstance(value, torch.fx.Node):
                if i:
                    given[name], shape[name] = PHWithMeta(name), "tensor"
                inputs[name] = value
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.fx.Node) for v in value):
                given[name] = [PHWithMeta(f"{name}#{k}") for k in range(len(value))]
                shape[name], inputs[name] = ("list", len(value)), list(value)
            else:
                held: list[Any] = []
                torch.fx.node.map_aggregate(value, held.append)
                if i == 0 or any(isinstance(v, torch.fx.Node) for v in held):
                    raise ArchError(
                        "E120",
                        f"cannot import {_where(path, module)}: calling `{target}` with {type(value).__name__} `{name}` "
                        "holding tensors and other values",
                        _node_loc(node, type(module)),
                        "pass tensors, lists of tensors and constants",
                    )
                given[name] = shape[name] = value
        before = self.given.get(id(child))
        if before is not None and {k: _given_shape(v) for k, v in before.items()} != shape:
            raise ArchError(
                "E120",
                f"cannot import {_where(path, module)}: it calls `{target}` with other inputs than before",
                _node_loc(node, type(module)),
                "a member's forward is traced once, with the inputs its calls pass: pass the same ones",
            )
        if before is None:
            self.given[id(child)] = given
        node.meta["archc_inputs"] = inputs

    def instance(self, module: nn.Module, path: str) -> Instance:
        cls = type(module).__name__
        if _is_plain_sequential(module) or type(module) in (nn.ModuleList, nn.ModuleDict):
            base = path.rsplit(".", 1)[-1].rstrip("0123456789") if path else "Sequential"
            cls = "".join(p[:1].upper() + p[1:] for p in re.split(r"[_\W]+", base) if p) or "Sequential"
            cls = cls if cls[0].isalpha() else f"Seq{cls}"
        members: list[tuple[str | None, list[Part]]] = []
        children = list(module.named_children())
        for name, param in module.named_parameters(recurse=False):
            if not name.isidentifier():
                raise ArchError("E120", f"cannot import {_where(path, module)}: parameter `{name}`", _class_loc(type(module)), None)
            dims: list[Part] = []
            for i, size in enumerate(param.shape):
                dims.extend([", "] if i else [])
                dims.append(Slot(int(size), "dim"))
            members.append((name, ["param((", *dims, ",)" if len(param.shape) == 1 else ")", ")"]))
        persistent = [n for n, _ in module.named_buffers(recurse=False) if n not in getattr(module, "_non_persistent_buffers_set", set())]
        listed = id(module) in self.listed
        sequence = listed or ((_sequential_like(module) or type(module) in (nn.ModuleList, nn.ModuleDict)) and not _named_norm_acts(module))
        if persistent and sequence:
            raise ArchError(
                "E120",
                f"cannot import {_where(path, module)}: buffer `{persistent[0]}` of its own",
                _class_loc(type(module)),
                "a sequence holds modules; a fixed tensor belongs to a block that reads it in its forward",
            )
        if sequence:
            if not listed and type(module) is not nn.Sequential and not _sequential_like(module) and id(module) not in self.chained:
                raise ArchError(
                    "E120",
                    f"cannot import {_where(path, module)}: a {type(module).__name__} whose items the forward does not apply"
                    " one after the other, each to the previous one's output",
                    _class_loc(type(module)),
                    "a block applies its members; a list of modules is a sequence in the language",
                )
            for i, (name, child) in enumerate(children):
                text = self.member(child, f"{path}.{name}" if path else name)
                if (id(child) in self.post or id(child) in self.pre) and not listed:  # a list's item: its caller applies it
                    raise ArchError(
                        "E120",
                        f"cannot import {_where(path, module)}: its item `{name}` "
                        + ("pads its input first" if id(child) in self.pre else "applies an activation after its norm"),
                        _class_loc(type(child)),
                        "in a sequence the op would need an index of its own",
                    )
                members.append((None if name == str(i) else _member_name(name), text))
            inst = Instance(path, module, cls, members, None, listed=listed)
            self.instances.append(inst)
            return inst
        graph = self._trace(module, path, {id(c) for _, c in children if _own_list(c)})
        self._constant_calls(graph, module, path, _dense_loop(graph, [n for n, _ in children]))
        run = run_graph(module, graph, self.input_shape(module)) if any(_needs_run(n) for n in graph.nodes) else None
        if run is not None and _unmerge_batch(graph, run, BATCH):
            run = run_graph(module, graph, self.input_shape(module))
        try:
            _self_attention(graph, module)
        except _Unsupported as e:
            raise ArchError("E120", f"cannot import {_where(path, module)}: {e.what}", _class_loc(type(module)), e.hint) from None
        read = {str(n.target) for n in graph.nodes if n.op == "get_attr"}
        constants: set[str] = set()
        for node in graph.nodes:
            found = getattr(module, str(node.target), None) if node.op == "get_attr" else None
            if isinstance(found, torch.Tensor) and str(node.target).startswith("_tensor_constant"):
                name = "attn_mask" if "attn_mask" not in constants else f"attn_mask{len(constants) + 1}"
                members.append((name, _constant_member(module, path, found)))
                constants.add(name)
                node.target = name
        for name, buffer in module.named_buffers(recurse=False):
            if name in read:
                members.append((name, _buffer_member(module, path, name, buffer)))
            elif name in persistent:
                raise ArchError(
                    "E120",
                    f"cannot import {_where(path, module)}: buffer `{name}` of its own, which its forward never reads",
                    _class_loc(type(module)),
                    "a spec's block reads every fixed tensor it declares, and the state_dict holds this one",
                )
        dense = _dense_loop(graph, [n for n, _ in children])
        for name, child in children:
            chainable = type(child) in (nn.ModuleList, nn.ModuleDict, nn.Sequential)
            if chainable and _chain(graph, name, [n for n, _ in child.named_children()]):
                self.chained.add(id(child))
            elif _items_applied(graph, name, child):
                self.listed.add(id(child))
        lists = {name for name, child in children if id(child) in self.listed}
        called = {str(n.target).split(".")[0] for n in graph.nodes if n.op == "call_module"}
        names = [n for n, _ in children]
        for name, child in children:
            if name not in called:
                if any(True for _ in child.parameters()) or any(True for _ in child.buffers()) or list(child.children()):
                    raise self._unapplied(module, path, name, child, graph)
                continue  # a weightless module the forward does not use: no key, nothing to declare
            if not name.isidentifier() or keyword.iskeyword(name):
                raise ArchError(
                    "E120", f"cannot import {_where(path, module)}: its member `{name}` is not a name", _class_loc(type(module)), None
                )
            members.append((name, self.member(child, f"{path}.{name}" if path else name)))
        post = {name: self.post[id(child)] for name, child in children if id(child) in self.post}
        pre = {name: self.pre[id(child)] for name, child in children if id(child) in self.pre}
        for name, child in children:
            if name in lists:
                post.update({f"{name}.{k}": self.post[id(c)] for k, c in child.named_children() if id(c) in self.post})
                pre.update({f"{name}.{k}": self.pre[id(c)] for k, c in child.named_children() if id(c) in self.pre})
        if dense:
            forward: list[Part] = [DENSE_FORWARD]
            sequential = False
        else:
            inputs_of = {name: self.inputs[id(child)] for name, child in children if id(child) in self.inputs}
            written = _Forward(graph, module, path, set(names), post, run, lists, pre, inputs_of)
            written.constants = constants
            forward, sequential = written.run()
            if len(written.inputs) > 1 or any(is_list for _, _, is_list in written.inputs):
                self.inputs[id(module)] = written.inputs
        sequential = sequential and not post and not pre
        used_children = [n for n in names if n in called]
        inst = Instance(path, module, cls, members, None if sequential and _in_order(graph, used_children) else forward)
        self.instances.append(inst)
        return inst

    def _unapplied(self, module: nn.Module, path: str, name: str, child: nn.Module, graph: torch.fx.Graph) -> ArchError:
        """The E120 of a member with weights that the forward does not apply: where it is read instead (a module
        another member holds too and applies, its tensors read by a method of its own), or that it is not."""
        mine = f"{path}.{name}" if path else name
        model = self.model if self.model is not None else module
        shared = [p for p, m in model.named_modules(remove_duplicate=False) if m is child and p != mine]
        read = [n for n in graph.nodes if n.op == "get_attr" and str(n.target).startswith(f"{name}.")]
        weights, buffers = any(True for _ in child.parameters()), any(True for _ in child.buffers())
        held = "weights" if weights else "buffers" if buffers else "modules"
        what = f"cannot import {_where(path, module)}: its member `{name}` ({type(child).__qualname__}) has {held} but its forward"
        if shared:
            others = ", ".join(f"`{p}`" for p in shared[:3]) + (f" and {len(shared) - 3} more" if len(shared) > 3 else "")
            return ArchError(
                "E120",
                f"{what} never applies it: the same module is also {others}, a module shared between members",
                _class_loc(type(module)),
                "a spec's member has weights of its own; a module held by several members (weights shared) has no spelling yet",
            )
        if read:
            tensors = ", ".join(f"`{str(n.target)[len(name) + 1 :]}`" for n in read[:3])
            return ArchError(
                "E120",
                f"{what} reads its tensors ({tensors}) instead of applying it (a method or an attribute of the member)",
                _caller_loc(read[0], child, type(module)),
                "a spec's block applies its members; a member's tensors read otherwise have no spelling yet",
            )
        return ArchError(
            "E120",
            f"{what} never applies it",
            _class_loc(type(module)),
            "a spec's block applies every member it declares",
        )

    def variants(self) -> list[Variant]:
        """Group the instances (children first, as they were made) into block definitions."""
        by_key: dict[tuple[Any, ...], Variant] = {}
        names: Counter[str] = Counter()
        out: list[Variant] = []
        for inst in self.instances:  # children are made before their parents
            key = inst.key()
            if inst.cls in self.by_input:
                key = (*key, self.input_shape(inst.module), self.every.get(id(inst.module)))
            variant = by_key.get(key)
            if variant is None:
                names[inst.cls] += 1
                name = inst.cls if names[inst.cls] == 1 else f"{inst.cls}{names[inst.cls]}"
                variant = Variant(name, [])
                by_key[key] = variant
                out.append(variant)
            variant.instances.append(inst)
            inst.variant = variant
        settled: set[int] = set()

        def settle(variant: Variant) -> None:
            if id(variant) in settled:
                return
            settled.add(id(variant))
            for inst in variant.instances:
                for p in inst.parts():
                    if isinstance(p, Ref):
                        assert p.inst.variant is not None
                        settle(p.inst.variant)
            variant.settle()

        for variant in out:
            settle(variant)
        return out


def _given_shape(value: Any) -> Any:
    """What `Importer._tensor_call` holds for an input, comparable between calls: "tensor", ("list", n), a constant."""
    from torch.fx._symbolic_trace import PHBase

    if isinstance(value, PHBase):
        return "tensor"
    if isinstance(value, list) and value and all(isinstance(v, PHBase) for v in value):
        return ("list", len(value))
    return value


def _einsum_matmul(equation: str) -> tuple[bool, bool] | None:
    """Whether an einsum equation is a matrix product over the same leading (batch) dimensions, "...ij,...jk->...ik"
    spelt with letters: for each operand, whether its last two letters must be swapped first ("bij,bkj->bik": the
    second). None: another equation (a sum left out, a broadcast, a letter repeated, `...`)."""
    text = equation.replace(" ", "")
    if text.count("->") != 1 or "." in text:
        return None
    inputs, out = text.split("->")
    terms = inputs.split(",")
    if len(terms) != 2 or not all(t.isalpha() and len(set(t)) == len(t) for t in (*terms, out)):
        return None
    a, b = terms
    if len(a) != len(b) or len(out) != len(a) or len(a) < 2 or a[:-2] != b[:-2] or a[:-2] != out[:-2]:
        return None
    i, k = out[-2], out[-1]
    for swap_a in (False, True):
        ai, aj = (a[-1], a[-2]) if swap_a else (a[-2], a[-1])
        for swap_b in (False, True):
            bj, bk = (b[-1], b[-2]) if swap_b else (b[-2], b[-1])
            if ai == i and bk == k and aj == bj and len({i, aj, k} | set(a[:-2])) == len(a) + 1:
                return (swap_a, swap_b)
    return None


def _held_check(user: torch.fx.Node, held: torch.fx.Node) -> bool:
    """Whether `user` is torch.fx's check that an argument held by `concrete_args` has its value (`p == 7` asserted,
    or `_assert_is_none`): the only use torch.fx makes of such a placeholder, the forward given the constant."""
    from torch.fx._symbolic_trace import _assert_is_none

    if user.op != "call_function":
        return False
    if user.target is _assert_is_none:
        return True
    return (
        user.target is operator.eq
        and user.args[0] is held
        and bool(user.users)
        and all(u.op == "call_function" and u.target is torch._assert for u in user.users)
    )


def _defaults(module: nn.Module) -> dict[str, Any] | None:
    """The forward's arguments after the tensor that have defaults, held at them (timm's `pre_logits=False`)."""
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    out = {p.name: p.default for p in parameters if p.kind in kinds and p.default is not inspect.Parameter.empty}
    return out or None


def _trace_loc(e: Exception, cls: type) -> Loc | None:
    import traceback

    frames = traceback.extract_tb(e.__traceback__)
    for frame in reversed(frames):
        if "torch/fx" not in frame.filename and "archc/" not in frame.filename:
            return Loc(frame.filename, frame.lineno or 1, 1)
    return _class_loc(cls)


# --- rendering -------------------------------------------------------------------------------------------------------


def _render_parts(parts: list[Part], values: list[str]) -> str:
    """Text with each hole filled from `values` (in order: slots, then each Ref's arguments)."""
    out: list[str] = []
    it = iter(values)
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, Slot):
            value = next(it)
            if not p.keyword:
                out.append(value)
            elif not _literal_default(value, p.default):
                out.append(f", {p.hint} = {value}")
        else:
            variant = p.inst.variant
            assert variant is not None
            args = []
            for (name, default), _ in zip(variant.params, range(len(variant.params)), strict=True):
                value = next(it)
                if value != literal(default):
                    args.append(f"{name} = {value}")
            out.append(f"{variant.name}({', '.join(args)})")
    return re.sub(r"\(, ", "(", "".join(out))


def _literal_default(text: str, default: Any) -> bool:
    """Whether spec text (a literal, or a parameter's name) is the default value."""
    try:
        return text == literal(default) or (isinstance(default, float) and float(text) == default)
    except ValueError:
        return False


def _hole_count(parts: list[Part]) -> int:
    n = 0
    for p in parts:
        if isinstance(p, Slot):
            n += 1
        elif isinstance(p, Ref):
            assert p.inst.variant is not None
            n += len(p.inst.variant.params)
    return n


def render_variant(variant: Variant) -> str:
    inst = variant.instances[0]
    values = variant.vectors[id(inst)]
    filled = [literal(v) if hole is None else variant.params[hole][0] for hole, v in zip(variant.holes, values, strict=True)]
    params = ", ".join(f"{name} = {literal(default)}" for name, default in variant.params)
    lines = [f"# {len(variant.instances)} instance{'s' if len(variant.instances) != 1 else ''}: {_paths(variant)}"]
    lines.append(f"block {variant.name}({params}) {{")
    at = 0
    statements: list[tuple[str | None, str, Variant | None]] = []
    for name, text in inst.members:
        n = _hole_count(text)
        body = _render_parts(text, filled[at : at + n])
        ref = text[0].inst.variant if len(text) == 1 and isinstance(text[0], Ref) else None
        statements.append((name, body, ref))
        at += n
    named = _numbered_loop(statements) if inst.forward == [DENSE_FORWARD] else None
    lines.extend(named if named is not None else _loops(statements, inst.listed))
    if inst.forward is not None:
        lines.append(_render_parts(inst.forward, filled[at:]))
    lines.append("}")
    return "\n".join(lines)


def _numbered_loop(statements: list[tuple[str | None, str, Variant | None]]) -> list[str] | None:
    """Members `denselayer1`, `denselayer2`, ... of one call, as a loop with computed names (torchvision's dense
    block, as specs/lib/densenet.arch writes it); None where they are not."""
    found = [re.fullmatch(r"([A-Za-z_]\w*?)(\d+)", name or "") for name, _, _ in statements]
    if len(statements) < 2 or not all(found) or len({body for _, body, _ in statements}) != 1:
        return None
    prefixes = {m.group(1) for m in found if m}
    numbers = [int(m.group(2)) for m in found if m]
    if len(prefixes) != 1 or numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        return None
    index = "i" if numbers[0] == 0 else f"i + {numbers[0]}"
    return [f"for i in range({len(statements)}) {{", f'"{prefixes.pop()}{{{index}}}" = {statements[0][1]}', "}"]


def _paths(variant: Variant) -> str:
    paths = [i.path or "(the model)" for i in variant.instances]
    return ", ".join(paths) if len(paths) <= 4 else ", ".join(paths[:3]) + f", ... {paths[-1]}"


_CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$")


def _loops(statements: list[tuple[str | None, str, Variant | None]], listed: bool = False) -> list[str]:
    """Member statements, a run of anonymous calls of one block written as a loop; in a list of modules, a run of
    equal ops too (`for i in range(3) { conv(26, 3, padding = 1, bias = false) }`, as specs/lib/res2net.arch)."""
    out: list[str] = []
    i = 0
    while i < len(statements):
        name, body, ref = statements[i]
        j = i + 1
        if listed and name is None and ref is None:
            while j < len(statements) and statements[j][0] is None and statements[j][2] is None and statements[j][1] == body:
                j += 1
            if j - i >= 2:
                out.append(f"for i in range({j - i}) {{\n{body}\n}}")
                i = j
                continue
            j = i + 1
        if name is None and ref is not None:
            while j < len(statements) and statements[j][0] is None and statements[j][2] is ref:
                j += 1
        if j - i < 2 or (j - i == 2 and statements[i][1] != statements[i + 1][1]):  # two different calls read better as two lines
            out.append(body if name is None else f"{name} = {body}")
            i += 1
            continue
        out.append(_loop([s[1] for s in statements[i:j]], ref))
        i = j
    return out


def _split_args(text: str) -> dict[str, str]:
    match = _CALL.match(text)
    assert match is not None
    args: dict[str, str] = {}
    depth, start, inner = 0, 0, match.group(2)
    pieces = []
    for k, ch in enumerate(inner):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append(inner[start:k])
            start = k + 1
    if inner.strip():
        pieces.append(inner[start:])
    for piece in pieces:
        key, _, value = piece.partition(" = ")
        args[key.strip()] = value.strip()
    return args


def _loop(calls: list[str], variant: Variant | None) -> str:
    assert variant is not None
    parsed = [_split_args(c) for c in calls]
    args = []
    for name, default in variant.params:
        column = [p.get(name, literal(default)) for p in parsed]
        if all(v == column[0] for v in column):
            if column[0] != literal(default):
                args.append(f"{name} = {column[0]}")
        elif all(v == column[1] for v in column[1:]):
            args.append(f"{name} = ({column[0]} if i == 0 else {column[1]})")
        else:
            args.append(f"{name} = [{', '.join(column)}][i]")
    return f"for i in range({len(calls)}) {{\n{variant.name}({', '.join(args)})\n}}"


def import_model(source: Source) -> str:
    """The spec of a model, formatted, compiled to make sure it is whole."""
    importer = Importer(source.model, source.input_shape)
    root = importer.member(source.model, "")
    if len(root) != 1 or not isinstance(root[0], Ref):
        raise ArchError("E120", f"cannot import {_where('', source.model)}: the model is a single layer", None, "wrap it in a module")
    name = source.name
    while True:
        variants = importer.variants()
        text, name = _spec_text(source, name, variants, root[0])
        file = f"{name}.arch"
        try:
            text = format_text(text, file)
            compiled = compile_spec(Path(file), text=text)
            compiled.python()
        except ArchError as e:
            again = re.search(r"in terms of (\w+)'s arguments", e.message) if e.code == "E073" else None
            cls = next((v.instances[0].cls for v in variants if again and v.name == again.group(1)), None)
            if cls is not None and cls not in importer.by_input:
                importer.by_input.add(cls)  # a block per input size for this class, and try again
                continue
            raise _not_compiled(e, text, file, variants, source) from None
        source.name = name  # the spec's file stem too: a generated function may not take a block's name
        return text


def _not_compiled(e: ArchError, text: str, file: str, variants: list[Variant], source: Source) -> ArchError:
    """The E120 of a spec that does not compile: the module and the line of its block where the spec's error is
    (elaboration stops at the first instance of a block that fails, in model order), located at the module's class."""
    lines = text.splitlines()
    line = e.loc.line if e.loc is not None and e.loc.file == file and 0 < e.loc.line <= len(lines) else 0
    block = next((m.group(1) for t in reversed(lines[:line]) if (m := re.match(r"(?:block|arch) (\w+)\(", t))), None)
    variant = next((v for v in variants if v.name == block), None)
    where, loc = _where("", source.model), None
    if variant is not None:
        inst = variant.instances[0]
        where, loc = _where(inst.path, inst.module), _class_loc(type(inst.module))
        others = len(variant.instances) - 1
        where += f", block `{block}`" + (f" (and its {others} other instance{'s' * (others > 1)})" if others else "")
    at = f" at `{lines[line - 1].strip()}`" if line else ""
    return ArchError(
        "E120",
        f"cannot import {where}: the spec it gives does not compile{at}: {e.message}",
        loc,
        "the language cannot express this model yet; the error above names the construct",
    )


def _spec_text(source: Source, name: str, variants: list[Variant], root: Part) -> tuple[str, str]:
    """(the spec's text, unformatted; the arch's name, apart from the blocks')."""
    assert isinstance(root, Ref)
    root_variant = root.inst.variant
    assert root_variant is not None
    from archc.sema.calls import SEQ
    from archc.sema.evaluate import BUILTINS

    taken = {v.name for v in variants}
    reserved = name in ops.OPS or name in BUILTINS or name == SEQ  # a callable named as an op: `layernorm`
    name = name if name not in taken and not reserved else f"{name.lower()}_net"
    while name in taken:
        name += "_"
    header = [f"# Imported by `archc import {source.reference or source.name}` from {type(source.model).__module__}."]
    blocks = [render_variant(v) for v in variants]
    meta = [f'reference = "{source.reference}"'] if source.reference else [f'source = "{type(source.model).__module__}"']
    c, h, w = source.input_shape
    arch = f"arch {name}() = {root_variant.name}() {{\nmeta {{ {', '.join(meta)} }}\ninput ({c}, {h}, {w})\n}}"
    text = "\n".join(header) + "\n\n" + "\n\n".join([*blocks, arch]) + "\n"
    return _indent(text), name


def _indent(text: str) -> str:
    """Indent by braces (the formatter keeps the indentation it is given only as a layout hint; it rewrites it)."""
    out, depth = [], 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("}"):
            depth -= 1
        out.append("    " * depth + stripped if stripped else "")
        if stripped.endswith("{"):
            depth += 1
    return "\n".join(out) + "\n"


def import_source(text: str, input_shape: tuple[int, int, int] | None = None) -> tuple[str, Source]:
    """(the spec text, the source) for `archc import SOURCE`."""
    source = load_source(text, input_shape)
    return import_model(source), source


# --- the round trip --------------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """One model's round trip: `equal`, `not equal` (with the first difference) or `not imported` (with the error)."""

    source: str
    verdict: str
    reason: str = ""
    seconds: float = 0.0


def round_trip(source_text: str) -> Verdict:
    """Import, compile, and verify the spec against the model it came from: every check `archc verify` makes
    (`verify_against`: the state_dict loaded strictly, every module's type and settings, every module's output in
    eval mode for each seed at input scales ×1 and ×10 with BatchNorm statistics and affine parameters randomised,
    in training mode with the random ops made deterministic, and the weights and running statistics after one SGD
    step)."""
    import time

    start = time.perf_counter()
    try:
        text, source = import_source(source_text)
        return spec_verdict(source_text, text, source, start)
    except ArchError as e:
        return Verdict(source_text, "not imported", f"{e.code}: {e.message}", time.perf_counter() - start)
    except Exception as e:  # an archc bug the table must show, not hide
        return Verdict(source_text, "not imported", f"internal error: {type(e).__name__}: {e}", time.perf_counter() - start)


def spec_verdict(source_text: str, text: str, source: Source, start: float | None = None) -> Verdict:
    """The verdict of a spec's text against the source's model (`archc verify`'s checks): `equal`, or `not equal`
    with the first difference; `start` (a `time.perf_counter()` reading) times the verdict from there."""
    import time

    from archc.tools.verify import verify_against

    start = time.perf_counter() if start is None else start
    compiled = compile_spec(Path(f"{source.name}.arch"), text=text)
    report = verify_against(compiled, source.model, source_text)
    difference = report.first_difference()
    seconds = time.perf_counter() - start
    if difference is not None:
        return Verdict(source_text, "not equal", difference, seconds)
    outputs = sum(run.compared for run in report.runs if not run.name.startswith("SGD"))
    step = sum(run.compared for run in report.runs if run.name.startswith("SGD"))
    runs = len(report.runs) - 1
    summary = f"{report.modules} modules' settings, {outputs} module outputs in {runs} runs, {step} tensors after the SGD step"
    return Verdict(source_text, "equal", summary, seconds)
