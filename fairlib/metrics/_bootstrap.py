"""Bootstrap resampling of the count table (device core).

Resampling N rows iid with replacement only changes how many rows land in each
(group, y_true, y_pred) cell, and that vector of cell counts is one multinomial draw
with the observed cell frequencies.  Every rate is a function of the cell counts, so
B resamples cost O(B x cells) instead of O(B x N).  The multinomial is drawn as a
chain of binomials (cell c gets Binomial(rows left, p_c / mass left)).

With sample weights, the weighted sum of a resampled cell is not a function of its
count, so weighted data use the Poisson bootstrap instead: each row gets an
independent Poisson(1) multiplicity, which costs O(B x N) and is done in chunks.
"""

from __future__ import annotations

import torch

from . import _core as core

# Poisson resampling draws B x N multiplicities; chunks keep memory near this many.
_POISSON_CHUNK = 1 << 23


def make_generator(seed: int | torch.Generator | None, device: torch.device) -> torch.Generator:
    """A generator on ``device``: the given one, or a new one seeded with ``seed``."""
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def multinomial_counts(counts: torch.Tensor, n_boot: int, generator: torch.Generator) -> torch.Tensor:
    """``n_boot`` multinomial redraws of a table of row counts ``[G, 4]`` -> ``[B, G, 4]``."""
    flat = counts.reshape(-1)
    total = flat.sum()
    p = flat / total
    # Mass still unassigned before each cell; clamp guards against round-off.
    mass_left = (p.flip(0).cumsum(0).flip(0)).clamp(min=0.0)
    remaining = total.expand(n_boot).clone()
    out = torch.empty(n_boot, flat.shape[0], dtype=torch.float64, device=counts.device)
    for c in range(flat.shape[0] - 1):
        q = torch.where(mass_left[c] > 0, p[c] / mass_left[c], 0.0).clamp(0.0, 1.0)
        k = torch.binomial(remaining, q.expand(n_boot).contiguous(), generator=generator)
        out[:, c] = k
        remaining = remaining - k
    out[:, -1] = remaining
    return out.view(n_boot, *counts.shape)


def poisson_tables(
    cells: torch.Tensor, weight: torch.Tensor, num_cells: int, n_boot: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Poisson-bootstrap tables from rows: weighted sums and counts, each ``[B, num_cells]``."""
    n = cells.shape[0]
    dev = cells.device
    weighted = torch.zeros(n_boot, num_cells, dtype=torch.float64, device=dev)
    counts = torch.zeros_like(weighted)
    step = max(1, _POISSON_CHUNK // max(n, 1))
    rate = torch.ones(1, n, dtype=torch.float64, device=dev)
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        m = torch.poisson(rate.expand(b, n), generator=generator)
        counts[start : start + b].index_add_(1, cells, m)
        weighted[start : start + b].index_add_(1, cells, m * weight)
    return weighted, counts


def resampled_rates(
    weighted: torch.Tensor, counts: torch.Tensor, zero_division: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rates ``[B, G, R]`` and overall ``[B, R]`` of resampled tables ``[B, G, 4]``."""
    by_group, overall, _ = core.rates(weighted, counts, zero_division)
    return by_group, overall


def percentile_interval(samples: torch.Tensor, level: float) -> torch.Tensor:
    """Percentile interval over dim 0, skipping NaN resamples: ``[2, ...]``."""
    alpha = (1.0 - level) / 2.0
    q = torch.tensor([alpha, 1.0 - alpha], dtype=samples.dtype, device=samples.device)
    return torch.nanquantile(samples, q, dim=0)
