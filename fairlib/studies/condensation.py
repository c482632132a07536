"""Choose a smaller training set: selection rules for data condensation, and chapter 6's runs.

Written for chapter 6, *Data condensation* (``notebooks/06_data_condensation.ipynb``).

Data condensation keeps a fraction of the training rows and retrains on them. Every
rule here returns the sorted positions of the kept rows (``k = max(1, round(fraction *
N))`` of them, the same count as :meth:`fairlib.weighting.FORML.condense`), so that
``train.subset(rows)`` gives the smaller dataset:

- ``"random"``: a uniform random sample (:func:`select_random`), the baseline;
- ``"group_balanced"``: as many rows from every group, or from every (group, label)
  cell, as their sizes allow (:func:`select_group_balanced`);
- ``"top_weight"``: the rows with the highest learned weights (:func:`fairlib.weighting.select_top_weight`);
- ``"weight_proportional"``: a sample drawn with probability proportional to the learned
  weights, without replacement (:func:`select_weight_proportional`);
- ``"top_weight_within_cells"``: every (group, label) cell keeps its share of the rows,
  and within a cell the highest weights are kept (:func:`select_top_within_cells`).

Randomness comes from a seeded ``torch.Generator``: same seed, same rows.

For the book's protocol (:func:`fairlib.experiments.tune_and_run`) the module registers,
at import:

- the data set ``"adult_condensed"`` (:func:`adult_condensed`): Adult's splits for a seed,
  with FORML weights learned on the training split (once per seed and settings in a
  process) and, for every rule, a mask of the rows it keeps at ``fraction``;
- one method per entry of :data:`CONDENSE_RULES` (``"random"``, ``"top_weight"``, ...,
  and ``"all_rows"``): ERM that draws its batches only from the rows the rule kept
  (:class:`KeepRows`), for a fixed number of drawn rows whatever the subset's size;
- the metric ``"condensation"`` (:func:`condensation_audit`): what a run's subset holds.

:func:`tuning_grid` builds the chapter's configurations: every rule, on every fraction,
gets the same retraining learning rates.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import torch

from .._validation import check_device
from ..experiments import register_dataset, register_method, register_metric
from ..weighting import WeightingStrategy
from ..weighting.condense import MSG_WEIGHTS, check_weights, n_keep, select_top_weight

__all__ = [
    "CHAPTER",
    "CONDENSE_RULES",
    "COMPARED",
    "KeepRows",
    "RULES",
    "adult_condensed",
    "condensation_audit",
    "learn_forml_weights",
    "plot_by_fraction",
    "select_group_balanced",
    "select_random",
    "select_subset",
    "select_top_within_cells",
    "select_weight_proportional",
    "tuning_grid",
]

CHAPTER = "06_data_condensation"
RULES = ("random", "group_balanced", "top_weight", "weight_proportional",
         "top_weight_within_cells")
WEIGHT_RULES = ("top_weight", "weight_proportional", "top_weight_within_cells")
MSG_RULE = "Expected `rule` to be one of {rules}, but got {got!r}."


def select_random(n: int, fraction: float, *, seed: int = 0,
                  device: torch.device | str = "auto") -> torch.Tensor:
    """Sorted positions of a uniform random ``fraction`` of ``n`` rows.

    Drawn on the CPU (the same rows on every machine), returned on ``device``
    (``"auto"``: CUDA when available, else the CPU).

    Examples
    --------
    >>> from fairlib.studies.condensation import select_random
    >>> rows = select_random(100, 0.1, seed=0)
    >>> len(rows), len(rows.unique()), bool((rows[1:] > rows[:-1]).all())
    (10, 10, True)
    """
    k = n_keep(n, fraction)
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[:k].sort().values.to(check_device("device", device))


def _water_fill(sizes: list[int], k: int) -> list[int]:
    """Equal quotas summing to ``k``, capped by ``sizes``; the excess goes to larger cells.

    Leftover single rows go to the cells with the most spare rows (then the lower code).
    """
    quota = [0] * len(sizes)
    left = k
    while left > 0:
        open_ = [c for c, s in enumerate(sizes) if quota[c] < s]
        if not open_:
            break
        per = left // len(open_)
        if per == 0:
            for c in sorted(open_, key=lambda c: (-(sizes[c] - quota[c]), c))[:left]:
                quota[c] += 1
            break
        for c in open_:
            take = min(per, sizes[c] - quota[c])
            quota[c] += take
            left -= take
    return quota


def select_group_balanced(groups: torch.Tensor, fraction: float, *,
                          labels: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Sorted positions of a ``fraction`` of rows shared equally among groups (or cells).

    The rows are shared equally among the groups present, or among the (group, label)
    cells when ``labels`` is given. A cell smaller than its share is kept whole and the
    rest is shared among the larger cells. Within a cell, rows are drawn uniformly.

    Parameters
    ----------
    groups : torch.Tensor
        int64 group codes ``[N]``.
    fraction : float
        Share of rows to keep, in ``(0, 1]``.
    labels : torch.Tensor, optional
        Labels ``[N]`` in {0, 1}: balance (group, label) cells instead of groups.
    seed : int
        Seed of the draw within cells.

    Returns
    -------
    torch.Tensor
        Sorted int64 positions on the device of ``groups``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.condensation import select_group_balanced
    >>> groups = torch.tensor([0] * 8 + [1] * 2)
    >>> rows = select_group_balanced(groups, 0.4, seed=0)
    >>> torch.bincount(groups[rows]).tolist()
    [2, 2]
    >>> torch.bincount(groups[select_group_balanced(groups, 0.6, seed=0)]).tolist()
    [4, 2]
    """
    if not isinstance(groups, torch.Tensor) or groups.ndim != 1 or groups.numel() == 0:
        raise ValueError(
            f"Expected `groups` to be a non-empty 1-d tensor of codes, but got {groups!r}.")
    cells = groups.long()
    if labels is not None:
        if not isinstance(labels, torch.Tensor) or labels.shape != groups.shape:
            raise ValueError("Expected `labels` to be a tensor shaped like `groups`, but got "
                             f"{getattr(labels, 'shape', type(labels).__name__)}.")
        cells = cells * 2 + labels.long()
    k = n_keep(cells.numel(), fraction)
    host = cells.cpu()
    codes = torch.unique(host)
    members = [torch.nonzero(host == c).flatten() for c in codes]
    quota = _water_fill([len(m) for m in members], k)
    gen = torch.Generator().manual_seed(seed)
    picks = [m[torch.randperm(len(m), generator=gen)[:q]]
             for m, q in zip(members, quota, strict=True)]
    return torch.cat(picks).sort().values.to(groups.device)


