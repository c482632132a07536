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

The chapter's comparison and its gradient-noise study (registered at import):

- the methods ``"Upweighting"``, ``"Balanced sampling"`` and ``"Cooldown sampling"``
  (:class:`~fairlib.weighting.GroupUpweighting` / :class:`~fairlib.weighting.GroupBalancedSampling`
  with a temperature given as text, so ``"inf"`` fits in a :class:`~fairlib.experiments.RunSpec`),
  and the per-run metrics ``"balancing_curve"`` (meta-split metrics after every epoch),
  ``"prior_corrected"`` (test metrics at the threshold that undoes the label-prior shift,
  :func:`corrected_threshold`) and ``"train_split_rates"`` (metrics on the training split);
- :func:`tuning_grid` (Adult by sex, every scheme with the same learning-rate grid) and
  :func:`german_grid` (the German credit exercise); :func:`learning_curves` reads the curves
  back from the records;
- :func:`base_rate_table` and :func:`temperature_shares` (what a weighting does to the
  training distribution), :func:`scheme_noise`, :func:`imbalance_curve`,
  :func:`variance_ratios` and :func:`gradient_norms` (the noise study) and
  :func:`plot_gradient_noise`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._validation import MSG_TYPE, check_positive_int
from ..experiments import RunSpec, TrainedRun, register_method, register_metric
from ..experiments.execute import split_metrics
from ..train import evaluate, per_sample_grads
from ..weighting import (
    ERM,
    Batch,
    Cooldown,
    GroupBalancedSampling,
    GroupUpweighting,
    Reweighing,
    WeightingStrategy,
    clone,
    effective_sample_size,
    temperature_probabilities,
)

