"""Learning to Reweight Examples (L2RW; Ren et al., ICML 2018, arXiv 1803.09050)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import _last_layer
from . import _lookahead as la
from ._common import safe_total, scalar
from .base import Batch, WeightingStrategy

__all__ = ["L2RW"]


class L2RW(WeightingStrategy):
    """Per-step weights from a one-step lookahead evaluated at zero weights.

    Each step: take the gradient of the held-out objective after one SGD step on
    ``sum_i eps_i l_i`` with respect to ``eps`` at ``eps = 0``, keep its negative part
    (``w_i = max(-dL/deps_i, 0)``) and normalise to sum 1 (all-zero stays zero, as in the
    paper). The loop minimises ``mean(w * loss)``, so the returned weights are scaled
    by the batch size. The lookahead step size cancels in the normalisation.

    Parameters
    ----------
    meta_batch_size : int, optional
        Held-out rows per step; default as many as the training batch (the whole
        held-out set if it is smaller).
    meta_objective : str, default "mean"
        ``"mean"`` cross-entropy as in the paper, or any objective of
        :func:`fairlib.weighting.meta_objectives.meta_loss`.
    method : {"auto", "double_backward", "per_example", "last_layer"}
        Double backward through ``torch.func.functional_call``, or the exact identity
        ``-dL/deps_i = alpha <grad l_i, grad L_meta>`` with per-example gradients
        (exact for models without BatchNorm or dropout). ``"auto"`` takes double
        backward, which reuses the training loop's forward pass and measured faster.
        ``"last_layer"`` takes the identity over the final linear layer only, in closed
        form from its inputs and the output errors (no second backward pass; close to
        ERM's cost; exact for logistic regression, an approximation otherwise). It needs
        a model with ``split_final()``, as the models of :mod:`fairlib.train` have.
    stratified : bool, default True
        Draw held-out batches stratified by the (group, label) cells of the held-out set.
        It only decides how held-out rows are drawn, not which cells a weight or the
        meta-objective uses (those are fixed by ``meta_objective``), so it stays a switch
        rather than a ``groups=`` choice.
    gap_weight : float, default 1.0
        Weight of the fairness gap in ``"eo_gap"``/``"dp_gap"`` objectives.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, fit
    >>> from fairlib.weighting import L2RW
    >>> data = make_biased_classification(300, seed=0)
    >>> meta = make_biased_classification(60, seed=1)
    >>> hist = fit(LogisticRegression(2, seed=0), data, strategy=L2RW(), meta=meta, epochs=1, progress=False)
    >>> "weight_mean" in hist.frame
    True
    """

    requires_meta = True

    def __init__(self, meta_batch_size: int | None = None, *, meta_objective: str = "mean",
                 method: str = "auto", stratified: bool = True, gap_weight: float = 1.0) -> None:
        self.meta_batch_size = meta_batch_size
        self.meta_objective = meta_objective
        self.method = method
        self.stratified = stratified
        self.gap_weight = gap_weight

    def check_params(self) -> L2RW:
        """Validate the held-out batch size, objective, method and ``gap_weight``."""
        la.check_meta_params(self)
        return self

    def setup(self, train: Any, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto", generator: torch.Generator | None = None) -> L2RW:
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        la.setup_meta(self, train, meta, model, generator)
        self.last_weights_ = torch.zeros(0, device=self.device_)
        return self

    def raw_scores(self, batch: Batch, model: nn.Module, losses: torch.Tensor | None = None) -> torch.Tensor:
        """``-dL_meta/deps`` at ``eps = 0`` for each sample of the batch (before the ReLU).

        ``losses``: the loop's attached batch losses, reused by the double-backward path.
        """
        meta = self.meta_batches_.draw(len(batch.y))
        if self.path_ == "last_layer":
            return _last_layer.l2rw_scores(la.last_layer(self, model), batch.x, batch.y, meta,
                                           self.meta_objective, self.objective_,
                                           self.meta_batches_.fixed_cells)
        if self.path_ == "per_example":
            g, params, buffers = la.per_example_grads(model, batch.x, batch.y)
            m = la.meta_param_grad(model, params, buffers, meta, self.objective_)
            return g @ m
        zeros = torch.zeros(len(batch.y), dtype=batch.x.dtype if batch.x.is_floating_point() else torch.float32,
                            device=batch.x.device)
        return -la.lookahead_weight_grad(model, batch.x, batch.y, lambda e: e, zeros, meta, self.objective_, 1.0,
                                         losses)

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """Normalised ReLU of the meta-gradient, scaled so that the weights average 1."""
        w = self.raw_scores(batch, model, losses).detach().clamp_min(0)
        w = w / safe_total(w)[1] * scalar(len(w), w)
        self.last_weights_ = w
        return w

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Leave the model without the hooks of ``method="last_layer"``."""
        la.end_epoch(self)

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """Mean step weight and the share of zero weights in the last batch."""
        w = self.last_weights_
        if w.numel() == 0:
            return {}
        return {"weight_mean": w.mean(), "weight_zero_share": (w == 0).float().mean()}
