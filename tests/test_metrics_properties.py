"""Shared property tests run for every metric (scikit-learn's sample-weight checks and more)."""

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fairlib.metrics as fm

SETTINGS = settings(max_examples=15, derandomize=True, deadline=None)


@dataclass
class Data:
    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray
    sf: np.ndarray

    def take(self, idx):
        return Data(self.y_true[idx], self.y_pred[idx], self.y_score[idx], self.sf[idx])


def make_data(seed, n=120, groups="abc"):
    rng = np.random.default_rng(seed)
    sf = rng.choice(list(groups), n)
    sf[: len(groups)] = list(groups)  # every group present
    y_true = rng.integers(0, 2, n)
    score = np.clip(0.35 * y_true + 0.65 * rng.random(n), 0, 1).round(2)
    y_pred = (score > 0.5).astype(int)
    return Data(y_true, y_pred, score, sf)


def _out(x):
    if isinstance(x, fm.ByGroup):
        return np.r_[x.by_group.numpy(), x.overall.numpy()]
    if isinstance(x, torch.Tensor):
        return x.numpy().reshape(-1)
    return np.asarray(x, dtype=float).reshape(-1)


def _rates_by_group(d, w):
    rep = fm.fairness_report(d.y_true, d.y_pred, sensitive_features=d.sf, sample_weight=w)
    return rep.by_group[list(fm.RATES)].to_numpy()


METRICS = {
    "report_by_group": _rates_by_group,
    "selection_rate": lambda d, w: fm.selection_rate(d.y_true, d.y_pred, sample_weight=w),
    "true_positive_rate": lambda d, w: fm.true_positive_rate(d.y_true, d.y_pred, sample_weight=w),
    "false_positive_rate": lambda d, w: fm.false_positive_rate(d.y_true, d.y_pred, sample_weight=w),
    "true_negative_rate": lambda d, w: fm.true_negative_rate(d.y_true, d.y_pred, sample_weight=w),
    "false_negative_rate": lambda d, w: fm.false_negative_rate(d.y_true, d.y_pred, sample_weight=w),
    "accuracy": lambda d, w: fm.accuracy(d.y_true, d.y_pred, sample_weight=w),
    "accuracy_by_group": lambda d, w: fm.accuracy_by_group(d.y_true, d.y_pred, sensitive_features=d.sf, sample_weight=w),
    "worst_group_accuracy": lambda d, w: fm.worst_group_accuracy(d.y_true, d.y_pred, sensitive_features=d.sf, sample_weight=w),
    "roc_auc_by_group": lambda d, w: fm.roc_auc_by_group(d.y_true, d.y_score, sensitive_features=d.sf, sample_weight=w),
    "ece_uniform": lambda d, w: fm.expected_calibration_error(d.y_true, d.y_score, sensitive_features=d.sf, sample_weight=w),
    "ece_quantile": lambda d, w: fm.expected_calibration_error(
        d.y_true, d.y_score, sensitive_features=d.sf, sample_weight=w, strategy="quantile", n_bins=5),
    "calibration_gap": lambda d, w: fm.calibration_gap(d.y_true, d.y_score, sensitive_features=d.sf, sample_weight=w, n_bins=4),
    "es_accuracy_abs": lambda d, w: fm.equity_scaled_accuracy(d.y_true, d.y_pred, sensitive_features=d.sf, sample_weight=w),
    "es_accuracy_std": lambda d, w: fm.equity_scaled_accuracy(d.y_true, d.y_pred, sensitive_features=d.sf, sample_weight=w, mode="std"),
    "es_auc": lambda d, w: fm.equity_scaled_auc(d.y_true, d.y_score, sensitive_features=d.sf, sample_weight=w, alpha=2.0),
    "psd_mean": lambda d, w: fm.performance_scaled_disparity(d.y_true, d.y_score, sensitive_features=d.sf, sample_weight=w),
    "psd_max": lambda d, w: fm.performance_scaled_disparity(d.y_true, d.y_score, sensitive_features=d.sf, sample_weight=w, mode="max"),
}
for _name in fm.MEASURES:
    _fn = getattr(fm, _name, None)
    for _method in ("between_groups", "to_overall"):
        for _agg in ("worst_case", "mean"):
            if _fn is None or (_agg == "mean" and "odds" not in _name):
                continue
            extra = {"agg": _agg} if "odds" in _name else {}
            METRICS[f"{_name}/{_method}/{_agg}"] = (
                lambda d, w, f=_fn, m=_method, e=extra: f(
                    d.y_true, d.y_pred, sensitive_features=d.sf, method=m, sample_weight=w, **e)
            )


def evaluate(name, data, w=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.UndefinedMetricWarning)
        return _out(METRICS[name](data, w))


def assert_same(a, b, atol=1e-9):
    np.testing.assert_allclose(a, b, atol=atol, rtol=0, equal_nan=True)


@pytest.mark.parametrize("name", list(METRICS))
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1))
def test_unit_weights_equal_no_weights(name, seed):
    d = make_data(seed)
    assert_same(evaluate(name, d, np.ones(len(d.y_true))), evaluate(name, d))


@pytest.mark.parametrize("name", list(METRICS))
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1))
def test_integer_weights_equal_repeated_rows(name, seed):
    d = make_data(seed)
    w = np.random.default_rng(seed).integers(1, 4, len(d.y_true))
    assert_same(evaluate(name, d, w), evaluate(name, d.take(np.repeat(np.arange(len(w)), w))))


@pytest.mark.parametrize("name", list(METRICS))
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1))
def test_zero_weights_equal_dropped_rows(name, seed):
    d = make_data(seed)
    w = (np.random.default_rng(seed).random(len(d.y_true)) > 0.3).astype(float)
    w[:3] = 1.0  # keep every group
    assert_same(evaluate(name, d, w), evaluate(name, d.take(w > 0)))


