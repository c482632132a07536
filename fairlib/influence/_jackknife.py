"""Infinitesimal-jackknife influence of training rows on a smooth group-fairness metric.

Notation. The model was trained to ``θ̂ = argmin L(θ)`` with
``L(θ) = (1/n) Σ_i ℓ_i(θ) + (λ/2) ||θ||²``, ``ℓ_i`` the binary cross-entropy of training row
``i`` and ``λ = l2`` (the ``weight_decay`` of :func:`fairlib.train.fit`: it adds ``λθ`` to the
gradient of every trainable parameter, biases included). Dropping a set ``S`` of rows and
refitting the mean loss of the others moves ``θ̂``, to first order, by

    ``Δθ ≈ H⁻¹ Σ_{i∈S} g_i / n``,  ``g_i = ∇ℓ_i(θ̂) + λθ̂``,  ``H = ∇²L(θ̂) (+ damping · I)``.

``g_i`` carries ``λθ̂`` because the remaining losses are re-averaged, so the penalty weighs
slightly more against them; ``Σ_i g_i = n ∇L(θ̂) = 0`` at the minimum, so dropping every row
predicts no change, as it should for a mean. With ``λ = 0`` this is the textbook
``∇F(θ̂)ᵀ H⁻¹ ∇ℓ_i(θ̂) / n`` (``methods.md`` §10.1 writes it for the summed loss: same value).
The influence of row ``i`` on a smooth metric ``F`` is ``ΔF_i ≈ ∇F(θ̂)ᵀ Δθ = ∇F(θ̂)ᵀ H⁻¹ g_i / n``:
**positive means removing the row raises the metric** (the derivative with respect to
*up*-weighting row ``i`` is its negative). Influences of a set add up.

Smooth metrics. Thresholded predictions have zero gradient, so the influence is computed on
a smooth stand-in (Sattigeri et al. 2022; ``methods.md`` §10.4): each group's rate uses the
mean predicted probability ``sigmoid(logit)`` instead of the fraction of positive predictions

- ``"equal_opportunity_difference"``: per group, the mean probability over the rows with
  ``y = 1`` (a soft true-positive rate);
- ``"demographic_parity_difference"``: per group, the mean probability over all rows (a soft
  selection rate);

and the metric is the largest minus the smallest rate over the groups present (for two groups
the absolute difference), as fairlearn's ``method="between_groups"``. Select rows with the
smooth metric; report the hard metric (:func:`fairlib.train.evaluate`) after refitting.

The computation runs on the model's device in float64 (float32 on MPS), on a functional copy of
the parameters: the model itself is never changed (except by :func:`fit_to_convergence`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, vjp, vmap

from .._inference import model_device
from .._validation import (
    check_choice,
    check_finite_positive,
    check_fraction,
    check_nonnegative,
    check_positive_int,
    msg_expected,
)

METRICS = ("equal_opportunity_difference", "demographic_parity_difference")
"""Metrics with a smooth version: per-group mean predicted probability, max minus min."""
METHODS = ("auto", "exact", "cg")
EXACT_MAX_PARAMS = 1000
"""``method="auto"`` builds the Hessian explicitly up to this many trainable parameters."""
_BUDGET = 2**22  # rows x parameters per vectorised call: bounds the memory of a chunk


class Drop(NamedTuple):
    """What :func:`drop_by_influence` returns.

    Attributes
    ----------
    indices : torch.Tensor
        int64 positions in ``train`` of the rows to drop, in influence order (most negative
        first).
    predicted_metric : torch.Tensor
        0-dim: the smooth metric on ``meta`` predicted after dropping them, without refitting.
    """

    indices: torch.Tensor
    predicted_metric: torch.Tensor


# -- the model as a function of one flat parameter vector -----------------------------------------
def _dtype(device: torch.device) -> torch.dtype:
    # float32 inverse-Hessian products lose the small influences; MPS has no float64.
    return torch.float32 if device.type == "mps" else torch.float64


class _Functional:
    """Logits and per-row losses as functions of the flat vector of trainable parameters."""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        named = list(model.named_parameters())
        trainable = [(k, p) for k, p in named if p.requires_grad]
        self.model, self.dtype = model, dtype
        self.names = [k for k, _ in trainable]
        self.shapes = [p.shape for _, p in trainable]
        self.sizes = [p.numel() for _, p in trainable]
        self.frozen = {k: p.detach().to(dtype) for k, p in named if not p.requires_grad}
        self.buffers = {k: b.detach().to(dtype) if b.is_floating_point() else b.detach()
                        for k, b in model.named_buffers()}
        self.theta = torch.cat([p.detach().to(dtype).reshape(-1) for _, p in trainable])

    def logits(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        pieces = zip(self.names, flat.split(self.sizes), self.shapes, strict=True)
        params = {k: t.view(s) for k, t, s in pieces}
        state = ({**params, **self.frozen}, self.buffers)
        return functional_call(self.model, state, (x.to(self.dtype),)).reshape(-1)

    def losses(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(
            self.logits(flat, x), y.to(self.dtype), reduction="none")

    def write_back(self, flat: torch.Tensor) -> None:
        with torch.no_grad():
            for k, t, s in zip(self.names, flat.split(self.sizes), self.shapes, strict=True):
                p = self.model.get_parameter(k)
                p.copy_(t.view(s).to(p.dtype))


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """No dropout while differentiating; the caller's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _slices(n: int, per_row: int) -> list[slice]:
    step = max(1, _BUDGET // max(1, per_row))
    return [slice(s, s + step) for s in range(0, n, step)]


# -- validation -----------------------------------------------------------------------------------
def _check_model(model: Any) -> int:
    if not isinstance(model, nn.Module):
        raise TypeError(msg_expected("model", "a torch.nn.Module", type(model).__name__))
    p = sum(q.numel() for q in model.parameters() if q.requires_grad)
    if p == 0:
        raise ValueError(msg_expected("model", "a module with trainable parameters", "none"))
    return p


def _check_data(name: str, data: Any) -> None:
    if not all(isinstance(getattr(data, k, None), torch.Tensor) for k in ("X", "y", "group")):
        raise TypeError(msg_expected(name, "a FairDataset (tensors X, y and group)",
                                     type(data).__name__))
    if len(data.y) == 0:
        raise ValueError(msg_expected(name, "a non-empty dataset", "0 rows"))


def _check_common(model: Any, train: Any, meta: Any, metric: object, l2: object, damping: object,
                  method: object, tol: object, max_iter: object) -> int:
    n_params = _check_model(model)
    _check_data("train", train)
    _check_data("meta", meta)
    check_choice("metric", metric, METRICS)
    check_nonnegative("l2", l2)
    check_nonnegative("damping", damping)
    check_choice("method", method, METHODS)
    check_finite_positive("tol", tol)
    check_positive_int("max_iter", max_iter, allow_none=True)
    return n_params


def _averaging(name: str, data: Any, metric: str, device: torch.device, dtype: torch.dtype
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows the smooth rates use and the ``[rows, groups]`` matrix averaging them per group.

    Only groups present among those rows count; fewer than two is an error (one host read,
    before any work).
    """
    y, group = data.y.to(device), data.group.to(device)
    eo = metric == "equal_opportunity_difference"
    used = (y == 1) if eo else torch.ones_like(y, dtype=torch.bool)
    rows = torch.nonzero(used).flatten()
    n_groups = int(getattr(data, "n_groups", int(group.max()) + 1 if len(group) else 0))
    onehot = nn.functional.one_hot(group[rows], max(n_groups, 1)).to(dtype)
    counts = onehot.sum(0)
    present = torch.nonzero(counts > 0).flatten()
    if len(present) < 2:
        names = getattr(data, "group_categories", None)
        seen = [names[i] if names else str(i) for i in present.tolist()]
        where = " with y = 1" if eo else ""
        raise ValueError(msg_expected(
            name, f"rows{where} from at least two groups ({metric!r} compares groups)",
            f"{len(seen)} group(s): {seen}"))
    return rows, onehot[:, present] / counts[present]


# -- the smooth metric ----------------------------------------------------------------------------
def _rates(fn: _Functional, flat: torch.Tensor, x: torch.Tensor,
           avg: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(avg.shape[1], dtype=fn.dtype, device=flat.device)
    for sl in _slices(len(x), len(flat)):
        out = out + torch.sigmoid(fn.logits(flat, x[sl])) @ avg[sl]
    return out


def smooth_metric(model: nn.Module, data: Any, *,
                  metric: str = "equal_opportunity_difference") -> torch.Tensor:
    """The smooth version of a group-fairness metric on ``data``.

    Each group's rate is the mean predicted probability (over its rows with ``y = 1`` for
    ``"equal_opportunity_difference"``, over all its rows for
    ``"demographic_parity_difference"``); the metric is the largest minus the smallest rate
    over the groups present. This is what :func:`fairness_influence` differentiates; report
    the hard metric of :func:`fairlib.train.evaluate`.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of features to one logit per row; evaluated in eval mode.
    data : FairDataset
        Rows with labels and the active sensitive attribute; needs two groups.
    metric : {"equal_opportunity_difference", "demographic_parity_difference"}
        Which metric.

    Returns
    -------
    torch.Tensor
        0-dim, float64 (float32 on MPS), on the model's device.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.influence import smooth_metric
    >>> from fairlib.train import LogisticRegression
    >>> model = LogisticRegression(2, seed=0)
    >>> with torch.no_grad():  # a constant logit 0: every probability is 1/2, no gap
    ...     _ = model.linear.weight.zero_(), model.linear.bias.zero_()
    >>> float(smooth_metric(model, make_biased_classification(100, seed=0)))
    0.0
    """
    _check_model(model)
    _check_data("data", data)
    check_choice("metric", metric, METRICS)
    device = model_device(model)
    dtype = _dtype(device)
    rows, avg = _averaging("data", data, metric, device, dtype)
    with _eval_mode(model), torch.no_grad():
        fn = _Functional(model, dtype)
        rates = _rates(fn, fn.theta, data.X.to(device)[rows], avg)
    return rates.max() - rates.min()


# -- inverse-Hessian products ---------------------------------------------------------------------
def _exact_solve(fn: _Functional, x: torch.Tensor, y: torch.Tensor, shift: float,
                 rhs: torch.Tensor) -> torch.Tensor:
    """``(∇²(mean loss) + shift·I)⁻¹ rhs`` with the Hessian built explicitly."""
    theta, n = fn.theta, len(x)
    h = torch.zeros(len(theta), len(theta), dtype=theta.dtype, device=theta.device)
    for sl in _slices(n, len(theta) * len(theta) // 8 + 1):  # P tangents per row
        # reverse over reverse: forward-mode AD would load torch's deprecated jit decompositions
        h = h + jacrev(jacrev(lambda t, xs=x[sl], ys=y[sl]: fn.losses(t, xs, ys).sum()))(theta)
    h = h / n + shift * torch.eye(len(theta), dtype=theta.dtype, device=theta.device)
    chol, info = torch.linalg.cholesky_ex(h)
    if int(info) != 0:
        smallest = float(torch.linalg.eigvalsh(h)[0]) - shift
        raise ValueError(msg_expected(
            "damping", "large enough for a positive definite Hessian (train the model to a "
            "minimum with the same `l2`, or raise `damping` so that `l2 + damping` > "
            f"{-smallest:.3g}, minus the loss Hessian's smallest eigenvalue)",
            f"l2 + damping = {shift:g}"))
    return torch.cholesky_solve(rhs, chol)


def _cg_solve(fn: _Functional, x: torch.Tensor, y: torch.Tensor, shift: float, rhs: torch.Tensor,
              tol: float, max_iter: int) -> torch.Tensor:
    """Same product by conjugate gradient with Hessian-vector products (reverse over reverse).

    One column at a time; the convergence test reads two scalars per iteration (not per row).
    """
    theta, n = fn.theta, len(x)
    slices = _slices(n, len(theta))

    def hvp(v: torch.Tensor) -> torch.Tensor:
        out = shift * v
        for sl in slices:
            g = grad(lambda t, xs=x[sl], ys=y[sl]: fn.losses(t, xs, ys).sum())
            out = out + vjp(g, theta)[1](v)[0] / n  # the Hessian is symmetric: vjp = Hv
        return out

    cols = []
    for b in rhs.unbind(1):
        sol, r = torch.zeros_like(b), b.clone()
        p, rr = r.clone(), r @ r
        stop = float(rr) * tol * tol
        for _ in range(max_iter):
            if float(rr) <= stop:
                break
            hp = hvp(p)
            curvature = p @ hp
            if float(curvature) <= 0:
                raise ValueError(msg_expected(
                    "damping", "large enough for a positive definite Hessian (train the model "
                    "to a minimum with the same `l2`, or raise `damping`)",
                    f"l2 + damping = {shift:g} and a direction of negative curvature"))
            alpha = rr / curvature
            sol, r = sol + alpha * p, r - alpha * hp
            rr, rr_old = r @ r, rr
            p = r + (rr / rr_old) * p
        else:
            if float(rr) > stop:
                residual = math.sqrt(float(rr) / max(float(b @ b), 1e-300))
                warnings.warn(
                    f"Conjugate gradient stopped after max_iter={max_iter} iterations with "
                    f"relative residual {residual:.2e} > tol={tol:g}; raise `max_iter` or "
                    "`damping`.", RuntimeWarning, stacklevel=4)
        cols.append(sol)
    return torch.stack(cols, dim=1)


# -- influences -----------------------------------------------------------------------------------
def _group_influence(model: nn.Module, train: Any, meta: Any, *, metric: str, l2: float,
                     damping: float, method: str, tol: float, max_iter: int | None,
                     gap_only: bool, n_params: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Smooth rates ``[G]`` on ``meta``, influences ``[N, K]``, indices of (max, min) rate.

    ``K = 1`` (the gap max - min) when ``gap_only``, else ``K = G`` (every group's rate).
    """
    device = model_device(model)
    dtype = _dtype(device)
    rows, avg = _averaging("meta", meta, metric, device, dtype)
    x_meta = meta.X.to(device)[rows]
    x, y = train.X.to(device), train.y.to(device)
    n = len(y)
    with _eval_mode(model):
        fn = _Functional(model, dtype)
        theta = fn.theta
        rates = torch.zeros(avg.shape[1], dtype=dtype, device=device)
        jac = torch.zeros(avg.shape[1], len(theta), dtype=dtype, device=device)
        for sl in _slices(len(x_meta), len(theta)):
            def part(t: torch.Tensor, xs: torch.Tensor = x_meta[sl],
                     a: torch.Tensor = avg[sl]) -> torch.Tensor:
                return torch.sigmoid(fn.logits(t, xs)) @ a
            jac = jac + jacrev(part)(theta)
            rates = rates + part(theta).detach()
        hi, lo = rates.argmax(), rates.argmin()
        rhs = (jac[hi] - jac[lo]).unsqueeze(1) if gap_only else jac.T
        exact = method == "exact" or (method == "auto" and n_params <= EXACT_MAX_PARAMS)
        shift = l2 + damping
        if exact:
            v = _exact_solve(fn, x, y, shift, rhs)
        else:
            iters = max_iter if max_iter is not None else min(n_params, 1000)
            v = _cg_solve(fn, x, y, shift, rhs, tol, iters)
        # g_i . v for every row: per-row gradients a chunk at a time (rows x P bounded by _BUDGET)
        def row_loss(t: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
            return fn.losses(t, xi.unsqueeze(0), yi.unsqueeze(0)).sum()

        per_row = vmap(grad(row_loss), in_dims=(None, 0, 0))
        out = [per_row(theta, x[sl], y[sl]) @ v for sl in _slices(n, len(theta))]
        infl = (torch.cat(out) + l2 * (theta @ v)) / n
    return rates, infl.detach(), torch.stack([hi, lo])


def fairness_influence(model: nn.Module, train: Any, meta: Any, *,
                       metric: str = "equal_opportunity_difference", l2: float = 0.0,
                       damping: float = 0.0, method: str = "auto", tol: float = 1e-10,
                       max_iter: int | None = None) -> torch.Tensor:
    """Predicted change of a smooth fairness metric on ``meta`` if each training row were dropped.

    The first-order (infinitesimal-jackknife) change ``ΔF_i ≈ ∇F(θ̂)ᵀ H⁻¹ (∇ℓ_i(θ̂) + λθ̂) / n``
    of the smooth metric ``F`` (see :func:`smooth_metric`) when row ``i`` of ``train`` is
    removed and the model refitted, with ``H`` the Hessian of the mean training loss plus
    ``(l2 + damping) · I``. **Positive: removing the row raises the metric**; negative rows are
    the ones to drop. Influences add up over a set of rows (first order). The formula assumes
    ``model`` is at a minimum of the mean binary cross-entropy plus ``l2/2 · ||θ||²`` on
    ``train`` (:func:`fit_to_convergence`); far from it, or for large drop sets, check against
    refitting. Fair IJ: Sattigeri et al., NeurIPS 2022.

    Parameters
    ----------
    model : torch.nn.Module
        The trained model (one logit per row); read in eval mode, never changed.
    train : FairDataset
        The rows it was trained on.
    meta : FairDataset
        Held-out rows on which the metric is measured; at least two groups (with ``y = 1`` rows
        for equal opportunity).
    metric : {"equal_opportunity_difference", "demographic_parity_difference"}
        The metric; the gradient is taken at the current largest and smallest group rates.
    l2 : float, default 0.0
        The L2 penalty the model was trained with (``weight_decay`` of
        :func:`fairlib.train.fit`), on every trainable parameter.
    damping : float, default 0.0
        Added to the Hessian's diagonal: needed for networks, whose Hessian may be singular or
        indefinite. A positive-definiteness failure raises ``ValueError`` naming it.
    method : {"auto", "exact", "cg"}
        ``"exact"`` builds the Hessian and solves by Cholesky (logistic regression, small
        models); ``"cg"`` runs conjugate gradient with Hessian-vector products
        (``torch.func``), never forming the Hessian; ``"auto"`` is exact up to
        :data:`EXACT_MAX_PARAMS` trainable parameters.
    tol : float, default 1e-10
        Relative residual at which conjugate gradient stops.
    max_iter : int, optional
        Conjugate-gradient iterations (default: the parameter count, at most 1000); a
        ``RuntimeWarning`` says when they ran out.

    Returns
    -------
    torch.Tensor
        ``[len(train)]``, float64 (float32 on MPS), on the model's device.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.influence import fairness_influence, fit_to_convergence
    >>> from fairlib.train import LogisticRegression
    >>> train, meta, test = make_biased_classification(1000, seed=0).split(seed=0)
    >>> model = fit_to_convergence(LogisticRegression(2, seed=0), train, l2=1e-3)
    >>> infl = fairness_influence(model, train, meta, l2=1e-3)
    >>> infl.shape, bool((infl < 0).any())
    (torch.Size([600]), True)
    >>> exact = fairness_influence(model, train, meta, l2=1e-3, method="exact")
    >>> torch.allclose(exact, fairness_influence(model, train, meta, l2=1e-3, method="cg"))
    True
    """
    n_params = _check_common(model, train, meta, metric, l2, damping, method, tol, max_iter)
    _, infl, _ = _group_influence(
        model, train, meta, metric=metric, l2=float(l2), damping=float(damping), method=method,
        tol=float(tol), max_iter=max_iter, gap_only=True, n_params=n_params)
    return infl[:, 0]


def drop_by_influence(model: nn.Module, train: Any, meta: Any, *, fraction: float,
                      metric: str = "equal_opportunity_difference", l2: float = 0.0,
                      damping: float = 0.0, method: str = "auto", tol: float = 1e-10,
                      max_iter: int | None = None) -> Drop:
    """The training rows whose removal is predicted to lower the smooth metric most.

    Drops ``k = round(fraction * len(train))`` rows (at least 1). The metric after dropping a
    set is predicted to first order, without refitting: each group's rate moves by the sum of
    the rows' influences on it, then the largest minus the smallest rate is taken. Rows are
    ranked by :func:`fairness_influence` (most negative first) and the ``k`` consecutive rows in
    that ranking with the lowest predicted metric are returned: the ``k`` most negative, unless
    together they would overshoot (push the disadvantaged group past the other), in which
    case the window slides toward smaller influences. The budget is fixed, so rows with
    positive influence are taken when fewer than ``k`` are negative. The linear prediction
    degrades as the drop set grows; refit to check.

    Parameters
    ----------
    model, train, meta, metric, l2, damping, method, tol, max_iter
        As in :func:`fairness_influence`.
    fraction : float
        Share of the training rows to drop, in (0, 1).

    Returns
    -------
    Drop
        ``(indices, predicted_metric)``: int64 positions in ``train`` (in influence order, most
        negative first) and the 0-dim predicted smooth metric.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.influence import drop_by_influence, fit_to_convergence, smooth_metric
    >>> from fairlib.train import LogisticRegression
    >>> train, meta, test = make_biased_classification(1000, seed=0).split(seed=0)
    >>> model = fit_to_convergence(LogisticRegression(2, seed=0), train, l2=1e-3)
    >>> idx, predicted = drop_by_influence(model, train, meta, fraction=0.05, l2=1e-3)
    >>> len(idx), bool(predicted < smooth_metric(model, meta))
    (30, True)
    >>> keep = torch.ones(len(train), dtype=torch.bool)
    >>> keep[idx] = False
    >>> refit = fit_to_convergence(LogisticRegression(2, seed=0), train.subset(keep), l2=1e-3)
    >>> bool(smooth_metric(refit, meta) < smooth_metric(model, meta))
    True
    """
    n_params = _check_common(model, train, meta, metric, l2, damping, method, tol, max_iter)
    share = check_fraction("fraction", fraction, expected="a fraction in (0, 1)")
    if not 0.0 < share < 1.0:
        raise ValueError(msg_expected("fraction", "a fraction in (0, 1)", repr(fraction)))
    n = len(train.y)
    k = min(max(1, round(share * n)), n - 1) if n > 1 else 1
    rates, infl, (hi, lo) = _group_influence(
        model, train, meta, metric=metric, l2=float(l2), damping=float(damping), method=method,
        tol=float(tol), max_iter=max_iter, gap_only=False, n_params=n_params)
    gap = infl.index_select(1, hi.view(1))[:, 0] - infl.index_select(1, lo.view(1))[:, 0]
    order = torch.argsort(gap, stable=True)
    # every window of k consecutive rows in that order: its predicted rates, from cumulative sums
    cums = torch.cat([torch.zeros_like(infl[:1]), infl[order].cumsum(0)])
    after = rates + (cums[k:] - cums[:-k])  # [N - k + 1, G]
    predicted = after.amax(1) - after.amin(1)
    start = predicted.argmin()  # first minimum: the k most negative unless they overshoot
    return Drop(order[start + torch.arange(k, device=order.device)], predicted[start])


# -- training to the minimum the formula assumes --------------------------------------------------
def fit_to_convergence(model: nn.Module, train: Any, *, l2: float = 0.0, max_iter: int = 500,
                       tol: float = 1e-9) -> nn.Module:
    """Minimise the mean binary cross-entropy plus ``l2/2 · ||θ||²`` by full-batch L-BFGS.

    The influence formula assumes the model sits at this minimum; mini-batch SGD stops near
    it, not at it. Starts from the model's current parameters (refit from scratch: pass a
    freshly initialised model), optimises a float64 copy (float32 on MPS) with
    ``torch.optim.LBFGS`` (strong Wolfe line search) on the model's device in eval mode (no
    dropout), and writes the result back into ``model``. Convex for logistic regression; a
    network reaches a local minimum. Candidate to move into :mod:`fairlib.train`.

    Parameters
    ----------
    model : torch.nn.Module
        One logit per row; changed in place.
    train : FairDataset
        Rows to fit (all at once: one step sees every row).
    l2 : float, default 0.0
        L2 penalty on every trainable parameter (as ``weight_decay`` in :func:`fairlib.train.fit`).
    max_iter : int, default 500
        L-BFGS iterations.
    tol : float, default 1e-9
        Stop when the largest absolute gradient entry is below it; a ``RuntimeWarning`` says
        when the iterations ran out first (gradient above ``sqrt(tol)``).

    Returns
    -------
    torch.nn.Module
        ``model``, fitted.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.influence import fit_to_convergence
    >>> from fairlib.train import LogisticRegression, evaluate
    >>> data = make_biased_classification(500, seed=0)
    >>> model = fit_to_convergence(LogisticRegression(2, seed=0), data, l2=1e-3)
    >>> bool(evaluate(model, data).overall["accuracy"] > 0.8)
    True
    """
    _check_model(model)
    _check_data("train", train)
    l2 = check_nonnegative("l2", l2)
    max_iter = check_positive_int("max_iter", max_iter)
    tol = check_finite_positive("tol", tol)
    device = model_device(model)
    x, y = train.X.to(device), train.y.to(device)
    n = len(y)
    with _eval_mode(model):
        fn = _Functional(model, _dtype(device))
        theta = fn.theta.clone().requires_grad_(True)
        slices = _slices(n, len(theta))
        opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=max_iter, tolerance_grad=tol,
                                tolerance_change=1e-15, history_size=50,
                                line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            penalty = (0.5 * l2) * (theta @ theta)
            penalty.backward()
            total = penalty.detach()
            for sl in slices:  # one backward per chunk bounds the memory; gradients accumulate
                part = fn.losses(theta, x[sl], y[sl]).sum() / n
                part.backward()
                total = total + part.detach()
            return total

        opt.step(closure)
        closure()
        worst = float(theta.grad.abs().max())
        fn.write_back(theta.detach())
    if worst > math.sqrt(tol):
        warnings.warn(f"L-BFGS ended (max_iter={max_iter}) with largest gradient entry "
                      f"{worst:.2e} > sqrt(tol)={math.sqrt(tol):.1e}: not at a minimum; raise "
                      "`max_iter` (a ReLU network's kinks can also stop the line search).",
                      RuntimeWarning, stacklevel=2)
    return model

