"""Audit how well per-sample scores pick out corrupted labels.

Written for chapter 5, *Corrupted labels* (``notebooks/05_corrupted_labels.ipynb``).

When labels were flipped on purpose (:func:`fairlib.datasets.corrupt_labels` returns the
mask of flipped rows), any per-sample score can be read as a detector: flag the
``fraction`` of training rows with the most suspicious scores and compare the flags with
the mask. *Precision* is the share of flagged rows that were flipped, *recall* the share
of flipped rows that were flagged; a detector that flags rows at random has precision
equal to the share of flipped rows (the *prevalence*) and recall equal to ``fraction``.

Scores used in the book: learned FORML weights (low is suspicious), the mean step weight
a per-batch method such as L2RW gave each sample (recorded by :class:`fairlib.weighting.StepWeightRecorder`;
low is suspicious), and the training loss of a plain model on the observed labels
(:func:`fairlib.train.sample_losses`; high is suspicious).

The chapter's protocol (:mod:`fairlib.experiments`), registered at import:

- the data set ``"adult_flipped"`` (:func:`load_adult_flipped`): Adult split into a
  training split whose labels are corrupted in one (group, label) cell, a clean held-out
  (meta) split with half of its rows from each group, and a clean test split;
- the methods ``"L2RW (uniform)"`` and ``"L2RW (stratified)"``: L2RW with uniform or
  cell-stratified held-out batches, wrapped in a :class:`~fairlib.weighting.StepWeightRecorder`
  so that every training row ends with a mean step weight;
- the per-run metric ``"flip_audit"`` (:func:`flip_audit`): precision and recall of the
  run's most suspicious rows against the flipped ones, added to the run's record;
- :func:`tuning_grid` (the comparison with an equal tuning budget), :func:`tuning_table`
  (every configuration's held-out scores), :func:`clean_labels` (a spec on the true
  labels), :func:`audit_curve` and :func:`plot_audit` (the audit of many records as a long
  table and a figure), :func:`weight_groups` and :func:`plot_forml_weights` (one run's
  FORML weights by kind of row) and :func:`findable_flips` (which flipped rows the
  features give away).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd
import torch

from .._validation import MSG_TYPE
from ..experiments import RunSpec, register_dataset, register_method, register_metric

__all__ = [
    "AUDIT_FRACTIONS",
    "CHAPTER",
    "audit_curve",
    "clean_labels",
    "detection_curve",
    "detection_rates",
    "findable_flips",
    "flag_most_suspicious",
    "flip_audit",
    "flipped_rows",
    "load_adult_flipped",
    "plot_audit",
    "plot_forml_weights",
    "suspicion",
    "tuning_grid",
    "tuning_table",
    "weight_groups",
]

#: The notebook this module was written for.
CHAPTER = "05_corrupted_labels"
#: Shares of the training rows that :func:`flip_audit` flags, besides the number of flips.
AUDIT_FRACTIONS: tuple[float, ...] = (0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)

MSG_FRACTION = "Expected `fraction` to be in (0, 1], but got {got!r}."
MSG_SUSPICIOUS = "Expected `suspicious` to be 'low' or 'high', but got {got!r}."
MSG_SHAPES = "Expected `{a}` and `{b}` to have the same shape [N], but got {sa} and {sb}."
MSG_NOT_1D = "Expected `{name}` to be a 1-d tensor [N], but got shape {shape}."


def _check_1d(name: str, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, but got {type(x).__name__}.")
    if x.ndim != 1:
        raise ValueError(MSG_NOT_1D.format(name=name, shape=tuple(x.shape)))
    return x


def _check_pair(a: str, x: torch.Tensor, b: str, y: torch.Tensor) -> None:
    _check_1d(a, x)
    _check_1d(b, y)
    if x.shape != y.shape:
        raise ValueError(MSG_SHAPES.format(a=a, b=b, sa=tuple(x.shape), sb=tuple(y.shape)))


def flag_most_suspicious(scores: torch.Tensor, fraction: float, *,
                         suspicious: Literal["low", "high"] = "low") -> torch.Tensor:
    """Bool mask of the ``fraction`` of rows with the most suspicious scores.

    ``k = max(1, round(fraction * N))`` rows are flagged. Ties are broken by the lower
    index, so the result is deterministic. NaN scores are never flagged before finite ones.

    Parameters
    ----------
    scores : torch.Tensor
        One score per row ``[N]``.
    fraction : float
        Share of rows to flag, in ``(0, 1]``.
    suspicious : {"low", "high"}
        Whether low scores (weights) or high scores (losses) are suspicious.

    Returns
    -------
    torch.Tensor
        Bool ``[N]`` on the device of ``scores``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.label_noise_audit import flag_most_suspicious
    >>> w = torch.tensor([1.0, 0.2, 1.3, 0.2, 0.9])
    >>> flag_most_suspicious(w, 0.4).tolist()
    [False, True, False, True, False]
    >>> flag_most_suspicious(w, 0.2, suspicious="high").tolist()
    [False, False, True, False, False]
    """
    _check_1d("scores", scores)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise ValueError(MSG_FRACTION.format(got=fraction))
    if not 0 < fraction <= 1:
        raise ValueError(MSG_FRACTION.format(got=fraction))
    if suspicious not in ("low", "high"):
        raise ValueError(MSG_SUSPICIOUS.format(got=suspicious))
    n = scores.numel()
    k = max(1, round(fraction * n))
    key = scores.detach().double()
    key = -key if suspicious == "high" else key
    key = torch.nan_to_num(key, nan=math.inf)  # NaN last
    order = torch.sort(key, stable=True).indices
    flags = torch.zeros(n, dtype=torch.bool, device=scores.device)
    flags[order[:k]] = True
    return flags


def detection_rates(flagged: torch.Tensor, flipped: torch.Tensor) -> dict[str, float]:
    """Precision and recall of ``flagged`` as a detector of ``flipped`` rows.

    Parameters
    ----------
    flagged : torch.Tensor
        Bool ``[N]``: rows the detector points at.
    flipped : torch.Tensor
        Bool ``[N]``: rows whose label was corrupted.

    Returns
    -------
    dict
        ``n_flagged``, ``n_flipped``, ``hits`` (flagged and flipped), ``precision``
        (``hits / n_flagged``), ``recall`` (``hits / n_flipped``), ``prevalence`` (share of
        flipped rows: the precision of flagging at random) and ``lift``
        (``precision / prevalence``). An undefined ratio (nothing flagged, nothing
        flipped) is NaN with a warning, never 0.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.label_noise_audit import detection_rates
    >>> flagged = torch.tensor([True, True, False, False, False, False, False, False])
    >>> flipped = torch.tensor([True, False, True, False, False, False, False, False])
    >>> r = detection_rates(flagged, flipped)
    >>> r["precision"], r["recall"], r["prevalence"], r["lift"]
    (0.5, 0.5, 0.25, 2.0)
    """
    _check_pair("flagged", flagged, "flipped", flipped)
    flagged, flipped = flagged.bool(), flipped.bool()
    n = flagged.numel()
    # one host read for the three counts
    counts = torch.stack([flagged.sum(), flipped.sum(), (flagged & flipped).sum()]).tolist()
    n_flagged, n_flipped, hits = (int(c) for c in counts)

    def ratio(num: int, den: int, what: str) -> float:
        if den == 0:
            warnings.warn(f"detection_rates: {what} is undefined (no rows in its denominator); "
                          "returning NaN.", UserWarning, stacklevel=3)
            return math.nan
        return num / den

    precision = ratio(hits, n_flagged, "precision (nothing flagged)")
    recall = ratio(hits, n_flipped, "recall (nothing flipped)")
    prevalence = n_flipped / n if n else math.nan
    lift = precision / prevalence if prevalence and not math.isnan(precision) else math.nan
    return {"n_flagged": n_flagged, "n_flipped": n_flipped, "hits": hits, "precision": precision,
            "recall": recall, "prevalence": prevalence, "lift": lift}


def detection_curve(scores: torch.Tensor, flipped: torch.Tensor, fractions: Sequence[float], *,
                    suspicious: Literal["low", "high"] = "low") -> pd.DataFrame:
    """Precision and recall of flagging the most suspicious ``fraction`` of rows, per fraction.

    Parameters
    ----------
    scores : torch.Tensor
        One score per row ``[N]`` (e.g. learned weights).
    flipped : torch.Tensor
        Bool ``[N]``: rows whose label was corrupted.
    fractions : sequence of float
        Shares of rows to flag, each in ``(0, 1]``.
    suspicious : {"low", "high"}
        Whether low or high scores are suspicious.

    Returns
    -------
    pandas.DataFrame
        One row per fraction: ``fraction`` and the entries of :func:`detection_rates`.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.label_noise_audit import detection_curve
    >>> w = torch.tensor([0.1, 0.9, 0.2, 1.0, 1.1, 0.8, 1.2, 1.0])
    >>> flipped = torch.tensor([True, False, True, False, False, False, False, False])
    >>> detection_curve(w, flipped, [0.25, 0.5])[["fraction", "precision", "recall"]]
       fraction  precision  recall
    0      0.25        1.0     1.0
    1      0.50        0.5     1.0
    """
    _check_pair("scores", scores, "flipped", flipped)
    if len(fractions) == 0:
        raise ValueError("Expected `fractions` to hold at least one fraction, but got none.")
    rows = [{"fraction": float(f),
             **detection_rates(flag_most_suspicious(scores, f, suspicious=suspicious), flipped)}
            for f in fractions]
    return pd.DataFrame(rows)


# -- chapter 5's protocol ---------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _adult(sensitive: str) -> Any:
    """``load_adult(sensitive)``, once per process."""
    from ..datasets import load_adult

    return load_adult(sensitive)


def load_adult_flipped(*, seed: int, flip_group: str = "Female", flip_rate: float = 0.3,
                       flip_label: int = 1, meta_fraction: float = 0.1, test_fraction: float = 0.3,
                       sensitive: str = "sex") -> Any:
    """Adult with one (group, label) cell of the training split corrupted (``"adult_flipped"``).

    The rows are split with ``seed`` into a training split (``1 - meta_fraction -
    test_fraction``), a held-out (meta) split with half of its rows from each group, each
    keeping its own share of positives, and a test split. Then ``flip_rate`` of the
    training rows with group ``flip_group`` and label ``flip_label`` get the other label
    (:func:`fairlib.datasets.corrupt_labels`, seeded with ``seed``; the true labels stay
    in ``train.extras["y_clean"]``, see :func:`flipped_rows`). The meta and test labels
    are clean. The split does not depend on the corruption, so ``flip_rate=0`` gives the
    same rows with their true labels.

    Parameters
    ----------
    seed : int
        Seeds the split and the choice of flipped rows.
    flip_group : str
        A category of ``sensitive`` (``"Female"`` or ``"Male"`` for ``"sex"``).
    flip_rate : float
        Share of the cell's training rows whose label is flipped, in ``[0, 1]``.
    flip_label : {0, 1}
        The observed label of the cell that is corrupted (1: positives become negatives).
    meta_fraction, test_fraction : float
        Shares of the rows in the meta and the test split.
    sensitive : str
        Adult's sensitive attribute.

    Returns
    -------
    fairlib.datasets.Splits
        ``(train, meta, test)``; ``train`` has the corrupted labels.

    Examples
    --------
    >>> from fairlib.studies.label_noise_audit import flipped_rows, load_adult_flipped
    >>> train, meta, test = load_adult_flipped(seed=0, flip_rate=0.3)  # doctest: +SKIP
    >>> int(flipped_rows(train).sum()) > 0  # doctest: +SKIP
    True
    """
    from ..datasets import Splits, corrupt_labels

    data = _adult(sensitive)
    if flip_group not in data.group_categories:
        raise ValueError(MSG_TYPE.format(name="flip_group",
                                         expected=f"one of {list(data.group_categories)}",
                                         got=repr(flip_group)))
    train, meta, test = data.split(1.0 - meta_fraction - test_fraction, meta_fraction,
                                   test_fraction, seed=seed, meta_balanced="group")
    noisy, _ = corrupt_labels(train, {(flip_group, flip_label): flip_rate}, seed=seed)
    return Splits(noisy, meta, test)


def flipped_rows(data: Any) -> torch.Tensor:
    """Bool ``[N]``: the rows of ``data`` whose label differs from ``extras["y_clean"]``.

    Examples
    --------
    >>> from fairlib.datasets import corrupt_labels, make_biased_classification
    >>> from fairlib.studies.label_noise_audit import flipped_rows
    >>> noisy, flipped = corrupt_labels(make_biased_classification(100, seed=0), {"minority": 0.2})
    >>> bool((flipped_rows(noisy) == flipped).all())
    True
    """
    if "y_clean" not in getattr(data, "extras", {}):
        raise ValueError(MSG_TYPE.format(name="data", expected="a dataset from corrupt_labels "
                                         "(true labels in extras['y_clean'])",
                                         got="no 'y_clean' column"))
    return data.y != data.extras["y_clean"]


def _recorded_l2rw(stratified: bool) -> Any:
    def factory(**params: Any) -> Any:
        from ..weighting import L2RW, StepWeightRecorder

        return StepWeightRecorder(L2RW(stratified=stratified, **params))

    factory.__name__ = f"l2rw_{'stratified' if stratified else 'uniform'}_recorded"
    factory.__doc__ = (f"``StepWeightRecorder(L2RW(stratified={stratified}, **params))``: L2RW "
                       "whose step weights are averaged per training row.")
    return factory


def suspicion(run: Any) -> tuple[torch.Tensor, Literal["low", "high"]]:
    """A trained run's score per training row, and which end of it is suspicious.

    Persistent per-sample weights (FORML's ``weights_``) and mean step weights (a
    :class:`~fairlib.weighting.StepWeightRecorder`) are suspicious when low; for any
    other strategy, the model's loss on the observed label
    (:func:`fairlib.train.sample_losses`) is suspicious when high.

    Parameters
    ----------
    run : fairlib.experiments.TrainedRun

    Returns
    -------
    (torch.Tensor, str)
        Scores ``[N]`` of ``run.train`` and ``"low"`` or ``"high"``.
    """
    from ..train import sample_losses
    from ..weighting import StepWeightRecorder

    strategy = run.strategy
    if isinstance(strategy, StepWeightRecorder):
        return strategy.mean_weights(), "low"
    weights = getattr(strategy, "weights_", None)
    if isinstance(weights, torch.Tensor) and weights.shape == (len(run.train),):
        return weights.detach(), "low"
    return sample_losses(run.model, run.train), "high"


def flip_audit(run: Any, *, fractions: Sequence[float] = AUDIT_FRACTIONS) -> dict[str, float]:
    """How well a run's :func:`suspicion` scores find its flipped labels (metric ``"flip_audit"``).

    Parameters
    ----------
    run : fairlib.experiments.TrainedRun
        A run on a training split with flipped labels (:func:`flipped_rows`).
    fractions : sequence of float
        Shares of the training rows to flag, besides as many rows as were flipped.

    Returns
    -------
    dict
        ``audit_prevalence`` (share of rows flipped); flagging as many rows as were
        flipped: ``audit_precision`` (which then equals the recall) and ``audit_lift``
        (precision / prevalence); ``audit_flags_in_cell`` (share of those flags in the
        (group, observed label) cell that holds the flips), ``audit_cell_prevalence``
        (share flipped in that cell), ``audit_cell_precision`` (flagging as many rows
        within that cell only); ``audit_score_flipped`` and ``audit_score_cell_clean``
        (mean score of the flipped and of the other rows of that cell); and
        ``audit_precision[f]`` and ``audit_recall[f]`` for every ``f`` in ``fractions``.

    Examples
    --------
    >>> from fairlib.experiments import RunSpec, execute
    >>> spec = RunSpec("adult_flipped", "logistic", "FORML", train={"epochs": 1, "device": "cpu"},
    ...                metrics=["flip_audit"])  # doctest: +SKIP
    >>> 0 <= execute(spec)["audit_precision"] <= 1  # doctest: +SKIP
    True
    """
    flipped = flipped_rows(run.train)
    n, n_flipped = len(flipped), int(flipped.sum())
    if n_flipped == 0:
        raise ValueError(MSG_TYPE.format(name="run", got="no flipped rows",
                                         expected="a training split with flipped labels"))
    scores, direction = suspicion(run)
    scores = scores.detach().to(flipped.device)
    flags = flag_most_suspicious(scores, n_flipped / n, suspicious=direction)
    at_flips = detection_rates(flags, flipped)
    cells = run.train.cells
    in_cell = cells == torch.mode(cells[flipped]).values  # the cell that holds (most of) the flips
    n_cell, n_in = int(in_cell.sum()), int(flipped[in_cell].sum())
    cell_flags = flag_most_suspicious(scores[in_cell], n_in / n_cell, suspicious=direction)
    out = {"audit_prevalence": at_flips["prevalence"], "audit_precision": at_flips["precision"],
           "audit_lift": at_flips["lift"],
           "audit_flags_in_cell": float(flags[in_cell].sum()) / float(flags.sum()),
           "audit_cell_prevalence": n_in / n_cell,
           "audit_cell_precision": detection_rates(cell_flags, flipped[in_cell])["precision"],
           "audit_score_flipped": float(scores[flipped].double().nanmean()),
           "audit_score_cell_clean": float(scores[in_cell & ~flipped].double().nanmean())}
    for f in fractions:
        r = detection_rates(flag_most_suspicious(scores, f, suspicious=direction), flipped)
        out[f"audit_precision[{f:g}]"], out[f"audit_recall[{f:g}]"] = r["precision"], r["recall"]
    return out


def audit_curve(runs: pd.DataFrame) -> pd.DataFrame:
    """The ``audit_precision[f]`` / ``audit_recall[f]`` columns of records as a long table.

    Adds the method ``"random flags"`` per seed: precision equal to the seed's
    ``audit_prevalence``, recall equal to the fraction flagged.

    Parameters
    ----------
    runs : pandas.DataFrame
        Records with the ``"flip_audit"`` metric (other rows are left out), with
        ``method`` and ``seed`` columns.

    Returns
    -------
    pandas.DataFrame
        Columns ``method``, ``seed``, ``fraction``, ``precision``, ``recall``; ready for
        ``summarize(..., by=["method", "fraction"])``.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.label_noise_audit import audit_curve
    >>> runs = pd.DataFrame({"method": ["FORML"], "seed": [0], "audit_prevalence": [0.01],
    ...                      "audit_precision[0.01]": [0.3], "audit_recall[0.01]": [0.3]})
    >>> audit_curve(runs)[["method", "precision", "recall"]].values.tolist()
    [['FORML', 0.3, 0.3], ['random flags', 0.01, 0.01]]
    """
    prefix = "audit_precision["
    fractions = [c[len(prefix):-1] for c in runs.columns if str(c).startswith(prefix)]
    if not fractions or "audit_prevalence" not in runs.columns:
        got = f"columns {sorted(map(str, runs.columns))[:12]}"
        raise ValueError(MSG_TYPE.format(name="runs", expected="records with the 'flip_audit' "
                                         "metric", got=got))
    audited = runs.dropna(subset=["audit_prevalence"])
    rows = [{"method": r["method"], "seed": r["seed"], "fraction": float(f),
             "precision": r[f"audit_precision[{f}]"], "recall": r[f"audit_recall[{f}]"]}
            for _, r in audited.iterrows() for f in fractions]
    rows += [{"method": "random flags", "seed": r["seed"], "fraction": float(f),
              "precision": r["audit_prevalence"], "recall": float(f)}
             for _, r in audited.drop_duplicates("seed").iterrows() for f in fractions]
    return pd.DataFrame(rows)


def findable_flips(scores: torch.Tensor, flipped: torch.Tensor, clean_prob: torch.Tensor, *,
                   suspicious: Literal["low", "high"] = "low") -> pd.DataFrame:
    """Which flipped rows a score finds, split by what the features say about them.

    A flipped row *looks positive* when a model trained on the true labels gives it a
    probability of at least 0.5 of being positive: its features contradict its corrupted
    (negative) label. Rows are flagged as in :func:`flag_most_suspicious`, as many as
    were flipped.

    Parameters
    ----------
    scores : torch.Tensor
        One score per training row ``[N]``.
    flipped : torch.Tensor
        Bool ``[N]``: the flipped rows.
    clean_prob : torch.Tensor
        ``P(y = 1 | x)`` ``[N]`` from a model trained on the true labels.
    suspicious : {"low", "high"}
        Which end of ``scores`` is suspicious.

    Returns
    -------
    pandas.DataFrame
        Index ``"looks positive"``, ``"looks negative"``; columns ``share_of_flips``,
        ``recall`` (share of those flips flagged) and ``mean_score``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.label_noise_audit import findable_flips
    >>> w = torch.tensor([0.1, 1.2, 1.0, 0.9])  # the two lowest: rows 0 and 3
    >>> flipped = torch.tensor([True, True, False, False])
    >>> findable_flips(w, flipped, torch.tensor([0.8, 0.2, 0.3, 0.9]))["recall"].tolist()
    [1.0, 0.0]
    """
    _check_pair("scores", scores, "flipped", flipped)
    _check_pair("scores", scores, "clean_prob", clean_prob)
    flipped = flipped.bool()
    share = max(int(flipped.sum()), 1) / len(flipped)
    flags = flag_most_suspicious(scores, share, suspicious=suspicious)
    looks = clean_prob.to(flipped.device) >= 0.5
    rows = {}
    for name, part in (("looks positive", flipped & looks), ("looks negative", flipped & ~looks)):
        n_part = int(part.sum())
        rows[name] = {"share_of_flips": n_part / max(int(flipped.sum()), 1),
                      "recall": float((flags & part).sum()) / n_part if n_part else math.nan,
                      "mean_score": float(scores[part].double().mean()) if n_part else math.nan}
    return pd.DataFrame(rows).T


def weight_groups(train: Any) -> dict[str, torch.Tensor]:
    """Four masks over a corrupted training split, named for a figure's legend.

    The flipped rows; the other rows of the (group, observed label) cell that holds the
    flips; that group's rows with the other observed label; all rows of the other groups.

    Examples
    --------
    >>> from fairlib.datasets import corrupt_labels, make_biased_classification
    >>> from fairlib.studies.label_noise_audit import weight_groups
    >>> noisy, _ = corrupt_labels(make_biased_classification(400, seed=0), {("minority", 1): 0.3})
    >>> list(weight_groups(noisy))  # doctest: +NORMALIZE_WHITESPACE
    ['flipped (true 1, label 0)', 'minority, label 0, not flipped', 'minority, label 1',
     'other groups']
    """
    flipped = flipped_rows(train)
    if not bool(flipped.any()):
        raise ValueError(MSG_TYPE.format(name="train", got="no flipped rows",
                                         expected="a training split with flipped labels"))
    cells = train.cells
    cell = int(torch.mode(cells[flipped]).values)
    code, label = divmod(cell, 2)
    name = train.group_categories[code]
    in_group = train.group == code
    return {f"flipped (true {1 - label}, label {label})": flipped,
            f"{name}, label {label}, not flipped": in_group & (train.y == label) & ~flipped,
            f"{name}, label {1 - label}": in_group & (train.y != label),
            "other groups": ~in_group}


def plot_forml_weights(strategy: Any, train: Any) -> tuple[Any, pd.DataFrame]:
    """FORML's final weights and their trajectory for the four :func:`weight_groups`.

    Left: the distribution of the final weights per group of rows; right: each group's
    mean weight after every epoch (all weights start at ``strategy.init``).

    Parameters
    ----------
    strategy : fairlib.weighting.FORML
        A fitted FORML (``weights_``, ``history_``).
    train : FairDataset
        Its corrupted training split.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        The figure, and per group: ``n``, ``mean_weight`` and ``zero_share`` (share of
        final weights equal to 0).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    groups = {k: v.cpu() for k, v in weight_groups(train).items()}
    weights = strategy.weights_.detach().cpu()
    trajectory = torch.stack([torch.full_like(weights, float(strategy.init)),
                              *(w.detach().cpu() for w in strategy.history_)])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    bins = np.linspace(0, float(weights.max()) * 1.02, 60)
    rows = {}
    for i, (label, mask) in enumerate(groups.items()):
        axes[0].hist(weights[mask].numpy(), bins=bins, density=True, histtype="step",
                     linewidth=1.6, color=f"C{i}", label=f"{label} ({int(mask.sum()):,})")
        axes[1].plot(range(len(trajectory)), trajectory[:, mask].mean(1).numpy(), marker="o",
                     markersize=3, color=f"C{i}")
        rows[label] = {"n": int(mask.sum()), "mean_weight": float(weights[mask].mean()),
                       "zero_share": float((weights[mask] == 0).double().mean())}
    axes[0].set_xlabel("FORML weight after training")
    axes[0].set_ylabel("density")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("mean FORML weight")
    axes[1].axhline(float(strategy.init), color="0.7", linewidth=0.8, zorder=0)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=2, frameon=False,
               fontsize="small", bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.11, 1, 1))
    return fig, pd.DataFrame(rows).T


