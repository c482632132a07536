"""Synthetic data: the three causal contexts of Anthis & Veitch, and a biased two-Gaussian task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from .._validation import MSG_TYPE, check_choice
from ._dataset import FairDataset

__all__ = ["CAUSAL_CONTEXTS", "CausalContext", "make_biased_classification", "make_causal_context"]

CAUSAL_CONTEXTS: dict[str, str] = {
    "measurement_error": "demographic_parity",
    "selection_on_label": "equalized_odds",
    "selection_on_predictors": "calibration",
}
ContextKind = Literal["measurement_error", "selection_on_label", "selection_on_predictors"]

_CITATION = (
    "Anthis, J. R. & Veitch, V. (2023), Causal context connects counterfactual fairness "
    "to robust prediction and group fairness, NeurIPS, arXiv:2310.19691."
)


@dataclass(frozen=True, eq=False)
class CausalContext:
    """A biased observed sample, an unbiased target sample, and what a CF predictor may use.

    Attributes
    ----------
    kind : str
        The causal context.
    implied_metric : str
        The group metric that counterfactual fairness is equivalent to in this context:
        ``"demographic_parity"``, ``"equalized_odds"`` or ``"calibration"``.
    observed : FairDataset
        The sample one gets to train on (with the bias).
    target : FairDataset
        An independent sample from the same population without the bias (true labels, no
        selection), for the accuracy that matters.
    fair_features : tuple of str
        Features a counterfactually fair predictor may use (``("x1",)``: ``x2`` is a proxy of A).
    """

    kind: str
    implied_metric: str
    observed: FairDataset
    target: FairDataset
    fair_features: tuple[str, ...]

    def fair_X(self, ds: FairDataset) -> torch.Tensor:
        """Return the columns of ``ds.X`` that a counterfactually fair predictor may use."""
        cols = [ds.feature_names.index(f) for f in self.fair_features]
        return ds.X[:, cols]


def _population(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    # Draw order is part of the specification: it reproduces methods.md §12.3 digit for digit.
    a = rng.random(n) < 0.5
    u = rng.normal(size=n)
    x1 = u + rng.normal(0.0, 0.5, n)
    x2 = a + rng.normal(0.0, 0.5, n)
    y_true = u + rng.normal(0.0, 0.5, n) > 0
    return {"a": a, "x1": x1, "x2": x2, "y_true": y_true}


def _as_dataset(
    p: dict[str, np.ndarray],
    y: np.ndarray,
    kind: str,
    role: str,
    extras: dict[str, np.ndarray] | None = None,
) -> FairDataset:
    return FairDataset(
        X=torch.from_numpy(np.stack([p["x1"], p["x2"]], axis=1).astype(np.float32)),
        y=torch.from_numpy(y.astype(np.int64)),
        sensitive={"a": torch.from_numpy(p["a"].astype(np.int64))},
        categories={"a": ["a=0", "a=1"]},
        feature_names=["x1", "x2"],
        name=f"{kind} ({role})",
        label_name="y",
        extras={k: torch.from_numpy(v.astype(np.int64)) for k, v in (extras or {}).items()},
        description=(
            f"Synthetic causal context '{kind}' ({role} sample): A ~ Bern(1/2), "
            "U ~ N(0,1), X1 = U + N(0,.25), X2 = A + N(0,.25), true label "
            "1[U + N(0,.25) > 0]. Data-generating process designed for fairlib after " + _CITATION
        ),
    )


def make_causal_context(kind: ContextKind, n: int = 20_000, seed: int = 0) -> CausalContext:
    """Generate data for one of the three causal contexts of Anthis & Veitch (2023).

    Reconstruction (not published by the authors; fairlib methods reference §12.3).
    Shared population: ``A ~ Bern(1/2)``,
    ``U ~ N(0, 1)``, ``X1 = U + N(0, 0.5²)`` (not caused by A), ``X2 = A + N(0, 0.5²)``
    (a pure proxy of A), true label ``Ỹ = 1[U + N(0, 0.5²) > 0]``. The bias:

    - ``"measurement_error"``: the recorded label is ``Ỹ`` flipped 1 -> 0 with probability
      0.4 when A = 1 and 0 -> 1 with probability 0.3 when A = 0. Counterfactual fairness
      (CF) then equals demographic parity. The true label is kept as ``extras["y_true"]``.
    - ``"selection_on_label"``: a unit is observed with probability 0.9 (Ỹ=1, A=0),
      0.3 (Ỹ=1, A=1), 0.6 (Ỹ=0). CF equals equalized odds.
    - ``"selection_on_predictors"``: observed with probability 0.9 when ``1[X1 > 0] = A``,
      else 0.3. CF equals calibration.

    Any function of ``x1`` is counterfactually fair here.

    Parameters
    ----------
    kind : {"measurement_error", "selection_on_label", "selection_on_predictors"}
        The causal context.
    n : int
        Units drawn from the population before selection. Under selection the observed sample
        keeps about ``0.6 n`` rows; the target sample has ``n`` rows.
    seed : int
        Seed of ``numpy.random.default_rng``. The draws follow the order of the reference
        simulation, so ``n=2_000_000, seed=0`` reproduces its table.

    Returns
    -------
    CausalContext

    Examples
    --------
    >>> from fairlib.datasets import make_causal_context
    >>> ctx = make_causal_context("measurement_error", n=1000, seed=0)
    >>> ctx.implied_metric, ctx.fair_features, len(ctx.observed), len(ctx.target)
    ('demographic_parity', ('x1',), 1000, 1000)
    """
    check_choice("kind", kind, list(CAUSAL_CONTEXTS))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(MSG_TYPE.format(name="n", expected="a positive integer", got=repr(n)))
    rng = np.random.default_rng(seed)
    p = _population(rng, int(n))
    a, y_true, x1 = p["a"], p["y_true"], p["x1"]
    # Every context's uniforms are drawn in any case, to keep the reference stream.
    flip_pos = a & y_true & (rng.random(n) < 0.4)
    flip_neg = ~a & ~y_true & (rng.random(n) < 0.3)
    keep_sl = rng.random(n) < np.where(y_true, np.where(a, 0.3, 0.9), 0.6)
    keep_sp = rng.random(n) < np.where((x1 > 0) == a, 0.9, 0.3)
    target_pop = _population(rng, int(n))

    if kind == "measurement_error":
        y_obs = (y_true & ~flip_pos) | flip_neg
        observed = _as_dataset(p, y_obs, kind, "observed", {"y_true": y_true})
    else:
        keep = keep_sl if kind == "selection_on_label" else keep_sp
        kept = {k: v[keep] for k, v in p.items()}
        observed = _as_dataset(kept, kept["y_true"], kind, "observed")
    target = _as_dataset(target_pop, target_pop["y_true"], kind, "target")
    return CausalContext(
        kind=kind,
        implied_metric=CAUSAL_CONTEXTS[kind],
        observed=observed,
        target=target,
        fair_features=("x1",),
    )


def make_biased_classification(
    n: int = 1000,
    *,
    minority_fraction: float = 0.3,
    base_rates: tuple[float, float] = (0.5, 0.2),
    separation: float = 2.0,
    group_shift: float = 1.0,
    seed: int = 0,
) -> FairDataset:
    """Make a small two-Gaussian task with a minority group and unequal base rates.

    Meant for fast tests and first examples.

    ``A ~ Bern(minority_fraction)``, ``Y | A ~ Bern(base_rates[A])``, and
    ``X | Y, A ~ N((separation * (Y - 1/2), group_shift * A), I_2)``: the first feature carries
    the label, the second reveals the group.

    Parameters
    ----------
    n : int
        Number of rows.
    minority_fraction : float
        ``P(A = 1)``.
    base_rates : tuple of float
        ``P(Y = 1 | A = 0)`` and ``P(Y = 1 | A = 1)``.
    separation : float
        Distance between the class means along the first feature.
    group_shift : float
        Shift of the minority group along the second feature.
    seed : int
        Seed of the ``torch.Generator``; same seed, same tensors.

    Returns
    -------
    FairDataset
        Sensitive attribute ``"group"`` with categories ``("majority", "minority")``.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> ds = make_biased_classification(2000, seed=0)
    >>> ds.X.shape, ds.group_categories
    (torch.Size([2000, 2]), ('majority', 'minority'))
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(MSG_TYPE.format(name="n", expected="a positive integer", got=repr(n)))
    for name, v in [
        ("minority_fraction", minority_fraction),
        ("base_rates[0]", base_rates[0]),
        ("base_rates[1]", base_rates[1]),
    ]:
        if not 0.0 <= v <= 1.0:
            raise ValueError(MSG_TYPE.format(name=name, expected="a probability in [0, 1]", got=v))
    gen = torch.Generator().manual_seed(seed)
    a = (torch.rand(n, generator=gen) < minority_fraction).to(torch.int64)
    rate = torch.tensor(base_rates, dtype=torch.float64)[a]
    y = (torch.rand(n, generator=gen, dtype=torch.float64) < rate).to(torch.int64)
    mean = torch.stack([separation * (y - 0.5), group_shift * a.to(torch.float64)], dim=1)
    X = (mean + torch.randn(n, 2, generator=gen, dtype=torch.float64)).to(torch.float32)
    return FairDataset(
        X=X,
        y=y,
        sensitive={"group": a},
        categories={"group": ["majority", "minority"]},
        feature_names=["x_label", "x_group"],
        name="biased_gaussians",
        description=(
            "Synthetic two-Gaussian classification with a minority group and unequal "
            "base rates (fairlib)."
        ),
    )
