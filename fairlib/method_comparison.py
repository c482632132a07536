"""Compare training methods run over the same seeds: paired changes and a trade-off figure.

When every method is trained once per seed, and the seed fixes the split, the
initialisation and the data order, the runs of two methods with the same seed are
*paired*. :func:`paired_differences` summarises each method against a baseline by the
per-seed differences, with a Student-t interval over seeds, and by the relative change of
the means. :func:`plot_accuracy_fairness` draws a summary from
:func:`fairlib.experiments.seed_summary` as one point per method with intervals on both
axes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

__all__ = ["paired_differences", "plot_accuracy_fairness"]

MSG_EXPECTED = "Expected `{name}` to be {expected}, but got {got}."
_STATS = ("difference", "lower", "upper", "relative", "n")


def _error(name: str, expected: str, got: object) -> str:
    return MSG_EXPECTED.format(name=name, expected=expected, got=got)


def _check_frame(frame: pd.DataFrame, metrics: Sequence[str], baseline: str, by: str,
                 pair_on: str, level: float) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(_error("frame", "a pandas DataFrame", type(frame).__name__))
    if not 0 < level < 1:
        raise ValueError(_error("level", "in (0, 1)", repr(level)))
    if isinstance(metrics, str) or len(metrics) == 0:
        raise ValueError(_error("metrics", "a non-empty list of column names", repr(metrics)))
    missing = [c for c in [*metrics, by, pair_on] if c not in frame.columns]
    if missing:
        raise ValueError(_error("frame", f"a DataFrame with the columns {missing}",
                                f"columns {list(frame.columns)}"))
    if baseline not in set(frame[by]):
        raise ValueError(_error("baseline", f"a value of column {by!r}", repr(baseline)))
    if frame.duplicated([by, pair_on]).any():
        raise ValueError(_error("frame", f"a DataFrame with one row per ({by}, {pair_on})",
                                "duplicate rows"))


def paired_differences(frame: pd.DataFrame, metrics: Sequence[str], *, baseline: str,
                       by: str = "method", pair_on: str = "seed",
                       level: float = 0.95) -> pd.DataFrame:
    """Per-method change of each metric against ``baseline``, paired over seeds.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per method and seed (as from :func:`fairlib.experiments.over_seeds`).
    metrics : sequence of str
        Columns to compare.
    baseline : str
        The value of ``by`` every other method is compared with.
    by, pair_on : str
        Column naming the method, and column pairing the runs (the seed).
    level : float
        Coverage of the t interval of the mean difference.

    Returns
    -------
    pandas.DataFrame
        Index: the methods other than the baseline (in order of appearance); columns
        ``(metric, stat)`` with stats ``difference`` (mean over seeds of method minus
        baseline), ``lower``, ``upper`` (t interval; NaN with a single pair),
        ``relative`` (mean of the method over mean of the baseline, minus 1) and ``n``
        (number of pairs). A seed missing for either method is left out of that pair.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.method_comparison import paired_differences
    >>> runs = pd.DataFrame({"method": ["erm", "new"] * 3, "seed": [0, 0, 1, 1, 2, 2],
    ...                      "gap": [0.20, 0.10, 0.30, 0.12, 0.25, 0.11]})
    >>> out = paired_differences(runs, ["gap"], baseline="erm")
    >>> cols = [("gap", "difference"), ("gap", "relative"), ("gap", "n")]
    >>> out.loc["new", cols].round(3).tolist()
    [-0.14, -0.56, 3.0]
    """
    _check_frame(frame, metrics, baseline, by, pair_on, level)
    from scipy import stats

    base = frame[frame[by] == baseline].set_index(pair_on)
    methods = [m for m in dict.fromkeys(frame[by]) if m != baseline]
    out: dict[tuple[str, str], list[float]] = {(m, s): [] for m in metrics for s in _STATS}
    for method in methods:
        runs = frame[frame[by] == method].set_index(pair_on)
        common = runs.index.intersection(base.index)
        for metric in metrics:
            ours = runs.loc[common, metric].astype(float)
            theirs = base.loc[common, metric].astype(float)
            diff = ours - theirs
            k = len(diff)
            mean = float(diff.mean()) if k else math.nan
            half = (float(stats.t.ppf((1 + level) / 2, k - 1)) * float(diff.std(ddof=1))
                    / math.sqrt(k)) if k > 1 else math.nan
            base_mean = float(theirs.mean()) if k else math.nan
            relative = float(ours.mean()) / base_mean - 1 if k and base_mean != 0 else math.nan
            for stat, value in zip(_STATS, (mean, mean - half, mean + half, relative, float(k)),
                                   strict=True):
                out[(metric, stat)].append(value)
    result = pd.DataFrame(out, index=pd.Index(methods, name=by))
    result.columns = pd.MultiIndex.from_tuples(result.columns)
    return result


def plot_accuracy_fairness(summary: pd.DataFrame, *,
                           fairness: str = "equal_opportunity_difference",
                           accuracy: str = "accuracy", fairness_label: str | None = None,
                           accuracy_label: str | None = None, highlight: Sequence[str] = (),
                           ax: Axes | None = None) -> Axes:
    """One point per method: a fairness gap (x) against accuracy (y), with intervals.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`fairlib.experiments.seed_summary` with both metrics: index the
        methods, columns ``(metric, stat)`` with stats ``mean``, ``lower``, ``upper``.
    fairness, accuracy : str
        The two metrics (column names in ``summary``).
    fairness_label, accuracy_label : str, optional
        Axis labels; default the metric names.
    highlight : sequence of str
        Methods drawn with a larger marker and named in bold in the legend.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when not given.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.experiments import seed_summary
    >>> from fairlib.method_comparison import plot_accuracy_fairness
    >>> runs = pd.DataFrame({"method": ["a", "a", "b", "b"], "acc": [0.8, 0.82, 0.85, 0.86],
    ...                      "gap": [0.2, 0.25, 0.05, 0.07]})
    >>> summary = seed_summary(runs, ["acc", "gap"])
    >>> ax = plot_accuracy_fairness(summary, fairness="gap", accuracy="acc")
    >>> len(ax.containers)
    2
    """
    if not isinstance(summary, pd.DataFrame) or not isinstance(summary.columns, pd.MultiIndex):
        raise TypeError(_error("summary", "a DataFrame from seed_summary (columns (metric, stat))",
                               type(summary).__name__))
    for metric in (fairness, accuracy):
        for stat in ("mean", "lower", "upper"):
            if (metric, stat) not in summary.columns:
                known = sorted(set(summary.columns.get_level_values(0)))
                raise ValueError(_error("summary", f"a column {(metric, stat)!r}",
                                        f"metrics {known}"))
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5))
    elif not isinstance(ax, Axes):
        raise TypeError(_error("ax", "a matplotlib Axes or None", type(ax).__name__))
    for i, method in enumerate(summary.index):
        row = summary.loc[method]
        x, y = float(row[(fairness, "mean")]), float(row[(accuracy, "mean")])
        xerr = np.array([[x - float(row[(fairness, "lower")])],
                         [float(row[(fairness, "upper")]) - x]])
        yerr = np.array([[y - float(row[(accuracy, "lower")])],
                         [float(row[(accuracy, "upper")]) - y]])
        ax.errorbar(x, y, xerr=None if np.isnan(xerr).any() else xerr,
                    yerr=None if np.isnan(yerr).any() else yerr, fmt="o",
                    color=f"C{i % 10}", capsize=3,
                    markersize=9 if method in highlight else 6, label=str(method))
    legend = ax.legend(frameon=False, fontsize="small")
    bold = {str(m) for m in highlight}
    for text in legend.get_texts():
        if text.get_text() in bold:
            text.set_fontweight("bold")
    ax.set_xlabel(fairness_label or fairness)
    ax.set_ylabel(accuracy_label or accuracy)
    ax.grid(alpha=0.3)
    return ax