def select_weight_proportional(weights: torch.Tensor, fraction: float, *,
                               seed: int = 0) -> torch.Tensor:
    """Sorted positions of rows drawn with probability proportional to ``weights``.

    Rows are drawn one after the other without replacement (``torch.multinomial``), each
    draw proportional to the weights of the rows still available. A small fraction thus
    mirrors the weighted distribution; as the fraction grows the sample approaches the
    whole set. Rows of weight 0 are drawn (uniformly) only after every positive-weight row.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.condensation import select_weight_proportional
    >>> w = torch.tensor([0.0, 0.0, 1.0, 1.0, 8.0])
    >>> select_weight_proportional(w, 0.6, seed=0).tolist()
    [2, 3, 4]
    >>> len(select_weight_proportional(w, 1.0, seed=0))
    5
    """
    w = check_weights(weights)
    k = n_keep(w.numel(), fraction)
    gen = torch.Generator().manual_seed(seed)
    host = w.cpu().double()
    positive = torch.nonzero(host > 0).flatten()
    take = min(k, len(positive))
    rows = positive[torch.multinomial(host[positive], take, replacement=False, generator=gen)] \
        if take > 0 else torch.zeros(0, dtype=torch.int64)
    if k > take:  # fill up with zero-weight rows, uniformly
        zero = torch.nonzero(host == 0).flatten()
        rows = torch.cat([rows, zero[torch.randperm(len(zero), generator=gen)[:k - take]]])
    return rows.sort().values.to(w.device)


