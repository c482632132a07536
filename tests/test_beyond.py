"""fairlib.studies.beyond: FairIJDrop drops the rows the jackknife picks and trains without them;
the chapter's methods, metric and grid work through fairlib.experiments with equal budgets."""

from collections import Counter

import pandas as pd
import pytest
import torch

from fairlib.datasets import make_biased_classification
from fairlib.experiments import RunSpec, execute, train_run
from fairlib.experiments.registry import methods
from fairlib.influence import InfluenceDrop, drop_by_influence, fit_to_convergence, smooth_metric
from fairlib.studies.beyond import (
    METHODS,
    direction_words,
    influence_check,
    interval_rows,
    tuning_grid,
)
from fairlib.studies.benchmark import paired_by_data
from fairlib.train import LogisticRegression
from fairlib.weighting import check_strategy

BIASED = {"base_rates": (0.6, 0.15), "separation": 1.5, "group_shift": 2.0}  # a real EO gap
GRID = {"adult_rows": 2000, "adult_epochs": 1, "compas_epochs": 1, "weight_decays": [1e-4, 1e-3],
        "fractions": [0.02, 0.05], "tree_counts": [10, 20], "multiplier_lrs": [0.1, 1.0]}


@pytest.fixture(scope="module")
def splits():
    return make_biased_classification(1500, seed=0, **BIASED).split(seed=0)


def test_influence_drop_weighs_the_rows_drop_by_influence_picks_zero(splits):
    train, meta, _ = splits
    model = LogisticRegression(2, seed=0)
    s = InfluenceDrop(fraction=0.05, l2=1e-3).setup(train, meta=meta, model=model)
    converged = fit_to_convergence(LogisticRegression(2, seed=0), train, l2=1e-3)
    expected = drop_by_influence(converged, train, meta, fraction=0.05, l2=1e-3)
    assert torch.equal(s.dropped_, expected.indices)
    n, k = len(train), len(expected.indices)
    assert k == round(0.05 * n)
    assert (s.sample_weights_[s.dropped_] == 0).all()
    kept = torch.ones(n, dtype=torch.bool)
    kept[s.dropped_] = False
    torch.testing.assert_close(s.sample_weights_[kept], torch.full((n - k,), n / (n - k)))
    assert float(s.sample_weights_.sum()) == pytest.approx(n)  # the mean loss of the kept rows
    assert float(s.predicted_) < float(s.smooth_before_)
    # the model handed to setup is copied, never fitted in place
    assert torch.equal(model.linear.weight, LogisticRegression(2, seed=0).linear.weight)


def test_influence_drop_uses_the_first_stage_model_when_given(splits):
    train, meta, _ = splits
    stage1 = LogisticRegression(2, seed=1)
    s = InfluenceDrop(fraction=0.05).fit_influence_model(stage1, train)
    s.setup(train, meta=meta, model=None)
    torch.testing.assert_close(s.smooth_before_, smooth_metric(s._influence_model, meta).cpu())


def test_influence_drop_passes_the_strategy_checks():
    check_strategy(InfluenceDrop(fraction=0.1))


@pytest.mark.parametrize("bad, match", [({"fraction": 0.0}, "fraction"),
                                        ({"fraction": 1.0}, "fraction"), ({"l2": -1.0}, "l2"),
                                        ({"metric": "accuracy"}, "metric")])
def test_bad_parameters_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        InfluenceDrop(**bad).check_params()


def test_setup_without_meta_or_model_is_refused(splits):
    train, meta, _ = splits
    with pytest.raises(ValueError, match="meta"):
        InfluenceDrop().setup(train, model=LogisticRegression(2, seed=0))
    with pytest.raises(ValueError, match="model"):
        InfluenceDrop().setup(train, meta=meta)


