"""The Graphviz diagram emitter (archc/emit/dot.py): what the DOT text holds, folding, determinism, and rendering."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from archc.compiler import Compiled, compile_spec
from archc.emit.dot import (
    PAGE_BOXES,
    PAGE_RANKS,
    boxes_of_dot_nodes,
    describe_op,
    diagram_command,
    fit_depth,
    fmt_shape,
    render_bytes,
    render_dot,
    write_diagram,
)
from archc.errors import ArchError
from tests.conftest import ROOT, SPECS, run_cli

ALL_SPECS = sorted(SPECS.glob("*.arch"))
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")

NODE = re.compile(r'^\t+"?([^"\s]+)"? \[(.*)\]$', re.M)
EDGE = re.compile(r'^\t+"?([^"\s]+)"? -> "?([^"\s]+)"? \[(.*)\]$', re.M)
CLUSTER = re.compile(r'^\t+subgraph "?cluster_([^"\s]+)"? \{$', re.M)


@cache
def compiled(name: str) -> Compiled:
    return compile_spec(SPECS / f"{name}.arch")


def dot_nodes(dot: str) -> dict[str, str]:
    """DOT node id -> its attribute text."""
    return {m.group(1): m.group(2) for m in NODE.finditer(dot) if m.group(1) not in ("graph", "node", "edge")}


def dot_edges(dot: str) -> dict[tuple[str, str], list[str]]:
    """(tail, head) -> the attribute text of each edge between them."""
    edges: dict[tuple[str, str], list[str]] = {}
    for m in EDGE.finditer(dot):
        edges.setdefault((m.group(1), m.group(2)), []).append(m.group(3))
    return edges


def label(attrs: str) -> str:
    m = re.search(r'\blabel=(?:"([^"]*)"|([^\s\]<]+))', attrs)
    assert m is not None, attrs
    return m.group(1) if m.group(1) is not None else m.group(2)


# Determinism.


def test_dot_text_is_the_same_twice() -> None:
    for name in ("resnet18", "googlenet"):
        for depth in (None, 1, 2):
            first = render_dot(compiled(name), depth, "TB", True)
            again = render_dot(compile_spec(SPECS / f"{name}.arch"), depth, "TB", True)
            assert first == again


def test_dot_text_is_the_same_across_hash_seeds_and_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from archc.compiler import compile_spec\n"
        "from archc.emit.dot import render_dot\n"
        "sys.stdout.write(render_dot(compile_spec('specs/googlenet.arch'), 1, 'TB', True))\n"
        "sys.stdout.write(render_dot(compile_spec('specs/inception_v3.arch'), None, 'LR', False))\n"
        "assert 'torch' not in sys.modules\n"
    )
    outputs = []
    for seed in ("0", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONIOENCODING": "utf-8"}
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, check=True)
        outputs.append(done.stdout.decode("utf-8"))
    here = render_dot(compile_spec("specs/googlenet.arch"), 1, "TB", True) + render_dot(
        compile_spec("specs/inception_v3.arch"), None, "LR", False
    )
    assert outputs[0] == outputs[1]
    assert outputs[0].replace("\r\n", "\n") == here


# The full picture: every node, every edge with its shape, every block a cluster.


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "inception_v3", "inception_resnet_v2", "xception"])
def test_full_depth_draws_every_node_and_edge_with_its_shape(name: str) -> None:
    arch = compiled(name).arch
    dot = render_dot(compiled(name), None, "TB", False)
    nodes = dot_nodes(dot)
    ids = {key for key in nodes if re.fullmatch(r"n\d+", key)}
    assert ids == {f"n{n.id}" for n in arch.nodes}
    assert len(ids) == len(arch.nodes)
    edges = dot_edges(dot)
    for n in arch.nodes:
        for i in n.inputs:
            (attrs,) = edges[(f"n{i}", f"n{n.id}")]
            assert label(attrs) == fmt_shape(arch.nodes[i].shape)
    (out,) = arch.outputs
    assert label(edges[(f"n{out}", "output")][0]) == fmt_shape(arch.nodes[out].shape)
    expected_edges = {(i, n.id) for n in arch.nodes for i in n.inputs}
    assert sum(len(v) for v in edges.values()) == len(expected_edges) + len(arch.outputs) + len(arch.aux_outputs)


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "inception_v3", "xception_cifar"])
def test_full_depth_has_a_cluster_for_every_block_instance(name: str) -> None:
    arch = compiled(name).arch
    dot = render_dot(compiled(name), None, "TB", False)
    clusters = set(CLUSTER.findall(dot))
    # Every block or seq some node runs in, directly or below it.
    paths = {n.module or n.scope for n in arch.nodes}
    applied = {".".join(p.split(".")[:k]) for p in paths if p for k in range(1, p.count(".") + 2)}
    blocks = {m.path for m in arch.modules() if m.kind in ("block", "seq") and m.path in applied}
    assert blocks == clusters
    assert "layer1" in clusters or name != "resnet18"


def test_cluster_and_node_labels_name_the_path_and_the_type() -> None:
    dot = render_dot(compiled("resnet18"), None, "TB", False)
    assert "label=<layer1: ResLayer>" in dot
    assert "label=<layer1.0: BasicBlock>" in dot
    assert "label=<downsample: seq>" in dot
    nodes = dot_nodes(dot)
    assert "label=<input>" in nodes["n0"]  # its shape is on the edge below it
    assert "label=<conv 7×7 /2, 64>" in nodes["n1"]
    assert "label=<batchnorm>" in nodes["n2"]
    assert "label=<relu>" in nodes["n3"]
    assert "label=<maxpool 3×3 /2>" in nodes["n4"]
    assert "label=<add>" in nodes["n10"]
    assert "label=<linear 1000>" in nodes["n69"]


def test_op_labels_show_the_key_arguments() -> None:
    assert describe_op("conv", {"kernel_size": 3, "stride": 2, "out_channels": 64, "groups": 1, "dilation": 1}) == "conv 3×3 /2, 64"
    assert describe_op("conv", {"kernel_size": 3, "stride": 1, "out_channels": 64}) == "conv 3×3, 64"
    assert describe_op("conv", {"kernel_size": (1, 7), "stride": 1, "out_channels": 192}) == "conv 1×7, 192"
    grouped = {"kernel_size": 3, "stride": 1, "out_channels": 256, "groups": 32, "in_channels": 256, "dilation": 2}
    assert describe_op("conv", grouped) == "conv 3×3, 256, groups 32, dilation 2"
    depthwise = {"kernel_size": 3, "stride": 1, "out_channels": 728, "groups": 728, "in_channels": 728}
    assert describe_op("conv", depthwise) == "conv 3×3, 728, depthwise"
    assert describe_op("maxpool", {"kernel_size": 3, "stride": 2}) == "maxpool 3×3 /2"
    assert describe_op("maxpool", {"kernel_size": 2, "stride": None}) == "maxpool 2×2 /2"
    assert describe_op("avgpool", {"kernel_size": 3, "stride": 1}) == "avgpool 3×3"
    assert describe_op("adaptive_avgpool", {"output_size": (1, 1)}) == "global avgpool"
    assert describe_op("adaptive_avgpool", {"output_size": [6, 6]}) == "adaptive avgpool 6×6"
    assert describe_op("linear", {"out_features": 1000, "in_features": 512}) == "linear 1000"
    assert describe_op("mul", {"scalar": 0.17}) == "×0.17"
    assert describe_op("dropout", {"p": 0.5}) == "dropout 0.5"
    for op in ("batchnorm", "relu", "add", "cat", "flatten"):
        assert describe_op(op, {}) == op
    assert "label=<×0.17>" in render_dot(compiled("inception_resnet_v2"), None, "TB", False)
    assert ", groups 32>" in render_dot(compiled("resnext50_32x4d"), None, "TB", False)
    assert ", depthwise>" in render_dot(compiled("xception"), None, "TB", False)


def test_figures_add_params_and_macs() -> None:
    dot = render_dot(compiled("resnet18"), None, "TB", True)
    assert "9.41K params · 118M MACs" in dot_nodes(dot)["n1"]  # 64·3·7·7 weights; 64·112·112·147 MACs
    assert "11.7M params · 1.81G MACs per image" in dot
    assert "params" not in render_dot(compiled("resnet18"), None, "TB", False)


# Folding.


def test_depth_1_folds_resnet18_into_its_stages() -> None:
    dot = render_dot(compiled("resnet18"), 1, "TB", False)
    nodes = dot_nodes(dot)
    for k in range(1, 5):
        assert f"m_layer{k}" in nodes
        assert f"layer{k}: ResLayer" in nodes[f"m_layer{k}"]
    assert "BasicBlock ×2" in nodes["m_layer1"]
    assert "64×56×56" not in nodes["m_layer1"]  # its output shape is on the edge leaving it
    assert not CLUSTER.findall(dot)
    assert set(nodes) == {"n0", "n1", "n2", "n3", "n4", "m_layer1", "m_layer2", "m_layer3", "m_layer4", "n67", "n68", "n69", "output"}
    edges = dot_edges(dot)
    assert label(edges[("m_layer1", "m_layer2")][0]) == "64×56×56"
    assert label(edges[("m_layer4", "n67")][0]) == "512×7×7"


def test_depth_2_draws_blocks_in_their_stages_and_folds_identical_runs() -> None:
    dot = render_dot(compiled("resnet18"), 2, "TB", False)
    nodes = dot_nodes(dot)
    # layer1's two blocks are identical and chained: one box in its stage; layer2's differ in stride.
    assert "layer1.0–1: BasicBlock ×2" in nodes["r_layer1.0"]
    assert "layer2.0: BasicBlock" in nodes["m_layer2.0"] and "layer2.1: BasicBlock" in nodes["m_layer2.1"]
    assert set(CLUSTER.findall(dot)) == {"layer1", "layer2", "layer3", "layer4"}
    assert len(nodes) < 20
    resnet50 = dot_nodes(render_dot(compiled("resnet50"), 2, "TB", False))
    assert "layer3.1–5: Bottleneck ×5" in resnet50["r_layer3.1"]
    assert "layer3.0: Bottleneck" in resnet50["m_layer3.0"]
    xception = dot_nodes(render_dot(compiled("xception"), 1, "TB", False))
    assert "block4–block11: Block ×8" in xception["r_block4"]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.stem)
def test_every_node_is_drawn_once_at_every_depth(spec: Path) -> None:
    arch = compiled(spec.stem).arch
    for depth in (1, 2, 3, None):
        dot = render_dot(compiled(spec.stem), depth, "TB", True)
        nodes = dot_nodes(dot)
        boxes = [k for k in nodes if not k.startswith(("output", "training_output"))]
        assert len(boxes) == len(set(boxes))
        if depth is None:
            assert len(boxes) == len(arch.nodes)
        for tail, head in dot_edges(dot):
            assert tail in nodes and head in nodes


def test_each_box_maps_to_the_layers_it_holds() -> None:
    arch = compiled("resnet18").arch
    full = boxes_of_dot_nodes(arch, None)
    assert full == {f"n{n.id}": (n.name, [n.name]) for n in arch.nodes}
    for depth in (1, 2):
        folded = boxes_of_dot_nodes(arch, depth)
        assert set(folded) == set(dot_nodes(render_dot(compiled("resnet18"), depth))) - {"output"}
        held = [name for _, names in folded.values() for name in names]
        assert sorted(held) == sorted(n.name for n in arch.nodes)  # every layer in exactly one box
    title, names = boxes_of_dot_nodes(arch, 1)["m_layer1"]
    assert title == "layer1" and names == [n.name for n in arch.nodes if n.name.startswith("layer1.")]
    title, names = boxes_of_dot_nodes(arch, 2)["r_layer1.0"]
    assert title == "layer1.0–1" and names == [n.name for n in arch.nodes if n.name.startswith("layer1.")]


def test_auxiliary_heads_are_training_outputs() -> None:
    dot = render_dot(compiled("googlenet"), 1, "TB", False)
    nodes, edges = dot_nodes(dot), dot_edges(dot)
    for head in ("aux1", "aux2"):
        (key,) = [k for k, attrs in nodes.items() if f"label=<{head} (training)>" in attrs]
        assert "dashed" in nodes[key]
        assert "dashed" in nodes[f"m_{head}"]  # the head itself
        (attrs,) = edges[(f"m_{head}", key)]
        assert "dashed" in attrs and label(attrs) == "1000"
    assert label(edges[("m_inception4a", "m_aux1")][0]) == "512×14×14"
    assert label(edges[("n215", "output")][0]) == "1000"
    full = render_dot(compiled("googlenet"), None, "TB", False)
    arch = compiled("googlenet").arch
    full_nodes = dot_nodes(full)
    for n in arch.nodes:
        assert ("dashed" in full_nodes[f"n{n.id}"]) == n.training_only
    assert "label=<AuxLogits (training)>" in render_dot(compiled("inception_v3"), 1, "TB", False)


def test_direction_and_arguments_are_checked() -> None:
    assert "rankdir=LR" in render_dot(compiled("resnet18"), 1, "LR", False)
    assert "rankdir=TB" in render_dot(compiled("resnet18"), 1, "TB", False)
    with pytest.raises(ArchError, match="unknown direction"):
        render_dot(compiled("resnet18"), 1, "BT", False)
    with pytest.raises(ArchError, match="depth must be at least 1"):
        render_dot(compiled("resnet18"), 0, "TB", False)
    with pytest.raises(ArchError, match="unknown diagram format"):
        write_diagram("digraph {}", Path("x.gif"), "gif")


# Rendering.


@needs_dot
@pytest.mark.parametrize(
    ("name", "depth", "labels"),
    [
        ("resnet18", 1, ["layer1: ResLayer", "BasicBlock ×2", "layer4: ResLayer", "input", "3×224×224"]),
        ("resnet18", None, ["layer1: ResLayer", "layer1.0: BasicBlock", "conv 7×7 /2, 64"]),
        ("googlenet", 1, ["inception3a: Inception", "inception5b: Inception", "aux1 (training)", "aux2 (training)"]),
        ("inception_v3", 1, ["Mixed_5b: InceptionA", "Mixed_7c: InceptionE", "AuxLogits (training)"]),
        ("xception", 1, ["block1: Block", "block4–block11: Block ×8", "conv3: SeparableConv2d"]),
    ],
)
def test_svg_is_valid_xml_with_the_layer_labels(name: str, depth: int | None, labels: list[str], tmp_path: Path) -> None:
    target = write_diagram(render_dot(compiled(name), depth, "TB", False), tmp_path / f"{name}.svg", "svg")
    assert target == tmp_path / f"{name}.svg"
    assert (tmp_path / f"{name}.dot").read_text(encoding="utf-8").startswith("digraph")
    root = ET.parse(target).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    for text in labels:
        assert text in texts


@needs_dot
def test_diagram_command_writes_the_picture_and_the_dot_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert diagram_command(SPECS / "resnet18.arch", "png", 2, "LR", None, True) == Path("resnet18.png")
    assert (tmp_path / "resnet18.png").read_bytes().startswith(b"\x89PNG")
    assert "rankdir=LR" in (tmp_path / "resnet18.dot").read_text(encoding="utf-8")
    out = diagram_command(SPECS / "googlenet.arch", "pdf", 1, "TB", tmp_path / "pictures" / "g.pdf", False)
    assert out.read_bytes().startswith(b"%PDF")
    assert (tmp_path / "pictures" / "g.dot").exists()
    assert diagram_command(SPECS / "vgg16.arch", "dot", None, "TB", None, False) == Path("vgg16.dot")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pictures", "resnet18.dot", "resnet18.png", "vgg16.dot"]


def test_missing_dot_binary_gives_an_install_hint_after_writing_the_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    dot_text = render_dot(compiled("resnet18"), 1, "TB", False)
    with pytest.raises(ArchError) as caught:
        write_diagram(dot_text, tmp_path / "resnet18.svg", "svg")
    assert "apt-get install graphviz" in (caught.value.hint or "")
    assert "brew install graphviz" in (caught.value.hint or "")
    assert "`dot`" in caught.value.message and "resnet18.dot" in caught.value.message
    assert (tmp_path / "resnet18.dot").read_text(encoding="utf-8") == dot_text
    assert not (tmp_path / "resnet18.svg").exists()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArchError, match="not found"):
        diagram_command(SPECS / "googlenet.arch", "png", 1, "TB", None, False)
    assert (tmp_path / "googlenet.dot").exists()
    assert not (tmp_path / "googlenet.png").exists()


# Pictures are what their names say (issue 16, item 4).

# The leading bytes of each format's files, from the formats' specifications (PNG signature, PDF header, SVG as XML).
MAGIC = {".png": (b"\x89PNG\r\n\x1a\n",), ".pdf": (b"%PDF-",), ".svg": (b"<?xml", b"<svg"), ".dot": (b"digraph",)}


def _leading_bytes_match(path: Path) -> bool:
    return path.read_bytes().lstrip().startswith(MAGIC[path.suffix.lower()])


@needs_dot
@pytest.mark.parametrize("name", ["lenet5.png", "lenet5.pdf", "lenet5.svg", "lenet5.dot", "LENET.PNG", "pictures/x.pdf"])
def test_the_output_extension_names_the_format(name: str, tmp_path: Path) -> None:
    outcome = run_cli("diagram", str(SPECS / "lenet5.arch"), "--depth", "1", "-o", str(tmp_path / name))
    assert outcome.code == 0, outcome
    assert _leading_bytes_match(tmp_path / name), (tmp_path / name).read_bytes()[:20]
    # An explicit -f that agrees is fine.
    fmt = Path(name).suffix.lower()[1:]
    assert run_cli("diagram", str(SPECS / "lenet5.arch"), "--depth", "1", "-f", fmt, "-o", str(tmp_path / name)).code == 0
    assert _leading_bytes_match(tmp_path / name)


@needs_dot
@pytest.mark.parametrize("fmt", ["svg", "png", "pdf", "dot"])
def test_every_picture_starts_as_its_extension_says(fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = run_cli("diagram", str(SPECS / "lenet5.arch"), "-f", fmt)
    assert outcome.code == 0, outcome
    assert _leading_bytes_match(tmp_path / f"lenet5.{fmt}")
    if fmt != "dot":
        assert _leading_bytes_match(tmp_path / "lenet5.dot")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "svg", "-o", "x.png"], "-f svg contradicts the output's name x.png, a png file"),
        (["-f", "png", "-o", "x.pdf"], "-f png contradicts the output's name x.pdf, a pdf file"),
        (["-o", "x.jpg"], "cannot draw x.jpg: archc draws no .jpg pictures"),
        (["-f", "png", "-o", "x.jpeg"], "cannot draw x.jpeg: archc draws no .jpeg pictures"),
        (["-o", "x.svg", "--dpi", "300"], "--dpi applies to png pictures, not svg"),
    ],
)
def test_a_contradiction_is_a_usage_error_and_writes_nothing(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = run_cli("diagram", str(SPECS / "lenet5.arch"), *args)
    assert outcome.code == 2, outcome
    assert f"error[E092]: {message}" in outcome.err
    assert list(tmp_path.iterdir()) == []


@needs_dot
def test_no_extension_takes_the_format_flag_or_svg(tmp_path: Path) -> None:
    assert run_cli("diagram", str(SPECS / "lenet5.arch"), "-o", str(tmp_path / "picture")).code == 0
    assert (tmp_path / "picture").read_bytes().lstrip().startswith(b"<?xml")
    assert run_cli("diagram", str(SPECS / "lenet5.arch"), "-f", "png", "-o", str(tmp_path / "picture")).code == 0
    assert (tmp_path / "picture").read_bytes().startswith(MAGIC[".png"])


@needs_dot
@pytest.mark.parametrize(("fmt", "suffix"), [(None, ".svg"), ("png", ".png"), ("pdf", ".pdf"), ("dot", ".dot")])
def test_dash_is_standard_output(fmt: str | None, suffix: str, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "archc", "diagram", str(SPECS / "lenet5.arch"), "-o", "-", *(["-f", fmt] if fmt else [])]
    proc = subprocess.run(command, capture_output=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith(MAGIC[suffix]), proc.stdout[:40]
    assert list(tmp_path.iterdir()) == []  # no file named `-`, no .dot


@needs_dot
def test_dpi_sets_the_pixels_of_a_png(tmp_path: Path) -> None:
    from archc.emit.dot import png_size

    sizes = {}
    for dpi in (48, 192):
        target = tmp_path / f"lenet5_{dpi}.png"
        assert run_cli("diagram", str(SPECS / "lenet5.arch"), "--dpi", str(dpi), "-o", str(target)).code == 0
        sizes[dpi] = png_size(target.read_bytes())
    assert sizes[48] is not None and sizes[192] is not None
    # Four times the dots per inch, four times the pixels a side (up to Graphviz's rounding).
    assert abs(sizes[192][0] - 4 * sizes[48][0]) <= 8 and abs(sizes[192][1] - 4 * sizes[48][1]) <= 8


@needs_dot
def test_a_png_scaled_down_by_graphviz_is_reported(tmp_path: Path) -> None:
    # resnet152 drawn whole is over 32,767 pixels high: cairo's limit, so Graphviz scales the picture down.
    target = tmp_path / "resnet152.png"
    outcome = run_cli("diagram", str(SPECS / "resnet152.arch"), "-o", str(target), "--depth", "all")
    assert outcome.code == 0, outcome
    width, height = struct.unpack(">II", target.read_bytes()[16:24])
    assert max(width, height) >= 32_000
    assert outcome.err.startswith("warning: the png is too large for Graphviz's cairo renderer"), outcome.err
    assert f"{width}×{height} pixels" in outcome.err and "SVG" in outcome.err and "--depth" in outcome.err
    # Folded, it fits: no warning.
    outcome = run_cli("diagram", str(SPECS / "resnet152.arch"), "--depth", "1", "-o", str(tmp_path / "folded.png"))
    assert outcome.code == 0 and outcome.err == "", outcome


# Folding that reads right (issue 16, item 4).

FOLD_CASES = [
    ("resnet18", 1),
    ("resnet18", 2),
    ("resnet50", 2),
    ("googlenet", 1),
    ("googlenet", 2),
    ("inception_v3", 1),
    ("inception_v3", 2),
    ("inception_resnet_v2", 1),
    ("xception", 1),
    ("xception", 2),
    ("densenet121", 2),
    ("mobilenet_v2", 2),
    ("mobilenet_v2", 3),
    ("efficientnet_b0", 3),
    ("regnet_y_400mf", 3),
    ("shufflenet_v2_x1_0", 2),
]


def label_lines(attrs: str) -> list[str]:
    """The lines of a node's label, markup removed."""
    m = re.search(r"\blabel=<(.*)>(?: |$)", attrs)
    if m is None:
        return [label(attrs)]
    text = re.sub(r"<br/>|</tr>", "\n", m.group(1))
    return [line for line in (re.sub(r"<[^>]+>", "", part).strip() for part in text.split("\n")) if line]


