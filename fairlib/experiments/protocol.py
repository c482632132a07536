"""The comparison protocol: equal-budget selection on the meta split, paired comparisons
over seeds, and summaries whose intervals stay inside each metric's range.

Intervals are percentile bootstraps over seeds (resampling whole seeds, paired for
:func:`compare`). A bootstrap mean is a mean of observed values, so the interval lies
between the smallest and the largest per-seed value: it never leaves the range the
metric (or the difference of two metrics) can take. If the percentile interval should
exclude its own estimate (possible only for very skewed values over few seeds), it is
widened to include it. "Consistent with zero" is computed from the interval.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._validation import MSG_TYPE
from .spec import RunSpec
from .store import STATUS_OK

#: Parameter columns that make up a configuration (what tuning chooses).
CONFIG_PREFIXES = ("model.", "method.", "train.")


def _check_frame(results: Any, columns: Sequence[str], name: str = "results") -> pd.DataFrame:
    if not isinstance(results, pd.DataFrame):
        raise TypeError(MSG_TYPE.format(name=name, expected="a pandas DataFrame of records",
                                        got=type(results).__name__))
    missing = [c for c in columns if c not in results.columns]
    if missing:
        raise ValueError(MSG_TYPE.format(name=name, expected=f"a DataFrame with the columns {missing}",
                                         got=f"columns {sorted(map(str, results.columns))[:20]}"))
    return results


def _ok(results: pd.DataFrame) -> pd.DataFrame:
    """Leave out failed runs; rows without a status (not from the engine) count as ok."""
    if "status" not in results.columns:
        return results
    ok = results["status"].isna() | (results["status"] == STATUS_OK)
    failed = int((~ok).sum())
    if failed:
        warnings.warn(f"{failed} failed run(s) left out (status != 'ok').", UserWarning, stacklevel=3)
    return results[ok]


def _check_level(level: float, n_boot: int) -> None:
    if not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(MSG_TYPE.format(name="level", expected="a number in (0, 1)", got=repr(level)))
    if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 100:
        raise ValueError(MSG_TYPE.format(name="n_boot", expected="an integer >= 100", got=repr(n_boot)))


def bootstrap_mean(values: np.ndarray, *, level: float = 0.95, n_boot: int = 10_000,
                   random_state: int = 0) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap interval of the mean of ``values`` (one per seed).

    Returns ``(mean, lower, upper)``; the interval is NaN with fewer than two values.

    Examples
    --------
    >>> from fairlib.experiments.protocol import bootstrap_mean
    >>> mean, lo, hi = bootstrap_mean([0.80, 0.84, 0.90, 0.86])
    >>> round(mean, 3), 0.80 <= lo <= mean <= hi <= 0.90
    (0.85, True)
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    rng = np.random.default_rng(random_state)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lower, upper = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    # Clip rounding error to the observed range, then make sure the estimate is inside.
    lower, upper = max(float(lower), float(x.min())), min(float(upper), float(x.max()))
    return mean, min(lower, mean), max(upper, mean)


def config_columns(results: pd.DataFrame) -> list[str]:
    """The parameter columns that define a configuration (model, method, training)."""
    return sorted(c for c in results.columns if str(c).startswith(CONFIG_PREFIXES))


def _config_key(row: pd.Series, columns: Sequence[str]) -> str:
    params = {c: row[c] for c in columns if not (row[c] is None or (isinstance(row[c], float)
                                                                    and math.isnan(row[c])))}
    return json.dumps(params, sort_keys=True, default=str)


def _choice(runs: pd.DataFrame, best: str, columns: Sequence[str]) -> str:
    """The chosen values of the parameters that vary in a method's grid, as text (with the
    types of the spec: a table column holding NaN turns its integers into floats)."""
    chosen = json.loads(best)
    varied = [c for c in columns if c in chosen and runs[c].astype(str).nunique() > 1]
    first = runs[runs["config"] == best].iloc[0].to_dict()
    if isinstance(first.get("spec"), str):
        chosen.update(RunSpec.from_record(first).flat())
    return ", ".join(f"{c.split('.', 1)[1]}={chosen[c]}" for c in varied) or "(one configuration)"


@dataclass
class Selection:
    """What :func:`select` chose.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per method: ``config`` (the chosen parameters as JSON), ``choice`` (the
        chosen values of the parameters its grid varies, as text), ``n_configs``
        (its tuning budget), ``n_seeds``, the mean selection score on the meta split,
        ``constraint_met``, and the mean of the reported metric on the test split.
    runs : pandas.DataFrame
        The records of each method's chosen configuration (all its seeds).
    """

    table: pd.DataFrame
    runs: pd.DataFrame

    def specs(self, seeds: Sequence[int], *, tags: Mapping[str, Any] | None = None) -> list[RunSpec]:
        """Specs that rerun each chosen configuration on ``seeds`` (e.g. fresh seeds)."""
        first = self.runs.drop_duplicates("method")
        out = []
        for _, row in first.iterrows():
            base = RunSpec.from_record(row.to_dict())
            for seed in seeds:
                out.append(base.replace(seed=int(seed), tags=dict(tags if tags is not None else base.tags)))
        return out


def _bounds(constraint: Mapping[str, Any] | None) -> dict[str, tuple[float, float]]:
    """``{metric: (low, high)}`` from ``{metric: high}`` or ``{metric: {"min": low, "max": high}}``."""
    if constraint is None:
        return {}
    if not isinstance(constraint, Mapping):
        raise TypeError(MSG_TYPE.format(name="constraint", expected="a dict {metric: level} or None",
                                        got=type(constraint).__name__))
    out = {}
    for metric, bound in constraint.items():
        if isinstance(bound, Mapping):
            extra = set(bound) - {"min", "max"}
            low, high = bound.get("min", -math.inf), bound.get("max", math.inf)
        else:
            extra, low, high = set(), -math.inf, bound
        ok = not extra and all(isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)
                               for v in (low, high)) and low <= high
        if not ok or (isinstance(bound, Mapping) and not bound):
            raise ValueError(MSG_TYPE.format(
                name=f"constraint[{metric!r}]", expected='a number (the most allowed) or {"min": low, '
                '"max": high} with low <= high', got=repr(bound)))
        out[str(metric)] = (float(low), float(high))
    return out


def select(
    results: pd.DataFrame,
    *,
    metric: str = "balanced_accuracy",
    on: str = "meta",
    report: str = "test",
    constraint: Mapping[str, Any] | None = None,
    maximize: bool = True,
    budget: int | None = None,
    by: str = "method",
) -> Selection:
    """Per method, the configuration with the best mean ``metric`` on the ``on`` split.

    A configuration is a distinct set of model, method and training parameters
    (:func:`config_columns`); its score is the mean over its seeds. Every method should
    get the same number of configurations (an equal tuning budget): pass ``budget`` to
    require it, otherwise an unequal budget gives a warning naming the counts.

    Parameters
    ----------
    results : pandas.DataFrame
        Records from :func:`~fairlib.experiments.run_study`; failed runs are left out.
    metric : str
        The selection score, without the split prefix (e.g. ``"balanced_accuracy"``).
    on, report : str
        The split the choice is made on, and the split whose mean is reported.
    constraint : mapping, optional
        ``{metric: level}``: only configurations whose mean ``on``-split metric is at
        most ``level`` qualify (e.g. ``{"equal_opportunity_difference": 0.05}``); a
        bound from below, or both, is written ``{metric: {"min": low, "max": high}}``
        (e.g. ``{"accuracy": {"min": 0.80}}``: a comparison at matched accuracy). When
        none qualifies, the one closest to qualifying is taken, with a warning and
        ``constraint_met=False``.
    maximize : bool
        Higher ``metric`` is better.
    budget : int, optional
        Require exactly this many configurations per method.

    Returns
    -------
    Selection

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.experiments import select
    >>> runs = pd.DataFrame({"method": ["A"] * 4 + ["B"] * 4, "seed": [0, 1] * 4,
    ...                      "method.lr": [0.1, 0.1, 0.2, 0.2, 1.0, 1.0, 2.0, 2.0],
    ...                      "meta_accuracy": [0.70, 0.72, 0.80, 0.78, 0.60, 0.62, 0.50, 0.52],
    ...                      "test_accuracy": [0.71, 0.70, 0.79, 0.77, 0.61, 0.60, 0.52, 0.50]})
    >>> sel = select(runs, metric="accuracy", budget=2)
    >>> sel.table["config"].tolist(), sel.table["test_accuracy"].round(3).tolist()
    (['{"method.lr": 0.2}', '{"method.lr": 1.0}'], [0.78, 0.605])
    """
    score = f"{on}_{metric}"
    limits = _bounds(constraint)
    needed = [by, "seed", score, f"{report}_{metric}", *(f"{on}_{m}" for m in limits)]
    results = _ok(_check_frame(results, needed))
    if budget is not None and (not isinstance(budget, int) or budget < 1):
        raise ValueError(MSG_TYPE.format(name="budget", expected="a positive integer or None", got=repr(budget)))
    columns = config_columns(results)
    frame = results.assign(config=results.apply(_config_key, axis=1, columns=columns))
    rows, chosen = [], []
    sizes = frame.groupby(by, sort=False)["config"].nunique()
    if budget is not None and (sizes != budget).any():
        raise ValueError(MSG_TYPE.format(name="results", expected=f"{budget} configuration(s) per method",
                                         got=sizes.to_dict()))
    if budget is None and sizes.nunique() > 1:
        warnings.warn(f"select: unequal tuning budget, configurations per method: {sizes.to_dict()}.",
                      UserWarning, stacklevel=2)
    for method, runs in frame.groupby(by, sort=False):
        means = runs.groupby("config", sort=False)[list(dict.fromkeys(
            [score, f"{report}_{metric}", *(f"{on}_{m}" for m in limits)]))].mean()
        seeds = runs.groupby("config", sort=False)["seed"].nunique()
        excess = sum((means[f"{on}_{m}"] - high).clip(lower=0) + (low - means[f"{on}_{m}"]).clip(lower=0)
                     for m, (low, high) in limits.items())
        ok = excess <= 0 if limits else pd.Series(True, index=means.index)
        if ok.any():
            pool = means[ok]
            best = pool[score].idxmax() if maximize else pool[score].idxmin()
        else:
            best = excess.idxmin()
            warnings.warn(f"select: no configuration of {method!r} meets {dict(constraint or {})}; "
                          "taking the closest.",
                          UserWarning, stacklevel=2)
        rows.append({by: method, "config": best, "choice": _choice(runs, best, columns), "n_configs": len(means), "n_seeds": int(seeds[best]),
                     score: float(means.loc[best, score]), "constraint_met": bool(ok[best]),
                     f"{report}_{metric}": float(means.loc[best, f"{report}_{metric}"])})
        chosen.append(runs[runs["config"] == best])
    table = pd.DataFrame(rows).set_index(by)
    return Selection(table, pd.concat(chosen).drop(columns="config"))


def summarize(results: pd.DataFrame, metrics: Sequence[str], *, by: str | Sequence[str] = "method",
              level: float = 0.95, n_boot: int = 10_000, random_state: int = 0) -> pd.DataFrame:
    """Mean over seeds with a percentile-bootstrap interval, per ``by`` group and metric.

    Returns
    -------
    pandas.DataFrame
        Index ``by``; columns ``(metric, stat)`` with stats ``mean``, ``lower``,
        ``upper``, ``n`` (seeds with a value). The interval lies within the observed
        per-seed values, hence inside the metric's range.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.experiments import summarize
    >>> runs = pd.DataFrame({"method": ["a"] * 3, "acc": [0.98, 0.99, 1.0]})
    >>> s = summarize(runs, ["acc"])
    >>> float(s.loc["a", ("acc", "upper")]) <= 1.0
    True
    """
    keys = [by] if isinstance(by, str) else list(by)
    if isinstance(metrics, str) or not metrics:
        raise ValueError(MSG_TYPE.format(name="metrics", expected="a non-empty list of column names",
                                         got=repr(metrics)))
    results = _ok(_check_frame(results, [*keys, *metrics]))
    _check_level(level, n_boot)
    out: dict[tuple[str, str], dict[Any, float]] = {}
    for key, runs in results.groupby(keys if len(keys) > 1 else keys[0], sort=False):
        for metric in metrics:
            values = runs[metric].astype(float).dropna().to_numpy()
            mean, lo, hi = bootstrap_mean(values, level=level, n_boot=n_boot, random_state=random_state)
            for stat, v in (("mean", mean), ("lower", lo), ("upper", hi), ("n", float(values.size))):
                out.setdefault((metric, stat), {})[key] = v
    frame = pd.DataFrame(out)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    frame.index.names = keys
    return frame


def compare(
    results: pd.DataFrame,
    *,
    baseline: str = "ERM",
    metrics: Sequence[str] = ("test_accuracy", "test_equal_opportunity_difference"),
    by: str = "method",
    pair_on: str = "seed",
    level: float = 0.95,
    n_boot: int = 10_000,
    random_state: int = 0,
) -> pd.DataFrame:
    """Each method against ``baseline``, paired by seed: mean difference with an interval.

    Runs with the same seed share the split, the initialisation and the data order, so
    the per-seed difference removes the variation both methods share. The interval is
    a percentile bootstrap over seeds of the mean difference (seeds resampled as pairs);
    it lies within the observed differences, hence inside the range a difference of the
    metric can take.

    Parameters
    ----------
    results : pandas.DataFrame
        One row per (method, seed), e.g. :attr:`Selection.runs`.
    baseline : str
        The value of ``by`` the others are compared with.
    metrics : sequence of str
        Columns to compare.

    Returns
    -------
    pandas.DataFrame
        Index ``(method, metric)``; columns ``difference`` (mean over the common seeds of
        method minus baseline), ``lower``, ``upper``, ``n`` (pairs), ``method_mean``,
        ``baseline_mean``, ``consistent_with_zero`` (``lower <= 0 <= upper``; ``False``
        when the interval is undefined).

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.experiments import compare
    >>> runs = pd.DataFrame({"method": ["ERM", "new"] * 3, "seed": [0, 0, 1, 1, 2, 2],
    ...                      "gap": [0.20, 0.10, 0.30, 0.12, 0.25, 0.11]})
    >>> out = compare(runs, metrics=["gap"])
    >>> row = out.loc[("new", "gap")]
    >>> round(float(row["difference"]), 3), bool(row["consistent_with_zero"]), int(row["n"])
    (-0.14, False, 3)
    """
    if isinstance(metrics, str) or not metrics:
        raise ValueError(MSG_TYPE.format(name="metrics", expected="a non-empty list of column names",
                                         got=repr(metrics)))
    results = _ok(_check_frame(results, [by, pair_on, *metrics]))
    _check_level(level, n_boot)
    if baseline not in set(results[by]):
        raise ValueError(MSG_TYPE.format(name="baseline", expected=f"a value of column {by!r} "
                                         f"({sorted(map(str, set(results[by])))})", got=repr(baseline)))
    if results.duplicated([by, pair_on]).any():
        raise ValueError(MSG_TYPE.format(name="results", expected=f"one row per ({by}, {pair_on}); "
                                         "choose one configuration per method first (select)",
                                         got="several rows for some pairs"))
    if results[by].nunique() < 2:
        raise ValueError(MSG_TYPE.format(name="results", expected=f"runs of {baseline!r} and at least one "
                                         "other method", got=f"only {sorted(map(str, set(results[by])))}"))
    base = results[results[by] == baseline].set_index(pair_on)
    rows = []
    for method in dict.fromkeys(results[by]):
        if method == baseline:
            continue
        runs = results[results[by] == method].set_index(pair_on)
        common = runs.index.intersection(base.index)
        for metric in metrics:
            ours, theirs = runs.loc[common, metric].astype(float), base.loc[common, metric].astype(float)
            diff = (ours - theirs).dropna()
            if len(diff) < len(common):
                warnings.warn(f"compare: {len(common) - len(diff)} seed(s) of {method!r} have no "
                              f"{metric} for both methods; left out.", UserWarning, stacklevel=2)
            if len(diff) < 2:
                warnings.warn(f"compare: {method!r} has {len(diff)} pair(s) for {metric}; its interval "
                              "is NaN.", UserWarning, stacklevel=2)
            mean, lo, hi = bootstrap_mean(diff.to_numpy(), level=level, n_boot=n_boot,
                                          random_state=random_state)
            rows.append({by: method, "metric": metric, "difference": mean, "lower": lo, "upper": hi,
                         "n": len(diff), "method_mean": float(ours[diff.index].mean()),
                         "baseline_mean": float(theirs[diff.index].mean()),
                         "consistent_with_zero": bool(lo <= 0 <= hi)})
    return pd.DataFrame(rows).set_index([by, "metric"])
