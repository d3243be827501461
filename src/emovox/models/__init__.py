"""Estimators: the neural classifier (PyTorch, imported lazily) and its helpers.

``from emovox.models import NeuralClassifier`` does not import torch; fitting does.
"""

from .neural import NeuralClassifier

__all__ = ["NeuralClassifier"]
