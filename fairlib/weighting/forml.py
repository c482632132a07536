"""FORML: persistent per-sample weights learned by meta-learning (a reconstruction).

FORML (Yan, Seto, Apostoloff, arXiv 2202.01719) learns one weight per training sample
jointly with the network, against a held-out set that represents the distribution
under which fairness is wanted. Its exact algorithm, defaults and numbers are not
publicly available in accessible form. **This class is a reconstruction** consistent
with the paper's abstract and built on L2RW (reference/methods.md §1.3); its defaults
are fairlib's own, not the authors'.

Each step, for the batch's samples ``I`` with current weights ``w_I``:

1. ``wbar = normalise(w_I)``; lookahead ``theta_hat = theta - alpha * grad sum_i wbar_i l_i``;
2. meta-gradient ``g = d L_meta(theta_hat) / d w_I`` on a held-out batch;
3. ``w_I <- clamp(w_I - beta * |I| * g, 0, w_max)``, stored back in the per-sample table;
4. the optimiser steps on ``sum_i wbar_i l_i`` with the updated weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._validation import check_choice, check_finite_positive, check_number, msg_expected
from . import _last_layer
from . import _lookahead as la
from ._common import safe_total, scalar
from .base import Batch, WeightingStrategy
from .condense import select_top_weight

NORMALIZE = ("batch", "global_mean", "none")


class FORML(WeightingStrategy):
    """Fairness-optimised reweighting via meta-learning (reconstruction; see module docs).

    Parameters
    ----------
    meta_objective : str, default "group_balanced"
        ``"group_balanced"`` (mean over (group, label) cells of the cell loss),
        ``"worst_group"``, ``"eo_gap"`` (smooth equal-opportunity gap added to the
        group-balanced loss), ``"dp_gap"`` or ``"mean"``.
    meta_lr : float, default 1.0
        Step size ``beta`` of the weight update ``w <- w - beta * B * dL/dw``; the
        gradient is scaled by the batch size ``B`` so that the step does not shrink
        with larger batches (with batch-sum normalisation dL/dw is O(1/B)).
    lookahead_lr : float, default 0.1
        Step size ``alpha`` of the SGD lookahead.
    normalize : {"batch", "global_mean", "none"}
        How weights enter the loss: divided by their batch sum, by the mean of all
        weights (held fixed within the step), or used as they are (divided by the
        batch size).
    init : float, default 1.0
        Initial weight of every sample.
    clamp : (float, float or None), default (0.0, None)
        Bounds of the weights after each update.
    meta_batch_size : int, optional
        Held-out rows per step; default as many as the training batch.
    stratified : bool, default True
        Draw held-out batches stratified by the (group, label) cells of the held-out set.
        It only decides how held-out rows are drawn, not which cells a weight or the
        meta-objective uses (those are fixed by ``meta_objective``), so it stays a switch
        rather than a ``groups=`` choice.
    method : {"auto", "double_backward", "per_example", "last_layer"}
        Double backward, or the exact closed form with per-example gradients (for
        models without BatchNorm or dropout). ``"auto"`` takes double backward, which
        reuses the training loop's forward pass and measured faster. ``"last_layer"``:
        the lookahead moves only the final linear layer and the closed form is computed
        from its inputs and output errors (no second backward pass; close to ERM's
        cost; exact for logistic regression, an approximation otherwise). It needs a
        model with ``split_final()``, as the models of :mod:`fairlib.train` have.
    gap_weight : float, default 1.0
        Weight of the gap term of ``"eo_gap"``/``"dp_gap"``.

    Attributes
    ----------
    weights_ : torch.Tensor
        The per-sample weights ``[N]`` (indexed by the dataset's ``index``).
    history_ : list of torch.Tensor
        A copy of ``weights_`` at the end of every epoch.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, fit
    >>> from fairlib.weighting import FORML
    >>> data = make_biased_classification(300, seed=0)
    >>> meta = make_biased_classification(80, seed=1)
    >>> forml = FORML()
    >>> _ = fit(LogisticRegression(2, seed=0), data, strategy=forml, meta=meta, epochs=2, progress=False)
    >>> forml.weights_.shape, len(forml.history_), bool((forml.weights_ >= 0).all())
    (torch.Size([300]), 2, True)
    >>> len(forml.condense(0.5))
    150
    """

    requires_meta = True

    def __init__(self, meta_objective: str = "group_balanced", *, meta_lr: float = 1.0,
                 lookahead_lr: float = 0.1, normalize: str = "batch", init: float = 1.0,
                 clamp: tuple[float, float | None] = (0.0, None), meta_batch_size: int | None = None,
                 stratified: bool = True, method: str = "auto", gap_weight: float = 1.0) -> None:
        self.meta_objective = meta_objective
        self.meta_lr = meta_lr
        self.lookahead_lr = lookahead_lr
        self.normalize = normalize
        self.init = init
        self.clamp = clamp
        self.meta_batch_size = meta_batch_size
        self.stratified = stratified
        self.method = method
        self.gap_weight = gap_weight

    # -- set-up -----------------------------------------------------------------
    def check_params(self) -> FORML:
        """Validate every hyper-parameter (finite step sizes and weights, choices, bounds)."""
        la.check_meta_params(self)
        for name in ("meta_lr", "lookahead_lr", "init"):
            check_finite_positive(name, getattr(self, name))
        check_choice("normalize", self.normalize, NORMALIZE)
        clamp_expected = "(low >= 0, high > low or None)"
        if not isinstance(self.clamp, (tuple, list)) or len(self.clamp) != 2:
            raise ValueError(msg_expected("clamp", clamp_expected, repr(self.clamp)))
        low, high = self.clamp
        try:
            check_number("clamp", low, low=0.0)
            if high is not None:
                check_number("clamp", high, low=float(low), low_open=True, allow_inf=True)
        except ValueError:
            raise ValueError(msg_expected("clamp", clamp_expected, repr(self.clamp))) from None
        return self

    def setup(self, train: Any, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto", generator: torch.Generator | None = None) -> FORML:
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        la.setup_meta(self, train, meta, model, generator)
        self.weights_ = torch.full((len(train),), float(self.init), device=self.device_)
        self.groups_ = train.group.to(self.device_)
        self.n_groups_ = train.n_groups
        self.history_: list[torch.Tensor] = []
        return self

    # -- per step ---------------------------------------------------------------
    def _scale(self, w: torch.Tensor, safe: torch.Tensor | None = None) -> torch.Tensor:
        """``wbar``: how the weights enter the lookahead loss ``sum_i wbar_i l_i``
        (``safe``: :func:`safe_total`'s divisor of ``w`` when already computed)."""
        if self.normalize == "batch":
            return w / (safe_total(w)[1] if safe is None else safe)
        if self.normalize == "global_mean":
            return w / (self.weights_.mean().detach() * len(w))
        return w / len(w)

    def meta_gradient(self, batch: Batch, model: nn.Module, w: torch.Tensor,
                      losses: torch.Tensor | None = None) -> torch.Tensor:
        """``d L_meta(theta_hat) / d w`` for the batch's weights ``w`` (``losses``: the
        loop's attached batch losses, reused by the double-backward path)."""
        meta = self.meta_batches_.draw(len(batch.y))
        if self.path_ == "double_backward":
            return la.lookahead_weight_grad(model, batch.x, batch.y, self._scale, w, meta,
                                            self.objective_, self.lookahead_lr, losses)
        safe = safe_total(w)[1] if self.normalize == "batch" else None
        if self.path_ == "last_layer":
            wbar = self._scale(w, safe)
            big_g = _last_layer.forml_big_g(la.last_layer(self, model), batch.x, batch.y, wbar,
                                            meta, self.meta_objective, self.objective_,
                                            self.lookahead_lr, self.meta_batches_.fixed_cells)
        else:
            g, params, buffers = la.per_example_grads(model, batch.x, batch.y)
            wbar = self._scale(w, safe)
            flat = torch.cat([p.flatten() for p in params.values()])
            ahead = la.unflatten(flat - self.lookahead_lr * (wbar @ g), params)
            m = la.meta_param_grad(model, ahead, buffers, meta, self.objective_)
            big_g = -self.lookahead_lr * (g @ m)  # G_i of methods.md §1.3
        if self.normalize == "batch":
            return (big_g - (wbar * big_g).sum()) / safe
        if self.normalize == "global_mean":
            return big_g / (self.weights_.mean().detach() * len(w))
        return big_g / len(w)

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """Update the batch's persistent weights by one meta step; return the step weights."""
        w = self.weights_.index_select(0, batch.index)
        grad_w = self.meta_gradient(batch, model, w, losses).detach()
        low, high = self.clamp
        new = w - scalar(self.meta_lr * len(w), w) * grad_w
        new = new.clamp(min=scalar(low, w), max=None if high is None else scalar(high, w))
        self.weights_.index_copy_(0, batch.index, new)
        positive, safe = safe_total(new)
        step = self._scale(new, safe) * scalar(len(new), new)  # the loop minimises mean(step * loss)
        # Weight collapse (every weight of the batch clamped to 0): fall back to uniform.
        return torch.where(positive, step, scalar(1.0, step))

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Keep a copy of the weights for trajectory plots (and leave the model without the
        hooks of ``method="last_layer"``)."""
        self.history_.append(self.weights_.detach().clone())
        la.end_epoch(self)

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """Mean weight per group, and the share of samples at weight 0."""
        sums = torch.zeros(self.n_groups_, device=self.device_).index_add_(0, self.groups_, self.weights_)
        counts = torch.zeros(self.n_groups_, device=self.device_).index_add_(
            0, self.groups_, torch.ones_like(self.weights_))
        return {"group_weight": sums / counts.clamp(min=1), "weight_zero_share": (self.weights_ == 0).float().mean()}

    # -- after training -----------------------------------------------------------
    def condense(self, fraction: float) -> torch.Tensor:
        """Indices of the ``fraction`` of training samples with the highest weights.

        :func:`fairlib.weighting.select_top_weight` on the learned weights: ties are
        broken by the lower index, so the result is deterministic.
        """
        if not hasattr(self, "weights_"):
            raise ValueError("Expected a trained FORML (call fit first), but `weights_` is not set.")
        return select_top_weight(self.weights_.detach().cpu(), fraction)
