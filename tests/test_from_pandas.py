"""FairDataset.from_pandas, and FairDataset refusing codes and names that disagree."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from fairlib.datasets import FairDataset


def practitioner_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """The issue's table: numeric and string features, a yes/no label, a 3-group string column."""
    rng = np.random.default_rng(seed)
    race = rng.choice(["white", "black", "asian"], n, p=[0.5, 0.3, 0.2])
    return pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "income": rng.normal(50.0, 10.0, n),
        "city": rng.choice(["Oslo", "Lima", "Pune"], n),
        "race": race,
        "approved": np.where(rng.random(n) < 0.4, "yes", "no"),
    })


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


def test_practitioner_frame_in_one_call():
    df = practitioner_frame()
    ds = _quiet(lambda: FairDataset.from_pandas(df, label="approved", label_positive="yes",
                                                sensitive="race"))
    assert ds.feature_names == ("age", "income", "city=Lima", "city=Oslo", "city=Pune")
    assert ds.group_categories == ("asian", "black", "white")
    assert ds.label_name == "approved=yes"
    # Codes and names agree row by row, and the summary counts the right people.
    names = np.array(ds.group_categories)[ds.group.numpy()]
    assert (names == df["race"].to_numpy()).all()
    counts = df["race"].value_counts()
    assert ds.summary()["n"].to_dict() == {k: int(counts[k]) for k in ds.group_categories}
    yes = (df["approved"] == "yes").to_numpy().astype(np.int64)
    assert torch.equal(ds.y, torch.from_numpy(yes))
    np.testing.assert_allclose(ds.X[:, 1].numpy(), df["income"].to_numpy(np.float32))
    assert torch.equal(ds.source_index, torch.arange(len(df)))


def test_round_trip_to_split_fit_and_evaluate():
    from fairlib.train import LogisticRegression, evaluate, fit

    ds = FairDataset.from_pandas(practitioner_frame(200), label="approved", label_positive="yes",
                                 sensitive="race")
    train, meta, test = ds.split(seed=0)
    assert train.scaler is not None and abs(float(train.X[:, 0].mean())) < 1e-5
    model = LogisticRegression(train.X.shape[1], seed=0)
    fit(model, train, epochs=1, device="cpu")
    report = evaluate(model, test)
    assert len(report.by_group) == 3


def test_every_dtype_is_handled():
    n = 8
    df = pd.DataFrame({
        "x": np.arange(n, dtype=np.float64),
        "kids": pd.array([0, 1, 2, 0, 1, 2, 0, 1], dtype="Int64"),
        "member": [True, False] * 4,
        "flag": pd.array([True, False, False, True] * 2, dtype="boolean"),
        "job": pd.array(["x", "y"] * 4, dtype="string"),
        "tier": pd.Categorical(["lo", "hi"] * 4, categories=["lo", "hi", "mid"]),
        "obj": np.array(["u", 1, "u", 1, "u", 1, "u", 1], dtype=object),
        "sex": pd.Categorical(["m", "f", "f", "m"] * 2, categories=["m", "f", "x"]),
        "label": pd.array([True, False, True, True, False, False, True, False], dtype="boolean"),
    })
    ds = _quiet(lambda: FairDataset.from_pandas(df, label="label", sensitive="sex"))
    assert ds.feature_names == ("x", "kids", "member", "flag", "job=x", "job=y", "tier=hi",
                                "tier=lo", "obj=1", "obj=u")
    assert ds.y.tolist() == [1, 0, 1, 1, 0, 0, 1, 0]
    # A Categorical keeps its own category order, unused categories included.
    assert ds.group_categories == ("m", "f", "x")
    assert ds.group.tolist() == [0, 1, 1, 0] * 2
    assert ds.summary()["n"].tolist() == [4, 4, 0]
    assert ds.X.dtype == torch.float32 and ds.X[:, 2].tolist() == [1.0, 0.0] * 4


