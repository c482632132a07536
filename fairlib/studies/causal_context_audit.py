"""Audit predictors in the three causal contexts of Anthis & Veitch (2023).

Written for chapter 7, *Causal context* (``notebooks/07_causal_context.ipynb``).

In each context a counterfactually fair (CF) predictor satisfies one familiar group
metric (arXiv 2310.19691): demographic parity under measurement error in the label,
equalized odds under selection on the label, calibration under selection on the
predictors. This module provides what an audit of that claim needs:

- :func:`fairlib.datasets.semi_synthetic_context` (in the core): inject one context's bias into real data, with a
  randomly assigned two-valued attribute ``a`` (so no feature is caused by it);
- :func:`fit_context_predictors`: fit a naive predictor (all features, including a proxy of
  ``a`` or ``a`` itself) and a CF one (only the features ``a`` does not cause), optionally
  cross-fitted, and score the observed (biased) and the target (unbiased) samples;
- :func:`gap_table`: signed group gaps with percentile bootstrap intervals, and the noise
  floor of the calibration gap;
- :func:`audit_context`: the table for several predictors plus their accuracy on the target;
- :func:`plot_gap_heatmap`, :func:`draw_context_graph`: figures.

For the chapter's notebook: :func:`context_to` (a context on a device),
:func:`audit_contexts` (fit and audit several contexts), :func:`base_rate_table`,
:func:`gap_overview` (every gap as text), :func:`interval_columns` and
:func:`target_accuracy` (intervals in the layout that :func:`fairlib.book.note_intervals`
glues), :func:`implied_gap_notes`, :func:`target_auc`, :func:`gap_matrix` and
:func:`plot_audit_heatmaps`; for its exercises :func:`lose_positives`,
:class:`MarginalisedClassifier`, :func:`implied_gap_by_size` and
:func:`group_threshold_audit`.

Synthetic contexts come from :func:`fairlib.datasets.make_causal_context`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._validation import MSG_TYPE, ArrayLike, check_choice, check_positive_int
from ..datasets import CausalContext, FairDataset
from ..datasets.synthetic import CAUSAL_CONTEXTS, ContextKind
from ..metrics import fairness_report
from ..metrics import RATES
from ..metrics import resampling as boot
from ..metrics.resampling import prepare_labels
from ..metrics.scores import calibration_edges, calibration_gaps, calibration_rates, calibration_table

__all__ = [
    "CHAPTER",
    "CONTEXT_LABELS",
    "GAP_METRICS",
    "IMPLIED_GAP",
    "ContextScores",
    "MarginalisedClassifier",
    "audit_context",
    "audit_contexts",
    "base_rate_table",
    "context_to",
    "draw_context_graph",
    "fit_context_predictors",
    "gap_matrix",
    "gap_overview",
    "gap_table",
    "group_threshold_audit",
    "implied_gap_by_size",
    "implied_gap_notes",
    "interval_columns",
    "lose_positives",
    "plot_audit_heatmaps",
    "plot_gap_heatmap",
    "target_accuracy",
    "target_auc",
    "vanishing_summary",
]

#: The notebook this module was written for.
CHAPTER = "07_causal_context"


#: Rows of :func:`gap_table`, in order.
GAP_METRICS: tuple[str, ...] = (
    "demographic_parity",
    "true_positive_rate",
    "false_positive_rate",
    "equalized_odds",
    "positive_predictive_value",
    "calibration",
)

#: The row of :func:`gap_table` that vanishes for a CF predictor in each context.
IMPLIED_GAP: dict[str, str] = dict(CAUSAL_CONTEXTS)

#: Short display names of the contexts.
CONTEXT_LABELS: dict[str, str] = {
    "measurement_error": "measurement error",
    "selection_on_label": "selection on label",
    "selection_on_predictors": "selection on predictors",
}

_SIGNED_RATES = {
    "demographic_parity": "selection_rate",
    "true_positive_rate": "true_positive_rate",
    "false_positive_rate": "false_positive_rate",
    "positive_predictive_value": "positive_predictive_value",
}


# -- semi-synthetic data ---------------------------------------------------------------------


@dataclass(frozen=True)
class ContextScores:
    """Scores ``P(y = 1 | x)`` of each predictor on the observed and the target sample.

    Attributes
    ----------
    observed : dict of str to torch.Tensor
        Predictor name -> float64 scores, one per row of ``ctx.observed``.
    target : dict of str to torch.Tensor
        Predictor name -> float64 scores, one per row of ``ctx.target``.
    """

    observed: dict[str, torch.Tensor]
    target: dict[str, torch.Tensor]


def fit_context_predictors(
    ctx: CausalContext,
    make_model: Callable[[], Any],
    *,
    n_folds: int = 1,
    seed: int = 0,
    target_trained: bool = False,
) -> ContextScores:
    """Fit a naive and a counterfactually fair predictor on the observed (biased) sample.

    ``"naive"`` uses every feature of ``ctx.observed`` (including the proxy of, or the,
    sensitive attribute); ``"counterfactually fair"`` uses ``ctx.fair_X`` only. With
    ``target_trained=True`` a third model, ``"trained on target"``, is fitted on the
    target sample with its true labels and all features: the best a model of this class
    can do on the target, a reference point.

    Parameters
    ----------
    ctx : CausalContext
        From :func:`fairlib.datasets.make_causal_context` or :func:`semi_synthetic_context`.
    make_model : callable
        Returns a fresh estimator with scikit-learn's ``fit(X, y)`` and ``predict_proba(X)``.
    n_folds : int, default 1
        1: fit on all observed rows and score the same rows (fine when the sample is large
        and the model small). ``k >= 2``: cross-fitting by source row: the population rows
        (``source_index``) are split into ``k`` seeded folds, and every row of both samples
        is scored by models fitted without the rows of its fold. Use it when the observed
        and the target sample are drawn from the same rows (semi-synthetic data).
    seed : int, default 0
        Seed of the fold assignment.
    target_trained : bool, default False
        Also fit the reference model on the target sample.

    Returns
    -------
    ContextScores

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fairlib.datasets import make_causal_context
    >>> from fairlib.studies.causal_context_audit import fit_context_predictors
    >>> ctx = make_causal_context("measurement_error", n=2000, seed=0)
    >>> scores = fit_context_predictors(ctx, LogisticRegression)
    >>> sorted(scores.observed), scores.target["naive"].shape
    (['counterfactually fair', 'naive'], torch.Size([2000]))
    """
    if not isinstance(ctx, CausalContext):
        raise TypeError(MSG_TYPE.format(name="ctx", expected="a CausalContext",
                                        got=type(ctx).__name__))
    if not callable(make_model):
        raise TypeError(MSG_TYPE.format(name="make_model",
                                        expected="a callable returning an estimator",
                                        got=type(make_model).__name__))
    n_folds = check_positive_int("n_folds", n_folds)
    obs, tgt = ctx.observed, ctx.target
    views = {"naive": (obs.X, tgt.X, obs.y),
             "counterfactually fair": (ctx.fair_X(obs), ctx.fair_X(tgt), obs.y)}
    if n_folds == 1:
        fold_obs = np.zeros(len(obs), dtype=np.int64)
        fold_tgt = np.zeros(len(tgt), dtype=np.int64)
    else:
        src_obs = obs.source_index.cpu().numpy()
        src_tgt = tgt.source_index.cpu().numpy()
        rows = np.union1d(src_obs, src_tgt)
        fold_of = np.random.default_rng(seed).permutation(len(rows)) % n_folds
        fold_obs = fold_of[np.searchsorted(rows, src_obs)]
        fold_tgt = fold_of[np.searchsorted(rows, src_tgt)]

    def cross_fit(X_fit: torch.Tensor, y_fit: torch.Tensor, fold_fit: np.ndarray,
                  scored: list[tuple[torch.Tensor, np.ndarray]]) -> list[torch.Tensor]:
        Xf, yf = X_fit.cpu().numpy(), y_fit.cpu().numpy()
        outs = [np.empty(len(X), dtype=np.float64) for X, _ in scored]
        for k in range(n_folds):
            train = fold_fit != k if n_folds > 1 else np.ones(len(yf), dtype=bool)
            model = make_model().fit(Xf[train], yf[train])
            for out, (X, fold) in zip(outs, scored, strict=True):
                rows = fold == k
                if rows.any():
                    out[rows] = model.predict_proba(X.cpu().numpy()[rows])[:, 1]
        return [torch.from_numpy(o).to(obs.device) for o in outs]

    observed, target = {}, {}
    for name, (X_obs, X_tgt, y) in views.items():
        observed[name], target[name] = cross_fit(X_obs, y, fold_obs,
                                                 [(X_obs, fold_obs), (X_tgt, fold_tgt)])
    if target_trained:
        (target["trained on target"],) = cross_fit(tgt.X, tgt.y, fold_tgt, [(tgt.X, fold_tgt)])
    return ContextScores(observed=observed, target=target)


# -- gaps with intervals -----------------------------------------------------------------------
def _percentiles(samples: torch.Tensor, level: float) -> tuple[float, float]:
    lo, hi = boot.percentile_interval(samples, level)
    return float(lo), float(hi)


def _calibration_gaps(pos: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """:func:`~fairlib.metrics.scores.calibration_gaps` of ``[..., 2, B]`` counts, 0 (not
    NaN) for a resample in which no bin holds both groups, so percentiles stay defined."""
    return calibration_gaps(pos, n).nan_to_num(0.0)


def gap_table(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    y_score: ArrayLike,
    *,
    sensitive_features: Any,
    n_bins: int = 20,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Group gaps between two groups, with percentile bootstrap intervals.

    Rate gaps are signed: second group minus first (in the order of the groups'
    labels). ``equalized_odds`` is ``max(|TPR gap|, |FPR gap|)`` (fairlearn's
    ``equalized_odds_difference``). ``calibration`` is
    :func:`fairlib.metrics.calibration_gap` with ``n_bins`` quantile bins of the score:
    the mean over bins of ``|P(y=1 | bin, second) - P(y=1 | bin, first)|``.

    Intervals come from one multinomial bootstrap of the rows (cell counts are
    resampled, see :meth:`fairlib.metrics.FairnessReport.bootstrap`); the calibration
    bins are held fixed at the full-sample quantiles. Absolute values (equalized odds,
    calibration) are positive even when the true gap is 0, and near 0 their bootstrap
    interval lies *above* the estimate. So calibration also gets a noise floor: the
    upper ``level`` quantile of the gap when every label is redrawn as
    ``Binomial(rows, mean score)`` per group and bin, i.e. for a score calibrated within
    groups by construction.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Binary labels and predictions.
    y_score : array-like of shape (n,)
        Scores in [0, 1] behind the predictions.
    sensitive_features : array-like of shape (n,)
        Exactly two groups.
    n_bins : int, default 20
        Quantile bins of the score for the calibration gap.
    n_boot : int, default 1000
        Bootstrap resamples (and noise-floor draws).
    level : float, default 0.95
        Coverage of the intervals and quantile of the noise floor.
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    pandas.DataFrame
        Index :data:`GAP_METRICS`; columns ``estimate``, ``lower``, ``upper``,
        ``noise_floor`` (calibration only, else NaN) and ``consistent_with_zero``: the
        interval contains 0 (signed gaps); both TPR and FPR do (equalized odds); the
        estimate is at most the noise floor (calibration). The equalized-odds interval is
        built from the two signed ones (from the largest distance of either from 0 to the
        largest absolute end), so it includes 0 exactly when both do. Every interval
        contains its estimate (a percentile interval that would not is widened to it).

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.causal_context_audit import gap_table
    >>> g = torch.Generator().manual_seed(0)
    >>> a = torch.arange(4000) % 2
    >>> score = torch.rand(4000, generator=g, dtype=torch.float64)
    >>> y = torch.bernoulli(score, generator=g).long()  # calibrated in both groups
    >>> t = gap_table(y, (score > 0.5).long(), score, sensitive_features=a, n_boot=200)
    >>> list(t.index[:2]), bool(t.loc["calibration", "consistent_with_zero"])
    (['demographic_parity', 'true_positive_rate'], True)
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(MSG_TYPE.format(name="n_boot", expected="an integer >= 2",
                                         got=repr(n_boot)))
    if not 0.0 < level < 1.0:
        raise ValueError(MSG_TYPE.format(name="level", expected="in (0, 1)", got=repr(level)))
    n_bins = check_positive_int("n_bins", n_bins)
    report = fairness_report(y_true, y_pred, sensitive_features=sensitive_features)
    if len(report.index) != 2:
        raise ValueError(MSG_TYPE.format(name="sensitive_features", expected="exactly two groups",
                                         got=f"{len(report.index)}: {list(report.index)}"))
    res = report.bootstrap(n_boot, level=level, seed=seed)
    rows: dict[str, dict[str, float]] = {}
    for key, rate in _SIGNED_RATES.items():
        r = RATES.index(rate)
        by_group = report.rate(rate).by_group
        est = float(by_group[1] - by_group[0])
        lo, hi = _percentiles(res.by_group_samples[:, 1, r] - res.by_group_samples[:, 0, r], level)
        rows[key] = {"estimate": est, "lower": lo, "upper": hi}
    # max(|TPR gap|, |FPR gap|) lies between the largest distance of a signed interval from 0
    # and the largest absolute end of one; this interval includes 0 exactly when both do.
    signed = [rows[k] for k in ("true_positive_rate", "false_positive_rate")]
    rows["equalized_odds"] = {
        "estimate": report.measure("equalized_odds_difference"),
        "lower": max(max(r["lower"], -r["upper"], 0.0) for r in signed),
        "upper": max(max(abs(r["lower"]), abs(r["upper"])) for r in signed)}

    yt, _, ys, groups, _ = prepare_labels(y_true, None, sensitive_features, None, scores=y_score)
    assert ys is not None
    edges = calibration_edges(ys, n_bins, "quantile")
    table = calibration_table(yt, ys, groups.ids, 2, edges)  # [2, B, 3]
    n, pos = table[..., 0], table[..., 2]
    mean_score = calibration_rates(table)[..., 0].nan_to_num(0.0)  # empty cells draw 0 of 0 rows
    est = float(_calibration_gaps(pos, n))
    gen = boot.make_generator(seed + 1, ys.device)
    cells = torch.stack([pos, n - pos], -1)  # [2, B, 2]: positives, negatives
    resampled = boot.multinomial_counts(cells, n_boot, gen)  # [n_boot, 2, B, 2]
    lo, hi = _percentiles(_calibration_gaps(resampled[..., 0], resampled.sum(-1)), level)
    null_pos = torch.binomial(n.expand(n_boot, *n.shape).contiguous(),
                              mean_score.clamp(0, 1).expand(n_boot, *n.shape).contiguous(),
                              generator=gen)
    floor = float(torch.quantile(_calibration_gaps(null_pos, n.expand_as(null_pos)), level))
    rows["calibration"] = {"estimate": est, "lower": lo, "upper": hi, "noise_floor": floor}

    out = pd.DataFrame.from_dict(rows, orient="index").reindex(list(GAP_METRICS))
    if "noise_floor" not in out:
        out["noise_floor"] = np.nan
    # A percentile interval of an absolute gap near 0 can lie above its estimate; widen it
    # to contain the estimate, as the protocol's intervals do.
    out["lower"] = np.minimum(out["lower"], out["estimate"])
    out["upper"] = np.maximum(out["upper"], out["estimate"])
    covers = (out["lower"] <= 0) & (out["upper"] >= 0)
    covers["equalized_odds"] = bool(covers["true_positive_rate"] and covers["false_positive_rate"])
    covers["calibration"] = bool(est <= floor)
    out["consistent_with_zero"] = covers.astype(bool)
    out.index.name = "metric"
    return out


def audit_context(
    ctx: CausalContext,
    scores: ContextScores,
    *,
    threshold: float = 0.5,
    n_bins: int = 20,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Gap tables on the observed sample and accuracy on the target, for every predictor.

    Parameters
    ----------
    ctx : CausalContext
        The context the scores belong to.
    scores : ContextScores
        From :func:`fit_context_predictors`.
    threshold : float, default 0.5
        A score at or above it predicts 1.
    n_bins, n_boot, level, seed
        As in :func:`gap_table`; the same seed is used for every predictor.

    Returns
    -------
    pandas.DataFrame
        Index ``(predictor, metric)``; the metrics of :func:`gap_table` (on the observed
        sample, against its recorded labels) and ``target_accuracy`` (on the target sample,
        against the true labels, with a bootstrap interval). Predictors scored only on the
        target have the accuracy row only.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fairlib.datasets import make_causal_context
    >>> from fairlib.studies.causal_context_audit import audit_context, fit_context_predictors
    >>> ctx = make_causal_context("selection_on_label", n=100_000, seed=0)
    >>> table = audit_context(ctx, fit_context_predictors(ctx, LogisticRegression), n_boot=200)
    >>> table.loc[("counterfactually fair", "equalized_odds"), "consistent_with_zero"]
    np.True_
    """
    if not isinstance(scores, ContextScores):
        raise TypeError(MSG_TYPE.format(name="scores", expected="ContextScores",
                                        got=type(scores).__name__))
    obs, tgt = ctx.observed, ctx.target
    frames = {}
    for name in scores.target:
        parts = []
        if name in scores.observed:
            s = scores.observed[name]
            parts.append(gap_table(obs.y, (s >= threshold).long(), s, sensitive_features=obs.group,
                                   n_bins=n_bins, n_boot=n_boot, level=level, seed=seed))
        t = scores.target[name]
        rep = fairness_report(tgt.y, (t >= threshold).long(), sensitive_features=tgt.group)
        lo, hi = _percentiles(rep.bootstrap(n_boot, level=level, seed=seed)
                              .overall_samples[:, RATES.index("accuracy")], level)
        acc = pd.DataFrame({"estimate": [float(rep.overall["accuracy"])], "lower": [lo],
                            "upper": [hi], "noise_floor": [np.nan],
                            "consistent_with_zero": [False]}, index=pd.Index(["target_accuracy"]))
        parts.append(acc)
        frames[name] = pd.concat(parts)
    out = pd.concat(frames, names=["predictor", "metric"])
    out["consistent_with_zero"] = out["consistent_with_zero"].astype(bool)
    return out


