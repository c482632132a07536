"""Worst-group robustness: accuracy over (group, label) cells, and curves over a sweep.

Written for chapter 3, *Worst-group robustness* (``notebooks/03_worst_group_robustness.ipynb``).

Benchmarks of spurious correlations (Waterbirds, CelebA, Colored Digits) score a model by
its accuracy on the *worst* (attribute, label) cell, not on the worst attribute group:
in Colored Digits the hard cells are "red digit with label 1" and "green digit with
label 0", and the per-color accuracy averages each of them with an easy cell. This
module evaluates models on those cells and draws how average and worst-cell accuracy
move along a sweep (of the spurious-correlation strength, a weight decay, ...).

- :meth:`fairlib.datasets.FairDataset.cell_view` (in the core): a copy of a dataset whose
  active attribute is the (attribute, label) cell, so that :func:`fairlib.train.fit` logs
  the worst-cell accuracy of ``meta`` and ``test`` after every epoch.
- :func:`group_label_accuracy`: size and accuracy of every cell, from predictions.
- :func:`robust_accuracy`: a model's average and worst-cell accuracy on a dataset.
- :func:`label_agreement`: the realised strength of a spurious attribute.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._validation import MSG_TYPE

__all__ = [
    "group_label_accuracy",
    "label_agreement",
    "robust_accuracy",
]


def _attribute(data: Any, attribute: str | None) -> str:
    name = data.group_name if attribute is None else attribute
    if name not in data.sensitive:
        raise ValueError(MSG_TYPE.format(
            name="attribute", expected="one of " + ", ".join(map(repr, data.sensitive)),
            got=repr(attribute)))
    return name


def _numpy(x: Any) -> np.ndarray:
    """A 1-d host array from a tensor on any device, an array, a Series or a list."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def group_label_accuracy(y_true: Any, y_pred: Any, group: Any, *,
                         group_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Size and accuracy of every (group, label) cell.

    Parameters
    ----------
    y_true, y_pred : array-like
        Binary labels and predictions ``[N]``.
    group : array-like
        Group of each sample ``[N]`` (integer codes, or any labels).
    group_names : sequence of str, optional
        Names of the codes ``0, 1, ...`` of ``group``; default: the values themselves.

    Returns
    -------
    pandas.DataFrame
        Index ``(group, label)`` over the cells that have samples, columns ``n`` and
        ``accuracy``, ordered by group then label.

    Examples
    --------
    >>> from fairlib.studies.robustness import group_label_accuracy
    >>> group_label_accuracy([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["a", "a", "a", "b", "b"])
                 n  accuracy
    group label
    a     0      2       0.5
          1      1       1.0
    b     1      2       0.5
    """
    t = _numpy(y_true).astype(np.int64)
    p = _numpy(y_pred).astype(np.int64)
    g = _numpy(group)
    if not len(t) == len(p) == len(g):
        raise ValueError(MSG_TYPE.format(
            name="y_true`, `y_pred` and `group", expected="of the same length",
            got=f"lengths {len(t)}, {len(p)} and {len(g)}"))
    if group_names is not None:
        g = np.asarray(list(group_names), dtype=object)[g.astype(np.int64)]
    frame = pd.DataFrame({"group": g, "label": t, "correct": t == p})
    out = frame.groupby(["group", "label"], sort=group_names is None).agg(
        n=("correct", "size"), accuracy=("correct", "mean"))
    if group_names is not None:  # order the groups as named, not alphabetically
        order = {name: i for i, name in enumerate(group_names)}
        keys = [(order[a], b) for a, b in out.index]
        out = out.iloc[sorted(range(len(out)), key=keys.__getitem__)]
    return out


def robust_accuracy(model: nn.Module, data: Any, *, attribute: str | None = None,
                    threshold: float = 0.5, batch_size: int = 1024,
                    device: str | torch.device = "auto") -> dict[str, Any]:
    """Average and worst-cell accuracy of ``model`` on ``data``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps features to one logit per sample.
    data : FairDataset
        Evaluation data.
    attribute : str, optional
        Attribute crossed with the label; default: the active one.
    threshold : float, default 0.5
        A sample is predicted positive when ``sigmoid(logit) >= threshold``.
    batch_size : int, default 1024
        Rows per forward pass.
    device : str or torch.device, default "auto"
        Where the model runs.

    Returns
    -------
    dict
        ``accuracy`` (all rows), ``worst_group_accuracy`` (lowest over the non-empty
        (attribute, label) cells), ``worst_group`` (its name) and
        ``accuracy[<cell>]`` for every non-empty cell.

    Examples
    --------
    >>> from fairlib.datasets import make_colored_digits
    >>> from fairlib.studies.robustness import robust_accuracy
    >>> from fairlib.train import SmallCNN
    >>> test = make_colored_digits(seed=0).test
    >>> res = robust_accuracy(SmallCNN(seed=0), test, device="cpu")
    >>> sorted(res)[:3]
    ['accuracy', 'accuracy[green, y=0]', 'accuracy[green, y=1]']
    >>> res["worst_group_accuracy"] <= res["accuracy"]
    True
    """
    from ..train import predict_scores  # fairlib.train is heavier; import on use

    name = _attribute(data, attribute)
    scores = predict_scores(model, data, batch_size=batch_size, device=device)
    pred = (scores >= threshold).long()
    cells = group_label_accuracy(data.y, pred, data.sensitive[name],
                                 group_names=data.categories[name])
    worst = cells["accuracy"].idxmin()
    out: dict[str, Any] = {
        "accuracy": float((pred.cpu() == data.y.cpu()).double().mean()),
        "worst_group_accuracy": float(cells.loc[worst, "accuracy"]),
        "worst_group": f"{worst[0]}, y={worst[1]}",
    }
    for (g, y), acc in cells["accuracy"].items():
        out[f"accuracy[{g}, y={y}]"] = float(acc)
    return out


def label_agreement(data: Any, attribute: str | None = None) -> float:
    """Share of samples whose binary ``attribute`` code equals their label.

    For Colored Digits this is the realised spurious-correlation strength of a split.

    Examples
    --------
    >>> from fairlib.datasets import make_colored_digits
    >>> from fairlib.studies.robustness import label_agreement
    >>> train, meta, test = make_colored_digits(strength=0.8, seed=0)
    >>> round(label_agreement(train), 2), round(label_agreement(test), 2)
    (0.8, 0.5)
    """
    name = _attribute(data, attribute)
    if len(data.categories[name]) != 2:
        raise ValueError(MSG_TYPE.format(
            name="attribute", expected="a binary attribute (two categories)",
            got=f"{name!r} with {len(data.categories[name])} categories"))
    return float((data.sensitive[name] == data.y).double().mean())
