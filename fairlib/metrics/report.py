"""The fairness report: a by-group table, overall values, parity measures and intervals."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from .._validation import ArrayLike, check_choice
from . import _bootstrap as boot
from . import _core as core
from ._bygroup import ByGroup
from ._prepare import METHODS, build_table, check_options, warn_undefined

NAN = float("nan")
_MEASURE_AGGS = {"equalized_odds_difference", "equalized_odds_ratio"}
_MEASURE_INDEX = pd.Index(list(core.MEASURES))


def _count_columns(table: torch.Tensor) -> dict[str, torch.Tensor]:
    """Sample-size columns of the by-group table, from a ``[3, ..., 4]`` table."""
    w = table[core.WEIGHT].sum(-1)
    w2 = table[core.WEIGHT_SQ].sum(-1)
    n = table[core.COUNT]
    return {
        "n": n.sum(-1),
        "n_positive": n[..., core.FN] + n[..., core.TP],
        "n_negative": n[..., core.TN] + n[..., core.FP],
        "weighted_n": w,
        # Kish effective sample size (sum w)^2 / sum w^2.
        "effective_n": torch.where(w2 > 0, w * w / torch.where(w2 > 0, w2, 1.0), 0.0),
    }


class FairnessReport:
    """Disaggregated rates and parity measures, read off one count table.

    Build it with :func:`fairness_report` or from a
    :class:`~fairlib.metrics.FairnessAccumulator`.

    Parameters
    ----------
    table : torch.Tensor
        ``[3, G, 4]`` count table (weighted sums, row counts, squared weights per
        (group, y_true, y_pred) cell).
    index : pandas.Index
        Group labels.
    zero_division : float, default NaN
        Value of undefined conditional rates in groups that have rows.
    rows : tuple of tensors, optional
        ``(cell index, weight)`` per row; only needed to bootstrap weighted data.
    """

    def __init__(
        self,
        table: torch.Tensor,
        index: pd.Index,
        zero_division: float = NAN,
        rows: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.table = table
        self.index = index
        self.zero_division = zero_division
        self._rows = rows
        self._by, self._overall, self._undefined = core.rates(
            table[core.WEIGHT], table[core.COUNT], zero_division
        )

    # -- tables ---------------------------------------------------------------
    @property
    def by_group(self) -> pd.DataFrame:
        """One row per group: sample sizes and every rate (NaN where undefined)."""
        cols = {k: v.cpu().numpy() for k, v in _count_columns(self.table).items()}
        rates = self._by.cpu().numpy()
        cols.update({name: rates[:, r] for r, name in enumerate(core.RATES)})
        df = pd.DataFrame(cols, index=self.index)
        for c in ("n", "n_positive", "n_negative"):
            df[c] = df[c].astype(np.int64)
        return df

    @property
    def overall(self) -> pd.Series:
        """Sample sizes and every rate computed on all rows."""
        cols = {k: float(v.sum()) for k, v in _count_columns(self.table).items()}
        w = self.table[core.WEIGHT].sum((0,))
        w2 = self.table[core.WEIGHT_SQ].sum((0,))
        cols["effective_n"] = float(w.sum() ** 2 / w2.sum()) if float(w2.sum()) > 0 else 0.0
        cols.update({name: float(self._overall[r]) for r, name in enumerate(core.RATES)})
        s = pd.Series(cols, name="overall")
        return s

    def rate(self, name: str) -> ByGroup:
        """One rate by group, as a :class:`ByGroup`."""
        check_choice("name", name, core.RATES)
        r = core.RATES.index(name)
        return ByGroup(self._by[:, r], self._overall[r], self.index, name)

    def difference(self, method: str = "between_groups") -> pd.Series:
        """fairlearn's ``MetricFrame.difference`` for every rate."""
        check_options(method=method)
        return self._aggregate(core.difference, method)

    def ratio(self, method: str = "between_groups") -> pd.Series:
        """fairlearn's ``MetricFrame.ratio`` for every rate."""
        check_options(method=method)
        return self._aggregate(core.ratio, method)

    def _aggregate(self, op: Any, method: str) -> pd.Series:
        values = op(self._by.T, self._overall, method)
        return pd.Series(values.cpu().numpy(), index=list(core.RATES), name=method)

    def measure(self, name: str, method: str = "between_groups", agg: str = "worst_case") -> float:
        """One parity measure, e.g. ``"equalized_odds_difference"``, as a float."""
        check_choice("name", name, tuple(core.MEASURES))
        check_options(method=method, agg=agg)
        return float(core.measure(self._by, self._overall, name, method, agg))

    def measures(self, method: str = "between_groups", agg: str = "worst_case") -> pd.Series:
        """Every parity measure for one ``method`` (and ``agg`` for equalized odds)."""
        check_options(method=method, agg=agg)
        values = core.all_measures(self._by, self._overall, method, agg).tolist()
        return pd.Series(values, index=_MEASURE_INDEX, name=method)

    def warn_undefined(self, rates: tuple[str, ...] = core.RATES) -> None:
        """Warn once, naming the groups whose ``rates`` are undefined."""
        warn_undefined(self._undefined, self._overall, self.table[core.COUNT], rates, self.index,
                       self.zero_division)

    # -- uncertainty ----------------------------------------------------------
    def bootstrap(
        self,
        n_boot: int = 1000,
        *,
        level: float = 0.95,
        seed: int | torch.Generator | None = 0,
        method: Literal["auto", "multinomial", "poisson"] = "auto",
    ) -> BootstrapResult:
        """Percentile bootstrap intervals for every rate and parity measure.

        Parameters
        ----------
        n_boot : int, default 1000
            Number of resamples.
        level : float, default 0.95
            Coverage of the two-sided percentile interval.
        seed : int, torch.Generator or None, default 0
            Seed (or generator) of the resampling; the same seed gives the same
            intervals. ``None`` draws a fresh seed.
        method : {"auto", "multinomial", "poisson"}
            ``"multinomial"`` redraws the cell counts (exactly an iid row bootstrap,
            O(n_boot x cells)); it requires unit weights. ``"poisson"`` gives each row
            a Poisson(1) multiplicity (O(n_boot x rows)) and handles weights.
            ``"auto"`` picks multinomial for unweighted data and Poisson otherwise.

        Returns
        -------
        BootstrapResult
        """
        if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 2:
            raise ValueError(f"Expected `n_boot` to be an integer >= 2, but got {n_boot!r}.")
        if not 0.0 < level < 1.0:
            raise ValueError(f"Expected `level` to be in (0, 1), but got {level!r}.")
        check_choice("method", method, ("auto", "multinomial", "poisson"))
        weighted = self._rows is not None or not torch.equal(
            self.table[core.WEIGHT], self.table[core.COUNT]
        )
        if method == "auto":
            method = "poisson" if weighted else "multinomial"
        if weighted and (method == "multinomial" or self._rows is None):
            raise ValueError(
                f"Expected unweighted data for `method={method!r}`, but the report has sample "
                "weights" + ("; use method='poisson'." if self._rows is not None else
                             " and no rows (it was built from accumulated counts); build it with "
                             "fairness_report(...) on the rows to bootstrap weighted data.")
            )
        gen = boot.make_generator(seed, self.table.device)
        g = self.table.shape[1]
        if method == "multinomial":
            counts = boot.multinomial_counts(self.table[core.COUNT], n_boot, gen)
            weighted_t = counts
        else:
            cells, w = self._rows if self._rows is not None else _rows_from_counts(self.table[core.COUNT])
            weighted_t, counts = boot.poisson_tables(cells, w, g * 4, n_boot, gen)
            weighted_t, counts = weighted_t.view(n_boot, g, 4), counts.view(n_boot, g, 4)
        return BootstrapResult(self, weighted_t, counts, level, method)


