"""Import heavy optional libraries only where they are needed, with an error naming the extra."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .errors import MissingDependencyError

__all__ = ["require", "lazy_attributes"]


def require(module: str, *, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``pip install 'emovox[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is not installed; install it with: pip install 'emovox[{extra}]'"
        ) from exc


def lazy_attributes(package: str, where: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that import ``where[name]`` (a submodule) on first use,
    so ``import emovox.<package>`` stays light (no torch, sklearn or fastapi until a name is used)."""

    def getattr_(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(f".{where[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted(getattr(sys.modules[package], "__all__", where))

    return getattr_, dir_
