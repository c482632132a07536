"""Seeded assignment of rows to train / meta / test, stratified by group x label."""

from __future__ import annotations

import torch

__all__ = ["split_rows"]


def split_rows(
    group: torch.Tensor,
    y: torch.Tensor,
    n_groups: int,
    fractions: tuple[float, float, float],
    seed: int,
    mode: str | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sorted row positions of the train, meta and test splits (on the CPU).

    Within each group x label cell the rows are permuted with a seeded generator; cell sizes
    of each split are apportioned so that split totals match the fractions. ``mode`` selects a
    balanced meta split (``"group"`` or ``"group_label"``, see ``FairDataset.split``).
    """
    train, meta, test = fractions
    gen = torch.Generator().manual_seed(seed)
    cell = group.cpu() * 2 + y.cpu()
    counts = torch.bincount(cell, minlength=2 * n_groups)
    sizes = counts.tolist()
    if mode is None:
        n_meta = _apportion([meta * c for c in sizes], sizes)
    else:
        n_meta = _meta_quota(counts, n_groups, meta, mode, len(y))
    rest = [c - m for c, m in zip(sizes, n_meta, strict=True)]
    n_test = _apportion([r * test / (train + test) for r in rest], rest)
    parts: dict[str, list[torch.Tensor]] = {"train": [], "meta": [], "test": []}
    for c, n_c in enumerate(sizes):
        rows = torch.nonzero(cell == c).flatten()
        rows = rows[torch.randperm(n_c, generator=gen)]
        m, t = n_meta[c], n_test[c]
        parts["meta"].append(rows[:m])
        parts["test"].append(rows[m : m + t])
        parts["train"].append(rows[m + t :])
    splits = tuple(torch.sort(torch.cat(parts[k])).values for k in ("train", "meta", "test"))
    return splits  # type: ignore[return-value]


def _apportion(ideal: list[float], caps: list[int]) -> list[int]:
    """Integers close to ``ideal`` summing to ``round(sum(ideal))`` (largest remainder), capped."""
    base = [min(int(v), c) for v, c in zip(ideal, caps, strict=True)]
    short = round(sum(ideal)) - sum(base)
    order = sorted(range(len(ideal)), key=lambda i: (-(ideal[i] - int(ideal[i])), i))
    for i in order:
        if short <= 0:
            break
        if base[i] < caps[i]:
            base[i] += 1
            short -= 1
    return base


def _meta_quota(counts: torch.Tensor, n_groups: int, meta: float, mode: str, n: int) -> list[int]:
    """Meta rows per group x label cell for a balanced meta split (cell c = 2 * group + label).

    At most half of a cell is taken, so a small cell can leave the meta split short.
    """
    sizes = counts.tolist()
    total = meta * n
    if mode == "group_label":
        present = sum(1 for c in sizes if c > 0)
        ideal = [total / present if c > 0 else 0.0 for c in sizes]
    else:
        per_group = [sizes[2 * g] + sizes[2 * g + 1] for g in range(n_groups)]
        present = sum(1 for m in per_group if m > 0)
        ideal = [
            total / present * c / per_group[i // 2] if c > 0 else 0.0 for i, c in enumerate(sizes)
        ]
    return _apportion(ideal, [c // 2 for c in sizes])
