"""Zoo specs held against papers and hand-written code: pre-activation ResNet-18 and BN-Inception.

preact_resnet18 is checked against timm's ``resnetv2_18`` (the same network: full pre-activation units, a stem
without BN-ReLU, a final BN-ReLU) and against a plain hand-written PyTorch implementation
(tests/fixtures/preact_resnet.py): strict state_dict loads and equal logits both ways, and the stage outputs of
the ResNet paper's Table 1. No library implements BN-Inception, so bn_inception is checked against the table of
layers in the Batch Normalization paper (Figure 5): every layer group's output size, every branch's filter count,
and a parameter count worked out from the table's numbers.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
import timm
import torch
from torch import nn

from archc.compiler import Compiled, compile_spec
from archc.ir import Architecture, ModuleNode, Node
from tests.conftest import SPECS as SPECS_DIR
from tests.conftest import load_source
from tests.fixtures.preact_resnet import preact_resnet18 as handwritten_preact_resnet18
from tests.zoo_helpers import assert_counts, assert_equals_reference, assert_shapes_match_hooks, count

SPECS = ["preact_resnet18", "bn_inception"]

# He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1: output size of each stage
# of the 18-layer net (conv2_x ... conv5_x), as (C, H, W). Pre-activation keeps the layout (Identity Mappings, 2016).
RESNET_TABLE_1_STAGES = {
    "stages.0": (64, 56, 56),  # conv2_x
    "stages.1": (128, 28, 28),  # conv3_x
    "stages.2": (256, 14, 14),  # conv4_x
    "stages.3": (512, 7, 7),  # conv5_x
}

# Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift",
# ICML 2015, Appendix, Figure 5 ("Inception architecture"), as printed: the spec's module, the table's row, the
# output size H×W×C, and the filter columns #1×1, #3×3 reduce, #3×3, double #3×3 reduce, double #3×3, Pool +proj.
FIGURE_5 = [
    ("conv1", "convolution* 7×7/2", (112, 112, 64), None),
    ("maxpool1", "max pool 3×3/2", (56, 56, 64), None),
    ("conv3", "convolution 3×3/1", (56, 56, 192), (None, 64, 192, None, None, None)),
    ("maxpool2", "max pool 3×3/2", (28, 28, 192), None),
    ("inception3a", "inception (3a)", (28, 28, 256), (64, 64, 64, 64, 96, "avg + 32")),
    ("inception3b", "inception (3b)", (28, 28, 320), (64, 64, 96, 64, 96, "avg + 64")),
    ("inception3c", "inception (3c) stride 2", (28, 28, 576), (0, 128, 160, 64, 96, "max + pass through")),
    ("inception4a", "inception (4a)", (14, 14, 576), (224, 64, 96, 96, 128, "avg + 128")),
    ("inception4b", "inception (4b)", (14, 14, 576), (192, 96, 128, 96, 128, "avg + 128")),
    ("inception4c", "inception (4c)", (14, 14, 576), (160, 128, 160, 128, 160, "avg + 128")),
    ("inception4d", "inception (4d)", (14, 14, 576), (96, 128, 192, 160, 192, "avg + 128")),
    ("inception4e", "inception (4e) stride 2", (14, 14, 1024), (0, 128, 192, 192, 256, "max + pass through")),
    ("inception5a", "inception (5a)", (7, 7, 1024), (352, 192, 320, 160, 224, "avg + 128")),
    ("inception5b", "inception (5b)", (7, 7, 1024), (352, 192, 320, 192, 224, "max + 128")),
    ("avgpool", "avg pool 7×7/1", (1, 1, 1024), None),
]
# Where Figure 5 contradicts itself. The stride-2 rows print their input grid as output size: 4a, fed by 3c, prints
# 14×14, and 5a, fed by 4e, prints 7×7. The 4c and 4d rows print a 128-channel pool projection but 576 output
# channels, which holds only with 96 (160 + 160 + 160 + 96, 96 + 192 + 192 + 96), as Google's Inception v2 (TF-slim)
# has it; with 128, 4e's printed 1024 would not follow either.
FIGURE_5_OUTPUT_MISPRINTS = {"inception3c": (14, 14, 576), "inception4e": (7, 7, 1024)}
FIGURE_5_POOL_PROJ_MISPRINTS = {"inception4c": 96, "inception4d": 96}
FIRST_CONV_DEPTH_MULTIPLIER = 8  # Figure 5's "convolution*": "separable convolution with depth multiplier 8"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`generated(name)` -> (Compiled, the generated Python module), compiled once per spec."""
    cache: dict[str, tuple[Compiled, ModuleType]] = {}

    def build(name: str) -> tuple[Compiled, ModuleType]:
        if name not in cache:
            compiled = compile_spec(SPECS_DIR / f"{name}.arch")
            cache[name] = (compiled, load_source(compiled.python(), name, tmp_path_factory.mktemp(name)))
        return cache[name]

    return build


