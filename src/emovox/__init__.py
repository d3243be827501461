"""emovox: speech emotion recognition that reports how it generalises.

audio in any format -> 16 kHz -> voice-activity segments -> log-mel -> model -> per-segment
emotions with probabilities -> timeline, summary, reports.

Importing ``emovox`` is cheap: submodules (and their heavy dependencies) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "audio", "corpora", "features", "labels", "errors", "inference"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'emovox' has no attribute {name!r}")
