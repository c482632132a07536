"""The book's protocol in one call: tune every method with the same budget on the meta
split of tuning seeds, then rerun each method's choice on fresh evaluation seeds."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .._validation import MSG_TYPE
from .protocol import Selection, select
from .spec import RunSpec
from .store import STATUS_OK
from .study import run_study


@dataclass
class Tuned:
    """What :func:`tune_and_run` did.

    Attributes
    ----------
    selection : Selection
        Each method's chosen configuration (``selection.table``: the config, its budget,
        its mean score on the meta split of the tuning seeds). With several data sets,
        each is tuned on its own; the table is indexed by ``(data, method)`` and the
        records gain a ``data`` column (the data set's name, with its parameters if the
        name alone is ambiguous).
    tuning : pandas.DataFrame
        Every tuning record (each configuration on each tuning seed).
    runs : pandas.DataFrame
        The chosen configurations on the evaluation seeds: the records to report.
    """

    selection: Selection
    tuning: pd.DataFrame
    runs: pd.DataFrame

    def chosen(self, method: str, seed: int, data: str | None = None) -> RunSpec:
        """The spec of ``method``'s chosen configuration on ``seed`` (e.g. for :func:`train_run`);
        ``data`` names the data set when several were tuned."""
        rows = self.runs[self.runs["method"] == method]
        if data is not None:
            rows = rows[rows["data"] == data]
        if rows.empty:
            raise ValueError(MSG_TYPE.format(name="method", expected=f"one of {sorted(self.runs['method'].unique())}",
                                             got=repr(method)))
        return RunSpec.from_record(rows.iloc[0].to_dict()).replace(seed=int(seed))


def _seeds(seeds: Any, name: str) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(MSG_TYPE.format(name=name, expected="a list of integer seeds", got=type(seeds).__name__))
    out = list(seeds)
    if not out or not all(isinstance(s, int) and not isinstance(s, bool) for s in out) or len(set(out)) != len(out):
        raise ValueError(MSG_TYPE.format(name=name, expected="a non-empty list of distinct integer seeds",
                                         got=repr(out)))
    return out


def tune_and_run(
    configs: Iterable[RunSpec],
    *,
    tune_seeds: Sequence[int],
    seeds: Sequence[int],
    metric: str = "worst_group_accuracy",
    maximize: bool = True,
    constraint: Mapping[str, Any] | None = None,
    backend: str = "process",
    workers: int | None = None,
    store: str | os.PathLike[str] | None = None,
    ray_address: str | None = None,
    progress: bool = True,
) -> Tuned:
    """Tune each method on the meta split with an equal budget, then evaluate its choice.

    1. Every configuration in ``configs`` (their ``seed`` is ignored) runs on every
       tuning seed.
    2. :func:`select` picks, per method, the configuration with the best mean
       ``meta_<metric>`` over the tuning seeds; every method must bring the same number
       of configurations (an error names the counts otherwise).
    3. Each choice runs again on the evaluation ``seeds``, which must not overlap the
       tuning seeds, so the reported runs were not selected on their own noise. The
       test split is never used for a choice.

    Parameters
    ----------
    configs : iterable of RunSpec
        The grid of every method (e.g. from :func:`grid`), one spec per configuration;
        specs on several data sets are tuned per data set, with one pool for all.
    tune_seeds, seeds : sequence of int
        Tuning seeds and evaluation seeds (disjoint).
    metric, maximize, constraint
        The selection rule, as in :func:`select`.
    backend, workers, store, ray_address, progress
        As in :func:`run_study`; one store holds both stages (run ids differ).

    Returns
    -------
    Tuned

    Examples
    --------
    >>> from fairlib.experiments import RunSpec, tune_and_run
    >>> base = RunSpec("synthetic", "logistic", "ERM", dataset_params={"n": 300},
    ...                train={"epochs": 1, "device": "cpu"})
    >>> configs = [base.replace(train={"epochs": 1, "lr": lr, "device": "cpu"}) for lr in (0.01, 0.1)]
    >>> configs += [c.replace(method="Reweighing") for c in configs]
    >>> tuned = tune_and_run(configs, tune_seeds=[100], seeds=[0, 1], backend="serial", progress=False)
    >>> tuned.selection.table["n_configs"].tolist(), len(tuned.runs)
    ([2, 2], 4)
    """
    tune_seeds = _seeds(tune_seeds, "tune_seeds")
    seeds = _seeds(seeds, "seeds")
    if set(tune_seeds) & set(seeds):
        raise ValueError(MSG_TYPE.format(name="tune_seeds", expected="seeds disjoint from `seeds`",
                                         got=f"{sorted(set(tune_seeds) & set(seeds))} in both"))
    configs = list(configs)
    if not configs or not all(isinstance(c, RunSpec) for c in configs):
        raise ValueError(MSG_TYPE.format(name="configs", expected="a non-empty list of RunSpec", got=repr(configs)[:80]))
    params_of: dict[str, set[Any]] = {}  # data set name -> its parameter sets
    for c in configs:
        params_of.setdefault(c.dataset, set()).add(c.dataset_params)
    groups: dict[str, list[RunSpec]] = {}  # data set -> its configurations
    for c in dict.fromkeys(c.replace(seed=tune_seeds[0]) for c in configs):
        groups.setdefault(_data_label(c, len(params_of[c.dataset]) > 1), []).append(c)
    budgets = {}
    for label, group in groups.items():
        sizes = Counter(c.method for c in group)
        if len(set(sizes.values())) > 1:
            raise ValueError(MSG_TYPE.format(name="configs", expected="the same number of configurations for every "
                                             f"method (an equal tuning budget){' on ' + label if len(groups) > 1 else ''}",
                                             got=dict(sizes)))
        budgets[label] = next(iter(sizes.values()))
    study = {"backend": backend, "workers": workers, "store": store, "ray_address": ray_address,
             "progress": progress}
    # One study for every data set's tuning and one for every evaluation: pools start twice.
    tune_specs = {label: [c.replace(seed=s) for c in group for s in tune_seeds] for label, group in groups.items()}
    tuning = run_study([spec for specs in tune_specs.values() for spec in specs], **study)
    failed = tuning[tuning["status"] != STATUS_OK]
    if len(failed) == len(tuning):
        raise RuntimeError(f"tune_and_run: all {len(tuning)} tuning runs failed; the first error:\n"
                           f"{failed['error'].iloc[0]}")
    selections = {}
    for label, specs in tune_specs.items():
        ids = {spec.run_id for spec in specs}
        selections[label] = select(tuning[tuning["run_id"].isin(ids)], metric=metric, maximize=maximize,
                                   constraint=constraint, budget=budgets[label])
    eval_specs = {label: sel.specs(seeds) for label, sel in selections.items()}
    runs = run_study([spec for specs in eval_specs.values() for spec in specs], **study)
    if len(selections) == 1:
        return Tuned(next(iter(selections.values())), tuning, runs)
    selection = Selection(pd.concat({k: v.table for k, v in selections.items()}, names=["data"]),
                          pd.concat([v.runs for v in selections.values()], ignore_index=True))
    label_of = {spec.run_id: label for specs_by_label in (tune_specs, eval_specs)
                for label, specs in specs_by_label.items() for spec in specs}
    runs.insert(0, "data", runs["run_id"].map(label_of))
    tuning.insert(0, "data", tuning["run_id"].map(label_of))
    return Tuned(selection, tuning, runs)


def _data_label(config: RunSpec, ambiguous: bool) -> str:
    """The data set's name, with its parameters when the name alone is ambiguous."""
    if not ambiguous:
        return config.dataset
    return config.dataset + " " + ", ".join(f"{k}={v}" for k, v in config.dataset_params)
