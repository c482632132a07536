"""fairlib.studies.intersectional: pooling, marginal-parity construction, equity summaries, comparisons."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import fairlib.metrics as fm  # noqa: E402
from fairlib.datasets import FairDataset  # noqa: E402
from fairlib.experiments import seed_summary  # noqa: E402
from fairlib.plotting import plot_method_intervals  # noqa: E402
from fairlib.datasets import pool_categories  # noqa: E402
from fairlib.studies.intersectional import (  # noqa: E402
    PERFORMANCE_METRICS,
    group_performance,
    marginal_parity_rates,
    select_at_rates,
)


@pytest.fixture()
def five_races():
    g = torch.Generator().manual_seed(0)
    n = 500
    race = torch.randint(0, 5, (n,), generator=g)
    sex = torch.randint(0, 2, (n,), generator=g)
    return FairDataset(
        X=torch.randn(n, 3, generator=g), y=torch.randint(0, 2, (n,), generator=g),
        sensitive={"race": race, "sex": sex},
        categories={"race": ["A", "B", "C", "D", "E"], "sex": ["F", "M"]},
    )


# -- pool_categories ---------------------------------------------------------------------------
def test_pool_categories_maps_codes_and_keeps_the_rest(five_races):
    pooled = pool_categories(five_races, "race", {"small": ["A", "C", "D"]}, new_name="race3")
    assert pooled.categories["race3"] == ("small", "B", "E")
    names = np.array(pooled.categories["race3"])[pooled.sensitive["race3"].numpy()]
    old = np.array(five_races.categories["race"])[five_races.sensitive["race"].numpy()]
    expected = np.where(np.isin(old, ["A", "C", "D"]), "small", old)
    assert (names == expected).all()
    assert pooled.group_name == five_races.group_name  # active attribute unchanged
    assert torch.equal(pooled.sensitive["race"], five_races.sensitive["race"])
    both = pooled.with_sensitive("race3", "sex")
    assert both.n_groups == 6 and "small & F" in both.group_categories


@pytest.mark.parametrize(
    ("pools", "new_name", "error", "pattern"),
    [
        ({"x": ["A", "Z"]}, "r", ValueError,
         "Expected `pools['x']` to be categories of 'race' among ['A', 'B', 'C', 'D', 'E'], "
         "but got 'Z'"),
        ({"x": ["A"], "y": ["A", "B"]}, "r", ValueError,
         "Expected `pools` to be each category in at most one pool, but got 'A' twice"),
        ({"x": "AB"}, "r", TypeError,
         "Expected `pools['x']` to be a sequence of category names, but got a string"),
        ({"x": ["A"]}, "sex", ValueError,
         "Expected `new_name` to be a new attribute name, but got 'sex', which exists"),
    ],
)
def test_pool_categories_rejects_bad_pools(five_races, pools, new_name, error, pattern):
    with pytest.raises(error, match=re.escape(pattern)):
        pool_categories(five_races, "race", pools, new_name=new_name)


def test_pool_categories_rejects_unknown_attribute(five_races):
    with pytest.raises(ValueError, match=re.escape("Expected `name` to be one of 'race', 'sex'")):
        pool_categories(five_races, "age", {}, new_name="x")


# -- marginal_parity_rates ---------------------------------------------------------------------
@pytest.mark.parametrize("shift", [-1.0, -0.6, 0.0, 0.3, 1.0])
@pytest.mark.parametrize("sizes", [[[311, 313], [1729, 3835]], [[50, 50], [50, 50]],
                                   [[10, 900], [700, 20]]])
def test_margins_select_the_common_rate(sizes, shift):
    n = np.array(sizes, dtype=float)
    for rate in (0.05, 0.2, 0.5, 0.9):
        s = marginal_parity_rates(n, rate, shift)
        assert ((s >= 0) & (s <= 1)).all()
        assert np.allclose((s * n).sum(1) / n.sum(1), rate)
        assert np.allclose((s * n).sum(0) / n.sum(0), rate)


def test_shift_direction_and_extremes():
    n = np.array([[311, 313], [1729, 3835]], dtype=float)
    assert np.allclose(marginal_parity_rates(n, 0.2, 0.0), 0.2)
    up = marginal_parity_rates(n, 0.2, 0.5)
    assert up[0, 0] < 0.2 < up[0, 1] and up[1, 1] < 0.2 < up[1, 0]
    full = marginal_parity_rates(n, 0.2, 1.0)
    assert np.isclose(full.min(), 0.0) or np.isclose(full.max(), 1.0)
    down = marginal_parity_rates(n, 0.2, -1.0)
    assert down[0, 0] > 0.2 and (np.isclose(down.min(), 0.0) or np.isclose(down.max(), 1.0))
    # the small cells (first row) move most
    moved = np.abs(up - 0.2)
    assert moved[0].min() > moved[1].max()


@pytest.mark.parametrize(
    ("args", "pattern"),
    [(([[1, 2, 3]], 0.2, 0.0), "Expected `sizes` to be a 2 x 2 array of positive sizes"),
     (([[1, 0], [1, 1]], 0.2, 0.0), "Expected `sizes` to be a 2 x 2 array of positive sizes"),
     (([[1, 1], [1, 1]], 1.5, 0.0), "Expected `rate` to be in [0, 1], but got 1.5"),
     (([[1, 1], [1, 1]], 0.5, 2.0), "Expected `shift` to be in [-1, 1], but got 2.0")],
)
def test_marginal_parity_rates_rejects_bad_input(args, pattern):
    with pytest.raises(ValueError, match=re.escape(pattern)):
        marginal_parity_rates(*args)


# -- select_at_rates ---------------------------------------------------------------------------
def test_select_at_rates_reproduces_rates_on_its_reference():
    g = torch.Generator().manual_seed(1)
    groups = torch.randint(0, 3, (3000,), generator=g)
    scores = torch.rand(3000, generator=g, dtype=torch.float64)
    rates = [0.1, 0.5, 0.9]
    pred = select_at_rates(scores, groups, rates)
    assert pred.dtype == torch.int64
    for k, r in enumerate(rates):
        n_k = int((groups == k).sum())
        assert abs(float(pred[groups == k].double().mean()) - r) <= 1.0 / n_k + 1e-12
    # within a group, selection is by score
    k = groups == 1
    assert float(scores[k][pred[k] == 1].min()) >= float(scores[k][pred[k] == 0].max())


def test_select_at_rates_transfers_thresholds_and_handles_extremes():
    g = torch.Generator().manual_seed(2)
    ref_g = torch.randint(0, 2, (20_000,), generator=g)
    new_g = torch.randint(0, 2, (20_000,), generator=g)
    ref_s = torch.rand(20_000, generator=g, dtype=torch.float64)
    new_s = torch.rand(20_000, generator=g, dtype=torch.float64)
    pred = select_at_rates(new_s, new_g, [0.3, 0.0], reference_scores=ref_s,
                           reference_groups=ref_g)
    assert abs(float(pred[new_g == 0].double().mean()) - 0.3) < 0.02
    assert int(pred[new_g == 1].sum()) == 0
    assert bool(select_at_rates(new_s, new_g, [1.0, 1.0]).all())
    with pytest.raises(ValueError, match=re.escape("Expected `rates` to be a 1-d array of rates")):
        select_at_rates(new_s, new_g, [0.5, 1.5])


def test_constructed_classifier_is_fair_on_margins_and_not_on_intersections():
    g = torch.Generator().manual_seed(3)
    n = 40_000
    race = (torch.rand(n, generator=g) < 0.8).long()  # 0 = small group
    sex = (torch.rand(n, generator=g) < 0.6).long()
    cell = race * 2 + sex
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    y = torch.bernoulli(scores, generator=g).long()
    sizes = torch.bincount(cell, minlength=4).numpy().reshape(2, 2)
    pred = select_at_rates(scores, cell, marginal_parity_rates(sizes, 0.3, 0.9).reshape(-1))
    for sf in (race, sex):
        assert float(fm.demographic_parity_difference(y, pred, sensitive_features=sf)) < 0.002
    assert float(fm.demographic_parity_difference(y, pred, sensitive_features=cell)) > 0.3


# -- group_performance -------------------------------------------------------------------------
def test_group_performance_matches_the_metric_functions():
    g = torch.Generator().manual_seed(4)
    groups = np.array(list("abc"))[torch.randint(0, 3, (2000,), generator=g).numpy()]
    score = torch.rand(2000, generator=g, dtype=torch.float64)
    y = torch.bernoulli(score ** 0.7, generator=g).long()
    perf = group_performance(y, score, sensitive_features=groups, threshold=0.4, alpha=2.0)
    assert tuple(perf) == PERFORMANCE_METRICS
    pred = (score >= 0.4).long()
    acc = fm.accuracy_by_group(y, pred, sensitive_features=groups)
    auc = fm.roc_auc_by_group(y, score, sensitive_features=groups)
    assert perf["accuracy"] == pytest.approx(float(acc.overall))
    assert perf["worst_group_accuracy"] == pytest.approx(float(acc.by_group.min()))
    by = acc.by_group.numpy()
    assert perf["es_accuracy"] == pytest.approx(
        float(acc.overall) / (1 + 2.0 * np.abs(by - float(acc.overall)).sum()))
    expected_std = float(acc.overall) / (1 + 2.0 * by.std(ddof=1))
    assert perf["es_accuracy_std"] == pytest.approx(expected_std)
    aucs = auc.by_group.numpy()
    assert perf["psd_mean"] == pytest.approx(aucs.std(ddof=0) / float(auc.overall))
    assert perf["psd_max"] == pytest.approx((aucs.max() - aucs.min()) / float(auc.overall))
    assert perf["worst_group_auc"] == pytest.approx(aucs.min())
    assert perf["equalized_odds_difference"] == pytest.approx(
        float(fm.equalized_odds_difference(y, pred, sensitive_features=groups)))


def test_group_performance_equal_groups_are_not_penalised():
    y = torch.tensor([0, 1, 0, 1] * 50)
    s = torch.tensor([0.2, 0.9, 0.6, 0.7] * 50, dtype=torch.float64)
    groups = np.repeat(["a", "b"], 100)
    perf = group_performance(y, s, sensitive_features=groups)
    assert perf["es_accuracy"] == pytest.approx(perf["accuracy"])
    assert perf["es_auc"] == pytest.approx(perf["auc"]) and perf["psd_max"] == pytest.approx(0.0)


# -- plotting ---------------------------------------------------------------------------------
def test_plot_method_intervals_draws_one_panel_per_metric():
    runs = pd.DataFrame({"method": ["a", "a", "b", "b"], "acc": [0.8, 0.9, 0.7, 0.8],
                         "auc": [0.9, 0.92, 0.85, 0.86]})
    summary = seed_summary(runs, ["acc", "auc"])
    axes = plot_method_intervals(summary, ["acc", "auc"], labels={"acc": "Accuracy"},
                                 reference=0.8)
    assert len(axes) == 2 and axes[0].get_title() == "Accuracy" and axes[1].get_title() == "auc"
    x, y = axes[0].lines[0].get_data()
    assert np.allclose(x, [0.85, 0.75]) and list(y) == [0, 1]
    assert axes[0].yaxis_inverted()  # first method on top
    plt.close(axes[0].figure)


# -- chapter 8: data set, per-run metric, tuning grid, helpers ---------------------------------
ADULT_RACES = ["Amer-Indian-Eskimo", "Asian-Pac-Islander", "Black", "Other", "White"]


@pytest.fixture()
def fake_census(monkeypatch):
    """``load_adult(["race", "sex"])`` replaced by 4,000 synthetic rows, Adult's categories."""
    import fairlib.datasets
    from fairlib.studies import intersectional as ix

    g = torch.Generator().manual_seed(5)
    n = 4000
    race = torch.multinomial(torch.tensor([0.02, 0.05, 0.15, 0.03, 0.75]), n, replacement=True,
                             generator=g)
    sex = (torch.rand(n, generator=g) < 0.6).long()
    X = torch.randn(n, 4, generator=g)
    y = torch.bernoulli(torch.sigmoid(X[:, 0] + 0.5 * sex), generator=g).long()
    census = FairDataset(X=X, y=y, sensitive={"race": race, "sex": sex},
                         categories={"race": ADULT_RACES, "sex": ["Female", "Male"]})
    calls = []

    def load_adult(sensitive=None, **kwargs):
        calls.append(sensitive)
        return census.with_sensitive("race", "sex")

    monkeypatch.setattr(fairlib.datasets, "load_adult", load_adult)
    ix.load_race_sex.cache_clear()
    yield calls
    ix.load_race_sex.cache_clear()


