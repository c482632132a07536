"""A per-group metric value with its overall value and group labels."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from . import _core as core
from ._prepare import check_options


@dataclass(frozen=True)
class ByGroup:
    """One metric, disaggregated: ``by_group[g]`` for each group and ``overall``.

    Attributes
    ----------
    by_group : torch.Tensor
        float64 ``[G]`` on the input device; NaN where a group's value is undefined.
    overall : torch.Tensor
        0-dim float64, the metric on all rows.
    index : pandas.Index
        Group labels (a ``MultiIndex`` for several sensitive features).
    name : str
        Metric name.
    """

    by_group: torch.Tensor
    overall: torch.Tensor
    index: pd.Index
    name: str

    def to_series(self) -> pd.Series:
        """The by-group values as a pandas Series indexed by group."""
        return pd.Series(self.by_group.detach().cpu().numpy(), index=self.index, name=self.name)

    def group_min(self) -> torch.Tensor:
        """Smallest group value, skipping NaN."""
        return core.nanmin(self.by_group)

    def group_max(self) -> torch.Tensor:
        """Largest group value, skipping NaN."""
        return core.nanmax(self.by_group)

    def difference(self, method: str = "between_groups") -> torch.Tensor:
        """fairlearn's difference (``"between_groups"`` or ``"to_overall"``)."""
        check_options(method=method)
        return core.difference(self.by_group, self.overall, method)

    def ratio(self, method: str = "between_groups") -> torch.Tensor:
        """fairlearn's ratio (``"between_groups"`` or ``"to_overall"``)."""
        check_options(method=method)
        return core.ratio(self.by_group, self.overall, method)
