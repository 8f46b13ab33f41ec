"""`archc verify`: a spec against a torchvision or timm model, the tool for porting a model into a spec.

It compares the parameter counts and the state_dict keys and shapes (each difference located at the spec's
layer); then every module's type and constructor settings with the reference module at the same path; then loads
the reference's weights (BatchNorm statistics and affine parameters randomised, for several seeds) into the
generated module and compares every module's output, through forward hooks keyed by the module's path, in eval
mode at input scales ×1 and ×10 and in training mode with dropout made deterministic; and after one SGD step on
both models (same loss, same batch) the updated weights and running statistics. Each difference names the first
module (in execution order) that differs, its spec line and both values. Tolerances are relative to the scale of
the reference's tensor. This module imports torch; the CLI imports it only for this command. The zoo tests
(tests/zoo_helpers.py) use the same comparison; `archc import`'s round trip runs all of it (`verify_against`, which
takes the reference model itself).
"""

from __future__ import annotations

import contextlib
import math
import unittest.mock
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from archc.compiler import Compiled
from archc.errors import ArchError
from archc.ir import ModuleNode
from archc.sema.evaluate import close_match
from archc.tools.runtime import RTOL, build_model, randomize_batchnorm_statistics

LIBRARIES = ("torchvision", "timm")
# Constructor arguments torchvision needs to build these models as the zoo's specs describe them (no weights).
_TORCHVISION_KWARGS: dict[str, dict[str, Any]] = {"googlenet": {"init_weights": True}, "inception_v3": {"init_weights": True}}
BATCH = 1  # samples per input scale in eval mode (samples are independent there); training mode takes 2
SEEDS = 3  # seeds 0, 1, 2: each randomises the BatchNorm layers and draws the batch anew
SCALES = (1.0, 10.0)  # input scales: ×10 drives activations past the ranges fresh weights keep them in (ReLU6's 6)
LR = 0.1  # the SGD step's learning rate
# A module setting is a plain attribute of one of these types (or a tuple of them): what a constructor stores.
_PLAIN = (bool, int, float, str, type(None))
Locate = Callable[[str], str]


def reference_model(library: str, name: str, compiled: Compiled) -> nn.Module:
    """The reference model, randomly initialised, built with the spec's `num_classes` and auxiliary heads."""
    kwargs: dict[str, Any] = {}
    if isinstance(compiled.arch.params.get("num_classes"), int):
        kwargs["num_classes"] = compiled.arch.params["num_classes"]
    return library_model(library, name, bool(compiled.arch.aux_outputs), **kwargs)


def library_model(library: str, name: str, aux_logits: bool = False, **kwargs: Any) -> nn.Module:
    """A torchvision or timm model without weights (`archc verify`'s reference, `archc import`'s source); the
    torchvision models with auxiliary heads get them only with `aux_logits`."""
    if library == "torchvision":
        try:
            import torchvision
        except ImportError:
            raise ArchError("E094", "torchvision is not installed", None, "pip install torchvision") from None
        known = set(torchvision.models.list_models())
        if name not in known:
            raise _unknown(library, name, known)
        kwargs.update(_TORCHVISION_KWARGS.get(name, {}))
        if name in _TORCHVISION_KWARGS:
            kwargs["aux_logits"] = aux_logits
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torchvision.models.get_model(name, weights=None, **kwargs)
    else:
        try:
            import timm
        except ImportError:
            raise ArchError("E094", "timm is not installed", None, "pip install timm") from None
        if not timm.is_model(name):
            raise _unknown(library, name, set(timm.list_models()))
        model = timm.create_model(name, pretrained=False, **kwargs)
    assert isinstance(model, nn.Module)
    return model


def _unknown(library: str, name: str, known: set[str]) -> ArchError:
    close = close_match(name, known)
    hint = f"did you mean `{library}:{close}`?" if close else f"see {library}'s list of models"
    return ArchError("E094", f"{library} has no model `{name}`", None, hint)


