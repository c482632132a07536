"""fairlib: fairness metrics and data reweighting for PyTorch.

The core, in dependency order (each imports only those before it):

- :mod:`fairlib.metrics`: fairlearn's group-fairness metrics from one count table, on any device;
- :mod:`fairlib.datasets`: :class:`~fairlib.datasets.FairDataset`, real tabular data, Colored
  Digits, synthetic generators;
- :mod:`fairlib.weighting`: the reweighting strategies behind one protocol;
- :mod:`fairlib.train`: ``fit`` / ``evaluate`` with any strategy, reference models;
- :mod:`fairlib.experiments`: runs as data, studies on serial / process / Ray backends, the
  comparison protocol (equal tuning on the meta split, paired intervals over seeds);
- :mod:`fairlib.plotting`: figures the chapters share;
- :mod:`fairlib.book`: the ``fairlib`` command (run, build, sweep, results);
- :class:`fairlib.FairClassifier` (:mod:`fairlib.estimator`): ``fit`` and a strategy as a
  scikit-learn estimator (``Pipeline``, ``cross_val_score``, ``GridSearchCV``);
- :mod:`fairlib.regularizers`: fairness penalties for ``fit(..., regularizer=...)`` (FERMI);
- :mod:`fairlib.influence`: the Fair Infinitesimal Jackknife, which rows to *drop* instead of
  reweighting;
- :mod:`fairlib.boosting`: gradient-boosted trees, LightGBM with reweighting weights and
  FairGBM (the ``gbm`` extra).

:mod:`fairlib.studies` holds analyses written for one chapter each; it imports the core and
the core never imports it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fairlib")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["FairClassifier", "__version__"]


def __getattr__(name: str) -> object:
    # Imported on first use, so `import fairlib` stays free of torch and scikit-learn.
    if name == "FairClassifier":
        from .estimator import FairClassifier

        return FairClassifier
    raise AttributeError(f"module 'fairlib' has no attribute {name!r}")
