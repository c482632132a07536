"""Score-based metrics, equity scaling and PSD against direct numpy computations."""

import math
import statistics

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

import fairlib.metrics as fm


def _case(seed, n=600):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n)
    y = rng.integers(0, 2, n)
    s = np.clip(0.25 + 0.4 * y + 0.3 * rng.standard_normal(n) * (g == "c"), 0, 1)
    s = np.where(g == "b", s**2, s)
    w = rng.random(n) + 0.5
    return y, s, g, w


def _ece_numpy(y, s, w, n_bins=10):
    b = np.minimum(np.floor(s * n_bins), n_bins - 1).astype(int)
    total = 0.0
    for k in range(n_bins):
        m = b == k
        if w[m].sum() > 0:
            total += w[m].sum() * abs(np.average(s[m], weights=w[m]) - np.average(y[m], weights=w[m]))
    return total / w.sum()


@pytest.mark.parametrize("seed", range(5))
def test_ece_matches_direct_computation(seed):
    y, s, g, w = _case(seed)
    s = np.round(s, 3) + 1e-4  # keep scores off the bin edges
    s = np.clip(s, 0, 1)
    res = fm.expected_calibration_error(y, s, sensitive_features=g, sample_weight=w)
    for j, label in enumerate(res.index):
        m = g == label
        assert float(res.by_group[j]) == pytest.approx(_ece_numpy(y[m], s[m], w[m]), abs=1e-12)
    assert float(res.overall) == pytest.approx(_ece_numpy(y, s, w), abs=1e-12)


def test_calibration_gap_two_groups_is_mean_absolute_within_bin_difference():
    rng = np.random.default_rng(0)
    n = 4000
    a = rng.integers(0, 2, n)
    s = rng.random(n)
    y = (rng.random(n) < np.clip(s + 0.1 * a, 0, 1)).astype(int)
    gap = float(fm.calibration_gap(y, s, sensitive_features=a, n_bins=4, strategy="uniform"))
    b = np.minimum(np.floor(s * 4), 3)
    expected = np.mean([abs(y[(b == k) & (a == 1)].mean() - y[(b == k) & (a == 0)].mean()) for k in range(4)])
    assert gap == pytest.approx(expected, abs=1e-12)
    assert 0.05 < gap < 0.15  # the simulated miscalibration is 0.1


def test_equity_scaling_and_psd_formulas():
    y, s, g, w = _case(1)
    y_pred = (s > 0.5).astype(int)
    acc = [accuracy_score(y[g == k], y_pred[g == k], sample_weight=w[g == k]) for k in "abc"]
    overall = accuracy_score(y, y_pred, sample_weight=w)
    kw = dict(sensitive_features=g, sample_weight=w)
    es_abs = overall / (1 + 2.0 * sum(abs(a - overall) for a in acc))
    es_std = overall / (1 + statistics.stdev(acc))  # sample std, as FairSeg's code
    assert float(fm.equity_scaled_accuracy(y, y_pred, alpha=2.0, **kw)) == pytest.approx(es_abs, abs=1e-12)
    assert float(fm.equity_scaled_accuracy(y, y_pred, mode="std", **kw)) == pytest.approx(es_std, abs=1e-12)
    assert float(fm.worst_group_accuracy(y, y_pred, **kw)) == pytest.approx(min(acc), abs=1e-12)
    auc = fm.roc_auc_by_group(y, s, **kw)
    aucs, auc_all = auc.by_group.numpy(), float(auc.overall)
    assert float(fm.performance_scaled_disparity(y, s, **kw)) == pytest.approx(np.std(aucs) / auc_all, abs=1e-12)
    assert float(fm.performance_scaled_disparity(y, s, mode="max", **kw)) == pytest.approx(
        (aucs.max() - aucs.min()) / auc_all, abs=1e-12)
    assert float(fm.psd(auc, ddof=1)) == pytest.approx(np.std(aucs, ddof=1) / auc_all, abs=1e-12)


def test_auc_of_a_single_class_group_is_nan_with_a_warning():
    with pytest.warns(fm.UndefinedMetricWarning, match=r"roc_auc is undefined \(only one class present\) for group\(s\) \['b'\]"):
        res = fm.roc_auc_by_group([0, 1, 1, 1], [0.2, 0.7, 0.4, 0.9], sensitive_features=list("aabb"))
    assert math.isnan(float(res.by_group[1])) and float(res.by_group[0]) == 1.0
    assert float(res.difference()) == 0.0  # the NaN group is skipped
    assert float(fm.es_metric(res)) == pytest.approx(float(res.overall) / (1 + abs(1 - float(res.overall))))


def test_by_group_result_helpers():
    res = fm.accuracy_by_group([1, 1, 0, 0, 1], [1, 1, 1, 0, 0], sensitive_features=list("aabbc"))
    s = res.to_series()
    assert s.tolist() == [1.0, 0.5, 0.0] and s.name == "accuracy"
    assert float(res.group_max()) == 1.0 and float(res.group_min()) == 0.0
    assert float(res.difference("to_overall")) == pytest.approx(0.6)
    assert float(res.ratio()) == 0.0
