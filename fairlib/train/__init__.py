"""Training with any weighting strategy: ``fit``, ``evaluate`` and small reference models."""

from .loop import History, evaluate, fit, predict_logits, predict_scores, resolve_device, sample_losses
from .models import MLP, LogisticRegression, SmallCNN
from .two_stage import JTTRun, train_twice

__all__ = ["MLP", "History", "JTTRun", "LogisticRegression", "SmallCNN", "evaluate", "fit", "predict_logits",
           "predict_scores", "resolve_device", "sample_losses", "train_twice"]
