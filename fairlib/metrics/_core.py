"""Device core: the count table and every rate and parity measure computed from it.

Nothing here reads a value back to the host (no ``.item()``, ``.cpu()``, ``.tolist()``,
no Python ``bool`` of a tensor), so it can run inside a training step on any device
without a synchronisation.  All functions accept leading batch dimensions, which is
how the bootstrap evaluates B resampled tables with the very same code.

Table layout: ``table[..., c, g, k]`` with channel ``c`` in (weighted sum, row count,
sum of squared weights), group ``g`` and cell ``k = 2 * y_true + y_pred``, that is
(TN, FP, FN, TP).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._validation import MSG_TYPE

WEIGHT, COUNT, WEIGHT_SQ = 0, 1, 2
TN, FP, FN, TP = 0, 1, 2, 3

# name: (numerator cells, denominator cells, conditional on the label or prediction).
# Conditional rates follow scikit-learn's confusion-matrix normalisation, where
# fairlearn returns 0 for a zero denominator; `zero_division` reproduces that.
RATE_CELLS: dict[str, tuple[tuple[int, ...], tuple[int, ...], bool]] = {
    "selection_rate": ((FP, TP), (TN, FP, FN, TP), False),
    "base_rate": ((FN, TP), (TN, FP, FN, TP), False),
    "accuracy": ((TN, TP), (TN, FP, FN, TP), False),
    "true_positive_rate": ((TP,), (FN, TP), True),
    "false_positive_rate": ((FP,), (TN, FP), True),
    "true_negative_rate": ((TN,), (TN, FP), True),
    "false_negative_rate": ((FN,), (FN, TP), True),
    "positive_predictive_value": ((TP,), (FP, TP), True),
    "negative_predictive_value": ((TN,), (TN, FN), True),
}
RATES: tuple[str, ...] = tuple(RATE_CELLS)


def cell_index(y_true: torch.Tensor, y_pred: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """Flat int64 cell index ``4 * group + 2 * y_true + y_pred`` (labels coded 0/1)."""
    return torch.add(y_pred, group_ids, alpha=4).add_(y_true, alpha=2)


def count_table(
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    group_ids: torch.Tensor,
    num_groups: int,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Build the ``[3, num_groups, 4]`` float64 count table in one pass.

    ``y_true``/``y_pred`` are integer 0/1, ``group_ids`` int64 in ``[0, num_groups)``;
    the table lives on their device.
    """
    size = num_groups * 4
    if group_ids.device.type == "cpu":
        flat = _count_table_cpu(y_true, y_pred, group_ids, size, sample_weight)
    else:
        flat = count_table_scatter(cell_index(y_true, y_pred, group_ids), size, sample_weight)
    return flat.view(3, num_groups, 4)