# -- figures -----------------------------------------------------------------------------------
def plot_gap_heatmap(
    gaps: pd.DataFrame,
    *,
    implied: Mapping[str, str] | None = None,
    ax: Any = None,
    vmax: float | None = None,
    title: str | None = None,
    fmt: str = "{:.3f}",
) -> Any:
    """Heatmap of absolute gaps, contexts x metrics, with the implied cells outlined.

    Parameters
    ----------
    gaps : pandas.DataFrame
        Rows: contexts; columns: metrics; values: gaps (their absolute value is shown).
    implied : mapping, optional
        Context -> metric whose cell gets a frame (default :data:`IMPLIED_GAP` for the
        contexts present).
    ax : matplotlib Axes, optional
        Where to draw; a new figure otherwise.
    vmax : float, optional
        Upper end of the colour scale (default: the largest absolute gap).
    title : str, optional
        Axes title.
    fmt : str
        Format of the cell annotations.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.causal_context_audit import plot_gap_heatmap
    >>> g = pd.DataFrame({"demographic_parity": [0.001, -0.2]},
    ...                  index=["measurement_error", "selection_on_label"])
    >>> ax = plot_gap_heatmap(g)
    >>> len(ax.patches)  # one frame: measurement error x demographic parity
    1
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if not isinstance(gaps, pd.DataFrame) or gaps.empty:
        raise TypeError(MSG_TYPE.format(name="gaps", expected="a non-empty DataFrame",
                                        got=type(gaps).__name__))
    values = gaps.abs().to_numpy(dtype=float)
    if implied is None:
        implied = {k: v for k, v in IMPLIED_GAP.items() if k in gaps.index}
    if ax is None:
        _, ax = plt.subplots(figsize=(1.3 * gaps.shape[1] + 1.5, 0.7 * gaps.shape[0] + 1.2))
    top = float(np.nanmax(values)) if vmax is None else vmax
    ax.imshow(values, cmap="Greys", vmin=0.0, vmax=top or 1.0, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize="small",
                    color="white" if top and v > 0.55 * top else "black")
    for ctx_name, metric in implied.items():
        if ctx_name in gaps.index and metric in gaps.columns:
            i, j = list(gaps.index).index(ctx_name), list(gaps.columns).index(metric)
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="C1", lw=2.5))
    ax.set_xticks(range(gaps.shape[1]))
    ax.set_xticklabels([str(c).replace("_", " ") for c in gaps.columns], rotation=30, ha="right")
    ax.set_yticks(range(gaps.shape[0]))
    ax.set_yticklabels([CONTEXT_LABELS.get(str(r), str(r)) for r in gaps.index])
    if title:
        ax.set_title(title, fontsize="medium")
    return ax


_NODES = {"U": (0.0, 1.0), "X1": (1.0, 1.6), "Yt": (1.0, 0.4), "A": (3.0, 1.0),
          "X2": (2.0, 1.6), "Y": (2.0, 0.4), "S": (2.0, 0.4)}
_EDGES = {
    "measurement_error": [("U", "X1"), ("U", "Yt"), ("A", "X2"), ("Yt", "Y"), ("A", "Y")],
    "selection_on_label": [("U", "X1"), ("U", "Yt"), ("A", "X2"), ("Yt", "S"), ("A", "S")],
    "selection_on_predictors": [("U", "X1"), ("U", "Yt"), ("A", "X2"), ("X1", "S"), ("A", "S")],
}
_LABELS = {"U": "$U$", "X1": "$X_1$", "X2": "$X_2$", "A": "$A$", "Yt": r"$\tilde Y$",
           "Y": "$Y$", "S": "$S$"}


def draw_context_graph(kind: ContextKind, ax: Any = None) -> Any:
    """Draw the causal graph of one synthetic context (``make_causal_context``).

    ``U`` is the latent cause of the label, ``X1`` the feature not caused by ``A``,
    ``X2`` a proxy of ``A``, ``Ỹ`` the true label; ``Y`` the recorded label
    (measurement error) or ``S`` the selection indicator, drawn as a square because
    the data are conditioned on it.

    Examples
    --------
    >>> from fairlib.studies.causal_context_audit import draw_context_graph
    >>> ax = draw_context_graph("selection_on_label")
    >>> labels = [t.get_text() for t in ax.texts if t.get_text()]
    >>> len(labels), "$S$" in labels, "$Y$" in labels
    (6, True, False)
    """
    import matplotlib.pyplot as plt

    check_choice("kind", kind, list(_EDGES))
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 2.2))
    edges = _EDGES[kind]
    used = {v for e in edges for v in e}
    for node in used:
        x, y = _NODES[node]
        square = node == "S"
        ax.text(x, y, _LABELS[node], ha="center", va="center", fontsize="large",
                bbox={"boxstyle": "square,pad=0.35" if square else "circle,pad=0.3",
                      "facecolor": "0.85" if square else ("0.95" if node == "U" else "white"),
                      "edgecolor": "black", "linestyle": "--" if node == "U" else "-"})
    for a, b in edges:
        ax.annotate("", xy=_NODES[b], xytext=_NODES[a],
                    arrowprops={"arrowstyle": "-|>", "shrinkA": 14, "shrinkB": 14, "color": "0.2",
                                "lw": 1.2})
    ax.set_xlim(-0.5, 3.5)
    ax.set_ylim(0.0, 2.0)
    ax.set_axis_off()
    ax.set_title(CONTEXT_LABELS[kind], fontsize="medium")
    return ax


def vanishing_summary(tables: Mapping[str, pd.DataFrame],
                      predictor: str = "counterfactually fair") -> pd.DataFrame:
    """One row per context: the gap its causal context implies for ``predictor``.

    Parameters
    ----------
    tables : mapping of str to DataFrame
        Context kind -> output of :func:`audit_context`.
    predictor : str
        Which predictor's gaps to read.

    Returns
    -------
    pandas.DataFrame
        Index: contexts; columns ``metric`` (the implied gap), ``estimate``, ``lower``,
        ``upper``, ``noise_floor``, ``consistent_with_zero`` and ``largest_other`` (the
        largest absolute estimate among the other two implied metrics).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fairlib.datasets import make_causal_context
    >>> from fairlib.studies.causal_context_audit import (audit_context, fit_context_predictors,
    ...                                           vanishing_summary)
    >>> ctx = make_causal_context("measurement_error", n=20_000, seed=0)
    >>> t = audit_context(ctx, fit_context_predictors(ctx, LogisticRegression), n_boot=100)
    >>> s = vanishing_summary({"measurement_error": t})
    >>> row = s.loc["measurement_error"]
    >>> row["metric"], bool(row["largest_other"] > 0.1)
    ('demographic_parity', True)
    """
    rows = {}
    for kind, table in tables.items():
        check_choice("tables key", kind, list(IMPLIED_GAP))
        metric = IMPLIED_GAP[kind]
        own = table.loc[(predictor, metric)]
        others = [IMPLIED_GAP[k] for k in IMPLIED_GAP if IMPLIED_GAP[k] != metric]
        rows[kind] = {"metric": metric, **{c: own[c] for c in
                                           ("estimate", "lower", "upper", "noise_floor",
                                            "consistent_with_zero")},
                      "largest_other": float(max(abs(table.loc[(predictor, m), "estimate"])
                                                 for m in others))}
    return pd.DataFrame.from_dict(rows, orient="index")


# -- running the chapter's audits ----------------------------------------------------------------
def context_to(ctx: CausalContext, device: str | torch.device) -> CausalContext:
    """The context with both samples moved to ``device`` (the same object on the CPU).

    Examples
    --------
    >>> from fairlib.datasets import make_causal_context
    >>> from fairlib.studies.causal_context_audit import context_to
    >>> ctx = make_causal_context("measurement_error", n=100, seed=0)
    >>> context_to(ctx, "cpu") is ctx
    True
    """
    if torch.device(device).type == "cpu" and ctx.observed.device.type == "cpu":
        return ctx
    return replace(ctx, observed=ctx.observed.to(device), target=ctx.target.to(device))


def audit_contexts(
    contexts: Mapping[str, CausalContext],
    make_model: Callable[[], Any],
    *,
    n_folds: int = 1,
    seed: int = 0,
    target_trained: bool | Collection[str] = False,
    openmp_threads: int | None = None,
    threshold: float = 0.5,
    n_bins: int = 20,
    n_boot: int = 1000,
    level: float = 0.95,
) -> tuple[dict[str, pd.DataFrame], dict[str, ContextScores]]:
    """Fit the predictors of every context and audit them: :func:`fit_context_predictors`
    then :func:`audit_context`, with one seed for the folds and the resampling.

    Parameters
    ----------
    contexts : mapping
        Context kind -> :class:`~fairlib.datasets.CausalContext`.
    make_model : callable
        Returns a fresh estimator (``fit``, ``predict_proba``).
    n_folds, seed
        As in :func:`fit_context_predictors`; ``seed`` also seeds the bootstrap.
    target_trained : bool or collection of str
        Fit the reference model on the target sample: in every context (True), in none
        (False) or in the kinds listed.
    openmp_threads : int, optional
        Fit the models under ``threadpoolctl.threadpool_limits(openmp_threads, "openmp")``
        (boosted trees on small data run faster on one thread); the audit is not limited.
    threshold, n_bins, n_boot, level
        As in :func:`audit_context`.

    Returns
    -------
    (dict, dict)
        Kind -> :func:`audit_context` table, and kind -> :class:`ContextScores`.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fairlib.datasets import make_causal_context
    >>> from fairlib.studies.causal_context_audit import audit_contexts
    >>> ctxs = {"selection_on_label": make_causal_context("selection_on_label", n=20_000)}
    >>> tables, scores = audit_contexts(ctxs, LogisticRegression, target_trained=True, n_boot=50)
    >>> sorted(scores["selection_on_label"].target)
    ['counterfactually fair', 'naive', 'trained on target']
    """
    from contextlib import nullcontext

    tables, scores = {}, {}
    for kind, ctx in contexts.items():
        reference = target_trained if isinstance(target_trained, bool) else kind in target_trained
        if openmp_threads is None:
            limit: Any = nullcontext()
        else:
            from threadpoolctl import threadpool_limits

            limit = threadpool_limits(limits=openmp_threads, user_api="openmp")
        with limit:
            scores[kind] = fit_context_predictors(ctx, make_model, n_folds=n_folds, seed=seed,
                                                  target_trained=reference)
        tables[kind] = audit_context(ctx, scores[kind], threshold=threshold, n_bins=n_bins,
                                     n_boot=n_boot, level=level, seed=seed)
    return tables, scores


def base_rate_table(contexts: Mapping[str, CausalContext]) -> pd.DataFrame:
    """Size and base rate of each group, in the observed and the target sample of every context.

    Returns
    -------
    pandas.DataFrame
        Index ``(context, sample)``; columns ``rows``, ``base rate a=0``, ``base rate a=1``.

    Examples
    --------
    >>> from fairlib.datasets import make_causal_context
    >>> from fairlib.studies.causal_context_audit import base_rate_table
    >>> t = base_rate_table({"selection_on_label": make_causal_context("selection_on_label",
    ...                                                                n=10_000, seed=0)})
    >>> list(t.index), int(t.loc[("selection_on_label", "target"), "rows"])
    ([('selection_on_label', 'observed'), ('selection_on_label', 'target')], 10000)
    """
    rows = {}
    for kind, ctx in contexts.items():
        for name, part in (("observed", ctx.observed), ("target", ctx.target)):
            rates = part.summary()["base_rate"]
            rows[(kind, name)] = {"rows": len(part), "base rate a=0": rates.iloc[0],
                                  "base rate a=1": rates.iloc[1]}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index = pd.MultiIndex.from_tuples(out.index, names=["context", "sample"])
    return out


def gap_overview(tables: Mapping[str, pd.DataFrame],
                 predictors: Sequence[str] = ("naive", "counterfactually fair")) -> pd.DataFrame:
    """Every gap as ``"estimate [lower, upper]"``, with ``" *"`` when consistent with zero.

    Parameters
    ----------
    tables : mapping
        Context kind -> :func:`audit_context` table.
    predictors : sequence of str
        Which predictors, in order.

    Returns
    -------
    pandas.DataFrame
        Rows: :data:`GAP_METRICS` (spaces for underscores); columns ``(context label,
        predictor)``.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.causal_context_audit import GAP_METRICS, gap_overview
    >>> t = pd.DataFrame({"estimate": 0.001, "lower": -0.002, "upper": 0.004,
    ...                   "consistent_with_zero": True},
    ...                  index=pd.MultiIndex.from_product([["naive"], GAP_METRICS]))
    >>> gap_overview({"measurement_error": t}, ["naive"]).iloc[0, 0]
    '+0.0010 [-0.0020, +0.0040] *'
    """
    cols = {}
    for kind, table in tables.items():
        for p in predictors:
            sub = table.loc[p].reindex(list(GAP_METRICS))
            cols[(CONTEXT_LABELS.get(kind, kind), p)] = [
                f"{e:+.4f} [{lo:+.4f}, {hi:+.4f}]" + (" *" if z else "")
                for e, lo, hi, z in sub[["estimate", "lower", "upper", "consistent_with_zero"]]
                .itertuples(index=False)]
    return pd.DataFrame(cols, index=[m.replace("_", " ") for m in GAP_METRICS])


def interval_columns(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Columns ``estimate``, ``lower``, ``upper`` in the layout of ``summarize``.

    :func:`fairlib.book.note_intervals` then glues ``<row>_<name>``, ``..._lo`` and
    ``..._hi``, and :func:`fairlib.book.interval_table` prints them.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.causal_context_audit import interval_columns
    >>> t = pd.DataFrame({"estimate": [0.1], "lower": [0.0], "upper": [0.2]}, index=["me"])
    >>> interval_columns(t, "gap").columns.tolist()
    [('gap', 'mean'), ('gap', 'lower'), ('gap', 'upper')]
    """
    parts = table[["estimate", "lower", "upper"]].astype(float)
    return pd.concat({name: parts.set_axis(["mean", "lower", "upper"], axis=1)}, axis=1)


