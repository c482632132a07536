"""Measuring fairness: audits of a deployed score (COMPAS), rate by rate.

Written for chapter 1, *Measuring fairness* (``notebooks/01_measuring_fairness.ipynb``).

The chapter audits a decile score and the decision ``decile >= t`` with the core's
:func:`fairlib.metrics.fairness_report`, its bootstrap and the figures of
:mod:`fairlib.plotting`. What is particular to the chapter lives here:

- :func:`measure_intervals`, :func:`interval_frame`: parity measures and other estimates
  with their intervals, in the layout of :func:`fairlib.experiments.summarize`, so that
  :func:`fairlib.book.note_intervals` glues them and :func:`fairlib.book.interval_table`
  prints them;
- :func:`rate_intervals`: one rate by group with its interval and the interval's width;
- :func:`decile_calibration_gap`, :func:`calibration_by_decile`,
  :func:`largest_decile_difference`, :func:`calibration_gap_bootstrap`: calibration of a
  decile score within groups, and the gap that noise alone produces;
- :func:`implied_fpr`, :func:`chouldechova_table`, :func:`plot_identity`: Chouldechova's
  identity ``FPR = p / (1 - p) * (1 - PPV) / PPV * (1 - FNR)``;
- :func:`score_balance`: balance for the positive and negative class
  (Kleinberg et al.);
- :func:`threshold_sweep`, :func:`error_rate_gap`, :func:`plot_error_tradeoff`: error
  rates of every group along the thresholds of a score;
- :func:`kamiran_calders_weights`, :func:`reweighing_cost`: what reweighing costs in
  effective sample size and interval width;
- :func:`fairlearn_parity_check`, :func:`fairlearn_rate_check`: fairlib's numbers next
  to fairlearn's (needs ``fairlearn``, in the ``book`` and ``test`` extras).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._validation import MSG_TYPE
from ..metrics import (
    BootstrapResult,
    FairnessReport,
    UndefinedMetricWarning,
    calibration_gap,
    fairness_report,
)

__all__ = [
    "CHAPTER",
    "calibration_by_decile",
    "calibration_gap_bootstrap",
    "chouldechova_table",
    "decile_calibration_gap",
    "error_rate_gap",
    "fairlearn_parity_check",
    "fairlearn_rate_check",
    "implied_fpr",
    "interval_frame",
    "kamiran_calders_weights",
    "largest_decile_difference",
    "measure_intervals",
    "plot_error_tradeoff",
    "plot_identity",
    "rate_intervals",
    "rate_notes",
    "reweighing_cost",
    "score_balance",
    "threshold_sweep",
]

#: The notebook this module was written for.
CHAPTER = "01_measuring_fairness"


def _numpy(x: Any) -> np.ndarray:
    """A host array from a tensor on any device, a Series, an array or a list."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# -- glue and intervals ---------------------------------------------------------------------------
def rate_notes(table: pd.DataFrame, groups: Mapping[str, Any],
               rates: Mapping[str, str]) -> dict[str, float]:
    """Glue names ``<short>_<tag>`` for some rates of some groups of a by-group table.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per group, e.g. :attr:`fairlib.metrics.FairnessReport.by_group`.
    groups : mapping
        Tag -> group label (row of ``table``).
    rates : mapping
        Short name -> column of ``table``.

    Returns
    -------
    dict
        ``{"<short>_<tag>": value}``, groups in the outer loop; for
        :func:`fairlib.book.note`.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.measuring import rate_notes
    >>> t = pd.DataFrame({"false_positive_rate": [0.4, 0.2]}, index=["x", "y"])
    >>> rate_notes(t, {"a": "x", "b": "y"}, {"fpr": "false_positive_rate"})
    {'fpr_a': 0.4, 'fpr_b': 0.2}
    """
    return {f"{short}_{tag}": float(table.loc[group, column])
            for tag, group in groups.items() for short, column in rates.items()}