@pytest.mark.parametrize("name", list(METRICS))
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100.0))
def test_weight_scale_is_irrelevant(name, seed, scale):
    d = make_data(seed)
    w = np.random.default_rng(seed).random(len(d.y_true)) + 0.1
    assert_same(evaluate(name, d, w * scale), evaluate(name, d, w), atol=1e-9)


@pytest.mark.parametrize("name", list(METRICS))
def test_length_mismatch_raises(name):
    d = make_data(0)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        METRICS[name](d, np.ones(len(d.y_true) - 1))


@pytest.mark.parametrize("name", list(METRICS))
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1))
def test_row_permutation_invariance(name, seed):
    d = make_data(seed)
    w = np.random.default_rng(seed).random(len(d.y_true))
    perm = np.random.default_rng(seed + 1).permutation(len(d.y_true))
    assert_same(evaluate(name, d.take(perm), w[perm]), evaluate(name, d, w), atol=1e-12)


AGGREGATES = [k for k in METRICS if "/" in k or k.startswith(("es_", "psd", "worst", "calibration"))]


@pytest.mark.parametrize("name", AGGREGATES)
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1))
def test_group_relabelling_leaves_aggregates_unchanged(name, seed):
    d = make_data(seed)
    relabelled = Data(d.y_true, d.y_pred, d.y_score, np.vectorize({"a": "z", "b": "a", "c": "m"}.get)(d.sf))
    assert_same(evaluate(name, relabelled), evaluate(name, d), atol=1e-12)


def test_group_relabelling_permutes_by_group():
    d = make_data(3)
    mapping = {"a": "z", "b": "a", "c": "m"}
    rep = fm.fairness_report(d.y_true, d.y_pred, sensitive_features=d.sf)
    rep2 = fm.fairness_report(d.y_true, d.y_pred, sensitive_features=np.vectorize(mapping.get)(d.sf))
    back = rep2.by_group.rename(index={v: k for k, v in mapping.items()}).loc[rep.by_group.index]
    assert_same(back.to_numpy(float), rep.by_group.to_numpy(float), atol=0)


# -- streaming ----------------------------------------------------------------------------------
def _batches(n, sizes):
    edges = np.cumsum([0] + list(sizes))
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if a < n]


@pytest.mark.parametrize("weighted", [False, True])
def test_streaming_equals_one_shot(weighted):
    rng = np.random.default_rng(7)
    n = 500
    sf = np.c_[rng.choice(list("abc"), n), rng.choice(["x", "y"], n)]
    y_true, y_pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    w = rng.random(n) * 5 if weighted else None
    sf[:40, 0] = "a"  # the first batch misses groups b and c
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.UndefinedMetricWarning)
        one = fm.fairness_report(y_true, y_pred, sensitive_features=sf, sample_weight=w)
        acc = fm.FairnessAccumulator()
        for s in _batches(n, [40, 13, 200, 1, 246]):
            acc.update(y_true[s], y_pred[s], sf[s], None if w is None else w[s])
        streamed = acc.compute()
    assert list(streamed.by_group.index) == list(one.by_group.index)
    assert_same(streamed.by_group.to_numpy(float), one.by_group.to_numpy(float), atol=1e-12)
    for method in ("between_groups", "to_overall"):
        for agg in ("worst_case", "mean"):
            assert_same(streamed.measures(method, agg).to_numpy(), one.measures(method, agg).to_numpy(), atol=1e-12)


def test_streaming_fixed_groups_keeps_absent_slots_and_merges():
    """An absent group in a batch must not shift slots (torchmetrics #3489)."""
    y_true = torch.tensor([1, 0, 1, 1, 0, 1])
    y_pred = torch.tensor([1, 0, 0, 1, 1, 1])
    groups = torch.tensor([2, 2, 0, 0, 1, 2])
    one = fm.FairnessAccumulator(num_groups=3)
    one.update(y_true, y_pred, groups)
    first, second = fm.FairnessAccumulator(num_groups=3), fm.FairnessAccumulator(num_groups=3)
    first.update(y_true[:2], y_pred[:2], groups[:2])  # only group 2
    second.update(y_true[2:], y_pred[2:], groups[2:])
    merged = first.merge(second).compute()
    assert torch.equal(merged.table, one.table_)
    assert merged.by_group["n"].tolist() == [2, 1, 3]
    first_only = fm.FairnessAccumulator(num_groups=3)
    first_only.update(y_true[:2], y_pred[:2], groups[:2])
    assert first_only.table_[1, 2].sum() == 2 and first_only.table_[1, :2].sum() == 0


def test_streaming_merge_of_discovered_groups_equals_one_shot():
    rng = np.random.default_rng(1)
    n = 300
    sf = rng.choice(["p", "q", "r"], n)
    y_true, y_pred = rng.integers(0, 2, n), rng.integers(0, 2, n)
    a, b = fm.FairnessAccumulator(), fm.FairnessAccumulator()
    a.update(y_true[:100], y_pred[:100], sf[:100])
    b.update(y_true[100:], y_pred[100:], sf[100:])
    merged = a.merge(b).compute()
    one = fm.fairness_report(y_true, y_pred, sensitive_features=sf)
    assert_same(merged.by_group.to_numpy(float), one.by_group.to_numpy(float), atol=1e-12)


def test_streaming_reset_and_compute_before_update():
    acc = fm.FairnessAccumulator()
    with pytest.raises(ValueError, match="at least one call to `update`"):
        acc.compute()
    acc.update([1, 0], [1, 1], ["a", "b"])
    acc.reset()
    assert acc.table_ is None
    with pytest.raises(ValueError, match="at least one call to `update`"):
        acc.compute()
