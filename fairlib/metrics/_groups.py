"""Encode sensitive features as integer group ids (host side, user-facing layer).

One feature: the groups are the values that occur.  Several features: the groups
are the Cartesian product of each feature's observed values, so combinations
absent from the data exist as empty groups (NaN rows that aggregates skip), as in
fairlearn's ``MetricFrame``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._validation import MSG_MISSING, MSG_TYPE, _type_name

# Integer tensors whose values lie in [0, _DENSE_LIMIT) are encoded in O(N) by a presence
# table instead of a sort.
_DENSE_LIMIT = 1 << 20


@dataclass(frozen=True)
class Groups:
    """Integer-coded groups.

    Attributes
    ----------
    ids : torch.Tensor
        int64 group id per row, on the input device.
    num_groups : int
        Number of groups (product of per-feature level counts).
    index : pandas.Index
        Label of each group id; a ``MultiIndex`` for several features.
    """

    ids: torch.Tensor
    num_groups: int
    index: pd.Index

    def label(self, i: int) -> Any:
        """The label of group ``i`` (a tuple for several features)."""
        return self.index[i]


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
    if isinstance(sf, pd.Series):
        return [(str(sf.name) if sf.name is not None else "sensitive_feature_0", sf)]
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


def _encode_tensor(name: str, col: torch.Tensor) -> tuple[torch.Tensor, list[Any]]:
    if col.is_floating_point():
        nan = torch.isnan(col)
        if bool(nan.any()):
            raise _missing_error(name, nan.cpu().numpy())
    if not col.is_floating_point() and not col.is_complex() and col.numel() > 0:
        lo, hi = torch.aminmax(col)
        lo_i, hi_i = int(lo), int(hi)
        if lo_i >= 0 and hi_i < _DENSE_LIMIT:
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


def encode_groups(sensitive_features: Any, device: torch.device) -> Groups:
    """Encode one or several sensitive features as group ids on ``device``."""
    columns = _columns(sensitive_features)
    if not columns:
        raise ValueError("Expected `sensitive_features` to have at least one column, but got none.")
    ids: torch.Tensor | None = None
    levels: list[list[Any]] = []
    for name, col in columns:
        if isinstance(col, torch.Tensor):
            codes_t, values = _encode_tensor(name, col.to(device))
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
    names = [n for n, _ in columns]
    if len(columns) == 1:
        index: pd.Index = pd.Index(levels[0], name=names[0])
    else:
        index = pd.MultiIndex.from_product(levels, names=names)
    assert ids is not None
    return Groups(ids=ids, num_groups=len(index), index=index)
