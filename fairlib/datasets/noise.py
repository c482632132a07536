"""Group-dependent label noise."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .._validation import MSG_TYPE, check_fraction
from ._dataset import FairDataset

__all__ = ["corrupt_labels"]

GroupKey = str | int | tuple[str | int, int]


def corrupt_labels(
    ds: FairDataset, rates_by_group: Mapping[GroupKey, float], seed: int = 0
) -> tuple[FairDataset, torch.Tensor]:
    """Flip labels at a given rate within each group of the active sensitive attribute.

    Exactly ``round(rate * size)`` labels, chosen uniformly at random, are flipped in each
    cell, so the realised rates match the requested ones up to rounding.

    Parameters
    ----------
    ds : FairDataset
        Data whose labels to corrupt; its active attribute defines the groups.
    rates_by_group : Mapping
        Key: a group (category name or code), whose labels are flipped in both directions,
        or a pair ``(group, label)`` to flip only labels equal to ``label`` in that group
        (e.g. ``("Female", 1): 0.3`` turns 30% of that group's positives into negatives).
        Value: flip rate in ``[0, 1]``. Groups not mentioned are left unchanged.
    seed : int
        Seed of the ``torch.Generator``.

    Returns
    -------
    corrupted : FairDataset
        Copy with the new labels; the labels before corruption are kept in
        ``extras["y_clean"]`` (unless that column already exists).
    flipped : torch.Tensor
        Bool mask ``[N]`` of the flipped labels.

    Examples
    --------
    >>> from fairlib.datasets import corrupt_labels, make_biased_classification
    >>> ds = make_biased_classification(1000, seed=0)
    >>> noisy, flipped = corrupt_labels(ds, {"minority": 0.2}, seed=0)
    >>> n_minority = int((ds.group == 1).sum())
    >>> int(flipped.sum()) == round(0.2 * n_minority)
    True
    >>> bool((noisy.y[flipped] != ds.y[flipped]).all())
    True
    """
    if not isinstance(ds, FairDataset):
        raise TypeError(
            MSG_TYPE.format(name="ds", expected="a FairDataset", got=type(ds).__name__)
        )
    if not isinstance(rates_by_group, Mapping):
        raise TypeError(
            MSG_TYPE.format(
                name="rates_by_group",
                expected="a mapping of group to rate",
                got=type(rates_by_group).__name__,
            )
        )
    cells: dict[tuple[int, int | None], float] = {}
    for key, rate in rates_by_group.items():
        group, label = key if isinstance(key, tuple) else (key, None)
        code = _group_code(ds, group)
        if label not in (None, 0, 1):
            raise ValueError(
                MSG_TYPE.format(
                    name="rates_by_group",
                    expected="labels 0 or 1 in (group, label) keys",
                    got=repr(key),
                )
            )
        check_fraction(f"rates_by_group[{key!r}]", rate, expected="a rate in [0, 1]")
        overlap = [(g, lab) for g, lab in cells if g == code and (lab is None or label is None)]
        if overlap or (code, label) in cells:
            raise ValueError(
                MSG_TYPE.format(
                    name="rates_by_group",
                    expected="each group given once, either alone or per label",
                    got=f"{key!r} twice",
                )
            )
        cells[(code, label)] = float(rate)

    gen = torch.Generator().manual_seed(seed)
    y, g = ds.y.cpu(), ds.group.cpu()
    flipped = torch.zeros(len(ds), dtype=torch.bool)
    for (code, label), rate in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1] or -1)):
        mask = g == code if label is None else (g == code) & (y == label)
        rows = torch.nonzero(mask).flatten()
        k = round(rate * rows.numel())
        flipped[rows[torch.randperm(rows.numel(), generator=gen)[:k]]] = True
    flipped = flipped.to(ds.device)
    new_y = torch.where(flipped, 1 - ds.y, ds.y)
    extras = {} if "y_clean" in ds.extras else {"y_clean": ds.y}
    return ds.with_labels(new_y, **extras), flipped


def _group_code(ds: FairDataset, group: str | int) -> int:
    cats = ds.group_categories
    if isinstance(group, str) and group in cats:
        return cats.index(group)
    if isinstance(group, int) and not isinstance(group, bool) and 0 <= group < len(cats):
        return group
    raise ValueError(
        MSG_TYPE.format(
            name="rates_by_group",
            expected=f"groups of {ds.group_name!r} among {list(cats)} or codes 0..{len(cats) - 1}",
            got=repr(group),
        )
    )