def implied_gap_notes(summary: pd.DataFrame, tables: Mapping[str, pd.DataFrame], *,
                      prefix: str, tolerance: float | None = None,
                      naive: str = "naive") -> dict[str, float | str]:
    """Glue values for the prose about each context's implied gap.

    Per context ``k`` of ``summary`` (from :func:`vanishing_summary`): ``<prefix><k>_zero``
    ("yes"/"no": consistent with zero), ``_metric`` (its name, with spaces), ``_abs`` (the
    absolute estimate), ``_other`` (largest other implied gap) and ``_naive`` (the same gap
    of the ``naive`` predictor). With a ``tolerance`` also ``_bound``, the larger absolute
    end of the interval, and ``_below``: "yes" when it is below the tolerance (the estimate
    and the whole interval are then within it).

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.causal_context_audit import implied_gap_notes
    >>> s = pd.DataFrame({"metric": ["demographic_parity"], "estimate": [-0.001],
    ...                   "lower": [-0.003], "upper": [0.002], "consistent_with_zero": [True],
    ...                   "largest_other": [0.3]}, index=["measurement_error"])
    >>> t = pd.DataFrame({"estimate": [-0.3]},
    ...                  index=pd.MultiIndex.from_tuples([("naive", "demographic_parity")]))
    >>> notes = implied_gap_notes(s, {"measurement_error": t}, prefix="sim_", tolerance=0.01)
    >>> notes["sim_measurement_error_metric"], notes["sim_measurement_error_below"]
    ('demographic parity', 'yes')
    """
    notes: dict[str, float | str] = {}
    for kind, row in summary.iterrows():
        key = f"{prefix}{kind}_"
        notes.update({key + "zero": "yes" if row["consistent_with_zero"] else "no",
                      key + "metric": str(row["metric"]).replace("_", " "),
                      key + "abs": abs(float(row["estimate"])),
                      key + "other": float(row["largest_other"]),
                      key + "naive": float(tables[kind].loc[(naive, row["metric"]), "estimate"])})
        if tolerance is not None:
            bound = max(abs(float(row["lower"])), abs(float(row["upper"])))
            notes.update({key + "bound": bound,
                          key + "below": "yes" if bound < tolerance else "no"})
    return notes


