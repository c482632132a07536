"""Last-layer meta-gradients of L2RW and FORML (``method="last_layer"``), in closed form.

The lookahead moves only the model's final linear layer ``z = W h + b`` (one logit).
With ``e_i = d l_i / d z_i = sigmoid(z_i) - y_i`` the per-example gradient of that layer
is the outer product ``e_i [h_i, 1]``, and the gradient of a meta-objective of the
held-out logits is ``sum_j r_j [h_j, 1]`` with ``r_j = d L_meta / d z_j``. So

* L2RW: ``<grad l_i, grad L_meta> = e_i (h_i . (H_meta^T r) + sum_j r_j)``;
* FORML: the lookahead only shifts the held-out logits,
  ``z_hat = z_meta - alpha (H_meta u + c)`` with ``u = sum_i wbar_i e_i h_i`` and
  ``c = sum_i wbar_i e_i``, and ``G_i = -alpha e_i (h_i . (H_meta^T r_hat) + sum_j r_hat_j)``.

Cost: one forward of the feature extractor on the held-out batch plus O((B + M) h)
arithmetic; no second backward pass. The training batch's features come from the
loop's own forward pass (a forward hook on the final layer), so they are not computed
twice. For a model whose final layer is the whole model (logistic regression) this is
the exact meta-gradient. Reconstruction (not published by the authors of L2RW or
FORML): the restriction to the last layer is the usual cheap approximation.

The model tells where its final layer is through ``split_final()`` (see
:mod:`fairlib.train.models`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ._common import scalar

NEED = ("a model with a `split_final()` method returning (feature extractor, final nn.Linear "
        "with one output) for `method='last_layer'`")


def split_model(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """``model.split_final()``, checked: a ``ValueError`` naming ``method`` otherwise."""
    split = getattr(model, "split_final", None)
    if not callable(split):
        raise ValueError(f"Expected {NEED}, but got {type(model).__name__} without one (use "
                         "method='double_backward', or add `split_final` to the model).")
    parts = split()
    if (not isinstance(parts, tuple) or len(parts) != 2 or not isinstance(parts[0], nn.Module)
            or not isinstance(parts[1], nn.Linear) or parts[1].out_features != 1):
        raise ValueError(f"Expected {NEED}, but got {type(model).__name__}.split_final() "
                         f"returning {parts!r}.")
    return parts


def check_split(model: nn.Module, x: torch.Tensor) -> None:
    """Set-up check (host reads allowed): ``head(features(x))`` gives the model's logits.

    Runs in eval mode without gradients (no BatchNorm statistics change, no dropout);
    each submodule's mode is restored afterwards.
    """
    features, head = split_model(model)
    param = next(model.parameters(), None)
    if param is not None and x.is_floating_point():
        x = x.to(param.dtype)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            want = model(x)
            h = features(x)
            got = head(h).squeeze(-1) if h.dim() == 2 else None
    finally:
        for m, mode in modes:
            m.training = mode
    if (got is None or got.shape != want.shape
            or not torch.allclose(got, want, rtol=1e-4, atol=1e-5)):
        raise ValueError(f"Expected {NEED} such that model(x) == head(features(x)).squeeze(-1), "
                         "but "
                         f"{type(model).__name__}.split_final() gives other logits "
                         f"(features of shape {tuple(h.shape)}).")


class _Capture:
    """Forward hooks keeping the model's input and its final layer's input and output from
    the last training forward (grad enabled, train mode), until :meth:`take`."""

    def __init__(self) -> None:
        self.handles: list[Any] = []
        self.clear()

    def clear(self) -> None:
        self.x: torch.Tensor | None = None
        self.h: torch.Tensor | None = None
        self.z: torch.Tensor | None = None

    def on_model(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if module.training and torch.is_grad_enabled() and args:
            self.x, self.h, self.z = args[0], None, None

    def on_head(self, module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
        if self.x is not None and self.h is None and args:
            self.h, self.z = args[0].detach(), out.detach()

    def take(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The captured ``(h, z)`` if they come from a forward on this very ``x``; then forget."""
        found = (self.h, self.z) if self.x is x and self.h is not None else None
        self.clear()
        return found  # type: ignore[return-value]


# One capture per model, shared by the strategies set up on it; the model owns its hooks.
_CAPTURES: weakref.WeakKeyDictionary[nn.Module, _Capture] = weakref.WeakKeyDictionary()


