"""Encode sensitive features as integer group ids (host side, user-facing layer).

One feature: the groups are the values that occur.  Several features: the groups
are the Cartesian product of each feature's observed values, so combinations
absent from the data exist as empty groups (NaN rows that aggregates skip), as in
fairlearn's ``MetricFrame``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._validation import MSG_MISSING, MSG_TYPE, _type_name

# Integer tensors whose values lie in [0, _DENSE_LIMIT) are encoded in O(N) by a presence
# table instead of a sort.
_DENSE_LIMIT = 1 << 20


class Groups:
    """Integer-coded groups.

    Attributes
    ----------
    ids : torch.Tensor
        int64 group id per row, on the input device.
    shape : tuple of int
        Number of levels of each sensitive feature; ids are mixed-radix over it.
    levels : list of lists
        The label of each level, per feature.
    names : list of str
        Feature names.
    """

    def __init__(self, ids: torch.Tensor | None, shape: tuple[int, ...], levels: list[list[Any]],
                 names: list[str], ids_fn: Any = None) -> None:
        self._ids = ids
        self._ids_fn = ids_fn  # computes ids on first use (after dropping unobserved levels)
        self.shape = shape
        self.levels = levels
        self.names = names

    @property
    def ids(self) -> torch.Tensor:
        """Group id of each row."""
        if self._ids is None:
            self._ids = self._ids_fn()
        return self._ids

    @property
    def num_groups(self) -> int:
        """Number of groups (product of the level counts)."""
        return int(np.prod(self.shape))

    @property
    def index(self) -> pd.Index:
        """Label of each group id; a ``MultiIndex`` for several features."""
        if len(self.levels) == 1:
            return pd.Index(self.levels[0], name=self.names[0])
        return pd.MultiIndex.from_product(self.levels, names=self.names)


def _columns(sensitive_features: Any) -> list[tuple[str, Any]]:
    """Split the input into named columns."""
    sf = sensitive_features
    if sf is None:
        raise TypeError(
            MSG_TYPE.format(
                name="sensitive_features",
                expected="an array-like, DataFrame or dict of columns",
                got="None",
            )
        )
    if isinstance(sf, pd.DataFrame):
        return [(str(c), sf[c]) for c in sf.columns]
    if isinstance(sf, (pd.Series, pd.Index)):
        return [(str(sf.name) if sf.name is not None else "sensitive_feature_0", sf)]
    if isinstance(sf, pd.Categorical):
        # As fairlearn: the groups are the values that occur, named and ordered by value.
        return [("sensitive_feature_0", np.asarray(sf, dtype=object))]
    if isinstance(sf, dict):
        return [(str(k), v) for k, v in sf.items()]
    if isinstance(sf, torch.Tensor):
        if sf.ndim == 1:
            return [("sensitive_feature_0", sf)]
        if sf.ndim == 2:
            return [(f"sensitive_feature_{j}", sf[:, j]) for j in range(sf.shape[1])]
        raise ValueError(
            f"Expected `sensitive_features` to be 1- or 2-dimensional, but got shape {tuple(sf.shape)}."
        )
    arr = np.asarray(sf, dtype=object) if isinstance(sf, (list, tuple)) else sf
    if not isinstance(arr, np.ndarray):
        raise TypeError(
            MSG_TYPE.format(
                name="sensitive_features",
                expected="an array-like, DataFrame or dict of columns",
                got=_type_name(sf),
            )
        )
    if arr.ndim == 1:
        return [("sensitive_feature_0", arr)]
    if arr.ndim == 2:
        return [(f"sensitive_feature_{j}", arr[:, j]) for j in range(arr.shape[1])]
    raise ValueError(
        f"Expected `sensitive_features` to be 1- or 2-dimensional, but got shape {arr.shape}."
    )


def _missing_error(name: str, mask: np.ndarray) -> ValueError:
    first = int(np.flatnonzero(mask)[0])
    return ValueError(
        MSG_MISSING.format(column=f"column '{name}'", count=int(mask.sum()), first=first)
    )


def _encode_tensor(name: str, col: torch.Tensor, compact: bool) -> tuple[torch.Tensor, list[Any]]:
    if col.is_floating_point():
        nan = torch.isnan(col)
        if bool(nan.any()):
            raise _missing_error(name, nan.cpu().numpy())
    if not col.is_floating_point() and not col.is_complex() and col.numel() > 0:
        lo, hi = torch.aminmax(col)
        lo_i, hi_i = int(lo), int(hi)
        if lo_i >= 0 and hi_i < _DENSE_LIMIT:
            if not compact:  # codes used as they are; unobserved levels are dropped later
                return col.long(), list(range(hi_i + 1))
            present = torch.zeros(hi_i + 1, dtype=torch.bool, device=col.device)
            present[col.long()] = True
            values = torch.nonzero(present).flatten()
            remap = torch.cumsum(present.long(), 0) - 1
            return remap[col.long()], values.tolist()
    values, inverse = torch.unique(col, return_inverse=True)
    return inverse.long(), values.tolist()


def _encode_array(name: str, col: Any) -> tuple[np.ndarray, list[Any]]:
    values = col.to_numpy() if isinstance(col, (pd.Series, pd.Index)) else np.asarray(col)
    if values.ndim != 1:
        raise ValueError(
            f"Expected each sensitive feature to be 1-dimensional, but '{name}' has shape {values.shape}."
        )
    mask = np.asarray(pd.isna(values))
    if mask.any():
        raise _missing_error(name, mask)
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # values of mixed, unorderable types
        codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64), list(uniques)


def encode_groups(sensitive_features: Any, device: torch.device, compact: bool = True) -> Groups:
    """Encode one or several sensitive features as group ids on ``device``.

    With ``compact=False``, small non-negative integer tensors keep their codes (no
    pass over the data), so some levels may be unobserved: pass the count table
    through :func:`drop_unobserved` afterwards.
    """
    columns = _columns(sensitive_features)
    if not columns:
        raise ValueError("Expected `sensitive_features` to have at least one column, but got none.")
    ids: torch.Tensor | None = None
    levels: list[list[Any]] = []
    for name, col in columns:
        if isinstance(col, torch.Tensor):
            codes_t, values = _encode_tensor(name, col.to(device), compact)
        else:
            codes, values = _encode_array(name, col)
            codes_t = torch.from_numpy(codes).to(device)
        if ids is not None and len(codes_t) != len(ids):
            raise ValueError(
                "Found input variables with inconsistent numbers of samples: sensitive feature "
                f"'{columns[0][0]}' has {len(ids)}, '{name}' has {len(codes_t)}."
            )
        ids = codes_t if ids is None else ids * len(values) + codes_t
        levels.append(values)
    assert ids is not None
    return Groups(ids, tuple(len(v) for v in levels), levels, [n for n, _ in columns])


def intersection_ids(columns: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense ids of the observed combinations of several integer-coded attributes.

    Unlike the count-table encoder behind the metrics (every combination of levels, no
    pass over the data), only combinations that occur get an id, numbered in the
    lexicographic order of their codes.

    Parameters
    ----------
    columns : sequence of torch.Tensor
        ``k`` integer code tensors of the same length ``N`` on one device.

    Returns
    -------
    ids : torch.Tensor
        int64 ``[N]``: the row's combination, in ``0 .. K - 1``.
    combos : torch.Tensor
        ``[K, k]``: the codes of each combination (row ``i`` belongs to id ``i``).

    Examples
    --------
    >>> import torch
    >>> from fairlib.metrics import intersection_ids
    >>> ids, combos = intersection_ids([torch.tensor([1, 0, 1, 1]), torch.tensor([0, 2, 0, 1])])
    >>> ids.tolist(), combos.tolist()
    ([1, 0, 1, 2], [[0, 2], [1, 0], [1, 1]])
    """
    columns = list(columns)
    for j, c in enumerate(columns):
        # Float codes would be merged or split by rounding elsewhere; NaN would be a group.
        if not isinstance(c, torch.Tensor) or c.is_floating_point() or c.is_complex():
            got = f"dtype {c.dtype}" if isinstance(c, torch.Tensor) else type(c).__name__
            raise TypeError(MSG_TYPE.format(
                name=f"columns[{j}]", expected="a tensor of integer codes", got=got))
    if not columns:
        raise ValueError(MSG_TYPE.format(
            name="columns", expected="at least one code tensor", got="none"))
    combos, ids = torch.unique(torch.stack(columns, dim=1), dim=0, return_inverse=True)
    return ids, combos


