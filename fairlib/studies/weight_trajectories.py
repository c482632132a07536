"""How learned per-sample weights evolve, summarised by (group, label) cell.

Written for chapter 4, *FORML and equal opportunity* (``notebooks/04_forml_equal_opportunity.ipynb``).

Strategies with persistent per-sample weights (:class:`fairlib.weighting.FORML`) keep a
copy of their weights after every epoch in ``history_``. A weight per sample is too much
to look at; what matters for group fairness is how much each (group, label) *cell* of the
training set counts. :func:`cell_weight_trajectories` turns the history into one row per
epoch and cell (mean weight, share of the total weight, share of zero weights),
:func:`reweighing_cell_factors` gives the Kamiran-Calders factors of the same cells as a
point of comparison, and :func:`plot_weight_trajectories` draws the result.

Values are read back to the host once per call, after training, never in a training step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes

from .._validation import msg_expected

__all__ = ["cell_weight_trajectories", "plot_weight_trajectories", "reweighing_cell_factors"]

#: The columns :func:`plot_weight_trajectories` can draw.
VALUES = ("mean_weight", "weight_share", "zero_share")
_VALUE_LABELS = {
    "mean_weight": "mean weight (average sample = 1)",
    "weight_share": "share of the total weight",
    "zero_share": "share of samples at weight 0",
}
def _as_codes(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(msg_expected(name, "a non-empty 1-d array of integer codes",
                                f"shape {tuple(t.shape)}"))
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(msg_expected(name, "integer codes", f"dtype {t.dtype}"))
    if int(t.min()) < 0:
        raise ValueError(msg_expected(name, "non-negative codes", f"minimum {int(t.min())}"))
    return t.long()


def _check_cells(group: Any, y: Any,
                 group_names: Sequence[str] | None) -> tuple[torch.Tensor, list[str]]:
    """Cell codes ``2 * group + y`` and the group names."""
    g, label = _as_codes(group, "group"), _as_codes(y, "y")
    if len(g) != len(label):
        raise ValueError(msg_expected("y", f"as long as `group` ({len(g)})", len(label)))
    if int(label.max()) > 1:
        raise ValueError(msg_expected("y", "labels in {0, 1}", f"maximum {int(label.max())}"))
    n_groups = int(g.max()) + 1
    if group_names is None:
        return g.to(label.device) * 2 + label, [str(i) for i in range(n_groups)]
    names = [str(n) for n in group_names]
    if len(names) < n_groups:
        raise ValueError(msg_expected("group_names", f"at least {n_groups} names",
                                f"{len(names)}: {names!r}"))
    return g.to(label.device) * 2 + label, names


def _cell_name(group: str, label: int) -> str:
    return f"{group}, y={label}"


def _stack_history(history: Sequence[torch.Tensor], n: int, init: float | None,
                   device: torch.device) -> torch.Tensor:
    """The weight snapshots as one float64 tensor ``[E, N]`` (epoch 0 first when ``init``)."""
    if (isinstance(history, torch.Tensor) or not isinstance(history, Sequence)
            or len(history) == 0):
        got = "an empty sequence" if isinstance(history, Sequence) and not isinstance(
            history, torch.Tensor) else type(history).__name__
        raise ValueError(msg_expected("history", "a non-empty list of weight tensors", got))
    snapshots = []
    for i, w in enumerate(history):
        w = torch.as_tensor(w)
        if w.ndim != 1 or len(w) != n:
            raise ValueError(msg_expected(f"history[{i}]", f"a 1-d tensor of {n} weights",
                                    f"shape {tuple(w.shape)}"))
        snapshots.append(w.detach().to(device, torch.float64))
    if init is not None:
        if not init > 0:
            raise ValueError(msg_expected("init", "a positive weight or None", repr(init)))
        snapshots.insert(0, torch.full((n,), float(init), dtype=torch.float64, device=device))
    stacked = torch.stack(snapshots)
    if not bool(torch.isfinite(stacked).all()) or bool((stacked < 0).any()):
        raise ValueError(msg_expected("history", "finite, non-negative weights",
                                "negative or non-finite values"))
    return stacked


def cell_weight_trajectories(
    history: Sequence[torch.Tensor],
    group: Any,
    y: Any,
    *,
    group_names: Sequence[str] | None = None,
    init: float | None = None,
    relative: bool = True,
) -> pd.DataFrame:
    """Per-epoch summary of per-sample weights by (group, label) cell.

    Parameters
    ----------
    history : sequence of torch.Tensor
        One weight vector ``[N]`` per epoch, e.g. ``FORML.history_``.
    group, y : array-like of int
        Group code (``0 .. G-1``) and label (0/1) of every training sample ``[N]``,
        e.g. ``train.group`` and ``train.y``.
    group_names : sequence of str, optional
        Display names of the group codes (e.g. ``train.group_categories``).
    init : float, optional
        The initial weight of every sample (``FORML.init``); adds an epoch-0 row.
    relative : bool, default True
        Divide each epoch's weights by their mean over all samples, so that an average
        sample weighs 1 and epochs (and runs) are comparable. The shares do not change.

    Returns
    -------
    pandas.DataFrame
        One row per epoch and non-empty cell, with columns ``epoch``, ``group``,
        ``label``, ``cell`` (``"<group>, y=<label>"``), ``n`` (samples in the cell),
        ``mean_weight``, ``weight_share`` (the cell's share of the total weight) and
        ``zero_share`` (share of the cell's samples at weight 0).

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.weight_trajectories import cell_weight_trajectories
    >>> group, y = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    >>> history = [torch.tensor([1.0, 3.0, 0.0, 4.0])]
    >>> frame = cell_weight_trajectories(history, group, y, group_names=["a", "b"], init=1.0)
    >>> frame[frame.epoch == 1][["cell", "mean_weight", "weight_share", "zero_share"]]
         cell  mean_weight  weight_share  zero_share
    4  a, y=0          0.5         0.125         0.0
    5  a, y=1          1.5         0.375         0.0
    6  b, y=0          0.0         0.000         1.0
    7  b, y=1          2.0         0.500         0.0
    """
    cells, names = _check_cells(group, y, group_names)
    n = len(cells)
    stacked = _stack_history(history, n, init, cells.device)  # [E, N]
    n_cells = int(cells.max()) + 1
    one_hot = torch.nn.functional.one_hot(cells, n_cells).to(torch.float64)  # [N, C]
    counts = one_hot.sum(0)  # [C]
    totals = stacked.sum(1, keepdim=True)  # [E, 1]
    safe_totals = torch.where(totals > 0, totals, torch.ones_like(totals))
    sums = stacked @ one_hot  # [E, C]
    scale = safe_totals / n if relative else torch.ones_like(totals)
    mean_w = (sums / counts.clamp(min=1) / scale).cpu().numpy()
    share = (sums / safe_totals).cpu().numpy()
    zero_share = (((stacked == 0).to(torch.float64) @ one_hot) / counts.clamp(min=1)).cpu().numpy()
    counts_np = counts.cpu().numpy()
    first = 0 if init is not None else 1
    rows = []
    for e in range(stacked.shape[0]):
        for c in range(n_cells):
            if counts_np[c] == 0:
                continue
            gname, label = names[c // 2], c % 2
            rows.append({"epoch": first + e, "group": gname, "label": label,
                         "cell": _cell_name(gname, label), "n": int(counts_np[c]),
                         "mean_weight": float(mean_w[e, c]), "weight_share": float(share[e, c]),
                         "zero_share": float(zero_share[e, c])})
    return pd.DataFrame(rows)


def reweighing_cell_factors(group: Any, y: Any, *,
                            group_names: Sequence[str] | None = None) -> pd.Series:
    """Kamiran-Calders factors ``n_g n_y / (n n_{g,y})`` of every non-empty (group, label) cell.

    These are the weights that make group and label independent in the weighted
    training set. They average 1 over the samples, the scale of
    :func:`cell_weight_trajectories` with ``relative=True``, so learned weights can be
    compared with them.

    Parameters
    ----------
    group, y : array-like of int
        Group code and label (0/1) of every sample.
    group_names : sequence of str, optional
        Display names of the group codes.

    Returns
    -------
    pandas.Series
        Indexed by cell name ``"<group>, y=<label>"``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.weight_trajectories import reweighing_cell_factors
    >>> group, y = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 1])
    >>> reweighing_cell_factors(group, y, group_names=["a", "b"]).round(3).to_dict()
    {'a, y=0': 0.75, 'a, y=1': 1.5, 'b, y=1': 0.5}
    """
    cells, names = _check_cells(group, y, group_names)
    counts = torch.bincount(cells).tolist()
    n = len(cells)
    n_g = [counts[2 * g] + (counts[2 * g + 1] if 2 * g + 1 < len(counts) else 0)
           for g in range((len(counts) + 1) // 2)]
    n_y = [sum(counts[0::2]), sum(counts[1::2])]
    out = {_cell_name(names[c // 2], c % 2): n_g[c // 2] * n_y[c % 2] / (n * k)
           for c, k in enumerate(counts) if k > 0}
    return pd.Series(out, name="reweighing_factor")


def plot_weight_trajectories(
    frame: pd.DataFrame,
    *,
    value: Literal["mean_weight", "weight_share", "zero_share"] = "mean_weight",
    reference: Mapping[str, float] | pd.Series | None = None,
    palette: Mapping[str, Any] | None = None,
    log: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Draw one line per (group, label) cell against the epoch.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`cell_weight_trajectories`. With several runs (e.g. a ``seed``
        column, so that epochs repeat) the line is their mean and a band their range.
    value : {"mean_weight", "weight_share", "zero_share"}
        The column to draw.
    reference : mapping or Series, optional
        A value per cell name (e.g. :func:`reweighing_cell_factors`), drawn as a dashed
        horizontal line in the cell's color.
    palette : mapping, optional
        A matplotlib color per cell name; default the color cycle in order of appearance.
        Cells with label 0 are drawn with circles, label 1 with squares.
    log : bool
        Logarithmic y axis.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when not given.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.weight_trajectories import (cell_weight_trajectories,
    ...                                          plot_weight_trajectories)
    >>> group, y = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    >>> frame = cell_weight_trajectories([torch.tensor([1.0, 3.0, 0.0, 4.0])], group, y, init=1.0)
    >>> ax = plot_weight_trajectories(frame)
    >>> len(ax.lines)
    4
    """
    if value not in VALUES:
        raise ValueError(msg_expected("value", f"one of {', '.join(map(repr, VALUES))}", repr(value)))
    needed = {"epoch", "cell", value}
    if not isinstance(frame, pd.DataFrame) or not needed <= set(frame.columns):
        got = (f"columns {list(frame.columns)}" if isinstance(frame, pd.DataFrame)
               else type(frame).__name__)
        raise TypeError(msg_expected("frame", f"a DataFrame with columns {sorted(needed)} "
                                        "(see cell_weight_trajectories)", got))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2))
    elif not isinstance(ax, Axes):
        raise TypeError(msg_expected("ax", "a matplotlib Axes or None", type(ax).__name__))
    for i, cell in enumerate(dict.fromkeys(frame["cell"])):
        rows = frame[frame["cell"] == cell]
        by_epoch = rows.groupby("epoch")[value]
        mean, lo, hi = by_epoch.mean(), by_epoch.min(), by_epoch.max()
        color = palette[cell] if palette is not None and cell in palette else f"C{i % 10}"
        marker = "s" if "label" in rows.columns and rows["label"].iloc[0] == 1 else "o"
        label = f"{cell} (n={int(rows['n'].iloc[0]):,})" if "n" in rows.columns else cell
        ax.plot(mean.index, mean.to_numpy(), marker=marker, markersize=3, color=color,
                label=label)
        if float((hi - lo).max()) > 0:
            ax.fill_between(mean.index, lo.to_numpy(), hi.to_numpy(), color=color, alpha=0.15,
                            linewidth=0)
        if reference is not None and cell in reference:
            ax.axhline(float(reference[cell]), color=color, linestyle="--", linewidth=1)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(_VALUE_LABELS[value])
    ax.legend(frameon=False, fontsize="small")
    ax.grid(alpha=0.3)
    if np.issubdtype(frame["epoch"].dtype, np.integer):
        ax.xaxis.get_major_locator().set_params(integer=True)
    return ax


