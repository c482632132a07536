"""Loss-based sample reweighting (Sow et al., ICLR 2025): ``w = B softmax(f(h) / r)`` per batch.

From the reference code (``sowmaster/Sample-Level-Loss-Reweighting-ICLR-2025``,
``src/trainer.py``; methods.md §8.2): the batch losses are mapped linearly onto
``[-delta, delta]``,

    h_i = delta (2 l_i - l_max - l_min) / max(l_max - l_min, 1e-6),

shaped by ``f`` and turned into weights by a softmax at temperature ``r`` (the reference's
``kl_reg``). The shapes (reference names in brackets):

================  =========================  ==============================================
``shape``         ``f(h)``                   emphasises
================  =========================  ==============================================
``"linupper"``    ``min(h + delta, delta)``  every loss above the batch midpoint equally
``"quadratic"``   ``1 - h^2 / delta^2``      medium losses (``"mid"``)
``"extremes"``    ``|h|``                    the lowest and the highest losses
``"upper"``       ``h / 2 + delta / 2``      high losses, linearly
================  =========================  ==============================================

Adaptations: the weights are multiplied by the batch size so they have mean 1 (the
reference multiplies the weighted sum by the batch size instead: the same loss); the
losses are this batch's, not all-gathered over GPUs; the reference weighs each sequence
by its token count first, which has no counterpart for one label per row. The range is
floored at 1e-6 as in the reference, so equal losses (a batch of one, a fitted batch) give
``h = 0`` and uniform weights instead of ``0 / 0``.

Note that only ``delta / r`` matters for ``"linupper"``, ``"extremes"`` and ``"upper"``
(``f`` is linear in ``delta`` there), and ``"quadratic"`` does not depend on ``delta`` at all.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from .._validation import _is_int, msg_expected
from ._common import ESSTracker, check_choice, check_number
from .base import Batch, WeightingStrategy

__all__ = ["LossShaping"]

Shape = Literal["linupper", "quadratic", "extremes", "upper"]
SHAPES = ("linupper", "quadratic", "extremes", "upper")
#: The reference's floor on ``l_max - l_min``: equal losses map to ``h = 0``.
_MIN_RANGE = 1e-6


class LossShaping(ESSTracker, WeightingStrategy):
    """Per-batch weights ``B softmax(f(h) / r)`` of the losses mapped to ``[-delta, delta]``.

    Sow et al., "Dynamic Loss-Based Sample Reweighting for Improved Large Language Model
    Pretraining", ICLR 2025 (arXiv 2502.06733). See the module docstring for ``h``, the
    shapes and the adaptations. The weights have mean 1 over each batch, depend on the
    losses only through their ranks in the batch's range (so not on the loss scale), and
    are uniform during the first ``burn_in_steps`` optimiser steps and whenever all losses
    of a batch are equal.

    Parameters
    ----------
    shape : {"linupper", "quadratic", "extremes", "upper"}, default "linupper"
        The shaping function ``f`` (``"quadratic"`` is the reference's ``"mid"``).
    r : float, default 1.0
        Temperature > 0 of the softmax (the reference's ``kl_reg``); ``math.inf`` gives
        uniform weights (ERM), a small ``r`` puts the weight on the rows ``f`` favours.
    delta : float, default 1.0
        Half-width > 0 of the normalised range (the reference fixes it at 1).
    burn_in_steps : int, default 0
        Optimiser steps with uniform weights before the reweighting starts (the
        reference's ``burnout_steps``, 1000 in its configs).

    Attributes
    ----------
    steps_done_ : int
        Optimiser steps seen (counted by ``update``).

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting import LossShaping
    >>> losses = torch.tensor([0.0, 1.0, 2.0, 4.0])  # h = [-1, -0.5, 0, 1]
    >>> LossShaping("upper").setup(None).weights(None, losses, None)
    tensor([0.6014, 0.7722, 0.9916, 1.6348])
    >>> LossShaping("quadratic", r=float("inf")).setup(None).weights(None, losses, None)
    tensor([1., 1., 1., 1.])
    >>> LossShaping("extremes", burn_in_steps=10).setup(None).weights(None, losses, None)
    tensor([1., 1., 1., 1.])

    Trained like any strategy:

    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, fit
    >>> data = make_biased_classification(400, seed=0)
    >>> hist = fit(LogisticRegression(2, seed=0), data, strategy=LossShaping("linupper"),
    ...            epochs=2, progress=False)
    >>> 0.0 < hist.last("ess_fraction") <= 1.0
    True
    """

    def __init__(self, shape: Shape = "linupper", *, r: float = 1.0, delta: float = 1.0,
                 burn_in_steps: int = 0) -> None:
        self.shape = shape
        self.r = r
        self.delta = delta
        self.burn_in_steps = burn_in_steps

    def check_params(self) -> LossShaping:
        """Validate ``shape``, ``r``, ``delta`` and ``burn_in_steps``."""
        check_choice("shape", self.shape, SHAPES)
        check_number("r", self.r, low=0.0, low_open=True, allow_inf=True,
                     expected="a positive temperature (math.inf for uniform weights)")
        check_number("delta", self.delta, low=0.0, low_open=True,
                     expected="a finite positive half-width")
        if not _is_int(self.burn_in_steps) or self.burn_in_steps < 0:
            raise ValueError(msg_expected("burn_in_steps", "a non-negative integer",
                                          repr(self.burn_in_steps)))
        return self

    def setup(self, train: Any = None, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto",
              generator: torch.Generator | None = None) -> LossShaping:
        """Validate the parameters; reset the step count and the ESS average."""
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        self._reset_ess(self.device_)
        self.steps_done_ = 0
        return self

    def shaped(self, losses: torch.Tensor) -> torch.Tensor:
        """``f(h)`` of the batch losses (device ops only)."""
        l = losses.detach()
        d = float(self.delta)
        lo, hi = l.amin(), l.amax()
        h = d * (2 * l - hi - lo) / (hi - lo).clamp_min(_MIN_RANGE)
        if self.shape == "linupper":
            return torch.clamp(h + d, max=d)
        if self.shape == "quadratic":
            return 1 - (h / d) ** 2
        if self.shape == "extremes":
            return h.abs()
        return 0.5 * h + 0.5 * d

    def weights(self, batch: Batch | None, losses: torch.Tensor,
                model: nn.Module | None) -> torch.Tensor:
        """``B softmax(f(h) / r)``; ones during burn-in."""
        if self.steps_done_ < self.burn_in_steps:
            return torch.ones_like(losses.detach())
        f = self.shaped(losses)
        # exp / mean rather than B * softmax: equal f (equal losses, r = inf) gives exactly 1
        e = torch.exp((f - f.amax()) / float(self.r))
        return e / e.mean()

    def update(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> None:
        """Track the ESS of this batch's weights; count the step."""
        self._track_ess(self.weights(batch, losses, model))
        self.steps_done_ += 1

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Close the epoch's ESS average."""
        self._close_ess_epoch()

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """``ess_fraction``: mean ``ESS / B`` of the epoch's batch weights."""
        return {"ess_fraction": self._ess_epoch}