@dataclass
class Difference:
    """One place where the spec's model and the reference differ: a module's type, setting or output, or a
    state_dict entry's update after the SGD step."""

    path: str  # the module's path (its state_dict prefix; '' for the model) or the state_dict key
    loc: str  # file:line:col of the spec's module (its nearest enclosing module in the spec)
    what: str  # 'type', the setting's name, 'output' or 'update'
    spec: str  # the spec's value (a short summary for tensors)
    reference: str
    detail: str = ""  # for tensors: the shape and the largest difference against the reference's scale

    def render(self) -> str:
        where = self.path or "(the model)"
        text = f"{where}  {self.loc}: {self.what}: spec {self.spec}, reference {self.reference}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass
class Run:
    """One numeric comparison: a forward pass of both models (every module's output) or the SGD step."""

    name: str  # e.g. 'eval, seed 0, inputs ×1 and ×10'
    compared: int  # module outputs (or state_dict tensors) compared
    worst: float  # the largest difference relative to the reference's scale, over all of them
    first: Difference | None = None  # the first (in execution order) beyond the tolerance

    def render(self, rtol: float) -> str:
        what = "state_dict tensors" if self.name.startswith("SGD") else "module outputs"
        if self.compared == 0:
            return f"{self.name}: not compared (the training-mode outputs differ)"
        if self.first is None:
            worst = f"largest difference {self.worst:.2g} of the scale, tolerance {rtol:g}"
            return f"{self.name}: {self.compared} {what} alike ({worst}): equal"
        return f"{self.name}: differ, first at {self.first.render()}: differ"


def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


# timm's own activation classes (timm/layers/activations.py) derive from nn.Module alone; each computes the torch.nn
# activation named here (timm's `inplace` aside, compared as a setting where the torch.nn class has one).
_TIMM_ACTIVATIONS = {
    "Sigmoid": "Sigmoid",
    "Tanh": "Tanh",
    "Swish": "SiLU",
    "Mish": "Mish",
    "HardSigmoid": "Hardsigmoid",
    "HardSwish": "Hardswish",
    "GELU": "GELU",
    "GELUTanh": "GELU",
}


def torch_type(module: nn.Module) -> str:
    """The torch.nn class a module is (for a custom class, the nearest torch.nn class it derives from, for timm's
    own activations the torch.nn activation they compute); an empty container is the identity."""
    if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)) and _is_leaf(module):
        return "Identity"
    if type(module).__module__ == "timm.layers.activations" and type(module).__name__ in _TIMM_ACTIVATIONS:
        return _TIMM_ACTIVATIONS[type(module).__name__]
    for cls in type(module).__mro__:
        if cls.__module__ == "torch.nn" or cls.__module__.startswith("torch.nn."):
            return cls.__name__
    return type(module).__name__


def _plain(value: Any) -> bool:
    return isinstance(value, _PLAIN) or (isinstance(value, tuple) and all(_plain(v) for v in value))


def module_settings(module: nn.Module) -> dict[str, Any]:
    """A module's constructor settings: its public plain attributes (eps, momentum, kernel_size, padding, dilation,
    ceil_mode, inplace, p, approximate, negative_slope, min_val, ...), whatever the class; not the mode."""
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training" and _plain(v)}


def _same_setting(ours: Any, theirs: Any) -> bool:
    """Equal settings; an int and a tuple repeating it are the same (MaxPool2d(3) and MaxPool2d((3, 3)))."""
    if type(ours) is bool or type(theirs) is bool:
        return type(ours) is type(theirs) and ours == theirs
    if isinstance(ours, tuple) != isinstance(theirs, tuple):
        seq, one = (ours, theirs) if isinstance(ours, tuple) else (theirs, ours)
        return len(seq) > 0 and all(_same_setting(v, one) for v in seq)
    if isinstance(ours, tuple):
        return len(ours) == len(theirs) and all(_same_setting(a, b) for a, b in zip(ours, theirs, strict=True))
    return bool(ours == theirs) and (ours is None) == (theirs is None)