def select_top_within_cells(weights: torch.Tensor, cells: torch.Tensor,
                            fraction: float) -> torch.Tensor:
    """Sorted positions of the top-weight rows within every cell, each cell keeping its share.

    Cell ``c`` of size ``n_c`` keeps about ``k * n_c / N`` rows (largest remainders get the
    leftover rows, so exactly ``k = max(1, round(fraction * N))`` are kept), and within
    the cell the rows with the highest weights (ties: the lower position). A subset thus
    holds as many rows of each cell as a random subset would on average.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.condensation import select_top_within_cells
    >>> w = torch.tensor([0.1, 0.9, 0.5, 0.2, 0.8, 0.3])
    >>> cells = torch.tensor([0, 0, 0, 1, 1, 1])
    >>> select_top_within_cells(w, cells, 0.34).tolist()
    [1, 4]
    """
    w = check_weights(weights)
    if not isinstance(cells, torch.Tensor) or cells.shape != w.shape:
        raise ValueError("Expected `cells` to be a tensor shaped like `weights`, but got "
                         f"{getattr(cells, 'shape', type(cells).__name__)}.")
    k = n_keep(w.numel(), fraction)
    host_w, host_c = w.cpu(), cells.cpu().long()
    codes = torch.unique(host_c)
    members = [torch.nonzero(host_c == c).flatten() for c in codes]
    exact = [k * len(m) / w.numel() for m in members]
    quota = [int(q) for q in exact]
    by_remainder = sorted(range(len(members)), key=lambda i: (-(exact[i] - quota[i]), i))
    for i in by_remainder[:k - sum(quota)]:
        quota[i] += 1
    picks = [m[torch.sort(host_w[m], descending=True, stable=True).indices[:q]]
             for m, q in zip(members, quota, strict=True)]
    return torch.cat(picks).sort().values.to(w.device)


def select_subset(rule: Literal["random", "group_balanced", "top_weight", "weight_proportional",
                                "top_weight_within_cells"],
                  data: Any, fraction: float, *, weights: torch.Tensor | None = None,
                  seed: int = 0,
                  balance: Literal["group", "group_label"] = "group_label") -> torch.Tensor:
    """Sorted positions of the rows of ``data`` that ``rule`` keeps.

    Parameters
    ----------
    rule : {"random", "group_balanced", "top_weight", "weight_proportional", \
            "top_weight_within_cells"}
        The selection rule (see the module docs).
    data : FairDataset
        The training set (its active group and labels are used by ``"group_balanced"``).
    fraction : float
        Share of rows to keep, in ``(0, 1]``.
    weights : torch.Tensor, optional
        One non-negative weight per row ``[N]``, e.g. ``FORML.weights_``; required by the
        weight rules.
    seed : int
        Seed of the random rules.
    balance : {"group", "group_label"}
        What ``"group_balanced"`` shares rows among: groups, or (group, label) cells.

    Returns
    -------
    torch.Tensor
        Sorted int64 positions; ``data.subset(rows)`` is the condensed set.

    Examples
    --------
    >>> from fairlib.studies.condensation import select_subset
    >>> from fairlib.datasets import make_biased_classification
    >>> data = make_biased_classification(200, seed=0)
    >>> rows = select_subset("group_balanced", data, 0.2, seed=0, balance="group")
    >>> data.subset(rows).summary()["n"].tolist()
    [20, 20]
    """
    if rule not in RULES:
        raise ValueError(MSG_RULE.format(rules=", ".join(map(repr, RULES)), got=rule))
    n = len(data)
    if rule in WEIGHT_RULES:
        if weights is None or not isinstance(weights, torch.Tensor) or weights.shape != (n,):
            got = "None" if weights is None else f"shape {tuple(getattr(weights, 'shape', ()))}"
            raise ValueError(MSG_WEIGHTS.format(n=n, got=got)
                             + f" Rule {rule!r} needs one weight per row.")
        if rule == "top_weight":
            return select_top_weight(weights, fraction)
        if rule == "top_weight_within_cells":
            return select_top_within_cells(weights, data.cells, fraction)
        return select_weight_proportional(weights, fraction, seed=seed)
    if rule == "random":
        return select_random(n, fraction, seed=seed, device=data.y.device)
    if balance not in ("group", "group_label"):
        raise ValueError(
            f"Expected `balance` to be 'group' or 'group_label', but got {balance!r}.")
    labels = data.y if balance == "group_label" else None
    return select_group_balanced(data.group, fraction, labels=labels, seed=seed)


