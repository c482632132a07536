"""Score-based group metrics: ROC AUC, expected calibration error, calibration gap.

The device functions (``grouped_auc``, ``calibration_table`` ...) work on integer
group ids with a fixed number of groups and never read values back to the host.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import torch

from .._validation import ArrayLike, check_choice
from . import _core as core
from ._bygroup import ByGroup
from ._prepare import UndefinedMetricWarning, prepare_labels


def grouped_auc(
    y_true: torch.Tensor, y_score: torch.Tensor, group_ids: torch.Tensor, num_groups: int,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted ROC AUC per group ``[G]`` (device core; NaN where a class is missing).

    The AUC is the weighted probability that a positive outscores a negative, ties
    counting one half; this equals the area under scikit-learn's weighted ROC curve.
    Rows are sorted once by (group, score); tied scores form blocks whose negative
    weight is shared half-and-half.
    """
    n = y_true.shape[0]
    dev = y_true.device
    w = torch.ones(n, dtype=torch.float64, device=dev) if sample_weight is None else sample_weight
    order = torch.argsort(y_score, stable=True)
    order = order[torch.argsort(group_ids[order], stable=True)]
    ys, ss, gs, ws = y_true[order], y_score[order], group_ids[order], w[order]
    pos_w = ws * ys
    neg_w = ws - pos_w
    new_block = torch.ones(n, dtype=torch.bool, device=dev)
    new_block[1:] = (ss[1:] != ss[:-1]) | (gs[1:] != gs[:-1])
    block = torch.cumsum(new_block, 0) - 1
    block_neg = torch.zeros(n, dtype=torch.float64, device=dev).index_add_(0, block, neg_w)
    neg_before_block = torch.cumsum(block_neg, 0) - block_neg
    neg_g = torch.zeros(num_groups, dtype=torch.float64, device=dev).index_add_(0, gs, neg_w)
    pos_g = torch.zeros(num_groups, dtype=torch.float64, device=dev).index_add_(0, gs, pos_w)
    neg_before_group = torch.cumsum(neg_g, 0) - neg_g
    below = neg_before_block[block] - neg_before_group[gs]
    wins = pos_w * (below + 0.5 * block_neg[block])
    num = torch.zeros(num_groups, dtype=torch.float64, device=dev).index_add_(0, gs, wins)
    den = pos_g * neg_g
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), float("nan"))


