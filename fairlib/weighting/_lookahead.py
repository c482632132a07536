"""Machinery shared by L2RW and FORML: held-out batches and one-step lookaheads.

Two exact ways to get the gradient of a meta-objective with respect to per-sample
weights through one SGD lookahead step ``theta_hat = theta - alpha * grad sum_i wbar_i l_i``:

* double backward through ``torch.func.functional_call`` (any model);
* per-example gradients with ``torch.func.vmap``: with ``G_i = -alpha <grad l_i(theta),
  grad L_meta(theta_hat)>`` the meta-gradient is a closed form in ``G`` (methods.md
  §1.3, §2.2). It needs samples that do not interact inside the model (no train-mode
  BatchNorm, no dropout).

``method="last_layer"`` restricts the lookahead to the model's final linear layer and
takes the closed form of :mod:`fairlib.weighting._last_layer` (an approximation, exact
for logistic regression).

Buffers are cloned for every functional call, so running statistics of BatchNorm are
never changed by a lookahead.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .._validation import check_bool, check_choice, check_nonnegative, check_positive_int
from . import _last_layer

Params = dict[str, torch.Tensor]
METHODS = ("auto", "double_backward", "per_example")  # the exact meta-gradient paths
APPROXIMATE = ("last_layer",)  # fairlib/weighting/_last_layer.py


def check_meta_params(strategy: Any) -> None:
    """The hyper-parameters L2RW and FORML share: ``meta_batch_size``, ``meta_objective``,
    ``method``, ``stratified`` and ``gap_weight``."""
    from .meta_objectives import OBJECTIVES

    check_positive_int("meta_batch_size", strategy.meta_batch_size, allow_none=True)
    check_choice("meta_objective", strategy.meta_objective, OBJECTIVES)
    check_choice("method", strategy.method, METHODS + APPROXIMATE)
    check_bool("stratified", strategy.stratified)
    check_nonnegative("gap_weight", strategy.gap_weight)


def setup_meta(strategy: Any, train: Any, meta: Any, model: nn.Module | None,
               generator: torch.Generator | None) -> None:
    """Shared set-up of L2RW and FORML (after :func:`check_meta_params`): build the
    meta-objective and the held-out batch source, and pick the meta-gradient path."""
    from .meta_objectives import objective_fn

    size = check_positive_int("meta_batch_size", strategy.meta_batch_size, allow_none=True)
    strategy.objective_ = objective_fn(strategy.meta_objective, max(train.n_groups, meta.n_groups),
                                       strategy.gap_weight)
    seed = int(torch.randint(2**62, (1,), generator=generator)) if generator is not None else 0
    strategy.meta_batches_ = MetaBatches(meta, size, strategy.device_, seed, strategy.stratified)
    # "auto" takes double backward: reusing the loop's forward pass it measured 2.6-2.8x
    # ERM per epoch against 9-11x for vmap per-example gradients (benchmarks/README.md).
    fast = strategy.method == "per_example"
    if fast and model is not None and not supports_per_example(model):
        raise ValueError(
            "Expected a model without BatchNorm or dropout for `method='per_example'` (its samples "
            f"interact, so per-example gradients are not defined), but got {type(model).__name__}.")
    strategy.path_ = "per_example" if fast else "double_backward"
    strategy._last_layer = None
    if strategy.method == "last_layer":
        strategy.path_ = "last_layer"
        if model is not None:  # else: built on the first step, from the model it is given
            _last_layer.check_split(model, train.X[:4].to(strategy.device_))
            strategy._last_layer = _last_layer.LastLayer(model)
            strategy._last_layer.attach()
    strategy.needs_graph = strategy.path_ == "double_backward"  # reuse the loop's forward pass


def last_layer(strategy: Any, model: nn.Module) -> Any:
    """The :class:`~fairlib.weighting._last_layer.LastLayer` of ``model`` for ``strategy``,
    built once per model (a model not given to ``setup`` gets only the type checks of
    ``split_final`` here: the logits check needs data and reads from the host)."""
    layer = getattr(strategy, "_last_layer", None)
    if layer is None or layer.model is not model:
        layer = strategy._last_layer = _last_layer.LastLayer(model)
    return layer


def end_epoch(strategy: Any) -> None:
    """Remove the last-layer hooks from the model: a trained model is left without them
    (the next epoch's first step computes its features once and hooks them again)."""
    layer = getattr(strategy, "_last_layer", None)
    if layer is not None:
        layer.detach()


class MetaBatches:
    """Held-out batches drawn on the device, optionally stratified by (group, label) cell.

    ``batch_size=None`` draws as many rows as the training batch has. A batch size at
    least the size of the held-out set gives the whole set every time.
    """

    def __init__(self, meta, batch_size: int | None, device: torch.device, seed: int, stratified: bool) -> None:
        self.x = meta.X.to(device)
        self.y = meta.y.to(device)
        self.group = meta.group.to(device)
        self.n = len(meta)
        self.batch_size = batch_size
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed)
        self.device = device
        self.cells: list[int] = []  # rows per (group, label) cell, in order of cell code
        if stratified:
            cell = (meta.group * 2 + meta.y).cpu()  # set-up time: reading from the host is fine
            order = torch.argsort(cell, stable=True)
            self.cells = [n for n in torch.bincount(cell).tolist() if n]
            # the held-out rows sorted by cell: a cell's k-th row is row `start + k`, so a draw
            # is one gather; its labels and groups depend on the layout alone (cached per size)
            order = order.to(device)
            self.x_by_cell = self.x[order]
            self.y_by_cell, self.group_by_cell = self.y[order], self.group[order]
            self.starts = torch.tensor([0, *self.cells[:-1]], device=device).cumsum(0)
            self.layouts: dict[int, tuple[torch.Tensor, ...]] = {}
        # every batch of one size has each cell's rows in the same positions (cell by cell
        # when stratified, or the whole set): what depends on that layout alone is computed once
        self.fixed_cells = bool(self.cells) or (batch_size is not None and batch_size >= self.n)

    def _layout(self, per: int) -> tuple[torch.Tensor, ...]:
        """For ``per`` rows a cell: the index buffer, its per-cell views, each position's
        cell start, and the batch's labels and groups (the same in every draw)."""
        found = self.layouts.get(per)
        if found is None:
            buf = torch.empty(per * len(self.cells), dtype=torch.long, device=self.device)
            start = self.starts.repeat_interleave(per)
            found = self.layouts[per] = (buf, *buf.split(per), start, self.y_by_cell[start],
                                         self.group_by_cell[start])
        return found

    def draw(self, train_batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One held-out batch ``(x, y, group)``; its size defaults to ``train_batch``.

        Stratified: ``size // cells`` rows of each cell, uniformly with replacement (one
        ``randint`` per cell, in cell order). The returned labels and groups are shared
        between draws of one size: read them, do not write to them.
        """
        size = self.batch_size or train_batch
        if size >= self.n:
            return self.x, self.y, self.group
        if self.cells:
            buf, *views, start, y, group = self._layout(max(1, size // len(self.cells)))
            for n, view in zip(self.cells, views):
                torch.randint(n, view.shape, generator=self.gen, device=self.device, out=view)
            return self.x_by_cell.index_select(0, buf.add_(start)), y, group
        idx = torch.randint(self.n, (size,), generator=self.gen, device=self.device)
        return self.x[idx], self.y[idx], self.group[idx]


def split_state(model: nn.Module) -> tuple[Params, Params]:
    """The model's parameters (as they are) and clones of its buffers."""
    params = dict(model.named_parameters())
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    return params, buffers


