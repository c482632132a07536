"""Beyond reweighting: dropping training rows by their influence on a fairness metric, a
fairness penalty (FERMI) next to learned weights, and gradient-boosted trees (LightGBM with
reweighing weights, FairGBM) under the book's protocol.

Written for chapter 10, *Beyond reweighting* (``notebooks/10_beyond_reweighting.ipynb``).

The methods ``"FairIJDrop"`` (:class:`fairlib.influence.InfluenceDrop`) and ``"FERMI"``
are built into the engine. For :func:`fairlib.experiments.tune_and_run` the module registers,
at import:

- three method names for the tree models of :mod:`fairlib.boosting`, so that a chapter can
  list them next to the logistic methods on the same data (an equal budget is counted per
  method name): ``"LightGBM"`` (ERM's weights, model ``"lightgbm"``), ``"LightGBM +
  Reweighing"`` (Kamiran-Calders weights, model ``"lightgbm"``) and ``"FairGBM"`` (ERM,
  model ``"fairgbm"``, whose constraint is a model parameter);
- the per-run metric ``"ij_drop"`` (:func:`drop_audit`): which (group, label) cells the
  dropped rows come from, and the smooth gap on the meta split before the drop, as predicted
  after it, and after refitting the converged model without the rows.

:func:`tuning_grid` builds the chapter's configurations; :func:`select_at_accuracy` chooses
every method again at matched accuracy; :func:`influence_check` compares
predicted and refitted changes of the smooth gap over random drop sets; :func:`interval_rows`
and :func:`direction_words` turn paired comparisons per data set into a table and into words.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._validation import check_nonnegative, check_positive_int, msg_expected
from ..experiments import register_method, register_metric
from ..weighting import ERM, Reweighing

__all__ = ["CHAPTER", "FAIRGBM_CONSTRAINT", "KNOBS", "LOGISTIC", "METHODS", "TREES",
           "direction_words", "drop_audit", "influence_check", "interval_rows", "select_at_accuracy",
           "tuning_grid"]

CHAPTER = "10_beyond_reweighting"
#: Train / meta / test fractions of both data sets.
SPLIT = (0.6, 0.2, 0.2)
#: Logistic-regression methods and tree methods, in the order the chapter lists them.
LOGISTIC = ("ERM", "Reweighing", "GroupDRO", "FORML", "FairIJDrop", "FERMI", "LossShaping")
#: The knob and its two values of the logistic methods tuned like chapter 9's (at the first
#: weight decay); FERMI targets equal opportunity, FORML's meta-objective is the EO gap.
KNOBS = {"GroupDRO": ("eta_q", (0.01, 0.1)), "FORML": ("meta_lr", (3.0, 10.0)),
         "FERMI": ("lam", (1.0, 10.0)), "LossShaping": ("r", (0.5, 2.0))}
FIXED = {"FORML": {"meta_objective": "eo_gap"}, "FERMI": {"target": "eo"}}
TREES = ("LightGBM", "LightGBM + Reweighing", "FairGBM")
METHODS = LOGISTIC + TREES
#: FairGBM's constraint: equal group-wise false negative rates, i.e. equal opportunity.
FAIRGBM_CONSTRAINT = "fnr"
#: Training of the logistic regressions (Adam), as in chapter 9.
TRAIN = {"batch_size": 128, "lr": 0.01}


def drop_audit(run: Any) -> dict[str, float]:
    """What a FairIJDrop run dropped (registered as the metric ``"ij_drop"``).

    Returns ``ij_dropped`` (rows), ``ij_dropped_share[<cell>]`` and ``ij_train_share[<cell>]``
    (share of the dropped rows and of all training rows in every (group, label) cell), and the
    smooth metric on the meta split: ``ij_smooth_before`` (converged model),
    ``ij_smooth_predicted`` (first-order prediction without the rows) and ``ij_smooth_refit``
    (the converged model refitted to convergence without them).
    """
    from ..influence import fit_to_convergence, smooth_metric

    s, train = run.strategy, run.train
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[s.dropped_] = False
    refit = fit_to_convergence(copy.deepcopy(s._influence_model), train.subset(keep),
                               l2=float(s.l2))
    out = {"ij_dropped": float(len(s.dropped_)), "ij_smooth_before": float(s.smooth_before_),
           "ij_smooth_predicted": float(s.predicted_),
           "ij_smooth_refit": float(smooth_metric(refit, run.meta, metric=s.metric))}
    cells = train.cells.cpu()
    for c, name in enumerate(train.cell_names):
        out[f"ij_dropped_share[{name}]"] = float((cells[s.dropped_] == c).double().mean())
        out[f"ij_train_share[{name}]"] = float((cells == c).double().mean())
    return out


def _alias(cls: type, name: str) -> Any:
    def factory(**params: Any) -> WeightingStrategy:
        return cls(**params)

    factory.__name__ = name.replace(" + ", "_").replace(" ", "_")
    factory.__doc__ = f"{cls.__name__} under the method name {name!r} (for the tree models)."
    return factory


for _name, _cls in (("LightGBM", ERM), ("LightGBM + Reweighing", Reweighing), ("FairGBM", ERM)):
    register_method(_name, _alias(_cls, _name), replace=True)
register_metric("ij_drop", drop_audit, replace=True)


def tuning_grid(*, adult_rows: int, adult_epochs: int, compas_epochs: int,
                weight_decays: Sequence[float], fractions: Sequence[float],
                tree_counts: Sequence[int], multiplier_lrs: Sequence[float],
                device: str = "cpu") -> list[Any]:
    """The chapter's configurations: ten methods on Adult and COMPAS (sex), each with two
    configurations per data set.

    - ERM and Reweighing train a logistic regression (Adam, batch 128, learning rate 0.01)
      with each weight decay; GroupDRO, FORML, FERMI and LossShaping try the two values of
      their knob in :data:`KNOBS` at the first weight decay;
    - FairIJDrop drops each share in ``fractions`` at the first weight decay, its converged
      model penalised alike (``l2`` = that weight decay);
    - LightGBM, plain and on Reweighing's weights, grows each number of trees in
      ``tree_counts``; FairGBM (constraint ``"fnr"``, equal opportunity) grows
      ``tree_counts[0]`` trees at each multiplier learning rate in ``multiplier_lrs``.
      Trees use one thread each.

    Adult is a seeded subsample of ``adult_rows`` rows (0: all 32,561); COMPAS is whole.
    Both are split 60/20/20 into training, meta and test splits.

    Examples
    --------
    >>> from collections import Counter
    >>> from fairlib.studies.beyond import tuning_grid
    >>> specs = tuning_grid(adult_rows=2000, adult_epochs=1, compas_epochs=1,
    ...                     weight_decays=[1e-4, 1e-3], fractions=[0.02, 0.05],
    ...                     tree_counts=[100, 300], multiplier_lrs=[0.1, 1.0])
    >>> len(specs), set(Counter((s.dataset, s.method) for s in specs).values())
    (40, {2})
    """
    from ..experiments import RunSpec

    sizes = {len(weight_decays), len(fractions), len(tree_counts), len(multiplier_lrs)}
    if sizes != {2}:
        raise ValueError(msg_expected(
            "weight_decays", "2 values, as `fractions`, `tree_counts` and `multiplier_lrs` (the "
            "methods with a knob of their own try 2: an equal tuning budget)",
            f"lengths {len(weight_decays)}, {len(fractions)}, {len(tree_counts)} and {len(multiplier_lrs)}"))
    for n in tree_counts:
        check_positive_int("tree_counts", n)
    wd0 = weight_decays[0]
    trees = {"n_estimators": int(tree_counts[0]), "num_threads": 1}
    specs = []
    for name, rows, epochs in (("adult", {"n": adult_rows} if adult_rows else {}, adult_epochs),
                               ("compas", {}, compas_epochs)):
        data = {"dataset": name,
                "dataset_params": {"sensitive": "sex", "split": list(SPLIT), **rows}}
        train = {**TRAIN, "epochs": epochs, "device": device}
        specs += [RunSpec(model="logistic", method=m, train={**train, "weight_decay": w}, **data)
                  for m in LOGISTIC[:2] for w in weight_decays]
        specs += [RunSpec(model="logistic", method=m, train={**train, "weight_decay": wd0},
                          method_params={**FIXED.get(m, {}), knob: v}, **data)
                  for m, (knob, values) in KNOBS.items() for v in values]
        specs += [RunSpec(model="logistic", method="FairIJDrop",
                          train={**train, "weight_decay": wd0},
                          method_params={"fraction": f, "l2": wd0}, metrics=["ij_drop"], **data)
                  for f in fractions]
        specs += [RunSpec(model="lightgbm", method=m, train={"device": "cpu"}, **data,
                          model_params={**trees, "n_estimators": int(n)})
                  for m in TREES[:2] for n in tree_counts]
        specs += [RunSpec(model="fairgbm", method="FairGBM", train={"device": "cpu"}, **data,
                          model_params={**trees, "constraint": FAIRGBM_CONSTRAINT,
                                        "multiplier_learning_rate": r})
                  for r in multiplier_lrs]
    return specs


def influence_check(train: Any, meta: Any, *, l2: float = 1e-3, n_sets: int = 20,
                    share: float = 0.02, metric: str = "equal_opportunity_difference",
                    seed: int = 0) -> pd.DataFrame:
    """Predicted against refitted change of the smooth metric over random drop sets.

    Fits a logistic regression to convergence on ``train``, computes every row's influence
    (:func:`fairlib.influence.fairness_influence`), then for ``n_sets`` random sets of
    ``round(share * len(train))`` rows compares the sum of their influences with the change of
    the smooth metric on ``meta`` after refitting to convergence without them.

    Returns
    -------
    pandas.DataFrame
        One row per drop set: ``predicted`` and ``refit`` changes.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.beyond import influence_check
    >>> train, meta, _ = make_biased_classification(1000, seed=0).split(seed=0)
    >>> check = influence_check(train, meta, n_sets=5)
    >>> bool(check["predicted"].corr(check["refit"]) > 0.9)
    True
    """
    from ..influence import fairness_influence, fit_to_convergence, smooth_metric
    from ..train import LogisticRegression

    check_positive_int("n_sets", n_sets)
    model = LogisticRegression(int(train.X[0].numel()), seed=seed)
    model = fit_to_convergence(model, train, l2=l2)
    infl = fairness_influence(model, train, meta, metric=metric, l2=l2)
    before = float(smooth_metric(model, meta, metric=metric))
    gen = torch.Generator().manual_seed(seed)
    k = max(1, round(share * len(train)))
    rows = []
    for _ in range(n_sets):
        drop = torch.randperm(len(train), generator=gen)[:k]
        keep = torch.ones(len(train), dtype=torch.bool)
        keep[drop] = False
        refit = fit_to_convergence(copy.deepcopy(model), train.subset(keep), l2=l2)
        rows.append({"predicted": float(infl[drop].sum()),
                     "refit": float(smooth_metric(refit, meta, metric=metric)) - before})
    return pd.DataFrame(rows, dtype=np.float64)


def interval_rows(paired: pd.DataFrame, metrics: Sequence[str], **table: Any) -> pd.DataFrame:
    """:func:`fairlib.book.interval_table` of every data set of a comparison indexed by
    ``(data, method, metric)`` (from :func:`fairlib.studies.benchmark.paired_by_data`), stacked
    with ``data`` as the outer index level; ``table`` goes to ``interval_table``.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.beyond import interval_rows
    >>> from fairlib.studies.benchmark import paired_by_data
    >>> runs = pd.DataFrame({"data": ["a"] * 4, "method": ["ERM", "X"] * 2, "seed": [0, 0, 1, 1],
    ...                      "gap": [0.3, 0.1, 0.2, 0.1]})
    >>> interval_rows(paired_by_data(runs, metrics=["gap"]), ["gap"]).loc[("a", "X"), "gap"]
    '-0.150 [-0.200, -0.100]'
    """
    from ..book import interval_table

    return pd.concat({name: interval_table(part.droplevel("data"), list(metrics), **table)
                      for name, part in paired.groupby(level="data", sort=False)}, names=["data"])


def direction_words(paired: pd.DataFrame, *, names: dict[str, str]) -> dict[str, str]:
    """A verb per (data set, method, metric) of a comparison indexed by ``(data, method, metric)``:
    ``"lowers"`` when the whole interval of the difference lies below 0, ``"raises"`` when it
    lies above, otherwise ``"does not detectably change"``.

    Keys are ``<data>_<method>_<name>_dir``, with ``names`` shortening the metrics and every run
    of other characters than letters and digits written ``_``, as the keys of
    :func:`fairlib.book.note_intervals` with the prefix ``<data>_``.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.beyond import direction_words
    >>> index = pd.MultiIndex.from_tuples([("a", "X + Y", "gap"), ("a", "Z", "gap")],
    ...                                   names=["data", "method", "metric"])
    >>> paired = pd.DataFrame({"lower": [-0.2, -0.1], "upper": [-0.1, 0.1]}, index=index)
    >>> direction_words(paired, names={"gap": "eo"})
    {'a_x_y_eo_dir': 'lowers', 'a_z_eo_dir': 'does not detectably change'}
    """
    def key(text: str) -> str:
        return re.sub(r"[^0-9a-zA-Z]+", "_", str(text)).strip("_").lower()

    out = {}
    for (data, method, metric), row in paired.iterrows():
        word = ("lowers" if row["upper"] < 0 else "raises" if row["lower"] > 0
                else "does not detectably change")
        out[f"{key(data)}_{key(method)}_{key(names.get(metric, metric))}_dir"] = word
    return out



def select_at_accuracy(tuning: pd.DataFrame, seeds: Sequence[int], *, methods: Sequence[str],
                       slack: float, baseline: str = "ERM") -> tuple[pd.DataFrame, list[Any]]:
    """Per data set, each method's configuration with the smallest mean meta-split EO gap
    among those whose mean meta accuracy is at least the ``baseline``'s best minus ``slack``
    (a comparison at matched accuracy, chosen from the tuning records alone), and the specs
    that rerun each choice on ``seeds``.

    Uses :func:`fairlib.experiments.select` with ``constraint={"accuracy": {"min": floor}}``
    on every data set (the ``data`` column of :attr:`~fairlib.experiments.Tuned.tuning`);
    a method with no configuration above the floor gets the closest one, with
    ``constraint_met`` False.

    Returns
    -------
    table : pandas.DataFrame
        Index ``(data, method)``: the selection tables with the ``floor`` of each data set.
    specs : list of RunSpec
        Every choice on every seed.

    Examples
    --------
    >>> from fairlib.experiments import RunSpec, tune_and_run
    >>> from fairlib.studies.beyond import select_at_accuracy
    >>> base = RunSpec("synthetic", "logistic", "ERM", dataset_params={"n": 300},
    ...                train={"epochs": 1, "device": "cpu"})
    >>> configs = [base.replace(train={"epochs": 1, "lr": lr, "device": "cpu"}) for lr in (0.01, 0.1)]
    >>> configs += [c.replace(method="Reweighing") for c in configs]
    >>> tuned = tune_and_run(configs, tune_seeds=[100], seeds=[0], backend="serial", progress=False)
    >>> table, specs = select_at_accuracy(tuned.tuning.assign(data="synthetic"), [0, 1],
    ...                                   methods=["ERM", "Reweighing"], slack=0.01)
    >>> table.index.names, len(specs), "floor" in table
    (FrozenList(['data', 'method']), 4, True)
    """
    import warnings

    from ..experiments import select

    check_nonnegative("slack", slack)
    tables, specs = {}, []
    for name, part in tuning[tuning["method"].isin(list(methods))].groupby("data", sort=False):
        if baseline not in set(part["method"]):
            raise ValueError(msg_expected("tuning", f"records of {baseline!r} on every data set",
                                          f"none on {name!r}"))
        floor = float(select(part[part["method"] == baseline], metric="accuracy")
                      .table.loc[baseline, "meta_accuracy"]) - slack
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an unmet floor is reported in `constraint_met`
            sel = select(part, metric="equal_opportunity_difference", maximize=False,
                         constraint={"accuracy": {"min": floor}})
        tables[name] = sel.table.assign(floor=floor)
        specs += sel.specs(seeds)
    return pd.concat(tables, names=["data"]), specs