def _under(arch: Any, path: str) -> set[int]:
    """IR nodes that run in the module at `path` or below it, from the IR's names."""
    return {n.id for n in arch.nodes if any(p == path or p.startswith(path + ".") for p in (n.module or n.scope,))}


def _feeds_only(arch: Any, first: set[int], second: set[int]) -> bool:
    """Whether what leaves `first` goes only into `second`, and `second` reads only from `first`."""
    leaving = {n.id for n in arch.nodes if n.id not in first and any(i in first for i in n.inputs)}
    reading = {i for j in second for i in arch.nodes[j].inputs} - second
    return bool(reading) and leaving <= second and reading <= first


@pytest.mark.parametrize(("name", "depth"), FOLD_CASES)
def test_times_n_means_a_chain_of_n_blocks(name: str, depth: int) -> None:
    arch = compiled(name).arch
    modules = {m.path: m for m in arch.modules()}
    checked = 0
    for key, attrs in dot_nodes(render_dot(compiled(name), depth)).items():
        if not key.startswith(("m_", "r_")):
            continue
        path = key[2:]
        siblings = modules[path].children if key.startswith("m_") else modules[path.rpartition(".")[0]].children
        start = 0 if key.startswith("m_") else [c.path for c in siblings].index(path)
        for line in label_lines(attrs):
            for kind, count in re.findall(r"(\w+) ×(\d+)\b", line):
                n = int(count)
                windows = range(start, start + 1) if key.startswith("r_") else range(len(siblings) - n + 1)
                found = False
                for s in windows:
                    window = siblings[s : s + n]
                    if len(window) == n and all(c.type == kind for c in window):
                        sets = [_under(arch, c.path) for c in window]
                        found = found or all(_feeds_only(arch, a, b) for a, b in zip(sets, sets[1:], strict=False))
                assert found, f"{key}: {line!r} is not a chain of {n} {kind} blocks"
                checked += 1
    if (name, depth) in (("resnet18", 1), ("resnet50", 2), ("xception", 1)):
        assert checked
    if name == "inception_v3" and depth == 1:
        mixed = label_lines(dot_nodes(render_dot(compiled(name), 1))["m_Mixed_5b"])
        assert mixed == ["Mixed_5b: InceptionA", "7 BasicConv2d"]  # seven convolutions, four branches: no chain