def target_accuracy(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every predictor's accuracy on the target sample, in the layout of ``summarize``.

    Returns
    -------
    pandas.DataFrame
        One row per context; columns ``(predictor, mean | lower | upper)``; NaN for a
        predictor a context did not fit.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.book import interval_table
    >>> from fairlib.studies.causal_context_audit import target_accuracy
    >>> t = pd.DataFrame({"estimate": [0.8], "lower": [0.79], "upper": [0.81]},
    ...                  index=pd.MultiIndex.from_tuples([("naive", "target_accuracy")]))
    >>> interval_table(target_accuracy({"measurement_error": t})).iloc[0, 0]
    '0.800 [0.790, 0.810]'
    """
    frames = {}
    for kind, table in tables.items():
        acc = table.xs("target_accuracy", level=1)[["estimate", "lower", "upper"]]
        frames[kind] = acc.set_axis(["mean", "lower", "upper"], axis=1).stack()
    out = pd.DataFrame(frames).T.astype(float)
    predictors = list(dict.fromkeys(p for t in tables.values()
                                    for p in t.xs("target_accuracy", level=1).index))
    out = out.reindex(columns=pd.MultiIndex.from_product([predictors, ["mean", "lower", "upper"]]))
    out.index.name = "context"
    return out


def target_auc(ctx: CausalContext, scores: ContextScores) -> dict[str, float]:
    """ROC AUC of every predictor's scores on the target sample (all rows together).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fairlib.datasets import make_causal_context
    >>> from fairlib.studies.causal_context_audit import fit_context_predictors, target_auc
    >>> ctx = make_causal_context("measurement_error", n=5000, seed=0)
    >>> auc = target_auc(ctx, fit_context_predictors(ctx, LogisticRegression))
    >>> auc["counterfactually fair"] > auc["naive"]
    True
    """
    from ..metrics import roc_auc_by_group

    tgt = ctx.target
    return {p: float(roc_auc_by_group(tgt.y, s, sensitive_features=tgt.group).overall)
            for p, s in scores.target.items()}


def gap_matrix(tables: Mapping[str, pd.DataFrame], predictor: str,
               metrics: Sequence[str] = ("demographic_parity", "equalized_odds",
                                         "calibration")) -> pd.DataFrame:
    """One predictor's gap estimates, contexts x metrics (the input of :func:`plot_gap_heatmap`).

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.causal_context_audit import gap_matrix
    >>> t = pd.DataFrame({"estimate": [0.1, 0.2]}, index=pd.MultiIndex.from_tuples(
    ...     [("naive", "demographic_parity"), ("naive", "calibration")]))
    >>> gap_matrix({"measurement_error": t}, "naive", ["calibration"]).iloc[0, 0]
    np.float64(0.2)
    """
    return pd.DataFrame({m: [t.loc[(predictor, m), "estimate"] for t in tables.values()]
                         for m in metrics}, index=list(tables))


def plot_audit_heatmaps(panels: Mapping[str, Mapping[str, pd.DataFrame]],
                        predictors: Sequence[str] = ("naive", "counterfactually fair")) -> Any:
    """A grid of :func:`plot_gap_heatmap`: one row per set of audits, one column per predictor,
    on one colour scale.

    Parameters
    ----------
    panels : mapping
        Row title -> (context kind -> :func:`audit_context` table).
    predictors : sequence of str
        The columns.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.causal_context_audit import plot_audit_heatmaps
    >>> t = pd.DataFrame({"estimate": [0.1, 0.2, 0.0]}, index=pd.MultiIndex.from_product(
    ...     [["naive"], ["demographic_parity", "equalized_odds", "calibration"]]))
    >>> fig = plot_audit_heatmaps({"sim": {"measurement_error": t}}, ["naive"])
    >>> [ax.get_title() for ax in fig.axes]
    ['sim: naive']
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), len(predictors), squeeze=False, sharex=True,
                             sharey=True, figsize=(4.75 * len(predictors), 3.1 * len(panels)))
    top = max(float(gap_matrix(t, p).abs().to_numpy().max())
              for t in panels.values() for p in predictors)
    for row, (name, tables) in enumerate(panels.items()):
        for col, predictor in enumerate(predictors):
            plot_gap_heatmap(gap_matrix(tables, predictor), ax=axes[row, col], vmax=top,
                             title=f"{name}: {predictor}")
    fig.tight_layout()
    return fig


