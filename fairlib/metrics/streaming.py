"""Streaming accumulation of the count table over mini-batches and devices."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from .._validation import ArrayLike, as_binary_code, as_weights, binary_labels, check_lengths, input_device, to_tensor
from . import _core as core
from ._prepare import build_table
from .report import FairnessReport

NAN = float("nan")


class FairnessAccumulator:
    """Accumulate fairness counts batch by batch: ``update``, ``compute``, ``reset``, ``merge``.

    The state is the ``[3, G, 4]`` count table, a sum over batches, so batched results
    equal one-shot results and tables from several devices or workers merge by adding.

    Parameters
    ----------
    num_groups : int, optional
        If given, ``sensitive_features`` must be integer codes in ``[0, num_groups)``
        and every group keeps its slot even when absent from a batch. With
        ``validate_args=False`` an update then never synchronises with the host, so it
        can sit inside a training step. If omitted, groups are discovered from the
        data (any labels, several columns allowed), as in :func:`fairness_report`.
    group_names : sequence, optional
        Labels of the ``num_groups`` codes (default ``0 .. num_groups - 1``).
    zero_division : float, default NaN
        Passed to the report built by :meth:`compute`.
    validate_args : bool, default True
        Check labels, weights and codes on every update (reads from the host).

    Attributes
    ----------
    table_ : torch.Tensor or None
        The accumulated count table; ``None`` before the first update.

    Examples
    --------
    >>> import torch
    >>> from fairlib.metrics import FairnessAccumulator
    >>> acc = FairnessAccumulator(num_groups=2)
    >>> acc.update(torch.tensor([1, 0]), torch.tensor([1, 1]), torch.tensor([0, 0]))
    >>> acc.update(torch.tensor([1, 1]), torch.tensor([0, 1]), torch.tensor([1, 1]))
    >>> acc.compute().by_group["true_positive_rate"].tolist()
    [1.0, 0.5]
    """

    def __init__(
        self,
        num_groups: int | None = None,
        *,
        group_names: list[Any] | None = None,
        zero_division: float = NAN,
        validate_args: bool = True,
    ) -> None:
        self.num_groups = num_groups
        self.group_names = group_names
        self.zero_division = zero_division
        self.validate_args = validate_args
        self.table_: torch.Tensor | None = None
        self._labels: list[Any] = []  # discovered group labels, in order of first sight
        self._names: list[str] | None = None

    # -- state ------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything accumulated."""
        self.table_ = None
        self._labels = []
        self._names = None

    def _fixed_index(self) -> pd.Index:
        n = self._check_num_groups()
        names = list(range(n)) if self.group_names is None else list(self.group_names)
        if len(names) != n:
            raise ValueError(
                f"Expected `group_names` to have {n} entries (num_groups), but got {len(names)}."
            )
        return pd.Index(names, name="group")

    def _check_num_groups(self) -> int:
        n = self.num_groups
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"Expected `num_groups` to be a positive integer or None, but got {n!r}.")
        return n

    # -- update -----------------------------------------------------------------
    def update(
        self,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sensitive_features: Any,
        sample_weight: ArrayLike | None = None,
    ) -> None:
        """Add one batch to the table."""
        if self.num_groups is not None:
            self._update_fixed(y_true, y_pred, sensitive_features, sample_weight)
        else:
            self._update_discovered(y_true, y_pred, sensitive_features, sample_weight)

    def _update_fixed(self, y_true: Any, y_pred: Any, groups: Any, sample_weight: Any) -> None:
        n_groups = self._check_num_groups()
        device = input_device(y_true, y_pred, groups, sample_weight)
        yt = to_tensor(y_true, "y_true", device).to(device)
        yp = to_tensor(y_pred, "y_pred", device).to(device)
        g = to_tensor(groups, "sensitive_features", device).to(device)
        if self.validate_args:
            check_lengths(y_true=yt, y_pred=yp, sensitive_features=g,
                          sample_weight=None if sample_weight is None else range(len(sample_weight)))
            yt, yp = binary_labels(yt, yp)
            w = as_weights(sample_weight, len(yt), device)
            bad = (g < 0) | (g >= n_groups) | (g != g.round() if g.is_floating_point() else False)
            if bool(torch.as_tensor(bad).any()):
                raise ValueError(
                    f"Expected `sensitive_features` to be integer codes in [0, {n_groups}), but got "
                    f"values {sorted(set(g[bad].tolist()))[:10]}."
                )
        else:
            yt, yp = as_binary_code(yt), as_binary_code(yp)
            w = None if sample_weight is None else to_tensor(sample_weight, "sample_weight", device).to(
                device, torch.float64)
        table = core.count_table(yt, yp, g.long(), n_groups, w)
        self.table_ = table if self.table_ is None else self.table_ + table

    def _update_discovered(self, y_true: Any, y_pred: Any, sensitive_features: Any, sample_weight: Any) -> None:
        batch, groups, _ = build_table(y_true, y_pred, sensitive_features, sample_weight)
        names = list(groups.index.names)
        if self._names is not None and names != self._names:
            raise ValueError(
                f"Expected `sensitive_features` with columns {self._names} as in earlier updates, "
                f"but got {names}."
            )
        self._names = names
        self._add(batch, list(groups.index))

    def _add(self, batch: torch.Tensor, labels: list[Any]) -> None:
        slot = {label: i for i, label in enumerate(self._labels)}
        for label in labels:
            if label not in slot:
                slot[label] = len(self._labels)
                self._labels.append(label)
        target = torch.tensor([slot[x] for x in labels], dtype=torch.long, device=batch.device)
        total = torch.zeros(3, len(self._labels), 4, dtype=torch.float64, device=batch.device)
        if self.table_ is not None:
            total[:, : self.table_.shape[1]] = self.table_
        total.index_add_(1, target, batch)
        self.table_ = total

    # -- combine and read -------------------------------------------------------
    def merge(self, other: FairnessAccumulator) -> FairnessAccumulator:
        """Add another accumulator's counts into this one (e.g. from another device)."""
        if not isinstance(other, FairnessAccumulator):
            raise TypeError(f"Expected `other` to be a FairnessAccumulator, but got {type(other).__name__}.")
        if (self.num_groups is None) != (other.num_groups is None) or (
            self.num_groups is not None and self.num_groups != other.num_groups
        ):
            raise ValueError(
                f"Expected `other` to have num_groups={self.num_groups!r}, but got {other.num_groups!r}."
            )
        if other.table_ is None:
            return self
        if self.num_groups is not None:
            table = other.table_.to(self.table_.device) if self.table_ is not None else other.table_
            self.table_ = table.clone() if self.table_ is None else self.table_ + table
        else:
            if self._names is not None and other._names != self._names:
                raise ValueError(
                    f"Expected `other` to have sensitive features {self._names}, but got {other._names}."
                )
            self._names = other._names
            device = self.table_.device if self.table_ is not None else other.table_.device
            self._add(other.table_.to(device), list(other._labels))
        return self

    def compute(self) -> FairnessReport:
        """The :class:`FairnessReport` of everything accumulated so far."""
        if self.table_ is None:
            raise ValueError("Expected at least one call to `update` before `compute`, but got none.")
        if self.num_groups is not None:
            return FairnessReport(self.table_, self._fixed_index(), self.zero_division)
        table, index = self._ordered()
        return FairnessReport(table, index, self.zero_division)

    def _ordered(self) -> tuple[torch.Tensor, pd.Index]:
        """Table and index in the same group order as a one-shot report."""
        assert self.table_ is not None and self._names is not None
        if len(self._names) == 1:
            index = pd.Index(_sorted(self._labels), name=self._names[0])
        else:
            levels = [_sorted(list({lab[j] for lab in self._labels})) for j in range(len(self._names))]
            index = pd.MultiIndex.from_product(levels, names=self._names)
        pos = {label: i for i, label in enumerate(index)}
        target = torch.tensor([pos[x] for x in self._labels], dtype=torch.long, device=self.table_.device)
        table = torch.zeros(3, len(index), 4, dtype=torch.float64, device=self.table_.device)
        table.index_add_(1, target, self.table_)
        return table, index


def _sorted(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # unorderable mixture: keep first-seen order
        return list(values)
