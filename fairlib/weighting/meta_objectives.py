"""Differentiable meta-objectives evaluated on a held-out batch.

Every objective takes logits ``[M]``, labels ``[M]`` (0/1) and group codes ``[M]`` with
a fixed number of groups, and returns a scalar. Cells are (group, label) pairs; cells
absent from the batch are masked out and the average renormalised over the cells
present (never treated as zero). Nothing here reads from the host.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._validation import check_nonnegative

OBJECTIVES = ("mean", "group_balanced", "worst_group", "eo_gap", "dp_gap")


def _cell_means(values: torch.Tensor, cells: torch.Tensor, n_cells: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``values`` per cell and a mask of the cells present."""
    # not F.one_hot: it reads the largest code back to the host to check it
    one_hot = (cells[:, None] == torch.arange(n_cells, device=cells.device)).to(values.dtype)  # [M, C]
    counts = one_hot.sum(0)
    sums = values @ one_hot
    present = counts > 0
    return sums / counts.clamp(min=1), present


def _spread(values: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """max - min over the present entries (0 when fewer than two are present)."""
    big = torch.finfo(values.dtype).max
    hi = torch.where(present, values, -big).amax()
    lo = torch.where(present, values, big).amin()
    return torch.where(present.sum() >= 2, hi - lo, torch.zeros_like(hi))


def meta_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    group: torch.Tensor,
    n_groups: int,
    objective: str = "group_balanced",
    gap_weight: float = 1.0,
) -> torch.Tensor:
    """The meta-objective ``objective`` on one held-out batch.

    * ``"mean"``: mean cross-entropy (L2RW's clean-validation loss);
    * ``"group_balanced"``: mean over (group, label) cells of the cell's mean cross-entropy;
    * ``"worst_group"``: the largest cell mean cross-entropy;
    * ``"eo_gap"``: group-balanced cross-entropy plus ``gap_weight`` times the spread of
      the smooth true positive rate ``mean sigmoid(logit)`` over groups among positives;
    * ``"dp_gap"``: the same with the smooth selection rate over all rows of a group.

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting.meta_objectives import meta_loss
    >>> logits = torch.tensor([2.0, -1.0, 0.5, 0.0])
    >>> y, g = torch.tensor([1, 0, 1, 0]), torch.tensor([0, 0, 1, 1])
    >>> round(float(meta_loss(logits, y, g, 2, "mean")), 4)
    0.4019
    """
    ce = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")
    if objective == "mean":
        return ce.mean()
    cells = group * 2 + y
    cell_ce, present = _cell_means(ce, cells, 2 * n_groups)
    balanced = (cell_ce * present).sum() / present.sum().clamp(min=1)
    if objective == "group_balanced":
        return balanced
    if objective == "worst_group":
        return torch.where(present, cell_ce, torch.full_like(cell_ce, -1.0)).amax()
    prob = torch.sigmoid(logits)
    if objective == "eo_gap":
        rate, seen = _cell_means(prob, cells, 2 * n_groups)
        gap = _spread(rate[1::2], seen[1::2])  # cells with y = 1
    elif objective == "dp_gap":
        rate, seen = _cell_means(prob, group, n_groups)
        gap = _spread(rate, seen)
    else:
        raise ValueError(f"Expected `objective` to be one of {', '.join(map(repr, OBJECTIVES))}, but got {objective!r}.")
    return balanced + gap_weight * gap


def objective_fn(objective: str, n_groups: int, gap_weight: float = 1.0) -> Callable[..., torch.Tensor]:
    """``f(logits, y, group)`` for one objective (validated here, once)."""
    if objective not in OBJECTIVES:
        raise ValueError(
            f"Expected `meta_objective` to be one of {', '.join(map(repr, OBJECTIVES))}, but got {objective!r}."
        )
    check_nonnegative("gap_weight", gap_weight)

    def f(logits: torch.Tensor, y: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        return meta_loss(logits, y, group, n_groups, objective, gap_weight)

    return f
