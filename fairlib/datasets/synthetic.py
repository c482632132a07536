"""Synthetic data: the three causal contexts of Anthis & Veitch, and a biased two-Gaussian task."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from .._validation import MSG_TYPE, check_choice, check_positive_int
from ._dataset import FairDataset
from .noise import corrupt_labels

__all__ = ["CAUSAL_CONTEXTS", "CausalContext", "make_biased_classification", "make_causal_context",
           "semi_synthetic_context"]

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
    n = check_positive_int("n", n)
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
    n = check_positive_int("n", n)
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


_DEFAULT_DROP = {"selection_on_label": 0.5, "selection_on_predictors": 0.8}


def semi_synthetic_context(
    ds: FairDataset,
    kind: ContextKind,
    *,
    seed: int = 0,
    p: float = 0.5,
    flip_rate: float = 0.4,
    drop_rate: float | None = None,
    selection_feature: str | None = None,
) -> CausalContext:
    """Inject the bias of one causal context into real data with a random attribute ``a``.

    A two-valued attribute ``a ~ Bern(p)`` is drawn independently of everything, so no
    feature of ``ds`` is caused by it and any function of the original features is
    counterfactually fair. ``a`` is appended to the features as column ``"a"`` (what a
    naive predictor may exploit) and becomes the active sensitive attribute (categories
    ``"a=0"``, ``"a=1"``). The bias, in the spirit of the semi-synthetic experiment of
    Anthis & Veitch (code ``jacyanthis/Causal-Context``; the rates here are fairlib's):

    - ``"measurement_error"``: exactly ``round(flip_rate * n)`` of the positives with
      ``a = 1`` are recorded as 0, and a share ``flip_rate * ybar / (1 - ybar)`` of the
      negatives with ``a = 0`` as 1 (``ybar`` the base rate), so the overall base rate
      stays about the same (:func:`fairlib.datasets.corrupt_labels`).
    - ``"selection_on_label"``: rows with (y = 0, a = 1) or (y = 1, a = 0) are dropped with
      probability ``drop_rate`` (default 0.5).
    - ``"selection_on_predictors"``: rows with (x < median, a = 1) or (x >= median, a = 0),
      ``x`` the column ``selection_feature``, are dropped with probability ``drop_rate``
      (default 0.8).

    Parameters
    ----------
    ds : FairDataset
        The population, with its true labels; tabular features.
    kind : {"measurement_error", "selection_on_label", "selection_on_predictors"}
        The causal context.
    seed : int, default 0
        Seed of the ``torch.Generator`` behind ``a``, the flips and the selection.
    p : float, default 0.5
        ``P(a = 1)``.
    flip_rate : float, default 0.4
        Measurement error only: share of the positives with ``a = 1`` recorded as 0.
    drop_rate : float, optional
        Selection contexts only: probability of dropping a disfavoured row.
    selection_feature : str, optional
        Selection on predictors only: the feature selection depends on (required there).

    Returns
    -------
    CausalContext
        ``observed``: the biased sample (true labels in ``extras["y_true"]``);
        ``target``: every row with its true label; ``fair_features``: the features of
        ``ds``. ``source_index`` of both refers to the rows of ``ds``.

    Examples
    --------
    >>> from fairlib.datasets import make_biased_classification
    >>> from fairlib.datasets import semi_synthetic_context
    >>> pop = make_biased_classification(2000, seed=0)
    >>> ctx = semi_synthetic_context(pop, "selection_on_predictors", seed=0,
    ...                              selection_feature="x_label")
    >>> ctx.implied_metric, ctx.fair_features, ctx.observed.feature_names[-1]
    ('calibration', ('x_label', 'x_group'), 'a')
    >>> len(ctx.target), len(ctx.observed) < len(ctx.target)
    (2000, True)
    >>> me = semi_synthetic_context(pop, "measurement_error", seed=0)
    >>> int((me.observed.y != me.target.y).sum()) > 0
    True
    """
    if not isinstance(ds, FairDataset):
        raise TypeError(MSG_TYPE.format(name="ds", expected="a FairDataset",
                                        got=type(ds).__name__))
    check_choice("kind", kind, list(CAUSAL_CONTEXTS))
    if ds.X.ndim != 2:
        raise ValueError(MSG_TYPE.format(name="ds", expected="tabular data (2-d X)",
                                         got=f"X of shape {tuple(ds.X.shape)}"))
    if "a" in ds.feature_names or "a" in ds.sensitive:
        raise ValueError(MSG_TYPE.format(name="ds", expected="no feature or attribute named 'a'",
                                         got="one"))
    for name, value in (("p", p), ("flip_rate", flip_rate)):
        if not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
            raise ValueError(MSG_TYPE.format(name=name, expected="a probability in (0, 1)",
                                             got=repr(value)))
    drop = _DEFAULT_DROP.get(kind) if drop_rate is None else drop_rate
    if kind != "measurement_error" and (
        not isinstance(drop, (int, float)) or not 0.0 <= drop <= 1.0
    ):
        raise ValueError(MSG_TYPE.format(name="drop_rate", expected="a probability in [0, 1]",
                                         got=repr(drop_rate)))
    col = None
    if kind == "selection_on_predictors":
        if selection_feature not in ds.feature_names:
            raise ValueError(MSG_TYPE.format(
                name="selection_feature",
                expected="a feature name of `ds` (selection on predictors needs one)",
                got=repr(selection_feature)))
        col = ds.feature_names.index(selection_feature)

    gen = torch.Generator().manual_seed(seed)
    n = len(ds)
    a = (torch.rand(n, generator=gen, dtype=torch.float64) < p).to(torch.int64).to(ds.device)
    base = FairDataset(
        X=torch.cat([ds.X, a[:, None].to(ds.X.dtype)], 1),
        y=ds.y,
        sensitive={"a": a, **ds.sensitive},
        categories={"a": ["a=0", "a=1"], **ds.categories},
        feature_names=[*ds.feature_names, "a"],
        description=(f"{ds.name} with a random attribute a ~ Bern({p}) and the bias of the causal "
                     f"context '{kind}' (fairlib, after Anthis & Veitch 2023)."),
        name=f"{ds.name}: {kind}",
        label_name=ds.label_name,
        group_name="a",
        extras={**ds.extras, "y_true": ds.y},
        source_index=ds.source_index,
    )
    u = torch.rand(n, generator=gen, dtype=torch.float64).to(ds.device)
    y = ds.y
    if kind == "measurement_error":
        ybar = float(y.double().mean())
        up = flip_rate * ybar / (1.0 - ybar)
        if up > 1.0:
            raise ValueError(MSG_TYPE.format(
                name="flip_rate",
                expected=f"at most {(1 - ybar) / ybar:.3f} for base rate {ybar:.3f}",
                got=repr(flip_rate)))
        flip_seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
        observed, _ = corrupt_labels(base, {("a=1", 1): flip_rate, ("a=0", 0): up}, seed=flip_seed)
        extras = dict(observed.extras)
        if "y_clean" not in ds.extras:  # the true labels are already in extras["y_true"]
            del extras["y_clean"]
        observed = dataclasses.replace(observed, extras=extras)
    else:
        if kind == "selection_on_label":
            disfavoured = ((y == 0) & (a == 1)) | ((y == 1) & (a == 0))
        else:
            x = ds.X[:, col]
            low = x < x.median()
            disfavoured = (low & (a == 1)) | (~low & (a == 0))
        observed = base.subset(~(disfavoured & (u < drop)))
    return CausalContext(kind=kind, implied_metric=CAUSAL_CONTEXTS[kind], observed=observed,
                         target=base, fair_features=tuple(ds.feature_names))


# -- fitting -----------------------------------------------------------------------------------