def interval_frame(rows: Mapping[str, tuple[float, float, float]], metric: str, *,
                   index_name: str = "row") -> pd.DataFrame:
    """Estimates and intervals in the layout of :func:`fairlib.experiments.summarize`.

    Parameters
    ----------
    rows : mapping
        Row name -> ``(estimate, lower, upper)``.
    metric : str
        The column name (the last part of the glue names of
        :func:`fairlib.book.note_intervals`: ``<row>_<metric>``, ``..._lo``, ``..._hi``).
    index_name : str, default "row"
        Name of the index (the first column of :func:`fairlib.book.interval_table`).

    Returns
    -------
    pandas.DataFrame
        Columns ``(metric, "mean")``, ``(metric, "lower")``, ``(metric, "upper")``.

    Examples
    --------
    >>> from fairlib.book import interval_table
    >>> from fairlib.studies.measuring import interval_frame
    >>> frame = interval_frame({"gap": (0.04, 0.035, 0.08)}, "pair")
    >>> interval_table(frame).loc["gap", "pair"]
    '0.040 [0.035, 0.080]'
    """
    data = {(metric, part): [float(v[i]) for v in rows.values()]
            for i, part in enumerate(("mean", "lower", "upper"))}
    return pd.DataFrame(data, index=pd.Index(list(rows), name=index_name))


def measure_intervals(boot: BootstrapResult, measures: Mapping[str, str], label: str, *,
                      method: str = "between_groups") -> pd.DataFrame:
    """Parity measures with their percentile intervals, ready for ``note_intervals``.

    An interval that would not contain its estimate (a percentile interval of a maximum
    over groups can miss it) is widened to it, as the book's intervals always are.

    Parameters
    ----------
    boot : fairlib.metrics.BootstrapResult
        From :meth:`fairlib.metrics.FairnessReport.bootstrap`.
    measures : mapping
        Short row name -> measure name (e.g. ``{"dp": "demographic_parity_difference"}``).
    label : str
        Column name; glue names become ``<short>_<label>``, ``..._lo``, ``..._hi``.
    method : str, default "between_groups"
        As in :meth:`fairlib.metrics.FairnessReport.measure`.

    Returns
    -------
    pandas.DataFrame
        See :func:`interval_frame`.

    Examples
    --------
    >>> from fairlib.metrics import fairness_report
    >>> from fairlib.studies.measuring import measure_intervals
    >>> rep = fairness_report([1, 0, 1, 0, 1, 0], [1, 0, 0, 1, 1, 0],
    ...                       sensitive_features=list("aaabbb"))
    >>> dp = {"dp": "demographic_parity_difference"}
    >>> frame = measure_intervals(rep.bootstrap(200), dp, "ab")
    >>> round(float(frame.loc["dp", ("ab", "mean")]), 3)
    0.333
    """
    if not isinstance(boot, BootstrapResult):
        raise TypeError(MSG_TYPE.format(name="boot", expected="a fairlib BootstrapResult",
                                        got=type(boot).__name__))
    rows = {}
    for short, name in measures.items():
        est = boot.report.measure(name, method)
        lo, hi = boot.interval(name, method)
        rows[short] = (est, min(lo, est), max(hi, est))
    return interval_frame(rows, label, index_name="measure")


def rate_intervals(boot: BootstrapResult, rate: str, label: str) -> pd.DataFrame:
    """Sizes, one rate and its interval per group, with the width of the interval.

    Parameters
    ----------
    boot : fairlib.metrics.BootstrapResult
        Bootstrap of a report; its groups are the rows.
    rate : str
        A rate of :data:`fairlib.metrics.RATES`, e.g. ``"false_positive_rate"``.
    label : str
        Short name for the columns: ``<label>``, ``<label> lower``, ``<label> upper``,
        ``<label> interval width``.

    Returns
    -------
    pandas.DataFrame
        Index: the report's groups; columns ``n``, ``n_positive``, ``n_negative``,
        ``effective_n`` and the four of the rate.

    Examples
    --------
    >>> from fairlib.metrics import fairness_report
    >>> from fairlib.studies.measuring import rate_intervals
    >>> rep = fairness_report([1, 0, 1, 0], [1, 0, 1, 0], sensitive_features=list("aabb"))
    >>> rate_intervals(rep.bootstrap(50), "selection_rate", "SR").columns[-1]
    'SR interval width'
    """
    ci = boot.by_group(rate).drop(index="overall")
    table = boot.report.by_group[["n", "n_positive", "n_negative", "effective_n"]].copy()
    table[[label, f"{label} lower", f"{label} upper"]] = ci.to_numpy()
    table[f"{label} interval width"] = table[f"{label} upper"] - table[f"{label} lower"]
    return table