def test_load_race_sex_pools_and_crosses(fake_census):
    from fairlib.studies.intersectional import GROUPS, load_race_sex

    data = load_race_sex()
    assert fake_census == [["race", "sex"]]
    assert data.group_name == GROUPS and data.n_groups == 6
    assert "Other races & Female" in data.group_categories
    assert len(data.categories["race & sex"]) == 10
    frame = data.to_pandas()
    pooled = frame["race"].isin(["Amer-Indian-Eskimo", "Asian-Pac-Islander", "Other"])
    assert (frame.loc[pooled, "race3"] == "Other races").all()
    kept = frame.loc[~pooled]
    assert (kept["race3"].astype(str) == kept["race"].astype(str)).all()
    load_race_sex()
    assert len(fake_census) == 1  # cached


def test_adult_race_sex_is_registered_and_splits_by_the_intersection(fake_census):
    from fairlib.experiments.registry import get_dataset

    train, meta, test = get_dataset("adult_race_sex")(seed=3)
    assert train.group_name == "race3 & sex" and len(train) + len(meta) + len(test) == 4000
    again = get_dataset("adult_race_sex")(seed=3)
    assert torch.equal(again.test.source_index, test.source_index)
    ten = get_dataset("adult_race_sex")(seed=3, pooled=False)
    assert ten.train.group_name == "race & sex" and ten.train.n_groups == 10