def compare_settings(ours: nn.Module, theirs: nn.Module) -> list[tuple[str, Any, Any]]:
    """(what, ours, theirs) for each difference between two modules: the torch.nn class (of leaves) and every
    setting both have."""
    out: list[tuple[str, Any, Any]] = []
    if _is_leaf(ours) and _is_leaf(theirs) and torch_type(ours) != torch_type(theirs):
        out.append(("type", torch_type(ours), torch_type(theirs)))
    mine, other = module_settings(ours), module_settings(theirs)
    out.extend((k, mine[k], other[k]) for k in mine if k in other and not _same_setting(mine[k], other[k]))
    return out


def settings_differences(model: nn.Module, reference: nn.Module, locate: Locate) -> tuple[int, list[Difference]]:
    """(modules compared, differences): every module of the spec's model against the reference's at its path."""
    theirs = dict(reference.named_modules())
    compared, found = 0, []
    for path, module in model.named_modules():
        if path not in theirs:
            continue
        compared += 1
        for what, a, b in compare_settings(module, theirs[path]):
            found.append(Difference(path, locate(path), what, repr(a) if what != "type" else a, repr(b) if what != "type" else b))
    return compared, found


# --- outputs ------------------------------------------------------------------------------------------------------


def _tensors(out: Any) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _tensors(item)]
    return []


class _Recorder:
    """Forward hooks on every module, each call keyed by (path, call number). Without `against`, they keep copies
    of the output tensors (an in-place ReLU or addition later would change them); with it (the reference's
    recorder), they compare each output as it comes with the reference's at the same key, into `run`."""

    def __init__(
        self, model: nn.Module, against: _Recorder | None = None, chunks: int = 1, rtol: float = RTOL, locate: Locate = str
    ) -> None:
        self.outputs: dict[tuple[str, int], list[Tensor]] = {}
        self.calls: dict[str, int] = {}
        self.against, self.chunks, self.rtol, self.locate = against, chunks, rtol, locate
        self.run = Run("", 0, 0.0)
        self._last: tuple[Tensor, int, Tensor] | None = None
        self.handles = [m.register_forward_hook(self._hook(path)) for path, m in model.named_modules()]
        self.leaves = {path for path, m in model.named_modules() if _is_leaf(m)}

    def _hook(self, path: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            n = self.calls.get(path, 0)
            self.calls[path] = n + 1
            if self.against is None:
                self.outputs[(path, n)] = [self._copy(t) for t in _tensors(out)]
            # A layer's output against a layer's, a block's against a block's: timm's BatchNormAct2d `bn` applies
            # the activation the spec applies after its `bn`; the blocks' outputs meet again.
            elif (path, n) in self.against.outputs and (path in self.leaves) == (path in self.against.leaves):
                self._compare(path, n, [t.detach() for t in _tensors(out)], self.against.outputs[(path, n)])

        return hook

    def _copy(self, t: Tensor) -> Tensor:
        # A block returns its last layer's tensor: one copy serves both while no in-place op changed it.
        if self._last is None or self._last[0] is not t or self._last[1] != t._version:
            self._last = (t, t._version, t.detach().clone())
        return self._last[2]

    def _compare(self, path: str, call: int, a: list[Tensor], b: list[Tensor]) -> None:
        self.run.compared += 1
        if len(a) != len(b):
            rel, mine, other, detail = math.inf, f"{len(a)} tensors", f"{len(b)} tensors", "the outputs differ"
        else:
            rel, mine, other, detail = 0.0, "", "", ""
            for x, y in zip(a, b, strict=True):
                r = tensor_difference(x, y, self.chunks)
                if r[0] > rel:
                    rel, mine, other, detail = r
        self.run.worst = max(self.run.worst, rel)
        if rel > self.rtol and self.run.first is None:
            what = "output" if call == 0 else f"output of call {call + 1}"
            self.run.first = Difference(path, self.locate(path), what, mine, other, detail)

    def close(self) -> None:
        self._last = None
        for h in self.handles:
            h.remove()


def _values(t: Tensor, index: int) -> str:
    flat = t.detach().flatten()
    return "[" + ", ".join(f"{v:.4g}" for v in flat[index : index + 3].tolist()) + (", ...]" if flat.numel() > index + 3 else "]")


def _shape(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape)) if len(shape) else "scalar"


