"""Lazy public names for a package (PEP 562): importing the package imports none of its heavy modules; a name
loads its module on first access.  Keeps ``import ifcn_viz`` and ``ifcn-viz --help`` free of torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public ``names`` map to the module defining each: a
    submodule's short name (``"assemble"`` -> ``package.assemble``) or a full dotted path."""

    def __getattr__(name: str) -> Any:
        if name in names:
            where = names[name]
            module = where if where.startswith("ifcn_viz") else f"{package}.{where}"
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(names))

    return __getattr__, __dir__
