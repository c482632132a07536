"""Group upweighting vs group-balanced sampling, with a temperature schedule (Cooldown).

Temperature sampling (Li et al., "Upsample or Upweight?", arXiv 2410.04579, §9 of
methods.md) gives group ``g`` of size ``n_g`` the share

    p(g; tau) = n_g^(1/tau) / sum_h n_h^(1/tau),

so ``tau = 1`` is the natural frequency and ``tau = inf`` is uniform over groups (fully
balanced). The same target is reached two ways:

* :class:`GroupBalancedSampling` draws samples with probability ``p(g; tau) / n_g`` and
  leaves the loss unweighted (the paper's *temperature sampling*);
* :class:`GroupUpweighting` shuffles uniformly and weighs each sample by
  ``w_g = p(g; tau) / p(g; 1) = p(g; tau) N / n_g`` (the paper's *scalarization*; at
  ``tau = inf`` this is the classical inverse-group-frequency upweighting, mean weight 1).

Both give the same full-batch gradient (in expectation over the sampler); under SGD the
sampler has the lower gradient variance (the paper's Theorems 1-2). :class:`Cooldown`
switches from a high temperature to ``tau = 1`` after a chosen number of epochs or steps.

Groups with no training sample get probability 0 (and a warning naming them).
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.utils.data import Sampler

from .._validation import MSG_TYPE
from ._common import (
    GROUP_MODES,
    EpochSampler,
    GroupsMode,
    SamplingMode,
    cell_codes,
    cell_names,
    check_choice,
    check_number,
    check_train,
    effective_sample_size,
    make_generator,
    n_cells,
    warn_empty,
)
from .base import Batch, WeightingStrategy

__all__ = ["Cooldown", "GroupBalancedSampling", "GroupUpweighting", "temperature_probabilities"]


@dataclass(frozen=True)
class Cooldown:
    """Temperature schedule: ``tau`` for ``switch_at`` epochs (or steps), then ``final_tau``.

    The paper's Cooldown uses ``tau = 5`` and then ``tau = 1`` from half-way through
    training; a decreasing schedule beat an increasing one there.

    Every field after ``tau`` is keyword-only.

    Parameters
    ----------
    tau : float, default 5.0
        Temperature at the start (``math.inf``: fully balanced).
    switch_at : int, default 1
        Completed epochs (``unit="epoch"``) or optimiser steps (``unit="step"``) after
        which ``final_tau`` applies.
    final_tau : float, default 1.0
        Temperature after the switch (1: natural frequencies).
    unit : {"epoch", "step"}, default "epoch"
        What ``switch_at`` counts. With ``"step"`` a sampler switches in the middle of an
        epoch: indices not yet handed to the loader are redrawn (exact with the default
        ``num_workers=0``; worker prefetching delays it by the prefetched batches).

    Examples
    --------
    >>> from fairlib.weighting import Cooldown
    >>> schedule = Cooldown(tau=5.0, switch_at=2)
    >>> [schedule(epoch, step=0) for epoch in range(4)]
    [5.0, 5.0, 1.0, 1.0]
    """

    tau: float = 5.0
    _: KW_ONLY
    switch_at: int = 1
    final_tau: float = 1.0
    unit: Literal["epoch", "step"] = "epoch"

    def __call__(self, epoch: int, step: int) -> float:
        """Temperature after ``epoch`` completed epochs and ``step`` completed steps."""
        done = epoch if self.unit == "epoch" else step
        return float(self.tau if done < self.switch_at else self.final_tau)

    def check(self) -> None:
        """Validate the fields (called by the strategies' ``setup``)."""
        _check_tau("Cooldown.tau", self.tau)
        _check_tau("Cooldown.final_tau", self.final_tau)
        s = self.switch_at
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(MSG_TYPE.format(name="Cooldown.switch_at",
                                             expected="a non-negative integer", got=repr(s)))
        check_choice("Cooldown.unit", self.unit, ("epoch", "step"))


def _check_tau(name: str, tau: object) -> float:
    return check_number(name, tau, low=0.0, low_open=True, allow_inf=True,
                        expected="a positive number (math.inf for fully balanced)")


def _probabilities(counts: torch.Tensor, tau: float) -> torch.Tensor:
    present = counts > 0
    logits = torch.where(present, counts.clamp_min(1).to(torch.float64).log() / tau,
                         torch.full_like(counts, -math.inf, dtype=torch.float64))
    return torch.softmax(logits, dim=0)


def temperature_probabilities(counts: torch.Tensor, tau: float) -> torch.Tensor:
    """Group shares ``p(g; tau) = n_g^(1/tau) / sum_h n_h^(1/tau)`` (0 for empty groups).

    Computed as a softmax of ``log(n_g) / tau``, so small temperatures do not overflow.

    Parameters
    ----------
    counts : torch.Tensor
        Group sizes ``[G]``.
    tau : float
        Temperature > 0; ``math.inf`` gives the uniform share over non-empty groups.

    Returns
    -------
    torch.Tensor
        float64 ``[G]`` summing to 1, on the device of ``counts``.

    Examples
    --------
    >>> import math, torch
    >>> from fairlib.weighting import temperature_probabilities
    >>> counts = torch.tensor([300, 100, 0])
    >>> temperature_probabilities(counts, 1.0)
    tensor([0.7500, 0.2500, 0.0000], dtype=torch.float64)
    >>> temperature_probabilities(counts, math.inf)
    tensor([0.5000, 0.5000, 0.0000], dtype=torch.float64)
    """
    _check_tau("tau", tau)
    if not bool((counts >= 0).all()) or not bool((counts > 0).any()):
        raise ValueError(MSG_TYPE.format(name="counts",
                                         expected="non-negative with at least one positive",
                                         got=counts.tolist()))
    return _probabilities(counts, float(tau))


class _GroupTemperature(WeightingStrategy):
    """Both temperature strategies: group codes, counts, schedule, weights and sampler.

    ``mode`` selects how the target shares are reached: ``"upweight"`` (loss weights
    ``w_g``, uniform shuffling) or ``"upsample"`` (a sampler, unweighted loss). It is
    fixed by the public subclass, whose name says which one it is, rather than being a
    constructor argument: ``GroupUpweighting(mode="upsample")`` would contradict itself.
    """

    #: ``"upweight"`` or ``"upsample"``: fixed by each subclass, not a parameter.
    mode: ClassVar[SamplingMode]

    def __init__(self, tau: float | Cooldown = math.inf, *,
                 groups: GroupsMode = "group_label") -> None:
        self.tau = tau
        self.groups = groups

    def check_params(self) -> Any:
        """Validate ``tau`` (a number or a :class:`Cooldown`) and ``groups``."""
        if isinstance(self.tau, Cooldown):
            self.tau.check()
        else:
            _check_tau("tau", self.tau)
        check_choice("groups", self.groups, GROUP_MODES)
        return self

    def setup(self, train: Any, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto", generator: torch.Generator | None = None) -> Any:
        """Validate ``tau`` and ``groups``; count the training groups."""
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        name = type(self).__name__
        check_train(train, name)
        n = n_cells(train.n_groups, self.groups)
        codes = cell_codes(train.y.to(torch.int64), train.group.to(torch.int64), self.groups).cpu()
        self.group_counts_ = torch.bincount(codes, minlength=n).to(self.device_)
        warn_empty(self.group_counts_, cell_names(train, self.groups), name,
                   "they get probability 0.")
        self._codes = codes
        self._n = len(train)
        self._cache: tuple[float, torch.Tensor] | None = None
        self._generator = make_generator(generator)
        self.epochs_done_ = 0
        self.steps_done_ = 0
        return self

    def current_tau(self) -> float:
        """The temperature in force now (a Python float: no device read)."""
        if isinstance(self.tau, Cooldown):
            return self.tau(self.epochs_done_, self.steps_done_)
        return float(self.tau)

    def group_probabilities(self, tau: float | None = None) -> torch.Tensor:
        """``p(g; tau)`` over the groups (default: the current temperature), on the device."""
        tau = self.current_tau() if tau is None else tau
        if self._cache is None or self._cache[0] != tau:
            self._cache = (tau, _probabilities(self.group_counts_, tau))
        return self._cache[1]

    def group_weights(self, tau: float | None = None) -> torch.Tensor:
        """``w_g = p(g; tau) N / n_g`` (0 for empty groups), on the device."""
        p = self.group_probabilities(tau)
        return torch.where(self.group_counts_ > 0, p * self._n / self.group_counts_.clamp_min(1),
                           torch.zeros_like(p))

    def sample_probabilities(self, tau: float | None = None) -> torch.Tensor:
        """Per-sample draw probabilities ``p(g_i; tau) / n_{g_i}`` ``[N]`` (CPU, float64)."""
        p = self.group_probabilities(tau).cpu()
        counts = self.group_counts_.cpu().clamp_min(1).to(torch.float64)
        return (p / counts)[self._codes]

    def _draw(self, n: int) -> list[int]:
        probs = self.sample_probabilities()
        return torch.multinomial(probs, n, replacement=True, generator=self._generator).tolist()

    def sampler(self) -> Sampler | None:
        """``mode="upsample"``: ``N`` draws per epoch, the rest redrawn when ``tau`` switches."""
        if self.mode != "upsample":
            return None
        return EpochSampler(self._draw, lambda: self._n, self.current_tau)

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """``mode="upweight"``: the weight of each sample's group; ones when upsampling."""
        if self.mode == "upsample":
            return torch.ones_like(losses)
        return self.group_weights()[cell_codes(batch.y, batch.group, self.groups)].to(losses.dtype)

    def update(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> None:
        """Count the step (for step-based schedules)."""
        self.steps_done_ += 1

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Count the epoch (for epoch-based schedules)."""
        self._epoch_tau = self.current_tau()
        self.epochs_done_ += 1

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """``tau`` in force at the end of the epoch and the shares ``group_probabilities``."""
        tau = getattr(self, "_epoch_tau", self.current_tau())
        return {"tau": torch.tensor(tau), "group_probabilities": self.group_probabilities(tau)}


class GroupUpweighting(_GroupTemperature):
    """Uniform shuffling with group weights ``w_g = p(g; tau) N / n_g`` (mean weight 1).

    At ``tau = inf`` (the default) every group carries the same total weight: the
    classical inverse-group-frequency upweighting ("UW" in Sagawa et al.).

    The ``"upweight"`` side of the pair (``mode == "upweight"``, a class attribute);
    :class:`GroupBalancedSampling` is the ``"upsample"`` side with the same parameters.

    Parameters
    ----------
    tau : float or Cooldown, default math.inf
        Temperature, or a :class:`Cooldown` schedule. Must be > 0.
    groups : {"group_label", "group"}, default "group_label"
        Balance the (group, label) cells, or the groups of the active attribute.

    Attributes
    ----------
    group_counts_ : torch.Tensor
        Training-set size of each group ``[G]``.
    epochs_done_, steps_done_ : int
        Completed epochs and steps (what a :class:`Cooldown` counts).

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, fit
    >>> from fairlib.weighting import GroupUpweighting
    >>> data = make_biased_classification(400, seed=0)
    >>> uw = GroupUpweighting()
    >>> hist = fit(LogisticRegression(2, seed=0), data, strategy=uw, epochs=2, progress=False)
    >>> uw.group_probabilities()
    tensor([0.2500, 0.2500, 0.2500, 0.2500], dtype=torch.float64)
    >>> hist.last("tau")
    inf
    """

    mode: ClassVar[SamplingMode] = "upweight"

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """``tau``, ``group_probabilities`` and the training set's ``effective_sample_size``."""
        out = super().diagnostics()
        w = self.group_weights(float(out["tau"]))
        out["effective_sample_size"] = effective_sample_size(w, counts=self.group_counts_).to(w.dtype)
        return out


class GroupBalancedSampling(_GroupTemperature):
    """Temperature sampling: draw ``N`` samples per epoch with probability ``p(g; tau) / n_g``.

    The loss is unweighted; the loader's batches are balanced in expectation. Draws are
    with replacement from the generator ``fit`` passes to :meth:`setup`, so a seed
    reproduces them. The ``"upsample"`` side of the pair (``mode == "upsample"``, a class
    attribute); :class:`GroupUpweighting` is the ``"upweight"`` side.

    Parameters
    ----------
    tau : float or Cooldown, default math.inf
        Temperature, or a :class:`Cooldown` schedule (e.g. ``Cooldown(5.0, switch_at=3)``).
    groups : {"group_label", "group"}, default "group_label"
        Balance the (group, label) cells, or the groups of the active attribute.

    Attributes
    ----------
    group_counts_ : torch.Tensor
        Training-set size of each group ``[G]``.
    epochs_done_, steps_done_ : int
        Completed epochs and steps (what a :class:`Cooldown` counts).

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, fit
    >>> from fairlib.weighting import Cooldown, GroupBalancedSampling
    >>> data = make_biased_classification(400, seed=0)
    >>> bs = GroupBalancedSampling(tau=Cooldown(tau=5.0, switch_at=1), groups="group")
    >>> hist = fit(LogisticRegression(2, seed=0), data, strategy=bs, epochs=2, progress=False)
    >>> list(hist.frame["tau"])
    [5.0, 1.0]
    >>> [round(p, 2) for p in bs.group_probabilities(5.0).tolist()]
    [0.54, 0.46]
    """

    mode: ClassVar[SamplingMode] = "upsample"