def tensor_difference(ours: Tensor, theirs: Tensor, chunks: int = 1) -> tuple[float, str, str, str]:
    """(relative difference, spec summary, reference summary, detail): the largest absolute difference over the
    largest magnitude of `theirs`, the worst of `chunks` equal slices of the batch (each input scale against its
    own scale); infinite when the shapes differ. Where the reference moved windows into the batch (Swin's (B·nW, ws², C)),
    which a spec keeps apart ((B, nW, ws², C)), the spec's output is read in the reference's shape: the same numbers in
    the same order."""
    merged = (ours.shape[0] * ours.shape[1], *ours.shape[2:]) if ours.dim() >= 2 else None
    if ours.shape != theirs.shape and merged == tuple(theirs.shape):
        ours = ours.reshape(theirs.shape)
    if ours.shape != theirs.shape:
        return math.inf, _shape(ours.shape), _shape(theirs.shape), "shapes differ"
    if torch.equal(ours, theirs):
        return 0.0, "", "", ""
    ours, theirs = ours.double().reshape(ours.shape or (1,)), theirs.double().reshape(theirs.shape or (1,))
    parts = chunks if chunks > 1 and ours.dim() > 0 and ours.shape[0] % chunks == 0 else 1
    worst, at, diff, scale = -1.0, 0, 0.0, 0.0
    offset = 0
    for a, b in zip(ours.chunk(parts), theirs.chunk(parts), strict=True):
        delta = (a - b).abs().flatten()
        if delta.numel() == 0:
            offset += a.numel()
            continue
        d, i = delta.max(dim=0)
        s = b.abs().max().item()
        rel = math.inf if math.isnan(d.item()) else d.item() / max(s, 1e-12) if d.item() > 0 else 0.0
        if rel > worst:
            worst, at, diff, scale = rel, offset + int(i), d.item(), s
        offset += a.numel()
    start = max(at - 1, 0)
    detail = f"{_shape(ours.shape)}, largest difference {diff:.3g} against a scale of {scale:.3g}: {max(worst, 0.0):.3g} of it"
    return max(worst, 0.0), _values(ours, start), _values(theirs, start), detail


@contextlib.contextmanager
def deterministic_dropout() -> Iterator[None]:
    """Dropout with a mask drawn from its own generator, seeded alike on every call: both models drop the same
    elements of same-shaped inputs whatever the order of their calls, and a different `p` drops others."""

    def make(channelwise: bool) -> Callable[..., Tensor]:
        def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
            if not training or p == 0:
                return input
            shape = (*input.shape[:2], *(1,) * (input.dim() - 2)) if channelwise else input.shape
            u = torch.rand(shape, generator=torch.Generator().manual_seed(1234)).to(input.device, input.dtype)
            keep = (u >= p).to(input.dtype) / (1 - p) if p < 1 else torch.zeros_like(u)
            return input.mul_(keep) if inplace else input * keep

        return dropout

    functional = torch.nn.functional
    with contextlib.ExitStack() as stack:
        stack.enter_context(unittest.mock.patch.object(functional, "dropout", make(False)))
        for name in ("dropout1d", "dropout2d", "dropout3d"):
            stack.enter_context(unittest.mock.patch.object(functional, name, make(True)))
        yield


