"""Many groups: pooled and intersectional attributes, marginal-parity audits, equity summaries.

Written for chapter 8, *Many groups* (``notebooks/08_many_groups.ipynb``).

- :func:`fairlib.datasets.pool_categories` (in the core): merge small categories of an attribute.
- :func:`marginal_parity_rates` and :func:`select_at_rates`: classifiers whose selection
  rates are equal across each of two attributes yet unequal across their intersections
  ("fairness gerrymandering", Kearns, Neel, Roth & Wu, ICML 2018).
- :func:`group_performance`: accuracy, ROC AUC, their worst-group and equity-scaled
  versions (FairSeg / FairVision), performance-scaled disparity and two parity
  differences, in one dict per model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validation import MSG_TYPE, ArrayLike
from ..metrics import (
    accuracy_by_group,
    demographic_parity_difference,
    equalized_odds_difference,
    es_metric,
    psd,
    roc_auc_by_group,
)

__all__ = [
    "PERFORMANCE_METRICS",
    "group_performance",
    "marginal_parity_rates",
    "select_at_rates",
]

#: Keys of :func:`group_performance`, in order.
PERFORMANCE_METRICS: tuple[str, ...] = (
    "accuracy",
    "worst_group_accuracy",
    "es_accuracy",
    "es_accuracy_std",
    "auc",
    "worst_group_auc",
    "es_auc",
    "psd_mean",
    "psd_max",
    "demographic_parity_difference",
    "equalized_odds_difference",
)


def marginal_parity_rates(sizes: ArrayLike, rate: float, shift: float) -> np.ndarray:
    """Selection rates for a 2 x 2 table of groups with equal rates on both margins.

    With cell sizes ``n_ij`` (rows: the levels of one attribute, columns: of the other),
    the rates ``s_ij = rate + c * sign_ij / n_ij`` with ``sign = [[-1, 1], [1, -1]]``
    select the same share ``rate`` of each row and of each column for every ``c``, so a
    classifier with these rates has demographic parity on each attribute. Yet the cells
    differ by ``c (1 / n_ij + 1 / n_kl)``. ``shift`` is ``c`` as a share of its largest
    value that keeps every rate in [0, 1]: 0 gives parity in every cell, 1 (or -1) drives a
    cell of the diagonal (or of the anti-diagonal) to rate 0 or 1.

    Parameters
    ----------
    sizes : array-like of shape (2, 2)
        Positive cell sizes (or any positive weights, e.g. population shares).
    rate : float
        The common selection rate of every margin, in [0, 1].
    shift : float
        In [-1, 1].

    Returns
    -------
    numpy.ndarray
        Rates of shape (2, 2).

    Examples
    --------
    >>> import numpy as np
    >>> from fairlib.studies.intersectional import marginal_parity_rates
    >>> sizes = np.array([[100, 300], [400, 200]])
    >>> s = marginal_parity_rates(sizes, 0.2, 1.0)
    >>> s.round(3).tolist()
    [[0.0, 0.267], [0.25, 0.1]]
    >>> ((s * sizes).sum(1) / sizes.sum(1)).round(6).tolist()  # each row selects 20%
    [0.2, 0.2]
    >>> ((s * sizes).sum(0) / sizes.sum(0)).round(6).tolist()  # and each column
    [0.2, 0.2]
    """
    n = np.asarray(sizes, dtype=np.float64)
    if n.shape != (2, 2) or not np.all(n > 0):
        raise ValueError(MSG_TYPE.format(name="sizes", expected="a 2 x 2 array of positive sizes",
                                         got=f"{n.tolist()}"))
    if not 0.0 <= rate <= 1.0:
        raise ValueError(MSG_TYPE.format(name="rate", expected="in [0, 1]", got=repr(rate)))
    if not -1.0 <= shift <= 1.0:
        raise ValueError(MSG_TYPE.format(name="shift", expected="in [-1, 1]", got=repr(shift)))
    sign = np.array([[-1.0, 1.0], [1.0, -1.0]]) * (1.0 if shift >= 0 else -1.0)
    room = np.where(sign > 0, (1.0 - rate) * n, rate * n)  # c at which each cell hits a bound
    c = abs(shift) * room.min()
    return np.clip(rate + c * sign / n, 0.0, 1.0)


def select_at_rates(
    scores: torch.Tensor,
    groups: torch.Tensor,
    rates: ArrayLike,
    *,
    reference_scores: torch.Tensor | None = None,
    reference_groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Predict 1 for the top share ``rates[g]`` of each group's scores.

    The threshold of group ``g`` is the ``1 - rates[g]`` quantile of the reference
    scores of that group (default: the scores themselves); rate 0 selects nobody, rate 1
    everybody. Thresholds set on one sample and applied to another give that sample's
    rates up to sampling noise.

    Parameters
    ----------
    scores : torch.Tensor
        Scores to threshold, shape ``[n]``.
    groups : torch.Tensor
        int64 group codes ``[n]`` indexing ``rates``.
    rates : array-like of shape (G,)
        Selection rate per group.
    reference_scores, reference_groups : torch.Tensor, optional
        Where the thresholds are computed.

    Returns
    -------
    torch.Tensor
        int64 predictions ``[n]`` on the device of ``scores``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.intersectional import select_at_rates
    >>> s = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    >>> g = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    >>> select_at_rates(s, g, [0.5, 0.0]).tolist()
    [0, 0, 1, 1, 0, 0, 0, 0]
    """
    ref_s = scores if reference_scores is None else reference_scores
    ref_g = groups if reference_groups is None else reference_groups
    r = torch.as_tensor(np.asarray(rates, dtype=np.float64))
    if r.ndim != 1 or bool(((r < 0) | (r > 1)).any()):
        raise ValueError(MSG_TYPE.format(name="rates", expected="a 1-d array of rates in [0, 1]",
                                         got=f"{r.tolist()}"))
    cuts = torch.empty(len(r), dtype=torch.float64)
    for g, rate in enumerate(r.tolist()):
        members = ref_s[ref_g == g].double()
        if rate <= 0.0:
            cuts[g] = torch.inf
        elif rate >= 1.0 or members.numel() == 0:
            cuts[g] = -torch.inf
        else:
            cuts[g] = float(torch.quantile(members, 1.0 - rate))
    return (scores.double() >= cuts.to(scores.device)[groups]).to(torch.int64)


