"""FEBS (FairSeg, arXiv 2311.02189) and FIS (FairVision, arXiv 2310.02492), for classification.

Both come from segmentation / imaging code and are adapted here to per-sample binary
cross-entropy losses; every adaptation is a fairlib choice, listed per class.

**FEBS, Fair Error-Bound Scaling.** With ``L_a`` the mean batch loss of group ``a`` (groups
present in the batch only):

* ``direction="code"`` (``Harvard-Ophthalmology-AI-Lab/FairSeg``, ``FairDiceLoss``):
  ``w_a = tanh((min_b L_b / L_a)^gamma)``: the group with the *smallest* loss gets the
  largest weight ``tanh(1)``;
* ``direction="paper"`` (default): the paper says groups with larger loss need larger
  weights (FairSeg issue #13 notes the code does the opposite); fairlib uses
  ``w_a = tanh((L_a / max_b L_b)^gamma)``, the form left commented out in the same code,
  so the group with the *largest* loss gets ``tanh(1)``.

Adaptations: the weights multiply each sample's loss (the reference multiplies predicted
probabilities inside a Dice loss); absent groups are masked before the min / max (in the
reference an absent group's loss stays 0, so ``min = 0``, every present weight becomes
``tanh(0) = 0`` and the absent entry ``0 / 0 = NaN``); group losses are clamped at 1e-12 so
a perfectly fitted group cannot divide by zero; with ``normalize=True`` the batch weights
are rescaled to mean 1 (the raw weights lie in ``(0, tanh 1]`` and would shrink the
learning rate); the weights stay on the device (no ``.cuda()``, no numpy round trip).

**FIS, Fair Identity Scaling** (the FairVision form, ``Fair_Loss_Scaler``). Per sample:

    w_i = B ((1 - c) softmax_i(l_i / T) + c softmax_i(d_{a_i} / T)),

where ``d_a`` measures how far group ``a``'s loss distribution lies from the pooled one.
Adaptations: ``d_a = W_2^2 / 2`` between the empirical distributions of group ``a``'s batch
losses and of all batch losses, computed exactly in one dimension from quantile
functions; this is the unregularised limit of the reference's Sinkhorn divergence
(geomloss ``SamplesLoss(p=2)``, blur 0.1), and it uses the batch's own losses instead of
extra per-group loaders (no extra forward passes). The weights are detached (the
reference lets gradients flow through the softmax) and scaled to mean 1 (the reference
multiplies by ``r = 1``, so its weights sum to 1). Groups absent from the batch never
enter a softmax. Note that ``d_a`` is unsigned: a group whose losses are *lower* than the
pool's is pushed up as much as one whose losses are higher; in practice the smaller
group is usually farther from the pool.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from .._validation import MSG_TYPE
from ._common import (
    GROUP_MODES,
    ESSTracker,
    GroupsMode,
    cell_codes,
    check_choice,
    check_number,
    check_train,
    group_means,
    n_cells,
)
from .base import Batch, WeightingStrategy

__all__ = ["FEBS", "FIS", "wasserstein2_to_pooled"]

_MIN_LOSS = 1e-12


class FEBS(ESSTracker, WeightingStrategy):
    """Fair Error-Bound Scaling: group weights ``tanh(ratio^gamma)`` from the batch group losses.

    See the module docstring for both directions and every adaptation.

    Parameters
    ----------
    gamma : float, default 1.0
        Exponent (the training scripts' value; 0 makes every weight ``tanh(1)``).
    direction : {"paper", "code"}, default "paper"
        ``"paper"``: larger group loss, larger weight. ``"code"``: the released code's
        ``min / L_a``, smaller group loss, larger weight.
    groups : {"group", "group_label"}, default "group"
        The active attribute's groups (as in the reference) or (group, label) cells.
    normalize : bool, default True
        Rescale each batch's weights to mean 1.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.weighting import FEBS, Batch
    >>> data = make_biased_classification(100, seed=0)
    >>> batch = Batch(x=None, y=torch.tensor([0, 0, 1]), group=torch.tensor([0, 0, 1]),
    ...               index=torch.arange(3))
    >>> losses = torch.tensor([0.2, 0.4, 0.6])  # group losses 0.3 and 0.6
    >>> FEBS(normalize=False).setup(data).weights(batch, losses, None)
    tensor([0.4621, 0.4621, 0.7616])
    >>> FEBS(direction="code", normalize=False).setup(data).weights(batch, losses, None)
    tensor([0.7616, 0.7616, 0.4621])
    """

    def __init__(self, gamma: float = 1.0, *, direction: Literal["paper", "code"] = "paper",
                 groups: GroupsMode = "group", normalize: bool = True) -> None:
        self.gamma = gamma
        self.direction = direction
        self.groups = groups
        self.normalize = normalize

    def check_params(self) -> FEBS:
        """Validate ``gamma``, ``direction``, ``groups`` and ``normalize``."""
        check_number("gamma", self.gamma, low=0.0, expected="a non-negative exponent")
        check_choice("direction", self.direction, ("paper", "code"))
        check_choice("groups", self.groups, GROUP_MODES)
        if not isinstance(self.normalize, bool):
            raise TypeError(MSG_TYPE.format(name="normalize", expected="a bool",
                                            got=repr(self.normalize)))
        return self

    def setup(self, train: Any, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto",
              generator: torch.Generator | None = None) -> FEBS:
        """Validate the arguments."""
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        check_train(train, "FEBS")
        self._n = n_cells(train.n_groups, self.groups)
        self._reset_ess(self.device_)
        self.group_weights_ = torch.zeros(self._n, device=self.device_)
        return self

    def group_weights(self, losses: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """``w_a`` for every group (0 for groups absent from the batch); device ops only."""
        means, counts = group_means(losses.detach(), codes, self._n)
        present = counts > 0
        L = means.clamp_min(_MIN_LOSS)
        if self.direction == "code":
            ratio = torch.where(present, L, torch.full_like(L, torch.inf)).amin() / L
        else:
            ratio = L / torch.where(present, L, torch.full_like(L, -torch.inf)).amax()
        return torch.where(present, torch.tanh(ratio ** float(self.gamma)), torch.zeros_like(L))

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module | None) -> torch.Tensor:
        """Each sample gets its group's weight (rescaled to mean 1 with ``normalize``)."""
        codes = cell_codes(batch.y, batch.group, self.groups)
        w = self.group_weights(losses, codes)[codes]
        return w / w.mean() if self.normalize else w

    def update(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> None:
        """Track the ESS and the last batch's group weights."""
        codes = cell_codes(batch.y, batch.group, self.groups)
        self.group_weights_ = self.group_weights(losses, codes)
        self._track_ess(self.weights(batch, losses, model))

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Close the epoch's ESS average."""
        self._close_ess_epoch()

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """``ess_fraction`` (epoch mean) and the last batch's ``group_weights``."""
        return {"ess_fraction": self._ess_epoch, "group_weights": self.group_weights_}


def wasserstein2_to_pooled(values: torch.Tensor, codes: torch.Tensor,
                           n_groups: int) -> torch.Tensor:
    """Squared 2-Wasserstein distance between each group's values and all values (1-d, exact).

    ``W_2^2 = int_0^1 (Q_a(u) - Q(u))^2 du`` with ``Q_a``, ``Q`` the empirical quantile
    functions, integrated exactly over the merged breakpoints ``k / n_a`` and ``j / B``.
    Groups without values get 0. Device ops only, ``O(G B log B)``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.weighting import wasserstein2_to_pooled
    >>> v = torch.tensor([0.0, 0.0, 1.0, 1.0])
    >>> wasserstein2_to_pooled(v, torch.tensor([0, 0, 1, 1]), 3)
    tensor([0.5000, 0.5000, 0.0000])
    """
    B = values.numel()
    s, order = torch.sort(values, stable=True)
    g = codes[order]
    # not F.one_hot: it reads the codes back to the host to check them
    onehot = (g[:, None] == torch.arange(n_groups, device=g.device)).to(torch.int64)
    n_g = onehot.sum(0)
    rank = onehot.cumsum(0).gather(1, g[:, None]).squeeze(1) - 1
    table = torch.zeros(n_groups, B, dtype=values.dtype, device=values.device)
    table.index_put_((g, rank), s)
    steps = torch.arange(1, B + 1, device=values.device, dtype=values.dtype)
    pooled = (steps / B).expand(n_groups, B)
    own = steps[None, :] / n_g[:, None].clamp_min(1).to(values.dtype)
    own = torch.where(steps[None, :] <= n_g[:, None], own, torch.ones_like(own))
    t = torch.cat([torch.zeros(n_groups, 1, dtype=values.dtype, device=values.device),
                   torch.cat([pooled, own], 1).sort(dim=1).values], 1)
    width = t[:, 1:] - t[:, :-1]
    mid = (t[:, 1:] + t[:, :-1]) / 2
    q_pool = s[(mid * B).floor().long().clamp(0, B - 1)]
    last = (n_g - 1).clamp_min(0)[:, None]
    q_own = table.gather(1, torch.minimum((mid * n_g[:, None]).floor().long(), last))
    w2 = (width * (q_own - q_pool) ** 2).sum(1)
    return torch.where(n_g > 0, w2, torch.zeros_like(w2))


class FIS(ESSTracker, WeightingStrategy):
    """Fair Identity Scaling: a mix of per-sample and per-group softmax weights.

    ``w_i = B ((1 - c) softmax(l / T)_i + c softmax(d_{a_i} / T)_i)`` with
    ``d_a = W_2^2 / 2`` between group ``a``'s batch losses and the pooled batch losses
    (see the module docstring for the adaptations).

    Parameters
    ----------
    c : float, default 0.5
        Share of the group term, in [0, 1] (``--fair_scaling_coef``).
    T : float, default 1.0
        Temperature > 0 of both softmaxes (``--fair_scaling_temperature``).
    groups : {"group", "group_label"}, default "group"
        The active attribute's groups (as in the reference) or (group, label) cells.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.weighting import FIS, Batch
    >>> fis = FIS(c=0.0).setup(make_biased_classification(100, seed=0))
    >>> batch = Batch(x=None, y=torch.tensor([0, 1]), group=torch.tensor([0, 1]),
    ...               index=torch.arange(2))
    >>> fis.weights(batch, torch.log(torch.tensor([1.0, 3.0])), None)
    tensor([0.5000, 1.5000])
    """

    def __init__(self, c: float = 0.5, *, T: float = 1.0, groups: GroupsMode = "group") -> None:
        self.c = c
        self.T = T
        self.groups = groups

    def check_params(self) -> FIS:
        """Validate ``c``, ``T`` and ``groups``."""
        check_number("c", self.c, low=0.0, high=1.0, expected="a share in [0, 1]")
        check_number("T", self.T, low=0.0, low_open=True, expected="a positive temperature")
        check_choice("groups", self.groups, GROUP_MODES)
        return self

    def setup(self, train: Any, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto", generator: torch.Generator | None = None) -> FIS:
        """Validate the arguments."""
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        check_train(train, "FIS")
        self._n = n_cells(train.n_groups, self.groups)
        self._reset_ess(self.device_)
        self.group_distances_ = torch.zeros(self._n, device=self.device_)
        return self

    def group_distances(self, losses: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """``d_a = W_2^2 / 2`` of each group's batch losses to the pooled ones (0 if absent)."""
        return wasserstein2_to_pooled(losses.detach(), codes, self._n) / 2

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module | None) -> torch.Tensor:
        """Mean-1 mix of the individual and the group softmax weights."""
        l = losses.detach()
        codes = cell_codes(batch.y, batch.group, self.groups)
        T, c = float(self.T), float(self.c)
        w_ind = torch.softmax(l / T, dim=0)
        w_grp = torch.softmax(self.group_distances(l, codes)[codes] / T, dim=0)
        return l.numel() * ((1 - c) * w_ind + c * w_grp)

    def update(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> None:
        """Track the ESS and the last batch's group distances."""
        codes = cell_codes(batch.y, batch.group, self.groups)
        self.group_distances_ = self.group_distances(losses, codes)
        self._track_ess(self.weights(batch, losses, model))

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Close the epoch's ESS average."""
        self._close_ess_epoch()

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """``ess_fraction`` (epoch mean) and the last batch's ``group_distances``."""
        return {"ess_fraction": self._ess_epoch, "group_distances": self.group_distances_}
