"""Group rates, parity measures and calibration by group, with intervals.

Every function draws on a matplotlib ``Axes`` (a new figure when ``ax`` is not given) and
returns it, so figures can be combined, restyled and glued into the book.  Intervals are
drawn exactly where the data has them: a group whose rate is undefined (NaN) keeps its
row, marked "undefined", and a value without an interval is drawn as a bare point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.transforms import blended_transform_factory

from ..metrics import (
    MEASURES,
    RATES,
    BootstrapResult,
    FairnessReport,
    calibration_by_group,
)

__all__ = [
    "calibration_by_group",
    "group_label",
    "plot_calibration",
    "plot_group_rates",
    "plot_parity_measures",
]

#: Short display names of the rates in :data:`fairlib.metrics.RATES`.
RATE_LABELS: dict[str, str] = {
    "selection_rate": "selection rate",
    "base_rate": "base rate",
    "accuracy": "accuracy",
    "true_positive_rate": "TPR",
    "false_positive_rate": "FPR",
    "true_negative_rate": "TNR",
    "false_negative_rate": "FNR",
    "positive_predictive_value": "PPV",
    "negative_predictive_value": "NPV",
}

DEFAULT_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate",
                 "positive_predictive_value")
DEFAULT_MEASURES = ("demographic_parity_difference", "equal_opportunity_difference",
                    "equalized_odds_difference", "predictive_parity_difference")
_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<", ">")
_FRAME_COLUMNS = ("estimate", "lower", "upper")


def group_label(group: Any) -> str:
    """Display label of a group: the parts of an intersectional group joined by ``" & "``.

    Examples
    --------
    >>> from fairlib.plotting import group_label
    >>> group_label(("Asian", "Female")), group_label("Caucasian")
    ('Asian & Female', 'Caucasian')
    """
    if isinstance(group, tuple):
        return " & ".join(str(g) for g in group)
    return str(group)


def _check_ax(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=size)
        return ax
    if not isinstance(ax, Axes):
        raise TypeError(
            f"Expected `ax` to be a matplotlib Axes or None, but got {type(ax).__name__}."
        )
    return ax


def _check_frame(frame: Any, what: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame) or "estimate" not in frame.columns:
        raise TypeError(
            f"Expected {what} to be a DataFrame with an 'estimate' column (and optionally "
            f"'lower' and 'upper'), but got {type(frame).__name__}"
            + (f" with columns {list(frame.columns)}" if isinstance(frame, pd.DataFrame) else "")
            + "."
        )
    out = frame.copy()
    for col in ("lower", "upper"):
        if col not in out.columns:
            out[col] = np.nan
    return out[list(_FRAME_COLUMNS)].astype(float)


def _check_names(name: str, values: Sequence[str], allowed: Sequence[str]) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise ValueError(
            f"Expected `{name}` to be a non-empty list of names, but got {values!r}."
        )
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(
            f"Expected `{name}` to be among {', '.join(map(repr, allowed))}, but got {bad}."
        )
    return list(values)


def _split_overall(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series | None]:
    """Separate an ``"overall"`` row (as in ``BootstrapResult.by_group``) from the groups."""
    is_overall = np.array([isinstance(i, str) and i == "overall" for i in frame.index])
    if not is_overall.any():
        return frame, None
    return frame[~is_overall], frame[is_overall].iloc[0]


def _rate_frames(
    data: Any, rates: Sequence[str] | None
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.Series | None], pd.Series | None, float | None]:
    """Normalise the inputs of :func:`plot_group_rates` to per-rate frames."""
    n: pd.Series | None = None
    level: float | None = None
    if isinstance(data, BootstrapResult):
        names = _check_names("rates", rates or DEFAULT_RATES, RATES)
        frames = {r: data.by_group(r) for r in names}
        n, level = data.report.by_group["n"], data.level
    elif isinstance(data, FairnessReport):
        names = _check_names("rates", rates or DEFAULT_RATES, RATES)
        by, overall = data.by_group, data.overall
        frames = {}
        for r in names:
            index = pd.Index([*by.index, "overall"], tupleize_cols=False)
            est = [*by[r].to_numpy(dtype=float), float(overall[r])]
            frames[r] = pd.DataFrame({"estimate": est}, index=index)
        n = data.by_group["n"]
    elif isinstance(data, Mapping):
        names = _check_names("rates", rates or list(data), list(data))
        frames = {r: data[r] for r in names}
    else:
        raise TypeError(
            "Expected `data` to be a BootstrapResult, a FairnessReport or a mapping of rate "
            f"name to DataFrame, but got {type(data).__name__}."
        )
    groups, overall_rows = {}, {}
    for r, f in frames.items():
        f = _check_frame(f, f"the frame of rate {r!r}")
        groups[r], overall_rows[r] = _split_overall(f)
    first = next(iter(groups.values()))
    for r, f in groups.items():
        if list(f.index) != list(first.index):
            raise ValueError(
                "Expected every rate's frame to have the same groups, but "
                f"{r!r} has {list(f.index)} and {names[0]!r} has {list(first.index)}."
            )
    if n is not None:
        n = pd.Series(np.asarray(n), index=list(first.index))
    return groups, overall_rows, n, level


def plot_group_rates(
    data: BootstrapResult | FairnessReport | Mapping[str, pd.DataFrame],
    rates: Sequence[str] | None = None,
    *,
    overall: bool = True,
    show_n: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Dot-and-whisker plot of rates by group, with their intervals.

    Groups are rows (top to bottom in the data's order); each rate is a marker of its
    own colour and shape, with a horizontal line for its interval. A group whose rate is
    undefined (NaN) keeps its row and is marked "undefined".

    Parameters
    ----------
    data : BootstrapResult, FairnessReport or mapping of str to DataFrame
        A bootstrap result (estimates and percentile intervals), a report (estimates
        only, no intervals), or ``{rate name: frame}`` where each frame is indexed by
        group with columns ``estimate`` and optionally ``lower`` and ``upper``, as
        returned by :meth:`BootstrapResult.by_group`. An ``"overall"`` row is drawn
        below the groups.
    rates : sequence of str, optional
        Rates to draw (names from :data:`fairlib.metrics.RATES`, or the mapping's keys).
        Default: selection rate, TPR, FPR and PPV (all keys for a mapping).
    overall : bool, default True
        Also draw the rates computed on all rows, below a separating line.
    show_n : bool, default True
        Append the group size to each label when ``data`` knows it.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from fairlib.metrics import fairness_report
    >>> from fairlib.plotting import plot_group_rates
    >>> rep = fairness_report([1, 0, 1, 0, 1, 1], [1, 0, 0, 1, 1, 1],
    ...                       sensitive_features=list("aabbbb"))
    >>> ax = plot_group_rates(rep.bootstrap(50, seed=0), ["selection_rate"])
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['a (n=2)', 'b (n=4)', 'overall']
    """
    groups, overall_rows, n, level = _rate_frames(data, rates)
    names = list(groups)
    index = list(next(iter(groups.values())).index)
    labels = [group_label(g) for g in index]
    if show_n and n is not None:
        labels = [f"{lab} (n={int(k):,})" for lab, k in zip(labels, n.to_numpy(), strict=True)]
    draw_overall = overall and any(o is not None for o in overall_rows.values())
    if draw_overall:
        labels.append("overall")
    rows = len(labels)
    ax = _check_ax(ax, (5.6, 0.9 + 0.42 * rows * max(1.0, len(names) / 3)))  # + legend: 6.8 in
    colors = sns.color_palette("colorblind", len(names))
    width = 0.7
    step = width / len(names)
    undefined_tf = blended_transform_factory(ax.transAxes, ax.transData)
    for j, r in enumerate(names):
        frame = groups[r]
        if draw_overall:
            o = overall_rows[r]
            extra = pd.DataFrame([o.to_numpy() if o is not None else [np.nan] * 3],
                                 columns=list(_FRAME_COLUMNS), index=["overall"])
            frame = pd.concat([frame, extra])
        y = np.arange(rows) - width / 2 + step * (j + 0.5)
        est = frame["estimate"].to_numpy()
        lo, hi = frame["lower"].to_numpy(), frame["upper"].to_numpy()
        has_est = np.isfinite(est)
        has_ci = has_est & np.isfinite(lo) & np.isfinite(hi)
        if has_ci.any():
            ax.hlines(y[has_ci], lo[has_ci], hi[has_ci], colors=[colors[j]], linewidth=1.6,
                      gid=f"interval:{r}")
        ax.plot(est[has_est], y[has_est], linestyle="none", marker=_MARKERS[j % len(_MARKERS)],
                color=colors[j], markersize=5.5, label=RATE_LABELS.get(r, r), gid=f"estimate:{r}")
        for yy in y[~has_est]:
            ax.text(0.01, yy, f"{RATE_LABELS.get(r, r)} undefined", transform=undefined_tf,
                    va="center", ha="left", fontsize="x-small", color=colors[j],
                    gid=f"undefined:{r}")
    if draw_overall:
        ax.axhline(rows - 1.5, color="0.6", linewidth=0.8)
    ax.set_yticks(np.arange(rows), labels)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xlim(-0.02, 1.02)
    ax.grid(axis="x", color="0.9")
    ax.set_axisbelow(True)
    ax.set_xlabel("rate" + (f" (point estimate and {level:.0%} interval)" if level else ""))
    if len(names) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        ax.set_title(RATE_LABELS.get(names[0], names[0]))
    return ax


