"""Execute one :class:`~fairlib.experiments.RunSpec` into one flat record."""

from __future__ import annotations

import platform
import time
import traceback
from typing import Any

from .registry import get_dataset, get_method, get_model
from .spec import RunSpec
from .store import STATUS_FAILED, STATUS_OK

#: Scalar metrics every record holds for the meta and the test split.
SPLIT_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "worst_group_accuracy",
    "demographic_parity_difference",
    "equal_opportunity_difference",
    "equalized_odds_difference",
)
#: Rates recorded per group, as ``<split>_<rate>[<group>]``.
GROUP_RATES = {"tpr": "true_positive_rate", "selection_rate": "selection_rate", "accuracy": "accuracy"}


def versions() -> dict[str, str]:
    """Versions of the libraries a record depends on."""
    import numpy
    import torch

    import fairlib

    return {"fairlib_version": fairlib.__version__, "torch_version": torch.__version__,
            "numpy_version": numpy.__version__, "python_version": platform.python_version()}


def split_metrics(report: Any, prefix: str) -> dict[str, float]:
    """The record's metrics of one split from a :class:`~fairlib.metrics.FairnessReport`."""
    import warnings

    overall = report.overall
    by = report.by_group
    present = by[by["n"] > 0]
    with warnings.catch_warnings():
        # An undefined rate is NaN in the record; the record is the place it is reported.
        warnings.simplefilter("ignore")
        out = {
            f"{prefix}_accuracy": float(overall["accuracy"]),
            f"{prefix}_balanced_accuracy": 0.5 * (float(overall["true_positive_rate"])
                                                  + float(overall["true_negative_rate"])),
            f"{prefix}_worst_group_accuracy": float(present["accuracy"].min()),
            f"{prefix}_demographic_parity_difference": report.measure("demographic_parity_difference"),
            f"{prefix}_equal_opportunity_difference": report.measure("equal_opportunity_difference"),
            f"{prefix}_equalized_odds_difference": report.measure("equalized_odds_difference"),
        }
        for short, rate in GROUP_RATES.items():
            for group, value in by[rate].items():
                out[f"{prefix}_{short}[{group}]"] = float(value)
    return out


def execute(spec: RunSpec, *, progress: bool = False) -> dict[str, Any]:
    """Build the data, model and strategy of ``spec``, train, evaluate; one flat record.

    The record holds every parameter of the spec (:meth:`RunSpec.flat`), metrics on the
    meta and test splits (:data:`SPLIT_METRICS` and per-group rates), ``seconds``,
    ``device``, library versions, ``status`` (``"ok"`` or ``"failed"``) and ``error``
    (the exception and a short traceback when the run raised; empty otherwise). A
    failing run returns its record instead of raising.

    Torch's global generator is seeded with ``spec.seed`` first, so models that draw
    from it (dropout) are reproducible: on the CPU the same spec gives the same record
    (apart from ``seconds``).

    Examples
    --------
    >>> from fairlib.experiments import RunSpec, execute
    >>> spec = RunSpec("synthetic", "logistic", "ERM", seed=0, dataset_params={"n": 400},
    ...                train={"epochs": 2, "lr": 0.05, "device": "cpu"})
    >>> record = execute(spec)
    >>> record["status"], record["method"], 0.5 < record["test_accuracy"] <= 1
    ('ok', 'ERM', True)
    """
    import torch

    from ..train import evaluate, fit, resolve_device

    start = time.perf_counter()
    record: dict[str, Any] = {**spec.flat(), **versions()}
    settings = spec.train_settings
    try:
        device = resolve_device(settings["device"])
        record["device"] = str(device)
        torch.manual_seed(spec.seed)
        train, meta, test = get_dataset(spec.dataset)(seed=spec.seed, **dict(spec.dataset_params))
        make_model = lambda: get_model(spec.model)(train, seed=spec.seed, **dict(spec.model_params))  # noqa: E731
        entry = get_method(spec.method)
        method_params = dict(spec.method_params)
        stage = {k: method_params.pop(k) for k in entry.stage_params if k in method_params}
        strategy = entry.factory(**method_params)
        fit_kwargs = {**settings, "device": device, "seed": spec.seed, "progress": progress}
        if entry.prepare is not None:
            entry.prepare(strategy, make_model, train, dict(fit_kwargs), **stage)
        model = make_model()
        history = fit(model, train, strategy=strategy, meta=meta, **fit_kwargs)
        record["train_loss"] = float(history.last("train_loss"))
        record["n_train"], record["n_meta"], record["n_test"] = len(train), len(meta), len(test)
        for name, split in (("meta", meta), ("test", test)):
            record.update(split_metrics(evaluate(model, split, device=device), name))
        record["status"], record["error"] = STATUS_OK, ""
    except Exception as err:  # recorded, so a study goes on
        record["status"] = STATUS_FAILED
        record["error"] = f"{type(err).__name__}: {err}\n" + traceback.format_exc(limit=4)
    record["seconds"] = time.perf_counter() - start
    return record


def failed_record(spec: RunSpec, error: str) -> dict[str, Any]:
    """The record of a run that never returned (its worker died or did not start)."""
    return {**spec.flat(), **versions(), "status": STATUS_FAILED, "error": error, "seconds": float("nan")}