# -- chapter 4's protocol ---------------------------------------------------------------------
CHAPTER = "04_forml_equal_opportunity"
#: Adult's recipe in chapter 4: a logistic regression, trained with these settings.
ADULT_TRAIN = {"batch_size": 128, "lr": 0.01}
#: Adult's train / meta / test fractions in chapter 4.
ADULT_SPLIT = (0.6, 0.2, 0.2)


def tuning_grid(*, strength: float, hidden: int, epochs: int, batch_size: int, lr: float,
                weight_decays: Sequence[float], knob_weight_decays: Sequence[float],
                dro_etas: Sequence[float], meta_lrs: Sequence[float], meta_objective: str,
                lookahead_lr: float, n_adult: int, adult_epochs: int, device: str = "cpu") -> list[Any]:
    """Chapter 4's configurations: every method's grid on Colored Digits and on Adult.

    Methods without a knob of their own (ERM, Reweighing) tune the weight decay over
    ``weight_decays``; the others cross two values of their knob (Group DRO's step size,
    L2RW's meta-objective, FORML's meta learning rate) with ``knob_weight_decays``, so
    every method gets ``len(weight_decays)`` configurations when the lists are sized as
    ``profiles.yml`` requires. Adult runs ERM, Reweighing and FORML with the same grids
    on a seeded subsample of ``n_adult`` rows.

    Returns
    -------
    list of RunSpec
        One spec per configuration and data set (seed 0; :func:`tune_and_run` sets seeds).

    Examples
    --------
    >>> from collections import Counter
    >>> from fairlib.studies.weight_trajectories import tuning_grid
    >>> specs = tuning_grid(strength=0.9, hidden=8, epochs=1, batch_size=64, lr=0.03,
    ...                     weight_decays=[0.0, 0.1], knob_weight_decays=[0.0], dro_etas=[0.1, 1.0],
    ...                     meta_lrs=[1.0, 3.0], meta_objective="eo_gap", lookahead_lr=0.1,
    ...                     n_adult=1000, adult_epochs=1)
    >>> sorted(Counter((s.dataset, s.method) for s in specs).values())
    [2, 2, 2, 2, 2, 2, 2, 2]
    """
    from ..experiments import RunSpec

    grids = {
        "ERM": [(wd, {}) for wd in weight_decays],
        "Reweighing": [(wd, {}) for wd in weight_decays],
        "GroupDRO": [(wd, {"eta_q": eta, "groups": "group_label"}) for eta in dro_etas for wd in knob_weight_decays],
        "L2RW": [(wd, {"meta_objective": obj}) for obj in ("mean", "eo_gap") for wd in knob_weight_decays],
        "FORML": [(wd, {"meta_objective": meta_objective, "meta_lr": m, "lookahead_lr": lookahead_lr})
                  for m in meta_lrs for wd in knob_weight_decays],
    }
    digits = RunSpec("colored_digits", "mlp", "ERM", dataset_params={"strength": strength},
                     model_params={"hidden": [hidden]},
                     train={"epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device})
    adult = RunSpec("adult", "logistic", "ERM",
                    dataset_params={"sensitive": "sex", "n": n_adult, "split": list(ADULT_SPLIT)},
                    train={**ADULT_TRAIN, "epochs": adult_epochs, "device": device})
    return [base.replace(method=m, method_params=p, train={**base.train_settings, "weight_decay": wd})
            for base, methods in ((digits, list(grids)), (adult, ["ERM", "Reweighing", "FORML"]))
            for m in methods for wd, p in grids[m]]


def seed_trajectories(runs: Sequence[Any], *, group_names: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`cell_weight_trajectories` of several trained FORML runs, with a ``seed`` column.

    Parameters
    ----------
    runs : sequence of fairlib.experiments.TrainedRun
        Runs whose strategy keeps ``history_`` and ``init`` (FORML).
    group_names : sequence of str, optional
        Display names of the group codes.

    Examples
    --------
    >>> from fairlib.experiments import RunSpec, train_run
    >>> from fairlib.studies.weight_trajectories import seed_trajectories
    >>> spec = RunSpec("synthetic", "logistic", "FORML", dataset_params={"n": 300},
    ...                train={"epochs": 2, "device": "cpu"})
    >>> traj = seed_trajectories([train_run(spec), train_run(spec.replace(seed=1))])
    >>> sorted(traj["seed"].unique().tolist()), int(traj["epoch"].max())
    ([0, 1], 2)
    """
    return pd.concat([cell_weight_trajectories(r.strategy.history_, r.train.group, r.train.y,
                                               group_names=group_names, init=r.strategy.init)
                      .assign(seed=r.spec.seed) for r in runs], ignore_index=True)


def shuffled_attribute(splits: Any, seed: int) -> tuple[Any, Any, Any]:
    """The splits with the training split's sensitive attribute permuted at random (seeded).

    The labels, features and cell sizes stay; only which row belongs to which group is
    scrambled, so group-aware weighting of the training split sees noise.

    Examples
    --------
    >>> from fairlib.datasets import make_colored_digits
    >>> from fairlib.studies.weight_trajectories import shuffled_attribute
    >>> splits = make_colored_digits(strength=0.9, seed=0)
    >>> train, meta, test = shuffled_attribute(splits, seed=0)
    >>> int(train.group.sum()) == int(splits[0].group.sum()), bool((train.group == splits[0].group).all())
    (True, False)
    """
    import dataclasses

    train, meta, test = splits
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    return dataclasses.replace(train, sensitive={**train.sensitive, train.group_name: train.group[perm]}), meta, test


def eo_gaps(model: Any, data: Any, *, threshold: float = 0.5) -> tuple[float, float]:
    """Thresholded and smooth equal-opportunity gaps between two groups.

    The thresholded gap compares true-positive rates (score >= ``threshold``); the smooth
    gap compares the mean score of the positives, the quantity FORML's meta-objective
    differentiates.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import FairDataset
    >>> from fairlib.studies.weight_trajectories import eo_gaps
    >>> data = FairDataset(X=torch.tensor([[3.0], [1.0], [-1.0], [0.5]]), y=torch.tensor([1, 1, 1, 1]),
    ...                    sensitive={"g": torch.tensor([0, 0, 1, 1])}, categories={"g": ["a", "b"]})
    >>> hard, smooth = eo_gaps(torch.nn.Linear(1, 1, bias=False).requires_grad_(False).eval(), data)
    >>> 0 <= smooth <= 1 and hard in (0.0, 0.5, 1.0)
    True
    """
    from ..train import predict_scores

    p = predict_scores(model, data).cpu().double()
    y, g = data.y.cpu(), data.group.cpu()
    if int(g.max()) > 1:
        raise ValueError(msg_expected("data", "two groups", f"{int(g.max()) + 1} groups"))
    hard = [float((p[(g == a) & (y == 1)] >= threshold).double().mean()) for a in (0, 1)]
    smooth = [float(p[(g == a) & (y == 1)].mean()) for a in (0, 1)]
    return abs(hard[0] - hard[1]), abs(smooth[0] - smooth[1])


def unpaired_interval(a: Sequence[float], b: Sequence[float], *, level: float = 0.95,
                      n_boot: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(b) - mean(a)`` resampling each run list on its
    own, as if the two methods' runs had not shared seeds (the paired interval's foil).

    Examples
    --------
    >>> from fairlib.studies.weight_trajectories import unpaired_interval
    >>> lo, hi = unpaired_interval([0.2, 0.3, 0.25, 0.28], [0.1, 0.12, 0.08, 0.11])
    >>> lo < hi < 0
    True
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    diffs = (b[rng.integers(0, len(b), (n_boot, len(b)))].mean(axis=1)
             - a[rng.integers(0, len(a), (n_boot, len(a)))].mean(axis=1))
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
