"""Build a :class:`FairDataset` from a practitioner's own pandas DataFrame."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from pandas.api import types as ptypes

from .._validation import MSG_TYPE, check_bool
from ._encode import encode_features

if TYPE_CHECKING:
    from ._dataset import FairDataset

__all__ = ["from_pandas", "sensitive_codes"]


def _fmt(values: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:limit])
    more = f", ... ({len(values)} values)" if len(values) > limit else ""
    return f"[{shown}{more}]"


def _sorted_unique(col: pd.Series) -> list[Any]:
    """Distinct non-missing values of ``col``, sorted (by their text when not comparable)."""
    uniques = list(pd.unique(col.dropna()))
    try:
        return sorted(uniques)
    except TypeError:
        return sorted(uniques, key=str)


def _is_column(value: Any, columns: pd.Index) -> bool:
    try:
        return isinstance(value, Hashable) and value in columns
    except (TypeError, ValueError):
        return False


def _names(
    arg: str, value: Any, columns: pd.Index, *, allow_empty: bool = False
) -> list[Hashable]:
    """``value`` (a column name or a list of them) as a list of existing, distinct columns."""
    single = _is_column(value, columns)  # a tuple can name a column too
    names = list(value) if isinstance(value, (list, tuple, pd.Index)) and not single else [value]
    if not names and not allow_empty:
        raise ValueError(MSG_TYPE.format(
            name=arg, expected="a column name or a non-empty list of them", got="an empty list"))
    unknown = [n for n in names if not _is_column(n, columns)]
    if unknown:
        raise ValueError(MSG_TYPE.format(
            name=arg, expected=f"column name(s) of `df` (it has {_fmt(list(columns))})",
            got=_fmt(unknown)))
    twice = sorted({str(n) for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(MSG_TYPE.format(name=arg, expected="distinct column names",
                                         got=f"{twice} more than once"))
    return names


def sensitive_codes(col: pd.Series, name: str) -> tuple[torch.Tensor, tuple[str, ...]]:
    """int64 codes of a sensitive column and the category name of each code.

    A pandas Categorical keeps its own categories (in their order, unused ones included);
    any other column gets its sorted distinct values. Codes come from the same list as the
    names, so the two cannot disagree.
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        values = list(col.cat.categories)
        codes = col.cat.codes.to_numpy(dtype=np.int64)
    else:
        values = _sorted_unique(col)
        codes = pd.Categorical(col, categories=values).codes.astype(np.int64)
    cats = tuple(str(v) for v in values)
    if len(set(cats)) != len(cats):
        raise ValueError(MSG_TYPE.format(
            name=f"df[{name!r}]", expected="categories with distinct names",
            got=f"{_fmt(values)}, whose names collide as text"))
    return torch.from_numpy(np.ascontiguousarray(codes)), cats


def _label(col: pd.Series, name: Hashable, positive: Any) -> tuple[torch.Tensor, str]:
    """0/1 labels of the label column, and what ``y == 1`` means."""
    values = _sorted_unique(col)
    if positive is None:
        if ptypes.is_bool_dtype(col.dtype) or (
                ptypes.is_numeric_dtype(col.dtype) and set(values) <= {0, 1}):
            return torch.from_numpy(col.to_numpy(dtype=np.int64, copy=True)), str(name)
        raise ValueError(MSG_TYPE.format(
            name="label_positive",
            expected=f"the value of column {name!r} that means y = 1 (the column is not 0/1 "
                     f"or boolean; it holds {_fmt(values)})",
            got="None"))
    try:
        found = any(bool(v == positive) for v in values)
    except (TypeError, ValueError):
        found = False
    if not found:
        raise ValueError(MSG_TYPE.format(
            name="label_positive",
            expected=f"one of the values of column {name!r}: {_fmt(values)}",
            got=repr(positive)))
    y = (col == positive).to_numpy(dtype=np.int64, copy=True)
    return torch.from_numpy(y), f"{name}={positive}"


def _feature_kinds(df: pd.DataFrame, features: list[Hashable],
                   categorical: Any) -> tuple[list[Hashable], list[Hashable]]:
    """Split the feature columns into numeric ones and ones to one-hot encode."""
    for c in features:
        dt = df[c].dtype
        if (ptypes.is_datetime64_any_dtype(dt) or ptypes.is_timedelta64_dtype(dt)
                or ptypes.is_complex_dtype(dt)
                or isinstance(dt, (pd.PeriodDtype, pd.IntervalDtype))):
            raise TypeError(MSG_TYPE.format(
                name=f"df[{c!r}]", expected="numbers, booleans or categories (convert dates and "
                "durations to numbers first, or leave the column out of `features`)",
                got=f"dtype {dt}"))
    numeric_like = {c for c in features
                    if ptypes.is_numeric_dtype(df[c].dtype) or ptypes.is_bool_dtype(df[c].dtype)}
    if isinstance(categorical, str) and categorical == "auto":
        cat = [c for c in features if c not in numeric_like]
    else:
        listed = [] if categorical is None else _names("categorical", categorical, df.columns,
                                                       allow_empty=True)
        outside = [c for c in listed if c not in features]
        if outside:
            raise ValueError(MSG_TYPE.format(
                name="categorical", expected="'auto' or feature columns",
                got=f"{_fmt(outside)}, which are not features"))
        text = [c for c in features if c not in numeric_like and c not in listed]
        if text:
            raise ValueError(
                f"Expected `categorical` to list every non-numeric feature column (or to be "
                f"'auto'), but got {_fmt(listed)}, which leaves out {_fmt(text)}.")
        cat = [c for c in features if c in listed]
    return [c for c in features if c not in cat], cat