__all__ = [
    "CHAPTER",
    "CURVE_METRICS",
    "METHODS",
    "DrawScheme",
    "GradientMoments",
    "SchemeNoise",
    "base_rate_table",
    "cooldown_switch",
    "corrected_threshold",
    "draw_scheme",
    "german_grid",
    "gradient_norms",
    "imbalance_curve",
    "learning_curves",
    "minibatch_gradient_moments",
    "minority_rows",
    "parse_tau",
    "per_sample_gradients",
    "plot_gradient_noise",
    "sample_minibatch_gradients",
    "scheme_noise",
    "temperature_shares",
    "tuning_grid",
    "variance_ratios",
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


# -- the chapter's comparison -----------------------------------------------------------------
#: The notebook this module was written for.
CHAPTER = "02_reweighing_and_balancing"
#: The chapter's five training schemes, in the order of its tables.
METHODS: tuple[str, ...] = ("ERM", "Reweighing", "Upweighting", "Balanced sampling",
                            "Cooldown sampling")
#: Metrics that the ``"balancing_curve"`` metric records after every epoch (meta split).
CURVE_METRICS: tuple[str, ...] = ("accuracy", "demographic_parity_difference",
                                  "equal_opportunity_difference")


def parse_tau(tau: str | float) -> float:
    """A temperature given as a number or as text (``"inf"``, ``"5"``) as a float.

    Examples
    --------
    >>> from fairlib.studies.gradient_noise import parse_tau
    >>> parse_tau("inf"), parse_tau("2.5"), parse_tau(3)
    (inf, 2.5, 3.0)
    """
    try:
        value = float(tau)
    except (TypeError, ValueError):
        value = math.nan
    if not value > 0:  # also NaN
        raise ValueError(MSG_TYPE.format(name="tau", expected="a positive number or 'inf'",
                                         got=repr(tau)))
    return value


def cooldown_switch(epochs: int, fraction: float) -> int:
    """Epochs at the high temperature before Cooldown switches to ``tau = 1``.

    ``round(fraction * epochs)``, kept between 1 and ``epochs``.

    Examples
    --------
    >>> from fairlib.studies.gradient_noise import cooldown_switch
    >>> cooldown_switch(6, 0.5), cooldown_switch(1, 0.5), cooldown_switch(4, 1.0)
    (3, 1, 4)
    """
    check_positive_int("epochs", epochs)
    return min(epochs, max(1, round(fraction * epochs)))


def _upweighting(*, tau: str | float = "inf", groups: str = "group_label") -> GroupUpweighting:
    """Group upweighting at temperature ``tau`` (text or number)."""
    return GroupUpweighting(parse_tau(tau), groups=groups)


def _balanced_sampling(*, tau: str | float = "inf",
                       groups: str = "group_label") -> GroupBalancedSampling:
    """Group-balanced sampling at temperature ``tau`` (text or number)."""
    return GroupBalancedSampling(parse_tau(tau), groups=groups)


def _cooldown_sampling(*, tau: str | float = "inf", switch_at: int = 1,
                       groups: str = "group_label") -> GroupBalancedSampling:
    """Balanced sampling at ``tau`` for ``switch_at`` epochs, then at ``tau = 1`` (Cooldown)."""
    return GroupBalancedSampling(Cooldown(parse_tau(tau), switch_at=switch_at), groups=groups)


for _name, _factory in zip(METHODS[2:], (_upweighting, _balanced_sampling, _cooldown_sampling),
                           strict=True):
    register_method(_name, _factory, replace=True)


def corrected_threshold(strategy: WeightingStrategy, train: Any) -> float:
    """The score threshold that undoes the label-prior shift of a balancing strategy.

    A model trained where the share of positives is ``pi_tau`` instead of the natural
    ``pi`` has its odds scaled by ``r = odds(pi_tau) / odds(pi)``; predicting 1 when the
    corrected odds exceed 1 means a score above ``t = r / (1 + r)``. ``pi_tau`` is read
    off the strategy's draw scheme (:func:`draw_scheme` on an unfitted clone). Strategies
    that keep the natural prior on average, or change it over training (a Cooldown
    schedule ends at the natural frequencies), get 0.5.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.gradient_noise import corrected_threshold
    >>> from fairlib.weighting import ERM, GroupUpweighting
    >>> data = make_biased_classification(400, seed=0)
    >>> pi = float(data.y.double().mean())
    >>> corrected_threshold(ERM(), data)
    0.5
    >>> abs(corrected_threshold(GroupUpweighting(), data) - (1 - pi)) < 1e-9  # pi_tau = 1/2
    True
    """
    static = (isinstance(strategy, (GroupUpweighting, GroupBalancedSampling))
              and not isinstance(strategy.tau, Cooldown))
    if not static:
        return 0.5
    y = train.y.to(torch.float64)
    scheme = draw_scheme(clone(strategy), train)
    mass = scheme.probabilities * scheme.weights
    pi = float(y.mean())
    pi_tau = float((mass * y.to(mass.device)).sum() / mass.sum())
    r = (pi_tau / (1 - pi_tau)) / (pi / (1 - pi))
    return r / (1 + r)


@register_metric("balancing_curve", replace=True)
def _balancing_curve(run: TrainedRun) -> dict[str, float]:
    """Meta-split :data:`CURVE_METRICS` after every epoch, as ``curve_<metric>[<epoch>]``."""
    frame = run.history.frame
    return {f"curve_{m}[{int(e)}]": float(v) for m in CURVE_METRICS
            for e, v in frame[f"meta_{m}"].items()}


@register_metric("prior_corrected", replace=True)
def _prior_corrected(run: TrainedRun) -> dict[str, float]:
    """Test metrics at :func:`corrected_threshold`, as ``corrected_test_<metric>``."""
    t = corrected_threshold(run.strategy, run.train)
    report = evaluate(run.model, run.test, threshold=t)
    return {"corrected_threshold": t, **split_metrics(report, "corrected_test")}


@register_metric("train_split_rates", replace=True)
def _train_split_rates(run: TrainedRun) -> dict[str, float]:
    """The record's metrics on the training split, as ``train_<metric>``."""
    return split_metrics(evaluate(run.model, run.train), "train")


def _model(model: str, hidden: int) -> tuple[str, dict[str, Any]]:
    if model not in ("logistic", "mlp"):
        raise ValueError(MSG_TYPE.format(name="model", expected="'logistic' or 'mlp'", got=repr(model)))
    return model, ({"hidden": [hidden]} if model == "mlp" else {})


def tuning_grid(*, model: str = "logistic", hidden: int = 32, epochs: int = 6,
                batch_size: int = 256, lrs: Sequence[float] = (0.02, 0.05, 0.1),
                tau: str = "inf", balance: str = "group_label", cooldown_fraction: float = 0.5,
                n_rows: int = 0, device: str = "cpu") -> list[RunSpec]:
    """The chapter's comparison on Adult (sex): every scheme of :data:`METHODS` at each of
    the learning rates ``lrs`` (SGD with momentum), the same budget for every method.

    Upweighting, balanced sampling and Cooldown balance ``balance`` groups at temperature
    ``tau``; Cooldown returns to ``tau = 1`` after :func:`cooldown_switch` epochs. Every
    run records the meta-split learning curves and the prior-corrected test metrics.
    ``n_rows > 0`` trains on a seeded subsample of that many Adult rows before the split.

    Examples
    --------
    >>> from collections import Counter
    >>> from fairlib.studies.gradient_noise import tuning_grid
    >>> grid = tuning_grid(lrs=[0.05, 0.1])
    >>> sorted(Counter(s.method for s in grid).values())
    [2, 2, 2, 2, 2]
    >>> dict(grid[-1].method_params)
    {'groups': 'group_label', 'switch_at': 3, 'tau': 'inf'}
    """
    name, params = _model(model, hidden)
    data = {"sensitive": "sex", **({"n": n_rows} if n_rows else {})}
    balancing = {"tau": str(tau), "groups": balance}
    method_params = {"ERM": {}, "Reweighing": {}, "Upweighting": balancing,
                     "Balanced sampling": balancing,
                     "Cooldown sampling": {**balancing,
                                           "switch_at": cooldown_switch(epochs, cooldown_fraction)}}
    return [RunSpec("adult", name, method, dataset_params=data, model_params=params,
                    method_params=method_params[method],
                    train={"epochs": epochs, "batch_size": batch_size, "optimizer": "sgd",
                           "lr": float(lr), "device": device},
                    metrics=["balancing_curve", "prior_corrected"])
            for method in METHODS for lr in lrs]


def german_grid(*, model: str = "logistic", hidden: int = 32, epochs: int = 18,
                batch_size: int = 64, lrs: Sequence[float] = (0.02, 0.05, 0.1),
                german_attribute: str = "age", device: str = "cpu") -> list[RunSpec]:
    """ERM and Reweighing on German credit (``german_attribute``), each at the learning
    rates ``lrs``; every run also records its metrics on the training split.

    Examples
    --------
    >>> from fairlib.studies.gradient_noise import german_grid
    >>> [(s.method, s.train_settings["lr"]) for s in german_grid(lrs=[0.1])]
    [('ERM', 0.1), ('Reweighing', 0.1)]
    """
    name, params = _model(model, hidden)
    return [RunSpec("german", name, method, dataset_params={"sensitive": german_attribute},
                    model_params=params,
                    train={"epochs": epochs, "batch_size": batch_size, "optimizer": "sgd",
                           "lr": float(lr), "device": device},
                    metrics=["train_split_rates"])
            for method in ("ERM", "Reweighing") for lr in lrs]


def learning_curves(runs: pd.DataFrame, metrics: Sequence[str] = CURVE_METRICS) -> pd.DataFrame:
    """The ``"balancing_curve"`` columns of ``runs`` as a long table.

    Returns
    -------
    pandas.DataFrame
        One row per (method, seed, epoch), one column ``meta_<metric>`` per metric.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairlib.studies.gradient_noise import learning_curves
    >>> runs = pd.DataFrame({"method": ["ERM"], "seed": [0], "curve_accuracy[1]": [0.8],
    ...                      "curve_accuracy[2]": [0.85]})
    >>> learning_curves(runs, ["accuracy"])["meta_accuracy"].tolist()
    [0.8, 0.85]
    """
    frames = []
    for metric in metrics:
        cols = {c: int(m.group(1)) for c in runs.columns
                if (m := re.fullmatch(rf"curve_{re.escape(metric)}\[(\d+)\]", str(c)))}
        if not cols:
            raise ValueError(MSG_TYPE.format(name="runs", expected=f"curve_{metric}[<epoch>] columns "
                                             "(the 'balancing_curve' metric)", got="none"))
        long = runs[["method", "seed", *cols]].melt(id_vars=["method", "seed"], var_name="epoch")
        long = long.assign(epoch=long["epoch"].map(cols)).rename(columns={"value": f"meta_{metric}"})
        frames.append(long.set_index(["method", "seed", "epoch"]))
    return pd.concat(frames, axis=1).dropna(how="all").reset_index()


# -- what a weighting does to the training distribution -------------------------------------
def base_rate_table(data: Any, weights: torch.Tensor | None = None) -> pd.DataFrame:
    """Rows, base rate ``P(Y = 1 | group)`` and weighted base rate of every group.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.gradient_noise import base_rate_table
    >>> from fairlib.weighting import reweighing_weights
    >>> data = make_biased_classification(500, seed=0)
    >>> table = base_rate_table(data, reweighing_weights(data.y, data.group))
    >>> bool(table["weighted base rate"].round(12).nunique() == 1)
    True
    """
    y = data.y.to(torch.float64)
    w = torch.ones_like(y) if weights is None else weights.to(y.device, torch.float64)
    rows = {}
    for a, name in enumerate(data.group_categories):
        m = data.group == a
        rows[name] = {"rows": int(m.sum()), "base rate": float(y[m].mean()),
                      "weighted base rate": float((w * y)[m].sum() / w[m].sum())}
    return pd.DataFrame(rows).T.rename_axis(data.group_name).astype({"rows": int})


def temperature_shares(train: Any, taus: Sequence[float], *,
                       groups: str = "group_label") -> pd.DataFrame:
    """Each (group, label) cell's share of the training signal at each temperature.

    With ``groups="group_label"`` the cells get ``p(cell; tau)``; with ``"group"`` the
    groups get ``p(group; tau)`` and keep their natural label mix inside. The last rows
    give the share of positives and of each group.

    Examples
    --------
    >>> import math
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.gradient_noise import temperature_shares
    >>> shares = temperature_shares(make_biased_classification(500, seed=0), [1.0, math.inf])
    >>> float(shares.loc["P(Y = 1)", "τ = ∞"])
    0.5
    """
    cells = torch.bincount(train.cells.cpu(), minlength=2 * train.n_groups)
    by_group = cells.view(-1, 2).sum(1)
    out = {}
    for tau in taus:
        if groups == "group_label":
            p = temperature_probabilities(cells, tau)
        else:
            within = cells.double() / by_group.repeat_interleave(2).clamp_min(1)
            p = temperature_probabilities(by_group, tau).repeat_interleave(2) * within
        p = p.double()
        shares = dict(zip(train.cell_names, p.tolist(), strict=True))
        shares["P(Y = 1)"] = float(p[1::2].sum())
        shares.update({f"P({g})": float(p[2 * a:2 * a + 2].sum())
                       for a, g in enumerate(train.group_categories)})
        out["τ = ∞" if math.isinf(tau) else f"τ = {tau:g}"] = shares
    return pd.DataFrame(out)


# -- the noise study ------------------------------------------------------------------------
def _balancers(tau: float, groups: str) -> dict[str, WeightingStrategy]:
    return {"Upweighting": GroupUpweighting(tau, groups=groups),
            "Balanced sampling": GroupBalancedSampling(tau, groups=groups)}


@dataclass
class SchemeNoise:
    """Mini-batch gradients of one frozen model under ERM, upweighting and balanced sampling.

    Attributes
    ----------
    schemes, exact, draws : dict
        Per scheme: its :class:`DrawScheme`, exact :class:`GradientMoments` and drawn
        mini-batch gradients ``[n_batches, P]``.
    table : pandas.DataFrame
        Exact and Monte Carlo mean norm and total variance per scheme.
    stats : dict
        ``n_params``; ``mean_gap_rel`` (relative gap of the two balanced means);
        ``var_up``, ``var_bs``, ``var_ratio``; ``mc_rel_err`` and ``mc_mean_err_rel``
        (Monte Carlo against exact: relative variance error, mean error in standard
        deviations of one mini-batch gradient); ``ess_up_share`` (Kish ESS of the
        upweighting weights over N); ``identity_err`` (relative error of the variance
        identity of the module docstring, both schemes with replacement).
    """

    schemes: dict[str, DrawScheme]
    exact: dict[str, GradientMoments]
    draws: dict[str, torch.Tensor]
    table: pd.DataFrame
    stats: dict[str, float]


def scheme_noise(grads: torch.Tensor, train: Any, *, tau: float, groups: str, batch_size: int,
                 n_batches: int, seed: int = 0) -> SchemeNoise:
    """Compare the mini-batch gradients of upweighting, balanced sampling and ERM.

    Parameters
    ----------
    grads : torch.Tensor
        Per-sample gradients ``[N, P]`` of the frozen model on ``train``.
    train : FairDataset
        The rows of ``grads``.
    tau, groups
        Temperature and groups of the two balancing schemes.
    batch_size, n_batches : int
        Rows per mini-batch, and mini-batches drawn per scheme for the Monte Carlo check.
    seed : int
        Seeds the draws.

    Examples
    --------
    >>> import math, torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.gradient_noise import per_sample_gradients, scheme_noise
    >>> from fairlib.train import LogisticRegression
    >>> data = make_biased_classification(300, seed=0)
    >>> g = per_sample_gradients(LogisticRegression(2, seed=0), data.X, data.y)
    >>> out = scheme_noise(g, data, tau=math.inf, groups="group", batch_size=16, n_batches=50)
    >>> out.stats["var_ratio"] > 1, out.stats["mean_gap_rel"] < 1e-10
    (True, True)
    """
    schemes = {k: draw_scheme(s, train) for k, s in {**_balancers(tau, groups), "ERM": ERM()}.items()}
    gen = torch.Generator(device=grads.device).manual_seed(seed)
    exact = {k: minibatch_gradient_moments(grads, s, batch_size=batch_size) for k, s in schemes.items()}
    draws = {k: sample_minibatch_gradients(grads, s, batch_size=batch_size, n_batches=n_batches,
                                           generator=gen) for k, s in schemes.items()}
    mc = {k: GradientMoments.from_samples(d, batch_size) for k, d in draws.items()}
    table = pd.DataFrame({
        "|exact mean|": {k: float(exact[k].mean.norm()) for k in schemes},
        "|MC mean - exact mean|": {k: float((mc[k].mean - exact[k].mean).norm()) for k in schemes},
        "exact total variance": {k: float(exact[k].total_variance) for k in schemes},
        "MC total variance": {k: float(mc[k].total_variance) for k in schemes},
    }).rename_axis(f"scheme (b = {batch_size})")
    up, bs = schemes["Upweighting"], schemes["Balanced sampling"]
    v_rep = minibatch_gradient_moments(grads, DrawScheme(up.probabilities, up.weights, True),
                                       batch_size=1).total_variance
    v_bs1 = minibatch_gradient_moments(grads, bs, batch_size=1).total_variance
    w = up.weights
    rhs = (w * (w - 1) * (grads.to(torch.float64) ** 2).sum(1)).mean()
    var_up, var_bs = exact["Upweighting"].total_variance, exact["Balanced sampling"].total_variance
    stats = {
        "n_params": int(grads.shape[1]),
        "mean_gap_rel": float((exact["Upweighting"].mean - exact["Balanced sampling"].mean).norm()
                              / exact["Upweighting"].mean.norm()),
        "var_up": float(var_up), "var_bs": float(var_bs), "var_ratio": float(var_up / var_bs),
        "mc_rel_err": max(abs(float(mc[k].total_variance / exact[k].total_variance) - 1)
                          for k in schemes),
        "mc_mean_err_rel": max(float((mc[k].mean - exact[k].mean).norm()
                                     / exact[k].total_variance.sqrt()) for k in schemes),
        "ess_up_share": float(effective_sample_size(w)) / len(w),
        "identity_err": abs(float(v_rep - v_bs1 - rhs)) / float(v_rep),
    }
    return SchemeNoise(schemes, exact, draws, table, stats)


def minority_rows(data: Any, share: float, minority: int, generator: torch.Generator) -> torch.Tensor:
    """Sorted rows of ``data`` in which group ``minority`` makes up ``share`` of the rows.

    One group is subsampled (uniformly, with ``generator``) and the other kept whole, so
    the result is as large as the share allows.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.gradient_noise import minority_rows
    >>> data = make_biased_classification(1000, minority_fraction=0.3, seed=0)
    >>> rows = minority_rows(data, 0.1, 1, torch.Generator().manual_seed(0))
    >>> round(float((data.group[rows] == 1).double().mean()), 2)
    0.1
    """
    if not 0 < share < 1:
        raise ValueError(MSG_TYPE.format(name="share", expected="in (0, 1)", got=repr(share)))
    is_min = data.group == minority
    n_min, n_maj = int(is_min.sum()), int((~is_min).sum())
    keep_min = min(n_min, round(share / (1 - share) * n_maj))
    keep_maj = min(n_maj, round((1 - share) / share * keep_min))
    picks = []
    for mask, keep in ((is_min, keep_min), (~is_min, keep_maj)):
        rows = torch.nonzero(mask).flatten()
        picks.append(rows[torch.randperm(len(rows), generator=generator)[:keep].to(rows.device)])
    return torch.cat(picks).sort().values


def imbalance_curve(grads: torch.Tensor, train: Any, shares: Sequence[float], *, tau: float,
                    groups: str, batch_size: int, n_batches: int, minority: int,
                    seed: int = 0) -> pd.DataFrame:
    """Exact and Monte Carlo gradient variance of both balancing schemes as group
    ``minority`` is made rarer (:func:`minority_rows`); the natural share is included.

    Shares at which a (group, label) cell would be empty are skipped.

    Returns
    -------
    pandas.DataFrame
        One row per (share, scheme): ``rows``, ``exact`` and ``Monte Carlo`` total
        variance, ``ess share`` (upweighting rows) and ``mean gap`` (relative distance of
        the two schemes' exact means at that share).

    Examples
    --------
    >>> import math, torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.gradient_noise import imbalance_curve, per_sample_gradients
    >>> from fairlib.train import LogisticRegression
    >>> data = make_biased_classification(2000, minority_fraction=0.3, seed=0)
    >>> g = per_sample_gradients(LogisticRegression(2, seed=0), data.X, data.y)
    >>> c = imbalance_curve(g, data, [0.1], tau=math.inf, groups="group", batch_size=16,
    ...                     n_batches=20, minority=1)
    >>> sorted(c["scheme"].unique()), len(c)
    (['Balanced sampling', 'Upweighting'], 4)
    """
    natural = float((train.group == minority).double().mean())
    share_gen = torch.Generator().manual_seed(seed)
    gen = torch.Generator(device=grads.device).manual_seed(seed)
    rows_out = []
    for share in sorted(set(shares) | {natural}, reverse=True):
        rows = minority_rows(train, share, minority, share_gen)
        sub, g = train.subset(rows), grads[rows]
        if (torch.bincount(sub.cells, minlength=2 * sub.n_groups) == 0).any():
            continue  # an empty (group, label) cell cannot be balanced
        means = {}
        for k, strategy in _balancers(tau, groups).items():
            s = draw_scheme(strategy, sub)
            exact = minibatch_gradient_moments(g, s, batch_size=batch_size)
            sim = sample_minibatch_gradients(g, s, batch_size=batch_size, n_batches=n_batches,
                                             generator=gen)
            means[k] = exact.mean
            rows_out.append({"share": float((sub.group == minority).double().mean()), "scheme": k,
                             "rows": len(sub), "exact": float(exact.total_variance),
                             "Monte Carlo": float(GradientMoments.from_samples(sim, batch_size)
                                                  .total_variance),
                             "ess share": (float(effective_sample_size(s.weights)) / len(sub)
                                           if k == "Upweighting" else np.nan)})
        gap = float((means["Upweighting"] - means["Balanced sampling"]).norm()
                    / means["Upweighting"].norm())
        rows_out[-1]["mean gap"] = rows_out[-2]["mean gap"] = gap
    return pd.DataFrame(rows_out)


def variance_ratios(grads: torch.Tensor, train: Any, taus: Sequence[float], *, batch_size: int,
                    groups: Sequence[str] = ("group_label", "group")) -> pd.DataFrame:
    """Total variance of upweighting over that of balanced sampling, per temperature
    (rows, ``"τ"``) and grouping (columns).

    Examples
    --------
    >>> import math
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.gradient_noise import per_sample_gradients, variance_ratios
    >>> from fairlib.train import LogisticRegression
    >>> data = make_biased_classification(400, seed=0)
    >>> g = per_sample_gradients(LogisticRegression(2, seed=0), data.X, data.y)
    >>> variance_ratios(g, data, [1.0, math.inf], batch_size=8).shape
    (2, 2)
    """
    out: dict[str, dict[str, float]] = {}
    for mode in groups:
        for tau in taus:
            v = {k: minibatch_gradient_moments(grads, draw_scheme(s, train), batch_size=batch_size)
                 .total_variance for k, s in _balancers(tau, mode).items()}
            label = "∞" if math.isinf(tau) else f"{tau:g}"
            out.setdefault(mode, {})[label] = float(v["Upweighting"] / v["Balanced sampling"])
    return pd.DataFrame(out).rename_axis("τ")


def gradient_norms(grads: torch.Tensor, train: Any, *, cells: bool = True) -> pd.Series:
    """Mean squared per-sample gradient norm per (group, label) cell, or per group.

    Examples
    --------
    >>> import torch
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.studies.gradient_noise import gradient_norms
    >>> data = make_biased_classification(100, seed=0)
    >>> gradient_norms(torch.ones(100, 2), data, cells=False).tolist()
    [2.0, 2.0]
    """
    sq = (grads.to(torch.float64) ** 2).sum(1)
    codes = train.cells if cells else train.group
    names = train.cell_names if cells else train.group_categories
    return pd.Series({name: float(sq[codes == k].mean()) for k, name in enumerate(names)},
                     name="mean squared gradient norm")


def plot_gradient_noise(noise: SchemeNoise, curve: pd.DataFrame, *, natural_share: float,
                        colors: Mapping[str, Any] | None = None) -> Any:
    """The noise figure: (a) the drawn mini-batch gradients of every scheme, projected on the
    expected gradient and on the largest noise direction orthogonal to it; (b) the total
    variance of both balancing schemes against the minority group's share.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    colors = {"ERM": "0.6", "Upweighting": "C0", "Balanced sampling": "C1", **(colors or {})}
    mean = noise.exact["Upweighting"].mean
    e1 = mean / mean.norm().clamp_min(1e-30)
    resid = noise.draws["Upweighting"] - mean
    resid = resid - (resid @ e1)[:, None] * e1
    basis = torch.stack([e1, torch.linalg.svd(resid, full_matrices=False).Vh[0]], 1)
    fig, (ax_cloud, ax_share) = plt.subplots(1, 2, figsize=(11.5, 4.4))
    for k in ("ERM", "Upweighting", "Balanced sampling"):
        xy = (noise.draws[k] @ basis).cpu().numpy()
        ax_cloud.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.35, color=colors[k], linewidths=0,
                         label=f"{k} mini-batches", rasterized=True)
    for k, marker, label in (("ERM", "P", "expected gradient, ERM"),
                             ("Upweighting", "X", "expected gradient, both balanced schemes")):
        ax_cloud.plot(*(noise.exact[k].mean @ basis).cpu().numpy(), marker=marker, color="k",
                      markersize=9, linestyle="none", label=label)
    ax_cloud.set_xlabel("component along the expected gradient")
    ax_cloud.set_ylabel("largest noise direction orthogonal to it")
    legend = ax_cloud.legend(frameon=False, fontsize="small", loc="upper left")
    for handle in legend.legend_handles[:3]:  # the scatter entries: larger, opaque dots
        handle.set_sizes([25])
        handle.set_alpha(1)
    n_batches, b = len(noise.draws["ERM"]), noise.exact["ERM"].batch_size
    ax_cloud.set_title(f"(a) {n_batches} mini-batch gradients, b = {b}", fontsize="medium")
    for k in ("Upweighting", "Balanced sampling"):
        c = curve[curve["scheme"] == k]
        ax_share.plot(c["share"], c["exact"], color=colors[k], label=f"{k}, exact")
        ax_share.plot(c["share"], c["Monte Carlo"], "o", color=colors[k], markersize=5,
                      markerfacecolor="none", label=f"{k}, Monte Carlo")
    ax_share.axvline(natural_share, color="0.5", linestyle=":", linewidth=1)
    ax_share.set_xscale("log")
    ax_share.set_yscale("log")
    ax_share.annotate("natural share", (natural_share, 1), xycoords=("data", "axes fraction"),
                      xytext=(-4, -14), textcoords="offset points", ha="right",
                      fontsize="small", color="0.4")
    ax_share.set_xlabel("minority group's share of the training rows")
    ax_share.set_ylabel("total variance of the mini-batch gradient")
    ax_share.legend(frameon=False, fontsize="small", loc="center left")
    ax_share.set_title("(b) variance against group imbalance", fontsize="medium")
    ax_share.grid(color="0.92", which="both")
    fig.tight_layout()
    return fig
