"""`let`s bound in an `if` or a `for` are Python variables in the generated class, so the generated module builds what
the IR holds: a value chosen by a branch the constructor's arguments decide, and an accumulator over a loop (the running
block index that EfficientNet's stochastic depth probability needs)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_language_cases import assert_pass_matches_module

BRANCH = """
block B(kind) {
    if kind == "wide" {
        let width = 32
    } else {
        let width = 8
    }
    conv(width, 1)
}
arch net(kind = "wide") {
    input (3, 8, 8)
    b = B(kind)
    c = B("narrow")
}
"""

ACCUMULATOR = """
block B(depths) {
    let total = 0
    for d in depths {
        let total = total + d
    }
    let first = 0
    for i, d in depths {
        conv(total + first, 1)
        let first = first + d
    }
}
arch net(depths = [4, 2, 8]) {
    input (3, 8, 8)
    b = B(depths)
}
"""


@pytest.mark.parametrize("kind", ["wide", "narrow"])
def test_a_let_chosen_by_a_branch_reaches_the_generated_module(compile_arch: Any, kind: str) -> None:
    compiled, module = compile_arch(BRANCH, overrides={"kind": kind})
    model = module.model(kind=kind)
    assert model.b[0].out_channels == (32 if kind == "wide" else 8)
    assert model.c[0].out_channels == 8
    assert_pass_matches_module(compiled, model)


def test_a_let_accumulated_over_a_loop_reaches_the_generated_module(compile_arch: Any) -> None:
    compiled, module = compile_arch(ACCUMULATOR)
    model = module.model()
    # total = 14; the convolutions get 14 + 0, 14 + 4, 14 + 6 channels.
    assert [m.out_channels for m in model.b] == [14, 18, 20]
    assert_pass_matches_module(compiled, model)
    other = module.model(depths=[1, 1])
    assert [m.out_channels for m in other.b] == [2, 3]


LOOP_OF_BLOCKS = """
block Stage(rows) {
    for r in rows {
        conv(r, 1)
    }
}

block Stages(stages) {
    for rows in stages {
        Stage(rows)
    }
}

arch Net() {
    input (4, 8, 8)
    b = Stages([[8], [16, 12], [32]])
}
"""


def test_a_loop_building_a_block_per_item_carries_its_output_width(compile_arch: Any) -> None:
    """Each Stage starts from the last width of the one before (`channels = rows[-1]` in the generated class): the
    generated module builds, runs and has the parameters elaboration counts."""
    compiled, module = compile_arch(LOOP_OF_BLOCKS)
    model = module.model()
    widths = [conv.in_channels for conv in model.modules() if conv.__class__.__name__ == "Conv2d"]
    assert widths == [4, 8, 16, 12]
    assert_pass_matches_module(compiled, model)
