"""archc: a compiler for declarative CNN architecture specs.

`archc.build(path, **params)` gives the spec as a PyTorch module, `archc.analyze(path)` its summary as typed
objects (docs/api.md). Both load on first use, so `import archc` stays light and never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Report", "__version__", "analyze", "build"]

if TYPE_CHECKING:
    from archc.api import Report, analyze, build


def __getattr__(name: str) -> Any:
    if name in ("build", "analyze", "Report"):
        from archc import api

        return getattr(api, name)
    raise AttributeError(f"module 'archc' has no attribute {name!r}")
