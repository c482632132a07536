"""Comparing methods: the accuracy-fairness front, sweeps and per-metric intervals.

Each function takes a summary over seeds (columns ``(metric, stat)`` with stats ``mean``,
``lower``, ``upper``), as :func:`fairlib.experiments.summarize` or
:func:`fairlib.experiments.seed_summary` return, and draws on matplotlib axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._validation import MSG_TYPE

#: marker of each round through the colour cycle (methods beyond its length)
MARKERS = ("o", "s", "^", "D", "v")

if TYPE_CHECKING:  # matplotlib is imported when drawing
    from matplotlib.axes import Axes


def pareto_front(x: Sequence[float], y: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower ``x``, higher ``y``),
    ordered by ``x``.

    Examples
    --------
    >>> from fairlib.plotting import pareto_front
    >>> pareto_front([0.1, 0.2, 0.3], [0.8, 0.7, 0.9])
    [0, 2]
    """
    order = sorted(range(len(x)), key=lambda i: (x[i], -y[i]))
    front, best = [], -np.inf
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return front


def plot_front(summary: pd.DataFrame, *, fairness: str = "test_equal_opportunity_difference",
               accuracy: str = "test_accuracy", fairness_label: str | None = None,
               accuracy_label: str | None = None, highlight: Sequence[str] = (),
               ax: Axes | None = None) -> Any:
    """One point per method: a fairness gap (x) against accuracy (y), with intervals,
    and a line through the methods no other method beats on both.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`~fairlib.experiments.summarize` with both metrics: index the methods,
        columns ``(metric, stat)`` with stats ``mean``, ``lower``, ``upper``.
    fairness, accuracy : str
        The two metrics (lower gap is better, higher accuracy is better).
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
    >>> from fairlib.experiments import summarize
    >>> from fairlib.plotting import plot_front
    >>> runs = pd.DataFrame({"method": ["a", "a", "b", "b"], "acc": [0.8, 0.82, 0.85, 0.86],
    ...                      "gap": [0.2, 0.25, 0.05, 0.07]})
    >>> ax = plot_front(summarize(runs, ["acc", "gap"]), fairness="gap", accuracy="acc")
    >>> len(ax.containers)
    2
    """
    if not isinstance(summary, pd.DataFrame) or not isinstance(summary.columns, pd.MultiIndex):
        raise TypeError(MSG_TYPE.format(name="summary", expected="a DataFrame from summarize "
                                        "(columns (metric, stat))", got=type(summary).__name__))
    for metric in (fairness, accuracy):
        for stat in ("mean", "lower", "upper"):
            if (metric, stat) not in summary.columns:
                known = sorted(set(summary.columns.get_level_values(0)))
                raise ValueError(MSG_TYPE.format(name="summary", expected=f"a column {(metric, stat)!r}",
                                                 got=f"metrics {known}"))
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    elif not isinstance(ax, Axes):
        raise TypeError(MSG_TYPE.format(name="ax", expected="a matplotlib Axes or None",
                                        got=type(ax).__name__))
    xs = summary[(fairness, "mean")].astype(float).to_numpy()
    ys = summary[(accuracy, "mean")].astype(float).to_numpy()
    # more methods than colours in the cycle: the next round of colours gets another marker
    n_colors = max(1, len(plt.rcParams["axes.prop_cycle"].by_key().get("color", [])))
    for i, method in enumerate(summary.index):
        row = summary.loc[method]
        xerr = np.array([[xs[i] - float(row[(fairness, "lower")])], [float(row[(fairness, "upper")]) - xs[i]]])
        yerr = np.array([[ys[i] - float(row[(accuracy, "lower")])], [float(row[(accuracy, "upper")]) - ys[i]]])
        ax.errorbar(xs[i], ys[i], xerr=None if np.isnan(xerr).any() else xerr,
                    yerr=None if np.isnan(yerr).any() else yerr, fmt=MARKERS[i // n_colors % len(MARKERS)],
                    color=f"C{i % n_colors}", capsize=3,
                    markersize=9 if method in highlight else 6, label=str(method))
    front = pareto_front(list(xs), list(ys))
    if len(front) > 1:
        ax.plot(xs[front], ys[front], color="0.5", linestyle="--", linewidth=1, zorder=0,
                label="front")
    legend = ax.legend(frameon=False, fontsize="small")
    bold = {str(m) for m in highlight}
    for text in legend.get_texts():
        if text.get_text() in bold:
            text.set_fontweight("bold")
    ax.set_xlabel(fairness_label or fairness)
    ax.set_ylabel(accuracy_label or accuracy)
    ax.grid(alpha=0.3)
    return ax


#: Widest new figure (inches): the width of the book's text column, which
#: :data:`fairlib.book.figures.COLUMN_INCHES` takes from here.
MAX_WIDTH = 6.8


def _panels(n: int, *, panel: tuple[float, float], extra: tuple[float, float], sharey: bool) -> np.ndarray:
    """``n`` panels of about ``panel`` inches in a new figure no wider than :data:`MAX_WIDTH`:
    as many columns as fit, then more rows; unused slots removed."""
    import matplotlib.pyplot as plt

    cols = max(1, min(n, int((MAX_WIDTH - extra[0]) // panel[0])))
    rows = -(-n // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(min(MAX_WIDTH, cols * panel[0] + extra[0]),
                                                  rows * panel[1] + extra[1]),
                             sharey=sharey, squeeze=False, layout="constrained")
    flat = grid.ravel()
    for ax in flat[n:]:
        fig.delaxes(ax)
    return flat[:n]


def plot_sweep(summary: pd.DataFrame, *, x: str, metrics: Sequence[str], by: str = "method",
               labels: Mapping[str, str] | None = None, axes: Sequence[Axes] | None = None,
               sharey: bool = True, ylim: tuple[float, float] | None = None,
               xlabel: str | None = None, log_x: bool = False) -> np.ndarray:
    """One panel per metric: its mean over seeds along ``x``, a line per ``by``, with bands.

    Parameters
    ----------
    summary : pandas.DataFrame
        The output of :func:`fairlib.experiments.seed_summary` with ``by=[by, x]``: index
        levels ``by`` and ``x``, columns ``(metric, "mean" | "lower" | "upper")``.
    x : str
        The swept quantity (an index level with numeric values).
    metrics : sequence of str
        Metrics to draw, one panel each.
    by : str, default "method"
        The index level that gives one line per value, in order of appearance.
    labels : mapping of str to str, optional
        Panel titles per metric (default: the metric name with spaces).
    axes : sequence of matplotlib Axes, optional
        One per metric; a new figure when omitted.
    sharey : bool, default True
        Same y range on every panel (in a new figure).
    ylim : tuple of float, optional
        y range of every panel, e.g. ``(0, 1)`` for accuracies: intervals from a few
        seeds can be wider than the range a metric can take.
    xlabel : str, optional
        Label of the x axes (default: ``x`` with spaces).
    log_x : bool, default False
        A logarithmic x axis that still shows 0 (symmetric log, linear below the smallest
        positive value), for sweeps such as weight decays that include 0.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from fairlib.experiments import seed_summary
    >>> from fairlib.plotting import plot_sweep
    >>> runs = pd.DataFrame({"method": ["a"] * 4, "strength": [0.5, 0.5, 0.9, 0.9],
    ...                      "acc": [0.9, 0.8, 0.7, 0.6]})
    >>> axes = plot_sweep(seed_summary(runs, ["acc"], by=["method", "strength"]),
    ...                   x="strength", metrics=["acc"])
    >>> axes[0].get_lines()[0].get_ydata().round(2).tolist()
    [0.85, 0.65]
    """
    import seaborn as sns

    if not isinstance(summary.index, pd.MultiIndex) or {by, x} - set(summary.index.names):
        raise ValueError(MSG_TYPE.format(
            name="summary", expected=f"a seed_summary frame indexed by [{by!r}, {x!r}]",
            got=f"index levels {list(summary.index.names)}"))
    missing = [m for m in metrics if (m, "mean") not in summary.columns]
    if missing or not metrics:
        raise ValueError(MSG_TYPE.format(name="metrics",
                                         expected="metrics summarised in `summary`",
                                         got=repr(missing or metrics)))
    if axes is None:
        axes = _panels(len(metrics), panel=(3.3, 3.0), extra=(0.0, 0.4), sharey=sharey)
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) != len(metrics):
        raise ValueError(MSG_TYPE.format(name="axes",
                                         expected=f"{len(metrics)} Axes (one per metric)",
                                         got=f"{len(axes)}"))
    keys = list(dict.fromkeys(summary.index.get_level_values(by)))
    colors = sns.color_palette("colorblind", len(keys))
    markers = ("o", "s", "D", "^", "v", "P", "X")
    for ax, metric in zip(axes, metrics, strict=True):
        for j, key in enumerate(keys):
            part = summary.xs(key, level=by).sort_index()
            xs = part.index.get_level_values(x).to_numpy(dtype=float)
            ax.plot(xs, part[(metric, "mean")], marker=markers[j % len(markers)], color=colors[j],
                    label=str(key))
            lo = part[(metric, "lower")].to_numpy(float)
            hi = part[(metric, "upper")].to_numpy(float)
            if np.isfinite(lo).any():
                ax.fill_between(xs, lo, hi, color=colors[j], alpha=0.15, linewidth=0)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_title((labels or {}).get(metric, metric.replace("_", " ")))
        ax.set_xlabel(xlabel or x.replace("_", " "))
        values = summary.index.get_level_values(x).to_numpy(dtype=float)
        if log_x and (values > 0).any():
            low, high = values[values > 0].min(), values.max()
            ax.set_xscale("symlog", linthresh=low)
            ax.set_xlim(-0.3 * low if (values <= 0).any() else 0.7 * low, 1.5 * high)
        ax.grid(color="0.9")
        ax.set_axisbelow(True)
    axes[-1].legend(frameon=False, loc="best")
    return axes


def plot_method_intervals(
    summary: pd.DataFrame,
    metrics: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    axes: Any = None,
    reference: float | None = None,
) -> Any:
    """One panel per metric: each method's mean over seeds with its interval.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`fairlib.experiments.seed_summary` or :func:`fairlib.experiments.summarize`.
    metrics : sequence of str
        Metrics to draw, one panel each.
    labels : mapping, optional
        Metric -> panel title.
    axes : sequence of matplotlib Axes, optional
        One per metric; a new figure otherwise.
    reference : float, optional
        Draw a vertical line there (0 for differences).

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.experiments import seed_summary
    >>> from fairlib.plotting import plot_method_intervals
    >>> runs = pd.DataFrame({"method": ["a", "a", "b", "b"], "acc": [0.8, 0.9, 0.7, 0.8]})
    >>> axes = plot_method_intervals(seed_summary(runs, ["acc"]), ["acc"])
    >>> [t.get_text() for t in axes[0].get_yticklabels()]
    ['a', 'b']
    """
    metrics = list(metrics)
    if axes is None:
        axes = _panels(len(metrics), panel=(2.6, 0.32 * len(summary) + 0.9), extra=(1.2, 0.3),
                       sharey=True)
    axes = np.atleast_1d(axes)
    methods = list(summary.index)
    y = np.arange(len(methods))
    for ax, metric in zip(axes, metrics, strict=True):
        mean = summary[(metric, "mean")].to_numpy(dtype=float)
        lo = summary[(metric, "lower")].to_numpy(dtype=float)
        hi = summary[(metric, "upper")].to_numpy(dtype=float)
        err = np.vstack([mean - lo, hi - mean])
        ax.errorbar(mean, y, xerr=np.where(np.isfinite(err), err, 0.0), fmt="o", color="C0",
                    ecolor="0.4", capsize=3)
        if reference is not None:
            ax.axvline(reference, color="0.6", lw=1, ls="--")
        ax.set_title((labels or {}).get(metric, metric.replace("_", " ")), fontsize="medium")
        ax.set_yticks(y)
        ax.set_yticklabels(methods)
        if not ax.yaxis_inverted():  # shared y axes invert together
            ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    return axes