# -- calibration of a decile score ----------------------------------------------------------------
def _centres(deciles: Any) -> torch.Tensor:
    """Deciles 1..10 as the centres of ten equal-width bins on [0, 1]."""
    d = deciles if isinstance(deciles, torch.Tensor) else torch.as_tensor(_numpy(deciles))
    return (d.double() - 0.5) / 10


def decile_calibration_gap(y_true: Any, deciles: Any, *, sensitive_features: Any) -> float:
    """:func:`fairlib.metrics.calibration_gap` of a decile score, one bin per decile.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    deciles : array-like of shape (n,)
        Scores in 1..10.
    sensitive_features : array-like of shape (n,)
        Groups.

    Returns
    -------
    float
        The mean over deciles of the spread of the groups' positive rates.

    Examples
    --------
    >>> from fairlib.studies.measuring import decile_calibration_gap
    >>> decile_calibration_gap([0, 1, 1, 1], [2, 8, 2, 8], sensitive_features=list("aabb"))
    0.5
    """
    return float(calibration_gap(y_true, _centres(deciles), sensitive_features=sensitive_features,
                                 n_bins=10, strategy="uniform"))


def calibration_by_decile(cal: pd.DataFrame) -> pd.DataFrame:
    """One row per decile, one column per (quantity, group), from ``calibration_by_group``.

    Parameters
    ----------
    cal : pandas.DataFrame
        From :func:`fairlib.metrics.calibration_by_group` of a decile score (one bin per
        distinct decile).

    Returns
    -------
    pandas.DataFrame
        Index ``decile``; columns ``(n | estimate | lower | upper, group)``.

    Examples
    --------
    >>> from fairlib.metrics import calibration_by_group
    >>> from fairlib.studies.measuring import calibration_by_decile
    >>> cal = calibration_by_group([0, 1, 1, 0, 1, 1], [1, 2, 2, 1, 1, 2],
    ...                            sensitive_features=list("aaabbb"), n_boot=50)
    >>> calibration_by_decile(cal)["estimate"].loc[1].tolist()
    [0.0, 0.5]
    """
    frame = cal.assign(decile=cal["mean_score"].astype(int))
    return frame.pivot(index="decile", columns="group", values=["n", "estimate", "lower", "upper"])


def largest_decile_difference(by_decile: pd.DataFrame, group_a: str,
                              group_b: str) -> tuple[float, int, bool]:
    """The decile where two groups' rates differ most, and whether their intervals overlap.

    Parameters
    ----------
    by_decile : pandas.DataFrame
        From :func:`calibration_by_decile`.
    group_a, group_b : str
        The two groups compared.

    Returns
    -------
    tuple
        ``(largest absolute difference, its decile, intervals overlap)``.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.measuring import largest_decile_difference
    >>> t = pd.concat({"estimate": pd.DataFrame({"a": [0.1, 0.5], "b": [0.2, 0.9]}, index=[1, 2]),
    ...                "lower": pd.DataFrame({"a": [0.0, 0.4], "b": [0.1, 0.8]}, index=[1, 2]),
    ...                "upper": pd.DataFrame({"a": [0.2, 0.6], "b": [0.3, 1.0]}, index=[1, 2])},
    ...               axis=1)
    >>> largest_decile_difference(t, "a", "b")
    (0.4, 2, False)
    """
    diff = (by_decile["estimate"][group_a] - by_decile["estimate"][group_b]).abs()
    d = diff.idxmax()
    overlap = by_decile["lower"].loc[d].max() <= by_decile["upper"].loc[d].min()
    return float(diff.max()), int(d), bool(overlap)


def _pooled_rate(y_true: np.ndarray, deciles: np.ndarray) -> pd.Series:
    """The positive rate of each decile over all groups together."""
    return pd.Series(y_true).groupby(deciles).mean()