# -- the chapter's runs on fairlib.experiments ------------------------------------------------
#: Methods of the chapter: registered name -> (rule of :func:`select_subset`, its ``balance``);
#: ``"all_rows"`` keeps every row (ERM on the whole training split, the reference).
CONDENSE_RULES: dict[str, tuple[str | None, str]] = {
    "random": ("random", "group_label"),
    "group_balanced": ("group_balanced", "group_label"),
    "group_only_balanced": ("group_balanced", "group"),
    "top_weight": ("top_weight", "group_label"),
    "weight_proportional": ("weight_proportional", "group_label"),
    "top_weight_within_cells": ("top_weight_within_cells", "group_label"),
    "all_rows": (None, "group_label"),
}
#: The rules the chapter compares in its main study (the others are its exercises').
COMPARED = ("random", "group_balanced", "top_weight", "weight_proportional", "all_rows")
#: FORML settings of :func:`learn_forml_weights` a data set spec may set, with their defaults.
FORML_DEFAULTS: dict[str, Any] = {"objective": "eo_gap", "meta_lr": 1.0, "epochs": 10, "lr": 1e-3,
                                  "batch_size": 256, "hidden": 32, "device": "cpu"}


@functools.lru_cache(maxsize=2)
def _adult(sensitive: str) -> Any:
    from ..datasets import load_adult

    return load_adult(sensitive)


def learn_forml_weights(train: Any, meta: Any, *, seed: int, objective: str = "eo_gap",
                        meta_lr: float = 1.0, epochs: int = 10, lr: float = 1e-3,
                        batch_size: int = 256, hidden: int = 32,
                        device: str = "cpu") -> tuple[torch.Tensor, Any]:
    """FORML's per-sample weights on ``train``, learned against ``meta`` with an MLP.

    One FORML training (:class:`fairlib.weighting.FORML`, a reconstruction) of a
    one-hidden-layer MLP with Adam; the model and the batch order come from ``seed``, so
    the weights are the same every time on the CPU. Torch's global generator is left as
    it was.

    Returns
    -------
    weights : torch.Tensor
        One weight per training row ``[N]``, on the CPU.
    model : torch.nn.Module
        The MLP FORML trained with those weights.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.condensation import learn_forml_weights
    >>> train, meta, _ = make_biased_classification(400, seed=0).split(seed=0)
    >>> w, _ = learn_forml_weights(train, meta, seed=0, epochs=1, hidden=4)
    >>> w.shape, bool((w >= 0).all())
    (torch.Size([240]), True)
    """
    from ..train import MLP, fit
    from ..weighting import FORML

    with torch.random.fork_rng(devices=[]):
        forml = FORML(objective, meta_lr=meta_lr)
        model = MLP(train.X.shape[1], hidden=(hidden,), seed=seed)
        fit(model, train, strategy=forml, meta=meta, epochs=epochs, batch_size=batch_size, lr=lr,
            device=device, seed=seed, progress=False)
    return forml.weights_.detach().cpu(), model


def _splits(seed: int, split: tuple[float, ...], flip_rate: float) -> Any:
    """Adult's (train, meta, test) for ``seed``; ``flip_rate`` of women's positive training
    labels flipped (marked in ``train.extras["flipped"]``)."""
    from ..datasets import corrupt_labels

    train, meta, test = _adult("sex").split(*split, seed=seed, meta_balanced="group")
    if flip_rate > 0:
        train, flipped = corrupt_labels(train, {("Female", 1): flip_rate}, seed=seed)
        train = train.with_labels(train.y, flipped=flipped)
    return train, meta, test


@functools.lru_cache(maxsize=256)
def _forml(seed: int, split: tuple[float, ...], flip_rate: float,
           forml: tuple[tuple[str, Any], ...]) -> tuple[torch.Tensor, dict[str, float]]:
    """Cached per process: FORML's weights for a seed and settings, and its model's test scores."""
    from ..train import evaluate

    train, meta, test = _splits(seed, split, flip_rate)
    weights, model = learn_forml_weights(train, meta, seed=seed, **dict(forml))
    report = evaluate(model, test)
    gap = report.measure("equal_opportunity_difference")
    scores = {"forml_test_accuracy": float(report.overall["accuracy"]),
              "forml_test_equal_opportunity_difference": gap}
    return weights, scores


def _frozen(forml: Any) -> tuple[tuple[str, Any], ...]:
    settings = {**FORML_DEFAULTS, **dict(forml or {})}
    unknown = sorted(set(settings) - set(FORML_DEFAULTS))
    if unknown:
        raise ValueError(f"Expected `forml` settings among {sorted(FORML_DEFAULTS)}, "
                         f"but got {unknown}.")
    return tuple(sorted(settings.items()))


