"""FairClassifier: a scikit-learn estimator around fit and the weighting strategies."""

import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import fairlib.metrics as fm
from fairlib import FairClassifier
from fairlib.weighting import FORML, JTT, L2RW, Reweighing

FAST = {"epochs": 2, "hidden": (16,), "lr": 0.01, "device": "cpu"}


@pytest.fixture(scope="module")
def table():
    """A practitioner's table: numbers, a string column, a yes/no label, 3 string groups."""
    rng = np.random.default_rng(0)
    n = 300
    race = rng.choice(["asian", "black", "white"], size=n, p=[0.2, 0.3, 0.5])
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(2.0, 3.0, size=n),
                       "job": rng.choice(["clerk", "nurse", "pilot"], size=n)})
    score = df.x1 + 0.3 * df.x2 + (df.job == "pilot") + (race == "white") + rng.normal(size=n)
    y = np.where(score > 1.0, "yes", "no")
    return df, pd.Series(y, name="approved"), pd.Series(race, name="race")


def pipeline(strategy=None, **params):
    encode = ColumnTransformer([("job", OneHotEncoder(), ["job"]),
                                ("num", StandardScaler(), ["x1", "x2"])])
    clf = FairClassifier(strategy=strategy, random_state=0, **{**FAST, **params})
    return Pipeline([("encode", encode), ("clf", clf)])


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


# Every check of scikit-learn's suite passes; only check_array_api_input is skipped, by
# scikit-learn itself when SCIPY_ARRAY_API is unset (the estimator runs on torch, not the
# array API). The checks fit without sensitive_features, so the strategy is the default ERM.
@parametrize_with_checks([FairClassifier(**{**FAST, "epochs": 3}, random_state=0)])
def test_scikit_learn_checks(estimator, check):
    check(estimator)


def test_pipeline_with_column_transformer_routes_sensitive_features(table, routing):
    df, y, race = table
    pipe = pipeline(Reweighing()).fit(df, y, sensitive_features=race)
    clf = pipe.named_steps["clf"]
    assert clf.classes_.tolist() == ["no", "yes"]
    assert clf.groups_.tolist() == ["asian", "black", "white"]
    assert clf.n_features_in_ == 5 and clf.strategy_ is not clf.strategy
    assert clf.strategy_.cell_weights_.shape == (3, 2)  # the groups reached the strategy
    assert not hasattr(clf.strategy, "cell_weights_")  # the given strategy stays unfitted
    proba = pipe.predict_proba(df)
    assert proba.shape == (len(df), 2) and np.allclose(proba.sum(1), 1.0)
    assert set(pipe.predict(df)) <= {"no", "yes"} and pipe.score(df, y) > 0.6


def test_pipeline_without_routing_takes_step_parameters(table):
    df, y, race = table
    pipe = pipeline(Reweighing()).fit(df, y, clf__sensitive_features=race)
    assert pipe.named_steps["clf"].groups_.tolist() == ["asian", "black", "white"]


def test_routing_request_can_be_turned_off(table, routing):
    df, y, race = table
    pipe = pipeline(Reweighing())
    pipe.named_steps["clf"].set_fit_request(sensitive_features=False)
    with pytest.raises(TypeError, match="sensitive_features.*not routed"):  # scikit-learn's check
        pipe.fit(df, y, sensitive_features=race)
    with pytest.raises(ValueError, match="`sensitive_features`.*Reweighing"):
        pipe.fit(df, y)


def test_cross_val_score_with_forml(table, routing):
    df, y, race = table
    scores = cross_val_score(pipeline(FORML()), df, y, cv=3, error_score="raise",
                             params={"sensitive_features": race})
    assert scores.shape == (3,) and ((scores > 0.5) & (scores <= 1)).all()


def test_grid_search_over_lr(table, routing):
    df, y, race = table
    search = GridSearchCV(pipeline(Reweighing()), {"clf__lr": [1e-3, 3e-2]}, cv=2,
                          error_score="raise").fit(df, y, sensitive_features=race)
    assert search.best_params_["clf__lr"] in (1e-3, 3e-2)
    best = search.best_estimator_.named_steps["clf"]
    assert best.groups_.tolist() == ["asian", "black", "white"]


