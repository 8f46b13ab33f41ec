"""Helpers for holding zoo specs against their references (used by tests/test_zoo*.py).

A family's test file states what is its own (its specs, its reference constructor, its special cases) and takes the
rest from here: `case_fixture` (or `built_fixture`) builds each (spec, reference) pair once, and one `assert_*`
function a check runs it the same way in every family: counts, state_dict keys, every leaf module's settings, logits
after a strict state_dict load, shapes against forward hooks, MACs against PyTorch's flop counter.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from archc.compiler import Compiled, compile_spec
from archc.passes.macs import count_macs
from archc.tools.runtime import RTOL
from archc.tools.runtime import randomize_batchnorm_statistics as randomize_batchnorm_statistics  # shared with archc verify
from archc.tools.verify import SCALES, eval_run, settings_differences, spec_locator
from tests.conftest import SPECS, load_source


def count(tensors: Any) -> int:
    """Total number of elements."""
    return sum(t.numel() for t in tensors)


def compile_at(name: str, input_shape: tuple[int, int, int] | None = None) -> Compiled:
    """Compile specs/<name>.arch, at `input_shape` where given (else the spec's own input)."""
    return compile_spec(SPECS / f"{name}.arch", input_shape=input_shape)


def build_spec(name: str, directory: Path, input_shape: tuple[int, int, int] | None = None, **params: Any) -> tuple[Compiled, nn.Module]:
    """Compile specs/<name>.arch (at `input_shape` where given) into `directory` and build its model with the
    generated constructor, passing it `params`."""
    compiled = compile_at(name, input_shape)
    module = load_source(compiled.python(), name, directory)
    return compiled, getattr(module, name)(**params)


def assert_same_logits(ours: torch.Tensor, theirs: torch.Tensor, rtol: float = 1e-5) -> None:
    """Equal outputs: max abs difference within `rtol` of the outputs' scale."""
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    scale = theirs.abs().max().item()
    assert (ours - theirs).abs().max().item() <= rtol * max(scale, 1e-12), ((ours - theirs).abs().max().item(), scale)


def assert_equals_reference(compiled: Compiled, model: nn.Module, reference: nn.Module, batch: int = 2) -> None:
    """archc verify's comparison, at the cost of one forward pass of each model: every module's type and settings
    equal the reference module's at its path; then a strict state_dict load of the reference (BatchNorm statistics
    and affine parameters randomised) and every module's output equal in eval mode on inputs at scales ×1 and ×10
    (`batch` samples in all, at least one per scale)."""
    locate, _ = spec_locator(compiled)
    _, settings = settings_differences(model, reference, locate)
    assert not settings, "\n".join(d.render() for d in settings)
    run = eval_run(model, reference, compiled.arch.input_shape, locate, seed=0, scales=SCALES, batch=max(1, batch // len(SCALES)))
    assert run.compared > 0 and run.first is None, run.render(RTOL)


def assert_shapes_match_hooks(compiled: Compiled, model: nn.Module, training: bool = False) -> None:
    """Every module application's output shape in the IR equals what a forward hook sees on the generated module."""
    seen: dict[str, list[tuple[int, ...]]] = {}
    handles = []
    for path, module in model.named_modules():

        def hook(mod: nn.Module, args: Any, out: Any, path: str = path) -> None:
            if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor):
                out = out[0]  # nn.MultiheadAttention: (output, weights)
            if isinstance(out, torch.Tensor):
                seen.setdefault(path, []).append(tuple(out.shape[1:]))

        handles.append(module.register_forward_hook(hook))
    model.train(training)
    try:
        with torch.no_grad():
            model(torch.randn(2, *compiled.arch.input_shape))
    finally:
        for h in handles:
            h.remove()
    applied: dict[str, list[tuple[int, ...]]] = {}
    for node in compiled.arch.nodes:
        if node.module is not None and (training or not node.training_only):
            applied.setdefault(node.module, []).append(tuple(node.shape))
    for path, shapes in applied.items():
        assert seen.get(path) == shapes, (path, seen.get(path), shapes)


def assert_counts(
    compiled: Compiled, model: nn.Module, params: int | None = None, buffers: int | None = None, reference: nn.Module | None = None
) -> None:
    """The parameter pass equals the generated module, the reference model and the published figures, where given."""
    assert compiled.params.params == count(model.parameters())
    assert compiled.params.buffers == count(model.buffers())
    assert compiled.params.trainable_params == count(p for p in model.parameters() if p.requires_grad)
    if reference is not None:
        assert compiled.params.params == count(reference.parameters())
        assert compiled.params.buffers == count(reference.buffers())
    if params is not None:
        assert compiled.params.params == params
    if buffers is not None:
        assert compiled.params.buffers == buffers


def leaves(model: nn.Module) -> list[tuple[str, str]]:
    """Every leaf module's path and repr: its class and every setting PyTorch prints (eps, momentum, inplace, p,
    ceil_mode, ...)."""
    return [(path, repr(m)) for path, m in model.named_modules() if not list(m.children())]


def assert_logits_match_at_two_scales(
    model: nn.Module, reference: nn.Module, input_shape: tuple[int, ...], batch: int = 2, affine: bool = True, rtol: float = 1e-5
) -> None:
    """Strict state_dict load of the reference (BatchNorm statistics, and with `affine` its weights and biases,
    randomised) into the generated module, then equal eval-mode outputs on one input (`batch` samples drawn under seed
    0) and on it times 10."""
    randomize_batchnorm_statistics(reference, affine=affine)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    torch.manual_seed(0)
    x = torch.randn(batch, *input_shape)
    with torch.no_grad():
        for scale in (1.0, 10.0):
            assert_same_logits(model(x * scale), reference(x * scale), rtol)


@contextmanager
def counted_attention() -> Iterator[None]:
    """Attention as plain matrix products, which the flop counter sees: nn.MultiheadAttention's fused fast path off
    (the counter does not see it at all), and scaled_dot_product_attention through PyTorch's math kernel (the fused
    CPU kernel has no flop rule in the counter). CNNs run as they always do."""
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)


def reference_flops(reference: nn.Module, input_shape: tuple[int, ...] | list[int]) -> int:
    """FLOPs of one eval-mode forward of the reference on one image, as PyTorch's FlopCounterMode counts them."""
    counter = FlopCounterMode(display=False)
    reference.eval()
    with torch.no_grad(), counted_attention(), counter:
        reference(torch.randn(1, *input_shape))
    return int(counter.get_total_flops())


# Specs too large to build as models in every every-spec test of the default run: each family's smallest stays in it,
# the rest run with `pytest -m full` (their own family tests mark them alike).
FULL_ONLY = frozenset(
    {
        "mobilenet_v2", "mobilenet_v3_large", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3",
        "regnet_x_800mf", "regnet_x_1_6gf", "regnet_x_3_2gf", "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf",
        "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf",
        "regnet_y_128gf", "densenet161", "densenet169", "densenet201", "wide_resnet50_2", "wide_resnet101_2",
        "resnext101_64x4d", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "efficientnet_b5",
        "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l",
        "convnext_small", "convnext_base", "convnext_large", "convmixer_768_32", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5",
        "shufflenet_v2_x2_0", "resnest50d",
    }
)  # fmt: skip


def zoo_params(paths: list[Path]) -> list[Any]:
    """Spec paths as pytest parameters, those of FULL_ONLY marked `full`."""
    return [pytest.param(p, marks=pytest.mark.full, id=p.stem) if p.stem in FULL_ONLY else pytest.param(p, id=p.stem) for p in paths]


# A (spec, reference) pair: the spec's name, the compiled spec, the generated model, the reference model.
Case = tuple[str, Compiled, nn.Module, nn.Module]
Built = tuple[Compiled, nn.Module, nn.Module]


def torchvision_reference(name: str, **params: Any) -> nn.Module:
    """torchvision's model `name`, built without weights."""
    model: nn.Module = torchvision.models.get_model(name, weights=None, **params)
    return model


def timm_reference(name: str, **params: Any) -> nn.Module:
    """timm's model `name`, built without weights (timm is imported only by the families that use it)."""
    import timm

    model: nn.Module = timm.create_model(name, pretrained=False, **params)
    return model


def published_params(name: str) -> int:
    """The parameter count torchvision publishes with `name`'s ImageNet-1K V1 weights."""
    return int(torchvision.models.get_model_weights(name)["IMAGENET1K_V1"].meta["num_params"])


def case_fixture(names: list[Any], reference: Callable[[str], nn.Module], input_shape: tuple[int, int, int] | None = None) -> Any:
    """A module-scoped fixture `case` over `names` (names, or pytest.params carrying marks): (name, compiled spec,
    generated model, `reference(name)`), the spec compiled at `input_shape` where given. pytest runs every test of one
    name before building the next, and the pair is freed after them: at most one pair is alive at a time.

    In a family's test file: `case = case_fixture(NAMES, torchvision_reference)`."""

    @pytest.fixture(scope="module", params=names, name="case")
    def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
        name = request.param
        compiled, model = build_spec(name, tmp_path_factory.mktemp(name), input_shape)
        pair = reference(name)
        yield name, compiled, model, pair
        del compiled, model, pair
        gc.collect()

    return case


def built_fixture(reference: Callable[[str], nn.Module]) -> Any:
    """A module-scoped fixture `built`: `built(name)` -> (compiled spec, generated model, `reference(name)`), each
    built once, for tests that want more than one pair (or one by name). In a family's test file:
    `built = built_fixture(reference_model)`."""

    @pytest.fixture(scope="module", name="built")
    def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Built]:
        cache: dict[str, Built] = {}

        def build(name: str) -> Built:
            if name not in cache:
                compiled, model = build_spec(name, tmp_path_factory.mktemp(name))
                cache[name] = (compiled, model, reference(name))
            return cache[name]

        return build

    return built


