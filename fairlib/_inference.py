"""The one batched-inference loop (a model's logits on every row of a dataset) and
per-sample loss gradients.

``batched_logits`` is used by :func:`fairlib.train.predict_logits` (and through it
``predict_scores`` and ``sample_losses``) and by strategies that score the training set
(JTT, FairBatch); ``per_sample_grads`` is public as :func:`fairlib.train.per_sample_grads`.
They live below :mod:`fairlib.weighting` and :mod:`fairlib.train` so both can use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from ._validation import MSG_TYPE, check_model_device, check_positive_int


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
    the device of its parameters; the rows are moved there batch by batch. A ``device``
    other than the one holding the model's parameters is refused (``ValueError`` naming
    ``device``), as is a device this machine does not have.
    """
    on = model_device(model)
    device = on if device is None or not any(True for _ in model.parameters()) \
        else check_model_device(on, device)
    was_training = model.training
    model.eval()
    try:
        out = [model(x.to(device)).reshape(-1) for x, _ in row_batches(data, batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, device=device)


def per_sample_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                     chunk_size: int = 4096) -> torch.Tensor:
    """Gradient of every sample's binary cross-entropy w.r.t. the model's parameters.

    The loss is the one :func:`fairlib.train.fit` minimises per sample,
    ``BCEWithLogits(model(x_i), y_i)``. The model is evaluated in eval mode (no dropout)
    and restored to its previous mode; its parameters are not changed. The gradients are
    computed with ``torch.func.vmap`` on the device of the inputs, without host reads.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of features to one logit per sample.
    x : torch.Tensor
        Features ``[N, ...]`` on the model's device.
    y : torch.Tensor
        Labels in {0, 1} ``[N]`` on the model's device.
    chunk_size : int, default 4096
        Rows per vectorised call (bounds the memory).

    Returns
    -------
    torch.Tensor
        ``[N, P]``: one row per sample, the parameters flattened in ``named_parameters``
        order, in the parameters' dtype.

    Examples
    --------
    >>> import torch
    >>> from fairlib.train import LogisticRegression, per_sample_grads
    >>> model = LogisticRegression(2, seed=0)
    >>> with torch.no_grad():
    ...     _ = model.linear.weight.zero_(), model.linear.bias.zero_()
    >>> per_sample_grads(model, torch.tensor([[1.0, 2.0], [0.0, 1.0]]), torch.tensor([1, 0]))
    tensor([[-0.5000, -1.0000, -0.5000],
            [ 0.0000,  0.5000,  0.5000]])
    """
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or len(x) != len(y):
        raise ValueError(MSG_TYPE.format(
            name="x` and `y", expected="tensors with the same number of rows",
            got=f"{getattr(x, 'shape', type(x).__name__)} and "
                f"{getattr(y, 'shape', type(y).__name__)}"))
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss_one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logit = functional_call(model, (p, buffers), (xi.unsqueeze(0),)).reshape(())
        return nn.functional.binary_cross_entropy_with_logits(logit, yi.to(logit.dtype))

    per_row = vmap(grad(loss_one), in_dims=(None, 0, 0))
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, len(x), chunk_size):
            g = per_row(params, x[start:start + chunk_size], y[start:start + chunk_size])
            out.append(torch.cat([g[k].reshape(len(g[k]), -1) for k in params], dim=1))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, sum(p.numel() for p in params.values()))
