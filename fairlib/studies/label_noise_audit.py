"""Audit how well per-sample scores pick out corrupted labels.

Written for chapter 5, *Corrupted labels* (``notebooks/05_corrupted_labels.ipynb``).

When labels were flipped on purpose (:func:`fairlib.datasets.corrupt_labels` returns the
mask of flipped rows), any per-sample score can be read as a detector: flag the
``fraction`` of training rows with the most suspicious scores and compare the flags with
the mask. *Precision* is the share of flagged rows that were flipped, *recall* the share
of flipped rows that were flagged; a detector that flags rows at random has precision
equal to the share of flipped rows (the *prevalence*) and recall equal to ``fraction``.

Scores used in the book: learned FORML weights (low is suspicious), the mean step weight
a per-batch method such as L2RW gave each sample (recorded by :class:`fairlib.weighting.StepWeightRecorder`;
low is suspicious), and the training loss of a plain model on the observed labels
(:func:`fairlib.train.sample_losses`; high is suspicious).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Literal

import pandas as pd
import torch


__all__ = [
    "detection_curve",
    "detection_rates",
    "flag_most_suspicious",
]

MSG_FRACTION = "Expected `fraction` to be in (0, 1], but got {got!r}."
MSG_SUSPICIOUS = "Expected `suspicious` to be 'low' or 'high', but got {got!r}."
MSG_SHAPES = "Expected `{a}` and `{b}` to have the same shape [N], but got {sa} and {sb}."
MSG_NOT_1D = "Expected `{name}` to be a 1-d tensor [N], but got shape {shape}."


def _check_1d(name: str, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, but got {type(x).__name__}.")
    if x.ndim != 1:
        raise ValueError(MSG_NOT_1D.format(name=name, shape=tuple(x.shape)))
    return x


def _check_pair(a: str, x: torch.Tensor, b: str, y: torch.Tensor) -> None:
    _check_1d(a, x)
    _check_1d(b, y)
    if x.shape != y.shape:
        raise ValueError(MSG_SHAPES.format(a=a, b=b, sa=tuple(x.shape), sb=tuple(y.shape)))


def flag_most_suspicious(scores: torch.Tensor, fraction: float, *,
                         suspicious: Literal["low", "high"] = "low") -> torch.Tensor:
    """Bool mask of the ``fraction`` of rows with the most suspicious scores.

    ``k = max(1, round(fraction * N))`` rows are flagged. Ties are broken by the lower
    index, so the result is deterministic. NaN scores are never flagged before finite ones.

    Parameters
    ----------
    scores : torch.Tensor
        One score per row ``[N]``.
    fraction : float
        Share of rows to flag, in ``(0, 1]``.
    suspicious : {"low", "high"}
        Whether low scores (weights) or high scores (losses) are suspicious.

    Returns
    -------
    torch.Tensor
        Bool ``[N]`` on the device of ``scores``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.label_noise_audit import flag_most_suspicious
    >>> w = torch.tensor([1.0, 0.2, 1.3, 0.2, 0.9])
    >>> flag_most_suspicious(w, 0.4).tolist()
    [False, True, False, True, False]
    >>> flag_most_suspicious(w, 0.2, suspicious="high").tolist()
    [False, False, True, False, False]
    """
    _check_1d("scores", scores)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise ValueError(MSG_FRACTION.format(got=fraction))
    if not 0 < fraction <= 1:
        raise ValueError(MSG_FRACTION.format(got=fraction))
    if suspicious not in ("low", "high"):
        raise ValueError(MSG_SUSPICIOUS.format(got=suspicious))
    n = scores.numel()
    k = max(1, round(fraction * n))
    key = scores.detach().double()
    key = -key if suspicious == "high" else key
    key = torch.nan_to_num(key, nan=math.inf)  # NaN last
    order = torch.sort(key, stable=True).indices
    flags = torch.zeros(n, dtype=torch.bool, device=scores.device)
    flags[order[:k]] = True
    return flags


def detection_rates(flagged: torch.Tensor, flipped: torch.Tensor) -> dict[str, float]:
    """Precision and recall of ``flagged`` as a detector of ``flipped`` rows.

    Parameters
    ----------
    flagged : torch.Tensor
        Bool ``[N]``: rows the detector points at.
    flipped : torch.Tensor
        Bool ``[N]``: rows whose label was corrupted.

    Returns
    -------
    dict
        ``n_flagged``, ``n_flipped``, ``hits`` (flagged and flipped), ``precision``
        (``hits / n_flagged``), ``recall`` (``hits / n_flipped``), ``prevalence`` (share of
        flipped rows: the precision of flagging at random) and ``lift``
        (``precision / prevalence``). An undefined ratio (nothing flagged, nothing
        flipped) is NaN with a warning, never 0.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.label_noise_audit import detection_rates
    >>> flagged = torch.tensor([True, True, False, False, False, False, False, False])
    >>> flipped = torch.tensor([True, False, True, False, False, False, False, False])
    >>> r = detection_rates(flagged, flipped)
    >>> r["precision"], r["recall"], r["prevalence"], r["lift"]
    (0.5, 0.5, 0.25, 2.0)
    """
    _check_pair("flagged", flagged, "flipped", flipped)
    flagged, flipped = flagged.bool(), flipped.bool()
    n = flagged.numel()
    # one host read for the three counts
    counts = torch.stack([flagged.sum(), flipped.sum(), (flagged & flipped).sum()]).tolist()
    n_flagged, n_flipped, hits = (int(c) for c in counts)

    def ratio(num: int, den: int, what: str) -> float:
        if den == 0:
            warnings.warn(f"detection_rates: {what} is undefined (no rows in its denominator); "
                          "returning NaN.", UserWarning, stacklevel=3)
            return math.nan
        return num / den

    precision = ratio(hits, n_flagged, "precision (nothing flagged)")
    recall = ratio(hits, n_flipped, "recall (nothing flipped)")
    prevalence = n_flipped / n if n else math.nan
    lift = precision / prevalence if prevalence and not math.isnan(precision) else math.nan
    return {"n_flagged": n_flagged, "n_flipped": n_flipped, "hits": hits, "precision": precision,
            "recall": recall, "prevalence": prevalence, "lift": lift}


def detection_curve(scores: torch.Tensor, flipped: torch.Tensor, fractions: Sequence[float], *,
                    suspicious: Literal["low", "high"] = "low") -> pd.DataFrame:
    """Precision and recall of flagging the most suspicious ``fraction`` of rows, per fraction.

    Parameters
    ----------
    scores : torch.Tensor
        One score per row ``[N]`` (e.g. learned weights).
    flipped : torch.Tensor
        Bool ``[N]``: rows whose label was corrupted.
    fractions : sequence of float
        Shares of rows to flag, each in ``(0, 1]``.
    suspicious : {"low", "high"}
        Whether low or high scores are suspicious.

    Returns
    -------
    pandas.DataFrame
        One row per fraction: ``fraction`` and the entries of :func:`detection_rates`.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.label_noise_audit import detection_curve
    >>> w = torch.tensor([0.1, 0.9, 0.2, 1.0, 1.1, 0.8, 1.2, 1.0])
    >>> flipped = torch.tensor([True, False, True, False, False, False, False, False])
    >>> detection_curve(w, flipped, [0.25, 0.5])[["fraction", "precision", "recall"]]
       fraction  precision  recall
    0      0.25        1.0     1.0
    1      0.50        0.5     1.0
    """
    _check_pair("scores", scores, "flipped", flipped)
    if len(fractions) == 0:
        raise ValueError("Expected `fractions` to hold at least one fraction, but got none.")
    rows = [{"fraction": float(f),
             **detection_rates(flag_most_suspicious(scores, f, suspicious=suspicious), flipped)}
            for f in fractions]
    return pd.DataFrame(rows)
