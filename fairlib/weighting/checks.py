"""Common checks every weighting strategy must pass: :func:`check_strategy`.

The counterpart of scikit-learn's ``check_estimator`` for the weighting protocol of
:mod:`fairlib.weighting.base`. The checks run in this order and stop at the first
failure, raising :class:`StrategyCheckError` (an ``AssertionError``) that names the
strategy, the check and what was found:

1. ``signature``: no ``*args``; every constructor parameter after the first is
   keyword-only;
2. ``constructor``: the constructor only stores its arguments, under their own names
   (any value is accepted, the very objects are kept, no learned ``_`` attribute);
3. ``params``: ``get_params`` lists the constructor's parameters, ``set_params`` returns
   the strategy and rejects an unknown name with a ``ValueError`` naming the valid ones;
   ``check_params`` accepts the strategy's parameters and returns it unchanged;
4. ``clone``: :func:`~fairlib.weighting.clone` gives another, unfitted object of the same
   class with equal parameters (mutable ones copied);
5. ``setup``: on a small dataset (by default ``make_biased_classification(200, seed=0)``
   split into train / meta, with a :class:`~fairlib.train.LogisticRegression`) ``setup``
   returns the strategy, creates learned state and leaves the parameters alone. A
   strategy with a first stage (``identify_errors``, as :class:`~fairlib.weighting.JTT`,
   also when wrapped) gets it from a model trained for one epoch;
6. ``weights``: for a few batches (drawn through the strategy's sampler if it has one),
   the weights have the batch's shape, the losses' dtype and device, no gradient, and
   are finite and >= 0; ``update``, ``on_epoch_end`` and ``diagnostics`` run;
7. ``no host sync``: ``weights`` and ``update`` run no operation that reads a value back
   to the host or whose output size depends on data (``.item()``, ``float()``,
   ``bool()``, ``.tolist()``, ``torch.tensor(host data)``, boolean-mask indexing,
   ``nonzero``, ``unique``...), recorded with a ``TorchDispatchMode`` as in
   ``tests/test_metrics_no_sync.py``. Samplers may read from the host: they run once per
   epoch, outside this check;
8. ``same seed``: two fresh clones set up with the same ``torch.Generator`` seed draw the
   same batches and give identical weights and learned state;
9. ``state_dict``: a clone set up and loaded with ``state_dict()`` gives the same weights
   on the next batch and the same state after the next update, without sharing state.

The strategy passed in is never modified: every check works on clones.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import inspect
import itertools
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .._validation import MSG_TYPE
from .base import Batch, WeightingStrategy, clone

__all__ = ["HostSyncRecorder", "StrategyCheckError", "check_strategy"]

#: Operations that read a value back to the host (``.item()``, ``float()``, ``bool()``,
#: ``.tolist()`` dispatch to ``_local_scalar_dense``; ``torch.equal`` returns a Python
#: bool), copy host data into a tensor (``lift_fresh``), or have an output size that
#: depends on the data (a device must finish before the host knows it).
SYNC_OPS = frozenset({
    "_local_scalar_dense", "item", "equal", "is_nonzero", "allclose",
    "lift_fresh", "lift_fresh_copy",
    "nonzero", "argwhere", "masked_select", "_unique", "_unique2", "unique_dim",
    "unique_consecutive", "unique_dim_consecutive", "bincount",
})
_INDEX_OPS = frozenset({"index", "index_put", "index_put_", "_index_put_impl_"})
#: Tensor methods that hand data to the host. On a CPU tensor some of them (``.tolist()``,
#: ``.numpy()``, ``.cpu()``) run no aten op at all, so they are caught one level up.
HOST_READS = frozenset({"tolist", "numpy", "item", "cpu", "__bool__", "__float__", "__int__",
                        "__index__", "__complex__"})


class StrategyCheckError(AssertionError):
    """A strategy failed one of the checks of :func:`check_strategy`."""


class _HostReads(TorchFunctionMode):
    """The tensor-method level of :class:`HostSyncRecorder` (``.tolist()``, ``bool(t)``...)."""

    def __init__(self, owner: HostSyncRecorder) -> None:
        super().__init__()
        self.owner = owner

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            self.owner.syncs.append(f"Tensor.{name}")
        return func(*args, **(kwargs or {}))


class HostSyncRecorder(TorchDispatchMode):
    """Record every aten op run inside the ``with`` block, and those that sync with the host.

    ``syncs`` lists the ops of :data:`SYNC_OPS`, boolean-mask indexing,
    ``repeat_interleave`` without ``output_size`` and the tensor methods of
    :data:`HOST_READS` (seen through a ``TorchFunctionMode``, since on the CPU
    ``.tolist()`` runs no aten op); ``foreign`` lists tensors that are not on ``device``
    (a hidden device move).

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting.checks import HostSyncRecorder
    >>> x = torch.ones(3)
    >>> with HostSyncRecorder("cpu") as rec:
    ...     _ = x * 2
    ...     _ = float(x.sum())
    >>> rec.syncs
    ['Tensor.__float__', '_local_scalar_dense.default']
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.device = torch.device(device)
        self.ops: list[str] = []
        self.syncs: list[str] = []
        self.foreign: list[str] = []
        self._functions = _HostReads(self)

    def __enter__(self) -> HostSyncRecorder:
        super().__enter__()
        self._functions.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._functions.__exit__(*exc)
        super().__exit__(*exc)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = func.__name__
        packet = func.overloadpacket.__name__
        self.ops.append(name)
        if packet in SYNC_OPS:
            self.syncs.append(name)
        elif packet in _INDEX_OPS and len(args) > 1 and any(
                isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
                for i in (args[1] or ())):
            self.syncs.append(f"{name} (boolean mask)")
        elif packet == "repeat_interleave" and kwargs.get("output_size") is None and (
                name.endswith("Tensor") or isinstance(
                    args[1] if len(args) > 1 else kwargs.get("repeats"), torch.Tensor)):
            self.syncs.append(f"{name} (no output_size)")
        out = func(*args, **kwargs)
        for t in tree_flatten((args, kwargs, out))[0]:
            if isinstance(t, torch.Tensor) and t.dim() > 0 and t.device != self.device:
                self.foreign.append(f"{name} on {t.device}")
        dev = kwargs.get("device")
        if dev is not None and torch.device(dev) != self.device:
            self.foreign.append(f"{name} to {dev}")
        return out


