"""Training without the rows whose removal the infinitesimal jackknife predicts to narrow a
fairness gap: :class:`InfluenceDrop`, the engine's method ``"FairIJDrop"``."""

from __future__ import annotations

import copy
from typing import Any

import torch

from .._validation import check_nonnegative, msg_expected
from ..weighting import Batch, WeightingStrategy

__all__ = ["InfluenceDrop"]


class InfluenceDrop(WeightingStrategy):
    """ERM without the training rows whose removal is predicted to shrink a fairness gap.

    A logistic model (or any one-logit model) is fitted to convergence on the training split
    with L2 penalty ``l2`` (:func:`fairlib.influence.fit_to_convergence`);
    :func:`fairlib.influence.drop_by_influence` then picks ``round(fraction * N)`` rows whose
    removal is predicted, to first order, to lower the smooth ``metric`` on the meta split
    most (Sattigeri et al. 2022, "Fair Infinitesimal Jackknife", arXiv:2212.06803). Training
    proper gives those rows weight 0 and the others ``N / (N - k)``, so a full pass minimises
    the mean loss of the kept rows, as training on the smaller set would.

    The converged model comes from :meth:`fit_influence_model` (the ``prepare`` hook of the
    registered method ``"FairIJDrop"`` calls it with a fresh model, as JTT's first stage);
    without it, :meth:`setup` fits a copy of the model it is given.

    Parameters
    ----------
    fraction : float, default 0.05
        Share of the training rows to drop, in (0, 1).
    l2 : float, default 1e-3
        L2 penalty of the converged model (set it to the training's weight decay).
    metric : {"equal_opportunity_difference", "demographic_parity_difference"}
        The gap whose smooth version the dropped rows are chosen to lower.

    Attributes
    ----------
    dropped_ : torch.Tensor
        int64 positions of the dropped training rows (most helpful first).
    sample_weights_ : torch.Tensor
        Per-row weights ``[N]``: 0 for a dropped row.
    smooth_before_, predicted_ : torch.Tensor
        0-dim: the smooth metric on the meta split of the converged model, and as predicted
        without the dropped rows (no refit).

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.influence import InfluenceDrop
    >>> from fairlib.train import LogisticRegression
    >>> train, meta, test = make_biased_classification(1000, seed=0).split(seed=0)
    >>> model = LogisticRegression(2, seed=0)
    >>> s = InfluenceDrop(fraction=0.05).setup(train, meta=meta, model=model)
    >>> len(s.dropped_), float(s.sample_weights_.sum()), bool(s.predicted_ < s.smooth_before_)
    (30, 600.0, True)
    """

    requires_meta = True

    def __init__(self, fraction: float = 0.05, *, l2: float = 1e-3,
                 metric: str = "equal_opportunity_difference") -> None:
        self.fraction = fraction
        self.l2 = l2
        self.metric = metric

    def check_params(self) -> InfluenceDrop:
        """``fraction`` in (0, 1), ``l2`` >= 0, ``metric`` one of the smooth metrics."""
        from ._jackknife import METRICS

        f = self.fraction
        if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0.0 < f < 1.0:
            raise ValueError(msg_expected("fraction", "a fraction in (0, 1)", repr(f)))
        check_nonnegative("l2", self.l2)
        if self.metric not in METRICS:
            raise ValueError(msg_expected("metric", f"one of {list(METRICS)}", repr(self.metric)))
        return self

    def fit_influence_model(self, model: torch.nn.Module, train: Any) -> InfluenceDrop:
        """Fit a copy of ``model`` to convergence on ``train`` (the first stage); returns
        ``self``."""
        from ._jackknife import fit_to_convergence

        self.check_params()
        self._influence_model = fit_to_convergence(copy.deepcopy(model), train, l2=float(self.l2))
        return self

    def setup(self, train: Any, *, meta: Any = None, model: Any = None, device: Any = "cpu",
              generator: torch.Generator | None = None) -> InfluenceDrop:
        """Pick the rows to drop with the meta split; build the per-row weights."""
        from ._jackknife import drop_by_influence, smooth_metric

        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        if getattr(self, "_influence_model", None) is None:
            if model is None:
                raise ValueError(msg_expected("model", "a model to fit to convergence (or a call "
                                              "of `fit_influence_model` first)", "None"))
            self.fit_influence_model(model, train)
        stage1 = self._influence_model
        kw = {"metric": self.metric, "l2": float(self.l2)}
        drop = drop_by_influence(stage1, train, meta, fraction=float(self.fraction), **kw)
        n, k = len(train), len(drop.indices)
        weights = torch.full((n,), n / (n - k), dtype=torch.get_default_dtype())
        weights[drop.indices.cpu()] = 0.0
        self.dropped_ = drop.indices.cpu()
        self.sample_weights_ = weights.to(self.device_)
        self.smooth_before_ = smooth_metric(stage1, meta, metric=self.metric).detach().cpu()
        self.predicted_ = drop.predicted_metric.detach().cpu()
        return self

    def weights(self, batch: Batch, losses: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
        """0 on dropped rows, ``N / (N - k)`` on the others."""
        return self.sample_weights_[batch.index].to(losses.dtype)

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """``dropped_rows`` and the predicted smooth metric."""
        return {"dropped_rows": torch.tensor(float(len(self.dropped_))),
                "predicted": self.predicted_}
