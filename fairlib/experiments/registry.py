"""Names to objects: datasets, models and methods a :class:`~fairlib.experiments.RunSpec` uses.

Each registry maps a name to a factory. Users add their own with the ``register_*``
functions (as decorators or calls); a name registered twice raises unless ``replace=True``.

- dataset factory: ``factory(*, seed, **params) -> Splits`` (train, meta, test);
- model factory: ``factory(train, *, seed, **params) -> torch.nn.Module`` (one logit per row),
  or a gradient-boosted-trees estimator of :mod:`fairlib.boosting` (``"lightgbm"``, trained
  with the weights of a static method; ``"fairgbm"``, method ERM), fitted in one go;
- method factory: ``factory(**params) -> WeightingStrategy``; an optional ``prepare``
  hook ``prepare(strategy, make_model, train, fit_kwargs, **stage_params)`` runs before
  training (JTT's first stage), taking the method parameters listed in ``stage_params``;
  an optional ``regularizer`` factory (e.g. :class:`~fairlib.regularizers.FERMI`) builds
  the penalty :func:`~fairlib.train.fit` adds to the loss, taking the method parameters
  listed in ``regularizer_params`` (method ``"FERMI"`` is ERM with FERMI's penalty);

The process and Ray backends rebuild objects from names inside the workers, so a factory
registered by the user must live in an importable module (not in a notebook cell) for
those backends: :func:`~fairlib.experiments.run_study` refuses one defined in ``__main__``
before running. The serial backend has no such restriction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._validation import MSG_TYPE

DatasetFactory = Callable[..., Any]
ModelFactory = Callable[..., Any]


@dataclass(frozen=True)
class MethodEntry:
    """A method's strategy factory, the optional stage run before training and the
    optional regulariser added to the loss."""

    factory: Callable[..., Any]
    prepare: Callable[..., Any] | None = None
    stage_params: tuple[str, ...] = ()
    regularizer: Callable[..., Any] | None = None
    regularizer_params: tuple[str, ...] = ()

    def build(self, params: Mapping[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
        """``(strategy, regularizer or None, stage params)`` from a spec's method parameters,
        each checked (``check_params``) before anything trains."""
        params = dict(params)
        stage = {k: params.pop(k) for k in self.stage_params if k in params}
        reg_params = {k: params.pop(k) for k in self.regularizer_params if k in params}
        strategy = self.factory(**params)
        regularizer = self.regularizer(**reg_params) if self.regularizer is not None else None
        for obj in (strategy, regularizer):
            if hasattr(obj, "check_params"):
                obj.check_params()
        return strategy, regularizer, stage


_DATASETS: dict[str, DatasetFactory] = {}
_MODELS: dict[str, ModelFactory] = {}
_METHODS: dict[str, MethodEntry] = {}
_METRICS: dict[str, Callable[..., Any]] = {}


def _register(table: dict[str, Any], kind: str, name: str, value: Any, replace: bool) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(MSG_TYPE.format(name="name", expected=f"a non-empty {kind} name", got=repr(name)))
    if name in table and not replace:
        raise ValueError(MSG_TYPE.format(name="name", expected=f"a {kind} name not yet registered "
                                         "(or replace=True)", got=repr(name)))
    table[name] = value


def register_dataset(name: str, factory: DatasetFactory | None = None, *, replace: bool = False) -> Any:
    """Register ``factory(*, seed, **params) -> Splits`` under ``name`` (usable as a decorator).

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.experiments.registry import register_dataset, datasets
    >>> @register_dataset("tiny_doc_example", replace=True)
    ... def tiny(*, seed, n=200):
    ...     return make_biased_classification(n, seed=seed).split(seed=seed)
    >>> "tiny_doc_example" in datasets()
    True
    """
    if factory is None:
        return lambda f: register_dataset(name, f, replace=replace) or f
    _register(_DATASETS, "dataset", name, factory, replace)
    return factory


def register_model(name: str, factory: ModelFactory | None = None, *, replace: bool = False) -> Any:
    """Register ``factory(train, *, seed, **params) -> nn.Module`` under ``name``."""
    if factory is None:
        return lambda f: register_model(name, f, replace=replace) or f
    _register(_MODELS, "model", name, factory, replace)
    return factory


def register_method(name: str, factory: Callable[..., Any] | None = None, *,
                    prepare: Callable[..., Any] | None = None, stage_params: Sequence[str] = (),
                    regularizer: Callable[..., Any] | None = None,
                    regularizer_params: Sequence[str] = (), replace: bool = False) -> Any:
    """Register ``factory(**params) -> WeightingStrategy`` under ``name``.

    ``regularizer(**params)`` (a :class:`~fairlib.regularizers.Regularizer` class or
    factory) adds its penalty to the loss; the method parameters named in
    ``regularizer_params`` go to it, the rest to ``factory``.

    Examples
    --------
    >>> from fairlib.experiments import RunSpec, execute, register_method
    >>> from fairlib.regularizers import FERMI
    >>> from fairlib.weighting import Reweighing
    >>> _ = register_method("Reweighing+FERMI_doc_example", Reweighing, regularizer=FERMI,
    ...                     regularizer_params=("target", "lam"), replace=True)
    >>> spec = RunSpec("synthetic", "logistic", "Reweighing+FERMI_doc_example", dataset_params={"n": 300},
    ...                method_params={"lam": 2.0}, train={"epochs": 1, "device": "cpu"})
    >>> execute(spec)["status"]
    'ok'
    """
    if factory is None:
        return lambda f: register_method(name, f, prepare=prepare, stage_params=stage_params,
                                         regularizer=regularizer, regularizer_params=regularizer_params,
                                         replace=replace) or f
    for kind, names in (("stage_params", stage_params), ("regularizer_params", regularizer_params)):
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError(MSG_TYPE.format(name=kind, expected="a list of parameter names",
                                            got=repr(names)))
    if regularizer_params and regularizer is None:
        raise ValueError(MSG_TYPE.format(name="regularizer", expected="a regulariser factory when "
                                         "regularizer_params are given", got="None"))
    entry = MethodEntry(factory, prepare, tuple(stage_params), regularizer, tuple(regularizer_params))
    _register(_METHODS, "method", name, entry, replace)
    return factory


def register_metric(name: str, fn: Callable[..., Any] | None = None, *, replace: bool = False) -> Any:
    """Register ``fn(run: TrainedRun) -> dict[str, float]`` under ``name`` (usable as a decorator).

    A spec listing ``name`` in its ``metrics`` gets ``fn``'s values added to its record,
    computed on the trained run (model, strategy and splits) in the worker that trained it.

    Examples
    --------
    >>> from fairlib.experiments import RunSpec, execute, register_metric
    >>> @register_metric("largest_cell_weight_doc_example", replace=True)
    ... def largest_cell_weight(run):
    ...     return {"largest_cell_weight": float(run.strategy.cell_weights_.max())}
    >>> spec = RunSpec("synthetic", "logistic", "Reweighing", dataset_params={"n": 300},
    ...                train={"epochs": 1, "device": "cpu"}, metrics=["largest_cell_weight_doc_example"])
    >>> execute(spec)["largest_cell_weight"] > 1
    True
    """
    if fn is None:
        return lambda f: register_metric(name, f, replace=replace) or f
    _register(_METRICS, "metric", name, fn, replace)
    return fn


def _lookup(table: dict[str, Any], kind: str, name: str) -> Any:
    if name not in table:
        raise ValueError(MSG_TYPE.format(name=kind, expected=f"one of {sorted(table)}", got=repr(name)))
    return table[name]


def get_dataset(name: str) -> DatasetFactory:
    """The dataset factory registered as ``name``."""
    return _lookup(_DATASETS, "dataset", name)


def get_model(name: str) -> ModelFactory:
    """The model factory registered as ``name``."""
    return _lookup(_MODELS, "model", name)


def get_method(name: str) -> MethodEntry:
    """The method entry registered as ``name``."""
    return _lookup(_METHODS, "method", name)


def get_metric(name: str) -> Callable[..., Any]:
    """The extra metric registered as ``name``."""
    return _lookup(_METRICS, "metric", name)


def datasets() -> list[str]:
    """Registered dataset names."""
    return sorted(_DATASETS)


def models() -> list[str]:
    """Registered model names."""
    return sorted(_MODELS)


def methods() -> list[str]:
    """Registered method names."""
    return sorted(_METHODS)


# -- built-in datasets ----------------------------------------------------------------------
def _split(data: Any, seed: int, split: Sequence[float], meta_balanced: Any, n: int | None) -> Any:
    if n is not None and n < len(data):
        import torch

        rows = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
        data = data.subset(rows.sort().values)
    train, meta, test = split
    return data.split(train, meta, test, seed=seed, meta_balanced=meta_balanced)


@functools.lru_cache(maxsize=8)
def _tabular(name: str, sensitive: Any) -> Any:
    from .. import datasets as ds

    loader = {"adult": ds.load_adult, "compas": ds.load_compas, "german": ds.load_german,
              "census_kdd": ds.load_census_kdd}[name]
    return loader(sensitive=list(sensitive) if isinstance(sensitive, tuple) else sensitive)


def _tabular_factory(name: str) -> DatasetFactory:
    def factory(*, seed: int, sensitive: Any = None, n: int | None = None,
                split: Sequence[float] = (0.6, 0.2, 0.2), meta_balanced: Any = False) -> Any:
        default = {"compas": "race"}.get(name, "sex")
        data = _tabular(name, sensitive if sensitive is not None else default)
        return _split(data, seed, split, meta_balanced, n)

    factory.__name__ = f"load_{name}_splits"
    factory.__doc__ = (f"``load_{name}`` (cached per process), optionally ``n`` seeded rows, split "
                       "``split`` with ``seed``.")
    return factory


def _synthetic(*, seed: int, n: int = 2000, split: Sequence[float] = (0.6, 0.2, 0.2),
               meta_balanced: Any = False, **params: Any) -> Any:
    """``make_biased_classification(n, seed=seed, **params)`` split with ``seed``."""
    from ..datasets import make_biased_classification

    return _split(make_biased_classification(n, seed=seed, **params), seed, split, meta_balanced, None)


def _colored_digits(*, seed: int, eval_cells: bool = False, **params: Any) -> Any:
    """``make_colored_digits(seed=seed, **params)``: its own train / meta / test strengths.

    ``eval_cells=True`` scores the meta and test splits by (colour, label) cell
    (:meth:`~fairlib.datasets.FairDataset.cell_view`), so ``worst_group_accuracy`` is the
    worst cell's; training still sees the colours.
    """
    from ..datasets import make_colored_digits

    splits = make_colored_digits(seed=seed, **params)
    if eval_cells:
        return splits._replace(meta=splits.meta.cell_view(), test=splits.test.cell_view())
    return splits


# -- built-in models ------------------------------------------------------------------------
def _features(train: Any) -> int:
    """Inputs per row; images are flattened (the linear models and the MLP flatten them too)."""
    if train.X.ndim < 2:
        raise ValueError(MSG_TYPE.format(name="dataset", expected="features of shape [N, ...]",
                                         got=f"X of shape {tuple(train.X.shape)}"))
    return int(train.X[0].numel())


def _logistic(train: Any, *, seed: int) -> Any:
    from ..train import LogisticRegression

    return LogisticRegression(_features(train), seed=seed)


def _mlp(train: Any, *, seed: int, hidden: Sequence[int] = (64, 64), dropout: float = 0.0) -> Any:
    from ..train import MLP

    return MLP(_features(train), tuple(hidden), dropout=dropout, seed=seed)


def _cnn(train: Any, *, seed: int, width: int = 16) -> Any:
    from ..train import SmallCNN

    return SmallCNN(int(train.X.shape[1]), width, seed=seed)


# -- built-in methods -----------------------------------------------------------------------
def _lightgbm(train: Any, *, seed: int, **params: Any) -> Any:
    from ..boosting import LightGBM

    return LightGBM(random_state=seed, **params)


def _fairgbm(train: Any, *, seed: int, **params: Any) -> Any:
    from ..boosting import FairGBM

    return FairGBM(random_state=seed, **params)


def _strategy(cls_name: str) -> Callable[..., Any]:
    def factory(**params: Any) -> Any:
        from .. import weighting

        return getattr(weighting, cls_name)(**params)

    factory.__name__ = cls_name
    return factory


def _influence_drop(**params: Any) -> Any:
    """:class:`~fairlib.influence.InfluenceDrop`: training without the rows the infinitesimal
    jackknife picks (after a first stage fitted to convergence, :func:`_ij_stage1`)."""
    from ..influence import InfluenceDrop

    return InfluenceDrop(**params)


def _ij_stage1(strategy: Any, make_model: Callable[[], Any], train: Any, fit_kwargs: dict[str, Any]) -> None:
    """FairIJDrop's first stage: a fresh model fitted to convergence on the training split."""
    strategy.fit_influence_model(make_model(), train)