@pytest.mark.parametrize(("name", "depth"), FOLD_CASES)
def test_every_module_at_the_same_depth_is_folded_alike(name: str, depth: int) -> None:
    arch = compiled(name).arch
    dot = render_dot(compiled(name), depth)
    nodes = dot_nodes(dot)
    # A module above the fold level is a cluster wherever something runs in it; none is a box.
    # (An op with weights is not a cluster: the block it sits in is.)
    paths = {(n.module.rpartition(".")[0] if n.module is not None else n.scope) for n in arch.nodes if n.op != "input"}
    above = {".".join(p.split(".")[:k]) for p in paths if p for k in range(1, min(depth - 1, p.count(".") + 1) + 1)}
    assert set(CLUSTER.findall(dot)) == above
    folded = [k[2:] for k in nodes if k.startswith(("m_", "r_"))]
    assert all(p.count(".") + 1 == depth for p in folded), folded
    # Every IR node below the fold level is inside a folded box.
    drawn = {int(k[1:]) for k in nodes if re.fullmatch(r"n\d+", k)}
    for n in arch.nodes:
        if n.op != "input" and (n.module or n.scope).count(".") + 1 > depth:
            assert n.id not in drawn, n.name


@pytest.mark.parametrize(("name", "depth"), [*FOLD_CASES, ("resnet18", None), ("googlenet", None)])
def test_no_box_repeats_the_shape_on_its_edge(name: str, depth: int | None) -> None:
    dot = render_dot(compiled(name), depth, "TB", True)
    nodes = dot_nodes(dot)
    for (tail, _head), attrs in dot_edges(dot).items():
        shape = label(attrs[0])
        assert shape not in label_lines(nodes[tail]), (tail, shape)
        assert not any(line.endswith(" " + shape) and "×" in shape for line in label_lines(nodes[tail])), (tail, shape)


