"""Kamiran-Calders reweighing: static weights that make the label independent of the group.

``W(a, y) = P(A=a) P(Y=y) / P(A=a, Y=y) = n_a n_y / (n n_{a,y})`` for every group x label
cell (Kamiran and Calders, KAIS 2012; the every-cell form of AIF360's scikit-learn API
class). After reweighing, the weighted ``P(Y=1 | A=a)`` equals ``P(Y=1)`` in every group.

**Empty-cell policy.** A cell ``(a, y)`` without samples has no defined factor: its entry
in the factor table is NaN and a warning names it. No sample carries it, so it changes no
weight, but group ``a`` then has a single label and its weighted ``P(Y=1 | A=a)`` stays at
0 or 1; it cannot be equalised. The weights are normalised to mean 1 afterwards (with no
empty cell and no prior weights the sum is already ``n`` and the normalisation changes
nothing).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Sampler, WeightedRandomSampler

from .._validation import (
    MSG_NDIM,
    MSG_TYPE,
    as_weights,
    check_group_codes,
    check_lengths,
    msg_expected,
    to_tensor,
)
from ..metrics import intersection_ids
from ._common import (
    SAMPLING_MODES,
    SamplingMode,
    check_choice,
    check_number,
    check_train,
    effective_sample_size,
    make_generator,
)
from .base import Batch, WeightingStrategy

__all__ = ["Reweighing", "reweighing_weights"]


def _is_scalar(value: Any) -> bool:
    return (isinstance(value, (str, bytes, int, float, np.generic)) or value is None
            or (isinstance(value, torch.Tensor) and value.ndim == 0))


def _group_columns(groups: Any) -> list[tuple[str, Any]]:
    """The attributes of ``groups`` as named columns (a 2-d input or a list of arrays: several)."""
    if isinstance(groups, pd.DataFrame):
        return [(f"groups[{c!r}]", groups[c]) for c in groups.columns]
    if isinstance(groups, dict):
        return [(f"groups[{k!r}]", v) for k, v in groups.items()]
    if isinstance(groups, (torch.Tensor, np.ndarray)) and groups.ndim == 2 and groups.shape[1] > 1:
        return [(f"groups[:, {j}]", groups[:, j]) for j in range(groups.shape[1])]
    if isinstance(groups, (list, tuple)) and groups and not _is_scalar(groups[0]):
        return [(f"groups[{j}]", g) for j, g in enumerate(groups)]
    return [("groups", groups)]


def _column_codes(name: str, col: Any) -> tuple[torch.Tensor, list[Any] | None]:
    """Integer codes of one attribute, and its level names when the values are not codes.

    Numbers are group codes (NaN and non-integer floats refused); strings, categoricals
    and other non-numeric values are names, coded in sorted order as the metrics do.
    """
    if isinstance(col, pd.Categorical):
        col = pd.Series(col)
    if isinstance(col, pd.Series) and not (pd.api.types.is_numeric_dtype(col.dtype)
                                           or pd.api.types.is_bool_dtype(col.dtype)):
        values = col.to_numpy(dtype=object)
    elif isinstance(col, (torch.Tensor, pd.Series)):
        return check_group_codes(to_tensor(col, name), name), None
    else:
        values = np.asarray(col, dtype=object if isinstance(col, (list, tuple)) else None)
        named = any(isinstance(v, (str, bytes)) for v in values.ravel()) if values.dtype == object else False
        numeric = values.dtype.kind in "biuf" or (values.dtype == object and not named)
        if numeric:
            return check_group_codes(to_tensor(col, name), name), None
    if values.ndim != 1:
        raise ValueError(MSG_NDIM.format(name=name, shape=values.shape))
    missing = np.asarray(pd.isna(values))
    if missing.any():
        raise ValueError(msg_expected(
            name, "group values without missing ones",
            f"{int(missing.sum())} missing (first at index {int(np.flatnonzero(missing)[0])})"))
    try:
        codes, levels = pd.factorize(values, sort=True)
    except TypeError:  # mixed, unorderable values
        codes, levels = pd.factorize(values, sort=False)
    return torch.from_numpy(codes.astype(np.int64)), list(levels)


def _dense_codes(groups: Any,
                 device: torch.device | None = None) -> tuple[torch.Tensor, list[str]]:
    """Dense codes of the observed (combinations of) group values, and readable names
    (on ``device``; by default that of the first attribute)."""
    columns = [(name, *_column_codes(name, col)) for name, col in _group_columns(groups)]
    device = columns[0][1].device if device is None else device
    cols = [codes.to(device) for _, codes, _ in columns]
    if len(cols) > 1:
        check_lengths(**{name: c for (name, _, _), c in zip(columns, cols)})
    codes, combos = intersection_ids(cols)
    labels = [levels for _, _, levels in columns]
    named = [[v if lv is None else lv[v] for v, lv in zip(row, labels)] for row in combos.tolist()]
    names = [str(r[0]) if len(r) == 1 else str(tuple(r)) for r in named]
    return codes, names


def _factor_table(y: torch.Tensor, codes: torch.Tensor, n_groups: int,
                  sample_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Factor table ``W[a, y]`` (NaN for empty cells) and the weighted cell counts ``[G, 2]``."""
    cell = codes * 2 + y
    n_ay = torch.zeros(2 * n_groups, dtype=torch.float64, device=y.device).index_add_(
        0, cell, sample_weight).view(n_groups, 2)
    n_a, n_y, n = n_ay.sum(1, keepdim=True), n_ay.sum(0, keepdim=True), n_ay.sum()
    table = torch.where(n_ay > 0, n_a * n_y / (n * n_ay), torch.full_like(n_ay, float("nan")))
    return table, n_ay


