"""Intervals for the reader: one text format, tables of them, and glue for the prose.

Levels print without a sign ("0.912 [0.905, 0.918]"), differences with one
("+0.004 [-0.017, +0.024]"), so a reader can tell them apart. Both tables come from
:func:`fairlib.experiments.summarize` (levels) or :func:`fairlib.experiments.compare`
(differences against a baseline).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import pandas as pd

from .._validation import MSG_TYPE


def interval_text(estimate: float, lower: float, upper: float, *, digits: int = 3,
                  signed: bool = False, scale: float = 1.0) -> str:
    """``"estimate [lower, upper]"``, with an explicit sign for differences.

    Examples
    --------
    >>> from fairlib.book.report import interval_text
    >>> interval_text(0.0042, -0.0171, 0.0243, signed=True)
    '+0.004 [-0.017, +0.024]'
    >>> interval_text(0.912, 0.905, 0.918, digits=1, scale=100)
    '91.2 [90.5, 91.8]'
    """
    fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
    values = [fmt.format(v * scale) if not math.isnan(v) else "n/a" for v in (estimate, lower, upper)]
    return f"{values[0]} [{values[1]}, {values[2]}]"


def _is_comparison(frame: pd.DataFrame) -> bool:
    return "difference" in frame.columns and isinstance(frame.index, pd.MultiIndex)


def _check(frame: object) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame) or not (
            _is_comparison(frame) or isinstance(frame.columns, pd.MultiIndex)):
        raise TypeError(MSG_TYPE.format(name="frame", expected="the table of fairlib.experiments.summarize "
                                        "or compare", got=type(frame).__name__))
    return frame


def _triples(frame: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float, float]]:
    """``{(row, metric): (estimate, lower, upper)}`` of a summary or a comparison."""
    if _is_comparison(frame):
        return {(str(r), str(m)): (row["difference"], row["lower"], row["upper"])
                for (r, m), row in frame.iterrows()}
    metrics = list(dict.fromkeys(frame.columns.get_level_values(0)))
    return {(str(r), m): (row[(m, "mean")], row[(m, "lower")], row[(m, "upper")])
            for r, row in frame.iterrows() for m in metrics}


def interval_table(frame: pd.DataFrame, metrics: Sequence[str] | None = None, *,
                   names: Mapping[str, str] | None = None, digits: int | Mapping[str, int] = 3,
                   scale: Mapping[str, float] | None = None) -> pd.DataFrame:
    """A table of interval texts: one row per method, one column per metric.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`~fairlib.experiments.summarize` (levels, unsigned) or
        :func:`~fairlib.experiments.compare` (differences, signed).
    metrics : sequence of str, optional
        Which metrics and in what order (default: all).
    names : mapping, optional
        Column titles per metric.
    digits, scale : int or mapping, mapping
        Decimals and a multiplier per metric (e.g. ``{"test_accuracy": 100}`` for points).

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.experiments import summarize
    >>> from fairlib.book.report import interval_table
    >>> runs = pd.DataFrame({"method": ["A"] * 3, "acc": [0.90, 0.92, 0.91]})
    >>> interval_table(summarize(runs, ["acc"], n_boot=200), names={"acc": "accuracy"}).iloc[0, 0]
    '0.910 [0.900, 0.920]'
    """
    frame = _check(frame)
    signed = _is_comparison(frame)
    triples = _triples(frame)
    rows = list(dict.fromkeys(r for r, _ in triples))
    metrics = list(metrics) if metrics is not None else list(dict.fromkeys(m for _, m in triples))
    names, scale = dict(names or {}), dict(scale or {})
    out = {}
    for m in metrics:
        d = digits.get(m, 3) if isinstance(digits, Mapping) else digits
        out[names.get(m, m)] = [interval_text(*triples[r, m], digits=d, signed=signed, scale=scale.get(m, 1.0))
                                if (r, m) in triples else "" for r in rows]
    return pd.DataFrame(out, index=pd.Index(rows, name=frame.index.names[0]))


def _key(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def note_intervals(frame: pd.DataFrame, prefix: str = "", *, names: Mapping[str, str] | None = None,
                   scale: Mapping[str, float] | None = None) -> list[str]:
    """Glue every estimate and interval of a summary or a comparison for the prose.

    For a summary, ``<prefix><method>_<metric>`` (the mean) and ``..._lo`` / ``..._hi``;
    for a comparison, ``<prefix><method>_<metric>_diff`` with ``_lo`` / ``_hi`` and
    ``..._diff_zero``: ``"includes"`` or ``"excludes"`` (whether the interval holds 0).
    Names are lower case with other characters as ``_``; ``names`` shortens metrics
    (``{"test_equal_opportunity_difference": "eo"}``).

    Returns
    -------
    list of str
        The glue keys, in order.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.experiments import summarize
    >>> from fairlib.book.report import note_intervals
    >>> runs = pd.DataFrame({"method": ["ERM"] * 3, "test_accuracy": [0.90, 0.92, 0.91]})
    >>> note_intervals(summarize(runs, ["test_accuracy"], n_boot=200), names={"test_accuracy": "acc"})
    ['erm_acc', 'erm_acc_lo', 'erm_acc_hi']
    """
    from .glue import note

    frame = _check(frame)
    names, scale = dict(names or {}), dict(scale or {})
    comparison = _is_comparison(frame)
    keys = []
    for (row, metric), (est, lo, hi) in _triples(frame).items():
        base = prefix + _key(row) + "_" + _key(names.get(metric, metric)) + ("_diff" if comparison else "")
        k = scale.get(metric, 1.0)
        for suffix, value in (("", est), ("_lo", lo), ("_hi", hi)):
            note(base + suffix, value * k)
            keys.append(base + suffix)
        if comparison:
            note(base + "_zero", "includes" if frame.loc[(row, metric), "consistent_with_zero"] else "excludes")
            keys.append(base + "_zero")
    return keys
