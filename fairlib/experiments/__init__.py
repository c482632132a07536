"""The experiment protocol: runs as data, studies on several backends, results as data.

- :class:`RunSpec` and :func:`grid`: a run is a hashable specification (dataset, model,
  method and their parameters, training settings, seed); :func:`execute` turns it into one
  flat record. Names resolve through :mod:`~fairlib.experiments.registry`, which users extend
  with :func:`register_dataset`, :func:`register_model`, :func:`register_method` and
  :func:`register_metric` (extra metrics a spec adds to its record).
- :func:`run_study`: many runs on the ``"serial"``, ``"process"`` (default) or ``"ray"``
  backend, appended to a :class:`ResultStore` as they finish; a rerun skips finished runs.
- :func:`select`, :func:`compare`, :func:`summarize`: choose each
  method's hyper-parameters on the meta split with an equal budget, and compare methods
  paired by seed with intervals that stay inside each metric's range.
- :func:`tune_and_run`: the book's protocol in one call (equal-budget tuning on the meta
  split of tuning seeds, the choices rerun on fresh seeds); :func:`train_run` gives the
  trained objects of one spec for inspection.
- :func:`over_seeds`, :func:`seed_summary`: the older per-notebook helpers.
"""

from .execute import SPLIT_METRICS, TrainedRun, evaluate_run, execute, train_run
from .protocol import Selection, compare, select, summarize
from .registry import register_dataset, register_method, register_metric, register_model
from .seeds import over_seeds, seed_summary
from .spec import RunSpec, grid
from .store import ResultStore
from .study import run_study
from .tuning import Tuned, tune_and_run

__all__ = [
    "SPLIT_METRICS",
    "ResultStore",
    "RunSpec",
    "Selection",
    "TrainedRun",
    "Tuned",
    "compare",
    "evaluate_run",
    "execute",
    "grid",
    "over_seeds",
    "register_dataset",
    "register_method",
    "register_metric",
    "register_model",
    "run_study",
    "seed_summary",
    "select",
    "summarize",
    "train_run",
    "tune_and_run",
]