def calibration_table(
    y_true: torch.Tensor, y_score: torch.Tensor, group_ids: torch.Tensor, num_groups: int,
    edges: torch.Tensor, sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per group and bin: ``[G, B, 3]`` with sum of weights, weighted scores, weighted labels.

    ``edges`` are the ``B - 1`` inner bin edges; a score equal to an edge goes to the
    upper bin.
    """
    dev = y_true.device
    n_bins = edges.shape[0] + 1
    w = torch.ones_like(y_score) if sample_weight is None else sample_weight
    b = torch.bucketize(y_score, edges, right=True)
    flat = group_ids * n_bins + b
    src = torch.stack([w, w * y_score, w * y_true.to(torch.float64)], 1)
    out = torch.zeros(num_groups * n_bins, 3, dtype=torch.float64, device=dev)
    out.index_add_(0, flat, src)
    return out.view(num_groups, n_bins, 3)


def ece_from_table(table: torch.Tensor) -> torch.Tensor:
    """Expected calibration error ``sum_b |sum w s - sum w y| / sum w`` over the last two dims."""
    gap = (table[..., 1] - table[..., 2]).abs().sum(-1)
    total = table[..., 0].sum(-1)
    return torch.where(total > 0, gap / torch.where(total > 0, total, 1.0), float("nan"))


def gap_from_table(table: torch.Tensor) -> torch.Tensor:
    """Mean over bins of the spread (max - min) of per-group positive rates.

    Bins where fewer than two groups have weight are skipped; for two groups this is
    the mean of ``|P(Y=1 | bin, A=1) - P(Y=1 | bin, A=0)|``.
    """
    w = table[..., 0]
    rate = torch.where(w > 0, table[..., 2] / torch.where(w > 0, w, 1.0), float("nan"))  # [G, B]
    spread = core.nanmax(rate.T) - core.nanmin(rate.T)  # [B]
    enough = (w > 0).sum(0) >= 2
    spread = torch.where(enough, spread, float("nan"))
    ok = ~torch.isnan(spread)
    return torch.where(ok, spread, 0.0).sum() / ok.sum()


def _prepare_scores(y_true: ArrayLike, y_score: ArrayLike, sensitive_features: Any,
                    sample_weight: ArrayLike | None, unit_interval: bool):
    yt, _, ys, groups, w = prepare_labels(y_true, None, sensitive_features, sample_weight, scores=y_score)
    assert ys is not None
    if unit_interval:
        bad = (ys < 0) | (ys > 1)
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0, 0])
            raise ValueError(
                f"Expected `y_score` to be probabilities in [0, 1], but got {float(ys[i]):g} at index {i}."
            )
    return yt, ys, groups, w


def _warn_nan(result: ByGroup, why: str) -> None:
    nan = torch.isnan(result.by_group)
    if bool(nan.any() | torch.isnan(result.overall)):
        labels = [result.index[g] for g in torch.nonzero(nan.cpu()).flatten().tolist()]
        warnings.warn(
            f"{result.name} is undefined ({why}) for group(s) {labels}"
            + (" and overall" if bool(torch.isnan(result.overall)) else "")
            + "; returned NaN, skipped by aggregates.",
            UndefinedMetricWarning,
            stacklevel=3,
        )


def roc_auc_by_group(
    y_true: ArrayLike, y_score: ArrayLike, *, sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
) -> ByGroup:
    """Weighted ROC AUC for each group and overall.

    A group with only one class has no AUC: NaN and a warning (scikit-learn raises).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Finite scores; higher means more likely positive.
    sensitive_features : array-like, DataFrame or dict
        One or several sensitive features.
    sample_weight : array-like of shape (n,), optional
        Non-negative weights.

    Returns
    -------
    ByGroup
        ``by_group`` AUCs, ``overall`` AUC, with ``difference()`` and ``ratio()``.

    Examples
    --------
    >>> from fairlib.metrics import roc_auc_by_group
    >>> auc = roc_auc_by_group([0, 1, 0, 1], [0.1, 0.9, 0.8, 0.3], sensitive_features=list("aabb"))
    >>> auc.to_series().tolist(), float(auc.overall)
    ([1.0, 0.0], 0.75)
    """
    yt, ys, groups, w = _prepare_scores(y_true, y_score, sensitive_features, sample_weight, False)
    by = grouped_auc(yt, ys, groups.ids, groups.num_groups, w)
    overall = grouped_auc(yt, ys, torch.zeros_like(groups.ids), 1, w)[0]
    result = ByGroup(by, overall, groups.index, "roc_auc")
    _warn_nan(result, "only one class present")
    return result


def _edges(ys: torch.Tensor, n_bins: int, strategy: str, weight: torch.Tensor | None) -> torch.Tensor:
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"Expected `n_bins` to be a positive integer, but got {n_bins!r}.")
    check_choice("strategy", strategy, ("uniform", "quantile"))
    inner = torch.arange(1, n_bins, dtype=torch.float64, device=ys.device) / n_bins
    if strategy == "uniform":
        return inner
    return weighted_quantiles(ys, inner, weight)


def weighted_quantiles(
    values: torch.Tensor, q: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted quantiles: the smallest value whose cumulative weight share reaches ``q``.

    Integer weights act as repeated rows and zero weights as dropped rows, so binning
    by these edges keeps the sample-weight invariances.
    """
    order = torch.argsort(values, stable=True)
    w = torch.ones_like(values) if weight is None else weight[order]
    cum = torch.cumsum(w, 0)
    idx = torch.searchsorted(cum, q * cum[-1]).clamp(max=values.shape[0] - 1)
    return values[order][idx]


def expected_calibration_error(
    y_true: ArrayLike, y_score: ArrayLike, *, sensitive_features: Any, n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "uniform", sample_weight: ArrayLike | None = None,
) -> ByGroup:
    """Expected calibration error (ECE) for each group and overall.

    ``ECE = sum_b (W_b / W) |mean score in b - positive rate in b|`` with ``n_bins``
    equal-width bins on [0, 1] (or quantile bins of all scores), weights included.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Predicted probabilities of the positive class, in [0, 1].
    sensitive_features : array-like, DataFrame or dict
        One or several sensitive features.
    n_bins : int, default 10
        Number of bins.
    strategy : {"uniform", "quantile"}
        Equal-width bins, or bins holding equal shares of the total weight.
    sample_weight : array-like of shape (n,), optional
        Non-negative weights.

    Returns
    -------
    ByGroup

    Examples
    --------
    >>> from fairlib.metrics import expected_calibration_error
    >>> ece = expected_calibration_error([0, 1, 1, 1], [0.2, 0.8, 0.6, 0.6],
    ...                                  sensitive_features=list("aabb"), n_bins=5)
    >>> [round(v, 2) for v in ece.to_series().tolist()]
    [0.2, 0.4]
    """
    yt, ys, groups, w = _prepare_scores(y_true, y_score, sensitive_features, sample_weight, True)
    table = calibration_table(yt, ys, groups.ids, groups.num_groups, _edges(ys, n_bins, strategy, w), w)
    result = ByGroup(ece_from_table(table), ece_from_table(table.sum(0)), groups.index, "ece")
    _warn_nan(result, "zero total weight")
    return result


def calibration_gap(
    y_true: ArrayLike, y_score: ArrayLike, *, sensitive_features: Any, n_bins: int = 10,
    strategy: Literal["uniform", "quantile"] = "quantile", sample_weight: ArrayLike | None = None,
) -> torch.Tensor:
    """Within-bin calibration gap between groups.

    Scores are binned (weighted quantile bins of all scores by default); in each bin the
    positive rate is computed per group, and the gap is the mean over bins of the
    largest minus smallest group rate.  A score is calibrated within groups when the
    gap is near 0. Bins holding fewer than two groups are skipped.

    Parameters
    ----------
    y_true, y_score, sensitive_features, n_bins, strategy, sample_weight
        As in :func:`expected_calibration_error`; scores need not be probabilities.

    Returns
    -------
    torch.Tensor
        0-dim float64 tensor.

    Examples
    --------
    >>> from fairlib.metrics import calibration_gap
    >>> gap = calibration_gap([0, 1, 1, 1], [0.2, 0.8, 0.2, 0.8],
    ...                       sensitive_features=list("aabb"), n_bins=2)
    >>> float(gap)
    0.5
    """
    yt, ys, groups, w = _prepare_scores(y_true, y_score, sensitive_features, sample_weight, False)
    table = calibration_table(yt, ys, groups.ids, groups.num_groups, _edges(ys, n_bins, strategy, w), w)
    gap = gap_from_table(table)
    if bool(torch.isnan(gap)):
        warnings.warn(
            "calibration_gap is undefined: no bin holds two groups; returned NaN.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    return gap


__all__ = [
    "calibration_gap",
    "expected_calibration_error",
    "roc_auc_by_group",
    "grouped_auc",
    "calibration_table",
]
