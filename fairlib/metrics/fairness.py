"""fairlearn-compatible rates and parity measures.

Each public function is a thin wrapper: validate, build the count table once, then
read the answer off it with the device core in :mod:`fairlib.metrics._core`.
Results are 0-dim float64 tensors on the input device; ``float()`` gives the number.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from .._validation import ArrayLike
from . import _core as core
from ._prepare import check_options, check_zero_division, group_table, warn_undefined

Method = Literal["between_groups", "to_overall"]
Agg = Literal["worst_case", "mean"]
NAN = float("nan")


def _overall_rate(
    name: str, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None, zero_division: float
) -> torch.Tensor:
    zero_division = check_zero_division(zero_division)
    table, groups = group_table(y_true, y_pred, None, sample_weight, overall_only=True)
    by_group, overall, undefined = core.rates(table[core.WEIGHT], table[core.COUNT], zero_division)
    warn_undefined(undefined, overall, table[core.COUNT], [name], groups.index, zero_division)
    return overall[core.RATES.index(name)]


def _parity(
    name: str,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    sensitive_features: Any,
    method: str,
    sample_weight: ArrayLike | None,
    zero_division: float,
    agg: str = "worst_case",
) -> torch.Tensor:
    check_options(method=method, agg=agg)
    zero_division = check_zero_division(zero_division)
    table, groups = group_table(y_true, y_pred, sensitive_features, sample_weight)
    by_group, overall, undefined = core.rates(table[core.WEIGHT], table[core.COUNT], zero_division)
    rate_names = core.MEASURES[name][0]
    warn_undefined(undefined, overall, table[core.COUNT], rate_names, groups.index, zero_division)
    return core.measure(by_group, overall, name, method, agg)


def selection_rate(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    zero_division: float = NAN,
) -> torch.Tensor:
    """Weighted fraction of positive predictions, ``P(y_pred = 1)``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels (ignored, kept for a uniform signature as in fairlearn).
    y_pred : array-like of shape (n,)
        Binary predictions in {0, 1} or {-1, 1}.
    sample_weight : array-like of shape (n,), optional
        Non-negative weights.
    zero_division : float, default NaN
        Unused for this rate (a zero total weight is always NaN); kept for symmetry.

    Returns
    -------
    torch.Tensor
        0-dim float64 tensor on the input device.

    Examples
    --------
    >>> from fairlib.metrics import selection_rate
    >>> float(selection_rate([0, 1, 1, 0], [1, 1, 0, 0]))
    0.5
    """
    return _overall_rate("selection_rate", y_true, y_pred, sample_weight, zero_division)


def true_positive_rate(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    zero_division: float = NAN,
) -> torch.Tensor:
    """True positive rate (recall), ``P(y_pred = 1 | y_true = 1)``.

    With no positive label the rate is NaN with a warning, or ``zero_division``
    (fairlearn returns 0). Parameters as in :func:`selection_rate`.

    Examples
    --------
    >>> from fairlib.metrics import true_positive_rate
    >>> float(true_positive_rate([0, 1, 1, 1], [1, 1, 0, 1]))
    0.6666666666666666
    """
    return _overall_rate("true_positive_rate", y_true, y_pred, sample_weight, zero_division)


def false_positive_rate(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    zero_division: float = NAN,
) -> torch.Tensor:
    """False positive rate, ``P(y_pred = 1 | y_true = 0)``.

    Parameters as in :func:`selection_rate`; zero denominators as in
    :func:`true_positive_rate`.

    Examples
    --------
    >>> from fairlib.metrics import false_positive_rate
    >>> float(false_positive_rate([0, 0, 1, 1], [1, 0, 0, 1]))
    0.5
    """
    return _overall_rate("false_positive_rate", y_true, y_pred, sample_weight, zero_division)


def true_negative_rate(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    zero_division: float = NAN,
) -> torch.Tensor:
    """True negative rate (specificity), ``P(y_pred = 0 | y_true = 0)``.

    Examples
    --------
    >>> from fairlib.metrics import true_negative_rate
    >>> float(true_negative_rate([0, 0, 1, 1], [1, 0, 0, 1]))
    0.5
    """
    return _overall_rate("true_negative_rate", y_true, y_pred, sample_weight, zero_division)


def false_negative_rate(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    zero_division: float = NAN,
) -> torch.Tensor:
    """False negative rate, ``P(y_pred = 0 | y_true = 1)``.

    Examples
    --------
    >>> from fairlib.metrics import false_negative_rate
    >>> float(false_negative_rate([0, 1, 1, 1], [1, 1, 0, 1]))
    0.3333333333333333
    """
    return _overall_rate("false_negative_rate", y_true, y_pred, sample_weight, zero_division)


def accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    zero_division: float = NAN,
) -> torch.Tensor:
    """Weighted accuracy, ``P(y_pred = y_true)``.

    Examples
    --------
    >>> from fairlib.metrics import accuracy
    >>> float(accuracy([0, 1, 1, 1], [1, 1, 0, 1], sample_weight=[1, 1, 1, 3]))
    0.6666666666666666
    """
    return _overall_rate("accuracy", y_true, y_pred, sample_weight, zero_division)


def demographic_parity_difference(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, method: Method = "between_groups",
    sample_weight: ArrayLike | None = None, zero_division: float = NAN,
) -> torch.Tensor:
    """Difference in selection rate between groups, as fairlearn defines it.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Binary labels and predictions ({0, 1} or {-1, 1}).
    sensitive_features : array-like, DataFrame or dict
        One column, or several for intersectional groups (absent combinations are NaN
        rows that the aggregate skips).
    method : {"between_groups", "to_overall"}
        Largest minus smallest group value, or largest absolute gap to the overall value.
    sample_weight : array-like of shape (n,), optional
        Non-negative weights.
    zero_division : float, default NaN
        Value for an undefined conditional rate; NaN warns, 0.0 matches fairlearn.

    Returns
    -------
    torch.Tensor
        0-dim float64 tensor on the input device.

    Examples
    --------
    >>> from fairlib.metrics import demographic_parity_difference
    >>> y_pred = [1, 0, 1, 1, 0, 0]
    >>> float(demographic_parity_difference([0] * 6, y_pred, sensitive_features=list("aaabbb")))
    0.3333333333333333
    """
    return _parity("demographic_parity_difference", y_true, y_pred, sensitive_features, method,
                   sample_weight, zero_division)


def demographic_parity_ratio(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, method: Method = "between_groups",
    sample_weight: ArrayLike | None = None, zero_division: float = NAN,
) -> torch.Tensor:
    """Ratio of the smallest to the largest group selection rate (fairlearn semantics).

    With ``method="to_overall"``: the smallest of ``r_g = rate_g / overall``, each
    replaced by ``1 / r_g`` when above 1. Parameters as in
    :func:`demographic_parity_difference`.

    Examples
    --------
    >>> from fairlib.metrics import demographic_parity_ratio
    >>> y_pred = [1, 0, 1, 1, 0, 0]
    >>> float(demographic_parity_ratio([0] * 6, y_pred, sensitive_features=list("aaabbb")))
    0.5
    """
    return _parity("demographic_parity_ratio", y_true, y_pred, sensitive_features, method,
                   sample_weight, zero_division)


def equal_opportunity_difference(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, method: Method = "between_groups",
    sample_weight: ArrayLike | None = None, zero_division: float = NAN,
) -> torch.Tensor:
    """Difference in true positive rate between groups (fairlearn semantics).

    Parameters as in :func:`demographic_parity_difference`.

    Examples
    --------
    >>> from fairlib.metrics import equal_opportunity_difference
    >>> y_true = [1, 1, 0, 1, 1, 0]
    >>> y_pred = [1, 1, 0, 1, 0, 0]
    >>> float(equal_opportunity_difference(y_true, y_pred, sensitive_features=list("aaabbb")))
    0.5
    """
    return _parity("equal_opportunity_difference", y_true, y_pred, sensitive_features, method,
                   sample_weight, zero_division)


def equal_opportunity_ratio(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, method: Method = "between_groups",
    sample_weight: ArrayLike | None = None, zero_division: float = NAN,
) -> torch.Tensor:
    """Ratio of the smallest to the largest group true positive rate.

    Parameters as in :func:`demographic_parity_difference`.

    Examples
    --------
    >>> from fairlib.metrics import equal_opportunity_ratio
    >>> y_true = [1, 1, 0, 1, 1, 0]
    >>> y_pred = [1, 1, 0, 1, 0, 0]
    >>> float(equal_opportunity_ratio(y_true, y_pred, sensitive_features=list("aaabbb")))
    0.5
    """
    return _parity("equal_opportunity_ratio", y_true, y_pred, sensitive_features, method,
                   sample_weight, zero_division)


def equalized_odds_difference(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, method: Method = "between_groups",
    sample_weight: ArrayLike | None = None, agg: Agg = "worst_case", zero_division: float = NAN,
) -> torch.Tensor:
    """Equalized-odds difference: the TPR and FPR differences, aggregated.

    ``agg="worst_case"`` takes the larger of the two, ``"mean"`` their average
    (fairlearn's "average odds"). Other parameters as in
    :func:`demographic_parity_difference`.

    Examples
    --------
    >>> from fairlib.metrics import equalized_odds_difference
    >>> y_true = [1, 1, 0, 1, 1, 0]
    >>> y_pred = [1, 1, 0, 1, 0, 1]
    >>> float(equalized_odds_difference(y_true, y_pred, sensitive_features=list("aaabbb")))
    1.0
    >>> float(equalized_odds_difference(y_true, y_pred, sensitive_features=list("aaabbb"), agg="mean"))
    0.75
    """
    return _parity("equalized_odds_difference", y_true, y_pred, sensitive_features, method,
                   sample_weight, zero_division, agg)


def equalized_odds_ratio(
    y_true: ArrayLike, y_pred: ArrayLike, *, sensitive_features: Any, method: Method = "between_groups",
    sample_weight: ArrayLike | None = None, agg: Agg = "worst_case", zero_division: float = NAN,
) -> torch.Tensor:
    """Equalized-odds ratio: the TPR and FPR ratios, aggregated.

    ``agg="worst_case"`` takes the smaller of the two, ``"mean"`` their average.
    Other parameters as in :func:`demographic_parity_difference`.

    Examples
    --------
    >>> from fairlib.metrics import equalized_odds_ratio
    >>> y_true = [1, 1, 0, 1, 1, 0]
    >>> y_pred = [1, 1, 0, 1, 0, 1]
    >>> float(equalized_odds_ratio(y_true, y_pred, sensitive_features=list("aaabbb"), agg="mean"))
    0.25
    """
    return _parity("equalized_odds_ratio", y_true, y_pred, sensitive_features, method,
                   sample_weight, zero_division, agg)
