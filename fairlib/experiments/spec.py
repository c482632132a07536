"""A run as data: :class:`RunSpec`, its stable identity, and grids of specs."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from .._validation import MSG_TYPE

Params = tuple[tuple[str, Any], ...]

#: Training settings of :func:`fairlib.train.fit` a spec may set, with their defaults here.
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "device": "auto",
}


def _freeze(value: Any, name: str) -> Any:
    """A hashable, JSON-friendly copy: lists become tuples, dicts sorted item tuples."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(MSG_TYPE.format(name=name, expected="finite numbers", got=repr(value)))
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v, name) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v, f"{name}.{k}")) for k, v in value.items()))
    # numpy scalars and the like
    if hasattr(value, "item") and callable(value.item):
        return _freeze(value.item(), name)
    raise TypeError(MSG_TYPE.format(name=name, expected="plain data (numbers, strings, bools, None, "
                                    "lists and dicts of them)", got=type(value).__name__))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def freeze_params(params: Mapping[str, Any] | Params | None, name: str) -> Params:
    """Parameters as sorted ``(name, value)`` tuples (hashable, order-independent)."""
    if params is None:
        return ()
    if isinstance(params, tuple):
        params = dict(params)
    if not isinstance(params, Mapping):
        raise TypeError(MSG_TYPE.format(name=name, expected="a dict of parameters",
                                        got=type(params).__name__))
    for key in params:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(MSG_TYPE.format(name=name, expected="parameter names that are identifiers",
                                             got=repr(key)))
    return tuple(sorted((k, _freeze(v, f"{name}.{k}")) for k, v in params.items()))




@dataclass(frozen=True)
class RunSpec:
    """One run: what data, which model, which method, how to train, which seed.

    Dicts given for the parameters are stored as sorted tuples, so a spec is hashable
    and two specs with the same content are equal whatever the order of their keys.

    Parameters
    ----------
    dataset : str
        A name in the dataset registry (:func:`~fairlib.experiments.registry.datasets`).
    model : str
        A name in the model registry.
    method : str
        A name in the method registry (a weighting strategy).
    seed : int
        Seeds the split, the model's initialisation, the data order and the strategy.
    dataset_params, model_params, method_params : dict
        Keyword arguments of the factories.
    train : dict
        Settings of :func:`fairlib.train.fit` (``epochs``, ``batch_size``, ``optimizer``,
        ``lr``, ``weight_decay``, ``device``); unset ones take :data:`TRAIN_DEFAULTS`.
    tags : dict
        Free labels copied into the record (e.g. ``stage="tune"``); part of the identity.
    metrics : sequence of str
        Names of extra metrics (registered with :func:`~fairlib.experiments.register_metric`)
        computed on the trained run and added to its record, e.g. a chapter's audit.

    Examples
    --------
    >>> from fairlib.experiments import RunSpec
    >>> a = RunSpec("synthetic", "logistic", "ERM", seed=0, train={"epochs": 2, "lr": 0.05})
    >>> b = RunSpec("synthetic", "logistic", "ERM", seed=0, train={"lr": 0.05, "epochs": 2})
    >>> a == b, a.run_id == b.run_id, len(a.run_id)
    (True, True, 16)
    """

    dataset: str
    model: str
    method: str
    seed: int = 0
    dataset_params: Params = ()
    model_params: Params = ()
    method_params: Params = ()
    train: Params = ()
    tags: Params = field(default=())
    metrics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("dataset", "model", "method"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise TypeError(MSG_TYPE.format(name=name, expected="a registered name (a string)",
                                                got=repr(value)))
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(MSG_TYPE.format(name="seed", expected="a non-negative integer",
                                             got=repr(self.seed)))
        for f in ("dataset_params", "model_params", "method_params", "train", "tags"):
            object.__setattr__(self, f, freeze_params(getattr(self, f), f))
        metrics = self.metrics
        if isinstance(metrics, str) or not isinstance(metrics, Iterable) or not all(
                isinstance(m, str) and m for m in metrics):
            raise TypeError(MSG_TYPE.format(name="metrics", expected="a list of registered metric names",
                                            got=repr(metrics)))
        object.__setattr__(self, "metrics", tuple(dict.fromkeys(metrics)))
        unknown = sorted(set(dict(self.train)) - set(TRAIN_DEFAULTS))
        if unknown:
            raise ValueError(MSG_TYPE.format(name="train", expected=f"settings among {sorted(TRAIN_DEFAULTS)}",
                                             got=f"unknown {unknown}"))
        # Defaults are stored explicitly: a spec that spells out a default equals one that doesn't.
        object.__setattr__(self, "train", freeze_params({**TRAIN_DEFAULTS, **dict(self.train)}, "train"))

    @property
    def train_settings(self) -> dict[str, Any]:
        """The full training settings: defaults overlaid with the spec's own."""
        return dict(self.train)

    def to_dict(self) -> dict[str, Any]:
        """The specification as nested plain data (what the identity hashes)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, tuple) and f.name != "metrics" else value
        out["train"] = self.train_settings
        if not self.metrics:  # specs without extra metrics keep the run ids they always had
            del out["metrics"]
        return out

    @property
    def run_id(self) -> str:
        """A stable hash of the full specification and the fairlib version."""
        import fairlib

        blob = json.dumps({"spec": self.to_dict(), "fairlib": fairlib.__version__},
                          sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def flat(self) -> dict[str, Any]:
        """One flat row of the parameters: ``dataset``, ``dataset.<param>``, ..., ``seed``.

        List and dict values become JSON text so each column keeps one type. The
        ``spec`` column holds the whole spec as JSON, so :meth:`from_record` rebuilds it
        exactly even after a table has turned an integer column into floats.
        """
        row: dict[str, Any] = {"run_id": self.run_id, "spec": self.to_json(), "dataset": self.dataset,
                               "model": self.model, "method": self.method, "seed": self.seed}
        groups = (("dataset", self.dataset_params), ("model", self.model_params),
                  ("method", self.method_params), ("train", tuple(self.train_settings.items())),
                  ("tag", self.tags))
        for prefix, params in groups:
            for key, value in params:
                row[f"{prefix}.{key}"] = json.dumps(value) if isinstance(value, tuple) else value
        return row

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RunSpec:
        """The spec a flat record (or a row of a results table) was made from.

        Missing values (NaN or None, as in a column another method filled) are left out.

        Examples
        --------
        >>> from fairlib.experiments import RunSpec
        >>> spec = RunSpec("synthetic", "mlp", "FORML", seed=3, model_params={"hidden": [8]},
        ...                method_params={"meta_lr": 0.5})
        >>> RunSpec.from_record(spec.flat()) == spec
        True
        """
        text = record.get("spec")
        if isinstance(text, str) and text.startswith("{"):
            return cls.from_json(text)
        fields_: dict[str, dict[str, Any]] = {"dataset_params": {}, "model_params": {},
                                              "method_params": {}, "train": {}, "tags": {}}
        target = {"dataset": "dataset_params", "model": "model_params", "method": "method_params",
                  "train": "train", "tag": "tags"}
        for key, value in record.items():
            prefix, _, name = str(key).partition(".")
            if not name or prefix not in target or _missing(value):
                continue
            if isinstance(value, str) and value[:1] in "[{":
                value = json.loads(value)
            fields_[target[prefix]][name] = value
        try:
            return cls(str(record["dataset"]), str(record["model"]), str(record["method"]),
                       seed=int(record["seed"]), **fields_)
        except KeyError as err:
            raise ValueError(MSG_TYPE.format(name="record", expected="a record with dataset, model, "
                                             "method and seed", got=f"no {err}")) from None

    def to_json(self) -> str:
        """The spec as JSON text (integers stay integers); :meth:`from_json` reads it back."""
        params = {name: dict(getattr(self, name)) for name in
                  ("dataset_params", "model_params", "method_params", "train", "tags")}
        extra = {"metrics": list(self.metrics)} if self.metrics else {}
        return json.dumps({"dataset": self.dataset, "model": self.model, "method": self.method,
                           "seed": self.seed, **params, **extra}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        """The spec :meth:`to_json` wrote.

        Examples
        --------
        >>> from fairlib.experiments import RunSpec
        >>> spec = RunSpec("adult", "logistic", "JTT", method_params={"up_weight": 5})
        >>> RunSpec.from_json(spec.to_json()) == spec
        True
        """
        data = json.loads(text)
        return cls(data.pop("dataset"), data.pop("model"), data.pop("method"), seed=int(data.pop("seed")),
                   **data)

    def replace(self, **changes: Any) -> RunSpec:
        """A copy with some fields changed (dicts replace the whole field)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}  # metrics included
        return RunSpec(**{**current, **changes})