@pytest.mark.parametrize(("column", "categories"), [
    ([3, 1, 3, 10], ("1", "3", "10")),
    ([0.2, 0.7, 0.2, 0.7], ("0.2", "0.7")),
    ([True, False, False, True], ("False", "True")),
    (pd.array(["b", "a", "b", "a"], dtype="string"), ("a", "b")),
])
def test_sensitive_categories_are_the_sorted_values(column, categories):
    df = pd.DataFrame({"x": [1.0, 2, 3, 4], "g": column, "y": [0, 1, 1, 0]})
    ds = FairDataset.from_pandas(df, label="y", sensitive="g")
    assert ds.group_categories == categories
    assert [ds.group_categories[c] for c in ds.group.tolist()] == [str(v) for v in df["g"]]
    assert ds.feature_names == ("x",)


def test_several_sensitive_columns_make_the_intersection_active():
    df = practitioner_frame()
    df["sex"] = np.where(np.arange(len(df)) % 3 == 0, "f", "m")
    ds = FairDataset.from_pandas(df, label="approved", label_positive="yes",
                                 sensitive=["race", "sex"], features=["age", "income", "sex"])
    assert ds.group_name == "race & sex" and set(ds.sensitive) == {"race", "sex", "race & sex"}
    assert ds.categories["sex"] == ("f", "m")
    assert "sex=f" in ds.feature_names and "city=Lima" not in ds.feature_names


def test_standardize_is_the_default_of_split():
    df = practitioner_frame()
    raw = FairDataset.from_pandas(df, label="approved", label_positive="yes", sensitive="race",
                                  standardize=False)
    train, _, _ = raw.split(seed=0)
    assert train.scaler is None and float(train.X[:, 0].min()) >= 18
    assert raw.split(seed=0, standardize=True).train.scaler is not None


def test_missing_values_are_refused_with_the_column_named():
    df = practitioner_frame(20)
    df.loc[[3, 7], "income"] = np.nan
    df.loc[5, "city"] = None
    with pytest.raises(ValueError, match=re.escape(
            "Expected `df` to be free of missing values in the label, sensitive and feature "
            "columns (fill them, or pass dropna=True to drop those rows), but got 2 in column "
            "'income', 1 in column 'city' (first at index 3).")):
        FairDataset.from_pandas(df, label="approved", label_positive="yes", sensitive="race")
    with pytest.warns(UserWarning, match=r"dropped 3 of 20 rows with missing values \(2 in column "
                                         r"'income', 1 in column 'city'\)"):
        ds = FairDataset.from_pandas(df, label="approved", label_positive="yes", sensitive="race",
                                     dropna=True)
    assert len(ds) == 17
    assert 3 not in ds.source_index.tolist() and 5 not in ds.source_index.tolist()
    # Missing values in unused columns do not matter.
    ok = FairDataset.from_pandas(df, label="approved", label_positive="yes", sensitive="race",
                                 features=["age"])
    assert len(ok) == 20


def _df():
    return pd.DataFrame({
        "age": [25.0, 32, 47, 51], "city": ["O", "L", "O", "P"], "race": ["w", "b", "a", "w"],
        "ok": ["yes", "no", "yes", "no"], "y3": [1, 2, 3, 1], "y01": [0, 1, 1, 0],
        "when": pd.to_datetime(["2020-01-01"] * 4), "big": [1.0, np.inf, 2.0, 3.0],
    })


