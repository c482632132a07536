"""Training with any weighting strategy: ``fit``, ``evaluate`` and small reference models."""

from .loop import History, evaluate, fit, predict_scores, resolve_device
from .models import MLP, LogisticRegression, SmallCNN

__all__ = ["MLP", "History", "LogisticRegression", "SmallCNN", "evaluate", "fit", "predict_scores",
           "resolve_device"]