# -- the exercises -------------------------------------------------------------------------------
def lose_positives(data: FairDataset, *, group: int = 1, rate: float = 0.4,
                   seed: int = 0) -> FairDataset:
    """Recorded labels that lose a share of one group's true positives, and nothing else.

    Every row of ``group`` whose true label (``data.extras["y_true"]``) is 1 is recorded
    as 0 with probability ``rate``; every other row keeps its true label. The draws come
    from a CPU ``torch.Generator`` seeded with ``seed``.

    Examples
    --------
    >>> from fairlib.datasets import make_causal_context
    >>> from fairlib.studies.causal_context_audit import lose_positives
    >>> obs = make_causal_context("measurement_error", n=20_000, seed=0).observed
    >>> one_sided = lose_positives(obs, rate=0.5)
    >>> bool((one_sided.y <= obs.extras["y_true"]).all())
    True
    """
    if "y_true" not in data.extras:
        raise ValueError(MSG_TYPE.format(name="data", expected='a dataset with extras["y_true"]',
                                         got=f"extras {sorted(data.extras)}"))
    if not 0.0 <= rate <= 1.0:
        raise ValueError(MSG_TYPE.format(name="rate", expected="a probability in [0, 1]",
                                         got=repr(rate)))
    y_true = data.extras["y_true"]
    u = torch.rand(len(data), generator=torch.Generator().manual_seed(seed)).to(data.device)
    lost = (data.group == group) & (y_true == 1) & (u < rate)
    return data.with_labels(torch.where(lost, 0, y_true))


