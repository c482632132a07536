"""FairBatch (Roh, Lee, Whang, Suh, ICLR 2021, arXiv 2012.01696; code ``yuji-roh/fairbatch``).

A sampler that adapts the share of each (label y, group z) cell in the training batches.
With labels ``y in {0, 1}`` and a binary attribute ``z in {0, 1}``:

* ``lambda_1`` is the share of ``z = 1`` among the ``y = 1`` draws, ``lambda_2`` among the
  ``y = 0`` draws; both start at the training proportions.
* Before every epoch the model's per-cell mean loss ``L_yz`` on the **whole training set**
  is computed and one lambda moves by ``alpha`` (then clipped to [0, 1]):

  - ``"eo"`` (equal opportunity): ``lambda_1 += alpha`` if ``L_11 > L_10`` else ``-= alpha``;
  - ``"eqodds"``: the same rule on ``lambda_1`` when ``|L_11 - L_10| > |L_01 - L_00|``,
    otherwise on ``lambda_2`` (``+= alpha`` if ``L_01 > L_00``);
  - ``"dp"``: losses against the all-ones target, summed per cell and divided by the
    group size ``n_z``; as ``"eqodds"`` but the ``lambda_2`` step has the opposite sign.

Differences from the reference code, all documented choices of fairlib:

* losses are the binary cross-entropy of ``sigmoid(logit)``, the loss ``fit`` trains with
  (the reference uses ``(tanh(logit) + 1) / 2 = sigmoid(2 logit)`` with its own models);
* the cell sizes are set per **epoch** (``round(lambda_1 n_{y=1})`` draws of ``(1, 1)``, the
  rest of the ``n_{y=1}`` draws from ``(1, 0)``, likewise for ``y = 0``; ``N`` draws in all)
  and the epoch is shuffled, so batches have the target composition in expectation and a
  constant size (the reference rounds per batch, which makes the batch size drift);
* each cell is drawn without replacement, cycling through a fresh permutation of the
  cell when it must supply more draws than it has samples (as in the reference);
* the model's train/eval mode is restored after the loss pass (the reference leaves it
  in eval mode).

The first adjustment happens in :meth:`setup` from the initial model, the next ones in
:meth:`on_epoch_end`, so epoch ``k`` is drawn with the lambdas after ``k`` adjustments, as
in the reference, which adjusts at the start of every epoch.

**Index order.** The paper writes cells label first (``L_yz``); fairlib's tables are
group-major like every other strategy's (Reweighing's ``cell_weights_[a, y]``, the
``2 g + y`` cell codes), so ``cell_losses_[z, y]`` holds the paper's ``L_yz``. Only
``lambda_`` keeps the paper's order, ``[lambda_1, lambda_2]`` (for ``y = 1``, then ``y = 0``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Sampler

from .._inference import batched_logits
from .._validation import MSG_TYPE
from ._common import (
    EpochSampler,
    check_choice,
    check_number,
    check_train,
    make_generator,
)
from .base import Batch, WeightingStrategy

__all__ = ["FairBatch"]

TARGETS = ("eo", "eqodds", "dp")


class FairBatch(WeightingStrategy):
    """Adaptive batch composition per (label, group) cell for a fairness target.

    Needs a binary sensitive attribute (the active one) and all four cells non-empty.
    The loss is unweighted; the strategy acts through :meth:`sampler`.

    Parameters
    ----------
    target : {"eo", "eqodds", "dp"}, default "eo"
        Equal opportunity, equalized odds or demographic parity.
    alpha : float, default 0.005
        Step of the lambda update per epoch (the official notebook's value).

    Attributes
    ----------
    lambda_ : torch.Tensor
        ``[lambda_1, lambda_2]`` on the device: share of group 1 among the ``y = 1`` and
        the ``y = 0`` draws (the paper's order, by label).
    cell_losses_ : torch.Tensor
        ``[2, 2]`` losses of the last adjustment, group-major: ``cell_losses_[z, y]`` is
        the paper's ``L_yz``.
    cell_counts_ : torch.Tensor
        ``[2, 2]`` training counts, group-major ``n[z, y]``.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.train import LogisticRegression, fit
    >>> from fairlib.weighting import FairBatch
    >>> data = make_biased_classification(400, seed=0)
    >>> fb = FairBatch(target="eqodds", alpha=0.05)
    >>> hist = fit(LogisticRegression(2, seed=0), data, strategy=fb, epochs=2, progress=False)
    >>> fb.lambda_.shape, len(hist.last("lambda"))
    (torch.Size([2]), 2)
    """

    def __init__(self, target: Literal["eo", "eqodds", "dp"] = "eo", *,
                 alpha: float = 0.005) -> None:
        self.target = target
        self.alpha = alpha

    def check_params(self) -> FairBatch:
        """Validate ``target`` and ``alpha``."""
        check_choice("target", self.target, TARGETS)
        check_number("alpha", self.alpha, low=0.0, low_open=True, high=1.0,
                     expected="a step in (0, 1]")
        return self

    def setup(self, train: Any, *, meta: Any = None, model: nn.Module | None = None,
              device: torch.device | str = "auto",
              generator: torch.Generator | None = None) -> FairBatch:
        """Validate; lambdas from the training proportions; first adjustment from ``model``."""
        super().setup(train, meta=meta, model=model, device=device, generator=generator)
        check_train(train, "FairBatch")
        if train.n_groups != 2:
            raise ValueError(MSG_TYPE.format(
                name="train",
                expected="a binary active sensitive attribute for FairBatch (two groups)",
                got=f"{train.n_groups} groups {tuple(train.group_categories)}"))
        y = train.y.to(torch.int64).cpu()
        z = train.group.to(torch.int64).cpu()
        counts = torch.bincount(z * 2 + y, minlength=4).view(2, 2)  # [z, y]
        empty = [f"(y={a}, {train.group_categories[b]!r})"
                 for a, b in torch.nonzero(counts.T == 0).tolist()]
        if empty:
            raise ValueError(MSG_TYPE.format(
                name="train", expected="samples in all four (label, group) cells for FairBatch",
                got="no samples in " + ", ".join(empty)))
        self.cell_counts_ = counts.to(self.device_)
        # member rows of each cell, [z][y]
        self._cells = [[torch.nonzero((z == b) & (y == a)).flatten() for a in (0, 1)]
                       for b in (0, 1)]
        self._train = train
        self._generator = make_generator(generator)
        c = counts.to(torch.float64)
        self.lambda_ = torch.stack([c[1, 1] / c[:, 1].sum(),
                                    c[1, 0] / c[:, 0].sum()]).to(self.device_)
        self.cell_losses_ = torch.full((2, 2), float("nan"), dtype=torch.float64,
                                       device=self.device_)
        self._y = y.to(self.device_)
        self._cell = (z * 2 + y).to(self.device_)
        if model is not None:
            self._adjust(model)
        return self

    def cell_losses(self, model: nn.Module) -> torch.Tensor:
        """Losses ``[z, y]`` on the training set (FairBatch's definition for the target).

        Group-major: entry ``[z, y]`` is the paper's ``L_yz``. Device ops only.
        """
        logits = batched_logits(model, self._train, device=self.device_).to(torch.float64)
        if self.target == "dp":
            losses = F.softplus(-logits)  # BCE against the all-ones target
        else:
            losses = F.binary_cross_entropy_with_logits(logits, self._y.to(torch.float64),
                                                        reduction="none")
        sums = torch.zeros(4, dtype=torch.float64, device=self.device_)
        sums.index_add_(0, self._cell, losses)
        counts = self.cell_counts_.to(torch.float64)
        # DP divides by the group size n_z, the other targets by the cell size n_yz
        denom = counts.sum(1, keepdim=True).expand(2, 2) if self.target == "dp" else counts
        return sums.view(2, 2) / denom

    def _adjust(self, model: nn.Module) -> None:
        L = self.cell_losses(model)  # [z, y]: L[z, y] is the paper's L_yz
        a = float(self.alpha)
        step1 = torch.where(L[1, 1] > L[0, 1], a, -a)  # L_11 > L_10
        if self.target == "eo":
            delta = torch.stack([step1, torch.zeros_like(step1)])
        else:
            step2 = torch.where(L[1, 0] > L[0, 0], a, -a)  # L_01 > L_00
            if self.target == "dp":
                step2 = -step2
            first = (L[1, 1] - L[0, 1]).abs() > (L[1, 0] - L[0, 0]).abs()
            delta = torch.stack([torch.where(first, step1, 0.0), torch.where(first, 0.0, step2)])
        self.lambda_ = (self.lambda_ + delta.to(self.lambda_.dtype)).clamp(0.0, 1.0)
        self.cell_losses_ = L

    def on_epoch_end(self, epoch: int, model: nn.Module) -> None:
        """Adjust the lambdas from the model's per-cell training losses."""
        self._adjust(model)

    def epoch_cell_sizes(self) -> torch.Tensor:
        """Draws per cell ``[z, y]`` in the next epoch (reads ``lambda_``: once per epoch)."""
        lam1, lam2 = self.lambda_.tolist()
        n = self.cell_counts_.cpu().tolist()  # n[z][y]
        n1, n0 = n[0][1] + n[1][1], n[0][0] + n[1][0]
        m11 = round(lam1 * n1)
        if self.target == "eo":
            m01 = n[1][0]
        else:
            m01 = round(lam2 * n0)
        return torch.tensor([[n0 - m01, n1 - m11], [m01, m11]])

    def _draw(self, n_total: int) -> list[int]:
        sizes = self.epoch_cell_sizes()
        parts = []
        for a in (0, 1):  # label-major draw order, as before: same draws for a seed
            for b in (0, 1):
                m, idx = int(sizes[b, a]), self._cells[b][a]
                if m == 0:
                    continue
                reps = -(-m // len(idx))
                perm = idx[torch.randperm(len(idx), generator=self._generator)]
                parts.append(perm.repeat(reps)[:m])
        order = torch.cat(parts)
        return order[torch.randperm(len(order), generator=self._generator)].tolist()

    def sampler(self) -> Sampler:
        """``N`` indices per epoch with the cell sizes of :meth:`epoch_cell_sizes`, shuffled."""
        return EpochSampler(self._draw, lambda: len(self._train))

    def weights(self, batch: Batch, losses: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """Uniform: FairBatch acts through the batch composition."""
        return torch.ones_like(losses)

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """``lambda`` and the per-cell ``cell_losses`` ``[z, y]`` behind the last update."""
        return {"lambda": self.lambda_, "cell_losses": self.cell_losses_}