@pytest.mark.parametrize(("kwargs", "error", "pattern"), [
    ({"label": "ok", "sensitive": "race", "features": ["age"]}, ValueError,
     "Expected `label_positive` to be the value of column 'ok' that means y = 1 (the column is "
     "not 0/1 or boolean; it holds ['no', 'yes']), but got None."),
    ({"label": "y3", "sensitive": "race", "features": ["age"]}, ValueError,
     "it holds [1, 2, 3]), but got None."),
    ({"label": "ok", "label_positive": "Yes", "sensitive": "race", "features": ["age"]},
     ValueError, "Expected `label_positive` to be one of the values of column 'ok': "
     "['no', 'yes'], but got 'Yes'."),
    ({"label": "nope", "sensitive": "race"}, ValueError,
     "Expected `label` to be column name(s) of `df`"),
    ({"label": ["y01", "ok"], "sensitive": "race"}, ValueError,
     "Expected `label` to be one column name"),
    ({"label": "y01", "sensitive": "gender"}, ValueError,
     "Expected `sensitive` to be column name(s)"),
    ({"label": "y01", "sensitive": []}, ValueError, "Expected `sensitive` to be a column name "
     "or a non-empty list of them, but got an empty list."),
    ({"label": "y01", "sensitive": "y01"}, ValueError,
     "Expected `sensitive` to be columns other than the label"),
    ({"label": "y01", "sensitive": ["race", "race"]}, ValueError,
     "Expected `sensitive` to be distinct column names"),
    ({"label": "y01", "sensitive": "race", "features": ["age", "y01"]}, ValueError,
     "Expected `features` to be columns other than the label"),
    ({"label": "y01", "sensitive": "race", "features": []}, ValueError,
     "Expected `features` to be at least one feature column, but got none."),
    ({"label": "y01", "sensitive": "race", "features": ["when"]}, TypeError,
     "Expected `df['when']` to be numbers, booleans or categories"),
    ({"label": "y01", "sensitive": "race", "features": ["big"]}, ValueError,
     "Expected `df['big']` to be finite numbers, but got infinity at 1 row(s) "
     "(first at index 1)."),
    ({"label": "y01", "sensitive": "race", "features": ["age", "city"], "categorical": ["age"]},
     ValueError, "Expected `categorical` to list every non-numeric feature column (or to be "
     "'auto'), but got ['age'], which leaves out ['city']."),
    ({"label": "y01", "sensitive": "race", "features": ["age"], "categorical": ["city"]},
     ValueError, "Expected `categorical` to be 'auto' or feature columns, but got ['city']"),
    ({"label": "y01", "sensitive": "race", "features": ["age"], "dropna": "yes"}, TypeError,
     "Expected `dropna` to be True or False, but got 'yes'."),
    ({"label": "y01", "sensitive": "race", "features": ["age"], "standardize": None}, TypeError,
     "Expected `standardize` to be True or False, but got None."),
])
def test_bad_arguments_are_named(kwargs, error, pattern):
    with pytest.raises(error, match=re.escape(pattern)):
        FairDataset.from_pandas(_df(), **kwargs)


def test_not_a_dataframe():
    with pytest.raises(TypeError,
                       match=r"Expected `df` to be a pandas DataFrame, but got ndarray"):
        FairDataset.from_pandas(np.zeros((3, 2)), label=0, sensitive=1)


def test_numeric_columns_may_be_one_hot_encoded_on_request():
    df = _df()
    ds = FairDataset.from_pandas(df, label="y01", sensitive="race", features=["age", "y3"],
                                 categorical=["y3"])
    assert ds.feature_names == ("age", "y3=1", "y3=2", "y3=3")
    none = FairDataset.from_pandas(df, label="y01", sensitive="race", features=["age"],
                                   categorical=None)
    assert none.feature_names == ("age",)


# -- FairDataset itself: codes and names can never disagree ---------------------------------
def _codes_dataset(**kw):
    base = {"X": torch.zeros(4, 1), "y": torch.tensor([0, 1, 0, 1])}
    return FairDataset(**{**base, **kw})


def test_too_few_category_names_is_refused_naming_attribute_count_and_code():
    with pytest.raises(ValueError, match=re.escape(
            "Expected `sensitive['race']` to be codes in 0..1, but got values from 0 to 2: "
            "`categories['race']` has 2 name(s), so the largest code, 2, has no name")):
        _codes_dataset(sensitive={"race": torch.tensor([0, 1, 2, 2])},
                       categories={"race": ["white", "black"]})