def calibration_gap_bootstrap(y_true: torch.Tensor, deciles: torch.Tensor, groups: Any, *,
                              n_boot: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap of :func:`decile_calibration_gap`, and its values for a calibrated score.

    Each step resamples the rows with replacement and recomputes the gap; then draws every
    label from its decile's *pooled* positive rate (a score calibrated in every group by
    construction) and computes the gap of those labels: what noise alone produces. Both
    draws come, in turn, from one CPU ``torch.Generator`` seeded with ``seed``.

    Parameters
    ----------
    y_true : torch.Tensor of shape (n,)
        Binary labels (any device).
    deciles : torch.Tensor of shape (n,)
        Scores in 1..10, on the device of ``y_true``.
    groups : array-like of shape (n,)
        Group labels.
    n_boot : int, default 1000
        Resamples (and null draws).
    seed : int, default 0
        Seed of the generator.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``n_boot`` resampled gaps and ``n_boot`` gaps of calibrated labels.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.measuring import calibration_gap_bootstrap
    >>> g = torch.Generator().manual_seed(0)
    >>> d = torch.randint(1, 11, (400,), generator=g)
    >>> y = torch.bernoulli(d / 11, generator=g).long()
    >>> gaps, null = calibration_gap_bootstrap(y, d, ["a", "b"] * 200, n_boot=20)
    >>> gaps.shape, bool((null >= 0).all())
    ((20,), True)
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(MSG_TYPE.format(name="n_boot", expected="a positive integer",
                                         got=repr(n_boot)))
    gen = torch.Generator().manual_seed(seed)
    groups = np.asarray(groups)
    n, device = len(y_true), y_true.device
    d = _numpy(deciles)
    p_row = torch.tensor(_pooled_rate(_numpy(y_true), d).loc[d].to_numpy())
    gaps, null_gaps = [], []
    for _ in range(n_boot):
        rows = torch.randint(n, (n,), generator=gen)
        idx = rows.to(device)
        gaps.append(decile_calibration_gap(y_true[idx], deciles[idx],
                                           sensitive_features=groups[rows.numpy()]))
        y_null = torch.bernoulli(p_row, generator=gen).long().to(device)
        null_gaps.append(decile_calibration_gap(y_null, deciles, sensitive_features=groups))
    return np.asarray(gaps), np.asarray(null_gaps)


# -- Chouldechova's identity and Kleinberg's balance ----------------------------------------------
def implied_fpr(base_rate: Any, ppv: Any, fnr: Any) -> Any:
    """The false positive rate that a base rate, a PPV and an FNR imply (Chouldechova 2017).

    ``FPR = p / (1 - p) * (1 - PPV) / PPV * (1 - FNR)``, an identity of the confusion
    matrix of any classifier in any group.

    Parameters
    ----------
    base_rate, ppv, fnr : float, numpy array or pandas Series
        Base rate ``p``, positive predictive value and false negative rate.

    Returns
    -------
    Same type as the inputs.

    Examples
    --------
    >>> from fairlib.studies.measuring import implied_fpr
    >>> round(implied_fpr(0.5, 0.8, 0.2), 3)
    0.2
    """
    return base_rate / (1 - base_rate) * (1 - ppv) / ppv * (1 - fnr)


