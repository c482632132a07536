"""Every bad input gets a ValueError/TypeError naming the argument, the expectation and the value."""

import numpy as np
import pandas as pd
import pytest
import torch

import fairlib.metrics as fm

SF = list("aabb")


def dpd(y_true=(0, 1, 1, 0), y_pred=(1, 1, 0, 0), sf=SF, **kw):
    return fm.demographic_parity_difference(list(y_true), list(y_pred), sensitive_features=sf, **kw)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: dpd(y_pred=[1, 1, 0]), ValueError,
         r"inconsistent numbers of samples: `y_true` has 4, `y_pred` has 3, `sensitive_features` has 4"),
        (lambda: dpd(sf=list("aab")), ValueError, r"`sensitive_features` has 3"),
        (lambda: dpd(sample_weight=[1, 2]), ValueError, r"`sample_weight` has 2"),
        (lambda: dpd(y_true=[0, 1, 2, 0]), ValueError,
         r"Expected `y_true` to contain binary labels from \{0, 1\} or \{-1, 1\}, but got values \[0, 1, 2\]"),
        (lambda: dpd(y_pred=[0.2, 0.9, 1, 0]), ValueError,
         r"Expected `y_pred` to contain binary labels .* but got values \[0, 0.2, 0.9, 1\]\. Threshold scores"),
        (lambda: dpd(y_true=[-1, 1, 1, -1], y_pred=[0, 1, 1, 0]), ValueError,
         r"Expected `y_true` and `y_pred` to contain binary labels"),
        (lambda: dpd(y_pred=[float("nan"), 1, 0, 0]), ValueError,
         r"Expected `y_pred` to be finite, but got NaN at 1 position\(s\) \(first at index 0\)"),
        (lambda: dpd(y_true=[0, 1, float("inf"), 0]), ValueError,
         r"Expected `y_true` to be finite, but got infinity at 1 position\(s\) \(first at index 2\)"),
        (lambda: dpd(sample_weight=[1, -0.5, 1, 1]), ValueError,
         r"Expected `sample_weight` to be non-negative, but got -0.5 at index 1"),
        (lambda: dpd(sample_weight=[1, float("nan"), 1, 1]), ValueError,
         r"Expected `sample_weight` to be finite, but got NaN"),
        (lambda: dpd(sf=["a", None, "b", "b"]), ValueError,
         r"Expected `sensitive_features` to have no missing values, but column 'sensitive_feature_0' has 1 \(first at row 1\)"),
        (lambda: dpd(sf=pd.DataFrame({"race": ["x", "y", np.nan, np.nan], "sex": list("fmfm")})), ValueError,
         r"column 'race' has 2 \(first at row 2\)"),
        (lambda: dpd(sf=torch.tensor([0.0, float("nan"), 1.0, 1.0])), ValueError,
         r"no missing values, but column 'sensitive_feature_0' has 1"),
        (lambda: dpd(y_true=[], y_pred=[], sf=[]), ValueError, r"Expected `y_true` to be non-empty, but got 0 samples"),
        (lambda: dpd(sf=None), TypeError, r"Expected `sensitive_features` to be an array-like, DataFrame or dict of columns, but got None"),
        (lambda: fm.selection_rate(None, [1, 0]), TypeError, r"Expected `y_true` to be an array-like of numbers, but got None"),
        (lambda: dpd(y_true=list("abab")), TypeError, r"Expected `y_true` to be numeric or boolean values, but got dtype <U1"),
        (lambda: fm.selection_rate(np.zeros((4, 2)), [1, 0, 1, 0]), ValueError,
         r"Expected `y_true` to be 1-dimensional, but got shape \(4, 2\)"),
        (lambda: dpd(method="pairwise"), ValueError,
         r"Expected `method` to be one of 'between_groups', 'to_overall', but got 'pairwise'"),
        (lambda: fm.equalized_odds_difference([0, 1], [0, 1], sensitive_features=["a", "b"], agg="max"), ValueError,
         r"Expected `agg` to be one of 'worst_case', 'mean', but got 'max'"),
        (lambda: fm.roc_auc_by_group([0, 1], [0.1, float("nan")], sensitive_features=["a", "a"]), ValueError,
         r"Expected `y_score` to be finite, but got NaN"),
        (lambda: fm.expected_calibration_error([0, 1], [0.1, 1.5], sensitive_features=["a", "a"]), ValueError,
         r"Expected `y_score` to be probabilities in \[0, 1\], but got 1.5 at index 1"),
        (lambda: fm.expected_calibration_error([0, 1], [0.1, 0.5], sensitive_features=["a", "a"], n_bins=0), ValueError,
         r"Expected `n_bins` to be a positive integer, but got 0"),
        (lambda: fm.calibration_gap([0, 1], [0.1, 0.5], sensitive_features=["a", "b"], strategy="kmeans"), ValueError,
         r"Expected `strategy` to be one of 'uniform', 'quantile', but got 'kmeans'"),
        (lambda: fm.es_metric(fm.accuracy_by_group([0, 1], [0, 1], sensitive_features=["a", "b"]), mode="var"),
         ValueError, r"Expected `mode` to be one of 'abs', 'std', but got 'var'"),
        (lambda: fm.es_metric(fm.accuracy_by_group([0, 1], [0, 1], sensitive_features=["a", "b"]), alpha=-1),
         ValueError, r"Expected `alpha` to be a finite non-negative number, but got -1"),
        (lambda: fm.fairness_report([0, 1], [0, 1], sensitive_features=["a", "b"]).bootstrap(1), ValueError,
         r"Expected `n_boot` to be an integer >= 2, but got 1"),
        (lambda: fm.fairness_report([0, 1], [0, 1], sensitive_features=["a", "b"]).bootstrap(10, level=95), ValueError,
         r"Expected `level` to be in \(0, 1\), but got 95"),
        (lambda: fm.fairness_report([0, 1], [0, 1], sensitive_features=["a", "b"], sample_weight=[1, 2]).bootstrap(
            10, method="multinomial"), ValueError, r"Expected unweighted data for `method='multinomial'`.*use method='poisson'"),
        (lambda: fm.fairness_report([0, 1], [0, 1], sensitive_features=["a", "b"]).rate("recall"), ValueError,
         r"Expected `name` to be one of 'selection_rate'.*but got 'recall'"),
    ],
)
@pytest.mark.filterwarnings("ignore::fairlib.metrics.UndefinedMetricWarning")
def test_error_messages(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_accumulator_errors():
    acc = fm.FairnessAccumulator(num_groups=2)
    with pytest.raises(ValueError, match=r"integer codes in \[0, 2\), but got values \[2, 5\]"):
        acc.update([1, 0, 1], [1, 1, 0], [0, 2, 5])
    with pytest.raises(ValueError, match=r"Expected `num_groups` to be a positive integer or None, but got 0"):
        fm.FairnessAccumulator(num_groups=0).update([1], [1], [0])
    with pytest.raises(ValueError, match=r"`group_names` to have 2 entries"):
        a = fm.FairnessAccumulator(num_groups=2, group_names=["x"])
        a.update([1], [1], [0])
        a.compute()
    with pytest.raises(ValueError, match=r"Expected `other` to have num_groups=2, but got None"):
        fm.FairnessAccumulator(num_groups=2).merge(fm.FairnessAccumulator())
    with pytest.raises(TypeError, match=r"Expected `other` to be a FairnessAccumulator, but got dict"):
        fm.FairnessAccumulator().merge({})
    b = fm.FairnessAccumulator()
    b.update([1, 0], [1, 0], pd.DataFrame({"race": ["x", "y"]}))
    with pytest.raises(ValueError, match=r"columns \['race'\] as in earlier updates, but got \['sex'\]"):
        b.update([1, 0], [1, 0], pd.DataFrame({"sex": ["f", "m"]}))
    weighted = fm.FairnessAccumulator()
    weighted.update([1, 0], [1, 0], ["a", "b"], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"has sample weights and no rows"):
        weighted.compute().bootstrap(10)