# -- helpers ------------------------------------------------------------------------------
class _Marker:
    """A distinct object per parameter: a constructor that only stores must keep it as is."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<marker for {self.name}>"


def _immutable(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, range,
                                           torch.device, torch.dtype, enum.Enum, type)):
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(_immutable(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        frozen = type(value).__dataclass_params__.frozen  # type: ignore[attr-defined]
        fields = dataclasses.fields(value)
        return frozen and all(_immutable(getattr(value, f.name)) for f in fields)
    return False


def _equal(a: Any, b: Any) -> bool:
    """Equality for parameters and learned state: tensors exactly (NaN equal to NaN),
    containers and plain objects recursively, functions by code and closure."""
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
            return False
        if a.is_floating_point() or a.is_complex():
            return bool(((a == b) | (a.isnan() & b.isnan())).all())
        return torch.equal(a, b)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, torch.Generator) and isinstance(b, torch.Generator):
        return a.device == b.device and torch.equal(a.get_state(), b.get_state())
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if inspect.isfunction(a):
        cells_a = [c.cell_contents for c in a.__closure__ or ()]
        cells_b = [c.cell_contents for c in b.__closure__ or ()]
        return a.__code__ is b.__code__ and _equal(cells_a, cells_b)
    if isinstance(a, (str, bytes, int, bool, complex, torch.device, torch.dtype, type(None))):
        return a == b
    if hasattr(a, "__dict__") and not isinstance(a, (nn.Module, type)):
        if dataclasses.is_dataclass(a):
            return a == b
        return _equal(vars(a), vars(b))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an object without a usable ==
        return False


def _fail(label: str, check: str, detail: str) -> StrategyCheckError:
    return StrategyCheckError(f"{label} failed the check '{check}': {detail}")


def _two_stage(s: WeightingStrategy) -> list[WeightingStrategy]:
    """The strategy and wrapped strategies that need a first stage (``identify_errors``)."""
    found = [s] if callable(getattr(s, "identify_errors", None)) else []
    for value in s.get_params(deep=False).values():
        if isinstance(value, WeightingStrategy):
            found += _two_stage(value)
    return found


def _learned(strategy: WeightingStrategy) -> list[str]:
    return [k for k in vars(strategy) if k.endswith("_") and not k.startswith("_")]


# -- 1-4: the estimator contract ------------------------------------------------------------
def _check_signature(s: WeightingStrategy, label: str) -> list[str]:
    cls = type(s)
    try:
        names = cls._get_param_names()
    except TypeError as err:
        raise _fail(label, "signature", str(err)) from None
    if cls.__init__ is object.__init__:
        return names
    params = [p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
              if p.kind is not p.VAR_KEYWORD]
    positional = [p.name for p in params[1:] if p.kind is not p.KEYWORD_ONLY]
    if positional:
        raise _fail(label, "signature",
                    f"every constructor parameter after the first must be keyword-only, but "
                    f"{', '.join(f'`{n}`' for n in positional)} can be passed by position "
                    "(add `*` after the first parameter).")
    return names


def _check_constructor(s: WeightingStrategy, names: list[str], label: str) -> None:
    cls = type(s)
    markers = {n: _Marker(n) for n in names}
    try:
        fresh = cls(**markers)
    except Exception as err:  # noqa: BLE001 - any exception means it did more than store
        raise _fail(label, "constructor",
                    f"the constructor must only store its arguments (validation belongs in "
                    f"setup), but {cls.__name__}(**stand-ins) raised {err!r}.") from err
    for n, m in markers.items():
        if getattr(fresh, n, None) is not m:
            raise _fail(label, "constructor",
                        f"the constructor must store `{n}` unchanged as the attribute `{n}`, but "
                        f"it holds {getattr(fresh, n, '<nothing>')!r}.")
    params = s.get_params(deep=False)
    again = cls(**params)
    for n, v in params.items():
        if getattr(again, n) is not v:
            raise _fail(label, "constructor",
                        f"`{n}` must be stored as passed, but {getattr(again, n)!r} is not the "
                        f"object {v!r} that was passed.")
    extra = [k for k in vars(again) if not k.startswith("_") and k not in names]
    if extra:
        learned = [k for k in extra if k.endswith("_")]
        what = "learned attributes (ending in `_`) before setup" if learned else \
            "attributes that are not constructor parameters"
        raise _fail(label, "constructor", f"the constructor set {what}: {sorted(extra)}.")


def _check_params(s: WeightingStrategy, names: list[str], label: str) -> None:
    params = s.get_params(deep=False)
    if list(params) != names:
        raise _fail(label, "params", f"get_params(deep=False) returned {list(params)}, not the "
                    f"constructor's parameters {names}.")
    deep = s.get_params(deep=True)
    if any(deep[n] is not params[n] for n in names):
        raise _fail(label, "params", "get_params(deep=True) must include every parameter as is.")
    text = repr(s)
    if not text.startswith(f"{type(s).__name__}("):
        raise _fail(label, "params", f"repr should read `{type(s).__name__}(...)`, got {text!r}.")
    c = clone(s)
    if c.set_params() is not c or c.set_params(**c.get_params(deep=False)) is not c:
        raise _fail(label, "params", "set_params must return the strategy itself.")
    if not _equal(c.get_params(deep=False), params):
        raise _fail(label, "params", "set_params(**get_params()) changed the parameters.")
    try:
        checked = c.check_params()
    except (ValueError, TypeError) as err:
        raise _fail(label, "params", f"check_params() refused the strategy's own parameters: "
                    f"{err}") from None
    if checked is not c or not _equal(c.get_params(deep=False), params):
        raise _fail(label, "params", "check_params() must return the strategy itself and leave "
                    "its parameters alone.")
    try:
        c.set_params(no_such_parameter=1)
    except ValueError as err:
        missing = [n for n in names if n not in str(err)]
        if "no_such_parameter" not in str(err) or missing:
            raise _fail(label, "params", f"the ValueError for an unknown parameter must name it "
                        f"and the valid ones {names}; got {str(err)!r}.") from None
    else:
        raise _fail(label, "params", "set_params(no_such_parameter=1) raised no ValueError.")


def _check_clone(s: WeightingStrategy, label: str) -> None:
    try:
        c = clone(s)
    except Exception as err:  # noqa: BLE001
        raise _fail(label, "clone", f"clone raised {err!r}.") from err
    if c is s or type(c) is not type(s):
        raise _fail(label, "clone", "clone must return a new object of the same class.")
    pa, pc = s.get_params(deep=False), c.get_params(deep=False)
    for n, v in pa.items():
        if not _equal(v, pc[n]):
            raise _fail(label, "clone", f"the clone has {n}={pc[n]!r}, the original {v!r}.")
        if not _immutable(v) and pc[n] is v:
            raise _fail(label, "clone", f"the clone shares the mutable parameter `{n}` ({v!r}) "
                        "with the original; it must be a copy.")
    if _learned(c):
        raise _fail(label, "clone", f"the clone is not unfitted: it has {_learned(c)}.")
    if repr(c) != repr(s):
        raise _fail(label, "clone", f"repr differs: {repr(c)!r} vs {repr(s)!r}.")


# -- 5-9: the protocol on data ----------------------------------------------------------------
class _Setting:
    """Data, model and stage-1 model shared by the runs of one check."""

    def __init__(self, s: WeightingStrategy, train: Any, meta: Any, model: nn.Module | None,
                 label: str) -> None:
        from ..datasets import make_biased_classification

        if train is None:
            splits = make_biased_classification(200, seed=0).split(seed=0)
            train = splits.train
            meta = splits.meta if meta is None else meta
        if s.requires_meta and (meta is None or len(meta) == 0):
            raise ValueError(MSG_TYPE.format(
                name="meta", expected=f"a non-empty held-out dataset for {type(s).__name__}",
                got="None" if meta is None else "an empty dataset"))
        self.train, self.meta = train, meta
        self.device = train.X.device
        if model is None:
            from ..train import LogisticRegression

            if train.X.dim() != 2:
                raise ValueError(MSG_TYPE.format(
                    name="model", expected="a model for features of shape "
                    f"{tuple(train.X.shape[1:])} (the default is a logistic regression on "
                    "flat features)", got="None"))
            model = LogisticRegression(train.X.shape[1], seed=0)
        else:
            model = copy.deepcopy(model)
        self.model = model.to(self.device)
        self.model.train()
        self.stage1: nn.Module | None = None
        if _two_stage(s):
            from ..train import fit

            self.stage1 = copy.deepcopy(self.model)
            fit(self.stage1, train, epochs=1, lr=0.05, seed=0, device=self.device, progress=False)
        self.label = label

    def prepare(self, s: WeightingStrategy, seed: int) -> WeightingStrategy:
        """First stage (if any), then setup; checks what setup must do."""
        label = self.label
        for target in _two_stage(s):
            try:
                target.identify_errors(self.stage1, self.train)  # type: ignore[attr-defined]
            except Exception as err:  # noqa: BLE001
                raise _fail(label, "setup", f"identify_errors raised {err!r}.") from err
        before = s.get_params(deep=False)
        snapshot = copy.deepcopy({k: v for k, v in before.items()
                                  if not isinstance(v, WeightingStrategy)})
        gen = torch.Generator().manual_seed(seed)
        try:
            out = s.setup(self.train, meta=self.meta, model=self.model, device=self.device,
                          generator=gen)
        except Exception as err:  # noqa: BLE001
            raise _fail(label, "setup", f"setup raised {err!r}.") from err
        if out is not s:
            raise _fail(label, "setup", f"setup must return the strategy itself, got {out!r}.")
        after = s.get_params(deep=False)
        for n, v in before.items():
            if after[n] is not v or (n in snapshot and not _equal(snapshot[n], v)):
                raise _fail(label, "setup", f"setup must not change the parameter `{n}` "
                            f"(was {before[n]!r}, now {after[n]!r}); keep derived values in "
                            "attributes ending in `_`.")
        if not _learned(s):
            raise _fail(label, "setup", "setup created no learned attribute (ending in `_`).")
        self.generator = gen
        return s

    def order(self, s: WeightingStrategy, n: int) -> torch.Tensor:
        """The first ``n`` training rows the loop would see (the sampler's, or shuffled)."""
        sampler = s.sampler()
        if sampler is None:
            return torch.randperm(len(self.train), generator=self.generator)[:n]
        rows = torch.as_tensor(list(itertools.islice(iter(sampler), n)), dtype=torch.int64)
        if len(rows) == 0 or bool((rows < 0).any()) or bool((rows >= len(self.train)).any()):
            raise _fail(self.label, "weights", f"the sampler drew rows outside [0, "
                        f"{len(self.train)}): {rows[:10].tolist()}...")
        return rows

    def batch(self, rows: torch.Tensor) -> Batch:
        idx = rows.to(self.device)
        t = self.train
        return Batch(t.X[idx], t.y[idx].to(torch.int64), t.group[idx].to(torch.int64),
                     t.index[idx])

    def step(self, s: WeightingStrategy, batch: Batch,
             recorder: HostSyncRecorder | None = None) -> torch.Tensor:
        """One training step as ``fit`` runs it (without the optimiser): weights, update."""
        losses = F.binary_cross_entropy_with_logits(self.model(batch.x), batch.y.to(torch.float32),
                                                    reduction="none")
        given = losses if s.needs_graph else losses.detach()
        with recorder if recorder is not None else _nothing():
            w = s.weights(batch, given, self.model)
        self.validate(w, given)
        if given.requires_grad:  # the loop backpropagates through its own graph afterwards
            (w.detach() * losses).mean().backward()
            self.model.zero_grad(set_to_none=True)
        with recorder if recorder is not None else _nothing():
            s.update(batch, losses.detach(), self.model)
        return w.detach().clone()

    def validate(self, w: Any, losses: torch.Tensor) -> None:
        label = self.label
        if not isinstance(w, torch.Tensor):
            raise _fail(label, "weights", f"weights must return a tensor, got {type(w).__name__}.")
        if w.shape != losses.shape:
            raise _fail(label, "weights", f"weights have shape {tuple(w.shape)}, the batch "
                        f"{tuple(losses.shape)}.")
        if w.dtype != losses.dtype or w.device != losses.device:
            raise _fail(label, "weights", f"weights are {w.dtype} on {w.device}, the losses "
                        f"{losses.dtype} on {losses.device}.")
        if w.requires_grad:
            raise _fail(label, "weights", "weights must be detached (requires_grad=True).")
        if not bool(torch.isfinite(w).all()):
            raise _fail(label, "weights", f"weights must be finite, got {w.tolist()}.")
        if not bool((w >= 0).all()):
            raise _fail(label, "weights", f"weights must be >= 0, got {w.tolist()}.")

    def run(self, s: WeightingStrategy, seed: int, n_batches: int, batch_size: int,
            record: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Set up, then ``n_batches`` steps and an epoch end; returns rows and weights."""
        self.prepare(s, seed)
        rows = self.order(s, n_batches * batch_size)
        recorder = HostSyncRecorder(self.device) if record else None
        weights = [self.step(s, self.batch(rows[k:k + batch_size]), recorder)
                   for k in range(0, len(rows), batch_size)]
        if recorder is not None:
            if recorder.syncs:
                raise _fail(self.label, "no host sync",
                            "weights/update synchronise with the host: "
                            f"{sorted(set(recorder.syncs))} (keep them on the device: "
                            "torch.where instead of `if`, no .item() or .tolist(), no "
                            "boolean-mask indexing).")
            if recorder.foreign:
                raise _fail(self.label, "no host sync",
                            f"weights/update moved tensors off {self.device}: "
                            f"{sorted(set(recorder.foreign))[:5]}.")
            if not recorder.ops:
                raise _fail(self.label, "no host sync", "the recorder saw no operation at all.")
        try:
            s.on_epoch_end(1, self.model)
            diag = s.diagnostics()
        except Exception as err:  # noqa: BLE001
            raise _fail(self.label, "weights",
                        f"on_epoch_end/diagnostics raised {err!r}.") from err
        if not isinstance(diag, dict) or not all(
                isinstance(k, str) and isinstance(v, (torch.Tensor, int, float))
                for k, v in diag.items()):
            raise _fail(self.label, "weights", "diagnostics must be a dict of names to tensors "
                        f"or numbers, got {diag!r}.")
        return rows, weights


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def check_strategy(strategy: WeightingStrategy, *, train: Any = None, meta: Any = None,
                   model: nn.Module | None = None, n_batches: int = 3,
                   batch_size: int = 32) -> None:
    """Run the common checks of the weighting protocol on ``strategy``; raise on the first failure.

    See the module docstring for the list. ``strategy`` itself is not modified (the
    checks use clones), so an already set-up strategy can be checked as well.

    Parameters
    ----------
    strategy : WeightingStrategy
        The strategy to check, with the parameters to check it with.
    train, meta : FairDataset, optional
        Data to set it up on. Default: ``make_biased_classification(200, seed=0)`` split
        with ``.split(seed=0)`` into train and meta. ``meta`` is required (non-empty)
        for a strategy with ``requires_meta``.
    model : torch.nn.Module, optional
        The model the strategy sees (copied; default: a logistic regression on the
        features). A strategy with a first stage gets a copy trained for one epoch.
    n_batches, batch_size : int
        How many batches of which size the weights are checked on.

    Raises
    ------
    StrategyCheckError
        An ``AssertionError`` naming the strategy, the failed check and what was found.
    TypeError, ValueError
        For a ``strategy`` that is no WeightingStrategy, or missing data.

    Examples
    --------
    >>> from fairlib.weighting import GroupDRO, JTT, check_strategy
    >>> check_strategy(GroupDRO(eta_q=0.1))
    >>> check_strategy(JTT(mode="upweight"))  # its first stage is run by the check
    >>> from fairlib.weighting import WeightingStrategy
    >>> class Bad(WeightingStrategy):
    ...     def __init__(self, tau=1.0):
    ...         self.tau = float(tau)  # converts: not "only stores"
    >>> check_strategy(Bad())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fairlib.weighting.checks.StrategyCheckError: Bad(tau=1.0) failed the check 'constructor': ...
    """
    if not isinstance(strategy, WeightingStrategy):
        raise TypeError(MSG_TYPE.format(name="strategy", expected="a WeightingStrategy",
                                        got=type(strategy).__name__))
    label = repr(strategy)
    untouched = dict(vars(strategy))

    names = _check_signature(strategy, label)
    _check_constructor(strategy, names, label)
    _check_params(strategy, names, label)
    _check_clone(strategy, label)

    setting = _Setting(strategy, train, meta, model, label)
    first = clone(strategy)
    rows_a, weights_a = setting.run(first, 0, n_batches, batch_size, record=True)

    second = clone(strategy)
    rows_b, weights_b = setting.run(second, 0, n_batches, batch_size, record=False)
    if not torch.equal(rows_a, rows_b):
        raise _fail(label, "same seed", "two clones set up with the same generator seed drew "
                    "different batches.")
    for k, (wa, wb) in enumerate(zip(weights_a, weights_b)):
        if not _equal(wa, wb):
            raise _fail(label, "same seed", f"two clones with the same seed gave different "
                        f"weights on batch {k}: {wa.tolist()} vs {wb.tolist()}.")
    _same_state(first, second, label, "same seed", "two clones with the same seed")

    # state_dict round trip into a fresh clone
    loaded = clone(strategy)
    setting.prepare(loaded, 0)
    try:
        loaded.load_state_dict(first.state_dict())
    except Exception as err:  # noqa: BLE001
        raise _fail(label, "state_dict", f"load_state_dict raised {err!r}.") from err
    _same_state(first, loaded, label, "state_dict", "the original and the loaded clone")
    rows = torch.randperm(len(setting.train), generator=torch.Generator().manual_seed(1))
    batch = setting.batch(rows[:batch_size])
    w_first = setting.step(first, batch)
    w_loaded = setting.step(loaded, batch)
    if not _equal(w_first, w_loaded):
        raise _fail(label, "state_dict", "after load_state_dict the clone gives other weights "
                    f"on the next batch: {w_loaded.tolist()} vs {w_first.tolist()}.")
    _same_state(first, loaded, label, "state_dict",
                "the original and the loaded clone after one more step")

    if vars(strategy).keys() != untouched.keys() or any(
            vars(strategy)[k] is not v for k, v in untouched.items()):
        raise _fail(label, "clone", "check_strategy modified the strategy it was given.")


def _same_state(a: WeightingStrategy, b: WeightingStrategy, label: str, check: str,
                who: str) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        raise _fail(label, check, f"{who} have different learned attributes: "
                    f"{sorted(sa.keys() ^ sb.keys())}.")
    for k in sa:
        if not _equal(sa[k], sb[k]):
            raise _fail(label, check, f"{who} differ in the learned attribute `{k}`.")