def plot_audit(curve: pd.DataFrame, *, prevalence: float | None = None) -> Any:
    """Precision and recall of flagging the share ``k`` of rows, one line per score (log ``k``).

    Parameters
    ----------
    curve : pandas.DataFrame
        ``summarize(audit_curve(runs), ["precision", "recall"], by=["method", "fraction"])``.
    prevalence : float, optional
        The share of flipped rows, drawn as a vertical line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..plotting import plot_sweep

    axes = plot_sweep(curve, x="fraction", metrics=["precision", "recall"], ylim=(0, 1))
    fractions = sorted(set(curve.index.get_level_values("fraction")))
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(fractions, [f"{100 * f:g}%" for f in fractions], fontsize="small")
        ax.minorticks_off()
        ax.set_xlabel("share of training rows flagged, k")
        if prevalence is not None:
            ax.axvline(prevalence, color="0.7", linewidth=0.8, zorder=0)
    return axes[0].figure


def tuning_table(tuning: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Mean of ``metrics`` per method and configuration over the tuning seeds.

    A configuration is named by the parameters its method's grid varies, in the format of
    ``Selection.table["choice"]`` (e.g. ``"lr=0.003"``).

    Parameters
    ----------
    tuning : pandas.DataFrame
        ``Tuned.tuning`` (records of every configuration on every tuning seed).
    metrics : sequence of str
        Record columns to average (duplicates are dropped).

    Returns
    -------
    pandas.DataFrame
        Index ``(method, setting)``, one column per metric.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.label_noise_audit import tuning_table
    >>> tuning = pd.DataFrame({"method": ["A"] * 4, "seed": [0, 1, 0, 1],
    ...                        "train.lr": [0.01, 0.01, 0.1, 0.1],
    ...                        "meta_accuracy": [0.7, 0.8, 0.9, 0.8]})
    >>> tuning_table(tuning, ["meta_accuracy"])["meta_accuracy"].round(2).to_dict()
    {('A', 'lr=0.01'): 0.75, ('A', 'lr=0.1'): 0.85}
    """
    from ..experiments.protocol import config_columns

    columns = config_columns(tuning)
    labels = []
    for _, rows in tuning.groupby("method", sort=False):
        varied = [c for c in columns if rows[c].astype(str).nunique() > 1]
        def name(row: pd.Series, varied: list[str] = varied) -> str:
            text = ", ".join(f"{c.split('.', 1)[1]}={row[c]}" for c in varied)
            return text or "(one configuration)"

        labels.append(rows.apply(name, axis=1))
    frame = tuning.assign(setting=pd.concat(labels))
    return frame.groupby(["method", "setting"], sort=False)[list(dict.fromkeys(metrics))].mean()


