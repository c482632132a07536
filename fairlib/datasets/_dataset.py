"""The one dataset type of ``fairlib``: features, binary label, named sensitive attributes."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from .._validation import MSG_TYPE, check_device, check_fraction
from ..metrics import intersection_ids
from ._split import split_rows
from ._standardize import Standardizer

__all__ = ["FairDataset", "Splits", "Standardizer"]

Rows = torch.Tensor | np.ndarray | Sequence[int] | slice


class Splits(NamedTuple):
    """The three splits returned by :meth:`FairDataset.split`.

    ``meta`` is the held-out set that reweighting methods may use while training;
    ``test`` is used for evaluation only.
    """

    train: FairDataset
    meta: FairDataset
    test: FairDataset


@dataclass(frozen=True, eq=False, repr=False)
class FairDataset(Dataset):
    """Features, a binary label and named sensitive attributes, usable as a torch ``Dataset``.

    ``ds[i]`` returns the tuple ``(x, y, group, index)``: the features, the label, the code of
    the active sensitive attribute and the sample's position ``i`` in this dataset. A
    ``DataLoader`` collates them into four batch tensors, so per-sample weights stored in a
    tensor of length ``len(ds)`` can be looked up as ``w[index]``. ``source_index`` keeps the
    row of the originally loaded table through subsets and splits.

    Parameters
    ----------
    X : torch.Tensor
        Float features ``[N, d]``, or images ``[N, C, H, W]``; stored as float32.
    y : torch.Tensor
        Labels in ``{0, 1}``, stored as int64 ``[N]``.
    sensitive : Mapping[str, torch.Tensor or pandas.Categorical]
        Attribute name -> int64 codes ``[N]``; code ``k`` means ``categories[name][k]``.
        A pandas Categorical (or categorical Series) brings its own codes and categories.
    categories : Mapping[str, Sequence[str]]
        Attribute name -> category names, one per code (required for every attribute
        given as codes). Too few names for the codes is an error, never a silent
        relabelling.
    feature_names : Sequence[str]
        One name per column of a 2-d ``X`` (channel names for images).
    description : str
        What the data is, where it comes from and how to cite it.
    name : str
        Short name used in summaries.
    label_name : str
        What ``y == 1`` means.
    group_name : str, optional
        The active sensitive attribute (returned by ``ds[i]`` and used for stratification);
        defaults to the first one.
    extras : Mapping[str, torch.Tensor]
        Further per-sample columns (e.g. the COMPAS decile score, clean labels).
    source_index : torch.Tensor, optional
        int64 row ids in the source table; defaults to ``arange(N)``.
    scaler : Standardizer, optional
        The standardisation already applied to ``X``, if any.
    standardize : bool, optional
        Default of :meth:`split`'s ``standardize``; ``None``: standardise tabular ``X``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import FairDataset
    >>> ds = FairDataset(X=torch.zeros(4, 2), y=torch.tensor([0, 1, 1, 0]),
    ...                  sensitive={"sex": torch.tensor([0, 0, 1, 1])},
    ...                  categories={"sex": ["female", "male"]}, feature_names=["a", "b"])
    >>> x, y, group, index = ds[2]
    >>> int(y), int(group), int(index)
    (1, 1, 2)
    >>> ds.summary()["base_rate"].tolist()
    [0.5, 0.5]
    """

    X: torch.Tensor
    y: torch.Tensor
    sensitive: Mapping[str, torch.Tensor]
    categories: Mapping[str, Sequence[str]] = field(default_factory=dict)
    feature_names: Sequence[str] = ()
    description: str = ""
    name: str = "dataset"
    label_name: str = "y"
    group_name: str | None = None
    extras: Mapping[str, torch.Tensor] = field(default_factory=dict)
    source_index: torch.Tensor | None = None
    scaler: Standardizer | None = None
    standardize: bool | None = None
    index: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        X = _as_tensor(self.X, "X")
        if X.is_complex():
            raise TypeError(
                MSG_TYPE.format(name="X", expected="real numbers", got=f"dtype {X.dtype}")
            )
        if X.ndim not in (2, 4):
            raise ValueError(
                MSG_TYPE.format(
                    name="X",
                    expected="of shape [N, d] or [N, C, H, W]",
                    got=f"shape {tuple(X.shape)}",
                )
            )
        n = X.shape[0]
        set_ = object.__setattr__  # frozen dataclass: normalise fields once, here
        set_(self, "X", X.to(torch.float32))
        set_(self, "y", _codes(self.y, "y", n, 2, X.device))
        if not isinstance(self.sensitive, Mapping) or not self.sensitive:
            raise TypeError(
                MSG_TYPE.format(
                    name="sensitive",
                    expected="a non-empty mapping of attribute name to codes",
                    got=type(self.sensitive).__name__,
                )
            )
        if not isinstance(self.categories, Mapping):
            raise TypeError(
                MSG_TYPE.format(
                    name="categories",
                    expected="a mapping of attribute name to category names",
                    got=type(self.categories).__name__,
                )
            )
        cats = {str(k): tuple(str(c) for c in v) for k, v in self.categories.items()}
        given: dict[str, Any] = {}
        for k, v in self.sensitive.items():
            # A Categorical carries its names: take codes and names together, so they agree.
            parts = _categorical_parts(v, f"sensitive[{str(k)!r}]")
            if parts is not None:
                v, names = parts
                if str(k) in cats and cats[str(k)] != names:
                    raise ValueError(
                        MSG_TYPE.format(
                            name=f"categories[{str(k)!r}]",
                            expected=f"the categories of the Categorical `sensitive[{str(k)!r}]`, "
                            f"{list(names)}, or left out",
                            got=list(cats[str(k)]),
                        )
                    )
                cats[str(k)] = names
            given[str(k)] = v
        missing = [k for k in given if k not in cats]
        if missing:
            raise ValueError(
                MSG_TYPE.format(
                    name="categories",
                    expected="a list of category names for every sensitive attribute",
                    got=f"none for {missing}",
                )
            )
        for k in given:
            _check_names(cats[k], f"categories[{k!r}]")
        set_(self, "categories", {k: cats[k] for k in given})
        set_(
            self,
            "sensitive",
            {
                k: _codes(v, f"sensitive[{k!r}]", n, len(cats[k]), X.device,
                          names=f"categories[{k!r}]")
                for k, v in given.items()
            },
        )
        names = tuple(str(f) for f in self.feature_names)
        if X.ndim == 2 and names and len(names) != X.shape[1]:
            raise ValueError(
                MSG_TYPE.format(
                    name="feature_names",
                    expected=f"{X.shape[1]} names (one per column of X)",
                    got=f"{len(names)}",
                )
            )
        set_(self, "feature_names", names)
        group = next(iter(self.sensitive)) if self.group_name is None else self.group_name
        if group not in self.sensitive:
            raise ValueError(
                MSG_TYPE.format(
                    name="group_name",
                    expected="one of " + ", ".join(map(repr, self.sensitive)),
                    got=repr(group),
                )
            )
        set_(self, "group_name", group)
        extras = {
            str(k): _as_tensor(v, f"extras[{k!r}]").to(X.device) for k, v in self.extras.items()
        }
        for k, v in extras.items():
            if v.ndim != 1 or v.shape[0] != n:
                raise ValueError(
                    MSG_TYPE.format(
                        name=f"extras[{k!r}]",
                        expected=f"of shape [{n}]",
                        got=f"shape {tuple(v.shape)}",
                    )
                )
        set_(self, "extras", extras)
        src = torch.arange(n, device=X.device) if self.source_index is None else self.source_index
        set_(self, "source_index", _as_tensor(src, "source_index").to(X.device, torch.int64))
        if self.source_index.shape != (n,):
            raise ValueError(
                MSG_TYPE.format(
                    name="source_index",
                    expected=f"of shape [{n}]",
                    got=f"shape {tuple(self.source_index.shape)}",
                )
            )
        set_(self, "index", torch.arange(n, device=X.device))

    @classmethod
    def from_pandas(
        cls,
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
        """A dataset from your own DataFrame: features encoded, label and groups coded.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per sample. Numeric, boolean, text, pandas Categorical and nullable
            (``Int64``, ``boolean``, ``string``) columns are handled.
        label : column name
            The binary label: 0/1 numbers or booleans, or any two (or more) values with
            ``label_positive`` naming the one that means ``y = 1``.
        sensitive : column name or list of names
            The sensitive attribute(s); each is also kept out of the features unless listed
            in ``features``. Categories are the column's sorted distinct values, or a pandas
            Categorical's own categories (in their order, unused ones kept as empty groups);
            the names are recorded in ``categories`` from the very list the codes index, so
            codes and names cannot disagree. Several names make their intersection the
            active attribute (as the loaders do).
        features : list of column names, optional
            Feature columns; default every column but the label and the sensitive ones.
        categorical : "auto", list of column names or None
            Feature columns to one-hot encode (indicator columns named ``"column=value"``).
            ``"auto"``: every non-numeric, non-boolean feature column. A list must name all
            of those and may add numeric columns (codes such as zip areas).
        label_positive : optional
            The label value meaning ``y = 1``; required when the label is not 0/1 or boolean.
        standardize : bool, default True
            Default of :meth:`split`'s ``standardize``: scale the non-indicator features with
            statistics of the training split only. The returned dataset itself is unscaled.
        dropna : bool, default False
            Missing values in the columns used are an error naming the column; ``True`` drops
            those rows instead, with a warning giving the count.
        name : str
            Short name used in summaries.

        Returns
        -------
        FairDataset
            ``source_index`` holds each row's position in ``df`` (``df.iloc``).

        Examples
        --------
        >>> import pandas as pd
        >>> from fairlib.datasets import FairDataset
        >>> df = pd.DataFrame({"age": [25, 32, 47, 51, 38, 29],
        ...                    "city": ["Oslo", "Lima", "Oslo", "Pune", "Lima", "Pune"],
        ...                    "race": ["white", "black", "asian", "white", "asian", "black"],
        ...                    "approved": ["yes", "no", "yes", "no", "yes", "no"]})
        >>> ds = FairDataset.from_pandas(df, label="approved", label_positive="yes",
        ...                              sensitive="race")
        >>> ds.feature_names
        ('age', 'city=Lima', 'city=Oslo', 'city=Pune')
        >>> ds.y.tolist(), ds.group.tolist(), ds.group_categories
        ([1, 0, 1, 0, 1, 0], [2, 1, 0, 2, 0, 1], ('asian', 'black', 'white'))
        >>> ds.summary()["n"].tolist()
        [2, 2, 2]
        """
        from ._from_pandas import from_pandas

        return from_pandas(cls, df, label=label, sensitive=sensitive, features=features,
                           categorical=categorical, label_positive=label_positive,
                           standardize=standardize, dropna=dropna, name=name)

    # -- torch Dataset protocol -------------------------------------------------------------
    def __len__(self) -> int:
        return self.X.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.X[i], self.y[i], self.group[i], self.index[i]

    # -- views ------------------------------------------------------------------------------
    @property
    def group(self) -> torch.Tensor:
        """int64 codes of the active sensitive attribute."""
        return self.sensitive[self.group_name]  # type: ignore[index]

    @property
    def group_categories(self) -> tuple[str, ...]:
        """Category names of the active sensitive attribute."""
        return tuple(self.categories[self.group_name])  # type: ignore[index]

    @property
    def n_groups(self) -> int:
        """Number of categories of the active sensitive attribute."""
        return len(self.group_categories)

    @property
    def cells(self) -> torch.Tensor:
        """int64 (group, label) cell of every row, group-major: ``2 * group + y``.

        Cell ``c`` is group ``c // 2`` with label ``c % 2``, in the order of
        :attr:`cell_names`; every part of fairlib that counts cells uses this order.

        Examples
        --------
        >>> from fairlib.datasets import make_biased_classification
        >>> data = make_biased_classification(6, seed=0)
        >>> bool((data.cells == 2 * data.group + data.y).all()), data.cell_names[:2]
        (True, ('majority, y=0', 'majority, y=1'))
        """
        return self.group * 2 + self.y

    @property
    def cell_names(self) -> tuple[str, ...]:
        """Names of the (group, label) cells, ``"<group>, y=<label>"``, in the order of :attr:`cells`."""
        return tuple(f"{c}, y={k}" for c in self.group_categories for k in (0, 1))

    def cell_view(self, attribute: str | None = None) -> FairDataset:
        """Copy whose active attribute is the (``attribute``, label) cell.

        The new attribute is called ``"<attribute> x label"`` with the categories of
        :attr:`cell_names`. Features, labels and the other attributes are shared (no
        copy). Passed as ``meta`` or ``test`` to :func:`fairlib.train.fit`, it makes the
        history's ``worst_group_accuracy`` the worst-cell accuracy. Do not train on the
        view with a strategy that balances (group, label) cells: its groups already
        contain the label, so half of the (cell, label) combinations would be empty.

        Parameters
        ----------
        attribute : str, optional
            The sensitive attribute to cross with the label; default: the active one.

        Examples
        --------
        >>> from fairlib.datasets import make_colored_digits
        >>> cells = make_colored_digits(seed=0).test.cell_view()
        >>> cells.group_name, cells.group_categories
        ('color x label', ('red, y=0', 'red, y=1', 'green, y=0', 'green, y=1'))
        >>> cells.summary()["n"].tolist()
        [90, 89, 90, 90]
        """
        name = self.group_name if attribute is None else attribute
        if name not in self.sensitive:
            raise ValueError(MSG_TYPE.format(name="attribute",
                                             expected="one of " + ", ".join(map(repr, self.sensitive)),
                                             got=repr(attribute)))
        source = self if name == self.group_name else dataclasses.replace(self, group_name=name)
        key = f"{name} x label"
        return dataclasses.replace(self, sensitive={**self.sensitive, key: source.cells},
                                   categories={**self.categories, key: list(source.cell_names)},
                                   group_name=key)

    @property
    def device(self) -> torch.device:
        """Device holding the tensors."""
        return self.X.device

    def to(self, device: torch.device | str) -> FairDataset:
        """Copy with every tensor on ``device``.

        ``"auto"`` is CUDA when available, else the CPU; a device this machine does
        not have (``"cuda"`` without CUDA) raises ``ValueError`` naming ``device``
        before anything is copied.

        Examples
        --------
        >>> from fairlib.datasets import make_biased_classification
        >>> make_biased_classification(10, seed=0).to("cpu").X.device
        device(type='cpu')
        """
        device = check_device("device", device)
        return dataclasses.replace(
            self,
            X=self.X.to(device),
            y=self.y.to(device),
            sensitive={k: v.to(device) for k, v in self.sensitive.items()},
            extras={k: v.to(device) for k, v in self.extras.items()},
            source_index=self.source_index.to(device),  # type: ignore[union-attr]
            scaler=None if self.scaler is None else self.scaler.to(device),
        )

    def with_sensitive(self, *names: str) -> FairDataset:
        """Copy whose active attribute is ``names[0]``, or the intersection of several.

        Several names add an attribute ``"a & b"`` whose categories are the observed
        combinations, e.g. ``"Female & Black"``.

        Examples
        --------
        >>> from fairlib.datasets import make_biased_classification
        >>> ds = make_biased_classification(100, seed=0)
        >>> ds.with_sensitive("group").group_name
        'group'
        """
        if not names:
            raise ValueError("Expected `names` to hold at least one attribute name, but got none.")
        for nm in names:
            if nm not in self.sensitive:
                raise ValueError(
                    MSG_TYPE.format(
                        name="names",
                        expected="attribute names among " + ", ".join(map(repr, self.sensitive)),
                        got=repr(nm),
                    )
                )
        if len(names) == 1:
            return dataclasses.replace(self, group_name=names[0])
        codes, combos = intersection_ids([self.sensitive[nm] for nm in names])
        labels = [" & ".join(self.categories[nm][c] for nm, c in zip(names, row, strict=True))
                  for row in combos.tolist()]
        key = " & ".join(names)
        return dataclasses.replace(
            self,
            sensitive={**self.sensitive, key: codes},
            categories={**self.categories, key: labels},
            group_name=key,
        )

    def subset(self, rows: Rows) -> FairDataset:
        """Dataset of the given rows (int positions or a bool mask), positions renumbered.

        ``source_index`` follows the rows, so a sample can be traced back to the source table.
        """
        idx = _rows_to_index(rows, len(self), self.device)
        return dataclasses.replace(
            self,
            X=self.X[idx],
            y=self.y[idx],
            sensitive={k: v[idx] for k, v in self.sensitive.items()},
            extras={k: v[idx] for k, v in self.extras.items()},
            source_index=self.source_index[idx],  # type: ignore[index]
        )

    def keep_groups(self, name: str, keep: Sequence[str]) -> FairDataset:
        """Rows whose attribute ``name`` is one of ``keep``; that attribute is recoded to ``keep``.

        Examples
        --------
        >>> from fairlib.datasets import make_biased_classification
        >>> ds = make_biased_classification(100, seed=0).keep_groups("group", ["minority"])
        >>> ds.group_categories, int(ds.group.max())
        (('minority',), 0)
        """
        if name not in self.sensitive:
            raise ValueError(
                MSG_TYPE.format(
                    name="name",
                    expected="one of " + ", ".join(map(repr, self.sensitive)),
                    got=repr(name),
                )
            )
        cats = list(self.categories[name])
        unknown = [c for c in keep if c not in cats]
        if unknown or not keep:
            raise ValueError(
                MSG_TYPE.format(
                    name="keep",
                    expected=f"a non-empty list of categories of {name!r} among {cats}",
                    got=unknown or "[]",
                )
            )
        old_codes = torch.tensor([cats.index(c) for c in keep], device=self.device)
        mask = torch.isin(self.sensitive[name], old_codes)
        sub = self.subset(mask)
        remap = torch.full((len(cats),), -1, dtype=torch.int64, device=self.device)
        remap[old_codes] = torch.arange(len(keep), device=self.device)
        return dataclasses.replace(
            sub,
            sensitive={**sub.sensitive, name: remap[sub.sensitive[name]]},
            categories={**sub.categories, name: list(keep)},
        )

    def with_labels(self, y: torch.Tensor, **extras: torch.Tensor) -> FairDataset:
        """Copy with new labels (and optionally added extra columns)."""
        return dataclasses.replace(self, y=y, extras={**self.extras, **extras})

    # -- splitting --------------------------------------------------------------------------
    def split(
        self,
        train: float = 0.6,
        meta: float = 0.2,
        test: float = 0.2,
        *,
        seed: int = 0,
        meta_balanced: bool | Literal["group", "group_label"] = False,
        standardize: bool | None = None,
    ) -> Splits:
        """Seeded train / meta / test split stratified by active group x label.

        Parameters
        ----------
        train, meta, test : float
            Fractions of the rows; they must sum to 1.
        seed : int
            Seed of the permutation; the same seed gives the same split.
        meta_balanced : bool or {"group", "group_label"}
            ``False``: the meta split is stratified like the others. ``True`` or ``"group"``:
            the meta split has (about) ``meta * N`` rows shared equally among groups, each group
            keeping its own label ratio. ``"group_label"``: shared equally among the
            group x label cells. At most half of a cell goes to the meta split, so train and
            test keep members of every cell; the rest of each cell is divided between train
            and test in the ratio ``train : test``.
        standardize : bool, optional
            Standardise non-indicator columns with statistics of the training split only
            (see :class:`Standardizer`). Default: the dataset's ``standardize`` field, else
            ``True`` for tabular ``X``, ``False`` for images.

        Returns
        -------
        Splits
            ``(train, meta, test)``; each keeps ``source_index`` and the fitted ``scaler``.

        Examples
        --------
        >>> from fairlib.datasets import make_biased_classification
        >>> ds = make_biased_classification(1000, seed=0)
        >>> train, meta, test = ds.split(0.6, 0.2, 0.2, seed=1)
        >>> len(train), len(meta), len(test)
        (600, 200, 200)
        >>> bool(abs(train.X.mean(0)).max() < 1e-5)
        True
        """
        fracs = {"train": train, "meta": meta, "test": test}
        for k, v in fracs.items():
            check_fraction(k, v)
        if abs(train + meta + test - 1.0) > 1e-6 or train == 0:
            raise ValueError(
                MSG_TYPE.format(
                    name="train`, `meta` and `test",
                    expected="fractions summing to 1 with train > 0",
                    got=f"{train!r} + {meta!r} + {test!r}",
                )
            )
        mode = {False: None, True: "group"}.get(meta_balanced, meta_balanced)  # type: ignore[arg-type]
        if mode not in (None, "group", "group_label"):
            raise ValueError(
                MSG_TYPE.format(
                    name="meta_balanced",
                    expected="one of False, True, 'group', 'group_label'",
                    got=repr(meta_balanced),
                )
            )
        rows = split_rows(self.group, self.y, self.n_groups, (train, meta, test), seed, mode)
        out = {
            k: self.subset(r.to(self.device))
            for k, r in zip(("train", "meta", "test"), rows, strict=True)
        }
        if standardize is None:
            standardize = self.X.ndim == 2 if self.standardize is None else self.standardize
        if standardize:
            if self.X.ndim != 2:
                raise ValueError(
                    MSG_TYPE.format(
                        name="standardize", expected="False for image data", got="True"
                    )
                )
            scaler = Standardizer.fit(out["train"].X)
            out = {
                k: dataclasses.replace(v, X=scaler.transform(v.X), scaler=scaler)
                for k, v in out.items()
            }
        return Splits(out["train"], out["meta"], out["test"])

    # -- reporting --------------------------------------------------------------------------
    def summary(self, name: str | None = None) -> pd.DataFrame:
        """Rows, share and base rate ``P(y=1)`` per category of a sensitive attribute.

        ``name`` defaults to the active attribute.
        """
        name = self.group_name if name is None else name
        codes = self.sensitive[name].cpu()  # type: ignore[index]
        k = len(self.categories[name])  # type: ignore[index]
        n = torch.bincount(codes, minlength=k)
        pos = torch.bincount(codes, weights=self.y.cpu().to(torch.float64), minlength=k)
        # An empty group has no base rate: NaN, not 0 (bincount of nothing is int64).
        rate = pos.double() / n.double()
        return pd.DataFrame(
            {"n": n.numpy(), "share": (n / max(len(self), 1)).numpy(), "base_rate": rate.numpy()},
            index=pd.Index(self.categories[name], name=name),  # type: ignore[index]
        )

    def to_pandas(self) -> pd.DataFrame:
        """Table of features (2-d ``X`` only), label, sensitive attributes (names), extras."""
        cols: dict[str, Any] = {}
        if self.X.ndim == 2:
            names = self.feature_names or [f"x{j}" for j in range(self.X.shape[1])]
            cols.update(zip(names, self.X.cpu().numpy().T, strict=True))
        cols[self.label_name] = self.y.cpu().numpy()
        for k, v in self.sensitive.items():
            cols[k] = pd.Categorical.from_codes(
                v.cpu().numpy(), categories=list(self.categories[k])
            )
        cols.update({k: v.cpu().numpy() for k, v in self.extras.items()})
        return pd.DataFrame(
            cols, index=pd.Index(self.source_index.cpu().numpy(), name="source_index")
        )  # type: ignore[union-attr]

    def __repr__(self) -> str:
        shape = (
            f"{self.X.shape[1]} features"
            if self.X.ndim == 2
            else "images " + "x".join(map(str, self.X.shape[1:]))
        )
        rate = float(self.y.double().mean()) if len(self) else float("nan")
        attrs = ", ".join(
            f"{k}{'*' if k == self.group_name else ''} ({len(c)} groups)"
            for k, c in self.categories.items()
        )
        lines = [
            (
                f"FairDataset {self.name!r}: {len(self):,} rows, {shape}, "
                f"label {self.label_name!r} (base rate {rate:.3f}), device {self.device}"
            ),
            f"sensitive attributes: {attrs}  (* active)",
        ]
        if self.extras:
            lines.append("extra columns: " + ", ".join(self.extras))
        table = self.summary().to_string(float_format=lambda v: f"{v:.3f}")
        lines += [f"by {self.group_name}:", table]
        if self.description:
            lines.append(self.description.strip().splitlines()[0])
        return "\n".join(lines)


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, pd.DataFrame):
        text = [str(c) for c in x.columns
                if not (pd.api.types.is_numeric_dtype(x[c]) or pd.api.types.is_bool_dtype(x[c]))]
        if text:
            raise TypeError(
                MSG_TYPE.format(
                    name=name,
                    expected="a tensor or array of numbers (FairDataset.from_pandas encodes a "
                    "DataFrame's text and category columns)",
                    got=f"a DataFrame with non-numeric column(s) {text[:5]}",
                )
            )
    try:
        arr = x.to_numpy() if isinstance(x, (pd.Series, pd.DataFrame)) else np.asarray(x)
        # pandas may hand out a read-only view; torch warns on those, so copy (once).
        return torch.as_tensor(arr if arr.flags.writeable else arr.copy())
    except (TypeError, ValueError) as err:
        raise TypeError(
            MSG_TYPE.format(
                name=name, expected="a tensor or array of numbers", got=type(x).__name__
            )
        ) from err


def _categorical_parts(x: Any, name: str) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """Codes and category names of a pandas Categorical (or categorical Series); else None."""
    if isinstance(x, pd.Series) and isinstance(x.dtype, pd.CategoricalDtype):
        x = x.array
    if not isinstance(x, pd.Categorical):
        return None
    codes = np.asarray(x.codes, dtype=np.int64)
    if (codes < 0).any():
        raise ValueError(
            MSG_TYPE.format(
                name=name,
                expected="a Categorical without missing values",
                got=f"{int((codes < 0).sum())} missing "
                f"(first at position {int(np.argmax(codes < 0))})",
            )
        )
    return codes, tuple(str(c) for c in x.categories)


def _check_names(names: Sequence[str], name: str) -> None:
    if not names:
        raise ValueError(
            MSG_TYPE.format(name=name, expected="at least one category name", got="none")
        )
    if len(set(names)) != len(names):
        twice = sorted({c for c in names if names.count(c) > 1})
        raise ValueError(MSG_TYPE.format(name=name, expected="distinct names",
                                         got=f"{twice} more than once"))


def _codes(
    x: Any, name: str, n: int, k: int, device: torch.device, names: str | None = None
) -> torch.Tensor:
    """Validate integer codes in ``[0, k)`` of length ``n`` and return int64 on ``device``.

    ``names`` is the argument holding the ``k`` category names, for the error message.
    """
    t = _as_tensor(x, name)
    if t.is_complex():
        raise TypeError(
            MSG_TYPE.format(name=name, expected="integer codes", got=f"dtype {t.dtype}")
        )
    if t.is_floating_point():
        nan = torch.isnan(t)
        if bool(nan.any()):
            raise ValueError(
                MSG_TYPE.format(
                    name=name,
                    expected="integer codes without missing values",
                    got=f"NaN at {int(nan.sum())} position(s)",
                )
            )
        fractional = t != torch.round(t)
        if bool(fractional.any()):
            # Truncating 0.2 and 0.7 to 0 would merge two groups silently.
            raise TypeError(
                MSG_TYPE.format(
                    name=name,
                    expected="integer codes",
                    got=f"dtype {t.dtype} with non-integer values such as "
                    f"{float(t[fractional][0]):g}",
                )
            )
    if t.shape != (n,):
        raise ValueError(
            MSG_TYPE.format(name=name, expected=f"of shape [{n}]", got=f"shape {tuple(t.shape)}")
        )
    t = t.to(device, torch.int64)
    if n and (int(t.min()) < 0 or int(t.max()) >= k):
        hint = ""
        if names is not None and int(t.min()) >= 0:
            hint = (
                f": `{names}` has {k} name(s), so the largest code, {int(t.max())}, has no "
                "name (give one category name per code, in code order)"
            )
        raise ValueError(
            MSG_TYPE.format(
                name=name,
                expected=f"codes in 0..{k - 1}",
                got=f"values from {int(t.min())} to {int(t.max())}{hint}",
            )
        )
    return t


def _rows_to_index(rows: Rows, n: int, device: torch.device) -> torch.Tensor:
    if isinstance(rows, slice):
        return torch.arange(n, device=device)[rows]
    idx = _as_tensor(rows, "rows").to(device)
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise ValueError(
                MSG_TYPE.format(
                    name="rows",
                    expected=f"a bool mask of shape [{n}]",
                    got=f"shape {tuple(idx.shape)}",
                )
            )
        return torch.nonzero(idx).flatten()
    if idx.is_floating_point() or idx.ndim != 1:
        raise TypeError(
            MSG_TYPE.format(
                name="rows",
                expected="1-d integer positions or a bool mask",
                got=f"dtype {idx.dtype}, shape {tuple(idx.shape)}",
            )
        )
    return idx.to(torch.int64)