def _batch(input_shape: Sequence[int], seed: int, scales: Sequence[float], batch: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([torch.randn(batch, *input_shape, generator=generator) * s for s in scales])


def _scales(scales: Sequence[float]) -> str:
    names = [f"×{s:g}" for s in scales]
    return f"input {names[0]}" if len(names) == 1 else f"inputs {', '.join(names[:-1])} and {names[-1]}"


def load_reference(model: nn.Module, reference: nn.Module, seed: int) -> None:
    """The reference's BatchNorm statistics and affine parameters randomised with `seed`, then its weights loaded
    into the spec's model (strict)."""
    randomize_batchnorm_statistics(reference, seed=seed, affine=True)
    model.load_state_dict(reference.state_dict(), strict=True)


def _forward(model: nn.Module, x: Tensor, seed: int, recorder: _Recorder) -> Any:
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # random ops other than dropout (stochastic depth) draw alike on both sides
            return model(x)
    finally:
        recorder.close()


def _compare_forward(
    model: nn.Module, reference: nn.Module, x: Tensor, seed: int, chunks: int, rtol: float, locate: Locate, name: str
) -> Run:
    """Both models on `x`: every output of the spec's model (in execution order) against the reference's output at
    the same path and call."""
    theirs = _Recorder(reference)
    _forward(reference, x, seed, theirs)
    ours = _Recorder(model, theirs, chunks, rtol, locate)
    _forward(model, x, seed, ours)
    ours.run.name = name
    return ours.run


def eval_run(
    model: nn.Module,
    reference: nn.Module,
    input_shape: Sequence[int],
    locate: Locate,
    seed: int = 0,
    scales: Sequence[float] = SCALES,
    batch: int = BATCH,
    rtol: float = RTOL,
) -> Run:
    """Weights loaded from the reference (BatchNorm randomised with `seed`), then every module's output in eval mode
    on `batch` samples at each input scale, each scale against its own."""
    load_reference(model, reference, seed)
    model.eval()
    reference.eval()
    x = _batch(input_shape, seed, scales, batch)
    with torch.no_grad():
        return _compare_forward(model, reference, x, seed, len(scales), rtol, locate, f"eval, seed {seed}, {_scales(scales)}")


def _loss(out: Any) -> Tensor:
    """A loss that reaches every output: each output's sum weighted by a fixed random tensor of its shape."""
    generator = torch.Generator().manual_seed(7)
    total = torch.zeros(())
    for t in _tensors(out):
        total = total + (t * torch.randn(t.shape, generator=generator).to(t.device, t.dtype)).sum() / t.numel()
    return total


def training_runs(
    model: nn.Module,
    reference: nn.Module,
    input_shape: Sequence[int],
    locate: Locate,
    locate_key: Locate,
    seed: int = 0,
    batch: int = BATCH,
    rtol: float = RTOL,
) -> list[Run]:
    """Training mode with deterministic dropout: every module's output, then one SGD step on both models (the same
    loss and batch) and the change of every state_dict tensor (weights, running statistics)."""
    load_reference(model, reference, seed)
    model.train()
    reference.train()
    x = _batch(input_shape, seed, (1.0,), max(batch, 2))  # BatchNorm normalises with the batch's statistics
    before = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in (model, reference)]
    theirs, ours = _Recorder(reference), _Recorder(model, None, 1, rtol, locate)
    with deterministic_dropout():
        for m, recorder in ((reference, theirs), (model, ours)):
            recorder.against = theirs if m is model else None
            optimizer = torch.optim.SGD(m.parameters(), lr=LR)
            optimizer.zero_grad()
            torch.autograd.backward(_loss(_forward(m, x, seed, recorder)))
            optimizer.step()
    forward = ours.run
    forward.name = f"training, seed {seed}, {_scales((1.0,))}"
    if forward.first is not None:
        model.eval()
        reference.eval()
        return [forward, Run("SGD step", 0, 0.0)]  # not compared: the outputs already differ
    after = (model.state_dict(), reference.state_dict())
    step = Run("SGD step", 0, 0.0)
    for key, value in after[0].items():
        a = value.detach() - before[0][key]
        b = after[1][key].detach() - before[1][key]
        step.compared += 1
        rel, mine, other, detail = tensor_difference(a, b)
        step.worst = max(step.worst, rel)
        if rel > rtol and step.first is None:
            step.first = Difference(key, locate_key(key), "update", mine, other, detail)
    model.eval()
    reference.eval()
    return [forward, step]