def chouldechova_table(report: FairnessReport) -> pd.DataFrame:
    """Chouldechova's identity checked in every group of a report.

    Parameters
    ----------
    report : fairlib.metrics.FairnessReport
        Rates of a binary decision by group.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n``, ``base rate p``, ``odds p/(1-p)``, ``PPV``, ``FNR``,
        ``FPR measured``, ``FPR from identity`` (:func:`implied_fpr` of the group's own
        rates) and ``FPR if PPV, FNR were shared`` (the group's base rate with the PPV
        and FNR of all rows together).

    Examples
    --------
    >>> from fairlib.metrics import fairness_report
    >>> from fairlib.studies.measuring import chouldechova_table
    >>> rep = fairness_report([1, 1, 0, 0, 1, 0, 0, 0], [1, 0, 1, 0, 1, 1, 0, 0],
    ...                       sensitive_features=list("aaaabbbb"))
    >>> t = chouldechova_table(rep)
    >>> bool(((t["FPR measured"] - t["FPR from identity"]).abs() < 1e-12).all())
    True
    """
    if not isinstance(report, FairnessReport):
        raise TypeError(MSG_TYPE.format(name="report", expected="a fairlib FairnessReport",
                                        got=type(report).__name__))
    r, o = report.by_group, report.overall
    p, ppv, fnr = r["base_rate"], r["positive_predictive_value"], r["false_negative_rate"]
    return pd.DataFrame({
        "n": r["n"], "base rate p": p, "odds p/(1-p)": p / (1 - p), "PPV": ppv, "FNR": fnr,
        "FPR measured": r["false_positive_rate"], "FPR from identity": implied_fpr(p, ppv, fnr),
        "FPR if PPV, FNR were shared": implied_fpr(p, o["positive_predictive_value"],
                                                   o["false_negative_rate"])})


