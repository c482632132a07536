"""``FairClassifier``: fairlib's training loop and strategies as a scikit-learn estimator.

It wraps :func:`fairlib.train.fit` so that a reweighting strategy can sit in a
``Pipeline``, ``cross_val_score`` or ``GridSearchCV``; ``sensitive_features`` travels
through scikit-learn's metadata routing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._validation import (
    _is_int,
    check_choice,
    check_finite_positive,
    check_fraction,
    check_nonnegative,
    check_positive_int,
    msg_expected,
)
from .datasets import FairDataset
from .train import MLP, LogisticRegression, fit, predict_logits, resolve_device
from .weighting import ERM, FORML, JTT, KLDRO, L2RW, StepWeightRecorder, WeightingStrategy, clone

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6
    def validate_data(_estimator: Any, /, *args: Any, **kwargs: Any) -> Any:
        return _estimator._validate_data(*args, **kwargs)

__all__ = ["FairClassifier"]

MODELS = ("mlp", "logistic")
OPTIMIZERS = ("adam", "sgd")
_GROUP_FREE = (WeightingStrategy, ERM, KLDRO, JTT)  # exact types that never read group codes


def needs_groups(strategy: WeightingStrategy) -> bool:
    """Whether ``strategy`` reads group codes (so ``fit`` needs ``sensitive_features``).

    A strategy may say so itself with a ``requires_groups`` attribute; otherwise ERM,
    KL-DRO, JTT and L2RW / FORML with the ``"mean"`` meta-objective do not, and every
    other strategy (including unknown ones) does.

    Examples
    --------
    >>> from fairlib.weighting import L2RW, Reweighing
    >>> from fairlib.estimator import needs_groups
    >>> needs_groups(Reweighing()), needs_groups(L2RW())
    (True, False)
    >>> needs_groups(L2RW(meta_objective="eo_gap"))
    True
    """
    flag = getattr(strategy, "requires_groups", None)
    if flag is not None:
        return bool(flag)
    if isinstance(strategy, StepWeightRecorder):
        return strategy.strategy is not None and needs_groups(strategy.strategy)
    if isinstance(strategy, (L2RW, FORML)):
        return strategy.meta_objective != "mean"
    return type(strategy) not in _GROUP_FREE


def _dataset(X: np.ndarray, y: np.ndarray, groups: np.ndarray,
             names: Sequence[str]) -> FairDataset:
    return FairDataset(X=torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)),
                       y=torch.from_numpy(y), sensitive={"group": torch.from_numpy(groups)},
                       categories={"group": list(names)})


def _random_seed(random_state: Any, bits: int) -> int:
    """A seed in [0, 2**bits) from ``random_state``: such an integer, None or a RandomState."""
    rs = random_state
    if _is_int(rs) and 0 <= rs < 2**bits:
        return int(rs)
    if rs is None or isinstance(rs, np.random.RandomState):
        return int(check_random_state(rs).randint(np.iinfo(np.int32).max))
    raise ValueError(msg_expected("random_state", f"None, an integer in [0, 2**{bits}) or a "
                                  "numpy RandomState", repr(rs)))


def _check_groups_given(strategy: WeightingStrategy, sensitive_features: Any) -> None:
    """Refuse a strategy that reads group codes when no ``sensitive_features`` came."""
    if sensitive_features is None and needs_groups(strategy):
        raise ValueError(msg_expected(
            "sensitive_features", f"the group of every row for {type(strategy).__name__}, "
            "which weighs groups", "None"))


def _group_codes(sensitive_features: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 codes of the observed groups and their names; several columns are crossed."""
    sf = sensitive_features
    try:
        frame = pd.DataFrame(sf.cpu().numpy() if isinstance(sf, torch.Tensor) else sf)
    except (TypeError, ValueError) as err:
        raise TypeError(msg_expected(
            "sensitive_features", "an array-like of group values (or one column per "
            "attribute)", type(sf).__name__)) from err
    if len(frame) != n:
        raise ValueError(msg_expected("sensitive_features", f"{n} values (one per row of X)",
                                      f"{len(frame)}"))
    missing = frame.isna().to_numpy().any(axis=1)
    if missing.any():
        raise ValueError(msg_expected("sensitive_features", "free of missing values",
                                      f"{int(missing.sum())} missing (first at row "
                                      f"{int(np.flatnonzero(missing)[0])})"))
    keys = frame.iloc[:, 0] if frame.shape[1] == 1 else pd.MultiIndex.from_frame(frame)
    try:
        codes, names = pd.factorize(keys, sort=True)  # a Categorical keeps its own order
    except TypeError:  # values of mixed, unorderable types
        codes, names = pd.factorize(keys)
    labels = [", ".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in names]
    return codes.astype(np.int64), np.asarray(labels)


