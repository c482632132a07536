"""Execute one :class:`~fairlib.experiments.RunSpec` into one flat record."""

from __future__ import annotations

import platform
import time
import traceback
from dataclasses import dataclass
from typing import Any

from .._validation import MSG_TYPE
from .registry import get_dataset, get_method, get_metric, get_model
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


@dataclass
class TrainedRun:
    """The objects of one trained run, for inspection in the process that trained it.

    Attributes
    ----------
    spec : RunSpec
    model, strategy : the trained model and the fitted strategy (``weights_``, ``history_`` ...)
    history : fairlib.train.History
        Per-epoch rows; with ``track_test=True`` they include the test split.
    train, meta, test : FairDataset
        The splits of the spec's seed.
    """

    spec: RunSpec
    model: Any
    strategy: Any
    history: Any
    train: Any
    meta: Any
    test: Any


def train_run(spec: RunSpec, *, splits: Any = None, track_test: bool = False,
              progress: bool = False) -> TrainedRun:
    """Build the data, model and strategy of ``spec`` and train; the objects, not a record.

    :func:`execute` trains through this function, so the model is the one behind the
    spec's record. ``splits=(train, meta, test)`` trains the spec's configuration on
    other data (e.g. a modified training split) instead of its dataset's.
    ``track_test=True`` also evaluates the test split after every epoch (training is
    unchanged).

    Examples
    --------
    >>> from fairlib.experiments import RunSpec, train_run
    >>> spec = RunSpec("synthetic", "logistic", "Reweighing", seed=0, dataset_params={"n": 400},
    ...                train={"epochs": 2, "lr": 0.05, "device": "cpu"})
    >>> run = train_run(spec)
    >>> run.strategy.cell_weights_.shape, len(run.history.rows)
    (torch.Size([2, 2]), 2)
    """
    import torch

    from ..train import fit, resolve_device

    settings = spec.train_settings
    device = resolve_device(settings["device"])
    torch.manual_seed(spec.seed)
    if splits is None:
        splits = get_dataset(spec.dataset)(seed=spec.seed, **dict(spec.dataset_params))
    train, meta, test = splits
    make_model = lambda: get_model(spec.model)(train, seed=spec.seed, **dict(spec.model_params))  # noqa: E731
    entry = get_method(spec.method)
    # checked here, before a prepare stage trains anything (JTT's stage 1)
    strategy, regularizer, stage = entry.build(dict(spec.method_params))
    fit_kwargs = {**settings, "device": device, "seed": spec.seed, "progress": progress}
    if entry.prepare is not None:
        entry.prepare(strategy, make_model, train, dict(fit_kwargs), **stage)
    model = make_model()
    if hasattr(model, "as_module"):  # gradient-boosted trees (fairlib.boosting): no epochs, no torch
        if regularizer is not None:
            raise ValueError(MSG_TYPE.format(name="method", expected=f"a method without a regulariser for "
                                             f"{spec.model!r} (trees take no loss penalty)",
                                             got=repr(spec.method)))
        model, history = _fit_trees(model, train, strategy)
    else:
        history = fit(model, train, strategy=strategy, meta=meta, test=test if track_test else None,
                      regularizer=regularizer, **fit_kwargs)
    return TrainedRun(spec, model, strategy, history, train, meta, test)


def _fit_trees(model: Any, train: Any, strategy: Any) -> tuple[Any, Any]:
    """Fit a fairlib.boosting estimator on ``train`` with the static ``strategy``'s weights;
    the torch module of its scores and a one-row history (the training log-loss)."""
    import inspect

    import numpy as np

    from ..train import History
    from ..weighting import ERM

    X = train.X.reshape(len(train), -1).cpu().numpy()
    y, group = train.y.cpu().numpy(), train.group.cpu().numpy()
    if "weights_from" in inspect.signature(model.fit).parameters:
        model.fit(X, y, group, weights_from=strategy)
    elif isinstance(strategy, ERM):
        model.fit(X, y, group)
    else:
        raise ValueError(f"Expected `method` to be ERM for {type(model).__name__}, which brings its own "
                         f"fairness constraint, but got {type(strategy).__name__}.")
    p = np.clip(model.predict_proba(X)[:, 1], 1e-12, 1 - 1e-12)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return model.as_module(), History([{"epoch": 1, "train_loss": loss}])


def evaluate_run(run: TrainedRun) -> dict[str, float]:
    """The metrics of a trained run, as in its record: split sizes, final training loss,
    :data:`SPLIT_METRICS` and per-group rates on the meta and the test split, and the
    spec's extra ``metrics``.

    Examples
    --------
    >>> from fairlib.experiments import RunSpec, evaluate_run, train_run
    >>> run = train_run(RunSpec("synthetic", "logistic", "ERM", seed=0, dataset_params={"n": 400},
    ...                         train={"epochs": 1, "device": "cpu"}))
    >>> metrics = evaluate_run(run)
    >>> metrics["n_test"], 0 <= metrics["test_equal_opportunity_difference"] <= 1
    (80, True)
    """
    from ..train import evaluate

    out: dict[str, float] = {"train_loss": float(run.history.last("train_loss")),
                             "n_train": len(run.train), "n_meta": len(run.meta), "n_test": len(run.test)}
    for name, split in (("meta", run.meta), ("test", run.test)):
        out.update(split_metrics(evaluate(run.model, split), name))  # on the model's device
    for metric in run.spec.metrics:
        out.update(get_metric(metric)(run))
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
    from ..train import resolve_device

    start = time.perf_counter()
    record: dict[str, Any] = {**spec.flat(), **versions()}
    try:
        record["device"] = str(resolve_device(spec.train_settings["device"]))
        record.update(evaluate_run(train_run(spec, progress=progress)))
        record["status"], record["error"] = STATUS_OK, ""
    except Exception as err:  # recorded, so a study goes on
        record["status"] = STATUS_FAILED
        record["error"] = f"{type(err).__name__}: {err}\n" + traceback.format_exc(limit=4)
    record["seconds"] = time.perf_counter() - start
    return record


def failed_record(spec: RunSpec, error: str) -> dict[str, Any]:
    """The record of a run that never returned (its worker died or did not start)."""
    return {**spec.flat(), **versions(), "status": STATUS_FAILED, "error": error, "seconds": float("nan")}