def test_registered_method_runs_its_first_stage_and_the_audit():
    assert set(METHODS) <= set(methods())
    spec = RunSpec("synthetic", "logistic", "FairIJDrop", dataset_params={"n": 1500, **BIASED},
                   method_params={"fraction": 0.05, "l2": 1e-3}, metrics=["ij_drop"],
                   train={"epochs": 2, "lr": 0.05, "weight_decay": 1e-3, "device": "cpu"})
    record = execute(spec)
    assert record["status"] == "ok", record["error"]
    assert record["ij_dropped"] == round(0.05 * record["n_train"])
    dropped = [v for k, v in record.items() if k.startswith("ij_dropped_share[")]
    train = [v for k, v in record.items() if k.startswith("ij_train_share[")]
    assert len(dropped) == len(train) == 4 and sum(dropped) == pytest.approx(1) == sum(train)
    assert record["ij_smooth_predicted"] < record["ij_smooth_before"]
    assert record["ij_smooth_refit"] < record["ij_smooth_before"]  # the refit confirms it
    run = train_run(spec)
    assert run.strategy._influence_model is not run.model  # stage 1 is its own model


@pytest.mark.parametrize("method, model, model_params", [
    ("LightGBM", "lightgbm", {"n_estimators": 5}),
    ("LightGBM + Reweighing", "lightgbm", {"n_estimators": 5}),
    ("FairGBM", "fairgbm", {"n_estimators": 5, "constraint": "fnr"}),
])
def test_tree_methods_run_through_the_experiments(method, model, model_params):
    pytest.importorskip("lightgbm")
    pytest.importorskip("fairgbm")
    spec = RunSpec("synthetic", model, method, dataset_params={"n": 600},
                   model_params=model_params)
    record = execute(spec)
    assert record["status"] == "ok", record["error"]
    assert 0.5 < record["test_accuracy"] <= 1


def test_reweighing_alias_trains_the_trees_on_reweighing_weights():
    pytest.importorskip("lightgbm")
    spec = RunSpec("synthetic", "lightgbm", "LightGBM + Reweighing",
                   dataset_params={"n": 600, **BIASED}, model_params={"n_estimators": 5})
    weights = train_run(spec).model.estimator.train_weights_
    assert weights is not None and len(set(weights.round(6).tolist())) > 1


def test_grid_gives_every_method_the_same_budget_on_both_data_sets():
    specs = tuning_grid(**GRID)
    per_data = Counter((s.dataset, s.dataset_params, s.method) for s in specs)
    assert {d for d, _, _ in per_data} == {"adult", "compas"}
    assert set(per_data.values()) == {2}
    assert {m for _, _, m in per_data} == set(METHODS)
    assert all(s.metrics == ("ij_drop",) for s in specs if s.method == "FairIJDrop")
    assert all(dict(s.model_params)["num_threads"] == 1 for s in specs if s.model != "logistic")
    drops = [s for s in specs if s.method == "FairIJDrop"]
    assert all(dict(s.method_params)["l2"] == dict(s.train)["weight_decay"] for s in drops)
    adult = dict(next(s for s in specs if s.dataset == "adult").dataset_params)
    assert adult["n"] == 2000 and adult["sensitive"] == "sex"
    assert "n" not in dict(tuning_grid(**{**GRID, "adult_rows": 0})[0].dataset_params)


def test_grid_refuses_unequal_budgets():
    with pytest.raises(ValueError, match="equal tuning budget"):
        tuning_grid(**{**GRID, "fractions": [0.02, 0.05, 0.1]})


def test_influence_check_predictions_follow_the_refits(splits):
    train, meta, _ = splits
    check = influence_check(train, meta, n_sets=8, share=0.02)
    assert list(check.columns) == ["predicted", "refit"] and len(check) == 8
    assert check["predicted"].corr(check["refit"]) > 0.95


def test_interval_rows_and_direction_words():
    runs = pd.DataFrame({"data": ["a"] * 6 + ["b"] * 6, "method": ["ERM", "X"] * 6,
                         "seed": [0, 0, 1, 1, 2, 2] * 2,
                         "gap": [0.3, 0.1, 0.2, 0.1, 0.25, 0.05, 0.1, 0.2, 0.1, 0.3, 0.2, 0.1]})
    paired = paired_by_data(runs, metrics=["gap"])
    table = interval_rows(paired, ["gap"])
    assert list(table.index) == [("a", "X"), ("b", "X")] and table.iloc[0, 0].startswith("-")
    assert direction_words(paired, names={"gap": "eo"}) == {
        "a_x_eo_dir": "lowers", "b_x_eo_dir": "does not detectably change"}
