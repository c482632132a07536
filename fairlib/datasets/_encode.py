"""Turn a pandas table into the tensors of a :class:`FairDataset`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from .._validation import check_choice

__all__ = ["category_codes", "encode_features", "pick_sensitive"]


def encode_features(
    df: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
) -> tuple[torch.Tensor, list[str]]:
    """Numeric columns as they are, then one indicator column per category (sorted).

    Indicator columns are named ``"column=category"``. Built with numpy scatter rather than
    ``pd.get_dummies`` to keep peak memory at the size of the result.
    """
    n = len(df)
    widths, codes_list, names = [], [], list(numeric)
    for col in categorical:
        codes, uniques = pd.factorize(df[col].astype(str), sort=True)
        codes_list.append(codes)
        widths.append(len(uniques))
        names += [f"{col}={u}" for u in uniques]
    X = np.zeros((n, len(numeric) + sum(widths)), dtype=np.float32)
    if numeric:
        X[:, : len(numeric)] = df[list(numeric)].to_numpy(dtype=np.float32)
    offset, rows = len(numeric), np.arange(n)
    for codes, width in zip(codes_list, widths, strict=True):
        X[rows, offset + codes] = 1.0
        offset += width
    return torch.from_numpy(X), names


def category_codes(values: pd.Series, categories: Sequence[str], name: str) -> torch.Tensor:
    """int64 codes of ``values`` in ``categories``; any other value is an error."""
    codes = pd.Categorical(values.astype(str), categories=list(categories)).codes
    if (codes < 0).any():
        bad = sorted(set(values[codes < 0].astype(str)))[:5]
        raise ValueError(
            f"Expected column `{name}` to hold only {list(categories)}, but got {bad}."
        )
    return torch.from_numpy(codes.astype(np.int64))


def pick_sensitive(sensitive: str | Sequence[str], available: Sequence[str]) -> list[str]:
    """Validate the ``sensitive`` argument of a loader; return it as a list of names."""
    names = [sensitive] if isinstance(sensitive, str) else list(sensitive)
    if not names:
        raise ValueError(
            f"Expected `sensitive` to name one of {', '.join(map(repr, available))}, "
            "but got an empty list."
        )
    for nm in names:
        check_choice("sensitive", nm, list(available))
    return names
