"""Repeat an experiment over seeds and summarise it with intervals.

Chapters compare methods by running each several times with different seeds; these
two functions keep that bookkeeping out of the notebooks.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._progress import progress as show_progress


def over_seeds(run: Callable[[int], dict[str, Any] | list[dict[str, Any]]], seeds: Sequence[int], *,
               progress: bool = True, desc: str = "seeds") -> pd.DataFrame:
    """Call ``run(seed)`` for every seed and stack the results.

    Parameters
    ----------
    run : callable
        Takes a seed, returns one row (a dict) or several rows (a list of dicts), for
        example one per method.
    seeds : sequence of int
        The seeds, in order.
    progress : bool
        Show a tqdm bar over the seeds.

    Returns
    -------
    pandas.DataFrame
        One row per returned dict, with a ``seed`` column.

    Examples
    --------
    >>> from fairlib.experiments import over_seeds
    >>> over_seeds(lambda s: {"method": "a", "x": s * 2}, [0, 1], progress=False)
       seed method  x
    0     0      a  0
    1     1      a  2
    """
    if len(seeds) == 0:
        raise ValueError("Expected `seeds` to hold at least one seed, but got none.")
    rows = []
    for seed in show_progress(list(seeds), progress, desc=desc, leave=False):
        out = run(seed)
        for row in out if isinstance(out, list) else [out]:
            rows.append({"seed": seed, **row})
    return pd.DataFrame(rows)


def seed_summary(frame: pd.DataFrame, metrics: Sequence[str], *, by: str | Sequence[str] = "method",
                 level: float = 0.95) -> pd.DataFrame:
    """Mean over seeds with a Student-t interval, per ``by`` group and metric.

    The interval is ``mean +- t_{(1+level)/2, k-1} * sd / sqrt(k)`` for ``k`` seeds: it
    describes run-to-run variation (seeds of the split, the initialisation and the data
    order), not sampling error of a fixed test set. With one seed the bounds are NaN
    and a warning says so.

    Returns
    -------
    pandas.DataFrame
        Index ``by``; columns ``(metric, stat)`` with stats ``mean``, ``sd``, ``lower``,
        ``upper``, ``n``.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.experiments import seed_summary
    >>> runs = pd.DataFrame({"method": ["a"] * 3, "acc": [0.8, 0.9, 1.0]})
    >>> s = seed_summary(runs, ["acc"])
    >>> round(float(s.loc["a", ("acc", "mean")]), 3), round(float(s.loc["a", ("acc", "upper")]), 3)
    (0.9, 1.148)
    """
    if not 0 < level < 1:
        raise ValueError(f"Expected `level` to be in (0, 1), but got {level!r}.")
    missing = [m for m in metrics if m not in frame.columns]
    if missing:
        raise ValueError(f"Expected `metrics` to be columns of `frame`, but got unknown {missing}.")
    from scipy import stats

    out = {}
    for metric in metrics:
        grouped = frame.groupby(by, sort=False)[metric]
        mean, sd, n = grouped.mean(), grouped.std(ddof=1), grouped.count()
        t = np.array([stats.t.ppf((1 + level) / 2, k - 1) if k > 1 else math.nan for k in n])
        half = t * sd / np.sqrt(n)
        out[(metric, "mean")] = mean
        out[(metric, "sd")] = sd
        out[(metric, "lower")] = mean - half
        out[(metric, "upper")] = mean + half
        out[(metric, "n")] = n
    if (frame.groupby(by, sort=False).size() < 2).any():
        warnings.warn("seed_summary: a group has a single seed; its interval is NaN.", UserWarning, stacklevel=2)
    return pd.DataFrame(out)
