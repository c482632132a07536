"""Merge categories of a sensitive attribute into pools."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import torch

from .._validation import MSG_TYPE
from ._dataset import FairDataset


def pool_categories(
    ds: FairDataset, name: str, pools: Mapping[str, Sequence[str]], *, new_name: str
) -> FairDataset:
    """Add a sensitive attribute in which some categories of ``name`` are merged.

    Parameters
    ----------
    ds : FairDataset
        The data.
    name : str
        An existing sensitive attribute.
    pools : mapping of str to sequence of str
        New category -> the categories of ``name`` it replaces. Categories not mentioned
        keep their own name.
    new_name : str
        Name of the added attribute (the active attribute is unchanged).

    Returns
    -------
    FairDataset
        Copy with the attribute ``new_name``; its categories follow the first occurrence of
        their members in the order of ``ds.categories[name]``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import FairDataset
    >>> from fairlib.datasets import pool_categories
    >>> ds = FairDataset(X=torch.zeros(4, 1), y=torch.tensor([0, 1, 0, 1]),
    ...                  sensitive={"race": torch.tensor([0, 1, 2, 2])},
    ...                  categories={"race": ["Asian", "Other", "White"]})
    >>> pooled = pool_categories(ds, "race", {"Other races": ["Asian", "Other"]},
    ...                          new_name="race3")
    >>> pooled.categories["race3"], pooled.sensitive["race3"].tolist()
    (('Other races', 'White'), [0, 0, 1, 1])
    """
    if not isinstance(ds, FairDataset):
        raise TypeError(MSG_TYPE.format(name="ds", expected="a FairDataset",
                                        got=type(ds).__name__))
    if name not in ds.sensitive:
        raise ValueError(MSG_TYPE.format(name="name", expected="one of "
                                         + ", ".join(map(repr, ds.sensitive)), got=repr(name)))
    if new_name in ds.sensitive:
        raise ValueError(MSG_TYPE.format(name="new_name", expected="a new attribute name",
                                         got=f"{new_name!r}, which exists"))
    old = list(ds.categories[name])
    label_of = {c: c for c in old}
    seen: set[str] = set()
    for new, members in pools.items():
        if isinstance(members, str):
            raise TypeError(MSG_TYPE.format(name=f"pools[{new!r}]",
                                            expected="a sequence of category names",
                                            got="a string"))
        for m in members:
            if m not in label_of:
                raise ValueError(MSG_TYPE.format(name=f"pools[{new!r}]",
                                                 expected=f"categories of {name!r} among {old}",
                                                 got=repr(m)))
            if m in seen:
                raise ValueError(MSG_TYPE.format(name="pools",
                                                 expected="each category in at most one pool",
                                                 got=f"{m!r} twice"))
            seen.add(m)
            label_of[m] = str(new)
    new_cats = list(dict.fromkeys(label_of[c] for c in old))
    lookup = torch.tensor([new_cats.index(label_of[c]) for c in old], device=ds.device)
    return dataclasses.replace(
        ds,
        sensitive={**ds.sensitive, new_name: lookup[ds.sensitive[name]]},
        categories={**ds.categories, new_name: new_cats},
    )