def test_equity_metrics_are_added_to_the_record_and_match_group_performance():
    from fairlib.experiments import RunSpec, execute, train_run
    from fairlib.studies.intersectional import EQUITY_METRICS
    from fairlib.train import predict_scores

    spec = RunSpec("synthetic", "logistic", "ERM", seed=1, dataset_params={"n": 600},
                   train={"epochs": 2, "lr": 0.05, "device": "cpu"}, metrics=["equity_scaled"])
    record = execute(spec)
    assert record["status"] == "ok", record["error"]
    for split in ("meta", "test"):
        for key in EQUITY_METRICS:
            assert np.isfinite(record[f"{split}_{key}"])
    run = train_run(spec)
    scores = predict_scores(run.model, run.test, device="cpu")
    perf = group_performance(run.test.y, scores, sensitive_features=run.test.group)
    assert record["test_es_auc"] == pytest.approx(perf["es_auc"])
    assert record["test_psd_mean"] == pytest.approx(perf["psd_mean"])
    auc = fm.roc_auc_by_group(run.test.y, scores, sensitive_features=run.test.group)
    assert record["test_es_auc_a2"] == pytest.approx(float(fm.es_metric(auc, alpha=2.0)))
    assert record["test_es_auc_std"] == pytest.approx(float(fm.es_metric(auc, mode="std")))
    assert record["test_es_auc_a2"] <= record["test_es_auc"] <= record["test_es_auc_a05"]


