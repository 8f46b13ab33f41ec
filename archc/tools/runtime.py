"""The generated module in memory, for the commands that run it (`archc verify`, `archc export`).

This module imports torch; the compile path never imports it.
"""

from __future__ import annotations

import torch
from torch import nn

from archc.api import load_module
from archc.compiler import Compiled

# The tolerance of `archc verify` (its --rtol) and the zoo tests: a tensor equals the reference's when their largest
# difference is within this fraction of the reference's largest magnitude.
RTOL = 1e-5


def build_model(compiled: Compiled) -> nn.Module:
    """The spec's model, built by its generated constructor with the spec's (or -D) defaults, randomly initialised."""
    model = getattr(load_module(compiled), compiled.module_name)()
    assert isinstance(model, nn.Module)
    return model


def randomize_batchnorm_statistics(model: nn.Module, seed: int = 0, affine: bool = False) -> None:
    """Give BatchNorm layers non-trivial running statistics (and with `affine`, weights and biases away from their
    initial 1 and 0), so eval mode exercises them."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=generator) * 0.2 - 0.1)
                assert m.running_var is not None
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
                if affine and m.affine:
                    m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
                    m.bias.copy_(torch.rand(m.bias.shape, generator=generator) - 0.5)
