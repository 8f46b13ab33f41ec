"""The generated modules of specs/ as one package, with a timm-like registry.

    >>> import generated
    >>> generated.list_models()[:3]
    ['alexnet', 'bn_inception', 'd2l_resnet18']
    >>> model = generated.create_model("resnet18", num_classes=10)

Each module `generated/<name>.py` (written by `archc compile`) defines a constructor of the same name; this file is
the only one here that archc does not write, and it depends on the standard library alone.
"""

import importlib
import pkgutil
from typing import Any

__all__ = ["create_model", "list_models"]


def list_models() -> list[str]:
    """The names of the generated modules, sorted: each is also its constructor's name."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.ispkg and not m.name.startswith("_"))


def create_model(name: str, **params: Any) -> Any:
    """The model `name` (see `list_models()`), its constructor called with `params`, e.g. `num_classes=10`."""
    if name not in list_models():
        raise ValueError(f"unknown model {name!r}; the models are: {', '.join(list_models())}")
    module = importlib.import_module(f"{__name__}.{name}")
    return getattr(module, name)(**params)
