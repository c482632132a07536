"""KL-regularised DRO instance weights: ``w = B softmax(loss / tau)`` per batch.

Reconstruction (methods.md §8.1; not published by the DONE authors in accessible form):
``max_{w in simplex} sum_i w_i l_i - tau KL(w || uniform)`` is solved by
``w_i = exp(l_i / tau) / sum_j exp(l_j / tau)``. Multiplied by the batch size the weights
have mean 1; ``tau -> inf`` is ERM, ``tau -> 0`` puts all weight on the largest loss (so a
small ``tau`` lets mislabelled points and outliers dominate).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._common import ESSTracker, check_number
from .base import Batch, WeightingStrategy

__all__ = ["KLDRO"]


class KLDRO(ESSTracker, WeightingStrategy):
    """Per-batch weights proportional to ``exp(loss / tau)``, mean 1.

    Computed with ``torch.softmax`` on the detached losses (stable for any scale).

    Parameters
    ----------
    tau : float, default 1.0
        Temperature > 0 (``math.inf`` gives ERM).

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting import KLDRO
    >>> kl = KLDRO(tau=1.0).setup(None)
    >>> kl.weights(None, torch.log(torch.tensor([1.0, 3.0])), None)
    tensor([0.5000, 1.5000])
    """

    def __init__(self, tau: float = 1.0) -> None:
        self.tau = tau

    def check_params(self) -> KLDRO:
        """Validate ``tau``."""
        check_number("tau", self.tau, low=0.0, low_open=True, allow_inf=True,
                     expected="a positive temperature")
        return self

    def setup(self, train: Any = None, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto",
              generator: torch.Generator | None = None) -> KLDRO:
        """Validate ``tau``."""
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        self._reset_ess(self.device_)
        return self

    def weights(self, batch: Batch | None, losses: torch.Tensor,
                model: nn.Module | None) -> torch.Tensor:
        """``B softmax(losses / tau)``."""
        return losses.numel() * torch.softmax(losses.detach() / float(self.tau), dim=0)

    def update(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> None:
        """Track the effective sample size of this batch's weights."""
        self._track_ess(self.weights(batch, losses, model))

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Close the epoch's ESS average."""
        self._close_ess_epoch()

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """``ess_fraction``: mean ``ESS / B`` of the epoch's batch weights."""
        return {"ess_fraction": self._ess_epoch}