def _rows_from_counts(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Expand an unweighted count table back into per-row cell indices (weights 1)."""
    flat = counts.reshape(-1).round().long()
    cells = torch.repeat_interleave(torch.arange(flat.numel(), device=counts.device), flat)
    return cells, torch.ones(cells.shape, dtype=torch.float64, device=counts.device)


class BootstrapResult:
    """Resampled rates and parity measures with percentile intervals.

    Attributes
    ----------
    by_group_samples : torch.Tensor
        ``[B, G, R]`` resampled rates (rates in the order of ``fairlib.metrics.RATES``).
    overall_samples : torch.Tensor
        ``[B, R]``.
    level : float
        Interval coverage.
    method : str
        ``"multinomial"`` or ``"poisson"``.
    """

    def __init__(
        self, report: FairnessReport, weighted: torch.Tensor, counts: torch.Tensor, level: float,
        method: str,
    ) -> None:
        self.report = report
        self.level = level
        self.method = method
        self.by_group_samples, self.overall_samples = boot.resampled_rates(
            weighted, counts, report.zero_division
        )

    def by_group(self, rate: str) -> pd.DataFrame:
        """Estimate and interval of one rate for every group and overall."""
        check_choice("rate", rate, core.RATES)
        r = core.RATES.index(rate)
        est = torch.cat([self.report._by[:, r], self.report._overall[r].reshape(1)])
        samples = torch.cat([self.by_group_samples[:, :, r], self.overall_samples[:, r : r + 1]], 1)
        lo, hi = boot.percentile_interval(samples, self.level).cpu().numpy()
        index = list(self.report.index) + ["overall"]
        return pd.DataFrame(
            {"estimate": est.cpu().numpy(), "lower": lo, "upper": hi},
            index=pd.Index(index, name=self.report.index.name if self.report.index.nlevels == 1 else None),
        )

    def measure_samples(self, name: str, method: str = "between_groups", agg: str = "worst_case") -> torch.Tensor:
        """The ``[B]`` resampled values of one parity measure."""
        check_choice("name", name, tuple(core.MEASURES))
        check_options(method=method, agg=agg)
        return core.measure(self.by_group_samples, self.overall_samples, name, method, agg)

    def interval(self, name: str, method: str = "between_groups", agg: str = "worst_case") -> tuple[float, float]:
        """``(lower, upper)`` percentile interval of one parity measure."""
        lo, hi = boot.percentile_interval(self.measure_samples(name, method, agg), self.level)
        return float(lo), float(hi)

    def summary(self, agg: str = "worst_case") -> pd.DataFrame:
        """Estimate and interval of every parity measure, for both methods."""
        rows = []
        for method in METHODS:
            for name in core.MEASURES:
                lo, hi = self.interval(name, method, agg)
                rows.append((name, method, self.report.measure(name, method, agg), lo, hi))
        df = pd.DataFrame(rows, columns=["measure", "method", "estimate", "lower", "upper"])
        return df.set_index(["measure", "method"])


def fairness_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sensitive_features: Any,
    sample_weight: ArrayLike | None = None,
    zero_division: float = NAN,
) -> FairnessReport:
    """Disaggregate every rate by group, like fairlearn's ``MetricFrame``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Binary labels and predictions ({0, 1} or {-1, 1}).
    sensitive_features : array-like, DataFrame or dict
        One or several sensitive features (several give intersectional groups).
    sample_weight : array-like of shape (n,), optional
        Non-negative weights.
    zero_division : float, default NaN
        Value of undefined conditional rates; NaN warns once, naming the groups.

    Returns
    -------
    FairnessReport

    Examples
    --------
    >>> from fairlib.metrics import fairness_report
    >>> rep = fairness_report([1, 0, 1, 0], [1, 0, 0, 1], sensitive_features=list("aabb"))
    >>> rep.by_group[["n", "selection_rate", "true_positive_rate"]]
                         n  selection_rate  true_positive_rate
    sensitive_feature_0
    a                    2             0.5                 1.0
    b                    2             0.5                 0.0
    >>> rep.measure("equal_opportunity_difference")
    1.0
    >>> ci = rep.bootstrap(200, seed=0)
    >>> lo, hi = ci.interval("demographic_parity_difference")
    >>> 0.0 <= lo <= hi <= 1.0
    True
    """
    table, groups, rows = build_table(
        y_true, y_pred, sensitive_features, sample_weight, keep_rows=True
    )
    report = FairnessReport(table, groups.index, zero_division, rows)
    report.warn_undefined()
    return report
