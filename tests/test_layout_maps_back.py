"""A feature map that leaves the C×H×W layout and comes back to it: timm's global context attention (a matrix product
of the map's (C, H·W) with its attention (H·W, 1), viewed as a C×1×1 map for a 1×1 conv), NesT's blocks (a
channels-last map cut into blocks of tokens, a transformer step on them, put back together and permuted channels
first for ConvPool's conv) and a space-to-depth. The language reads each result as a map, so a conv takes it; a
deblockify that leaves out its transpose scrambles the map into tokens, and a conv refuses it. Each against PyTorch:
outputs against timm's own modules and functions with the same weights, shapes against forward hooks, MACs against
the flop counter."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archc.passes.macs import count_macs
from archc.passes.receptive_field import compute_receptive_fields
from tests.conftest import run_cli
from tests.test_analysis import check_neighbouring_units
from tests.zoo_helpers import assert_counts, assert_shapes_match_hooks

torch.set_num_threads(1)

# timm's GlobalContext with fuse_add (Cao et al., "GCNet", 2019), as timm's forward writes it: the attention pooling is
# `x.reshape(B, C, H * W).unsqueeze(1) @ softmax(...).unsqueeze(3)`, then `context.view(B, C, 1, 1)`.
GC = """
block ConvMlp(hidden, out) {
    fc1 = conv(hidden, 1)
    norm = layernorm2d(eps = 0.000001)
    act = relu(inplace = true)
    drop = dropout(0.0)
    fc2 = conv(out, 1)
}

block GlobalContext(dim, rd_channels) {
    conv_attn = conv(1, 1)
    mlp_add = ConvMlp(rd_channels, dim)
    forward(x) {
        attn = reshape(softmax(reshape(conv_attn(x), (1, -1)), -1), (1, -1, 1))
        context = matmul(reshape(x, (1, dim, -1)), attn)
        return x + mlp_add(reshape(context, (dim, 1, 1)))
    }
}

arch Net() {
    input (3, 12, 12)
    stem = conv(16, 3, padding = 1)
    gc = GlobalContext(16, 4)
    after = conv(8, 3, stride = 2)
}
"""

# timm's NesT (Zhang et al., "Nested Hierarchical Transformer", 2022): `blockify` cuts a channels-last map into
# grid × grid blocks of block_size² tokens, `deblockify` puts them back; ConvPool permutes to channels last for its norm.
NEST = """
block Level(dim, grid, block_size) {
    norm = layernorm(eps = 0.000001)
    mlp = seq(linear(2 * dim), gelu(), linear(dim))
    forward(x) {
        t = reshape(permute(x, (0, 2, 3, 1)), (grid, block_size, grid, block_size, dim))
        t = reshape(transpose(t, 2, 3), (grid * grid, -1, dim))
        t = t + mlp(norm(t))
        t = reshape(t, (grid, grid, block_size, block_size, dim))
        t = reshape(transpose(t, 2, 3), (grid * block_size, grid * block_size, dim))
        return permute(t, (0, 3, 1, 2))
    }
}

block ConvPool(out_channels) {
    conv = conv(out_channels, 3, padding = 1)
    norm = layernorm(eps = 0.000001)
    pool = maxpool(3, stride = 2, padding = 1)
    forward(x) = pool(permute(norm(permute(conv(x), (0, 2, 3, 1))), (0, 3, 1, 2)))
}

