"""Never exit 0 with a broken output (issue 16, item 1): what `archc compile` reports as written imports, builds and
runs in PyTorch; what it cannot write correctly is a located user error (exit 1), never an internal error (exit 3).

The last test mutates a small spec that holds the constructs these bugs came from (a comment ending in a quote above
a block, parameters read in a forward, members named like parameters, pooling around `flatten`), and imports, builds
and runs every module `archc compile` reports as a success, checking the output shape against the one archc
computed. The grammar fuzzer (tests/test_grammar_fuzz.py) and the hostile cases (tests/test_hostile.py) do the same
for their own specs; tests/test_robustness.py mutates the zoo but only checks.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings

from archc.compiler import compile_spec
from tests.conftest import Outcome, load_source, run_cli
from tests.test_robustness import mutated


def compile_cli(text: str, directory: Path, stem: str = "net") -> tuple[Outcome, Path]:
    spec = directory / f"{stem}.arch"
    spec.write_text(text, encoding="utf-8")
    return run_cli("compile", "-o", str(directory / "out"), str(spec)), spec


def build_and_run(spec: Path, stem: str = "net") -> None:
    """Import the module `archc compile` wrote for `spec`, build it, run a forward in training and eval mode, and
    compare the output's shape with archc's."""
    compiled = compile_spec(spec)
    source = (spec.parent / "out" / f"{stem}.py").read_text(encoding="utf-8")
    module = load_source(source, stem, spec.parent)
    model = getattr(module, stem)()
    x = torch.randn(2, *compiled.arch.input_shape)
    with torch.no_grad():
        model.train()
        model(x)
        model.eval()
        y = model(x)
    assert list(y.shape) == [2, *compiled.arch.nodes[compiled.arch.outputs[0]].shape], source


def assert_located(outcome: Outcome, spec: Path, code: str) -> None:
    assert outcome.code == 1, f"exit {outcome.code}: {outcome.err}"
    assert re.match(rf"{re.escape(str(spec))}:\d+:\d+: error\[{code}\]: ", outcome.err), outcome.err


# (a) A comment ending in a quote, above a block, becomes a docstring that must still end where it should.

COMMENTS = {
    "quote_then_empty_comment_line": '# The "bottleneck" variant from "Deep Residual Learning"\n#\n',
    "quote_then_spaces": '# The "bottleneck" variant from "Deep Residual Learning"   \n#  \n#\n',
    "quotes_only_then_empty": '# ""\n#\n',
    "long_comment_wrapped_after_a_quote": "# " + "word " * 19 + 'a "quoted" end"\n#\n',
}


@pytest.mark.parametrize("comment", COMMENTS.values(), ids=COMMENTS.keys())
def test_comment_ending_in_a_quote_gives_a_module_that_imports(comment: str, tmp_path: Path) -> None:
    text = comment + "block B(c = 8) {\n    conv = conv(c, 3, padding = 1)\n    forward(x) = conv(x)\n}\n"
    text += "arch net() = B(8) {\n    input (3, 8, 8)\n}\n"
    outcome, spec = compile_cli(text, tmp_path)
    assert outcome.code == 0, outcome.err
    build_and_run(spec)


# (b) A member and a parameter (or `let`) of one name, where the forward reads the name as a value.

AMBIGUOUS = {
    "parameter": "block B(s = 0.5) { s = conv(3, 1)  forward(x) = s(x) * s }\narch net() = B() {\n    input (3, 8, 8)\n}\n",
    "let": "block B(c = 2) { let s = c * 2  s = conv(3, 1)  forward(x) = s(x) * s }\narch net() = B() {\n    input (3, 8, 8)\n}\n",
    "arch_parameter": "arch net(s = 2) {\n    input (3, 8, 8)\n    s = conv(3, 1)\n    forward(x) = s(x) * s\n}\n",
}


@pytest.mark.parametrize("text", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_member_named_like_a_value_read_in_the_forward_is_located(text: str, tmp_path: Path) -> None:
    outcome, spec = compile_cli(text, tmp_path)
    assert_located(outcome, spec, "E019")
    assert "is both a member and a" in outcome.err and "is declared here" in outcome.err
    assert not (tmp_path / "out" / "net.py").exists()


def test_member_named_like_a_parameter_is_fine_when_the_forward_does_not_read_the_value(tmp_path: Path) -> None:
    # torchvision's GoogLeNet aux head: `dropout = dropout(dropout)`, the parameter read only by the constructor.
    text = "block B(dropout = 0.5) { conv = conv(4, 1)  dropout = dropout(dropout)  forward(x) = dropout(conv(x)) }\n"
    text += "arch net() = B() {\n    input (3, 8, 8)\n}\n"
    outcome, spec = compile_cli(text, tmp_path)
    assert outcome.code == 0, outcome.err
    build_and_run(spec)


# (c) A window op (conv, pooling) after `flatten`, as a member or inline.

AFTER_FLATTEN = {
    "maxpool_member": "f = flatten()\n    m = maxpool(2)\n    forward(x) = m(f(x))",
    "avgpool_member": "f = flatten()\n    m = avgpool(2)\n    forward(x) = m(f(x))",
    "maxpool_inline": "f = flatten()\n    forward(x) = maxpool(f(x), 2)",
    "avgpool_inline": "f = flatten()\n    forward(x) = avgpool(f(x), 2)",
    "maxpool_after_inline_flatten": "m = maxpool(2, stride = 1)\n    forward(x) = m(flatten(x, 1))",
    "conv_member": "f = flatten()\n    c = conv(8, 1)\n    forward(x) = c(f(x))",
    "arch_body": "flatten()\n    maxpool(2)",
}


@pytest.mark.parametrize("body", AFTER_FLATTEN.values(), ids=AFTER_FLATTEN.keys())
def test_window_op_after_flatten_is_located(body: str, tmp_path: Path) -> None:
    outcome, spec = compile_cli(f"arch net() {{\n    input (3, 8, 8)\n    {body}\n}}\n", tmp_path)
    assert_located(outcome, spec, "E035")


# Mutations of a small spec holding all of the above: whatever `archc compile` reports as written works.

SEED = """\
# The "bottleneck" variant from "Deep Residual Learning"
#
block Unit(width = 8, scale = 0.5) {
    conv = conv(width, 3, padding = 1)
    bn = batchnorm()
    forward(x) = relu(bn(conv(x))) * scale
}

# A head: "flatten", then "linear"
block Head(classes = 10, dropout = 0.5) {
    pool = adaptive_avgpool((1, 1))
    dropout = dropout(dropout)
    fc = linear(classes)
    forward(x) = fc(dropout(flatten(pool(x), 1)))
}

arch net(width = 8) {
    input (3, 16, 16)
    stem = Unit(width)
    down = maxpool(2)
    head = Head()
    forward(x) = head(avgpool(down(stem(x)), 2))
}
"""


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated(SEED))
@example(SEED)
@example(SEED.replace("forward(x) = relu(bn(conv(x))) * scale", "forward(x) = relu(bn(conv(x))) * conv"))
@example(SEED.replace("bn = batchnorm()", "scale = batchnorm()").replace("bn(conv(x))", "scale(conv(x))"))
@example(SEED.replace("avgpool(down(stem(x)), 2)", "avgpool(flatten(down(stem(x))), 2)"))
def test_what_compile_writes_imports_and_builds(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        outcome, spec = compile_cli(text, Path(tmp))
        assert outcome.code in (0, 1), f"exit {outcome.code}: {outcome.err}\n{text}"
        assert "Traceback" not in outcome.err and "internal error" not in outcome.err, outcome.err
        if outcome.code == 0:
            build_and_run(spec)