def _drop_missing(df: pd.DataFrame, used: list[Hashable], numeric: list[Hashable],
                  dropna: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """Refuse (or drop, with a warning) rows with a missing value in a used column."""
    na = df[used].isna().to_numpy()
    counts = na.sum(axis=0)
    rows = np.arange(len(df))
    if counts.any():
        where = ", ".join(f"{n} in column {c!r}" for c, n in zip(used, counts, strict=True) if n)
        if not dropna:
            first = df.index[int(np.flatnonzero(na.any(axis=1))[0])]
            raise ValueError(MSG_TYPE.format(
                name="df", expected="free of missing values in the label, sensitive and feature "
                "columns (fill them, or pass dropna=True to drop those rows)",
                got=f"{where} (first at index {first!r})"))
        keep = ~na.any(axis=1)
        if not keep.any():
            raise ValueError(MSG_TYPE.format(
                name="df", expected="some rows without missing values", got=f"none ({where})"))
        warnings.warn(f"from_pandas dropped {int((~keep).sum())} of {len(df)} rows with missing "
                      f"values ({where}).", UserWarning, stacklevel=4)
        df, rows = df[keep], rows[keep]
    for c in numeric:
        values = df[c].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            first = df.index[np.flatnonzero(bad)[0]]
            raise ValueError(MSG_TYPE.format(
                name=f"df[{c!r}]", expected="finite numbers",
                got=f"infinity at {int(bad.sum())} row(s) (first at index {first!r})"))
    return df, rows


def from_pandas(
    cls: type[FairDataset],
    df: pd.DataFrame,
    *,
    label: Hashable,
    sensitive: Hashable | Sequence[Hashable],
    features: Sequence[Hashable] | None = None,
    categorical: Literal["auto"] | Sequence[Hashable] | None = "auto",
    label_positive: Any = None,
    standardize: bool = True,
    dropna: bool = False,
    name: str = "dataset",
) -> FairDataset:
    """Implementation of :meth:`FairDataset.from_pandas` (see there)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(MSG_TYPE.format(name="df", expected="a pandas DataFrame",
                                        got=type(df).__name__))
    if df.columns.duplicated().any():
        twice = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise ValueError(MSG_TYPE.format(name="df", expected="distinct column names",
                                         got=f"{twice} more than once"))
    if len(df) == 0:
        raise ValueError(MSG_TYPE.format(name="df", expected="non-empty", got="0 rows"))
    standardize = check_bool("standardize", standardize)
    dropna = check_bool("dropna", dropna)
    if not _is_column(label, df.columns) and isinstance(label, (list, tuple)):
        raise ValueError(MSG_TYPE.format(name="label", expected="one column name",
                                         got=_fmt(list(label))))
    (label_col,) = _names("label", label, df.columns)
    sens = _names("sensitive", sensitive, df.columns)
    if label_col in sens:
        raise ValueError(MSG_TYPE.format(name="sensitive", expected="columns other than the label",
                                         got=repr(label_col)))
    if features is None:
        feats = [c for c in df.columns if c != label_col and c not in sens]
    else:
        feats = _names("features", features, df.columns, allow_empty=True)
        if label_col in feats:
            raise ValueError(MSG_TYPE.format(
                name="features", expected="columns other than the label",
                got=f"{_fmt(feats)}, which holds the label {label_col!r}"))
    if not feats:
        raise ValueError(MSG_TYPE.format(name="features", expected="at least one feature column",
                                         got="none"))
    numeric, cat = _feature_kinds(df, feats, categorical)
    used = list(dict.fromkeys([label_col, *sens, *feats]))
    df, rows = _drop_missing(df, used, numeric, dropna)
    y, label_name = _label(df[label_col], label_col, label_positive)
    codes = {str(s): sensitive_codes(df[s], str(s)) for s in sens}
    X, names = encode_features(df, numeric, cat)
    ds = cls(X=X, y=y, sensitive={k: c for k, (c, _) in codes.items()},
             categories={k: n for k, (_, n) in codes.items()}, feature_names=names, name=name,
             label_name=label_name, source_index=torch.from_numpy(rows.astype(np.int64)),
             standardize=standardize)
    return ds.with_sensitive(*codes)
