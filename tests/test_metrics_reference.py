"""Golden values from reference/metrics.md §1.3-§1.8 (fairlearn 0.15 semantics)."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import fairlib.metrics as fm

Y_TRUE = [0, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1]
Y_PRED = [0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0]
SF = list("bbabbcccaacabccbcc")
W = [1 + (i % 3) for i in range(18)]

PARITY = {
    "DPD": fm.demographic_parity_difference,
    "DPR": fm.demographic_parity_ratio,
    "EOppD": fm.equal_opportunity_difference,
    "EOppR": fm.equal_opportunity_ratio,
}

# (quantity, method, agg) -> value, from metrics.md §1.7 (unweighted) and §1.8 (weighted)
UNWEIGHTED = {
    ("DPD", "between_groups"): 0.25, ("DPD", "to_overall"): 0.194444,
    ("DPR", "between_groups"): 0.666667, ("DPR", "to_overall"): 0.740741,
    ("EOppD", "between_groups"): 0.2, ("EOppD", "to_overall"): 0.1,
    ("EOppR", "between_groups"): 0.666667, ("EOppR", "to_overall"): 0.8,
    ("EOD", "between_groups", "worst_case"): 1.0, ("EOD", "between_groups", "mean"): 0.6,
    ("EOD", "to_overall", "worst_case"): 0.666667, ("EOD", "to_overall", "mean"): 0.383333,
    ("EOR", "between_groups", "worst_case"): 0.0, ("EOR", "between_groups", "mean"): 0.333333,
    ("EOR", "to_overall", "worst_case"): 0.0, ("EOR", "to_overall", "mean"): 0.4,
}
WEIGHTED = {
    ("DPD", "between_groups"): 0.255556, ("DPD", "to_overall"): 0.172222,
    ("DPR", "between_groups"): 0.634921, ("DPR", "to_overall"): 0.753968,
    ("EOppD", "between_groups"): 0.298701, ("EOppD", "to_overall"): 0.154762,
    ("EOppR", "between_groups"): 0.477273, ("EOppR", "to_overall"): 0.654545,
    ("EOD", "between_groups", "worst_case"): 1.0, ("EOD", "between_groups", "mean"): 0.649351,
    ("EOD", "to_overall", "worst_case"): 0.75, ("EOD", "to_overall", "mean"): 0.452381,
    ("EOR", "between_groups", "worst_case"): 0.0, ("EOR", "between_groups", "mean"): 0.238636,
    ("EOR", "to_overall", "worst_case"): 0.0, ("EOR", "to_overall", "mean"): 0.327273,
}


def _value(key, weights):
    name, method = key[0], key[1]
    if name in PARITY:
        f = PARITY[name]
        return f(Y_TRUE, Y_PRED, sensitive_features=SF, method=method, sample_weight=weights)
    f = fm.equalized_odds_difference if name == "EOD" else fm.equalized_odds_ratio
    return f(Y_TRUE, Y_PRED, sensitive_features=SF, method=method, agg=key[2], sample_weight=weights)


@pytest.mark.parametrize("key", list(UNWEIGHTED))
def test_unweighted_reference_values(key):
    assert float(_value(key, None)) == pytest.approx(UNWEIGHTED[key], abs=1e-6)


@pytest.mark.parametrize("key", list(WEIGHTED))
def test_weighted_reference_values(key):
    assert float(_value(key, W)) == pytest.approx(WEIGHTED[key], abs=1e-6)


def test_documented_values_exact():
    assert float(fm.equal_opportunity_difference(Y_TRUE, Y_PRED, sensitive_features=SF)) == pytest.approx(
        0.2, abs=1e-12
    )
    assert float(fm.demographic_parity_difference(Y_TRUE, Y_PRED, sensitive_features=SF)) == pytest.approx(
        0.25, abs=1e-12
    )


def test_results_are_0dim_float64_tensors():
    out = fm.demographic_parity_ratio(torch.tensor(Y_TRUE), torch.tensor(Y_PRED), sensitive_features=SF)
    assert isinstance(out, torch.Tensor) and out.ndim == 0 and out.dtype == torch.float64
    assert out.device == torch.device("cpu")


def test_by_group_table_unweighted():
    rep = fm.fairness_report(Y_TRUE, Y_PRED, sensitive_features=SF)
    bg = rep.by_group
    assert bg["n"].tolist() == [4, 6, 8]
    assert bg["n_positive"].tolist() == [2, 5, 5]
    assert bg["n_negative"].tolist() == [2, 1, 3]
    np.testing.assert_allclose(bg["selection_rate"], [0.75, 0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(bg["true_positive_rate"], [0.5, 0.6, 0.4], atol=1e-12)
    np.testing.assert_allclose(bg["false_positive_rate"], [1.0, 0.0, 2 / 3], atol=1e-12)
    ov = rep.overall
    assert ov["n"] == 18 and ov["n_positive"] == 12 and ov["n_negative"] == 6
    assert ov["selection_rate"] == pytest.approx(10 / 18, abs=1e-12)
    assert ov["true_positive_rate"] == pytest.approx(0.5, abs=1e-12)
    assert ov["false_positive_rate"] == pytest.approx(2 / 3, abs=1e-12)


def test_by_group_table_weighted():
    bg = fm.fairness_report(Y_TRUE, Y_PRED, sensitive_features=SF, sample_weight=W).by_group
    np.testing.assert_allclose(bg["weighted_n"], [10, 8, 18])
    np.testing.assert_allclose(bg["selection_rate"], [0.7, 0.5, 0.444444], atol=1e-6)
    np.testing.assert_allclose(bg["true_positive_rate"], [0.5, 0.571429, 0.272727], atol=1e-6)
    np.testing.assert_allclose(bg["false_positive_rate"], [1.0, 0.0, 0.714286], atol=1e-6)
    # Kish effective sample size (sum w)^2 / sum w^2 for group a
    wa = np.array(W)[np.array(SF) == "a"]
    assert bg.loc["a", "effective_n"] == pytest.approx(wa.sum() ** 2 / (wa**2).sum())


def test_repeated_rows_equal_integer_weights():
    rep_t = np.repeat(Y_TRUE, W)
    rep_p = np.repeat(Y_PRED, W)
    rep_s = np.repeat(SF, W)
    assert float(fm.demographic_parity_difference(rep_t, rep_p, sensitive_features=rep_s)) == pytest.approx(
        0.255556, abs=1e-6
    )
    assert float(fm.equalized_odds_difference(rep_t, rep_p, sensitive_features=rep_s)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "y_pred, worst, mean",
    [([0, 1, 0, 0], math.nan, 0.0), ([1, 0, 0, 0], 0.0, 0.0)],
)
def test_equalized_odds_ratio_nan_quirk(y_pred, worst, mean):
    """metrics.md §1.3: built-in min over [tpr, fpr] keeps a NaN first value."""
    kw = dict(sensitive_features=list("aabb"), zero_division=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.UndefinedMetricWarning)
        w = float(fm.equalized_odds_ratio([1, 0, 1, 0], y_pred, agg="worst_case", **kw))
        m = float(fm.equalized_odds_ratio([1, 0, 1, 0], y_pred, agg="mean", **kw))
    assert (math.isnan(w) and math.isnan(worst)) or w == worst
    assert m == mean


def test_intersection_with_absent_combinations():
    """metrics.md §1.4: absent combinations are NaN rows that aggregates skip."""
    sf = pd.DataFrame({"sf1": list("aabbaa"), "sf2": list("xxyyxx")})
    y_pred = [1, 0, 0, 1, 1, 0]
    with pytest.warns(fm.UndefinedMetricWarning, match=r"no samples in group\(s\) \[\('a', 'y'\), \('b', 'x'\)\]"):
        rep = fm.fairness_report([0] * 6, y_pred, sensitive_features=sf)
    sr = rep.by_group["selection_rate"]
    assert sr[("a", "x")] == 0.5 and sr[("b", "y")] == 0.5
    assert math.isnan(sr[("a", "y")]) and math.isnan(sr[("b", "x")])
    with pytest.warns(fm.UndefinedMetricWarning):
        assert float(fm.demographic_parity_difference([0] * 6, y_pred, sensitive_features=sf)) == 0.0
        assert float(fm.demographic_parity_ratio([0] * 6, y_pred, sensitive_features=sf)) == 1.0
    assert rep.difference()["selection_rate"] == 0.0


def test_unobserved_categories_are_not_groups():
    sf = pd.Series(pd.Categorical(list("aabb"), categories=list("abz")), name="g")
    rep = fm.fairness_report([1, 0, 1, 0], [1, 0, 0, 1], sensitive_features=sf)
    assert list(rep.by_group.index) == ["a", "b"]


def test_zero_denominator_is_nan_with_one_warning_or_fairlearn_zero():
    y_true, y_pred, sf = [0, 0, 1, 1], [1, 0, 1, 0], list("aabb")
    with pytest.warns(fm.UndefinedMetricWarning, match=r"true_positive_rate has a zero denominator in group\(s\) \['a'\]") as rec:
        rep = fm.fairness_report(y_true, y_pred, sensitive_features=sf)
        tpr_gap = fm.equal_opportunity_difference(y_true, y_pred, sensitive_features=sf)
    assert math.isnan(rep.by_group.loc["a", "true_positive_rate"])
    assert float(tpr_gap) == 0.0  # only group b is defined
    assert len(rec) == 2  # one per call
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zero = fm.equal_opportunity_difference(y_true, y_pred, sensitive_features=sf, zero_division=0.0)
    assert float(zero) == 0.5  # fairlearn: TPR_a = 0, TPR_b = 0.5


def test_minus_one_plus_one_labels():
    assert float(fm.true_positive_rate([-1, 1, 1], [1, 1, -1])) == 0.5


def test_multiple_columns_as_ndarray_tensor_and_dict_agree():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 50), rng.integers(0, 3, 50)
    yt, yp = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
    kw = dict(zero_division=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fm.UndefinedMetricWarning)
        v1 = fm.equalized_odds_difference(yt, yp, sensitive_features=np.c_[a, b], **kw)
        v2 = fm.equalized_odds_difference(yt, yp, sensitive_features=torch.tensor(np.c_[a, b]), **kw)
        v3 = fm.equalized_odds_difference(yt, yp, sensitive_features={"a": a, "b": list(b)}, **kw)
    assert float(v1) == float(v2) == float(v3)
