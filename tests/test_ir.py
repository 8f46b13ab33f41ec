"""The IR's JSON: the schema in docs/ matches the models (a snapshot), and `archc ir` output round-trips through them."""

from __future__ import annotations

import json

from archc.compiler import compile_spec
from archc.ir import Architecture, json_schema
from tests.conftest import ROOT, SPECS


def test_snapshot_docs_ir_schema() -> None:
    """Snapshot: guards docs/ir.schema.json against unreviewed drift from the IR's models, not correctness."""
    committed = json.loads((ROOT / "docs" / "ir.schema.json").read_text())
    assert committed == json_schema(), "regenerate docs/ir.schema.json from archc.ir.json_schema()"


def test_ir_round_trips_through_json() -> None:
    arch = compile_spec(SPECS / "resnet18.arch").arch
    text = arch.to_json()
    again = Architecture.from_json(text)
    assert again.to_json() == text
    assert len(again.nodes) == len(arch.nodes) and again.root.children[0].path == "conv1"


def test_ir_keeps_the_hierarchy_arch_stage_block_layer() -> None:
    arch = compile_spec(SPECS / "resnet50.arch").arch
    stage = next(m for m in arch.root.children if m.name == "layer2")
    block = stage.children[0]
    assert (arch.root.kind, stage.type, block.type) == ("arch", "ResLayer", "Bottleneck")
    assert [c.name for c in block.children] == ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3", "relu", "downsample"]
    assert block.children[-1].children[0].path == "layer2.0.downsample.0"


def test_every_node_points_into_the_spec() -> None:
    arch = compile_spec(SPECS / "resnet18.arch").arch
    for node in arch.nodes:
        assert node.loc.line >= 1 and node.loc.column >= 1
