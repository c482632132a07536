"""Many groups: pooled and intersectional attributes, marginal-parity audits, equity summaries.

Written for chapter 8, *Many groups* (``notebooks/08_many_groups.ipynb``).

- :func:`fairlib.datasets.pool_categories` (in the core): merge small categories of an attribute.
- :func:`load_race_sex`: Adult with race, sex, their ten intersections and six pooled
  ones; registered for :mod:`fairlib.experiments` as the data set ``"adult_race_sex"``.
- :func:`marginal_parity_rates` and :func:`select_at_rates`: classifiers whose selection
  rates are equal across each of two attributes yet unequal across their intersections
  ("fairness gerrymandering", Kearns, Neel, Roth & Wu, ICML 2018); :func:`gerrymander`
  builds one from a trained model and audits it with bootstrap intervals, and
  :func:`plot_gerrymander` draws it.
- :func:`group_performance`: accuracy, ROC AUC, their worst-group and equity-scaled
  versions (FairSeg / FairVision), performance-scaled disparity and two parity
  differences, in one dict per model; :func:`group_table` and :func:`grouping_table`
  tabulate one model by group and under several groupings; :func:`shuffled_psd` gives
  the disparity that shuffled group labels produce.
- The per-run metric ``"equity_scaled"`` (:func:`equity_metrics`) adds the equity-scaled
  values on the meta and test splits to every record of :mod:`fairlib.experiments`, and
  :func:`tuning_grid` builds the chapter's comparison (ERM, Group DRO, FEBS, FIS with an
  equal tuning budget); :func:`tally` counts the paired differences that exclude zero.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._validation import MSG_TYPE, ArrayLike
from ..experiments import RunSpec, register_dataset, register_metric
from ..metrics import (
    UndefinedMetricWarning,
    accuracy_by_group,
    demographic_parity_difference,
    equalized_odds_difference,
    es_metric,
    fairness_report,
    psd,
    roc_auc_by_group,
)

__all__ = [
    "CHAPTER",
    "EQUITY_METRICS",
    "GROUPS",
    "OTHER_RACES",
    "PERFORMANCE_METRICS",
    "Gerrymander",
    "equity_metrics",
    "gerrymander",
    "group_performance",
    "group_table",
    "grouping_table",
    "load_race_sex",
    "marginal_parity_rates",
    "plot_gerrymander",
    "select_at_rates",
    "shuffled_psd",
    "tally",
    "tuning_grid",
]

#: The notebook this module was written for.
CHAPTER = "08_many_groups"
#: The three smallest race categories of Adult, pooled into "Other races".
OTHER_RACES: tuple[str, ...] = ("Amer-Indian-Eskimo", "Asian-Pac-Islander", "Other")
#: The six pooled race x sex groups used for training and for the equity metrics.
GROUPS = "race3 & sex"

#: Keys of :func:`group_performance`, in order.
PERFORMANCE_METRICS: tuple[str, ...] = (
    "accuracy",
    "worst_group_accuracy",
    "es_accuracy",
    "es_accuracy_std",
    "auc",
    "worst_group_auc",
    "es_auc",
    "psd_mean",
    "psd_max",
    "demographic_parity_difference",
    "equalized_odds_difference",
)


def marginal_parity_rates(sizes: ArrayLike, rate: float, shift: float) -> np.ndarray:
    """Selection rates for a 2 x 2 table of groups with equal rates on both margins.

    With cell sizes ``n_ij`` (rows: the levels of one attribute, columns: of the other),
    the rates ``s_ij = rate + c * sign_ij / n_ij`` with ``sign = [[-1, 1], [1, -1]]``
    select the same share ``rate`` of each row and of each column for every ``c``, so a
    classifier with these rates has demographic parity on each attribute. Yet the cells
    differ by ``c (1 / n_ij + 1 / n_kl)``. ``shift`` is ``c`` as a share of its largest
    value that keeps every rate in [0, 1]: 0 gives parity in every cell, 1 (or -1) drives a
    cell of the diagonal (or of the anti-diagonal) to rate 0 or 1.

    Parameters
    ----------
    sizes : array-like of shape (2, 2)
        Positive cell sizes (or any positive weights, e.g. population shares).
    rate : float
        The common selection rate of every margin, in [0, 1].
    shift : float
        In [-1, 1].

    Returns
    -------
    numpy.ndarray
        Rates of shape (2, 2).

    Examples
    --------
    >>> import numpy as np
    >>> from fairlib.studies.intersectional import marginal_parity_rates
    >>> sizes = np.array([[100, 300], [400, 200]])
    >>> s = marginal_parity_rates(sizes, 0.2, 1.0)
    >>> s.round(3).tolist()
    [[0.0, 0.267], [0.25, 0.1]]
    >>> ((s * sizes).sum(1) / sizes.sum(1)).round(6).tolist()  # each row selects 20%
    [0.2, 0.2]
    >>> ((s * sizes).sum(0) / sizes.sum(0)).round(6).tolist()  # and each column
    [0.2, 0.2]
    """
    n = np.asarray(sizes, dtype=np.float64)
    if n.shape != (2, 2) or not np.all(n > 0):
        raise ValueError(MSG_TYPE.format(name="sizes", expected="a 2 x 2 array of positive sizes",
                                         got=f"{n.tolist()}"))
    if not 0.0 <= rate <= 1.0:
        raise ValueError(MSG_TYPE.format(name="rate", expected="in [0, 1]", got=repr(rate)))
    if not -1.0 <= shift <= 1.0:
        raise ValueError(MSG_TYPE.format(name="shift", expected="in [-1, 1]", got=repr(shift)))
    sign = np.array([[-1.0, 1.0], [1.0, -1.0]]) * (1.0 if shift >= 0 else -1.0)
    room = np.where(sign > 0, (1.0 - rate) * n, rate * n)  # c at which each cell hits a bound
    c = abs(shift) * room.min()
    return np.clip(rate + c * sign / n, 0.0, 1.0)


def select_at_rates(
    scores: torch.Tensor,
    groups: torch.Tensor,
    rates: ArrayLike,
    *,
    reference_scores: torch.Tensor | None = None,
    reference_groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """Predict 1 for the top share ``rates[g]`` of each group's scores.

    The threshold of group ``g`` is the ``1 - rates[g]`` quantile of the reference
    scores of that group (default: the scores themselves); rate 0 selects nobody, rate 1
    everybody. Thresholds set on one sample and applied to another give that sample's
    rates up to sampling noise.

    Parameters
    ----------
    scores : torch.Tensor
        Scores to threshold, shape ``[n]``.
    groups : torch.Tensor
        int64 group codes ``[n]`` indexing ``rates``.
    rates : array-like of shape (G,)
        Selection rate per group.
    reference_scores, reference_groups : torch.Tensor, optional
        Where the thresholds are computed.

    Returns
    -------
    torch.Tensor
        int64 predictions ``[n]`` on the device of ``scores``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.intersectional import select_at_rates
    >>> s = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    >>> g = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    >>> select_at_rates(s, g, [0.5, 0.0]).tolist()
    [0, 0, 1, 1, 0, 0, 0, 0]
    """
    ref_s = scores if reference_scores is None else reference_scores
    ref_g = groups if reference_groups is None else reference_groups
    r = torch.as_tensor(np.asarray(rates, dtype=np.float64))
    if r.ndim != 1 or bool(((r < 0) | (r > 1)).any()):
        raise ValueError(MSG_TYPE.format(name="rates", expected="a 1-d array of rates in [0, 1]",
                                         got=f"{r.tolist()}"))
    cuts = torch.empty(len(r), dtype=torch.float64)
    for g, rate in enumerate(r.tolist()):
        members = ref_s[ref_g == g].double()
        if rate <= 0.0:
            cuts[g] = torch.inf
        elif rate >= 1.0 or members.numel() == 0:
            cuts[g] = -torch.inf
        else:
            cuts[g] = float(torch.quantile(members, 1.0 - rate))
    return (scores.double() >= cuts.to(scores.device)[groups]).to(torch.int64)


def group_performance(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    sensitive_features: Any,
    threshold: float = 0.5,
    alpha: float = 1.0,
) -> dict[str, float]:
    """Overall, worst-group and equity-scaled performance, and two parity differences.

    ``es_*`` are ``M / (1 + alpha * sum_g |M_g - M|)`` (the FairSeg / FairVision code's
    form); ``es_accuracy_std`` uses ``alpha`` times the sample std of the group values
    instead; ``psd_mean`` is ``std(AUC_g) / AUC`` (population std) and ``psd_max``
    ``(max_g AUC_g - min_g AUC_g) / AUC``. Groups where a value is undefined (a group with
    one class has no AUC) are skipped, with fairlib's ``UndefinedMetricWarning``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels.
    y_score : array-like of shape (n,)
        Scores in [0, 1].
    sensitive_features : array-like, DataFrame or dict
        One or several attributes (several: their intersections).
    threshold : float, default 0.5
        A score at or above it predicts 1.
    alpha : float, default 1.0
        Strength of the equity scaling.

    Returns
    -------
    dict of str to float
        Keys :data:`PERFORMANCE_METRICS`.

    Examples
    --------
    >>> from fairlib.studies.intersectional import group_performance
    >>> y = [0, 1, 0, 1, 0, 1, 0, 1]
    >>> s = [0.2, 0.8, 0.3, 0.7, 0.6, 0.4, 0.1, 0.9]
    >>> perf = group_performance(y, s, sensitive_features=list("aaaabbbb"))
    >>> perf["accuracy"], perf["worst_group_accuracy"], perf["es_accuracy"]
    (0.75, 0.5, 0.5)
    """
    ys = torch.as_tensor(np.asarray(y_score, dtype=np.float64)) if not isinstance(
        y_score, torch.Tensor) else y_score
    pred = (ys >= threshold).to(torch.int64)
    acc = accuracy_by_group(y_true, pred, sensitive_features=sensitive_features)
    auc = roc_auc_by_group(y_true, ys, sensitive_features=sensitive_features)
    out = {
        "accuracy": acc.overall,
        "worst_group_accuracy": acc.group_min(),
        "es_accuracy": es_metric(acc, alpha=alpha),
        "es_accuracy_std": es_metric(acc, alpha=alpha, mode="std"),
        "auc": auc.overall,
        "worst_group_auc": auc.group_min(),
        "es_auc": es_metric(auc, alpha=alpha),
        "psd_mean": psd(auc),
        "psd_max": psd(auc, mode="max"),
        "demographic_parity_difference": demographic_parity_difference(
            y_true, pred, sensitive_features=sensitive_features),
        "equalized_odds_difference": equalized_odds_difference(
            y_true, pred, sensitive_features=sensitive_features),
    }
    return {k: float(out[k]) for k in PERFORMANCE_METRICS}


# -- data ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def load_race_sex() -> Any:
    """Adult with race and sex, their intersections, and the pooled race x sex groups.

    The attributes are ``sex``, ``race`` (five census categories), ``race & sex`` (ten
    groups), ``race3`` (race with :data:`OTHER_RACES` pooled into ``"Other races"``) and
    the active ``race3 & sex`` (six groups, :data:`GROUPS`). Cached per process.

    Returns
    -------
    FairDataset
    """
    from ..datasets import load_adult, pool_categories

    census = load_adult(["race", "sex"])
    pooled = pool_categories(census, "race", {"Other races": list(OTHER_RACES)}, new_name="race3")
    return pooled.with_sensitive("race3", "sex")


@register_dataset("adult_race_sex")
def adult_race_sex(*, seed: int, pooled: bool = True,
                   split: Sequence[float] = (0.6, 0.2, 0.2)) -> Any:
    """:func:`load_race_sex` split with ``seed``, stratified by group and label.

    The active attribute (the groups of the weighting methods and of every group metric)
    is the six pooled groups, or the ten race x sex groups with ``pooled=False``.
    """
    data = load_race_sex() if pooled else load_race_sex().with_sensitive("race & sex")
    return data.split(*split, seed=seed)


# -- per-run metrics ----------------------------------------------------------------------------
#: Keys :func:`equity_metrics` adds per split (``meta_<key>``, ``test_<key>``): ROC AUC, its
#: worst group, equity-scaled accuracy and AUC (``_std``: std form; ``_a05`` / ``_a2``:
#: alpha 0.5 / 2), and performance-scaled disparity of the AUC.
EQUITY_METRICS: tuple[str, ...] = (
    "auc", "worst_group_auc", "es_accuracy", "es_accuracy_std", "es_auc", "psd_mean", "psd_max",
    "es_auc_a05", "es_auc_a2", "es_auc_std",
)


@register_metric("equity_scaled")
def equity_metrics(run: Any) -> dict[str, float]:
    """Equity-scaled metrics of a trained run on its meta and test splits (by active group).

    Registered as the per-run metric ``"equity_scaled"``: a spec with
    ``metrics=["equity_scaled"]`` gets ``meta_<key>`` and ``test_<key>`` for every key of
    :data:`EQUITY_METRICS` in its record. Undefined group values are skipped silently.

    Parameters
    ----------
    run : fairlib.experiments.TrainedRun

    Returns
    -------
    dict of str to float
    """
    from ..train import predict_scores, resolve_device

    device = resolve_device(run.spec.train_settings["device"])
    out: dict[str, float] = {}
    for split in ("meta", "test"):
        data = getattr(run, split)
        scores = predict_scores(run.model, data, device=device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            perf = group_performance(data.y, scores, sensitive_features=data.group)
            auc = roc_auc_by_group(data.y, scores, sensitive_features=data.group)
            extra = {"es_auc_a05": es_metric(auc, alpha=0.5),
                     "es_auc_a2": es_metric(auc, alpha=2.0),
                     "es_auc_std": es_metric(auc, mode="std")}
        values = {**perf, **{k: float(v) for k, v in extra.items()}}
        out.update({f"{split}_{k}": values[k] for k in EQUITY_METRICS})
    return out


def tuning_grid(*, epochs: int, batch_size: int, lr: float, hidden: int,
                weight_decays: Sequence[float], dro_etas: Sequence[float],
                febs_gammas: Sequence[float], fis_cs: Sequence[float], fis_T: float,
                device: str = "cpu") -> list[RunSpec]:
    """The chapter's comparison: ERM, Group DRO, FEBS and FIS on the six race x sex groups.

    One MLP recipe for all; each method tunes one knob over a grid of the same length
    (ERM its weight decay, Group DRO its step size ``eta_q``, FEBS its exponent
    ``gamma``, FIS its group share ``c``), the others at weight decay 0. Every spec
    records the per-run metric ``"equity_scaled"``.

    Returns
    -------
    list of RunSpec
        One spec per configuration, for :func:`fairlib.experiments.tune_and_run`.

    Examples
    --------
    >>> from fairlib.studies.intersectional import tuning_grid
    >>> specs = tuning_grid(epochs=1, batch_size=512, lr=0.01, hidden=8,
    ...                     weight_decays=[0.0, 0.001], dro_etas=[0.1, 1.0],
    ...                     febs_gammas=[1.0, 2.0], fis_cs=[0.5, 0.75], fis_T=1.0)
    >>> [s.method for s in specs][::2], dict(specs[2].method_params)
    (['ERM', 'GroupDRO', 'FEBS', 'FIS'], {'eta_q': 0.1, 'groups': 'group'})
    """
    lengths = [len(weight_decays), len(dro_etas), len(febs_gammas), len(fis_cs)]
    if len(set(lengths)) != 1:
        raise ValueError(MSG_TYPE.format(
            name="weight_decays`, `dro_etas`, `febs_gammas` and `fis_cs",
            expected="grids of one length (an equal tuning budget)", got=f"lengths {lengths}"))
    train = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device}
    configs = [("ERM", {}, wd) for wd in weight_decays]
    configs += [("GroupDRO", {"eta_q": eta, "groups": "group"}, 0.0) for eta in dro_etas]
    configs += [("FEBS", {"gamma": gamma}, 0.0) for gamma in febs_gammas]
    configs += [("FIS", {"c": c, "T": fis_T}, 0.0) for c in fis_cs]
    return [RunSpec("adult_race_sex", "mlp", method, model_params={"hidden": [hidden]},
                    method_params=params, train={**train, "weight_decay": wd},
                    metrics=["equity_scaled"]) for method, params, wd in configs]


def tally(paired: pd.DataFrame, higher_is_better: Mapping[str, bool]) -> dict[str, int]:
    """Count paired differences whose interval excludes zero, by direction.

    Parameters
    ----------
    paired : pandas.DataFrame
        From :func:`fairlib.experiments.compare`.
    higher_is_better : mapping of str to bool
        The metrics to count, and whether an increase is an improvement.

    Returns
    -------
    dict
        ``better``, ``worse`` (intervals excluding zero in either direction) and
        ``total`` (differences counted).

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.intersectional import tally
    >>> paired = pd.DataFrame({"difference": [0.1, -0.2], "consistent_with_zero": [False, False]},
    ...                       index=pd.MultiIndex.from_tuples([("A", "acc"), ("A", "gap")]))
    >>> tally(paired, {"acc": True, "gap": False})
    {'better': 2, 'worse': 0, 'total': 2}
    """
    rows = paired[paired.index.get_level_values(-1).isin(list(higher_is_better))]
    metrics = rows.index.get_level_values(-1)
    sign = np.array([1.0 if higher_is_better[m] else -1.0 for m in metrics])
    gain = sign * rows["difference"].to_numpy(dtype=float)
    clear = ~rows["consistent_with_zero"].to_numpy(dtype=bool)
    return {"better": int((clear & (gain > 0)).sum()), "worse": int((clear & (gain < 0)).sum()),
            "total": len(rows)}


# -- one model ----------------------------------------------------------------------------------
def group_table(y_true: ArrayLike, y_score: ArrayLike, *, sensitive_features: Any,
                threshold: float = 0.5) -> pd.DataFrame:
    """Size, base rate, selection rate, accuracy, TPR and ROC AUC of every group.

    Examples
    --------
    >>> from fairlib.studies.intersectional import group_table
    >>> t = group_table([0, 1, 0, 1], [0.2, 0.8, 0.7, 0.4], sensitive_features=list("aabb"))
    >>> t["accuracy"].tolist(), t["roc_auc"].tolist()
    ([1.0, 0.0], [1.0, 0.0])
    """
    ys = torch.as_tensor(np.asarray(y_score, dtype=np.float64)) if not isinstance(
        y_score, torch.Tensor) else y_score
    pred = (ys >= threshold).to(torch.int64)
    rep = fairness_report(y_true, pred, sensitive_features=sensitive_features)
    auc = roc_auc_by_group(y_true, ys, sensitive_features=sensitive_features)
    out = rep.by_group[["n", "base_rate", "selection_rate", "accuracy", "true_positive_rate"]]
    return out.assign(roc_auc=auc.to_series().to_numpy())


def grouping_table(y_true: ArrayLike, y_score: ArrayLike,
                   groupings: Mapping[str, ArrayLike]) -> pd.DataFrame:
    """:func:`group_performance` of one model under several groupings of the same rows.

    Parameters
    ----------
    y_true, y_score : array-like of shape (n,)
        Labels and scores.
    groupings : mapping of str to array-like
        A label per grouping -> the group of every row.

    Returns
    -------
    pandas.DataFrame
        One row per grouping: ``groups`` (non-empty), ``smallest group``, ``fewest
        positives`` (in one group), ``undefined`` (group values fairlib reported as
        undefined and skipped) and :data:`PERFORMANCE_METRICS`.
    """
    y = np.asarray(torch.as_tensor(y_true).cpu() if isinstance(y_true, torch.Tensor) else y_true)
    rows = {}
    for label, groups in groupings.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UndefinedMetricWarning)
            perf = group_performance(y_true, y_score, sensitive_features=groups)
        by = pd.Series(y).groupby(np.asarray(groups)).agg(["size", "sum"])
        by = by[by["size"] > 0]
        rows[label] = {"groups": len(by), "smallest group": int(by["size"].min()),
                       "fewest positives": int(by["sum"].min()),
                       "undefined": sum(issubclass(w.category, UndefinedMetricWarning)
                                        for w in caught),
                       **perf}
    return pd.DataFrame(rows).T


def shuffled_psd(y_true: ArrayLike, y_score: ArrayLike, groups: ArrayLike, *, n_perm: int = 200,
                 level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Observed PSD (mean) of the AUC, and its distribution under shuffled group labels.

    Shuffling the groups of the rows (sizes kept) removes any real difference between
    groups, so the shuffled values show the disparity noise alone produces.

    Returns
    -------
    dict
        ``observed``, ``median`` and ``quantile`` (the ``level`` quantile) of the
        shuffled values, and ``beyond`` (1.0 when the observed value exceeds that quantile).
    """
    labels = np.asarray(groups)
    gen = torch.Generator().manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        observed = float(psd(roc_auc_by_group(y_true, y_score, sensitive_features=labels)))
        null = [float(psd(roc_auc_by_group(y_true, y_score, sensitive_features=labels[
            torch.randperm(len(labels), generator=gen).numpy()]))) for _ in range(n_perm)]
    q = float(np.quantile(null, level))
    return {"observed": observed, "median": float(np.median(null)), "quantile": q,
            "beyond": float(observed > q)}


