"""Models: estimators (the neural classifier, classical pipelines) and model directories.

``from emovox.models import NeuralClassifier`` does not import torch; fitting does.
:mod:`emovox.models.directory` reads a model directory (``model.json`` and its contract) for the
exporters here and for :mod:`emovox.inference`, so it imports no scikit-learn: submodules load on
first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["NeuralClassifier", "ModelCard", "load_card"]

_WHERE = {"NeuralClassifier": "neural", "ModelCard": "directory", "load_card": "directory"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'emovox.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
