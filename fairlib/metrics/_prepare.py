"""User-facing layer: validate inputs, encode groups, build the table, warn on NaN."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._validation import (
    ArrayLike,
    MSG_TYPE,
    as_weights,
    binary_labels,
    check_choice,
    check_lengths,
    check_scores,
    input_device,
    to_tensor,
)
from . import _core as core
from ._core import check_zero_division
from ._fast import fast_table
from ._groups import Groups, drop_unobserved, encode_groups

__all__ = ["check_array_like", "check_zero_division", "host_array", "prepare_labels"]

METHODS = ("between_groups", "to_overall")
AGGS = ("worst_case", "mean")


class UndefinedMetricWarning(UserWarning):
    """A rate could not be estimated (zero denominator or empty group) and is NaN."""


def _len(x: Any) -> int:
    if isinstance(x, dict):
        return len(next(iter(x.values()))) if x else 0
    return len(x)


def _is_scalar(x: Any) -> bool:
    """A single value where one value per sample is expected (a string counts as one)."""
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return x.ndim == 0
    scalars = (str, bytes, int, float, complex, bool, np.generic)
    return isinstance(x, scalars) or not hasattr(x, "__len__")


def check_array_like(x: Any, name: str) -> None:
    """Refuse a scalar (``1``, ``True``, ``"ab"``, a 0-d array) where samples are expected.

    ``None`` passes through: the converters name it themselves. Without this check
    ``np.asarray(1)`` would silently become one sample.
    """
    if isinstance(x, dict):
        for key, column in x.items():
            check_array_like(column, f"{name}[{key!r}]")
    elif x is not None and _is_scalar(x):
        if isinstance(x, (np.ndarray, torch.Tensor)):
            got = f"a 0-dimensional {type(x).__name__}"
        else:
            got = f"the {type(x).__name__} {x!r}"
        raise TypeError(MSG_TYPE.format(
            name=name, expected="an array-like with one value per sample", got=got))


def host_array(x: Any) -> Any:
    """pandas input as a writable numpy array (copied at most once); anything else unchanged.

    ``Series.to_numpy()`` may return a read-only view (copy-on-write), and
    ``torch.from_numpy`` warns on those.
    """
    if isinstance(x, (pd.Series, pd.DataFrame, pd.Index, pd.Categorical)):
        arr = x.to_numpy() if not isinstance(x, pd.Categorical) else np.asarray(x)
        return arr if arr.flags.writeable else arr.copy()
    return x


def prepare_labels(
    y_true: ArrayLike,
    y_pred: ArrayLike | None,
    sensitive_features: Any,
    sample_weight: ArrayLike | None,
    *,
    scores: ArrayLike | None = None,
    overall_only: bool = False,
    compact: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, Groups, torch.Tensor | None]:
    """Validate everything and return ``(y_true, y_pred, y_score, groups, weight)``.

    Labels come back as int64 0/1, scores and weights as float64, all on the device of
    the first tensor argument (CPU when none is a tensor).  With ``overall_only`` all
    rows form one group and ``sensitive_features`` is ignored.
    """
    arrays = {"y_true": y_true, "y_pred": y_pred, "y_score": scores,
              "sample_weight": sample_weight}
    if not overall_only:
        arrays["sensitive_features"] = sensitive_features
    for name, x in arrays.items():
        check_array_like(x, name)
    device = input_device(y_true, y_pred, scores, sensitive_features, sample_weight)
    yt = to_tensor(host_array(y_true), "y_true", device)
    yp = None if y_pred is None else to_tensor(host_array(y_pred), "y_pred", device)
    ys = None if scores is None else to_tensor(host_array(scores), "y_score", device)
    sample_weight = host_array(sample_weight)
    sf_len = None if overall_only or sensitive_features is None else _len(sensitive_features)
    lengths: dict[str, Any] = {"y_true": yt, "y_pred": yp, "y_score": ys}
    if sf_len is not None:
        lengths["sensitive_features"] = range(sf_len)
    if sample_weight is not None:
        lengths["sample_weight"] = range(_len(sample_weight))
    check_lengths(**lengths)
    labels = binary_labels(yt.to(device), None if yp is None else yp.to(device))
    yt_b = labels[0]
    yp_b = labels[1] if yp is not None else None
    ys_f = None if ys is None else check_scores(ys.to(device))
    weight = as_weights(sample_weight, len(yt), device)
    if overall_only:
        groups = Groups(torch.zeros(len(yt), dtype=torch.int64, device=device), (1,), [["all"]], ["group"])
    else:
        groups = encode_groups(sensitive_features, device, compact=compact)
    return yt_b, yp_b, ys_f, groups, weight


def build_table(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
    *,
    overall_only: bool = False,
    keep_rows: bool = False,
) -> tuple[torch.Tensor, Groups, tuple[torch.Tensor, torch.Tensor] | None]:
    """Validate inputs; return the ``[3, G, 4]`` count table, its groups and, for
    weighted data with ``keep_rows``, each row's ``(cell, weight)`` (for the bootstrap).
    """
    fast = fast_table(y_true, y_pred, sensitive_features, sample_weight, overall_only)
    if fast is not None:  # checked and counted in one pass; rows are only kept for weights
        table, groups = drop_unobserved(*fast)
        return table, groups, None
    yt, yp, _, groups, weight = prepare_labels(
        y_true, y_pred, sensitive_features, sample_weight, overall_only=overall_only, compact=False
    )
    assert yp is not None
    table = core.count_table(yt, yp, groups.ids, groups.num_groups, weight)
    table, groups = drop_unobserved(table, groups)
    rows = None
    if keep_rows and weight is not None:
        rows = (core.cell_index(yt, yp, groups.ids), weight)
    return table, groups, rows


def group_table(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
    overall_only: bool = False,
) -> tuple[torch.Tensor, Groups]:
    """Validate inputs and build the ``[3, G, 4]`` count table with its groups."""
    table, groups, _ = build_table(
        y_true, y_pred, sensitive_features, sample_weight, overall_only=overall_only
    )
    return table, groups


def warn_undefined(
    undefined: torch.Tensor,
    overall: torch.Tensor,
    counts: torch.Tensor,
    rate_names: Sequence[str],
    index: pd.Index,
    zero_division: float,
) -> None:
    """Emit one warning naming the groups whose requested rates are NaN.

    This reads one flag from the host; the device core below never does.
    """
    idx = [core.RATES.index(r) for r in rate_names]
    by = undefined[..., idx]
    over = torch.isnan(overall[..., idx])
    if not bool(by.any() | over.any()):  # the single host read on the success path
        return
    absent = (counts.sum(-1) == 0).cpu()
    by = by.cpu()
    parts = []
    empty = [index[g] for g in range(len(index)) if absent[g]]
    if empty:
        parts.append(f"no samples in group(s) {_fmt_groups(empty)}")
    for j, rate in enumerate(rate_names):
        bad = [index[g] for g in range(len(index)) if by[g, j] and not absent[g]]
        if bad:
            parts.append(f"{rate} has a zero denominator in group(s) {_fmt_groups(bad)}")
        if bool(over[j]):
            parts.append(f"{rate} has a zero denominator overall")
    hint = "" if not math.isnan(zero_division) else " Pass zero_division=0.0 to get fairlearn's 0."
    warnings.warn(
        "Undefined rates returned as NaN and skipped by aggregates: "
        + "; ".join(parts)
        + "."
        + (hint if any("denominator" in p for p in parts) else ""),
        UndefinedMetricWarning,
        stacklevel=3,
    )


def _fmt_groups(labels: list[Any], limit: int = 10) -> str:
    shown = ", ".join(repr(x) for x in labels[:limit])
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return f"[{shown}{more}]"


def check_options(method: str | None = None, agg: str | None = None) -> None:
    """Validate the ``method`` and ``agg`` options."""
    if method is not None:
        check_choice("method", method, METHODS)
    if agg is not None:
        check_choice("agg", agg, AGGS)
