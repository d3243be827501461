"""Inference: the one prediction path (numpy + ONNX Runtime) that every emovox interface uses.

``Predictor.load()`` opens the shipped model (SHA-256 checked); ``Predictor.predict(audio)``
gives a :class:`Prediction` for a clip; :func:`analyze` turns a long recording into a timeline of
per-segment emotions and a summary. A model directory is read by :mod:`emovox.models.directory`
(``ModelCard``, ``load_card`` and ``default_model_dir`` are re-exported here). Submodules load on
first use, so importing this is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Predictor", "Prediction", "NO_SPEECH",
    "analyze", "Analysis",
    "ModelCard", "load_card", "default_model_dir",
    "FrameVAD", "speech_mask", "speech_ratio",
]

_WHERE = {
    "Predictor": "predictor", "Prediction": "predictor", "NO_SPEECH": "predictor",
    "analyze": "analysis", "Analysis": "analysis",
    "ModelCard": "..models.directory", "load_card": "..models.directory", "default_model_dir": "..models.directory",
    "FrameVAD": "vad", "speech_mask": "vad", "speech_ratio": "vad",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        where = _WHERE[name]
        return getattr(importlib.import_module(where if where.startswith("..") else f".{where}", __name__), name)
    raise AttributeError(f"module 'emovox.inference' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