# -- fairness gerrymandering --------------------------------------------------------------------
@dataclass
class Gerrymander:
    """A classifier with parity on two attributes and none on their intersections.

    Attributes
    ----------
    differences : pandas.DataFrame
        Rows ``by sex``, ``by race``, ``by race x sex``; columns ``estimate``, ``lower``,
        ``upper``, ``consistent_with_zero`` on the test split (two groups: signed, second
        minus first, i.e. Male - Female and White - Black; four: largest - smallest) and
        ``held_out`` (unsigned, on the split where the thresholds were set).
    rates : dict of str to pandas.DataFrame
        Per view, the rate of every group on the test split with its interval.
    curve : pandas.DataFrame
        The three differences on the test split along the whole family of shifts.
    cell_rates : pandas.Series
        The target rate of each intersection (set on the held-out split).
    rate : float
        The common rate of every margin.
    accuracy, accuracy_at_parity : float
        Test accuracy of the classifier and of the family's member with equal rates.
    kind : str
        The equalised rate, ``"selection_rate"`` or ``"true_positive_rate"``.
    """

    differences: pd.DataFrame
    rates: dict[str, pd.DataFrame]
    curve: pd.DataFrame
    cell_rates: pd.Series
    rate: float
    accuracy: float
    accuracy_at_parity: float
    kind: str = "selection_rate"


