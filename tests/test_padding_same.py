"""`padding = "same"` (PyTorch's, stride 1): a small ConvMixer with an even kernel (PyTorch pads the odd one after)
against timm's ConvMixer built with the same sizes, module by module; counts, MACs and shapes against the generated
module; the receptive field's centre against input gradients; the errors of a strided or pooled "same"."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from timm.models.convmixer import ConvMixer
from torch.utils.flop_counter import FlopCounterMode

from archc.compiler import compile_spec
from archc.passes.macs import count_macs
from archc.passes.receptive_field import compute_receptive_fields
from tests.conftest import SPECS, load_source, run_cli
from tests.zoo_helpers import assert_counts, assert_equals_reference, assert_shapes_match_hooks

torch.set_num_threads(1)

SMALL = """import "lib/convmixer.arch"

arch small_mixer(num_classes = 10) = ConvMixer(16, 2, kernel_size = 4, patch_size = 2, num_classes = num_classes) {
    input (3, 16, 16)
}
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("mixer")
    (directory / "lib").mkdir()
    shutil.copy(SPECS / "lib" / "convmixer.arch", directory / "lib" / "convmixer.arch")
    (directory / "small_mixer.arch").write_text(SMALL)
    compiled = compile_spec(directory / "small_mixer.arch")
    model = load_source(compiled.python(), "small_mixer", directory).small_mixer()
    torch.manual_seed(0)
    reference = ConvMixer(16, 2, kernel_size=4, patch_size=2, num_classes=10)
    return compiled, model, reference


def test_small_convmixer_equals_timm(small: Any) -> None:
    compiled, model, reference = small
    assert_counts(compiled, model, reference=reference)
    assert_equals_reference(compiled, model, reference)
    assert_shapes_match_hooks(compiled, model)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(torch.randn(1, 3, 16, 16))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()


def test_same_padding_field_centre_follows_pytorch(small: Any) -> None:
    """An even kernel of 4 under "same" padding pads 1 before and 2 after: the field of output position 3 of the first
    depthwise convolution starts at input position 2 (its centre at 3.5 - 0.5 in patch units), as its gradient says."""
    compiled, model, _ = small
    node = next(n for n in compiled.arch.nodes if n.name == "blocks.0.0.fn.0")
    field = compute_receptive_fields(compiled.arch).per_node[node.id]
    conv = model.blocks[0][0].fn[0]
    x = torch.zeros(1, 16, 8, 8, requires_grad=True)
    conv(x)[0, 0, 3, 3].backward()
    assert x.grad is not None
    rows = (x.grad[0, 0].abs().sum(1) > 0).nonzero().flatten().tolist()
    # In the stem's output grid (patches of 2, jump 2): first row reached, times the jump, plus the stem's own start.
    stem = compute_receptive_fields(compiled.arch).per_node[next(n.id for n in compiled.arch.nodes if n.name == "stem.0")]
    assert field.h.size == stem.h.size + 3 * stem.h.jump
    assert field.h.start == stem.h.start + ((rows[0] + rows[-1]) / 2 - 3) * stem.h.jump


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('c = conv(8, 3, stride = 2, padding = "same")', 'padding = "same" keeps the size'),
        ('p = maxpool(2, padding = "same")', "is a convolution's"),
        ('c = conv(8, 3, padding = "full")', '"same" or "valid"'),
    ],
)
def test_same_padding_errors_are_located(tmp_path: Path, line: str, words: str) -> None:
    spec = tmp_path / "net.arch"
    spec.write_text(f"arch Net() {{\n    input (3, 8, 8)\n    {line}\n}}\n")
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1 and f"{spec}:3:" in outcome.err and "E016" in outcome.err and words in outcome.err, outcome.err
