"""Package exports that load on first use (PEP 562), so importing one light submodule (an
error class, a config dataclass) does not import PyTorch through the package's __init__."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, where: dict[str, tuple[str, ...]]
                 ) -> tuple[list[str], Callable[[str], Any]]:
    """(__all__, __getattr__) for `package`, whose names live in the submodules `where` maps
    to them: `__all__, __getattr__ = lazy_exports(__name__, {...})`."""
    module_of = {name: module for module, names in where.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        vars(importlib.import_module(package))[name] = value  # once
        return value

    return sorted(module_of), __getattr__