def compare_models(
    model: nn.Module,
    reference: nn.Module,
    input_shape: Sequence[int],
    locate: Locate,
    locate_key: Locate,
    seeds: int = SEEDS,
    scales: Sequence[float] = SCALES,
    batch: int = BATCH,
    rtol: float = RTOL,
) -> tuple[int, list[Difference], list[Run]]:
    """(modules compared, setting differences, numeric runs): settings, eval mode for each seed, training mode and
    the SGD step. The models must have the same state_dict keys and shapes."""
    compared, settings = settings_differences(model, reference, locate)
    runs = [eval_run(model, reference, input_shape, locate, seed, scales, batch, rtol) for seed in range(seeds)]
    runs.extend(training_runs(model, reference, input_shape, locate, locate_key, 0, batch, rtol))
    return compared, settings, runs


def spec_locator(compiled: Compiled) -> tuple[Locate, Locate]:
    """(module path -> spec location, state_dict key -> spec location)."""
    modules = {m.path: m for m in compiled.arch.modules()}
    return (lambda path: _locate_module(path, modules)), (lambda key: _locate_module(key.rpartition(".")[0], modules))


def _locate_module(path: str, modules: dict[str, ModuleNode]) -> str:
    """`file:line:col` of the spec module at `path`, or of its nearest enclosing module in the spec."""
    while path not in modules and path:
        path = path.rpartition(".")[0]
    loc = modules[path].loc
    return f"{loc.file}:{loc.line}:{loc.column}"


