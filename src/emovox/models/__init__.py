"""Models: estimators (the neural classifier, classical pipelines) and model directories.

``from emovox.models import NeuralClassifier`` does not import torch; fitting does.
:mod:`emovox.models.directory` reads a model directory (``model.json`` and its contract) for the
exporters here and for :mod:`emovox.inference`, so it imports no scikit-learn: submodules load on
first use.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

__all__ = ["NeuralClassifier", "ModelCard", "load_card"]

_WHERE = {"NeuralClassifier": "neural", "ModelCard": "directory", "load_card": "directory"}


__getattr__, __dir__ = lazy_attributes(__name__, _WHERE)