def adult_condensed(*, seed: int, fraction: float, split: Sequence[float] = (0.6, 0.1, 0.3),
                    forml: Any = None, flip_rate: float = 0.0) -> Any:
    """Adult's splits for ``seed``, with what every condensation rule keeps at ``fraction``.

    The split is seeded and its meta split balanced by sex (``sex`` is the sensitive
    attribute). FORML learns its weights on the training split against the meta split
    (:func:`learn_forml_weights` with the settings ``forml``; computed once per seed and
    settings in a process). The training split gains the extra columns
    ``forml_weight`` and, for every method of :data:`CONDENSE_RULES`, ``keep_<method>``:
    1 for the rows that rule keeps (random rules drawn with ``seed``), so that every
    rule of a seed sees the same split and the same weights.

    Parameters
    ----------
    seed : int
        Seeds the split, the FORML run and the random rules.
    fraction : float
        Share of the training rows the rules keep, in ``(0, 1]``.
    split : sequence of float
        Train, meta and test fractions.
    forml : dict, optional
        Settings of the FORML run (keys of :data:`FORML_DEFAULTS`).
    flip_rate : float
        Share of women's positive training labels flipped before FORML learns
        (``extras["flipped"]`` marks them); 0 leaves the labels alone.

    Returns
    -------
    Splits

    Examples
    --------
    >>> from fairlib.studies.condensation import adult_condensed
    >>> train, meta, test = adult_condensed(seed=0, fraction=0.1, forml={"epochs": 1})
    >>> int(train.extras["keep_top_weight"].sum()) == round(0.1 * len(train))
    True
    """
    from ..datasets import Splits

    train, meta, test = _splits(seed, tuple(split), float(flip_rate))
    weights, _ = _forml(seed, tuple(split), float(flip_rate), _frozen(forml))
    extras = {"forml_weight": weights.to(train.y.device)}
    for name, (rule, balance) in CONDENSE_RULES.items():
        keep = torch.ones(len(train), dtype=torch.int8)
        if rule is not None:
            keep = torch.zeros(len(train), dtype=torch.int8)
            keep[select_subset(rule, train, fraction, weights=weights, seed=seed,
                               balance=balance).cpu()] = 1
        extras[f"keep_{name}"] = keep
    return Splits(train.with_labels(train.y, **extras), meta, test)


class _Cycle(torch.utils.data.Sampler):
    """``draws`` positions from ``rows``: successive random orders of them, the last one cut."""

    def __init__(self, rows: torch.Tensor, draws: int, generator: torch.Generator | None) -> None:
        self.rows, self.draws, self.generator = rows, draws, generator

    def __len__(self) -> int:
        return self.draws

    def __iter__(self) -> Any:
        left = self.draws
        while left > 0:
            order = self.rows[torch.randperm(len(self.rows), generator=self.generator)][:left]
            left -= len(order)
            yield from order.tolist()


class KeepRows(WeightingStrategy):
    """ERM on the training rows a condensation rule kept (``train.extras["keep_<rule>"]``).

    Every epoch draws ``draws`` rows from the kept ones (whole random orders of them, the
    last one cut), so every rule and every fraction gets the same number of optimiser
    steps; ``draws=None`` draws each kept row once per epoch. Weights are uniform.

    Parameters
    ----------
    rule : str
        A method of :data:`CONDENSE_RULES`.
    draws : int, optional
        Rows drawn per epoch.

    Attributes
    ----------
    rows_ : torch.Tensor
        Positions of the kept training rows.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.condensation import KeepRows
    >>> data = make_biased_classification(10, seed=0)
    >>> data = data.with_labels(data.y, keep_random=torch.tensor([1, 0] * 5))
    >>> strategy = KeepRows("random", draws=12).setup(data)
    >>> drawn = list(strategy.sampler())
    >>> len(drawn), sorted(set(drawn))
    (12, [0, 2, 4, 6, 8])
    """

    def __init__(self, rule: str = "all_rows", *, draws: int | None = None) -> None:
        self.rule = rule
        self.draws = draws

    def setup(self, train: Any, *, meta: Any = None, model: Any = None, device: Any = "cpu",
              generator: torch.Generator | None = None) -> KeepRows:
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        key = f"keep_{self.rule}"
        if key not in train.extras:
            raise ValueError(f"Expected a training set with the column extras[{key!r}] (from "
                             "the data set 'adult_condensed'), but got columns "
                             f"{sorted(train.extras)}.")
        if self.draws is not None and (not isinstance(self.draws, int) or self.draws < 1):
            raise ValueError("Expected `draws` to be a positive integer or None, but got "
                             f"{self.draws!r}.")
        self.rows_ = torch.nonzero(train.extras[key].cpu()).flatten()
        self._generator = generator
        return self

    def sampler(self) -> torch.utils.data.Sampler:
        """Draws from the kept rows only."""
        return _Cycle(self.rows_, self.draws or len(self.rows_), self._generator)


