"""The book's protocol in one call: tune every method with the same budget on the meta
split of tuning seeds, then rerun each method's choice on fresh evaluation seeds."""

from __future__ import annotations

import os
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
        its mean score on the meta split of the tuning seeds).
    tuning : pandas.DataFrame
        Every tuning record (each configuration on each tuning seed).
    runs : pandas.DataFrame
        The chosen configurations on the evaluation seeds: the records to report.
    """

    selection: Selection
    tuning: pd.DataFrame
    runs: pd.DataFrame

    def chosen(self, method: str, seed: int) -> RunSpec:
        """The spec of ``method``'s chosen configuration on ``seed`` (e.g. for :func:`train_run`)."""
        rows = self.runs[self.runs["method"] == method]
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
    constraint: Mapping[str, float] | None = None,
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
        The grid of every method (e.g. from :func:`grid`), one spec per configuration.
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
    configs = list(dict.fromkeys(c.replace(seed=tune_seeds[0]) for c in configs))
    if not configs or not all(isinstance(c, RunSpec) for c in configs):
        raise ValueError(MSG_TYPE.format(name="configs", expected="a non-empty list of RunSpec", got=repr(configs)[:80]))
    sizes: dict[str, int] = {}
    for c in configs:
        sizes[c.method] = sizes.get(c.method, 0) + 1
    if len(set(sizes.values())) > 1:
        raise ValueError(MSG_TYPE.format(name="configs", expected="the same number of configurations for every "
                                         "method (an equal tuning budget)", got=sizes))
    study = {"backend": backend, "workers": workers, "store": store, "ray_address": ray_address,
             "progress": progress}
    tuning = run_study([c.replace(seed=s) for c in configs for s in tune_seeds], **study)
    failed = tuning[tuning["status"] != STATUS_OK]
    if len(failed) == len(tuning):
        raise RuntimeError(f"tune_and_run: all {len(tuning)} tuning runs failed; the first error:\n"
                           f"{failed['error'].iloc[0]}")
    selection = select(tuning, metric=metric, maximize=maximize, constraint=constraint,
                       budget=next(iter(sizes.values())))
    runs = run_study(selection.specs(seeds), **study)
    return Tuned(selection, tuning, runs)