arch Net() {
    input (3, 32, 32)
    stem = conv(16, 4, stride = 4)
    level = Level(16, 2, 4)
    pool = ConvPool(32)
    head = seq(adaptive_avgpool(1), flatten(), linear(10))
}
"""

# timm's SpaceToDepth (TResNet): (C, H, W) to (C·16, H / 4, W / 4), the pieces of the height and width moved to channels.
SPACE_TO_DEPTH = """
arch Net() {
    input (3, 16, 16)
    stem = conv(8, 3, padding = 1)
    after = conv(8, 3)
    forward(x) {
        s = reshape(stem(x), (8, 4, 4, 4, 4))
        return after(reshape(permute(s, (0, 3, 5, 1, 2, 4)), (128, 4, 4)))
    }
}
"""


def randomise(module: nn.Module) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.5)


def assert_macs_match_flop_counter(compiled: Any, model: nn.Module) -> None:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, *compiled.arch.input_shape))
    assert count_macs(compiled.arch).macs * 2 == counter.get_total_flops()


def test_global_context_gives_a_map_and_equals_timms(compile_arch: Any) -> None:
    from timm.layers.global_context import GlobalContext

    compiled, module = compile_arch(GC)
    nodes = {n.name: n for n in compiled.arch.nodes}
    # (1, C, H·W) @ (1, H·W, 1): the rows are channels, the positions are summed away.
    assert nodes["gc.matmul"].shape == [1, 16, 1] and nodes["gc.matmul"].axes == ["F", "C", "F"]
    assert nodes["gc.mlp_add.fc1"].axes == ["C", "H", "W"] and nodes["gc.mlp_add.fc1"].shape == [4, 1, 1]
    model = module.model().eval()
    reference = GlobalContext(16, fuse_add=True, fuse_scale=False, rd_channels=4).eval()
    randomise(reference)  # timm zeroes fc2: the MLP would add nothing
    model.gc.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        for scale in (1.0, 10.0):
            x = torch.randn(2, 16, 12, 12) * scale
            torch.testing.assert_close(model.gc(x), reference(x))
    assert_shapes_match_hooks(compiled, model)
    assert_counts(compiled, model)
    assert_macs_match_flop_counter(compiled, model)


def test_nest_blocks_come_back_as_a_map_and_equal_timms(compile_arch: Any) -> None:
    from timm.models.nest import ConvPool, blockify, deblockify

    compiled, module = compile_arch(NEST)
    by_op: dict[str, list[Any]] = {}
    for node in compiled.arch.nodes:
        by_op.setdefault(node.op, []).append(node)
    # Blocks of tokens, (blocks, tokens per block, C), then the map again once permuted channels first.
    assert [n.axes for n in by_op["reshape"]] == [["H", "H", "W", "W", "C"], ["L", "L", "C"], ["H", "W", "H", "W", "C"], ["H", "W", "C"]]
    assert by_op["permute"][1].axes == ["C", "H", "W"]
    model = module.model().eval()
    randomise(model)
    reference = ConvPool(16, 32, norm_layer=partial(nn.LayerNorm, eps=1e-6)).eval()
    randomise(reference)
    model.pool.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        for scale in (1.0, 10.0):
            x = torch.randn(2, 3, 32, 32) * scale
            y = model.stem(x)
            t = blockify(y.permute(0, 2, 3, 1), 4)
            t = t + model.level.mlp(model.level.norm(t))
            back = deblockify(t, 4).permute(0, 3, 1, 2)
            torch.testing.assert_close(model.level(y), back)
            torch.testing.assert_close(model.pool(back), reference(back))
    assert_shapes_match_hooks(compiled, model)
    assert_counts(compiled, model)
    assert_macs_match_flop_counter(compiled, model)


def test_the_field_passes_through_blocks_put_back(compile_arch: Any) -> None:
    """The level between the stem and ConvPool's conv works on each position alone: the conv's units see the stem's
    4×4 windows three by three (12, jump 4), as the gradients of two neighbouring units show, not the whole image."""
    compiled, module = compile_arch(NEST)
    field = compute_receptive_fields(compiled.arch)
    node = next(n for n in compiled.arch.nodes if n.name == "pool.conv")
    assert field.per_node[node.id].as_dict() == {"size": [12, 12], "jump": [4, 4], "start": [1.5, 1.5]}
    check_neighbouring_units(compiled, module.model(), "pool.conv", "pool.conv")


def test_space_to_depth_is_a_map_and_equals_timms(compile_arch: Any) -> None:
    from timm.layers import SpaceToDepth

    compiled, module = compile_arch(SPACE_TO_DEPTH)
    reshapes = [n for n in compiled.arch.nodes if n.op == "reshape"]
    assert reshapes[0].axes == ["C", "H", "H", "W", "W"] and reshapes[1].axes == ["C", "H", "W"]
    model = module.model().eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 16, 16)
        torch.testing.assert_close(model(x), model.after(SpaceToDepth(4)(model.stem(x))))
    assert_shapes_match_hooks(compiled, model)
    assert_macs_match_flop_counter(compiled, model)


def test_blocks_put_back_without_the_transpose_are_not_a_map(tmp_path: Path) -> None:
    """deblockify's transpose(2, 3) left out: PyTorch reshapes without complaint, but each row of the result runs
    across blocks (each (2·4)-long run mixes the grid's height and width with a block's); the language does not call
    that a height or a width, and ConvPool's conv refuses it."""
    spec = tmp_path / "net.arch"
    spec.write_text(NEST.replace("t = reshape(transpose(t, 2, 3), (grid * block_size", "t = reshape(t, (grid * block_size"))
    outcome = run_cli("check", str(spec))
    assert outcome.code == 1, outcome.err
    assert "error[E035]" in outcome.err and "(C×F×F)" in outcome.err, outcome.err


def test_attention_scores_are_tokens_by_tokens(compile_arch: Any) -> None:
    compiled, _ = compile_arch(
        "arch Net() {\n    input (3, 16, 16)\n    c = conv(8, 4, stride = 4)\n    forward(x) {\n"
        "        t = permute(flatten(c(x), 2), (0, 2, 1))\n        return matmul(t, transpose(t, 1, 2))\n    }\n}\n"
    )
    out = compiled.arch.nodes[compiled.arch.outputs[0]]
    assert out.shape == [16, 16] and out.axes == ["L", "L"]