def plot_identity(report: FairnessReport, *, ax: Any = None) -> Any:
    """Each group's FPR at its base rate, against the FPR forced by the overall PPV and FNR.

    Parameters
    ----------
    report : fairlib.metrics.FairnessReport
        Rates of a binary decision by group.
    ax : matplotlib Axes, optional
        Where to draw; a new figure otherwise.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from fairlib.metrics import fairness_report
    >>> from fairlib.studies.measuring import plot_identity
    >>> rep = fairness_report([1, 1, 0, 0, 1, 0, 0, 0], [1, 0, 1, 0, 1, 1, 0, 0],
    ...                       sensitive_features=list("aaaabbbb"))
    >>> [t.get_text() for t in plot_identity(rep).texts]
    ['b', 'a']
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.2))
    r, o = report.by_group, report.overall
    p = r["base_rate"]
    grid = np.linspace(0.05, 0.75, 200)
    curve = implied_fpr(grid, o["positive_predictive_value"], o["false_negative_rate"])
    ax.plot(grid, curve, color="0.3", label="FPR forced by the overall PPV and FNR")
    sizes = 15 + 250 * r["n"] / r["n"].max()
    ax.scatter(p, r["false_positive_rate"], s=sizes, color="C1", alpha=0.8, zorder=3,
               label="measured FPR (area ~ group size)")
    for i, g in enumerate(p.sort_values().index):  # alternate sides so labels do not collide
        ax.annotate(g, (p[g], r.loc[g, "false_positive_rate"]), xytext=(8 if i % 2 else -8, 0),
                    textcoords="offset points", ha="left" if i % 2 else "right", va="center",
                    fontsize="small")
    ax.set_xlabel("base rate p (share charged again)")
    ax.set_ylabel("false positive rate")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, loc="upper left")
    return ax


def score_balance(frame: pd.DataFrame, *, label: str, score: str, group: str) -> pd.DataFrame:
    """Mean probability score of each group among positives and negatives (Kleinberg et al.).

    Each decile becomes a probability: the positive rate of all rows with that decile
    (pooled over the groups). *Balance for the negative (positive) class* holds when
    the groups' mean scores among negatives (positives) are equal.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per person.
    label, score, group : str
        Columns of the binary label, the discrete score and the group.

    Returns
    -------
    pandas.DataFrame
        One row per group; columns ``mean score if not charged again`` and
        ``mean score if charged again``.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.measuring import score_balance
    >>> f = pd.DataFrame({"y": [0, 1, 1, 0, 1, 1], "s": [1, 2, 2, 1, 1, 2], "g": list("aaabbb")})
    >>> score_balance(f, label="y", score="s", group="g").round(3).to_numpy().tolist()
    [[0.333, 1.0], [0.333, 0.667]]
    """
    prob = frame[score].map(frame.groupby(score)[label].mean())
    means = prob.groupby([frame[group], frame[label]], observed=True).mean().unstack()
    means.columns = ["mean score if not charged again", "mean score if charged again"]
    return means


# -- thresholds -----------------------------------------------------------------------------------
def threshold_sweep(y_true: Any, scores: Any, sensitive_features: Any,
                    thresholds: Iterable[int | float]) -> pd.DataFrame:
    """Error and selection rates of every group for the decisions ``score >= t``.

    Parameters
    ----------
    y_true, scores : array-like of shape (n,)
        Binary labels and scores (a tensor or anything :func:`fairness_report` takes).
    sensitive_features : array-like of shape (n,)
        Groups.
    thresholds : iterable of numbers
        The values of ``t``.

    Returns
    -------
    pandas.DataFrame
        One row per (threshold, group): ``threshold``, ``group``, ``FPR``, ``FNR``,
        ``selection rate``. Rates undefined at extreme thresholds are NaN (their
        warnings are silenced).

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.measuring import threshold_sweep
    >>> s = torch.tensor([1, 2, 3, 4, 1, 2, 3, 4])
    >>> y = torch.tensor([0, 0, 1, 1, 0, 1, 0, 1])
    >>> threshold_sweep(y, s, list("aaaabbbb"), [3])["FPR"].tolist()
    [0.0, 0.5]
    """
    scores = scores if isinstance(scores, torch.Tensor) else torch.as_tensor(_numpy(scores))
    rows = []
    with warnings.catch_warnings():  # at extreme thresholds NPV or PPV can be undefined
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for t in thresholds:
            rep = fairness_report(y_true, (scores >= t).long(),
                                  sensitive_features=sensitive_features)
            for g, row in rep.by_group.iterrows():
                rows.append((t, g, row["false_positive_rate"], row["false_negative_rate"],
                             row["selection_rate"]))
    return pd.DataFrame(rows, columns=["threshold", "group", "FPR", "FNR", "selection rate"])


def error_rate_gap(sweep: pd.DataFrame, group_a: str, group_b: str, *,
                   threshold_b: int | float | None = None) -> pd.Series:
    """The worse of the FPR and FNR gaps between two groups, per threshold of ``group_a``.

    Parameters
    ----------
    sweep : pandas.DataFrame
        From :func:`threshold_sweep`.
    group_a, group_b : str
        The two groups.
    threshold_b : number, optional
        Hold ``group_b`` at this threshold (one threshold per group); by default both
        groups share each threshold.

    Returns
    -------
    pandas.Series
        ``max(|FPR_a - FPR_b|, |FNR_a - FNR_b|)`` indexed by ``group_a``'s threshold.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.measuring import error_rate_gap
    >>> sweep = pd.DataFrame({"threshold": [1, 1, 2, 2], "group": list("abab"),
    ...                       "FPR": [0.5, 0.3, 0.2, 0.1], "FNR": [0.1, 0.2, 0.4, 0.6],
    ...                       "selection rate": [0.6, 0.5, 0.3, 0.2]})
    >>> error_rate_gap(sweep, "a", "b").round(2).tolist()
    [0.2, 0.2]
    >>> error_rate_gap(sweep, "a", "b", threshold_b=1).round(2).tolist()
    [0.2, 0.2]
    """
    fpr = sweep.pivot(index="threshold", columns="group", values="FPR")
    fnr = sweep.pivot(index="threshold", columns="group", values="FNR")
    if threshold_b is None:
        fpr_b, fnr_b = fpr[group_b], fnr[group_b]
    else:
        fpr_b, fnr_b = fpr.loc[threshold_b, group_b], fnr.loc[threshold_b, group_b]
    return np.maximum((fpr[group_a] - fpr_b).abs(), (fnr[group_a] - fnr_b).abs())


def plot_error_tradeoff(sweep: pd.DataFrame, *, ax: Any = None) -> Any:
    """False positive rate against false negative rate, one curve per group, thresholds marked.

    Parameters
    ----------
    sweep : pandas.DataFrame
        From :func:`threshold_sweep`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure otherwise.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from fairlib.studies.measuring import plot_error_tradeoff
    >>> sweep = pd.DataFrame({"threshold": [1, 1, 2, 2], "group": list("abab"),
    ...                       "FPR": [0.5, 0.3, 0.2, 0.1], "FNR": [0.1, 0.2, 0.4, 0.6]})
    >>> len(plot_error_tradeoff(sweep).get_lines())
    2
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    for g, sub in sweep.groupby("group"):
        ax.plot(sub["FNR"], sub["FPR"], marker="o", label=g)
        for t, a, b in zip(sub["threshold"], sub["FNR"], sub["FPR"], strict=True):
            ax.annotate(str(t), (a, b), xytext=(3, 3), textcoords="offset points",
                        fontsize="x-small")
    ax.set_xlabel("false negative rate")
    ax.set_ylabel("false positive rate")
    ax.legend(frameon=False)
    return ax


