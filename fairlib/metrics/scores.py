"""Score-based group metrics: ROC AUC, expected calibration error, calibration gap.

The one calibration implementation: bins (:func:`calibration_edges`), the per-cell table
(:func:`calibration_table`), cell rates, ECE and the between-group gap, and the
bootstrapped table behind :func:`fairlib.plotting.plot_calibration`
(:func:`calibration_by_group`).

The device functions (``grouped_auc``, ``calibration_table`` ...) work on integer
group ids with a fixed number of groups and never read values back to the host.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from .._validation import ArrayLike, check_choice, check_positive_int
from . import _core as core
from ._bygroup import ByGroup
from ._prepare import UndefinedMetricWarning, prepare_labels
from .report import fairness_report


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


def calibration_rates(table: torch.Tensor) -> torch.Tensor:
    """Mean score and positive rate of each cell of a calibration table (device core).

    Parameters
    ----------
    table : torch.Tensor of shape (..., 3)
        Sum of weights, weighted scores and weighted labels per cell, as from
        :func:`calibration_table`.

    Returns
    -------
    torch.Tensor of shape (..., 2)
        ``[..., 0]`` the weighted mean score, ``[..., 1]`` the weighted positive rate;
        NaN in cells without weight.

    Examples
    --------
    >>> import torch
    >>> from fairlib.metrics.scores import calibration_rates
    >>> calibration_rates(torch.tensor([[4.0, 2.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64))
    tensor([[0.5000, 0.2500],
            [   nan,    nan]], dtype=torch.float64)
    """
    w = table[..., :1]
    return torch.where(w > 0, table[..., 1:] / torch.where(w > 0, w, 1.0), float("nan"))


def calibration_gaps(positives: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over bins of the spread (max - min) of per-group positive rates (device core).

    Bins where fewer than two groups have weight are skipped; for two groups this is the
    mean of ``|P(Y=1 | bin, A=1) - P(Y=1 | bin, A=0)|``. Leading dimensions are batch
    dimensions (e.g. bootstrap resamples of the cell counts).

    Parameters
    ----------
    positives : torch.Tensor of shape (..., G, B)
        Weight of the positive rows in each group and bin.
    weights : torch.Tensor of shape (..., G, B)
        Weight of all rows in each group and bin.

    Returns
    -------
    torch.Tensor of shape (...)
        The gap; NaN where no bin holds two groups.

    Examples
    --------
    >>> import torch
    >>> from fairlib.metrics.scores import calibration_gaps
    >>> pos = torch.tensor([[1.0, 3.0], [2.0, 0.0]], dtype=torch.float64)  # groups x bins
    >>> n = torch.tensor([[2.0, 4.0], [2.0, 0.0]], dtype=torch.float64)
    >>> float(calibration_gaps(pos, n))  # only bin 0 holds both groups: |1.0 - 0.5|
    0.5
    """
    rate = torch.where(weights > 0, positives / torch.where(weights > 0, weights, 1.0), float("nan"))
    rate = rate.transpose(-1, -2)  # [..., B, G]
    spread = core.nanmax(rate) - core.nanmin(rate)  # [..., B]
    enough = (weights > 0).sum(-2) >= 2
    spread = torch.where(enough, spread, float("nan"))
    ok = ~torch.isnan(spread)
    return torch.where(ok, spread, 0.0).sum(-1) / ok.sum(-1)


def gap_from_table(table: torch.Tensor) -> torch.Tensor:
    """:func:`calibration_gaps` of a ``[G, B, 3]`` table from :func:`calibration_table`."""
    return calibration_gaps(table[..., 2], table[..., 0])


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


def calibration_edges(
    y_score: torch.Tensor, n_bins: int, strategy: Literal["uniform", "quantile"] = "uniform",
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The ``n_bins - 1`` inner bin edges of the calibration functions (device core).

    Parameters
    ----------
    y_score : torch.Tensor of shape (n,)
        Scores (float64).
    n_bins : int
        Number of bins.
    strategy : {"uniform", "quantile"}
        Equal-width bins on [0, 1], or weighted quantiles of ``y_score`` (bins holding
        equal shares of the total weight, see :func:`weighted_quantiles`).
    sample_weight : torch.Tensor of shape (n,), optional
        Weights of the quantiles.

    Returns
    -------
    torch.Tensor of shape (n_bins - 1,)
        Edges for :func:`calibration_table`, on the device of ``y_score``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.metrics.scores import calibration_edges
    >>> calibration_edges(torch.tensor([0.1, 0.2, 0.3, 0.9], dtype=torch.float64), 4)
    tensor([0.2500, 0.5000, 0.7500], dtype=torch.float64)
    """
    n_bins = check_positive_int("n_bins", n_bins)
    check_choice("strategy", strategy, ("uniform", "quantile"))
    inner = torch.arange(1, n_bins, dtype=torch.float64, device=y_score.device) / n_bins
    if strategy == "uniform":
        return inner
    return weighted_quantiles(y_score, inner, sample_weight)


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
    table = calibration_table(yt, ys, groups.ids, groups.num_groups, calibration_edges(ys, n_bins, strategy, w), w)
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
    table = calibration_table(yt, ys, groups.ids, groups.num_groups, calibration_edges(ys, n_bins, strategy, w), w)
    gap = gap_from_table(table)
    if bool(torch.isnan(gap)):
        warnings.warn(
            "calibration_gap is undefined: no bin holds two groups; returned NaN.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    return gap


def _label_column(sensitive_features: Any) -> tuple[str, np.ndarray]:
    if isinstance(sensitive_features, pd.DataFrame):
        cols = [str(c) for c in sensitive_features.columns]
        values = sensitive_features.astype(str).agg(" & ".join, axis=1).to_numpy()
        return " & ".join(cols), values
    if isinstance(sensitive_features, torch.Tensor):
        return "group", sensitive_features.detach().cpu().numpy()
    name = getattr(sensitive_features, "name", None)
    values = np.asarray(sensitive_features)
    if values.ndim != 1:
        raise ValueError(
            "Expected `sensitive_features` to be 1-dimensional or a DataFrame, but got shape "
            f"{values.shape}."
        )
    return (str(name) if name is not None else "group"), values


def calibration_by_group(
    y_true: Any,
    y_score: Any,
    *,
    sensitive_features: Any,
    bins: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Observed positive rate in each score bin and group, with bootstrap intervals.

    The data behind :func:`fairlib.plotting.plot_calibration`. Rows are bootstrapped together (the
    resampling of :meth:`FairnessReport.bootstrap`), so each interval reflects the size
    of its own (bin, group) cell.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Scores. With ``bins=None`` every distinct value is its own bin (for a discrete
        score such as a decile); with an integer, probabilities in [0, 1] are cut into
        that many equal-width bins.
    sensitive_features : array-like, Series or DataFrame
        One sensitive feature, or several (their combinations form the groups).
    bins : int, optional
        Number of equal-width bins on [0, 1]; ``None`` bins by distinct value.
    n_boot : int, default 1000
        Bootstrap resamples.
    level : float, default 0.95
        Coverage of the percentile intervals.
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    pandas.DataFrame
        One row per non-empty (bin, group) cell: ``bin``, ``group``, ``n``,
        ``mean_score`` (the x position), ``estimate`` (observed positive rate),
        ``lower``, ``upper``.

    Examples
    --------
    >>> from fairlib.metrics import calibration_by_group
    >>> cal = calibration_by_group([0, 1, 1, 0, 1, 1], [1, 2, 2, 1, 1, 2],
    ...                            sensitive_features=list("aaabbb"), n_boot=50)
    >>> cal[["bin", "group", "n", "estimate"]]
       bin group  n  estimate
    0    0     a  1       0.0
    1    0     b  2       0.5
    2    1     a  2       1.0
    3    1     b  1       1.0
    """
    yt = np.asarray(y_true.detach().cpu() if isinstance(y_true, torch.Tensor) else y_true)
    ys = np.asarray(y_score.detach().cpu() if isinstance(y_score, torch.Tensor) else y_score,
                    dtype=float)
    if ys.ndim != 1 or yt.shape != ys.shape:
        raise ValueError(
            "Expected `y_true` and `y_score` to be 1-dimensional of the same length, but got "
            f"shapes {yt.shape} and {ys.shape}."
        )
    group_name, groups = _label_column(sensitive_features)
    if len(groups) != len(ys):
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"[{len(ys)}, {len(groups)}]."
        )
    bins = check_positive_int("bins", bins, allow_none=True)
    if bins is None:
        values, codes = np.unique(ys, return_inverse=True)
    else:
        if not np.all((ys >= 0) & (ys <= 1)):
            raise ValueError(
                "Expected `y_score` to be probabilities in [0, 1] when `bins` is an integer, "
                f"but got values from {ys.min():g} to {ys.max():g}."
            )
        # floor(score * bins), not calibration_edges: the two differ for scores within
        # one ulp of an edge, and this function's bins have always been cut this way.
        codes = np.minimum((ys * bins).astype(np.int64), bins - 1)
    features = pd.DataFrame({"bin": codes, group_name: groups})
    # Only the base rate (positive rate) of each cell is used, and it is defined in every
    # non-empty cell; conditional rates of one-class cells (undefined) are not needed.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        report = fairness_report(yt, yt, sensitive_features=features)
    ci = report.bootstrap(n_boot, level=level, seed=seed).by_group("base_rate")
    ci = ci.drop(index="overall")
    by = report.by_group
    mean_score = pd.Series(ys).groupby([codes, groups]).mean()
    out = pd.DataFrame({
        "bin": [g[0] for g in by.index],
        "group": [g[1] for g in by.index],
        "n": by["n"].to_numpy(),
        "mean_score": [mean_score.get(g, np.nan) for g in by.index],
        "estimate": ci["estimate"].to_numpy(),
        "lower": ci["lower"].to_numpy(),
        "upper": ci["upper"].to_numpy(),
    })
    out = out[out["n"] > 0].sort_values(["bin", "group"]).reset_index(drop=True)
    out.attrs["group_name"] = group_name
    out.attrs["level"] = level
    return out


__all__ = [
    "calibration_by_group",
    "calibration_edges",
    "calibration_gap",
    "calibration_gaps",
    "calibration_rates",
    "expected_calibration_error",
    "roc_auc_by_group",
    "grouped_auc",
    "calibration_table",
    "ece_from_table",
    "gap_from_table",
    "weighted_quantiles",
]
