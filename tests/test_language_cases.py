"""The cases of shared/language-notes.md that no ResNet spec exercises, each compiled and run in PyTorch."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchvision
from torch import nn

from archc.compiler import Compiled, compile_spec
from archc.errors import ArchError


def count(tensors: Any) -> int:
    return sum(t.numel() for t in tensors)


def leaf_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    seen: dict[str, tuple[int, ...]] = {}
    handles = [
        m.register_forward_hook(lambda mod, a, out, p=p: seen.setdefault(p, tuple(out.shape[1:])) and None)
        for p, m in model.named_modules()
        if not list(m.children())
    ]
    model(x)
    for h in handles:
        h.remove()
    return seen


def assert_pass_matches_module(compiled: Compiled, model: nn.Module) -> None:
    """The parameter pass and the shape pass agree with the module PyTorch built."""
    assert compiled.params.params == count(model.parameters())
    assert compiled.params.buffers == count(model.buffers())
    model.eval()
    seen = leaf_shapes(model, torch.randn(2, *compiled.arch.input_shape))
    first = {}
    for node in compiled.arch.nodes:
        if node.module in seen and not node.training_only:
            first.setdefault(node.module, tuple(node.shape))
    assert first == seen


INCEPTION = """
block BasicConv2d(out_channels, kernel_size, padding = 0) {
    conv = conv(out_channels, kernel_size, padding = padding, bias = false)
    bn = batchnorm(eps = 0.001)
    forward(x) = relu(bn(conv(x)), inplace = true)
}
block Inception(ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) {
    branch1 = BasicConv2d(ch1x1, 1)
    branch2 = seq(BasicConv2d(ch3x3red, 1), BasicConv2d(ch3x3, 3, padding = 1))
    branch3 = seq(BasicConv2d(ch5x5red, 1), BasicConv2d(ch5x5, 3, padding = 1))
    branch4 = seq(maxpool(3, stride = 1, padding = 1, ceil_mode = true), BasicConv2d(pool_proj, 1))
    forward(x) = cat(branch1(x), branch2(x), branch3(x), branch4(x))
}
arch Net() {
    input (192, 28, 28)
    inception3a = Inception(64, 96, 128, 16, 32, 32)
}
"""


def test_inception_concatenates_four_branches_like_torchvision(compile_arch: Any) -> None:
    compiled, module = compile_arch(INCEPTION)
    model = module.model()
    assert compiled.arch.nodes[compiled.arch.outputs[0]].shape == [256, 28, 28]
    assert_pass_matches_module(compiled, model)
    # torchvision's GoogLeNet inception3a has the same tree: its weights load strictly.
    reference = torchvision.models.googlenet(aux_logits=False, init_weights=True).inception3a
    model.inception3a.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(2, 192, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)


AUX = """
block Head(num_classes) {
    pool = adaptive_avgpool((1, 1))
    fc = linear(num_classes)
    forward(x) = fc(flatten(pool(x), 1))
}
arch Net(num_classes = 5, aux_logits = true) {
    input (3, 32, 32)
    conv1 = conv(8, 3, padding = 1)
    if aux_logits {
        aux1 = Head(num_classes)
    }
    conv2 = conv(16, 3, stride = 2, padding = 1)
    head = Head(num_classes)
    forward(x) {
        x = relu(conv1(x))
        aux a1 = aux1?(x)
        x = relu(conv2(x))
        return head(x), a1
    }
}
"""


def test_auxiliary_output_is_returned_in_training_mode_only(compile_arch: Any) -> None:
    compiled, module = compile_arch(AUX)
    assert len(compiled.arch.aux_outputs) == 1
    assert all(n.training_only for n in compiled.arch.nodes if n.name.startswith("aux1"))
    model = module.model()
    assert_pass_matches_module(compiled, model)
    x = torch.randn(4, 3, 32, 32)
    model.train()
    logits, aux = model(x)
    assert logits.shape == aux.shape == (4, 5)
    model.eval()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (4, 5)
    scripted = torch.jit.script(model)
    assert torch.allclose(scripted(x)[0], out, atol=1e-6)


def test_auxiliary_head_switched_off_gives_no_auxiliary_output(compile_arch: Any) -> None:
    compiled, module = compile_arch(AUX, overrides={"aux_logits": False})
    assert compiled.arch.aux_outputs == []
    model = module.model(aux_logits=False)
    assert not any(k.startswith("aux1") for k in model.state_dict())
    model.train()
    # As torchvision's GoogLeNet(aux_logits=False): the logits alone, in training mode too.
    out = model(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)


VGG = """
block VGGFeatures(cfg, batch_norm = false) {
    for v in cfg {
        if v == "M" {
            maxpool(2, stride = 2)
        } else {
            conv(v, 3, padding = 1)
            if batch_norm {
                batchnorm()
            }
            relu(inplace = true)
        }
    }
}
arch Net(batch_norm = false) {
    input (3, 64, 64)
    features = VGGFeatures([64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"], batch_norm = batch_norm)
}
"""


@pytest.mark.parametrize("batch_norm", [False, True])
def test_config_list_loop_numbers_layers_like_torchvision_vgg(compile_arch: Any, batch_norm: bool) -> None:
    compiled, module = compile_arch(VGG, overrides={"batch_norm": batch_norm})
    model = module.model(batch_norm=batch_norm)
    assert_pass_matches_module(compiled, model)
    reference = (torchvision.models.vgg11_bn() if batch_norm else torchvision.models.vgg11()).features
    model.features.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    reference.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), reference(x), atol=1e-5)


SCALED = """
block Block35(scale = 1.0) {
    branch = conv(in.channels, 3, padding = 1)
    forward(x) = relu(x + branch(x) * scale)
}
arch Net() {
    input (8, 16, 16)
    block = Block35(scale = 0.17)
}
"""


def test_scalar_scaled_residual_computes_x_plus_scale_times_branch(compile_arch: Any) -> None:
    compiled, module = compile_arch(SCALED)
    model = module.model()
    assert_pass_matches_module(compiled, model)
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        expected = torch.relu(x + 0.17 * model.block.branch(x))
        assert torch.allclose(model(x), expected, atol=1e-6)


SEPARABLE = """
block SeparableConv2d(out_channels, stride = 1) {
    conv1 = conv(in.channels, 3, stride = stride, padding = 1, groups = in.channels, bias = false)
    pointwise = conv(out_channels, 1, bias = false)
}
arch Net() {
    input (32, 20, 20)
    sep = SeparableConv2d(64, stride = 2)
}
"""


def test_depthwise_separable_conv_groups_by_input_channels(compile_arch: Any) -> None:
    compiled, module = compile_arch(SEPARABLE)
    model = module.model()
    assert_pass_matches_module(compiled, model)
    depthwise = model.sep.conv1
    assert depthwise.groups == depthwise.in_channels == depthwise.out_channels == 32
    assert compiled.arch.nodes[compiled.arch.outputs[0]].shape == [64, 10, 10]
    assert compiled.params.params == 32 * 3 * 3 + 32 * 64


def test_seq_entries_named_by_strings_give_those_module_names(compile_arch: Any) -> None:
    # torchvision's RegNet names a stage's blocks "block1-0", "block1-1": no identifier can say that.
    compiled, module = compile_arch(
        """
        arch Net() {
            input (3, 8, 8)
            stage = seq("block1-0" = conv(4, 3, padding = 1), "block1-1" = relu(), tail = seq("x y" = conv(2, 1)))
        }
        """
    )
    model = module.model()
    reference = nn.Sequential()
    reference.add_module("block1-0", nn.Conv2d(3, 4, 3, padding=1))
    reference.add_module("block1-1", nn.ReLU())
    tail = nn.Sequential()
    tail.add_module("x y", nn.Conv2d(4, 2, 1))
    reference.add_module("tail", tail)
    assert list(model.stage.state_dict()) == list(reference.state_dict())
    assert [m.path for m in compiled.arch.modules()][1:] == ["stage", "stage.block1-0", "stage.block1-1", "stage.tail", "stage.tail.x y"]
    model.stage.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    assert_pass_matches_module(compiled, model)


def test_quoted_names_print_as_written_in_the_summary(tmp_path: Any) -> None:
    import contextlib
    import io

    from archc.cli import main

    spec = tmp_path / "net.arch"
    spec.write_text('arch net() {\n    input (3, 8, 8)\n    body = seq("[/x]" = conv(4, 3), "[red]r" = relu())\n}\n', encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["summary", str(spec)]) == 0
    assert "body.[/x]" in out.getvalue() and "body.[red]r" in out.getvalue()


INIT = """
block Head(num_classes) {
    proj = conv(32, 1)
    norm = batchnorm()
    fc = linear(num_classes)
    forward(x) = fc(flatten(norm(proj(x)), 1))
}
block Net(num_classes = 10, zero_last = false, std = 0.02) {
    conv1 = conv(64, 3, padding = 1, bias = false)
    bn1 = batchnorm()
    pool = adaptive_avgpool((1, 1))
    head = Head(num_classes)
    forward(x) = head(pool(relu(bn1(conv1(x)))))
    init {
        conv = (weight = kaiming_normal(mode = "fan_out", nonlinearity = "relu"), bias = constant(0.5))
        linear = (weight = normal(0, std), bias = zeros())
        batchnorm = (weight = constant(2), bias = constant(0))
        Head.proj = (weight = uniform(-0.3, 0.3))
        if zero_last {
            Head.norm = (weight = zeros())
        }
    }
}
arch model(zero_last = false, std = 0.02) = Net(zero_last = zero_last, std = std) {
    input (3, 16, 16)
}
"""


def test_init_rules_set_each_parameter_as_torch_nn_init_does(compile_arch: Any) -> None:
    """Op type rules, a member override after them, an argument from a parameter and a rule under `if`: the
    constructed module's statistics are those of the torch.nn.init functions the rules name."""
    _, module = compile_arch(INIT)
    torch.manual_seed(0)
    model = module.model()
    fan_out = 64 * 3 * 3
    assert abs(model.conv1.weight.std().item() - (2 / fan_out) ** 0.5) < 0.005  # 1728 elements
    proj = model.head.proj
    assert proj.weight.abs().max().item() <= 0.3 and proj.weight.std().item() > 0.3 / 3**0.5 * 0.8  # uniform(-0.3, 0.3)
    assert torch.equal(proj.bias, torch.full_like(proj.bias, 0.5))  # the type rule's bias stands: the override sets the weight
    assert abs(model.head.fc.weight.std().item() - 0.02) < 0.003 and not model.head.fc.bias.any()
    assert torch.equal(model.bn1.weight, torch.full_like(model.bn1.weight, 2.0))
    assert torch.equal(model.head.norm.weight, torch.full_like(model.head.norm.weight, 2.0))
    zeroed = module.model(zero_last=True, std=0.5)
    assert not zeroed.head.norm.weight.any() and zeroed.bn1.weight.all()
    assert abs(zeroed.head.fc.weight.std().item() - 0.5) < 0.08


@pytest.mark.parametrize(
    ("rule", "code", "message"),
    [
        ("Head.missing = zeros()", "E111", "`Head` has no member `missing`"),
        ("Net.head = zeros()", "E111", "member `head` of `Net` is a `Head` block, not a layer"),
        ("Net.pool = zeros()", "E111", "is a `adaptive_avgpool`, which has no parameters"),
        ("Nope.fc = zeros()", "E111", "no block `Nope`"),
        ("Head.norm = (gamma = ones())", "E112", "`batchnorm` has no parameter `gamma`"),
        ("Head.fc = normal(0, 0.1, 3)", "E112", "normal takes 2 arguments after the tensor, got 3"),
        ("Head.fc = normal(sd = 1)", "E112", "normal has no argument `sd`"),
        ("Head.fc = normal(std = -1)", "E112", "std of normal is negative"),
        ("Head.fc = constant()", "E112", "constant needs `val`"),
        ('Head.proj = kaiming_uniform(nonlinearity = "gelu")', "E112", 'nonlinearity of kaiming_uniform is "gelu"'),
        ("Head.norm = xavier_normal()", "E112", "xavier_normal needs a tensor of 2 or more dimensions"),
        ("Head.fc = normal(0, undefined)", "E010", "unknown name `undefined`"),
        ("Head.fc = normal(0, 1.0 / in.channels)", "E112", "an init argument cannot read `in.channels`"),
        ("Head.fc = zeros()\n        Head.fc = ones()", "E111", "`Head.fc` is initialised twice"),
        ("Head.fc = normal(0, 1.0 / layer.groups)", "E112", "`linear` has no attribute `groups`"),
        ("Head.fc = normal(0, 1.0 / fc.out_features)", "E001", "unexpected '.'"),
    ],
)
def test_init_errors_are_located_with_a_code(tmp_path: Any, rule: str, code: str, message: str) -> None:
    text = INIT.replace("        Head.proj = (weight = uniform(-0.3, 0.3))\n", f"        {rule}\n")
    spec = tmp_path / "model.arch"
    spec.write_text(text)
    with pytest.raises(ArchError) as caught:
        compile_spec(spec)
    assert caught.value.code == code and message in caught.value.message, caught.value.render()
    assert caught.value.loc is not None and caught.value.loc.line > 1
    assert caught.value.hint or code == "E010"  # an unknown name's hint is a spelling suggestion, when there is one


def test_layer_attributes_stand_only_in_init_arguments(tmp_path: Any) -> None:
    spec = tmp_path / "model.arch"
    spec.write_text("arch model() {\n    input (3, 8, 8)\n    conv(layer.groups, 3)\n}\n")
    with pytest.raises(ArchError) as caught:
        compile_spec(spec)
    assert caught.value.code == "E042" and "stands only in an init argument" in caught.value.message
    assert caught.value.loc is not None and (caught.value.loc.line, caught.value.loc.column) == (3, 10)


def test_init_arguments_read_the_layer_as_timm_goog_init_does(compile_arch: Any) -> None:
    """`layer.groups`, `layer.kernel_size`, `layer.out_features`: each module's own attributes, so that convs of
    different kernels and groups under one rule get timm's _init_weight_goog (fan_out = k·k·out // groups), checked
    against that function applied to the same module."""
    from timm.models._efficientnet_builder import _init_weight_goog

    text = """
arch model() {
    input (8, 16, 16)
    conv(64, 5, padding = 2, groups = 8)
    conv(64, 3, padding = 1, groups = 64)
    conv(128, 1)
    flatten()
    linear(10)
    init {
        conv = normal(0, sqrt(2.0 / (layer.kernel_size[0] * layer.kernel_size[1] * layer.out_channels // layer.groups)))
        linear = (weight = uniform(-1.0 / sqrt(layer.out_features), 1.0 / sqrt(layer.out_features)), bias = zeros())
    }
}
"""
    compiled, module = compile_arch(text)
    assert "m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups" in compiled.python()
    torch.manual_seed(0)
    ours = module.model()
    theirs = module.model()
    for m in theirs.modules():
        _init_weight_goog(m)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        if name.endswith("bias") and name != "4.bias":
            continue  # the convs' biases keep PyTorch's default: the rule sets their weight only
        assert abs(p.std().item() - q.std().item()) < 0.1 * q.std().item() + 1e-9, name
    # The depthwise conv's fan_out is 3·3·64 // 64 = 9, not torch's 576: a std of sqrt(2 / 9).
    assert abs(ours[1].weight.std().item() - (2 / 9) ** 0.5) < 0.05


def test_init_reading_a_parameter_named_m_loops_over_another_name(compile_arch: Any) -> None:
    """torchvision's loop variable `m` would shadow a parameter `m` that the rules read."""
    _, module = compile_arch(
        "arch model(m = 0.05) {\n    input (3, 8, 8)\n    conv(64, 3)\n    init {\n        conv = normal(0, m)\n    }\n}\n"
    )
    torch.manual_seed(0)
    assert abs(module.model(m=0.5)[0].weight.std().item() - 0.5) < 0.05  # 1728 elements


def test_init_sets_groupnorm_and_prelu_and_skips_an_instancenorm_without_weights(compile_arch: Any) -> None:
    text = """
arch model() {
    input (3, 8, 8)
    conv(8, 3)
    groupnorm(2)
    instancenorm()
    prelu()
    init {
        groupnorm = (weight = constant(2), bias = constant(3))
        instancenorm = (weight = constant(2))
        prelu = constant(0.1)
    }
}
"""
    _, module = compile_arch(text)
    model = module.model()
    assert torch.equal(model[1].weight, torch.full((8,), 2.0)) and torch.equal(model[1].bias, torch.full((8,), 3.0))
    assert model[2].weight is None  # nn.InstanceNorm2d has no affine parameters by default
    assert torch.allclose(model[3].weight, torch.full_like(model[3].weight, 0.1))


LIST_BUILT_IN_A_LOOP = """
block B(alpha) {
    let depths = []
    for d in [32, 16] {
        let v = d * alpha
        let n = max(8, int(v + 4.0) // 8 * 8)
        let depths = depths + [(n if n >= 0.9 * v else n + 8)]
    }
    conv(depths[0], 1)
    conv(depths[1], 1)
}
arch Net() {
    input (3, 8, 8)
    b = B(0.5)
}
"""


def test_a_list_built_in_a_loop_is_read_after_it_as_the_loop_left_it(compile_arch: Any) -> None:
    """The generated constructor accumulates the list as elaboration did (it once read the loop's last terms)."""
    compiled, module = compile_arch(LIST_BUILT_IN_A_LOOP)
    model = module.model()
    assert_pass_matches_module(compiled, model)
    assert [m.out_channels for m in model.b] == [16, 8]


def test_stages_of_blocks_with_an_optional_shortcut_compile_for_any_widths(compile_arch: Any) -> None:
    # `proj?(x) + f(x)`: the sum's channels are `w if proj exists else c` by the shortcut and plain `w` by the branch;
    # elaboration has checked them equal, so the stage after a loop of such blocks has `w` channels, which a trunk
    # looping over stages of widths given as constructor arguments needs (torchvision's RegNet).
    compiled, module = compile_arch(
        """
        block Res(w, stride) {
            if in.channels != w or stride != 1 {
                proj = conv(w, 1, stride = stride)
            }
            f = conv(w, 3, stride = stride, padding = 1)
            forward(x) = relu(proj?(x) + f(x))
        }
        block Stage(w, depth) {
            for i in range(depth) {
                "b{i}" = Res(w, (2 if i == 0 else 1))
            }
        }
        block Trunk(depths, widths) {
            for s, depth in depths {
                "stage{s + 1}" = Stage(widths[s], depth)
            }
        }
        arch model(depths = [1, 2], widths = [4, 6]) = Trunk(depths, widths) {
            input (3, 16, 16)
        }
        """
    )
    source = compiled.python()
    assert "channels = widths[s]" in source and "channels = w\n" in source
    model = module.model()
    assert [name for name, _ in model.named_children()] == ["stage1", "stage2"]
    assert model.stage2.get_submodule("b1").f.in_channels == 6
    assert_pass_matches_module(compiled, model)
    other = module.model(depths=[2, 1, 1], widths=[5, 3, 7])
    assert other.stage3.get_submodule("b0").proj.in_channels == 3
    assert other(torch.randn(1, 3, 16, 16)).shape == (1, 7, 2, 2)


SEQ_ITEM_INIT = """
block Net(num_classes = 3) {
    conv1 = conv(4, 1)
    head = seq(flatten(), linear(num_classes))
    forward(x) = head(conv1(x))
    init {
        linear = (weight = zeros(), bias = zeros())
        Net.head.1 = (weight = constant(0.5))
    }
}
arch net() = Net() {
    input (2, 2, 2)
}
"""


def test_an_init_path_names_a_seq_item_by_number(compile_arch: Any) -> None:
    """torchvision's SqueezeNet initialises `classifier[1]` apart: the path reaches into a seq by item number."""
    compiled, module = compile_arch(SEQ_ITEM_INIT)
    model = module.model()
    assert bool((model.head[1].weight == 0.5).all()) and bool((model.head[1].bias == 0).all())
    assert "m.head[1].weight" in compiled.python()


def test_an_init_path_to_a_missing_seq_item_is_located(tmp_path: Any) -> None:
    from archc.compiler import compile_spec
    from archc.errors import ArchError

    spec = tmp_path / "net.arch"
    spec.write_text(SEQ_ITEM_INIT.replace("Net.head.1 =", "Net.head.5 ="))
    with pytest.raises(ArchError, match="has no item `5`") as caught:
        compile_spec(spec)
    assert caught.value.code == "E111" and caught.value.loc is not None and caught.value.loc.line == 8