# -- what reweighing costs ------------------------------------------------------------------------
def kamiran_calders_weights(frame: pd.DataFrame, groups: Sequence[str], label: str) -> np.ndarray:
    """Kamiran-Calders weights ``P(g) P(y) / P(g, y)`` over the observed (group, label) cells.

    Unlike :func:`fairlib.weighting.reweighing_weights`, the probabilities are taken over
    the observed cells only and the weights are not rescaled, which is the textbook
    formula written with pandas.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per person.
    groups : sequence of str
        Columns whose combinations are the groups ``g``.
    label : str
        Column of the binary label ``y``.

    Returns
    -------
    numpy.ndarray
        float64, one weight per row of ``frame``, in its order.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.measuring import kamiran_calders_weights
    >>> f = pd.DataFrame({"g": list("aaaabbbb"), "y": [1, 1, 0, 0, 1, 0, 0, 0]})
    >>> kamiran_calders_weights(f, ["g"], "y").round(4).tolist()
    [0.75, 0.75, 1.25, 1.25, 1.5, 0.8333, 0.8333, 0.8333]
    """
    cols = [*groups, label]
    cells = frame.groupby(cols, observed=True).size()
    p_gy = cells / cells.sum()
    p_g = p_gy.groupby(level=list(groups), observed=True).transform("sum")
    p_y = p_gy.groupby(level=label, observed=True).transform("sum")
    w_cell = p_g * p_y / p_gy
    rows = pd.MultiIndex.from_frame(frame[cols])
    return np.array(w_cell.reindex(rows).to_numpy(), dtype=np.float64)


