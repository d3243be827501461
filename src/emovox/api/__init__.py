"""The REST and streaming API (FastAPI): ``create_app(settings)``; run it with ``emovox serve``.

Needs the ``api`` extra (``pip install 'emovox[api]'``); nothing heavy is imported until used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["create_app", "app_from_env", "Settings"]

_WHERE = {"create_app": "app", "app_from_env": "app", "Settings": "settings"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'emovox.api' has no attribute {name!r}")