class MarginalisedClassifier:
    """Fit ``f(x, a)`` with ``a`` as the last column; predict ``p f(x, 1) + (1 - p) f(x, 0)``.

    The prediction of Anthis & Veitch's marginalisation: a function of ``x`` alone, so it is
    counterfactually fair when no feature is caused by ``a``.

    Parameters
    ----------
    make_model : callable
        Returns a fresh estimator with ``fit`` and ``predict_proba``.
    p : float
        ``P(a = 1)`` in the population.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fairlib.studies.causal_context_audit import MarginalisedClassifier
    >>> X = np.array([[0.0, 0], [1.0, 0], [0.0, 1], [1.0, 1]] * 10)
    >>> y = np.array([0, 1, 1, 1] * 10)
    >>> m = MarginalisedClassifier(LogisticRegression, 0.5).fit(X, y)
    >>> a0, a1 = m.predict_proba(np.array([[0.0, 0], [0.0, 1]]))[:, 1]
    >>> bool(a0 == a1)
    True
    """

    def __init__(self, make_model: Callable[[], Any], p: float) -> None:
        self.make_model = make_model
        self.p = p

    def fit(self, X: np.ndarray, y: np.ndarray) -> MarginalisedClassifier:
        self.model_ = self.make_model().fit(X, y)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X1, X0 = X.copy(), X.copy()
        X1[:, -1], X0[:, -1] = 1.0, 0.0
        f = self.model_.predict_proba
        return self.p * f(X1) + (1 - self.p) * f(X0)