def _measure_frame(data: Any, measures: list[str], method: str, agg: str) -> pd.DataFrame:
    if isinstance(data, BootstrapResult):
        rows = []
        for m in measures:
            lo, hi = data.interval(m, method, agg)
            rows.append((data.report.measure(m, method, agg), lo, hi))
        return pd.DataFrame(rows, columns=list(_FRAME_COLUMNS), index=measures)
    if isinstance(data, pd.DataFrame):
        frame = data
        if isinstance(frame.index, pd.MultiIndex):
            frame = frame.xs(method, level="method") if "method" in frame.index.names else frame
        frame = _check_frame(frame, "`data`")
        missing = [m for m in measures if m not in frame.index]
        if missing:
            raise ValueError(
                f"Expected `data` to have rows for {measures}, but it lacks {missing}."
            )
        return frame.loc[measures]
    raise TypeError(
        "Expected `data` to be a BootstrapResult, a DataFrame indexed by measure or a mapping "
        f"of label to either, but got {type(data).__name__}."
    )


def plot_parity_measures(
    data: BootstrapResult | pd.DataFrame | Mapping[str, BootstrapResult | pd.DataFrame],
    measures: Sequence[str] | None = None,
    *,
    method: str = "between_groups",
    agg: str = "worst_case",
    ax: Axes | None = None,
) -> Axes:
    """Dot-and-whisker plot of parity measures (differences or ratios) with intervals.

    Parameters
    ----------
    data : BootstrapResult, DataFrame or mapping of str to either
        A bootstrap result; a frame indexed by measure name with columns ``estimate``,
        ``lower``, ``upper`` (such as :meth:`BootstrapResult.summary`, whose ``method``
        level is selected by ``method``); or ``{label: result or frame}`` to compare
        several models or data sets side by side (one colour each, with a legend).
    measures : sequence of str, optional
        Names from :data:`fairlib.metrics.MEASURES`. Default: the differences for
        demographic parity, equal opportunity, equalized odds and predictive parity.
    method : {"between_groups", "to_overall"}
        How the by-group values are aggregated.
    agg : {"worst_case", "mean"}
        How equalized odds combines its TPR and FPR parts.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes
        A dashed reference line marks parity: 0 when all measures are differences, 1
        when all are ratios (none for a mix).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from fairlib.metrics import fairness_report
    >>> from fairlib.plotting import plot_parity_measures
    >>> rep = fairness_report([1, 0, 1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 1, 0, 1],
    ...                       sensitive_features=list("aaaabbbb"))
    >>> ax = plot_parity_measures(rep.bootstrap(50, seed=0))
    >>> [t.get_text() for t in ax.get_yticklabels()][0]
    'demographic parity difference'
    """
    names = _check_names("measures", list(measures) if measures is not None else
                         list(DEFAULT_MEASURES), list(MEASURES))
    series: dict[str | None, pd.DataFrame]
    if isinstance(data, Mapping):
        if not data:
            raise ValueError(
                "Expected `data` to hold at least one result, but got an empty mapping."
            )
        series = {str(k): _measure_frame(v, names, method, agg) for k, v in data.items()}
    else:
        series = {None: _measure_frame(data, names, method, agg)}
    ax = _check_ax(ax, (5.6, 0.9 + 0.5 * len(names) * max(1.0, len(series) / 2)))  # + legend
    colors = sns.color_palette("colorblind", len(series))
    width = 0.7 if len(series) > 1 else 0.0
    step = width / len(series)
    for j, (label, frame) in enumerate(series.items()):
        y = np.arange(len(names)) - width / 2 + step * (j + 0.5)
        est = frame["estimate"].to_numpy()
        lo, hi = frame["lower"].to_numpy(), frame["upper"].to_numpy()
        has_est = np.isfinite(est)
        has_ci = has_est & np.isfinite(lo) & np.isfinite(hi)
        if has_ci.any():
            ax.hlines(y[has_ci], lo[has_ci], hi[has_ci], colors=[colors[j]], linewidth=1.8,
                      gid=f"interval:{label}")
        ax.plot(est[has_est], y[has_est], linestyle="none", marker=_MARKERS[j % len(_MARKERS)],
                color=colors[j], markersize=6, label=label, gid=f"estimate:{label}")
    kinds = {MEASURES[m][1] for m in names}
    if kinds == {"difference"}:
        ax.axvline(0.0, color="0.4", linestyle="--", linewidth=0.9, gid="parity")
    elif kinds == {"ratio"}:
        ax.axvline(1.0, color="0.4", linestyle="--", linewidth=0.9, gid="parity")
    ax.set_yticks(np.arange(len(names)), [m.replace("_", " ") for m in names])
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.grid(axis="x", color="0.9")
    ax.set_axisbelow(True)
    ax.set_xlabel(f"value ({method.replace('_', ' ')})")
    if len(series) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


