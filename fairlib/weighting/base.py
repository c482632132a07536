"""The weighting protocol the training loop calls each step, and uniform ERM.

A strategy follows scikit-learn's contract: the constructor only stores its
arguments; :meth:`WeightingStrategy.setup` validates them and creates the learned
state (attributes ending in ``_``) on the model's device. Per step, the loop asks for
per-sample weights, then lets the strategy update its state; per epoch it calls
:meth:`WeightingStrategy.on_epoch_end`. Nothing in ``weights``/``update`` may read a
value back to the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class Batch:
    """One mini-batch as the training loop sees it (all tensors on the device).

    Attributes
    ----------
    x : torch.Tensor
        Features ``[B, ...]``.
    y : torch.Tensor
        Labels in {0, 1}, int64 ``[B]``.
    group : torch.Tensor
        Code of the active sensitive attribute, int64 ``[B]``.
    index : torch.Tensor
        Position of each sample in the training set, int64 ``[B]`` (for per-sample state).
    """

    x: torch.Tensor
    y: torch.Tensor
    group: torch.Tensor
    index: torch.Tensor


class WeightingStrategy:
    """Base class: uniform weights, no sampler, no state (that is, ERM).

    Subclasses override what they need:

    * ``setup(train, meta, model, device, generator)``: validate arguments, build state;
    * ``sampler()``: a ``torch.utils.data.Sampler`` for the training loader, or None;
    * ``weights(batch, losses, model)``: per-sample weights ``[B]``, detached, >= 0;
    * ``update(batch, losses, model)``: state update after the optimiser step;
    * ``on_epoch_end(epoch, model)``: per-epoch update (e.g. FairBatch's lambdas);
    * ``diagnostics()``: small tensors worth logging (e.g. group weights);
    * ``state_dict()`` / ``load_state_dict()``: every learned ``_`` tensor.

    The loss the loop minimises is ``mean(weights * losses)``.
    """

    requires_meta: bool = False
    #: When True, ``weights`` receives the batch losses still attached to the model's
    #: graph, so a lookahead can reuse the loop's forward pass instead of running its
    #: own; such a strategy must retain that graph and keep no reference to the losses.
    needs_graph: bool = False

    def setup(
        self,
        train: Any,
        *,
        meta: Any = None,
        model: nn.Module | None = None,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> WeightingStrategy:
        """Prepare the state for training on ``train``; returns ``self``."""
        if self.requires_meta and (meta is None or len(meta) == 0):
            raise ValueError(
                f"Expected `meta` to be a non-empty held-out dataset for {type(self).__name__}, "
                f"but got {'None' if meta is None else 'an empty dataset'}."
            )
        self.device_ = torch.device(device)
        return self

    def sampler(self) -> torch.utils.data.Sampler | None:
        """The sampler of the training loader (None: shuffle uniformly)."""
        return None

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """Per-sample weights for this batch; uniform here."""
        return torch.ones_like(losses)

    def update(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> None:
        """Update the state after the optimiser step; nothing here."""

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Per-epoch hook; nothing here."""

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """Values worth recording in the training history (tensors, read once per epoch)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Every learned attribute (name ending in ``_``)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore learned attributes saved by :meth:`state_dict`."""
        for key, value in state.items():
            if not key.endswith("_"):
                raise ValueError(f"Expected learned attributes ending in '_', but got {key!r}.")
            setattr(self, key, value)

    def __repr__(self) -> str:
        params = {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


class ERM(WeightingStrategy):
    """Empirical risk minimisation: every sample weighs 1.

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting import ERM
    >>> ERM().weights(None, torch.tensor([0.3, 1.2]), None)
    tensor([1., 1.])
    """
