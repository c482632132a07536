"""The one batched-inference loop: a model's logits on every row of a dataset.

Used by :func:`fairlib.train.predict_logits` (and through it ``predict_scores`` and
``sample_losses``) and by strategies that score the training set (JTT, FairBatch). It
lives below :mod:`fairlib.weighting` and :mod:`fairlib.train` so both can use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without any)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def row_batches(data: Any, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(X, y)`` of consecutive rows: slices for tensor datasets, a loader otherwise."""
    if isinstance(getattr(data, "X", None), torch.Tensor) and isinstance(getattr(data, "y", None), torch.Tensor):
        for start in range(0, len(data), batch_size):
            yield data.X[start:start + batch_size], data.y[start:start + batch_size]
        return
    from torch.utils.data import DataLoader

    for x, y, *_ in DataLoader(data, batch_size=batch_size, shuffle=False):
        yield x, y


@torch.no_grad()
def batched_logits(model: nn.Module, data: Any, *, device: torch.device | None = None,
                   batch_size: int = 1024) -> torch.Tensor:
    """Logits ``[N]`` of ``model`` on every row of ``data`` in order, on ``device``.

    The model runs in eval mode (its mode is restored afterwards) on ``device``, default
    the device of its parameters; the rows are moved there batch by batch.
    """
    device = model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    try:
        out = [model(x.to(device)).reshape(-1) for x, _ in row_batches(data, batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, device=device)