@pytest.fixture(scope="module")
def built(generated: Any) -> Any:
    """`built(name)` -> (Compiled, a model built by the generated constructor with its defaults), once per spec."""
    cache: dict[str, tuple[Compiled, nn.Module]] = {}

    def build(name: str) -> tuple[Compiled, nn.Module]:
        if name not in cache:
            compiled, module = generated(name)
            cache[name] = (compiled, getattr(module, name)())
        return cache[name]

    return build


def modules_by_path(arch: Architecture) -> dict[str, ModuleNode]:
    found: dict[str, ModuleNode] = {}

    def walk(module: ModuleNode) -> None:
        found[module.path] = module
        for child in module.children:
            walk(child)

    walk(arch.root)
    return found


def group_output(arch: Architecture, path: str) -> Node:
    """The node a module (a layer or a whole block) hands on: the one inside it that something outside reads."""

    def inside(node: Node) -> bool:
        owner = node.module if node.module is not None else node.scope
        return owner == path or owner.startswith(path + ".")

    handed_on = {i for node in arch.nodes if not inside(node) for i in node.inputs if inside(arch.nodes[i])}
    handed_on |= {i for i in arch.outputs if inside(arch.nodes[i])}
    assert len(handed_on) == 1, (path, handed_on)
    return arch.nodes[handed_on.pop()]