def assert_state_dict_keys_equal(model: nn.Module, reference: nn.Module) -> None:
    """The generated state_dict's keys are the reference's, in the reference's order."""
    assert list(model.state_dict()) == list(reference.state_dict())


def assert_same_leaves(model: nn.Module, reference: nn.Module) -> None:
    """Every leaf module's path, in order, then its class and repr (every setting PyTorch prints), equal the
    reference's."""
    ours, theirs = leaves(model), leaves(reference)
    assert [p for p, _ in ours] == [p for p, _ in theirs]
    assert ours == theirs
    assert [(p, type(m).__name__) for p, m in model.named_modules() if not list(m.children())] == [
        (p, type(m).__name__) for p, m in reference.named_modules() if not list(m.children())
    ]


def assert_macs_equal_half_the_flop_counter(compiled: Compiled, reference: nn.Module) -> None:
    """archc's MACs of `compiled` equal half the FLOPs FlopCounterMode counts on the reference, on one image of the
    compiled input shape."""
    assert count_macs(compiled.arch).macs * 2 == reference_flops(reference, compiled.arch.input_shape)


def assert_outputs_match_in_eval_and_training(
    model: nn.Module, reference: nn.Module, input_shape: tuple[int, ...], randomise: Callable[[nn.Module], None], batch: int = 4
) -> None:
    """`randomise` the reference's weights, load them strictly into the generated module, then equal outputs in
    eval and in training mode, on one input and on it times 10 (each forward under seed 1, so that stochastic
    depth draws alike on both sides)."""
    randomise(reference)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(batch, *input_shape)
    for training in (False, True):
        model.train(training)
        reference.train(training)
        for scale in (1.0, 10.0):
            with torch.no_grad():
                torch.manual_seed(1)
                ours = model(x * scale)
                torch.manual_seed(1)
                assert_same_logits(ours, reference(x * scale))


def assert_training_logits_match(model: nn.Module, reference: nn.Module, input_shape: tuple[int, ...], batch: int = 2) -> None:
    """Strict load of the reference (BatchNorm statistics and affine parameters randomised), then equal
    training-mode logits (batch statistics) on `batch` samples drawn under seed 0."""
    randomize_batchnorm_statistics(reference, affine=True)
    model.load_state_dict(reference.state_dict(), strict=True)
    model.train()
    reference.train()
    torch.manual_seed(0)
    x = torch.randn(batch, *input_shape)
    torch.manual_seed(1)  # dropout in training mode draws the same mask on both sides
    ours = model(x)
    torch.manual_seed(1)
    assert_same_logits(ours, reference(x))


def assert_loaded_logits_match(
    model: nn.Module, reference: nn.Module, input_shape: tuple[int, ...] | list[int], batch: int = 1
) -> torch.Tensor:
    """Strict load of the reference's state_dict as it is, then equal eval-mode logits on `batch` samples; returns
    ours."""
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(batch, *input_shape)
    with torch.no_grad():
        out = model(x)
        assert_same_logits(out, reference(x))
    return out