def _fermi(**params: Any) -> Any:
    """:class:`~fairlib.regularizers.FERMI` (imported when a run uses it)."""
    from ..regularizers import FERMI

    return FERMI(**params)


def _jtt_stage1(strategy: Any, make_model: Callable[[], Any], train: Any, fit_kwargs: dict[str, Any],
                *, stage1_epochs: int = 1) -> None:
    """JTT's first stage: ERM for ``stage1_epochs`` epochs, then its error set."""
    from ..train import fit

    stage1 = make_model()
    fit(stage1, train, **{**fit_kwargs, "epochs": stage1_epochs, "meta": None, "test": None})
    strategy.identify_errors(stage1, train)


def _cooldown(*, tau: float = 5.0, switch_at: int = 1, final_tau: float = 1.0,
              groups: str = "group_label") -> Any:
    """Group-balanced sampling on the Cooldown schedule: ``tau`` for ``switch_at`` epochs,
    then ``final_tau`` (the paper switches half-way through training)."""
    from ..weighting import Cooldown, GroupBalancedSampling

    return GroupBalancedSampling(tau=Cooldown(tau, switch_at=switch_at, final_tau=final_tau), groups=groups)


for _name, _factory in (("synthetic", _synthetic), ("colored_digits", _colored_digits)):
    register_dataset(_name, _factory)
for _name in ("adult", "compas", "german", "census_kdd"):
    register_dataset(_name, _tabular_factory(_name))
for _name, _factory in (("logistic", _logistic), ("mlp", _mlp), ("cnn", _cnn), ("lightgbm", _lightgbm),
                        ("fairgbm", _fairgbm)):
    register_model(_name, _factory)
for _name in ("ERM", "Reweighing", "GroupUpweighting", "GroupBalancedSampling", "GroupDRO", "FairBatch",
              "KLDRO", "FEBS", "FIS", "L2RW", "FORML", "LossShaping"):
    register_method(_name, _strategy(_name))
register_method("JTT", _strategy("JTT"), prepare=_jtt_stage1, stage_params=("stage1_epochs",))
register_method("FairIJDrop", _influence_drop, prepare=_ij_stage1)
register_method("FERMI", _strategy("ERM"), regularizer=_fermi, regularizer_params=("target", "lam", "lr_w"))
register_method("Cooldown", _cooldown)