def grid(
    *,
    datasets: Sequence[str | tuple[str, Mapping[str, Any]]],
    models: Sequence[str | tuple[str, Mapping[str, Any]]],
    methods: Sequence[str | tuple[str, Mapping[str, Any]]],
    seeds: Iterable[int],
    train: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> list[RunSpec]:
    """Every combination of datasets, models, methods and seeds, as specs.

    Each entry is a name or ``(name, params)``; a method listed several times with
    different parameters gives several configurations.

    Examples
    --------
    >>> from fairlib.experiments import grid
    >>> specs = grid(datasets=["synthetic"], models=["logistic"],
    ...              methods=["ERM", ("GroupDRO", {"eta_q": 0.1})], seeds=range(3))
    >>> len(specs), specs[-1].method, dict(specs[-1].method_params)
    (6, 'GroupDRO', {'eta_q': 0.1})
    """
    def entries(values: Sequence[Any], name: str) -> list[tuple[str, Mapping[str, Any]]]:
        if isinstance(values, str) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(MSG_TYPE.format(name=name, expected="a non-empty list of names or (name, params)",
                                             got=repr(values)))
        out = []
        for v in values:
            if isinstance(v, str):
                out.append((v, {}))
            elif isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], Mapping):
                out.append((v[0], v[1]))
            else:
                raise ValueError(MSG_TYPE.format(name=name, expected="names or (name, params) pairs",
                                                 got=repr(v)))
        return out

    seeds = list(seeds)
    if not seeds:
        raise ValueError(MSG_TYPE.format(name="seeds", expected="at least one seed", got="none"))
    return [
        RunSpec(d, m, k, seed=s, dataset_params=dp, model_params=mp, method_params=kp,
                train=dict(train or {}), tags=dict(tags or {}))
        for (d, dp), (m, mp), (k, kp), s in itertools.product(
            entries(datasets, "datasets"), entries(models, "models"), entries(methods, "methods"), seeds)
    ]
