"""Helpers shared by the strategies: group codes, scatter means, checks, samplers, ESS.

Functions named ``check_*`` read from the host and are called from ``setup`` only; the
tensor helpers (``cell_codes``, ``group_sums``, ``effective_sample_size``) never do, so
``weights``/``update`` can use them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import torch
from torch.utils.data import Sampler

# Re-exported to the strategies: the shared checks live in fairlib._validation.
from .._validation import MSG_TYPE, check_bool, check_choice, check_number  # noqa: F401

#: ``groups=``: the cells a strategy weighs or balances, the categories of the active
#: attribute (``"group"``) or its (group, label) pairs (``"group_label"``, code ``2 g + y``).
GroupsMode = Literal["group", "group_label"]
GROUP_MODES = ("group", "group_label")
#: ``mode=``: the same target reached as loss weights (uniform shuffling) or as a sampler
#: (unweighted loss), for the strategies that can do both.
SamplingMode = Literal["upweight", "upsample"]
SAMPLING_MODES = ("upweight", "upsample")


# -- argument checks (setup time, host side) ------------------------------------------------
def check_train(train: Any, owner: str) -> None:
    """``train`` must be a non-empty dataset with ``y``, ``group`` and ``n_groups``."""
    if train is None or not all(hasattr(train, a) for a in ("y", "group", "n_groups")):
        raise TypeError(MSG_TYPE.format(
            name="train", expected=f"a FairDataset (with `y`, `group`, `n_groups`) for {owner}",
            got=type(train).__name__))
    if len(train) == 0:
        raise ValueError(
            f"Expected `train` to be a non-empty dataset for {owner}, but got 0 samples.")


def cell_names(train: Any, mode: GroupsMode) -> list[str]:
    """Readable names of the groups (``"minority"``) or cells (``"minority, y=1"``)."""
    cats = [str(c) for c in train.group_categories] if hasattr(train, "group_categories") else [
        str(g) for g in range(train.n_groups)]
    if mode == "group":
        return cats
    return [f"{c}, y={y}" for c in cats for y in (0, 1)]


def warn_empty(counts: torch.Tensor, names: Sequence[str], owner: str, consequence: str) -> None:
    """Warn once, naming every group with no training sample (host read: setup only)."""
    empty = [names[i] for i in torch.nonzero(counts == 0).flatten().tolist()]
    if empty:
        warnings.warn(
            f"{owner}: no training samples in {', '.join(map(repr, empty))}; {consequence}",
            UserWarning, stacklevel=3)


# -- tensor helpers (device side, no host sync) ---------------------------------------------
_SCALARS: dict[tuple[float, torch.dtype, torch.device], torch.Tensor] = {}


def scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a cached 0-d tensor of ``like``'s dtype and device.

    An operation with a Python number wraps it in a new tensor on every call (about 2 us
    on the CPU, as much as the operation on a batch); per-step code uses this instead.
    The value is the one the number would have been cast to, so results do not change.
    Cached tensors are shared: read them, never write to them.
    """
    key = (value, like.dtype, like.device)
    found = _SCALARS.get(key)
    if found is None:
        found = _SCALARS[key] = torch.full((), value, dtype=like.dtype, device=like.device)
    return found


def safe_total(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w.sum() > 0, w.sum() if positive else 1)``: a batch's weight total, safe to divide
    by (weights all 0, or NaN, are divided by 1 and so stay as they are)."""
    total = w.sum()
    positive = total > scalar(0.0, total)
    return positive, torch.where(positive, total, scalar(1.0, total))


def cell_codes(y: torch.Tensor, group: torch.Tensor, mode: GroupsMode) -> torch.Tensor:
    """Group codes: the active attribute (``"group"``) or the (group, label) cell ``2 g + y``."""
    return group if mode == "group" else group * 2 + y


def n_cells(n_groups: int, mode: GroupsMode) -> int:
    """Number of codes :func:`cell_codes` can return."""
    return n_groups if mode == "group" else 2 * n_groups


def group_sums(values: torch.Tensor, codes: torch.Tensor,
               n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group sums and counts of ``values`` (scatter-add on the values' device)."""
    sums = torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(0, codes, values)
    counts = torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(
        0, codes, torch.ones_like(values))
    return sums, counts