def count_table_scatter(
    cells: torch.Tensor, size: int, sample_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """``[3, size]`` table by scatter-add into a fixed-size output (GPU path).

    Unlike bincount on CUDA, which reads the data's maximum back to the host to size
    its output, this never synchronises.
    """
    out = torch.zeros(3, size, dtype=torch.float64, device=cells.device)
    out[COUNT].index_add_(0, cells, torch.ones(cells.shape, dtype=torch.float64, device=cells.device))
    if sample_weight is None:
        out[WEIGHT] = out[COUNT]
        out[WEIGHT_SQ] = out[COUNT]
    else:
        out[WEIGHT].index_add_(0, cells, sample_weight)
        out[WEIGHT_SQ].index_add_(0, cells, sample_weight * sample_weight)
    return out


# Rows per chunk on the CPU: the cell indices of a chunk stay in cache between their
# computation and the histogram, and no N-sized temporary is allocated.
_CPU_CHUNK = 1 << 18


def _count_table_cpu(
    y_true: torch.Tensor, y_pred: torch.Tensor, group_ids: torch.Tensor, size: int,
    sample_weight: torch.Tensor | None,
) -> torch.Tensor:
    """``[3, size]`` table on the CPU: chunked bincount, the fastest CPU histogram."""
    n = group_ids.shape[0]
    counts = torch.zeros(size, dtype=torch.int64)
    w = torch.zeros(size, dtype=torch.float64) if sample_weight is not None else None
    w2 = torch.zeros(size, dtype=torch.float64) if sample_weight is not None else None
    for start in range(0, n, _CPU_CHUNK):
        stop = min(start + _CPU_CHUNK, n)
        cells = cell_index(y_true[start:stop], y_pred[start:stop], group_ids[start:stop])
        counts += torch.bincount(cells, minlength=size)
        if sample_weight is not None:
            chunk = sample_weight[start:stop]
            w += torch.bincount(cells, weights=chunk, minlength=size)
            w2 += torch.bincount(cells, weights=chunk * chunk, minlength=size)
    counts_f = counts.to(torch.float64)
    if sample_weight is None:
        return counts_f.expand(3, size).clone()
    return torch.stack([w, counts_f, w2])


def check_zero_division(value: Any) -> float:
    """Return ``zero_division`` as a float after checking it is NaN or a number in [0, 1].

    A Python-level check of a Python number (no tensor, no host read), so the core can
    run it too; the public functions call it before any work.

    Examples
    --------
    >>> from fairlib.metrics._core import check_zero_division
    >>> check_zero_division(0)
    0.0
    >>> check_zero_division("x")
    Traceback (most recent call last):
    ...
    TypeError: Expected `zero_division` to be NaN or a number in [0, 1], but got 'x'.
    """
    expected = "NaN or a number in [0, 1]"
    number = isinstance(value, (int, float, np.integer, np.floating))
    if isinstance(value, (bool, np.bool_)) or not number:
        raise TypeError(MSG_TYPE.format(name="zero_division", expected=expected, got=repr(value)))
    if not (math.isnan(value) or 0.0 <= value <= 1.0):
        raise ValueError(MSG_TYPE.format(name="zero_division", expected=expected, got=repr(value)))
    return float(value)


def rates(
    weighted: torch.Tensor, counts: torch.Tensor, zero_division: float = float("nan")
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every rate by group and overall from a weighted table.

    Parameters
    ----------
    weighted, counts : Tensor ``[..., G, 4]``
        Weighted sums and row counts per cell.
    zero_division : float
        Value of a conditional rate (TPR, FPR, ...) whose denominator is zero in a group
        that has rows. Groups without rows, and whole-group rates (selection rate,
        base rate, accuracy) with zero total weight, are NaN whatever this is.

    Returns
    -------
    by_group : Tensor ``[..., G, R]``
    overall : Tensor ``[..., R]``
    undefined : Tensor ``[..., G, R]`` (bool)
        Where a value is NaN because it could not be estimated.
    """
    zero_division = check_zero_division(zero_division)
    present = counts.sum(-1) > 0
    total = weighted.sum(-2)
    by_group = _all_rates(weighted, present, zero_division)
    return by_group, _all_rates(total, None, zero_division), torch.isnan(by_group)


# The unconditional rates come first in RATE_CELLS, then the conditional ones, so that
# every rate is computed by one block of elementwise operations per kind.
_N_UNCONDITIONAL = sum(1 for _, _, cond in RATE_CELLS.values() if not cond)
assert all(cond == (i >= _N_UNCONDITIONAL) for i, (_, _, cond) in enumerate(RATE_CELLS.values()))


_UNCONDITIONAL = list(RATE_CELLS.values())[:_N_UNCONDITIONAL]
_CONDITIONAL = list(RATE_CELLS.values())[_N_UNCONDITIONAL:]
# _all_rates relies on this shape of RATE_CELLS: two-cell numerators over the whole group,
# then one-cell numerators over two cells
assert all(len(num) == 2 and den == (TN, FP, FN, TP) for num, den, _ in _UNCONDITIONAL)
assert all(len(num) == 1 and len(den) == 2 for num, den, _ in _CONDITIONAL)
# Cells gathered by _all_rates: first and second cells of the two-cell numerators, the
# one-cell numerators, first and second cells of the two-cell denominators.
_GATHER = ([n[0] for n, _, _ in _UNCONDITIONAL], [n[1] for n, _, _ in _UNCONDITIONAL],
           [n[0] for n, _, _ in _CONDITIONAL], [d[0] for _, d, _ in _CONDITIONAL],
           [d[1] for _, d, _ in _CONDITIONAL])
_GATHER_ON: dict[torch.device, tuple[torch.Tensor, ...]] = {}


def _gather_index(device: torch.device) -> tuple[torch.Tensor, ...]:
    """The index tensors of ``_GATHER`` on ``device``, made there once (from fills, so
    nothing is copied from the host) and kept."""
    found = _GATHER_ON.get(device)
    if found is None:
        found = _GATHER_ON[device] = tuple(
            torch.stack([torch.full((), i, dtype=torch.long, device=device) for i in cells])
            for cells in _GATHER)
    return found


def _all_rates(
    table: torch.Tensor, present: torch.Tensor | None, zero_division: float
) -> torch.Tensor:
    """Every rate ``[..., R]`` from a table ``[..., 4]``.

    Every cell sum adds its cells in the order Python's ``sum`` does (the per-rate
    reference in the tests agrees bit for bit): the group total as ``((TN + FP) + FN)
    + TP``, the two-cell sums as one addition each, gathered together (a handful of
    operations instead of one per rate: the fixed cost of a metric call on small data).
    Then all rates are divided and filled together.
    """
    first, second, single, den_first, den_second = _gather_index(table.device)
    total = table[..., TN] + table[..., FP]
    total = total + table[..., FN]
    total = total + table[..., TP]
    num = torch.cat([table.index_select(-1, first) + table.index_select(-1, second),
                     table.index_select(-1, single)], -1)
    den = torch.cat([total.unsqueeze(-1).expand(*total.shape, len(_UNCONDITIONAL)),
                     table.index_select(-1, den_first) + table.index_select(-1, den_second)], -1)
    zero = den == 0
    value = num / torch.where(zero, 1.0, den)
    k = _N_UNCONDITIONAL
    if present is None:
        fill: Any = zero_division
    else:
        fill = torch.where(present, zero_division, float("nan")).unsqueeze(-1)
    return torch.cat([torch.where(zero[..., :k], float("nan"), value[..., :k]),
                      torch.where(zero[..., k:], fill, value[..., k:])], -1)


def _nan_extreme(x: torch.Tensor, largest: bool) -> torch.Tensor:
    """max/min over the last dim skipping NaN; NaN when every entry is NaN (as pandas)."""
    nan = torch.isnan(x)
    fill = float("-inf") if largest else float("inf")
    filled = torch.where(nan, fill, x)
    ext = filled.amax(-1) if largest else filled.amin(-1)
    return torch.where(nan.all(-1), float("nan"), ext)


def nanmax(x: torch.Tensor) -> torch.Tensor:
    """Max over the last dimension, skipping NaN."""
    return _nan_extreme(x, True)


def nanmin(x: torch.Tensor) -> torch.Tensor:
    """Min over the last dimension, skipping NaN."""
    return _nan_extreme(x, False)


def difference(by_group: torch.Tensor, overall: torch.Tensor, method: str) -> torch.Tensor:
    """fairlearn's ``MetricFrame.difference`` over the last dimension."""
    if method == "between_groups":
        return nanmax(by_group) - nanmin(by_group)
    return nanmax((by_group - overall.unsqueeze(-1)).abs())


def ratio(by_group: torch.Tensor, overall: torch.Tensor, method: str) -> torch.Tensor:
    """fairlearn's ``MetricFrame.ratio`` over the last dimension."""
    if method == "between_groups":
        return nanmin(by_group) / nanmax(by_group)
    r = by_group / overall.unsqueeze(-1)
    return nanmin(torch.where(r > 1, 1.0 / r, r))


def combine_two(first: torch.Tensor, second: torch.Tensor, agg: str, largest: bool) -> torch.Tensor:
    """Aggregate the TPR and FPR parts of equalized odds exactly as fairlearn does.

    ``worst_case`` mirrors Python's built-in ``max``/``min`` over ``[tpr, fpr]``: the
    first value is kept unless the second compares strictly greater (smaller), so a
    NaN first value wins.  ``mean`` skips NaN, as a pandas mean does.
    """
    if agg == "worst_case":
        better = second > first if largest else second < first
        return torch.where(better, second, first)
    both = torch.stack([first, second], -1)
    nan = torch.isnan(both)
    count = (~nan).sum(-1)
    total = torch.where(nan, 0.0, both).sum(-1)
    return torch.where(count > 0, total / count.clamp(min=1), float("nan"))


# name: (rates it is built from, "difference" | "ratio")
MEASURES: dict[str, tuple[tuple[str, ...], str]] = {
    "demographic_parity_difference": (("selection_rate",), "difference"),
    "demographic_parity_ratio": (("selection_rate",), "ratio"),
    "equal_opportunity_difference": (("true_positive_rate",), "difference"),
    "equal_opportunity_ratio": (("true_positive_rate",), "ratio"),
    "equalized_odds_difference": (("true_positive_rate", "false_positive_rate"), "difference"),
    "equalized_odds_ratio": (("true_positive_rate", "false_positive_rate"), "ratio"),
    "predictive_parity_difference": (("positive_predictive_value",), "difference"),
    "predictive_parity_ratio": (("positive_predictive_value",), "ratio"),
    "accuracy_difference": (("accuracy",), "difference"),
    "accuracy_ratio": (("accuracy",), "ratio"),
}


def measure(
    by_group: torch.Tensor,
    overall: torch.Tensor,
    name: str,
    method: str = "between_groups",
    agg: str = "worst_case",
) -> torch.Tensor:
    """A parity measure from rates ``[..., G, R]`` and overall ``[..., R]``."""
    rate_names, kind = MEASURES[name]
    parts = []
    for rate in rate_names:
        r = RATES.index(rate)
        op = difference if kind == "difference" else ratio
        parts.append(op(by_group[..., r], overall[..., r], method))
    if len(parts) == 1:
        return parts[0]
    return combine_two(parts[0], parts[1], agg, largest=kind == "difference")


def all_measures(
    by_group: torch.Tensor, overall: torch.Tensor, method: str = "between_groups",
    agg: str = "worst_case",
) -> torch.Tensor:
    """Every parity measure ``[..., M]`` (in the order of ``MEASURES``) at once.

    Equal, value for value, to :func:`measure` for each name: the same elementwise
    operations, applied to all rates together.
    """
    by_rate = by_group.transpose(-1, -2)
    parts = {"difference": difference(by_rate, overall, method),
             "ratio": ratio(by_rate, overall, method)}
    out = []
    for rate_names, kind in MEASURES.values():
        values = [parts[kind][..., RATES.index(r)] for r in rate_names]
        out.append(values[0] if len(values) == 1
                   else combine_two(values[0], values[1], agg, largest=kind == "difference"))
    return torch.stack(out, -1)
