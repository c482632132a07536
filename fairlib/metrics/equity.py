"""Worst-group accuracy, equity-scaled metrics and performance-scaled disparity.

Equity scaling (FairSeg / FairVision, Harvard-Ophthalmology-AI-Lab code) shrinks an
overall metric by how far the groups spread around it:

* ``mode="abs"``: ``M_overall / (1 + alpha * sum_g |M_g - M_overall|)``
* ``mode="std"``: ``M_overall / (1 + alpha * std_g(M_g))`` with sample std (ddof=1)

Performance-scaled disparity (PSD) divides the spread of group values by the overall
value: ``mode="mean"`` uses the population std (ddof=0), ``mode="max"`` max - min.
NaN groups (undefined values) are skipped.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from .._validation import ArrayLike, check_choice, check_nonnegative
from . import _core as core
from ._bygroup import ByGroup
from ._prepare import group_table, warn_undefined
from .scores import roc_auc_by_group


def nanstd(x: torch.Tensor, ddof: int) -> torch.Tensor:
    """Standard deviation over the last dim, skipping NaN (NaN if too few values)."""
    ok = ~torch.isnan(x)
    count = ok.sum(-1)
    mean = torch.where(ok, x, 0.0).sum(-1) / count.clamp(min=1)
    sq = torch.where(ok, (x - mean.unsqueeze(-1)) ** 2, 0.0).sum(-1)
    dof = count - ddof
    return torch.where(dof > 0, (sq / dof.clamp(min=1)).sqrt(), float("nan"))


def equity_scaled(
    by_group: torch.Tensor, overall: torch.Tensor, alpha: float = 1.0, mode: str = "abs", ddof: int = 1
) -> torch.Tensor:
    """Equity-scaled value from group values ``[..., G]`` (device core)."""
    if mode == "abs":
        dev = torch.where(torch.isnan(by_group), 0.0, (by_group - overall.unsqueeze(-1)).abs()).sum(-1)
    else:
        dev = nanstd(by_group, ddof)
    return overall / (1 + alpha * dev)


def scaled_disparity(
    by_group: torch.Tensor, overall: torch.Tensor, mode: str = "mean", ddof: int = 0
) -> torch.Tensor:
    """Performance-scaled disparity from group values ``[..., G]`` (device core)."""
    spread = nanstd(by_group, ddof) if mode == "mean" else core.nanmax(by_group) - core.nanmin(by_group)
    return spread / overall


def es_metric(
    result: ByGroup, *, alpha: float = 1.0, mode: Literal["abs", "std"] = "abs", ddof: int = 1
) -> torch.Tensor:
    """Equity-scaled version of any disaggregated metric.

    Parameters
    ----------
    result : ByGroup
        A disaggregated metric, e.g. from :func:`roc_auc_by_group`.
    alpha : float, default 1.0
        Strength of the penalty for spread between groups.
    mode : {"abs", "std"}
        Sum of absolute deviations from the overall value, or the std of group values.
    ddof : int, default 1
        Delta degrees of freedom of the std (``mode="std"`` only).

    Returns
    -------
    torch.Tensor
        0-dim float64 tensor.

    Examples
    --------
    >>> from fairlib.metrics import accuracy_by_group, es_metric
    >>> acc = accuracy_by_group([1, 1, 0, 0], [1, 1, 1, 0], sensitive_features=list("aabb"))
    >>> float(es_metric(acc))  # 0.75 / (1 + |1 - 0.75| + |0.5 - 0.75|)
    0.5
    """
    check_choice("mode", mode, ("abs", "std"))
    check_nonnegative("alpha", alpha)
    return equity_scaled(result.by_group, result.overall, alpha, mode, ddof)


def psd(result: ByGroup, *, mode: Literal["mean", "max"] = "mean", ddof: int = 0) -> torch.Tensor:
    """Performance-scaled disparity of any disaggregated metric.

    Parameters
    ----------
    result : ByGroup
        A disaggregated metric, e.g. from :func:`roc_auc_by_group`.
    mode : {"mean", "max"}
        ``std(M_g) / M_overall`` or ``(max_g M_g - min_g M_g) / M_overall``.
    ddof : int, default 0
        Delta degrees of freedom of the std (population std by default, as in the
        FairVision code).

    Returns
    -------
    torch.Tensor
        0-dim float64 tensor.

    Examples
    --------
    >>> from fairlib.metrics import accuracy_by_group, psd
    >>> acc = accuracy_by_group([1, 1, 0, 0], [1, 1, 1, 0], sensitive_features=list("aabb"))
    >>> float(psd(acc, mode="max"))  # (1 - 0.5) / 0.75
    0.6666666666666666
    """
    check_choice("mode", mode, ("mean", "max"))
    return scaled_disparity(result.by_group, result.overall, mode, ddof)


def accuracy_by_group(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
) -> ByGroup:
    """Weighted accuracy for each group and overall.

    Examples
    --------
    >>> from fairlib.metrics import accuracy_by_group
    >>> accuracy_by_group([1, 1, 0, 0], [1, 1, 1, 0], sensitive_features=list("aabb")).to_series().tolist()
    [1.0, 0.5]
    """
    table, groups = group_table(y_true, y_pred, sensitive_features, sample_weight)
    by_group, overall, undefined = core.rates(table[core.WEIGHT], table[core.COUNT])
    warn_undefined(undefined, overall, table[core.COUNT], ["accuracy"], groups.index, float("nan"))
    r = core.RATES.index("accuracy")
    return ByGroup(by_group[:, r], overall[r], groups.index, "accuracy")


def worst_group_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
) -> torch.Tensor:
    """The lowest accuracy over groups (empty groups skipped).

    Examples
    --------
    >>> from fairlib.metrics import worst_group_accuracy
    >>> float(worst_group_accuracy([1, 1, 0, 0], [1, 1, 1, 0], sensitive_features=list("aabb")))
    0.5
    """
    return accuracy_by_group(
        y_true, y_pred, sensitive_features=sensitive_features, sample_weight=sample_weight
    ).group_min()


def equity_scaled_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, alpha: float = 1.0,
    mode: Literal["abs", "std"] = "abs", ddof: int = 1, sample_weight: ArrayLike | None = None,
) -> torch.Tensor:
    """Equity-scaled accuracy (ES-Acc); see :func:`es_metric`.

    Examples
    --------
    >>> from fairlib.metrics import equity_scaled_accuracy
    >>> float(equity_scaled_accuracy([1, 1, 0, 0], [1, 1, 1, 0], sensitive_features=list("aabb")))
    0.5
    """
    acc = accuracy_by_group(y_true, y_pred, sensitive_features=sensitive_features,
                            sample_weight=sample_weight)
    return es_metric(acc, alpha=alpha, mode=mode, ddof=ddof)


def equity_scaled_auc(
    y_true: ArrayLike, y_score: ArrayLike, *, sensitive_features: Any, alpha: float = 1.0,
    mode: Literal["abs", "std"] = "abs", ddof: int = 1, sample_weight: ArrayLike | None = None,
) -> torch.Tensor:
    """Equity-scaled ROC AUC (ES-AUC); see :func:`es_metric`.

    Examples
    --------
    >>> from fairlib.metrics import equity_scaled_auc
    >>> y, s = [0, 1, 0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8, 0.7, 0.6]
    >>> round(float(equity_scaled_auc(y, s, sensitive_features=list("aaaabb"))), 4)  # (8/9) / 2
    0.4444
    """
    auc = roc_auc_by_group(y_true, y_score, sensitive_features=sensitive_features,
                           sample_weight=sample_weight)
    return es_metric(auc, alpha=alpha, mode=mode, ddof=ddof)


def performance_scaled_disparity(
    y_true: ArrayLike, y_score: ArrayLike, *, sensitive_features: Any,
    mode: Literal["mean", "max"] = "mean", ddof: int = 0, sample_weight: ArrayLike | None = None,
) -> torch.Tensor:
    """Performance-scaled disparity of ROC AUC (mean or max PSD); see :func:`psd`.

    Examples
    --------
    >>> from fairlib.metrics import performance_scaled_disparity
    >>> y, s = [0, 1, 0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8, 0.7, 0.6]
    >>> round(float(performance_scaled_disparity(y, s, sensitive_features=list("aaaabb"), mode="max")), 4)  # (1 - 0) / (8/9)
    1.125
    """
    auc = roc_auc_by_group(y_true, y_score, sensitive_features=sensitive_features,
                           sample_weight=sample_weight)
    return psd(auc, mode=mode, ddof=ddof)
