"""Synthetic data: causal contexts (methods.md §12.3), label noise, biased two-Gaussian task."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from fairlib.datasets import (
    FairDataset,
    corrupt_labels,
    make_biased_classification,
    make_causal_context,
)

KINDS = ["measurement_error", "selection_on_label", "selection_on_predictors"]


def gaps(y_pred: np.ndarray, y: np.ndarray, a: np.ndarray) -> dict[str, float]:
    """Signed gaps (A=1) - (A=0), as in methods.md §12.3."""
    y_pred, y, a = y_pred.astype(bool), y.astype(bool), a.astype(bool)

    def diff(m: np.ndarray) -> float:
        return float(y_pred[a & m].mean() - y_pred[~a & m].mean())

    return {
        "dp": diff(np.ones_like(a)),
        "tpr": diff(y),
        "fpr": diff(~y),
        "ppv": float(y[a & y_pred].mean() - y[~a & y_pred].mean()),
    }


def within_bin_calibration_gap(
    score: np.ndarray, y: np.ndarray, a: np.ndarray, bins: int = 20
) -> float:
    """Mean over quantile bins of the score of |P(y=1 | bin, A=1) - P(y=1 | bin, A=0)|."""
    a = a.astype(bool)
    edges = np.quantile(score, np.linspace(0, 1, bins + 1))
    k = np.clip(np.digitize(score, edges[1:-1]), 0, bins - 1)
    return float(
        np.mean([abs(y[(k == j) & a].mean() - y[(k == j) & ~a].mean()) for j in range(bins)])
    )


def cf_report(
    kind: str, n: int, seed: int = 0
) -> tuple[dict[str, float], dict[str, float], float, float]:
    """Gaps of a logistic model fitted on the CF features and of a naive one on all features."""
    ctx = make_causal_context(kind, n=n, seed=seed)
    obs, target = ctx.observed, ctx.target
    y, a = obs.y.numpy(), obs.group.numpy()
    cf = LogisticRegression().fit(ctx.fair_X(obs).numpy(), y)
    naive = LogisticRegression().fit(obs.X.numpy(), y)
    score = cf.predict_proba(ctx.fair_X(obs).numpy())[:, 1]
    cf_gaps = gaps(score > 0.5, y, a) | {"calibration": within_bin_calibration_gap(score, y, a)}
    naive_gaps = gaps(naive.predict(obs.X.numpy()), y, a)
    acc_cf = float((cf.predict(ctx.fair_X(target).numpy()) == target.y.numpy()).mean())
    acc_naive = float((naive.predict(target.X.numpy()) == target.y.numpy()).mean())
    return cf_gaps, naive_gaps, acc_cf, acc_naive


IMPLIED = {
    "measurement_error": "dp",
    "selection_on_label": "tpr",
    "selection_on_predictors": "calibration",
}


@pytest.mark.parametrize("kind", KINDS)
def test_cf_predictor_satisfies_exactly_the_implied_metric(kind):
    cf, naive, acc_cf, acc_naive = cf_report(kind, n=200_000)
    implied = IMPLIED[kind]
    assert abs(cf[implied]) < 0.01, cf
    for other in {"dp", "tpr", "calibration"} - {implied}:
        assert abs(cf[other]) > 0.05, (other, cf)
    if kind == "selection_on_label":
        assert abs(cf["fpr"]) < 0.01  # equalized odds: both rates
    if kind != "selection_on_predictors":
        # The naive model uses the proxy x2: it breaks the implied metric and is less
        # accurate on the unbiased target population.
        assert abs(naive[implied]) > 0.05, naive
        assert acc_cf > acc_naive
    else:
        assert abs(acc_cf - acc_naive) < 0.005  # y is independent of x2 given x1 here


# methods.md §12.3 reference simulation: numpy default_rng(0), n = 2,000,000, f = 1[x1 > 0].
REFERENCE = {
    "measurement_error": (0.0001, 0.1365, 0.1696, -0.3814, 0.3513),
    "selection_on_label": (-0.1579, 0.0002, -0.0000, -0.1944, 0.1532),
    "selection_on_predictors": (0.5003, 0.3583, 0.3572, -0.0020, 0.0036),
}


@pytest.mark.parametrize("kind", KINDS)
def test_reproduces_reference_table_to_four_digits(kind):
    obs = make_causal_context(kind, n=2_000_000, seed=0).observed
    x1, y, a = obs.X[:, 0].double().numpy(), obs.y.numpy(), obs.group.numpy()
    got = gaps(x1 > 0, y, a)
    values = (got["dp"], got["tpr"], got["fpr"], got["ppv"], within_bin_calibration_gap(x1, y, a))
    assert np.allclose(values, REFERENCE[kind], atol=5e-5), values


def test_causal_context_structure_and_bias_rates():
    n = 50_000
    me = make_causal_context("measurement_error", n=n, seed=1)
    obs = me.observed
    assert len(obs) == n and len(me.target) == n and obs.feature_names == ("x1", "x2")
    assert me.implied_metric == "demographic_parity" and me.fair_features == ("x1",)
    assert torch.equal(me.fair_X(obs), obs.X[:, :1])
    y_true, y, a = obs.extras["y_true"], obs.y, obs.group
    down = (y_true == 1) & (a == 1)
    up = (y_true == 0) & (a == 0)
    assert abs(float((y[down] == 0).double().mean()) - 0.4) < 0.02
    assert abs(float((y[up] == 1).double().mean()) - 0.3) < 0.02
    assert torch.equal(y[~(down | up)], y_true[~(down | up)])
    for kind, keep in [("selection_on_label", 0.6), ("selection_on_predictors", 0.6)]:
        ctx = make_causal_context(kind, n=n, seed=1)
        assert abs(len(ctx.observed) / n - keep) < 0.01 and len(ctx.target) == n
    # The target population carries no bias: base rate equal across groups.
    t = me.target
    assert abs(float(t.y[t.group == 1].double().mean() - t.y[t.group == 0].double().mean())) < 0.02


def test_causal_context_is_seeded():
    a = make_causal_context("selection_on_label", n=5000, seed=7)
    b = make_causal_context("selection_on_label", n=5000, seed=7)
    c = make_causal_context("selection_on_label", n=5000, seed=8)
    assert torch.equal(a.observed.X, b.observed.X) and torch.equal(a.target.y, b.target.y)
    assert not torch.equal(a.target.X, c.target.X)


def test_causal_context_rejects_bad_arguments():
    msg = (
        "Expected `kind` to be one of 'measurement_error', 'selection_on_label', "
        "'selection_on_predictors', but got 'foo'."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        make_causal_context("foo")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=re.escape("Expected `n` to be a positive integer, but got 0")
    ):
        make_causal_context("measurement_error", n=0)


def test_corrupt_labels_flips_exact_counts_in_named_groups():
    ds = make_biased_classification(3000, seed=0)
    noisy, flipped = corrupt_labels(ds, {"majority": 0.1, 1: 0.25}, seed=3)
    assert flipped.dtype == torch.bool and flipped.shape == (3000,)
    assert torch.equal(noisy.y != ds.y, flipped)
    assert torch.equal(noisy.extras["y_clean"], ds.y)
    for code, rate in [(0, 0.1), (1, 0.25)]:
        in_group = ds.group == code
        assert int(flipped[in_group].sum()) == round(rate * int(in_group.sum()))
    assert torch.equal(noisy.X, ds.X) and torch.equal(noisy.group, ds.group)


def test_corrupt_labels_per_label_cell_and_seed():
    ds = make_biased_classification(3000, seed=0)
    noisy, flipped = corrupt_labels(ds, {("minority", 1): 0.5}, seed=0)
    cell = (ds.group == 1) & (ds.y == 1)
    assert not bool(flipped[~cell].any())
    assert int(flipped.sum()) == round(0.5 * int(cell.sum()))
    assert bool((noisy.y[flipped] == 0).all())
    again, flipped2 = corrupt_labels(ds, {("minority", 1): 0.5}, seed=0)
    _, flipped3 = corrupt_labels(ds, {("minority", 1): 0.5}, seed=1)
    assert torch.equal(flipped, flipped2) and torch.equal(again.y, noisy.y)
    assert not torch.equal(flipped, flipped3)


@pytest.mark.parametrize(
    ("rates", "pattern"),
    [
        (
            {"nobody": 0.1},
            (
                "Expected `rates_by_group` to be groups of 'group' among ['majority', 'minority'] "
                "or codes 0..1, but got 'nobody'"
            ),
        ),
        (
            {"minority": 1.5},
            "Expected `rates_by_group['minority']` to be a rate in [0, 1], but got 1.5",
        ),
        (
            {"minority": 0.1, ("minority", 1): 0.2},
            "Expected `rates_by_group` to be each group given once",
        ),
        (
            {("minority", 2): 0.2},
            "Expected `rates_by_group` to be labels 0 or 1 in (group, label) keys",
        ),
    ],
)
def test_corrupt_labels_rejects_bad_rates(rates, pattern):
    with pytest.raises(ValueError, match=re.escape(pattern)):
        corrupt_labels(make_biased_classification(100, seed=0), rates)


def test_biased_classification_has_the_requested_bias():
    ds = make_biased_classification(40_000, minority_fraction=0.25, base_rates=(0.6, 0.2), seed=0)
    assert isinstance(ds, FairDataset) and ds.X.shape == (40_000, 2)
    assert abs(float(ds.group.double().mean()) - 0.25) < 0.01
    rates = ds.summary()["base_rate"].to_numpy()
    assert np.allclose(rates, [0.6, 0.2], atol=0.015)
    # First feature separates the classes, second the groups.
    assert float(ds.X[ds.y == 1, 0].mean() - ds.X[ds.y == 0, 0].mean()) > 1.8
    assert float(ds.X[ds.group == 1, 1].mean() - ds.X[ds.group == 0, 1].mean()) > 0.9
    same = make_biased_classification(
        40_000, minority_fraction=0.25, base_rates=(0.6, 0.2), seed=0
    )
    assert torch.equal(ds.X, same.X) and torch.equal(ds.y, same.y)
    with pytest.raises(
        ValueError, match=re.escape("Expected `minority_fraction` to be a probability in [0, 1]")
    ):
        make_biased_classification(10, minority_fraction=2.0)
