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


# -- chapter 3's protocol ---------------------------------------------------------------------
CHAPTER = "03_worst_group_robustness"
#: The methods chapter 3 compares.
METHODS = ("ERM", "GroupUpweighting", "GroupDRO", "JTT")


def chapter_spec(method: str, *, weight_decay: float, strength: float, model: str = "mlp", hidden: int = 128,
                 epochs: int = 30, batch_size: int = 128, lr: float = 0.003, eta_q: float = 0.01,
                 jtt_stage1_epochs: int = 2, jtt_up_weight: int = -1, device: str = "cpu") -> Any:
    """One configuration of chapter 3: ``method`` on Colored Digits, scored by (colour, label) cell.

    Every method shares the model and the training recipe; only its own parameters
    (Group DRO's ``eta_q``, JTT's stage-1 epochs and up-weight) and the weight decay
    differ. Returns a :class:`~fairlib.experiments.RunSpec` with seed 0.

    Examples
    --------
    >>> from fairlib.studies.robustness import chapter_spec
    >>> spec = chapter_spec("GroupDRO", weight_decay=0.01, strength=0.9)
    >>> spec.dataset, dict(spec.method_params), spec.train_settings["weight_decay"]
    ('colored_digits', {'eta_q': 0.01}, 0.01)
    """
    from ..experiments import RunSpec

    method_params = {"ERM": {}, "GroupUpweighting": {}, "GroupDRO": {"eta_q": eta_q},
                     "JTT": {"stage1_epochs": jtt_stage1_epochs, "up_weight": jtt_up_weight}}
    if method not in method_params:
        raise ValueError(MSG_TYPE.format(name="method", expected=f"one of {list(method_params)}", got=repr(method)))
    models = {"mlp": ("mlp", {"hidden": [hidden]}), "cnn": ("cnn", {})}
    if model not in models:
        raise ValueError(MSG_TYPE.format(name="model", expected="'mlp' or 'cnn'", got=repr(model)))
    return RunSpec("colored_digits", models[model][0], method, model_params=models[model][1],
                   dataset_params={"strength": strength, "eval_cells": True}, method_params=method_params[method],
                   train={"epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device,
                          "weight_decay": weight_decay})


def tuning_grid(*, weight_decays: Sequence[float], strength: float, model: str = "mlp", hidden: int = 128,
                epochs: int = 30, batch_size: int = 128, lr: float = 0.003, eta_q: float = 0.01,
                jtt_stage1_epochs: int = 2, jtt_up_weight: int = -1, device: str = "cpu") -> list[Any]:
    """Chapter 3's configurations: every method at every weight decay (an equal budget).

    Examples
    --------
    >>> from fairlib.studies.robustness import tuning_grid
    >>> len(tuning_grid(weight_decays=[0.0, 0.01], strength=0.9))
    8
    """
    recipe = {"strength": strength, "model": model, "hidden": hidden, "epochs": epochs, "batch_size": batch_size,
              "lr": lr, "eta_q": eta_q, "jtt_stage1_epochs": jtt_stage1_epochs, "jtt_up_weight": jtt_up_weight,
              "device": device}
    return [chapter_spec(m, weight_decay=wd, **recipe) for m in METHODS for wd in weight_decays]


def shortcut_rule(splits: dict[str, Any]) -> pd.DataFrame:
    """Accuracy of the rule "predict the label the colour suggests" on each split.

    Rows: average accuracy, worst-colour accuracy, worst (colour, label) accuracy; one
    column per split in ``splits`` (``{name: FairDataset}``, a binary attribute).

    Examples
    --------
    >>> from fairlib.datasets import make_colored_digits
    >>> from fairlib.studies.robustness import shortcut_rule
    >>> train, meta, test = make_colored_digits(strength=0.9, seed=0)
    >>> table = shortcut_rule({"train": train, "test": test})
    >>> round(float(table.loc["average accuracy", "train"]), 1), float(table.loc["worst (colour, label) accuracy", "test"])
    (0.9, 0.0)
    """
    out = {}
    for name, split in splits.items():
        rule = split.group  # colour code 1 -> predict 1, code 0 -> predict 0
        right = pd.Series((rule == split.y).double().cpu().numpy())
        cells = group_label_accuracy(split.y, rule, split.group, group_names=split.group_categories)
        out[name] = {"average accuracy": float(right.mean()),
                     "worst colour accuracy": float(right.groupby(split.group.cpu().numpy()).mean().min()),
                     "worst (colour, label) accuracy": float(cells["accuracy"].min())}
    return pd.DataFrame(out)


def early_stopping(spec: Any, splits: Any) -> tuple[pd.DataFrame, dict[str, float]]:
    """Train ``spec`` on ``splits`` while tracking the test split; compare the last epoch with
    the epoch the meta split's worst-group accuracy picks.

    Returns the per-epoch history frame and ``{"last epoch", "early-stopped (on meta)",
    "chosen epoch"}`` (test worst-group accuracies, and the picked epoch).

    Examples
    --------
    >>> from fairlib.datasets import make_colored_digits
    >>> from fairlib.studies.robustness import chapter_spec, early_stopping
    >>> splits = [s.cell_view() for s in make_colored_digits(strength=0.9, seed=0)]
    >>> hist, res = early_stopping(chapter_spec("ERM", weight_decay=0.0, strength=0.9, epochs=2), splits)
    >>> len(hist), res["chosen epoch"] in (1, 2)
    (2, True)
    """
    from ..experiments import train_run

    hist = train_run(spec, splits=splits, track_test=True).history.frame
    stop = hist["meta_worst_group_accuracy"].idxmax()
    return hist, {"last epoch": float(hist["test_worst_group_accuracy"].iloc[-1]),
                  "early-stopped (on meta)": float(hist.loc[stop, "test_worst_group_accuracy"]),
                  "chosen epoch": int(stop)}


def jtt_error_sets(spec: Any, stage1_epochs: Sequence[int], splits: Any) -> pd.DataFrame:
    """JTT's error set after ``T`` epochs of ERM (``spec``'s recipe), for every ``T``.

    One row per ``T``: the error set's size, the share of it in the minority cells
    (colour disagrees with label) and the share of minority rows it catches.

    Examples
    --------
    >>> from fairlib.datasets import make_colored_digits
    >>> from fairlib.studies.robustness import chapter_spec, jtt_error_sets
    >>> splits = [s.cell_view() for s in make_colored_digits(strength=0.9, seed=0)]
    >>> table = jtt_error_sets(chapter_spec("ERM", weight_decay=0.0, strength=0.9), [1], splits)
    >>> list(table.columns)
    ['error set', 'minority share of error set', 'minority images caught']
    """
    from ..experiments import train_run
    from ..weighting import JTT

    train = splits[0]
    attribute = train.group_name.removesuffix(" x label")
    minority = (train.sensitive[attribute] != train.y).cpu()
    rows = {}
    for t in stage1_epochs:
        stage1 = train_run(spec.replace(train={**spec.train_settings, "epochs": int(t)}), splits=splits).model
        err = JTT().identify_errors(stage1, train).error_mask_.cpu()
        rows[int(t)] = {"error set": int(err.sum()), "minority share of error set": float(minority[err].double().mean()),
                        "minority images caught": float(err[minority].double().mean())}
    return pd.DataFrame(rows).T.rename_axis("T")
