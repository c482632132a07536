"""``fit`` and ``evaluate``: train any binary classifier with any weighting strategy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, default_collate

from .._inference import batched_logits
from .._validation import (
    _type_name,
    check_device,
    check_finite_positive,
    check_fraction,
    check_nonnegative,
    check_positive_int,
    check_seed,
    msg_expected,
)
from .._progress import progress as show_progress
from ..metrics import FairnessAccumulator, FairnessReport
from ..regularizers import Regularizer
from ..weighting import ERM, Batch, WeightingStrategy

OPTIMIZERS = ("sgd", "adam")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; a device that does not exist here
    (``"cuda"`` without CUDA, an unknown name) raises ``ValueError`` naming ``device``.

    Examples
    --------
    >>> from fairlib.train import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    return check_device("device", device)


@dataclass
class History:
    """What happened during :func:`fit`: one row per epoch.

    Attributes
    ----------
    rows : list of dict
        ``epoch``, ``train_loss``, metrics on ``meta`` and ``test`` (prefixed), and the
        strategy's diagnostics.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        """The history as a DataFrame indexed by epoch."""
        return pd.DataFrame(self.rows).set_index("epoch") if self.rows else pd.DataFrame()

    def last(self, key: str) -> Any:
        """The value of ``key`` in the last epoch."""
        return self.rows[-1][key]


def _sliceable(data: Any) -> bool:
    """Datasets holding whole tensors (FairDataset) are batched by slicing, not row by row."""
    return all(isinstance(getattr(data, k, None), torch.Tensor) for k in ("X", "y", "group", "index"))


def _index_batches(data: Any, batch_size: int, sampler: Any, generator: torch.Generator | None) -> Any:
    """Batches of rows in the order a DataLoader with this sampler (or shuffling) would use."""
    order = sampler if sampler is not None else (
        RandomSampler(range(len(data)), generator=generator) if generator is not None else range(len(data)))
    if _sliceable(data):
        for rows in BatchSampler(order, batch_size, drop_last=False):
            idx = torch.as_tensor(rows, device=data.X.device)
            yield data.X[idx], data.y[idx], data.group[idx], data.index[idx]
    else:
        loader = DataLoader(data, batch_size=batch_size, sampler=order)
        yield from loader


def predict_logits(model: nn.Module, data: Any, *, batch_size: int = 1024,
                   device: str | torch.device | None = None) -> torch.Tensor:
    """Logits ``[N]`` of ``model`` on every row of ``data`` (in order).

    The model runs in eval mode (restored afterwards) on ``device``, by default the
    device of its parameters; rows are moved there batch by batch.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, predict_logits
    >>> predict_logits(LogisticRegression(2, seed=0), make_biased_classification(5, seed=0)).shape
    torch.Size([5])
    """
    _check_model(model)
    _check_data("data", data, rows=False)
    check_positive_int("batch_size", batch_size)
    return batched_logits(model, data, device=None if device is None else resolve_device(device),
                          batch_size=batch_size)


def predict_scores(model: nn.Module, data: Any, *, batch_size: int = 1024,
                   device: str | torch.device | None = None) -> torch.Tensor:
    """Predicted probabilities ``P(y = 1 | x)`` for every row of ``data`` (in order).

    ``sigmoid`` of :func:`predict_logits` (same ``device`` rule).
    """
    return torch.sigmoid(predict_logits(model, data, batch_size=batch_size, device=device))


