"""Group DRO (Sagawa, Koh, Hashimoto, Liang, arXiv 1911.08731): exponentiated group weights.

Each step, with batch group losses ``L_g`` (mean loss of the batch's samples in group
``g``) and the group adjustment ``C / sqrt(n_g)``:

    q_g <- q_g exp(eta_q (L_g + C / sqrt(n_g))),  renormalised,
    loss = sum_g q_g L_g,

with the updated ``q`` (the paper's Algorithm 1 and ``kohpangwei/group_DRO loss.py``).
The loss is obtained through per-sample weights ``w_i = B q_{g_i} / m_{g_i}`` (``B`` the
batch size, ``m_g`` the batch count of group ``g``), so ``mean(w * losses)`` is the
robust loss. The adjustment enters only ``q``: it is constant in the parameters.

**Absent groups (fairlib policy, not the paper's).** A group missing from the batch has no
loss estimate. The reference code gives it loss 0, so it shrinks relative to the others.
Here it is masked out of the update: its ``q_g`` is kept unchanged and the groups present
share their combined mass. Its term is absent from that step's loss, as in the reference.
Groups with no training sample start (and stay) at ``q_g = 0``, with a warning.

Group DRO only helps worst-group accuracy with strong regularisation (``weight_decay``)
or early stopping (the paper's Table 1).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._common import (
    GROUP_MODES,
    GroupsMode,
    cell_codes,
    cell_names,
    check_choice,
    check_number,
    check_train,
    group_means,
    n_cells,
    warn_empty,
)
from .base import Batch, WeightingStrategy

__all__ = ["GroupDRO"]


class GroupDRO(WeightingStrategy):
    """Online group weights by exponentiated gradient ascent on the group losses.

    Parameters
    ----------
    eta_q : float, default 0.01
        Step size of the ``q`` update (``--robust_step_size`` in the reference code). 0
        keeps ``q`` uniform (group-balanced loss).
    adj_C : float, default 0.0
        Group adjustment ``C``: ``L_g + C / sqrt(n_g)`` in the ``q`` update, with ``n_g``
        the training-set size of group ``g`` (``--generalization_adjustment``).
    groups : {"group_label", "group"}, default "group_label"
        The groups: (attribute, label) cells as in the paper's CelebA and Waterbirds
        setups, or the categories of the active attribute.

    Attributes
    ----------
    q_ : torch.Tensor
        Group weights ``[G]`` on the device (sum 1); cell ``2 g + y`` for ``"group_label"``.
    group_counts_ : torch.Tensor
        Training-set size of each group.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, fit
    >>> from fairlib.weighting import GroupDRO
    >>> data = make_biased_classification(400, seed=0)
    >>> dro = GroupDRO(eta_q=0.1)
    >>> hist = fit(LogisticRegression(2, seed=0), data, strategy=dro, epochs=2,
    ...            weight_decay=1e-3, progress=False)
    >>> dro.q_.shape, round(float(dro.q_.sum()), 6)
    (torch.Size([4]), 1.0)
    >>> len(hist.last("group_weights"))
    4
    """

    def __init__(self, eta_q: float = 0.01, *, adj_C: float = 0.0,
                 groups: GroupsMode = "group_label") -> None:
        self.eta_q = eta_q
        self.adj_C = adj_C
        self.groups = groups

    def check_params(self) -> GroupDRO:
        """Validate ``eta_q``, ``adj_C`` and ``groups``."""
        check_number("eta_q", self.eta_q, low=0.0, expected="a non-negative step size")
        check_number("adj_C", self.adj_C, low=0.0, expected="a non-negative adjustment")
        check_choice("groups", self.groups, GROUP_MODES)
        return self

    def setup(self, train: Any, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto",
              generator: torch.Generator | None = None) -> GroupDRO:
        """Validate the arguments; start from uniform ``q`` over the non-empty groups."""
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        check_train(train, "GroupDRO")
        n = n_cells(train.n_groups, self.groups)
        codes = cell_codes(train.y.to(torch.int64), train.group.to(torch.int64), self.groups)
        counts = torch.bincount(codes.cpu(), minlength=n)
        counts = counts.to(self.device_, torch.get_default_dtype())
        warn_empty(counts, cell_names(train, self.groups), "GroupDRO", "their weight q stays 0.")
        self.group_counts_ = counts
        present = counts > 0
        self.q_ = present.to(counts.dtype) / present.sum()
        self._adjustment = torch.where(present, float(self.adj_C) / counts.clamp_min(1).sqrt(),
                                       torch.zeros_like(counts))
        return self

    def _step(self, batch: Batch,
              losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Updated ``q`` (absent groups masked), batch counts and codes; device ops only."""
        codes = cell_codes(batch.y, batch.group, self.groups)
        means, counts = group_means(losses.to(self.q_.dtype), codes, len(self.q_))
        present = counts > 0
        logits = self.q_.log() + self.eta_q * (means + self._adjustment)
        logits = torch.where(present, logits, torch.full_like(logits, -torch.inf))
        mass = (self.q_ * present).sum()
        q = torch.where(present, mass * torch.softmax(logits, dim=0), self.q_)
        return q, counts, codes

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """``w_i = B q_{g_i} / m_{g_i}`` with ``q`` updated on this batch's group losses."""
        q, counts, codes = self._step(batch, losses)
        return (losses.numel() * q / counts.clamp_min(1))[codes].to(losses.dtype)

    def update(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> None:
        """Commit the ``q`` update of this batch (the same one :meth:`weights` used)."""
        self.q_ = self._step(batch, losses)[0]

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """``group_weights``: the current ``q``."""
        return {"group_weights": self.q_}