def group_performance(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    sensitive_features: Any,
    threshold: float = 0.5,
    alpha: float = 1.0,
) -> dict[str, float]:
    """Overall, worst-group and equity-scaled performance, and two parity differences.

    ``es_*`` are ``M / (1 + alpha * sum_g |M_g - M|)`` (the FairSeg / FairVision code's
    form); ``es_accuracy_std`` uses ``alpha`` times the sample std of the group values
    instead; ``psd_mean`` is ``std(AUC_g) / AUC`` (population std) and ``psd_max``
    ``(max_g AUC_g - min_g AUC_g) / AUC``. Groups where a value is undefined (a group with
    one class has no AUC) are skipped, with fairlib's ``UndefinedMetricWarning``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Scores in [0, 1].
    sensitive_features : array-like, DataFrame or dict
        One or several attributes (several: their intersections).
    threshold : float, default 0.5
        A score at or above it predicts 1.
    alpha : float, default 1.0
        Strength of the equity scaling.

    Returns
    -------
    dict of str to float
        Keys :data:`PERFORMANCE_METRICS`.

    Examples
    --------
    >>> from fairlib.studies.intersectional import group_performance
    >>> y = [0, 1, 0, 1, 0, 1, 0, 1]
    >>> s = [0.2, 0.8, 0.3, 0.7, 0.6, 0.4, 0.1, 0.9]
    >>> perf = group_performance(y, s, sensitive_features=list("aaaabbbb"))
    >>> perf["accuracy"], perf["worst_group_accuracy"], perf["es_accuracy"]
    (0.75, 0.5, 0.5)
    """
    ys = torch.as_tensor(np.asarray(y_score, dtype=np.float64)) if not isinstance(
        y_score, torch.Tensor) else y_score
    pred = (ys >= threshold).to(torch.int64)
    acc = accuracy_by_group(y_true, pred, sensitive_features=sensitive_features)
    auc = roc_auc_by_group(y_true, ys, sensitive_features=sensitive_features)
    out = {
        "accuracy": acc.overall,
        "worst_group_accuracy": acc.group_min(),
        "es_accuracy": es_metric(acc, alpha=alpha),
        "es_accuracy_std": es_metric(acc, alpha=alpha, mode="std"),
        "auc": auc.overall,
        "worst_group_auc": auc.group_min(),
        "es_auc": es_metric(auc, alpha=alpha),
        "psd_mean": psd(auc),
        "psd_max": psd(auc, mode="max"),
        "demographic_parity_difference": demographic_parity_difference(
            y_true, pred, sensitive_features=sensitive_features),
        "equalized_odds_difference": equalized_odds_difference(
            y_true, pred, sensitive_features=sensitive_features),
    }
    return {k: float(out[k]) for k in PERFORMANCE_METRICS}
