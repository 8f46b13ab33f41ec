"""`archc verify`: a spec against a torchvision or timm model, the tool for porting a model into a spec.

It compares the parameter counts, the state_dict keys and shapes (each difference located at the spec's layer),
then loads the reference's weights into the generated module (strict) and compares the logits on a random batch
in eval mode. This module imports torch; the CLI imports it only for this command.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from archc.compiler import Compiled
from archc.errors import ArchError
from archc.ir import ModuleNode
from archc.sema.evaluate import close_match
from archc.tools.runtime import RTOL, build_model, difference, main_output, randomize_batchnorm_statistics, within_tolerance

LIBRARIES = ("torchvision", "timm")
# Constructor arguments torchvision needs to build these models as the zoo's specs describe them (no weights).
_TORCHVISION_KWARGS: dict[str, dict[str, Any]] = {"googlenet": {"init_weights": True}, "inception_v3": {"init_weights": True}}
BATCH = 2


def reference_model(library: str, name: str, compiled: Compiled) -> nn.Module:
    """The reference model, randomly initialised, built with the spec's `num_classes` and auxiliary heads."""
    kwargs: dict[str, Any] = {}
    if isinstance(compiled.arch.params.get("num_classes"), int):
        kwargs["num_classes"] = compiled.arch.params["num_classes"]
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
            kwargs["aux_logits"] = bool(compiled.arch.aux_outputs)
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
class Report:
    """What `archc verify` found."""

    spec: str
    against: str
    params: tuple[int, int]  # spec, reference
    buffers: tuple[int, int]
    keys: int  # keys of the spec's state_dict
    missing: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # in the reference only
    unexpected: list[tuple[str, tuple[int, ...], str]] = field(default_factory=list)  # in the spec only, with its location
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...], str]] = field(default_factory=list)  # spec, reference shapes
    logits: tuple[float, float] | None = None  # (largest difference, scale), when compared

    @property
    def same_state_dict(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def equal(self) -> bool:
        return (
            self.params[0] == self.params[1]
            and self.buffers[0] == self.buffers[1]
            and self.same_state_dict
            and self.logits is not None
            and within_tolerance(*self.logits)
        )

    def render(self) -> str:
        lines = [f"{self.spec} against {self.against}"]
        for what, (ours, theirs) in (("parameters", self.params), ("buffers", self.buffers)):
            verdict = "equal" if ours == theirs else f"differ by {ours - theirs:+,}"
            lines.append(f"  {what}: {ours:,} in the spec, {theirs:,} in the reference: {verdict}")
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
        if self.logits is None:
            lines.append("  logits: not compared (the state_dicts differ)")
        else:
            diff, scale = self.logits
            verdict = "equal" if within_tolerance(diff, scale) else "differ"
            lines.append(
                f"  logits: largest difference {diff:.3g} against a largest logit of {scale:.3g}"
                f" (tolerance {RTOL:g} of it), eval mode, a random batch of {BATCH}: {verdict}"
            )
        lines.append("equal" if self.equal else "not equal")
        return "\n".join(lines)


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def _locate(key: str, modules: dict[str, ModuleNode]) -> str:
    """`file:line:col` of the spec layer that holds a state_dict key (its nearest module in the spec)."""
    path = key.rpartition(".")[0]
    while path not in modules and path:
        path = path.rpartition(".")[0]
    loc = modules[path].loc
    return f"{loc.file}:{loc.line}:{loc.column}"


def verify(compiled: Compiled, library: str, name: str) -> Report:
    """Build the spec's model and the reference, and compare them."""
    torch.manual_seed(0)
    reference = reference_model(library, name, compiled)
    model = build_model(compiled)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    modules = {m.path: m for m in compiled.arch.modules()}
    report = Report(
        spec=compiled.path.as_posix(),
        against=f"{library}:{name}",
        params=(_count(model.parameters()), _count(reference.parameters())),
        buffers=(_count(model.buffers()), _count(reference.buffers())),
        keys=len(ours),
        missing=[(k, s) for k, s in theirs.items() if k not in ours],
        unexpected=[(k, s, _locate(k, modules)) for k, s in ours.items() if k not in theirs],
        mismatched=[(k, s, theirs[k], _locate(k, modules)) for k, s in ours.items() if k in theirs and theirs[k] != s],
    )
    if report.same_state_dict:
        randomize_batchnorm_statistics(reference)
        model.load_state_dict(reference.state_dict(), strict=True)
        model.eval()
        reference.eval()
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(BATCH, *compiled.arch.input_shape, generator=generator)
        with torch.no_grad():
            report.logits = difference(main_output(model(x)), main_output(reference(x)))
    return report


def _count(tensors: Any) -> int:
    return sum(t.numel() for t in tensors)