def plot_calibration(
    frame: pd.DataFrame,
    *,
    diagonal: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Observed positive rate against score, one line per group, with interval bars.

    Parameters
    ----------
    frame : pandas.DataFrame
        As returned by :func:`calibration_by_group`.
    diagonal : bool, default False
        Draw the line ``rate = score`` (meaningful when scores are probabilities).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from fairlib.plotting import calibration_by_group, plot_calibration
    >>> cal = calibration_by_group([0, 1, 1, 0, 1, 1], [1, 2, 2, 1, 1, 2],
    ...                            sensitive_features=list("aaabbb"), n_boot=50)
    >>> ax = plot_calibration(cal)
    >>> [line.get_label() for line in ax.get_lines()]
    ['a', 'b']
    """
    needed = {"group", "mean_score", "estimate", "lower", "upper"}
    if not isinstance(frame, pd.DataFrame) or not needed <= set(frame.columns):
        raise TypeError(
            f"Expected `frame` to be a DataFrame from calibration_by_group with columns "
            f"{sorted(needed)}, but got {type(frame).__name__}."
        )
    ax = _check_ax(ax, (6.5, 4.2))
    groups = list(dict.fromkeys(frame["group"]))
    colors = sns.color_palette("colorblind", len(groups))
    xs = np.unique(frame["mean_score"].dropna().to_numpy())
    spacing = float(np.min(np.diff(xs))) if len(xs) > 1 else 1.0
    dodge = 0.25 * spacing / max(len(groups), 1)
    for j, g in enumerate(groups):
        sub = frame[frame["group"] == g].sort_values("mean_score")
        x = sub["mean_score"].to_numpy() + dodge * (j - (len(groups) - 1) / 2)
        est, lo, hi = (sub[c].to_numpy(dtype=float) for c in ("estimate", "lower", "upper"))
        ax.plot(x, est, marker=_MARKERS[j % len(_MARKERS)], color=colors[j], markersize=5,
                linewidth=1.2, label=str(g))
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            ax.vlines(x[ok], lo[ok], hi[ok], colors=[colors[j]], linewidth=1.2, alpha=0.8,
                      gid=f"interval:{g}")
    if diagonal:
        ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=0.9, label="_diagonal")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(color="0.9")
    ax.set_axisbelow(True)
    ax.set_xlabel("score")
    level = frame.attrs.get("level")
    ax.set_ylabel("observed positive rate" + (f"\n({level:.0%} interval)" if level else ""))
    ax.legend(title=frame.attrs.get("group_name"), frameon=False)
    return ax
