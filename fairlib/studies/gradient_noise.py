"""Mini-batch gradient noise under a weighting scheme: upweighting vs upsampling.

Written for chapter 2, *Reweighing and balancing* (``notebooks/02_reweighing_and_balancing.ipynb``).

One SGD step estimates the gradient from a mini-batch of ``b`` rows ``i_1 .. i_b``, drawn
with probabilities ``q_i``, whose per-sample gradients ``g_i`` are multiplied by weights
``w_i``::

    g_hat = (1 / b) * sum_j w_{i_j} g_{i_j}.

*Upweighting* draws uniformly (``q_i = 1 / N``) and weighs the loss (``w_i`` from the
strategy); *upsampling* draws with ``q_i = w_i / N`` and leaves the loss unweighted
(``w_i = 1``). Both have the same expectation ``mu = (1 / N) sum_i w_i g_i``, the full-batch
gradient of the weighted loss, but not the same variance. Per draw,

    sigma^2 = sum_i q_i ||w_i g_i - mu||^2,

and the total variance (trace of the covariance) of ``g_hat`` is ``sigma^2 / b`` with
replacement, times ``(N - b) / (N - 1)`` for uniform draws without replacement (one batch
of a shuffled epoch). The two per-draw variances differ by

    sigma^2_upweight - sigma^2_upsample = (1 / N) sum_i w_i (w_i - 1) ||g_i||^2,

which is ``c (N / ESS - 1) >= 0`` when every ``||g_i||^2 = c`` (``ESS`` is Kish's effective
sample size of the weights, mean weight 1). This is the argument of Li et al.,
"Upsample or Upweight?" (arXiv 2410.04579, Theorems 1-3; methods.md §9).

The functions here take per-sample gradients (:func:`fairlib.train.per_sample_grads`), turn
a strategy into its draw scheme, and give the exact moments of ``g_hat`` as well as Monte Carlo draws of
it, so the two can be checked against each other. Everything stays on the device of the
inputs; the host reads happen in argument checks only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .._validation import MSG_TYPE, check_positive_int
from ..train import per_sample_grads
from ..weighting import (
    ERM,
    Batch,
    GroupBalancedSampling,
    GroupUpweighting,
    Reweighing,
    WeightingStrategy,
)

__all__ = [
    "DrawScheme",
    "GradientMoments",
    "draw_scheme",
    "minibatch_gradient_moments",
    "per_sample_gradients",
    "sample_minibatch_gradients",
]


def _check_grads(grads: object) -> torch.Tensor:
    if not isinstance(grads, torch.Tensor) or grads.ndim != 2 or not grads.is_floating_point():
        got = (f"shape {tuple(grads.shape)}, dtype {grads.dtype}"
               if isinstance(grads, torch.Tensor) else type(grads).__name__)
        raise ValueError(MSG_TYPE.format(name="grads",
                                         expected="a float tensor [N, P] of per-sample gradients",
                                         got=got))
    if grads.shape[0] == 0:
        raise ValueError(MSG_TYPE.format(name="grads", expected="non-empty", got="0 rows"))
    return grads


@dataclass(frozen=True)
class DrawScheme:
    """How one mini-batch gradient is formed: draw rows, then weigh their gradients.

    Parameters
    ----------
    probabilities : torch.Tensor
        Draw probability of every row ``[N]``; must sum to 1 up to 1e-6 and is stored in
        float64, renormalised.
    weights : torch.Tensor
        Loss weight of every row ``[N]`` (>= 0); stored in float64.
    replacement : bool
        Rows drawn with replacement (a weighted sampler), or a uniform sample without
        replacement (one batch of a shuffled epoch).

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.gradient_noise import DrawScheme
    >>> s = DrawScheme.uniform(4, weights=torch.tensor([2.0, 2.0, 0.0, 0.0]))
    >>> s.probabilities.tolist(), s.replacement
    ([0.25, 0.25, 0.25, 0.25], False)
    """

    probabilities: torch.Tensor
    weights: torch.Tensor
    replacement: bool

    def __post_init__(self) -> None:
        p, w = self.probabilities, self.weights
        for name, t in (("probabilities", p), ("weights", w)):
            if not isinstance(t, torch.Tensor) or t.ndim != 1:
                raise ValueError(MSG_TYPE.format(name=name, expected="a 1-d tensor",
                                                 got=getattr(t, "shape", type(t).__name__)))
        if len(p) != len(w):
            raise ValueError(MSG_TYPE.format(name="weights",
                                             expected=f"{len(p)} values (one per row)",
                                             got=len(w)))
        p, w = p.to(torch.float64), w.to(torch.float64)
        if not bool((p >= 0).all()) or abs(float(p.sum()) - 1.0) > 1e-6:
            raise ValueError(MSG_TYPE.format(name="probabilities",
                                             expected="non-negative and summing to 1",
                                             got=f"sum {float(p.sum())!r}"))
        if not bool((w >= 0).all()):
            raise ValueError(MSG_TYPE.format(name="weights", expected="non-negative",
                                             got=f"minimum {float(w.min())!r}"))
        if not self.replacement and float(p.max() - p.min()) > 1e-12:
            raise ValueError(
                "Expected `probabilities` to be uniform when `replacement` is False (a batch "
                "of a shuffled epoch), but got unequal probabilities. Draw with replacement.")
        object.__setattr__(self, "probabilities", p / p.sum())  # float64, exactly normalised
        object.__setattr__(self, "weights", w)

    @classmethod
    def uniform(cls, n: int, *, weights: torch.Tensor | None = None,
                replacement: bool = False, device: torch.device | str | None = None,
                ) -> DrawScheme:
        """Uniform draws over ``n`` rows (shuffling), with optional loss weights."""
        check_positive_int("n", n)
        if weights is not None:
            device = weights.device
        p = torch.full((n,), 1.0 / n, dtype=torch.float64, device=device)
        w = torch.ones(n, dtype=torch.float64, device=device) if weights is None else weights
        return cls(p, w, replacement)

    def __len__(self) -> int:
        return len(self.probabilities)


@dataclass(frozen=True)
class GradientMoments:
    """Mean and total variance of a mini-batch gradient estimate.

    Attributes
    ----------
    mean : torch.Tensor
        Expected gradient ``[P]``.
    total_variance : torch.Tensor
        Trace of the covariance of the estimate (0-d): the expected squared distance of
        one mini-batch gradient from ``mean``.
    batch_size : int
        Rows per mini-batch.
    """

    mean: torch.Tensor
    total_variance: torch.Tensor
    batch_size: int

    @classmethod
    def from_samples(cls, samples: torch.Tensor, batch_size: int) -> GradientMoments:
        """Sample mean and unbiased total variance of drawn mini-batch gradients ``[K, P]``.

        Examples
        --------
        >>> import torch
        >>> from fairlib.studies.gradient_noise import GradientMoments
        >>> m = GradientMoments.from_samples(torch.tensor([[1.0, 0.0], [3.0, 2.0]]), 8)
        >>> m.mean.tolist(), float(m.total_variance)
        ([2.0, 1.0], 4.0)
        """
        if not isinstance(samples, torch.Tensor) or samples.ndim != 2 or len(samples) < 2:
            raise ValueError(MSG_TYPE.format(
                name="samples", expected="a tensor [K, P] with K >= 2 mini-batch gradients",
                got=getattr(samples, "shape", type(samples).__name__)))
        return cls(samples.mean(0), samples.var(0, unbiased=True).sum(), batch_size)


#: The general helper now lives in :mod:`fairlib.train`; this name is kept for the chapter.
per_sample_gradients = per_sample_grads


def _full_batch(train: Any) -> Batch:
    return Batch(train.X, train.y, train.group, torch.arange(len(train), device=train.device))


def draw_scheme(strategy: WeightingStrategy, train: Any) -> DrawScheme:
    """The draw probabilities and loss weights that ``strategy`` uses on ``train``.

    The strategy is set up on ``train`` (as :func:`fairlib.train.fit` does); a
    temperature schedule is read at its start. Supported are the static strategies:
    :class:`~fairlib.weighting.ERM`, :class:`~fairlib.weighting.Reweighing` (as loss
    weights or, with ``mode="upsample"``, as a sampler),
    :class:`~fairlib.weighting.GroupUpweighting` and
    :class:`~fairlib.weighting.GroupBalancedSampling`.

    Parameters
    ----------
    strategy : WeightingStrategy
        One of the supported strategies.
    train : FairDataset
        The training data.

    Returns
    -------
    DrawScheme
        Uniform draws without replacement with the strategy's weights, or weighted draws
        with replacement and unit weights.

    Raises
    ------
    TypeError
        For a strategy whose weights depend on the model or the losses (GroupDRO, JTT,
        FairBatch, ...): it has no fixed scheme.

    Examples
    --------
    >>> import math
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.gradient_noise import draw_scheme
    >>> from fairlib.weighting import GroupBalancedSampling, GroupUpweighting
    >>> data = make_biased_classification(400, seed=0)
    >>> up = draw_scheme(GroupUpweighting(math.inf, groups="group"), data)
    >>> down = draw_scheme(GroupBalancedSampling(math.inf, groups="group"), data)
    >>> bool(((up.weights / len(data) - down.probabilities).abs() < 1e-15).all())
    True
    """
    supported = (ERM, Reweighing, GroupUpweighting, GroupBalancedSampling)
    if type(strategy) not in supported:
        raise TypeError(MSG_TYPE.format(
            name="strategy",
            expected="one of " + ", ".join(s.__name__ for s in supported)
            + " (static schemes)",
            got=type(strategy).__name__))
    n = len(train)
    strategy.setup(train, device=train.device)
    if isinstance(strategy, GroupBalancedSampling):
        p = strategy.sample_probabilities().to(train.device)
        return DrawScheme(p, torch.ones_like(p), True)
    if isinstance(strategy, Reweighing):
        w = strategy.sample_weights_.to(torch.float64)
        if strategy.mode == "upsample":
            return DrawScheme(w / w.sum(), torch.ones_like(w), True)
        return DrawScheme.uniform(n, weights=w)
    ones = torch.ones(n, dtype=torch.float64, device=train.device)
    return DrawScheme.uniform(n, weights=strategy.weights(_full_batch(train), ones, None))


def _check_scheme(grads: torch.Tensor, scheme: DrawScheme, batch_size: int) -> None:
    if not isinstance(scheme, DrawScheme):
        raise TypeError(MSG_TYPE.format(name="scheme", expected="a DrawScheme",
                                        got=type(scheme).__name__))
    if len(scheme) != len(grads):
        raise ValueError(MSG_TYPE.format(
            name="scheme", expected=f"a scheme over {len(grads)} rows (as many as `grads`)",
            got=f"one over {len(scheme)} rows"))
    check_positive_int("batch_size", batch_size)
    if not scheme.replacement and batch_size > len(grads):
        raise ValueError(MSG_TYPE.format(
            name="batch_size", expected=f"at most {len(grads)} without replacement",
            got=batch_size))


def minibatch_gradient_moments(grads: torch.Tensor, scheme: DrawScheme, *,
                               batch_size: int) -> GradientMoments:
    """Exact mean and total variance of the mini-batch gradient under ``scheme``.

    ``mean = sum_i q_i w_i g_i`` and ``total_variance = sigma^2 / b`` with the per-draw
    ``sigma^2 = sum_i q_i ||w_i g_i - mean||^2``; for uniform draws without replacement
    the finite-population factor ``(N - b) / (N - 1)`` applies (module docstring).

    Parameters
    ----------
    grads : torch.Tensor
        Per-sample gradients ``[N, P]`` (e.g. from :func:`per_sample_gradients`).
    scheme : DrawScheme
        Draw probabilities and weights, e.g. from :func:`draw_scheme`.
    batch_size : int
        Rows per mini-batch ``b``.

    Returns
    -------
    GradientMoments
        float64, on the device of ``grads``.

    Examples
    --------
    Four samples, the last two a minority with gradient 1, the others 0; both schemes
    give the minority half the total weight.

    >>> import torch
    >>> from fairlib.studies.gradient_noise import DrawScheme, minibatch_gradient_moments
    >>> g = torch.tensor([[0.0], [0.0], [0.0], [1.0]])
    >>> up = DrawScheme.uniform(4, weights=torch.tensor([2 / 3, 2 / 3, 2 / 3, 2.0]),
    ...                         replacement=True)
    >>> down = DrawScheme(torch.tensor([1 / 6, 1 / 6, 1 / 6, 1 / 2]), torch.ones(4), True)
    >>> [minibatch_gradient_moments(g, s, batch_size=1).mean.item() for s in (up, down)]
    [0.5, 0.5]
    >>> [minibatch_gradient_moments(g, s, batch_size=1).total_variance.item() for s in (up, down)]
    [0.75, 0.25]
    """
    grads = _check_grads(grads)
    _check_scheme(grads, scheme, batch_size)
    q = scheme.probabilities.to(grads.device)
    v = scheme.weights.to(grads.device)[:, None] * grads.to(torch.float64)
    mean = q @ v
    dev = v - mean
    per_draw = q @ (dev * dev).sum(1)
    var = per_draw / batch_size
    if not scheme.replacement:
        n = len(grads)
        var = var * ((n - batch_size) / (n - 1) if n > 1 else 0.0)
    return GradientMoments(mean, var, batch_size)


def sample_minibatch_gradients(grads: torch.Tensor, scheme: DrawScheme, *, batch_size: int,
                               n_batches: int, generator: torch.Generator | None = None,
                               chunk_size: int = 128) -> torch.Tensor:
    """Draw ``n_batches`` mini-batches under ``scheme`` and return their gradients.

    Each mini-batch is drawn independently: ``b`` rows with replacement with the scheme's
    probabilities, or a uniform sample of ``b`` distinct rows (the marginal of one batch of
    a shuffled epoch). Its gradient is ``(1 / b) sum_j w_{i_j} g_{i_j}``.

    Parameters
    ----------
    grads : torch.Tensor
        Per-sample gradients ``[N, P]``.
    scheme : DrawScheme
        Draw probabilities and weights.
    batch_size, n_batches : int
        Rows per mini-batch and number of mini-batches.
    generator : torch.Generator, optional
        Source of randomness (on the device of ``grads``); same seed, same draws.
    chunk_size : int, default 128
        Mini-batches formed per vectorised step (bounds the memory).

    Returns
    -------
    torch.Tensor
        float64 ``[n_batches, P]`` on the device of ``grads``.

    Examples
    --------
    >>> import torch
    >>> from fairlib.studies.gradient_noise import (DrawScheme, GradientMoments,
    ...     minibatch_gradient_moments, sample_minibatch_gradients)
    >>> g = torch.randn(500, 3, generator=torch.Generator().manual_seed(0))
    >>> s = DrawScheme.uniform(500)
    >>> draws = sample_minibatch_gradients(g, s, batch_size=50, n_batches=4000,
    ...                                    generator=torch.Generator().manual_seed(1))
    >>> exact = minibatch_gradient_moments(g, s, batch_size=50)
    >>> mc = GradientMoments.from_samples(draws, 50)
    >>> bool(abs(mc.total_variance / exact.total_variance - 1) < 0.05)
    True
    """
    grads = _check_grads(grads)
    _check_scheme(grads, scheme, batch_size)
    check_positive_int("n_batches", n_batches)
    check_positive_int("chunk_size", chunk_size)
    device = grads.device
    q = scheme.probabilities.to(device)
    w = scheme.weights.to(device)
    g64 = grads.to(torch.float64)
    n = len(grads)
    out = []
    for start in range(0, n_batches, chunk_size):
        k = min(chunk_size, n_batches - start)
        if scheme.replacement:
            idx = torch.multinomial(q, k * batch_size, replacement=True,
                                    generator=generator).view(k, batch_size)
        else:
            # the b largest of n uniform keys: a uniformly random set of b distinct rows
            keys = torch.rand(k, n, generator=generator, device=device, dtype=torch.float64)
            idx = keys.topk(batch_size, dim=1).indices
        out.append(torch.einsum("kb,kbp->kp", w[idx], g64[idx]) / batch_size)
    return torch.cat(out)