def _binary_data(estimator: BaseEstimator, X: Any, y: Any, sensitive_features: Any,
                 dtype: list[type]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                             np.ndarray]:
    """Validated ``X``, the two classes, int64 labels in {0, 1}, group codes and names
    (one group ``"all"`` without ``sensitive_features``); sets ``n_features_in_``."""
    X, y = validate_data(estimator, X, y, dtype=dtype)
    check_classification_targets(y)
    classes, y01 = np.unique(y, return_inverse=True)
    if len(classes) != 2:
        k = len(classes)
        raise ValueError(msg_expected("y", "labels of exactly two classes", f"{k} class"
                                      f"{'es' if k > 1 else ''}: {classes[:5].tolist()}")
                         + " Only binary classification is supported.")  # scikit-learn's words
    if sensitive_features is None:
        codes, groups = np.zeros(len(y), dtype=np.int64), np.asarray(["all"])
    else:
        codes, groups = _group_codes(sensitive_features, len(y))
    return X, classes, y01.astype(np.int64), codes, groups


class _BinaryClassifier(ClassifierMixin, BaseEstimator):
    """The scikit-learn surface of fairlib's binary estimators, from ``decision_function``."""

    __metadata_request__fit = {"sensitive_features": True}  # noqa: RUF012 (scikit-learn's API)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def decision_function(self, X: Any) -> np.ndarray:  # each estimator's own
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities ``[n_samples, 2]`` of ``classes_[0]`` and ``classes_[1]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray
        """
        p = expit(self.decision_function(X))  # float64: no ties where float32 would round
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """``classes_[1]`` where the raw score (logit) is positive, else ``classes_[0]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray
        """
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]


class FairClassifier(_BinaryClassifier):
    """A binary classifier trained by :func:`fairlib.train.fit` with a weighting strategy.

    Follows scikit-learn's conventions: the constructor only stores its arguments
    (validated by :meth:`fit`), learned state ends in ``_``, and ``get_params`` /
    ``set_params`` reach the strategy's parameters as ``strategy__<name>``. ``fit``
    takes ``sensitive_features``, which scikit-learn's metadata routing passes on
    (requested by default; ``set_fit_request(sensitive_features=False)`` turns it off),
    so the estimator works in ``Pipeline``, ``cross_val_score`` and ``GridSearchCV``.

    Parameters
    ----------
    model : {"mlp", "logistic"} or callable, default "mlp"
        The network: :class:`~fairlib.train.MLP` with ``hidden`` layers,
        :class:`~fairlib.train.LogisticRegression`, or ``model(n_features) -> nn.Module``
        returning one logit per row.
    strategy : WeightingStrategy, optional
        Any strategy of :mod:`fairlib.weighting` (default ERM); it is cloned at every fit.
        Strategies that read group codes need ``sensitive_features`` (see
        :func:`needs_groups`). JTT gets its error set from an ERM stage of ``epochs``.
    meta_fraction : float, default 0.2
        Share of the training rows held out, stratified by group and label, for a
        strategy with ``requires_meta`` (L2RW, FORML); other strategies train on all rows.
    hidden : tuple of int, default (64, 64)
        Hidden widths of the ``"mlp"`` model.
    epochs, batch_size, lr, weight_decay, optimizer, device
        Settings of :func:`fairlib.train.fit`.
    random_state : int, numpy RandomState or None
        Seeds the initialisation, the data order, the held-out split and the strategy;
        an integer gives the same parameters bit for bit on the CPU.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained network (in eval mode).
    strategy_ : WeightingStrategy
        The fitted clone of ``strategy``.
    classes_ : numpy.ndarray
        The two labels; ``classes_[1]`` is the positive class.
    groups_ : numpy.ndarray
        Group names in code order (``["all"]`` without ``sensitive_features``).
    n_features_in_ : int
        Number of features seen in ``fit`` (``feature_names_in_`` for a DataFrame).
    history_ : fairlib.train.History
        One row per epoch (loss, strategy diagnostics, held-out metrics).

    Examples
    --------
    >>> import numpy as np
    >>> from fairlib import FairClassifier
    >>> from fairlib.weighting import Reweighing
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = np.where(X[:, 0] + rng.normal(size=200) > 0, "yes", "no")
    >>> race = rng.choice(["a", "b", "c"], size=200)
    >>> clf = FairClassifier("logistic", Reweighing(), epochs=2, random_state=0)
    >>> clf.fit(X, y, sensitive_features=race).classes_.tolist()
    ['no', 'yes']
    >>> clf.predict_proba(X[:4]).shape, clf.predict(X[:2]).dtype.kind
    ((4, 2), 'U')
    """

    def __init__(self, model: str | Callable[[int], nn.Module] = "mlp",
                 strategy: WeightingStrategy | None = None, *, meta_fraction: float = 0.2,
                 hidden: tuple[int, ...] = (64, 64), epochs: int = 10, batch_size: int = 128,
                 lr: float = 1e-3, weight_decay: float = 0.0, optimizer: str = "adam",
                 device: str = "auto", random_state: Any = None) -> None:
        self.model = model
        self.strategy = strategy
        self.meta_fraction = meta_fraction
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.device = device
        self.random_state = random_state

    def _check_params(self) -> tuple[torch.device, int]:
        """Validate every hyper-parameter (before any work); the device and the seed."""
        if not callable(self.model):
            check_choice("model", self.model, MODELS)
        hidden = self.hidden
        if self.model == "mlp" and (not isinstance(hidden, (tuple, list))
                                    or not all(_is_int(h) and h >= 1 for h in hidden)):
            raise ValueError(msg_expected("hidden", "a tuple of positive integers", repr(hidden)))
        if self.strategy is not None and not isinstance(self.strategy, WeightingStrategy):
            raise TypeError(msg_expected("strategy", "a WeightingStrategy or None",
                                         type(self.strategy).__name__))
        if not 0.0 < check_fraction("meta_fraction", self.meta_fraction,
                                    expected="a fraction in (0, 1)") < 1.0:
            raise ValueError(msg_expected("meta_fraction", "a fraction in (0, 1)",
                                          repr(self.meta_fraction)))
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_finite_positive("lr", self.lr)
        check_nonnegative("weight_decay", self.weight_decay)
        if not callable(self.optimizer):
            check_choice("optimizer", self.optimizer, OPTIMIZERS)
        seed = _random_seed(self.random_state, 32)
        return resolve_device(self.device), seed

    def fit(self, X: Any, y: Any, sensitive_features: Any = None) -> FairClassifier:
        """Train a fresh model on ``X``, ``y`` with a clone of ``strategy``; returns ``self``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric features (encode strings first, e.g. with a ``ColumnTransformer``).
        y : array-like of shape (n_samples,)
            Exactly two classes, of any type; ``classes_[1]`` is the positive one.
        sensitive_features : array-like, optional
            Group of every row (strings, integers, pandas Categorical; several columns are
            crossed); required when the strategy reads groups.

        Returns
        -------
        FairClassifier
        """
        device, seed = self._check_params()
        strategy = clone(self.strategy) if self.strategy is not None else ERM()
        _check_groups_given(strategy, sensitive_features)
        X, classes, y01, codes, groups = _binary_data(self, X, y, sensitive_features,
                                                      [np.float32, np.float64])
        data, meta = _dataset(X, y01, codes, groups), None
        if strategy.requires_meta:
            data, meta, _ = data.split(1.0 - self.meta_fraction, self.meta_fraction, 0.0,
                                       seed=seed, standardize=False)
        settings = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                    "weight_decay": self.weight_decay, "optimizer": self.optimizer,
                    "device": device, "seed": seed, "progress": False}
        with torch.random.fork_rng(devices=[]):  # a callable model draws from the CPU generator
            torch.default_generator.manual_seed(seed)
            if isinstance(strategy, JTT):
                stage1 = self._make_model(X.shape[1], seed)
                fit(stage1, data, **settings)
                strategy.identify_errors(stage1, data)
            model = self._make_model(X.shape[1], seed)
            history = fit(model, data, strategy=strategy, meta=meta, **settings)
        self.model_, self.strategy_, self.history_ = model.eval(), strategy, history
        self.classes_, self.groups_ = classes, groups
        return self

    def _make_model(self, n_features: int, seed: int) -> nn.Module:
        if self.model == "logistic":
            return LogisticRegression(n_features, seed=seed)
        if self.model == "mlp":
            return MLP(n_features, hidden=tuple(self.hidden), seed=seed)
        model = self.model(n_features)  # type: ignore[operator]
        if not isinstance(model, nn.Module):
            raise TypeError(msg_expected("model", "a callable returning a torch.nn.Module",
                                         f"one returning {type(model).__name__}"))
        return model

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits ``[n_samples]`` (float64); positive means ``classes_[1]``."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        n = len(X)
        rows = _dataset(X, np.zeros(n, np.int64), np.zeros(n, np.int64), ["all"])
        return predict_logits(self.model_, rows).cpu().double().numpy()