def _warn_empty_cells(n_ay: torch.Tensor, names: Sequence[str], owner: str) -> None:
    present = n_ay.sum(1) > 0
    empty = [(names[a], y) for a, y in torch.nonzero((n_ay == 0) & present[:, None]).tolist()]
    if empty:
        cells = ", ".join(f"({g!r}, y={y})" for g, y in empty)
        warnings.warn(
            f"{owner}: empty group x label cells {cells}. Their factor is NaN and no sample "
            "carries it; these groups have one label only, so their weighted P(Y=1 | group) "
            "stays 0 or 1 and cannot be equalised.", UserWarning, stacklevel=3)


def _weights_from_codes(y: torch.Tensor, codes: torch.Tensor, n_groups: int, names: Sequence[str],
                        sample_weight: torch.Tensor | None, normalize: bool, clip: float | None,
                        owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    sw = sample_weight
    if sw is None:
        sw = torch.ones(len(y), dtype=torch.float64, device=y.device)
    table, n_ay = _factor_table(y, codes, n_groups, sw)
    _warn_empty_cells(n_ay, names, owner)
    if clip is not None:
        table = table.clamp(max=clip)
    factor = table[codes, y]
    w = torch.where(sw > 0, sw * factor.nan_to_num(0.0), torch.zeros_like(sw))
    if normalize:
        total = w.sum()
        if not bool(total > 0):
            raise ValueError(
                "Expected `sample_weight` to have a positive sum, but all weights are 0.")
        w = w * (len(w) / total)
    return w, table


def reweighing_weights(
    y: Any,
    groups: Any,
    sample_weight: Any = None,
    *,
    normalize: bool = True,
    clip: float | None = None,
) -> torch.Tensor:
    """Kamiran-Calders weights ``n_a n_y / (n n_{a,y})`` for every sample.

    Parameters
    ----------
    y : array-like of {0, 1}
        Labels ``[N]``.
    groups : array-like, 2-d array, DataFrame, dict or sequence of array-likes
        Group of each sample ``[N]``: integer codes, or names (strings, a pandas
        Categorical) as the metrics accept them. Several attributes (a ``[N, k]`` array,
        a DataFrame, a dict or a list of ``k`` arrays) are reweighed over their
        intersection (the observed combinations). Missing values, NaN and non-integer
        float codes are refused.
    sample_weight : array-like, optional
        Prior weights: counts are sums of them and the result is multiplied into them
        (as in AIF360's scikit-learn API).
    normalize : bool, default True
        Rescale to mean 1 (``sum(w) == N``). Without empty cells and prior weights the
        weights already sum to ``N``.
    clip : float, optional
        Upper bound on the factor ``W(a, y)``, applied before the normalisation.

    Returns
    -------
    torch.Tensor
        float64 weights ``[N]`` on the device of ``y`` (when a tensor).

    Warns
    -----
    UserWarning
        Naming every empty group x label cell (see the module's empty-cell policy).

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting import reweighing_weights
    >>> y = torch.tensor([1, 1, 0, 0, 1, 0, 0, 0])
    >>> a = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    >>> reweighing_weights(y, a)
    tensor([0.7500, 0.7500, 1.2500, 1.2500, 1.5000, 0.8333, 0.8333, 0.8333],
           dtype=torch.float64)
    """
    y_t = to_tensor(y, "y")
    values = torch.unique(y_t).tolist()
    if not set(values) <= {0, 1}:
        raise ValueError(MSG_TYPE.format(name="y", expected="binary labels in {0, 1}",
                                         got=f"values {values[:10]}"))
    y01 = y_t.to(torch.int64)
    codes, names = _dense_codes(groups, y01.device)
    check_lengths(y=y01, groups=codes)
    sw = as_weights(sample_weight, len(y01), y01.device)
    if sw is not None:
        check_lengths(y=y01, sample_weight=sw)
    if clip is not None:
        check_number("clip", clip, low=0.0, low_open=True, allow_inf=True,
                     expected="a positive number")
    w, _ = _weights_from_codes(y01, codes, len(names), [f"group {n}" for n in names], sw,
                               normalize, clip, "reweighing_weights")
    return w


def _sampling_to_mode(sampling: Any) -> Any:
    """The deprecated ``sampling`` flag as a ``mode`` (other values pass through to setup)."""
    if sampling is True:
        return "upsample"
    if sampling is False:
        return "upweight"
    return sampling


class Reweighing(WeightingStrategy):
    """Kamiran-Calders reweighing as loss weights or as a weighted sampler.

    The weights are computed once in :meth:`setup` from the training labels and groups
    (see the module docstring for the formula and the empty-cell policy) and looked up
    by each sample's ``index``.

    Parameters
    ----------
    attributes : str or sequence of str, optional
        Sensitive attributes of the training set to reweigh over; several mean their
        intersection. Default: the dataset's active attribute (``train.group``). The
        cells are always (group, label) pairs: the factor ``W(a, y)`` is defined on them,
        so there is no ``groups=`` choice here.
    mode : {"upweight", "upsample"}, default "upweight"
        ``"upweight"``: the weights multiply the loss (uniform shuffling).
        ``"upsample"``: the loader draws ``N`` samples per epoch with replacement with
        probabilities proportional to the weights (``WeightedRandomSampler``) and the
        loss is unweighted. Both give the same gradient in expectation; sampling has
        lower variance (methods.md §9).
    clip : float, optional
        Upper bound on the factor ``W(a, y)`` before the mean-1 normalisation.
    **deprecated
        ``sampling`` (bool): deprecated spelling of ``mode`` (``sampling=True`` is
        ``mode="upsample"``); accepted with a ``FutureWarning``.

    Attributes
    ----------
    sample_weights_ : torch.Tensor
        Mean-1 weights ``[N]`` on the device.
    cell_weights_ : torch.Tensor
        Factor table ``[G, 2]`` (rows: groups or observed intersections, columns: y);
        NaN for empty cells.
    group_names_ : list of str
        Row names of ``cell_weights_``.
    effective_sample_size_ : torch.Tensor
        ``(sum w)^2 / sum w^2`` over the training set.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, fit
    >>> from fairlib.weighting import Reweighing
    >>> data = make_biased_classification(400, seed=0)
    >>> rw = Reweighing()
    >>> hist = fit(LogisticRegression(2, seed=0), data, strategy=rw, epochs=2, progress=False)
    >>> float(rw.sample_weights_.sum())
    400.0
    >>> w, g, y = rw.sample_weights_, data.group, data.y
    >>> [round(float(w[(g == k) & (y == 1)].sum() / w[g == k].sum()), 4) for k in (0, 1)]
    [0.3975, 0.3975]
    """

    _deprecated_params = {"sampling": ("mode", _sampling_to_mode)}

    def __init__(self, attributes: str | Sequence[str] | None = None, *,
                 mode: SamplingMode = "upweight", clip: float | None = None,
                 **deprecated: Any) -> None:
        self.attributes = attributes
        self.mode = mode
        self.clip = clip
        if deprecated:
            self._apply_deprecated(deprecated)

    @property
    def sampling(self) -> bool:
        """Deprecated: ``mode == "upsample"`` (read-only; use :attr:`mode`)."""
        warnings.warn("Reweighing: `sampling` is deprecated and will be removed; use `mode` "
                      "instead (`sampling` is `mode == 'upsample'`).", FutureWarning, stacklevel=2)
        return self.mode == "upsample"

    def check_params(self) -> Reweighing:
        """Validate ``attributes``, ``mode`` and ``clip``."""
        attrs = self.attributes
        if attrs is not None and not isinstance(attrs, str) and not (
                isinstance(attrs, (list, tuple)) and all(isinstance(a, str) for a in attrs)):
            raise TypeError(MSG_TYPE.format(
                name="attributes", expected="None, an attribute name or a list of names",
                got=repr(attrs)))
        check_choice("mode", self.mode, SAMPLING_MODES)
        if self.clip is not None:
            check_number("clip", self.clip, low=0.0, low_open=True, allow_inf=True,
                         expected="a positive number or None")
        return self

    def setup(self, train: Any, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto",
              generator: torch.Generator | None = None) -> Reweighing:
        """Validate the arguments and compute the weights of every training sample."""
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        check_train(train, "Reweighing")
        codes, names = self._codes(train)
        y = train.y.to(torch.int64)
        w, table = _weights_from_codes(y, codes.to(y.device), len(names), names, None, True,
                                       self.clip, "Reweighing")
        self.sample_weights_ = w.to(self.device_, torch.get_default_dtype())
        self.cell_weights_ = table.to(self.device_)
        self.group_names_ = names
        self.effective_sample_size_ = effective_sample_size(w).to(self.device_)
        self._generator = make_generator(generator)
        return self

    def _codes(self, train: Any) -> tuple[torch.Tensor, list[str]]:
        if self.attributes is None:
            return train.group.to(torch.int64), [str(c) for c in train.group_categories]
        attrs = [self.attributes] if isinstance(self.attributes, str) else list(self.attributes)
        known = list(getattr(train, "sensitive", {}))
        bad = [a for a in attrs if a not in known]
        if not attrs or bad:
            raise ValueError(MSG_TYPE.format(
                name="attributes",
                expected="names of sensitive attributes among " + ", ".join(map(repr, known)),
                got=repr(bad or self.attributes)))
        combined = torch.zeros_like(train.y, dtype=torch.int64)
        for a in attrs:
            combined = combined * len(train.categories[a]) + train.sensitive[a]
        present, codes = torch.unique(combined, return_inverse=True)
        names = []
        for value in present.tolist():
            parts = []
            for a in reversed(attrs):
                k = len(train.categories[a])
                parts.append(str(train.categories[a][value % k]))
                value //= k
            names.append(" & ".join(reversed(parts)))
        return codes, names

    def sampler(self) -> Sampler | None:
        """A ``WeightedRandomSampler`` over the weights when ``mode="upsample"``, else None."""
        if self.mode != "upsample":
            return None
        return WeightedRandomSampler(self.sample_weights_.detach().to("cpu", torch.float64),
                                     num_samples=len(self.sample_weights_), replacement=True,
                                     generator=self._generator)

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """The precomputed weights of the batch's samples (ones with ``mode="upsample"``)."""
        if self.mode == "upsample":
            return torch.ones_like(losses)
        return self.sample_weights_[batch.index].to(losses.dtype)

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """``effective_sample_size`` of the training weights."""
        return {"effective_sample_size": self.effective_sample_size_}
