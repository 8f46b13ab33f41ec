"""The elaborated IR: a module tree (architecture > stage > block > layer) and the data-flow graph over it.

The module tree is what `state_dict()` is made of: each module has a dotted path (`layer2.0.downsample.0`), a kind
and, for primitive ops, its concrete attributes. The graph lists every application of a module or inline op in
execution order, with its inputs, the hierarchical scope it runs in, and its output shape (batch left out).
A module applied twice (a shared `relu`) is one module and two nodes.

The classes are plain dataclasses, so that building the IR costs no more than building the objects: the compile
path answers in a fraction of a second. Pydantic gives them their JSON form and schema (`to_json`, `from_json`,
`json_schema`), imported only when one of those is asked for. A field's docstring is its schema description.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic import TypeAdapter

# Read by pydantic: field docstrings become the schema's descriptions.
_SCHEMA_CONFIG = {"use_attribute_docstrings": True}


@dataclass(kw_only=True, slots=True)
class Location:
    __pydantic_config__ = _SCHEMA_CONFIG

    file: str
    line: int
    column: int


@dataclass(kw_only=True, slots=True)
class ModuleNode:
    """A module: an op with weights or none, a block instance, a seq, or the architecture itself."""

    __pydantic_config__ = _SCHEMA_CONFIG

    name: str
    """attribute name in its parent ('conv1', '0')"""
    path: str
    """dotted path from the root, the state_dict prefix ('' for the root)"""
    kind: Literal["arch", "block", "seq", "op"]
    type: str
    """the op name ('conv'), the block or arch definition name, or 'seq'"""
    attrs: dict[str, Any] = field(default_factory=dict)
    """op attributes, inferred ones included"""
    args: dict[str, Any] = field(default_factory=dict)
    """block arguments as evaluated"""
    input_shape: list[int] = field(default_factory=list)
    """shape of its input at first application"""
    children: list[ModuleNode] = field(default_factory=list)
    loc: Location


@dataclass(kw_only=True, slots=True)
class Node:
    """One step of the forward: a module or inline op applied to tensors."""

    __pydantic_config__ = _SCHEMA_CONFIG

    id: int
    name: str
    """hierarchical name: the module path, or the scope plus the op"""
    op: str
    module: str | None
    """path of the applied module; None for an inline op"""
    attrs: dict[str, Any] = field(default_factory=dict)
    inputs: list[int]
    shape: list[int]
    """output shape without the batch dimension"""
    axes: list[str] = field(default_factory=list)
    """what each dimension of the output is: C channels, H and W height and width, L tokens, F flat features"""
    scope: str
    """path of the block the node runs in"""
    training_only: bool = False
    loc: Location


@dataclass(kw_only=True, slots=True)
class Architecture:
    """A whole elaborated spec."""

    __pydantic_config__ = _SCHEMA_CONFIG

    name: str
    file: str
    params: dict[str, Any]
    """top-level parameters as used"""
    meta: dict[str, Any] = field(default_factory=dict)
    input_shape: list[int]
    root: ModuleNode
    nodes: list[Node]
    outputs: list[int]
    """ids of the nodes returned in eval mode"""
    aux_outputs: list[int] = field(default_factory=list)
    """ids of the training-only outputs"""

    def modules(self) -> list[ModuleNode]:
        """Every module, parents before children."""
        out: list[ModuleNode] = []
        stack = [self.root]
        while stack:
            m = stack.pop()
            out.append(m)
            stack.extend(reversed(m.children))
        return out

    def to_json(self, indent: int | None = None) -> str:
        """The JSON that `archc ir` prints."""
        return _adapter().dump_json(self, indent=indent).decode()

    @staticmethod
    def from_json(text: str | bytes) -> Architecture:
        """Read (and validate) what `to_json` wrote."""
        return _adapter().validate_json(text)


@cache
def _adapter() -> TypeAdapter[Architecture]:
    from pydantic import TypeAdapter

    return TypeAdapter(Architecture)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of `archc ir` output."""
    return _adapter().json_schema()