def test_tuning_grid_gives_every_method_the_same_budget():
    from collections import Counter

    from fairlib.studies.intersectional import CHAPTER, tuning_grid

    specs = tuning_grid(epochs=2, batch_size=256, lr=0.01, hidden=16, weight_decays=[0.0, 1e-3],
                        dro_etas=[0.1, 1.0], febs_gammas=[0.5, 2.0], fis_cs=[0.25, 0.75],
                        fis_T=1.0, device="cpu")
    assert CHAPTER == "08_many_groups"
    assert Counter(s.method for s in specs) == {"ERM": 2, "GroupDRO": 2, "FEBS": 2, "FIS": 2}
    assert len(set(specs)) == 8
    assert all(s.dataset == "adult_race_sex" and s.metrics == ("equity_scaled",) for s in specs)
    dro = [dict(s.method_params) for s in specs if s.method == "GroupDRO"]
    assert {p["groups"] for p in dro} == {"group"}
    assert [s.train_settings["weight_decay"] for s in specs if s.method != "ERM"] == [0.0] * 6
    with pytest.raises(ValueError, match=re.escape("of one length (an equal tuning budget)")):
        tuning_grid(epochs=2, batch_size=256, lr=0.01, hidden=16, weight_decays=[0.0],
                    dro_etas=[0.1, 1.0], febs_gammas=[0.5, 2.0], fis_cs=[0.25, 0.75], fis_T=1.0)


def test_tally_counts_intervals_that_exclude_zero_by_direction():
    from fairlib.experiments import compare
    from fairlib.studies.intersectional import tally

    runs = pd.DataFrame({"method": ["ERM", "A", "B"] * 4, "seed": np.repeat(range(4), 3),
                         "acc": [0.80, 0.85, 0.70, 0.81, 0.86, 0.72,
                                 0.79, 0.83, 0.69, 0.80, 0.84, 0.71],
                         "gap": [0.20, 0.10, 0.20, 0.22, 0.12, 0.21,
                                 0.19, 0.09, 0.20, 0.21, 0.11, 0.19]})
    paired = compare(runs, metrics=["acc", "gap"], n_boot=200)
    counts = tally(paired, {"acc": True, "gap": False})
    assert counts == {"better": 2, "worse": 1, "total": 4}  # A better twice, B worse in acc
    assert tally(paired, {"acc": True}) == {"better": 1, "worse": 1, "total": 2}