@needs_dot
@pytest.mark.parametrize(("name", "depth"), [("inception_v3", 1), ("resnet18", 2), ("inception_resnet_v2", 1)])
def test_label_lines_leave_room_for_descenders(name: str, depth: int) -> None:
    # An underscore hangs about 0.2 of the font size below the baseline, capitals reach 0.72 above it (Helvetica):
    # consecutive lines need their baselines at least 0.3 × the upper size + 0.9 × the lower size apart.
    svg = render_bytes(render_dot(compiled(name), depth, "TB", True), "svg").decode("utf-8")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    several = 0
    for g in root.iter(f"{ns}g"):
        if g.get("class") not in ("node", "graph"):
            continue
        texts = [(float(t.get("y", "0")), float(t.get("font-size", "14"))) for t in g.iter(f"{ns}text")]
        if g.get("class") == "graph":
            texts = texts[:2]  # the title lines; cluster labels are separate lines elsewhere
        for (y1, s1), (y2, s2) in zip(texts, texts[1:], strict=False):
            assert y2 - y1 >= 0.3 * s1 + 0.9 * s2, (g.findtext(f"{ns}title"), y1, y2)
            several += 1
    assert several > 5


def _longest_path(dot: str) -> int:
    """Boxes on the longest path of a DOT graph, from its edges (Kahn's order, then the longest path into each)."""
    nodes = list(dot_nodes(dot))
    heads: dict[str, list[str]] = {n: [] for n in nodes}
    indegree = dict.fromkeys(nodes, 0)
    for tail, head in dot_edges(dot):
        heads[tail].append(head)
        indegree[head] += 1
    longest = dict.fromkeys(nodes, 1)
    ready = [n for n in nodes if indegree[n] == 0]
    while ready:
        node = ready.pop()
        for head in heads[node]:
            longest[head] = max(longest[head], longest[node] + 1)
            indegree[head] -= 1
            if indegree[head] == 0:
                ready.append(head)
    assert not any(indegree.values())  # acyclic
    return max(longest.values())