def test_categorical_sensitive_brings_its_own_names():
    df = practitioner_frame(50)
    cat = pd.Categorical(df["race"])  # alphabetical codes
    ds = FairDataset(X=torch.zeros(50, 1), y=torch.zeros(50), sensitive={"race": cat})
    assert ds.group_categories == ("asian", "black", "white")
    assert (np.array(ds.group_categories)[ds.group.numpy()] == df["race"].to_numpy()).all()
    series = FairDataset(X=torch.zeros(50, 1), y=torch.zeros(50),
                         sensitive={"race": df["race"].astype("category")},
                         categories={"race": ["asian", "black", "white"]})
    assert torch.equal(series.group, ds.group)
    # The silent mislabelling: names in order of appearance for alphabetical codes.
    with pytest.raises(ValueError, match=re.escape(
            "Expected `categories['race']` to be the categories of the Categorical "
            "`sensitive['race']`, ['asian', 'black', 'white'], or left out, but got")):
        FairDataset(X=torch.zeros(50, 1), y=torch.zeros(50), sensitive={"race": cat},
                    categories={"race": list(df["race"].unique())})
    with pytest.raises(ValueError, match=r"`sensitive\['race'\]` to be a Categorical without "
                       r"missing values, but got 1 missing \(first at position 2\)"):
        _codes_dataset(sensitive={"race": pd.Categorical(["a", "b", None, "a"])})


@pytest.mark.parametrize(("codes", "error", "pattern"), [
    (np.array([0.2, 0.7, 0.2, 0.7]), TypeError,
     "Expected `sensitive['g']` to be integer codes, but got dtype torch.float64 with non-integer "
     "values such as 0.2."),
    (np.array([0.0, np.nan, 1.0, 1.0]), ValueError,
     "Expected `sensitive['g']` to be integer codes without missing values, but got NaN at 1 "
     "position(s)."),
])
def test_float_codes_are_never_truncated(codes, error, pattern):
    with pytest.raises(error, match=re.escape(pattern)):
        _codes_dataset(sensitive={"g": codes}, categories={"g": ["a", "b"]})


def test_integral_float_and_pandas_codes_are_accepted_without_warnings():
    ds = _quiet(lambda: _codes_dataset(X=pd.DataFrame({"a": [1.0, 2, 3, 4]}),
                                       y=pd.Series([0, 1, 1, 0]),
                                       sensitive={"g": pd.Series([0.0, 1.0, 1.0, 0.0])},
                                       categories={"g": ["a", "b"]}))
    assert ds.group.tolist() == [0, 1, 1, 0] and ds.X[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_dataframe_with_text_points_to_from_pandas():
    with pytest.raises(TypeError, match=re.escape(
            "Expected `X` to be a tensor or array of numbers (FairDataset.from_pandas encodes a "
            "DataFrame's text and category columns), but got a DataFrame with non-numeric "
            "column(s) ['city']")):
        _codes_dataset(X=pd.DataFrame({"age": [1, 2, 3, 4], "city": list("abab")}),
                       sensitive={"g": torch.tensor([0, 1, 0, 1])}, categories={"g": ["a", "b"]})


@pytest.mark.parametrize(("categories", "pattern"), [
    ({"g": []}, "Expected `categories['g']` to be at least one category name, but got none."),
    ({"g": ["a", "a"]},
     "Expected `categories['g']` to be distinct names, but got ['a'] more than once."),
])
def test_category_names_are_checked(categories, pattern):
    with pytest.raises(ValueError, match=re.escape(pattern)):
        _codes_dataset(sensitive={"g": torch.tensor([0, 0, 0, 0])}, categories=categories)


def test_evaluate_names_the_report_groups_by_the_attribute():
    import pandas as pd

    from fairlib.datasets import FairDataset
    from fairlib.train import MLP, evaluate

    df = pd.DataFrame({"x": [0.1, 0.5, 0.9, 0.3] * 10, "race": ["a", "b"] * 20, "y": [0, 1, 1, 0] * 10})
    data = FairDataset.from_pandas(df, label="y", sensitive="race")
    report = evaluate(MLP(data.X.shape[1], seed=0), data, device="cpu")
    assert report.by_group.index.name == "race" and list(report.by_group.index) == ["a", "b"]
