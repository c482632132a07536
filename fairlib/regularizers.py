"""Fairness regularisers: loss terms :func:`fairlib.train.fit` adds to the weighted loss.

Passed as ``fit(..., regularizer=...)``, a regulariser composes with any weighting
strategy: each step minimises ``mean(w_i * loss_i) + penalty``. The protocol
(:class:`Regularizer`) is small so that others can be added:

* ``check_params()``: validate the hyper-parameters (``fit`` calls it before any work);
* ``setup(train, model=..., device=...)``: constants of the training set and the
  learned state (attributes ending in ``_``), on the training device;
* ``penalty(batch, logits)``: a 0-d tensor, attached to the graph of ``logits``, added
  to the loss of this step;
* ``update(batch, logits)``: its own state update after the optimiser step (``logits``
  detached, those the penalty saw);
* ``diagnostics()``: small tensors for the training history (read once per epoch);
* ``state_dict()`` / ``load_state_dict()``: the learned ``_`` attributes.

``penalty`` and ``update`` run every step and must not read a value back to the host.

:class:`FERMI` is the stochastic ERMI (chi-squared) penalty of Lowy et al., "A
Stochastic Optimization Framework for Fair Risk Minimization" (arXiv 2102.12586);
:func:`ermi` computes the exact value it estimates.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Literal, TypeVar

import torch
from torch import nn

from ._validation import (
    check_choice,
    check_finite,
    check_group_codes,
    check_lengths,
    check_nonnegative,
    check_number,
    check_positive_int,
    msg_expected,
    to_tensor,
)
from .weighting import Batch
from .weighting._common import check_train

__all__ = ["FERMI", "Regularizer", "ermi"]

R = TypeVar("R", bound="Regularizer")

#: ``target=``: the independence ERMI measures. ``"dp"``: Yhat and S (demographic
#: parity); ``"eo"``: Yhat and S among the positives, Y = 1 (equal opportunity);
#: ``"eodds"``: Yhat and S given Y, averaged over P(Y) (equalized odds).
Target = Literal["dp", "eo", "eodds"]
TARGETS = ("dp", "eo", "eodds")


class Regularizer:
    """Base class of the loss terms :func:`fairlib.train.fit` adds to the weighted loss.

    Subclasses implement :meth:`penalty` and, when they learn, :meth:`setup` /
    :meth:`update`; the conventions are the strategies' (scikit-learn's): the
    constructor only stores its arguments under their own names, :meth:`check_params`
    validates them, learned state lives in attributes ending in ``_``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.regularizers import Regularizer
    >>> from fairlib.train import LogisticRegression, fit
    >>> class ScoreL2(Regularizer):
    ...     '''Shrink the logits: lam * mean(logit**2).'''
    ...     def __init__(self, lam=0.1):
    ...         self.lam = lam
    ...     def penalty(self, batch, logits):
    ...         return self.lam * logits.pow(2).mean()
    >>> hist = fit(LogisticRegression(2, seed=0), make_biased_classification(200, seed=0),
    ...            regularizer=ScoreL2(), epochs=1, progress=False)
    >>> ScoreL2(lam=0.5), "train_penalty" in hist.frame
    (ScoreL2(lam=0.5), True)
    """

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments, read back from the attributes of the same names.

        Examples
        --------
        >>> from fairlib.regularizers import FERMI
        >>> FERMI("eo", lam=2.0).get_params()
        {'target': 'eo', 'lam': 2.0, 'lr_w': 1.0}
        """
        init = type(self).__init__
        if init is object.__init__:
            return {}
        names = [p.name for p in list(inspect.signature(init).parameters.values())[1:]
                 if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        return {name: getattr(self, name) for name in names}

    def set_params(self: R, **params: Any) -> R:
        """Set constructor parameters (validated by :meth:`check_params`); returns ``self``.

        Examples
        --------
        >>> from fairlib.regularizers import FERMI
        >>> FERMI().set_params(lam=1.0)
        FERMI(target='dp', lam=1.0, lr_w=1.0)
        """
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                listed = ", ".join(f"`{k}`" for k in valid) or "none"
                raise ValueError(msg_expected(
                    name, f"a parameter of {type(self).__name__} ({listed})", "no such parameter"))
            setattr(self, name, value)
        return self

    def check_params(self: R) -> R:
        """Validate the hyper-parameters without data; returns ``self``. Nothing here."""
        return self

    def setup(self: R, train: Any, *, model: nn.Module | None = None,
              device: torch.device | str = "cpu") -> R:
        """Prepare the state for training on ``train``; returns ``self``.

        Validates the hyper-parameters first (:meth:`check_params`).
        """
        self.check_params()
        self.device_ = torch.device(device)
        return self

    def penalty(self, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        """The 0-d loss term of this step, attached to the graph of ``logits`` ``[B]``."""
        raise NotImplementedError(f"{type(self).__name__} must implement penalty(batch, logits).")

    def update(self, batch: Batch, logits: torch.Tensor) -> None:
        """Update the state after the optimiser step (``logits`` detached); nothing here."""

    def diagnostics(self) -> dict[str, torch.Tensor]:
        """Values worth recording in the training history (tensors, read once per epoch)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Every learned attribute (name ending in ``_``), by reference (as ``torch``'s)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore learned attributes saved by :meth:`state_dict` (copied, never shared).

        Call it after :meth:`setup`, which builds the constants that are not learned.
        """
        bad = [k for k in state if not k.endswith("_") or k.startswith("_")]
        if bad:
            raise ValueError(msg_expected("state", "learned attributes ending in '_'",
                                          repr(bad[0])))
        for key, value in copy.deepcopy(dict(state)).items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def _cells(y: torch.Tensor, target: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The conditioning cell of each row (Y for ``"eodds"``, else 0) and whether the row
    counts (only the positives for ``"eo"``), a boolean mask."""
    y = y.to(torch.int64)
    cell = y if target == "eodds" else torch.zeros_like(y)
    keep = (y == 1) if target == "eo" else torch.ones_like(y, dtype=torch.bool)
    return cell, keep


def _moments(probs: torch.Tensor, cell: torch.Tensor, group: torch.Tensor, keep: torch.Tensor,
             n_cells: int, n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch means ``J[c, j, r] = mean_i P_ij 1{c_i = c, s_i = r}`` and
    ``B[c, j] = mean_i P_ij 1{c_i = c}`` (rows outside ``keep`` count 0): scatter-adds,
    no host read. ``probs`` is ``[n, 2]``: P(Yhat = 0 | x), P(Yhat = 1 | x)."""
    n = probs.shape[0]
    p = probs * keep.unsqueeze(1).to(probs.dtype)
    joint = p.new_zeros(n_cells * n_groups, 2).index_add_(0, cell * n_groups + group, p)
    joint = joint.reshape(n_cells, n_groups, 2).transpose(1, 2) / n
    marginal = p.new_zeros(n_cells, 2).index_add_(0, cell, p) / n
    return joint, marginal


def _probs(logits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    p1 = torch.sigmoid(logits.to(dtype))
    return torch.stack([1 - p1, p1], dim=1)


def _constants(y: torch.Tensor, group: torch.Tensor, target: str, n_groups: int,
               name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``P(S = r | cell c)`` ``[C, m]`` and each cell's scale ``[C]`` (``N / N_1`` for
    ``"eo"``, so the mean over all rows is the mean over the positives; else 1), from
    the labels and groups of a whole dataset. Host read (set-up time only)."""
    cell, keep = _cells(y, target)
    n_cells = 2 if target == "eodds" else 1
    counts = torch.zeros(n_cells * n_groups, dtype=torch.float64, device=y.device).index_add_(
        0, cell * n_groups + group, keep.to(torch.float64)).reshape(n_cells, n_groups)
    per_cell = counts.sum(1)
    if bool((per_cell == 0).any()):
        missing = "positive (y=1)" if target == "eo" else "y=0 or y=1"
        raise ValueError(msg_expected(
            name, f"data with {missing} rows for target={target!r} (ERMI conditions on the label)",
            f"none among {len(y)} rows"))
    prior = counts / per_cell.unsqueeze(1)
    scale = len(y) / per_cell if target == "eo" else torch.ones_like(per_cell)
    return prior, scale


def ermi(y_true: Any, y_score: Any, *, groups: Any, target: Target = "dp",
         n_groups: int | None = None) -> torch.Tensor:
    """Exponential Rényi mutual information (ERMI) of soft predictions and a group.

    ``ERMI(Yhat; S) = sum_{j,r} P(Yhat=j, S=r)^2 / (P(Yhat=j) P(S=r)) - 1`` (Lowy et al.,
    "A Stochastic Optimization Framework for Fair Risk Minimization", arXiv 2102.12586),
    the chi-squared divergence between the joint distribution and the product of the
    marginals: 0 exactly when the predictions are independent of the group, ``min(2, m)
    - 1`` at most. ``P(Yhat = 1 | x)`` is the score (the randomised classifier's
    prediction), so it is smooth in the model. This is the value :class:`FERMI`'s
    penalty estimates (divided by ``lam``) at its optimal ``W``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary labels {0, 1} (used by ``"eo"`` and ``"eodds"``).
    y_score : array-like of shape (n,)
        Probabilities ``P(Yhat = 1 | x)`` in [0, 1].
    groups : array-like of shape (n,)
        Integer group codes ``0 .. n_groups - 1``.
    target : {"dp", "eo", "eodds"}, default "dp"
        ``"dp"``: ERMI(Yhat; S). ``"eo"``: the same among the rows with ``y = 1``.
        ``"eodds"``: ``sum_y P(Y=y) ERMI(Yhat; S | Y=y)``, the ERMI given Y averaged
        over Y. The two conditional forms are fairlib's definitions (reconstruction).
    n_groups : int, optional
        Number of groups; default ``max(groups) + 1``.

    Returns
    -------
    torch.Tensor
        0-d, float64, on the device of ``y_score`` (a tensor's) or the CPU.

    Examples
    --------
    >>> from fairlib.regularizers import ermi
    >>> g = [0, 0, 1, 1]
    >>> float(ermi([0, 1, 0, 1], [0.2, 0.8, 0.2, 0.8], groups=g))  # independent of the group
    0.0
    >>> float(ermi([0, 1, 0, 1], [1.0, 1.0, 0.0, 0.0], groups=g))  # the group decides
    1.0
    """
    check_choice("target", target, TARGETS)
    score = to_tensor(y_score, "y_score")
    y = to_tensor(y_true, "y_true", score.device).to(score.device)
    g = check_group_codes(to_tensor(groups, "groups", score.device).to(score.device), "groups")
    check_lengths(y_true=y, y_score=score, groups=g)
    check_finite(score.to(torch.float64), "y_score")
    if bool(((score < 0) | (score > 1)).any()):
        lo, hi = float(score.min()), float(score.max())
        raise ValueError(msg_expected("y_score", "probabilities in [0, 1]",
                                      f"values from {lo:g} to {hi:g}"))
    if bool(((y != 0) & (y != 1)).any()):
        raise ValueError(msg_expected("y_true", "binary labels in {0, 1}", "other values"))
    if bool((g < 0).any()):
        raise ValueError(msg_expected("groups", "non-negative group codes", "negative codes"))
    m = int(g.max()) + 1
    if n_groups is not None:
        if check_positive_int("n_groups", n_groups) < m:
            raise ValueError(msg_expected("n_groups", f"at least max(groups) + 1 = {m}", n_groups))
        m = int(n_groups)
    y = y.to(torch.int64)
    prior, scale = _constants(y, g, target, m, "y_true")
    cell, keep = _cells(y, target)
    probs = torch.stack([1 - score.to(torch.float64), score.to(torch.float64)], dim=1)
    joint, marginal = _moments(probs, cell, g, keep, prior.shape[0], m)
    denom = prior.unsqueeze(1) * marginal.unsqueeze(2)
    ratio = torch.where(denom > 0, joint.square() / torch.where(denom > 0, denom, 1), 0)
    return (scale.view(-1, 1, 1) * ratio).sum() - 1


class FERMI(Regularizer):
    """Fair Empirical Risk Minimization via ERMI (Lowy et al., "A Stochastic Optimization
    Framework for Fair Risk Minimization", arXiv 2102.12586).

    Adds ``lam * ERMI(Yhat; S)`` (:func:`ermi`) to the loss, through the paper's min-max
    form with a small matrix ``W``, so every term is a mean over rows and the minibatch
    estimate is unbiased for any batch size, batch size 1 included::

        reg(theta, W) = sum_{c,j,r} s_c [2 P(Yhat=j, S=r, C=c) W_cjr
                                         - P(S=r | C=c) P(Yhat=j, C=c) W_cjr^2] - 1

    ``P(Yhat = j | x)`` is the model's probability (sigmoid of the logit); the cell
    ``C`` is the label ``Y`` for ``"eodds"`` and constant otherwise (``"eo"`` keeps only
    the positives); ``s_c`` rescales ``"eo"`` to the positives. ``reg`` is concave in
    ``W`` and its maximum, at ``W* = P(Yhat, S | C) / (P(Yhat | C) P(S | C))``, is the
    ERMI; the penalty of a step is ``lam * reg`` on the batch at the current ``W``, and
    after the optimiser step ``W`` takes an ascent step on the same batch: stochastic
    gradient descent-ascent on ``min_theta max_W``.

    Parameters
    ----------
    target : {"dp", "eo", "eodds"}, default "dp"
        Which independence to enforce: ``"dp"`` Yhat and S (demographic parity),
        ``"eo"`` Yhat and S among ``y = 1`` (equal opportunity), ``"eodds"`` Yhat and S
        given Y (equalized odds).
    lam : float, default 10.0
        Weight of the penalty, ``>= 0``. 10 is the reference notebook's value
        (``BinaryFERMI.ipynb``); it is data-dependent, tune it.
    lr_w : float, default 1.0
        Step size of the ascent on ``W``, in (0, 1] (fairlib's default). The step is
        preconditioned by the fixed diagonal ``1 / (2 s_c P(S=r | C=c))``:
        ``W += lr_w * (J / P(S | C) - B * W)`` with the batch means ``J = P(Yhat, S, C)``
        and ``B = P(Yhat, C)`` (``B <= 1``). It has the same fixed point ``W*``, makes
        ``lr_w`` free of the group sizes, and with ``lr_w <= 1`` a step never overshoots
        the batch's own maximiser ``J / (P(S | C) B)``, at any batch size; ``W`` then
        follows ``W*`` over about ``1 / (lr_w P(Yhat=j, C=c))`` steps. The
        preconditioning is fairlib's choice (reconstruction, not in the paper).

    Attributes
    ----------
    W_ : torch.Tensor
        ``[C, 2, m]`` (``C = 2`` for ``"eodds"``, else 1; ``m`` groups), starting at 1
        (the maximiser when Yhat and S are independent, where the penalty is 0).
    group_prior_ : torch.Tensor
        ``P(S = r | C = c)`` ``[C, m]`` of the training set.
    cell_scale_ : torch.Tensor
        ``s_c`` ``[C]``.

    Notes
    -----
    * ``P(S | C)`` is a constant of the training set (from :meth:`setup`), not a
      batch estimate: a product of two batch means would bias the estimate.
    * Batches are assumed drawn uniformly from the training set. Under a strategy's
      sampler (FairBatch, upsampling) the penalty estimates the ERMI of the sampled
      distribution, still with the training set's ``P(S | C)``; loss weights do not
      enter the penalty.
    * ``train_penalty`` in the history is ``lam * reg`` at the current ``W``, which lags
      ``W*``: below ``lam * ERMI`` in expectation, and negative on some batches.
    * The paper's code warms up without the regulariser (300 epochs in the README's
      logistic regression) and uses batch 64; both are choices of the caller here.
    * The reference notebook defines ``p_s1 = torch.mean(S)`` over the whole matrix;
      it is unused there and has no counterpart here.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.regularizers import FERMI
    >>> from fairlib.train import LogisticRegression, fit
    >>> data = make_biased_classification(400, seed=0)
    >>> fermi = FERMI("dp", lam=5.0)
    >>> hist = fit(LogisticRegression(2, seed=0), data, regularizer=fermi, epochs=2,
    ...            lr=0.05, progress=False)
    >>> fermi.W_.shape, sorted(hist.frame.columns)
    (torch.Size([1, 2, 2]), ['train_loss', 'train_penalty'])
    """

    def __init__(self, target: Target = "dp", *, lam: float = 10.0, lr_w: float = 1.0) -> None:
        self.target = target
        self.lam = lam
        self.lr_w = lr_w

    def check_params(self) -> FERMI:
        """Validate ``target``, ``lam`` and ``lr_w``; returns ``self``.

        Examples
        --------
        >>> from fairlib.regularizers import FERMI
        >>> FERMI(lr_w=2.0).check_params()
        Traceback (most recent call last):
        ...
        ValueError: Expected `lr_w` to be a step size in (0, 1], but got 2.0.
        """
        check_choice("target", self.target, TARGETS)
        check_nonnegative("lam", self.lam)
        check_number("lr_w", self.lr_w, low=0.0, low_open=True, high=1.0,
                     expected="a step size in (0, 1]")
        return self

    def setup(self, train: Any, *, model: nn.Module | None = None,
              device: torch.device | str = "cpu") -> FERMI:
        """``P(S | C)`` and the cell scales of ``train``; ``W_`` at 1 in the dtype of the
        model's parameters (the default dtype without a model)."""
        super().setup(train, model=model, device=device)
        check_train(train, "FERMI")
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()),
                     torch.get_default_dtype()) if model is not None else torch.get_default_dtype()
        prior, scale = _constants(train.y.to(torch.int64), train.group.to(torch.int64),
                                  self.target, int(train.n_groups), "train")
        self.group_prior_ = prior.to(self.device_, dtype)
        self.cell_scale_ = scale.to(self.device_, dtype)
        self.W_ = torch.ones(prior.shape[0], 2, prior.shape[1], dtype=dtype, device=self.device_)
        return self

    def penalty(self, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        """``lam * reg(theta, W_)`` on this batch: a mean over its rows, so unbiased.

        Per row, ``s_c * sum_j P_ij (2 W[c, j, s] - sum_r P(r | c) W[c, j, r]^2)``, the
        row's share of the two sums of ``reg`` (gathers, no host read).
        """
        W = self.W_
        cell, keep = _cells(batch.y, self.target)
        probs = _probs(logits, W.dtype)
        quad = (self.group_prior_.unsqueeze(1) * W.square()).sum(2)  # [C, 2]
        per_row = (probs * (2 * W[cell, :, batch.group] - quad[cell])).sum(1)
        per_row = per_row * self.cell_scale_[cell] * keep.to(W.dtype)
        return self.lam * (per_row.mean() - 1)

    @torch.no_grad()
    def update(self, batch: Batch, logits: torch.Tensor) -> None:
        """One preconditioned ascent step on ``W_`` from the batch means (see ``lr_w``)."""
        W = self.W_
        cell, keep = _cells(batch.y, self.target)
        joint, marginal = _moments(_probs(logits, W.dtype), cell, batch.group, keep,
                                   W.shape[0], W.shape[2])
        prior = self.group_prior_.unsqueeze(1)  # [C, 1, m]; 0 for a group absent from a cell
        present = prior > 0
        inv = torch.where(present, 1 / torch.where(present, prior, 1), 0)
        W.add_(self.lr_w * (joint * inv - marginal.unsqueeze(2) * W * present))
