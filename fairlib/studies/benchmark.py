"""Every method under one protocol: the benchmark's grid, paired comparisons per data set,
mean ranks and cost.

Written for chapter 9, *Every method under one protocol* (``notebooks/09_benchmark.ipynb``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

__all__ = ["TABULAR_SPLIT", "mean_rank", "paired_by_data", "relative_cost", "tuning_grid"]

CHAPTER = "09_benchmark"
#: Train / meta / test fractions of the tabular data sets.
TABULAR_SPLIT = (0.6, 0.2, 0.2)
#: The methods in the order the chapter lists them (ERM first, the baseline).
METHODS = ("ERM", "Reweighing", "GroupUpweighting", "GroupBalancedSampling", "Cooldown", "GroupDRO", "JTT",
           "FairBatch", "KLDRO", "LossShaping", "FEBS", "FIS", "L2RW", "FORML", "FERMI")


def _grids(weight_decays: Sequence[float], epochs: int) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    """Each method's configurations as (weight decay, method parameters): methods without a
    knob of their own try every weight decay, the others two values of their knob at the first."""
    wd, knob = list(weight_decays), weight_decays[0]
    return {
        **{m: [(w, {}) for w in wd] for m in METHODS[:4]},
        "Cooldown": [(knob, {"tau": t, "switch_at": max(1, epochs // 2)}) for t in (2.0, 5.0)],
        "GroupDRO": [(knob, {"eta_q": e}) for e in (0.01, 0.1)],
        "JTT": [(knob, {"up_weight": u, "stage1_epochs": 1}) for u in (5, 20)],
        "FairBatch": [(knob, {"alpha": a}) for a in (0.005, 0.05)],
        "KLDRO": [(knob, {"tau": t}) for t in (0.5, 2.0)],
        "LossShaping": [(knob, {"r": r}) for r in (0.5, 2.0)],
        "FEBS": [(knob, {"gamma": g}) for g in (0.5, 2.0)],
        "FIS": [(knob, {"c": c}) for c in (0.25, 0.75)],
        "L2RW": [(knob, {"meta_objective": o}) for o in ("mean", "eo_gap")],
        "FORML": [(knob, {"meta_objective": "eo_gap", "meta_lr": m}) for m in (3.0, 10.0)],
        "FERMI": [(knob, {"target": "eo", "lam": lam}) for lam in (1.0, 10.0)],
    }


def tuning_grid(*, tabular_rows: int, tabular_epochs: int, compas_epochs: int, digits_epochs: int, hidden: int,
                strength: float, weight_decays: Sequence[float], device: str = "cpu") -> list[Any]:
    """The benchmark's configurations: 15 methods on Adult, COMPAS, census-income KDD (sex)
    and Colored Digits, each method with ``len(weight_decays)`` configurations (2 in the
    chapter's profiles) per data set.

    Tabular data sets train a logistic regression (batch 128, learning rate 0.01) on a
    seeded subsample of ``tabular_rows`` rows (0: all rows; COMPAS is always whole);
    Colored Digits trains an MLP (batch 64, learning rate 0.03).

    Examples
    --------
    >>> from collections import Counter
    >>> from fairlib.studies.benchmark import tuning_grid
    >>> specs = tuning_grid(tabular_rows=2000, tabular_epochs=1, compas_epochs=1, digits_epochs=1,
    ...                     hidden=8, strength=0.9, weight_decays=[1e-4, 1e-3])
    >>> len(specs), set(Counter((s.dataset, s.method) for s in specs).values())
    (120, {2})
    """
    from ..experiments import RunSpec

    if len(weight_decays) != 2:
        raise ValueError(f"Expected `weight_decays` to hold 2 values (the knob methods try 2), but got {weight_decays!r}.")
    tabular = {"epochs": tabular_epochs, "batch_size": 128, "lr": 0.01, "device": device}
    rows = {"split": list(TABULAR_SPLIT), **({"n": tabular_rows} if tabular_rows else {})}
    data = {  # name: (dataset parameters, model, model parameters, training settings)
        "adult": ({"sensitive": "sex", **rows}, "logistic", {}, tabular),
        "compas": ({"sensitive": "sex"}, "logistic", {}, {**tabular, "epochs": compas_epochs}),
        "census_kdd": ({"sensitive": "sex", **rows}, "logistic", {}, tabular),
        "colored_digits": ({"strength": strength}, "mlp", {"hidden": [hidden]},
                           {"epochs": digits_epochs, "batch_size": 64, "lr": 0.03, "device": device}),
    }
    return [RunSpec(name, model, method, dataset_params=params, model_params=model_params, method_params=p,
                    train={**train, "weight_decay": w})
            for name, (params, model, model_params, train) in data.items()
            for method, grid in _grids(weight_decays, train["epochs"]).items() for w, p in grid]


def paired_by_data(runs: pd.DataFrame, *, metrics: Sequence[str], baseline: str = "ERM",
                   level: float = 0.95) -> pd.DataFrame:
    """:func:`~fairlib.experiments.compare` on every data set of ``runs`` (a ``data`` column),
    stacked with ``data`` as the outer index level.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.benchmark import paired_by_data
    >>> runs = pd.DataFrame({"data": ["a"] * 4 + ["b"] * 4, "method": ["ERM", "X"] * 4,
    ...                      "seed": [0, 0, 1, 1] * 2, "acc": [0.8, 0.9, 0.7, 0.8, 0.5, 0.5, 0.6, 0.6]})
    >>> paired_by_data(runs, metrics=["acc"]).index.names
    FrozenList(['data', 'method', 'metric'])
    """
    from ..experiments import compare

    return pd.concat({name: compare(part, baseline=baseline, metrics=list(metrics), level=level)
                      for name, part in runs.groupby("data", sort=False)}, names=["data"])


def mean_rank(runs: pd.DataFrame, metric: str, *, level: float = 0.95) -> pd.DataFrame:
    """Each method's rank by ``metric`` (1 = lowest) within every (data set, seed), averaged
    over data sets per seed, then summarised over seeds with a bootstrap interval.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.benchmark import mean_rank
    >>> runs = pd.DataFrame({"data": ["a"] * 4, "method": ["ERM", "X"] * 2, "seed": [0, 0, 1, 1],
    ...                      "gap": [0.3, 0.1, 0.2, 0.1]})
    >>> mean_rank(runs, "gap")[("rank", "mean")].to_dict()
    {'X': 1.0, 'ERM': 2.0}
    """
    from ..experiments import summarize

    ranked = runs.assign(rank=runs.groupby(["data", "seed"])[metric].rank(method="average"))
    per_seed = ranked.groupby(["method", "seed"])["rank"].mean().reset_index()
    return summarize(per_seed, ["rank"], level=level).sort_values(("rank", "mean"))


def relative_cost(runs: pd.DataFrame, baseline: str = "ERM") -> pd.DataFrame:
    """Median seconds per run of every method relative to ``baseline``, per data set, with
    their ``mean`` over data sets.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.benchmark import relative_cost
    >>> runs = pd.DataFrame({"data": ["a"] * 4, "method": ["ERM", "X"] * 2, "seconds": [1.0, 3.0, 1.0, 2.0]})
    >>> relative_cost(runs)["mean"].to_dict()
    {'ERM': 1.0, 'X': 2.5}
    """
    seconds = runs.groupby(["data", "method"], sort=False)["seconds"].median().unstack("data")
    cost = seconds.div(seconds.loc[baseline], axis=1)
    return cost.assign(mean=cost.mean(axis=1))
