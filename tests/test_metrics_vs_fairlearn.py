"""Randomised agreement with fairlearn's MetricFrame and scikit-learn, to 1e-9."""

import warnings

import fairlearn.metrics as flm
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import fairlib.metrics as fm

SEEDS = range(40)
PAIRS = [
    (fm.demographic_parity_difference, flm.demographic_parity_difference, False),
    (fm.demographic_parity_ratio, flm.demographic_parity_ratio, False),
    (fm.equal_opportunity_difference, flm.equal_opportunity_difference, False),
    (fm.equal_opportunity_ratio, flm.equal_opportunity_ratio, False),
    (fm.equalized_odds_difference, flm.equalized_odds_difference, True),
    (fm.equalized_odds_ratio, flm.equalized_odds_ratio, True),
]


def random_case(seed):
    """Small data with 1-3 sensitive columns, missing combinations, optional weights."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 80))
    k = int(rng.integers(1, 4))
    cols = {}
    for j in range(k):
        levels = rng.choice(["u", "v", "w", "x"], size=int(rng.integers(1, 4)), replace=False)
        cols[f"s{j}"] = rng.choice(levels, size=n)
    sf = pd.Series(cols["s0"], name="s0") if k == 1 else pd.DataFrame(cols)
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, 1 - y_true)
    weights = None
    if seed % 3:
        weights = rng.integers(0, 4, n).astype(float) if seed % 3 == 1 else rng.random(n) * 3
        # scikit-learn refuses a group whose weights are all zero, so keep one row per group
        keys = pd.DataFrame(cols).astype(str).agg("|".join, axis=1).to_numpy()
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            if weights[rows].sum() == 0:
                weights[rows[0]] = 1.0
    return y_true, y_pred, sf, weights


@pytest.mark.parametrize("seed", SEEDS)
def test_parity_measures_match_fairlearn(seed):
    y_true, y_pred, sf, w = random_case(seed)
    for ours, theirs, has_agg in PAIRS:
        for method in ("between_groups", "to_overall"):
            for agg in ("worst_case", "mean") if has_agg else (None,):
                extra = {"agg": agg} if agg else {}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    expected = theirs(y_true, y_pred, sensitive_features=sf, method=method,
                                      sample_weight=w, **extra)
                    got = ours(y_true, y_pred, sensitive_features=sf, method=method,
                               sample_weight=w, zero_division=0.0, **extra)
                np.testing.assert_allclose(
                    float(got), float(expected), atol=1e-9, equal_nan=True,
                    err_msg=f"{ours.__name__} method={method} agg={agg}",
                )


@pytest.mark.parametrize("seed", SEEDS)
def test_by_group_rates_match_metricframe(seed):
    y_true, y_pred, sf, w = random_case(seed)
    metrics = {
        "selection_rate": flm.selection_rate,
        "true_positive_rate": flm.true_positive_rate,
        "false_positive_rate": flm.false_positive_rate,
        "true_negative_rate": flm.true_negative_rate,
        "false_negative_rate": flm.false_negative_rate,
    }
    params = None if w is None else {m: {"sample_weight": w} for m in metrics}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf = flm.MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred,
                             sensitive_features=sf, sample_params=params)
        rep = fm.fairness_report(y_true, y_pred, sensitive_features=sf, sample_weight=w,
                                 zero_division=0.0)
    ours = rep.by_group[list(metrics)]
    theirs = mf.by_group[list(metrics)].astype(float)
    assert list(ours.index) == list(theirs.index)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(rep.overall[list(metrics)].to_numpy(float),
                               mf.overall[list(metrics)].to_numpy(float), atol=1e-9, equal_nan=True)
    for method in ("between_groups", "to_overall"):
        np.testing.assert_allclose(rep.difference(method)[list(metrics)].to_numpy(),
                                   mf.difference(method=method).to_numpy(float), atol=1e-9, equal_nan=True)
        np.testing.assert_allclose(rep.ratio(method)[list(metrics)].to_numpy(),
                                   mf.ratio(method=method).to_numpy(float), atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("seed", range(25))
def test_group_auc_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 300
    g = rng.integers(0, 3, n)
    y = rng.integers(0, 2, n)
    score = np.round(rng.random(n) + 0.3 * y, 1)  # rounding creates ties
    w = None if seed % 2 else rng.random(n) * 2
    res = fm.roc_auc_by_group(y, score, sensitive_features=g, sample_weight=w)
    for j, label in enumerate(res.index):
        m = g == label
        expected = roc_auc_score(y[m], score[m], sample_weight=None if w is None else w[m])
        assert float(res.by_group[j]) == pytest.approx(expected, abs=1e-12)
    assert float(res.overall) == pytest.approx(roc_auc_score(y, score, sample_weight=w), abs=1e-12)
