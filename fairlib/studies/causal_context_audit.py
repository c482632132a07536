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

Synthetic contexts come from :func:`fairlib.datasets.make_causal_context`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._validation import MSG_TYPE, ArrayLike, check_choice, check_positive_int
from ..datasets import CausalContext
from ..datasets.synthetic import CAUSAL_CONTEXTS, ContextKind
from ..metrics import fairness_report
from ..metrics import RATES
from ..metrics import resampling as boot
from ..metrics.resampling import prepare_labels
from ..metrics.scores import calibration_edges, calibration_gaps, calibration_rates, calibration_table

__all__ = [
    "CONTEXT_LABELS",
    "GAP_METRICS",
    "IMPLIED_GAP",
    "ContextScores",
    "audit_context",
    "draw_context_graph",
    "fit_context_predictors",
    "gap_table",
    "plot_gap_heatmap",
    "vanishing_summary",
]


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
