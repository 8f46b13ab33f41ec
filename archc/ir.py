"""The elaborated IR: a module tree (architecture > stage > block > layer) and the data-flow graph over it.

The module tree is what `state_dict()` is made of: each module has a dotted path (`layer2.0.downsample.0`), a kind
and, for primitive ops, its concrete attributes. The graph lists every application of a module or inline op in
execution order, with its inputs, the hierarchical scope it runs in, and its output shape (batch left out).
A module applied twice (a shared `relu`) is one module and two nodes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Location(BaseModel):
    file: str
    line: int
    column: int


class ModuleNode(BaseModel):
    """A module: an op with weights or none, a block instance, a seq, or the architecture itself."""

    name: str = Field(description="attribute name in its parent ('conv1', '0')")
    path: str = Field(description="dotted path from the root, the state_dict prefix ('' for the root)")
    kind: Literal["arch", "block", "seq", "op"]
    type: str = Field(description="the op name ('conv'), the block or arch definition name, or 'seq'")
    attrs: dict[str, Any] = Field(default_factory=dict, description="op attributes, inferred ones included")
    args: dict[str, Any] = Field(default_factory=dict, description="block arguments as evaluated")
    input_shape: list[int] = Field(default_factory=list, description="shape of its input at first application")
    children: list[ModuleNode] = Field(default_factory=list)
    loc: Location


class Node(BaseModel):
    """One step of the forward: a module or inline op applied to tensors."""

    id: int
    name: str = Field(description="hierarchical name: the module path, or the scope plus the op")
    op: str
    module: str | None = Field(description="path of the applied module; None for an inline op")
    attrs: dict[str, Any] = Field(default_factory=dict)
    inputs: list[int]
    shape: list[int] = Field(description="output shape without the batch dimension")
    scope: str = Field(description="path of the block the node runs in")
    training_only: bool = False
    loc: Location


class Architecture(BaseModel):
    """A whole elaborated spec."""

    name: str
    file: str
    params: dict[str, Any] = Field(description="top-level parameters as used")
    meta: dict[str, Any] = Field(default_factory=dict)
    input_shape: list[int]
    root: ModuleNode
    nodes: list[Node]
    outputs: list[int] = Field(description="ids of the nodes returned in eval mode")
    aux_outputs: list[int] = Field(default_factory=list, description="ids of the training-only outputs")

    def modules(self) -> list[ModuleNode]:
        """Every module, parents before children."""
        out: list[ModuleNode] = []
        stack = [self.root]
        while stack:
            m = stack.pop()
            out.append(m)
            stack.extend(reversed(m.children))
        return out


def json_schema() -> dict[str, Any]:
    """The JSON Schema of `archc ir` output."""
    return Architecture.model_json_schema()