def test_grid_search_reaches_strategy_parameters(table):
    df, y, race = table
    clf = FairClassifier("logistic", FORML(), random_state=0, **FAST)
    X = pd.get_dummies(df, dtype=float)
    search = GridSearchCV(clf, {"strategy__meta_lr": [0.5, 2.0]}, cv=2, error_score="raise")
    search.fit(X, y, sensitive_features=race)
    best = search.best_estimator_.strategy_
    assert best.meta_lr == search.best_params_["strategy__meta_lr"]
    assert best.weights_.shape == (240,)  # 80 % of the 300 rows: the rest is held out


def test_meta_split_is_held_out_and_stratified(table):
    df, y, race = table
    clf = FairClassifier("logistic", L2RW(), meta_fraction=0.25, random_state=0, **FAST)
    clf.fit(pd.get_dummies(df, dtype=float), y, sensitive_features=race)
    held_out = clf.strategy_.meta_batches_
    assert held_out.n == 75  # 25 % of 300
    codes = {g: i for i, g in enumerate(clf.groups_)}
    full = np.bincount(race.map(codes), minlength=3) / len(race)
    meta = np.bincount(held_out.group.numpy(), minlength=3) / held_out.n
    assert np.abs(full - meta).max() < 0.02


def test_jtt_gets_its_error_set_from_an_erm_stage(table):
    df, y, race = table
    clf = FairClassifier("logistic", JTT(), random_state=0, **FAST)
    clf.fit(pd.get_dummies(df, dtype=float), y)
    assert clf.strategy_.error_mask_.shape == (300,)


def test_predictions_feed_fairlearn_metric_frame(table, routing):
    from fairlearn.metrics import MetricFrame, equalized_odds_difference, selection_rate

    df, y, race = table
    pipe = pipeline(Reweighing(), epochs=3).fit(df, y, sensitive_features=race)
    y_true, y_pred = (y == "yes").astype(int), (pipe.predict(df) == "yes").astype(int)
    frame = MetricFrame(metrics=selection_rate, y_true=y_true, y_pred=y_pred,
                        sensitive_features=race)
    ours = fm.demographic_parity_difference(y_true, y_pred, sensitive_features=race)
    assert float(ours) == pytest.approx(frame.difference(), abs=1e-12)
    theirs = equalized_odds_difference(y_true, y_pred, sensitive_features=race)
    ours = fm.equalized_odds_difference(y_true, y_pred, sensitive_features=race)
    assert float(ours) == pytest.approx(theirs, abs=1e-12)


def _dropout_mlp(n_features):
    nn = torch.nn
    return nn.Sequential(nn.Linear(n_features, 16), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(16, 1), nn.Flatten(0))


@pytest.mark.parametrize("model", ["mlp", _dropout_mlp])
def test_same_random_state_same_bits(table, model):
    df, y, race = table
    X = pd.get_dummies(df, dtype=float)
    torch_state = torch.get_rng_state()
    def fitted(seed):
        clf = FairClassifier(model, Reweighing(), random_state=seed, **FAST)
        return clf.fit(X, y, sensitive_features=race)

    fits = [fitted(5), fitted(5)]
    assert torch.equal(torch.get_rng_state(), torch_state)  # the caller's generator is untouched
    assert np.array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))
    params = [torch.cat([p.flatten() for p in f.model_.parameters()]) for f in fits]
    assert torch.equal(*params)
    assert not np.array_equal(fitted(6).predict_proba(X), fits[0].predict_proba(X))


@pytest.mark.parametrize(("labels", "classes"), [
    (["no", "yes"], ["no", "yes"]), ([-1, 1], [-1, 1]), ([False, True], [False, True]),
    ([3, 7], [3, 7]),
])
def test_any_two_labels(labels, classes):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    y = np.where(X[:, 0] > 0, labels[1], labels[0])
    clf = FairClassifier("logistic", random_state=0, **FAST).fit(X, y)
    assert clf.classes_.tolist() == classes and set(clf.predict(X).tolist()) <= set(classes)