@dataclass
class Report:
    """What `archc verify` found."""

    spec: str
    against: str
    params: tuple[int, int]  # spec, reference
    buffers: tuple[int, int]  # the state_dict's: persistent buffers
    keys: int  # keys of the spec's state_dict
    rtol: float = RTOL
    missing: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # in the reference only
    unexpected: list[tuple[str, tuple[int, ...], str]] = field(default_factory=list)  # in the spec only, with its location
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...], str]] = field(default_factory=list)  # spec, reference shapes
    modules: int = 0  # modules whose type and settings were compared (those at paths both models have)
    settings: list[Difference] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)  # empty when the state_dicts differ
    # Non-persistent buffers: fixed tensors a module keeps out of its state_dict (timm's BlurPool filter; Swin's
    # shifted-window mask, which torchvision makes in the forward and a spec builds once). Reported, not compared:
    # what they hold shows in every module's output.
    fixed: tuple[int, int] = (0, 0)

    @property
    def same_state_dict(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def equal(self) -> bool:
        return (
            self.params[0] == self.params[1]
            and self.buffers[0] == self.buffers[1]
            and self.same_state_dict
            and not self.settings
            and bool(self.runs)
            and all(run.first is None for run in self.runs)
        )

    def first_difference(self) -> str | None:
        """The first thing that differs, one line (None when equal), in the order the checks run: the state_dict
        (its first key, in sorted order, that one model lacks or has at another shape), the parameter and buffer
        counts, the modules' types and settings, then the numeric runs (the run named: eval for each seed,
        training, the SGD step)."""
        keys = [k for k, _ in self.missing] + [k for k, *_ in self.unexpected] + [k for k, *_ in self.mismatched]
        if keys:
            return f"state_dict differs at {min(keys)}"
        for what, (ours, theirs) in (("parameters", self.params), ("buffers", self.buffers)):
            if ours != theirs:
                return f"{what}: {ours:,} in the spec, {theirs:,} in the reference"
        if self.settings:
            return self.settings[0].render()
        for run in self.runs:
            if run.first is not None:
                return f"{run.name}: {run.first.render()}"
        return None if self.runs else "nothing compared"

    def to_json(self) -> dict[str, Any]:
        """The report as JSON data (`archc verify --json`); an infinite difference (shapes that differ) is null."""
        data: dict[str, Any] = _finite({**asdict(self), "same_state_dict": self.same_state_dict, "equal": self.equal})
        return data

    def render(self) -> str:
        lines = [f"{self.spec} against {self.against}"]
        for what, (ours, theirs) in (("parameters", self.params), ("buffers", self.buffers)):
            verdict = "equal" if ours == theirs else f"differ by {ours - theirs:+,}"
            lines.append(f"  {what}: {ours:,} in the spec, {theirs:,} in the reference: {verdict}")
        if any(self.fixed):
            ours, theirs = self.fixed
            lines.append(
                f"  non-persistent buffers: {ours:,} in the spec, {theirs:,} in the reference"
                " (not in the state_dict; what they hold shows in the outputs compared below)"
            )
        if self.same_state_dict:
            lines.append(f"  state_dict: the same {self.keys} keys with the same shapes")
        else:
            count = len(self.missing) + len(self.unexpected) + len(self.mismatched)
            lines.append(f"  state_dict: {count} difference{'s' if count != 1 else ''}")
            if self.missing:
                lines.append("    missing from the spec (the reference has them):")
                lines.extend(f"      {key}  {_shape(shape)}" for key, shape in self.missing)
            if self.unexpected:
                lines.append("    unexpected in the spec (the reference lacks them):")
                lines.extend(f"      {key}  {_shape(shape)}  {loc}" for key, shape, loc in self.unexpected)
            if self.mismatched:
                lines.append("    shapes differ:")
                lines.extend(
                    f"      {key}  spec {_shape(ours)}, reference {_shape(theirs)}  {loc}" for key, ours, theirs, loc in self.mismatched
                )
        if not self.runs:
            lines.append("  modules and outputs: not compared (the state_dicts differ)")
        else:
            if self.settings:
                lines.append(f"  module types and settings: {len(self.settings)} difference{'s' if len(self.settings) != 1 else ''}")
                lines.extend(f"    {d.render()}" for d in self.settings)
            else:
                lines.append(f"  module types and settings: {self.modules} modules at the same paths alike: equal")
            lines.extend(f"  {run.render(self.rtol)}" for run in self.runs)
        lines.append("equal" if self.equal else "not equal")
        return "\n".join(lines)


def verify(compiled: Compiled, library: str, name: str, rtol: float = RTOL, seeds: int = SEEDS) -> Report:
    """Build the spec's model and the reference, and compare them."""
    torch.manual_seed(0)
    reference = reference_model(library, name, compiled)
    return verify_against(compiled, reference, f"{library}:{name}", rtol, seeds)


def verify_against(compiled: Compiled, reference: nn.Module, against: str, rtol: float = RTOL, seeds: int = SEEDS) -> Report:
    """Build the spec's model and compare it with `reference`, a model already built (a library's, or the one a
    `FILE.py:CALLABLE` returns; `archc import`'s round trip): every check `archc verify` makes. The reference's
    BatchNorm layers are randomised in place and it is left in eval mode."""
    model = build_model(compiled)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    locate, locate_key = spec_locator(compiled)
    report = Report(
        spec=compiled.path.as_posix(),
        against=against,
        params=(_count(model.parameters()), _count(reference.parameters())),
        buffers=(_count(_buffers(model, True)), _count(_buffers(reference, True))),
        fixed=(_count(_buffers(model, False)), _count(_buffers(reference, False))),
        keys=len(ours),
        rtol=rtol,
        missing=[(k, s) for k, s in theirs.items() if k not in ours],
        unexpected=[(k, s, locate_key(k)) for k, s in ours.items() if k not in theirs],
        mismatched=[(k, s, theirs[k], locate_key(k)) for k, s in ours.items() if k in theirs and theirs[k] != s],
    )
    if report.same_state_dict:
        report.modules, report.settings, report.runs = compare_models(
            model, reference, compiled.arch.input_shape, locate, locate_key, seeds=seeds, rtol=rtol
        )
    return report


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def _buffers(model: nn.Module, persistent: bool) -> list[torch.Tensor]:
    """The model's buffers that its state_dict holds (persistent) or leaves out."""
    return [
        b
        for m in model.modules()
        for n, b in m.named_buffers(recurse=False)
        if (n not in getattr(m, "_non_persistent_buffers_set", set())) == persistent
    ]


def _count(tensors: Any) -> int:
    return sum(t.numel() for t in tensors)
