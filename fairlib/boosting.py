"""Gradient-boosted trees: LightGBM with reweighting weights, and FairGBM.

Two binary classifiers with the surface of :class:`fairlib.FairClassifier`
(``fit(X, y, sensitive_features=...)``, ``predict_proba``, ``predict``), following
scikit-learn's conventions (the constructor only stores its arguments; ``fit`` validates
them; learned state ends in ``_``):

- :class:`LightGBM`: LightGBM's binary cross-entropy. ``fit(..., weights_from=strategy)``
  trains on the per-row weights of a static strategy of :mod:`fairlib.weighting`
  (:class:`~fairlib.weighting.Reweighing`, :class:`~fairlib.weighting.GroupUpweighting`),
  so reweighting is shown on trees. Every tree is grown on the whole weighted training
  set, so only the loss-weight side of a strategy applies (``mode="upweight"``).
- :class:`FairGBM`: FairGBM (Cruz et al., ICLR 2023, arXiv 2209.07850): the same trees on
  a proxy-Lagrangian of cross-entropy under group constraints on the false negative rate
  (``"fnr"``: equal opportunity), the false positive rate (``"fpr"``: predictive
  equality) or both (``"fnr,fpr"``: equalized odds). The model player descends a
  differentiable proxy of the constraints, the multiplier player ascends on the true
  rates. Wraps the ``fairgbm.train`` engine (objective ``"constrained_cross_entropy"``):
  the package's scikit-learn wrapper fails on current scikit-learn.

Both engines are the optional extra ``pip install 'fairlib[gbm]'``, imported when ``fit``
runs. Training is deterministic: ``random_state`` is LightGBM's ``seed``, with
``deterministic=True`` and ``force_row_wise=True``; ``num_threads`` defaults to 1 so that
studies running several fits side by side do not oversubscribe the cores.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._validation import (
    _is_int,
    _is_real,
    as_weights,
    check_choice,
    check_finite_positive,
    check_fraction,
    check_nonnegative,
    check_positive_int,
    msg_expected,
)
from .estimator import (
    _binary_data,
    _BinaryClassifier,
    _check_groups_given,
    _dataset,
    _random_seed,
    validate_data,
)
from .weighting import (
    ERM,
    Batch,
    Cooldown,
    GroupUpweighting,
    Reweighing,
    WeightingStrategy,
    clone,
)

__all__ = ["CONSTRAINTS", "FairGBM", "LightGBM", "PROXIES"]

#: FairGBM's ``constraint`` names and the ``constraint_type`` its engine reads.
CONSTRAINTS = {"fnr": "FNR", "fpr": "FPR", "fnr,fpr": "FPR,FNR"}
#: Differentiable proxies of the step function in FairGBM's constraints.
PROXIES = ("cross_entropy", "hinge", "quadratic")
_EXTRA = "pip install 'fairlib[gbm]'"
# Strategies whose weights depend only on each row's group and label, fixed at setup.
_STATIC = (ERM, Reweighing, GroupUpweighting)


def _engine(module: str, owner: str) -> Any:
    """Import ``module`` (``lightgbm`` or ``fairgbm``), naming the extra when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{owner} needs the optional package `{module}`, which is not "
                          f"installed; install it with {_EXTRA}.") from err


def _check_fraction_open(name: str, value: object) -> float:
    """A real number in (0, 1] (LightGBM's row and column subsampling)."""
    expected = "a fraction in (0, 1]"
    if check_fraction(name, value, expected=expected) <= 0.0:
        raise ValueError(msg_expected(name, expected, repr(value)))
    return float(value)  # type: ignore[arg-type]