class LastLayer:
    """The final layer of one model and the forwards the closed forms need."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.features, self.head = split_model(model)
        # forwards the loop does not see run on copies of the buffers (BatchNorm statistics):
        # the originals are left untouched, even their version counters (autograd saved them)
        self.buffers = [(m, name) for m in self.features.modules()
                        for name, b in m._buffers.items() if b is not None]
        self.shares: dict[Any, tuple[torch.Tensor, torch.Tensor]] = {}  # see logit_grad

    # -- hooks ------------------------------------------------------------------------
    def attach(self) -> None:
        """Capture the training forward's final-layer input (idempotent)."""
        cap = _CAPTURES.get(self.model)
        if cap is None:
            cap = _CAPTURES[self.model] = _Capture()
        if not cap.handles:
            cap.handles = [self.model.register_forward_pre_hook(cap.on_model),
                           self.head.register_forward_hook(cap.on_head)]

    def detach(self) -> None:
        """Remove the hooks (at the end of each epoch: a trained model keeps none)."""
        cap = _CAPTURES.pop(self.model, None)
        if cap is not None:
            for handle in cap.handles:
                handle.remove()
            cap.handles = []
            cap.clear()

    # -- forwards -----------------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h, z)`` without gradients, leaving buffers (BatchNorm statistics) unchanged."""
        saved = [m._buffers[name] for m, name in self.buffers]
        try:
            for m, name in self.buffers:
                m._buffers[name] = m._buffers[name].clone()
            # inference mode: no autograd bookkeeping at all (version counters, views), a
            # few microseconds per layer; its outputs are only read by the closed forms
            with torch.inference_mode():
                h = self.features(x)
                z = _affine(self.head, h)
        finally:
            for (m, name), b in zip(self.buffers, saved):
                m._buffers[name] = b
        return h, z

    def train_batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h, z)`` of the training batch: from the loop's forward if it was captured."""
        cap = _CAPTURES.get(self.model)
        found = cap.take(x) if cap is not None else None
        self.attach()
        if found is None:
            return self._forward(x)
        h, z = found
        return h, z.squeeze(-1)

    def meta_batch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h, z)`` of a held-out batch at the current parameters.

        Images on the CPU go through in channels-last layout: PyTorch's CPU convolutions
        and pooling are about twice as fast in it for the reference CNN, and the features
        agree with the default layout's to float round-off.
        """
        if x.dim() == 4 and x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return self._forward(x)


def logit_grad(name: str, objective: Callable[..., torch.Tensor], z: torch.Tensor, y: torch.Tensor,
               group: torch.Tensor,
               shares: dict[Any, tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
    """``d objective / d logits`` of the held-out batch: in closed form for ``"mean"`` and
    ``"group_balanced"`` (fewer small operations), else a backward through the objective.

    ``shares``: a cache for held-out batches whose cells sit in the same rows every time
    (:attr:`MetaBatches.fixed_cells`): each row's share (and the labels as floats) is
    computed once per objective, batch length and dtype, with the same operations, so the
    result is the same to the bit.
    """
    if name in ("mean", "group_balanced"):
        key = (name, len(z), z.dtype, z.device)
        found = shares.get(key) if shares is not None else None
        if found is None:
            if name == "mean":
                share = scalar(len(z), z)
            else:
                # d/dz_j of mean over present cells of the cell mean: e_j / (n_cell(j) * n_cells)
                cells = group * 2 + y
                # 1 / size of row j's cell
                inv = (cells[:, None] == cells[None, :]).sum(1).to(z.dtype).reciprocal()
                share = inv / inv.sum()  # sum_j inv_j = number of cells
            # labels as floats: the subtraction below then needs no cast
            found = (share, y.to(z.dtype))
            if shares is not None:
                shares[key] = found
        share, yf = found
        e = torch.sigmoid(z) - yf
        return e / share if name == "mean" else e * share
    with torch.enable_grad():
        z = z.clone().requires_grad_(True)  # a clone: z may come from inference mode
        (r,) = torch.autograd.grad(objective(z, y, group), z)
    return r


def _affine(head: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    """The head's logits ``h @ w (+ b)`` as one matrix-vector product (cheaper than the
    module's matrix-matrix product for one output, and no hooks)."""
    if head.bias is None:
        return torch.mv(h, head.weight[0])
    return torch.addmv(head.bias, h, head.weight[0])


def _outer(head: nn.Linear, h: torch.Tensor, hm: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``h_i . (hm^T r) (+ sum r)``: each row's inner product with the held-out gradient of
    the final layer (whose bias, if any, has the feature 1)."""
    g = torch.mv(hm.t(), r)
    if head.bias is None:
        return torch.mv(h, g)
    return torch.addmv(r.sum(), h, g)


def l2rw_scores(layer: LastLayer, x: torch.Tensor, y: torch.Tensor,
                meta: tuple[torch.Tensor, torch.Tensor, torch.Tensor], name: str,
                objective: Callable[..., torch.Tensor], fixed_cells: bool = False) -> torch.Tensor:
    """``<grad l_i, grad L_meta>`` over the final layer (``-dL/deps_i`` for a unit lookahead)."""
    h, z = layer.train_batch(x)
    mx, my, mg = meta
    hm, zm = layer.meta_batch(mx)
    r = logit_grad(name, objective, zm, my, mg, layer.shares if fixed_cells else None)
    return (torch.sigmoid(z) - y) * _outer(layer.head, h, hm, r)


def forml_big_g(layer: LastLayer, x: torch.Tensor, y: torch.Tensor, wbar: torch.Tensor,
                meta: tuple[torch.Tensor, torch.Tensor, torch.Tensor], name: str,
                objective: Callable[..., torch.Tensor], lr: float,
                fixed_cells: bool = False) -> torch.Tensor:
    """``G_i = -lr <grad l_i(theta), grad L_meta(theta_hat)>`` over the final layer, with
    ``theta_hat`` one SGD step of size ``lr`` on ``sum_i wbar_i l_i`` (methods.md §1.3)."""
    h, z = layer.train_batch(x)
    mx, my, mg = meta
    hm, zm = layer.meta_batch(mx)
    e = torch.sigmoid(z) - y
    we = wbar.detach() * e
    # the lookahead moves the held-out logits by -lr * (hm u + c),
    # u = sum_i we_i h_i, c = sum_i we_i
    ahead = zm - scalar(lr, zm) * _outer(layer.head, hm, h, we)
    r = logit_grad(name, objective, ahead, my, mg, layer.shares if fixed_cells else None)
    return (scalar(-lr, e) * e) * _outer(layer.head, h, hm, r)