def condensation_audit(run: Any) -> dict[str, float]:
    """What a run's training subset holds (registered as the metric ``"condensation"``).

    Returns the number of kept rows, their share labelled positive, the share of each
    group and of each (group, label) cell among them (``kept_group_share[<group>]``,
    ``kept_cell_share[<cell>]``), the mean FORML weight of each cell over the whole
    training split (``mean_weight[<cell>]``), the test accuracy and equal-opportunity gap
    of the FORML model that learned the weights (``forml_test_...``), and with corrupted
    labels the share of flipped rows the rule left out (``flipped_removed``).
    """
    train, rows = run.train, run.strategy.rows_
    kept = train.subset(rows.to(train.y.device))
    out: dict[str, float] = {"kept_rows": float(len(rows)),
                             "kept_positive_share": float(kept.y.double().mean())}
    for g, name in enumerate(train.group_categories):
        out[f"kept_group_share[{name}]"] = float((kept.group == g).double().mean())
    weights = train.extras["forml_weight"]
    for c, name in enumerate(train.cell_names):
        out[f"kept_cell_share[{name}]"] = float((kept.cells == c).double().mean())
        out[f"mean_weight[{name}]"] = float(weights[train.cells == c].mean())
    if "flipped" in train.extras:
        flipped = train.extras["flipped"].bool().cpu()
        dropped = torch.ones(len(train), dtype=torch.bool)
        dropped[rows] = False
        out["flipped_removed"] = float((flipped & dropped).sum() / flipped.sum().clamp(min=1))
    params = dict(run.spec.dataset_params)
    out.update(_forml(run.spec.seed, tuple(params.get("split", (0.6, 0.1, 0.3))),
                      float(params.get("flip_rate", 0.0)), _frozen(params.get("forml")))[1])
    return out


def _rule_method(name: str) -> Any:
    def factory(*, draws: int | None = None) -> KeepRows:
        return KeepRows(name, draws=draws)

    factory.__name__ = f"keep_{name}"
    factory.__doc__ = f"ERM on the rows the rule {name!r} keeps (:class:`KeepRows`)."
    return factory


register_dataset("adult_condensed", adult_condensed, replace=True)
for _name in CONDENSE_RULES:
    register_method(_name, _rule_method(_name), replace=True)
register_metric("condensation", condensation_audit, replace=True)