@pytest.mark.parametrize(("sensitive", "groups"), [
    (pd.Categorical(["b", "a"] * 30, categories=["b", "a"]), ["b", "a"]),  # its own order
    (np.array([2, 0] * 30), ["0", "2"]),
    (pd.DataFrame({"race": ["x", "y", "y"] * 20, "sex": ["f", "f", "m"] * 20}),
     ["x, f", "y, f", "y, m"]),  # crossed: observed combinations only
])
def test_sensitive_feature_kinds(sensitive, groups):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 2))
    clf = FairClassifier("logistic", Reweighing(), random_state=0, **FAST)
    assert clf.fit(X, X[:, 0] > 0, sensitive_features=sensitive).groups_.tolist() == groups


def test_clone_and_set_params_reach_the_strategy():
    clf = FairClassifier(strategy=FORML(meta_lr=2.0), lr=0.1)
    twin = clone(clf).set_params(strategy__meta_lr=0.5)
    assert twin.get_params()["strategy__meta_lr"] == 0.5 and clf.strategy.meta_lr == 2.0


def test_fitted_estimator_pickles(table):
    df, y, race = table
    X = pd.get_dummies(df, dtype=float)
    clf = FairClassifier(strategy=Reweighing(), random_state=0, **FAST)
    clf.fit(X, y, sensitive_features=race)
    again = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(again.predict_proba(X), clf.predict_proba(X))


X_OK = np.random.default_rng(3).normal(size=(40, 2))
Y_OK = np.array([0, 1] * 20)


@pytest.mark.parametrize(("params", "fit_args", "error", "match"), [
    ({"meta_fraction": 1.5}, {}, ValueError,
     "`meta_fraction` to be a fraction in \\(0, 1\\), but got 1.5"),
    ({"meta_fraction": 0.0}, {}, ValueError, "`meta_fraction`"),
    ({"meta_fraction": "a"}, {}, ValueError, "`meta_fraction`"),
    ({"strategy": Reweighing()}, {}, ValueError, "`sensitive_features`.*Reweighing.*None"),
    ({"strategy": FORML()}, {}, ValueError, "`sensitive_features`.*FORML"),
    ({}, {"y": np.array([0, 1, 2, 1] * 10)}, ValueError,
     "`y` to be labels of exactly two classes, but got 3 classes"),
    ({}, {"y": np.zeros(40)}, ValueError, "got 1 class"),
    ({"model": "cnn"}, {}, ValueError, "`model`"),
    ({"hidden": (0,)}, {}, ValueError, "`hidden`"),
    ({"strategy": "erm"}, {}, TypeError, "`strategy` to be a WeightingStrategy"),
    ({"epochs": 0}, {}, ValueError, "`epochs`"),
    ({"batch_size": 2.5}, {}, ValueError, "`batch_size`"),
    ({"lr": float("inf")}, {}, ValueError, "`lr`"),
    ({"lr": "0.1"}, {}, ValueError, "`lr`"),
    ({"weight_decay": -1}, {}, ValueError, "`weight_decay`"),
    ({"optimizer": "rmsprop"}, {}, ValueError, "`optimizer`"),
    ({"random_state": "a"}, {}, ValueError, "`random_state`"),
    ({"model": lambda n: "not a module"}, {}, TypeError, "`model`"),
    ({"strategy": Reweighing()}, {"sensitive_features": ["a", "b"]}, ValueError,
     "`sensitive_features` to be 40 values"),
    ({"strategy": Reweighing()}, {"sensitive_features": [None] + ["a"] * 39}, ValueError,
     "`sensitive_features` to be free of missing values, but got 1 missing \\(first at row 0\\)"),
    ({"strategy": Reweighing()}, {"sensitive_features": "a"}, TypeError, "`sensitive_features`"),
])
def test_bad_input_is_named(params, fit_args, error, match):
    clf = FairClassifier(**{**FAST, **params})
    args = {"X": X_OK, "y": Y_OK, **fit_args}
    with pytest.raises(error, match=match):
        clf.fit(**args)
    assert not hasattr(clf, "model_") and not hasattr(clf, "classes_")  # refused, nothing learned
