"""Training with any weighting strategy: ``fit``, ``evaluate`` and small reference models."""

from .loop import History, evaluate, fit, predict_scores, resolve_device
from .models import MLP, LogisticRegression, SmallCNN
from .two_stage import JTTRun, train_twice

__all__ = ["MLP", "History", "JTTRun", "LogisticRegression", "SmallCNN", "evaluate", "fit", "predict_scores",
           "resolve_device", "train_twice"]
