"""Keep a fraction of the training rows by their weights (data condensation).

One implementation of "the rows with the highest weights", used by
:meth:`fairlib.weighting.FORML.condense` and by the condensation chapter.
"""

from __future__ import annotations

from typing import Any

import torch

from .._validation import check_positive_int

__all__ = ["check_weights", "n_keep", "select_top_weight"]

MSG_FRACTION = "Expected `fraction` to be in (0, 1], but got {got!r}."
MSG_WEIGHTS = (
    "Expected `weights` to be a 1-d tensor of {n} non-negative finite values, but got {got}."
)


def n_keep(n: int, fraction: float) -> int:
    """How many of ``n`` rows a ``fraction`` keeps: ``max(1, round(fraction * n))``.

    Examples
    --------
    >>> from fairlib.weighting import n_keep
    >>> n_keep(1000, 0.05), n_keep(10, 0.01), n_keep(7, 1.0)
    (50, 1, 7)
    """
    n = check_positive_int("n", n)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise ValueError(MSG_FRACTION.format(got=fraction))
    if not 0 < fraction <= 1:
        raise ValueError(MSG_FRACTION.format(got=fraction))
    return max(1, round(fraction * n))


def check_weights(weights: Any) -> torch.Tensor:
    """``weights`` detached, after checking it is a 1-d tensor of non-negative finite values."""
    if not isinstance(weights, torch.Tensor) or weights.ndim != 1 or weights.numel() == 0:
        if isinstance(weights, torch.Tensor):
            got = f"shape {tuple(weights.shape)}"
        else:
            got = type(weights).__name__
        raise ValueError(MSG_WEIGHTS.format(n="N >= 1", got=got))
    w = weights.detach()
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(MSG_WEIGHTS.format(n=w.numel(), got="negative or non-finite entries"))
    return w


def select_top_weight(weights: torch.Tensor, fraction: float) -> torch.Tensor:
    """Sorted positions of the ``fraction`` of rows with the highest weights.

    Ties are broken by the lower position. :meth:`fairlib.weighting.FORML.condense` is this
    rule applied to FORML's learned weights.

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting import select_top_weight
    >>> select_top_weight(torch.tensor([0.5, 2.0, 1.0, 2.0, 0.0]), 0.6).tolist()
    [1, 2, 3]
    """
    w = check_weights(weights)
    k = n_keep(w.numel(), fraction)
    order = torch.sort(w, descending=True, stable=True).indices
    return order[:k].sort().values