_GERRYMANDER = {"selection_rate": ("demographic_parity_difference", "demographic_parity"),
                "true_positive_rate": ("equal_opportunity_difference", "true_positive_rate")}


def gerrymander(model: Any, meta: Any, test: Any, *, shift: float, rate: str = "selection_rate",
                races: Sequence[str] = ("Black", "White"), n_boot: int = 1000, level: float = 0.95,
                seed: int = 0, device: str = "cpu") -> Gerrymander:
    """Post-process ``model`` into a marginally fair, intersectionally unfair classifier.

    On the rows of the two ``races`` (race3) and their four race x sex groups, thresholds
    set on ``meta`` give each group the rate of :func:`marginal_parity_rates` (``shift``
    of the largest possible departure), so the rate is the same for each sex and each
    race; they are applied to ``test`` and audited there with bootstrap intervals
    (:func:`fairlib.studies.causal_context_audit.gap_table` for the signed two-group
    differences, :meth:`fairlib.metrics.FairnessReport.bootstrap` for the four groups).

    Parameters
    ----------
    model : torch.nn.Module
        Scores the rows (one logit each).
    meta, test : FairDataset
        Splits of :func:`load_race_sex`: thresholds are set on ``meta``, audited on ``test``.
    shift : float
        In [-1, 1], as in :func:`marginal_parity_rates`.
    rate : {"selection_rate", "true_positive_rate"}
        Equalise selection rates on the margins (demographic parity) or TPRs (equal
        opportunity: the thresholds are set on the positives).
    races : two race3 categories
    n_boot, level, seed : bootstrap resamples, coverage and seed.
    device : str
        Where the model scores.

    Returns
    -------
    Gerrymander
    """
    from ..train import predict_scores
    from .causal_context_audit import gap_table

    if rate not in _GERRYMANDER:
        raise ValueError(MSG_TYPE.format(name="rate", expected=f"one of {sorted(_GERRYMANDER)}",
                                         got=repr(rate)))
    measure, gap_row = _GERRYMANDER[rate]
    pm, pt = (part.keep_groups("race3", list(races)).with_sensitive("race3", "sex")
              for part in (meta, test))
    s_meta, s_test = (predict_scores(model, part, device=device).cpu() for part in (pm, pt))
    y, y_meta, g_test, g_meta = pt.y.cpu(), pm.y.cpu(), pt.group.cpu(), pm.group.cpu()
    ref = y_meta == 1 if rate == "true_positive_rate" else torch.ones(len(pm), dtype=torch.bool)
    sizes = torch.bincount(g_meta[ref], minlength=4).numpy().reshape(2, 2)
    common = float((s_meta[ref] >= 0.5).double().mean())

    def predict(sh: float, scores: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        rates = marginal_parity_rates(sizes, common, sh).reshape(-1)
        return select_at_rates(scores, groups, rates, reference_scores=s_meta[ref],
                               reference_groups=g_meta[ref])

    pred, pred_meta = predict(shift, s_test, g_test), predict(shift, s_meta, g_meta)
    frame, meta_frame = pt.to_pandas(), pm.to_pandas()
    views = {"by sex": "sex", "by race": "race3", "by race x sex": "race3 & sex"}
    rows, rates = {}, {}
    with warnings.catch_warnings():  # rates no view uses (a PPV without selections) are NaN
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for name, col in views.items():
            sf = frame[col]
            boot = fairness_report(y, pred, sensitive_features=sf).bootstrap(n_boot, level=level,
                                                                             seed=seed)
            rates[name] = boot.by_group(rate).drop(index="overall")
            if name == "by race x sex":
                est, (lo, hi) = boot.report.measure(measure), boot.interval(measure)
            else:
                row = gap_table(y, pred, s_test, sensitive_features=sf, n_boot=n_boot,
                                level=level, seed=seed).loc[gap_row]
                est, lo, hi = float(row["estimate"]), float(row["lower"]), float(row["upper"])
            lo, hi = min(lo, est), max(hi, est)  # an interval that misses its estimate is widened
            held = fairness_report(y_meta, pred_meta, sensitive_features=meta_frame[col])
            rows[name] = {"estimate": est, "lower": lo, "upper": hi,
                          "consistent_with_zero": lo <= 0 <= hi, "held_out": held.measure(measure)}
        shifts = np.linspace(-1, 1, 41)
        curve = pd.DataFrame(
            [{name: fairness_report(y, predict(float(sh), s_test, g_test),
                                    sensitive_features=frame[col]).measure(measure)
              for name, col in views.items()} for sh in shifts], index=shifts)
    cell_rates = pd.Series(marginal_parity_rates(sizes, common, shift).reshape(-1),
                           index=list(pm.group_categories))
    return Gerrymander(
        differences=pd.DataFrame.from_dict(rows, orient="index"), rates=rates, curve=curve,
        cell_rates=cell_rates, rate=common, accuracy=float((pred == y).double().mean()),
        accuracy_at_parity=float((predict(0.0, s_test, g_test) == y).double().mean()), kind=rate)


def plot_gerrymander(result: Gerrymander, *, shift: float) -> Any:
    """Two panels: the test rates of each view with intervals, and the differences along
    the family of shifts (a dotted line at ``shift``). Returns the figure."""
    import matplotlib.pyplot as plt

    from ..plotting import plot_group_rates

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})
    plot_group_rates({result.kind.replace("_", " "): pd.concat(result.rates.values())}, ax=ax1,
                     overall=False, show_n=False)
    ax1.set_title(f"constructed classifier (shift {shift:g})", fontsize="medium")
    for name, style in zip(result.curve.columns, ["-", "--", "-"]):
        ax2.plot(result.curve.index, result.curve[name], style, label=f"difference {name}",
                 lw=2.5 if name == "by race x sex" else 1.5)
    ax2.axvline(shift, color="0.5", lw=1, ls=":")
    ax2.set_xlabel("shift along the family of marginally fair classifiers")
    ax2.set_ylabel(_GERRYMANDER[result.kind][0].replace("_", " ") + " (test)")
    ax2.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig
