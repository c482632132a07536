"""The weighting protocol the training loop calls each step, uniform ERM, and ``clone``.

A strategy follows scikit-learn's contract: the constructor only stores its
arguments, each under its own name (so :meth:`WeightingStrategy.get_params`,
:meth:`WeightingStrategy.set_params` and :func:`clone` work as for an estimator);
:meth:`WeightingStrategy.setup` validates them and creates the learned state
(attributes ending in ``_``) on the model's device. Per step, the loop asks for
per-sample weights, then lets the strategy update its state; per epoch it calls
:meth:`WeightingStrategy.on_epoch_end`. Nothing in ``weights``/``update`` may read a
value back to the host. :func:`fairlib.weighting.check_strategy` checks all of this.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from .._validation import MSG_TYPE, check_device

S = TypeVar("S", bound="WeightingStrategy")


@dataclass(frozen=True)
class Batch:
    """One mini-batch as the training loop sees it (all tensors on the device).

    Attributes
    ----------
    x : torch.Tensor
        Features ``[B, ...]``.
    y : torch.Tensor
        Labels in {0, 1}, int64 ``[B]``.
    group : torch.Tensor
        Code of the active sensitive attribute, int64 ``[B]``.
    index : torch.Tensor
        Position of each sample in the training set, int64 ``[B]`` (for per-sample state).
    """

    x: torch.Tensor
    y: torch.Tensor
    group: torch.Tensor
    index: torch.Tensor


def resolve_setup_device(device: object, model: nn.Module | None) -> torch.device:
    """The device of a strategy's state: ``"auto"`` follows the model, else see check_device.

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting.base import resolve_setup_device
    >>> resolve_setup_device("auto", torch.nn.Linear(2, 1))
    device(type='cpu')
    """
    if isinstance(device, str) and device == "auto" and model is not None:
        for p in model.parameters():
            return p.device
    return check_device("device", device)


class WeightingStrategy:
    """Base class: uniform weights, no sampler, no state (that is, ERM).

    Subclasses override what they need:

    * ``check_params()``: validate the hyper-parameters (``setup`` calls it first);
    * ``setup(train, meta, model, device, generator)``: validate arguments, build state;
    * ``sampler()``: a ``torch.utils.data.Sampler`` for the training loader, or None;
    * ``weights(batch, losses, model)``: per-sample weights ``[B]``, detached, >= 0;
    * ``update(batch, losses, model)``: state update after the optimiser step;
    * ``on_epoch_end(epoch, model)``: per-epoch update (e.g. FairBatch's lambdas);
    * ``diagnostics()``: small tensors worth logging (e.g. group weights);
    * ``state_dict()`` / ``load_state_dict()``: every learned ``_`` tensor.

    The loss the loop minimises is ``mean(weights * losses)``.

    As in scikit-learn, ``__init__`` only stores each argument under its own name (all
    but the first keyword-only; no validation, no learned state), which gives
    :meth:`get_params`, :meth:`set_params`, :func:`clone` and the ``repr`` for free.
    :func:`~fairlib.weighting.check_strategy` checks a subclass against all of this.

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting import WeightingStrategy, check_strategy
    >>> class Halve(WeightingStrategy):
    ...     def __init__(self, factor=0.5):
    ...         self.factor = factor
    ...     def weights(self, batch, losses, model):
    ...         return torch.full_like(losses, self.factor)
    >>> Halve().set_params(factor=0.25)
    Halve(factor=0.25)
    >>> check_strategy(Halve())
    """

    requires_meta: bool = False
    #: When True, ``weights`` receives the batch losses still attached to the model's
    #: graph, so a lookahead can reuse the loop's forward pass instead of running its
    #: own; such a strategy must retain that graph and keep no reference to the losses.
    needs_graph: bool = False
    #: Deprecated constructor keywords: ``old name -> (new name, old value -> new value)``.
    #: They are accepted by ``__init__`` (through ``**deprecated``) and by
    #: :meth:`set_params`, translated, and announced with a ``FutureWarning``;
    #: :meth:`get_params` reports the new names only.
    _deprecated_params: ClassVar[dict[str, tuple[str, Callable[[Any], Any]]]] = {}

    # -- scikit-learn's estimator API ---------------------------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Names of the constructor's parameters, in signature order (``**kwargs`` excluded)."""
        init = cls.__init__
        if init is object.__init__:
            return []
        params = list(inspect.signature(init).parameters.values())[1:]  # without self
        names = []
        for p in params:
            if p.kind is p.VAR_POSITIONAL:
                raise TypeError(
                    f"Expected the constructor of {cls.__name__} to take no *args (scikit-learn's "
                    f"convention: every parameter is named), but got *{p.name}.")
            if p.kind is not p.VAR_KEYWORD:
                names.append(p.name)
        return names

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, read back from the attributes of the same names.

        Parameters
        ----------
        deep : bool, default True
            Also list the parameters of arguments that have ``get_params`` (e.g. a wrapped
            strategy), as ``name__param``.

        Returns
        -------
        dict
            Parameter name to value, in the constructor's order.

        Examples
        --------
        >>> from fairlib.weighting import GroupDRO
        >>> GroupDRO(eta_q=0.1).get_params()
        {'eta_q': 0.1, 'adj_C': 0.0, 'groups': 'group_label'}
        """
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            try:
                value = getattr(self, name)
            except AttributeError:
                raise AttributeError(
                    f"Expected {type(self).__name__} to store its constructor argument "
                    f"`{name}` as the attribute `{name}` (scikit-learn's convention), but it "
                    "has no such attribute.") from None
            out[name] = value
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
        return out

    def set_params(self: S, **params: Any) -> S:
        """Set constructor parameters (no validation: :meth:`setup` validates); returns ``self``.

        ``name__param`` sets a parameter of an argument that has ``set_params``. Deprecated
        spellings are translated to the current ones with a ``FutureWarning``.

        Raises
        ------
        ValueError
            For a name that is not a parameter, naming it and the valid ones.

        Examples
        --------
        >>> from fairlib.weighting import GroupDRO
        >>> GroupDRO().set_params(eta_q=0.5, groups="group")
        GroupDRO(eta_q=0.5, adj_C=0.0, groups='group')
        """
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if not sep and name in self._deprecated_params:
                self._apply_deprecated({name: value}, explicit=params)
                continue
            if name not in valid or (sep and not hasattr(valid[name], "set_params")):
                listed = ", ".join(f"`{k}`" for k in self._get_param_names()) or "none"
                raise ValueError(MSG_TYPE.format(
                    name=key, expected=f"a parameter of {type(self).__name__} ({listed})",
                    got="no such parameter"))
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def _apply_deprecated(self, given: dict[str, Any],
                          explicit: dict[str, Any] | None = None) -> None:
        """Translate deprecated keywords ``given`` into their new parameters (FutureWarning).

        Called by ``__init__`` with its ``**deprecated`` (after storing the current
        arguments; ``explicit=None``) and by :meth:`set_params` (``explicit``: all the
        keywords of the call). A new parameter also passed (in ``__init__``: away from
        its default) with another value than the translated one is a ``TypeError``: the
        call would be ambiguous.
        """
        cls = type(self)
        for old, value in given.items():
            if old not in cls._deprecated_params:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {old!r}")
            new, translate = cls._deprecated_params[old]
            converted = translate(value)
            if explicit is None:
                current = getattr(self, new)
                clash = current != inspect.signature(cls.__init__).parameters[new].default
            else:
                current = explicit.get(new)
                clash = new in explicit
            if clash and current != converted:
                raise TypeError(
                    f"{cls.__name__}() got both `{new}={current!r}` and the deprecated "
                    f"`{old}={value!r}` (which means `{new}={converted!r}`); pass `{new}` only.")
            warnings.warn(
                f"{cls.__name__}: `{old}` is deprecated and will be removed; use `{new}` instead "
                f"(`{old}={value!r}` is `{new}={converted!r}`).", FutureWarning, stacklevel=3)
            setattr(self, new, converted)

    # -- the training protocol ----------------------------------------------------------
    def check_params(self: S) -> S:
        """Validate the hyper-parameters, without data; returns ``self``.

        Raises ``ValueError``/``TypeError`` naming the first bad parameter (a non-finite
        or out-of-range number, a wrong type, an unknown choice). :meth:`setup` calls it
        first and :func:`fairlib.train.fit` calls it before any work, so a bad value
        never trains. The constructor does not (scikit-learn's convention: ``__init__``
        and :meth:`set_params` only store). Subclasses with parameters override it.

        Examples
        --------
        >>> from fairlib.weighting import GroupDRO
        >>> GroupDRO(eta_q=float("inf")).check_params()
        Traceback (most recent call last):
        ...
        ValueError: Expected `eta_q` to be a non-negative step size, but got inf.
        """
        return self

    def setup(
        self,
        train: Any,
        *,
        meta: Any = None,
        model: nn.Module | None = None,
        device: torch.device | str = "auto",
        generator: torch.Generator | None = None,
    ) -> WeightingStrategy:
        """Prepare the state for training on ``train``; returns ``self``.

        Validates the hyper-parameters first
        (:meth:`~fairlib.weighting.WeightingStrategy.check_params`). ``device="auto"``
        (the default) is the device of ``model``'s parameters when a model is given, else
        CUDA when available, else the CPU; a device this machine does not have raises
        ``ValueError`` naming ``device``.
        """
        self.check_params()
        if self.requires_meta and (meta is None or len(meta) == 0):
            raise ValueError(
                f"Expected `meta` to be a non-empty held-out dataset for {type(self).__name__}, "
                f"but got {'None' if meta is None else 'an empty dataset'}."
            )
        self.device_ = resolve_setup_device(device, model)
        return self

    def sampler(self) -> torch.utils.data.Sampler | None:
        """The sampler of the training loader (None: shuffle uniformly)."""
        return None

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """Per-sample weights for this batch; uniform here."""
        return torch.ones_like(losses)

    def update(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> None:
        """Update the state after the optimiser step; nothing here."""

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Per-epoch hook; nothing here."""

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """Values worth recording in the training history (tensors, read once per epoch)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Every learned attribute (name ending in ``_``), by reference (as ``torch``'s).

        The state of a strategy passed as a parameter (a wrapper's inner strategy) is
        included as ``name__attribute_``.
        """
        out = {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}
        for name, value in self._nested_strategies().items():
            out.update((f"{name}__{k}", v) for k, v in value.state_dict().items())
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore learned attributes saved by :meth:`state_dict`.

        The values are copied (``copy.deepcopy``: tensors, lists, held-out batch sources
        with their generators), so two strategies never share state: training one does
        not change the other. Call it after :meth:`setup`, which builds the state that
        is not learned (group codes, samplers).
        """
        nested = self._nested_strategies()
        own: dict[str, Any] = {}
        inner: dict[str, dict[str, Any]] = {}
        for key, value in state.items():
            name, sep, sub = key.partition("__")
            if sep and name in nested:
                inner.setdefault(name, {})[sub] = value
            elif not key.endswith("_") or key.startswith("_"):
                raise ValueError(f"Expected learned attributes ending in '_', but got {key!r}.")
            else:
                own[key] = value
        for key, value in copy.deepcopy(own).items():
            setattr(self, key, value)
        for name, sub_state in inner.items():
            nested[name].load_state_dict(sub_state)

    def _nested_strategies(self) -> dict[str, WeightingStrategy]:
        try:
            params = self.get_params(deep=False)
        except (AttributeError, TypeError):
            return {}
        return {k: v for k, v in params.items() if isinstance(v, WeightingStrategy)}

    def __repr__(self) -> str:
        try:
            params = self.get_params(deep=False)
        except (AttributeError, TypeError):  # a subclass that breaks the convention
            params = {k: v for k, v in vars(self).items()
                      if not k.endswith("_") and not k.startswith("_")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def clone(strategy: S) -> S:
    """A new, unfitted strategy with the same parameters (scikit-learn's ``clone``).

    Parameters are deep-copied (a wrapped strategy is cloned), so changing a mutable
    argument of the clone leaves the original alone; no learned state (``_``
    attributes, a JTT error set) is carried over.

    Parameters
    ----------
    strategy : WeightingStrategy

    Returns
    -------
    WeightingStrategy
        Of the same class, built from ``strategy.get_params(deep=False)``.

    Raises
    ------
    TypeError
        If ``strategy`` is not a :class:`WeightingStrategy`.
    RuntimeError
        If the constructor does not store its arguments as given.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.weighting import Cooldown, GroupBalancedSampling, clone
    >>> bs = GroupBalancedSampling(tau=Cooldown(tau=5.0, switch_at=2), groups="group")
    >>> _ = bs.setup(make_biased_classification(100, seed=0))
    >>> twin = clone(bs)
    >>> twin
    GroupBalancedSampling(tau=Cooldown(tau=5.0, switch_at=2, final_tau=1.0, unit='epoch'), groups='group')
    >>> twin.get_params() == bs.get_params(), hasattr(twin, "group_counts_")
    (True, False)
    """
    if not isinstance(strategy, WeightingStrategy):
        raise TypeError(MSG_TYPE.format(name="strategy", expected="a WeightingStrategy",
                                        got=type(strategy).__name__))
    params = {k: clone(v) if isinstance(v, WeightingStrategy) else copy.deepcopy(v)
              for k, v in strategy.get_params(deep=False).items()}
    new = type(strategy)(**params)
    stored = new.get_params(deep=False)
    for name, value in params.items():
        if stored[name] is not value:
            raise RuntimeError(
                f"Cannot clone {type(strategy).__name__}: its constructor does not store "
                f"`{name}` as given (got {stored[name]!r} for {value!r}); constructors must "
                "only store their arguments.")
    return new


class ERM(WeightingStrategy):
    """Empirical risk minimisation: every sample weighs 1.

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting import ERM
    >>> ERM().weights(None, torch.tensor([0.3, 1.2]), None)
    tensor([1., 1.])
    """
