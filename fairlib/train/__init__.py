"""Training with any weighting strategy: ``fit``, ``evaluate``, inference helpers
(``predict_logits``, ``predict_scores``, ``sample_losses``, ``per_sample_grads``) and small
reference models."""

from .._inference import per_sample_grads
from .loop import History, evaluate, fit, predict_logits, predict_scores, resolve_device, sample_losses
from .models import MLP, LogisticRegression, SmallCNN
from .two_stage import JTTRun, train_twice

__all__ = ["MLP", "History", "JTTRun", "LogisticRegression", "SmallCNN", "evaluate", "fit", "per_sample_grads",
           "predict_logits", "predict_scores", "resolve_device", "sample_losses", "train_twice"]
