"""The REST and streaming API (FastAPI): ``create_app(settings)``; run it with ``emovox serve``.

Needs the ``api`` extra (``pip install 'emovox[api]'``); nothing heavy is imported until used.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

__all__ = ["create_app", "app_from_env", "Settings"]

_WHERE = {"create_app": "app", "app_from_env": "app", "Settings": "settings"}


__getattr__, _ = lazy_attributes(__name__, _WHERE)