def _check_static(strategy: Any) -> WeightingStrategy | None:
    """``weights_from`` must be a strategy whose weights are fixed once ``setup`` has run."""
    if strategy is None:
        return None
    if not isinstance(strategy, WeightingStrategy):
        raise TypeError(msg_expected("weights_from", "a static WeightingStrategy (e.g. "
                                     "Reweighing()) or None", type(strategy).__name__))
    flag = getattr(strategy, "static", None)
    static = bool(flag) if flag is not None else (
        isinstance(strategy, _STATIC) and not isinstance(getattr(strategy, "tau", None), Cooldown))
    if not static:
        raise ValueError(msg_expected(
            "weights_from", "a static strategy, whose weights depend only on each row's group "
            "and label (ERM, Reweighing, GroupUpweighting with a fixed tau, or a class with "
            "`static = True`); trees are fitted once on fixed weights",
            f"{type(strategy).__name__}"))
    if getattr(strategy, "mode", "upweight") == "upsample":
        raise ValueError(msg_expected(
            "weights_from.mode", "'upweight': the trees take the weights themselves (there is "
            "no data loader to resample)", "'upsample'"))
    return strategy


class _TreeLogits(nn.Module):
    """A fitted tree model as a parameter-free module: ``forward(x)`` is its raw score."""

    def __init__(self, estimator: _BoostedTrees) -> None:
        super().__init__()
        self.estimator = estimator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.estimator.decision_function(x.detach().reshape(len(x), -1).cpu().numpy())
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        return torch.from_numpy(raw).to(device=x.device, dtype=dtype)


