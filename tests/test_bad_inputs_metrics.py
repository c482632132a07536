"""Bad inputs to the metrics: one row per (callable, bad argument), each a clear fairlib error.

Every row asserts the exception type and that the message names the argument in
backticks, in the one message shape ``Expected `name` to be ..., but got ....``.
Also: pandas inputs (Series, DataFrame, Categorical) give fairlearn's answers without
torch's "The given NumPy array is not writable" warning.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import fairlib.metrics as fm

pytestmark = pytest.mark.filterwarnings("ignore::fairlib.metrics.UndefinedMetricWarning")

Y_TRUE = [0, 1, 1, 0, 1, 0]
Y_PRED = [1, 1, 0, 0, 1, 0]
Y_SCORE = [0.9, 0.8, 0.3, 0.2, 0.7, 0.4]
SF = list("aabbcc")
RATES = ["selection_rate", "true_positive_rate", "false_positive_rate", "true_negative_rate",
         "false_negative_rate", "accuracy"]
PARITY = ["demographic_parity_difference", "demographic_parity_ratio",
          "equal_opportunity_difference", "equal_opportunity_ratio",
          "equalized_odds_difference", "equalized_odds_ratio"]


def _accumulate(y_true, y_pred, *, sensitive_features, sample_weight=None, zero_division=np.nan):
    acc = fm.FairnessAccumulator(zero_division=zero_division)
    acc.update(y_true, y_pred, sensitive_features, sample_weight)
    return acc.compute()


# name -> (callable, keyword arguments of a valid call); positional: y_true, y_pred/y_score.
CALLS = {
    **{name: (getattr(fm, name), {}) for name in RATES},
    **{name: (getattr(fm, name), {"sensitive_features": SF}) for name in PARITY},
    "fairness_report": (fm.fairness_report, {"sensitive_features": SF}),
    "accuracy_by_group": (fm.accuracy_by_group, {"sensitive_features": SF}),
    "worst_group_accuracy": (fm.worst_group_accuracy, {"sensitive_features": SF}),
    "roc_auc_by_group": (fm.roc_auc_by_group, {"sensitive_features": SF}),
    "FairnessAccumulator": (_accumulate, {"sensitive_features": SF}),
}
SCORES = {"roc_auc_by_group"}
HAS_ZERO_DIVISION = set(RATES) | set(PARITY) | {"fairness_report", "FairnessAccumulator"}
HAS_GROUPS = set(CALLS) - set(RATES)

# (argument, bad value, exception type, applies to)
BAD = [
    ("zero_division", "x", TypeError, HAS_ZERO_DIVISION),
    ("zero_division", None, TypeError, HAS_ZERO_DIVISION),
    ("zero_division", True, TypeError, HAS_ZERO_DIVISION),
    ("zero_division", 2.0, ValueError, HAS_ZERO_DIVISION),
    ("zero_division", -1, ValueError, HAS_ZERO_DIVISION),
    ("sample_weight", True, TypeError, set(CALLS)),
    ("sample_weight", 1.5, TypeError, set(CALLS)),
    ("sample_weight", "abcdef", TypeError, set(CALLS)),
    ("y_true", 1, TypeError, set(CALLS)),
    ("y_true", np.float64(1.0), TypeError, set(CALLS)),
    ("y_true", torch.tensor(1), TypeError, set(CALLS)),
    ("y_pred", 1, TypeError, set(CALLS) - SCORES),
    ("y_score", 0.5, TypeError, SCORES),
    ("sensitive_features", 1, TypeError, HAS_GROUPS),
    ("sensitive_features", "aabbcc", TypeError, HAS_GROUPS),
    ("sensitive_features", np.array(0.2), TypeError, HAS_GROUPS),
    ("sensitive_features", np.array([0, 0, np.nan, 1, 1, 1]), ValueError, HAS_GROUPS),
    ("sensitive_features", torch.tensor([0.0, 0, 1, float("nan"), 1, 1]), ValueError, HAS_GROUPS),
    ("sensitive_features", pd.Categorical(["a", "a", None, "b", "b", "b"]), ValueError,
     HAS_GROUPS),
]
ROWS = [(call, arg, value, error) for arg, value, error, where in BAD for call in sorted(where)]


def _call(name, **override):
    fn, kwargs = CALLS[name]
    second = "y_score" if name in SCORES else "y_pred"
    args = {"y_true": Y_TRUE, second: Y_SCORE if name in SCORES else Y_PRED, **kwargs, **override}
    return fn(args.pop("y_true"), args.pop(second), **args)


@pytest.mark.parametrize(("call", "arg", "value", "error"), ROWS,
                         ids=[f"{c}-{a}={v!r}"[:60] for c, a, v, _ in ROWS])
@pytest.mark.filterwarnings("ignore::fairlib.metrics.UndefinedMetricWarning")
def test_bad_argument_is_named(call, arg, value, error):
    with pytest.raises(error) as info:
        _call(call, **{arg: value})
    message = str(info.value)
    assert f"`{arg}`" in message, message
    assert message.startswith("Expected"), message


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.filterwarnings("ignore::fairlib.metrics.UndefinedMetricWarning")
def test_valid_call_of_every_row_works(call):
    """The table's baseline call is valid, so each row's error comes from its bad argument."""
    _call(call)


def _quiet(fn):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = fn()
    seen = [w for w in seen if not issubclass(w.category, fm.UndefinedMetricWarning)]
    assert not seen, [str(w.message) for w in seen]
    return out


def test_float_groups_are_labels_never_truncated():
    """0.2 and 0.7 are two groups (as in fairlearn), not one group 0."""
    codes = torch.tensor([0.2, 0.2, 0.7] * 2)
    report = _quiet(lambda: fm.fairness_report(Y_TRUE, Y_PRED, sensitive_features=codes))
    assert list(report.by_group.index) == pytest.approx([0.2, 0.7])
    integral = fm.fairness_report(Y_TRUE, Y_PRED, sensitive_features=np.array([0.0, 1.0] * 3))
    assert list(integral.by_group.index) == [0.0, 1.0]


def test_pandas_inputs_match_lists_without_warnings():
    df = pd.DataFrame({"y": Y_TRUE, "p": Y_PRED, "w": [1.0, 2, 1, 1, 3, 1], "g": SF})
    expected = fm.demographic_parity_difference(Y_TRUE, Y_PRED, sensitive_features=SF,
                                                sample_weight=df["w"].tolist())
    for sf in (df["g"], df[["g"]], pd.Categorical(SF), pd.Index(SF), df["g"].astype("category")):
        got = _quiet(lambda sf=sf: fm.demographic_parity_difference(
            df["y"], df["p"], sensitive_features=sf, sample_weight=df["w"]))
        assert float(got) == float(expected)
    _quiet(lambda: fm.fairness_report(df[["y"]], df["p"], sensitive_features=df["g"]))
    _quiet(lambda: fm.roc_auc_by_group(df["y"], pd.Series(Y_SCORE), sensitive_features=df["g"]))


def test_categorical_groups_as_fairlearn():
    """Groups named by the values that occur, in sorted order, whatever the category order."""
    fairlearn = pytest.importorskip("fairlearn.metrics")
    cat = pd.Categorical(SF, categories=["c", "z", "b", "a"])
    report = fm.fairness_report(Y_TRUE, Y_PRED, sensitive_features=cat)
    ours = report.rate("selection_rate").to_series()
    ref = fairlearn.MetricFrame(metrics=fairlearn.selection_rate, y_true=Y_TRUE, y_pred=Y_PRED,
                                sensitive_features=cat).by_group
    assert list(ours.index) == list(ref.index) == ["a", "b", "c"]
    np.testing.assert_array_equal(ours.to_numpy(), ref.to_numpy())
    assert float(fm.demographic_parity_difference(Y_TRUE, Y_PRED, sensitive_features=cat)) == \
        fairlearn.demographic_parity_difference(Y_TRUE, Y_PRED, sensitive_features=cat)


@pytest.mark.parametrize("value", [0, 1, 0.0, 1.0, np.float32(0.5), float("nan")])
def test_valid_zero_division_values(value):
    out = fm.true_positive_rate([0, 0], [1, 0], zero_division=value)
    assert torch.isnan(out) if value != value else float(out) == float(value)


def test_intersection_ids_refuses_float_codes():
    with pytest.raises(TypeError, match=r"`columns\[0\]` to be a tensor of integer codes"):
        fm.intersection_ids([torch.tensor([0.2, 0.7])])


def test_the_accumulator_names_its_group_index_and_refuses_an_empty_name():
    import torch

    from fairlib.metrics import FairnessAccumulator

    acc = FairnessAccumulator(num_groups=2, group_names=["asian", "white"], name="race")
    acc.update(torch.tensor([1, 0]), torch.tensor([1, 1]), torch.tensor([0, 1]))
    assert acc.compute().by_group.index.name == "race"
    bad = FairnessAccumulator(num_groups=2, name="")
    bad.update(torch.tensor([1, 0]), torch.tensor([1, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="`name` to be a non-empty string"):
        bad.compute()
