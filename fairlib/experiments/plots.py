"""The accuracy-fairness front: one point per method with intervals on both axes."""

from __future__ import annotations

from collections.abc import Sequence

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # matplotlib is imported when drawing: study workers never pay for it
    from matplotlib.axes import Axes

from .._validation import MSG_TYPE


def pareto_front(x: Sequence[float], y: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower ``x``, higher ``y``),
    ordered by ``x``.

    Examples
    --------
    >>> from fairlib.experiments.plots import pareto_front
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
    >>> from fairlib.experiments import plot_front, summarize
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
    for i, method in enumerate(summary.index):
        row = summary.loc[method]
        xerr = np.array([[xs[i] - float(row[(fairness, "lower")])], [float(row[(fairness, "upper")]) - xs[i]]])
        yerr = np.array([[ys[i] - float(row[(accuracy, "lower")])], [float(row[(accuracy, "upper")]) - ys[i]]])
        ax.errorbar(xs[i], ys[i], xerr=None if np.isnan(xerr).any() else xerr,
                    yerr=None if np.isnan(yerr).any() else yerr, fmt="o", color=f"C{i % 10}", capsize=3,
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
