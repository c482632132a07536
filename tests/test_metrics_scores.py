"""Score-based metrics, equity scaling and PSD against direct numpy computations."""

import math
import statistics

import numpy as np
import pandas as pd
import pytest
import torch
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


def test_calibration_by_group_matches_direct_computation():
    rng = np.random.default_rng(3)
    n = 900
    score = rng.integers(1, 11, n)
    g = rng.choice(["u", "v"], n)
    y = (rng.random(n) < score / 11).astype(int)
    cal = fm.calibration_by_group(y, score, sensitive_features=pd.Series(g, name="grp"), n_boot=200)
    direct = pd.DataFrame({"s": score, "g": g, "y": y}).groupby(["s", "g"])["y"]
    direct = direct.agg(["mean", "size"])
    assert len(cal) == len(direct)
    np.testing.assert_allclose(cal["estimate"], direct["mean"])
    np.testing.assert_array_equal(cal["n"], direct["size"])
    np.testing.assert_allclose(cal["mean_score"], [s for s, _ in direct.index])
    assert (cal["lower"] <= cal["estimate"] + 1e-12).all()
    assert (cal["estimate"] <= cal["upper"] + 1e-12).all()
    assert cal.attrs["group_name"] == "grp"
    again = fm.calibration_by_group(y, score, sensitive_features=pd.Series(g, name="grp"), n_boot=200)
    pd.testing.assert_frame_equal(cal, again)  # same seed, same intervals


def test_calibration_by_group_probability_bins_and_errors():
    s = np.array([0.05, 0.15, 0.95, 1.0, 0.5, 0.55])
    y = np.array([0, 0, 1, 1, 1, 0])
    cal = fm.calibration_by_group(y, s, sensitive_features=list("aaabbb"), bins=2, n_boot=20)
    assert list(zip(cal["bin"], cal["group"], cal["n"], strict=True)) == [
        (0, "a", 2), (1, "a", 1), (1, "b", 3)]
    np.testing.assert_allclose(cal["mean_score"], [0.1, 0.95, (1.0 + 0.5 + 0.55) / 3])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        fm.calibration_by_group(y, s * 2, sensitive_features=list("aaabbb"), bins=2)
    with pytest.raises(ValueError, match="`bins`"):
        fm.calibration_by_group(y, s, sensitive_features=list("aaabbb"), bins=0)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        fm.calibration_by_group(y, s, sensitive_features=list("aab"))


def test_calibration_gaps_batched_equals_one_at_a_time():
    gen = torch.Generator().manual_seed(0)
    n = torch.randint(0, 5, (6, 3, 8), generator=gen).double()
    pos = torch.floor(n * torch.rand(6, 3, 8, generator=gen, dtype=torch.float64))
    batched = fm.scores.calibration_gaps(pos, n)
    one = torch.stack([fm.scores.calibration_gaps(p, m) for p, m in zip(pos, n, strict=True)])
    torch.testing.assert_close(batched, one, equal_nan=True)
    table = torch.stack([n, 0.5 * n, pos], -1)
    torch.testing.assert_close(fm.scores.gap_from_table(table[0]), one[0], equal_nan=True)
    # no bin holding two groups: undefined
    assert torch.isnan(fm.scores.calibration_gaps(pos[0, :1], n[0, :1]))


def test_calibration_rates_nan_in_empty_cells():
    table = torch.tensor([[[2.0, 1.2, 1.0], [0.0, 0.0, 0.0]]], dtype=torch.float64)
    rates = fm.scores.calibration_rates(table)
    torch.testing.assert_close(rates[0, 0], torch.tensor([0.6, 0.5], dtype=torch.float64))
    assert torch.isnan(rates[0, 1]).all()