def hooked_outputs(model: nn.Module, paths: list[str], input_shape: list[int]) -> dict[str, tuple[int, ...]]:
    """Output shape (batch left out) of each named module of the generated model, seen by forward hooks."""
    seen: dict[str, tuple[int, ...]] = {}
    modules = dict(model.named_modules())
    handles = []
    for path in paths:

        def hook(mod: nn.Module, args: Any, out: torch.Tensor, path: str = path) -> None:
            seen.setdefault(path, tuple(out.shape[1:]))

        handles.append(modules[path].register_forward_hook(hook))
    model.eval()
    try:
        with torch.no_grad():
            model(torch.randn(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return seen


def preact_references() -> dict[str, nn.Module]:
    return {"timm:resnetv2_18": timm.create_model("resnetv2_18"), "fixture": handwritten_preact_resnet18()}


@pytest.mark.parametrize("name", SPECS)
def test_parameter_and_buffer_counts_equal_the_generated_module(name: str, built: Any) -> None:
    compiled, model = built(name)
    assert_counts(compiled, model)
    assert compiled.params.trainable_params == count(p for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", SPECS)
def test_every_module_output_shape_equals_what_forward_hooks_see(name: str, built: Any) -> None:
    compiled, model = built(name)
    assert_shapes_match_hooks(compiled, model)


def test_preact_resnet18_counts_equal_timm_and_the_handwritten_implementation(built: Any) -> None:
    compiled, model = built("preact_resnet18")
    for label, reference in preact_references().items():
        assert compiled.params.params == count(reference.parameters()), label
        assert compiled.params.buffers == count(reference.buffers()), label


@pytest.mark.parametrize("reference", ["timm:resnetv2_18", "fixture"])
def test_preact_resnet18_loads_reference_weights_strictly_and_gives_equal_logits(reference: str, built: Any) -> None:
    compiled, model = built("preact_resnet18")
    assert_equals_reference(compiled, model, preact_references()[reference])


def test_preact_resnet18_stage_outputs_equal_the_resnet_paper_table_1(built: Any) -> None:
    compiled, model = built("preact_resnet18")
    hooked = hooked_outputs(model, list(RESNET_TABLE_1_STAGES), compiled.arch.input_shape)
    for path, expected in RESNET_TABLE_1_STAGES.items():
        assert tuple(group_output(compiled.arch, path).shape) == expected, path
        assert hooked[path] == expected, path


def test_preact_resnet18_units_are_bn_relu_conv_with_projection_of_the_preactivated_input(built: Any) -> None:
    compiled, _ = built("preact_resnet18")
    nodes = {node.name: node for node in compiled.arch.nodes}
    unit = "stages.1.blocks.0"
    # norm1 -> relu -> conv1, and the 1×1 projection reads the same activated tensor.
    relu = nodes[f"{unit}.relu"]
    assert compiled.arch.nodes[relu.inputs[0]].name == f"{unit}.norm1"
    assert nodes[f"{unit}.conv1"].inputs == [relu.id]
    assert nodes[f"{unit}.downsample.conv"].inputs == [relu.id]
    # An identity unit adds its raw input, not the activated one.
    add = nodes["stages.1.blocks.1.add"]
    assert nodes["stages.1.blocks.1.norm1"].inputs[0] in add.inputs


def test_bn_inception_layer_outputs_equal_the_paper_figure_5(built: Any) -> None:
    compiled, model = built("bn_inception")
    for name, corrected in FIGURE_5_OUTPUT_MISPRINTS.items():
        printed = next(size for row, _, size, _ in FIGURE_5 if row == name)
        # The correction is exactly the row's "stride 2": the grid halves, the channels stay.
        assert corrected == (printed[0] // 2, printed[1] // 2, printed[2])
    hooked = hooked_outputs(model, [row for row, *_ in FIGURE_5], compiled.arch.input_shape)
    for name, label, printed, _ in FIGURE_5:
        h, w, c = FIGURE_5_OUTPUT_MISPRINTS.get(name, printed)
        assert tuple(group_output(compiled.arch, name).shape) == (c, h, w), label
        assert hooked[name] == (c, h, w), label
    assert compiled.arch.nodes[compiled.arch.outputs[0]].shape == [1000]


def test_bn_inception_filter_counts_equal_the_paper_figure_5(built: Any) -> None:
    compiled, _ = built("bn_inception")
    modules = modules_by_path(compiled.arch)

    def width(path: str) -> int:
        return modules[path].attrs["out_channels"]

    assert width("conv1.pointwise") == 64
    assert width("conv1.depthwise") == 3 * FIRST_CONV_DEPTH_MULTIPLIER
    _, reduce, conv3x3, *_ = next(columns for row, _, _, columns in FIGURE_5 if row == "conv3")
    assert (width("conv2.conv"), width("conv3.conv")) == (reduce, conv3x3)  # the row's 3×3 reduce and 3×3
    for name, label, _, columns in FIGURE_5:
        if columns is None or not name.startswith("inception"):
            continue
        n1x1, n3x3red, n3x3, dblred, dbl, pool = columns
        assert (width(f"{name}.branch3x3.0.conv"), width(f"{name}.branch3x3.1.conv")) == (n3x3red, n3x3), label
        branch3x3dbl = [width(f"{name}.branch3x3dbl.{i}.conv") for i in range(3)]
        assert branch3x3dbl == [dblred, dbl, dbl], label
        kind, _, proj = pool.partition(" + ")
        if n1x1 == 0:
            assert f"{name}.branch1x1" not in modules, label
        else:
            assert width(f"{name}.branch1x1.conv") == n1x1, label
        if proj == "pass through":
            assert modules[f"{name}.branch_pool"].type == f"{kind}pool", label
        else:
            assert modules[f"{name}.branch_pool.0"].type == f"{kind}pool", label
            expected = FIGURE_5_POOL_PROJ_MISPRINTS.get(name, int(proj))
            assert width(f"{name}.branch_pool.1.conv") == expected, label


def test_bn_inception_parameter_count_equals_one_worked_out_from_figure_5(built: Any) -> None:
    compiled, _ = built("bn_inception")

    def conv_bn(c_in: int, c_out: int, k: int) -> tuple[int, int]:
        return c_in * c_out * k * k + 2 * c_out, 2 * c_out + 1  # weights + BN (gamma, beta); BN buffers

    parts = [
        (3 * FIRST_CONV_DEPTH_MULTIPLIER * 7 * 7 + 3 * FIRST_CONV_DEPTH_MULTIPLIER * 64 + 2 * 64, 2 * 64 + 1),
        conv_bn(64, 64, 1),
        conv_bn(64, 192, 3),
    ]
    c_in = 192
    for name, _, printed, columns in FIGURE_5:
        if columns is None or not name.startswith("inception"):
            continue
        n1x1, n3x3red, n3x3, dblred, dbl, pool = columns
        proj = pool.partition(" + ")[2]
        if n1x1:
            parts.append(conv_bn(c_in, n1x1, 1))
        parts += [conv_bn(c_in, n3x3red, 1), conv_bn(n3x3red, n3x3, 3)]
        parts += [conv_bn(c_in, dblred, 1), conv_bn(dblred, dbl, 3), conv_bn(dbl, dbl, 3)]
        if proj != "pass through":
            parts.append(conv_bn(c_in, FIGURE_5_POOL_PROJ_MISPRINTS.get(name, int(proj)), 1))
        c_in = printed[2]
    parts.append((c_in * 1000 + 1000, 0))  # the classifier
    assert compiled.params.params == sum(p for p, _ in parts)
    assert compiled.params.buffers == sum(b for _, b in parts)


@pytest.mark.parametrize("name", SPECS)
def test_generated_constructor_takes_num_classes(name: str, generated: Any) -> None:
    _, module = generated(name)
    model = getattr(module, name)(num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 10)