def plot_by_fraction(summary: Any, metrics: Sequence[str], *, labels: dict[str, str] | None = None,
                     reference: dict[str, float] | None = None, reference_label: str = "reference",
                     percent: bool = False) -> Any:
    """Means over seeds with their bands against the share of rows kept (log scale).

    :func:`fairlib.plotting.plot_sweep` with one panel per metric and a line per method,
    the shares as percentages, an optional dotted horizontal line per metric
    (``reference``) and one legend under the panels.

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`fairlib.experiments.summarize` by ``["method", "fraction"]``.
    metrics : sequence of str
        One panel each.
    labels : dict, optional
        Panel titles per metric.
    reference : dict, optional
        ``{metric: value}`` drawn as a dotted line labelled ``reference_label``.
    percent : bool
        Show the y axis in percent.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from fairlib.experiments import summarize
    >>> from fairlib.studies.condensation import plot_by_fraction
    >>> runs = pd.DataFrame({"method": ["a"] * 4, "fraction": [0.1, 0.1, 0.5, 0.5],
    ...                      "acc": [0.8, 0.7, 0.9, 0.8]})
    >>> fig = plot_by_fraction(summarize(runs, ["acc"], by=["method", "fraction"], n_boot=200),
    ...                        ["acc"], reference={"acc": 0.85})
    >>> len(fig.axes)
    1
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    from ..plotting import plot_sweep

    _, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.6), squeeze=False)
    plot_sweep(summary, x="fraction", metrics=metrics, labels=labels, axes=axes[0])
    fractions = sorted(set(summary.index.get_level_values("fraction")))
    for ax, metric in zip(axes[0], metrics, strict=True):
        if reference is not None and metric in reference:
            ax.axhline(reference[metric], color="0.3", linestyle=":", label=reference_label)
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(fractions, [f"{f:.0%}" for f in fractions])
        ax.set_xlabel("share of training rows kept, k")
        if percent:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes[0][-1].get_legend().remove()
    handles, names = axes[0][-1].get_legend_handles_labels()
    fig = axes[0][0].figure
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 3), frameon=False,
               fontsize="small")
    fig.tight_layout(rect=(0, 0.1 + 0.05 * (len(names) > 3), 1, 1))
    return fig


def tuning_grid(*, fractions: Sequence[float], lrs: Sequence[float], retrain_steps: int,
                batch_size: int, hidden: int, epochs: int, lr: float, forml_objective: str,
                forml_meta_lr: float, meta_fraction: float, test_fraction: float,
                flip_rate: float = 0.0, flip_keep: float = 0.9, device: str = "cpu",
                rules: Sequence[str] = tuple(CONDENSE_RULES)) -> list[Any]:
    """Chapter 6's configurations: every rule on every fraction, with the same retraining grid.

    The rules have no knobs of their own, so each one tunes the shared retraining recipe:
    ERM of an MLP (``hidden`` units) for ``retrain_steps`` steps of ``batch_size`` rows drawn
    from its subset, over the Adam learning rates ``lrs``. Each fraction is a data set of
    its own (``adult_condensed`` with that ``fraction``), tuned separately; the FORML run
    that learns the weights (``epochs``, ``lr``, ``forml_objective``, ``forml_meta_lr``) is
    fixed, not tuned. With ``flip_rate > 0`` one more data set keeps ``flip_keep`` of a
    training split whose women's positive labels were flipped at that rate, with the
    rules of :data:`COMPARED`. Every spec records the metric ``"condensation"``.

    Returns
    -------
    list of RunSpec
        One spec per (data set, rule, learning rate), seed 0 (:func:`tune_and_run` sets seeds).

    Examples
    --------
    >>> from collections import Counter
    >>> from fairlib.studies.condensation import tuning_grid
    >>> specs = tuning_grid(fractions=[0.1, 0.5], lrs=[0.001, 0.003], retrain_steps=10,
    ...                     batch_size=64, hidden=8, epochs=1, lr=0.001, forml_objective="eo_gap",
    ...                     forml_meta_lr=1.0, meta_fraction=0.1, test_fraction=0.3, flip_rate=0.3)
    >>> len(specs), set(Counter((s.dataset_params, s.method) for s in specs).values())
    (38, {2})
    """
    from ..experiments import RunSpec

    unknown = [r for r in rules if r not in CONDENSE_RULES]
    if unknown or not rules:
        raise ValueError(f"Expected `rules` among {sorted(CONDENSE_RULES)}, "
                         f"but got {list(rules)!r}.")
    split = [round(1.0 - meta_fraction - test_fraction, 10), meta_fraction, test_fraction]
    forml = {"objective": forml_objective, "meta_lr": forml_meta_lr, "epochs": epochs, "lr": lr,
             "batch_size": batch_size, "hidden": hidden, "device": device}
    studies = [(fraction, 0.0, rules) for fraction in fractions]
    if flip_rate > 0:
        studies.append((flip_keep, flip_rate, COMPARED))
    specs = []
    for fraction, flip, names in studies:
        data = {"fraction": fraction, "split": split, "forml": forml, "flip_rate": flip}
        for rule in names:
            for rate in lrs:
                specs.append(RunSpec("adult_condensed", "mlp", rule, dataset_params=data,
                                     model_params={"hidden": [hidden]},
                                     method_params={"draws": retrain_steps * batch_size},
                                     train={"epochs": 1, "batch_size": batch_size, "lr": rate,
                                            "device": device}, metrics=["condensation"]))
    return specs
