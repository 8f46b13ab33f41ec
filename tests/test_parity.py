"""The generated modules run as the references do in channels_last with autocast (bf16) and under torch.compile,
without edits: same outputs and gradients as torchvision's / the seed's model given the same weights.

Speed against the references is measured by bench/parity.py (docs/performance.md), not here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest
import torch
import torchvision
from torch import nn

from tests.fixtures.seed_lenet5 import LeNet5 as SeedLeNet5
from tests.zoo_helpers import assert_same_logits, randomize_batchnorm_statistics


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def generated(name: str) -> nn.Module:
    model: nn.Module = getattr(importlib.import_module(f"generated.{name}"), name)()
    return model


def resnet18_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    reference = torchvision.models.resnet18()
    randomize_batchnorm_statistics(reference)
    model = generated("resnet18")
    model.load_state_dict(reference.state_dict(), strict=True)
    return model, reference


def channels_last_input(batch: int, side: int) -> torch.Tensor:
    x = torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(1))
    return x.contiguous(memory_format=torch.channels_last)


def test_channels_last_bf16_inference_matches_torchvision() -> None:
    model, reference = resnet18_pair()
    formats: list[bool] = []
    model.layer1.register_forward_hook(lambda m, i, o: formats.append(o.is_contiguous(memory_format=torch.channels_last)))
    outs = []
    for m in (model, reference):
        m.eval().to(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            outs.append(m(channels_last_input(2, 64)))
    ours, theirs = outs
    assert ours.dtype == theirs.dtype == torch.bfloat16  # autocast reached the generated fc
    assert formats == [True]  # the activations stay channels_last through the generated blocks
    assert_same_logits(ours.float(), theirs.float(), rtol=2e-2)  # bf16 keeps 8 bits of mantissa
    with torch.inference_mode():
        exact = reference.float()(channels_last_input(2, 64))
    assert_same_logits(ours.float(), exact, rtol=0.1)  # and bf16 is near the fp32 result, so the check means something


def test_channels_last_bf16_training_step_matches_torchvision() -> None:
    model, reference = resnet18_pair()
    target = torch.tensor([3, 7])
    grads = []
    for m in (model, reference):
        m.train().to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(m(channels_last_input(2, 64)).float(), target)
        loss.backward()
        assert m.conv1.weight.grad is not None
        grads.append(m.conv1.weight.grad)  # the first layer: the whole backward is in it
    assert_same_logits(grads[0], grads[1], rtol=5e-2)


def test_torch_compile_of_a_generated_model() -> None:
    torch.manual_seed(0)
    reference = SeedLeNet5()
    model = generated("lenet5")
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    # Inference only: compiling the backward too doubles the time (a minute and more on a busy 2-core machine);
    # bench/parity.py compiles training steps.
    compiled = torch.compile(model, fullgraph=True)  # fullgraph: no graph breaks in the generated forward
    with torch.no_grad():
        assert_same_logits(compiled(x), reference(x), rtol=1e-5)
