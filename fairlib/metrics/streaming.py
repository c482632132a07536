"""Streaming accumulation of the count table over mini-batches and devices."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
import torch.distributed as dist

from .._validation import (
    ArrayLike,
    as_binary_code,
    as_weights,
    binary_labels,
    check_lengths,
    input_device,
    msg_expected,
    to_tensor,
)
from . import _core as core
from ._prepare import build_table
from .report import FairnessReport

NAN = float("nan")


class FairnessAccumulator:
    """Accumulate fairness counts per batch: ``update``, ``compute``, ``reset``, ``merge``, ``sync``.

    The state is the ``[3, G, 4]`` count table, a sum over batches, so batched results
    equal one-shot results and tables from several devices or workers merge by adding
    (:meth:`merge` in one process, :meth:`sync` across ``torch.distributed`` processes).

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
    name : str, default "group"
        Name of the group index of the report (e.g. the sensitive attribute, ``"race"``),
        with ``num_groups``.
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
        name: str = "group",
        zero_division: float = NAN,
        validate_args: bool = True,
    ) -> None:
        self.num_groups = num_groups
        self.group_names = group_names
        self.name = name
        self.zero_division = zero_division
        self.validate_args = validate_args
        self.table_: torch.Tensor | None = None
        self._labels: list[Any] = []  # discovered group labels, in order of first sight
        self._names: list[str] | None = None
        self._synced = False  # the table holds every process's counts (see `sync`)

    # -- state ------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything accumulated."""
        self.table_ = None
        self._labels = []
        self._names = None
        self._synced = False

    def _fixed_index(self) -> pd.Index:
        n = self._check_num_groups()
        names = list(range(n)) if self.group_names is None else list(self.group_names)
        if len(names) != n:
            raise ValueError(
                f"Expected `group_names` to have {n} entries (num_groups), but got {len(names)}."
            )
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Expected `name` to be a non-empty string, but got {self.name!r}.")
        return pd.Index(names, name=self.name)

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
        self._check_not_synced("update")
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
        self._check_not_synced("merge")
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

    def sync(self, group: Any = None) -> FairnessAccumulator:
        """Sum the counts of every ``torch.distributed`` process into each one's accumulator.

        A collective call: every process of ``group`` must call it, after its last
        :meth:`update`. Afterwards each process holds the table it would have built alone
        from all the data, so :meth:`compute` gives the one-process report everywhere.
        When ``torch.distributed`` is unavailable or not initialised this is a no-op.

        Parameters
        ----------
        group : torch.distributed.ProcessGroup, optional
            The processes to sum over (default: the whole world).

        Returns
        -------
        FairnessAccumulator
            ``self``, for chaining: ``acc.sync().compute()``.

        Raises
        ------
        ValueError
            On every process alike, before any counts are exchanged, if the processes
            disagree on ``num_groups`` or ``group_names``, or (groups discovered from the
            data) on the names of the sensitive-feature columns, or if this accumulator
            was already synced since its last :meth:`reset`.

        Notes
        -----
        What is exchanged: each process's settings and group labels (one
        ``all_gather_object``), then the count table (one ``all_reduce`` sum, in float64,
        on the CPU, or on the current CUDA device for the ``nccl`` backend; the result goes
        back to this process's table device).

        - ``num_groups`` given: the table has a slot for every group already, so a group
          absent on one process is counted wherever it was seen.
        - Groups discovered from the data: the processes first agree on the union of the
          labels they saw, so a group seen on only one process appears on all of them, in
          the same order as a one-process report.
        - A process without any update contributes zeros; if no process saw data the
          table stays ``None``.

        Counts, and weighted sums whose partial sums are exact in float64 (e.g. integer
        weights), equal the one-process table exactly; other weighted sums may differ
        in the last bits because addition order changes.

        The synced table already holds the other processes' counts, so adding to it or
        syncing it again would count them twice: :meth:`update`, :meth:`merge` and a
        second ``sync`` raise until :meth:`reset`. To look at the global numbers during
        an evaluation and go on accumulating, sync a copy:
        ``copy.deepcopy(acc).sync().compute()``.

        Examples
        --------
        Without an initialised process group nothing changes:

        >>> import torch
        >>> from fairlib.metrics import FairnessAccumulator
        >>> acc = FairnessAccumulator(num_groups=2)
        >>> acc.update(torch.tensor([1, 0]), torch.tensor([1, 1]), torch.tensor([0, 1]))
        >>> acc.sync() is acc
        True

        Evaluation under DistributedDataParallel, after ``init_process_group``: each
        process counts every ``world_size``-th test row (not a ``DistributedSampler``,
        which pads the last shard with repeated rows that would be counted twice), then
        one ``sync`` gives every process the full-test-set report. ``model``, ``test_set``
        and ``device`` are this process's own:

        >>> import torch.distributed as dist
        >>> from torch.utils.data import DataLoader, Subset
        >>> rank, world = dist.get_rank(), dist.get_world_size()  # doctest: +SKIP
        >>> shard = Subset(test_set, range(rank, len(test_set), world))  # doctest: +SKIP
        >>> acc = FairnessAccumulator(num_groups=2, validate_args=False)
        >>> model.eval()  # doctest: +SKIP
        >>> with torch.no_grad():  # doctest: +SKIP
        ...     for x, y, group in DataLoader(shard, batch_size=512):
        ...         y_pred = (model(x.to(device)).squeeze(-1) > 0).long()
        ...         acc.update(y.to(device), y_pred, group.to(device))
        >>> report = acc.sync().compute()  # doctest: +SKIP
        >>> if rank == 0:  # doctest: +SKIP
        ...     print(report.measures())
        """
        if not (dist.is_available() and dist.is_initialized()):
            return self
        mine = {
            "synced": self._synced,
            "num_groups": self.num_groups,
            "group_names": None if self.group_names is None else list(self.group_names),
            "names": self._names,
            "labels": list(self._labels),
            "has_table": self.table_ is not None,
        }
        headers: list[Any] = [None] * dist.get_world_size(group)
        dist.all_gather_object(headers, mine, group=group)
        # every process checks the same gathered headers, so all raise together (no hang)
        self._check_not_synced("sync", any(h["synced"] for h in headers))
        for key in ("num_groups", "group_names"):
            seen = [h[key] for h in headers]
            if any(v != seen[0] for v in seen):
                raise ValueError(msg_expected(
                    key, "the same on every process", f"{seen} (one per process)"))
        names = [h["names"] for h in headers if h["names"] is not None]
        if any(n != names[0] for n in names):
            raise ValueError(msg_expected(
                "sensitive_features", "the same columns on every process",
                f"columns {names} (one per process that saw data)"))
        union: dict[Any, int] = {}  # label -> slot, in process order then first sight
        for h in headers:
            for label in h["labels"]:
                union.setdefault(label, len(union))
        self._synced = True
        if not any(h["has_table"] for h in headers):
            return self
        size = self.num_groups if self.num_groups is not None else len(union)
        device = _collective_device(group)
        total = torch.zeros(3, size, 4, dtype=torch.float64, device=device)
        home = device if self.table_ is None else self.table_.device
        if self.table_ is not None:
            local = self.table_.to(device, torch.float64)
            if self.num_groups is not None:
                total += local
            else:
                slots = torch.tensor([union[x] for x in self._labels], dtype=torch.long,
                                     device=device)
                total.index_add_(1, slots, local)
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        self.table_ = total.to(home)
        if self.num_groups is None:
            self._labels = list(union)
            self._names = names[0]
        return self

    def _check_not_synced(self, action: str, synced: bool | None = None) -> None:
        if self._synced if synced is None else synced:
            raise ValueError(msg_expected(
                "FairnessAccumulator", f"reset with `reset()` before `{action}` once synced (its "
                "table already holds every process's counts)", f"`{action}` after `sync()`"))

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


def _collective_device(group: Any) -> torch.device:
    """Where the table is summed: the CPU, except for ``nccl``, which reduces CUDA tensors only."""
    if str(dist.get_backend(group)) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
