"""What names a model to import rather than a spec file: `torchvision:NAME`, `timm:NAME`, `FILE.py:CALLABLE`.

Torch-free, so the CLI can tell a SOURCE from a spec path without importing torch.
"""

from __future__ import annotations

import re

SOURCE_PATTERN = re.compile(r"^(torchvision|timm):(.+)$|^(.+\.py):([A-Za-z_][A-Za-z0-9_]*)$")


def is_source(text: str) -> bool:
    """Whether a command-line argument names a model to import rather than a spec file."""
    return SOURCE_PATTERN.match(text) is not None