class _BoostedTrees(_BinaryClassifier):
    """What :class:`LightGBM` and :class:`FairGBM` share: parameters, data, prediction."""

    _objective = "binary"
    _module = "lightgbm"

    def __init__(self, *, n_estimators: int = 100, learning_rate: float = 0.1,
                 num_leaves: int = 31, max_depth: int = -1, min_child_samples: int = 20,
                 subsample: float = 1.0, colsample_bytree: float = 1.0, reg_lambda: float = 0.0,
                 num_threads: int = 1, random_state: Any = 0,
                 engine_params: dict[str, Any] | None = None) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.num_threads = num_threads
        self.random_state = random_state
        self.engine_params = engine_params

    # -- fit ---------------------------------------------------------------------------------
    def _engine_params(self) -> tuple[dict[str, Any], int]:
        """Validate the shared hyper-parameters; the engine's parameters and the rounds."""
        rounds = check_positive_int("n_estimators", self.n_estimators)
        if not _is_int(self.num_leaves) or self.num_leaves < 2:
            raise ValueError(msg_expected("num_leaves", "an integer >= 2", repr(self.num_leaves)))
        if not _is_int(self.max_depth) or not (self.max_depth == -1 or self.max_depth >= 1):
            raise ValueError(msg_expected("max_depth", "-1 (no limit) or a positive integer",
                                          repr(self.max_depth)))
        if not _is_int(self.min_child_samples) or self.min_child_samples < 0:
            raise ValueError(msg_expected("min_child_samples", "a non-negative integer",
                                          repr(self.min_child_samples)))
        subsample = _check_fraction_open("subsample", self.subsample)
        params = {
            "objective": self._objective,
            "learning_rate": check_finite_positive("learning_rate", self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "max_depth": int(self.max_depth),
            "min_data_in_leaf": int(self.min_child_samples),
            "bagging_fraction": subsample,
            "bagging_freq": 1 if subsample < 1.0 else 0,
            "feature_fraction": _check_fraction_open("colsample_bytree", self.colsample_bytree),
            "lambda_l2": check_nonnegative("reg_lambda", self.reg_lambda),
            "num_threads": check_positive_int("num_threads", self.num_threads),
            "seed": _random_seed(self.random_state, 31),  # LightGBM's seed is a C int
            # Same seed, same threads -> same trees (LightGBM's advice for `deterministic`).
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
            **self._extra_params(),
        }
        extra = self.engine_params
        if extra is not None:
            if not isinstance(extra, Mapping) or not all(isinstance(k, str) for k in extra):
                raise TypeError(msg_expected("engine_params", "a dict of engine parameter names "
                                             "to values, or None", type(extra).__name__))
            clash = sorted(set(extra) & set(params))
            if clash:
                raise ValueError(msg_expected(
                    "engine_params", "free of the parameters this class sets (set them through "
                    "its constructor)", ", ".join(map(repr, clash))))
            params.update(extra)
        return params, rounds

    def _extra_params(self) -> dict[str, Any]:
        """Engine parameters of the subclass (validated)."""
        return {}

    def _data(self, X: Any, y: Any, sensitive_features: Any) -> tuple[np.ndarray, np.ndarray,
                                                                      np.ndarray]:
        """Features, labels in {0, 1} and group codes (zeros without ``sensitive_features``);
        sets ``classes_``, ``groups_`` and ``n_features_in_``."""
        X, classes, y01, codes, groups = _binary_data(self, X, y, sensitive_features,
                                                      [np.float64, np.float32])
        self.classes_, self.groups_ = classes, groups
        return X, y01, codes

    # -- predict -----------------------------------------------------------------------------
    def decision_function(self, X: Any) -> np.ndarray:
        """Raw scores (logits) ``[n_samples]`` (float64); positive means ``classes_[1]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        numpy.ndarray
        """
        check_is_fitted(self, "booster_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        raw = self.booster_.predict(X, raw_score=True, num_threads=self.num_threads)
        return np.asarray(raw, dtype=np.float64)

    def as_module(self) -> nn.Module:
        """The fitted trees as a parameter-free ``torch.nn.Module`` returning raw scores.

        ``forward(x)`` flattens the rows, runs :meth:`decision_function` on the CPU and
        returns the scores on ``x``'s device, so :func:`fairlib.train.evaluate`,
        :func:`fairlib.train.predict_logits` and the experiment records read the trees
        like any network (``sigmoid(score) >= 0.5`` is ``predict``, up to a score of
        exactly 0). It is not trainable: fit the estimator first.

        Returns
        -------
        torch.nn.Module

        Examples
        --------
        >>> from fairlib.boosting import LightGBM
        >>> from fairlib.datasets import make_biased_classification
        >>> from fairlib.train import evaluate
        >>> data = make_biased_classification(400, seed=0)
        >>> model = LightGBM(n_estimators=10).fit(data.X.numpy(), data.y.numpy())
        >>> report = evaluate(model.as_module(), data)
        >>> float(report.overall["accuracy"]) == float((model.predict(data.X.numpy())
        ...                                             == data.y.numpy()).mean())
        True
        """
        check_is_fitted(self, "booster_")
        return _TreeLogits(self)


class LightGBM(_BoostedTrees):
    """LightGBM's gradient-boosted trees, optionally on the weights of a static strategy.

    Parameters
    ----------
    n_estimators : int, default 100
        Boosting rounds (trees).
    learning_rate : float, default 0.1
        Shrinkage of every tree.
    num_leaves : int, default 31
        Maximum leaves per tree (>= 2).
    max_depth : int, default -1
        Maximum tree depth (-1: no limit).
    min_child_samples : int, default 20
        Minimum rows in a leaf (LightGBM's ``min_data_in_leaf``).
    subsample : float, default 1.0
        Share of rows each tree sees, in (0, 1] (bagging every round when below 1).
    colsample_bytree : float, default 1.0
        Share of features each tree sees, in (0, 1].
    reg_lambda : float, default 0.0
        L2 penalty on the leaf values.
    num_threads : int, default 1
        Threads for training and prediction.
    random_state : int, numpy RandomState or None, default 0
        LightGBM's ``seed``; with ``deterministic=True`` an integer gives the same trees.
    engine_params : dict, optional
        Further LightGBM parameters, passed as they are (not those this class sets).

    Attributes
    ----------
    booster_ : lightgbm.Booster
        The trained trees.
    classes_ : numpy.ndarray
        The two labels; ``classes_[1]`` is the positive class.
    groups_ : numpy.ndarray
        Group names in code order (``["all"]`` without ``sensitive_features``).
    train_weights_ : numpy.ndarray or None
        The per-row weights the trees were trained on (None: unweighted).
    weights_from_ : WeightingStrategy or None
        The fitted clone of ``weights_from``.
    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    FairGBM : the same trees under group constraints on error rates.

    Examples
    --------
    >>> from fairlib.boosting import LightGBM
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.metrics import demographic_parity_difference
    >>> from fairlib.weighting import Reweighing
    >>> data = make_biased_classification(2000, separation=1.0, group_shift=2.0, seed=0)
    >>> X, y, s = data.X.numpy(), data.y.numpy(), data.group.numpy()
    >>> plain = LightGBM(n_estimators=50).fit(X, y)
    >>> reweighed = LightGBM(n_estimators=50).fit(X, y, s, weights_from=Reweighing())
    >>> plain.predict_proba(X[:3]).shape
    (3, 2)
    >>> reweighed.train_weights_.mean().round(6)
    np.float64(1.0)
    >>> dp = [float(demographic_parity_difference(y, m.predict(X), sensitive_features=s))
    ...       for m in (plain, reweighed)]
    >>> dp[1] < dp[0]
    True
    """

    # The constructor is _BoostedTrees's: exactly the shared parameters.

    def fit(self, X: Any, y: Any, sensitive_features: Any = None, sample_weight: Any = None, *,
            weights_from: WeightingStrategy | None = None) -> LightGBM:
        """Grow ``n_estimators`` trees on ``X``, ``y``; returns ``self``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric features. ``sensitive_features`` are not features: add them to ``X``
            if the trees should see them.
        y : array-like of shape (n_samples,)
            Exactly two classes, of any type; ``classes_[1]`` is the positive one.
        sensitive_features : array-like, optional
            Group of every row (strings, integers, pandas Categorical; several columns are
            crossed). Read only by ``weights_from``; required when it weighs groups.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative prior weights; multiplied by the strategy's weights.
        weights_from : WeightingStrategy, optional
            A static strategy of :mod:`fairlib.weighting` (:class:`~fairlib.weighting.ERM`,
            :class:`~fairlib.weighting.Reweighing`,
            :class:`~fairlib.weighting.GroupUpweighting` with a fixed ``tau``, or a class
            declaring ``static = True``). A clone is set up on the training rows and its
            per-row loss weights (from its ``weights``) become LightGBM's weights.

        Returns
        -------
        LightGBM

        Raises
        ------
        ValueError
            For an invalid hyper-parameter, labels of other than two classes, a dynamic
            strategy (GroupDRO, JTT, ...) or one in ``mode="upsample"``, or a strategy
            that weighs groups without ``sensitive_features``.
        TypeError
            For ``weights_from`` that is not a :class:`~fairlib.weighting.WeightingStrategy`.
        ImportError
            Without ``lightgbm`` (the extra ``fairlib[gbm]``).
        """
        params, rounds = self._engine_params()
        strategy = _check_static(weights_from)
        if strategy is not None:
            _check_groups_given(strategy, sensitive_features)
        lgb = _engine("lightgbm", "LightGBM")
        X, y01, codes = self._data(X, y, sensitive_features)
        weights = as_weights(sample_weight, len(y01), torch.device("cpu"))
        if weights is not None and len(weights) != len(y01):
            raise ValueError(msg_expected("sample_weight", f"{len(y01)} values (one per row of X)",
                                          len(weights)))
        fitted = None
        if strategy is not None:
            fitted = clone(strategy)
            rows = _dataset(X, y01, codes, self.groups_)
            fitted.setup(rows, device="cpu")
            n = len(rows)
            batch = Batch(x=rows.X, y=rows.y.to(torch.int64), group=rows.group.to(torch.int64),
                          index=torch.arange(n))
            zeros = torch.zeros(n, dtype=torch.float64)  # static weights ignore the losses
            w = fitted.weights(batch, zeros, None)  # type: ignore[arg-type]
            weights = w.detach().double() if weights is None else weights * w.detach().double()
        w_np = None if weights is None else weights.cpu().numpy()
        if w_np is not None and not w_np.sum() > 0:
            raise ValueError(msg_expected("sample_weight", "weights with a positive sum",
                                          "all weights zero"))
        self.booster_ = lgb.train(params, lgb.Dataset(X, label=y01, weight=w_np),
                                  num_boost_round=rounds)
        self.train_weights_, self.weights_from_ = w_np, fitted
        return self


class FairGBM(_BoostedTrees):
    """FairGBM: gradient-boosted trees under group constraints on error rates.

    The ``fairgbm`` engine minimises cross-entropy subject to equal group-wise false
    negative rates (``"fnr"``: equal opportunity), false positive rates (``"fpr"``), or
    both (``"fnr,fpr"``: equalized odds), within a tolerance; each round updates the
    trees on a proxy-Lagrangian and the Lagrange multipliers on the true rates. Its
    engine supports neither sample weights nor, therefore, the weights of a strategy.

    Parameters
    ----------
    constraint : {"fnr", "fpr", "fnr,fpr"}, default "fnr"
        The group-wise rates held equal (the engine's ``constraint_type`` ``"FNR"``,
        ``"FPR"``, ``"FPR,FNR"``).
    multiplier_learning_rate : float, default 0.1
        Step of the Lagrange multipliers (larger: the constraint bites sooner, at a cost
        in accuracy and stability).
    constraint_stepwise_proxy : {"cross_entropy", "hinge", "quadratic"}, default "cross_entropy"
        Differentiable proxy of the step function in the constraints (the model player's).
    stepwise_proxy_margin : float, default 1.0
        Margin of that proxy (> 0).
    constraint_fnr_tolerance, constraint_fpr_tolerance : float, default 0.01
        Allowed gap between each group's rate and the largest group rate, in [0, 1).
    score_threshold : float, default 0.5
        Probability threshold at which the constrained rates are counted, in (0, 1).
    n_estimators, learning_rate, num_leaves, max_depth, min_child_samples, subsample, \
colsample_bytree, reg_lambda, num_threads, random_state, engine_params
        As for :class:`LightGBM`.

    Attributes
    ----------
    booster_ : fairgbm.Booster
        The trained trees.
    classes_ : numpy.ndarray
        The two labels; ``classes_[1]`` is the positive class.
    groups_ : numpy.ndarray
        Group names in code order.
    n_features_in_ : int
        Number of features seen in ``fit``.

    See Also
    --------
    LightGBM : the unconstrained trees, optionally reweighted.

    Examples
    --------
    >>> from fairlib.boosting import FairGBM, LightGBM
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.metrics import equal_opportunity_difference
    >>> data = make_biased_classification(2000, separation=1.0, group_shift=2.0, seed=0)
    >>> X, y, s = data.X.numpy(), data.y.numpy(), data.group.numpy()
    >>> fair = FairGBM(constraint="fnr", n_estimators=50).fit(X, y, sensitive_features=s)
    >>> plain = LightGBM(n_estimators=50).fit(X, y)
    >>> fair.predict_proba(X[:3]).shape, fair.groups_.tolist()
    ((3, 2), ['0', '1'])
    >>> eo = [float(equal_opportunity_difference(y, m.predict(X), sensitive_features=s))
    ...       for m in (plain, fair)]
    >>> eo[1] < eo[0]
    True
    """

    _objective = "constrained_cross_entropy"

    def __init__(self, *, constraint: str = "fnr", multiplier_learning_rate: float = 0.1,
                 constraint_stepwise_proxy: str = "cross_entropy",
                 stepwise_proxy_margin: float = 1.0, constraint_fnr_tolerance: float = 0.01,
                 constraint_fpr_tolerance: float = 0.01, score_threshold: float = 0.5,
                 n_estimators: int = 100, learning_rate: float = 0.1, num_leaves: int = 31,
                 max_depth: int = -1, min_child_samples: int = 20, subsample: float = 1.0,
                 colsample_bytree: float = 1.0, reg_lambda: float = 0.0, num_threads: int = 1,
                 random_state: Any = 0, engine_params: dict[str, Any] | None = None) -> None:
        self.constraint = constraint
        self.multiplier_learning_rate = multiplier_learning_rate
        self.constraint_stepwise_proxy = constraint_stepwise_proxy
        self.stepwise_proxy_margin = stepwise_proxy_margin
        self.constraint_fnr_tolerance = constraint_fnr_tolerance
        self.constraint_fpr_tolerance = constraint_fpr_tolerance
        self.score_threshold = score_threshold
        super().__init__(n_estimators=n_estimators, learning_rate=learning_rate,
                         num_leaves=num_leaves, max_depth=max_depth,
                         min_child_samples=min_child_samples, subsample=subsample,
                         colsample_bytree=colsample_bytree, reg_lambda=reg_lambda,
                         num_threads=num_threads, random_state=random_state,
                         engine_params=engine_params)

    def _extra_params(self) -> dict[str, Any]:
        check_choice("constraint", self.constraint, tuple(CONSTRAINTS))
        check_choice("constraint_stepwise_proxy", self.constraint_stepwise_proxy, PROXIES)
        tolerances = {}
        for name in ("constraint_fnr_tolerance", "constraint_fpr_tolerance"):
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 <= value < 1.0:
                raise ValueError(msg_expected(name, "a number in [0, 1)", repr(value)))
            tolerances[name] = float(value)
        t = self.score_threshold
        if not _is_real(t) or not 0.0 < t < 1.0 or math.isnan(t):
            raise ValueError(msg_expected("score_threshold", "a number in (0, 1)", repr(t)))
        return {
            "constraint_type": CONSTRAINTS[self.constraint],
            "multiplier_learning_rate": check_finite_positive("multiplier_learning_rate",
                                                              self.multiplier_learning_rate),
            "constraint_stepwise_proxy": self.constraint_stepwise_proxy,
            "stepwise_proxy_margin": check_finite_positive("stepwise_proxy_margin",
                                                           self.stepwise_proxy_margin),
            "score_threshold": float(t),
            **tolerances,
        }

    def fit(self, X: Any, y: Any, sensitive_features: Any = None,
            sample_weight: Any = None) -> FairGBM:
        """Grow ``n_estimators`` trees under the group constraint; returns ``self``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric features (``sensitive_features`` are not added to them).
        y : array-like of shape (n_samples,)
            Exactly two classes, of any type; ``classes_[1]`` is the positive one.
        sensitive_features : array-like
            Group of every row (strings, integers, pandas Categorical; several columns are
            crossed); at least two groups. Required.
        sample_weight : None
            Must be None: the engine's constrained objective does not support weights
            (fairgbm 0.9.14 stops with "not implemented yet"). Kept for the shared surface.

        Returns
        -------
        FairGBM

        Raises
        ------
        ValueError
            For an invalid hyper-parameter, missing ``sensitive_features`` or fewer than
            two groups, labels of other than two classes, or ``sample_weight``.
        ImportError
            Without ``fairgbm`` (the extra ``fairlib[gbm]``).
        """
        params, rounds = self._engine_params()
        if sensitive_features is None:
            raise ValueError(msg_expected(
                "sensitive_features", "the group of every row: FairGBM constrains group-wise "
                "error rates", "None"))
        if sample_weight is not None:
            raise ValueError(msg_expected(
                "sample_weight", "None: FairGBM's constrained objective does not support "
                "sample weights (use LightGBM(...).fit(..., sample_weight=...) instead)",
                type(sample_weight).__name__))
        fgb = _engine("fairgbm", "FairGBM")
        X, y01, codes = self._data(X, y, sensitive_features)
        if len(self.groups_) < 2:
            raise ValueError(msg_expected("sensitive_features", "at least two groups",
                                          f"one group ({self.groups_[0]!r})"))
        data = fgb.Dataset(X, label=y01, constraint_group=codes.astype(np.int32))
        self.booster_ = fgb.train(params, data, num_boost_round=rounds)
        return self