def clean_labels(spec: RunSpec) -> RunSpec:
    """``spec`` on the same split with the true training labels (``flip_rate=0``), without
    extra metrics (there is nothing to audit).

    Examples
    --------
    >>> from fairlib.experiments import RunSpec
    >>> from fairlib.studies.label_noise_audit import clean_labels
    >>> spec = RunSpec("adult_flipped", "mlp", "ERM", dataset_params={"flip_rate": 0.3},
    ...                metrics=["flip_audit"])
    >>> dict(clean_labels(spec).dataset_params), clean_labels(spec).metrics
    ({'flip_rate': 0.0}, ())
    """
    return spec.replace(dataset_params={**dict(spec.dataset_params), "flip_rate": 0.0}, metrics=())


def tuning_grid(*, epochs: int, batch_size: int, lr: float, lrs: Sequence[float],
                meta_lrs: Sequence[float], hidden: int, flip_group: str, flip_rate: float,
                meta_fraction: float, test_fraction: float, forml_objective: str,
                device: str = "cpu") -> list[RunSpec]:
    """Chapter 5's configurations: four methods on ``"adult_flipped"`` with an equal budget.

    ERM, Reweighing and L2RW (uniform held-out batches, as in its paper) tune the Adam
    learning rate over ``lrs``; FORML (meta-objective ``forml_objective``, learning rate
    ``lr``) tunes its meta learning rate over ``meta_lrs``. With ``len(lrs) ==
    len(meta_lrs)`` every method gets the same number of configurations. Every model is
    an MLP with one hidden layer of ``hidden`` units; ERM, L2RW and FORML runs carry the
    ``"flip_audit"`` metric.

    Returns
    -------
    list of RunSpec
        One spec per configuration (seed 0; :func:`~fairlib.experiments.tune_and_run` sets seeds).

    Examples
    --------
    >>> from collections import Counter
    >>> from fairlib.studies.label_noise_audit import tuning_grid
    >>> specs = tuning_grid(epochs=1, batch_size=256, lr=1e-3, lrs=[1e-3, 3e-3],
    ...                     meta_lrs=[1.0, 3.0], hidden=8, flip_group="Female", flip_rate=0.3,
    ...                     meta_fraction=0.1, test_fraction=0.3, forml_objective="eo_gap")
    >>> sorted(Counter(s.method for s in specs).items())
    [('ERM', 2), ('FORML', 2), ('L2RW (uniform)', 2), ('Reweighing', 2)]
    """
    data = {"flip_group": flip_group, "flip_rate": flip_rate, "meta_fraction": meta_fraction,
            "test_fraction": test_fraction}
    train = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device}
    base = RunSpec("adult_flipped", "mlp", "ERM", dataset_params=data,
                   model_params={"hidden": [hidden]}, train=train)
    audit = ["flip_audit"]
    specs = [base.replace(method=m, train={**train, "lr": x},
                          metrics=audit if m != "Reweighing" else ())
             for m in ("ERM", "Reweighing", "L2RW (uniform)") for x in lrs]
    specs += [base.replace(method="FORML", metrics=audit,
                           method_params={"meta_objective": forml_objective, "meta_lr": m})
              for m in meta_lrs]
    return specs


register_dataset("adult_flipped", load_adult_flipped)
register_method("L2RW (uniform)", _recorded_l2rw(False))
register_method("L2RW (stratified)", _recorded_l2rw(True))
register_metric("flip_audit", flip_audit)
