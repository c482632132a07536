"""Bootstrap intervals from the count table: properties, equivalence and coverage."""

import warnings

import numpy as np
import pytest
import torch

import fairlib.metrics as fm
from fairlib.metrics import _bootstrap as boot
from fairlib.metrics import _core as core


def _data(seed, n=400, p=(0.3, 0.5), weighted=False):
    rng = np.random.default_rng(seed)
    sf = np.where(np.arange(n) < n // 2, "a", "b")
    p_row = np.where(sf == "a", p[0], p[1])
    y_pred = (rng.random(n) < p_row).astype(int)
    y_true = rng.integers(0, 2, n)
    w = rng.gamma(2.0, 0.5, n) if weighted else None
    return y_true, y_pred, sf, w


def test_same_seed_same_intervals_and_ordering():
    y_true, y_pred, sf, _ = _data(0)
    rep = fm.fairness_report(y_true, y_pred, sensitive_features=sf)
    a = rep.bootstrap(300, seed=5)
    b = rep.bootstrap(300, seed=5)
    c = rep.bootstrap(300, seed=6)
    assert torch.equal(a.by_group_samples, b.by_group_samples)
    assert not torch.equal(a.by_group_samples, c.by_group_samples)
    summary = a.summary()
    assert (summary["lower"] <= summary["upper"]).all()
    table = a.by_group("selection_rate")
    assert list(table.index) == ["a", "b", "overall"]
    assert (table["lower"] <= table["estimate"]).all() and (table["estimate"] <= table["upper"]).all()


def test_multinomial_counts_keep_the_total_and_the_cell_means():
    counts = torch.tensor([[5.0, 0.0, 10.0, 85.0], [40.0, 30.0, 20.0, 10.0]], dtype=torch.float64)
    draws = boot.multinomial_counts(counts, 20000, torch.Generator().manual_seed(0))
    assert torch.all(draws.sum((1, 2)) == 200)
    assert torch.all(draws[:, 0, 1] == 0)  # an empty cell stays empty
    np.testing.assert_allclose(draws.mean(0).numpy(), counts.numpy(), rtol=0.02, atol=0.05)
    p = counts.reshape(-1).numpy() / 200
    np.testing.assert_allclose(draws.reshape(20000, -1).var(0).numpy(), 200 * p * (1 - p), rtol=0.05)


def test_table_bootstrap_matches_a_row_bootstrap():
    """Multinomial redraws of the table behave like resampling rows with replacement."""
    y_true, y_pred, sf, _ = _data(1)
    ours = fm.fairness_report(y_true, y_pred, sensitive_features=sf).bootstrap(4000, seed=0)
    ours_dpd = ours.measure_samples("demographic_parity_difference").numpy()
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(1500):
        i = rng.integers(0, len(y_true), len(y_true))
        sa = y_pred[i][sf[i] == "a"].mean()
        sb = y_pred[i][sf[i] == "b"].mean()
        rows.append(abs(sa - sb))
    rows = np.array(rows)
    assert ours_dpd.mean() == pytest.approx(rows.mean(), abs=0.005)
    assert ours_dpd.std() == pytest.approx(rows.std(), rel=0.1)


def _coverage(weighted, reps=200, n_boot=300):
    truth_dpd, truth_sr_a = 0.2, 0.3
    hits_dpd = hits_sr = 0
    for seed in range(reps):
        y_true, y_pred, sf, w = _data(1000 + seed, weighted=weighted)
        rep = fm.fairness_report(y_true, y_pred, sensitive_features=sf, sample_weight=w)
        ci = rep.bootstrap(n_boot, level=0.9, seed=seed)
        lo, hi = ci.interval("demographic_parity_difference")
        hits_dpd += lo <= truth_dpd <= hi
        t = ci.by_group("selection_rate")
        hits_sr += t.loc["a", "lower"] <= truth_sr_a <= t.loc["a", "upper"]
    return hits_dpd / reps, hits_sr / reps


def test_multinomial_interval_coverage_near_nominal():
    cov_dpd, cov_sr = _coverage(weighted=False)
    # nominal 0.90; with 200 replicates the Monte Carlo s.e. is about 0.02
    assert 0.84 <= cov_dpd <= 0.96, cov_dpd
    assert 0.84 <= cov_sr <= 0.96, cov_sr


def test_poisson_interval_coverage_near_nominal_with_weights():
    cov_dpd, cov_sr = _coverage(weighted=True, reps=150)
    # weights independent of the prediction leave the estimand unchanged
    assert 0.82 <= cov_dpd <= 0.97, cov_dpd
    assert 0.82 <= cov_sr <= 0.97, cov_sr


def test_poisson_and_multinomial_agree_for_unit_weights():
    y_true, y_pred, sf, _ = _data(2)
    rep = fm.fairness_report(y_true, y_pred, sensitive_features=sf)
    m = rep.bootstrap(3000, seed=0, method="multinomial").measure_samples("demographic_parity_difference")
    p = rep.bootstrap(3000, seed=0, method="poisson").measure_samples("demographic_parity_difference")
    assert float(m.std()) == pytest.approx(float(p.std()), rel=0.1)


def test_bootstrap_skips_resamples_where_a_group_is_missing():
    y_true = np.r_[np.zeros(50, int), [1]]
    y_pred = np.r_[np.ones(50, int), [0]]
    sf = np.r_[["a"] * 50, ["tiny"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.UndefinedMetricWarning)
        rep = fm.fairness_report(y_true, y_pred, sensitive_features=sf)
    ci = rep.bootstrap(500, seed=0)
    sr = ci.by_group_samples[:, 1, core.RATES.index("selection_rate")]
    assert torch.isnan(sr).any() and not torch.isnan(sr).all()
    t = ci.by_group("selection_rate")
    assert np.isfinite(t.loc["tiny", "lower"])
