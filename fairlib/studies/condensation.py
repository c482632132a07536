"""Choose a smaller training set: selection rules for data condensation.

Written for chapter 6, *Data condensation* (``notebooks/06_data_condensation.ipynb``).

Data condensation keeps a fraction of the training rows and retrains on them. Every
rule here returns the sorted positions of the kept rows (``k = max(1, round(fraction *
N))`` of them, the same count as :meth:`fairlib.weighting.FORML.condense`), so that
``train.subset(rows)`` gives the smaller dataset:

- ``"random"``: a uniform random sample (:func:`select_random`), the baseline;
- ``"group_balanced"``: as many rows from every group, or from every (group, label)
  cell, as their sizes allow (:func:`select_group_balanced`);
- ``"top_weight"``: the rows with the highest learned weights (:func:`fairlib.weighting.select_top_weight`);
- ``"weight_proportional"``: a sample drawn with probability proportional to the learned
  weights, without replacement (:func:`select_weight_proportional`).

Randomness comes from a seeded ``torch.Generator``: same seed, same rows.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from ..weighting.condense import MSG_WEIGHTS, check_weights, n_keep, select_top_weight

__all__ = [
    "RULES",
    "select_group_balanced",
    "select_random",
    "select_subset",
    "select_weight_proportional",
]

RULES = ("random", "group_balanced", "top_weight", "weight_proportional")
MSG_RULE = "Expected `rule` to be one of {rules}, but got {got!r}."


def select_random(n: int, fraction: float, *, seed: int = 0,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """Sorted positions of a uniform random ``fraction`` of ``n`` rows.

    Examples
    --------
    >>> from fairlib.studies.condensation import select_random
    >>> rows = select_random(100, 0.1, seed=0)
    >>> len(rows), len(rows.unique()), bool((rows[1:] > rows[:-1]).all())
    (10, 10, True)
    """
    k = n_keep(n, fraction)
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[:k].sort().values.to(device)


def _water_fill(sizes: list[int], k: int) -> list[int]:
    """Equal quotas summing to ``k``, capped by ``sizes``; the excess goes to larger cells.

    Leftover single rows go to the cells with the most spare rows (then the lower code).
    """
    quota = [0] * len(sizes)
    left = k
    while left > 0:
        open_ = [c for c, s in enumerate(sizes) if quota[c] < s]
        if not open_:
            break
        per = left // len(open_)
        if per == 0:
            for c in sorted(open_, key=lambda c: (-(sizes[c] - quota[c]), c))[:left]:
                quota[c] += 1
            break
        for c in open_:
            take = min(per, sizes[c] - quota[c])
            quota[c] += take
            left -= take
    return quota


def select_group_balanced(groups: torch.Tensor, fraction: float, *,
                          labels: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Sorted positions of a ``fraction`` of rows shared equally among groups (or cells).

    The rows are shared equally among the groups present, or among the (group, label)
    cells when ``labels`` is given. A cell smaller than its share is kept whole and the
    rest is shared among the larger cells. Within a cell, rows are drawn uniformly.

    Parameters
    ----------
    groups : torch.Tensor
        int64 group codes ``[N]``.
    fraction : float
        Share of rows to keep, in ``(0, 1]``.
    labels : torch.Tensor, optional
        Labels ``[N]`` in {0, 1}: balance (group, label) cells instead of groups.
    seed : int
        Seed of the draw within cells.

    Returns
    -------
    torch.Tensor
        Sorted int64 positions on the device of ``groups``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.condensation import select_group_balanced
    >>> groups = torch.tensor([0] * 8 + [1] * 2)
    >>> rows = select_group_balanced(groups, 0.4, seed=0)
    >>> torch.bincount(groups[rows]).tolist()
    [2, 2]
    >>> torch.bincount(groups[select_group_balanced(groups, 0.6, seed=0)]).tolist()
    [4, 2]
    """
    if not isinstance(groups, torch.Tensor) or groups.ndim != 1 or groups.numel() == 0:
        raise ValueError(
            f"Expected `groups` to be a non-empty 1-d tensor of codes, but got {groups!r}.")
    cells = groups.long()
    if labels is not None:
        if not isinstance(labels, torch.Tensor) or labels.shape != groups.shape:
            raise ValueError("Expected `labels` to be a tensor shaped like `groups`, but got "
                             f"{getattr(labels, 'shape', type(labels).__name__)}.")
        cells = cells * 2 + labels.long()
    k = n_keep(cells.numel(), fraction)
    host = cells.cpu()
    codes = torch.unique(host)
    members = [torch.nonzero(host == c).flatten() for c in codes]
    quota = _water_fill([len(m) for m in members], k)
    gen = torch.Generator().manual_seed(seed)
    picks = [m[torch.randperm(len(m), generator=gen)[:q]]
             for m, q in zip(members, quota, strict=True)]
    return torch.cat(picks).sort().values.to(groups.device)