def group_means(values: torch.Tensor, codes: torch.Tensor,
                n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group means (0 where a group is absent: mask with ``counts > 0``) and counts."""
    sums, counts = group_sums(values, codes, n)
    return sums / counts.clamp_min(1), counts


def effective_sample_size(w: torch.Tensor, *, counts: torch.Tensor | None = None) -> torch.Tensor:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (a 0-d tensor on ``w``'s device).

    With ``counts``, ``w[k]`` is the weight shared by ``counts[k]`` rows (a weight per
    group): ``(sum n w)^2 / sum n w^2``, without expanding to one weight per row.

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting import effective_sample_size
    >>> float(effective_sample_size(torch.tensor([1.0, 1.0, 1.0, 1.0])))
    4.0
    >>> float(effective_sample_size(torch.tensor([4.0, 0.0, 0.0, 0.0])))
    1.0
    >>> float(effective_sample_size(torch.tensor([1.0, 3.0]), counts=torch.tensor([3, 1])))
    3.0
    """
    w = w.to(torch.float64) if w.dtype != torch.float64 else w
    n = torch.ones_like(w) if counts is None else counts.to(device=w.device, dtype=w.dtype)
    return (n * w).sum() ** 2 / (n * w * w).sum().clamp_min(torch.finfo(w.dtype).tiny)


class ESSTracker:
    """Mean effective-sample-size fraction ``ESS / B`` of the batch weights over an epoch.

    A mixin: strategies whose weights change per batch call ``_reset_ess`` in ``setup``,
    ``_track_ess(w)`` from ``update`` (device ops only) and ``_close_ess_epoch`` from
    ``on_epoch_end``; ``_ess_epoch`` is then the epoch's mean, reported as ``ess_fraction``.
    """

    def _reset_ess(self, device: torch.device) -> None:
        self._ess_sum = torch.zeros((), dtype=torch.float64, device=device)
        self._ess_steps = 0
        self._ess_epoch = torch.full((), float("nan"), dtype=torch.float64, device=device)

    def _track_ess(self, w: torch.Tensor) -> None:
        self._ess_sum = self._ess_sum + effective_sample_size(w) / w.numel()
        self._ess_steps += 1

    def _close_ess_epoch(self) -> None:
        if self._ess_steps:
            self._ess_epoch = self._ess_sum / self._ess_steps
        self._ess_sum = torch.zeros_like(self._ess_sum)
        self._ess_steps = 0


@torch.no_grad()
def make_generator(generator: torch.Generator | None) -> torch.Generator:
    """The fit's generator, or a CPU generator seeded with 0 when none is given."""
    return generator if generator is not None else torch.Generator().manual_seed(0)


class EpochSampler(Sampler[int]):
    """Yields indices drawn by ``draw(n)`` each epoch; redraws the rest when ``version()`` changes.

    ``version`` lets a schedule switch in the middle of an epoch: the loader pulls indices
    lazily (with ``num_workers=0``, one batch at a time), so indices not yet handed out
    are redrawn under the new setting as soon as the strategy's state changes.
    """

    def __init__(self, draw: Callable[[int], list[int]], length: Callable[[], int],
                 version: Callable[[], object] | None = None) -> None:
        self._draw = draw
        self._length = length
        self._version = version

    def __len__(self) -> int:
        return self._length()

    def __iter__(self) -> Iterator[int]:
        n = self._length()
        ver = self._version() if self._version else None
        idx = self._draw(n)
        i = 0
        while i < n:
            if self._version is not None:
                now = self._version()
                if now != ver:
                    ver = now
                    idx = idx[:i] + self._draw(n - i)
            yield idx[i]
            i += 1
