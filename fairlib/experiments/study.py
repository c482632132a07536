"""Run many specs on one backend and keep every finished record in a store."""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterable
from typing import Any

import pandas as pd

from .._progress import progress as show_progress
from .._validation import MSG_TYPE
from .backends import check_backend, map_unordered
from .execute import execute, failed_record
from .registry import get_dataset, get_method, get_metric, get_model
from .spec import RunSpec
from .store import ResultStore


def _method_callables(spec: RunSpec) -> list[Any]:
    """The method's strategy factory, prepare stage and regulariser (those it has)."""
    entry = get_method(spec.method)
    return [f for f in (entry.factory, entry.prepare, entry.regularizer) if f is not None]


def _check_importable(specs: list[RunSpec], backend: str) -> None:
    """Workers rebuild factories by import: one defined in ``__main__`` (a notebook) is missing there."""
    if backend == "serial":
        return
    for spec in specs:
        for kind, name, factory in (("dataset", spec.dataset, get_dataset(spec.dataset)),
                                    ("model", spec.model, get_model(spec.model)),
                                    *(("method", spec.method, f) for f in _method_callables(spec)),
                                    *(("metric", m, get_metric(m)) for m in spec.metrics)):
            if getattr(factory, "__module__", None) == "__main__":
                raise ValueError(MSG_TYPE.format(
                    name=kind, expected=f"a factory importable by {backend!r} workers (defined in a module, "
                    "not in a notebook or script's __main__), or backend='serial'",
                    got=f"{name!r} registered from __main__"))


def _registering_modules(specs: list[RunSpec]) -> tuple[str, ...]:
    """Modules outside ``fairlib.experiments`` whose factories the specs use (e.g. a chapter's
    ``fairlib.studies`` module that registers its data set): workers import them first."""
    modules = set()
    for spec in specs:
        factories = [get_dataset(spec.dataset), get_model(spec.model), *_method_callables(spec),
                     *(get_metric(m) for m in spec.metrics)]
        for factory in factories:
            module = getattr(factory, "__module__", None) or ""
            if module not in ("", "__main__") and not module.startswith("fairlib.experiments"):
                modules.add(module)
    return tuple(sorted(modules))


def _execute_after_import(modules: tuple[str, ...], spec: RunSpec) -> dict[str, Any]:
    """Import the registering modules in this worker, then run the spec."""
    for module in modules:
        importlib.import_module(module)
    return execute(spec)


def _check_specs(specs: Iterable[RunSpec]) -> list[RunSpec]:
    specs = list(specs) if not isinstance(specs, RunSpec) else [specs]
    if not specs:
        raise ValueError(MSG_TYPE.format(name="specs", expected="at least one RunSpec", got="none"))
    for i, spec in enumerate(specs):
        if not isinstance(spec, RunSpec):
            raise TypeError(MSG_TYPE.format(name=f"specs[{i}]", expected="a RunSpec",
                                            got=type(spec).__name__))
        get_dataset(spec.dataset), get_model(spec.model)
        for metric in spec.metrics:
            get_metric(metric)
        entry = get_method(spec.method)
        _check_method_params(spec, entry)
    return list({spec.run_id: spec for spec in specs}.values())  # duplicates run once


def _check_method_params(spec: RunSpec, entry: Any) -> None:
    """Construct the strategy once here, so a misspelt hyper-parameter fails before any run."""
    params = dict(spec.method_params)
    try:
        entry.build(params)
    except (TypeError, ValueError) as err:
        expected = f"parameters of {spec.method}"
        if entry.regularizer_params:
            expected += f" (its regulariser takes {', '.join(entry.regularizer_params)})"
        raise ValueError(MSG_TYPE.format(name="method_params", expected=expected,
                                         got=f"{params!r} ({err})")) from None


def run_study(
    specs: Iterable[RunSpec],
    *,
    backend: str = "process",
    workers: int | None = None,
    store: str | os.PathLike[str] | ResultStore | None = None,
    csv: bool = False,
    ray_address: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Execute every spec and return one record per spec (finished runs are skipped).

    Parameters
    ----------
    specs : iterable of RunSpec
        The runs; names and method hyper-parameters are checked before anything runs.
    backend : {"serial", "process", "ray"}
        ``"process"``: a ``spawn`` process pool, one worker per core, each pinned to one
        torch thread. ``"ray"``: ``ray.init(address=ray_address)`` when an address is
        given, else a local Ray (the ``fairlib[ray]`` extra); an initialised Ray is reused.
    workers : int, optional
        Pool size (default: one per core).
    store : path or ResultStore, optional
        Folder of the results; each record is written as its run finishes, and runs
        already stored with status ``"ok"`` are skipped. Without a store nothing persists.
    csv : bool
        Also write ``results.csv`` next to ``results.parquet`` at the end.
    progress : bool
        A progress bar over runs (done / total, ETA).

    Returns
    -------
    pandas.DataFrame
        One record per distinct spec, in the order of ``specs``: stored records for runs
        skipped, new ones for the rest; failed runs have ``status == "failed"`` and their
        ``error``.

    Examples
    --------
    >>> from fairlib.experiments import grid, run_study
    >>> specs = grid(datasets=[("synthetic", {"n": 400})], models=["logistic"],
    ...              methods=["ERM", "Reweighing"], seeds=[0, 1],
    ...              train={"epochs": 1, "lr": 0.05, "device": "cpu"})
    >>> records = run_study(specs, backend="serial", progress=False)
    >>> records[["method", "seed", "status"]].values.tolist()
    [['ERM', 0, 'ok'], ['ERM', 1, 'ok'], ['Reweighing', 0, 'ok'], ['Reweighing', 1, 'ok']]
    """
    check_backend(backend, workers, ray_address)
    specs = _check_specs(specs)
    _check_importable(specs, backend)
    if store is not None and not isinstance(store, ResultStore):
        store = ResultStore(store)
    finished: dict[str, dict[str, Any]] = {}
    if store is not None:
        stored = store.read()
        if not stored.empty:
            ok = stored[stored["status"] == "ok"]
            finished = {r["run_id"]: r for r in ok.to_dict("records")}
    todo = [s for s in specs if s.run_id not in finished]
    records = dict(finished)
    fn = functools.partial(_execute_after_import, _registering_modules(todo))
    runs = map_unordered(fn, todo, backend=backend, workers=workers, ray_address=ray_address)
    bar = show_progress(runs, progress and bool(todo), total=len(todo), desc="runs", unit="run")
    for spec, record, error in bar:
        if record is None:
            record = failed_record(spec, error or "unknown error")
        records[spec.run_id] = record
        if store is not None:
            store.append(record)
    if store is not None and todo:
        store.write_tables(csv=csv)
    return pd.DataFrame([records[s.run_id] for s in specs])