def select_weight_proportional(weights: torch.Tensor, fraction: float, *,
                               seed: int = 0) -> torch.Tensor:
    """Sorted positions of rows drawn with probability proportional to ``weights``.

    Rows are drawn one after the other without replacement (``torch.multinomial``), each
    draw proportional to the weights of the rows still available. A small fraction thus
    mirrors the weighted distribution; as the fraction grows the sample approaches the
    whole set. Rows of weight 0 are drawn (uniformly) only after every positive-weight row.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.condensation import select_weight_proportional
    >>> w = torch.tensor([0.0, 0.0, 1.0, 1.0, 8.0])
    >>> select_weight_proportional(w, 0.6, seed=0).tolist()
    [2, 3, 4]
    >>> len(select_weight_proportional(w, 1.0, seed=0))
    5
    """
    w = check_weights(weights)
    k = n_keep(w.numel(), fraction)
    gen = torch.Generator().manual_seed(seed)
    host = w.cpu().double()
    positive = torch.nonzero(host > 0).flatten()
    take = min(k, len(positive))
    rows = positive[torch.multinomial(host[positive], take, replacement=False, generator=gen)] \
        if take > 0 else torch.zeros(0, dtype=torch.int64)
    if k > take:  # fill up with zero-weight rows, uniformly
        zero = torch.nonzero(host == 0).flatten()
        rows = torch.cat([rows, zero[torch.randperm(len(zero), generator=gen)[:k - take]]])
    return rows.sort().values.to(w.device)


def select_subset(rule: Literal["random", "group_balanced", "top_weight", "weight_proportional"],
                  data: Any, fraction: float, *, weights: torch.Tensor | None = None,
                  seed: int = 0,
                  balance: Literal["group", "group_label"] = "group_label") -> torch.Tensor:
    """Sorted positions of the rows of ``data`` that ``rule`` keeps.

    Parameters
    ----------
    rule : {"random", "group_balanced", "top_weight", "weight_proportional"}
        The selection rule (see the module docs).
    data : FairDataset
        The training set (its active group and labels are used by ``"group_balanced"``).
    fraction : float
        Share of rows to keep, in ``(0, 1]``.
    weights : torch.Tensor, optional
        One non-negative weight per row ``[N]``, e.g. ``FORML.weights_``; required by the
        weight rules.
    seed : int
        Seed of the random rules.
    balance : {"group", "group_label"}
        What ``"group_balanced"`` shares rows among: groups, or (group, label) cells.

    Returns
    -------
    torch.Tensor
        Sorted int64 positions; ``data.subset(rows)`` is the condensed set.

    Examples
    --------
    >>> from fairlib.studies.condensation import select_subset
    >>> from fairlib.datasets import make_biased_classification
    >>> data = make_biased_classification(200, seed=0)
    >>> rows = select_subset("group_balanced", data, 0.2, seed=0, balance="group")
    >>> data.subset(rows).summary()["n"].tolist()
    [20, 20]
    """
    if rule not in RULES:
        raise ValueError(MSG_RULE.format(rules=", ".join(map(repr, RULES)), got=rule))
    n = len(data)
    if rule in ("top_weight", "weight_proportional"):
        if weights is None or not isinstance(weights, torch.Tensor) or weights.shape != (n,):
            got = "None" if weights is None else f"shape {tuple(getattr(weights, 'shape', ()))}"
            raise ValueError(MSG_WEIGHTS.format(n=n, got=got)
                             + f" Rule {rule!r} needs one weight per row.")
        if rule == "top_weight":
            return select_top_weight(weights, fraction)
        return select_weight_proportional(weights, fraction, seed=seed)
    if rule == "random":
        return select_random(n, fraction, seed=seed, device=data.y.device)
    if balance not in ("group", "group_label"):
        raise ValueError(
            f"Expected `balance` to be 'group' or 'group_label', but got {balance!r}.")
    labels = data.y if balance == "group_label" else None
    return select_group_balanced(data.group, fraction, labels=labels, seed=seed)
