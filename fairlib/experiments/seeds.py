"""Repeat an experiment over seeds and summarise it with intervals.

Chapters compare methods by running each several times with different seeds; these
two functions keep that bookkeeping out of the notebooks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

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
    """Mean over seeds with a percentile-bootstrap interval, per ``by`` group and metric.

    The same interval as :func:`~fairlib.experiments.summarize` (seeds resampled, so it
    stays between the smallest and largest per-seed value and contains the mean), plus
    the standard deviation over seeds. It describes run-to-run variation (seeds of the
    split, the initialisation and the data order), not sampling error of a fixed test
    set. With one seed the bounds are NaN and a warning says so.

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
    >>> round(float(s.loc["a", ("acc", "mean")]), 3), float(s.loc["a", ("acc", "upper")]) <= 1.0
    (0.9, True)
    """
    from .protocol import summarize

    if not 0 < level < 1:
        raise ValueError(f"Expected `level` to be in (0, 1), but got {level!r}.")
    missing = [m for m in metrics if m not in frame.columns]
    if missing:
        raise ValueError(f"Expected `metrics` to be columns of `frame`, but got unknown {missing}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning below, not one per metric
        boot = summarize(frame, list(metrics), by=by, level=level)
    out = {}
    for metric in metrics:
        out[(metric, "mean")] = boot[(metric, "mean")]
        out[(metric, "sd")] = frame.groupby(by, sort=False)[metric].std(ddof=1)
        out[(metric, "lower")] = boot[(metric, "lower")]
        out[(metric, "upper")] = boot[(metric, "upper")]
        out[(metric, "n")] = boot[(metric, "n")].astype(int)
    if (frame.groupby(by, sort=False).size() < 2).any():
        warnings.warn("seed_summary: a group has a single seed; its interval is NaN.", UserWarning, stacklevel=2)
    return pd.DataFrame(out)