def implied_gap_by_size(kind: ContextKind, sizes: Sequence[int], make_model: Callable[[], Any],
                        *, seed: int = 0, device: str | torch.device = "cpu",
                        predictor: str = "counterfactually fair", threshold: float = 0.5,
                        n_bins: int = 20, n_boot: int = 1000, level: float = 0.95) -> pd.DataFrame:
    """The implied gap of one context, drawn at several population sizes.

    Each size draws :func:`fairlib.datasets.make_causal_context` with ``seed``, fits the
    predictors on the observed sample and audits them (:func:`audit_context`).

    Returns
    -------
    pandas.DataFrame
        One row per size (index ``population size``), the columns of
        :func:`vanishing_summary` for ``predictor``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fairlib.studies.causal_context_audit import implied_gap_by_size
    >>> t = implied_gap_by_size("selection_on_label", [5000, 20_000], LogisticRegression,
    ...                         n_boot=50)
    >>> t.index.tolist(), t["metric"].iloc[0]
    ([5000, 20000], 'equalized_odds')
    """
    from ..datasets import make_causal_context

    rows = {}
    for size in sizes:
        ctx = context_to(make_causal_context(kind, n=size, seed=seed), device)
        table = audit_context(ctx, fit_context_predictors(ctx, make_model), threshold=threshold,
                              n_bins=n_bins, n_boot=n_boot, level=level, seed=seed)
        rows[size] = vanishing_summary({kind: table}, predictor).iloc[0].to_dict()
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "population size"
    return out


