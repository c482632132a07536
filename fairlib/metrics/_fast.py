"""Fast path of the validated public calls: check and count in one pass (CPU tensors).

The general path (:func:`fairlib.metrics._prepare.build_table`) reads the labels and
group codes once to check them (min/max of each) and once more to build the count
table.  For the common case -- CPU tensors of integer (or boolean) labels and group
codes, no sample weights -- this module does both in a single chunked pass whose
chunks stay in cache: per chunk, one maximum of each input viewed as *unsigned*
integers (a negative value is then a huge one, so ``max <= 1`` proves the labels are
in {0, 1} and ``max < 32`` proves the codes are in [0, 32)), the narrowing of each
input to one byte, the cell index ``4 * group + 2 * y_true + y_pred`` in bytes, and
its histogram.  The histogram counts *pairs* of adjacent cells (the byte array viewed
as 16-bit integers), which halves the number of increments; the pair counts fold back
into cell counts exactly.

Anything this path does not handle, and any input that fails a check, makes it
return ``None`` before the result is used: the caller then runs the general path,
which raises the very error it always raised (naming the argument) or handles the
input (floats, {-1, 1} labels, 32 or more groups, arbitrary labels, weights, GPU).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

from ._groups import Groups

# Rows per chunk: the three inputs of a chunk (8 bytes a row for int64) stay in the
# 1-2 MiB L2 cache between the check, the narrowing and the histogram.
CHUNK = 1 << 16
# Inputs at least this long are split between two threads.
THREADS_MIN_ROWS = 1 << 21
# Largest number of groups: cells below 128, so a pair of cells is a non-negative int16.
MAX_GROUPS = 32

_UNSIGNED = {
    torch.int64: np.uint64, torch.int32: np.uint32, torch.int16: np.uint16,
    torch.int8: np.uint8, torch.uint8: np.uint8, torch.bool: np.uint8,
}


def _unsigned_view(x: Any, n: int) -> np.ndarray | None:
    """A 1-d CPU integer tensor of length ``n`` as unsigned integers (no copy), else None."""
    if not isinstance(x, torch.Tensor) or x.device.type != "cpu" or x.ndim != 1 or len(x) != n:
        return None
    kind = _UNSIGNED.get(x.dtype)
    if kind is None or x.is_neg() or x.is_conj():
        return None
    return x.numpy().view(kind)


def cell_counts(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray | None, max_group: int
) -> np.ndarray | None:
    """Counts of the cells ``4 * group + 2 * y_true + y_pred`` (length 128), checking ranges.

    ``y_true``/``y_pred`` are unsigned views; ``groups`` (unsigned view or None for a
    single group) must be ``<= max_group``.  Returns ``None`` if any label is above 1
    or any code above ``max_group``.  Large inputs are split between two threads when
    torch may use more than one (the work releases the GIL).
    """
    n = len(y_true)
    if n < THREADS_MIN_ROWS or torch.get_num_threads() < 2:
        return _cell_counts_range(y_true, y_pred, groups, max_group, 0, n)
    mid = n // 2
    out: list[np.ndarray | None] = [None]
    worker = threading.Thread(target=lambda: out.__setitem__(0, _cell_counts_range(
        y_true, y_pred, groups, max_group, mid, n)))
    worker.start()
    first = _cell_counts_range(y_true, y_pred, groups, max_group, 0, mid)
    worker.join()
    if first is None or out[0] is None:
        return None
    return first + out[0]


def _cell_counts_range(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray | None, max_group: int,
    lo: int, hi: int,
) -> np.ndarray | None:
    pairs = np.zeros(1 << 15, dtype=np.int64)
    single = np.zeros(128, dtype=np.int64)
    size = min(CHUNK, hi - lo)
    a8 = np.empty(size, dtype=np.uint8)
    b8 = np.empty(size, dtype=np.uint8)
    c8 = np.empty(size, dtype=np.uint8)
    for start in range(lo, hi, CHUNK):
        stop = min(start + CHUNK, hi)
        m = stop - start
        cell, a, b = c8[:m], a8[:m], b8[:m]
        # Each input is checked and narrowed right after it is read, while in cache.
        if groups is not None:
            g = groups[start:stop]
            if g.max() > max_group:
                return None
            np.copyto(cell, g, casting="unsafe")
            np.add(cell, cell, out=cell)
        yt = y_true[start:stop]
        if yt.max() > 1:
            return None
        np.copyto(a, yt, casting="unsafe")
        yp = y_pred[start:stop]
        if yp.max() > 1:
            return None
        np.copyto(b, yp, casting="unsafe")
        if groups is not None:
            np.add(cell, a, out=cell)  # 2 * group + y_true
        else:
            np.copyto(cell, a)
        np.add(cell, cell, out=cell)
        np.add(cell, b, out=cell)
        even = m - (m & 1)
        if even:
            h = torch.bincount(torch.from_numpy(cell[:even].view(np.int16))).numpy()
            pairs[: len(h)] += h
        if m & 1:
            single[cell[m - 1]] += 1
    folded = pairs.reshape(128, 256)
    return single + folded.sum(0)[:128] + folded.sum(1)


def fast_table(
    y_true: Any, y_pred: Any, sensitive_features: Any, sample_weight: Any, overall_only: bool
) -> tuple[torch.Tensor, Groups] | None:
    """The ``[3, G, 4]`` table and groups of the general path, or None if not applicable.

    Applies to CPU tensors of integer or boolean dtype, 1-dimensional and of one
    length, with 0/1 labels, integer group codes in ``[0, 32)`` and no weights;
    the table and groups are then exactly those :func:`build_table` returns (before
    :func:`drop_unobserved`, which the caller applies).
    """
    if sample_weight is not None or not isinstance(y_true, torch.Tensor):
        return None
    n = len(y_true) if y_true.ndim == 1 else 0
    if n == 0:
        return None
    yt, yp = _unsigned_view(y_true, n), _unsigned_view(y_pred, n)
    if yt is None or yp is None:
        return None
    if overall_only:
        counts = cell_counts(yt, yp, None, 0)
        if counts is None:
            return None
        return _table(counts[:4], 1), Groups(None, (1,), [["all"]], ["group"],
                                             ids_fn=lambda: torch.zeros(n, dtype=torch.int64))
    sf = sensitive_features
    if not isinstance(sf, torch.Tensor) or sf.dtype == torch.bool:
        return None
    g = _unsigned_view(sf, n)
    if g is None:
        return None
    counts = cell_counts(yt, yp, g, MAX_GROUPS - 1)
    if counts is None:
        return None
    # Codes are used as they are (levels 0 .. max code), as the general path does.
    num_groups = int(np.flatnonzero(counts)[-1]) // 4 + 1
    table = _table(counts[: 4 * num_groups], num_groups)
    groups = Groups(None, (num_groups,), [list(range(num_groups))], ["sensitive_feature_0"],
                    ids_fn=sf.long)
    return table, groups


def _table(counts: np.ndarray, num_groups: int) -> torch.Tensor:
    """Unweighted ``[3, G, 4]`` float64 table from cell counts (every channel the counts)."""
    flat = torch.from_numpy(counts.astype(np.float64))
    return flat.expand(3, flat.numel()).clone().view(3, num_groups, 4)


__all__ = ["CHUNK", "MAX_GROUPS", "THREADS_MIN_ROWS", "cell_counts", "fast_table"]
