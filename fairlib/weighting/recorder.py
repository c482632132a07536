"""Record the weights a per-batch strategy gives each training sample over training."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from .base import ERM, Batch, WeightingStrategy

__all__ = ["StepWeightRecorder"]


class StepWeightRecorder(WeightingStrategy):
    """Wrap a strategy and record, per training sample, the step weights it was given.

    Per-batch methods such as :class:`~fairlib.weighting.L2RW` compute fresh weights at
    every step and keep none; this wrapper adds them up per sample index (the dataset's
    ``index``) so that every sample ends up with one score: its mean step weight over
    training. Everything else (sampler, state updates, diagnostics) is delegated, and the
    weights returned to the training loop are the wrapped strategy's, unchanged.

    Parameters
    ----------
    strategy : WeightingStrategy, optional
        The strategy to record (default: :class:`~fairlib.weighting.ERM`).

    Attributes
    ----------
    weight_sum_ : torch.Tensor
        Sum of the step weights each sample received ``[N]``.
    count_ : torch.Tensor
        Number of steps each sample took part in ``[N]``.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.weighting import StepWeightRecorder
    >>> from fairlib.train import LogisticRegression, fit
    >>> from fairlib.weighting import L2RW
    >>> data = make_biased_classification(200, seed=0)
    >>> meta = make_biased_classification(60, seed=1)
    >>> rec = StepWeightRecorder(L2RW())
    >>> _ = fit(LogisticRegression(2, seed=0), data, strategy=rec, meta=meta, epochs=2,
    ...         batch_size=50, progress=False)
    >>> rec.count_.unique().tolist(), rec.mean_weights().shape
    ([2.0], torch.Size([200]))
    """

    def __init__(self, strategy: WeightingStrategy | None = None) -> None:
        self.strategy = strategy

    @property
    def requires_meta(self) -> bool:  # type: ignore[override]
        """Whether the wrapped strategy needs a held-out set."""
        return bool(getattr(self.strategy, "requires_meta", False))

    def _inner(self) -> WeightingStrategy:
        # ``strategy`` itself once set up (its state is saved with this recorder's), or ERM.
        if not hasattr(self, "_strategy"):
            raise ValueError("Expected a set-up recorder (call fit first), but it was never set up.")
        return self._strategy

    def check_params(self) -> StepWeightRecorder:
        """Check ``strategy`` is a strategy (or None) and validate its parameters."""
        if self.strategy is not None and not isinstance(self.strategy, WeightingStrategy):
            raise TypeError("Expected `strategy` to be a WeightingStrategy or None, "
                            f"but got {type(self.strategy).__name__}.")
        if self.strategy is not None:
            self.strategy.check_params()
        return self

    def setup(self, train: Any, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto",
              generator: torch.Generator | None = None) -> StepWeightRecorder:
        """Set up the wrapped strategy and zero the per-sample records."""
        self.check_params()
        self._strategy = self.strategy if self.strategy is not None else ERM()
        self._strategy.setup(train, meta=meta, model=model, device=device, generator=generator)
        self.device_ = self._strategy.device_  # "auto" resolved by the wrapped strategy
        self.weight_sum_ = torch.zeros(len(train), dtype=torch.float64, device=self.device_)
        self.count_ = torch.zeros(len(train), dtype=torch.float64, device=self.device_)
        return self

    def sampler(self) -> torch.utils.data.Sampler | None:
        """The wrapped strategy's sampler."""
        return self._inner().sampler()

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """The wrapped strategy's weights, recorded per sample index."""
        w = self._inner().weights(batch, losses, model)
        self.weight_sum_.index_add_(0, batch.index, w.detach().to(torch.float64))
        self.count_.index_add_(0, batch.index, torch.ones_like(w, dtype=torch.float64))
        return w

    def update(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> None:
        """Delegate the state update."""
        self._inner().update(batch, losses, model)

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Delegate the per-epoch hook."""
        self._inner().on_epoch_end(epoch, model)

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """The wrapped strategy's diagnostics."""
        return self._inner().diagnostics()

    def mean_weights(self) -> torch.Tensor:
        """Mean step weight per sample ``[N]``; NaN for samples never drawn (with a warning)."""
        if not hasattr(self, "count_"):
            raise ValueError(
                "Expected a trained recorder (call fit first), but `count_` is not set.")
        seen = self.count_ > 0
        if not bool(seen.all()):
            warnings.warn(f"StepWeightRecorder: {int((~seen).sum())} samples were never drawn; "
                          "their mean weight is NaN.", UserWarning, stacklevel=2)
        return torch.where(seen, self.weight_sum_ / self.count_.clamp(min=1), math.nan)