def group_threshold_audit(ctx: CausalContext, observed: torch.Tensor, target: torch.Tensor, *,
                          threshold: float = 0.5) -> tuple[pd.DataFrame, dict[int, float]]:
    """One threshold for everyone against one threshold per group that equalises selection.

    The per-group thresholds select, in each group of the observed sample, the share that
    the single ``threshold`` selects overall (demographic parity by construction).

    Parameters
    ----------
    ctx : CausalContext
        The context the scores belong to.
    observed, target : torch.Tensor
        Scores of one predictor on ``ctx.observed`` and ``ctx.target``.
    threshold : float, default 0.5
        The single threshold.

    Returns
    -------
    (pandas.DataFrame, dict)
        Rows ``one threshold`` and ``parity thresholds``; columns ``demographic parity``
        and ``PPV gap`` (between-groups differences on the observed sample) and
        ``target accuracy``. And the per-group thresholds ``{0: t0, 1: t1}``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from fairlib.datasets import make_causal_context
    >>> from fairlib.studies.causal_context_audit import (fit_context_predictors,
    ...                                                   group_threshold_audit)
    >>> ctx = make_causal_context("selection_on_predictors", n=20_000, seed=0)
    >>> s = fit_context_predictors(ctx, LogisticRegression)
    >>> cf = "counterfactually fair"
    >>> table, cuts = group_threshold_audit(ctx, s.observed[cf], s.target[cf])
    >>> bool(table.loc["parity thresholds", "demographic parity"] < 0.01)
    True
    """
    obs, tgt = ctx.observed, ctx.target
    rate = float((observed >= threshold).double().mean())
    cut = {g: float(torch.quantile(observed[obs.group == g], 1 - rate)) for g in (0, 1)}
    cuts_obs = torch.where(obs.group == 1, cut[1], cut[0])
    cuts_tgt = torch.where(tgt.group == 1, cut[1], cut[0])
    rows = {}
    decisions = [("one threshold", observed >= threshold, target >= threshold),
                 ("parity thresholds", observed >= cuts_obs, target >= cuts_tgt)]
    for name, pred_obs, pred_tgt in decisions:
        # Calibration of the decision: the positive rate among those selected, per group.
        rep = fairness_report(obs.y, pred_obs.long(), sensitive_features=obs.group)
        rows[name] = {"demographic parity": rep.measure("demographic_parity_difference"),
                      "PPV gap": rep.measure("predictive_parity_difference"),
                      "target accuracy": float((pred_tgt.long() == tgt.y).double().mean())}
    return pd.DataFrame.from_dict(rows, orient="index"), cut