def reweighing_cost(weighted: BootstrapResult, unweighted: BootstrapResult,
                    rates: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Effective sample size and interval widths of every group, with and without weights.

    Parameters
    ----------
    weighted, unweighted : fairlib.metrics.BootstrapResult
        Bootstraps of the same groups, with and without sample weights.
    rates : mapping, optional
        Column label -> rate (default ``{"FPR": "false_positive_rate",
        "selection-rate": "selection_rate"}``).

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n``, ``effective_n``, ``<label> width`` and
        ``<label> width, reweighed`` per rate, and ``effective_n / n``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.metrics import fairness_report
    >>> from fairlib.studies.measuring import reweighing_cost
    >>> y, p, g = [1, 0, 1, 0, 1, 1], [1, 0, 0, 1, 1, 0], list("aaabbb")
    >>> w = torch.tensor([1.0, 3.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    >>> boot = fairness_report(y, p, sensitive_features=g).bootstrap(50)
    >>> boot_w = fairness_report(y, p, sensitive_features=g, sample_weight=w).bootstrap(50)
    >>> reweighing_cost(boot_w, boot)["effective_n / n"].round(3).tolist()
    [0.758, 1.0]
    """
    rates = dict(rates or {"FPR": "false_positive_rate", "selection-rate": "selection_rate"})
    by_group = weighted.report.by_group
    cost = pd.DataFrame({"n": by_group["n"], "effective_n": by_group["effective_n"]})
    for name, rate in rates.items():
        for boot, suffix in ((unweighted, ""), (weighted, ", reweighed")):
            width = rate_intervals(boot, rate, name)[f"{name} interval width"]
            cost[f"{name} width{suffix}"] = width.to_numpy()
    cost["effective_n / n"] = cost["effective_n"] / cost["n"]
    return cost


# -- fairlearn side by side -----------------------------------------------------------------------
_PARITY = ("demographic_parity", "equal_opportunity", "equalized_odds")


def fairlearn_parity_check(y_true: torch.Tensor, y_pred: torch.Tensor,
                           groupings: Mapping[str, Any]) -> pd.DataFrame:
    """Every parity measure from fairlib and from fairlearn, side by side.

    fairlib is asked for fairlearn's convention for undefined rates
    (``zero_division=0.0``).

    Parameters
    ----------
    y_true, y_pred : torch.Tensor of shape (n,)
        Binary labels and predictions.
    groupings : mapping
        Name -> sensitive features (a Series, or a DataFrame for intersections).

    Returns
    -------
    pandas.DataFrame
        Index ``(groups, measure, method)`` over the demographic parity, equal opportunity
        and equalized odds differences and ratios with both methods; columns ``fairlib``,
        ``fairlearn`` and ``abs. difference``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.measuring import fairlearn_parity_check
    >>> y, p = torch.tensor([1, 0, 1, 0, 1, 0]), torch.tensor([1, 0, 0, 1, 1, 1])
    >>> t = fairlearn_parity_check(y, p, {"g": list("aaabbb")})
    >>> len(t), float(t["abs. difference"].max())
    (12, 0.0)
    """
    import fairlearn.metrics as flm

    from .. import metrics as fm

    yt, yp = _numpy(y_true), _numpy(y_pred)
    rows = []
    for label, sf in groupings.items():
        for name in _PARITY:
            for kind in ("difference", "ratio"):
                for method in ("between_groups", "to_overall"):
                    fn = f"{name}_{kind}"
                    ours = getattr(fm, fn)(y_true, y_pred, sensitive_features=sf, method=method,
                                           zero_division=0.0)
                    theirs = getattr(flm, fn)(yt, yp, sensitive_features=sf, method=method)
                    rows.append((label, fn, method, float(ours), float(theirs)))
    side = pd.DataFrame(rows, columns=["groups", "measure", "method", "fairlib", "fairlearn"])
    side["abs. difference"] = (side["fairlib"] - side["fairlearn"]).abs()
    return side.set_index(["groups", "measure", "method"])


def fairlearn_rate_check(y_true: torch.Tensor, y_pred: torch.Tensor,
                         sensitive_features: Any) -> pd.DataFrame:
    """By-group rates from fairlib's report and fairlearn's ``MetricFrame``, side by side.

    fairlib uses ``zero_division=0.0`` (fairlearn's and scikit-learn's convention).

    Parameters
    ----------
    y_true, y_pred : torch.Tensor of shape (n,)
        Binary labels and predictions.
    sensitive_features : Series or DataFrame
        Groups (several columns give their combinations).

    Returns
    -------
    pandas.DataFrame
        One row per group; columns ``(fairlib | fairlearn | abs. difference, rate)`` for the
        selection rate, TPR, FPR, FNR and PPV.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.measuring import fairlearn_rate_check
    >>> y, p = torch.tensor([1, 0, 1, 0, 1, 0]), torch.tensor([1, 0, 0, 1, 1, 1])
    >>> t = fairlearn_rate_check(y, p, list("aaabbb"))
    >>> t.shape, float(t["abs. difference"].to_numpy().max())
    ((2, 15), 0.0)
    """
    import fairlearn.metrics as flm
    from sklearn.metrics import precision_score

    metrics = {"selection_rate": flm.selection_rate, "true_positive_rate": flm.true_positive_rate,
               "false_positive_rate": flm.false_positive_rate,
               "false_negative_rate": flm.false_negative_rate,
               "positive_predictive_value": lambda t, q: precision_score(t, q, zero_division=0.0)}
    theirs = flm.MetricFrame(metrics=metrics, y_true=_numpy(y_true), y_pred=_numpy(y_pred),
                             sensitive_features=sensitive_features).by_group[list(metrics)]
    ours = fairness_report(y_true, y_pred, sensitive_features=sensitive_features,
                           zero_division=0.0).by_group[list(metrics)]
    gaps = (ours - theirs).abs()
    return pd.concat({"fairlib": ours, "fairlearn": theirs, "abs. difference": gaps}, axis=1)