def drop_unobserved(table: torch.Tensor, groups: Groups) -> tuple[torch.Tensor, Groups]:
    """Remove feature levels with no rows from a ``[3, G, 4]`` table and its groups.

    Reads which levels occur from the table's row counts (one small host read).
    """
    counts = table[1].sum(-1).reshape(groups.shape)
    keep: list[torch.Tensor] = []
    for j in range(len(groups.shape)):
        others = tuple(d for d in range(len(groups.shape)) if d != j)
        present = (counts.sum(others) if others else counts) > 0
        keep.append(torch.nonzero(present).flatten())
    if all(len(k) == n for k, n in zip(keep, groups.shape)):
        return table, groups
    sub = table.reshape(3, *groups.shape, 4)
    for j, k in enumerate(keep):
        sub = sub.index_select(j + 1, k)
    new_shape = tuple(len(k) for k in keep)
    levels = [[lv[i] for i in k.tolist()] for lv, k in zip(groups.levels, keep)]

    def remapped_ids() -> torch.Tensor:
        grid = torch.full((groups.num_groups,), -1, dtype=torch.long, device=table.device)
        new_ids = torch.arange(int(np.prod(new_shape)), device=table.device).reshape(new_shape)
        old = torch.arange(groups.num_groups, device=table.device).reshape(groups.shape)
        for j, k in enumerate(keep):
            old = old.index_select(j, k)
        grid[old.reshape(-1)] = new_ids.reshape(-1)
        return grid[groups.ids]

    new = Groups(None, new_shape, levels, groups.names, ids_fn=remapped_ids)
    return sub.reshape(3, -1, 4), new