def sample_losses(model: nn.Module, data: Any, *, batch_size: int = 1024,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """Binary cross-entropy ``[N]`` of ``model`` on every row of ``data`` against its labels.

    On a training set with corrupted labels, a high loss marks a row whose label the
    model disagrees with. Same ``device`` rule as :func:`predict_logits`.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, sample_losses
    >>> data = make_biased_classification(10, seed=0)
    >>> model = LogisticRegression(2, seed=0)
    >>> _ = torch.nn.init.zeros_(model.linear.weight)
    >>> _ = torch.nn.init.zeros_(model.linear.bias)  # a constant 0 logit: loss log 2 everywhere
    >>> sample_losses(model, data)[:3]
    tensor([0.6931, 0.6931, 0.6931])
    """
    logits = predict_logits(model, data, batch_size=batch_size, device=device)
    y = data.y.to(device=logits.device, dtype=logits.dtype)
    return nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")


@torch.no_grad()
def evaluate(model: nn.Module, data: Any, *, threshold: float = 0.5, batch_size: int = 1024,
             device: str | torch.device | None = None) -> FairnessReport:
    """Fairness report of the model's thresholded predictions on ``data``.

    Logits come from :func:`predict_logits` (on ``device``, by default the model's) and
    are counted on that device with :class:`~fairlib.metrics.FairnessAccumulator`; groups
    are the dataset's active sensitive attribute.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, evaluate
    >>> data = make_biased_classification(200, seed=0)
    >>> evaluate(LogisticRegression(2, seed=0), data).by_group["n"].sum()
    np.int64(200)
    """
    check_fraction("threshold", threshold, expected="a probability threshold in [0, 1]")
    logits = predict_logits(model, data, batch_size=batch_size, device=device)
    acc = FairnessAccumulator(num_groups=data.n_groups, group_names=list(data.group_categories),
                              name=str(getattr(data, "group_name", None) or "group"), validate_args=False)
    acc.update(data.y.to(logits.device), (torch.sigmoid(logits) >= threshold).long(),
               data.group.to(logits.device))
    return acc.compute()


def _summary(report: FairnessReport, prefix: str) -> dict[str, float]:
    by = report.by_group
    present = by[by["n"] > 0]
    return {
        f"{prefix}accuracy": float(report.overall["accuracy"]),
        f"{prefix}worst_group_accuracy": float(present["accuracy"].min()),
        f"{prefix}demographic_parity_difference": report.measure("demographic_parity_difference"),
        f"{prefix}equal_opportunity_difference": report.measure("equal_opportunity_difference"),
        f"{prefix}equalized_odds_difference": report.measure("equalized_odds_difference"),
    }


def _optimizer(model: nn.Module, optimizer: str | Callable, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if callable(optimizer):
        return optimizer(model.parameters())
    if optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    if optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(
        f"Expected `optimizer` to be one of 'sgd', 'adam' or a callable, but got {optimizer!r}."
    )


_DATASET = "a FairDataset (rows of features, label, group and index)"


def _check_data(name: str, data: Any, *, rows: bool = True) -> None:
    """``data`` must be a dataset, not bare arrays; with ``rows``, one whose rows are
    ``(x, y, group, index)`` (what the training loop unpacks)."""
    arrays = (torch.Tensor, np.ndarray, pd.DataFrame, pd.Series, str, bytes, dict)
    if isinstance(data, arrays) or not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise TypeError(msg_expected(name, _DATASET, _type_name(data)))
    if not rows or _sliceable(data) or len(data) == 0:
        return
    row = data[0]
    if not isinstance(row, (tuple, list)):
        raise TypeError(msg_expected(name, _DATASET, f"rows of type {_type_name(row)}"))
    if len(row) != 4:
        raise TypeError(msg_expected(name, _DATASET, f"rows of {len(row)} parts"))


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(msg_expected("model", "a torch.nn.Module (one logit per row)",
                                     _type_name(model)))


def _check(model: Any, train: Any, meta: Any, test: Any, strategy: Any, epochs: int,
           batch_size: int, optimizer: Any, lr: float, weight_decay: float, seed: int,
           regularizer: Any = None) -> None:
    """Every argument of :func:`fit` but ``device``, before any work."""
    _check_model(model)
    _check_data("train", train)
    if len(train) == 0:
        raise ValueError("Expected `train` to be a non-empty dataset, but got an empty one.")
    for name, data in (("meta", meta), ("test", test)):
        if data is not None:
            _check_data(name, data)
    if strategy is not None and not isinstance(strategy, WeightingStrategy):
        got = _type_name(strategy)
        if isinstance(strategy, str):
            got = f"{strategy!r} (a name: pass an instance, e.g. fairlib.weighting.ERM())"
        raise TypeError(msg_expected("strategy", "a WeightingStrategy or None", got))
    if regularizer is not None and not isinstance(regularizer, Regularizer):
        raise TypeError(msg_expected(
            "regularizer", "a Regularizer (e.g. fairlib.regularizers.FERMI()) or None",
            _type_name(regularizer)))
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    if not callable(optimizer) and optimizer not in OPTIMIZERS:
        raise ValueError(
            f"Expected `optimizer` to be one of 'sgd', 'adam' or a callable, but got {optimizer!r}."
        )
    check_finite_positive("lr", lr)
    check_nonnegative("weight_decay", weight_decay)
    check_seed("seed", seed)


def _first_layer(model: nn.Module) -> str:
    """``" (its first layer, Linear, takes 3 features)"`` when the model says so."""
    for m in model.modules():
        for attr, what in (("in_features", "features"), ("in_channels", "channels")):
            size = getattr(m, attr, None)
            if isinstance(size, int):
                return f" (its first layer, {type(m).__name__}, takes {size} {what})"
    return ""


@torch.no_grad()
def _check_model_fits(model: nn.Module, data: Any, device: torch.device) -> None:
    """Run the model on the first rows of ``data``: it must take them and return one logit
    per row. Eval mode (no dropout draw, no BatchNorm update), mode restored."""
    n = min(2, len(data))
    x = data.X[:n] if _sliceable(data) else default_collate([data[i] for i in range(n)])[0]
    x = x.to(device)
    shape = f"shape {tuple(x.shape)} and dtype {x.dtype}"
    was_training = model.training
    model.eval()
    try:
        out = model(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(msg_expected(
            "model", "a module that takes the rows of `train`",
            f"an error on a batch of features of {shape}{_first_layer(model)}: {reason}")) from err
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n,):
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else _type_name(out)
        hint = " (squeeze the last dimension in forward)" if isinstance(out, torch.Tensor) and \
            tuple(out.shape) == (n, 1) else ""
        raise ValueError(msg_expected(
            "model", f"a module returning one logit per row (shape ({n},) for a batch of features "
            f"of {shape})", got + hint))


@contextmanager
def _seeded_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Torch's global generators (the CPU's and the training device's) seeded with ``seed``
    inside, the caller's states restored after: dropout draws are reproducible and the
    caller's random stream is left as it was."""
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


def fit(
    model: nn.Module,
    train: Any,
    *,
    strategy: WeightingStrategy | None = None,
    regularizer: Regularizer | None = None,
    meta: Any = None,
    test: Any = None,
    epochs: int = 10,
    batch_size: int = 128,
    optimizer: str | Callable = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
) -> History:
    """Train ``model`` on ``train`` with per-sample weights from ``strategy``.

    Each step minimises ``mean(w_i * loss_i)`` with the binary cross-entropy ``loss_i``
    and the weights ``w_i`` the strategy returns for the batch, plus the regulariser's
    penalty when one is given. After every epoch the
    model is evaluated on ``meta`` and ``test`` (if given) through
    :mod:`fairlib.metrics`, and the strategy's diagnostics are recorded.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of features to one logit per sample.
    train, meta, test : FairDataset
        Training data; the held-out set some strategies learn from (also evaluated);
        evaluation data.
    strategy : WeightingStrategy, optional
        Default :class:`~fairlib.weighting.ERM`.
    regularizer : Regularizer, optional
        A loss term added to the weighted loss each step (e.g.
        :class:`~fairlib.regularizers.FERMI`), with its own state updated after each
        optimiser step; it composes with any ``strategy``. The history then has
        ``train_penalty`` (the epoch's mean penalty) and the regulariser's diagnostics.
        Without one, training is exactly as before.
    epochs, batch_size : int
        Passes over ``train`` and rows per step.
    optimizer : {"sgd", "adam"} or callable
        ``"sgd"`` uses momentum 0.9; a callable gets ``model.parameters()``.
    lr, weight_decay : float
        Learning rate and L2 penalty.
    device : str or torch.device, default "auto"
        ``"auto"`` picks CUDA when available; a device this machine does not have is
        refused before any work.
    seed : int
        Seeds every random draw of training: the data order and the strategy's
        randomness (through a generator of its own), and dropout (torch's global
        generators are seeded with ``seed`` for the duration of ``fit`` and restored
        afterwards, so the caller's random stream is unchanged). With the same seed and
        a model initialised from the same seed, a rerun on the CPU gives identical
        parameters, also in another process.
    progress : bool
        Show a tqdm progress bar (notebook-aware; one line per update in logs).

    Returns
    -------
    History

    Raises
    ------
    TypeError
        Before any training, naming the argument: something other than a module for
        ``model``, a dataset for ``train``/``meta``/``test``, a strategy for
        ``strategy`` or a regulariser for ``regularizer``, a device that is not one.
    ValueError
        Before any training, naming the argument: a bad hyper-parameter (non-finite
        ``lr``, negative ``weight_decay``, non-integer ``seed``...) or strategy
        parameter (:meth:`~fairlib.weighting.WeightingStrategy.check_params`) or
        regulariser parameter (:meth:`~fairlib.regularizers.Regularizer.check_params`), a
        device this machine does not have, or a model that cannot take the rows of ``train``
        or does not return one logit per row (tried on the first rows; both shapes named).

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, fit
    >>> data = make_biased_classification(400, seed=0)
    >>> hist = fit(LogisticRegression(2, seed=0), data, test=data, epochs=2, progress=False)
    >>> list(hist.frame.index), hist.last("test_accuracy") > 0.5
    ([1, 2], True)
    """
    _check(model, train, meta, test, strategy, epochs, batch_size, optimizer, lr, weight_decay,
           seed, regularizer)
    device = resolve_device(device)
    strategy = strategy if strategy is not None else ERM()
    strategy.check_params()
    if regularizer is not None:
        regularizer.check_params()
    model.to(device)
    with _seeded_rng(seed, device):
        _check_model_fits(model, train, device)
        return _train(model, train, strategy, meta, test, epochs, batch_size, optimizer, lr,
                      weight_decay, device, seed, progress, regularizer)


def _train(model: nn.Module, train: Any, strategy: WeightingStrategy, meta: Any, test: Any,
           epochs: int, batch_size: int, optimizer: str | Callable, lr: float, weight_decay: float,
           device: torch.device, seed: int, progress: bool,
           regularizer: Regularizer | None = None) -> History:
    """The loop of :func:`fit`, on checked arguments."""
    gen = torch.Generator().manual_seed(seed)
    strategy.setup(train, meta=meta, model=model, device=device, generator=gen)
    if regularizer is not None:
        regularizer.setup(train, model=model, device=device)
    sampler = strategy.sampler()
    opt = _optimizer(model, optimizer, lr, weight_decay)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")
    history = History()
    bar = show_progress(range(1, epochs + 1), progress, desc=type(strategy).__name__, leave=False)
    for epoch in bar:
        model.train()
        total = torch.zeros((), device=device)
        penalties = torch.zeros((), device=device)
        seen = steps = 0
        for x, y, g, idx in _index_batches(train, batch_size, sampler, gen):
            batch = Batch(x.to(device), y.to(device), g.to(device), idx.to(device))
            logits = model(batch.x)
            losses = loss_fn(logits, batch.y.float())
            w = strategy.weights(batch, losses if strategy.needs_graph else losses.detach(), model)
            loss = (w.detach() * losses).mean()
            if regularizer is not None:
                penalty = regularizer.penalty(batch, logits)
                loss = loss + penalty
                penalties += penalty.detach()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            strategy.update(batch, losses.detach(), model)
            if regularizer is not None:
                regularizer.update(batch, logits.detach())
            total += losses.detach().sum()  # stays on the device: no sync per step
            seen += len(batch.y)
            steps += 1
        strategy.on_epoch_end(epoch, model)
        row: dict[str, Any] = {"epoch": epoch, "train_loss": float(total) / seen}
        if regularizer is not None:
            row["train_penalty"] = float(penalties) / steps
        for name, data in (("meta_", meta), ("test_", test)):
            if data is not None and len(data) > 0:
                row.update(_summary(evaluate(model, data, device=device), name))
        diagnostics = strategy.diagnostics()
        if regularizer is not None:
            diagnostics = {**diagnostics, **regularizer.diagnostics()}
        for key, value in diagnostics.items():
            row[key] = value.detach().cpu().tolist() if isinstance(value, torch.Tensor) else value
        history.rows.append(row)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{row['train_loss']:.3f}",
                            **({"test_acc": f"{row['test_accuracy']:.3f}"} if "test_accuracy" in row else {}))
    return history