class _Slots:
    """Where each parameter and buffer of a model lives: ``(module, store, local name,
    full name)``, full names as ``named_parameters``/``named_buffers`` give them (a tied
    tensor under its first name). Built once per model and checked by identity on each
    use, so a call does not walk the module tree as ``functional_call`` does each time."""

    def __init__(self, model: nn.Module) -> None:
        first: dict[int, str] = {}
        for full, t in [*model.named_parameters(), *model.named_buffers()]:
            first.setdefault(id(t), full)
        self.slots = [(mod, store, local, first[id(t)], t)
                      for _, mod in model.named_modules(remove_duplicate=False)
                      for store in (mod._parameters, mod._buffers)
                      for local, t in store.items() if t is not None and id(t) in first]
        self.names = frozenset(first.values())

    def valid(self) -> bool:
        return all(store.get(local) is t for _, store, local, _, t in self.slots)


_SLOTS: weakref.WeakKeyDictionary[nn.Module, _Slots] = weakref.WeakKeyDictionary()


def _logits(model: nn.Module, params: Params, buffers: Params, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` with ``params`` and clones of ``buffers`` in place of its own: what
    ``functional_call(model, (params, cloned buffers), (x,))`` computes, the same
    operations, without its per-call set-up."""
    slots = _SLOTS.get(model)
    if slots is None or not slots.valid():
        slots = _SLOTS[model] = _Slots(model)
    if params.keys() | buffers.keys() != slots.names:  # other names: the general path
        return functional_call(model, (params, {k: v.clone() for k, v in buffers.items()}), (x,))
    clones = {k: v.clone() for k, v in buffers.items()}
    try:
        for _, store, local, full, _ in slots.slots:
            store[local] = params[full] if full in params else clones[full]
        return model(x)
    finally:
        for _, store, local, _, t in slots.slots:
            store[local] = t


def _bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")


def lookahead_weight_grad(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    step_weights: Callable[[torch.Tensor], torch.Tensor],
    w: torch.Tensor,
    meta: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    objective: Callable[..., torch.Tensor],
    lr: float,
    losses: torch.Tensor | None = None,
) -> torch.Tensor:
    """d L_meta(theta_hat) / d w by double backward, with ``theta_hat = theta - lr * grad
    sum_i step_weights(w)_i * l_i(theta)``.

    ``losses``, if given, are the batch losses still attached to the model's parameters
    (the training loop's own forward pass): they are reused, and their graph is kept
    for the loop's backward pass.
    """
    params, buffers = split_state(model)
    w = w.detach().requires_grad_(True)
    reuse = losses is not None and losses.requires_grad
    if not reuse:
        losses = _bce(_logits(model, params, buffers, x), y)
    inner = (step_weights(w) * losses).sum()
    grads = torch.autograd.grad(inner, list(params.values()), create_graph=True, retain_graph=reuse)
    # a step of 1.0 (L2RW's) multiplies exactly: skipping that product changes no bit
    ahead = {k: p - g if lr == 1.0 else p - lr * g for (k, p), g in zip(params.items(), grads)}
    mx, my, mg = meta
    outer = objective(_logits(model, ahead, buffers, mx), my, mg)
    (dw,) = torch.autograd.grad(outer, w, retain_graph=reuse)
    return dw


def per_example_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Params, Params]:
    """Flattened per-example loss gradients ``[B, P]`` at the current parameters."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.clone() for k, v in model.named_buffers()}

    def one(p: Params, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return _bce(functional_call(model, (p, buffers), (xi.unsqueeze(0),)), yi.unsqueeze(0)).sum()

    g = vmap(grad(one), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([g[k].flatten(1) for k in params], 1), params, buffers


def meta_param_grad(
    model: nn.Module, params: Params, buffers: Params,
    meta: tuple[torch.Tensor, torch.Tensor, torch.Tensor], objective: Callable[..., torch.Tensor],
) -> torch.Tensor:
    """Flattened gradient of the meta-objective at ``params``."""
    mx, my, mg = meta

    def outer(p: Params) -> torch.Tensor:
        return objective(functional_call(model, (p, {k: v.clone() for k, v in buffers.items()}), (mx,)), my, mg)

    g = grad(outer)(params)
    return torch.cat([g[k].flatten() for k in params])


def unflatten(flat: torch.Tensor, like: Params) -> Params:
    """Split a flat vector back into tensors shaped like ``like``."""
    out, start = {}, 0
    for k, v in like.items():
        out[k] = flat[start : start + v.numel()].view_as(v)
        start += v.numel()
    return out


def supports_per_example(model: nn.Module) -> bool:
    """Per-example gradients are exact only when samples do not interact inside the model."""
    coupled = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.modules.dropout._DropoutNd)
    return not any(isinstance(m, coupled) for m in model.modules())