def test_group_table_and_grouping_table_agree_with_the_metrics():
    from fairlib.studies.intersectional import group_table, grouping_table

    g = torch.Generator().manual_seed(6)
    n = 3000
    groups = np.array(list("abcd"))[torch.randint(0, 4, (n,), generator=g).numpy()]
    score = torch.rand(n, generator=g, dtype=torch.float64)
    y = torch.bernoulli(score, generator=g).long()
    table = group_table(y, score, sensitive_features=groups)
    assert list(table.columns) == ["n", "base_rate", "selection_rate", "accuracy",
                                   "true_positive_rate", "roc_auc"]
    auc = fm.roc_auc_by_group(y, score, sensitive_features=groups)
    assert np.allclose(table["roc_auc"].to_numpy(), auc.by_group.numpy())
    assert table["n"].sum() == n
    two = np.where(np.isin(groups, ["a", "b"]), "ab", "cd")
    out = grouping_table(y, score, {"two": two, "four": groups})
    assert out.loc["four", "groups"] == 4 and out.loc["two", "groups"] == 2
    assert out.loc["four", "smallest group"] == table["n"].min()
    assert out.loc["two", "accuracy"] == pytest.approx(out.loc["four", "accuracy"])
    assert out.loc["four", "es_auc"] == pytest.approx(
        group_performance(y, score, sensitive_features=groups)["es_auc"])
    one_class = np.where(y.numpy() == 1, "pos", groups)  # group "pos" has no negatives: no AUC
    with_undefined = grouping_table(y, score, {"x": one_class})
    assert with_undefined.loc["x", "undefined"] >= 1


def test_shuffled_psd_separates_real_differences_from_noise():
    from fairlib.studies.intersectional import shuffled_psd

    g = torch.Generator().manual_seed(7)
    n = 4000
    groups = np.array(["a", "b"])[torch.randint(0, 2, (n,), generator=g).numpy()]
    y = torch.randint(0, 2, (n,), generator=g)
    noise = torch.rand(n, generator=g, dtype=torch.float64)
    sharp = torch.where(torch.from_numpy(groups == "a"), 0.8 * y + 0.2 * noise, noise)
    real = shuffled_psd(y, sharp, groups, n_perm=50, seed=0)
    assert real["beyond"] == 1.0 and real["observed"] > real["quantile"] >= real["median"]
    none = shuffled_psd(y, noise, groups, n_perm=50, seed=0)
    assert none["observed"] < 0.1 and set(none) == {"observed", "median", "quantile", "beyond"}


@pytest.mark.parametrize("rate", ["selection_rate", "true_positive_rate"])
def test_gerrymander_is_fair_on_the_margins_where_it_was_set(fake_census, rate):
    from fairlib.studies.intersectional import gerrymander, load_race_sex, plot_gerrymander
    from fairlib.train import LogisticRegression

    _, meta, test = load_race_sex().split(0.2, 0.4, 0.4, seed=0)
    model = LogisticRegression(4, seed=0)
    result = gerrymander(model, meta, test, shift=0.8, rate=rate, n_boot=200, seed=0)
    d = result.differences
    assert list(d.index) == ["by sex", "by race", "by race x sex"] and result.kind == rate
    assert (d["lower"] <= d["estimate"]).all() and (d["estimate"] <= d["upper"]).all()
    assert d.loc["by race x sex", "held_out"] > 5 * d.loc[["by sex", "by race"], "held_out"].max()
    assert not d.loc["by race x sex", "consistent_with_zero"]
    assert list(result.cell_rates.index) == ["Black & Female", "Black & Male", "White & Female",
                                             "White & Male"]
    x = result.curve["by race x sex"]
    assert result.curve.shape == (41, 3) and x.loc[0.0] < min(x.iloc[0], x.iloc[-1])
    assert 0 <= result.accuracy <= 1 and 0 <= result.rate <= 1
    fig = plot_gerrymander(result, shift=0.8)
    assert len(fig.axes) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="Expected `rate` to be one of"):
        gerrymander(model, meta, test, shift=0.8, rate="accuracy")