def _fits(dot: str) -> bool:
    """Within the page's boxes from input to output and in all; and, where Graphviz is here, drawn within 1,500 points
    high (nested clusters make a picture taller than its boxes: VoVNet's)."""
    boxes = [k for k in dot_nodes(dot) if not k.startswith(("output", "training_output"))]
    if _longest_path(dot) > PAGE_RANKS or len(boxes) > PAGE_BOXES:
        return False
    if HAS_DOT:
        m = re.search(r'<svg width="(\d+)pt" height="(\d+)pt"', render_bytes(dot, "svg").decode("utf-8"))
        return m is not None and int(m.group(2)) <= 1500
    return True


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda p: p.stem)
def test_the_default_depth_is_the_deepest_that_fits_a_page(spec: Path, tmp_path: Path) -> None:
    outcome = run_cli("diagram", str(spec), "-o", str(tmp_path / "x.dot"))
    assert outcome.code == 0, outcome
    dot = (tmp_path / "x.dot").read_text(encoding="utf-8")
    depth = fit_depth(compiled(spec.stem).arch)
    assert dot == render_dot(compiled(spec.stem), depth)
    deeper = [d for d in range(1, 12) if depth is not None and d > depth] + ([None] if depth is not None else [])
    if depth != 1 or _fits(render_dot(compiled(spec.stem), 1)):
        assert _fits(dot), spec.stem
        # The deepest: one level more (or every layer) does not fit.
        assert not _fits(render_dot(compiled(spec.stem), deeper[0])) if deeper else True
    if HAS_DOT:
        svg = render_bytes(dot, "svg").decode("utf-8")
        m = re.search(r'<svg width="(\d+)pt" height="(\d+)pt"', svg)
        assert m is not None
        assert int(m.group(2)) <= 1500 and int(m.group(1)) <= 1500, (spec.stem, m.groups())


def test_depth_all_draws_every_layer(tmp_path: Path) -> None:
    assert run_cli("diagram", str(SPECS / "resnet18.arch"), "--depth", "all", "-o", str(tmp_path / "x.dot")).code == 0
    assert (tmp_path / "x.dot").read_text(encoding="utf-8") == render_dot(compiled("resnet18"), None)
    outcome = run_cli("diagram", str(SPECS / "resnet18.arch"), "--depth", "most", "-o", str(tmp_path / "y.dot"))
    assert outcome.code == "SystemExit(2)" and "positive integer or all" in outcome.err
    assert not (tmp_path / "y.dot").exists()
